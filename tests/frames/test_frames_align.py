"""Frame offsets by cross-correlation and by star-list matching (xcube.frames.align)."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from xcube.frames.align import MIN_AGREE, centroids, frame_offsets, frame_transform, reference
from xcube.frames.photometry import find_stars
from xcube.frames.simulate import render_stars

SHAPE = (200, 240)


def _field(seed=3, n=25):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(30, SHAPE[1] - 30, n), rng.uniform(30, SHAPE[0] - 30, n)
    return x, y, 10 ** rng.uniform(3.5, 5.0, n)


def _frame(x, y, flux, dx, dy, seed, fwhm=3.2):
    rng = np.random.default_rng(seed)
    img = 200.0 + render_stars(SHAPE, x + dx, y + dy, flux, fwhm)
    return (rng.poisson(img) + rng.normal(0, 5, SHAPE)).astype(np.float32)


@pytest.fixture(scope="module")
def base():
    x, y, f = _field()
    img = _frame(x, y, f, 0.0, 0.0, 0)
    stars, fwhm = find_stars(img, border=8)
    return x, y, f, img, stars, fwhm


def test_centroids_of_rendered_stars():
    x, y, f = np.array([50.3, 120.75]), np.array([60.6, 140.2]), np.array([5e4, 5e4])
    img = 100.0 + render_stars(SHAPE, x, y, f, 3.0)
    cx, cy = centroids(img, np.round(x), np.round(y), half=6)
    np.testing.assert_allclose(cx, x, atol=0.03)
    np.testing.assert_allclose(cy, y, atol=0.03)
    nx, _ = centroids(img, [2.0], [2.0], half=6)  # box leaves the frame
    assert np.isnan(nx[0])


@pytest.mark.parametrize("method", ["xcorr", "stars"])
@pytest.mark.parametrize("shift", [(7.3, -4.6), (-31.8, 22.15), (0.4, 0.0)])
def test_offsets_recovered(base, method, shift):
    x, y, f, img, stars, fwhm = base
    frame = _frame(x, y, f * 0.8, *shift, seed=11)
    ox, oy, _, n, _, _ = frame_transform(frame, reference(img, 60.0), *centroids(img, stars.x[:20], stars.y[:20]),
                                         method=method, fwhm=fwhm)
    assert ox == pytest.approx(shift[0], abs=0.1) and oy == pytest.approx(shift[1], abs=0.1)
    assert n >= 10


def test_offset_beyond_max_fails(base):
    x, y, f, img, stars, fwhm = base
    frame = _frame(x, y, f, 40.0, 5.0, seed=12)
    ox, oy, _, n, n_exp, _ = frame_transform(frame, reference(img, 20.0),
                                             *centroids(img, stars.x[:20], stars.y[:20]), fwhm=fwhm)
    assert np.isnan(ox) and np.isnan(oy) and n < max(3, MIN_AGREE * n_exp)  # rejected


def test_frame_offsets_lazy_per_chunk(base):
    x, y, f, img, stars, fwhm = base
    shifts = np.array([[0, 0], [3.3, 1.2], [-5.5, 8.25], [12.0, -9.9], [0.7, 0.3]])
    cube = np.stack([_frame(x, y, f, dx, dy, seed=20 + i) for i, (dx, dy) in enumerate(shifts)])
    arr = xr.DataArray(da.from_array(cube, chunks=(2, -1, -1)), dims=("frame", "y", "x"),
                       coords={"file": ("frame", [f"f{i}" for i in range(5)])})
    off = frame_offsets(arr, img, stars.x, stars.y, fwhm=fwhm, max_offset=50)
    assert isinstance(off["offset_x"].data, da.Array) and off["offset_x"].data.chunks == ((2, 2, 1),)
    np.testing.assert_allclose(off["offset_x"].values, shifts[:, 0], atol=0.1)
    np.testing.assert_allclose(off["offset_y"].values, shifts[:, 1], atol=0.1)
    assert off["offset_x"].attrs["description"] == "frame pixel = base pixel + offset"
    with pytest.raises(ValueError, match="offset_method"):
        frame_offsets(arr, img, stars.x, stars.y, method="wcs")
    with pytest.raises(ValueError, match="base frame is"):
        frame_offsets(arr, img[:50], stars.x, stars.y)
