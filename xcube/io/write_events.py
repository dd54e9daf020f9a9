"""Write OGIP event files (EVENTS + GTI extensions): from columns
(:func:`write_events_fits`) or from an EventList (:func:`write_events`).

Used by the simulator, the test fixtures and ``xcube.io`` round trips; the
files carry the headers a mission's own pipeline writes (TELESCOP, INSTRUME,
MJDREF, TIMEZERO, sky-column WCS), so that they read back through the same
mission profiles as archive data.

Headers are made by astropy; the table data are written directly from one
big-endian record array per table (no per-row work), so writing 1e7 events
takes about as long as writing the bytes.
"""
from __future__ import annotations

import gzip as gzip_module
import shutil
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from .. import gti as gtimod
from .._version import __version__
from ..missions import profile_of
from .atomic import atomic_file

__all__ = ["write_events", "write_events_fits", "HEADER_TO_PRIMARY"]

_FORMATS = {
    np.dtype(np.float64): "D",
    np.dtype(np.float32): "E",
    np.dtype(np.int64): "K",
    np.dtype(np.int32): "J",
    np.dtype(np.int16): "I",
    np.dtype(np.uint8): "B",
    np.dtype(bool): "L",
}
_BLOCK = 2880

HEADER_TO_PRIMARY = ("TELESCOP", "INSTRUME", "OBS_ID", "OBJECT", "DATE-OBS", "DATE-END", "MISSION")


#: TZERO of an unsigned 64-bit column (its values stored less 2**63 in a signed K column)
_UINT64_ZERO = 1 << 63


def _prepare(values) -> tuple[np.ndarray, str]:
    """Column values in a FITS-writable dtype and their TFORM."""
    v = np.asarray(values)
    if v.dtype == np.uint16:
        v = v.astype(np.int32)
    elif v.dtype == np.uint32:
        v = v.astype(np.int64)
    elif v.dtype == np.uint64:  # stored as v - 2**63 with TZERO = 2**63 (_UINT64_ZERO), the FITS convention
        v = (v ^ np.uint64(_UINT64_ZERO)).view(np.int64)
    elif v.dtype == np.int8:
        v = v.astype(np.int16)
    code = _FORMATS.get(v.dtype)
    if code is None:
        if v.dtype.kind in "iu":
            v, code = v.astype(np.int64), "K"
        else:
            v, code = v.astype(np.float64), "D"
    if v.ndim == 1:
        return v, code
    if v.ndim == 2:
        return v, f"{v.shape[1]}{code}"
    raise ValueError(f"column of shape {v.shape}: only 1-D (scalar) and 2-D (vector) columns can be written")


def _set(header: fits.Header, key: str, value) -> None:
    """Set a keyword; floats that astropy's 20-character format would round
    (e.g. MJDREFF = 7.428703703703703E-04) are written in full-precision E notation."""
    if isinstance(value, (float, np.floating)) and np.isfinite(value):
        if float(fits.Card(key, float(value)).image[10:].split("/")[0]) != float(value):
            text = np.format_float_scientific(float(value), unique=True, exp_digits=2).upper()
            card = fits.Card.fromstring(f"{key:<8}= {text:>20}")
            if key in header:  # (in its place: a column's TCDLTn stays with its other keywords)
                at = header.index(key)
                del header[key]
                header.insert(at, card)
            else:
                header.append(card)
            return
    header[key] = value


def _table(name: str, columns: dict, keywords: dict | None = None, column_keywords: dict | None = None):
    """(header, big-endian record array) of a binary table; header by astropy."""
    prepared = {n: _prepare(v) for n, v in columns.items()}
    lengths = {len(v) for v, _ in prepared.values()}
    if len(lengths) > 1:
        raise ValueError(f"{name}: columns differ in length: { {n: len(v) for n, (v, _) in prepared.items()} }")
    nrows = lengths.pop() if lengths else 0
    defs = []
    for n, (v, code) in prepared.items():
        kw = dict((column_keywords or {}).get(n, {}))
        if np.asarray(columns[n]).dtype == np.uint64:
            kw["bzero"] = _UINT64_ZERO
        defs.append(fits.Column(name=n, format=code, array=v[:0], **kw))
    hdu = fits.BinTableHDU.from_columns(defs, nrows=0, name=name)
    header = hdu.header
    header["NAXIS2"] = nrows
    for k, val in (keywords or {}).items():
        _set(header, k, val)
    rec = np.empty(nrows, dtype=[(n, v.dtype.newbyteorder(">"), v.shape[1:]) if v.dtype != bool
                                 else (n, "u1", v.shape[1:]) for n, (v, _) in prepared.items()])
    for n, (v, _) in prepared.items():
        rec[n] = np.where(v, ord("T"), ord("F")) if v.dtype == bool else v
    if rec.dtype.itemsize != int(header["NAXIS1"]):  # pragma: no cover - guards the layout assumption
        raise AssertionError(f"{name}: record size {rec.dtype.itemsize} != NAXIS1 {header['NAXIS1']}")
    return header, rec


