"""Injection of transients into event lists: xcube.simulate.inject_flare / inject_eclipse."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from conftest import real_file

import xcube
import xcube.simulate as sim
from xcube import gti as gtimod

T0 = 7.0e8
PSF_SIGMA_PIX = 6.6 / 2.355 / 0.05


def test_inject_flare_into_real_mos1_file():
    ev = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"))
    g = gtimod.from_dataset(ev)
    t_peak = 0.5 * (g[0][0] + g[1][-1])
    out, truth = sim.inject_flare(ev, ra=263.60, dec=-32.50, t_peak=t_peak, amplitude=1.0, width=200.0, seed=4)
    row = truth.iloc[0]
    n_new = out.sizes["event"] - ev.sizes["event"]
    assert n_new == row["counts"] > 300
    assert list(out.data_vars) == list(ev.data_vars)
    for v in ev.data_vars:
        assert out[v].dtype == ev[v].dtype, v
    t = out["time"].values
    assert np.all(np.diff(t) >= 0)
    assert gtimod.in_gti(t, g).sum() == gtimod.in_gti(ev["time"].values, g).sum() + n_new
    # the new events: near the position, PSF-sized, pattern/flag 0, CCD of the neighbourhood
    old = ev.compute()
    key_old = set(zip(old["time"].values.tolist(), old["x"].values.tolist()))
    new = np.array([(tt, xx) not in key_old for tt, xx in zip(t.tolist(), out["x"].values.tolist())])
    assert new.sum() == n_new
    x, y = out["x"].values[new], out["y"].values[new]
    assert np.hypot(x.mean() - row["x"], y.mean() - row["y"]) < 10.0
    assert x.std() == pytest.approx(PSF_SIGMA_PIX, rel=0.15)
    assert np.all(out["pattern"].values[new] == 0) and np.all(out["flag"].values[new] == 0)
    near_old = np.hypot(old["x"].values - row["x"], old["y"].values - row["y"]) < 300
    assert set(np.unique(out["ccdnr"].values[new])) <= set(np.unique(old["ccdnr"].values[near_old]))
    px, py = xcube.wcs(ev).wcs_world2pix([263.60], [-32.50], 0)  # raw (no frame conversion)
    assert row["x"] == pytest.approx(px[0]) and row["y"] == pytest.approx(py[0])
    np.testing.assert_allclose(out["energy"].values[new], out["pi"].values[new] / 1000.0, rtol=1e-6)


def test_inject_lazy_merge_equals_eager_merge():
    ev = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"), chunks=20000)
    assert len(ev["time"].data.chunks[0]) > 5
    g = gtimod.from_dataset(ev)
    kw = dict(x=25000.0, y=26000.0, t_peak=g[0][0] + 3000.0, amplitude=2.0, width=500.0, seed=11)
    lazy, t1 = sim.inject_flare(ev, **kw)
    eager, t2 = sim.inject_flare(ev.compute(), **kw)
    assert isinstance(lazy["time"].data, da.Array)
    pd.testing.assert_frame_equal(t1, t2)
    for v in ev.data_vars:
        np.testing.assert_array_equal(lazy[v].values, eager[v].values)


def test_inject_eclipse_and_write_back(tmp_path):
    ev, _ = sim.event_list("xmm-pn", duration=20000.0, seed=12, sources=2, soft_protons=0)
    out, truth = sim.inject_eclipse(ev, x=27000.0, y=25000.0, t_start=T0 + 6000.0, duration=5000.0, depth=1.0,
                                    rate=0.5, seed=3)
    row = truth.iloc[0]
    assert row["kind"] == "eclipse" and row["counts"] == 0 and row["expected_counts"] == 0.0
    added = out.sizes["event"] - ev.sizes["event"]
    assert abs(added - 0.5 * 15000) < 5 * np.sqrt(7500)
    e = out.compute()
    near = np.hypot(e["x"].values - 27000.0, e["y"].values - 25000.0) < 3 * PSF_SIGMA_PIX
    tt = e["time"].values[near] - T0
    in_window = (tt >= 6000) & (tt < 11000)
    assert in_window.sum() < 0.05 * (~in_window).sum()  # only background left inside the eclipse
    path = sim.write(tmp_path / "ecl.fits", out)
    back = xcube.open_events(path)
    assert back.attrs["profile"] == "xmm-pn" and back.sizes["event"] == out.sizes["event"]


def test_inject_random_position_and_errors():
    ev, _ = sim.event_list("xmm-mos1", duration=5000.0, seed=13)
    out, truth = sim.inject_flare(ev, t_peak=T0 + 2500.0, amplitude=1.0, width=100.0, seed=1)
    r = np.hypot(truth["x"][0] - 25921.0, truth["y"][0] - 25921.0) * 0.05 / 60
    assert r < 16.0
    with pytest.raises(ValueError, match="width"):
        sim.inject_flare(ev, t_peak=T0, amplitude=1.0, width=0.0)
    with pytest.raises(ValueError, match="both"):
        sim.inject_flare(ev, t_peak=T0, amplitude=1.0, width=10.0, x=100.0)
    empty = ev.isel(event=slice(0, 0))
    with pytest.raises(ValueError, match="empty"):
        sim.inject_flare(empty, t_peak=T0, amplitude=1.0, width=10.0)


@pytest.mark.parametrize(
    "pos, match",
    [
        (dict(ra=266.6, dec=-32.5), r"ra=266\.6, dec=-32\.5 \(X=-15\d{4}\.\d, Y=\d+\.\d\).*X 1\.\.51840, Y 1\.\.51840"),
        (dict(ra=10.0, dec=10.0), r"ra=10\.0, dec=10\.0 \(not on the list's sky projection.*X 1\.\.51840"),
        (dict(x=60000.0, y=25000.0), r"x=60000\.0, y=25000\.0 is outside .*X 1\.\.51840, Y 1\.\.51840 \(TLMIN/TLMAX\)"),
        (dict(x=25000.0, y=0.0), r"x=25000\.0, y=0\.0 is outside"),
    ],
)
def test_inject_refuses_positions_outside_the_sky_range(pos, match):
    ev = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"))
    assert (ev.attrs["x_min"], ev.attrs["x_max"]) == (1.0, 51840.0)
    with pytest.raises(ValueError, match=match):
        sim.inject_flare(ev, t_peak=1.00537e8, amplitude=1.0, width=100.0, seed=1, **pos)
    with pytest.raises(ValueError, match="inject_eclipse: position"):
        sim.inject_eclipse(ev, t_start=1.00537e8, duration=100.0, seed=1, **pos)


def test_inject_without_tlmin_uses_the_events_extent_and_clips_to_the_range():
    ev, _ = sim.event_list("xmm-mos1", duration=2000.0, seed=3, sources=0, soft_protons=0)
    ev = ev.compute()
    # a position on the edge of the legal range: the PSF's spread stays inside TLMIN/TLMAX
    out, truth = sim.inject_flare(ev, x=1.0, y=25921.0, t_peak=T0 + 1000.0, amplitude=5.0, width=100.0, seed=2)
    assert truth["counts"][0] > 100
    assert out["x"].values.min() >= ev.attrs["x_min"] == 1.0
    bare = ev.assign_attrs({k: None for k in ("x_min", "x_max", "y_min", "y_max")})
    lo, hi = int(ev["x"].min()), int(ev["x"].max())
    with pytest.raises(ValueError, match=rf"X {lo}\.\.{hi}, Y \d+\.\.\d+ \(extent of the events\)"):
        sim.inject_flare(bare, x=lo - 100.0, y=25921.0, t_peak=T0 + 1000.0, amplitude=1.0, width=10.0)
    out, _ = sim.inject_flare(bare, x=lo + 1.0, y=25921.0, t_peak=T0 + 1000.0, amplitude=5.0, width=100.0, seed=2)
    assert out["x"].values.min() >= lo


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(amplitude=float("nan")), r"inject_flare: amplitude=nan: must be a finite number >= 0 ct/s"),
        (dict(amplitude=-1.0), r"amplitude=-1\.0: must be a finite number >= 0"),
        (dict(width=float("inf")), r"width=inf: must be a finite number > 0 s"),
        (dict(t_peak=float("nan")), r"t_peak=nan"),
        (dict(x=25000.0, y=25000.0), r"inject_flare: give ra/dec or x/y, not both"),
        (dict(dec=-95.0), r"dec=-95\.0: must be a finite number >= -90 and <= 90 deg"),
    ],
)
def test_inject_flare_refuses_bad_parameters(kw, match):
    ev = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"))
    kw = {**dict(t_peak=1.00537e8, amplitude=1.0, width=10.0, ra=263.6, dec=-32.5, seed=1), **kw}
    with pytest.raises(ValueError, match=match):
        sim.inject_flare(ev, **kw)


def test_inject_eclipse_refuses_both_positions():
    ev, _ = sim.event_list("xmm-mos1", duration=2000.0, seed=3, sources=0, soft_protons=0)
    with pytest.raises(ValueError, match="inject_eclipse: give ra/dec or x/y, not both"):
        sim.inject_eclipse(ev, t_start=T0, duration=10.0, ra=150.0, dec=2.2, x=25921.0, y=25921.0)


def test_inject_off_the_detector_warns():
    """A position inside TLMIN/TLMAX but far from every event (off the CCDs) was taken without a word."""
    import warnings

    ev, _ = sim.event_list("xmm-mos1", duration=2000.0, seed=3, sources=0, soft_protons=0)
    ev = ev.compute()
    with pytest.warns(UserWarning, match=r"arcsec from the nearest event of the list: probably off the detector"):
        sim.inject_flare(ev, x=1.0, y=25921.0, t_peak=T0 + 1000.0, amplitude=5.0, width=100.0, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sim.inject_flare(ev, x=float(np.median(ev["x"].values)), y=float(np.median(ev["y"].values)),
                         t_peak=T0 + 1000.0, amplitude=5.0, width=100.0, seed=2)


def test_total_eclipse_and_a_flare_outside_the_good_time_on_a_real_xmm_file():
    """The docs' example: a total eclipse (depth 1, the default) into an XMM file with per-CCD GTIs; the
    share recorded by live CCDs was drawn from the eclipse's zero-rate component and raised."""
    ev = xcube.open_events(real_file("xmm", "exod_0001730201_M1_clean.fits"))
    g = gtimod.from_dataset(ev)
    out, truth = sim.inject_eclipse(ev, x=25000, y=25000, t_start=g[0][0] + 2000.0, duration=3000, rate=0.3, seed=5)
    row = truth.iloc[0]
    assert row["counts"] == 0 and row["expected_counts"] == 0.0  # none in the eclipse
    assert out.sizes["event"] - ev.sizes["event"] > 1000  # the source outside it
    out, truth = sim.inject_flare(ev, ra=263.60, dec=-32.50, t_peak=g[1][-1] + 1.0e6, amplitude=1.0, width=20.0,
                                  seed=6)
    assert truth.iloc[0]["counts"] == 0 and truth.iloc[0]["expected_counts"] == 0.0
    assert out.sizes["event"] == ev.sizes["event"]


def test_a_flare_on_a_bright_source_spreads_over_the_raw_pixels_its_psf_covers():
    """The raw-pixel fit took the 400 nearest events and clipped to their range: on the bright MOS1 source
    those lie within 2", and 2525 flare events landed on 16 raw pixels (4 x 4)."""
    ev = xcube.open_events(real_file("xmm", "exod_0001730201_M1_clean.fits"))
    for x0, y0 in ((24740, 24076), (21000, 21000)):  # on the bright source; on background
        out, _ = sim.inject_flare(ev, x=x0, y=y0, t_peak=1.00535e8, amplitude=2.0, width=500, seed=7)
        new = ~np.isin(out["time"].values, ev["time"].values)
        rx, ry = out["rawx"].values[new], out["rawy"].values[new]
        sky_sigma_px = out["x"].values[new].std() * 0.05 / 1.1  # MOS raw pixels are 1.1"
        assert new.sum() > 2000 and len(set(zip(rx, ry))) > 120, (x0, len(set(zip(rx, ry))))
        assert rx.std() == pytest.approx(sky_sigma_px, rel=0.15) and ry.std() == pytest.approx(sky_sigma_px, rel=0.15)
