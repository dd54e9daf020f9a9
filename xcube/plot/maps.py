"""Sky figures: images, one frame of a counts cube, Bayes-factor maps, and
the transient-detection summary."""
from __future__ import annotations

import numpy as np

from .base import new_figure

__all__ = ["image", "detections", "cube_frame", "bayes_map", "detection_summary"]


def image(img, ax=None, log=True, title=None, cmap="magma", label=None):
    """Show a 2-D (y, x) image DataArray with sky-pixel extents. Returns the figure."""
    from matplotlib.colors import LogNorm

    fig = ax.figure if ax is not None else new_figure((5, 5))
    ax = ax or fig.add_subplot()
    v = np.asarray(img.values, dtype=float)
    ext = None
    if "x_lo" in img.coords:
        ext = [img["x_lo"].values[0], img["x_hi"].values[-1], img["y_lo"].values[0], img["y_hi"].values[-1]]
    pos = v > 0
    norm = LogNorm(vmin=max(np.nanmin(v[pos]), 1e-3)) if log and pos.any() else None
    m = ax.imshow(np.where(pos, v, np.nan) if norm else v, origin="lower", extent=ext, norm=norm, cmap=cmap)
    fig.colorbar(m, ax=ax, shrink=0.8, label=label if label is not None else img.attrs.get("units", ""))
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


def cube_frame(cube, frame=0, *, ax=None, log=True, title=None):
    """One time frame of a (time, y, x) counts cube (``frame``: index, or a
    time [s] picked with ``sel(method="nearest")``). Computes only that frame.
    Returns the Figure."""
    if isinstance(frame, (int, np.integer)):
        sl = cube.isel(time=int(frame))
    else:
        sl = cube.sel(time=float(frame), method="nearest")
    t = float(sl["time"].values)
    width = float(sl["time_hi"].values - sl["time_lo"].values) if "time_hi" in sl.coords else float("nan")
    return image(sl.compute(), ax=ax, log=log, title=title or f"frame at t = {t:.1f} s ({width:g} s)")


def _bayes(result_or_cube, kind: str):
    """log10 B map (y, x): the maximum over time of log10 B_<kind>(counts, expected)."""
    from ..bayes import log10_bayes_eclipse, log10_bayes_peak

    if hasattr(result_or_cube, "expected") and hasattr(result_or_cube, "cube"):
        func = log10_bayes_peak if kind == "peak" else log10_bayes_eclipse
        lb = func(result_or_cube.cube, result_or_cube.expected)
    else:
        lb = result_or_cube
    return lb.max("time") if "time" in lb.dims else lb


def bayes_map(result_or_cube, kind: str = "peak", *, sigma: float = 3.0, ax=None, title=None):
    """Map of the largest log10 Bayes factor over time in each pixel, from a
    transient-search result (computed from its ``cube`` and ``expected``) or
    a log10 B DataArray ((time, y, x) or (y, x)); the ``sigma`` threshold
    (:func:`xcube.bayes.threshold`) is drawn as a contour. Returns the Figure."""
    from ..bayes import threshold

    if kind not in ("peak", "eclipse"):
        raise ValueError(f"kind={kind!r}: use 'peak' or 'eclipse'")
    m = _bayes(result_or_cube, kind).compute()
    fig = image(m, ax=ax, log=False, cmap="viridis", label=f"max log10 B_{kind}",
                title=title or f"log10 Bayes factor ({kind})")
    ax = fig.axes[0]
    thr = getattr(threshold(sigma), kind)
    if np.isfinite(thr) and np.nanmax(np.asarray(m.values, float)) > thr:
        ext = ax.images[0].get_extent()
        ax.contour(np.asarray(m.values, float), levels=[thr], colors="w", linewidths=0.8, origin="lower",
                   extent=ext)
    return fig


def _sky_pixels_per_arcsec(img) -> float | None:
    """Sky pixels (x/y column units) per arcsec, from the image's cell width
    and its WCS CDELT1 [deg per cell]; None when unknown."""
    cdelt = img.attrs.get("CDELT1")
    if cdelt is None or "x_lo" not in img.coords or not img.sizes.get("x"):
        return None
    cell = float(img["x_hi"].values[0] - img["x_lo"].values[0])
    return cell / (abs(float(cdelt)) * 3600.0) if float(cdelt) else None


def detection_summary(result, detection: int = 0, *, sigma: float | None = None, figsize=(11, 4.2)):
    """Summary of one transient detection: the summed image with all
    detections as regions (the chosen one highlighted), and its light curve
    (counts and expected counts per frame) with the bins whose log10 Bayes
    factor passes the ``sigma`` threshold (default: the search's) marked.
    Returns the Figure."""
    from matplotlib.patches import Circle

    from ..bayes import threshold

    table, lcs = result.detections, result.lightcurves
    if not len(table):
        raise ValueError(f"{getattr(result, 'run_id', 'result')}: no detections to summarise")
    row = table.iloc[int(detection)]
    fig = new_figure(figsize)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    detections(result.image, table, ax=left, title=f"detection #{row['detection']}")
    scale = _sky_pixels_per_arcsec(result.image)
    size = float(getattr(result, "params", {}).get("size_arcsec", 20.0))
    if scale:
        left.add_patch(Circle((row["x"], row["y"]), size / 2 * scale, fill=False, color="red", lw=1.2))
    else:
        left.plot([row["x"]], [row["y"]], "+", color="red", ms=14)
    one = lcs.isel(detection=int(detection))
    t_ref = float(one["time_lo"].values[0])
    t = one["time"].values - t_ref
    right.step(t, one["counts"].values, where="mid", color="k", lw=0.8, label="counts")
    right.step(t, one["expected"].values, where="mid", color="tab:orange", lw=0.8, label="expected")
    thr = threshold(sigma if sigma is not None else float(getattr(result, "params", {}).get("sigma", 3.0)))
    for var, level, color in (("log10_bayes_peak", thr.peak, "tab:red"), ("log10_bayes_eclipse", thr.eclipse,
                                                                          "tab:blue")):
        sig = np.asarray(one[var].values) > level
        if sig.any():
            right.plot(t[sig], one["counts"].values[sig], "o", color=color, ms=4,
                       label=f"{var.split('_')[-1]} > {level:.2f}")
    right.set_xlabel(f"time - {t_ref:.1f} [s]")
    right.set_ylabel("counts per frame")
    right.legend(fontsize=7)
    right.set_title(f"{row['kind']} {row.get('name', '')}  log10 B = {row['log10_bayes']:.1f}", fontsize=9)
    return fig
