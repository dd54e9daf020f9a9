"""Vetting a survey catalogue: the flags that need many observations, a
report of what each flag removes, and :func:`vet` to keep or drop by flags.

The search sets the per-run flags (:mod:`xcube.transients.flags`); the
catalogue adds:

- ``flag_excluded_obs``: the detection's observation is in a user list of
  observations to exclude (e.g. known bad observations);
- ``flag_hot_region``: the detection lies in a *hot region*: a place fixed on
  the detector where detections recur across observations of different sky
  fields (:func:`hot_regions`).

Hot regions live in the spacecraft frame (``det_u``/``det_v`` [arcsec]:
sky offsets from the pointing rotated by the roll, see
:func:`xcube.skycoords.spacecraft_offsets`): detections are grouped
friends-of-friends within ``radius_arcsec`` there, and a group is a hot
region when its detections come from at least ``min_obs`` observations and
at least ``min_sources`` distinct sky sources (``source_id``, the sky
clustering), so that a real source observed many times is not one.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..transients.flags import RUN_FLAGS

__all__ = ["CATALOGUE_FLAGS", "DROP_FLAGS", "hot_regions", "flag_catalogue", "flag_report", "vet",
           "read_obs_list"]

log = logging.getLogger("xcube.survey")

#: flags the catalogue sets
CATALOGUE_FLAGS = ["flag_hot_region", "flag_excluded_obs"]
#: flags that drop a detection in :func:`vet` by default (flag_5sigma marks the significant ones)
DROP_FLAGS = [f for f in RUN_FLAGS if f != "flag_5sigma"] + CATALOGUE_FLAGS


_LIST_SUFFIXES = (".txt", ".lst", ".list", ".csv", ".dat", ".ids")


def looks_like_path(text: str) -> bool:
    """True for a name that is a path or a list file rather than an
    observation id: it holds a ``/`` (or ``os.sep``) or ends in a list-file
    suffix such as ``.txt``, so that a misspelled file name is not taken as
    an id."""
    return "/" in text or os.sep in text or text.lower().endswith(_LIST_SUFFIXES)


def read_obs_list(obs, must_exist: bool = False) -> set[str]:
    """Observation ids from a list, or a text file (one id per line, ``#``
    comments and blank lines skipped). A string is one observation id unless
    it names a file; a ``Path``, a string that looks like a path (with a
    ``/`` or a list-file suffix such as ``.txt``) or any string with
    ``must_exist`` (the command line's ``--exclude-obs FILE``) must name an
    existing file (``FileNotFoundError`` naming it), so that a misspelled
    file name is not taken as an id. Returns a set of id strings; a file is
    read eagerly (UTF-8, ``ValueError`` naming it otherwise)."""
    if obs is None:
        return set()
    if isinstance(obs, (str, Path)) and Path(obs).is_file():
        try:  # (a leading byte-order mark, as Windows editors write, dropped)
            lines = Path(obs).read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as exc:
            raise ValueError(f"{obs}: not UTF-8 text ({exc}); save the list of observation ids as UTF-8") from None
        return {ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip()}
    if isinstance(obs, Path) or (isinstance(obs, str) and (
            must_exist or looks_like_path(obs))):
        raise FileNotFoundError(f"{obs}: no such file of observation ids to exclude (one id per line)")
    if isinstance(obs, str):
        return {obs}
    return {str(o) for o in obs}


def _flag_names(value, func: str, what: str) -> list[str]:
    """Flag names as a list: a single name (str) is a one-element list."""
    if isinstance(value, str):
        return [value]
    try:
        names = list(value)
    except TypeError:
        raise TypeError(f"{func}: {what} must be a flag name or a list of flag names, not "
                        f"{type(value).__name__}") from None
    bad = [f for f in names if not isinstance(f, str)]
    if bad:
        raise TypeError(f"{func}: {what} must be flag names (str), got {bad[0]!r}")
    return names


def _need_flags(det: pd.DataFrame, names, func: str) -> None:
    """``KeyError`` naming the flags of ``names`` that ``det`` lacks."""
    missing = [f for f in names if f not in det]
    if missing:
        raise KeyError(f"{func}: no column {', '.join(repr(f) for f in missing)} in the detections; flags present: "
                       f"{[c for c in det.columns if str(c).startswith('flag_')]}")


def _detections(catalogue, func: str) -> pd.DataFrame:
    """The detections DataFrame of a Catalogue, or the DataFrame itself;
    ``TypeError`` for anything else (a path: read it first)."""
    if isinstance(catalogue, pd.DataFrame):
        return catalogue
    if dataclasses.is_dataclass(catalogue) and isinstance(getattr(catalogue, "detections", None), pd.DataFrame):
        return catalogue.detections  # a Catalogue
    hint = (f" (for a survey directory: xcube.survey.read_catalogue_dir({str(catalogue)!r}) after "
            "xcube.survey.build_catalogue)" if isinstance(catalogue, (str, Path)) else "")
    raise TypeError(f"{func}: needs a Catalogue (xcube.survey.build_catalogue or read_catalogue_dir) or a "
                    f"detections DataFrame, not {type(catalogue).__name__}{hint}")


def hot_regions(det: pd.DataFrame, radius_arcsec: float = 20.0, min_obs: int = 3,
                min_sources: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """``(regions, label)``: the hot regions of a catalogue's detections (module
    doc) and each detection's region index (-1: none). ``regions`` has one row
    per region: ``region``, ``det_u``/``det_v`` (mean) [arcsec], ``radius``
    [arcsec] (largest distance of a member from the mean), ``n_detections``,
    ``n_obs``, ``n_sources``. Needs ``det_u``, ``det_v``, ``obsid`` (or
    ``obs_id``) and, when ``min_sources`` > 1, ``source_id`` columns
    (``KeyError`` naming the missing column: without the sky clustering's
    source ids, one source seen in several observations would count as
    several sources; cluster first, :func:`xcube.survey.cluster_detections`
    or ``build_catalogue``); detections without ``det_u`` are never in a
    region. Eager; a KD-tree in the detector plane."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    label = np.full(len(det), -1, np.int64)
    cols = ["region", "det_u", "det_v", "radius", "n_detections", "n_obs", "n_sources"]
    if len(det) == 0 or "det_u" not in det:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in cols}), label
    if "obsid" not in det and "obs_id" not in det:
        raise KeyError("hot_regions: the detections have no 'obsid' (or 'obs_id') column, needed to count the "
                       "observations of a region (a survey catalogue's detections have it)")
    if "source_id" not in det and min_sources > 1:
        raise KeyError(f"hot_regions: the detections have no 'source_id' column, needed to count the distinct sky "
                       f"sources of a region (min_sources={min_sources}): without it one source seen in several "
                       "observations would count as several; cluster the detections first "
                       "(xcube.survey.cluster_detections, as build_catalogue does), or pass min_sources=1")
    uv = det[["det_u", "det_v"]].to_numpy(float)
    ok = np.flatnonzero(np.isfinite(uv).all(axis=1))
    if ok.size == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in cols}), label
    pairs = cKDTree(uv[ok]).query_pairs(radius_arcsec, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(ok.size, ok.size))
    _, group = connected_components(graph, directed=False)
    obs = (det["obsid"] if "obsid" in det else det["obs_id"]).astype(str).to_numpy()[ok]
    src = det["source_id"].to_numpy()[ok] if "source_id" in det else np.zeros(ok.size, np.int64)  # (min_sources 1)
    g = pd.DataFrame({"group": group, "obs": obs, "src": src, "u": uv[ok, 0], "v": uv[ok, 1]})
    stats = g.groupby("group").agg(n_detections=("u", "size"), n_obs=("obs", "nunique"), n_sources=("src", "nunique"),
                                   det_u=("u", "mean"), det_v=("v", "mean"))
    hot = stats[(stats["n_obs"] >= min_obs) & (stats["n_sources"] >= min_sources)].copy()
    hot["region"] = np.arange(len(hot))
    member = g["group"].map(hot["region"]).fillna(-1).astype(np.int64).to_numpy()
    label[ok] = member
    d = np.hypot(g["u"] - g["group"].map(hot["det_u"]), g["v"] - g["group"].map(hot["det_v"]))
    hot["radius"] = d[member >= 0].groupby(g["group"][member >= 0]).max().reindex(hot.index).fillna(0.0)
    return hot.reset_index(drop=True)[cols], label


