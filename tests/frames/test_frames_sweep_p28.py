"""Review p28: kept calibrated frames follow a new alt_coord or site, ``xcube frames list`` takes the
configuration, DATE-OBS in TT/TDB keeps its sub-millisecond part, flats of another shape are named, and an
all-NaN star leaks no RuntimeWarning (xcube.frames.steps, cli, files, result_steps)."""
from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from astropy.io import fits
from astropy.time import Time
from frames_helpers import write_frame

import xcube.frames as xf
from xcube.frames import simulate

SMALL = {"n_frames": 6, "shape": (96, 96), "n_stars": 8, "max_dither": 3.0, "n_bias": 3, "n_flat": 3}
_TIME_KEYS = ("JD", "MJD", "HJD", "BJD_TDB", "ALT", "AZ", "AIRMASS")


def _headers(gdir) -> pd.DataFrame:
    """The time/pointing keywords of the group's calibrated frames, in frames.csv's order."""
    table = pd.read_csv(gdir / "frames.csv")
    return pd.DataFrame([{k.lower(): fits.getval(gdir / name, k) for k in _TIME_KEYS}
                         for name in table["calibrated"]]), table


# 1 -----------------------------------------------------------------------------------------------------------------
def test_rerun_with_new_coordinates_and_site_updates_kept_headers(tmp_path, caplog):
    """After a rerun of step i (append) with another alt_coord and site, the kept calibrated frames carry the
    new HJD, BJD_TDB, ALT, AZ, AIRMASS, as frames.csv does; their pixels are not remade. Under skip they stay,
    with a warning."""
    raw, red = tmp_path / "raw", tmp_path / "red"
    simulate.night(raw, seed=2, **SMALL)
    xf.run(raw, red, steps="lbfi", scheduler="synchronous", progress=False)
    gdir = red / "V1234Cyg_R"
    first, _ = _headers(gdir)
    name = pd.read_csv(gdir / "frames.csv")["calibrated"].iloc[0]
    pixels, calhash = fits.getdata(gdir / name), fits.getval(gdir / name, "CALHASH")

    with caplog.at_level(logging.INFO, logger="xcube.frames"):
        xf.run(raw, red, steps="i", alt_coord=("05:00:00", "-30:00:00"), site_lon=-70.7, site_lat=-30.2,
               scheduler="synchronous", progress=False)
    header, table = _headers(gdir)
    assert "0 calibrated frames written, 6 kept" in caplog.text      # headers only: no pixel is recalibrated
    assert "6 kept calibrated frames had other times or pointing" in caplog.text
    assert abs(header["bjd_tdb"] - first["bjd_tdb"]).min() * 86400 > 60   # the new times reached the headers
    for key in ("jd", "mjd", "hjd", "bjd_tdb"):
        np.testing.assert_allclose(header[key], table[key], rtol=0, atol=2e-9)       # [d]
    for key in ("alt", "az", "airmass"):
        np.testing.assert_allclose(header[key], table[key], rtol=1e-12, atol=1e-12)
    assert fits.getval(gdir / name, "CALHASH") == calhash
    np.testing.assert_array_equal(fits.getdata(gdir / name), pixels)
    assert not list(gdir.glob(".*tmp*"))                             # written atomically, no temporaries left
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="xcube.frames"):       # the same settings again: nothing to rewrite
        xf.run(raw, red, steps="i", alt_coord=("05:00:00", "-30:00:00"), site_lon=-70.7, site_lat=-30.2,
               scheduler="synchronous", progress=False)
    assert "keywords are rewritten" not in caplog.text and "0 calibrated frames written, 6 kept" in caplog.text

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        xf.run(raw, red, steps="i", on_exist="skip", scheduler="synchronous", progress=False)
    assert "hold other times or pointing" in caplog.text and "on_exist='append'" in caplog.text
    np.testing.assert_allclose(_headers(gdir)[0]["bjd_tdb"], header["bjd_tdb"], rtol=0, atol=0)


# 2 -----------------------------------------------------------------------------------------------------------------
_PATTERN = r"^(?P<obj>[^.]+)\.(?P<sn>\d{4})\.(?P<band>\w)\.fit$"


def _dotted_night(raw):
    """Two science frames named ``V1234Cyg.000N.R.fit`` without OBJECT: only custom patterns recognise them."""
    raw.mkdir()
    for k in (1, 2):
        write_frame(raw / f"V1234Cyg.000{k}.R.fit", IMAGETYP="Light Frame", DATE_OBS=f"2024-06-06T20:0{k}:00",
                    EXPTIME=30.0)


