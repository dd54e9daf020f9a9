"""Source catalogues from files or tables: positions in degrees, names, radii.

The one reader of user catalogues, used to mask known sources from the
transient search's background and to cross-match survey sources.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["read_catalogue"]

_RA_NAMES = ("ra", "raj2000", "_raj2000", "ra_j2000", "ra_deg", "radeg", "ra_icrs", "ra_obj", "rightascension")
_DEC_NAMES = ("dec", "dej2000", "_dej2000", "decj2000", "dec_j2000", "dec_deg", "decdeg", "dedeg", "de_icrs",
              "dec_icrs", "dec_obj", "declination")
_FORMATS = (".fits", ".fit", ".fits.gz", ".fts", ".parquet", ".pq", ".csv", ".csv.gz", ".txt", ".tsv")
_RADIUS_NAMES = ("radius_arcsec", "radius", "r_arcsec", "extent_arcsec")  # not "r": an SDSS magnitude
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


_UNIT_SPELLINGS = {"deg": "deg", "degs": "deg", "degree": "deg", "degrees": "deg", "decimal degrees": "deg",
                   "arcsec": "arcsec", "arcsecond": "arcsec", "arcseconds": "arcsec", "arcmin": "arcmin",
                   "arcminute": "arcmin", "arcminutes": "arcmin", "rad": "rad", "radian": "rad", "radians": "rad",
                   "h": "hourangle", "hr": "hourangle", "hour": "hourangle", "hours": "hourangle",
                   "hourangle": "hourangle", "mas": "mas"}


def _angle_unit(unit, path, col):
    """The astropy unit of a column's unit text (None for none), with common
    spellings (``degrees``, ``DEG``, ``Degree``, ``hours``...) normalised;
    ``ValueError`` naming the column for a unit that is not an angle."""
    from astropy import units as u

    if unit is None or str(unit).strip() in ("", "None"):
        return None
    text = str(unit).strip()
    try:
        out = u.Unit(_UNIT_SPELLINGS.get(text.lower(), text))
        out.to(u.deg)
        return out
    except (ValueError, TypeError, u.UnitsError) as exc:
        raise ValueError(f"{path}: column {col!r} has unit {unit!r}, not an angle") from exc


def _parses(text: str, unit) -> bool:
    from astropy.coordinates import Angle

    try:
        Angle(text, unit=unit)
        return True
    except Exception:  # noqa: BLE001 - any failure: not an angle
        return False


def _to_degrees(values, unit, path, col, hours: bool):
    """Angles [deg] of a column. Numbers, and text that is a plain decimal
    number, are in the column's unit (degrees without one); other text is
    parsed by astropy: sexagesimal RA (``10:00:24``) in hours unless the
    column's unit says otherwise, and anything marked (``10h00m24s``,
    ``150d06m``) as marked. Empty text is NaN."""
    from astropy import units as u

    unit = _angle_unit(unit, path, col)
    if values.dtype.kind in "OUS":
        from astropy.coordinates import Angle

        text = pd.Series(values, dtype=object).map(
            lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else
            (v.decode() if isinstance(v, bytes) else str(v)).strip())
        num = np.array(pd.to_numeric(text.where(text != ""), errors="coerce"), dtype=np.float64)
        rest = np.flatnonzero(np.isnan(num) & (text != "").to_numpy())
        if unit is not None:
            num = (num * unit).to_value(u.deg)
        if rest.size:
            parse_unit = unit if unit is not None else (u.hourangle if hours else u.deg)
            try:
                num[rest] = Angle(text.to_numpy()[rest].astype(str), unit=parse_unit).deg
            except (ValueError, u.UnitsError) as exc:
                row = next((int(i) for i in rest if not _parses(text.iloc[i], parse_unit)), int(rest[0]))
                raise ValueError(f"{path}: column {col!r} holds text that is not an angle: row {row}, "
                                 f"{text.iloc[row]!r} ({exc}); give degrees or sexagesimal strings (RA in hours "
                                 "unless marked as degrees, 150d06m00s)") from exc
        return num
    v = np.asarray(values, dtype=np.float64)
    return (v * unit).to_value(u.deg) if unit is not None else v


def read_catalogue(catalogue, ra_col: str | None = None, dec_col: str | None = None,
                   name_col: str | None = None, radius_col: str | None = None) -> pd.DataFrame:
    """Read a source catalogue: a file (FITS table, CSV or Parquet; chosen by
    extension), a pandas DataFrame or an astropy Table.

    RA/Dec columns are found by name (``ra``/``dec``, ``RAJ2000``/``DEJ2000``,
    ``RA_ICRS``...; case-insensitive) unless given. Values are numbers or
    decimal text in degrees (or in the column's angle unit: FITS TUNIT or an
    astropy Table's unit, with spellings such as ``degrees``, ``DEG``,
    ``Degree`` understood), or sexagesimal text: RA in hours
    (``10:00:24``, ``10h00m24s``) unless marked as degrees (``150d06m00s``)
    or the column's unit says degrees. RA must lie in [0, 360] and Dec in
    [-90, 90] (a ``ValueError`` names the file, the column and the first row
    outside). Returns the table with added float64 columns ``ra``, ``dec``
    [deg], ``radius_arcsec`` (from a radius column such as ``radius_arcsec``,
    ``radius`` or ``r_arcsec``, converted by its unit, arcsec without one;
    a bare ``r`` is an SDSS magnitude, not a radius: name it with
    ``radius_col``; NaN without one) and a ``name`` column (the
    name column if found, else the row number). Rows with a missing or invalid
    position are an error naming the file, the count and the first row; an
    empty file (0 bytes, or a CSV without a header line) is a ``ValueError``
    naming it. Eager.
    """
    units = {}
    if isinstance(catalogue, pd.DataFrame) or hasattr(catalogue, "to_pandas"):
        if not isinstance(catalogue, pd.DataFrame) and hasattr(catalogue, "colnames"):  # an astropy Table
            units = {c: (str(catalogue[c].unit) if getattr(catalogue[c], "unit", None) is not None else None)
                     for c in catalogue.colnames}
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
        from astropy.units import UnitsWarning

        with warnings.catch_warnings():  # unit spellings astropy does not know are read below
            warnings.simplefilter("ignore", UnitsWarning)
            try:
                tab = Table.read(path, format="fits")
            except (OSError, ValueError, TypeError, IndexError) as exc:  # not FITS, no table HDU, damaged
                raise ValueError(f"{path}: not a readable FITS table ({str(exc).splitlines()[0][:200]}); "
                                 "give a FITS, CSV or Parquet table with RA and Dec columns") from exc
        units = {c: (str(tab[c].unit) if tab[c].unit is not None else None) for c in tab.colnames}
        df = tab[[c for c in tab.colnames if tab[c].ndim == 1]].to_pandas()
    elif suffix.endswith(".parquet") or suffix.endswith(".pq"):
        try:
            df = pd.read_parquet(path)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise ValueError(f"{path}: not a readable Parquet table ({str(exc).splitlines()[0][:200]})") from exc
    elif any(suffix.endswith(s) for s in (".csv", ".csv.gz", ".txt", ".tsv")):
        sep = "\t" if suffix.endswith(".tsv") else ","
        text = _csv_text(path)
        try:
            with warnings.catch_warnings():  # rows longer than the header: not read as an index column
                warnings.simplefilter("error", pd.errors.ParserWarning)
                df = pd.read_csv(io.StringIO(text), sep=sep, index_col=False)
        except pd.errors.ParserWarning as exc:
            raise ValueError(f"{path}: not a readable CSV table (its rows have more fields than its header line "
                             f"names: {str(exc).strip().splitlines()[0][:160]})") from None
        except pd.errors.EmptyDataError as exc:
            raise ValueError(f"{path}: " + empty.format(f"no header line naming its columns: {exc}")) from exc
        except (pd.errors.ParserError, ValueError) as exc:  # ragged rows, broken quoting
            raise ValueError(f"{path}: not a readable CSV table ({str(exc).strip().splitlines()[-1][:200]})") from exc
        df = _ids_as_text(df, text, sep)
    else:
        raise ValueError(f"{path}: unknown catalogue format {suffix!r}; use FITS, CSV or Parquet")
    return _positions(df, path, units, ra_col, dec_col, name_col, radius_col)


def _csv_text(path: Path) -> str:
    """The text of a CSV/TSV catalogue (gzip too; UTF-8, a BOM allowed)
    without its comment lines (those starting with ``#``: a ``#`` inside a
    value, as in ``Cl 0001#2``, is kept). ``ValueError`` naming the file when
    it is not UTF-8 text."""
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
            lines = f.read().splitlines(keepends=True)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} at position "
                         f"{exc.start}); save the catalogue as UTF-8") from None
    except (OSError, EOFError) as exc:  # a damaged .gz
        raise ValueError(f"{path}: cannot read the catalogue ({exc})") from exc
    return "".join(line for line in lines if not line.lstrip().startswith("#"))


def _ids_as_text(df: pd.DataFrame, text: str, sep: str) -> pd.DataFrame:
    """``df`` with its integer columns that are written with leading zeros
    (observation IDs such as ``0001730201``, source names such as ``0012``)
    read again as text, as written: pandas' type guessing made them numbers."""
    ints = [c for c in df.columns if df[c].dtype.kind in "iu"]
    if not ints:
        return df
    raw = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, usecols=ints, keep_default_na=False)
    for c in ints:
        if raw[c].str.match(r"^[+-]?0\d").any():
            df[c] = raw[c]
    return df


