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
   ``raw_rows``, ``bad_columns``); also events whose raw pixel is not on
   the detector (outside the CCD's pixels, or a CCD number below 0 or from
   :data:`MAX_CCDS` up);
2. **hot pixels**: a pixel whose counts ``n`` are improbable under the
   larger of its CCD's mean counts per pixel ``m`` and ``hot_ratio`` times
   the mean of its 8 neighbours ``b``: ``P(N >= n | lambda = max(m,
   hot_ratio b)) < false_alarm / n_pixels``, ``n_pixels`` the live pixels
   (inside the border, off the bad columns) of the CCDs with events in the
   block (a CCD number without events, such as XMM's CCD 0 below CCDs 1-7,
   has no pixel to test). A point source spreads over its neighbours, so it
   is not hot; a hot pixel stands alone;
3. **hot columns**: the same test on the counts of a detector column (after
   the hot pixels), its neighbours being the columns on either side (the
   live columns of the CCDs with events for ``n_pixels``);
4. **flickering pixels**: ``flicker_counts`` events of one pixel within
   ``flicker_seconds`` (any such window: runs of overlapping windows are
   merged, from the first event of the first to the last of the last) that
   are improbable from the pixel's rate over the block (``P(N >= n) x
   windows < false_alarm``; a bright steady source fires its pixels often)
   while its 8 neighbours hold improbably few events in the same run for
   light spread by the PSF (``P(N <= m | n x 8 / hot_ratio) <
   false_alarm``; an astrophysical flare lights them); the pixel's events
   of the run are dropped;
