"""Survey building blocks, in process (no cluster): parameter grid, run ids,
observation resolution, run records and the status table, planning,
the per-observation task (errors, timeout, re-attempts) and the progress line."""
from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xcube.cli import main
from xcube.survey import parameter_grid, resolve_observations, run_id
from xcube.survey.params import SearchParams, energy_bands_from_flat
from xcube.survey.progress import SurveyProgress
from xcube.survey.runner import plan_survey
from xcube.survey.status import (
    COLUMNS,
    STATUS_FILE,
    clean_stale,
    read_run,
    read_status,
    rebuild_status,
    scan_runs,
    write_run,
    write_status,
)
from xcube.survey.task import LOCK_FILE, SurveyAborted, run_observation


class _Result:
    """Minimal stand-in for a search result (tests of the task mechanics only)."""

    def __init__(self, run_id, detections, summary):
        self.run_id, self.detections, self.summary = run_id, detections, summary

    def write(self, directory, overwrite=False, figures=True):
        d = Path(directory)
        d.mkdir(exist_ok=True)
        self.detections.to_csv(d / "detections.csv", index=False)
        (d / "figures.txt").write_text(str(figures))


def counting_search(events, time_bin=50.0, energy_band=(0.2, 12.0), sigma=3.0, size_arcsec=20.0, sleep=0.0):
    """One 'detection' at the pointing per run, carrying the number of events read;
    empty with a reason when the observation has no good time."""
    time.sleep(sleep)
    evs = events if isinstance(events, list) else [events]
    exposure = float(sum((e["gti_stop"] - e["gti_start"]).sum() for e in evs))
    rid = f"{evs[0].attrs['obs_id']}_0_{time_bin:g}_{energy_band[0]}_{energy_band[1]}"
    if exposure <= 0:
        return _Result(rid, pd.DataFrame({"ra": [], "dec": []}), {"reason": "no good time"})
    n = sum(int(e.sizes["event"]) for e in evs)
    det = pd.DataFrame({"ra": [evs[0].attrs["ra_pnt"]], "dec": [evs[0].attrs["dec_pnt"]], "counts": [float(n)],
                        "kind": ["peak"], "log10_bayes": [float(time_bin)], "run_id": [rid]})
    return _Result(rid, det, {"exposure": exposure, "n_bti": 0, "reason": ""})


def failing_search(events, time_bin=50.0, **kw):
    if time_bin == 50.0:
        raise ValueError("synthetic failure of the 50 s run")
    return counting_search(events, time_bin=time_bin, **kw)


PARAMS = parameter_grid([50.0, 200.0], [(0.2, 12.0)])


# ----------------------------------------------------------------- parameters
def test_param_grid_and_run_ids():
    grid = parameter_grid([5, 50, 200], energy_bands_from_flat([0.2, 2, 2, 12, 0.2, 12]))
    assert len(grid) == 9
    assert len({p.hash for p in grid}) == 9
    ids = [run_id("0765080801", p) for p in grid]
    assert "0765080801_0_50_0.2_12.0" in ids and "0765080801_0_5_2.0_12.0" in ids
    assert len(set(ids)) == 9
    # sigma / cell size / extra keywords get their own ids and hashes
    p = [SearchParams(50, (0.2, 12), 3), SearchParams(50, (0.2, 12), 5), SearchParams(50, (0.2, 12), 3, 10),
         SearchParams(50, (0.2, 12), 3, extra={"gti_only": True})]
    ids = [run_id("1", q) for q in p]
    assert ids[0] == "1_0_50_0.2_12.0" and ids[1] == "1_0_50_0.2_12.0_s5" and ids[2] == "1_0_50_0.2_12.0_c10"
    assert ids[3].startswith("1_0_50_0.2_12.0_h")
    assert len({q.hash for q in p}) == 4
    assert SearchParams(50.0, (0.2, 12.0)).hash == SearchParams(50, [0.2, 12]).hash  # stable across types
    assert p[3].kwargs()["gti_only"] is True
    with pytest.raises(ValueError, match="odd number"):
        energy_bands_from_flat([0.2, 2, 12])
    with pytest.raises(ValueError, match="emin < emax"):
        SearchParams(50, (2.0, 0.5))


