"""Event-level simulation of XMM-Newton EPIC observations and injection of
transients into any event list.

What an observation from :func:`event_list` holds
-------------------------------------------------
- **quiescent background**: particles plus unresolved sky, uniform over the field
  of view (FOV), a flat-ish continuum with the camera's fluorescence lines;
- **soft-proton flares**: episodes of enhanced, variable background (an envelope
  times log-normal 20 s variability), mildly vignetted, with a hard spectrum so
  that they dominate the 10-12 keV light curve (the bad-time-interval test);
- **constant point sources** with a Gaussian PSF of 6.6" FWHM
  (sigma = FWHM / 2.355) and an absorbed power-law spectrum;
- **flares**: a Gaussian-in-time burst (``amplitude`` ct/s at ``t_peak``,
  ``width`` = sigma in s) of a point source;
- **eclipses**: a constant source of ``rate`` ct/s whose rate drops by the
  fraction ``depth`` during ``[t_start, t_start + duration)``;
- optionally a **diffuse soft component** (thermal, kT = 1 keV, vignetted) whose
  rate is set so that the expected total is ``n_events``: heavy benchmarks get
  many events while the 10-12 keV rate (and so the bad-time test) stays that of
  a real observation.

Every event is drawn inside the good time intervals. Columns follow XMM EPIC
event files: TIME [s], X/Y (integer sky pixels of 0.05", reference pixel 25921),
PI [eV, 200-12000], PATTERN, FLAG (3 % non-zero), CCDNR (pn: 12 CCDs, 3 per
quadrant; MOS: 7 CCDs).

Scaling
-------
Event counts are drawn up front per *time slab* and per component (Poisson);
the slabs are equal time slices holding ~``chunk_events`` expected events each.
Each slab is generated independently from ``(seed, slab index)``, so the
returned EventList is a lazy Dask dataset whose chunks are the slabs: building
it costs nothing, computing a column regenerates the slabs it needs (same
numbers every time), and writing streams slab by slab. Peak memory is a few
slabs (~100 B per event of a slab), whatever the total, so 1e8 events are fine.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Mapping, Sequence

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from scipy import special
from scipy.spatial import cKDTree

from .. import gti as gtimod
from .._version import __version__
from ..io.events_fits import events_dataset
from ..missions import get_profile, profile_of

__all__ = [
    "Flare",
    "Eclipse",
    "Source",
    "SoftProtonFlare",
    "event_list",
    "inject_flare",
    "inject_eclipse",
    "write",
    "PSF_FWHM_ARCSEC",
    "TRUTH_COLUMNS",
]

log = logging.getLogger("xcube.simulate")

PSF_FWHM_ARCSEC = 6.6
_FWHM_PER_SIGMA = 2.355
_XMM_MJDREF = 50814.0  # 1998-01-01 TT, XMM mission time zero
_REF_PIXEL = 25921.0  # TCRPX of XMM sky X/Y
_SKY_PIXEL_DEG = 0.05 / 3600.0
_MAX_SKY_PIXEL = 51840

#: Columns of every truth table (times are mission seconds).
TRUTH_COLUMNS = [
    "id", "kind", "transient", "ra", "dec", "x", "y", "t_peak", "t_start", "t_stop",
    "amplitude", "width", "rate", "depth", "counts", "expected_counts", "instrument",
]


# ---------------------------------------------------------------- specifications
@dataclass
class Flare:
    """Gaussian-in-time burst of a point source.

    ``amplitude``: peak rate [ct/s]; ``width``: Gaussian sigma [s];
    ``t_peak``: time of the peak [s] (after the observation start in
    :func:`event_list`, mission time in :func:`inject_flare`). Position: ``ra``,
    ``dec`` [deg] or sky pixels ``x``, ``y``; random on the detector if omitted.
    """

    t_peak: float
    amplitude: float
    width: float
    ra: float | None = None
    dec: float | None = None
    x: float | None = None
    y: float | None = None


@dataclass
class Eclipse:
    """Constant source of ``rate`` [ct/s] whose rate falls to ``rate * (1 - depth)``
    during ``[t_start, t_start + duration)`` [s] (``t_start`` after the observation
    start in :func:`event_list`, mission time in :func:`inject_eclipse`)."""

    t_start: float
    duration: float
    depth: float = 1.0
    rate: float = 0.1
    ra: float | None = None
    dec: float | None = None
    x: float | None = None
    y: float | None = None


@dataclass
class Source:
    """Constant point source of ``rate`` [ct/s] (PSF of 6.6" FWHM)."""

    rate: float
    ra: float | None = None
    dec: float | None = None
    x: float | None = None
    y: float | None = None


@dataclass
class SoftProtonFlare:
    """Soft-proton background episode over the whole FOV: rate rising to
    ``peak_rate`` [ct/s, 0.2-12 keV] and back within ``[t_start, t_start +
    duration)`` [s after the observation start], with log-normal variability of
    ``variability`` (sigma of ln rate) on 20 s steps."""

    t_start: float
    duration: float
    peak_rate: float
    variability: float = 0.4


def _spec(cls, item):
    if isinstance(item, cls):
        return item
    if isinstance(item, Mapping):
        try:
            return cls(**item)
        except TypeError as exc:
            raise TypeError(f"bad {cls.__name__} specification {dict(item)}: {exc}") from None
    raise TypeError(f"expected a {cls.__name__} or a dict of its fields, got {type(item).__name__}")


# ---------------------------------------------------------------- detector models
@dataclass(frozen=True)
class _Detector:
    """Simulation model of one EPIC camera (layout, background, patterns)."""

    fov_radius_arcmin: float
    half_size_arcmin: tuple[float, float]  # detector-frame half extent (u, v)
    ccd_of: Callable[[np.ndarray, np.ndarray], np.ndarray]
    rotation_deg: float
    background_rate: float  # quiescent ct/s over the FOV, 0.2-12 keV
    source_rate_range: tuple[float, float]
    proton_rate_range: tuple[float, float]
    lines: tuple[tuple[float, float], ...]  # (keV, fraction of background counts)
    photon_patterns: tuple[tuple[int, ...], tuple[float, ...]]
    particle_patterns: tuple[tuple[int, ...], tuple[float, ...]]
    default_ccd: int


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
    background_rate=0.4,
    source_rate_range=(0.001, 0.02),
    proton_rate_range=(2.0, 10.0),
    lines=((1.486, 0.10), (1.740, 0.08), (5.41, 0.01), (6.40, 0.01), (9.71, 0.03), (11.44, 0.02)),
    photon_patterns=_pattern_table(0.76, 0.22, 0.015, 0.005, 25),
    particle_patterns=_pattern_table(0.55, 0.30, 0.10, 0.05, 25),
    default_ccd=1,
)

