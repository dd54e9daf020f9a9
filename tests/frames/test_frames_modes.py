"""Steps, rerun modes (existing outputs, missing inputs), master priority, missing flats and bands,
malformed frames and configuration priority (xcube.frames.pipeline, xcube.frames.config)."""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from astropy.io import fits

import xcube.frames as xf
from xcube.frames import simulate
from xcube.frames.calibrate import write_master
from xcube.frames.config import DEFAULTS, load_config
from xcube.frames.pipeline import parse_steps

SMALL = {"n_frames": 10, "shape": (128, 128), "n_stars": 12, "max_dither": 6.0, "n_bias": 3, "n_flat": 3}


@pytest.fixture
def raw(tmp_path):
    """Band R with bias and flats (names obj-0001R.fit), band V without flats (names obj_V_001.fits), and one
    malformed file."""
    d = tmp_path / "raw"
    simulate.night(d, band="R", seed=3, **SMALL)
    simulate.night(d, band="V", seed=4, name_form="underscore", **(SMALL | {"n_bias": 0, "n_flat": 0}))
    (d / "V1234Cyg-0099R.fit").write_bytes(b"garbage, not FITS" * 20)
    return d


def _mtimes(paths):
    return {p.name: p.stat().st_mtime_ns for p in paths}


def _age(paths):
    for p in paths:
        os.utime(p, ns=(10**18, 10**18))  # an old timestamp, so that rewriting shows


def test_parse_steps():
    assert parse_steps("all") == "lbfiopkcd" and parse_steps("dcb") == "bcd" and parse_steps(None) == "lbfiopkcd"
    with pytest.raises(ValueError, match="steps 'w' unknown"):
        parse_steps("lbw")


