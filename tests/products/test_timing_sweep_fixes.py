"""Fixes of the timing-products defect sweep: NaN rates in OGIP light curves,
stitching NET light curves, per-CCD good time of XMM light curves and event
power spectra, rebinning on a regular grid (gaps, stitched light curves),
GTI tables in days, TIMEZERI/TIMEZERF, and smaller edge cases."""
from __future__ import annotations

import argparse
import warnings

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from conftest import real_file

import xcube
from xcube import gti as gtimod
from xcube.cli import main
from xcube.io.lightcurve_file import read_lightcurve
from xcube.io.ogip import write_lightcurve
from xcube.products import lightcurve_from_counts, stitch
from xcube.products.rebin import rebin

MOS1_CLEAN = ("xmm", "xga_0201901401_mos1_exp1_clean_evts.fits")


def _ogip(path, time, rate=None, *, err=None, header=None, gti=None, gti_header=None, gti_units=None,
          time_unit=None, counts=None):
    """A minimal OGIP RATE table (+ GTI) at ``path``."""
    cols = [fits.Column(name="TIME", format="D", array=np.asarray(time, float), unit=time_unit)]
    if rate is not None:
        cols.append(fits.Column(name="RATE", format="D", array=np.asarray(rate, float)))
    if err is not None:
        cols.append(fits.Column(name="ERROR", format="D", array=np.asarray(err, float)))
    if counts is not None:
        cols.append(fits.Column(name="COUNTS", format="D", array=np.asarray(counts, float)))
    h = fits.BinTableHDU.from_columns(cols, name="RATE")
    for k, v in dict({"HDUCLAS1": "LIGHTCURVE", "MJDREF": 50814.0, "TELESCOP": "XMM"}, **(header or {})).items():
        h.header[k] = v
    hdus = [fits.PrimaryHDU(), h]
    if gti is not None:
        g = fits.BinTableHDU.from_columns(
            [fits.Column(name="START", format="D", array=np.asarray(gti[0], float), unit=gti_units),
             fits.Column(name="STOP", format="D", array=np.asarray(gti[1], float), unit=gti_units)], name="GTI")
        g.header["HDUCLAS1"] = "GTI"
        for k, v in (gti_header or {}).items():
            g.header[k] = v
        hdus.append(g)
    fits.HDUList(hdus).writeto(path)
    return path


# --------------------------------------------------------------------------- H1: NaN rates


def test_nan_rate_bin_gets_no_exposure_and_rebins_to_the_finite_rates(tmp_path):
    n = 40
    c = np.random.default_rng(1).poisson(50, n).astype(float)
    rate, err = c / 10.0, np.sqrt(c) / 10.0
    rate[7] = err[7] = np.nan
    f = _ogip(tmp_path / "nan.lc", np.arange(n) * 10.0 + 1005, rate, err=err, header={"TIMEDEL": 10.0},
              gti=([1000.0], [1400.0]))
    with pytest.warns(UserWarning, match="1 bin.*NaN or infinite RATE"):
        lc = read_lightcurve(f)
    assert lc["exposure"].values[7] == 0.0 and lc["fracexp"].values[7] == 0.0 and lc["counts"].values[7] == 0
    assert np.isnan(lc["rate"].values[7])
    # the bin's time is no good time: the GTI total stays the summed exposure
    assert gtimod.exposure(gtimod.from_dataset(lc)) == pytest.approx(float(lc["exposure"].sum())) == 390.0
    r = rebin(lc, 10)
    good = np.isfinite(rate[:10])
    assert float(r["rate"].values[0]) == pytest.approx(rate[:10][good].mean(), rel=1e-12)
    assert float(r["exposure"].values[0]) == 90.0
    # the power spectrum's segments avoid the bin: none of 400 s fits any more, one of 200 s after it
    p = xcube.power_spectrum(lc, segment=200.0)
    assert p.attrs["n_segments"] == 1 and p.attrs["mean_rate"] == pytest.approx(np.mean(rate[8:28]), rel=1e-12)


