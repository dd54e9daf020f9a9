"""A TIMEZERO in the primary header only (FITS inheritance: it applies to every table of the file without its
own) is applied to the GTI tables of light curves and GTI files as to TIME, as the event reader does
(docs/events.md); a GTI table's own TIMEZERO still wins, and the RATE table's own TIMEZERO is not the GTI's."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from astropy.io import fits

from xcube import gti as gtimod
from xcube.io.lightcurve_file import read_lightcurve
from xcube.io.ogip import gti_table, read_gti
from xcube.io.product_info import product_summary

T0 = 100532388.0  # the first bin's start [s, mission time]
TZ = 1000.0
# good time relative to the first bin: 6 - 70 s and 85 - 122.5 s (20 bins of 10 s)
GOOD = (np.array([6.0, 85.0]), np.array([70.0, 122.5]))


def _gti(start, stop, **keys):
    h = fits.BinTableHDU.from_columns([fits.Column("START", "D", "s", array=start),
                                       fits.Column("STOP", "D", "s", array=stop)], name="GTI")
    h.header.update(HDUCLASS="OGIP", HDUCLAS1="GTI", HDUCLAS2="STANDARD", TIMEUNIT="s", MJDREF=50814.0,
                    TIMESYS="TT", **keys)
    return h


def _primary(**keys):
    p = fits.PrimaryHDU()
    p.header.update(keys)
    return p


def _light_curve(path, primary_keys, gti_start, gti_stop, gti_keys=None, rate_keys=None):
    """20 bins of 10 s, TIME = bin start - 1000 s (TIMEPIXR = 0), RATE 2 count/s, no FRACEXP: the exposure comes
    from the GTI table (START/STOP as given)."""
    n, dt = 20, 10.0
    rate = fits.BinTableHDU.from_columns(
        [fits.Column("TIME", "D", "s", array=T0 + dt * np.arange(n) - TZ),
         fits.Column("RATE", "D", "count/s", array=np.full(n, 2.0)),
         fits.Column("ERROR", "D", "count/s", array=np.full(n, 0.5))], name="RATE")
    rate.header.update(HDUCLASS="OGIP", HDUCLAS1="LIGHTCURVE", HDUCLAS2="TOTAL", HDUCLAS3="RATE", TIMEDEL=dt,
                       TIMEUNIT="s", TIMESYS="TT", MJDREF=50814.0, TELESCOP="SWIFT", INSTRUME="XRT", TIMEPIXR=0.0,
                       **(rate_keys or {}))
    fits.HDUList([_primary(**primary_keys), rate, _gti(gti_start, gti_stop, **(gti_keys or {}))]).writeto(path)
    return path


@pytest.mark.parametrize("primary", [{"TIMEZERO": TZ}, {"TIMEZERI": 999, "TIMEZERF": 1.0}])
def test_light_curve_gti_gets_the_primary_timezero(tmp_path, primary):
    path = _light_curve(tmp_path / "primtz.lc", primary, T0 + GOOD[0] - TZ, T0 + GOOD[1] - TZ)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (warned that no bin lies in the GTIs: they were 1000 s early)
        lc = read_lightcurve(path)
    np.testing.assert_allclose(lc["time_lo"].values[:2] - T0, [0.0, 10.0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(lc["gti_start"].values - T0, GOOD[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(lc["gti_stop"].values - T0, GOOD[1], rtol=0, atol=1e-6)
    want = np.array([4.0] + [10.0] * 6 + [0.0, 5.0] + [10.0] * 3 + [2.5] + [0.0] * 7)
    np.testing.assert_allclose(lc["exposure"].values, want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(lc["rate"].values[want > 0], 2.0 * 10.0 / want[want > 0], rtol=1e-12)


def test_gti_file_with_the_primary_timezero_is_read_where_it_was_written(tmp_path):
    path = tmp_path / "gti_primtz.fits"
    fits.HDUList([_primary(TIMEZERO=TZ), _gti(T0 + GOOD[0] - TZ, T0 + GOOD[1] - TZ)]).writeto(path)
    for gti in (read_gti(path), gti_table(path)):
        np.testing.assert_allclose(gti[0] - T0, GOOD[0], rtol=0, atol=1e-6)
        np.testing.assert_allclose(gti[1] - T0, GOOD[1], rtol=0, atol=1e-6)
    text = product_summary(path, "gti")
    span = re.search(r"time span\s*:\s*([0-9.]+) - ([0-9.]+) s", text)
    assert span, text
    assert float(span.group(1)) == pytest.approx(T0 + 6.0, abs=1e-3), text  # (was 1000 s early)
    assert float(span.group(2)) == pytest.approx(T0 + 122.5, abs=1e-3), text


def test_gti_tables_own_timezero_wins_over_the_primary(tmp_path):
    """The GTI table's TIMEZERO = 500 s (the primary says 1000 s, the RATE table relies on it)."""
    path = _light_curve(tmp_path / "own.lc", {"TIMEZERO": TZ}, T0 + GOOD[0] - 500.0, T0 + GOOD[1] - 500.0,
                        gti_keys={"TIMEZERO": 500.0})
    lc = read_lightcurve(path)
    np.testing.assert_allclose(lc["gti_start"].values - T0, GOOD[0], rtol=0, atol=1e-6)
    assert float(lc["exposure"].sum()) == pytest.approx(gtimod.exposure(GOOD), abs=1e-6)
    np.testing.assert_allclose(read_gti(path)[0] - T0, GOOD[0], rtol=0, atol=1e-6)


def test_rate_tables_timezero_is_not_the_gtis(tmp_path):
    """TIMEZERO only in the RATE table (HEASoft extractor: each table its own): absolute GTIs stay as written."""
    path = _light_curve(tmp_path / "ratetz.lc", {}, T0 + GOOD[0], T0 + GOOD[1], rate_keys={"TIMEZERO": TZ})
    lc = read_lightcurve(path)
    np.testing.assert_allclose(lc["gti_start"].values - T0, GOOD[0], rtol=0, atol=1e-6)
    assert float(lc["exposure"].sum()) == pytest.approx(gtimod.exposure(GOOD), abs=1e-6)
