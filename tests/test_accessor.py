"""The .xcube accessor forwards to the xcube functions."""
import sys

import numpy as np
import xarray as xr
from test_select import ATTRS, make_events, values

import xcube


def test_accessor_registers_on_import_xcube():
    from xcube.accessor import XcubeDataArrayAccessor, XcubeDatasetAccessor

    assert "xcube.accessor" in sys.modules  # imported by xcube/__init__.py
    assert isinstance(xr.Dataset().xcube, XcubeDatasetAccessor)
    assert isinstance(xr.DataArray(0).xcube, XcubeDataArrayAccessor)


def test_dataset_accessor_select_equals_function():
    ev = make_events(300)
    kw = dict(energy_band=(0.5, 8.0), expr="PATTERN <= 12 && FLAG == 0", region="circle(26000,26000,800)",
              gti=(1100.0, 1900.0))
    a = ev.xcube.select(**kw)
    b = xcube.select(ev, **kw)
    xr.testing.assert_identical(a.compute(), b.compute())
    assert a.attrs["selection"] == b.attrs["selection"]
    np.testing.assert_array_equal(ev.xcube.region_mask("circle(26000,26000,800)").values,
                                  xcube.region_mask(ev, "circle(26000,26000,800)").values)
    assert ev.xcube.region_area('fk5;circle(263.657916666667,-32.556,20")') == xcube.region_area(
        'fk5;circle(263.657916666667,-32.556,20")', ev)


def test_dataarray_accessor_masks_an_image_grid():
    xs = np.arange(25500.5, 26500, 10.0)
    img = xr.DataArray(np.ones((xs.size, xs.size)), dims=("y", "x"), coords={"x": xs, "y": xs}, attrs=dict(ATTRS))
    m = img.xcube.region_mask("circle(26000,26000,200)")
    assert m.dims == ("y", "x")
    # pixels of 10 x 10 column units: the count of centres approximates the circle's area
    assert abs(int(m.sum()) * 100 - img.xcube.region_area("circle(26000,26000,200)")) < 0.02 * np.pi * 200**2
    assert values(make_events(5)).size == 5


def test_event_lists_get_the_product_methods(make_event_file):
    ev = xcube.open_events(make_event_file(n=2000))
    assert ev.xcube.kind == "events"
    assert {"lightcurve", "image", "spectrum", "to_stingray", "plot", "times", "select", "bin"} <= set(dir(ev.xcube))
    lc = ev.xcube.lightcurve(1000.0, energy_band=(0.5, 2.0))
    xr.testing.assert_identical(lc.compute(), xcube.lightcurve(ev, 1000.0, energy_band=(0.5, 2.0)).compute())
    img = ev.xcube.image(bin_size=400)
    xr.testing.assert_identical(img.compute(), xcube.image(ev, 400).compute())
    spec = ev.xcube.spectrum()
    xr.testing.assert_identical(spec.compute(), xcube.spectrum(ev).compute())
    assert len(ev.xcube.to_stingray().time) == 2000
    fig = ev.xcube.plot()  # a quick look: the image on RA/Dec axes
    assert fig.axes[0].get_xlabel().startswith("RA")
    assert len(ev.xcube.plot(kind="lightcurve", time_bin=500.0).axes[0].lines) >= 1
    np.testing.assert_array_equal(ev.xcube.times(), xcube.times(ev["time"], ev).values)


def test_products_get_the_methods_that_fit_them(make_event_file, tmp_path):
    ev = xcube.open_events(make_event_file(n=2000))
    lc = ev.xcube.lightcurve(500.0)
    assert lc.xcube.kind == "lightcurve"
    assert {"rebin", "power_spectrum", "to_stingray", "times", "with_mjd", "write", "plot"} <= set(dir(lc.xcube))
    assert not {"select", "bin", "lightcurve", "image", "spectrum"} & set(dir(lc.xcube))
    for method in ("select", "bin", "image"):
        try:
            getattr(lc.xcube, method)()
        except TypeError as exc:
            assert "does not apply to this lightcurve" in str(exc) and "rebin" in str(exc)
        else:
            raise AssertionError(f"lc.xcube.{method} should refuse a light curve")
    assert lc.xcube.rebin(2).sizes["time"] == lc.sizes["time"] // 2
    assert "utc" in lc.xcube.with_mjd().coords
    # a column of the light curve converts its times too (its time coordinate carries MJDREF and TIMESYS)
    np.testing.assert_array_equal(lc["rate"].xcube.times().values, lc.xcube.times().values)
    np.testing.assert_array_equal(lc["counts"].xcube.with_mjd()["mjd"].values, lc.xcube.with_mjd()["mjd"].values)
    assert lc.xcube.write(tmp_path / "a.lc").exists()
    back = xcube.read_lightcurve(tmp_path / "a.lc")  # read back, its columns too
    np.testing.assert_allclose(back["rate"].xcube.times().values, lc.xcube.times().values, rtol=0, atol=1e-9)
    assert lc.xcube.plot().axes[0].get_ylabel() == "count rate [count/s]"
    spec = ev.xcube.spectrum()
    assert spec.xcube.kind == "spectrum" and set(dir(spec.xcube)) == {"group", "kind", "plot", "write"}
    assert spec.xcube.write(tmp_path / "a.pha").exists()
    assert spec.xcube.plot().axes[0].get_yscale() == "log"
    img = ev.xcube.image(bin_size=400)
    assert img.xcube.kind == "image" and set(dir(img.xcube)) == {"kind", "plot", "region_area", "region_mask",
                                                                 "write"}
    assert img.xcube.write(tmp_path / "a.fits").exists()
    from xcube.binning import sky_axis

    cube = ev.xcube.bin(time=2000.0, y=sky_axis(ev, "y", 400, range=(20000, 32000)),
                        x=sky_axis(ev, "x", 400, range=(20000, 32000)))
    assert cube.xcube.kind == "cube" and cube.xcube.times().sizes == cube["time"].sizes
    try:
        cube.xcube.write(tmp_path / "c.fits")
    except TypeError as exc:
        assert "cube" in str(exc)
    else:
        raise AssertionError("a cube is not written as an image")


def test_module_docstring_lists_exactly_the_methods_of_each_kind(make_event_file, tmp_path):
    import re

    import xcube.accessor as acc
    from xcube.io.powspec import read_power_spectrum

    for kind, methods in acc._METHODS.items():
        m = re.search(rf"^- [^\n]*\(``{kind}``[^)]*\): (.*?)(?=^- |^$)", acc.__doc__, re.M | re.S)
        assert m, f"the module docstring has no bullet for {kind!r}"
        assert set(re.findall(r"``(\w+)``", m.group(1))) == set(methods), kind
    for kind in ("image", "cube"):  # the DataArray table agrees for the kinds the docstring lists once
        assert acc.XcubeDataArrayAccessor._table[kind] == acc._METHODS[kind]
    # the power-spectrum methods the docstring now lists work
    ps = xcube.open_events(make_event_file(n=2000)).xcube.lightcurve(10.0).xcube.power_spectrum(segment=200.0)
    assert ps.xcube.kind == "power_spectrum" and set(dir(ps.xcube)) == {"kind", "to_stingray", "write", "plot"}
    assert read_power_spectrum(ps.xcube.write(tmp_path / "a.pds")).sizes["freq"] == ps.sizes["freq"]
