"""Review p22 of binning: shifted grids on integer sky columns keep their
edges on half-integers (cell centres on the pixels they hold, in bin_events
and in the transient search's shifted grids), ``nbins`` on an integer sky
column warns as a fractional ``width`` does, and clear errors for no axis, a
NaN time, a text width and a text offset."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import xcube
from xcube.binning import sky_axis
from xcube.binning.axes import Axis

T0 = 1.0e8


def _events(time=None, n=400, seed=1, **attrs):
    """A small XMM-MOS1-like EventList: int32 x/y in 1..100, sorted times."""
    rng = np.random.default_rng(seed)
    t = np.sort(T0 + rng.uniform(0, 1000, n)) if time is None else np.asarray(time, np.float64)
    n = t.size
    a = {"mission": "XMM-Newton", "instrument": "EMOS1", "profile": "xmm-mos1", "source": "handmade",
         "x_min": 1.0, "x_max": 100.0, "y_min": 1.0, "y_max": 100.0, "CTYPE1": "RA---TAN", "CRVAL1": 10.0,
         "CRPIX1": 50.0, "CDELT1": -1.38888888888889e-05, "CUNIT1": "deg", "CTYPE2": "DEC--TAN", "CRVAL2": 20.0,
         "CRPIX2": 50.0, "CDELT2": 1.38888888888889e-05, "CUNIT2": "deg", "selection": [], **attrs}
    return xr.Dataset({"time": ("event", t), "x": ("event", rng.integers(1, 101, n).astype(np.int32)),
                       "y": ("event", rng.integers(1, 101, n).astype(np.int32)),
                       "pi": ("event", rng.integers(200, 12000, n).astype(np.int16)),
                       "gti_start": ("gti", [T0]), "gti_stop": ("gti", [T0 + 1000.0])}, attrs=a)


def _half_integers(edges) -> bool:
    """Edges on half-integers (to a few ulps: the division rule's steps)."""
    return bool(np.all(np.abs(np.asarray(edges) % 1 - 0.5) < 1e-9))


def _held_centroid(edges, values):
    """Mean of the integer pixel values each cell [lo, hi) holds (NaN when none)."""
    k = np.searchsorted(edges, values, side="right") - 1
    return np.array([values[k == j].mean() if np.any(k == j) else np.nan for j in range(edges.size - 1)])


# ---------------------------------------------------------------------- 1. shifted grids, odd widths
@pytest.mark.parametrize("width", [1, 3, 5, 7])
def test_shifted_odd_width_grid_keeps_half_integer_edges(width):
    ev = _events()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        cube = xcube.bin_events(ev, x=width, y=width, offset=0.5)
    edges = np.r_[cube.x_lo.values, cube.x_hi.values[-1]]
    assert _half_integers(edges)
    # every cell's centre is the centre of the pixels it holds
    held = _held_centroid(edges, np.arange(1, 101, dtype=float))
    ok = ~np.isnan(held)
    full = ok & (cube.x_lo.values >= 0.5) & (cube.x_hi.values <= 100.5)
    np.testing.assert_allclose(cube.x.values[full], held[full], rtol=0, atol=1e-9)
    # the grid is shifted by a whole number of pixels, and says so
    ax = sky_axis(ev, "x", width, offset=0.5) if width > 1 else None
    if width > 1:
        assert ax.offset * width == round(ax.offset * width) and ax.offset != 0
    assert any("offset" in str(m.message) and "whole" in str(m.message) for m in w)
    # the counts are those of the half-open rule on the cube's own edges
    ye = np.r_[cube.y_lo.values, cube.y_hi.values[-1]]
    ref, _, _ = np.histogram2d(ev.y.values, ev.x.values, bins=(ye, edges))
    assert np.array_equal(cube.values, ref.astype(cube.dtype))


def test_shifted_even_width_grid_unchanged_and_silent():
    ev = _events()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = sky_axis(ev, "x", 4, offset=0.5)
    assert ax.offset == 0.5 and _half_integers(ax.edges)
    assert ax.edges[0] == 0.5 - 2.0


def test_shifted_axis_of_the_search_keeps_whole_pixels():
    """The transient search's half-cell shifted grid (grid 'xy') on integer
    sky columns with cells of an odd number of pixels: edges on half-integers,
    centres on the pixels held."""
    from xcube.transients.grid import shifted_axis, sky_axes

    ev = _events()
    px = abs(ev.attrs["CDELT1"]) * 3600
    y, x = sky_axes([ev], 7 * px)
    assert _half_integers(x.edges)
    for ax in (shifted_axis(x), shifted_axis(y)):
        assert _half_integers(ax.edges)
        assert set(np.round(np.diff(ax.edges), 9)) == {7.0}
        assert ax.edges[0] < x.edges[0] and ax.edges[-1] > x.edges[-1]  # covers the same range
        held = _held_centroid(ax.edges, np.arange(1, 101, dtype=float))
        ok = ~np.isnan(held) & (ax.lo >= 0.5) & (ax.hi <= 100.5)
        np.testing.assert_allclose(ax.centres[ok], held[ok], rtol=0, atol=1e-9)
    # float (explicit, non-pixel) edges keep the exact half-cell shift
    f = Axis.from_edges("x", np.arange(0.0, 71.0, 7.0), units="pixel")
    assert np.array_equal(shifted_axis(f).edges[:2], [-3.5, 3.5])


def test_search_shifted_grid_detections_sit_on_the_pixels_binned():
    """search_transients(shifts=True) with cells of 401 pixels (odd): the
    detections of every grid sit on the centres of the pixels their cells
    hold (integers for an odd cell), not half a sky pixel off."""
    from xcube import simulate

    ev, _ = simulate.event_list("xmm-pn", duration=8_000.0, sources=0, soft_protons=0, seed=21)
    t0 = float(ev.gti_start.values[0])
    x, y = 28_001.0, 24_001.0
    ev, truth = simulate.inject_flare(ev, t_peak=t0 + 3_000.0, amplitude=0.5, width=8.0, x=x, y=y, seed=5)
    px = xcube.binning.pixel_arcsec(ev, "x")
    res = xcube.search_transients(ev, time_bin=50.0, shifts=True, size_arcsec=401 * px)
    det = pd_concat((name, g.detections) for name, g in res.grids.items())
    shifted = det[det["grid"].isin(["xy", "xyt"])] if "grid" in det else det
    assert len(det) and len(shifted)
    for col in ("x", "y"):
        v = det[col].to_numpy(float)
        np.testing.assert_allclose(v, np.round(v), rtol=0, atol=1e-6, err_msg=col)


def pd_concat(tables):
    import pandas as pd

    parts = [t.assign(grid=name) for name, t in tables]
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------------- 4. nbins on integer sky columns
def test_nbins_on_integer_sky_column_warns_like_width():
    ev = _events()
    with pytest.warns(UserWarning, match=r"sky axis 'x'.*unequal numbers of pixels"):
        sky_axis(ev, "x", nbins=70)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sky_axis(ev, "x", nbins=20).width == 5.0  # whole pixels: silent
    with pytest.warns(UserWarning, match=r"sky axis 'x'.*unequal numbers of pixels"):
        xcube.bin_events(ev, x={"nbins": 70}, y=10)


# ---------------------------------------------------------------------- 5. errors
def test_no_axis_is_a_clear_error():
    ev = _events()
    with pytest.raises(ValueError, match=r"at least one axis.*time.*energy.*size_arcsec"):
        xcube.bin_events(ev)


def test_nan_time_is_reported_as_nan():
    ev = _events(time=np.r_[np.linspace(T0 + 1, T0 + 900, 20), np.nan])
    with pytest.raises(ValueError, match=r"NaN.*time"):
        xcube.bin_events(ev, time=50.0)
    ev = _events(time=np.r_[np.linspace(T0 + 1, T0 + 400, 20), np.nan, np.linspace(T0 + 500, T0 + 900, 20)])
    with pytest.raises(ValueError, match=r"NaN.*time"):
        xcube.bin_events(ev.chunk({"event": 8}), time=50.0)


@pytest.mark.parametrize("role", ["time", "energy", "x"])
def test_text_width_names_the_axis(role):
    ev = _events()
    with pytest.raises(ValueError, match=rf"{role}='abc'.*bin width"):
        xcube.bin_events(ev, **{role: "abc"})


@pytest.mark.parametrize("offset", ["half", {"time": "half"}, [0.5]])
def test_text_offset_names_the_offset(offset):
    ev = _events()
    with pytest.raises(ValueError, match=r"offset.*must be a number.*'time'"):
        xcube.bin_events(ev, time=10.0, offset=offset)


def test_t0_with_explicit_time_edges_in_a_dict_is_refused():
    ev = _events()
    with pytest.raises(ValueError, match="t0 applies to a time axis built from a width"):
        xcube.bin_events(ev, time={"edges": [T0, T0 + 500, T0 + 1000]}, t0=T0 + 10)
