"""Detector hygiene: events the detector made, removed before binning.

A :class:`HygieneTest` is one test of an :class:`~xcube.select.EventFilter`
(the same object the transient search's single events pass applies and that
``select(events, hygiene=...)`` applies), so the search's cube and ``select``
+ ``bin_events`` hold the same events. It works on the raw detector pixel
``(CCD, RAWX, RAWY)`` of each event (the mission profile's ``raw_columns``)
and, in this order, drops:

1. **border and bad columns**: events within ``border_margin`` pixels of a
   CCD's border (of the rows read out in the observation's mode) and events
   of the profile's bad columns (``MissionProfile.border_margin``,
   ``raw_rows``, ``bad_columns``);
2. **hot pixels**: a pixel whose counts ``n`` are improbable under the
   larger of its CCD's mean counts per pixel ``m`` and ``hot_ratio`` times
   the mean of its 8 neighbours ``b``: ``P(N >= n | lambda = max(m,
   hot_ratio b)) < false_alarm / n_pixels`` (a point source spreads over
   its neighbours, so it is not hot; a hot pixel stands alone);
3. **hot columns**: the same test on the counts of a detector column (after
   the hot pixels), its neighbours being the columns on either side;
4. **flickering pixels**: ``flicker_counts`` events of one pixel within
   ``flicker_seconds`` (windows anchored at a pixel's first event after the
   previous window), while the 8 neighbours together hold fewer than
   ``8 / hot_ratio`` times as many events in the same window (an
   astrophysical flare lights the neighbours through the PSF); the pixel's
   events of the window are dropped;
5. **instrumental clusters**: ``cluster_events`` or more events chained
   through neighbouring pixels (at most ``cluster_radius`` pixels apart in
   RAWX and in RAWY, same CCD), each within one CCD
   frame time (``MissionProfile.frame_time``) of the previous one there,
   when that many are improbable from the counts of the pixels around
   the cluster's first event over the block: ``P(N >= size | lambda) x
   (block span / window) < cluster_probability`` with ``lambda`` the box's
   rate times the window (the cluster's duration plus a frame time), the
   factor counting the windows the box had (so that the photons of a bright
   source, which often fall together, are kept); all events of such a
   cluster are dropped (one instrumental event).

Every statistic is taken on the events that pass the filter's other tests
(the search: the screened events of all energies), block by block: the
blocks are the event list's chunks (``select`` and the search see the same
chunks; in-memory event lists are cut into :data:`BLOCK_EVENTS` events).
Counts of what each rule removed go to the ``stats`` of the filter
(``EventFilter.mask``), and from there to the search summary.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import numba
import numpy as np

__all__ = ["Hygiene", "HygieneTest", "BLOCK_EVENTS", "STAT_KEYS", "hygiene_test", "merge_stats"]

log = logging.getLogger("xcube.hygiene")

#: events per block of an in-memory event list (Dask event lists use their chunks)
BLOCK_EVENTS = 1 << 22
#: the counters a HygieneTest adds to the filter statistics
STAT_KEYS = ("border_events", "hot_pixels", "hot_pixel_events", "hot_columns", "hot_column_events",
             "flickering_bursts", "flickering_events", "instrumental_clusters", "instrumental_events")


@dataclass(frozen=True)
class Hygiene:
    """Options of the detector hygiene (see the module doc). The defaults are
    on, with the EXOD pn border and bad columns from the mission profile
    (``border_margin``: pixels instead of the profile's margin).

    ``false_alarm``: expected hot pixels (and hot columns) per camera and
    block in data without any; ``hot_ratio``: how many times the mean of its
    neighbours a hot pixel, column or flickering burst must exceed;
    ``flicker_counts`` events within ``flicker_seconds`` [s] make a burst;
    ``cluster_events`` events within frame times in pixels at most
    ``cluster_radius`` apart make a candidate instrumental event, dropped
    when improbable (``cluster_probability``)."""

    border: bool = True
    border_margin: int | None = None
    hot_pixels: bool = True
    hot_columns: bool = True
    flickering: bool = True
    clusters: bool = True
    false_alarm: float = 1e-3
    hot_ratio: float = 5.0
    flicker_counts: int = 10
    flicker_seconds: float = 10.0
    cluster_events: int = 3
    cluster_radius: int = 2
    cluster_probability: float = 1e-4

    @classmethod
    def of(cls, value) -> "Hygiene | None":
        """``True`` -> defaults, ``False``/``None`` -> None, a dict -> options,
        a :class:`Hygiene` unchanged."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {f.name for f in fields(cls)}
            if unknown:
                raise ValueError(f"hygiene: unknown option(s) {sorted(unknown)}; known: "
                                 f"{[f.name for f in fields(cls)]}")
            return cls(**value)
        raise TypeError(f"hygiene must be True, False, a dict of options or a Hygiene, got {type(value).__name__}")

    def label(self, margin: int, frame_time: float) -> str:
        parts = []
        if self.border:
            parts.append(f"border {margin} px + bad columns")
        if self.hot_pixels or self.hot_columns:
            parts.append(f"hot pixels/columns (false alarm {self.false_alarm:g}, ratio {self.hot_ratio:g})")
        if self.flickering:
            parts.append(f"flickering ({self.flicker_counts} ev in {self.flicker_seconds:g} s)")
        if self.clusters and frame_time > 0:
            parts.append(f"clusters ({self.cluster_events} ev within {frame_time:g} s, {self.cluster_radius} px)")
        return "hygiene=" + ", ".join(parts)


def merge_stats(a: dict, b: dict) -> dict:
    """Sum two statistics dicts (numbers add, lists concatenate)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = out[k] + v if k in out else v
    return out


def hygiene_test(events, options) -> "HygieneTest | None":
    """The :class:`HygieneTest` of ``options`` (see :meth:`Hygiene.of`) for
    ``events``, or None when off or when the events have no raw detector
    pixel (profile without ``raw_columns``, or the columns absent: logged)."""
    from .missions import profile_of

    opts = Hygiene.of(options)
    if opts is None:
        return None
    prof = profile_of(events)
    src = events.attrs.get("source", "events")
    if not prof.raw_columns:
        log.info("%s: %s has no raw detector pixels; detector hygiene skipped", src, prof.name)
        return None
    missing = [c for c in prof.raw_columns if c not in events.variables]
    if missing:
        log.info("%s: no %s column(s); detector hygiene skipped", src, "/".join(c.upper() for c in missing))
        return None
    return HygieneTest(prof, events.attrs.get("submode"), opts)


class HygieneTest:
    """The detector hygiene of one camera as a *contextual* filter test: it
    is called as ``test(cols, keep, stats)`` on a block of events (``keep``
    the events passing the other tests) and returns the events it keeps.
    Picklable and cheap to build."""

    contextual = True

    def __init__(self, profile, submode, options: Hygiene):
        self.options = options
        self.names = tuple(profile.raw_columns)
        x0, x1, y0, y1 = profile.raw_window(submode)
        m = (profile.border_margin if options.border_margin is None else int(options.border_margin)) \
            if options.border else 0
        self.window = (x0 + m, x1 - m, y0 + m, y1 - m)
        self.size = tuple(profile.raw_size)
        self.bad_columns = tuple(profile.bad_columns) if options.border else ()
        self.frame_time = float(profile.frame_time)
        self.label = options.label(m, self.frame_time)

    @property
    def columns(self) -> frozenset:
        return frozenset(("time",) + self.names)

    def __call__(self, cols, keep, stats=None):
        keep = np.asarray(keep, dtype=bool)
        idx = np.flatnonzero(keep)
        out = keep.copy()
        counts = {k: 0 for k in STAT_KEYS}
        if idx.size:
            t = np.asarray(cols["time"], np.float64)[idx]
            order = None if _sorted(t) else np.argsort(t, kind="stable")
            if order is not None:
                idx, t = idx[order], t[order]
            ccd, rx, ry = (np.asarray(cols[c])[idx] for c in self.names)
            drop = self._drop(t, ccd, rx, ry, counts)
            out[idx[drop]] = False
        if stats is not None:
            for k, v in counts.items():
                stats[k] = stats.get(k, 0) + v
        return out

    # ------------------------------------------------------------------ the rules
    def _drop(self, t, ccd, rx, ry, counts) -> np.ndarray:
        """Boolean (n,) of the events to drop; ``counts`` gets the numbers."""
        o = self.options
        nx, ny = self.size
        n_ccd = int(ccd.max()) + 1 if ccd.size else 1
        pix = np.empty(t.size, np.int64)
        badcol = np.zeros(n_ccd * nx, np.bool_)
        for c, x in self.bad_columns:
            if c < n_ccd and 1 <= x <= nx:
                badcol[c * nx + x - 1] = True
        x0, x1, y0, y1 = self.window
        _pixel_ids(ccd, rx, ry, nx, ny, x0, x1, y0, y1, badcol, pix)
        drop = pix < 0
        counts["border_events"] = int(drop.sum())
        live = _live_pixels(n_ccd, nx, ny, self.window, badcol)
        span = max(float(t[-1] - t[0]), self.frame_time, 1.0)
        if o.hot_pixels or o.hot_columns:
            n_pix = np.bincount(pix[~drop], minlength=live.size)
            hot = _hot_pixels(n_pix, live, (n_ccd, nx, ny), o) if o.hot_pixels else np.zeros(live.size, bool)
            ok = ~drop
            hit = np.zeros(t.size, bool)
            hit[ok] = hot[pix[ok]]
            counts["hot_pixels"], counts["hot_pixel_events"] = int(hot.sum()), int(hit.sum())
            drop |= hit
            if o.hot_columns:
                cols_hot = _hot_columns(np.where(hot, 0, n_pix), live & ~hot, (n_ccd, nx, ny), o)
                ok = ~drop
                hitc = np.zeros(t.size, bool)
                hitc[ok] = cols_hot[pix[ok] // ny]
                counts["hot_columns"], counts["hot_column_events"] = int(cols_hot.sum()), int(hitc.sum())
                drop |= hitc
        if o.flickering:
            fl, nb = _flickering(t, np.where(drop, -1, pix), (n_ccd, nx, ny), o)
            counts["flickering_bursts"], counts["flickering_events"] = nb, int(fl.sum())
            drop |= fl
        if o.clusters and self.frame_time > 0:
            cl, nc = _clusters(t, np.where(drop, -1, pix), (n_ccd, nx, ny), self.frame_time, span, o)
            counts["instrumental_clusters"], counts["instrumental_events"] = nc, int(cl.sum())
            drop |= cl
        return drop


def _sorted(t) -> bool:
    return bool(t.size < 2 or np.all(t[1:] >= t[:-1]))


@numba.njit(nogil=True, cache=True)
def _pixel_ids(ccd, rx, ry, nx, ny, x0, x1, y0, y1, badcol, out):  # pragma: no cover - compiled
    """Flat pixel id ``(ccd * nx + rawx - 1) * ny + rawy - 1`` of each event,
    -1 outside the window ``[x0, x1] x [y0, y1]`` or on a bad column."""
    for i in range(ccd.size):
        c, x, y = np.int64(ccd[i]), np.int64(rx[i]), np.int64(ry[i])
        if c < 0 or x < x0 or x > x1 or y < y0 or y > y1 or x < 1 or x > nx or y < 1 or y > ny:
            out[i] = -1
            continue
        col = c * nx + x - 1
        out[i] = -1 if badcol[col] else col * ny + y - 1


def _live_pixels(n_ccd, nx, ny, window, badcol) -> np.ndarray:
    """Flat bool of the pixels inside the window and not on a bad column."""
    x0, x1, y0, y1 = window
    live = np.zeros((n_ccd, nx, ny), bool)
    live[:, max(x0, 1) - 1:min(x1, nx), max(y0, 1) - 1:min(y1, ny)] = True
    live &= ~badcol.reshape(n_ccd, nx)[:, :, None]
    return live.ravel()


def _neighbour_mean(values, live, shape, axes_offsets) -> np.ndarray:
    """Mean of ``values`` over the live neighbours at ``axes_offsets`` (list
    of (dx, dy)) of each cell of the (ccd, x, y) grid; 0 without any."""
    v = np.where(live, values, 0).reshape(shape).astype(np.float64)
    w = live.reshape(shape).astype(np.float64)
    s, k = np.zeros(shape), np.zeros(shape)
    nx, ny = shape[1], shape[2]
    for dx, dy in axes_offsets:
        xs, xd = (slice(dx, nx), slice(0, nx - dx)) if dx >= 0 else (slice(0, nx + dx), slice(-dx, nx))
        ys, yd = (slice(dy, ny), slice(0, ny - dy)) if dy >= 0 else (slice(0, ny + dy), slice(-dy, ny))
        s[:, xd, yd] += v[:, xs, ys]
        k[:, xd, yd] += w[:, xs, ys]
    return (s / np.maximum(k, 1)).ravel()


_EIGHT = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy]


def _improbable(n, lam, p_max) -> np.ndarray:
    """``P(N >= n | Poisson(lam)) < p_max``, evaluated where ``n > lam`` only."""
    from scipy import special

    out = np.zeros(n.shape, bool)
    cand = np.flatnonzero((n > lam) & (n >= 2))
    if cand.size:
        out[cand] = special.pdtrc(n[cand] - 1, lam[cand]) < p_max
    return out


def _hot_pixels(n_pix, live, shape, o: Hygiene) -> np.ndarray:
    """Flat bool of the hot pixels (module doc, rule 2)."""
    n_ccd, nx, ny = shape
    per_ccd = np.bincount(np.repeat(np.arange(n_ccd), nx * ny), weights=np.where(live, n_pix, 0), minlength=n_ccd)
    n_live = live.reshape(n_ccd, -1).sum(axis=1)
    mean = np.repeat(per_ccd / np.maximum(n_live, 1), nx * ny)
    lam = np.maximum(mean, o.hot_ratio * _neighbour_mean(n_pix, live, shape, _EIGHT))
    return live & _improbable(n_pix, np.maximum(lam, 1e-12), o.false_alarm / max(int(live.sum()), 1))


def _hot_columns(n_pix, live, shape, o: Hygiene) -> np.ndarray:
    """Flat bool over (ccd, rawx) of the hot columns (module doc, rule 3)."""
    n_ccd, nx, ny = shape
    n_col = n_pix.reshape(n_ccd * nx, ny).sum(axis=1)
    live_col = live.reshape(n_ccd * nx, ny).any(axis=1)
    per_ccd = np.where(live_col, n_col, 0).reshape(n_ccd, nx).sum(axis=1)
    mean = np.repeat(per_ccd / np.maximum(live_col.reshape(n_ccd, nx).sum(axis=1), 1), nx)
    nb = _neighbour_mean(n_col, live_col, (n_ccd, nx, 1), [(-1, 0), (1, 0)])
    lam = np.maximum(mean, o.hot_ratio * nb)
    return live_col & _improbable(n_col, np.maximum(lam, 1e-12), o.false_alarm / max(int(live_col.sum()), 1))


@numba.njit(nogil=True, cache=True)
def _burst_kernel(t, pix, n_pix, k_min, window, out):  # pragma: no cover - compiled
    """Windows of ``window`` s anchored at a pixel's first event after its
    previous window; a window reaching ``k_min`` events is a burst, written
    to ``out`` as (pixel, start) rows. Returns the number of bursts (rows
    beyond ``out`` are counted only)."""
    start = np.zeros(n_pix, np.float64)
    cnt = np.zeros(n_pix, np.int32)
    nb = 0
    for i in range(t.size):
        p = pix[i]
        if p < 0:
            continue
        if cnt[p] == 0 or t[i] - start[p] > window:
            start[p] = t[i]
            cnt[p] = 0
        cnt[p] += 1
        if cnt[p] == k_min:
            if nb < out.shape[0]:
                out[nb, 0] = p
                out[nb, 1] = start[p]
            nb += 1
    return nb


def _bursts(t, pix, n_pix, o: Hygiene) -> np.ndarray:
    cap = 256
    while True:
        out = np.empty((cap, 2), np.float64)
        nb = _burst_kernel(t, pix, n_pix, int(o.flicker_counts), float(o.flicker_seconds), out)
        if nb <= cap:
            return out[:nb]
        cap = nb


def _neighbours_of(p, shape):
    """Flat ids of the (up to 8) neighbours of pixel ``p`` on its CCD."""
    n_ccd, nx, ny = shape
    c, rem = divmod(int(p), nx * ny)
    x, y = divmod(rem, ny)
    return [(c * nx + x + dx) * ny + y + dy for dx, dy in _EIGHT if 0 <= x + dx < nx and 0 <= y + dy < ny]


def _flickering(t, pix, shape, o: Hygiene):
    """(events to drop, number of flickering bursts): rule 4 of the module doc."""
    drop = np.zeros(t.size, bool)
    bursts = _bursts(t, pix, int(np.prod(shape)), o)
    n = 0
    for p, t0 in bursts:
        a, b = np.searchsorted(t, t0, "left"), np.searchsorted(t, t0 + o.flicker_seconds, "right")
        own = pix[a:b] == int(p)
        nbr = np.isin(pix[a:b], _neighbours_of(p, shape)).sum()
        if own.sum() > o.hot_ratio * nbr / 8.0:
            drop[a:b] |= own
            n += 1
    return drop, n


@numba.njit(nogil=True, cache=True)
def _find(parent, i):  # pragma: no cover - compiled
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@numba.njit(nogil=True, cache=True)
def _cluster_kernel(t, pix, nx, ny, n_pix, frame_time, radius, parent):  # pragma: no cover - compiled
    """Union of each event with the latest event of each pixel at most
    ``radius`` pixels away (same CCD) when within ``frame_time`` s."""
    last_t = np.zeros(n_pix, np.float64)
    last_i = np.full(n_pix, -1, np.int64)
    for i in range(t.size):
        parent[i] = i
        p = pix[i]
        if p < 0:
            continue
        rem = p % (nx * ny)
        x = rem // ny
        y = rem - x * ny
        for dx in range(-radius, radius + 1):
            for dy in range(-radius, radius + 1):
                if x + dx < 0 or x + dx >= nx or y + dy < 0 or y + dy >= ny:
                    continue
                q = p + dx * ny + dy
                j = last_i[q]
                if j >= 0 and t[i] - last_t[q] <= frame_time:
                    a, b = _find(parent, i), _find(parent, j)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
        last_t[p] = t[i]
        last_i[p] = i
    for i in range(t.size):
        parent[i] = _find(parent, i)


def _clusters(t, pix, shape, frame_time, span, o: Hygiene):
    """(events to drop, number of instrumental clusters): rule 5."""
    from scipy import special

    n_ccd, nx, ny = shape
    parent = np.empty(t.size, np.int64)
    r = int(o.cluster_radius)
    _cluster_kernel(t, pix, nx, ny, n_ccd * nx * ny, float(frame_time), r, parent)
    sizes = np.bincount(parent, minlength=t.size)
    big = np.flatnonzero((sizes >= o.cluster_events) & (pix >= 0))
    big = big[parent[big] == big]  # roots: the first event of each cluster
    drop = np.zeros(t.size, bool)
    if big.size == 0:
        return drop, 0
    n_pix = np.bincount(pix[pix >= 0], minlength=n_ccd * nx * ny).astype(np.float64)
    around = [(dx, dy) for dx in range(-r, r + 1) for dy in range(-r, r + 1) if dx or dy]
    box = n_pix + _neighbour_mean(n_pix, np.ones(n_pix.size, bool), shape, around) * len(around)
    last_idx = np.zeros(t.size, np.int64)  # times are sorted: a cluster's last event has the largest index
    np.maximum.at(last_idx, parent, np.arange(t.size))
    window = t[last_idx[big]] - t[big] + frame_time
    lam = box[pix[big]] / span * window
    yes = special.pdtrc(sizes[big] - 1, lam) * (span / window) < o.cluster_probability
    drop = np.isin(parent, big[yes]) & (pix >= 0)
    return drop, int(yes.sum())
