"""Averaged power spectra of event lists and light curves, one or many.

:func:`power_spectrum` is Stingray's ``AveragedPowerspectrum`` (same
segments, FFT and normalisations, checked to 1e-10 by the tests) computed by
streaming Dask tasks (:mod:`xcube.products.pds_stream`), returned as a
labelled ``xr.Dataset`` on dimension ``freq``, and applied to many
observations in parallel.
"""
from __future__ import annotations

import logging
import warnings
from functools import partial
from numbers import Integral, Real

import numpy as np
import xarray as xr

from .._version import __version__
from ..binning.axes import positive_width
from . import pds_stream
from .lightcurve import bin_span_gti, common_bin_width, product_band, region_events

__all__ = ["power_spectrum", "rebin_power_spectrum", "average_power_spectra", "subtract_poisson_noise",
           "open_timing_input",
           "NORMS"]

log = logging.getLogger("xcube.products")

NORMS = ("leahy", "frac", "abs", "none")
_UNITS = {"leahy": "", "frac": "(rms/mean)^2/Hz", "abs": "(count/s)^2/Hz", "none": "count^2"}
_OBS_ATTRS = ("mission", "instrument", "profile", "obs_id", "object", "mjdref", "mjdrefi", "mjdreff", "timesys",
              "timeref", "telescop", "instrume", "energy_band", "pi_band", "region", "expr", "expid", "source", "ccds",
              "tstart", "tstop")


def _check(norm, segment, rebin):
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r}: use one of {NORMS} (rms normalisation is 'frac')")
    if not (isinstance(segment, Real) and not isinstance(segment, bool) and segment > 0 and np.isfinite(segment)):
        raise ValueError(f"segment={segment!r}: the segment length must be a positive, finite number of seconds")
    if isinstance(rebin, (bool, np.bool_)):
        raise ValueError(f"rebin={rebin!r}: use a negative factor for logarithmic rebinning (e.g. -0.06), a "
                         "positive whole number of frequencies per bin, or None (a bool is not a rebinning)")
    if rebin is None or rebin == 0:
        return None
    if isinstance(rebin, Integral) or (isinstance(rebin, Real) and rebin > 0 and float(rebin).is_integer()):
        if rebin < 1:
            raise ValueError(f"rebin={rebin!r}: linear rebinning needs a positive whole number of bins")
        return int(rebin)
    if isinstance(rebin, Real) and -1 < rebin < 0:
        return float(rebin)
    raise ValueError(f"rebin={rebin!r}: use a negative factor for logarithmic rebinning (e.g. -0.06), "
                     "a positive whole number for linear rebinning, or None")


def _check_background_rate(background_rate, data) -> float | None:
    """``background_rate`` as a float >= 0 (finite), or None; ``ValueError``
    naming the input ``data`` (one file or Dataset) otherwise. The upper bound
    (below the mean rate) is checked once the mean rate is known (:func:`_dataset`)."""
    if background_rate is None:
        return None
    try:
        b = float(background_rate)
    except (TypeError, ValueError):
        b = None
    if b is None or isinstance(background_rate, bool) or not (np.isfinite(b) and b >= 0):
        name = _source(data) if isinstance(data, xr.Dataset) else str(data) if isinstance(data, str) or hasattr(
            data, "__fspath__") else ""
        raise ValueError(f"{name + ': ' if name else ''}background_rate={background_rate!r} (--background-rate): the "
                         "background rate in the source region [count/s] must be a finite number >= 0 and below "
                         "the mean rate")
    return b


def _is_events(obj) -> bool:
    return isinstance(obj, xr.Dataset) and "event" in obj.dims


def _is_lightcurve(obj) -> bool:
    return isinstance(obj, xr.Dataset) and "time" in obj.dims and "counts" in obj


_SELECTION = ("energy_band", "region", "expr")


