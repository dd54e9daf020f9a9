"""Vetting sweep fixes: flag_edge at the real field edge, dropped BTI frames
in flag_bad_frame and in the light curves' exposure, the standalone BTIs of
several cameras on the search's grid, the Cash statistic at mu = 0 and the
merged times of the shifted grids."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_bti_frames import _attrs  # the attrs of a generated XMM camera

import xcube
from xcube import simulate
from xcube.io.events_fits import events_dataset
from xcube.times import add_time_columns
from xcube.transients import bti as btimod
from xcube.transients.features import cash_statistic, lightcurve_features
from xcube.transients.shifts import merge_detections

T0 = 1.0e8


@pytest.fixture(scope="module")
def flaring_mos1():
    """6 ks of simulated MOS1 with a soft-proton flare (BTI frames 2000-3000 s)."""
    ev, _ = simulate.event_list("xmm-mos1", duration=6000.0, seed=11, sources=2,
                                soft_protons=[dict(t_start=2000.0, duration=1000.0, peak_rate=30.0)])
    return ev


def test_gti_only_dropped_bti_frames_count_for_flag_bad_frame_and_exposure(flaring_mos1):
    res = xcube.search_transients(flaring_mos1, time_bin=50.0, gti_only=True, hygiene=False)
    lc = res.lightcurves
    bti = np.flatnonzero(lc["bti"].values)
    assert bti.size > 5
    # the light curves' exposure is the search's: 0 in the dropped frames, as res.cube and the summary
    np.testing.assert_array_equal(lc["exposure"].values, res.cube["exposure"].values)
    np.testing.assert_array_equal(lc["fracexp"].values, res.cube["fracexp"].values)
    assert (lc["exposure"].values[bti] == 0).all()
    assert float(lc["exposure"].sum()) == pytest.approx(res.summary["exposure"])
    # a flare in the frame right after the last dropped BTI frame touches a dropped frame
    t_after = float(lc["time_lo"].values[bti[-1] + 1])
    ev, _ = simulate.inject_flare(flaring_mos1, t_peak=t_after + 25.0, amplitude=2.0, width=6.0, ra=150.0,
                                  dec=2.25, seed=3)
    res = xcube.search_transients(ev, time_bin=50.0, gti_only=True, hygiene=False)
    d = res.detections
    near = d[np.abs(d["t_peak"] - (t_after + 25.0)) < 60.0]
    assert len(near) == 1 and near["t_start"].iloc[0] == t_after
    assert bool(near["flag_bad_frame"].iloc[0])
    assert not res.lightcurves["bad_frame"].values[bti].any()  # the coordinate still holds the bad frames only
    # kept BTI frames (the default) are searched: not dropped, no flag
    res = xcube.search_transients(ev, time_bin=50.0, hygiene=False)
    near = res.detections[np.abs(res.detections["t_peak"] - (t_after + 25.0)) < 60.0]
    assert len(near) == 1 and not bool(near["flag_bad_frame"].iloc[0])
    np.testing.assert_array_equal(res.lightcurves["exposure"].values, res.cube["exposure"].values)


def test_flag_edge_at_the_rim_of_a_simulated_field():
    """A flare on the outermost counted cell of the field's middle rows is at
    the edge, one at the centre is not (a sparse field: 4 ks of MOS1
    background, most cells empty)."""
    ev, _ = simulate.event_list("xmm-mos1", duration=4000.0, seed=5, sources=0, soft_protons=0)
    img = xcube.search_transients(ev, time_bin=100.0, hygiene=False).image
    counts = img.values
    cy, cx = (np.array(counts.shape) - 1) // 2
    ix = int(np.flatnonzero(counts[cy - 1:cy + 2].sum(axis=0) > 0)[0])  # the field's left edge there
    assert ix < cx - 10

    def centre(i, name):
        return float(0.5 * (img[f"{name}_lo"].values[i] + img[f"{name}_hi"].values[i]))

    t0 = float(ev.gti_start.values[0])
    for (y, x), edge in (((cy, ix), True), ((cy, cx), False)):
        xs, ys = centre(x, "x"), centre(y, "y")
        ev2, _ = simulate.inject_flare(ev, t_peak=t0 + 2000.0, amplitude=1.0, width=20.0, x=xs, y=ys, seed=4)
        d = xcube.search_transients(ev2, time_bin=100.0, hygiene=False).detections
        near = d[np.hypot(d["x"] - xs, d["y"] - ys) < 600.0]
        assert len(near) == 1 and bool(near["flag_edge"].iloc[0]) is edge
    assert not d["flag_edge"].all()


# ---------------------------------------------------------------- the standalone BTIs of several cameras
def _camera(seed, gti, profile, instrument):
    """0.2 ct/s of events over 0.2-12 keV and a 10-12 keV flare (2 ct/s,
    T0+607 to T0+1013 s) inside ``gti``."""
    rng = np.random.default_rng(seed)
    lo, hi = gti[0][0], gti[1][0]
    bg = rng.uniform(lo, hi, rng.poisson(0.2 * (hi - lo)))
    fl = rng.uniform(T0 + 607.0, T0 + 1013.0, rng.poisson(2.0 * 406.0))
    t = np.r_[bg, fl]
    pi = np.r_[rng.integers(200, 12000, bg.size), rng.integers(10001, 12000, fl.size)]
    order = np.argsort(t)
    t, pi = t[order], pi[order]
    n = t.size
    cols = {"time": t, "x": rng.integers(24000, 28000, n).astype(np.int32),
            "y": rng.integers(24000, 28000, n).astype(np.int32), "pi": pi.astype(np.int16),
            "energy": (pi * 0.001).astype(np.float32), "pattern": np.zeros(n, np.int16), "flag": np.zeros(n, np.int32)}
    return events_dataset({k: da.from_array(v, chunks=1000) for k, v in cols.items()}, gti, {},
                          _attrs(profile, instrument))


def test_standalone_btis_of_several_cameras_are_the_searchs():
    # the cameras' GTIs start 37.3 s apart: the search's frames start at the later (common) start
    mos1 = _camera(1, ([T0], [T0 + 2000.0]), "xmm-mos1", "EMOS1")
    mos2 = _camera(2, ([T0 + 37.3], [T0 + 2000.0]), "xmm-mos2", "EMOS2")
    res = xcube.search_transients([mos1, mos2], time_bin=50.0, hygiene=False, subsets=False)
    lo, hi = res.cube["time_lo"].values, res.cube["time_hi"].values
    assert lo[0] == T0 + 37.3
    start, stop = btimod.bad_time_intervals([mos1, mos2], 50.0)
    assert start.size >= 1
    k = (start - (T0 + 37.3)) / 50.0
    np.testing.assert_allclose(k, np.round(k), atol=1e-6)  # on the search's frame grid
    np.testing.assert_array_equal(btimod.frame_bti(lo, hi, (start, stop)), res.cube["bti"].values)
    assert float(np.sum(stop - start)) == pytest.approx(res.summary["bti_exposure"])
    # one camera: its own GTI as before
    edges = btimod.light_curve_edges(mos1, 50.0)
    assert edges[0] == T0 and edges[-1] == T0 + 2000.0


# ---------------------------------------------------------------- the Cash statistic where mu = 0
def _lightcurves(n, mu):
    n, mu = np.atleast_2d(np.asarray(n, float)), np.atleast_2d(np.asarray(mu, float))
    nt = n.shape[1]
    from xcube.transients import bayes

    return xr.Dataset(
        {"counts": (("detection", "time"), n), "expected": (("detection", "time"), mu),
         "log10_bayes_peak": (("detection", "time"), np.asarray(bayes.log10_bayes_peak(n, mu))),
         "log10_bayes_eclipse": (("detection", "time"), np.asarray(bayes.log10_bayes_eclipse(n, mu))),
         "bti": ("time", np.zeros(nt, bool)), "bad_frame": ("time", np.isnan(mu[0]))},
        coords={"time_lo": ("time", 50.0 * np.arange(nt)), "time_hi": ("time", 50.0 * np.arange(1, nt + 1))})


def test_cash_statistic_counts_where_none_are_expected():
    assert cash_statistic(3, 0.0) == np.inf and cash_statistic(0, 0.0) == 0.0
    assert np.isnan(cash_statistic(1, np.nan)) and np.isnan(cash_statistic(1, -1.0))
    f = lightcurve_features(_lightcurves([[0, 3, 0, 0], [0, 3, 0, 0], [1, 0, 2, 1], [0, 0, 0, 0]],
                                         [[0.1, 0.0, 0.1, 0.1], [0.1, np.nan, 0.1, 0.1], [1.0, 0.0, 1.0, np.nan],
                                          [0.0, 0.0, 0.0, 0.0]]),
                            ["peak"] * 4, [1, 0, 0, 0])
    # counts where mu = 0: the Bayes factor is +inf and the light curve is infinitely inconsistent with mu
    assert f["log10_bayes_peak_max"][0] == np.inf
    assert f["cstat"][0] == np.inf and f["cstat_z"][0] == np.inf and f["cstat_pval"][0] == 0.0
    assert f["cstat_expected"][0] == pytest.approx(f["cstat_expected"][1])  # (the mu = 0 frame adds no E)
    # a dropped frame (mu NaN) is left out: the rest are consistent
    assert np.isfinite(f["cstat"][1]) and f["cstat_z"][1] < 1.0
    # no counts where mu = 0 adds nothing; the NaN frame is left out
    c = cash_statistic([1, 2], [1.0, 1.0]).sum()
    assert f["cstat"][2] == pytest.approx(c) and np.isfinite(f["cstat_z"][2])
    # mu = 0 and no counts everywhere: nothing to test, NaN
    assert np.isnan(f["cstat"][3]) and np.isnan(f["cstat_z"][3]) and np.isnan(f["cstat_pval"][3])


# ---------------------------------------------------------------- merged times of the shifted grids
def test_merged_times_are_clipped_to_the_good_time():
    cols = ["run_id", "detection", "kind", "x", "y", "t_start", "t_stop", "log10_bayes"]
    a = pd.DataFrame([["r", 0, "peak", 100.0, 100.0, 0.0, 200.0, 8.0]], columns=cols)
    t = pd.DataFrame([["r", 0, "peak", 100.0, 100.0, -100.0, 100.0, 9.0],
                      ["r", 1, "eclipse", 500.0, 500.0, 900.0, 1100.0, 9.0]], columns=cols)
    out = merge_detections({"0": a, "t": t}, cell=400.0, frame=200.0, span=(0.0, 1000.0))
    assert list(out["t_start"]) == [0.0, 900.0] and list(out["t_stop"]) == [200.0, 1000.0]
    out = merge_detections({"0": a, "t": t}, cell=400.0, frame=200.0)  # no span: the grids' frames
    assert list(out["t_start"]) == [-100.0, 900.0]


def test_shifted_search_times_stay_in_the_observation():
    ev, _ = simulate.event_list("xmm-mos1", duration=4000.0, seed=7, sources=0, soft_protons=0)
    g0, g1 = float(ev.gti_start.values[0]), float(ev.gti_stop.values[-1])
    for tp, dec in ((g0 + 40.0, 2.2), (g1 - 40.0, 2.25)):  # flares in the first and the last 100 s
        ev, _ = simulate.inject_flare(ev, t_peak=tp, amplitude=2.0, width=15.0, ra=150.0, dec=dec, seed=int(tp) % 97)
    res = xcube.search_transients(ev, time_bin=200.0, shifts=True, hygiene=False)
    d = res.detections
    t_grid = res.grids["t"].detections
    assert (t_grid["t_start"] >= g0).all() and (t_grid["t_stop"] <= g1).all()  # every grid's table keeps to it
    assert len(d) >= 2 and (d["t_start"] >= g0).all() and (d["t_stop"] <= g1).all()
    assert (d["t_start"] < d["t_stop"]).all()
    if "mjd_start" in d:
        mjd0 = add_time_columns(pd.DataFrame({"t_start": [g0], "t_stop": [g1], "t_peak": [g0]}),
                                            d.attrs)
        assert (d["mjd_start"] >= mjd0["mjd_start"].iloc[0] - 1e-12).all()
