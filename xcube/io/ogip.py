"""OGIP product files: light curves (OGIP/93-003), PHA type I spectra
(OGIP/92-007), GTI tables, and readers of OGIP spectra (with their
background and response files) and GTI tables; light curves are read by
:mod:`xcube.io.lightcurve_file`.

Writers take the xcube product Datasets (:func:`xcube.lightcurve`,
:func:`xcube.spectrum`), compute them (the only eager step), and write
atomically: the file is written under a temporary name in the target
directory and renamed into place with ``os.replace``, so a reader never sees
a half-written file. An existing file is replaced only with ``overwrite=True``.

Conventions of the files written here
-------------------------------------
- Light curves: ``TIME`` is the bin centre (``TIMEPIXR = 0.5``) in seconds of
  mission time with ``TIMEZERO = 0``; ``RATE = COUNTS / (TIMEDEL * FRACEXP)``
  is corrected for the good-time fraction of each bin (as XMM-Newton's
  ``epiclccorr`` products are), NaN where ``FRACEXP = 0``, and flagged by the
  keyword ``FRACCORR = T`` (DEADAPP stays F: no dead-time correction is made;
  DEADC records the event file's live fraction where it has a file-wide one);
  ``COUNTS`` holds the raw counts so that the file round-trips exactly (in
  NET files too: the gross source counts, beside BACKV/BACKE; a NET light
  curve read from a file without COUNTS, such as SAS ``epiclccorr``'s, is
  written without COUNTS, its gross counts being unknown).
  ``write_lightcurve(..., fraccorr=False)`` writes uncorrected rates
  ``COUNTS / TIMEDEL`` with ``FRACCORR = F`` instead, as ``evselect`` and
  ``extractor`` do: that is what Stingray's ``Lightcurve.read(fmt="hea")``
  assumes (it divides by FRACEXP itself and zeroes bins with FRACEXP < 0.9).
- Spectra: ``CHANNEL`` runs over every channel of the mission's grid
  (``TLMIN1``-``TLMAX1``, DETCHANS rows, SPECDELT PI values per channel, as
  the mission's RMF), channels outside the selected PI range with QUALITY 1;
  ``EXPOSURE`` is the dead-time-corrected live time where the event file
  gives its dead time (DEADC, ONTIME, LIVETIME, DEADAPP = T written with it),
  else the good time; ``BACKSCAL`` is the region's area in sky pixels
  squared (:func:`xcube.regions.region_areas`): its whole area, or its part
  on the detector (``backscal="detector"``), then with ``GEOMAREA`` (the
  whole area) and ``AREAFRAC`` (the part on the detector).
"""
from __future__ import annotations

import functools
import logging
import os
import re
import warnings
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import numpy as np
import xarray as xr
from astropy.io import fits

from .. import gti as gtimod
from .._version import __version__
from .atomic import atomic_file, refuse_input
from .fitsutil import (
    TableColumns,
    column_time_scale,
    extension,
    find_column,
    has_value,
    header_float,
    merged_header,
    open_fits,
    time_scale,
)

__all__ = [
    "gti_hdu",
    "is_gti_hdu",
    "common_cards",
    "date_cards",
    "time_cards",
    "primary_hdu",
    "write_hdul",
    "read_mjdref",
    "dead_time_cards",
    "events_dead_time",
    "time_reference_attrs",
    "read_timezero",
    "mjdref_offset",
    "write_gti",
    "read_gti",
    "gti_table",
    "write_lightcurve",
    "find_gti_hdu",
    "gti_of_hdu",
    "counts_array",
    "dead_time_keywords",
    "live_fraction",
    "write_spectrum",
    "read_spectrum",
    "write_image",
    "physical_cards",
]

log = logging.getLogger("xcube.io")

_TIME_KEYS = ("MJDREF", "MJDREFI", "MJDREFF", "TIMESYS", "TIMEUNIT", "TIMEREF", "TIMEZERO")


def _path_first(path, product, writer: str) -> None:
    """TypeError when a writer got ``(product, path)``: the path comes first;
    ValueError when ``path`` is the file the product was made from
    (:func:`xcube.io.atomic.refuse_input`)."""
    if isinstance(path, (xr.Dataset, xr.DataArray)) and isinstance(product, (str, os.PathLike)):
        raise TypeError(f"{writer}(path, product): the path comes first; got {writer}(<{type(path).__name__}>, "
                        f"{str(product)!r})")
    refuse_input(path, product)


def write_hdul(hdul: fits.HDUList, path, overwrite: bool) -> Path:
    """Write an HDUList atomically (with checksums); returns the path. Eager:
    writes the file atomically."""
    path = Path(path)
    with atomic_file(path, overwrite=overwrite) as tmp:
        hdul.writeto(tmp, checksum=True)
    log.info("wrote %s", path)
    return path


# --------------------------------------------------------------------------- headers


def _mjdref_cards(mjdref) -> dict:
    """MJDREFI/MJDREFF (exact split) plus MJDREF for older readers."""
    if mjdref is None or not np.isfinite(float(mjdref)):
        return {}
    m = float(mjdref)
    # split the shortest decimal that round-trips the float64 (50814.000743 -> 50814 + 0.000743),
    # not m - floor(m), which would carry the binary representation error into MJDREFF
    d = Decimal(repr(m))
    i = int(d.to_integral_value(rounding=ROUND_FLOOR))
    return {"MJDREFI": i, "MJDREFF": float(d - i), "MJDREF": m}


def time_cards(attrs: dict) -> dict:
    """MJDREFI/MJDREFF (and MJDREF), TIMESYS, TIMEUNIT = 's' and TIMEREF
    from xcube attrs (``mjdrefi``/``mjdreff`` when kept, else ``mjdref``;
    ``timesys``, ``timeref``); MJDREF in days (MJD). TIMEREF only when the
    attrs give it: a product whose inputs do not say where their times are
    measured is not labelled 'LOCAL' (barycentred data lost their
    SOLARSYSTEM that way). Attrs only. Eager."""
    if attrs.get("mjdrefi") is not None:
        i, f = int(attrs["mjdrefi"]), float(attrs.get("mjdreff", 0.0) or 0.0)
        cards = {"MJDREFI": i, "MJDREFF": f, "MJDREF": float(np.float64(i) + np.float64(f))}
    else:
        cards = _mjdref_cards(attrs.get("mjdref"))
    if cards or attrs.get("timesys"):  # (no TIMESYS claimed for times of no reference, e.g. mixed inputs)
        cards["TIMESYS"] = str(attrs.get("timesys") or "TT")
    cards["TIMEUNIT"] = "s"
    if str(attrs.get("timeref") or "").strip():
        cards["TIMEREF"] = str(attrs["timeref"]).strip()
    return cards


def date_cards(attrs: dict, start, stop) -> dict:
    """DATE-OBS/DATE-END: the UTC dates (ISO 8601, to the ms) of mission times
    ``start``/``stop`` [s] in the time reference of ``attrs`` (``mjdrefi``/
    ``mjdreff`` or ``mjdref``, ``timesys``; converted by :func:`xcube.times`,
    leap seconds counted), the convention of the mission event files (XMM,
    NuSTAR: TIMESYS = 'TT' times, DATE-OBS in UTC). ``{}`` when a time is not
    a finite number or the attrs have no usable time reference. Eager (attrs only)."""
    from ..times import times

    try:
        span = np.array([start, stop], np.float64)
    except (TypeError, ValueError):
        return {}
    ref = {k: attrs[k] for k in ("mjdref", "mjdrefi", "mjdreff", "timesys") if attrs.get(k) is not None}
    if not np.isfinite(span).all() or not ({"mjdref", "mjdrefi"} & ref.keys()):
        return {}
    try:
        obs, end = times(span, dict(ref, source=str(attrs.get("source") or "product")), to="iso", precision=3)
    except ValueError:  # an unsupported TIMESYS or a broken MJDREF: no dates rather than wrong ones
        return {}
    return {"DATE-OBS": str(obs), "DATE-END": str(end)}


def common_cards(attrs: dict, span=None) -> dict:
    """Descriptive and time keywords from an xcube product's attrs; with
    ``span`` = ``(tstart, tstop)`` [s, mission time], the product's data span
    (its TSTART/TSTOP), DATE-OBS/DATE-END are its UTC dates
    (:func:`date_cards`), else the attrs' ``date_obs``/``date_end`` (which
    :func:`xcube.products.lightcurve.product_attrs` takes from the product's
    GTIs). Eager (attrs only)."""
    from ..missions import telescop_of

    cards = {
        "TELESCOP": str(attrs.get("telescop") or telescop_of(attrs.get("mission"))).upper(),
        "INSTRUME": str(attrs.get("instrume") or attrs.get("instrument") or "UNKNOWN").upper(),
    }
    for key, name in (("OBS_ID", "obs_id"), ("OBJECT", "object"), ("FILTER", "filter"), ("DATE-OBS", "date_obs"),
                      ("DATE-END", "date_end")):
        if attrs.get(name) not in (None, ""):
            cards[key] = str(attrs[name])
    if span is not None:
        cards.update(date_cards(attrs, *span))
    cards.update(time_cards(attrs))
    cards["CREATOR"] = f"xcube {__version__}"
    cards["ORIGIN"] = "xcube"
    return cards


def _covered_good_time(lc, lo, hi, exposure) -> float:
    """The good time [s] the light curve covers: the bins' summed exposure;
    for bins that overlap in time (a stitched curve of two cameras of one
    observation) the time covered once, the merged GTI within the union of
    the bins, so that EXPOSURE does not count the overlap twice."""
    if lo.size < 2 or not np.any(lo[1:] < hi[:-1]) or "gti_start" not in lc:
        return float(exposure.sum())
    covered = gtimod.intersection(gtimod.normalize(lo, hi, warn=False), gtimod.from_dataset(lc))
    return float(gtimod.exposure(covered))


def _apply(header: fits.Header, cards: dict) -> None:
    """Set ``cards`` (``{key: value or (value, comment)}``, None skipped) in
    ``header``; a text longer than one card goes on CONTINUE cards (OGIP
    long-string convention, announced by LONGSTRN), not cut."""
    for k, v in cards.items():
        if v is None:
            continue
        if isinstance(v, (np.generic,)):
            v = v.item()
        header[k] = v
        text = v[0] if isinstance(v, tuple) else v
        if isinstance(text, str) and len(text) > 68:
            header["LONGSTRN"] = ("OGIP 1.0", "long strings continue on CONTINUE cards")


def primary_hdu(cards: dict) -> fits.PrimaryHDU:
    """An empty primary HDU with the descriptive keywords of ``cards``. Eager
    (in memory)."""
    prim = fits.PrimaryHDU()
    _apply(prim.header, {k: v for k, v in cards.items() if k in ("TELESCOP", "INSTRUME", "OBS_ID", "OBJECT",
                                                                   "DATE-OBS", "DATE-END", "CREATOR", "ORIGIN")})
    return prim


# --------------------------------------------------------------------------- GTI


