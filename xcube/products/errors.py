"""Counting errors for binned products: Poisson (sqrt N) and the Gehrels
(1986, ApJ 303, 336, eq. 7) upper 1-sigma limit ``1 + sqrt(N + 0.75)``, which
stays honest for small and zero counts. Elementwise on numpy, Dask or xarray
objects (lazy in, lazy out)."""
from __future__ import annotations

import numpy as np

__all__ = ["ERROR_METHODS", "count_error"]

ERROR_METHODS = ("poisson", "gehrels")


def count_error(counts, method: str = "poisson"):
    """1-sigma error on ``counts`` [count]: ``"poisson"`` -> sqrt(N) (0 for
    N = 0); ``"gehrels"`` -> 1 + sqrt(N + 0.75), the upper error of Gehrels
    (1986) eq. 7 (1.866 for N = 0). Elementwise, of the shape of ``counts``:
    eager for numpy input; a Dask array (or Dask-backed DataArray) stays
    lazy."""
    if method == "poisson":
        return np.sqrt(counts * 1.0)
    if method == "gehrels":
        return 1.0 + np.sqrt(counts + 0.75)
    raise ValueError(f"errors={method!r}: use one of {ERROR_METHODS}")
