"""Injection of transients into any event list (:func:`inject_flare`,
:func:`inject_eclipse`), of instrumental events (:func:`inject_instrumental`:
hot pixels, flickering pixels, multi-event clusters) and the time-ordered
merge of the new events into the list's (possibly lazy) columns.
"""
from __future__ import annotations

import math
import warnings

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .. import gti as gtimod
from ..missions import profile_of
from ..select import own_good_time_test
from .components import Component
from .detector import sample_energy
from .geometry import sky_position, sky_wcs, to_sky
from .models import (
    FWHM_PER_SIGMA,
    PSF_FWHM_ARCSEC,
    Eclipse,
    Flare,
    check_eclipse,
    check_flare,
    check_number,
    check_seed,
    position_given,
    truth_frame,
    truth_row,
)

__all__ = ["inject_flare", "inject_eclipse", "inject_instrumental", "INSTRUMENTAL_KINDS"]

#: what :func:`inject_instrumental` makes
INSTRUMENTAL_KINDS = ("hot_pixel", "hot_column", "flicker", "cluster")
#: an injection farther than this [arcsec] from every event of the list is probably off the detector (warned)
OFF_FIELD_ARCSEC = 60.0

#: the default band [keV] of injected events, cut to the mission profile's energy_range (:func:`_energy_band`)
DEFAULT_BAND = (0.2, 12.0)

_FIXED_COLUMNS = ("time", "x", "y", "pi", "energy", "pattern", "flag")


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
    energy_band: tuple[float, float] | None = None,
) -> tuple[xr.Dataset, pd.DataFrame]:
    """Add a Gaussian-in-time flare of a point source to an EventList.

    ``t_peak`` [s, mission time], ``amplitude`` [ct/s at the peak, >= 0],
    ``width`` [s, Gaussian sigma, > 0]; position ``ra``/``dec`` [deg] or sky
    pixels ``x``/``y``, not both (a random event's position when omitted). The
    position must lie within the legal range of the X/Y columns (TLMIN/TLMAX,
    attrs ``x_min``/``x_max``/``y_min``/``y_max``; without them the extent of
    the events): a ``ValueError`` names it and the range otherwise. New events
    the PSF spreads beyond that range are clipped to it. Events are Poisson-drawn inside
    the list's GTIs (those of the source's CCD when the list has per-CCD GTIs;
    an event the PSF spreads onto a CCD while it is off is dropped), spread by
    a Gaussian PSF of ``psf_fwhm_arcsec`` FWHM [arcsec, > 0], with an absorbed
    power-law spectrum in ``energy_band`` [keV]: (low, high) within the mission
    profile's ``energy_range`` (XMM EPIC 0.15-15, NuSTAR 3-79 keV), default
    0.2-12 keV cut to that range (NuSTAR 3-12 keV); PI stays within the
    profile's ``pi_range``. ``seed``: a whole number >= 0, or None. A bad
    parameter is a ``ValueError`` naming it, before anything is drawn.

    Returns ``(events, truth)``: a new time-sorted EventList with the same
    columns (``pattern`` and ``flag`` 0; ``energy`` from the PI; every other
    column, e.g. ``ccdnr``/``rawx``, copied from the nearest existing event) and
    a one-row truth DataFrame. Lazy inputs stay lazy: the new events are merged
    into the Dask chunks they fall in (eager work: the first time of every chunk
    and the positions of up to 200,000 events, for the nearest-event fill).
    """
    spec = Flare(t_peak=t_peak, amplitude=amplitude, width=width, ra=ra, dec=dec, x=x, y=y)
    check_flare(spec, "inject_flare")
    position_given(spec, "inject_flare")
    comp = Component("flare", "source", "photon", "psf", gauss=(float(t_peak), float(width), float(amplitude)))
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
    energy_band: tuple[float, float] | None = None,
) -> tuple[xr.Dataset, pd.DataFrame]:
    """Add an eclipsing point source to an EventList: constant ``rate`` [ct/s],
    falling to ``rate * (1 - depth)`` during ``[t_start, t_start + duration)``
    [s, mission time]. Same conventions, return value and laziness as
    :func:`inject_flare` (lazy inputs stay lazy; the new events are merged
    into the Dask chunks they fall in); the truth ``counts`` are the source's
    events inside the eclipse window. Returns ``(events, truth)``: the
    EventList with the source's events added (dim ``event``) and a one-row
    truth DataFrame."""
    spec = Eclipse(t_start=t_start, duration=duration, depth=depth, rate=rate, ra=ra, dec=dec, x=x, y=y)
    check_eclipse(spec, "inject_eclipse")
    position_given(spec, "inject_eclipse")
    g = gtimod.from_dataset(events)
    t0 = min(float(g[0][0]) if g[0].size else t_start, t_start) - 1.0
    t1 = max(float(g[1][-1]) if g[1].size else t_start, t_start + duration) + 1.0
    te = t_start + duration
    inside = Component("eclipse_in", "source", "photon", "psf", edges=np.array([t_start, te]),
                       rates=np.array([rate * (1 - depth)]))
    outside = Component("eclipse_out", "source", "photon", "psf", edges=np.array([t0, t_start, te, t1]),
                        rates=np.array([rate, 0.0, rate]))
    row = dict(kind="eclipse", transient=True, t_peak=t_start + 0.5 * duration, t_start=float(t_start),
               t_stop=float(te), amplitude=rate * depth, width=float(duration), rate=float(rate), depth=float(depth))
    return _inject(events, spec, [inside, outside], row, seed, psf_fwhm_arcsec, energy_band)


