"""Reading other tools' light curves, power spectra and the summaries of ``xcube info``
(COUNT light curves' errors, Stingray power spectra, several light-curve tables, PHA type II)."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

import xcube


def _counts_lc(path, error_unit="count"):
    """A COUNT light curve (HDUCLAS3 = 'COUNT'): TIME, COUNTS, ERROR = sqrt(COUNTS) in counts; 10 s bins, a
    GTI with a gap (partial bins)."""
    n, dt, t0 = 100, 10.0, 5.0e8
    lo = t0 + dt * np.arange(n)
    rng = np.random.default_rng(2)
    gti = (np.array([t0, t0 + 505.0]), np.array([t0 + 403.0, t0 + 1000.0]))
    hi = lo + dt
    frac = (np.clip(np.minimum(hi, gti[1][0]) - np.maximum(lo, gti[0][0]), 0, None)
            + np.clip(np.minimum(hi, gti[1][1]) - np.maximum(lo, gti[0][1]), 0, None)) / dt
    cnt = rng.poisson(30 * frac)
    rate = fits.BinTableHDU.from_columns([
        fits.Column("TIME", "D", unit="s", array=lo), fits.Column("COUNTS", "J", unit="count", array=cnt),
        fits.Column("ERROR", "E", unit=error_unit, array=np.sqrt(cnt))], name="RATE")
    rate.header.update(HDUCLASS="OGIP", HDUCLAS1="LIGHTCURVE", HDUCLAS2="TOTAL", HDUCLAS3="COUNT", TELESCOP="XMM",
                       INSTRUME="EPN", MJDREFI=51544, MJDREFF=0.00074287037037037, TIMESYS="TT", TIMEUNIT="s",
                       TIMEDEL=dt, TIMEPIXR=0.0)
    g = fits.BinTableHDU.from_columns([fits.Column("START", "D", unit="s", array=gti[0]),
                                       fits.Column("STOP", "D", unit="s", array=gti[1])], name="GTI")
    g.header.update(HDUCLASS="OGIP", HDUCLAS1="GTI", MJDREFI=51544, MJDREFF=0.00074287037037037)
    fits.HDUList([fits.PrimaryHDU(), rate, g]).writeto(path)
    return cnt, dt * frac


def test_count_light_curve_errors_are_count_errors_divided_by_exposure(tmp_path):
    cnt, expo = _counts_lc(tmp_path / "counts.lc")
    lc = xcube.read_lightcurve(tmp_path / "counts.lc")
    np.testing.assert_allclose(lc["exposure"].values, expo)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.where(expo > 0, np.sqrt(cnt) / expo, np.nan)
    np.testing.assert_allclose(lc["rate_err"].values, want, rtol=1e-6, equal_nan=True)
    assert np.isnan(lc["rate_err"].values[expo == 0]).all() and (expo == 0).any()
    # written back: ERROR [count/s] is the rate error, not the count error
    xcube.write_lightcurve(tmp_path / "out.lc", lc)
    with fits.open(tmp_path / "out.lc") as h:
        err = np.asarray(h["RATE"].data["ERROR"], float)
    good = expo > 0
    np.testing.assert_allclose(err[good], want[good], rtol=1e-5)


def test_count_light_curve_error_in_rate_units_is_kept(tmp_path):
    cnt, expo = _counts_lc(tmp_path / "counts.lc", error_unit="count/s")
    lc = xcube.read_lightcurve(tmp_path / "counts.lc")
    np.testing.assert_allclose(lc["rate_err"].values, np.sqrt(cnt), rtol=1e-6)


def _stingray_pds(rebin_log: bool = False):
    from stingray import AveragedPowerspectrum, Lightcurve

    t = np.arange(0, 256, 0.01)
    c = np.random.default_rng(1).poisson(5, t.size)
    pds = AveragedPowerspectrum(Lightcurve(t, c, dt=0.01, skip_checks=True), 16, norm="leahy", silent=True)
    return pds.rebin_log(0.1) if rebin_log else pds


@pytest.mark.filterwarnings("ignore")  # (Stingray's own warnings when it writes FITS)
@pytest.mark.parametrize("rebin_log", [False, True])
def test_stingray_power_spectrum_file_is_read(tmp_path, rebin_log):
    from xcube.io.powspec import read_power_spectrum
    from xcube.io.product_info import product_kind, product_summary

    sp = _stingray_pds(rebin_log)
    sp.write(str(tmp_path / "st.fits"), fmt="fits")
    assert product_kind(tmp_path / "st.fits") == "power_spectrum"  # (was "unknown": info called it an event file)
    p = read_power_spectrum(tmp_path / "st.fits")
    want = xcube.from_stingray(sp)
    for name in ("freq", "freq_lo", "freq_hi", "power", "power_err", "m", "df"):
        np.testing.assert_allclose(p[name].values, want[name].values, rtol=1e-12, err_msg=name)
    assert p.attrs["norm"] == want.attrs["norm"] == "leahy"
    for k in ("dt", "segment", "n_bin", "n_segments", "mean_rate", "n_photons"):
        assert p.attrs[k] == pytest.approx(want.attrs[k]), k
    assert p.attrs["n_segments"] == 16 and p.attrs["mean_rate"] == pytest.approx(500, rel=0.01)
    assert p.attrs["poisson_level"] == 2.0
    text = product_summary(tmp_path / "st.fits", "power_spectrum")
    assert "16 segment(s) of 16 s" in text and "leahy" in text


def test_table_without_power_columns_is_refused_naming_file_and_columns(tmp_path):
    from xcube.io.powspec import read_power_spectrum

    hdu = fits.BinTableHDU.from_columns([fits.Column("freq", "D", array=np.arange(1.0, 4.0))], name="PDS")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "nopower.fits")
    with pytest.raises(ValueError, match=r"nopower\.fits: no power-spectrum table .*POWER.*'PDS': \['freq'\]"):
        read_power_spectrum(tmp_path / "nopower.fits")


def _rate_table(name, rate, dt=10.0, t0=5.0e8):
    n = rate.size
    hdu = fits.BinTableHDU.from_columns([
        fits.Column("TIME", "D", array=t0 + dt * (np.arange(n) + 0.5)), fits.Column("RATE", "E", array=rate),
        fits.Column("ERROR", "E", array=np.sqrt(rate / dt)), fits.Column("FRACEXP", "E", array=np.ones(n))],
        name=name)
    hdu.header.update(HDUCLASS="OGIP", HDUCLAS1="LIGHTCURVE", TELESCOP="XMM", INSTRUME="EPN", TIMEDEL=dt,
                      TIMEPIXR=0.5, MJDREFI=51544, MJDREFF=0.00074287037037037)
    return hdu


def test_info_lists_and_summarises_every_light_curve_table(tmp_path):
    from xcube.io.product_info import product_kind, product_summary

    rate = np.full(50, 3.0)
    fits.HDUList([fits.PrimaryHDU(), _rate_table("RATE", rate), _rate_table("RATE2", 2 * rate)]).writeto(
        tmp_path / "two.lc")
    assert product_kind(tmp_path / "two.lc") == "lightcurve"
    text = product_summary(tmp_path / "two.lc", "lightcurve")
    assert "2 light-curve tables: RATE (HDU 1), RATE2 (HDU 2)" in text
    assert "[RATE] (HDU 1)" in text and "[RATE2] (HDU 2)" in text
    assert "mean rate   : 3 count/s" in text and "mean rate   : 6 count/s" in text
    # one table: the summary as before (no table list)
    fits.HDUList([fits.PrimaryHDU(), _rate_table("RATE", rate)]).writeto(tmp_path / "one.lc")
    one = product_summary(tmp_path / "one.lc", "lightcurve")
    assert "tables" not in one and "\n  mean rate   : 3 count/s" in one


def _pha(path, backscal_column=None, type2_rows=0):
    n = 800
    rng = np.random.default_rng(3)
    if type2_rows:
        cols = [fits.Column("SPEC_NUM", "I", array=np.arange(1, type2_rows + 1)),
                fits.Column("TG_M", "I", array=[-1, 1, 2][:type2_rows]),
                fits.Column("CHANNEL", f"{n}J", array=np.tile(np.arange(1, n + 1), (type2_rows, 1))),
                fits.Column("COUNTS", f"{n}J", array=rng.poisson(5, (type2_rows, n))),
                fits.Column("EXPOSURE", "D", array=1000.0 * np.arange(1, type2_rows + 1)),
                fits.Column("BACKSCAL", "E", array=np.arange(1.0, type2_rows + 1))]
    else:
        cols = [fits.Column("CHANNEL", "J", array=np.arange(n)), fits.Column("COUNTS", "J", array=rng.poisson(5, n))]
        if backscal_column is not None:
            cols.append(fits.Column("BACKSCAL", "E", array=backscal_column))
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    hdu.header.update(HDUCLASS="OGIP", HDUCLAS1="SPECTRUM", HDUCLAS2="TOTAL", HDUCLAS3="COUNT", CHANTYPE="PI",
                      POISSERR=True, TELESCOP="XMM", INSTRUME="EMOS1", DETCHANS=n)
    if type2_rows:
        hdu.header["HDUCLAS4"] = "TYPE:II"
    else:
        hdu.header.update(EXPOSURE=1.0e4, AREASCAL=1.0)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)


def test_info_summarises_a_backscal_column(tmp_path):
    from xcube.io.product_info import product_summary

    _pha(tmp_path / "scal.pha", backscal_column=np.linspace(0.5, 1.0, 800))
    text = product_summary(tmp_path / "scal.pha", "spectrum")
    line = next(t for t in text.splitlines() if "backscal" in t)
    assert "backscal: column of 800, 0.5 - 1" in line and len(line) < 120  # (printed all 800 values)


def test_info_summarises_pha_type_ii(tmp_path):
    from xcube.io.product_info import product_kind, product_summary

    _pha(tmp_path / "t2.pha", type2_rows=3)
    assert product_kind(tmp_path / "t2.pha") == "spectrum"
    text = product_summary(tmp_path / "t2.pha", "spectrum")  # (crashed with an xarray error naming no file)
    assert "PHA type II" in text and "spectra     : 3 (one per row of SPECTRUM), 800 channels each" in text
    assert "row 2       : SPEC_NUM 2, TG_M 1; counts" in text and "exposure 2000.0 s, backscal 2.0" in text


def test_xronos_light_curve_class_with_a_space_is_found(tmp_path):
    """XRONOS writes HDUCLAS1 = 'LIGHT CURVE'; a table so marked under another EXTNAME was not found."""
    hdu = _rate_table("XRONOS_LC", np.full(20, 2.0))
    hdu.header["HDUCLAS1"] = "LIGHT CURVE"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "x.lc")
    lc = xcube.read_lightcurve(tmp_path / "x.lc")
    assert float(lc["rate"].mean()) == pytest.approx(2.0)


def test_info_takes_a_lightcurve_table_as_the_reader_does(tmp_path):
    """A table named LIGHTCURVE without HDUCLAS1: read_lightcurve reads it, xcube info called it 'not an event
    file' (it had its own test of a light-curve table)."""
    from xcube.io.product_info import product_kind

    hdu = _rate_table("LIGHTCURVE", np.full(20, 2.0))
    del hdu.header["HDUCLAS1"]
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "l.lc")
    assert float(xcube.read_lightcurve(tmp_path / "l.lc")["rate"].mean()) == pytest.approx(2.0)
    assert product_kind(tmp_path / "l.lc") == "lightcurve"


