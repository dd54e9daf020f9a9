"""Frame-to-frame rotation and offsets relative to a base frame.

Convention (:mod:`xcube.frames.geometry`): a star at base-frame pixel
``(x, y)`` sits at :func:`~xcube.frames.geometry.transform` ``(x, y)`` in
the frame: rotated by ``rotation`` [deg] about the frame centre ``((nx - 1)
/ 2, (ny - 1) / 2)``, then shifted by ``(offset_x, offset_y)``; without
rotation, ``(x + offset_x, y + offset_y)``. Two ways to a coarse offset:

* ``"xcorr"`` - the peak of the FFT cross-correlation of sky-subtracted,
  clipped images (binned to at most ~1024 px), searched within
  ``max_offset`` pixels;
* ``"stars"`` - voting over the pairwise differences between the frame's
  and the base frame's brightest stars (photutils star finding).

Either is then refined to a small fraction of a pixel by fitting a rotation
+ shift to the centroids of the base frame's bright stars
(:func:`refine_offset`); a frame is also tried rotated by 180 deg (meridian
flip, :func:`frame_transform`). :func:`frame_offsets` does this lazily over
a cube, per frame chunk.
"""
from __future__ import annotations

import logging

import numpy as np
import xarray as xr

from .geometry import fit_transform, rotation_centre, transform

log = logging.getLogger("xcube.frames")

__all__ = ["METHODS", "ALIGN_VARS", "centroids", "reference", "xcorr_offset", "match_offset", "rotation_centre",
           "transform", "fit_transform", "refine_offset", "frame_transform", "frame_offsets"]