def gti_hdu(gti, *, extname: str = "GTI", header: dict | None = None) -> fits.BinTableHDU:
    """An OGIP GTI table (START, STOP in s; HDUCLAS1 = 'GTI') from ``(start, stop)``.

    ``header`` adds keywords (MJDREF, TIMESYS, ... from :func:`common_cards`);
    DATE-OBS/DATE-END, when it has them, become the UTC dates of this
    table's own TSTART/TSTOP (the first start and the last stop).
    The set is normalised (sorted, merged) first.
    Eager, in memory: ``start``/``stop`` are 1-D numpy arrays [s].
    """
    start, stop = gtimod.normalize(*gti, warn=False)
    header = dict(header or {})
    if {"DATE-OBS", "DATE-END"} & header.keys():
        ref = {"mjdrefi": header.get("MJDREFI"), "mjdreff": header.get("MJDREFF"), "mjdref": header.get("MJDREF"),
               "timesys": header.get("TIMESYS")}
        dates = date_cards({k: v for k, v in ref.items() if v is not None}, start[0], stop[-1]) if start.size else {}
        header.update(dict.fromkeys(("DATE-OBS", "DATE-END")), **dates)  # (None: not written)
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name="START", format="D", unit="s", array=start),
         fits.Column(name="STOP", format="D", unit="s", array=stop)],
        name=extname,
    )
    _apply(hdu.header, {k: v for k, v in (header or {}).items() if k not in ("CREATOR", "ORIGIN")})
    _apply(hdu.header, {
        "HDUCLASS": "OGIP", "HDUCLAS1": "GTI", "HDUCLAS2": "STANDARD", "TIMEZERO": 0.0,
        "ONTIME": float(np.sum(stop - start)),
        "TSTART": float(start[0]) if start.size else 0.0,
        "TSTOP": float(stop[-1]) if stop.size else 0.0,
    })
    return hdu


def write_gti(path, gti, *, attrs: dict | None = None, extname: str = "GTI", overwrite: bool = False) -> Path:
    """Write a GTI file: an empty primary HDU and one OGIP GTI table.

    ``gti`` is ``(start, stop)`` [s, mission time], a list of ``(start,
    stop)`` rows or an ``(n, 2)`` array (:func:`xcube.gti.as_gti`), or any Dataset holding
    ``gti_start``/``gti_stop`` (an EventList or product; its attrs supply
    TELESCOP, MJDREF, TIMESYS unless ``attrs`` is given). Eager; returns the path.
    """
    if isinstance(gti, xr.Dataset):
        attrs = dict(gti.attrs) if attrs is None else attrs
        gti = gtimod.from_dataset(gti)
    elif not (isinstance(gti, tuple) and len(gti) == 2):  # (start, stop) rows: one rule with select(gti=)
        gti = gtimod.as_gti(gti, source=f"write_gti {path}", warn=False)
    start, stop = gtimod.normalize(*gti, warn=False)
    cards = common_cards(attrs or {}, span=(start[0], stop[-1]) if start.size else None)
    return write_hdul(fits.HDUList([primary_hdu(cards), gti_hdu(gti, extname=extname, header=cards)]), path, overwrite)


def read_gti(path, extname: str | None = None):
    """``(start, stop)`` of a GTI table [s], read as :func:`gti_of_hdu` reads
    it (TUNITn/TIMEUNIT 's' or 'd', its own TIMEZERO or TIMEZERI + TIMEZERF;
    a TIMEUNIT or TIMEZERO of the primary header applies where the table has
    none), in the table's own MJDREF. ``extname`` defaults to the first table with
    HDUCLAS1 = 'GTI' (or named GTI/STDGTI*); ``path[EXTNAME]`` also names it.
    Eager (GTI tables are small)."""
    path, extname = _split_extname(path, extname)
    with open_fits(path, memmap=False) as hdul:
        hdu = find_gti_hdu(hdul, extname, path)
        if hdu is None:
            raise ValueError(f"{path}: no GTI table (extensions: {[h.name for h in hdul]}); pass extname=")
        return gti_of_hdu(hdu, path, merged_header(hdul[0].header, hdu.header), primary=hdul[0].header)


def _split_extname(path, extname):
    """``("file.fits", "STDGTI")`` from ``"file.fits[STDGTI]"`` (CFITSIO style)."""
    text = str(path)
    if extname is None and text.endswith("]") and "[" in text and not Path(text).exists():
        text, _, ext = text[:-1].rpartition("[")
        return text, ext
    return path, extname


def gti_table(obj, events=None):
    """``(start, stop)`` [s] of a GTI given as a file (path, ``path[EXTNAME]``)
    or an OGIP GTI table in memory: a ``fits.BinTableHDU`` or ``HDUList``, an
    ``astropy.table.Table``, a FITS record array, a structured numpy array or
    a pandas DataFrame with START/STOP columns (any case), read by
    :func:`gti_of_hdu` (units from TUNITn or ``Table`` column units, else
    TIMEUNIT; TIMEZERO or TIMEZERI + TIMEZERF of the header or ``Table.meta``
    applied; a file's primary TIMEUNIT and TIMEZERO where the table has none). With
    ``events``, a table whose MJDREF, TIMESYS or TIMEREF (where its header
    has them) differs from the events' raises ``ValueError`` naming the file
    and both values (its times would be in another frame). Eager."""
    source = str(obj) if isinstance(obj, (str, Path)) else type(obj).__name__
    if isinstance(obj, (str, Path)):
        path, extname = _split_extname(obj, None)
        with open_fits(path, memmap=False) as hdul:
            hdu = find_gti_hdu(hdul, extname, path)
            if hdu is None:
                raise ValueError(f"{path}: no GTI table (extensions: {[h.name for h in hdul]}); name it as "
                                 f"'{path}[EXTNAME]'")
            # primary keywords overridden by the table's; not dict(h0, **h1), which passes every card as a
            # keyword argument and fails on a second HISTORY/COMMENT card
            header = merged_header(hdul[0].header, hdu.header)
            gti = gti_of_hdu(hdu, path, header, primary=hdul[0].header)
    else:
        if isinstance(obj, fits.HDUList):
            obj = next((h for h in obj[1:] if is_gti_hdu(h)), None) or _no_gti(obj)
        hdu = obj if isinstance(obj, fits.BinTableHDU) else _table_hdu(obj)
        header = dict(hdu.header)
        gti = gti_of_hdu(hdu, f"GTI table ({source})")
    if events is not None:
        _check_gti_frame(header, events, source)
    return gti


def _check_gti_frame(header: dict, events, source: str) -> None:
    """``ValueError`` naming the GTI ``source`` and both values when the GTI
    header's MJDREF, TIMESYS or TIMEREF (each only where the header has it;
    TIMEREF only where the events have one too) differs from the events':
    its START/STOP would be seconds in another time frame (TT GTIs of
    barycentred TDB events are off by up to +-500 s). Eager, tiny."""
    from ..times import TimeReference, time_reference

    if has_value(header, "MJDREF") or has_value(header, "MJDREFI"):
        mine, theirs = read_mjdref(header, f"GTI {source}"), float(events.attrs.get("mjdref", np.nan))
        if np.isfinite(theirs) and abs(mine - theirs) * 86400.0 > 1e-6:
            raise ValueError(f"GTI {source}: MJDREF {mine!r} differs from the events' {theirs!r}; its START/STOP "
                             "are seconds in another time frame - convert them first (xcube.times)")
    name = events.attrs.get("source") or "the events"
    if header.get("TIMESYS") not in (None, ""):
        mine = TimeReference(0.0, 0.0, header["TIMESYS"], source=f"GTI {source}").timesys
        try:
            theirs = time_reference(events).timesys
        except ValueError:  # events without MJDREF: their TIMESYS alone
            theirs = TimeReference(0.0, 0.0, events.attrs.get("timesys"), source=str(name)).timesys
        if mine != theirs:
            raise ValueError(f"GTI {source}: TIMESYS {mine!r} differs from the events' ({name}) {theirs!r}; its "
                             "START/STOP are in another time system (barycentred TDB times differ from the "
                             "spacecraft's TT by up to +-500 s) - use a GTI made on the same times (e.g. "
                             "barycentre it as the events were)")
    ref_gti, ref_ev = header.get("TIMEREF"), events.attrs.get("timeref")
    if ref_gti not in (None, "") and ref_ev not in (None, ""):
        mine, theirs = str(ref_gti).strip().upper(), str(ref_ev).strip().upper()
        if mine != theirs:
            raise ValueError(f"GTI {source}: TIMEREF {mine!r} differs from the events' ({name}) {theirs!r}; its "
                             "START/STOP are referred to another place (barycentred or not) - use a GTI made on "
                             "the same times")


def _no_gti(hdul):
    raise ValueError(f"no GTI table in the HDUList (extensions: {[h.name for h in hdul]})")


def _table_hdu(table) -> fits.BinTableHDU:
    """A FITS table of an in-memory GTI table (``astropy.table.Table``, with
    its ``meta`` as header and its column units as TUNITn; a FITS record
    array, a structured numpy array, a pandas DataFrame), for :func:`gti_of_hdu`."""
    from astropy.table import Table

    if not isinstance(table, Table):  # (a Table has an iloc too)
        table = Table.from_pandas(table) if hasattr(table, "iloc") else Table(table)
    with warnings.catch_warnings():  # (meta that are no FITS keywords are left out)
        warnings.simplefilter("ignore")
        return fits.table_to_hdu(table)


def is_gti_hdu(hdu) -> bool:
    """True for a GTI table: HDUCLAS1 = GTI, or named GTI, STDGTI*, SRC_GTIS.
    Eager (header only)."""
    if not isinstance(hdu, fits.BinTableHDU):
        return False
    if str(hdu.header.get("HDUCLAS1", "")).strip().upper() == "GTI":
        return True
    name = hdu.name.upper()
    return name in ("GTI", "STDGTI", "SRC_GTIS") or name.startswith("STDGTI")


def find_gti_hdu(hdul, extname, path):
    """The GTI table ``extname`` of ``hdul`` (None: the first GTI table), or
    None when it has none. Eager (headers only; the table's rows are read by
    astropy when used)."""
    if extname is not None:
        return extension(hdul, extname, path)
    return next((h for h in hdul[1:] if is_gti_hdu(h)), None)


