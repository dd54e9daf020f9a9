"""``bin_events``: event list -> lazy counts cube over (time, energy, y, x).

How the work is cut
-------------------
* With a time axis, the event chunks are cut at time-bin boundaries. One
  small eager pass finds, in each event chunk, where every time bin starts
  (a binary search on the sorted times, exact in the axis rule). Each output
  time chunk then depends on exactly one contiguous slice of events, spread
  over the one or few input chunks that hold it, and is filled by a numba
  kernel into a fresh slab; the slab *is* the output chunk. No cross-chunk
  reduction, so memory is one output chunk plus its input chunks.
* Without a time axis (images, spectra) every input chunk gives a partial
  histogram and Dask sums them in a tree reduction.
"""
from __future__ import annotations

import functools
import logging
import math
import operator
import os
import warnings
from dataclasses import dataclass
from numbers import Real
from typing import Mapping

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from .. import gti as gtimod
from .._version import __version__
from ..io.chunking import EVENT_CHUNK
from ..io.memmap import fusable_sources, read_columns
from ..missions import profile_of
from ..scheduler import compute, thread_map
from . import kernels
from .axes import LUT_MAX, Axis, energy_axis, finite_offset, integer_lut, sky_axis, time_axis
from .memory import available_bytes as _available_bytes
from .memory import check_size
from .sky import RADEC_LAZY_PEAK_BYTES_PER_CELL, RADEC_PEAK_BYTES_PER_CELL, cell_radec, cell_wcs_keywords, radec_is_lazy

__all__ = ["bin_events", "label_cube", "check_size", "DEFAULT_CHUNK_BYTES"]

log = logging.getLogger("xcube.binning")

DEFAULT_CHUNK_BYTES = 256 * 2**20  # target size of one output chunk
_ROLES = ("time", "energy", "y", "x")
_OBS_ATTRS = ("mission", "instrument", "profile", "obs_id", "object", "mjdref", "timesys", "tstart", "tstop",
              "datamode", "submode", "ra_pnt", "dec_pnt", "pa_pnt", "expid", "filter", "timeref")


# ---------------------------------------------------------------------- axis arguments
def _offset_for(offset, dim) -> float:
    """The ``offset`` [bins] of axis ``dim``: a number, or a mapping ``{dim:
    offset}`` (0 for the dims it leaves out); ``ValueError`` naming the offset
    and the axis when it is not a finite number."""
    if isinstance(offset, Mapping):
        unknown = set(offset) - set(_ROLES)
        if unknown:
            raise ValueError(f"offset: unknown dims {sorted(unknown)}; use {list(_ROLES)}")
        offset = offset.get(dim, 0.0)
    return finite_offset(dim, 0.0 if offset is None else offset)


_UNITS = {"time": "s", "energy": "keV", "y": "sky pixels", "x": "sky pixels"}


