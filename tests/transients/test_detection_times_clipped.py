"""Detection times lie in the good time of their frames: a flare in the last,
partial frame and one in a frame half in a GTI gap, unshifted and shifted
searches, and the one clipping rule (``frames.good_time_range``)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import xcube
from xcube import simulate
from xcube.times import add_time_columns
from xcube.transients.features import lightcurve_features
from xcube.transients.frames import good_time_range
from xcube.transients.shifts import merge_detections

T0 = 7.0e8
DURATION = 4010.0  # 100 s frames: the last frame [4000, 4100) has 10 s of good time
GAP = (2050.0, 2150.0)  # frame [2000, 2100) is good in its first half, [2100, 2200) in its second


@pytest.fixture(scope="module")
def observation():
    flares = [simulate.Flare(t_peak=4006.0, amplitude=5.0, width=1.0, ra=150.0, dec=2.25),  # last frame only
              simulate.Flare(t_peak=2030.0, amplitude=5.0, width=3.0, ra=150.05, dec=2.15)]  # before the gap
    ev, truth = simulate.event_list("xmm-mos1", duration=DURATION, gaps=[GAP], sources=0, soft_protons=0,
                                    flares=flares, seed=3)
    return ev, truth


def _nearest(d, t):
    return d.iloc[int(np.argmin(np.abs(d["t_peak"].to_numpy() - (T0 + t))))]


def test_good_time_range_by_hand():
    gti = ([0.0, 150.0, 400.0], [100.0, 300.0, 410.0])
    lo, hi = good_time_range([0.0, 100.0, 50.0, 300.0, 390.0, 400.0, np.nan],
                             [100.0, 200.0, 500.0, 400.0, 500.0, 410.0, 1.0], gti)
    np.testing.assert_array_equal(lo, [0.0, 150.0, 50.0, 300.0, 400.0, 400.0, np.nan])
    np.testing.assert_array_equal(hi, [100.0, 200.0, 410.0, 400.0, 410.0, 410.0, 1.0])
    # no good time inside (the gap [300, 400)) or no GTI: the interval as given
    assert good_time_range(300.0, 400.0, gti) == (300.0, 400.0)
    assert good_time_range(5.0, 7.0, (np.empty(0), np.empty(0))) == (5.0, 7.0)


def test_unshifted_times_in_good_time(observation):
    ev, _ = observation
    res = xcube.search_transients(ev, time_bin=100.0, hygiene=False)
    d = res.detections
    assert len(d) == 2
    last, gap = _nearest(d, 4006.0), _nearest(d, 2030.0)
    # by hand: the good time of the flagged frame, its centre, its length
    assert (last["t_start"] - T0, last["t_stop"] - T0, last["t_peak"] - T0) == (4000.0, 4010.0, 4005.0)
    assert (gap["t_start"] - T0, gap["t_stop"] - T0, gap["t_peak"] - T0) == (2000.0, 2050.0, 2025.0)
    assert (last["duration"], gap["duration"]) == (10.0, 50.0)
    assert (d["t_stop"] <= float(ev.gti_stop.values[-1])).all()
    # the MJD and UTC columns follow the clipped times
    again = add_time_columns(d[["t_start", "t_peak", "t_stop"]], ev)
    for c in ("mjd_start", "mjd_peak", "mjd_stop", "utc_peak"):
        assert list(d[c]) == list(again[c])
    assert last["utc_peak"] == "2020-03-07T21:32:15.816"  # T0 + 4005 s (T0 = 7e8 s TT: 20:25:30.816 UTC)
    # duration from the light curves with the same good time
    best = np.searchsorted(res.lightcurves["time_hi"].values, d["t_peak"].values)
    gti = xcube.gti.from_dataset(ev)
    f = lightcurve_features(res.lightcurves, d["kind"], best, 3.0, gti=gti)
    np.testing.assert_array_equal(f["duration"], d["duration"])


def test_shifted_times_in_good_time(observation):
    ev, _ = observation
    res = xcube.search_transients(ev, time_bin=100.0, hygiene=False, shifts=True)
    d = res.detections
    assert len(d) == 2
    last, gap = _nearest(d, 4006.0), _nearest(d, 2030.0)
    # grid "0" flags [4000, 4010] and [2000, 2050]; grid "t" (frames from -50 s) [3950, 4010] and [1950, 2050]
    assert last["t_stop"] - T0 == 4010.0 and gap["t_stop"] - T0 == 2050.0
    assert last["t_start"] - T0 in (3950.0, 4000.0) and gap["t_start"] - T0 in (1950.0, 2000.0)
    for row in (last, gap):
        assert row["t_start"] <= row["t_peak"] <= row["t_stop"]
        # t_peak: the centre of the good part of the best grid's peak frame
        lc = res.grids[row["grid"]].lightcurves
        j = int(np.argmax(res.grids[row["grid"]].lightcurves["log10_bayes_peak"].values[row["grid_detection"]]))
        lo, hi = good_time_range(lc["time_lo"].values[j], lc["time_hi"].values[j], xcube.gti.from_dataset(ev))
        assert row["t_peak"] == 0.5 * (lo + hi)
    for _, r in res.grids.items():  # every grid's own table too
        g = r.detections
        assert (g["t_stop"] <= T0 + DURATION).all() and (g["t_start"] >= T0).all()
    again = add_time_columns(d[["t_start", "t_peak", "t_stop"]], ev)
    for c in ("mjd_start", "mjd_peak", "mjd_stop"):
        np.testing.assert_array_equal(d[c], again[c])


def test_merge_clips_to_the_good_time_with_gaps():
    cols = ["run_id", "detection", "kind", "x", "y", "t_start", "t_stop", "log10_bayes"]
    a = pd.DataFrame([["r", 0, "peak", 100.0, 100.0, 2000.0, 2100.0, 8.0]], columns=cols)
    t = pd.DataFrame([["r", 0, "peak", 100.0, 100.0, 1950.0, 2050.0, 9.0],
                      ["r", 1, "eclipse", 500.0, 500.0, 3950.0, 4050.0, 9.0]], columns=cols)
    gti = ([0.0, 2150.0], [2050.0, 4010.0])
    out = merge_detections({"0": a, "t": t}, cell=400.0, frame=100.0, gti=gti)
    assert list(out["t_start"]) == [1950.0, 3950.0] and list(out["t_stop"]) == [2050.0, 4010.0]
    # a one-interval span as before
    out = merge_detections({"0": a, "t": t}, cell=400.0, frame=100.0, gti=(2000.0, 4000.0))
    assert list(out["t_start"]) == [2000.0, 3950.0] and list(out["t_stop"]) == [2100.0, 4000.0]


def test_merge_grids_still_takes_span():
    """merge_grids(..., span=) (the keyword before gti=) raised TypeError; it is one interval of good time."""
    import inspect

    from xcube.transients.shifts import merge_grids

    assert "span" in inspect.signature(merge_grids).parameters
    ev, _ = simulate.event_list("xmm-mos1", duration=2000.0, seed=5, sources=1)
    res = xcube.search_transients(ev, time_bin=100.0, shifts=True, hygiene=False)
    runs = [(name, g) for name, g in res.grids.items()]
    t0, t1 = float(ev.gti_start.values[0]), float(ev.gti_stop.values[-1])
    a = merge_grids(runs, 20.0, span=(t0, t1))
    b = merge_grids(runs, 20.0, gti=([t0], [t1]))
    pd.testing.assert_frame_equal(a.detections, b.detections)
