"""One pass over the events of a transient-search run.

``search_transients`` needs, per camera, four things from the events: the
counts cube N(time, y, x) of the screened events in the energy band, the
band events' counts per frame and CCD (bad-frame rule), the 10-12 keV light
curve of the screened events inside the camera's GTIs (bad time intervals)
and the sky extent of the band events (the cube's grid). :func:`scan_events`
gets all four in **one** Dask pass over the event chunks, each chunk read
once: the screening expression, the band test and the GTI test are those of
:func:`xcube.select.select`, the bins those of :func:`xcube.bin_events`
(half-open ``[lo, hi)``), so every number is the same as the one the separate
steps give.

The cube is kept as a :class:`CompactCube`: the cell index of every band
event, frame by frame (events are time-sorted), 2 or 4 bytes per event,
instead of a dense (time, y, x) array. Every later step of the search (subset
images, background light curve, masks, light curves of the detections) is one
numba loop over these indices, and :meth:`CompactCube.to_dask` gives the
dense cube lazily, chunk by chunk along time, for the user.
"""
from __future__ import annotations

import logging
import math
import os
import uuid
from dataclasses import dataclass

import dask
import dask.array as da
import numba
import numpy as np
from dask.highlevelgraph import HighLevelGraph

from .. import gti as gtimod
from ..expression import compile_expression
from ..missions import profile_of
from ..select import _aliases, _dtypes, _energy_band, _EnergyTest, _macro_lookup

__all__ = ["CompactCube", "CameraScan", "scan_events", "merge_cameras"]

log = logging.getLogger("xcube.transients")

_EDGES, _LUT = 0, 1
_LUT_MAX = 1 << 24
_EMPTY_I32 = np.empty(0, dtype=np.int32)
#: dense cube chunks handed out by ``CompactCube.to_dask`` [bytes of int32 counts]
CUBE_CHUNK_BYTES = 32 * 2**20


def cell_dtype(n_cells: int) -> np.dtype:
    """Smallest unsigned dtype holding cell indices ``0 .. n_cells - 1``."""
    return np.dtype(np.uint16) if n_cells <= 1 << 16 else np.dtype(np.uint32)


