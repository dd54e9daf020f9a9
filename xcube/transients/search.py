"""``search_transients``: the EXOD transient search on one observation.

The search is the public steps in a row, for every parameter set (time bin
x energy band x sigma):

1. :func:`.grid.check_cameras`, :func:`.grid.search_run`: the cameras and
   the frames over their common good time;
2. :func:`.grid.search_cubes`: **one** events pass for the whole grid gives
   each (time bin, band) its :class:`~xcube.binning.CompactCube` (mission
   screening, band, cells as ``bin_events`` bins them, counts per frame and
   CCD, the 10-12 keV light curve);
3. :func:`.bti.bad_time_intervals` and :func:`.frames.bad_frames` of the cube;
4. :func:`.background.background_model` (templates, source rate, light curve),
   with each pixel's CCDs' live fraction of the frames
   (:func:`.frames.ccd_live_fraction`);
5. :func:`.decision.flag_voxels` (the exact Bayes-factor test of every voxel)
   and :func:`.decision.false_alarms`;
6. :func:`.detect.detect`: regions, positions, light curves.

The returned ``cube``, ``expected`` and ``masks`` are lazy Dask arrays
(chunked along time) equal to what ``bin_events``, ``expected_counts`` and
``bayes.masks`` give.
"""
from __future__ import annotations

import logging
import time as _time

import numpy as np
import xarray as xr

from .. import gti as gtimod
from ..binning.axes import Axis
from ..binning.sky import cell_wcs_keywords
from ..checks import check_number
from ..hygiene import STAT_KEYS, merge_stats, stat_counts
from ..missions import profile_of, screening_of
from ..missions.ecf import events_ecf
from ..progress import progress_bar
from ..scheduler import thread_map
from ..select import select
from ..skycoords import wcs as events_wcs
from ..times import add_time_columns
from . import bti as btimod
from .background import background_model, expected_counts, mask_eclipses
from .decision import FrameTypes, false_alarms, flag_voxels, mask_cubes, reflag_pixels
from .detect import detect, empty_table
from .frames import PN_MIN_COUNTS, bad_frames, ccd_live_fraction
from .grid import check_cameras, exposure_subsets, search_bands, search_cubes, search_run
from .params import SearchParams, parameter_grid, run_id
from .result import SearchResult, SearchResults
from .shifts import SHIFTS, merge_grids

__all__ = ["search_transients", "prepare_events", "parameter_grid"]

log = logging.getLogger("xcube.transients")


def prepare_events(events, screening: bool = True, hygiene=None) -> list[xr.Dataset]:
    """Check and screen the cameras of one observation.

    ``events``: one EventList or a sequence of them. Refuses (``ValueError``
    naming the file) a camera whose mode the mission profile does not support
    for imaging (e.g. pn timing mode) and cameras from different observations.
    Applies each mission's default screening expression when ``screening``,
    and the detector ``hygiene`` (see :func:`search_transients`; default
    none here). Returns a list of EventLists, one per camera: the selected
    ones, or the given Datasets when nothing is applied. Lazy (the
    selection's small eager pass aside).
    ``search_transients`` applies the same screening and hygiene inside its
    single events pass.
    """
    out = []
    for e in check_cameras(events):
        expr = screening_of(e) if screening else None
        out.append(select(e, expr=expr, hygiene=hygiene) if expr or hygiene else e)
    return out


