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


def _source(lc) -> str:
    """The light curve's file (attrs ``source``/``path``), or "light curve"."""
    return str(lc.attrs.get("source") or lc.attrs.get("path") or "light curve")


def rate_kind(lc) -> str:
    """What ``lc["rate"]`` holds: ``"net"`` (an OGIP NET file, HDUCLAS2 =
    NET or BACKAPP = T), ``"background"`` (BKG) or ``"total"``: the attr
    ``rate_kind`` that ``read_lightcurve`` sets, else the reader's own rule
    on the attr ``hduclas2``."""
    from ..io.lightcurve_file import _rate_kind

    kind = str(lc.attrs.get("rate_kind", "") or "").strip().lower()
    if kind in ("net", "background"):
        return kind
    return _rate_kind({"HDUCLAS2": lc.attrs.get("hduclas2", "") or ""})


def standard_rates(lc):
    """``lc`` with its rates under their standard names: ``rate`` the total,
    ``bkg_rate`` the background, ``net_rate`` the net rate. A NET file's
    RATE (``rate_kind`` "net") becomes ``net_rate``, and the total is rebuilt
    as net + background (RATE + BACKV) or else COUNTS / exposure, when it
    can be; a BKG file's RATE becomes ``bkg_rate`` (as the light-curve writer
    names them: :func:`xcube.io.ogip.named_rates`)."""
    from ..io.ogip import named_rates

    kind = rate_kind(lc)
    out = named_rates(lc, kind)
    if out is lc:  # a total rate, or the standard names already
        return lc
    out = out.drop_vars([k for k in ("rate", "rate_err") if k in lc])  # (not the total: rebuilt below)
    if kind == "background":
        return out
    expo = np.asarray(lc["exposure"].values, float) if "exposure" in lc else None
    counts = np.asarray(lc["counts"].values, float) if "counts" in lc else None
    with np.errstate(divide="ignore", invalid="ignore"):
        count_err = (np.where(expo > 0, np.sqrt(counts) / expo, np.nan)
                     if counts is not None and expo is not None else None)
        if "bkg_rate" in lc:
            out["rate"] = out["net_rate"] + out["bkg_rate"]
            if count_err is not None:
                out["rate_err"] = (out["net_rate"].dims, count_err * np.ones(out["net_rate"].shape))
            elif "net_rate_err" in out and "bkg_rate_err" in out:
                out["rate_err"] = np.sqrt(np.maximum(out["net_rate_err"] ** 2 - out["bkg_rate_err"] ** 2, 0.0))
        elif count_err is not None:
            dims = lc["counts"].dims
            out["rate"] = (dims, np.where(expo > 0, counts / np.where(expo > 0, expo, 1.0), np.nan))
            out["rate_err"] = (dims, count_err)
    return out


def _bands(lc) -> list:
    """``[(label or None, one-band light curve)]``: one entry per band of a
    multi-band light curve (label: the band), else the light curve itself
    (label: its band when a single band was selected)."""
    if "band" in lc.dims:
        return [(str(b), lc.isel(band=i)) for i, b in enumerate(lc["band"].values)]
    band = lc.coords.get("band")
    return [(str(band.values) if band is not None and band.ndim == 0 else None, lc)]


def _with_band(label, band):
    return f"{label} {band}" if band and label else (band or label)


def _time_label(t_ref: float, *objs) -> str:
    """:func:`time_label` from the first of ``objs`` that knows its MJDREF (with the UTC of ``t_ref``)."""
    text = None
    for obj in objs:
        if obj is None:
            continue
        text = time_label(obj, t_ref)
        if "UTC" in text:
            return text
    return text or f"time - {t_ref:.1f} [s]"


