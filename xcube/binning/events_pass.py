"""One pass over the events of one or several cameras -> compact cubes.

:func:`compact_cubes` reads every event chunk of every camera once (all
chunks in one ``dask.compute``) and fills any number of runs at the same
time: a run is a time axis and an energy band (:class:`Run`), so the whole
parameter grid of a transient search (e.g. 5/50/200 s x three bands) shares
the pass. Per chunk, a numba kernel computes each selected event's sky cell
once and appends it to every run whose band and frames hold the event.
Memory: the output cells (2-4 bytes per event and run) and, per chunk in
flight, its columns.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import numba
import numpy as np

from .. import gti as gtimod
from ..hygiene import BLOCK_EVENTS, merge_stats
from ..io.memmap import fusable_sources, read_columns
from ..missions import profile_of
from ..scheduler import compute
from ..select import EnergyBand, EventFilter, column_dtypes, energy_band_bounds
from .axes import Axis, integer_lut
from .compact import CompactCube, Monitor, cell_dtype

__all__ = ["Run", "compact_cubes"]

log = logging.getLogger("xcube.binning")


@dataclass(frozen=True, eq=False)
class Run:
    """One cube of the pass: frames ``time`` (an :class:`Axis` over the
    ``time`` column), an ``energy_band`` ``(emin, emax)`` [keV] (None: every
    selected event), optionally the bin ``monitor_edges`` [s] of the
    monitor light curve taken for this run, and optionally its own sky grid
    ``sky = (y, x)`` (:class:`Axis` pair; default: the pass's grid), e.g. a
    grid shifted by half a cell."""

    time: Axis
    energy_band: tuple | None = None
    monitor_edges: np.ndarray | None = None
    sky: tuple | None = None


def compact_cubes(events, runs, y: Axis, x: Axis, *, filters=None, monitor=None, ccd: bool = True,
                  crop: bool = True) -> list[CompactCube]:
    """Bin cameras of one observation into one :class:`CompactCube` per run.

    Parameters
    ----------
    events : an EventList or a list of them (cameras; their cubes are summed).
    runs : list of :class:`Run` (or ``(time_axis, energy_band)`` pairs).
    y, x : sky axes over the ``y``/``x`` columns (the grid the cells index).
    filters : one :class:`~xcube.select.EventFilter` per camera (e.g. the
        mission screening), applied before the bands; None keeps every event.
    monitor : one EventFilter per camera selecting the monitor light curve's
        events (counted in each run's ``monitor_edges``), or None.
    ccd : count the run's events per frame and CCD for cameras whose profile
        has a quadrant map (pn), else per frame.
    crop : cut each run's y/x axes to the cells from the one holding the
        smallest to the one holding the largest selected coordinate.

    Returns one cube per run with ``cameras``, ``ccd_counts``, ``ccd_map``,
    ``filter_stats``, ``monitor``, ``extent`` and ``n_outside`` set (see
    :class:`CompactCube`); its ``attrs`` are the first camera's, with the
    selection labels ``select`` would add; its ``gti`` the intersection of
    the cameras' GTIs. Eager: this is the pass. Raises ``ValueError`` when
    times are not sorted.
    """
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    evs = [events] if not isinstance(events, (list, tuple)) else list(events)
    runs = [r if isinstance(r, Run) else Run(*r) for r in runs]
    filters = list(filters) if filters is not None else [None] * len(evs)
    monitor = list(monitor) if monitor is not None else [None] * len(evs)
    specs = [_camera_spec(ev, runs, y, x, f, m, ccd) for ev, f, m in zip(evs, filters, monitor)]
    graphs, keys = [], []
    for ev, spec in zip(evs, specs):
        g, k = _graph(ev, spec)
        graphs.append(g)
        keys.append(k)
    graph = HighLevelGraph.merge(*graphs)
    flat = list(compute(*[Delayed(k, graph, layer=k[0]) for ks in keys for k in ks]))
    parts, i = [], 0
    for ks, spec in zip(keys, specs):
        parts.append(_combine(flat[i:i + len(ks)], spec))
        i += len(ks)
    del flat  # the chunks' cells now live only in `parts`, which the merge empties as it goes
    return [_assemble(k, r, evs, specs, parts, crop) for k, r in enumerate(runs)]


# ---------------------------------------------------------------------- per camera set-up
@dataclass(frozen=True, eq=False)
class _Spec:
    columns: tuple  # event columns read, in block order
    filter: EventFilter | None
    bands: tuple  # EnergyBand (or None) per distinct band
    labels: tuple  # selection labels per distinct band
    run_b: np.ndarray  # band index of each run
    run_t: np.ndarray  # time-axis index of each run
    run_m: np.ndarray  # monitor-edges index of each run (-1: none)
    t_edges: tuple  # distinct frame edges
    m_edges: tuple  # distinct monitor edges
    monitor: EventFilter | None
    grids: tuple  # distinct sky grids (y, x, yrule, xrule); a rule is (lut, lut_lo) or (None, 0)
    run_g: np.ndarray  # sky-grid index of each run
    ccd_lo: int
    n_ccd: int
    ccd_column: str | None  # CCD column of the per-cell CCD map (None: no map)


def _distinct(values, key):
    out, index = [], []
    for v in values:
        for j, u in enumerate(out):
            if key(u, v):
                index.append(j)
                break
        else:
            out.append(v)
            index.append(len(out) - 1)
    return out, np.array(index, dtype=np.int64)


def _camera_spec(ev, runs, y, x, filt, mon, ccd) -> _Spec:
    prof = profile_of(ev)
    src = ev.attrs.get("source", "events")
    bands, run_b = _distinct([r.energy_band for r in runs], lambda a, b: a == b)
    tests, labels = [], []
    for band in bands:
        if band is None:
            tests.append(None)
            labels.append(())
        else:
            lo, hi = energy_band_bounds(ev, band)
            tests.append(EnergyBand(lo, hi))
            labels.append((f"energy_band=[{lo:g}, {hi:g}) keV",))
    t_axes, run_t = _distinct([r.time.edges for r in runs], lambda a, b: a is b or np.array_equal(a, b))
    with_m = [r.monitor_edges for r in runs if r.monitor_edges is not None]
    m_edges, m_idx = _distinct(with_m, lambda a, b: a is b or np.array_equal(a, b))
    run_m = np.full(len(runs), -1, dtype=np.int64)
    run_m[[k for k, r in enumerate(runs) if r.monitor_edges is not None]] = m_idx
    grids, run_g = _distinct([r.sky or (y, x) for r in runs],
                             lambda a, b: all(u is v or np.array_equal(u.edges, v.edges) for u, v in zip(a, b)))
    need = {"time", "x", "y"} | ({"energy"} if any(t is not None for t in tests) else set())
    if filt is not None:
        need |= set(filt.columns)
    if mon is not None and m_edges:
        need |= set(mon.columns)
    ccd_lo, n_ccd = -1, 0
    if ccd and prof.quadrants:
        ccd_lo, n_ccd = _ccd_range(ev, prof, src)
        need.add("ccdnr")
    ccd_column = prof.raw_columns[0] if prof.raw_columns and prof.raw_columns[0] in ev.variables else None
    if ccd_column is not None and np.issubdtype(ev[ccd_column].dtype, np.integer):
        need.add(ccd_column)
    else:
        ccd_column = None
    for c in need:
        if c not in ev.variables:
            cols = sorted(column_dtypes(ev))
            raise KeyError(f"{src}: no event column {c!r} (columns: {cols})")
    rules = tuple((gy, gx, integer_lut(gy, ev["y"].dtype) or (None, 0), integer_lut(gx, ev["x"].dtype) or (None, 0))
                  for gy, gx in grids)
    base = tuple(filt.labels) if filt is not None else ()
    return _Spec(tuple(sorted(need)), filt if filt else None, tuple(tests), tuple(base + lab for lab in labels),
                 run_b, run_t, run_m, tuple(np.asarray(e, np.float64) for e in t_axes),
                 tuple(np.asarray(e, np.float64) for e in m_edges), mon, rules, run_g, ccd_lo, n_ccd, ccd_column)


def _ccd_range(ev, prof, src):
    ccds = np.array(sorted(prof.quadrants))
    if np.any(np.diff(ccds) != 1):
        raise ValueError(f"profile {prof.name}: quadrant map must cover consecutive CCD numbers")
    if "ccdnr" not in ev.variables:
        raise KeyError(f"{src}: no 'ccdnr' column, needed for the {prof.instrument} partial-CCD frame rule; "
                       "read the CCDNR column from the event file")
    if not np.issubdtype(ev["ccdnr"].dtype, np.integer):
        raise TypeError(f"{src}: the 'ccdnr' column must be integer")
    return int(ccds[0]), int(ccds.size)


def _graph(ev, spec):
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    def column(name, chunks=None):
        data = ev[name].data
        if not isinstance(data, da.Array):
            data = da.from_array(np.asarray(data), chunks=chunks or (BLOCK_EVENTS,))
        return data

    ref = column("time")
    arrays = []
    for c in spec.columns:
        a = column(c, ref.chunks[0])
        arrays.append(a if a.chunks == ref.chunks else a.rechunk(ref.chunks))
    name = f"events-pass-{uuid.uuid4().hex[:16]}"
    sources = fusable_sources(arrays)
    if sources is not None:  # columns of one FITS table: each chunk's columns decoded in one pass over its rows
        ends = np.cumsum(ref.chunks[0])
        layer = {(name, j): (_fused_chunk_task, spec, tuple(sources), int(ends[j] - ref.chunks[0][j]), int(ends[j]))
                 for j in range(ref.numblocks[0])}
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[])
    else:
        layer = {(name, j): (_chunk_task, spec, *[(a.name, j) for a in arrays]) for j in range(ref.numblocks[0])}
        graph = HighLevelGraph.from_collections(name, layer, dependencies=arrays)
    return graph, [(name, j) for j in range(ref.numblocks[0])]


def _fused_chunk_task(spec, sources, start, stop):
    """:func:`_chunk_task` of rows ``start:stop`` of a FITS table (:func:`~xcube.io.memmap.read_columns`)."""
    return _chunk_task(spec, *read_columns(sources, start, stop))


# ---------------------------------------------------------------------- one chunk
def _sky_input(values, rule, axis):
    """(column, lut, lut_lo) for the kernel: an integer column goes through its
    lookup table; a float column is turned into bin numbers here
    (``axis.index_of``, -1 outside) read through an identity table."""
    lut, lo = rule
    if lut is not None:
        return values, lut, lo
    return axis.index_of(values).astype(np.int32), np.arange(axis.size, dtype=np.int32), 0


def _chunk_task(spec: _Spec, *blocks):
    """One event chunk -> ``(runs, fa, monitor, ext, outside, unsorted, first, last, stats)``:
    per run ``(cells, ncell, ccounts, ccd map)``; ``fa`` the first frame of
    each time axis touched; monitor counts per distinct monitor edges;
    ``stats`` the filter's statistics (detector hygiene)."""
    cols = dict(zip(spec.columns, blocks))
    t = np.asarray(cols["time"], dtype=np.float64)
    n = t.size
    stats = {}
    sel = spec.filter.mask(cols, n, stats) if spec.filter is not None else np.ones(n, bool)
    code = np.zeros(n, dtype=np.uint8)  # bit b: the event is in band b
    for b, test in enumerate(spec.bands):
        code |= ((sel if test is None else sel & np.asarray(test(cols), dtype=bool)).astype(np.uint8) << b)
    fa, nfr = _frames_touched(spec, t)
    nb, nr = len(spec.bands), spec.run_b.size
    ext = np.tile(np.array([np.inf, -np.inf, np.inf, -np.inf]), (nb, 1))
    outside = np.zeros(nr, np.int64)
    unsorted = False
    if n and code.any():
        runs, unsorted = _chunk_runs(spec, cols, t, code, fa, nfr, ext, outside)
    else:
        runs = [_run_buffers(spec, r, code, nfr[spec.run_t[r]], empty=True) for r in range(nr)]
    mon = []
    if spec.monitor is not None and spec.m_edges:
        th = t[spec.monitor.mask(cols, n)]
        mon = [np.diff(np.searchsorted(th, e, side="left")).astype(np.int64) for e in spec.m_edges]
    if n > 1 and not unsorted:  # the kernel checks the selected events; check the chunk cheaply too
        s = t[1::1024] if n > 2048 else t
        unsorted = bool(np.any(s[1:] < s[:-1]))
    first = float(t[0]) if n else np.inf
    last = float(t[-1]) if n else -np.inf
    return runs, fa, mon, ext, outside, bool(unsorted), first, last, stats


def _chunk_runs(spec: _Spec, cols, t, code, fa, nfr, ext, outside):
    """Every run of one chunk through :func:`_run_kernel`; returns the runs'
    ``(cells, ncell, ccounts, ccd map)`` and whether times were unsorted."""
    sky = [tuple(_sky_input(cols[c], r, a) for c, r, a in (("x", g[3], g[1]), ("y", g[2], g[0])))
           for g in spec.grids]
    ext_values = all(g[3][0] is not None and g[2][0] is not None for g in spec.grids)
    if not ext_values:  # the kernel sees bin numbers: extent of the values
        _band_extent(code, np.asarray(cols["x"], np.float64), np.asarray(cols["y"], np.float64), ext)
    ccd = cols["ccdnr"] if spec.n_ccd > 0 else np.zeros(1, np.int16)
    cmap_ccd = cols[spec.ccd_column] if spec.ccd_column else np.zeros(1, np.int16)
    runs, unsorted = [], False
    mapped = set()
    for r in range(spec.run_b.size):
        a, b, g = spec.run_t[r], spec.run_b[r], spec.run_g[r]
        (xv, xl, xlo), (yv, yl, ylo) = sky[g]
        out, ncell, cc, cmap = _run_buffers(spec, r, code, nfr[a], with_map=g not in mapped)
        mapped.add(g)
        m, outside[r], bad = _run_kernel(t, code, b, xv, xl, xlo, yv, yl, ylo, spec.grids[g][1].size, ccd,
                                         spec.ccd_lo, spec.n_ccd, spec.t_edges[a], fa[a], out, ncell, cc, ext[b],
                                         ext_values, cmap_ccd, cmap)
        unsorted |= bad
        runs.append((out[:m], ncell, cc, cmap))
    return runs, unsorted


def _frames_touched(spec: _Spec, t):
    """Per time axis, the first frame this chunk can touch and how many (times are sorted)."""
    fa = np.zeros(len(spec.t_edges), np.int64)
    nfr = np.zeros(len(spec.t_edges), np.int64)
    if t.size:
        for a, e in enumerate(spec.t_edges):
            if t[0] < e[-1] and t[-1] >= e[0]:
                fa[a] = int(np.clip(np.searchsorted(e, t[0], side="right") - 1, 0, e.size - 2))
                fb = int(np.clip(np.searchsorted(e, t[-1], side="right") - 1, fa[a], e.size - 2))
                nfr[a] = fb - fa[a] + 1
    return fa, nfr


def _run_buffers(spec: _Spec, r: int, code, n_frames: int, empty: bool = False, with_map: bool = True):
    """Run ``r``'s output cells (room for every event of its band), counts
    per frame and per frame and CCD, and the per-cell CCD bit map (size 1
    without a CCD column, or ``with_map`` False: one map per sky grid is
    made, by its first run)."""
    gy, gx = spec.grids[spec.run_g[r]][:2]
    cap = 0 if empty else int(np.count_nonzero(code & np.uint8(1 << spec.run_b[r])))
    n_map = gx.size * gy.size if spec.ccd_column and with_map else 1
    return (np.empty(cap, dtype=cell_dtype(gx.size * gy.size)), np.zeros(n_frames, np.int64),
            np.zeros((n_frames, max(spec.n_ccd, 1)), np.int64), np.zeros(n_map, np.uint32))


@numba.njit(inline="always")
def _lookup(v, lut, lut_lo):  # pragma: no cover - compiled
    j = np.int64(v) - lut_lo
    if j < 0 or j >= lut.size:
        return -1
    return np.int64(lut[j])


@numba.njit(nogil=True, cache=True)
def _band_extent(code, x, y, ext):  # pragma: no cover - compiled
    """Each band's extent of float x/y values (NaN ignored) in ``ext`` (bands, 4)."""
    for i in range(code.size):
        c = code[i]
        for b in range(ext.shape[0]):
            if (c >> b) & 1:
                ext[b, 0] = min(ext[b, 0], x[i])
                ext[b, 1] = max(ext[b, 1], x[i])
                ext[b, 2] = min(ext[b, 2], y[i])
                ext[b, 3] = max(ext[b, 3], y[i])


@numba.njit(nogil=True, cache=True)
def _run_kernel(time, code, band, x, xlut, xlo, y, ylut, ylo, nx, ccd, ccd_lo, n_ccd, edges, fa, out, ncell,
                ccounts, ext, ext_values, cmap_ccd, cmap):  # pragma: no cover - compiled
    """One run of the pass: each event of band ``band`` (a bit of ``code``)
    inside the frames ``edges`` adds one to its frame's count (``ncell``,
    frames from ``fa``) and CCD count and appends its full-grid cell ``iy *
    nx + ix`` (through the x/y lookup tables) to ``out``; events outside the
    grid are counted apart. With ``ext_values``, ``ext`` (4,) becomes the
    extent of the band's x/y values. When ``cmap`` has a slot per cell, the
    cell's bit ``cmap_ccd % 32`` is set (the CCDs seen in each cell; from
    every 8th counted event in chunks of more than 2^20 events).
    Returns (cells written, outside, times found unsorted)."""
    nf = edges.size - 1
    e0 = edges[0]
    eN = edges[nf]
    nfr = ncell.size
    nxl = np.int64(nx)
    f = fa
    m = 0
    outside = 0
    unsorted = False
    prev = -np.inf
    x0, x1, y0, y1 = ext[0], ext[1], ext[2], ext[3]
    with_map = cmap.size > 1
    map_mask = 7 if time.size > (1 << 20) else 0
    for i in range(time.size):
        if not (code[i] >> band) & 1:
            continue
        xv = x[i]
        yv = y[i]
        if ext_values:
            x0 = min(x0, np.float64(xv))
            x1 = max(x1, np.float64(xv))
            y0 = min(y0, np.float64(yv))
            y1 = max(y1, np.float64(yv))
        t = time[i]
        unsorted |= t < prev
        prev = t
        if not (t >= e0 and t < eN):
            continue
        while t >= edges[f + 1]:
            f += 1
        fl = f - fa
        if fl >= nfr:  # beyond the chunk's last event time: not sorted
            unsorted = True
            continue
        k = np.int64(ccd[i]) - ccd_lo if n_ccd > 0 else 0
        if k >= 0 and k < max(n_ccd, 1):
            ccounts[fl, k] += 1
        ix = _lookup(xv, xlut, xlo)
        iy = _lookup(yv, ylut, ylo)
        if ix < 0 or iy < 0:
            outside += 1
            continue
        out[m] = iy * nxl + ix
        ncell[fl] += 1
        m += 1
        if with_map and (m & map_mask) == 0:  # every (map_mask + 1)-th event is enough to see a cell's CCDs
            cmap[iy * nxl + ix] |= np.uint32(1) << np.uint32(np.int64(cmap_ccd[i]) & 31)
    if ext_values:
        ext[0], ext[1], ext[2], ext[3] = x0, x1, y0, y1
    return m, outside, unsorted


# ---------------------------------------------------------------------- chunks -> camera -> runs
def _unsorted(src):
    raise ValueError(f"{src}: events are not time-sorted; the compact cube needs sorted times "
                     "(xcube.open_events sorts on load; sort a hand-made EventList with events.sortby('time'))")


def _combine(parts, spec: _Spec):
    """Per run ``(cells list, seg, ccd counts (n_frames, n_ccd), ccd map)``,
    the monitor counts per distinct edges, per-band extent, per-run outside
    counts and the filter statistics of one camera."""
    bounds = [(p[6], p[7]) for p in parts if np.isfinite(p[6])]
    if any(p[5] for p in parts) or any(b[0] < a[1] for a, b in zip(bounds[:-1], bounds[1:])):
        return None
    n_ccd = max(spec.n_ccd, 1)
    out = []
    for r in range(spec.run_b.size):
        nf = spec.t_edges[spec.run_t[r]].size - 1
        ncell = np.zeros(nf, np.int64)
        counts = np.zeros((nf, n_ccd), np.int64)
        cmap = None
        for runs, fa, *_ in parts:
            c, nc, cc, cm = runs[r]
            a = fa[spec.run_t[r]]
            ncell[a:a + nc.size] += nc
            counts[a:a + nc.size] += cc
            cmap = cm.copy() if cmap is None else cmap | cm
        seg = np.zeros(nf + 1, np.int64)
        np.cumsum(ncell, out=seg[1:])
        out.append(([p[0][r][0] for p in parts], seg, counts if spec.n_ccd else counts[:, 0],
                    cmap if spec.ccd_column and cmap is not None and cmap.size > 1 else None))
    mon = [sum((p[2][m] for p in parts), np.zeros(e.size - 1, np.int64)) for m, e in enumerate(spec.m_edges)]
    ext = np.array([np.inf, -np.inf, np.inf, -np.inf]) * np.ones((len(spec.bands), 1))
    outside = np.zeros(spec.run_b.size, np.int64)
    stats = {}
    for p in parts:
        ext[:, 0::2] = np.minimum(ext[:, 0::2], p[3][:, 0::2])
        ext[:, 1::2] = np.maximum(ext[:, 1::2], p[3][:, 1::2])
        outside += p[4]
        stats = merge_stats(stats, p[8])
    return out, mon, ext, outside, stats


def _crop_range(axis: Axis, lo: float, hi: float):
    """Bins of ``axis`` from the one holding ``lo`` to the one holding ``hi``
    (clipped to the axis); the first bin when there is no event."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return 0, 1
    a = int(np.clip(np.searchsorted(axis.edges, lo, side="right") - 1, 0, axis.size - 1))
    b = int(np.clip(np.searchsorted(axis.edges, hi, side="right") - 1, a, axis.size - 1))
    return a, b + 1


def _assemble(k, run, evs, specs, parts, crop) -> CompactCube:
    """Run ``k``'s cube: every camera's cells cropped and merged frame by frame."""
    for ev, part in zip(evs, parts):
        if part is None:
            _unsorted(ev.attrs.get("source", "events"))
    y, x = specs[0].grids[specs[0].run_g[k]][:2]
    b = [int(s.run_b[k]) for s in specs]
    ext = np.array([p[2][bi] for p, bi in zip(parts, b)])
    extent = (float(ext[:, 0].min()), float(ext[:, 1].max()), float(ext[:, 2].min()), float(ext[:, 3].max()))
    (y0, y1), (x0, x1) = ((0, y.size), (0, x.size)) if not crop else (
        _crop_range(y, extent[2], extent[3]), _crop_range(x, extent[0], extent[1]))
    ya, xa = y.sel(y0, y1), x.sel(x0, x1)
    cells, seg = _merge([p[0][k][0] for p in parts], [p[0][k][1] for p in parts], (y.size, x.size), y0, x0,
                        ya.size, xa.size)
    m = [int(s.run_m[k]) for s in specs]
    monitor = None
    if run.monitor_edges is not None:
        counts = [p[1][mi] if mi >= 0 and p[1] else np.zeros(run.monitor_edges.size - 1, np.int64)
                  for p, mi in zip(parts, m)]
        monitor = Monitor(np.asarray(run.monitor_edges, np.float64), counts,
                          [gtimod.from_dataset(ev) for ev in evs])
    attrs = dict(evs[0].attrs)
    attrs["selection"] = list(attrs.get("selection", [])) + list(specs[0].labels[b[0]])
    cams = tuple({"profile": profile_of(ev).name, "source": str(ev.attrs.get("source", "")),
                  "gti": gtimod.from_dataset(ev)} for ev in evs)
    common = gtimod.intersection(*[c["gti"] for c in cams])
    first = int(np.flatnonzero(specs[0].run_g == specs[0].run_g[k])[0])  # the run that made the grid's CCD map
    maps = [None if p[0][first][3] is None else p[0][first][3].reshape(y.size, x.size)[y0:y1, x0:x1].copy()
            for p in parts]
    return CompactCube(cells, seg, run.time, ya, xa, attrs=attrs, gti=common, cameras=cams,
                       ccd_counts=[p[0][k][2] for p in parts], monitor=monitor, extent=extent,
                       n_outside=int(sum(p[3][k] for p in parts)), ccd_map=maps,
                       filter_stats=[dict(p[4]) for p in parts])


def _merge(cell_lists, segs, full_shape, y0, x0, ny, nx):
    """Crop every camera's full-grid cells to the (ny, nx) grid starting at
    cell (y0, x0), then merge the cameras frame by frame (the sum of their
    cubes). Cells outside the crop cannot occur: the crop holds all of them.
    The chunk arrays of ``cell_lists`` are consumed (the lists emptied)."""
    dt = cell_dtype(nx * ny)
    iy, ix = np.divmod(np.arange(full_shape[0] * full_shape[1], dtype=np.int64), full_shape[1])
    inside = (iy >= y0) & (iy < y0 + ny) & (ix >= x0) & (ix < x0 + nx)
    lut = np.where(inside, (iy - y0) * nx + (ix - x0), 0).astype(dt)  # full-grid cell -> cropped cell
    merged, mseg = None, None
    for parts, seg in zip(cell_lists, segs):
        c = np.empty(sum(a.size for a in parts), dtype=dt)
        pos = 0
        while parts:  # crop chunk by chunk into the camera's array, releasing each chunk (memory: one copy)
            a = parts.pop(0)
            _crop_kernel(a, lut, c[pos:pos + a.size])
            pos += a.size
            del a
        if merged is None:
            merged, mseg = c, seg.copy()
            continue
        out = np.empty(merged.size + c.size, dtype=dt)
        new_seg = np.empty_like(mseg)
        _merge_kernel(merged, mseg, c, seg, out, new_seg)
        merged, mseg = out, new_seg
    return merged, mseg


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
