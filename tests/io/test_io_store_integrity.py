"""Cache and store robustness: a file replaced under the same name and mtime,
checksummed root attrs, verified search-result stores, two writers of one
store, ``~`` in paths, temporaries judged by their newest file, a read-only
cache's damaged entry, an empty ``XCUBE_CACHE_DIR``."""
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from conftest import concurrently

import xcube
from xcube.io import cache as cache_mod
from xcube.io.atomic import atomic_dir, remove_stale
from xcube.io.cache import COMPLETE, cache_dir, check_store, is_complete, open_store, open_zarr_events, to_zarr
from xcube.io.integrity import StoreCorruptError
from xcube.io.paths import expand_path
from xcube.io.product_info import product_kind, product_summary


def _flip_digit(path: Path, old: str, new: str) -> None:
    """Replace the first ``old`` in a text file by ``new`` (a flipped bit in a digit)."""
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


# ------------------------------------------------------------------ H1: memory maps of a replaced file


def test_file_replaced_with_same_size_and_mtime_is_read_anew(make_event_file, tmp_path):
    path = make_event_file(n=3000)
    ev1 = xcube.open_events(path)
    assert ev1.attrs.get("cache_reason") is None  # memory-mapped, not converted
    t1, pi1 = ev1.time.values.copy(), ev1.pi.values.copy()
    st = os.stat(path)
    with fits.open(path) as h:
        h2 = fits.HDUList([x.copy() for x in h])
    h2["EVENTS"].data["TIME"] += 100.0
    h2["EVENTS"].data["PI"] += 7
    v2 = tmp_path / "v2.fits"
    h2.writeto(v2)
    assert v2.stat().st_size == st.st_size
    os.utime(v2, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(v2, path)  # a new inode under the old name, same size and mtime (rsync -t, cp -p, tar)
    ev2 = xcube.open_events(path)
    np.testing.assert_array_equal(ev2.time.values, t1 + 100.0)
    np.testing.assert_array_equal(ev2.pi.values, pi1 + 7)


# ------------------------------------------------------------------ H2: root attrs in the manifest


def test_flipped_bit_in_root_attrs_of_a_cache_entry_is_rebuilt(make_event_file):
    path = make_event_file(n=2000, name="attrs_flip.evt.gz", gzip=True)
    ev = xcube.open_events(path)
    (store,) = list(cache_dir().glob("attrs_flip.evt.gz-*.zarr"))
    assert "attrs_crc" in json.loads((store / "zarr.json").read_text())["attributes"][COMPLETE]
    mjdref = ev.attrs["mjdref"]
    _flip_digit(store / "zarr.json", "50814", "50804")  # one bit of one digit: '1' -> '0'
    with pytest.raises(StoreCorruptError, match="root attributes"):
        check_store(store)
    with pytest.warns(UserWarning, match=rf"damaged event cache entry: {store}: its root attributes"):
        again = xcube.open_events(path)
    assert again.attrs["mjdref"] == mjdref and is_complete(store)


def test_flipped_bit_in_root_attrs_of_a_user_store_raises(make_event_file, tmp_path):
    ev = xcube.open_events(make_event_file(n=500))
    store = to_zarr(ev, tmp_path / "obs.zarr")
    _flip_digit(store / "zarr.json", "263.65", "263.75")  # the sky reference moves by 0.1 deg
    for verify in ("sizes", "full"):
        with pytest.raises(StoreCorruptError, match=rf"{store}: its root attributes .*changed"):
            open_zarr_events(store, verify=verify)


def test_store_without_attrs_checksum_still_opens(make_event_file, tmp_path):
    """Stores written before the attrs checksum existed open as before (attrs unverified)."""
    ev = xcube.open_events(make_event_file(n=500))
    store = to_zarr(ev, tmp_path / "old.zarr")
    doc = json.loads((store / "zarr.json").read_text())
    del doc["attributes"][COMPLETE]["attrs_crc"]
    (store / "zarr.json").write_text(json.dumps(doc))
    assert open_zarr_events(store).sizes["event"] == 500


def test_attrs_checksum_survives_nan_and_unicode_attrs(tmp_path):
    ds = xr.Dataset({"a": ("event", np.arange(10.0))}, attrs={"x": float("nan"), "name": "Ångström", "l": [1, 2]})
    store = to_zarr(ds, tmp_path / "s.zarr")
    check_store(store, checksums=True)


# ------------------------------------------------------------------ H3: search-result stores are verified


def _cube_store(tmp_path, name="sr.zarr") -> Path:
    rng = np.random.default_rng(1)
    counts = rng.poisson(3.0, (4, 8, 8)).astype(np.float32)
    ds = xr.Dataset({"counts": (("time", "y", "x"), counts), "expected": (("time", "y", "x"), counts * 0 + 3.0)},
                    attrs={"kind": "transient-search", "run_id": "r1", "params": {"sigma": 3.0}, "summary": {}})
    return to_zarr(ds.chunk({"time": 2}), tmp_path / name)


def test_damaged_search_result_store_is_an_error(tmp_path):
    store = _cube_store(tmp_path)
    assert product_kind(store) == "cube"
    assert "transient-search result" in product_summary(store, "cube")
    assert float(open_store(store)["counts"].sum()) > 0
    chunk = next(p for p in sorted((store / "counts" / "c").rglob("*")) if p.is_file())
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0x10  # a flipped bit
    chunk.write_bytes(bytes(raw))
    with pytest.raises(StoreCorruptError, match=rf"{store}: column 'counts': chunk file .* fails its CRC32C"):
        product_summary(store, "cube")
    chunk.unlink()  # a missing chunk: zarr alone reads it as zeros
    with pytest.raises(StoreCorruptError, match=r"chunk file .* is missing"):
        open_store(store)


# ------------------------------------------------------------------ M1: two writers of one store path


def test_second_writer_without_overwrite_does_not_replace_the_first(tmp_path, monkeypatch):
    a = xr.Dataset({"v": ("event", np.arange(100.0))}, attrs={"source": "a"})
    b = xr.Dataset({"v": ("event", np.arange(100.0) + 1)}, attrs={"source": "b"})
    target = tmp_path / "out.zarr"
    real = cache_mod.compute

    def racing(writes):  # the other writer finishes while this one is writing
        real(writes)
        monkeypatch.setattr(cache_mod, "compute", real)
        to_zarr(a, target)

    monkeypatch.setattr(cache_mod, "compute", racing)
    with pytest.raises(FileExistsError, match=rf"{target}: another writer created it"):
        to_zarr(b, target)
    np.testing.assert_array_equal(open_zarr_events(target)["v"].values, a["v"].values)  # theirs is kept
    assert not list(tmp_path.glob(".out.zarr.*"))  # ours is dropped


def test_second_writer_of_the_same_content_keeps_theirs_silently(tmp_path, monkeypatch):
    """Two writers of one event-cache entry (same key, same content): no error."""
    a = xr.Dataset({"v": ("event", np.arange(100.0))}, attrs={"source": "a"})
    target = tmp_path / "entry.zarr"
    real = cache_mod.compute

    def racing(writes):
        real(writes)
        monkeypatch.setattr(cache_mod, "compute", real)
        to_zarr(a, target)

    monkeypatch.setattr(cache_mod, "compute", racing)
    assert to_zarr(a, target) == target
    check_store(target, checksums=True)


def test_atomic_dir_refuses_a_target_that_appeared(tmp_path):
    target = tmp_path / "d"
    with pytest.raises(FileExistsError, match=str(target)):
        with atomic_dir(target) as tmp:
            (tmp / "ours").write_text("ours")
            target.mkdir()
            (target / "theirs").write_text("theirs")
    assert [p.name for p in target.iterdir()] == ["theirs"]
    with atomic_dir(target, overwrite=True) as tmp:  # overwrite: the later one wins, as before
        (tmp / "ours").write_text("ours")
    assert [p.name for p in target.iterdir()] == ["ours"]


# ------------------------------------------------------------------ M3: "~" in cache and store paths


def test_tilde_is_expanded_and_never_a_literal_directory(make_event_file, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    assert expand_path("~/x") == home / "x"
    monkeypatch.setenv("XCUBE_CACHE_DIR", "~/xc")
    assert cache_dir() == home / "xc"
    assert cache_dir("~/other") == home / "other"
    ev = xcube.open_events(make_event_file(n=300, name="t.evt.gz", gzip=True), cache="~/c2")
    assert ev.sizes["event"] == 300 and list((home / "c2").glob("t.evt.gz-*.zarr"))
    store = to_zarr(ev, "~/s.zarr")
    assert store == home / "s.zarr" and is_complete(store)
    assert not (work / "~").exists() and not list(home.glob(".s.zarr.tmp-*"))


# ------------------------------------------------------------------ L2: age of a temporary store


def test_remove_stale_judges_age_by_the_newest_file_inside(tmp_path):
    target = tmp_path / "slow.zarr"
    tmp = tmp_path / ".slow.zarr.tmp-0123abcd"
    (tmp / "col" / "c").mkdir(parents=True)
    (tmp / "col" / "c" / "0").write_bytes(b"x")  # a chunk written just now, deep inside
    old = time.time() - 7200
    for d in (tmp, tmp / "col", tmp / "col" / "c"):
        os.utime(d, (old, old))
    assert remove_stale(target) == 0 and tmp.exists()  # a writer is still at work
    os.utime(tmp / "col" / "c" / "0", (old, old))
    assert remove_stale(target) == 1 and not tmp.exists()


# ------------------------------------------------------------------ L3: damaged entry in a read-only cache


def test_damaged_entry_of_unwritable_cache_promises_no_rebuild(make_event_file, monkeypatch):
    path = make_event_file(n=2000, name="ro_cache_flip.evt.gz", gzip=True)
    xcube.open_events(path)
    (store,) = list(cache_dir().glob("ro_cache_flip.evt.gz-*.zarr"))
    chunk = store / "pi" / "c" / "0"
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    chunk.write_bytes(bytes(raw))
    monkeypatch.setattr(cache_mod, "mark_stale", lambda store, reason="": False)  # as on a read-only mount
    ev = xcube.open_events(path)
    with pytest.raises(StoreCorruptError) as info:
        ev.pi.values
    msg = str(info.value)
    assert "cannot be written" in msg and "delete it" in msg and "rebuilt at the next" not in msg


def test_mark_stale_reports_failure(tmp_path):
    assert cache_mod.mark_stale(tmp_path / "absent.zarr") is False


# ------------------------------------------------------------------ L4: empty XCUBE_CACHE_DIR


def test_empty_cache_dir_variable_is_unset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for value in ("", "  "):
        monkeypatch.setenv("XCUBE_CACHE_DIR", value)
        assert cache_dir() == Path.home() / ".cache" / "xcube"


def test_concurrent_cache_conversions_agree(make_event_file, tmp_path):
    """Threads converting one file into one cache entry: all succeed with the same events."""
    path = make_event_file(n=5000, name="c.evt.gz", gzip=True)
    cache = tmp_path / "cc"

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return xcube.open_events(path, cache=cache).time.values

    out, errors = concurrently(run, 3)
    assert not errors and len(out) == 3
    for t in out[1:]:
        np.testing.assert_array_equal(t, out[0])


# ------------------------------------------------------------------ L1: long source names (helper for the callers)


def test_entry_name_of_long_source_names_fits_a_file_name(tmp_path):
    from xcube.io.cache import entry_name

    key = "0" * 24
    assert entry_name("obs.FTZ", key, ".zarr") == f"obs.FTZ-{key}.zarr"
    for name in ("L" * 246 + ".FTZ", "é" * 120 + ".evt"):
        got = entry_name(name, key, ".zarr")
        assert len(got.encode()) <= 200 and got.endswith(f"-{key}.zarr")
        (tmp_path / got).mkdir()  # a valid file name, with room for temporaries' tags
    assert entry_name("L" * 246 + "a", key, ".json") != entry_name("L" * 246 + "b", key, ".json")


def test_atomic_dir_refuses_a_too_long_name_before_writing(tmp_path):
    target = tmp_path / ("L" * 260 + ".zarr")
    with pytest.raises(OSError, match="longer than 255 bytes"):
        with atomic_dir(target):
            pytest.fail("the write must not start")
    assert not list(tmp_path.iterdir())
