"""One pass over the events of one or several cameras -> compact cubes.

:func:`compact_cubes` reads every event chunk of every camera once (all
chunks in one ``dask.compute``) and fills any number of runs at the same
time: a run is a time axis and an energy band (:class:`Run`), so the whole
parameter grid of a transient search (e.g. 5/50/200 s x three bands) shares
the pass. Per chunk, one call of a numba kernel reads the events block by
block: each selected event's sky cell is computed once per distinct sky
grid, then every run takes the block's events of its band (frame, CCD
count, cell). Memory: the output cells (2-4 bytes per event and run) and,
per chunk in flight, its columns and the runs' cells twice.
"""
from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass

import numba
import numpy as np

from .. import _numba_cache  # noqa: F401 (numba's cache: a failure warns instead of failing)
from .. import gti as gtimod
from ..hygiene import BLOCK_EVENTS, merge_stats
from ..io.chunking import event_blocks
from ..io.events import combined_labels
from ..io.memmap import fusable_sources, read_columns
from ..missions import profile_of
from ..scheduler import compute, thread_map
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
    # the runs' cubes are independent (each empties its own lists of chunks): assembled on the thread pool
    return thread_map(lambda kr: _assemble(kr[0], kr[1], evs, specs, parts, crop), list(enumerate(runs)))


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
    sky_raw: bool  # every grid bins the x/y columns through integer lookup tables (else bin numbers per grid)
    luts: np.ndarray  # the grids' x and y lookup tables end to end (identity tables for bin numbers), int32
    grid_table: np.ndarray  # per grid: row of x/y, x table start, size, first value, the same for y, nx
    t_flat: np.ndarray  # the distinct frame edges end to end
    t_offsets: np.ndarray  # where each time axis starts in t_flat (one more entry: the end)
    cell_dtype: np.dtype  # dtype of the kernel's cells (of the largest grid)


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
    ccd_column = prof.ccd_variable if prof.ccd_variable in ev.variables else None  # (Chandra ACIS: ccd_id)
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
    t_edges = tuple(np.asarray(e, np.float64) for e in t_axes)
    return _Spec(tuple(sorted(need)), filt if filt else None, tuple(tests), tuple(base + lab for lab in labels),
                 run_b, run_t, run_m, t_edges, tuple(np.asarray(e, np.float64) for e in m_edges), mon, rules, run_g,
                 ccd_lo, n_ccd, ccd_column, *_sky_tables(rules), np.concatenate(t_edges),
                 np.concatenate([[0], np.cumsum([e.size for e in t_edges])]).astype(np.int64),
                 max((cell_dtype(gy.size * gx.size) for gy, gx in grids), key=lambda d: d.itemsize))


def _sky_tables(rules):
    """``(sky_raw, luts, grid_table)`` of :class:`_Spec` for the grids' ``rules``:
    the raw x/y columns through their lookup tables when every grid has
    them, else each grid's bin numbers (``Axis.index_of``, the same bins)
    through identity tables."""
    raw = all(r[2][0] is not None and r[3][0] is not None for r in rules)
    tables, table, start = [], np.zeros((len(rules), 8), np.int64), 0
    for g, (gy, gx, yrule, xrule) in enumerate(rules):
        if not raw:
            xrule, yrule = (np.arange(gx.size, dtype=np.int32), 0), (np.arange(gy.size, dtype=np.int32), 0)
        nx, ny = xrule[0].size, yrule[0].size
        table[g] = 0 if raw else g, start, nx, xrule[1], start + nx, ny, yrule[1], gx.size
        tables += [xrule[0], yrule[0]]
        start += nx + ny
    return raw, np.concatenate(tables).astype(np.int32), table


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
    blocks = ref.chunks[0]
    if spec.filter is not None and spec.filter.contextual:  # the hygiene's fixed blocks, whatever the chunks
        blocks = event_blocks(ref.shape[0])
    name = f"events-pass-{uuid.uuid4().hex[:16]}"
    sources = fusable_sources(arrays)
    if sources is not None:  # columns of one FITS table: each block's columns decoded in one pass over its rows
        ends = np.cumsum(blocks)
        layer = {(name, j): (_fused_chunk_task, spec, tuple(sources), int(ends[j] - blocks[j]), int(ends[j]))
                 for j in range(len(blocks))}
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[])
    else:
        arrays = [a if a.chunks[0] == blocks else a.rechunk((blocks,)) for a in arrays]
        layer = {(name, j): (_chunk_task, spec, *[(a.name, j) for a in arrays]) for j in range(len(blocks))}
        graph = HighLevelGraph.from_collections(name, layer, dependencies=arrays)
    return graph, [(name, j) for j in range(len(blocks))]


