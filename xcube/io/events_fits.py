"""OGIP event files -> EventList (``xarray.Dataset`` with dim ``event``).

Uncompressed, time-sorted files are memory-mapped: each Dask chunk copies its
rows of one column out of a shared read-only mapping into native byte order
(:mod:`xcube.io.memmap`). Opening reads the headers, the GTI tables and, the
first time a file is seen, one streaming pass over TIME (ordering, NaN and
negative values; the result is recorded in the cache). Compressed or unsorted
files are converted once into the Zarr event cache (:mod:`xcube.io.cache`),
sorted by time, and opened from there.
"""
from __future__ import annotations

import bisect
import contextlib
import json
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
from astropy.io import fits
from dask.base import tokenize

from .. import gti as gtimod
from .._version import __version__
from ..missions import MissionProfile, detect, event_extensions
from .chunking import EVENT_CHUNK
from .fitsutil import (
    check_column_time_unit,
    column_scaling,
    find_column,
    has_value,
    header_float,
    is_compressed,
    merged_header,
    open_fits,
)
from .integrity import file_identity
from .memmap import (
    FitsColumn,
    check_times,
    count_null_rows,
    decode,
    load_scan_record,
    null_mask,
    register_source,
    save_scan_record,
    scan_times,
    source_of,
)
from .ogip import dead_time_cards, mjdref_offset, read_mjdref, read_timezero

__all__ = ["read_fits_header", "open_fits_events", "load_fits_events", "DEFAULT_CHUNK", "EventsMeta"]

log = logging.getLogger("xcube.io")

DEFAULT_CHUNK = EVENT_CHUNK  # events per Dask chunk (xcube.io.chunking)

# header keyword -> attr name
_ATTR_KEYS = {
    "OBS_ID": "obs_id",
    "OBJECT": "object",
    "TIMESYS": "timesys",
    "DATAMODE": "datamode",
    "SUBMODE": "submode",
    "RA_PNT": "ra_pnt",
    "DEC_PNT": "dec_pnt",
    "PA_PNT": "pa_pnt",
    "FILTER": "filter",
    "EXPIDSTR": "expid",
    "DATE-OBS": "date_obs",
    "DATE-END": "date_end",
    "TELESCOP": "telescop",
    "INSTRUME": "instrume",
    "TIMEREF": "timeref",
    "TIMEUNIT": "timeunit",
}


@dataclass
class EventsMeta:
    """What the header pass learns about an event file (no event data read)."""

    path: str
    profile: MissionProfile
    header: dict
    extname: str
    nrows: int
    columns: dict  # lower-case name -> (file name, 1-based index, tform)
    timezero: float
    compressed: str | None
    data_offset: int | None
    row_dtype: np.dtype | None
    gti: tuple
    ccd_gti: dict
    attrs: dict
    identity: tuple | None = None  # (size, mtime_ns, fingerprint) of the file when its header was read
    cache_reason: str | None = None  # why open_fits_events declined to memory-map the file
    vector_columns: dict = field(default_factory=dict)  # lower-case name -> (file name, TFORM) of skipped columns
    extver: int = 1  # EXTVER of the event table (files with several tables of one name)
    twin_index: int | None = None  # HDU number of the table when an earlier table has its EXTNAME and EXTVER too


def _mjdref(h: dict, path) -> float:
    """:func:`~xcube.io.ogip.read_mjdref` of the events' header, with a warning
    naming ``path`` when it has no MJDREF/MJDREFI (NaN)."""
    if not (has_value(h, "MJDREFI") or has_value(h, "MJDREF")):
        warnings.warn(f"{path}: no MJDREF/MJDREFI keyword with a value; mjdref attr set to NaN", stacklevel=3)
    return read_mjdref(h, path)


def check_time_unit(unit, where) -> None:
    """``ValueError`` naming ``where`` unless TIMEUNIT ``unit`` is seconds
    ('s', or absent). xcube times, GTIs, exposures and cache records are all
    seconds; a file in days is refused rather than half converted."""
    u = str(unit if unit is not None else "s").strip() or "s"
    if u.lower() != "s":
        raise ValueError(f"{where}: TIMEUNIT={u!r}: xcube needs times in seconds; convert TIME, the GTIs, TSTART/TSTOP "
                         "and TIMEZERO to seconds (x 86400 for days) and set TIMEUNIT = 's'")


def _scalar_columns(hdu: fits.BinTableHDU, path="event file") -> dict:
    """Columns with one element per row (vector, bit and string columns are skipped).

    FITS column names are case-insensitive: of two names that differ only in
    case (``TIME`` and ``time``) the upper-case one (else the first) is kept
    and the other ignored, with a warning naming both. Two columns of the very
    same name (which astropy cannot read as a table) raise ``ValueError``
    naming the file, the extension, the name and both TTYPEn."""
    out, first = {}, {}  # first: column name (exactly as written) -> its 1-based index, of every column
    for i, col in enumerate(hdu.columns, start=1):
        j = first.setdefault(col.name, i)
        if j != i:
            raise ValueError(
                f"{path}[{hdu.name}]: columns {j} and {i} are both named {col.name!r} (TTYPE{j}, TTYPE{i}); "
                f"FITS column names must be unique - rename one, e.g. fparkey {col.name}_2 '{path}[{hdu.name}]' "
                f"TTYPE{i} (or with fthedit)"
            )
        fmt = col.format
        code = fmt.format if hasattr(fmt, "format") else str(fmt)[-1]
        rep = getattr(fmt, "repeat", 1)
        if rep != 1 or code in ("X", "A", "P", "Q", "C", "M"):
            continue
        key = col.name.lower()
        if key in out:
            old = out[key][0]
            keep, drop = (col.name, old) if col.name.isupper() and not old.isupper() else (old, col.name)
            warnings.warn(
                f"{path}[{hdu.name}]: columns {old!r} and {col.name!r} differ only in case (FITS column names "
                f"are case-insensitive); using {keep!r} and ignoring {drop!r} - rename one of them",
                UserWarning, stacklevel=4,
            )
            if keep == old:
                continue
        out[key] = (col.name, i, code)
    return out


def _vector_columns(hdu: fits.BinTableHDU) -> dict:
    """Lower-case name -> (file name, TFORM) of the columns :func:`_scalar_columns`
    skips (vector, bit, string, variable-length), to name them in messages."""
    out = {}
    for col in hdu.columns:
        fmt = col.format
        code = fmt.format if hasattr(fmt, "format") else str(fmt)[-1]
        if getattr(fmt, "repeat", 1) != 1 or code in ("X", "A", "P", "Q", "C", "M"):
            out.setdefault(col.name.lower(), (col.name, str(fmt)))
    return out


# EventList variables that are not event columns: a file column of the same
# name is renamed ``<name>_file`` (as ENERGY becomes energy_file)
_RESERVED = ("gti_start", "gti_stop", "ccd_gti_ccd", "ccd_gti_start", "ccd_gti_stop")


def _reserved_renames(columns, profile: MissionProfile) -> dict:
    """Lower-case file column -> its variable name, for the columns whose name
    is one of the EventList's GTI variables (``gti_start`` ...)."""
    mapped = {v.lower() for v in profile.columns.values()}
    return {c: f"{c}_file" for c in columns if c in _RESERVED and c not in mapped}