def inject_instrumental(events: xr.Dataset, kind: str, *, ccd: int, rawx: int, rawy: int = 1, rate: float = 0.05,
                        t_start: float | None = None, n_events: int = 20, duration: float = 5.0, seed=None):
    """Add events the detector made (not photons) at raw pixel ``(ccd, rawx, rawy)``.

    ``kind``: ``"hot_pixel"`` (a pixel firing ``rate`` ct/s all through the
    good time), ``"hot_column"`` (column ``rawx`` firing ``rate`` ct/s spread
    evenly over the rows that have events), ``"flicker"`` (``n_events``
    events within ``duration`` s from ``t_start``) or ``"cluster"``
    (``n_events`` events within one CCD frame time from ``t_start``, on that
    pixel and the next ones along RAWX). The events have PATTERN 0 and FLAG
    0 (SAS did not flag them), 0.2-1 keV, and the sky X/Y (and other
    columns) of the existing event nearest in raw pixels on the CCD. The
    list needs the mission profile's ``raw_columns`` (XMM ``ccdnr``/``rawx``/
    ``rawy``). Returns ``(events, n_added)``; the list stays time-sorted
    (lazy columns stay lazy)."""
    gti = _check_injectable(events)
    prof = profile_of(events)
    cols = prof.raw_columns or ()
    if not cols or any(c not in events for c in cols):
        raise ValueError(f"inject_instrumental: the event list has no raw pixel columns {cols or '(none)'}")
    if kind not in INSTRUMENTAL_KINDS:
        raise ValueError(f"inject_instrumental: kind {kind!r}; use one of {INSTRUMENTAL_KINDS}")
    rng = np.random.default_rng(seed)
    t0 = float(gti[0][0]) if t_start is None else float(t_start)
    if kind in ("hot_pixel", "hot_column"):
        t = _uniform_in(gti, int(rng.poisson(rate * gtimod.exposure(gti))), rng)
    else:
        span = duration if kind == "flicker" else max(prof.frame_time, 1e-3) * 0.9
        t = np.sort(t0 + rng.uniform(0.0, span, int(n_events)))
    n = t.size
    other = [v for v in events.data_vars if events[v].dims == ("event",) and v not in ("time", "pi", "energy")]
    sample = _sample_events(events, [c for c in other if c not in ("x", "y")])
    c, x_, y_ = (sample[k].values.astype(np.int64) for k in cols)
    on = np.flatnonzero(c == int(ccd))
    if on.size == 0:
        raise ValueError(f"inject_instrumental: no event on CCD {ccd} to take sky positions from")
    rx = np.full(n, int(rawx)) + (np.arange(n) % 3 if kind == "cluster" else 0)
    ry = rng.integers(y_[on].min(), y_[on].max() + 1, n) if kind == "hot_column" else np.full(n, int(rawy))
    near = on[np.argmin(np.abs(x_[on][None, :] - rx[:, None]) + np.abs(y_[on][None, :] - ry[:, None]), axis=1)] \
        if n else np.zeros(0, np.int64)
    new = {"time": t, "pi": _as_column(prof.pi_for_energy(rng.uniform(0.2, 1.0, n)), events["pi"].dtype)}
    if "energy" in events:
        new["energy"] = prof.energy(new["pi"]).astype(events["energy"].dtype)
    for v in other:
        new[v] = sample[v].values[near].astype(events[v].dtype)
    for v in ("pattern", "flag"):
        if v in events:
            new[v] = np.zeros(n, events[v].dtype)
    for v, vals in zip(cols, (np.full(n, int(ccd)), rx, ry)):
        new[v] = np.asarray(vals).astype(events[v].dtype)
    out = _merge_events(events, new)
    out.attrs["injections"] = list(events.attrs.get("injections", [])) + [
        f"{kind} ccd={ccd} rawx={rawx} rawy={rawy} n={n} seed={seed}"]
    return out, n


