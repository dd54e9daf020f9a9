"""Axes and bin_events: exact counts against a plain numpy reference, edges,
offsets, exposure, dtypes, bad input and laziness of the graph."""
from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from conftest import XMM_WCS, real_file

import xcube
from xcube import gti as gtimod
from xcube.binning import Axis, bin_events, check_size, cube_wcs, energy_axis, sky_axis, time_axis
from xcube.io.events_fits import events_dataset

T0 = 1.0e8


def _attrs(x_range=(1, 51840)):
    a = {"mission": "XMM-Newton", "instrument": "EMOS1", "profile": "xmm-mos1", "source": "generated",
         "selection": ["generated"], "x_min": float(x_range[0]), "x_max": float(x_range[1]),
         "y_min": float(x_range[0]), "y_max": float(x_range[1])}
    for i, k in ((1, "X"), (2, "Y")):
        w = XMM_WCS[k]
        a.update({f"CTYPE{i}": w["ctype"], f"CRVAL{i}": w["crval"], f"CRPIX{i}": float(w["crpix"]),
                  f"CDELT{i}": w["cdelt"], f"CUNIT{i}": "deg"})
    return a


def make_events(t, x, y, pi=None, gti=None, chunk=1000, attrs=None):
    """EventList from numpy columns (time must be sorted), Dask-chunked."""
    cols = {"time": np.asarray(t, dtype=np.float64), "x": np.asarray(x), "y": np.asarray(y)}
    if pi is not None:
        cols["pi"] = np.asarray(pi, dtype=np.int16)
        cols["energy"] = (cols["pi"] * 0.001).astype(np.float32)
    cols = {k: da.from_array(v, chunks=chunk) for k, v in cols.items()}
    if gti is None:
        gti = ([T0], [T0 + 1000.0])
    return events_dataset(cols, gti, {}, attrs or _attrs())


def reference(values_axes, shape):
    """Plain numpy histogram with floor-division (regular) or searchsorted (edges)
    indices, every bin half-open; built with np.add.at."""
    idx, ok = [], np.ones(len(values_axes[0][0]), dtype=bool)
    for v, lo, width, edges in values_axes:
        v = np.asarray(v, dtype=np.float64)
        if width is not None:
            k = np.floor((v - lo) / width).astype(np.int64)
        else:
            k = np.searchsorted(edges, v, side="right") - 1
        n = shape[len(idx)]
        ok &= (k >= 0) & (k < n)
        idx.append(k)
    out = np.zeros(shape, dtype=np.int64)
    np.add.at(out, tuple(k[ok] for k in idx), 1)
    return out


