"""Star finding, FWHM, aperture photometry and the lazy per-chunk measurement (xcube.frames.photometry)."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from xcube.frames.photometry import (
    aperture_radii,
    find_stars,
    frame_fwhm,
    measure,
    measure_frame,
    sky_stats,
)
from xcube.frames.simulate import render_stars

SHAPE = (160, 180)
SKY, GAIN, READ = 150.0, 2.0, 6.0


def _image(x, y, flux, fwhm=3.5, seed=0):
    """A frame in ADU: stars + sky in electrons, Poisson and read noise, divided by the gain."""
    rng = np.random.default_rng(seed)
    e = SKY * GAIN + render_stars(SHAPE, x, y, flux * GAIN, fwhm)
    return ((rng.poisson(e) + rng.normal(0, READ, SHAPE)) / GAIN).astype(np.float32)


def test_aperture_radii_fwhm_multiples():
    np.testing.assert_allclose(aperture_radii([3, -1.5, 8, -2.0], 4.0), [3, 6, 8, 8])


def test_find_stars_and_fwhm():
    gx, gy = np.meshgrid(np.linspace(25, 155, 4), np.linspace(25, 135, 3))
    x, y = gx.ravel() + 0.37, gy.ravel() - 0.21
    flux = np.geomspace(2e3, 6e4, 12)
    img = _image(x, y, flux, fwhm=4.2)
    stars, fwhm = find_stars(img, border=5)
    assert fwhm == pytest.approx(4.2, rel=0.05)
    assert len(stars) >= 11 and list(stars["flux"]) == sorted(stars["flux"], reverse=True)
    d = np.hypot(stars.x.values[:, None] - x[None, :], stars.y.values[:, None] - y[None, :]).min(axis=1)
    assert (d < 0.3).sum() >= 11
    sky, noise = sky_stats(img)
    assert sky == pytest.approx(SKY, abs=1.0)
    assert frame_fwhm(img, x[::-1], y[::-1], sky, fallback=3.0) == pytest.approx(4.2, rel=0.05)
    assert frame_fwhm(img, x[:2], y[:2], sky, fallback=3.0) == 3.0  # too few stars: the fallback


def test_find_stars_positions_are_unbiased():
    """IRAFStarFinder's centroids were off by up to 0.13 px for bright 3 px stars; the forced photometry of
    every frame sits at these positions (plus the offset)."""
    gx, gy = np.meshgrid(np.linspace(25, 155, 4), np.linspace(25, 135, 3))
    x, y = gx.ravel() + 0.25, gy.ravel() + 0.45
    img = _image(x, y, np.geomspace(2e4, 6e5, 12), fwhm=3.0)
    stars, _ = find_stars(img, border=5)
    assert len(stars) == 12
    d = np.hypot(stars.x.values[:, None] - x[None, :], stars.y.values[:, None] - y[None, :]).min(axis=1)
    assert d.max() < 0.03


def test_find_stars_undersampled():
    """Stars of 1.5 px FWHM fail IRAFStarFinder's sharpness cut at the 4 px first guess: none was found."""
    gx, gy = np.meshgrid(np.linspace(25, 155, 4), np.linspace(25, 135, 3))
    x, y = gx.ravel() + 0.37, gy.ravel() - 0.21
    img = _image(x, y, np.geomspace(5e3, 6e4, 12), fwhm=1.5)
    stars, fwhm = find_stars(img, border=5)
    assert len(stars) >= 11 and fwhm == pytest.approx(1.5, rel=0.1)


def test_frame_fwhm_of_much_wider_stars_than_the_fallback():
    """The moment box came from the fallback (the base frame's FWHM): 12 px stars measured 9.3 px from 2 px."""
    x, y = np.array([40.3, 90.6, 140.2, 45.5, 135.1]), np.array([40.7, 80.2, 45.9, 120.4, 118.5])
    img = render_stars(SHAPE, x, y, np.full(5, 1e5), 12.0)
    assert frame_fwhm(img, x, y, 0.0, fallback=2.0) == pytest.approx(12.0, rel=0.02)
    assert frame_fwhm(render_stars(SHAPE, x, y, np.full(5, 1e5), 3.0), x, y, 0.0, fallback=4.0) == pytest.approx(
        3.0, rel=0.02)