def _warn_reserved_names(cols: dict, profile: MissionProfile, where) -> None:
    for c, new in _reserved_renames(cols, profile).items():
        warnings.warn(f"{where}: event column {cols[c][0]!r} has the name of the EventList's GTI variable "
                      f"{c!r}; it is kept as {new!r}", UserWarning, stacklevel=4)


def _find_events_hdu(hdul, names, path):
    names = (names,) if isinstance(names, str) else tuple(names)
    for name in names:
        for hdu in hdul[1:]:
            if isinstance(hdu, fits.BinTableHDU) and hdu.name.upper() == name.upper():
                return hdu
    have = [h.name for h in hdul]
    tables = [h.name for h in hdul[1:] if isinstance(h, fits.BinTableHDU)]
    raise ValueError(
        f"{path}: no {' or '.join(names)} extension (extensions: {have}); if one of the tables {tables} holds "
        "the events, name it: open_events(path, hdu=NAME) (command line: --hdu NAME); otherwise this is not an "
        "event file (light curves, spectra and GTI files are not event lists)"
    )


def _is_ogip_gti(hdu) -> bool:
    """True for a table that declares itself a GTI table (OGIP ``HDUCLAS1 =
    'GTI'``), or one named like one (``GTI7``, ``STDGTI03``, ``GTI_2``) with
    START and STOP columns, as re-written Chandra and HXMT files name their
    per-chip or per-box tables."""
    if not isinstance(hdu, fits.BinTableHDU):
        return False
    if str(hdu.header.get("HDUCLAS1", "")).strip().upper() == "GTI":
        return True
    names = {str(c).upper() for c in hdu.columns.names}
    return bool(re.fullmatch(r"(STD)?GTI[_\w]*", hdu.name.strip().upper())) and {"START", "STOP"} <= names


def _check_gti_time_system(gti_header, header, where) -> None:
    """Warn when a GTI table declares another TIMESYS or TIMEREF than the
    events (TT GTIs left beside barycentred TDB events are up to +-500 s
    off)."""
    for key in ("TIMESYS", "TIMEREF"):
        mine, theirs = gti_header.get(key), header.get(key)
        if mine is None or theirs is None or str(mine).strip().upper() == str(theirs).strip().upper():
            continue
        warnings.warn(f"{where}: {key} = {str(mine).strip()!r}, but the events have {key} = "
                      f"{str(theirs).strip()!r}: the GTIs are in another time frame (TT and TDB differ by up to "
                      "+-500 s); barycentre the GTI table with the events (e.g. barycorr), or pass gti= in the "
                      "events' frame", UserWarning, stacklevel=5)


def _warn_uneven_ccd_tables(per_ccd: dict, path) -> None:
    """Warn, naming the file, when the CCDs with GTI tables (``per_ccd``: CCD
    -> its tables' GTIs) have different numbers of them, e.g. an XMM flare GTI
    ``GTI0cc0n`` for some CCDs and not for the others: a table lost when a
    file was cut exactly at an HDU boundary leaves that CCD a longer good time,
    and nothing else shows it. Headers only (the tables already read)."""
    counts: dict = {}
    for c, sets in sorted(per_ccd.items()):
        counts.setdefault(len(sets), []).append(int(c))
    if len(counts) < 2:
        return
    groups = ", ".join(f"CCD{'s' if len(cs) > 1 else ''} {', '.join(map(str, cs))} "
                       f"{'have' if len(cs) > 1 else 'has'} {k}" for k, cs in sorted(counts.items()))
    warnings.warn(f"{path}: the per-CCD GTI tables are uneven: {groups} (e.g. a flare GTI GTI0cc0n missing for "
                  "some CCDs); a CCD without one of its tables keeps a longer good time - is the file complete "
                  "(cut short at an HDU boundary)?", UserWarning, stacklevel=4)


#: a TIME column coarser than this [s] at the file's times (a float32 TIME: 8 s at 1e8 s) is warned about
COARSE_TIME = 1.0e-3


def _warn_coarse_time(hdu, column: str, index: int, path, span_header=None) -> None:
    """Warn, naming the file, when a float32 (``E``) time column (events'
    TIME, a GTI table's START/STOP) cannot resolve :data:`COARSE_TIME` at
    the file's times: the spacing of float32 at the largest stored time (from
    TSTART/TSTOP of the HDU, else of ``span_header``, after TSCAL/TZERO).
    Header only."""
    if str(hdu.header.get(f"TFORM{index}", "")).strip().upper().lstrip("1") != "E":
        return
    scale, zero = column_scaling(hdu.header, index, path)
    ends = []
    for h in (hdu.header, span_header if span_header is not None else {}):
        ends = [abs(float(v)) for v in (h.get("TSTART"), h.get("TSTOP"))
                if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)]
        if ends:
            break
    if not ends or not scale:
        return
    step = float(np.spacing(np.float32(max(abs((t - zero) / scale) for t in ends)))) * abs(scale)
    if step > COARSE_TIME:
        effect = ("event times are rounded to that and events near a GTI boundary may fall outside it"
                  if span_header is None else "the good-time intervals are rounded to that, and so is the exposure")
        warnings.warn(f"{path}[{hdu.name}]: the {column} column is float32 (TFORM E): at times of {max(ends):.4g} s "
                      f"it resolves only {step:g} s, so {effect}; write it as float64 (TFORM D)", UserWarning,
                      stacklevel=4)


