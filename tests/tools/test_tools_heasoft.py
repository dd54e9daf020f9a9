"""xcube.tools.heasoft: generic tasks, the RXTE chain in parallel, mission
pipelines and ftools helpers; ``xcube tools run``."""
from __future__ import annotations

import numpy as np
import pytest

import xcube
from xcube.tools import Glob, heasoft, run, run_many


def test_generic_task_by_name(fake_tools, tmp_path):
    src = fake_tools.lib._write_generic(
        tmp_path / "ev.fits", {"TIME": np.arange(10.0), "PI": np.arange(10, dtype=np.int32)},
        {"TELESCOP": "NuSTAR", "INSTRUME": "FPMA", "TSTART": 0.0, "TSTOP": 10.0},
        [("GTI", {}, np.array([0.0]), np.array([10.0]))], None)
    t = heasoft.task("ftselect", infile=f"{src}[EVENTS]", outfile=tmp_path / "o.fits", expression="PI >= 5",
                     inputs=[src], outputs=[tmp_path / "o.fits"])
    assert run(t).state == "done"
    from astropy.io import fits

    assert list(fits.getdata(tmp_path / "o.fits", "EVENTS")["PI"]) == [5, 6, 7, 8, 9]
    # tool parameters that clash with keyword names go in params=
    mk = heasoft.task("maketime", {"name": "NAME", "time": "TIME"}, infile="f.xfl", outfile="g.gti", expr="ELV>4")
    assert mk.params["name"] == "NAME" and mk.name.startswith("maketime-")


def test_rxte_lightcurves_in_parallel(fake_tools, tmp_path):
    from astropy.io import fits

    obs = [fake_tools.lib.make_rxte_obsid(tmp_path / "archive", o) for o in ("10258-01-01-00", "10258-01-02-00")]
    table, lcs = heasoft.rxte_lightcurves(obs, tmp_path / "out", chmin=5, chmax=10, workers=2, progress=False)
    assert set(table["state"]) == {"done"}, table[["task", "message"]]
    assert set(lcs) == {"10258-01-01-00", "10258-01-02-00"}
    for obsid, lc in lcs.items():
        assert lc.name == f"{obsid}_ch5-10_16s.lc"
        with fits.open(lc) as h:
            hdr = h["RATE"].header
            assert (hdr["CHMIN"], hdr["CHMAX"], hdr["TIMEDEL"]) == (5, 10, 16.0)
            assert len(h["RATE"].data) > 10 and (h["RATE"].data["RATE"] > 0).all()
    calls = fake_tools.calls()
    for obsid in lcs:
        seq = [c["tool"] for c in calls if obsid in " ".join(c["argv"]) and c["tool"] != "fversion"]
        assert seq == ["pcaprepobsid", "maketime", "pcaextlc2"]
    mk = next(c for c in calls if c["tool"] == "maketime")
    assert any(a.startswith("infile=") and a.endswith(".xfl") for a in mk["argv"])  # Glob resolved at run time
    assert "expr=(ELV > 4) && (OFFSET < 0.1)" in mk["argv"] and "compact=no" in mk["argv"]
    fake_tools.reset_calls()
    table, _ = heasoft.rxte_lightcurves(obs, tmp_path / "out", chmin=5, chmax=10, progress=False)
    assert set(table["state"]) == {"skipped"} and fake_tools.calls() == []


def test_glob_must_match_one_file(tmp_path):
    (tmp_path / "a.xfl").write_text("x")
    assert Glob(tmp_path / "*.xfl").resolve() == str(tmp_path / "a.xfl")
    (tmp_path / "b.xfl").write_text("x")
    with pytest.raises(ValueError, match="2 files match"):
        Glob(tmp_path / "*.xfl").resolve()
    with pytest.raises(FileNotFoundError, match="no file matches"):
        Glob(tmp_path / "*.evt").resolve()


