"""``search_transients``: the EXOD transient search on one observation.

Steps for one parameter set (time bin x energy band x sigma), all on Dask
arrays chunked along time:

1. screen each camera (mission default: pn ``PATTERN<=4 && FLAG==0``, MOS
   ``PATTERN<=12 && FLAG==0``) and select the energy band;
2. build one time axis over the cameras' common good time (their GTI
   intersection) and one sky grid of ``size_arcsec`` cells over the events'
   extent, snapped to the column's TLMIN so that all cameras and runs align;
3. counts cube N(time, y, x) = sum of the cameras' cubes;
4. bad time intervals from the 10-12 keV light curve and bad frames
   (pn partial-CCD rule, empty frames);
5. expected counts mu from the GTI/BTI background templates and the
   constant-source image (``background.expected_counts``);
6. peak and eclipse masks from the Poisson Bayes factors (``bayes.masks``);
7. detections: 8-connected regions, positions, light curves (``detect``).
"""
from __future__ import annotations

import logging
import time as _time
from collections.abc import Sequence

import dask
import numpy as np
import xarray as xr

from .. import gti as gtimod
from ..binning import bin_events
from ..missions import get_profile
from ..select import select
from ..skycoords import has_wcs, wcs as events_wcs
from . import background, bayes, bti as btimod, frames
from .detect import _empty_lightcurves, _empty_table, detect
from .result import SearchResult, SearchResults, run_id

__all__ = ["search_transients", "prepare_events", "parameter_grid"]

log = logging.getLogger("xcube.transients")

BTI_BAND = (10.0, 12.0)  # keV, the soft-proton flare monitor band
BTI_RATE = 0.5  # ct/s per merged event list


def prepare_events(events, screening: bool = True) -> list[xr.Dataset]:
    """Check and screen the cameras of one observation.

    ``events``: one EventList or a sequence of them. Refuses (``ValueError``
    naming the file) a camera whose mode the mission profile does not support
    for imaging (e.g. pn timing mode) and cameras from different observations.
    Applies each mission's default screening expression when ``screening``.
    Lazy (the selection's small eager pass aside).
    """
    evs = [events] if isinstance(events, xr.Dataset) else list(events)
    if not evs:
        raise ValueError("search_transients: no event lists given")
    obs = {str(e.attrs.get("obs_id", "")) for e in evs}
    if len(obs) > 1:
        raise ValueError(f"search_transients: event lists from different observations {sorted(obs)}; "
                         "search each observation separately (xcube.survey runs many)")
    out = []
    for e in evs:
        prof = get_profile(e.attrs.get("profile", "generic"))
        src = e.attrs.get("source", "<events>")
        if not prof.accepts_mode(e.attrs.get("datamode"), e.attrs.get("submode")):
            raise ValueError(
                f"{src}: {prof.instrument} in mode {e.attrs.get('datamode')}/{e.attrs.get('submode')} is not "
                "supported by the transient search (imaging modes only; pn timing/burst mode has no 2-D sky image)"
            )
        if not has_wcs(e):
            raise ValueError(f"{src}: no sky X/Y columns with a WCS; the transient search needs imaging data")
        if screening and prof.screening:
            e = select(e, expr=prof.screening)
        out.append(e)
    return out


def parameter_grid(time_bin, energy_band, sigma) -> list[dict]:
    """All combinations of time bins [s], energy bands [keV] and sigmas, as
    dicts ``{"time_bin", "energy_band", "sigma"}``."""
    tbs = [float(t) for t in np.atleast_1d(time_bin)]
    eb = np.asarray(energy_band, dtype=float)
    if eb.ndim == 1:
        eb = eb.reshape(1, 2)
    if eb.ndim != 2 or eb.shape[1] != 2:
        raise ValueError(f"energy_band must be (emin, emax) or a list of them [keV], got {energy_band!r}")
    sig = [float(s) for s in np.atleast_1d(sigma)]
    return [{"time_bin": t, "energy_band": (float(a), float(b)), "sigma": s} for t in tbs for a, b in eb for s in sig]


def _common_gti(evs):
    g = gtimod.intersection(*[gtimod.from_dataset(e) for e in evs])
    return g


