"""The WCS of an image (or cube) that is not a plain contiguous cut-out: a
stepped ``isel`` (``x[::2]``), a flipped axis (``x[::-1]``), ``coarsen``
(xarray's rebin: the centres become the means of the cells'), an evenly spaced
list index, one cell. ``cube_wcs``, ``write_image`` and sky regions place each
pixel on the sky position of its own ``x``/``y`` centre; a grid whose centres
are not evenly spaced has no WCS and is refused. They used to keep CDELT and
the direction of the binned grid: a star at x-pixel 12.2 of ``x[::2]`` was
written at 24.3, after ``coarsen(2)`` at 423.8 instead of 211.9, after a flip
at -438.7 instead of 438.7; the physical keywords (LTM/LTV, WCS P) had the same
fault."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from conftest import real_file, sky_events

import xcube
from xcube.binning import bin_events, cube_wcs
from xcube.regions import events_wcs, pixel_region, region_mask

T0 = 1.0e8

OPS = {
    "slice": lambda g: g.isel(x=slice(10, 40), y=slice(5, 30)),
    "step 2": lambda g: g.isel(x=slice(10, 40, 2), y=slice(5, 30)),
    "steps 3, 2": lambda g: g.isel(x=slice(1, None, 3), y=slice(4, 31, 2)),
    "flip x": lambda g: g.isel(x=slice(None, None, -1)),
    "flip y, step -2": lambda g: g.isel(y=slice(30, 2, -2)),
    "coarsen 2x2": lambda g: g.coarsen(x=2, y=2, boundary="trim").sum(),
    "coarsen x 3": lambda g: g.coarsen(x=3, boundary="trim").sum(),
    "even list": lambda g: g.isel(x=[4, 14, 24, 34], y=slice(5, 30)),
    "one column": lambda g: g.isel(x=[7]),
}
UNEVEN = {
    "uneven list": lambda g: g.isel(x=[4, 5, 9, 20]),
    "repeated cell": lambda g: g.isel(y=[3, 3, 3]),
}


def _events(rotated=False, n=20_000):
    return sky_events(n, 5, 24000, 28000, 5000, rotated, RADESYS="FK5", EQUINOX=2000.0)


def _truth(grid, ev):
    """RA, Dec [deg] of every cell at its own x/y centre (column values), by the events' column WCS."""
    gx, gy = np.meshgrid(grid.x.values, grid.y.values)
    return events_wcs(ev).wcs_pix2world(gx, gy, 0)


def _placed(wcs, grid):
    """RA, Dec [deg] that ``wcs`` gives every pixel of ``grid`` (0-based pixel i = the i-th cell)."""
    jx, jy = np.meshgrid(np.arange(grid.sizes["x"], dtype=float), np.arange(grid.sizes["y"], dtype=float))
    return wcs.wcs_pix2world(jx, jy, 0)


def _assert_same_sky(got, want):
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-9)  # deg: 3.6 micro-arcsec


@pytest.mark.parametrize("rotated", [False, True])
@pytest.mark.parametrize("op", list(OPS))
def test_cube_wcs_places_every_cell_on_its_centre(op, rotated):
    ev = _events(rotated)
    cube = bin_events(ev, y={"width": 40.0, "range": (24000, 27999)}, x={"width": 40.0, "range": (24000, 27999)})
    g = OPS[op](cube.compute())
    _assert_same_sky(_placed(cube_wcs(g), g), _truth(g, ev))


