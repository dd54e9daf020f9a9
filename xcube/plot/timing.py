"""Timing figures: power spectra and hardness-intensity diagrams."""
from __future__ import annotations

import numpy as np

from .base import new_figure

__all__ = ["power_spectrum", "hardness_intensity"]

_YLABEL = {"leahy": "Leahy power", "frac": "power [(rms/mean)$^2$/Hz]", "abs": "power [(count/s)$^2$/Hz]",
           "none": "power"}
# frequency x power: the /Hz goes (a dimensionless Leahy power gains Hz)
_FP_YLABEL = {"leahy": "frequency x Leahy power [Hz]", "frac": "frequency x power [(rms/mean)$^2$]",
              "abs": "frequency x power [(count/s)$^2$]", "none": "frequency x power"}


def _per_obs(pds, name, i):
    """``pds``'s ``name`` for observation ``i``: a per-obs variable, or the attr (None when absent)."""
    if name in pds.variables and "obs" in pds[name].dims:
        return float(pds[name].values[i])
    if name in pds.variables and pds[name].ndim == 0:
        return float(pds[name].values)
    v = pds.attrs.get(name)
    return float(v) if v is not None and np.ndim(v) == 0 else None


def power_spectrum(pds, *, freq_power: bool = False, poisson: bool = True, ax=None, label=None,
                   figsize=(6, 4.2), title: str | None = None):
    """A power spectrum on log-log axes with error bars (x bars: the bin
    edges ``freq_lo``/``freq_hi``; frequency in Hz, power in the spectrum's
    ``norm``). Reads the values (computes a lazy input). ``freq_power=True``
    plots frequency x power (the usual form for rms spectra). The Poisson
    level is drawn dashed unless already subtracted (or ``poisson=False``).
    A stack over ``obs`` gives one curve per observation, each with its own
    Poisson level (dashed, same colour). With ``freq_power`` the unit loses
    its /Hz. Non-positive powers
    are not drawn on the log axis. Returns the Figure."""
    fig = ax.figure if ax is not None else new_figure(figsize)
    ax = ax or fig.add_subplot()
    stack = [pds.isel(obs=i) for i in range(pds.sizes["obs"])] if "obs" in pds.dims else [pds]
    labels = [str(v) for v in pds["obs"].values] if "obs" in pds.dims else [label]
    f = pds["freq"].values
    xerr = np.vstack([f - pds["freq_lo"].values, pds["freq_hi"].values - f])
    subtracted = bool(pds.attrs.get("noise_subtracted"))
    for i, (one, lab) in enumerate(zip(stack, labels)):
        p, e = one["power"].values, one["power_err"].values
        scale = f if freq_power else 1.0
        ok = p > 0
        bars = ax.errorbar(f[ok], (p * scale)[ok], yerr=(e * scale)[ok], xerr=xerr[:, ok], fmt="o", ms=2, lw=0.6,
                           label=lab)
        per_obs = "poisson_level" in pds.variables and "obs" in pds["poisson_level"].dims
        if (per_obs or i == 0) and poisson and not subtracted:
            level = _per_obs(pds, "poisson_level", i)
            if level is not None:  # a stack's own levels in the colours of their curves
                ax.plot(f, level * (f if freq_power else np.ones_like(f)), ls="--", lw=0.8,
                        color=bars.lines[0].get_color() if per_obs else "0.5",
                        label=f"Poisson level {lab}" if per_obs else "Poisson level")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("frequency [Hz]")
    norm = pds.attrs.get("norm", "none")
    ax.set_ylabel(_FP_YLABEL.get(norm, "frequency x power") if freq_power else _YLABEL.get(norm, "power"))
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=7)
    n = [_per_obs(pds, "n_segments", i) for i in range(len(stack))]
    n_text = "+".join(f"{v:g}" for v in n if v is not None) or "?"
    segment = _per_obs(pds, "segment", 0)
    info = f"{norm}, {segment if segment is not None else float('nan'):g} s segments x {n_text}"
    ax.set_title(title or info, fontsize=9)
    return fig


def hardness_intensity(hr, *, ax=None, figsize=(5, 4.2), color_by_time: bool = True, title: str | None = None):
    """Hardness-intensity diagram of :func:`xcube.hardness_ratio`: ratio
    against intensity (S + H) [count/s] with error bars, points coloured by
    time [s from the first plotted bin]. Bins with an undefined ratio are
    left out. Returns the Figure (computes ``hr``). Eager."""
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
