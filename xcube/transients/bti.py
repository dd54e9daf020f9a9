"""Bad time intervals (soft-proton flares) from the high-energy light curve.

A light-curve bin is bad when the 10-12 keV count rate (of the events passing
the mission's default screening, as in the search; ``screening=False`` takes
every event) exceeds ``rate`` ct/s
(0.5 by default) times the number of event lists merged into it. Runs of
adjacent bad bins become bad time intervals (BTIs) ``[start, stop)`` whose
bounds are exactly the bin edges: the first bad bin's lower edge and the last
bad bin's upper edge. (EXOD reports them one bin early; xcube does not.)

BTIs are ``(start, stop)`` float64 arrays [s, mission time], the same
representation as GTIs in :mod:`xcube.gti`.
"""
from __future__ import annotations

import logging
import math

import dask.array as da
import numpy as np
import xarray as xr

from .. import gti as gtimod
from ..binning.compact import CompactCube
from ..checks import check_number
from ..missions import screening_of
from ..scheduler import compute

__all__ = [
    "BTI_ENERGY_BAND",
    "BTI_RATE",
    "MAX_BIN",
    "bti_from_rate",
    "light_curve_edges",
    "monitor_expression",
    "monitor_filter",
    "monitor_rate",
    "bti_from_lightcurve",
    "high_energy_lightcurve",
    "bad_time_intervals",
    "frame_bti",
]

log = logging.getLogger("xcube.transients")

#: energy band [keV] of the flare light curve; both bounds exclusive
BTI_ENERGY_BAND = (10.0, 12.0)
#: bad when the rate exceeds this [ct/s] per merged event list
BTI_RATE = 0.5
#: the light-curve bin is ``min(time_bin, MAX_BIN)`` [s]
MAX_BIN = 100.0


def _edges(edges) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2:
        raise ValueError(f"edges: need a 1-D array of at least 2 bin edges [s], got shape {e.shape}")
    if not np.all(np.diff(e) > 0):
        raise ValueError("edges: bin edges must increase strictly (contiguous bins [edges[i], edges[i+1]))")
    return e


def bti_from_rate(rate, edges, threshold: float = BTI_RATE):
    """BTIs from a binned rate: runs of adjacent bins with ``rate > threshold``.

    ``rate`` (n,) [ct/s] (NaN = no data, never bad), ``edges`` (n+1,) increasing
    bin edges [s]. Returns ``(start, stop)`` float64 arrays: for each run of
    bad bins i..j the interval ``[edges[i], edges[j+1])``. Eager, numpy.
    """
    e = _edges(edges)
    r = np.asarray(rate, dtype=np.float64)
    if r.shape != (e.size - 1,):
        raise ValueError(f"rate has shape {r.shape} but edges define {e.size - 1} bins")
    with np.errstate(invalid="ignore"):
        bad = r > threshold
    padded = np.concatenate([[False], bad, [False]]).astype(np.int8)
    d = np.diff(padded)
    first = np.flatnonzero(d == 1)  # first bad bin of each run
    last = np.flatnonzero(d == -1)  # one past the last bad bin
    return e[first].copy(), e[last].copy()


def bti_from_lightcurve(counts, edges, exposure=None, threshold: float = BTI_RATE):
    """BTIs from a light curve of ``counts`` (n,) in bins ``edges`` (n+1,) [s].

    The rate is ``counts / exposure`` [ct/s]; ``exposure`` (n,) [s] defaults to
    the bin widths; bins with no exposure are never bad. ``threshold`` is in
    ct/s (multiply 0.5 by the number of merged event lists). Returns
    ``(start, stop)`` with bounds on the bin edges. Eager, numpy.
    """
    e = _edges(edges)
    c = np.asarray(counts, dtype=np.float64)
    x = np.diff(e) if exposure is None else np.asarray(exposure, dtype=np.float64)
    if c.shape != (e.size - 1,) or x.shape != c.shape:
        raise ValueError(f"counts {c.shape} and exposure {x.shape} must have one value per bin ({e.size - 1})")
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(x > 0, c / np.where(x > 0, x, 1.0), np.nan)
    return bti_from_rate(rate, e, threshold)


def _as_list(events) -> list:
    if isinstance(events, xr.Dataset):
        return [events]
    evs = list(events)
    if not evs or not all(isinstance(e, xr.Dataset) for e in evs):
        raise TypeError("events: pass an EventList (xr.Dataset) or a non-empty sequence of them")
    return evs


