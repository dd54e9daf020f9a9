"""``search_transients``: the EXOD transient search on one observation.

Steps for one parameter set (time bin x energy band x sigma):

1. check the cameras (imaging mode, sky WCS, one observation) and take each
   mission's default screening (pn ``PATTERN<=4 && FLAG==0``, MOS
   ``PATTERN<=12 && FLAG==0``);
2. one time axis over the cameras' common good time (their GTI
   intersection) and one sky grid of ``size_arcsec`` cells over the band
   events' extent, snapped to the column's TLMIN so that all cameras and runs
   align;
3. **one pass over the events** (:mod:`.scan`): per chunk, the screening and
   band tests of ``xcube.select`` and the bins of ``xcube.bin_events`` give
   the counts cube (kept compact: one cell index per event), the counts per
   frame and CCD and the 10-12 keV light curve;
4. bad time intervals from that light curve, bad frames (pn partial-CCD rule,
   empty frames);
5. expected counts mu from the GTI/BTI background templates and the
   constant-source image (``background``); the subset images come from the
   compact cube;
6. masks: frames with the same subset, background counts and exposure share
   one mu image, so ``n_peak_min``/``n_eclipse_max`` (exactly the Bayes-factor
   test) and the expected false alarms are computed once per such frame type;
   then one loop over the events flags the voxels (a voxel without counts is
   never a peak; it is an eclipse only where mu allows one);
7. detections: 8-connected regions, positions, light curves (``detect``),
   the light curves summed from the events and the frame types.

The returned ``cube``, ``expected`` and ``masks`` are lazy Dask arrays
(chunked along time) equal to what ``bin_events``, ``expected_counts`` and
``bayes.masks`` give.
"""
from __future__ import annotations

import logging
import time as _time

import dask
import numpy as np
import xarray as xr

from .. import gti as gtimod
from ..binning import sky_axis, time_axis
from ..missions import profile_of
from ..select import select
from ..skycoords import has_wcs
from ..skycoords import wcs as events_wcs
from . import background, bayes, frames, scan
from . import bti as btimod
from .detect import _empty_table, assemble, region_list
from .result import SearchResult, SearchResults, run_id

__all__ = ["search_transients", "prepare_events", "parameter_grid"]

log = logging.getLogger("xcube.transients")

BTI_BAND = (10.0, 12.0)  # keV, the soft-proton flare monitor band
BTI_RATE = 0.5  # ct/s per merged event list


def _check_cameras(events) -> list[xr.Dataset]:
    evs = [events] if isinstance(events, xr.Dataset) else list(events)
    if not evs:
        raise ValueError("search_transients: no event lists given")
    obs = {str(e.attrs.get("obs_id", "")) for e in evs}
    if len(obs) > 1:
        raise ValueError(f"search_transients: event lists from different observations {sorted(obs)}; "
                         "search each observation separately (xcube.survey runs many)")
    for e in evs:
        prof = profile_of(e)
        src = e.attrs.get("source", "<events>")
        if not prof.accepts_mode(e.attrs.get("datamode"), e.attrs.get("submode")):
            raise ValueError(
                f"{src}: {prof.instrument} in mode {e.attrs.get('datamode')}/{e.attrs.get('submode')} is not "
                "supported by the transient search (imaging modes only; pn timing/burst mode has no 2-D sky image)"
            )
        if not has_wcs(e):
            raise ValueError(f"{src}: no sky X/Y columns with a WCS; the transient search needs imaging data")
    return evs


def _screening(ev, screening: bool):
    prof = profile_of(ev)
    return prof.screening if screening and prof.screening else None


def prepare_events(events, screening: bool = True) -> list[xr.Dataset]:
    """Check and screen the cameras of one observation.

    ``events``: one EventList or a sequence of them. Refuses (``ValueError``
    naming the file) a camera whose mode the mission profile does not support
    for imaging (e.g. pn timing mode) and cameras from different observations.
    Applies each mission's default screening expression when ``screening``.
    Lazy (the selection's small eager pass aside). (``search_transients``
    makes the same checks and applies the same screening inside its single
    pass over the events.)
    """
    evs = _check_cameras(events)
    out = []
    for e in evs:
        expr = _screening(e, screening)
        out.append(select(e, expr=expr) if expr else e)
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
    return gtimod.intersection(*[gtimod.from_dataset(e) for e in evs])