_DETECTORS = {
    "xmm-pn": _Detector(
        fov_radius_arcmin=15.0,
        half_size_arcmin=(13.1, 13.65),
        ccd_of=_pn_ccd,
        rotation_deg=0.0,
        background_rate=1.5,
        source_rate_range=(0.003, 0.06),
        proton_rate_range=(6.0, 30.0),
        lines=((1.486, 0.06), (7.47, 0.05), (8.04, 0.12), (8.63, 0.06), (8.90, 0.02)),
        photon_patterns=_pattern_table(0.72, 0.27, 0.01, 0.0, 12),
        particle_patterns=_pattern_table(0.50, 0.35, 0.15, 0.0, 12),
        default_ccd=4,
    ),
    "xmm-mos1": _Detector(rotation_deg=0.0, **_MOS_COMMON),
    "xmm-mos2": _Detector(rotation_deg=90.0, **_MOS_COMMON),
}

_FLAG_VALUES = np.array([65536, 256, 64, 2048, 1], dtype=np.int32)
_FLAG_P = np.array([0.6, 0.2, 0.1, 0.05, 0.05])
_FLAG_FRACTION = 0.03


def _detector(profile_name: str) -> _Detector:
    try:
        return _DETECTORS[profile_name]
    except KeyError:
        raise ValueError(
            f"instrument {profile_name!r}: no simulation model; xcube.simulate.event_list supports "
            f"{sorted(_DETECTORS)} (inject_flare/inject_eclipse work on event lists of any mission)"
        ) from None


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


def _sample_energy(kind, n, rng, band, lines=()) -> np.ndarray:
    """``n`` energies [keV] drawn from spectrum ``kind`` inside ``band``."""
    q = _spectrum_table(kind, tuple(lines), tuple(float(b) for b in band))[2]
    u = rng.random(n) * _N_QUANTILES
    k = np.minimum(u.astype(np.int64), _N_QUANTILES - 1)
    return q[k] + (u - k) * (q[k + 1] - q[k])


def _band_fraction(kind, band, sub_band, lines=()) -> float:
    """Fraction of a spectrum's counts in ``sub_band`` (keV)."""
    e, cdf, _ = _spectrum_table(kind, tuple(lines), tuple(float(b) for b in band))
    return float(np.interp(sub_band[1], e, cdf) - np.interp(sub_band[0], e, cdf))


# ---------------------------------------------------------------- time profiles
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


@dataclass
class _Component:
    """One simulated emission component (eager, small)."""

    kind: str  # background / diffuse / soft_proton / source / flare / eclipse_in / eclipse_out
    spectrum: str
    patterns: str  # photon / particle
    spatial: str  # fov / fov_vignetted / psf
    x: float = np.nan
    y: float = np.nan
    edges: np.ndarray | None = None  # piecewise-constant profile [s]
    rates: np.ndarray | None = None  # [ct/s]
    gauss: tuple[float, float, float] | None = None  # (t_peak, sigma, amplitude)
    truth: int | None = None

    def mass(self, intervals) -> float:
        """Expected counts inside ``intervals``."""
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
        """``n`` event times [s] drawn from the profile inside ``intervals``."""
        if n == 0:
            return np.empty(0)
        if self.gauss is not None:
            tp, sig, _ = self.gauss
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
            t = tp + sig * z
            s, e = intervals[0][j], intervals[1][j]
        else:
            lo, hi, r = _segments(self.edges, self.rates, intervals)
            m = r * (hi - lo)
            j = _pick(m, n, rng)
            s, e = lo[j], hi[j]
            t = s + rng.random(n) * (e - s)
        return np.clip(t, s, np.nextafter(e, -np.inf))


def _pick(masses, n, rng):
    c = np.cumsum(masses)
    if c.size == 0 or c[-1] <= 0:
        raise ValueError("cannot draw events from a component with zero expected counts in good time")
    j = np.searchsorted(c, rng.random(n) * c[-1], side="right")
    return np.clip(j, 0, c.size - 1)


def _soft_proton_profile(sp: SoftProtonFlare, t0: float, rng) -> tuple[np.ndarray, np.ndarray]:
    n = max(int(math.ceil(sp.duration / 20.0)), 1)
    edges = t0 + sp.t_start + np.linspace(0.0, sp.duration, n + 1)
    phase = (np.arange(n) + 0.5) / n
    env = np.sin(np.pi * phase) ** 2
    noise = rng.lognormal(-0.5 * sp.variability**2, sp.variability, n) if sp.variability > 0 else 1.0
    return edges, sp.peak_rate * env * noise


# ---------------------------------------------------------------- sky geometry
def _sky_wcs(attrs: Mapping):
    """:func:`xcube.wcs` of the X/Y columns from EventList attrs: raw column
    values are its (0-based) pixel coordinates."""
    from ..skycoords import wcs

    try:
        return wcs(dict(attrs))
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]}; give x=/y= sky pixels instead of ra=/dec=") from None


def _to_sky(w, x, y):
    ra, dec = w.wcs_pix2world(np.atleast_1d(x), np.atleast_1d(y), 0)
    return ra, dec


def _to_pixel(w, ra, dec):
    x, y = w.wcs_world2pix(np.atleast_1d(ra), np.atleast_1d(dec), 0)
    return x, y


