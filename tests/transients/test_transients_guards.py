"""The search refuses, with a clear message and before allocating, grids that
would not fit in memory, and survives broken TLMIN/TLMAX keywords."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xcube


@pytest.fixture(scope="module")
def mos():
    ev, _ = xcube.simulate.event_list("xmm-mos1", duration=3_000.0, sources=2, seed=4)
    return ev.load()


@pytest.mark.parametrize("kw, match", [
    (dict(time_bin=0.0), "time_bin > 0"), (dict(time_bin=np.nan), "time_bin > 0"), (dict(time_bin=-5.0), "time_bin"),
    (dict(size_arcsec=0.0), "size_arcsec > 0"), (dict(size_arcsec=np.nan), "size_arcsec"),
    (dict(sigma=0.0), "sigma > 0"), (dict(sigma=-1.0), "sigma > 0"), (dict(energy_band=(2.0, 1.0)), "emin < emax"),
])
def test_bad_parameters(mos, kw, match):
    with pytest.raises(ValueError, match=match):
        xcube.search_transients(mos, **kw)


def test_tiny_time_bin_refused_before_allocating(mos):
    with pytest.raises(ValueError, match="frames of 1e-06 s .* would need .*use a longer time_bin"):
        xcube.search_transients(mos, time_bin=1e-6)


def test_tiny_cells_refused_before_allocating(mos):
    # the cells are whole sky pixels of 0.05": the message gives that size and the size asked (sweep p25), and no
    # shape of an internal array
    with pytest.raises(ValueError, match="sky grid .* cells of 0.05\" \\(0.01\" asked, rounded to whole sky "
                                         "pixels\\) .* would need .*larger size_arcsec") as err:
        xcube.search_transients(mos, size_arcsec=0.01)
    assert "shape" not in str(err.value)


def test_broken_tlmin_tlmax_falls_back_to_the_events_extent(mos):
    ref = xcube.search_transients(mos, time_bin=300.0)
    for attrs in (dict(x_max=1e12, y_max=1e12), dict(x_min=60_000.0, x_max=10.0)):
        ev = mos.copy()
        ev.attrs = dict(mos.attrs, **attrs)
        res = xcube.search_transients(ev, time_bin=300.0)
        assert res.cube.sum() == ref.cube.sum() and len(res.detections) == len(ref.detections)


def test_stray_null_positions_give_a_clear_error(mos):
    x = mos["x"].values.copy()
    x[:100] = np.iinfo(np.int32).min  # X equal to a typical TNULL
    with pytest.raises(ValueError, match="TNULL"):
        xcube.search_transients(mos.assign(x=("event", x)), time_bin=300.0)


@pytest.mark.parametrize("change", [dict(mjdref=50815.0, mjdrefi=50815, mjdreff=0.0), dict(timesys="TDB")])
def test_cameras_with_different_time_references_are_refused(mos, change):
    """Two cameras whose seconds count from another MJDREF or TIMESYS were
    binned together on raw mission seconds (a day apart for MJDREF + 1)."""
    other = mos.copy().assign_attrs(source="other.fits", **change)
    with pytest.raises(ValueError, match=r"search_transients: the cameras' times count from different "
                                         r"references \(.*other\.fits: MJDREF"):
        xcube.search_transients([mos, other], time_bin=300.0)
    tree = xr.DataTree.from_dict({"a": mos, "b": other})
    with pytest.raises(ValueError, match="lightcurve: the cameras' times count from different references"):
        xcube.lightcurve(tree, 100.0)
    twin = mos.copy().assign_attrs(source="twin.fits", instrument="EMOS2")  # another camera, same reference: summed
    twin = twin.isel(event=slice(1, None))  # (not a copy of the events)
    assert int(xcube.lightcurve(xr.DataTree.from_dict({"a": mos, "b": twin}), 100.0)["counts"].sum()) > 0


@pytest.mark.parametrize("name, text", [("zero.csv", ""), ("comments.csv", "# no table here\n\n"),
                                        ("zero.fits", "")])
def test_empty_catalogue_file_is_named(mos, tmp_path, name, text):
    """A catalogue file without a table: a ValueError naming the file and the
    problem, not the parser's bare EmptyDataError (or FITS OSError)."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=f"{name}: the catalogue file is empty"):
        xcube.search_transients(mos, time_bin=100.0, catalogue=str(path))
    from xcube.io.catalogue import read_catalogue  # the one reader: --ra-col ..., survey crossmatch

    with pytest.raises(ValueError, match=f"{name}: the catalogue file is empty"):
        read_catalogue(path, ra_col="RA", dec_col="DEC")


