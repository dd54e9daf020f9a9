"""master_bias and master_flat of an in-memory (numpy-backed) cube (sweep p20/e D2): they raised
AttributeError ('.rechunk', '.map_blocks'), while calibrate accepts one; the results equal the Dask cube's."""
from __future__ import annotations

import logging

import dask.array as da
import numpy as np
import xarray as xr

from xcube.frames.calibrate import flat_levels, master_bias, master_flat

DIMS = ("frame", "y", "x")


def _both(data, **coords):
    """The same frames as a numpy-backed and as a Dask-backed DataArray."""
    arr = xr.DataArray(np.asarray(data, np.float32), dims=DIMS, coords=coords)
    return arr, arr.copy(data=da.from_array(arr.values, chunks=(2, -1, -1)))


def test_master_bias_of_a_numpy_cube():
    rng = np.random.default_rng(0)
    frames = rng.normal(500, 5, (6, 150, 40))          # an even count, more rows than one 128-row strip
    frames[2, 7, 9] = np.nan
    mem, lazy = _both(frames)
    out = master_bias(mem)
    assert isinstance(out.data, np.ndarray) and out.dims == ("y", "x") and out.attrs["nframes"] == 6
    np.testing.assert_array_equal(out.values, master_bias(lazy).values)
    np.testing.assert_allclose(out.values, np.nanmedian(frames.astype(np.float32), axis=0), rtol=1e-6)
    z = np.zeros((50, 60), np.float32)                 # the sweep's reproduction
    assert np.all(master_bias(xr.DataArray(np.stack([z + 500, z + 503]), dims=DIMS)).values == 501.5)


def test_master_flat_of_a_numpy_cube(caplog):
    rng = np.random.default_rng(1)
    pattern = rng.normal(1.0, 0.02, (40, 30))
    bias = np.full((40, 30), 500.0)
    levels = [20000.0, 30000.0, 25000.0, 3000.0]         # the last one rejected
    flats = np.array([500 + lev * pattern for lev in levels])
    mem, lazy = _both(flats, file=("frame", [f"f{i}.fit" for i in range(4)]))
    np.testing.assert_array_equal(flat_levels(mem), flat_levels(lazy))
    with caplog.at_level(logging.INFO, logger="xcube.frames"):
        out = master_flat(mem, bias)
    assert "f3.fit rejected" in caplog.text and out.attrs["nframes"] == 3
    np.testing.assert_array_equal(out.values, master_flat(lazy, bias).values)
    np.testing.assert_allclose(out.values, pattern / np.median(pattern), rtol=1e-4)
    caplog.clear()
    bare = xr.DataArray(np.asarray(flats, np.float32), dims=DIMS)  # no file coordinate: frames named by index
    with caplog.at_level(logging.INFO, logger="xcube.frames"):
        np.testing.assert_array_equal(master_flat(bare, bias).values, out.values)
    assert "flat frame 3 rejected" in caplog.text
