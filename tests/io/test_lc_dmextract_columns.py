"""Chandra ``dmextract`` light curves (opt=ltc1: TIME_MIN, TIME, TIME_MAX, COUNTS, STAT_ERR, AREA, EXPOSURE,
COUNT_RATE, COUNT_RATE_ERR; EXPOSURE is the bin's live exposure, good time x DTCOR): ``read_lightcurve`` takes
the exposure from EXPOSURE, the rate and its error from COUNT_RATE/COUNT_RATE_ERR (else STAT_ERR / EXPOSURE),
NaN where the exposure is 0, with or without a GTI block."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits

from xcube.io.lightcurve_file import read_lightcurve

T0, DT, N, DTCOR = 100532388.0, 10.0, 20, 0.98
FRAC = np.ones(N)
FRAC[[0, 7, 8, N - 1]] = [0.4, 0.0, 0.5, 0.25]  # good fraction of each bin: partial bins and one without good time
GTI = (np.array([T0 + 6.0, T0 + 85.0]), np.array([T0 + 70.0, T0 + (N - 1) * DT + 2.5]))


def _dmextract(path, *, gti: bool, rate_columns: bool = True):
    """A dmextract-layout light curve: EXPOSURE = good time x DTCOR, STAT_ERR Gehrels (1 + sqrt(N + 0.75)),
    COUNT_RATE = COUNTS / EXPOSURE and COUNT_RATE_ERR = STAT_ERR / EXPOSURE (0 where EXPOSURE is 0, as written)."""
    lo = T0 + DT * np.arange(N)
    cts = np.random.default_rng(7).poisson(30 * FRAC)
    cts[FRAC == 0] = 0
    live = DT * FRAC * DTCOR
    stat = 1.0 + np.sqrt(cts + 0.75)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate, rate_err = (np.where(live > 0, v / live, 0.0) for v in (cts, stat))
    C = fits.Column
    cols = [C("TIME_BIN", "J", array=np.arange(1, N + 1)), C("TIME_MIN", "D", "s", array=lo),
            C("TIME", "D", "s", array=lo + DT / 2), C("TIME_MAX", "D", "s", array=lo + DT),
            C("COUNTS", "J", "count", array=cts), C("STAT_ERR", "D", "count", array=stat),
            C("AREA", "D", "pixel**2", array=np.full(N, 100.0)), C("EXPOSURE", "D", "s", array=live)]
    if rate_columns:
        cols += [C("COUNT_RATE", "D", "count/s", array=rate), C("COUNT_RATE_ERR", "D", "count/s", array=rate_err)]
    h = fits.BinTableHDU.from_columns(cols, name="LIGHTCURVE")
    h.header.update(HDUCLASS="OGIP", HDUCLAS1="LIGHTCURVE", HDUCLAS2="TOTAL", HDUCLAS3="COUNT", TELESCOP="CHANDRA",
                    INSTRUME="ACIS", MJDREF=50814.0, TIMESYS="TT", TIMEUNIT="s", TIMEZERO=0.0, TIMEPIXR=0.5,
                    TIMEDEL=DT, DTCOR=DTCOR, TSTART=lo[0], TSTOP=lo[-1] + DT)
    hdus = [fits.PrimaryHDU(), h]
    if gti:
        g = fits.BinTableHDU.from_columns([C("START", "D", "s", array=GTI[0]), C("STOP", "D", "s", array=GTI[1])],
                                          name="GTI")
        g.header.update(HDUCLASS="OGIP", HDUCLAS1="GTI", CCD_ID=7, MJDREF=50814.0, TIMESYS="TT")
        hdus.append(g)
    fits.HDUList(hdus).writeto(path)
    return cts, live, stat


@pytest.mark.parametrize("gti", [False, True], ids=["no_gti", "gti"])
def test_dmextract_exposure_rate_and_errors_are_the_files(tmp_path, gti):
    cts, live, stat = _dmextract(tmp_path / "dm.lc", gti=gti)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lc = read_lightcurve(tmp_path / "dm.lc")
    good = live > 0
    np.testing.assert_allclose(lc["exposure"].values, live, rtol=1e-12)  # (no GTI: 10 s each; GTI: no DTCOR)
    np.testing.assert_allclose(lc["fracexp"].values, FRAC * DTCOR, rtol=1e-12)
    np.testing.assert_array_equal(lc["counts"].values, cts)
    np.testing.assert_allclose(lc["rate"].values[good], cts[good] / live[good], rtol=1e-12)
    np.testing.assert_allclose(lc["rate_err"].values[good], stat[good] / live[good], rtol=1e-12)  # not sqrt(N)
    assert np.isnan(lc["rate"].values[~good]).all() and np.isnan(lc["rate_err"].values[~good]).all()
    if gti:
        np.testing.assert_allclose(lc["gti_start"].values, GTI[0], rtol=0, atol=1e-6)
        np.testing.assert_allclose(lc["gti_stop"].values, GTI[1], rtol=0, atol=1e-6)
    else:  # the exposed bins: the one without exposure is no good time
        assert not np.any((lc["gti_start"].values < T0 + 80.0) & (lc["gti_stop"].values > T0 + 70.0))


def test_dmextract_without_rate_columns_divides_stat_err_by_the_exposure(tmp_path):
    cts, live, stat = _dmextract(tmp_path / "dm.lc", gti=False, rate_columns=False)
    lc = read_lightcurve(tmp_path / "dm.lc")
    good = live > 0
    np.testing.assert_allclose(lc["exposure"].values, live, rtol=1e-12)
    np.testing.assert_allclose(lc["rate"].values[good], cts[good] / live[good], rtol=1e-12)
    np.testing.assert_allclose(lc["rate_err"].values[good], stat[good] / live[good], rtol=1e-12)
    assert np.isnan(lc["rate"].values[~good]).all() and np.isnan(lc["rate_err"].values[~good]).all()


def test_exposure_column_that_is_no_time_is_not_used(tmp_path):
    """Fermi ``gtexposure`` adds EXPOSURE in cm**2 s: not the bins' live time; the GTIs give the exposure."""
    _dmextract(tmp_path / "dm.lc", gti=True, rate_columns=False)
    with fits.open(tmp_path / "dm.lc", mode="update") as h:
        h["LIGHTCURVE"].columns["EXPOSURE"].unit = "cm**2 s"
        h["LIGHTCURVE"].data["EXPOSURE"] *= 5000.0
    with pytest.warns(UserWarning, match=r"dm\.lc\[LIGHTCURVE\]: column EXPOSURE is in 'cm\*\*2 s', not a time"):
        lc = read_lightcurve(tmp_path / "dm.lc")
    np.testing.assert_allclose(lc["exposure"].values, DT * FRAC, rtol=0, atol=1e-9)
