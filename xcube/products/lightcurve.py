"""Light curves: source counts, exposure-corrected rates, and the
background-subtracted net rate from a background region scaled by area."""
from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
import xarray as xr

from .. import gti as gtimod
from .._version import __version__
from ..binning.axes import finite_number, positive_width
from ..gti import ccd_good_time
from ..times import reference_on_time
from .errors import ERROR_METHODS, count_error

__all__ = ["lightcurve", "lightcurve_from_counts", "product_attrs", "pi_band", "product_band", "region_text",
           "region_good_time", "ccd_good_time", "ccd_event_counts"]

log = logging.getLogger("xcube.products")


def _per_exposure(values: xr.DataArray, exposure: xr.DataArray) -> xr.DataArray:
    """``values / exposure`` with NaN where the exposure is 0 (lazy)."""
    return values / exposure.where(exposure > 0)


def lightcurve_from_counts(
    counts: xr.DataArray,
    *,
    errors: str = "poisson",
    bkg_counts: xr.DataArray | None = None,
    area_ratio: float | None = None,
    gti=None,
    attrs: dict | None = None,
) -> xr.Dataset:
    """Assemble a light-curve Dataset from binned counts.

    Parameters
    ----------
    counts : DataArray on dim ``time`` with coords ``time_lo``, ``time_hi``,
        ``exposure`` [s] and ``fracexp`` (as :func:`xcube.bin_events` makes it).
    errors : ``"poisson"`` (sqrt N) or ``"gehrels"`` (upper limit 1 + sqrt(N + 0.75)).
    bkg_counts : background-region counts on the same time bins.
    area_ratio : source area / background area (BACKSCAL ratio); the
        background rate is scaled by it to the source region.
    gti : ``(start, stop)`` stored as ``gti_start``/``gti_stop``.

    Returns a Dataset with ``counts``, ``rate``, ``rate_err`` [count/s] (and
    ``bkg_counts`` [count, raw], ``bkg_rate``, ``bkg_rate_err`` [count/s, scaled to
    the source area], ``net_rate``, ``net_rate_err``). Rates are NaN where the
    exposure is 0. Lazy: nothing is computed here.
    """
    exposure = counts["exposure"]
    err = count_error(counts, errors)
    ds = xr.Dataset(
        {
            "counts": counts.assign_attrs(units="count", long_name="counts in the bin"),
            "rate": _per_exposure(counts, exposure).drop_attrs(deep=False).assign_attrs(
                units="count/s", long_name="count rate"),
            "rate_err": _per_exposure(err, exposure).drop_attrs(deep=False).assign_attrs(
                units="count/s", long_name="error of the count rate", errors=errors),
        }
    )
    if bkg_counts is not None:
        if area_ratio is None or not np.isfinite(area_ratio) or area_ratio <= 0:
            raise ValueError(f"lightcurve: background area ratio {area_ratio!r} must be a positive number")
        bkg_counts = bkg_counts.drop_vars([c for c in bkg_counts.coords if c not in ("time",)])
        bkg_counts = bkg_counts.assign_coords({c: counts[c] for c in counts.coords if c != "time"})
        bkg_rate = area_ratio * _per_exposure(bkg_counts, exposure)
        bkg_err = area_ratio * _per_exposure(count_error(bkg_counts, errors), exposure)
        ds["bkg_counts"] = bkg_counts.drop_attrs(deep=False).assign_attrs(
            units="count", long_name="counts in the background region")
        ds["bkg_rate"] = bkg_rate.drop_attrs(deep=False).assign_attrs(
            units="count/s", long_name="background rate (scaled to the source area)", scaled_to="source area")
        ds["bkg_rate_err"] = bkg_err.drop_attrs(deep=False).assign_attrs(
            units="count/s", long_name="error of the background rate", errors=errors)
        ds["net_rate"] = (ds["rate"] - bkg_rate).drop_attrs(deep=False).assign_attrs(
            units="count/s", long_name="net (background-subtracted) count rate")
        ds["net_rate_err"] = np.sqrt(ds["rate_err"] ** 2 + bkg_err**2).drop_attrs(deep=False).assign_attrs(
            units="count/s", long_name="error of the net count rate", errors=errors)
    if gti is not None:
        ds["gti_start"] = ("gti", np.asarray(gti[0], np.float64), {"units": "s"})
        ds["gti_stop"] = ("gti", np.asarray(gti[1], np.float64), {"units": "s"})
    ds.attrs.update(attrs or {})
    reference_on_time(ds)  # (a column, lc["rate"], converts its times too)
    ds.attrs.setdefault("kind", "lightcurve")
    ds.attrs.setdefault("xcube_version", __version__)
    if bkg_counts is not None:
        ds.attrs["backscal_ratio"] = float(area_ratio)
    return ds


