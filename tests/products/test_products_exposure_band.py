"""Sweep p27: the exposure of one region must not change with the energy
band (XMM EPIC per-CCD live times). The spectrum and the image took the CCD
with most events after the band cut, so a region across two CCDs got one
CCD's live time in the soft band and the other's in the hard band."""
from __future__ import annotations

from conftest import real_file

import xcube

# on the XGA MOS1 file a circle over the CCD 1 / CCD 7 boundary: CCD 7 holds most soft events, CCD 1 most hard ones
REGION = "physical;circle(20899.0,24081.5,800)"


def test_image_and_spectrum_exposure_of_a_region_do_not_depend_on_the_band():
    ev = xcube.open_events(real_file("xmm", "xga_0201901401_mos1_exp1_clean_evts.fits"))
    soft, hard = (0.3, 1.0), (2.0, 10.0)
    s_cut = xcube.select(xcube.select(ev, region=REGION), expr="PATTERN <= 12 && FLAG == 0")
    assert s_cut.sizes["event"] > 10
    img = [xcube.image(ev, energy_band=b, region=REGION).attrs for b in (soft, hard)]
    spec = [xcube.spectrum(ev, region=REGION, expr=f"PI in [{int(b[0] * 1000)}:{int(b[1] * 1000)})").attrs
            for b in (soft, hard)]
    assert img[0]["exposure"] == img[1]["exposure"] == spec[0]["exposure"] == spec[1]["exposure"]
    assert img[0]["deadc_from"] == spec[1]["deadc_from"] == "LIVETI07/ONTIME07 (CCD 7)"


def test_a_ccd_cut_in_expr_keeps_its_ccd_with_a_band_cut():
    """Review p27: with a band in expr, the CCD was chosen from the events
    without expr, so `PI in [500:2000] && CCDNR==4` took CCD 1's live time."""
    ev = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"))
    for expr in ("PI in [500:2000] && CCDNR==4", "CCDNR==4"):
        assert xcube.spectrum(ev, expr=expr).attrs["deadc_from"] == "LIVETI04/ONTIME04 (CCD 4)", expr
