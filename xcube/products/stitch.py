"""Long-term light curves: light curves of many observations (of one or
several missions) joined on one time axis, and their extraction in parallel
over an archive.

``xr.concat`` cannot join two real light curves: each carries its own GTI
table on dimension ``gti`` and its own mission time frame (MJDREF, TIMESYS).
:func:`stitch` converts every bin to TT seconds (TDB when every input is
barycentric TDB) from a common MJDREF, keeps
the mission time and the observation's metadata along ``time``, merges the
GTIs into one table, and sorts the bins in time.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import xarray as xr

from .. import gti as gtimod
from .._version import __version__
from ..times import mjd_tt, reference_on_time, time_reference, time_reference_frame, to_common_seconds

__all__ = ["stitch", "extract_lightcurves"]

log = logging.getLogger("xcube.products")

_META = ("obs_id", "mission", "instrument")


def _as_lightcurves(lightcurves) -> list:
    if isinstance(lightcurves, xr.DataTree):
        return [n.to_dataset() for n in lightcurves.subtree if "time" in n.to_dataset().dims]
    if isinstance(lightcurves, (xr.Dataset, str, Path)):
        lightcurves = [lightcurves]
    out = []
    for lc in lightcurves:
        if not isinstance(lc, xr.Dataset):
            from ..io.lightcurve_file import read_lightcurve

            lc = read_lightcurve(lc)
        if "time" not in lc.dims or "time_lo" not in lc.coords:
            raise ValueError(f"stitch: {lc.attrs.get('source', 'input')} is not a light curve (dim 'time' with "
                             "time_lo/time_hi)")
        out.append(lc)
    if not out:
        raise ValueError("stitch: no light curves given")
    return out


def shared_names(lcs) -> dict:
    """``mission``/``instrument`` attrs of the stitched curve (its files'
    TELESCOP and INSTRUME): the one the inputs share, else the sorted
    distinct ones joined with '+' (with ``telescop`` the missions' own
    TELESCOP names, e.g. ``'XMM+NUSTAR'``)."""
    from ..missions import telescop_of

    out = {}
    for key in ("mission", "instrument"):
        names = sorted({str(lc.attrs.get(key) or "").strip() for lc in lcs} - {""})
        if names:
            out[key] = "+".join(names)
            if key == "mission" and len(names) > 1:
                out["telescop"] = "+".join(dict.fromkeys(telescop_of(m) for m in names))
    return out


def _reference(lc, index: int):
    """The :class:`xcube.times.TimeReference` of ``lc`` (MJDREFI + MJDREFF
    where its attrs keep both, full precision; its TIMESYS); ``ValueError``
    naming it when it has no MJDREF."""
    src = lc.attrs.get("source") or f"light curve {index}"
    if not any(k in lc.attrs for k in ("mjdref", "mjdrefi")):
        raise ValueError(f"stitch: {src} has no MJDREF (attrs['mjdref']); set it (e.g. lc.attrs['mjdref'] = 50814.0) "
                         "so its times can be placed on the common axis")
    return time_reference(lc, f"stitch: {src}")


def _time_frame(lcs, refs) -> tuple[str, str | None]:
    """``(timesys, timeref)`` of the stitched axis: TDB when every input is
    in TDB (barycentred data stay barycentric TDB: the geocentric TDB -> TT
    term of up to 1.7 ms would distort them), else TT; the TIMEREF the inputs
    share (None when none gives one). ``ValueError`` naming each input and
    its TIMEREF when they differ (topocentric with barycentred times); a
    missing TIMEREF is OGIP's default, LOCAL."""
    given = [time_reference_frame(lc) or "" for lc in lcs]
    if len({g or "LOCAL" for g in given}) > 1:
        listed = _listed(enumerate(lcs), lambda i, lc: given[i] or "LOCAL (not given)")
        raise ValueError(f"stitch: the light curves have different TIMEREF ({listed}): topocentric (LOCAL) and "
                         "barycentred (SOLARSYSTEM) times differ by up to about 500 s, so one time axis "
                         "cannot hold both; barycentre all of them (e.g. barycen, barycorr) or none")
    timeref = next((g for g in given if g), None)
    return ("TDB" if all(ref.timesys == "TDB" for ref in refs) else "TT"), timeref


