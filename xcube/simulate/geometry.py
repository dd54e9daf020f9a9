"""Sky and detector geometry of a simulated XMM-Newton EPIC observation.

Sky pixels are the X/Y columns of EPIC event files: 0.05" pixels, tangent point
at the reference pixel 25921 (``REF_PIXEL``), valid values 1-51840. The
detector frame (u, v) [arcmin] is the sky frame rotated by the position angle
plus the camera's own rotation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .detector import Detector
from .models import position_given

__all__ = ["REF_PIXEL", "SKY_PIXEL_DEG", "MAX_SKY_PIXEL", "Geometry", "sky_wcs", "to_sky", "to_pixel",
           "sky_position"]

REF_PIXEL = 25921.0  # TCRPX of XMM sky X/Y
SKY_PIXEL_DEG = 0.05 / 3600.0
MAX_SKY_PIXEL = 51840


def sky_wcs(attrs: Mapping):
    """:func:`xcube.wcs` of the X/Y columns from EventList attrs: raw column
    values are its (0-based) pixel coordinates. ``ValueError`` when the attrs
    hold no sky WCS. Eager (attrs only)."""
    from ..skycoords import wcs

    try:
        return wcs(dict(attrs))
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]}; give x=/y= sky pixels instead of ra=/dec=") from None


def to_sky(w, x, y):
    """(ra, dec) [deg] arrays of raw sky pixels ``x``, ``y`` (scalars or
    arrays) through WCS ``w``. Eager, numpy: 1-D arrays of the length of
    ``x``."""
    ra, dec = w.wcs_pix2world(np.atleast_1d(x), np.atleast_1d(y), 0)
    return ra, dec


def to_pixel(w, ra, dec):
    """(x, y) raw sky-pixel arrays of ``ra``, ``dec`` [deg] through WCS ``w``.
    Eager, numpy: 1-D arrays of the length of ``ra``."""
    x, y = w.wcs_world2pix(np.atleast_1d(ra), np.atleast_1d(dec), 0)
    return x, y


def sky_position(spec, w, x_range, y_range, origin: str, who: str):
    """``(x, y)`` sky pixels (floats) of the position of ``spec`` (``ra``/``dec``
    through WCS ``w``, or ``x``/``y``; :func:`~xcube.simulate.models.position_given`),
    or None when it gives none (a random position). ``ValueError`` naming
    ``who``, the position and the legal range when it lies outside
    ``x_range``/``y_range`` (inclusive sky pixels; ``origin`` says where the
    range comes from, e.g. ``"TLMIN/TLMAX"``), has no pixel position (over
    90 deg from the projection's reference point), or is given as ra/dec
    while ``w`` is None. The one position check of ``event_list`` and
    ``inject_*``. Eager (scalars)."""
    given = position_given(spec, who)
    if given is None:
        return None
    if given == "sky":
        if w is None:
            raise ValueError(f"{who}: ra/dec given but the event list has no sky WCS attrs; give x/y instead")
        px, py = (float(v[0]) for v in to_pixel(w, spec.ra, spec.dec))
        where = f"ra={spec.ra}, dec={spec.dec} " + (
            f"(X={px:.1f}, Y={py:.1f})" if np.isfinite(px) and np.isfinite(py) else
            "(not on the list's sky projection: over 90 deg from its reference point)")
    else:
        px, py = float(spec.x), float(spec.y)
        where = f"x={spec.x}, y={spec.y}"
    (x0, x1), (y0, y1) = x_range, y_range
    if not (np.isfinite(px) and np.isfinite(py) and x0 <= px <= x1 and y0 <= py <= y1):
        raise ValueError(
            f"{who}: position {where} is outside the event list's sky range X {x0:g}..{x1:g}, "
            f"Y {y0:g}..{y1:g} ({origin}); give a position in the field")
    return px, py


@dataclass(frozen=True)
class Geometry:
    """Where the detector lies on the sky: reference pixel, pixel size [arcsec],
    position angle [deg] and the camera model."""

    crpix: float
    pix_arcsec: float
    pa_deg: float
    det: Detector

    def offsets(self, x, y):
        """Sky pixels -> detector-frame offsets (u, v) [arcmin]."""
        dx = (np.asarray(x, dtype=np.float64) - self.crpix) * self.pix_arcsec / 60.0
        dy = (np.asarray(y, dtype=np.float64) - self.crpix) * self.pix_arcsec / 60.0
        th = math.radians(self.pa_deg + self.det.rotation_deg)
        c, s = math.cos(th), math.sin(th)
        return c * dx + s * dy, -s * dx + c * dy

    def on_detector(self, x, y):
        """Boolean array: sky pixels inside the FOV disc and the CCD array.
        ``x``, ``y`` [sky pixels], numbers or numpy arrays that broadcast; the
        result has their broadcast shape. Eager."""
        u, v = self.offsets(x, y)
        hu, hv = self.det.half_size_arcmin
        r = np.hypot(u, v)
        return (r < self.det.fov_radius_arcmin) & (np.abs(u) < hu) & (np.abs(v) < hv)

    def ccd(self, x, y):
        """CCD number (uint8) of each sky pixel."""
        u, v = self.offsets(x, y)
        return self.det.ccd_of(u, v)

    def raw(self, x, y):
        """(RAWX, RAWY) int16 of each sky pixel on its CCD (simplified layout)."""
        u, v = self.offsets(x, y)
        return self.det.raw_of(u, v)

    def sample_fov(self, n, rng, vignetted=False):
        """``n`` uniform (or vignetted) sky positions [float pixels] on the detector.

        Drawn in the detector frame (uniform in the FOV disc, kept inside the
        CCD array), then rotated to sky pixels."""
        out_u, out_v, have = [], [], 0
        rmax = self.det.fov_radius_arcmin
        hu, hv = self.det.half_size_arcmin
        while have < n:
            m = int((n - have) * 1.3) + 16
            u = rng.uniform(-rmax, rmax, m)
            v = rng.uniform(-rmax, rmax, m)
            r2 = (u * u + v * v) / (rmax * rmax)
            keep = (r2 < 1.0) & (np.abs(u) < hu) & (np.abs(v) < hv)
            if vignetted:  # mild effective-area fall-off: 1 - 0.5 (r / R)^2
                keep &= rng.random(m) < 1.0 - 0.5 * r2
            out_u.append(u[keep])
            out_v.append(v[keep])
            have += int(keep.sum())
        u = np.concatenate(out_u)[:n]
        v = np.concatenate(out_v)[:n]
        th = math.radians(self.pa_deg + self.det.rotation_deg)
        c, s = math.cos(th), math.sin(th)
        scale = 60.0 / self.pix_arcsec
        return self.crpix + (c * u - s * v) * scale, self.crpix + (s * u + c * v) * scale