def _time_range_gti(events, time_range):
    """The events' GTIs cut to ``time_range``; raises when they do not overlap."""
    try:
        t_start, t_stop = (float(v) for v in time_range)
    except (TypeError, ValueError):
        raise ValueError(f"time_range must be (t_start, t_stop) in s of mission time, got {time_range!r}") from None
    if not t_stop > t_start:
        raise ValueError(f"time_range=({t_start!r}, {t_stop!r}): t_stop must be after t_start")
    gti = gtimod.from_dataset(events)
    if gtimod.exposure(gtimod.intersection(gti, ([t_start], [t_stop]))) <= 0:
        span = f"{gti[0][0]:.15g} - {gti[1][-1]:.15g} s" if gti[0].size else "no GTIs"
        raise ValueError(
            f"{events.attrs.get('source', 'events')}: time_range [{t_start:.15g}, {t_stop:.15g}) s lies outside the "
            f"GTIs ({span}, {gti[0].size} interval(s)); choose a range inside the good time"
        )
    return t_start, t_stop


def prepared_events(events, time_range=None, expr: str | None = None, screening: bool = True):
    """``(events, expr, t_start, t_stop)`` as :func:`lightcurve` bins them:
    ``events`` cut to ``time_range`` (events and GTIs; ``t_start``/``t_stop``
    [s] its bounds, None without one) and ``expr`` with the mission's
    screening when ``screening`` (:func:`xcube.select.screening_expr`). Eager:
    the time cut's pass over ``time``; the events stay lazy."""
    from ..select import screening_expr, select

    expr = screening_expr(events, expr, screening)
    t_start = t_stop = None
    if time_range is not None:
        t_start, t_stop = _time_range_gti(events, time_range)
        events = select(events, gti=([t_start], [t_stop]))
    return events, expr, t_start, t_stop


def edge_rounding(lo, hi) -> float:
    """The rounding [s] of bin edges ``lo``/``hi`` (non-empty arrays, s):
    a few ulp of the largest time (widths of 2.6 s at mission times of 1e8 s
    differ by ~1e-8 s)."""
    return 8.0 * np.finfo(np.float64).eps * float(max(np.abs(lo).max(), np.abs(hi).max()))


def common_bin_width(lc, error: str, empty: str | None = None) -> float:
    """The one bin width [s] of light curve ``lc`` (its ``time_bin`` attr, or
    the median of ``time_hi - time_lo``); ``ValueError(error)`` when the widths differ by more than the
    rounding of the edges (a few ulp of the largest time: widths of 2.6 s at
    mission times of 1e8 s differ by ~1e-8 s); ``ValueError(empty)`` (default:
    "<source> has no time bins") when there are no bins."""
    lo = np.asarray(lc["time_lo"].values, np.float64)
    hi = np.asarray(lc["time_hi"].values, np.float64)
    if lo.size == 0:
        raise ValueError(empty or f"{lc.attrs.get('source') or 'the light curve'} has no time bins (an empty light "
                                  "curve or selection)")
    width = hi - lo
    w = float(np.median(width))
    rounding = edge_rounding(lo, hi)
    if float(np.ptp(width)) > rounding + 1e-9 * abs(w):
        raise ValueError(error)
    nominal = float(lc.attrs.get("time_bin", np.nan))  # the requested width, when the edges round it
    return nominal if abs(nominal - w) <= rounding + 1e-9 * abs(w) else w


def bin_span_gti(gti, lo: float, hi: float):
    """The GTIs ``(start, stop)`` cut to the span ``[lo, hi)`` [s] of a light
    curve's bins: the good time its bins hold, so that the GTI total equals
    the summed ``exposure`` (eager, small)."""
    return gtimod.intersection(gti, ([float(lo)], [float(hi)]))


def clip_gti_to_bins(lc: xr.Dataset) -> xr.Dataset:
    """``lc`` with ``gti_start``/``gti_stop`` cut to the span of its bins
    ``[time_lo[0], time_hi[-1])`` (unchanged without GTIs or bins); the data stay lazy."""
    if "gti_start" not in lc or not lc.sizes.get("time"):
        return lc
    start, stop = bin_span_gti(gtimod.from_dataset(lc), lc["time_lo"].values[0], lc["time_hi"].values[-1])
    out = lc.drop_vars(["gti_start", "gti_stop"])
    out["gti_start"] = ("gti", start, lc["gti_start"].attrs)
    out["gti_stop"] = ("gti", stop, lc["gti_stop"].attrs)
    return out


def _check_t0(events, t0: float, width: float, t_start: float | None = None) -> float:
    """``t0``, or ``ValueError`` when it lies a whole bin or more before the
    first GTI start (or before ``time_range[0]`` = ``t_start``, when that is
    earlier: the window the caller asked for): the bins before the good time
    would all be empty (t0 = 1e7 s for data at 2e8 s made 1.9 million bins).
    With a ``time_range`` (``t_start`` given) such a t0 is a grid phase: the
    grid's first bin is then the last ``t0 + k * width`` at or before that
    start. A t0 after the last GTI stop is refused by the time axis."""
    start, stop = gtimod.normalize(*gtimod.from_dataset(events), warn=False)
    if start.size == 0:
        return t0
    first, what = float(start[0]), "the first GTI start"
    if t_start is not None and t_start < first:
        first, what = float(t_start), "time_range[0]"
    if t0 > first - width:
        return t0
    aligned = t0 + np.floor((first - t0) / width) * width
    if t_start is not None:  # a window with a round t0 (one grid for several windows): its grid, from the window on
        return float(aligned)
    raise ValueError(
        f"{events.attrs.get('source', 'events')}: t0={t0:.15g} s lies {first - t0:.6g} s "
        f"({(first - t0) / width:.6g} bins of {width:g} s) before {what} {first:.15g} s, outside the GTIs "
        f"({start[0]:.15g} - {stop[-1]:.15g} s in {start.size} interval(s)); t0 must lie inside their span or less "
        f"than one bin before it. To keep a grid aligned on t0, give t0={aligned:.15g} (t0 + a whole number of "
        f"bins)"
    )