def flag_catalogue(det: pd.DataFrame, exclude_obs=None, *, radius_arcsec: float = 20.0, min_obs: int = 3,
                   min_sources: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(detections, regions)``: the detections with ``flag_excluded_obs``,
    ``flag_hot_region`` and ``hot_region`` (the region index, -1 none) set,
    and the hot regions (:func:`hot_regions`: friends-of-friends groups
    within ``radius_arcsec`` [arcsec] in the detector plane, from at least
    ``min_obs`` observations and ``min_sources`` sky sources; the
    detections need the sky clustering's ``source_id`` then, ``KeyError``
    without it). Eager."""
    det = det.copy()
    excl = read_obs_list(exclude_obs)
    obs = det["obsid"] if "obsid" in det else det.get("obs_id", pd.Series([""] * len(det)))
    det["flag_excluded_obs"] = obs.astype(str).isin(excl).to_numpy() if len(det) else np.zeros(0, bool)
    regions, label = hot_regions(det, radius_arcsec, min_obs, min_sources)
    det["hot_region"] = label
    det["flag_hot_region"] = label >= 0
    for f in DROP_FLAGS + ["flag_5sigma"]:
        if f in det:
            det[f] = flag_values(det, f)
    return det, regions


_TRUE, _FALSE = {"true", "t", "1", "yes", "y"}, {"false", "f", "0", "no", "n", ""}


def flag_values(det: pd.DataFrame, flag: str) -> np.ndarray:
    """Column ``flag`` of ``det`` as a bool array (missing = False). Text
    values, as a CSV round trip leaves them (``"True"``/``"False"``, ``"1"``
    /``"0"``), are read as booleans: ``astype(bool)`` would make
    ``"False"`` True. ``ValueError`` naming the flag and a value that is
    neither."""
    s = det[flag]
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
        return s.fillna(False).astype(bool).to_numpy()
    text = s.fillna("").astype(str).str.strip().str.lower()
    bad = ~text.isin(_TRUE | _FALSE)
    if bad.any():
        raise ValueError(f"{flag}: value {s[bad].iloc[0]!r} is not a boolean flag (True/False, 1/0)")
    return text.isin(_TRUE).to_numpy()


def flag_report(det: pd.DataFrame, flags=None) -> pd.DataFrame:
    """How many detections each flag removes: one row per flag with
    ``n_flagged`` (rows with the flag set), ``fraction``, ``n_only`` (rows
    removed by this flag alone, no other flag of ``flags`` set) and, last, a
    row ``any`` (rows with any of them; ``n_only`` the same: the rows the
    flags remove together). ``flags``: default (None) the
    :data:`DROP_FLAGS` present, then a row ``flag_5sigma (keep)`` (a flag
    that keeps: ``n_flagged`` the 5-sigma rows, ``n_only`` the rows that
    requiring it, ``vet(require="flag_5sigma")``, removes beyond ``flags``);
    a flag name or a list of them (``[]``: none; ``KeyError`` naming a
    flag the table lacks)."""
    if flags is None:
        flags = [f for f in DROP_FLAGS if f in det]
    else:
        flags = _flag_names(flags, "flag_report", "flags")
        _need_flags(det, flags, "flag_report")
    n = len(det)
    m = np.stack([flag_values(det, f) for f in flags], axis=1) if flags else np.zeros((n, 0), bool)
    rows = []
    for k, f in enumerate(flags):
        only = m[:, k] & (m.sum(axis=1) == 1)
        rows.append({"flag": f, "n_flagged": int(m[:, k].sum()), "fraction": m[:, k].mean() if n else 0.0,
                     "n_only": int(only.sum())})
    rows.append({"flag": "any", "n_flagged": int(m.any(axis=1).sum()), "fraction": m.any(axis=1).mean() if n else 0.0,
                 "n_only": int(m.any(axis=1).sum())})
    if "flag_5sigma" in det and "flag_5sigma" not in flags:
        s = pd.Series(flag_values(det, "flag_5sigma"))
        rows.append({"flag": "flag_5sigma (keep)", "n_flagged": int(s.sum()), "fraction": s.mean() if n else 0.0,
                     "n_only": int((~s & ~m.any(axis=1)).sum())})
    return pd.DataFrame(rows, columns=["flag", "n_flagged", "fraction", "n_only"])


def vet(catalogue, flags=None, *, require=()):
    """Keep the detections that pass the vetting.

    ``catalogue``: a :class:`~xcube.survey.catalogue.Catalogue` or a
    detections DataFrame (``TypeError`` for anything else, e.g. a path:
    read it with :func:`~xcube.survey.catalogue.read_catalogue_dir`).
    ``flags``: flag columns whose True drops a detection (default None:
    :data:`DROP_FLAGS`, those present; a single name is a one-element list;
    ``[]`` drops on none), or a dict ``{flag: wanted value}`` (a row is kept
    when every listed flag has the wanted value, e.g. ``{"flag_5sigma":
    True, "flag_hot_region": False}``). ``require``: flags that must be
    True (e.g. ``("flag_5sigma",)`` or ``"flag_5sigma"``). Returns the same
    kind: a DataFrame, or a Catalogue whose sources are those with a kept
    detection, their summaries (``n_detections``, ``n_observations``,
    ``best_*``, ``t_first``...; :func:`.cluster.summarise_sources`) computed
    from the kept detections only; ids, names, positions and cross-matches
    stay those of the catalogue. ``KeyError`` naming a flag the table
    lacks."""
    det = _detections(catalogue, "vet")
    if isinstance(flags, dict):
        wanted = dict(flags)
    elif flags is None:
        wanted = {f: False for f in DROP_FLAGS if f in det}
    else:
        wanted = {f: False for f in _flag_names(flags, "vet", "flags")}
    wanted.update({f: True for f in _flag_names(require, "vet", "require")})
    _need_flags(det, wanted, "vet")
    keep = np.ones(len(det), bool)
    for f, value in wanted.items():
        keep &= flag_values(det, f) == bool(value)
    kept = det[keep].reset_index(drop=True)
    if isinstance(catalogue, pd.DataFrame):
        return kept
    src = catalogue.sources
    if "source_id" in kept and "source_id" in src:
        from .cluster import summarise_sources

        src = src[src["source_id"].isin(kept["source_id"])].reset_index(drop=True)
        if {"ra", "dec"} <= set(kept.columns) and {"ra", "dec"} <= set(src.columns):
            src = summarise_sources(kept, src)
    return dataclasses.replace(catalogue, detections=kept, sources=src, directory=None, flag_report=None)