def _sky_edges(evs, dim: str, width: float) -> np.ndarray:
    """Cell edges over the events' extent, snapped to TLMIN (eager: min/max of the column)."""
    los, his = [], []
    for e in evs:
        if e.sizes["event"] == 0:
            continue
        lo, hi = dask.compute(e[dim].data.min(), e[dim].data.max())
        los.append(float(lo))
        his.append(float(hi))
    origin = float(evs[0].attrs.get(f"{dim}_min", 0.0))
    if not los:
        return origin + width * np.arange(2)
    lo = origin + np.floor((min(los) - origin) / width) * width
    n = int(np.floor((max(his) - lo) / width)) + 1
    return lo + width * np.arange(n + 1)


def _cell_width(evs, size_arcsec: float) -> float:
    from ..binning.axes import pixel_arcsec

    w = size_arcsec / pixel_arcsec(evs[0], "x")
    return float(np.round(w, 9))


def search_transients(
    events,
    time_bin=50.0,
    size_arcsec: float = 20.0,
    energy_band=(0.2, 12.0),
    sigma=3.0,
    *,
    gti_only: bool = False,
    catalogue=None,
    radius_arcsec: float = 20.0,
    screening: bool = True,
    subset: int = 0,
    inpaint: str = "biharmonic",
):
    """Search one observation for flares (peaks) and eclipses.

    Parameters
    ----------
    events : an EventList, or several (cameras of one observation, e.g. pn,
        MOS1, MOS2), merged into one cube over their common good time.
    time_bin : frame length [s], or a list of them.
    size_arcsec : spatial cell [arcsec] (exact; 20" = 400 XMM sky pixels).
    energy_band : ``(emin, emax)`` [keV], or a list of bands.
    sigma : detection level (Gaussian-equivalent at mu = 1000), or a list.
    gti_only : drop bad-time-interval frames (default: keep them, with their
        own background template).
    catalogue : known sources (FITS/CSV with RA, Dec [, radius]) masked from
        the background template, disks of ``radius_arcsec``.
    screening : apply the mission's default event screening first.
    subset : the subset number used in the run id.

    Returns
    -------
    :class:`SearchResult` for one parameter set, or :class:`SearchResults`
    (a list, with concatenated ``.detections``) when any parameter is a list;
    the events are screened once and shared between the runs.

    Laziness: ``cube``, ``expected`` and ``masks`` of the result are lazy Dask
    arrays; the detections and light curves are computed (a few passes over
    the cube, each chunk by chunk along time, so memory stays at a few chunks).
    An observation with no good time or fewer than two frames gives an empty
    result whose ``summary["reason"]`` says why.
    """
    evs = prepare_events(events, screening=screening)
    grid = parameter_grid(time_bin, energy_band, sigma)
    many = len(grid) > 1 or np.ndim(time_bin) > 0 or np.ndim(sigma) > 0 or np.ndim(energy_band) > 1
    results = [
        _search_one(evs, size_arcsec=size_arcsec, gti_only=gti_only, catalogue=catalogue,
                    radius_arcsec=radius_arcsec, subset=subset, inpaint=inpaint, **p)
        for p in grid
    ]
    return SearchResults(results) if many else results[0]


def _empty(rid, params, reason, **summary) -> SearchResult:
    log.warning("%s: empty result: %s", rid, reason)
    return SearchResult(run_id=rid, detections=_empty_table(), lightcurves=None,
                        summary={"reason": reason, **summary}, params=params)


