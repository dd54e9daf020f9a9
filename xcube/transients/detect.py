"""From peak/eclipse masks to detections.

A detection is an 8-connected region of pixels flagged in at least one frame.
Its position is the counts-weighted centroid of the region on the summed
image, taken at cell centres and converted to RA/Dec through the event WCS.
Its light curve sums counts and expected counts over the region's pixels.
"""
from __future__ import annotations

import logging

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage, special

from ..binning.compact import CompactCube
from ..binning.counts import dense_view, reductions
from ..scheduler import compute
from ..skycoords import iau_name, spacecraft_offsets
from . import bayes
from .background import expected_value
from .decision import Flags, FrameTypes
from .features import COUNT_FEATURES, FEATURE_COLUMNS, lightcurve_features
from .flags import RUN_FLAGS, edge_cells, gap_cells, run_flags
from .frames import good_time_range
from .significance import sigma_equivalent, sigma_equivalents

__all__ = ["detect", "region_list", "assemble", "iau_name", "count_quantiles", "sigma_equivalent",
           "sigma_equivalents", "empty_table", "DETECTION_COLUMNS", "EXTRA_COLUMNS", "ALL_COLUMNS"]

log = logging.getLogger("xcube.transients")

_EIGHT = np.ones((3, 3), dtype=bool)

DETECTION_COLUMNS = [
    "run_id", "obs_id", "detection", "kind", "name", "ra", "dec", "x", "y",
    "t_start", "t_stop", "t_peak", "log10_bayes", "sigma_equivalent", "counts", "expected",
    "counts_est_16", "counts_est_50", "counts_est_84", "area", "n_frames_flagged",
]
#: columns after DETECTION_COLUMNS: peak rate [ct/s] and flux [erg/cm^2/s], spacecraft-frame
#: offsets [arcsec], the light-curve features and the run's quality flags
EXTRA_COLUMNS = ["peak_rate", "peak_flux", "det_u", "det_v"] + FEATURE_COLUMNS + RUN_FLAGS
ALL_COLUMNS = DETECTION_COLUMNS + EXTRA_COLUMNS


def count_quantiles(n, mu, kind: str, q=(0.16, 0.5, 0.84)) -> np.ndarray:
    """Posterior quantiles of the transient's counts for a frame with ``n``
    observed and ``mu`` expected counts (flat prior on the added/removed rate).

    peak:    gammaincinv(n+1, f Q(n+1, mu) + P(n+1, mu)) - mu
    eclipse: mu - gammaincinv(n+1, P(n+1, mu) - f P(n+1, mu))
    Returns an array of ``len(q)`` counts (NaN when mu is NaN). Eager.
    """
    n = float(n)
    mu = float(mu)
    if not np.isfinite(mu):
        return np.full(len(q), np.nan)
    f = np.asarray(q, dtype=float)
    p = special.gammainc(n + 1, mu)
    qq = special.gammaincc(n + 1, mu)
    if kind == "peak":
        return special.gammaincinv(n + 1, np.clip(f * qq + p, 0, 1)) - mu
    if kind == "eclipse":
        return mu - special.gammaincinv(n + 1, np.clip(p - f * p, 0, 1))
    raise ValueError(f"kind must be 'peak' or 'eclipse', not {kind!r}")


def _regions(flag_count: np.ndarray, image: np.ndarray):
    """Label 8-connected regions of ``flag_count > 0``; yield (label, slices,
    weighted centroid (iy, ix), area, n_flagged_pixel_frames)."""
    labels, nlab = ndimage.label(flag_count > 0, structure=_EIGHT)
    if nlab == 0:
        return labels, []
    idx = np.arange(1, nlab + 1)
    w = np.where(labels > 0, image, 0).astype(float)
    wsum = ndimage.sum_labels(w, labels, idx)
    cw = ndimage.center_of_mass(w, labels, idx)
    cu = ndimage.center_of_mass(np.ones_like(w), labels, idx)
    area = ndimage.sum_labels(np.ones_like(w), labels, idx)
    out = []
    for k, lab in enumerate(idx):
        c = cw[k] if wsum[k] > 0 else cu[k]
        out.append((int(lab), c, int(area[k])))
    return labels, out