def _cell_width(evs, size_arcsec: float) -> float:
    from ..binning.axes import pixel_arcsec

    w = size_arcsec / pixel_arcsec(evs[0], "x")
    return float(np.round(w, 9))


def _grid_edges(origin: float, width: float, k0: int, n: int) -> np.ndarray:
    """Edges ``origin + width * k`` for cells ``k0 .. k0 + n - 1``: every grid
    of a run (full or cropped) takes its edges from this one formula, so the
    cropped grid's edges are exactly a slice of the full grid's."""
    return origin + width * np.arange(k0, k0 + n + 1, dtype=np.float64)


def _full_grid(evs, dim: str, width: float, extent=None):
    """Cell edges covering the column's legal range (TLMIN/TLMAX attrs of
    every camera) or ``extent`` (lo, hi); the origin is the first camera's
    TLMIN (0 without one). Returns ``(edges, k0)`` or None when the range is
    unknown."""
    origin = float(evs[0].attrs.get(f"{dim}_min", 0.0))
    if extent is None:
        try:
            lo = min(float(e.attrs[f"{dim}_min"]) for e in evs)
            hi = max(float(e.attrs[f"{dim}_max"]) for e in evs)
        except KeyError:
            return None
    else:
        lo, hi = extent
    k0 = int(np.floor((lo - origin) / width)) - 1
    k1 = int(np.floor((hi - origin) / width)) + 1
    return _grid_edges(origin, width, k0, k1 - k0 + 1), k0


def _crop(full, k_full0, lo, hi, origin, width):
    """The cells of ``full`` from the one holding ``lo`` to the one holding
    ``hi`` (the band events' extent): ``(edges, first cell index in full)``.
    No events: one cell at the origin (as before)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return _grid_edges(origin, width, 0, 1), None
    a = int(np.searchsorted(full, lo, side="right") - 1)
    b = int(np.searchsorted(full, hi, side="right") - 1)
    return _grid_edges(origin, width, k_full0 + a, b - a + 1), a


def _extent_pass(evs):
    """(xmin, xmax, ymin, ymax) of all events of all cameras (eager)."""
    parts = []
    for e in evs:
        if e.sizes["event"]:
            parts += [e["x"].data.min(), e["x"].data.max(), e["y"].data.min(), e["y"].data.max()]
    vals = [float(v) for v in dask.compute(*parts)]
    if not vals:
        return (0.0, 0.0, 0.0, 0.0)
    v = np.array(vals).reshape(-1, 4)
    return float(v[:, 0].min()), float(v[:, 1].max()), float(v[:, 2].min()), float(v[:, 3].max())


def _wrap_cube(data, edges, x_edges, y_edges, ev0, labels):
    """The lazy cube as ``bin_events`` labels it (coordinates, WCS keywords,
    provenance) on the screened, band-selected first camera."""
    from ..binning.engine import _wrap

    attrs = dict(ev0.attrs)
    attrs["selection"] = list(ev0.attrs.get("selection", [])) + list(labels)
    like = xr.Dataset({k: ev0[k] for k in ("gti_start", "gti_stop") if k in ev0.variables}, attrs=attrs)
    axes = {"time": time_axis(ev0, edges=edges), "y": sky_axis(ev0, "y", edges=y_edges),
            "x": sky_axis(ev0, "x", edges=x_edges)}
    return _wrap(data, axes, like)
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
    arrays chunked along time; the detections and light curves are computed,
    from one pass over each camera's event chunks (columns read once) and
    loops over the compact cube (2-4 bytes per band event, see
    :class:`xcube.transients.scan.CompactCube`; the lazy cube holds it).
    Peak memory: the compact cube, a few event chunks and 2-D images.
    An observation with no good time or fewer than two frames gives an empty
    result whose ``summary["reason"]`` says why.
    """
    evs = _check_cameras(events)
    screens = [_screening(e, screening) for e in evs]
    grid = parameter_grid(time_bin, energy_band, sigma)
    many = len(grid) > 1 or np.ndim(time_bin) > 0 or np.ndim(sigma) > 0 or np.ndim(energy_band) > 1
    results = [
        _search_one(evs, screens, size_arcsec=size_arcsec, gti_only=gti_only, catalogue=catalogue,
                    radius_arcsec=radius_arcsec, subset=subset, inpaint=inpaint, **p)
        for p in grid
    ]
    return SearchResults(results) if many else results[0]


