"""Zarr event stores and the event cache: exact round trips (hypothesis),
atomic writes (exception and SIGKILL mid-write), rebuilding a broken cache."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xcube
from xcube.io.atomic import remove_stale
from xcube.io.cache import COMPLETE, cache_dir, is_complete, open_zarr_events, to_zarr
from xcube.io.events_fits import events_dataset
from xcube.missions import get_profile

MOS1 = get_profile("xmm-mos1")


def assert_same_events(a: xr.Dataset, b: xr.Dataset):
    """Identical values, dtypes, dims, variable attrs and dataset attrs."""
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        va, vb = a[name], b[name]
        assert va.dims == vb.dims and va.dtype == vb.dtype, name
        np.testing.assert_array_equal(va.values, vb.values, err_msg=name)
        assert va.attrs == vb.attrs, name
    assert a.attrs == b.attrs


@st.composite
def event_lists(draw):
    n = draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    t0 = draw(st.floats(0.0, 7.0e8))
    time_ = np.sort(t0 + rng.uniform(0.0, draw(st.floats(1e-3, 1e5)), n))
    pi = rng.integers(0, 20000, n).astype(np.int16)
    cols = {"time": time_, "x": rng.integers(-5, 52000, n).astype(np.int32),
            "y": rng.integers(0, 52000, n).astype(np.int32), "pi": pi, "energy": MOS1.energy(pi)}
    if draw(st.booleans()):
        cols["pattern"] = rng.integers(0, 256, n).astype(np.uint8)
        cols["flag"] = rng.choice([0, 0, 1, 2**20], n).astype(np.int32)
        cols["is_hot"] = rng.random(n) < 0.1
        cols["zeros"] = np.zeros(n, np.int64)  # zeros must stay zeros (not read back as fill values)
        cols["dx"] = rng.normal(size=n).astype(np.float32)
    chunk = draw(st.integers(max(1, n // 6), n))  # at most ~6 chunks: exercises chunking, stays fast
    data = {k: da.from_array(v, chunks=chunk) for k, v in cols.items()}
    k = draw(st.integers(0, 5))
    starts = np.sort(rng.uniform(t0, t0 + 1e5, k))
    gti = (starts, starts + rng.uniform(0.1, 10.0, k))
    ccd_gti = {}
    if draw(st.booleans()) and k:
        ccd_gti = {c: (gti[0][: c % k + 1], gti[1][: c % k + 1]) for c in (1, 2, 7)}
    attrs = {"mission": "XMM-Newton", "instrument": "EMOS1", "profile": "xmm-mos1",
             "obs_id": draw(st.text("0123456789", min_size=10, max_size=10)),
             "object": draw(st.text(min_size=0, max_size=20)), "mjdref": 50814.0 + draw(st.floats(0, 1)),
             "tstart": float(t0), "ra_pnt": draw(st.floats(0, 360)), "CRPIX1": 25921.0,
             "selection": draw(st.lists(st.text(max_size=12), max_size=3))}
    return events_dataset(data, gti, ccd_gti, attrs)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ev=event_lists())
def test_zarr_round_trip_is_exact(ev):
    with tempfile.TemporaryDirectory() as tmp:
        store = to_zarr(ev, Path(tmp) / "obs.zarr")
        assert is_complete(store)
        back = xcube.open_events(store)
        assert all(isinstance(back[v].data, da.Array) for v in back.data_vars if "event" in back[v].dims)
        assert_same_events(ev.compute(), back.compute())


def test_fits_to_zarr_round_trip(make_event_file, tmp_path):
    path = make_event_file(n=3000, gti=([1.0e8, 1.0e8 + 5e3], [1.0e8 + 4e3, 1.0e8 + 1e4]))
    ev = xcube.open_events(path, chunks=1000)
    store = xcube.to_zarr(ev, tmp_path / "obs.zarr")
    back = xcube.open_events(store)
    assert back["time"].data.chunks == ev["time"].data.chunks  # chunks follow the source
    assert_same_events(ev.compute(), back.compute())
    meta = json.loads((store / "time" / "zarr.json").read_text())
    blosc = [c for c in meta["codecs"] if c["name"] == "blosc"][0]["configuration"]
    assert blosc["cname"] == "lz4" and blosc["shuffle"] == "shuffle"
    with pytest.raises(FileExistsError, match=r"obs\.zarr: exists; pass overwrite=True"):
        xcube.to_zarr(ev, store)
    # a store written from a store is the same again, and with another codec (read by the same decoder)
    assert_same_events(ev.compute(), xcube.open_events(xcube.to_zarr(back, tmp_path / "again.zarr")).compute())
    small = xcube.to_zarr(back, tmp_path / "zstd.zarr", cname="zstd", clevel=3)
    assert json.loads((small / "time" / "zarr.json").read_text())["codecs"][1]["configuration"]["cname"] == "zstd"
    assert_same_events(ev.compute(), xcube.open_events(small).compute())
    xcube.to_zarr(ev.isel(event=slice(0, 10)), store, overwrite=True)
    assert xcube.open_events(store).sizes["event"] == 10


def test_exception_mid_write_leaves_nothing(tmp_path):
    t = da.from_array(np.arange(40.0), chunks=10)

    def boom(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 2:
            raise RuntimeError("disk full")
        return block

    ev = events_dataset({"time": t, "x": t.map_blocks(boom, dtype=float)}, ([0.0], [40.0]), {}, {"mission": "T"})
    store = tmp_path / "obs.zarr"
    with pytest.raises(RuntimeError, match="disk full"):
        to_zarr(ev, store)
    assert not store.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary directory is gone too
    with pytest.raises(FileNotFoundError, match=r"obs\.zarr: no such file"):
        xcube.open_events(store)


_WRITER = textwrap.dedent("""
    import sys, time
    import dask.array as da, numpy as np
    from xcube.io.cache import to_zarr
    from xcube.io.events_fits import events_dataset

    t = da.from_array(np.arange(400.0), chunks=100)

    def slow(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 2:
            print("WRITING", flush=True)
            time.sleep(120)
        return block

    ev = events_dataset({"time": t, "x": t.map_blocks(slow, dtype=float)}, ([0.0], [400.0]), {}, {"mission": "T"})
    to_zarr(ev, sys.argv[1])
""")


def test_kill_mid_write_never_leaves_a_valid_store(tmp_path):
    store = tmp_path / "obs.zarr"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(store)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    line = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(90)
    try:
        assert line and line[0].strip() == "WRITING", "writer did not start"
        time.sleep(0.3)  # let the other chunks land in the temporary store
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert not store.exists()
    (tmp,) = list(tmp_path.glob(".obs.zarr.tmp-*"))  # the killed writer's leftovers
    assert (tmp / "zarr.json").exists() and not is_complete(tmp)
    with pytest.raises(OSError, match=r"incomplete xcube store"):
        open_zarr_events(tmp)
    # even a half-written store under the final name (e.g. copied by hand) never opens
    tmp.rename(store)
    with pytest.raises(OSError, match=rf"{store.name}: incomplete xcube store"):
        xcube.open_events(store)
    # leftovers older than the age limit are cleaned up; fresh ones (maybe still written) are kept
    store.rename(tmp)
    assert remove_stale(store) == 0 and tmp.exists()
    old = time.time() - 7200
    for f in [tmp, *tmp.rglob("*")]:  # the age is that of the newest file inside
        os.utime(f, (old, old))
    assert remove_stale(store) == 1 and not tmp.exists()


def test_broken_cache_is_rebuilt(make_event_file, tmp_path):
    path = make_event_file(n=2000, name="obs.evt.gz", gzip=True)
    ev = xcube.open_events(path)
    assert ev.attrs["cache_reason"] == "gzip-compressed"
    (store,) = list(cache_dir().glob("obs.evt.gz-*.zarr"))
    expect = ev.compute()
    # a store that lost its completion record (interrupted rewrite) is not trusted ...
    meta = json.loads((store / "zarr.json").read_text())
    del meta["attributes"][COMPLETE]
    (store / "zarr.json").write_text(json.dumps(meta))
    shutil_leftover = store.with_name(f".{store.name}.tmp-deadbeef")
    shutil_leftover.mkdir()
    os.utime(shutil_leftover, (time.time() - 7200,) * 2)
    assert not is_complete(store)
    # ... and is rebuilt on the next open, cleaning old leftovers of killed writes
    again = xcube.open_events(path)
    assert is_complete(store) and not shutil_leftover.exists()
    assert_same_events(expect, again.compute())


def test_cache_is_reused_and_keyed_by_file_identity(make_event_file):
    path = make_event_file(n=500, name="obs.fits.gz", gzip=True)
    xcube.open_events(path)
    stores = list(cache_dir().glob("obs.fits.gz-*.zarr"))
    assert len(stores) == 1
    mtime = stores[0].stat().st_mtime_ns
    xcube.open_events(path)
    assert stores[0].stat().st_mtime_ns == mtime  # not rewritten
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # the file changed: new key
    xcube.open_events(path)
    assert len(list(cache_dir().glob("obs.fits.gz-*.zarr"))) == 2


def test_direct_chunk_reader_matches_zarr(tmp_path):
    """The direct blosc reader of open_events(store) gives what zarr-python
    gives, including chunks Zarr never wrote (all fill value)."""
    n = 1000
    rng = np.random.default_rng(0)
    cols = {"time": np.sort(rng.uniform(0, 100, n)), "x": rng.integers(0, 9, n).astype(np.int32),
            "zeros": np.zeros(n, np.int16), "nans": np.full(n, np.nan, np.float32), "flag": rng.random(n) < 0.5}
    cols["x"][:300] = 0  # a whole chunk of fill values
    ev = events_dataset({k: da.from_array(v, chunks=300) for k, v in cols.items()}, ([0.0], [100.0]), {}, {})
    store = to_zarr(ev, tmp_path / "s.zarr")
    assert not (store / "zeros" / "c" / "0").exists()  # not written by zarr
    back = xcube.open_events(store)
    ref = xr.open_zarr(store, consolidated=False, zarr_format=3)
    for name in cols:
        assert back[name].data.name.startswith("xcube-zarr-"), name  # the direct reader was used
        np.testing.assert_array_equal(back[name].values, ref[name].values, err_msg=name)
        np.testing.assert_array_equal(back[name].values, cols[name], err_msg=name)


def test_selected_events_with_uneven_chunks_write_to_zarr(make_event_file, tmp_path):
    ev = xcube.open_events(make_event_file(n=20_000), chunks=5_000)
    sel = xcube.select(ev, energy_band=(0.5, 2.0))
    assert len(set(sel.chunks["event"][:-1])) > 1  # a selection leaves uneven chunks
    back = xcube.open_events(xcube.to_zarr(sel, tmp_path / "sel.zarr"))
    assert np.array_equal(back["time"].values, sel["time"].values)
    assert np.array_equal(back["pi"].values, sel["pi"].values)


def test_cache_sees_a_rewrite_in_the_middle_with_the_same_size_and_mtime(tmp_path):
    """A byte changed beyond the fingerprinted 64 KiB ends, size and mtime kept: converted again."""
    from astropy.io import fits

    from xcube.io.write_events import write_events_fits

    rng = np.random.default_rng(3)
    n = 30_000
    t = rng.uniform(1e8, 1e8 + 1000.0, n)  # unsorted: read through the cache
    path = write_events_fits(tmp_path / "u.fits", {"TIME": t, "PI": rng.integers(30, 1000, n).astype(np.int32)},
                             gti=([1e8], [1e8 + 1000.0]), header={"TELESCOP": "XMM", "INSTRUME": "EMOS1"})
    before = xcube.open_events(path)
    with fits.open(path) as h:
        off, row = h["EVENTS"]._data_offset, h["EVENTS"].header["NAXIS1"]
        pi_at = h["EVENTS"].data.dtype.fields["PI"][1]
    mid = n // 2
    pos = off + mid * row + pi_at
    assert 65_536 < pos < path.stat().st_size - 65_536
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(pos)
        old = int.from_bytes(f.read(4), "big", signed=True)
        f.seek(pos)
        f.write((old + 1000).to_bytes(4, "big", signed=True))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = xcube.open_events(path)
    i = np.flatnonzero(before.time.values == t[mid])
    assert after.pi.values[i] == before.pi.values[i] + 1000


def test_an_entry_another_process_finished_meanwhile_is_used(make_event_file, monkeypatch):
    """Sweep p25: a second process finishing the same conversion between this one's check and its write made
    open_events raise FileExistsError ('pass overwrite=True'), and open_archive skip the file."""
    import xcube.io.events as events_module

    path = make_event_file(n=2000, name="race.evt.gz", gzip=True)
    real = events_module.to_zarr

    def other_process_first(ds, store, overwrite=False, **kw):
        monkeypatch.setattr(events_module, "to_zarr", real)
        xcube.open_events(path)  # the other writer, done before this one starts writing
        return real(ds, store, overwrite=overwrite, **kw)

    monkeypatch.setattr(events_module, "to_zarr", other_process_first)
    ev = xcube.open_events(path)
    assert ev.sizes["event"] == 2000 and len(list(cache_dir().glob("race.evt.gz-*.zarr"))) == 1


@pytest.mark.parametrize("damage", ["key", "type", "value"])
def test_a_damaged_scan_record_is_scanned_again(make_event_file, damage):
    """Sweep p25: a scan record with a damaged key or of another JSON type crashed every later open (KeyError
    'sorted'); a flipped value (n_null 1 -> 0) was trusted and brought back an event with a null X."""
    from astropy.io import fits

    x = np.r_[-99999999, np.full(499, 25000)].astype(np.int32)
    path = make_event_file(n=500, name=f"scan_{damage}.fits", columns={"X": x})
    with fits.open(path, mode="update") as hdul:
        h = hdul["EVENTS"].header
        h[f"TNULL{[h[f'TTYPE{i}'] for i in range(1, h['TFIELDS'] + 1)].index('X') + 1}"] = -99999999
    with pytest.warns(UserWarning, match="dropped 1 of 500 events"):
        first = xcube.open_events(path)
    (record,) = list((cache_dir() / "scan").glob(f"scan_{damage}.fits-*.json"))
    text = record.read_text()
    record.write_text({"key": text.replace('"sorted"', '"sortee"'), "type": "[]",
                       "value": text.replace('"n_null": 1', '"n_null": 0')}[damage])
    for store in cache_dir().glob(f"scan_{damage}.fits-*.zarr"):  # the converted entry gone: the record decides alone
        import shutil

        shutil.rmtree(store)
    with pytest.warns(UserWarning, match="dropped 1 of 500 events"):
        again = xcube.open_events(path)
    assert again.sizes["event"] == first.sizes["event"] == 499 and int(again["x"].min()) == 25000
    assert '"_crc32"' in record.read_text() and '"sortee"' not in record.read_text()


def test_a_converted_store_keeps_the_dead_time_of_its_file(tmp_path):
    """Sweep p25: a store's spectrum exposure read the dead-time keywords of whatever file sat at its source
    path: 16485.894 s with the MOS1 file there, 16650.642 s once it moved, MOS2's live time with MOS2 there."""
    import shutil

    from conftest import real_file

    from xcube.io.cache import to_zarr

    fits_path = tmp_path / "obs" / "m1.FTZ"
    fits_path.parent.mkdir()
    shutil.copy(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"), fits_path)
    region = "physical;circle(24747,24044,600)"
    want = xcube.spectrum(xcube.open_events(fits_path), region=region).attrs["exposure"]
    store = to_zarr(xcube.open_events(fits_path), tmp_path / "m1.zarr")
    shutil.copy(real_file("xmm", "P0001730201M2S003MIEVLI.FTZ"), fits_path)  # another camera at that path now
    assert xcube.spectrum(xcube.open_events(store), region=region).attrs["exposure"] == pytest.approx(want, rel=1e-12)
    fits_path.unlink()
    assert xcube.spectrum(xcube.open_events(store), region=region).attrs["exposure"] == pytest.approx(want, rel=1e-12)
    assert want == pytest.approx(16485.894, abs=0.01)


def test_old_temporaries_go_when_the_entry_is_opened_or_a_store_written(make_event_file, tmp_path):
    """Sweep p25: a killed rewrite's temporary (a full copy) stayed for good once its entry existed again."""
    from xcube.io.cache import to_zarr

    path = make_event_file(n=300, name="stale.evt.gz", gzip=True)
    ev = xcube.open_events(path)
    (store,) = list(cache_dir().glob("stale.evt.gz-*.zarr"))
    leftovers = [store.with_name(f".{store.name}.tmp-0badcafe"), tmp_path / ".out.zarr.tmp-0badcafe"]
    for d in leftovers:
        d.mkdir()
        (d / "zarr.json").write_text("{}")
        for p in (d / "zarr.json", d):
            os.utime(p, (time.time() - 7200,) * 2)
    xcube.open_events(path)  # the entry is complete: opened, and its old temporary removed
    to_zarr(ev, tmp_path / "out.zarr")
    assert not any(d.exists() for d in leftovers)


def test_the_first_opens_chunks_do_not_stick_to_the_cache_entry(make_event_file):
    """Sweep p25: the chunks= of the open that filled the cache became every later open's default."""
    path = make_event_file(n=3000, name="chunks.evt.gz", gzip=True)
    assert xcube.open_events(path, chunks=1000)["time"].data.numblocks == (3,)
    assert xcube.open_events(path)["time"].data.numblocks == (1,)  # the documented default, 1,048,576 events


def test_damage_of_the_input_store_stays_a_store_corrupt_error(make_event_file, tmp_path):
    """Sweep p25: to_zarr re-raised a damaged input chunk as OSError '[Errno None] ... while writing <output>'."""
    from xcube.io.cache import to_zarr
    from xcube.io.integrity import StoreCorruptError

    store = to_zarr(xcube.open_events(make_event_file(n=3000)), tmp_path / "in.zarr")
    chunk = next(p for p in (store / "x" / "c").rglob("*") if p.is_file())
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x40
    chunk.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError, match="in.zarr"):
        to_zarr(xcube.open_events(store), tmp_path / "copy.zarr")
    assert not (tmp_path / "copy.zarr").exists()


def test_a_store_of_a_file_without_dead_time_keywords_stays_without(make_event_file, tmp_path):
    """Review p25: the attr was written only when the file had keywords, so such a store still read the file
    now at its source path (a MOS1 file there gave 7823 s for 8000 s)."""
    import shutil

    from conftest import real_file

    from xcube.io.cache import to_zarr

    path = make_event_file(n=2000, duration=8000.0, name="plain.fits")
    region = "physical;circle(26000,26000,6000)"
    want = xcube.spectrum(xcube.open_events(path), region=region).attrs["exposure"]
    store = to_zarr(xcube.open_events(path), tmp_path / "plain.zarr")
    shutil.copy(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"), path)
    assert xcube.spectrum(xcube.open_events(store), region=region).attrs["exposure"] == want == 8000.0
