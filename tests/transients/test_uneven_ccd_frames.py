"""A bright constant source on a CCD whose own good time ends before the
other CCDs': in the frames where that CCD was off (or live for part of the
frame) the model expects the source at the CCD's live fraction of the
frame's exposure (:func:`xcube.transients.frames.ccd_live_fraction`), so the
source is not seen as eclipsed and no frame is set aside."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import xcube
from xcube.simulate.models import Source
from xcube.transients.frames import ccd_live_fraction
from xcube.transients.grid import search_cubes, search_run

T_OFF = 20.0  # s: the source's CCD stops this long before the others


def _observation(t_off=T_OFF):
    """A MOS1 observation of 3000 s with a 4 ct/s source at the pointing, whose CCD (CCD 1, the central one)
    ends its GTI ``t_off`` s before the other CCDs (its events after that removed)."""
    ev, _ = xcube.simulate.event_list("xmm-mos1", duration=3000.0, seed=11, background_rate=0.4,
                                      sources=[Source(rate=4.0, x=25921.0, y=25921.0)])
    ev = ev.compute()
    stop = float(ev["gti_stop"].values[-1])
    if t_off:
        ccd = np.asarray(ev["ccdnr"].values)
        ev = ev.isel(event=np.flatnonzero(~((ccd == 1) & (ev["time"].values >= stop - t_off))))
        c_stop = ev["ccd_gti_stop"].values.copy()
        c_stop[ev["ccd_gti_ccd"].values == 1] = stop - t_off
        ev["ccd_gti_stop"] = xr.Variable(ev["ccd_gti_stop"].dims, c_stop, ev["ccd_gti_stop"].attrs)
    return ev, stop


def test_a_ccd_off_under_a_bright_source_is_no_eclipse():
    ev, stop = _observation()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = xcube.search_transients(ev, time_bin=50.0)
    eclipses = res.detections[res.detections["kind"] == "eclipse"]
    assert len(eclipses) == 0, eclipses[["t_start", "t_stop", "counts", "expected", "log10_bayes"]]
    # the last frame keeps its exposure (nothing set aside), and the source is expected at CCD 1's live share
    lo = res.cube["time_lo"].values
    last = int(np.searchsorted(lo, stop - T_OFF, side="right")) - 1
    expo = res.cube["exposure"].values
    assert expo[last] > 0 and res.summary["n_bad_frames"] == 0
    image = res.cube.sum("time").values
    iy, ix = np.unravel_index(np.argmax(image), image.shape)  # the source's brightest cell
    mu = res.expected.values[:, iy, ix]
    share = (stop - T_OFF - lo[last]) / expo[last]  # CCD 1 live for 30 s of the frame's 50 s
    full = mu[last - 1] / expo[last - 1] * expo[last]  # the source at its full rate over the last frame
    assert abs(mu[last] - share * full) < 0.05 * full  # (the background's share of mu is below 1 %)


def test_live_fraction_of_the_source_ccd():
    ev, stop = _observation()
    run, _ = search_run([ev], 50.0, (0.2, 12.0))
    (cube,) = search_cubes([ev], [run], 20.0, True, True, set())
    expo = np.asarray(cube.exposure, np.float64)
    group, fraction = ccd_live_fraction(cube, [ev], expo)
    last = int(np.searchsorted(cube.time.lo, stop - T_OFF, side="right")) - 1
    g = group[cube.ny // 2, cube.nx // 2]  # the pointing: CCD 1 alone
    assert g > 0 and fraction[0].tolist() == [1.0] * expo.size
    assert np.isclose(fraction[g, last], (stop - T_OFF - cube.time.lo[last]) / expo[last])
    assert np.all(fraction[g, :last] == 1.0)
    # every CCD live as long as the frames: no fraction to apply
    ev_even, _ = _observation(t_off=0.0)
    run, _ = search_run([ev_even], 50.0, (0.2, 12.0))
    (cube,) = search_cubes([ev_even], [run], 20.0, True, True, set())
    assert ccd_live_fraction(cube, [ev_even], np.asarray(cube.exposure, np.float64)) is None


def test_compact_decision_equals_the_dense_one_with_live_fractions():
    """The compact path (frame types with their own rate images, the flag and false-alarm kernels) decides
    every voxel as the dense test on the result's expected cube (model_frames, the live fractions applied)."""
    ev, _ = _observation(t_off=120.0)  # CCD 1 off for the last two 50 s frames and part of a third
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = xcube.search_transients(ev, time_bin=50.0, sigma=2.0)  # a low threshold: flagged voxels to compare
    assert_summary_equals_dense(res, 2.0)
    assert res.summary["frame_types"] > 2  # the uneven frames are types of their own