def _read_gtis(hdul, profile: MissionProfile, path, header) -> tuple[tuple, dict]:
    """Per-CCD and combined GTIs in the events' time frame.

    The GTI tables are the extensions named as ``profile.gti_extensions``
    says; when the file has none, the tables that declare themselves GTI
    tables (OGIP ``HDUCLAS1 = 'GTI'``, e.g. a NuSTAR GTI renamed ``STDGTI``)
    are used instead, with a warning naming them. Each table's own TIMEZERO
    (or, without one, the primary header's) is applied; its TIMEUNIT and the TUNIT of START/STOP must be seconds.
    A table with its own MJDREF (or MJDREFI + MJDREFF) other than the events'
    is moved into the events' frame by ``(MJDREF_gti - MJDREF_events) x 86400``
    s (:func:`xcube.io.ogip.mjdref_offset`, as for product GTIs), with a
    warning naming both; a table in another TIMESYS/TIMEREF is warned about
    once (:func:`_check_gti_time_system`) and read as it is.
    Tables with a CCD (a ``profile.gti_ccd_keywords`` keyword such as
    ``CCDID``/``CCD_ID``, or a name matching ``profile.gti_ccd_pattern`` such
    as ``STDGTInn``) are intersected per CCD; observation-wide tables (no CCD)
    are intersected with every CCD. The combined set is the union over CCDs
    (time when any CCD was live), which is what ``exposure`` and time binning
    use; the per-CCD sets are kept for CCD-resolved exposure. Returns
    ``((start, stop), ccd_gti, kind)`` with ``kind`` in ``{"ccd-union",
    "global", "tstart-tstop"}``.
    """
    tables = [h for h in hdul[1:] if isinstance(h, fits.BinTableHDU) and profile.is_gti_extension(h.name)]
    if not tables:
        tables = [h for h in hdul[1:] if _is_ogip_gti(h)]
        if tables:
            warnings.warn(
                f"{path}: no GTI extension matching {list(profile.gti_extensions)} (the {profile.name} profile's "
                f"names); using the GTI table(s) {[h.name for h in tables]} (HDUCLAS1 = 'GTI', or named GTI... with "
                "START/STOP columns) instead",
                stacklevel=3,
            )
    start_col, stop_col = profile.gti_columns
    per_ccd: dict = {}
    global_sets = []
    for hdu in tables:
        names = hdu.columns.names
        s, e = find_column(names, start_col), find_column(names, stop_col)
        if s is None or e is None:
            warnings.warn(
                f"{path}[{hdu.name}]: GTI extension without {start_col}/{stop_col} columns "
                f"(columns: {names}); ignored",
                stacklevel=4,
            )
            continue
        where = f"{path}[{hdu.name}]"
        check_time_unit(hdu.header.get("TIMEUNIT", header.get("TIMEUNIT")), where)
        for col in (s, e):
            check_column_time_unit(hdu.header, names.index(col) + 1, col, where)
            _warn_coarse_time(hdu, col, names.index(col) + 1, path, span_header=header)
        # its own TIMEZERO, else the primary header's (which the events inherit too), never the events'
        tz = read_timezero(merged_header(hdul[0].header, hdu.header), where)
        _check_gti_time_system(hdu.header, header, where)
        shift = mjdref_offset(hdu.header, header, where, path)
        if shift:
            warnings.warn(f"{where}: the GTI table's MJDREF {read_mjdref(hdu.header, where)!r} differs from the "
                          f"events' MJDREF {read_mjdref(header, path)!r}; its START/STOP are moved into the events' "
                          f"frame by {shift:+.6f} s ((MJDREF_gti - MJDREF_events) x 86400)", UserWarning, stacklevel=4)
        tz += shift
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = np.asarray(hdu.data)  # the stored values, decoded here (as event columns: scaled K columns too)
        start, stop = (decode(raw[c], np.float64, *column_scaling(hdu.header, names.index(c) + 1, where), tz)
                       for c in (s, e))
        g = gtimod.normalize(start, stop, source=where)
        try:
            ccd = profile.ccd_of_gti_extension(hdu.name, hdu.header)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        if ccd is None:
            global_sets.append(g)
        else:
            per_ccd.setdefault(ccd, []).append(g)
    _warn_uneven_ccd_tables(per_ccd, path)
    ccd_gti = {c: gtimod.intersection(*sets, *global_sets) for c, sets in sorted(per_ccd.items())}
    if ccd_gti:
        combined, kind = gtimod.union(*ccd_gti.values()), "ccd-union"
    elif global_sets:
        combined, kind = gtimod.intersection(*global_sets), "global"
    else:
        kind = "tstart-tstop"
        t0, t1 = header.get("TSTART"), header.get("TSTOP")
        what = (f"no GTI extension matching {list(profile.gti_extensions)}" if not tables
                else f"no GTI extension with {start_col}/{stop_col} columns (ignored: {[h.name for h in tables]})")
        short = "no GTI extension" if not tables else f"no GTI extension with {start_col}/{stop_col} columns"
        if t0 is None or t1 is None:
            raise ValueError(f"{path}: {short} and no TSTART/TSTOP keywords; cannot define good time")
        tz = read_timezero(header, path)
        t0, t1 = header_float(header, "TSTART", path), header_float(header, "TSTOP", path)
        if not (np.isfinite(t0) and np.isfinite(t1)):
            raise ValueError(f"{path}: {short}, and TSTART = {t0!r} / TSTOP = {t1!r} are not finite; "
                             "cannot define good time - fix the header")
        warnings.warn(
            f"{path}: {what}; using TSTART-TSTOP "
            f"({t0} - {t1}) as the only good interval",
            stacklevel=3,
        )
        combined = gtimod.normalize([t0 + tz], [t1 + tz], source=f"{path} TSTART-TSTOP")
    return combined, ccd_gti, kind


def _table_layout(hdu, path, nrows: int) -> tuple:
    """``(compression, data offset [bytes], big-endian row dtype)`` of an event
    table: compression is ``"gzip"``/``"bzip2"`` (offset and dtype None),
    ``"layout"`` when the rows cannot be memory-mapped, else None. Raises
    ``OSError`` for a file shorter than its table, ``ValueError`` when the
    TFORM widths do not sum to NAXIS1 in a table without variable-length
    arrays (a damaged header: every column would be read from the wrong bytes)."""
    comp = is_compressed(path)
    row_dtype = hdu.columns.dtype.newbyteorder(">")  # FITS tables are big-endian
    naxis1 = int(hdu.header["NAXIS1"])
    if row_dtype.itemsize != naxis1:
        tforms = [str(c.format) for c in hdu.columns]
        if not any(t.lstrip("0123456789")[:1] in ("P", "Q") for t in tforms):
            raise ValueError(
                f"{path}[{hdu.name}]: the TFORM widths sum to {row_dtype.itemsize} bytes but NAXIS1 is {naxis1} "
                f"(TFORM1-{len(tforms)}: {' '.join(tforms)}): a damaged header, a TFORMn or NAXIS1 is wrong - fix it "
                "(e.g. with fthedit) or get a fresh copy"
            )
        if comp is None:  # unusual layout with variable-length arrays: read through astropy into the cache
            log.info("%s: row layout not memory-mappable (NAXIS1=%s)", path, naxis1)
            comp = "layout"
    if comp in ("gzip", "bzip2"):
        return comp, None, None
    data_offset = int(hdu.fileinfo()["datLoc"])
    need = data_offset + nrows * int(hdu.header["NAXIS1"])
    have = Path(path).stat().st_size
    if have < need:
        raise OSError(f"{path}: truncated file: {hdu.name} needs {need} bytes, the file has {have}; download it again")
    return comp, data_offset, row_dtype


def _named_hdu(hdul, hdu, path):
    """``(table, twin_index)``: the table extension ``hdu`` of an open file (a
    name, case-insensitive; ``"NAME,VER"`` or ``(name, ver)`` for the table of
    that EXTVER; or an index) and, when ``hdu`` is an index and an earlier
    table has the same EXTNAME and EXTVER (which a name cannot tell apart),
    that index; else None."""
    if isinstance(hdu, str) and "," in hdu:
        name, _, ver = hdu.rpartition(",")
        if ver.strip().lstrip("+-").isdigit():
            hdu = (name, int(ver))
    if isinstance(hdu, tuple):
        if len(hdu) != 2:
            raise ValueError(f"{path}: hdu={hdu!r}: give (name, EXTVER), a name or an index")
        name, ver = str(hdu[0]).strip().upper(), int(hdu[1])
        for h in hdul[1:]:
            if isinstance(h, fits.BinTableHDU) and h.name.strip().upper() == name and h.ver == ver:
                return h, None
        same = [i for i, h in enumerate(hdul) if isinstance(h, fits.BinTableHDU) and h.name.strip().upper() == name]
        hint = (f"; the tables named {name} are HDUs {', '.join(map(str, same))}: pass hdu= the HDU number "
                f"(--hdu {same[-1]})" if len(same) > 1 else "")
        raise ValueError(f"{path}: no table extension {name} with EXTVER = {ver} (extensions: "
                         f"{[(h.name, h.ver) for h in hdul[1:]]}){hint}")
    if isinstance(hdu, (int, np.integer)):
        if not 0 < int(hdu) < len(hdul) or not isinstance(hdul[int(hdu)], fits.BinTableHDU):
            raise ValueError(f"{path}: extension {int(hdu)} is not a binary table (extensions: "
                             f"{[h.name for h in hdul]}); pass hdu= the event table's name or index")
        index = int(hdu)
        table = hdul[index]
        name = table.name.strip().upper()
        twin = any(isinstance(h, fits.BinTableHDU) and h.ver == table.ver and h.name.strip().upper() == name
                   for h in hdul[1:index])
        return table, index if twin else None
    for h in hdul[1:]:
        if isinstance(h, fits.BinTableHDU) and h.name.strip().upper() == str(hdu).strip().upper():
            return h, None
    raise ValueError(f"{path}: no table extension named {hdu!r} (extensions: {[h.name for h in hdul]}); "
                     "pass hdu= one of those names")


