"""Per-chunk mapping over a frame cube.

:func:`map_frames` runs a function on each frame chunk of a lazy
``(frame, y, x)`` cube (whole images per chunk) and assembles its per-frame
results into lazy Dask arrays. Memory is a few chunks per worker thread,
whatever the number of frames; nothing runs until the results are computed.
"""
from __future__ import annotations

import numpy as np

__all__ = ["map_frames", "shared"]


def shared(value):
    """Wrap a large read-only argument (a base image, a star list) once, so
    every chunk task refers to one copy instead of embedding its own. Lazy:
    returns a Dask ``Delayed``; nothing is computed here."""
    from dask import delayed

    return delayed(value, pure=True, traverse=False)


def _frame_slices(chunks):
    start = 0
    for n in chunks:
        yield slice(start, start + n)
        start += n


def _per_chunk(value, sl, delayed_blocks, k):
    """The part of a per-frame argument that belongs to chunk ``k``."""
    if delayed_blocks is not None:
        return delayed_blocks[k]
    return value[sl]


def map_frames(func, data, per_frame: dict | None = None, outputs: dict | None = None, **shared_kw) -> dict:
    """Lazy per-frame results of ``func`` over frame chunks.

    ``data``: Dask array ``(frame, y, x)`` (rechunked to whole images if
    needed). ``func(block, **per_frame_parts, **shared_kw)`` receives a numpy
    block ``(k, y, x)`` and the matching parts of ``per_frame`` (arrays over
    frames, numpy or Dask) and returns a dict of numpy arrays whose first
    axis is the block's frames. ``outputs`` maps each name to
    ``(trailing_shape, dtype)``. Returns a dict of Dask arrays of shape
    ``(frame,) + trailing_shape``. Pass large constant arguments through
    :func:`shared`.
    """
    import dask.array as da
    from dask import delayed

    data = data.rechunk({1: -1, 2: -1})
    fchunks = data.chunks[0]
    # optimize_graph=False keeps the chunk keys shared: two results computed together (offsets and
    # photometry) then read and calibrate each chunk once, not once per result
    blocks = data.to_delayed(optimize_graph=False).ravel()
    per_frame = per_frame or {}
    split = {}
    for name, value in per_frame.items():
        if isinstance(value, da.Array):
            split[name] = value.rechunk({0: fchunks}).to_delayed(optimize_graph=False).ravel()
        else:
            split[name] = None
            per_frame[name] = np.asarray(value)
    parts = {name: [] for name in outputs}
    call = delayed(func, pure=True)
    for k, sl in enumerate(_frame_slices(fchunks)):
        kw = {name: _per_chunk(per_frame[name], sl, split[name], k) for name in per_frame}
        res = call(blocks[k], **kw, **shared_kw)
        for name, (tail, dtype) in outputs.items():
            parts[name].append(da.from_delayed(res[name], shape=(sl.stop - sl.start,) + tuple(tail), dtype=dtype))
    return {name: da.concatenate(p, axis=0) if len(p) > 1 else p[0] for name, p in parts.items()}
