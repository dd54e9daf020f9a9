"""Event-level simulation of XMM-Newton EPIC observations (:func:`event_list`).

What an observation holds
-------------------------
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
quadrant; MOS: 7 CCDs), RAWX/RAWY (the pixel on the CCD: pn 64 x 200 pixels of
4.1", MOS 600 x 600 of 1.1"; a simplified layout).

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
from dataclasses import dataclass, field, fields
from typing import Sequence

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .. import gti as gtimod
from .._version import __version__
from ..io.events_fits import events_dataset
from ..io.write_events import write_events
from ..missions import get_profile
from .detector import detector, draw_flags, draw_patterns, sample_energy
from .geometry import MAX_SKY_PIXEL, REF_PIXEL, SKY_PIXEL_DEG, Geometry, sky_wcs
from .models import FWHM_PER_SIGMA, PSF_FWHM_ARCSEC, check_number, check_seed, truth_frame
from .scene import Scene

__all__ = ["event_list"]

log = logging.getLogger("xcube.simulate")

_XMM_MJDREF = 50814.0  # 1998-01-01 TT, XMM mission time zero
_REC_DTYPE = np.dtype(
    [("time", "f8"), ("x", "i4"), ("y", "i4"), ("pi", "i2"), ("pattern", "u1"), ("flag", "i4"), ("ccdnr", "u1"),
     ("rawx", "i2"), ("rawy", "i2")]
)


# ---------------------------------------------------------------- the plan
@dataclass
class _Plan:
    """Everything a slab generator needs (small, picklable)."""

    seed: int
    profile: str
    geometry: Geometry
    gti: tuple
    slab_edges: np.ndarray
    components: list
    counts: np.ndarray  # (n_slab, n_component) int64
    psf_sigma_pix: float
    band: tuple[float, float] = (0.2, 12.0)
    lines: tuple = ()
    patterns: dict = field(default_factory=dict)

    def __dask_tokenize__(self):
        """Deterministic token of the whole plan: every field that shapes the
        events (seed, camera, pointing geometry, good time, slabs, components
        with their positions, profiles and spectra, counts, PSF, band, lines,
        patterns). It names the Dask blocks, so two different simulations
        never share keys while identical ones do."""
        from dask.base import normalize_token

        return (type(self).__qualname__,) + tuple(normalize_token(getattr(self, f.name)) for f in fields(self))


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
        energy[sl] = sample_energy(comp.spectrum, n, rng, plan.band, plan.lines if comp.spectrum == "particle" else ())
        particle[sl] = comp.patterns == "particle"
        k += n
    order = np.argsort(t)
    out["time"] = t[order]
    xi = np.clip(np.rint(x[order]), 1, MAX_SKY_PIXEL).astype(np.int32)
    yi = np.clip(np.rint(y[order]), 1, MAX_SKY_PIXEL).astype(np.int32)
    out["x"], out["y"] = xi, yi
    out["pi"] = np.clip(np.rint(energy[order] * 1000.0), 200, 12000).astype(np.int16)
    part = particle[order]
    out["pattern"] = draw_patterns(plan.patterns, part, rng)
    out["flag"] = draw_flags(n_tot, rng)
    out["ccdnr"] = geo.ccd(xi, yi)
    out["rawx"], out["rawy"] = geo.raw(xi, yi)
    return out


# ---------------------------------------------------------------- time and counts
def _check_gaps(gaps) -> list[tuple[float, float]]:
    """``gaps`` as a list of ``(start, stop)`` floats, each finite with start < stop."""
    try:
        pairs = [tuple(g) for g in gaps]
    except TypeError:
        pairs = None
    if pairs is None or any(len(p) != 2 for p in pairs):
        raise ValueError(f"event_list: gaps={gaps!r}: must be a list of (start, stop) pairs [s after t0]")
    out = []
    for k, (a, b) in enumerate(pairs):
        a = check_number("event_list", f"gaps[{k}] start", a, unit="s")
        b = check_number("event_list", f"gaps[{k}] stop", b, unit="s")
        if b <= a:
            raise ValueError(f"event_list: gaps[{k}]=({a:g}, {b:g}): a gap is (start, stop) [s after t0] with "
                             "stop > start")
        out.append((a, b))
    return out


def _good_time(t0: float, duration: float, gaps) -> tuple[tuple, float]:
    """(GTI, exposure [s]) of ``[t0, t0 + duration)`` minus ``gaps`` [s after t0]."""
    gaps = _check_gaps(gaps)
    t_end = t0 + duration
    gti = gtimod.intersection(([t0], [t_end]), gtimod.complement(
        gtimod.union(*[([t0 + a], [t0 + b]) for a, b in gaps]) if len(gaps) else (np.empty(0), np.empty(0)),
        t0, t_end))
    exposure = gtimod.exposure(gti)
    if exposure <= 0:
        raise ValueError(f"gaps={list(gaps)} leave no good time in [0, {duration}) s")
    return gti, exposure


def _slab_counts(comps, gti, t0: float, t_end: float, seed: int, chunk_events: int):
    """(slab edges [s], Poisson counts (n_slab, n_component), expected counts per component)."""
    expected = np.array([c.mass(gti) for c in comps])
    n_slab = max(1, int(math.ceil(expected.sum() / max(int(chunk_events), 1))))
    slab_edges = np.linspace(t0, t_end, n_slab + 1)
    slab_gti = [gtimod.intersection(gti, ([slab_edges[i]], [slab_edges[i + 1]])) for i in range(n_slab)]
    crng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    mass = np.array([[c.mass(g) for c in comps] for g in slab_gti]).reshape(n_slab, len(comps))
    counts = crng.poisson(mass).astype(np.int64)
    return slab_edges, counts, expected


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
    gaps : ``[(start, stop), ...]`` [s after ``t0``] removed from the good time
        (each with ``start < stop``).
    background_rate : quiescent background [ct/s over the FOV, 0.2-12 keV, >= 0]
        (default pn 1.5, MOS 0.4).
    sources : number (>= 0) of random constant sources (rates log-uniform, pn 0.003-0.06
        ct/s) or a list of :class:`Source` / dicts.
    soft_protons : number (>= 0) of random soft-proton flares or a list of
        :class:`SoftProtonFlare` / dicts (times after ``t0``).
    flares, eclipses : lists of :class:`Flare` / :class:`Eclipse` or dicts;
        their times are seconds after ``t0``; position ``ra``/``dec`` or
        ``x``/``y`` (not both), random when omitted.
    n_events : expected total number of events; reached by adding a soft
        diffuse component (raises if the other components already exceed it).
    ra_pnt, dec_pnt, pa_pnt : pointing [deg] (tangent point at X = Y = 25921).
    seed : all random numbers derive from it (same seed, same events); a
        whole number >= 0.
    chunk_events : expected events per time slab (= Dask chunk of the lazy
        list); generating a slab needs ~250 B per event (~250 MB by default).
    path : write an OGIP event file there (streamed slab by slab) and return it
        opened with :func:`xcube.open_events` (default reader chunks).

    Returns
    -------
    ``(events, truth)``: a lazy EventList (Dask columns ``time``, ``x``, ``y``,
    ``pi``, ``energy``, ``pattern``, ``flag``, ``ccdnr``, ``rawx``, ``rawy``; events are generated
    when computed, slab by slab, reproducibly) and a pandas DataFrame with one
    row per component (:data:`TRUTH_COLUMNS`): ``kind`` is ``"flare"`` or
    ``"eclipse"`` (``transient`` True), ``"source"`` or ``"soft_proton"``. Truth
    times are mission time; ``counts`` are the events actually drawn (for an
    eclipse: the source's events inside the eclipse window), ``expected_counts``
    their expectation; flares span ``t_peak +- 3 width``.

    Eager work: the plan (positions, Poisson counts per slab and component).
    A parameter out of its range (a negative or non-finite number, a gap whose
    stop is not after its start, ...) is a ``ValueError`` naming it and the
    allowed values.
    """
    profile = get_profile(instrument)
    det = detector(profile.name)
    duration = check_number("event_list", "duration", duration, gt=0, unit="s")
    t0 = check_number("event_list", "t0", t0, unit="s (mission time)")
    if background_rate is not None:
        background_rate = check_number("event_list", "background_rate", background_rate, ge=0,
                                       unit="ct/s (or None for the camera's default)")
    if n_events is not None:
        check_number("event_list", "n_events", n_events, ge=0)
    chunk_events = check_number("event_list", "chunk_events", chunk_events, ge=1, integer=True)
    ra_pnt = check_number("event_list", "ra_pnt", ra_pnt, unit="deg")
    dec_pnt = check_number("event_list", "dec_pnt", dec_pnt, ge=-90, le=90, unit="deg")
    pa_pnt = check_number("event_list", "pa_pnt", pa_pnt, unit="deg")
    seed = check_seed("event_list", seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
    t_end = t0 + duration
    gti, exposure = _good_time(t0, duration, gaps)
    attrs = _attrs(profile, t0, t_end, ra_pnt, dec_pnt, pa_pnt, obs_id, object, seed)
    geo = Geometry(crpix=REF_PIXEL, pix_arcsec=0.05, pa_deg=pa_pnt, det=det)
    scene = Scene(t0=t0, t_end=t_end, det=det, geo=geo, wcs=sky_wcs(attrs), instrument=profile.instrument, rng=rng)
    bkg = det.background_rate if background_rate is None else float(background_rate)
    if bkg > 0:
        scene.add_background(bkg)
    scene.add_soft_protons(soft_protons, duration)
    scene.add_sources(sources)
    scene.add_flares(flares)
    scene.add_eclipses(eclipses)
    if n_events is not None:
        scene.add_diffuse(n_events, gti, exposure)

    comps, rows = scene.components, scene.rows
    slab_edges, counts, expected = _slab_counts(comps, gti, t0, t_end, seed, chunk_events)
    for c, comp in enumerate(comps):
        if comp.truth is not None:
            rows[comp.truth]["counts"] = int(counts[:, c].sum())
            rows[comp.truth]["expected_counts"] = float(expected[c])
    truth = truth_frame(rows)

    plan = _Plan(
        seed=int(seed), profile=profile.name, geometry=geo, gti=gti, slab_edges=slab_edges, components=comps,
        counts=counts, psf_sigma_pix=PSF_FWHM_ARCSEC / FWHM_PER_SIGMA / 0.05, band=(0.2, 12.0),
        lines=tuple(det.lines), patterns={"photon": det.photon_patterns, "particle": det.particle_patterns},
    )
    attrs["simulation"] = json.dumps({
        "seed": int(seed), "n_slab": len(slab_edges) - 1, "expected_events": float(expected.sum()),
        "background_rate": bkg, "components": [c.kind for c in comps],
        "xcube_version": __version__,
    })
    events = _lazy_events(plan, attrs, profile)
    log.info("simulated %s: %d events in %d slab(s), %d truth rows", profile.name, int(counts.sum()),
             len(slab_edges) - 1, len(truth))
    if path is not None:
        write_events(path, events, overwrite=overwrite)
        from ..io.events import open_events

        events = open_events(path)
    return events, truth


def _attrs(profile, t0, t_end, ra, dec, pa, obs_id, obj, seed) -> dict:
    from ..io.ogip import date_cards

    dates = date_cards({"mjdref": _XMM_MJDREF, "timesys": "TT"}, t0, t_end)  # UTC, as XMM files give them
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
        "date_obs": dates["DATE-OBS"],
        "date_end": dates["DATE-END"],
        "ra_pnt": float(ra),
        "dec_pnt": float(dec),
        "pa_pnt": float(pa),
        "tstart": float(t0),
        "tstop": float(t_end),
        "CTYPE1": "RA---TAN", "CRVAL1": float(ra), "CRPIX1": REF_PIXEL, "CDELT1": -SKY_PIXEL_DEG, "CUNIT1": "deg",
        "CTYPE2": "DEC--TAN", "CRVAL2": float(dec), "CRPIX2": REF_PIXEL, "CDELT2": SKY_PIXEL_DEG, "CUNIT2": "deg",
        "x_min": 1.0, "x_max": float(MAX_SKY_PIXEL), "y_min": 1.0, "y_max": float(MAX_SKY_PIXEL),
    }


