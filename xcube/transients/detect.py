"""From peak/eclipse masks to detections.

A detection is an 8-connected region of pixels flagged in at least one frame.
Its position is the counts-weighted centroid of the region on the summed
image, taken at cell centres and converted to RA/Dec through the event WCS.
Its light curve sums counts and expected counts over the region's pixels.
"""
from __future__ import annotations

import logging

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from astropy.coordinates import SkyCoord
from scipy import ndimage, optimize, special

from . import bayes

__all__ = ["detect", "iau_name", "count_quantiles", "sigma_equivalent", "DETECTION_COLUMNS"]

log = logging.getLogger("xcube.transients")

_EIGHT = np.ones((3, 3), dtype=bool)

DETECTION_COLUMNS = [
    "run_id", "obs_id", "detection", "kind", "name", "ra", "dec", "x", "y",
    "t_start", "t_stop", "t_peak", "log10_bayes", "sigma_equivalent", "counts", "expected",
    "counts_est_16", "counts_est_50", "counts_est_84", "area", "n_frames_flagged",
]


def iau_name(ra, dec, prefix: str = "XCUBE") -> list[str]:
    """IAU-style names ``"XCUBE JHHMMSS.s+DDMMSS"`` (truncated, not rounded) from degrees."""
    ra = np.atleast_1d(np.asarray(ra, dtype=float))
    dec = np.atleast_1d(np.asarray(dec, dtype=float))
    out = []
    for r, d in zip(ra, dec):
        h = (r % 360.0) / 15.0
        hh = int(h)
        mm = int((h - hh) * 60)
        ss = (h - hh - mm / 60) * 3600
        ss = np.floor(ss * 10) / 10
        sign = "+" if d >= 0 else "-"
        a = abs(d)
        dd = int(a)
        dm = int((a - dd) * 60)
        ds = int((a - dd - dm / 60) * 3600 + 1e-9)
        out.append(f"{prefix} J{hh:02d}{mm:02d}{ss:04.1f}{sign}{dd:02d}{dm:02d}{ds:02d}")
    return out


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


def sigma_equivalent(log10b: float, kind: str) -> float:
    """The Gaussian-equivalent significance s whose calibrated threshold
    (``bayes.threshold(s)``) equals ``log10b``; 0 below the 0-sigma threshold."""
    if not np.isfinite(log10b):
        return float("nan")
    field = 0 if kind == "peak" else 1

    def f(s):
        return bayes.threshold(s)[field] - log10b

    lo, hi = 1e-3, 1.0
    if f(lo) > 0:
        return 0.0
    while f(hi) < 0:
        hi *= 2
        if hi > 1e3:
            return float("inf")
    return float(optimize.brentq(f, lo, hi, xtol=1e-6))


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


def _cell_to_sky(cube: xr.DataArray, iy: float, ix: float) -> tuple[float, float]:
    """Fractional cell index -> sky pixel coordinate at cell centres (linear in index)."""
    xl = cube["x_lo"].values
    yl = cube["y_lo"].values
    wx = float(cube["x_hi"].values[0] - xl[0])
    wy = float(cube["y_hi"].values[0] - yl[0])
    return float(xl[0] + (ix + 0.5) * wx), float(yl[0] + (iy + 0.5) * wy)