# --------------------------------------------------------------- observations
def _archive(tmp_path, make_event_file):
    root = tmp_path / "archive"
    for obsid, inst in [("0100000001", "M1"), ("0100000001", "M2"), ("0100000002", "PN")]:
        f = make_event_file(n=50, header={"OBS_ID": obsid})
        d = root / obsid / "pps"
        d.mkdir(parents=True, exist_ok=True)
        f.rename(d / f"P{obsid}{inst}S001MIEVLI0000.FIT")
    (root / "0100000001" / "pps" / "P0100000001M1S001IMAGE_8000.FTZ").write_bytes(b"not an event list")
    (root / "0100000003").mkdir()
    return root


def test_resolve_observations_all_forms(tmp_path, make_event_file):
    root = _archive(tmp_path, make_event_file)
    lst = tmp_path / "obs.txt"
    lst.write_text("# survey list\n0100000001\n0100000002  # pn only\n0100000003\n0100000004\n")
    obs = resolve_observations(lst, archive=root)
    assert list(obs) == ["0100000001", "0100000002", "0100000003", "0100000004"]
    assert [f.name for f in obs["0100000001"]] == ["P0100000001M1S001MIEVLI0000.FIT", "P0100000001M2S001MIEVLI0000.FIT"]
    # an empty or missing obsid directory is kept, to fail in its task with the path in the message
    assert obs["0100000003"] == [root / "0100000003"] and obs["0100000004"] == [root / "0100000004"]
    # a directory and a list of files group by observation id
    by_dir = resolve_observations(root)
    assert list(by_dir) == ["0100000001", "0100000002"]
    files = [f for fs in by_dir.values() for f in fs]
    assert resolve_observations(files) == by_dir
    # OBS_ID from the header when the name says nothing; an unreadable file is its own observation
    plain = make_event_file(n=10, header={"OBS_ID": "0200000001"}, name="events_a.fits")
    broken = tmp_path / "broken.fits"
    broken.write_bytes(b"garbage")
    obs2 = resolve_observations([plain, broken])
    assert obs2 == {"0200000001": [plain], "broken": [broken]}
    with pytest.raises(FileNotFoundError, match="--archive"):
        resolve_observations(["0100000001"])
    with pytest.raises(FileNotFoundError, match="archive root"):
        resolve_observations(lst, archive=tmp_path / "nope")


def test_directory_takes_event_lists_observation_by_observation(tmp_path, make_event_file):
    """Named event lists win within their observation (a re-made copy stays out); an observation whose files
    are not named as event lists keeps its event files; light curves and GTI files are never taken."""
    from xcube.io.ogip import write_gti
    from xcube.survey.observations import event_files_in

    d = tmp_path / "mixed"
    d.mkdir()
    named = make_event_file(n=20, header={"OBS_ID": "0300000001"}, name="P0300000001M1S001MIEVLI0000.FIT")
    copy = make_event_file(n=20, header={"OBS_ID": "0300000001"}, name="m1_clean.fits")
    other = make_event_file(n=20, header={"OBS_ID": "10027"}, name="acis_repro.fits")
    for f in (named, copy, other):
        f.rename(d / f.name)
    lc = make_event_file(n=500, header={"OBS_ID": "10027"})
    assert main(["lc", str(lc), "--time-bin", "100", "-o", str(d / "acis_src.lc")]) == 0
    write_gti(d / "gti.fits", ([1.0e8], [1.0e8 + 10.0]))
    assert [f.name for f in event_files_in(d)] == ["P0300000001M1S001MIEVLI0000.FIT", "acis_repro.fits"]
    assert list(resolve_observations(d)) == ["0300000001", "10027"]


# ------------------------------------------------------------ records, status
def test_status_is_derived_from_run_records(tmp_path):
    out = tmp_path / "out"
    rec = dict(PARAMS[0].to_dict(), param_hash=PARAMS[0].hash, state="done", n_detections=2, wall_time=1.5)
    write_run(out, "0100000001", "r1", rec, writer=lambda d: (d / "detections.parquet").write_bytes(b"x"))
    # a survey killed after the rename but before writing status.parquet loses nothing
    assert not (out / STATUS_FILE).exists()
    df = rebuild_status(out)
    assert (out / STATUS_FILE).exists()
    assert list(df.columns) == list(COLUMNS)
    assert df[["obsid", "run_id", "state", "n_detections"]].values.tolist() == [["0100000001", "r1", "done", 2]]
    assert read_run(out / "0100000001" / "r1")["param_hash"] == PARAMS[0].hash
    # replacing a record keeps one row per run
    write_run(out, "0100000001", "r1", dict(rec, state="failed", n_detections=0), overwrite=True)
    with pytest.raises(FileExistsError):
        write_run(out, "0100000001", "r1", rec)
    df = rebuild_status(out)
    assert df["state"].tolist() == ["failed"]
    pd.testing.assert_frame_equal(read_status(out), df)
    # leftovers of interrupted writes are ignored by the scan and cleaned up
    (out / "0100000001" / ".r2.tmp-1234abcd").mkdir()
    (out / "0100000001" / ".r2.tmp-1234abcd" / "run.json").write_text("{}")
    (out / "0100000001" / "r3").mkdir()  # no record: not a finished run
    assert len(scan_runs(out)) == 1
    assert clean_stale(out) == 1
    assert not (out / "0100000001" / ".r2.tmp-1234abcd").exists()
    # status.parquet is replaced atomically: no temporary file remains
    write_status(out, df)
    assert sorted(p.name for p in out.iterdir()) == ["0100000001", STATUS_FILE]


