"""Cross-matching sources against user catalogues (FITS, CSV or Parquet).

Each source gets its nearest catalogue neighbour within ``radius_arcsec``
(a KD-tree on unit vectors), the great-circle separation and the offsets of
the counterpart from the source along RA and Dec, as
``astropy.coordinates.SkyCoord.spherical_offsets_to`` defines them (the
counterpart's longitude and latitude in a frame centred on the source).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..io.catalogue import read_catalogue
from .cluster import angular_separation, chord_length, radec_to_xyz

__all__ = ["read_catalogue", "crossmatch", "crossmatch_table", "spherical_offsets", "match_prefix"]

log = logging.getLogger("xcube.survey")


def spherical_offsets(ra1, dec1, ra2, dec2) -> tuple[np.ndarray, np.ndarray]:
    """Offsets [deg] of (ra2, dec2) from (ra1, dec1): longitude and latitude of the
    second position in a frame centred on the first (as astropy's
    ``spherical_offsets_to``). Near the centre, d_ra ~ (ra2 - ra1) cos(dec1).
    Inputs [deg] are numbers or numpy arrays that broadcast; returns
    ``(d_ra, d_dec)``, two float64 arrays of their broadcast shape. Eager."""
    v = radec_to_xyz(ra2, dec2)
    a = np.radians(np.asarray(ra1, dtype=np.float64))
    d = np.radians(np.asarray(dec1, dtype=np.float64))
    e_r = np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)], axis=-1)
    e_east = np.stack([-np.sin(a), np.cos(a), np.zeros_like(a)], axis=-1)
    e_north = np.stack([-np.sin(d) * np.cos(a), -np.sin(d) * np.sin(a), np.cos(d)], axis=-1)
    x, y, z = (v * e_r).sum(-1), (v * e_east).sum(-1), (v * e_north).sum(-1)
    return np.degrees(np.arctan2(y, x)), np.degrees(np.arctan2(z, np.hypot(x, y)))


def crossmatch(ra, dec, cat_ra, cat_dec, radius_arcsec: float = 20.0):
    """Nearest catalogue neighbour of each position (all in deg).

    Returns ``(index, separation_arcsec, dra_arcsec, ddec_arcsec)``, arrays of
    shape (n,): the catalogue row (-1 when none lies within ``radius_arcsec``,
    or the position is NaN),
    the separation and the offsets of the counterpart from the position (NaN
    without a match). Eager.
    """
    v = radec_to_xyz(ra, dec).reshape(-1, 3)
    n = len(v)
    idx = np.full(n, -1, dtype=np.int64)
    sep = np.full(n, np.nan)
    dra = np.full(n, np.nan)
    ddec = np.full(n, np.nan)
    finite = np.isfinite(v).all(axis=1)  # a position with NaN has no match
    if n == 0 or len(cat_ra) == 0 or not finite.any():
        return idx, sep, dra, ddec
    tree = cKDTree(radec_to_xyz(cat_ra, cat_dec).reshape(-1, 3))
    # query a little beyond the radius in chord length, then decide on the exact angle
    chord = chord_length(radius_arcsec)
    j = np.full(n, len(cat_ra), dtype=np.int64)
    _, j[finite] = tree.query(v[finite], k=1, distance_upper_bound=chord * (1 + 1e-9) + 1e-15)
    found = j < len(cat_ra)
    cra = np.asarray(cat_ra, dtype=np.float64)
    cdec = np.asarray(cat_dec, dtype=np.float64)
    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    jj = j[found]
    s = angular_separation(ra[found], dec[found], cra[jj], cdec[jj]) * 3600.0
    ok = s <= radius_arcsec
    rows = np.flatnonzero(found)[ok]
    idx[rows] = jj[ok]
    sep[rows] = s[ok]
    ox, oy = spherical_offsets(ra[rows], dec[rows], cra[idx[rows]], cdec[idx[rows]])
    dra[rows], ddec[rows] = ox * 3600.0, oy * 3600.0
    return idx, sep, dra, ddec


def match_prefix(prefix) -> str:
    """``prefix`` as the start of FITS column names: characters outside
    ``[A-Za-z0-9_]`` become ``_`` (``gaia-dr3`` -> ``gaia_dr3``), and a
    prefix not starting with a letter gets ``cat_`` in front (``2mass`` ->
    ``cat_2mass``)."""
    text = re.sub(r"[^A-Za-z0-9_]", "_", str(prefix).strip()) or "match"
    return text if text[0].isalpha() else f"cat_{text}"


def crossmatch_table(sources: pd.DataFrame, catalogue, radius_arcsec: float = 20.0, prefix: str | None = None,
                     ra_col=None, dec_col=None, name_col=None) -> pd.DataFrame:
    """Add the nearest counterpart in ``catalogue`` to each row of ``sources``
    (columns ``ra``, ``dec``; a row with NaN there gets no match).

    ``catalogue``: a path, a pandas DataFrame or an astropy Table, all read by
    :func:`read_catalogue` with ``ra_col``, ``dec_col`` and ``name_col``. New
    columns ``<prefix>_name``, ``<prefix>_index`` (-1 without match),
    ``<prefix>_sep_arcsec``, ``<prefix>_dra_arcsec``, ``<prefix>_ddec_arcsec``;
    ``prefix`` defaults to the catalogue file's stem (``match`` for a table),
    made a valid FITS column name start (:func:`match_prefix`); a prefix
    whose columns ``sources`` already has gets ``_2``, ``_3``... (with a
    warning), so two catalogues named alike both stay. Returns a copy. Eager.
    """
    if isinstance(catalogue, (str, Path)):
        prefix = prefix or Path(catalogue).name.split(".")[0]
    prefix = match_prefix(prefix or "match")
    catalogue = read_catalogue(catalogue, ra_col=ra_col, dec_col=dec_col, name_col=name_col)
    base, k = prefix, 1
    while f"{prefix}_index" in sources.columns or f"{prefix}_name" in sources.columns:
        k += 1
        prefix = f"{base}_{k}"
    if prefix != base:
        log.warning("cross-match columns %s_* are taken by an earlier catalogue; naming these %s_*", base, prefix)
    idx, sep, dra, ddec = crossmatch(np.asarray(sources["ra"], dtype=np.float64),
                                     np.asarray(sources["dec"], dtype=np.float64),
                                     catalogue["ra"].to_numpy(), catalogue["dec"].to_numpy(), radius_arcsec)
    out = sources.copy()
    names = catalogue["name"].to_numpy().astype(object)
    out[f"{prefix}_name"] = np.where(idx >= 0, names[np.maximum(idx, 0)] if len(names) else None, None)
    out[f"{prefix}_index"] = idx
    out[f"{prefix}_sep_arcsec"] = sep
    out[f"{prefix}_dra_arcsec"] = dra
    out[f"{prefix}_ddec_arcsec"] = ddec
    return out
