"""Recognising frames from names and headers, malformed files, lazy cubes (xcube.frames.files)."""
from __future__ import annotations

import logging

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.time import Time
from frames_helpers import write_frame

from xcube.frames.files import DEFAULT_PATTERNS, NO_BAND, group_rows, open_frames, parse_name, scan_frames


@pytest.mark.parametrize("name, obj, band, sn", [
    ("UYUMa-0003l.fit", "UYUMa", "l", 3),
    ("obj-0001R.fit", "obj", "R", 1),
    ("bias-0001.fits", "bias", "", 1),
    ("V-1234-0012V.fts", "V-1234", "V", 12),
    ("obj_R_001.fits", "obj", "R", 1),
    ("TCrB_V_001.fits", "TCrB", "V", 1),
    ("flat_R_003.fit", "flat", "R", 3),
    ("bias_001.fits", "bias", "", 1),
    ("NGC_1234_V_001.fits", "NGC_1234", "V", 1),
    ("flat_R_1_R_001.fit", "flat", "R", 1),
    ("M67-000123B.fits.gz", "M67", "B", 123),
])
def test_default_patterns(name, obj, band, sn):
    assert parse_name(name) == {"obj": obj, "band": band, "sn": sn}


def test_unmatched_name_and_custom_pattern():
    assert parse_name("d20240606.0042.fits") is None
    pat = [r"^(?P<obj>[a-z0-9]+)\.(?P<sn>\d+)\.(?P<band>[A-Z])\.fits$"]
    assert parse_name("m31.0042.V.fits", pat) == {"obj": "m31", "band": "V", "sn": 42}
    assert len(DEFAULT_PATTERNS) == 3


def _night(d):
    t0 = "2024-06-06T14:00:00"
    write_frame(d / "bias-0001.fit", IMAGETYP="Bias Frame", EXPTIME=0.0)
    write_frame(d / "zero_002.fits", EXPTIME=0.0)                                   # kind from the name only
    write_frame(d / "flat_V_1_V_001.fit", level=20000.0, EXPTIME=3.0)
    write_frame(d / "skyflat-0001B.fit", level=20000.0)
    write_frame(d / "flat_V_002.fit", level=20000.0, IMAGETYP="Light Frame", FILTER="B")  # the name wins
    for i in range(3):
        write_frame(d / f"SS Cyg-{i + 1:04d}V.fit", DATE_OBS=f"2024-06-06T14:0{i}:00", EXPTIME=60.0,
                    RA="21:42:42.8", DEC="+43:35:09.9")
    # name matches no pattern: object and band from OBJECT/FILTER, kind from IMAGETYP
    write_frame(d / "d1234.fits", IMAGETYP="Light Frame", OBJECT="SS Cyg", FILTER="V", DATE_OBS="2024-06-06",
                TIME_OBS="14:03:00", EXPTIME=60.0, AIRMASS=1.25, RA="21:42:42.8", DEC="+43:35:09.9")
    return t0


def test_scan_recognises_kinds_objects_bands(tmp_path):
    _night(tmp_path)
    t = scan_frames(tmp_path).set_index("name")
    assert t.loc["bias-0001.fit", "kind"] == "bias" and t.loc["zero_002.fits", "kind"] == "bias"
    assert t.loc["flat_V_1_V_001.fit", ["kind", "band"]].tolist() == ["flat", "V"]
    assert t.loc["skyflat-0001B.fit", ["kind", "band"]].tolist() == ["flat", "B"]
    assert t.loc["flat_V_002.fit", ["kind", "band"]].tolist() == ["flat", "V"]
    assert t.loc["d1234.fits", ["kind", "obj", "band"]].tolist() == ["science", "SS Cyg", "V"]
    assert t.loc["bias-0001.fit", "band"] == NO_BAND
    assert (t["problem"] == "").all()
    # mid-exposure time: DATE-OBS (start) + EXPTIME / 2; DATE-OBS + TIME-OBS combined
    assert t.loc["SS Cyg-0002V.fit", "mjd"] == pytest.approx(Time("2024-06-06T14:01:30").mjd, abs=1e-9)
    assert t.loc["d1234.fits", "mjd"] == pytest.approx(Time("2024-06-06T14:03:30").mjd, abs=1e-9)


