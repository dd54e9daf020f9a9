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
