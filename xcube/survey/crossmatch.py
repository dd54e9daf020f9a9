"""Cross-matching sources against user catalogues (FITS, CSV or Parquet).

Each source gets its nearest catalogue neighbour within ``radius_arcsec``
(a KD-tree on unit vectors), the great-circle separation and the offsets of
the counterpart from the source along RA and Dec, as
``astropy.coordinates.SkyCoord.spherical_offsets_to`` defines them (the
counterpart's longitude and latitude in a frame centred on the source).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .cluster import angular_separation, radec_to_xyz

__all__ = ["read_catalogue", "crossmatch", "crossmatch_table", "spherical_offsets"]

_RA_NAMES = ("ra", "raj2000", "_raj2000", "ra_j2000", "ra_deg", "radeg", "ra_icrs", "ra_obj", "rightascension")
_DEC_NAMES = ("dec", "dej2000", "_dej2000", "decj2000", "dec_j2000", "dec_deg", "decdeg", "dedeg", "de_icrs",
              "dec_icrs", "dec_obj", "declination")
_NAME_NAMES = ("name", "source_name", "srcname", "id", "source_id", "iauname", "main_id", "designation")


def _pick(columns, wanted, given, what, path, option):
    if given is not None:
        for c in columns:
            if c == given or c.lower() == str(given).lower():
                return c
        raise KeyError(f"{path}: no column {given!r} for {what} (columns: {', '.join(columns)}); fix {option}")
    low = {c.lower(): c for c in columns}
    for w in wanted:
        if w in low:
            return low[w]
    if what == "name":
        return None
    raise KeyError(f"{path}: cannot tell which column holds {what} (columns: {', '.join(columns)}); "
                   f"name it with {option}")


def _to_degrees(values, unit, path, col, hours: bool):
    if values.dtype.kind in "OUS":
        from astropy import units as u
        from astropy.coordinates import Angle

        try:
            return Angle(np.asarray(values, dtype=str), unit=u.hourangle if hours else u.deg).deg
        except ValueError as exc:
            raise ValueError(f"{path}: column {col!r} holds text that is not an angle ({exc}); "
                             "give degrees or sexagesimal strings") from exc
    v = np.asarray(values, dtype=np.float64)
    if unit:
        from astropy import units as u

        try:
            return (v * u.Unit(unit)).to_value(u.deg)
        except (ValueError, u.UnitConversionError) as exc:
            raise ValueError(f"{path}: column {col!r} has unit {unit!r}, not an angle") from exc
    return v


def read_catalogue(path, ra_col: str | None = None, dec_col: str | None = None,
                   name_col: str | None = None) -> pd.DataFrame:
    """Read a catalogue file (FITS table, CSV or Parquet; chosen by extension).

    RA/Dec columns are found by name (``ra``/``dec``, ``RAJ2000``/``DEJ2000``,
    ``RA_ICRS``...; case-insensitive) unless given. Values are degrees, or
    text in sexagesimal form (RA in hours), or FITS columns with angle units.
    Returns the table with added float64 columns ``ra``, ``dec`` [deg] and a
    ``name`` column (the name column if found, else the row number). Eager.
    """
    path = Path(path)
    suffix = "".join(path.suffixes).lower()
    units = {}
    if any(suffix.endswith(s) for s in (".fits", ".fit", ".fits.gz", ".fts")):
        from astropy.table import Table

        tab = Table.read(path)
        units = {c: (str(tab[c].unit) if tab[c].unit is not None else None) for c in tab.colnames}
        df = tab[[c for c in tab.colnames if tab[c].ndim == 1]].to_pandas()
    elif suffix.endswith(".parquet") or suffix.endswith(".pq"):
        df = pd.read_parquet(path)
    elif any(suffix.endswith(s) for s in (".csv", ".csv.gz", ".txt", ".tsv")):
        df = pd.read_csv(path, sep="\t" if suffix.endswith(".tsv") else ",", comment="#")
    else:
        raise ValueError(f"{path}: unknown catalogue format {suffix!r}; use FITS, CSV or Parquet")
    cols = [str(c) for c in df.columns]
    rc = _pick(cols, _RA_NAMES, ra_col, "RA", path, "--ra-col / ra_col=")
    dc = _pick(cols, _DEC_NAMES, dec_col, "Dec", path, "--dec-col / dec_col=")
    nc = _pick(cols, _NAME_NAMES, name_col, "name", path, "--name-col / name_col=")
    ra = _to_degrees(df[rc].to_numpy(), units.get(rc), path, rc, hours=True)
    dec = _to_degrees(df[dc].to_numpy(), units.get(dc), path, dc, hours=False)
    bad = ~np.isfinite(ra) | ~np.isfinite(dec) | (np.abs(dec) > 90)
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} rows have missing or invalid {rc}/{dc} "
                         f"(first row {int(np.flatnonzero(bad)[0])}); remove them")
    out = df.copy()
    out["ra"], out["dec"] = ra, dec
    out["name"] = df[nc].astype(str).str.strip().to_numpy() if nc else np.arange(len(df)).astype(str)
    return out


def spherical_offsets(ra1, dec1, ra2, dec2) -> tuple[np.ndarray, np.ndarray]:
    """Offsets [deg] of (ra2, dec2) from (ra1, dec1): longitude and latitude of the
    second position in a frame centred on the first (as astropy's
    ``spherical_offsets_to``). Near the centre, d_ra ~ (ra2 - ra1) cos(dec1)."""
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
    shape (n,): the catalogue row (-1 when none lies within ``radius_arcsec``),
    the separation and the offsets of the counterpart from the position (NaN
    without a match). Eager.
    """
    v = radec_to_xyz(ra, dec).reshape(-1, 3)
    n = len(v)
    idx = np.full(n, -1, dtype=np.int64)
    sep = np.full(n, np.nan)
    dra = np.full(n, np.nan)
    ddec = np.full(n, np.nan)
    if n == 0 or len(cat_ra) == 0:
        return idx, sep, dra, ddec
    tree = cKDTree(radec_to_xyz(cat_ra, cat_dec).reshape(-1, 3))
    # query a little beyond the radius in chord length, then decide on the exact angle
    chord = 2.0 * np.sin(np.radians(radius_arcsec / 3600.0) / 2.0)
    _, j = tree.query(v, k=1, distance_upper_bound=chord * (1 + 1e-9) + 1e-15)
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


