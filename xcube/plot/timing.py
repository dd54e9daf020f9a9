"""Timing figures: power spectra and hardness-intensity diagrams."""
from __future__ import annotations

import numpy as np

from .base import new_figure

__all__ = ["power_spectrum", "hardness_intensity"]

_YLABEL = {"leahy": "Leahy power", "frac": "power [(rms/mean)$^2$/Hz]", "abs": "power [(count/s)$^2$/Hz]",
           "none": "power"}


def power_spectrum(pds, *, freq_power: bool = False, poisson: bool = True, ax=None, label=None,
                   figsize=(6, 4.2), title: str | None = None):
    """A power spectrum on log-log axes with error bars (x bars: the bin
    edges ``freq_lo``/``freq_hi``; frequency in Hz, power in the spectrum's
    ``norm``). Reads the values (computes a lazy input). ``freq_power=True``
    plots frequency x power (the usual form for rms spectra). The Poisson
    level is drawn dashed unless already subtracted (or ``poisson=False``).
    A stack over ``obs`` gives one curve per observation. Non-positive powers
    are not drawn on the log axis. Returns the Figure."""
    fig = ax.figure if ax is not None else new_figure(figsize)
    ax = ax or fig.add_subplot()
    stack = [pds.isel(obs=i) for i in range(pds.sizes["obs"])] if "obs" in pds.dims else [pds]
    labels = [str(v) for v in pds["obs"].values] if "obs" in pds.dims else [label]
    f = pds["freq"].values
    xerr = np.vstack([f - pds["freq_lo"].values, pds["freq_hi"].values - f])
    for one, lab in zip(stack, labels):
        p, e = one["power"].values, one["power_err"].values
        scale = f if freq_power else 1.0
        ok = p > 0
        ax.errorbar(f[ok], (p * scale)[ok], yerr=(e * scale)[ok], xerr=xerr[:, ok], fmt="o", ms=2, lw=0.6,
                    label=lab)
    level = pds.attrs.get("poisson_level")
    if poisson and level is not None and not pds.attrs.get("noise_subtracted") and np.ndim(level) == 0:
        ax.plot(f, level * (f if freq_power else np.ones_like(f)), ls="--", color="0.5", lw=0.8,
                label="Poisson level")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("frequency [Hz]")
    norm = pds.attrs.get("norm", "none")
    ax.set_ylabel(("frequency x " if freq_power else "") + _YLABEL.get(norm, "power"))
    if any(lab for lab in labels) or (poisson and level is not None):
        ax.legend(fontsize=7)
    info = f"{norm}, {pds.attrs.get('segment', float('nan')):g} s segments x {pds.attrs.get('n_segments', '?')}"
    ax.set_title(title or info, fontsize=9)
    return fig


def hardness_intensity(hr, *, ax=None, figsize=(5, 4.2), color_by_time: bool = True, title: str | None = None):
    """Hardness-intensity diagram of :func:`xcube.hardness_ratio`: ratio
    against intensity (S + H) [count/s] with error bars, points coloured by
    time [s from the first plotted bin]. Bins with an undefined ratio are
    left out. Returns the Figure (computes ``hr``)."""
    hr = hr.compute()
    fig = ax.figure if ax is not None else new_figure(figsize)
    ax = ax or fig.add_subplot()
    ok = np.isfinite(hr["ratio"].values) & np.isfinite(hr["intensity"].values)
    x, y = hr["intensity"].values[ok], hr["ratio"].values[ok]
    ax.errorbar(x, y, xerr=hr["intensity_err"].values[ok], yerr=hr["ratio_err"].values[ok], fmt="none",
                ecolor="0.7", lw=0.5)
    t = hr["time"].values[ok] - (hr["time"].values[ok][0] if ok.any() else 0.0)
    m = ax.scatter(x, y, c=t if color_by_time else "k", s=10, cmap="viridis", zorder=3)
    if color_by_time and ok.any():
        fig.colorbar(m, ax=ax, label="time since first bin [s]")
    ax.set_xlabel("intensity S + H [count/s]")
    hard, soft = hr.attrs.get("hard_band", "hard"), hr.attrs.get("soft_band", "soft")
    ax.set_ylabel(f"(H - S) / (H + S)   H = {hard}, S = {soft}")
    ax.set_ylim(-1.05, 1.05)
    if title:
        ax.set_title(title, fontsize=9)
    return fig
