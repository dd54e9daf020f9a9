"""Light-curve figures: a simple light curve, light curves on broken time
axes that skip the gaps between GTIs, long-term light curves, and the
per-detection light curves of the transient search."""
from __future__ import annotations

import numpy as np

from .base import new_figure, rate_variable, time_label

__all__ = ["lightcurve", "broken_lightcurve", "long_term_lightcurve", "detection_lightcurves", "gti_groups"]


def _gti_shading(ax, start, stop, t_ref):
    """Shade the gaps between GTIs."""
    for a, b in zip(stop[:-1], start[1:]):
        ax.axvspan(a - t_ref, b - t_ref, color="0.85", lw=0)


def lightcurve(lc, ax=None, gti=None, label=None):
    """Plot a light-curve Dataset (``rate``/``rate_err`` or ``counts`` over time)
    as steps at bin edges, with GTI gaps shaded. Time axis is seconds from the
    first bin edge; rate in count/s. Computes the plotted variables (a lazy
    light curve is loaded). Returns the figure."""
    fig = ax.figure if ax is not None else new_figure((8, 3))
    ax = ax or fig.add_subplot()
    t_ref = float(lc["time_lo"].values[0]) if "time_lo" in lc else float(lc["time"].values[0])
    y = lc["rate"] if "rate" in lc else lc["counts"]
    x = lc["time"].values - t_ref
    ax.step(x, y.values, where="mid", label=label or y.name)
    if "rate_err" in lc:
        ax.errorbar(x, y.values, yerr=lc["rate_err"].values, fmt="none", lw=0.6, alpha=0.6)
    if gti is not None:
        from .. import gti as gtimod

        start, stop = gti if isinstance(gti, tuple) and len(gti) == 2 else gtimod.as_gti(gti, source="gti=", warn=False)
        _gti_shading(ax, np.asarray(start), np.asarray(stop), t_ref)
    ax.set_xlabel(time_label(lc, t_ref))
    ax.set_ylabel(f"{y.attrs.get('long_name', y.name)} [{y.attrs.get('units', '')}]")
    return fig


def gti_groups(start, stop, min_gap: float, max_panels: int):
    """GTIs merged across gaps shorter than ``min_gap`` [s], then across the
    shortest gaps until at most ``max_panels`` groups remain: ``[(t0, t1)]``."""
    start, stop = np.asarray(start, np.float64), np.asarray(stop, np.float64)
    groups = [[float(start[0]), float(stop[0])]]
    for a, b in zip(start[1:], stop[1:]):
        if a - groups[-1][1] < min_gap:
            groups[-1][1] = float(b)
        else:
            groups.append([float(a), float(b)])
    while len(groups) > max_panels:
        gaps = [groups[i + 1][0] - groups[i][1] for i in range(len(groups) - 1)]
        i = int(np.argmin(gaps))
        groups[i] = [groups[i][0], groups[i + 1][1]]
        del groups[i + 1]
    return [tuple(g) for g in groups]


_CURVES = (("rate", "rate_err", "total", "k"), ("bkg_rate", "bkg_rate_err", "background", "tab:red"),
           ("net_rate", "net_rate_err", "net", "tab:blue"))


def _broken_marks(axes):
    """The diagonal '//' marks of a broken axis between neighbouring panels."""
    kw = {"marker": [(-1, -1.5), (1, 1.5)], "markersize": 8, "linestyle": "none", "color": "k", "mec": "k",
          "mew": 1, "clip_on": False}
    for left, right in zip(axes[:-1], axes[1:]):
        left.spines["right"].set_visible(False)
        right.spines["left"].set_visible(False)
        right.tick_params(left=False, labelleft=False)
        left.plot([1, 1], [0, 1], transform=left.transAxes, **kw)
        right.plot([0, 0], [0, 1], transform=right.transAxes, **kw)


