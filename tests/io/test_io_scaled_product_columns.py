"""Product files (light curves, their GTIs) whose 64-bit integer columns
carry a TZEROn (legal FITS, which astropy's column conversion cannot read):
read as raw integer x TSCALn + TZEROn, checked against that computation."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

import xcube
from xcube.io.fitsutil import TableColumns

T0 = 1.0e8


def _table(columns: dict, scaling: dict, name="RATE") -> fits.BinTableHDU:
    """A table of the raw ``columns`` whose TSCALn/TZEROn (``scaling``: name -> (scale, zero)) are
    set after the columns, so the stored integers stay raw."""
    codes = {np.dtype(np.int64): "K", np.dtype(np.int32): "J", np.dtype(np.float32): "E", np.dtype(np.float64): "D"}
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(k, codes[np.asarray(v).dtype], array=v) for k, v in columns.items()], name=name)
    for i, k in enumerate(columns, start=1):
        if k in scaling:
            hdu.header[f"TSCAL{i}"], hdu.header[f"TZERO{i}"] = scaling[k]
    return hdu


@pytest.mark.parametrize("scale, zero, dtype", [(1.0e-3, T0, np.float64), (1.0, 5.0, np.int64),
                                                (1.0, 0.5, np.float64), (2.0, 0.0, np.float64)])
def test_table_columns_decode_64_bit_columns_with_tzero(tmp_path, scale, zero, dtype):
    raw = np.array([0, 7, 10**12, -3], np.int64)
    _table({"V": raw, "W": raw.astype(np.int32)}, {"V": (scale, zero), "W": (scale, zero)}).writeto(tmp_path / "t.fits")
    with fits.open(tmp_path / "t.fits") as h:
        cols = TableColumns(h[1])
        v = cols["v"]  # any case
        assert v.dtype == dtype
        if dtype == np.int64:
            np.testing.assert_array_equal(v, raw + int(zero))  # exact, also beyond 2**53
        else:
            np.testing.assert_array_equal(v, raw.astype(np.float64) * scale + zero)
        np.testing.assert_array_equal(cols["W"], raw.astype(np.int32) * scale + zero)  # astropy's own reading
        assert "w" in cols and "X" not in cols


def _scaled_light_curve(path, n=100, timedel=10.0):
    raw = (np.arange(n) * timedel * 1000).astype(np.int64)  # ms from T0
    rate = np.linspace(1.0, 2.0, n).astype(np.float32)
    hdu = _table({"TIME": raw, "RATE": rate, "ERROR": np.full(n, 0.1, np.float32)}, {"TIME": (1.0e-3, T0)})
    hdu.header.update({"TIMEDEL": timedel, "MJDREF": 50814.0, "TIMESYS": "TT", "TIMEPIXR": 0.0, "TSTART": T0,
                       "TSTOP": T0 + n * timedel, "TELESCOP": "XMM", "INSTRUME": "EPN", "HDUCLAS1": "LIGHTCURVE",
                       "HDUCLAS2": "TOTAL"})
    gti = _table({"START": np.array([0, 500_000], np.int64), "STOP": np.array([400_000, n * timedel * 1000], np.int64)},
                 {"START": (1.0e-3, T0), "STOP": (1.0e-3, T0)}, name="GTI")
    fits.HDUList([fits.PrimaryHDU(), hdu, gti]).writeto(path)
    return raw.astype(np.float64) * 1.0e-3 + T0, rate


def test_light_curve_with_scaled_64_bit_time_and_gti(tmp_path):
    path = tmp_path / "scaled.lc"
    t, rate = _scaled_light_curve(path)
    lc = xcube.read_lightcurve(path)
    np.testing.assert_allclose(lc["time_lo"].values, t)  # TIMEPIXR 0: TIME is the bin start
    np.testing.assert_allclose(lc["rate"].values[:5], rate[:5], rtol=1e-6)
    np.testing.assert_array_equal(lc["gti_start"].values, [T0, T0 + 500.0])
    np.testing.assert_array_equal(lc["gti_stop"].values, [T0 + 400.0, T0 + 1000.0])
    out = subprocess.run([sys.executable, "-m", "xcube", "info", str(path)], capture_output=True, text=True)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