def _make_axis(role, spec, events, *, offset, t0, size_arcsec) -> Axis | None:
    """Turn one ``bin_events`` axis argument into an Axis (or None)."""
    off = _offset_for(offset, role)
    if role in ("x", "y") and size_arcsec is not None:
        if spec is not None and not isinstance(spec, Mapping):
            raise ValueError(f"give either size_arcsec or {role}=, not both (got {role}={spec!r})")
        spec = dict(spec or {}, size_arcsec=size_arcsec)
    if role == "time" and t0 is not None:
        if spec is None:
            raise ValueError("t0 needs a time axis: give time=<bin width [s]> too")
        if isinstance(spec, Axis) or (not isinstance(spec, (Mapping, Real)) and spec is not None) or \
                (isinstance(spec, Mapping) and spec.get("edges") is not None):
            raise ValueError("t0 applies to a time axis built from a width or number of bins, not to explicit edges")
    if spec is None:
        return None
    if isinstance(spec, Axis):
        if spec.name in _ROLES and spec.name != role:
            raise ValueError(f"axis {spec.name!r} passed as {role}=; pass it as {spec.name}=")
        return spec

    def bad_spec():  # formatted only on failure: the repr of a long array of edges costs a millisecond
        return ValueError(f"{role}={spec!r}: expected a bin width [{_UNITS[role]}], an array of edges, a dict of "
                          "axis options or an Axis")

    if isinstance(spec, (bool, str, bytes)):
        raise bad_spec()
    if isinstance(spec, Real):
        kw = {"width": spec}
    elif isinstance(spec, Mapping):
        kw = dict(spec)
    else:
        try:
            kw = {"edges": np.asarray(spec, dtype=np.float64)}
        except (TypeError, ValueError):
            raise bad_spec() from None
    if off and "offset" not in kw and kw.get("edges") is None:
        kw["offset"] = off
    if role == "time":
        if t0 is not None:
            kw.setdefault("t0", t0)
        return time_axis(events, **kw)
    if role == "energy":
        from ..select import energy_band_bounds

        ax = energy_axis(events=events, **kw)
        # as select(energy_band=...): no energy scale, or a range wholly beyond the instrument's, is an error
        hi = float(ax.meta.get("closed_hi", ax.edges[-1]))  # (the range asked for: a last bin may reach beyond)
        energy_band_bounds(events, (max(float(ax.edges[0]), 0.0), hi), need_column=False)
        return ax
    return sky_axis(events, role, **kw)


# ---------------------------------------------------------------------- columns
def _column(events, axis: Axis) -> da.Array:
    name = axis.column
    if name not in events.variables or events[name].dims != ("event",):
        cols = [k for k, v in events.variables.items() if v.dims == ("event",)]
        raise KeyError(f"{events.attrs.get('source', 'events')}: no event column {name!r} to bin axis "
                       f"{axis.name!r} on (columns: {cols})")
    data = events[name].data
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=(EVENT_CHUNK,))
    return data


def _harmonise(cols: dict) -> dict:
    """Give every column the chunks of the first one (they normally already match)."""
    arrays = [c for c in cols.values() if c is not None]
    if not arrays:
        return cols
    ref = arrays[0]
    out = {}
    for k, c in cols.items():
        if c is None or c.chunks == ref.chunks:
            out[k] = c
            continue
        if any(math.isnan(s) for s in ref.chunks[0] + c.chunks[0]):
            raise ValueError(
                f"event columns have different chunks of unknown size ({k!r}); call "
                "events.compute_chunk_sizes() or persist the selection before binning"
            )
        out[k] = c.rechunk(ref.chunks)
    return out


def _linear_pi(axis: Axis, events):
    """The mission profile when the energy axis can bin the PI column
    instead (a linear PI-to-energy conversion, an ``energy`` axis, a ``pi``
    column), else None."""
    if axis.column != "energy" or "pi" not in events.variables:
        return None
    prof = profile_of(events)
    return prof if getattr(prof.pi_to_kev, "kev_per_channel", None) is not None else None


def _channel_edges(axis: Axis, prof) -> np.ndarray:
    """The axis' energy edges as PI channels ``(edge - offset) / gain``,
    rounded to 1e-6 channel so that, e.g., XMM channel 700 is exactly 0.7 keV
    (the float32 ``energy`` column would put it just below); the channel of a
    closed range's upper end (``meta["closed_hi"]``, :meth:`Axis.covering`)
    stays inside."""
    c = np.round(prof.pi_for_energy(axis.edges), 6)
    if axis.meta.get("closed_hi", np.inf) <= axis.edges[-1]:  # a closed range: its upper end's channel is in,
        top = np.round(prof.pi_for_energy(np.array([axis.meta["closed_hi"]])), 6)[0]  # though rounded: an edge
        if c[-1] <= top:
            c[-1] = np.nextafter(top, np.inf)
    return c


def _energy_pi_axis(axis: Axis, events) -> Axis | None:
    """For a float PI column (eROSITA) with a linear conversion: the energy
    axis as explicit edges on the PI channels (:func:`_channel_edges`), so
    that a PI on a band edge lands where :func:`xcube.select` puts it; else None."""
    prof = _linear_pi(axis, events)
    if prof is None or np.issubdtype(events["pi"].dtype, np.integer):
        return None
    return Axis.from_edges(axis.name, _channel_edges(axis, prof), column="pi")


