"""Spectrum EXPOSURE is the dead-time-corrected live time (OGIP/92-007): the
event file's DEADC, LIVETIME/ONTIME, or for XMM EPIC the LIVETInn/ONTIMEnn
of the CCD holding the spectrum's events; light curves record DEADC without
applying it."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits
from conftest import real_file

import xcube
from xcube.io.ogip import read_spectrum, write_lightcurve, write_spectrum
from xcube.io.write_events import write_events_fits

NUSTAR = ("nustar", "barycenter_dummy_evt_nustar_B1937.evt")
MOS1_CLEAN = ("xmm", "xga_0201901401_mos1_exp1_clean_evts.fits")
T0 = 1.0e8


def _nustar_like(tmp_path, name="nu.evt", n=3000, gzip=False, **keys):
    rng = np.random.default_rng(11)
    cols = {"TIME": np.sort(rng.uniform(T0, T0 + 1.0e4, n)), "PI": rng.integers(0, 4096, n).astype(np.int16)}
    hdr = {"TELESCOP": "NuSTAR", "INSTRUME": "FPMA", "MJDREFI": 55197, "MJDREFF": 7.6601852e-4, "TIMESYS": "TT",
           "TSTART": T0, "TSTOP": T0 + 1.0e4, **keys}
    return write_events_fits(tmp_path / name, cols, header=hdr, gti=([T0, T0 + 6000.0], [T0 + 4000.0, T0 + 1.0e4]),
                             gzip=gzip)


# --------------------------------------------------------------------------- file-wide DEADC, LIVETIME/ONTIME


def test_exposure_is_the_gti_total_times_deadc(tmp_path):
    path = _nustar_like(tmp_path, DEADC=0.9, LIVETIME=7000.0, ONTIME=8000.0)  # DEADC first
    ev = xcube.open_events(path)
    sp = xcube.spectrum(ev)
    assert sp.attrs["ontime"] == pytest.approx(8000.0) and sp.attrs["deadc"] == 0.9
    assert sp.attrs["exposure"] == pytest.approx(7200.0) and sp.attrs["deadc_from"] == "DEADC"
    out = write_spectrum(tmp_path / "nu.pha", sp)
    h = fits.getheader(out, "SPECTRUM")
    assert h["EXPOSURE"] == pytest.approx(7200.0) and h["LIVETIME"] == pytest.approx(7200.0)
    assert h["ONTIME"] == pytest.approx(8000.0) and h["DEADC"] == 0.9 and h["DEADAPP"] is True
    # a GTI selection scales the same way: the live fraction of the selected good time
    part = xcube.spectrum(xcube.select(ev, gti=([T0 + 1000.0], [T0 + 3000.0])))
    assert part.attrs["exposure"] == pytest.approx(1800.0) and part.attrs["ontime"] == pytest.approx(2000.0)
    back = read_spectrum(out)  # a rewrite keeps the correction and says so
    assert back.attrs["deadc"] == 0.9 and back.attrs["ontime"] == pytest.approx(8000.0)
    again = fits.getheader(write_spectrum(tmp_path / "again.pha", back), "SPECTRUM")
    assert again["DEADC"] == 0.9 and again["EXPOSURE"] == pytest.approx(7200.0)


def test_livetime_over_ontime_without_deadc_and_gzip_files(tmp_path):
    path = _nustar_like(tmp_path, name="nu.evt.gz", gzip=True, LIVETIME=6000.0, ONTIME=8000.0)
    sp = xcube.spectrum(xcube.open_events(path))
    assert sp.attrs["deadc"] == pytest.approx(0.75) and sp.attrs["deadc_from"] == "LIVETIME/ONTIME"
    assert sp.attrs["exposure"] == pytest.approx(6000.0)


def test_without_dead_time_keywords_exposure_stays_the_good_time(tmp_path):
    sp = xcube.spectrum(xcube.open_events(_nustar_like(tmp_path)))
    assert sp.attrs["exposure"] == pytest.approx(8000.0) and "deadc" not in sp.attrs
    h = fits.getheader(write_spectrum(tmp_path / "nu.pha", sp), "SPECTRUM")
    assert h["EXPOSURE"] == pytest.approx(8000.0) and "DEADC" not in h and "no dead-time" in h.comments["EXPOSURE"]


def test_an_impossible_dead_time_fraction_is_not_used(tmp_path):
    ev = xcube.open_events(_nustar_like(tmp_path, DEADC=1.7, LIVETIME=6000.0, ONTIME=8000.0))
    with pytest.warns(UserWarning, match=r"nu\.evt: dead-time fraction DEADC = 1\.7 is not in \(0, 1\]"):
        sp = xcube.spectrum(ev)
    assert sp.attrs["deadc_from"] == "LIVETIME/ONTIME" and sp.attrs["exposure"] == pytest.approx(6000.0)


# --------------------------------------------------------------------------- XMM EPIC: the CCD's live time


@pytest.fixture
def two_ccds(make_event_file):
    """Source events at (26000, 26000), most on CCD 2 (a few on CCD 1); background events on CCD 3, uniform
    over X, Y 24000-28000 but for 600 pixels around the source. CCD 2 is good for 8 ks, CCD 3 for 9 ks,
    CCD 1 for 10 ks."""
    rng = np.random.default_rng(2)
    n_src, n_one, n_bkg = 600, 100, 1500
    bx, by = rng.uniform(24000, 28000, (2, 3 * n_bkg))
    keep = np.flatnonzero(np.hypot(bx - 26000, by - 26000) > 600)[:n_bkg]
    x = np.r_[26000 + rng.normal(0, 30, n_src + n_one), bx[keep]]
    y = np.r_[26000 + rng.normal(0, 30, n_src + n_one), by[keep]]
    ccd = np.r_[np.full(n_src, 2), np.full(n_one, 1), np.full(n_bkg, 3)].astype(np.uint8)
    n = ccd.size
    keys = {"ONTIME01": 10000.0, "LIVETI01": 9500.0, "ONTIME02": 8000.0, "LIVETI02": 7600.0,
            "ONTIME03": 9000.0, "LIVETI03": 8100.0, "ONTIME": 10000.0, "LIVETIME": 9500.0}
    gtis = {"STDGTI01": ([T0], [T0 + 1.0e4]), "STDGTI02": ([T0], [T0 + 8000.0]),
            "STDGTI03": ([T0 + 1000.0], [T0 + 1.0e4])}
    return make_event_file(n=n, seed=4, header=keys, gti_extensions=gtis, columns={
        "X": np.round(x).astype(np.int32), "Y": np.round(y).astype(np.int32), "CCDNR": ccd,
        "PATTERN": np.zeros(n, np.uint8), "TIME": np.sort(rng.uniform(T0, T0 + 8000.0, n))})


def test_xmm_exposure_is_the_live_time_of_the_ccd_with_most_events(two_ccds, tmp_path):
    ev = xcube.open_events(two_ccds)
    assert ev.attrs["exposure"] == pytest.approx(1.0e4)  # the union over CCDs
    src, bkg = "physical;circle(26000,26000,200)", "physical;box(27300,27300,1000,1000,0)"
    sp = xcube.spectrum(ev, region=src, background=bkg)
    assert sp.attrs["ontime"] == pytest.approx(8000.0)  # CCD 2's good time
    assert sp.attrs["exposure"] == pytest.approx(8000.0 * 7600.0 / 8000.0)
    assert sp.attrs["deadc_from"] == "LIVETI02/ONTIME02 (CCD 2)"
    assert sp.attrs["bkg_ontime"] == pytest.approx(9000.0)  # the background is on CCD 3
    assert sp.attrs["bkg_exposure"] == pytest.approx(9000.0 * 0.9) and sp.attrs["bkg_deadc"] == pytest.approx(0.9)
    out = write_spectrum(tmp_path / "src.pha", sp)
    h, hb = fits.getheader(out, "SPECTRUM"), fits.getheader(tmp_path / "src_bkg.pha", "SPECTRUM")
    assert h["EXPOSURE"] == pytest.approx(7600.0) and h["DEADC"] == pytest.approx(0.95)
    assert "LIVETI02/ONTIME02" in h.comments["DEADC"]
    assert hb["EXPOSURE"] == pytest.approx(8100.0) and hb["ONTIME"] == pytest.approx(9000.0)


def test_xmm_without_events_in_the_region_takes_the_central_ccds_fraction(two_ccds):
    ev = xcube.open_events(two_ccds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty selection
        sp = xcube.spectrum(ev, region="physical;circle(26400,26000,50)")  # in the hole, 13 sigma out
    assert sp.attrs["deadc_from"] == "LIVETIME/ONTIME" and sp.attrs["exposure"] == pytest.approx(1.0e4 * 0.95)


# --------------------------------------------------------------------------- light curves


def test_light_curve_records_deadc_without_applying_it(tmp_path, two_ccds):
    ev = xcube.open_events(_nustar_like(tmp_path, DEADC=0.9))
    lc = xcube.lightcurve(ev, 500.0).compute()
    out = write_lightcurve(tmp_path / "nu.lc", lc)
    h = fits.getheader(out, "RATE")
    assert h["DEADC"] == 0.9 and h["DEADAPP"] is False
    np.testing.assert_allclose(fits.getdata(out, "RATE")["RATE"], lc["rate"].values)  # rates unchanged
    xmm = xcube.lightcurve(xcube.open_events(two_ccds), 500.0)  # per-CCD live times: no one DEADC
    assert "DEADC" not in fits.getheader(write_lightcurve(tmp_path / "m.lc", xmm), "RATE")


# --------------------------------------------------------------------------- real files


def test_real_nustar_spectrum_exposure_is_its_livetime(tmp_path):
    path = real_file(*NUSTAR)
    ev = xcube.open_events(path)
    sp = xcube.spectrum(ev)
    livetime = fits.getval(path, "LIVETIME", 1)
    assert sp.attrs["exposure"] == pytest.approx(livetime, rel=1e-9)  # 38221.4 s, not the 41072.6 s of GTIs
    h = fits.getheader(write_spectrum(tmp_path / "nu.pha", sp), "SPECTRUM")
    assert h["EXPOSURE"] == pytest.approx(38221.43, abs=0.01) and h["DEADC"] == pytest.approx(0.9305828)
    i = int(np.argmax(ev["gti_stop"].values - ev["gti_start"].values))
    t0, t1 = float(ev["gti_start"].values[i]), float(ev["gti_stop"].values[i])
    part = xcube.spectrum(xcube.select(ev, gti=([t0], [t1])))
    assert part.attrs["exposure"] == pytest.approx((t1 - t0) * fits.getval(path, "DEADC", 1), rel=1e-9)


def test_real_mos_source_on_ccd_1_gets_liveti01(tmp_path):
    path = real_file(*MOS1_CLEAN)
    ev = xcube.open_events(path)
    sp = xcube.spectrum(ev, region="physical;circle(25921,25921,2000)",
                        background="physical;annulus(25921,25921,3000,5000)")
    assert sp.attrs["deadc_from"] == "LIVETI01/ONTIME01 (CCD 1)"
    assert sp.attrs["exposure"] == pytest.approx(fits.getval(path, "LIVETI01", 1), rel=1e-9)  # 5006.57 s
    assert sp.attrs["ontime"] == pytest.approx(fits.getval(path, "ONTIME01", 1), rel=1e-9)
    h = fits.getheader(write_spectrum(tmp_path / "m1.pha", sp), "SPECTRUM")
    assert h["EXPOSURE"] == pytest.approx(5006.566, abs=1e-3)
