"""Unique sources from detections: clustering on the sphere, mean positions, IAU names.

Detections of many runs and observations are grouped friends-of-friends:
two detections closer than ``radius_arcsec`` belong to the same source, and
so, transitively, do their neighbours. Pairs are found with a KD-tree
(``scipy.spatial.cKDTree``) on unit vectors, where an angle theta is the
chord 2 sin(theta/2), so the grouping has no trouble at RA = 0/360 or at the
poles. A source's position is the normalised mean of its members' unit
vectors (a proper spherical mean), not a mean of RA values.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ..skycoords import iau_name

__all__ = ["radec_to_xyz", "xyz_to_radec", "spherical_mean", "angular_separation", "cluster_positions",
           "iau_name", "cluster_detections"]

ARCSEC = 1.0 / 3600.0


def radec_to_xyz(ra, dec) -> np.ndarray:
    """Unit vectors, shape (n, 3), of RA/Dec [deg] (arrays of shape (n,))."""
    ra = np.radians(np.asarray(ra, dtype=np.float64))
    dec = np.radians(np.asarray(dec, dtype=np.float64))
    cd = np.cos(dec)
    return np.stack([cd * np.cos(ra), cd * np.sin(ra), np.sin(dec)], axis=-1)


def xyz_to_radec(xyz) -> tuple[np.ndarray, np.ndarray]:
    """RA in [0, 360) and Dec in [-90, 90] [deg] of vectors of shape (..., 3) (any length)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


def spherical_mean(ra, dec, weights=None) -> tuple[float, float]:
    """Mean position [deg] of points on the sphere: the normalised (weighted) mean
    of their unit vectors. Correct across RA = 0/360 and at the poles."""
    v = radec_to_xyz(ra, dec)
    w = np.ones(len(v)) if weights is None else np.asarray(weights, dtype=np.float64)
    m = (v * w[:, None]).sum(axis=0)
    ra_m, dec_m = xyz_to_radec(m)
    return float(ra_m), float(dec_m)


