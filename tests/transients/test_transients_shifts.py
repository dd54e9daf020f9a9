"""Half-bin shifted grids: a flare on the corner of four cells, at the edge of
two frames, is recovered with ``shifts=True`` and weakened without."""
from __future__ import annotations

import numpy as np
import pandas as pd

import xcube
from xcube import simulate
from xcube.transients.shifts import merge_detections


def _near(det, x, y, radius=400.0):
    d = det[(det["kind"] == "peak") & (np.hypot(det["x"] - x, det["y"] - y) < radius)]
    return d


def test_flare_on_a_cell_corner_and_frame_edge(tmp_path):
    ev, _ = simulate.event_list("xmm-pn", duration=8_000.0, sources=0, soft_protons=0, seed=21)
    t0 = float(ev.gti_start.values[0])
    # cells of 400 sky pixels from TLMIN = 1: (28001, 24001) is a corner; frames of 50 s from t0: t0 + 3000 an edge
    x, y = 28_001.0, 24_001.0
    ev, truth = simulate.inject_flare(ev, t_peak=t0 + 3_000.0, amplitude=0.5, width=8.0, x=x, y=y, seed=5)
    assert truth["counts"][0] >= 8
    base = xcube.search_transients(ev, time_bin=50.0)
    shifted = xcube.search_transients(ev, time_bin=50.0, shifts=True)
    assert set(shifted.grids) == {"0", "xy", "t", "xyt"}
    found = _near(shifted.detections, x, y)
    assert len(found) == 1 and found["grid"].iloc[0] != "0"
    assert found["t_start"].iloc[0] <= t0 + 3_000.0 <= found["t_stop"].iloc[0]
    best_shifted = float(found["log10_bayes"].iloc[0])
    # the unshifted grid sees it split in four cells and two frames: weaker, or not at all
    weak = _near(base.detections, x, y)
    assert len(weak) == 0 or float(weak["log10_bayes"].max()) < best_shifted - 3.0
    # the unshifted grid of the shifted search is the plain search
    pd.testing.assert_frame_equal(shifted.grids["0"].detections, base.detections)
    assert shifted.summary["n_detections"] == len(shifted.detections)
    assert set(shifted.summary["n_detections_per_grid"]) == {"0", "xy", "t", "xyt"}
    _check_written_lightcurves(shifted, tmp_path / "run")


def _check_written_lightcurves(res, out):
    """Every row of the written table has its own light curve in lightcurves.parquet, under its
    detection number: that of its grid's detection, whose features it carries."""
    res.write(out, figures=False)
    det, lcs = pd.read_parquet(out / "detections.parquet"), pd.read_parquet(out / "lightcurves.parquet")
    assert len(det) and set(lcs["detection"]) == set(det["detection"])
    assert set(det["grid"]) - {"0"}  # rows from shifted grids too
    for row in det.itertuples():
        lc = lcs[lcs["detection"] == row.detection]
        assert (lc["grid"] == row.grid).all() and (lc["grid_detection"] == row.grid_detection).all()
        own = res.grids[row.grid].lightcurves.sel(detection=row.grid_detection)
        np.testing.assert_array_equal(lc["counts"].to_numpy(), own["counts"].values)
        np.testing.assert_array_equal(lc["time"].to_numpy(), own["time"].values)
        valid = np.isfinite(lc["expected"].to_numpy())
        assert lc["counts"].to_numpy()[valid].sum() == row.n_sum
    # in memory: the unshifted grid's rows under their merged numbers, none of another grid's
    mine = det[det["grid"] == "0"]
    assert list(res.lightcurves["detection"].values) == list(mine["detection"])
    for row in mine.itertuples():
        np.testing.assert_array_equal(res.lightcurves["counts"].sel(detection=row.detection).values,
                                      res.grids["0"].lightcurves["counts"].sel(detection=row.grid_detection).values)


