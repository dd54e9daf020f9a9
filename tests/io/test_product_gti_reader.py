"""One reader of the GTI tables of OGIP products (``xcube.io.ogip.gti_of_hdu``):
``read_lightcurve``, ``xcube info`` (of the light curve and of its GTI table
alone), ``read_gti`` and ``select(gti=file)`` read START/STOP in their unit
(TUNITn 's' or 'd', else TIMEUNIT), plus the table's own TIMEZERO (or
TIMEZERI + TIMEZERF), and agree on the good time."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from astropy.io import fits
from conftest import real_file

from xcube import gti as gtimod
from xcube.io.lightcurve_file import read_lightcurve
from xcube.io.ogip import gti_table, read_gti
from xcube.io.product_info import product_kind, product_summary

DAY = 86400.0
MJDREF = 50814.0

# name: (START, STOP, TUNIT, GTI header, hand-computed good time [s] inside the bins 1000 - 1100 s)
CASES = {
    # 1005 - 1042 s and 1060 - 1075.5 s, given in days after TIMEZERO = 1000 s (in days, TIMEUNIT = 'd')
    "days": ([5.0 / DAY, 60.0 / DAY], [42.0 / DAY, 75.5 / DAY], "d",
             {"TIMEUNIT": "d", "TIMEZERO": 1000.0 / DAY}, 37.0 + 15.5),
    # seconds after the GTI's own TIMEZERO (900 s; the RATE table's is 1000 s)
    "own_timezero": ([105.0, 150.0], [142.0, 190.0], "s", {"TIMEUNIT": "s", "TIMEZERO": 900.0}, 37.0 + 40.0),
    # the split form: TIMEZERI + TIMEZERF = 1000.25 s
    "timezeri": ([4.75, 60.0], [41.75, 75.25], "s", {"TIMEZERI": 1000, "TIMEZERF": 0.25}, 37.0 + 15.25),
    "empty": ([], [], "s", {}, 0.0),
}


def _light_curve(path, start, stop, unit, gti_header, *, rate_header=None):
    """A RATE table of 10 bins of 10 s (TIME 0 - 90 s after TIMEZERO = 1000 s,
    TIMEPIXR = 0, no FRACEXP: the exposure comes from the GTI) and its GTI table;
    also the GTI table alone in ``<path>.gti``. Returns both paths."""
    rate = fits.BinTableHDU.from_columns(
        [fits.Column(name="TIME", format="D", unit="s", array=10.0 * np.arange(10)),
         fits.Column(name="RATE", format="D", unit="count/s", array=np.full(10, 2.0)),
         fits.Column(name="ERROR", format="D", unit="count/s", array=np.full(10, 0.5))], name="RATE")
    rate.header.update({"HDUCLAS1": "LIGHTCURVE", "TELESCOP": "XMM", "INSTRUME": "EPN", "MJDREF": MJDREF,
                        "TIMESYS": "TT", "TIMEUNIT": "s", "TIMEZERO": 1000.0, "TIMEDEL": 10.0, "TIMEPIXR": 0.0})
    rate.header.update(rate_header or {})
    gti = fits.BinTableHDU.from_columns(
        [fits.Column(name="START", format="D", unit=unit, array=np.asarray(start, float)),
         fits.Column(name="STOP", format="D", unit=unit, array=np.asarray(stop, float))], name="GTI")
    gti.header.update({"HDUCLAS1": "GTI", "MJDREF": MJDREF, "TIMESYS": "TT"})
    gti.header.update(gti_header)
    fits.HDUList([fits.PrimaryHDU(), rate, gti]).writeto(path)
    alone = path.with_suffix(".gti")
    fits.HDUList([fits.PrimaryHDU(), gti.copy()]).writeto(alone)
    return path, alone


def _info_seconds(text: str, label: str) -> float:
    m = re.search(rf"{label}\s*:\s*([0-9.]+) s", text)
    assert m, text
    return float(m.group(1))


@pytest.mark.parametrize("case", list(CASES))
def test_light_curve_and_info_give_the_same_good_time(tmp_path, case):
    start, stop, unit, header, expected = CASES[case]
    lc_path, gti_path = _light_curve(tmp_path / f"{case}.lc", start, stop, unit, header)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lc = read_lightcurve(lc_path)
        gti = read_gti(lc_path)
        info_lc = product_summary(lc_path, "lightcurve")
        assert product_kind(gti_path) == "gti"
        info_gti = product_summary(gti_path, "gti")
    assert float(lc["exposure"].sum()) == pytest.approx(expected, abs=1e-6)
    assert gtimod.exposure(gtimod.from_dataset(lc)) == pytest.approx(expected, abs=1e-6)
    assert gtimod.exposure(gti) == pytest.approx(expected, abs=1e-6)
    np.testing.assert_allclose(gti[0], lc["gti_start"].values, rtol=0, atol=1e-6)
    np.testing.assert_allclose(gti[1], lc["gti_stop"].values, rtol=0, atol=1e-6)
    assert _info_seconds(info_lc, "exposure") == pytest.approx(expected, abs=0.05)
    assert _info_seconds(info_gti, "GTI exposure") == pytest.approx(expected, abs=0.05)
    assert gtimod.exposure(gti_table(gti_path)) == pytest.approx(expected, abs=1e-6)
    assert gtimod.exposure(gti_table(f"{lc_path}[GTI]", lc)) == pytest.approx(expected, abs=1e-6)


def test_gti_times_in_days_start_where_the_hand_says(tmp_path):
    lc_path, _ = _light_curve(tmp_path / "d.lc", *CASES["days"][:4])
    lc = read_lightcurve(lc_path)
    np.testing.assert_allclose(lc["gti_start"].values, [1005.0, 1060.0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(lc["gti_stop"].values, [1042.0, 1075.5], rtol=0, atol=1e-6)
    np.testing.assert_allclose(lc["exposure"].values, [5, 10, 10, 10, 2, 0, 10, 5.5, 0, 0], rtol=0, atol=1e-6)


def test_gti_with_its_own_mjdref_is_moved_into_the_light_curves_frame(tmp_path):
    """START/STOP count from the GTI table's own MJDREF (OGIP): 0.01 d = 864 s
    later than the RATE table's, so START = 141 s is 1005 s of the light curve."""
    lc_path, _ = _light_curve(tmp_path / "m.lc", [141.0], [178.0], "s",
                              {"MJDREF": MJDREF + 0.01, "MJDREFI": int(MJDREF), "MJDREFF": 0.01})
    lc = read_lightcurve(lc_path)
    np.testing.assert_allclose([lc["gti_start"].values[0], lc["gti_stop"].values[0]], [1005.0, 1042.0], atol=1e-6)
    assert float(lc["exposure"].sum()) == pytest.approx(37.0, abs=1e-6)
    assert _info_seconds(product_summary(lc_path, "lightcurve"), "exposure") == pytest.approx(37.0, abs=0.05)
    # alone, the table is read in its own frame; given to the light curve's frame it is refused, as before
    np.testing.assert_allclose(read_gti(lc_path)[0], [141.0])
    with pytest.raises(ValueError, match="MJDREF"):
        gti_table(f"{lc_path}[GTI]", lc)