@dataclass(frozen=True)
class _Geometry:
    crpix: float
    pix_arcsec: float
    pa_deg: float
    det: _Detector

    def offsets(self, x, y):
        """Sky pixels -> detector-frame offsets (u, v) [arcmin]."""
        dx = (np.asarray(x, dtype=np.float64) - self.crpix) * self.pix_arcsec / 60.0
        dy = (np.asarray(y, dtype=np.float64) - self.crpix) * self.pix_arcsec / 60.0
        th = math.radians(self.pa_deg + self.det.rotation_deg)
        c, s = math.cos(th), math.sin(th)
        return c * dx + s * dy, -s * dx + c * dy

    def on_detector(self, x, y):
        u, v = self.offsets(x, y)
        hu, hv = self.det.half_size_arcmin
        r = np.hypot(u, v)
        return (r < self.det.fov_radius_arcmin) & (np.abs(u) < hu) & (np.abs(v) < hv)

    def ccd(self, x, y):
        u, v = self.offsets(x, y)
        return self.det.ccd_of(u, v)

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


# ---------------------------------------------------------------- the plan
_REC_DTYPE = np.dtype(
    [("time", "f8"), ("x", "i4"), ("y", "i4"), ("pi", "i2"), ("pattern", "u1"), ("flag", "i4"), ("ccdnr", "u1")]
)


@dataclass
class _Plan:
    """Everything a slab generator needs (small, picklable)."""

    seed: int
    profile: str
    geometry: _Geometry
    gti: tuple
    slab_edges: np.ndarray
    components: list
    counts: np.ndarray  # (n_slab, n_component) int64
    psf_sigma_pix: float
    band: tuple[float, float] = (0.2, 12.0)
    lines: tuple = ()
    patterns: dict = field(default_factory=dict)


def _slab_events(plan: _Plan, i: int) -> np.ndarray:
    """Generate slab ``i`` (time-sorted structured array of ``_REC_DTYPE``)."""
    rng = np.random.default_rng(np.random.SeedSequence(plan.seed, spawn_key=(1, i)))
    lo, hi = plan.slab_edges[i], plan.slab_edges[i + 1]
    intervals = gtimod.intersection(plan.gti, (np.array([lo]), np.array([hi])))
    n_tot = int(plan.counts[i].sum())
    out = np.empty(n_tot, dtype=_REC_DTYPE)
    if n_tot == 0:
        return out
    t = np.empty(n_tot)
    x = np.empty(n_tot)
    y = np.empty(n_tot)
    energy = np.empty(n_tot)
    particle = np.zeros(n_tot, dtype=bool)
    k = 0
    geo = plan.geometry
    for c, comp in enumerate(plan.components):
        n = int(plan.counts[i, c])
        if n == 0:
            continue
        sl = slice(k, k + n)
        t[sl] = comp.times(n, rng, intervals)
        if comp.spatial == "psf":
            x[sl] = comp.x + rng.normal(0.0, plan.psf_sigma_pix, n)
            y[sl] = comp.y + rng.normal(0.0, plan.psf_sigma_pix, n)
        else:
            x[sl], y[sl] = geo.sample_fov(n, rng, vignetted=comp.spatial == "fov_vignetted")
        energy[sl] = _sample_energy(comp.spectrum, n, rng, plan.band, plan.lines if comp.spectrum == "particle" else ())
        particle[sl] = comp.patterns == "particle"
        k += n
    order = np.argsort(t)
    out["time"] = t[order]
    xi = np.clip(np.rint(x[order]), 1, _MAX_SKY_PIXEL).astype(np.int32)
    yi = np.clip(np.rint(y[order]), 1, _MAX_SKY_PIXEL).astype(np.int32)
    out["x"], out["y"] = xi, yi
    out["pi"] = np.clip(np.rint(energy[order] * 1000.0), 200, 12000).astype(np.int16)
    part = particle[order]
    out["pattern"] = _draw_patterns(plan.patterns, part, rng)
    out["flag"] = _draw_flags(n_tot, rng)
    out["ccdnr"] = geo.ccd(xi, yi)
    return out


def _draw_patterns(patterns, particle, rng):
    pat = np.empty(particle.size, dtype=np.uint8)
    for key, sel in (("photon", ~particle), ("particle", particle)):
        n = int(sel.sum())
        if n:
            vals, p = patterns[key]
            pat[sel] = rng.choice(np.asarray(vals, dtype=np.uint8), size=n, p=np.asarray(p))
    return pat


def _draw_flags(n, rng):
    flag = np.zeros(n, dtype=np.int32)
    bad = rng.random(n) < _FLAG_FRACTION
    flag[bad] = rng.choice(_FLAG_VALUES, size=int(bad.sum()), p=_FLAG_P)
    return flag


def _position(spec, w, geo: _Geometry, rng, radius_arcmin=10.0):
    """(ra, dec, x, y) of a spec: from ra/dec, from x/y, or random on the detector."""
    if spec.ra is not None and spec.dec is not None:
        x, y = _to_pixel(w, spec.ra, spec.dec)
        return float(spec.ra), float(spec.dec), float(x[0]), float(y[0])
    if spec.x is not None and spec.y is not None:
        ra, dec = _to_sky(w, spec.x, spec.y)
        return float(ra[0]), float(dec[0]), float(spec.x), float(spec.y)
    if (spec.ra is None) != (spec.dec is None) or (spec.x is None) != (spec.y is None):
        raise ValueError(f"{spec}: give both ra and dec, or both x and y (or neither for a random position)")
    rmax = radius_arcmin * 60.0 / geo.pix_arcsec
    while True:
        r = rmax * math.sqrt(rng.random())
        phi = 2 * math.pi * rng.random()
        x, y = geo.crpix + r * math.cos(phi), geo.crpix + r * math.sin(phi)
        if geo.on_detector(np.array([x]), np.array([y]))[0]:
            ra, dec = _to_sky(w, x, y)
            return float(ra[0]), float(dec[0]), x, y