def _on_axis(ref, axis: str):
    """The reference to convert ``ref``'s times with onto a stitched axis in
    ``axis``: ``ref`` itself for TT (``to_common_seconds``/``mjd_tt`` convert
    its TIMESYS to TT); for a TDB axis (every input TDB) ``ref`` read as one
    scale with the axis, so that only the epoch moves (their TT arithmetic is
    that of any single time scale)."""
    return ref if axis == "TT" else replace(ref, timesys="TT")


def _one(lc, index: int, common: float, axis: str = "TT") -> tuple[xr.Dataset, tuple]:
    """Light curve ``lc`` on the common axis (``axis`` seconds since MJD
    ``common``), its GTIs in common seconds."""
    src = str(lc.attrs.get("source", f"light curve {index}"))
    ref = _on_axis(_reference(lc, index), axis)
    conv = {k: to_common_seconds(lc[k].values, ref, ref.timesys, common, src) for k in ("time", "time_lo", "time_hi")}
    n = lc.sizes["time"]
    body = lc.drop_vars([v for v in lc.variables if "gti" in lc[v].dims])
    body = body.drop_vars([c for c in ("time", "time_lo", "time_hi") if c in body.coords])
    body = body.assign_coords(
        time=("time", conv["time"], {"units": "s", "long_name": f"{axis} seconds since MJD {common:.15g}"}),
        time_lo=("time", conv["time_lo"], {"units": "s"}), time_hi=("time", conv["time_hi"], {"units": "s"}),
        mjd=("time", mjd_tt(lc["time"].values, ref, ref.timesys, src), {"units": "d", "timesys": axis}),
        mission_time=("time", np.asarray(lc["time"].values, np.float64),
                      {"units": "s", "long_name": "time in the observation's own mission frame"}),
        obs_index=("time", np.full(n, index, np.int32)),
        **{k: ("time", np.full(n, str(lc.attrs.get(k, "") or ""), dtype=object)) for k in _META},
    )
    gti = gtimod.from_dataset(lc) if "gti_start" in lc else (lc["time_lo"].values[lc["exposure"].values > 0],
                                                             lc["time_hi"].values[lc["exposure"].values > 0])
    gti = tuple(to_common_seconds(g, ref, ref.timesys, common, src) for g in gti)
    return body, gti


def _name_of(i: int, lc) -> str:
    """Input ``i``'s file (else ``light curve <i>``), for messages."""
    return str(lc.attrs.get("source") or f"light curve {i}")