def _empty(rid, params, reason, **summary) -> SearchResult:
    log.warning("%s: empty result: %s", rid, reason)
    return SearchResult(run_id=rid, detections=_empty_table(), lightcurves=None,
                        summary={"reason": reason, **summary}, params=params)


def _scan(evs, screens, energy_band, edges, width, he_edges):
    """The events pass, on the full TLMIN..TLMAX grid (or, when that range is
    unknown or events fall outside it, on a grid over the events' extent)."""
    grids = [_full_grid(evs, d, width) for d in ("x", "y")]
    if any(g is None for g in grids):
        ext = _extent_pass(evs)
        grids = [_full_grid(evs, "x", width, ext[0:2]), _full_grid(evs, "y", width, ext[2:4])]
    kw = dict(screening=screens, energy_band=energy_band, frame_edges=edges, he_band=BTI_BAND,
              he_edges=he_edges)
    scans, labels = scan.scan_events(evs, x_edges=grids[0][0], y_edges=grids[1][0], **kw)
    if any(s.n_outside for s in scans):  # events beyond TLMIN/TLMAX: grid over their extent
        ext = _extent_pass(evs)
        grids = [_full_grid(evs, "x", width, ext[0:2]), _full_grid(evs, "y", width, ext[2:4])]
        scans, labels = scan.scan_events(evs, x_edges=grids[0][0], y_edges=grids[1][0], **kw)
    return scans, labels, grids


def _bti_rate(evs, scans, he_edges):
    """The merged 10-12 keV rate [ct/s] as ``bti.high_energy_lightcurve`` has it."""
    exposure = np.stack([gtimod.exposure_per_bin(he_edges[:-1], he_edges[1:], gtimod.from_dataset(e))
                         for e in evs])
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(exposure > 0, 1.0 / np.where(exposure > 0, exposure, 1.0), 0.0)
    n = he_edges.size - 1
    counts = [s.he_counts if s.he_counts is not None else np.zeros(n, np.int64) for s in scans]
    rate = sum(c * inv[i] for i, c in enumerate(counts))
    return np.where((exposure > 0).any(axis=0), rate, np.nan)


def _light_curve_factors(lc_n, ftype, per_type):
    """log10 B_peak and B_eclipse of the detections' light curves, evaluated
    once per distinct (region, counts, frame type): a region's expected counts
    take one value per frame type (``per_type`` (types, regions)), and its
    counts few values. Same numbers as evaluating every frame."""
    k, nt = lc_n.shape
    n = lc_n.astype(np.int64)
    nf = per_type.shape[0] + 1
    span = (int(n.max()) + 1) * nf
    keys = (np.arange(k, dtype=np.int64)[:, None] * span + n * nf + (ftype + 1)[None, :]).ravel()
    uniq, inverse = np.unique(keys, return_inverse=True)
    reg, rem = np.divmod(uniq, span)
    nu, fu = np.divmod(rem, nf)
    mu = np.full(uniq.shape, np.nan)
    ok = fu > 0
    mu[ok] = per_type[fu[ok] - 1, reg[ok]]
    nu = nu.astype(np.float64)
    inverse = inverse.ravel()
    bp = np.asarray(bayes.log10_bayes_peak(nu, mu))[inverse].reshape(k, nt)
    be = np.asarray(bayes.log10_bayes_eclipse(nu, mu))[inverse].reshape(k, nt)
    return bp, be


