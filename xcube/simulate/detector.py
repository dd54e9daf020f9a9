"""Simulation models of the XMM-Newton EPIC cameras: CCD layouts, background
and source rate ranges, event-grade (PATTERN) tables, FLAG values and spectra.

The spectra are tabulated once per (kind, lines, band) and sampled by inverse
transform from a quantile table, so drawing an energy is O(1) per event.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

__all__ = ["Detector", "detector", "sample_energy", "draw_patterns", "draw_flags"]


@dataclass(frozen=True)
class Detector:
    """Simulation model of one EPIC camera (layout, background, patterns).

    Angles in arcmin in the detector frame (u, v); rates in ct/s over the FOV,
    0.2-12 keV; ``lines`` are (energy [keV], fraction of the particle
    background); pattern tables are (values, probabilities)."""

    fov_radius_arcmin: float
    half_size_arcmin: tuple[float, float]  # detector-frame half extent (u, v)
    ccd_of: Callable[[np.ndarray, np.ndarray], np.ndarray]
    raw_of: Callable[[np.ndarray, np.ndarray], tuple]
    rotation_deg: float
    background_rate: float  # quiescent ct/s over the FOV, 0.2-12 keV
    source_rate_range: tuple[float, float]
    proton_rate_range: tuple[float, float]
    lines: tuple[tuple[float, float], ...]  # (keV, fraction of background counts)
    photon_patterns: tuple[tuple[int, ...], tuple[float, ...]]
    particle_patterns: tuple[tuple[int, ...], tuple[float, ...]]
    default_ccd: int

    def ccd_numbers(self) -> np.ndarray:
        """CCD numbers met on a 0.5' grid over the detector frame (with
        repeats): 1-D, one per grid point (65 x 65)."""
        u, v = np.meshgrid(np.linspace(-16, 16, 65), np.linspace(-16, 16, 65))
        return self.ccd_of(u.ravel(), v.ravel())


def _pn_ccd(u, v):
    """pn: two rows of six 4.37' x 13.7' CCDs; quadrants 1-3, 4-6 on top,
    7-9 (under 4-6) and 10-12 (under 1-3) below."""
    col = np.clip(np.floor((u + 13.1) / (26.2 / 6)), 0, 5).astype(np.int16)
    return np.where(v >= 0, 1 + col, 12 - col).astype(np.uint8)


def _mos_ccd(u, v):
    """MOS: central CCD 1 (10.9' square), CCDs 2 and 5 above and below it,
    3/4 and 7/6 in the left and right columns (upper/lower)."""
    h = 5.5
    mid = np.abs(u) < h
    centre = np.where(v >= h, 2, np.where(v < -h, 5, 1))
    side = np.where(u < 0, np.where(v >= 0, 3, 4), np.where(v >= 0, 7, 6))
    return np.where(mid, centre, side).astype(np.uint8)


_PN_CCD_U = 26.2 / 6  # arcmin across one pn CCD (64 columns)
_PN_CCD_V = 13.65  # arcmin along one pn CCD (200 rows of 4.1")
_PN_ROWS_READ = 188  # full frame reads RAWY 13-200: 188 rows from the centre line out


def _pixel(offset, size, n):
    """1-based pixel number of ``offset`` in [0, size) cut into ``n`` pixels."""
    return (np.clip(np.floor(offset / size * n), 0, n - 1) + 1).astype(np.int16)


def _pn_raw(u, v):
    """pn (RAWX, RAWY): 64 columns of 4.1" across each CCD, rows of 4.1"
    counted from the outer edge (RAWY 1) to the camera centre line (RAWY
    200); the full-frame mode reads RAWY 13-200, so the detector frame
    extends 188 rows from the centre line."""
    col = np.clip(np.floor((u + 13.1) / _PN_CCD_U), 0, 5)
    return _pixel(u + 13.1 - col * _PN_CCD_U, _PN_CCD_U, 64), _pixel(_PN_CCD_V - np.abs(v), _PN_CCD_V, 200)


# MOS CCD boxes in the detector frame: CCD -> (u0, u1, v0, v1) [arcmin]
_MOS_BOXES = {1: (-5.5, 5.5, -5.5, 5.5), 2: (-5.5, 5.5, 5.5, 16.5), 5: (-5.5, 5.5, -16.5, -5.5),
              3: (-16.5, -5.5, 0.0, 16.5), 4: (-16.5, -5.5, -16.5, 0.0), 7: (5.5, 16.5, 0.0, 16.5),
              6: (5.5, 16.5, -16.5, 0.0)}


def _mos_raw(u, v):
    """MOS (RAWX, RAWY): 600 x 600 pixels over each CCD's box (1.1" on the
    square CCDs; the simplified side CCDs stretch their rows)."""
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    ccd = _mos_ccd(u, v)
    rx, ry = np.ones(u.shape, np.int16), np.ones(u.shape, np.int16)
    for c, (u0, u1, v0, v1) in _MOS_BOXES.items():
        sel = ccd == c
        rx[sel] = _pixel(u[sel] - u0, u1 - u0, 600)
        ry[sel] = _pixel(v[sel] - v0, v1 - v0, 600)
    return rx, ry


def _pattern_table(singles, doubles, triples_quads, others, max_other):
    vals = [0, 1, 2, 3, 4] + list(range(5, 13)) + list(range(13, max_other + 1))
    p = [singles] + [doubles * w for w in (0.55, 0.1, 0.25, 0.1)]
    p += [triples_quads / 8] * 8
    p += [others / (max_other - 12)] * (max_other - 12) if max_other > 12 else []
    p = np.asarray(p) / np.sum(p)
    return tuple(vals[: len(p)]), tuple(p)


_MOS_COMMON = dict(
    fov_radius_arcmin=15.0,
    half_size_arcmin=(16.5, 16.5),
    ccd_of=_mos_ccd,
    raw_of=_mos_raw,
    background_rate=0.4,
    source_rate_range=(0.001, 0.02),
    proton_rate_range=(2.0, 10.0),
    lines=((1.486, 0.10), (1.740, 0.08), (5.41, 0.01), (6.40, 0.01), (9.71, 0.03), (11.44, 0.02)),
    photon_patterns=_pattern_table(0.76, 0.22, 0.015, 0.005, 25),
    particle_patterns=_pattern_table(0.55, 0.30, 0.10, 0.05, 25),
    default_ccd=1,
)

_DETECTORS = {
    "xmm-pn": Detector(
        fov_radius_arcmin=15.0,
        half_size_arcmin=(13.1, _PN_CCD_V * _PN_ROWS_READ / 200),
        ccd_of=_pn_ccd,
        raw_of=_pn_raw,
        rotation_deg=0.0,
        background_rate=1.5,
        source_rate_range=(0.003, 0.06),
        proton_rate_range=(6.0, 30.0),
        lines=((1.486, 0.06), (7.47, 0.05), (8.04, 0.12), (8.63, 0.06), (8.90, 0.02)),
        photon_patterns=_pattern_table(0.72, 0.27, 0.01, 0.0, 12),
        particle_patterns=_pattern_table(0.50, 0.35, 0.15, 0.0, 12),
        default_ccd=4,
    ),
    "xmm-mos1": Detector(rotation_deg=0.0, **_MOS_COMMON),
    "xmm-mos2": Detector(rotation_deg=90.0, **_MOS_COMMON),
}

_FLAG_VALUES = np.array([65536, 256, 64, 2048, 1], dtype=np.int32)
_FLAG_P = np.array([0.6, 0.2, 0.1, 0.05, 0.05])
_FLAG_FRACTION = 0.03


def detector(profile_name: str) -> Detector:
    """The :class:`Detector` model of a mission profile name (``"xmm-pn"``,
    ``"xmm-mos1"``, ``"xmm-mos2"``); ``ValueError`` naming the supported ones
    otherwise. Eager (a look-up)."""
    try:
        return _DETECTORS[profile_name]
    except KeyError:
        raise ValueError(
            f"instrument {profile_name!r}: no simulation model; xcube.simulate.event_list supports "
            f"{sorted(_DETECTORS)} (inject_flare/inject_eclipse work on event lists of any mission)"
        ) from None


def draw_patterns(patterns: dict, particle: np.ndarray, rng) -> np.ndarray:
    """PATTERN (uint8) of each event: from ``patterns["particle"]`` where
    ``particle`` is True, else from ``patterns["photon"]`` (tables of (values, p)):
    1-D, the shape of ``particle`` (bool, one per event). Eager."""
    pat = np.empty(particle.size, dtype=np.uint8)
    for key, sel in (("photon", ~particle), ("particle", particle)):
        n = int(sel.sum())
        if n:
            vals, p = patterns[key]
            pat[sel] = rng.choice(np.asarray(vals, dtype=np.uint8), size=n, p=np.asarray(p))
    return pat


def draw_flags(n: int, rng) -> np.ndarray:
    """FLAG (int32, 1-D ``(n,)``) of ``n`` events: 3 % carry one of the
    common EPIC flag bits, the rest 0. Eager, numpy."""
    flag = np.zeros(n, dtype=np.int32)
    bad = rng.random(n) < _FLAG_FRACTION
    flag[bad] = rng.choice(_FLAG_VALUES, size=int(bad.sum()), p=_FLAG_P)
    return flag


# ---------------------------------------------------------------- spectra
def _spectrum_pdf(kind: str, e: np.ndarray, lines) -> np.ndarray:
    if kind == "particle":
        cont = e ** -0.4
    elif kind == "soft_proton":
        cont = e ** -0.6
    elif kind == "diffuse":
        cont = np.exp(-e / 1.0) * np.exp(-((0.3 / e) ** 2))
    elif kind == "source":
        cont = e ** -1.7 * np.exp(-((0.4 / e) ** 2)) / (1.0 + (e / 6.0) ** 3)
    else:
        raise ValueError(f"unknown spectrum {kind!r}")
    de = np.gradient(e)
    pdf = cont / np.sum(cont * de)
    if kind == "particle" and lines:
        frac = sum(w for _, w in lines)
        pdf = pdf * (1.0 - frac)
        for energy, w in lines:
            if e[0] < energy < e[-1]:
                s = 0.02 * math.sqrt(energy)
                pdf = pdf + w * np.exp(-0.5 * ((e - energy) / s) ** 2) / (s * math.sqrt(2 * math.pi))
    return pdf


_N_QUANTILES = 65536


@lru_cache(maxsize=64)
def _spectrum_table(kind: str, lines: tuple, band: tuple[float, float]):
    """(energy grid [keV], CDF, quantile table) for inverse-transform sampling.

    The CDF is tabulated on a 2 eV grid; the quantile table holds the energy
    at ``_N_QUANTILES + 1`` equally spaced probabilities, so sampling is a table
    look-up with linear interpolation (O(1) per event)."""
    lo, hi = band
    e = np.linspace(lo, hi, max(int(round((hi - lo) / 0.002)) + 1, 64))
    pdf = _spectrum_pdf(kind, e, lines)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(e))])
    cdf /= cdf[-1]
    quantiles = np.interp(np.linspace(0.0, 1.0, _N_QUANTILES + 1), cdf, e)
    return e, cdf, quantiles


def sample_energy(kind: str, n: int, rng, band, lines=()) -> np.ndarray:
    """``n`` energies [keV, float64, 1-D ``(n,)``] drawn from spectrum ``kind`` (``"particle"``,
    ``"soft_proton"``, ``"diffuse"`` or ``"source"``) inside ``band`` [keV];
    ``lines`` ((keV, fraction), ...) are added to the particle spectrum. Eager,
    numpy."""
    q = _spectrum_table(kind, tuple(lines), tuple(float(b) for b in band))[2]
    u = rng.random(n) * _N_QUANTILES
    k = np.minimum(u.astype(np.int64), _N_QUANTILES - 1)
    return q[k] + (u - k) * (q[k + 1] - q[k])