def _uniform_in(gti, n, rng) -> np.ndarray:
    """``n`` sorted times uniform over the good time intervals ``gti``."""
    start, stop = (np.asarray(a, np.float64) for a in gti)
    w = stop - start
    k = rng.choice(w.size, n, p=w / w.sum()) if n else np.zeros(0, int)
    return np.sort(start[k] + rng.uniform(0.0, 1.0, n) * w[k])


def _check_injectable(events: xr.Dataset):
    """The list's GTI, after checking it has events, the needed columns and good time."""
    if "event" not in events.dims or events.sizes["event"] == 0:
        raise ValueError("inject: the event list is empty; inject into a list with events (or simulate one)")
    for col in ("time", "x", "y", "pi"):
        if col not in events:
            raise ValueError(f"inject: the event list has no {col!r} column")
    gti = gtimod.from_dataset(events)
    if gti[0].size == 0:
        raise ValueError("inject: the event list has no good time (empty GTI); nothing can be injected")
    return gti


def _sample_events(events: xr.Dataset, other: list, max_n: int = 200_000) -> xr.Dataset:
    """x, y and the ``other`` columns of up to ``max_n`` evenly spaced events (eager)."""
    n = events.sizes["event"]
    idx = np.unique(np.linspace(0, n - 1, min(n, max_n)).astype(np.int64))
    return events[["x", "y", *other]].isel(event=idx).compute()


def _sky_range(events, sx, sy) -> tuple[tuple[float, float], tuple[float, float], str]:
    """((x_lo, x_hi), (y_lo, y_hi)) sky pixels the X/Y columns may hold, both
    ends included: TLMIN/TLMAX (attrs ``x_min``...), else the extent of the
    sampled events ``sx``/``sy``; and a word on where the range comes from."""
    a = events.attrs
    if all(a.get(k) is not None for k in ("x_min", "x_max", "y_min", "y_max")):
        return (float(a["x_min"]), float(a["x_max"])), (float(a["y_min"]), float(a["y_max"])), "TLMIN/TLMAX"
    return (float(sx.min()), float(sx.max())), (float(sy.min()), float(sy.max())), "extent of the events"


def _position(events, spec, sx, sy, rng, who: str = "inject"):
    """(x, y) sky pixels of the injected source, its WCS (None without sky
    attrs) and the legal X/Y range (:func:`_sky_range`); ``ValueError`` when the
    position lies outside that range (:func:`~xcube.simulate.geometry.sky_position`)."""
    from ..skycoords import has_wcs

    w = sky_wcs(events.attrs) if has_wcs(events) else None
    xr_, yr_, origin = _sky_range(events, sx, sy)
    pos = sky_position(spec, w, xr_, yr_, origin, who)
    if pos is None:
        j = int(rng.integers(sx.size))
        return sx[j], sy[j], w, (xr_, yr_)
    return *pos, w, (xr_, yr_)


