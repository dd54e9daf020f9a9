"""Why a frame could not be aligned (sweep p20/e D1): a frame without stars is reported as such, with its
counts (n_aligned of n_expected), and offset_max_dis is named only for a frame whose fitted offset exceeds it."""
from __future__ import annotations

import logging

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from astropy.io import fits

import xcube
from xcube.frames import simulate
from xcube.frames.align import ALIGN_VARS, MIN_AGREE, centroids, frame_offsets, frame_transform, reference
from xcube.frames.measure_steps import _warn_rejected
from xcube.frames.photometry import find_stars
from xcube.frames.simulate import render_stars

SHAPE = (200, 240)


def _frame(x, y, flux, dx, dy, seed):
    rng = np.random.default_rng(seed)
    return (rng.poisson(200.0 + render_stars(SHAPE, x + dx, y + dy, flux, 3.2)) +
            rng.normal(0, 5, SHAPE)).astype(np.float32)


def _field():
    rng = np.random.default_rng(3)
    return rng.uniform(30, SHAPE[1] - 30, 25), rng.uniform(30, SHAPE[0] - 30, 25), 10 ** rng.uniform(3.5, 5.0, 25)


def test_frame_without_stars_is_not_blamed_on_offset_max_dis(tmp_path, caplog):
    """The sweep's case: a frame of sky and noise only (not offset at all) was reported 'offset by more than
    offset_max_dis = 250 px ... raise offset_max_dis', on a frame too small to search 250 px."""
    truth = simulate.night(tmp_path / "raw", n_frames=6, shape=(256, 256), n_stars=20, max_dither=6.0, n_bias=3,
                           n_flat=3, seed=3)
    blank = truth.files["science"][3]
    header = fits.getheader(blank)
    fits.PrimaryHDU(np.random.default_rng(0).normal(800, 10, (256, 256)).astype(np.uint16),
                    header=header).writeto(blank, overwrite=True)
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        xcube.frames.run(tmp_path / "raw", tmp_path / "red", steps="lbfio", progress=False)
    table = pd.read_csv(tmp_path / "red" / "offset_V1234Cyg_R.csv")
    assert np.isnan(table["offset_x"][3]) and np.isfinite(table["offset_x"].drop(index=3)).all()
    said = [r.getMessage() for r in caplog.records if blank.name in r.getMessage()]
    assert len(said) == 1, said
    n, n_exp = table["n_aligned"][3], table["n_expected"][3]
    assert f"{blank.name} ({n} of {n_exp})" in said[0] and "no stars" in said[0]
    assert "offset_max_dis" not in said[0]


def test_each_reason_named_with_its_counts(caplog):
    """A frame shifted just past max_offset (its stars fit: the offset is the reason), a frame of sky only,
    an all-NaN frame (no coarse offset) and an aligned one, through frame_offsets and the step's warnings."""
    x, y, f = _field()
    base = _frame(x, y, f, 0.0, 0.0, 0)
    stars, fwhm = find_stars(base, border=8)
    far = _frame(x, y, f, 21.0, 3.0, 12)
    ox, oy, _, n, n_exp, _ = frame_transform(far, reference(base, 20.0), *centroids(base, stars.x[:20],
                                                                                     stars.y[:20]), fwhm=fwhm)
    assert np.isnan(ox) and np.isnan(oy) and n >= max(3, MIN_AGREE * n_exp)  # rejected for the offset only

    cube = np.stack([base, far, np.random.default_rng(1).normal(200, 5, SHAPE).astype(np.float32),
                     _frame(x, y, f, 4.0, -2.0, 13), np.full(SHAPE, np.nan, np.float32)])
    arr = xr.DataArray(da.from_array(cube, chunks=(2, -1, -1)), dims=("frame", "y", "x"))
    off = frame_offsets(arr, base, stars.x, stars.y, fwhm=fwhm, max_offset=20.0)
    table = {k: off[k].values for k in ALIGN_VARS}
    files = pd.Series(["base.fit", "far.fit", "blank.fit", "fine.fit", "nan.fit"])
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        _warn_rejected("V1", "R", files, table, {"offset_max_dis": 20.0, "offset_method": "xcorr"})
    msgs = [r.getMessage() for r in caplog.records]
    n = table["n_aligned"].astype(int)
    n_exp = table["n_expected"].astype(int)
    (far_msg,) = [m for m in msgs if "far.fit" in m]
    assert "offset by more than offset_max_dis = 20 px" in far_msg and f"far.fit ({n[1]} of {n_exp[1]})" in far_msg
    (blank_msg,) = [m for m in msgs if "blank.fit" in m]
    assert f"blank.fit ({n[2]} of {n_exp[2]})" in blank_msg and "no stars" in blank_msg
    assert "offset_max_dis" not in blank_msg and "far.fit" not in blank_msg
    (nan_msg,) = [m for m in msgs if "nan.fit" in m]
    assert "no coarse offset found" in nan_msg and "offset_max_dis" not in nan_msg
    assert not [m for m in msgs if "fine.fit" in m or "base.fit" in m]
