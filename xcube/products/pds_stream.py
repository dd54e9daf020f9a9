"""Streaming sums behind :func:`xcube.power_spectrum`: averaged periodograms
of event lists and light curves that are far larger than memory.

The arithmetic is Stingray's (``stingray.fourier.avg_pds_from_timeseries``):
the same segment boundaries (``stingray.gti.time_intervals_from_gtis`` for
events, ``generate_indices_of_segment_boundaries_binned`` for light curves),
the same histogram (``stingray.utils.histogram``), the same FFT
(``stingray.utils.fft``), and the same rules for skipping a segment (fewer
than two events, or all bins empty). What is new here is only how the work is
cut, so that it streams:

* Event lists: one Dask task per event chunk. A segment whose events all lie
  inside the chunk (there is an event before its start and one after its end
  in the same chunk) is histogrammed and Fourier transformed there; only the
  at most two segments touching the chunk's first or last event leave the task
  as partial histograms. Neighbouring chunk results are merged pairwise in
  time order (a tree); a partial segment is finished as soon as the merged
  range has events on both sides of it. Memory is one event chunk plus a few
  ``n_bin`` arrays per task.
* Light curves: segments lie inside the GTIs and inside runs of contiguous
  rows (a missing row is a gap; overlapping rows are refused), so each is
  ``n_bin`` consecutive bins of one grid; they are grouped into blocks of
  contiguous bins, one task per block.

Every task returns a :class:`PdsSums` (sum of unnormalised powers, number of
segments, number of photons; for a light curve with per-bin count variances,
their sums too); sums are added in a tree and normalised once at the end, as
Stingray does with ``use_common_mean=True``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SegmentPlan", "PdsSums", "plan_segments", "events_sums", "lightcurve_sums", "merge", "finish",
           "tree_reduce", "contiguous_rows"]

LC_BLOCK_BINS = 4_194_304  # light-curve bins per task


@dataclass(frozen=True)
class SegmentPlan:
    """Segments of one event list: ``n_bin`` bins of ``dt`` [s] each, starting
    at ``start`` [s, numpy longdouble as Stingray computes them]."""

    dt: float
    segment: float
    n_bin: int
    start: np.ndarray
    stop: np.ndarray
    bounds: np.ndarray  # sorted unique start and stop times (longdouble)
    start_pos: np.ndarray  # index of each start in bounds
    stop_pos: np.ndarray
    bounds64: np.ndarray  # bounds rounded to float64
    above: np.ndarray  # bound > its float64 rounding
    source: str = ""  # the input, named in errors


@dataclass
class PdsSums:
    """Partial sums of an averaged periodogram (one chunk, or a merged range).

    ``power`` is the sum of unnormalised powers ``|FFT|^2`` over the finished
    segments at the positive Fourier frequencies; ``n_segments`` and
    ``n_photons`` count them. For a light curve given with the variance of
    each bin's counts (counts that are not Poisson photon counts, Stingray's
    ``err_dist="gauss"``), ``var_sum`` sums that variance over the segments'
    bins [count^2] and ``variance`` sums each segment's Stingray variance
    ``mean(sigma)^2`` [count^2]; both None otherwise. ``edges`` maps a
    segment index to ``[counts, n_events]`` for segments not yet finished; ``first``/``last`` are the
    segments holding the range's first and last event (None outside any);
    ``t_first``/``t_last`` its first and last event time [s] (to check the
    order of neighbouring chunks).
    """

    n_bin: int
    power: np.ndarray | None = None
    n_segments: int = 0
    n_photons: float = 0.0
    var_sum: float | None = None
    variance: float | None = None
    edges: dict = field(default_factory=dict)
    first: int | None = None
    last: int | None = None
    empty: bool = True
    t_first: float = float("nan")
    t_last: float = float("nan")


#: fewest ``dt`` bins a segment may hold: 2 bins leave no frequency between 1/segment and the Nyquist frequency
MIN_SEGMENT_BINS = 3
#: float64 arrays of ``n_bin`` one task holds while it transforms a segment (measured: 6 for events, 7 for
#: light curves: histogram, complex FFT, |FFT|^2, the sum)
SEGMENT_ARRAYS = 8


def segment_bins(segment: float, dt: float, source: str = "") -> tuple[float, int]:
    """``(segment, n_bin)``: ``segment`` [s] fixed to a whole number of
    ``dt`` bins as Stingray does. ``ValueError`` naming ``source`` when that
    is fewer than :data:`MIN_SEGMENT_BINS` bins (Stingray would divide by
    zero), or when the :data:`SEGMENT_ARRAYS` arrays of ``n_bin`` float64 a
    task needs for one segment exceed a quarter of the memory available
    (several tasks run at once): :func:`xcube.binning.memory.check_size`,
    as ``xcube lc`` checks its time axis, instead of a ``MemoryError`` from
    inside a task. Eager, before anything is computed."""
    from stingray.utils import fix_segment_size_to_integer_samples

    from ..binning import memory

    fixed, n_bin = fix_segment_size_to_integer_samples(float(segment), float(dt))
    if n_bin < MIN_SEGMENT_BINS:
        need = MIN_SEGMENT_BINS * float(dt)
        raise ValueError(f"{source or 'input'}: a {float(segment):g} s segment holds only {n_bin} bin(s) of "
                         f"{float(dt):g} s (dt); a segment must hold at least {MIN_SEGMENT_BINS} bins of dt (2 leave "
                         f"no frequency below the Nyquist frequency): use a segment of at least {need:g} s (e.g. "
                         f"segment={64 * float(dt):g}, --segment {64 * float(dt):g}) or a smaller dt (--dt)")
    memory.check_size((SEGMENT_ARRAYS * int(n_bin),), np.float64, limit=memory.available_bytes() // 4,
                      what=f"{source or 'input'}: the arrays of one {float(fixed):g} s segment ({int(n_bin)} bins of "
                           f"dt = {float(dt):g} s, {SEGMENT_ARRAYS} float64 arrays of that many bins per task)",
                      hint="each segment is Fourier transformed at once: use a shorter segment (segment=, --segment) "
                           "or a larger dt (dt=, --dt)")
    return fixed, n_bin


def plan_segments(gti, segment: float, dt: float, source: str = "") -> SegmentPlan:
    """Segments of ``segment`` seconds (fixed to a whole number of ``dt``
    bins, as Stingray does) that lie fully inside the GTIs ``(start, stop)``.
    Eager and small. Raises ``ValueError`` (naming ``source``) when a segment
    holds fewer than 3 bins or no GTI is long enough."""
    from stingray.gti import time_intervals_from_gtis

    segment, n_bin = segment_bins(segment, dt, source)
    g = np.column_stack([np.asarray(gti[0], np.float64), np.asarray(gti[1], np.float64)])
    if g.size == 0 or float(np.max(g[:, 1] - g[:, 0])) + 1e-5 < segment:
        longest = float(np.max(g[:, 1] - g[:, 0])) if g.size else 0.0
        raise ValueError(f"{source + ': ' if source else ''}no GTI is as long as one segment ({segment:g} s; "
                         f"longest GTI {longest:.6g} s, {len(g)} GTI(s)); choose a shorter segment=")
    start, stop = time_intervals_from_gtis(g, segment)
    bounds = np.sort(np.array(list(set(np.concatenate([start, stop])))))
    b64 = bounds.astype(np.float64)
    return SegmentPlan(dt=float(dt), segment=float(segment), n_bin=int(n_bin), start=start, stop=stop,
                       bounds=bounds, start_pos=np.searchsorted(bounds, start),
                       stop_pos=np.searchsorted(bounds, stop), bounds64=b64, above=b64 < bounds, source=source)


def _unsorted(source: str, where: str) -> ValueError:
    return ValueError(f"{source or 'events'}: events are not time-sorted ({where}); a power spectrum needs sorted "
                      "times (xcube.open_events sorts on load; sort a hand-made EventList with "
                      "events.sortby('time'))")


def count_below(t: np.ndarray, plan: SegmentPlan) -> np.ndarray:
    """``t.searchsorted(plan.bounds)`` (events before each longdouble bound,
    as Stingray counts them) with float64 searches only: for float64 ``t``,
    ``t < b`` is ``t <= b64`` when the bound lies above its float64 rounding
    ``b64`` and ``t < b64`` otherwise. Avoids casting the chunk to longdouble."""
    return np.where(plan.above, t.searchsorted(plan.bounds64, "right"), t.searchsorted(plan.bounds64, "left"))


def _positive_power(counts: np.ndarray, n_bin: int) -> np.ndarray:
    from stingray.fourier import positive_fft_bins
    from stingray.utils import fft

    ft = fft(counts)
    return (ft * ft.conj()).real[positive_fft_bins(n_bin)]


def _add_segment(sums: PdsSums, counts: np.ndarray, n_events: int, var: np.ndarray | None = None) -> None:
    """Add one finished segment, skipped as Stingray skips it (< 2 events or empty); ``var``: the variance
    of each bin's counts [count^2] (light curves of non-Poisson counts), summed into ``var_sum`` and into
    ``variance`` as Stingray's ``mean(err) ** 2`` of the segment."""
    if n_events < 2 or not np.any(counts != 0):
        return
    p = _positive_power(counts, sums.n_bin)
    sums.power = p if sums.power is None else sums.power + p
    sums.n_segments += 1
    sums.n_photons += float(counts.sum())
    if var is not None:
        sums.var_sum = (sums.var_sum or 0.0) + float(var.sum())
        sums.variance = (sums.variance or 0.0) + float(np.mean(np.sqrt(var))) ** 2


