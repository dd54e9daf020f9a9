"""Hostile event-file headers (reviewer sweep C): infinite GTI bounds, a
GTI table under another name (HDUCLAS1 = 'GTI'), event columns named like
the GTI variables, a TIME/START/STOP column whose TUNIT is not seconds, and
the messages of a file without GTI/TSTART and of a vector PI column."""
import re
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from conftest import real_file

import xcube
from xcube import gti as gtimod
from xcube.io.write_events import write_events_fits

MOS1 = ("xmm", "xga_0201901401_mos1_exp1_clean_evts.fits")
NUSTAR = ("nustar", "barycenter_dummy_evt_nustar_B1937.evt")
HDR = {"TELESCOP": "XMM", "INSTRUME": "EMOS1", "MJDREF": 50814.0, "TSTART": 1.0e8, "TSTOP": 1.0e8 + 1.0e3,
       "OBS_ID": "0123456789"}
WCS_XY = {"X": {"ctype": "RA---TAN", "crval": 263.66, "crpix": 25921, "cdelt": -1.38888888888889e-05},
          "Y": {"ctype": "DEC--TAN", "crval": -32.556, "crpix": 25921, "cdelt": 1.38888888888889e-05}}


def _name(path):
    return re.escape(str(path.name))


def _cols(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return {"TIME": np.sort(1.0e8 + rng.uniform(0, 1.0e3, n)), "X": rng.integers(20000, 32000, n).astype(np.int32),
            "Y": rng.integers(20000, 32000, n).astype(np.int32), "PI": rng.integers(200, 12000, n).astype(np.int16)}


def _copy_with(tmp_path, parts, name, edit):
    """A copy of a real file with ``edit(hdul)`` applied (written anew by astropy)."""
    src = real_file(*parts)
    out = tmp_path / name
    with fits.open(src) as h:
        h = fits.HDUList([x.copy() for x in h])
        edit(h)
        h.writeto(out)
    return out


def _xy_index(header):
    names = [header[f"TTYPE{i}"].strip().upper() for i in range(1, header["TFIELDS"] + 1)]
    return names.index("X") + 1, names.index("Y") + 1


def _reference_radec(path, x, y):
    """RA/Dec [deg] of column values ``x``, ``y`` by WCSLIB's own reading of the file's pixel-list WCS
    (column value x = FITS pixel x = astropy pixel x - 1)."""
    hdr = fits.getheader(path, "EVENTS")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = WCS(hdr, keysel=["pixel"], colsel=list(_xy_index(hdr)))
    return np.array(ref.wcs_pix2world(np.asarray(x, float) - 1, np.asarray(y, float) - 1, 0))


def _open_quiet(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xcube.open_events(path, **kw)


# ------------------------------------------------------------------ D1: infinite GTI bounds

@pytest.mark.parametrize("bound", ["stop", "start"])
@pytest.mark.parametrize("gz", [False, True])
def test_infinite_gti_bound_is_an_error_naming_the_file(tmp_path, bound, gz):
    """START = -inf or STOP = +inf was accepted (exposure inf, products and the search failing later)."""
    start, stop = np.array([1.0e8, 1.0e8 + 600.0]), np.array([1.0e8 + 500.0, 1.0e8 + 1.0e3])
    if bound == "stop":
        stop[-1] = np.inf
    else:
        start[0] = -np.inf
    path = write_events_fits(tmp_path / ("inf.fits.gz" if gz else "inf.fits"), _cols(), header=HDR,
                             gti=(start, stop), gzip=gz)
    with pytest.raises(ValueError, match=rf"{_name(path)}\[GTI\]: GTI table has infinite START/STOP values"):
        xcube.open_events(path)


def test_normalize_refuses_non_finite_bounds():
    for start, stop in (([0.0, 10.0], [5.0, np.inf]), ([-np.inf], [5.0])):
        with pytest.raises(ValueError, match=r"f\.fits\[GTI\]: GTI table has infinite START/STOP.*row"):
            gtimod.normalize(start, stop, source="f.fits[GTI]")
    with pytest.raises(ValueError, match="NaN and infinite"):
        gtimod.normalize([np.nan, 0.0], [1.0, np.inf], source="f.fits[GTI]")
    assert gtimod.exposure(([0.0, 10.0], [5.0, 20.0])) == 15.0


def test_infinite_tstart_without_gti_is_an_error(tmp_path):
    path = write_events_fits(tmp_path / "notgti.fits", _cols(), header=HDR)
    with fits.open(path, mode="update") as h:  # FITS has no inf literal: a numeric string, as header_float reads it
        h["EVENTS"].header["TSTOP"] = "inf"
    with pytest.raises(ValueError, match=rf"{_name(path)}: no GTI extension, and TSTART = .* are not finite"):
        _open_quiet(path)


# ------------------------------------------------------------------ D5: GTI table under another name

def test_ogip_gti_table_under_another_name_is_used(tmp_path):
    """NuSTAR's GTI renamed STDGTI (HDUCLAS1 = 'GTI'): TSTART-TSTOP was used instead (exposure x2)."""
    def edit(h):
        h["GTI"].name = "STDGTI"

    path = _copy_with(tmp_path, NUSTAR, "stdgti.evt", edit)
    with fits.open(path) as h:
        g = h["STDGTI"].data
        want = float(np.sum(g["STOP"] - g["START"]))
    with pytest.warns(UserWarning, match=rf"{_name(path)}: no GTI extension matching \['GTI'\].*using the OGIP GTI "
                                         r"table\(s\) \['STDGTI'\] \(HDUCLAS1 = 'GTI'\)"):
        ev = xcube.open_events(path)
    assert ev.attrs["gti_kind"] == "global"
    assert ev.attrs["exposure"] == pytest.approx(want, rel=1e-12)
    orig = _open_quiet(real_file(*NUSTAR))
    np.testing.assert_array_equal(ev.gti_start.values, orig.gti_start.values)


def test_profile_named_gti_wins_over_other_ogip_gti_tables(tmp_path):
    """An extra HDUCLAS1 = 'GTI' table under another name does not change a file that has its GTI."""
    path = write_events_fits(tmp_path / "two.fits", _cols(), header=dict(HDR, TELESCOP="NuSTAR", INSTRUME="FPMA"),
                             gti_extensions={"GTI": ([1e8], [1e8 + 1e3]), "USERGTI": ([1e8], [1e8 + 10.0])})
    ev = _open_quiet(path)
    assert ev.attrs["exposure"] == pytest.approx(1e3)


def test_real_xmm_gtis_unchanged_by_the_ogip_fallback():
    """XMM per-CCD STDGTInn and flare GTI0cc0n tables are the profile's: same exposure as before."""
    ev = _open_quiet(real_file(*MOS1))
    assert ev.attrs["gti_kind"] == "ccd-union"
    with fits.open(real_file(*MOS1)) as h:
        names = [x.name for x in h if str(x.header.get("HDUCLAS1", "")).strip() == "GTI"]
    assert any(n.startswith("STDGTI") for n in names) and any(n.startswith("GTI0") for n in names)
    assert sorted(np.unique(ev.ccd_gti_ccd.values)) == list(range(1, 8))


# ------------------------------------------------------------------ D6: columns named like GTI variables

@pytest.mark.parametrize("gz", [False, True])
def test_event_column_named_gti_start_is_kept_renamed(tmp_path, gz):
    """A column GTI_START was silently replaced by the GTI variable gti_start."""
    cols = _cols()
    cols["GTI_START"] = np.arange(200, dtype=np.int32)
    cols["CCD_GTI_STOP"] = np.arange(200, dtype=np.float64) * 0.5
    path = write_events_fits(tmp_path / ("g.fits.gz" if gz else "g.fits"), cols, header=HDR,
                             gti=([1e8, 1e8 + 600], [1e8 + 500, 1e8 + 1e3]), gzip=gz)
    with pytest.warns(UserWarning, match=rf"{_name(path)}\[EVENTS\]: event column 'GTI_START' has the name of the "
                                         r"EventList's GTI variable 'gti_start'; it is kept as 'gti_start_file'"):
        ev = xcube.open_events(path)
    assert ev["gti_start"].dims == ("gti",) and ev.sizes["gti"] == 2
    assert ev["gti_start_file"].dims == ("event",)
    np.testing.assert_array_equal(ev["gti_start_file"].values, np.arange(200))
    np.testing.assert_array_equal(ev["ccd_gti_stop_file"].values, np.arange(200) * 0.5)


# ------------------------------------------------------------------ D7: TUNIT of TIME and of START/STOP

@pytest.mark.parametrize("gz", [False, True])
def test_time_column_in_days_is_refused(tmp_path, gz):
    """TUNIT = 'd' on TIME with TIMEUNIT = 's' was read as seconds."""
    path = write_events_fits(tmp_path / ("d.fits.gz" if gz else "d.fits"), _cols(), header=dict(HDR, TIMEUNIT="s"),
                             gti=([1e8], [1e8 + 1e3]), column_keywords={"TIME": {"unit": "d"}}, gzip=gz)
    with pytest.raises(ValueError, match=rf"{_name(path)}\[EVENTS\]: column TIME has TUNIT1='d': xcube needs times "
                                         "in seconds"):
        xcube.open_events(path)


def test_gti_columns_in_days_are_refused(tmp_path):
    from xcube.io.ogip import read_gti

    path = write_events_fits(tmp_path / "gd.fits", _cols(), header=HDR, gti=([1e8], [1e8 + 1e3]))
    with fits.open(path, mode="update") as h:
        h["GTI"].header["TUNIT2"] = "d"
    with pytest.raises(ValueError, match=rf"{_name(path)}\[GTI\]: column STOP has TUNIT2='d'"):
        xcube.open_events(path)
    with pytest.raises(ValueError, match=rf"{_name(path)}\[GTI\]: column STOP has TUNIT2='d'"):
        read_gti(path)


@pytest.mark.parametrize("unit", ["s", "sec", "S", "seconds", None])
def test_time_units_in_seconds_are_read_unchanged(tmp_path, unit):
    kw = {"TIME": {"unit": unit}} if unit else {}
    path = write_events_fits(tmp_path / "s.fits", _cols(), header=HDR, gti=([1e8], [1e8 + 1e3]), column_keywords=kw)
    ev = _open_quiet(path)
    np.testing.assert_array_equal(ev.time.values, _cols()["TIME"])


# ------------------------------------------------------------------ small messages

def test_no_gti_and_no_tstart_gives_the_error_without_a_bogus_warning(tmp_path):
    hdr = {k: v for k, v in HDR.items() if k not in ("TSTART", "TSTOP")}
    path = write_events_fits(tmp_path / "bare.fits", _cols(), header=hdr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match=rf"{_name(path)}: no GTI extension and no TSTART/TSTOP"):
            xcube.open_events(path)
    assert not [w for w in caught if "TSTART-TSTOP" in str(w.message)], [str(w.message) for w in caught]


def test_vector_pi_column_is_named_as_such(tmp_path):
    cols = _cols()
    cols["PI"] = np.stack([cols["PI"], cols["PI"]], 1).astype(np.int32)
    path = write_events_fits(tmp_path / "vec.fits", cols, header=HDR, gti=([1e8], [1e8 + 1e3]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = xcube.open_events(path)
    msgs = [str(w.message) for w in caught]
    assert any(re.search(rf"{_name(path)}\[EVENTS\]: the PI column is a vector .*TFORM '2J'.*cannot be used", m)
               for m in msgs), msgs
    assert not any("no PI column" in m for m in msgs), msgs
    assert "pi" not in ev