def test_nan_rate_with_fracexp_zero_is_quiet(tmp_path):
    rate = np.array([1.0, np.nan, 3.0])
    f = tmp_path / "pps.lc"
    h = fits.BinTableHDU.from_columns([fits.Column(name="TIME", format="D", array=[5.0, 15.0, 25.0]),
                                       fits.Column(name="RATE", format="D", array=rate),
                                       fits.Column(name="FRACEXP", format="D", array=[1.0, 0.0, 1.0])], name="RATE")
    h.header.update(HDUCLAS1="LIGHTCURVE", TIMEDEL=10.0, MJDREF=50814.0)
    fits.HDUList([fits.PrimaryHDU(), h]).writeto(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lc = read_lightcurve(f)
    np.testing.assert_array_equal(lc["exposure"].values, [10.0, 0.0, 10.0])


# --------------------------------------------------------------------------- H2: stitching NET light curves


def _net_lc(t0=1000.0, n=40, seed=0):
    rng = np.random.default_rng(seed)
    lo = t0 + 10.0 * np.arange(n)
    hi = lo + 10.0
    coords = {"time": 0.5 * (lo + hi), "time_lo": ("time", lo), "time_hi": ("time", hi),
              "exposure": ("time", np.full(n, 10.0)), "fracexp": ("time", np.ones(n))}
    c = xr.DataArray(rng.poisson(30, n), dims="time", coords=coords)
    b = xr.DataArray(rng.poisson(40, n), dims="time", coords=coords)
    return lightcurve_from_counts(c, bkg_counts=b, area_ratio=0.25, gti=([lo[0]], [hi[-1]]),
                                  attrs={"mjdref": 50814.0, "timesys": "TT", "mission": "XMM-Newton",
                                         "obs_id": f"obs{seed}", "instrument": "EMOS1", "time_bin": 10.0,
                                         "errors": "poisson"})


def test_stitch_keeps_the_net_rate_kind_and_rebins_the_net_rate(tmp_path):
    lc = _net_lc()
    write_lightcurve(tmp_path / "net.lc", lc, kind="net")
    st = stitch([read_lightcurve(tmp_path / "net.lc")])
    assert st.attrs["rate_kind"] == "net" and st.attrs["hduclas2"] == "NET" and st.attrs["errors"] == "poisson"
    r = rebin(st, 10)
    np.testing.assert_allclose(r["rate"].values, rebin(lc, 10)["net_rate"].values, rtol=1e-12)


def test_stitch_refuses_net_with_gross_rates(tmp_path):
    write_lightcurve(tmp_path / "net.lc", _net_lc(), kind="net")
    write_lightcurve(tmp_path / "tot.lc", _net_lc(t0=5000.0, seed=1))
    with pytest.raises(ValueError, match="different kinds of rate"):
        stitch([tmp_path / "net.lc", tmp_path / "tot.lc"])


def test_cli_stitch_writes_a_net_file(tmp_path):
    lc = _net_lc()
    write_lightcurve(tmp_path / "net.lc", lc, kind="net")
    out = tmp_path / "st.lc"
    assert main(["stitch", str(tmp_path / "net.lc"), "--out", str(out), "--no-index"]) == 0
    h = fits.getheader(out, "RATE")
    assert h["HDUCLAS2"] == "NET" and h["BACKAPP"] is True
    back = read_lightcurve(out)
    assert back.attrs["rate_kind"] == "net"
    np.testing.assert_allclose(back["rate"].values, lc["net_rate"].values, rtol=1e-12)
    np.testing.assert_allclose(back["bkg_rate"].values, lc["bkg_rate"].values, rtol=1e-12)


# --------------------------------------------------------------------------- H3: the source CCD's good time


def test_xmm_lightcurve_uses_the_source_ccd_gti():
    f = real_file(*MOS1_CLEAN)
    ev = xcube.open_events(f)
    with fits.open(f) as h:
        d = h[1].data
        on1 = d["CCDNR"] == 1
        x0, y0 = float(np.median(d["X"][on1])), float(np.median(d["Y"][on1]))
        g = h["GTI00006"].data  # CCD 1 of MOS1
        own = gtimod.normalize(np.asarray(g["START"], float), np.asarray(g["STOP"], float), warn=False)
    src = f"physical;circle({x0},{y0},600)"
    lc = xcube.lightcurve(ev, 10.0, region=src)
    assert lc.attrs["ccds"] == [1] and lc.attrs["gti_from"] == "CCD 1"
    expected = gtimod.exposure_per_bin(lc["time_lo"].values, lc["time_hi"].values,
                                       gtimod.intersection(own, gtimod.from_dataset(ev)))
    np.testing.assert_allclose(lc["exposure"].values, expected, rtol=0, atol=1e-6)
    assert gtimod.exposure(gtimod.from_dataset(lc)) == pytest.approx(float(lc["exposure"].sum()))
    # the spectrum of the region takes the same good time
    sp = xcube.spectrum(ev, region=src)
    assert sp.attrs["ontime"] == pytest.approx(float(lc["exposure"].sum()), rel=1e-9)
    # without a region: the union over CCDs, said so
    whole = xcube.lightcurve(ev, 1000.0)
    assert "union" in whole.attrs["gti_from"] and "ccds" not in whole.attrs
    # the event power spectrum's segments lie inside that CCD's good time too
    p = xcube.power_spectrum(ev, segment=100.0, dt=10.0, region=src)
    assert p.attrs["ccds"] == [1]
    p_lc = xcube.power_spectrum(lc, segment=100.0)
    assert p.attrs["n_segments"] == p_lc.attrs["n_segments"]


# --------------------------------------------------------------------------- M1, M2: rebinning


def test_rebin_on_the_regular_grid_across_omitted_rows(tmp_path):
    t = np.r_[np.arange(3), np.arange(10, 15)] * 10.0 + 1005
    c = np.full(t.size, 20.0)
    f = _ogip(tmp_path / "gap.lc", t, c / 10, err=np.sqrt(c) / 10, header={"TIMEDEL": 10.0},
              gti=([1000.0, 1100.0], [1030.0, 1150.0]))
    r = rebin(read_lightcurve(f), 4)
    np.testing.assert_array_equal(r["time_lo"].values, [1000.0, 1080.0])
    np.testing.assert_array_equal(r["time_hi"].values, [1040.0, 1120.0])
    np.testing.assert_array_equal(r["exposure"].values, [30.0, 20.0])
    np.testing.assert_array_equal(r["fracexp"].values, [0.75, 0.5])
    np.testing.assert_allclose(r["rate"].values, [2.0, 2.0])
    np.testing.assert_array_equal(r["counts"].values, [60, 40])
    assert r.attrs["time_bin"] == 40.0


def test_rebin_contiguous_light_curve_unchanged():
    lc = _net_lc(n=43)
    r = rebin(lc, 5)
    assert r.sizes["time"] == 8 and r.attrs["time_bin"] == 50.0
    np.testing.assert_array_equal(r["counts"].values, lc["counts"].values[:40].reshape(8, 5).sum(axis=1))
    np.testing.assert_array_equal(r["time_lo"].values, lc["time_lo"].values[:40:5])


def test_rebin_stitched_light_curve_in_memory_and_from_file(tmp_path):
    a, b = _net_lc(1000.0, 40, 0), _net_lc(1e6 + 3.7, 23, 1)
    st = stitch([a, b])
    r = rebin(st, 10)
    # no new bin spans the two observations; each one's incomplete last group is dropped
    assert r.sizes["time"] == 4 + 2
    assert list(r["obs_id"].values) == ["obs0"] * 4 + ["obs1"] * 2
    np.testing.assert_array_equal(r["counts"].values[:4], a["counts"].values.reshape(4, 10).sum(axis=1))
    np.testing.assert_array_equal(r["counts"].values[4:], b["counts"].values[:20].reshape(2, 10).sum(axis=1))
    np.testing.assert_allclose(np.diff(r["time_lo"].values[:4]), 100.0)
    centre_mjd = st.attrs["mjdref"] + r["time"].values / 86400.0
    np.testing.assert_allclose(r["mjd"].values, centre_mjd, rtol=0, atol=1e-9)
    np.testing.assert_allclose(r["mission_time"].values[:4], 0.5 * (a["time_lo"].values[::10][:4]
                                                                     + a["time_hi"].values[9::10][:4]))
    assert main(["stitch", *[str(write_lightcurve(tmp_path / f"{i}.lc", x)) for i, x in enumerate((a, b))],
                 "--out", str(tmp_path / "st.lc"), "--no-index"]) == 0
    back = rebin(read_lightcurve(tmp_path / "st.lc"), 10)
    np.testing.assert_array_equal(back["counts"].values, r["counts"].values)
    assert [m.upper() for m in back["mission"].values] == ["XMM-NEWTON"] * 6


# --------------------------------------------------------------------------- M3, M4: time units and TIMEZERO


@pytest.mark.parametrize("how", ["tunit", "timeunit", "inherited"])
def test_gti_table_in_days(tmp_path, how):
    day = 86400.0
    gti = ([1000.0 / day], [1030.0 / day])
    kw = {"tunit": dict(gti_units="d", gti_header={"TIMEUNIT": "d"}), "timeunit": dict(gti_header={"TIMEUNIT": "d"}),
          "inherited": {}}[how]
    f = _ogip(tmp_path / "d.lc", np.arange(5) * 10.0 / day, np.arange(1.0, 6.0),
              header={"TIMEDEL": 10.0 / day, "TIMEUNIT": "d", "TIMEZERO": 1000.0 / day, "TIMEPIXR": 0.0},
              gti=gti, time_unit="d", **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lc = read_lightcurve(f)
    np.testing.assert_allclose(lc["time_lo"].values, 1000.0 + 10.0 * np.arange(5))
    np.testing.assert_allclose(lc["exposure"].values, [10, 10, 10, 0, 0], atol=1e-6)
    np.testing.assert_allclose([lc["gti_start"].values[0], lc["gti_stop"].values[0]], [1000.0, 1030.0], atol=1e-6)


def test_timezeri_timezerf(tmp_path):
    f = _ogip(tmp_path / "tz.lc", np.arange(4) * 10.0 + 5, np.ones(4),
              header={"TIMEDEL": 10.0, "TIMEZERI": 1000, "TIMEZERF": 0.25})
    lc = read_lightcurve(f)
    np.testing.assert_allclose(lc["time_lo"].values, 1000.25 + 10.0 * np.arange(4))
    g = _ogip(tmp_path / "tz2.lc", np.arange(4) * 10.0 + 5, np.ones(4),
              header={"TIMEDEL": 10.0, "TIMEZERI": 1000, "TIMEZERF": 0.0, "TIMEZERO": 0.0})
    with pytest.warns(UserWarning, match="TIMEZERO = 0.0 disagrees"):
        lc = read_lightcurve(g)
    assert lc["time_lo"].values[0] == 1000.0


# --------------------------------------------------------------------------- low


@pytest.mark.parametrize("text", ["1e400", "inf", "1e400/3"])
def test_cli_seconds_refuses_overflow(text):
    from xcube.products.timing_cli import seconds

    with pytest.raises(argparse.ArgumentTypeError):
        seconds(text)


def test_cli_pds_huge_segment_is_a_clean_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["pds", str(tmp_path / "x.lc"), "--segment", "1e400"])
    assert exc.value.code == 2 and "not a number of seconds" in capsys.readouterr().err


def test_from_stingray_log_rebinned_bins():
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 2560.0, 20000))
    ev = xr.Dataset({"time": ("event", t), "gti_start": ("gti", [0.0]), "gti_stop": ("gti", [2560.0])},
                    attrs={"mjdref": 50814.0})
    pds = xcube.power_spectrum(ev, 256.0, dt=1.0, norm="frac", screening=False)
    ours = xcube.products.rebin_power_spectrum(pds, -0.06)
    back = xcube.from_stingray(xcube.to_stingray(pds).rebin_log(0.06))
    np.testing.assert_allclose(back["df"].values, ours["df"].values, rtol=1e-9)
    np.testing.assert_allclose(back["freq_lo"].values, ours["freq_lo"].values, rtol=1e-9)
    np.testing.assert_allclose(back["freq_hi"].values, ours["freq_hi"].values, rtol=1e-9)
    assert back.attrs["n_segments"] == pds.attrs["n_segments"] == 10


