"""Gaussian-equivalent significance of a Poisson Bayes factor: the level s
whose calibrated threshold (:func:`xcube.bayes.threshold`) equals a given
log10 Bayes factor. Used by the detection table and the light-curve features."""
from __future__ import annotations

import numpy as np

from . import bayes

__all__ = ["sigma_equivalent", "sigma_equivalents"]


def sigma_equivalent(log10b: float, kind: str) -> float:
    """The Gaussian-equivalent significance s whose calibrated threshold
    (``bayes.threshold(s)``) equals ``log10b``; 0 below the 0-sigma threshold,
    inf beyond s = 1000, NaN for a NaN factor. Bisection to 1e-6 in s."""
    return float(sigma_equivalents(np.array([log10b], dtype=float), kind)[0])


def _thresholds_at(s: np.ndarray, kind: str) -> np.ndarray:
    """``bayes.threshold(s)`` of ``kind`` for an array of sigmas (vectorised;
    the same arithmetic as ``bayes.calibration_counts``)."""
    mu = bayes.CALIBRATION_MU
    s2 = s * s
    root = np.sqrt(8.0 * mu * s2 + s2 * s2)
    if kind == "peak":
        n = np.ceil((2.0 * mu + s2 + root) / 2.0)
        return bayes.log10_bayes_peak(n, np.full(n.shape, mu))
    n = np.floor((2.0 * mu + s2 - root) / 2.0)
    out = np.full(n.shape, np.inf)
    ok = n >= 0
    out[ok] = bayes.log10_bayes_eclipse(n[ok], np.full(int(ok.sum()), mu))
    return out


def sigma_equivalents(log10b, kind: str) -> np.ndarray:
    """:func:`sigma_equivalent` of an array of log10 Bayes factors (one
    vectorised bisection for all of them). Eager, float64."""
    if kind not in ("peak", "eclipse"):
        raise ValueError(f"kind must be 'peak' or 'eclipse', not {kind!r}")
    b = np.atleast_1d(np.asarray(log10b, dtype=float))
    out = np.full(b.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(b))
    if idx.size == 0:
        return out
    bb = b[idx]
    lo = np.full(bb.shape, 1e-3)
    zero = _thresholds_at(lo, kind) > bb
    hi = np.ones(bb.shape)
    big = np.zeros(bb.shape, bool)
    todo = ~zero
    while True:
        below = todo & ~big & (_thresholds_at(hi, kind) < bb)
        if not below.any():
            break
        hi = np.where(below, 2.0 * hi, hi)
        big |= hi > 1e3
    act = todo & ~big
    while np.any(act & (hi - lo > 1e-6)):
        mid = 0.5 * (lo + hi)
        up = _thresholds_at(mid, kind) < bb  # threshold(mid) below b: root above mid
        lo = np.where(act & up, mid, lo)
        hi = np.where(act & ~up, mid, hi)
    res = np.where(zero, 0.0, np.where(big, np.inf, 0.5 * (lo + hi)))
    out[idx] = res
    return out
