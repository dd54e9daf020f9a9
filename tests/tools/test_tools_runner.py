"""xcube.tools.runner: command line, PFILES, environment, logs, timeout,
output checks, skip-if-done, errors; against the fake tools."""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from xcube.tools import OutputError, Task, ToolError, ToolNotFoundError, ToolTimeout, run
from xcube.tools.provenance import read_record, record_path
from xcube.tools.runner import check_fits, command_line, fingerprint, format_value, parse_log


def _events(fake_tools, path, n=500, seed=0):
    lib = fake_tools.lib
    rng = np.random.default_rng(seed)
    cols = {"TIME": np.sort(rng.uniform(0, 100, n)), "PI": rng.integers(0, 1000, n).astype(np.int32),
            "X": rng.integers(0, 100, n).astype(np.int32)}
    hdr = {"TELESCOP": "NuSTAR", "INSTRUME": "FPMA", "OBS_ID": "1", "MJDREFI": 55197, "MJDREFF": 0.0,
           "TSTART": 0.0, "TSTOP": 100.0}
    return lib._write_generic(path, cols, hdr, [("GTI", None, np.array([0.0]), np.array([100.0]))], None)


def _alive(pid: int) -> bool:
    """Running (a killed process whose parent is gone may linger as a zombie)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _select(fake_tools, tmp_path, expr="PI < 500", out="sel.fits", **kw):
    src = tmp_path / "in.fits"
    if not src.exists():
        _events(fake_tools, src)
    return Task("ftselect", {"infile": f"{src}[EVENTS]", "outfile": tmp_path / out, "expression": expr,
                             "clobber": True}, inputs=[src], outputs=[tmp_path / out], **kw)


def test_command_line_formats_values():
    t = Task("evselect", {"table": Path("/a/b.fits"), "withrateset": True, "keep": False, "timebinsize": 0.1,
                          "limits": (0.1, 6.5), "skipped": None, "expression": "PI in [200:12000] && FLAG==0"})
    assert command_line(t) == ["evselect", "table=/a/b.fits", "withrateset=yes", "keep=no", "timebinsize=0.1",
                               "limits=0.1 6.5", "expression=PI in [200:12000] && FLAG==0"]
    leg = Task("legticorr", args=[Path("recon.fits"), "old.fits", "new.fits"])
    assert command_line(leg) == ["legticorr", "recon.fits", "old.fits", "new.fits"]
    assert format_value(1 / 3) == repr(1 / 3)
    assert format_value(100.0) == "100" and format_value(1e-5) == "1e-05"
    with pytest.raises(ValueError, match="executable name"):
        Task("ls -l")


def test_floats_keep_full_precision():
    # mission times (HXMT starttime/stoptime, SAS/RXTE MET ~1e8-1e9 s) must not be rounded to 0.1 s
    for t in (369597279.123456, 200000100.123, 2e8 + 2000.987, np.float64(123456789.000123)):
        assert float(format_value(t)) == float(t)
    assert format_value(369597279.123456) == "369597279.123456"
    assert format_value(np.float64(0.1)) == "0.1"
    t = Task("lespecgen", {"starttime": 200000100.123, "stoptime": 200002000.987})
    assert command_line(t)[1:] == ["starttime=200000100.123", "stoptime=200002000.987"]


def test_parse_log_finds_sas_and_heasoft_messages():
    text = ("evselect:- Executing (routine): evselect\n** evselect: warning (NoGti), no GTI\n"
            "** evselect: error (NoSuchFile), file x.fits not found\nERROR: ftselect: bad expression\n"
            "all fine here\n")
    errors, warnings_ = parse_log(text)
    assert errors == ["** evselect: error (NoSuchFile), file x.fits not found", "ERROR: ftselect: bad expression"]
    assert warnings_ == ["** evselect: warning (NoGti), no GTI"]


def test_run_makes_output_log_and_record(fake_tools, tmp_path):
    t = _select(fake_tools, tmp_path)
    res = run(t)
    assert res.state == "done" and res.returncode == 0
    assert res.command[0] == "ftselect" and "expression=PI < 500" in res.command
    out = tmp_path / "sel.fits"
    check_fits(out)
    from astropy.io import fits

    with fits.open(out) as h:
        assert (h["EVENTS"].data["PI"] < 500).all() and len(h["EVENTS"].data) > 0
    log_text = res.log.read_text()
    assert "#xcube command: ftselect" in log_text and "ftselect (fake) completed" in log_text
    rec = read_record(record_path(out))
    assert rec["tool"] == "ftselect" and rec["params"]["expression"] == "PI < 500"
    assert rec["versions"]["version"] == "heasoft-6.33.2"  # from fversion
    assert rec["inputs"] == {str((tmp_path / "in.fits").resolve()): fingerprint(tmp_path / "in.fits")}
    # the tool saw a private PFILES directory in front of the system one, and no prompting
    call = fake_tools.calls("ftselect")[0]
    private, system = call["PFILES"].split(";")
    assert system == str(fake_tools.headas / "syspfiles")
    assert "/.pfiles/" in private and not Path(private).exists()  # removed after success


def test_a_work_directory_with_pfiles_separators_gets_a_safe_private_directory(fake_tools, tmp_path):
    """PFILES separates directories with ':' (and xcube's private;system with ';'): a work directory
    named after a time stamp must not be split into bogus directories. The tool sees one existing
    private directory without a separator, removed after the run."""
    wd = tmp_path / "2024-05-01T10:00:00;x"
    wd.mkdir()
    res = run(_select(fake_tools, tmp_path, out=wd / "sel.fits"))  # (the fake reads "file:EXT": input outside)
    assert res.outputs == [wd / "sel.fits"] and (wd / "sel.fits").exists()
    assert res.state == "done"
    call = fake_tools.calls("ftselect")[0]
    private, system = call["PFILES"].split(";")
    assert system == str(fake_tools.headas / "syspfiles")
    assert ":" not in private and "xcube-pfiles-" in private and not Path(private).exists()
    assert not (wd / ".pfiles").exists()  # the run's journal directory is removed too


def test_concurrent_runs_get_separate_pfiles(fake_tools, tmp_path, monkeypatch):
    monkeypatch.setenv("XCUBE_FAKE_SLEEP", "0.8")
    tasks = [_select(fake_tools, tmp_path, expr=f"PI < {100 * (i + 2)}", out=f"sel{i}.fits", name=f"sel{i}")
             for i in range(2)]
    results, errors = {}, []

    def go(t):
        try:
            results[t.name] = run(t)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(t,)) for t in tasks]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    calls = fake_tools.calls("ftselect")
    assert len(calls) == 2
    assert calls[0]["PFILES"].split(";")[0] != calls[1]["PFILES"].split(";")[0]
    # the runs overlapped in time, so a shared parameter file would have been clobbered
    assert abs(calls[0]["time"] - calls[1]["time"]) < 0.8


def test_shared_pfiles_is_what_breaks_concurrent_runs(fake_tools, tmp_path):
    """Control for the test above: the fake tools do detect a shared PFILES."""
    src = _events(fake_tools, tmp_path / "in.fits")
    env = dict(os.environ, HEADASNOQUERY="", XCUBE_FAKE_SLEEP="0.8", PFILES=f"{tmp_path / 'shared'};")
    procs = [subprocess.Popen(["ftselect", f"infile={src}[EVENTS]", f"outfile={tmp_path / f'o{i}.fits'}",
                               f"expression=PI < {100 + i}"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    codes = [p.returncode for p in procs]
    assert 1 in codes, outs
    assert any("was changed by another process" in o[0] for o in outs)


def test_hung_tool_is_killed_with_its_children(fake_tools, tmp_path, monkeypatch):
    pids = tmp_path / "pids.txt"
    monkeypatch.setenv("XCUBE_FAKE_HANG", "ftselect")
    monkeypatch.setenv("XCUBE_FAKE_CHILD_PIDS", str(pids))
    t = _select(fake_tools, tmp_path)
    t0 = time.monotonic()
    with pytest.raises(ToolTimeout, match="timeout of 1.5 s") as err:
        run(t, timeout=1.5)
    assert time.monotonic() - t0 < 10
    assert "hanging" in err.value.log_tail
    assert f"see {err.value.log}" in str(err.value).split("\n")[0]  # the first line names the log, as ToolError's
    leader, child = (int(x) for x in pids.read_text().split())
    time.sleep(0.2)
    assert not _alive(leader) and not _alive(child)
    assert not (tmp_path / "sel.fits").exists()


def test_the_tasks_own_timeout_applies(fake_tools, tmp_path, monkeypatch):
    """``Task(timeout=...)`` (and ``xcube tools run --timeout``) kills a hung tool without run(timeout=)."""
    monkeypatch.setenv("XCUBE_FAKE_HANG", "ftselect")
    t0 = time.monotonic()
    with pytest.raises(ToolTimeout, match="timeout of 1.5 s"):
        run(_select(fake_tools, tmp_path, timeout=1.5))
    assert time.monotonic() - t0 < 10


def test_failed_tool_raises_with_log_tail(fake_tools, tmp_path, monkeypatch):
    monkeypatch.setenv("XCUBE_FAKE_FAIL", "ftselect")
    with pytest.raises(ToolError) as err:
        run(_select(fake_tools, tmp_path))
    e = err.value
    assert e.returncode == 1 and e.tool == "ftselect"
    assert "failing as asked by XCUBE_FAKE_FAIL" in str(e)  # the log tail is part of the message
    assert "last lines of" in str(e) and e.log.exists()
    assert any("FakeFailure" in line or "failing as asked" in line for line in e.errors)
    # the first line names the log's first error line, which the tail of a large log may not reach
    assert "first error line of the log: " in str(e).split("\n")[0] and "failing as asked" in str(e).split("\n")[0]


def test_unknown_parameter_is_rejected_by_the_tool(fake_tools, tmp_path):
    t = _select(fake_tools, tmp_path)
    t.params = dict(t.params, colour="blue")
    with pytest.raises(ToolError, match=r"unknown parameter\(s\) \['colour'\]"):
        run(t)


def test_garbage_output_is_detected(fake_tools, tmp_path, monkeypatch):
    monkeypatch.setenv("XCUBE_FAKE_GARBAGE", "ftselect")
    with pytest.raises(OutputError, match="not a valid FITS file"):
        run(_select(fake_tools, tmp_path))
    assert not record_path(tmp_path / "sel.fits").exists()


def test_truncated_fits_is_detected(fake_tools, tmp_path):
    f = _events(fake_tools, tmp_path / "ev.fits")
    data = Path(f).read_bytes()
    Path(f).write_bytes(data[: len(data) - 4000])
    with pytest.raises(OSError, match="truncated"):
        check_fits(f)


def test_truncated_gzip_fits_is_detected(fake_tools, tmp_path):
    import gzip

    f = Path(_events(fake_tools, tmp_path / "ev.fits", n=50000))
    data = f.read_bytes()
    good = tmp_path / "good.fits.gz"
    good.write_bytes(gzip.compress(data))
    check_fits(good)
    cut = tmp_path / "cut.fits.gz"  # a cut gzip stream: its headers still parse
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(OSError, match="cut.fits.gz: corrupt compressed FITS"):
        check_fits(cut)
    short = tmp_path / "short.fits.gz"  # a whole gzip stream of a truncated FITS file
    short.write_bytes(gzip.compress(data[: len(data) - 4000]))
    with pytest.raises(OSError, match=r"short\.fits\.gz: (HDU .* is truncated|corrupt FITS file)"):
        check_fits(short)


def test_truncated_gzip_output_of_a_tool_that_exits_0_is_an_output_error(fake_tools, tmp_path, monkeypatch):
    t = _select(fake_tools, tmp_path, out="sel.fits.gz")
    assert run(t).state == "done"  # the fake compresses a .gz output, as CFITSIO does
    check_fits(tmp_path / "sel.fits.gz")
    good = (tmp_path / "sel.fits.gz").read_bytes()
    monkeypatch.setenv("XCUBE_FAKE_TRUNCATE", "ftselect")  # half the file, exit 0
    with pytest.raises(OutputError, match=r"sel\.fits\.gz is not a valid FITS file"):
        run(t, overwrite=True)
    assert (tmp_path / "sel.fits.gz").read_bytes() == good  # the earlier product is kept


def test_missing_output_is_detected(fake_tools, tmp_path):
    t = _select(fake_tools, tmp_path)
    t.outputs = [tmp_path / "other_name.fits"]
    with pytest.raises(OutputError, match="did not make"):
        run(t)


def test_tool_not_installed_names_package_and_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("SAS_DIR", raising=False)
    with pytest.raises(ToolNotFoundError) as err:
        run(Task("evselect", {"table": "x.fits"}, workdir=tmp_path))
    msg = str(err.value)
    assert "XMM-Newton Science Analysis System" in msg and "SAS_DIR" in msg and "setsas.sh" in msg
    with pytest.raises(ToolNotFoundError, match=r"HEASoft.*headas-init\.sh"):
        run(Task("maketime", {"infile": "x"}, workdir=tmp_path))
    with pytest.raises(ToolNotFoundError, match=r"HXMTDAS.*CALDB"):
        run(Task("lepical", {"evtfile": "x"}, workdir=tmp_path))


def test_skip_if_done_and_what_invalidates_it(fake_tools, tmp_path):
    t = _select(fake_tools, tmp_path)
    assert run(t).state == "done"
    assert run(t).state == "skipped"
    assert len(fake_tools.calls("ftselect")) == 1  # no tool call for the skipped run
    # overwrite forces a run
    assert run(t, overwrite=True).state == "done"
    assert len(fake_tools.calls("ftselect")) == 2
    # a changed parameter re-runs
    t2 = _select(fake_tools, tmp_path, expr="PI < 400")
    assert run(t2).state == "done"
    assert run(t2).state == "skipped"
    # changed input content re-runs
    _events(fake_tools, tmp_path / "in.fits", seed=5)
    assert run(t2).state == "done"
    # an output modified after the run re-runs
    with open(tmp_path / "sel.fits", "ab") as fh:
        fh.write(b"\0" * 2880)
    assert run(t2).state == "done"
    assert len(fake_tools.calls("ftselect")) == 5


def test_files_named_in_parameters_are_inputs(fake_tools, tmp_path):
    # no inputs= declared: the file named by infile= (with its [EVENTS]) is checksummed all the same
    src = tmp_path / "in.fits"
    _events(fake_tools, src)
    t = Task("ftselect", {"infile": "in.fits[EVENTS]", "outfile": "sel.fits", "expression": "PI < 500"},
             outputs=["sel.fits"], workdir=tmp_path)
    res = run(t)
    assert str(src.resolve()) in read_record(res.record)["inputs"]
    assert str((tmp_path / "sel.fits").resolve()) not in read_record(res.record)["inputs"]  # an output is not
    assert run(t).state == "skipped"
    _events(fake_tools, src, seed=3)
    assert run(t).state == "done"
    # positional arguments, list values and @list files count as well
    from xcube.tools.runner import _named_files

    (tmp_path / "a.lis").write_text("in.fits\n")
    got = _named_files(["@a.lis", ["x", str(src)], "in.fits:EVENTS", "!in.fits", "PI < 500", 3.0, True], tmp_path)
    assert got == [tmp_path / "a.lis", src, src, src]  # the list file and the file it names (sweep p25)


def test_directory_input_leaves_out_the_tasks_own_files(fake_tools, tmp_path):
    # the work directory is the input directory: the run's logs, parameter files and outputs are not inputs
    w = tmp_path / "w"
    w.mkdir()
    _events(fake_tools, w / "in.fits")
    t = Task("ftselect", {"infile": "in.fits[EVENTS]", "outfile": "sel.fits", "expression": "PI < 500"},
             inputs=[w], outputs=["sel.fits"], workdir=w)
    assert [run(t).state for _ in range(3)] == ["done", "skipped", "skipped"]
    (w / "other.fits").write_bytes(b"a new file in the input directory")
    assert run(t).state == "done"
    d = tmp_path / "d"
    (d / "out").mkdir(parents=True)
    (d / "a.txt").write_text("a")
    before = fingerprint(d)
    (d / "out" / "b.txt").write_text("b")
    (d / "FP_1.xfl").write_text("c")
    assert fingerprint(d) != before
    assert fingerprint(d, exclude=[d / "out"], exclude_patterns=[str(d / "FP_*.xfl")]) == before


def test_missing_input_is_an_error_before_running(fake_tools, tmp_path):
    t = Task("ftselect", {"infile": "nope.fits", "outfile": tmp_path / "o.fits", "expression": "true"},
             inputs=[tmp_path / "nope.fits"], outputs=[tmp_path / "o.fits"])
    with pytest.raises(ToolError, match="input file"):
        run(t)
    assert fake_tools.calls() == []


def test_headas_environment_is_set(fake_tools, tmp_path, monkeypatch):
    # the fakes refuse to run without HEADASNOQUERY (a real tool would prompt); the runner sets it
    monkeypatch.delenv("HEADASNOQUERY", raising=False)
    res = run(_select(fake_tools, tmp_path))
    assert res.state == "done"
    head = [ln for ln in res.log.read_text().splitlines() if ln.startswith("#xcube PFILES=")]
    assert head and ";" in head[0]


def test_record_written_atomically(fake_tools, tmp_path):
    res = run(_select(fake_tools, tmp_path))
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert leftovers == []
    assert json.loads(res.record.read_text())["param_hash"] == res.param_hash