def _positions(df, path, units, ra_col, dec_col, name_col, radius_col) -> pd.DataFrame:
    cols = [str(c) for c in df.columns]
    rc = _pick(cols, _RA_NAMES, ra_col, "RA", path, "ra_col= (command line: --ra-col)")
    dc = _pick(cols, _DEC_NAMES, dec_col, "Dec", path, "dec_col= (command line: --dec-col)")
    nc = _pick(cols, _NAME_NAMES, name_col, "name", path, "name_col= (xcube survey and catalogue: --name-col)")
    ra = _to_degrees(df[rc].to_numpy(), units.get(rc), path, rc, hours=True)
    dec = _to_degrees(df[dc].to_numpy(), units.get(dc), path, dc, hours=False)
    bad = ~np.isfinite(ra) | ~np.isfinite(dec)
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} rows have missing or invalid {rc}/{dc} "
                         f"(first row {int(np.flatnonzero(bad)[0])}); remove them")
    for vals, col, lo, hi, what in ((ra, rc, 0.0, 360.0, "RA"), (dec, dc, -90.0, 90.0, "Dec")):
        out_of = (vals < lo) | (vals > hi)
        if out_of.any():
            i = int(np.flatnonzero(out_of)[0])
            hint = (" (sexagesimal RA text is read as hours; mark degrees as 150d06m00s or give a unit)"
                    if what == "RA" and df[col].dtype.kind in "OUS" else "")
            raise ValueError(f"{path}: {int(out_of.sum())} rows have {what} (column {col!r}) outside "
                             f"[{lo:g}, {hi:g}] deg: first row {i}, {str(df[col].iloc[i])!r} = {vals[i]:.6g} deg{hint}")
    out = df.copy()
    out["ra"], out["dec"] = ra, dec
    out["name"] = df[nc].astype(str).str.strip().to_numpy() if nc else np.arange(len(df)).astype(str)
    rad = _pick(cols, _RADIUS_NAMES, radius_col, "radius", path, "radius_col=")
    if rad:
        from astropy import units as u

        runit = _angle_unit(units.get(rad), path, rad)
        given = df[rad]
        r = pd.to_numeric(given, errors="coerce").to_numpy(np.float64)
        out["radius_arcsec"] = (r * runit).to_value(u.arcsec) if runit is not None else r
        blank = given.isna().to_numpy() | (given.astype(str).str.strip() == "").to_numpy()
        neg = ~(out["radius_arcsec"].to_numpy() > 0) & ~blank
        if neg.any():  # (NaN: no radius given there, the default applies)
            i = int(np.flatnonzero(neg)[0])
            raise ValueError(f"{path}: {int(neg.sum())} rows have a radius (column {rad!r}) that is not a positive "
                             f"number: first row {i}, {str(df[rad].iloc[i])!r}; leave it empty for the default")
    else:
        out["radius_arcsec"] = np.full(len(df), np.nan)
    return out