def lightcurve(lc, ax=None, gti=None, label=None, title=None):
    """Plot a light-curve Dataset (``rate``/``rate_err`` or ``counts`` over
    time) as steps at bin edges, with GTI gaps shaded; a multi-band light
    curve gives one labelled curve per band. Time axis is seconds from the
    first bin edge; rate in count/s (a NET file's rate is labelled net).
    Computes the plotted variables (a lazy light curve is loaded). Returns
    the figure. :func:`broken_lightcurve` also draws background and net."""
    fig = ax.figure if ax is not None else new_figure((8, 3))
    ax = ax or fig.add_subplot()
    kind = rate_kind(lc)
    t_ref = float(lc["time_lo"].values[0]) if "time_lo" in lc else float(lc["time"].values[0])
    var = "rate" if "rate" in lc else "counts"
    x = lc["time"].values - t_ref
    bands = _bands(lc)
    for band, one in bands:
        y = one[var]
        base = label or (f"{kind} rate" if var == "rate" and kind != "total" else y.name)
        line, = ax.step(x, y.values, where="mid", label=_with_band(base, band) if len(bands) > 1 else base)
        if f"{var}_err" in one:
            ax.errorbar(x, y.values, yerr=one[f"{var}_err"].values, fmt="none", lw=0.6, alpha=0.6,
                        ecolor=line.get_color())
    if gti is not None:
        from .. import gti as gtimod

        start, stop = gti if isinstance(gti, tuple) and len(gti) == 2 else gtimod.as_gti(gti, source="gti=", warn=False)
        _gti_shading(ax, np.asarray(start), np.asarray(stop), t_ref)
    ax.set_xlabel(time_label(lc, t_ref))
    y = lc[var]
    name = y.attrs.get("long_name", y.name)
    if var == "rate" and kind != "total":
        name = f"{kind} {name}"
    if len(bands) == 1 and bands[0][0]:
        name = f"{name} ({bands[0][0]})"
    ax.set_ylabel(f"{name} [{y.attrs.get('units', '')}]")
    if len(bands) > 1:
        ax.legend(fontsize=7, loc="upper right")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def gti_groups(start, stop, min_gap: float, max_panels: int):
    """GTIs merged across gaps shorter than ``min_gap`` [s], then across the
    shortest gaps until at most ``max_panels`` groups remain: ``[(t0, t1)]``
    (``[]`` for no GTI). Linear in the number of GTIs (n log n for the
    ``max_panels`` cut). Eager, numpy: ``start``, ``stop`` [s], 1-D."""
    start, stop = np.asarray(start, np.float64).ravel(), np.asarray(stop, np.float64).ravel()
    if not start.size:
        return []
    end = np.maximum.accumulate(stop)  # the end of the time covered so far
    gaps = start[1:] - end[:-1]
    cut = np.flatnonzero(gaps >= min_gap)  # a new group starts after GTI i for i in cut
    if cut.size > max(int(max_panels), 1) - 1:
        keep = max(int(max_panels), 1) - 1  # keep the largest gaps (ties: the later ones, as merging the first)
        order = np.argsort(gaps[cut], kind="stable")
        cut = np.sort(cut[order[cut.size - keep:]]) if keep else cut[:0]
    first = np.concatenate([[0], cut + 1])
    last = np.concatenate([cut, [start.size - 1]])
    return [(float(start[a]), float(end[b])) for a, b in zip(first, last)]


#: panels with more bins draw the errors as a shaded band instead of a bar per bin
_MAX_ERRORBARS = 5000

_CURVES = (("rate", "rate_err", "total", "k", "-"), ("bkg_rate", "bkg_rate_err", "background", "tab:red", ":"),
           ("net_rate", "net_rate_err", "net", "tab:blue", "--"))


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


