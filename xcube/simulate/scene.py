"""The scene of a simulated observation: its emission components (background,
soft protons, sources, flares, eclipses, diffuse) and their truth rows.

Components are added in a fixed order, each drawing its random parameters
(rates, positions, soft-proton profiles) from the scene's generator, so that
the same seed gives the same scene.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .components import Component, soft_proton_profile
from .detector import Detector
from .geometry import MAX_SKY_PIXEL, Geometry, sky_position, to_sky
from .models import (
    Eclipse,
    Flare,
    SoftProtonFlare,
    Source,
    as_spec,
    check_eclipse,
    check_flare,
    check_number,
    check_soft_proton,
    check_source,
    position_given,
    truth_row,
)

__all__ = ["Scene"]


@dataclass
class Scene:
    """Components and truth rows of one observation over ``[t0, t_end)`` [s,
    mission time]; ``wcs`` maps sky pixels to (ra, dec); ``rng`` draws every
    random parameter. Eager and small (no events)."""

    t0: float
    t_end: float
    det: Detector
    geo: Geometry
    wcs: object
    instrument: str
    rng: np.random.Generator
    components: list = field(default_factory=list)
    rows: list = field(default_factory=list)

    def add(self, row: dict | None, *comps: Component) -> None:
        """Add components; the first one is the truth of ``row`` (if any)."""
        if row is not None:
            self.rows.append(truth_row(id=len(self.rows), instrument=self.instrument, **row))
            comps[0].truth = len(self.rows) - 1
        self.components.extend(comps)

    def position(self, spec, who: str, radius_arcmin=10.0):
        """(ra, dec, x, y) of a spec: from ra/dec, from x/y, or random on the
        detector within ``radius_arcmin`` of the reference pixel. A given
        position must lie within the sky range X, Y 1..51840 (TLMIN/TLMAX): a
        ``ValueError`` naming ``who`` (e.g. ``"event_list: flares[0]"``) and the
        range otherwise (:func:`~xcube.simulate.geometry.sky_position`)."""
        w, geo, rng = self.wcs, self.geo, self.rng
        legal = (1.0, float(MAX_SKY_PIXEL))
        pos = sky_position(spec, w, legal, legal, "TLMIN/TLMAX", who)
        if pos is not None and position_given(spec, who) == "sky":
            return float(spec.ra), float(spec.dec), *pos
        if pos is not None:
            ra, dec = to_sky(w, *pos)
            return float(ra[0]), float(dec[0]), *pos
        rmax = radius_arcmin * 60.0 / geo.pix_arcsec
        while True:
            r = rmax * math.sqrt(rng.random())
            phi = 2 * math.pi * rng.random()
            x, y = geo.crpix + r * math.cos(phi), geo.crpix + r * math.sin(phi)
            if geo.on_detector(np.array([x]), np.array([y]))[0]:
                ra, dec = to_sky(w, x, y)
                return float(ra[0]), float(dec[0]), x, y

    def add_background(self, rate: float) -> None:
        """Quiescent particle background of ``rate`` [ct/s over the FOV] (no truth row)."""
        self.add(None, Component("background", "particle", "particle", "fov", edges=np.array([self.t0, self.t_end]),
                                 rates=np.array([rate])))

    def add_soft_protons(self, spec, duration: float) -> None:
        """``spec`` random soft-proton flares (an int) or a list of :class:`SoftProtonFlare`/dicts.
        ``duration`` [s] is the observation's length: random flares (2-10 ks
        long, cut to it) start within it."""
        for sp in _random_soft_protons(spec, duration, self.det, self.rng):
            edges, rates = soft_proton_profile(sp, self.t0, self.rng)
            row = dict(kind="soft_proton", transient=False, t_start=edges[0], t_stop=edges[-1],
                       t_peak=edges[0] + 0.5 * sp.duration, amplitude=sp.peak_rate, width=sp.duration)
            self.add(row, Component("soft_proton", "soft_proton", "photon", "fov_vignetted", edges=edges,
                                    rates=rates))

    def add_sources(self, sources) -> None:
        """``sources`` random constant sources (an int), or a list/DataFrame of :class:`Source` fields."""
        const = np.array([self.t0, self.t_end])
        for k, src in enumerate(_random_sources(sources, self.det, self.rng)):
            ra, dec, x, y = self.position(src, f"event_list: sources[{k}]", radius_arcmin=12.0)
            row = dict(kind="source", transient=False, ra=ra, dec=dec, x=x, y=y, t_start=self.t0, t_stop=self.t_end,
                       rate=src.rate, amplitude=src.rate)
            self.add(row, Component("source", "source", "photon", "psf", x=x, y=y, edges=const,
                                    rates=np.array([src.rate])))

    def add_flares(self, flares) -> None:
        """:class:`Flare` specs (or dicts), times [s] after ``t0``."""
        for k, fl in enumerate(map(lambda f: as_spec(Flare, f), flares)):
            check_flare(fl)
            ra, dec, x, y = self.position(fl, f"event_list: flares[{k}]")
            tp = self.t0 + fl.t_peak
            row = dict(kind="flare", transient=True, ra=ra, dec=dec, x=x, y=y, t_peak=tp, t_start=tp - 3 * fl.width,
                       t_stop=tp + 3 * fl.width, amplitude=fl.amplitude, width=fl.width)
            self.add(row, Component("flare", "source", "photon", "psf", x=x, y=y,
                                    gauss=(tp, fl.width, fl.amplitude)))

    def add_eclipses(self, eclipses) -> None:
        """:class:`Eclipse` specs (or dicts), times [s] after ``t0``: the source's
        events inside the window (the truth) and outside it are two components."""
        for k, ec in enumerate(map(lambda e: as_spec(Eclipse, e), eclipses)):
            check_eclipse(ec)
            ra, dec, x, y = self.position(ec, f"event_list: eclipses[{k}]")
            ts = self.t0 + ec.t_start
            te = ts + ec.duration
            row = dict(kind="eclipse", transient=True, ra=ra, dec=dec, x=x, y=y, t_peak=0.5 * (ts + te), t_start=ts,
                       t_stop=te, amplitude=ec.rate * ec.depth, width=ec.duration, rate=ec.rate, depth=ec.depth)
            inside = Component("eclipse_in", "source", "photon", "psf", x=x, y=y, edges=np.array([ts, te]),
                               rates=np.array([ec.rate * (1 - ec.depth)]))
            cut = np.clip([ts, te], self.t0, self.t_end)  # keep the breakpoints sorted when the dip reaches outside
            outside = Component("eclipse_out", "source", "photon", "psf", x=x, y=y,
                                edges=np.array([self.t0, cut[0], cut[1], self.t_end]),
                                rates=np.array([ec.rate, 0.0, ec.rate]))
            self.add(row, inside, outside)

    def add_diffuse(self, n_events: float, gti, exposure: float) -> None:
        """Soft diffuse component bringing the expected total inside ``gti`` to
        ``n_events`` (``exposure`` [s] of ``gti``); ``ValueError`` if already above."""
        others = sum(c.mass(gti) for c in self.components)
        extra = float(n_events) - others
        if extra < 0:
            raise ValueError(
                f"n_events={n_events:g} is below the {others:.4g} events the other components already "
                "expect; lower background_rate/sources/soft_protons or raise n_events"
            )
        if extra > 0:
            self.add(None, Component("diffuse", "diffuse", "photon", "fov_vignetted",
                                     edges=np.array([self.t0, self.t_end]), rates=np.array([extra / exposure])))


def _random_sources(sources, det: Detector, rng) -> list[Source]:
    if isinstance(sources, numbers.Number):  # (2.5, nan: refused naming the parameter)
        n = check_number("event_list", "sources", sources, ge=0, integer=True, unit="(or a list of Source specs)")
        lo, hi = det.source_rate_range
        rates = np.exp(rng.uniform(math.log(lo), math.log(hi), n))
        return [Source(rate=float(r)) for r in rates]
    if isinstance(sources, pd.DataFrame):  # NaN cells are missing fields (e.g. no x/y where ra/dec are given)
        sources = [{k: v for k, v in r.items() if not pd.isna(v)} for r in sources.to_dict("records")]
    out = [as_spec(Source, s) for s in sources]
    for src in out:
        check_source(src)
    return out


def _random_soft_protons(spec, duration, det: Detector, rng) -> list[SoftProtonFlare]:
    if isinstance(spec, numbers.Number):
        n = check_number("event_list", "soft_protons", spec, ge=0, integer=True,
                         unit="(or a list of SoftProtonFlare specs)")
        out = []
        lo, hi = det.proton_rate_range
        for _ in range(n):
            d = float(min(np.exp(rng.uniform(math.log(2e3), math.log(1e4))), duration))
            s = float(rng.uniform(0.0, max(duration - d, 0.0)))
            out.append(
                SoftProtonFlare(t_start=s, duration=d, peak_rate=float(np.exp(rng.uniform(math.log(lo), math.log(hi)))))
            )
        return out
    out = [as_spec(SoftProtonFlare, s) for s in spec]
    for sp in out:
        check_soft_proton(sp)
    return out
