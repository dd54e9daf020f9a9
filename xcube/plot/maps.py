"""Sky figures: images, one frame of a counts cube, Bayes-factor maps, and
the transient-detection summary."""
from __future__ import annotations

import numpy as np

from .base import new_figure

__all__ = ["image", "detections", "cube_frame", "bayes_map", "detection_summary", "to_axes"]


def _sky_wcs(img):
    """The image's celestial WCS (``xcube.binning.cube_wcs``), or None."""
    from ..binning import cube_wcs

    if not str(img.attrs.get("CTYPE1", "")).upper().startswith("RA"):
        return None
    try:
        return cube_wcs(img)
    except ValueError:
        return None


def _dark_cmap(cmap):
    """``cmap`` (name or Colormap) drawing empty (masked) pixels in its darkest colour."""
    from matplotlib import colormaps

    cm = colormaps[cmap] if isinstance(cmap, str) else cmap
    return cm.with_extremes(bad=cm(0.0))


def to_axes(ax, img, x, y):
    """Sky pixel positions ``x``, ``y`` (event-file X/Y) in the data
    coordinates of ``ax`` showing ``img``: image pixels (0-based) on RA/Dec
    axes (:func:`image` with a WCS), the sky pixels themselves otherwise.
    Eager, numpy: ``x``, ``y`` [sky pixels] of one shape."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if not hasattr(ax, "wcs") or "x_lo" not in img.coords:
        return x, y
    wx = float(img["x_hi"].values[0] - img["x_lo"].values[0])
    wy = float(img["y_hi"].values[0] - img["y_lo"].values[0])
    return (x - float(img["x_lo"].values[0])) / wx - 0.5, (y - float(img["y_lo"].values[0])) / wy - 0.5


def image(img, ax=None, log=True, title=None, cmap="magma", label=None, wcs: bool = True):
    """Show a 2-D (y, x) image DataArray. With ``wcs`` and an image WCS
    (attrs ``CTYPEn``... as :func:`xcube.image` makes them) the axes are RA
    and Dec (astropy WCSAxes; give no ``ax``, or one made with
    ``projection=``); otherwise sky-pixel extents (from ``x_lo``... coordinates;
    without them the axes are image pixel indices, and labelled so). On a ``log`` scale, empty
    pixels are drawn in the colour map's darkest colour. Use :func:`to_axes`
    to overlay sky X/Y positions. Computes the image (``img.values``).
    Returns the figure. Eager."""
    from matplotlib.colors import LogNorm

    sky = _sky_wcs(img) if wcs and (ax is None or hasattr(ax, "wcs")) else None
    fig = ax.figure if ax is not None else new_figure((5, 5))
    ax = ax or (fig.add_subplot(projection=sky) if sky is not None else fig.add_subplot())
    v = np.asarray(img.values, dtype=float)
    ext = None
    if "x_lo" in img.coords and sky is None:
        ext = [img["x_lo"].values[0], img["x_hi"].values[-1], img["y_lo"].values[0], img["y_hi"].values[-1]]
    pos = v > 0
    norm = LogNorm(vmin=max(np.nanmin(v[pos]), 1e-3), vmax=np.nanmax(v[pos])) if log and pos.any() else None
    shown = np.ma.masked_where(~pos, v) if norm else v
    m = ax.imshow(shown, origin="lower", extent=ext, norm=norm, cmap=_dark_cmap(cmap), interpolation="nearest")
    fig.colorbar(m, ax=ax, shrink=0.8, label=label if label is not None else img.attrs.get("units", ""))
    if sky is not None:
        frame = str(img.attrs.get("RADESYS", "")).strip()
        ax.set_xlabel(f"RA ({frame})" if frame else "RA")
        ax.set_ylabel(f"Dec ({frame})" if frame else "Dec")
    else:
        unit = "sky pixel" if ext is not None else "image pixel"
        ax.set_xlabel(f"x [{unit}]")
        ax.set_ylabel(f"y [{unit}]")
    if title:
        ax.set_title(title)
    return fig


def detections(img, table, ax=None, title=None):
    """The summed image with detections marked (peaks as circles, eclipses as
    squares). Eager: computes the image (``image``); ``table`` is an in-memory
    detection table with ``x``/``y`` [sky pixels]."""
    fig = image(img, ax=ax, title=title)
    ax = fig.axes[0]
    for kind, marker, color in (("peak", "o", "cyan"), ("eclipse", "s", "lime")):
        t = table[table["kind"] == kind] if len(table) else table
        if len(t):
            px, py = to_axes(ax, img, t["x"], t["y"])
            ax.scatter(px, py, s=120, marker=marker, facecolors="none", edgecolors=color, label=kind)
            for (_, r), a, b in zip(t.iterrows(), px, py):
                ax.annotate(str(r["detection"]), (a, b), color=color, fontsize=8,
                            xytext=(6, 6), textcoords="offset points")
    if len(table):
        ax.legend(loc="upper right", fontsize=8)
    return fig


def cube_frame(cube, frame=0, *, ax=None, log=True, title=None):
    """One time frame of a (time, y, x) counts cube (``frame``: index, or a
    time [s] picked with ``sel(method="nearest")``). Computes only that frame.
    Returns the Figure. Eager for that frame only; the rest of a lazy cube is
    not computed."""
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
    (:func:`xcube.bayes.threshold`) is drawn as a contour. Returns the Figure.
    Eager: the (y, x) map is computed here (from a lazy cube: one pass over
    it)."""
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


