"""Good-time-interval algebra.

A GTI set is a pair of float64 arrays ``(start, stop)`` [s, mission time],
each interval half-open ``[start, stop)``. The functions here are eager and
cheap (GTI tables are small); they return normalised sets: sorted, disjoint,
with no empty intervals.
"""
from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "normalize",
    "union",
    "intersection",
    "complement",
    "exposure",
    "exposure_per_bin",
    "in_gti",
    "from_dataset",
]


def _arrays(start, stop):
    start = np.atleast_1d(np.asarray(start, dtype=np.float64))
    stop = np.atleast_1d(np.asarray(stop, dtype=np.float64))
    if start.shape != stop.shape:
        raise ValueError(f"GTI start and stop differ in length: {start.size} vs {stop.size}")
    return start, stop


def normalize(start, stop, *, source: str = "GTI", warn: bool = True):
    """Sort, merge overlapping or touching intervals and drop empty ones.

    Warns (naming ``source``) when the input was unsorted or overlapping, or
    held reversed intervals (STOP < START, dropped), and raises ``ValueError``
    for non-finite bounds (NaN or +-inf: an infinite interval has no
    exposure or time axis). Returns ``(start, stop)`` arrays.
    """
    start, stop = _arrays(start, stop)
    bad = ~(np.isfinite(start) & np.isfinite(stop))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        what = " and ".join(w for w, f in (("NaN", np.isnan(start[bad]).any() or np.isnan(stop[bad]).any()),
                                             ("infinite", np.isinf(start[bad]).any() or np.isinf(stop[bad]).any()))
                            if f)
        raise ValueError(
            f"{source}: GTI table has {what} START/STOP values ({int(bad.sum())} row(s), e.g. row {first + 1}: "
            f"{float(start[first])!r} - {float(stop[first])!r}); fix or drop those rows"
        )
    keep = stop > start
    n_reversed = int(np.count_nonzero(stop < start))
    if warn and n_reversed:
        first = int(np.flatnonzero(stop < start)[0])
        warnings.warn(
            f"{source}: {n_reversed} GTI interval(s) with STOP < START (reversed, e.g. row {first + 1}: "
            f"{float(start[first])!r} - {float(stop[first])!r}) were dropped; no good time is taken from them",
            stacklevel=2,
        )
    start, stop = start[keep], stop[keep]
    if start.size == 0:
        return start, stop
    order = np.argsort(start, kind="stable")
    unsorted = bool(np.any(order != np.arange(order.size)))
    start, stop = start[order], stop[order]
    # merge: a new interval begins where start exceeds the running max of previous stops
    run_max = np.maximum.accumulate(stop)
    new = np.empty(start.size, dtype=bool)
    new[0] = True
    new[1:] = start[1:] > run_max[:-1]
    overlapping = bool(np.any(start[1:] < run_max[:-1]))
    idx = np.flatnonzero(new)
    out_start = start[idx]
    out_stop = np.maximum.reduceat(stop, idx)
    if warn and (unsorted or overlapping):
        what = " and ".join(w for w, f in (("unsorted", unsorted), ("overlapping", overlapping)) if f)
        warnings.warn(f"{source}: {what} GTIs were normalised (sorted and merged)", stacklevel=2)
    return out_start, out_stop


def union(*gtis):
    """Union of any number of GTI sets ``(start, stop)``."""
    if not gtis:
        return np.empty(0), np.empty(0)
    start = np.concatenate([_arrays(*g)[0] for g in gtis])
    stop = np.concatenate([_arrays(*g)[1] for g in gtis])
    return normalize(start, stop, warn=False)


