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
from ..times import reference_on_time
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
        width = _width(lc)  # one width for a new width in seconds
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
    a whole multiple of the current width).

    The new bins lie on the regular grid ``t0 + k * factor * width`` of each
    run of rows (``t0`` the first row's ``time_lo``), not on groups of
    consecutive rows: rows that a file leaves out (e.g. inside a GTI gap, as
    XRONOS/extractor and stitched light curves do) count as bins of zero
    exposure, so every new bin is ``factor x width`` wide and its ``fracexp``
    tells how much of it holds good time. A new grid starts where the rows
    leave the old grid (a step that is not a whole number of bins) and for
    every observation of a stitched light curve (``obs_index``, else
    ``obs_id``/``mission``/``instrument`` coords): no new bin spans two
    observations. In every run, an incomplete last group (one whose grid
    reaches past the run's last row) is dropped, and new bins holding no row
    at all are left out, as the input leaves out rows.

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
    - per-bin coordinates of a stitched light curve: text and integer ones
      (``obs_id``, ``mission``, ``instrument``, ``obs_index``) keep the group's
      first value, ``mjd``/``mission_time``/``utc`` are taken at the new bin
      centre, other numbers are averaged over the group's rows.

    A stitched light curve whose observations have different widths rebins
    each observation by ``factor`` on its own (``time_bin=`` needs one width).
    ``attrs['time_bin']`` is the new width ``factor x width`` (NaN when the
    new bins differ). ``ValueError`` (naming the file) for a factor that is
    not a whole number >= 1, more than the number of bins, ``time_bin`` with
    bins of different widths, or no complete group. Lazy
    when the light curve is (the data are gathered with ``isel`` and summed
    with xarray ``coarsen`` on its Dask arrays); the time coordinates are
    computed eagerly.
    """
    n = _factor(lc, factor, time_bin)
    if n == 1:
        return lc
    take, present, lo, hi, first = _grid_groups(lc, n)
    exposure = np.asarray(lc["exposure"].values, np.float64)
    slot_exp = np.where(present, exposure[take], 0.0)
    new_exp = slot_exp.reshape(-1, n).sum(axis=1)
    coords = {"time": ("time", 0.5 * (lo + hi), lc["time"].attrs), "time_lo": ("time", lo, lc["time_lo"].attrs),
              "time_hi": ("time", hi, lc["time_hi"].attrs), "exposure": ("time", new_exp, lc["exposure"].attrs),
              "fracexp": ("time", np.where(hi > lo, new_exp / (hi - lo), 0.0), lc["fracexp"].attrs)}
    coords.update(_per_bin_coords(lc, take, present, first, 0.5 * (lo + hi), n))
    timed = [v for v in lc.data_vars if "time" in lc[v].dims]
    full = lc[timed].reset_coords(drop=True).isel(time=take)
    mask = xr.DataArray(present, dims="time")
    expo = xr.DataArray(slot_exp, dims="time")
    out = {}
    method = lc.attrs.get("errors", "poisson")
    for name in timed:
        var = lc[name]
        if name.endswith("_err"):
            continue
        v = full[name]
        if var.attrs.get("units") == "count" or name in ("counts", "bkg_counts"):
            out[name] = v.where(mask, 0).coarsen(time=n).sum().assign_attrs(var.attrs)
            continue
        err = full[f"{name}_err"] if f"{name}_err" in full else None
        mean, e = _weighted(v, err, expo, n)
        out[name] = mean.assign_attrs(var.attrs)
        if e is not None:
            out[f"{name}_err"] = e.assign_attrs(lc[f"{name}_err"].attrs)
    if "rate" in out and "counts" in out and method in ERROR_METHODS and rate_from_counts(lc):
        e = xr.DataArray(new_exp, dims="time")
        out["rate"] = (out["counts"] / e.where(e > 0)).assign_attrs(lc["rate"].attrs)
        out["rate_err"] = (count_error(out["counts"], method) / e.where(e > 0)).assign_attrs(lc["rate_err"].attrs)
    ds = xr.Dataset(out).assign_coords(coords)
    for name, var in lc.data_vars.items():
        if "time" not in var.dims:
            ds[name] = var
    widths = hi - lo
    same = widths.size and float(np.ptp(widths)) <= 1e-9 * float(np.max(widths)) + 1e-9
    nominal = lc.attrs.get("time_bin")
    ds.attrs = dict(lc.attrs, time_bin=float(n * nominal) if same and nominal is not None and np.isfinite(nominal)
                    and np.isclose(n * nominal, np.median(widths), rtol=1e-6) else
                    float(np.median(widths)) if same else float("nan"))
    return reference_on_time(ds)


def _width(lc) -> float:
    """The one bin width [s] of ``lc``; ``ValueError`` naming it when its bins differ."""
    from .lightcurve import common_bin_width

    return common_bin_width(lc, f"rebin: the bins of {_name(lc)} differ in width; rebinning by a factor needs "
                                "equal bins (rebin each part, e.g. each observation of a stitched light curve, "
                                "on its own)")


def _observation_keys(lc) -> np.ndarray:
    """One integer per row naming its observation: ``obs_index`` (stitched light curves), else the distinct
    ``obs_id``/``mission``/``instrument`` coords, else 0."""
    n = lc.sizes["time"]
    if "obs_index" in lc.coords and lc["obs_index"].dims == ("time",):
        return np.asarray(lc["obs_index"].values).astype(np.int64)
    cols = [np.asarray(lc[c].values).astype(str) for c in ("obs_id", "mission", "instrument")
            if c in lc.coords and lc[c].dims == ("time",)]
    if not cols:
        return np.zeros(n, np.int64)
    joined = np.array(["\x00".join(parts) for parts in zip(*cols)])
    return np.unique(joined, return_inverse=True)[1].astype(np.int64)


def _runs(lo, hi, rows, tol):
    """Split ``rows`` (sorted by time) into runs on one regular grid: a run
    ends where the width changes or the next row is not a whole number (>= 1)
    of bins later. Yields ``(rows, k, width)``: the run's rows, their grid
    index from its first row, and its width [s]."""
    w = hi[rows] - lo[rows]
    cut = np.flatnonzero(np.abs(np.diff(w)) > tol) + 1
    for part in np.split(rows, cut):
        width = float(np.median(hi[part] - lo[part]))
        steps = np.diff(lo[part]) / width
        whole = np.rint(steps)
        on_grid = (whole >= 1) & (np.abs(steps - whole) * width <= tol)
        for seg in np.split(np.arange(part.size), np.flatnonzero(~on_grid) + 1):
            k = np.concatenate([[0], np.cumsum(whole[seg[:-1]])]).astype(np.int64)
            yield part[seg], k, width


def _grid_groups(lc, n: int):
    """The new bins of :func:`rebin` (eager, on the time coordinates).

    Returns ``(take, present, lo, hi, first)``: ``take`` (m * n,) the row of
    each old-grid slot of the m new bins (0 where the row is absent),
    ``present`` (m * n,) whether the slot has a row, ``lo``/``hi`` (m,) the
    new bins' edges [s], ``first`` (m,) the first row of each new bin. Sorted
    by time."""
    from .lightcurve import edge_rounding

    lo_all = np.asarray(lc["time_lo"].values, np.float64)
    hi_all = np.asarray(lc["time_hi"].values, np.float64)
    width_all = hi_all - lo_all
    tol = edge_rounding(lo_all, hi_all) + 1e-6 * float(np.median(width_all))
    keys = _observation_keys(lc)
    slots, starts, ends = [], [], []
    for key in dict.fromkeys(keys.tolist()):
        rows = np.flatnonzero(keys == key)
        rows = rows[np.argsort(lo_all[rows], kind="stable")]
        for r, k, width in _runs(lo_all, hi_all, rows, tol):
            complete = (int(k[-1]) + 1) // n
            keep = k < complete * n
            if not keep.any():
                continue
            r, k = r[keep], k[keep]
            groups = np.unique(k // n)
            table = np.full((groups.size, n), -1, np.int64)
            table[np.searchsorted(groups, k // n), k % n] = r
            slots.append(table)
            starts.append(lo_all[r[0]] + groups * n * width)
            ends.append(lo_all[r[0]] + (groups + 1) * n * width)
    if not slots:
        raise ValueError(f"rebin: no group of {n} bins fits in a run of consecutive bins of {_name(lc)} (an "
                         "incomplete last group is dropped)")
    table, start, end = np.concatenate(slots), np.concatenate(starts), np.concatenate(ends)
    order = np.argsort(start, kind="stable")
    table, start, end = table[order], start[order], end[order]
    present = table >= 0
    first = table[np.arange(table.shape[0]), np.argmax(present, axis=1)]
    lo = np.where(present[:, 0], lo_all[table[:, 0]], start)
    hi = np.where(present[:, -1], hi_all[table[:, -1]], end)
    take = np.where(present, table, 0).ravel()
    return take, present.ravel(), lo, hi, first


def _per_bin_coords(lc, take, present, first, centre, n: int) -> dict:
    """The new values of ``lc``'s per-bin coordinates along ``time`` (besides
    the time edges and exposure): see :func:`rebin`."""
    t_first = np.asarray(lc["time"].values, np.float64)[first]
    out = {}
    for name, c in lc.coords.items():
        if name in _TIME_COORDS or "time" not in c.dims:
            continue
        if c.dims != ("time",):
            continue  # a coordinate on time and another dim: no rule to combine it
        v = np.asarray(c.values)
        if name == "mjd":
            new = v[first] + (centre - t_first) / 86400.0
        elif name == "mission_time":
            new = v[first] + (centre - t_first)
        elif v.dtype.kind == "M":
            new = v[first] + np.round((centre - t_first) * 1e9).astype("timedelta64[ns]")
        elif v.dtype.kind == "f":
            vals = np.where(present, v[take], np.nan).reshape(-1, n)
            with np.errstate(invalid="ignore"):
                new = np.nanmean(vals, axis=1) if vals.size else vals[:, 0]
        else:
            new = v[first]
        out[name] = ("time", new, c.attrs)
    return out


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
