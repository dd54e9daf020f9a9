"""The search's compact path equals the dense path of the same public steps.

``search_transients`` runs every step on compact cubes made by one events
pass. Here the same steps run on dense cubes made by ``select`` +
``bin_events`` (and the events themselves for BTIs and bad frames), and
every number must agree: cube, BTIs, bad frames, mu, masks, false alarms,
detections and light curves."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest

import xcube
from xcube import gti as gtimod
from xcube import simulate
from xcube.binning import Axis, bin_events
from xcube.binning.compact import CompactCube
from xcube.binning.counts import reductions
from xcube.binning.events_pass import Run, compact_cubes
from xcube.missions.ecf import events_ecf
from xcube.select import EventFilter, select
from xcube.transients import bayes, decision, frames, search
from xcube.transients import bti as btimod
from xcube.transients import detect as D
from xcube.transients.background import background_model, expected_counts, mask_eclipses
from xcube.transients.grid import search_band


def _dense_path(evs, res, band, sigma, gti_only=False, hygiene=True):
    """The public steps on dense cubes, on the result's grid: screening and
    detector hygiene with ``select``, ``bin_events``, BTIs and bad frames
    from the events, the model, the decision, the eclipse-masked source
    rates and the decision again."""
    scr = search.prepare_events(evs)
    clean = search.prepare_events(evs, hygiene=hygiene)
    band_evs = [select(e, energy_band=search_band(evs, band)) for e in clean]  # XMM: 12 keV kept
    cube = res.cube
    edges = np.append(cube.time_lo.values, cube.time_hi.values[-1])
    xe = np.append(cube.x_lo.values, cube.x_hi.values[-1])
    ye = np.append(cube.y_lo.values, cube.y_hi.values[-1])
    counts = sum(bin_events(e, time=edges, y=ye, x=xe).values for e in band_evs)
    tb = float(edges[1] - edges[0])
    t1 = float(gtimod.intersection(*[gtimod.from_dataset(e) for e in evs])[1][-1])
    btis = btimod.bad_time_intervals(scr, min(tb, 100.0), t0=edges[0], t_stop=t1)  # the monitor: screening only
    is_bti = btimod.frame_bti(edges[:-1], edges[1:], btis)
    bad = frames.bad_frames(band_evs, edges, is_bti)
    drop = bad | (is_bti if gti_only else np.zeros_like(bad))
    dense = cube.copy(data=counts)
    model = background_model(dense, is_bti, drop, wcs=xcube.wcs(evs[0]))
    flags = decision.flag_voxels(dense, model, sigma)
    model = mask_eclipses(dense, model, flags.voxels[flags.voxels[:, 2] == 1][:, :2],
                          peak_voxels=flags.voxels[flags.voxels[:, 2] == 0][:, :2])
    ccd_map = [_ccd_map(e, ye, xe) for e in band_evs]
    return dense, btis, is_bti, bad, model, ccd_map


def _ccd_map(ev, ye, xe):
    """Per cell, bit c set when the cell holds events of CCD c (from the events)."""
    out = np.zeros((ye.size - 1, xe.size - 1), np.uint32)
    for c in np.unique(ev["ccdnr"].values):
        img = bin_events(select(ev, expr=f"CCDNR == {int(c)}"), y=ye, x=xe).values
        out |= np.where(img > 0, np.uint32(1) << np.uint32(int(c) % 32), np.uint32(0))
    return out


_SIGMA_COLUMNS = ["sigma_equivalent", "sigma_peak_max", "sigma_eclipse_max"]


def _check(evs, tb, band=(0.2, 12.0), sigma=3.0, **kw):
    res = xcube.search_transients(evs, time_bin=tb, energy_band=band, sigma=sigma, **kw)
    dense, btis, is_bti, bad, model, ccd_map = _dense_path(evs, res, band, sigma, kw.get("gti_only", False),
                                                           kw.get("hygiene", True))
    assert np.array_equal(res.cube.values, dense.values)
    assert np.array_equal(res.cube.bti.values, is_bti) and res.summary["n_bti"] == len(btis[0])
    assert np.array_equal(res.cube.bad_frame.values, bad)
    mu = expected_counts(dense, model=model).values
    got = res.expected.values
    assert np.array_equal(np.isnan(got), np.isnan(mu)) and np.array_equal(got[np.isfinite(got)], mu[np.isfinite(mu)])
    flags = decision.flag_voxels(dense, model, sigma)  # the dense path of the decision
    pk, ec = bayes.masks(dense.values, mu, sigma)
    assert np.array_equal(res.masks.peak.values, pk) and np.array_equal(res.masks.eclipse.values, ec)
    assert np.array_equal(flags.peak, pk.sum(axis=0)) and np.array_equal(flags.eclipse, ec.sum(axis=0))
    assert res.summary["flagged_voxels"] == {"peak": int(pk.sum()), "eclipse": int(ec.sum())}
    fa = bayes.expected_false_alarms(mu, sigma)
    assert res.summary["expected_false_alarms"]["peak"] == pytest.approx(fa.peak, rel=1e-9, abs=1e-12)
    assert res.summary["expected_false_alarms"]["eclipse"] == pytest.approx(fa.eclipse, rel=1e-9, abs=1e-12)
    obs = str(evs[0].attrs.get("obs_id"))
    common = dict(wcs=xcube.wcs(evs[0]), run_id=res.run_id, obs_id=obs, bti=is_bti, bad_frame=bad, sigma=sigma,
                  ccd_map=ccd_map, ecf=events_ecf(evs, band))
    for expected, fl in ((model, flags), (res.expected.copy(data=mu), (pk, ec))):  # model and dense-mu paths
        tab, lcs = D.detect(dense, expected, *(fl if isinstance(fl, tuple) else (fl,)), **common)
        assert len(tab) == len(res.detections)
        if len(tab):
            cols = [c for c in tab.columns if c not in _SIGMA_COLUMNS]
            pd.testing.assert_frame_equal(tab[cols], res.detections[cols], rtol=1e-10)
            for c in _SIGMA_COLUMNS:
                np.testing.assert_allclose(tab[c], res.detections[c], atol=2e-6)
            for v in ("counts", "expected", "log10_bayes_peak", "log10_bayes_eclipse"):
                np.testing.assert_allclose(res.lightcurves[v].values, lcs[v].values, rtol=1e-12, atol=1e-9)
    return res


@pytest.fixture(scope="module")
def pn():
    flares = [simulate.Flare(t_peak=6_000.0, amplitude=1.0, width=40.0, ra=149.95, dec=2.18)]
    eclipses = [simulate.Eclipse(t_start=12_000.0, duration=2_000.0, depth=1.0, rate=0.8, ra=150.05, dec=2.22)]
    sp = [simulate.SoftProtonFlare(t_start=8_000.0, duration=3_000.0, peak_rate=25.0)]
    ev, _ = simulate.event_list("xmm-pn", duration=16_000.0, flares=flares, eclipses=eclipses, sources=5,
                                soft_protons=sp, seed=11)
    return ev


def test_compact_path_equals_dense_path(pn):
    res = _check([pn], 50.0)
    assert res.summary["n_bti"] > 0 and set(res.detections["kind"]) == {"peak", "eclipse"}
    # the eclipsing source was refitted and its pixels decided again (decision.reflag_pixels),
    # which equals deciding the dense cube again
    assert res.summary["eclipse_masked_sources"] >= 1
    _check([pn], 200.0, band=(2.0, 12.0))
    _check([pn], 50.0, gti_only=True)


def test_merged_cameras_with_offset_gtis():
    pn, _ = simulate.event_list("xmm-pn", duration=4_000.0, sources=2, soft_protons=1, seed=1)
    m1, _ = simulate.event_list("xmm-mos1", duration=4_000.0, sources=2, soft_protons=0, seed=2, t0=7.0e8 + 300)
    _check([pn, m1], 100.0)
    _check([pn, m1], 5.0)


def test_float_sky_columns_and_events_beyond_tlmax(pn):
    ev = pn.assign(x=pn["x"].astype(np.float64) + 0.25, y=pn["y"].astype(np.float64))
    _check([ev], 100.0)  # float columns: bins by binary search in the edges
    ev = pn.copy()
    ev.attrs = dict(pn.attrs, x_max=20_000.0)  # a wrong TLMAX: the pass finds events beyond it and rescans
    _check([ev], 100.0)


def test_one_pass_for_a_parameter_grid_equals_single_runs(pn):
    """A grid of time bins and bands shares one events pass; each run equals
    the same run searched alone."""
    grid = xcube.search_transients(pn, time_bin=[50.0, 200.0], energy_band=[(0.2, 2.0), (2.0, 12.0)],
                                   sigma=[3.0, 4.0])
    assert len(grid) == 8 and len({r.run_id for r in grid}) == 8
    for r in grid[::3]:
        p = r.params
        one = xcube.search_transients(pn, time_bin=p["time_bin"], energy_band=tuple(p["energy_band"]),
                                      sigma=p["sigma"])
        assert one.run_id == r.run_id
        pd.testing.assert_frame_equal(one.detections, r.detections)
        assert np.array_equal(one.cube.values, r.cube.values)


def test_compact_cubes_equal_bin_events_for_every_run(pn):
    """``compact_cubes`` (several runs, two cameras, screening) against
    ``select`` + ``bin_events``; its monitor light curve and CCD counts
    against the events."""
    m1, _ = simulate.event_list("xmm-mos1", duration=16_000.0, sources=2, seed=5)
    evs = [pn, m1]
    y = Axis.from_edges("y", np.arange(20_000.0, 32_001.0, 400.0))
    x = Axis.from_edges("x", np.arange(19_800.0, 32_201.0, 400.0))
    t0 = max(float(e.gti_start.values[0]) for e in evs)
    runs = [Run(Axis.from_edges("time", t0 + np.arange(0, 16_001.0, 500.0)), (0.2, 2.0)),
            Run(Axis.from_edges("time", t0 + np.arange(0, 16_001.0, 2000.0)), (2.0, 12.0),
                t0 + np.arange(0, 16_001.0, 100.0))]
    filters = [EventFilter.for_events(e, screening=True) for e in evs]
    monitor = [btimod.monitor_filter(e) for e in evs]
    cubes = compact_cubes(evs, runs, y, x, filters=filters, monitor=monitor, crop=False)
    scr = search.prepare_events(evs)
    for run, cc in zip(runs, cubes):
        want = sum(bin_events(select(e, energy_band=run.energy_band), time=run.time.edges, y=y.edges,
                              x=x.edges).values for e in scr)
        assert np.array_equal(cc.dense(), want)
        for i, e in enumerate(scr):
            counts = bin_events(select(e, energy_band=run.energy_band), time=run.time.edges).values
            c = cc.ccd_counts[i]
            assert np.array_equal(c.sum(axis=1) if c.ndim == 2 else c, counts)
    mon = cubes[1].monitor
    for i, e in enumerate(scr):
        sel = select(e, expr=btimod.monitor_expression(), gti=gtimod.from_dataset(e))
        assert np.array_equal(mon.counts[i], bin_events(sel, time=mon.edges).values)
    assert cubes[0].monitor is None


@pytest.mark.parametrize("threaded", [False, True])
def test_compact_and_dense_reductions_agree(pn, threaded, monkeypatch):
    """image, counts_in and region_counts of a compact cube equal the dense
    cube's (the reductions every step uses), on one thread and split by
    frames over threads; several label maps add up in one pass."""
    from xcube.binning import compact

    monkeypatch.setattr(compact, "PARALLEL_EVENTS", 1 if threaded else compact.PARALLEL_EVENTS)
    monkeypatch.setattr(compact.os, "cpu_count", lambda: 3 if threaded else 1)
    res = xcube.search_transients(pn, time_bin=200.0)
    dense = res.cube
    red = reductions(dense)
    cc = _compact_of(dense.values)
    rng = np.random.default_rng(3)
    frames_sel = rng.random(cc.n_frames) < 0.5
    pix = rng.random((cc.ny, cc.nx)) < 0.3
    labels = rng.integers(-1, 4, (cc.ny, cc.nx))
    assert np.array_equal(cc.image(frames_sel), np.asarray(red.image(frames_sel)))
    assert np.array_equal(cc.counts_in(pix), np.asarray(red.counts_in(pix)))
    assert np.array_equal(cc.region_counts(labels, 4), np.asarray(red.region_counts(labels, 4)))
    assert np.array_equal(cc.frame_totals(), np.asarray(red.frame_totals()))
    other = rng.integers(-1, 4, (cc.ny, cc.nx))
    both = np.asarray(red.region_counts(labels, 4)) + np.asarray(red.region_counts(other, 4))
    assert np.array_equal(cc.region_counts(np.stack([labels, other]), 4), both)
    by = rng.integers(-1, 3, cc.n_frames)
    assert np.array_equal(cc.image_by(by, 3), np.stack([np.asarray(red.image(by == k)) for k in range(3)]))


def _compact_of(dense: np.ndarray) -> CompactCube:
    nt, ny, nx = dense.shape
    t, yy, xx = np.nonzero(dense)
    cells = np.repeat(yy * nx + xx, dense[t, yy, xx]).astype(np.uint16)
    seg = np.concatenate([[0], np.cumsum(dense.reshape(nt, -1).sum(axis=1))])
    axis = lambda name, n: Axis.from_edges(name, np.arange(n + 1.0))  # noqa: E731
    return CompactCube(cells, seg, axis("time", nt), axis("y", ny), axis("x", nx))


def test_unsorted_events_refused(pn):
    ev = pn.isel(event=np.r_[np.arange(1000, 2000), np.arange(0, 1000), np.arange(2000, pn.sizes["event"])])
    with pytest.raises(ValueError, match="not time-sorted"):
        xcube.search_transients(ev, time_bin=50.0)


def test_compact_cube_dense_and_lazy():
    rng = np.random.default_rng(0)
    dense = rng.poisson(0.7, (7, 3, 4))
    cc = _compact_of(dense)
    assert np.array_equal(cc.dense(), dense)
    lazy = cc.to_dask(chunk_bytes=2 * 3 * 4 * 4)
    assert isinstance(lazy, da.Array) and lazy.chunks[0] == (2, 2, 2, 1)
    assert np.array_equal(lazy.compute(), dense)
    assert np.array_equal(cc.frame_totals(), dense.reshape(7, -1).sum(axis=1))


def test_guard_band_and_large_counts_settled_by_direct_test():
    """Voxels whose mu sits on a threshold-table breakpoint, or with n beyond
    the table, are decided by the direct Bayes-factor test."""
    sigma = 3.0
    table = bayes.threshold_table(sigma)
    n_vals = np.array([3, 7, 20, 150, bayes.TABLE_SIZE + 5])
    # one frame per voxel; frame type k has mu = T * L with T = 1 on pixel 0 of a 2-pixel grid
    mu_vals = np.concatenate([table.peak_break[n_vals[:4]], [bayes.TABLE_SIZE * 0.9]])
    nt = n_vals.size
    cells = np.concatenate([np.zeros(n, np.uint32) for n in n_vals])
    seg = np.concatenate([[0], np.cumsum(n_vals)])
    cc = CompactCube(cells, seg, Axis.from_edges("time", np.arange(nt + 1.0)), Axis.from_edges("y", [0.0, 1.0]),
                     Axis.from_edges("x", [0.0, 1.0, 2.0]))
    types = decision.FrameTypes(np.arange(nt), np.zeros(nt, np.int8), mu_vals.copy(), np.zeros(nt),
                                np.ones(nt, np.int64), np.array([[1.0, np.nan]]), np.zeros(nt, np.int64),
                                np.zeros((1, 2)), np.zeros(nt, np.int64))
    flags = decision.flag_voxels(cc, None, sigma, types=types)
    pk, ec = bayes.masks(n_vals.astype(float), mu_vals, sigma)
    fp, fe = flags.peak.ravel(), flags.eclipse.ravel()
    assert fp[0] == pk.sum() and fe[0] == ec.sum() and fp[1] == fe[1] == 0
    got = {(int(t), int(k)) for t, p, k in flags.voxels}
    want = {(int(t), 0) for t in np.flatnonzero(pk)} | {(int(t), 1) for t in np.flatnonzero(ec)}
    assert got == want


@pytest.mark.parametrize("threads", [1, 2])
def test_false_alarms_per_type_equal_summed_images(threads, monkeypatch):
    """``decision.false_alarms`` (one numba loop over the frame types) equals
    the sum over types of ``bayes.expected_false_alarms`` of each mu image
    times its frames, including types with mu beyond the interpolation grid
    (the exact path) and NaN pixels."""
    rng = np.random.default_rng(8)
    n_types, npix = 40, 500
    t_gti, t_bti = rng.uniform(1e-4, 5e-3, npix), rng.uniform(1e-4, 5e-3, npix)
    t_gti[:5] = np.nan
    rate = rng.uniform(0.0, 1e-3, npix)
    rate[7] = 3.0  # a bright source: mu of thousands in long frames
    sub = rng.integers(0, 2, n_types).astype(np.int8)
    lc = rng.uniform(0.0, 5e3, n_types)
    exposure = rng.uniform(1.0, 5e3, n_types)
    exposure[:3] = 2e4  # mu beyond the interpolation grid at the bright pixel
    n_frames = rng.integers(1, 30, n_types)
    # two rate images (S0, and S0 at a CCD's live fraction), used by alternate types
    rates = np.stack([rate, rate * 0.5])
    types = decision.FrameTypes(np.arange(n_types), sub, lc, exposure, n_frames, np.stack([t_gti, t_bti]),
                                sub.astype(np.int64), rates, np.arange(n_types) % 2)
    monkeypatch.setattr(decision, "_PARALLEL_VOXELS", 1 if threads > 1 else 1 << 40)
    monkeypatch.setattr(decision.os, "cpu_count", lambda: threads)
    got = decision.false_alarms(types, 3.0)
    parts = [bayes.expected_false_alarms(types.mu(k, k + 1), 3.0) for k in range(n_types)]
    assert got.peak == pytest.approx(sum(w * f.peak for w, f in zip(n_frames, parts)), rel=1e-12)
    assert got.eclipse == pytest.approx(sum(w * f.eclipse for w, f in zip(n_frames, parts)), rel=1e-12)
    assert np.nanmax(types.mu(0, 3)) >= bayes.false_alarm_grid(3.0).mu_hi  # the exact path was taken