def test_merge_across_grids():
    cols = ["run_id", "detection", "kind", "x", "y", "t_start", "t_stop", "log10_bayes", "flag_crowded_run"]

    def table(rows):
        return pd.DataFrame(rows, columns=cols)

    a = table([["r", 0, "peak", 100.0, 100.0, 0.0, 50.0, 8.0, False],
               ["r", 1, "eclipse", 900.0, 900.0, 0.0, 500.0, 9.0, False]])
    b = table([["r", 0, "peak", 300.0, 100.0, 50.0, 100.0, 12.0, False],  # 200 px away, the next frame: same
               ["r", 1, "peak", 100.0, 100.0, 400.0, 450.0, 7.0, False]])  # same place, much later: another
    c = table([["r", 0, "peak", 800.0, 100.0, 0.0, 50.0, 6.0, False]])  # 500 px from the nearest: another
    out = merge_detections({"0": a, "xy": b, "t": c}, cell=400.0, frame=50.0)
    assert len(out) == 4 and list(out["detection"]) == [0, 1, 2, 3]
    first = out[out["x"] == 300.0].iloc[0]
    assert first["grid"] == "xy" and first["n_grids"] == 2 and first["t_start"] == 0.0 and first["t_stop"] == 100.0
    assert set(out["grid"]) == {"0", "xy", "t"}
    empty = merge_detections({"0": a.iloc[0:0], "xy": b.iloc[0:0]}, cell=400.0, frame=50.0)
    assert len(empty) == 0 and "n_grids" in empty


def test_merged_rows_get_the_times_of_their_widened_range_and_keep_the_time_reference():
    """The merged row's t_start/t_stop are the union over the grids; its
    mjd_start/mjd_stop (and the other time columns) follow them, and the
    table keeps its time reference (attrs), as an unshifted table does."""
    from xcube.times import add_time_columns

    ref = {"mjdrefi": 50814.0, "mjdreff": 0.0, "mjdref": 50814.0, "timesys": "TT"}
    cols = ["run_id", "detection", "kind", "x", "y", "t_start", "t_peak", "t_stop", "log10_bayes"]
    a = add_time_columns(pd.DataFrame([["r", 0, "peak", 100.0, 100.0, 1000.0, 1025.0, 1050.0, 8.0]], columns=cols), ref)
    b = add_time_columns(pd.DataFrame([["r", 0, "peak", 300.0, 100.0, 1025.0, 1075.0, 1125.0, 12.0]], columns=cols),
                         ref)
    assert a.attrs["mjdref"] == 50814.0
    out = merge_detections({"0": a, "t": b}, cell=400.0, frame=50.0)
    assert len(out) == 1 and out["grid"].iloc[0] == "t"
    row = out.iloc[0]
    assert row["t_start"] == 1000.0 and row["t_stop"] == 1125.0
    np.testing.assert_allclose([row["mjd_start"], row["mjd_peak"], row["mjd_stop"]],
                               50814.0 + np.array([1000.0, 1075.0, 1125.0]) / 86400.0, rtol=0, atol=1e-10)
    assert row["utc_peak"] == b["utc_peak"].iloc[0]
    assert out.attrs == a.attrs
    assert list(out.columns[:len(a.columns)]) == list(a.columns)  # the time columns stay where they were
    assert merge_detections({"0": a.iloc[0:0], "t": b.iloc[0:0]}, cell=400.0, frame=50.0).attrs == a.attrs


def test_shifted_search_keeps_the_time_reference_in_the_written_table(tmp_path):
    ev, _ = simulate.event_list("xmm-pn", duration=8000.0, flares=[simulate.Flare(t_peak=3000.0, amplitude=2.0,
                                                                                   width=60.0)], sources=3, seed=3)
    res = xcube.search_transients(ev, time_bin=50.0, shifts=True)
    det = res.detections
    assert len(det) >= 1 and det.attrs["mjdref"] == 50814.0 and det.attrs["timesys"] == "TT"
    np.testing.assert_allclose(det["mjd_start"], 50814.0 + det["t_start"] / 86400.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(det["mjd_stop"], 50814.0 + det["t_stop"] / 86400.0, rtol=0, atol=1e-9)
    res.write(tmp_path / "out", figures=False)
    assert pd.read_parquet(tmp_path / "out" / "detections.parquet").attrs["timesys"] == "TT"