def _fused_chunk_task(spec, sources, start, stop):
    """:func:`_chunk_task` of rows ``start:stop`` of a FITS table
    (:func:`~xcube.io.memmap.read_columns`), decoded into this thread's
    scratch columns (:func:`_scratch`): the task's results hold none of them."""
    return _chunk_task(spec, *read_columns(sources, start, stop, out=_scratch(sources, stop - start)))


_SCRATCH = threading.local()


def _scratch(sources, n: int) -> list:
    """This thread's decode buffers for ``sources`` (one 1-D array of each
    column's dtype, ``n`` long), carved from one byte buffer reused from
    block to block: fresh arrays of a block's size (tens of MB) cost more in
    page faults than the decoding itself. One buffer per thread, of the
    largest block decoded (about 30 MB for an XMM event list's columns)."""
    sizes = [-(-n * np.dtype(c.dtype).itemsize // 64) * 64 for c in sources]  # (64-byte aligned slices)
    held = getattr(_SCRATCH, "buffer", None)
    if held is None or held.size < sum(sizes):
        held = _SCRATCH.buffer = np.empty(sum(sizes), np.uint8)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    return [held[o:o + n * np.dtype(c.dtype).itemsize].view(c.dtype) for o, c in zip(offsets, sources)]


# ---------------------------------------------------------------------- one chunk
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
        runs = _split_runs(spec, _pass_buffers(spec, np.zeros(nb, np.int64), fa, nfr), np.zeros(nr, np.int64))
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
    """Every run of one chunk in one call of :func:`_pass_kernel`; returns the
    runs' ``(cells, ncell, ccounts, ccd map)`` and whether times were unsorted."""
    if spec.sky_raw:  # integer columns read through the grids' lookup tables
        xs, ys = np.asarray(cols["x"])[None, :], np.asarray(cols["y"])[None, :]
    else:  # bin numbers per grid (-1 outside), read through identity tables; the extent of the values here
        xs = np.stack([g[1].index_of(cols["x"]).astype(np.int32) for g in spec.grids])
        ys = np.stack([g[0].index_of(cols["y"]).astype(np.int32) for g in spec.grids])
        _band_extent(code, np.asarray(cols["x"], np.float64), np.asarray(cols["y"], np.float64), ext)
    ccd = cols["ccdnr"] if spec.n_ccd > 0 else np.zeros(1, np.int16)
    cmap_ccd = cols[spec.ccd_column] if spec.ccd_column else np.zeros(1, np.int16)
    counts = np.array([np.count_nonzero(code & np.uint8(1 << b)) for b in range(len(spec.bands))], np.int64)
    bufs = _pass_buffers(spec, counts, fa, nfr)
    m = np.zeros(spec.run_b.size, np.int64)
    unsorted = _pass_kernel(t, code, xs, ys, spec.luts, spec.grid_table, ccd, spec.ccd_lo, spec.n_ccd, cmap_ccd,
                            spec.t_flat, bufs[-1], *bufs[:-1], ext, spec.sky_raw, m, outside)
    return _split_runs(spec, bufs, m), unsorted


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


_BLOCK = 1024  # events per block of the pass kernel (its per-block arrays stay in the L1/L2 cache)
# columns of the kernel's run table
_BAND, _EDGE0, _NEDGE, _GRID, _FA, _NFR, _CELL0, _ROW0, _MAP0, _EXT = range(10)


def _pass_buffers(spec: _Spec, band_counts, fa, nfr):
    """The outputs of every run of one chunk, end to end: cells (room for
    every event of the run's band, ``band_counts``), counts per frame and per
    frame and CCD (a row per frame of each run), the per-cell CCD bit maps
    (one per sky grid and band, made by its first run, when there is a CCD
    column),
    and the kernel's run table (a row per run, columns ``_BAND``...``_EXT``:
    band, first edge and number of edges of its time axis in ``t_flat``, sky
    grid, first frame and number of frames touched, first cell in the cells
    buffer, first row in the frame buffers, first slot of its CCD map (-1:
    none), 1 when it takes its band's extent)."""
    nr = spec.run_b.size
    tab = np.zeros((nr, 10), np.int64)
    tab[:, _BAND], tab[:, _GRID] = spec.run_b, spec.run_g
    tab[:, _EDGE0] = spec.t_offsets[spec.run_t]
    tab[:, _NEDGE] = spec.t_offsets[spec.run_t + 1] - spec.t_offsets[spec.run_t]
    tab[:, _FA], tab[:, _NFR] = fa[spec.run_t], nfr[spec.run_t]
    caps = band_counts[spec.run_b]
    tab[1:, _CELL0], tab[1:, _ROW0] = np.cumsum(caps)[:-1], np.cumsum(tab[:, _NFR])[:-1]
    tab[np.unique(spec.run_b, return_index=True)[1], _EXT] = 1
    tab[:, _MAP0] = -1
    size = 0
    for r in _map_runs(spec):  # a map per sky grid and band: a cell's CCDs as the run's own events show them
        gy, gx = spec.grids[spec.run_g[r]][:2]
        if spec.ccd_column and gy.size * gx.size > 1:
            tab[r, _MAP0] = size
            size += gy.size * gx.size
    rows = int(tab[:, _NFR].sum())
    return (np.empty(int(caps.sum()), spec.cell_dtype), np.zeros(rows, np.int64),
            np.zeros((rows, max(spec.n_ccd, 1)), np.int64), np.zeros(size, np.uint32), tab)


def _map_runs(spec: _Spec) -> np.ndarray:
    """The runs that make a CCD map: the first of each (sky grid, band)."""
    return np.unique(np.column_stack([spec.run_g, spec.run_b]), axis=0, return_index=True)[1]


def _map_run_of(spec: _Spec, k: int) -> int:
    """The run whose CCD map run ``k`` takes: the first on its sky grid with its band."""
    return int(np.flatnonzero((spec.run_g == spec.run_g[k]) & (spec.run_b == spec.run_b[k]))[0])


def _split_runs(spec: _Spec, bufs, m):
    """Per run ``(cells, ncell, ccounts, ccd map)`` from the buffers of
    :func:`_pass_buffers` (``m`` cells written per run; a map of one slot for
    the runs that do not make one)."""
    out, ncell, ccounts, cmap, tab = bufs
    runs = []
    for r in range(tab.shape[0]):
        c0, f0, g = tab[r, _CELL0], tab[r, _ROW0], spec.run_g[r]
        gy, gx = spec.grids[g][:2]
        # a copy when there are several runs: each run's cells are then released when its cube is made
        cells = out[c0:c0 + m[r]].astype(cell_dtype(gy.size * gx.size), copy=tab.shape[0] > 1)
        cm = (cmap[tab[r, _MAP0]:tab[r, _MAP0] + gy.size * gx.size] if tab[r, _MAP0] >= 0
              else np.zeros(1, np.uint32))
        runs.append((cells, ncell[f0:f0 + tab[r, _NFR]], ccounts[f0:f0 + tab[r, _NFR]], cm))
    return runs


@numba.njit(inline="always")
def _lookup(v, luts, start, size, lo):  # pragma: no cover - compiled
    j = np.int64(v) - lo
    if j < 0 or j >= size:
        return -1
    return np.int64(luts[start + j])


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
def _pass_kernel(time, code, xs, ys, luts, grids, ccd, ccd_lo, n_ccd, cmap_ccd, edges, runs, out, ncell, ccounts,
                 cmap, ext, ext_values, m, outside):  # pragma: no cover - compiled
    """Every run of the pass over one chunk, reading each event once.

    Block by block of events (``_BLOCK``): the block's events of each band
    (bit b of ``code``) are listed, every event gets its cell ``iy * nx +
    ix`` on each sky grid (row of ``grids``: row of ``xs``/``ys``, start,
    size and first value of the x then the y lookup table in ``luts``, nx;
    -1 outside), then each run (row of ``runs``, see :func:`_pass_buffers`)
    takes the listed events of its band (:func:`_serve_run`). With
    ``ext_values``, ``ext`` (bands, 4) becomes each band's extent of the
    ``xs``/``ys`` values. Returns whether times were found unsorted (within
    a band, or beyond the chunk's frames)."""
    nb = ext.shape[0]
    sel = np.empty((nb, _BLOCK), np.int64)  # per band: the block's events
    cnt = np.zeros(nb, np.int64)
    cells = np.empty((grids.shape[0], _BLOCK), np.int64)  # by position in the block
    f = runs[:, _FA].copy()  # each run's current frame
    prev = np.full(runs.shape[0], -np.inf)  # each run's last time
    map_mask = 7 if time.size > (1 << 20) else 0
    unsorted = False
    for s in range(0, time.size, _BLOCK):
        e = min(s + _BLOCK, time.size)
        for b in range(nb):  # without branches: every index is written, the count grows when the bit is set
            k = 0
            for i in range(s, e):
                sel[b, k] = i
                k += (code[i] >> b) & 1
            cnt[b] = k
        _cell_block(xs, ys, luts, grids, s, e, cells)
        for r in range(runs.shape[0]):
            b = runs[r, _BAND]
            unsorted |= _serve_run(runs, r, time, edges, sel[b], cnt[b], s, cells[runs[r, _GRID]], ccd, ccd_lo,
                                   n_ccd, f, prev, m, xs, ys, ext[b], ext_values and runs[r, _EXT] > 0, out, ncell,
                                   ccounts, outside, cmap, cmap_ccd, map_mask)
    return unsorted


@numba.njit(inline="always")
def _cell_block(xs, ys, luts, grids, s, e, cells):  # pragma: no cover - compiled
    """Cell of the events ``s:e`` on each grid (-1 outside), by position in the block."""
    for g in range(grids.shape[0]):
        row, x0, xn, xlo, y0, yn, ylo, nx = (grids[g, 0], grids[g, 1], grids[g, 2], grids[g, 3], grids[g, 4],
                                            grids[g, 5], grids[g, 6], grids[g, 7])
        for i in range(s, e):
            ix = _lookup(xs[row, i], luts, x0, xn, xlo)
            iy = _lookup(ys[row, i], luts, y0, yn, ylo)
            cells[g, i - s] = iy * nx + ix if ix >= 0 and iy >= 0 else -1


@numba.njit(inline="always")
def _serve_run(runs, r, time, edges, idx, n, s, cells, ccd, ccd_lo, n_ccd, f, prev, m, xs, ys, ext, do_ext, out,
               ncell, ccounts, outside, cmap, cmap_ccd, map_mask):  # pragma: no cover - compiled
    """Run ``r`` (row ``r`` of ``runs``) takes the events ``idx[:n]`` of its
    band in the block starting at event ``s`` (``cells`` by position in the
    block): each one inside its frames (``edges``) adds one to its frame's
    CCD count (``ccounts``) and its cell to the run's part of ``out`` and to
    its frame's count (``ncell``), or one to ``outside`` when its cell is -1.
    ``f``, ``prev``, ``m``: each run's current frame, last time and cells
    so far. A run with a map sets the cell's bit ``cmap_ccd % 32`` in
    ``cmap`` (from every 8th counted event when ``map_mask`` is 7). With
    ``do_ext`` the events' x/y values extend ``ext`` (4,). Returns True when
    the times are not sorted."""
    e0, fa, nfr, row0, c0, map0 = runs[r, _EDGE0], runs[r, _FA], runs[r, _NFR], runs[r, _ROW0], runs[r, _CELL0], \
        runs[r, _MAP0]
    lo, hi = edges[e0], edges[e0 + runs[r, _NEDGE] - 1]
    n_ccd1 = max(n_ccd, 1)
    fr, mr, tp, unsorted = f[r], m[r], prev[r], False
    row, m_row = row0 + fr - fa, mr  # the frame being filled and the cells before it
    x0, x1, y0, y1 = ext[0], ext[1], ext[2], ext[3]
    nxt = edges[e0 + fr + 1] if nfr else lo  # no frame of the chunk: any event in the frames is unsorted
    counts = ccounts[row] if nfr else np.zeros(n_ccd1, np.int64)
    for j in range(n):
        i = idx[j]
        t = time[i]
        unsorted |= t < tp
        tp = t
        if do_ext:
            xv, yv = np.float64(xs[0, i]), np.float64(ys[0, i])
            x0, x1, y0, y1 = min(x0, xv), max(x1, xv), min(y0, yv), max(y1, yv)
        if not (t >= lo and t < hi):
            continue
        if t >= nxt:  # a later frame
            while t >= edges[e0 + fr + 1]:
                fr += 1
            nxt = edges[e0 + fr + 1]
            if fr - fa >= nfr:  # beyond the chunk's last event time: not sorted (the pass fails)
                unsorted = True
                break
            if mr > m_row:
                ncell[row] += mr - m_row
            row, m_row = row0 + fr - fa, mr
            counts = ccounts[row]
        k = np.int64(ccd[i]) - ccd_lo if n_ccd > 0 else 0
        if k >= 0 and k < n_ccd1:
            counts[k] += 1
        cl = cells[i - s]
        if cl < 0:
            outside[r] += 1
            continue
        out[c0 + mr] = cl
        mr += 1
        if map0 >= 0 and (mr & map_mask) == 0:  # every (map_mask + 1)-th event is enough to see a cell's CCDs
            cmap[map0 + cl] |= np.uint32(1) << np.uint32(np.int64(cmap_ccd[i]) & 31)
    if mr > m_row:
        ncell[row] += mr - m_row
    f[r], m[r], prev[r] = fr, mr, tp
    if do_ext:
        ext[0], ext[1], ext[2], ext[3] = x0, x1, y0, y1
    return unsorted


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
    cells, seg, per_camera = _merge([p[0][k][0] for p in parts], [p[0][k][1] for p in parts], (y.size, x.size),
                                    y0, x0, ya.size, xa.size)
    m = [int(s.run_m[k]) for s in specs]
    monitor = None
    if run.monitor_edges is not None:
        counts = [p[1][mi] if mi >= 0 and p[1] else np.zeros(run.monitor_edges.size - 1, np.int64)
                  for p, mi in zip(parts, m)]
        monitor = Monitor(np.asarray(run.monitor_edges, np.float64), counts,
                          [gtimod.from_dataset(ev) for ev in evs])
    attrs = dict(evs[0].attrs)
    attrs["selection"] = list(attrs.get("selection", [])) + list(specs[0].labels[b[0]])
    if len(evs) > 1:  # the merged cameras' labels name them all, not the first one's
        attrs.update(combined_labels(evs))
    cams = tuple({"profile": profile_of(ev).name, "source": str(ev.attrs.get("source", "")),
                  "gti": gtimod.from_dataset(ev), "datamode": ev.attrs.get("datamode"),
                  "submode": ev.attrs.get("submode")} for ev in evs)
    common = gtimod.intersection(*[c["gti"] for c in cams])
    firsts = [_map_run_of(s, k) for s in specs]  # the run that made each camera's map of this grid and band
    maps = [None if p[0][f][3] is None else p[0][f][3].reshape(y.size, x.size)[y0:y1, x0:x1].copy()
            for p, f in zip(parts, firsts)]
    return CompactCube(cells, seg, run.time, ya, xa, attrs=attrs, gti=common, cameras=cams,
                       ccd_counts=[p[0][k][2] for p in parts], monitor=monitor, extent=extent,
                       n_outside=int(sum(p[3][k] for p in parts)), ccd_map=maps, camera_counts=per_camera,
                       filter_stats=[dict(p[4]) for p in parts])


def _merge(cell_lists, segs, full_shape, y0, x0, ny, nx):
    """Crop every camera's full-grid cells to the (ny, nx) grid starting at
    cell (y0, x0), then merge the cameras frame by frame (the sum of their
    cubes). Cells outside the crop cannot occur: the crop holds all of them.
    The chunk arrays of ``cell_lists`` are consumed (the lists emptied).
    Returns ``(cells, seg, per_camera)``: with several cameras, each one's
    counts per cell ((ny, nx) int64, summed over the frames), else None."""
    dt = cell_dtype(nx * ny)
    iy, ix = np.divmod(np.arange(full_shape[0] * full_shape[1], dtype=np.int64), full_shape[1])
    inside = (iy >= y0) & (iy < y0 + ny) & (ix >= x0) & (ix < x0 + nx)
    lut = np.where(inside, (iy - y0) * nx + (ix - x0), 0).astype(dt)  # full-grid cell -> cropped cell
    merged, mseg, per_camera = None, None, []
    for parts, seg in zip(cell_lists, segs):
        c = np.empty(sum(a.size for a in parts), dtype=dt)
        pos = 0
        while parts:  # crop chunk by chunk into the camera's array, releasing each chunk (memory: one copy)
            a = parts.pop(0)
            _crop_kernel(a, lut, c[pos:pos + a.size])
            pos += a.size
            del a
        if len(cell_lists) > 1:
            per_camera.append(np.bincount(c, minlength=ny * nx).reshape(ny, nx))
        if merged is None:
            merged, mseg = c, seg.copy()
            continue
        out = np.empty(merged.size + c.size, dtype=dt)
        new_seg = np.empty_like(mseg)
        _merge_kernel(merged, mseg, c, seg, out, new_seg)
        merged, mseg = out, new_seg
    return merged, mseg, (per_camera or None)


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
