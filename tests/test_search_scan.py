"""The search's single events pass and compact-cube loops give the numbers of
the separate building blocks (select + bin_events, bad_time_intervals,
bad_frames, background_model, expected_counts, bayes.masks, detect)."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest

import xcube
from xcube import simulate
from xcube.binning import bin_events
from xcube.select import select
from xcube.transients import background, bayes, frames, scan, search
from xcube.transients import bti as btimod
from xcube.transients import detect as D


def _reference(evs, res, band, sigma, gti_only=False):
    """The building blocks, run separately on the result's grid."""
    scr = search.prepare_events(evs)
    band_evs = [select(e, energy_band=band) for e in scr]
    cube = res.cube
    edges = np.append(cube.time_lo.values, cube.time_hi.values[-1])
    xe = np.append(cube.x_lo.values, cube.x_hi.values[-1])
    ye = np.append(cube.y_lo.values, cube.y_hi.values[-1])
    counts = sum(bin_events(e, time=edges, y=ye, x=xe).values for e in band_evs)
    tb = float(edges[1] - edges[0])
    btis = btimod.bad_time_intervals(scr, min(tb, 100.0), t0=edges[0], t_stop=edges[-1],
                                     energy_band=search.BTI_BAND, rate=search.BTI_RATE)
    is_bti = btimod.frame_bti(edges[:-1], edges[1:], btis)
    bad = frames.bad_frames(band_evs, edges, is_bti)
    drop = bad | (is_bti if gti_only else np.zeros_like(bad))
    model = background.background_model(cube, is_bti, drop, wcs=xcube.wcs(evs[0]))
    mu = background.expected_counts(cube, model=model).values
    return counts, is_bti, bad, btis, mu


def _check(evs, tb, band=(0.2, 12.0), sigma=3.0, **kw):
    res = xcube.search_transients(evs, time_bin=tb, energy_band=band, sigma=sigma, **kw)
    counts, is_bti, bad, btis, mu_ref = _reference(evs, res, band, sigma, kw.get("gti_only", False))
    assert np.array_equal(res.cube.values, counts)
    assert np.array_equal(res.cube.bti.values, is_bti) and res.summary["n_bti"] == len(btis[0])
    assert np.array_equal(res.cube.bad_frame.values, bad)
    mu = res.expected.values
    assert np.array_equal(np.isnan(mu), np.isnan(mu_ref))
    assert np.array_equal(mu[np.isfinite(mu)], mu_ref[np.isfinite(mu_ref)])
    pk, ec = bayes.masks(counts, mu_ref, sigma)
    assert np.array_equal(res.masks.peak.values, pk) and np.array_equal(res.masks.eclipse.values, ec)
    fa = bayes.expected_false_alarms(mu_ref, sigma)
    assert res.summary["expected_false_alarms"]["peak"] == pytest.approx(fa.peak, rel=1e-9, abs=1e-12)
    assert res.summary["expected_false_alarms"]["eclipse"] == pytest.approx(fa.eclipse, rel=1e-9, abs=1e-12)
    # the dense path of detect() on the same masks
    obs = str(evs[0].attrs.get("obs_id"))
    tab, lcs = D.detect(res.cube.copy(data=counts), res.expected.copy(data=mu_ref), pk, ec, wcs=xcube.wcs(evs[0]),
                        run_id=res.run_id, obs_id=obs, bti=is_bti, bad_frame=bad)
    assert len(tab) == len(res.detections)
    if len(tab):
        cols = [c for c in tab.columns if c != "sigma_equivalent"]
        pd.testing.assert_frame_equal(tab[cols], res.detections[cols], rtol=1e-10)
        np.testing.assert_allclose(tab["sigma_equivalent"], res.detections["sigma_equivalent"], atol=2e-6)
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


def test_single_pass_equals_building_blocks(pn):
    res = _check([pn], 50.0)
    assert res.summary["n_bti"] > 0 and set(res.detections["kind"]) == {"peak", "eclipse"}
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


def test_unsorted_events_refused(pn):
    ev = pn.isel(event=np.r_[np.arange(1000, 2000), np.arange(0, 1000), np.arange(2000, pn.sizes["event"])])
    with pytest.raises(ValueError, match="not time-sorted"):
        xcube.search_transients(ev, time_bin=50.0)


def test_compact_cube_dense_and_lazy():
    rng = np.random.default_rng(0)
    nt, ny, nx = 7, 3, 4
    dense = rng.poisson(0.7, (nt, ny, nx))
    t, y, x = np.nonzero(dense)
    reps = dense[t, y, x]
    cells = np.repeat(y * nx + x, reps).astype(np.uint16)
    seg = np.concatenate([[0], np.cumsum(dense.reshape(nt, -1).sum(axis=1))])
    cc = scan.CompactCube(cells, seg, ny, nx)
    assert np.array_equal(cc.dense(), dense)
    lazy = cc.to_dask(chunk_bytes=2 * ny * nx * 4)
    assert isinstance(lazy, da.Array) and lazy.chunks[0] == (2, 2, 2, 1)
    assert np.array_equal(lazy.compute(), dense)
    assert np.array_equal(cc.frame_totals(), dense.reshape(nt, -1).sum(axis=1))


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
    cc = scan.CompactCube(cells, seg, 1, 2)
    types = scan.FrameTypes(np.arange(nt), np.zeros(nt, np.int8), mu_vals.copy(), np.zeros(nt), np.ones(nt, np.int64),
                            np.array([1.0, np.nan]), np.full(2, np.nan), np.zeros(2))
    cand, ptr = scan.eclipse_candidates(types, sigma)
    fp, fe, flagged = scan.flag_voxels(cc, types, sigma, cand, ptr)
    pk, ec = bayes.masks(n_vals.astype(float), mu_vals, sigma)
    assert fp[0] == pk.sum() and fe[0] == ec.sum() and fp[1] == fe[1] == 0
    got = {(int(t), int(k)) for t, p, k in flagged}
    want = {(int(t), 0) for t in np.flatnonzero(pk)} | {(int(t), 1) for t in np.flatnonzero(ec)}
    assert got == want
