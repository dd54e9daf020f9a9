"""The first hour, end to end: from a raw (unsorted, unscreened, gzipped) XMM
event file to a detection table, a light curve, a spectrum and an image,
with times a person can read, files that pass ``fitsverify``, and products
that load in Stingray, ``regions`` and an OGIP spectral reader.

No fitting package with an OGIP reader installs from PyPI here (Sherpa has
no wheel for this platform; XSPEC is not on PyPI), so the spectrum is checked
against what such a reader needs (OGIP/92-007 keywords and columns, and a
channel grid that matches a response matrix's EBOUNDS) with astropy, and read
back with its matrix through ``xcube.read_spectrum``.
"""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from astropy.io import fits
from conftest import real_file

import xcube
from xcube.cli import main
from xcube.io.write_events import write_events

RAW = ("xmm", "P0001730201M1S002MIEVLI.FTZ")  # pipeline MOS1 event list, gzip, not time-sorted, unscreened
SRC = "fk5;circle(263.6765,-32.5814,40\")"  # HD 159176, the target
BKG = "fk5;annulus(263.6765,-32.5814,80\",160\")"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$")


def _fitsverify_clean(path):
    if shutil.which("fitsverify") is None:
        return True  # the fitsverify tests (tests/io/test_io_fitsverify.py) say why they skip
    out = subprocess.run(["fitsverify", str(path)], capture_output=True, text=True).stdout
    return "0 warning(s) and 0 error(s)" in out


@pytest.fixture(scope="module")
def raw():
    return real_file(*RAW)


def test_detection_table_with_readable_times(raw, tmp_path):
    """``xcube search`` on the raw file with a flare injected at 2001-03-09T14:14 UTC (5000 s after the start)."""
    import pandas as pd
    from regions import Regions

    from xcube import simulate

    ev = xcube.open_events(raw)
    t_peak = float(ev.gti_start.values[0]) + 5000.0
    flared, _ = simulate.inject_flare(ev, t_peak=t_peak, amplitude=1.0, width=60.0, ra=263.70, dec=-32.53, seed=5)
    path = write_events(tmp_path / "flared.evt.gz", flared, gzip=True)
    assert main(["search", str(path), "--time-bin", "50", "--energy", "0.2", "12", "--out", str(tmp_path / "s"),
                 "--no-figures", "-q"]) == 0
    run = tmp_path / "s" / "0001730201_0_50_0.2_12.0"
    det = pd.read_csv(run / "detections.csv")
    assert {"mjd_start", "mjd_peak", "mjd_stop", "utc_peak"} <= set(det.columns)
    best = det.loc[det["log10_bayes"].idxmax()]
    assert abs(best["t_peak"] - t_peak) <= 50.0
    assert ISO.match(best["utc_peak"]) and best["utc_peak"].startswith("2001-03-09T14:1")
    assert best["mjd_peak"] == pytest.approx(50814.0 + best["t_peak"] / 86400.0, abs=1e-9)
    reg = Regions.read(str(run / "detections.reg"), format="ds9")  # DS9 regions load in `regions`
    assert len(reg) == len(det.dropna(subset=["ra", "dec"]))


def test_light_curve_readable_verified_and_stingray(raw, tmp_path):
    from stingray import Lightcurve

    ev = xcube.open_events(raw)
    lc = xcube.lightcurve(ev, 100.0, energy_band=(0.3, 10.0), region=SRC, background=BKG, mjd=True,
                          expr=xcube.missions.profile_of(ev).screening).compute()
    assert str(lc["utc"].values[0]).startswith("2001-03-09T12:")
    start = xcube.times(lc["time_lo"][0], lc, to="iso")
    assert ISO.match(start)  # a 0-d coordinate gives a plain string
    write = tmp_path / "src.lc"
    xcube.write_lightcurve(write, lc, kind="net")
    assert _fitsverify_clean(write)
    with fits.open(write) as h:
        assert "MJD" in h["RATE"].columns.names and h["RATE"].header["TIMESYS"] == "TT"
    uncorrected = tmp_path / "src_raw.lc"
    xcube.write_lightcurve(uncorrected, lc, kind="total", fraccorr=False)
    slc = Lightcurve.read(str(uncorrected), fmt="hea")
    full = lc["fracexp"].values == 1
    np.testing.assert_allclose(np.asarray(slc.counts)[full], lc["counts"].values[full])


