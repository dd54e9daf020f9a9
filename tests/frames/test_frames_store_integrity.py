"""The frames pipeline's Zarr datasets are checksummed: a missing or damaged
chunk is an error naming the file, never read back as NaN."""
import json

import numpy as np
import pytest
import xarray as xr

from xcube.frames.store import read_dataset, write_dataset
from xcube.io.integrity import StoreCorruptError


def _dataset():
    return xr.Dataset({"mag": (("frame", "star"), np.arange(8.0).reshape(4, 2) + 10),
                       "file": ("frame", np.array(["a", "b", "c", "d"]))},
                      coords={"frame": np.arange(4)}, attrs={"obj": "T", "picks": {"a": 1}, "none": None})


def test_round_trip_keeps_attrs_without_the_record(tmp_path):
    path = write_dataset(_dataset(), tmp_path / "phot_t.zarr")
    back = read_dataset(path)
    np.testing.assert_array_equal(back["mag"].values, _dataset()["mag"].values)
    assert back.attrs == {"obj": "T", "picks": {"a": 1}, "none": None}


def test_missing_or_damaged_chunk_is_an_error(tmp_path):
    path = write_dataset(_dataset(), tmp_path / "phot_t.zarr")
    chunk = next(p for p in sorted((path / "mag" / "c").rglob("*")) if p.is_file())
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0x04
    chunk.write_bytes(bytes(raw))
    with pytest.raises(StoreCorruptError, match=r"phot_t.zarr: column 'mag': chunk file .* fails its CRC32C"):
        read_dataset(path)
    chunk.unlink()
    with pytest.raises(StoreCorruptError, match=r"chunk file .* is missing"):
        read_dataset(path)


def test_dataset_written_before_manifests_is_read_unverified(tmp_path):
    path = write_dataset(_dataset(), tmp_path / "old.zarr")
    doc = json.loads((path / "zarr.json").read_text())
    doc["attributes"].pop("xcube_complete")
    (path / "zarr.json").write_text(json.dumps(doc))
    assert read_dataset(path)["mag"].shape == (4, 2)