def _input_sums(obj, segment, dt, selection):
    """(Delayed PdsSums, segment, n_bin, dt, attrs) of one EventList or light
    curve; ``selection``: ``energy_band``, ``region``, ``expr`` and
    ``screening`` (the mission's screening, as ``xcube lc``; event lists only)."""
    from .. import gti as gtimod

    if dt is not None:
        dt = positive_width(f"{_source(obj) or 'power_spectrum'}: dt (the bin width of the segments [s])", dt)
    if _is_events(obj):
        if dt is None:
            raise ValueError("power_spectrum of an event list needs dt= (the bin width of the segments, e.g. 1/512 s)")
        from ..select import applied_band, screening_expr

        # the band the events cover (a cut before, or in expr, narrows it)
        band = applied_band(obj, selection["energy_band"], expr=selection["expr"])
        expr = screening_expr(obj, selection["expr"], selection["screening"], obj.attrs.get("source", "events"))
        selection = dict(selection, expr=expr)
        inside = region_events(obj, selection["region"], expr=expr)  # the region selected once
        ccd_gti, ccds = inside.ccd_gti, inside.ccds
        if any(selection[k] is not None for k in _SELECTION):
            from ..select import select

            obj = select(obj if inside.source is None else inside.source, energy_band=selection["energy_band"],
                         expr=expr, gti=ccd_gti)
        plan = pds_stream.plan_segments(gtimod.from_dataset(obj), segment, float(dt), _source(obj))
        attrs = dict(obj.attrs, err_dist="poisson", **_span(plan.start[:1], plan.stop[-1:]))
        if ccd_gti is not None:
            attrs["ccds"] = [int(c) for c in ccds]
        if band is not None:
            attrs["energy_band"] = list(band)
        for k in ("region", "expr"):
            if selection[k] is not None:
                attrs[k] = str(selection[k])
        return pds_stream.events_delayed(obj["time"].data, plan), plan.segment, plan.n_bin, plan.dt, attrs
    if _is_lightcurve(obj):
        if "band" in obj.dims:
            raise ValueError(f"power_spectrum: {_named(obj)}has {obj.sizes['band']} energy bands "
                             f"({', '.join(map(str, obj['band'].values))}); a power spectrum takes one band: pick one "
                             f"with lc.sel(band={str(obj['band'].values[0])!r})")
        if any(selection[k] is not None for k in _SELECTION):
            raise ValueError("energy_band/region/expr apply to event lists; this light curve is already extracted")
        if "gti_start" in obj:
            gtimod.from_dataset(obj)  # a GTI table made 2-D by ds.where(mask) is named up front
        obj = _without_masked_bins(obj)
        why = _not_photon_counts(obj)
        var = _count_variance(obj) if why else None
        # (the band it holds: one band picked from a multi-band light curve kept the attrs of all)
        attrs = dict(obj.attrs, err_dist="gauss" if why else "poisson", not_photon_counts=why, **product_band(obj))
        if var is not None:  # summed like the counts when dt= rebins (a TOTAL rebin recomputes rate_err)
            obj = obj.assign(_count_var=("time", var, {"units": "count"}))
        lc, width, covered = _lightcurve_at(obj, dt)
        gti = gtimod.intersection(_lightcurve_gti(lc), covered)
        sums, seg, n_bin, span = pds_stream.lightcurve_delayed(
            lc["time"].values, lc["counts"].data, gti, segment, width, f"power_spectrum: {_named(obj).rstrip()}",
            edges=(lc["time_lo"].values, lc["time_hi"].values),
            variances=lc["_count_var"].data if var is not None else None)
        return sums, seg, n_bin, width, dict(attrs, **_span(*span))
    raise TypeError(f"power_spectrum needs an EventList (dim 'event') or a light curve (dim 'time' with 'counts'), "
                    f"got {type(obj).__name__} with dims {getattr(obj, 'dims', None)}")


def _span(start, stop) -> dict:
    """``tstart``/``tstop`` [s]: the start of the first segment and the end of the last (none without segments)."""
    start, stop = np.atleast_1d(start), np.atleast_1d(stop)
    if not (start.size and stop.size):
        return {}
    return {"tstart": float(start[0]), "tstop": float(stop[-1])}


def _without_masked_bins(lc):
    """``lc`` without its bins of NaN counts (masked, e.g. flares cut with
    ``lc.counts.where(...)``), with a warning naming how many: a missing bin
    is a gap, so no segment holding one is used. Float counts are read
    (eager); integer counts have no NaN and stay as they are."""
    counts = lc["counts"]
    if counts.dtype.kind != "f":
        return lc
    good = np.isfinite(np.asarray(counts.values, np.float64))
    if good.all():
        return lc
    if not good.any():
        raise ValueError(f"power_spectrum: every bin of {_named(lc)}has NaN counts (all masked)")
    warnings.warn(f"power_spectrum: {int((~good).sum())} of {good.size} bins of {_named(lc)}have NaN counts "
                  "(masked); they are left out as gaps, so no segment holding one is used", UserWarning, stacklevel=4)
    return lc.isel(time=np.flatnonzero(good))