def _text_width(text: str, size: float) -> float:
    """Width [inches] of ``text`` drawn at ``size`` points in the default font."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    if not text:
        return 0.0
    w, _, _ = TextToPath().get_text_width_height_descent(text.replace("$", ""), FontProperties(size=size),
                                                         ismath=False)
    return w / 72.0


#: the narrowest panel of a broken time axis [in]: room for one upright tick label
_MIN_PANEL = 0.25
#: space between broken-axis panels, a fraction of the mean panel width
_WSPACE = 0.06


def _panel_widths(spans, floor: float):
    """Panel widths as fractions of their total (sum 1): in proportion to
    ``spans``, none below ``floor`` (the others shrink to make room; equal
    widths when ``len(spans) * floor`` is 1 or more)."""
    spans = np.asarray(spans, float)
    small = np.zeros(spans.size, bool)
    while not small.all():
        frac = np.where(small, floor, spans * (1.0 - small.sum() * floor) / spans[~small].sum())
        if not (frac[~small] < floor).any():
            return frac
        small |= frac < floor
    return np.full(spans.size, 1.0 / spans.size)


def _middle_ticks(x0: float, x1: float):
    """Round tick values inside ``[x0, x1]``: for 1, 2, ... 20 intervals
    (MaxNLocator), those in range, the nearest the middle first."""
    from matplotlib.ticker import MaxNLocator

    for n in range(1, 21):
        ticks = [t for t in MaxNLocator(nbins=n).tick_values(x0, x1) if x0 <= t <= x1]
        yield sorted(ticks, key=lambda t: abs(t - 0.5 * (x0 + x1)))


def _panel_ticks(fig, axes, nbins) -> float:
    """x ticks of broken-axis panels whose labels do not overlap: on each
    panel the most ticks (at most ``nbins[i]`` intervals) whose labels fit in
    the panel, a label at an inner edge reaching at most half-way into the
    space between panels. A panel too narrow for one level label gets one
    label turned upright at 0.8 of the size (panels of ``_MIN_PANEL`` inches
    have room for it), so every panel names a time. Returns the length [in]
    of the longest upright label (0 when there is none)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator, ScalarFormatter

    size = FontProperties(size=axes[0].xaxis.get_ticklabels()[0].get_fontsize()
                          if axes[0].xaxis.get_ticklabels() else 10).get_size_in_points()
    small = 0.8 * size
    figw = fig.get_figwidth()
    boxes = [ax.get_position() for ax in axes]
    pad = 0.3 * size / 72.0  # blank space between neighbouring labels [in]
    upright = 0.0
    for i, ax in enumerate(axes):
        x0, x1 = ax.get_xlim()
        left, right = boxes[i].x0 * figw, boxes[i].x1 * figw
        lim_l = -np.inf if i == 0 else 0.5 * (boxes[i - 1].x1 + boxes[i].x0) * figw
        lim_r = np.inf if i == len(axes) - 1 else 0.5 * (boxes[i].x1 + boxes[i + 1].x0) * figw
        fmt = ScalarFormatter(useOffset=False)
        ax.xaxis.set_major_formatter(fmt)

        def place(t):
            return left + (t - x0) / (x1 - x0) * (right - left) if x1 > x0 else left

        def fitting(ticks):
            """The ticks whose labels stay inside the panel's room, or [] when those overlap."""
            fmt.set_locs(ticks)
            pos = [place(t) for t in ticks]
            wid = [_text_width(fmt(t), size) for t in ticks]
            keep = [k for k, (p, w) in enumerate(zip(pos, wid)) if p - w / 2 >= lim_l and p + w / 2 <= lim_r]
            apart = all(pos[b] - pos[a] >= (wid[a] + wid[b]) / 2 + pad for a, b in zip(keep[:-1], keep[1:]))
            return [ticks[k] for k in keep] if apart else []

        chosen = []
        for n in range(max(int(nbins[i]), 1), 0, -1):
            cand = [t for t in MaxNLocator(nbins=n).tick_values(x0, x1) if x0 <= t <= x1]
            if len(cand) > 1 and i < len(axes) - 1 and np.isclose(cand[-1], x1):
                cand = cand[:-1]  # no tick at a break
            chosen = fitting(cand) if cand else []
            if chosen:
                break
        if not chosen:  # one level label, the one nearest the middle, when it fits
            mid = next((c[:1] for c in _middle_ticks(x0, x1) if c), [])
            chosen = fitting(mid) if mid else []
        if not chosen:  # one upright label, narrower: the first round tick whose label fits the room
            half = 0.5 * 1.15 * small / 72.0
            chosen = next(([t] for c in _middle_ticks(x0, x1) for t in c
                           if place(t) - half >= lim_l and place(t) + half <= lim_r), [])
            if chosen:
                fmt.set_locs(chosen)
                ax.tick_params(axis="x", labelrotation=90, labelsize=small)
                upright = max(upright, _text_width(fmt(chosen[0]), small))
        ax.xaxis.set_major_locator(FixedLocator(chosen) if chosen else NullLocator())
    return upright


