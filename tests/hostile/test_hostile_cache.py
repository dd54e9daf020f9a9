"""Hostile cases for the Zarr event cache and memory-mapped files: every kind
of damage is detected, named, and (for cache entries) rebuilt."""
from __future__ import annotations

import errno
import json
import os
import shutil
import warnings

import numpy as np
import pytest

import xcube
from xcube.io import cache as cachemod
from xcube.io.integrity import FileChangedError, StoreCorruptError


def _gz(path, level=6):
    """gzip copy (no name or time in its header: same-size inputs give
    same-size outputs with ``level=0``)."""
    import gzip

    out = path.with_name(path.name + ".gz")
    out.write_bytes(gzip.compress(path.read_bytes(), compresslevel=level, mtime=0))
    return out


@pytest.fixture
def cached(make_event_file, tmp_path, monkeypatch):
    """A gzip event file, its reference columns, and its (complete) cache store, in chunks of 1000 events
    (cache entries are stored in the default chunks: made small here)."""
    import xcube.io.events as events_module

    monkeypatch.setattr(events_module, "DEFAULT_CHUNK", 1000)
    src = make_event_file(n=5000)
    gz = _gz(src)
    cache = tmp_path / "cache"
    ref = xcube.open_events(src)
    ref = {k: ref[k].values for k in ("time", "x", "y", "pi")}
    xcube.open_events(gz, cache=cache, chunks=1000)
    (store,) = [p for p in cache.iterdir() if p.suffix == ".zarr"]
    return gz, cache, store, ref


def _reopen(gz, cache):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = xcube.open_events(gz, cache=cache, chunks=1000)
    return ev, [str(w.message) for w in caught]


def _assert_same(ev, ref):
    for k, v in ref.items():
        np.testing.assert_array_equal(ev[k].values, v)


def test_manifest_is_recorded(cached):
    _, _, store, _ = cached
    rec = json.loads((store / "zarr.json").read_text())["attributes"][cachemod.COMPLETE]
    cols = rec["columns"]
    assert {"time", "x", "y", "pi", "gti_start"} <= set(cols)
    assert cols["time"]["n_chunks"] == 5 and len(cols["time"]["chunks"]) == 5
    size, crc = cols["time"]["chunks"]["0"]
    assert size == (store / "time" / "c" / "0").stat().st_size and isinstance(crc, int)


@pytest.mark.parametrize("damage", ["missing_chunk", "missing_metadata", "truncated_chunk", "missing_column"])
def test_damaged_cache_entry_is_rebuilt_with_a_warning(cached, damage):
    gz, cache, store, ref = cached
    chunk = store / "x" / "c" / "2"
    if damage == "missing_chunk":
        chunk.unlink()
    elif damage == "missing_metadata":
        (store / "pi" / "zarr.json").unlink()
    elif damage == "truncated_chunk":
        chunk.write_bytes(chunk.read_bytes()[:-7])
    else:
        shutil.rmtree(store / "y")
    ev, msgs = _reopen(gz, cache)
    assert any("damaged event cache entry" in m and str(store) in m for m in msgs), msgs
    _assert_same(ev, ref)
    cachemod.check_store(store, checksums=True)  # the rebuilt store is whole


