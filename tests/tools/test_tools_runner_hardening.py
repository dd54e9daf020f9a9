"""The tool runner keeps what it should keep (issue #14, section 2; issue #9):
temporary output names, in-place tools, relative outputs and the work
directory, task names as paths, one log per run, bounded log reading, the
setsid grandchild on timeout, parameter files of failed runs. Against the fake
executables in tests/fake_tools."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import concurrently

from xcube.tools import Glob, Task, ToolError, ToolTimeout, provenance, run
from xcube.tools.provenance import read_mods, record_path


def _events(fake_tools, path, n=400, seed=0):
    rng = np.random.default_rng(seed)
    cols = {"TIME": np.sort(rng.uniform(0, 100, n)), "PI": rng.integers(0, 1000, n).astype(np.int32)}
    hdr = {"TELESCOP": "NuSTAR", "INSTRUME": "FPMA", "OBS_ID": "1", "TSTART": 0.0, "TSTOP": 100.0}
    return Path(fake_tools.lib._write_generic(path, cols, hdr, [("GTI", None, np.array([0.0]), np.array([100.0]))],
                                              None))


def _select(src, out, expr="PI < 500", **kw):
    return Task("ftselect", {"infile": f"{src}[EVENTS]", "outfile": out, "expression": expr}, inputs=[src],
                outputs=[out], **kw)


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if ".tmp-" in p.name or ".keep-" in p.name)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# -- outputs under temporary names ------------------------------------------------------------


def test_in_place_tool_keeps_its_input_when_it_fails(fake_tools, tmp_path, monkeypatch):
    src = _events(fake_tools, tmp_path / "p.fits")
    before = src.read_bytes()
    task = Task("fparkey", {"value": 7, "fitsfile": f"{src}[EVENTS]", "keyword": "NCHECK", "add": True},
                inputs=[src], outputs=[src], workdir=tmp_path, name="setkey")
    monkeypatch.setenv("XCUBE_FAKE_CRASH", "fparkey")  # writes, cuts the file in half, exits 1
    with pytest.raises(ToolError, match="exit code 1"):
        run(task)
    assert src.read_bytes() == before and _leftovers(tmp_path) == []
    # the same through the command line, as in the issue (--input p.fits --output p.fits)
    from xcube.cli import main

    argv = ["tools", "run", "fparkey", "value=7", f"fitsfile={src}[EVENTS]", "keyword=NCHECK", "add=yes",
            "--input", str(src), "--output", str(src), "--workdir", str(tmp_path)]
    assert main(argv) == 1
    assert src.read_bytes() == before
    monkeypatch.delenv("XCUBE_FAKE_CRASH")
    assert main(argv) == 0
    from astropy.io import fits

    assert fits.getheader(src, "EVENTS")["NCHECK"] == 7
    # an in-place change is recorded as a modification of the file, and a re-run is skipped
    mods = read_mods(src)
    assert len(mods) == 1 and mods[0]["tool"] == "fparkey" and mods[0]["before"] != mods[0]["after"]
    assert main(argv) == 0 and len(fake_tools.calls("fparkey")) == 3
    assert provenance(tmp_path).nodes[str(src.resolve())]["modified_by"] == ["fparkey"]


def test_earlier_good_output_survives_a_failed_rerun(fake_tools, tmp_path, monkeypatch):
    src = _events(fake_tools, tmp_path / "in.fits")
    out = tmp_path / "result.fits"
    assert run(_select(src, out, workdir=tmp_path)).state == "done"
    good, rec = out.read_bytes(), record_path(out).read_text()
    monkeypatch.setenv("XCUBE_FAKE_CRASH", "ftselect")
    with pytest.raises(ToolError):
        run(_select(src, out, expr="PI < 100", workdir=tmp_path))
    assert out.read_bytes() == good and record_path(out).read_text() == rec
    # a crash that leaves a bad file behind the tool's exit code 0 is caught as well
    monkeypatch.delenv("XCUBE_FAKE_CRASH")
    monkeypatch.setenv("XCUBE_FAKE_GARBAGE", "ftselect")
    with pytest.raises(ToolError, match="not a valid FITS"):
        run(_select(src, out, expr="PI < 100", workdir=tmp_path))
    assert out.read_bytes() == good and _leftovers(tmp_path) == []
    # and the earlier run is still recognised as up to date
    monkeypatch.delenv("XCUBE_FAKE_GARBAGE")
    assert run(_select(src, out, workdir=tmp_path)).state == "skipped"


def test_output_the_tool_names_itself_survives_a_failed_rerun(fake_tools, tmp_path, monkeypatch):
    """tabgtigen without gtiset= writes gti.ds in its working directory: a name not on the command line."""
    lc = tmp_path / "lc.fits"
    fake_tools.lib.write_lightcurve(lc, np.arange(0.5, 100), np.r_[np.ones(50), 5 * np.ones(50)], np.ones(100),
                                    {"TELESCOP": "XMM"}, timedel=1.0)
    task = Task("tabgtigen", {"table": lc, "expression": "RATE < 2"}, inputs=[lc], outputs=["gti.ds"],
                workdir=tmp_path)
    assert run(task).state == "done"
    good = (tmp_path / "gti.ds").read_bytes()
    monkeypatch.setenv("XCUBE_FAKE_CRASH", "tabgtigen")
    task.params = dict(task.params, expression="RATE < 9")
    with pytest.raises(ToolError):
        run(task)
    assert (tmp_path / "gti.ds").read_bytes() == good and _leftovers(tmp_path) == []


def test_failed_run_keeps_every_earlier_match_of_a_glob_output(fake_tools, tmp_path, monkeypatch):
    """A Glob output with several earlier matches (pcaprepobsid's FP_*.xfl in a reused directory): a failed
    or timed-out run deletes only what it made and puts every earlier file back."""
    lc = tmp_path / "lc.fits"
    fake_tools.lib.write_lightcurve(lc, np.arange(0.5, 100), np.r_[np.ones(50), 5 * np.ones(50)], np.ones(100),
                                    {"TELESCOP": "XMM"}, timedel=1.0)
    (tmp_path / "gti_a.ds").write_bytes(b"earlier product a")
    (tmp_path / "gti_b.ds").write_bytes(b"earlier product b")
    before = {p.name: p.read_bytes() for p in tmp_path.glob("gti*.ds")}
    task = Task("tabgtigen", {"table": lc, "expression": "RATE < 2"}, inputs=[lc], outputs=[Glob("gti*.ds")],
                workdir=tmp_path)
    for var, val, err in (("XCUBE_FAKE_CRASH", "tabgtigen", ToolError), ("XCUBE_FAKE_FAIL", "tabgtigen", ToolError),
                          ("XCUBE_FAKE_HANG", "tabgtigen", ToolTimeout)):
        monkeypatch.setenv(var, val)
        with pytest.raises(err):
            run(task, timeout=3)
        monkeypatch.delenv(var)
        assert {p.name: p.read_bytes() for p in tmp_path.glob("gti*.ds")} == before, var
        assert _leftovers(tmp_path) == []
    # one earlier match: the same
    (tmp_path / "gti_b.ds").unlink()
    monkeypatch.setenv("XCUBE_FAKE_CRASH", "tabgtigen")
    with pytest.raises(ToolError):
        run(task)
    monkeypatch.delenv("XCUBE_FAKE_CRASH")
    assert [p.name for p in tmp_path.glob("gti*.ds")] == ["gti_a.ds"] and _leftovers(tmp_path) == []
    # a successful run replaces the earlier match by its own product
    res = run(task)
    assert res.state == "done" and res.outputs == [tmp_path / "gti.ds"]
    assert [p.name for p in tmp_path.glob("gti*.ds")] == ["gti.ds"] and _leftovers(tmp_path) == []
    assert run(task).state == "skipped"


# -- where files go ----------------------------------------------------------------------------


def test_relative_outputs_are_taken_in_the_work_directory(fake_tools, tmp_path, monkeypatch):
    here = tmp_path / "cwd"
    wd = tmp_path / "work"
    here.mkdir()
    wd.mkdir()
    monkeypatch.chdir(here)
    (here / "sel.fits").write_text("a file of the user's, not a product")
    src = _events(fake_tools, wd / "in.fits")
    res = run(Task("ftselect", {"infile": "in.fits[EVENTS]", "outfile": "sel.fits", "expression": "PI < 500"},
                   inputs=["in.fits"], outputs=["sel.fits"], workdir=wd))
    assert res.outputs == [wd / "sel.fits"] and (wd / "sel.fits").stat().st_size > 2880
    assert (here / "sel.fits").read_text() == "a file of the user's, not a product"
    assert sorted(p.name for p in here.iterdir()) == ["sel.fits"]  # nothing else written in the current directory
    # an output leading out of the work directory is refused unless given as an absolute path
    with pytest.raises(ValueError, match="outside .*give an absolute path"):
        run(Task("ftselect", {"infile": f"{src}[EVENTS]", "outfile": "../escaped.fits", "expression": "PI < 5"},
                 inputs=[src], outputs=["../escaped.fits"], workdir=wd))
    assert not (tmp_path / "escaped.fits").exists()
    outside = tmp_path / "elsewhere" / "abs.fits"
    assert run(_select(src, outside, workdir=wd)).outputs == [outside]


def test_no_work_directory_no_writes_in_the_current_directory(fake_tools, tmp_path, monkeypatch):
    """Issue #9: ``logs/`` and ``.pfiles/`` appeared in the checkout when tests ran."""
    monkeypatch.chdir(tmp_path)
    src = _events(fake_tools, tmp_path / "in.fits")
    with pytest.raises(ValueError, match="no work directory"):
        run(Task("ftselect", {"infile": f"{src}[EVENTS]", "outfile": "x.fits", "expression": "PI < 5"},
                 inputs=[src], outputs=["x.fits"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake-env", "in.fits"]
    from xcube.cli import main

    with pytest.raises(SystemExit):  # the command asks for --workdir explicitly
        main(["tools", "run", "ftselect", f"infile={src}[EVENTS]", "outfile=x.fits", "expression=PI<5"])


def test_task_name_cannot_place_log_or_pfiles_outside(fake_tools, tmp_path):
    wd = tmp_path / "a" / "b" / "work"
    src = _events(fake_tools, tmp_path / "in.fits")
    res = run(_select(src, wd / "o.fits", name="../../../X", workdir=wd))
    assert res.log.parent == wd / "logs" and res.log.name.startswith("_.._.._X-")  # one harmless file name
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "fake-env" not in p.parts]
    assert all(wd in p.parents for p in written if p.name != "in.fits"), written
    call = fake_tools.calls("ftselect")[0]
    private = Path(call["PFILES"].split(";")[0])
    assert private.parent == wd / ".pfiles" and private.name.startswith("_.._.._X-")
    assert not (wd / ".pfiles").exists()  # removed after the run


def test_pfiles_removed_after_failure_and_timeout(fake_tools, tmp_path, monkeypatch):
    src = _events(fake_tools, tmp_path / "in.fits")
    monkeypatch.setenv("XCUBE_FAKE_FAIL", "ftselect")
    with pytest.raises(ToolError):
        run(_select(src, tmp_path / "o.fits", workdir=tmp_path))
    assert not (tmp_path / ".pfiles").exists()
    monkeypatch.delenv("XCUBE_FAKE_FAIL")
    monkeypatch.setenv("XCUBE_FAKE_HANG", "ftselect")
    with pytest.raises(ToolTimeout):
        run(_select(src, tmp_path / "o.fits", workdir=tmp_path), timeout=1.0)
    assert not (tmp_path / ".pfiles").exists() and not (tmp_path / "o.fits").exists()


# -- logs ----------------------------------------------------------------------------------------


def test_concurrent_runs_with_the_same_parameters_get_their_own_log(fake_tools, tmp_path, monkeypatch):
    monkeypatch.setenv("XCUBE_FAKE_SLEEP", "0.6")
    src = _events(fake_tools, tmp_path / "in.fits")
    task = _select(src, tmp_path / "o.fits", workdir=tmp_path, name="same")
    results, errors = concurrently(lambda: run(task, overwrite=True), 2)
    assert not errors, errors
    logs = {r.log for r in results}
    assert len(logs) == 2 and logs == set((tmp_path / "logs").glob("same-*.log"))
    for path in logs:
        text = path.read_text()
        assert text.count("#xcube task same started") == 1 and text.count("ftselect (fake) completed") == 1
    assert _leftovers(tmp_path) == []


def test_huge_log_is_read_in_bounded_memory(fake_tools, tmp_path):
    """A 40 MB log (the issue saw 288 MB raise peak RSS to 1 GB) adds little to the runner's peak memory."""
    src = _events(fake_tools, tmp_path / "in.fits")
    script = tmp_path / "big.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, resource, sys
        from xcube.tools import Task, run
        task = Task("ftselect", {{"infile": "{src}[EVENTS]", "outfile": "{tmp_path / 'o.fits'}",
                                  "expression": "PI < 5"}}, inputs=["{src}"], outputs=["{tmp_path / 'o.fits'}"])
        run(Task("ftselect", {{"infile": "{src}[EVENTS]", "outfile": "{tmp_path / 'warm.fits'}",
                               "expression": "PI < 5"}}, inputs=["{src}"], outputs=["{tmp_path / 'warm.fits'}"]))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        os.environ["XCUBE_FAKE_LOG_BYTES"] = str(40 * 2**20)
        res = run(task)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"before": before, "after": after, "size": res.log.stat().st_size,
                           "warnings": len(res.warnings), "first": res.warnings[0]}}))
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2])] + sys.path))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["size"] > 40 * 2**20
    assert (got["after"] - got["before"]) < 20 * 1024, got  # ru_maxrss is in KiB: under 20 MiB more
    assert got["warnings"] == 200 and "FakeChatty" in got["first"]  # the first warnings are kept, capped