def require_good_time(events, product: str) -> None:
    """Raise ``ValueError`` naming the file when ``events`` have no good time
    (no GTI variables, or GTIs of zero total length): a product's events are
    those inside the GTIs, and its exposure their length."""
    src = events.attrs.get("source", "<events>")
    if "gti_start" not in events.variables:
        raise ValueError(f"{src}: no GTIs (gti_start/gti_stop) to make a {product} from")
    if gtimod.exposure(gtimod.from_dataset(events)) <= 0:
        raise ValueError(f"{src}: no good time (the GTI tables are empty or of zero length); a {product} needs "
                         f"exposure, and t0/time ranges only choose times inside the GTIs; check the file's GTI "
                         f"extensions (xcube info {src})")


def ccd_event_counts(sel, prof=None) -> np.ndarray | None:
    """Number of selected events per CCD (``np.bincount`` of the CCD numbers,
    the mission profile's ``ccd_variable``, e.g. XMM EPIC ``CCDNR``,
    Chandra ACIS ``CCD_ID``), or None without that column or events. Eager: reads that
    column of the selection ``sel``, chunk by chunk (memory of one chunk)."""
    import dask
    import dask.array as da

    from ..io.chunking import EVENT_CHUNK
    from ..scheduler import compute

    if prof is None:
        from ..missions import profile_of

        prof = profile_of(sel)
    col = prof.ccd_variable
    if col is None or col not in sel.variables or sel.sizes.get("event", 0) == 0:
        return None
    data = sel[col].data
    if isinstance(data, da.Array):
        parts = compute(*[dask.delayed(_ccd_bincount)(b) for b in data.to_delayed().ravel()])
    else:
        parts = [_ccd_bincount(data[i:i + EVENT_CHUNK]) for i in range(0, data.shape[0], EVENT_CHUNK)]
    if not any(p.size for p in parts):
        return None
    out = np.zeros(max(p.size for p in parts), np.int64)
    for p in parts:
        out[:p.size] += p
    return out


def _ccd_bincount(block) -> np.ndarray:
    """``np.bincount`` of one block's non-negative CCD numbers (empty without any)."""
    b = np.asarray(block)
    b = b[b >= 0]
    return np.bincount(b.astype(np.intp)) if b.size else np.zeros(0, np.int64)


def region_good_time(events, regions, expr=None, selected=None):
    """``(gti, ccds)``: the good time of the CCD(s) that ``regions`` (source,
    and background, regions; None entries skipped) lie on, and those CCD
    numbers; ``(None, [])`` when there is no region or the events have no
    per-CCD GTIs (then the events' GTIs, the union over CCDs, apply).
    ``selected``: the events already inside each region (as
    :func:`region_events` holds them; same order as ``regions``), read
    instead of selecting the region again.

    The CCDs are those holding the regions' events (after ``expr``), the
    rule of :func:`xcube.spectrum` (which takes the CCD with most events for
    its live time and good time); a region over several CCDs gets the good
    time they share (the intersection of their GTIs), as SAS does with the
    per-CCD GTI extensions: a bin inside one CCD's dropout is not exposed in
    full. ``ValueError`` naming the file when those CCDs share no good time.
    Eager: one pass over the CCD column of each region's events (and, without
    ``selected``, the selection of each region)."""
    from ..missions import profile_of
    from ..select import select

    pairs = [(r, s) for r, s in zip(regions, selected or [None] * len(regions)) if r is not None]
    if not pairs or "ccd_gti_ccd" not in events.variables:
        return None, []
    prof = profile_of(events)
    if not prof.ccd_variable:
        return None, []
    found = set()
    for region, inside in pairs:
        inside = select(events, region=region) if inside is None else inside
        counts = ccd_event_counts(select(inside, expr=expr or None), prof)
        if counts is not None:
            found.update(int(c) for c in np.flatnonzero(counts))
    ccds = sorted(found)
    gti = ccd_good_time(events, ccds)
    if gti is None:
        return None, []
    if gtimod.exposure(gti) <= 0:
        own = {c: ccd_good_time(events, [c]) for c in ccds}  # (None: a CCD without a GTI table of its own)
        dead = [c for c, g in own.items() if g is not None and gtimod.exposure(g) <= 0]
        if dead:
            raise ValueError(f"{events.attrs.get('source', 'events')}: the region's events lie on CCD"
                             f"{'s' if len(ccds) > 1 else ''} {ccds}, of which {dead} had no good time (an empty "
                             "GTI table of its own, or none within the observation's GTIs): no exposure there; "
                             "use a region on a CCD that observed")
        raise ValueError(f"{events.attrs.get('source', 'events')}: the region's events lie on CCDs {ccds}, whose "
                         "GTIs share no good time; use a region on one CCD")
    return gti, ccds


