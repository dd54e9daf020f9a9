"""Event stores opened from their zarr.json files alone: the same dataset as
xarray's reading, xarray's reading where it would decode something, and no
Zarr import in a process that only reads the event cache."""
import json
import os
import subprocess
import sys
import textwrap

import dask.array as da
import numpy as np
import xarray as xr

import xcube
from xcube.io.cache import COMPLETE, _described, open_zarr_events, to_zarr


def _xarray_reading(store) -> xr.Dataset:
    ds = xr.open_zarr(store, consolidated=False, zarr_format=3).load()
    ds.attrs.pop(COMPLETE, None)
    return ds


def _assert_same(ours: xr.Dataset, theirs: xr.Dataset):
    assert sorted(ours.data_vars) == sorted(theirs.data_vars)
    for name in theirs.data_vars:
        a, b = ours[name], theirs[name]
        assert a.dims == b.dims and a.dtype == b.dtype and a.attrs == b.attrs, name
        np.testing.assert_array_equal(a.values, b.values, err_msg=name)
        fa, fb = a.encoding.get("_FillValue"), b.encoding.get("_FillValue")
        assert (fa is None) == (fb is None) and (fa is None or np.isnan(fa) == np.isnan(fb)), name
    assert ours.attrs == theirs.attrs


def test_event_store_metadata_read_without_xarray_is_xarrays(make_event_file, tmp_path):
    ev = xcube.open_events(make_event_file(n=2500, gti=([1.0e8, 1.0e8 + 5e3], [1.0e8 + 4e3, 1.0e8 + 1e4])),
                           chunks=1000)
    store = to_zarr(ev, tmp_path / "obs.zarr")
    assert _described(store, None, False) is not None  # the simple layout: read from zarr.json alone
    ours = open_zarr_events(store)
    assert all(isinstance(ours[v].data, da.Array) for v in ours.data_vars if "event" in ours[v].dims)
    _assert_same(ours.compute(), _xarray_reading(store))


def test_columns_xarray_would_decode_are_read_by_xarray(tmp_path):
    n = 50
    t = np.arange(n, dtype=np.float64)
    ds = xr.Dataset(
        {"time": ("event", t, {"units": "s"}),
         "stamp": ("event", t / 86400.0, {"units": "days since 2000-01-01"}),
         "lag": ("event", t, {"units": "seconds"}),
         "gti_start": ("gti", [0.0], {"units": "s"}), "gti_stop": ("gti", [float(n)], {"units": "s"})},
        attrs={"kind": "events", "mission": "TEST"})
    store = to_zarr(ds, tmp_path / "decoded.zarr")
    assert _described(store, None, False) is None  # a time-like column: xarray decodes it
    ours = open_zarr_events(store).compute()
    theirs = _xarray_reading(store)
    assert theirs["stamp"].dtype.kind == "M"  # what xarray makes of it
    _assert_same(ours, theirs)


def test_reading_the_event_cache_imports_no_zarr(make_event_file, tmp_path):
    path = make_event_file(n=3000, sorted=False)  # an unsorted file goes through the cache
    code = textwrap.dedent(f"""
        import sys, xcube
        ev = xcube.open_events({str(path)!r})
        cube = xcube.bin_events(ev, time=100.0).compute()
        print(int(cube.sum()), "zarr" in sys.modules)
    """)
    env = {**os.environ, "XCUBE_CACHE_DIR": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.split() == ["3000", "True"]  # the first open converts the file: Zarr writes the cache
    assert any(p.suffix == ".zarr" for p in (tmp_path / "cache").iterdir())
    again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert again.stdout.split() == ["3000", "False"], again.stderr
    store = next(p for p in (tmp_path / "cache").iterdir() if p.suffix == ".zarr")
    assert json.loads((store / "zarr.json").read_text())["attributes"][COMPLETE]
