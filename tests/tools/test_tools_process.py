"""``xcube process`` (issue #16): a two-observation archive through every step
on the survey's Dask engine, the driver killed with SIGKILL and resumed; the
status table holds every step once. Against the fake SAS tasks."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import xcube
from xcube.survey.status import scan_runs
from xcube.tools.process import COLUMNS, find_odfs, options_hash, plan_process, process_one

OBSIDS = ("0123456789", "0987654321")
STEPS = ["events", "clean", "images", "spectra"]


@pytest.fixture
def archive(fake_tools, tmp_path):
    root = tmp_path / "archive"
    for obs, rev in zip(OBSIDS, ("0123", "0456")):
        sub = root / obs / ("odf" if obs.startswith("09") else "")  # both layouts: ROOT/<obsid>/ and ROOT/<obsid>/odf/
        fake_tools.lib.make_xmm_odf(sub, obs_id=obs, rev=rev, exposures=(("PN", "S003", "SCIENCE"),))
    (tmp_path / "obs.txt").write_text("# two observations\n" + "\n".join(OBSIDS) + "\n")
    return tmp_path


def _argv(archive: Path) -> list[str]:
    return ["process", str(archive / "obs.txt"), "--archive", str(archive / "archive"), "--out",
            str(archive / "out"), "--steps", ",".join(STEPS), "--instruments", "pn", "--bands", "0.5", "2",
            "--workers", "1", "--tool-workers", "2", "--dashboard-address", ":0", "-q"]


def _leftovers(out: Path) -> list[str]:
    return [str(p) for p in out.rglob("*") if ".tmp-" in p.name or ".keep-" in p.name]


def test_archive_killed_and_resumed_every_step_once(archive, fake_tools, capsys):
    out = archive / "out"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "xcube"), *_argv(archive)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None and not list(out.glob("*/step-events/run.json")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    log = proc.communicate()[0].decode(errors="replace")
    assert proc.returncode == -signal.SIGKILL, log
    before = scan_runs(out, COLUMNS)
    assert 1 <= len(before) < 2 * len(STEPS), log  # killed mid-run
    assert (out / ".survey.lock").exists()  # the killed driver could not clean up (the kernel freed the lock)
    time.sleep(1.5)  # its LocalCluster workers notice their parent died and exit
    done_before = set(before.loc[before["step"] == "events", "obsid"])

    from xcube.cli import main

    fake_tools.reset_calls()
    assert main(_argv(archive)) == 0
    printed = capsys.readouterr().out
    st = scan_runs(out, COLUMNS)
    assert len(st) == 2 * len(STEPS) and not st.duplicated(["obsid", "step"]).any()
    assert set(st["state"]) == {"done"} and set(st["obsid"]) == set(OBSIDS) and set(st["step"]) == set(STEPS)
    assert set(st["sas_version"]) == {"21.0.0"} and (st["n_tasks"] > 0).all()
    assert (st.loc[st["step"] == "spectra", "n_tasks"] == 7).all()  # evselect x2, backscale x2, rmf, arf, group
    pd.testing.assert_frame_equal(pd.read_parquet(out / "status.parquet"), st)
    assert all(line in printed for line in ("0123456789   done  done   done    done",
                                             "0987654321   done  done   done    done"))
    assert not (out / ".survey.lock").exists() and _leftovers(out) == []
    for obs in OBSIDS:
        spec = xcube.read_spectrum(out / obs / "spectra" / f"P{obs}PN_grp.pha")
        assert spec["counts"].sum() > 100 and spec.attrs["respfile"].endswith(f"P{obs}PN.rmf")
        assert (out / obs / "images" / f"P{obs}PN_0.5-2keV_expmap.fits").exists()
    # what was finished before the kill was not made again: no calibration set-up for those observations
    assert done_before and not [c for c in fake_tools.calls("cifbuild") if Path(c["cwd"]).name in done_before]

    # everything recorded: a third run submits nothing and calls no tool
    fake_tools.reset_calls()
    assert main(_argv(archive)) == 0
    assert fake_tools.calls() == []
    pd.testing.assert_frame_equal(scan_runs(out, COLUMNS), st)


def test_find_odfs_and_plan(archive, tmp_path):
    odfs = find_odfs(archive / "obs.txt", archive / "archive")
    assert odfs == {"0123456789": archive / "archive" / "0123456789",
                    "0987654321": archive / "archive" / "0987654321" / "odf"}
    opts = {"instruments": ["pn"], "group_min": 25}
    done = pd.DataFrame([{"obsid": "0123456789", "step": s, "param_hash": options_hash(s, opts), "state": st}
                         for s, st in (("events", "done"), ("clean", "failed"))])
    assert plan_process(odfs, ["clean"], opts, done) == {"0987654321": ["events", "clean"]}
    assert plan_process(odfs, ["clean"], opts, done, retry_failed=True)["0123456789"] == ["clean"]
    assert plan_process(odfs, ["images"], opts, done)["0123456789"] == ["images"]
    assert plan_process(odfs, ["clean"], dict(opts, group_min=5), done)["0123456789"] == ["events", "clean"]
    with pytest.raises(ValueError, match="choose from"):
        plan_process(odfs, ["nope"], opts, done)
    # an observation id that is a path leading out of the archive becomes one harmless name
    assert list(find_odfs(["../../x"], archive / "archive")) == ["x"]
    # a list line with a space that names an archive entry is kept whole, from any current directory
    (archive / "archive" / "obs space" / "odf").mkdir(parents=True)
    (archive / "archive" / "obs space" / "odf" / "0001_0123_SUM.ASC").write_text("")
    (tmp_path / "space.txt").write_text("obs space\n")
    assert list(find_odfs(tmp_path / "space.txt", archive / "archive")) == ["obs_space"]


def test_missing_odf_is_recorded_per_step(fake_tools, tmp_path):
    records = process_one("0000000001", tmp_path / "nowhere", tmp_path / "out", ["events", "clean"],
                          {"instruments": ["pn"]}, "tok")
    assert [r["step"] for r in records] == ["events", "clean"]
    assert all(r["state"] == "failed" and "nowhere" in r["message"] for r in records)
    st = scan_runs(tmp_path / "out", COLUMNS)
    assert list(st["run_id"]) == ["step-clean", "step-events"] and set(st["error_class"]) == {"FileNotFoundError"}


def test_second_driver_on_the_same_output_is_refused(archive, fake_tools):
    from xcube.survey.lock import SurveyLock
    from xcube.tools.process import process_archive

    out = archive / "locked"
    out.mkdir()
    held = SurveyLock(out, "other-driver").acquire()
    try:
        with pytest.raises(FileExistsError, match="other-driver"):
            process_archive(OBSIDS, out, archive=archive, steps=["events"], progress=False)
    finally:
        held.release()


def test_a_mistyped_list_or_an_option_out_of_range_is_refused_before_any_work(archive, tmp_path, monkeypatch):
    """`xcube process nope.txt` took the missing list as an observation id: it started Dask and recorded a
    failed ODF; bands, radii and timeouts out of range were only found by SAS, after the events step."""
    import xcube.survey.engine as engine
    from xcube.tools.process import check_options, process_archive

    monkeypatch.setattr(engine, "engine_of", lambda *a, **k: pytest.fail("Dask started"))
    with pytest.raises(FileNotFoundError, match=r"nope\.txt: no such observation list or ODF directory"):
        process_archive(tmp_path / "nope.txt", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="nope.lst: no such observation list"):
        find_odfs("nope.lst", archive / "archive")
    assert not (tmp_path / "out").exists()
    assert list(find_odfs("0999999999", archive / "archive")) == ["0999999999"]  # an id: kept, its task fails
    for bad, match in (({"energy_band": (5.0, 1.0)}, "energy_band"), ({"energy_band": (-1.0, 3.0)}, "EMIN"),
                       ({"energy_band": (100.0, 200.0)}, "20.48"), ({"image_bands": [(0.5, float("nan"))]}, "bands"),
                       ({"source_radius": -3.0}, "src-radius"), ({"background_radii": (120.0, 60.0)}, "bkg-radii"),
                       ({"source": (400.0, 0.0)}, "RA"), ({"timeout": 0.0}, "tool-timeout"),
                       ({"tool_workers": 0}, "tool_workers"), ({"group_min": 2.5}, "group_min"),
                       ({"tool_workers": float("nan")}, "tool_workers"), ({"source": (1.0,)}, "source"),
                       ({"background_radii": "wide"}, "bkg-radii"), ({"source_radius": None}, "src-radius"),
                       ({"timeout": "soon"}, "tool-timeout")):
        with pytest.raises(ValueError, match=match):
            check_options(bad)
        with pytest.raises(ValueError, match=match):
            process_archive(archive / "obs.txt", tmp_path / "out", archive=archive / "archive", options=bad)
    check_options({"energy_band": (0.2, 15.0), "image_bands": [(0.5, 2.0)], "source_radius": 30.0,
                   "background_radii": (0.0, 120.0), "group_min": 25, "timeout": 600.0})
    check_options({"group_min": 0})  # no grouping, as --group-min 0


def test_steps_after_a_failed_step_are_failed_and_redone(fake_tools, tmp_path, monkeypatch):
    """Sweep p25: with emchain failing, clean/images/spectra were recorded done (MOS1 never cleaned) and a
    --retry-failed run redid events only, so the MOS1 clean list was never made."""
    from xcube.cli import main

    fake_tools.lib.make_xmm_odf(tmp_path / "archive" / "0123456789",
                                exposures=(("PN", "S003", "SCIENCE"), ("M1", "S001", "SCIENCE")))
    (tmp_path / "obs.txt").write_text("0123456789\n")
    argv = ["process", str(tmp_path / "obs.txt"), "--archive", str(tmp_path / "archive"), "--out",
            str(tmp_path / "out"), "--steps", "events,clean", "--instruments", "pn", "mos1", "--workers", "1",
            "--dashboard-address", ":0", "-q"]
    monkeypatch.setenv("XCUBE_FAKE_FAIL", "emchain")
    assert main(argv) == 1
    st = scan_runs(tmp_path / "out", COLUMNS).set_index("step")
    assert st.loc["events", "state"] == "failed" and st.loc["clean", "state"] == "failed"
    assert st.loc["clean", "error_class"] == "UpstreamFailed" and "step events failed" in st.loc["clean", "message"]
    made = json.loads(st.loc["events", "products"])  # the chains that finished (the events step's products were {})
    assert list(made["events"]) == ["pn-S003"] and Path(made["events"]["pn-S003"]).exists()
    monkeypatch.delenv("XCUBE_FAKE_FAIL")
    assert main([*argv, "--retry-failed"]) == 0
    st = scan_runs(tmp_path / "out", COLUMNS).set_index("step")
    assert set(st["state"]) == {"done"}
    made = json.loads(st.loc["events", "products"])["events"]
    assert sorted(made) == ["mos1-S001", "pn-S003"] and all(Path(v).exists() for v in made.values())
    assert (tmp_path / "out" / "0123456789" / "P0123456789M1_clean.fits").exists()


def test_a_failed_step_marks_only_the_steps_that_need_it(fake_tools, tmp_path, monkeypatch):
    """Review p25: a failed images step made the spectra step, which does not need it, 'UpstreamFailed'."""
    from xcube.cli import main

    fake_tools.lib.make_xmm_odf(tmp_path / "archive" / "0123456789", exposures=(("PN", "S003", "SCIENCE"),))
    (tmp_path / "obs.txt").write_text("0123456789\n")
    monkeypatch.setenv("XCUBE_FAKE_FAIL", "eexpmap")
    assert main(["process", str(tmp_path / "obs.txt"), "--archive", str(tmp_path / "archive"), "--out",
                 str(tmp_path / "out"), "--steps", ",".join(STEPS), "--instruments", "pn", "--bands", "0.5", "2",
                 "--workers", "1", "--dashboard-address", ":0", "-q"]) == 1
    st = scan_runs(tmp_path / "out", COLUMNS).set_index("step")
    assert st.loc["images", "state"] == "failed" and st.loc["images", "error_class"] != "UpstreamFailed"
    assert st.loc["spectra", "state"] == "done"


def test_a_failed_steps_message_names_its_whole_log(tmp_path):
    """Sweep p28: each task's message was cut to 200 characters, so a log under a long output path was
    cut off halfway (and a timed-out task's message named none): the log is now always given whole."""
    from xcube.tools.process import _step_record

    log = tmp_path / ("long_directory_name_" * 8) / "logs" / "espfilt-0123456789-PNS003-20261208T003600-27178d.log"
    table = pd.DataFrame([
        {"task": "espfilt-PNS003", "state": "failed", "error_class": "ToolError", "wall_time": 1.0, "log": str(log),
         "message": f"espfilt-PNS003: espfilt failed with exit code 1; see {log}"},
        {"task": "evselect-PNS003", "state": "timeout", "error_class": "ToolTimeout", "wall_time": 9.0,
         "log": str(log.with_name("evselect.log")), "message": "evselect exceeded the timeout " + "x" * 400}])
    rec = _step_record("clean", table, base={}, started="t", products={})
    assert rec["state"] == "failed" and rec["n_failed"] == 2
    assert f"(log: {log})" in rec["message"] and f"(log: {log.with_name('evselect.log')})" in rec["message"]
    assert "failed with exit code 1" in rec["message"] and "..." in rec["message"]
