"""Write OGIP event files (EVENTS + GTI extensions) from columns.

Used by the simulator, the test fixtures and ``xcube.io`` round trips; the
files carry the headers a mission's own pipeline writes (TELESCOP, INSTRUME,
MJDREF, TIMEZERO, sky-column WCS), so that they read back through the same
mission profiles as archive data.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

__all__ = ["write_events_fits"]

_FORMATS = {
    np.dtype(np.float64): "D",
    np.dtype(np.float32): "E",
    np.dtype(np.int64): "K",
    np.dtype(np.int32): "J",
    np.dtype(np.int16): "I",
    np.dtype(np.uint8): "B",
    np.dtype(bool): "L",
}


def _column(name, values, wcs=None):
    v = np.asarray(values)
    if v.dtype == np.uint16:
        v = v.astype(np.int32)
    fmt = _FORMATS.get(v.dtype)
    if fmt is None:
        if v.dtype.kind in "iu":
            v, fmt = v.astype(np.int64), "K"
        else:
            v, fmt = v.astype(np.float64), "D"
    kw = {}
    if wcs:
        kw = dict(coord_type=wcs["ctype"], coord_ref_value=wcs["crval"], coord_ref_point=wcs["crpix"],
                  coord_inc=wcs["cdelt"], coord_unit="deg")
    return fits.Column(name=name, format=fmt, array=v, **kw)


def write_events_fits(
    path,
    columns: dict,
    *,
    gti=None,
    header: dict | None = None,
    gti_extensions: dict | None = None,
    wcs: dict | None = None,
    overwrite: bool = False,
    gzip: bool = False,
) -> Path:
    """Write an event file.

    Parameters
    ----------
    columns : upper-case column name -> 1-D array (TIME in s, X/Y sky pixels, PI ...).
    gti : ``(start, stop)`` arrays [s] for one extension named ``GTI`` (or use
        ``gti_extensions``: name -> ``(start, stop)`` or ``(start, stop, header_dict)``).
    header : keywords for the primary and EVENTS headers (TELESCOP, INSTRUME,
        MJDREF, TSTART, TSTOP, OBS_ID, ...).
    wcs : sky-column WCS, ``{"X": {"ctype","crval","crpix","cdelt"}, "Y": {...}}``;
        written as TCTYPn/TCRVLn/TCRPXn/TCDLTn.
    gzip : write gzip-compressed (the path should then end in .gz or .FTZ).

    Eager; returns the path. Dask columns are streamed: the EVENTS table is
    written chunk by chunk (all columns of a chunk computed together), so
    memory stays at one chunk whatever the number of rows.
    """
    path = Path(path)
    header = dict(header or {})
    if any(_is_dask(v) for v in columns.values()):
        return _write_streaming(path, columns, gti=gti, header=header, gti_extensions=gti_extensions, wcs=wcs,
                                overwrite=overwrite, gzip=gzip)
    cols = [_column(n, v, (wcs or {}).get(n)) for n, v in columns.items()]
    ev = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    prim = fits.PrimaryHDU()
    for k, v in header.items():
        ev.header[k] = v
        if k in ("TELESCOP", "INSTRUME", "OBS_ID", "OBJECT", "DATE-OBS", "DATE-END"):
            prim.header[k] = v
    hdus = [prim, ev]
    exts = dict(gti_extensions or {})
    if gti is not None:
        exts.setdefault("GTI", gti)
    for name, g in exts.items():
        start, stop = np.asarray(g[0], dtype=np.float64), np.asarray(g[1], dtype=np.float64)
        h = fits.BinTableHDU.from_columns(
            [fits.Column(name="START", format="D", unit="s", array=start),
             fits.Column(name="STOP", format="D", unit="s", array=stop)],
            name=name,
        )
        h.header["HDUCLAS1"] = "GTI"
        h.header["HDUCLAS2"] = "STANDARD"
        for k in ("TIMEZERO", "MJDREF", "MJDREFI", "MJDREFF", "TIMESYS"):
            if k in header:
                h.header[k] = header[k]
        if len(g) > 2:
            for k, v in g[2].items():
                h.header[k] = v
        hdus.append(h)
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=overwrite)
    if gzip:
        import gzip as gz
        import shutil

        data = path.read_bytes()
        with gz.open(path, "wb") as fh:
            fh.write(data)
        del shutil
    return path


def _is_dask(v) -> bool:
    return hasattr(v, "dask") and hasattr(v, "chunks")


def _padded(fh, nbytes: int) -> None:
    """Pad a FITS data unit of ``nbytes`` to a multiple of 2880 bytes."""
    rem = nbytes % 2880
    if rem:
        fh.write(b"\x00" * (2880 - rem))


def _table_bytes(hdu: fits.BinTableHDU, arrays: list) -> np.ndarray:
    """Big-endian FITS rows of ``hdu``'s layout filled from ``arrays`` (as uint8)."""
    dtype = hdu.columns.dtype.newbyteorder(">")
    n = len(arrays[0]) if arrays else 0
    rows = np.empty(n, dtype=dtype)
    for name, col, arr in zip(dtype.names, hdu.columns, arrays):
        a = np.asarray(arr)
        if col.format == "L":
            a = np.where(a.astype(bool), ord("T"), ord("F")).astype(np.int8)
        rows[name] = a
    return rows.view(np.uint8)