def test_run_continues_past_malformed_frame_and_missing_flats(raw, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        res = xf.run(raw, tmp_path / "red")
    assert res.attrs["band"] == "R" and res.sizes["frame"] == 10  # V skipped, R reduced to the end
    assert "V1234Cyg-0099R.fit" in caplog.text and "not a FITS file" in caplog.text
    assert "no flat frames of band 'V'" in caplog.text and "alt_flat" in caplog.text
    flat_warnings = [r for r in caplog.records if "'V'" in r.getMessage() and "flat" in r.getMessage()]
    assert len(flat_warnings) == 1, [r.getMessage() for r in flat_warnings]  # reported once, not again at step i
    assert not (tmp_path / "red" / "V1234Cyg_V").exists()
    # allow_no_flat: V is calibrated without a flat and flagged in the header
    xf.run(raw, tmp_path / "red", band="V", steps="i", allow_no_flat=True)
    header = fits.getheader(tmp_path / "red" / "V1234Cyg_V" / "V1234Cyg_V_001.bf.fits")
    assert header["FLATCOR"] is False and header["BIASCOR"] is True
    # two objects/bands reach step d: the result is a DataTree /<obj>/<band>
    tree = xf.run(raw, tmp_path / "red", steps="opkcd")
    assert set(tree["V1234Cyg"].children) == {"R", "V"}
    assert tree["V1234Cyg/V"].to_dataset().attrs["band"] == "V"
    with pytest.raises(FileNotFoundError, match="no flat frames of band 'V'.*on_missing='error'"):
        xf.run(raw, tmp_path / "red", band="V", steps="f", on_missing="error")


def test_no_flats_at_all_is_an_error(raw, tmp_path, capsys):
    """Every band skipped for want of a flat: ValueError (the command exits 1 naming the folder and the
    reason), not 'done' with no light curve; a band without flats next to one that reduces only warns."""
    from xcube.cli import main

    with pytest.raises(ValueError, match=r"nothing left to reduce in .*raw: every object and band was skipped: "
                                         r"V1234Cyg V: step i \(correct\): no master flat for band 'V'"):
        xf.run(raw, tmp_path / "red", band="V")
    assert (tmp_path / "red" / "lst" / "frames.csv").exists()  # what was written before stays
    for flat in raw.glob("flat*"):
        flat.unlink()
    assert main(["frames", "run", str(raw), str(tmp_path / "red2")]) == 1
    captured = capsys.readouterr()
    assert "done" not in captured.out and "outputs in" not in captured.out
    assert f"nothing left to reduce in {raw}" in captured.err
    assert "no master flat for band 'R'" in captured.err and "no master flat for band 'V'" in captured.err
    assert not list((tmp_path / "red2").glob("lc_*"))


def test_missing_band_and_object(raw, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        assert xf.run(raw, tmp_path / "red", band="RI", steps="l") is None
    assert "no frames in band 'I'" in caplog.text and "bands present: ['R', 'V']" in caplog.text
    assert (tmp_path / "red" / "lst" / "V1234Cyg_R.lst").exists()
    with pytest.raises(ValueError, match="nothing to reduce"):
        xf.run(raw, tmp_path / "red", band="I", steps="l")
    with pytest.raises(FileNotFoundError, match="band 'I'"):
        xf.run(raw, tmp_path / "red", band=["R", "I"], steps="l", on_missing="error")
    with pytest.raises(ValueError, match="nothing to reduce"):
        xf.run(raw, tmp_path / "red", obj="M31", steps="l")
    with pytest.raises(ValueError, match="separate output folder"):
        xf.run(raw, raw)


def test_exist_modes_on_aggregate_output(raw, tmp_path):
    red = tmp_path / "red"
    xf.run(raw, red, band="R", steps="b")
    bias = red / "bias.fits"
    _age([bias])
    xf.run(raw, red, band="R", steps="b", on_exist="skip")
    assert bias.stat().st_mtime_ns == 10**18
    xf.run(raw, red, band="R", steps="b", on_exist="append")  # aggregates are remade under append
    assert bias.stat().st_mtime_ns != 10**18
    _age([bias])
    xf.run(raw, red, band="R", steps="b", on_exist="overwrite")
    assert bias.stat().st_mtime_ns != 10**18
    with pytest.raises(FileExistsError, match="bias.fits: exists and on_exist='error'"):
        xf.run(raw, red, band="R", steps="b", on_exist="error")


def test_exist_modes_on_per_frame_outputs(raw, tmp_path):
    red = tmp_path / "red"
    xf.run(raw, red, band="R", steps="bfi")
    frames = sorted((red / "V1234Cyg_R").glob("*.bf.fits"))
    assert len(frames) == 10
    _age(frames)
    frames[3].unlink()
    xf.run(raw, red, band="R", steps="i", on_exist="append")  # keeps existing frames, makes the missing one
    after = _mtimes(frames)
    assert after[frames[3].name] != 10**18 and all(after[p.name] == 10**18 for p in frames if p != frames[3])
    frames[5].unlink()
    xf.run(raw, red, band="R", steps="i", on_exist="skip")
    assert frames[5].exists()  # a missing per-frame output is made under skip too
    xf.run(raw, red, band="R", steps="i", on_exist="overwrite")
    assert all(t != 10**18 for t in _mtimes(frames).values())
    with pytest.raises(FileExistsError, match="on_exist='error'"):
        xf.run(raw, red, band="R", steps="i", on_exist="error")


def test_missing_inputs(raw, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        with pytest.raises(ValueError, match="nothing left to reduce.*cata_V1234Cyg_R.zarr not found; run step c"):
            xf.run(raw, tmp_path / "red", band="R", steps="d")
    assert "cata_V1234Cyg_R.zarr not found; run step c" in caplog.text
    with pytest.raises(FileNotFoundError, match="frames.csv not found; run step i"):
        xf.run(raw, tmp_path / "red", band="R", steps="o", on_missing="error")


def test_master_priority(raw, tmp_path, caplog):
    red = tmp_path / "red"
    given, alt = tmp_path / "given_bias.fits", tmp_path / "alt_bias.fits"
    write_master(given, np.full((128, 128), 400.0))
    write_master(alt, np.full((128, 128), 450.0))
    xf.run(raw, red, band="R", steps="bfi", use_bias=given, alt_bias=alt)
    assert not (red / "bias.fits").exists()  # tonight's bias is not combined when one is given
    cal_given = fits.getdata(red / "V1234Cyg_R" / "V1234Cyg-0001R.bf.fits")
    xf.run(raw, red, band="R", steps="bfi", on_exist="overwrite")  # tonight's bias (about 500 ADU)
    cal_tonight = fits.getdata(red / "V1234Cyg_R" / "V1234Cyg-0001R.bf.fits")
    flat = fits.getdata(red / "flat_R.fits")
    np.testing.assert_allclose(np.median((cal_given - cal_tonight) * flat), 100.0, atol=1.0)
    # no bias frames tonight: alt_bias is the fallback; without it the object is skipped with the fix named
    for p in raw.glob("bias-*.fit"):
        p.unlink()
    (red / "bias.fits").unlink()
    xf.run(raw, red, band="R", steps="bi", on_exist="overwrite", alt_bias=alt)
    cal_alt = fits.getdata(red / "V1234Cyg_R" / "V1234Cyg-0001R.bf.fits")
    np.testing.assert_allclose(np.median((cal_alt - cal_tonight) * flat), 50.0, atol=1.0)
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        with pytest.raises(ValueError, match="nothing left to reduce.*no master bias.*alt_bias"):  # R was all
            xf.run(raw, red, band="R", steps="bi", on_exist="overwrite")
    assert "no bias frames" in caplog.text and "alt_bias" in caplog.text


def test_config_priority(tmp_path, raw):
    ini = tmp_path / "site.ini"
    ini.write_text("# Xinglong 85 cm\nflat_limit_low = 1000\naper = (4, -1.5)\nsite_ele = 900\n"
                   "use_flat = {'R': 'flat_R.fits'}\nallow_no_flat = yes\n")
    toml = tmp_path / "night.toml"
    toml.write_text('[frames]\nflat_limit_low = 2000\noffset_method = "stars"\n')
    cfg = load_config([ini, toml], flat_limit_low=3000)
    assert cfg["flat_limit_low"] == 3000 and cfg["aper"] == (4, -1.5) and cfg["site_ele"] == 900
    assert cfg["use_flat"] == {"R": "flat_R.fits"} and cfg["allow_no_flat"] is True
    assert cfg["offset_method"] == "stars" and cfg["pick_var_std"] == DEFAULTS["pick_var_std"]
    assert load_config([ini, toml])["flat_limit_low"] == 2000 and load_config(ini)["flat_limit_low"] == 1000
    (tmp_path / "sec.ini").write_text("[frames]\nborder_cut = 5\n")
    assert load_config(tmp_path / "sec.ini")["border_cut"] == 5
    (tmp_path / "bad.ini").write_text("flat_limit_lo = 3\n")
    with pytest.raises(ValueError, match="bad.ini: unknown configuration key 'flat_limit_lo'; did you mean "
                                         "'flat_limit_low'"):
        load_config(tmp_path / "bad.ini")
    with pytest.raises(ValueError, match="on_exist='sometimes'"):
        load_config(on_exist="sometimes")
    with pytest.raises(FileNotFoundError, match="nope.ini"):
        load_config(tmp_path / "nope.ini")
    # in a run: the file rejects every flat (all are at 25000 ADU), the keyword argument wins over it
    strict = tmp_path / "strict.ini"
    strict.write_text("flat_limit_high = 10000\n")
    xf.run(raw, tmp_path / "red1", band="R", steps="bf", config_file=strict)
    assert not (tmp_path / "red1" / "flat_R.fits").exists()
    xf.run(raw, tmp_path / "red2", band="R", steps="bf", config_file=strict, flat_limit_high=50000)
    assert (tmp_path / "red2" / "flat_R.fits").exists()


def test_append_remakes_frames_of_another_calibration_and_reads_only_those(raw, tmp_path, monkeypatch, caplog):
    """Calibrated frames carry CALHASH (masters, border_cut, saturation): append remakes those made with another
    calibration (a new border_cut mixed 128x128 and 108x108 frames, then crashed); only the frames to write are
    read; temporaries of a killed run are removed."""
    from xcube.frames.files import FitsStack

    red = tmp_path / "red"
    xf.run(raw, red, band="R", steps="bfi")
    gdir = red / "V1234Cyg_R"
    frames = sorted(gdir.glob("*.bf.fits"))
    assert len({fits.getheader(p)["CALHASH"] for p in frames}) == 1
    frames[4].unlink()
    stale = gdir / ".V1234Cyg-0003R.bf.fits.tmp-deadbeef.bf.fits"
    stale.write_bytes(b"x" * 2880)
    os.utime(stale, (1e9, 1e9))
    read = []
    orig = FitsStack.__getitem__

    def counting(self, key):
        out = orig(self, key)
        read.append(out.shape[0] if out.ndim == 3 else 1)
        return out

    monkeypatch.setattr(FitsStack, "__getitem__", counting)
    xf.run(raw, red, band="R", steps="i")                               # one frame to remake: one read
    assert sum(read) == 1 and frames[4].exists() and not stale.exists()
    xf.run(raw, red, band="R", steps="iop", border_cut=10)              # all remade with the new border
    assert {fits.getdata(p).shape for p in frames} == {(108, 108)}
    assert {fits.getheader(p)["BORDER"] for p in frames} == {10}
    _age(frames)
    read.clear()
    xf.run(raw, red, band="R", steps="i", border_cut=10)                # same calibration: nothing read
    assert sum(read) == 0 and all(t == 10**18 for t in _mtimes(frames).values())
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        xf.run(raw, red, band="R", steps="i", on_exist="skip")          # kept under skip, with a warning
    assert all(t == 10**18 for t in _mtimes(frames).values())
    assert "made with another calibration" in caplog.text


def test_calibrated_frame_of_an_extension_keeps_the_primary_keywords(tmp_path):
    from xcube.frames.store import write_calibrated

    prim = fits.PrimaryHDU()
    prim.header.update({"DATE-OBS": "2024-06-06T14:00:00", "EXPTIME": 10.0, "OBJECT": "X", "FILTER": "R"})
    ext = fits.ImageHDU(np.zeros((8, 8), np.uint16))
    ext.header["FILTER"] = "V"                                           # the extension's value wins
    fits.HDUList([prim, ext]).writeto(tmp_path / "ext.fits")
    write_calibrated(np.zeros((1, 8, 8), np.float32), [str(tmp_path / "ext.fits")], [1],
                     [str(tmp_path / "ext.bf.fits")], [{"BIASCOR": (True, "")}], [True])
    header = fits.getheader(tmp_path / "ext.bf.fits")
    assert (header["DATE-OBS"], header["EXPTIME"], header["OBJECT"]) == ("2024-06-06T14:00:00", 10.0, "X")
    assert header["FILTER"] == "V" and header["BIASCOR"] is True and header["NAXIS"] == 2
    assert "XTENSION" not in header and "BZERO" not in header


def test_qlcp_configuration_file_is_accepted(tmp_path, caplog):
    """QLCP ini files hold site_tz, draw_phot, draw_phot_err, file_log and scr_log: they were 'unknown
    configuration key' errors; now they are ignored with a warning naming each as not used."""
    ini = tmp_path / "qlcp.ini"
    ini.write_text("file_log = logging.DEBUG\nscr_log = logging.INFO\nsite_lon = 117.57722\nsite_tz = 8\n"
                   "draw_phot = False\ndraw_phot_err = 0.05\n")
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        cfg = load_config(ini)
    assert cfg["site_lon"] == 117.57722 and "site_tz" not in cfg
    for key in ("site_tz", "draw_phot", "draw_phot_err", "file_log", "scr_log"):
        assert f"QLCP key '{key}' is not used" in caplog.text
    with pytest.raises(ValueError, match="unknown configuration key 'site_tzz'"):
        load_config(site_tzz=8)


@pytest.mark.parametrize("kw, said", [
    ({"aper": (0, 5)}, "aper=(0, 5): radii must be finite and non-zero"),
    ({"aper": {"V1234Cyg": (3.0, float("nan"))}}, "(object 'V1234Cyg')"),
    ({"annulus": (2, 1)}, "annulus=(2, 1): give (inner, outer) with the outer radius beyond"),
    ({"annulus": (-3.0, -2.0)}, "outer radius beyond"),
    ({"annulus": (12,)}, "give (inner, outer)"),
    ({"aper": "wide"}, "expected radii [px]"),
])
def test_bad_apertures_name_the_setting(kw, said):
    """Sweep p25: photutils' bare "'r' must be a positive scalar" named neither the setting nor the fix."""
    with pytest.raises(ValueError) as err:
        load_config(**kw)
    assert said in str(err.value)
    assert load_config(aper=(-1.5, 4), annulus=(-2, 15))["annulus"] == (-2, 15)  # FWHM multiples and pixels mix


def test_cli_names_a_bad_annulus(tmp_path, capsys):
    from xcube.cli import main

    (tmp_path / "raw").mkdir()
    assert main(["frames", "run", str(tmp_path / "raw"), str(tmp_path / "red"), "--set", "annulus=(2,1)"]) == 1
    assert "annulus=(2, 1)" in capsys.readouterr().err