class RegionEvents(NamedTuple):
    """The events inside the source and background regions (None without
    that region), each selected once and held in memory, and the good time
    ``ccd_gti`` ``(start, stop)`` [s] of the CCDs they lie on with those
    ``ccds`` (None and ``[]`` without per-CCD GTIs, see :func:`region_good_time`)."""

    source: xr.Dataset | None
    background: xr.Dataset | None
    ccd_gti: tuple | None
    ccds: list

    def cut(self, gti) -> "RegionEvents":
        """The same regions' events inside ``gti`` ``(start, stop)`` [s] (in memory
        already: no region test), with ``ccd_gti`` replaced by ``gti`` when there is one."""
        from ..select import select

        src, bkg = (None if e is None else select(e, gti=gti) for e in (self.source, self.background))
        return RegionEvents(src, bkg, None if self.ccd_gti is None else gti, list(self.ccds))


#: at most this many events of a region are held in memory by :func:`region_events` (more stay lazy)
HELD_EVENTS = 1 << 22


def _held(events: xr.Dataset, columns) -> xr.Dataset:
    """``events`` with their Dask ``columns`` (names; others stay lazy)
    computed once and held in memory (Dask arrays on the same chunks; numpy
    columns as they are), when they are at most :data:`HELD_EVENTS` (a region
    as large as the field of a long observation stays lazy: memory stays
    bounded)."""
    import dask.array as da

    from ..scheduler import compute

    lazy = [n for n in columns if n in events.variables and hasattr(events.variables[n].data, "dask")]
    if not lazy or events.sizes.get("event", 0) > HELD_EVENTS:
        return events
    values = compute(*[events.variables[n].data for n in lazy])
    new = {n: events.variables[n].copy(data=da.from_array(val, chunks=events.variables[n].data.chunks))
           for n, val in zip(lazy, values)}
    out = events.copy(deep=False)
    coords = {n: v for n, v in new.items() if n in events.coords}
    out = out.assign_coords(coords) if coords else out
    return out.assign({n: v for n, v in new.items() if n not in events.coords})


def _read_from_regions(events, expr) -> set:
    """The columns read from a region's events after its selection: ``time``
    (good time, binning, power spectra), ``energy`` (energy bands), those of
    ``expr`` and, with per-CCD GTIs, the CCD column (:func:`region_good_time`).
    Reads no event."""
    from ..select import EventFilter

    names = {"time", "energy"}
    if expr:
        names |= EventFilter.for_events(events, expr=expr).columns
    if "ccd_gti_ccd" in events.variables:
        from ..missions import profile_of

        names.add(profile_of(events).ccd_variable)
    return names - {None}


def region_events(events, region=None, background=None, expr=None) -> RegionEvents:
    """The events inside ``region`` and inside ``background`` (regions as
    :func:`xcube.select` takes them; None skipped), each selected once
    (``select``'s one eager pass over x/y) and the columns read later (time,
    energy, CCD, ``expr``'s) held in memory (up to :data:`HELD_EVENTS` events
    each; the other columns stay lazy): a region holds a small part of the
    events, and the CCDs' good time (:func:`region_good_time`, after
    ``expr``), every energy band and the binning then read them instead of
    testing x/y again."""
    from ..select import select

    columns = _read_from_regions(events, expr) if region is not None or background is not None else ()
    held = [None if r is None else _held(select(events, region=r), columns) for r in (region, background)]
    ccd_gti, ccds = region_good_time(events, [region, background], expr, selected=held)
    return RegionEvents(held[0], held[1], ccd_gti, ccds)


def region_backscal(events, region, background=None, backscal: str = "geometric",
                    screening: bool = True, *, area_needed: bool = True, product: str = "spectrum") -> dict:
    """The BACKSCAL attrs of a product's regions
    (:func:`xcube.regions.region_areas`): with ``backscal="detector"`` (and a
    region) their parts on the footprint of ``events`` in good time with the
    mission's screening when ``screening``
    (:func:`xcube.select.screened_footprint`: not the product's own filter,
    band or time range, so one region has one area), else their whole areas.
    Pass the events before the product's time cut. ``area_needed`` False (a
    light curve without a background region): ``{}`` for a source region of
    exclusions only, whose area is infinite. ``ValueError`` naming
    ``product`` for a source region whose shapes are marked DS9
    ``# background`` (:func:`xcube.regions.pixel_region`; such a region is
    given as ``background``), for a region of exclusions only when its
    area is needed, and for a region whose area is 0 (exclusions covering
    its shapes; with ``"detector"``, off the footprint). Eager: resolving the regions, and the footprint's passes
    over x, y and the CCD column only with ``"detector"``."""
    from ..regions import RegionSet, pixel_region, region_areas
    from ..select import screened_footprint

    if region is not None:  # resolved once here; region_areas takes the RegionSets
        region = region if isinstance(region, RegionSet) else pixel_region(region, events)
        if region.background:
            raise ValueError(
                f"{product}: region {region.description!r} is a background region: its shapes are marked "
                "'# background' (DS9's background property). Give it as the background region (--background, "
                "background=) with a source region (--region, region=)")
        if not region.include:
            if not area_needed:
                return {}
            raise ValueError(
                f"{product}: region {region.description!r} has only exclusions: its area is infinite, "
                + ("and a background region is scaled by the source area; give an included shape, or no background"
                   if product == "lightcurve" else "and BACKSCAL needs it; give an included shape"))
    if background is not None and not isinstance(background, RegionSet):
        background = pixel_region(background, events)
    if backscal != "detector" or region is None:  # (an unknown backscal raises in region_areas)
        areas = region_areas(events, region, background, backscal=backscal)
    else:
        areas = region_areas(events, region, background, backscal=backscal,
                             footprint=screened_footprint(events, screening))
    for key, reg, what in (("backscal", region, "region"), ("bkg_backscal", background, "background region")):
        if reg is not None and key in areas and not areas[key] > 0 and (area_needed or key == "bkg_backscal"):
            where = " on the detector" if backscal == "detector" else ""
            raise ValueError(f"{product}: the {what} {reg.description!r} has no area{where} ({areas[key]:g} "
                             "pixel^2: its exclusions cover its shapes, or it lies off the detector); BACKSCAL "
                             "would be 0")
    return areas


