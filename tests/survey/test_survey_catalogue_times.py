"""The survey catalogue with readable times: mjd_start/mjd_peak/mjd_stop and
utc_peak from the runs, mjd_first/mjd_last of the sources, and FITS tables
with MJDREF, TIMESYS, TIMEUNIT, TUNIT on every column and checksums."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

import xcube
from xcube import simulate
from xcube.survey import build_catalogue, parameter_grid, run_id
from xcube.survey.status import write_run
from xcube.survey.task import run_observation
from xcube.times import TIME_COLUMNS, add_time_columns


@pytest.fixture(scope="module")
def survey_out(tmp_path_factory):
    root = tmp_path_factory.mktemp("cat-times")
    path = root / "pn.fits"
    simulate.event_list("xmm-pn", duration=8000.0, flares=[simulate.Flare(t_peak=3000.0, amplitude=2.0, width=60.0)],
                        sources=3, seed=3, path=path, overwrite=True)
    out = root / "out"
    params = parameter_grid([50.0], [(0.2, 12.0)])
    plan = [(run_id("0999990101", p), p) for p in params]
    recs = run_observation("0999990101", [path], plan, out, token="t", search=xcube.search_transients,
                           figures="none")
    assert [r["state"] for r in recs] == ["done"]
    return out


def test_catalogue_detections_and_sources_have_times(survey_out):
    cat = build_catalogue(survey_out)
    det, src = cat.detections, cat.sources
    assert len(det) >= 1 and set(TIME_COLUMNS) <= set(det.columns)
    np.testing.assert_allclose(det["mjd_peak"], 50814.0 + det["t_peak"] / 86400.0, rtol=0, atol=1e-9)
    assert det["utc_peak"].str.match(r"2020-03-07T\d\d:\d\d:\d\d\.\d{3}$").all()
    assert {"mjd_first", "mjd_last"} <= set(src.columns)
    assert (src["mjd_first"] <= src["mjd_last"]).all()
    for table in ("detections", "sources"):
        path = cat.directory / f"{table}.fits"
        with fits.open(path, checksum=True) as hdul:  # checksums are verified on open
            h = hdul[1].header
            assert h["MJDREFI"] == 50814 and h["MJDREFF"] == 0.0 and h["TIMESYS"] == "TT" and h["TIMEUNIT"] == "s"
            assert "CHECKSUM" in h and "DATASUM" in h
            units = {h[f"TTYPE{i}"]: h.get(f"TUNIT{i}") for i in range(1, h["TFIELDS"] + 1)}
        assert all(u is not None for u in units.values()), units  # a TUNIT on every column
        assert units["ra"] == "deg" and units["t_first" if table == "sources" else "t_peak"] == "s"
        assert units["mjd_first" if table == "sources" else "mjd_peak"] == "d"
        if shutil.which("fitsverify"):
            res = subprocess.run(["fitsverify", "-q", str(path)], capture_output=True, text=True)
            assert "verification OK" in res.stdout, res.stdout


def test_runs_written_before_the_time_columns_get_nan(survey_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(survey_out, out)
    p = parameter_grid([200.0], [(0.2, 12.0)])[0]
    old = pd.DataFrame({"ra": [150.0], "dec": [2.2], "kind": ["peak"], "t_start": [7.0e8], "t_stop": [7.0e8 + 200],
                        "t_peak": [7.0e8 + 100], "log10_bayes": [9.0]})
    rec = dict(p.to_dict(), param_hash=p.hash, state="done", n_detections=1)
    write_run(out, "0999990102", run_id("0999990102", p), rec,
              writer=lambda d: old.to_parquet(d / "detections.parquet", index=False))
    cat = build_catalogue(out)
    older = cat.detections[cat.detections["obsid"] == "0999990102"]
    assert older["mjd_peak"].isna().all() and older["utc_peak"].isna().all()
    newer = cat.detections[cat.detections["obsid"] == "0999990101"]
    assert newer["mjd_peak"].notna().all()
    # one run without a time reference: the header says so instead of claiming one MJDREF
    h = fits.getheader(cat.directory / "detections.fits", 1)
    assert "MJDREFI" not in h and h["TIMEUNIT"] == "s" and "own MJDREF" in str(h.get("COMMENT", ""))


def test_catalogue_command_prints_readable_times(survey_out, capsys):
    import re

    from xcube.cli import main

    assert main(["catalogue", str(survey_out)]) == 0
    out = capsys.readouterr().out
    assert "mjd_first" in out and re.search(r"\b58915\.\d{6}\b", out)  # MJD to six decimals (0.1 s)
    assert not re.search(r"\d[eE][+-]\d\d", out)


def test_catalogue_of_runs_with_shifted_grids_keeps_the_time_reference(tmp_path):
    """A survey whose search uses ``shifts=True``: the merged detection tables
    keep their MJDREF/TIMESYS, so the catalogue's FITS headers have them."""
    import functools

    path = tmp_path / "pn.fits"
    simulate.event_list("xmm-pn", duration=8000.0, flares=[simulate.Flare(t_peak=3000.0, amplitude=2.0, width=60.0)],
                        sources=3, seed=3, path=path, overwrite=True)
    out = tmp_path / "out"
    plan = [(run_id("0999990101", p), p) for p in parameter_grid([50.0], [(0.2, 12.0)])]
    recs = run_observation("0999990101", [path], plan, out, token="t", figures="none",
                           search=functools.partial(xcube.search_transients, shifts=True))
    assert [r["state"] for r in recs] == ["done"] and recs[0]["n_detections"] >= 1
    cat = build_catalogue(out)
    assert "grid" in cat.detections and cat.detections.attrs["timesys"] == "TT"
    np.testing.assert_allclose(cat.detections["mjd_start"], 50814.0 + cat.detections["t_start"] / 86400.0,
                               rtol=0, atol=1e-9)
    h = fits.getheader(cat.directory / "detections.fits", 1)
    assert h["MJDREFI"] == 50814 and h["TIMESYS"] == "TT"


