"""Sky images: counts in (y, x) sky-pixel bins, carrying their WCS."""
from __future__ import annotations

import logging

import xarray as xr

from .. import gti as gtimod
from ..binning.sky import events_extent
from ..missions import profile_of
from .lightcurve import pi_band, product_attrs, region_text, require_good_time
from .spectrum import in_own_good_time, live_exposure

__all__ = ["image", "events_extent"]

log = logging.getLogger("xcube.products")


def _require_sky_columns(events) -> None:
    """``ValueError`` naming the file when the events lack the X/Y sky columns an image bins."""
    from ..select import column_dtypes

    missing = [c.upper() for c in ("x", "y") if c not in events.data_vars]
    if missing:
        raise ValueError(f"{events.attrs.get('source') or 'events'}: no X/Y sky columns ({'/'.join(missing)} "
                         f"missing), which an image bins; columns: {', '.join(sorted(column_dtypes(events)))}")


def image(
    events,
    bin_size: float | None = None,
    *,
    size_arcsec: float | None = None,
    energy_band=None,
    region=None,
    expr: str | None = None,
    screening: bool = True,
    x_range=None,
    y_range=None,
    offset: float = 0.0,
) -> xr.DataArray:
    """Counts image of an EventList on a regular sky-pixel grid.

    Parameters
    ----------
    events : EventList with ``x``/``y`` sky columns and their WCS attrs.
    bin_size : image pixel size in sky pixels of the event file (XMM: 0.05"),
        or give ``size_arcsec`` [arcsec] instead (not both). Default: the
        mission's usual image pixel (XMM EPIC and eROSITA 4" = 80 sky pixels,
        ``MissionProfile.image_arcsec``), else one sky pixel.
    energy_band : ``(emin, emax)`` [keV], half-open. Events already cut
        with ``select(energy_band=...)`` narrow it to that cut, with a
        warning (None takes the cut; a band outside it raises ``ValueError``;
        :func:`xcube.select.applied_band`); ``attrs["energy_band"]`` is the
        band covered.
    region : keep only events inside this region (DS9 string/file or
        ``regions`` objects); when no ranges are given the image covers the
        region's bounding box.
    expr : extra event filter (``xcube.select`` syntax).
    screening : apply the mission's standard event screening
        (:func:`xcube.missions.screening_of`) with ``expr``, as ``xcube
        image`` does by default; False keeps every event.
    x_range, y_range : ``(lo, hi)`` in sky pixels (column units), both ends
        included; default the region's bounding box, else the extent of the
        selected events (their smallest and largest x and y; the columns'
        legal range TLMIN/TLMAX when no event is selected).
    offset : shift of the grid in bins (0.5: half-pixel shifted).

    Returns
    -------
    ``xr.DataArray`` ``counts`` with dims (``y``, ``x``), coords bin centres
    and ``x_lo``/``x_hi``/``y_lo``/``y_hi`` [sky pixels], ``ra``/``dec`` [deg]
    of each pixel centre; attrs: the image WCS as FITS keywords (``CTYPEn``,
    ``CRVALn``, ``CRPIXn``, ``CDELTn``, and ``PCi_j`` when the event file's
    sky columns are rotated; axis 1 = x; usable with
    :func:`xcube.binning.cube_wcs`, also on a cut-out, or ``astropy.wcs.WCS``
    on the full image), ``exposure`` [s] as :func:`xcube.spectrum` gives it
    for the same events: the live time (good time x the event file's live
    fraction: XMM EPIC ``LIVETInn/ONTIMEnn`` and the good time of the CCD
    holding most of the selected events, else ``DEADC``, else
    ``LIVETIME/ONTIME``; the good time where the file has none), with
    ``ontime`` [s], ``deadc`` and ``deadc_from`` where corrected (the counts:
    with per-CCD GTIs each event only inside its own CCD's GTIs, as SAS
    ``evselect`` and the spectrum, :func:`xcube.products.spectrum.in_own_good_time`);
    ``energy_band``, ``region``, provenance. Lazy (a tree reduction over the
    event chunks); eager: the grid, coordinates, the passes of
    :func:`xcube.select` over the filtered columns, the event file's header
    (dead-time keywords) and, for XMM EPIC, the CCD column of the selected
    events (with ``energy_band``, also a selection pass over the region's
    events before the band cut, whose CCDs choose the live time) (and a pass
    over their time and CCD columns where a CCD's good time is shorter than
    the GTIs).

    Raises ``ValueError`` for a non-positive bin size, events without X/Y
    sky columns, a region outside the field or an energy band outside the
    mission's range; a grid too big for
    memory is refused before any allocation.
    """
    from ..binning import bin_events, sky_axis
    from ..io.events import not_a_tree
    from ..io.ogip import events_dead_time
    from ..regions import pixel_region
    from ..select import applied_band, screening_expr, select

    not_a_tree(events, "image")
    if bin_size is not None and size_arcsec is not None:
        raise ValueError("image: give the pixel size as bin_size (sky pixels) or size_arcsec (arcsec), not both")
    _require_sky_columns(events)
    if bin_size is None and size_arcsec is None:  # the mission's usual image pixel
        size_arcsec = profile_of(events).image_arcsec
        bin_size = 1.0 if size_arcsec is None else None
    if region is not None and (x_range is None or y_range is None):
        rs = pixel_region(region, events)
        box = rs.bbox()
        if box is not None:
            x_range = x_range if x_range is not None else (box[0], box[1])
            y_range = y_range if y_range is not None else (box[2], box[3])
    require_good_time(events, "image")
    band = applied_band(events, energy_band, expr=expr)  # the band covered (a cut before, or in expr, narrows it)
    expr = screening_expr(events, expr, screening)
    prof = profile_of(events)
    # each event inside its own CCD's good time (SAS's STDGTInn filter), as the spectrum
    sel = in_own_good_time(select(events, energy_band=energy_band, expr=expr, region=region, gti=events))
    if x_range is None or y_range is None:
        extent = events_extent(sel)
        if extent is not None:
            x_range = x_range if x_range is not None else extent[0]
            y_range = y_range if y_range is not None else extent[1]
    axes = {dim: sky_axis(events, dim, bin_size, size_arcsec=size_arcsec, range=rng, offset=offset)
            for dim, rng in (("y", y_range), ("x", x_range))}
    img = bin_events(sel, y=axes["y"], x=axes["x"])
    gti = gtimod.from_dataset(sel)
    # the exposure as the spectrum of the same events has it (live time, source CCD)
    # the CCD whose live time it is: from the region's events before the band cut (the exposure of one
    # region does not change with the band, as a light curve's)
    ccd_from = select(events, expr=expr, region=region, gti=events) if energy_band is not None else None
    expo = live_exposure(sel, prof, events_dead_time(events.attrs, prof.events_extensions), ccd_from)
    img.attrs.update(product_attrs(
        events, kind="image", **expo,
        tstart=float(gti[0][0]) if gti[0].size else None, tstop=float(gti[1][-1]) if gti[1].size else None,
        energy_band=list(band) if band is not None else None,
        pi_band=pi_band(events, band), region=region_text(region), expr=expr,
        bin_size=float(axes["x"].width),
    ))
    img.attrs["selection"] = list(sel.attrs.get("selection", []))
    return img
