"""The reader on real archive files (../shared/data/real; skipped when absent):
XMM-Newton MOS pipeline (FTZ, unsorted) and cleaned files, and NuSTAR, each
checked against a direct astropy read."""
import functools
import warnings

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from conftest import real_file

import xcube
from xcube import gti as gtimod

XMM_FILES = [
    "P0001730201M1S002MIEVLI.FTZ",
    "P0001730201M2S003MIEVLI.FTZ",
    "exod_0001730201_M1_clean.fits",
    "xga_0201901401_mos1_exp1_clean_evts.fits",
    "xga_0201901401_mos2_exp1_clean_evts.fits",
]
NUSTAR = ("nustar", "barycenter_dummy_evt_nustar_B1937.evt")


@functools.lru_cache(maxsize=None)
def _astropy_events(path):
    with fits.open(path) as hdul:
        ev = hdul["EVENTS"]
        data = {n: np.asarray(ev.data[n]) for n in ("TIME", "PI", "X", "Y")}
        hdr = ev.header
        gtis = []
        for h in hdul[1:]:
            if "GTI" in h.name:
                gtis.append((h.name, h.header.get("CCDID"), float(h.header.get("TIMEZERO", 0.0)),
                             np.asarray(h.data["START"], float), np.asarray(h.data["STOP"], float)))
        return data, hdr.copy(), gtis


@pytest.fixture(scope="module", params=XMM_FILES)
def xmm(request, tmp_path_factory):
    path = real_file("xmm", request.param)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # real XMM files open without any warning
        ev = xcube.open_events(path, cache=tmp_path_factory.getbasetemp() / "xcube-cache")
    return path, ev


def test_xmm_counts_times_energies(xmm):
    path, ev = xmm
    data, hdr, _ = _astropy_events(path)
    assert ev.sizes["event"] == len(data["TIME"]) == hdr["NAXIS2"]
    t = ev.time.values
    assert np.all(np.diff(t) >= 0)
    np.testing.assert_array_equal(t, np.sort(data["TIME"] + hdr.get("TIMEZERO", 0.0)))
    order = np.argsort(data["TIME"], kind="stable")  # the reader sorts stably
    np.testing.assert_array_equal(ev.pi.values, data["PI"][order])
    np.testing.assert_array_equal(ev.x.values, data["X"][order])
    np.testing.assert_allclose(ev.energy.values, data["PI"][order] / 1000.0, rtol=1e-6)
    assert ev.energy.dtype == np.float32
    assert ev.attrs["mission"] == "XMM-Newton" and ev.attrs["instrument"] == hdr["INSTRUME"]
    assert ev.attrs["obs_id"] == hdr["OBS_ID"] and ev.attrs["mjdref"] == 50814.0


def test_xmm_gtis_match_astropy_per_ccd(xmm):
    """Per CCD: the intersection of STDGTIcc and the flare GTI0cc0n (CCDID=cc)
    tables; ``gti`` (used for exposure) is the union of the CCD sets."""
    path, ev = xmm
    _, _, gtis = _astropy_events(path)
    per_ccd = {}
    for name, ccdid, tz, start, stop in gtis:
        ccd = ccdid if ccdid is not None else int(name[-2:])
        per_ccd.setdefault(ccd, []).append((start + tz, stop + tz))
    expect = {c: gtimod.intersection(*sets) for c, sets in per_ccd.items()}
    got_ccd = ev.ccd_gti_ccd.values
    assert sorted(set(got_ccd.tolist())) == sorted(expect) == list(range(1, 8))
    for c, (s, e) in expect.items():
        np.testing.assert_array_equal(ev.ccd_gti_start.values[got_ccd == c], s)
        np.testing.assert_array_equal(ev.ccd_gti_stop.values[got_ccd == c], e)
    union = gtimod.union(*expect.values())
    np.testing.assert_array_equal(ev.gti_start.values, union[0])
    np.testing.assert_array_equal(ev.gti_stop.values, union[1])
    assert ev.attrs["exposure"] == pytest.approx(gtimod.exposure(union))
    assert ev.attrs["gti_kind"] == "ccd-union"
    # the union is at most a few tens of seconds longer than any single CCD's good time
    assert 0 <= ev.attrs["exposure"] - max(gtimod.exposure(g) for g in expect.values()) < 60.0


def test_xmm_exposures_of_known_files():
    ev = xcube.open_events(real_file("xmm", "xga_0201901401_mos1_exp1_clean_evts.fits"))
    assert ev.attrs["exposure"] == pytest.approx(5150.0)  # ~5.1 ks kept after the flare cut
    ev = xcube.open_events(real_file("xmm", "exod_0001730201_M1_clean.fits"))
    assert ev.sizes["gti"] == 11 and ev.attrs["exposure"] == pytest.approx(11968.88, abs=0.01)


