"""starxy is in pixels of the trimmed base frame (sweep p20/e note): with border_cut > 0 a position outside the
trimmed frame (a raw-frame position near the edge, say) is named in a warning instead of measured silently."""
from __future__ import annotations

import logging

import xcube
from xcube.frames import simulate

SMALL = {"n_frames": 6, "shape": (128, 128), "n_stars": 12, "max_dither": 6.0, "n_bias": 3, "n_flat": 3}


def test_starxy_outside_the_trimmed_frame_is_named(tmp_path, caplog):
    truth = simulate.night(tmp_path / "raw", seed=3, **SMALL)
    run = {"border_cut": 4, "aper": (4.0,), "progress": False}
    xcube.frames.run(tmp_path / "raw", tmp_path / "red", steps="lbfio", **run)
    inside = (float(truth.star_x[0]) - 4, float(truth.star_y[0]) - 4)   # trimmed-frame pixels: raw - border_cut
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        xcube.frames.run(tmp_path / "raw", tmp_path / "red", steps="p", starxy=[inside], **run)
    assert "starxy" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        res = xcube.frames.run(tmp_path / "raw", tmp_path / "red", steps="pkcd",
                               starxy=[inside, (121.0, 60.0), (30.0, -2.5)], **run)
    (said,) = [r.getMessage() for r in caplog.records if "starxy" in r.getMessage()]
    assert "2 of the 3" in said and "1 (121, 60)" in said and "2 (30, -2.5)" in said
    assert "120x120" in said and "border_cut = 4" in said and "0 (" not in said
    assert res["star_x"].values[1] == 121.0 and res["source"].values[1] == "given"


def test_trimmed_calibrated_frames_keep_each_pixels_sky_position(tmp_path):
    """Sweep p25: border_cut trimmed the pixels but kept the raw CRPIX, moving the WCS by border_cut pixels."""
    import numpy as np
    from astropy.io import fits
    from astropy.wcs import WCS

    simulate.night(tmp_path / "raw", seed=3, **SMALL)
    wcs_cards = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 20.0, "CRPIX1": 64.5,
                 "CRPIX2": 60.0, "CD1_1": -1e-4, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 1e-4}
    for path in (tmp_path / "raw").glob("*.fit"):
        with fits.open(path, mode="update") as hdul:
            hdul[0].header.update(wcs_cards)
    xcube.frames.run(tmp_path / "raw", tmp_path / "red", steps="lbfi", border_cut=4, progress=False)
    raw = tmp_path / "raw" / "V1234Cyg-0001R.fit"
    made = tmp_path / "red" / "V1234Cyg_R" / "V1234Cyg-0001R.bf.fits"
    header = fits.getheader(made)
    assert header["CRPIX1"] == 60.5 and header["CRPIX2"] == 56.0 and header["LTV1"] == -4.0
    trimmed = WCS(header).pixel_to_world_values(np.array([0.0, 10.0]), np.array([0.0, 7.0]))
    original = WCS(fits.getheader(raw)).pixel_to_world_values(np.array([4.0, 14.0]), np.array([4.0, 11.0]))
    np.testing.assert_allclose(trimmed, original, rtol=0, atol=1e-12)