def test_mission_pipelines_and_ftools(fake_tools, tmp_path):
    for d in ("30001001002", "00030000001", "1012010102"):
        (tmp_path / d).mkdir()
    nu = heasoft.nupipeline(tmp_path / "30001001002", tmp_path / "nu_out")
    xrt = heasoft.xrtpipeline(tmp_path / "00030000001", tmp_path / "xrt_out", srcra=83.63, srcdec=22.01)
    ni = heasoft.nicerl2(tmp_path / "1012010102", cldir=tmp_path / "ni_out")
    bary = heasoft.barycorr(nu.outputs[0], tmp_path / "bary.evt", tmp_path / "30001001002", ra=83.63, dec=22.01,
                            deps=(nu.name,))
    merged = heasoft.ftmerge(nu.outputs, tmp_path / "nu_AB.evt", deps=(nu.name,))
    table = run_many([nu, xrt, ni, bary, merged], workers=2, progress=False)
    assert set(table["state"]) == {"done"}, table[["task", "message"]]
    assert nu.outputs[0].name == "nu30001001002A01_cl.evt"
    assert xrt.outputs[0].name == "sw00030000001xpcw3po_cl.evt" and ni.outputs[0].name == "ni1012010102_0mpu7_cl.evt"
    ev = xcube.open_events(nu.outputs[0])  # a NuSTAR cleaned event list, through the mission profile
    assert ev.attrs["instrument"] == "FPMA" and ev.sizes["event"] == 3000
    from astropy.io import fits

    h = fits.getheader(tmp_path / "bary.evt", "EVENTS")
    assert h["TIMEREF"] == "SOLARSYSTEM" and h["TIMESYS"] == "TDB"
    assert len(fits.getdata(tmp_path / "nu_AB.evt", "EVENTS")) == 6000
    args = {c["tool"]: c["argv"] for c in fake_tools.calls()}
    assert "refframe=ICRS" in args["barycorr"] and "ephem=JPLEPH.430" in args["barycorr"]
    assert "steminputs=nu30001001002" in args["nupipeline"]


def test_nicerl2_writing_inside_its_input_directory_is_skipped_on_rerun(fake_tools, tmp_path):
    # the default cldir <indir>/xti/event_cl (the work directory, with its logs) lies inside indir, the
    # task's input: what the task writes there must not change the input's checksum
    indir = tmp_path / "1012010102"
    (indir / "xti" / "event_uf").mkdir(parents=True)
    raw = indir / "xti" / "event_uf" / "ni1012010102_0mpu7_uf.evt"
    raw.write_bytes(b"raw events")
    t = heasoft.nicerl2(indir)
    assert [run(t).state for _ in range(3)] == ["done", "skipped", "skipped"]
    assert len(fake_tools.calls("nicerl2")) == 1
    raw.write_bytes(b"raw events, reprocessed")  # a change of what it reads still re-runs it
    assert run(t).state == "done"


def test_cli_run_any_tool(fake_tools, tmp_path, capsys, monkeypatch):
    from xcube.cli import main

    src = fake_tools.lib._write_generic(
        tmp_path / "ev.fits", {"TIME": np.arange(20.0), "PI": np.arange(20, dtype=np.int32)},
        {"TELESCOP": "NuSTAR", "INSTRUME": "FPMA", "TSTART": 0.0, "TSTOP": 20.0},
        [("GTI", {}, np.array([0.0]), np.array([20.0]))], None)
    argv = ["tools", "run", "ftselect", f"infile={src}[EVENTS]", f"outfile={tmp_path / 'o.fits'}",
            "expression=PI < 7", "--input", str(src), "--output", str(tmp_path / "o.fits"), "--workdir",
            str(tmp_path), "--name", "cli-select"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "cli-select: ftselect done" in out and len(list((tmp_path / "logs").glob("cli-select-*.log"))) == 1
    assert main(argv) == 0
    assert "up to date, ftselect not run" in capsys.readouterr().out
    monkeypatch.setenv("XCUBE_FAKE_FAIL", "ftselect")
    assert main(argv + ["--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "exit code 1" in err and "failing as asked" in err
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["tools", "run", "nupipeline", "indir=x", "--workdir", str(tmp_path)]) == 1
    assert "HEASoft" in capsys.readouterr().err


def test_cli_run_rechecks_files_named_in_parameters(fake_tools, tmp_path, capsys):
    """`xcube tools run` without --input: the file named by infile= is checksummed all the same, so the
    task re-runs after it changed instead of keeping a stale product."""
    from xcube.cli import main

    def events(n):
        fake_tools.lib._write_generic(
            tmp_path / "ev.fits", {"TIME": np.arange(float(n)), "PI": np.arange(n, dtype=np.int32)},
            {"TELESCOP": "NuSTAR", "INSTRUME": "FPMA", "TSTART": 0.0, "TSTOP": float(n)},
            [("GTI", {}, np.array([0.0]), np.array([float(n)]))], None)

    events(20)
    argv = ["tools", "run", "ftselect", "infile=ev.fits[EVENTS]", "outfile=o.fits", "expression=PI < 7",
            "--output", "o.fits", "--workdir", str(tmp_path), "--name", "sel"]
    assert main(argv) == 0 and "ftselect done" in capsys.readouterr().out
    assert main(argv) == 0 and "up to date" in capsys.readouterr().out
    events(5)
    assert main(argv) == 0 and "ftselect done" in capsys.readouterr().out
    from astropy.io import fits

    assert len(fits.getdata(tmp_path / "o.fits", "EVENTS")) == 5
    assert len(fake_tools.calls("ftselect")) == 2
