"""The detector-hygiene rules on one block of time-sorted events (see
:mod:`xcube.hygiene` for what they decide).

:func:`scan` does the per-event work in two numba loops: a branch-free
(SIMD) loop gives each event its pixel id, or marks it not kept or off the
live pixels (outside the raw window, or on a bad column); one loop over the
ids then counts the events per pixel, follows the burst windows of the flickering rule (keeping
the state of a pixel's window only while its events come within a window of
each other) and links the events of instrumental clusters.
The decisions then work on per-pixel arrays (visiting only the pixels with
events when a block is sparse, as a small MOS file is: 2.9 million pixels)
and on the few events concerned; a last pass (:func:`apply`) runs only
when there are hot pixels, hot columns or flickering windows to drop.
Pixel ids are ``(ccd * nx + rawx - 1) * ny + rawy - 1``.
"""
from __future__ import annotations

import numba
import numpy as np

from .. import _numba_cache  # noqa: F401 (numba's cache: a failure warns instead of failing)

__all__ = ["RING", "scan", "live_pixels", "LivePixels", "hot_pixels", "hot_columns", "candidate_count", "bursts",
           "flickering", "apply", "clusters"]

#: events of one CCD remembered for the cluster links (a ring per CCD)
RING = 64


@numba.njit(nogil=True, cache=True)
def _pixel_pass(keep, ccd, rx, ry, nx, ny, n_ccd, x0, x1, y0, y1, bad, pid):  # pragma: no cover - compiled
    """Pixel id of each event in ``pid`` (int32): -1 not kept, -2 kept but
    off the live pixels: outside the raw window ``x0..x1``, ``y0..y1`` (and
    the detector's grid) or on one of the 4 ``bad`` columns (int32 ids
    ``ccd * nx + rawx - 1``; -1: none). Branch-free (SIMD)."""
    lo_x, hi_x, lo_y, hi_y = max(x0, 1), min(x1, nx), max(y0, 1), min(y1, ny)
    b0, b1, b2, b3 = bad
    for i in range(keep.size):
        c, x, y = np.int32(ccd[i]), np.int32(rx[i]), np.int32(ry[i])
        ok = keep[i] & (c >= 0) & (c < n_ccd) & (x >= lo_x) & (x <= hi_x) & (y >= lo_y) & (y <= hi_y)
        col = c * np.int32(nx) + x - np.int32(1)
        ok &= (col != b0) & (col != b1) & (col != b2) & (col != b3)
        p = col * np.int32(ny) + y - np.int32(1)
        pid[i] = p if ok else np.int32(-1) - np.int32(keep[i])