def crossmatch_table(sources: pd.DataFrame, catalogue, radius_arcsec: float = 20.0, prefix: str | None = None,
                     ra_col=None, dec_col=None, name_col=None) -> pd.DataFrame:
    """Add the nearest counterpart in ``catalogue`` (a path or a DataFrame from
    :func:`read_catalogue`) to each row of ``sources`` (columns ``ra``, ``dec``).

    New columns ``<prefix>_name``, ``<prefix>_index`` (-1 without match),
    ``<prefix>_sep_arcsec``, ``<prefix>_dra_arcsec``, ``<prefix>_ddec_arcsec``;
    ``prefix`` defaults to the catalogue file's stem. Returns a copy. Eager.
    """
    if not isinstance(catalogue, pd.DataFrame):
        prefix = prefix or Path(catalogue).name.split(".")[0]
        catalogue = read_catalogue(catalogue, ra_col=ra_col, dec_col=dec_col, name_col=name_col)
    prefix = prefix or "match"
    idx, sep, dra, ddec = crossmatch(sources["ra"].to_numpy(), sources["dec"].to_numpy(),
                                     catalogue["ra"].to_numpy(), catalogue["dec"].to_numpy(), radius_arcsec)
    out = sources.copy()
    names = catalogue["name"].to_numpy().astype(object)
    out[f"{prefix}_name"] = np.where(idx >= 0, names[np.maximum(idx, 0)] if len(names) else None, None)
    out[f"{prefix}_index"] = idx
    out[f"{prefix}_sep_arcsec"] = sep
    out[f"{prefix}_dra_arcsec"] = dra
    out[f"{prefix}_ddec_arcsec"] = ddec
    return out
