"""Light curves: source counts, exposure-corrected rates, and the
background-subtracted net rate from a background region scaled by area."""
from __future__ import annotations

import logging

import numpy as np
import xarray as xr

from .._version import __version__
from .errors import count_error

__all__ = ["lightcurve", "lightcurve_from_counts"]

log = logging.getLogger("xcube.products")


def _per_exposure(values: xr.DataArray, exposure: xr.DataArray) -> xr.DataArray:
    """``values / exposure`` with NaN where the exposure is 0 (lazy)."""
    return values / exposure.where(exposure > 0)


def lightcurve_from_counts(
    counts: xr.DataArray,
    *,
    errors: str = "poisson",
    bkg_counts: xr.DataArray | None = None,
    area_ratio: float | None = None,
    gti=None,
    attrs: dict | None = None,
) -> xr.Dataset:
    """Assemble a light-curve Dataset from binned counts.

    Parameters
    ----------
    counts : DataArray on dim ``time`` with coords ``time_lo``, ``time_hi``,
        ``exposure`` [s] and ``fracexp`` (as :func:`xcube.bin_events` makes it).
    errors : ``"poisson"`` (sqrt N) or ``"gehrels"`` (upper limit 1 + sqrt(N + 0.75)).
    bkg_counts : background-region counts on the same time bins.
    area_ratio : source area / background area (BACKSCAL ratio); the
        background rate is scaled by it to the source region.
    gti : ``(start, stop)`` stored as ``gti_start``/``gti_stop``.

    Returns a Dataset with ``counts``, ``rate``, ``rate_err`` [count/s] (and
    ``bkg_counts`` [count, raw], ``bkg_rate``, ``bkg_rate_err`` [count/s, scaled to
    the source area], ``net_rate``, ``net_rate_err``). Rates are NaN where the
    exposure is 0. Lazy: nothing is computed here.
    """
    exposure = counts["exposure"]
    err = count_error(counts, errors)
    ds = xr.Dataset(
        {
            "counts": counts.assign_attrs(units="count"),
            "rate": _per_exposure(counts, exposure).assign_attrs(units="count/s"),
            "rate_err": _per_exposure(err, exposure).assign_attrs(units="count/s", errors=errors),
        }
    )
    if bkg_counts is not None:
        if area_ratio is None or not np.isfinite(area_ratio) or area_ratio <= 0:
            raise ValueError(f"lightcurve: background area ratio {area_ratio!r} must be a positive number")
        bkg_counts = bkg_counts.drop_vars([c for c in bkg_counts.coords if c not in ("time",)])
        bkg_counts = bkg_counts.assign_coords({c: counts[c] for c in counts.coords if c != "time"})
        bkg_rate = area_ratio * _per_exposure(bkg_counts, exposure)
        bkg_err = area_ratio * _per_exposure(count_error(bkg_counts, errors), exposure)
        ds["bkg_counts"] = bkg_counts.assign_attrs(units="count")
        ds["bkg_rate"] = bkg_rate.assign_attrs(units="count/s", scaled_to="source area")
        ds["bkg_rate_err"] = bkg_err.assign_attrs(units="count/s", errors=errors)
        ds["net_rate"] = (ds["rate"] - bkg_rate).assign_attrs(units="count/s")
        ds["net_rate_err"] = np.sqrt(ds["rate_err"] ** 2 + bkg_err**2).assign_attrs(units="count/s", errors=errors)
    if gti is not None:
        ds["gti_start"] = ("gti", np.asarray(gti[0], np.float64), {"units": "s"})
        ds["gti_stop"] = ("gti", np.asarray(gti[1], np.float64), {"units": "s"})
    ds.attrs.update(attrs or {})
    ds.attrs.setdefault("kind", "lightcurve")
    ds.attrs.setdefault("xcube_version", __version__)
    if bkg_counts is not None:
        ds.attrs["backscal_ratio"] = float(area_ratio)
    return ds
