"""Header diagnostics of the frame scan (sweep p15/s3 #4): a non-numeric EXPTIME, the old 'dd/mm/yy'
DATE-OBS, MJD-OBS without DATE-OBS, an image cube of several planes (xcube.frames.scan_frames)."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from frames_helpers import write_frame

from xcube.frames import scan_frames

BASE = {"IMAGETYP": "Light Frame", "OBJECT": "TGT", "FILTER": "R", "EXPTIME": 60.0}


def _row(tmp_path, data=None, **header):
    write_frame(tmp_path / "TGT_R_001.fits", data, **(BASE | header))
    return scan_frames(tmp_path).iloc[0]


def test_exptime_not_a_number(tmp_path):
    row = _row(tmp_path, DATE_OBS="2024-03-10T13:00:00", EXPTIME="sixty")
    assert "EXPTIME = 'sixty' is not a number" in row["problem"] and "no EXPTIME keyword" not in row["problem"]


@pytest.mark.filterwarnings("ignore::erfa.ErfaWarning")
def test_old_fits_date_form(tmp_path):
    row = _row(tmp_path, DATE_OBS="10/03/94", UT="13:00:00")  # FITS: dd/mm/yy means 19yy
    assert row["problem"] == ""
    assert row["mjd"] == pytest.approx(Time("1994-03-10T13:00:30", scale="utc").mjd, abs=1e-8)


def test_bad_date_and_clock_quoted_as_written(tmp_path):
    row = _row(tmp_path, DATE_OBS="2024-03-10", UT="25:99:00")
    assert "DATE-OBS = '2024-03-10' with UT = '25:99:00'" in row["problem"]


def test_mjd_obs_without_date_obs(tmp_path):
    mjd = Time("2024-03-10T13:00:00", scale="utc").mjd
    row = _row(tmp_path, **{"MJD-OBS": mjd})
    assert row["problem"] == ""
    assert row["mjd"] == pytest.approx(mjd + 30 / 86400, abs=1e-8)


def test_image_cube_of_two_planes(tmp_path):
    path = tmp_path / "TGT_R_001.fits"
    hdu = fits.PrimaryHDU(np.zeros((2, 16, 16), np.float32))
    for k, v in (BASE | {"DATE-OBS": "2024-03-10T13:00:00"}).items():
        hdu.header[k] = v
    hdu.writeto(path)
    row = scan_frames(tmp_path).iloc[0]
    assert "3-D image cube of 2 planes" in row["problem"] and "table or a spectrum" not in row["problem"]


@pytest.mark.parametrize("sep", ["T", " "])
def test_tt_date_with_a_space_is_converted_to_utc(tmp_path, sep):
    """DATE-OBS 'YYYY-MM-DD hh:mm:ss' in TT was read as UTC (69 s late in 2024), silently."""
    row = _row(tmp_path, DATE_OBS=f"2024-06-06{sep}14:00:00", TIMESYS="TT", EXPTIME=60.0)
    assert row["problem"] == ""
    start = Time("2024-06-06T14:00:00", scale="tt").utc.mjd
    assert row["mjd"] == pytest.approx(start + 30 / 86400, abs=1e-9)
