"""Master bias and flat, calibrated cubes, master priority (xcube.frames.calibrate)."""
from __future__ import annotations

import logging

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from frames_helpers import write_frame

from xcube.frames.calibrate import (
    calibrate,
    choose_master,
    flat_levels,
    master_bias,
    master_flat,
    read_master,
    write_master,
)


def _cube(data, files=None):
    n = len(data)
    return xr.DataArray(da.from_array(np.asarray(data, np.float32), chunks=(2, -1, -1)), dims=("frame", "y", "x"),
                        coords={"file": ("frame", files or [f"f{i}.fit" for i in range(n)]),
                                "exposure": ("frame", np.ones(n))})


def test_master_bias_is_the_median():
    rng = np.random.default_rng(0)
    frames = rng.normal(500, 5, (7, 40, 30))
    frames[3, 10, 10] = 60000  # a cosmic ray in one frame leaves the median alone
    mb = master_bias(_cube(frames))
    np.testing.assert_allclose(mb.values, np.median(frames.astype(np.float32), axis=0), rtol=1e-6)
    assert mb.dims == ("y", "x") and mb.attrs["nframes"] == 7


def test_master_flat_rejects_and_normalises(caplog):
    rng = np.random.default_rng(1)
    pattern = rng.normal(1.0, 0.02, (40, 30))
    bias = np.full((40, 30), 500.0)
    levels = [20000.0, 30000.0, 25000.0, 3000.0, 60000.0]  # the last two outside [5000, 50000]
    flats = np.array([500 + lev * pattern for lev in levels])
    with caplog.at_level(logging.INFO, logger="xcube.frames"):
        mf = master_flat(_cube(flats), bias)
    assert mf.attrs["nframes"] == 3
    assert "f3.fit rejected" in caplog.text and "f4.fit rejected" in caplog.text
    assert np.median(mf.values) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(mf.values, pattern / np.median(pattern), rtol=1e-4)
    np.testing.assert_allclose(flat_levels(_cube(flats))[:3], [lev + 500 for lev in levels[:3]], rtol=0.03)
    # configurable limits: allow the faint flat, still reject the saturated one
    assert master_flat(_cube(flats), bias, low=2000).attrs["nframes"] == 4
    with pytest.raises(ValueError, match="all 5 flats rejected.*flat_limit_low"):
        master_flat(_cube(flats), bias, low=70000, high=80000)


def test_calibrate_formula_border_and_laziness():
    rng = np.random.default_rng(2)
    raw = rng.uniform(600, 5000, (5, 20, 24))
    bias = rng.normal(500, 1, (20, 24))
    flat = rng.uniform(0.9, 1.1, (20, 24))
    flat[3, 4] = 0.0  # a dead pixel becomes NaN
    cal = calibrate(_cube(raw), bias, flat)
    assert isinstance(cal.data, da.Array)
    with np.errstate(divide="ignore"):
        expect = (raw.astype(np.float32) - bias.astype(np.float32)) / flat.astype(np.float32)
    expect[:, 3, 4] = np.nan
    np.testing.assert_allclose(cal.values, expect, rtol=1e-5)
    trimmed = calibrate(_cube(raw), bias, flat, border=3)
    assert trimmed.shape == (5, 14, 18)
    assert trimmed["x"].values[0] == 3 and trimmed["y"].values[-1] == 16
    np.testing.assert_allclose(trimmed.values, expect[:, 3:-3, 3:-3], rtol=1e-5)
    assert calibrate(_cube(raw), bias, None).attrs["flat_fielded"] == 0
    with pytest.raises(ValueError, match="master bias is"):
        calibrate(_cube(raw), bias[:10], flat)
    with pytest.raises(ValueError, match="border_cut"):
        calibrate(_cube(raw), bias, flat, border=10)


def test_master_files_and_priority(tmp_path, caplog):
    img = np.arange(12, dtype=np.float32).reshape(3, 4)
    given, tonight, fallback = tmp_path / "given.fits", tmp_path / "bias.fits", tmp_path / "alt.fits"
    write_master(tonight, img, {"NCOMBINE": 3})
    write_master(fallback, img + 1)
    np.testing.assert_array_equal(read_master(tonight, (3, 4)), img)
    with pytest.raises(ValueError, match="master is \\(3, 4\\), the frames are \\(4, 4\\)"):
        read_master(tonight, (4, 4))
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        chosen = choose_master("bias", [("given", given), ("tonight's", tonight), ("fallback", fallback)])
    assert chosen == ("tonight's", tonight) and "given master" in caplog.text  # the given one is missing
    write_master(given, img + 2)
    assert choose_master("bias", [("given", given), ("tonight's", tonight), ("fallback", fallback)])[0] == "given"
    tonight.unlink()
    assert choose_master("bias", [("given", None), ("tonight's", tonight), ("fallback", fallback)])[0] == "fallback"
    assert choose_master("bias", [("given", None), ("tonight's", tonight), ("fallback", None)]) is None


def test_saturated_raw_pixels_become_nan(tmp_path):
    """The scan's raw saturation level (SATURATE, else DATAMAX, else the integer type's largest value) and
    calibrate(saturation=...) masking pixels at or above it, per frame."""
    from xcube.frames.files import scan_frames, stack_frames
    from xcube.frames.steps import raw_saturation

    kw = {"DATE_OBS": "2024-06-06T14:00:00", "EXPTIME": 1.0}
    data = np.full((8, 8), 1000, np.uint16)
    data[2, 3] = 65535
    data[5, 5] = 60000
    write_frame(tmp_path / "A-0001R.fit", data=data, **kw)                      # uint16: 65535
    write_frame(tmp_path / "A-0002R.fit", data=data, SATURATE=60000, **kw)
    write_frame(tmp_path / "B-0001R.fit", data=data.astype(np.float32), **kw)   # float: no limit
    t = scan_frames(tmp_path).set_index("name")
    assert t.loc["A-0001R.fit", "saturation"] == 65535 and t.loc["A-0002R.fit", "saturation"] == 60000
    assert np.isnan(t.loc["B-0001R.fit", "saturation"])
    rows = t.reset_index()
    rows = rows[rows["obj"] == "A"]
    sat = raw_saturation({"raw_saturation": None}, rows)
    cal = calibrate(stack_frames(rows, {"frame": 1}), np.zeros((8, 8)), None, saturation=sat).values
    assert np.isnan(cal[0, 2, 3]) and cal[0, 5, 5] == 60000 and np.isnan(cal[1, 5, 5]) and np.isnan(cal[1, 2, 3])
    assert np.isfinite(cal).sum() == 2 * 64 - 3
    assert np.isfinite(raw_saturation({"raw_saturation": False}, rows)).sum() == 0
    assert raw_saturation({"raw_saturation": 5000}, rows).tolist() == [5000.0, 5000.0]


def test_master_from_whole_frame_chunks_warns_about_memory(monkeypatch, caplog):
    """The median is strip by strip only for row-chunked cubes; whole-frame chunks hold the whole stack, which
    the docs claimed never happens: a warning now names the chunks to use."""
    import xcube.frames.calibrate as cal

    monkeypatch.setattr(cal, "_WHOLE_FRAME_WARN", 1000)
    data = np.random.default_rng(1).normal(500, 5, (6, 40, 30)).astype(np.float32)
    frames = _cube(data)                                   # chunks of 2 whole frames
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        out = master_bias(frames)
    assert "chunks={'frame': -1, 'y': 128}" in caplog.text
    np.testing.assert_allclose(out.values, np.median(data, axis=0), rtol=1e-6)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        master_bias(frames.chunk({"frame": -1, "y": 16}))
    assert caplog.text == ""