def _truth_frame(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=TRUTH_COLUMNS)
    if df.empty:
        df = pd.DataFrame({c: pd.Series(dtype=float) for c in TRUTH_COLUMNS})
        df["kind"] = df["kind"].astype(object)
        df["instrument"] = df["instrument"].astype(object)
        df["transient"] = df["transient"].astype(bool)
    return df.astype({"id": np.int64, "counts": np.int64, "transient": bool})


def _row(**kw):
    row = {c: np.nan for c in TRUTH_COLUMNS}
    row.update(kw)
    return row


# ---------------------------------------------------------------- event_list
def event_list(
    instrument: str = "xmm-pn",
    *,
    duration: float = 100_000.0,
    t0: float = 7.0e8,
    gaps: Sequence[tuple[float, float]] = (),
    background_rate: float | None = None,
    sources: int | Sequence = 10,
    soft_protons: int | Sequence = 2,
    flares: Sequence = (),
    eclipses: Sequence = (),
    n_events: float | None = None,
    ra_pnt: float = 150.0,
    dec_pnt: float = 2.2,
    pa_pnt: float = 60.0,
    obs_id: str = "0999990101",
    object: str = "XCUBE-SIM",
    seed: int = 0,
    chunk_events: int = 2**20,
    path=None,
    overwrite: bool = False,
) -> tuple[xr.Dataset, pd.DataFrame]:
    """Simulate an XMM-Newton EPIC observation at the event level.

    Parameters
    ----------
    instrument : ``"xmm-pn"``, ``"xmm-mos1"`` or ``"xmm-mos2"``.
    duration : observation length [s] from ``t0`` (mission time [s], MJDREF 50814).
    gaps : ``[(start, stop), ...]`` [s after ``t0``] removed from the good time.
    background_rate : quiescent background [ct/s over the FOV, 0.2-12 keV]
        (default pn 1.5, MOS 0.4).
    sources : number of random constant sources (rates log-uniform, pn 0.003-0.06
        ct/s) or a list of :class:`Source` / dicts.
    soft_protons : number of random soft-proton flares or a list of
        :class:`SoftProtonFlare` / dicts (times after ``t0``).
    flares, eclipses : lists of :class:`Flare` / :class:`Eclipse` or dicts;
        their times are seconds after ``t0``; positions random when omitted.
    n_events : expected total number of events; reached by adding a soft
        diffuse component (raises if the other components already exceed it).
    ra_pnt, dec_pnt, pa_pnt : pointing [deg] (tangent point at X = Y = 25921).
    seed : all random numbers derive from it (same seed, same events).
    chunk_events : expected events per time slab (= Dask chunk of the lazy
        list); generating a slab needs ~250 B per event (~250 MB by default).
    path : write an OGIP event file there (streamed slab by slab) and return it
        opened with :func:`xcube.open_events` (default reader chunks).

    Returns
    -------
    ``(events, truth)``: a lazy EventList (Dask columns ``time``, ``x``, ``y``,
    ``pi``, ``energy``, ``pattern``, ``flag``, ``ccdnr``; events are generated
    when computed, slab by slab, reproducibly) and a pandas DataFrame with one
    row per component (:data:`TRUTH_COLUMNS`): ``kind`` is ``"flare"`` or
    ``"eclipse"`` (``transient`` True), ``"source"`` or ``"soft_proton"``. Truth
    times are mission time; ``counts`` are the events actually drawn (for an
    eclipse: the source's events inside the eclipse window), ``expected_counts``
    their expectation; flares span ``t_peak +- 3 width``.

    Eager work: the plan (positions, Poisson counts per slab and component).
    """
    profile = get_profile(instrument)
    det = _detector(profile.name)
    if duration <= 0:
        raise ValueError(f"duration={duration}: must be > 0 s")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
    t_end = t0 + duration
    gti = gtimod.intersection(([t0], [t_end]), gtimod.complement(
        gtimod.union(*[([t0 + a], [t0 + b]) for a, b in gaps]) if len(gaps) else (np.empty(0), np.empty(0)),
        t0, t_end))
    exposure = gtimod.exposure(gti)
    if exposure <= 0:
        raise ValueError(f"gaps={list(gaps)} leave no good time in [0, {duration}) s")
    attrs = _attrs(profile, det, t0, t_end, ra_pnt, dec_pnt, pa_pnt, obs_id, object, seed)
    w = _sky_wcs(attrs)
    geo = _Geometry(crpix=_REF_PIXEL, pix_arcsec=0.05, pa_deg=pa_pnt, det=det)
    const = np.array([t0, t_end])
    comps: list[_Component] = []
    rows: list[dict] = []
    inst = profile.instrument

    bkg = det.background_rate if background_rate is None else float(background_rate)
    if bkg > 0:
        comps.append(_Component("background", "particle", "particle", "fov", edges=const, rates=np.array([bkg])))

    sp_list = _random_soft_protons(soft_protons, duration, det, rng)
    for sp in sp_list:
        edges, rates = _soft_proton_profile(sp, t0, rng)
        rows.append(_row(id=len(rows), kind="soft_proton", transient=False, t_start=edges[0], t_stop=edges[-1],
                         t_peak=edges[0] + 0.5 * sp.duration, amplitude=sp.peak_rate, width=sp.duration,
                         instrument=inst))
        comps.append(_Component("soft_proton", "soft_proton", "photon", "fov_vignetted", edges=edges, rates=rates,
                                truth=len(rows) - 1))

    for src in _random_sources(sources, det, rng):
        ra, dec, x, y = _position(src, w, geo, rng, radius_arcmin=12.0)
        rows.append(_row(id=len(rows), kind="source", transient=False, ra=ra, dec=dec, x=x, y=y, t_start=t0,
                         t_stop=t_end, rate=src.rate, amplitude=src.rate, instrument=inst))
        comps.append(_Component("source", "source", "photon", "psf", x=x, y=y, edges=const,
                                rates=np.array([src.rate]), truth=len(rows) - 1))

    for fl in map(lambda f: _spec(Flare, f), flares):
        if fl.width <= 0 or fl.amplitude < 0:
            raise ValueError(f"{fl}: width must be > 0 s and amplitude >= 0 ct/s")
        ra, dec, x, y = _position(fl, w, geo, rng)
        tp = t0 + fl.t_peak
        rows.append(_row(id=len(rows), kind="flare", transient=True, ra=ra, dec=dec, x=x, y=y, t_peak=tp,
                         t_start=tp - 3 * fl.width, t_stop=tp + 3 * fl.width, amplitude=fl.amplitude,
                         width=fl.width, instrument=inst))
        comps.append(_Component("flare", "source", "photon", "psf", x=x, y=y,
                                gauss=(tp, fl.width, fl.amplitude), truth=len(rows) - 1))

    for ec in map(lambda e: _spec(Eclipse, e), eclipses):
        _check_eclipse(ec)
        ra, dec, x, y = _position(ec, w, geo, rng)
        ts = t0 + ec.t_start
        te = ts + ec.duration
        rows.append(_row(id=len(rows), kind="eclipse", transient=True, ra=ra, dec=dec, x=x, y=y,
                         t_peak=0.5 * (ts + te), t_start=ts, t_stop=te, amplitude=ec.rate * ec.depth,
                         width=ec.duration, rate=ec.rate, depth=ec.depth, instrument=inst))
        inside = _Component("eclipse_in", "source", "photon", "psf", x=x, y=y, edges=np.array([ts, te]),
                            rates=np.array([ec.rate * (1 - ec.depth)]), truth=len(rows) - 1)
        cut = np.clip([ts, te], t0, t_end)  # keep the breakpoints sorted when the dip reaches outside
        outside = _Component("eclipse_out", "source", "photon", "psf", x=x, y=y,
                             edges=np.array([t0, cut[0], cut[1], t_end]), rates=np.array([ec.rate, 0.0, ec.rate]))
        comps += [inside, outside]

    if n_events is not None:
        others = sum(c.mass(gti) for c in comps)
        extra = float(n_events) - others
        if extra < 0:
            raise ValueError(
                f"n_events={n_events:g} is below the {others:.4g} events the other components already "
                "expect; lower background_rate/sources/soft_protons or raise n_events"
            )
        if extra > 0:
            comps.append(_Component("diffuse", "diffuse", "photon", "fov_vignetted", edges=const,
                                    rates=np.array([extra / exposure])))

    expected = np.array([c.mass(gti) for c in comps])
    n_slab = max(1, int(math.ceil(expected.sum() / max(int(chunk_events), 1))))
    slab_edges = np.linspace(t0, t_end, n_slab + 1)
    slab_gti = [gtimod.intersection(gti, ([slab_edges[i]], [slab_edges[i + 1]])) for i in range(n_slab)]
    crng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    mass = np.array([[c.mass(g) for c in comps] for g in slab_gti]).reshape(n_slab, len(comps))
    counts = crng.poisson(mass).astype(np.int64)

    for c, comp in enumerate(comps):
        if comp.truth is not None:
            rows[comp.truth]["counts"] = int(counts[:, c].sum())
            rows[comp.truth]["expected_counts"] = float(expected[c])
    truth = _truth_frame(rows)

    plan = _Plan(
        seed=int(seed), profile=profile.name, geometry=geo, gti=gti, slab_edges=slab_edges, components=comps,
        counts=counts, psf_sigma_pix=PSF_FWHM_ARCSEC / _FWHM_PER_SIGMA / 0.05, band=(0.2, 12.0),
        lines=tuple(det.lines), patterns={"photon": det.photon_patterns, "particle": det.particle_patterns},
    )
    attrs["simulation"] = json.dumps({
        "seed": int(seed), "n_slab": n_slab, "expected_events": float(expected.sum()),
        "background_rate": bkg, "components": [c.kind for c in comps],
        "xcube_version": __version__,
    })
    events = _lazy_events(plan, attrs, profile)
    log.info(
        "simulated %s: %d events in %d slab(s), %d truth rows", profile.name, int(counts.sum()), n_slab, len(truth)
    )
    if path is not None:
        write(path, events, overwrite=overwrite)
        from ..io.events import open_events

        events = open_events(path)
    return events, truth