def test_mixed_time_systems_compare_in_tt_and_keep_timeref(survey_out, tmp_path):
    """Sweep p26: the sources' t_first/t_last were the least/greatest raw
    seconds of runs with different MJDREFs, and mjd_* mixed UTC, TT and TDB;
    TIMEREF was lost. Now the catalogue's MJDs are TT, t_first/t_last belong
    to the detections mjd_first/mjd_last pick, and a timeref column says
    which runs are barycentred."""
    from astropy.time import Time, TimeDelta

    out = tmp_path / "out"
    shutil.copytree(survey_out, out)
    cat0 = build_catalogue(out, write=False, report=False)
    tt = cat0.detections.iloc[0]
    p = parameter_grid([200.0], [(0.2, 12.0)])[0]
    runs = {"0999990102": ({"mjdrefi": 44239.0, "mjdreff": 0.0, "mjdref": 44239.0, "timesys": "UTC"}, 8.0e8),
            "0999990103": ({"mjdrefi": 55197.0, "mjdreff": 0.00076601852, "mjdref": 55197.00076601852,
                            "timesys": "TDB", "timeref": "SOLARSYSTEM"}, 1.0e8)}
    for obs, (attrs, t0) in runs.items():
        det = pd.DataFrame({"ra": [tt["ra"]], "dec": [tt["dec"]], "kind": ["peak"], "t_start": [t0],
                            "t_stop": [t0 + 200.0], "t_peak": [t0 + 100.0], "log10_bayes": [9.0]})
        det = add_time_columns(det, attrs)
        assert det.attrs.get("timeref") == attrs.get("timeref")  # kept for the Parquet file
        rec = dict(p.to_dict(), param_hash=p.hash, state="done", n_detections=1)
        write_run(out, obs, run_id(obs, p), rec, writer=lambda d, det=det: det.to_parquet(d / "detections.parquet",
                                                                                          index=False))
    cat = build_catalogue(out, report=False)
    det = cat.detections.set_index("obsid")
    for obs, (attrs, t0) in runs.items():
        want = Time(attrs["mjdrefi"], attrs["mjdreff"], format="mjd", scale=attrs["timesys"].lower())
        want = (want + TimeDelta(t0 + 100.0, format="sec")).tt.mjd
        assert abs(det.loc[obs, "mjd_peak"] - want) * 86400 < 1e-3
        assert det.loc[obs, "timeref"] == attrs.get("timeref", "")
    assert set(det.loc[["0999990101"], "timeref"]) <= {"", "LOCAL"}
    src = cat.sources.set_index("source_id").loc[det.loc["0999990102", "source_id"]]
    members = cat.detections[cat.detections["source_id"] == det.loc["0999990102", "source_id"]]
    assert set(members["obsid"]) == {"0999990101", "0999990102", "0999990103"}
    # first: the UTC run of 2005 (raw seconds 8e8 since 1980, the largest); last: the TT run of 2020 (7e8 s
    # since 1998); the TDB run of 2013 has the least raw seconds (1e8 since 2010)
    last = members[members["obsid"] == "0999990101"].sort_values("mjd_stop").iloc[-1]
    assert src["t_first"] == 8.0e8 and src["mjd_first"] == det.loc["0999990102", "mjd_start"]
    assert src["t_last"] == last["t_stop"] and src["mjd_last"] == last["mjd_stop"]
    h = fits.getheader(cat.directory / "detections.fits", 1)
    assert "MJD in TT" in str(h.get("COMMENT", ""))
