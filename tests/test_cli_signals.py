"""Ctrl-C (SIGINT) and SIGTERM: one line on stderr and exit status 130/143
instead of a traceback, the clean-up of atomic writers runs (no hidden
temporaries), xcube's thread pool stops its parts, and a survey releases its
lock even when interrupted during its engine's shut-down."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from xcube.scheduler import thread_map

MANY_CPUS = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="thread_map runs inline on one CPU")


def _wait_for(proc: subprocess.Popen, text: str, timeout: float = 120.0) -> str:
    """Read ``proc``'s stdout until a line holds ``text`` (the process is then
    at the step the test interrupts); fail when it exits or takes too long."""
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
            if text in line:
                return seen
        elif proc.poll() is not None:
            break
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f"never reached {text!r}; stdout:\n{seen}{out}\nstderr:\n{err}")


def _xcube(tmp_path: Path, patch: str, *args: str) -> subprocess.Popen:
    """``xcube ARGS`` in a child process (cwd ``tmp_path``), after the Python
    lines ``patch`` (which make a step announce itself and wait)."""
    script = tmp_path / "run_xcube.py"
    script.write_text(textwrap.dedent(patch) + textwrap.dedent("""
        import sys
        from xcube.cli import main
        sys.exit(main(sys.argv[1:]))
    """))
    return subprocess.Popen([sys.executable, str(script), *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


SLOW_SEARCH = """
    import time
    import xcube.transients.search as search

    def slow(*args, **kwargs):
        print("searching", flush=True)
        time.sleep(120)

    search.search_transients = slow
"""

SLOW_WRITE = """
    import time
    from xcube.transients.result import SearchResult

    def slow_plot(self):
        print("writing", flush=True)
        time.sleep(120)

    SearchResult.plot = slow_plot