def gti_of_hdu(hdu, path, reference: dict | None = None, *, primary: fits.Header | dict | None = None):
    """``(start, stop)`` [s] of the GTI table ``hdu`` of an OGIP product (light
    curve, spectrum, GTI file; OGIP/93-003), in the time frame of
    ``reference`` (the header of the table the GTI belongs to, e.g. a light
    curve's RATE header merged with the primary; None: the GTI's own frame):

    - START/STOP in their TUNITn (``'s'`` or ``'d'``), else in the GTI
      table's TIMEUNIT, else in ``reference``'s TIMEUNIT, else seconds;
    - plus the table's own TIMEZERO (the split TIMEZERI + TIMEZERF when
      present) in that TIMEUNIT; where the table has neither, the TIMEZERO
      of ``primary`` (the file's primary header: FITS inheritance, as the
      event reader applies it; never ``reference``'s, which may be another
      table's own);
    - plus ``(MJDREF_gti - MJDREF_reference) x 86400`` s when the table has
      its own MJDREF (or MJDREFI/MJDREFF) and it differs from ``reference``'s.

    Rows normalised (sorted, merged). ``ValueError`` naming the file and
    table for a table without START/STOP, a TUNIT or TIMEUNIT other than
    seconds or days, START and STOP in different units, or non-finite
    values; a warning when its TIMESYS or TIMEREF differs from
    ``reference``'s. Eager (GTI tables are small)."""
    where = f"{path}[{hdu.name}]" if hdu.name else str(path)
    names = hdu.columns.names
    s, e = find_column(names, "START"), find_column(names, "STOP")
    if s is None or e is None:
        raise ValueError(f"{where}: GTI table without START/STOP columns (columns: {names})")
    h, ref = hdu.header, reference or {}
    unit = h.get("TIMEUNIT") if has_value(h, "TIMEUNIT") else ref.get("TIMEUNIT", "s")
    scale = time_scale(unit, where)  # of TIMEZERO and of columns without a TUNIT
    for key in ("TIMESYS", "TIMEREF"):  # another time frame, not another epoch: named, not shifted
        mine, theirs = (str(x.get(key, "") or "").strip().upper() for x in (h, ref))
        if mine and theirs and mine != theirs:
            warnings.warn(f"{where}: {key} {mine!r} differs from its product's {theirs!r}; its START/STOP are "
                          "read as they are, in another time frame (up to +-500 s off)", stacklevel=3)
    own = has_value(h, "TIMEZERO") or has_value(h, "TIMEZERI")
    zero = read_timezero(h if own or primary is None else primary, where)
    offset = zero * scale + mjdref_offset(h, ref, where)
    index = {c: names.index(c) + 1 for c in (s, e)}
    k0, k1 = (column_time_scale(h, index[c], c, scale, where, what="GTI times") for c in (s, e))
    if k0 != k1:  # legal FITS, but no tool writes it: a header edited wrongly
        said0, said1 = (f"TUNIT{index[c]}={str(h[f'TUNIT{index[c]}']).strip()!r}" if has_value(h, f"TUNIT{index[c]}")
                        else f"no TUNIT{index[c]} (TIMEUNIT {str(unit or 's').strip()!r})" for c in (s, e))
        raise ValueError(f"{where}: column {e} has {said1} but {s} has {said0}; START and STOP of a GTI table must "
                         "be in one unit - fix the header")
    start, stop = (np.asarray(TableColumns(hdu)[c], np.float64) * k0 + offset for c in (s, e))
    return gtimod.normalize(start, stop, source=where)


def mjdref_offset(gti_header, reference: dict, where, reference_where=None) -> float:
    """Seconds to add to times counted from the GTI table's own MJDREF to count
    them from ``reference``'s (0 when either has none, or they agree within
    1 us). ``ValueError`` naming ``where`` (``reference_where`` for the
    reference's keywords; default ``where``) for a value that is not a
    number. A different TIMESYS/TIMEREF is no offset of the epoch: the
    callers warn about it (:func:`gti_of_hdu`, the event reader). Eager
    (headers only)."""
    own = has_value(gti_header, "MJDREFI") or has_value(gti_header, "MJDREF")
    if not own or not (has_value(reference, "MJDREFI") or has_value(reference, "MJDREF")):
        return 0.0
    theirs = where if reference_where is None else reference_where
    if has_value(gti_header, "MJDREFI") and has_value(reference, "MJDREFI"):  # the split: no loss of precision
        days = (header_float(gti_header, "MJDREFI", where) - header_float(reference, "MJDREFI", theirs)) + (
            header_float(gti_header, "MJDREFF", where, 0.0) - header_float(reference, "MJDREFF", theirs, 0.0))
    else:
        days = read_mjdref(gti_header, where) - read_mjdref(reference, theirs)
    return days * 86400.0 if abs(days) * 86400.0 > 1e-6 else 0.0  # (MJDREF vs MJDREFI + MJDREFF rounding)


def read_timezero(h: dict, path) -> float:
    """TIMEZERO of a header, in its TIMEUNIT: the split form ``TIMEZERI + TIMEZERF``
    when present (full precision, as MJDREFI/MJDREFF; Stingray's
    ``high_precision_keyword_read``), else ``TIMEZERO``, else 0. Warns when both
    forms are present and disagree (the split form is used). Eager (header
    only)."""
    single = header_float(h, "TIMEZERO", path, 0.0)
    if has_value(h, "TIMEZERI"):
        tz = header_float(h, "TIMEZERI", path) + header_float(h, "TIMEZERF", path, 0.0)
        if has_value(h, "TIMEZERO") and not np.isclose(single, tz, rtol=1e-12, atol=1e-9):
            warnings.warn(f"{path}: TIMEZERO = {single!r} disagrees with TIMEZERI + TIMEZERF = {tz!r}; "
                          "using TIMEZERI + TIMEZERF", stacklevel=5)
        return tz
    return single


# --------------------------------------------------------------------------- light curves

_LC_KINDS = {
    # kind: (rate var, error var, HDUCLAS2)
    "total": ("rate", "rate_err", "TOTAL"),
    "net": ("net_rate", "net_rate_err", "NET"),
    "background": ("bkg_rate", "bkg_rate_err", "BKG"),
}


def _extra_column(name: str, values) -> fits.Column:
    a = np.asarray(values)
    if a.dtype.kind in "OUS":
        a = a.astype(str)
        return fits.Column(name=name, format=f"{max(1, max((len(v) for v in a), default=1))}A", array=a)
    return _vector_column(name, "d" if name.upper() == "MJD" else "", a)


def _vector_column(name: str, unit: str, values) -> fits.Column:
    """A table column of one value per row (n,) or one per band (n, k)."""
    a = np.asarray(values)
    code = "K" if a.dtype.kind in "iu" else "D"
    a = a.astype(np.int64 if code == "K" else np.float64)
    fmt = code if a.ndim == 1 else f"{a.shape[1]}{code}"
    return fits.Column(name=name, format=fmt, unit=unit, array=a)


def _band_cards(attrs: dict) -> dict:
    cards = {}
    band = attrs.get("energy_band")
    if band is not None and np.ndim(band) == 1 and len(band) == 2:
        cards["E_MIN"] = (float(band[0]), "[keV] lower energy of the band")
        cards["E_MAX"] = (float(band[1]), "[keV] upper energy of the band")
    chans = attrs.get("pi_band")
    if chans is not None and np.ndim(chans) == 1 and len(chans) == 2 and None not in chans:
        cards.update({"CHANTYPE": "PI", "CHANMIN": int(chans[0]), "CHANMAX": int(chans[1])})
    return cards


def named_rates(lc, kind: str | None = None):
    """``lc`` with what its ``rate`` holds also under the name
    :func:`xcube.lightcurve` gives it: for ``kind`` (default
    ``attrs['rate_kind']``, :func:`~xcube.io.lightcurve_file.read_lightcurve`)
    ``"net"`` its ``rate``/``rate_err`` also as ``net_rate``/``net_rate_err``
    (a NET file's RATE), for ``"background"`` as ``bkg_rate``/``bkg_rate_err``
    with its ``counts`` as ``bkg_counts`` (a BKG file's). Returns ``lc``
    itself for a total rate, without a ``rate``, or when it has that name
    already. Lazy (variables assigned only). Used by :func:`written_form`
    and the light-curve plots."""
    kind = lc.attrs.get("rate_kind", "total") if kind is None else kind
    prefix = {"net": "net_", "background": "bkg_"}.get(kind)
    if prefix is None or "rate" not in lc or f"{prefix}rate" in lc:
        return lc
    names = ("rate", "rate_err", "counts") if kind == "background" else ("rate", "rate_err")
    return lc.assign({prefix + k: lc[k] for k in names if k in lc})


def written_form(lc):
    """``(lc, kind, header)`` to write ``lc`` with :func:`write_lightcurve`,
    keeping what its ``rate`` holds (``attrs['rate_kind']``): a NET light
    curve read back (``rate`` the net rate, ``counts`` the gross counts,
    ``bkg_rate`` from BACKV) is written as NET (HDUCLAS2 = 'NET', BACKAPP =
    T, with BACKV/BACKE when it has the background rate), a BKG one as BKG
    (:func:`named_rates`); a gross one as it is. Lazy (variables assigned only)."""
    kind = lc.attrs.get("rate_kind", "total")
    if kind == "net" and "net_rate" not in lc and not ("bkg_rate" in lc and "bkg_rate_err" in lc):
        return lc, "total", {"HDUCLAS2": "NET", "BACKAPP": (True, "RATE is background subtracted")}
    if kind in ("net", "background"):
        return named_rates(lc, kind), kind, {}
    return lc, "total", {}