def test_spectrum_pairs_with_a_response_and_has_the_ogip_keywords(raw, tmp_path):
    ev = xcube.open_events(raw)
    spec = xcube.spectrum(ev, region=SRC, background=BKG, expr=xcube.missions.profile_of(ev).screening)
    rmf = _mos_ebounds(tmp_path / "mos.rmf")
    xcube.write_spectrum(tmp_path / "src.pha", spec, respfile=rmf.name)
    for name in ("src.pha", "src_bkg.pha"):
        assert _fitsverify_clean(tmp_path / name)
    with fits.open(tmp_path / "src.pha") as h:
        hdu = h["SPECTRUM"]
        hd = hdu.header
        for key, value in {"HDUCLASS": "OGIP", "HDUCLAS1": "SPECTRUM", "HDUCLAS2": "TOTAL", "HDUCLAS3": "COUNT",
                           "CHANTYPE": "PI", "POISSERR": True, "TELESCOP": "XMM", "INSTRUME": "EMOS1",
                           "BACKFILE": "src_bkg.pha", "RESPFILE": "mos.rmf", "ANCRFILE": "none",
                           "CORRFILE": "none"}.items():
            assert hd[key] == value, key
        for key in ("EXPOSURE", "BACKSCAL", "AREASCAL", "CORRSCAL", "DETCHANS", "TLMIN1", "TLMAX1", "HDUVERS"):
            assert key in hd, key
        assert [c.name for c in hdu.columns][:4] == ["CHANNEL", "COUNTS", "QUALITY", "GROUPING"]
        assert hdu.columns["COUNTS"].format == "J" and hd["DETCHANS"] == len(hdu.data) == 800
        channel = hdu.data["CHANNEL"]
    with fits.open(rmf) as r:
        np.testing.assert_array_equal(channel, r["EBOUNDS"].data["CHANNEL"])  # no regrouping needed
    back = xcube.read_spectrum(tmp_path / "src.pha")
    assert back["energy_lo"].values[100] == pytest.approx(1.5) and int(back["counts"].sum()) > 100
    assert int(back["bkg_counts"].sum()) > 0 and back.attrs["bkg_backscal"] > back.attrs["backscal"]


def test_image_for_ds9_and_events_for_stingray(raw, tmp_path):
    from astropy.wcs import WCS
    from stingray import EventList

    ev = xcube.open_events(raw)
    img = xcube.image(ev, size_arcsec=4.0, energy_band=(0.5, 2.0))
    xcube.write_image(tmp_path / "img.fits", img)
    assert _fitsverify_clean(tmp_path / "img.fits")
    h = fits.getheader(tmp_path / "img.fits")
    assert h["RADESYS"] == "FK5" and "LTV1" in h and WCS(h).has_celestial
    clean = xcube.select(ev, expr=xcube.missions.profile_of(ev).screening)
    write_events(tmp_path / "clean.fits", clean)
    assert _fitsverify_clean(tmp_path / "clean.fits")
    sev = EventList.read(str(tmp_path / "clean.fits"), fmt="hea")
    assert len(sev.time) == clean.sizes["event"] and sev.mjdref == pytest.approx(50814.0)


def _mos_ebounds(path):
    """A response file's EBOUNDS on the MOS standard grid (800 channels of 15 eV), as SAS rmfgen makes it."""
    chan = np.arange(800)
    cols = [fits.Column(name="CHANNEL", format="J", array=chan),
            fits.Column(name="E_MIN", format="E", unit="keV", array=chan * 0.015),
            fits.Column(name="E_MAX", format="E", unit="keV", array=(chan + 1) * 0.015)]
    eb = fits.BinTableHDU.from_columns(cols, name="EBOUNDS")
    eb.header.update({"HDUCLASS": "OGIP", "HDUCLAS1": "RESPONSE", "HDUCLAS2": "EBOUNDS", "DETCHANS": 800,
                      "CHANTYPE": "PI", "TELESCOP": "XMM", "INSTRUME": "EMOS1"})
    fits.HDUList([fits.PrimaryHDU(), eb]).writeto(path)
    return path