def test_plan_skips_same_hash_and_retries_on_request(tmp_path):
    out = tmp_path / "out"
    obs = {"A": [], "B": []}
    base = dict(PARAMS[0].to_dict(), n_detections=0)
    write_run(out, "A", run_id("A", PARAMS[0]), dict(base, param_hash=PARAMS[0].hash, state="done"))
    write_run(out, "A", run_id("A", PARAMS[1]), dict(base, param_hash=PARAMS[1].hash, state="failed"))
    write_run(out, "B", run_id("B", PARAMS[0]), dict(base, param_hash="0000000000000000", state="done"))
    write_run(out, "B", run_id("B", PARAMS[1]), dict(base, param_hash=PARAMS[1].hash, state="skipped"))

    def ids(plan):
        return {k: [r for r, _ in v] for k, v in plan.items()}

    assert ids(plan_survey(obs, out, PARAMS)) == {"B": [run_id("B", PARAMS[0])]}  # hash changed
    assert ids(plan_survey(obs, out, PARAMS, retry_failed=True)) == {
        "A": [run_id("A", PARAMS[1])], "B": [run_id("B", PARAMS[0])]}
    assert sum(len(v) for v in plan_survey(obs, out, PARAMS, overwrite=True).values()) == 4


# ------------------------------------------------------------------- the task
def test_task_runs_all_parameter_sets_and_records_errors(tmp_path, make_event_file):
    out = tmp_path / "out"
    f = make_event_file(n=321, header={"OBS_ID": "0100000001"})
    plan = [(run_id("0100000001", p), p) for p in PARAMS]
    recs = run_observation("0100000001", [f], plan, out, token="t1", search=counting_search)
    assert [r["state"] for r in recs] == ["done", "done"]
    assert all(r["n_detections"] == 1 and r["open_time"] >= 0 and r["peak_rss_mb"] > 0 for r in recs)
    rd = out / "0100000001" / plan[0][0]
    assert sorted(p.name for p in rd.iterdir()) == ["detections.csv", "detections.parquet", "figures.txt",
                                                   "run.json", "summary.json"]
    assert (rd / "figures.txt").read_text() == "True"  # figures only for runs with detections by default
    assert pd.read_parquet(rd / "detections.parquet")["counts"].tolist() == [321.0]
    # one failing parameter set does not stop the others; the traceback is kept
    recs = run_observation("0100000001", [f], plan, out, token="t2", search=failing_search)
    states = {r["run_id"]: r for r in recs}
    bad = states[plan[0][0]]
    assert bad["state"] == "failed" and bad["error_class"] == "ValueError" and "50 s run" in bad["message"]
    assert "synthetic failure" in (out / bad["traceback_file"]).read_text()
    assert states[plan[1][0]]["state"] == "done"
    # a corrupt file fails every run of its observation, naming the file
    corrupt = tmp_path / "P0100000009M1S001MIEVLI0000.FIT"
    corrupt.write_bytes(b"SIMPLE  = T" + b" " * 100)
    recs = run_observation("0100000009", [corrupt], plan, out, token="t3", search=counting_search)
    assert {r["state"] for r in recs} == {"failed"}
    assert all(str(corrupt) in r["message"] for r in recs)
    # no good time: skipped with the search's reason
    empty = make_event_file(n=10, header={"OBS_ID": "0100000008"}, gti=([], []))
    recs = run_observation("0100000008", [empty], plan, out, token="t4", search=counting_search)
    assert [(r["state"], r["message"]) for r in recs] == [("skipped", "no good time")] * 2


