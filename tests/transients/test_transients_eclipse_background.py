"""A background model that survives eclipses: each constant source's rate
is fitted outside its eclipse, so the eclipsing source of the demo gives no
peak detection."""
from __future__ import annotations

import numpy as np
import pytest

import xcube
from xcube import simulate
from xcube.transients.background import background_model, mask_eclipses
from xcube.transients.cli import demo


def _peaks_near(det, ra, dec, radius=30.0):
    sep = np.hypot((det["ra"] - ra) * np.cos(np.radians(dec)), det["dec"] - dec) * 3600.0
    return det[(sep < radius) & (det["kind"] == "peak")]


@pytest.fixture(scope="module")
def short_demo(tmp_path_factory):
    """The demo observation, 10 ks long (its 2 ks eclipse is a fifth of it)."""
    out = tmp_path_factory.mktemp("demo") / "out"
    res, truth = demo(out, seed=1, duration=10_000.0)
    ev = xcube.open_events(out / "events_pn.fits")
    return res, truth, ev


def test_demo_gives_no_peak_on_the_eclipsing_source(short_demo):
    res, truth, ev = short_demo
    ecl = truth[truth["kind"] == "eclipse"].iloc[0]
    assert len(_peaks_near(res.detections, ecl.ra, ecl.dec)) == 0
    assert all(r.summary["eclipse_masked_sources"] >= 1 for r in res)
    # the eclipse itself is still found
    assert any((r.detections["kind"] == "eclipse").any() for r in res)
    # with the rate averaged over the eclipse (the old model) the 200 s run has a false peak there
    old = xcube.search_transients(ev, time_bin=200.0, eclipse_mask=False)
    assert len(_peaks_near(old.detections, ecl.ra, ecl.dec)) >= 1 and old.summary["eclipse_masked_sources"] == 0


def test_refitted_rate_equals_the_rate_outside_the_eclipse(short_demo):
    res, truth, ev = short_demo
    r = res[1]  # 200 s frames
    cube = r.cube
    model = background_model(cube, cube["bti"].values, cube["bad_frame"].values)
    ecl = truth[truth["kind"] == "eclipse"].iloc[0]
    iy = int(np.searchsorted(cube["y_lo"].values, ecl.y, side="right") - 1)
    ix = int(np.searchsorted(cube["x_lo"].values, ecl.x, side="right") - 1)
    assert model["source_mask"].values[iy, ix]
    t = cube["time"].values
    frames = np.flatnonzero((t > ecl.t_start) & (t < ecl.t_stop))
    voxels = np.stack([frames, np.full(frames.size, iy * cube.sizes["x"] + ix)], axis=1)
    refit = mask_eclipses(cube, model, voxels, dilate=1)
    assert refit.attrs["eclipse_masked_sources"] == 1
    assert refit["source_rate"].values[iy, ix] > model["source_rate"].values[iy, ix]
    # by hand, at that pixel: the source counts and exposure of the GTI frames outside the eclipse (+- one frame)
    keep = (model["subset"].values == 0)
    keep[max(frames[0] - 1, 0):frames[-1] + 2] = False
    n = cube.values[keep, iy, ix].sum()
    bkg = np.nan_to_num(model["template_gti"].values[iy, ix]) * model["light_curve"].values[keep].sum()
    want = max(n - bkg, 0.0) / model["exposure"].values[keep].sum()
    assert refit["source_rate"].values[iy, ix] == pytest.approx(want, rel=1e-12)
    # pixels of other sources keep their rate; no eclipse voxel: the model itself
    other = model["source_mask"].values.copy()
    other[iy, ix] = False
    from scipy import ndimage

    lab, _ = ndimage.label(model["source_mask"].values, np.ones((3, 3), bool))
    other &= lab != lab[iy, ix]
    np.testing.assert_array_equal(refit["source_rate"].values[other], model["source_rate"].values[other])
    assert mask_eclipses(cube, model, np.zeros((0, 2), int)) is model


def test_a_strong_flare_stays_a_peak_with_the_eclipse_refit():
    """A bright flare raises its cell's mean rate so that every quiet frame
    looks eclipsed; the refit must take the quiet rate, not the flare's
    (which made the flare a log10 B ~ 150 false eclipse and hid it)."""
    ev, _ = simulate.event_list("xmm-pn", duration=10_000.0, seed=5, soft_protons=0,
                                flares=[dict(t_peak=3_000.0, amplitude=5.0, width=100.0, x=27_000, y=25_000)])
    det = xcube.search_transients(ev, time_bin=200.0).detections
    near = det[(abs(det["x"] - 27_000) < 800) & (abs(det["y"] - 25_000) < 800)]
    assert list(near["kind"]) == ["peak"] and near["counts"].iloc[0] > 300


