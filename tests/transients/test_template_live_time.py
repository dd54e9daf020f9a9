"""A pn CCD switched off for the second half of the observation (its events
and CCD GTI cut there): the background template is taken per unit of each
pixel's live time and applied at the frame's live fractions, so that the
CCD gets its full background share while it is live (the template of the
summed image gave it half: a false peak there) and none while it is off."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from test_uneven_ccd_frames import assert_summary_equals_dense

import xcube
from xcube.binning.counts import reductions
from xcube.transients import bayes, decision
from xcube.transients import detect as D
from xcube.transients.background import background_model, model_frames
from xcube.transients.frames import ccd_live_fraction
from xcube.transients.grid import search_cubes, search_run

CCD = 4  # the CCD switched off


def _observation(seed: int, drop: bool = True, duration: float = 40000.0):
    """A simulated pn observation (background 2 ct/s, 5 sources) and the time [s] CCD ``CCD`` stops (its events
    after that removed, its CCD GTI ending there) when ``drop``."""
    ev, _ = xcube.simulate.event_list("xmm-pn", duration=duration, seed=seed, background_rate=2.0, sources=5)
    ev = ev.compute()
    start, stop = float(ev["gti_start"].values[0]), float(ev["gti_stop"].values[-1])
    cut = start + 0.5 * (stop - start)
    if drop:
        ccd = np.asarray(ev["ccdnr"].values)
        ev = ev.isel(event=np.flatnonzero(~((ccd == CCD) & (ev["time"].values >= cut))))
        c_stop = ev["ccd_gti_stop"].values.copy()
        c_stop[ev["ccd_gti_ccd"].values == CCD] = cut
        ev["ccd_gti_stop"] = xr.Variable(ev["ccd_gti_stop"].dims, c_stop, ev["ccd_gti_stop"].attrs)
    return ev, cut


def _search(ev, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xcube.search_transients(ev, time_bin=50.0, **kw)


def test_dropped_ccd_gets_its_background_while_live_and_none_while_off():
    ev, cut = _observation(seed=2, duration=20000.0)
    run, _ = search_run([ev], 50.0, (0.2, 12.0))
    (cube,) = search_cubes([ev], [run], 20.0, True, True, set())
    expo = np.asarray(cube.exposure, np.float64)
    live = ccd_live_fraction(cube, [ev], expo)
    assert live is not None
    model = background_model(cube, live_fraction=live)
    group, fraction = live
    mu = model_frames(model)
    on = model["defined"].values & (cube.time.hi <= cut)  # CCD 4 live through the frame
    off = model["defined"].values & (cube.time.lo >= cut)  # and off
    rows = np.flatnonzero((fraction[:, on] == 1.0).all(axis=1) & (fraction[:, off] == 0.0).all(axis=1))
    ccd = np.isin(group, rows)  # the cells of CCD 4 alone (gap cells have half its fraction)
    bkg = ccd & ~model["source_mask"].values & np.isfinite(model["template_gti"].values)
    assert bkg.sum() > 50 and on.sum() > 100 and off.sum() > 100
    n = float(np.asarray(reductions(cube).image(on))[bkg].sum())
    m = float(mu[on][:, bkg].sum())
    assert abs(n - m) < 3.0 * np.sqrt(m), (n, m, n / m)  # the summed template's: n / m = 2.3
    assert np.all(mu[off][:, ccd] == 0.0)  # no background (and no source) on the CCD while it is off
    # every defined frame's mu still sums to its counts outside the mask
    free = ~model["source_mask"].values
    lc = model["light_curve"].values
    d = model["defined"].values
    np.testing.assert_allclose(np.nansum(mu[d][:, free], axis=1), lc[d], rtol=1e-10)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_ccd_off_for_half_the_observation_adds_no_detection(seed):
    """Every detection of the observation with the dropout is one of the full observation's (seed 2 gave a
    false peak on CCD 4 in its live half, expected at half its background)."""
    ev, cut = _observation(seed)
    full, _ = _observation(seed, drop=False)
    got, ref = (r.detections for r in (_search(ev), _search(full)))
    known = set(zip(ref["x"], ref["y"], ref["t_start"]))
    extra = got[[k not in known for k in zip(got["x"], got["y"], got["t_start"])]]
    assert extra.empty, extra[["kind", "x", "y", "t_start", "counts", "expected", "log10_bayes"]]


def test_compact_decision_equals_the_dense_one_with_a_dropout():
    """The compact path (frame types with their own templates and rate images: the flag and false-alarm
    kernels, the detections' light curves from the model) equals the dense one on model_frames' mu."""
    ev, _ = _observation(seed=2, duration=10000.0)
    res = _search(ev, sigma=2.0)  # a low threshold: flagged voxels to compare
    assert_summary_equals_dense(res, 2.0)
    # the model layer: every voxel, and the regions' expected light curves (footprint sums of the templates)
    run, _ = search_run([ev], 50.0, (0.2, 12.0))
    (cube,) = search_cubes([ev], [run], 20.0, True, True, set())
    model = background_model(cube, live_fraction=ccd_live_fraction(cube, [ev], np.asarray(cube.exposure)))
    flags = decision.flag_voxels(cube, model, 2.0)
    n, mu = cube.dense(), model_frames(model)
    pk, ec = bayes.masks(n, mu, 2.0)
    assert np.array_equal(flags.peak, pk.sum(axis=0)) and np.array_equal(flags.eclipse, ec.sum(axis=0))
    t, p = np.nonzero(pk.reshape(n.shape[0], -1))
    assert np.array_equal(flags.voxels[flags.voxels[:, 2] == 0][:, :2], np.stack([t, p], axis=1))
    regions = D.region_list(flags.peak, flags.eclipse, n.sum(axis=0))
    assert regions
    foot = np.stack([r[1] for r in regions]).astype(np.float64)
    want = np.einsum("tyx,ryx->rt", np.nan_to_num(mu), foot)
    want[np.einsum("tyx,ryx->rt", np.isnan(mu).astype(float), foot) > 0] = np.nan
    got, _ = D._model_light_curves(model, regions, np.zeros(want.shape))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
