"""Sky regions on grids whose attrs hold the WCS of their cells (images,
``bin_events`` cubes): the cells a region covers are those whose centres
(column values) lie in it, as with the events' own WCS."""
from __future__ import annotations

import numpy as np
import xarray as xr
from conftest import XMM_WCS

import xcube
from xcube.binning import sky_axis
from xcube.regions import pixel_region, region_mask

SKY = 'fk5;circle(263.6500,-32.5600,40")'


def _same_cells(grid, ev):
    ref = region_mask(grid, pixel_region(SKY, ev))  # placed with the events' WCS
    got = region_mask(grid, SKY)  # placed with the grid's own (cell) WCS
    assert int(ref.sum()) > 0
    np.testing.assert_array_equal(got.values, ref.values)


def test_sky_region_on_an_image_and_its_cutout(make_event_file):
    ev = xcube.open_events(make_event_file(n=20_000))
    img = xcube.image(ev, size_arcsec=4.0)
    _same_cells(img, ev)
    iy, ix = np.nonzero(region_mask(img, pixel_region(SKY, ev)).values)
    cut = img.isel(y=slice(iy.min() - 3, iy.max() + 5), x=slice(ix.min() - 6, ix.max() + 2))
    _same_cells(cut, ev)  # its ra/dec place it in the binned grid
    assert xcube.region_area(SKY, img) == xcube.region_area(SKY, ev)


def test_sky_region_on_a_bin_events_cube(make_event_file):
    ev = xcube.open_events(make_event_file(n=20_000))
    x, y = (sky_axis(ev, d, size_arcsec=20.0, range=(20000, 32000)) for d in ("x", "y"))
    cube = xcube.bin_events(ev, time=1000.0, x=x, y=y)
    assert "WCSAXES" in cube.attrs
    _same_cells(cube, ev)


def test_a_grid_with_the_events_column_wcs_keeps_it():
    """A hand-made grid carrying the events' own WCS (no WCSAXES): taken as the column WCS."""
    attrs = {}
    for i, ax in ((1, "X"), (2, "Y")):
        attrs.update({f"CTYPE{i}": XMM_WCS[ax]["ctype"], f"CRVAL{i}": XMM_WCS[ax]["crval"],
                      f"CRPIX{i}": float(XMM_WCS[ax]["crpix"]), f"CDELT{i}": XMM_WCS[ax]["cdelt"]})
    xs = np.arange(24000.5, 28000, 100.0)
    grid = xr.DataArray(np.zeros((xs.size, xs.size)), dims=("y", "x"), coords={"x": xs, "y": xs}, attrs=attrs)
    np.testing.assert_array_equal(region_mask(grid, SKY).values,
                                  region_mask(grid, pixel_region(SKY, xr.Dataset(attrs=attrs))).values)
    assert int(region_mask(grid, SKY).sum()) > 0