def product_attrs(events, **params) -> dict:
    """The attrs of a product made from ``events``: the observation and time
    reference attrs (mission, instrument, obs_id, mjdref, timesys, ...),
    ``source``, and the ``params`` that are not None; ``date_obs``/``date_end``
    are the UTC dates of the events' GTI span (first start, last stop;
    :func:`xcube.io.ogip.date_cards`), not the event file's DATE-OBS/DATE-END
    (kept without GTIs or time reference). Attrs and GTIs only; no event is
    read. Eager (a dict)."""
    keep = ("mission", "instrument", "profile", "obs_id", "object", "mjdref", "mjdrefi", "mjdreff", "timesys",
            "timeref", "telescop", "instrume", "filter", "date_obs", "date_end", "expid", "RADESYS", "EQUINOX")
    attrs = {k: events.attrs[k] for k in keep if k in events.attrs}
    attrs["source"] = str(events.attrs.get("source", ""))
    if "gti_start" in events.variables:  # the dates of the product's good time, not the event file's
        from ..io.ogip import date_cards

        start, stop = gtimod.normalize(*gtimod.from_dataset(events), warn=False)
        dates = date_cards(attrs, start[0], stop[-1]) if start.size else {}
        attrs.update({name: dates[key] for key, name in (("DATE-OBS", "date_obs"), ("DATE-END", "date_end"))
                      if key in dates})
    attrs.update({k: v for k, v in params.items() if v is not None})
    return attrs


def pi_band(events, energy_band):
    """PI channels [lo, hi] (inclusive) of an energy band, for CHANMIN/CHANMAX;
    None if unknown. Eager (two scalars from the profile; ``energy_band`` in
    [keV]); reads no event."""
    if energy_band is None:
        return None
    from ..missions import profile_of

    try:
        prof = profile_of(events)
        lo, hi = prof.pi_for_energy(np.asarray(energy_band, np.float64))
    except (KeyError, ValueError):
        return None
    if prof.pi_to_kev is not None and np.isfinite(lo) and np.isfinite(hi):
        # the channels whose energy, as the events' float32 column holds it, passes select's test
        # lo <= energy < hi with the bounds in that float type (a band edge equal to a channel's energy)
        cand = np.arange(max(int(np.floor(lo)) - 2, 0), int(np.ceil(hi)) + 3)
        e = np.asarray(prof.pi_to_kev(cand))
        t = e.dtype.type if e.dtype.kind == "f" else np.float64
        keep = cand[(e >= t(energy_band[0])) & (e < t(energy_band[1]))]
        if keep.size:
            return [int(keep[0]), int(keep[-1])]
    return [int(np.ceil(np.round(lo, 6))), int(np.ceil(np.round(hi, 6))) - 1]


def region_text(region) -> str | None:
    """A region as text for product attrs: a RegionSet's description, a
    string stripped, anything else ``str()``; None for None. Eager (text
    only)."""
    if region is None:
        return None
    from ..regions import RegionSet

    if isinstance(region, RegionSet):
        return region.description
    if isinstance(region, str):
        return region.strip()
    return str(region)


