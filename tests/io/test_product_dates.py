"""DATE-OBS/DATE-END of the products xcube writes are the UTC dates of the
product's own data span (TSTART/TSTOP of a light curve or image, the GTI
span of a spectrum or GTI file), as the event files give theirs (XMM and
NuSTAR: TIMESYS = 'TT' times, DATE-OBS in UTC). They used to be the event
file's, a 7-hour span for a one-hour window."""
from __future__ import annotations

import numpy as np
from astropy.io import fits
from astropy.time import Time, TimeDelta

import xcube
from xcube.io.ogip import write_gti, write_image, write_lightcurve, write_spectrum

T0 = 1.0e8
FILE_DATES = {"DATE-OBS": "2001-03-09T00:00:00", "DATE-END": "2001-03-10T00:00:00"}


def _utc(header, t):
    """UTC ISO (ms) of mission time ``t`` [s] of ``header`` (MJDREF, TIMESYS), by astropy."""
    ref = Time(header["MJDREF"], format="mjd", scale=header["TIMESYS"].lower())
    utc = (ref + TimeDelta(t, format="sec")).utc
    utc.precision = 3
    return utc.isot


def test_a_time_range_light_curve_has_the_dates_of_its_tstart_tstop(make_event_file, tmp_path):
    ev = xcube.open_events(make_event_file(header=FILE_DATES))
    lc = xcube.lightcurve(ev, 100.0, time_range=(T0 + 3000.0, T0 + 4000.0))
    h = fits.getheader(write_lightcurve(tmp_path / "win.lc", lc), "RATE")
    assert (h["TSTART"], h["TSTOP"]) == (T0 + 3000.0, T0 + 4000.0)
    assert h["DATE-OBS"] == _utc(h, h["TSTART"]) == "2001-03-03T10:35:35.816"
    assert h["DATE-END"] == _utc(h, h["TSTOP"])
    assert fits.getheader(tmp_path / "win.lc", 0)["DATE-OBS"] == h["DATE-OBS"]


def test_image_spectrum_and_gti_file_have_the_dates_of_their_good_time(make_event_file, tmp_path):
    ev = xcube.select(xcube.open_events(make_event_file(header=FILE_DATES)), gti=[(T0 + 1000.0, T0 + 2500.0)])
    img = xcube.image(ev, 200.0)
    h = fits.getheader(write_image(tmp_path / "a.img", img))
    assert (h["DATE-OBS"], h["DATE-END"]) == (_utc(h, T0 + 1000.0), _utc(h, T0 + 2500.0))
    sp = xcube.spectrum(ev)
    h = fits.getheader(write_spectrum(tmp_path / "a.pha", sp), "SPECTRUM")
    assert (h["DATE-OBS"], h["DATE-END"]) == (_utc(h, T0 + 1000.0), _utc(h, T0 + 2500.0))
    h = fits.getheader(write_gti(tmp_path / "a.gti", ev), "GTI")
    assert (h["DATE-OBS"], h["DATE-END"]) == (_utc(h, T0 + 1000.0), _utc(h, T0 + 2500.0))


def test_without_a_time_reference_the_attrs_dates_are_kept():
    from xcube.io.ogip import common_cards

    cards = common_cards({"date_obs": "2001-03-09T00:00:00"}, span=(T0, T0 + 10.0))
    assert cards["DATE-OBS"] == "2001-03-09T00:00:00" and "DATE-END" not in cards
    cards = common_cards({"date_obs": "2001-03-09T00:00:00", "mjdref": 50814.0, "timesys": "TT"},
                         span=(T0, np.nan))
    assert cards["DATE-OBS"] == "2001-03-09T00:00:00"


def test_light_curve_gti_extension_has_the_dates_of_its_own_tstart_tstop(make_event_file, tmp_path):
    """Sweep p26: a light curve's GTI extension took DATE-END from the RATE
    table's last bin edge while its TSTOP is the last GTI stop (294.7 s apart
    on the real MOS1 file)."""
    ev = xcube.open_events(make_event_file(header=FILE_DATES))
    lc = xcube.lightcurve(ev, 300.0)  # the last bin runs past the last GTI stop
    path = write_lightcurve(tmp_path / "a.lc", lc)
    rate, gti = fits.getheader(path, "RATE"), fits.getheader(path, "GTI")
    assert rate["TSTOP"] > gti["TSTOP"]
    for h in (rate, gti):
        assert (h["DATE-OBS"], h["DATE-END"]) == (_utc(h, h["TSTART"]), _utc(h, h["TSTOP"]))