def _write_hdu(fh, header: fits.Header, rec: np.ndarray | None = None) -> None:
    fh.write(header.tostring(endcard=True, padding=True).encode("ascii"))
    if rec is not None and rec.size:
        fh.write(memoryview(np.ascontiguousarray(rec)).cast("B"))
        pad = (-rec.nbytes) % _BLOCK
        fh.write(b"\0" * pad)


def _is_dask(v) -> bool:
    return hasattr(v, "dask") and hasattr(v, "chunks")


def _stream_rows(fh, columns: dict, first: str, nrows: int) -> None:
    """Write the rows of Dask (and numpy) columns chunk by chunk, all columns of
    a chunk computed together (so shared inputs, e.g. one simulated time slab,
    are produced once), then pad the data unit. Memory: one chunk."""
    import dask
    import dask.array as da

    chunks = columns[first].chunks[0]
    arrays = {}
    for n, v in columns.items():
        if not _is_dask(v):
            v = da.from_array(np.asarray(v), chunks=(chunks,) + tuple((s,) for s in np.shape(v)[1:]))
        if int(v.shape[0]) != nrows:
            raise ValueError(f"column {n}: {v.shape[0]} rows, column {first} has {nrows}")
        if v.chunks[0] != chunks or any(len(c) > 1 for c in v.chunks[1:]):
            v = v.rechunk((chunks,) + tuple(-1 for _ in v.shape[1:]))
        arrays[n] = v
    written = 0
    for i in range(len(chunks)):
        block = dask.compute(*[a.blocks[i] for a in arrays.values()])
        prepared = {n: _prepare(b) for n, b in zip(arrays, block)}
        rec = np.empty(chunks[i], dtype=[(n, v.dtype.newbyteorder(">"), v.shape[1:]) if v.dtype != bool
                                         else (n, "u1", v.shape[1:]) for n, (v, _) in prepared.items()])
        for n, (v, _) in prepared.items():
            rec[n] = np.where(v, ord("T"), ord("F")) if v.dtype == bool else v
        if rec.size:
            fh.write(memoryview(np.ascontiguousarray(rec)).cast("B"))
        written += rec.nbytes
        del block, prepared, rec
    fh.write(b"\0" * ((-written) % _BLOCK))


