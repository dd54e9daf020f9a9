"""Sky coordinates of a binned (y, x) grid.

Event files give the WCS of the sky columns (``CTYPE1/CRVAL1/CRPIX1/CDELT1``
for ``x``, ``...2`` for ``y``, CRPIX in column units, FITS 1-based). A grid of
regular bins of ``w`` pixels starting at ``lo`` is itself an image whose FITS
pixel ``j`` (1-based) is centred on column value ``lo + (j - 0.5) * w``, so its
WCS has ``CDELT' = CDELT * w`` and ``CRPIX' = (CRPIX - lo) / w + 0.5``.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["cell_wcs_keywords", "cell_radec", "cube_wcs"]

_KEYS = ("CTYPE", "CRVAL", "CRPIX", "CDELT")


def cell_wcs_keywords(attrs, y_axis, x_axis) -> dict:
    """WCS keywords (axis 1 = x cells, axis 2 = y cells) for a grid of regular
    y/x axes, from the event WCS keywords in ``attrs``; ``{}`` when the event
    WCS is missing or an axis has explicit (irregular) edges. Eager, tiny."""
    if not (x_axis.is_regular and y_axis.is_regular):
        return {}
    if any(f"{k}{i}" not in attrs for k in _KEYS for i in (1, 2)):
        return {}
    out = {"WCSAXES": 2}
    for i, ax in ((1, x_axis), (2, y_axis)):
        lo = float(ax.edges[0])
        out[f"CTYPE{i}"] = str(attrs[f"CTYPE{i}"])
        out[f"CRVAL{i}"] = float(attrs[f"CRVAL{i}"])
        out[f"CRPIX{i}"] = (float(attrs[f"CRPIX{i}"]) - lo) / ax.width + 0.5
        out[f"CDELT{i}"] = float(attrs[f"CDELT{i}"]) * ax.width
        out[f"CUNIT{i}"] = str(attrs.get(f"CUNIT{i}", "deg"))
    return out


def _wcs(kw: dict):
    hdr = {k: v for k, v in kw.items() if k[:-1] in _KEYS + ("CUNIT",) or k == "WCSAXES"}
    return _cached_wcs(tuple(sorted(hdr.items())))


@functools.lru_cache(maxsize=64)
def _cached_wcs(items: tuple):
    from astropy.wcs import WCS

    return WCS(dict(items, NAXIS=2))


@functools.lru_cache(maxsize=16)
def _radec(items: tuple, ny: int, nx: int):
    w = _cached_wcs(items)
    jx, jy = np.meshgrid(np.arange(nx, dtype=np.float64), np.arange(ny, dtype=np.float64))
    return w.wcs_pix2world(jx, jy, 0)


def cell_radec(kw: dict, ny: int, nx: int):
    """RA and Dec [deg] of every cell centre, two float64 arrays ``(ny, nx)``
    (eager; 16 bytes per cell; recent grids are cached)."""
    hdr = {k: v for k, v in kw.items() if k[:-1] in _KEYS + ("CUNIT",) or k == "WCSAXES"}
    ra, dec = _radec(tuple(sorted(hdr.items())), int(ny), int(nx))
    return ra.copy(), dec.copy()


def cube_wcs(cube):
    """``astropy.wcs.WCS`` of the (y, x) cells of a cube made by ``bin_events``
    (from its attrs; pixel (0, 0) is cell ``x=0, y=0``)."""
    kw = {k: v for k, v in cube.attrs.items() if k[:-1] in _KEYS + ("CUNIT",) or k == "WCSAXES"}
    if any(f"{k}{i}" not in kw for k in _KEYS for i in (1, 2)):
        raise ValueError("cube has no cell WCS keywords (needs regular y and x axes and an event WCS)")
    return _wcs(kw)