def detect(cube: xr.DataArray, expected: xr.DataArray, peak_mask, eclipse_mask, *, wcs=None,
           run_id: str = "", obs_id: str = "", bti=None, bad_frame=None):
    """Turn masks into a detection table and per-detection light curves.

    Parameters
    ----------
    cube, expected : (time, y, x) counts and expected counts (lazy allowed).
    peak_mask, eclipse_mask : (time, y, x) booleans (numpy or dask), same shape.
    wcs : ``astropy.wcs.WCS`` taking raw sky-pixel column values (``xcube.wcs``);
        None leaves ra/dec NaN.
    bti, bad_frame : (time,) booleans carried into the light curves.

    Returns ``(detections DataFrame, lightcurves Dataset over (detection, time))``.
    Computes: one pass over the cube for the summed image and per-pixel flag
    counts, then one pass for the light curves of all regions together.
    """
    n = cube.data
    mu = expected.data
    pm = peak_mask.data if isinstance(peak_mask, xr.DataArray) else peak_mask
    em = eclipse_mask.data if isinstance(eclipse_mask, xr.DataArray) else eclipse_mask
    image, fp, fe = dask.compute(n.sum(axis=0), pm.sum(axis=0), em.sum(axis=0))
    image, fp, fe = (np.asarray(a) for a in (image, fp, fe))
    regions = []
    for kind, fc in (("peak", fp), ("eclipse", fe)):
        labels, regs = _regions(fc, image)
        for lab, (iy, ix), area in regs:
            regions.append((kind, labels == lab, iy, ix, area))
    nt = cube.sizes["time"]
    time = cube["time"].values
    if not regions:
        return _empty_table(), _empty_lightcurves(cube, bti, bad_frame)
    foot = np.stack([r[1] for r in regions]).astype(np.float64)  # (k, y, x)
    foot_d = da.from_array(foot, chunks=foot.shape)
    nd = n if isinstance(n, da.Array) else da.from_array(np.asarray(n))
    mud = mu if isinstance(mu, da.Array) else da.from_array(np.asarray(mu))
    pmd = pm if isinstance(pm, da.Array) else da.from_array(np.asarray(pm))
    emd = em if isinstance(em, da.Array) else da.from_array(np.asarray(em))
    lc_n = da.tensordot(nd.astype(np.float64), foot_d, axes=((1, 2), (1, 2)))
    # NaN * 0 is NaN: sum finite mu over the footprint and mark frames where a
    # footprint pixel has NaN mu separately
    lc_mu = da.tensordot(da.nan_to_num(mud.astype(np.float64)), foot_d, axes=((1, 2), (1, 2)))
    lc_nan = da.tensordot(da.isnan(mud).astype(np.float64), foot_d, axes=((1, 2), (1, 2)))
    lc_p = da.tensordot(pmd.astype(np.float64), foot_d, axes=((1, 2), (1, 2)))
    lc_e = da.tensordot(emd.astype(np.float64), foot_d, axes=((1, 2), (1, 2)))
    lc_n, lc_mu, lc_nan, lc_p, lc_e = (np.asarray(a).T for a in dask.compute(lc_n, lc_mu, lc_nan, lc_p, lc_e))
    lc_mu = np.where(lc_nan > 0, np.nan, lc_mu)  # (k, t)
    bp = np.asarray(bayes.log10_bayes_peak(lc_n, lc_mu))
    be = np.asarray(bayes.log10_bayes_eclipse(lc_n, lc_mu))
    t_lo = cube["time_lo"].values
    t_hi = cube["time_hi"].values
    rows = []
    for k, (kind, _, iy, ix, area) in enumerate(regions):
        flagged = (lc_p[k] if kind == "peak" else lc_e[k]) > 0
        b = bp[k] if kind == "peak" else be[k]
        bb = np.where(np.isfinite(b), b, -np.inf)
        j = int(np.argmax(bb))
        fidx = np.flatnonzero(flagged)
        x, y = _cell_to_sky(cube, iy, ix)
        ra = dec = np.nan
        if wcs is not None:
            c = wcs.pixel_to_world(x, y)
            ra, dec = float(c.ra.deg), float(c.dec.deg)
        q = count_quantiles(lc_n[k, j], lc_mu[k, j], kind)
        rows.append({
            "run_id": run_id, "obs_id": obs_id, "detection": k, "kind": kind,
            "ra": ra, "dec": dec, "x": x, "y": y,
            "t_start": float(t_lo[fidx[0]]) if fidx.size else np.nan,
            "t_stop": float(t_hi[fidx[-1]]) if fidx.size else np.nan,
            "t_peak": float(time[j]),
            "log10_bayes": float(b[j]),
            "sigma_equivalent": sigma_equivalent(float(b[j]), kind),
            "counts": float(lc_n[k, j]), "expected": float(lc_mu[k, j]),
            "counts_est_16": q[0], "counts_est_50": q[1], "counts_est_84": q[2],
            "area": area, "n_frames_flagged": int(fidx.size),
        })
    table = pd.DataFrame(rows)
    table.insert(4, "name", iau_name(table["ra"], table["dec"]) if wcs is not None else [""] * len(table))
    table = table[DETECTION_COLUMNS]
    lcs = xr.Dataset(
        {
            "counts": (("detection", "time"), lc_n),
            "expected": (("detection", "time"), lc_mu),
            "log10_bayes_peak": (("detection", "time"), bp),
            "log10_bayes_eclipse": (("detection", "time"), be),
        },
        coords={"detection": np.arange(len(regions)), **_time_coords(cube)},
    )
    _add_flags(lcs, nt, bti, bad_frame)
    return table, lcs


def _time_coords(cube):
    names = [c for c in ("time", "time_lo", "time_hi", "exposure", "fracexp") if c in cube.coords]
    return {c: ("time", cube[c].values) for c in names}


def _add_flags(ds, nt, bti, bad_frame):
    ds["bti"] = ("time", np.zeros(nt, bool) if bti is None else np.asarray(bti, bool))
    ds["bad_frame"] = ("time", np.zeros(nt, bool) if bad_frame is None else np.asarray(bad_frame, bool))


def _empty_table() -> pd.DataFrame:
    t = pd.DataFrame({c: pd.Series(dtype=float) for c in DETECTION_COLUMNS})
    for c in ("run_id", "obs_id", "kind", "name"):
        t[c] = t[c].astype(object)
    t["detection"] = t["detection"].astype(int)
    return t


def _empty_lightcurves(cube, bti, bad_frame) -> xr.Dataset:
    nt = cube.sizes["time"]
    empty = np.zeros((0, nt))
    ds = xr.Dataset(
        {v: (("detection", "time"), empty) for v in ("counts", "expected", "log10_bayes_peak", "log10_bayes_eclipse")},
        coords={"detection": np.arange(0), **_time_coords(cube)},
    )
    _add_flags(ds, nt, bti, bad_frame)
    return ds
