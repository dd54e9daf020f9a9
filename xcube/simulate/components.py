"""Emission components of a simulation and their time profiles.

A :class:`Component` is either a piecewise-constant rate (``edges``, ``rates``)
or a Gaussian burst (``gauss``); it knows its expected counts inside good time
intervals and draws event times from its profile restricted to them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from .. import gti as gtimod
from .models import SoftProtonFlare

__all__ = ["Component", "soft_proton_profile"]


def _segments(edges, rates, intervals):
    """Piecewise-constant rate restricted to ``intervals``: (lo, hi, rate) arrays."""
    s, e = intervals
    if s.size == 0:
        z = np.empty(0)
        return z, z, z
    bps = np.unique(np.concatenate([edges, s, e]))
    bps = bps[(bps >= s[0]) & (bps <= e[-1])]
    lo, hi = bps[:-1], bps[1:]
    mid = 0.5 * (lo + hi)
    k = np.searchsorted(edges, mid, side="right") - 1
    ok = (k >= 0) & (k < len(rates))
    r = np.where(ok, np.asarray(rates)[np.clip(k, 0, len(rates) - 1)], 0.0)
    r = r * gtimod.in_gti(mid, intervals)
    return lo, hi, r


def _stable_gauss_mass(a, b):
    """P(a <= Z < b) for a standard normal, accurate in both tails."""
    return np.where(a > 0, special.ndtr(-a) - special.ndtr(-b), special.ndtr(b) - special.ndtr(a))


def _pick(masses, n, rng):
    c = np.cumsum(masses)
    if c.size == 0 or c[-1] <= 0:
        raise ValueError("cannot draw events from a component with zero expected counts in good time")
    j = np.searchsorted(c, rng.random(n) * c[-1], side="right")
    return np.clip(j, 0, c.size - 1)


def _gauss_times(gauss, n, rng, intervals):
    """``n`` times from a Gaussian (t_peak, sigma, amplitude) truncated to ``intervals``,
    by inverting the normal CDF in the tail each interval lies in; (t, start, stop)."""
    tp, sig, _ = gauss
    a = (intervals[0] - tp) / sig
    b = (intervals[1] - tp) / sig
    m = _stable_gauss_mass(a, b)
    j = _pick(m, n, rng)
    aj, bj = a[j], b[j]
    u = rng.random(n)
    upper = aj > 0
    z = np.empty(n)
    lo_u, hi_u = special.ndtr(-bj[upper]), special.ndtr(-aj[upper])
    z[upper] = -special.ndtri(lo_u + u[upper] * (hi_u - lo_u))
    lo_l, hi_l = special.ndtr(aj[~upper]), special.ndtr(bj[~upper])
    z[~upper] = special.ndtri(lo_l + u[~upper] * (hi_l - lo_l))
    return tp + sig * z, intervals[0][j], intervals[1][j]


@dataclass
class Component:
    """One simulated emission component (eager, small).

    ``kind``: background / diffuse / soft_proton / source / flare / eclipse_in /
    eclipse_out; ``spectrum``: a :func:`~xcube.simulate.detector.sample_energy`
    kind; ``patterns``: photon / particle; ``spatial``: fov / fov_vignetted / psf
    (at ``x``, ``y`` sky pixels); ``truth``: its row in the truth table."""

    kind: str
    spectrum: str
    patterns: str
    spatial: str
    x: float = np.nan
    y: float = np.nan
    edges: np.ndarray | None = None  # piecewise-constant profile [s]
    rates: np.ndarray | None = None  # [ct/s]
    gauss: tuple[float, float, float] | None = None  # (t_peak, sigma, amplitude)
    truth: int | None = None

    def mass(self, intervals) -> float:
        """Expected counts inside ``intervals`` ((start, stop) arrays [s])."""
        if intervals[0].size == 0:
            return 0.0
        if self.gauss is not None:
            tp, sig, amp = self.gauss
            a = (intervals[0] - tp) / sig
            b = (intervals[1] - tp) / sig
            return float(amp * sig * math.sqrt(2 * math.pi) * np.sum(_stable_gauss_mass(a, b)))
        lo, hi, r = _segments(self.edges, self.rates, intervals)
        return float(np.sum(r * (hi - lo)))

    def times(self, n, rng, intervals) -> np.ndarray:
        """``n`` event times [s], 1-D ``(n,)``, drawn from the profile inside
        ``intervals`` (unsorted)."""
        if n == 0:
            return np.empty(0)
        if self.gauss is not None:
            t, s, e = _gauss_times(self.gauss, n, rng, intervals)
        else:
            lo, hi, r = _segments(self.edges, self.rates, intervals)
            m = r * (hi - lo)
            j = _pick(m, n, rng)
            s, e = lo[j], hi[j]
            t = s + rng.random(n) * (e - s)
        return np.clip(t, s, np.nextafter(e, -np.inf))


def soft_proton_profile(sp: SoftProtonFlare, t0: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """(edges [s, mission time], rates [ct/s]) of a soft-proton flare on 20 s steps:
    a sin^2 envelope up to ``peak_rate`` times log-normal noise. 1-D numpy
    arrays, ``edges`` one longer than ``rates``. Eager, numpy."""
    n = max(int(math.ceil(sp.duration / 20.0)), 1)
    edges = t0 + sp.t_start + np.linspace(0.0, sp.duration, n + 1)
    phase = (np.arange(n) + 0.5) / n
    env = np.sin(np.pi * phase) ** 2
    noise = rng.lognormal(-0.5 * sp.variability**2, sp.variability, n) if sp.variability > 0 else 1.0
    return edges, sp.peak_rate * env * noise
