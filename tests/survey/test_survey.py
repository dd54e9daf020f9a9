"""Surveys on a dask.distributed LocalCluster: same catalogue as running the
observations one by one, bad observations recorded with reasons, resuming
after SIGKILL, workers that die, the CLI."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import xcube
from xcube.survey import build_catalogue, cluster_detections, parameter_grid, read_catalogue_dir, run, run_id
from xcube.survey.engine import make_client
from xcube.survey.status import read_status, scan_runs

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore:.*leaked semaphore.*")

TESTS = Path(__file__).resolve().parent
PARAMS = parameter_grid([500.0, 2000.0], [(0.2, 12.0)])
GOOD = [f"03000000{i:02d}" for i in range(8)]
CORRUPT, NO_GTI = "0300000098", "0300000099"
RA, DEC = 150.0, 2.2


def search(events, **kw):
    """The transient search (what a survey runs by default)."""
    return xcube.search_transients(events, **kw)


def slow_search(events, hold_pid=None, **kw):
    """The search, slowed down so that a survey can be killed mid-run: the
    k-th observation of the list takes 0.5 + 2 k s, so that the observations
    searched side by side on the cluster's workers finish seconds apart; with
    ``hold_pid`` (the survey's process), the fourth one is held until that
    process is gone (at most 120 s), so the survey cannot finish before the
    test kills it, however slow the machine."""
    obsid = str(events.attrs.get("obs_id", ""))
    time.sleep(0.5 + 2.0 * (GOOD.index(obsid) if obsid in GOOD else 0))
    if hold_pid is not None and obsid == GOOD[3]:
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline:
            try:
                os.kill(hold_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    return search(events, **kw)


def killing_search(events, marker_dir=None, **kw):
    """Kills its own worker process for observation 0300000201 (leaving one file per attempt)."""
    obsid = str(events.attrs["obs_id"])
    if obsid == "0300000201":
        (Path(marker_dir) / f"attempt-{os.getpid()}").touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return search(events, **kw)


def _simulate(root: Path, obsid: str, seed: int, camera: str = "M1", **kw) -> Path:
    import xcube.simulate as sim

    path = root / obsid / f"P{obsid}{camera}S001MIEVLI0000.FIT"
    sources = [dict(ra=RA + 0.05, dec=DEC, rate=0.05), dict(ra=RA - 0.04, dec=DEC + 0.03, rate=0.03)]
    flare = dict(amplitude=0.5, width=150.0, t_peak=3000.0 + 500 * (seed % 5),
                 ra=RA + 0.01 * (seed % 3), dec=DEC - 0.02)
    sim.event_list(
        {"M1": "xmm-mos1", "M2": "xmm-mos2"}[camera],
        duration=10_000.0,
        sources=sources,
        soft_protons=0,
        flares=[flare],
        ra_pnt=RA,
        dec_pnt=DEC,
        obs_id=obsid,
        seed=seed,
        path=path,
        **kw,
    )
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """ROOT/<obsid>/ with 8 good observations (the last with two cameras, MOS1 and
    MOS2), a corrupt file, a file with no good time."""
    from xcube.io.write_events import write_events_fits

    root = tmp_path_factory.mktemp("archive")
    for i, obsid in enumerate(GOOD):
        _simulate(root, obsid, seed=i)
    _simulate(root, GOOD[-1], seed=50, camera="M2")
    bad = root / CORRUPT / f"P{CORRUPT}M1S001MIEVLI0000.FIT"
    bad.parent.mkdir()
    good = (root / GOOD[0] / f"P{GOOD[0]}M1S001MIEVLI0000.FIT").read_bytes()
    bad.write_bytes(good[: len(good) // 2])  # truncated: header fine, data cut short
    ev = xcube.open_events(root / GOOD[1] / f"P{GOOD[1]}M1S001MIEVLI0000.FIT")
    cols = {k.upper(): ev[k].values for k in ("time", "x", "y", "pi", "pattern", "flag", "ccdnr")}
    header = {"TELESCOP": "XMM", "INSTRUME": "EMOS1", "OBS_ID": NO_GTI, "MJDREF": 50814.0, "TIMESYS": "TT",
              "TSTART": float(ev.attrs["tstart"]), "TSTOP": float(ev.attrs["tstop"]), "TIMEZERO": 0.0,
              "DATAMODE": "IMAGING", "SUBMODE": "PrimeFullWindow", "RA_PNT": RA, "DEC_PNT": DEC, "PA_PNT": 0.0}
    wcs = {ax: {"ctype": ev.attrs[f"CTYPE{i}"], "crval": ev.attrs[f"CRVAL{i}"], "crpix": ev.attrs[f"CRPIX{i}"],
                "cdelt": ev.attrs[f"CDELT{i}"]} for i, ax in ((1, "X"), (2, "Y"))}
    write_events_fits(root / NO_GTI / f"P{NO_GTI}M1S001MIEVLI0000.FIT", cols, gti=([], []), header=header, wcs=wcs)
    lst = root / "obsids.txt"
    lst.write_text("\n".join(GOOD + [CORRUPT, NO_GTI]) + "\n")
    (root / "four.txt").write_text("\n".join(GOOD[:4]) + "\n")
    return root


@pytest.fixture(scope="module")
def client():
    """One LocalCluster of 2 single-threaded workers for the module; a task may
    lose its worker once (allowed-failures = retries = 1)."""
    c, close = make_client(workers=2, threads=1, memory_limit="3GB", retries=1, dashboard_address=":0")
    yield c
    close()


@pytest.fixture(scope="module")
def reference(archive):
    """The good observations searched one by one, in this process (not on the
    module's cluster, which would otherwise be dask's default scheduler here)."""
    import dask

    frames = []
    for obsid in GOOD:
        evs = [xcube.open_events(f) for f in sorted((archive / obsid).glob("*EVLI*"))]
        ev = evs[0] if len(evs) == 1 else evs  # the cameras of one observation are searched together
        for p in PARAMS:
            with dask.config.set(scheduler="synchronous"):
                det = search(ev, **p.kwargs()).detections.drop(columns=["run_id"], errors="ignore")
            det.insert(0, "run_id", run_id(obsid, p))
            det.insert(0, "obsid", obsid)
            frames.append(det)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def survey(archive, client, tmp_path_factory):
    out = tmp_path_factory.mktemp("survey") / "out"
    res = run(archive / "obsids.txt", out, PARAMS, archive=archive, compute=client, search=search, progress=False,
              figures="none")
    return res


def _key(df):
    cols = [c for c in ("obsid", "run_id", "t_peak", "ra", "dec") if c in df.columns]
    return df.sort_values(cols).reset_index(drop=True)


def _same_detections(catalogue_det, reference):
    assert len(catalogue_det) == len(reference)
    a, b = _key(catalogue_det), _key(reference)
    assert a["obsid"].tolist() == b["obsid"].tolist() and a["run_id"].tolist() == b["run_id"].tolist()
    for col in [c for c in ("ra", "dec", "t_start", "t_stop", "t_peak", "counts", "expected", "log10_bayes")
                if c in b.columns]:
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=1e-12, atol=0, err_msg=col)
    if "kind" in b:
        assert a["kind"].tolist() == b["kind"].tolist()


def test_survey_gives_the_catalogue_of_one_by_one(survey, reference):
    assert len(reference) > 0
    cat = read_catalogue_dir(survey.out)
    _same_detections(cat.detections, reference)
    _, ref_sources = cluster_detections(reference)
    cols = ["name", "ra", "dec", "n_detections", "n_runs", "n_observations"]
    pd.testing.assert_frame_equal(cat.sources[cols].reset_index(drop=True), ref_sources[cols].reset_index(drop=True),
                                  check_dtype=False)
    # the catalogue joins the run parameters, and is also written as FITS
    assert {"time_bin", "emin", "emax", "sigma", "param_hash", "source_id"} <= set(cat.detections.columns)
    from astropy.table import Table

    assert len(Table.read(cat.directory / "detections.fits")) == len(reference)
    assert len(Table.read(cat.directory / "sources.fits")) == len(ref_sources)
    assert (cat.directory / "sources.reg").read_text().count("circle(") == len(ref_sources)


def test_bad_observations_are_recorded_and_the_rest_complete(survey, archive):
    st = survey.status
    assert len(st) == 10 * len(PARAMS) and not st.duplicated(["obsid", "run_id"]).any()
    pd.testing.assert_frame_equal(read_status(survey.out), st)
    by_obs = {o: set(map(str, g)) for o, g in st.groupby("obsid")["state"]}
    assert all(by_obs[o] == {"done"} for o in GOOD)
    assert by_obs[CORRUPT] == {"failed"} and by_obs[NO_GTI] == {"skipped"}
    bad = st[st.obsid == CORRUPT].iloc[0]
    assert CORRUPT in bad["message"] and bad["error_class"]
    assert (survey.out / bad["traceback_file"]).read_text().strip()
    skipped = st[st.obsid == NO_GTI].iloc[0]
    assert "good time" in skipped["message"].lower()
    assert len(json.loads(st[st.obsid == GOOD[-1]]["files"].iloc[0])) == 2  # two cameras, one task
    done = st[st.state == "done"]
    assert (done["wall_time"] > 0).all() and (done["peak_rss_mb"] > 50).all() and (done["cpu_time"] > 0).all()
    assert (done["exposure"] > 0).all() and (done["expected_false_alarms"] > 0).all()  # from the search summary
    assert (done["xcube_version"] == xcube.__version__).all()
    assert done["n_detections"].sum() == len(read_catalogue_dir(survey.out).detections)


def test_rerun_skips_finished_runs_and_retry_failed_redoes_failures(survey, archive, client):
    out = survey.out
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*/*/run.json")}
    again = run(archive / "obsids.txt", out, PARAMS, archive=archive, compute=client, search=search, progress=False)
    assert again.n_runs == 0 and again.n_observations == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/*/run.json")} == mtimes
    retried = run(archive / "obsids.txt", out, PARAMS, archive=archive, compute=client, search=search,
                  progress=False, retry_failed=True)
    assert retried.n_observations == 1 and retried.n_runs == len(PARAMS)  # only the corrupt observation
    changed = [p for p, m in mtimes.items() if p.stat().st_mtime_ns != m]
    assert sorted({p.parent.parent.name for p in changed}) == [CORRUPT]
    pd.testing.assert_frame_equal(retried.status.drop(columns=["token", "started", "finished", "wall_time",
                                                              "open_time", "peak_rss_mb", "worker"]),
                                  survey.status.drop(columns=["token", "started", "finished", "wall_time",
                                                              "open_time", "peak_rss_mb", "worker"]))


def test_overwrite_recomputes_and_new_parameters_add_runs(archive, client, tmp_path):
    obs = [archive / GOOD[0]]
    first = run(obs, tmp_path, PARAMS[:1], compute=client, search=search, progress=False, catalogue=False)
    assert first.n_runs == 1
    token = set(first.status["token"])
    both = run(obs, tmp_path, PARAMS, compute=client, search=search, progress=False, catalogue=False)
    assert both.n_runs == 1 and len(both.status) == 2  # only the new parameter set ran
    over = run(obs, tmp_path, PARAMS, compute=client, search=search, progress=False, overwrite=True)
    assert over.n_runs == 2 and len(over.status) == 2 and not set(over.status["token"]) & token
    assert over.catalogue == tmp_path / "catalogue"
    # by default a run with detections gets the search's figures, tables and regions
    rd = tmp_path / GOOD[0] / run_id(GOOD[0], PARAMS[0])
    assert over.status["n_detections"].iloc[0] > 0
    assert {"detections.png", "detections.csv", "detections.parquet", "detections.reg", "summary.json",
            "run.json"} <= {p.name for p in rd.iterdir()}


def test_kill_and_resume(archive, client, reference, tmp_path):
    """SIGKILL a survey process mid-run, resume: every run exactly once, catalogue complete."""
    out = tmp_path / "out"
    script = tmp_path / "survey.py"
    script.write_text(textwrap.dedent(f"""
        import functools, os, sys
        sys.path.insert(0, {str(TESTS)!r})
        import test_survey as t
        from xcube.survey import Compute, run
        if __name__ == "__main__":
            run({str(archive / 'four.txt')!r}, {str(out)!r}, t.PARAMS, archive={str(archive)!r},
                compute=Compute(scheduler={client.scheduler.address!r}),
                search=functools.partial(t.slow_search, hold_pid=os.getpid()), progress=False, figures="none")
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    total = 4 * len(PARAMS)
    deadline = time.monotonic() + 300  # (a loaded CI machine)
    n = 0
    while time.monotonic() < deadline and proc.poll() is None:
        # committed runs only: pathlib's glob also matches a run being written, out/<obsid>/.<run_id>.tmp-*/
        n = len([p for p in out.glob("*/*/run.json") if not p.parent.name.startswith(".")])
        if n >= 2:
            break
        time.sleep(0.02)
    # the catalogue can be built from the finished runs while the survey writes more
    before = scan_runs(out)
    partial_cat = build_catalogue(out)
    done = int((before["state"] == "done").sum())
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    log = proc.communicate()[0].decode(errors="replace")
    states = before[["obsid", "run_id", "state", "error_class", "message"]].to_string()
    assert running and done >= 2 and len(partial_cat.runs) >= done, f"{n} runs, {states}; log:\n{log}"
    assert proc.returncode == -signal.SIGKILL, log
    assert 2 <= n < total, f"survey not killed mid-run ({n} of {total} runs); log:\n{log}"
    assert (out / ".survey.lock").exists()  # the killed survey left its lock behind
    res = run(archive / "four.txt", out, PARAMS, archive=archive, compute=client, search=search, progress=False,
              figures="none")
    assert 0 < res.n_runs <= total - 2
    st = scan_runs(out)
    assert len(st) == total and not st.duplicated(["obsid", "run_id"]).any()
    pd.testing.assert_frame_equal(res.status, st)
    assert set(st["state"]) == {"done"}
    assert not [p for p in out.glob("*/.*")]  # no temporary directories left
    assert not (out / ".survey.lock").exists()
    _same_detections(read_catalogue_dir(out).detections, reference[reference.obsid.isin(GOOD[:4])])


def test_worker_death_is_retried_then_recorded(archive, client, tmp_path):
    root = tmp_path / "arch"
    for i, obsid in enumerate(["0300000200", "0300000201"]):
        _simulate(root, obsid, seed=20 + i)
    markers = tmp_path / "markers"
    markers.mkdir()
    res = run(
        root,
        tmp_path / "out",
        PARAMS[:1],
        compute=client,
        search=partial(killing_search, marker_dir=str(markers)),
        progress=False,
        catalogue=False,
    )
    st = res.status.set_index("obsid")
    assert st.loc["0300000200", "state"] == "done"
    # tried on 1 + allowed-failures (= retries = 1) workers, which all died; then recorded as failed
    assert len(list(markers.iterdir())) == 2
    assert st.loc["0300000201", "state"] == "failed"
    assert st.loc["0300000201", "error_class"] == "KilledWorker"
    assert "died" in st.loc["0300000201", "message"]
    assert (tmp_path / "out" / st.loc["0300000201", "traceback_file"]).exists()
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed workers


def test_cli_survey_and_catalogue(archive, client, tmp_path, capsys):
    from xcube.cli import main

    lst = tmp_path / "one.txt"
    lst.write_text(f"{GOOD[0]}\n")
    out = tmp_path / "out"
    rc = main(["survey", str(lst), "--archive", str(archive), "--out", str(out), "--scheduler",
               client.scheduler.address, "--time-bin", "2000", "--energy", "0.2", "12", "--figures", "none"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "dask dashboard: http" in err and "1/1 observations: done 1, failed 0, remaining 0" in err
    st = read_status(out)
    assert st["run_id"].tolist() == [f"{GOOD[0]}_0_2000_0.2_12.0"]
    assert set(st["state"]) == {"done"}
    cat = read_catalogue_dir(out)
    assert len(cat.sources)
    # cross-match the sources with a catalogue holding the first source's position
    csv = tmp_path / "known.csv"
    pd.DataFrame({"NAME": ["known-1"], "RA_deg": [cat.sources.ra[0] + 2 / 3600], "DE_deg": [cat.sources.dec[0]]}
                 ).to_csv(csv, index=False)
    rc = main(["catalogue", str(out), "--match", str(csv), "--ra-col", "RA_deg", "--dec-col", "DE_deg",
               "--name-col", "NAME"])
    assert rc == 0
    assert "unique sources" in capsys.readouterr().out
    src = read_catalogue_dir(out).sources
    assert src["known_name"][0] == "known-1"
    assert src["known_sep_arcsec"][0] == pytest.approx(2 * np.cos(np.radians(src.dec[0])), rel=1e-3)
    assert json.loads((out / "catalogue" / "catalogue.json").read_text())["crossmatch"] == [str(csv)]
    # errors are reported, not raised
    assert main(["catalogue", str(tmp_path / "missing")]) == 1
    cat2 = build_catalogue(out, write=False)
    assert len(cat2.detections) == len(cat.detections)


def test_old_engine_keywords_still_work_with_a_warning(archive, client, tmp_path):
    """``client=``/``scheduler=``... of earlier releases: deprecated aliases of ``compute=``."""
    with pytest.warns(DeprecationWarning, match="compute=xcube.survey.Compute"):
        res = run(archive / "obsids.txt", tmp_path, PARAMS[:1], archive=archive, client=client, search=search,
                  progress=False, catalogue=False)
    assert set(res.status["state"]) <= {"done", "skipped", "failed"} and len(res.status)
    with pytest.raises(TypeError, match="unexpected keyword"):
        run(archive / "obsids.txt", tmp_path, PARAMS[:1], archive=archive, compute=client, nonsense=1)