def assert_summary_equals_dense(res, sigma: float) -> None:
    """The search's flagged-voxel counts and expected false alarms equal the dense
    computation (bayes.masks, expected_false_alarms) on its expected cube; some peaks flagged."""
    from xcube.transients import bayes

    mu = res.expected.values
    pk, ec = bayes.masks(res.cube.values, mu, sigma)
    assert res.summary["flagged_voxels"] == {"peak": int(pk.sum()), "eclipse": int(ec.sum())} and pk.sum() > 0
    fa = bayes.expected_false_alarms(mu, sigma)
    assert res.summary["expected_false_alarms"]["peak"] == pytest.approx(fa.peak, rel=1e-9)
    assert res.summary["expected_false_alarms"]["eclipse"] == pytest.approx(fa.eclipse, rel=1e-9)


def _cut_ccd(ev, ccd: int, a: float, b: float):
    """``ev`` with CCD ``ccd`` off from ``a`` to ``b`` [s of mission time]: its events there dropped and the
    interval cut from its GTIs."""
    t, c = ev["time"].values, np.asarray(ev["ccdnr"].values).astype(int)
    ev = ev.isel(event=np.flatnonzero(~((c == ccd) & (t >= a) & (t < b))))
    rows = []
    for k, s, e in zip(ev["ccd_gti_ccd"].values, ev["ccd_gti_start"].values, ev["ccd_gti_stop"].values):
        parts = [(s, min(e, a)), (max(s, b), e)] if int(k) == ccd else [(s, e)]
        rows += [(k, x0, x1) for x0, x1 in parts if x1 > x0]
    k, s, e = (np.array(v) for v in zip(*rows))
    ev = ev.drop_vars(["ccd_gti_ccd", "ccd_gti_start", "ccd_gti_stop"])
    return ev.assign(ccd_gti_ccd=("ccd_gti", k.astype(np.int16)), ccd_gti_start=("ccd_gti", s.astype(np.float64)),
                     ccd_gti_stop=("ccd_gti", e.astype(np.float64)))


def test_several_cameras_weigh_by_their_share_of_the_counts():
    """pn (3 ct/s) + MOS1 + MOS2 (1 ct/s each) of one source, the pn CCD under it off for 200 s: the pn gives
    about 60 % of the cell's counts, so the source is expected at about 40 % of its rate in those frames, not
    at the cameras' mean live fraction (2/3), which made a false eclipse (log10 B 9.5)."""
    x = 25921.0 + 3000.0
    cams = [xcube.simulate.event_list(p, duration=5000.0, seed=3 + k, soft_protons=0,
                                      sources=[Source(rate=r, x=x, y=x)])[0].compute()
            for k, (p, r) in enumerate((("xmm-pn", 3.0), ("xmm-mos1", 1.0), ("xmm-mos2", 1.0)))]
    pn = cams[0]
    t0 = float(pn["gti_start"].values[0])
    near = (abs(pn["x"].values - x) < 100) & (abs(pn["y"].values - x) < 100)
    ccd = int(np.bincount(np.asarray(pn["ccdnr"].values[near]).astype(int)).argmax())
    cams[0] = _cut_ccd(pn, ccd, t0 + 1000.0, t0 + 1200.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = xcube.search_transients(cams, time_bin=50.0)
    assert not (res.detections["kind"] == "eclipse").any(), res.detections[["kind", "counts", "expected"]]
    n, mu = res.cube.values, res.expected.values
    iy, ix = np.unravel_index(np.nanargmax(n.sum(0)), n.shape[1:])
    lo = res.cube["time_lo"].values - t0
    off = (lo >= 1000.0) & (lo + 50.0 <= 1200.0)
    on = (lo >= 1500.0) & (lo < 4500.0)
    ratio = mu[off, iy, ix].mean() / mu[on, iy, ix].mean()
    seen = n[off, iy, ix].sum() / n[on, iy, ix].mean() / off.sum()
    assert abs(ratio - seen) < 0.1 and ratio < 0.55, (ratio, seen)  # (equal weights gave 2/3)