# -- processes -------------------------------------------------------------------------------------


def test_setsid_grandchild_is_killed_on_timeout(fake_tools, tmp_path, monkeypatch):
    pids = tmp_path / "pids.txt"
    monkeypatch.setenv("XCUBE_FAKE_HANG", "ftselect")
    monkeypatch.setenv("XCUBE_FAKE_SETSID", "1")  # the child leaves the tool's session and process group
    monkeypatch.setenv("XCUBE_FAKE_CHILD_PIDS", str(pids))
    src = _events(fake_tools, tmp_path / "in.fits")
    t0 = time.monotonic()
    with pytest.raises(ToolTimeout) as err:
        run(_select(src, tmp_path / "o.fits", workdir=tmp_path), timeout=1.5)
    assert time.monotonic() - t0 < 15
    leader, child = (int(x) for x in pids.read_text().split())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (_alive(leader) or _alive(child)):
        time.sleep(0.05)
    assert not _alive(leader) and not _alive(child)
    assert "1 process(es) that had left its process group" in err.value.log.read_text()


def test_process_left_behind_by_a_tool_that_exits_0_is_stopped(fake_tools, tmp_path, monkeypatch):
    # "nothing it started may outlive it": a child in a session of its own (setsid, daemons) is found by
    # the run's token and stopped also when the tool succeeded
    pids = tmp_path / "pids.txt"
    monkeypatch.setenv("XCUBE_FAKE_DAEMON", "ftselect")
    monkeypatch.setenv("XCUBE_FAKE_CHILD_PIDS", str(pids))
    src = _events(fake_tools, tmp_path / "in.fits")
    res = run(_select(src, tmp_path / "o.fits", workdir=tmp_path))
    assert res.state == "done"
    leader, child = (int(x) for x in pids.read_text().split())
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.05)
        assert not _alive(child)
        assert "stopped 1 process(es) it left behind" in res.log.read_text()
    finally:
        if _alive(child):
            os.kill(child, 9)
