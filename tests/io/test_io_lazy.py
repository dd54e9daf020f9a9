"""Opening is lazy: a 2e7-event (400 MB) file opens with a peak of traced
memory far below its size, builds Dask arrays and reads no column but one
streaming pass over TIME (and not even that when opened again)."""
import tracemalloc

import dask.array as da
import numpy as np
import pytest
from astropy.io import fits

import xcube
from xcube.io import memmap
from xcube.io.events_fits import DEFAULT_CHUNK

N_BIG = 20_000_000
BLOCK = 1_000_000


def write_big_sorted_file(path, n=N_BIG):
    """An XMM-MOS1-like sorted event file written block by block (the header
    by astropy, the rows as raw big-endian records), so that writing it needs
    only one block of memory."""
    dtype = np.dtype([("TIME", ">f8"), ("X", ">i4"), ("Y", ">i4"), ("PI", ">i2"), ("PATTERN", "u1"), ("CCDNR", "u1")])
    cols = [fits.Column(name, fmt, array=np.zeros(0, dtype[name].newbyteorder("=")))
            for name, fmt in zip(dtype.names, ("D", "J", "J", "I", "B", "B"))]
    ev = fits.BinTableHDU.from_columns(cols, nrows=0, name="EVENTS")
    hdr = ev.header
    hdr["NAXIS2"] = n
    for k, v in {"TELESCOP": "XMM", "INSTRUME": "EMOS1", "OBS_ID": "0999999999", "MJDREF": 50814.0,
                 "TSTART": 1.0e8, "TSTOP": 1.0e8 + n * 1e-3, "TIMEZERO": 0.0}.items():
        hdr[k] = v
    gti = fits.BinTableHDU.from_columns([fits.Column("START", "D", array=[1.0e8]),
                                         fits.Column("STOP", "D", array=[1.0e8 + n * 1e-3])], name="GTI")
    with open(path, "wb") as fh:
        fh.write(fits.PrimaryHDU().header.tostring().encode())
        fh.write(hdr.tostring().encode())
        rec = np.empty(BLOCK, dtype)
        for a in range(0, n, BLOCK):
            m = min(BLOCK, n - a)
            i = np.arange(a, a + m)
            rec = rec[:m]
            rec["TIME"] = 1.0e8 + i * 1e-3
            rec["X"] = (i * 7919) % 51840
            rec["Y"] = (i * 104729) % 51840
            rec["PI"] = 200 + i % 11800
            rec["PATTERN"] = i % 13
            rec["CCDNR"] = 1 + i % 7
            fh.write(rec.tobytes())
        fh.write(b"\0" * ((-n * dtype.itemsize) % 2880))
        fh.write(gti.header.tostring().encode())
        data = np.array([(1.0e8, 1.0e8 + n * 1e-3)], dtype=[("START", ">f8"), ("STOP", ">f8")]).tobytes()
        fh.write(data + b"\0" * ((-len(data)) % 2880))
    return path


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    return write_big_sorted_file(tmp_path_factory.mktemp("big") / "big_events.fits")


@pytest.fixture
def reads(monkeypatch):
    """Rows read from the file per column (via FitsColumn) while the test runs."""
    counts = {}
    orig = memmap.FitsColumn.__getitem__

    def counting(self, key):
        out = orig(self, key)
        counts[self.field] = counts.get(self.field, 0) + np.size(out)
        return out

    monkeypatch.setattr(memmap.FitsColumn, "__getitem__", counting)
    return counts


def _traced_peak(fn):
    tracemalloc.start()
    try:
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, peak


def test_open_big_file_is_lazy(big_file, reads):
    size = big_file.stat().st_size
    assert size > 390e6
    memmap._check_block(np.zeros(3))  # compile the TIME-check kernel outside the measurement
    ev, peak = _traced_peak(lambda: xcube.open_events(big_file))
    assert ev.sizes["event"] == N_BIG
    # one streaming pass over TIME in blocks of SCAN_ROWS: peak ~ one block, < 1/10 of the file
    assert peak < size / 10, f"peak traced memory {peak / 1e6:.0f} MB for a {size / 1e6:.0f} MB file"
    assert reads == {"TIME": N_BIG}  # TIME scanned once; no other column touched
    columns = [v for v in ev.data_vars if ev[v].dims == ("event",)]
    assert {"time", "x", "y", "pi", "energy", "pattern", "ccdnr"} <= set(columns)
    for v in columns:
        assert isinstance(ev[v].data, da.Array), v
        assert ev[v].data.npartitions == -(-N_BIG // DEFAULT_CHUNK)

    # opened again: the TIME check comes from the cache record - nothing is read
    reads.clear()
    ev2, peak2 = _traced_peak(lambda: xcube.open_events(big_file))
    assert reads == {} and peak2 < 5e6

    # selecting a time range reads only the chunk(s) holding it
    first = ev2.time.isel(event=slice(0, 10)).values
    np.testing.assert_array_equal(first, 1.0e8 + np.arange(10) * 1e-3)
    assert reads == {"TIME": 10}
    assert int(ev2.x.isel(event=N_BIG - 1)) == ((N_BIG - 1) * 7919) % 51840


def test_zarr_store_opens_lazily(make_event_file, tmp_path, reads):
    ev = xcube.open_events(make_event_file(n=20000), chunks=5000)
    store = xcube.to_zarr(ev, tmp_path / "obs.zarr")
    back, peak = _traced_peak(lambda: xcube.open_events(store))
    for v in back.data_vars:
        if back[v].dims == ("event",):
            assert isinstance(back[v].data, da.Array) and back[v].data.npartitions == 4
        else:
            assert isinstance(back[v].data, np.ndarray)  # GTIs are small and loaded
    assert peak < 5e6
