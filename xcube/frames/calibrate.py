"""Master bias and flat frames and calibrated (bias-subtracted, flat-fielded) cubes.

* :func:`master_bias` - the median of the bias frames;
* :func:`master_flat` - the median of the bias-subtracted flats of one band,
  each scaled to its own level, normalised to median 1; flats whose median
  lies outside ``[low, high]`` ADU are rejected;
* :func:`calibrate` - ``(raw - bias) / flat`` per frame, optionally trimmed
  at the borders; lazy, chunk by chunk;
* :func:`read_master`, :func:`write_master`, :func:`choose_master` - master
  files on disk and the priority "given, tonight's, fallback".

Masters are single images and are computed eagerly (in strips of rows, so
memory is the number of frames times one strip); the night cube stays lazy.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import xarray as xr

log = logging.getLogger("xcube.frames")

__all__ = ["master_bias", "master_flat", "flat_levels", "calibrate", "read_master", "write_master", "choose_master"]

_STRIP_ROWS = 128


#: above this size [bytes], a master made from whole-frame chunks logs how to keep the memory down
_WHOLE_FRAME_WARN = 1 << 30


def _lazy(cube: xr.DataArray):
    """The ``(frame, y, x)`` cube's Dask array; a numpy-backed cube (already
    in memory) is wrapped without a copy, in strips of ``_STRIP_ROWS`` rows."""
    import dask.array as da

    if isinstance(cube.data, da.Array):
        return cube.data
    return da.from_array(np.asarray(cube.data), chunks=(-1, min(_STRIP_ROWS, cube.sizes["y"]), -1))


def _median_stack(cube: xr.DataArray) -> np.ndarray:
    """Median over frames, computed in strips of rows (eager; the cube
    Dask- or numpy-backed). Memory is the number of frames times one strip
    only when a Dask cube is already chunked in row strips
    (``stack_frames(rows, {"frame": -1, "y": 128})``, as the pipeline does);
    whole-frame chunks must all be read before the first strip is complete,
    so the whole stack is then held in memory."""
    chunks = getattr(cube.data, "chunks", None)
    if chunks and len(chunks[0]) > 1 and len(chunks[1]) == 1 and cube.nbytes > _WHOLE_FRAME_WARN:
        log.warning("median of %d frames chunked as whole frames holds all %.0f MB in memory; open them with "
                    "chunks={'frame': -1, 'y': 128} to combine them strip by strip", cube.sizes["frame"],
                    cube.nbytes / 1e6)
    data = _lazy(cube).rechunk((cube.sizes["frame"], min(_STRIP_ROWS, cube.sizes["y"]), -1))
    return np.asarray(data.map_blocks(_median_block, chunks=(1,) + data.chunks[1:], dtype=np.float32).compute())[0]


def _median_block(block: np.ndarray) -> np.ndarray:
    med = np.nanmedian if np.isnan(block).any() else np.median  # nanmedian is ~10x slower
    return med(block, axis=0, keepdims=True).astype(np.float32)


def master_bias(bias: xr.DataArray) -> xr.DataArray:
    """Master bias [ADU]: the per-pixel median of the ``(frame, y, x)`` bias
    frames (Dask- or numpy-backed; eager; returns a numpy-backed ``(y, x)``
    DataArray)."""
    if bias.sizes["frame"] == 0:
        raise ValueError("no bias frames to combine")
    out = _median_stack(bias)
    return xr.DataArray(out, dims=("y", "x"), name="bias",
                        attrs={"units": "adu", "nframes": int(bias.sizes["frame"]), "kind": "master bias"})


def flat_levels(flat: xr.DataArray) -> np.ndarray:
    """Median [ADU] of each flat frame of the ``(frame, y, x)`` cube (Dask-
    or numpy-backed), from every 4th pixel (eager, one value per frame)."""
    sub = _lazy(flat)[:, ::4, ::4]
    return np.asarray(sub.map_blocks(lambda b: np.nanmedian(b.reshape(len(b), -1), axis=1),
                                     drop_axis=[1, 2], dtype=np.float64).compute())


def master_flat(flat: xr.DataArray, bias, low: float = 5000.0, high: float = 50000.0) -> xr.DataArray:
    """Master flat of one band: each bias-subtracted flat divided by its own
    median, median-combined, normalised to median 1 (eager; ``(y, x)``).

    ``flat``: ``(frame, y, x)`` raw flats [ADU], Dask- or numpy-backed;
    ``bias``: master bias (array or DataArray, ``(y, x)``). Flats whose raw
    median is outside ``[low, high]`` ADU are rejected with a log line
    naming the ``file`` coordinate (else the frame index); ``ValueError``
    when none is left (the message lists the levels and the limits to
    change).
    """
    levels = flat_levels(flat)
    keep = (levels >= low) & (levels <= high)
    names = flat["file"].values if "file" in flat.coords else [f"frame {i}" for i in range(len(levels))]
    for name, level in zip(np.asarray(names)[~keep], levels[~keep]):
        log.info("flat %s rejected: median %.0f ADU outside [%g, %g]", name, level, low, high)
    if not keep.any():
        raise ValueError(f"all {len(levels)} flats rejected: medians {np.round(levels).tolist()} ADU are outside "
                         f"[{low:g}, {high:g}]; change flat_limit_low/flat_limit_high or give use_flat/alt_flat")
    bias = np.asarray(bias, dtype=np.float32)
    good = flat.isel(frame=np.flatnonzero(keep))
    scale = (levels[keep] - float(np.median(bias))).astype(np.float32)
    if np.any(scale <= 0):
        raise ValueError(f"flat levels {levels[keep].tolist()} ADU do not exceed the bias level; these are not flats")
    normed = (good - bias) / xr.DataArray(scale, dims="frame")
    out = _median_stack(normed)
    med = np.nanmedian(out)
    return xr.DataArray(out / med, dims=("y", "x"), name="flat",
                        attrs={"units": "1", "nframes": int(keep.sum()), "kind": "master flat"})


def calibrate(raw: xr.DataArray, bias, flat=None, border: int = 0, saturation=None) -> xr.DataArray:
    """Calibrated frames ``(raw - bias) / flat`` [ADU], lazy, float32.

    ``raw``: ``(frame, y, x)`` cube; ``bias``, ``flat``: ``(y, x)`` masters
    (``flat=None``: no flat-fielding). Pixels where the flat is below 0.05
    become NaN, and so do pixels whose raw value is at or above
    ``saturation`` [raw ADU; one value, or one per frame, NaN: no limit].
    ``border`` > 0 trims that many pixels on every side; the ``y``/``x``
    coordinates then keep the raw pixel indices.
    """
    ny, nx = raw.sizes["y"], raw.sizes["x"]
    bias = np.asarray(bias, dtype=np.float32)
    if bias.shape != (ny, nx):
        raise ValueError(f"master bias is {bias.shape}, frames are {(ny, nx)}; use a bias of the same camera mode")
    out = raw.data - bias
    if saturation is not None:
        import dask.array as da

        level = np.broadcast_to(np.asarray(saturation, dtype=np.float64), (raw.sizes["frame"],))
        if np.isfinite(level).any():
            level = np.where(np.isfinite(level), level, np.inf)[:, None, None]
            if isinstance(raw.data, da.Array):
                level = da.from_array(level, chunks=(raw.data.chunks[0], 1, 1))
                out = da.where(raw.data >= level, np.float32(np.nan), out)
            else:
                out = np.where(raw.data >= level, np.float32(np.nan), out)
    if flat is not None:
        flat = np.asarray(flat, dtype=np.float32)
        if flat.shape != (ny, nx):
            raise ValueError(f"master flat is {flat.shape}, frames are {(ny, nx)}; use a flat of the same camera "
                             "mode")
        flat = np.where(flat > 0.05, flat, np.nan).astype(np.float32)
        out = out / flat
    cal = raw.copy(data=out.astype(np.float32)).assign_coords(y=np.arange(ny), x=np.arange(nx))
    cal.attrs = dict(raw.attrs, units="adu", bias_subtracted=1, flat_fielded=int(flat is not None))
    if border:
        b = int(border)
        if 2 * b >= min(ny, nx):
            raise ValueError(f"border_cut={b} removes the whole {ny}x{nx} frame")
        cal = cal.isel(y=slice(b, ny - b), x=slice(b, nx - b))
    return cal.rename("image")


def read_master(path, shape=None) -> np.ndarray:
    """A master frame (first 2-D image HDU) as float32; ``shape`` is checked
    when given (``ValueError`` naming the file and both shapes). Reads the
    image eagerly: a 2-D ``(y, x)`` numpy array."""
    from ..io.fitsutil import open_fits

    with open_fits(path) as hdul:
        hdu = next((h for h in hdul if getattr(h, "is_image", False) and h.header.get("NAXIS") == 2), None)
        if hdu is None:
            raise ValueError(f"{path}: no 2-D image; a master bias/flat must be an image")
        data = np.asarray(hdu.data, dtype=np.float32)
    if shape is not None and data.shape != tuple(shape):
        raise ValueError(f"{path}: master is {data.shape}, the frames are {tuple(int(n) for n in shape)}; use one "
                         "of the same camera mode")
    return data


def write_master(path, image, header: dict | None = None, overwrite: bool = True) -> Path:
    """Write a master frame as a float32 FITS image, atomically. Eager: a
    Dask-backed ``image`` (2-D ``(y, x)``) is computed here."""
    from astropy.io import fits

    from ..io.atomic import atomic_file

    hdu = fits.PrimaryHDU(np.asarray(image, dtype=np.float32))
    for key, value in (header or {}).items():
        hdu.header[key] = value
    with atomic_file(path, overwrite=overwrite) as tmp:
        hdu.writeto(tmp)
    return Path(path)


def choose_master(what: str, candidates) -> tuple[str, Path] | None:
    """The first existing file of ``candidates`` (``(label, path)`` pairs in
    priority order, e.g. given, tonight's, fallback), or None. A given path
    that does not exist is logged as a warning and passed over. Eager
    (file-existence checks only)."""
    for label, path in candidates:
        if path is None:
            continue
        if Path(path).is_file():
            log.info("%s: using the %s master %s", what, label, path)
            return label, Path(path)
        if label != "tonight's":
            log.warning("%s: %s master %s does not exist; trying the next source", what, label, path)
    return None
