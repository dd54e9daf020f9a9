"""The reductions every analysis step needs from a (time, y, x) counts cube.

A cube is either a :class:`~xcube.binning.compact.CompactCube` (one cell
index per event, the transient search's form) or a dense ``counts``
DataArray from :func:`xcube.bin_events` (lazy or in memory). :func:`reductions`
gives an object with the same methods for both, so each step of the search
(background model, decision, detections) is written once:

* ``frame_totals()`` counts per frame (n_frames,);
* ``image(frames)`` counts summed over the selected frames (ny, nx);
* ``image_by(labels, n)`` one such image per frame label 0..n-1 (n, ny, nx);
* ``counts_in(pixels)`` counts per frame in a pixel mask (n_frames,);
* ``region_counts(labels, n)`` counts per region and frame (n, n_frames);
* ``dense(f0, f1)`` frames ``f0:f1`` as an in-memory array.

On a compact cube they are numba loops over the events (eager, cheap); on a
dense Dask cube they are lazy Dask reductions: compute several together with
``dask.compute`` so the cube is read once.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..scheduler import compute
from .compact import CompactCube

__all__ = ["reductions", "DenseCounts", "dense_view"]


class DenseCounts:
    """:class:`CompactCube`'s reductions on a dense (time, y, x) DataArray."""

    def __init__(self, cube: xr.DataArray):
        if set(cube.dims) != {"time", "y", "x"}:
            raise ValueError(f"the counts cube has dims {cube.dims}; this step needs exactly (time, y, x): bin "
                             "without an energy axis (select an energy band first)")
        self.cube = cube.transpose("time", "y", "x")
        self.data = self.cube.data
        self.n_frames, self.ny, self.nx = self.cube.shape

    @property
    def n_pixels(self) -> int:
        """Number of sky pixels of a frame, ``ny * nx``."""
        return self.ny * self.nx

    @property
    def shape(self) -> tuple:
        """``(n_frames, ny, nx)``."""
        return (self.n_frames, self.ny, self.nx)

    def frame_totals(self):
        """Counts per frame, int64 ``(n_frames,)``; lazy when the cube is Dask-backed."""
        return self.data.sum(axis=(1, 2), dtype=np.int64)

    def image(self, frames=None):
        """``(ny, nx)`` int64 counts summed over the frames where ``frames``
        (bool ``(n_frames,)``) is True, all frames when None; lazy when the
        cube is Dask-backed (numpy zeros when no frame is selected)."""
        sel = np.ones(self.n_frames, bool) if frames is None else np.asarray(frames, dtype=bool)
        if not sel.any():
            return np.zeros((self.ny, self.nx), np.int64)
        return self.data[np.flatnonzero(sel)].sum(axis=0, dtype=np.int64)

    def image_by(self, labels, n: int):
        """``(n, ny, nx)`` int64: the counts summed over the frames of each
        label ``0 .. n-1`` (``labels`` int ``(n_frames,)``); lazy when the cube
        is Dask-backed."""
        lab = np.asarray(labels)
        import dask.array as da

        parts = [self.image(lab == k) for k in range(n)]
        xp = da if any(isinstance(q, da.Array) for q in parts) else np
        return xp.stack(parts)

    def counts_in(self, pixels):
        """Counts per frame in the pixels where ``pixels`` (``(ny, nx)`` bool)
        is True, int64 ``(n_frames,)``; lazy when the cube is Dask-backed."""
        m = np.asarray(pixels, dtype=bool)
        return (self.data * m[None]).sum(axis=(1, 2), dtype=np.int64)

    def region_counts(self, labels, n_regions: int):
        """Counts per region and frame, int64 ``(n_regions, n_frames)``;
        ``labels`` (``(ny, nx)`` int) is each pixel's region, -1 for none.
        Lazy when the cube is Dask-backed."""
        lab = np.asarray(labels, dtype=np.int64)
        if n_regions == 0:
            return np.zeros((0, self.n_frames), np.int64)
        foot = np.stack([lab == k for k in range(n_regions)]).astype(np.int64)  # (n, y, x)
        return _tensordot(self.data, foot)

    def dense(self, f0: int = 0, f1: int | None = None, dtype=None):
        """Frames ``f0:f1`` as a numpy ``(frames, ny, nx)`` counts array,
        computed (eager)."""
        block = self.data[f0:self.n_frames if f1 is None else f1]
        block = np.asarray(compute(block)[0])
        return block if dtype is None else block.astype(dtype, copy=False)


def _tensordot(data, foot):
    """(n, time): sums of each (y, x) footprint per frame (lazy when ``data`` is Dask)."""
    if hasattr(data, "dask"):
        import dask.array as da

        f = da.from_array(foot, chunks=foot.shape)
        return da.tensordot(f, data.astype(np.int64), axes=((1, 2), (1, 2)))
    return np.tensordot(foot, np.asarray(data, dtype=np.int64), axes=((1, 2), (1, 2)))


def reductions(cube):
    """The reductions of ``cube``: the :class:`CompactCube` itself, or a
    :class:`DenseCounts` around a (time, y, x) counts DataArray (wrapping
    only; nothing is computed). A Dask-backed DataArray stays lazy."""
    if isinstance(cube, CompactCube):
        return cube
    if isinstance(cube, DenseCounts):
        return cube
    if isinstance(cube, xr.DataArray):
        return DenseCounts(cube)
    raise TypeError(f"expected a counts cube (xcube.bin_events DataArray or a CompactCube), got {type(cube).__name__}")


def dense_view(cube) -> xr.DataArray:
    """``cube`` as a labelled (time, y, x) counts DataArray (lazy for a compact cube)."""
    if isinstance(cube, CompactCube):
        return cube.to_dataarray()
    if isinstance(cube, DenseCounts):
        return cube.cube
    return cube.transpose("time", "y", "x")