def events_sums(times, plan: SegmentPlan) -> PdsSums:
    """:class:`PdsSums` of one time-sorted chunk of event times [s].
    ``ValueError`` (naming ``plan.source``) when the chunk is not sorted: the
    segment search would silently take wrong events. The check is one
    comparison pass over the chunk (a few per cent of the task's time);
    :func:`merge` checks the order of neighbouring chunks. Eager, numpy: one
    chunk (1-D) is histogrammed here; meant to run inside a Dask task."""
    from stingray.utils import histogram

    t = np.asarray(times, dtype=np.float64)
    out = PdsSums(plan.n_bin)
    if t.size == 0:
        return out
    if t.size > 1 and bool(np.any(t[1:] < t[:-1])):
        i = int(np.argmax(t[1:] < t[:-1]))
        raise _unsorted(plan.source, f"{float(t[i + 1])!r} s follows {float(t[i])!r} s")
    out.empty = False
    out.t_first, out.t_last = float(t[0]), float(t[-1])
    idx = count_below(t, plan)
    i0, i1 = idx[plan.start_pos], idx[plan.stop_pos]
    n = t.size
    for k in np.flatnonzero(i1 > i0):
        seg = t[i0[k]:i1[k]]
        counts = histogram((seg - plan.start[k]).astype(float), bins=plan.n_bin, range=[0, plan.segment])
        counts = np.asarray(counts, dtype=np.float64)
        k = int(k)
        if i0[k] == 0:
            out.first = k
        if i1[k] == n:
            out.last = k
        if i0[k] == 0 or i1[k] == n:
            out.edges[k] = [counts, int(i1[k] - i0[k])]
        else:
            _add_segment(out, counts, int(i1[k] - i0[k]))
    return out


