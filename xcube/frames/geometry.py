"""The geometry of a frame relative to the base frame: a rotation about
the frame centre, then a shift (what :mod:`xcube.frames.align` measures and
:mod:`xcube.frames.photometry` and :mod:`xcube.frames.simulate` apply).

A star at base-frame pixel ``(x, y)`` sits at :func:`transform` ``(x, y)``
in the frame: rotated by ``rotation`` [deg, from +x towards +y] about
:func:`rotation_centre`, then shifted by ``(offset_x, offset_y)`` [px];
without rotation, ``(x + offset_x, y + offset_y)``. Pixels are 0-based.
"""
from __future__ import annotations

import numpy as np

__all__ = ["rotation_centre", "transform", "fit_transform"]


def rotation_centre(shape) -> tuple[float, float]:
    """Centre ``(x, y)`` [px, 0-based] of frames of ``shape`` ``(ny, nx)``,
    about which :func:`transform` rotates: ``((nx - 1) / 2, (ny - 1) / 2)``.
    Eager (scalars)."""
    ny, nx = shape[-2:]
    return (nx - 1) / 2.0, (ny - 1) / 2.0


def transform(x, y, offset_x, offset_y, rotation=0.0, centre=(0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Frame pixels of base-frame pixels ``x``, ``y`` [px]: rotated by
    ``rotation`` [deg, from +x towards +y] about ``centre`` (see
    :func:`rotation_centre`), then shifted by ``offset_x``, ``offset_y``
    [px]. With ``rotation`` 0 this is frame pixel = base pixel + offset.
    Eager; returns two float64 arrays of the shape of ``x``."""
    a = np.radians(float(rotation))
    c, s = np.cos(a), np.sin(a)
    u, v = np.asarray(x, float) - centre[0], np.asarray(y, float) - centre[1]
    return centre[0] + c * u - s * v + offset_x, centre[1] + s * u + c * v + offset_y


def fit_transform(bx, by, fx, fy, centre=(0.0, 0.0)) -> tuple[float, float, float]:
    """Least-squares rotation + shift (scale 1; 2-D Kabsch/Procrustes) that
    takes base positions ``bx``, ``by`` to frame positions ``fx``, ``fy``
    (matched pairs, [px], at least 2). Returns ``(offset_x, offset_y,
    rotation)`` [px, px, deg] in the convention of :func:`transform`. Eager,
    numpy: 1-D arrays of one length."""
    u, v = np.asarray(bx, float) - centre[0], np.asarray(by, float) - centre[1]
    p, q = np.asarray(fx, float) - centre[0], np.asarray(fy, float) - centre[1]
    mu, mv, mp, mq = u.mean(), v.mean(), p.mean(), q.mean()
    du, dv, dp, dq = u - mu, v - mv, p - mp, q - mq
    a = np.arctan2((du * dq - dv * dp).sum(), (du * dp + dv * dq).sum())
    c, s = np.cos(a), np.sin(a)
    return float(mp - (c * mu - s * mv)), float(mq - (s * mu + c * mv)), float(np.degrees(a))
