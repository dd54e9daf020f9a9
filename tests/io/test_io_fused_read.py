"""Fused reads of several columns of one FITS table (``xcube.io.memmap.read_columns``), as the
search's events pass uses them: the same values as reading the columns one by one."""
import os

import numpy as np
import pytest

import xcube
from xcube.io.integrity import FileChangedError
from xcube.io.memmap import fusable_sources, read_columns, source_of


@pytest.fixture
def fits_events(make_event_file):
    n = 100_003  # several fused blocks and a partial one
    rng = np.random.default_rng(5)
    cols = {"PHA": rng.integers(0, 60000, n).astype(np.uint16),  # written as int16 + TZERO = 32768
            "BADPIX": rng.random(n) < 0.3}                         # a logical column
    return make_event_file(n=n, columns=cols, header={"TIMEZERO": 2.5})


def test_read_columns_equals_column_reads(fits_events):
    ev = xcube.open_events(fits_events, chunks=40_000)
    names = [v for v in ev.data_vars if ev[v].dims == ("event",)]
    arrays = [ev[v].data for v in names]
    sources = fusable_sources(arrays)
    assert sources is not None and "energy" in names and "pha" in names and "badpix" in names
    for start, stop in ((0, 40_000), (40_000, 80_000), (80_000, 100_003), (7, 9)):
        fused = read_columns(sources, start, stop)
        for v, got in zip(names, fused):
            want = ev[v].data[start:stop].compute()
            assert got.dtype == want.dtype, v
            np.testing.assert_array_equal(got, want, err_msg=v)
    assert int(ev["pha"].max()) > 32767 and ev["badpix"].dtype == bool  # TZERO applied; logical column
    energy_first = fusable_sources([ev.energy.data, ev.time.data])  # a derived column may come first
    np.testing.assert_array_equal(read_columns(energy_first, 5, 50)[0], ev.energy.data[5:50].compute())
    assert float(ev.time.values[0]) == pytest.approx(float(read_columns(sources[:1], 0, 1)[0][0]))
    # decoded into given (reused) buffers: views of them with the same values, larger blocks first
    from xcube.binning.events_pass import _scratch
    for start, stop in ((0, 40_000), (80_000, 100_003), (7, 9)):
        bufs = _scratch(sources, stop - start)
        got = read_columns(sources, start, stop, out=bufs)
        for v, g, b in zip(names, got, bufs):
            assert np.shares_memory(g, b) and g.dtype == ev[v].dtype, v
            np.testing.assert_array_equal(g, ev[v].data[start:stop].compute(), err_msg=v)


def test_only_unchanged_lazy_columns_fuse(fits_events):
    ev = xcube.open_events(fits_events)
    assert fusable_sources([ev.time.data, ev.x.data]) is not None
    assert fusable_sources([ev.time.data, ev.x.data + 1]) is None  # derived by the user
    assert fusable_sources([ev.time.data, ev.x.data.rechunk(5000)]) is None
    assert source_of(xcube.select(ev, energy_band=(0.5, 2.0)).time.data) is None
    kept = ev.persist()
    assert fusable_sources([kept.time.data, kept.x.data]) is None  # in memory: its blocks are used


def test_search_on_fits_equals_search_on_persisted_events(tmp_path):
    """The events pass reads a FITS file fused; the same events in memory give the same search."""
    path = tmp_path / "pn.fits"
    xcube.simulate.event_list("xmm-pn", duration=20_000.0, seed=4, path=path,
                              flares=[dict(t_peak=8_000.0, amplitude=0.5, width=60.0)])
    ev = xcube.open_events(path)
    assert fusable_sources([ev[c].data for c in ("time", "x", "y", "energy", "rawx")]) is not None
    lazy = xcube.search_transients(ev, time_bin=50.0)
    mem = xcube.search_transients(ev.persist(), time_bin=50.0)
    assert lazy.summary["n_detections"] >= 1
    assert lazy.summary["hygiene"] == mem.summary["hygiene"]
    assert lazy.detections.drop(columns=["run_id"]).equals(mem.detections.drop(columns=["run_id"]))
    np.testing.assert_array_equal(lazy.cube.values, mem.cube.values)


def test_a_file_changed_after_open_is_not_read(fits_events):
    ev = xcube.open_events(fits_events)
    sources = fusable_sources([ev.time.data, ev.x.data])
    with open(fits_events, "r+b") as f:  # same size, new content and mtime
        f.seek(-100, os.SEEK_END)
        f.write(b"\x01" * 50)
    os.utime(fits_events, ns=(1, 1))
    with pytest.raises(FileChangedError, match="events"):
        read_columns(sources, 0, 10)