def test_gti_in_another_time_system_is_read_with_a_warning(tmp_path):
    """As the event reader does: TT GTIs beside TDB times are named, not shifted."""
    lc_path, _ = _light_curve(tmp_path / "tdb.lc", [1005.0], [1042.0], "s", {"TIMEZERO": 0.0},
                              rate_header={"TIMESYS": "TDB"})
    with pytest.warns(UserWarning, match=r"tdb\.lc\[GTI\]: TIMESYS 'TT' differs from its product's 'TDB'"):
        lc = read_lightcurve(lc_path)
    assert float(lc["exposure"].sum()) == pytest.approx(37.0, abs=1e-6)


@pytest.mark.parametrize("unit", ["MJD", "ms"])
def test_gti_column_in_an_unknown_unit_is_an_error_naming_it(tmp_path, unit):
    lc_path, gti_path = _light_curve(tmp_path / "u.lc", [1005.0], [1042.0], unit, {})
    for read in (read_lightcurve, read_gti):
        with pytest.raises(ValueError, match=rf"u\.lc\[GTI\]: column START has TUNIT1='{unit}'"):
            read(lc_path)
    with pytest.raises(ValueError, match=rf"TUNIT1='{unit}'"):
        product_summary(gti_path, "gti")


def test_start_and_stop_in_different_units_are_refused(tmp_path):
    """STOP relabelled 'd' beside START in seconds: a wrong header, not days to convert."""
    lc_path, gti_path = _light_curve(tmp_path / "mix.lc", [1005.0], [1042.0], "s", {})
    for path in (lc_path, gti_path):
        with fits.open(path, mode="update") as h:
            h["GTI"].header["TUNIT2"] = "d"
    msg = r"mix\.(lc|gti)\[GTI\]: column STOP has TUNIT2='d' but START has TUNIT1='s'"
    for read in (read_lightcurve, read_gti):
        with pytest.raises(ValueError, match=msg):
            read(lc_path)
    with pytest.raises(ValueError, match=msg):
        product_summary(gti_path, "gti")


def test_real_pn_light_curves_unchanged():
    """The EXOD pn light curves (12 per-CCD GTI tables in seconds, TIMEZERO = 0):
    the good time read before the single GTI reader, for every table."""
    src = real_file("xmm", "exod_0001730201_PN_J173446-323317_lc_100_src.lc")
    bgd = real_file("xmm", "exod_0001730201_PN_J173446-323317_lc_100_bgd.lc")
    for path in (src, bgd):
        with fits.open(path) as h:
            names = [x.name for x in h if x.name.startswith("GTI")]
        assert len(names) == 12
        lc = read_lightcurve(path)
        assert lc.attrs["gti_extension"] == "GTI00003" and lc.sizes["gti"] == 19
        assert float(lc["exposure"].sum()) == pytest.approx(16290.358813, abs=1e-5)
        assert "exposure    : 16290.4 s in the bins (165 bins with good time); 19 GTI(s)" in product_summary(
            path, "lightcurve")
        for name in names:
            with fits.open(path) as h:
                d = h[name].data
                hand = float(np.sum(np.asarray(d["STOP"], float) - np.asarray(d["START"], float)))
            one = read_lightcurve(path, gti_extension=name)
            assert gtimod.exposure(read_gti(path, name)) == pytest.approx(hand, rel=1e-12)
            np.testing.assert_array_equal(read_gti(path, name)[0], one["gti_start"].values)