def stitch(lightcurves, *, mjdref: float | None = None) -> xr.Dataset:
    """Join light curves of many observations into one long-term light curve.

    Parameters
    ----------
    lightcurves : light-curve Datasets (``xcube.lightcurve``,
        ``xcube.read_lightcurve``), OGIP light-curve paths, or a DataTree of
        light curves; any missions, each with its ``mjdref`` and ``timesys``.
    mjdref : common reference [MJD, TT; TDB for a TDB axis] of the new
        ``time`` axis; default the whole MJD before the earliest bin.

    Returns
    -------
    ``xr.Dataset`` on ``time``: every input bin exactly once, sorted by time.
    Coords ``time``/``time_lo``/``time_hi`` [TT s since ``mjdref``; TDB s
    when every input is TDB, as barycentred data are: they are not moved to
    TT], ``mjd`` [MJD, TT (TDB), bin centre], ``mission_time`` [s in the
    observation's own frame], ``exposure``, ``fracexp``, and per-bin metadata ``obs_id``, ``mission``,
    ``instrument``, ``obs_index`` (position in the input list). Variables are
    the union of the inputs' (NaN where an observation lacks one); one merged
    ``gti_start``/``gti_stop`` table in the new frame. attrs ``mjdref``,
    ``timesys`` (``'TT'``, or ``'TDB'``), ``timeref`` when an input gives
    one (all inputs must share it: topocentric LOCAL with barycentred
    SOLARSYSTEM is a ``ValueError`` naming them; none given is LOCAL),
    ``n_observations`` (distinct mission and obs_id: two
    cameras of one observation count once), ``n_lightcurves``,
    ``observations`` (obs_id of each light curve), ``mission`` and
    ``instrument`` (the one the inputs share, else their names joined with
    '+', as the written file's TELESCOP and INSTRUME),
    ``time_bin`` (NaN when the inputs differ), ``rate_kind`` and
    ``hduclas2`` when the inputs' ``rate`` is a NET or BKG rate (OGIP files
    read back; all inputs must agree, ``ValueError`` naming them otherwise),
    ``errors`` when all inputs share it, ``energy_band`` [keV] (and
    ``pi_band``) when all inputs share it: light curves of different bands
    (one without a recorded band among them) are a ``ValueError`` naming each
    input and its band.

    Lazy data stay lazy; the time coordinates are converted eagerly and the
    ``exposure`` coordinate is read (to refuse inputs without good time).
    """
    lcs = _as_lightcurves(lightcurves)
    kind = _rate_kind(lcs)
    band = _band_attrs(lcs)
    refs = [_reference(lc, i) for i, lc in enumerate(lcs)]
    axis, timeref = _time_frame(lcs, refs)
    if mjdref is None:
        on = [_on_axis(ref, axis) for ref in refs]
        starts = [mjd_tt(lc["time_lo"].values[:1], ref, ref.timesys) for lc, ref in zip(lcs, on) if lc.sizes["time"]]
        mjdref = float(np.floor(min(float(s[0]) for s in starts))) if starts else refs[0].mjdref
    bodies, gtis = zip(*[_one(lc, i, float(mjdref), axis) for i, lc in enumerate(lcs)])
    names = sorted({v for b in bodies for v in b.data_vars})
    bands = {tuple(b["band"].values) if "band" in b.dims else None for b in bodies}
    if len(bands) > 1:
        raise ValueError(f"stitch: the light curves have different energy bands {sorted(map(str, bands))}; "
                         "select the same band(s) in each (lc.sel(band=...))")
    filled = []
    for b in bodies:
        missing = {v: xr.full_like(b["exposure"], np.nan, dtype=np.float64).reset_coords(drop=True)
                   for v in names if v not in b}
        filled.append(b.assign(missing))
    out = xr.concat(filled, dim="time", data_vars="all", coords="different", compat="equals",
                    combine_attrs="drop")
    order = np.argsort(out["time"].values, kind="stable")
    out = out.isel(time=order)
    # concat dropped every variable's attrs: each gets its inputs' (units, names; the time axis' as _one made them)
    for k in out.variables:
        out[k].attrs = dict(next((b[k].attrs for b in bodies if k in b.variables and b[k].attrs), {}))
    if not (np.asarray(out["exposure"].values) > 0).any():
        raise ValueError(f"stitch: no bin of {', '.join(_name_of(i, lc) for i, lc in enumerate(lcs))} has good "
                         "time (exposure > 0); nothing to stitch")
    start = np.concatenate([g[0] for g in gtis])
    stop = np.concatenate([g[1] for g in gtis])
    g = gtimod.normalize(start, stop, warn=False)
    out["gti_start"] = ("gti", g[0], {"units": "s"})
    out["gti_stop"] = ("gti", g[1], {"units": "s"})
    widths = {round(float(lc.attrs.get("time_bin", np.nan)), 9) for lc in lcs}
    out.attrs = {"kind": "lightcurve", "stitched": True, "mjdref": float(mjdref), "timesys": axis,
                 "n_observations": _n_observations(lcs), "n_lightcurves": len(lcs),
                 "observations": [str(lc.attrs.get("obs_id", "")) for lc in lcs],
                 "sources": [str(lc.attrs.get("source", "")) for lc in lcs],
                 "missions": sorted({str(lc.attrs.get("mission", "")) for lc in lcs}),
                 "time_bin": widths.pop() if len(widths) == 1 else float("nan"), "xcube_version": __version__}
    out.attrs.update(band)
    out.attrs.update(shared_names(lcs))
    if timeref is not None:
        out.attrs["timeref"] = timeref
    if kind != "total":
        out.attrs["rate_kind"] = kind
        out.attrs["hduclas2"] = {"net": "NET", "background": "BKG"}[kind]
    errors = {lc.attrs.get("errors") for lc in lcs}
    if len(errors) == 1 and None not in errors:
        out.attrs["errors"] = errors.pop()
    return reference_on_time(out)


