"""Differential light curves: the target against an ensemble of comparison stars.

* :func:`differential` - ``diff_mag`` = target - ensemble per frame and
  aperture, with errors, plus the same for check stars;
* :func:`lightcurve_table` - the light curve as a flat table (for CSV);
* :func:`plot_lightcurve` - a figure of the target and check stars.

The ensemble: each comparison's deviation from its own night median,
averaged per frame with weights 1/error^2, added to the magnitude of the
summed median fluxes. A comparison missing from a frame therefore changes
only the weights, never the level. Eager on small arrays; accepts lazy ones.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["differential", "lightcurve_table", "plot_lightcurve", "aperture_labels"]


def _ensemble(mag: xr.DataArray, mag_err: xr.DataArray, comparisons) -> tuple[xr.DataArray, xr.DataArray]:
    comp = mag.isel(star=list(comparisons))
    cerr = mag_err.isel(star=list(comparisons))
    ref = comp.median("frame", skipna=True)
    ok = np.isfinite(comp) & np.isfinite(cerr) & (cerr > 0)
    w = xr.where(ok, 1.0 / cerr**2, 0.0)
    dev = xr.where(ok, comp - ref, 0.0)
    wsum = w.sum("star")
    offset = (w * dev).sum("star") / wsum.where(wsum > 0)
    level = -2.5 * np.log10((10 ** (-0.4 * ref)).sum("star", min_count=1))
    return level + offset, np.sqrt(1.0 / wsum.where(wsum > 0))


def differential(mag: xr.DataArray, mag_err: xr.DataArray, target: int, comparisons, checks=()) -> xr.Dataset:
    """Differential magnitudes over ``(frame, aperture)``.

    ``mag``, ``mag_err``: instrumental magnitudes ``(star, frame,
    aperture)``; ``target``, ``comparisons``, ``checks``: star indices.
    Returns ``diff_mag``, ``diff_err`` (target - ensemble),
    ``ensemble_mag``, ``ensemble_err`` and, over ``(check, frame,
    aperture)``, ``check_mag``, ``check_err``, all [mag]. NaN where the
    target or all comparisons are missing.

    xarray arithmetic, nothing computed explicitly: lazy for Dask-backed
    inputs, computed eagerly for numpy-backed ones (the pipeline's, from
    :func:`~xcube.frames.store.read_dataset`).
    """
    if target in comparisons:
        raise ValueError(f"star {target} is both the target and a comparison")
    per_star = [c for c in mag.coords if "star" in mag[c].dims and c != "star"]
    mag, mag_err = mag.drop_vars(per_star), mag_err.drop_vars(per_star, errors="ignore")
    ens, ens_err = _ensemble(mag, mag_err, comparisons)
    t = mag.isel(star=int(target), drop=True)
    te = mag_err.isel(star=int(target), drop=True)
    ds = xr.Dataset({"diff_mag": t - ens, "diff_err": np.sqrt(te**2 + ens_err**2),
                     "ensemble_mag": ens, "ensemble_err": ens_err}).transpose("frame", "aperture")
    chk = [int(c) for c in checks]
    cm = mag.isel(star=chk).rename(star="check") - ens
    ce = np.sqrt(mag_err.isel(star=chk).rename(star="check") ** 2 + ens_err**2)
    ds["check_mag"], ds["check_err"] = cm.transpose("check", "frame", "aperture"), ce.transpose("check", "frame",
                                                                                                  "aperture")
    ds = ds.drop_vars([v for v in ("star",) if v in ds.coords])
    ds = ds.assign_coords(check=("check", chk))
    for v in ("diff_mag", "ensemble_mag", "check_mag"):
        ds[v].attrs["units"] = "mag"
    ds["diff_mag"].attrs["description"] = "target minus the comparison ensemble"
    return ds


def aperture_labels(ds: xr.Dataset) -> list[str]:
    """Column suffixes per aperture: ``r5px`` for a fixed radius [px],
    ``r1.5fwhm`` for a multiple of the FWHM. A list of str, one per entry of
    ``aperture_setting`` (else ``aperture``); reads that small coordinate
    eagerly."""
    setting = ds["aperture_setting"].values if "aperture_setting" in ds else ds["aperture"].values
    return [f"r{-a:g}fwhm" if a < 0 else f"r{a:g}px" for a in setting]


def lightcurve_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per frame: ``file``, ``time`` [d] and ``timesys`` (what
    ``time`` is: ``BJD_TDB``, or ``JD_UTC`` for frames without target
    coordinates), the other per-frame time and condition coordinates
    present, then ``diff_mag_<ap>`` and
    ``diff_err_<ap>`` [mag] per aperture and ``check<k>_mag_<ap>`` per check
    star (``<ap>``: :func:`aperture_labels`). Eager: reads the Dataset's
    values into the pandas table."""
    table = pd.DataFrame({"file": ds["file"].values, "time": ds["time"].values,
                          "timesys": str(ds["time"].attrs.get("timesys", "BJD_TDB"))})
    for name in ("jd", "mjd", "hjd", "airmass", "fwhm", "offset_x", "offset_y", "rotation"):
        if name in ds and ds[name].dims == ("frame",):
            table[name] = ds[name].values
    labels = aperture_labels(ds)
    for j, lab in enumerate(labels):
        table[f"diff_mag_{lab}"] = ds["diff_mag"].values[:, j]
        table[f"diff_err_{lab}"] = ds["diff_err"].values[:, j]
    for k, star in enumerate(ds["check"].values if "check" in ds.dims else []):
        for j, lab in enumerate(labels):
            table[f"check{int(star)}_mag_{lab}"] = ds["check_mag"].values[k, :, j]
    return table


def plot_lightcurve(ds: xr.Dataset, aperture: int | None = None, title: str | None = None):
    """Figure of the differential light curve of one aperture index (default:
    the one with the smallest median error) with the check stars shifted
    below; magnitudes increase downwards. ``aperture`` is an index along
    dim ``aperture`` (not a radius in px). x: ``time`` minus its first
    whole day [d]; y: differential magnitude [mag]. Eager: reads the
    Dataset's values. Returns the matplotlib Figure."""
    from matplotlib.figure import Figure

    if aperture is None:
        with warnings.catch_warnings():  # an aperture without a finite error (target outside the frame): NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(ds["diff_err"].values, axis=0)
        aperture = int(np.nanargmin(med)) if np.isfinite(med).any() else 0
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    t = ds["time"].values
    t0 = np.floor(np.nanmin(t)) if np.isfinite(t).any() else 0.0
    y = ds["diff_mag"].values[:, aperture]
    ax.errorbar(t - t0, y, ds["diff_err"].values[:, aperture], fmt="o", ms=3, label=f"target {ds.attrs.get('target')}")
    shift = np.nanmax(y) + 0.1 if np.isfinite(y).any() else 0.0
    for k in range(ds.sizes.get("check", 0)):
        c = ds["check_mag"].values[k, :, aperture]
        c = c - (np.nanmedian(c) if np.isfinite(c).any() else 0.0) + shift + 0.1 * k
        ax.plot(t - t0, c, ".", ms=3, label=f"check {int(ds['check'].values[k])} (shifted)")
    ax.invert_yaxis()
    ax.set_xlabel(f"{ds['time'].attrs.get('timesys', 'BJD_TDB')} - {t0:.0f} [d]")
    ax.set_ylabel("differential magnitude")
    ax.set_title(title or f"{ds.attrs.get('obj', '')} {ds.attrs.get('band', '')}  "
                          f"aperture {aperture_labels(ds)[aperture]}")
    ax.legend(loc="best", fontsize="small")
    return fig