def _search_one(evs, screens, *, time_bin, energy_band, sigma, size_arcsec, gti_only, catalogue, radius_arcsec,
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
    bayes.threshold(sigma)  # validate before any work
    good = _common_gti(evs)
    if gtimod.exposure(good) <= 0:
        return _empty(rid, params, "no good time (the cameras' GTIs do not overlap or are empty)", exposure=0.0)
    t0, t1 = float(good[0][0]), float(good[1][-1])
    n_frames = int(np.ceil((t1 - t0) / time_bin - 1e-9))
    if n_frames < 2:
        return _empty(rid, params, f"fewer than two {time_bin:g} s frames of good time "
                      f"({t1 - t0:.1f} s)", exposure=gtimod.exposure(good))
    edges = t0 + time_bin * np.arange(n_frames + 1)
    lo, hi = edges[:-1], edges[1:]

    # --- one pass over the events: compact cube, CCD counts, 10-12 keV light curve
    width = _cell_width(evs, size_arcsec)
    he_edges = btimod._light_curve_edges(evs, min(time_bin, btimod.MAX_BIN), t0, t1)
    scans, labels, grids = _scan(evs, screens, energy_band, edges, width, he_edges)
    ext = np.array([s.extent for s in scans])
    origin_x = float(evs[0].attrs.get("x_min", 0.0))
    origin_y = float(evs[0].attrs.get("y_min", 0.0))
    x_edges, kx = _crop(grids[0][0], grids[0][1], ext[:, 0].min(), ext[:, 1].max(), origin_x, width)
    y_edges, ky = _crop(grids[1][0], grids[1][1], ext[:, 2].min(), ext[:, 3].max(), origin_y, width)
    nx, ny = x_edges.size - 1, y_edges.size - 1
    cc = scan.merge_cameras(scans, (grids[1][0].size - 1, grids[0][0].size - 1), ky or 0, kx or 0, ny, nx)
    cube = _wrap_cube(cc.to_dask(), edges, x_edges, y_edges, evs[0], labels[0])
    timings["cube"] = _time.perf_counter() - t_start

    # --- bad time intervals and bad frames --------------------------------
    t = _time.perf_counter()
    btis = btimod.bti_from_rate(_bti_rate(evs, scans, he_edges), he_edges, BTI_RATE * len(evs))
    log.info("%d bad time intervals (%.1f s) above %.3g ct/s in %s keV", btis[0].size,
             float(np.sum(btis[1] - btis[0])), BTI_RATE * len(evs), list(BTI_BAND))
    is_bti = btimod.frame_bti(lo, hi, btis)
    counts, profiles = [], []
    for e, s in zip(evs, scans):
        prof = profile_of(e)
        profiles.append(prof)
        if not gtimod.exposure_per_bin(lo, hi, gtimod.from_dataset(e)).any():
            shape = (n_frames, len(prof.quadrants)) if prof.quadrants else (n_frames,)
            counts.append(np.zeros(shape, dtype=np.int64))
        else:
            counts.append(s.ccd_counts if prof.quadrants else s.frame_counts)
    bad = frames.bad_frames_from_counts(counts, profiles, is_bti, names=[e.attrs.get("source", "") for e in evs])
    del scans
    timings["frames"] = _time.perf_counter() - t

    exposure = gtimod.exposure_per_bin(lo, hi, good)
    exposure[bad] = 0.0
    if gti_only:
        exposure[is_bti] = 0.0
    cube = cube.assign_coords(exposure=("time", exposure), fracexp=("time", exposure / (hi - lo)),
                              bti=("time", is_bti), bad_frame=("time", bad))
    cube.name = "counts"
    cube.attrs.update({"run_id": rid, "units": "count"})

    # --- expected counts ----------------------------------------------------
    t = _time.perf_counter()
    w = events_wcs(evs[0])
    drop = bad | (is_bti if gti_only else np.zeros_like(bad))
    valid = (exposure > 0) & ~drop & np.isfinite(exposure)
    subset_of = np.where(valid & ~is_bti, 0, np.where(valid & is_bti, 1, -1)).astype(np.int8)
    images = scan.subset_images(cc.cells, cc.seg, subset_of, cc.n_pixels)
    model = background.background_model(cube, is_bti, drop, catalogue=catalogue, radius_arcsec=radius_arcsec,
                                        inpaint=inpaint, wcs=w, images=(images[0], images[1]))
    expected = background.expected_counts(cube, model=model)
    timings["background"] = _time.perf_counter() - t

    # --- masks: one mu image per frame type ---------------------------------
    t = _time.perf_counter()
    peak, eclipse = bayes.masks(cube.data, expected.data, sigma)
    masks = xr.Dataset({"peak": (cube.dims, peak), "eclipse": (cube.dims, eclipse)}, coords=cube.coords)
    source_mask = np.asarray(model["source_mask"].values).ravel()
    light_curve = scan.counts_outside(cc.cells, cc.seg, ~source_mask)
    t_g = np.asarray(model["template_gti"].values)
    t_b = np.asarray(model["template_bti"].values)
    fsub = np.asarray(model["subset"].values)
    ok = np.where(fsub == 1, bool(np.isfinite(t_b).any()), bool(np.isfinite(t_g).any()))
    defined = (fsub >= 0) & (cc.frame_totals() > 0) & ok
    types = scan.FrameTypes.from_model(fsub, light_curve, exposure, defined, t_g, t_b, model["source_rate"].values)
    cand, cand_ptr = scan.eclipse_candidates(types, sigma)
    fp, fe, flagged = scan.flag_voxels(cc, types, sigma, cand, cand_ptr)
    timings["masks"] = _time.perf_counter() - t
    t_fa = _time.perf_counter()
    fa_peak, fa_ecl = scan.false_alarms(types, sigma)
    timings["false_alarms"] = _time.perf_counter() - t_fa
    t = _time.perf_counter()

    # --- detections and light curves ----------------------------------------
    regions = region_list(fp.reshape(ny, nx), fe.reshape(ny, nx), images[2].reshape(ny, nx))
    lab_p = np.full(cc.n_pixels, -1, dtype=np.int64)
    lab_e = np.full(cc.n_pixels, -1, dtype=np.int64)
    n_p = sum(r[0] == "peak" for r in regions)
    for k, r in enumerate(regions):
        if r[0] == "peak":
            lab_p[r[1].ravel()] = k
        else:
            lab_e[r[1].ravel()] = k - n_p
    lc_n = lc_p = lc_e = np.zeros((0, n_frames))
    lc_mu = np.full((len(regions), n_frames), np.nan)
    log10_bayes = None
    if regions:
        # region index of every pixel, per kind (regions of one kind do not overlap)
        lab = np.stack([lab_p, np.where(lab_e >= 0, lab_e + n_p, -1)])
        lc_n = np.concatenate([scan.region_counts(cc.cells, cc.seg, lab_p, n_p),
                               scan.region_counts(cc.cells, cc.seg, lab_e, len(regions) - n_p)]).astype(np.float64)
        # flagged voxels per region and frame, of the region's own kind
        lc_p = np.zeros((len(regions), n_frames), np.int64)
        lc_e = np.zeros((len(regions), n_frames), np.int64)
        for kd, out in ((0, lc_p), (1, lc_e)):
            f = flagged[flagged[:, 2] == kd]
            r = lab[kd][f[:, 1]]
            np.add.at(out, (r[r >= 0], f[r >= 0, 0]), 1)
        # expected counts over each footprint, per frame type (NaN if a pixel has none)
        foot = np.stack([r[1].ravel() for r in regions]).astype(np.float64)  # (regions, pixels)
        per_type = np.empty((types.size, len(regions)))
        for k0 in range(0, types.size, 256):
            mu = types.mu(k0, min(types.size, k0 + 256))
            per_type[k0:k0 + mu.shape[0]] = np.where(np.isnan(mu).astype(np.float64) @ foot.T > 0, np.nan,
                                                     np.nan_to_num(mu) @ foot.T)
        inside = types.ftype >= 0
        lc_mu[:, inside] = per_type[types.ftype[inside]].T
        log10_bayes = _light_curve_factors(lc_n, types.ftype, per_type)
    table, lcs = assemble(cube, regions, lc_n, lc_mu, lc_p, lc_e, wcs=w, run_id=rid, obs_id=obs_id,
                          bti=is_bti, bad_frame=bad, log10_bayes=log10_bayes)
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
        "flagged_voxels": {"peak": int(fp.sum()), "eclipse": int(fe.sum())},
        "timings": timings,
        "shape": list(cube.shape),
        "frame_types": int(types.size),
        "n_events": int(cc.cells.size),
    }
    return SearchResult(run_id=rid, detections=table, lightcurves=lcs, cube=cube, expected=expected, masks=masks,
                        image=image, summary=summary, params=params)