def _not_photon_counts(lc) -> str | None:
    """Why the ``counts`` of the light curve ``lc`` are not Poisson photon
    counts, or None when they are. They are not when ``read_lightcurve``
    rebuilt them from an exposure-corrected RATE (``attrs['counts_from_rate']``,
    whole numbers or not), nor when they are not whole
    numbers >= 0 (to 1e-3, as ``read_lightcurve`` rounds them): counts rebuilt
    as RATE x exposure from an exposure-corrected or net RATE without a
    COUNTS column (SAS ``epiclccorr``), or negative net counts;
    nor when ``attrs['rate_kind']`` is ``"net"``/``"background"`` and the
    counts are ``rate x exposure`` (rebuilt from a NET/BKG RATE; an xcube NET
    file's COUNTS are the source region's gross photon counts instead).
    Lazy integer counts of a gross light curve (``xcube.lightcurve`` of
    events) are taken for photon counts unread; float counts are read
    (computes a lazy light curve's counts)."""
    kind = str(lc.attrs.get("rate_kind") or "total")
    if lc.attrs.get("counts_from_rate"):  # read_lightcurve's mark: no COUNTS column, an exposure-corrected RATE
        return ("counts rebuilt as RATE x exposure from an exposure-corrected RATE without a COUNTS column "
                "(attrs['counts_from_rate']), such as SAS epiclccorr writes")
    counts = lc["counts"]
    if counts.dtype.kind in "iub" and kind == "total" and (counts.chunks is not None or not (counts.values < 0).any()):
        return None
    c = np.asarray(lc["counts"].values, np.float64)
    with np.errstate(invalid="ignore"):
        bad = (c < 0) | (np.abs(c - np.round(c)) > 1e-3)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        return (f"counts that are not whole numbers >= 0, e.g. {c[i]:.6g} in bin {i}, as RATE x exposure gives "
                "them for an exposure-corrected or net RATE without a COUNTS column, such as SAS epiclccorr writes")
    if kind != "total" and "rate" in lc:
        e = np.asarray(lc["exposure"].values, np.float64)
        r = np.asarray(lc["rate"].values, np.float64)
        ok = (e > 0) & np.isfinite(r)
        if ok.any() and np.allclose(c[ok], r[ok] * e[ok], rtol=1e-6, atol=1e-6):
            return f"{kind} counts rebuilt from the RATE of a {kind} light curve (rate_kind {kind!r}, no COUNTS)"
    return None


def _count_variance(lc) -> np.ndarray | None:
    """The variance of each bin's counts [count^2], ``(rate_err x
    exposure)^2`` (0 in bins without exposure), numpy of the shape of
    ``counts``; None when ``lc`` has no ``rate_err`` or one that is not finite
    where there is exposure. Eager."""
    if "rate_err" not in lc:
        return None
    e = np.asarray(lc["exposure"].values, np.float64)
    err = np.asarray(lc["rate_err"].values, np.float64)
    with np.errstate(invalid="ignore"):
        var = np.where(e > 0, (err * e) ** 2, 0.0)
    if not np.all(np.isfinite(var)) or not np.any(var > 0):
        return None
    return var


def _source(obj) -> str:
    return str(obj.attrs.get("source") or obj.attrs.get("obs_id") or "")


def _named(obj) -> str:
    """``"the light curve of <source> "`` (or ``"the light curve "``), for messages."""
    src = _source(obj)
    return f"the light curve of {src} " if src else "the light curve "


def _lightcurve_gti(lc):
    """The GTIs of a light curve cut to the span of its bins ``[time_lo[0],
    time_hi[-1])``: a subset (``lc.isel(time=...)``, a light curve from ``t0``)
    keeps the GTIs of the whole observation, and Stingray's segment search
    needs GTIs inside the bins. Without GTIs, the exposed bins."""
    if "gti_start" not in lc:
        return _gti_of_bins(lc)
    from .. import gti as gtimod

    lo, hi = float(lc["time_lo"].values[0]), float(lc["time_hi"].values[-1])
    gti = bin_span_gti(gtimod.from_dataset(lc), lo, hi)
    if gti[0].size == 0:
        full = gtimod.from_dataset(lc)
        span = f"{full[0][0]:.15g} - {full[1][-1]:.15g} s" if full[0].size else "none"
        raise ValueError(f"power_spectrum: {_named(lc)}has no good time inside its bins ({lo:.15g} - {hi:.15g} s; "
                         f"GTIs {span})")
    return gti


def _gti_of_bins(lc):
    from .. import gti as gtimod

    good = np.asarray(lc["exposure"].values) > 0
    return gtimod.normalize(lc["time_lo"].values[good], lc["time_hi"].values[good], warn=False)


def _lightcurve_at(lc, dt):
    """(light curve, bin width [s], covered): the light curve on bins of
    ``dt`` [s], itself or rebinned by a whole factor, its one bin width (the
    nominal ``time_bin`` where the edges only round it, see
    :func:`common_bin_width`), and ``(start, stop)`` [s] of the runs of
    contiguous rows of ``lc`` (:func:`pds_stream.contiguous_rows`: a missing
    row is a gap, also inside a rebinned bin; ``ValueError`` naming ``lc``
    for overlapping rows or rows out of time order). Eager on the time
    coordinates."""
    width = common_bin_width(lc, f"power_spectrum: the bins of {_named(lc)}differ in width; a power spectrum "
                                 "needs equal bins",
                             empty=f"power_spectrum: {_named(lc)}has no time bins (an empty light curve or "
                                   "selection)")
    covered = pds_stream.contiguous_rows(lc["time_lo"].values, lc["time_hi"].values,
                                         f"power_spectrum: {_named(lc).rstrip()}")
    if dt is None or np.isclose(float(dt), width, rtol=1e-9, atol=0):
        return lc, width, covered
    factor = float(dt) / width
    if factor < 1 or not np.isclose(factor, round(factor), rtol=0, atol=1e-6):
        raise ValueError(f"power_spectrum: dt={dt!r} s is not a whole multiple of the bin ({width:g} s) of "
                         f"{_named(lc).rstrip()}; rebin the events instead, or pass dt=None")
    from .rebin import rebin

    return rebin(lc, int(round(factor))), width * int(round(factor)), covered


