"""Every FITS file xcube writes passes HEASARC's ``fitsverify`` with no error
(and no warning): event lists, light curves (total, net, background, several
bands, uncorrected rates, MJD and text columns), source and background
spectra, GTI tables, images, power spectra, survey catalogues and the frames
pipeline's masters, calibrated frames and photometry catalogue.

``fitsverify`` is Debian's package of that name (``ci/apt-fitsverify.sh``
installs it in CI); without it these tests are skipped.
"""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import real_file

import xcube
from xcube.io import ogip
from xcube.io.powspec import write_power_spectrum
from xcube.io.write_events import write_events
from xcube.times import add_time_columns

pytestmark = pytest.mark.skipif(
    shutil.which("fitsverify") is None,
    reason="fitsverify is not installed (Debian package 'fitsverify'; CI installs it with ci/apt-fitsverify.sh)",
)

SRC = "physical;circle(26000,26000,600)"
BKG = "physical;annulus(26000,26000,900,1400)"


def verify(path) -> tuple[int, int, str]:
    """(warnings, errors, report) of ``fitsverify`` on one file."""
    res = subprocess.run(["fitsverify", str(path)], capture_output=True, text=True, timeout=120)
    m = re.search(r"Verification found (\d+) warning\(s\) and (\d+) error\(s\)", res.stdout)
    assert m, f"unexpected fitsverify output for {path}:\n{res.stdout}\n{res.stderr}"
    return int(m.group(1)), int(m.group(2)), res.stdout


def assert_clean(*paths):
    for p in paths:
        warnings, errors, report = verify(p)
        assert (warnings, errors) == (0, 0), f"{p}:\n{report}"


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    from xcube import simulate

    path = tmp_path_factory.mktemp("fv") / "pn.fits"
    ev, _ = simulate.event_list("xmm-pn", duration=4000.0, sources=3, seed=2, path=path, overwrite=True)
    return xcube.open_events(path)


def test_event_lists(events, tmp_path):
    write_events(tmp_path / "sel.fits", xcube.select(events, energy_band=(0.5, 2.0)))
    write_events(tmp_path / "sel.fits.gz", xcube.select(events, expr="energy=2:"), gzip=True)
    nustar = xcube.open_events(real_file("nustar", "barycenter_dummy_evt_nustar_B1937.evt"))
    write_events(tmp_path / "nustar.fits", nustar)
    assert_clean(tmp_path / "sel.fits", tmp_path / "sel.fits.gz", tmp_path / "nustar.fits")


def test_light_curves_every_kind(events, tmp_path):
    lc = xcube.lightcurve(events, 100.0, energy_band=(0.5, 10.0), region=SRC, background=BKG, mjd=True)
    ogip.write_lightcurve(tmp_path / "total.lc", lc)
    ogip.write_lightcurve(tmp_path / "net.lc", lc, kind="net")
    ogip.write_lightcurve(tmp_path / "bkg.lc", lc, kind="background")
    ogip.write_lightcurve(tmp_path / "uncorrected.lc", lc, kind="net", fraccorr=False)
    bands = xcube.lightcurve(events, 100.0, energy_band=[(0.5, 2.0), (2.0, 10.0)])
    ogip.write_lightcurve(tmp_path / "bands.lc", bands)
    long_term = xcube.stitch([xcube.lightcurve(events, 500.0)])
    ogip.write_lightcurve(tmp_path / "stitched.lc", long_term,
                          columns={"OBS_ID": long_term["obs_id"].values, "MJD": long_term["mjd"].values})
    assert_clean(*sorted(tmp_path.glob("*.lc")))


def test_spectra_gti_and_images(events, tmp_path):
    spec = xcube.spectrum(events, region=SRC, background=BKG)
    ogip.write_spectrum(tmp_path / "src.pha", spec)
    ogip.write_spectrum(tmp_path / "grouped.pha", spec.xcube.group(20), background_path=tmp_path / "g_bkg.pha")
    ogip.write_gti(tmp_path / "gti.fits", events)
    ogip.write_image(tmp_path / "img.fits", xcube.image(events, size_arcsec=4.0, energy_band=(0.5, 2.0)))
    ogip.write_image(tmp_path / "float.fits", xcube.image(events, size_arcsec=8.0).astype(np.float32))
    assert_clean(tmp_path / "src.pha", tmp_path / "src_bkg.pha", tmp_path / "grouped.pha", tmp_path / "g_bkg.pha",
                 tmp_path / "gti.fits", tmp_path / "img.fits", tmp_path / "float.fits")


def test_power_spectrum(events, tmp_path):
    write_power_spectrum(tmp_path / "pds.fits", xcube.power_spectrum(events, 256.0, 1.0))
    assert_clean(tmp_path / "pds.fits")


def test_survey_catalogue(tmp_path):
    from xcube.survey import build_catalogue, parameter_grid, run_id
    from xcube.survey.status import write_run

    out = tmp_path / "out"
    for k, obsid in enumerate(("0100000001", "0100000002")):
        p = parameter_grid([50.0], [(0.2, 12.0)])[0]
        det = pd.DataFrame({"ra": [150.0 + k * 1e-3], "dec": [2.2], "kind": ["peak"], "name": ["XCUBE J1"],
                            "t_start": [7e8], "t_stop": [7e8 + 50], "t_peak": [7e8 + 25], "log10_bayes": [9.0],
                            "counts": [12.0]})
        det = add_time_columns(det, {"mjdref": 50814.0})
        write_run(out, obsid, run_id(obsid, p), dict(p.to_dict(), param_hash=p.hash, state="done", n_detections=1),
                  writer=lambda d, det=det: det.to_parquet(d / "detections.parquet", index=False))
    cat = build_catalogue(out)
    assert_clean(cat.directory / "detections.fits", cat.directory / "sources.fits")


def test_frames_pipeline_outputs(tmp_path):
    from xcube.frames import simulate as fsim

    fsim.night(tmp_path / "raw", n_frames=6, shape=(96, 96), n_stars=8, depth=0.4, seed=7)
    xcube.frames.run(tmp_path / "raw", tmp_path / "red")
    written = sorted((tmp_path / "red").rglob("*.fits"))
    names = {p.name for p in written}
    assert {"bias.fits", "flat_R.fits", "cata_V1234Cyg_R.fits", "V1234Cyg-0001R.bf.fits"} <= names
    assert_clean(*written)


def test_the_verifier_finds_errors(tmp_path):
    """The check can fail: a header with a malformed keyword is reported."""
    path = tmp_path / "bad.fits"
    ogip.write_gti(path, ([1.0], [2.0]))
    raw = bytearray(path.read_bytes())
    i = raw.index(b"EXTNAME =")
    raw[i:i + 9] = b"EXT NAME="  # a space inside a keyword name is illegal
    path.write_bytes(bytes(raw))
    assert verify(path)[1] > 0