#: HDUCLAS1 of OGIP tables that hold binned data, not events
_BINNED_KINDS = frozenset({"ARRAY", "LIGHTCURVE", "SPECTRUM", "GTI", "IMAGE"})


def _refuse_binned(header, path) -> None:
    """``ValueError`` naming the file when the table named by ``hdu=`` is a
    binned one (OGIP ``HDUCLAS1`` ARRAY, LIGHTCURVE, SPECTRUM, GTI or IMAGE;
    RXTE's ``XTE_SA`` science array, e.g. Standard2): its rows are time bins
    of many photons each, and counting rows would count bins."""
    kind = str(header.get("HDUCLAS1", "") or "").strip().upper()
    name = str(header.get("EXTNAME", "") or "").strip()
    if kind in _BINNED_KINDS or name.upper() == "XTE_SA":
        raise ValueError(f"{path}[{name or 'the table'}]: a binned table"
                         + (f" (HDUCLAS1 = {kind!r})" if kind in _BINNED_KINDS else
                            " (an RXTE science array, e.g. Standard2)")
                         + ", not an event list: each row is a time bin holding many photons, so counting rows "
                         "would count bins; give an event table (EVENTS, a decoded XTE_SE), or read a light curve "
                         "with xcube.read_lightcurve")


def _events_hdu(hdul, path, instrument, hdu):
    """(event table, merged header, profile, twin index): the table ``hdu``
    when given, else the first table with a known event-extension name. The
    twin index is the table's HDU number when an earlier table has its
    EXTNAME and EXTVER too (only a given index can pick such a table;
    :func:`_named_hdu`), else None."""
    prim = hdul[0].header
    if hdu is not None:
        table, twin_index = _named_hdu(hdul, hdu, path)
        _refuse_binned(table.header, path)
        header = merged_header(prim, table.header)
        return table, header, detect(header, path=path, instrument=instrument), twin_index
    # find an event table by any known extension name, then detect the mission
    known = event_extensions()
    table = next(
        (h for name in known for h in hdul[1:] if isinstance(h, fits.BinTableHDU) and h.name.upper() == name),
        None,
    )
    header = merged_header(prim, table.header if table is not None else fits.Header())
    if table is None and instrument is None and not (header.get("TELESCOP") or header.get("INSTRUME")):
        _find_events_hdu(hdul, known, path)  # raises: no event table, no mission keywords
    profile = detect(header, path=path, instrument=instrument)
    if table is None or table.name.upper() not in profile.events_extensions:
        table = _find_events_hdu(hdul, profile.events_extensions, path)
        header = merged_header(prim, table.header)
    twins = [h for h in hdul[1:] if h is not table and isinstance(h, fits.BinTableHDU)
             and h.name.upper() == table.name.upper()]
    if twins:
        if any(h.ver == table.ver for h in twins):  # "NAME,VER" cannot tell them apart: the HDU number can
            index = next(i for i, h in enumerate(hdul) if h is twins[0])
            choose = f"hdu={index} (--hdu {index}), the HDU number"
        else:
            choose = f"hdu=\"{table.name},{twins[0].ver}\" (--hdu {table.name},{twins[0].ver})"
        warnings.warn(f"{path}: {len(twins) + 1} event tables named {table.name} (EXTVER "
                      f"{', '.join(str(h.ver) for h in [table, *twins])}); reading the first only "
                      f"(EXTVER {table.ver}); choose another with {choose}", UserWarning, stacklevel=4)
    return table, header, profile, None  # (the first table of its name: no earlier twin)


def read_fits_header(path, instrument: str | None = None, hdul=None, hdu=None) -> EventsMeta:
    """Read headers and GTIs of an event file (eager, no event column data).

    ``hdul``: the file already opened with :func:`~xcube.io.fitsutil.open_fits`
    (avoids decompressing a gzip file twice); it is left open. ``hdu``: the
    name (case-insensitive) or index of the event table when it is not one
    of the mission's standard names (Stingray's ``EVENTSxy``, AstroSat
    LAXPC's ``event file``).
    """
    path = str(path)
    identity = file_identity(path)
    with (open_fits(path) if hdul is None else contextlib.nullcontext(hdul)) as hdul:
        hdu, header, profile, twin_index = _events_hdu(hdul, path, instrument, hdu)
        check_time_unit(header.get("TIMEUNIT"), path)
        nrows = int(hdu.header["NAXIS2"])
        cols = _scalar_columns(hdu, path)
        vectors = _vector_columns(hdu)
        tname = profile.columns.get("time", "TIME")
        tcol = find_column([c[0] for c in cols.values()], tname)
        if tcol is None and tname.lower() in vectors:
            name, tform = vectors[tname.lower()]
            raise ValueError(f"{path}[{hdu.name}]: the {name} column is a vector or non-numeric column "
                             f"(TFORM {tform!r}); an event list needs one numeric time stamp per event")
        if tcol is None:
            raise ValueError(
                f"{path}[{hdu.name}]: no {tname} column (columns: {hdu.columns.names}); an event list needs "
                "one time stamp per event - is this a binned product?"
            )
        check_column_time_unit(hdu.header, cols[tcol.lower()][1], tcol, f"{path}[{hdu.name}]")
        _warn_coarse_time(hdu, tcol, cols[tcol.lower()][1], path)
        _warn_reserved_names(cols, profile, f"{path}[{hdu.name}]")
        if nrows == 0:
            raise ValueError(
                f"{path}[{hdu.name}]: empty event list (NAXIS2 = 0); no events survived the screening "
                "that produced this file, so there is nothing to open"
            )
        comp, data_offset, row_dtype = _table_layout(hdu, path, nrows)
        gti, ccd_gti, gti_kind = _read_gtis(hdul, profile, path, header)
    attrs = _attrs(header, profile, path, hdu_name=hdu.name, cols=cols)
    # kept with the events (a Zarr store of them too; "{}": the file had none), never re-read from whatever file
    # sits at the source path later
    attrs["dead_time_keywords"] = json.dumps(dead_time_cards(header))
    attrs["gti_kind"] = gti_kind
    timezero = read_timezero(header, path)  # (TIMEZERO, or the split TIMEZERI + TIMEZERF)
    # TSTART/TSTOP as the times are read (TIMEZERO added); without them the GTI span, which has it already
    for key, fallback in (("tstart", gti[0][:1]), ("tstop", gti[1][-1:])):
        value = header_float(header, key.upper(), path, np.nan) + timezero
        attrs[key] = value if np.isfinite(value) else (float(fallback[0]) if fallback.size else np.nan)
    return EventsMeta(
        path=path,
        profile=profile,
        header=header,
        extname=hdu.name,
        extver=hdu.ver,
        twin_index=twin_index,
        nrows=nrows,
        columns=cols,
        timezero=timezero,
        compressed=comp,
        data_offset=data_offset,
        row_dtype=row_dtype,
        gti=gti,
        ccd_gti=ccd_gti,
        attrs=attrs,
        identity=identity,
        vector_columns=vectors,
    )


