"""Event-file writers: write_events (EventList -> OGIP file) and write_events_fits (columns -> file)."""
from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
from astropy.io import fits

import xcube
import xcube.simulate as sim
from xcube.io.write_events import write_events, write_events_fits


def test_write_round_trip_all_columns(tmp_path):
    ev, _ = sim.event_list("xmm-mos1", duration=4000.0, seed=10, chunk_events=3000)
    assert len(ev["time"].data.chunks[0]) > 1  # streamed chunk by chunk
    path = write_events(tmp_path / "mos1.fits", ev)
    back = xcube.open_events(path)
    assert back.attrs["profile"] == "xmm-mos1"
    for c in ("time", "x", "y", "pi", "energy", "pattern", "flag", "ccdnr"):
        np.testing.assert_array_equal(back[c].values, ev[c].values)
    for k in ("CRVAL1", "CRVAL2", "CRPIX1", "CDELT1", "obs_id", "ra_pnt", "mjdref", "tstart", "tstop"):
        assert back.attrs[k] == pytest.approx(ev.attrs[k], rel=1e-12) if isinstance(ev.attrs[k], float) \
            else back.attrs[k] == ev.attrs[k]
    assert sorted(set(back["ccd_gti_ccd"].values)) == list(range(1, 8))
    assert back.attrs["exposure"] == pytest.approx(4000.0)
    with pytest.raises(OSError, match="exists"):
        write_events(tmp_path / "mos1.fits", ev)
    # gzip (FTZ) streams too and reads back through the cache
    gz = write_events(tmp_path / "mos1.FTZ", ev)
    np.testing.assert_array_equal(xcube.open_events(gz)["time"].values, ev["time"].values)


def test_streaming_writer_matches_in_memory_writer(tmp_path):
    rng = np.random.default_rng(0)
    n = 5000
    cols = {"TIME": np.sort(rng.uniform(1e8, 1e8 + 1e3, n)), "X": rng.integers(1, 50000, n).astype(np.int32),
            "Y": rng.integers(1, 50000, n).astype(np.int32), "PI": rng.integers(200, 12000, n).astype(np.int16),
            "PATTERN": rng.integers(0, 13, n).astype(np.uint8), "FLAG": np.zeros(n, np.int32),
            "GOOD": rng.random(n) < 0.5}
    hdr = {"TELESCOP": "XMM", "INSTRUME": "EMOS1", "MJDREF": 50814.0, "TSTART": 1e8, "TSTOP": 1e8 + 1e3}
    gti = ([1e8], [1e8 + 1e3])
    a = write_events_fits(tmp_path / "a.fits", cols, gti=gti, header=hdr)
    lazy = {k: da.from_array(v, chunks=1234) for k, v in cols.items()}
    b = write_events_fits(tmp_path / "b.fits", lazy, gti=gti, header=hdr)
    with fits.open(a) as ha, fits.open(b) as hb:
        for k in cols:
            np.testing.assert_array_equal(ha["EVENTS"].data[k], hb["EVENTS"].data[k])
        np.testing.assert_array_equal(ha["GTI"].data["START"], hb["GTI"].data["START"])
        assert hb["EVENTS"].header["NAXIS2"] == n
        hb.verify("exception")


def test_writer_streams_dask_columns_one_generation_per_chunk(tmp_path):
    """Each chunk of a lazy event list is produced once for all columns (streamed
    write), not once per column or all at once."""
    calls = []
    rec_dtype = np.dtype([("TIME", "f8"), ("X", "i4"), ("PI", "i2")])

    def block(i):
        calls.append(i)
        r = np.zeros(1000, dtype=rec_dtype)
        r["TIME"] = 1e8 + i * 1000 + np.arange(1000)
        r["X"] = i
        return r

    rec = da.concatenate([da.from_delayed(dask.delayed(block)(i), shape=(1000,), dtype=rec_dtype) for i in range(6)])
    cols = {n: rec[n] for n in rec_dtype.names}
    hdr = {"TELESCOP": "XMM", "INSTRUME": "EMOS1", "MJDREF": 50814.0, "TSTART": 1e8, "TSTOP": 1e8 + 6000}
    path = write_events_fits(tmp_path / "s.fits", cols, gti=([1e8], [1e8 + 6000]), header=hdr)
    assert sorted(calls) == list(range(6))
    back = xcube.open_events(path)
    np.testing.assert_array_equal(back["x"].values, np.repeat(np.arange(6), 1000))
