"""A PI column's null value (TNULLn of an integer column) is no channel: those
events are dropped with a warning, as events with a null X or Y are, so no
energy of -32.768 keV and no ``PI < 500`` selection counts them. A float PI
column (eROSITA) keeps its NaN as NaN energy, and ``xcube info`` gives the
range of the finite channels."""
from __future__ import annotations

import gzip
import shutil
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

import xcube
from xcube.io.events_fits import null_values, read_fits_header

N, NULL = 100, -32768


def _file(path, pi_col, n=N):
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(1e8, 1e8 + 1000, n))
    cols = [fits.Column("TIME", "D", array=t),
            fits.Column("X", "J", array=rng.integers(20000, 30000, n)),
            fits.Column("Y", "J", array=rng.integers(20000, 30000, n)), pi_col,
            fits.Column("PATTERN", "B", array=np.zeros(n, np.uint8)),
            fits.Column("FLAG", "J", array=np.zeros(n, np.int32)),
            fits.Column("CCDNR", "B", array=np.ones(n, np.uint8))]
    ev = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    for k, v in dict(TELESCOP="XMM", INSTRUME="EMOS1", MJDREF=50814.0, TIMESYS="TT", TSTART=1e8,
                     TSTOP=1e8 + 1000).items():
        ev.header[k] = v
    gti = fits.BinTableHDU.from_columns([fits.Column("START", "D", array=[1e8]),
                                         fits.Column("STOP", "D", array=[1e8 + 1000])], name="STDGTI01")
    gti.header["CCDID"] = 1
    fits.HDUList([fits.PrimaryHDU(), ev, gti]).writeto(path)
    return path


def _pi(n=N, nulls=True):
    pi = np.random.default_rng(1).integers(200, 10000, n).astype(np.int16)
    if nulls:
        pi[::10] = NULL
    return pi


@pytest.mark.parametrize("gz", [False, True], ids=["memmap", "gzip"])
def test_null_pi_events_are_dropped_with_a_warning(tmp_path, gz):
    pi = _pi()
    path = _file(tmp_path / "pi_tnull.fits", fits.Column("PI", "I", null=NULL, array=pi))
    if gz:
        with open(path, "rb") as src, gzip.open(tmp_path / "pi_tnull.fits.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        path = tmp_path / "pi_tnull.fits.gz"
    with pytest.warns(UserWarning, match=r"dropped 10 of 100 events with PI = TNULL \(-32768\)"):
        ev = xcube.open_events(path, cache=tmp_path / "cache")
    good = pi != NULL
    assert ev.sizes["event"] == int(good.sum())
    assert ev["pi"].dtype == np.int16 and np.array_equal(ev["pi"].values, pi[good])
    assert float(ev["energy"].min()) >= 0.2
    assert xcube.select(ev, expr="PI < 500").sizes["event"] == int(((pi < 500) & good).sum())
    assert int(xcube.lightcurve(ev, 100.0, energy_band=(0.2, 12.0))["counts"].sum()) == int(good.sum())


def test_a_pi_column_without_tnull_gets_no_null_check(tmp_path):
    path = _file(tmp_path / "pi.fits", fits.Column("PI", "I", array=_pi(nulls=False)))
    assert "pi" not in null_values(read_fits_header(path))
    path = _file(tmp_path / "pi_null.fits", fits.Column("PI", "I", null=NULL, array=_pi(nulls=False)))
    assert null_values(read_fits_header(path))["pi"] == NULL


def test_float_pi_nan_is_nan_energy_and_info_gives_the_finite_range(tmp_path):
    pi = _pi(nulls=False).astype(np.float32)
    pi[3] = np.nan
    path = _file(tmp_path / "pi_float_nan.fits", fits.Column("PI", "E", array=pi))
    ev = xcube.open_events(path, cache=tmp_path / "cache")
    assert ev.sizes["event"] == N and int(np.isnan(ev["energy"].values).sum()) == 1
    out = subprocess.run([sys.executable, "-m", "xcube", "info", str(path)], capture_output=True, text=True,
                         env={"XCUBE_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"})
    lo, hi = int(np.nanmin(pi)), int(np.nanmax(pi))
    want = f"energy range: {lo / 1000:.3f} - {hi / 1000:.3f} keV (PI {lo} - {hi})"
    assert want in out.stdout, out.stdout + out.stderr
