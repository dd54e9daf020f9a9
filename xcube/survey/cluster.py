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
           "iau_name", "cluster_detections", "summarise_sources", "carry_source_ids", "SUMMARY_COLUMNS",
           "chord_length", "DETECTION_KEY"]

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
    """Great-circle separation [deg] between positions RA/Dec [deg]
    (Vincenty formula, accurate at all angles); numpy arrays broadcast, the
    result has their broadcast shape. Eager."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(a, dtype=np.float64)) for a in (ra1, dec1, ra2, dec2))
    dra = ra2 - ra1
    s1, c1, s2, c2 = np.sin(dec1), np.cos(dec1), np.sin(dec2), np.cos(dec2)
    num = np.hypot(c2 * np.sin(dra), c1 * s2 - s1 * c2 * np.cos(dra))
    den = s1 * s2 + c1 * c2 * np.cos(dra)
    return np.degrees(np.arctan2(num, den))


def chord_length(radius_arcsec: float) -> float:
    """Chord length on the unit sphere of an angle [arcsec]; 2 (any two points) from 180 deg on."""
    return 2.0 * np.sin(np.radians(min(radius_arcsec * ARCSEC, 180.0)) / 2.0)


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
    pairs = cKDTree(v).query_pairs(chord_length(radius_arcsec), output_type="ndarray")
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
    src = pd.DataFrame({"source_id": np.arange(k), "name": names, "ra": ra_s, "dec": dec_s})
    return det, summarise_sources(det, src, significance)


#: the columns of a source that :func:`summarise_sources` computes from its detections
SUMMARY_COLUMNS = ["n_detections", "n_runs", "n_observations", "best_log10_bayes", "best_sigma_equivalent",
                   "best_obsid", "best_run_id", "kinds", "t_first", "t_last", "mjd_first", "mjd_last",
                   "radius_arcsec"]


def summarise_sources(detections: pd.DataFrame, sources: pd.DataFrame,
                      significance: str = "log10_bayes") -> pd.DataFrame:
    """``sources`` (``source_id``, ``name``, ``ra``, ``dec`` and any further
    columns, e.g. cross-matches) with the summary columns
    (:data:`SUMMARY_COLUMNS`, see :func:`cluster_detections`) computed from
    the ``detections`` carrying their ``source_id``; a source without a
    detection there gets 0 counts and NaN. Used by :func:`cluster_detections`
    and by :func:`xcube.survey.vet` (summaries of the kept detections). A
    summary column needs its detection column (``obsid``, ``kind``,
    ``t_start``...), except on an empty table, which gets them all."""
    det = detections
    src = sources.drop(columns=[c for c in SUMMARY_COLUMNS if c in sources.columns]).reset_index(drop=True)
    ids = pd.Index(src["source_id"].to_numpy(), name="source_id")
    pos = src.set_index("source_id")[["ra", "dec"]].reindex(det["source_id"].to_numpy())
    sep = angular_separation(det["ra"].to_numpy(), det["dec"].to_numpy(), pos["ra"].to_numpy(),
                             pos["dec"].to_numpy()) * 3600.0
    g = det.assign(_sep=sep).groupby("source_id", sort=True)
    full = len(det) == 0  # an empty catalogue has every column

    def per_source(series, fill=None):
        r = series.reindex(ids)
        return r.fillna(fill).to_numpy() if fill is not None else r.to_numpy()

    out = {"n_detections": per_source(g.size(), 0).astype(np.int64)}
    if {"obsid", "run_id"} <= set(det.columns):
        runs = det.drop_duplicates(["source_id", "obsid", "run_id"]).groupby("source_id").size()
        out["n_runs"] = per_source(runs, 0).astype(np.int64)
    else:
        out["n_runs"] = out["n_detections"]
    out["n_observations"] = (per_source(g["obsid"].nunique(), 0).astype(np.int64) if "obsid" in det.columns
                             else np.minimum(out["n_detections"], 1))
    if significance in det.columns or full:
        if full:
            out["best_log10_bayes"] = np.full(len(ids), np.nan)
        else:
            best = det.loc[det[significance].fillna(-np.inf).groupby(det["source_id"]).idxmax()]
            best = best.set_index("source_id").reindex(ids)
            out["best_log10_bayes"] = best[significance].to_numpy(dtype=np.float64)
        if "sigma_equivalent" in det.columns or full:
            out["best_sigma_equivalent"] = (np.full(len(ids), np.nan) if full
                                            else per_source(g["sigma_equivalent"].max()).astype(np.float64))
        for col in ("obsid", "run_id"):
            if col in det.columns or full:
                out[f"best_{col}"] = (np.full(len(ids), None, dtype=object) if full
                                      else best[col].to_numpy(dtype=object))
    if "kind" in det.columns or full:
        if full:
            out["kinds"] = np.full(len(ids), None, dtype=object)
        else:
            kinds = det[["source_id", "kind"]].astype({"kind": str}).drop_duplicates().sort_values(["source_id",
                                                                                                  "kind"])
            out["kinds"] = kinds.groupby("source_id")["kind"].agg("+".join).reindex(ids).to_numpy(dtype=object)
    out.update(_first_last(det, g, ids, per_source, full))
    out["radius_arcsec"] = per_source(g["_sep"].max()).astype(np.float64)
    summary = pd.DataFrame(out)
    if full:  # text columns as pandas makes them from values (str, or object)
        summary = summary.astype({c: str for c in ("best_obsid", "best_run_id", "kinds")})
    base = [c for c in ("source_id", "name", "ra", "dec") if c in src.columns]
    rest = [c for c in src.columns if c not in base]
    res = pd.concat([src[base], summary, src[rest]], axis=1)
    return res.astype({"source_id": np.int64, "ra": np.float64, "dec": np.float64})


def _first_last(det, g, ids, per_source, full: bool) -> dict:
    """``t_first``/``mjd_first``: ``t_start`` and ``mjd_start`` of a source's
    detection that starts first by ``mjd_start`` (MJD, one time scale across
    runs), ``t_last``/``mjd_last`` the ``t_stop`` and ``mjd_stop`` of the
    one that stops last; without finite MJDs, the least ``t_start`` and the
    greatest ``t_stop`` (seconds since the runs' MJDREF)."""
    if full:
        return {k: np.full(len(ids), np.nan) for k in ("t_first", "t_last", "mjd_first", "mjd_last")}
    out = {}
    for t, mjd, name, how in (("t_start", "mjd_start", "first", "min"), ("t_stop", "mjd_stop", "last", "max")):
        if mjd in det.columns:
            key = det[mjd].astype(np.float64)
            has = key.notna().groupby(det["source_id"]).any()
            pick = getattr(key.fillna(np.inf if how == "min" else -np.inf).groupby(det["source_id"]),
                           f"idx{how}")()[has]
            chosen = det.loc[pick.to_numpy()].set_index("source_id")
            out[f"mjd_{name}"] = chosen[mjd].reindex(ids).to_numpy(np.float64)
        if t in det.columns:
            fallback = getattr(g[t], how)()
            if mjd in det.columns:
                fallback.loc[chosen.index] = chosen[t].to_numpy(np.float64)
            out[f"t_{name}"] = per_source(fallback).astype(np.float64)
    return {k: out[k] for k in ("t_first", "t_last", "mjd_first", "mjd_last") if k in out}


def _empty_sources() -> pd.DataFrame:
    """The sources table of no detections: every column of a full one."""
    src = pd.DataFrame({"source_id": pd.Series(dtype="int64"), "name": pd.Series(dtype=str),
                        "ra": pd.Series(dtype="float64"), "dec": pd.Series(dtype="float64")})
    det = pd.DataFrame({"source_id": pd.Series(dtype="int64"), "ra": pd.Series(dtype="float64"),
                        "dec": pd.Series(dtype="float64")})
    return summarise_sources(det, src)


#: what names one detection across catalogue builds: a survey run of several exposure subsets numbers the
#: detections of each subset from 0, so the subset's own search run id is part of the key
DETECTION_KEY = ["obsid", "run_id", "search_run_id", "detection"]


def carry_source_ids(detections: pd.DataFrame, sources: pd.DataFrame, previous: pd.DataFrame | None,
                     prefix: str = "XCUBE", first_free: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the ids and names of the sources of an earlier catalogue.

    ``previous``: the earlier catalogue's detections (``obsid``, ``run_id``,
    ``search_run_id``, ``detection``, ``source_id``, ``source_name``;
    ``search_run_id`` may be absent from both). A new source inherits
    the id and name of the earlier source that most of its detections
    belonged to (ties: the smaller earlier id); each earlier id goes to one
    new source only (the one holding most of its detections; the others get
    new ids). Sources with nothing inherited are numbered from
    ``first_free`` (the id after every id an earlier build gave out, kept in
    ``catalogue.json``), and after the largest earlier id, in (RA, Dec)
    order, so an id is never reused, not even one freed when two sources
    merged. A name is carried only when it has the current ``prefix``.
    Returns ``(detections, sources)`` relabelled, sources in id order;
    without ``previous`` the ids are only moved up to ``first_free``."""
    key = [c for c in DETECTION_KEY if c in previous.columns and c in detections.columns] \
        if previous is not None else []
    if previous is None or not len(previous) or not len(sources) or "source_id" not in previous.columns or \
            set(DETECTION_KEY) - set(key) - {"search_run_id"}:
        if first_free and len(sources):
            src, det = sources.copy(), detections.copy()
            src["source_id"] = src["source_id"].astype(np.int64) + int(first_free)
            det["source_id"] = det["source_id"].astype(np.int64) + int(first_free)
            return det, src
        return detections, sources

    def keyed(df):
        k = pd.DataFrame({c: df[c].astype(str).to_numpy() for c in key if c != "detection"})
        k["detection"] = pd.to_numeric(df["detection"], errors="coerce").to_numpy()
        return k

    prev = keyed(previous).assign(_old=previous["source_id"].to_numpy(),
                                  _name=previous["source_name"].astype(str).to_numpy()
                                  if "source_name" in previous else "")
    cur = keyed(detections).assign(source_id=detections["source_id"].to_numpy())
    m = cur.merge(prev, on=key, how="inner")
    counts = m.groupby(["source_id", "_old"]).size().reset_index(name="n")
    counts = counts.sort_values(["n", "source_id", "_old"], ascending=[False, True, True])
    mapping: dict[int, int] = {}
    used: set[int] = set()
    for new, old in zip(counts["source_id"].to_numpy(), counts["_old"].to_numpy()):
        if new in mapping or old in used:
            continue
        mapping[int(new)] = int(old)
        used.add(int(old))
    old_names = prev.drop_duplicates("_old").set_index("_old")["_name"]
    next_id = max(int(pd.to_numeric(previous["source_id"]).max()) + 1, int(first_free))
    ids, names = {}, {}
    for sid, name in zip(sources["source_id"].to_numpy(), sources["name"].to_numpy()):  # (RA, Dec) order
        if int(sid) in mapping:
            ids[sid] = mapping[int(sid)]
            old = str(old_names.get(ids[sid], ""))
            names[sid] = old if old.startswith(f"{prefix} ") else name
        else:
            ids[sid], names[sid] = next_id, name
            next_id += 1
    src = sources.copy()
    src["source_id"] = src["source_id"].map(ids).astype(np.int64)
    src["name"] = src["source_id"].map({ids[k]: v for k, v in names.items()})
    det = detections.copy()
    det["source_id"] = det["source_id"].map(ids).astype(np.int64)
    det["source_name"] = det["source_id"].map(dict(zip(src["source_id"], src["name"])))
    return det, src.sort_values("source_id").reset_index(drop=True)
