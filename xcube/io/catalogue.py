"""Source catalogues from files or tables: positions in degrees, names, radii.

The one reader of user catalogues, used to mask known sources from the
transient search's background and to cross-match survey sources.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["read_catalogue"]

_RA_NAMES = ("ra", "raj2000", "_raj2000", "ra_j2000", "ra_deg", "radeg", "ra_icrs", "ra_obj", "rightascension")
_DEC_NAMES = ("dec", "dej2000", "_dej2000", "decj2000", "dec_j2000", "dec_deg", "decdeg", "dedeg", "de_icrs",
              "dec_icrs", "dec_obj", "declination")
_FORMATS = (".fits", ".fit", ".fits.gz", ".fts", ".parquet", ".pq", ".csv", ".csv.gz", ".txt", ".tsv")
_RADIUS_NAMES = ("radius_arcsec", "radius", "r_arcsec", "r", "extent_arcsec")
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
    if what in ("name", "radius"):
        return None
    raise KeyError(f"{path}: cannot tell which column holds {what} (columns: {', '.join(columns)}); "
                   f"rename it to {what.upper()}, or name it with {option}")


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


def read_catalogue(catalogue, ra_col: str | None = None, dec_col: str | None = None,
                   name_col: str | None = None, radius_col: str | None = None) -> pd.DataFrame:
    """Read a source catalogue: a file (FITS table, CSV or Parquet; chosen by
    extension), a pandas DataFrame or an astropy Table.

    RA/Dec columns are found by name (``ra``/``dec``, ``RAJ2000``/``DEJ2000``,
    ``RA_ICRS``...; case-insensitive) unless given. Values are degrees, or
    text in sexagesimal form (RA in hours), or FITS columns with angle units.
    Returns the table with added float64 columns ``ra``, ``dec`` [deg],
    ``radius_arcsec`` (from a radius column such as ``radius_arcsec``,
    ``radius`` or ``r`` [arcsec], NaN without one) and a ``name`` column (the
    name column if found, else the row number). Rows with a missing or invalid
    position are an error naming the file, the count and the first row; an
    empty file (0 bytes, or a CSV without a header line) is a ``ValueError``
    naming it. Eager.
    """
    units = {}
    if isinstance(catalogue, pd.DataFrame) or hasattr(catalogue, "to_pandas"):
        df = catalogue if isinstance(catalogue, pd.DataFrame) else catalogue.to_pandas()
        return _positions(df, "catalogue", units, ra_col, dec_col, name_col, radius_col)
    if not isinstance(catalogue, (str, Path)):
        raise TypeError(f"catalogue must be a path, DataFrame or astropy Table, not {type(catalogue).__name__}")
    path = Path(catalogue)
    suffix = "".join(path.suffixes).lower()
    if not any(suffix.endswith(s) for s in _FORMATS):
        raise ValueError(f"{path}: unknown catalogue format {suffix!r}; use FITS, CSV or Parquet")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such catalogue file")
    empty = "the catalogue file is empty ({}): give a FITS, CSV or Parquet table with RA and Dec columns"
    if path.is_file() and path.stat().st_size == 0:
        raise ValueError(f"{path}: " + empty.format("0 bytes"))
    if any(suffix.endswith(s) for s in (".fits", ".fit", ".fits.gz", ".fts")):
        from astropy.table import Table

        tab = Table.read(path)
        units = {c: (str(tab[c].unit) if tab[c].unit is not None else None) for c in tab.colnames}
        df = tab[[c for c in tab.colnames if tab[c].ndim == 1]].to_pandas()
    elif suffix.endswith(".parquet") or suffix.endswith(".pq"):
        df = pd.read_parquet(path)
    elif any(suffix.endswith(s) for s in (".csv", ".csv.gz", ".txt", ".tsv")):
        try:
            df = pd.read_csv(path, sep="\t" if suffix.endswith(".tsv") else ",", comment="#")
        except pd.errors.EmptyDataError as exc:
            raise ValueError(f"{path}: " + empty.format(f"no header line naming its columns: {exc}")) from exc
    else:
        raise ValueError(f"{path}: unknown catalogue format {suffix!r}; use FITS, CSV or Parquet")
    return _positions(df, path, units, ra_col, dec_col, name_col, radius_col)


def _positions(df, path, units, ra_col, dec_col, name_col, radius_col) -> pd.DataFrame:
    cols = [str(c) for c in df.columns]
    rc = _pick(cols, _RA_NAMES, ra_col, "RA", path, "ra_col= (command line: --ra-col)")
    dc = _pick(cols, _DEC_NAMES, dec_col, "Dec", path, "dec_col= (command line: --dec-col)")
    nc = _pick(cols, _NAME_NAMES, name_col, "name", path, "name_col= (xcube survey and catalogue: --name-col)")
    ra = _to_degrees(df[rc].to_numpy(), units.get(rc), path, rc, hours=True)
    dec = _to_degrees(df[dc].to_numpy(), units.get(dc), path, dc, hours=False)
    bad = ~np.isfinite(ra) | ~np.isfinite(dec) | (np.abs(dec) > 90)
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} rows have missing or invalid {rc}/{dc} "
                         f"(first row {int(np.flatnonzero(bad)[0])}); remove them")
    out = df.copy()
    out["ra"], out["dec"] = ra, dec
    out["name"] = df[nc].astype(str).str.strip().to_numpy() if nc else np.arange(len(df)).astype(str)
    rad = _pick(cols, _RADIUS_NAMES, radius_col, "radius", path, "radius_col=")
    out["radius_arcsec"] = np.asarray(df[rad], dtype=np.float64) if rad else np.full(len(df), np.nan)
    return out