@numba.njit(nogil=True, cache=True)
def _scan_kernel(t, ccd, rx, ry, pid, timed, nx, n_ccd, k_min, window, frame_time, radius, out, counts, touched,
                 last, fstate, bursts, links):  # pragma: no cover - compiled
    """The per-event pass over the pixel ids (see :func:`scan`): ``counts``
    per pixel, and with ``touched`` (None: not wanted) the pixels with
    events (first-event order); kept events off the live pixels (``pid``
    -2) get ``out`` False. With ``last`` (None: no flickering rule), the
    burst windows of ``k_min`` events (those of :func:`_burst_kernel`) into
    ``bursts``, on int32 ticks of 0.1 s from ``win + 1`` (so ``last`` 0
    means no event yet; the caller checks that the block's span fits):
    ``last`` holds each pixel's latest tick, and a pixel's window state is
    kept in ``fstate`` (int64: tick of the event it is as of << 32 | ticks
    from the window start << 8 | events, capped at 255) only by its events
    within a window of the one before: an event further away starts a
    window of its own, so it needs no state (most events of a pixel are
    such, and a pass of stores that do not depend on what they replace runs
    three times faster than the state machine). With ``links`` (None: no
    cluster rule), the cluster links. A rule left out (None) is compiled
    out. Returns (border events, touched pixels, bursts, links, unsorted):
    with ``timed``, it stops at the first event whose time is before the
    previous one's (``unsorted`` True, the rest unfilled)."""
    n_border = nl = nt = nb = 0
    before = -np.inf
    t0 = t[0] if t.size else 0.0
    win = np.int32(window * 10.0) + np.int32(1)
    if links is not None:
        ring = np.full(n_ccd * RING, -1, np.int64)
        head = np.zeros(n_ccd, np.int64)
        nbx = ((nx + 16) >> 3) + 1  # 8-column blocks, one spare each side
        last_b = np.full(n_ccd * nbx, -np.inf)
    for i in range(t.size):
        if timed:  # (loop-invariant)
            if t[i] < before:
                return n_border, nt, nb, nl, True
            before = t[i]
        p = pid[i]
        if p < 0:
            if p == -2:
                out[i] = False
                n_border += 1
            continue
        k = counts[p] + 1
        counts[p] = k
        if touched is not None:  # the pixel ids at their first event
            touched[nt] = p
            nt += k == 1
        if last is not None:
            now = np.int32((t[i] - t0) * 10.0) + win + np.int32(1)
            prev = last[p]
            last[p] = now
            if now - prev <= win:  # within a window of the previous event: follow the window
                x = fstate[p]
                if (x >> 32) == prev:  # the state as of the previous event
                    start, size = prev - np.int32((x >> 8) & 0xFFFFFF), np.int32(x & 255)
                else:  # the previous event started a window
                    start, size = prev, np.int32(1)
                if now - start > win:
                    start, size = now, np.int32(1)
                else:
                    size = min(size + np.int32(1), np.int32(255))
                fstate[p] = (np.int64(now) << 32) | (np.int64(now - start) << 8) | np.int64(size)
                if size == k_min:
                    if nb < bursts.shape[0]:
                        bursts[nb, 0] = p
                        bursts[nb, 1] = t0 + (start - win - 1) / 10.0
                    nb += 1
        if links is not None:
            c, x, y = np.int64(ccd[i]), np.int64(rx[i]), np.int64(ry[i])
            h = head[c]
            ring[c * RING + (h & (RING - 1))] = i
            head[c] = h + 1
            # quick test: the latest events of the 8-column blocks within reach (both read, no branch)
            near = (t[i] - last_b[c * nbx + ((x - 1 - radius + 8) >> 3)] <= frame_time) | \
                (t[i] - last_b[c * nbx + ((x - 1 + radius + 8) >> 3)] <= frame_time)
            last_b[c * nbx + ((x - 1 + 8) >> 3)] = t[i]
            if near:
                for k in range(1, RING):
                    j = ring[c * RING + ((h - k) & (RING - 1))]
                    if j < 0 or t[i] - t[j] > frame_time:
                        break
                    if abs(np.int64(rx[j]) - x) <= radius and abs(np.int64(ry[j]) - y) <= radius:
                        if nl < links.shape[0]:
                            links[nl, 0] = j
                            links[nl, 1] = i
                        nl += 1
    return n_border, nt, nb, nl, False


@numba.njit(nogil=True, cache=True)
def _burst_kernel(t, pid, k_min, window, fstate, bursts):  # pragma: no cover - compiled
    """The burst windows of the kept live events (``pid`` >= 0), for a block
    whose span overflows :func:`_scan_kernel`'s int32 ticks: per pixel, a
    window of ``window`` s + 1 tick of 0.1 s starts at the pixel's first
    event after the previous window (``fstate``, int64 per pixel, zero on
    entry: start tick << 8 | events in the window, capped at 255);
    ``bursts`` gets ``(pixel, start)`` of each window reaching ``k_min``
    events. Returns how many (rows beyond the array are counted only)."""
    nb = 0
    t0 = t[0] if t.size else 0.0
    win = np.int64(window * 10.0) + 1
    for i in range(t.size):
        p = pid[i]
        if p < 0:
            continue
        now = np.int64((t[i] - t0) * 10.0)
        start, size = fstate[p] >> 8, fstate[p] & 255
        if size == 0 or now - start > win:
            start, size = now, 0
        size = min(size + 1, 255)
        fstate[p] = (start << 8) | size
        if size == k_min:
            if nb < bursts.shape[0]:
                bursts[nb, 0] = p
                bursts[nb, 1] = t0 + start / 10.0
            nb += 1
    return nb