def _attrs(h: dict, profile: MissionProfile, path, hdu_name, cols) -> dict:
    a = {
        "mission": profile.mission,
        "instrument": profile.instrument,
        "profile": profile.name,
        "source": str(Path(path).resolve()),
        "mjdref": _mjdref(h, path),
        "xcube_version": __version__,
    }
    if has_value(h, "MJDREFI"):  # keep the exact integer and fractional parts too
        a["mjdrefi"] = int(header_float(h, "MJDREFI", path))
        a["mjdreff"] = header_float(h, "MJDREFF", path, 0.0)
    for key in ("RADESYS", "RADECSYS"):
        if h.get(key):
            a["RADESYS"] = str(h[key]).strip()
            break
    if h.get("EQUINOX") is not None:
        a["EQUINOX"] = header_float(h, "EQUINOX", path)
    for key, name in _ATTR_KEYS.items():
        if key in h and h[key] is not None:
            v = h[key]
            a[name] = v.strip() if isinstance(v, str) else v
    a.setdefault("obs_id", "")
    a.setdefault("object", "")
    a.setdefault("timesys", "TT")
    # WCS of the X/Y sky columns, as plain image-WCS keywords (axis 1 = x, axis 2 = y)
    index, source_keys = {}, {}
    for axis, key in ((1, "x"), (2, "y")):
        fname = profile.columns.get(key, key.upper())
        entry = cols.get(fname.lower())
        if entry is None:
            continue
        i = index[axis] = entry[1]
        for src, dst in (
            ("TCTYP", "CTYPE"),
            ("TCRVL", "CRVAL"),
            ("TCRPX", "CRPIX"),
            ("TCDLT", "CDELT"),
            ("TCUNI", "CUNIT"),
        ):
            if f"{src}{i}" in h:
                v = h[f"{src}{i}"]
                a[f"{dst}{axis}"] = str(v).strip() if src in ("TCTYP", "TCUNI") else header_float(h, f"{src}{i}", path)
                source_keys[f"{dst}{axis}"] = f"{src}{i} (column {fname})"
        lo, hi = _limits(h, i, fname, path)
        if lo is not None:
            a[f"{key}_min"] = lo
        if hi is not None:
            a[f"{key}_max"] = hi
    _default_pixel_size(a, profile, cols)
    if len(index) == 2:
        _sky_rotation(h, index, a, source_keys, path)
        _check_sky_wcs(a, source_keys, path)
        _default_pixel_size(a, profile, cols)  # after an unusable WCS was left out
    return a


def _default_pixel_size(a: dict, profile: MissionProfile, cols) -> None:
    """``CDELT1/2`` [deg] from the profile's sky pixel when the file gives none (pixel scale only, no WCS)."""
    if "CDELT1" not in a and "x" in cols:
        a["CDELT1"] = -profile.pixel_arcsec / 3600.0
        a["CDELT2"] = profile.pixel_arcsec / 3600.0


_WCS_ATTRS = tuple(f"{k}{i}" for k in ("CTYPE", "CRVAL", "CRPIX", "CDELT", "CUNIT") for i in (1, 2)) + tuple(
    f"PC{i}_{j}" for i in (1, 2) for j in (1, 2))


def _matrix(h: dict, prefixes, index: dict, path):
    """``{(i, j): (value, keyword)}`` of the pixel-list matrix keywords
    ``<prefix>n_k`` present for the X (i/j = 1) and Y (2) columns."""
    out = {}
    for i in (1, 2):
        for j in (1, 2):
            for p in prefixes:
                k = f"{p}{index[i]}_{index[j]}"
                if k in h:
                    out[i, j] = (header_float(h, k, path), k)
                    break
    return out


def _sky_rotation(h: dict, index: dict, a: dict, source_keys: dict, path) -> None:
    """Add the rotation of the X/Y columns' pixel-list WCS to the attrs ``a``
    as ``PC1_1``...``PC2_2`` (axis 1 = x, 2 = y; only when it is not the
    identity, so unrotated files keep their attrs). Read as WCSLIB does
    (FITS WCS paper I, pixel lists): the PC matrix ``TPn_ka``/``TPCn_ka``,
    else the CD matrix ``TCn_ka``/``TCDn_ka`` (split into ``CDELTi`` =
    +-the row norm and ``PC``; TCDLTn are then ignored), else ``TCROTn`` of
    the latitude column (AIPS CROTA2: PC = [[cos, -sin L], [sin / L, cos]],
    L = CDELT2 / CDELT1 for x = longitude)."""
    pc = _matrix(h, ("TP", "TPC"), index, path)
    cd = _matrix(h, ("TC", "TCD"), index, path) if not pc else {}
    m = None
    if pc:
        m = [[pc[i, j][0] if (i, j) in pc else float(i == j) for j in (1, 2)] for i in (1, 2)]
        for (i, j), (_, k) in pc.items():
            source_keys[f"PC{i}_{j}"] = k
    elif cd:
        c = [[cd[i, j][0] if (i, j) in cd else 0.0 for j in (1, 2)] for i in (1, 2)]
        m = [[0.0, 0.0], [0.0, 0.0]]
        for i in (1, 2):
            norm = float(np.hypot(*c[i - 1]))
            keys = ", ".join(cd[i, j][1] for j in (1, 2) if (i, j) in cd) or f"TC{index[i]}_ka"
            if not (np.isfinite(norm) and norm > 0):
                norm = 0.0
            cdelt = -norm if c[i - 1][i - 1] < 0 else norm
            a[f"CDELT{i}"] = cdelt
            source_keys[f"CDELT{i}"] = source_keys[f"PC{i}_1"] = source_keys[f"PC{i}_2"] = keys
            m[i - 1] = [v / cdelt if cdelt else 0.0 for v in c[i - 1]]
    else:
        rot = {i: header_float(h, f"TCROT{index[i]}", path, 0.0) for i in (1, 2)}
        if rot[1] or rot[2]:
            ctype = [str(a.get(f"CTYPE{i}", "")).upper() for i in (1, 2)]
            lat = 1 if ctype[0][:4] in ("DEC-", "GLAT", "ELAT", "SLAT", "HLAT") or ctype[0][1:4] == "LAT" else 2
            lng = 3 - lat
            if rot[lng] and rot[lng] != rot[lat]:
                warnings.warn(f"{path}: TCROT{index[lng]} = {rot[lng]:g} on the longitude column is ignored; the "
                              f"rotation is TCROT{index[lat]} of the latitude column ({rot[lat]:g} deg), as in "
                              "WCSLIB (FITS WCS convention)", UserWarning, stacklevel=4)
            rho = np.radians(rot[lat])
            cdelt = {i: a.get(f"CDELT{i}") for i in (1, 2)}
            if rho and cdelt[1] and cdelt[2]:
                lam = float(cdelt[lat]) / float(cdelt[lng])
                m = [[0.0, 0.0], [0.0, 0.0]]
                m[lng - 1][lng - 1] = m[lat - 1][lat - 1] = float(np.cos(rho))
                m[lng - 1][lat - 1] = -float(np.sin(rho)) * lam
                m[lat - 1][lng - 1] = float(np.sin(rho)) / lam
                for i in (1, 2):
                    for j in (1, 2):
                        source_keys[f"PC{i}_{j}"] = f"TCROT{index[lat]}"
    if m is not None and m != [[1.0, 0.0], [0.0, 1.0]]:
        for i in (1, 2):
            for j in (1, 2):
                a[f"PC{i}_{j}"] = float(m[i - 1][j - 1])