def write_events_fits(
    path,
    columns: dict,
    *,
    gti=None,
    header: dict | None = None,
    gti_extensions: dict | None = None,
    wcs: dict | None = None,
    column_keywords: dict | None = None,
    events_extension: str = "EVENTS",
    gti_columns: tuple[str, str] = ("START", "STOP"),
    primary_header: dict | None = None,
    overwrite: bool = False,
    gzip: bool = False,
) -> Path:
    """Write an event file.

    Parameters
    ----------
    columns : column name (as written, e.g. ``"TIME"`` or Chandra's ``"time"``)
        -> 1-D array (TIME in s, X/Y sky pixels, PI ...) or 2-D array for a
        vector column. Booleans become ``L`` columns, uint16 is widened.
    gti : ``(start, stop)`` arrays [s] for one extension named ``GTI`` (or use
        ``gti_extensions``: name -> ``(start, stop)`` or ``(start, stop,
        header_dict)``; a header dict can set that table's ``TIMEZERO``,
        ``CCDID``/``CCD_ID`` ...). Several tables may share a name if given
        as a list of ``(name, (start, stop[, header]))`` pairs.
    header : keywords for the EVENTS header (TELESCOP, INSTRUME, MJDREF,
        TSTART, TSTOP, OBS_ID, TIMEZERO ...). TELESCOP/INSTRUME/OBS_ID/OBJECT/
        dates are also put in the primary header; TIMEZERO, MJDREF[I/F] and
        TIMESYS are copied to the GTI headers unless a GTI sets its own.
    wcs : sky-column WCS, ``{"X": {"ctype","crval","crpix","cdelt"}, "Y": {...}}``;
        written as TCTYPn/TCRVLn/TCRPXn/TCDLTn.
    column_keywords : column -> extra ``fits.Column`` keywords (``unit``,
        ``bscale``, ``bzero``, ``null``) - e.g. scaled integer columns.
    events_extension : EXTNAME of the event table (RXTE uses ``XTE_SE``).
    gti_columns : names of the GTI start/stop columns (RXTE products use ``Start``/``Stop``).
    primary_header : extra keywords for the primary header only.
    gzip : write gzip-compressed (the path should then end in .gz or .FTZ).

    Eager; returns the path. Raises ``FileExistsError`` if the path exists
    and ``overwrite`` is False. Dask columns are streamed: the event rows are
    written chunk by chunk (all columns of a chunk computed together), so
    memory stays at one chunk whatever the number of rows.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists; pass overwrite=True to replace it")
    header = dict(header or {})
    colkw = {n: dict(kw) for n, kw in (column_keywords or {}).items()}
    for n, w in (wcs or {}).items():  # (CRVAL/CRPIX/CDELT again at full precision below: astropy's cards round)
        colkw.setdefault(n, {}).update(coord_type=w["ctype"], coord_ref_value=w["crval"],
                                       coord_ref_point=w["crpix"], coord_inc=w["cdelt"], coord_unit="deg")
    lazy = [n for n, v in columns.items() if _is_dask(v)]
    if lazy:  # stream: header from empty columns, rows written chunk by chunk below
        nrows = int(columns[lazy[0]].shape[0])
        empty = {n: np.zeros((0,) + tuple(v.shape[1:]), dtype=v.dtype) for n, v in columns.items()}
        ev_header, ev_rec = _table(events_extension, empty, header, colkw)
        ev_header["NAXIS2"] = nrows
    else:
        ev_header, ev_rec = _table(events_extension, columns, header, colkw)
    for n, w in (wcs or {}).items():
        if n in columns:
            i = 1 + list(columns).index(n)
            for key, val in ((f"TCRVL{i}", w["crval"]), (f"TCRPX{i}", w["crpix"]), (f"TCDLT{i}", w["cdelt"])):
                if key in ev_header:
                    _set(ev_header, key, float(val))
    ev_header["HDUCLASS"] = header.get("HDUCLASS", "OGIP")
    ev_header["HDUCLAS1"] = header.get("HDUCLAS1", "EVENTS")

    prim = fits.PrimaryHDU().header
    for k, v in header.items():
        if k in HEADER_TO_PRIMARY:
            _set(prim, k, v)
    for k, v in (primary_header or {}).items():
        _set(prim, k, v)

    exts = list(gti_extensions.items()) if isinstance(gti_extensions, dict) else list(gti_extensions or [])
    if gti is not None and not any(name == "GTI" for name, _ in exts):
        exts.insert(0, ("GTI", gti))
    tables = []
    for name, g in exts:
        kw = {"HDUCLASS": "OGIP", "HDUCLAS1": "GTI", "HDUCLAS2": "STANDARD"}
        for k in ("TIMEZERO", "MJDREF", "MJDREFI", "MJDREFF", "TIMESYS", "TIMEUNIT", "TIMEREF"):
            if k in header:
                kw[k] = header[k]
        if len(g) > 2:
            kw.update(g[2])
        start, stop = np.asarray(g[0], dtype=np.float64), np.asarray(g[1], dtype=np.float64)
        tables.append(_table(name, {gti_columns[0]: start, gti_columns[1]: stop}, kw,
                             {gti_columns[0]: {"unit": "s"}, gti_columns[1]: {"unit": "s"}}))

    with atomic_file(path, overwrite=overwrite) as out:
        raw = out.with_name(out.name + ".raw") if gzip else out
        try:
            with open(raw, "wb") as fh:
                _write_hdu(fh, prim)
                _write_hdu(fh, ev_header, ev_rec)
                if lazy:
                    _stream_rows(fh, columns, lazy[0], nrows)
                for h, rec in tables:
                    _write_hdu(fh, h, rec)
            if gzip:
                with open(raw, "rb") as src, gzip_module.open(out, "wb", compresslevel=6) as dst:
                    shutil.copyfileobj(src, dst, length=1 << 22)
        finally:
            if gzip:
                raw.unlink(missing_ok=True)
    return path


# ---------------------------------------------------------------- EventList -> file
_ATTR_KEYWORDS = (("DATAMODE", "datamode"), ("SUBMODE", "submode"), ("FILTER", "filter"), ("EXPIDSTR", "expid"),
                  ("RA_PNT", "ra_pnt"), ("DEC_PNT", "dec_pnt"), ("PA_PNT", "pa_pnt"), ("DATE-OBS", "date_obs"),
                  ("DATE-END", "date_end"))


def _events_header(events, profile) -> dict:
    """EVENTS header keywords of an EventList from its attrs (mission, times,
    pointing) and the dead-time keywords of its source event file that the
    products read (:func:`xcube.io.ogip.dead_time_keywords`: DEADC,
    LIVETIME/ONTIME [s], XMM EPIC LIVETInn/ONTIMEnn, Chandra ACIS
    LIVTIMEn/ONTIMEn), copied as they are: the live fractions they give hold
    for any part of the good time. Reads the source's headers up to its event
    table; none for a list without a readable source event file (simulated)."""
    from .ogip import events_dead_time, time_cards

    a = events.attrs
    has_gti = bool(events.sizes.get("gti"))
    header = {
        "TELESCOP": a.get("telescop") or (profile.telescop[0] if profile.telescop else "UNKNOWN"),
        "INSTRUME": a.get("instrume") or a.get("instrument") or profile.instrument,
        "OBS_ID": str(a.get("obs_id", "")),
        "OBJECT": str(a.get("object", "")),
        "TIMESYS": a.get("timesys", "TT"),
        "TIMEREF": a.get("timeref", "LOCAL"),
        "TIMEUNIT": "s",
        "TIMEZERO": 0.0,
        "TSTART": float(a.get("tstart", float(events["gti_start"].min()) if has_gti else 0.0)),
        "TSTOP": float(a.get("tstop", float(events["gti_stop"].max()) if has_gti else 0.0)),
        "CREATOR": f"xcube {__version__}",
    }
    # the attrs' exact MJDREFI/MJDREFF when kept, else MJDREF split at its decimal, as the OGIP writers do
    header.update({k: v for k, v in time_cards(a).items() if k in ("MJDREFI", "MJDREFF")})
    for key, attr in _ATTR_KEYWORDS:
        if a.get(attr) not in (None, ""):
            header[key] = a[attr]
    header.update(events_dead_time(a, profile.events_extensions))
    return header


def _sky_columns(attrs, names: dict, columns: list, header: dict) -> dict:
    """WCS of the X/Y columns (``write_events_fits``'s ``wcs=``); adds their
    TLMIN/TLMAX to ``header``, and a rotation (``PCi_j`` attrs) as the
    pixel-list PC matrix ``TPn_ka``, and the frame (RADESYS, EQUINOX attrs)."""
    wcs, index = {}, {}
    for axis, key in ((1, "x"), (2, "y")):
        cname = names.get(key, key.upper()).upper()
        if cname in columns and f"CTYPE{axis}" in attrs:
            wcs[cname] = {"ctype": attrs[f"CTYPE{axis}"], "crval": float(attrs[f"CRVAL{axis}"]),
                          "crpix": float(attrs[f"CRPIX{axis}"]), "cdelt": float(attrs[f"CDELT{axis}"])}
            i = index[axis] = columns.index(cname) + 1
            for lim, kw in (("min", "TLMIN"), ("max", "TLMAX")):
                if f"{key}_{lim}" in attrs:
                    header[f"{kw}{i}"] = int(attrs[f"{key}_{lim}"])
    if wcs:  # the frame of the sky coordinates (an FK5 file stays FK5, not the FITS default ICRS)
        if attrs.get("RADESYS"):
            header["RADESYS"] = str(attrs["RADESYS"])
        if attrs.get("EQUINOX") is not None and np.isfinite(float(attrs["EQUINOX"])):
            header["EQUINOX"] = float(attrs["EQUINOX"])
    if len(index) == 2 and any(f"PC{i}_{j}" in attrs for i in (1, 2) for j in (1, 2)):
        for i in (1, 2):
            for j in (1, 2):
                header[f"TP{index[i]}_{index[j]}"] = float(attrs.get(f"PC{i}_{j}", float(i == j)))
    return wcs


def _ccd_gti_extension(profile, ccd: int) -> tuple[str, dict] | None:
    """``(EXTNAME, header)`` of CCD ``ccd``'s GTI table as the mission names
    it: the first of the profile's ``gti_extensions`` patterns that, with its
    wildcard made the CCD number (``STDGTI*`` -> ``STDGTI03``, ``GTI?`` ->
    ``GTI3``, ``GTI`` as it is) and the first ``gti_ccd_keywords`` keyword
    set (``CCDID``, ``CCD_ID``), reads back as that CCD
    (:meth:`~xcube.missions.base.MissionProfile.ccd_of_gti_extension`); None if none does."""
    header = {profile.gti_ccd_keywords[0]: ccd} if profile.gti_ccd_keywords else {}
    for pattern in profile.gti_extensions:
        name = pattern.replace("*", f"{ccd:02d}").replace("?", str(ccd))
        if profile.is_gti_extension(name) and profile.ccd_of_gti_extension(name, header) == ccd:
            return name, header
    return None


def _gti_extensions(events, profile) -> list:
    """``[(EXTNAME, (start, stop[, header]))]``: one table per CCD (module)
    under the mission's own name where the list has per-CCD GTIs
    (:func:`_ccd_gti_extension`: XMM ``STDGTInn`` + ``CCDID``, Chandra ACIS
    ``GTI`` + ``CCD_ID``, eROSITA ``GTIn``), plus an observation-wide table
    when the list's GTIs are narrower than their union; else one ``GTI`` (or
    ``STDGTI``) table. A CCD the profile cannot name is written in the
    observation-wide table only, with a warning."""
    glob = gtimod.from_dataset(events)
    name = next((n for n in ("GTI", "STDGTI") if profile.is_gti_extension(n)), "GTI")
    if "ccd_gti_ccd" not in events:
        return [(name, glob)]
    ccd = events["ccd_gti_ccd"].values
    st, sp = events["ccd_gti_start"].values, events["ccd_gti_stop"].values
    tables, sets, unnamed = [], [], []
    for c in (int(c) for c in np.unique(ccd)):
        ext = _ccd_gti_extension(profile, c)
        if ext is None:
            unnamed.append(c)
            continue
        rows = (ccd == c) & (sp > st)  # (a CCD without good time: its zero-length row is an empty table)
        sets.append((st[rows], sp[rows]))
        tables.append((ext[0], (*sets[-1], ext[1])))
    if unnamed:
        warnings.warn(f"{events.attrs.get('source', 'events')}: the {profile.name} profile has no GTI extension "
                      f"name for CCD {', '.join(map(str, unnamed))}; written without per-CCD GTIs (the union only)",
                      UserWarning, stacklevel=3)
        return [(name, glob)]
    union, norm = gtimod.union(*sets), gtimod.normalize(*glob, warn=False)
    if not (np.array_equal(union[0], norm[0]) and np.array_equal(union[1], norm[1])):
        tables.append((name, glob))  # observation-wide: read back as intersected with every CCD
    return tables


def write_events(path, events, *, overwrite: bool = False, gzip: bool | None = None) -> Path:
    """Write an EventList as an OGIP event file that reads back through
    :func:`xcube.open_events` as the same mission.

    Columns: every ``event`` variable except the derived ``energy``, upper-case,
    with the profile's names for time/x/y/pi; the sky WCS as TCTYP/TCRVL/TCRPX/
    TCDLT of X and Y (a rotation, ``PCi_j`` attrs, as TPn_ka); the dead-time
    keywords of the source event file (DEADC, LIVETIME/ONTIME [s], LIVETInn/
    ONTIMEnn, LIVTIMEn/ONTIMEn), so that spectra keep their live time. GTIs:
    where the list has per-CCD (per-module) GTIs, one table per CCD under the
    mission's name (XMM ``STDGTInn`` + ``CCDID``, Chandra ACIS ``GTI`` +
    ``CCD_ID``, eROSITA ``GTIn``), else one ``GTI`` extension; the file reads
    back with the same GTIs, per-CCD ones included. Dask columns are streamed
    chunk by chunk (memory of one chunk). ``gzip`` defaults to True for ``.gz``/``.FTZ`` paths. Raises
    ``FileExistsError`` if the path exists and ``overwrite`` is False, and
    ``ValueError`` when the path is the file the events are read from
    (``attrs['source']``). Returns the path.
    Eager: a Dask-backed EventList is computed here, one chunk at a time, as it
    is written.
    """
    path = Path(path)
    from .atomic import refuse_input

    refuse_input(path, events)
    profile = profile_of(events)
    if gzip is None:
        gzip = path.suffix.lower() in (".gz", ".ftz")
    names = [v for v in events.data_vars if events[v].dims == ("event",) and v != "energy"]
    fname = dict(profile.columns)
    columns = {(fname[v] if v in fname else v).upper(): events[v].data for v in names}
    header = _events_header(events, profile)
    wcs = _sky_columns(events.attrs, fname, list(columns), header)
    return write_events_fits(path, columns, header=header, wcs=wcs, gti_extensions=_gti_extensions(events, profile),
                             overwrite=overwrite, gzip=gzip)
