"""Frame-to-frame offsets relative to a base frame.

Convention: a star at base-frame pixel ``(x, y)`` sits at ``(x + offset_x,
y + offset_y)`` in the frame. Two ways to a coarse offset:

* ``"xcorr"`` - the peak of the FFT cross-correlation of sky-subtracted,
  clipped images (binned to at most ~1024 px), searched within
  ``max_offset`` pixels;
* ``"stars"`` - voting over the pairwise differences between the frame's
  and the base frame's brightest stars (photutils star finding).

Either is then refined to a small fraction of a pixel with the median
centroid shift of the base frame's bright stars. :func:`frame_offsets` does
this lazily over a cube, per frame chunk.
"""
from __future__ import annotations

import logging

import numpy as np
import xarray as xr

log = logging.getLogger("xcube.frames")

__all__ = ["METHODS", "centroids", "reference", "xcorr_offset", "match_offset", "refine_offset", "frame_offset",
           "frame_offsets"]

METHODS = ("xcorr", "stars")


def centroids(image: np.ndarray, x, y, half: int = 5, iterations: int = 3,
              min_snr: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """Intensity-weighted centroids [px] in boxes of ``2 half + 1`` pixels
    around ``x``, ``y`` (vectorised; boxes re-centred each iteration). Pixels
    count above the box-edge median plus 3 robust sigmas. NaN where a box
    leaves the frame or its peak is less than ``min_snr`` sigmas above the
    edge level (no star there). ``image`` is 2-D ``(y, x)``; ``x``, ``y``
    [px, 0-based pixel centres] are the starting positions, arrays of one
    shape. Returns ``(x, y)``, two float64 numpy arrays of that shape.
    Eager."""
    ny, nx = image.shape
    cx, cy = np.asarray(x, float).copy(), np.asarray(y, float).copy()
    d = np.arange(-half, half + 1)
    for _ in range(iterations):
        ix, iy = np.rint(np.nan_to_num(cx, nan=-1e9)).astype(np.int64), np.rint(np.nan_to_num(cy, nan=-1e9)).astype(
            np.int64)
        ok = (ix - half >= 0) & (iy - half >= 0) & (ix + half < nx) & (iy + half < ny)
        if not ok.any():
            return np.full(cx.shape, np.nan), np.full(cy.shape, np.nan)
        cut = image[iy[ok, None, None] + d[None, :, None], ix[ok, None, None] + d[None, None, :]].astype(np.float64)
        edge = np.concatenate([cut[:, 0, :], cut[:, -1, :], cut[:, 1:-1, 0], cut[:, 1:-1, -1]], axis=1)
        level = np.nanmedian(edge, axis=1)
        sigma = 1.4826 * np.nanmedian(np.abs(edge - level[:, None]), axis=1)
        w = cut - (level + 3.0 * sigma)[:, None, None]
        w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
        total = w.sum(axis=(1, 2))
        total[np.nanmax(cut, axis=(1, 2)) < level + min_snr * sigma] = 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            nx_c = ix[ok] + (w.sum(axis=1) * d).sum(axis=1) / total
            ny_c = iy[ok] + (w.sum(axis=2) * d).sum(axis=1) / total
        cx[:], cy[:] = np.nan, np.nan
        cx[ok], cy[ok] = np.where(total > 0, nx_c, np.nan), np.where(total > 0, ny_c, np.nan)
    return cx, cy


def _binned(image: np.ndarray, factor: int) -> np.ndarray:
    ny, nx = (s // factor * factor for s in image.shape)
    a = np.nan_to_num(np.asarray(image[:ny, :nx], np.float32), nan=0.0)
    return a.reshape(ny // factor, factor, nx // factor, factor).mean(axis=(1, 3)) if factor > 1 else a


def _clipped(image: np.ndarray) -> np.ndarray:
    """Sky-subtracted image with noise and the brightest cores clipped (for correlation)."""
    sub = image[::4, ::4]
    sky = float(np.median(sub))
    noise = 1.4826 * float(np.median(np.abs(sub - sky))) or 1.0
    return np.clip(image - sky - 2.0 * noise, 0.0, 50.0 * noise)


def reference(base: np.ndarray, max_offset: float = 250.0) -> dict:
    """What :func:`xcorr_offset` needs from the base frame (computed once):
    the binning factor, the binned image's shape and FFT."""
    factor = max(1, int(np.ceil(max(base.shape) / 1024)))
    img = _clipped(_binned(base, factor))
    return {"factor": factor, "shape": img.shape, "fft": np.conj(np.fft.rfft2(img)), "max_offset": float(max_offset)}


def _subpixel(c: np.ndarray, iy: int, ix: int) -> tuple[float, float]:
    """Peak position refined by a Gaussian (log-parabola) through 3 points per axis."""
    ny, nx = c.shape

    def vertex(a, b, d):
        a, b, d = (np.log(max(v, 1e-30)) for v in (a, b, d))
        den = a - 2 * b + d
        return 0.0 if den >= 0 else float(np.clip(0.5 * (a - d) / den, -0.5, 0.5))

    dx = vertex(c[iy, (ix - 1) % nx], c[iy, ix], c[iy, (ix + 1) % nx])
    dy = vertex(c[(iy - 1) % ny, ix], c[iy, ix], c[(iy + 1) % ny, ix])
    return dy, dx


def xcorr_offset(image: np.ndarray, ref: dict) -> tuple[float, float]:
    """Coarse (offset_x, offset_y) [px] of ``image`` relative to the base
    frame of ``ref`` (:func:`reference`): the cross-correlation peak within
    ``max_offset`` pixels; NaN when the correlation is flat."""
    f = ref["factor"]
    img = _clipped(_binned(image, f))
    if img.shape != ref["shape"]:
        raise ValueError(f"frame is {image.shape}, the base frame differs; align frames of one camera mode")
    c = np.fft.irfft2(np.fft.rfft2(img) * ref["fft"], s=img.shape)
    ny, nx = c.shape
    lim = min(ref["max_offset"] / f, ny // 2 - 1, nx // 2 - 1)
    sy = np.fft.fftfreq(ny, 1.0 / ny)
    sx = np.fft.fftfreq(nx, 1.0 / nx)
    window = (np.abs(sy)[:, None] <= lim) & (np.abs(sx)[None, :] <= lim)
    c = np.where(window, c, -np.inf)
    iy, ix = np.unravel_index(np.argmax(c), c.shape)
    if not np.isfinite(c[iy, ix]) or c[iy, ix] <= 0:
        return float("nan"), float("nan")
    dy, dx = _subpixel(np.where(np.isfinite(c), c, 0.0), iy, ix)
    return (sx[ix] + dx) * f, (sy[iy] + dy) * f


def match_offset(image: np.ndarray, base_x, base_y, fwhm: float, max_offset: float = 250.0, n: int = 40,
                 threshold: float = 5.0) -> tuple[float, float]:
    """Coarse (offset_x, offset_y) [px] by star-list matching: the frame's
    ``n`` brightest stars against the base list (brightest first); the
    densest 3-px cell of all pairwise differences within ``max_offset``
    wins. NaN when fewer than 3 pairs agree."""
    from .photometry import find_stars

    stars, _ = find_stars(image, fwhm=fwhm, threshold=threshold, max_stars=n)
    if len(stars) < 3:
        return float("nan"), float("nan")
    dx = (stars["x"].to_numpy()[:, None] - np.asarray(base_x)[None, :n]).ravel()
    dy = (stars["y"].to_numpy()[:, None] - np.asarray(base_y)[None, :n]).ravel()
    near = (np.abs(dx) <= max_offset) & (np.abs(dy) <= max_offset)
    dx, dy = dx[near], dy[near]
    edges = np.arange(-max_offset - 1.5, max_offset + 3.0, 3.0)
    hist, _, _ = np.histogram2d(dx, dy, bins=[edges, edges])
    i, j = np.unravel_index(np.argmax(hist), hist.shape)
    cx, cy = edges[i] + 1.5, edges[j] + 1.5
    votes = (np.abs(dx - cx) <= 3.0) & (np.abs(dy - cy) <= 3.0)
    if votes.sum() < 3:
        return float("nan"), float("nan")
    return float(np.median(dx[votes])), float(np.median(dy[votes]))


def refine_offset(image: np.ndarray, base_cx, base_cy, coarse, half: int = 5) -> tuple[float, float, int]:
    """(offset_x, offset_y, n) refined with the centroid shifts of the bright
    stars at ``base_cx``, ``base_cy`` (their centroids in the base frame):
    the median shift of the stars that agree within 3 robust sigmas.

    The offset is rejected (NaN, n = 0) when fewer than 3 stars, or fewer
    than 30 % of the stars that fall inside the frame, agree: the coarse
    offset was then wrong. With fewer than 3 reference stars inside the
    frame the coarse offset is returned unchanged with n = 0."""
    ox, oy = coarse
    if not (np.isfinite(ox) and np.isfinite(oy)):
        return float("nan"), float("nan"), 0
    bx, by = np.asarray(base_cx, float), np.asarray(base_cy, float)
    for _ in range(2):
        px, py = bx + ox, by + oy
        usable = int(((px >= half) & (py >= half) & (px < image.shape[1] - half) & (py < image.shape[0] - half)).sum())
        if usable < 3:
            return float(ox), float(oy), 0
        fx, fy = centroids(image, px, py, half=half)
        sx, sy = fx - bx, fy - by
        good = np.isfinite(sx) & np.isfinite(sy) & (np.abs(sx - ox) < half) & (np.abs(sy - oy) < half)
        if good.sum() < max(3, 0.3 * usable):
            return float("nan"), float("nan"), 0
        mx, my = np.median(sx[good]), np.median(sy[good])
        spread = 1.4826 * np.median(np.hypot(sx[good] - mx, sy[good] - my)) + 0.05
        agree = good & (np.hypot(sx - mx, sy - my) <= 3 * spread)
        if agree.sum() < max(3, 0.3 * usable):
            return float("nan"), float("nan"), 0
        ox, oy = float(np.median(sx[agree])), float(np.median(sy[agree]))
    return ox, oy, int(agree.sum())


def frame_offset(image, ref, base_cx, base_cy, method="xcorr", fwhm=4.0, half=5) -> tuple[float, float, int]:
    """One frame's refined (offset_x, offset_y, n_stars) by ``method``."""
    if method == "xcorr":
        coarse = xcorr_offset(image, ref)
    elif method == "stars":
        coarse = match_offset(image, base_cx, base_cy, fwhm, ref["max_offset"])
    else:
        raise ValueError(f"offset_method={method!r}: use one of {METHODS}")
    ox, oy, n = refine_offset(image, base_cx, base_cy, coarse, half=half)
    if np.isfinite(ox) and max(abs(ox), abs(oy)) > ref["max_offset"]:
        return float("nan"), float("nan"), 0
    return ox, oy, n


def _offsets_block(block, ref, base, method, fwhm, half):
    out = np.full((len(block), 3), np.nan)
    for i, image in enumerate(block):
        out[i] = frame_offset(image, ref, base[0], base[1], method, fwhm, half)
    return {"offsets": out}


def frame_offsets(cube: xr.DataArray, base_image: np.ndarray, base_x, base_y, method: str = "xcorr",
                  max_offset: float = 250.0, fwhm: float = 4.0, n_ref: int = 30) -> xr.Dataset:
    """Offsets of every frame of ``cube`` relative to ``base_image`` (lazy, per frame chunk).

    ``base_x``, ``base_y``: the base frame's stars, brightest first (the
    first ``n_ref`` refine the offsets); ``method``: ``"xcorr"`` or
    ``"stars"``; ``max_offset`` [px]: larger shifts count as failures.
    Returns a Dataset over ``frame`` with ``offset_x``, ``offset_y`` [px]
    (NaN where alignment failed) and ``n_aligned`` (stars used to refine;
    0: coarse offset only).
    """
    from .blocks import map_frames, shared

    if method not in METHODS:
        raise ValueError(f"offset_method={method!r}: use one of {METHODS}")
    if cube.shape[1:] != base_image.shape:
        raise ValueError(f"base frame is {base_image.shape}, frames are {cube.shape[1:]}; use a base frame of the "
                         "same camera mode and border_cut")
    half = int(np.clip(np.ceil(1.5 * fwhm), 3, 15))
    bx, by = centroids(base_image, np.asarray(base_x, float)[:n_ref], np.asarray(base_y, float)[:n_ref], half=half)
    ok = np.isfinite(bx) & np.isfinite(by)
    if ok.sum() < 3:
        log.warning("base frame: only %d stars for refining offsets; offsets stay coarse", ok.sum())
    res = map_frames(_offsets_block, cube.data, None, {"offsets": ((3,), np.float64)},
                     ref=shared(reference(base_image, max_offset)), base=shared((bx[ok], by[ok])), method=method,
                     fwhm=float(fwhm), half=half)["offsets"]
    coords = {k: v for k, v in cube.coords.items() if v.dims == ("frame",)}
    ds = xr.Dataset({"offset_x": ("frame", res[:, 0]), "offset_y": ("frame", res[:, 1]),
                     "n_aligned": ("frame", res[:, 2])}, coords=coords)
    for k in ("offset_x", "offset_y"):
        ds[k].attrs.update(units="pixel", description="frame pixel = base pixel + offset")
    ds.attrs.update(method=method, max_offset=float(max_offset))
    return ds
