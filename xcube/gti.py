"""Good-time-interval algebra.

A GTI set is a pair of float64 arrays ``(start, stop)`` [s, mission time],
each interval half-open ``[start, stop)``. The functions here are eager and
cheap (GTI tables are small); they return normalised sets: sorted, disjoint,
with no empty intervals.

GTIs given by a user (``select(gti=...)``) are read by :func:`as_gti`, one
rule for every entry point:

* a **tuple** ``(start, stop)`` of two floats (one interval) or of two 1-D
  sequences/arrays of equal length (starts, stops): the form the functions
  here, :func:`from_dataset` and ``xcube.read_gti`` return;
* a **list** of ``(start, stop)`` pairs (``[(a, b)]``, ``[(a, b), (c, d)]``,
  ``stingray_gti.tolist()``) or an ``(n, 2)`` array: one row per interval
  (Stingray's and astropy's layout);
* a Dataset with ``gti_start``/``gti_stop``.

A 2 x 2 input is read by its type as above; when that reading gives
overlapping or reversed intervals but the other reading would not, it is
refused (``ValueError``) instead of being silently merged.
"""
from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "ccd_good_time",
    "normalize",
    "union",
    "intersection",
    "complement",
    "exposure",
    "exposure_per_bin",
    "in_gti",
    "from_dataset",
    "as_gti",
]


def _arrays(start, stop):
    start = np.atleast_1d(np.asarray(start, dtype=np.float64))
    stop = np.atleast_1d(np.asarray(stop, dtype=np.float64))
    if start.shape != stop.shape:
        raise ValueError(f"GTI start and stop differ in length: {start.size} vs {stop.size}")
    if start.ndim != 1:
        raise ValueError(f"GTI start and stop must be 1-D, not of shape {start.shape}")
    return start, stop