# ---------------------------------------------------------------------- the compact cube
@dataclass(eq=False)
class CompactCube:
    """A (time, y, x) counts cube stored as the cell index of every event.

    ``cells`` holds, frame after frame, the flat cell index ``iy * nx + ix`` of
    each counted event (uint16/uint32); the events of frame ``t`` are
    ``cells[seg[t]:seg[t + 1]]`` (``seg``: int64, ``n_frames + 1``). Memory is
    2 or 4 bytes per event, whatever the number of frames.
    """

    cells: np.ndarray
    seg: np.ndarray
    ny: int
    nx: int

    @property
    def n_frames(self) -> int:
        return self.seg.size - 1

    @property
    def n_pixels(self) -> int:
        return self.ny * self.nx

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n_frames, self.ny, self.nx)

    def frame_totals(self) -> np.ndarray:
        """Counts per frame, int64 (n_frames,)."""
        return np.diff(self.seg)

    def dense(self, f0: int = 0, f1: int | None = None, dtype="int32") -> np.ndarray:
        """Frames ``f0:f1`` as a dense (frames, ny, nx) array (eager)."""
        f1 = self.n_frames if f1 is None else f1
        out = np.zeros((f1 - f0, self.n_pixels), dtype=np.dtype(dtype))
        _fill_dense(self.cells, self.seg, f0, f1, out)
        return out.reshape(f1 - f0, self.ny, self.nx)

    def to_dask(self, dtype="int32", chunk_bytes: int = CUBE_CHUNK_BYTES) -> da.Array:
        """The dense cube as a lazy Dask array chunked along time (each chunk
        about ``chunk_bytes``; the y and x axes whole). The graph holds this
        compact cube, not a copy per chunk."""
        dtype = np.dtype(dtype)
        nt = self.n_frames
        per = max(1, int(chunk_bytes // max(self.n_pixels * dtype.itemsize, 1)))
        starts = list(range(0, nt, per)) or [0]
        sizes = tuple(min(per, nt - s) for s in starts) if nt else (0,)
        tag = uuid.uuid4().hex
        src = f"compact-cube-{tag}"
        name = f"counts-{tag}"
        layer = {src: self}
        for c, (s, m) in enumerate(zip(starts, sizes)):
            layer[(name, c, 0, 0)] = (_dense_task, src, s, s + m, dtype)
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[])
        return da.Array(graph, name, (sizes, (self.ny,), (self.nx,)), dtype=dtype,
                        meta=np.empty((0, 0, 0), dtype=dtype))


def _dense_task(cc: CompactCube, f0, f1, dtype):
    return cc.dense(f0, f1, dtype)


@numba.njit(nogil=True, cache=True)
def _fill_dense(cells, seg, f0, f1, out):  # pragma: no cover - compiled
    for t in range(f0, f1):
        row = t - f0
        for i in range(seg[t], seg[t + 1]):
            out[row, cells[i]] += 1


# ---------------------------------------------------------------------- one camera
@dataclass(eq=False)
class CameraScan:
    """What one pass over one camera's events gives (all eager numpy).

    ``cells``/``seg``: the band events inside the frames, as full-grid cell
    indices (``iy * nx_full + ix``) frame by frame (a list of arrays, one per
    event chunk, to be concatenated); ``ccd_counts`` (n_frames,
    n_ccd) band counts per frame and CCD (pn) or None; ``frame_counts``
    (n_frames,) band counts (as the bad-frame rule counts them); ``he_counts``
    the 10-12 keV light curve or None; ``extent`` (xmin, xmax, ymin, ymax) of
    all band events (inf/-inf when none); ``n_outside`` band events outside the
    full grid (the grid must then be rebuilt).
    """

    cells: list
    seg: np.ndarray
    ccd_counts: np.ndarray | None
    frame_counts: np.ndarray
    he_counts: np.ndarray | None
    extent: tuple
    n_outside: int


@dataclass(frozen=True, eq=False)
class _Axis1:
    """Cell rule of one sky column: LUT for integer columns, edges otherwise."""

    mode: int
    lut: np.ndarray
    lut_lo: int
    edges: np.ndarray


def _sky_rule(edges: np.ndarray, dtype) -> _Axis1:
    """``edges[k] <= v < edges[k+1]`` as a lookup table over the integers in
    range (integer columns) or a binary search (float columns)."""
    e = np.asarray(edges, dtype=np.float64)
    if np.issubdtype(np.dtype(dtype), np.integer):
        v0, v1 = int(math.ceil(e[0])), int(math.floor(e[-1]))
        if v1 >= v0 and v1 - v0 + 1 <= _LUT_MAX:
            v = np.arange(v0, v1 + 1, dtype=np.float64)
            k = np.searchsorted(e, v, side="right") - 1
            k[(k < 0) | (k >= e.size - 1)] = -1
            return _Axis1(_LUT, k.astype(np.int32), v0, e)
    return _Axis1(_EDGES, _EMPTY_I32, 0, e)


@dataclass(frozen=True, eq=False)
class _ScanSpec:
    columns: tuple  # event columns the task reads, in block order
    screen: object  # Expression or None
    band: _EnergyTest
    frame_edges: np.ndarray
    ax: _Axis1
    ay: _Axis1
    nx_full: int
    cell_dtype: np.dtype
    ccd_lo: int  # first CCD number of the quadrant map, or -1 (no CCD counts)
    n_ccd: int
    he: object  # Expression or None (no light curve)
    he_gti: tuple
    he_edges: np.ndarray


@numba.njit(inline="always")
def _lut_index(v, lut, lut_lo):  # pragma: no cover - compiled
    j = np.int64(v) - lut_lo
    if j < 0 or j >= lut.size:
        return -1
    return np.int64(lut[j])


@numba.njit(nogil=True, cache=True)
def _scan_kernel(band, time, x, y, ccd, frame_edges, fa, xlut, xlo, ylut, ylo, nx_full,
                 ccd_lo, n_ccd, cells, ncell, ccounts, ext):  # pragma: no cover - compiled
    """The events with ``band`` True (time-sorted): their extent; for the
    ones inside the frames, the full-grid cell (``cells``, ``ncell`` per frame
    from frame ``fa``) and the counts per frame and CCD (``ccounts``; column 0
    = all events when ``n_ccd`` is 0). Returns (cells written, events outside
    the grid, unsorted)."""
    nf = frame_edges.size - 1
    e0 = frame_edges[0]
    eN = frame_edges[nf]
    m = 0
    outside = 0
    unsorted = False
    f = fa
    prev = -np.inf
    x0 = ext[0]
    x1 = ext[1]
    y0 = ext[2]
    y1 = ext[3]
    nxl = np.int64(nx_full)
    for i in range(band.size):
        if not band[i]:
            continue
        t = time[i]
        xv = x[i]
        yv = y[i]
        x0 = min(x0, xv)
        x1 = max(x1, xv)
        y0 = min(y0, yv)
        y1 = max(y1, yv)
        unsorted |= t < prev
        prev = t
        if not (t >= e0 and t < eN):
            continue
        while t >= frame_edges[f + 1]:
            f += 1
        if f - fa >= ncell.size:  # beyond the chunk's last event time: not sorted
            unsorted = True
            continue
        if n_ccd > 0:
            k = np.int64(ccd[i]) - ccd_lo
            if k >= 0 and k < n_ccd:
                ccounts[f - fa, k] += 1
        else:
            ccounts[f - fa, 0] += 1
        ix = _lut_index(xv, xlut, xlo)
        iy = _lut_index(yv, ylut, ylo)
        if ix < 0 or iy < 0:
            outside += 1
            continue
        cells[m] = iy * nxl + ix
        ncell[f - fa] += 1
        m += 1
    ext[0] = x0
    ext[1] = x1
    ext[2] = y0
    ext[3] = y1
    return m, outside, unsorted


def _lut_input(values, ax: _Axis1):
    """(column, lut, lut_lo) for the kernel: an integer column goes through
    its lookup table; a float column is turned into bin numbers here
    (``searchsorted`` on the edges, -1 outside) and an identity table."""
    if ax.mode == _LUT:
        return values, ax.lut, ax.lut_lo
    e = ax.edges
    v = np.asarray(values, dtype=np.float64)
    k = np.searchsorted(e, v, side="right") - 1
    k[(k < 0) | (k >= e.size - 1) | np.isnan(v)] = -1
    return k, np.arange(e.size - 1, dtype=np.int32), 0


def _scan_task(spec: _ScanSpec, *blocks):
    """One event chunk -> ``(cells, fa, ncell, ccounts, he, ext, outside,
    unsorted, first_time, last_time)`` (see :func:`_combine`)."""
    cols = dict(zip(spec.columns, blocks))
    t = np.asarray(cols["time"], dtype=np.float64)
    n = t.size
    screen = np.ones(n, bool) if spec.screen is None else spec.screen.evaluate(cols, n)
    band = screen & np.asarray(spec.band(cols), dtype=bool)
    n_band = int(np.count_nonzero(band))
    fe = spec.frame_edges
    fa, nfr = 0, 0
    if n_band and t[0] < fe[-1] and t[-1] >= fe[0]:  # frames this chunk can touch (times are sorted)
        fa = int(np.clip(np.searchsorted(fe, t[0], side="right") - 1, 0, fe.size - 2))
        fb = int(np.clip(np.searchsorted(fe, t[-1], side="right") - 1, fa, fe.size - 2))
        nfr = fb - fa + 1
    cells = np.empty(n_band, dtype=spec.cell_dtype)
    ncell = np.zeros(nfr, dtype=np.int64)
    ccounts = np.zeros((nfr, max(spec.n_ccd, 1)), dtype=np.int64)
    ext = np.array([np.inf, -np.inf, np.inf, -np.inf])
    m, outside, unsorted = 0, 0, False
    if n_band:
        ccd = cols["ccdnr"] if spec.n_ccd > 0 else np.zeros(1, np.int16)
        (x, xl, xlo), (y, yl, ylo) = (_lut_input(cols[c], a) for c, a in (("x", spec.ax), ("y", spec.ay)))
        m, outside, unsorted = _scan_kernel(band, t, x, y, ccd, fe, fa, xl, xlo, yl, ylo, spec.nx_full,
                                            spec.ccd_lo, spec.n_ccd, cells, ncell, ccounts, ext)
        if spec.ax.mode == _EDGES or spec.ay.mode == _EDGES:  # the kernel saw bin numbers: extent of the values
            vx, vy = (np.asarray(cols[c])[band].astype(np.float64) for c in ("x", "y"))
            ext = np.array([np.nanmin(vx), np.nanmax(vx), np.nanmin(vy), np.nanmax(vy)])
    he = None
    if spec.he is not None:
        th = t[screen & spec.he.evaluate(cols, n)]
        th = th[gtimod.in_gti(th, spec.he_gti)]
        he = np.diff(np.searchsorted(th, spec.he_edges, side="left")).astype(np.int64)
    first = float(t[0]) if n else np.inf
    last = float(t[-1]) if n else -np.inf
    if n > 1 and not unsorted:  # the kernel checks the band events; check the chunk cheaply too
        unsorted = bool(np.any(t[1::1024][1:] < t[1::1024][:-1])) if n > 2048 else bool(np.any(t[1:] < t[:-1]))
    return cells[:m], fa, ncell, ccounts, he, ext, int(outside), bool(unsorted), first, last


def _combine(parts, n_frames, n_ccd, n_he) -> CameraScan:
    """Sum the chunks' pieces into one :class:`CameraScan`."""
    if any(p[7] for p in parts):
        _unsorted()
    bounds = [(p[8], p[9]) for p in parts if np.isfinite(p[8])]
    if any(b[0] < a[1] for a, b in zip(bounds[:-1], bounds[1:])):
        _unsorted()
    ncell = np.zeros(n_frames, dtype=np.int64)
    counts = np.zeros((n_frames, max(n_ccd, 1)), dtype=np.int64)
    he = np.zeros(n_he, dtype=np.int64) if n_he else None
    ext = np.array([np.inf, -np.inf, np.inf, -np.inf])
    outside = 0
    for cells, fa, nc, cc, h, e, out, *_ in parts:
        k = nc.size
        ncell[fa:fa + k] += nc
        counts[fa:fa + k] += cc
        if h is not None:
            he += h
        ext[0], ext[2] = min(ext[0], e[0]), min(ext[2], e[2])
        ext[1], ext[3] = max(ext[1], e[1]), max(ext[3], e[3])
        outside += out
    seg = np.zeros(n_frames + 1, dtype=np.int64)
    np.cumsum(ncell, out=seg[1:])
    return CameraScan([p[0] for p in parts], seg, counts if n_ccd else None, counts.sum(axis=1), he,
                      tuple(float(v) for v in ext), outside)


def _unsorted():
    raise ValueError("events are not time-sorted; the transient search needs sorted times "
                     "(xcube.open_events sorts on load; sort a hand-made EventList with events.sortby('time'))")


def _event_array(events, name, chunks=None):
    data = events[name].data
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=chunks or (1 << 22,))
    return data