def light_curve_edges(events, width: float, t0=None, t_stop=None) -> np.ndarray:
    """Bin edges [s] of the flare light curve of one or several event lists:
    bins of ``width`` from ``t0`` to ``t_stop``, the last bin ending at
    ``t_stop`` (shorter, exposure-corrected). ``t0``/``t_stop`` default to
    the first start and the last stop of the lists' *common* good time (the
    intersection of their GTIs: the search's frame grid, so that several
    cameras get the search's bins and BTIs; one list: its own GTIs), or,
    when the lists share no good time, the earliest GTI start and the latest
    GTI stop. A 1-D float64 numpy array of length ``n_bins + 1``,
    ``n_bins = ceil((t_stop - t0) / width)`` (at least 1). Eager, small."""
    evs = _as_list(events)
    gtis = [gtimod.from_dataset(e) for e in evs]
    starts, stops = zip(*gtis)
    allstart = np.concatenate(starts)
    allstop = np.concatenate(stops)
    if t0 is None or t_stop is None:
        if allstart.size == 0:
            raise ValueError("bad_time_intervals: the events have no GTIs; give t0 and t_stop [s]")
        common = gtimod.intersection(*gtis)
        if gtimod.exposure(common) > 0:  # the search's span (grid.search_run)
            allstart, allstop = common
    lo = float(allstart.min()) if t0 is None else float(t0)
    hi = float(allstop.max()) if t_stop is None else float(t_stop)
    if not hi > lo:
        raise ValueError(f"bad_time_intervals: empty time range [{lo!r}, {hi!r}) s; check t0/t_stop")
    n = max(1, math.ceil((hi - lo) / width - 1e-9))
    edges = lo + width * np.arange(n + 1, dtype=np.float64)
    edges[-1] = hi  # the last bin ends at t_stop (shorter, exposure-corrected)
    return edges


def high_energy_lightcurve(events, time_bin: float, *, t0=None, t_stop=None,
                           energy_band=BTI_ENERGY_BAND, screening: bool = True) -> xr.Dataset:
    """The flare light curve used for BTIs, summed over one or more event lists.

    Events with ``energy_band[0] < energy < energy_band[1]`` [keV] inside each
    list's GTIs, after the mission's default screening when ``screening``
    (default, as the search: XMM pn ``PATTERN<=4 && FLAG==0``, MOS
    ``PATTERN<=12 && FLAG==0``; the events of :func:`monitor_filter`; a list
    without the screening's columns raises ``ValueError`` saying so, pass
    ``screening=False`` for events screened already or without them),
    binned with :func:`xcube.bin_events` in bins of
    ``min(time_bin, 100)`` s from ``t0`` to ``t_stop`` (default: the first
    start and the last stop of the lists' common good time, as the search;
    :func:`light_curve_edges`; the last bin may be shorter).

    Returns an ``xr.Dataset`` over ``time`` (bin centres, with ``time_lo``/
    ``time_hi``) with ``counts`` (summed, lazy Dask), ``exposure`` (per list,
    dims ``(list, time)``, [s]) and ``rate`` (sum over lists of
    counts/exposure [ct/s], lazy; NaN where no list has exposure). Eager work:
    the selection's counting pass over ``energy``/``time`` (see ``xcube.select``).
    """
    from ..binning import bin_events
    from ..select import select

    evs = _as_list(events)
    width = min(float(time_bin), MAX_BIN)
    if not width > 0:
        raise ValueError(f"time_bin must be positive [s], got {time_bin!r}")
    edges = light_curve_edges(evs, width, t0, t_stop)
    lo_e, hi_e = (float(v) for v in energy_band)
    counts, gtis = [], []
    for ev in evs:
        gti = gtimod.from_dataset(ev)
        gtis.append(gti)
        monitor_filter(ev, energy_band, screening)  # checks the columns as the search does (names a missing one)
        if not gtimod.exposure_per_bin(edges[:-1], edges[1:], gti).any():  # no good time in the range
            counts.append(da.zeros(edges.size - 1, dtype=np.int64))
            continue
        screen = screening_of(ev) if screening else None
        expr = monitor_expression(energy_band)
        sel = select(ev, expr=f"({screen}) && ({expr})" if screen else expr, gti=gti)
        counts.append(bin_events(sel, time=edges).data)
    rate, exposure = monitor_rate(counts, edges, gtis)
    total = sum(counts[1:], counts[0])
    centres = 0.5 * (edges[:-1] + edges[1:])
    return xr.Dataset(
        {
            "counts": ("time", total, {"units": "count"}),
            "rate": ("time", rate, {"units": "count/s"}),
            "exposure": (("list", "time"), exposure, {"units": "s"}),
        },
        coords={"time": centres, "time_lo": ("time", edges[:-1]), "time_hi": ("time", edges[1:])},
        attrs={"energy_band": [lo_e, hi_e], "time_bin": width, "n_lists": len(evs), "screening": bool(screening),
               "sources": [str(e.attrs.get("source", "")) for e in evs]},
    )


