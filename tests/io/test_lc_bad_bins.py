"""``read_lightcurve`` refuses bins it cannot define, naming the file (sweep
p26): a TIMEDEL of 0 gave a ZeroDivisionError traceback in ``xcube pds``, a
negative one a negative exposure in ``xcube info`` (exit 0), and a TIME
column running backwards a negative time span."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from xcube.cli import main
from xcube.io.lightcurve_file import read_lightcurve


def _lc(path, time, timedel=10.0, timedel_column=None):
    cols = [fits.Column(name="TIME", format="D", unit="s", array=time),
            fits.Column(name="RATE", format="E", unit="count/s", array=np.ones(time.size)),
            fits.Column(name="ERROR", format="E", unit="count/s", array=np.ones(time.size))]
    if timedel_column is not None:
        cols.append(fits.Column(name="TIMEDEL", format="D", unit="s", array=timedel_column))
    hdu = fits.BinTableHDU.from_columns(cols, name="RATE")
    hdu.header.update(MJDREF=50814.0, TIMESYS="TT", TELESCOP="XMM", INSTRUME="EPN")
    if timedel is not None:
        hdu.header["TIMEDEL"] = timedel
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


@pytest.mark.parametrize("timedel", [0.0, -100.0])
def test_a_bin_width_that_is_not_positive_is_refused(tmp_path, timedel, capsys):
    path = _lc(tmp_path / "bad.lc", 1.0e8 + 10.0 * np.arange(5), timedel=timedel)
    with pytest.raises(ValueError, match=r"bad\.lc\[RATE\]: a bin width of .* \(from the TIMEDEL keyword, row 1\) "
                                         r"is not a positive number"):
        read_lightcurve(path)
    for argv in (["info", str(path)], ["pds", str(path), "--segment", "20", "--out", str(tmp_path / "p.pds")]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "bad.lc" in err and "not a positive number" in err and "Traceback" not in err


def test_a_bad_row_of_a_timedel_column_is_named(tmp_path):
    widths = np.array([10.0, 10.0, 0.0, 10.0])
    path = _lc(tmp_path / "col.lc", 1.0e8 + 10.0 * np.arange(4), timedel=None, timedel_column=widths)
    with pytest.raises(ValueError, match=r"from the TIMEDEL column, row 3"):
        read_lightcurve(path)


def test_time_running_backwards_is_refused(tmp_path):
    path = _lc(tmp_path / "back.lc", (1.0e8 + 10.0 * np.arange(5))[::-1])
    with pytest.raises(ValueError, match=r"back\.lc\[RATE\]: TIME decreases at row 2"):
        read_lightcurve(path)


def test_back_to_back_bins_without_a_gti_table_make_one_interval(tmp_path):
    """Sweep p27: the GTIs of a light curve without a GTI table (XRONOS
    lcurve output) were one interval per rounding gap of ~1e-8 s between
    bins: 4000 bins of 0.1 s at 1e8 s gave 1601 GTIs, and no 100 s segment
    for a power spectrum."""
    import xcube

    n, dt, t0 = 4000, 0.1, 1.0e8
    path = _lc(tmp_path / "nogti.lc", t0 + dt * np.arange(n) + dt / 2, timedel=dt)
    lc = read_lightcurve(path)
    assert lc.sizes["gti"] == 1 and abs(float(lc["gti_stop"][0] - lc["gti_start"][0]) - n * dt) < 1e-6
    assert xcube.power_spectrum(lc, segment=100.0).attrs["n_segments"] == 4
    gap = np.concatenate([t0 + dt * np.arange(10), t0 + 5.0 + dt * np.arange(10)]) + dt / 2  # a real gap stays
    assert read_lightcurve(_lc(tmp_path / "gap.lc", gap, timedel=dt)).sizes["gti"] == 2