def search_transients(events, time_bin=50.0, size_arcsec: float = 20.0, energy_band=None, sigma=3.0, *,
                      gti_only: bool = False, catalogue=None, radius_arcsec: float = 20.0, screening: bool = True,
                      subset: int = 0, inpaint: str = "biharmonic", hygiene=True, shifts: bool = False,
                      subsets: bool = True, eclipse_mask: bool = True, progress: bool = False):
    """Search one observation for flares (peaks) and eclipses.

    Parameters
    ----------
    events : an EventList, or several (cameras of one observation, e.g. pn,
        MOS1, MOS2), merged into one cube over their common good time.
    time_bin : frame length [s], or a list of them.
    size_arcsec : spatial cell [arcsec] (exact, 20" = 400 XMM sky pixels;
        rounded to whole sky pixels where it is not one, e.g. NuSTAR 8 px).
    energy_band : ``(emin, emax)`` [keV], or a list of bands. Default
        (None): EXOD's 0.2-12 keV for XMM-Newton, elsewhere the mission's
        calibrated range (``profile.energy_range``: NuSTAR 3-79 keV)
        (:func:`.grid.default_band`). Events already cut with
        ``select(energy_band=...)`` narrow each band to that cut (a warning
        for a band given, ``ValueError`` for one outside the cut); the run
        ids, ``params["energy_band"]`` and the energy conversion factor are
        those of the band searched (:func:`.grid.search_bands`).
    sigma : detection level (Gaussian-equivalent at mu = 1000), or a list.
    gti_only : drop bad-time-interval frames (default: keep them, with their
        own background template).
    catalogue : known sources (FITS/CSV with RA, Dec [, radius]) masked from
        the background template, disks of ``radius_arcsec``.
    screening : apply the mission's default event screening first.
    subset : the number of the first exposure subset in the run ids.
    hygiene : detector hygiene before binning (:mod:`xcube.hygiene`): True
        (default: border and bad columns, hot pixels and columns, flickering
        pixels, instrumental clusters), False, a dict of options or a
        :class:`xcube.hygiene.Hygiene`; counted in ``summary["hygiene"]``.
    shifts : also search the grids shifted by half a cell in x and y, by
        half a frame in time, and both, and merge the detections of the four
        grids (:func:`.shifts.merge_grids`): a flare split between cells or
        frames is not lost. About 2-4 times the work.
    subsets : split exposures that do not overlap (or several exposures of a
        camera) into subsets searched separately (:func:`.grid.exposure_subsets`);
        False merges all cameras over their common good time.
    eclipse_mask : fit each constant source's rate outside its eclipses and
        decide the voxels again (:func:`.background.mask_eclipses`).
    progress : show a progress bar (``tqdm.auto``: a widget in Jupyter) over
        the events pass and the parameter sets.

    Returns
    -------
    :class:`SearchResult` for one parameter set and subset, or
    :class:`SearchResults` (a list, with concatenated ``.detections``) when
    any parameter is a list or there are several subsets. All parameter sets
    (and shifted grids) of a subset share **one** pass over the events.

    Laziness: ``cube``, ``expected`` and ``masks`` of the result are lazy Dask
    arrays chunked along time; the detections and light curves are computed,
    from the events pass and loops over the compact cubes (2-4 bytes per band
    event and run). Peak memory: the compact cubes, a few event chunks and
    2-D images. An observation with no good time or fewer than two frames
    gives an empty result whose ``summary["reason"]`` says why; so does a run
    without any event in the band (at any mission), or whose every frame is
    dropped (every frame bad by the empty-frame or pn partial-CCD rule, or
    every frame a BTI frame with ``gti_only``), naming the files and the
    rule, with a logged warning.
    """
    check_number("search_transients", "radius_arcsec", radius_arcsec, gt=0.0, unit="arcsec")
    evs = check_cameras(events)
    energy_band = search_bands(evs, energy_band)  # narrowed to a band the events were cut to before
    grid = parameter_grid(time_bin, energy_band, sigma, size_arcsec=size_arcsec)
    groups = exposure_subsets(evs) if subsets else [list(range(len(evs)))]
    _warn_unsearched(evs, groups)
    many = len(grid) > 1 or len(groups) > 1 or np.ndim(time_bin) > 0 or np.ndim(sigma) > 0 \
        or np.ndim(energy_band) > 1
    options = dict(gti_only=gti_only, catalogue=catalogue, radius_arcsec=radius_arcsec, inpaint=inpaint,
                   eclipse_mask=eclipse_mask)
    bar = progress_bar(len(groups) * (1 + len(grid)), desc=f"search {_obs_id(evs)}", unit="step", enabled=progress)
    results = []
    for k, g in enumerate(groups):
        cams = [evs[i] for i in g]
        if len(groups) > 1:
            log.info("exposure subset %d: %s", subset + k, [e.attrs.get("source", "") for e in cams])
        results += _search_subset(cams, grid, subset + k, size_arcsec, screening, hygiene, shifts, options, bar)
    bar.close()
    return SearchResults(results) if many else results[0]


