"""The whole pipeline on a generated night: the result contract, offsets, target, eclipse depth, times,
outputs, given stars and the command line (xcube.frames.run, ``xcube frames run``)."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from astropy.io import fits

import xcube
from xcube.cli import main
from xcube.frames import simulate
from xcube.frames.store import read_dataset
from xcube.frames.timing import site_location, target_coord, time_keywords


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames-night")
    truth = simulate.night(root / "raw", n_frames=40, shape=(256, 256), n_stars=20, depth=0.4, seed=7)
    res = xcube.frames.run(root / "raw", root / "red")
    return truth, res, root


def test_result_contract(night):
    _, res, _ = night
    assert isinstance(res, xr.Dataset)
    assert res["mag"].dims == ("star", "frame", "aperture") and res["mag_err"].dims == ("star", "frame", "aperture")
    assert res["diff_mag"].dims == ("frame", "aperture") and res["diff_err"].dims == ("frame", "aperture")
    assert res["offset_x"].dims == ("frame",) and res["offset_y"].dims == ("frame",)
    for name, dim in (("time", "frame"), ("star_x", "star"), ("star_y", "star"), ("aperture", "aperture")):
        assert res[name].dims == (dim,) and name in res.coords
    assert res["time"].dtype == np.float64 and res["time"].attrs["timesys"] == "BJD_TDB"
    np.testing.assert_array_equal(res["aperture"].values, [3.0, 5.0, 8.0])
    assert isinstance(res.attrs["target"], int) and all(isinstance(i, int) for i in res.attrs["comparisons"])
    assert res.attrs["obj"] == "V1234Cyg" and res.attrs["band"] == "R"
    assert res.attrs["target"] not in res.attrs["comparisons"] and len(res.attrs["comparisons"]) >= 3
    assert res.sizes["frame"] == 40 and np.isfinite(res["diff_mag"].values).all()


def test_offsets_target_and_eclipse_depth(night):
    truth, res, _ = night
    np.testing.assert_allclose(res["offset_x"].values, truth.offset_x, atol=0.5)
    np.testing.assert_allclose(res["offset_y"].values, truth.offset_y, atol=0.5)
    assert np.max(np.hypot(res["offset_x"].values - truth.offset_x, res["offset_y"].values - truth.offset_y)) < 0.1
    t = res.attrs["target"]
    assert np.hypot(res["star_x"].values[t] - truth.star_x[truth.variable],
                    res["star_y"].values[t] - truth.star_y[truth.variable]) < 0.5
    for j in range(res.sizes["aperture"]):
        d = res["diff_mag"].values[:, j]
        depth = np.median(d[truth.in_eclipse]) - np.median(d[simulate.eclipse_mag(
            np.arange(40) / 39, truth.depth) == 0])
        assert depth == pytest.approx(truth.depth, abs=0.02)
    # stars in the frame position: frame pixel = base pixel + offset (star 0 of the truth is the variable)
    assert res["star_x"].attrs["description"] == "base frame, 0-based"


def test_times_are_bjd_tdb_of_the_header_position(night):
    truth, res, _ = night
    kw = time_keywords(truth.mjd, target_coord(truth.ra, truth.dec), site_location())
    np.testing.assert_allclose(res["time"].values, kw["BJD_TDB"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(res["hjd"].values, kw["HJD"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(res["airmass"].values, kw["AIRMASS"], rtol=1e-6)


def test_outputs_on_disk(night):
    _, res, root = night
    red = root / "red"
    for name in ("bias.fits", "flat_R.fits", "lst/frames.csv", "lst/V1234Cyg_R.lst", "offset_V1234Cyg_R.csv",
                 "phot_V1234Cyg_R.zarr", "pick_V1234Cyg_R.json", "cata_V1234Cyg_R.fits", "lc_V1234Cyg_R.zarr",
                 "lc_V1234Cyg_R.csv", "lc_V1234Cyg_R.png"):
        assert (red / name).exists(), name
    assert not list(red.rglob("*.pkl")) and not list(red.rglob(".*tmp*"))
    stored = read_dataset(red / "lc_V1234Cyg_R.zarr")
    xr.testing.assert_allclose(stored["diff_mag"], res["diff_mag"])
    assert stored.attrs["comparisons"] == res.attrs["comparisons"]
    table = pd.read_csv(red / "lc_V1234Cyg_R.csv")
    assert set(table["timesys"]) == {"BJD_TDB"}
    assert len(table) == 40 and {"time", "diff_mag_r5px", "diff_err_r5px", "hjd", "airmass"} <= set(table.columns)
    header = fits.getheader(red / "V1234Cyg_R" / "V1234Cyg-0001R.bf.fits")
    for key in ("JD", "MJD", "HJD", "BJD_TDB", "ALT", "AZ", "AIRMASS"):
        assert key in header
    assert header["BJD_TDB"] == pytest.approx(res["time"].values[0], abs=1e-8)
    assert header["FLATCOR"] and header["BIASCOR"] and header["OBJECT"] == "V1234Cyg"
    with fits.open(red / "cata_V1234Cyg_R.fits") as hdul:
        assert hdul["FRAMES"].data["MAG"].shape == (40, res.sizes["star"], 3)
        assert list(hdul["STARS"].data["ROLE"]).count("target") == 1
    flat_master = fits.getdata(red / "flat_R.fits")
    assert np.median(flat_master) == pytest.approx(1.0, abs=1e-3)
    assert fits.getheader(red / "flat_R.fits")["NCOMBINE"] == 4  # the under-exposed flat is rejected


def test_given_stars_and_netcdf(night, tmp_path):
    truth, _, root = night
    red = tmp_path / "red"
    shutil.copytree(root / "red", red)
    starxy = [(truth.star_x[0], truth.star_y[0])] + [(truth.star_x[i], truth.star_y[i]) for i in (3, 4, 5, 6)]
    res = xcube.frames.run(root / "raw", red, steps="pkcd", starxy=starxy, ind_ref=[1, 2, 3], ind_chk=4,
                           result_format="netcdf", aper=(-1.5, 6.0))
    assert (res.attrs["target"], res.attrs["comparisons"], res.attrs["checks"]) == (0, [1, 2, 3], [4])
    assert list(res["source"].values[:5]) == ["given"] * 5
    assert res["aperture_setting"].values[0] == -1.5 and 3.0 < res["aperture"].values[0] < 7.0
    assert (red / "lc_V1234Cyg_R.nc").exists()
    d = res["diff_mag"].values[:, 1]
    depth = np.median(d[truth.in_eclipse]) - np.median(d[:8])
    assert depth == pytest.approx(truth.depth, abs=0.02)
    assert read_dataset(red / "lc_V1234Cyg_R.nc").attrs["comparisons"] == [1, 2, 3]


def test_command_line(night, tmp_path, capsys):
    _, res, root = night
    red = tmp_path / "red"
    shutil.copytree(root / "red", red)
    assert main(["frames", "run", str(root / "raw"), str(red), "--steps", "kcd", "--on-exist", "overwrite",
                 "--set", "pick_ref_n=4", "pick_chk_n=2"]) == 0
    out = capsys.readouterr().out
    assert f"target {res.attrs['target']}" in out and "median diff_err" in out
    stored = read_dataset(red / "lc_V1234Cyg_R.zarr")
    assert len(stored.attrs["comparisons"]) == 4 and len(stored.attrs["checks"]) == 2
    assert main(["frames", "list", str(root / "raw")]) == 0
    assert "V1234Cyg" in capsys.readouterr().out
    assert main(["frames", "run", str(root / "raw"), str(red), "--steps", "xyz"]) == 1
    assert "steps 'xyz' unknown" in capsys.readouterr().err


def test_saturated_star_is_neither_target_nor_comparison(tmp_path, monkeypatch):
    """Pixels at the raw saturation level (SATURATE, else 65535 for unsigned 16-bit) become NaN in step i, so a
    saturated constant star is not picked (it was the target: clipping made it look variable)."""
    orig = simulate._star_field

    def field(rng, n, shape, margin, min_sep=14.0):
        x, y, f = orig(rng, n, shape, margin, min_sep)
        x[1], y[1], f[1] = shape[1] / 2 + 30, shape[0] / 2 - 25, 6e6
        return x, y, f

    monkeypatch.setattr(simulate, "_star_field", field)
    truth = simulate.night(tmp_path / "raw", n_frames=20, shape=(200, 200), n_stars=15, seed=3, depth=0.15)
    assert fits.getdata(truth.files["science"][0]).max() == 65535
    res = xcube.frames.run(tmp_path / "raw", tmp_path / "red", progress=False)
    t = res.attrs["target"]
    assert np.hypot(res["star_x"].values[t] - truth.star_x[0], res["star_y"].values[t] - truth.star_y[0]) < 0.5
    sat = np.hypot(res["star_x"].values - truth.star_x[1], res["star_y"].values - truth.star_y[1]) < 5
    assert not set(np.flatnonzero(sat)) & set(res.attrs["comparisons"] + [t])
    with fits.open(tmp_path / "red" / "V1234Cyg_R" / "V1234Cyg-0001R.bf.fits") as hdul:
        ix, iy = int(round(truth.star_x[1])), int(round(truth.star_y[1]))
        assert np.isnan(hdul[0].data[iy - 1:iy + 2, ix - 1:ix + 2]).any()


def test_rerun_pick_checks_given_stars_and_keeps_statistics(night, tmp_path, caplog):
    """steps='kcd' with a starxy the photometry did not measure says to rerun step p (it was silently picked
    automatically); ind_* without starxy warn; a failed automatic pick still writes pick_*.csv."""
    import logging

    truth, res, root = night
    red = tmp_path / "red"
    shutil.copytree(root / "red", red)
    starxy = [(truth.star_x[i], truth.star_y[i]) for i in range(3)]
    with pytest.raises(FileNotFoundError, match=r"starxy \(3 stars\) differs .*rerun step p"):
        xcube.frames.run(root / "raw", red, steps="kcd", starxy=starxy, ind_tgt=0, on_missing="error")
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        again = xcube.frames.run(root / "raw", red, steps="kcd", ind_tgt=5)
    assert "ind_tgt set without starxy" in caplog.text and again.attrs["target"] == res.attrs["target"]
    (red / "pick_V1234Cyg_R.csv").unlink()
    with pytest.raises(FileNotFoundError, match="no variable star.*pick_V1234Cyg_R.csv"):
        xcube.frames.run(root / "raw", red, steps="k", pick_var_std=5.0, on_missing="error")
    stats = pd.read_csv(red / "pick_V1234Cyg_R.csv")
    assert len(stats) == res.sizes["star"] and {"x", "y", "missing", "std", "range"} <= set(stats.columns)
    assert not (red / "pick_V1234Cyg_R.json").exists()


def test_photometry_of_offsets_without_rotation(night, tmp_path):
    """Offsets written by an older xcube (no rotation column): step p measures with rotation 0 where the
    offset is known and records it, after the offsets, in the photometry file."""
    _, _, root = night
    red = tmp_path / "red"
    shutil.copytree(root / "red", red)
    path = red / "offset_V1234Cyg_R.csv"
    offsets = pd.read_csv(path)
    offsets.drop(columns="rotation").to_csv(path, index=False)
    xcube.frames.run(root / "raw", red, steps="p", on_exist="overwrite", result_format="netcdf")
    phot = read_dataset(red / "phot_V1234Cyg_R.nc")  # (netCDF keeps the order of the variables)
    known = np.isfinite(phot["offset_x"].values)
    assert known.any()
    np.testing.assert_array_equal(phot["rotation"].values, np.where(known, 0.0, np.nan))
    assert phot["rotation"].attrs["units"] == "deg"
    names = list(phot.data_vars)
    assert names.index("offset_y") < names.index("rotation") < names.index("n_aligned")