def test_list_takes_config_and_set_like_run(tmp_path, capsys):
    """``xcube frames list --config`` / ``--set`` use the configured patterns, so list recognises the files as
    run does; a bad key is a one-line error."""
    from xcube.cli import main

    raw = tmp_path / "raw"
    _dotted_night(raw)
    ini = tmp_path / "site.ini"
    ini.write_text(f"patterns = [r'{_PATTERN}']\n")
    assert main(["frames", "list", str(raw)]) == 0
    assert "left out: V1234Cyg.0001.R.fit: no object name" in capsys.readouterr().out
    assert main(["frames", "list", str(raw), "--config", str(ini)]) == 0
    out = capsys.readouterr().out
    assert "science  V1234Cyg             R          2 frames" in out and "left out" not in out
    assert main(["frames", "list", str(raw), "--set", f"patterns=[r'{_PATTERN}']"]) == 0
    assert "2 frames" in capsys.readouterr().out
    xf.run(raw, tmp_path / "red", steps="l", config_file=str(ini))
    listed = pd.read_csv(tmp_path / "red" / "lst" / "frames.csv", keep_default_na=False)
    assert (listed["problem"] == "").all() and set(listed["obj"]) == {"V1234Cyg"}
    assert main(["frames", "list", str(raw), "--set", "patterns_x=1"]) == 1
    assert "did you mean 'patterns'" in capsys.readouterr().err


# 3 -----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("timesys", ["TT", "TDB", "TAI"])
def test_non_utc_date_obs_keeps_sub_millisecond_precision(tmp_path, timesys):
    """DATE-OBS in TT/TDB/TAI is converted to UTC to the ns (it was rounded to the ms: up to 0.5 ms off)."""
    date = "2024-06-06T20:00:00.1234567"
    write_frame(tmp_path / "T_001.fits", DATE_OBS=date, TIMESYS=timesys, EXPTIME=1.0, OBJECT="T",
                IMAGETYP="Light Frame")
    row = xf.scan_frames(tmp_path).iloc[0]
    true = Time(date, scale=timesys.lower()).utc.mjd + 0.5 / 86400
    assert row["problem"] == ""
    assert abs(row["mjd"] - true) * 86400 < 5e-6                           # [s]
    assert abs(Time(row["date_obs"], scale="utc").mjd + 0.5 / 86400 - true) * 86400 < 5e-6


def test_mjd_obs_keeps_sub_millisecond_precision(tmp_path):
    """A frame timed by MJD-OBS only keeps its sub-millisecond part."""
    start = 60467.833333337                                               # 20:00:00.0003 UTC
    write_frame(tmp_path / "T_001.fits", EXPTIME=2.0, OBJECT="T", IMAGETYP="Light Frame", **{"MJD-OBS": start})
    row = xf.scan_frames(tmp_path).iloc[0]
    assert abs(row["mjd"] - (start + 1.0 / 86400)) * 86400 < 5e-6          # [s]


# 4 -----------------------------------------------------------------------------------------------------------------
def _cropped(paths, rows: int) -> None:
    for p in paths:
        with fits.open(p) as hdul:
            data, header = hdul[0].data[:rows].copy(), hdul[0].header.copy()
        fits.PrimaryHDU(data, header).writeto(p, overwrite=True)


def test_flats_of_another_shape_are_named_with_both_shapes(tmp_path, caplog):
    """Flats of another window: step f names the flat frames and both shapes (plain integers), not the master
    bias; step i says why no flat is usable instead of 'no usable flat frames'."""
    raw = tmp_path / "raw"
    simulate.night(raw, seed=4, **SMALL)
    _cropped(sorted(raw.glob("flat*")), 64)
    with caplog.at_level(logging.INFO, logger="xcube.frames"), pytest.raises(ValueError) as err:
        xf.run(raw, tmp_path / "red", steps="lbfi", scheduler="synchronous", progress=False)
    step_f = next(r.getMessage() for r in caplog.records if "step f (flat)" in r.getMessage())
    assert "the 3 flat frames of band 'R' (" in step_f and "are 64x96 pixels" in step_f
    assert "science frames of band 'R' are 96x96 (V1234Cyg)" in step_f
    assert "bias.fits" not in step_f and "np.int64" not in caplog.text
    assert "step f made none: the 3 flat frames of band 'R'" in str(err.value)
    assert "no usable flat frames" not in str(err.value)