def _dataset(sums, segment, n_bin, dt, norm, background_rate, attrs, noise=False) -> xr.Dataset:
    """Normalise the summed powers exactly as Stingray's avg_pds_from_iterable
    does: with ``attrs['err_dist']`` ``"gauss"`` (counts that are not photon
    counts, with their variances summed in ``sums``) as Stingray does for a
    Lightcurve of ``err_dist="gauss"`` (Leahy from the mean variance), and the
    white-noise level from the variances (see :func:`_noise_level`).
    ``noise``: the level will be subtracted (``ValueError`` when it is
    unknown)."""
    from stingray.fourier import normalize_periodograms, poisson_level, positive_fft_bins
    from stingray.utils import fftfreq

    if sums.n_segments == 0 or sums.power is None:
        raise ValueError(f"{attrs.get('source') or 'input'}: no {segment:g} s segment inside the GTIs holds events; "
                         "check the GTIs, the selection, or use a shorter segment=")
    m = sums.n_segments
    n_ph = sums.n_photons / m
    mean = n_ph / n_bin
    bkg = float(background_rate or 0.0)
    if bkg >= mean / dt:
        raise ValueError(
            f"{attrs.get('source') or 'input'}: background_rate={bkg:g} count/s (--background-rate) is not below "
            f"the mean rate {mean / dt:.6g} count/s of the {m} segment(s): the source rate (mean rate - "
            f"background rate) would be {mean / dt - bkg:.6g} count/s. Give the background rate in the source "
            "region (0 <= background_rate < mean rate)")
    gauss = attrs.get("err_dist") == "gauss"
    variance = sums.variance / m if gauss and sums.variance else None
    factor = normalize_periodograms(1, dt, n_bin, mean, n_ph=n_ph, norm=norm, variance=variance,
                                    background_flux=bkg * dt)
    power = (sums.power / m) * factor
    freq = fftfreq(n_bin, dt)[positive_fft_bins(n_bin)]
    if freq.size == 0:
        raise ValueError(f"{attrs.get('source') or 'input'}: a {segment:g} s segment holds only {n_bin} bin(s) of "
                         f"{dt:g} s, which leaves no frequency between 1/segment and the Nyquist frequency; use "
                         f"a longer segment (e.g. segment={64 * dt:g}, --segment {64 * dt:g}) or a smaller dt")
    df = 1.0 / (dt * n_bin)
    mean_rate = mean / dt
    level = poisson_level(norm, meanrate=mean_rate, n_ph=n_ph, backrate=bkg)
    if gauss:
        level = _noise_level(sums, factor, level, norm, attrs, noise)
    keep = {k: attrs[k] for k in _OBS_ATTRS if k in attrs and attrs[k] is not None}
    ds = xr.Dataset(
        {"power": ("freq", power, {"units": _UNITS[norm], "norm": norm}),
         "power_err": ("freq", power / np.sqrt(m), {"units": _UNITS[norm]}),
         "m": ("freq", np.full(freq.size, m, np.int64), {"long_name": "number of powers averaged"}),
         "df": ("freq", np.full(freq.size, df), {"units": "Hz"})},
        coords={"freq": ("freq", freq, {"units": "Hz"}), "freq_lo": ("freq", freq - df / 2, {"units": "Hz"}),
                "freq_hi": ("freq", freq + df / 2, {"units": "Hz"})},
        attrs={**keep, "kind": "power_spectrum", "norm": norm, "segment": float(segment), "dt": float(dt),
               "n_bin": int(n_bin), "n_segments": int(m), "mean_rate": float(mean_rate),
               "n_photons": float(n_ph), "poisson_level": float(level), "background_rate": bkg,
               "err_dist": str(attrs.get("err_dist", "poisson")),
               "noise_subtracted": False, "rebin": 0, "xcube_version": __version__},
    )
    return ds