def test_power_spectrum_of_an_empty_light_curve_says_so():
    lc = _net_lc()
    with pytest.raises(ValueError, match="has no time bins") as exc:
        xcube.power_spectrum(lc.isel(time=slice(0, 0)), 100.0)
    assert "differ in width" not in str(exc.value)
    with pytest.raises(ValueError, match=r"of the light curve of obs0; rebin"):
        xcube.power_spectrum(lc, 100.0, dt=15.0)


def test_power_spectrum_rebin_true_is_refused():
    with pytest.raises(ValueError, match="bool"):
        xcube.power_spectrum(_net_lc(), 100.0, rebin=True)


def test_write_lightcurve_keeps_a_net_curve_read_back_as_net(tmp_path):
    """Python path of the stitch fix: write_lightcurve without kind= writes a
    NET light curve read back (or stitched) as NET, not as TOTAL."""
    write_lightcurve(tmp_path / "net.lc", _net_lc(), kind="net")
    back = read_lightcurve(tmp_path / "net.lc")
    write_lightcurve(tmp_path / "again.lc", back)
    h = fits.getheader(tmp_path / "again.lc", "RATE")
    assert h["HDUCLAS2"] == "NET" and h["BACKAPP"] is True
    again = read_lightcurve(tmp_path / "again.lc")
    np.testing.assert_allclose(again["rate"].values, back["rate"].values, rtol=1e-12)
    write_lightcurve(tmp_path / "st.lc", stitch([back]))
    assert fits.getheader(tmp_path / "st.lc", "RATE")["HDUCLAS2"] == "NET"