"""


@pytest.mark.parametrize("sig, rc, word", [(signal.SIGINT, 130, "interrupted"),
                                           (signal.SIGTERM, 143, "terminated")])
def test_interrupted_search_prints_one_line(make_event_file, tmp_path, sig, rc, word):
    ev = make_event_file(n=2000)
    proc = _xcube(tmp_path, SLOW_SEARCH, "search", str(ev), "--out", str(tmp_path / "res"), "-q")
    _wait_for(proc, "searching")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == rc, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == f"xcube search: {word}" + (
        " (SIGTERM)" if sig == signal.SIGTERM else ""), err


@pytest.mark.parametrize("sig, rc", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_while_writing_leaves_no_temporaries(make_event_file, tmp_path, sig, rc):
    """SIGTERM (a batch system's time limit) while the search writes its run
    directories: the hidden temporaries are removed, as after Ctrl-C."""
    ev = make_event_file(n=3000)
    res = tmp_path / "res"
    proc = _xcube(tmp_path, SLOW_WRITE, "search", str(ev), "--out", str(res), "-q", "--time-bin", "1000")
    _wait_for(proc, "writing")
    assert any(p.name.startswith(".") for p in [*tmp_path.iterdir(), *(res.iterdir() if res.is_dir() else [])])
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == rc, err
    assert "Traceback" not in err, err
    left = [p.name for p in [*tmp_path.iterdir(), *(res.rglob("*") if res.is_dir() else [])]
            if p.name.startswith(".")]
    assert not left, left
    assert not res.exists()  # nothing written: the directory the search was writing is gone too


SEARCH_WITH_EXIT_HANDLER = """
    import signal
    import sys
    import time
    import xcube.transients.search as search

    def slow(*args, **kwargs):
        signal.signal(signal.SIGINT, lambda *_: sys.exit())  # as importing dask_jobqueue does
        print("searching", flush=True)
        time.sleep(120)

    search.search_transients = slow
"""


def test_ctrl_c_with_a_library_exit_handler_is_still_an_interruption(make_event_file, tmp_path):
    """dask_jobqueue (``xcube survey --cluster slurm``) replaces Python's
    SIGINT handler by ``sys.exit()``: Ctrl-C then ended the command with
    status 0 and no word."""
    ev = make_event_file(n=2000)
    proc = _xcube(tmp_path, SEARCH_WITH_EXIT_HANDLER, "search", str(ev), "--out", str(tmp_path / "res"), "-q")
    _wait_for(proc, "searching")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "xcube search: interrupted", err


def test_main_restores_the_signal_handlers(make_event_file, tmp_path, monkeypatch, capsys):
    """``main`` called in-process leaves Ctrl-C and SIGTERM as they were, also
    when the command's libraries replaced the SIGINT handler."""
    import sys as _sys

    import xcube.transients.search as search
    from xcube.cli import main

    def replacing(*args, **kwargs):
        signal.signal(signal.SIGINT, lambda *_: _sys.exit())
        raise ValueError("no search today")

    monkeypatch.setattr(search, "search_transients", replacing)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert main(["search", str(make_event_file(n=500)), "--out", str(tmp_path / "res"), "-q"]) == 1
    assert "no search today" in capsys.readouterr().err
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


@pytest.fixture
def python_sigint():
    """Python's own Ctrl-C handler (another test's libraries may have replaced it)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@MANY_CPUS
def test_interrupted_thread_map_stops_its_parts(python_sigint):
    """Ctrl-C in the thread waiting on thread_map: the parts not started are
    cancelled, the running ones stop at their next nested item."""
    started, inner = [], []
    main = threading.main_thread().ident

    def step(k):
        inner.append(time.monotonic())
        if len(inner) == 1:
            signal.pthread_kill(main, signal.SIGINT)
        time.sleep(0.02)

    def part(j):
        started.append(j)
        thread_map(step, range(50))  # about 1 s of work per part

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        thread_map(part, range(8))
    assert time.monotonic() - t0 < 0.9
    time.sleep(0.3)
    n = len(inner)
    time.sleep(0.3)
    assert len(inner) == n < 100  # stopped: of the 400 steps, those until the interrupt was seen (<= 0.2 s)
    assert len(started) <= os.cpu_count()  # parts not started when interrupted never ran
    assert thread_map(lambda k: k * 2, range(4)) == [0, 2, 4, 6]  # the pool still works


@MANY_CPUS
def test_interrupted_process_does_not_wait_for_running_parts(tmp_path):
    """A process interrupted while thread_map parts run long compiled code
    (here: sleep) ends at once instead of waiting for them."""
    script = tmp_path / "map.py"
    script.write_text(textwrap.dedent("""
        import time
        from xcube.scheduler import thread_map

        def part(k):
            if k == 0:
                print("running", flush=True)
            time.sleep(60)

        thread_map(part, range(4))
    """))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for(proc, "running")
    time.sleep(0.2)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert time.monotonic() - t0 < 10
    assert proc.returncode != 0


def test_survey_lock_released_when_interrupted_during_shut_down(make_event_file, tmp_path, monkeypatch):
    """Ctrl-C while the survey stops its cluster (a second Ctrl-C, or one at
    the end of the survey): the lock file is removed all the same."""
    from xcube.survey import Compute, parameter_grid, run, runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    def close():
        raise KeyboardInterrupt  # the engine's shut-down interrupted too

    class Engine(Compute):
        def start(self):
            return SimpleNamespace(dashboard_link=None), close

    monkeypatch.setattr(runner, "_execute", interrupted)
    ev = make_event_file(n=500)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("an earlier file")
    with pytest.raises(KeyboardInterrupt):
        run([ev], out, parameter_grid([1000.0], [(0.2, 12.0)]), compute=Engine(), progress=False, catalogue=False)
    assert not (out / ".survey.lock").exists()


def test_jobqueue_import_leaves_the_ctrl_c_handler(tmp_path, monkeypatch):
    """Importing dask_jobqueue replaces the process's SIGINT handler by sys.exit(); a later thread_map in the
    same process then died with SystemExit instead of a KeyboardInterrupt (CI: after the SLURM test)."""
    import shutil as _shutil

    from xcube.survey import engine

    (tmp_path / "dask_jobqueue.py").write_text(
        "import signal, sys\nsignal.signal(signal.SIGINT, lambda *_: sys.exit())\n"
        "class SLURMCluster:\n    def __init__(self, **kw):\n        self.kw = kw\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "dask_jobqueue", raising=False)
    monkeypatch.setattr(_shutil, "which", lambda cmd: "/usr/bin/" + cmd)
    before = signal.getsignal(signal.SIGINT)
    try:
        assert isinstance(engine.jobqueue_cluster("slurm"), sys.modules["dask_jobqueue"].SLURMCluster)
        assert signal.getsignal(signal.SIGINT) is before
    finally:
        signal.signal(signal.SIGINT, before)


def test_closed_stdout_ends_the_command_quietly(make_event_file, tmp_path):
    """``xcube info *.fits | head -1``: the reader goes away after one line;
    the command stops with status 141 (as if killed by SIGPIPE) and writes no
    'Broken pipe' error line per remaining file."""
    files = [str(make_event_file(n=200, seed=i)) for i in range(40)]
    proc = subprocess.Popen([sys.executable, "-m", "xcube", "info", *files], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    assert proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert "Broken pipe" not in err and "Traceback" not in err, err


def test_sigterm_lost_in_a_finaliser_still_stops_the_command(make_event_file, tmp_path, monkeypatch, capsys):
    """Sweep p26: a SIGTERM arriving while a finaliser ran (astropy's, during
    a FITS write) raised inside it; Python dropped the exception with an
    "Exception ignored" traceback, and the command wrote its output and
    exited 0. Now the output is not put in place and the status is 143."""
    import xcube.transients.search as search
    from xcube.cli import main
    from xcube.io.atomic import atomic_file

    out = tmp_path / "product.txt"

    class Finaliser:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10000):  # the handler runs here, inside the finaliser
                pass

    def writing(*args, **kwargs):
        with atomic_file(out) as tmp:
            tmp.write_text("half of it")
            f = Finaliser()
            del f  # the signal's exception is lost here
            tmp.write_text("all of it")
        raise AssertionError("the write was committed after SIGTERM")

    monkeypatch.setattr(search, "search_transients", writing)
    assert main(["search", str(make_event_file(n=500)), "--out", str(tmp_path / "res"), "-q"]) == 143
    err = capsys.readouterr().err
    assert "terminated (SIGTERM)" in err and "Exception ignored" not in err and "Traceback" not in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert main(["info", str(make_event_file(n=50))]) == 0  # the next command in this process is not stopped


def test_survey_cleans_up_after_a_sigterm_lost_in_a_finaliser(make_event_file, tmp_path, monkeypatch, capsys):
    """Sweep p27: after SIGTERM every later write of the survey's clean-up
    was refused too (the lock file and a stale status table stayed). The lost
    signal is delivered once, by the next write; the clean-up writes go on."""
    from xcube.cli import main
    from xcube.io.atomic import atomic_file
    from xcube.survey import runner

    class Finaliser:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10000):
                pass

    def execute(*args, **kwargs):
        f = Finaliser()
        del f  # lost here
        with atomic_file(tmp_path / "product.txt") as tmp:
            tmp.write_text("x")

    import logging

    monkeypatch.setattr(runner, "_execute", execute)
    out = tmp_path / "out"
    argv = ["survey", str(make_event_file(n=500)), "--out", str(out), "--time-bin", "1000", "--workers", "1",
            "--figures", "none", "--no-catalogue", "--dashboard-address", ":0", "-q"]
    names = ("distributed", "tornado", "asyncio", "bokeh")  # (an interrupted survey silences them for good)
    levels = {n: logging.getLogger(n).level for n in names}
    try:
        assert main(argv) == 143
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)
    assert "terminated (SIGTERM)" in capsys.readouterr().err
    assert not (tmp_path / "product.txt").exists() and not (out / ".survey.lock").exists()