def _warn_unsearched(evs, groups) -> None:
    """A warning naming each camera whose good time is longer than that of
    its subset (the cameras' common good time: the rest of its time is not
    searched, e.g. one camera observing longer than the others). Eager, small."""
    for g in groups:
        common = gtimod.intersection(*[gtimod.from_dataset(evs[i]) for i in g])
        for i in g:
            lost = gtimod.exposure(gtimod.from_dataset(evs[i])) - gtimod.exposure(common)
            if lost > 1.0:
                log.warning("%s: %.1f s of its good time lie outside the common good time of its exposure subset "
                            "(%s) and are not searched; search that camera alone to cover them",
                            evs[i].attrs.get("source", "<events>"), lost,
                            ", ".join(str(evs[j].attrs.get("source", "") or "<events>") for j in g))


def _search_subset(evs, grid, subset, size_arcsec, screening, hygiene, shifts, options, bar) -> list:
    """Every parameter set of ``grid`` on one exposure subset: one events pass,
    then the parameter sets on as many threads as CPUs."""
    bar.set_description(f"search {_obs_id(evs)}: events pass ({len(evs)} camera(s))")
    t0 = _time.perf_counter()
    cubes, reasons = _cubes(evs, grid, size_arcsec, screening, hygiene, shifts)
    t_pass = _time.perf_counter() - t0
    good = gtimod.intersection(*[gtimod.from_dataset(e) for e in evs])  # (the merged times keep to it)
    bar.update(1)

    def one(p):
        found = cubes.get((p.time_bin, p.energy_band))
        if not found:
            out = _empty(evs, p, subset, *reasons[p.time_bin], gti_only=options["gti_only"])
        else:
            runs = [(name, search_cube(c, p, evs, subset=subset, t_pass=t_pass, **options)) for name, c in found]
            out = runs[0][1] if len(runs) == 1 else merge_grids(runs, float(np.diff(found[0][1].x.edges[:2])[0]),
                                                                gti=good)
        bar.set_description(f"search {out.run_id}")
        bar.update(1)
        return out

    return thread_map(one, grid)  # (the steps' numba loops and numpy work release the GIL)


def _cubes(evs, grid, size_arcsec, screening, hygiene=True, shifts=False):
    """``{(time bin, band): [(grid name, compact cube), ...]}`` of the parameter
    grid from one pass (grid "0", and with ``shifts`` "xy", "t", "xyt"), and
    the reasons of time bins without frames."""
    runs, names, reasons = [], [], {}
    for tb, band in dict.fromkeys((p.time_bin, p.energy_band) for p in grid):
        if not (np.isfinite(tb) and tb > 0):
            raise ValueError(f"time_bin must be positive [s], got {tb}")
        for name, phase in (SHIFTS if shifts else SHIFTS[:1]):
            run, why = search_run(evs, tb, band, phase=phase)
            if run is None:
                good = gtimod.intersection(*[gtimod.from_dataset(e) for e in evs])
                reasons[tb] = (why, float(gtimod.exposure(good)))
                if name == "0":
                    break
                continue
            runs.append(run)
            names.append(((tb, band), name))
    shifted = {k for k, (_, name) in enumerate(names) if "xy" in name}
    cubes = search_cubes(evs, runs, size_arcsec, screening, hygiene, shifted) if runs else []
    out = {}
    for (key, name), cube in zip(names, cubes):
        out.setdefault(key, []).append((name, cube))
    return out, reasons


def _params_record(p: SearchParams, evs, gti_only, subset) -> dict:
    return {"time_bin": p.time_bin, "energy_band": list(p.energy_band), "sigma": p.sigma,
            "size_arcsec": p.size_arcsec, "gti_only": gti_only, "subset": subset,
            "cameras": [e.attrs.get("instrument", "") for e in evs],
            "sources": [e.attrs.get("source", "") for e in evs]}


def _obs_id(evs) -> str:
    return str(evs[0].attrs.get("obs_id", "") or "unknown")


def _empty(evs, p, subset, reason, exposure, gti_only=False) -> SearchResult:
    rid = run_id(_obs_id(evs), p, subset)
    log.warning("%s: empty result: %s", rid, reason)
    return SearchResult(run_id=rid, detections=add_time_columns(empty_table(), evs[0]), lightcurves=None,
                        summary={"reason": reason, "exposure": exposure},
                        params=_params_record(p, evs, gti_only, subset))