def _search_one(evs, *, time_bin, energy_band, sigma, size_arcsec, gti_only, catalogue, radius_arcsec,
                subset, inpaint) -> SearchResult:
    timings = {}
    t_start = _time.perf_counter()
    obs_id = str(evs[0].attrs.get("obs_id", "") or "unknown")
    rid = run_id(obs_id, subset, time_bin, energy_band)
    params = {"time_bin": time_bin, "energy_band": list(energy_band), "sigma": sigma, "size_arcsec": size_arcsec,
              "gti_only": gti_only, "cameras": [e.attrs.get("instrument", "") for e in evs], "subset": subset,
              "sources": [e.attrs.get("source", "") for e in evs]}
    if time_bin <= 0:
        raise ValueError(f"time_bin must be positive [s], got {time_bin}")
    good = _common_gti(evs)
    if gtimod.exposure(good) <= 0:
        return _empty(rid, params, "no good time (the cameras' GTIs do not overlap or are empty)", exposure=0.0)
    t0, t1 = float(good[0][0]), float(good[1][-1])
    n_frames = int(np.ceil((t1 - t0) / time_bin - 1e-9))
    if n_frames < 2:
        return _empty(rid, params, f"fewer than two {time_bin:g} s frames of good time "
                      f"({t1 - t0:.1f} s)", exposure=gtimod.exposure(good))
    edges = t0 + time_bin * np.arange(n_frames + 1)

    # --- cube ------------------------------------------------------------
    width = _cell_width(evs, size_arcsec)
    band_evs = [select(e, energy_band=energy_band) for e in evs]
    x_edges = _sky_edges(band_evs, "x", width)
    y_edges = _sky_edges(band_evs, "y", width)
    cubes = [bin_events(e, time=edges, y=y_edges, x=x_edges) for e in band_evs]
    cube = cubes[0]
    for c in cubes[1:]:
        cube = cube + c.data
    timings["cube"] = _time.perf_counter() - t_start

    # --- bad time intervals and bad frames --------------------------------
    t = _time.perf_counter()
    lo, hi = edges[:-1], edges[1:]
    btis = btimod.bad_time_intervals(evs, min(time_bin, 100.0), t0=t0, t_stop=t1,
                                     energy_band=BTI_BAND, rate=BTI_RATE)
    is_bti = btimod.frame_bti(lo, hi, btis)
    bad = frames.bad_frames(band_evs, edges, is_bti)
    timings["frames"] = _time.perf_counter() - t

    exposure = gtimod.exposure_per_bin(lo, hi, good)
    exposure[bad] = 0.0
    if gti_only:
        exposure[is_bti] = 0.0
    cube = cube.assign_coords(exposure=("time", exposure), fracexp=("time", exposure / (hi - lo)),
                              bti=("time", is_bti), bad_frame=("time", bad))
    cube.name = "counts"
    cube.attrs.update({"run_id": rid, "units": "count"})

    # --- expected counts and masks -----------------------------------------
    t = _time.perf_counter()
    w = events_wcs(evs[0])
    drop = bad | (is_bti if gti_only else np.zeros_like(bad))
    model = background.background_model(cube, is_bti, drop, catalogue=catalogue, radius_arcsec=radius_arcsec,
                                        inpaint=inpaint, wcs=w)
    expected = background.expected_counts(cube, model=model)
    timings["background"] = _time.perf_counter() - t

    t = _time.perf_counter()
    peak, eclipse = bayes.masks(cube.data, expected.data, sigma)
    dims = cube.dims
    masks = xr.Dataset({"peak": (dims, peak), "eclipse": (dims, eclipse)}, coords=cube.coords)
    table, lcs = detect(cube, expected, peak, eclipse, wcs=w, run_id=rid, obs_id=obs_id, bti=is_bti, bad_frame=bad)
    fa = bayes.expected_false_alarms(expected.data, sigma)
    fa_peak, fa_ecl = dask.compute(fa.peak, fa.eclipse)
    timings["detect"] = _time.perf_counter() - t
    image = xr.DataArray(np.asarray(model["image_gti"].values) + np.nan_to_num(model["image_bti"].values),
                         dims=("y", "x"), coords={k: cube.coords[k] for k in ("y", "x", "y_lo", "y_hi", "x_lo", "x_hi")
                                                  if k in cube.coords}, name="counts", attrs={"units": "count"})
    timings["total"] = _time.perf_counter() - t_start
    summary = {
        "reason": "",
        "exposure": float(exposure.sum()),
        "n_frames": int(n_frames),
        "n_bad_frames": int(bad.sum()),
        "n_bti": int(len(btis[0])),
        "bti_exposure": float(gtimod.exposure(btis)) if len(btis[0]) else 0.0,
        "n_bti_frames": int(is_bti.sum()),
        "n_detections": int(len(table)),
        "expected_false_alarms": {"peak": float(fa_peak), "eclipse": float(fa_ecl)},
        "timings": timings,
        "shape": list(cube.shape),
    }
    return SearchResult(run_id=rid, detections=table, lightcurves=lcs, cube=cube, expected=expected, masks=masks,
                        image=image, summary=summary, params=params)