def write_lightcurve(path, lc: xr.Dataset, *, kind: str | None = None, overwrite: bool = False,
                     header: dict | None = None, columns: dict | None = None, fraccorr: bool = True) -> Path:
    """Write an xcube light curve as an OGIP/93-003 ``RATE`` table plus ``GTI``.

    Parameters
    ----------
    lc : Dataset from :func:`xcube.lightcurve` or :func:`read_lightcurve`
        (dim ``time``; ``time_lo``/``time_hi``/``exposure``/``fracexp`` along
        time; ``counts``, ``rate``, ``rate_err``; optionally the background
        variables; ``gti_start``/``gti_stop``).
    kind : ``"total"`` (gross source rate, HDUCLAS2 = 'TOTAL'), ``"net"``
        (background-subtracted, 'NET', with BACKV/BACKE columns) or
        ``"background"`` (the area-scaled background, 'BKG'). Default: what
        ``lc.attrs["rate_kind"]`` says its ``rate`` holds (a NET light curve
        read back or stitched is written as NET: :func:`written_form`), else
        total.
    header : extra keywords for the RATE extension.
    columns : extra columns, name -> 1-D array along time (numbers, or
        strings written as text columns), e.g. MJD and OBS_ID of a stitched
        light curve; :func:`read_lightcurve` reads MJD, OBS_ID, MISSION and
        INSTRUME columns back as coordinates. A light curve with an ``mjd``
        coordinate (:func:`xcube.with_mjd`) gets an MJD column by default.
    fraccorr : True (default): RATE and ERROR are corrected for the
        fractional exposure, RATE = COUNTS / (TIMEDEL x FRACEXP), keyword
        FRACCORR = T (as SAS ``epiclccorr`` writes). False: RATE = COUNTS /
        TIMEDEL, not corrected (0 where FRACEXP = 0), FRACCORR = F, as SAS
        ``evselect`` and HEASoft ``extractor`` write them and as Stingray's
        ``Lightcurve.read(fmt="hea")`` expects.

    Columns: TIME [s, bin centre], RATE, ERROR [count/s], FRACEXP, COUNTS
    [count] (for ``"net"`` the gross counts in the source region, with
    BACKV/BACKE the scaled background rate; no COUNTS when the light curve's
    counts are its net counts, ``RATE x exposure`` of a NET file without
    COUNTS read back, e.g. SAS ``epiclccorr``'s), TIMEDEL [s] when the bins are
    not equal. DEADAPP = F (rates are not corrected for dead time); DEADC
    records the live fraction of the event file the light curve was made
    from when it has a file-wide one (DEADC, or LIVETIME/ONTIME; not for
    XMM EPIC, whose live time is per CCD), for tools that apply it. Computes
    ``lc`` (eager); warns when it holds no counts. Returns the path.
    """
    _path_first(path, lc, "write_lightcurve")
    if kind is None:  # what its rate holds: a NET or BKG light curve read back or stitched stays one
        lc, kind, extra = written_form(lc)
        header = {**extra, **(header or {})}
    if kind not in _LC_KINDS:
        raise ValueError(f"kind={kind!r}: use one of {sorted(_LC_KINDS)}")
    rate_var, err_var, hduclas2 = _LC_KINDS[kind]
    if rate_var not in lc:
        raise ValueError(
            f"write_lightcurve(kind={kind!r}): the light curve has no {rate_var!r} variable"
            + ("; build it with background=<region>" if kind != "total" else "")
        )
    lc = lc.compute()
    if "band" in lc.dims:
        lc = lc.transpose("time", "band", ...)
    lo = np.asarray(lc["time_lo"].values, np.float64)
    hi = np.asarray(lc["time_hi"].values, np.float64)
    width = hi - lo
    exposure = np.asarray(lc["exposure"].values, np.float64)
    if "counts" in lc and float(np.nansum(lc["counts"].values)) == 0:
        warnings.warn(f"{path}: the light curve holds no counts (empty selection?)", stacklevel=2)
    hdu = fits.BinTableHDU.from_columns(_lc_columns(lc, kind, fraccorr, columns), name="RATE")
    attrs = dict(lc.attrs)
    cards = common_cards(attrs, span=(lo[0], hi[-1]) if lo.size else None)
    _apply(hdu.header, cards)
    covered = _covered_good_time(lc, lo, hi, exposure)
    _apply(hdu.header, {
        "HDUCLASS": "OGIP", "HDUCLAS1": "LIGHTCURVE", "HDUCLAS2": hduclas2, "HDUCLAS3": "RATE",
        "HDUVERS": "1.1.0", "TIMVERSN": "OGIP/93-003",
        "TSTART": float(lo[0]) if lo.size else 0.0, "TSTOP": float(hi[-1]) if hi.size else 0.0,
        "TIMEZERO": 0.0, "TIMEPIXR": (0.5, "TIME is the bin centre"),
        "TIMEDEL": (float(np.median(width)) if width.size else 0.0, "[s] bin width"),
        "EXPOSURE": (covered, "[s] good time in the bins"),
        "ONTIME": covered,
        "BACKAPP": kind == "net", "DEADAPP": False, "VIGNAPP": False,
        "FRACCORR": (True, "RATE = COUNTS / (TIMEDEL * FRACEXP)") if fraccorr else
        (False, "RATE = COUNTS / TIMEDEL, not / FRACEXP"),
    })
    live = _events_live_fraction(attrs)
    if live is not None:  # recorded, not applied (DEADAPP = F): downstream tools may apply it
        hdu.header["DEADC"] = (live[0], f"live fraction ({live[1]}), not applied"[:47])
    if attrs.get("errors"):  # how ERROR was computed from the counts, so that a rebin of the file keeps it
        hdu.header["ERRMETH"] = (str(attrs["errors"]).upper(), "ERROR: sqrt(N), or 1+sqrt(N+0.75) Gehrels")
    from ..products.lightcurve import product_band

    _apply(hdu.header, _band_cards(dict(attrs, **product_band(lc))))  # one band picked from several: its own
    if "band" in lc.dims:
        for i, (a, b) in enumerate(zip(lc["energy_lo"].values, lc["energy_hi"].values), start=1):
            hdu.header[f"E_MIN{i}"] = (float(a), f"[keV] lower energy of band {i}")
            hdu.header[f"E_MAX{i}"] = (float(b), f"[keV] upper energy of band {i}")
    if attrs.get("region"):
        _apply(hdu.header, {"REGION": (str(attrs["region"]), "source region")})
    if attrs.get("background_region") and kind != "total":
        _apply(hdu.header, {"BKGREG": (str(attrs["background_region"]), "background region")})
    if attrs.get("backscal_ratio") is not None:
        hdu.header["BKGRATIO"] = (float(attrs["backscal_ratio"]), "source area / background area")
    hdu.header["HISTORY"] = ("RATE = COUNTS / (TIMEDEL * FRACEXP), NaN where FRACEXP = 0" if fraccorr else
                             "RATE = COUNTS / TIMEDEL (not corrected for FRACEXP)")
    if kind == "net" and "COUNTS" in hdu.columns.names:
        hdu.header["HISTORY"] = "COUNTS: gross counts in the source region; RATE = source rate - BACKV"
    elif kind == "net":
        hdu.header["HISTORY"] = "no COUNTS column: the NET rate came from a file without gross counts"
    _apply(hdu.header, header or {})
    gti = gtimod.from_dataset(lc) if "gti_start" in lc else (lo[exposure > 0], hi[exposure > 0])
    hdul = fits.HDUList([primary_hdu(cards), hdu, gti_hdu(gti, header=cards)])
    return write_hdul(hdul, path, overwrite)


def _events_live_fraction(attrs: dict):
    """``(fraction, keywords)`` of the event file a light curve was made from
    (its attrs ``source`` and ``profile``): file-wide DEADC, else
    LIVETIME/ONTIME; None without them, for a source that is not an event
    file, and for missions whose live time is per CCD (XMM EPIC, where it
    depends on the CCD the region is on)."""
    from ..missions import get_profile

    try:
        prof = get_profile(str(attrs.get("profile")))
    except KeyError:
        return None
    if prof.ccd_livetime_keywords:
        return None
    keys = events_dead_time(attrs, prof.events_extensions)
    return live_fraction(keys, source=str(attrs.get("source"))) if keys else None


def _lc_columns(lc: xr.Dataset, kind: str, fraccorr: bool, columns: dict | None) -> list:
    """The RATE table's columns of a computed light curve (see :func:`write_lightcurve`)."""
    rate_var, err_var, _ = _LC_KINDS[kind]
    lo = np.asarray(lc["time_lo"].values, np.float64)
    hi = np.asarray(lc["time_hi"].values, np.float64)
    width = hi - lo
    fracexp = np.asarray(lc["fracexp"].values, np.float64)
    cols = [
        fits.Column(name="TIME", format="D", unit="s", array=0.5 * (lo + hi)),
        _vector_column("RATE", "count/s", _rate_values(lc[rate_var], fracexp, fraccorr)),
        _vector_column("ERROR", "count/s", _rate_values(lc[err_var], fracexp, fraccorr)),
        fits.Column(name="FRACEXP", format="D", unit="", array=fracexp),
    ]
    counts_var = {"total": "counts", "net": "counts", "background": "bkg_counts"}[kind]
    if counts_var in lc and not (kind == "net" and _net_counts(lc)):
        cols.append(_vector_column("COUNTS", "count", np.asarray(lc[counts_var].values)))
    if kind == "net":
        cols.append(_vector_column("BACKV", "count/s", _rate_values(lc["bkg_rate"], fracexp, fraccorr)))
        cols.append(_vector_column("BACKE", "count/s", _rate_values(lc["bkg_rate_err"], fracexp, fraccorr)))
    extra = dict(columns or {})
    if "mjd" in lc.coords and lc["mjd"].dims == ("time",) and not any(k.upper() == "MJD" for k in extra):
        extra["MJD"] = np.asarray(lc["mjd"].values, np.float64)
    cols += [_extra_column(name, values) for name, values in extra.items()]
    uniform = width.size > 0 and np.allclose(width, width[0], rtol=1e-12, atol=0)
    if not uniform and width.size:
        cols.append(fits.Column(name="TIMEDEL", format="D", unit="s", array=width))
    return cols


def _net_counts(lc: xr.Dataset) -> bool:
    """True when the ``counts`` of a computed NET light curve are its net
    counts, ``net_rate x exposure`` (within 1e-6 relative, 2e-3 counts) and not
    the gross ``(net_rate + bkg_rate) x exposure``: a NET file without a
    COUNTS column read back (SAS ``epiclccorr``: RATE, BACKV, no counts),
    whose gross counts are unknown (its rates are corrected, e.g. for
    vignetting), so :func:`write_lightcurve` writes no COUNTS column for it."""
    if "bkg_rate" not in lc or "net_rate" not in lc:
        return False
    exposure = lc["exposure"]
    good = (exposure > 0) & np.isfinite(lc["net_rate"]) & np.isfinite(lc["bkg_rate"])
    counts, net, gross = (np.asarray(v.where(good, 0.0).values, np.float64) for v in (
        lc["counts"], lc["net_rate"] * exposure, (lc["net_rate"] + lc["bkg_rate"]) * exposure))
    return bool(np.allclose(counts, net, rtol=1e-6, atol=2e-3) and not np.allclose(counts, gross, rtol=1e-6,
                                                                                 atol=2e-3))


def _rate_values(rate: xr.DataArray, fracexp: np.ndarray, fraccorr: bool) -> np.ndarray:
    """A rate (or its error) as written: corrected for the fractional
    exposure as xcube computes it, or multiplied back by FRACEXP (0 where
    FRACEXP = 0) when ``fraccorr`` is False. Shape (time,) or (time, band)."""
    v = np.asarray(rate.values, np.float64)
    if fraccorr:
        return v
    f = fracexp.reshape(fracexp.shape + (1,) * (v.ndim - 1))
    return np.where(f > 0, np.nan_to_num(v) * f, 0.0)


def read_mjdref(h: dict, where="FITS header") -> float:
    """MJDREF [d] of header ``h`` from MJDREFI + MJDREFF (full precision) or
    MJDREF; NaN if absent. ``ValueError`` naming ``where`` and the keyword
    when its value is not a number (:func:`~xcube.io.fitsutil.header_float`).
    Eager (header only)."""
    if has_value(h, "MJDREFI"):
        return float(np.float64(header_float(h, "MJDREFI", where)) + np.float64(header_float(h, "MJDREFF", where, 0.0)))
    if has_value(h, "MJDREF"):
        return header_float(h, "MJDREF", where)
    return float("nan")


def time_reference_attrs(h: dict, where="FITS header") -> dict:
    """The time reference of a product's header as xcube attrs: ``mjdref``
    (:func:`read_mjdref`), ``mjdrefi``/``mjdreff`` (the exact parts, when
    given), ``timesys`` (TT when absent) and ``timeref`` (when given: LOCAL,
    or SOLARSYSTEM after barycentring), so that a product read back and
    written again keeps them. Eager (header only)."""
    attrs = {"mjdref": read_mjdref(h, where), "timesys": str(h.get("TIMESYS", "TT")).strip() or "TT"}
    if has_value(h, "MJDREFI"):
        attrs["mjdrefi"], attrs["mjdreff"] = int(h["MJDREFI"]), header_float(h, "MJDREFF", where, 0.0)
    if str(h.get("TIMEREF", "")).strip():
        attrs["timeref"] = str(h["TIMEREF"]).strip().upper()
    return attrs


def counts_array(counts):
    """Counts as int64 when they are whole numbers (to 1e-3), else float64:
    a numpy array of the shape of ``counts``. Eager (computes a lazy input)."""
    counts = np.asarray(counts)
    if counts.dtype.kind in "iu":
        return counts.astype(np.int64)
    finite = np.isfinite(counts)
    if finite.all() and np.all(np.abs(counts - np.round(counts)) < 1e-3):
        return np.round(counts).astype(np.int64)
    return counts.astype(np.float64)


# --------------------------------------------------------------------------- dead time

_DEAD_TIME_KEY = re.compile(r"^(DEADC|LIVETIME|ONTIME|LIVETI\d\d|ONTIME\d\d?|LIVTIME\d)$")  # (XMM nn, ACIS n)


