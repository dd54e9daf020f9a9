"""NaN X/Y in floating-point sky columns (NaN is the null of float columns)
are treated like TNULL on integer columns: those events are dropped at open,
on every read path, with the warning that counts them, so that every command
(info, convert, lc, search) sees the same events."""
from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

import xcube
from xcube.cli import main


def _open(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = xcube.open_events(path)
    return ev, [str(w.message) for w in caught]


def _nan_file(make_event_file, kind="memmap", dtype=np.float64, n=1000, seed=4):
    """Float X/Y with NaN in 20 (X) + 20 (Y) + 10 (both) events; the expected kept mask."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(20000, 32000, n).astype(dtype)
    y = rng.uniform(20000, 32000, n).astype(dtype)
    bad = rng.choice(n, 50, replace=False)
    x[bad[:20]] = np.nan
    y[bad[20:40]] = np.nan
    x[bad[40:]] = y[bad[40:]] = np.nan
    x[bad[0]], y[bad[20]] = np.inf, -np.inf  # no sky position either
    name = {"memmap": "xy_nan.fits", "unsorted": "xy_nan_unsorted.fits", "gzip": "xy_nan.fits.gz"}[kind]
    path = make_event_file(n=n, columns={"X": x, "Y": y}, name=name, gzip=kind == "gzip",
                           sorted=kind != "unsorted", seed=seed)
    return path, np.isfinite(x) & np.isfinite(y)


@pytest.mark.parametrize("kind", ["memmap", "unsorted", "gzip"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nan_positions_are_dropped_with_a_count(make_event_file, kind, dtype):
    path, keep = _nan_file(make_event_file, kind, dtype)
    ev, msgs = _open(path)
    assert ev.sizes["event"] == int(keep.sum()) == 950
    assert np.isfinite(ev["x"].values).all() and np.isfinite(ev["y"].values).all()
    assert any(path.name in m and "dropped 50 of 1000 events with X = NaN/inf or Y = NaN/inf" in m
               and "no sky position" in m for m in msgs), msgs
    ev2, msgs2 = _open(path)  # from the cache (and the cached scan record): the same events, the warning replayed
    assert ev2.sizes["event"] == 950 and any("dropped 50 of 1000" in m for m in msgs2), msgs2


def test_nan_and_tnull_positions_together(make_event_file):
    n = 1000
    rng = np.random.default_rng(8)
    x = rng.uniform(20000, 32000, n)
    y = rng.integers(20000, 32000, n).astype(np.int32)
    x[:30] = np.nan
    y[25:45] = -99999999  # 5 events have both
    path = make_event_file(n=n, columns={"X": x, "Y": y}, column_keywords={"Y": {"null": -99999999}})
    ev, msgs = _open(path)
    assert ev.sizes["event"] == n - 45
    assert any("dropped 45 of 1000 events with X = NaN/inf or Y = TNULL (-99999999)" in m for m in msgs), msgs


def test_float_positions_without_nan_keep_the_memory_mapped_path(make_event_file):
    rng = np.random.default_rng(1)
    path = make_event_file(n=500, columns={"X": rng.uniform(2e4, 3e4, 500), "Y": rng.uniform(2e4, 3e4, 500)})
    ev, msgs = _open(path)
    assert ev.sizes["event"] == 500 and "cache_reason" not in ev.attrs
    assert not any("dropped" in m for m in msgs), msgs


def test_every_command_sees_the_same_events(make_event_file, tmp_path, capsys):
    path, keep = _nan_file(make_event_file, n=3000)
    assert main(["info", str(path)]) == 0
    assert re.search(r"events\s*:\s*2,950\n", capsys.readouterr().out)
    assert main(["convert", str(path), "--out", str(tmp_path / "conv")]) == 0
    assert xcube.open_events(tmp_path / "conv" / "xy_nan.zarr").sizes["event"] == 2950
    assert main(["search", str(path), "--time-bin", "2000", "--out", str(tmp_path / "s"), "--no-figures", "-q"]) == 0
    (summary,) = (tmp_path / "s").rglob("summary.json")
    assert json.loads(summary.read_text())["n_events"] == 2950


def test_a_scan_record_made_before_nan_was_checked_is_redone(make_event_file):
    import shutil

    from xcube.io.events import _store_for
    from xcube.io.events_fits import _scan_record_path, read_fits_header

    path, keep = _nan_file(make_event_file)
    record = _scan_record_path(read_fits_header(path), None)
    _open(path)
    old = json.loads(record.read_text())
    old.pop("null_values", None)
    old["n_null"] = 0  # what a version that did not look for NaN positions recorded (and then memory-mapped)
    record.write_text(json.dumps(old))
    shutil.rmtree(_store_for(path, None, None))  # ... instead of converting the file into the cache
    ev, msgs = _open(path)
    assert ev.sizes["event"] == 950 and any("dropped 50 of 1000" in m for m in msgs), msgs