def scan_graph(events, *, screening: str | None, energy_band, frame_edges, x_edges, y_edges,
               he_band=None, he_edges=None, ccd=True):
    """Lazy per-chunk pieces of one camera's pass (list of Delayed-like keys)
    plus what ``_combine`` needs. See :func:`scan_events`."""
    prof = profile_of(events)
    dtypes = _dtypes(events)
    screen = None
    if screening:
        screen = compile_expression(screening, dtypes, aliases=_aliases(events), macros=_macro_lookup(events))
    lo, hi = _energy_band(events, energy_band)
    band = _EnergyTest(lo, hi)
    need = {"time", "x", "y", "energy"} | (set(screen.columns) if screen is not None else set())
    ccd_lo, n_ccd = -1, 0
    if ccd and prof.quadrants:
        if "ccdnr" not in events.variables:
            raise KeyError(f"{events.attrs.get('source', 'events')}: no 'ccdnr' column, needed for the "
                           f"{prof.instrument} partial-CCD frame rule; read the CCDNR column from the event file")
        ccds = np.array(sorted(prof.quadrants))
        if np.any(np.diff(ccds) != 1):
            raise ValueError(f"profile {prof.name}: quadrant map must cover consecutive CCD numbers")
        if not np.issubdtype(events["ccdnr"].dtype, np.integer):
            raise TypeError(f"{events.attrs.get('source', 'events')}: the 'ccdnr' column must be integer")
        ccd_lo, n_ccd = int(ccds[0]), int(ccds.size)
        need.add("ccdnr")
    he = None
    he_gti = (np.empty(0), np.empty(0))
    he_e = np.empty(0)
    if he_band is not None and he_edges is not None:
        g = gtimod.from_dataset(events)
        if gtimod.exposure_per_bin(he_edges[:-1], he_edges[1:], g).any():
            lo_e, hi_e = (float(v) for v in he_band)
            he = compile_expression(f"energy > {lo_e!r} && energy < {hi_e!r}", dtypes,
                                    aliases=_aliases(events), macros=_macro_lookup(events))
            need |= set(he.columns)
            he_gti = g
            he_e = np.asarray(he_edges, dtype=np.float64)
    for c in need:
        if c not in events.variables:
            raise KeyError(f"{events.attrs.get('source', 'events')}: no event column {c!r} (columns: "
                           f"{sorted(k for k, v in events.data_vars.items() if v.dims == ('event',))})")
    columns = tuple(sorted(need))
    x_edges = np.asarray(x_edges, np.float64)
    y_edges = np.asarray(y_edges, np.float64)
    nx_full = x_edges.size - 1
    n_cells = nx_full * (y_edges.size - 1)
    spec = _ScanSpec(columns, screen, band, np.asarray(frame_edges, np.float64),
                     _sky_rule(x_edges, events["x"].dtype), _sky_rule(y_edges, events["y"].dtype), nx_full,
                     cell_dtype(n_cells), ccd_lo, n_ccd, he, he_gti, he_e)
    ref = _event_array(events, "time")
    arrays = []
    for c in columns:
        a = _event_array(events, c, ref.chunks[0])
        if a.chunks != ref.chunks:
            a = a.rechunk(ref.chunks)
        arrays.append(a)
    tag = uuid.uuid4().hex[:16]
    name = f"scan-{tag}"
    layer = {(name, j): (_scan_task, spec, *[(a.name, j) for a in arrays]) for j in range(ref.numblocks[0])}
    graph = HighLevelGraph.from_collections(name, layer, dependencies=arrays)
    keys = [(name, j) for j in range(ref.numblocks[0])]
    labels = []
    if screen is not None:
        labels.append(f"expr={screen.text}")
    labels.append(f"energy_band=[{lo:g}, {hi:g}) keV")
    return graph, keys, (frame_edges.size - 1, n_ccd, he_e.size - 1 if he is not None else 0), labels


