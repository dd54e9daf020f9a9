"""Source finding and aperture photometry of calibrated frames (photutils).

* :func:`sky_stats` - sigma-clipped sky level and noise of a frame;
* :func:`find_stars` - a star list (photutils ``IRAFStarFinder``) with the
  frame's FWHM, the median over good stars;
* :func:`frame_fwhm` - one frame's FWHM from adaptive second moments of its
  brightest stars, the median over stars;
* :func:`aperture_radii` - radii in pixels; negative values are multiples
  of the frame's FWHM;
* :func:`measure_frame` - fluxes, local-annulus sky, magnitudes and errors
  of a star list in one frame;
* :func:`measure` - the same over a whole lazy cube, per frame chunk.

Instrumental magnitudes are ``zero_point - 2.5 log10(flux / exposure)``
(flux in ADU, exposure in s); errors combine the source's Poisson noise
(``gain`` e-/ADU) with the sky noise in the aperture and in the annulus
mean. photutils is imported inside the functions.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import xarray as xr

log = logging.getLogger("xcube.frames")

__all__ = ["sky_stats", "find_stars", "frame_fwhm", "aperture_radii", "measure_frame", "measure", "PHOT_VARS"]

_MAG_PER_LN = 2.5 / np.log(10.0)
#: per (frame, star, aperture) outputs of :func:`measure_frame`
PHOT_VARS = ("flux", "flux_err", "mag", "mag_err")


def sky_stats(image: np.ndarray) -> tuple[float, float]:
    """Sky level and noise [ADU]: 3-sigma-clipped median and standard
    deviation of every 4th pixel in each direction (NaNs ignored). Eager,
    numpy: ``image`` is 2-D ``(ny, nx)`` [ADU]."""
    from astropy.stats import sigma_clipped_stats

    sub = np.asarray(image[::4, ::4], dtype=np.float64)
    sub = sub[np.isfinite(sub)]
    if sub.size == 0:
        return float("nan"), float("nan")
    _, median, std = sigma_clipped_stats(sub, sigma=3.0, maxiters=5)
    return float(median), float(std)


def _columns(table) -> pd.DataFrame:
    """x, y, flux, peak of a photutils finder table (column names of photutils 2 and 3)."""
    names = table.colnames
    x = "x_centroid" if "x_centroid" in names else "xcentroid"
    y = "y_centroid" if "y_centroid" in names else "ycentroid"
    return pd.DataFrame({"x": np.asarray(table[x], float), "y": np.asarray(table[y], float),
                         "flux": np.asarray(table["flux"], float), "peak": np.asarray(table["peak"], float)})


def find_stars(image: np.ndarray, fwhm: float | None = None, threshold: float = 5.0, max_stars: int = 200,
               border: float = 0.0, saturation: float | None = None) -> tuple[pd.DataFrame, float]:
    """Stars of one calibrated frame (eager), brightest first, and its FWHM [px].

    Detection is photutils ``IRAFStarFinder`` at ``threshold`` sky sigmas;
    ``fwhm``: expected FWHM [px] (None: measured here, starting from 4 px,
    and the detection repeated with it; when that finds fewer than 3 stars,
    from 2, 1.3 and 8 px in turn, for undersampled or very wide stars); ``border``: stars closer than this
    to an edge are dropped; ``saturation`` [ADU above sky]: brighter peaks
    are dropped. Returns a table ``x``, ``y`` (0-based pixels), ``flux``,
    ``peak`` and the frame's FWHM (:func:`frame_fwhm` of the brightest stars).
    """
    sky, noise = sky_stats(image)
    data = np.nan_to_num(np.asarray(image, dtype=np.float64) - sky, nan=0.0)
    if fwhm is not None:
        stars, guess = _detect(data, noise, float(fwhm), threshold, saturation, 1)
    else:  # first guesses: typical seeing, then undersampled and very wide stars
        best = None
        for first in _FIRST_FWHM:
            stars, guess = _detect(data, noise, first, threshold, saturation, 2)
            if best is None or len(stars) > len(best[0]):
                best = stars, guess
            if len(stars) >= 3:
                break
        stars, guess = best
    if stars.empty:
        return stars, guess
    stars = stars.copy()
    stars["x"], stars["y"] = refine_centroids(data, stars["x"].to_numpy(float), stars["y"].to_numpy(float), guess)
    ny, nx = data.shape
    inside = (stars.x >= border) & (stars.y >= border) & (stars.x <= nx - 1 - border) & (stars.y <= ny - 1 - border)
    return stars[inside].head(max_stars).reset_index(drop=True), guess


def refine_centroids(data: np.ndarray, x, y, fwhm: float, iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-weighted centroids [px] of sky-subtracted ``data`` (weights
    of ``fwhm``, re-centred each iteration; unbiased for symmetric stars,
    where IRAFStarFinder's centroids are off by up to 0.15 px). A star whose
    box leaves the frame, or whose centroid does not converge within 1 px
    of the start, keeps its position."""
    x, y = np.asarray(x, float).copy(), np.asarray(y, float).copy()
    ny, nx = data.shape
    half = int(np.clip(np.ceil(2.0 * fwhm), 3, 25))
    ix, iy = np.rint(np.nan_to_num(x, nan=-1e9)).astype(np.int64), np.rint(np.nan_to_num(y, nan=-1e9)).astype(np.int64)
    ok = (ix >= half) & (iy >= half) & (ix < nx - half) & (iy < ny - half)
    if not ok.any():
        return x, y
    d = np.arange(-half, half + 1, dtype=float)
    di = d.astype(np.int64)
    cut = np.nan_to_num(np.asarray(data[iy[ok, None, None] + di[None, :, None], ix[ok, None, None] + di[None, None, :]],
                                   np.float64), nan=0.0)
    cx, cy = x[ok] - ix[ok], y[ok] - iy[ok]
    s2 = (float(fwhm) / 2.3548) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        for _ in range(iterations):
            dx, dy = d[None, None, :] - cx[:, None, None], d[None, :, None] - cy[:, None, None]
            w = np.exp(-(dx**2 + dy**2) / (2 * s2)) * cut
            total = w.sum(axis=(1, 2))
            cx = cx + (w * dx).sum(axis=(1, 2)) / total
            cy = cy + (w * dy).sum(axis=(1, 2)) / total
    nx_c, ny_c = ix[ok] + cx, iy[ok] + cy
    good = np.isfinite(nx_c) & np.isfinite(ny_c) & (total > 0) & (np.hypot(nx_c - x[ok], ny_c - y[ok]) < 1.0)
    x[np.flatnonzero(ok)[good]], y[np.flatnonzero(ok)[good]] = nx_c[good], ny_c[good]
    return x, y