def test_bias_of_another_binning_names_the_flats_and_plain_shapes(tmp_path, caplog):
    """A 2x2-binned master bias: step f says the flat frames cannot be bias-subtracted, with plain shapes."""
    raw = tmp_path / "raw"
    simulate.night(raw, seed=4, **SMALL)
    for p in sorted(raw.glob("bias*")):
        with fits.open(p) as hdul:
            data, header = hdul[0].data[::2, ::2].copy(), hdul[0].header.copy()
        fits.PrimaryHDU(data, header).writeto(p, overwrite=True)
    with caplog.at_level(logging.WARNING, logger="xcube.frames"), pytest.raises(ValueError):
        xf.run(raw, tmp_path / "red", steps="lbfi", scheduler="synchronous", progress=False)
    step_f = next(r.getMessage() for r in caplog.records if "step f (flat)" in r.getMessage())
    assert "the 3 flat frames of band 'R' cannot be bias-subtracted" in step_f
    assert "master is (48, 48), the frames are (96, 96)" in step_f and "np.int64" not in caplog.text


# 5 -----------------------------------------------------------------------------------------------------------------
def test_pick_aperture_with_an_all_nan_star_warns_nothing():
    """A star without any finite magnitude (outside the frame, saturated) leaks no 'All-NaN slice' warning."""
    from xcube.frames.result_steps import pick_aperture

    mag = np.full((4, 5, 2), 15.0)
    mag[1] = np.nan                                                        # star 1: NaN in every frame
    err = np.full((4, 5, 2), 0.01)
    err[1] = np.nan
    err[:, :, 1] = 0.02
    phot = xr.Dataset({"mag": (("star", "frame", "aperture"), mag),
                       "mag_err": (("star", "frame", "aperture"), err)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pick_aperture(phot) == 0


def test_plot_lightcurve_with_an_all_nan_aperture_warns_nothing():
    """A light curve whose target is NaN in one aperture (or a check star NaN throughout) plots without an
    'All-NaN slice' warning."""
    from xcube.frames.lightcurve import plot_lightcurve

    diff = np.full((5, 2), 0.1)
    err = np.full((5, 2), 0.01)
    diff[:, 1] = err[:, 1] = np.nan                                         # aperture 1: no finite value
    ds = xr.Dataset({"diff_mag": (("frame", "aperture"), diff), "diff_err": (("frame", "aperture"), err),
                     "check_mag": (("check", "frame", "aperture"), np.full((1, 5, 2), np.nan))},
                    coords={"time": ("frame", 2460468.5 + np.arange(5) / 100), "aperture": [3.0, 5.0],
                            "check": [2]}, attrs={"target": 0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_lightcurve(ds)


def test_frames_modules_are_reached_from_the_package():
    """Docs: ``xcube.frames.simulate.night(folder)`` works after ``import xcube`` alone (it raised
    AttributeError unless the module was imported first)."""
    import subprocess
    import sys

    code = ("import sys, xcube; f = xcube.frames.simulate.night; "
            "print(callable(f), 'photutils' in sys.modules, xcube.frames.calibrate.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["True", "False", "xcube.frames.calibrate"], out.stdout + out.stderr


def test_restamp_leaves_keywords_this_run_does_not_know(tmp_path):
    """Review p28: a value unknown to this run (no coordinates: no ALT/AZ) made every kept frame look
    out of date, so each rerun rewrote it and deleted the raw header's own ALT/AZ."""
    import types

    import numpy as np
    from astropy.io import fits

    from xcube.frames import steps

    p = tmp_path / "a.bf.fits"
    kw = {"JD": np.array([2460468.3]), "MJD": np.array([60467.8]), "HJD": np.array([np.nan]),
          "BJD_TDB": np.array([np.nan]), "ALT": np.array([np.nan]), "AZ": np.array([np.nan]),
          "AIRMASS": np.array([1.31])}
    hdu = fits.PrimaryHDU(np.ones((4, 4), np.float32))
    hdu.header["ALT"], hdu.header["AZ"] = 52.1, 180.5  # the telescope's, copied from the raw header
    for k, (v, c) in steps.frame_keywords(kw, 0, False, 0).items():
        hdu.header[k] = (v, c)
    hdu.writeto(p)
    red = types.SimpleNamespace(cfg={"on_exist": "append"})
    assert steps._restamp(red, [p], kw, np.array([True])) == 0
    assert fits.getheader(p)["ALT"] == 52.1
    kw["AIRMASS"] = np.array([1.5])  # a known value that changed is rewritten, the unknown ones left
    assert steps._restamp(red, [p], kw, np.array([True])) == 1
    h = fits.getheader(p)
    assert h["AIRMASS"] == 1.5 and h["ALT"] == 52.1 and h["AZ"] == 180.5