def scan_events(cameras, *, screening, energy_band, frame_edges, x_edges, y_edges, he_band=None,
                he_edges=None):
    """One Dask pass over every camera's events (all chunks of all cameras in
    one ``dask.compute``). Returns ``(scans, labels)``: a :class:`CameraScan`
    per camera and the selection labels of each (as ``select`` writes them).

    ``screening``: one filter expression (or None) per camera; ``frame_edges``
    (n+1,) [s]; ``x_edges``/``y_edges`` the full sky grid (column units);
    ``he_band``/``he_edges``: the bad-time-interval band [keV] and light-curve
    bin edges [s] (None: no light curve). Memory: the cells (2-4 B per band
    event) and, per chunk in flight, its columns.
    """
    graphs, all_keys, shapes, labels = [], [], [], []
    for ev, scr in zip(cameras, screening):
        g, keys, shp, lab = scan_graph(ev, screening=scr, energy_band=energy_band, frame_edges=frame_edges,
                                       x_edges=x_edges, y_edges=y_edges, he_band=he_band, he_edges=he_edges)
        graphs.append(g)
        all_keys.append(keys)
        shapes.append(shp)
        labels.append(lab)
    from dask.delayed import Delayed

    graph = HighLevelGraph.merge(*graphs)
    results = dask.compute(*[Delayed(k, graph, layer=k[0]) for keys in all_keys for k in keys])
    out, i = [], 0
    for keys, (nf, nccd, nhe) in zip(all_keys, shapes):
        out.append(_combine(results[i:i + len(keys)], nf, nccd, nhe))
        i += len(keys)
    return out, labels


