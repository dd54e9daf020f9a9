"""Net light curves from a background *model*: a model light curve (an OGIP
file from a mission background tool such as HXMT's ``lebkgmap``, or a
Dataset), or the expected counts of the transient search in a region.

(A background *region* is handled by :func:`xcube.lightcurve` itself, which
scales its counts by the area ratio.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .. import gti as gtimod

__all__ = ["net_lightcurve", "background_on_bins", "model_on_lightcurve", "is_fits_file", "is_search_result"]


def is_fits_file(obj) -> bool:
    """True for a path (str or PathLike) to an existing FITS file (plain or
    gzip). Eager: reads the first 9 bytes (decompressed for gzip)."""
    if not isinstance(obj, (str, Path)):
        return False
    p = Path(obj)
    try:
        if not p.is_file():
            return False
        with open(p, "rb") as fh:
            head = fh.read(9)
    except OSError:
        return False
    if head[:2] == b"\x1f\x8b":
        import gzip

        with gzip.open(p, "rb") as fh:
            head = fh.read(9)
    return head == b"SIMPLE  ="


def is_search_result(obj) -> bool:
    """True for a transient-search result (an object with an ``expected`` (time, y, x) DataArray); a type check that
    computes nothing. Eager, cheap; a lazy ``expected`` stays lazy."""
    exp = getattr(obj, "expected", None)
    return isinstance(exp, xr.DataArray) and {"time", "y", "x"} <= set(exp.dims)


def _pairs(lo, hi, mlo, mhi):
    """All (bin i, model bin j, overlap [s]) with a positive overlap; both grids sorted."""
    j0 = np.searchsorted(mhi, lo, side="right")
    j1 = np.searchsorted(mlo, hi, side="left")
    n = np.clip(j1 - j0, 0, None)
    i = np.repeat(np.arange(lo.size), n)
    j = np.repeat(j0, n) + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
    ov = np.clip(np.minimum(hi[i], mhi[j]) - np.maximum(lo[i], mlo[j]), 0.0, None)
    return i, j, ov


def _good_pieces(lo, hi, gti):
    """``(owner, piece_lo, piece_hi)``: the parts of the bins ``[lo, hi)`` inside
    the intervals ``gti`` (start, stop), with the bin each belongs to."""
    gs, ge = gtimod.normalize(*gti)
    i, k, ov = _pairs(lo, hi, gs, ge)
    keep = ov > 0
    i, k = i[keep], k[keep]
    return i, np.maximum(lo[i], gs[k]), np.minimum(hi[i], ge[k])


def background_on_bins(model: xr.Dataset, lo, hi, gti=None):
    """``(rate, rate_err)`` [count/s] of a model light curve on the bins
    ``[lo, hi)`` [s]: the model's good-time-weighted mean rate over each bin
    and its error ``sqrt(sum (err_j w_j)^2) / sum w_j`` (``w_j`` = overlap x
    model FRACEXP). With ``gti`` (start, stop) [s], the light curve's good
    time, only the parts of each bin inside it count: a bin that straddles
    a GTI edge takes the model over the time it observed, not over the gap
    (a flare cut out of the source's GTIs). NaN where the model has no good
    time in a bin. Times on the bins' reference (see
    :func:`model_on_lightcurve`). Eager (numpy)."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    owner = None
    if gti is not None:
        owner, lo_p, hi_p = _good_pieces(lo, hi, gti)
        n_bins, lo, hi = lo.size, lo_p, hi_p
    m = model.compute()
    mlo, mhi = np.asarray(m["time_lo"].values, np.float64), np.asarray(m["time_hi"].values, np.float64)
    rate = np.asarray(m["rate"].values, np.float64)
    err = np.asarray(m["rate_err"].values, np.float64) if "rate_err" in m else np.zeros_like(rate)
    frac = np.asarray(m["fracexp"].values, np.float64) if "fracexp" in m.coords or "fracexp" in m \
        else np.ones_like(rate)
    if rate.ndim != 1:
        raise ValueError("background model light curve: need one band (dims ('time',)); select a band first")
    order = np.argsort(mlo)
    mlo, mhi, rate, err, frac = (a[order] for a in (mlo, mhi, rate, err, frac))
    i, j, ov = _pairs(lo, hi, mlo, mhi)
    size = lo.size
    if owner is not None:  # pieces of good time -> their bins
        i, size = owner[i], n_bins
    good = np.isfinite(rate[j])
    w = np.where(good, ov * frac[j], 0.0)
    wsum = np.bincount(i, w, minlength=size)
    num = np.bincount(i, np.where(good, rate[j], 0.0) * w, minlength=size)
    # the error of a bin's mean: a model bin met by several pieces of one bin counts once, with their weights
    n_model = max(int(mlo.size), 1)
    uk, inv = np.unique(i.astype(np.int64) * n_model + j, return_inverse=True)
    wj = np.bincount(inv, w, minlength=uk.size)
    ii, jj = uk // n_model, uk % n_model
    var = np.bincount(ii, (np.where(np.isfinite(rate[jj]), err[jj], 0.0) * wj) ** 2, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(wsum > 0, num / wsum, np.nan), np.where(wsum > 0, np.sqrt(var) / wsum, np.nan)


def model_on_lightcurve(model: xr.Dataset, lc: xr.Dataset):
    """``(rate, rate_err)`` [count/s] of the model light curve ``model`` on the
    bins of the light curve ``lc``, over their good time
    (:func:`background_on_bins` with ``lc``'s GTIs when it has them).
    Raises ``ValueError`` naming both when their times count from different
    references (MJDREF or TIMESYS; one without any is taken as the other's):
    their seconds would name different instants. Eager (numpy)."""
    from ..times import _reference_key

    keys = [_reference_key(o) for o in (lc, model)]
    if keys[0][0] != "nan" and keys[1][0] != "nan" and keys[0] != keys[1]:
        raise ValueError(
            f"net_lightcurve: the background model {model.attrs.get('source', '<model>')} counts its times from "
            f"MJDREF {keys[1][0]} {keys[1][1]}, the light curve {lc.attrs.get('source', '<light curve>')} from "
            f"MJDREF {keys[0][0]} {keys[0][1]}; the same seconds name different instants. Make the model on the "
            "light curve's time reference (same mission, same MJDREF/TIMESYS)")
    gti = gtimod.from_dataset(lc) if "gti_start" in lc and "gti_stop" in lc else None
    return background_on_bins(model, lc["time_lo"].values, lc["time_hi"].values, gti=gti)


def _search_background(result, lc: xr.Dataset, region):
    """Expected counts of the search model in ``region`` on the light-curve bins."""
    if region is None:
        raise ValueError("a transient-search background needs the region to sum its expected counts over (region=)")
    from ..regions import region_mask

    mu = result.expected
    mask = region_mask(mu, region)
    expected = mu.where(mask).sum(("y", "x"), min_count=1)
    # the light curve's bins are the search's frames, or some of them in a row (a region's light curve
    # leaves out the frames beyond its CCDs' good time)
    m_lo, m_hi = mu["time_lo"].values, mu["time_hi"].values
    lo, hi = lc["time_lo"].values, lc["time_hi"].values
    tol = 1e-6 * float(lc.attrs.get("time_bin", 1.0))
    i0 = int(np.searchsorted(m_lo, lo[0] - tol)) if lo.size else 0
    same = 0 < lo.size <= m_lo.size - i0 and np.allclose(m_lo[i0:i0 + lo.size], lo, rtol=0, atol=tol) and \
        np.allclose(m_hi[i0:i0 + lo.size], hi, rtol=0, atol=tol)
    if same:
        counts = expected.data[i0:i0 + lo.size]
        exposure = np.asarray(lc["exposure"].values, np.float64)
        rate = counts / np.where(exposure > 0, exposure, np.nan)
        return rate, None, counts
    # different bins: go through the model's rate on its own bins, in one lazy task (the cube stays lazy)
    import dask
    import dask.array as da

    exp = np.asarray(mu["exposure"].values, np.float64)

    def resample(counts):
        model = xr.Dataset({"rate": ("time", np.asarray(counts, np.float64) / np.where(exp > 0, exp, np.nan))},
                           coords={"time_lo": ("time", m_lo), "time_hi": ("time", m_hi)})
        return np.asarray(background_on_bins(model, lo, hi)[0], np.float64)

    data = expected.data
    if not isinstance(data, da.Array):
        return resample(data), None, None
    rate = da.from_delayed(dask.delayed(resample)(data), shape=(lo.size,), dtype=np.float64)
    return rate, None, None


def net_lightcurve(lc: xr.Dataset, background, *, region=None, scale: float = 1.0) -> xr.Dataset:
    """Add a background model and the net rate to a light curve.

    Parameters
    ----------
    lc : light curve (``xcube.lightcurve``, ``xcube.read_lightcurve``).
    background : the background of the source region, as
        - a model light curve: a Dataset with ``rate`` (and ``rate_err``) on
          its own time bins, or the path of an OGIP light curve (e.g. the
          output of HXMT ``lebkgmap``/``mebkgmap``/``hebkgmap``); it is
          resampled onto ``lc``'s bins, over their good time (the mean over
          the parts of each bin inside ``lc``'s GTIs, weighted by the model's
          good time: :func:`model_on_lightcurve`, which refuses a model on
          another MJDREF/TIMESYS);
        - a transient-search result (``xcube.search_transients``): its
          expected counts ``result.expected`` (time, y, x) summed over
          ``region``. That model is "background template x background light
          curve + constant sources", so the net rate is the excess over a
          source that does not vary. It has no statistical error of its own.
    region : the source region (needed for a search result), physical or sky
        (the search's arrays carry the WCS of their cells).
    scale : factor applied to the model rate (e.g. an area ratio).

    Returns ``lc`` plus, each on ``lc``'s ``time`` dim,
    ``bkg_rate``, ``bkg_rate_err`` [count/s], ``net_rate``
    = ``rate - bkg_rate`` and ``net_rate_err`` (quadrature), and
    ``bkg_counts`` (expected background counts, float) for a search result.
    Lazy for a search result (its cube stays lazy; on other bins than the
    search's frames the model is resampled in one lazy task); a model light
    curve is read and resampled eagerly (it is small).
    """
    if is_search_result(background):
        rate, err, counts = _search_background(background, lc, region)
        source = f"transient-search expected counts in {region}"
    else:
        if is_fits_file(background):
            from ..io.lightcurve_file import read_lightcurve

            source = str(background)
            background = read_lightcurve(background)
        elif isinstance(background, xr.Dataset) and "rate" in background:
            source = str(background.attrs.get("source", "model light curve"))
        else:
            raise TypeError(f"net_lightcurve: background must be a model light curve (Dataset or OGIP file path) "
                            f"or a transient-search result, got {type(background).__name__}")
        rate, err = model_on_lightcurve(background, lc)
        counts = None
    out = lc.copy()
    bkg = xr.DataArray(rate, dims="time", coords=lc["time"].coords) * float(scale)
    bkg_err = xr.zeros_like(bkg) if err is None else xr.DataArray(err, dims="time", coords=lc["time"].coords) * scale
    out["bkg_rate"] = bkg.assign_attrs(units="count/s", source=source)
    out["bkg_rate_err"] = bkg_err.assign_attrs(units="count/s")
    if counts is not None:
        out["bkg_counts"] = (xr.DataArray(counts, dims="time", coords=lc["time"].coords) * float(scale)).assign_attrs(
            units="count", long_name="expected background counts")
    out["net_rate"] = (lc["rate"] - out["bkg_rate"]).assign_attrs(units="count/s")
    out["net_rate_err"] = np.sqrt(lc["rate_err"] ** 2 + out["bkg_rate_err"] ** 2).assign_attrs(units="count/s")
    out.attrs["background_model"] = source
    return out