def _check_sky_wcs(a: dict, source_keys: dict, path) -> None:
    """Check the X/Y column WCS in the attrs ``a``: finite values, non-zero
    CDELT, a regular PC matrix, and one WCSLIB accepts. An unusable WCS is
    removed from ``a`` (timing products still work) with a warning naming the
    file and keyword; ``a["wcs_problem"]`` keeps the reason, which
    :func:`xcube.wcs` repeats."""
    from ..skycoords import has_wcs, wcs

    if not has_wcs(a):
        return
    problem = None
    for k in ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CDELT1", "CDELT2") + tuple(
            k for k in _WCS_ATTRS if k.startswith("PC") and k in a):
        v = float(a[k])
        if not np.isfinite(v):
            problem = f"{source_keys.get(k, k)} = {v!r} is not finite"
            break
        if k.startswith("CDELT") and v == 0.0:
            problem = f"{source_keys.get(k, k)} = 0: the pixel size is zero"
            break
    if problem is None and "PC1_1" in a:
        det = float(a["PC1_1"]) * float(a["PC2_2"]) - float(a["PC1_2"]) * float(a["PC2_1"])
        if abs(det) < 1e-12:
            keys = sorted({source_keys.get(f"PC{i}_{j}", f"PC{i}_{j}") for i in (1, 2) for j in (1, 2)})
            problem = f"the rotation matrix ({', '.join(keys)}) is singular (determinant {det:.3g})"
    if problem is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wcs(a)
        except Exception as exc:  # WCSLIB's errors (unknown projection, ...) have several types
            keys = ", ".join(source_keys.get(f"CTYPE{i}", f"CTYPE{i}") for i in (1, 2))
            problem = f"WCSLIB rejects the column WCS ({keys} ...): {' '.join(str(exc).split())}"
    if problem is None:
        return
    for k in _WCS_ATTRS:
        a.pop(k, None)
    a["wcs_problem"] = problem
    warnings.warn(f"{path}: sky WCS of the X/Y columns unusable: {problem}; sky coordinates (xcube.wcs, the WCS "
                  "of images, sky regions, the transient search) are not available - fix the keyword in the header "
                  "(e.g. with fthedit)", UserWarning, stacklevel=4)


def _limits(h: dict, index: int, name: str, path) -> tuple:
    """(TLMINn, TLMAXn) of a column as floats (None when absent); ``ValueError``
    naming the file and column when one is not a number or TLMIN > TLMAX."""
    lo = header_float(h, f"TLMIN{index}", path)
    hi = header_float(h, f"TLMAX{index}", path)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(
            f"{path}: column {name} has TLMIN{index} = {lo:g} > TLMAX{index} = {hi:g}, an empty range of legal "
            f"values; fix TLMIN{index}/TLMAX{index} in the header (e.g. with fthedit)"
        )
    return lo, hi


def null_values(meta: "EventsMeta") -> dict:
    """Variable (``x``, ``y``, ``pi``) -> its column's null value, for the
    events dropped at open (:func:`_drop_null_events`): for X/Y NaN in a
    floating-point column (``E``/``D``: NaN is their null; infinite values
    count as null too, see :func:`xcube.io.memmap.null_mask`), else its TNULLn
    [column units, after TSCAL/TZERO] for the integer columns that declare one
    (X, Y and PI: a null PI is no channel). A float PI column has none here:
    its NaN stays, as NaN energy. Header only; a file without TNULL (or float
    X/Y) gives ``{}`` and no null check."""
    out = {}
    for var in ("x", "y", "pi"):
        entry = meta.columns.get(meta.profile.columns.get(var, var.upper()).lower())
        if entry is not None and entry[2] in ("E", "D"):
            if var != "pi":
                out[var] = float("nan")
            continue
        if entry is None or f"TNULL{entry[1]}" not in meta.header:
            continue
        tnull = header_float(meta.header, f"TNULL{entry[1]}", meta.path)
        scale, zero = column_scaling(meta.header, entry[1], meta.path)
        out[var] = tnull * scale + zero
    return out


#: bits of the FITS integer column codes
_INT_BITS = {"B": 8, "I": 16, "J": 32, "K": 64}


def _out_dtype(code: str, scale: float, zero: float) -> np.dtype:
    """The dtype xcube gives a column of FITS code ``code`` with TSCALn
    ``scale`` and TZEROn ``zero``, the same on every read path: the code's
    own type when unscaled; int64 for an integer column with a whole TZERO
    (the unsigned conventions TZERO = 2**(bits-1) and plain offsets), whose
    values are then exact; uint64 for ``K`` with TZERO = 2**63; float64 for
    any other scaling (a fractional TZERO or TSCAL != 1)."""
    base = {"L": bool, "B": np.uint8, "I": np.int16, "J": np.int32, "K": np.int64, "E": np.float32, "D": np.float64}
    if code == "L":
        return np.dtype(bool)
    if scale == 1.0 and zero == 0.0:
        return np.dtype(base[code])
    if scale == 1.0 and code in _INT_BITS and float(zero).is_integer():
        if code == "K" and zero == 2.0**63:
            return np.dtype(np.uint64)
        if abs(zero) + 2.0 ** (_INT_BITS[code] - 1) < 2.0**63:
            return np.dtype(np.int64)
    return np.dtype(np.float64)


def _variable_names(meta: EventsMeta) -> dict:
    """lower-case file column -> variable name (time/x/y/pi renamed per
    profile). A file column named ENERGY that the profile does not map is
    renamed ``energy_file`` so that ``energy`` is always keV from PI; columns
    named like the GTI variables (``GTI_START`` ...) become ``gti_start_file``
    ... (warned by :func:`read_fits_header`)."""
    rename = {v.lower(): k for k, v in meta.profile.columns.items()}
    rename.update(_reserved_renames(meta.columns, meta.profile))
    out = {c: rename.get(c, c) for c in meta.columns}
    if "pi" in out.values():
        out = {c: ("energy_file" if v == "energy" and "energy" not in meta.profile.columns else v)
               for c, v in out.items()}
    return out


def _decoding(meta: EventsMeta) -> dict:
    """Variable name -> ``(file column, (dtype, scale, zero, add, logical))``:
    how :func:`xcube.io.memmap.decode` turns the column's raw values into the
    variable (TIME: float64 plus TIMEZERO; others :func:`_out_dtype`). No I/O."""
    names = _variable_names(meta)
    out = {}
    for col, (fname, idx, code) in meta.columns.items():
        scale, zero = column_scaling(meta.header, idx, meta.path)
        var = names[col]
        dtype = np.dtype(np.float64) if var == "time" else _out_dtype(code, scale, zero)
        out[var] = fname, (dtype, scale, zero, meta.timezero if var == "time" else 0.0, code == "L")
    return out