def dead_time_keywords(path, extensions=("EVENTS",)) -> dict:
    """The dead-time keywords of an event file: DEADC, LIVETIME and ONTIME
    [s] and the per-CCD LIVETInn/ONTIMEnn [s] (XMM EPIC; LIVTIMEn/ONTIMEn
    for Chandra ACIS) of its event table
    (the first table named one of ``extensions``; its keywords override the
    primary header's), as floats. ``{}`` when ``path`` is not a readable FITS
    event file (a Zarr store, a light curve, a missing file) or has none.
    Reads the headers up to the event table only (cheap, also for gzip files);
    cached per file version. Eager."""
    try:
        st = os.stat(path)
    except (OSError, TypeError, ValueError):
        return {}
    if not os.path.isfile(path):
        return {}
    names = tuple(str(e).upper() for e in ((extensions,) if isinstance(extensions, str) else extensions))
    return dict(_dead_time_keywords(str(path), names, st.st_size, st.st_mtime_ns))


@functools.lru_cache(maxsize=64)
def _dead_time_keywords(path: str, names: tuple, size: int, mtime_ns: int) -> tuple:
    try:
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            table = None
            for hdu in hdul[1:]:  # stops at the event table: the headers after it are not read
                if isinstance(hdu, fits.BinTableHDU) and hdu.name.strip().upper() in names:
                    table = hdu
                    break
            if table is None:
                return ()
            header = merged_header(hdul[0].header, table.header)
    except (OSError, ValueError, IndexError, KeyError) as exc:
        log.info("%s: no dead-time keywords read (%s)", path, exc)
        return ()
    return tuple(dead_time_cards(header).items())


def dead_time_cards(header) -> dict:
    """The dead-time keywords (see :func:`dead_time_keywords`) of a header,
    as floats (non-numeric and non-finite values left out). Eager."""
    out = {}
    for key, value in header.items():
        if _DEAD_TIME_KEY.match(str(key)):
            try:
                v = float(value)
            except (TypeError, ValueError):
                continue
            if np.isfinite(v):
                out[str(key)] = v
    return out


def events_dead_time(attrs: dict, extensions=("EVENTS",)) -> dict:
    """The dead-time keywords of an EventList: those it carries
    (``attrs["dead_time_keywords"]``, JSON, recorded when its FITS file was
    opened, so that a Zarr store converted from it keeps them), else those
    of its source file (:func:`dead_time_keywords`; an EventList made before
    they were recorded). Eager."""
    import json

    text = attrs.get("dead_time_keywords")
    if text is not None:
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            return {}
        return {str(k): float(v) for k, v in value.items()} if isinstance(value, dict) else {}
    return dead_time_keywords(attrs.get("source"), extensions)


def live_fraction(keys: dict, ccd: int | None = None, ccd_keywords=None, source: str = "event file"):
    """``(fraction, what)``: the live fraction of an event file's good time
    from its dead-time keywords (:func:`dead_time_keywords`), or None when it
    has none. With ``ccd`` and ``ccd_keywords`` (the profile's
    ``ccd_livetime_keywords``, e.g. ``("LIVETI{:02d}", "ONTIME{:02d}")``) the
    CCD's live/on time; else DEADC; else LIVETIME/ONTIME. ``what`` names the
    keywords (``"DEADC"``, ``"LIVETIME/ONTIME"``, ``"LIVETI01/ONTIME01"``). A
    fraction outside (0, 1] is not used (a warning names ``source``). Eager
    (arithmetic on the keywords)."""
    candidates = []
    if ccd is not None and ccd_keywords:
        live, on = (k.format(int(ccd)) for k in ccd_keywords)
        if live in keys and on in keys and keys[on] > 0:
            candidates.append((keys[live] / keys[on], f"{live}/{on}"))
    if "DEADC" in keys:
        candidates.append((keys["DEADC"], "DEADC"))
    if "LIVETIME" in keys and keys.get("ONTIME", 0.0) > 0:
        candidates.append((keys["LIVETIME"] / keys["ONTIME"], "LIVETIME/ONTIME"))
    for frac, what in candidates:
        if 0.0 < frac <= 1.0 + 1e-9:
            return min(float(frac), 1.0), what
        warnings.warn(f"{source}: dead-time fraction {what} = {frac!r} is not in (0, 1]; not used", stacklevel=3)
    return None


# --------------------------------------------------------------------------- spectra


def _pha_hdu(channel, counts, *, exposure, backscal, cards, hduclas2, quality=None, grouping=None,
             backfile="none", respfile="none", ancrfile="none", areascal=1.0, corrscal=0.0, tlmin=None, tlmax=None,
             chantype="PI", path="PHA file", dead_time=None, stat_err=None, sys_err=None):
    """The SPECTRUM table of a PHA type I file. ``backscal``/``areascal``: a
    number (keyword), or an array along channel (a column, with the keyword
    1 as OGIP/92-007 allows); ``stat_err`` [count] and ``sys_err`` (fraction)
    along channel, or None: a STAT_ERR column and POISSERR = F, a SYS_ERR
    column; else POISSERR = T and the keywords STAT_ERR = SYS_ERR = 0."""
    channel = np.asarray(channel, np.int64)
    counts = np.asarray(counts)
    if counts.dtype.kind not in "iu":
        bad = np.flatnonzero(~np.isfinite(counts) | (np.abs(counts - np.round(counts)) > 0))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{path}: PHA COUNTS must be whole numbers (POISSERR = T); channel {int(channel[i])} "
                             f"holds {float(counts[i])!r} ({bad.size} channel(s) not whole) - write counts, not rates "
                             "or background-subtracted values")
        counts = np.round(counts)
    cols = [
        fits.Column(name="CHANNEL", format="J", array=channel.astype(np.int32)),
        fits.Column(name="COUNTS", format="J", unit="count", array=counts.astype(np.int32)),
        fits.Column(name="QUALITY", format="I", array=np.zeros(channel.size, np.int16) if quality is None
                    else np.asarray(quality, np.int16)),
        fits.Column(name="GROUPING", format="I", array=np.ones(channel.size, np.int16) if grouping is None
                    else np.asarray(grouping, np.int16)),
    ]
    if stat_err is not None:
        cols.append(fits.Column(name="STAT_ERR", format="E", unit="count", array=np.asarray(stat_err, np.float32)))
    if sys_err is not None:
        cols.append(fits.Column(name="SYS_ERR", format="E", array=np.asarray(sys_err, np.float32)))
    for name, values in (("BACKSCAL", backscal), ("AREASCAL", areascal)):
        if np.ndim(values):
            cols.append(fits.Column(name=name, format="D", array=np.asarray(values, np.float64)))
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    _apply(hdu.header, cards)
    if "FILTER" not in hdu.header:  # mandatory in OGIP/92-007 ("the instrument filter in use, if any")
        hdu.header["FILTER"] = ("NONE", "no filter keyword in the events")
    _apply(hdu.header, {
        "HDUCLASS": "OGIP", "HDUCLAS1": "SPECTRUM", "HDUVERS": "1.2.1", "HDUCLAS2": hduclas2,
        "HDUCLAS3": "COUNT", "HDUCLAS4": "TYPE:I", "CHANTYPE": chantype, "POISSERR": stat_err is None,
        "STAT_ERR": 0 if stat_err is None else None, "SYS_ERR": 0 if sys_err is None else None,
        "DETCHANS": (int(channel.size) if tlmax is None else int(tlmax - tlmin + 1), "number of detector channels"),
        "TLMIN1": int(channel.min() if tlmin is None else tlmin),
        "TLMAX1": int(channel.max() if tlmax is None else tlmax),
        "EXPOSURE": _exposure_card(exposure, dead_time),
        "BACKSCAL": (1.0, "per channel: BACKSCAL column") if np.ndim(backscal) else (
            float(backscal), "extraction area" + (" on the detector" if "AREAFRAC" in cards else "")
            + " [sky pixel^2]"),
        "AREASCAL": (1.0, "per channel: AREASCAL column") if np.ndim(areascal) else float(areascal),
        "CORRSCAL": float(corrscal),
        "BACKFILE": backfile or "none", "CORRFILE": "none", "RESPFILE": respfile or "none",
        "ANCRFILE": ancrfile or "none",
    })
    _apply(hdu.header, _dead_time_cards(exposure, dead_time))
    return hdu


def _exposure_card(exposure, dead_time: dict | None) -> tuple:
    """The EXPOSURE card [s], its comment saying whether it is the live time."""
    return (float(exposure), "[s] live time: ONTIME x DEADC" if dead_time else
            "[s] good time (no dead-time correction)")


def _dead_time_cards(exposure, dead_time: dict | None) -> dict:
    """ONTIME [s], LIVETIME [s] (= EXPOSURE), DEADC and DEADAPP = T of a
    product whose EXPOSURE is the live time (``dead_time`` from
    :func:`_dead_time_of`), as hxtdead/nuproducts write them; {} without one."""
    if not dead_time:
        return {}
    return {
        "ONTIME": (float(dead_time["ontime"]), "[s] good time before the dead-time correction"),
        "LIVETIME": (float(exposure), "[s] live time (= EXPOSURE)"),
        "DEADC": (float(dead_time["deadc"]), f"live fraction from {dead_time.get('from') or 'the events'}"[:47]),
        "DEADAPP": (True, "EXPOSURE is corrected for dead time"),
    }


def _dead_time_of(attrs: dict, prefix: str = "") -> dict | None:
    """The dead-time correction a spectrum's attrs record (``deadc``,
    ``ontime`` [s], ``deadc_from``; ``bkg_`` ones with ``prefix="bkg_"``), or None."""
    if attrs.get(f"{prefix}deadc") is None or attrs.get(f"{prefix}ontime") is None:
        return None
    return {"deadc": attrs[f"{prefix}deadc"], "ontime": attrs[f"{prefix}ontime"],
            "from": attrs.get(f"{prefix}deadc_from")}


def _full_channels(channel, tlmin: int, tlmax: int, columns: dict, path, fill: dict | None = None) -> tuple:
    """``(channel, columns)`` on every channel TLMIN..TLMAX: a spectrum
    missing some (a slice of one) gets them with zero counts, QUALITY 1
    (bad) and GROUPING 1, so that the rows match DETCHANS and the RMF
    (``columns``: name -> array or None; ``"quality"``/``"grouping"`` are
    filled as said, others with 0, or their value in ``fill``)."""
    full = np.arange(tlmin, tlmax + 1, dtype=np.int64)
    if channel.size == full.size and np.array_equal(channel, full):
        return channel, columns
    if np.unique(channel).size != channel.size:
        raise ValueError(f"{path}: the spectrum has repeated channel numbers; cannot write a PHA file")
    idx = channel - tlmin
    out = {}
    for name, values in columns.items():
        if values is None and name not in ("quality", "grouping"):
            out[name] = None
            continue
        if values is None:
            values = np.full(channel.size, 0 if name == "quality" else 1, np.int16)
        a = np.full(full.size, 1 if name in ("quality", "grouping") else (fill or {}).get(name, 0),
                    dtype=np.asarray(values).dtype)
        a[idx] = values
        out[name] = a
    if out.get("grouping") is not None:  # a group cannot continue from an added channel
        present = np.zeros(full.size, bool)
        present[idx] = True
        cont = (out["grouping"] == -1) & np.r_[True, ~present[:-1]]
        out["grouping"][cont] = 1
    return full, out