def lightcurve_sums(counts, bounds, n_bin: int, variances=None) -> PdsSums:
    """:class:`PdsSums` of a block of light-curve counts; ``bounds`` are the
    ``(idx0, idx1)`` of its segments inside the block; ``variances``: the
    variance of each bin's counts [count^2] (same length as ``counts``), or
    None for Poisson counts. Eager, numpy: ``counts`` is a 1-D block
    [count]."""
    c = np.asarray(counts)
    v = None if variances is None else np.asarray(variances, np.float64)
    out = PdsSums(int(n_bin), empty=False)
    for i0, i1 in bounds:
        seg = c[i0:i1].astype(float)
        _add_segment(out, seg, int(i1 - i0), None if v is None else v[i0:i1])
    return out


def _add(a, b):
    """``a + b`` of two optional sums (None when both are None)."""
    return a if b is None else b if a is None else a + b


def merge(a: PdsSums, b: PdsSums, source: str = "") -> PdsSums:
    """Merge the sums of two ranges, ``a`` before ``b`` in time, finishing the
    partial segments that now have events on both sides. ``ValueError``
    (naming ``source``) when ``b`` starts before ``a`` ends (unsorted events).
    Eager, numpy (sums of the per-segment arrays)."""
    if a.empty:
        return b
    if b.empty:
        return a
    if b.t_first < a.t_last:
        raise _unsorted(source, f"a chunk starting at {b.t_first!r} s follows one ending at {a.t_last!r} s")
    out = PdsSums(a.n_bin, n_segments=a.n_segments + b.n_segments, n_photons=a.n_photons + b.n_photons,
                  var_sum=_add(a.var_sum, b.var_sum), variance=_add(a.variance, b.variance), first=a.first,
                  last=b.last, empty=False, t_first=a.t_first, t_last=b.t_last)
    if a.power is None or b.power is None:
        out.power = a.power if b.power is None else b.power
    else:
        out.power = a.power + b.power
    edges = {k: list(v) for k, v in a.edges.items()}
    for k, (c, n) in b.edges.items():
        if k in edges:
            edges[k] = [edges[k][0] + c, edges[k][1] + n]
        else:
            edges[k] = [c, n]
    for k in sorted(edges):
        if k != out.first and k != out.last:
            _add_segment(out, *edges.pop(k))
    out.edges = edges
    return out