# ---------------------------------------------------------------------- cameras -> one cube
@numba.njit(nogil=True, cache=True)
def _crop_kernel(cells, lut, out):  # pragma: no cover - compiled
    for i in range(cells.size):
        out[i] = lut[cells[i]]


@numba.njit(nogil=True, cache=True)
def _merge_kernel(c1, s1, c2, s2, out, seg):  # pragma: no cover - compiled
    m = 0
    seg[0] = 0
    for t in range(s1.size - 1):
        for i in range(s1[t], s1[t + 1]):
            out[m] = c1[i]
            m += 1
        for i in range(s2[t], s2[t + 1]):
            out[m] = c2[i]
            m += 1
        seg[t + 1] = m


def merge_cameras(scans, full_shape, ky0, kx0, ny, nx) -> CompactCube:
    """Crop every camera's full-grid cells (grid ``full_shape`` = (ny, nx)
    cells) to the (ny, nx) grid starting at cell (ky0, kx0), which holds all
    of them, and merge the cameras frame by frame into one
    :class:`CompactCube` (the sum of the cameras' cubes). The scans' cell
    arrays are consumed (cropped in place, then released)."""
    dt = cell_dtype(nx * ny)
    iy, ix = np.divmod(np.arange(full_shape[0] * full_shape[1], dtype=np.int64), full_shape[1])
    inside = (iy >= ky0) & (iy < ky0 + ny) & (ix >= kx0) & (ix < kx0 + nx)
    lut = np.where(inside, (iy - ky0) * nx + (ix - kx0), 0).astype(dt)
    cube = None
    for s in scans:
        parts = []
        for a in s.cells:  # crop chunk by chunk (in place when the dtype allows), then one copy
            out = a if a.dtype == dt else np.empty(a.size, dtype=dt)
            _crop_kernel(a, lut, out)
            parts.append(out)
        c = np.concatenate(parts) if parts else np.zeros(0, dt)
        del parts
        s.cells = []
        if cube is None:
            cube = CompactCube(c, s.seg.copy(), ny, nx)
            continue
        out = np.empty(cube.cells.size + c.size, dtype=dt)
        seg = np.empty_like(cube.seg)
        _merge_kernel(cube.cells, cube.seg, c, s.seg, out, seg)
        cube = CompactCube(out, seg, ny, nx)
    return cube