def _check_eclipse(ec: Eclipse):
    if not 0 <= ec.depth <= 1:
        raise ValueError(f"{ec}: depth is the fraction of the rate removed, in [0, 1]")
    if ec.duration <= 0 or ec.rate <= 0:
        raise ValueError(f"{ec}: duration [s] and rate [ct/s] must be > 0")


def _random_sources(sources, det: _Detector, rng) -> list[Source]:
    if isinstance(sources, (int, np.integer)):
        lo, hi = det.source_rate_range
        rates = np.exp(rng.uniform(math.log(lo), math.log(hi), int(sources)))
        return [Source(rate=float(r)) for r in rates]
    if isinstance(sources, pd.DataFrame):
        sources = sources.to_dict("records")
    return [_spec(Source, s) for s in sources]


def _random_soft_protons(spec, duration, det: _Detector, rng) -> list[SoftProtonFlare]:
    if isinstance(spec, (int, np.integer)):
        out = []
        lo, hi = det.proton_rate_range
        for _ in range(int(spec)):
            d = float(min(np.exp(rng.uniform(math.log(2e3), math.log(1e4))), duration))
            s = float(rng.uniform(0.0, max(duration - d, 0.0)))
            out.append(
                SoftProtonFlare(t_start=s, duration=d, peak_rate=float(np.exp(rng.uniform(math.log(lo), math.log(hi)))))
            )
        return out
    return [_spec(SoftProtonFlare, s) for s in spec]