def _lazy_events(plan: _Plan, attrs: dict, profile) -> xr.Dataset:
    plan_d = dask.delayed(plan, pure=True)
    # the name hashes the whole plan (``_Plan.__dask_tokenize__``): lists that differ in
    # anything (a flare's position or time, the pointing, ...) get different keys even
    # when their Poisson counts per slab are equal, and equal plans share keys
    name = f"xcube-sim-{dask.base.tokenize(plan)}"
    blocks = [
        da.from_delayed(dask.delayed(_slab_events, pure=True)(plan_d, i, dask_key_name=f"{name}-{i}"),
                        shape=(int(plan.counts[i].sum()),), dtype=_REC_DTYPE)
        for i in range(plan.counts.shape[0])
    ]
    rec = da.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    # each column its own contiguous array, as the file readers give (a field view of the
    # record array would have a 28-byte stride and slow every kernel that reads it)
    cols = {n: rec[n].map_blocks(np.ascontiguousarray, dtype=_REC_DTYPE[n]) for n in _REC_DTYPE.names}
    cols["energy"] = cols["pi"].map_blocks(profile.energy, dtype=np.float32)
    ccd_gti = {c: plan.gti for c in sorted(set(np.unique(list(plan.geometry.det.ccd_numbers()))))}
    return events_dataset(cols, plan.gti, ccd_gti, attrs)