def test_band_of_the_name_wins_over_filter_with_a_warning(tmp_path, caplog):
    """A file name saying R with FILTER = 'V' goes into band R, as documented, but no longer silently: one
    warning per file names it, both bands and the one used. A FILTER agreeing with the name (also in
    another case) or absent warns nothing."""
    for i, flt in enumerate(["V", "V", "R", "r", None]):
        write_frame(tmp_path / f"SS Cyg-{i + 1:04d}R.fit", DATE_OBS=f"2024-06-06T14:0{i}:00", EXPTIME=60.0,
                    **({"FILTER": flt} if flt else {}))
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        t = scan_frames(tmp_path).set_index("name")
    assert (t["band"] == "R").all() and (t["problem"] == "").all()
    warned = [r.getMessage() for r in caplog.records if "FILTER" in r.getMessage()]
    assert len(warned) == 2
    for name, msg in zip(["SS Cyg-0001R.fit", "SS Cyg-0002R.fit"], sorted(warned)):
        assert str(tmp_path / name) in msg
        assert "band 'R'" in msg and "'V'" in msg and "band 'R' (the name's) is used" in msg


def test_malformed_frames_are_left_out_with_a_reason(tmp_path, caplog):
    _night(tmp_path)
    (tmp_path / "junk-0009V.fit").write_bytes(b"this is not FITS at all" * 10)
    good = write_frame(tmp_path / "cut-0001V.fit", shape=(64, 64), DATE_OBS="2024-06-06T14:00:00", EXPTIME=1.0)
    (tmp_path / "trunc-0001V.fit").write_bytes(good.read_bytes()[:4000])
    write_frame(tmp_path / "SS Cyg-0010V.fit", EXPTIME=60.0)                            # no DATE-OBS
    write_frame(tmp_path / "SS Cyg-0011V.fit", DATE_OBS="last tuesday", EXPTIME=60.0)
    write_frame(tmp_path / "SS Cyg-0012V.fit", DATE_OBS="2024-06-06T14:30:00")         # no EXPTIME
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        t = scan_frames(tmp_path).set_index("name")
    problems = t["problem"]
    assert "not a FITS file" in problems["junk-0009V.fit"]
    assert "truncated" in problems["trunc-0001V.fit"] or "corrupt" in problems["trunc-0001V.fit"]
    assert "DATE-OBS" in problems["SS Cyg-0010V.fit"]
    assert "not an ISO date" in problems["SS Cyg-0011V.fit"]
    assert "EXPTIME" in problems["SS Cyg-0012V.fit"]
    assert "junk-0009V.fit" in caplog.text and "skipping frame" in caplog.text
    assert (problems[[n for n in t.index if n.startswith("SS Cyg-000")]] == "").all()


def test_table_only_file_and_other_shape(tmp_path, caplog):
    from astropy.io import fits

    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("A", "E", array=[1.0])])]
                 ).writeto(tmp_path / "table-0001V.fits")
    for i in range(3):
        write_frame(tmp_path / f"x-{i + 1:04d}V.fit", DATE_OBS="2024-06-06T14:00:00", EXPTIME=1.0)
    write_frame(tmp_path / "x-0004V.fit", shape=(16, 16), DATE_OBS="2024-06-06T14:00:00", EXPTIME=1.0)
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        t = scan_frames(tmp_path)
    assert "no 2-D image" in t.set_index("name").loc["table-0001V.fits", "problem"]
    # the scan leaves out the frame of another size (one warning), so every user of the table agrees
    assert t.set_index("name").loc["x-0004V.fit", "problem"] == (
        "shape 16x16 differs from that of the other 3 science x V frames (32x32)")
    assert caplog.text.count("x-0004V.fit") == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        rows = group_rows(t, "science", "x", "V")
    assert len(rows) == 3 and "x-0004V.fit" not in set(rows["name"]) and caplog.text == ""


