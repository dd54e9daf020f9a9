"""Rebinning light curves in time (exposure-weighted) and splitting them at
GTI gaps.

``lc.coarsen(time=5).sum()`` adds rates and ``.mean()`` ignores exposure;
:func:`rebin` is the operation to use instead: counts add, exposure adds,
rates become exposure-weighted means and their errors stay consistent with
them.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from .. import gti as gtimod
from .errors import ERROR_METHODS, count_error

__all__ = ["rebin", "split_by_gti"]

_RATES = ("rate", "bkg_rate", "net_rate")
_TIME_COORDS = ("time", "time_lo", "time_hi", "exposure", "fracexp")


def _name(lc) -> str:
    """The light curve's file (``source``), for messages."""
    return str(lc.attrs.get("source") or "the light curve")


def _factor(lc, factor, time_bin) -> int:
    if isinstance(lc, xr.DataTree):
        raise TypeError("rebin takes one light curve (a Dataset), not a DataTree: rebin each node's, e.g. "
                        "tree.map_over_datasets(lambda ds: rebin(ds, n)), or sum the cameras first "
                        "(xcube.lightcurve(tree, ..., cameras='sum'))")
    if (factor is None) == (time_bin is None):
        raise ValueError("rebin: give exactly one of factor= (bins per new bin) or time_bin= (new width [s])")
    n_bins = int(lc.sizes.get("time", 0))
    if n_bins == 0:
        raise ValueError(f"rebin: {_name(lc)} has no time bins")
    width = float(lc["time_hi"].values[0] - lc["time_lo"].values[0])
    if time_bin is not None:
        f = float(time_bin) / width
        if not (f >= 1 and np.isclose(f, round(f), rtol=0, atol=1e-6)):
            raise ValueError(f"rebin: time_bin={time_bin!r} s is not a whole multiple of the bin width {width:g} s")
        factor = int(round(f))
    try:
        whole = int(factor) == factor
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or factor < 1:
        raise ValueError(f"rebin: factor={factor!r} must be a positive whole number of bins")
    if factor > n_bins:
        asked = f"time_bin={time_bin!r} s ({int(factor)} bins)" if time_bin is not None else f"factor={factor!r}"
        raise ValueError(f"rebin: {asked} is more than the {n_bins} bins of {width:g} s of {_name(lc)}; a new bin "
                         f"groups whole old bins (an incomplete last group is dropped), so at most {n_bins} "
                         f"({n_bins * width:g} s) fit")
    return int(factor)


def rate_from_counts(lc) -> bool:
    """Whether ``lc['rate']`` is ``counts / exposure`` (a gross light curve), so
    that rebinning recomputes it from the summed counts. Not for an OGIP NET or
    BKG light curve read back (``attrs['rate_kind']`` ``"net"``/``"background"``,
    from HDUCLAS2 or BACKAPP): there ``rate`` is the net (or area-scaled background)
    rate while ``counts`` are the source region's gross (or the background
    region's raw) counts."""
    return lc.attrs.get("rate_kind", "total") == "total"


def _weighted(value, err, exposure, n):
    """Exposure-weighted mean of ``value`` over groups of ``n`` bins and its
    error ``sqrt(sum (err * exp)^2) / sum exp``; bins without exposure count 0."""
    good = exposure > 0
    w = exposure.where(good, 0.0)
    tot = w.coarsen(time=n, boundary="trim").sum()
    num = (value.where(good, 0.0) * w).coarsen(time=n, boundary="trim").sum()
    mean = num / tot.where(tot > 0)
    if err is None:
        return mean, None
    var = ((err.where(good, 0.0) * w) ** 2).coarsen(time=n, boundary="trim").sum()
    return mean, np.sqrt(var) / tot.where(tot > 0)