def test_info_of_a_powspec_table_without_keywords_prints_no_nan(tmp_path):
    """Sweep p27: frequencies were the outer bin edges (below 1/T) and a
    table without the segment keywords printed 'nan s'."""
    from xcube.io.product_info import product_summary

    f = np.arange(1, 10) * 0.001
    cols = [fits.Column(name=n, format="D", array=a) for n, a in
            (("FREQUENCY", f), ("XAX_E", np.full(9, 0.0005)), ("POWER", np.full(9, 2.0)), ("ERROR", np.ones(9)))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="POWSPEC")]).writeto(tmp_path / "p.fits")
    text = product_summary(tmp_path / "p.fits", "power_spectrum")
    assert "9, 0.001 - 0.009 Hz (bin centres)" in text and "nan" not in text


def test_info_of_a_net_light_curve_says_net(tmp_path):
    from xcube.io.product_info import product_summary

    t = 1.0e8 + 10.0 * np.arange(5) + 5.0
    cols = [fits.Column(name="TIME", format="D", array=t), fits.Column(name="RATE", format="E", array=np.ones(5)),
            fits.Column(name="ERROR", format="E", array=np.ones(5)),
            fits.Column(name="COUNTS", format="J", array=np.full(5, 12))]
    hdu = fits.BinTableHDU.from_columns(cols, name="RATE")
    hdu.header.update(TIMEDEL=10.0, MJDREF=50814.0, TIMESYS="TT", HDUCLAS1="LIGHTCURVE", HDUCLAS2="NET",
                      BACKAPP=True)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "net.lc")
    text = product_summary(tmp_path / "net.lc", "lightcurve")
    assert "mean net rate: 1 count/s" in text