def _energy_channel_lut(axis: Axis, events):
    """Lookup table PI channel -> energy bin for an integer PI column, or
    None when binning the energy column. Channel ``p`` is in bin ``[lo, hi)``
    when ``lo <= E(p) < hi`` for the profile's linear conversion ``E(p) =
    offset + gain * p``, on the edges of :func:`_channel_edges`.
    """
    prof = _linear_pi(axis, events)
    if prof is None or not np.issubdtype(events["pi"].dtype, np.integer):
        return None
    c = _channel_edges(axis, prof)
    p0 = max(int(math.floor(c[0])), int(prof.pi_range[0]), 0)
    p1 = min(int(math.ceil(c[-1])), int(prof.pi_range[1]))
    if p1 < p0 or p1 - p0 + 1 > LUT_MAX:
        return None
    ch = np.arange(p0, p1 + 1, dtype=np.float64)
    k = np.searchsorted(c, ch, side="right") - 1
    lut = np.where((k >= 0) & (k < axis.size), k, -1).astype(np.int32)
    return lut, p0


def _integer_divisor(axis: Axis, dtype):
    """For an integer column on a regular axis of integer width: ``(first
    integer in bin 0, (m, s))`` of the exact multiply-shift division. For an
    integer ``v`` and a lower edge ``lo`` (whole, or not: the half-integer
    edges of sky grids), ``floor((v - lo) / w) == (v - ceil(lo)) // w``."""
    if not (np.issubdtype(dtype, np.integer) and axis.is_regular):
        return None
    lo = axis.origin + axis.first * axis.width
    w = axis.width
    if w != round(w) or abs(lo) > 2**52 or lo != axis.edges[0]:
        return None
    md = kernels.exact_divisor(int(w), int(w) * axis.size)
    return None if md is None else (int(math.ceil(lo)), md)


@dataclass(frozen=True, eq=False)
class _Spec:
    """Everything a chunk task needs besides its event blocks (static, picklable)."""

    modes: tuple  # (me, my, mx)
    params: tuple  # kernel parameter tuples for (e, y, x)
    cell_shape: tuple  # (ne, ny, nx), 1 for absent axes
    out_shape: tuple  # cell shape without absent axes
    acc: np.dtype
    dtype: np.dtype


def _finish(slab: np.ndarray, spec: _Spec, nt: int | None) -> np.ndarray:
    out = slab.reshape(((nt,) if nt is not None else ()) + spec.out_shape)
    return _cast(out, spec.dtype)