def write_spectrum(path, spectrum: xr.Dataset, *, background_path=None, respfile: str | None = None,
                   ancrfile: str | None = None, overwrite: bool = False, header: dict | None = None) -> Path:
    """Write an xcube spectrum as an OGIP PHA type I file (``SPECTRUM`` table).

    Parameters
    ----------
    spectrum : Dataset from :func:`xcube.spectrum` (dim ``channel``; ``counts``;
        optional ``quality``/``grouping`` from :func:`xcube.products.group_min_counts`;
        attrs ``exposure``, ``backscal``; with a background also ``bkg_counts``
        and attrs ``bkg_backscal``).
    background_path : where the background PHA goes when the spectrum has
        ``bkg_counts``; default ``<stem>_bkg<suffix>`` beside ``path``. BACKFILE
        holds its file name (relative, as XSPEC expects beside the source file).
    respfile, ancrfile : RESPFILE/ANCRFILE keyword values; default the
        spectrum's attrs ``respfile``/``ancrfile`` (what :func:`read_spectrum`
        read), written relative to the new file (its name when beside it),
        else 'none'. Given values win (``"none"`` writes none).

    Columns CHANNEL, COUNTS, QUALITY, GROUPING, and STAT_ERR [count] (then
    POISSERR = F) and SYS_ERR when the spectrum has ``stat_err``/``sys_err``
    (:func:`read_spectrum` of such a file), BACKSCAL/AREASCAL when attrs
    ``backscal``/``areascal`` are arrays along channel (a ``ValueError``
    naming the file when their length is not the number of channels);
    keywords FILTER (attrs
    ``filter``, else 'NONE', as OGIP/92-007 requires it), EXPOSURE [s],
    BACKSCAL, AREASCAL, CORRSCAL, BACKFILE, RESPFILE, ANCRFILE, HDUCLAS2,
    POISSERR, DETCHANS, TLMIN1/TLMAX1, SPECDELT/SPECPIX/SPECVAL (PI per
    channel; SPECVAL = PI at the centre of channel SPECPIX, as HEASoft
    ``extractor`` and SAS write it). One row per channel of the spectrum's
    ``channel_range`` (TLMIN1..TLMAX1, DETCHANS rows, the grid of the
    mission's RMF): channels the spectrum lacks are written with zero counts
    and QUALITY 1 (bad; XSPEC ignores them), as are those outside a
    ``pi_range`` selection (:func:`xcube.spectrum`); the background PHA gets
    the same bad channels. With attrs ``deadc``/``ontime`` (``bkg_deadc``/
    ``bkg_ontime``), EXPOSURE is the dead-time-corrected live time and the
    header says so: ONTIME [s] (before the correction), LIVETIME [s] = EXPOSURE,
    DEADC (the live fraction applied) and DEADAPP = T; without them EXPOSURE
    is the good time and no DEADC is written. Counts must be whole numbers
    (``ValueError`` naming the file, the first offending channel and its
    value); EXPOSURE must be a positive number (``ValueError`` naming the
    file: a spectrum read from a file without EXPOSURE has NaN). Computes
    the spectrum (eager); returns the path of the source file.
    """
    _path_first(path, spectrum, "write_spectrum")
    path = Path(path)
    spectrum = spectrum.compute()
    attrs = dict(spectrum.attrs)
    cards = common_cards(attrs)
    band = _band_cards(attrs)
    channel = np.asarray(spectrum["channel"].values, np.int64)
    tlmin, tlmax = (int(v) for v in attrs.get("channel_range", (channel.min(), channel.max())))
    tlmin, tlmax = min(tlmin, int(channel.min())), max(tlmax, int(channel.max()))
    # every channel of the grid TLMIN..TLMAX is written (DETCHANS rows, as the RMF has): those the spectrum
    # lacks get zero counts and QUALITY 1
    _check_exposure(attrs, "exposure", path)
    per_channel = {name: _channel_values(spectrum, attrs, name, path) for name in (
        "stat_err", "sys_err", "backscal", "areascal", "bkg_stat_err", "bkg_sys_err", "bkg_backscal")}
    channel, cols = _full_channels(channel, tlmin, tlmax, {
        "counts": spectrum["counts"].values,
        "bkg_counts": spectrum["bkg_counts"].values if "bkg_counts" in spectrum else None,
        "quality": spectrum["quality"].values if "quality" in spectrum else None,
        "grouping": spectrum["grouping"].values if "grouping" in spectrum else None, **per_channel}, path,
        fill={"backscal": 1.0, "areascal": 1.0, "bkg_backscal": 1.0})
    chantype = str(attrs.get("chantype") or "PI").upper()  # the channel column: PI, or PHA (RXTE PCA)
    respfile = _file_value(attrs, "respfile", path) if respfile is None else respfile
    ancrfile = _file_value(attrs, "ancrfile", path) if ancrfile is None else ancrfile
    if int(np.nansum(cols["counts"])) == 0:
        warnings.warn(f"{path}: the spectrum holds no counts (empty selection?)", stacklevel=2)
    bad = None if cols["quality"] is None else np.where(np.isin(cols["quality"], (1, 5)), cols["quality"], 0)
    backfile = "none"
    bkg_hdul = None
    if "bkg_counts" in spectrum:
        bpath = Path(background_path) if background_path else path.with_name(f"{path.stem}_bkg{path.suffix}")
        refuse_input(bpath, spectrum)  # --background-out on the event file would replace it
        if os.path.realpath(bpath) == os.path.realpath(path):  # (its BACKFILE would name the source spectrum)
            raise ValueError(f"{path}: the background spectrum would go to the same file as the source spectrum; "
                             "give another background path (--background-out)")
        backfile = os.path.relpath(os.path.realpath(bpath), os.path.realpath(path.parent))  # beside it: its name
        bkg_dead = _dead_time_of(attrs, "bkg_") if "bkg_exposure" in attrs else _dead_time_of(attrs)
        _check_exposure(attrs, "bkg_exposure" if "bkg_exposure" in attrs else "exposure", bpath)
        bkg_scal = cols["bkg_backscal"] if cols["bkg_backscal"] is not None else attrs["bkg_backscal"]
        bhdu = _pha_hdu(channel, cols["bkg_counts"], exposure=attrs.get("bkg_exposure", attrs["exposure"]),
                        backscal=bkg_scal, cards={**cards, **_region_card(attrs, "background_region")},
                        hduclas2="BKG", tlmin=tlmin, tlmax=tlmax, chantype=chantype, quality=bad, path=bpath,
                        dead_time=bkg_dead, stat_err=cols["bkg_stat_err"], sys_err=cols["bkg_sys_err"])
        bkg_hdul = (bpath, fits.HDUList([primary_hdu(cards), bhdu]))
    shdu = _pha_hdu(
        channel, cols["counts"], exposure=attrs["exposure"],
        backscal=cols["backscal"] if cols["backscal"] is not None else attrs.get("backscal", 1.0),
        areascal=cols["areascal"] if cols["areascal"] is not None else attrs.get("areascal", 1.0),
        cards={**cards, **_region_card(attrs, "region")}, hduclas2="TOTAL",
        quality=cols["quality"], grouping=cols["grouping"],
        backfile=backfile, respfile=respfile, ancrfile=ancrfile, tlmin=tlmin, tlmax=tlmax, chantype=chantype,
        path=path, dead_time=_dead_time_of(attrs), stat_err=cols["stat_err"], sys_err=cols["sys_err"],
    )
    _apply(shdu.header, {k: v for k, v in band.items() if k in ("E_MIN", "E_MAX")})
    if attrs.get("channel_bin") is not None:
        # as HEASoft extractor and SAS evselect write them: channel c holds PI [c * SPECDELT, (c + 1) * SPECDELT),
        # SPECVAL is the PI at the centre of channel SPECPIX (7.0 for MOS's 15 PI per channel, 2.0 for pn's 5);
        # rmfgen reads them to map the matrix onto the spectrum's channels
        cb = int(attrs["channel_bin"])
        _apply(shdu.header, {
            "SPECDELT": (cb, "Binning factor for spectrum"),
            "SPECPIX": (int(tlmin), "The rebinned channel corresponding to SPECVAL"),
            "SPECVAL": (float(tlmin * cb + (cb - 1) / 2.0), "Original channel value at center of SPECPIX"),
        })
    if attrs.get("group_min") is not None:
        shdu.header["HISTORY"] = f"grouped to at least {int(attrs['group_min'])} counts per group (xcube)"
    _apply(shdu.header, header or {})
    for p in [path] + ([bkg_hdul[0]] if bkg_hdul else []):
        if p.is_dir():
            raise IsADirectoryError(f"{p}: is a directory; give the name of the file to write")
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p}: exists; pass overwrite=True (or --overwrite) to replace it")
    source = fits.HDUList([primary_hdu(cards), shdu])
    if bkg_hdul is None:
        return write_hdul(source, path, overwrite)
    # both written before either is renamed into place: a source that cannot be written leaves no background
    with atomic_file(bkg_hdul[0], overwrite=overwrite) as btmp, atomic_file(path, overwrite=overwrite) as stmp:
        bkg_hdul[1].writeto(btmp, checksum=True)
        source.writeto(stmp, checksum=True)
    log.info("wrote %s and %s", path, bkg_hdul[0])
    return path


def _check_exposure(attrs: dict, key: str, path) -> None:
    """``ValueError`` naming the file when attrs ``key`` (``exposure``,
    ``bkg_exposure``) [s] is missing, NaN or <= 0: XSPEC cannot use such a
    PHA file (a spectrum read from a file without EXPOSURE)."""
    value = attrs.get(key)
    try:
        ok = float(value) > 0 and np.isfinite(float(value))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{path}: EXPOSURE ({key}) is {value!r}, not a positive number of seconds; set "
                         f"spectrum.attrs[{key!r}] before writing")


def _channel_values(spectrum, attrs: dict, name: str, path):
    """A per-channel quantity to write as a column: the variable ``name``
    (``stat_err``, ``sys_err``, ...) or an array-valued attr (``backscal``,
    ``areascal``, ``bkg_backscal`` read from BACKSCAL/AREASCAL columns),
    as a 1-D array along channel; None when it is absent or a number.
    ``ValueError`` naming the file and keyword when its length is not the
    spectrum's number of channels (an attr array of a sliced spectrum)."""
    if name in spectrum:
        return np.asarray(spectrum[name].values, np.float64)
    if name not in attrs or not np.ndim(attrs[name]):
        return None
    values = np.asarray(attrs[name], np.float64)
    if values.shape != (spectrum.sizes["channel"],):
        raise ValueError(f"{path}: attrs[{name!r}] (the {name.removeprefix('bkg_').upper()} column) has "
                         f"{values.size} values for {spectrum.sizes['channel']} channels; give one per channel "
                         "(or one number)")
    return values


def _file_value(attrs, key: str, path: Path) -> str | None:
    """attrs ``key`` (``"respfile"``/``"ancrfile"``, a path) as a keyword
    value of the PHA file ``path``: relative to its directory (its name when
    beside it), as :func:`read_spectrum` reads relative values, with the row
    or extension suffix (``{3}``, ``[1]``) of the keyword it was read from
    (attrs ``respfile_keyword``, while the path is unchanged); ``CALDB`` as
    read; None for None."""
    file, raw = attrs.get(key), str(attrs.get(f"{key}_keyword") or "")
    if not file:
        return "CALDB" if raw.upper() == "CALDB" else None
    value = os.path.relpath(os.path.abspath(file), os.path.abspath(path.parent))
    name = raw.split("{")[0].split("[")[0]
    if name != raw and attrs.get("source") and file == _file_keyword({key: raw}, key, Path(attrs["source"]).parent):
        value += raw[len(name):]
    return value


