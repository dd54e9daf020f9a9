"""The search's grids: frames over the cameras' common good time, sky cells
snapped to the column's legal range, and the events pass that fills them.

* :func:`check_cameras` - the cameras of one observation, in imaging mode;
* :func:`search_run` - frames of ``time_bin`` seconds from the first common
  GTI start to the last common GTI stop (the last frame may be partial), an
  energy band and the bins of the bad-time-interval light curve;
* :func:`sky_axes` - cells of ``size_arcsec`` over TLMIN..TLMAX of the sky
  columns (or over the events' extent when that range is unknown or wrong),
  the origin at the first camera's TLMIN so that all cameras and runs align;
* :func:`search_cubes` - one :func:`~xcube.binning.compact_cubes` pass for
  every (time bin, energy band) of a parameter grid, with the mission
  screening and detector hygiene, the bad-time-interval light curve and the
  per-CCD frame counts;
* :func:`exposure_subsets` - the cameras' exposures grouped into subsets
  that overlap in time, each searched on its own;
* :func:`shifted_axis` - a grid shifted by half a cell or frame.
"""
from __future__ import annotations

import logging
import os

import numpy as np
import xarray as xr

from .. import gti as gtimod
from ..binning.axes import Axis, integer_column, pixel_arcsec, whole_pixel_shift, whole_pixels
from ..binning.events_pass import Run, compact_cubes
from ..binning.memory import available_bytes, check_size
from ..binning.sky import events_extent
from ..io.events import check_distinct, check_distinct_exposures, event_nodes
from ..missions import profile_of
from ..select import EventFilter, applied_band, own_good_time_test
from ..skycoords import has_wcs, pc_matrix
from ..times import check_same_reference
from . import bti
from .frames import readout_ccds

__all__ = ["check_cameras", "check_distinct_exposures", "check_same_sky", "search_run", "sky_axes",
           "cameras_extent", "search_cubes", "exposure_subsets", "shifted_axis", "SUBSET_OVERLAP", "FRAME_BYTES",
           "PIXEL_BYTES", "WCS_PIXEL_TOL", "WCS_RTOL", "search_band", "search_bands", "default_band", "XMM_BAND",
           "CLOSED_TOP_KEV"]

log = logging.getLogger("xcube.transients")

#: memory [bytes] the search holds per frame (counts per frame and CCD, model, flags, light curves)
FRAME_BYTES = 512
#: memory [bytes] the search holds per sky cell (lookup tables, images, templates, masks, labels)
PIXEL_BYTES = 256
#: an exposure joins a subset when their common good time is at least this fraction of the shorter one
SUBSET_OVERLAP = 0.5


def check_cameras(events) -> list[xr.Dataset]:
    """The cameras of one observation as a list (from one EventList, a list
    of them or a DataTree of one observation), checked: one observation,
    an imaging mode the mission profile supports (its
    :meth:`~xcube.missions.MissionProfile.modes`, as the screening takes them:
    DATAMODE, else the file name's mode code; no known mode at all is taken
    as imaging with a warning; for pn, read-out
    CCDs the bad-frame rule knows: :func:`.frames.readout_ccds`), a sky WCS,
    one time reference (MJDREF, TIMESYS), one sky WCS of X/Y
    (:func:`check_same_sky`), each exposure once
    (:func:`check_distinct_exposures`). Raises
    ``ValueError`` naming the file otherwise. Returns the given Datasets
    themselves, one per camera (not copied, no event read). Eager, cheap
    (attrs and GTIs)."""
    if isinstance(events, (str, bytes, os.PathLike)):
        raise TypeError(f"search_transients: got the path {events!r}; open it first: "
                        f"xcube.search_transients(xcube.open_events(path), ...)")
    if isinstance(events, xr.DataTree):  # one observation's cameras (open_events([pn, mos1, mos2]))
        evs = list(event_nodes(events).values())
    else:
        evs = [events] if isinstance(events, xr.Dataset) else list(events)
    if not evs:
        raise ValueError("search_transients: no event lists given")
    bad = [type(e).__name__ for e in evs if not isinstance(e, xr.Dataset)]
    if bad:
        raise TypeError(f"search_transients: needs EventLists (xcube.open_events), a list of them or a DataTree of "
                        f"one observation's cameras; got {', '.join(bad)}")
    obs = {str(e.attrs.get("obs_id", "")) for e in evs}
    if len(obs) > 1:
        files = "; ".join(f"{e.attrs.get('source', '<events>')} (OBS_ID {e.attrs.get('obs_id', '')!s})" for e in evs)
        raise ValueError(f"search_transients: event lists from different observations: {files}; "
                         "search each observation separately (xcube.survey runs many)")
    for e in evs:
        prof = profile_of(e)
        src = e.attrs.get("source", "<events>")
        if not prof.accepts_mode(e.attrs):  # the mode the screening takes too (DATAMODE, else the file name's)
            mode = "/".join(prof.modes(e.attrs))
            if not str(e.attrs.get("datamode") or "").strip() and prof.data_mode(e.attrs):
                mode += " (from the file name; no DATAMODE keyword)"
            raise ValueError(
                f"{src}: {prof.mission} {prof.instrument} in mode {mode} is not supported by the "
                f"transient search: it needs an imaging mode ({', '.join(prof.supported_modes)}); timing, burst "
                "and windowed-timing modes have no 2-D sky image"
            )
        if not has_wcs(e):
            why = f" ({e.attrs['wcs_problem']})" if e.attrs.get("wcs_problem") else ""
            raise ValueError(f"{src}: no sky X/Y columns with a WCS{why}; the transient search needs imaging data")
        readout_ccds(prof, e.attrs.get("submode"), src)  # the bad-frame rule must know the CCDs read out
    check_same_reference(evs, "search_transients")
    check_distinct(evs, "search_transients")
    check_same_sky(evs, "search_transients")
    return evs


