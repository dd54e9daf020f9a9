"""Hostile event-file headers (reviewer sweep C): infinite GTI bounds, a
rotated sky WCS of the X/Y columns (TCROTn, TPn_ka, TCn_ka), TCDLTn = 0, a
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


# ------------------------------------------------------------------ D3: rotated sky WCS

def _rotate_tcrot(h, deg=30.0):
    ix, iy = _xy_index(h["EVENTS"].header)
    h["EVENTS"].header[f"TCROT{iy}"] = deg


def _rotate_pc(h, deg=30.0):
    ix, iy = _xy_index(h["EVENTS"].header)
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    H = h["EVENTS"].header
    H[f"TP{ix}_{ix}"], H[f"TP{ix}_{iy}"], H[f"TP{iy}_{ix}"], H[f"TP{iy}_{iy}"] = c, -s, s, c


def _rotate_cd(h, deg=-20.0):
    ix, iy = _xy_index(h["EVENTS"].header)
    H = h["EVENTS"].header
    d = abs(float(H[f"TCDLT{ix}"]))
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    H[f"TC{ix}_{ix}"], H[f"TC{ix}_{iy}"], H[f"TC{iy}_{ix}"], H[f"TC{iy}_{iy}"] = -d * c, d * s, d * s, d * c


@pytest.mark.parametrize("edit", [_rotate_tcrot, _rotate_pc, _rotate_cd], ids=["TCROT", "TPn_ka", "TCn_ka"])
def test_rotated_column_wcs_matches_astropy_pixel_list_wcs(tmp_path, edit):
    """TCROTn / TPn_ka / TCn_ka were ignored: positions off by up to 590". Compared with WCSLIB's own
    reading of the pixel-list WCS (column value x = FITS pixel x = astropy pixel x - 1), in pixel-to-world
    numbers of the same frame."""
    path = _copy_with(tmp_path, MOS1, "rot.fits", edit)
    hdr = fits.getheader(path, "EVENTS")
    ix, iy = _xy_index(hdr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = WCS(hdr, keysel=["pixel"], colsel=[ix, iy])
    assert not np.allclose(ref.wcs.get_pc(), np.eye(2))  # the copy is rotated
    ev = _open_quiet(path)
    assert "PC1_2" in ev.attrs
    x = np.array([9003.0, 43725.0, 25921.0, 30500.5])
    y = np.array([10596.0, 40000.0, 30000.0, 20100.25])
    ra_ref, dec_ref = ref.wcs_pix2world(x - 1, y - 1, 0)
    ra, dec = xcube.wcs(ev).wcs_pix2world(x, y, 0)
    sep = np.hypot((ra - ra_ref) * np.cos(np.radians(dec_ref)), dec - dec_ref) * 3600.0
    assert sep.max() < 0.1, sep
    # the events' own positions too (one chunk)
    ex, ey = ev.x.values[:1000].astype(float), ev.y.values[:1000].astype(float)
    a = np.array(ref.wcs_pix2world(ex - 1, ey - 1, 0))
    b = np.array(xcube.wcs(ev).wcs_pix2world(ex, ey, 0))
    assert np.abs(a - b).max() * 3600.0 < 0.1


def test_rotated_image_written_to_fits_keeps_the_rotation(tmp_path):
    """The image of a rotated copy: its ra/dec coords are the events' WCS at the cell centres, and the FITS
    image written from it gives the same RA/Dec per pixel (PCi_j in the header)."""
    from xcube.io.ogip import write_image

    path = _copy_with(tmp_path, MOS1, "rot.fits", _rotate_tcrot)
    ev = _open_quiet(path)
    img = xcube.image(ev, 80.0, screening=False)
    xx, yy = np.meshgrid(img.x.values, img.y.values)
    ra_ev, dec_ev = _reference_radec(path, xx, yy)
    np.testing.assert_allclose(img.ra.values, ra_ev, atol=1e-7)
    np.testing.assert_allclose(img.dec.values, dec_ev, atol=1e-7)
    out = write_image(tmp_path / "rot_img.fits", img)
    hdr = fits.getheader(out)
    assert {"PC1_1", "PC1_2", "PC2_1", "PC2_2"} <= set(hdr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w_img = WCS(hdr).celestial
    jx, jy = np.meshgrid(np.arange(img.sizes["x"], dtype=float), np.arange(img.sizes["y"], dtype=float))
    ra, dec = w_img.wcs_pix2world(jx, jy, 0)
    np.testing.assert_allclose(ra, img.ra.values, atol=1e-9)
    np.testing.assert_allclose(dec, img.dec.values, atol=1e-9)
    # a cut-out keeps it as well
    cut = img.isel(x=slice(50, 120), y=slice(30, 90))
    out2 = write_image(tmp_path / "cut.fits", cut)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w_cut = WCS(fits.getheader(out2)).celestial
    jx, jy = np.meshgrid(np.arange(cut.sizes["x"], dtype=float), np.arange(cut.sizes["y"], dtype=float))
    np.testing.assert_allclose(np.array(w_cut.wcs_pix2world(jx, jy, 0)), np.array([cut.ra.values, cut.dec.values]),
                               atol=1e-9)
    # the plot of the written file is drawn on the rotated WCS
    import matplotlib

    matplotlib.use("Agg")
    from xcube.plot.files import plot_file

    fig = plot_file(out)
    np.testing.assert_allclose(fig.axes[0].wcs.wcs.get_pc(), w_img.wcs.get_pc(), atol=1e-12)


def test_rotated_wcs_of_non_square_cells_and_regions(tmp_path):
    """Cells w_x by w_y: the cell WCS (PC'_ij = PC_ij w_j / w_i) gives the events' sky position at every cell
    centre; the column WCS regions derive back from a grid (and regions' own fallback) is the events' WCS."""
    from xcube.binning import bin_events, cube_wcs
    from xcube.regions import _cell_grid_attrs, _fallback_wcs, events_wcs

    path = _copy_with(tmp_path, MOS1, "rot.fits", _rotate_pc)
    ev = _open_quiet(path)
    cube = bin_events(ev, x={"width": 40, "range": (20000, 32000)}, y={"width": 100, "range": (20000, 32000)})
    xx, yy = np.meshgrid(cube.x.values, cube.y.values)
    ra, dec = _reference_radec(path, xx, yy)
    np.testing.assert_allclose(cube.ra.values, ra, atol=1e-7)
    np.testing.assert_allclose(cube.dec.values, dec, atol=1e-7)
    jx, jy = np.meshgrid(np.arange(cube.sizes["x"], dtype=float), np.arange(cube.sizes["y"], dtype=float))
    np.testing.assert_allclose(np.array(cube_wcs(cube).wcs_pix2world(jx, jy, 0)), np.array([ra, dec]), atol=1e-9)
    px, py = np.array([21000.0, 25921.0, 31000.5]), np.array([20500.0, 26000.0, 31900.0])
    want = _reference_radec(path, px, py)
    for w in (events_wcs(cube), events_wcs(cube.isel(x=slice(10, 50))), _fallback_wcs(_cell_grid_attrs(cube)),
              _fallback_wcs(ev)):
        np.testing.assert_allclose(np.array(w.wcs_pix2world(px, py, 0)), want, atol=1e-7)


def test_rotated_events_written_back_keep_the_rotation(tmp_path):
    path = _copy_with(tmp_path, MOS1, "rot.fits", _rotate_cd)
    ev = _open_quiet(path)
    from xcube.io.write_events import write_events

    out = write_events(tmp_path / "back.fits", ev)
    back = _open_quiet(out)
    px, py = np.array([21000.0, 25921.0, 31000.5]), np.array([20500.0, 26000.0, 31900.0])
    np.testing.assert_allclose(np.array(xcube.wcs(back).wcs_pix2world(px, py, 0)), _reference_radec(path, px, py),
                               atol=1e-7)


def test_spacecraft_offsets_do_not_depend_on_the_sky_pixel_rotation():
    """The same sky positions give the same spacecraft-frame offsets whether X/Y are rotated or not."""
    from xcube.skycoords import spacecraft_offsets, wcs

    base = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 263.66, "CRVAL2": -32.556, "CRPIX1": 25921.0,
            "CRPIX2": 25921.0, "CDELT1": -1.38888888888889e-05, "CDELT2": 1.38888888888889e-05,
            "profile": "xmm-mos1", "pa_pnt": 93.66, "ra_pnt": 263.65, "dec_pnt": -32.55}
    c, s = np.cos(np.radians(25.0)), np.sin(np.radians(25.0))
    rot = dict(base, PC1_1=c, PC1_2=-s, PC2_1=s, PC2_2=c)
    w0, w1 = wcs(base), wcs(rot)
    ra, dec = np.array([263.60, 263.70, 263.66]), np.array([-32.50, -32.60, -32.556])
    x0, y0 = w0.wcs_world2pix(ra, dec, 0)
    x1, y1 = w1.wcs_world2pix(ra, dec, 0)
    assert np.abs(x1 - x0).max() > 100  # really rotated
    u0, v0 = spacecraft_offsets(x0, y0, base, w0)
    u1, v1 = spacecraft_offsets(x1, y1, rot, w1)
    np.testing.assert_allclose(u1, u0, atol=1e-3)
    np.testing.assert_allclose(v1, v0, atol=1e-3)


def test_unrotated_real_files_gain_no_pc_attrs(tmp_path):
    from xcube.io.ogip import write_image

    for parts in (MOS1, NUSTAR):
        ev = _open_quiet(real_file(*parts))
        assert not any(k.startswith("PC") for k in ev.attrs), parts
        assert "wcs_problem" not in ev.attrs
        img = xcube.image(ev, screening=False)
        assert not any(k.startswith("PC") for k in img.attrs)
        out = write_image(tmp_path / f"{parts[0]}.fits", img)
        assert not any(k.startswith("PC") for k in fits.getheader(out))


# ------------------------------------------------------------------ D4: TCDLTn = 0, singular matrix

def test_zero_tcdlt_is_named_and_timing_still_works(tmp_path):
    """TCDLTn = 0 gave WCSLIB's bare 'Linear transformation matrix is singular' when an image was made."""
    def edit(h):
        h["EVENTS"].columns["X"].coord_inc = 0.0

    path = _copy_with(tmp_path, MOS1, "cdelt0.fits", edit)
    ix, _ = _xy_index(fits.getheader(path, "EVENTS"))
    with pytest.warns(UserWarning, match=rf"{_name(path)}: sky WCS of the X/Y columns unusable: TCDLT{ix} "
                                         r"\(column X\) = 0"):
        ev = xcube.open_events(path)
    with pytest.raises(KeyError, match=rf"{_name(path)}: no sky WCS for x/y: .*TCDLT{ix} \(column X\) = 0"):
        xcube.wcs(ev)
    assert not xcube.skycoords.has_wcs(ev) and ev.attrs["exposure"] > 0
    lc = xcube.lightcurve(ev, 1000.0)
    assert int(lc["counts"].sum()) > 0
    with pytest.raises(ValueError, match=rf"no sky X/Y columns with a WCS \(TCDLT{ix} \(column X\) = 0"):
        xcube.search_transients(ev, time_bin=500.0)


def test_singular_pc_matrix_is_named(tmp_path):
    ix, iy = 2, 3
    hdr = dict(HDR, **{f"TP{ix}_{ix}": 1.0, f"TP{ix}_{iy}": 2.0, f"TP{iy}_{ix}": 0.5, f"TP{iy}_{iy}": 1.0})
    path = write_events_fits(tmp_path / "sing.fits", _cols(), header=hdr, gti=([1e8], [1e8 + 1e3]), wcs=WCS_XY)
    with pytest.warns(UserWarning, match=rf"{_name(path)}: sky WCS .* unusable: the rotation matrix \(TP2_2, "
                                         r"TP2_3, TP3_2, TP3_3\) is singular"):
        ev = xcube.open_events(path)
    assert not xcube.skycoords.has_wcs(ev)


# ------------------------------------------------------------------ D5: GTI table under another name

def test_ogip_gti_table_under_another_name_is_used(tmp_path):
    """NuSTAR's GTI renamed STDGTI (HDUCLAS1 = 'GTI'): TSTART-TSTOP was used instead (exposure x2)."""
    def edit(h):
        h["GTI"].name = "STDGTI"

    path = _copy_with(tmp_path, NUSTAR, "stdgti.evt", edit)
    with fits.open(path) as h:
        g = h["STDGTI"].data
        want = float(np.sum(g["STOP"] - g["START"]))
    with pytest.warns(UserWarning, match=rf"{_name(path)}: no GTI extension matching \['GTI'\].*using the GTI "
                                         r"table\(s\) \['STDGTI'\] \(HDUCLAS1 = 'GTI'"):
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


def test_gtis_in_another_time_system_warn(make_event_file, tmp_path):
    """Barycentred (TDB) events beside TT GTIs were opened without a word."""
    src = make_event_file(n=300)
    path = tmp_path / "tdb.fits"
    with fits.open(src) as h:
        for x in h[:2]:
            x.header["TIMESYS"], x.header["TIMEREF"] = "TDB", "SOLARSYSTEM"
        h["STDGTI01" if "STDGTI01" in h else 2].header["TIMESYS"] = "TT"
        h.writeto(path)
    with pytest.warns(UserWarning, match=r"TIMESYS = 'TT', but the events have TIMESYS = 'TDB'"):
        xcube.open_events(path, cache=tmp_path / "c")