def finish(sums: PdsSums) -> PdsSums:
    """Close the remaining partial segments (the whole input has been seen).
    Eager, numpy."""
    out = PdsSums(sums.n_bin, power=sums.power, n_segments=sums.n_segments, n_photons=sums.n_photons,
                  var_sum=sums.var_sum, variance=sums.variance, empty=sums.empty)
    for k in sorted(sums.edges):
        _add_segment(out, *sums.edges[k])
    return out


def tree_reduce(parts: list, source: str = ""):
    """Merge a time-ordered list of Delayed :class:`PdsSums` pairwise into one
    Delayed (depth log2 of the number of parts), then :func:`finish` it.
    Lazy: builds the task graph only, nothing is computed."""
    import dask

    if not parts:
        return dask.delayed(PdsSums)(0)
    level = list(parts)
    while len(level) > 1:
        nxt = [dask.delayed(merge, pure=True)(level[i], level[i + 1], source) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return dask.delayed(finish, pure=True)(level[0])


def events_delayed(time_data, plan: SegmentPlan):
    """Delayed :class:`PdsSums` of a (Dask or numpy) array of sorted event
    times: one task per chunk, merged in a tree. Nothing is computed here;
    unsorted times raise ``ValueError`` when it is (see :func:`events_sums`)."""
    import dask
    import dask.array as da

    if not isinstance(time_data, da.Array):
        time_data = da.from_array(np.asarray(time_data), chunks=4_194_304)
    plan_d = dask.delayed(plan, pure=True, traverse=False)
    parts = [dask.delayed(events_sums, pure=True)(blk, plan_d) for blk in time_data.to_delayed().ravel()]
    return tree_reduce(parts, plan.source)


#: rows closer than this fraction of a bin count as contiguous (Stingray's tolerance at GTI borders)
ROW_TOLERANCE = 1e-3


def contiguous_rows(time_lo, time_hi, source: str = ""):
    """``(start, stop)`` [s] of the runs of contiguous rows of a light curve
    (``time_lo``/``time_hi``: the rows' bin edges [s], numpy, one width): the
    time its rows cover. A row that starts where the previous one stops
    (within :data:`ROW_TOLERANCE` of a bin and the rounding of the edges)
    continues the run, so each run is one even grid; a missing row (a later
    start) ends it, and becomes a gap as a GTI gap is. ``ValueError`` naming
    ``source`` when a row starts before the previous one stops: overlapping
    rows (e.g. a stitch of two cameras of one observation) or rows out of
    time order, which no grid holds. Eager, on the time coordinates only."""
    from .lightcurve import edge_rounding

    lo = np.asarray(time_lo, np.float64)
    hi = np.asarray(time_hi, np.float64)
    if lo.size == 0:
        return lo, hi
    tol = edge_rounding(lo, hi) + ROW_TOLERANCE * float(np.median(hi - lo))
    step = lo[1:] - hi[:-1]
    if np.any(step < -tol):
        i = int(np.argmax(step < -tol))
        raise ValueError(f"{source or 'light curve'}: rows {i} and {i + 1} overlap or are not in time order "
                         f"([{lo[i]:.15g}, {hi[i]:.15g}) s, then [{lo[i + 1]:.15g}, {hi[i + 1]:.15g}) s); a power "
                         "spectrum needs one row per time bin on one grid. A stitched light curve of two cameras "
                         "of one observation holds both cameras' rows: use one camera, or sum them "
                         "(xcube.lightcurve(tree, ..., cameras='sum')); sort rows with lc.sortby('time')")
    cut = np.flatnonzero(step > tol)
    return np.r_[lo[0], lo[cut + 1]], np.r_[hi[cut], hi[-1]]


def lightcurve_delayed(times, counts, gti, segment: float, dt: float, source: str = "", edges=None,
                       variances=None):
    """Delayed :class:`PdsSums` of a binned light curve (``times``: bin
    centres [s], numpy; ``counts``: numpy or Dask, same length; ``variances``:
    None for Poisson counts, else the variance of each bin's counts
    [count^2], numpy or Dask, same length) over the
    segments Stingray's binned rule finds inside ``gti`` and inside the runs
    of contiguous rows (:func:`contiguous_rows` of ``edges``, the rows'
    ``(time_lo, time_hi)`` [s]; default ``times -/+ dt / 2``): a missing row
    is a gap, so every segment is ``n_bin`` consecutive bins of one grid.
    Returns ``(sums, segment, n_bin, span)``, ``span`` the start of the first
    segment and the end of the last [s].
    Eager: the segment boundaries (from the time coordinates). ``source``
    names the input in errors (overlapping rows: ``ValueError``)."""
    import dask
    from stingray.gti import generate_indices_of_segment_boundaries_binned

    from .. import gti as gtimod

    segment, n_bin = segment_bins(segment, dt, source)
    times = np.asarray(times, np.float64)
    lo_all, hi_all = edges if edges is not None else (times - dt / 2, times + dt / 2)
    runs = contiguous_rows(lo_all, hi_all, source)
    g = np.column_stack(gtimod.intersection((np.asarray(gti[0], np.float64), np.asarray(gti[1], np.float64)),
                                            runs))
    try:
        idx = [(int(i0), int(i1)) for _, _, i0, i1 in
               generate_indices_of_segment_boundaries_binned(times, g, segment, dt=dt)]
    except (AssertionError, ValueError) as exc:
        gaps = f" and its {len(runs[0])} runs of contiguous rows (missing rows are gaps)" if len(runs[0]) > 1 else ""
        raise ValueError(f"{source + ': ' if source else ''}no {segment:g} s segment of whole bins lies inside "
                         f"the GTIs{gaps} ({exc})") from None
    blocks, cur = [], []
    for i0, i1 in idx:
        if cur and i1 - cur[0][0] > max(LC_BLOCK_BINS, n_bin):
            blocks.append(cur)
            cur = []
        cur.append((i0, i1))
    if cur:
        blocks.append(cur)
    parts = []
    for blk in blocks:
        lo, hi = blk[0][0], blk[-1][1]
        local = [(i0 - lo, i1 - lo) for i0, i1 in blk]
        var = None if variances is None else variances[lo:hi]
        parts.append(dask.delayed(lightcurve_sums, pure=True)(counts[lo:hi], local, n_bin, var))
    span = (float(lo_all[idx[0][0]]), float(hi_all[idx[-1][1] - 1]))
    return tree_reduce(parts), segment, int(n_bin), span