def broken_lightcurve(lc, *, background: bool = True, net: bool = True, min_gap: float | None = None,
                      max_panels: int = 8, figsize=(10, 3.2), title: str | None = None):
    """A light curve on broken time axes: one panel per GTI (GTIs closer than
    ``min_gap`` [s], default 5 bins, share a panel; at most ``max_panels``,
    and no more than fit the figure at 0.25 in each, 29 in the default 10 in
    width: the shortest gaps are closed first), panel widths in proportion
    to their duration but none narrower than 0.25 in, the gaps left out and
    marked with ``//``. Every panel names at least one time: level tick
    labels where they fit, else one label turned upright at a smaller size
    (the bottom margin grows to hold it). The total rate is drawn in black,
    and when present the background (``bkg_rate``, red) and net rate
    (``net_rate``, blue), each as steps with error bars (a shaded band on
    panels of more than 5000 bins). A NET file's RATE is drawn as the net
    rate (the total only when it can be rebuilt: :func:`standard_rates`). A multi-band
    light curve gives one curve per band (colour) and rate (line style),
    labelled with the band. Every bin that overlaps a panel's time range is
    drawn (a bin across a GTI edge too; the panel widens to it). Times are
    seconds since the first GTI start. ``ValueError`` naming the file when
    there is no good time (no GTI table and no bin with exposure). Returns
    the Figure (computes the light curve). Eager: a lazy light curve is
    computed here."""
    lc = standard_rates(lc.compute())
    if "gti_start" in lc and lc.sizes.get("gti", 0):
        start, stop = np.asarray(lc["gti_start"].values), np.asarray(lc["gti_stop"].values)
    else:
        good = np.asarray(lc["exposure"].values) > 0 if "exposure" in lc else np.zeros(lc.sizes["time"], bool)
        if not good.any():
            raise ValueError(f"{_source(lc)}: no good time to plot (no GTI table and no bin with exposure)")
        start, stop = lc["time_lo"].values[good][:1], lc["time_hi"].values[good][-1:]
    lo_all, hi_all = np.asarray(lc["time_lo"].values, float), np.asarray(lc["time_hi"].values, float)
    width = float(np.median(hi_all - lo_all)) if lo_all.size else 0.0
    from matplotlib import rcParams

    # panels no narrower than _MIN_PANEL: at most as many as fit the figure's width
    room = figsize[0] * (rcParams["figure.subplot.right"] - rcParams["figure.subplot.left"])  # [in]
    fit = max(int((room / _MIN_PANEL + _WSPACE) / (1 + _WSPACE)), 1)
    groups = gti_groups(start, stop, 5 * width if min_gap is None else min_gap, min(max_panels, fit))
    t_ref = groups[0][0]
    t = lc["time"].values
    bands = _bands(lc)
    shown = [(v, e, lab, c, ls) for v, e, lab, c, ls in _CURVES if v in lc and (
        v == "rate" or (v == "bkg_rate" and background) or (v == "net_rate" and net))]
    # the bins of each panel: those overlapping its time range; the panel widens to the bins with data
    finite = np.zeros(t.shape, bool)
    for v, *_ in shown:
        vals = np.asarray(lc[v].values, float)
        finite |= np.isfinite(vals).reshape(-1, t.size).any(axis=0)
    sels, limits = [], []
    for a, b in groups:
        sel = (hi_all > a) & (lo_all < b)
        data = sel & finite
        sels.append(sel)
        limits.append((min(a, lo_all[data].min()) if data.any() else a, max(b, hi_all[data].max()) if data.any()
                       else b))
    spans = np.array([max(b - a, 1e-9) for a, b in limits])
    n = len(groups)
    ratios = _panel_widths(spans, _MIN_PANEL * (n + (n - 1) * _WSPACE) / (n * room))
    fig = new_figure(figsize, layout=None)
    axes = fig.subplots(1, n, sharey=True, squeeze=False, gridspec_kw={"width_ratios": ratios,
                                                                       "wspace": _WSPACE})[0]
    fig.subplots_adjust(bottom=0.2)
    multi = len(bands) > 1
    for i, (ax, sel, (a, b)) in enumerate(zip(axes, sels, limits)):
        for j, (band, one) in enumerate(bands):
            for v, e, lab, c, ls in shown:
                colour = f"C{j % 10}" if multi else c
                y = np.asarray(one[v].values)[sel]
                ax.step(t[sel] - t_ref, y, where="mid", color=colour, ls=ls if multi else "-", lw=0.9,
                        label=_with_band(lab, band) if (multi or band) else lab)
                if e in one:
                    err = np.asarray(one[e].values)[sel]
                    if y.size > _MAX_ERRORBARS:  # one band, not a line per bin (fast on 10^5-10^6 bins)
                        ax.fill_between(t[sel] - t_ref, y - err, y + err, step="mid", color=colour, alpha=0.25,
                                        lw=0)
                    else:
                        ax.errorbar(t[sel] - t_ref, y, yerr=err, fmt="none", ecolor=colour, lw=0.5, alpha=0.5)
        ax.set_xlim(a - t_ref, b - t_ref)
    _broken_marks(list(axes))
    upright = _panel_ticks(fig, list(axes), [max(2, round(8 * r)) for r in ratios])
    if upright:  # room below the upright labels for the axis label: ticks, labels, axis label [in]
        need = 7 / 72 + upright + 0.05 + 0.02 * figsize[1] + 1.2 * 10 / 72
        fig.subplots_adjust(bottom=max(0.2, need / figsize[1]))
    ylabel = "count rate [count/s]"
    if len(shown) == 1 and shown[0][2] != "total":
        ylabel = f"{shown[0][2]} {ylabel}"
    if len(bands) == 1 and bands[0][0]:
        ylabel = f"{ylabel[:-len(' [count/s]')]} ({bands[0][0]}) [count/s]"
    axes[0].set_ylabel(ylabel)
    fig.supxlabel(time_label(lc, t_ref), fontsize=10, y=0.02)
    if len(shown) > 1 or multi or (shown and shown[0][2] != "total"):
        axes[-1].legend(fontsize=7, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def long_term_lightcurve(lc, *, color_by: str = "mission", variable: str | None = None, figsize=(10, 3.5),
                         title: str | None = None):
    """A long-term light curve (:func:`xcube.stitch`): rate with error bars
    against MJD (TT), one colour per value of ``color_by`` (``mission``,
    ``instrument``, ``obs_id``; ignored when the light curve lacks it); a
    multi-band light curve gives one series per band (and value), labelled
    with the band. Bins without exposure are left out. Returns the Figure
    (computes ``lc``). Eager: a lazy light curve is computed here."""
    lc = standard_rates(lc.compute())
    var = variable or rate_variable(lc)
    if "mjd" in lc.coords:
        x, xlabel = lc["mjd"].values, f"MJD ({lc['mjd'].attrs.get('timesys', 'TT')})"
    else:
        from ..times import times

        try:
            x, xlabel = times(lc["time"], lc, to="mjd").values, f"MJD ({lc.attrs.get('timesys', 'TT')})"
        except ValueError:  # no MJDREF
            x, xlabel = lc["time"].values / 86400.0, "time [d]"
    fig = new_figure(figsize)
    ax = fig.add_subplot()
    keys = lc[color_by].values if color_by in lc.coords else np.full(lc.sizes["time"], "")
    expo = np.asarray(lc["exposure"].values) > 0
    bands = _bands(lc)
    markers = "os^vDP*X"
    labels = set()
    for j, (band, one) in enumerate(bands):
        good = expo & np.isfinite(one[var].values)
        err = one[f"{var}_err"].values if f"{var}_err" in one else None
        for k in dict.fromkeys(keys[good]):
            sel = good & (keys == k)
            lab = " ".join(s for s in (str(k), band if len(bands) > 1 else "") if s) or None
            labels.add(lab)
            ax.errorbar(x[sel], one[var].values[sel], yerr=None if err is None else err[sel],
                        fmt=markers[j % len(markers)], ms=2.5, lw=0.6, label=lab)
    if len(labels - {None}) > 1:
        ax.legend(fontsize=7, title=color_by if color_by in lc.coords else None, title_fontsize=7)
    ax.set_xlabel(xlabel)
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")  # MJD 51977.55, not 0.55 + 5.1977e4
    band = f" ({bands[0][0]})" if len(bands) == 1 and bands[0][0] else ""
    ax.set_ylabel(f"{var}{band} [count/s]")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def detection_lightcurves(lcs, table, max_panels: int = 12):
    """One panel per detection: counts and expected per frame, BTI and bad
    frames shaded. ``table`` holds the rows of ``lcs`` (with ``shifts``,
    the unshifted grid's table ``result.grids["0"].detections``). The time
    axis gives T0 in UTC when ``table`` or ``lcs`` know their MJDREF. Eager:
    reads the values of ``lcs`` (``(detection, time)``, counts [count], times
    [s]), computing them when lazy."""
    k = min(lcs.sizes["detection"], len(table), max_panels)
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
            f = lcs[flag].values[i] if lcs[flag].ndim > 1 else lcs[flag].values
            if f.any():
                lo, hi = lcs["time_lo"].values - t_ref, lcs["time_hi"].values - t_ref
                for j in np.flatnonzero(f):
                    ax.axvspan(lo[j], hi[j], color=color, alpha=0.2, lw=0)
        row = table.iloc[i]
        ax.set_ylabel("counts")
        ax.set_title(f"#{row['detection']} {row['kind']} {row['name']}  log10 B = {row['log10_bayes']:.1f}", fontsize=8)
    axes[0].legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel(_time_label(t_ref, table, lcs))
    return fig
