"""Gaussian-equivalent significance of a Poisson Bayes factor: the level s
whose calibrated threshold (:func:`xcube.bayes.threshold`) equals a given
log10 Bayes factor. Used by the detection table and the light-curve features."""
from __future__ import annotations

import numpy as np

from . import bayes

__all__ = ["sigma_equivalent", "sigma_equivalents", "SIGMA_MAX"]


def sigma_equivalent(log10b: float, kind: str) -> float:
    """The Gaussian-equivalent significance s whose calibrated threshold
    (``bayes.threshold(s)``) equals ``log10b``; 0 below the 0-sigma threshold
    (and for -inf), NaN for a NaN factor, and inf beyond the calibrated
    scale (and for +inf, e.g. a frame with counts where none are expected).

    The scale ends where the calibration does (:data:`SIGMA_MAX`): a peak
    factor above ``threshold(1000).peak`` is inf; an eclipse factor above
    ``log10_bayes_eclipse(0, 1000)`` (log10 B = 434.29, 0 counts where the
    calibration expects 1000: s = sqrt(1000) = 31.62) is inf, since no
    eclipse at the calibration point is deeper. Bisection to 1e-6 in s. Eager
    (one scalar)."""
    return float(sigma_equivalents(np.array([log10b], dtype=float), kind)[0])


#: the largest Gaussian-equivalent level of the scale; larger factors give inf
SIGMA_MAX = 1000.0


def _calibration_n(s: np.ndarray, kind: str) -> np.ndarray:
    """The calibration counts of ``bayes.threshold(s)`` for an array of sigmas
    (the arithmetic of ``bayes.calibration_counts``), float."""
    mu = bayes.CALIBRATION_MU
    s2 = s * s
    root = np.sqrt(8.0 * mu * s2 + s2 * s2)
    if kind == "peak":
        return np.ceil((2.0 * mu + s2 + root) / 2.0)
    return np.floor((2.0 * mu + s2 - root) / 2.0)


def _log10_at(n: np.ndarray, kind: str) -> np.ndarray:
    """The log10 Bayes factor of ``kind`` at the calibration mu for counts
    ``n`` (inf for an eclipse below 0 counts)."""
    mu = bayes.CALIBRATION_MU
    if kind == "peak":
        return bayes.log10_bayes_peak(n, np.full(n.shape, mu))
    out = np.full(n.shape, np.inf)
    ok = n >= 0
    out[ok] = bayes.log10_bayes_eclipse(n[ok], np.full(int(ok.sum()), mu))
    return out


def _thresholds_at(s: np.ndarray, kind: str) -> np.ndarray:
    """``bayes.threshold(s)`` of ``kind`` for an array of sigmas (vectorised)."""
    return _log10_at(_calibration_n(s, kind), kind)


def _largest_threshold(kind: str) -> float:
    """The largest finite calibrated threshold of ``kind`` for s <= SIGMA_MAX:
    ``threshold(SIGMA_MAX).peak`` (the peak threshold rises with s) and, for
    eclipses, ``log10 B_eclipse(0, CALIBRATION_MU)`` (the eclipse threshold
    rises with s until its calibration count reaches 0, at s = sqrt(1000), and
    is +inf beyond)."""
    if kind == "peak":
        return float(_thresholds_at(np.array([SIGMA_MAX]), kind)[0])
    return float(_log10_at(np.array([0.0]), kind)[0])


#: largest table of thresholds per calibration count made for one bisection
_TABLE_MAX = 1 << 16


def _threshold_function(kind: str, s_lo: float, s_hi: float):
    """``s -> bayes.threshold(s)`` of ``kind`` for sigmas in [s_lo, s_hi]: the
    thresholds of every calibration count in that range tabulated once (the
    same values), or :func:`_thresholds_at` when that range is too wide.
    Sigmas outside the range get the value at its nearer end (the bisection
    masks them)."""
    n = _calibration_n(np.array([s_lo, s_hi]), kind)
    n0, n1 = int(max(n.min(), -1.0)), int(n.max())
    if n1 - n0 >= _TABLE_MAX:
        return lambda s: _thresholds_at(s, kind)
    table = _log10_at(np.arange(n0, n1 + 1, dtype=np.float64), kind)
    return lambda s: table[np.clip(_calibration_n(s, kind), n0, n1).astype(np.int64) - n0]  # (clipped: masked)


def sigma_equivalents(log10b, kind: str) -> np.ndarray:
    """:func:`sigma_equivalent` of an array of log10 Bayes factors (one
    vectorised bisection for all of them, on the thresholds of the
    calibration counts in its range tabulated once). Returns the
    Gaussian-equivalent sigmas as a float64 numpy array of the shape of
    ``log10b`` (at least 1-D), 0, inf or NaN as in :func:`sigma_equivalent`.
    Eager."""
    if kind not in ("peak", "eclipse"):
        raise ValueError(f"kind must be 'peak' or 'eclipse', not {kind!r}")
    b = np.atleast_1d(np.asarray(log10b, dtype=float))
    out = np.where(np.isinf(b), np.where(b > 0, np.inf, 0.0), np.nan)
    idx = np.flatnonzero(np.isfinite(b))
    if idx.size == 0:
        return out
    bb = b[idx]
    lo = np.full(bb.shape, 1e-3)
    zero = _thresholds_at(lo, kind) > bb
    big = ~zero & (bb > _largest_threshold(kind))  # beyond the calibrated scale: inf
    hi = np.ones(bb.shape)
    todo = ~zero & ~big
    while True:  # ends by s = SIGMA_MAX, where the threshold is >= every b left
        below = todo & (hi < SIGMA_MAX) & (_thresholds_at(hi, kind) < bb)
        if not below.any():
            break
        hi = np.where(below, np.minimum(2.0 * hi, SIGMA_MAX), hi)
    act = todo
    if act.any():
        threshold_at = _threshold_function(kind, 1e-3, float(hi[act].max()))
    while np.any(act & (hi - lo > 1e-6)):
        mid = 0.5 * (lo + hi)
        up = threshold_at(mid) < bb  # threshold(mid) below b: root above mid
        lo = np.where(act & up, mid, lo)
        hi = np.where(act & ~up, mid, hi)
    res = np.where(zero, 0.0, np.where(big, np.inf, 0.5 * (lo + hi)))
    out[idx] = res
    return out