def _attrs(profile, det, t0, t_end, ra, dec, pa, obs_id, obj, seed) -> dict:
    from astropy.time import Time

    date = lambda t: Time(_XMM_MJDREF + t / 86400.0, format="mjd", scale="tt").isot[:19]  # noqa: E731
    return {
        "mission": profile.mission,
        "instrument": profile.instrument,
        "profile": profile.name,
        "source": f"simulated (xcube.simulate.event_list, seed={seed})",
        "mjdref": _XMM_MJDREF,
        "xcube_version": __version__,
        "obs_id": str(obs_id),
        "object": str(obj),
        "timesys": "TT",
        "timeref": "LOCAL",
        "datamode": "IMAGING",
        "submode": "PrimeFullWindow",
        "filter": "Medium",
        "expid": "S001",
        "telescop": "XMM",
        "instrume": profile.instrument,
        "date_obs": date(t0),
        "date_end": date(t_end),
        "ra_pnt": float(ra),
        "dec_pnt": float(dec),
        "pa_pnt": float(pa),
        "tstart": float(t0),
        "tstop": float(t_end),
        "CTYPE1": "RA---TAN", "CRVAL1": float(ra), "CRPIX1": _REF_PIXEL, "CDELT1": -_SKY_PIXEL_DEG, "CUNIT1": "deg",
        "CTYPE2": "DEC--TAN", "CRVAL2": float(dec), "CRPIX2": _REF_PIXEL, "CDELT2": _SKY_PIXEL_DEG, "CUNIT2": "deg",
        "x_min": 1.0, "x_max": float(_MAX_SKY_PIXEL), "y_min": 1.0, "y_max": float(_MAX_SKY_PIXEL),
    }


def _lazy_events(plan: _Plan, attrs: dict, profile) -> xr.Dataset:
    plan_d = dask.delayed(plan, pure=True)
    name = f"xcube-sim-{dask.base.tokenize(plan.seed, plan.counts, plan.slab_edges, plan.profile)}"
    blocks = [
        da.from_delayed(dask.delayed(_slab_events, pure=True)(plan_d, i, dask_key_name=f"{name}-{i}"),
                        shape=(int(plan.counts[i].sum()),), dtype=_REC_DTYPE)
        for i in range(plan.counts.shape[0])
    ]
    rec = da.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    cols = {n: rec[n] for n in _REC_DTYPE.names}
    cols["energy"] = cols["pi"].map_blocks(profile.energy, dtype=np.float32)
    ccd_gti = {c: plan.gti for c in sorted(set(np.unique(list(_all_ccds(plan.geometry.det)))))}
    return events_dataset(cols, plan.gti, ccd_gti, attrs)


def _all_ccds(det: _Detector):
    u, v = np.meshgrid(np.linspace(-16, 16, 65), np.linspace(-16, 16, 65))
    return det.ccd_of(u.ravel(), v.ravel())


# ---------------------------------------------------------------- injection
def inject_flare(
    events: xr.Dataset,
    *,
    t_peak: float,
    amplitude: float,
    width: float,
    ra: float | None = None,
    dec: float | None = None,
    x: float | None = None,
    y: float | None = None,
    seed=None,
    psf_fwhm_arcsec: float = PSF_FWHM_ARCSEC,
    energy_band: tuple[float, float] = (0.2, 12.0),
) -> tuple[xr.Dataset, pd.DataFrame]:
    """Add a Gaussian-in-time flare of a point source to an EventList.

    ``t_peak`` [s, mission time], ``amplitude`` [ct/s at the peak], ``width``
    [s, Gaussian sigma]; position ``ra``/``dec`` [deg] or sky pixels ``x``/``y``
    (a random event's position when omitted). Events are Poisson-drawn inside
    the list's GTIs, spread by a Gaussian PSF of ``psf_fwhm_arcsec`` FWHM, with
    an absorbed power-law spectrum in ``energy_band`` [keV].

    Returns ``(events, truth)``: a new time-sorted EventList with the same
    columns (``pattern`` and ``flag`` 0; ``energy`` from the PI; every other
    column, e.g. ``ccdnr``/``rawx``, copied from the nearest existing event) and
    a one-row truth DataFrame. Lazy inputs stay lazy: the new events are merged
    into the Dask chunks they fall in (eager work: the first time of every chunk
    and the positions of up to 200,000 events, for the nearest-event fill).
    """
    if width <= 0 or amplitude < 0:
        raise ValueError(f"inject_flare: width={width} must be > 0 s and amplitude={amplitude} >= 0 ct/s")
    spec = Flare(t_peak=t_peak, amplitude=amplitude, width=width, ra=ra, dec=dec, x=x, y=y)
    comp = _Component("flare", "source", "photon", "psf", gauss=(float(t_peak), float(width), float(amplitude)))
    row = dict(kind="flare", transient=True, t_peak=float(t_peak), t_start=t_peak - 3 * width,
               t_stop=t_peak + 3 * width, amplitude=float(amplitude), width=float(width))
    return _inject(events, spec, [comp], row, seed, psf_fwhm_arcsec, energy_band)


def inject_eclipse(
    events: xr.Dataset,
    *,
    t_start: float,
    duration: float,
    depth: float = 1.0,
    rate: float = 0.1,
    ra: float | None = None,
    dec: float | None = None,
    x: float | None = None,
    y: float | None = None,
    seed=None,
    psf_fwhm_arcsec: float = PSF_FWHM_ARCSEC,
    energy_band: tuple[float, float] = (0.2, 12.0),
) -> tuple[xr.Dataset, pd.DataFrame]:
    """Add an eclipsing point source to an EventList: constant ``rate`` [ct/s],
    falling to ``rate * (1 - depth)`` during ``[t_start, t_start + duration)``
    [s, mission time]. Same conventions and return value as :func:`inject_flare`;
    the truth ``counts`` are the source's events inside the eclipse window."""
    spec = Eclipse(t_start=t_start, duration=duration, depth=depth, rate=rate, ra=ra, dec=dec, x=x, y=y)
    _check_eclipse(spec)
    g = gtimod.from_dataset(events)
    t0 = min(float(g[0][0]) if g[0].size else t_start, t_start) - 1.0
    t1 = max(float(g[1][-1]) if g[1].size else t_start, t_start + duration) + 1.0
    te = t_start + duration
    inside = _Component("eclipse_in", "source", "photon", "psf", edges=np.array([t_start, te]),
                        rates=np.array([rate * (1 - depth)]))
    outside = _Component("eclipse_out", "source", "photon", "psf", edges=np.array([t0, t_start, te, t1]),
                         rates=np.array([rate, 0.0, rate]))
    row = dict(kind="eclipse", transient=True, t_peak=t_start + 0.5 * duration, t_start=float(t_start),
               t_stop=float(te), amplitude=rate * depth, width=float(duration), rate=float(rate), depth=float(depth))
    return _inject(events, spec, [inside, outside], row, seed, psf_fwhm_arcsec, energy_band)


