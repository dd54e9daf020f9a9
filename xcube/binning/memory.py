"""Memory guard: refuse arrays that would not fit, before allocating them."""
from __future__ import annotations

import os

import numpy as np

__all__ = ["check_size", "available_bytes"]


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.3g} {unit}"
        n /= 1000.0
    return f"{n:.3g} TB"  # pragma: no cover


def available_bytes() -> int:
    """Memory available to this process now [bytes] (psutil). Eager (one system
    query)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # pragma: no cover - psutil is a dependency
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def check_size(shape, dtype, *, what: str = "cube", limit: int | None = None, hint: str | None = None,
               show_shape: bool = True) -> int:
    """Refuse, before allocating, an array that would not fit in memory.

    ``shape`` and ``dtype`` describe the array; ``limit`` [bytes] defaults to
    the memory currently available. Returns the size in bytes, or raises
    ``ValueError`` saying how big the array would be and how to shrink it
    (``hint``, or advice for cubes); ``show_shape`` False leaves the
    shape out of the message (``what`` describes the array itself).
    Eager (arithmetic on the shape; nothing is allocated).
    """
    n = float(np.prod([float(s) for s in shape])) if len(shape) else 1.0
    nbytes = n * np.dtype(dtype).itemsize
    limit = available_bytes() if limit is None else int(limit)
    if nbytes > limit:
        shape_s = f" of shape {tuple(int(s) for s in shape)} ({np.dtype(dtype).name})" if show_shape else ""
        raise ValueError(
            f"{what}{shape_s} would need {_fmt_bytes(nbytes)}, more than the "
            f"{_fmt_bytes(limit)} allowed; " + (hint or "use wider bins or a smaller range, or keep the cube lazy "
                                                "and write it chunk by chunk (e.g. to Zarr)")
        )
    return int(nbytes)