def test_measure_frame_fluxes_errors_and_edges():
    x, y, flux = np.array([60.0, 120.3, 2.0]), np.array([50.5, 110.0, 80.0]), np.array([4e4, 4e3, 4e4])
    mags, errs = [], []
    for seed in range(30):
        res = measure_frame(_image(x, y, flux, seed=seed), x, y, [4.0, 10.0], (14.0, 22.0), exposure=10.0,
                            gain=GAIN)
        mags.append(res["mag"])
        errs.append(res["mag_err"])
        assert res["sky"][0] == pytest.approx(SKY, abs=1.5)
    mags, errs = np.array(mags), np.array(errs)
    # a 10 px aperture holds all of a 3.5 px FWHM star: mag = 25 - 2.5 log10(flux / exposure)
    assert np.mean(mags[:, 0, 1]) == pytest.approx(25 - 2.5 * np.log10(4e4 / 10.0), abs=0.005)
    assert np.mean(mags[:, 1, 1]) == pytest.approx(25 - 2.5 * np.log10(4e3 / 10.0), abs=0.03)
    # the quoted errors match the scatter over noise realisations
    for s in (0, 1):
        for a in (0, 1):
            assert np.std(mags[:, s, a]) == pytest.approx(np.median(errs[:, s, a]), rel=0.35)
    assert np.all(np.isnan(mags[:, 2, :]))  # the aperture leaves the frame


def test_nan_pixels_spoil_only_their_star():
    x, y, flux = np.array([60.0, 120.0]), np.array([50.0, 110.0]), np.array([4e4, 4e4])
    img = _image(x, y, flux)
    img[50, 61] = np.nan
    res = measure_frame(img, x, y, [5.0], (10.0, 16.0), exposure=1.0, gain=GAIN)
    assert np.isnan(res["mag"][0, 0]) and np.isfinite(res["mag"][1, 0])


def test_measure_is_lazy_and_follows_offsets():
    gx, gy = np.meshgrid(np.linspace(35, 145, 4), np.linspace(40, 120, 2))
    x, y = gx.ravel() + 0.3, gy.ravel() + 0.6
    flux = np.geomspace(5e3, 5e4, 8)[::-1]
    shifts = [(0.0, 0.0), (4.5, -3.25), (-7.0, 6.0)]
    fwhms = [3.0, 3.5, 4.5]
    cube = np.stack([_image(x + dx, y + dy, flux, fwhm=f, seed=i) for i, ((dx, dy), f) in
                     enumerate(zip(shifts, fwhms))])
    arr = xr.DataArray(da.from_array(cube, chunks=(2, -1, -1)), dims=("frame", "y", "x"),
                       coords={"exposure": ("frame", [10.0, 10.0, 10.0])})
    ds = measure(arr, x, y, [s[0] for s in shifts], [s[1] for s in shifts], aper=[-2.0, 6.0], gain=GAIN)
    assert isinstance(ds["mag"].data, da.Array) and ds["mag"].dims == ("star", "frame", "aperture")
    ds = ds.compute()
    np.testing.assert_allclose(ds["fwhm"].values, fwhms, rtol=0.06)
    np.testing.assert_allclose(ds["radius"].values[:, 0], 2 * ds["fwhm"].values, rtol=1e-5)
    expect = 25 - 2.5 * np.log10(flux / 10.0)
    assert np.nanmax(np.abs(ds["mag"].values[:, :, 1] - expect[:, None])) < 0.03
    # NaN offsets: the frame is not measured
    ds2 = measure(arr, x, y, [0.0, np.nan, 0.0], [0.0, np.nan, 0.0], aper=[5.0], gain=GAIN).compute()
    assert np.all(np.isnan(ds2["mag"].values[:, 1])) and np.isfinite(ds2["mag"].values[0, 0, 0])


def test_measure_default_rotation_follows_the_offsets():
    """Without a rotation (offsets of an older xcube) measure applies 0 where the offset is known, NaN
    where it is not, and returns the rotation it applied."""
    x, y = np.array([60.0, 120.0]), np.array([50.0, 110.0])
    cube = np.stack([_image(x, y, np.array([4e4, 4e4]), seed=i) for i in range(3)])
    arr = xr.DataArray(da.from_array(cube, chunks=(2, -1, -1)), dims=("frame", "y", "x"),
                       coords={"exposure": ("frame", [10.0, 10.0, 10.0])})
    ds = measure(arr, x, y, [0.0, np.nan, 0.0], [0.0, np.nan, 0.0], aper=[5.0], gain=GAIN).compute()
    np.testing.assert_array_equal(ds["rotation"].values, [0.0, np.nan, 0.0])
    assert ds["rotation"].attrs["units"] == "deg"
    given = measure(arr, x, y, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], aper=[5.0], gain=GAIN, rotation=[0.0, 0.0, 2.0])
    np.testing.assert_array_equal(given["rotation"].values, [0.0, 0.0, 2.0])
