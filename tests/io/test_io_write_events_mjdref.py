"""write_events writes the exact MJDREFI/MJDREFF split the attrs keep (NuSTAR
MJDREFF = 0.00076601852), as the OGIP product writers do; it used to rebuild
MJDREFF from the float MJDREF (0.0007660185219720006: 0.17 us off)."""
from __future__ import annotations

from astropy.io import fits

import xcube
from xcube.io.write_events import write_events


def test_the_exact_mjdref_split_is_written(make_event_file, tmp_path):
    path = make_event_file(header={"MJDREFI": 55197, "MJDREFF": 0.00076601852, "MJDREF": None})
    ev = xcube.open_events(path)
    assert (ev.attrs["mjdrefi"], ev.attrs["mjdreff"]) == (55197, 0.00076601852)
    h = fits.getheader(write_events(tmp_path / "out.fits", ev), "EVENTS")
    assert (h["MJDREFI"], h["MJDREFF"]) == (55197, 0.00076601852)
    back = xcube.open_events(tmp_path / "out.fits")
    assert back.attrs["mjdreff"] == 0.00076601852


def test_a_single_mjdref_is_split_at_its_decimal(make_event_file, tmp_path):
    ev = xcube.open_events(make_event_file(header={"MJDREF": 50814.000743}))
    h = fits.getheader(write_events(tmp_path / "out.fits", ev), "EVENTS")
    assert (h["MJDREFI"], h["MJDREFF"]) == (50814, 0.000743)