def _sample_positions(events, max_n=200_000):
    n = events.sizes["event"]
    idx = np.unique(np.linspace(0, n - 1, min(n, max_n)).astype(np.int64))
    return idx


def _inject(events, spec, comps, row, seed, psf_fwhm_arcsec, energy_band):
    if "event" not in events.dims or events.sizes["event"] == 0:
        raise ValueError("inject: the event list is empty; inject into a list with events (or simulate one)")
    for col in ("time", "x", "y", "pi"):
        if col not in events:
            raise ValueError(f"inject: the event list has no {col!r} column")
    profile = profile_of(events)
    rng = np.random.default_rng(seed)
    gti = gtimod.from_dataset(events)
    if gti[0].size == 0:
        raise ValueError("inject: the event list has no good time (empty GTI); nothing can be injected")
    # positions of a sample of events: nearest-event fill, random default position
    idx = _sample_positions(events)
    other = [
        v
        for v in events.data_vars
        if events[v].dims == ("event",) and v not in ("time", "x", "y", "pi", "energy", "pattern", "flag")
    ]
    sample = events[["x", "y", *other]].isel(event=idx).compute()
    sx, sy = sample["x"].values.astype(np.float64), sample["y"].values.astype(np.float64)
    from ..skycoords import has_wcs

    w = _sky_wcs(events.attrs) if has_wcs(events) else None
    if spec.ra is not None or spec.dec is not None:
        if w is None:
            raise ValueError("inject: ra/dec given but the event list has no sky WCS attrs; give x/y instead")
        if spec.ra is None or spec.dec is None:
            raise ValueError("inject: give both ra and dec")
        px, py = _to_pixel(w, spec.ra, spec.dec)
        px, py = float(px[0]), float(py[0])
    elif spec.x is not None or spec.y is not None:
        if spec.x is None or spec.y is None:
            raise ValueError("inject: give both x and y")
        px, py = float(spec.x), float(spec.y)
    else:
        j = int(rng.integers(sx.size))
        px, py = sx[j], sy[j]
    ra_dec = _to_sky(w, px, py) if w is not None else (np.array([np.nan]), np.array([np.nan]))
    pix_arcsec = abs(float(events.attrs.get("CDELT1", profile.pixel_arcsec / 3600.0))) * 3600.0
    psf_sigma = psf_fwhm_arcsec / _FWHM_PER_SIGMA / pix_arcsec
    # counts and times
    parts_t = []
    n_first = 0
    expected_first = 0.0
    for k, comp in enumerate(comps):
        comp.x, comp.y = px, py
        m = comp.mass(gti)
        n = int(rng.poisson(m))
        if k == 0:
            n_first, expected_first = n, m
        parts_t.append(comp.times(n, rng, gti) if n else np.empty(0))
    t = np.sort(np.concatenate(parts_t))
    n = t.size
    new = {"time": t}
    xdt, ydt = events["x"].dtype, events["y"].dtype
    nx = px + rng.normal(0.0, psf_sigma, n)
    ny = py + rng.normal(0.0, psf_sigma, n)
    new["x"] = (np.rint(nx) if xdt.kind in "iu" else nx).astype(xdt)
    new["y"] = (np.rint(ny) if ydt.kind in "iu" else ny).astype(ydt)
    kev = _sample_energy("source", n, rng, energy_band)
    pi = profile.pi_for_energy(kev)
    pidt = events["pi"].dtype
    new["pi"] = (np.rint(pi) if pidt.kind in "iu" else pi).astype(pidt)
    if "energy" in events:
        new["energy"] = profile.energy(new["pi"]).astype(events["energy"].dtype)
    for col in ("pattern", "flag"):
        if col in events:
            new[col] = np.zeros(n, dtype=events[col].dtype)
    if other:
        nearest = cKDTree(np.column_stack([sx, sy])).query(np.column_stack([nx, ny]))[1] if n else np.empty(0, int)
        for col in other:
            new[col] = sample[col].values[nearest].astype(events[col].dtype)
    out = _merge_events(events, new)
    out.attrs["injections"] = list(events.attrs.get("injections", [])) + [
        f"{row['kind']} x={px:.1f} y={py:.1f} t={row['t_peak']:.1f} n={n} seed={seed}"
    ]
    truth = _truth_frame([_row(id=0, ra=float(ra_dec[0][0]), dec=float(ra_dec[1][0]), x=px, y=py, counts=n_first,
                               expected_counts=expected_first, instrument=events.attrs.get("instrument", ""),
                               **row)])
    return out, truth