#: the cameras' sky WCS agree when CRVAL differs by at most this fraction of a
#: sky pixel (CDELT), CRPIX by this many pixels, CDELT relatively and PC
#: absolutely by at most WCS_RTOL: 1e-3 pixel at 25,000 pixels from CRPIX
WCS_PIXEL_TOL = 1e-3
WCS_RTOL = 1e-8


def _wcs_mismatch(a: dict, b: dict):
    """``(keyword, value in a, value in b)`` of the first sky-WCS keyword of the
    x/y columns on which the attrs ``a`` and ``b`` disagree, or None."""
    for i in (1, 2):
        ta, tb = (str(d.get(f"CTYPE{i}", "")).strip().upper() for d in (a, b))
        if ta != tb:
            return f"CTYPE{i}", a.get(f"CTYPE{i}"), b.get(f"CTYPE{i}")
    for i in (1, 2):
        scale = abs(float(a[f"CDELT{i}"]))
        for key, tol in ((f"CDELT{i}", WCS_RTOL * scale), (f"CRVAL{i}", WCS_PIXEL_TOL * scale),
                         (f"CRPIX{i}", WCS_PIXEL_TOL)):
            va, vb = float(a[key]), float(b[key])
            if not abs(va - vb) <= tol:
                return key, a[key], b[key]
    pa, pb = (np.eye(2) if m is None else m for m in (pc_matrix(a), pc_matrix(b)))
    for (i, j) in zip(*np.nonzero(~(np.abs(pa - pb) <= WCS_RTOL))):
        key = f"PC{i + 1}_{j + 1}"
        return key, a.get(key, float(pa[i, j])), b.get(key, float(pb[i, j]))
    for key in ("RADESYS", "EQUINOX"):  # compared when both files give them
        if key in a and key in b and str(a[key]).strip().upper() != str(b[key]).strip().upper():
            return key, a[key], b[key]
    return None


def check_same_sky(events, what: str = "search_transients") -> None:
    """``ValueError`` naming both files and the keyword unless every event
    list's sky X/Y columns have the first one's WCS (CTYPE, CRVAL, CRPIX,
    CDELT, PC of x and y, and RADESYS/EQUINOX when both give them; within
    :data:`WCS_PIXEL_TOL` of a pixel): binned on one sky grid, a camera whose
    pixels name other positions would put its events in the wrong cells.
    Eager, attrs only."""
    first = events[0]
    for ev in events[1:]:
        bad = _wcs_mismatch(first.attrs, ev.attrs)
        if bad:
            key, va, vb = bad
            col = {"1": "x", "2": "y"}[key[-1]] if key[:2] in ("CT", "CR", "CD") else "x/y"
            raise ValueError(
                f"{what}: the cameras' sky coordinates differ: {key} of the {col} column is {va!r} in "
                f"{first.attrs.get('source', '<events>')} but {vb!r} in {ev.attrs.get('source', '<events>')}; "
                "their sky pixels do not name the same positions, so they cannot be binned on one sky grid. "
                "Search each camera alone, or reproject them onto one sky WCS first")