def lightcurve(
    events,
    time_bin,
    energy_band=None,
    region=None,
    background=None,
    *,
    t0: float | None = None,
    time_range=None,
    expr: str | None = None,
    screening: bool = True,
    offset: float = 0.0,
    errors: str = "poisson",
    cameras: str = "sum",
    mjd: bool = False,
    backscal: str = "geometric",
    _inside: RegionEvents | None = None,
) -> xr.Dataset:
    """Light curve of an EventList: counts and rates in time bins, optionally
    in an energy band and a region, with a background region subtracted.

    Parameters
    ----------
    events : EventList (``xcube.open_events``), time-sorted; or an
        ``xr.DataTree`` of one observation's cameras (``open_events([pn,
        mos1, mos2])``), see ``cameras``.
    time_bin : bin width [s] (> 0).
    energy_band : ``(emin, emax)`` [keV], half-open (see :func:`xcube.select`),
        or a list of bands ``[(0.5, 2), (2, 10)]``: the result then has a
        ``band`` dimension (coords ``band`` = ``"0.5-2keV"``, ``energy_lo``,
        ``energy_hi``), one lazy binning per band. Events already cut with
        ``select(energy_band=...)`` narrow each band to that cut, with a
        warning (:func:`xcube.select.applied_band`; None takes the cut); a
        band outside the cut raises ``ValueError``. The labels
        (``energy_band``, ``pi_band``, E_MIN/E_MAX) are the band covered.
    region : source region: DS9 string or file, ``regions`` object(s), sky
        (fk5/icrs/galactic) or physical (X/Y column) coordinates. For event
        files with per-CCD GTIs (XMM EPIC), the good time, and so each bin's
        ``exposure``, is that of the CCD(s) holding the region's (and the
        background region's) events, as :func:`xcube.spectrum` takes it: the
        intersection of their GTIs (see :func:`region_good_time`). Without a
        region the events' GTIs are the good time: for XMM EPIC the union over
        all CCDs (the time any CCD was on), so a bin inside one CCD's dropout
        keeps its exposure, while each event is counted only inside its own
        CCD's GTIs, as :func:`xcube.image` and :func:`xcube.spectrum` count
        them (that CCD's events in its dropout are dropped); give a region
        for the exposure of a source. A region of exclusions only is
        everything outside them (no ``backscal``; refused with a background
        region, which is scaled by the source area); one whose shapes are
        marked DS9 ``# background`` is refused (it is a background region).
    background : background region, same forms. Its counts are scaled by
        ``area(region) / area(background)`` (geometric areas, BACKSCAL-like;
        both regions share the same GTIs, so exposure cancels). Needs ``region``.
        Or a background *model*: a model light curve (Dataset, or the path of
        an OGIP light curve such as a mission background tool writes) or a
        transient-search result (its expected counts summed over ``region``);
        see :func:`xcube.products.net_lightcurve`.
    t0 : start of the first bin [s, mission time]; default the first GTI start
        (or ``time_range[0]``). Bins run to the last GTI stop (or ``time_range[1]``).
        It must lie inside the span of the GTIs, or less than one bin before
        the first GTI start (e.g. a round number to align the grid) or before
        ``time_range[0]`` if that is earlier; good time before ``t0`` is left
        out, and the GTIs are cut to the bins.
    time_range : ``(t_start, t_stop)`` [s]: keep only this part of the
        observation (events and GTIs); must overlap the GTIs.
    expr : extra event filter (``xcube.select`` syntax), e.g. ``"PI in
        [500:2000]"``.
    screening : apply the mission's standard event screening
        (:func:`xcube.missions.screening_of`, e.g. XMM MOS ``PATTERN <= 12 &&
        FLAG == 0``) with ``expr``, as ``xcube lc`` does by default; False
        keeps every event.
    offset : shift of the time grid in bins (``0.5``: half-bin shifted); a finite number.
    errors : ``"poisson"`` (sqrt N) or ``"gehrels"`` (1 + sqrt(N + 0.75),
        Gehrels 1986 upper limit, better for a few counts per bin).
    cameras : for a DataTree: ``"sum"`` adds the cameras of one observation
        over their common good time (one light curve), ``"each"`` gives a
        DataTree of one light curve per camera (see
        :func:`xcube.products.cameras.tree_lightcurve`).
    mjd : add coordinates ``mjd`` (MJD in the file's TIMESYS) and ``utc``
        (datetime64, UTC) along ``time`` (:func:`xcube.with_mjd`).

    Returns
    -------
    ``xr.Dataset`` on dim ``time`` (bin centres [s]) with coords ``time_lo``,
    ``time_hi``, ``exposure`` [s of good time in the bin] and ``fracexp``;
    variables ``counts`` [count], ``rate``, ``rate_err`` [count/s] (rate =
    counts / exposure, NaN where the exposure is 0); with ``background``:
    ``bkg_counts`` (raw counts in the background region), ``bkg_rate`` and
    ``bkg_rate_err`` (scaled to the source area), ``net_rate`` = rate -
    bkg_rate and ``net_rate_err`` (errors added in quadrature); ``gti_start``/
    ``gti_stop`` [s]: the GTIs cut to the span of the bins ``[time_lo[0],
    time_hi[-1])``, so that their total equals the summed ``exposure`` (also
    with ``t0`` after the first GTI start). attrs: observation attrs,
    ``time_bin``, ``energy_band``, ``region``, ``background_region``,
    ``backscal``/``bkg_backscal`` [sky pixel^2] (the regions' areas on the
    detector, as :func:`xcube.spectrum`'s, with ``backscal_geometric``/
    ``backscal_fraction``, ``bkg_...``), ``backscal_ratio``,
    ``selection``, ``binning``, ``errors``; with per-CCD GTIs ``gti_from``
    (``"CCD 1"``, or ``"all CCDs (union ...)"`` without a region) and
    ``ccds`` (the CCD numbers whose GTIs were used).

    Laziness: counts, rates and errors are lazy Dask arrays (one chunked
    ``bin_events`` per region). Eager: the time axis and exposure, the
    region areas, and the passes ``xcube.select`` and ``bin_events`` make over
    the columns they filter on (energy, x/y, time) to size their chunks. Each
    region is selected once (one ``select`` over x/y) and the columns read
    next (time, energy, CCD, ``expr``'s) of its events are held in memory
    (:func:`region_events`): the CCD column (per-CCD GTIs), every energy band
    and the binning read them, not x/y again.

    Errors: ``ValueError`` for ``time_bin <= 0`` (or NaN), a non-finite
    ``offset`` or ``t0``, events without good time (naming the file), an
    energy band outside the mission's range, a region outside the field, a
    ``time_range`` outside the GTIs, a ``t0`` after the last GTI stop or a
    whole bin or more before the first GTI start. An empty selection gives
    zero counts and a warning.
    """
    from ..binning import time_axis
    from ..select import applied_band
    from .net import is_fits_file, is_search_result, net_lightcurve

    if isinstance(events, xr.DataTree):
        from .cameras import tree_lightcurve

        out = tree_lightcurve(events, time_bin, cameras=cameras, energy_band=energy_band, region=region,
                              background=background, t0=t0, time_range=time_range, expr=expr,
                              screening=screening, offset=offset, errors=errors, mjd=mjd)
        return clip_gti_to_bins(out) if isinstance(out, xr.Dataset) else out  # summed cameras: the common GTIs
    width = positive_width("time_bin", time_bin)
    offset = finite_number("offset", offset, "a shift of the time grid in bins, e.g. 0.5")
    require_good_time(events, "light curve")
    if errors not in ERROR_METHODS:
        raise ValueError(f"errors={errors!r}: use one of {ERROR_METHODS}")
    model = background if (is_search_result(background) or is_fits_file(background)
                           or isinstance(background, xr.Dataset)) else None
    if background is not None and model is None and region is None:
        raise ValueError("lightcurve: a background region needs a source region (region=) to scale it to")
    region_bkg = None if model is not None else background
    # BACKSCAL of the regions on the events before the time cut: one region has one area
    areas = region_backscal(events, region, region_bkg, backscal, screening, area_needed=region_bkg is not None,
                            product="lightcurve")
    events, expr, t_start, t_stop = prepared_events(events, time_range, expr, screening)
    if t0 is not None:
        t0 = _check_t0(events, finite_number("t0", t0, "the start of the first bin [s, mission time]"), width, t_start)
    elif t_start is not None:
        t0 = t_start  # the window asked for, also where it starts before the good time
    axis = time_axis(events, width, t0=t0, t_stop=t_stop, offset=offset)
    # each region selected once (tree_lightcurve passes the cameras' own, cut to their common good time)
    inside = _inside if _inside is not None else region_events(events, region, region_bkg, expr)
    if inside.ccd_gti is not None and t_stop is None:  # a region's light curve: no empty bins after its CCDs'
        axis = within_good_time(axis, inside.ccd_gti)  # good time (its first bin stays: rebinning keeps the phase)
    wanted = _bands(energy_band)  # the bands the events cover (expr compiled once for all of them)
    bands = [applied_band(events, None, expr=expr)] if wanted == [None] else applied_band(events, wanted, expr=expr)
    parts = [_band_lightcurve(events, axis, width, band, region, region_bkg, expr, errors, inside, areas)
             for band in bands]
    lc = parts[0] if np.ndim(energy_band) != 2 else _concat_bands(parts, bands)
    if model is not None:
        lc = net_lightcurve(lc, model, region=region)
    if mjd:
        from ..times import with_mjd

        lc = with_mjd(lc)
    return lc