def _merge_events(events: xr.Dataset, new: dict) -> xr.Dataset:
    """Insert time-sorted new events into a time-sorted EventList (lazy for Dask columns)."""
    names = [v for v in events.data_vars if events[v].dims == ("event",)]
    missing = [v for v in names if v not in new]
    if missing:
        raise ValueError(f"inject: no values for columns {missing}")
    t_new = new["time"]
    tvar = events["time"].data
    merged = {}
    if isinstance(tvar, da.Array):
        chunks = tvar.chunks[0]
        nb = len(chunks)
        firsts = np.full(nb, np.inf)
        if nb > 1:
            heads = dask.compute(*[tvar.blocks[i][:1] for i in range(1, nb)])
            for i, h in enumerate(heads, start=1):
                firsts[i] = h[0] if h.size else np.nan
            # empty chunks take the boundary of the next non-empty one
            for i in range(nb - 1, 0, -1):
                if np.isnan(firsts[i]):
                    firsts[i] = firsts[i + 1] if i + 1 < nb else np.inf
        block_of = np.searchsorted(firsts[1:], t_new, side="right")
        per_block = [np.flatnonzero(block_of == b) for b in range(nb)]
        new_chunks = tuple(int(c) + int(p.size) for c, p in zip(chunks, per_block))
        for v in names:
            col = events[v].data
            if not isinstance(col, da.Array):
                col = da.from_array(np.asarray(col), chunks=(chunks,))
            elif col.chunks[0] != chunks:
                col = col.rechunk((chunks,))
            vals = np.asarray(new[v])
            merged[v] = da.map_blocks(
                _merge_block, tvar, col, dtype=col.dtype, chunks=(new_chunks,),
                new_t=[t_new[p] for p in per_block], new_v=[vals[p] for p in per_block],
            )
    else:
        t_old = np.asarray(tvar)
        pos = np.searchsorted(t_old, t_new, side="right")
        for v in names:
            merged[v] = np.insert(np.asarray(events[v].data), pos, np.asarray(new[v]).astype(events[v].dtype))
    out = events.drop_dims("event")
    for v in names:
        out[v] = xr.Variable(("event",), merged[v], events[v].attrs)
    order = [v for v in events.data_vars]
    return out[order].assign_attrs(events.attrs)


def _merge_block(t_blk, c_blk, new_t=None, new_v=None, block_id=None):
    b = block_id[0]
    nt, nv = new_t[b], new_v[b]
    if nt.size == 0:
        return c_blk
    pos = np.searchsorted(t_blk, nt, side="right")
    return np.insert(c_blk, pos, nv.astype(c_blk.dtype))


# ---------------------------------------------------------------- writing
def write(path, events: xr.Dataset, *, overwrite: bool = False, gzip: bool | None = None):
    """Write an EventList as an OGIP event file that reads back through
    :func:`xcube.open_events` as the same mission.

    Columns: every ``event`` variable except the derived ``energy``, upper-case,
    with the profile's names for time/x/y/pi; the sky WCS as TCTYP/TCRVL/TCRPX/
    TCDLT of X and Y. GTIs: one ``STDGTInn`` extension per CCD (with ``CCDID``)
    where the list has per-CCD GTIs and the mission uses them, else one ``GTI``
    extension. Dask columns are streamed chunk by chunk (memory of one chunk).
    ``gzip`` defaults to True for ``.gz``/``.FTZ`` paths. Returns the path.
    """
    from pathlib import Path

    from ..io.write_events import write_events_fits

    path = Path(path)
    profile = profile_of(events)
    if gzip is None:
        gzip = path.suffix.lower() in (".gz", ".ftz")
    a = events.attrs
    names = [v for v in events.data_vars if events[v].dims == ("event",) and v != "energy"]
    fname = {k: v for k, v in profile.columns.items()}
    columns = {(fname[v] if v in fname else v).upper(): events[v].data for v in names}
    instrume = a.get("instrume") or a.get("instrument") or profile.instrument
    header = {
        "TELESCOP": a.get("telescop") or (profile.telescop[0] if profile.telescop else "UNKNOWN"),
        "INSTRUME": instrume,
        "OBS_ID": str(a.get("obs_id", "")),
        "OBJECT": str(a.get("object", "")),
        "TIMESYS": a.get("timesys", "TT"),
        "TIMEREF": a.get("timeref", "LOCAL"),
        "TIMEUNIT": "s",
        "TIMEZERO": 0.0,
        "TSTART": float(a.get("tstart", float(events["gti_start"].min()) if events.sizes.get("gti") else 0.0)),
        "TSTOP": float(a.get("tstop", float(events["gti_stop"].max()) if events.sizes.get("gti") else 0.0)),
        "CREATOR": f"xcube {__version__}",
    }
    mjdref = a.get("mjdref")
    if mjdref is not None and np.isfinite(mjdref):
        header["MJDREFI"] = int(math.floor(mjdref))
        header["MJDREFF"] = float(mjdref - math.floor(mjdref))
    for key, attr in (("DATAMODE", "datamode"), ("SUBMODE", "submode"), ("FILTER", "filter"), ("EXPIDSTR", "expid"),
                      ("RA_PNT", "ra_pnt"), ("DEC_PNT", "dec_pnt"), ("PA_PNT", "pa_pnt"), ("DATE-OBS", "date_obs"),
                      ("DATE-END", "date_end")):
        if a.get(attr) not in (None, ""):
            header[key] = a[attr]
    cols = list(columns)
    wcs = {}
    for axis, key in ((1, "x"), (2, "y")):
        cname = fname.get(key, key.upper()).upper()
        if cname in columns and f"CTYPE{axis}" in a:
            wcs[cname] = {"ctype": a[f"CTYPE{axis}"], "crval": float(a[f"CRVAL{axis}"]),
                          "crpix": float(a[f"CRPIX{axis}"]), "cdelt": float(a[f"CDELT{axis}"])}
            i = cols.index(cname) + 1
            for lim, kw in (("min", "TLMIN"), ("max", "TLMAX")):
                if f"{key}_{lim}" in a:
                    header[f"{kw}{i}"] = int(a[f"{key}_{lim}"])
    gti = gtimod.from_dataset(events)
    exts = {}
    if "ccd_gti_ccd" in events and profile.is_gti_extension("STDGTI01"):
        ccd = events["ccd_gti_ccd"].values
        st, sp = events["ccd_gti_start"].values, events["ccd_gti_stop"].values
        for c in np.unique(ccd):
            sel = ccd == c
            exts[f"STDGTI{int(c):02d}"] = (st[sel], sp[sel], {"CCDID": int(c)})
    else:
        name = next((n for n in ("GTI", "STDGTI") if profile.is_gti_extension(n)), "GTI")
        exts[name] = gti
    return write_events_fits(path, columns, header=header, wcs=wcs, gti_extensions=exts, overwrite=overwrite,
                             gzip=gzip)
