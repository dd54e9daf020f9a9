"""Event-level simulation: xcube.simulate.event_list (columns, layout, components, seeds, slabs)."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest

import xcube
import xcube.simulate as sim
from xcube import gti as gtimod

T0 = 7.0e8
PSF_SIGMA_PIX = 6.6 / 2.355 / 0.05


def _quiet(**kw):
    """Only the components a test asks for."""
    base = dict(background_rate=0.0, sources=0, soft_protons=0)
    base.update(kw)
    return base


def test_public_api_names():
    assert set(sim.__all__) == {"event_list", "inject_flare", "inject_eclipse", "inject_instrumental", "efficiency",
                                "amplitude_at", "write", "Flare", "Eclipse", "Source",
                                "SoftProtonFlare", "PSF_FWHM_ARCSEC", "TRUTH_COLUMNS"}
    for name in sim.__all__:
        assert getattr(sim, name) is getattr(xcube.simulate, name)
    from xcube.io.write_events import write_events

    assert sim.write is write_events


def test_columns_dtypes_ranges_and_sorting():
    ev, truth = sim.event_list("xmm-pn", duration=5000.0, seed=1)
    assert isinstance(ev["time"].data, da.Array)  # lazy until computed
    e = ev.compute()
    for name, dt in [("time", np.float64), ("x", np.int32), ("y", np.int32), ("pi", np.int16),
                     ("energy", np.float32), ("pattern", np.uint8), ("flag", np.int32), ("ccdnr", np.uint8)]:
        assert e[name].dtype == dt, name
    t = e["time"].values
    assert np.all(np.diff(t) >= 0)
    assert t.min() >= T0 and t.max() < T0 + 5000.0
    pi = e["pi"].values
    assert pi.min() >= 200 and pi.max() <= 12000
    np.testing.assert_allclose(e["energy"].values, pi / 1000.0, rtol=1e-6)
    # field of view: 15' radius around the reference pixel, except PSF tails
    r_arcmin = np.hypot(e["x"].values - 25921.0, e["y"].values - 25921.0) * 0.05 / 60.0
    assert np.mean(r_arcmin < 15.05) > 0.999
    assert set(np.unique(e["ccdnr"].values)) == set(range(1, 13))
    assert 0.01 < np.mean(e["flag"].values != 0) < 0.06
    assert np.mean(e["pattern"].values == 0) > 0.5
    a = ev.attrs
    assert a["profile"] == "xmm-pn" and a["instrument"] == "EPN" and a["mission"] == "XMM-Newton"
    assert a["CRPIX1"] == 25921.0 and a["CDELT2"] == pytest.approx(0.05 / 3600)
    assert a["mjdref"] == 50814.0 and a["obs_id"] and a["tstart"] == T0
    assert set(truth["kind"]) == {"source", "soft_proton"}
    assert list(truth.columns) == sim.TRUTH_COLUMNS


def test_pn_ccd_layout_quadrants_by_position():
    ev, _ = sim.event_list("xmm-pn", duration=3000.0, seed=2, pa_pnt=0.0, sources=0, soft_protons=0,
                           background_rate=20.0)
    e = ev.compute()
    dx = e["x"].values - 25921.0
    dy = e["y"].values - 25921.0
    ccd = e["ccdnr"].values
    quadrant = (ccd - 1) // 3
    # pa=0: detector frame = sky frame; quadrants 0/1 on top (dy>0), 0/3 on the left (dx<0)
    far = (np.abs(dx) > 400) & (np.abs(dy) > 400)
    q_expected = np.select([(dy > 0) & (dx < 0), (dy > 0) & (dx > 0), (dy < 0) & (dx > 0)], [0, 1, 2], 3)
    assert np.all(quadrant[far] == q_expected[far])


def test_mos_has_seven_ccds_and_reads_back_as_mos2(tmp_path):
    ev, _ = sim.event_list("xmm-mos2", duration=3000.0, seed=3, path=tmp_path / "m2.fits")
    assert ev.attrs["profile"] == "xmm-mos2"
    assert set(np.unique(ev["ccdnr"].values)) == set(range(1, 8))


def test_same_seed_same_events_other_seed_differs():
    a, ta = sim.event_list("xmm-mos1", duration=2000.0, seed=7)
    b, tb = sim.event_list("xmm-mos1", duration=2000.0, seed=7)
    c, _ = sim.event_list("xmm-mos1", duration=2000.0, seed=8)
    np.testing.assert_array_equal(a["time"].values, b["time"].values)
    np.testing.assert_array_equal(a["x"].values, b["x"].values)
    pd.testing.assert_frame_equal(ta, tb)
    assert a.sizes["event"] != c.sizes["event"] or not np.array_equal(a["time"].values, c["time"].values)


def test_flare_alone_time_and_psf_profile():
    ev, truth = sim.event_list("xmm-pn", duration=20000.0, seed=4,
                               flares=[dict(t_peak=8000.0, amplitude=5.0, width=200.0, x=30000.0, y=20000.0)],
                               **_quiet())
    e = ev.compute()
    row = truth.iloc[0]
    assert row["kind"] == "flare" and row["transient"]
    assert e.sizes["event"] == row["counts"]  # nothing else was simulated
    assert row["expected_counts"] == pytest.approx(5.0 * 200.0 * np.sqrt(2 * np.pi), rel=1e-9)
    assert abs(row["counts"] - row["expected_counts"]) < 5 * np.sqrt(row["expected_counts"])
    t = e["time"].values - (T0 + 8000.0)
    assert abs(t.mean()) < 15.0 and t.std() == pytest.approx(200.0, rel=0.06)
    assert e["x"].values.std() == pytest.approx(PSF_SIGMA_PIX, rel=0.06)
    assert abs(e["y"].values.mean() - 20000.0) < 5.0
    assert row["t_peak"] == T0 + 8000.0 and row["t_start"] == T0 + 8000.0 - 600.0
    # truth ra/dec and x/y agree through the event WCS
    ra, dec = xcube.wcs(ev).wcs_pix2world([30000.0], [20000.0], 0)
    assert row["ra"] == pytest.approx(ra[0]) and row["dec"] == pytest.approx(dec[0])


def test_eclipse_depth_and_window():
    ev, truth = sim.event_list("xmm-mos1", duration=20000.0, seed=5,
                               eclipses=[dict(t_start=5000.0, duration=4000.0, depth=0.8, rate=1.0,
                                              ra=150.05, dec=2.25)], **_quiet())
    t = ev["time"].values - T0
    row = truth.iloc[0]
    inside = (t >= 5000.0) & (t < 9000.0)
    assert inside.sum() == row["counts"]
    assert row["expected_counts"] == pytest.approx(0.2 * 4000.0)
    assert abs(inside.sum() - 800) < 5 * np.sqrt(800)
    assert abs((~inside).sum() - 16000) < 5 * np.sqrt(16000)
    assert row["amplitude"] == pytest.approx(0.8) and row["depth"] == 0.8
    # a dip that began before the observation: total eclipse until t0 + 2000 s
    ev2, _ = sim.event_list("xmm-mos1", duration=5000.0, seed=5, **_quiet(),
                            eclipses=[dict(t_start=-1000.0, duration=3000.0, depth=1.0, rate=1.0)])
    t2 = ev2["time"].values - T0
    assert not np.any(t2 < 2000.0) and abs(t2.size - 3000) < 5 * np.sqrt(3000)


def test_gti_gaps_hold_no_events_and_are_written(tmp_path):
    ev, truth = sim.event_list("xmm-pn", duration=10000.0, seed=6, gaps=[(2000.0, 3000.0), (7000.0, 7500.0)],
                               flares=[dict(t_peak=2500.0, amplitude=3.0, width=400.0)],
                               path=tmp_path / "gaps.fits")
    t = ev["time"].values - T0
    assert not np.any((t >= 2000) & (t < 3000)) and not np.any((t >= 7000) & (t < 7500))
    g = gtimod.from_dataset(ev)
    np.testing.assert_allclose(g[0] - T0, [0.0, 3000.0, 7500.0])
    np.testing.assert_allclose(g[1] - T0, [2000.0, 7000.0, 10000.0])
    assert ev.attrs["exposure"] == pytest.approx(8500.0)
    # the flare's expectation only counts good time
    row = truth[truth.kind == "flare"].iloc[0]
    full = 3.0 * 400.0 * np.sqrt(2 * np.pi)
    assert row["expected_counts"] < 0.9 * full


def test_soft_protons_trip_the_10_12_kev_rate():
    ev, truth = sim.event_list("xmm-pn", duration=20000.0, seed=8, sources=3,
                               soft_protons=[dict(t_start=8000.0, duration=6000.0, peak_rate=25.0)])
    e = ev.compute()
    hi = (e["energy"].values > 10.0) & (e["energy"].values < 12.0)
    rate, _ = np.histogram(e["time"].values[hi] - T0, bins=np.arange(0, 20001, 100.0))
    rate = rate / 100.0
    assert rate[:70].mean() < 0.3  # quiescent pn: ~0.15 ct/s at 10-12 keV
    assert rate[100:120].mean() > 0.5  # flare peak well above the 0.5 ct/s BTI threshold
    sp = truth[truth.kind == "soft_proton"].iloc[0]
    assert sp["t_start"] == T0 + 8000.0 and sp["t_stop"] == T0 + 14000.0 and not sp["transient"]


def test_chunked_generation_is_consistent():
    kw = dict(duration=10000.0, seed=9, n_events=30000, chunk_events=4000, soft_protons=0)
    ev, _ = sim.event_list("xmm-mos1", **kw)
    chunks = ev["time"].data.chunks[0]
    assert len(chunks) >= 7 and sum(chunks) == ev.sizes["event"]
    t = ev["time"].values
    assert np.all(np.diff(t) >= 0)
    assert abs(t.size - 30000) < 5 * np.sqrt(30000)
    # one block alone equals the same slice of the whole (slabs regenerate identically)
    k = 3
    lo = sum(chunks[:k])
    np.testing.assert_array_equal(ev["x"].data.blocks[k].compute(), ev["x"].values[lo:lo + chunks[k]])


def test_n_events_below_other_components_raises():
    with pytest.raises(ValueError, match="n_events"):
        sim.event_list("xmm-pn", duration=10000.0, n_events=10)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(instrument="nustar-fpma"), "no simulation model"),
        (dict(flares=[dict(t_peak=10.0, amplitude=1.0, width=5.0, ra=150.0)]), "both ra and dec"),
        (dict(gaps=[(0.0, 2000.0)], duration=1000.0), "no good time"),
        (dict(eclipses=[dict(t_start=1.0, duration=10.0, depth=1.5)]), "depth"),
        (dict(flares=[dict(t_peak=1.0, amplitude=1.0)]), "Flare"),
    ],
)
def test_bad_arguments(kw, match):
    kw = {"duration": 1000.0, **kw}
    with pytest.raises((ValueError, TypeError), match=match):
        sim.event_list(**kw)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(background_rate=-1.0), r"event_list: background_rate=-1\.0: must be a finite number >= 0 ct/s"),
        (dict(background_rate=float("nan")), r"background_rate=nan"),
        (dict(gaps=[(500.0, 400.0)]), r"event_list: gaps\[0\]=\(500, 400\): .*stop > start"),
        (dict(gaps=[(100.0, 200.0), (300.0, float("nan"))]), r"gaps\[1\] stop=nan: must be a finite number"),
        (dict(gaps=[(1.0, 2.0, 3.0)]), r"gaps=.*must be a list of \(start, stop\) pairs"),
        (dict(sources=-1), r"event_list: sources=-1: must be an integer >= 0"),
        (dict(soft_protons=-2), r"event_list: soft_protons=-2: must be an integer >= 0"),
        (dict(sources=[dict(rate=-0.1)]), r"Source\(rate=-0\.1.*rate=-0\.1: must be a finite number >= 0 ct/s"),
        (dict(soft_protons=[dict(t_start=0.0, duration=-5.0, peak_rate=1.0)]), r"duration=-5\.0: must be .* > 0 s"),
        (dict(duration=float("nan")), r"event_list: duration=nan: must be a finite number > 0 s"),
        (dict(duration=-1.0), r"duration=-1\.0: must be a finite number > 0 s"),
        (dict(dec_pnt=91.0), r"dec_pnt=91\.0: must be a finite number >= -90 and <= 90 deg"),
        (dict(chunk_events=0), r"chunk_events=0: must be an integer >= 1"),
        (dict(flares=[dict(t_peak=1.0, amplitude=float("nan"), width=5.0)]), r"Flare\(.*amplitude=nan: must be"),
        (dict(flares=[dict(t_peak=1.0, amplitude=1.0, width=5.0, ra=150.0, dec=2.2, x=1.0, y=1.0)]),
         r"give ra/dec or x/y, not both"),
        (dict(eclipses=[dict(t_start=1.0, duration=10.0, rate=float("inf"))]), r"Eclipse\(.*rate=inf: must be"),
    ],
)
def test_parameters_out_of_range_are_named(kw, match):
    kw = {"instrument": "xmm-mos1", "duration": 1000.0, "seed": 0, **kw}
    with pytest.raises(ValueError, match=match):
        sim.event_list(**kw)


def test_background_rate_zero_and_gaps_still_accepted():
    ev, _ = sim.event_list("xmm-mos1", duration=1000.0, gaps=[(400.0, 500.0)], background_rate=0.0, sources=0,
                           soft_protons=0, seed=0)
    assert ev.sizes["event"] == 0
    np.testing.assert_allclose(ev["gti_start"].values - 7e8, [0.0, 500.0])


def test_sources_dataframe_nan_cells_are_missing_fields():
    df = pd.DataFrame([dict(rate=0.1, ra=150.0, dec=2.2, x=np.nan, y=np.nan),
                       dict(rate=0.2, ra=np.nan, dec=np.nan, x=25000.0, y=25000.0)])
    _, truth = sim.event_list("xmm-mos1", duration=1000.0, sources=df, soft_protons=0, seed=0)
    np.testing.assert_allclose(truth[["x", "y"]].to_numpy(), [[25921.0, 25921.0], [25000.0, 25000.0]], atol=1e-6)
    assert np.isfinite(truth[["ra", "dec"]].to_numpy()).all()


def test_written_dates_are_utc_as_xmm_files_give_them(tmp_path):
    """Sweep p26: DATE-OBS/DATE-END were the TT calendar dates, 69.184 s
    after the UTC that products made from the file write."""
    from astropy.io import fits
    from astropy.time import Time, TimeDelta

    from xcube import simulate

    path = tmp_path / "sim.evt"
    ev, _ = simulate.event_list("xmm-pn", duration=2000.0, seed=3)
    simulate.write(path, ev)
    h = fits.getheader(path, 1)
    for key, t in (("DATE-OBS", h["TSTART"]), ("DATE-END", h["TSTOP"])):
        want = Time(h["MJDREFI"], h["MJDREFF"], format="mjd", scale="tt") + TimeDelta(t, format="sec")
        assert abs((Time(h[key], scale="utc") - want).sec) < 1e-3, (key, h[key], want.utc.isot)
