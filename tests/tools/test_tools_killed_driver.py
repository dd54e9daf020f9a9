"""A driver killed with SIGKILL (``xcube tools run``, ``xcube process``)
leaves no tool running that could write into a resumed run's products, and
the next run cleans up after it (sweep p20, D1). Against the fake executables
in tests/fake_tools: a hanging tool, the driver killed in a subprocess."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from xcube.tools import Task, run

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the parent-death signal (prctl PR_SET_PDEATHSIG) is Linux only")


def _events(fake_tools, path, n=400):
    rng = np.random.default_rng(0)
    cols = {"TIME": np.sort(rng.uniform(0, 100, n)), "PI": rng.integers(0, 1000, n).astype(np.int32)}
    hdr = {"TELESCOP": "NuSTAR", "INSTRUME": "FPMA", "OBS_ID": "1", "TSTART": 0.0, "TSTOP": 100.0}
    return Path(fake_tools.lib._write_generic(path, cols, hdr, [("GTI", None, np.array([0.0]), np.array([100.0]))],
                                              None))


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def _pids(path: Path) -> list[tuple[int, int]]:
    if not path.exists():
        return []
    return [tuple(int(x) for x in line.split()) for line in path.read_text().splitlines() if line.strip()]


def _driver(argv: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "xcube", *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def _kill_all(pids):
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_tool_dies_with_a_killed_driver_and_the_next_run_stops_what_it_left(fake_tools, tmp_path, caplog):
    _events(fake_tools, tmp_path / "in.fits")
    pidfile = tmp_path / "pids.txt"
    argv = ["tools", "run", "ftselect", "infile=in.fits[EVENTS]", "outfile=o.fits", "expression=PI < 500",
            "--workdir", str(tmp_path), "--output", "o.fits", "--timeout", "600", "--name", "sel"]
    proc = _driver(argv, dict(os.environ, XCUBE_FAKE_HANG="ftselect", XCUBE_FAKE_CHILD_PIDS=str(pidfile)))
    started = []
    try:
        assert _wait(lambda: _pids(pidfile) or proc.poll() is not None, 60), "the tool did not start"
        started = list(_pids(pidfile)[0])
        tool, child = started  # the hanging tool and the child it started (same process group)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        # the tool itself dies with its driver, long before its timeout of 600 s
        assert _wait(lambda: not _alive(tool), 10), "the tool outlived its driver killed with SIGKILL"
        assert _alive(child)  # what the tool started itself is left to the next run
        journals = list((tmp_path / ".pfiles").glob("sel-*.run.json"))
        assert len(journals) == 1  # the dead run's journal names its token and process group
        # the next run in the work directory stops it first, then runs the tool (no hang now)
        with caplog.at_level(logging.INFO, logger="xcube.tools"):
            res = run(Task("ftselect", {"infile": "in.fits[EVENTS]", "outfile": "o.fits", "expression": "PI < 500"},
                           outputs=["o.fits"], workdir=tmp_path, name="sel"))
        assert res.state == "done"
        assert _wait(lambda: not _alive(child), 5)
        msg = [r.getMessage() for r in caplog.records if "died and left" in r.getMessage()]
        assert len(msg) == 1 and str(child) in msg[0] and "sel (ftselect" in msg[0], msg
        assert not (tmp_path / ".pfiles").exists()  # the dead run's parameter files and journal are gone
    finally:
        if proc.poll() is None:
            proc.kill()
        _kill_all(started)


def test_journal_of_a_live_run_is_left_alone(fake_tools, tmp_path, monkeypatch):
    """Two runs in one work directory: the second does not take the first, still running, for a dead one."""
    import threading

    from xcube.tools import ToolTimeout

    _events(fake_tools, tmp_path / "in.fits")
    pidfile = tmp_path / "pids.txt"
    monkeypatch.setenv("XCUBE_FAKE_HANG", "ftselect")
    monkeypatch.setenv("XCUBE_FAKE_CHILD_PIDS", str(pidfile))
    errors = []

    def hang():
        try:
            run(Task("ftselect", {"infile": "in.fits[EVENTS]", "outfile": "a.fits", "expression": "PI < 5"},
                     outputs=["a.fits"], workdir=tmp_path, name="a"), timeout=8)
        except ToolTimeout as exc:
            errors.append(exc)

    th = threading.Thread(target=hang)
    th.start()
    try:
        assert _wait(lambda: _pids(pidfile), 30)
        tool, child = _pids(pidfile)[0]
        monkeypatch.delenv("XCUBE_FAKE_HANG")
        res = run(Task("ftselect", {"infile": "in.fits[EVENTS]", "outfile": "b.fits", "expression": "PI < 5"},
                       outputs=["b.fits"], workdir=tmp_path, name="b"))
        assert res.state == "done" and _alive(tool) and _alive(child)
        assert len(list((tmp_path / ".pfiles").glob("a-*.run.json"))) == 1
    finally:
        th.join(60)
    assert len(errors) == 1  # the first run ended by its own timeout, as before
    assert not (tmp_path / ".pfiles").exists()


def test_process_driver_killed_its_tools_stop(fake_tools, tmp_path):
    """`xcube process` runs its tools in Dask worker processes: killing the driver stops them as well."""
    obs = "0123456789"
    fake_tools.lib.make_xmm_odf(tmp_path / "archive" / obs / "odf", obs_id=obs, rev="0123",
                                exposures=(("PN", "S003", "SCIENCE"), ("M1", "S001", "SCIENCE")))
    (tmp_path / "obs.txt").write_text(obs + "\n")
    out = tmp_path / "out"
    pidfile = tmp_path / "pids.txt"
    argv = ["process", str(tmp_path / "obs.txt"), "--archive", str(tmp_path / "archive"), "--out", str(out),
            "--steps", "events,clean", "--instruments", "pn", "mos1", "--workers", "1", "--tool-workers", "2",
            "--tool-timeout", "600", "--dashboard-address", ":0", "-q"]
    proc = _driver(argv, dict(os.environ, XCUBE_FAKE_HANG="espfilt", XCUBE_FAKE_CHILD_PIDS=str(pidfile)))
    started = []
    try:
        assert _wait(lambda: len(_pids(pidfile)) >= 2 or proc.poll() is not None, 180), \
            proc.communicate(timeout=30)[0].decode(errors="replace")[-3000:]
        started = [p for pair in _pids(pidfile) for p in pair]
        tools = [pair[0] for pair in _pids(pidfile)]
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        # the Dask workers notice their driver died and exit; their tools die with them
        assert _wait(lambda: not any(_alive(t) for t in tools), 30), "espfilt outlived its killed driver"
        # the resumed run stops what the tools left and finishes both steps
        from xcube.cli import main

        assert main(argv) == 0
        assert _wait(lambda: not any(_alive(p) for p in started), 5)
        assert not list(out.rglob(".pfiles"))
    finally:
        if proc.poll() is None:
            proc.kill()
        _kill_all(started)


# -- outputs of a driver killed during a run (sweep p20, D3) --------------------------------------

DRIVER = """
import json, sys
from xcube.tools import Task, run
spec = json.loads(sys.argv[1])
run(Task(spec.pop("tool"), **spec), overwrite=True)
"""


def _leftovers(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*")
                  if ".tmp-" in p.name or ".keep-" in p.name or ".pfiles" in p.parts)


def _kill_during_run(tmp_path: Path, spec: dict, hang: str) -> list[int]:
    """Run ``spec`` (Task keywords, paths as strings) with ``overwrite=True`` in a driver subprocess whose tool
    ``hang`` hangs; SIGKILL the driver once the tool runs. Returns the PIDs of the tool and its child."""
    import json

    pidfile = tmp_path / "pids.txt"
    pidfile.unlink(missing_ok=True)
    env = dict(os.environ, XCUBE_FAKE_HANG=hang, XCUBE_FAKE_CHILD_PIDS=str(pidfile))
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(spec)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        assert _wait(lambda: _pids(pidfile) or proc.poll() is not None, 60), "the tool did not start"
        assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return list(_pids(pidfile)[0])


def _lightcurve(fake_tools, path):
    fake_tools.lib.write_lightcurve(path, np.arange(0.5, 100), np.r_[np.ones(50), 5 * np.ones(50)], np.ones(100),
                                    {"TELESCOP": "XMM"}, timedel=1.0)


def test_product_moved_aside_by_a_killed_forced_rerun_is_put_back(fake_tools, tmp_path, caplog):
    """An output the tool names itself (HXMT *lcgen through rename=, epchain's lists): a forced re-run killed
    with its driver left the earlier good product hidden as .keep-*, its record pointing at nothing."""
    _lightcurve(fake_tools, tmp_path / "lc.fits")
    spec = {"tool": "tabgtigen", "params": {"table": "lc.fits", "expression": "RATE < 2"}, "inputs": ["lc.fits"],
            "outputs": ["flare.gti"], "rename": {"gti.ds": "flare.gti"}, "workdir": str(tmp_path), "name": "gti"}
    task = Task(spec["tool"], **{k: v for k, v in spec.items() if k != "tool"})
    assert run(task).state == "done"
    final = tmp_path / "flare.gti"
    good, record = final.read_bytes(), (tmp_path / ".flare.gti.xcube.json").read_text()
    pids = _kill_during_run(tmp_path, spec, "tabgtigen")
    try:
        assert not final.exists() and len(list(tmp_path.glob(".flare.gti.keep-*"))) == 1  # what the kill left
        (tmp_path / "gti.ds").write_bytes(b"half a product, written by the orphaned tool")
        with caplog.at_level(logging.WARNING, logger="xcube.tools"):
            res = run(task)  # no --overwrite: the earlier product is back, and up to date
        assert res.state == "skipped" and final.read_bytes() == good
        assert (tmp_path / ".flare.gti.xcube.json").read_text() == record
        assert not (tmp_path / "gti.ds").exists() and _leftovers(tmp_path) == []
        said = " ".join(r.getMessage() for r in caplog.records)
        assert "restored" in said and "flare.gti" in said and "gti.ds" in said
        assert len(fake_tools.calls("tabgtigen")) == 2  # the first run and the killed one; not run again
    finally:
        _kill_all(pids)


def test_in_place_copy_of_a_killed_run_is_removed_and_the_input_kept(fake_tools, tmp_path):
    src = _events(fake_tools, tmp_path / "p.fits")
    before = src.read_bytes()
    spec = {"tool": "fparkey", "params": {"value": 7, "fitsfile": f"{src}[EVENTS]", "keyword": "NCHECK",
                                          "add": True},
            "inputs": [str(src)], "outputs": [str(src)], "workdir": str(tmp_path), "name": "setkey"}
    pids = _kill_during_run(tmp_path, spec, "fparkey")
    try:
        assert len(list(tmp_path.glob(".p.fits.tmp-*"))) == 1  # the copy the tool was working on
        res = run(Task(spec["tool"], **{k: v for k, v in spec.items() if k != "tool"}))
        assert res.state == "done" and _leftovers(tmp_path) == []
        from astropy.io import fits

        assert fits.getheader(src, "EVENTS")["NCHECK"] == 7 and src.read_bytes() != before
    finally:
        _kill_all(pids)


def test_kept_copy_is_dropped_when_its_name_holds_a_recorded_product(fake_tools, tmp_path):
    """The plan of a dead run whose output was made again, and recorded, by a run that finished since: the
    newer product stays; the old copy goes (putting it back would contradict the record)."""
    import json

    from xcube.tools.journal import recover_dead_runs

    _lightcurve(fake_tools, tmp_path / "lc.fits")
    task = Task("tabgtigen", {"table": "lc.fits", "expression": "RATE < 2"}, inputs=["lc.fits"],
                outputs=["gti.ds"], workdir=tmp_path, name="gti")
    assert run(task).state == "done"
    newer = (tmp_path / "gti.ds").read_bytes()
    old = tmp_path / ".gti.ds.keep-0123abcd.ds"
    old.write_bytes(b"the product of an earlier run")
    tmp = tmp_path / ".x.fits.tmp-0123abcd.fits"
    tmp.write_bytes(b"half written")
    (tmp_path / ".pfiles" / "gti-0123abcd").mkdir(parents=True)
    (tmp_path / ".pfiles" / "gti-0123abcd.run.json").write_text(json.dumps({
        "task": "gti", "tool": "tabgtigen", "token": "0" * 32, "staging": {
            "temp": [[str(tmp_path / "x.fits"), str(tmp)]], "kept": [[str(tmp_path / "gti.ds"), str(old)]],
            "finals": [str(tmp_path / "gti.ds")], "patterns": [], "rename": []}}))
    done = recover_dead_runs(tmp_path)
    assert len(done) == 1 and (tmp_path / "gti.ds").read_bytes() == newer
    assert _leftovers(tmp_path) == [] and run(task).state == "skipped"