def test_other_shape_with_an_unreadable_file_lists_like_run(tmp_path, capsys):
    """A frame of another size is left out by the scan itself: ``xcube frames list``, ``lst/frames.csv`` and
    the run agree, and shapes stay integers when an unreadable file leaves its columns empty."""
    import pandas as pd

    import xcube.frames as xf
    from xcube.cli import main
    from xcube.frames import simulate

    raw = tmp_path / "raw"
    simulate.night(raw, n_frames=8, shape=(64, 72), n_stars=6, max_dither=3.0, n_bias=2, n_flat=2)
    write_frame(raw / "V1234Cyg-0005R.fit", shape=(50, 60), DATE_OBS="2024-06-06T14:06:00", EXPTIME=60.0)
    data = (raw / "V1234Cyg-0003R.fit").read_bytes()
    (raw / "V1234Cyg-0003R.fit").write_bytes(data[:len(data) // 2])
    assert main(["frames", "list", str(raw)]) == 0
    out = capsys.readouterr().out
    assert "science  V1234Cyg             R          6 frames  64x72" in out
    assert "left out: V1234Cyg-0005R.fit: shape 50x60 differs from that of the other 6 science V1234Cyg R " \
           "frames (64x72)" in out
    assert "left out: V1234Cyg-0003R.fit:" in out and ".0x" not in out
    xf.run(raw, tmp_path / "red", steps="l")
    csv = (tmp_path / "red" / "lst" / "frames.csv").read_text()
    assert ",50,60," in csv and ",64,72," in csv and ".0,64" not in csv
    listed = pd.read_csv(tmp_path / "red" / "lst" / "frames.csv").set_index("name")
    listed["problem"] = listed["problem"].fillna("")
    assert listed.loc["V1234Cyg-0005R.fit", "problem"].startswith("shape 50x60 differs")
    lst = (tmp_path / "red" / "lst" / "V1234Cyg_R.lst").read_text().split()
    assert len(lst) == 6 and not any(p.endswith(("0005R.fit", "0003R.fit")) for p in lst)
    assert (listed["problem"] == "").sum() == 2 + 2 + 6  # bias, flats, science: what the run stacks


def test_open_frames_tree_is_lazy_with_coordinates(tmp_path):
    _night(tmp_path)
    tree = open_frames(tmp_path, chunks={"frame": 2})
    assert isinstance(tree, xr.DataTree)
    assert {"bias", "flat", "SS Cyg"} <= set(tree.children)
    assert set(tree["flat"].children) == {"V", "B"}
    node = tree["SS Cyg/V"]
    img = node["image"]
    assert img.dims == ("frame", "y", "x") and isinstance(img.data, da.Array)
    assert img.data.chunks[0] == (2, 2)
    assert list(img["exposure"].values) == [60.0] * 4
    # AIRMASS keyword kept; the others computed from RA/DEC at the default site (finite, >= 1)
    am = img["airmass"].values
    assert am[-1] == 1.25 and np.all(np.isfinite(am)) and np.all(am >= 1.0)
    # a chunk reads only its own files: remove a file of the second chunk, the first still computes
    (tmp_path / "d1234.fits").unlink()
    assert float(img.isel(frame=slice(0, 2)).mean()) == pytest.approx(1000.0)
    with pytest.raises(OSError, match="d1234.fits"):
        img.isel(frame=3).values


def test_fits_stack_reads_any_slice(tmp_path):
    from xcube.frames.files import FitsStack

    rng = np.random.default_rng(0)
    data = [rng.integers(0, 60000, (40, 30)).astype(np.uint16) for _ in range(3)]  # stored with BZERO
    paths = [write_frame(tmp_path / f"s-{i:04d}R.fit", data=d) for i, d in enumerate(data)]
    stack = FitsStack(paths, [0, 0, 0], (40, 30))
    cube = np.array(data, np.float32)
    for key in [(slice(0, 3), slice(0, 40, 4), slice(1, 30, 3)), (2, slice(5, 20), 7), (slice(1, 3), -1, [3, 5]),
                (slice(0, 2), slice(30, 2, -2), slice(None))]:
        np.testing.assert_array_equal(stack[key], cube[key])


def test_importing_the_command_is_light():
    import subprocess
    import sys

    code = ("import sys, xcube, xcube.frames.cli; "
            "heavy = [m for m in ('photutils', 'xcube.frames.pipeline', 'xcube.frames.files') if m in sys.modules]; "
            "print(heavy); import xcube.frames as xf; assert callable(xf.run) and callable(xcube.frames.open_frames)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_scan_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no FITS frames"):
        scan_frames(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        scan_frames(tmp_path / "nope")


def test_fpacked_primary_image_is_used(tmp_path):
    """fpack of a primary image writes ZSIMPLE, so the decompressed header starts with SIMPLE; the layout check
    looked at that header and called every such ``.fz`` frame damaged."""
    from astropy.io import fits

    data = (np.arange(40 * 50, dtype=np.uint16) % 4000 + 1000).reshape(40, 50)
    prim = fits.PrimaryHDU(data)
    for key, value in {"OBJECT": "X", "FILTER": "R", "EXPTIME": 10.0, "DATE-OBS": "2024-06-06T14:00:00"}.items():
        prim.header[key] = value
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header=prim.header)]).writeto(
        tmp_path / "X-0001R.fits.fz")
    with fits.open(tmp_path / "X-0001R.fits.fz", disable_image_compression=True) as raw:
        assert raw[1].header["ZSIMPLE"] is True
    t = scan_frames(tmp_path)
    assert t["problem"].tolist() == [""] and t["hdu"].tolist() == [1]
    img = open_frames(tmp_path)["X/R"]["image"]
    np.testing.assert_array_equal(img.values[0], data.astype(np.float32))
    # a damaged such file is still refused
    with open(tmp_path / "X-0001R.fits.fz", "ab") as fh:
        fh.write(b" " * 2880)
    assert scan_frames(tmp_path)["problem"][0] != ""


