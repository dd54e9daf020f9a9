"""Spectrum figures: counts per channel of a PI spectrum (and its background)."""
from __future__ import annotations

import numpy as np

from .base import new_figure

__all__ = ["spectrum", "background_scale"]


def _attr(attrs, key):
    try:
        v = float(attrs.get(key))
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) and v > 0 else None


def background_scale(spec) -> float | np.ndarray:
    """The OGIP factor that brings the background counts to the source
    spectrum: ``(BACKSCAL_s * EXPOSURE_s) / (BACKSCAL_b * EXPOSURE_b)``
    (attrs ``backscal``, ``exposure``, ``bkg_backscal``, ``bkg_exposure``; a
    missing or non-positive pair counts as 1); per channel (an array along
    ``channel``) where BACKSCAL is a variable (a BACKSCAL column that
    varies, :func:`xcube.read_spectrum`). Eager: reads a BACKSCAL variable into
    numpy."""
    a = spec.attrs
    scale = 1.0
    for src, bkg in (("backscal", "bkg_backscal"), ("exposure", "bkg_exposure")):
        s, b = (np.asarray(spec[k].values, float) if k in spec.data_vars else _attr(a, k) for k in (src, bkg))
        if s is not None and b is not None:
            scale = scale * s / b
    return scale


def spectrum(spec, ax=None, title=None):
    """Counts per channel of a spectrum Dataset (:func:`xcube.spectrum` or
    :func:`xcube.read_spectrum`) on a log scale, against energy [keV] when
    the spectrum has ``energy_lo``/``energy_hi``, else channel; the
    background when present, scaled as XSPEC does (:func:`background_scale`:
    the BACKSCAL and EXPOSURE ratios). Returns the Figure (computes
    ``spec``). Eager."""
    spec = spec.compute()
    fig = ax.figure if ax is not None else new_figure((6, 4))
    ax = ax or fig.add_subplot()
    if "energy_lo" in spec.coords:
        x, xlabel = 0.5 * (spec["energy_lo"].values + spec["energy_hi"].values), "energy [keV]"
    else:
        x, xlabel = spec["channel"].values, "channel"
    counts = np.asarray(spec["counts"].values, float)
    ax.step(x, np.where(counts > 0, counts, np.nan), where="mid", color="k", lw=0.7, label="source")
    if "bkg_counts" in spec:
        b = np.asarray(spec["bkg_counts"].values, float) * background_scale(spec)
        ax.step(x, np.where(b > 0, b, np.nan), where="mid", color="tab:orange", lw=0.7, label="background (scaled)")
        ax.legend(fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("counts per channel")
    expo = float(spec.attrs.get("exposure", np.nan))
    ax.set_title(title or f"{spec.attrs.get('instrument', '')} spectrum, exposure {expo:.0f} s", fontsize=9)
    return fig
