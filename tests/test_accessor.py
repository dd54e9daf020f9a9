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
