"""Hostile header values and silent oddities of event files: each gives an
error naming the file and keyword/column, or a warning saying what was done."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import xcube


def _open(path, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = xcube.open_events(path, **kw)
    return ev, [str(w.message) for w in caught]


@pytest.mark.parametrize("key", ["TIMEZERO", "MJDREF", "TSTART", "TSTOP"])
def test_string_time_keywords_name_file_and_keyword(make_event_file, key):
    path = make_event_file(n=200, header={key: "abc"})
    with pytest.raises(ValueError, match=rf"{path.name}.*keyword {key} = 'abc' is not a number"):
        xcube.open_events(path)


def test_string_tlmax_names_file_and_keyword(make_event_file):
    path = make_event_file(n=200, header={"TLMAX2": "abc"})  # column 2 is X
    with pytest.raises(ValueError, match=rf"{path.name}.*TLMAX2 = 'abc' is not a number"):
        xcube.open_events(path)


def test_numeric_string_limits_are_accepted_as_xmm_writes_them(make_event_file):
    ev = xcube.open_events(make_event_file(n=200, header={"TLMIN2": "1", "TLMAX2": "51840"}))
    assert ev.attrs["x_min"] == 1.0 and ev.attrs["x_max"] == 51840.0


def test_string_gti_timezero(make_event_file):
    path = make_event_file(n=200, gti_extensions={"GTI": ([1e8], [1e8 + 1e4], {"TIMEZERO": "zero"})})
    with pytest.raises(ValueError, match=rf"{path.name}\[GTI\].*TIMEZERO = 'zero'"):
        xcube.open_events(path)


def test_tlmin_above_tlmax_is_rejected(make_event_file):
    path = make_event_file(n=200, header={"TLMIN3": 51840, "TLMAX3": 1})  # column 3 is Y
    with pytest.raises(ValueError, match=rf"{path.name}: column Y has TLMIN3 = 51840 > TLMAX3 = 1"):
        xcube.open_events(path)


def _with_nulls(make_event_file, n=1000, k=100, **kw):
    rng = np.random.default_rng(3)
    x = rng.integers(20000, 32000, n).astype(np.int32)
    y = rng.integers(20000, 32000, n).astype(np.int32)
    bad = rng.choice(n, k, replace=False)
    x[bad[: k // 2]] = -99999999
    y[bad[k // 2:]] = -99999999
    path = make_event_file(n=n, columns={"X": x, "Y": y},
                           column_keywords={"X": {"null": -99999999}, "Y": {"null": -99999999}}, **kw)
    return path, x, y, bad


@pytest.mark.parametrize("gzip", [False, True])
def test_tnull_positions_are_dropped_with_a_count(make_event_file, gzip):
    path, x, y, bad = _with_nulls(make_event_file, gzip=gzip, name="nulls.fits.gz" if gzip else None)
    ev, msgs = _open(path)
    assert ev.sizes["event"] == 900
    assert np.all(ev["x"].values > 0) and np.all(ev["y"].values > 0)
    assert any("dropped 100 of 1000 events" in m and "TNULL" in m and path.name in m for m in msgs), msgs
    ev2, msgs2 = _open(path)  # from the cache: the warning is replayed
    assert ev2.sizes["event"] == 900 and any("dropped 100" in m for m in msgs2)


def test_no_tnull_events_keeps_the_memory_mapped_path(make_event_file):
    path = make_event_file(n=500, column_keywords={"X": {"null": -99999999}, "Y": {"null": -99999999}})
    ev, msgs = _open(path)
    assert ev.sizes["event"] == 500 and "cache_reason" not in ev.attrs
    assert not any("TNULL" in m for m in msgs)


def test_lowercase_time_beside_time_keeps_time_with_a_warning(make_event_file):
    path = make_event_file(n=300, columns={"time": np.zeros(300)})
    ev, msgs = _open(path)
    assert ev["time"].values.min() >= 1e8  # the real times, not the zeros
    assert any("'TIME' and 'time' differ only in case" in m and "ignoring 'time'" in m for m in msgs), msgs


def test_naxis2_smaller_than_the_data_is_an_error(make_event_file, tmp_path):
    path = make_event_file(n=1000)
    data = bytearray(path.read_bytes())
    i = data.rfind(b"NAXIS2  =", 0, data.find(b"EXTNAME = 'EVENTS"))
    data[i:i + 80] = b"NAXIS2  =                  500".ljust(80)
    bad = tmp_path / "short.fits"
    bad.write_bytes(bytes(data))
    with pytest.raises(OSError, match=r"short\.fits: \d+ bytes after the data of EVENTS \(NAXIS2 = 500 rows"):
        xcube.open_events(bad)


def test_trailing_garbage_after_the_last_hdu(make_event_file, tmp_path):
    path = make_event_file(n=100)
    bad = tmp_path / "tail.fits"
    bad.write_bytes(path.read_bytes() + b"\x01" * 2880)
    with pytest.raises(OSError, match=r"tail\.fits: corrupt or truncated FITS file"):
        xcube.open_events(bad)


def test_reversed_gti_rows_are_dropped_with_a_warning(make_event_file):
    t0 = 1e8
    path = make_event_file(n=300, gti=([t0, t0 + 6000], [t0 + 5000, t0 + 5500]))
    ev, msgs = _open(path)
    assert ev.attrs["exposure"] == pytest.approx(5000.0)
    assert any("1 GTI interval(s) with STOP < START" in m and "dropped" in m for m in msgs), msgs


@pytest.mark.parametrize("value", [np.inf, -np.inf])
@pytest.mark.parametrize("gzip", [False, True])
def test_infinite_time_is_an_error(make_event_file, value, gzip):
    t = np.sort(1e8 + np.random.default_rng(0).uniform(0, 1e4, 100))
    t[-1 if value > 0 else 0] = value
    path = make_event_file(n=100, columns={"TIME": t}, gzip=gzip, name="inf.fits.gz" if gzip else "inf.fits")
    with pytest.raises(ValueError, match=r"inf\.fits.*1 infinite TIME value"):
        xcube.open_events(path)


def test_archive_tree_node_names_from_headers_are_safe(make_event_file, tmp_path):
    d = tmp_path / "arch"
    d.mkdir()
    for i, (obs, inst) in enumerate([("../../x", "EMOS1"), ("a/b", "EMOS1")]):
        make_event_file(n=50, header={"OBS_ID": obs, "INSTRUME": inst}, name=f"e{i}.fits").rename(d / f"e{i}.fits")
    tree = xcube.open_archive(d)
    assert sorted(tree.children) == ["_.._x", "a_b"]
