"""Numba kernels of the binning engine.

The hot loop histograms events into a small count slab ``(n_time, n_energy,
n_y, n_x)``. Time needs no per-event work: events are time-sorted, so the
events of time bin ``t`` are the contiguous slice ``seg[t]:seg[t + 1]``. The
other axes are computed per event, in blocks of 256 events (one pass computes
the cell indices, a second increments the cells), by one of:

* ``REGULAR``: ``k = floor((v - origin) / width) - first`` (a division);
* ``EDGES``: binary search in explicit edges;
* ``MUL``: integer columns on axes with an integer origin and width: the
  same floor division done as an exact multiply-and-shift
  (:func:`exact_divisor`);
* ``LUT``: a lookup table indexed by an integer column (``lut[v - lut_lo]``),
  built from the axis rule, so it bins exactly as the rule does;
* ``NONE``: the axis is absent (length 1 in the slab).

Kernels release the GIL, so Dask's threaded scheduler runs chunks in parallel.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import njit

from .. import _numba_cache  # noqa: F401 (numba's cache: a failure warns instead of failing)

__all__ = [
    "NONE", "REGULAR", "EDGES", "LUT", "MUL", "axis_params", "fill_kernel", "time_positions", "time_bin_of",
    "exact_divisor",
]

NONE, REGULAR, EDGES, LUT, MUL = 0, 1, 2, 3, 4

EMPTY_F = np.empty(0, dtype=np.float64)  # stands for an absent axis column
_EMPTY_I = np.empty(0, dtype=np.int32)
_SORT_STRIDE = 1024  # spacing of the cheap sortedness (and NaN) check on each block of times
_NAN_CHECK_ALL = 1 << 16  # blocks of times up to this size are checked for NaN in full
_MUL_BITS = 24  # MUL mode: exact for offsets v - lo below 2**24
_BLOCK = 256  # events per index pass in the fill kernel
_OUTSIDE = np.uint32(0xFFFFFFFF)  # cell index marking an event outside the cube
MAX_CELLS = 0xFFFFFFFF  # cells per time bin the kernel can address (uint32)


def exact_divisor(width: int, span: int):
    """Multiplier and shift ``(m, s)`` with ``(u * m) >> s == u // width`` for every
    integer ``0 <= u < span`` (Granlund-Montgomery, checked exhaustively), or
    None. Eager: the check builds a uint64 numpy array of ``span`` integers."""
    d = int(width)
    if d < 1 or span > (1 << _MUL_BITS):
        return None
    ell = max(int(d - 1).bit_length(), 0)  # ceil(log2 d)
    sh = _MUL_BITS + ell
    m = (1 << sh) // d + 1
    if m >= (1 << 40):
        return None
    u = np.arange(int(span), dtype=np.uint64)
    if not np.array_equal((u * np.uint64(m)) >> np.uint64(sh), u // np.uint64(d)):
        return None  # pragma: no cover - the theorem says this cannot happen
    return m, sh


def axis_params(axis=None, mode=NONE, lut=None, lut_lo=0, mul=None):
    """The tuple a kernel needs for one axis:
    ``(origin, width, first, n, edges, lut, lut_lo, mul_m, mul_s, span)``.

    ``LUT``: ``lut[v - lut_lo]`` is the bin (-1 outside). ``MUL`` (integer
    column, integer origin and width): ``lut_lo`` is the integer lower edge,
    ``span = n * width`` and ``(mul_m, mul_s)`` come from :func:`exact_divisor`.
    Eager: copies the edges (float64, shape ``(n + 1,)``) and the LUT (int32)
    into contiguous numpy arrays.
    """
    if axis is None or mode == NONE:
        return (0.0, 1.0, 0, 1, EMPTY_F, _EMPTY_I, 0, np.uint64(0), np.uint64(0), np.uint64(0))
    origin = float(axis.origin) if axis.is_regular else 0.0
    width = float(axis.width) if axis.is_regular else 1.0
    m, sh = mul if mul is not None else (0, 0)
    span = int(round(axis.size * width)) if mode == MUL else 0
    return (
        origin,
        width,
        int(axis.first),
        int(axis.size),
        np.ascontiguousarray(axis.edges, dtype=np.float64),
        _EMPTY_I if lut is None else np.ascontiguousarray(lut, dtype=np.int32),
        int(lut_lo),
        np.uint64(m),
        np.uint64(sh),
        np.uint64(span),
    )


@njit(inline="always")
def _index(v, mode, p):
    """``(inside, bin)`` of value ``v``; ``bin`` is uint64 (meaningless when outside)."""
    origin, width, first, n, edges, lut, lut_lo, mul_m, mul_s, span = p
    if mode == 1:
        f = (v - origin) / width
        return (f >= first) & (f < first + n), np.uint64(np.int64(f) - first)
    elif mode == 2:
        if not (v >= edges[0] and v < edges[n]):
            return False, np.uint64(0)
        a = 0
        b = n
        while b - a > 1:  # invariant: edges[a] <= v < edges[b]
            m = (a + b) >> 1
            if edges[m] <= v:
                a = m
            else:
                b = m
        return True, np.uint64(a)
    elif mode == 3:
        j = np.uint64(np.int64(v) - lut_lo)
        if j < np.uint64(lut.size):
            k = lut[j]
            return k >= 0, np.uint64(k)
        return False, np.uint64(0)
    elif mode == 4:
        u = np.uint64(np.int64(v) - lut_lo)
        return u < span, (u * mul_m) >> mul_s
    return True, np.uint64(0)


@functools.lru_cache(maxsize=None)
def fill_kernel(modes: tuple):
    """Compiled ``fill(slab, seg, e, pe, y, py, x, px)`` for ``modes = (me, my, mx)``.

    ``slab`` is a C-contiguous int32/int64 array ``(nt, ne, ny, nx)`` that is
    incremented in place; ``seg`` (int64, ``nt + 1``) are the event positions
    where each time bin starts in the column arrays ``e``, ``y``, ``x``;
    ``pe``/``py``/``px`` come from :func:`axis_params`. Absent axes take any
    (e.g. empty) array and mode ``NONE``. Events go in blocks of 256: one pass
    computes their cell indices (a loop the compiler can vectorise), a second
    increments the cells. A time bin may hold at most ``MAX_CELLS - 1`` cells.
    """
    me, my, mx = (int(m) for m in modes)

    @njit(nogil=True, cache=True, error_model="numpy")
    def fill(slab, seg, e, pe, y, py, x, px):
        nt = seg.size - 1
        if me == 0 and my == 0 and mx == 0:
            for t in range(nt):
                slab[t, 0, 0, 0] += seg[t + 1] - seg[t]
            return
        flat = slab.reshape(-1)
        ny = np.uint64(slab.shape[2])
        nx = np.uint64(slab.shape[3])
        cell = np.uint64(slab.shape[1]) * ny * nx
        buf = np.empty(_BLOCK, dtype=np.uint32)
        for t in range(nt):
            base = np.uint64(t) * cell
            i0 = seg[t]
            i1 = seg[t + 1]
            while i0 < i1:
                m = min(_BLOCK, i1 - i0)
                # pass 1 (vectorisable): cell index of each event, _OUTSIDE when outside an axis
                for j in range(m):
                    i = i0 + j
                    okx, kx = _index(x[i], mx, px) if mx != 0 else (True, np.uint64(0))
                    oky, ky = _index(y[i], my, py) if my != 0 else (True, np.uint64(0))
                    oke, ke = _index(e[i], me, pe) if me != 0 else (True, np.uint64(0))
                    k = np.uint32((ke * ny + ky) * nx + kx)
                    buf[j] = k if okx & oky & oke else _OUTSIDE
                # pass 2: increments
                for j in range(m):
                    k = buf[j]
                    if k != _OUTSIDE:
                        flat[base + np.uint64(k)] += 1
                i0 += m

    return fill


@njit(nogil=True, cache=True)
def _positions_regular(t, origin, width, first, ka, kb):
    # first index i with (t[i] - origin) / width >= first + k, for k = ka..kb. Each search
    # gallops from the previous answer in steps of the mean bin occupancy, so its probes stay
    # within a few cache lines of the answer (a plain bisection of the block misses cache ~20 times)
    nk = kb - ka + 1
    out = np.empty(nk, dtype=np.int64)
    n = t.size
    step0 = max(1, n // nk)
    lo = 0
    for j in range(nk):
        k = first + ka + j
        a = lo  # every index below a is below bin k
        b = lo
        s = step0
        while b < n and (t[b] - origin) / width < k:
            a = b + 1
            b += s
            s *= 2
        if b > n:
            b = n
        while a < b:  # answer in [a, b]
            m = (a + b) >> 1
            if (t[m] - origin) / width >= k:
                b = m
            else:
                a = m + 1
        out[j] = a
        lo = a
    return out


def time_bin_of(axis, value: float) -> int:
    """Bin of one time value in the axis rule, clipped to ``[-1, n]`` (-1:
    before, n: after). Eager (one scalar; ``value`` in the axis' unit, [s] for
    time)."""
    n = axis.size
    if axis.is_regular:
        f = np.floor((value - axis.origin) / axis.width)  # the rule's arithmetic, then shift
        return int(np.clip(f - axis.first, -1, n))
    return int(np.clip(np.searchsorted(axis.edges, value, side="right") - 1, -1, n))


def time_positions(times: np.ndarray, axis):
    """Where each time bin starts in one block of sorted ``times``.

    Returns ``(ka, pos, n_events, first_time, last_time)``: ``pos[j]`` is the number of events of the
    block in bins before ``ka + j`` (before the axis counts as before every
    bin), for ``j = 0 .. kb - ka`` with ``kb`` just after the block's last
    event's bin. Bins below ``ka`` start at 0 and bins above ``kb`` at
    ``n_events``. Uses the axis rule exactly, so ``pos`` agrees with
    :meth:`Axis.index_of`. Cost O((kb - ka) log n_events), plus a check of
    every 1024th time for ordering (``ValueError`` when unsorted) and for NaN
    (``ValueError`` saying so; every time of a block of up to 65536 events, and
    the last: sorting puts NaN last. A full check would cost a pass over the
    column, a tenth of the binning; event files are checked when first opened).
    Eager, on a numpy block (times [s], as the axis).
    """
    t = np.asarray(times, dtype=np.float64)
    n = t.size
    if n == 0:
        return 0, np.zeros(1, dtype=np.int64), 0, np.nan, np.nan
    nan = np.isnan(t if n <= _NAN_CHECK_ALL else np.append(t[:: _SORT_STRIDE], t[-1]))
    if nan.any():  # (NaN compares false: it would pass the order check and break the positions)
        nan = np.isnan(t)
        raise ValueError(
            f"the time column holds NaN ({int(nan.sum())} of {n} events of a chunk, the first at index "
            f"{int(np.argmax(nan))} of it); binning needs finite times: drop those events first, e.g. "
            "events.isel(event=np.flatnonzero(np.isfinite(events['time'].values)))"
        )
    sample = t[:: _SORT_STRIDE]
    if np.any(sample[1:] < sample[:-1]) or t[-1] < sample[-1]:
        raise ValueError(
            "events are not time-sorted; binning needs sorted times (xcube.open_events sorts on load; "
            "sort a hand-made EventList with events.sortby('time'))"
        )
    # one bin of slack each side: the positions inside [ka, kb] are exact either way
    ka = min(max(time_bin_of(axis, t[0]) - 1, 0), axis.size)
    kb = min(max(time_bin_of(axis, t[-1]) + 2, 0), axis.size)
    if axis.is_regular:
        pos = _positions_regular(t, float(axis.origin), float(axis.width), int(axis.first), ka, kb)
    else:
        pos = np.searchsorted(t, axis.edges[ka : kb + 1], side="left").astype(np.int64)
    return ka, pos, n, float(t[0]), float(t[-1])
