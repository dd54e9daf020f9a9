"""Spectra: PI-channel histograms of a source region (and a background
region), with exposure and extraction areas (BACKSCAL) for OGIP PHA files."""
from __future__ import annotations

import logging
import warnings

import numpy as np
import xarray as xr

from .. import gti as gtimod
from .grouping import group_spectrum
from .lightcurve import (
    ccd_event_counts,
    ccd_good_time,
    pi_band,
    product_attrs,
    region_backscal,
    region_text,
    require_good_time,
)

__all__ = ["spectrum", "standard_grid", "in_own_good_time"]

log = logging.getLogger("xcube.products")


def standard_grid(events, channel_bin=None, pi_range=None) -> tuple[int, tuple]:
    """``(channel_bin, (lo, hi))`` of a spectrum: what is given, the rest
    from the mission's standard channel grid (``profile.spectral_grid``: the
    grid its response matrices use, XMM pn PI 0-20479 by 5, MOS 0-11999 by
    15) or else one channel per PI over ``profile.pi_range``. ``ValueError``
    for an unknown mission without ``pi_range``. Eager (profile look-up; reads
    no event). Channels are PI [channel]."""
    from ..missions import profile_of

    prof = profile_of(events)
    grid = prof.spectral_grid
    if pi_range is None:
        if prof.name == "generic":
            raise ValueError(
                f"{events.attrs.get('source', 'events')}: unknown mission, no PI channel range; pass pi_range=(lo, hi)"
            )
        pi_range = grid[:2] if grid is not None and channel_bin in (None, grid[2]) else prof.pi_range
    if channel_bin is None:
        channel_bin = grid[2] if grid is not None else 1
    return channel_bin, pi_range


def _full_grid(prof, cb: int) -> tuple[int, int] | None:
    """``(first, last)`` channel of the instrument's whole grid at ``cb`` PI
    per channel: the standard grid's PI range at its own binning (the RMF's:
    MOS 0-799), else the profile's ``pi_range``; None for an unknown mission."""
    if prof.name == "generic":
        return None
    grid = prof.spectral_grid
    lo, hi = grid[:2] if grid is not None and cb == grid[2] else prof.pi_range
    return int(lo) // cb, int(hi) // cb


