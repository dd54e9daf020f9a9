"""Sky coordinates of event lists: the WCS of the X/Y sky columns.

An EventList keeps the WCS of its sky columns as plain FITS keywords in its
attrs (axis 1 = ``x``, axis 2 = ``y``): ``CTYPEi``, ``CRVALi``, ``CRPIXi``,
``CDELTi`` and optionally ``PCi_j``, ``CUNITi``, ``RADESYS``, ``EQUINOX``.
``CRPIXi`` is the file's ``TCRPXn``: the *column value* at the reference
point. ``PCi_j`` (present only when the columns' WCS is rotated: the file's
``TPn_ka``, its CD matrix ``TCn_ka`` split into CDELT and PC, or ``TCROTn``)
is the rotation matrix, as in an image header; absent means the identity.

Pixel convention of :func:`wcs`: the returned ``astropy.wcs.WCS`` takes the
raw ``x``/``y`` column values as its (0-based) pixel coordinates, i.e.
``wcs(ev).pixel_to_world(ev.x, ev.y)`` gives the sky position of each event
and ``wcs(ev).world_to_pixel(coord)`` gives column values. A column value
``x`` is FITS (1-based) pixel ``x`` of the column's own WCS; astropy's
0-based pixel ``p`` is FITS pixel ``p + 1``, so the WCS built here uses
``crpix = CRPIX + 1``. (Images binned from the columns carry their own WCS;
see the binning docs.)
"""
from __future__ import annotations

import numpy as np
from astropy.wcs import WCS

__all__ = ["wcs", "has_wcs", "pc_matrix", "iau_name", "spacecraft_offsets"]

_REQUIRED = ("CTYPE", "CRVAL", "CRPIX", "CDELT")


def has_wcs(ds) -> bool:
    """True when ``ds.attrs`` hold a complete sky WCS for ``x``/``y``. Eager
    (attrs only)."""
    attrs = getattr(ds, "attrs", ds)
    return all(f"{k}{i}" in attrs for k in _REQUIRED for i in (1, 2))


def wcs(ds) -> WCS:
    """``astropy.wcs.WCS`` of the ``x``/``y`` sky columns of an EventList.

    ``ds`` is an EventList (or any xcube object, or a plain dict of attrs)
    carrying ``CTYPE1/2``, ``CRVAL1/2``, ``CRPIX1/2``, ``CDELT1/2`` and, for
    a rotated WCS, ``PC1_1``...``PC2_2``. The WCS maps raw column values
    (``x``, ``y``) as pixel coordinates to the sky - see the module docstring
    for the +1 on CRPIX. Eager, cheap (attrs only).

    Raises ``KeyError`` naming the source file and the missing keywords when
    the event list has no sky columns (NICER, RXTE, Insight-HXMT) or its file
    had no column WCS keywords, or the reason when the file's column WCS was
    unusable (attr ``wcs_problem``, e.g. ``TCDLT6 = 0``).
    """
    attrs = getattr(ds, "attrs", ds)
    missing = [f"{k}{i}" for k in _REQUIRED for i in (1, 2) if f"{k}{i}" not in attrs]
    if missing:
        src = attrs.get("source", "<event list>")
        if attrs.get("wcs_problem"):
            raise KeyError(f"{src}: no sky WCS for x/y: the file's column WCS is unusable ({attrs['wcs_problem']}); "
                           "fix the keyword in the header")
        raise KeyError(
            f"{src}: no sky WCS for x/y (missing attrs {missing}); the mission has no sky X/Y columns "
            "or the file lacks TCTYPn/TCRVLn/TCRPXn/TCDLTn keywords on them"
        )
    w = WCS(naxis=2)
    w.wcs.ctype = [str(attrs["CTYPE1"]), str(attrs["CTYPE2"])]
    w.wcs.crval = [float(attrs["CRVAL1"]), float(attrs["CRVAL2"])]
    w.wcs.crpix = [float(attrs["CRPIX1"]) + 1.0, float(attrs["CRPIX2"]) + 1.0]
    w.wcs.cdelt = [float(attrs["CDELT1"]), float(attrs["CDELT2"])]
    pc = pc_matrix(attrs)
    if pc is not None:
        w.wcs.pc = pc
    w.wcs.cunit = [str(attrs.get("CUNIT1", "deg")) or "deg", str(attrs.get("CUNIT2", "deg")) or "deg"]
    radesys = attrs.get("RADESYS")
    if radesys:
        w.wcs.radesys = str(radesys)
    equinox = attrs.get("EQUINOX")
    if equinox is not None and np.isfinite(float(equinox)):
        w.wcs.equinox = float(equinox)
    w.wcs.set()
    return w