def _noise_level(sums, factor, poisson, norm, attrs, noise) -> float:
    """White-noise level of a light curve whose counts are not photon counts
    (``attrs['not_photon_counts']`` says why): the unnormalised noise power of
    a segment, ``n_bin <sigma^2>`` (the mean variance of the counts of the
    segments' bins, from the rate errors), times the normalisation ``factor``
    - for ``frac`` ``2 <sigma_rate^2> dt / (R - B)^2``, for ``abs`` ``2
    <sigma_rate^2> dt``, for Leahy (normalised by Stingray's variance)
    about 2. A warning names the input; without usable errors the level is
    NaN (warned), or ``ValueError`` when it is to be subtracted (``noise``)."""
    src = attrs.get("source") or attrs.get("obs_id") or "input"
    why = attrs.get("not_photon_counts") or "counts that are not Poisson photon counts"
    if not sums.var_sum:
        msg = (f"{src}: its counts are not Poisson photon counts ({why}), and it has no rate errors (rate_err, "
               "finite wherever there is exposure) to give their white-noise level")
        if noise:
            raise ValueError(f"{msg}: cannot subtract the noise level (subtract_noise, --subtract-noise); give the "
                             "light curve its errors, or transform the total (uncorrected) light curve of the "
                             "counted photons")
        warnings.warn(f"{msg}; poisson_level is NaN (the Poisson level {poisson:.4g} of photon counts would be "
                      "wrong)", stacklevel=5)
        return float("nan")
    level = float(factor * sums.var_sum / sums.n_segments)
    how = ("the Leahy powers are normalised by the mean variance of the counts and" if norm == "leahy" else
           f"instead of the Poisson level {poisson:.4g} of photon counts,")
    warnings.warn(f"{src}: its counts are not Poisson photon counts ({why}); {how} the white-noise level "
                  f"{level:.4g} comes from the rate errors (Stingray's err_dist='gauss', attrs['err_dist'])",
                  stacklevel=5)
    return level


def rebin_power_spectrum(pds: xr.Dataset, rebin) -> xr.Dataset:
    """Rebin a power spectrum Dataset in frequency (eager, small).

    ``rebin < 0``: logarithmic, each bin ``1 + |rebin|`` times wider than the
    previous one (Stingray's ``rebin_data_log``, HEASoft ``powspec`` style);
    ``rebin`` a positive whole number: that many frequencies per bin
    (incomplete last bin dropped). Powers are averaged, errors combined as
    ``sqrt(sum err^2) / n``, ``m`` and ``df`` summed; ``freq`` is the mean
    frequency of a bin and ``freq_lo``/``freq_hi`` the edges of the
    frequencies it holds. A spectrum rebinned before (bins of unequal ``m``)
    is averaged with the weights ``m``: power and frequency ``sum(m x) /
    sum(m)``, error ``sqrt(sum (m err)^2) / sum(m)``, as rebinning its raw
    powers gives. A stack (dim ``obs``) is rebinned spectrum by spectrum;
    variables and coordinates without ``freq`` are kept.
    """
    from stingray.utils import rebin_data_log

    step = _check(pds.attrs.get("norm", "leahy"), 1.0, rebin)
    if step is None:
        return pds
    if "obs" in pds.dims:
        parts = [rebin_power_spectrum(pds.isel(obs=i), step) for i in range(pds.sizes["obs"])]
        out = xr.concat(parts, dim="obs", coords="different", compat="equals", join="override")
        return out.assign_attrs(dict(pds.attrs, rebin=step))
    f = np.asarray(pds["freq"].values, np.float64)
    p, e = np.asarray(pds["power"].values, np.float64), np.asarray(pds["power_err"].values, np.float64)
    m_in = np.asarray(pds["m"].values)
    if isinstance(step, int):
        nb = f.size // step
        if nb == 0:
            raise ValueError(f"rebin={step}: the spectrum has only {f.size} frequencies")
        n = np.full(nb, step)
    else:
        fb, pb, eb, n = rebin_data_log(f, p, -step, y_err=e, dx=float(np.asarray(pds["df"].values)[0]))
        fb, pb, eb = fb[: n.size], pb[: n.size], eb[: n.size]
        full = np.asarray(n) > 0  # a log bin finer than the input's bins there holds none of them: no bin
        fb, pb, eb, n = fb[full], pb[full], eb[full], np.asarray(n)[full]
    stop = np.cumsum(n)
    start = stop - n
    if isinstance(step, int) and np.all(m_in == m_in[0]):
        fb, pb = (a[: stop[-1]].reshape(-1, step).mean(axis=1) for a in (f, p))
        eb = np.sqrt((e[: stop[-1]].reshape(-1, step) ** 2).sum(axis=1)) / step
    elif not np.all(m_in == m_in[0]):  # bins of unequal weight: a spectrum rebinned before
        w = m_in[: stop[-1]].astype(np.float64)
        total = np.add.reduceat(w, start)
        fb, pb = (np.add.reduceat(w * a[: stop[-1]], start) / total for a in (f, p))
        eb = np.sqrt(np.add.reduceat((w * e[: stop[-1]]) ** 2, start)) / total
    lo = np.asarray(pds["freq_lo"].values)[start]
    hi = np.asarray(pds["freq_hi"].values)[stop - 1]
    m = np.add.reduceat(m_in[: stop[-1]], start)
    out = xr.Dataset(
        {"power": ("freq", pb, pds["power"].attrs), "power_err": ("freq", eb, pds["power_err"].attrs),
         "m": ("freq", m, pds["m"].attrs), "df": ("freq", hi - lo, {"units": "Hz"})},
        coords={"freq": ("freq", fb, {"units": "Hz"}), "freq_lo": ("freq", lo, {"units": "Hz"}),
                "freq_hi": ("freq", hi, {"units": "Hz"})},
        attrs=dict(pds.attrs, rebin=step),
    )
    keep = {k: pds[k] for k in pds.variables if "freq" not in pds[k].dims and k not in out.variables}
    return out.assign_coords({k: v for k, v in keep.items() if k in pds.coords}).assign(
        {k: v for k, v in keep.items() if k not in pds.coords})