@numba.njit(nogil=True, cache=True)
def subset_images(cells, seg, subset, npix):  # pragma: no cover - compiled
    """(3, npix) int64: counts summed over frames with subset 0 (GTI), 1 (BTI), and over all frames."""
    out = np.zeros((3, npix), dtype=np.int64)
    for t in range(seg.size - 1):
        s = subset[t]
        for i in range(seg[t], seg[t + 1]):
            c = cells[i]
            out[2, c] += 1
            if s == 0:
                out[0, c] += 1
            elif s == 1:
                out[1, c] += 1
    return out


@numba.njit(nogil=True, cache=True)
def counts_outside(cells, seg, outside):  # pragma: no cover - compiled
    """Per frame, the counts in pixels where ``outside`` is True (int64)."""
    nt = seg.size - 1
    out = np.zeros(nt, dtype=np.int64)
    for t in range(nt):
        k = 0
        for i in range(seg[t], seg[t + 1]):
            if outside[cells[i]]:
                k += 1
        out[t] = k
    return out


@numba.njit(nogil=True, cache=True)
def voxel_flags(cells, seg, f0, f1, ftype, k_sub, k_lc, k_exp, t_g, t_b, rate, plo, phi, elo, ehi, cand, cand_ptr,
                fp, fe, rec, und):  # pragma: no cover - compiled
    """Flag every voxel of frames ``f0:f1`` of the compact cube, frame by
    frame, without a dense pass.

    Frame ``t`` of type ``k = ftype[t]`` (-1: mu undefined, never flagged) has
    ``mu[p] = T[p] * k_lc[k] + rate[p] * k_exp[k]`` (T the BTI template when
    ``k_sub[k] == 1``, else the GTI one): the arithmetic of
    ``background.expected_counts``. The decision is that of ``bayes.masks``,
    from its threshold table (``plo``/``phi``/``elo``/``ehi``); a voxel whose mu
    lies in a guard band (or with n >= the table size) goes to ``und`` as a
    row ``(t, p, n, kind)`` for the direct test. Peaks are tested where the
    frame has counts (n = 0 is never a peak); eclipses on the type's candidate
    pixels ``cand[cand_ptr[k]:cand_ptr[k+1]]`` (mu above ``elo[0]``: elsewhere
    no count is an eclipse).

    Adds the flagged frames per pixel to ``fp``/``fe`` and writes every
    flagged voxel to ``rec`` as ``(t, p, kind)`` (kind 0 peak, 1 eclipse).
    Returns ``(flagged, undecided)`` voxel numbers; rows beyond the arrays'
    lengths are counted, not written.
    """
    size = plo.size
    cap_u = und.shape[0]
    cap_r = rec.shape[0]
    cnt = np.zeros(fp.size, dtype=np.int32)
    touched = np.empty(fp.size, dtype=np.int64)
    nund = 0
    nrec = 0
    for t in range(f0, f1):
        k = ftype[t]
        if k < 0:
            continue
        nt = 0  # counts of the frame, and the list of pixels it touches (appended without a branch)
        for i in range(seg[t], seg[t + 1]):
            p = cells[i]
            c = cnt[p]
            touched[nt] = p
            nt += c == 0
            cnt[p] = c + 1
        tm = t_b if k_sub[k] == 1 else t_g
        lc = k_lc[k]
        ex = k_exp[k]
        for j in range(cand_ptr[k], cand_ptr[k + 1]):
            p = cand[j]
            n = cnt[p]
            m = tm[p] * lc + rate[p] * ex
            dec = 2
            if n < size:
                if m > ehi[n]:
                    dec = 1
                elif m <= elo[n]:
                    dec = 0
            if dec == 1:
                fe[p] += 1
                if nrec < cap_r:
                    rec[nrec, 0] = t
                    rec[nrec, 1] = p
                    rec[nrec, 2] = 1
                nrec += 1
            elif dec == 2:
                if nund < cap_u:
                    und[nund, 0] = t
                    und[nund, 1] = p
                    und[nund, 2] = n
                    und[nund, 3] = 1
                nund += 1
        for j in range(nt):
            p = touched[j]
            n = cnt[p]
            cnt[p] = 0
            m = tm[p] * lc + rate[p] * ex
            if not (m >= 0.0 and m < np.inf):
                continue
            dec = 2
            if n < size:
                if m < plo[n]:
                    dec = 1
                elif m >= phi[n]:
                    dec = 0
            if dec == 1:
                fp[p] += 1
                if nrec < cap_r:
                    rec[nrec, 0] = t
                    rec[nrec, 1] = p
                    rec[nrec, 2] = 0
                nrec += 1
            elif dec == 2:
                if nund < cap_u:
                    und[nund, 0] = t
                    und[nund, 1] = p
                    und[nund, 2] = n
                    und[nund, 3] = 0
                nund += 1
    return nrec, nund