def angular_separation(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Great-circle separation [deg] (Vincenty formula, accurate at all angles)."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(a, dtype=np.float64)) for a in (ra1, dec1, ra2, dec2))
    dra = ra2 - ra1
    s1, c1, s2, c2 = np.sin(dec1), np.cos(dec1), np.sin(dec2), np.cos(dec2)
    num = np.hypot(c2 * np.sin(dra), c1 * s2 - s1 * c2 * np.cos(dra))
    den = s1 * s2 + c1 * c2 * np.cos(dra)
    return np.degrees(np.arctan2(num, den))


def _chord(radius_arcsec: float) -> float:
    return 2.0 * np.sin(np.radians(radius_arcsec * ARCSEC) / 2.0)


def cluster_positions(ra, dec, radius_arcsec: float = 20.0) -> np.ndarray:
    """Friends-of-friends labels (int64, shape (n,)) of positions [deg]: points
    within ``radius_arcsec`` of each other share a label. Labels are 0..k-1,
    numbered in order of each cluster's first member. Eager."""
    v = radec_to_xyz(ra, dec)
    n = len(v)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.all(np.isfinite(v)):
        raise ValueError("cluster_positions: RA/Dec contain NaN or infinite values; drop those detections first")
    pairs = cKDTree(v).query_pairs(_chord(radius_arcsec), output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # renumber by first appearance for a stable, readable numbering
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    return remap[labels].astype(np.int64)


def cluster_detections(detections: pd.DataFrame, radius_arcsec: float = 20.0, prefix: str = "XCUBE",
                       significance: str = "log10_bayes") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Group detections (columns ``ra``, ``dec`` [deg]; optionally ``obsid``,
    ``run_id``, ``kind``, ``t_start``, ``t_stop``, ``log10_bayes``,
    ``sigma_equivalent``) into unique sources.

    Returns ``(detections, sources)``: a copy of the detections with a
    ``source_id`` and ``source_name`` column, and one row per source with
    ``source_id``, ``name`` (IAU style), ``ra``, ``dec`` (spherical mean),
    ``n_detections``, ``n_runs``, ``n_observations``, ``best_log10_bayes``,
    ``best_sigma_equivalent``, ``best_obsid``/``best_run_id`` (the most
    significant detection), ``kinds``, ``t_first``/``t_last`` (earliest start,
    latest stop [s]), ``mjd_first``/``mjd_last`` (the same as MJD, when the
    detections have ``mjd_start``/``mjd_stop``) and ``radius_arcsec`` (largest member offset from the
    mean). Source ids are numbered in order of (RA, Dec), so they do not
    depend on the order of the detections. Eager.
    """
    det = detections.copy()
    n = len(det)
    if n == 0:
        det["source_id"] = pd.Series(dtype="int64")
        det["source_name"] = pd.Series(dtype="object")
        return det, _empty_sources()
    labels = cluster_positions(det["ra"].to_numpy(), det["dec"].to_numpy(), radius_arcsec)
    k = labels.max() + 1
    v = radec_to_xyz(det["ra"].to_numpy(), det["dec"].to_numpy())
    sums = np.zeros((k, 3))
    np.add.at(sums, labels, v)
    ra_c, dec_c = xyz_to_radec(sums)
    # order sources by position so that ids are independent of input order
    order = np.lexsort((np.round(dec_c, 9), np.round(ra_c, 9)))
    new_id = np.empty(k, dtype=np.int64)
    new_id[order] = np.arange(k)
    sid = new_id[labels]
    ra_s, dec_s = ra_c[order], dec_c[order]
    names = iau_name(ra_s, dec_s, prefix=prefix)
    det["source_id"] = sid
    det["source_name"] = names[sid]
    sep = angular_separation(det["ra"].to_numpy(), det["dec"].to_numpy(), ra_s[sid], dec_s[sid]) * 3600.0
    g = det.assign(_sep=sep).groupby("source_id", sort=True)
    src = pd.DataFrame({"source_id": np.arange(k), "name": names, "ra": ra_s, "dec": dec_s})
    src["n_detections"] = g.size().to_numpy()
    ids = pd.Index(np.arange(k), name="source_id")
    if {"obsid", "run_id"} <= set(det.columns):
        runs = det.drop_duplicates(["source_id", "obsid", "run_id"]).groupby("source_id").size()
        src["n_runs"] = runs.reindex(ids).to_numpy()
    else:
        src["n_runs"] = src["n_detections"]
    src["n_observations"] = g["obsid"].nunique().to_numpy() if "obsid" in det.columns else 1
    if significance in det.columns:
        best = det.loc[det[significance].fillna(-np.inf).groupby(det["source_id"]).idxmax()]
        best = best.set_index("source_id").reindex(src["source_id"])
        src["best_log10_bayes"] = best[significance].to_numpy()
        if "sigma_equivalent" in det.columns:
            src["best_sigma_equivalent"] = g["sigma_equivalent"].max().to_numpy()
        for col in ("obsid", "run_id"):
            if col in det.columns:
                src[f"best_{col}"] = best[col].to_numpy()
    if "kind" in det.columns:
        kinds = det[["source_id", "kind"]].astype({"kind": str}).drop_duplicates().sort_values(["source_id", "kind"])
        src["kinds"] = kinds.groupby("source_id")["kind"].agg("+".join).reindex(ids).to_numpy()
    if "t_start" in det.columns:
        src["t_first"] = g["t_start"].min().to_numpy()
    if "t_stop" in det.columns:
        src["t_last"] = g["t_stop"].max().to_numpy()
    if "mjd_start" in det.columns and "mjd_stop" in det.columns:  # comparable across observations
        src["mjd_first"] = g["mjd_start"].min().to_numpy()
        src["mjd_last"] = g["mjd_stop"].max().to_numpy()
    src["radius_arcsec"] = g["_sep"].max().to_numpy()
    return det, src


def _empty_sources() -> pd.DataFrame:
    return pd.DataFrame({
        "source_id": pd.Series(dtype="int64"), "name": pd.Series(dtype="object"),
        "ra": pd.Series(dtype="float64"), "dec": pd.Series(dtype="float64"),
        "n_detections": pd.Series(dtype="int64"), "n_runs": pd.Series(dtype="int64"),
        "n_observations": pd.Series(dtype="int64"), "best_log10_bayes": pd.Series(dtype="float64"),
        "radius_arcsec": pd.Series(dtype="float64"),
    })