# ---------------------------------------------------------------------------- axes
def test_regular_axis_division_rule_on_integer_edges():
    ax = Axis.regular("x", 0.0, 49.0, 10)
    v = np.arange(0, 491, dtype=np.int32)
    # 49 * (1 / 49) == 0.9999999999999999: multiplying by 1/width misplaces this edge
    assert np.floor(49 * (1.0 / 49.0)) == 0
    assert ax.index_of([49])[0] == 1
    np.testing.assert_array_equal(ax.index_of(v), np.where(v < 490, v // 49, -1))
    np.testing.assert_array_equal(ax.edges, np.arange(11) * 49.0)
    np.testing.assert_array_equal(ax.centres, np.arange(10) * 49.0 + 24.5)


def test_axis_half_open_and_nan():
    ax = Axis.from_edges("energy", [0.5, 1.0, 2.0, 4.5], units="keV")
    got = ax.index_of([0.4999, 0.5, 0.99, 1.0, 2.0, 4.4999, 4.5, np.nan])
    np.testing.assert_array_equal(got, [-1, 0, 0, 1, 2, 2, -1, -1])
    assert not ax.is_regular and ax.size == 3


def test_axis_bad_input():
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="positive"):
            Axis.regular("time", 0.0, bad, 3)
    with pytest.raises(ValueError, match="strictly increasing"):
        Axis.from_edges("x", [0, 1, 1, 2])
    with pytest.raises(ValueError, match="at least two edges"):
        Axis.from_edges("x", [1.0])
    with pytest.raises(ValueError, match="exactly one"):
        Axis.covering("x", 0, 10, width=1, nbins=10)


def test_covering_width_nbins_offset():
    a = Axis.covering("t", 0.0, 1000.0, width=100.0)
    assert a.size == 10 and a.edges[0] == 0 and a.edges[-1] == 1000
    b = Axis.covering("t", 0.0, 1000.0, width=100.0, offset=0.5)
    # the edges are the rule's steps: (49.99999999999999 + 50) / 100 rounds to 1, so that float is bin 1's start
    np.testing.assert_allclose(b.edges, np.arange(-50.0, 1051.0, 100.0), rtol=1e-15, atol=0)
    np.testing.assert_array_equal(b.index_of(b.edges), list(range(11)) + [-1])
    np.testing.assert_array_equal(b.index_of(np.nextafter(b.edges[1:], -np.inf)), range(11))
    assert b.offset == 0.5 and b.size == 11
    c = Axis.covering("t", 0.0, 1050.0, width=100.0)  # partial last bin kept
    assert c.size == 11 and c.edges[-1] == 1100
    d = Axis.covering("t", 0.0, 10.0, nbins=4)
    assert d.size == 4 and d.width == 2.5
    e = Axis.covering("x", 1, 51840, width=400.0, closed=True)  # TLMIN..TLMAX inclusive
    assert e.size == 130 and e.index_of([51840])[0] == 129
    f = Axis.covering("x", 0, 800, width=400.0, closed=True)  # upper end exactly on an edge: the last bin
    assert f.size == 2 and f.index_of([800])[0] == 1  # keeps it (width widened by ulps), no bin past the range
    assert f.index_of([np.nextafter(f.edges[-1], np.inf)])[0] == -1
    g = Axis.covering("energy", 0.5, 10.0, width=0.5, closed=True)  # 0.5-10 keV in 0.5 keV bins: 19, not 20
    assert g.size == 19 and g.index_of([10.0])[0] == 18 and g.index_of([10.25])[0] == -1


def test_sel_bins_like_parent():
    ax = Axis.regular("x", 0.1, 0.3, 40)
    sub = ax.sel(10, 25)
    v = np.linspace(-1, 13, 5001)
    k = ax.index_of(v)
    expect = np.where((k >= 10) & (k < 25), k - 10, -1)
    np.testing.assert_array_equal(sub.index_of(v), expect)
    np.testing.assert_array_equal(sub.edges, ax.edges[10:26])


def test_time_axis_from_gtis_and_t0():
    gti = (np.array([T0 + 10.0, T0 + 500.0]), np.array([T0 + 300.0, T0 + 1005.0]))
    ax = time_axis(gti, 100.0)
    assert ax.edges[0] == T0 + 10.0 and ax.size == 10 and ax.edges[-1] == T0 + 1010.0
    ax = time_axis(gti, 100.0, t0=T0)
    assert ax.edges[0] == T0 and ax.size == 11
    assert time_axis(gti, nbins=5).size == 5
    with pytest.raises(ValueError, match="outside the GTIs"):
        time_axis(gti, 10.0, t0=T0 + 310.0, t_stop=T0 + 400.0)
    with pytest.raises(ValueError, match="at or after"):
        time_axis(gti, 10.0, t0=T0 + 2000.0)
    with pytest.raises(ValueError, match="outside the GTIs"):
        time_axis(gti, edges=[T0 - 100.0, T0 - 50.0])


def test_sky_axis_size_arcsec_snaps_to_pixels():
    ev = make_events([T0], [1], [1])
    ax = sky_axis(ev, "x", size_arcsec=20.0)
    assert ax.width == 400.0  # 20 / (1.38888888888889e-05 * 3600) = 399.99999999999966 before snapping
    # integer X/Y: the pixel of value v is [v - 0.5, v + 0.5), so the grid starts half a pixel below TLMIN
    assert ax.edges[0] == 0.5 and ax.size == 130
    assert sky_axis(ev, "y", size_arcsec=20.0, offset=0.5).edges[0] == 0.5 - 200.0
    with pytest.raises(ValueError, match="positive"):
        sky_axis(ev, "x", size_arcsec=0.0)


def test_energy_axis_defaults_to_profile_band():
    ev = make_events([T0], [1], [1], pi=[1000])
    ax = energy_axis(1.0, events=ev)
    assert ax.edges[0] == 0.15 and ax.units == "keV"
    with pytest.raises(ValueError, match="energy_range"):
        energy_axis(1.0)


# ---------------------------------------------------------------------------- exact counts
def test_integer_events_exactly_on_edges_generated():
    rng = np.random.default_rng(1)
    n = 20000
    # sky pixels that are exact multiples of the width (bin edges), plus random ones
    x = np.concatenate([rng.integers(0, 100, n // 2) * 49, rng.integers(0, 4900, n // 2)]).astype(np.int32)
    y = rng.permutation(x)
    # times exactly on time-bin edges and random
    t = np.sort(np.concatenate([T0 + rng.integers(0, 100, n // 2) * 10.0, T0 + rng.uniform(0, 1000, n // 2)]))
    ev = make_events(t, x, y, chunk=777, attrs=_attrs((0, 4899)))
    cube = bin_events(ev, time=10.0, y=49.0, x=49.0, chunk_bytes=20 * 100 * 100 * 4)
    assert cube.dims == ("time", "y", "x") and cube.shape == (100, 100, 100)
    assert len(cube.chunks[0]) > 3  # several output time chunks, each spanning input chunks
    ref = reference([(t, T0, 10.0, None), (y, 0.0, 49.0, None), (x, 0.0, 49.0, None)], cube.shape)
    got = cube.values
    np.testing.assert_array_equal(got, ref)
    assert got.sum() == n  # conservation: every event is inside


def test_half_bin_shifted_axes_generated():
    rng = np.random.default_rng(2)
    n = 30000
    t = np.sort(T0 + rng.integers(0, 1000, n) * 1.0)
    x = rng.integers(0, 2000, n).astype(np.int32)
    y = rng.integers(0, 2000, n).astype(np.int32)
    ev = make_events(t, x, y, chunk=4096, attrs=_attrs((0, 1999)))
    cube = bin_events(ev, time=50.0, y=100.0, x=100.0, offset=0.5)
    assert cube.time_lo.values[0] == T0 - 25.0 and cube.x_lo.values[0] == -50.5  # (integer X: TLMIN - 0.5 - 50)
    assert cube.shape == (21, 21, 21)
    ref = reference([(t, T0 - 25.0, 50.0, None), (y, -50.5, 100.0, None), (x, -50.5, 100.0, None)], cube.shape)
    np.testing.assert_array_equal(cube.values, ref)
    assert cube.values.sum() == n
    # per-axis offsets
    c2 = bin_events(ev, time=50.0, x=100.0, offset={"x": 0.5})
    assert c2.time_lo.values[0] == T0 and c2.x_lo.values[0] == -50.5


def test_explicit_edges_and_float_columns():
    rng = np.random.default_rng(3)
    n = 10000
    t = np.sort(T0 + rng.uniform(0, 1000, n))
    x = rng.uniform(0, 100, n)
    y = rng.uniform(0, 100, n).astype(np.float32)
    t_edges = T0 + np.array([0.0, 1.5, 100.0, 101.0, 600.0, 999.0])
    x_edges = np.array([0.0, 10.0, 10.5, 50.0, 99.0])
    ev = make_events(t, x, y, chunk=999)
    cube = bin_events(ev, time=t_edges, y=7.5, x=x_edges, chunk_bytes=2 * 14 * 4 * 4)
    ny = cube.sizes["y"]
    ref = reference([(t, None, None, t_edges), (y, 1.0, 7.5, None), (x, None, None, x_edges)], (5, ny, 4))
    np.testing.assert_array_equal(cube.values, ref)


def test_last_bin_is_half_open_unlike_histogramdd():
    t = np.array([T0, T0 + 50.0, T0 + 100.0])  # the last event sits on the last edge
    ev = make_events(t, [0, 0, 0], [0, 0, 0], gti=([T0], [T0 + 100.0]))
    lc = bin_events(ev, time=50.0)
    np.testing.assert_array_equal(lc.values, [1, 1])
    h, _ = np.histogramdd(t[:, None], bins=[lc.time_lo.values.tolist() + [lc.time_hi.values[-1]]])
    np.testing.assert_array_equal(h, [1, 2])  # numpy closes its last bin


def test_no_time_axis_uses_tree_reduction_image_and_spectrum():
    rng = np.random.default_rng(4)
    n = 50000
    t = np.sort(T0 + rng.uniform(0, 1000, n))
    x = rng.integers(0, 1000, n).astype(np.int32)
    y = rng.integers(0, 1000, n).astype(np.int32)
    pi = rng.integers(100, 12000, n).astype(np.int16)
    ev = make_events(t, x, y, pi=pi, chunk=3000, attrs=_attrs((0, 999)))
    img = bin_events(ev, y=40.0, x=40.0)
    assert img.dims == ("y", "x") and "time" not in img.coords
    np.testing.assert_array_equal(img.values, reference([(y, 0.0, 40.0, None), (x, 0.0, 40.0, None)], img.shape))
    spec = bin_events(ev, energy={"width": 0.5, "energy_range": (0.2, 12.0)})
    # energy axis: channel p (E = p eV) in [lo, hi) computed in integer eV
    k = (pi.astype(np.int64) - 200) // 500
    ref = np.bincount(k[(k >= 0) & (k < spec.size)], minlength=spec.size)
    np.testing.assert_array_equal(spec.values, ref)
    cube = bin_events(ev, energy={"width": 0.5, "energy_range": (0.2, 12.0)}, y=100.0, x=100.0, dtype="uint16")
    assert cube.dtype == np.uint16 and cube.dims == ("energy", "y", "x")
    assert int(cube.sum()) == int(((pi >= 200) & (pi < 12200)).sum())


def test_energy_bins_use_exact_channel_energies():
    # XMM channel 700 is 0.7 keV; as float32 it reads 0.69999999, which must not fall below 0.7
    pi = np.array([699, 700, 701, 1999, 2000], dtype=np.int16)
    ev = make_events(T0 + np.arange(5.0), np.zeros(5, np.int32), np.zeros(5, np.int32), pi=pi)
    assert float(ev.energy.values[1]) < 0.7
    spec = bin_events(ev, energy=[0.5, 0.7, 2.0, 3.0])
    np.testing.assert_array_equal(spec.values, [1, 3, 1])


def test_real_mos_files_match_numpy_reference():
    for name in ("P0001730201M1S002MIEVLI.FTZ", "exod_0001730201_M1_clean.fits"):
        ev = xcube.open_events(real_file("xmm", name))
        t, x, y, pi = (ev[k].values for k in ("time", "x", "y", "pi"))
        for offset in (0.0, 0.5):
            cube = bin_events(ev, time=100.0, energy={"width": 1.0, "energy_range": (0.2, 12.0)},
                              size_arcsec=60.0, offset=offset)
            assert cube.dims == ("time", "energy", "y", "x")
            lo = {d: float(cube[f"{d}_lo"].values[0]) for d in ("time", "energy", "y", "x")}
            assert lo["time"] == float(ev.gti_start.values[0]) - offset * 100.0
            e_lo = int(round(lo["energy"] * 1000))  # eV, exact
            ke = np.floor_divide(pi.astype(np.int64) - e_lo, 1000)
            ref = reference(
                [(t, lo["time"], 100.0, None), (ke, 0.0, 1.0, None), (y, lo["y"], 1200.0, None),
                 (x, lo["x"], 1200.0, None)], cube.shape)
            got = cube.values
            np.testing.assert_array_equal(got, ref)
            assert got.sum() == ref.sum() > 0.5 * t.size


def test_real_file_exposure_and_partial_last_bin():
    ev = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"))
    lc = bin_events(ev, time=1000.0)
    gti = gtimod.from_dataset(ev)
    np.testing.assert_allclose(lc.exposure.values, gtimod.exposure_per_bin(lc.time_lo, lc.time_hi, gti))
    np.testing.assert_allclose(lc.fracexp.values, lc.exposure.values / 1000.0)
    assert lc.time_hi.values[-1] > gti[1][-1] and 0 < lc.fracexp.values[-1] < 1  # trailing partial bin kept
    np.testing.assert_allclose(float(lc.exposure.sum()), gtimod.exposure(gti))
    assert int(lc.sum()) == ev.sizes["event"]


# ---------------------------------------------------------------------------- metadata
def test_coords_attrs_and_wcs():
    rng = np.random.default_rng(5)
    n = 1000
    t = np.sort(T0 + rng.uniform(0, 1000, n))
    x = rng.integers(20000, 32000, n).astype(np.int32)
    ev = make_events(t, x, x[::-1].copy())
    cube = bin_events(ev, time=100.0, y={"width": 400.0, "range": (20000, 32000)},
                      x={"width": 400.0, "range": (20000, 32000)})
    for d in ("time", "y", "x"):
        np.testing.assert_array_equal(cube[f"{d}_hi"].values[:-1], cube[f"{d}_lo"].values[1:])  # contiguous bins
        np.testing.assert_allclose(cube[d].values, 0.5 * (cube[f"{d}_lo"] + cube[f"{d}_hi"]).values)
    assert cube.name == "counts" and cube.attrs["units"] == "count"
    assert cube.attrs["source"] == "generated" and cube.attrs["selection"] == ["generated"]
    assert cube.attrs["xcube_version"] == xcube.__version__ and len(cube.attrs["binning"]) == 3
    assert cube.exposure.attrs["units"] == "s" and cube.time.attrs["units"] == "s"
    # RA/Dec of each cell centre equal the event WCS at the centre's pixel coordinates
    from astropy.wcs import WCS

    w = WCS(
        {"NAXIS": 2, **{k: ev.attrs[k] for k in ev.attrs if k[:-1] in ("CTYPE", "CRVAL", "CRPIX", "CDELT", "CUNIT")}}
    )
    xx, yy = np.meshgrid(cube.x.values, cube.y.values)
    ra, dec = w.wcs_pix2world(xx, yy, 1)  # column values use the FITS 1-based convention
    np.testing.assert_allclose(cube.ra.values, ra, rtol=0, atol=1e-9)
    np.testing.assert_allclose(cube.dec.values, dec, rtol=0, atol=1e-9)
    cw = cube_wcs(cube)
    r2, d2 = cw.wcs_pix2world(3, 5, 0)
    np.testing.assert_allclose([r2, d2], [ra[5, 3], dec[5, 3]], atol=1e-9)


def test_accessor_and_top_level():
    ev = make_events(np.sort(T0 + np.arange(100.0)), np.arange(100, dtype=np.int32), np.zeros(100, np.int32),
                     attrs=_attrs((0, 99)))
    a = ev.xcube.bin(time=10.0, x=10.0)
    b = xcube.bin_events(ev, time=10.0, x=10.0)
    xr.testing.assert_identical(a.compute(), b.compute())


# ---------------------------------------------------------------------------- laziness
def _exploding(n, chunk, dtype):
    def boom(block):
        raise AssertionError("x/y columns must not be computed while building the cube")

    return da.zeros(n, chunks=chunk, dtype=dtype).map_blocks(boom, dtype=dtype)


def test_building_is_lazy_and_chunked_along_time_only():
    n = 5000
    t = np.sort(T0 + np.random.default_rng(6).uniform(0, 1000, n))
    ev = make_events(t, np.zeros(n, np.int32), np.zeros(n, np.int32), chunk=1000, attrs=_attrs((0, 99)))
    ev["x"] = ("event", _exploding(n, 1000, np.int32))
    ev["y"] = ("event", _exploding(n, 1000, np.int32))
    cube = bin_events(ev, time=1.0, y=10.0, x=10.0, chunk_bytes=100 * 10 * 10 * 4)
    assert isinstance(cube.data, da.Array)
    assert len(cube.chunks[0]) == 10 and cube.chunks[1:] == ((10,), (10,))
    # one layer of cube tasks over the input columns: no cross-chunk reduction
    names = [k for k in cube.data.dask.layers if k.startswith("counts")]
    assert len(names) == 1 and len(cube.data.dask.layers[names[0]]) == 10
    with pytest.raises(AssertionError, match="must not be computed"):
        cube.compute()


# ---------------------------------------------------------------------------- bad input
def test_bad_widths_and_ranges():
    ev = make_events(np.sort(T0 + np.arange(10.0)), np.arange(10, dtype=np.int32), np.arange(10, dtype=np.int32),
                     attrs=_attrs((0, 9)))
    for kw in ({"time": 0.0}, {"time": -5.0}, {"x": 0}, {"energy": -0.1}, {"y": float("nan")}):
        with pytest.raises(ValueError, match="positive"):
            bin_events(ev, **kw)
    with pytest.raises(ValueError, match="outside the GTIs"):
        bin_events(ev, time=[T0 + 2000.0, T0 + 3000.0])
    with pytest.raises(ValueError, match="at or after"):
        bin_events(ev, time=10.0, t0=T0 + 5000.0)
    with pytest.raises(ValueError, match="not both"):
        bin_events(ev, x=2.0, size_arcsec=10.0)
    with pytest.raises(KeyError, match="no event column 'energy'"):
        bin_events(ev, energy={"width": 1.0, "energy_range": (0.5, 2.0)})
    with pytest.raises(ValueError, match="integer dtype"):
        bin_events(ev, time=1.0, dtype="float32")


def test_refuses_oversized_requests_before_allocating():
    ev = make_events(np.sort(T0 + np.arange(10.0)), np.arange(10, dtype=np.int32), np.arange(10, dtype=np.int32),
                     attrs=_attrs((0, 9)))
    with pytest.raises(ValueError, match=r"would need .*(GB|TB)"):
        bin_events(ev, time=1e-9)  # 1e12 time bins: the coordinates alone would not fit
    with pytest.raises(ValueError, match=r"would need 4 GB, more than the 1 GB allowed"):
        check_size((1000, 1000, 1000), "int32", limit=10**9)
    assert check_size((10, 10), "int32") == 400
    big = make_events(np.sort(T0 + np.arange(10.0)), np.arange(10, dtype=np.int32), np.arange(10, dtype=np.int32),
                      attrs=_attrs((0, 2_000_000)))
    with pytest.raises(ValueError, match="would need"):
        bin_events(big, time=0.001, y=100.0, x=100.0, compute=True)  # 1e6 x 2e4 x 2e4 cells
    # lazy, tiny cells: the (y, x) ra/dec coordinates are what would not fit, and the message says so
    with pytest.raises(ValueError, match=r"the ra/dec coordinates of the sky cells, with the temporaries of computing "
                                         r"them, of shape \(6, 2000001, 2000001\).*use larger sky cells"):
        bin_events(big, time=1.0, y=1.0, x=1.0)


def test_uint16_overflow_is_an_error():
    n = 70000
    ev = make_events(np.full(n, T0 + 1.0), np.zeros(n, np.int32), np.zeros(n, np.int32), chunk=10000,
                     attrs=_attrs((0, 9)))
    with pytest.raises(OverflowError, match="uint16"):
        bin_events(ev, time=10.0, x=10.0, dtype="uint16").compute()
    assert int(bin_events(ev, time=10.0, x=10.0).max()) == n


def test_empty_event_list_gives_zero_counts_and_warning():
    e = np.empty(0)
    ev = make_events(e, e.astype(np.int32), e.astype(np.int32), attrs=_attrs((0, 99)))
    with pytest.warns(UserWarning, match="empty"):
        cube = bin_events(ev, time=100.0, x=10.0)
    assert cube.shape == (10, 10) and int(cube.sum()) == 0
    with pytest.warns(UserWarning, match="empty"):
        img = bin_events(ev, y=10.0, x=10.0)
    assert int(img.sum()) == 0
    # events all outside the time axis: zero counts, warned
    ev2 = make_events([T0 + 500.0], [1], [1], attrs=_attrs((0, 99)))
    with pytest.warns(UserWarning, match="none of the 1 events"):
        lc = bin_events(ev2, time=[T0, T0 + 10.0])
    assert int(lc.sum()) == 0


def test_selection_result_is_binned_exactly():
    ev = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"))
    sel = xcube.select(ev, expr="PATTERN <= 12 && FLAG == 0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube = bin_events(sel, time=500.0, size_arcsec=120.0)
    t, x, y = (sel[k].values for k in ("time", "x", "y"))
    lo = [float(cube[f"{d}_lo"].values[0]) for d in ("time", "y", "x")]
    ref = reference([(t, lo[0], 500.0, None), (y, lo[1], 2400.0, None), (x, lo[2], 2400.0, None)], cube.shape)
    np.testing.assert_array_equal(cube.values, ref)
    assert cube.attrs["selection"] == list(sel.attrs["selection"]) and cube.attrs["selection"]


def test_unsorted_times_are_refused():
    t = T0 + np.arange(3000.0) / 3
    x = np.zeros(3000, np.int32)
    within = t.copy()
    within[0], within[2048] = within[2048], within[0]  # inside one chunk, on the sampled check's stride
    across = np.concatenate([t[1000:2000], t[:1000], t[2000:]])  # chunk order broken
    for bad, chunk in ((within, 3000), (across, 1000)):
        ev = make_events(bad, x, x, chunk=chunk, attrs=_attrs((0, 9)))
        with pytest.raises(ValueError, match="not time-sorted"):
            bin_events(ev, time=10.0)


def test_integer_column_paths_agree_with_the_division_rule():
    from xcube.binning import kernels
    from xcube.binning.axes import integer_lut
    from xcube.binning.engine import _integer_divisor

    m, s = kernels.exact_divisor(49, 49 * 300_000)
    u = np.arange(49 * 300_000, dtype=np.uint64)
    np.testing.assert_array_equal((u * np.uint64(m)) >> np.uint64(s), u // 49)
    assert kernels.exact_divisor(3, 2**25) is None  # beyond the proven range
    ax_int = Axis.regular("x", -7.0, 49.0, 100)
    ax_frac = Axis.regular("x", 0.0, 48.5, 100)
    assert _integer_divisor(ax_int, np.dtype(np.int32)) is not None
    assert _integer_divisor(ax_frac, np.dtype(np.int32)) is None and integer_lut(ax_frac, np.dtype(np.int32))
    rng = np.random.default_rng(8)
    n = 20000
    t = np.sort(T0 + rng.uniform(0, 1000, n))
    x = rng.integers(-100, 5000, n).astype(np.int32)
    for lo, width in ((-7.0, 49.0), (0.0, 48.5), (0.25, 3.0)):  # MUL, LUT, LUT (non-integer origin)
        ev = make_events(t, x, x, attrs=_attrs((lo, 4800)))
        cube = bin_events(ev, x=width)
        ref = reference([(x, float(cube.x_lo[0]), width, None)], cube.shape)
        np.testing.assert_array_equal(cube.values, ref)


@pytest.mark.parametrize("origin, width", [(100529505.497534, 0.1), (100529505.497534, 0.3), (100529505.497534, 2.6),
                                           (25000.0, 1.1), (-50.0, 100.0), (0.3, 0.7)])
def test_regular_edges_are_where_the_rule_steps(origin, width):
    """A value equal to a reported edge ``lo[k]`` is in bin ``k`` (the rule
    and the edges agree), and a value at ``hi[-1]`` is outside: with edges
    ``origin + k * width`` an event exactly on an edge went to bin k - 1 for
    about half the edges of 0.1 s bins at XMM times, or into the last bin
    from its upper edge."""
    ax = Axis.regular("time", origin, width, 400)
    np.testing.assert_array_equal(ax.index_of(ax.edges), list(range(400)) + [-1])
    np.testing.assert_array_equal(ax.index_of(np.nextafter(ax.edges, -np.inf)), [-1] + list(range(400)))
    np.testing.assert_allclose(ax.edges, origin + np.arange(401) * width, rtol=1e-15, atol=0)
    t = np.asarray(ax.edges, np.float64)
    ev = make_events(t, np.zeros(t.size), np.zeros(t.size), gti=([t[0]], [t[-1]]), chunk=97)
    cube = xcube.bin_events(ev, time=ax).compute()
    np.testing.assert_array_equal(cube.sum(["x", "y"]).values if cube.ndim > 1 else cube.values, np.ones(400))
    np.testing.assert_array_equal(cube["time_lo"].values, ax.edges[:-1])