def test_task_reattempt_keeps_runs_of_the_same_survey(tmp_path, make_event_file):
    out = tmp_path / "out"
    f = make_event_file(n=100, header={"OBS_ID": "0100000001"})
    plan = [(run_id("0100000001", p), p) for p in PARAMS]
    first = run_observation("0100000001", [f], plan[:1], out, token="tok", search=counting_search)
    mtime = (out / "0100000001" / plan[0][0] / "run.json").stat().st_mtime_ns
    again = run_observation("0100000001", [f], plan, out, token="tok", search=counting_search)
    assert again[0] == first[0]  # not recomputed by the re-attempt of the same survey's task
    assert (out / "0100000001" / plan[0][0] / "run.json").stat().st_mtime_ns == mtime
    assert again[1]["state"] == "done"


def test_task_timeout_records_unfinished_runs(tmp_path, make_event_file):
    from functools import partial

    out = tmp_path / "out"
    f = make_event_file(n=100, header={"OBS_ID": "0100000001"})
    plan = [(run_id("0100000001", p), p) for p in parameter_grid([50.0, 100.0, 200.0], [(0.2, 12.0)])]
    t0 = time.perf_counter()
    recs = run_observation("0100000001", [f], plan, out, token="t", timeout=1.0,
                           search=partial(counting_search, sleep=0.6))
    assert time.perf_counter() - t0 < 1.5  # the task returns at its deadline
    assert [r["state"] for r in recs] == ["done", "timeout", "timeout"]
    assert "timeout of 1 s" in recs[1]["message"] and recs[1]["error_class"] == "SurveyTimeout"
    time.sleep(0.5)  # the interrupted work thread must not commit anything afterwards
    df = rebuild_status(out)
    assert dict(zip(df["run_id"], df["state"])) == {r["run_id"]: r["state"] for r in recs}
    assert not [p for p in (out / "0100000001").iterdir() if p.name.startswith(".")]


def test_stale_task_of_a_replaced_survey_stops(tmp_path, make_event_file):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).write_text(json.dumps({"token": "newer"}))
    f = make_event_file(n=10, header={"OBS_ID": "0100000001"})
    with pytest.raises(SurveyAborted, match="newer"):
        run_observation("0100000001", [f], [(run_id("0100000001", PARAMS[0]), PARAMS[0])], out, token="older",
                        search=counting_search)
    assert not (out / "0100000001").exists() or not any((out / "0100000001").iterdir())


def test_progress_line_counts_observations():
    s = io.StringIO()
    bar = SurveyProgress(3, stream=s, interval=0.0)
    bar.update([{"state": "done"}, {"state": "skipped"}])
    bar.update([{"state": "done"}, {"state": "failed"}])
    line = bar.line()
    assert "2/3 observations: done 1, failed 1, remaining 1" in line
    assert "runs: done 2 failed 1 skipped 1 timeout 0" in line
    assert s.getvalue().count("\n") == 2
    assert np.isfinite(bar.t0)


def _needs_jobqueue():
    """Skip without dask-jobqueue, without importing it here: importing it replaces the process's SIGINT
    handler by sys.exit() (engine.jobqueue_cluster imports it and puts the handler back); an import here
    left every later test of the session with that handler."""
    import importlib.util

    if importlib.util.find_spec("dask_jobqueue") is None:
        pytest.skip("dask-jobqueue is not installed")


@pytest.mark.parametrize("kind", ["slurm", "pbs"])
def test_jobqueue_cluster_job_script(kind, tmp_path, monkeypatch):
    _needs_jobqueue()
    from xcube.survey.engine import SUBMIT_COMMANDS, jobqueue_cluster

    fake = tmp_path / SUBMIT_COMMANDS[kind]  # the job script is made without submitting; the command must exist
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    jq = jobqueue_cluster(kind, queue="compute", walltime="02:00:00", cores=8, memory="32GB", processes=8,
                          account="xray", dashboard_address=None)
    try:
        script = jq.job_script()
    finally:
        jq.close()
    assert "compute" in script and "02:00:00" in script and "xray" in script
    assert "--nworkers 8" in script and "--nthreads 1" in script
    with pytest.raises(ValueError, match="slurm, pbs"):
        jobqueue_cluster("sge")