def scan(t, keep, ccd, rx, ry, live: "LivePixels", k_min: int, seconds: float, frame_time: float, radius: int):
    """One pass over a block's events: ``(out, n_border, pid, counts, cells,
    bursts, links, unsorted)``: ``keep`` without the kept events off the
    ``live`` pixels (outside the raw window or on a bad column), and how
    many those were; each event's pixel id (int32; -1 not kept, -2 off the
    live pixels); int32 counts per pixel; when the pixels outnumber twice
    the events, the ids of the pixels with events (``cells``, unordered:
    the per-pixel rules then visit only those; else None); the burst
    windows ``(pixel, start)`` (k, 2) (windows of ``seconds`` anchored at a
    pixel's first event after its previous window that reach ``k_min``
    events; none with ``k_min`` 0; times to 0.1 s: the candidates of
    :func:`bursts` when ``k_min`` is :func:`candidate_count`); the cluster links
    ``(earlier, later)`` (m, 2) event indices: same CCD, at most ``radius``
    pixels apart in RAWX and RAWY, within ``frame_time`` s (none with
    ``frame_time`` 0; among the last :data:`RING` events of the CCD);
    whether the times are unsorted (only looked at when ``k_min`` or
    ``frame_time`` needs them; the caller then sorts and scans again, and
    the other results are not filled). Eager, numpy/numba, on the block's 1-D
    event arrays (``t`` [s]; ``seconds``, ``frame_time`` [s]; ``radius`` [raw
    pixels])."""
    n_ccd, nx, ny = live.shape
    pid = np.empty(keep.size, np.int32)
    _pixel_pass(keep, ccd, rx, ry, nx, ny, n_ccd, *live.window, live.bad_first, pid)
    if live.bad_ids.size > len(live.bad_first):  # the bad columns beyond those the pass tests
        pid[np.isin(np.where(pid >= 0, pid // ny, -1), live.bad_ids[len(live.bad_first):])] = -2
    win = int(seconds * 10.0) + 1
    long_span = k_min > 0 and t.size and (float(t[-1] - t[0]) * 10.0 + 2 * win + 2 >= 2**31 - 1)
    k_scan = 0 if long_span else int(k_min)  # (a block over 6.8 years: the windows in a pass of their own)
    cap_b, cap_l = 4096, 1 << 16  # (candidate windows of half the count: thousands in a block with a bright source)
    while True:
        out = keep.copy()
        counts = np.zeros(n_ccd * nx * ny, np.int32)
        track = counts.size > 2 * keep.size  # sparse block: list the pixels with events as they come
        touched = np.empty(min(keep.size, counts.size) + 1, np.int64) if track else None
        last = np.zeros(counts.size, np.int32) if k_scan else None
        fstate = np.zeros(counts.size if k_min else 1, np.int64)
        bursts = np.empty((cap_b, 2), np.float64)
        links = np.empty((cap_l, 2), np.int64) if frame_time > 0 else None
        n_border, nt, nb, nl, unsorted = _scan_kernel(t, ccd, rx, ry, pid, k_min > 0 or frame_time > 0, nx, n_ccd,
                                                      k_scan, float(seconds), float(frame_time), int(radius), out,
                                                      counts, touched, last, fstate, bursts, links)
        if unsorted:
            return keep, 0, None, None, None, None, None, True
        if long_span:
            while (nb := _burst_kernel(t, pid, int(k_min), float(seconds), fstate, bursts)) > cap_b:
                cap_b, fstate[:] = nb, 0
                bursts = np.empty((cap_b, 2), np.float64)
        if nb <= cap_b and nl <= cap_l:
            cells = touched[:nt] if track else None
            links = links[:nl] if links is not None else np.empty((0, 2), np.int64)
            return out, int(n_border), pid, counts, cells, bursts[:nb], links, False
        cap_b, cap_l = max(cap_b, nb), max(cap_l, nl)


def live_pixels(shape, window, badcol) -> np.ndarray:
    """Flat bool of the pixels inside the raw window and not on a bad column.
    Eager, numpy: length ``n_ccd * nx * ny``."""
    n_ccd, nx, ny = shape
    x0, x1, y0, y1 = window
    live = np.zeros(shape, bool)
    live[:, max(x0, 1) - 1:min(x1, nx), max(y0, 1) - 1:min(y1, ny)] = True
    live &= ~badcol.reshape(n_ccd, nx)[:, :, None]
    return live.ravel()


@numba.njit(nogil=True, cache=True)
def _candidates(values, live, cells, mean, floor, nx, ny, dxs, dys, ratio, found, lams):  # pragma: no cover
    """Write to ``found``/``lams`` the live cells among ``cells`` (ids) of
    at least ``floor[c]`` (per CCD c) whose value
    exceeds ``lambda = max(mean[c], ratio x mean of its live neighbours at
    (dxs, dys))``, and that lambda; returns how many (rows beyond the arrays
    are counted only)."""
    m = 0
    for i in range(cells.size):
        p = cells[i]
        v = values[p]
        if not live[p]:
            continue
        c = p // (nx * ny)
        x = (p - c * nx * ny) // ny
        y = p - (c * nx + x) * ny
        if v < floor[c] or v <= mean[c]:
            continue
        s = 0.0
        k = 0
        for j in range(dxs.size):
            xx, yy = x + dxs[j], y + dys[j]
            if 0 <= xx < nx and 0 <= yy < ny:
                q = p + dxs[j] * ny + dys[j]
                if live[q]:
                    s += values[q]
                    k += 1
        lam = max(mean[c], ratio * s / max(k, 1))
        if v > lam:
            if m < found.size:
                found[m] = p
                lams[m] = lam
            m += 1
    return m


def _tail_floor(mean, p_max) -> np.ndarray:
    """Per CCD, a value below which no cell can be improbable: the largest n
    of a coarse grid above the CCD mean with ``P(N >= n | mean) >= p_max``
    (lambda is at least the CCD mean, so no smaller n is improbable); at least 2."""
    from scipy import special

    m = np.maximum(np.asarray(mean, np.float64), 0.0)[:, None]
    n = np.floor(m + np.arange(21.0)[None] * (np.sqrt(m) + 1.0))  # (CCDs, 21), rising
    likely = special.pdtrc(n - 1.0, np.maximum(m, 1e-12)) >= p_max
    return np.maximum(np.where(likely, n, 0.0).max(axis=1), 2.0)


def _group_sums(values, cells, size: int, n: int) -> np.ndarray:
    """int64 (n,) sums of ``values`` over consecutive groups of ``size``
    cells: over ``cells`` (ids of the non-zero cells), or all cells (None)."""
    if cells is None:
        return values.reshape(n, size).sum(axis=1, dtype=np.int64)
    return np.bincount(cells // size, weights=values[cells], minlength=n)[:n].astype(np.int64)


def _hot_cells(values, live, cells, n_live, n_ccd, nx, ny, offsets, ratio, false_alarm, present=None) -> np.ndarray:
    """Ids (unordered) of the live cells whose value is improbable (``P(N >=
    n | lambda) < false_alarm / trials``) under ``lambda = max(CCD mean,
    ratio x mean of the live neighbours at offsets (dx, dy))``, ``trials``
    being the live cells of the CCDs ``present`` (bool per CCD; default: the
    CCDs with a value: a CCD without events, such as XMM's unused CCD 0 or a
    CCD that is off, has no cell to test). ``cells``: the ids of the cells
    with a value (every other cell holds 0), or None to visit all;
    ``n_live``: live cells per CCD."""
    from scipy import special

    sums = _group_sums(values, cells, nx * ny, n_ccd)
    mean = sums / np.maximum(n_live, 1)
    p_max = false_alarm / max(int(n_live[sums > 0 if present is None else present].sum()), 1)
    floor = _tail_floor(mean, p_max)
    # only cells at or above their CCD's floor can be hot: a SIMD numpy test picks them, the kernel visits those
    if cells is None:
        cells = np.flatnonzero(values.reshape(n_ccd, nx * ny) >= floor[:, None])
    else:
        cells = np.asarray(cells, np.int64)
        cells = cells[values[cells] >= floor[cells // (nx * ny)]]
    cap = 1024
    while True:
        found, lams = np.empty(cap, np.int64), np.empty(cap, np.float64)
        m = _candidates(values, live, cells, mean, floor, nx, ny, offsets[:, 0].copy(),
                        offsets[:, 1].copy(), float(ratio), found, lams)
        if m <= cap:
            break
        cap = m
    found, lams = found[:m], lams[:m]
    return found[special.pdtrc(values[found].astype(np.float64) - 1.0, np.maximum(lams, 1e-12)) < p_max]


_EIGHT = np.array([(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy], np.int64)


class LivePixels:
    """The live pixels of a raw window (inside it, not on a bad column) and
    their numbers per CCD and per column: fixed for a camera, so built once
    per CCD count and reused by every block."""

    def __init__(self, shape, window, badcol):
        n_ccd, nx, ny = shape
        self.shape, self.window = shape, tuple(int(w) for w in window)
        self.bad_ids = np.flatnonzero(badcol).astype(np.int32)  # (ccd * nx + rawx - 1) of the bad columns
        first = list(self.bad_ids[:4]) + [-1] * 4
        self.bad_first = tuple(np.int32(b) for b in first[:4])  # those the pixel pass tests (SIMD)
        self.pixels = live_pixels(shape, window, badcol)
        per_col = self.pixels.reshape(n_ccd * nx, ny).sum(axis=1)
        self.per_column = per_col  # live pixels of each (ccd, rawx) column
        self.per_ccd = per_col.reshape(n_ccd, nx).sum(axis=1)
        self.total = int(self.per_ccd.sum())


def hot_pixels(counts, live: LivePixels, cells, ratio: float, false_alarm: float) -> np.ndarray:
    """Ids (unordered) of the hot pixels: ``P(N >= n | max(CCD mean, ratio x
    mean of the 8 live neighbours)) < false_alarm / live pixels of the CCDs
    with counts`` (the pixels tested: not those of the CCD numbers below the
    largest that have no events, e.g. XMM's CCD 0, which does not exist).
    ``counts``: per pixel, 0 off the live pixels; ``cells``: the ids of the
    pixels with counts (None: visit all). Eager, numpy/numba: 1-D int ids."""
    n_ccd, nx, ny = live.shape
    return _hot_cells(counts, live.pixels, cells, live.per_ccd, n_ccd, nx, ny, _EIGHT, ratio, false_alarm)


def hot_columns(counts, live: LivePixels, cells, hot, ratio: float, false_alarm: float) -> np.ndarray:
    """Ids (unordered) over (ccd, rawx) of the hot columns: the pixel rule on
    the column sums of the pixels that are not ``hot`` (ids), the
    neighbours being the columns on either side, the trials the live
    columns of the CCDs with counts (``cells`` as for :func:`hot_pixels`).
    Eager, numpy/numba: 1-D int ids."""
    n_ccd, nx, ny = live.shape
    n_col = n_ccd * nx
    hot = np.asarray(hot, np.int64)
    col = _group_sums(counts, cells, ny, n_col)
    present = col.reshape(n_ccd, nx).sum(axis=1) > 0  # (before the hot pixels go: the CCDs of hot_pixels)
    np.subtract.at(col, hot // ny, counts[hot])
    live_col = live.per_column - np.bincount(hot // ny, minlength=n_col)[:n_col] > 0
    n_live = live_col.reshape(n_ccd, nx).sum(axis=1)
    col = col.astype(np.int32)  # (a block's events fit; and the pixels' int32 specialisation serves)
    return _hot_cells(col, live_col, None, n_live, n_ccd, nx, 1, np.array([[-1, 0], [1, 0]], np.int64), ratio,
                      false_alarm, present)


def _neighbours(p, shape) -> np.ndarray:
    n_ccd, nx, ny = shape
    c, rem = divmod(int(p), nx * ny)
    x, y = divmod(rem, ny)
    return np.array([(c * nx + x + dx) * ny + y + dy for dx, dy in _EIGHT if 0 <= x + dx < nx and 0 <= y + dy < ny])


def candidate_count(k_min: int) -> int:
    """Events a :func:`scan` window must reach for its pixel to be a burst
    candidate of :func:`bursts`: ``ceil(k_min / 2)``. Any ``seconds`` long
    stretch of time meets at most two of a pixel's scan windows (each at
    least that long, and a new one starts only at an event after the last
    ends), so one holding ``k_min`` events puts at least half of them in
    one window. (For ``k_min`` 3 and more: a window of one event is never
    reported, so two events in two windows would go unseen.)"""
    if int(k_min) < 3:
        raise ValueError(f"flicker_counts={k_min}: the flickering rule needs 3 or more events")
    return (int(k_min) + 1) // 2


def bursts(t, pid, candidates, k_min: int, seconds: float):
    """``(pixels, t0, t1)``: every run of a pixel's events in which each
    ``k_min`` consecutive ones fall within ``seconds`` (sliding windows,
    overlapping ones merged: from the first event of the first window to
    the last of the last), over the block's events of the pixels of the
    candidate windows ``candidates`` ((pixel, start) rows of :func:`scan`
    run with :func:`candidate_count`; a pixel with a burst is among them).
    ``pid``: the events' pixel ids (``t`` sorted). Eager, numpy, vectorised
    (one pass over ``pid`` to pick the candidates' events, one sort of
    those): three 1-D arrays; ``t``, ``t0``, ``t1``, ``seconds`` [s]."""
    k = int(k_min)
    none = (np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.float64))
    cand = np.unique(np.asarray(candidates, np.float64)[:, 0].astype(np.int64)) if len(candidates) else None
    if cand is None or k < 1:
        return none
    idx = np.flatnonzero(np.isin(pid, cand, kind="table"))
    if idx.size < k:
        return none
    order = np.argsort(pid[idx], kind="stable")  # by pixel; each pixel's events stay in time order
    p, tt = pid[idx][order].astype(np.int64), t[idx][order]
    m = p.size - k + 1
    ok = (p[k - 1:] == p[:m]) & (tt[k - 1:] - tt[:m] <= seconds)  # windows of k events of one pixel
    j = np.flatnonzero(ok)
    if j.size == 0:
        return none
    lo, hi, pj = tt[j], tt[j + k - 1], p[j]
    # within a pixel both ends rise with j: a window starts a new run when its pixel changes or it begins
    # after the previous window's end (overlapping windows merge into one run)
    new = np.r_[True, (pj[1:] != pj[:-1]) | (lo[1:] > hi[:-1])]
    starts = np.flatnonzero(new)
    t1 = np.maximum.reduceat(hi, starts)
    return pj[starts], lo[starts], t1


def flickering(t, pid, live: "LivePixels", runs, counts, seconds: float, ratio: float, p_max: float, hot, hot_col):
    """``(pixels, t0, t1)`` of the flickering runs among the burst ``runs``
    (pixels, t0, t1) of :func:`bursts` (not on a ``hot`` pixel or
    ``hot_col`` column: ids): the pixel's ``own`` events in the run are
    improbable from its rate over the block (``P(N >= own | rate x
    max(seconds, t1 - t0)) x windows < p_max``), and its 8 neighbours hold
    improbably few events in the run for light spread by the PSF
    (``P(N <= neighbours | own x 8 / ratio) < p_max``; a flare lights
    them). ``pid``: the events' pixel ids from :func:`scan`. Eager, numpy:
    three 1-D arrays; ``t``, ``t0``, ``t1``, ``seconds`` in [s]."""
    from scipy import special

    px, t0s, t1s = [], [], []
    shape = live.shape
    ny = shape[2]
    span = max(float(t[-1] - t[0]), seconds)
    hot, hot_col = set(np.asarray(hot).tolist()), set(np.asarray(hot_col).tolist())
    for p, t0, t1 in zip(*runs):
        p = int(p)
        if p in hot or p // ny in hot_col:
            continue
        a, b = np.searchsorted(t, t0, "left"), np.searchsorted(t, t1, "right")
        seg = pid[a:b]  # (>= 0: the kept events on live pixels)
        own = float((seg == p).sum())
        nbr = float(np.isin(seg, _neighbours(p, shape)).sum())
        sudden = special.pdtrc(own - 1.0, counts[p] / span * max(seconds, t1 - t0)) * (span / seconds) < p_max
        alone = special.pdtr(nbr, own * 8.0 / ratio) < p_max
        if sudden and alone:
            px.append(p)
            t0s.append(t0)
            t1s.append(t1)
    return np.array(px, np.int64), np.array(t0s, np.float64), np.array(t1s, np.float64)


@numba.njit(nogil=True, cache=True)
def _apply_kernel(t, out, pid, ny, hot, hot_col, fl_head, fl_next, fl_t0, fl_t1, stats):  # pragma: no cover
    """Clear ``out`` for the kept events of hot pixels, hot columns and flickering windows."""
    for i in range(t.size):
        if not out[i]:  # (an event still kept has a live pixel)
            continue
        p = pid[i]
        if hot[p] or hot_col[p // ny]:
            out[i] = False
            stats[0 if hot[p] else 1] += 1
            continue
        j = fl_head[p] if fl_head.size > 1 else -1
        while j >= 0:
            if fl_t0[j] <= t[i] <= fl_t1[j]:
                out[i] = False
                stats[2] += 1
                break
            j = fl_next[j]


def apply(t, out, pid, shape, hot, hot_col, flicker):
    """Clear ``out`` (the events kept so far) for the events of hot pixels,
    hot columns and flickering windows (``hot``, ``hot_col``: ids of the
    pixels and of the (ccd, rawx) columns; ``flicker``: pixels, t0, t1;
    ``pid``: the events' pixel ids from :func:`scan`); returns their counts
    ``[hot pixel, hot column, flickering]``. No pass over the events when
    there is nothing to drop. Eager, numpy/numba: changes ``out`` in place;
    ``t`` [s]."""
    n_ccd, nx, ny = shape
    px, t0, t1 = flicker
    stats = np.zeros(3, np.int64)
    if not (len(hot) or len(hot_col) or px.size):
        return stats
    is_hot, is_hot_col = np.zeros(n_ccd * nx * ny, bool), np.zeros(n_ccd * nx, bool)
    is_hot[hot], is_hot_col[hot_col] = True, True
    head = np.full(n_ccd * nx * ny if px.size else 1, -1, np.int64)
    nxt = np.full(max(px.size, 1), -1, np.int64)
    for k, p in enumerate(px):
        nxt[k], head[p] = head[p], k
    _apply_kernel(t, out, pid, ny, is_hot, is_hot_col, head, nxt, t0 if px.size else np.zeros(1),
                  t1 if px.size else np.zeros(1), stats)
    return stats


def clusters(t, pid, links, counts, shape, frame_time: float, min_events: int, radius: int, probability: float,
             out):
    """Clear ``out`` (the events kept so far) for the events of improbable
    clusters (the module doc of :mod:`xcube.hygiene`, rule 5): connected
    groups of the ``links`` (pairs of event indices) with at least
    ``min_events`` events still kept (``pid``: the events' pixel ids from
    :func:`scan`). Returns ``(clusters, events)`` dropped. Eager, numpy:
    changes ``out`` in place; ``t``, ``frame_time`` [s]."""
    from scipy import special

    ok = out[links[:, 0]] & out[links[:, 1]]
    links = links[ok]
    if links.size == 0:
        return 0, 0
    members, inv = np.unique(links, return_inverse=True)
    label = _components(inv.reshape(-1, 2), members.size)  # per member: its cluster's first member
    size = np.bincount(label)
    big = np.flatnonzero(size >= min_events)
    if big.size == 0:
        return 0, 0
    first = np.full(size.size, t.size, np.int64)
    last = np.zeros(size.size, np.int64)
    np.minimum.at(first, label, members)
    np.maximum.at(last, label, members)
    span = max(float(t[-1] - t[0]), frame_time, 1.0)
    window_s = t[last[big]] - t[first[big]] + frame_time
    pix = pid[first[big]]
    box = np.array([_box_sum(counts, int(p), shape, radius) for p in pix])
    one_frame = window_s < 2.0 * frame_time  # an instrumental event lies in one frame; a flare's photons do not
    yes = one_frame & (special.pdtrc(size[big] - 1.0, box / span * window_s) * (span / window_s) < probability)
    # those improbable from the block's mean rate in the box are tested again with the rate in the
    # LOCAL_FRAMES frames either side in a box of the PSF's size (LOCAL_RADIUS), when larger: a flare's or a
    # bright source's photons fall there too, an instrumental event's do not
    for k in np.flatnonzero(yes):
        local = _local_rate(t, pid, first[big[k]], last[big[k]], int(pix[k]), shape, max(radius, LOCAL_RADIUS),
                            frame_time)
        if local > box[k] / span:
            yes[k] = special.pdtrc(size[big[k]] - 1.0, local * window_s[k]) * (span / window_s[k]) < probability
    hit = members[np.isin(label, big[yes])]
    out[hit] = False
    return int(yes.sum()), int(hit.size)


def _components(edges, n: int) -> np.ndarray:
    """Connected components of an undirected graph of ``n`` nodes given as
    ``(m, 2)`` index pairs: each node's label is the smallest node of its
    component. Min-label hooking with pointer jumping, in numpy: the few
    small clusters of a block need a handful of rounds, and the search does
    not pay the 30-60 ms import of ``scipy.sparse.csgraph`` at its first
    call (labels only fall, so it ends; at the end both ends of every edge
    share one label)."""
    label = np.arange(n)
    a, b = edges[:, 0], edges[:, 1]
    while True:
        la, lb = label[a], label[b]
        low = np.minimum(la, lb)
        new = label.copy()
        for idx in (a, b, la, lb):  # the nodes and their current roots take the smaller label
            np.minimum.at(new, idx, low)
        new = new[new]
        if np.array_equal(new, label):
            return label
        label = new


#: frames [count] either side of a cluster whose events in its box give its local rate (see :func:`clusters`)
LOCAL_FRAMES = 5
#: half-width [raw pixels] of the box of that local rate: about the MOS PSF's FWHM (6.6", 1.1" pixels), so
#: that the other photons of a flare or a source, spread by the PSF beyond the cluster's own pixels, count
LOCAL_RADIUS = 6


def _local_rate(t, pid, i_first, i_last, p, shape, r, frame_time) -> float:
    """Events per second [1/s] in the box of pixels at most ``r`` from pixel
    ``p`` (its CCD) during the :data:`LOCAL_FRAMES` frame times before the
    cluster's first event (index ``i_first``) and after its last
    (``i_last``), the cluster's own time window left out.
    Eager, on the block's sorted times and pixel ids (-1/-2: not kept)."""
    if frame_time <= 0:
        return 0.0
    n_ccd, nx, ny = shape
    reach = LOCAL_FRAMES * frame_time
    t_first, t_last = t[i_first], t[i_last]
    lo, hi = np.searchsorted(t, t_first - reach, "left"), np.searchsorted(t, t_last + reach, "right")
    q = pid[lo:hi].astype(np.int64)
    c0, rem = divmod(p, nx * ny)
    x0, y0 = divmod(rem, ny)
    c, rem = np.divmod(q, nx * ny)
    x, y = np.divmod(rem, ny)
    near = (q >= 0) & (c == c0) & (np.abs(x - x0) <= r) & (np.abs(y - y0) <= r)
    inside = (t[lo:hi] >= t_first) & (t[lo:hi] <= t_last)  # the cluster's own window
    return float(np.count_nonzero(near & ~inside)) / (2.0 * reach)


def _box_sum(counts, p, shape, r) -> float:
    """Counts of the pixels at most ``r`` pixels from ``p`` on its CCD."""
    n_ccd, nx, ny = shape
    c, rem = divmod(p, nx * ny)
    x, y = divmod(rem, ny)
    grid = counts.reshape(shape)[c]
    return float(grid[max(x - r, 0):x + r + 1, max(y - r, 0):y + r + 1].sum())