def _bands(energy_band) -> list:
    """``[None]``, ``[(emin, emax)]`` or the list of bands of a multi-band request."""
    if energy_band is None:
        return [None]
    if np.ndim(energy_band) == 2:
        bands = [tuple(float(v) for v in b) for b in energy_band]
        if not bands:
            raise ValueError("energy_band: an empty list of bands")
        return bands
    if np.ndim(energy_band) != 1 or len(energy_band) != 2:
        raise ValueError(f"energy_band={energy_band!r}: use (emin, emax) [keV] or a list of such bands")
    return [tuple(float(v) for v in energy_band)]


def band_label(band) -> str:
    """``"0.5-2keV"`` for the band (0.5, 2.0)."""
    return f"{float(band[0]):g}-{float(band[1]):g}keV"


def product_band(obj) -> dict:
    """``{"energy_band": ..., "pi_band": ...}`` a light curve or power
    spectrum ``obj`` holds: ``[emin, emax]`` [keV] and its PI channels
    ``[lo, hi]`` (inclusive), None when unknown. From the ``band``
    coordinate when there is one: one band picked from a multi-band light
    curve (``lc.sel(band="2-10keV")``, ``.isel(band=1)``: scalar
    ``energy_lo``/``energy_hi``) gives that band, and its PI channels from
    the per-band list in attrs, though xarray kept the attrs of every band;
    dim ``band`` gives one ``[emin, emax]`` per band (NaN when unknown) and
    the PI channels per band when all are known. Else the attrs. What the
    writers (E_MIN/E_MAX, CHANMIN/CHANMAX), :func:`xcube.stitch` and
    :func:`xcube.power_spectrum` record. Eager (coords and attrs; reads no data)."""
    band, chans = obj.attrs.get("energy_band"), obj.attrs.get("pi_band")
    if "energy_lo" not in obj.coords or "energy_hi" not in obj.coords:
        return {"energy_band": band, "pi_band": chans}
    edges = np.stack([np.atleast_1d(np.asarray(obj[k].values, np.float64)) for k in ("energy_lo", "energy_hi")], 1)

    def key(b):
        return tuple(np.round(np.asarray(b, np.float64), 9))

    # PI channels by band, of the bands the attrs list (one band's, or a list of the bands' with None for unknown)
    bands, per_band = ([band], [chans]) if np.ndim(band) == 1 else (band or [], chans or [])
    listed = {key(b): c for b, c in zip(bands, per_band) if len(bands) == len(per_band)}
    pis = [listed.get(key(e)) for e in edges]
    pis = [[int(v) for v in p] if np.ndim(p) == 1 and len(p) == 2 and None not in list(p) else None for p in pis]
    if obj["energy_lo"].ndim == 0:
        known = bool(np.isfinite(edges[0]).all())
        return {"energy_band": [float(v) for v in edges[0]] if known else None, "pi_band": pis[0] if known else None}
    return {"energy_band": [[float(a), float(b)] for a, b in edges],
            "pi_band": pis if all(p is not None for p in pis) else None}