def test_a_batch_system_that_accepts_no_job_is_an_error(tmp_path, monkeypatch, capfd):
    """sbatch installed but the controller down: dask-jobqueue retried the
    submission for ever and the survey waited for workers that never came."""
    _needs_jobqueue()
    from xcube.survey import engine

    fake = tmp_path / "sbatch"
    fake.write_text("#!/bin/sh\necho 'sbatch: error: Batch job submission failed: Unable to contact slurm "
                    "controller (connect failure)' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(engine, "SUBMIT_TIMEOUT", 3.0)
    with pytest.raises(ConnectionError, match=r"--cluster slurm: sbatch accepted no worker job in 3 s .*sinfo") \
            as err:
        engine.make_client(cluster="slurm", jobs=1, cores=1, memory="1GB", dashboard_address=None)
    # the submit command's own error in one line, not the tracebacks of its retries (sweep p25)
    assert "Unable to contact slurm controller (connect failure)" in str(err.value)
    assert "Traceback" not in capfd.readouterr().err


def test_task_restores_the_dask_scheduler(tmp_path, make_event_file):
    import dask

    seen = []

    def search(events, **kw):
        seen.append(dask.config.get("scheduler", None))
        return counting_search(events, **kw)

    f = make_event_file(n=10, header={"OBS_ID": "0100000001"})
    with dask.config.set(scheduler="threads"):
        run_observation("0100000001", [f], [(run_id("0100000001", PARAMS[0]), PARAMS[0])], tmp_path, token="t",
                        search=search)
        assert dask.config.get("scheduler") == "threads"
    assert seen == ["synchronous"]


def test_task_event_cache_is_temporary_unless_given(tmp_path, make_event_file, monkeypatch):
    import tempfile

    f = make_event_file(n=200, header={"OBS_ID": "0100000001"}, name="P0100000001M1S001MIEVLI0000.FTZ", gzip=True)
    plan = [(run_id("0100000001", p), p) for p in PARAMS]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    recs = run_observation("0100000001", [f], plan, tmp_path / "out", token="t", search=counting_search)
    assert [r["state"] for r in recs] == ["done", "done"]
    assert list(scratch.iterdir()) == []  # the converted copy went with the task's temporary cache
    keep = tmp_path / "cache"
    run_observation("0100000001", [f], plan, tmp_path / "out2", token="t", search=counting_search,
                    open_kwargs={"cache": str(keep)})
    assert [p.suffix for p in keep.iterdir()] == [".zarr"]


def test_param_grid_is_a_deprecated_alias():
    from xcube.survey import param_grid

    with pytest.warns(DeprecationWarning, match="parameter_grid"):
        old = param_grid([50.0, 200.0], [(0.2, 2.0), (2.0, 12.0)], sigmas=[3.0, 5.0])
    assert old == parameter_grid([50.0, 200.0], [(0.2, 2.0), (2.0, 12.0)], [3.0, 5.0]) and len(old) == 8


def test_submit_error_filter_is_installed_once_per_process():
    """Each --cluster client used to add one more logging filter; now one
    filter serves every cluster of the process, its first line cleared."""
    import logging

    from xcube.survey import engine

    a = engine._SubmitErrors.install()
    a.first = "sbatch: error: earlier cluster"
    b = engine._SubmitErrors.install()
    assert a is b and b.first is None
    for name in ("tornado.application", "asyncio", "distributed.deploy.spec"):
        assert sum(isinstance(f, engine._SubmitErrors) for f in logging.getLogger(name).filters) == 1


def test_a_band_the_instrument_has_no_events_in_is_skipped_not_failed(tmp_path, make_event_file):
    """Sweep p27: a grid's 0.2-2 keV runs of a NuSTAR observation (3-79 keV)
    were 'failed', so every survey exited 1 and --retry-failed failed them again."""
    import xcube

    f = make_event_file(n=500, header={"OBS_ID": "0100000001"})
    plan = [(run_id("0100000001", p), p) for p in parameter_grid([1000.0], [(0.2, 12.0), (100.0, 200.0)])]
    recs = {r["energy_band"] if "energy_band" in r else r["run_id"]: r for r in
            run_observation("0100000001", [f], plan, tmp_path, token="t", search=xcube.search_transients)}
    states = sorted(r["state"] for r in recs.values())
    assert states == ["done", "skipped"], recs
    skipped = next(r for r in recs.values() if r["state"] == "skipped")
    assert "outside" in skipped["message"] and skipped["error_class"] == "BandOutsideInstrument"