def _decide(cube, model, sigma, eclipse_mask):
    """(model, frame types, flags): the decision, and with ``eclipse_mask`` the
    model refitted outside the sources' eclipses and the refitted pixels
    decided again (:func:`.decision.reflag_pixels`; the same voxels as
    deciding the whole cube again)."""
    types = FrameTypes.from_model(model)
    flags = flag_voxels(cube, model, sigma, types=types)
    if eclipse_mask:
        ecl = flags.voxels[flags.voxels[:, 2] == 1][:, :2]
        refit = mask_eclipses(cube, model, ecl, peak_voxels=flags.voxels[flags.voxels[:, 2] == 0][:, :2])
        if refit is not model:  # only the refitted sources' pixels change: decide them again
            changed = np.flatnonzero(refit["source_rate"].values.ravel() != model["source_rate"].values.ravel())
            model, types = refit, FrameTypes.from_model(refit)
            flags = reflag_pixels(cube, model, flags, changed, sigma, types=types)
    return model, types, flags


def search_cube(cube, params: SearchParams, events, *, gti_only=False, catalogue=None, radius_arcsec=20.0,
                subset=0, inpaint="biharmonic", t_pass=0.0, eclipse_mask=True) -> SearchResult:
    """One parameter set on its compact cube (from :func:`.grid.search_cubes`
    of ``events``): bad times and frames, the background model (with the
    eclipses masked from the source rates when ``eclipse_mask``), the
    decision and the detections with their features and flags (their
    times kept to the cube's good time, :func:`.frames.good_time_range`).
    Eager; returns a :class:`SearchResult`."""
    clock = _Clock()
    timings = {"cube": t_pass}
    btis = btimod.bad_time_intervals(cube)
    is_bti = btimod.frame_bti(cube.time.lo, cube.time.hi, btis)
    bad = bad_frames(cube, bti=is_bti)
    drop = bad | (is_bti if gti_only else np.zeros_like(bad))
    exposure = np.where(drop, 0.0, cube.exposure)
    timings["frames"] = clock.lap()
    w = events_wcs(events[0])
    model = background_model(cube, is_bti, drop, exposure=exposure, catalogue=catalogue,
                             radius_arcsec=radius_arcsec, inpaint=inpaint, wcs=w,
                             live_fraction=ccd_live_fraction(cube, events, exposure))
    timings["background"] = clock.lap()
    model, types, flags = _decide(cube, model, params.sigma, eclipse_mask)
    timings["masks"] = clock.lap()
    fa = false_alarms(types, params.sigma)
    timings["false_alarms"] = clock.lap()
    rid, obs = run_id(_obs_id(events), params, subset), _obs_id(events)
    table, lcs = detect(cube, model, flags, wcs=w, run_id=rid, obs_id=obs, bti=is_bti, bad_frame=bad,
                        sigma=params.sigma, ecf=events_ecf(events, params.energy_band), exposure=exposure,
                        dropped=drop, gti=cube.gti)
    table = add_time_columns(table, events[0])  # mjd_start/peak/stop, utc_peak after the search's columns
    timings["detect"] = clock.lap()
    sky = _sky_attrs(events[0], cube)
    dense = _dense_cube(cube, exposure, is_bti, bad, rid).assign_attrs(sky)
    expected = expected_counts(dense, model=model).assign_attrs(sky)
    timings["total"] = t_pass + sum(v for k, v in timings.items() if k != "cube")
    summary = _summary(cube, exposure, bad, btis, is_bti, table, fa, flags, types, model, timings)
    summary["reason"] = _no_exposure_reason(cube, params, bad, is_bti, gti_only, events)
    if summary["reason"]:
        log.warning("%s: empty result: %s", rid, summary["reason"])
    return SearchResult(run_id=rid, detections=table, lightcurves=lcs, cube=dense, expected=expected,
                        masks=mask_cubes(dense, expected, params.sigma).assign_attrs(sky),
                        image=_image(model, dense).assign_attrs(sky), summary=summary,
                        params=_params_record(params, events, gti_only, subset))


def _summary(cube, exposure, bad, btis, is_bti, table, fa, flags, types, model, timings) -> dict:
    hyg = {}
    for st in cube.filter_stats or []:  # (per camera: its pixels counted once over its blocks)
        hyg = merge_stats(hyg, stat_counts(st))
    return {
        "reason": "", "exposure": float(exposure.sum()), "n_frames": int(cube.n_frames),
        "n_bad_frames": int(bad.sum()), "n_bti": int(len(btis[0])),
        "bti_exposure": float(gtimod.exposure(btis)) if len(btis[0]) else 0.0, "n_bti_frames": int(is_bti.sum()),
        "n_detections": int(len(table)),
        "expected_false_alarms": {"peak": float(fa.peak), "eclipse": float(fa.eclipse)},
        "flagged_voxels": {"peak": int(flags.peak.sum()), "eclipse": int(flags.eclipse.sum())},
        "hygiene": {k: int(hyg.get(k, 0)) for k in STAT_KEYS},
        "eclipse_masked_sources": int(model.attrs.get("eclipse_masked_sources", 0)),
        "timings": timings, "shape": list(cube.shape), "frame_types": int(types.size), "n_events": int(cube.cells.size),
    }