def subtract_poisson_noise(pds: xr.Dataset) -> xr.Dataset:
    """The power spectrum minus its Poisson (white-noise) level, without dead
    time (``attrs['poisson_level']``: 2 for Leahy, ``2 / mean_rate`` for frac,
    ``2 mean_rate`` for abs; with a background rate B the frac level is
    ``2 (S + B) / S^2``; for a light curve of counts that are not photon
    counts, ``attrs['err_dist']`` ``"gauss"``, the level from its rate
    errors), in the units of the spectrum's normalisation.
    Errors are unchanged. Same dims (``freq``, or ``(obs, freq)``) as
    ``pds``; lazy when its ``power`` is. ``ValueError`` when the level is
    unknown (NaN)."""
    if pds.attrs.get("noise_subtracted"):
        return pds
    if "poisson_level" not in pds.variables and not np.isfinite(pds.attrs.get("poisson_level", np.nan)):
        raise ValueError(f"{_source(pds) or 'power spectrum'}: its white-noise level (attrs['poisson_level']) is "
                         "unknown (NaN), so it cannot be subtracted")
    out = pds.copy()
    out["power"] = (pds["power"] - pds.attrs["poisson_level"]).assign_attrs(pds["power"].attrs)
    out.attrs["noise_subtracted"] = True
    return out


def average_power_spectra(spectra: xr.Dataset, dim: str = "obs") -> xr.Dataset:
    """Average power spectra along ``dim``, weighting each by its number of
    averaged powers ``m``; ``power_err = power / sqrt(sum m)`` (eager, small).
    The spectra must share one frequency grid and normalisation. Per-input
    variables on ``dim`` (``n_segments``, ``mean_rate``, ``poisson_level``)
    become attrs: the total number of segments and segment-weighted means."""
    m = spectra["m"]
    total = m.sum(dim)
    power = (spectra["power"] * m).sum(dim) / total
    out = xr.Dataset({"power": power.assign_attrs(spectra["power"].attrs),
                      "power_err": (power / np.sqrt(total)).assign_attrs(spectra["power_err"].attrs),
                      "m": total.assign_attrs(spectra["m"].attrs), "df": spectra["df"].isel({dim: 0}, drop=True)},
                     attrs=dict(spectra.attrs, n_averaged=int(spectra.sizes[dim])))
    if "n_segments" in spectra:
        nseg = np.asarray(spectra["n_segments"].values)
        out.attrs["n_segments"] = int(nseg.sum())
        for k in ("mean_rate", "poisson_level"):
            if k in spectra:
                out.attrs[k] = float(np.average(spectra[k].values, weights=nseg))
    return out


def _items(data):
    """``[(label, item)]`` of a list, tuple or DataTree of inputs."""
    if isinstance(data, xr.DataTree):
        out = []
        for node in data.subtree:
            ds = node.to_dataset()
            if ds.data_vars:
                out.append((node.path, ds))
            elif "path" in node.attrs:
                out.append((node.path, str(node.attrs["path"])))
        if not out:
            raise ValueError("power_spectrum: the DataTree has no node with an event list, light curve or file path")
        return out
    return [(_obs_label(item.attrs) or str(i) if isinstance(item, xr.Dataset) else None, item)
            for i, item in enumerate(data)]  # a file's label waits for its header (see _stack)


def _obs_label(attrs) -> str:
    """``obs_id/instrument`` (what there is of them; "" without either)."""
    return "/".join(str(attrs[k]) for k in ("obs_id", "instrument") if attrs.get(k))


def open_timing_input(path) -> xr.Dataset:
    """An event file (lazy EventList) or an OGIP light curve (eager) from
    ``path``, told apart by the FITS header (a table with HDUCLAS1 =
    'LIGHTCURVE' or EXTNAME 'RATE' is a light curve; a Zarr store or a
    corrupt file goes to ``open_events``, which names the damage)."""
    from ..io import open_events
    from ..io.lightcurve_file import read_lightcurve
    from ..io.product_info import product_kind

    return read_lightcurve(path) if product_kind(path) == "lightcurve" else open_events(path)