def _concat_bands(parts, bands) -> xr.Dataset:
    """Single-band light curves stacked on ``band`` (see :func:`xcube.io.lightcurve_file.stack_bands`)."""
    from ..io.lightcurve_file import stack_bands

    lc = stack_bands(parts, bands)
    lc.attrs["pi_band"] = [p.attrs.get("pi_band") for p in parts]
    return lc


def within_good_time(axis, gti):
    """``axis`` (a time :class:`~xcube.binning.Axis`) without its trailing
    bins that hold no good time of ``gti`` (``(start, stop)`` [s]): the same
    grid from the same first bin, fewer bins (a region whose CCDs' good time
    ends before the other CCDs' gets no empty bins after it; leading empty
    bins stay, so that rebinning by a factor keeps the grid's phase).
    ``axis`` itself when the last bin overlaps or none does. Eager, small."""
    good = np.flatnonzero(gtimod.exposure_per_bin(axis.edges[:-1], axis.edges[1:], gti) > 0)
    if good.size == 0 or int(good[-1]) + 1 == axis.size:
        return axis
    return axis.sel(0, int(good[-1]) + 1)


def _band_lightcurve(events, axis, width, energy_band, region, background, expr, errors,
                     inside: RegionEvents, areas: dict) -> xr.Dataset:
    """One band: source (and background-region) counts binned on ``axis``
    from the regions' events ``inside`` (the events without a source region),
    inside ``inside.ccd_gti`` (the good time of the regions' CCDs) when given, else
    each event inside its own CCD's GTIs (:func:`~xcube.products.spectrum.in_own_good_time`; the events'
    GTIs without per-CCD GTIs), the bins' good time being the events' GTIs
    (the union over CCDs); ``areas``: the regions' areas (:func:`xcube.regions.region_areas`)."""
    from ..binning import bin_events
    from ..select import select
    from .spectrum import in_own_good_time

    ccd_gti, ccds = inside.ccd_gti, inside.ccds
    good = ccd_gti if ccd_gti is not None else events
    filters = {"energy_band": energy_band, "expr": expr or None}
    source = inside.source if region is not None else events
    selected = select(source, gti=good, **filters)
    if ccd_gti is None:  # the whole field (or no region CCDs): each event inside its own CCD's good time
        selected = in_own_good_time(selected)
    counts = bin_events(selected, time=axis)
    attrs = product_attrs(
        events, kind="lightcurve", time_bin=width, errors=errors,
        energy_band=list(energy_band) if energy_band is not None else None,
        pi_band=pi_band(events, energy_band), region=region_text(region), expr=expr,
    )
    attrs["selection"] = list(counts.attrs.get("selection", []))
    attrs["binning"] = list(counts.attrs.get("binning", []))
    bkg_counts = ratio = None
    attrs.update(areas)
    if background is not None:
        attrs["background_region"] = region_text(background)
        if attrs["bkg_backscal"] <= 0 or attrs["backscal"] <= 0:
            raise ValueError(f"lightcurve: region areas must be positive (source {attrs['backscal']:g}, "
                             f"background {attrs['bkg_backscal']:g} pixel^2)")
        ratio = attrs["backscal"] / attrs["bkg_backscal"]
        bkg_counts = bin_events(select(inside.background, gti=good, **filters), time=axis)
    if ccd_gti is not None:
        attrs["ccds"] = [int(c) for c in ccds]
        attrs["gti_from"] = f"CCD{'s' if len(ccds) > 1 else ''} {', '.join(map(str, ccds))}"
    elif "ccd_gti_ccd" in events.variables:
        attrs["gti_from"] = "all CCDs (union of the per-CCD GTIs)"
    counts = counts.copy(deep=False)
    counts.attrs = {}
    gti = bin_span_gti(ccd_gti if ccd_gti is not None else gtimod.from_dataset(events), axis.edges[0],
                       axis.edges[-1])
    return lightcurve_from_counts(counts, errors=errors, bkg_counts=bkg_counts, area_ratio=ratio, gti=gti,
                                  attrs=attrs)