def pc_matrix(attrs):
    """The ``PCi_j`` attrs (axis 1 = x, 2 = y) as a 2x2 float64 array, or
    None when there are none (identity). Missing elements default as in FITS
    (1 on the diagonal, 0 off it). Eager (attrs only)."""
    if not any(f"PC{i}_{j}" in attrs for i in (1, 2) for j in (1, 2)):
        return None
    return np.array([[float(attrs.get(f"PC{i}_{j}", float(i == j))) for j in (1, 2)] for i in (1, 2)])


def iau_name(ra, dec, prefix: str = "XCUBE") -> np.ndarray:
    """IAU-style names ``"<prefix> JHHMMSS.s+DDMMSS"`` from RA/Dec [deg] (arrays or
    scalars), with coordinates truncated (not rounded) as the IAU asks.
    Returns a 1-D object array of str, one per position (a scalar gives
    length 1). Eager."""
    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64)) % 360.0
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    # tenths of a second of time; 1 deg = 240 s of time. The tiny offset keeps
    # values that are exact in decimal from truncating one unit low.
    ds = np.floor(ra * 2400.0 + 1e-6).astype(np.int64) % (24 * 36000)
    hh, mm, ss = ds // 36000, ds // 600 % 60, ds % 600
    asec = np.floor(np.abs(dec) * 3600.0 + 1e-6).astype(np.int64)
    dd, dm, dsec = asec // 3600, asec // 60 % 60, asec % 60
    sign = np.where(dec < 0, "-", "+")
    return np.array([f"{prefix} J{h:02d}{m:02d}{s // 10:02d}.{s % 10:d}{g}{d:02d}{n:02d}{c:02d}"
                     for h, m, s, g, d, n, c in zip(hh, mm, ss, sign, dd, dm, dsec)], dtype=object)


def spacecraft_offsets(x, y, attrs, w) -> tuple[np.ndarray, np.ndarray]:
    """``(u, v)`` [arcsec]: offsets of sky pixels ``x``, ``y`` (column values)
    from the pointing (attrs ``ra_pnt``/``dec_pnt`` through the events' WCS
    ``w``, :func:`wcs`; its reference pixel without them), rotated by the
    roll angle the mission profile names (``roll_attr``, XMM ``pa_pnt``; a
    rotated X/Y frame, ``PCi_j``, is turned back first): a frame fixed to
    the spacecraft, the same for every observation (XMM MOS1: ``(-DETX,
    DETY)`` up to the origin). NaN arrays without a WCS, or when the profile
    has no roll or the attrs lack it. Eager, small."""
    from .missions import get_profile

    x = np.atleast_1d(np.asarray(x, np.float64))
    y = np.atleast_1d(np.asarray(y, np.float64))
    nan = np.full(x.shape, np.nan)
    try:
        prof = get_profile(str(attrs.get("profile") or "generic"))
    except KeyError:
        return nan, nan.copy()
    roll = attrs.get(prof.roll_attr) if prof.roll_attr else None
    if w is None or roll is None or not np.isfinite(float(roll)):
        return nan, nan.copy()
    x0, y0 = (float(v) - 1.0 for v in w.wcs.crpix)
    if attrs.get("ra_pnt") is not None and attrs.get("dec_pnt") is not None:
        x0, y0 = (float(v) for v in w.wcs_world2pix([[float(attrs["ra_pnt"]), float(attrs["dec_pnt"])]], 0)[0])
    scale = abs(float(w.wcs.cdelt[1])) * 3600.0
    th = np.radians(float(roll))
    dx, dy = (x - x0) * scale, (y - y0) * scale
    pc = w.wcs.get_pc()
    if not np.array_equal(pc, np.eye(2)):  # a rotated X/Y frame: offsets along the unrotated axes first
        dx, dy = pc[0, 0] * dx + pc[0, 1] * dy, pc[1, 0] * dx + pc[1, 1] * dy
    return np.cos(th) * dx + np.sin(th) * dy, -np.sin(th) * dx + np.cos(th) * dy