@pytest.mark.parametrize("op", list(OPS))
def test_write_image_writes_the_wcs_of_the_pixels_present(op, tmp_path):
    ev = _events()
    g = OPS[op](xcube.image(ev, 40.0, x_range=(24000, 27999), y_range=(24000, 27999), screening=False).compute())
    out = xcube.write_image(tmp_path / "im.fits", g)
    h = fits.getheader(out)
    _assert_same_sky(_placed(WCS(h), g), _truth(g, ev))
    # the physical (sky X/Y) keywords too: LTM/LTV and the alternate WCS P map each pixel to its own centre
    jx, jy = np.arange(g.sizes["x"]) + 1.0, np.arange(g.sizes["y"]) + 1.0  # 1-based image pixels
    np.testing.assert_allclose((jx - h["LTV1"]) / h["LTM1_1"], g.x.values, rtol=0, atol=1e-6)
    np.testing.assert_allclose((jy - h["LTV2"]) / h["LTM2_2"], g.y.values, rtol=0, atol=1e-6)
    phys = WCS(h, key="P")
    np.testing.assert_allclose(phys.wcs_pix2world(jx - 1, 0 * jx, 0)[0], g.x.values, rtol=0, atol=1e-6)
    np.testing.assert_allclose(phys.wcs_pix2world(0 * jy, jy - 1, 0)[1], g.y.values, rtol=0, atol=1e-6)


@pytest.mark.parametrize("op", list(UNEVEN))
def test_a_grid_without_even_spacing_has_no_wcs(op, tmp_path):
    ev = _events()
    g = UNEVEN[op](xcube.image(ev, 40.0, x_range=(24000, 27999), y_range=(24000, 27999), screening=False).compute())
    with pytest.raises(ValueError, match=r"not evenly spaced.*needs regular y and x axes"):
        cube_wcs(g)
    with pytest.raises(ValueError, match=r"not evenly spaced"):
        xcube.write_image(tmp_path / "im.fits", g)
    assert not (tmp_path / "im.fits").exists()


@pytest.mark.parametrize("op", ["step 2", "flip x", "coarsen 2x2", "even list", "uneven list"])
def test_sky_regions_on_a_stepped_grid_select_the_cells_of_their_centres(op):
    """Sky regions place a grid's cells by their x/y centres (the column WCS needs no even spacing):
    unchanged by the WCS fix, which must not make them follow the pixel spacing."""
    ev = _events()
    img = xcube.image(ev, 40.0, x_range=(24000, 27999), y_range=(24000, 27999), screening=False).compute()
    g = {**OPS, **UNEVEN}[op](img)
    ra, dec = _truth(g, ev)
    j, i = g.sizes["y"] // 2, g.sizes["x"] // 2
    sky = f'fk5;circle({float(ra[j, i])!r},{float(dec[j, i])!r},10")'
    want = region_mask(g, pixel_region(sky, ev))  # placed with the events' WCS on the cells' x/y
    assert int(want.sum()) > 0
    np.testing.assert_array_equal(region_mask(g, sky).values, want.values)


def test_real_mos1_star_after_each_operation(tmp_path):
    """The report's check: HD 159176 at sky X, Y = 24745, 24060 in the real MOS1 image."""
    from astropy.coordinates import SkyCoord

    ev = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"))
    ra, dec = events_wcs(ev).wcs_pix2world([[24745.0, 24060.0]], 0)[0]
    star = SkyCoord(ra, dec, unit="deg", frame="fk5")
    img = xcube.image(ev, bin_size=40).compute()
    for label, im in [("step 2", img.isel(x=slice(400, 500, 2), y=slice(380, 470))),
                      ("flip x", img.isel(x=slice(None, None, -1))),
                      ("coarsen 2x2", img.coarsen(x=2, y=2, boundary="trim").sum()),
                      ("even list", img.isel(x=[400, 410, 420, 430, 440], y=slice(380, 470)))]:
        out = xcube.write_image(tmp_path / "cut.fits", im, overwrite=True)
        px, py = WCS(fits.getheader(out)).world_to_pixel(star)
        xs, ys = im.x.values, im.y.values
        want_x = (24745.0 - xs[0]) / (xs[1] - xs[0])
        want_y = (24060.0 - ys[0]) / (ys[1] - ys[0])
        assert abs(float(px) - want_x) < 1e-6 and abs(float(py) - want_y) < 1e-6, (label, px, want_x, py, want_y)