def _region_card(attrs, key) -> dict:
    """REGION, and the region's whole area and the part of it on the detector
    (attrs ``backscal_geometric``/``backscal_fraction``, ``bkg_...`` for the
    background region; :func:`xcube.regions.region_coverage`) when known."""
    reg = attrs.get(key)
    cards = {"REGION": (str(reg), "extraction region")} if reg else {}
    prefix = "bkg_" if key == "background_region" else ""
    if attrs.get(f"{prefix}backscal_fraction") is not None:
        cards["GEOMAREA"] = (float(attrs[f"{prefix}backscal_geometric"]), "region's whole area [sky pixel^2]")
        cards["AREAFRAC"] = (float(attrs[f"{prefix}backscal_fraction"]), "part of it on the detector (BACKSCAL)")
    return cards


# --------------------------------------------------------------------------- images

_WCS_KEYS = ("WCSAXES", "CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CDELT1", "CDELT2",
             "CUNIT1", "CUNIT2", "PC1_1", "PC1_2", "PC2_1", "PC2_2")  # PCi_j only for a rotated sky WCS


def physical_cards(image: xr.DataArray) -> dict:
    """Keywords mapping image pixels to the event file's sky X/Y ("physical"
    coordinates in DS9 and CIAO): LTV1/LTV2, LTM1_1/LTM2_2 (image = LTM x
    physical + LTV) and the same as the alternate WCS ``P`` (CTYPE1P = 'x'),
    from the cells' centres as they are now (a stepped, flipped or coarsened
    grid too: :func:`xcube.binning.sky.grid_spacing`, ``ValueError`` when
    they are not evenly spaced). Empty when the image has no 1-D ``x``/``y``
    coordinate. CRVAL/CDELT are in sky pixels; reads only the centres (the
    image data are not computed). Eager, tiny."""
    from ..binning.sky import grid_spacing

    cards = {}
    for axis, dim in ((1, "x"), (2, "y")):
        spacing = grid_spacing(image, dim) if image.sizes.get(dim) else None
        if spacing is None:
            return {}
        x0, step = spacing  # pixel i (1-based) is centred on x0 + (i - 1) step
        cards[f"LTV{axis}"] = (1.0 - x0 / step, f"image pixel = LTM{axis}_{axis} * {dim.upper()} + LTV{axis}")
        cards[f"LTM{axis}_{axis}"] = (1.0 / step, f"image pixels per sky pixel along {dim.upper()}")
        cards[f"CTYPE{axis}P"] = dim.upper()
        cards[f"CRPIX{axis}P"] = 1.0
        cards[f"CRVAL{axis}P"] = x0
        cards[f"CDELT{axis}P"] = step
        cards[f"CUNIT{axis}P"] = "pixel"
    cards["WCSNAMEP"] = "PHYSICAL"
    return cards


def write_image(path, image: xr.DataArray, *, overwrite: bool = False, header: dict | None = None) -> Path:
    """Write a (y, x) counts image (:func:`xcube.image`) as a FITS primary image.

    The header carries the image WCS (CTYPEn/CRVALn/CRPIXn/CDELTn, and
    PCi_j when the event file's sky WCS is rotated, from the image attrs,
    axis 1 = x) with RADESYS/EQUINOX of the event file, the
    event file's sky X/Y as DS9/CIAO "physical" coordinates (LTVn, LTMn_n and
    the alternate WCS ``P``, see :func:`physical_cards`), BUNIT = 'count',
    EXPOSURE [s] (with attrs ``deadc``/``ontime`` the live time, and ONTIME,
    LIVETIME, DEADC, DEADAPP = T as in :func:`write_spectrum`; else the good
    time, and the comment says which), the energy band (E_MIN/E_MAX), TELESCOP/INSTRUME/OBS_ID/OBJECT,
    MJDREF/TIMESYS and TSTART/TSTOP. Computes the image (eager); atomic;
    returns the path.
    """
    _path_first(path, image, "write_image")
    if image.ndim != 2:
        raise ValueError(f"write_image: need a 2-D (y, x) image, got dims {image.dims}")
    if image.dims != ("y", "x") and set(image.dims) == {"y", "x"}:
        image = image.transpose("y", "x")
    data = np.asarray(image.variable.compute().values)  # (the counts only: a big grid's ra/dec stay lazy)
    attrs = dict(image.attrs)
    if float(data.sum()) == 0:
        warnings.warn(f"{path}: the image holds no counts (empty selection?)", stacklevel=2)
    missing = [k for k in _WCS_KEYS[1:9] if k not in attrs]
    if missing:
        warnings.warn(f"{path}: the image has no WCS keywords ({', '.join(missing)}); writing pixel coordinates only",
                      stacklevel=2)
    prim = fits.PrimaryHDU(data.astype(np.int32) if data.dtype.kind in "iu" else data)
    cards = common_cards(attrs, span=(attrs.get("tstart"), attrs.get("tstop")))
    cards.pop("TIMEUNIT", None)
    _apply(prim.header, cards)
    from ..binning.sky import grid_wcs_keywords

    attrs.update(grid_wcs_keywords(image))  # the WCS of the cells present (a cut-out's own)
    _apply(prim.header, {k: attrs[k] for k in _WCS_KEYS if k in attrs})
    if "CTYPE1" in attrs:
        _apply(prim.header, {k: attrs[k] for k in ("RADESYS", "EQUINOX") if attrs.get(k) is not None})
    _apply(prim.header, physical_cards(image))
    exposure, dead_time = float(attrs.get("exposure", 0.0)), _dead_time_of(attrs)
    _apply(prim.header, {"BUNIT": "count", "EXPOSURE": _exposure_card(exposure, dead_time),
                         "TSTART": attrs.get("tstart"), "TSTOP": attrs.get("tstop")})
    _apply(prim.header, _dead_time_cards(exposure, dead_time))
    _apply(prim.header, {k: v for k, v in _band_cards(attrs).items() if k in ("E_MIN", "E_MAX")})
    if attrs.get("region"):
        _apply(prim.header, {"REGION": (str(attrs["region"]), "event selection region")})
    _apply(prim.header, header or {})
    return write_hdul(fits.HDUList([prim]), path, overwrite)


# --------------------------------------------------------------------------- reading spectra


def _file_keyword(header, key: str, base: Path) -> str | None:
    """A BACKFILE/RESPFILE/ANCRFILE value as a path (relative values taken
    beside the spectrum; ``none`` and ``CALDB`` -> None)."""
    value = str(header.get(key, "") or "").strip()
    if not value or value.lower() in ("none", "caldb"):
        return None
    value = value.split("{")[0].split("[")[0]  # drop a type II row or extension suffix
    p = Path(value)
    return str(p if p.is_absolute() else base / p)


def _spectrum_hdu(hdul, path):
    for hdu in hdul[1:]:
        h = hdu.header
        if str(h.get("HDUCLAS1", "")).upper() == "SPECTRUM" or str(h.get("EXTNAME", "")).upper() == "SPECTRUM":
            return hdu
    raise ValueError(f"{path}: no SPECTRUM extension (HDUCLAS1 = 'SPECTRUM'); is this an OGIP PHA file?")


def _ebounds(rmf: str, channel, path) -> tuple | None:
    try:
        with fits.open(rmf) as h:
            eb = h["EBOUNDS"].data
            chan, emin, emax = (np.asarray(eb[c], np.float64) for c in ("CHANNEL", "E_MIN", "E_MAX"))
    except (OSError, KeyError) as exc:
        warnings.warn(f"{path}: RESPFILE {rmf} has no readable EBOUNDS table ({exc}); no energies", stacklevel=3)
        return None
    index = {int(c): i for i, c in enumerate(chan)}
    if not all(int(c) in index for c in channel):
        warnings.warn(f"{path}: the channels of RESPFILE {rmf} do not cover the spectrum's; no energies",
                      stacklevel=3)
        return None
    rows = [index[int(c)] for c in channel]
    return emin[rows], emax[rows]


def _kept_keywords(header: dict, primary: dict, path) -> dict:
    """The keywords of a PHA header (else its primary header) that
    :func:`write_spectrum` writes again, under the attr names of
    :func:`xcube.spectrum`: ``filter``, ``date_obs``/``date_end``,
    ``timesys``/``timeref``, ``mjdref`` [d] (and ``mjdrefi``/``mjdreff``),
    ``channel_bin`` (SPECDELT) and ``region``. A MJDREF that is not a number
    is left out with a warning naming the file (a spectrum needs no time)."""
    merged = {**primary, **header}
    out = {name: str(merged[key]).strip() for key, name in (
        ("FILTER", "filter"), ("DATE-OBS", "date_obs"), ("DATE-END", "date_end"), ("TIMESYS", "timesys"),
        ("TIMEREF", "timeref"), ("REGION", "region")) if has_value(merged, key) and str(merged[key]).strip()}
    try:
        mjdref = read_mjdref(merged, path)
        if np.isfinite(mjdref):
            out["mjdref"] = mjdref
            if has_value(merged, "MJDREFI"):  # the exact split, as time_cards writes it
                out.update(mjdrefi=int(header_float(merged, "MJDREFI", path)),
                           mjdreff=header_float(merged, "MJDREFF", path, 0.0))
    except ValueError as exc:
        warnings.warn(f"{exc}; not kept", stacklevel=3)
    if has_value(header, "SPECDELT"):
        out["channel_bin"] = int(header["SPECDELT"])
    return out


def _split_row(path, row):
    """``(path, row)`` from ``"file.pha{3}"`` (XSPEC's row of a PHA type II
    file) when no file of that name exists; ``row`` as given otherwise."""
    text = str(path)
    m = re.fullmatch(r"(.+)\{(\d+)\}", text)
    if row is None and m and not Path(text).exists():
        return Path(m.group(1)), int(m.group(2))
    return Path(path), row


def _row_suffix(value) -> int | None:
    """The row ``k`` of a BACKFILE/RESPFILE value ``"file{k}"``, else None."""
    m = re.fullmatch(r".+\{(\d+)\}", str(value or "").strip())
    return int(m.group(1)) if m else None


def is_pha_type2(hdu) -> bool:
    """Whether a SPECTRUM table holds several spectra, one per row (PHA type
    II: HDUCLAS4 = 'TYPE:II', or vector COUNTS/RATE columns, as Chandra
    ``tgextract`` writes them). Headers only."""
    if "TYPE:II" in str(hdu.header.get("HDUCLAS4", "")).upper():
        return True
    return any(c.name.upper() in ("COUNTS", "RATE") and int(c.format.repeat or 1) > 1 for c in hdu.columns)