def test_scan_header_problems_and_time_scales(tmp_path):
    """A date-only DATE-OBS without a clock keyword, EXPTIME <= 0 and an unknown TIMESYS leave a science frame
    out; EGAIN (e-/ADU) wins over GAIN (a CMOS gain setting); DATE-OBS in TT/TAI/GPS is converted to UTC."""
    t0 = "2024-06-06T14:00:00"
    write_frame(tmp_path / "A-0001R.fit", DATE_OBS="2024-06-06", EXPTIME=10.0)                   # no clock
    write_frame(tmp_path / "A-0002R.fit", DATE_OBS="2024-06-06", TIME_OBS="14:00:00", EXPTIME=10.0)
    write_frame(tmp_path / "A-0003R.fit", DATE_OBS=t0, EXPTIME=0.0)
    write_frame(tmp_path / "A-0004R.fit", DATE_OBS=t0, EXPTIME=-5.0)
    write_frame(tmp_path / "A-0005R.fit", DATE_OBS=t0, EXPTIME=10.0, GAIN=120, EGAIN=0.25)
    write_frame(tmp_path / "A-0006R.fit", DATE_OBS=t0, EXPTIME=10.0, TIMESYS="TT")
    write_frame(tmp_path / "A-0007R.fit", DATE_OBS=t0, EXPTIME=10.0, TIMESYS="TAI", GAIN=1.5)
    write_frame(tmp_path / "A-0008R.fit", DATE_OBS=t0, EXPTIME=10.0, TIMESYS="GPS", GAIN=300)
    write_frame(tmp_path / "A-0009R.fit", DATE_OBS=t0, EXPTIME=10.0, TIMESYS="LOCAL")
    write_frame(tmp_path / "bias-0001.fit", DATE_OBS="2024-06-06", EXPTIME=0.0)                   # not science
    t = scan_frames(tmp_path).set_index("name")
    p = t["problem"]
    assert "no time of day" in p["A-0001R.fit"] and "TIME-OBS" in p["A-0001R.fit"]
    assert "EXPTIME = 0" in p["A-0003R.fit"] and "EXPTIME = -5" in p["A-0004R.fit"]
    assert "TIMESYS = 'LOCAL'" in p["A-0009R.fit"]
    assert (p[["A-0002R.fit", "A-0005R.fit", "A-0006R.fit", "A-0007R.fit", "A-0008R.fit", "bias-0001.fit"]]
            == "").all()
    assert t.loc["A-0005R.fit", "gain"] == 0.25 and t.loc["A-0007R.fit", "gain"] == 1.5
    assert np.isnan(t.loc["A-0008R.fit", "gain"])                          # 300 e-/ADU is a setting
    utc = Time(t0, scale="utc").mjd + 5 / 86400
    assert t.loc["A-0002R.fit", "mjd"] == pytest.approx(utc, abs=1e-9)
    assert (utc - t.loc["A-0006R.fit", "mjd"]) * 86400 == pytest.approx(69.184, abs=1e-3)
    assert (utc - t.loc["A-0007R.fit", "mjd"]) * 86400 == pytest.approx(37.0, abs=1e-3)
    assert (utc - t.loc["A-0008R.fit", "mjd"]) * 86400 == pytest.approx(18.0, abs=1e-3)


def test_cube_of_one_plane_is_an_image(tmp_path):
    """Frames stored as NAXIS = 3 with NAXIS3 = 1 are 2-D images (read with the plane squeezed); a real cube
    is still refused."""
    from astropy.io import fits

    data = np.arange(2 * 40 * 50, dtype=np.float32).reshape(2, 40, 50)
    for i in range(2):
        write_frame(tmp_path / f"X-{i + 1:04d}R.fit", data=data[i:i + 1], DATE_OBS="2024-06-06T14:00:00",
                    EXPTIME=10.0)
    write_frame(tmp_path / "Y-0001R.fit", data=data, DATE_OBS="2024-06-06T14:00:00", EXPTIME=10.0)
    assert fits.getheader(tmp_path / "X-0001R.fit")["NAXIS"] == 3
    t = scan_frames(tmp_path).set_index("name")
    assert (t.loc[["X-0001R.fit", "X-0002R.fit"], "problem"] == "").all()
    assert t.loc["X-0001R.fit", ["ny", "nx"]].tolist() == [40, 50]
    assert "no 2-D image" in t.loc["Y-0001R.fit", "problem"]
    img = open_frames(tmp_path, chunks={"frame": 1, "y": 16})["X/R"]["image"]
    np.testing.assert_array_equal(img.values, data)
    np.testing.assert_array_equal(img[:, 3:30:4, ::3].values, data[:, 3:30:4, ::3])