#: first FWHM guesses [px] of :func:`find_stars`, tried in turn until 3 stars are found (IRAFStarFinder's
#: sharpness and roundness cuts reject stars much narrower or wider than the guess)
_FIRST_FWHM = (4.0, 2.0, 1.3, 8.0)


def _detect(data, noise, guess, threshold, saturation, rounds):
    """IRAFStarFinder on a sky-subtracted image, re-run ``rounds - 1`` times
    with the FWHM measured on the stars found; (stars, FWHM)."""
    from photutils.detection import IRAFStarFinder

    stars = pd.DataFrame(columns=["x", "y", "flux", "peak"])
    for _ in range(rounds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = IRAFStarFinder(threshold=threshold * noise, fwhm=guess, exclude_border=True)(data)
        if table is None or len(table) == 0:
            break
        stars = _columns(table).sort_values("flux", ascending=False, ignore_index=True)
        if saturation is not None:
            stars = stars[stars.peak < saturation].reset_index(drop=True)
        guess = frame_fwhm(data, stars.x, stars.y, 0.0, guess)
    return stars, guess


def frame_fwhm(image: np.ndarray, x, y, sky: float, fallback: float, n: int = 15) -> float:
    """FWHM [px] of one frame: the median over the first ``n`` stars
    (brightest first) of their adaptive Gaussian-weighted second moments
    (vectorised; exact for Gaussian stars, the pixel's own width removed).
    ``fallback`` when fewer than 3 stars give a value. The box around each
    star is 3 FWHM wide on each side (4 to 25 px), starting from
    ``fallback`` and grown with the measured FWHM when the stars are wider,
    so a night whose seeing grew well beyond the base frame's is measured
    in full. Eager, numpy: ``image`` 2-D ``(ny, nx)`` [ADU], ``x``, ``y`` [px]
    1-D, ``sky`` [ADU], ``fallback`` [px]."""
    value = _moments_fwhm(image, x, y, sky, fallback, n)
    for _ in range(3):
        if not value > 1.2 * fallback:
            break
        fallback, value = value, _moments_fwhm(image, x, y, sky, value, n)
    return value


def _moments_fwhm(image: np.ndarray, x, y, sky: float, fallback: float, n: int) -> float:
    ny, nx = image.shape
    half = int(np.clip(np.ceil(3.0 * fallback), 4, 25))
    x, y = np.asarray(x, float)[:n], np.asarray(y, float)[:n]
    ok = np.isfinite(x) & np.isfinite(y) & (x >= half) & (y >= half) & (x < nx - half - 1) & (y < ny - half - 1)
    if ok.sum() < 3:
        return float(fallback)
    d = np.arange(-half, half + 1, dtype=float)
    ix, iy = np.rint(x[ok]).astype(int), np.rint(y[ok]).astype(int)
    cut = image[iy[:, None, None] + d.astype(int)[None, :, None], ix[:, None, None] + d.astype(int)[None, None, :]]
    cut = np.nan_to_num(cut.astype(np.float64) - sky, nan=0.0)
    cx, cy = x[ok] - ix, y[ok] - iy
    s2 = np.full(len(cx), (fallback / 2.3548) ** 2)
    for _ in range(12):
        dx, dy = d[None, None, :] - cx[:, None, None], d[None, :, None] - cy[:, None, None]
        r2 = dx**2 + dy**2
        w = np.exp(-r2 / (2 * s2[:, None, None])) * cut
        total = w.sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            cx = cx + (w * dx).sum(axis=(1, 2)) / total
            cy = cy + (w * dy).sum(axis=(1, 2)) / total
            s2 = np.clip((w * r2).sum(axis=(1, 2)) / total, 0.1, half**2)
    sigma2 = s2 - 1.0 / 12.0
    good = np.isfinite(sigma2) & (total > 0) & (sigma2 > 0.1)
    values = 2.3548 * np.sqrt(sigma2[good])
    return float(np.median(values)) if len(values) >= 3 else float(fallback)


def aperture_radii(aper, fwhm: float) -> np.ndarray:
    """Aperture radii [px]: positive values as given, negative values as
    multiples of ``fwhm`` [px] (``-1.5`` -> 1.5 FWHM). A float64 numpy array
    of the shape of ``aper`` (at least 1-D). Eager."""
    a = np.atleast_1d(np.asarray(aper, dtype=float))
    return np.where(a < 0, -a * fwhm, a)


def annulus_sky(image: np.ndarray, pos: np.ndarray, annulus) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local sky per star: median, standard deviation and pixel count of the
    annulus pixels (photutils ``CircularAnnulus`` masks, pixel centres)
    after 3-sigma clipping, vectorised over stars. NaN pixels are ignored."""
    from photutils.aperture import CircularAnnulus

    masks = CircularAnnulus(pos, *annulus).to_mask(method="center")
    masks = masks if isinstance(masks, list) else [masks]
    values = [m.get_values(image) for m in masks]
    arr = np.full((len(values), max(1, max(len(v) for v in values))), np.nan)
    for i, v in enumerate(values):
        arr[i, :len(v)] = v
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(5):
            med = _row_median(arr)
            std = np.nanstd(arr, axis=1)
            arr = np.where(np.abs(arr - med[:, None]) > 3.0 * std[:, None], np.nan, arr)
        return _row_median(arr), np.nanstd(arr, axis=1), np.isfinite(arr).sum(axis=1).astype(float)


def _row_median(arr: np.ndarray) -> np.ndarray:
    """Median of each row ignoring NaNs, vectorised (``np.nanmedian`` loops over rows)."""
    srt = np.sort(arr, axis=1)  # NaNs sort last
    n = np.isfinite(arr).sum(axis=1)
    rows = np.arange(len(arr))
    lo, hi = srt[rows, np.maximum((n - 1) // 2, 0)], srt[rows, np.maximum(n // 2, 0)]
    return np.where(n > 0, 0.5 * (lo + np.where(n > 1, hi, lo)), np.nan)


def measure_frame(image, x, y, radii, annulus, exposure: float, gain: float = 1.0,
                  zero_point: float = 25.0) -> dict:
    """Aperture photometry of stars at ``x``, ``y`` (0-based px) in one frame (eager).

    ``radii``: aperture radii [px]; ``annulus``: (inner, outer) radii [px]
    of the local sky annulus (3-sigma-clipped median and standard deviation).
    Returns ``(star, aperture)`` arrays ``flux`` [ADU, sky-subtracted],
    ``flux_err``, ``mag``, ``mag_err``, and ``(star,)`` arrays ``sky``
    [ADU/px]. Stars whose aperture leaves the frame or touches NaN pixels,
    and non-positive fluxes, get NaN magnitudes.
    """
    from photutils.aperture import CircularAperture, aperture_photometry

    ny, nx = image.shape
    nstar, radii = len(x), np.asarray(radii, float)
    out = {k: np.full((nstar, len(radii)), np.nan) for k in PHOT_VARS}
    out["sky"] = np.full(nstar, np.nan)
    pos = np.column_stack([x, y])
    ok = np.isfinite(pos).all(axis=1)
    if not ok.any():
        return out
    pos = pos[ok]
    bad = ~np.isfinite(image)
    data = np.where(bad, 0.0, image)
    sky, sky_std, n_sky = annulus_sky(image, pos, annulus)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        apertures = [CircularAperture(pos, r) for r in radii]
        table = aperture_photometry(data, apertures)
        nbad = aperture_photometry(bad.astype(float), apertures) if bad.any() else None
    for j, r in enumerate(radii):
        area = np.pi * r * r
        flux = np.asarray(table[f"aperture_sum_{j}"], float) - sky * area
        var = np.clip(flux, 0, None) / gain + area * sky_std**2 * (1.0 + area / np.maximum(n_sky, 1.0))
        inside = (pos[:, 0] - r >= -0.5) & (pos[:, 1] - r >= -0.5) & (pos[:, 0] + r <= nx - 0.5) & \
                 (pos[:, 1] + r <= ny - 0.5)
        if nbad is not None:
            inside &= np.asarray(nbad[f"aperture_sum_{j}"], float) == 0
        flux = np.where(inside, flux, np.nan)
        err = np.sqrt(var)
        with np.errstate(invalid="ignore", divide="ignore"):
            pos_flux = np.where(flux > 0, flux, np.nan)
            out["mag"][ok, j] = zero_point - 2.5 * np.log10(pos_flux / exposure)
            out["mag_err"][ok, j] = _MAG_PER_LN * err / pos_flux
        out["flux"][ok, j], out["flux_err"][ok, j] = flux, np.where(inside, err, np.nan)
    out["sky"][ok] = sky
    return out


def _measure_block(block, offset_x, offset_y, rotation, exposure, stars, aper, annulus, gain, zero_point,
                   base_fwhm, fwhm_stars):
    """:func:`measure_frame` for each frame of a chunk (runs inside a Dask task)."""
    from .geometry import rotation_centre, transform

    nf, nstar, nap = len(block), len(stars[0]), len(np.atleast_1d(aper))
    out = {k: np.full((nf, nstar, nap), np.nan, np.float32) for k in PHOT_VARS}
    out.update(sky=np.full((nf, nstar), np.nan, np.float32), fwhm=np.full(nf, np.nan, np.float32),
               radius=np.full((nf, nap), np.nan, np.float32))
    centre = rotation_centre(block.shape)
    for i in range(nf):
        if not (np.isfinite(offset_x[i]) and np.isfinite(offset_y[i]) and np.isfinite(rotation[i])):
            continue
        x, y = transform(stars[0], stars[1], offset_x[i], offset_y[i], rotation[i], centre)
        sky, _ = sky_stats(block[i])
        fwhm = frame_fwhm(block[i], x[fwhm_stars], y[fwhm_stars], sky, base_fwhm)
        radii = aperture_radii(aper, fwhm)
        inner, outer = aperture_radii(annulus, fwhm) if annulus is not None else (radii.max() + 3, radii.max() + 10)
        res = measure_frame(block[i], x, y, radii, (inner, outer), float(exposure[i]), gain, zero_point)
        for k in PHOT_VARS:
            out[k][i] = res[k]
        out["sky"][i], out["fwhm"][i], out["radius"][i] = res["sky"], fwhm, radii
    return out


def measure(cube: xr.DataArray, star_x, star_y, offset_x, offset_y, aper=(3.0, 5.0, 8.0), annulus=None,
            gain: float = 1.0, zero_point: float = 25.0, base_fwhm: float = 4.0, fwhm_stars=None,
            rotation=None) -> xr.Dataset:
    """Forced aperture photometry of a star list over a cube (lazy, per frame chunk).

    ``cube``: calibrated ``(frame, y, x)`` DataArray with coordinate
    ``exposure`` [s]; ``star_x``, ``star_y``: 0-based base-frame positions;
    ``offset_x``, ``offset_y``: per-frame shifts [px] and ``rotation``:
    per-frame field rotation [deg] (None, as for offsets of an older
    xcube: 0 where the offset is known), numpy or Dask arrays over
    frames as :func:`~xcube.frames.align.frame_offsets` gives them (frame
    pixel = base pixel rotated about the frame centre + offset; NaN: frame
    not measured). ``aper``: radii
    [px], negative = multiples of each frame's FWHM; ``annulus``: (inner,
    outer) sky annulus radii, same convention (default largest aperture + 3
    to + 10 px). ``fwhm_stars``: indices of the stars whose Gaussian fits
    give each frame's FWHM (default the first 15). Returns a lazy Dataset:
    ``mag``, ``mag_err``, ``flux``, ``flux_err`` over (star, frame,
    aperture), ``sky`` (star, frame), ``fwhm`` (frame), ``radius`` (frame,
    aperture) [px], ``rotation`` (frame) [deg] as applied; coords
    ``star_x``, ``star_y`` and the cube's per-frame coordinates.
    """
    from .blocks import map_frames, shared

    sx, sy = np.asarray(star_x, float), np.asarray(star_y, float)
    aper = np.atleast_1d(np.asarray(aper, float))
    nstar, nap = len(sx), len(aper)
    fwhm_stars = np.arange(min(15, nstar)) if fwhm_stars is None else np.asarray(fwhm_stars, int)
    outputs = {k: ((nstar, nap), np.float32) for k in PHOT_VARS}
    outputs.update(sky=((nstar,), np.float32), fwhm=((), np.float32), radius=((nap,), np.float32))
    if rotation is None:
        rotation = np.where(np.isfinite(offset_x), 0.0, np.nan)
    res = map_frames(_measure_block, cube.data, {"offset_x": offset_x, "offset_y": offset_y, "rotation": rotation,
                                                 "exposure": cube["exposure"].values}, outputs,
                     stars=shared((sx, sy)), aper=aper, annulus=annulus, gain=float(gain),
                     zero_point=float(zero_point), base_fwhm=float(base_fwhm), fwhm_stars=fwhm_stars)
    frame_coords = {k: v for k, v in cube.coords.items() if v.dims == ("frame",)}
    ds = xr.Dataset(
        {k: (("star", "frame", "aperture"), res[k].transpose(1, 0, 2)) for k in PHOT_VARS}
        | {"sky": (("star", "frame"), res["sky"].T), "fwhm": ("frame", res["fwhm"]),
           "radius": (("frame", "aperture"), res["radius"]),
           "rotation": ("frame", rotation, {"units": "deg", "description": "field rotation from the base frame (from "
                                           "+x towards +y, about the frame centre), applied before the offset"})},
        coords=frame_coords | {"star": np.arange(nstar), "star_x": ("star", sx), "star_y": ("star", sy),
                               "aperture": ("aperture", aper)})
    ds["mag"].attrs.update(units="mag", description=f"instrumental: {zero_point:g} - 2.5 log10(flux / exposure)")
    ds["flux"].attrs["units"] = "adu"
    ds["radius"].attrs["units"] = "pixel"
    ds["aperture"].attrs["description"] = "aperture radius [pixel]; negative: multiple of each frame's FWHM"
    return ds
