"""Field rotation and meridian flips in the alignment of xcube.frames (sweep p15/s3 #1, #2): a rotation +
shift is fitted per frame, apertures follow it, flipped frames are aligned, chance alignments rejected."""
from __future__ import annotations

import logging

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xcube
from xcube.frames import simulate
from xcube.frames.align import MIN_AGREE, centroids, frame_offsets, frame_transform, reference
from xcube.frames.photometry import find_stars, measure
from xcube.frames.simulate import render_stars

SHAPE = (300, 320)
FWHM = 3.5
CENTRE = ((SHAPE[1] - 1) / 2, (SHAPE[0] - 1) / 2)


def _field(seed=5, n=30):
    rng = np.random.default_rng(seed)
    x, y = [], []
    while len(x) < n:  # stars 18 px apart or more, away from the edges
        px, py = rng.uniform(35, SHAPE[1] - 35), rng.uniform(35, SHAPE[0] - 35)
        if not x or np.min(np.hypot(np.array(x) - px, np.array(y) - py)) > 18:
            x.append(px)
            y.append(py)
    return np.array(x), np.array(y), 10 ** rng.uniform(4.0, 5.3, n)


def _rotated(x, y, dx, dy, deg):
    """Truth: rotate about the frame centre, then shift (the pipeline's convention)."""
    a = np.radians(deg)
    u, v = x - CENTRE[0], y - CENTRE[1]
    return CENTRE[0] + np.cos(a) * u - np.sin(a) * v + dx, CENTRE[1] + np.sin(a) * u + np.cos(a) * v + dy


def _frame(x, y, flux, seed, sky=300.0, read_noise=5.0):
    rng = np.random.default_rng(seed)
    img = sky + render_stars(SHAPE, x, y, flux, FWHM)
    return (rng.poisson(img) + rng.normal(0, read_noise, SHAPE)).astype(np.float32)


@pytest.fixture(scope="module")
def base():
    x, y, f = _field()
    img = _frame(x, y, f, 0)
    stars, fwhm = find_stars(img, border=8)
    half = int(np.clip(np.ceil(1.5 * fwhm), 3, 15))
    bx, by = centroids(img, stars.x[:30], stars.y[:30], half=half)
    return x, y, f, img, stars, fwhm, half, bx, by


@pytest.mark.parametrize("method", ["xcorr", "stars"])
@pytest.mark.parametrize("deg, shift", [(2.0, (7.3, -4.6)), (0.5, (-11.8, 9.15)), (-2.0, (0.4, 12.0))])
def test_rotation_and_shift_recovered(base, method, deg, shift):
    from xcube.frames.align import frame_transform

    x, y, f, img, stars, fwhm, half, bx, by = base
    frame = _frame(*_rotated(x, y, *shift, deg), f * 0.9, seed=11)
    ox, oy, rot, n, n_exp, rms = frame_transform(frame, reference(img, 60.0), bx, by, method, fwhm, half)
    assert rot == pytest.approx(deg, abs=0.05)
    assert ox == pytest.approx(shift[0], abs=0.05) and oy == pytest.approx(shift[1], abs=0.05)
    assert n >= 0.9 * n_exp and n_exp >= 20 and rms < 0.1


def _rotating_cube(x, y, f, n=8, max_deg=2.0):
    rng = np.random.default_rng(3)
    deg = np.linspace(0, max_deg, n)
    shifts = rng.uniform(-10, 10, (n, 2))
    shifts[0] = 0
    cube = np.stack([_frame(*_rotated(x, y, *shifts[i], deg[i]), f, seed=100 + i) for i in range(n)])
    arr = xr.DataArray(da.from_array(cube, chunks=(3, -1, -1)), dims=("frame", "y", "x"),
                       coords={"exposure": ("frame", np.full(n, 60.0))})
    return arr, deg, shifts


@pytest.mark.parametrize("max_deg", [2.0, 0.5])
def test_frame_offsets_record_rotation_and_photometry_follows_it(base, max_deg):
    """Offsets within 0.05 px, rotation within 0.05 deg, and the forced apertures of a constant star
    far from the centre land on it: its magnitude scatter is back at the noise level."""
    x, y, f, img, stars, fwhm, half, bx, by = base
    arr, deg, shifts = _rotating_cube(x, y, f, max_deg=max_deg)
    off = frame_offsets(arr, img, stars.x, stars.y, fwhm=fwhm, max_offset=40)
    assert off["rotation"].attrs["units"] == "deg" and off["align_rms"].attrs["units"] == "pixel"
    phot = measure(arr, stars.x, stars.y, off.offset_x.data, off.offset_y.data, aper=(3.0,), base_fwhm=fwhm,
                   rotation=off.rotation.data)
    off, mag, err = dask.compute(off, phot.mag, phot.mag_err)
    np.testing.assert_allclose(off["rotation"].values, deg, atol=0.05)
    np.testing.assert_allclose(off["offset_x"].values, shifts[:, 0], atol=0.05)
    np.testing.assert_allclose(off["offset_y"].values, shifts[:, 1], atol=0.05)
    assert (off["n_aligned"].values >= 0.9 * off["n_expected"].values).all()
    r = np.hypot(stars.x.to_numpy() - CENTRE[0], stars.y.to_numpy() - CENTRE[1])
    bright = np.flatnonzero((r > 100) & np.isfinite(mag.values[:, :, 0]).all(axis=1))[:5]
    assert len(bright) >= 3
    for s in bright:  # constant stars: the scatter is the photometric noise
        assert np.std(mag.values[s, :, 0]) < 2.0 * np.median(err.values[s, :, 0])