def _as_column(values, dtype) -> np.ndarray:
    """``values`` in a column's dtype, rounded to the nearest integer for integer columns."""
    return (np.rint(values) if dtype.kind in "iu" else values).astype(dtype)


def _energy_band(band, profile, who: str) -> tuple[float, float]:
    """The band [keV] of the injected events' spectrum: ``band`` after checking
    that it is two finite energies, low < high, within the profile's
    ``energy_range`` (a ``ValueError`` naming ``who`` and ``energy_band``
    otherwise: beyond it PI leaves the column's range); None: the default
    0.2-12 keV (:data:`DEFAULT_BAND`) cut to the profile's ``energy_range``
    (NuSTAR 3-12 keV), or that whole range where they do not overlap. Eager."""
    lo_m, hi_m = (float(v) for v in profile.energy_range)
    if band is None:
        lo, hi = max(DEFAULT_BAND[0], lo_m), min(DEFAULT_BAND[1], hi_m)
        return (lo, hi) if lo < hi else (lo_m, hi_m)
    shown = tuple(v.item() if isinstance(v, np.generic) else v for v in band) if np.ndim(band) == 1 else band
    try:
        lo, hi = (float(v) for v in band)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: energy_band={shown!r}: must be a (low, high) pair of energies [keV]") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{who}: energy_band={shown!r}: must be two finite energies [keV] with low < high")
    if lo < lo_m or hi > hi_m:
        raise ValueError(f"{who}: energy_band={shown!r}: must lie within the {profile.name} energy range "
                         f"{lo_m:g}-{hi_m:g} keV (the mission profile's energy_range; beyond it PI leaves its "
                         "valid range)")
    return lo, hi