def _cast(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if arr.dtype == dtype:
        return arr
    if arr.size:
        top = int(arr.max())
        if top > np.iinfo(dtype).max:
            raise OverflowError(
                f"a bin holds {top} counts, more than {np.dtype(dtype).name} can hold; use dtype='int32'"
            )
    return arr.astype(dtype)


def _run(spec: _Spec, slab, seg, blocks):
    kern = kernels.fill_kernel(spec.modes)
    dummy = kernels.EMPTY_F
    e, y, x = (blocks.get(r, dummy) for r in ("energy", "y", "x"))
    kern(slab, seg, e, spec.params[0], y, spec.params[1], x, spec.params[2])


def _cube_task(spec: _Spec, seg, offsets, lengths, roles, threads, *blocks):
    """Fill one output time chunk from the event blocks holding its events,
    on ``threads`` threads (each a range of time bins of about equal counts)."""
    nt = seg.size - 1
    slab = np.zeros((nt,) + spec.cell_shape, dtype=spec.acc)
    if not roles:  # no per-event axis: counts per time bin are the slice lengths
        kernels.fill_kernel((0, 0, 0))(slab, seg - seg[0], kernels.EMPTY_F, spec.params[0],
                                       kernels.EMPTY_F, spec.params[1], kernels.EMPTY_F, spec.params[2])
        return _finish(slab, spec, nt)
    nr = len(roles)

    def fill(t0, t1):
        for b, (off, n) in enumerate(zip(offsets, lengths)):
            local = np.clip(seg[t0:t1 + 1] - off, 0, n)
            if local[-1] > local[0]:
                _run(spec, slab[t0:t1], local, {r: blocks[b * nr + i] for i, r in enumerate(roles)})

    cuts = np.unique(np.searchsorted(seg, np.linspace(seg[0], seg[-1], threads + 1)[1:-1]).clip(0, nt))
    bounds = list(zip(np.r_[0, cuts], np.r_[cuts, nt]))
    thread_map(lambda b: fill(*b), bounds)
    return _finish(slab, spec, nt)


def _partial_task(spec: _Spec, roles, *blocks):
    """Histogram of one event block (no time axis), shape ``(1, *out_shape)``."""
    n = len(blocks[0])
    slab = np.zeros((1,) + spec.cell_shape, dtype=spec.acc)
    _run(spec, slab, np.array([0, n], dtype=np.int64), dict(zip(roles, blocks)))
    return slab.reshape((1,) + spec.out_shape)


def _zeros_task(shape, dtype):
    return np.zeros(shape, dtype=dtype)


# ---------------------------------------------------------------------- time positions (eager)
def in_memory_blocks(arr: da.Array):
    """The blocks of a 1-D Dask array that is already in memory (persisted,
    or made with ``from_array`` of a numpy array), as numpy arrays in order;
    None when computing them needs work."""
    if arr.ndim != 1:
        return None
    graph = arr.__dask_graph__()
    out = []
    for key in arr.__dask_keys__():
        v = graph.get(key)
        v = getattr(v, "value", v)  # a DataNode holding the array
        if not isinstance(v, np.ndarray):
            return None
        out.append(v)
    return out


def _global_positions(time_col: da.Array, axis: Axis):
    """Eager: event index where each time bin starts, ``P`` (n + 1), plus the
    block offsets and lengths of the time column."""
    find = functools.partial(kernels.time_positions, axis=axis)  # a partial: dask does not unpack the Axis
    blocks = in_memory_blocks(time_col)
    if blocks is not None:  # persisted or numpy-backed: no scheduler round trip for a few binary searches
        res = [find(b) for b in blocks]
    else:
        name = f"time-positions-{dask.base.tokenize(time_col.name, axis.edges, axis.first)}"
        nb = time_col.numblocks[0]
        layer = {(name, j): (find, (time_col.name, j)) for j in range(nb)}
        layer[name] = (list, [(name, j) for j in range(nb)])
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[time_col])
        res = compute(Delayed(name, graph))[0]
    n = axis.size
    P = np.zeros(n + 1, dtype=np.int64)
    diff = np.zeros(n + 2, dtype=np.int64)
    lengths = np.array([r[2] for r in res], dtype=np.int64)
    ends = np.array([(r[3], r[4]) for r in res if r[2] > 0]).reshape(-1, 2)
    if np.any(ends[1:, 0] < ends[:-1, 1]):
        raise ValueError("events are not time-sorted across chunks; binning needs sorted times "
                         "(xcube.open_events sorts on load; sort a hand-made EventList with events.sortby('time'))")
    for ka, pos, m, _, _ in res:
        if m == 0:
            continue
        kb = ka + pos.size - 1
        P[ka : kb + 1] += pos
        diff[kb + 1] += m
    P += np.cumsum(diff)[: n + 1]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return P, offsets, lengths


#: events [count] one output chunk of a cube reads at most, on average (its input blocks are held until it
#: runs: 8-16 bytes per event for the binned columns); longer observations get more chunks along time
CHUNK_EVENTS = 1 << 24


