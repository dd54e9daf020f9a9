"""Integer sky columns (XMM, NuSTAR, Swift-XRT): the value v is the centre of
its sky pixel, so grids put their edges on half-integers. An image pixel, a
cube cell's WCS and a search detection then sit on the events they hold
(they were half a sky pixel off: 1.2" for NuSTAR), and a size in arcsec is
rounded to whole pixels (no striped images)."""
from __future__ import annotations

import numpy as np
import pytest

import xcube
from xcube.binning import cube_wcs, sky_axis

T0 = 1.0e8


def _events(make_event_file, x, y, **header):
    n = len(x)
    path = make_event_file(n=n, columns={"X": np.asarray(x, np.int32), "Y": np.asarray(y, np.int32)},
                           header=header)
    return xcube.open_events(path)


@pytest.mark.parametrize("bin_size", [1, 4, 400])
def test_image_pixel_sits_on_the_events_it_holds(make_event_file, bin_size):
    ev = _events(make_event_file, [26003] * 5 + [25000, 27001], [25490] * 5 + [24000, 26002])
    img = xcube.image(ev, bin_size=bin_size, screening=False).compute()
    iy, ix = np.unravel_index(int(np.argmax(img.values)), img.shape)
    assert img.values[iy, ix] >= 5
    # the cell of the five events at X=26003, Y=25490: its centre on the sky ...
    cell = cube_wcs(img).pixel_to_world(ix, iy)
    # ... is the centre of the pixels it holds, as the events' own WCS has them (integers lo..lo+w-1)
    x_lo, y_lo = float(img.x_lo.values[ix]), float(img.y_lo.values[iy])
    assert x_lo % 1 == 0.5 and y_lo % 1 == 0.5
    centre = xcube.wcs(ev).pixel_to_world(x_lo + bin_size / 2, y_lo + bin_size / 2)
    assert cell.separation(centre).arcsec < 1e-6
    if bin_size == 1:
        assert cell.separation(xcube.wcs(ev).pixel_to_world(26003, 25490)).arcsec < 1e-6


def test_counts_do_not_change_for_whole_pixel_cells(make_event_file):
    """Moving the edges by half a pixel keeps every integer value in its cell."""
    rng = np.random.default_rng(0)
    x, y = rng.integers(20000, 32000, 5000), rng.integers(20000, 32000, 5000)
    ev = _events(make_event_file, x, y)
    rng_ = {"width": 400.0, "range": (20000, 31999)}
    cube = xcube.bin_events(ev, y=rng_, x=rng_).compute()
    edges = np.arange(20000.0, 32001.0, 400.0)  # integer edges: [20000, 20400) holds 20000..20399, as before
    ref, _, _ = np.histogram2d(y, x, bins=[edges, edges])
    np.testing.assert_array_equal(cube.values, ref)
    assert cube.x_lo.values[0] == 19999.5 and cube.sizes["x"] == 30


def test_size_arcsec_rounds_to_whole_pixels(make_event_file):
    ev = _events(make_event_file, [26003, 26010], [25490, 25500])
    px = 0.05  # XMM sky pixel [arcsec]
    with pytest.warns(UserWarning, match="unequal numbers"):
        ax = sky_axis(ev, "x", size_arcsec=4.03, range=(20000, 32000))
    assert ax.width == round(4.03 / px) and ax.meta["size_arcsec"] == pytest.approx(81 * px)
    with pytest.warns(UserWarning, match="whole number"):
        sky_axis(ev, "x", 1.5, range=(20000, 32000))
    float_x = ev.assign(x=ev.x.astype(np.float64))  # a float column (Chandra): no shift, no rounding
    ax = sky_axis(float_x, "x", size_arcsec=4.03, range=(20000, 32000))
    assert ax.width == pytest.approx(4.03 / px) and ax.edges[0] == 20000.0


def test_output_chunks_hold_a_bounded_number_of_events(monkeypatch):
    """A long observation gets more time chunks, so the input blocks one
    chunk holds stay bounded (the cube alone would fit one chunk)."""
    from xcube.binning import engine
    from xcube.binning.axes import Axis

    ax = Axis.regular("time", 0.0, 50.0, 2000)
    assert engine._time_chunk(ax, 4 * 130 * 130, 10_000_000, 256 << 20) == 2000  # 1e7 events: one chunk
    assert engine._time_chunk(ax, 4 * 130 * 130, 50_000_000, 256 << 20) == 667  # 5e7: 3 chunks
    assert engine._time_chunk(ax, 4 * 1000 * 1000, 100, 256 << 20) == 67  # the memory bound still holds


def test_search_cells_are_whole_pixels_on_half_integer_edges(make_event_file):
    from xcube.transients.grid import sky_axes

    ev = _events(make_event_file, [26003, 26010], [25490, 25500])
    y, x = sky_axes([ev], 20.02, extent=(26003, 26010, 25490, 25500))  # the grid over the events' extent
    for ax in (y, x):
        w = np.diff(ax.edges)
        assert np.all(w == 400.0)  # 20.02" = 400.4 pixels of 0.05": 400 whole pixels
        assert np.all(ax.edges % 1 == 0.5)