def _inject(events, spec, comps, row, seed, psf_fwhm_arcsec, energy_band):
    who = f"inject_{row['kind']}"
    seed = check_seed(who, seed, none=True)
    psf_fwhm_arcsec = check_number(who, "psf_fwhm_arcsec", psf_fwhm_arcsec, gt=0, unit="arcsec")
    gti = _check_injectable(events)
    profile = profile_of(events)
    energy_band = _energy_band(energy_band, profile, who)
    rng = np.random.default_rng(seed)
    other = [v for v in events.data_vars if events[v].dims == ("event",) and v not in _FIXED_COLUMNS]
    sample = _sample_events(events, other)
    sx, sy = sample["x"].values.astype(np.float64), sample["y"].values.astype(np.float64)
    px, py, w, (xr_, yr_) = _position(events, spec, sx, sy, rng, who)
    ra_dec = to_sky(w, px, py) if w is not None else (np.array([np.nan]), np.array([np.nan]))
    pix_arcsec = abs(float(events.attrs.get("CDELT1", profile.pixel_arcsec / 3600.0))) * 3600.0
    psf_sigma = psf_fwhm_arcsec / FWHM_PER_SIGMA / pix_arcsec
    tree = None
    if other:
        from scipy.spatial import cKDTree

        tree = cKDTree(np.column_stack([sx, sy]))
    gti = _source_good_time(events, profile, sample, tree, px, py, gti)
    parts_t, n_first, expected_first = [], 0, 0.0
    for k, comp in enumerate(comps):  # counts and times; the first component is the truth
        comp.x, comp.y = px, py
        m = comp.mass(gti)
        n = int(rng.poisson(m))
        if k == 0:
            n_first, expected_first = n, m
        parts_t.append(comp.times(n, rng, gti) if n else np.empty(0))
    t = np.concatenate(parts_t)
    order = np.argsort(t, kind="stable")
    t, first = t[order], (np.arange(t.size) < n_first)[order]  # (the first component's events)
    n = t.size
    nx = np.clip(px + rng.normal(0.0, psf_sigma, n), *xr_)  # stay within TLMIN/TLMAX
    ny = np.clip(py + rng.normal(0.0, psf_sigma, n), *yr_)
    new = {"time": t, "x": _as_column(nx, events["x"].dtype), "y": _as_column(ny, events["y"].dtype)}
    pi = np.clip(profile.pi_for_energy(sample_energy("source", n, rng, energy_band)), *profile.pi_range)
    new["pi"] = _as_column(pi, events["pi"].dtype)
    if "energy" in events:
        new["energy"] = profile.energy(new["pi"]).astype(events["energy"].dtype)
    for col in ("pattern", "flag"):
        if col in events:
            new[col] = np.zeros(n, dtype=events[col].dtype)
    if other:
        gap = float(tree.query([px, py])[0]) * pix_arcsec
        if gap > OFF_FIELD_ARCSEC:
            warnings.warn(f"inject_{row['kind']}: the position x={px:.1f}, y={py:.1f} is {gap:.0f} arcsec from the "
                          "nearest event of the list: probably off the detector (outside the field of view or its "
                          "CCDs); the new events take the CCD and raw columns of the events nearest to it",
                          UserWarning, stacklevel=3)
        nearest = tree.query(np.column_stack([nx, ny]))[1] if n else np.empty(0, int)
        for col in other:
            new[col] = sample[col].values[nearest].astype(events[col].dtype)
        _local_raw(profile, sample, tree, px, py, nx, ny, new, events)
        test = own_good_time_test(events)  # a CCD records nothing while it is off: the PSF's spill onto one
        if test is not None:
            if n:
                keep = test({"time": new["time"], test.column: new[test.column]})
                new = {c: v[keep] for c, v in new.items()}
                n, n_first = int(keep.sum()), int(np.count_nonzero(first & keep))
            expected_first *= _recorded_share(comps[0], gti, test, sample, tree, px, py, psf_sigma, xr_, yr_, seed)
    out = _merge_events(events, new)
    out.attrs["injections"] = list(events.attrs.get("injections", [])) + [
        f"{row['kind']} x={px:.1f} y={py:.1f} t={row['t_peak']:.1f} n={n} seed={seed}"
    ]
    truth = truth_frame([truth_row(id=0, ra=float(ra_dec[0][0]), dec=float(ra_dec[1][0]), x=px, y=py,
                                   counts=n_first, expected_counts=expected_first,
                                   instrument=events.attrs.get("instrument", ""), **row)])
    return out, truth


def _recorded_share(comp, gti, test, sample, tree, px, py, psf_sigma, xr_, yr_, seed, m: int = 20000) -> float:
    """The share of a component's expected events that a live CCD records
    (the rest spread by the PSF onto a CCD while it is off), from ``m``
    events drawn as the injection draws them, with a generator of their own
    (so the injected events do not depend on it). Eager, numpy."""
    if not comp.mass(gti) > 0:  # nothing to share (a total eclipse, a flare outside the good time)
        return 1.0
    rng = np.random.default_rng([0 if seed is None else int(seed), 1])
    t = comp.times(m, rng, gti)
    if t.size == 0:
        return 1.0
    x = np.clip(px + rng.normal(0.0, psf_sigma, t.size), *xr_)
    y = np.clip(py + rng.normal(0.0, psf_sigma, t.size), *yr_)
    ccd = sample[test.column].values[tree.query(np.column_stack([x, y]))[1]]
    return float(np.mean(test({"time": t, test.column: ccd})))


def _source_good_time(events, profile, sample, tree, px, py, gti):
    """The good time of the CCD at sky pixel (px, py) (that of the nearest
    sample event; :func:`xcube.gti.ccd_good_time`), or ``gti`` without
    per-CCD GTIs: an injected source shines only while its CCD is on."""
    col = profile.ccd_variable
    if tree is None or not col or col not in sample or "ccd_gti_ccd" not in events.variables:
        return gti
    ccd = int(sample[col].values[int(tree.query([px, py])[1])])
    own = gtimod.ccd_good_time(events, [ccd])
    return gti if own is None else own