5. **instrumental clusters**: ``cluster_events`` or more events chained
   through neighbouring pixels (at most ``cluster_radius`` pixels apart in
   RAWX and in RAWY, same CCD), each within one CCD
   frame time (``MissionProfile.frame_time``) of the previous one there,
   when they lie within one frame time (an instrumental event is one
   frame's; a flare's photons spread over several) and that many are
   improbable from the counts of the pixels around the cluster's first
   event: ``P(N >= size | lambda) x (block span / window) <
   cluster_probability`` with ``lambda`` the box's rate times the window
   (the cluster's duration plus a frame time), the rate the larger of the
   box's mean over the block and the rate in the
   :data:`~xcube.hygiene.rules.LOCAL_FRAMES` frames either side of the
   cluster in a box of the PSF's size
   (:data:`~xcube.hygiene.rules.LOCAL_RADIUS` pixels), the factor counting the windows the box had (so that the
   photons of a bright source or a flare, which often fall together, are
   kept); all events of such a cluster are dropped (one instrumental event).

Every statistic is taken on the events that pass the filter's other tests
(the search: the screened events of all energies), block by block: fixed
blocks of :data:`BLOCK_EVENTS` events from the list's first event
(:func:`xcube.io.chunking.event_blocks`), whatever its Dask chunks
(``select`` and the search re-chunk other lists to them), so that the
decisions do not depend on the chunking.
Counts of what each rule removed go to the ``stats`` of the filter
(``EventFilter.mask``), and from there to the search summary.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import numpy as np

__all__ = ["Hygiene", "HygieneTest", "BLOCK_EVENTS", "MAX_CCDS", "STAT_KEYS", "hygiene_test", "merge_stats",
           "stat_counts"]

from ..io.chunking import EVENT_CHUNK
from . import rules

log = logging.getLogger("xcube.hygiene")

#: events per block of an in-memory event list (Dask event lists use their chunks)
BLOCK_EVENTS = EVENT_CHUNK
#: CCD numbers at or above this are not a detector's (a damaged CCD column): such
#: events count as border events, and the per-pixel arrays stay of a camera's size
MAX_CCDS = 64
#: the longest flickering window [s] (a burst is events within seconds; longer is not a flicker)
MAX_FLICKER_SECONDS = 1e5
#: the counters a HygieneTest adds to the filter statistics
STAT_KEYS = ("border_events", "hot_pixels", "hot_pixel_events", "hot_columns", "hot_column_events",
             "flickering_bursts", "flickering_events", "instrumental_clusters", "instrumental_events")


@dataclass(frozen=True)
class Hygiene:
    """Options of the detector hygiene (see the module doc). The defaults are
    on, with the pn border (3 pixels of the rows read out; EXOD's own cut
    differs: RAWX 5-60 and RAWY 24-196 in full frame, no row cut in large
    window, none in small window) and EXOD's bad columns, from the mission
    profile (``border_margin``: pixels instead of the profile's margin).

    ``false_alarm``: expected hot pixels (and hot columns) per camera and
    block in data without any; ``hot_ratio``: how many times the mean of its
    neighbours a hot pixel, column or flickering burst must exceed;
    ``flicker_counts`` events within ``flicker_seconds`` [s] make a burst;
    ``cluster_events`` events within frame times in pixels at most
    ``cluster_radius`` apart make a candidate instrumental event, dropped
    when improbable (``cluster_probability``); ``clusters`` None: the
    mission profile's default (``MissionProfile.cluster_rule``: MOS on, pn
    off). Checked when built (ValueError naming the option):
    probabilities in (0, 1), ``hot_ratio`` > 0, ``flicker_counts`` 3-255,
    ``flicker_seconds`` in (0, :data:`MAX_FLICKER_SECONDS`],
    ``cluster_events`` >= 2, radii and margins >= 0."""

    border: bool = True
    border_margin: int | None = None
    hot_pixels: bool = True
    hot_columns: bool = True
    flickering: bool = True
    clusters: bool | None = None
    false_alarm: float = 1e-3
    hot_ratio: float = 5.0
    flicker_counts: int = 10
    flicker_seconds: float = 10.0
    cluster_events: int = 3
    cluster_radius: int = 2
    cluster_probability: float = 1e-4

    def __post_init__(self):
        def bad(name, rule):
            raise ValueError(f"hygiene: {name} must be {rule}, got {getattr(self, name)!r}")

        for name in ("false_alarm", "cluster_probability"):
            if not 0.0 < float(getattr(self, name)) < 1.0:
                bad(name, "a probability between 0 and 1 (exclusive)")
        if not 0.0 < float(self.hot_ratio) < np.inf:
            bad("hot_ratio", "a positive finite number")
        if not 0.0 < float(self.flicker_seconds) <= MAX_FLICKER_SECONDS:
            bad("flicker_seconds", f"a duration in (0, {MAX_FLICKER_SECONDS:g}] s")
        if not 3 <= int(self.flicker_counts) <= 255:  # (the burst windows count up to 255 events)
            bad("flicker_counts", "an integer from 3 to 255 (two events are a pair, not a burst)")
        if int(self.cluster_events) < 2:
            bad("cluster_events", "an integer of at least 2")
        if int(self.cluster_radius) < 0:
            bad("cluster_radius", "a number of pixels >= 0")
        if self.border_margin is not None and int(self.border_margin) < 0:
            bad("border_margin", "a number of pixels >= 0")

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
        """The ``select`` label (a str) of these options for a border of
        ``margin`` [raw pixels] and a CCD ``frame_time`` [s]; ``frame_time``
        0 when the cluster rule is off."""
        parts = []
        if self.border:
            parts.append(f"border {margin} px + bad columns")
        if self.hot_pixels or self.hot_columns:
            parts.append(f"hot pixels/columns (false alarm {self.false_alarm:g}, ratio {self.hot_ratio:g})")
        if self.flickering:
            parts.append(f"flickering ({self.flicker_counts} ev in {self.flicker_seconds:g} s)")
        if frame_time > 0:  # the caller passes 0 when the cluster rule is off
            parts.append(f"clusters ({self.cluster_events} ev within {frame_time:g} s, {self.cluster_radius} px)")
        return "hygiene=" + ", ".join(parts)


def merge_stats(a: dict, b: dict) -> dict:
    """Sum two statistics dicts of one camera (numbers add, lists
    concatenate, sets of pixel ids join). Eager."""
    out = dict(a)
    for k, v in b.items():
        out[k] = (out[k] | v if isinstance(v, frozenset) else out[k] + v) if k in out else v
    return out


def stat_counts(stats: dict) -> dict:
    """The :data:`STAT_KEYS` numbers of one camera's merged statistics (of
    every block): ``hot_pixels`` and ``hot_columns`` count distinct pixels
    and columns (a pixel hot in several blocks of 2**20 events once). Eager."""
    out = {k: int(stats.get(k, 0)) for k in STAT_KEYS if not isinstance(stats.get(k, 0), frozenset)}
    for key, ids in (("hot_pixels", "hot_pixel_ids"), ("hot_columns", "hot_column_ids")):
        if ids in stats:
            out[key] = len(stats[ids])
    return out


def hygiene_test(events, options) -> "HygieneTest | None":
    """The :class:`HygieneTest` of ``options`` (see :meth:`Hygiene.of`) for
    ``events``, or None when off or when the events have no raw detector
    pixel (profile without ``raw_columns``, or the columns absent: logged).
    Eager: looks at the profile and the column names; no event is read."""
    from ..missions import profile_of

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
        self.clusters = profile.cluster_rule if options.clusters is None else bool(options.clusters)
        self.label = options.label(m, self.frame_time if self.clusters else 0.0)

    @property
    def columns(self) -> frozenset:
        """The event columns the test reads: ``time`` [s] and the profile's
        raw detector pixel columns (``raw_columns``, e.g. CCD, RAWX, RAWY)."""
        return frozenset(("time",) + self.names)

    def __call__(self, cols, keep, stats=None):
        """The events of one block the hygiene keeps: ``keep`` (1-D bool, one
        entry per event of the block, the events passing the filter's other
        tests) without the events the rules drop, a 1-D bool numpy array of
        the same length. ``cols`` maps column name -> 1-D numpy array of the
        block (:attr:`columns`; ``time`` [s]); the statistics are taken on
        the kept events, in time order (sorted here when the block is not).
        ``stats`` (a dict), when given, gets the counts of :data:`STAT_KEYS`
        added in place. Eager on that block."""
        keep = np.ascontiguousarray(keep, dtype=np.bool_)
        counts = {k: 0 for k in STAT_KEYS}
        out = keep
        if keep.any():
            t = np.ascontiguousarray(cols["time"], np.float64)
            raw = tuple(np.ascontiguousarray(cols[c]) for c in self.names)
            out = self._keep(t, keep, raw, counts)
            if out is None:  # select() on unsorted events: judge them in time order
                order = np.argsort(t, kind="stable")
                out = np.empty_like(keep)
                out[order] = self._keep(t[order], keep[order], tuple(r[order] for r in raw), counts)
        if stats is not None:
            for k, v in merge_stats(stats, counts).items():
                stats[k] = v
        return out

    def __getstate__(self):  # the live-pixel maps are rebuilt where the test runs
        return {k: v for k, v in self.__dict__.items() if k != "_live"}

    def _live_pixels(self, shape) -> "rules.LivePixels":
        """The camera's :class:`~.rules.LivePixels` for ``shape`` (n_ccd, nx,
        ny): the raw window without the bad columns; built once."""
        cache = self.__dict__.setdefault("_live", {})
        if shape not in cache:
            n_ccd, nx, _ = shape
            badcol = np.zeros(n_ccd * nx, np.bool_)
            for c, x in self.bad_columns:
                if c < n_ccd and 1 <= x <= nx:
                    badcol[c * nx + x - 1] = True
            cache[shape] = rules.LivePixels(shape, self.window, badcol)
        return cache[shape]

    # ------------------------------------------------------------------ the rules
    def _keep(self, t, keep, raw, counts):
        """Boolean (n,): ``keep`` without the events the rules drop (``t``
        sorted), or None when the kept events' times are not sorted;
        ``counts`` gets the numbers."""
        o = self.options
        nx, ny = self.size
        n_ccd = min(max(int(raw[0].max()) + 1, 1), MAX_CCDS)  # events on a CCD beyond: off the detector (border)
        shape = (n_ccd, nx, ny)
        ft = self.frame_time if self.clusters else 0.0
        live = self._live_pixels(shape)
        out, counts["border_events"], pid, n_pix, cells, candidates, links, unsorted = rules.scan(
            t, keep, *raw, live, rules.candidate_count(o.flicker_counts) if o.flickering else 0, o.flicker_seconds,
            ft, int(o.cluster_radius))
        if unsorted:
            return None
        hot = rules.hot_pixels(n_pix, live, cells, o.hot_ratio, o.false_alarm) if o.hot_pixels \
            else np.zeros(0, np.int64)
        hot_col = rules.hot_columns(n_pix, live, cells, hot, o.hot_ratio, o.false_alarm) if o.hot_columns \
            else np.zeros(0, np.int64)
        runs = rules.bursts(t, pid, candidates, o.flicker_counts, o.flicker_seconds) if len(candidates) else \
            (np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
        flicker = rules.flickering(t, pid, live, runs, n_pix, o.flicker_seconds, o.hot_ratio, o.false_alarm, hot,
                                   hot_col)
        stats = rules.apply(t, out, pid, shape, hot, hot_col, flicker)
        counts.update(hot_pixel_ids=frozenset(hot.tolist()), hot_column_ids=frozenset(hot_col.tolist()))
        counts.update(hot_pixels=int(hot.size), hot_pixel_events=int(stats[0]), hot_columns=int(hot_col.size),
                      hot_column_events=int(stats[1]), flickering_bursts=len(flicker[0]),
                      flickering_events=int(stats[2]))
        if len(links):
            counts["instrumental_clusters"], counts["instrumental_events"] = rules.clusters(
                t, pid, links, n_pix, shape, ft, o.cluster_events, int(o.cluster_radius), o.cluster_probability, out)
        return out
