"""Review p23: raw files whose names differ only in the FITS suffix, a .fz frame with a damaged tile, unused dark
frames and temporaries of killed steps p, c, d (xcube.frames.files, xcube.frames.steps)."""
from __future__ import annotations

import logging
import os
import shutil

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

import xcube.frames as xf
from xcube.frames import simulate
from xcube.frames.files import FitsStack

SMALL = {"n_frames": 10, "shape": (128, 128), "n_stars": 12, "max_dither": 6.0, "n_bias": 3, "n_flat": 3}


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _fpack(src, dst, damage: bool = False):
    """``src`` re-saved as a RICE tile-compressed ``dst`` (as fpack writes it); ``damage`` scrambles its heap."""
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(fits.getdata(src), header=fits.getheader(src),
                                                       compression_type="RICE_1")]).writeto(dst)
    if damage:  # the middle third of the compressed data (headers and tile table intact)
        with fits.open(dst, disable_image_compression=True) as hdul:
            start, size = hdul[1]._data_offset, hdul[1]._data_size
        b = bytearray(dst.read_bytes())
        for i in range(start + size // 3, start + 2 * size // 3):
            b[i] = (b[i] * 7 + 13) % 256
        dst.write_bytes(bytes(b))


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A night with: V1234Cyg-0002R.fit also as .fits.fz (fpack kept the original: one frame), frame 6 also saved
    as V1234Cyg-0002R.fits (another frame under a clashing name), frame 3 only as a .fz with a damaged tile, and
    three dark frames. Run through every step, the warnings kept."""
    root = tmp_path_factory.mktemp("frames-p23")
    raw = root / "raw"
    simulate.night(raw, seed=5, **SMALL)
    _fpack(raw / "V1234Cyg-0002R.fit", raw / "V1234Cyg-0002R.fits.fz")
    shutil.copy(raw / "V1234Cyg-0006R.fit", raw / "V1234Cyg-0002R.fits")
    _fpack(raw / "V1234Cyg-0003R.fit", raw / "V1234Cyg-0003R.fits.fz", damage=True)
    (raw / "V1234Cyg-0003R.fit").unlink()
    for k in range(3):
        hdr = fits.getheader(raw / "bias-0001.fit")
        hdr["IMAGETYP"], hdr["EXPTIME"] = "Dark Frame", 60.0
        fits.writeto(raw / f"dark-000{k + 1}.fit", fits.getdata(raw / "bias-0001.fit") + np.uint16(50), hdr)
    records = _Records()
    log = logging.getLogger("xcube.frames")
    log.addHandler(records)
    try:
        res = xf.run(raw, root / "red")
    finally:
        log.removeHandler(records)
    return root, res, records.messages


def test_same_frame_under_two_suffixes_is_read_once(night):
    """X.fit and its fpacked X.fits.fz (same DATE-OBS): the scan keeps the uncompressed one and leaves the other
    out, naming both."""
    root, _, messages = night
    table = xf.scan_frames(root / "raw")
    fz = table[table["name"] == "V1234Cyg-0002R.fits.fz"].iloc[0]
    assert "V1234Cyg-0002R.fit" in fz["problem"] and "same frame" in fz["problem"]
    assert table.loc[table["name"] == "V1234Cyg-0002R.fit", "problem"].iloc[0] == ""
    assert any("V1234Cyg-0002R.fits.fz" in m and "V1234Cyg-0002R.fit " in m + " " for m in messages)


def test_other_frame_with_a_clashing_name_gets_its_own_calibrated_file(night):
    """X.fit and X.fits holding another frame: each has its own calibrated file with its own time and pixels, and
    the light curve has one row per frame."""
    root, res, _ = night
    gdir = root / "red" / "V1234Cyg_R"
    frames = pd.read_csv(gdir / "frames.csv")
    assert frames["calibrated"].is_unique
    cal = dict(zip(frames["file"], frames["calibrated"]))
    assert cal["V1234Cyg-0002R.fit"] == "V1234Cyg-0002R.bf.fits"
    assert cal["V1234Cyg-0002R.fits"] == "V1234Cyg-0002R.fits.bf.fits"
    for name in ("V1234Cyg-0002R.fit", "V1234Cyg-0002R.fits"):
        row = frames[frames["file"] == name].iloc[0]
        assert fits.getheader(gdir / row["calibrated"])["MJD"] == pytest.approx(row["mjd"], abs=1e-9)
    np.testing.assert_array_equal(fits.getdata(gdir / cal["V1234Cyg-0002R.fits"]),
                                  fits.getdata(gdir / cal["V1234Cyg-0006R.fit"]))
    assert sorted(res["file"].values) == sorted(frames["file"])
    i2, i6 = (int(np.flatnonzero(res["file"].values == n)[0]) for n in ("V1234Cyg-0002R.fits", "V1234Cyg-0006R.fit"))
    np.testing.assert_allclose(res["diff_mag"].values[i2], res["diff_mag"].values[i6])


def test_damaged_fz_frame_is_left_out_and_the_run_goes_on(night):
    """A .fz frame whose compressed tile cannot be decompressed: named in a warning, absent from frames.csv and
    the light curve, recorded in lst/frames.csv; the other frames are reduced."""
    root, res, messages = night
    name = "V1234Cyg-0003R.fits.fz"
    assert any(name in m and "decompress" in m for m in messages)
    frames = pd.read_csv(root / "red" / "V1234Cyg_R" / "frames.csv")
    assert name not in set(frames["file"]) and len(frames) == 10     # 10 frames - 1 damaged + 1 X.fits
    assert name not in set(res["file"].values) and res.sizes["frame"] == 10
    listed = pd.read_csv(root / "red" / "lst" / "frames.csv", keep_default_na=False)
    assert "decompress" in listed.loc[listed["name"] == name, "problem"].iloc[0]
    assert name not in (root / "red" / "lst" / "V1234Cyg_R.lst").read_text()


def test_unreadable_frame_error_names_the_file(night):
    root, _, _ = night
    path = root / "raw" / "V1234Cyg-0003R.fits.fz"
    with pytest.raises(OSError, match="V1234Cyg-0003R.fits.fz"):
        FitsStack([path], [1], (128, 128))[0]


def test_unused_darks_are_warned_once_per_group(night):
    _, _, messages = night
    dark = [m for m in messages if "dark frames" in m]
    assert len(dark) == 1 and "not used" in dark[0] and "V1234Cyg R" in dark[0]


def test_stale_temporaries_of_steps_p_c_d_are_removed(night, tmp_path):
    """A killed step p (c, d) leaves .phot_*.zarr.tmp-* (...); the next run of that step removes them."""
    root, _, _ = night
    red = tmp_path / "red"
    shutil.copytree(root / "red", red)
    stale = [red / ".phot_V1234Cyg_R.zarr.tmp-2475a2dd", red / ".cata_V1234Cyg_R.zarr.tmp-deadbeef",
             red / ".cata_V1234Cyg_R.fits.tmp-deadbeef.fits", red / ".lc_V1234Cyg_R.zarr.tmp-0badcafe",
             red / ".lc_V1234Cyg_R.csv.tmp-0badcafe.csv", red / ".offset_V1234Cyg_R.csv.tmp-0badcafe.csv"]
    for p in stale:
        if p.suffix in (".fits", ".csv"):
            p.write_bytes(b"x")
        else:
            (p / "mag").mkdir(parents=True)
            (p / "mag" / "c0").write_bytes(b"x")
            os.utime(p / "mag" / "c0", (1e9, 1e9))
            os.utime(p / "mag", (1e9, 1e9))
        os.utime(p, (1e9, 1e9))
    young = red / ".phot_V1234Cyg_R.zarr.tmp-11111111"      # may belong to a writer still running: kept
    young.mkdir()
    xf.run(root / "raw", red, steps="opkcd")
    assert [p.name for p in stale if p.exists()] == [] and young.exists()


def test_damaged_bias_frame_is_left_out_of_the_master(tmp_path, caplog):
    raw = tmp_path / "raw"
    simulate.night(raw, seed=6, **SMALL)
    _fpack(raw / "bias-0002.fit", raw / "bias-0002.fits.fz", damage=True)
    (raw / "bias-0002.fit").unlink()
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        xf.run(raw, tmp_path / "red", steps="lb")
    assert fits.getheader(tmp_path / "red" / "bias.fits")["NCOMBINE"] == 2
    assert any("bias-0002.fits.fz" in r.getMessage() and "decompress" in r.getMessage() for r in caplog.records)


def test_calibrated_frame_of_another_raw_frame_is_remade(tmp_path):
    """X.fits (another frame) reduced alone gets X.bf.fits; once X.fit (earlier) is added, X.bf.fits is X.fit's:
    the rerun under append remakes it, as its MJD is another frame's, and X.fits moves to X.fits.bf.fits."""
    raw = tmp_path / "raw"
    simulate.night(raw, seed=6, **SMALL)
    moved = raw.parent / "V1234Cyg-0002R.fit"
    shutil.move(raw / "V1234Cyg-0002R.fit", moved)
    shutil.copy(raw / "V1234Cyg-0006R.fit", raw / "V1234Cyg-0002R.fits")
    red = tmp_path / "red"
    xf.run(raw, red, steps="lbfi")
    gdir = red / "V1234Cyg_R"
    shutil.move(moved, raw / "V1234Cyg-0002R.fit")
    xf.run(raw, red, steps="lbfi")
    frames = pd.read_csv(gdir / "frames.csv").set_index("file")
    for name in ("V1234Cyg-0002R.fit", "V1234Cyg-0002R.fits"):
        got = fits.getheader(gdir / frames.at[name, "calibrated"])["MJD"]
        assert got == pytest.approx(frames.at[name, "mjd"], abs=1e-9), name