def search_run(events, time_bin: float, energy_band, phase: float = 0.0):
    """``(run, reason)``: the :class:`~xcube.binning.events_pass.Run` of one
    time bin and band of the search - frames of ``time_bin`` [s] from the
    cameras' first common GTI start to their last common GTI stop (the last
    frame may extend beyond it), the band ``energy_band`` [keV], and the
    bad-time-interval light curve in bins of ``min(time_bin, 100)`` s over the
    same span - or ``(None, reason)`` when there is no common good time or
    fewer than two frames. ``phase`` (0 to 1) starts the frames that fraction
    of a frame earlier (the half-frame shifted grid: 0.5). Eager, small."""
    good = gtimod.intersection(*[gtimod.from_dataset(e) for e in events])
    if gtimod.exposure(good) <= 0:
        return None, "no good time (the cameras' GTIs do not overlap or are empty)"
    t0, t1 = float(good[0][0]) - float(phase) * time_bin, float(good[1][-1])
    n = int(np.ceil((t1 - t0) / time_bin - 1e-9))
    if n < 2:
        return None, (f"fewer than two {time_bin:g} s frames from the first good time to the last "
                      f"({t1 - t0:.1f} s, of which {gtimod.exposure(good):.1f} s good time)")
    check_size((n, FRAME_BYTES), np.uint8, what=f"the search's per-frame arrays for {n} frames of {time_bin:g} s",
               limit=available_bytes() // 4, hint="use a longer time_bin")
    monitor = bti.light_curve_edges(events, min(float(time_bin), bti.MAX_BIN), t0, t1)
    frames = Axis.from_edges("time", t0 + time_bin * np.arange(n + 1), units="s")
    return Run(frames, search_band(events, energy_band), monitor), ""


#: [keV] the top of the reference's default band, ``200 <= PI <= 12000`` (XMM
#: EPIC PI in eV): an XMM band ending here keeps its top channel
CLOSED_TOP_KEV = 12.0


#: the search's default band [keV] for XMM-Newton: EXOD's
XMM_BAND = (0.2, 12.0)


def _no_energy_scale(events) -> list:
    """The cameras of ``events`` whose mission profile has no PI-to-energy
    conversion (Chandra HRC; not the generic profile, whose events may carry
    calibrated energies): their ``energy`` is NaN, so no energy band can be
    cut from them. Eager (profile look-ups)."""
    return [e for e in events if profile_of(e).pi_to_kev is None and profile_of(e).name != "generic"]


def default_band(events) -> tuple[float, float]:
    """The search's default band [keV] for the cameras ``events``: EXOD's
    :data:`XMM_BAND` for XMM-Newton, else the mission profile's calibrated
    ``energy_range`` (NuSTAR 3-79 keV, Chandra ACIS 0.3-10 keV). For an
    instrument without an energy scale (Chandra HRC) that range only labels
    the run: :func:`search_band` cuts no energy, every event is searched.
    Eager (profile look-up; reads no event)."""
    prof = profile_of(events[0])
    if prof.mission == "XMM-Newton":
        return XMM_BAND
    band = tuple(float(v) for v in prof.energy_range)
    if prof.name == "generic" or not np.isfinite(band).all():
        a = events[0].attrs
        raise ValueError(
            f"{a.get('source', 'events')}: unknown mission (TELESCOP={a.get('telescop', '')!r} "
            f"INSTRUME={a.get('instrume', '')!r}), so no default energy band and no PI-to-energy calibration; "
            "open the file with its profile (open_events(path, instrument='xmm-pn'), --instrument), or give "
            "energy_band= (--energy) when the events carry calibrated energies")
    return band


def search_bands(events, energy_band=None):
    """The band(s) [keV] the search runs on the cameras ``events``:
    ``energy_band`` (``(emin, emax)`` or a list of them; None: the
    :func:`default_band`), each intersected with the band the events were
    already cut to with ``select(energy_band=...)``
    (:func:`xcube.select.applied_band`: a warning naming the files and both
    bands when a given band is narrowed, ``ValueError`` when it lies outside
    the cut; the default band is narrowed with an info message). Run ids,
    summaries and energy conversion factors then name the band searched.
    Also warns when the cut leaves no event in the bad-time-interval
    monitor's band (:data:`.bti.BTI_ENERGY_BAND`). A band given for a camera
    without an energy scale (Chandra HRC) raises ``ValueError`` naming the
    file: there the search takes every event (the default). Same form as
    given (a pair, or a list of pairs); attrs only, no event is read. Eager."""
    flat = _no_energy_scale(events)
    if energy_band is not None and flat:
        prof = profile_of(flat[0])
        raise ValueError(
            f"{flat[0].attrs.get('source', 'events')}: {prof.mission} {prof.instrument} has no energy scale "
            f"({prof.energy_note}), so the transient search cannot cut an energy band from its events; leave "
            "energy_band unset (no --energy): the search then takes every event")
    cut = applied_band(events)
    if cut is not None and not (cut[0] < bti.BTI_ENERGY_BAND[1] and cut[1] > bti.BTI_ENERGY_BAND[0]):
        log.warning("%s: the events were cut to %g-%g keV (select(energy_band=...)), which leaves no event in the "
                    "%g-%g keV band of the bad-time-interval monitor: no flaring background can be found",
                    ", ".join(str(e.attrs.get("source", "") or "<events>") for e in events), cut[0], cut[1],
                    *bti.BTI_ENERGY_BAND)
    if energy_band is None:
        band = applied_band(events, default_band(events), warn=False)
        if cut is not None:
            log.info("events cut to %g-%g keV: the search's band is %g-%g keV", *cut, *band)
        return band
    if np.ndim(energy_band) == 2:
        return [applied_band(events, b) for b in energy_band]
    return applied_band(events, energy_band)


def search_band(events, energy_band) -> tuple[float, float] | None:
    """``(emin, emax)`` [keV] that the search bins for ``energy_band``: the
    half-open ``[emin, emax)`` of ``select``/``bin_events``, except that for
    XMM-Newton cameras a band ending at :data:`CLOSED_TOP_KEV` (12 keV) keeps
    its top channel PI 12000 (E = 12 keV), as the reference's default
    ``200 <= PI <= 12000``: emax becomes the next float32 above 12 keV (the
    energy column's precision), which no other channel reaches (PI 12001 is
    12.001 keV). None (no energy cut: every event) when no camera has an
    energy scale (Chandra HRC; :func:`search_bands` refuses a band given
    there, so this is the default band's label). Run ids, labels and energy
    conversion factors keep the band as given.
    ``select(ev, energy_band=search_band(evs, band))`` reproduces the
    search's band events. Eager (profile look-up; reads no event)."""
    if len(_no_energy_scale(events)) == len(events):
        return None
    lo, hi = (float(v) for v in energy_band)
    if hi == CLOSED_TOP_KEV and all(profile_of(e).mission == "XMM-Newton" for e in events):
        hi = float(np.nextafter(np.float32(hi), np.float32(np.inf)))
    return lo, hi


def _edges(origin: float, width: float, k0: int, n: int) -> np.ndarray:
    """Edges ``origin + width * k`` for cells ``k0 .. k0 + n - 1``: every sky
    grid of a run takes its edges from this one formula, so a cropped grid's
    edges are exactly a slice of the full grid's."""
    return origin + width * np.arange(k0, k0 + n + 1, dtype=np.float64)


def sky_axes(events, size_arcsec: float, extent=None):
    """``(y, x)`` explicit-edges :class:`Axis` of cells of ``size_arcsec``
    covering the sky columns' legal range (TLMIN/TLMAX of every camera, attrs
    ``x_min``...) or ``extent`` (xmin, xmax, ymin, ymax), one cell of margin
    each side; the origin is the first camera's TLMIN (0 without one), less
    half a pixel for integer sky columns, whose cells are also whole pixels
    (centres on the pixels they hold, no cells of 8 and 9 pixel columns in
    turn; as :func:`~xcube.binning.sky_axis` does). None
    when the legal range is unknown, reversed or too large for memory (a
    broken TLMIN/TLMAX; the caller then uses the events' extent) and no
    extent is given. Raises ``ValueError`` when the grid over ``extent`` does
    not fit in memory (cells too small, or stray events far away). Eager: the
    edges [sky pixels] come from the attrs (or ``extent``); no event is
    read."""
    width = float(np.round(size_arcsec / pixel_arcsec(events[0], "x"), 9))
    whole = all(integer_column(e, d) for e in events for d in ("x", "y"))
    if whole and width != round(width):  # cells of whole sky pixels (NuSTAR 20" = 8.13 px -> 8), as images
        rounded = whole_pixels(width)
        log.info("%s: cells of %g\" are %.3f sky pixels; using %d whole pixels (%.3g\")",
                 events[0].attrs.get("source", "events"), size_arcsec, width, rounded,
                 rounded * pixel_arcsec(events[0], "x"))
        width = rounded
    spans = []
    for dim, (lo_i, hi_i) in (("y", (2, 3)), ("x", (0, 1))):
        origin = float(events[0].attrs.get(f"{dim}_min", 0.0)) if extent is None else 0.0
        if extent is None:
            try:
                lo = min(float(e.attrs[f"{dim}_min"]) for e in events)
                hi = max(float(e.attrs[f"{dim}_max"]) for e in events)
            except (KeyError, TypeError, ValueError):
                return None
            origin = origin if np.isfinite(origin) else 0.0
        else:
            lo, hi = extent[lo_i], extent[hi_i]
            origin = float(events[0].attrs.get(f"{dim}_min", 0.0) or 0.0)
        if whole:  # value v is the pixel [v - 0.5, v + 0.5): see sky_axis
            origin -= 0.5
        if not (np.isfinite(lo) and np.isfinite(hi) and hi >= lo):
            if extent is None:
                return None
            raise ValueError(f"{events[0].attrs.get('source', 'events')}: no finite {dim} extent of the events")
        k0 = int(np.floor((lo - origin) / width)) - 1
        k1 = int(np.floor((hi - origin) / width)) + 1
        spans.append((dim, origin, k0, k1 - k0 + 1))
    n_cells = float(spans[0][3]) * float(spans[1][3])
    cell = width * pixel_arcsec(events[0], "x")
    asked = f" ({size_arcsec:g}\" asked, rounded to whole sky pixels)" if not np.isclose(cell, size_arcsec) else ""
    what = (f"a sky grid of {spans[0][3]} x {spans[1][3]} cells of {cell:.3g}\"{asked} over "
            + ("the columns' TLMIN..TLMAX" if extent is None else "the events' extent")
            + f", {PIXEL_BYTES} bytes each,")
    if extent is None and n_cells * PIXEL_BYTES > available_bytes() // 4:
        log.warning("%s: %s would not fit in memory (TLMIN/TLMAX %s); using the events' extent instead",
                    events[0].attrs.get("source", "events"), what,
                    [(e.attrs.get("x_min"), e.attrs.get("x_max")) for e in events])
        return None
    check_size((n_cells, PIXEL_BYTES), np.uint8, what=what, limit=available_bytes() // 4, show_shape=False,
               hint="use a larger size_arcsec" if extent is None else "use a larger size_arcsec, or remove events "
               "far from the others (X/Y equal to the column's null value TNULL, or outside TLMIN..TLMAX)")
    return tuple(Axis.from_edges(dim, _edges(origin, width, k0, n), units="pixel", column=dim,
                                 meta={"whole_pixels": whole})
                 for dim, origin, k0, n in spans)


def cameras_extent(events) -> tuple:
    """(xmin, xmax, ymin, ymax) [sky pixels] of the finite x/y values of all
    events of all cameras ((0, 0, 0, 0) without any). Eager; one pass over
    x and y, block by block (:func:`xcube.binning.sky.events_extent`)."""
    ext = [e for e in (events_extent(ev) for ev in events) if e is not None]
    if not ext:
        return (0.0, 0.0, 0.0, 0.0)
    return (min(e[0][0] for e in ext), max(e[0][1] for e in ext), min(e[1][0] for e in ext),
            max(e[1][1] for e in ext))


def shifted_axis(axis: Axis, fraction: float = 0.5) -> Axis:
    """``axis`` with its edges moved ``fraction`` of a bin down and one more
    bin on top, so that it covers the same range: the half-cell shifted grid.
    Works for regular and explicit-edges axes (bins of one width). A sky
    grid of whole pixels on integer columns (:func:`sky_axes`, ``meta
    ["whole_pixels"]``) moves by a whole number of pixels instead
    (:func:`~xcube.binning.axes.whole_pixel_shift`: 4 of a 7-pixel cell), so
    that its edges stay on half-integers and its cells' centres (the
    detections' x/y, ra/dec) on the pixels they hold. Eager (the edges
    only)."""
    e = np.asarray(axis.edges, np.float64)
    w = float(e[1] - e[0])
    down = fraction * w
    if axis.meta.get("whole_pixels") and w == round(w):
        down = whole_pixel_shift(fraction, w) * w
        down = float(round(down)) if abs(down - round(down)) < 1e-9 else down
    edges = np.append(e - down, e[-1] + (w - down))
    return Axis.from_edges(axis.name, edges, units=axis.units, column=axis.column, meta=axis.meta)


def search_cubes(events, runs, size_arcsec: float, screening: bool = True, hygiene=True, shifted=()):
    """The compact cubes of ``runs`` (:class:`~xcube.binning.events_pass.Run`:
    frames and energy band) on one observation's cameras, in one events pass:
    the mission screening (when ``screening``) and the detector ``hygiene``
    (:mod:`xcube.hygiene`; True, False or options) before the bands, the
    10-12 keV light curve of :mod:`.bti` as the monitor, counts per frame and
    CCD. Only events inside the cameras' common GTIs, and inside their own
    CCD's GTIs (:func:`xcube.select.own_good_time_test`, as the products),
    are binned (the frames' exposure is that good time, and the model gives
    a CCD no counts while it is off: an event outside it would be a count
    without exposure, a false flare). The sky grid is :func:`sky_axes` of the legal range; the runs whose
    index is in ``shifted`` get that grid shifted by half a cell in x and y
    (:func:`shifted_axis`). When selected events fall outside the grid (or
    the range is unknown) the pass is made again on a grid over the events'
    extent. Eager."""
    common = gtimod.intersection(*[gtimod.from_dataset(e) for e in events])
    filters = [EventFilter.for_events(e, screening=screening, hygiene=hygiene, gti=common) & _own_good_time(e, common)
               for e in events]
    monitor = [bti.monitor_filter(e, screening=screening) for e in events]
    axes = sky_axes(events, size_arcsec)
    if axes is not None:
        cubes = compact_cubes(events, _with_sky(runs, axes, shifted), *axes, filters=filters, monitor=monitor)
        if not any(c.n_outside for k, c in enumerate(cubes) if k not in shifted):
            return cubes
    axes = sky_axes(events, size_arcsec, extent=cameras_extent(events))
    return compact_cubes(events, _with_sky(runs, axes, shifted), *axes, filters=filters, monitor=monitor)


def _own_good_time(events, common) -> EventFilter:
    """The filter keeping each event inside its own CCD's good time within
    ``common`` (empty when every CCD is good throughout)."""
    test = own_good_time_test(events, common)
    if test is None:
        return EventFilter()
    return EventFilter([test], [test.label])


def _with_sky(runs, axes, shifted):
    if not shifted:
        return runs
    sky = tuple(shifted_axis(a) for a in axes)
    return [Run(r.time, r.energy_band, r.monitor_edges, sky) if k in shifted else r for k, r in enumerate(runs)]


def exposure_subsets(events) -> list[list[int]]:
    """The cameras' exposures (EventLists) grouped into subsets searched
    separately: lists of indices into ``events``, in time order. An exposure
    joins the first subset (longest exposures placed first) that has no
    exposure of its instrument yet and whose common good time with it is at
    least :data:`SUBSET_OVERLAP` of the shorter of the two; otherwise it
    starts a new subset. Cameras observing together form one subset (their
    common time is searched, as before); exposures that do not overlap, or
    several exposures of one camera, give several subsets. Eager, small."""
    gtis = [gtimod.from_dataset(e) for e in events]
    expo = [float(gtimod.exposure(g)) for g in gtis]
    groups: list[list[int]] = []
    common: list[tuple] = []
    for i in sorted(range(len(events)), key=lambda k: -expo[k]):
        inst = events[i].attrs.get("instrument", "")
        for k, g in enumerate(groups):
            both = gtimod.intersection(common[k], gtis[i])
            shorter = min(float(gtimod.exposure(common[k])), expo[i])
            if all(events[j].attrs.get("instrument", "") != inst for j in g) and shorter > 0 and \
                    float(gtimod.exposure(both)) >= SUBSET_OVERLAP * shorter:
                g.append(i)
                common[k] = both
                break
        else:
            groups.append([i])
            common.append(gtis[i])
    start = [float(c[0][0]) if len(c[0]) else np.inf for c in common]
    return [sorted(g) for _, g in sorted(zip(start, groups), key=lambda p: p[0])]