@pytest.mark.parametrize("change, key", [
    (lambda a: dict(CRVAL1=a["CRVAL1"] + 0.1), "CRVAL1 of the x column"),  # 6' on the sky
    (lambda a: dict(CRPIX2=a["CRPIX2"] + 20.0), "CRPIX2 of the y column"),
    (lambda a: dict(CDELT1=a["CDELT1"] * 1.001), "CDELT1 of the x column"),
    (lambda a: dict(CTYPE2="GLAT-TAN"), "CTYPE2 of the y column"),
    (lambda a: {"PC1_1": 0.0, "PC1_2": -1.0, "PC2_1": 1.0, "PC2_2": 0.0}, "PC1_1 of the x/y column"),
])
def test_cameras_with_different_sky_wcs_are_refused(mos, change, key):
    """Cameras whose X/Y name other sky positions (another TCRVL, TCRPX, TCDLT,
    TCTYP or rotation) were binned on one grid as if their pixels agreed."""
    pn, _ = xcube.simulate.event_list("xmm-pn", duration=3_000.0, sources=2, seed=5)
    other = pn.copy().assign_attrs(source="other.fits", **change(pn.attrs))
    with pytest.raises(ValueError, match=rf"search_transients: the cameras' sky coordinates differ: {key} is "
                                         rf".* in simulated .* but .* in other\.fits"):
        xcube.search_transients([mos, other], time_bin=300.0)
    # rounding of the keywords (far below a pixel) is no difference
    same = pn.copy().assign_attrs(source="same.fits", CRVAL1=pn.attrs["CRVAL1"] + 1e-11,
                                  CRPIX1=pn.attrs["CRPIX1"] + 1e-6)
    res = xcube.search_transients([mos, same], time_bin=300.0)
    assert res.params["cameras"] == ["EMOS1", "EPN"]


def test_one_exposure_given_twice_is_refused(make_event_file):
    """The same exposure in two files (an .FTZ and its decompressed copy, a
    re-sorted copy) was searched twice: duplicate subsets, every detection twice."""
    a = xcube.open_events(make_event_file(n=3_000, seed=2, name="m1.fits", header={"EXPIDSTR": "S001"}))
    b = xcube.open_events(make_event_file(n=3_000, seed=2, name="m1_sorted_copy.fits", header={"EXPIDSTR": "S001"}))
    with pytest.raises(ValueError, match=r"search_transients: cameras 0 and 1 hold the same exposure \(EMOS1 exposure "
                                         r"S001, 10000\.0 s of good time in common\): .*m1\.fits and "
                                         r".*m1_sorted_copy\.fits"):
        xcube.search_transients([a, b], time_bin=500.0)
    # a filtered copy of the exposure (fewer events) is the same exposure too
    c = xcube.open_events(make_event_file(n=1_000, seed=5, name="m1_clean.fits", header={"EXPIDSTR": "S001"}))
    with pytest.raises(ValueError, match=r"m1\.fits and .*m1_clean\.fits"):
        xcube.search_transients([a, c], time_bin=500.0)
    # relabelled (other INSTRUME and EXPIDSTR) but the same GTIs and number of events
    d = xcube.open_events(make_event_file(n=3_000, seed=2, name="relabelled.fits",
                                          header={"INSTRUME": "EMOS2", "EXPIDSTR": "S002"}))
    with pytest.raises(ValueError, match=r"hold the same events \(identical GTIs and 3000 events each\)"):
        xcube.search_transients([a, d], time_bin=500.0)
    # the other MOS of the same time, and a later exposure of the same camera, are searched
    m2 = xcube.open_events(make_event_file(n=2_500, seed=3, name="m2.fits", header={"INSTRUME": "EMOS2",
                                                                                     "EXPIDSTR": "S002"}))
    later = xcube.open_events(make_event_file(n=3_000, seed=4, t0=1.0e8 + 20_000.0, name="m1_later.fits",
                                              header={"EXPIDSTR": "S001"}))
    res = xcube.search_transients([a, m2, later], time_bin=500.0, hygiene=False)
    assert [r.params["cameras"] for r in res] == [["EMOS1", "EMOS2"], ["EMOS1"]]


def test_real_ftz_and_its_decompressed_copy_are_refused(tmp_path):
    import gzip
    import shutil

    from conftest import real_file

    ftz = real_file("xmm", "P0001730201M1S002MIEVLI.FTZ")
    plain = tmp_path / "M1.FIT"
    with gzip.open(ftz, "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    with pytest.raises(ValueError, match=r"hold the same exposure \(EMOS1 exposure S001, .*P0001730201M1S002MIEVLI"
                                         r"\.FTZ and .*M1\.FIT"):
        xcube.search_transients([xcube.open_events(ftz), xcube.open_events(plain)], time_bin=50.0)