@numba.njit(nogil=True, cache=True)
def region_counts(cells, seg, label, n_regions):  # pragma: no cover - compiled
    """Counts per region and frame, (n_regions, n_frames) int64; ``label``
    (pixels,) is each pixel's region, -1 for none."""
    nt = seg.size - 1
    out = np.zeros((n_regions, nt), dtype=np.int64)
    for t in range(nt):
        for i in range(seg[t], seg[t + 1]):
            r = label[cells[i]]
            if r >= 0:
                out[r, t] += 1
    return out


# ---------------------------------------------------------------------- frame types and flags
@dataclass(eq=False)
class FrameTypes:
    """Frames grouped by what their mu image depends on.

    ``mu[t, p] = T_{s}[p] * L[t] + S0[p] * exposure[t]``: frames with the same
    subset s (GTI/BTI), background counts L and exposure share one mu image,
    a *type*. ``ftype`` (n_frames,) is each frame's type, -1 where mu is
    undefined (NaN); ``sub``/``lc``/``exposure``/``n_frames`` describe the
    types. ``t_gti``/``t_bti``/``rate`` are the flat (pixels,) templates and
    source rate [ct/s].
    """

    ftype: np.ndarray
    sub: np.ndarray
    lc: np.ndarray
    exposure: np.ndarray
    n_frames: np.ndarray
    t_gti: np.ndarray
    t_bti: np.ndarray
    rate: np.ndarray

    @classmethod
    def from_model(cls, subset, light_curve, exposure, defined, t_gti, t_bti, rate) -> "FrameTypes":
        """``subset`` (0 GTI, 1 BTI, -1 excluded), ``light_curve`` L [counts],
        ``exposure`` [s] and ``defined`` (mu defined) per frame."""
        ftype = np.full(np.shape(subset), -1, dtype=np.int64)
        idx = np.flatnonzero(defined)
        if idx.size:
            key = np.stack([np.asarray(subset)[idx].astype(np.float64),
                            np.asarray(light_curve)[idx].astype(np.float64), np.asarray(exposure)[idx]], axis=1)
            uniq, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
            ftype[idx] = inverse.ravel()
        else:
            uniq, counts = np.zeros((0, 3)), np.zeros(0, np.int64)
        f64 = lambda a: np.ascontiguousarray(a, dtype=np.float64).ravel()  # noqa: E731
        return cls(ftype, uniq[:, 0].astype(np.int8), uniq[:, 1].copy(), uniq[:, 2].copy(), counts.astype(np.int64),
                   f64(t_gti), f64(t_bti), f64(rate))

    @property
    def size(self) -> int:
        return self.sub.size

    def mu(self, k0: int, k1: int) -> np.ndarray:
        """mu images of types ``k0:k1``, (k1 - k0, pixels) float64, with the
        arithmetic of ``background.expected_counts``."""
        tm = np.where(self.sub[k0:k1, None] == 1, self.t_bti[None], self.t_gti[None])
        return tm * self.lc[k0:k1, None] + self.rate[None] * self.exposure[k0:k1, None]


