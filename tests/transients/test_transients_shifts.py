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


def test_flare_on_a_cell_corner_and_frame_edge():
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