def test_meridian_flipped_frame_aligned(base):
    x, y, f, img, stars, fwhm, half, bx, by = base
    flipped = _frame(*_rotated(x, y, 3.2, -5.7, 180.0), f, seed=21)
    for method in ("xcorr", "stars"):
        ox, oy, _, n, _, _ = frame_transform(flipped, reference(img, 60.0), bx, by, method, fwhm, half)
        assert ox == pytest.approx(3.2, abs=0.05) and oy == pytest.approx(-5.7, abs=0.05) and n >= 20


@pytest.mark.parametrize("seed", [23, 52])
def test_chance_alignment_rejected(base, seed):
    """A frame of another field matches the base list only by chance at some offset (here 6 of the 30
    stars within the old 5-px box of a shift, which passed as 6 >= 30 % of the ~15 in the frame): a
    rotation + shift fits too few of the stars expected in the frame within 0.5 FWHM."""
    from xcube.frames.align import refine_offset

    x, y, f, img, stars, fwhm, half, bx, by = base
    other = _frame(*_field(seed=seed)[:3], seed=31)
    for method in ("xcorr", "stars"):
        ox, oy, _, n, n_exp, _ = frame_transform(other, reference(img, 1000.0), bx, by, method, fwhm, half)
        assert np.isnan(ox) and np.isnan(oy) and n < max(3, MIN_AGREE * n_exp)  # too few stars fit
    chance = {23: (9.98, 94.28), 52: (-126.98, -72.81)}[seed]  # the star-list vote's chance offsets
    res = refine_offset(other, bx, by, chance, half=half)
    assert np.isnan(res[0]) and np.isnan(res[1])


def test_pipeline_flip_and_rotation(tmp_path, caplog):
    """A night whose field rotates by 1 deg and flips by 180 deg half-way (a German equatorial mount
    crossing the meridian): every frame aligned, rotation recorded, the eclipse light curve at the noise."""
    n = 24
    rot = np.linspace(0.0, 1.0, n) + np.where(np.arange(n) >= n // 2, 180.0, 0.0)
    truth = simulate.night(tmp_path / "raw", n_frames=n, shape=(256, 256), n_stars=20, depth=0.4, seed=7,
                           rotation=rot, n_bias=3, n_flat=3)
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        res = xcube.frames.run(tmp_path / "raw", tmp_path / "red", aper=(4.0,), progress=False)
    assert not [r for r in caplog.records if "align" in r.getMessage()]
    wrapped = (res["rotation"].values - truth.rotation + 180) % 360 - 180
    np.testing.assert_allclose(wrapped, 0.0, atol=0.05)
    np.testing.assert_allclose(res["offset_x"].values, truth.offset_x, atol=0.05)
    np.testing.assert_allclose(res["offset_y"].values, truth.offset_y, atol=0.05)
    assert res["rotation"].attrs["units"] == "deg" and (res["n_aligned"].values >= 10).all()
    d = res["diff_mag"].values[:, 0]
    model = simulate.eclipse_mag(np.arange(n) / (n - 1), truth.depth)
    resid = d - model - np.median(d - model)
    assert np.std(resid) < 3.0 * np.median(res["diff_err"].values[:, 0])
    table = pd.read_csv(tmp_path / "red" / "offset_V1234Cyg_R.csv")
    assert {"rotation", "n_expected", "align_rms"} <= set(table.columns)
    assert "rotation" in pd.read_csv(tmp_path / "red" / "lc_V1234Cyg_R.csv").columns


def test_rejected_frames_named_with_counts(tmp_path, caplog):
    """A frame of another field among the night's: rejected, the warning names it and the counts."""
    truth = simulate.night(tmp_path / "raw", n_frames=8, shape=(256, 256), n_stars=20, seed=7, n_bias=3,
                           n_flat=3)
    other = simulate.night(tmp_path / "other", n_frames=8, shape=(256, 256), n_stars=20, seed=8, n_bias=1,
                           n_flat=1)
    bad = truth.files["science"][5]
    bad.unlink()
    other.files["science"][5].rename(bad)
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        xcube.frames.run(tmp_path / "raw", tmp_path / "red", steps="lbfio", offset_method="stars",
                         offset_max_dis=1000, progress=False)
    table = pd.read_csv(tmp_path / "red" / "offset_V1234Cyg_R.csv")
    assert np.isnan(table["offset_x"][5]) and np.isfinite(table["offset_x"].drop(index=5)).all()
    text = " ".join(r.getMessage() for r in caplog.records)
    assert bad.name in text and "reference stars expected in the frame" in text


def test_an_accepted_fit_beats_a_rejected_one_with_more_stars():
    """The 180 deg try that is accepted (4 of 10 expected stars) must win over a rejected as-is fit that
    matched more stars (5 of 30, under 30 %): the frame kept the rejected one and got no photometry."""
    from xcube.frames.align import _better

    nan = float("nan")
    rejected = (nan, nan, nan, 5, 30, nan)
    accepted = (3.0, 2.0, 179.9, 4, 10, 0.2)
    assert _better(accepted, rejected) and not _better(rejected, accepted)
    assert _better((1.0, 1.0, 0.0, 12, 20, 0.1), accepted)  # both accepted: more stars
    assert _better((1.0, 1.0, 0.0, 4, 10, 0.1), accepted)  # then the smaller rms
