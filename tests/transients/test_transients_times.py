"""Detection tables with readable times: mjd_start/mjd_peak/mjd_stop (MJD in the
file's TIMESYS) and utc_peak (ISO UTC) in the DataFrame, CSV and Parquet; the
printed tables of ``xcube search`` and ``xcube demo`` at full precision."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import xcube
from xcube import simulate
from xcube.cli import main
from xcube.tables import format_table
from xcube.times import TIME_COLUMNS


@pytest.fixture(scope="module")
def flare(tmp_path_factory):
    path = tmp_path_factory.mktemp("flare") / "pn.fits"
    ev, truth = simulate.event_list("xmm-pn", duration=8000.0, flares=[simulate.Flare(t_peak=3000.0, amplitude=2.0,
                                                                                      width=60.0)],
                                    sources=3, seed=3, path=path, overwrite=True)
    return path, ev, truth


def test_detection_table_has_mjd_and_utc_columns(flare, tmp_path):
    path, ev, truth = flare
    res = xcube.search_transients(xcube.open_events(path), time_bin=50.0)
    det = res.detections
    assert len(det) >= 1
    assert list(det.columns[-4:]) == list(TIME_COLUMNS)  # after the search's own columns
    for name in ("start", "peak", "stop"):
        assert det[f"mjd_{name}"].dtype == np.float64
        np.testing.assert_allclose(det[f"mjd_{name}"], 50814.0 + det[f"t_{name}"] / 86400.0, rtol=0, atol=1e-9)
    best = det.sort_values("log10_bayes").iloc[-1]
    assert best["utc_peak"] == xcube.times(best["t_peak"], ev, to="iso")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", best["utc_peak"])
    res.write(tmp_path / "run")
    csv = pd.read_csv(tmp_path / "run" / "detections.csv")
    parquet = pd.read_parquet(tmp_path / "run" / "detections.parquet")
    for table in (csv, parquet):
        assert set(TIME_COLUMNS) <= set(table.columns)
        np.testing.assert_allclose(table["mjd_peak"], det["mjd_peak"], rtol=0, atol=1e-9)
    assert parquet.attrs["timesys"] == "TT" and parquet.attrs["mjdref"] == 50814.0  # kept for the catalogue
    # an observation without frames still has the columns (empty)
    empty = xcube.search_transients(xcube.open_events(path), time_bin=1.0e6)
    assert set(TIME_COLUMNS) <= set(empty.detections.columns) and len(empty.detections) == 0


def test_printed_tables_never_use_exponents(flare, tmp_path, capsys):
    path, ev, truth = flare
    assert main(["search", str(path), "--time-bin", "50", "--out", str(tmp_path / "s"), "--no-figures", "-q"]) == 0
    out = capsys.readouterr().out
    assert not re.search(r"\d[eE][+-]\d\d", out), out
    assert re.search(r"T0 = 700000000\.000 s \(mission time\) = 2020-03-07T20:25:30\.816 UTC", out)
    assert "utc_peak" in out and "t_peak-T0" in out
    # the flare at 3000 s after the start is printed as such, to 0.1 s
    assert re.search(r"\b(29|30)\d\d\.\d\b", out)


def test_format_table_columns():
    df = pd.DataFrame({"run_id": ["a", "b"], "ra": [263.1234567, 1.0], "t_peak": [700012345.678, 700000001.0],
                       "mjd_peak": [58915.886863123, 58915.5], "counts": [92.0, 3.0], "q": [1.2345e-9, 7.0e8]})
    text = format_table(df, t0=700000000.0)
    assert "t_peak-T0" in text and "12345.7" in text and "1.0" in text
    assert "263.12346" in text and "58915.886863" in text and " 92 " in text + " "
    assert not re.search(r"\d[eE][+-]\d", text)
    assert "700012345.7" in format_table(df)  # absolute without T0