def _cell_to_sky(cube: xr.DataArray, iy, ix) -> tuple:
    """Fractional cell indices (numbers or arrays) -> sky pixel coordinates
    ``(x, y)`` at cell centres (linear in index)."""
    xl = float(cube["x_lo"].values[0])
    yl = float(cube["y_lo"].values[0])
    wx = float(cube["x_hi"].values[0]) - xl
    wy = float(cube["y_hi"].values[0]) - yl
    return xl + (np.asarray(ix, np.float64) + 0.5) * wx, yl + (np.asarray(iy, np.float64) + 0.5) * wy


def region_list(peak_counts: np.ndarray, eclipse_counts: np.ndarray, image: np.ndarray) -> list:
    """Detections as 8-connected regions of pixels flagged in at least one frame.

    ``peak_counts``/``eclipse_counts``: (y, x) number of flagged frames per
    pixel; ``image``: (y, x) summed counts (weights of the centroid). Returns a
    list of ``(kind, footprint (y, x) bool, iy, ix, area)``, peaks first, each
    kind in label order; ``iy``/``ix`` the counts-weighted centroid in
    fractional cell indices. Eager.
    """
    regions = []
    for kind, fc in (("peak", np.asarray(peak_counts)), ("eclipse", np.asarray(eclipse_counts))):
        labels, regs = _regions(fc, np.asarray(image))
        for lab, (iy, ix), area in regs:
            regions.append((kind, labels == lab, iy, ix, area))
    return regions


def detect(cube, expected, flags, eclipse_mask=None, *, wcs=None, run_id: str = "", obs_id: str = "",
           bti=None, bad_frame=None, sigma: float = 3.0, ccd_map=None, ecf: float = np.nan, exposure=None,
           dropped=None, gti=None):
    """Turn flagged voxels into a detection table and per-detection light curves.

    Parameters
    ----------
    cube : (time, y, x) counts: a dense DataArray (lazy allowed) or a
        :class:`~xcube.binning.CompactCube`.
    expected : the background model (``background_model``; the light curves'
        expected counts then follow from its templates, without a dense cube)
        or a dense (time, y, x) expected-counts DataArray.
    flags : :class:`~xcube.transients.decision.Flags` (``flag_voxels``), or the
        (time, y, x) boolean peak mask with ``eclipse_mask`` the eclipse mask
        (numpy or dask).
    wcs : ``astropy.wcs.WCS`` taking raw sky-pixel column values (``xcube.wcs``);
        None leaves ra/dec NaN.
    bti, bad_frame : (time,) booleans carried into the light curves.
    exposure : (time,) [s] the exposure the search used (0 in the frames it
        dropped) for the light curves' ``exposure``/``fracexp``; default the
        cube's.
    dropped : (time,) bool, the frames the search dropped (bad frames, and
        with ``gti_only`` the BTI frames) for ``flag_bad_frame``; default
        ``bad_frame``.
    sigma : the run's detection level (the features' excursions, the flags).
    ccd_map : per camera a (y, x) CCD bit map (``CompactCube.ccd_map``, the
        default for a compact cube) for ``flag_edge``'s CCD gaps.
    ecf : energy conversion factor [counts cm^2 / erg] of the summed cameras
        and band (``xcube.missions.ecf.events_ecf``) for ``peak_flux``.
    gti : ``(start, stop)`` [s] the run's good time (default: a compact
        cube's ``gti``; none for a dense cube): ``t_start``/``t_stop``,
        ``t_peak`` and ``duration`` keep to the good time of their frames
        (:func:`.frames.good_time_range`; frame edges without it).

    Returns ``(detections DataFrame, lightcurves Dataset over (detection, time))``;
    the table's columns are :data:`ALL_COLUMNS` (see ``docs/search.md``).
    Eager: the summed image and the regions' light curves (numba loops over a
    compact cube; Dask passes over a dense one).
    """
    red = reductions(cube)
    view = dense_view(cube)
    if not isinstance(flags, Flags):
        flags = _flags_from_masks(flags, eclipse_mask)
    image = np.asarray(compute(red.image())[0])
    regions = region_list(flags.peak, flags.eclipse, image)
    if not regions:
        return empty_table(), _empty_lightcurves(view, bti, bad_frame, exposure)
    nt = red.shape[0]
    k = len(regions)
    labels = _region_labels(regions, image.shape)
    lc_n = np.asarray(compute(_region_counts(red, labels, k))[0], dtype=np.float64)
    lc_p = flags.per_region(labels[0], k, nt, 0)
    lc_e = flags.per_region(labels[1], k, nt, 1)
    if isinstance(expected, xr.Dataset):
        lc_mu, log10_bayes = _model_light_curves(expected, regions, lc_n)
    else:
        lc_mu, log10_bayes = _dense_expected(expected, regions), None
    gaps = gap_cells(ccd_map if ccd_map is not None else getattr(cube, "ccd_map", None))
    return assemble(view, regions, lc_n, lc_mu, lc_p, lc_e, wcs=wcs, run_id=run_id, obs_id=obs_id,
                    bti=bti, bad_frame=bad_frame, log10_bayes=log10_bayes, sigma=sigma,
                    edges=edge_cells(image, gaps), ecf=ecf, exposure=exposure, dropped=dropped,
                    gti=cube.gti if gti is None and isinstance(cube, CompactCube) else gti)