def _spectrum_table(hdu, path, row) -> tuple:
    """``(columns, header)`` of a PHA SPECTRUM table: upper-case column name
    -> array along channel, and the header with, for row ``row`` (1-based)
    of a type II file, that row's one-value columns (EXPOSURE, BACKSCAL,
    RESPFILE, ...) as keywords. ``ValueError`` naming the file for a type II
    file without ``row`` (how many spectra it holds, how to pick one), a row
    out of range, or a ``row`` for a type I file."""
    header, data = dict(hdu.header), hdu.data
    names = [n.upper() for n in data.columns.names]
    vector = [n for n in names if np.ndim(data[n]) == 2]
    if not is_pha_type2(hdu):
        if row is not None and int(row) != 1:  # (file{1} of a type I file is the file, as XSPEC reads it)
            raise ValueError(f"{path}: row={row}: a PHA type I file holds one spectrum (row 1)")
        cols = TableColumns(hdu)
        return {n: np.asarray(cols[n]) for n in names}, header
    n = len(data)
    if row is None:
        raise ValueError(f"{path}: PHA type II file ({n} spectra in the rows of its SPECTRUM table, HDUCLAS4 = "
                         f"'TYPE:II'); read one with read_spectrum(path, row=k), k = 1..{n}, or "
                         f"read_spectrum('{path.name}{{k}}') as XSPEC names it")
    if not 1 <= int(row) <= n:
        raise ValueError(f"{path}: row={row}: the PHA type II file holds rows 1..{n}")
    record = data[int(row) - 1]
    columns = {name: np.asarray(record[name]) for name in vector}
    for name in names:
        if name not in vector:
            value = record[name]
            header[name] = value.item() if isinstance(value, np.generic) else value
    header["HDUCLAS4"] = "TYPE:I"
    return columns, header


def _channel_scale(columns: dict, header: dict, key: str, path):
    """BACKSCAL or AREASCAL of a spectrum: the keyword (default 1), or the
    column of that name, a float when it holds one value, else a float64
    array along channel (written back as a column by :func:`write_spectrum`)."""
    if key not in columns:
        return header_float(header, key, path, 1.0)
    values = np.asarray(columns[key], np.float64)
    return float(values[0]) if values.size and np.all(values == values[0]) else values


def _error_variables(columns: dict, header: dict, path) -> dict:
    """``stat_err`` [count] and ``sys_err`` (fraction) along channel from the
    STAT_ERR/SYS_ERR columns, or the keywords when not 0 (a STAT_ERR keyword
    only with POISSERR = F), so that :func:`write_spectrum` writes them back
    (POISSERR = F with a STAT_ERR column, as grppha keeps them)."""
    n = len(columns["COUNTS"])
    out = {}
    poisson = header.get("POISSERR", True) is not False
    for key, unit in (("STAT_ERR", "count"), ("SYS_ERR", "")):
        if key in columns:
            values = np.asarray(columns[key], np.float64)
        elif has_value(header, key) and header_float(header, key, path, 0.0) != 0 and not (
                key == "STAT_ERR" and poisson):
            values = np.full(n, header_float(header, key, path, 0.0))
        else:
            continue
        out[key.lower()] = ("channel", values, {"units": unit} if unit else {})
    return out


def read_spectrum(path, *, background: bool = True, row: int | None = None) -> xr.Dataset:
    """Read an OGIP PHA type I spectrum, or row ``row`` of a type II file
    (eager; small) into the layout of :func:`xcube.spectrum`.

    Returns a Dataset on dim ``channel`` with ``counts`` (and ``grouping``,
    ``quality`` when the file has them; ``stat_err`` [count] and ``sys_err``
    (fraction) when the file gives them, as columns or keywords);
    coordinates ``pi_lo``/``pi_hi`` when
    the file says how many PI values a channel holds (XMM ``SPECDELT``) and
    ``energy_lo``/``energy_hi`` [keV] from the RESPFILE's EBOUNDS. attrs:
    ``exposure`` [s] (NaN with a warning naming the file when EXPOSURE is
    missing; a warning for EXPOSURE <= 0 too), ``backscal``, ``areascal``
    (floats; float64 arrays along channel when the file has BACKSCAL or
    AREASCAL columns of varying values), ``channel_range``,
    ``respfile``/``ancrfile``/``backfile`` (paths, relative values taken
    beside the spectrum; None for ``none``), ``telescop``, ``instrument``,
    ``obs_id``, ``object``, ``source``, ``chantype`` (CHANTYPE, default PI);
    ``deadc`` and ``ontime`` [s] when the file says EXPOSURE is dead-time
    corrected (DEADAPP = T, DEADC, ONTIME), so that writing it again keeps them;
    ``filter``, ``date_obs``/``date_end``, ``timesys``/``timeref``, ``mjdref``
    [d] (``mjdrefi``/``mjdreff``), ``channel_bin`` (SPECDELT) and ``region``
    where the file has them, so that :func:`write_spectrum` writes them again.
    With ``background`` and a BACKFILE, the background counts come in as
    ``bkg_counts`` (and ``bkg_stat_err``/``bkg_sys_err``) with attrs
    ``bkg_backscal`` and ``bkg_exposure``, as
    :func:`xcube.spectrum` gives them (and ``background_region``, its REGION).
    A PHA type II file (several spectra in rows, HDUCLAS4 = 'TYPE:II') needs
    ``row`` (1-based; or the path as ``"file.pha{k}"``, as XSPEC names a row;
    a BACKFILE ``bkg.pha{k}`` reads that row); ``ValueError`` naming the file
    and the number of spectra without it. RATE spectra are refused
    (``ValueError``: only COUNTS spectra are read).
    """
    path, row = _split_row(path, row)
    try:
        hdul = fits.open(path)
    except (OSError, ValueError) as exc:
        raise OSError(f"{path}: cannot open the spectrum ({exc})") from exc
    with hdul:
        hdu = _spectrum_hdu(hdul, path)
        columns, header = _spectrum_table(hdu, path, row)
        names = list(columns)
        if "COUNTS" not in names:
            if "RATE" in names:
                raise ValueError(f"{path}: a RATE spectrum (HDUCLAS3 = "
                                 f"{str(header.get('HDUCLAS3', '')).strip()!r}, columns {names}); read_spectrum "
                                 "reads COUNTS spectra only - counts are RATE x EXPOSURE")
            raise ValueError(f"{path}: no COUNTS column (columns {names}); is this an OGIP PHA spectrum?")
        if "CHANNEL" not in names:
            raise ValueError(f"{path}: no CHANNEL column (columns {names}); cannot read the spectrum")
        channel = np.asarray(columns["CHANNEL"], np.int64)
        variables = {"counts": ("channel", counts_array(columns["COUNTS"]), {"units": "count"})}
        for col in ("GROUPING", "QUALITY"):
            if col in names:
                variables[col.lower()] = ("channel", np.asarray(columns[col], np.int16))
        variables.update(_error_variables(columns, header, path))
        # BACKSCAL/AREASCAL: numbers in attrs, or (a column that varies) variables cut with the channels
        scales = {key.lower(): _channel_scale(columns, header, key, path) for key in ("BACKSCAL", "AREASCAL")}
        variables.update({name: ("channel", v) for name, v in scales.items() if np.ndim(v)})
        icol = [n.upper() for n in hdu.data.columns.names].index("CHANNEL") + 1
        tlmin, tlmax = header.get(f"TLMIN{icol}"), header.get(f"TLMAX{icol}")
        primary = dict(hdul[0].header)
    exposure = header_float(header, "EXPOSURE", path, np.nan)
    if not exposure > 0:
        warnings.warn(f"{path}: " + ("no EXPOSURE keyword" if not has_value(header, "EXPOSURE") else
                                     f"EXPOSURE = {exposure!r}") + " (XSPEC cannot use the spectrum; "
                      "set attrs['exposure'] [s] before writing it)", stacklevel=2)
    base = path.parent
    coords = {"channel": ("channel", channel)}
    step = header.get("SPECDELT")
    if step:
        coords["pi_lo"] = ("channel", channel * int(step), {"units": "channel"})
        coords["pi_hi"] = ("channel", (channel + 1) * int(step), {"units": "channel"})
    attrs = {
        "kind": "spectrum", "source": str(path), "exposure": exposure,
        **{name: v for name, v in scales.items() if not np.ndim(v)},
        "channel_range": (int(channel.min() if tlmin is None else tlmin),
                          int(channel.max() if tlmax is None else tlmax)),
        "respfile": _file_keyword(header, "RESPFILE", base), "ancrfile": _file_keyword(header, "ANCRFILE", base),
        "backfile": _file_keyword(header, "BACKFILE", base),
        **{f"{k.lower()}_keyword": str(header[k]).strip() for k in ("RESPFILE", "ANCRFILE")
           if str(header.get(k, "") or "").strip().lower() not in ("", "none")},
        "telescop": header.get("TELESCOP", primary.get("TELESCOP")),
        "instrument": header.get("INSTRUME", primary.get("INSTRUME")),
        "obs_id": header.get("OBS_ID", primary.get("OBS_ID")),
        "object": header.get("OBJECT", primary.get("OBJECT")),
        "chantype": str(header.get("CHANTYPE") or "PI").strip().upper(),
    }
    if header.get("DEADAPP") is True and header.get("DEADC") is not None and header.get("ONTIME") is not None:
        attrs.update(deadc=float(header["DEADC"]), ontime=float(header["ONTIME"]))  # EXPOSURE = ONTIME x DEADC
    attrs.update(_kept_keywords(header, primary, path))
    if isinstance(header.get("AREAFRAC"), float) and isinstance(header.get("GEOMAREA"), float):
        attrs.update(backscal_geometric=header["GEOMAREA"], backscal_fraction=header["AREAFRAC"])
    if attrs["respfile"] and Path(attrs["respfile"]).exists():
        eb = _ebounds(attrs["respfile"], channel, path)
        if eb is not None:
            coords["energy_lo"] = ("channel", eb[0], {"units": "keV"})
            coords["energy_hi"] = ("channel", eb[1], {"units": "keV"})
    for key in ("respfile", "ancrfile", "backfile"):
        if attrs[key] and not Path(attrs[key]).exists():
            warnings.warn(f"{path}: {key.upper()} {attrs[key]} does not exist", stacklevel=2)
    ds = xr.Dataset(variables, coords=coords, attrs=attrs)
    if background and attrs["backfile"] and Path(attrs["backfile"]).exists():
        bkg = read_spectrum(attrs["backfile"], background=False, row=_row_suffix(header["BACKFILE"]))
        if bkg.sizes["channel"] != ds.sizes["channel"] or not np.array_equal(bkg["channel"], ds["channel"]):
            raise ValueError(f"{path}: BACKFILE {attrs['backfile']} has other channels than the spectrum")
        ds["bkg_counts"] = ("channel", bkg["counts"].values, {"units": "count"})
        for name in ("stat_err", "sys_err"):
            if name in bkg:
                ds[f"bkg_{name}"] = bkg[name].variable
        if "backscal" in bkg.data_vars:
            ds["bkg_backscal"] = ("channel", bkg["backscal"].values)
        else:
            ds.attrs["bkg_backscal"] = bkg.attrs["backscal"]
        ds.attrs["bkg_exposure"] = bkg.attrs["exposure"]
        ds.attrs.update({f"bkg_{k}": bkg.attrs[k] for k in ("deadc", "ontime", "backscal_geometric",
                                                             "backscal_fraction") if k in bkg.attrs})
        if bkg.attrs.get("region"):
            ds.attrs["background_region"] = bkg.attrs["region"]
    return ds
