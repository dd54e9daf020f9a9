"""The compact cube: a (time, y, x) counts cube kept as one cell index per event.

:func:`compact_cubes` bins one or several cameras of an observation in **one
pass** over their event chunks (each chunk read once), for any number of
*runs* (a time axis and an energy band each: a whole parameter grid shares
the pass). Per chunk it applies an :class:`~xcube.select.EventFilter` (the
same predicates as :func:`xcube.select`), the energy bands, and the bin rules
of :func:`xcube.bin_events` (half-open ``[lo, hi)`` bins; integer sky columns
through :func:`~xcube.binning.axes.integer_lut`, float ones through
``Axis.index_of``), so every count equals the one ``select`` + ``bin_events``
give. Besides the cube, the pass takes what the transient search needs from
the events: the counts per frame and CCD (bad-frame rule), a monitor light
curve of a second selection (the 10-12 keV bad-time-interval curve) and the
sky extent of the selected events.

The pass itself is :func:`xcube.binning.events_pass.compact_cubes`.
A :class:`CompactCube` holds the cell index ``iy * nx + ix`` of every counted
event, frame after frame (2 or 4 bytes per event, whatever the number of
frames). Its reductions (:meth:`~CompactCube.image`,
:meth:`~CompactCube.counts_in`, :meth:`~CompactCube.region_counts`) are numba
loops over these indices; :meth:`~CompactCube.to_dataarray` gives the dense
cube lazily, labelled exactly as ``bin_events`` labels it.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field

import numba
import numpy as np

from .. import _numba_cache  # noqa: F401 (numba's cache: a failure warns instead of failing)
from .. import gti as gtimod
from ..scheduler import thread_map
from .axes import Axis

__all__ = ["CompactCube", "Monitor", "cell_dtype", "CUBE_CHUNK_BYTES"]

#: dense cube chunks handed out by ``CompactCube.to_dask`` [bytes of counts]
CUBE_CHUNK_BYTES = 32 * 2**20
#: events per thread of the reductions (smaller cubes are reduced on one thread)
PARALLEL_EVENTS = 1 << 20
_NO_GTI = (np.empty(0), np.empty(0))


def cell_dtype(n_cells: int) -> np.dtype:
    """Smallest unsigned dtype holding cell indices ``0 .. n_cells - 1``. Eager
    (scalar)."""
    return np.dtype(np.uint16) if n_cells <= 1 << 16 else np.dtype(np.uint32)


@dataclass(eq=False)
class Monitor:
    """A light curve taken in the events pass: ``counts[i]`` (int64, one
    value per bin of ``edges`` [s]) of camera ``i``, whose good time is
    ``gtis[i]``."""

    edges: np.ndarray
    counts: list
    gtis: list


# ---------------------------------------------------------------------- the cube
@dataclass(eq=False)
class CompactCube:
    """A (time, y, x) counts cube stored as the cell index of every event.

    ``cells`` (uint16/uint32) holds, frame after frame, the flat cell index
    ``iy * nx + ix`` of each counted event; the events of frame ``t`` are
    ``cells[seg[t]:seg[t + 1]]`` (``seg``: int64, ``n_frames + 1``).
    ``time``, ``y``, ``x`` are the bin axes. ``attrs`` and ``gti`` (the good
    time behind the ``exposure`` coordinate) label the dense cube. From the
    events pass: ``cameras`` (per camera ``{"profile", "source", "gti",
    "datamode", "submode"}``),
    ``ccd_counts`` (per camera, counts per frame and CCD (n_frames, n_ccd) in
    the order of the profile's quadrant map, or per frame (n_frames,)),
    ``monitor`` (:class:`Monitor` or None), ``extent`` (xmin, xmax, ymin,
    ymax of the selected events, column units), ``n_outside`` (selected
    events inside the frames but outside the y/x grid), ``ccd_map`` (per
    camera, (ny, nx) uint32: bit ``c % 32`` set in a cell holding events of
    CCD ``c`` (in the band of the first run of the pass on this sky grid,
    from every 8th event in chunks of more than 2^20 events); None without a
    CCD column), ``filter_stats`` (per camera,
    the counts of the filter's contextual tests, e.g. the detector hygiene)
    and ``camera_counts`` (with several cameras, each one's counts per cell
    summed over the frames, (ny, nx) int64; else None).
    """

    cells: np.ndarray
    seg: np.ndarray
    time: Axis
    y: Axis
    x: Axis
    attrs: dict = field(default_factory=dict)
    gti: tuple = _NO_GTI
    cameras: tuple = ()
    ccd_counts: list | None = None
    monitor: Monitor | None = None
    extent: tuple = (np.inf, -np.inf, np.inf, -np.inf)
    n_outside: int = 0
    ccd_map: list | None = None
    filter_stats: list | None = None
    camera_counts: list | None = None
    _views: dict = field(default_factory=dict, repr=False)  # to_dataarray's coordinates, once per dtype

    def __getstate__(self):  # the coordinate templates are rebuilt where needed (their data pickle at full size)
        return {**self.__dict__, "_views": {}}

    @property
    def n_frames(self) -> int:
        """Number of time frames."""
        return self.seg.size - 1

    @property
    def ny(self) -> int:
        """Number of pixels along y."""
        return self.y.size

    @property
    def nx(self) -> int:
        """Number of pixels along x."""
        return self.x.size

    @property
    def n_pixels(self) -> int:
        """Number of sky pixels of a frame, ``ny * nx``."""
        return self.ny * self.nx

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_frames, ny, nx)`` of the dense cube."""
        return (self.n_frames, self.ny, self.nx)

    @property
    def exposure(self) -> np.ndarray:
        """Good time in each frame [s], float64 (n_frames,)."""
        return gtimod.exposure_per_bin(self.time.lo, self.time.hi, self.gti)

    # ------------------------------------------------------------------ reductions (eager, numba)
    def frame_totals(self) -> np.ndarray:
        """Counts per frame, int64 (n_frames,)."""
        return np.diff(self.seg)

    def image(self, frames=None) -> np.ndarray:
        """(ny, nx) int64 counts summed over the frames where ``frames`` (bool
        (n_frames,)) is True; all frames when None."""
        sel = np.ones(self.n_frames, np.bool_) if frames is None else np.asarray(frames, dtype=np.bool_)
        return self._by_frames(_image, (sel,), np.zeros(self.n_pixels, np.int64), True).reshape(self.ny, self.nx)

    def image_by(self, labels, n: int) -> np.ndarray:
        """(n, ny, nx) int64: the counts summed over the frames of each label
        ``0 .. n-1`` (``labels`` int (n_frames,), -1 for frames in none), in one pass."""
        lab = np.ascontiguousarray(labels, dtype=np.int64)
        out = np.zeros((int(n), self.n_pixels), np.int64)
        return self._by_frames(_image_by, (lab,), out, True).reshape(n, self.ny, self.nx)

    def counts_in(self, pixels) -> np.ndarray:
        """Counts per frame in the pixels where ``pixels`` ((ny, nx) bool) is True, int64 (n_frames,)."""
        px = np.ascontiguousarray(pixels, dtype=np.bool_).ravel()
        return self._by_frames(_counts_in, (px,), np.zeros(self.n_frames, np.int64), False)

    def region_counts(self, labels, n_regions: int) -> np.ndarray:
        """Counts per region and frame, int64 (n_regions, n_frames); ``labels``
        ((ny, nx) int, or several such maps (m, ny, nx) whose counts add up)
        is each pixel's region, -1 for none."""
        lab = np.ascontiguousarray(labels, dtype=np.int64).reshape(-1, self.n_pixels)
        out = np.zeros((int(n_regions), self.n_frames), np.int64)
        return self._by_frames(_region_counts, (lab,), out, False)

    def _by_frames(self, kernel, args, out, additive: bool):
        """``kernel(cells, seg, *args, f0, f1, out)`` over all frames, in
        parts of about equal numbers of events on as many threads as CPUs
        (above :data:`PARALLEL_EVENTS` events): each part adds into its own
        copy of ``out`` when ``additive``, else into its own frames of it."""
        ranges = self.frame_ranges(min(os.cpu_count() or 1, max(self.cells.size // PARALLEL_EVENTS, 1)))
        if len(ranges) < 2:
            kernel(self.cells, self.seg, *args, 0, self.n_frames, out)
            return out
        outs = [out] + [np.zeros_like(out) for _ in ranges[1:]] if additive else [out] * len(ranges)
        thread_map(lambda k: kernel(self.cells, self.seg, *args, *ranges[k], outs[k]), range(len(ranges)))
        for o in outs[1:] if additive else ():
            out += o
        return out

    def frame_ranges(self, parts: int) -> list:
        """At most ``parts`` consecutive frame ranges ``(f0, f1)`` covering all
        frames, each holding about the same number of events (ranges without
        a frame are left out; ``[(0, 0)]`` for a cube without frames)."""
        cut = np.searchsorted(self.seg, np.linspace(0, self.cells.size, parts + 1)[1:-1])
        bounds = np.unique(np.concatenate([[0], cut, [self.n_frames]])).astype(np.int64)
        return list(zip(bounds[:-1], bounds[1:])) or [(0, 0)]

    def dense(self, f0: int = 0, f1: int | None = None, dtype="int32") -> np.ndarray:
        """Frames ``f0:f1`` as a dense numpy array of counts per cell, of shape
        ``(f1 - f0, ny, nx)`` and ``dtype`` (eager)."""
        f1 = self.n_frames if f1 is None else f1
        out = np.zeros((f1 - f0, self.n_pixels), dtype=np.dtype(dtype))
        _fill_dense(self.cells, self.seg, f0, f1, out)
        return out.reshape(f1 - f0, self.ny, self.nx)

    # ------------------------------------------------------------------ lazy dense views
    def to_dask(self, dtype="int32", chunk_bytes: int = CUBE_CHUNK_BYTES):
        """The dense cube as a lazy Dask array chunked along time (each chunk
        about ``chunk_bytes``; y and x whole). The graph holds this compact
        cube once, not a copy per chunk."""
        import dask.array as da
        from dask.highlevelgraph import HighLevelGraph

        dtype = np.dtype(dtype)
        nt = self.n_frames
        per = max(1, int(chunk_bytes // max(self.n_pixels * dtype.itemsize, 1)))
        starts = list(range(0, nt, per)) or [0]
        sizes = tuple(min(per, nt - s) for s in starts) if nt else (0,)
        tag = uuid.uuid4().hex
        src, name = f"compact-cube-{tag}", f"counts-{tag}"
        layer = {src: self}
        for c, (s, m) in enumerate(zip(starts, sizes)):
            layer[(name, c, 0, 0)] = (_dense_task, src, s, s + m, dtype)
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[])
        return da.Array(graph, name, (sizes, (self.ny,), (self.nx,)), dtype=dtype,
                        meta=np.empty((0, 0, 0), dtype=dtype))

    def to_dataarray(self, dtype="int32"):
        """The lazy dense cube as ``bin_events`` returns it (``counts``
        DataArray over (time, y, x) with edges, exposure, ra/dec, WCS and
        provenance). Eager: coordinates only, built once per dtype (the cube
        keeps the coordinates, not the Dask array, whose graph holds the
        cube: no reference cycle keeps a cube's events alive)."""
        import xarray as xr

        key = np.dtype(dtype).str
        if key not in self._views:
            from .engine import label_cube

            like = xr.Dataset({"gti_start": ("gti", np.asarray(self.gti[0], np.float64)),
                               "gti_stop": ("gti", np.asarray(self.gti[1], np.float64))}, attrs=self.attrs)
            view = label_cube(self.to_dask(dtype), {"time": self.time, "y": self.y, "x": self.x}, like)
            # the template's data: one zero seen through every voxel (no memory, no graph)
            self._views[key] = view.copy(deep=False, data=np.broadcast_to(np.zeros((), view.dtype), view.shape))
        return self._views[key].copy(deep=False, data=self.to_dask(dtype))


def _dense_task(cc: CompactCube, f0, f1, dtype):
    return cc.dense(f0, f1, dtype)


@numba.njit(nogil=True, cache=True)
def _fill_dense(cells, seg, f0, f1, out):  # pragma: no cover - compiled
    for t in range(f0, f1):
        row = t - f0
        for i in range(seg[t], seg[t + 1]):
            out[row, cells[i]] += 1


@numba.njit(nogil=True, cache=True)
def _image(cells, seg, frames, f0, f1, out):  # pragma: no cover - compiled
    for t in range(f0, f1):
        if frames[t]:
            for i in range(seg[t], seg[t + 1]):
                out[cells[i]] += 1


@numba.njit(nogil=True, cache=True)
def _image_by(cells, seg, labels, f0, f1, out):  # pragma: no cover - compiled
    for t in range(f0, f1):
        k = labels[t]
        if k >= 0:
            row = out[k]
            for i in range(seg[t], seg[t + 1]):
                row[cells[i]] += 1


@numba.njit(nogil=True, cache=True)
def _counts_in(cells, seg, pixels, f0, f1, out):  # pragma: no cover - compiled
    for t in range(f0, f1):
        k = 0
        for i in range(seg[t], seg[t + 1]):
            if pixels[cells[i]]:
                k += 1
        out[t] = k


@numba.njit(nogil=True, cache=True)
def _region_counts(cells, seg, labels, f0, f1, out):  # pragma: no cover - compiled
    for m in range(labels.shape[0]):
        label = labels[m]
        for t in range(f0, f1):
            for i in range(seg[t], seg[t + 1]):
                r = label[cells[i]]
                if r >= 0:
                    out[r, t] += 1