def _flags_from_masks(peak_mask, eclipse_mask) -> Flags:
    """:class:`Flags` of (time, y, x) boolean masks (numpy or dask)."""
    if eclipse_mask is None:
        raise TypeError("detect: pass Flags, or both the peak and the eclipse masks")
    pm, em = (np.asarray(compute(m.data if isinstance(m, xr.DataArray) else m)[0], dtype=bool)
              for m in (peak_mask, eclipse_mask))
    nt = pm.shape[0]
    rows = []
    for kind, m in ((0, pm), (1, em)):
        t, p = np.nonzero(m.reshape(nt, -1))
        rows.append(np.stack([t, p, np.full(t.size, kind)], axis=1))
    rec = np.concatenate(rows).astype(np.int64)
    rec = rec[np.lexsort((rec[:, 2], rec[:, 1], rec[:, 0]))]
    return Flags(pm.sum(axis=0).astype(np.int64), em.sum(axis=0).astype(np.int64), rec)


def _region_counts(red, labels, k):
    """Counts per region and frame (k, frames) of the two label maps: one
    pass over a compact cube (its reductions add several maps), summed Dask
    reductions over a dense one."""
    if isinstance(red, CompactCube):
        return red.region_counts(np.stack(labels), k)
    return sum(red.region_counts(lab, k) for lab in labels)


def _region_labels(regions, shape):
    """(peak labels, eclipse labels), each (y, x) int64: the region index of
    each pixel among the regions of that kind (regions of one kind do not
    overlap), -1 elsewhere."""
    out = [np.full(shape, -1, np.int64), np.full(shape, -1, np.int64)]
    for k, r in enumerate(regions):
        out[0 if r[0] == "peak" else 1][r[1]] = k
    return out


def _model_light_curves(model: xr.Dataset, regions, lc_n):
    """Expected counts of each region per frame from the model (mu is linear
    in the templates: the region's sums of the frame types' templates, background
    counts, source rate and exposure), NaN where a footprint pixel has none, and the light
    curves' log10 Bayes factors, evaluated once per distinct (region, counts,
    frame type)."""
    types = FrameTypes.from_model(model)
    foot = np.stack([r[1].ravel() for r in regions]).astype(np.float64)  # (regions, pixels)
    tsum = np.stack([_footprint_sum(foot, t) for t in types.templates]) if types.templates.shape[0] else \
        np.zeros((0, foot.shape[0]))  # (templates, regions)
    rsum = types.rates @ foot.T  # (rate images, regions)
    per_type = expected_value(tsum[types.tmpl_of], types.lc[:, None], rsum[types.rate_of],
                              types.exposure[:, None])  # (types, regions)
    lc_mu = np.full(lc_n.shape, np.nan)
    inside = types.ftype >= 0
    lc_mu[:, inside] = per_type[types.ftype[inside]].T
    return lc_mu, _light_curve_factors(lc_n, types.ftype, per_type)


