"""One observation's cameras as a list or a DataTree: the same file twice,
the labels of summed products, and functions that take one EventList."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from conftest import real_file

import xcube

M1 = ("xmm", "P0001730201M1S002MIEVLI.FTZ")
M2 = ("xmm", "P0001730201M2S003MIEVLI.FTZ")


def test_a_file_listed_twice_is_opened_once():
    """open_events([m1, m1]) made two nodes (EMOS1, EMOS1_S001) and a summed light curve with twice the counts."""
    with pytest.warns(UserWarning, match="listed twice"):
        tree = xcube.open_events([real_file(*M1), real_file(*M1)])
    assert [n.path for n in tree.subtree if "event" in n.dims] == ["/0001730201/EMOS1"]
    ev = xcube.open_events(real_file(*M1))
    with pytest.raises(ValueError, match=r"search_transients: cameras 0 and 1 are the same events"):
        xcube.search_transients([ev, ev], time_bin=500.0)


def test_summed_products_name_every_camera(tmp_path):
    tree = xcube.open_events([real_file(*M1), real_file(*M2)])
    lc = xcube.lightcurve(tree, 1000.0).compute()
    assert lc.attrs["instrument"] == lc.attrs["instrume"] == "EMOS1+EMOS2"
    assert real_file(*M1).name in lc.attrs["source"] and real_file(*M2).name in lc.attrs["source"]
    path = xcube.write_lightcurve(tmp_path / "sum.lc", lc)
    assert fits.getheader(path, 1)["INSTRUME"] == "EMOS1+EMOS2"
    res = xcube.search_transients(tree, time_bin=500.0)  # a DataTree of one observation is its cameras
    same = xcube.search_transients(list(xcube.io.events.event_nodes(tree).values()), time_bin=500.0)
    assert res.cube.attrs["instrument"] == "EMOS1+EMOS2"
    np.testing.assert_array_equal(res.cube.sum().values, same.cube.sum().values)


def test_functions_of_one_event_list_refuse_a_tree_by_name():
    tree = xcube.open_events([real_file(*M1), real_file(*M2)])
    for func, name in ((xcube.spectrum, "spectrum"), (xcube.image, "image")):
        with pytest.raises(TypeError, match=rf"{name} takes one EventList, not a DataTree; pick a camera, e\.g\. "
                                            r"tree\['/0001730201/EMOS1'\]"):
            func(tree)
    with pytest.raises(TypeError, match="rebin takes one light curve"):
        xcube.products.rebin(xr.DataTree.from_dict({"a": xcube.lightcurve(tree, 100.0)}), 2)
    ev = xcube.open_events(real_file(*M1))
    archive = xr.DataTree.from_dict({"/A/EMOS1": ev, "/B/EMOS1": ev.assign_attrs(obs_id="B", source="b")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="event lists from different observations"):
            xcube.search_transients(archive, time_bin=500.0)
    with pytest.raises(TypeError, match="search_transients: needs EventLists"):
        xcube.search_transients(["a.fits"], time_bin=500.0)


def test_summed_light_curve_of_pn_and_mos_records_each_screening(tmp_path):
    """Sweep p27: the summed light curve's attrs['expr'] named the pn screening only, and its selection
    listed the common-GTI entry twice."""
    from xcube import simulate

    pn = simulate.event_list("xmm-pn", duration=3000.0, seed=5, path=tmp_path / "pn.fits")[0]
    m1 = simulate.event_list("xmm-mos1", duration=3000.0, seed=5, path=tmp_path / "m1.fits")[0]
    assert pn.attrs["obs_id"] == m1.attrs["obs_id"]
    lc = xcube.lightcurve(xcube.open_events([tmp_path / "pn.fits", tmp_path / "m1.fits"]), 500.0)
    assert "EPN: PATTERN <= 4" in lc.attrs["expr"] and "EMOS1: PATTERN <= 12" in lc.attrs["expr"]
    sel = lc.attrs["selection"]
    assert len(sel) == len(set(sel))