def _channel_axis(events, channel_bin: int, pi_range):
    """``(axis, first, last, (pmin, pmax), selected)``: the channel axis over
    the instrument's whole grid (channels ``first..last``, channel ``c``
    holding PI ``[c * cb, (c + 1) * cb)``), the PI range selected rounded
    outward to whole channels (inclusive), and the selected channels
    ``(lo, hi)``. ``ValueError`` for ``pi_range`` with ``lo > hi``, ``lo <
    0``, or wholly outside the instrument's ``profile.pi_range`` or channel
    grid; a range reaching beyond the grid is cut to it, with a warning."""
    from ..binning import Axis
    from ..missions import profile_of

    cb = int(channel_bin)
    if cb != channel_bin or cb < 1:
        raise ValueError(f"channel_bin={channel_bin!r}: must be a positive whole number of PI channels")
    lo, hi = (int(v) for v in pi_range)
    if hi < lo or lo < 0:
        raise ValueError(f"pi_range={pi_range!r} (--pi-range {lo} {hi}): need 0 <= lo <= hi (PI channels, inclusive)")
    prof = profile_of(events)
    if prof.name != "generic" and (lo > prof.pi_range[1] or hi < prof.pi_range[0]):
        raise ValueError(
            f"{events.attrs.get('source') or 'events'}: pi_range={(lo, hi)!r} (--pi-range {lo} {hi}) lies outside "
            f"the {prof.mission} {prof.instrument} PI range {prof.pi_range[0]}-{prof.pi_range[1]} (profile "
            f"{prof.name!r}; inclusive); no event would remain")
    # whole channels only: an edge channel filled from part of its PI values would be biased low against the RMF
    sel = (lo // cb, hi // cb)
    pmin, pmax = sel[0] * cb, (sel[1] + 1) * cb - 1
    if (pmin, pmax) != (lo, hi):
        log.info("pi_range %s-%s rounded outward to whole channels of %d PI: %d-%d", lo, hi, cb, pmin, pmax)
    full = _full_grid(prof, cb)
    if full is not None and (sel[0] < full[0] or sel[1] > full[1]):  # keep the RMF's channels (DETCHANS)
        grid = (full[0] * cb, (full[1] + 1) * cb - 1)
        if sel[0] > full[1] or sel[1] < full[0]:
            raise ValueError(f"{events.attrs.get('source') or 'events'}: pi_range={(lo, hi)!r} (--pi-range {lo} {hi}) "
                             f"lies outside the {prof.mission} {prof.instrument} channel grid, PI {grid[0]}-{grid[1]} "
                             "(the channels of its RMF)")
        warnings.warn(f"pi_range={(lo, hi)!r}: cut to the {prof.mission} {prof.instrument} channel grid, PI "
                      f"{grid[0]}-{grid[1]}, so that the spectrum keeps the channels (DETCHANS) of its RMF",
                      UserWarning, stacklevel=3)
        sel = (max(sel[0], full[0]), min(sel[1], full[1]))
        pmin, pmax = sel[0] * cb, (sel[1] + 1) * cb - 1
    full = full or sel
    first, last = min(full[0], sel[0]), max(full[1], sel[1])
    axis = Axis.regular("channel", first * cb, cb, last - first + 1, units="channel", column="pi")
    return axis, first, last, (pmin, pmax), sel


def _band_channels(events, band, cb: int, sel: tuple[int, int], asked: bool) -> tuple[int, int]:
    """The selected channels ``sel`` ``(lo, hi)`` narrowed to those whose
    ``cb`` PI lie wholly inside the energy band ``band`` [keV] the events were
    already cut to (:func:`xcube.select.applied_band`: ``select(energy_band=)``
    or a PI/energy term of ``expr``), as ``pi_range``'s edges are: a channel
    left with part of its PI values would be biased low against the RMF.
    ``sel`` unchanged when the band has no PI channels (no energy
    calibration). A narrowed ``pi_range`` that was ``asked`` for is logged as
    a warning naming the file and both, as the light curve's band; ``ValueError``
    naming them when no whole channel is left. Attrs only, no event read."""
    pis = pi_band(events, band)
    if pis is None:
        return sel
    lo, hi = max(sel[0], -(-pis[0] // cb)), min(sel[1], (pis[1] + 1) // cb - 1)
    src = events.attrs.get("source") or "events"
    what = (f"the events were already cut to {band[0]:g}-{band[1]:g} keV (PI {pis[0]}-{pis[1]}; "
            "select(energy_band=...), or the filter expression)")
    asked_pi = f"pi_range {sel[0] * cb}-{(sel[1] + 1) * cb - 1}"
    if hi < lo:
        raise ValueError(f"{src}: {what}, which holds no whole channel of {cb} PI"
                         + (f" inside the requested {asked_pi}" if asked else "")
                         + "; a channel filled from part of its PI values would be biased low against the RMF. "
                         "Cut a wider band, or give channel_bin (e.g. 1) and pi_range for this one")
    if (lo, hi) != tuple(sel):
        (log.warning if asked else log.info)(
            "%s: %s, so the %s is narrowed to the whole channels of %d PI inside the band, PI %d-%d (channels "
            "%d-%d; the others are bad, quality 1)", src, what, f"requested {asked_pi}" if asked else "spectrum",
            cb, lo * cb, (hi + 1) * cb - 1, lo, hi)
    return lo, hi


def _source_ccd(sel, prof, ccd_from=None) -> int | None:
    """The CCD holding most of the selected events (its number in the
    profile's ``ccd_variable``), or None; with ``ccd_from`` (the region's
    events before an energy cut), the CCD holding most of those among the
    CCDs the selection has events on (all of them when it has none), so that
    the choice does not follow the band, nor leave the CCDs ``sel`` was cut
    to. Eager: reads that column of the selection(s)."""
    counts = ccd_event_counts(sel, prof)
    if ccd_from is not None:
        wide = ccd_event_counts(ccd_from, prof)
        if wide is not None:
            if counts is not None:  # only the CCDs the selection kept (e.g. expr="... && CCDNR==4")
                keep = np.zeros(wide.size, bool)
                keep[np.flatnonzero(counts[:wide.size])] = True
                wide = np.where(keep, wide, 0) if (wide * keep).any() else wide
            counts = wide
    return int(np.argmax(counts)) if counts is not None else None


def live_exposure(sel, prof, keys: dict, ccd_from=None) -> dict:
    """``{"exposure": s}`` of a selection: its good time [s] (GTI total), or,
    where the event file has dead-time keywords (``keys``, from
    :func:`xcube.io.ogip.dead_time_keywords`), the live time: the good time x
    the live fraction, with ``ontime`` [s] (before), ``deadc`` (the fraction)
    and ``deadc_from`` (its keywords). For a profile with per-CCD live times
    (XMM EPIC ``LIVETInn``/``ONTIMEnn``, Chandra ACIS ``LIVTIMEn``/``ONTIMEn``) the CCD holding most of the events
    decides, and the good time is that CCD's GTI; with ``ccd_from`` (the
    region's events before an energy band cut) the CCD is chosen by those
    among the CCDs ``sel`` holds events on (:func:`_source_ccd`), so that the
    exposure does not change with the band."""
    from ..io.ogip import live_fraction

    ontime = gtimod.exposure(gtimod.from_dataset(sel))
    ccd = _source_ccd(sel, prof, ccd_from) if prof.ccd_livetime_keywords else None
    own = ccd_good_time(sel, [ccd]) if ccd is not None else None
    if own is not None:  # that CCD's own good time (xcube keeps the per-CCD GTIs)
        ontime = gtimod.exposure(own)
    elif ccd is not None and "ccd_gti_ccd" in sel.variables:  # per-CCD GTIs, but none of this CCD's
        warnings.warn(f"{sel.attrs.get('source', 'events')}: CCD {ccd} holds most of the selected events but has "
                      f"no GTI table of its own (CCDs with one: "
                      f"{sorted({int(c) for c in np.asarray(sel['ccd_gti_ccd'].values)})}); its exposure is the "
                      f"observation's good time, {ontime:.1f} s", UserWarning, stacklevel=3)
    if not keys:
        return {"exposure": ontime}
    live = live_fraction(keys, ccd, prof.ccd_livetime_keywords, source=str(sel.attrs.get("source", "events")))
    if live is None:
        return {"exposure": ontime}
    frac, what = live
    if ccd is not None and what == "/".join(k.format(ccd) for k in prof.ccd_livetime_keywords):
        what = f"{what} (CCD {ccd})"
    return {"exposure": ontime * frac, "ontime": ontime, "deadc": frac, "deadc_from": what}


def in_own_good_time(sel):
    """``sel`` with only the events inside the good time of their own CCD
    (the profile's ``ccd_variable``; that CCD's GTIs, :func:`ccd_good_time`),
    as SAS ``evselect`` filters an XMM EPIC event list by its STDGTInn
    tables: the good time :func:`live_exposure` takes a CCD's exposure from.
    A CCD whose GTIs have a hole that other CCDs cover (the union does) loses
    its events in the hole. The GTI variables and attrs stay ``sel``'s (the
    union over CCDs); ``attrs["selection"]`` says which CCDs were cut. ``sel``
    itself without per-CCD GTIs or when every CCD is good throughout
    ``sel``'s GTIs (:func:`xcube.select.own_good_time_test`). Eager: one
    pass over (time, CCD) that counts the kept events per chunk; the events
    stay lazy and in their order."""
    from ..select import EventFilter, apply_filter, own_good_time_test

    test = own_good_time_test(sel)
    if test is None:
        return sel
    out = apply_filter(sel, EventFilter([test]))
    out.attrs["selection"] = list(sel.attrs.get("selection", [])) + [test.label]
    return out


def spectrum(
    events,
    region=None,
    background=None,
    *,
    expr: str | None = None,
    screening: bool = True,
    channel_bin: int | None = None,
    pi_range=None,
    group_min: int | None = None,
    backscal: str = "geometric",
) -> xr.Dataset:
    """PI spectrum of an EventList over the mission's channel range.

    Parameters
    ----------
    events : EventList with a ``pi`` column.
    region : source region (DS9 string/file or ``regions`` objects; sky or
        physical coordinates); None takes every event.
    background : background region; adds ``bkg_counts`` and ``bkg_backscal``.
        Needs ``region``.
    expr : extra event filter (``xcube.select`` syntax).
    screening : apply the mission's standard event screening
        (:func:`xcube.missions.screening_of`) with ``expr``, as ``xcube
        spectrum`` does by default; False keeps every event.
    channel_bin : PI channels per output channel; default the mission's
        standard grid, the one its response matrices use, so that the
        spectrum pairs with a standard RMF without regrouping (XMM-Newton pn
        5, MOS 15, as SAS ``spectralbinsize``; other missions 1, one channel
        per PI value). Output channel ``c`` holds PI
        ``[c * channel_bin, (c + 1) * channel_bin)``, always whole.
    pi_range : ``(lo, hi)`` PI channels, inclusive; default the standard
        grid's (pn 0-20479, MOS 0-11999) or the mission's ``profile.pi_range``
        (pn 0-20479, MOS 0-15000, NICER 0-1500, NuSTAR 0-4095). Rounded
        outward to whole channels (MOS ``(500, 10000)`` by 15: PI 495-10004,
        channels 33-666). A range wholly outside ``profile.pi_range`` (pn
        ``(100000, 200000)``), or ``lo > hi``, is a ``ValueError`` naming
        both. Events outside are not counted. The spectrum keeps
        every channel of the instrument's grid (the standard grid at its
        ``channel_bin``, else ``profile.pi_range``), so that DETCHANS and the
        channels match the mission's RMF: those outside ``pi_range`` hold 0
        counts with ``quality`` 1 (bad: XSPEC ignores them). Events already
        cut to an energy band (``select(energy_band=...)``, or a PI/energy
        term of ``expr``; :func:`xcube.select.applied_band`) narrow it to the
        channels wholly inside that band, the others bad the same way (a
        given ``pi_range`` narrowed so: a warning); ``ValueError`` naming
        the file when no whole channel is left.
    group_min : group to at least this many counts per group
        (see :func:`xcube.products.group_min_counts`); computes the spectrum.
    backscal : ``"geometric"`` (default) or ``"detector"``: BACKSCAL as the
        regions' whole areas, or the parts on the detector as SAS
        ``backscale`` clips them (see :func:`xcube.regions.region_areas`).

    Returns
    -------
    ``xr.Dataset`` on dim ``channel`` (integer channel numbers) with coords
    ``pi_lo``/``pi_hi`` (PI edges, half-open) and, where the mission converts
    PI to energy, ``energy_lo``/``energy_hi`` [keV]; variables ``counts`` (and
    ``bkg_counts``; ``quality`` 1 outside a narrower ``pi_range`` or an energy band cut;
    ``grouping``/``quality`` with ``group_min``). attrs:
    ``exposure`` [s]: the live time, the good time (GTI total) x the event
    file's live fraction, from its event-table header: for XMM EPIC
    ``LIVETInn/ONTIMEnn`` of the CCD holding most of the region's events
    (the good time then that CCD's GTIs), else ``DEADC``, else
    ``LIVETIME/ONTIME``; with no such keyword (or no readable source file,
    e.g. a Zarr store) the good time, uncorrected. Where corrected, also
    ``ontime`` [s] (the good time before), ``deadc`` (the fraction) and
    ``deadc_from`` (its keywords, e.g. ``"LIVETI01/ONTIME01 (CCD 1)"``); the
    counts are of the same good time: with per-CCD GTIs each event only
    inside its own CCD's (:func:`in_own_good_time`, as SAS ``evselect``); the
    background has its own ``bkg_exposure`` (``bkg_ontime``, ``bkg_deadc``,
    ``bkg_deadc_from``: its CCD's). ``backscal`` and ``bkg_backscal`` (BACKSCAL
    [sky pixel^2], :func:`xcube.regions.region_areas`: the regions' areas, or with
    ``backscal="detector"`` their parts on the detector, then with
    ``backscal_geometric``/``backscal_fraction`` (``bkg_...``); 1.0 without
    a region), ``area_arcsec2``, ``channel_range`` (first and last channel of
    the grid: TLMIN/TLMAX, DETCHANS channels), ``channel_bin``, ``pi_range``
    (the PI selected, inclusive, after rounding), ``energy_band`` [keV] and
    ``pi_band`` (PI, inclusive) of a band the events were cut to, ``chantype`` (CHANTYPE:
    ``"PI"``, or ``"PHA"`` where the profile's channel column is PHA, RXTE
    PCA), ``region``/``background_region``, observation attrs and provenance.

    Lazy (tree reductions over the event chunks) unless ``group_min`` is
    given. Eager: the passes :func:`xcube.select` makes over x/y (and the
    ``expr`` columns), with ``backscal="detector"`` the detector footprint
    (one more pass over x, y and the CCD column), the event file's header up to its
    event table (dead-time keywords) and, for XMM EPIC, the CCD column of the
    selected events (with an energy cut in ``expr``, also of the region's
    screened events before it, whose CCDs choose the live time), and with per-CCD GTIs a :func:`xcube.select` pass over
    their time and CCD columns where a CCD's good time is shorter than the
    GTIs (:func:`in_own_good_time`). Errors: a region outside the field, an unknown channel
    range; an empty selection gives zero counts and a warning.
    """
    from ..binning import bin_events, pixel_arcsec
    from ..io.events import not_a_tree
    from ..select import applied_band, screening_expr, select

    not_a_tree(events, "spectrum")
    if background is not None and region is None:
        raise ValueError("spectrum: a background region needs a source region (region=) to scale it to")
    if "pi" not in events.variables:
        raise ValueError(f"{events.attrs.get('source', 'events')}: no 'pi' column to make a spectrum from")
    require_good_time(events, "spectrum")
    band = applied_band(events, None, expr=expr)  # a band the events were cut to (before, or in expr), or None
    banded = expr is not None and band != applied_band(events, None)  # expr cuts PI or energy
    screen = screening_expr(events, None, screening)  # (the CCD of the exposure: chosen before expr's band cut)
    expr = screening_expr(events, expr, screening)
    asked = pi_range is not None
    channel_bin, pi_range = standard_grid(events, channel_bin, pi_range)
    axis, first, last, (pmin, pmax), (sel_lo, sel_hi) = _channel_axis(events, channel_bin, pi_range)
    cb = int(channel_bin)
    if band is not None:  # whole channels inside the band only, the others bad (as outside pi_range)
        sel_lo, sel_hi = _band_channels(events, band, cb, (sel_lo, sel_hi), asked)
        pmin, pmax = sel_lo * cb, (sel_hi + 1) * cb - 1
    chan = first + np.arange(axis.size)
    inside = (chan >= sel_lo) & (chan <= sel_hi)  # whole channels: PI [pmin, pmax]
    from ..io.ogip import events_dead_time
    from ..missions import profile_of

    prof = profile_of(events)
    keys = events_dead_time(events.attrs, prof.events_extensions)

    def hist(reg):
        # one eager pass per region; then each event inside its own CCD's good time, where the exposure comes from
        sel = in_own_good_time(select(events, expr=expr or None, region=reg, gti=events))
        h = bin_events(sel, energy=axis)
        h = h.drop_vars([c for c in h.coords if c != "channel"])
        if not inside.all():  # channels outside pi_range stay in the file (the RMF's grid), empty
            h = h.where(xr.DataArray(inside, dims="channel"), 0).astype(h.dtype)
        # the region's CCD from its screened events before an energy cut of expr (the exposure of one region
        # does not change with the band, as a light curve's)
        ccd_from = select(events, expr=screen or None, region=reg, gti=events) if banded else None
        return h, live_exposure(sel, prof, keys, ccd_from)

    areas = region_backscal(events, region, background, backscal, screening)  # BACKSCAL (regions checked first)
    counts, expo = hist(region)
    coords = {
        "channel": ("channel", chan),
        "pi_lo": ("channel", axis.lo.astype(np.int64), {"units": "channel"}),
        "pi_hi": ("channel", axis.hi.astype(np.int64), {"units": "channel", "long_name": "exclusive upper PI"}),
    }
    if prof.pi_to_kev is not None:
        coords["energy_lo"] = ("channel", prof.energy(axis.lo).astype(np.float64), {"units": "keV"})
        coords["energy_hi"] = ("channel", prof.energy(axis.hi).astype(np.float64), {"units": "keV"})
    ds = xr.Dataset({"counts": ("channel", counts.data, {"units": "count"})}, coords=coords)
    if not inside.all():  # QUALITY 1 (bad) outside the selected PI range, as grppha's "bad" channels
        ds["quality"] = ("channel", np.where(inside, 0, 1).astype(np.int16))
    backscal = areas.get("backscal", 1.0)
    try:
        pix = pixel_arcsec(events, "x")
    except ValueError:
        pix = float("nan")
    attrs = product_attrs(
        events, kind="spectrum", backscal=backscal,
        area_arcsec2=backscal * pix**2 if region is not None else None,
        channel_range=(int(first), int(last)), channel_bin=cb, pi_range=(pmin, pmax),
        energy_band=list(band) if band is not None else None, pi_band=pi_band(events, band),
        region=region_text(region), expr=expr, chantype=prof.channel_type, **expo,
        **{k: v for k, v in areas.items() if k.startswith("backscal_")},
    )
    attrs["selection"] = list(counts.attrs.get("selection", []))
    if background is not None:
        bkg, bexpo = hist(background)
        ds["bkg_counts"] = ("channel", bkg.data, {"units": "count"})
        attrs.update({k: v for k, v in areas.items() if k.startswith("bkg_")})
        attrs["background_region"] = region_text(background)
        attrs.update({f"bkg_{k}": v for k, v in bexpo.items()})
    ds.attrs = attrs
    if group_min is not None:
        ds = group_spectrum(ds, group_min)
    return ds