def test_xmm_wcs_reference_pixel_is_the_pointing(xmm):
    """For XMM PPS/SAS event files the X/Y reference (TCRVL) is RA_PNT/DEC_PNT
    exactly: the reference pixel maps there to < 1e-9 deg."""
    path, ev = xmm
    w = xcube.wcs(ev)
    c = w.pixel_to_world(ev.attrs["CRPIX1"], ev.attrs["CRPIX2"])
    assert abs(c.ra.deg - ev.attrs["ra_pnt"]) < 1e-9
    assert abs(c.dec.deg - ev.attrs["dec_pnt"]) < 1e-9
    # and event positions agree with astropy's own column WCS (0-based pixel = column value - 1)
    hdr = fits.getheader(path, "EVENTS")
    ix = [i for i in range(1, hdr["TFIELDS"] + 1) if hdr[f"TTYPE{i}"] in ("X", "Y")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = WCS(hdr, keysel=["pixel"], colsel=ix)
    x, y = ev.x.values[:200].astype(float), ev.y.values[:200].astype(float)
    a = w.pixel_to_world(x, y)
    b = ref.pixel_to_world(x - 1, y - 1)
    assert np.all(a.separation(SkyCoord(b.ra, b.dec, frame=a.frame)).arcsec < 1e-6)
    # events of a MOS field (incl. the outer CCD corners) lie within ~20 arcmin of the pointing
    assert np.percentile(a.separation(SkyCoord(ev.attrs["ra_pnt"], ev.attrs["dec_pnt"], unit="deg",
                                               frame=a.frame)).arcmin, 99) < 20.0


def test_nustar_counts_times_energies_gtis():
    path = real_file(*NUSTAR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ev = xcube.open_events(path)
    data, hdr, gtis = _astropy_events(path)
    assert ev.sizes["event"] == len(data["TIME"]) == 937
    np.testing.assert_array_equal(ev.time.values, np.sort(data["TIME"] + hdr["TIMEZERO"]))
    np.testing.assert_allclose(ev.energy.values, 1.6 + 0.04 * ev.pi.values, rtol=1e-6)
    np.testing.assert_array_equal(np.sort(ev.pi.values), np.sort(data["PI"]))
    (name, _, tz, start, stop), = gtis
    s, e = gtimod.normalize(start + tz, stop + tz, warn=False)
    np.testing.assert_array_equal(ev.gti_start.values, s)
    np.testing.assert_array_equal(ev.gti_stop.values, e)
    assert ev.sizes["gti"] == 190 and ev.attrs["gti_kind"] == "global"
    assert ev.attrs["exposure"] == pytest.approx(float(np.sum(stop - start)))
    assert ev.attrs["mjdrefi"] == 55197 and ev.attrs["mjdreff"] == hdr["MJDREFF"]
    assert ev.attrs["mjdref"] == np.float64(55197) + np.float64(hdr["MJDREFF"])


def test_nustar_wcs_reference_is_nominal_pointing():
    """NuSTAR L2 files put the X/Y reference at RA_NOM/DEC_NOM (the target),
    which differs from the mean pointing RA_PNT/DEC_PNT by 2.2 arcmin in this
    observation: the reference pixel maps to RA_NOM/DEC_NOM to < 1e-9 deg and
    to RA_PNT/DEC_PNT within 3 arcmin."""
    path = real_file(*NUSTAR)
    ev = xcube.open_events(path)
    hdr = fits.getheader(path, "EVENTS")
    w = xcube.wcs(ev)
    c = w.pixel_to_world(ev.attrs["CRPIX1"], ev.attrs["CRPIX2"])
    assert abs(c.ra.deg - hdr["RA_NOM"]) < 1e-9 and abs(c.dec.deg - hdr["DEC_NOM"]) < 1e-9
    pnt = SkyCoord(ev.attrs["ra_pnt"], ev.attrs["dec_pnt"], unit="deg", frame=c.frame)
    assert c.separation(pnt).arcmin < 3.0
    assert abs(ev.attrs["CDELT2"] * 3600 - 2.45810736) < 1e-6


def test_info_of_real_light_curves_and_gti(capsys):
    """``xcube info`` on real pn products: an EXOD light curve, the SAS flare time series, a GTI file."""
    from xcube.cli import main

    lc = real_file("xmm", "exod_0001730201_PN_J173446-323317_lc_100_src.lc")
    fbk = real_file("xmm", "P0001730201PNS001FBKTSR0000.FTZ")
    gti = real_file("xmm", "exod_0001730201_PN_gti.fits")
    assert main(["info", str(lc), str(fbk), str(gti)]) == 0
    out = capsys.readouterr().out
    start, stop = xcube.io.ogip.read_gti(gti)
    for text in ("light curve (XMM-Newton EPN)", "bins        : 228 of 100 s", "object: HD159176",
                 "UTC 2001-03-09T13:38:44", "bins        : 2,276 of 10 s", "good time intervals",
                 f"GTI exposure: {float(np.sum(stop - start)):.1f} s in {start.size} interval(s)"):
        assert text in out, (text, out)