#: radius [arcsec] of the sample events an injection's raw-pixel fit takes
RAW_FIT_ARCSEC = 60.0


def _local_raw(profile, sample, tree, px, py, nx, ny, new, events, k: int = 2000, m: int = 400) -> None:
    """RAWX/RAWY of new events at sky pixels (nx, ny): per CCD (the nearest
    existing event's), an affine fit of the raw coordinates on x/y of up to
    ``m`` of that CCD's sample events within :data:`RAW_FIT_ARCSEC` of (px,
    py) (spread over them; the ``k`` nearest when fewer), clipped to the
    raw pixels that CCD's sample events cover. Copying the nearest event's
    pixel instead would put a whole flare on a few pixels: a hot pixel for
    the detector hygiene; so would a fit on the events of a bright source
    alone, which lie within a few arcsec."""
    cols = profile.raw_columns
    if not cols or any(c not in new for c in cols) or len(nx) == 0:
        return
    near = np.asarray(tree.query_ball_point([px, py], RAW_FIT_ARCSEC / profile.pixel_arcsec), np.int64) \
        if profile.pixel_arcsec > 0 else np.zeros(0, np.int64)
    if near.size < k:
        near = np.asarray(tree.query([px, py], k=min(k, tree.n))[1], np.int64)
    near = np.sort(near)
    ccd_all = sample[cols[0]].values
    ccd_near = ccd_all[near]
    for c in np.unique(new[cols[0]]):
        idx = near[ccd_near == c]
        if idx.size > m:
            idx = idx[np.linspace(0, idx.size - 1, m).astype(np.int64)]
        on = new[cols[0]] == c
        if idx.size < 10:
            continue
        a = np.column_stack([np.ones(idx.size), sample["x"].values[idx], sample["y"].values[idx]]).astype(np.float64)
        b = np.column_stack([np.ones(int(on.sum())), nx[on], ny[on]])
        for col in cols[1:]:
            v = sample[col].values[idx].astype(np.float64)
            own = sample[col].values[ccd_all == c]
            coef = np.linalg.lstsq(a, v, rcond=None)[0]
            new[col][on] = np.clip(np.rint(b @ coef), own.min(), own.max()).astype(events[col].dtype)


def _merge_events(events: xr.Dataset, new: dict) -> xr.Dataset:
    """Insert time-sorted new events into a time-sorted EventList.

    ``new``: column name -> 1-D numpy array, one value per new event, for every
    ``event`` column of ``events``. Returns a new EventList with the same
    columns, dtypes and attrs, still time-sorted. Lazy for Dask columns: the new
    events go into the chunk their time falls in (eager: the first time of every
    chunk); numpy columns are merged eagerly."""
    names = [v for v in events.data_vars if events[v].dims == ("event",)]
    missing = [v for v in names if v not in new]
    if missing:
        raise ValueError(f"inject: no values for columns {missing}")
    tvar = events["time"].data
    if isinstance(tvar, da.Array):
        merged = _merge_lazy(events, names, new)
    else:
        pos = np.searchsorted(np.asarray(tvar), new["time"], side="right")
        merged = {v: np.insert(np.asarray(events[v].data), pos, np.asarray(new[v]).astype(events[v].dtype))
                  for v in names}
    out = events.drop_dims("event")
    for v in names:
        out[v] = xr.Variable(("event",), merged[v], events[v].attrs)
    order = [v for v in events.data_vars]
    return out[order].assign_attrs(events.attrs)


def _merge_lazy(events: xr.Dataset, names: list, new: dict) -> dict:
    """Dask columns with the new events inserted into the chunks their times fall in."""
    t_new = new["time"]
    tvar = events["time"].data
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
    merged = {}
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
    return merged


def _merge_block(t_blk, c_blk, new_t=None, new_v=None, block_id=None):
    b = block_id[0]
    nt, nv = new_t[b], new_v[b]
    if nt.size == 0:
        return c_blk
    pos = np.searchsorted(t_blk, nt, side="right")
    return np.insert(c_blk, pos, nv.astype(c_blk.dtype))