def fits_columns(meta: EventsMeta) -> dict:
    """Variable name -> :class:`~xcube.io.memmap.FitsColumn` over the file (no I/O)."""
    return {var: FitsColumn(meta.path, meta.data_offset, meta.nrows, meta.row_dtype, fname, *how,
                            identity=meta.identity)
            for var, (fname, how) in _decoding(meta).items()}


def _scan_record_path(meta: EventsMeta, cache) -> Path:
    from .cache import cache_dir, cache_key, entry_name

    key = cache_key(meta.path, "scan", meta.timezero, meta.extname, *((meta.extver,) if meta.extver != 1 else ()),
                    *(("hdu", meta.twin_index) if meta.twin_index is not None else ()))
    return cache_dir(cache) / "scan" / entry_name(Path(meta.path).name, key, ".json")


def time_scan(meta: EventsMeta, arrays: dict, cache=None) -> dict:
    """Result of the TIME check of an uncompressed file (see
    :func:`xcube.io.memmap.scan_times`) and, when X/Y/PI have a null value
    (:func:`null_values`: TNULL, NaN of float X/Y), the number of events
    whose X, Y or PI is null (``n_null``); from the cache record when the file is
    unchanged (and the record checked the same null values), else by one
    streaming pass (then recorded)."""
    record = _scan_record_path(meta, cache)
    res = load_scan_record(record)
    checked = {var: repr(value) for var, value in null_values(meta).items() if var in arrays}
    if res is not None and res.get("nrows") == meta.nrows and res.get("null_values") == checked and \
            isinstance(res.get("sorted"), bool) and isinstance(res.get("n_null"), int) and \
            all(isinstance(res.get(k), (int, float)) for k in ("tmin", "tmax")):
        return res
    res = scan_times(arrays["time"], meta.path)
    nulls = [(arrays[var], value) for var, value in null_values(meta).items() if var in arrays]
    res["n_null"] = count_null_rows(nulls) if nulls else 0
    res["null_values"] = checked
    save_scan_record(record, res)
    return res


def open_fits_events(meta: EventsMeta, chunks: int | None = None, cache=None):
    """Lazy EventList over a memory-mapped, uncompressed FITS file.

    Returns None (and sets ``meta.cache_reason``) when the file is not
    time-sorted or has events whose X, Y or PI is null - the column's TNULL, or
    NaN/inf in a float X/Y column (:func:`null_values`; the caller then converts
    it into the Zarr cache, sorted, without those events). The first open of
    a file reads TIME (and X/Y/PI when they have a null value) once, chunk by
    chunk, to check it (NaN, infinite or negative times
    raise ``ValueError``); the result is remembered in the cache, so later
    opens read headers only.
    """
    chunks = int(chunks or DEFAULT_CHUNK)
    arrays = fits_columns(meta)
    scan = time_scan(meta, arrays, cache=cache)
    if not scan["sorted"] or scan.get("n_null"):
        meta.cache_reason = "not time-sorted" if not scan["sorted"] else (
            f"{scan['n_null']} events with {_null_text(meta)} to drop")
        return None
    warn_outside_good_time(meta, scan["tmin"], scan["tmax"], meta.nrows)  # (the scan's times include TIMEZERO)
    warn_far_outside(meta, arrays["time"], scan["tmin"], scan["tmax"])
    ident = (str(Path(meta.path).resolve()), meta.identity, meta.data_offset, chunks)  # inode, ctime, fingerprint
    data = {
        var: da.from_array(arr, chunks=(chunks,), lock=False, asarray=False, meta=np.empty(0, arr.dtype),
                           name=f"xcube-fits-{var}-{tokenize(ident, var, arr.dtype.str, arr.add)}")
        for var, arr in arrays.items()
    }
    for var, arr in arrays.items():
        register_source(data[var].name, arr)
    return build_dataset(meta, data)


def warn_outside_good_time(meta: EventsMeta, tmin: float, tmax: float, n: int) -> None:
    """Warn, naming the file, when its good time is empty or all its ``n``
    events (times ``tmin``..``tmax`` [s], TIMEZERO applied) lie before the
    first or after the last good interval: every product would be empty."""
    start, stop = meta.gti
    if not np.size(start):
        warnings.warn(f"{meta.path}: the good time is empty (the GTI tables leave no interval); exposure is 0 and "
                      "every light curve, image and spectrum of this file will be empty", UserWarning, stacklevel=4)
    elif tmax < start[0] or tmin >= stop[-1]:
        warnings.warn(f"{meta.path}: all {n} events ({tmin:.1f}-{tmax:.1f} s) lie outside the good time "
                      f"({start[0]:.1f}-{stop[-1]:.1f} s); products of this file will be empty - are the GTIs "
                      "those of another file or time frame?", UserWarning, stacklevel=4)


#: events more than this many observation spans before or after the observation are damaged times
FAR_SPANS = 1.0e4
#: no mission time [s] reaches this (31,700 years after MJDREF): later events are damaged times
FAR_TIME = 1.0e12


def far_limits(meta: EventsMeta) -> tuple[float, float] | None:
    """``(lo, hi)`` [s, TIMEZERO applied]: event times outside are far outside
    the observation - more than :data:`FAR_SPANS` x its span (the first GTI
    start or TSTART to the last GTI stop or TSTOP, at least 1 s) before or
    after it, or after :data:`FAR_TIME`. None without a finite GTI or
    TSTART/TSTOP."""
    start, stop = meta.gti
    ends = ([float(start[0]), float(stop[-1])] if np.size(start) else []) + [
        float(meta.attrs.get("tstart", np.nan)), float(meta.attrs.get("tstop", np.nan))]
    ends = [e for e in ends if np.isfinite(e)]
    if not ends:
        return None
    lo, hi = min(ends), max(ends)
    margin = FAR_SPANS * max(hi - lo, 1.0)
    return lo - margin, (min(hi + margin, FAR_TIME) if hi < FAR_TIME else hi + margin)


def warn_far_outside(meta: EventsMeta, times, tmin: float, tmax: float) -> None:
    """Warn, naming the file, how many of the time-sorted ``times`` (a numpy
    array or :class:`~xcube.io.memmap.FitsColumn`, TIMEZERO applied; first
    and last ``tmin``, ``tmax`` [s], from the TIME scan) lie outside
    :func:`far_limits` (a TIME of 1e30: damaged values). Cheap: nothing is
    read unless ``tmin``/``tmax`` are outside; then two bisections (2 log2(n)
    single-row reads), no pass over the data."""
    limits = far_limits(meta)
    if limits is None or limits[0] <= tmin and tmax <= limits[1]:
        return
    lo, hi = limits
    rows = range(len(times))

    def at(i: int) -> float:
        return float(times[i:i + 1][0])

    before, after = bisect.bisect_left(rows, lo, key=at), len(rows) - bisect.bisect_right(rows, hi, key=at)
    where = [f"{before} before {lo:.6g} s"] * bool(before) + [f"{after} after {hi:.6g} s"] * bool(after)
    keep = [f"TIME >= {lo - meta.timezero:.6g}"] * bool(before) + [f"TIME <= {hi - meta.timezero:.6g}"] * bool(after)
    warnings.warn(
        f"{meta.path}: {before + after} of {len(rows)} events lie far outside the observation ({', '.join(where)}; "
        f"times {tmin:.6g} - {tmax:.6g} s): damaged TIME values. Products drop them as outside the good time, but "
        f"the time span (xcube info) includes them - drop them, e.g. fselect '{' && '.join(keep)}'",
        UserWarning, stacklevel=4)


