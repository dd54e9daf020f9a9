"""Conversion between xcube objects and Stingray objects, both ways:

==========================================  ==========================================
xcube                                        Stingray
==========================================  ==========================================
EventList (dim ``event``)                   ``stingray.EventList``
light curve (dim ``time``, ``counts``)      ``stingray.Lightcurve``
power spectrum (dim ``freq``)               ``stingray.AveragedPowerspectrum``
==========================================  ==========================================

Stingray is imported only when these are called. Conversions to Stingray
compute the (lazy) xcube object; conversions from Stingray are eager.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from .. import gti as gtimod
from .lightcurve import common_bin_width

__all__ = ["to_stingray", "from_stingray"]


def _mjdref(attrs) -> float:
    m = float(attrs.get("mjdref", 0.0) or 0.0)
    return m if np.isfinite(m) else 0.0


def to_stingray(obj: xr.Dataset, *, variable: str = "counts"):
    """A Stingray object from an xcube EventList, light curve or power spectrum.

    - EventList -> ``stingray.EventList`` with ``time`` [s, mission time],
      ``energy`` [keV] (when the mission profile gives energies), ``pi``,
      ``gti``, ``mjdref``, ``mission``, ``instr``, ``timesys``, ``timeref``.
    - light curve -> ``stingray.Lightcurve`` of ``variable`` (``"counts"``
      or another per-bin count variable such as ``bkg_counts``); the bins must
      be equal in width (Stingray's ``dt``); Poisson errors; one band only.
    - power spectrum -> ``stingray.AveragedPowerspectrum`` (``freq``,
      ``power``, ``power_err``, ``m``, ``df``, ``norm``, ``dt``, ``n``).

    Computes the object (eager).
    """
    if not isinstance(obj, xr.Dataset):
        raise TypeError(f"to_stingray needs an xcube Dataset (event list, light curve or power spectrum), "
                        f"got {type(obj).__name__}")
    if "event" in obj.dims:
        return _events_to_stingray(obj)
    if "freq" in obj.dims and "power" in obj:
        return _pds_to_stingray(obj)
    if "time" in obj.dims:
        return _lc_to_stingray(obj, variable)
    raise ValueError(f"to_stingray: a Dataset with dims {dict(obj.sizes)} is neither an event list (dim 'event'), "
                     "a light curve (dim 'time') nor a power spectrum (dim 'freq')")


def _events_to_stingray(ev: xr.Dataset):
    from stingray import EventList

    from ..scheduler import compute

    names = [k for k in ("time", "energy", "pi") if k in ev]
    cols = dict(zip(names, compute(*(ev[k].data for k in names))))  # one pass: the columns read together
    energy = cols.get("energy")
    if energy is not None and not np.isfinite(energy).any():
        energy = None  # missions without a linear PI -> energy relation (RXTE PCA)
    gti = np.column_stack(gtimod.from_dataset(ev)) if "gti_start" in ev else None
    return EventList(
        time=np.asarray(cols["time"], np.float64), energy=None if energy is None else np.asarray(energy, np.float64),
        pi=cols.get("pi"), gti=gti, mjdref=_mjdref(ev.attrs), mission=ev.attrs.get("mission"),
        instr=ev.attrs.get("instrument"), timesys=ev.attrs.get("timesys"), timeref=ev.attrs.get("timeref"),
        skip_checks=True,
    )


def _lc_to_stingray(lc: xr.Dataset, variable: str):
    from stingray import Lightcurve

    if "band" in lc.dims:
        raise ValueError(f"to_stingray: the light curve has {lc.sizes['band']} bands; pick one with "
                         f"lc.sel(band=...) (bands: {list(lc['band'].values)})")
    if variable not in lc:
        raise KeyError(f"to_stingray: the light curve has no {variable!r} variable (has {list(lc.data_vars)})")
    lc = lc.compute()
    width = common_bin_width(lc, "to_stingray: Stingray needs equal bins; this light curve has bins of different "
                                 "widths")
    if "gti_start" in lc:
        gti = np.column_stack(gtimod.from_dataset(lc))
    else:
        exp = np.asarray(lc["exposure"].values) > 0
        gti = np.column_stack(gtimod.normalize(lc["time_lo"].values[exp], lc["time_hi"].values[exp], warn=False))
    return Lightcurve(
        np.asarray(lc["time"].values, np.float64), np.asarray(lc[variable].values), dt=width, gti=gti,
        mjdref=_mjdref(lc.attrs), err_dist="poisson", mission=lc.attrs.get("mission"),
        instr=lc.attrs.get("instrument"), skip_checks=True,
    )


def _pds_to_stingray(pds: xr.Dataset):
    from stingray import AveragedPowerspectrum

    s = AveragedPowerspectrum()
    s.freq = np.asarray(pds["freq"].values, np.float64)
    s.power = np.asarray(pds["power"].values, np.float64)
    s.power_err = np.asarray(pds["power_err"].values, np.float64)
    m = np.asarray(pds["m"].values)
    s.m = int(m[0]) if np.all(m == m[0]) else m
    df = np.asarray(pds["df"].values, np.float64)
    s.df = float(df[0]) if np.allclose(df, df[0]) else df
    s.norm = pds.attrs.get("norm", "leahy")
    s.dt = float(pds.attrs.get("dt", np.nan))
    s.n = int(pds.attrs.get("n_bin", 0))
    s.segment_size = float(pds.attrs.get("segment", np.nan))
    s.nphots = float(pds.attrs.get("n_photons", np.nan))
    s.mean = float(pds.attrs.get("mean_rate", np.nan)) * s.dt
    s.err_dist = "poisson"
    s.power_type = "all"
    return s


def from_stingray(obj) -> xr.Dataset:
    """An xcube Dataset from a Stingray ``EventList`` (dim ``event``, plus
    ``gti``; ``time`` [s], ``energy`` [keV]), ``Lightcurve`` (dim ``time``,
    bin centres and ``time_lo``/``time_hi`` [s]) or
    (``Averaged``)``Powerspectrum`` (dim ``freq`` [Hz]); eager (numpy-backed).
    See :func:`to_stingray` for what maps to what."""
    from stingray import EventList, Lightcurve
    from stingray.powerspectrum import Powerspectrum

    if isinstance(obj, EventList):
        return _events_from_stingray(obj)
    if isinstance(obj, Lightcurve):
        return _lc_from_stingray(obj)
    if isinstance(obj, Powerspectrum):
        return _pds_from_stingray(obj)
    raise TypeError(f"from_stingray: unsupported {type(obj).__name__}; use a stingray EventList, Lightcurve or "
                    "Powerspectrum")


def _events_from_stingray(sev) -> xr.Dataset:
    time = np.asarray(sev.time, np.float64)
    data = {"time": ("event", time, {"units": "s"})}
    if getattr(sev, "energy", None) is not None:
        data["energy"] = ("event", np.asarray(sev.energy, np.float32), {"units": "keV"})
    if getattr(sev, "pi", None) is not None:
        data["pi"] = ("event", np.asarray(sev.pi))
    gti = np.asarray(sev.gti) if sev.gti is not None else np.array([[time.min(), time.max()]]) if time.size else \
        np.zeros((0, 2))
    data["gti_start"] = ("gti", gti[:, 0].astype(np.float64), {"units": "s"})
    data["gti_stop"] = ("gti", gti[:, 1].astype(np.float64), {"units": "s"})
    attrs = {"mjdref": float(getattr(sev, "mjdref", 0.0) or 0.0), "source": "stingray.EventList"}
    for key, attr in (("mission", "mission"), ("instrument", "instr"), ("timesys", "timesys"),
                      ("timeref", "timeref")):
        if getattr(sev, attr, None):
            attrs[key] = str(getattr(sev, attr))
    return xr.Dataset(data, attrs=attrs)


def _lc_from_stingray(slc) -> xr.Dataset:
    from .lightcurve import lightcurve_from_counts

    time = np.asarray(slc.time, np.float64)
    dt = np.broadcast_to(np.asarray(slc.dt, np.float64), time.shape)
    lo, hi = time - dt / 2, time + dt / 2
    gti = (np.asarray(slc.gti)[:, 0], np.asarray(slc.gti)[:, 1]) if slc.gti is not None else (lo, hi)
    gti = gtimod.normalize(*gti, warn=False)
    exposure = gtimod.exposure_per_bin(lo, hi, gti)
    counts = np.asarray(slc.counts)
    if np.all(np.abs(counts - np.round(counts)) < 1e-9):
        counts = np.round(counts).astype(np.int64)
    da = xr.DataArray(
        counts, dims="time",
        coords={"time": ("time", time, {"units": "s"}), "time_lo": ("time", lo, {"units": "s"}),
                "time_hi": ("time", hi, {"units": "s"}), "exposure": ("time", exposure, {"units": "s"}),
                "fracexp": ("time", np.where(dt > 0, exposure / dt, 0.0))},
        name="counts",
    )
    attrs = {"mjdref": float(getattr(slc, "mjdref", 0.0) or 0.0), "time_bin": float(np.median(dt)),
             "source": "stingray.Lightcurve"}
    for key, attr in (("mission", "mission"), ("instrument", "instr")):
        if getattr(slc, attr, None):
            attrs[key] = str(getattr(slc, attr))
    return lightcurve_from_counts(da, gti=gti, attrs=attrs)


def _segments(m, k, df, segment) -> int:
    """Segments averaged in a Stingray spectrum of ``m`` powers per bin:
    ``m`` over the frequencies merged into each bin, which is ``df x
    segment`` (bin width [Hz] over the unbinned 1/segment) when the segment
    [s] is known (a linear ``rebin`` widens ``df`` and multiplies ``m``
    but leaves ``k`` at 1), else ``k`` (``rebin_log``)."""
    if not m.size:
        return 0
    merged = df * float(segment) if segment is not None and np.isfinite(float(segment)) else k
    return int(np.rint(np.min(m / np.maximum(np.rint(merged), 1.0))))


def _pds_from_stingray(sp) -> xr.Dataset:
    freq = np.asarray(sp.freq, np.float64)
    # a rebinned Stingray spectrum keeps the original scalar df and stores the number of
    # frequencies merged into each bin in .k (rebin_log, rebin): the bin is k * df wide, centred on its
    # mean frequency (the mean of k equally spaced frequencies), and m counts the k merged powers too
    k = np.broadcast_to(np.asarray(getattr(sp, "k", 1) if getattr(sp, "k", None) is not None else 1, np.float64),
                        freq.shape)
    df = np.broadcast_to(np.asarray(sp.df, np.float64), freq.shape) * k
    m = np.broadcast_to(np.asarray(getattr(sp, "m", 1)), freq.shape).astype(np.int64)
    power = np.asarray(sp.power).real.astype(np.float64)
    err = getattr(sp, "power_err", None)
    err = power / np.sqrt(m) if err is None else np.asarray(err).real.astype(np.float64)
    dt = float(getattr(sp, "dt", np.nan) or np.nan)
    attrs = {"kind": "power_spectrum", "norm": str(getattr(sp, "norm", "none")), "dt": dt,
             "segment": float(getattr(sp, "segment_size", np.nan) or np.nan), "n_bin": int(getattr(sp, "n", 0) or 0),
             "n_segments": _segments(m, k, df, getattr(sp, "segment_size", None)),
             "source": f"stingray.{type(sp).__name__}"}
    nph = getattr(sp, "nphots", None)
    if nph is not None:
        attrs["n_photons"] = float(nph)
    mean = getattr(sp, "mean", None)
    if mean is not None and np.isfinite(dt):
        attrs["mean_rate"] = float(mean) / dt
    return xr.Dataset(
        {"power": ("freq", power), "power_err": ("freq", err), "m": ("freq", m), "df": ("freq", df, {"units": "Hz"})},
        coords={"freq": ("freq", freq, {"units": "Hz"}), "freq_lo": ("freq", freq - df / 2, {"units": "Hz"}),
                "freq_hi": ("freq", freq + df / 2, {"units": "Hz"})},
        attrs=attrs,
    )
