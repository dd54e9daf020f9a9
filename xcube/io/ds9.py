"""DS9 region files out, through the ``regions`` package.

``write_ds9`` takes ``regions`` objects, DS9 strings, or a table of sources
(``ra``/``dec`` [deg] columns, e.g. ``SearchResult.detections``) and writes a
DS9 region file atomically. Eager and small.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["circles_from_table", "to_ds9", "write_ds9"]


def circles_from_table(table, radius_arcsec: float = 10.0, *, label: str | None = None, color: str | None = None,
                       frame="fk5"):
    """Sky circles (``CircleSkyRegion``) at each row's ``ra``/``dec`` [deg].

    ``radius_arcsec`` is a number or the name of a column [arcsec]; ``label``
    names a column whose value becomes the DS9 ``text``; ``color`` a DS9 colour;
    ``frame`` the frame ``ra``/``dec`` are in: a name (``"fk5"``, J2000, or
    ``"icrs"``) or an astropy frame, such as that of the event files' WCS
    (RADESYS/EQUINOX) for xcube's detections. DS9 knows FK5 only at J2000
    and FK4 at B1950, so positions in another equinox are precessed to FK5
    J2000. Returns a ``regions.Regions``.
    Eager: reads the table's columns into numpy.
    """
    import astropy.units as u
    from astropy.coordinates import FK4, FK5, SkyCoord
    from astropy.time import Time
    from regions import CircleSkyRegion, Regions

    for col in ("ra", "dec"):
        if col not in table:
            raise KeyError(f"circles_from_table: the table has no {col!r} column (columns: {list(table)})")
    ra = np.asarray(table["ra"], np.float64)
    dec = np.asarray(table["dec"], np.float64)
    radius = (
        np.asarray(table[radius_arcsec], np.float64)
        if isinstance(radius_arcsec, str)
        else np.full(ra.size, float(radius_arcsec))
    )
    if np.any(radius <= 0):
        raise ValueError("circles_from_table: radius_arcsec must be positive")
    texts = [str(v) for v in table[label]] if label is not None else [None] * ra.size
    centres = SkyCoord(ra * u.deg, dec * u.deg, frame=frame.lower() if isinstance(frame, str) else frame)
    f = centres.frame
    if (isinstance(f, FK5) and f.equinox != Time("J2000")) or (isinstance(f, FK4) and f.equinox != Time("B1950")):
        centres = centres.transform_to(FK5(equinox="J2000"))  # (regions writes any FK5 as j2000, any FK4 as b1950)
    out = []
    for centre, rad, text in zip(centres, radius, texts):
        reg = CircleSkyRegion(center=centre, radius=rad * u.arcsec)
        if text is not None:
            reg.meta["text"] = text
        if color is not None:
            reg.visual["color"] = color
        out.append(reg)
    return Regions(out)


def _as_regions(regions):
    from regions import Region, Regions

    if isinstance(regions, Regions):
        return regions
    if isinstance(regions, Region):
        return Regions([regions])
    if isinstance(regions, str):
        return Regions.parse(regions, format="ds9")
    if hasattr(regions, "columns") or (isinstance(regions, dict) and "ra" in regions):
        return circles_from_table(regions)
    out = []
    for r in regions:
        out.extend(_as_regions(r))
    return Regions(out)


def to_ds9(regions) -> str:
    """DS9 region text for ``regions`` (objects, DS9 strings, a list of either,
    or a table with ``ra``/``dec`` columns; tables become 10-arcsec circles).
    Eager."""
    regs = _as_regions(regions)
    if len(regs) == 0:
        return "# Region file format: DS9 astropy/regions\n"
    return regs.serialize(format="ds9")


def write_ds9(path, regions, *, overwrite: bool = False) -> Path:
    """Write ``regions`` (see :func:`to_ds9`) as a DS9 region file, atomically.
    Returns the path. Eager: writes the file atomically."""
    from .atomic import atomic_file

    text = to_ds9(regions)
    path = Path(path)
    with atomic_file(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)
    return path