def _rate_kind(lcs) -> str:
    """The one ``rate_kind`` of the light curves (what their ``rate`` holds:
    ``"total"``, ``"net"``, ``"background"``; absent is total), or
    ``ValueError`` naming them when they differ: a stitched ``rate`` must hold
    one kind of rate, and :func:`xcube.rebin_lightcurve` and the writer go by it."""
    kinds = [str(lc.attrs.get("rate_kind", "total")) for lc in lcs]
    if len(set(kinds)) == 1:
        return kinds[0]
    listed = ", ".join(f"{lc.attrs.get('source') or f'light curve {i}'}: {k}" for i, (lc, k) in
                       enumerate(zip(lcs, kinds)))
    raise ValueError(f"stitch: the light curves' rate columns hold different kinds of rate ({listed}); stitch "
                     "light curves of one kind: NET files with NET files (or, for a light curve made with a "
                     "background region, lc.assign(rate=lc.net_rate, rate_err=lc.net_rate_err) with "
                     "lc.attrs['rate_kind'] = 'net'), gross with gross")


def _listed(indexed, shown) -> str:
    """``"source: value, ..."`` of ``(index, light curve)`` pairs, ``shown(index,
    lc)`` giving each value (a light curve without a source: ``light curve i``)."""
    return ", ".join(f"{_name_of(i, lc)}: {shown(i, lc)}" for i, lc in indexed)


def _band_key(band):
    """An ``energy_band`` attr ``[emin, emax]`` [keV] as a comparable tuple (None: no band recorded)."""
    if band is None:
        return None
    return tuple(round(float(v), 9) for v in np.ravel(np.asarray(band, np.float64)))


def _band_attrs(lcs) -> dict:
    """``energy_band`` (and ``pi_band``) the light curves share, for the
    stitched attrs (so E_MIN/E_MAX and the index keep the band); ``{}`` when
    none is recorded. ``ValueError`` naming each input and its band when
    single-band light curves differ in ``energy_band``, a light curve without
    a recorded band included: joined, they would show a false flux jump.
    Multi-band light curves (dim ``band``) are compared by their ``band``
    coordinates (:func:`stitch`). ``pi_band`` (PI channels, a mission's) is
    kept only when all inputs share it. A band is the one the light curve
    holds (:func:`~xcube.products.lightcurve.product_band`: one band picked
    from a multi-band light curve is that band)."""
    from .lightcurve import product_band

    bands = [product_band(lc) for lc in lcs]
    single = [(i, lc) for i, lc in enumerate(lcs) if "band" not in lc.dims]
    keys = {_band_key(bands[i]["energy_band"]) for i, _ in single}
    if len(keys) > 1:
        def shown(i, lc):
            k = _band_key(bands[i]["energy_band"])
            return "no band recorded" if k is None else "-".join(f"{v:g}" for v in k) + " keV"

        listed = _listed(single, shown)
        raise ValueError(f"stitch: the light curves have different energy bands ({listed}); stitch light curves of "
                         "one band: extract them with the same band (xcube stitch EVENTS... --time-bin T --energy "
                         "EMIN EMAX, xcube.lightcurve(..., energy_band=(emin, emax))); a light curve whose band is "
                         "known but not recorded can be given it with lc.attrs['energy_band'] = [emin, emax]")
    out = {}
    for name in ("energy_band", "pi_band"):
        value = bands[0][name]
        if value is not None and all(b[name] == value or (name == "energy_band" and _band_key(
                b[name]) == _band_key(value)) for b in bands[1:]):
            out[name] = value
    return out