def test_round_t0_before_a_time_range_keeps_its_grid(make_event_file):
    """One round t0 for several windows: with time_range, a t0 several bins
    before the window sets the grid's phase instead of being refused."""
    ev = xcube.open_events(make_event_file(n=2000, t0=1.0e8 + 5.4, duration=20_000.0))
    lc = xcube.lightcurve(ev, 100.0, t0=1.0e8 - 500.0, time_range=(1.0e8 + 1000.0, 1.0e8 + 5000.0))
    assert lc.time_lo.values[0] == 1.0e8 + 1000.0 and np.all(np.diff(lc.time_lo.values) == 100.0)
    same = xcube.lightcurve(ev, 100.0, t0=1.0e8 + 1000.0, time_range=(1.0e8 + 1000.0, 1.0e8 + 5000.0))
    np.testing.assert_array_equal(lc.counts.values, same.counts.values)
    with pytest.raises(ValueError, match="before the first GTI start"):  # no window: a far t0 is still refused
        xcube.lightcurve(ev, 100.0, t0=1.0e7)


def test_to_stingray_events_reads_once(make_event_file):
    """The event columns go to Stingray in one graph execution (energy from PI shares the PI read)."""
    from dask.callbacks import Callback

    ev = xcube.open_events(make_event_file(n=3000))
    starts = []

    class Count(Callback):
        def _start(self, dsk):
            starts.append(len(dsk))

    with Count():
        st = xcube.to_stingray(ev)
    assert len(starts) == 1, starts
    np.testing.assert_array_equal(st.time, ev.time.values)


def test_nan_rate_with_an_empty_gti_table_reads(tmp_path):
    """A NaN RATE bin and an empty GTI table: no IndexError; the good time stays empty."""
    rate = np.full(10, 5.0)
    rate[3] = np.nan
    f = _ogip(tmp_path / "nogti.lc", np.arange(10) * 10.0 + 1005, rate, header={"TIMEDEL": 10.0}, gti=([], []))
    with fits.open(f) as h:  # with a FRACEXP column
        cols = h["RATE"].columns + fits.ColDefs([fits.Column(name="FRACEXP", format="D", array=np.ones(10))])
        rate_hdu = fits.BinTableHDU.from_columns(cols, header=h["RATE"].header, name="RATE")
        fits.HDUList([fits.PrimaryHDU(), rate_hdu, h["GTI"].copy()]).writeto(f, overwrite=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lc = read_lightcurve(f)
    assert gtimod.exposure(gtimod.from_dataset(lc)) == 0.0