METHODS = ("xcorr", "stars")
#: per-frame results of :func:`frame_offsets`, in the order of :func:`frame_transform`
ALIGN_VARS = ("offset_x", "offset_y", "rotation", "n_aligned", "n_expected", "align_rms")


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
    the binning factor, the binned image's shape and FFT. Eager, numpy:
    ``base`` is a 2-D ``(ny, nx)`` image; ``max_offset`` [px]."""
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
    ``max_offset`` pixels; NaN when the correlation is flat. Eager, numpy:
    ``image`` is a 2-D ``(ny, nx)`` frame of the base frame's shape."""
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
    wins. NaN when fewer than 3 pairs agree. Eager, numpy: ``image`` 2-D ``(ny,
    nx)``; ``base_x``, ``base_y`` [px] 1-D; ``fwhm`` [px]."""
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


MIN_AGREE = 0.3  #: smallest fraction of the reference stars expected in a frame that must fit its transform


def refine_offset(image: np.ndarray, base_cx, base_cy, coarse, half: int = 5, fwhm: float | None = None,
                  centre=None, min_fraction: float = MIN_AGREE) -> tuple[float, float, float, int, int, float]:
    """Rotation + shift of one frame, refined on the bright stars at
    ``base_cx``, ``base_cy`` (their centroids in the base frame, [px]).

    ``coarse``: ``(offset_x, offset_y)`` or ``(offset_x, offset_y,
    rotation)`` [px, px, deg] in the convention of :func:`transform`
    (``centre``: default :func:`rotation_centre` of ``image``). Iterated:
    the stars are centroided (boxes of ``2 half + 1`` px) where the current
    transform puts them, a rotation + shift is fitted by least squares
    (:func:`fit_transform`) to the stars whose centroid lies within ``tol``
    = max(0.5 ``fwhm``, 1 px) of the fitted position (the first pass, before
    the rotation is known, takes the whole box and drops outliers), and the
    stars are centroided again at the new positions, until the transform
    settles. The tolerance is tied to the FWHM, not to the scatter, so a
    rotation cannot be absorbed by a widened tolerance.

    Returns ``(offset_x, offset_y, rotation, n_aligned, n_expected,
    align_rms)``: ``n_expected`` reference stars fall inside the frame under
    the fitted transform, ``n_aligned`` of them fit it, ``align_rms`` [px] is
    their rms residual. The frame is rejected (NaN transform; the counts
    kept) when ``n_aligned`` < max(3, ``min_fraction`` x ``n_expected``):
    the coarse offset was wrong. With fewer than 3 reference stars expected
    in the frame the coarse values are returned with ``n_aligned`` = 0.
    Eager."""
    nan = float("nan")
    ox, oy, rot = (tuple(float(c) for c in coarse) + (0.0,))[:3]
    if not (np.isfinite(ox) and np.isfinite(oy) and np.isfinite(rot)):
        return nan, nan, nan, 0, 0, nan
    centre = rotation_centre(image.shape) if centre is None else centre
    tol = max(0.5 * float(fwhm), 1.0) if fwhm else max(half / 3.0, 1.0)
    bx, by = np.asarray(base_cx, float), np.asarray(base_cy, float)
    ny, nx = image.shape
    for it in range(8):
        px, py = transform(bx, by, ox, oy, rot, centre)
        inside = (px >= half) & (py >= half) & (px < nx - 1 - half) & (py < ny - 1 - half)
        n_exp = int(inside.sum())
        if n_exp < 3:
            return ox, oy, rot, 0, n_exp, nan
        fx, fy = centroids(image, px, py, half=half)
        res = np.hypot(fx - px, fy - py)
        use = inside & np.isfinite(res) & (res <= (half if it == 0 else tol))
        for _ in range(10):  # fit, keep the stars near the fit, refit
            if use.sum() < 3:
                break
            fit = fit_transform(bx[use], by[use], fx[use], fy[use], centre)
            qx, qy = transform(bx, by, *fit, centre)
            res = np.hypot(fx - qx, fy - qy)
            cut = tol if it > 0 else max(tol, 3.0 * 1.4826 * float(np.median(res[use])))
            new = inside & np.isfinite(res) & (res <= cut)
            if (new == use).all():
                break
            use = new
        else:  # out of passes: the last fit is not that of the stars kept
            fit = None
        n = int(use.sum())
        if n < 3 or (it > 0 and n < max(3, min_fraction * n_exp)):
            return nan, nan, nan, n, n_exp, nan
        if fit is None:
            fit = fit_transform(bx[use], by[use], fx[use], fy[use], centre)
            qx, qy = transform(bx, by, *fit, centre)
        rms = float(np.sqrt(np.mean((fx[use] - qx[use]) ** 2 + (fy[use] - qy[use]) ** 2)))
        moved = float(np.nanmax(np.hypot(qx - px, qy - py)[inside]))
        ox, oy, rot = fit
        if it > 0 and moved < 0.01:
            break
    rot = float((rot + 180.0) % 360.0 - 180.0)
    return ox, oy, rot, n, n_exp, rms


def _better(a, b) -> bool:
    """Is refinement ``a`` better than ``b``: accepted, then more stars fit, then the smaller rms."""
    if b is None:
        return True
    ka = (bool(np.isfinite(a[0])), a[3], -a[5] if np.isfinite(a[5]) else -np.inf)
    kb = (bool(np.isfinite(b[0])), b[3], -b[5] if np.isfinite(b[5]) else -np.inf)
    return ka > kb


def frame_transform(image, ref, base_cx, base_cy, method="xcorr", fwhm=4.0,
                    half=5) -> tuple[float, float, float, int, int, float]:
    """One frame's rotation + shift relative to the base frame of ``ref``
    (:func:`reference`): ``(offset_x, offset_y, rotation, n_aligned,
    n_expected, align_rms)`` as :func:`refine_offset` returns them, from a
    coarse offset by ``method``. The frame is tried as it is and, unless
    that already fits at least 70 % of the expected stars, also rotated by
    180 deg (a meridian flip of a German equatorial mount); the better fit
    wins. A transform whose offset exceeds ``ref["max_offset"]`` is
    rejected (NaN; ``n_aligned`` and ``n_expected`` kept, so that
    ``n_aligned`` >= max(3, :data:`MIN_AGREE` x ``n_expected``) tells this
    rejection from a failed fit). Eager."""
    if method not in METHODS:
        raise ValueError(f"offset_method={method!r}: use one of {METHODS}")
    cx, cy = rotation_centre(image.shape)
    bx, by = np.asarray(base_cx, float), np.asarray(base_cy, float)
    best = None
    for rot in (0.0, 180.0):
        if method == "xcorr":
            # a star at base p sits at 2c - p + o in a flipped frame: at p - o in the frame flipped back
            ox, oy = xcorr_offset(image if rot == 0 else image[::-1, ::-1], ref)
            coarse = (ox, oy) if rot == 0 else (-ox, -oy)
        else:
            coarse = match_offset(image, bx if rot == 0 else 2 * cx - bx, by if rot == 0 else 2 * cy - by, fwhm,
                                  ref["max_offset"])
        res = refine_offset(image, bx, by, (*coarse, rot), half=half, fwhm=fwhm, centre=(cx, cy))
        if _better(res, best):
            best = res
        if np.isfinite(best[0]) and best[3] >= 0.7 * best[4]:
            break
    ox, oy, rot, n, n_exp, rms = best
    if np.isfinite(ox) and max(abs(ox), abs(oy)) > ref["max_offset"]:
        return float("nan"), float("nan"), float("nan"), n, n_exp, float("nan")
    return best


def _offsets_block(block, ref, base, method, fwhm, half):
    out = np.full((len(block), 6), np.nan)
    for i, image in enumerate(block):
        out[i] = frame_transform(image, ref, base[0], base[1], method, fwhm, half)
    return {"offsets": out}


def frame_offsets(cube: xr.DataArray, base_image: np.ndarray, base_x, base_y, method: str = "xcorr",
                  max_offset: float = 250.0, fwhm: float = 4.0, n_ref: int = 30) -> xr.Dataset:
    """Rotation and offset of every frame of ``cube`` relative to ``base_image`` (lazy, per frame chunk).

    ``base_x``, ``base_y``: the base frame's stars, brightest first (the
    first ``n_ref`` refine the transforms); ``method``: ``"xcorr"`` or
    ``"stars"``; ``max_offset`` [px]: larger shifts count as failures.
    Returns a Dataset over ``frame`` with ``offset_x``, ``offset_y`` [px],
    ``rotation`` [deg] (frame pixel = :func:`transform` of the base pixel:
    rotated about the frame centre, then shifted; NaN where alignment
    failed), ``n_aligned`` (stars that fit the transform; 0: coarse offset
    only; for a frame rejected for too few agreeing stars, the count that
    fell short; for one whose fitted offset exceeds ``max_offset``, the
    stars that fit it), ``n_expected`` (reference
    stars inside the frame under the transform) and ``align_rms`` [px]
    (rms residual of the fitted stars).
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
    res = map_frames(_offsets_block, cube.data, None, {"offsets": ((6,), np.float64)},
                     ref=shared(reference(base_image, max_offset)), base=shared((bx[ok], by[ok])), method=method,
                     fwhm=float(fwhm), half=half)["offsets"]
    coords = {k: v for k, v in cube.coords.items() if v.dims == ("frame",)}
    ds = xr.Dataset({name: ("frame", res[:, j]) for j, name in enumerate(ALIGN_VARS)}, coords=coords)
    for k in ("offset_x", "offset_y"):
        ds[k].attrs.update(units="pixel", description="frame pixel = base pixel + offset",
                           rotation="the base pixel is first rotated by `rotation` about the frame centre")
    ds["rotation"].attrs.update(units="deg", description="field rotation of the frame from the base frame, from +x "
                                                          "towards +y, about the frame centre")
    ds["align_rms"].attrs.update(units="pixel", description="rms residual of the stars that fit the transform")
    ds.attrs.update(method=method, max_offset=float(max_offset))
    return ds