def _footprint_sum(foot, values):
    """Sum of ``values`` (pixels,) over each footprint; NaN where the
    footprint holds a NaN (0 x NaN would poison every footprint)."""
    return np.where(foot @ np.isnan(values) > 0, np.nan, foot @ np.nan_to_num(values))


def _dense_expected(expected: xr.DataArray, regions) -> np.ndarray:
    """Sums of a dense expected cube over each footprint, (regions, time);
    NaN where a footprint pixel is NaN."""
    foot = da.from_array(np.stack([r[1] for r in regions]).astype(np.float64))
    mu = expected.transpose("time", "y", "x").data
    mu = mu if isinstance(mu, da.Array) else da.from_array(np.asarray(mu))
    lc_mu = da.tensordot(da.nan_to_num(mu.astype(np.float64)), foot, axes=((1, 2), (1, 2)))
    lc_nan = da.tensordot(da.isnan(mu).astype(np.float64), foot, axes=((1, 2), (1, 2)))
    lc_mu, lc_nan = (np.asarray(a).T for a in compute(lc_mu, lc_nan))
    return np.where(lc_nan > 0, np.nan, lc_mu)


def _light_curve_factors(lc_n, ftype, per_type):
    """log10 B_peak and B_eclipse of the light curves, evaluated once per
    distinct (region, counts, frame type): a region's expected counts take
    one value per frame type (``per_type`` (types, regions)), and its counts
    few values. Same numbers as evaluating every frame."""
    k, nt = lc_n.shape
    n = lc_n.astype(np.int64)
    nf = per_type.shape[0] + 1
    span = (int(n.max()) + 1) * nf
    keys = (np.arange(k, dtype=np.int64)[:, None] * span + n * nf + (ftype + 1)[None, :]).ravel()
    uniq, inverse = _unique_keys(keys, k * span)
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


def _unique_keys(keys, n_keys: int):
    """``np.unique(keys, return_inverse=True)`` of non-negative integer keys
    below ``n_keys``; by a presence table (no sort) when that table is not much
    larger than the keys."""
    if n_keys > 8 * keys.size + 4096:
        return np.unique(keys, return_inverse=True)
    present = np.zeros(n_keys, dtype=bool)
    present[keys] = True
    uniq = np.flatnonzero(present)
    rank = np.cumsum(present, dtype=np.int64) - 1
    return uniq, rank[keys]