def _no_exposure_reason(cube, params, bad, is_bti, gti_only, events) -> str:
    """Why the run searched nothing, naming the files and the rule: no event
    in the band (whatever the frames' rules: an empty frame is bad at XMM,
    but not where the band's rate is zero, so the frames alone do not tell),
    or no frame kept any exposure; ``""`` when some frame is searched."""
    n = int(cube.n_frames)
    files = ", ".join(str(e.attrs.get("source", "") or "<events>") for e in events)
    band = f"{params.energy_band[0]:g}-{params.energy_band[1]:g} keV"
    if cube.cells.size == 0:
        return (f"no events in the band {band} in {files} (after screening and hygiene, inside the common good "
                f"time): nothing to search in its {n} frames")
    kept = ~bad & ~(is_bti if gti_only else np.zeros_like(bad))
    if kept.any():
        return ""
    n_bad = int(bad.sum())
    if n_bad < n:
        return (f"all {n} frames of {files} are dropped: {n_bad} bad frames and {n - n_bad} bad-time-interval "
                "frames (gti_only=True drops the BTI frames: 10-12 keV rate above 0.5 ct/s per camera)")
    n_empty = int(np.count_nonzero(np.diff(cube.seg) == 0))
    pn = [str(e.attrs.get("source", "") or "<events>") for e in events if profile_of(e).quadrants]
    parts = [f"{n_empty} empty (no event in {band}: the empty-frame rule)"] if n_empty else []
    if n > n_empty and pn:
        parts.append(f"{n - n_empty} by the pn partial-CCD rule of {', '.join(pn)} (the brightest quadrant above "
                     f"{PN_MIN_COUNTS} counts with fewer than all read-out quadrants active, or a BTI frame whose "
                     "quadrants differ by more than a factor 3; and the frame after each bad frame)")
    return f"all {n} frames of {files} are bad: {', '.join(parts)}"


class _Clock:
    """Step timer: ``lap()`` is the time [s] since the previous lap."""

    def __init__(self):
        self.t = _time.perf_counter()

    def lap(self) -> float:
        now = _time.perf_counter()
        dt, self.t = now - self.t, now
        return dt


def _dense_cube(cube, exposure, is_bti, bad, rid) -> xr.DataArray:
    """The lazy dense cube with the search's frame coordinates."""
    dense = cube.to_dataarray()
    lo, hi = cube.time.lo, cube.time.hi
    dense = dense.assign_coords(exposure=("time", exposure), fracexp=("time", exposure / (hi - lo)),
                                bti=("time", is_bti), bad_frame=("time", bad))
    dense.attrs.update({"run_id": rid, "units": "count"})
    return dense


def _sky_attrs(events, cube) -> dict:
    """The WCS of the cube's cells (as ``bin_events`` gives it for regular
    axes; the sky grid's explicit edges are equally spaced) with the events'
    RADESYS/EQUINOX, for the result's arrays: sky regions work on them
    (:func:`xcube.region_mask`, ``net_lightcurve``). ``{}`` without an event WCS."""
    y, x = (Axis.regular(a.name, a.edges[0], (a.edges[-1] - a.edges[0]) / a.size, a.size) for a in (cube.y, cube.x))
    sky = cell_wcs_keywords(events.attrs, y, x)
    return {**sky, **{k: events.attrs[k] for k in ("RADESYS", "EQUINOX") if sky and k in events.attrs}}


def _image(model, dense) -> xr.DataArray:
    """The summed (y, x) image of the kept frames."""
    img = np.asarray(model["image_gti"].values) + np.nan_to_num(model["image_bti"].values)
    coords = {k: dense.coords[k] for k in ("y", "x", "y_lo", "y_hi", "x_lo", "x_hi") if k in dense.coords}
    return xr.DataArray(img, dims=("y", "x"), coords=coords, name="counts", attrs={"units": "count"})
