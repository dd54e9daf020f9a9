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

    Eager; returns the path.
    """
    path = Path(path)
    header = dict(header or {})
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