def test_a_long_flare_of_a_faint_spot_is_a_peak_and_no_eclipse():
    """A 1 ct/s flare of sigma 1500 s where no source shines: its counts raise the constant-source rate there,
    so that every quiet 200 s frame looked eclipsed (an eclipse over the whole observation, n = 0 against
    mu = 40) and the flare itself was weak (mu 40 in its peak frame). The rate is now fitted on the frames
    where the spot is at its usual level (the majority): one peak, no eclipse."""
    import warnings

    import xcube

    ev, truth = xcube.simulate.event_list("xmm-mos1", duration=16_000, seed=3, soft_protons=0,
                                          flares=[dict(t_peak=6000, amplitude=1.0, width=1500, x=24000.0, y=27000.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = xcube.search_transients(ev, time_bin=200.0).detections
    assert list(d["kind"]) == ["peak"], d[["kind", "counts", "expected", "log10_bayes"]]
    assert d["expected"].iloc[0] < 5.0 and d["log10_bayes"].iloc[0] > 300


def test_a_flare_of_a_spot_without_a_steady_source_is_not_expected_at_its_own_rate():
    """A 1 ct/s flare of sigma 1000 s (about 2500 counts) where no source shines: its counts made the
    constant-source rate there, so that its peak 200 s frame expected 23 counts instead of the background's 0.2,
    and the flare was 5 orders of magnitude weaker (log10 B 115). The source is refitted outside its peak frames."""
    import warnings

    import xcube

    ev, _ = xcube.simulate.event_list("xmm-mos1", duration=20_000, seed=1, soft_protons=0,
                                      flares=[dict(t_peak=10000, amplitude=1.0, width=1000, x=24000.0, y=27000.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = xcube.search_transients(ev, time_bin=200.0)
    d = res.detections
    assert list(d["kind"]) == ["peak"]
    assert d["expected"].iloc[0] < 3.0 and d["log10_bayes"].iloc[0] > 300
    assert res.summary["eclipse_masked_sources"] >= 1


@pytest.mark.parametrize("case", ["flare of a faint source", "eclipse of 45 %", "flare and eclipse"])
def test_the_source_rate_is_fitted_on_its_steady_state(case):
    """A faint steady source (0.1 ct/s) with a long flare (sigma 1500 s in 10 ks): only a third of the frames
    looked eclipsed, so the rate was fitted on the unflagged flare wings, about 4x the quiet level, and a false
    eclipse over the whole observation stayed beside the flare. Outside its eclipse frames the source is not
    steady (chi-square) and falls towards their level, so the rate is fitted on them: one peak. A real eclipse
    of 45 % of the observation leaves a steady source outside it: its rate is fitted there, and the eclipse is
    found; so is the eclipse of a source that also flares."""
    import warnings

    import xcube
    from xcube.simulate import Eclipse, Flare, Source

    x, y = 25921 + 2000, 25921 - 1000
    if case == "flare of a faint source":
        kw = dict(sources=[Source(rate=0.1, x=x, y=y)], flares=[Flare(t_peak=5000, amplitude=1.0, width=1500, x=x,
                                                                       y=y)])
        seed, want = 12, {"peak"}
    elif case == "eclipse of 45 %":
        kw = dict(sources=0, eclipses=[Eclipse(t_start=2500, duration=4500, depth=1.0, rate=1.0, x=x, y=y)])
        seed, want = 11, {"eclipse"}
    else:  # a 1 ct/s source eclipsed for 2000 s that also flares (sigma 1000 s): not steady outside its eclipse,
        # but its level there stays far above the eclipsed one, so the eclipse is real (it lost the eclipse and
        # gave a peak over the whole observation when fitted on the eclipse frames)
        kw = dict(sources=0, eclipses=[Eclipse(t_start=6500, duration=2000, depth=1.0, rate=1.0, x=x, y=y)],
                  flares=[Flare(t_peak=3000, amplitude=2.0, width=1000, x=x, y=y)])
        seed, want = 2, {"peak", "eclipse"}
    ev, _ = xcube.simulate.event_list("xmm-mos1", duration=10_000, seed=seed, soft_protons=0, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = xcube.search_transients(ev, time_bin=100.0).detections
    assert set(d["kind"]) == want, d[["kind", "x", "y", "t_start", "t_stop", "log10_bayes"]]
    assert (d["t_stop"] - d["t_start"]).max() < 6000.0  # no detection over the whole observation