def intersection(*gtis):
    """Intersection of any number of GTI sets ``(start, stop)``."""
    if not gtis:
        raise ValueError("intersection needs at least one GTI set")
    a = normalize(*gtis[0], warn=False)
    for g in gtis[1:]:
        b = normalize(*g, warn=False)
        if a[0].size == 0 or b[0].size == 0:
            return np.empty(0), np.empty(0)
        # all pairwise overlaps of two sorted disjoint sets, found by a merge
        i = np.searchsorted(b[1], a[0], side="right")  # first b ending after each a start
        j = np.searchsorted(b[0], a[1], side="left")  # first b starting at/after each a stop
        counts = np.maximum(j - i, 0)
        ai = np.repeat(np.arange(a[0].size), counts)
        bi = np.concatenate([np.arange(s, e) for s, e in zip(i, j) if e > s]) if counts.sum() else np.empty(0, int)
        s = np.maximum(a[0][ai], b[0][bi])
        e = np.minimum(a[1][ai], b[1][bi])
        a = normalize(s, e, warn=False)
    return a


def complement(gti, t0: float, t1: float):
    """Bad intervals: the parts of ``[t0, t1)`` not covered by ``gti``, as
    ``(start, stop)`` 1-D numpy arrays in the units of the inputs (s of
    mission time for xcube GTIs). Eager."""
    start, stop = normalize(*gti, warn=False)
    edges_s = np.concatenate([[t0], stop])
    edges_e = np.concatenate([start, [t1]])
    return intersection((edges_s, edges_e), ([t0], [t1]))


def exposure(gti) -> float:
    """Total good time [s] of a GTI set."""
    start, stop = normalize(*gti, warn=False)
    return float(np.sum(stop - start))


def _cumulative(gti, t):
    """Good time [s] before each time ``t`` (vectorised, exact to float64)."""
    start, stop = gti
    cum = np.concatenate([[0.0], np.cumsum(stop - start)])
    k = np.searchsorted(start, t, side="right") - 1
    kk = np.clip(k, 0, None)
    partial = np.clip(np.minimum(t, stop[kk]) - start[kk], 0.0, None) if start.size else np.zeros_like(t)
    return np.where(k >= 0, cum[kk] + partial, 0.0)


def exposure_per_bin(lo, hi, gti):
    """Seconds of good time inside each bin ``[lo, hi)``.

    ``lo`` and ``hi`` are 1-D arrays of bin edges [s]; returns float64 of the
    same shape. Eager; O((n_bins + n_gti) log n_gti).
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    g = normalize(*gti, warn=False)
    if g[0].size == 0:
        return np.zeros(np.broadcast(lo, hi).shape)
    # difference of cumulative good time; clip tiny negative round-off
    return np.clip(_cumulative(g, hi) - _cumulative(g, lo), 0.0, None)


def in_gti(times, gti):
    """Boolean mask of ``times`` inside the GTIs (half-open; both in the same
    units, s of mission time for event lists), of the shape of ``times``. Works on numpy
    arrays eagerly and on dask arrays lazily (blockwise). Sorted blocks (as
    event lists are) cost one comparison pass and a search per interval."""
    start, stop = normalize(*gti, warn=False)

    def _mask(t):
        if t.ndim == 1 and t.size > 64 and np.all(t[1:] >= t[:-1]):  # (False with any NaN)
            # sorted (event lists are): set the slice of each interval, no per-event search
            out = np.zeros(t.size, dtype=bool)
            for a, b in zip(np.searchsorted(t, start, side="left"), np.searchsorted(t, stop, side="left")):
                out[a:b] = True
            return out
        k = np.searchsorted(start, t, side="right") - 1
        ok = k >= 0
        kk = np.clip(k, 0, None)
        return ok & (t < stop[kk]) if start.size else np.zeros(np.shape(t), dtype=bool)

    if hasattr(times, "map_blocks"):
        return times.map_blocks(_mask, dtype=bool)
    return _mask(np.asarray(times))


def from_dataset(ds):
    """The ``(gti_start, gti_stop)`` arrays of an EventList or product (eager, small)."""
    if "gti_start" not in ds:
        raise KeyError("dataset has no gti_start/gti_stop variables")
    return np.asarray(ds["gti_start"].values, dtype=np.float64), np.asarray(ds["gti_stop"].values, dtype=np.float64)