def test_flipped_bit_is_detected_at_read_and_the_entry_rebuilt(cached):
    gz, cache, store, ref = cached
    chunk = store / "time" / "c" / "1"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x10
    st = chunk.stat()
    chunk.write_bytes(bytes(data))
    os.utime(chunk, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime: only the CRC can tell
    ev, _ = _reopen(gz, cache)
    with pytest.raises(StoreCorruptError, match=r"c/1 fails its size/CRC32C check.*rebuilt at the next open"):
        ev["time"].values
    assert not cachemod.is_complete(store)  # marked stale
    ev, _ = _reopen(gz, cache)
    _assert_same(ev, ref)


def test_full_verification_finds_a_flipped_bit_at_open(cached):
    _, _, store, _ = cached
    chunk = store / "pi" / "c" / "0"
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 1
    chunk.write_bytes(bytes(data))
    cachemod.check_store(store)  # sizes agree
    with pytest.raises(StoreCorruptError, match="pi.*CRC32C"):
        cachemod.open_zarr_events(store, verify="full")


def test_user_store_damage_names_store_and_chunk(make_event_file, tmp_path):
    ev = xcube.open_events(make_event_file(n=3000), chunks=1000)
    store = xcube.to_zarr(ev, tmp_path / "ev.zarr")
    (store / "time" / "c" / "1").unlink()
    with pytest.raises(StoreCorruptError, match=r"ev\.zarr.*time.*c/1 is missing"):
        xcube.open_events(store)


def test_source_changed_with_same_size_and_mtime_is_not_served_from_cache(make_event_file, tmp_path):
    src = make_event_file(n=2000, seed=1)
    other = make_event_file(n=2000, seed=2)
    gz, gz2 = _gz(src, level=0), _gz(other, level=0)
    cache = tmp_path / "cache"
    first = xcube.open_events(gz, cache=cache)["x"].values
    st = gz.stat()
    data = gz2.read_bytes()
    assert len(data) == st.st_size
    gz.write_bytes(data)
    os.utime(gz, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = xcube.open_events(gz, cache=cache)["x"].values
    assert not np.array_equal(first, second)


def test_uncompressed_source_changed_with_same_size_and_mtime(make_event_file, tmp_path):
    """Same check for the TIME-scan record of a memory-mapped file: an unsorted
    file written over a sorted one (same size, mtime restored) is re-scanned."""
    a = make_event_file(n=2000, name="a.fits")
    b = make_event_file(n=2000, name="b.fits", sorted=False)
    xcube.open_events(a)
    st = a.stat()
    shutil.copyfile(b, a)
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    ev = xcube.open_events(a)
    assert ev.attrs.get("cache_reason") == "not time-sorted"
    assert np.all(np.diff(ev["time"].values) >= 0)


def test_full_disk_under_the_cache_names_the_cache_path(cached, monkeypatch, tmp_path):
    gz, _, _, _ = cached

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cachemod, "store_manifest", full)
    cache = tmp_path / "full-cache"
    with pytest.raises(OSError, match=r"cannot write the event cache .*full-cache.*no space left") as info:
        xcube.open_events(gz, cache=cache)
    assert info.value.errno == errno.ENOSPC
    assert not any(cache.glob("*.zarr"))  # nothing half-written left as a store


def test_memmapped_file_overwritten_after_open(make_event_file):
    path = make_event_file(n=3000, name="m.fits")
    ev = xcube.open_events(path)
    other = make_event_file(n=3000, seed=5, name="m2.fits")
    st = path.stat()
    shutil.copyfile(other, path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(FileChangedError, match=r"m\.fits.*overwritten or modified after it was opened"):
        ev["x"].values


def test_memmapped_file_truncated_after_open_raises_not_sigbus(make_event_file):
    path = make_event_file(n=50_000, name="t.fits")
    ev = xcube.open_events(path)
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 3)
    with pytest.raises(FileChangedError, match=r"t\.fits.*truncated after it was opened.*nothing was read"):
        ev["time"].values


def test_real_full_disk_under_the_cache(make_event_file, tmp_path):
    """A real full file system (a 256 KiB tmpfs, mounted when running as root)."""
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    gz = _gz(make_event_file(n=200_000))
    cache = tmp_path / "tiny"
    cache.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(cache)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with pytest.raises(OSError, match=r"cannot write the event cache .*tiny.*no space left") as info:
            xcube.open_events(gz, cache=cache)
        assert info.value.errno == errno.ENOSPC
    finally:
        subprocess.run(["umount", str(cache)], check=False)


def test_fingerprint_catches_what_stat_cannot(make_event_file, monkeypatch):
    """On a file system whose times do not change (coarse timestamps), the
    content fingerprint still tells an overwritten file."""
    from xcube.io import integrity

    path = make_event_file(n=3000, name="f.fits")
    ident = integrity.file_identity(path)
    integrity.check_unchanged(path, ident)
    data = bytearray(path.read_bytes())
    data[100] ^= 1  # a header byte: inside the fingerprinted first block
    path.write_bytes(bytes(data))
    st = path.stat()
    stale = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, ident[4])  # times as they are now
    monkeypatch.setattr(integrity, "FINGERPRINT_INTERVAL", 0.0)
    with pytest.raises(FileChangedError, match=r"f\.fits.*same size and times, other content"):
        integrity.check_unchanged(path, stale)