def _write_streaming(path: Path, columns: dict, *, gti, header, gti_extensions, wcs, overwrite, gzip) -> Path:
    import dask
    import dask.array as da

    if path.exists() and not overwrite:
        raise OSError(f"{path}: file exists; pass overwrite=True to replace it")
    names = list(columns)
    first = next(v for v in columns.values() if _is_dask(v))
    chunks = first.chunks[0]
    nrows = int(sum(chunks))
    arrays = {}
    for n, v in columns.items():
        if _is_dask(v):
            arrays[n] = v if v.chunks[0] == chunks else v.rechunk((chunks,))
        else:
            if len(v) != nrows:
                raise ValueError(f"column {n}: {len(v)} rows, the other columns have {nrows}")
            arrays[n] = da.from_array(np.asarray(v), chunks=(chunks,))
    templ = [_column(n, np.zeros(0, dtype=a.dtype), (wcs or {}).get(n)) for n, a in arrays.items()]
    ev = fits.BinTableHDU.from_columns(templ, name="EVENTS", nrows=0)
    for k, v in header.items():
        ev.header[k] = v
    ev.header["NAXIS2"] = nrows
    prim = fits.PrimaryHDU()
    for k, v in header.items():
        if k in ("TELESCOP", "INSTRUME", "OBS_ID", "OBJECT", "DATE-OBS", "DATE-END"):
            prim.header[k] = v
    exts = dict(gti_extensions or {})
    if gti is not None:
        exts.setdefault("GTI", gti)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if gzip:
        import gzip as gz

        opener = lambda p: gz.open(p, "wb", compresslevel=6)  # noqa: E731
    else:
        opener = lambda p: open(p, "wb")  # noqa: E731
    try:
        with opener(tmp) as fh:
            fh.write(prim.header.tostring().encode("ascii"))
            fh.write(ev.header.tostring().encode("ascii"))
            written = 0
            for i in range(len(chunks)):
                block = dask.compute(*[arrays[n].blocks[i] for n in names])
                buf = _table_bytes(ev, list(block))
                fh.write(buf)
                written += buf.size
                del block, buf
            _padded(fh, written)
            for name, g in exts.items():
                start, stop = np.asarray(g[0], dtype=np.float64), np.asarray(g[1], dtype=np.float64)
                h = fits.BinTableHDU.from_columns(
                    [fits.Column(name="START", format="D", unit="s", array=start),
                     fits.Column(name="STOP", format="D", unit="s", array=stop)],
                    name=name,
                )
                h.header["HDUCLAS1"] = "GTI"
                h.header["HDUCLAS2"] = "STANDARD"
                for k in ("TIMEZERO", "MJDREF", "MJDREFI", "MJDREFF", "TIMESYS"):
                    if k in header:
                        h.header[k] = header[k]
                if len(g) > 2:
                    for k, v in g[2].items():
                        h.header[k] = v
                fh.write(h.header.tostring().encode("ascii"))
                buf = _table_bytes(h, [start, stop])
                fh.write(buf)
                _padded(fh, buf.size)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
