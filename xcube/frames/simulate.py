"""A generated night of CCD frames, for tests, benchmarks and trying the pipeline.

:func:`night` writes bias frames, sky flats and a dithered sequence of star
fields (one eclipsing variable among constant stars, varying seeing and
transparency, Poisson and read noise, a flat-field pattern) as raw 16-bit
FITS files with the usual header keywords, and returns the truth: the
injected offsets, star positions, times and the eclipse.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Night", "night", "render_stars", "eclipse_mag"]

_BIAS_ADU = 500.0


@dataclass
class Night:
    """Truth of a generated night. Positions are 0-based pixels of the first
    science frame (the default base frame); ``offset_x``/``offset_y`` [px]
    and ``rotation`` [deg] per frame follow the pipeline's convention (frame
    pixel = base pixel rotated about the frame centre, + offset;
    :func:`xcube.frames.geometry.transform`)."""

    directory: Path
    obj: str
    band: str
    star_x: np.ndarray
    star_y: np.ndarray
    star_flux: np.ndarray
    variable: int
    depth: float
    mjd: np.ndarray
    offset_x: np.ndarray
    offset_y: np.ndarray
    in_eclipse: np.ndarray
    ra: str = "15:30:00.0"
    dec: str = "+40:00:00"
    files: dict = field(default_factory=dict)
    rotation: np.ndarray | None = None


def eclipse_mag(phase: np.ndarray, depth: float, width: float = 0.3, ingress: float = 0.05) -> np.ndarray:
    """Magnitude change of a flat-bottomed eclipse centred at phase 0.5
    (``width``: total duration, ``ingress``: each of ingress and egress, both
    in units of the sequence length). Eager, numpy: [mag], of the shape of
    ``phase``."""
    d = np.abs(np.asarray(phase, float) - 0.5)
    half = width / 2
    return depth * np.clip((half - d) / ingress, 0.0, 1.0)


def render_stars(shape, x, y, flux, fwhm: float) -> np.ndarray:
    """Noise-free image of Gaussian stars [e-], each integrated over pixels
    (exact flux for stars away from the edges); 0-based pixel centres.
    ``x``, ``y`` [px] and ``flux`` [e-] per star (sequences of one length),
    ``fwhm`` [px]. Returns a float64 numpy array of ``shape`` ``(ny, nx)``.
    Eager."""
    from scipy.special import erf

    img = np.zeros(shape, np.float64)
    sigma = fwhm / 2.3548
    half = int(np.ceil(5 * sigma)) + 1
    s2 = np.sqrt(2.0) * sigma
    for xs, ys, f in zip(x, y, flux):
        ix, iy = int(round(xs)), int(round(ys))
        x0, x1 = max(ix - half, 0), min(ix + half + 1, shape[1])
        y0, y1 = max(iy - half, 0), min(iy + half + 1, shape[0])
        if x0 >= x1 or y0 >= y1:
            continue
        ex = np.arange(x0, x1 + 1) - 0.5 - xs
        ey = np.arange(y0, y1 + 1) - 0.5 - ys
        px = np.diff(erf(ex / s2)) / 2
        py = np.diff(erf(ey / s2)) / 2
        img[y0:y1, x0:x1] += f * np.outer(py, px)
    return img


def _star_field(rng, n_stars, shape, margin, min_sep=14.0):
    ny, nx = shape
    xs, ys = [nx / 2 + rng.uniform(-0.1, 0.1) * nx], [ny / 2 + rng.uniform(-0.1, 0.1) * ny]
    while len(xs) < n_stars:
        x, y = rng.uniform(margin, nx - margin), rng.uniform(margin, ny - margin)
        if np.min(np.hypot(np.array(xs) - x, np.array(ys) - y)) >= min_sep:
            xs.append(x)
            ys.append(y)
    flux = 10 ** rng.uniform(3.8, 5.6, n_stars)
    flux[0] = 2.0e5
    return np.array(xs), np.array(ys), flux


def _raw(rng, electrons, flat, gain, read_noise):
    """Raw 16-bit ADU from an expected electron image: flat response,
    Poisson and read noise, bias, saturation."""
    e = rng.poisson(np.clip(electrons * flat, 0, None)).astype(np.float32)
    e += rng.normal(0.0, read_noise, electrons.shape).astype(np.float32)
    return np.clip(np.rint(_BIAS_ADU + e / gain), 0, 65535).astype(np.uint16)


def _write(path, data, header):
    from astropy.io import fits

    hdu = fits.PrimaryHDU(data)
    for k, v in header.items():
        hdu.header[k] = v
    hdu.writeto(path, overwrite=True)


def _flat_pattern(rng, shape):
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    r2 = ((xx - nx / 2) ** 2 + (yy - ny / 2) ** 2) / (0.5 * max(nx, ny)) ** 2
    return (1.0 - 0.06 * r2) * rng.normal(1.0, 0.01, shape)


def _calibration_frames(rng, d, shape, flat, band, n_bias, n_flat, gain, read_noise, date):
    files = {"bias": [], "flat": []}
    for i in range(n_bias):
        p = d / f"bias-{i + 1:04d}.fit"
        _write(p, _raw(rng, np.zeros(shape), flat, gain, read_noise),
               {"IMAGETYP": "Bias Frame", "EXPTIME": 0.0, "DATE-OBS": f"{date}T11:00:{i:02d}"})
        files["bias"].append(p)
    levels = [25000.0 * gain] * max(n_flat - 1, min(n_flat, 1)) + ([3000.0 * gain] if n_flat > 1 else [])
    for i, level in enumerate(levels):
        p = d / f"flat_{band}_1_{band}_{i + 1:03d}.fit"
        _write(p, _raw(rng, np.full(shape, level), flat, gain, read_noise),
               {"IMAGETYP": "Flat Field", "FILTER": band, "EXPTIME": 5.0, "DATE-OBS": f"{date}T11:30:{i:02d}"})
        files["flat"].append(p)
    return files


def night(directory, n_frames: int = 40, shape=(256, 256), n_stars: int = 20, obj: str = "V1234Cyg",
          band: str = "R", depth: float = 0.4, max_dither: float = 12.0, n_bias: int = 5, n_flat: int = 5,
          exptime: float = 60.0, cadence: float = 90.0, gain: float = 1.5, read_noise: float = 8.0,
          sky: float = 300.0, date: str = "2024-06-06", name_form: str = "dash", seed: int = 1,
          frame_range=None, rotation=0.0) -> Night:
    """Write a generated night into ``directory`` and return its truth (:class:`Night`).

    Star 0 is the eclipsing variable (near the centre; ``depth`` [mag],
    flat-bottomed, ~30 % of the sequence); the others are constant. Frames
    are dithered by up to ``max_dither`` px, seeing FWHM varies 2.8-4.2 px
    and transparency 0.8-1.0. One of the ``n_flat`` flats is under-exposed
    (3000 ADU) so that flat rejection has work. ``name_form``: ``"dash"``
    (``obj-0001R.fit``) or ``"underscore"`` (``obj_R_001.fits``).
    ``frame_range``: write only these science frames (and the bias and flat
    frames only when it holds frame 0), so that several processes can write
    one long night; every frame is the same whichever process writes it.
    ``rotation`` [deg]: field rotation about the frame centre, from +x
    towards +y; a number is a drift growing linearly from 0 (first frame)
    to that value (last frame), a sequence gives each frame's (180 for a
    meridian flip).
    Eager: generates and writes every file here (numpy); ``exptime``,
    ``cadence`` [s], ``sky`` [e- per pixel per 60 s], ``gain`` [e-/ADU],
    ``read_noise`` [e-], ``shape`` ``(ny, nx)``.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    margin = max_dither + 16
    x, y, flux = _star_field(rng, n_stars, shape, margin)
    flat = _flat_pattern(rng, shape)
    dither = rng.uniform(-max_dither, max_dither, (n_frames, 2))
    dither[0] = 0.0
    transparency, fwhm = rng.uniform(0.8, 1.0, n_frames), rng.uniform(2.8, 4.2, n_frames)
    todo = range(n_frames) if frame_range is None else frame_range
    files = {"bias": [], "flat": [], "science": []}
    if 0 in todo:
        files = _calibration_frames(np.random.default_rng([seed, n_frames]), d, shape, flat, band, n_bias, n_flat,
                                    gain, read_noise, date) | {"science": []}
    start = _mjd(f"{date}T14:00:00")
    delta = eclipse_mag(np.arange(n_frames) / max(n_frames - 1, 1), depth)
    from .geometry import rotation_centre, transform

    rot = np.asarray(rotation, float)
    rot = rot * np.arange(n_frames) / max(n_frames - 1, 1) if rot.ndim == 0 else np.broadcast_to(rot, (n_frames,))
    for i in todo:
        f = flux * transparency[i] * exptime / 60.0
        f[0] *= 10 ** (-0.4 * delta[i])
        fx, fy = transform(x, y, dither[i, 0], dither[i, 1], rot[i], rotation_centre(shape))
        img = sky * exptime / 60.0 + render_stars(shape, fx, fy, f, fwhm[i])
        name = f"{obj}-{i + 1:04d}{band}.fit" if name_form == "dash" else f"{obj}_{band}_{i + 1:03d}.fits"
        _write(d / name, _raw(np.random.default_rng([seed, i]), img, flat, gain, read_noise),
               {"IMAGETYP": "Light Frame", "OBJECT": obj, "FILTER": band, "EXPTIME": exptime,
                "DATE-OBS": _isot(start + i * cadence / 86400.0), "RA": "15:30:00.0", "DEC": "+40:00:00",
                "GAIN": gain})
        files["science"].append(d / name)
    mjd = start + (np.arange(n_frames) * cadence + exptime / 2) / 86400.0
    return Night(d, obj, band, x, y, flux, 0, depth, mjd, dither[:, 0], dither[:, 1], delta > depth - 1e-9,
                 files=files, rotation=np.array(rot))


def _mjd(isot: str) -> float:
    from astropy.time import Time

    return Time(isot, scale="utc").mjd


def _isot(mjd: float) -> str:
    from astropy.time import Time

    return Time(mjd, format="mjd", scale="utc").isot