def normalize(start, stop, *, source: str = "GTI", warn: bool = True):
    """Sort, merge overlapping or touching intervals and drop empty ones.

    Warns (naming ``source``) when the input was unsorted or overlapping, or
    held reversed intervals (STOP < START, dropped), and raises ``ValueError``
    for non-finite bounds (NaN or +-inf: an infinite interval has no
    exposure or time axis). Returns ``(start, stop)`` arrays.
    Eager, numpy: 1-D float64 ``start``, ``stop`` [s] of one length in and out.
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
    """Union of any number of GTI sets ``(start, stop)``. Eager, numpy: 1-D
    ``(start, stop)`` arrays [s]."""
    if not gtis:
        return np.empty(0), np.empty(0)
    start = np.concatenate([_arrays(*g)[0] for g in gtis])
    stop = np.concatenate([_arrays(*g)[1] for g in gtis])
    return normalize(start, stop, warn=False)


def intersection(*gtis):
    """Intersection of any number of GTI sets ``(start, stop)``. Eager, numpy:
    1-D ``(start, stop)`` arrays [s]."""
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
    """Total good time [s] of a GTI set. Eager, numpy."""
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
    if ds["gti_start"].ndim != 1 or ds["gti_stop"].ndim != 1:
        src = ds.attrs.get("source") or "the dataset"
        raise ValueError(f"{src}: gti_start/gti_stop have dims {ds['gti_start'].dims}, not ('gti',): Dataset.where "
                         "spreads a mask over every variable, the GTI table too; mask the bins instead "
                         "(ds.where(mask, drop=True), ds.isel(time=mask), or ds.assign(counts=ds.counts.where(mask)))")
    return np.asarray(ds["gti_start"].values, dtype=np.float64), np.asarray(ds["gti_stop"].values, dtype=np.float64)


def _clean(start, stop) -> bool:
    """True when the intervals are non-empty and pairwise disjoint (in any order)."""
    if np.any(~(stop > start)):
        return False
    o = np.argsort(start, kind="stable")
    return bool(np.all(start[o][1:] >= stop[o][:-1]))


def _layout(gti):
    """``(start, stop, reading)`` of a user GTI (see the module docstring);
    ``reading`` is ``"pairs"`` or ``"starts/stops"``. TypeError for anything else."""
    what = (f"gti must be (start, stop) as a tuple of floats or of 1-D arrays [s], a list of (start, stop) pairs, "
            f"an (n, 2) array, a Dataset with gti_start/gti_stop, a GTI file path or an OGIP GTI table; got "
            f"{type(gti).__name__}")
    if isinstance(gti, tuple):
        if len(gti) != 2:
            # a tuple of 1 or 3+ pairs: only rows can be meant
            if all(isinstance(g, (tuple, list, np.ndarray)) and len(g) == 2 for g in gti):
                return _layout(list(gti))
            raise TypeError(f"{what} of length {len(gti)}")
        try:
            start, stop = (np.asarray(g, dtype=np.float64) for g in gti)
        except (TypeError, ValueError):
            raise TypeError(what) from None
        if start.ndim > 1 or stop.ndim > 1:
            raise TypeError(f"{what} holding arrays of {start.ndim} and {stop.ndim} dimensions (starts, stops must be "
                            "1-D; pass a list of (start, stop) pairs or an (n, 2) array for rows of intervals)")
        return np.atleast_1d(start), np.atleast_1d(stop), "starts/stops"
    if isinstance(gti, (str, bytes, dict)):
        raise TypeError(what)
    try:
        a = np.asarray(gti, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what} (not a regular array of numbers)") from None
    if a.ndim == 0:
        raise TypeError(what)
    if a.shape == (2,):  # [start, stop] or a 1-D array of two times: one interval
        return a[:1], a[1:], "pairs"
    if a.ndim == 2 and a.shape[1] == 2:
        return a[:, 0].copy(), a[:, 1].copy(), "pairs"
    if a.ndim == 1 and a.size == 0:
        return a, a.copy(), "pairs"
    raise TypeError(f"{what} of shape {a.shape} (a list or array is read as rows of (start, stop) pairs; "
                    "give (starts, stops) as a tuple)")


def as_gti(gti, *, source: str = "gti=", warn: bool = True):
    """A user's GTIs as a normalised ``(start, stop)`` pair of float64 arrays [s].

    Accepts the forms of the module docstring: a ``(start, stop)`` tuple of
    floats or of 1-D arrays of equal length, a list of ``(start, stop)``
    pairs or an ``(n, 2)`` array (one row per interval), or a Dataset with
    ``gti_start``/``gti_stop``. ``TypeError`` for another form,
    ``ValueError`` for unequal lengths, NaN, an empty or reversed interval,
    or a 2 x 2 input whose reading (by its type) overlaps while the other
    reading would be disjoint. Overlapping or unsorted intervals are merged
    with a warning (``warn``). Eager, small.
    """
    if hasattr(gti, "data_vars"):
        return normalize(*from_dataset(gti), source=source, warn=warn)
    start, stop, reading = _layout(gti)
    if start.shape != stop.shape:
        raise ValueError(f"{source}: gti start and stop differ in length: {start.size} vs {stop.size}")
    if np.isnan(start).any() or np.isnan(stop).any():
        raise ValueError(f"{source}: gti holds NaN start/stop times")
    if start.shape == (2,) and not _clean(start, stop):
        # the same four numbers read the other way (pairs <-> starts/stops: the same swap both ways)
        alt = (np.array([start[0], stop[0]]), np.array([start[1], stop[1]]))
        if _clean(*alt):
            form = ("a tuple (starts, stops)" if reading == "starts/stops" else "a list of (start, stop) pairs"
                    if not isinstance(gti, np.ndarray) else "an (n, 2) array")
            fix = ("pass the intervals as a list of pairs [(start, stop), ...] or an (n, 2) array"
                   if reading == "starts/stops" else "pass (starts, stops) as a tuple of two arrays")
            raise ValueError(
                f"{source}: the 2 x 2 gti {_fmt_pairs(start, stop)} was given as {form}, which makes overlapping or "
                f"reversed intervals, while the other reading gives disjoint ones "
                f"{_fmt_pairs(*alt)}; {fix} (a tuple is (starts, stops), a list or array holds (start, stop) rows)")
    if np.any(stop <= start):
        k = int(np.flatnonzero(stop <= start)[0])
        raise ValueError(f"gti interval {k} is empty or reversed: start {start[k]!r} >= stop {stop[k]!r}")
    return normalize(start, stop, source=source, warn=warn)


def _fmt_pairs(start, stop) -> str:
    return "[" + ", ".join(f"({float(a):.15g}, {float(b):.15g})" for a, b in zip(start, stop)) + "]"


def ccd_rows(ccd_gti: dict, empty_at: float = 0.0):
    """``(ccd, start, stop)`` 1-D arrays [s] of the per-CCD GTI sets
    ``ccd_gti`` (CCD -> (start, stop)), one row per interval, as an EventList
    keeps them (``ccd_gti_ccd``/``ccd_gti_start``/``ccd_gti_stop``). A CCD
    whose set is empty (its own GTI table has no row: the CCD had no good
    time) gets one zero-length row ``[empty_at, empty_at)``: it stays listed,
    with no good time, instead of dropping out of the table, where it would
    count as a CCD without a GTI table of its own (no constraint). Eager,
    small."""
    ccds, starts, stops = [], [], []
    for c, (s, e) in ccd_gti.items():
        s, e = np.asarray(s, np.float64), np.asarray(e, np.float64)
        if s.size == 0:
            s, e = np.array([float(empty_at)]), np.array([float(empty_at)])
        ccds += [c] * s.size
        starts.append(s)
        stops.append(e)
    empty = np.empty(0, np.float64)
    return (np.asarray(ccds), np.concatenate(starts) if starts else empty,
            np.concatenate(stops) if stops else empty)


def ccd_good_time(events, ccds):
    """The good time ``(start, stop)`` [s] common to the CCDs ``ccds``: the
    intersection of their own GTIs (``ccd_gti_ccd``/``ccd_gti_start``/
    ``ccd_gti_stop``, which xcube keeps for files with per-CCD GTI
    extensions: XMM EPIC, Chandra ACIS) and the events' GTIs; a CCD without a GTI of its own adds no
    constraint, a CCD whose own table is empty (kept as a zero-length row, :func:`ccd_rows`) has no good
    time. None when the events have no per-CCD GTIs for any of them. Eager, small."""
    if "ccd_gti_ccd" not in events.variables or not len(ccds):
        return None
    which = np.asarray(events["ccd_gti_ccd"].values)
    start, stop = np.asarray(events["ccd_gti_start"].values), np.asarray(events["ccd_gti_stop"].values)
    sets = [(start[which == c], stop[which == c]) for c in ccds if np.any(which == c)]
    if not sets:
        return None
    return intersection(from_dataset(events), *sets)
