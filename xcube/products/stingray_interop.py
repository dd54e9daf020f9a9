"""Conversion between xcube light curves and ``stingray.Lightcurve``, for
timing analysis (power spectra, cross spectra, ...) in Stingray. Stingray is
imported only when these are called (it is an optional dependency)."""
from __future__ import annotations

import numpy as np
import xarray as xr

from .. import gti as gtimod

__all__ = ["to_stingray", "from_stingray"]


def to_stingray(lc: xr.Dataset, *, variable: str = "counts"):
    """A ``stingray.Lightcurve`` from an xcube light curve (computes it).

    ``variable`` is ``"counts"`` (default) or another per-bin count variable
    (``bkg_counts``). The bins must be equal in width (Stingray's ``dt``). The
    GTIs are the light curve's ``gti_start``/``gti_stop`` (or the bins with
    exposure), ``mjdref`` comes from the attrs; errors are Poisson.
    """
    from stingray import Lightcurve

    lc = lc.compute()
    width = np.asarray(lc["time_hi"].values - lc["time_lo"].values, np.float64)
    if width.size == 0:
        raise ValueError("to_stingray: the light curve has no bins")
    if not np.allclose(width, width[0], rtol=1e-9, atol=0):
        raise ValueError("to_stingray: Stingray needs equal bins; this light curve has bins of different widths")
    if "gti_start" in lc:
        gti = np.column_stack(gtimod.from_dataset(lc))
    else:
        exp = np.asarray(lc["exposure"].values) > 0
        gti = np.column_stack(gtimod.normalize(lc["time_lo"].values[exp], lc["time_hi"].values[exp], warn=False))
    mjdref = float(lc.attrs.get("mjdref", 0.0))
    return Lightcurve(
        np.asarray(lc["time"].values, np.float64),
        np.asarray(lc[variable].values),
        dt=float(width[0]),
        gti=gti,
        mjdref=mjdref if np.isfinite(mjdref) else 0.0,
        err_dist="poisson",
        skip_checks=True,
    )


def from_stingray(slc) -> xr.Dataset:
    """An xcube light-curve Dataset from a ``stingray.Lightcurve``: bins
    centred on ``slc.time`` of width ``slc.dt``, exposure from its GTIs,
    ``counts`` and Poisson ``rate``/``rate_err``. Eager (numpy-backed)."""
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
    return lightcurve_from_counts(da, gti=gti, attrs=attrs)