def broken_lightcurve(lc, *, background: bool = True, net: bool = True, min_gap: float | None = None,
                      max_panels: int = 8, figsize=(10, 3.2), title: str | None = None):
    """A light curve on broken time axes: one panel per GTI (GTIs closer than
    ``min_gap`` [s], default 5 bins, share a panel; at most ``max_panels``),
    panel widths in proportion to their duration, the gaps left out and marked
    with ``//``. The total rate is drawn in black, and when present the
    background (``bkg_rate``, red) and net rate (``net_rate``, blue), each as
    steps with error bars. Times are seconds since the first GTI start.
    Returns the Figure (computes the light curve)."""
    lc = lc.compute()
    if "gti_start" in lc and lc.sizes.get("gti", 0):
        start, stop = np.asarray(lc["gti_start"].values), np.asarray(lc["gti_stop"].values)
    else:
        good = np.asarray(lc["exposure"].values) > 0
        start, stop = lc["time_lo"].values[good][:1], lc["time_hi"].values[good][-1:]
    width = float(np.median(lc["time_hi"].values - lc["time_lo"].values))
    groups = gti_groups(start, stop, 5 * width if min_gap is None else min_gap, max_panels)
    t_ref = groups[0][0]
    spans = np.array([max(b - a, 1e-9) for a, b in groups])
    ratios = np.maximum(spans / spans.sum(), 0.04)
    fig = new_figure(figsize, layout=None)
    axes = fig.subplots(1, len(groups), sharey=True, squeeze=False, gridspec_kw={"width_ratios": ratios,
                                                                                  "wspace": 0.06})[0]
    t = lc["time"].values
    shown = [(v, e, lab, c) for v, e, lab, c in _CURVES if v in lc and (v == "rate" or
                                                                       (v == "bkg_rate" and background) or
                                                                       (v == "net_rate" and net))]
    from matplotlib.ticker import MaxNLocator

    fig.subplots_adjust(bottom=0.2)
    for i, (ax, (a, b)) in enumerate(zip(axes, groups)):
        # fewer ticks on narrow panels; no last tick before a break (its label would touch the next panel's)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=max(2, round(8 * ratios[i])),
                                               prune="upper" if i < len(groups) - 1 else None))
        sel = (t >= a) & (t < b)
        for v, e, lab, c in shown:
            y = lc[v].values[sel]
            ax.step(t[sel] - t_ref, y, where="mid", color=c, lw=0.9, label=lab)
            if e in lc:
                ax.errorbar(t[sel] - t_ref, y, yerr=lc[e].values[sel], fmt="none", ecolor=c, lw=0.5, alpha=0.5)
        ax.set_xlim(a - t_ref, b - t_ref)
    _broken_marks(list(axes))
    axes[0].set_ylabel("rate [count/s]")
    fig.supxlabel(time_label(lc, t_ref), fontsize=10, y=0.02)
    if len(shown) > 1:
        axes[-1].legend(fontsize=7, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def long_term_lightcurve(lc, *, color_by: str = "mission", variable: str | None = None, figsize=(10, 3.5),
                         title: str | None = None):
    """A long-term light curve (:func:`xcube.stitch`): rate with error bars
    against MJD (TT), one colour per value of ``color_by`` (``mission``,
    ``instrument``, ``obs_id``; ignored when the light curve lacks it).
    Bins without exposure are left out. Returns the Figure (computes ``lc``)."""
    lc = lc.compute()
    var = variable or rate_variable(lc)
    if "mjd" in lc.coords:
        x, xlabel = lc["mjd"].values, f"MJD ({lc['mjd'].attrs.get('timesys', 'TT')})"
    else:
        from ..times import times

        try:
            x, xlabel = times(lc["time"], lc, to="mjd").values, f"MJD ({lc.attrs.get('timesys', 'TT')})"
        except ValueError:  # no MJDREF
            x, xlabel = lc["time"].values / 86400.0, "time [d]"
    good = (np.asarray(lc["exposure"].values) > 0) & np.isfinite(lc[var].values)
    err = lc[f"{var}_err"].values if f"{var}_err" in lc else None
    fig = new_figure(figsize)
    ax = fig.add_subplot()
    keys = lc[color_by].values if color_by in lc.coords else np.full(lc.sizes["time"], "")
    for k in dict.fromkeys(keys[good]):
        sel = good & (keys == k)
        ax.errorbar(x[sel], lc[var].values[sel], yerr=None if err is None else err[sel], fmt="o", ms=2.5, lw=0.6,
                    label=str(k) or None)
    if len(set(keys[good])) > 1:
        ax.legend(fontsize=7, title=color_by, title_fontsize=7)
    ax.set_xlabel(xlabel)
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")  # MJD 51977.55, not 0.55 + 5.1977e4
    ax.set_ylabel(f"{var} [count/s]")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def detection_lightcurves(lcs, table, max_panels: int = 12):
    """One panel per detection: counts and expected per frame, BTI and bad frames shaded."""
    k = min(lcs.sizes["detection"], max_panels)
    fig = new_figure((8, 1.8 * max(k, 1)))
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
