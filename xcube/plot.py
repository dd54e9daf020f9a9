"""Matplotlib figures. Plotting never happens inside compute functions: these
take finished (small) products and return a ``matplotlib.figure.Figure``."""
from __future__ import annotations

import numpy as np

__all__ = ["lightcurve", "image", "detections", "detection_lightcurves"]


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _gti_shading(ax, start, stop, t_ref):
    """Shade the gaps between GTIs."""
    for a, b in zip(stop[:-1], start[1:]):
        ax.axvspan(a - t_ref, b - t_ref, color="0.85", lw=0)


def lightcurve(lc, ax=None, gti=None, label=None):
    """Plot a light-curve Dataset (``rate``/``rate_err`` or ``counts`` over time)
    as steps at bin edges, with GTI gaps shaded. Time axis is seconds from the
    first bin edge. Returns the figure."""
    fig = ax.figure if ax is not None else _figure((8, 3))
    ax = ax or fig.add_subplot()
    t_ref = float(lc["time_lo"].values[0]) if "time_lo" in lc else float(lc["time"].values[0])
    y = lc["rate"] if "rate" in lc else lc["counts"]
    x = lc["time"].values - t_ref
    ax.step(x, y.values, where="mid", label=label or y.name)
    if "rate_err" in lc:
        ax.errorbar(x, y.values, yerr=lc["rate_err"].values, fmt="none", lw=0.6, alpha=0.6)
    if gti is not None:
        _gti_shading(ax, np.asarray(gti[0]), np.asarray(gti[1]), t_ref)
    ax.set_xlabel(f"time - {t_ref:.1f} [s]")
    ax.set_ylabel(f"{y.name} [{y.attrs.get('units', '')}]")
    return fig


def image(img, ax=None, log=True, title=None):
    """Show a 2-D (y, x) image DataArray with sky-pixel extents. Returns the figure."""
    from matplotlib.colors import LogNorm

    fig = ax.figure if ax is not None else _figure((5, 5))
    ax = ax or fig.add_subplot()
    v = np.asarray(img.values, dtype=float)
    ext = None
    if "x_lo" in img.coords:
        ext = [img["x_lo"].values[0], img["x_hi"].values[-1], img["y_lo"].values[0], img["y_hi"].values[-1]]
    norm = LogNorm(vmin=max(np.nanmin(v[v > 0]) if (v > 0).any() else 1, 1e-3)) if log and (v > 0).any() else None
    m = ax.imshow(np.where(v > 0, v, np.nan) if norm else v, origin="lower", extent=ext, norm=norm, cmap="magma")
    fig.colorbar(m, ax=ax, shrink=0.8, label=img.attrs.get("units", ""))
    ax.set_xlabel("x [sky pixel]")
    ax.set_ylabel("y [sky pixel]")
    if title:
        ax.set_title(title)
    return fig


def detections(img, table, ax=None, title=None):
    """The summed image with detections marked (peaks as circles, eclipses as squares)."""
    fig = image(img, ax=ax, title=title)
    ax = fig.axes[0]
    for kind, marker, color in (("peak", "o", "cyan"), ("eclipse", "s", "lime")):
        t = table[table["kind"] == kind] if len(table) else table
        if len(t):
            ax.scatter(t["x"], t["y"], s=120, marker=marker, facecolors="none", edgecolors=color, label=kind)
            for _, r in t.iterrows():
                ax.annotate(str(r["detection"]), (r["x"], r["y"]), color=color, fontsize=8,
                            xytext=(6, 6), textcoords="offset points")
    if len(table):
        ax.legend(loc="upper right", fontsize=8)
    return fig


def detection_lightcurves(lcs, table, max_panels: int = 12):
    """One panel per detection: counts and expected per frame, BTI and bad frames shaded."""
    k = min(lcs.sizes["detection"], max_panels)
    fig = _figure((8, 1.8 * max(k, 1)))
    if k == 0:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no detections", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    axes = fig.subplots(k, 1, sharex=True, squeeze=False)[:, 0]
    t_ref = float(lcs["time_lo"].values[0])
    t = lcs["time"].values - t_ref
    for i, ax in enumerate(axes):
        ax.step(t, lcs["counts"].values[i], where="mid", color="k", lw=0.8, label="counts")
        ax.step(t, lcs["expected"].values[i], where="mid", color="tab:orange", lw=0.8, label="expected")
        for flag, color in (("bti", "tab:red"), ("bad_frame", "0.6")):
            f = lcs[flag].values
            if f.any():
                lo, hi = lcs["time_lo"].values - t_ref, lcs["time_hi"].values - t_ref
                for j in np.flatnonzero(f):
                    ax.axvspan(lo[j], hi[j], color=color, alpha=0.2, lw=0)
        row = table.iloc[i]
        ax.set_ylabel("counts")
        ax.set_title(f"#{row['detection']} {row['kind']} {row['name']}  log10 B = {row['log10_bayes']:.1f}", fontsize=8)
    axes[0].legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel(f"time - {t_ref:.1f} [s]")
    return fig