def assemble(cube: xr.DataArray, regions: list, lc_n, lc_mu, lc_p, lc_e, *, wcs=None, run_id: str = "",
             obs_id: str = "", bti=None, bad_frame=None, log10_bayes=None, sigma: float = 3.0, edges=None,
             ecf: float = np.nan, exposure=None, dropped=None, gti=None):
    """Detection table and light curves from the regions (:func:`region_list`)
    and their per-frame sums (each (k, time) arrays, k = len(regions)): counts
    ``lc_n``, expected counts ``lc_mu`` (NaN where a footprint pixel has none),
    flagged peak voxels ``lc_p`` and eclipse voxels ``lc_e``; optionally the
    light curves' ``(log10 B_peak, log10 B_eclipse)`` when the caller has them
    (else computed here). ``cube`` gives the time and cell coordinates and the
    attrs (pointing, roll) only. ``sigma``, ``edges`` (``flags.edge_cells``:
    outside-field and CCD-gap cells) and ``ecf`` feed the features, flags and
    the peak flux; ``exposure``, ``dropped`` and ``gti`` as in :func:`detect`.
    Eager (small arrays)."""
    if not regions:
        return empty_table(), _empty_lightcurves(cube, bti, bad_frame, exposure)
    lc_n = np.asarray(lc_n, dtype=np.float64)
    lc_mu = np.asarray(lc_mu, dtype=np.float64)
    if log10_bayes is None:
        bp = np.asarray(bayes.log10_bayes_peak(lc_n, lc_mu))
        be = np.asarray(bayes.log10_bayes_eclipse(lc_n, lc_mu))
    else:
        bp, be = (np.asarray(a, dtype=np.float64) for a in log10_bayes)
    kinds = [r[0] for r in regions]
    best = np.array([int(np.argmax(np.where(np.isnan(b), -np.inf, b))) for b in  # (+inf: counts where mu = 0)
                     (bp[k] if kd == "peak" else be[k] for k, kd in enumerate(kinds))], dtype=np.int64)
    best_b = np.array([(bp if kd == "peak" else be)[k, best[k]] for k, kd in enumerate(kinds)])
    flagged = np.stack([(lc_p[k] if kd == "peak" else lc_e[k]) > 0 for k, kd in enumerate(kinds)])
    table = _base_table(cube, regions, lc_n, lc_mu, kinds, best, best_b, flagged, wcs, run_id, obs_id, gti)
    lcs = xr.Dataset(
        {
            "counts": (("detection", "time"), lc_n),
            "expected": (("detection", "time"), lc_mu),
            "log10_bayes_peak": (("detection", "time"), bp),
            "log10_bayes_eclipse": (("detection", "time"), be),
        },
        coords={"detection": np.arange(len(regions)), **_time_coords(cube, exposure)},
    )
    _add_flags(lcs, cube.sizes["time"], bti, bad_frame)
    dropped = lcs["bad_frame"].values if dropped is None else np.asarray(dropped, bool)
    extra = _extra_columns(cube, table, lcs, regions, kinds, best, best_b, flagged, wcs, sigma, edges, ecf,
                           dropped, gti)
    return pd.concat([table, extra], axis=1)[ALL_COLUMNS], lcs


def _base_table(cube, regions, lc_n, lc_mu, kinds, best, best_b, flagged, wcs, run_id, obs_id,
                gti=None) -> pd.DataFrame:
    """The :data:`DETECTION_COLUMNS` of the regions; with ``gti`` the times
    keep to the good time of their frames (:func:`.frames.good_time_range`)."""
    t_lo, t_hi = cube["time_lo"].values, cube["time_hi"].values
    # (a cube without time values would give frame numbers here: the bins' centres then)
    time = cube["time"].values if "time" in cube.coords else 0.5 * (t_lo + t_hi)
    sig = np.empty(len(regions))
    for kind in ("peak", "eclipse"):
        sel = np.array([kd == kind for kd in kinds])
        if sel.any():
            sig[sel] = sigma_equivalents(best_b[sel], kind)
    xy = np.column_stack(_cell_to_sky(cube, [r[2] for r in regions], [r[3] for r in regions]))
    ra, dec = np.full(len(regions), np.nan), np.full(len(regions), np.nan)
    if wcs is not None:
        c = wcs.pixel_to_world(xy[:, 0], xy[:, 1])
        ra, dec = np.atleast_1d(c.ra.deg).astype(float), np.atleast_1d(c.dec.deg).astype(float)
    rows = []
    for k, (kind, _, iy, ix, area) in enumerate(regions):
        j = int(best[k])
        fidx = np.flatnonzero(flagged[k])
        q = count_quantiles(lc_n[k, j], lc_mu[k, j], kind)
        rows.append({
            "run_id": run_id, "obs_id": obs_id, "detection": k, "kind": kind,
            "ra": float(ra[k]), "dec": float(dec[k]), "x": float(xy[k, 0]), "y": float(xy[k, 1]),
            "t_start": float(t_lo[fidx[0]]) if fidx.size else np.nan,
            "t_stop": float(t_hi[fidx[-1]]) if fidx.size else np.nan,
            "t_peak": float(time[j]), "log10_bayes": float(best_b[k]), "sigma_equivalent": float(sig[k]),
            "counts": float(lc_n[k, j]), "expected": float(lc_mu[k, j]),
            "counts_est_16": q[0], "counts_est_50": q[1], "counts_est_84": q[2],
            "area": area, "n_frames_flagged": int(fidx.size),
        })
    table = pd.DataFrame(rows)
    if gti is not None:  # the good time of the flagged frames, and the centre of that of the peak frame
        table["t_start"], table["t_stop"] = good_time_range(table["t_start"], table["t_stop"], gti)
        lo, hi = good_time_range(t_lo[best], t_hi[best], gti)
        whole = (lo == t_lo[best]) & (hi == t_hi[best])  # (a whole frame keeps its centre coordinate)
        table["t_peak"] = np.where(whole, time[best], 0.5 * (lo + hi))
    table.insert(4, "name", iau_name(table["ra"], table["dec"]) if wcs is not None else [""] * len(table))
    return table[DETECTION_COLUMNS]


