"""Hostile cases for surveys: observation ids that try to leave the output
directory, two drivers racing for the lock, a driver superseded by another."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from xcube.survey import parameter_grid, run
from xcube.survey.lock import LOCK_FILE, SurveyLock
from xcube.survey.observations import observation_id, resolve_observations
from xcube.survey.status import read_status, write_run
from xcube.survey.task import SurveyAborted

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

PARAMS = parameter_grid([50.0, 200.0], [(0.2, 12.0)])


class _Result:
    def __init__(self, run_id, detections, summary):
        self.run_id, self.detections, self.summary = run_id, detections, summary


def stub_search(events, time_bin=50.0, energy_band=(0.2, 12.0), sigma=3.0, size_arcsec=20.0):
    """One detection at the pointing per run (the survey mechanics, not the search)."""
    det = pd.DataFrame({"ra": [events.attrs["ra_pnt"]], "dec": [events.attrs["dec_pnt"]], "kind": ["peak"],
                        "log10_bayes": [float(time_bin)]})
    return _Result("x", det, {"exposure": 1.0, "reason": ""})


def takeover_search(events, **kw):
    """Acts as a second driver taking the output directory over mid-survey."""
    out = Path(os.environ["XCUBE_TEST_SURVEY_OUT"])
    (out / LOCK_FILE).write_text(json.dumps({"token": "the-other-survey", "pid": 1, "host": "elsewhere"}))
    return stub_search(events, **kw)


@pytest.fixture(scope="module")
def client():
    from distributed import Client

    c = Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0")
    yield c
    c.close()


def test_obs_id_from_a_header_never_leaves_the_output(make_event_file, client, tmp_path):
    arch = tmp_path / "arch"
    arch.mkdir()
    src = make_event_file(n=300, header={"OBS_ID": "../../escape"}, name="evil_events.fits")
    src.rename(arch / src.name)
    assert observation_id(arch / src.name) == "_.._escape"
    out = tmp_path / "deep" / "er" / "out"
    res = run(arch, out, PARAMS, compute=client, search=stub_search, progress=False, figures="none")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "deep" / "escape").exists()
    st = read_status(out)
    assert list(st["obsid"]) == ["_.._escape"] * 2 and set(st["state"]) == {"done"}
    assert all((out / "_.._escape" / r / "run.json").is_file() for r in st["run_id"])
    assert len(res.catalogue and pd.read_parquet(out / "catalogue" / "detections.parquet")) == 2
    again = run(arch, out, PARAMS, compute=client, search=stub_search, progress=False, figures="none")
    assert again.n_runs == 0  # recorded, so not redone at the next resume


@pytest.mark.parametrize("obsid", ["../victim", "/abs/victim", "a/../../victim"])
def test_run_directories_outside_the_output_are_refused(tmp_path, obsid):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match="outside"):
        write_run(out, obsid, "run", {"state": "done"}, overwrite=True)
    assert (victim / "precious.txt").read_text() == "keep me" and len(list(victim.iterdir())) == 1


def test_symlinked_observation_directory_is_refused(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "0123").symlink_to(victim)
    with pytest.raises(ValueError, match="outside"):
        write_run(out, "0123", "run", {"state": "done"}, overwrite=True)
    assert not list(victim.iterdir())


def test_obsids_from_lists_and_mappings_are_made_safe(tmp_path, make_event_file):
    f = make_event_file(n=100)
    obs = resolve_observations({"../up": [f], "ok-1": [f]})
    assert set(obs) == {"_up", "ok-1"}
    lst = tmp_path / "list.txt"
    lst.write_text("..%2F..\nweird name\n")
    obs = resolve_observations(lst, archive=tmp_path)
    assert set(obs) == {"_2F..", "weird"} or set(obs) == {"_2F..", "weird", "name"}


def test_two_drivers_racing_for_the_lock_one_wins(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    n = 8
    barrier = threading.Barrier(n)
    won, lost = [], []

    def driver(k):
        lock = SurveyLock(out, f"token-{k}")
        barrier.wait()
        try:
            lock.acquire()
            won.append(lock)
        except FileExistsError as exc:
            lost.append(str(exc))

    threads = [threading.Thread(target=driver, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == n - 1
    assert all("is still writing into" in m for m in lost) and all(won[0].token in m for m in lost)
    assert won[0].owned()
    won[0].release()
    assert not (out / LOCK_FILE).exists()
    SurveyLock(out, "after").acquire().release()


def test_lock_of_a_killed_driver_is_free_at_once(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    code = ("import sys, time; from xcube.survey.lock import SurveyLock; "
            f"SurveyLock({str(out)!r}, 'killed').acquire(); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(FileExistsError, match="killed"):
            SurveyLock(out, "second").acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (out / LOCK_FILE).exists()  # left behind, but no longer locked
    lock = SurveyLock(out, "third").acquire()
    assert lock.owned()
    lock.release()


def test_superseded_driver_raises_and_leaves_the_status_alone(make_event_file, client, tmp_path, monkeypatch):
    arch = tmp_path / "arch"
    arch.mkdir()
    for k in range(2):
        f = make_event_file(n=200, seed=k, header={"OBS_ID": f"01000000{k:02d}"})
        f.rename(arch / f.name)
    out = tmp_path / "out"
    monkeypatch.setenv("XCUBE_TEST_SURVEY_OUT", str(out))
    with pytest.raises(SurveyAborted, match="another survey"):
        run(arch, out, PARAMS, compute=client, search=takeover_search, progress=False, figures="none")
    assert len(read_status(out)) == 0  # the table written at the start, never updated after the takeover
    assert not [q for q in out.glob("*/*/run.json") if not q.parent.name.startswith(".")]  # nothing committed
    assert json.loads((out / LOCK_FILE).read_text())["token"] == "the-other-survey"  # not removed


def test_cli_exits_nonzero_when_superseded(monkeypatch, tmp_path, capsys):
    import xcube.survey.runner as runner
    from xcube.cli import main

    def aborted(*a, **k):
        raise SurveyAborted(f"{tmp_path}: another survey (x) took this output directory over")

    monkeypatch.setattr(runner, "run", aborted)
    rc = main(["survey", str(tmp_path), "--out", str(tmp_path / "out"), "-q"])
    assert rc == 3
    assert "survey aborted" in capsys.readouterr().err


def test_cluster_without_its_submit_command_fails_at_once(make_event_file, monkeypatch, tmp_path, capsys):
    """``--cluster slurm`` where there is no sbatch: a clear message within seconds, not a hang."""
    from xcube.cli import main

    arch = tmp_path / "arch"
    arch.mkdir()
    f = make_event_file(n=100)
    f.rename(arch / f.name)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    t0 = time.monotonic()
    rc = main(["survey", str(arch), "--out", str(tmp_path / "out"), "--cluster", "slurm", "-q", "--no-catalogue"])
    assert time.monotonic() - t0 < 30
    err = capsys.readouterr().err
    assert rc == 1
    assert "'sbatch', which is not on PATH" in err and "--workers N" in err and "Traceback" not in err
    assert not (tmp_path / "out" / LOCK_FILE).exists()  # released on the way out


def test_lock_without_flock_uses_an_exclusive_create(tmp_path, monkeypatch):
    import errno
    import fcntl
    import socket

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    out = tmp_path / "out"
    out.mkdir()
    first = SurveyLock(out, "first").acquire()
    with pytest.raises(FileExistsError, match="first"):
        SurveyLock(out, "second").acquire()
    first.release()
    # a lock left by a dead process of this host is taken over
    (out / LOCK_FILE).write_text(json.dumps({"token": "dead", "pid": 2**22 + 12345, "host": socket.gethostname()}))
    third = SurveyLock(out, "third").acquire()
    assert third.owned()
    third.release()