def _one(item, segment, dt, norm, rebin, selection, background_rate, noise, scheduler=None) -> xr.Dataset:
    """The finished (normalised, optionally noise-subtracted and rebinned) spectrum of one input."""
    import dask

    if not isinstance(item, xr.Dataset):
        item = open_timing_input(item)
    sums, seg, n_bin, width, attrs = _input_sums(item, segment, dt, selection)
    (sums,) = dask.compute(sums, scheduler=scheduler)
    return _finish_one(sums, seg, n_bin, width, attrs, norm, rebin, background_rate, noise)


def power_spectrum(data, segment: float = 256.0, dt: float | None = None, norm: str = "leahy", rebin=None, *,
                   energy_band=None, region=None, expr: str | None = None, screening: bool = True,
                   background_rate: float | None = None, subtract_noise: bool = False, average: bool = False,
                   compute: bool = True):
    """Averaged power spectrum of an event list or light curve, or of many.

    Parameters
    ----------
    data : an EventList (``xcube.open_events``), a light-curve Dataset
        (``xcube.lightcurve``, ``xcube.read_lightcurve``), a file path (event
        file or OGIP light curve), or a list / ``xr.DataTree`` of these (an
        archive from ``xcube.open_archive``).
    segment : segment length [s]; fixed to a whole number of ``dt`` bins as
        Stingray does. Only segments fully inside the GTIs are used.
    dt : bin width [s] (sets the Nyquist frequency ``1 / (2 dt)``). Needed for
        event lists; for a light curve, None means its bin width, and a whole
        multiple of it rebins the light curve first.
    norm : ``"leahy"`` (Poisson noise level 2), ``"frac"`` (fractional rms^2
        per Hz, "rms" normalisation), ``"abs"`` ((count/s)^2 per Hz) or
        ``"none"``, exactly as Stingray's ``AveragedPowerspectrum``. A light
        curve whose counts are not Poisson photon counts (not whole numbers
        >= 0: rebuilt as RATE x exposure from an exposure-corrected or net
        RATE without COUNTS, as SAS ``epiclccorr`` writes; or net counts
        rebuilt from a NET file's RATE) is transformed as Stingray's
        ``err_dist="gauss"`` light curves: Leahy normalised by the mean
        variance of the counts, and the white-noise level taken from its
        ``rate_err`` (``2 <sigma_rate^2> dt / (R - B)^2`` for ``frac``), with
        a warning naming the input; ``attrs['err_dist']`` is then
        ``"gauss"``. Without finite errors the level is NaN (warned).
    rebin : None or 0 (none), a negative factor for logarithmic rebinning
        (``-0.06``: each bin 6 % wider than the previous) or a positive whole
        number of frequencies per bin; see :func:`rebin_power_spectrum`.
    energy_band, region, expr : event selection (:func:`xcube.select`) before
        the power spectrum; event lists only. Events already cut with
        ``select(energy_band=...)`` narrow ``energy_band`` to that cut, with
        a warning, and label it (``attrs["energy_band"]``; a band outside the
        cut raises ``ValueError``; see :func:`xcube.select.applied_band`). With a region on an event file
        with per-CCD GTIs (XMM EPIC), the segments lie inside the good time
        of the CCD(s) holding the region's events (as
        :func:`xcube.lightcurve`); without a region, inside the events' GTIs
        (for EPIC the union over CCDs).
    screening : event lists: apply the mission's standard event screening
        (``xcube.missions.screening_of``, e.g. XMM MOS ``PATTERN <= 12 && FLAG == 0``)
        with ``expr``, as ``xcube lc`` and ``xcube pds`` do by default; False
        keeps every event. Light curves are already screened products.
    background_rate : background rate in the source region [count/s], a
        finite number ``0 <= B < mean_rate`` (``ValueError`` otherwise, naming
        the input); the ``frac`` normalisation and its noise level then refer
        to the source rate ``mean_rate - background_rate`` (Stingray's
        ``background_flux``). The other normalisations do not use it.
    subtract_noise : subtract the dead-time-free Poisson level
        (``attrs['poisson_level']``, from the errors for counts that are not
        photon counts) from the powers; ``ValueError`` naming the input when
        that level is unknown.
    average : with many inputs, return one spectrum averaged over them
        (weighted by ``m``, before rebinning) instead of a stack on ``obs``.
    compute : False returns a ``dask.delayed`` object that yields the result.

    Returns
    -------
    ``xr.Dataset`` on ``freq`` (mean frequency of a bin [Hz]) with coords
    ``freq_lo``/``freq_hi`` [Hz]; variables ``power``, ``power_err``
    (``power / sqrt(m)``, as Stingray), ``m`` (powers averaged per bin) and
    ``df`` [Hz]; attrs ``norm``, ``segment``, ``dt``, ``n_bin``,
    ``n_segments``, ``mean_rate`` [count/s], ``n_photons`` (mean per
    segment), ``poisson_level``, ``err_dist`` (``"poisson"``, or
    ``"gauss"``: level from the errors), ``background_rate``,
    ``noise_subtracted``, ``rebin`` and the observation's attrs. Many
    inputs give dims ``(obs, freq)`` with ``n_segments``, ``mean_rate`` and
    ``poisson_level`` as variables on ``obs`` and
    ``obs_id``/``instrument``/``mission``/``source`` as coords on ``obs``.

    Laziness: an event list streams through Dask one chunk at a time (one
    task per chunk, memory of one chunk); many inputs run as one task each on
    the current Dask scheduler (threads, or a ``dask.distributed`` client if
    one is active). The result is small and eager unless ``compute=False``.
    Eager beforehand: the GTIs and segment boundaries; ``energy_band`` /
    ``region`` / ``expr`` / the screening make :func:`xcube.select`'s sizing pass.
    """
    import dask

    step = _check(norm, segment, rebin)
    background_rate = _check_background_rate(background_rate, data)
    selection = {"energy_band": energy_band, "region": region, "expr": expr, "screening": screening}
    args = (segment, dt, norm, None if average else step, selection, background_rate, subtract_noise)
    if isinstance(data, (xr.Dataset, str)) or hasattr(data, "__fspath__"):
        item = data if isinstance(data, xr.Dataset) else open_timing_input(data)
        sums, seg, n_bin, width, attrs = _input_sums(item, segment, dt, selection)
        out = dask.delayed(_finish_one)(sums, seg, n_bin, width, attrs, norm, step, background_rate, subtract_noise)
        return out.compute() if compute else out
    items = _items(data)
    labels = [(lab, str(item)) for lab, item in items]  # (label or None for a file, the file)
    # partial: Dask must not compute a lazy EventList before the task (it streams inside it)
    parts = [dask.delayed(partial(_one, item, *args, scheduler="sync"), pure=False)() for _, item in items]
    out = dask.delayed(_stack)(parts, labels, average, step)
    return out.compute() if compute else out