def load_fits_events(meta: EventsMeta, hdul=None) -> dict:
    """Read every scalar column into memory, sorted by time (eager; used to
    fill the Zarr cache for compressed or unsorted files). ``hdul``: the file
    already opened (left open)."""
    with (open_fits(meta.path, memmap=False) if hdul is None else contextlib.nullcontext(hdul)) as hdul:
        hdu = hdul[(meta.extname, meta.extver) if meta.twin_index is None else meta.twin_index]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                table = hdu.data
                if table is None or len(table) != meta.nrows:
                    raise OSError(
                        f"{meta.path}: truncated file: read {0 if table is None else len(table)} of {meta.nrows} events"
                    )
                # the raw stored values, decoded as the memory-mapped path does (values and dtypes alike;
                # astropy's own scaling of a column cannot read a 64-bit integer with TZERO)
                raw = np.asarray(table)
                cols = {var: decode(raw[fname], *how) for var, (fname, how) in _decoding(meta).items()}
        except (EOFError, OSError, ValueError, TypeError) as exc:
            if isinstance(exc, OSError) and "truncated" in str(exc):
                raise
            raise OSError(f"{meta.path}: corrupt or truncated FITS data in {meta.extname} ({exc})") from exc
    cols = _drop_null_events(meta, cols)
    t = cols["time"]
    if not check_times(t, meta.path):
        order = np.argsort(t, kind="stable")
        cols = {k: v[order] for k, v in cols.items()}
        log.info("%s: events were not time-sorted; sorted %d events", meta.path, t.size)
    t = cols["time"]
    if t.size:  # (sorted: the first and last are the extremes)
        warn_outside_good_time(meta, float(t[0]), float(t[-1]), t.size)
        warn_far_outside(meta, t, float(t[0]), float(t[-1]))
    return cols


def _null_text(meta: EventsMeta) -> str:
    """``X = TNULL (-99999999) or Y = NaN/inf``: the null values of :func:`null_values`, for messages."""
    return " or ".join(f"{v.upper()} = " + ("NaN/inf" if np.isnan(value) else f"TNULL ({value:.15g})")
                       for v, value in null_values(meta).items())


def _drop_null_events(meta: EventsMeta, cols: dict) -> dict:
    """Columns without the events whose X or Y is null - its TNULL, or NaN
    or infinite in a float column (no sky position; they would stretch every
    sky grid to the null value, or leave it no finite extent) - or whose
    integer PI is its TNULL (no channel: no energy, and a channel filter
    would count them), with a warning that counts them."""
    null, found = None, set()
    for var, value in null_values(meta).items():
        if var in cols:
            m = null_mask(cols[var], value)
            found |= {var} if m.any() else set()
            null = m if null is None else (null | m)
    k = int(np.count_nonzero(null)) if null is not None else 0
    if not k:
        return cols
    lacking = " or ".join(what for what, names in (("sky position", {"x", "y"}), ("PI channel", {"pi"}))
                          if names & found)
    warnings.warn(f"{meta.path}: dropped {k} of {null.size} events with {_null_text(meta)}: they have no "
                  f"{lacking}", UserWarning, stacklevel=3)
    keep = ~null
    return {name: v[keep] for name, v in cols.items()}


def build_dataset(meta: EventsMeta, data: dict) -> xr.Dataset:
    """Assemble an EventList from column arrays (numpy or dask) and the metadata."""
    profile = meta.profile
    data = dict(data)
    if "pi" not in data and profile.pi_to_kev is not None:
        pi_name = profile.columns.get("pi", "PI")
        vec = meta.vector_columns.get(pi_name.lower())
        if vec is not None:
            warnings.warn(
                f"{meta.path}[{meta.extname}]: the {vec[0]} column is a vector or non-numeric column "
                f"(TFORM {vec[1]!r}), not one channel per event, and cannot be used; energy is not available - "
                f"write {pi_name} as a scalar integer column",
                stacklevel=3,
            )
        else:
            warnings.warn(
                f"{meta.path}: no {pi_name} column (columns: {sorted(meta.columns)}); "
                "energy is not available - run the mission's PI calibration first",
                stacklevel=3,
            )
    if "pi" in data and "energy" not in data:
        pi = data["pi"]
        if isinstance(pi, da.Array):
            data["energy"] = pi.map_blocks(profile.energy, dtype=np.float32)
            src = source_of(pi)
            if src is not None:  # readers of several columns decode energy with the others
                register_source(data["energy"].name, src.derived(profile.energy, np.float32))
        else:
            data["energy"] = profile.energy(pi)
        if profile.pi_to_kev is None:
            warnings.warn(
                f"{meta.path}: {profile.mission} {profile.instrument}: {profile.energy_note}; "
                f"energy is NaN - select on the channel column 'pi' (file column "
                f"{profile.columns.get('pi', 'PI')}) instead",
                stacklevel=3,
            )
    return events_dataset(data, meta.gti, meta.ccd_gti, meta.attrs)


_UNITS = {"time": "s", "energy": "keV", "x": "pixel", "y": "pixel", "pi": "channel"}


def events_dataset(columns: dict, gti, ccd_gti: dict, attrs: dict) -> xr.Dataset:
    """Build the EventList Dataset from columns, GTIs and attrs (no I/O)."""
    order = ["time", "x", "y", "pi", "energy"]
    names = [n for n in order if n in columns] + sorted(n for n in columns if n not in order)
    data_vars = {}
    for n in names:
        v = xr.Variable(("event",), columns[n])
        if n in _UNITS:
            v.attrs["units"] = _UNITS[n]
        data_vars[n] = v
    data_vars["gti_start"] = xr.Variable(("gti",), np.asarray(gti[0], dtype=np.float64), {"units": "s"})
    data_vars["gti_stop"] = xr.Variable(("gti",), np.asarray(gti[1], dtype=np.float64), {"units": "s"})
    if ccd_gti:  # (a CCD whose own table is empty keeps a zero-length row: no good time, not "no table")
        start0 = np.asarray(gti[0], dtype=np.float64)
        ccds, starts, stops = gtimod.ccd_rows(ccd_gti, float(start0[0]) if start0.size else 0.0)
        data_vars["ccd_gti_ccd"] = xr.Variable(("ccd_gti",), np.asarray(ccds, dtype=np.int16))
        data_vars["ccd_gti_start"] = xr.Variable(("ccd_gti",), starts, {"units": "s"})
        data_vars["ccd_gti_stop"] = xr.Variable(("ccd_gti",), stops, {"units": "s"})
    attrs = dict(attrs)
    attrs["exposure"] = gtimod.exposure(gti)
    attrs.setdefault("selection", [])
    return xr.Dataset(data_vars, attrs=attrs)