def _time_chunk(axis_t: Axis, cell_bytes: int, n_events: int, chunk_bytes: int) -> int:
    """Time bins per output chunk: at most ``chunk_bytes`` of counts and, on
    average, :data:`CHUNK_EVENTS` events (so that the memory of the input
    blocks a chunk holds does not grow with the observation). A cube that
    needs fewer chunks than there are CPUs is filled by several threads per
    chunk (see :func:`_cube_task`); a single chunk is computed without a
    copy (see :func:`_fresh_block_postcompute`)."""
    nt = axis_t.size
    by_mem = max(1, chunk_bytes // max(cell_bytes, 1))
    by_events = -(-nt // max(1, -(-int(n_events) // CHUNK_EVENTS)))  # ceil(nt / ceil(n_events / CHUNK_EVENTS))
    return int(max(1, min(nt, by_mem, by_events)))


# ---------------------------------------------------------------------- public entry
def bin_events(
    events,
    time=None,
    energy=None,
    y=None,
    x=None,
    *,
    t0: float | None = None,
    size_arcsec: float | None = None,
    offset: float | Mapping = 0.0,
    dtype="int32",
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    compute: bool = False,
) -> xr.DataArray:
    """Bin an EventList into a counts cube (lazy ``xr.DataArray`` named ``counts``).

    Parameters
    ----------
    events : EventList (time-sorted ``xr.Dataset`` with dim ``event``).
    time, energy, y, x : each axis, or None to leave it out. A number is the
        bin width (time [s], energy [keV], y/x [sky pixels]); an array gives
        explicit edges; a dict passes options to :func:`~xcube.binning.time_axis`,
        :func:`~xcube.binning.energy_axis` or :func:`~xcube.binning.sky_axis`
        (e.g. ``time={"nbins": 100}``, ``x={"width": 80, "range": (2e4, 3e4)}``);
        an :class:`~xcube.binning.Axis` is used as is.
    t0 : start of the time axis [s] (default: the first GTI start); the axis
        ends at the last GTI stop, keeping the trailing partial bin.
    size_arcsec : spatial bin size [arcsec] for both y and x (converted with
        the event WCS pixel scale); default range: the columns' TLMIN/TLMAX.
    offset : shift, in bins, of every axis built from a width or a number of
        bins (``0.5``: half-bin shifted grid), or a mapping ``{dim: offset}``.
    dtype : integer dtype of the counts (default ``int32``; ``uint16`` halves
        memory, and a chunk whose counts overflow it raises ``OverflowError``).
    chunk_bytes : target size of one output time chunk [bytes] (default 256 MiB).
    compute : return an in-memory cube instead, after refusing (``ValueError``,
        with the size) one that would not fit in the available memory.

    Returns
    -------
    ``xr.DataArray`` ``counts`` with dims in the order (time, energy, y, x) for
    the axes given; coordinates: bin centres, ``<dim>_lo``/``<dim>_hi`` edges
    (every bin half-open ``[lo, hi)``, the last one too), along time
    ``exposure`` [s of GTI in the bin] and ``fracexp`` (exposure / bin width),
    and with regular y and x axes ``ra``/``dec`` [deg] of every cell centre
    (numpy arrays up to ``sky.RADEC_EAGER_CELLS`` cells, lazy Dask arrays
    computed in row bands above: :func:`xcube.binning.sky.cell_radec`).
    attrs: ``units="count"``, provenance (``source``, ``selection``, ``binning``,
    ``xcube_version``), observation attrs and the cell-grid WCS keywords.

    Laziness: the counts are a Dask array chunked along time only (chunk size
    chosen from ``chunk_bytes`` and the event rate). Computed eagerly: the axes,
    coordinates and exposure (small; the ra/dec of a big grid stay lazy), and,
    with a time axis, one pass over the ``time`` column that finds where each
    time bin starts in every event chunk.

    Raises ``ValueError`` for a non-positive bin width, a time range outside the
    GTIs, coordinates/chunks too big for memory, or times found unsorted (a
    cheap check of chunk boundaries and every 1024th event); an empty event
    list gives zero counts and a warning.
    """
    if not isinstance(events, xr.Dataset) or "event" not in events.dims:
        raise TypeError("bin_events needs an EventList: an xarray Dataset with dimension 'event' (xcube.open_events)")
    specs = {"time": time, "energy": energy, "y": y, "x": x}
    if size_arcsec is not None and x is None and y is None:
        specs["x"] = specs["y"] = None
    axes = {}
    for role in _ROLES:
        ax = _make_axis(role, specs[role], events, offset=offset, t0=t0, size_arcsec=size_arcsec)
        if ax is not None:
            axes[role] = ax
    if not axes:
        raise ValueError("bin_events: give at least one axis: time= [s], energy= [keV], y=/x= [sky pixels] or "
                         "size_arcsec= [arcsec] for both y and x")
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer):
        raise ValueError(f"dtype must be an integer dtype for counts, got {dtype}")
    acc = np.dtype(np.int64) if dtype.itemsize == 8 else np.dtype(np.int32)
    ax_t = axes.get("time")

    # refuse, before allocating anything, an eager cube or coordinates that would not fit
    if compute:
        check_size(tuple(axes[r].size for r in _ROLES if r in axes), dtype, what="cube")
    coord_bytes = sum(5 * 8 * a.size for a in axes.values())
    avail = _available_bytes()
    if "x" in axes and "y" in axes:  # the (y, x) ra/dec coordinates dominate
        ny, nx = axes["y"].size, axes["x"].size
        hint = f"{ny} x {nx} cells: use larger sky cells (x=, y= or size_arcsec=) or a smaller x/y range"
        if radec_is_lazy(ny, nx):  # Dask ra/dec by row bands: nothing now, 16 B/cell (and a band or two) if computed
            check_size((RADEC_LAZY_PEAK_BYTES_PER_CELL // 8, ny, nx), np.float64, limit=avail // 2,
                       what="the ra/dec coordinates of the sky cells, with the temporaries of computing them,",
                       hint=hint + " (they are lazy, but would not fit once computed)")
        else:  # computed now: bound the transient peak (pixel grids, astropy temporaries), not only the result
            coord_bytes += 16 * nx * ny
            check_size((RADEC_PEAK_BYTES_PER_CELL // 8, ny, nx), np.float64, limit=avail // 8, hint=hint,
                       what="the ra/dec coordinates of the sky cells, with the temporaries of computing them,")
    check_size((coord_bytes,), np.uint8, what="cube coordinates", limit=avail // 8,
               hint="use wider bins or a smaller range")

    # per-event axes: modes, kernel params, columns
    roles, cols, params, modes = [], {}, [], []
    for role in ("energy", "y", "x"):
        ax = axes.get(role)
        if ax is None:
            params.append(kernels.axis_params())
            modes.append(kernels.NONE)
            continue
        if role == "energy":
            ax = _energy_pi_axis(ax, events) or ax
        lut = _energy_channel_lut(ax, events) if role == "energy" else None
        mul = None
        if lut is not None:
            col = _column(events, Axis.from_edges(ax.name, ax.edges, column="pi"))
        else:
            col = _column(events, ax)
            mul = _integer_divisor(ax, col.dtype)
            lut = None if mul is not None else integer_lut(ax, col.dtype)
        if mul is not None:
            mode = kernels.MUL
            p = kernels.axis_params(ax, mode, lut_lo=mul[0], mul=mul[1])
        elif lut is not None:
            mode = kernels.LUT
            p = kernels.axis_params(ax, mode, lut=lut[0], lut_lo=lut[1])
        else:
            mode = kernels.REGULAR if ax.is_regular else kernels.EDGES
            p = kernels.axis_params(ax, mode)
        roles.append(role)
        cols[role] = col
        params.append(p)
        modes.append(mode)
    cell_shape = tuple(axes[r].size if r in axes else 1 for r in ("energy", "y", "x"))
    out_cell = tuple(axes[r].size for r in ("energy", "y", "x") if r in axes)
    if int(np.prod(cell_shape)) >= kernels.MAX_CELLS:
        raise ValueError(f"{int(np.prod(cell_shape))} cells per time bin ({cell_shape}) is more than the "
                         f"{kernels.MAX_CELLS - 1} the kernel addresses; use wider bins or a smaller range")
    spec = _Spec(tuple(modes), tuple(params), cell_shape, out_cell, acc, dtype)
    cell_bytes = int(np.prod(cell_shape)) * acc.itemsize

    if ax_t is not None:
        time_col = _column(events, ax_t)
        cols = _harmonise({"time": time_col, **cols})
        time_col = cols.pop("time")
        P, offsets, lengths = _global_positions(time_col, ax_t)
        n_events = int(lengths.sum())
        check_size((cell_bytes,), np.uint8, what="one time bin of the cube", limit=avail // 4)
        data = _cube_graph(spec, ax_t, P, offsets, lengths, roles, cols, n_events, chunk_bytes, cell_bytes)
        n_inside = int(P[-1] - P[0])
    else:
        cols = _harmonise(cols)
        n_events = events.sizes["event"]
        check_size((1,) + out_cell, acc, what="image/spectrum (no time axis)", limit=avail // 8)
        data = _reduce_graph(spec, roles, cols, out_cell)
        n_inside = None
    if n_events == 0:
        warnings.warn(
            f"{events.attrs.get('source', 'events')}: the event list is empty (selection "
            f"{list(events.attrs.get('selection', []))}); the cube holds zero counts",
            stacklevel=2,
        )
    elif n_inside == 0:
        warnings.warn(f"none of the {n_events} events fall inside the time axis; the cube holds zero counts",
                      stacklevel=2)

    cube = label_cube(data, axes, events)
    if compute:
        cube = cube.compute()
    return cube


def _cube_graph(spec, ax_t, P, offsets, lengths, roles, cols, n_events, chunk_bytes, cell_bytes) -> da.Array:
    nt = ax_t.size
    ct = _time_chunk(ax_t, cell_bytes, n_events, chunk_bytes)
    starts = list(range(0, nt, ct))
    tchunks = tuple(min(ct, nt - s) for s in starts)
    threads = max(1, (os.cpu_count() or 1) // len(starts))
    token = dask.base.tokenize(spec.modes, spec.params, spec.dtype.str, ax_t.edges, P, offsets,
                               [cols[r].name for r in roles])
    name = f"counts-{token}"
    ends = offsets + lengths
    sources = fusable_sources([cols[r] for r in roles]) if roles else None
    rows = f"rows-{token}"
    layer = {}
    ndim = 1 + len(spec.out_shape)
    for c, (s, m) in enumerate(zip(starts, tchunks)):
        seg = P[s : s + m + 1].copy()
        key = (name, c) + (0,) * (ndim - 1)
        lo, hi = seg[0], seg[-1]
        if roles and hi > lo:
            js = np.flatnonzero((offsets < hi) & (ends > lo) & (lengths > 0))
        else:
            js = np.empty(0, dtype=np.int64)
        if roles and js.size == 0:
            layer[key] = (_zeros_task, (m,) + spec.out_shape, spec.dtype)
            continue
        block_keys = []
        for j in js:
            block_keys += [(cols[r].name, int(j)) for r in roles] if sources is None else \
                [(operator.getitem, (rows, int(j)), i) for i in range(len(roles))]
        layer[key] = (_cube_task, spec, seg, offsets[js].copy(), lengths[js].copy(), tuple(roles), threads,
                      *block_keys)
    if sources is None:
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[cols[r] for r in roles])
    else:  # columns of one FITS table: each event chunk's columns decoded together
        layer.update({(rows, j): (read_columns, sources, int(o), int(o + m))
                      for j, (o, m) in enumerate(zip(offsets, lengths))})
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[])
    chunks = (tchunks,) + tuple((s,) for s in spec.out_shape)
    arr = da.Array(graph, name, chunks, dtype=spec.dtype, meta=np.empty((0,) * ndim, dtype=spec.dtype))
    if arr.npartitions == 1:
        # the lone block is made fresh by its task, never held in the graph: computing
        # it needs no defensive copy (Dask's default), which would write the cube twice
        arr.__dask_postcompute__ = _fresh_block_postcompute
    return arr


def _fresh_block_postcompute():
    return _only_block, ()


def _only_block(results):
    while isinstance(results, (list, tuple)):
        results = results[0]
    return results


def _reduce_graph(spec, roles, cols, out_cell) -> da.Array:
    ref = cols[roles[0]]
    nb = ref.numblocks[0]
    token = dask.base.tokenize(spec.modes, spec.params, [cols[r].name for r in roles])
    name = f"counts-partial-{token}"
    ndim = 1 + len(out_cell)
    layer = {}
    for j in range(nb):
        layer[(name, j) + (0,) * (ndim - 1)] = (_partial_task, spec, tuple(roles), *[(cols[r].name, j) for r in roles])
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[cols[r] for r in roles])
    parts = da.Array(graph, name, ((1,) * nb,) + tuple((s,) for s in out_cell), dtype=spec.acc,
                     meta=np.empty((0,) * ndim, dtype=spec.acc))
    total = parts.sum(axis=0, dtype=spec.acc, split_every=4)
    if spec.dtype != spec.acc:
        total = total.map_blocks(_cast, spec.dtype, dtype=spec.dtype)
    return total


def label_cube(data, axes: dict, events) -> xr.DataArray:
    """The counts DataArray of ``bin_events``: ``data`` (a Dask or numpy array
    over the axes given, in the order time, energy, y, x) with bin-centre and
    edge coordinates, ``exposure``/``fracexp`` from the GTIs of ``events`` (an
    EventList or any Dataset with ``gti_start``/``gti_stop``), ``ra``/``dec``
    of the cells, the cell WCS and provenance attrs. Same dims and shape as
    ``data``; ``data`` stays lazy. Eager: coordinates only (the ``ra``/``dec``
    of a grid above ``sky.RADEC_EAGER_CELLS`` cells are lazy too)."""
    dims = [axes[r].name for r in _ROLES if r in axes]
    coords = {}
    for r in _ROLES:
        if r not in axes:
            continue
        a = axes[r]
        u = {"units": a.units} if a.units else {}
        coords[a.name] = ((a.name,), a.centres, dict(u, long_name=f"{a.name} bin centre"))
        coords[f"{a.name}_lo"] = ((a.name,), a.lo.copy(), dict(u, long_name=f"{a.name} bin lower edge (inclusive)"))
        coords[f"{a.name}_hi"] = ((a.name,), a.hi.copy(), dict(u, long_name=f"{a.name} bin upper edge (exclusive)"))
    attrs = {"units": "count", "long_name": "event counts"}
    if "time" in axes:
        a = axes["time"]
        gti = gtimod.from_dataset(events) if "gti_start" in events.variables else (np.empty(0), np.empty(0))
        expo = gtimod.exposure_per_bin(a.lo, a.hi, gti)
        coords["exposure"] = ((a.name,), expo, {"units": "s", "long_name": "good time in the bin"})
        coords["fracexp"] = ((a.name,), expo / a.widths, {"units": "1", "long_name": "exposure / bin width"})
    src = events.attrs
    if "x" in axes and "y" in axes:
        kw = cell_wcs_keywords(src, axes["y"], axes["x"])
        if kw:
            attrs.update(kw)
            ra, dec = cell_radec(kw, axes["y"].size, axes["x"].size)
            yx = (axes["y"].name, axes["x"].name)
            coords["ra"] = (yx, ra, {"units": "deg", "long_name": "right ascension of the cell centre"})
            coords["dec"] = (yx, dec, {"units": "deg", "long_name": "declination of the cell centre"})
    for k in _OBS_ATTRS:
        if k in src:
            attrs[k] = src[k]
    attrs["source"] = str(src.get("source", ""))
    attrs["selection"] = [str(s) for s in src.get("selection", [])]
    attrs["binning"] = [axes[r].describe() for r in _ROLES if r in axes]
    attrs["xcube_version"] = __version__
    return xr.DataArray(data, dims=dims, coords=coords, name="counts", attrs=attrs)