def _n_observations(lcs) -> int:
    """Distinct (mission, obs_id) of the light curves; each one without an obs_id counts alone."""
    ids = [(str(lc.attrs.get("mission", "")), str(lc.attrs.get("obs_id", "") or "")) for lc in lcs]
    return len({i for i in ids if i[1]}) + sum(1 for i in ids if not i[1])


def _extract_one(source, kwargs):
    """Open one event file (or use one EventList) and make its light curve
    (screened when ``kwargs["screening"]``) in this task."""
    from ..io import open_events
    from .lightcurve import lightcurve

    ev = source if isinstance(source, xr.Dataset) else open_events(source)
    return lightcurve(ev, **kwargs).compute(scheduler="sync")


def extract_lightcurves(sources, time_bin: float, *, screening: bool = True, errors: str = "warn",
                        skipped: dict | None = None, **kwargs) -> list:
    """Light curves of many observations, extracted in parallel: one Dask task
    per observation (opening, selecting and binning run inside the task).

    ``sources``: event-file paths, EventLists, or a DataTree from
    ``xcube.open_archive`` (nodes with ``path`` or an EventList). ``kwargs``
    go to :func:`xcube.lightcurve` (``energy_band``, ``region``, ``expr``,
    ``background``, ...), so re-extracting other channels or bands over an
    archive is one call. ``screening``: apply each mission's standard event
    screening with ``expr``, as ``xcube lc`` and ``xcube stitch`` do by
    default (e.g. XMM MOS ``PATTERN <= 12 && FLAG == 0``); False keeps every
    event. Runs on the current Dask scheduler: threads, or a
    ``dask.distributed`` client when one is active. An observation that fails
    is skipped with a warning naming it and the reason (``errors="raise"``
    stops instead); a dict given as ``skipped`` receives ``{source: reason}``
    of each (the exception's message, one line). Returns the light curves
    (computed) in input order; pass them to :func:`stitch`.
    Eager: ``dask.compute`` runs all the tasks before returning; ``time_bin``
    [s].
    """
    import dask

    if isinstance(sources, xr.DataTree):
        sources = [n.to_dataset() if n.to_dataset().data_vars else n.attrs["path"] for n in sources.subtree
                   if n.to_dataset().data_vars or "path" in n.attrs]
    kwargs = dict(kwargs, time_bin=time_bin, screening=screening)
    # partial: Dask must not compute a lazy EventList before the task (it is binned inside it)
    tasks = [dask.delayed(partial(_safe, _extract_one, s, kwargs, errors == "raise"), pure=False)() for s in sources]
    results = dask.compute(*tasks)
    out = []
    for s, (lc, err) in zip(sources, results):
        if err is not None:
            name = getattr(s, "attrs", {}).get("source", s)
            log.warning("extract_lightcurves: %s skipped: %s: %s", name, *err)
            if skipped is not None:
                skipped[name] = " ".join(err[1].split())
            continue
        out.append(lc)
    return out


def _safe(func, source, kwargs, strict):
    """``(result, None)``, or ``(None, (exception class name, message))``
    when ``func`` fails with an error of the input (``strict``: raised)."""
    try:
        return func(source, kwargs), None
    except (OSError, ValueError, KeyError) as exc:
        if strict:
            raise
        return None, (type(exc).__name__, str(exc))