def _finish_one(sums, segment, n_bin, dt, attrs, norm, step, background_rate, noise) -> xr.Dataset:
    ds = _dataset(sums, segment, n_bin, dt, norm, background_rate, attrs, noise)
    if noise:
        ds = subtract_poisson_noise(ds)
    return rebin_power_spectrum(ds, step)


def _unique(labels):
    seen, out = {}, []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab}#{seen[lab]}")
    return out


def _stack(parts, labels, average, step) -> xr.Dataset:
    """Stack per-input spectra on ``obs`` (or average them, then rebin);
    ``labels``: ``(label, file)`` per input, label None for a file (then its
    ``obs_id/instrument``, else the file)."""
    labels = _unique([lab if lab is not None else _obs_label(p.attrs) or f for (lab, f), p in zip(labels, parts)])
    first = parts[0]
    for lab, p in zip(labels, parts):
        if p.sizes["freq"] != first.sizes["freq"] or not np.allclose(p["freq"].values, first["freq"].values):
            raise ValueError(f"power_spectrum: {lab} has a different frequency grid (segment or dt differ)")
    per_obs = {k: [p.attrs[k] for p in parts] for k in ("n_segments", "mean_rate", "poisson_level")}
    stacked = xr.concat([p.drop_attrs(deep=False) for p in parts], dim="obs", coords="minimal", compat="override",
                        join="override")
    stacked = stacked.assign_coords(obs=("obs", labels))
    for k in ("obs_id", "instrument", "mission", "source"):
        if any(k in p.attrs for p in parts):
            stacked = stacked.assign_coords({k: ("obs", [str(p.attrs.get(k, "")) for p in parts])})
    for k, v in per_obs.items():
        stacked[k] = ("obs", np.asarray(v))
    common = {k: v for k, v in first.attrs.items() if all(p.attrs.get(k) == v for p in parts[1:])
              and k not in per_obs}
    reference = ("mjdref", "mjdrefi", "mjdreff", "timesys", "timeref")
    if any(any(p.attrs.get(k) != first.attrs.get(k) for p in parts[1:]) for k in reference):
        for k in reference:  # inputs of different time references: the average has none
            common.pop(k, None)
    for k in ("tstart", "tstop"):  # seconds of one time reference only
        common.pop(k, None)
    if "mjdref" in common and all("tstart" in p.attrs and "tstop" in p.attrs for p in parts):
        common.update(tstart=min(p.attrs["tstart"] for p in parts), tstop=max(p.attrs["tstop"] for p in parts))
    from .stitch import shared_names

    # the inputs' mission and instrument, joined with '+' where they differ (INSTRUME 'EPN+EMOS1+EMOS2')
    stacked.attrs = dict(common, kind="power_spectrum", n_inputs=len(parts), **shared_names(parts))
    if not average:
        return stacked
    return rebin_power_spectrum(average_power_spectra(stacked), step)