def bad_time_intervals(events, time_bin: float | None = None, *, t0=None, t_stop=None,
                       energy_band=BTI_ENERGY_BAND, rate: float = BTI_RATE, screening: bool = True):
    """Bad time intervals of one event list or several merged ones (cameras).

    The 10-12 keV light curve (:func:`high_energy_lightcurve`, bins of
    ``min(time_bin, 100)`` s from ``t0``, by default the start of the lists'
    common good time as in the search, of the events passing the mission's
    default screening when ``screening``: by default the search's BTIs, also
    on unscreened files) is bad where its rate exceeds
    ``rate`` ct/s times the number of event lists; adjacent bad bins are merged.
    ``events`` may instead be a :class:`~xcube.binning.CompactCube` whose
    events pass took that light curve (its ``monitor``; the search's form):
    nothing is read again and ``time_bin``, ``t0``, ``t_stop``,
    ``energy_band`` and ``screening`` are the pass's. Returns ``(start, stop)`` float64 arrays
    [s] whose bounds are light-curve bin edges. Eager: computes the light
    curve (one pass over the selected high-energy events) unless given.
    """
    check_number("bad_time_intervals", "rate", rate, ge=0.0, unit="ct/s")
    if isinstance(events, CompactCube):
        mon = events.monitor
        if mon is None:
            raise ValueError("this compact cube has no monitor light curve; make it with "
                             "monitor=bti.monitor_filter(...) and monitor_edges, or pass the events")
        r, _ = monitor_rate(mon.counts, mon.edges, mon.gtis)
        edges, n_lists, band = mon.edges, len(mon.counts), "the pass's"
    else:
        if time_bin is None:
            raise ValueError("bad_time_intervals: give time_bin [s] (the light curve bins are min(time_bin, 100) s)")
        lc = high_energy_lightcurve(events, time_bin, t0=t0, t_stop=t_stop, energy_band=energy_band,
                                    screening=screening)
        edges = np.append(lc["time_lo"].values, lc["time_hi"].values[-1])
        r = np.asarray(compute(lc["rate"].data)[0])
        n_lists, band = lc.attrs["n_lists"], lc.attrs["energy_band"]
    threshold = float(rate) * n_lists
    start, stop = bti_from_rate(r, edges, threshold)
    log.info("%d bad time intervals (%.1f s) above %.3g ct/s in %s keV", start.size,
             float(np.sum(stop - start)), threshold, band)
    return start, stop


def monitor_expression(energy_band=BTI_ENERGY_BAND) -> str:
    """The filter of the flare light curve's events: ``emin < energy < emax``
    [keV], both bounds exclusive. Eager (a string; reads no event)."""
    lo, hi = (float(v) for v in energy_band)
    return f"energy > {lo!r} && energy < {hi!r}"


def monitor_filter(events, energy_band=BTI_ENERGY_BAND, screening: bool = True):
    """:class:`~xcube.select.EventFilter` of the flare light curve's events of
    one event list: the mission screening (when ``screening``), the energy
    band of :func:`monitor_expression` (``energy_band`` [keV], both bounds
    exclusive) and the list's own GTIs [s]. The search's events pass counts
    these events in the light-curve bins. Called on a block of event columns,
    the filter returns a bool mask with one entry per event. Eager and small:
    reads the GTIs, no event."""
    from ..select import EventFilter

    return EventFilter.for_events(events, expr=monitor_expression(energy_band), gti=gtimod.from_dataset(events),
                                  screening=screening)


def monitor_rate(counts, edges, gtis):
    """Rate [ct/s] of a light curve summed over event lists: sum over lists of
    ``counts[i] / exposure_i`` per bin (``exposure_i`` from ``gtis[i]``), NaN
    where no list has good time. ``counts``: numpy or Dask arrays (n,).
    Returns ``(rate, exposure (lists, n))``; lazy when the counts are."""
    e = np.asarray(edges, dtype=np.float64)
    exposure = np.stack([gtimod.exposure_per_bin(e[:-1], e[1:], g) for g in gtis])
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(exposure > 0, 1.0 / np.where(exposure > 0, exposure, 1.0), 0.0)
    rate = sum(c * inv[i] for i, c in enumerate(counts))
    xp = da if any(isinstance(c, da.Array) for c in counts) else np
    return xp.where((exposure > 0).any(axis=0), rate, np.nan), exposure


def frame_bti(frame_lo, frame_hi, btis) -> np.ndarray:
    """True for each frame ``[frame_lo, frame_hi)`` that overlaps a BTI.

    ``btis`` is ``(start, stop)``; overlap means a common interval of positive
    length (a frame that only touches a BTI edge is not a BTI frame). Returns a
    bool array of the frames' shape. Eager, numpy.
    """
    lo = np.asarray(frame_lo, dtype=np.float64)
    hi = np.asarray(frame_hi, dtype=np.float64)
    start, stop = gtimod.normalize(*btis, warn=False)
    if start.size == 0:
        return np.zeros(np.broadcast(lo, hi).shape, dtype=bool)
    k = np.searchsorted(stop, lo, side="right")  # first BTI ending after lo
    kk = np.minimum(k, start.size - 1)
    return (k < start.size) & (start[kk] < hi)
