"""Numba kernels of the binning engine.

The hot loop histograms events into a small count slab ``(n_time, n_energy,
n_y, n_x)``. Time needs no per-event work: events are time-sorted, so the
events of time bin ``t`` are the contiguous slice ``seg[t]:seg[t + 1]``. The
other axes are computed per event, fused with the increment, by one of:

* ``REGULAR``: ``k = floor((v - origin) / width) - first`` (a division);
* ``EDGES``: binary search in explicit edges;
* ``LUT``: a lookup table indexed by an integer column (``lut[v - lut_lo]``),
  built from the axis rule, so it bins exactly as the rule does;
* ``NONE``: the axis is absent (length 1 in the slab).

Kernels release the GIL, so Dask's threaded scheduler runs chunks in parallel.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import njit

__all__ = ["NONE", "REGULAR", "EDGES", "LUT", "axis_params", "fill_kernel", "time_positions", "time_bin_of"]

NONE, REGULAR, EDGES, LUT = 0, 1, 2, 3

_EMPTY_F = np.empty(0, dtype=np.float64)
_SORT_STRIDE = 1024  # spacing of the cheap sortedness check on each block of times
_EMPTY_I = np.empty(0, dtype=np.int32)


def axis_params(axis=None, mode=NONE, lut=None, lut_lo=0):
    """The tuple a kernel needs for one axis:
    ``(origin, width, first, n, edges, lut, lut_lo)``."""
    if axis is None or mode == NONE:
        return (0.0, 1.0, 0, 1, _EMPTY_F, _EMPTY_I, 0)
    origin = float(axis.origin) if axis.is_regular else 0.0
    width = float(axis.width) if axis.is_regular else 1.0
    return (
        origin,
        width,
        int(axis.first),
        int(axis.size),
        np.ascontiguousarray(axis.edges, dtype=np.float64),
        _EMPTY_I if lut is None else np.ascontiguousarray(lut, dtype=np.int32),
        int(lut_lo),
    )


@njit(inline="always")
def _index(v, mode, p):
    origin, width, first, n, edges, lut, lut_lo = p
    if mode == 1:
        f = (v - origin) / width
        if f >= first and f < first + n:
            return np.int64(f) - first
        return -1
    elif mode == 2:
        if not (v >= edges[0] and v < edges[n]):
            return -1
        a = 0
        b = n
        while b - a > 1:  # invariant: edges[a] <= v < edges[b]
            m = (a + b) >> 1
            if edges[m] <= v:
                a = m
            else:
                b = m
        return a
    elif mode == 3:
        j = np.uint64(np.int64(v) - lut_lo)
        if j < lut.size:
            return np.int64(lut[j])
        return -1
    return 0


@functools.lru_cache(maxsize=None)
def fill_kernel(modes: tuple):
    """Compiled ``fill(slab, seg, e, pe, y, py, x, px)`` for ``modes = (me, my, mx)``.

    ``slab`` is a C-contiguous int32/int64 array ``(nt, ne, ny, nx)`` that is
    incremented in place; ``seg`` (int64, ``nt + 1``) are the event positions
    where each time bin starts in the column arrays ``e``, ``y``, ``x``;
    ``pe``/``py``/``px`` come from :func:`axis_params`. Absent axes take any
    (e.g. empty) array and mode ``NONE``.
    """
    me, my, mx = (int(m) for m in modes)

    @njit(nogil=True, cache=True)
    def fill(slab, seg, e, pe, y, py, x, px):
        nt = seg.size - 1
        if me == 0 and my == 0 and mx == 0:
            for t in range(nt):
                slab[t, 0, 0, 0] += seg[t + 1] - seg[t]
            return
        for t in range(nt):
            for i in range(seg[t], seg[t + 1]):
                ix = 0
                if mx != 0:
                    ix = _index(x[i], mx, px)
                    if ix < 0:
                        continue
                iy = 0
                if my != 0:
                    iy = _index(y[i], my, py)
                    if iy < 0:
                        continue
                ie = 0
                if me != 0:
                    ie = _index(e[i], me, pe)
                    if ie < 0:
                        continue
                slab[t, ie, iy, ix] += 1

    return fill


@njit(nogil=True, cache=True)
def _positions_regular(t, origin, width, first, ka, kb):
    # first index i with (t[i] - origin) / width >= first + k, for k = ka..kb
    out = np.empty(kb - ka + 1, dtype=np.int64)
    lo = 0
    n = t.size
    for j in range(kb - ka + 1):
        k = first + ka + j
        a = lo
        b = n
        while a < b:
            m = (a + b) >> 1
            if (t[m] - origin) / width >= k:
                b = m
            else:
                a = m + 1
        out[j] = a
        lo = a
    return out


def time_bin_of(axis, value: float) -> int:
    """Bin of one time value in the axis rule, clipped to ``[-1, n]`` (-1: before, n: after)."""
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
    every 1024th time for ordering (``ValueError`` when unsorted).
    """
    t = np.asarray(times, dtype=np.float64)
    n = t.size
    if n == 0:
        return 0, np.zeros(1, dtype=np.int64), 0, np.nan, np.nan
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