def _detection_lightcurve(result, row, i: int):
    """The light curve of detection row ``row`` (``i``-th of the table): with
    ``shifts``, from its own grid (columns ``grid``, ``grid_detection``);
    None when the result has no light curve for it."""
    grids = getattr(result, "grids", None) or {}
    lcs, j = result.lightcurves, i
    if "grid" in row.index and "grid_detection" in row.index and grids:
        g = grids.get(str(row["grid"]))
        if g is None:
            return None
        lcs, j = g.lightcurves, int(row["grid_detection"])
        own = g.detections
        if "detection" in own and len(own) and (own["detection"] == j).any():
            j = int(np.flatnonzero(own["detection"].to_numpy() == j)[0])
    if lcs is None or "detection" not in lcs.dims or not 0 <= j < lcs.sizes["detection"]:
        return None
    return lcs.isel(detection=j)


def detection_summary(result, detection: int = 0, *, sigma: float | None = None, figsize=(11, 4.2)):
    """Summary of one transient detection: the summed image with all
    detections as regions (the chosen one highlighted), and its light curve
    (counts and expected counts per frame) with the bins whose log10 Bayes
    factor passes the ``sigma`` threshold (default: the search's) marked.
    Returns the Figure. Eager: computes the summed image and reads the
    detection's light curve."""
    from matplotlib.patches import Circle

    from ..bayes import threshold

    table = result.detections
    if not len(table):
        raise ValueError(f"{getattr(result, 'run_id', 'result')}: no detections to summarise")
    row = table.iloc[int(detection)]
    fig = new_figure(figsize)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    detections(result.image, table, ax=left, title=f"detection #{row['detection']}")
    scale = _sky_pixels_per_arcsec(result.image)
    size = float(getattr(result, "params", {}).get("size_arcsec", 20.0))
    (px,), (py,) = to_axes(left, result.image, [row["x"]], [row["y"]])
    if scale:
        radius = size / 2 * scale
        if hasattr(left, "wcs"):  # in image pixels
            radius /= float(result.image["x_hi"].values[0] - result.image["x_lo"].values[0])
        left.add_patch(Circle((px, py), radius, fill=False, color="red", lw=1.2))
    else:
        left.plot([px], [py], "+", color="red", ms=14)
    one = _detection_lightcurve(result, row, int(detection))
    right.set_title(f"{row['kind']} {row.get('name', '')}  log10 B = {row['log10_bayes']:.1f}", fontsize=9)
    if one is None:
        grid = f" of grid {row['grid']!r}" if "grid" in row.index else ""
        right.text(0.5, 0.5, f"no light curve{grid} for detection #{row['detection']}", ha="center",
                   va="center", transform=right.transAxes)
        right.set_axis_off()
        return fig
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
    from .lightcurves import _time_label

    right.set_xlabel(_time_label(t_ref, table, one, result.image))
    right.set_ylabel("counts per frame")
    right.legend(fontsize=7)
    return fig
