"""One rule in one place: opening xcube's stores or another writer's
(io.cache.open_store), picking a band of a multi-band light curve
(products.hardness.select_band), and holding a region's events in memory."""
import json

import matplotlib
import numpy as np
import pytest
import xarray as xr

import xcube
from xcube.io import cache as cachemod

matplotlib.use("Agg")


def _cube(**attrs):
    return xr.Dataset({"counts": (("time", "y", "x"), np.ones((2, 4, 4))),
                       "expected": (("time", "y", "x"), np.ones((2, 4, 4)))},
                      coords={"time": [0.0, 1.0], "y": np.arange(4.0), "x": np.arange(4.0)}, attrs=attrs)


def _count_root_attrs(monkeypatch):
    calls = []
    real = cachemod.root_attrs

    def counted(store):
        calls.append(store)
        return real(store)

    monkeypatch.setattr(cachemod, "root_attrs", counted)
    return calls


# 1. "verify the store when it is xcube's, else open it plain": io.cache.open_store(foreign_ok=True)
def test_a_stale_store_is_not_plotted_as_a_foreign_one(tmp_path):
    """plot_file opened a store that xcube had marked stale (damaged) as if another writer's, unless its attrs
    said "transient-search"."""
    from xcube.plot import plot_file

    store = cachemod.to_zarr(_cube(), tmp_path / "s.zarr")
    plot_file(store)  # xcube's, complete: verified and drawn
    assert cachemod.mark_stale(store, "a chunk failed its check")
    with pytest.raises(OSError, match=r"incomplete xcube store"):
        plot_file(store)


def test_another_writers_store_is_opened_as_it_is(tmp_path):
    from xcube.frames.store import read_dataset

    _cube(note="not xcube's").to_zarr(tmp_path / "f.zarr", consolidated=False, zarr_format=3)
    assert read_dataset(tmp_path / "f.zarr")["counts"].shape == (2, 4, 4)
    assert cachemod.open_store(tmp_path / "f.zarr", foreign_ok=True).attrs == {"note": "not xcube's"}
    with pytest.raises(OSError, match="incomplete xcube store"):
        cachemod.open_store(tmp_path / "f.zarr")  # (without foreign_ok: xcube's stores only)


def test_a_store_with_an_xcube_kind_but_no_record_is_refused(tmp_path):
    """The same rule for both readers: a ``kind`` attr is xcube's (read_dataset read it unverified)."""
    from xcube.frames.store import read_dataset

    _cube(kind="transient-search").to_zarr(tmp_path / "k.zarr", consolidated=False, zarr_format=3)
    with pytest.raises(OSError, match="incomplete xcube store"):
        read_dataset(tmp_path / "k.zarr")


def test_read_dataset_reads_the_root_attrs_once(tmp_path, monkeypatch):
    from xcube.frames.store import read_dataset, write_dataset

    path = write_dataset(_cube(), tmp_path / "d.zarr")
    calls = _count_root_attrs(monkeypatch)
    assert read_dataset(path)["counts"].shape == (2, 4, 4)
    assert len(calls) == 1
    doc = json.loads((path / "zarr.json").read_text())
    doc["attributes"]["xcube_complete"]["attrs_crc"] += 1
    (path / "zarr.json").write_text(json.dumps(doc))
    with pytest.raises(xcube.io.integrity.StoreCorruptError, match="root attributes"):
        read_dataset(path)