def _extra_columns(cube, table, lcs, regions, kinds, best, best_b, flagged, wcs, sigma, edges, ecf, dropped,
                   gti=None):
    """The :data:`EXTRA_COLUMNS`: peak rate and flux, spacecraft offsets,
    features and the run's flags."""
    frame = (lcs["exposure"].values if "exposure" in lcs.coords
             else lcs["time_hi"].values - lcs["time_lo"].values)[best]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(frame > 0, table["counts_est_50"].to_numpy(float) / frame, np.nan)
    u, v = spacecraft_offsets(table["x"].to_numpy(), table["y"].to_numpy(), cube.attrs, wcs)
    out = pd.DataFrame({"peak_rate": rate, "peak_flux": rate / ecf if ecf and np.isfinite(ecf) else np.nan,
                        "det_u": u, "det_v": v})
    feats = lightcurve_features(lcs, kinds, best, sigma, gti=gti)
    t_lo, t_hi = cube["time_lo"].values, cube["time_hi"].values
    outside, gaps = edges if edges is not None else (None, None)
    fl = run_flags(kinds, [r[1] for r in regions], best_b, feats["n_max"].to_numpy(), flagged,
                   time_bin=float(np.median(t_hi - t_lo)), bad_frame=dropped,
                   outside=outside, gaps=gaps)
    return pd.concat([out, feats, pd.DataFrame(fl)], axis=1)


def _time_coords(cube, exposure=None):
    """The frames' coordinates of ``cube``; ``exposure`` (time,) [s], when
    given, replaces its exposure and fractional exposure (the search's: 0
    in the frames it dropped)."""
    names = [c for c in ("time", "time_lo", "time_hi", "exposure", "fracexp") if c in cube.coords]
    out = {c: ("time", cube[c].values) for c in names}
    if exposure is not None:
        x = np.asarray(exposure, np.float64)
        out["exposure"] = ("time", x)
        out["fracexp"] = ("time", x / (cube["time_hi"].values - cube["time_lo"].values))
    return out


def _add_flags(ds, nt, bti, bad_frame):
    ds["bti"] = ("time", np.zeros(nt, bool) if bti is None else np.asarray(bti, bool))
    ds["bad_frame"] = ("time", np.zeros(nt, bool) if bad_frame is None else np.asarray(bad_frame, bool))


def empty_table() -> pd.DataFrame:
    """An empty detection table with the columns and dtypes of a full one
    (text, int64, bool and float64 columns), so that the tables of runs with
    and without detections concatenate and read back alike (Parquet, ECSV).
    Eager (an empty pandas table)."""
    t = pd.DataFrame({c: pd.Series(dtype=float) for c in ALL_COLUMNS})
    for c in ("run_id", "obs_id", "kind", "name"):
        t[c] = t[c].astype(str)
    for c in ["detection", "area", "n_frames_flagged"] + COUNT_FEATURES:
        t[c] = t[c].astype(np.int64)
    for c in RUN_FLAGS + ["n_max_first_bin", "n_max_last_bin", "n_max_isolated"]:
        t[c] = t[c].astype(bool)
    return t


def _empty_lightcurves(cube, bti, bad_frame, exposure=None) -> xr.Dataset:
    nt = cube.sizes["time"]
    empty = np.zeros((0, nt))
    ds = xr.Dataset(
        {v: (("detection", "time"), empty) for v in ("counts", "expected", "log10_bayes_peak", "log10_bayes_eclipse")},
        coords={"detection": np.arange(0), **_time_coords(cube, exposure)},
    )
    _add_flags(ds, nt, bti, bad_frame)
    return ds