def eclipse_candidates(types: FrameTypes, sigma: float, block: int = 1024):
    """Per type, the pixels where an eclipse is possible: mu above the n = 0
    eclipse break's guard band ``eclipse_lo[0]`` (elsewhere no count is an
    eclipse, the breaks rising with n). Returns ``(cand, cand_ptr)``, the
    pixels of type k being ``cand[cand_ptr[k]:cand_ptr[k+1]]``. Only pixels
    whose mu can reach the break at the subset's largest background counts
    and exposure are looked at (mu grows with both; the bound uses the same
    arithmetic, which is monotone for these non-negative numbers)."""
    from . import bayes

    e0 = bayes.threshold_table(sigma).eclipse_lo[0]
    counts = np.zeros(types.size, dtype=np.int64)
    parts = []  # (type indices, pixel indices) per block
    if types.size and np.isfinite(e0):
        for sub, tmpl in ((0, types.t_gti), (1, types.t_bti)):
            ks = np.flatnonzero(types.sub == sub)
            if ks.size == 0:
                continue
            bound = tmpl * types.lc[ks].max() + types.rate * types.exposure[ks].max()
            with np.errstate(invalid="ignore"):
                cols = np.flatnonzero(bound > e0)
            if cols.size == 0:
                continue
            for b0 in range(0, ks.size, block):
                kb = ks[b0:b0 + block]
                mu = tmpl[cols][None] * types.lc[kb, None] + types.rate[cols][None] * types.exposure[kb, None]
                with np.errstate(invalid="ignore"):
                    kk, pp = np.nonzero(mu > e0)
                parts.append((kb[kk], cols[pp]))
    if parts:
        k_all = np.concatenate([p[0] for p in parts])
        p_all = np.concatenate([p[1] for p in parts])
        order = np.lexsort((p_all, k_all))
        k_all, cand = k_all[order], p_all[order].astype(np.int64)
        counts = np.bincount(k_all, minlength=types.size)
    else:
        cand = np.zeros(0, np.int64)
    ptr = np.zeros(types.size + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return cand, ptr


def false_alarms(types: FrameTypes, sigma: float, block: int = 256):
    """Expected false alarms ``(peak, eclipse)`` of all voxels with a defined
    mu: ``bayes.expected_false_alarms`` of each type's image times its number
    of frames. Memory: ``block`` mu images at a time."""
    from . import bayes

    fa_p = fa_e = 0.0
    for k0 in range(0, types.size, block):
        k1 = min(types.size, k0 + block)
        mu = types.mu(k0, k1)
        w = types.n_frames[k0:k1]
        for wv in np.unique(w):
            f = bayes.expected_false_alarms(mu[w == wv], sigma)
            fa_p += float(wv) * f.peak
            fa_e += float(wv) * f.eclipse
    return fa_p, fa_e


def flag_voxels(cube: CompactCube, types: FrameTypes, sigma: float, cand, cand_ptr, threads: int | None = None):
    """Run :func:`voxel_flags` (on ``threads`` frame ranges of about equal
    counts, in parallel; default: the CPU count, one range below 1M events)
    and settle its undecided voxels with ``bayes.masks`` (the direct test).
    Returns ``(fp, fe, flagged)``: flagged frames per pixel (peak, eclipse;
    int64 (pixels,)) and the flagged voxels as an (m, 3) int64 array of rows
    ``(frame, pixel, kind)``, kind 0 peak, 1 eclipse, sorted."""
    import concurrent.futures

    from . import bayes

    table = bayes.threshold_table(sigma)
    npix = cube.n_pixels
    if threads is None:
        threads = min(os.cpu_count() or 1, 8) if cube.cells.size >= 1 << 20 else 1
    bounds = np.searchsorted(cube.seg, np.linspace(0, cube.cells.size, threads + 1)[1:-1])
    bounds = np.unique(np.concatenate([[0], bounds, [cube.n_frames]]))

    def run(f0, f1):
        cap_r, cap_u = 1 << 16, 1 << 12
        while True:
            fp = np.zeros(npix, np.int64)
            fe = np.zeros(npix, np.int64)
            rec = np.empty((cap_r, 3), np.int64)
            und = np.empty((cap_u, 4), np.int64)
            nrec, nund = voxel_flags(cube.cells, cube.seg, f0, f1, types.ftype, types.sub, types.lc, types.exposure,
                                     types.t_gti, types.t_bti, types.rate, table.peak_lo, table.peak_hi,
                                     table.eclipse_lo, table.eclipse_hi, cand, cand_ptr, fp, fe, rec, und)
            if nrec <= cap_r and nund <= cap_u:
                return fp, fe, rec[:nrec], und[:nund]
            cap_r, cap_u = max(cap_r, int(nrec)), max(cap_u, int(nund))

    ranges = list(zip(bounds[:-1], bounds[1:]))
    if len(ranges) > 1:
        with concurrent.futures.ThreadPoolExecutor(len(ranges)) as pool:
            parts = list(pool.map(lambda r: run(*r), ranges))
    else:
        parts = [run(*r) for r in ranges] or [run(0, 0)]
    fp = sum(p[0] for p in parts)
    fe = sum(p[1] for p in parts)
    rec = np.concatenate([p[2] for p in parts])
    und = np.concatenate([p[3] for p in parts])
    if und.size:
        t, p, n, kind = und.T
        k = types.ftype[t]
        tm = np.where(types.sub[k] == 1, types.t_bti[p], types.t_gti[p])
        mu = tm * types.lc[k] + types.rate[p] * types.exposure[k]
        pk, ec = bayes.masks(n.astype(np.float64), mu, sigma)
        yes = np.where(kind == 0, pk, ec)
        np.add.at(fp, p[yes & (kind == 0)], 1)
        np.add.at(fe, p[yes & (kind == 1)], 1)
        rec = np.concatenate([rec, np.stack([t[yes], p[yes], kind[yes]], axis=1)])
    rec = rec[np.lexsort((rec[:, 2], rec[:, 1], rec[:, 0]))] if rec.size else rec.reshape(0, 3)
    return fp, fe, rec