def rebin(lc: xr.Dataset, factor: int | None = None, *, time_bin: float | None = None) -> xr.Dataset:
    """Light curve on bins ``factor`` times wider (or of width ``time_bin`` [s],
    a whole multiple of the current width); an incomplete last group is dropped.

    - counts (``counts``, ``bkg_counts``) and ``exposure`` add up; ``fracexp``
      = exposure / new width;
    - ``rate`` = summed counts / summed exposure, with the light curve's error
      rule (``attrs['errors']``: Poisson or Gehrels) on the summed counts;
    - other rates (``bkg_rate``, ``net_rate``, ``rate`` without counts, and
      ``rate`` of an OGIP NET or BKG light curve read back, whose ``counts``
      are not its rate's: ``attrs['rate_kind']`` ``"net"``/``"background"``) are
      exposure-weighted means, their errors ``sqrt(sum (err_i e_i)^2) / sum e_i``
      (the same as the Poisson rule when the rates come from counts): a NET
      file rebins to the ``net_rate`` of the light curve rebinned in memory;
    - other variables on ``time`` become exposure-weighted means; variables
      without ``time`` (the GTIs) are kept. Extra dims (``band``) are kept.

    ``ValueError`` (naming the file) for a factor that is not a whole number
    >= 1, or more than the number of bins. Lazy when the light curve is
    (xarray ``coarsen`` on its Dask arrays).
    """
    n = _factor(lc, factor, time_bin)
    if n == 1:
        return lc
    exposure = lc["exposure"]
    nb = lc.sizes["time"] // n
    lo = np.asarray(lc["time_lo"].values)[: nb * n : n]
    hi = np.asarray(lc["time_hi"].values)[n - 1 : nb * n : n]
    new_exp = exposure.coarsen(time=n, boundary="trim").sum()
    coords = {"time": ("time", 0.5 * (lo + hi), lc["time"].attrs), "time_lo": ("time", lo, lc["time_lo"].attrs),
              "time_hi": ("time", hi, lc["time_hi"].attrs), "exposure": ("time", new_exp.values, exposure.attrs),
              "fracexp": ("time", np.where(hi > lo, new_exp.values / (hi - lo), 0.0))}
    out = {}
    method = lc.attrs.get("errors", "poisson")
    for name, var in lc.data_vars.items():
        if "time" not in var.dims or name.endswith("_err"):
            continue
        v = var.reset_coords(drop=True) if hasattr(var, "reset_coords") else var
        v = v.drop_vars([k for k in v.coords if k in _TIME_COORDS])
        if var.attrs.get("units") == "count" or name in ("counts", "bkg_counts"):
            out[name] = v.coarsen(time=n, boundary="trim").sum().assign_attrs(var.attrs)
            continue
        err = lc.get(f"{name}_err")
        err = err.drop_vars([k for k in err.coords if k in _TIME_COORDS]) if err is not None else None
        exp = exposure.drop_vars([k for k in exposure.coords if k in _TIME_COORDS])
        mean, e = _weighted(v, err, exp, n)
        out[name] = mean.assign_attrs(var.attrs)
        if e is not None:
            out[f"{name}_err"] = e.assign_attrs(err.attrs)
    if "rate" in out and "counts" in out and method in ERROR_METHODS and rate_from_counts(lc):
        e = new_exp.drop_vars([k for k in new_exp.coords if k in _TIME_COORDS])
        out["rate"] = (out["counts"] / e.where(e > 0)).assign_attrs(lc["rate"].attrs)
        out["rate_err"] = (count_error(out["counts"], method) / e.where(e > 0)).assign_attrs(lc["rate_err"].attrs)
    ds = xr.Dataset(out).assign_coords(coords)
    for name, var in lc.data_vars.items():
        if "time" not in var.dims:
            ds[name] = var
    ds.attrs = dict(lc.attrs, time_bin=float(np.median(hi - lo)) if hi.size else float("nan"))
    return ds


def split_by_gti(lc: xr.Dataset, min_exposure: float = 0.0) -> list[xr.Dataset]:
    """One light curve per GTI: the bins whose good time lies mostly in that
    GTI (each bin goes to exactly one piece), each with its GTI cut to the
    span of its bins ``[time_lo[0], time_hi[-1])`` (the light curve's GTIs
    inside that span: its own GTI, plus the part of a neighbouring one inside a
    bin it shares), so that the piece's GTI total equals its exposure. Bins
    without exposure, and pieces with at most ``min_exposure`` [s] of good
    time, are left out. Returns a list of Datasets, each on its own subset of
    ``lc``'s ``time`` bins (other dims kept) with its ``gti_start``/``gti_stop``
    [s] on ``gti``. Eager on the time coordinates; the data stay lazy."""
    if "gti_start" not in lc:
        raise ValueError("split_by_gti: the light curve has no gti_start/gti_stop (GTIs); build it with "
                         "xcube.lightcurve or read it from an OGIP file with a GTI extension")
    start, stop = gtimod.normalize(*gtimod.from_dataset(lc), warn=False)
    lo, hi = np.asarray(lc["time_lo"].values), np.asarray(lc["time_hi"].values)
    if start.size == 0:
        return []
    overlap = np.stack([gtimod.exposure_per_bin(lo, hi, ([a], [b])) for a, b in zip(start, stop)])
    owner = np.argmax(overlap, axis=0)
    good = overlap.max(axis=0) > 0
    pieces = []
    base = lc.drop_vars([v for v in lc.data_vars if "gti" in lc[v].dims])
    for k in range(start.size):
        idx = np.flatnonzero(good & (owner == k))
        if idx.size == 0 or float(overlap[k, idx].sum()) <= min_exposure:
            continue
        piece = base.isel(time=idx)
        g_start, g_stop = gtimod.intersection((start, stop), ([lo[idx[0]]], [hi[idx[-1]]]))
        piece["gti_start"] = ("gti", g_start, {"units": "s"})
        piece["gti_stop"] = ("gti", g_stop, {"units": "s"})
        piece.attrs = dict(lc.attrs, gti_index=int(k))
        pieces.append(piece)
    return pieces
