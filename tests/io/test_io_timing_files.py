"""OGIP light curves with several bands (RATE of shape (n, 3), the eROSITA
layout) and power-spectrum FITS files."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

import xcube
from xcube.io.powspec import read_power_spectrum, write_power_spectrum


def erosita_like(path, n=3740, keywords=True):
    """A srctool-style light curve: vector RATE/COUNTS/FRACEXP-free columns with 3 bands."""
    rng = np.random.default_rng(0)
    t = 6.0e8 + 10.0 * np.arange(n)
    counts = rng.poisson([2.0, 5.0, 1.0], (n, 3))
    cols = [fits.Column("TIME", "D", unit="s", array=t), fits.Column("TIMEDEL", "D", unit="s", array=np.full(n, 10.0)),
            fits.Column("FRACEXP", "D", array=np.ones(n)),
            fits.Column("COUNTS", "3J", array=counts), fits.Column("RATE", "3D", array=counts / 10.0),
            fits.Column("RATE_ERRM", "3D", array=np.sqrt(counts) / 10.0),
            fits.Column("RATE_ERRP", "3D", array=np.sqrt(counts + 1) / 10.0)]
    hdu = fits.BinTableHDU.from_columns(cols, name="RATE")
    hdu.header.update({"TELESCOP": "eROSITA", "INSTRUME": "TM0", "MJDREFI": 51543, "MJDREFF": 0.000742870370370241,
                       "TIMESYS": "TT", "TIMEPIXR": 0.5, "HDUCLAS1": "LIGHTCURVE"})
    if keywords:
        for i, (a, b) in enumerate([(0.2, 0.6), (0.6, 2.3), (2.3, 5.0)], start=1):
            hdu.header[f"E_MIN{i}"], hdu.header[f"E_MAX{i}"] = a, b
    gti = fits.BinTableHDU.from_columns([fits.Column("START", "D", array=[t[0] - 5]),
                                         fits.Column("STOP", "D", array=[t[-1] + 5])], name="GTI")
    fits.HDUList([fits.PrimaryHDU(), hdu, gti]).writeto(path)
    return path, counts


def test_three_band_rate_column_gives_a_band_dimension(tmp_path):
    path, counts = erosita_like(tmp_path / "em01_lc.fits")
    lc = xcube.read_lightcurve(path)  # was a broadcast error between (3740,) and (3740, 3)
    assert lc["rate"].dims == ("band", "time") and lc.sizes == {"band": 3, "time": 3740, "gti": 1}
    assert list(lc["band"].values) == ["0.2-0.6keV", "0.6-2.3keV", "2.3-5keV"]
    np.testing.assert_array_equal(lc["counts"].values, counts.T)
    np.testing.assert_allclose(lc["rate_err"].values, 0.5 * (np.sqrt(counts) + np.sqrt(counts + 1)).T / 10.0)
    assert lc["exposure"].dims == ("time",) and lc.attrs["mjdref"] == pytest.approx(51543.000742870370370241)
    hr = xcube.hardness_ratio(lc, soft=(0.6, 2.3), hard=(2.3, 5.0))
    assert hr.sizes["time"] == 3740 and np.nanmean(hr["ratio"].values) < 0  # the soft band is brighter


def test_band_edges_from_the_caller_when_the_file_has_none(tmp_path):
    path, _ = erosita_like(tmp_path / "lc.fits", keywords=False)
    with pytest.warns(UserWarning, match="band edges unknown"):
        lc = xcube.read_lightcurve(path)
    assert list(lc["band"].values) == ["band0", "band1", "band2"]
    lc = xcube.read_lightcurve(path, bands=[(0.2, 0.6), (0.6, 2.3), (2.3, 5.0)])
    np.testing.assert_allclose(lc["energy_hi"].values, [0.6, 2.3, 5.0])
    with pytest.raises(ValueError, match="3 bands"):
        xcube.read_lightcurve(path, bands=[(0.2, 0.6)])


def test_multiband_light_curve_round_trip(make_event_file, tmp_path):
    ev = xcube.open_events(make_event_file(n=3000))
    lc = xcube.lightcurve(ev, 100.0, energy_band=[(0.5, 2.0), (2.0, 10.0)]).compute()
    out = xcube.write_lightcurve(tmp_path / "two.lc", lc)
    with fits.open(out) as h:
        assert h["RATE"].columns["RATE"].format == "2D" and h["RATE"].header["E_MAX2"] == 10.0
    back = xcube.read_lightcurve(out)
    np.testing.assert_array_equal(back["counts"].values, lc["counts"].values)
    np.testing.assert_allclose(back["energy_lo"].values, [0.5, 2.0])


def test_power_spectrum_file_round_trip(tmp_path, make_event_file):
    ev = xcube.open_events(make_event_file(n=20_000))
    p = xcube.power_spectrum(ev, segment=1000.0, dt=0.5, norm="frac", rebin=-0.05, energy_band=(0.5, 10.0))
    out = write_power_spectrum(tmp_path / "p.fits", p)
    with fits.open(out) as h:
        assert h["POWSPEC"].header["NORM"] == "frac" and h["POWSPEC"].header["NSEG"] == 10
        assert h["POWSPEC"].header["MJDREF"] == 50814.0 and "XAX_E" in h["POWSPEC"].columns.names
    back = read_power_spectrum(out)
    for v in ("freq", "freq_lo", "freq_hi", "power", "power_err", "m", "df"):
        np.testing.assert_allclose(back[v].values, p[v].values, err_msg=v)
    for k in ("norm", "segment", "dt", "n_segments", "rebin", "poisson_level"):
        assert back.attrs[k] == pytest.approx(p.attrs[k]) if not isinstance(p.attrs[k], str) else \
            back.attrs[k] == p.attrs[k]
    assert back.attrs["energy_band"] == [0.5, 10.0]
    with pytest.raises(FileExistsError):
        write_power_spectrum(out, p)
    stack = xcube.power_spectrum([ev, ev], segment=1000.0, dt=0.5)
    with pytest.raises(ValueError, match="isel"):
        write_power_spectrum(tmp_path / "s.fits", stack)


def xronos_like(path, series=1):
    """An XRONOS ``lcurve`` output: TIME [s] at bin centres, XAX_E (half width), RATE<k>/ERROR<k>, FRACEXP;
    TIMEUNIT = 'd' for the keywords (TIMEDEL in days) while the TIME column says 's'."""
    rng = np.random.default_rng(1)
    n = 200
    counts = rng.poisson(3.0, (series, n))
    cols = [fits.Column("TIME", "D", unit="s", array=np.arange(n) * 2.0 + 1.0),
            fits.Column("XAX_E", "D", unit="s", array=np.ones(n))]
    for k in range(series):
        cols += [fits.Column(f"RATE{k + 1}", "E", unit="count/s", array=counts[k] / 2.0),
                 fits.Column(f"ERROR{k + 1}", "E", unit="count/s", array=np.sqrt(counts[k]) / 2.0)]
    cols.append(fits.Column("FRACEXP", "E", array=np.ones(n)))
    hdu = fits.BinTableHDU.from_columns(cols, name="RATE")
    hdu.header.update({"TIMEUNIT": "d", "TIMEDEL": 2.0 / 86400.0, "MJDREFI": 55197, "MJDREFF": 7.6601852e-4,
                       "HDUCLAS1": "LIGHT CURVE", "TELESCOP": "NUSTAR"})
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path, counts


def test_xronos_lcurve_series_columns_and_time_units(tmp_path):
    path, counts = xronos_like(tmp_path / "lcurve.flc")
    lc = xcube.read_lightcurve(path)
    assert lc.sizes["time"] == 200 and "band" not in lc.dims
    np.testing.assert_allclose(lc["time_hi"].values - lc["time_lo"].values, 2.0)  # TIMEDEL [d] -> 2 s
    np.testing.assert_allclose(lc["time"].values, np.arange(200) * 2.0 + 1.0)  # TIME column in its own unit, s
    np.testing.assert_array_equal(lc["counts"].values, counts[0])
    np.testing.assert_allclose(lc["rate_err"].values, np.sqrt(counts[0]) / 2.0, rtol=1e-6)
    two, counts2 = xronos_like(tmp_path / "two.flc", series=2)
    with pytest.warns(UserWarning, match="band edges unknown"):
        lc2 = xcube.read_lightcurve(two)
    assert lc2["rate"].dims == ("band", "time")
    np.testing.assert_array_equal(lc2["counts"].values, counts2)


def test_stingray_sample_light_curves():
    """Light curves shipped with Stingray: XRONOS (RATE1/ERROR1, TIMEUNIT 'd') and eROSITA srctool (3 bands,
    RATE already divided by FRACEXP, so not divided again)."""
    from importlib.resources import files

    data = files("stingray") / "tests" / "data"
    lcurve, bexvar = data / "lcurveA.fits", data / "LightCurve_bexvar.fits"
    if not (lcurve.is_file() and bexvar.is_file()):
        pytest.skip("this Stingray installation ships no test data")
    lc = xcube.read_lightcurve(lcurve)
    assert lc.sizes["time"] == 1026 and float(lc.attrs["time_bin"]) == pytest.approx(1.0)
    assert int(lc["counts"].sum()) == 1000
    ero = xcube.read_lightcurve(bexvar)
    with fits.open(bexvar) as h:
        rate, frac = h["RATE"].data["RATE"].T, h["RATE"].data["FRACEXP"].T
    good = frac > 0
    np.testing.assert_allclose(ero["rate"].values[good], rate[good], rtol=1e-6)


def test_time_column_with_a_unit_that_is_no_duration(tmp_path):
    """TUNIT1 = 'MJD' says what the numbers are, not a duration: TIMEUNIT decides, with a warning."""
    n = 10
    hdu = fits.BinTableHDU.from_columns([fits.Column("TIME", "D", unit="MJD", array=np.arange(n) * 4.0),
                                         fits.Column("RATE", "E", array=np.ones(n))], name="RATE")
    hdu.header["TIMEDEL"] = 4.0
    path = tmp_path / "mjd.lc"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    with pytest.warns(UserWarning, match="TUNIT1='MJD'"):
        lc = xcube.read_lightcurve(path)
    np.testing.assert_allclose(lc["time"].values, np.arange(n) * 4.0)
