"""The xarray backend entry point: ``xr.open_dataset(path, engine="xcube")``."""
from __future__ import annotations

import numpy as np
import xarray as xr
from conftest import real_file

import xcube


def test_open_dataset_engine_xcube_equals_open_events(make_event_file):
    path = make_event_file(n=500, seed=4)
    ds = xr.open_dataset(path, engine="xcube")
    ev = xcube.open_events(path)
    assert ds.sizes["event"] == 500 and ds.attrs["instrument"] == ev.attrs["instrument"]
    for v in ("time", "x", "y", "pi", "energy", "gti_start", "gti_stop"):
        np.testing.assert_array_equal(ds[v].values, ev[v].values)
    assert np.all(np.diff(ds["time"].values) >= 0)
    small = xr.open_dataset(path, engine="xcube", drop_variables=["pattern"], event_chunks=100)
    assert "pattern" not in small and small["time"].data.chunks[0][0] == 100


def test_backend_is_registered_and_guesses_event_files(make_event_file):
    entry = xr.backends.list_engines()["xcube"]
    assert entry.guess_can_open(str(make_event_file(n=10))) and not entry.guess_can_open("image.png")
    assert not entry.guess_can_open(12345)


def test_open_dataset_real_mos_file():
    path = real_file("xmm", "exod_0001730201_M1_clean.fits")
    ds = xr.open_dataset(path, engine="xcube")
    assert ds.sizes["event"] == 36_824 and ds.attrs["mission"] == "XMM-Newton"
