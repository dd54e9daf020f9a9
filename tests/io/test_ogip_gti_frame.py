"""GTI files given to select(gti=...) (xcube.io.ogip.gti_table): headers with
commentary cards, and GTIs in another time system or reference than the events'."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from conftest import real_file

import xcube
from xcube.io.ogip import gti_table

NUSTAR = ("nustar", "barycenter_dummy_evt_nustar_B1937.evt")
T0 = 1.0e8


def _gti_file(path, *, timesys="TT", timeref=None, history=2, mjdref=50814.0):
    prim = fits.PrimaryHDU()
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="START", format="D", unit="s", array=[T0 + 1000.0]),
         fits.Column(name="STOP", format="D", unit="s", array=[T0 + 3000.0])], name="GTI")
    table.header["HDUCLAS1"] = "GTI"
    for h in (prim.header, table.header):
        h["MJDREF"] = mjdref
        if timesys is not None:
            h["TIMESYS"] = timesys
        if timeref is not None:
            h["TIMEREF"] = timeref
        for i in range(history):  # as every HEASoft/SAS tool leaves them
            h["HISTORY"] = f"step {i}"
            h["COMMENT"] = f"note {i}"
    fits.HDUList([prim, table]).writeto(path)
    return path


def test_a_gti_file_with_history_cards_is_applied(make_event_file, tmp_path):
    ev = xcube.open_events(make_event_file(n=1000, t0=T0, duration=1.0e4))
    gti = _gti_file(tmp_path / "gti.fits", history=3)
    out = xcube.select(ev, gti=str(gti))  # was: TypeError dict() got multiple values for keyword 'HISTORY'
    assert out.attrs["exposure"] == 2000.0
    t = ev["time"].values
    assert out.sizes["event"] == int(np.sum((t >= T0 + 1000.0) & (t < T0 + 3000.0)))
    start, stop = gti_table(f"{gti}[GTI]", ev)
    np.testing.assert_array_equal(start, [T0 + 1000.0])


def test_a_gti_in_another_time_system_is_refused_naming_file_and_values(make_event_file, tmp_path):
    ev = xcube.open_events(make_event_file(n=500, t0=T0, duration=1.0e4))  # TIMESYS = TT
    gti = _gti_file(tmp_path / "gti_tdb.fits", timesys="TDB")
    with pytest.raises(ValueError, match=r"gti_tdb\.fits: TIMESYS 'TDB' differs from the events' .*'TT'"):
        xcube.select(ev, gti=str(gti))
    bary = xcube.open_events(make_event_file(n=500, t0=T0, duration=1.0e4,
                                             header={"TIMESYS": "TDB", "TIMEREF": "SOLARSYSTEM"}))
    tt = _gti_file(tmp_path / "gti_tt.fits", timesys="TT", timeref="LOCAL")
    with pytest.raises(ValueError, match=r"gti_tt\.fits: TIMESYS 'TT' differs from the events' .*'TDB'"):
        xcube.select(bary, gti=str(tt))
    same = _gti_file(tmp_path / "gti_bary.fits", timesys="TDB", timeref="SOLARSYSTEM")
    assert xcube.select(bary, gti=str(same)).attrs["exposure"] == 2000.0
    assert xcube.select(ev, gti=str(_gti_file(tmp_path / "gti_tdt.fits", timesys="TDT"))).attrs["exposure"] == 2000.0
    assert xcube.select(ev, gti=str(_gti_file(tmp_path / "no_sys.fits", timesys=None))).attrs["exposure"] == 2000.0


def test_a_gti_with_another_time_reference_is_refused(make_event_file, tmp_path):
    bary = xcube.open_events(make_event_file(n=500, t0=T0, duration=1.0e4,
                                             header={"TIMESYS": "TDB", "TIMEREF": "SOLARSYSTEM"}))
    local = _gti_file(tmp_path / "gti_local.fits", timesys="TDB", timeref="LOCAL")
    with pytest.raises(ValueError, match=r"gti_local\.fits: TIMEREF 'LOCAL' differs from the events' .*'SOLARSYSTEM'"):
        xcube.select(bary, gti=str(local))
    with fits.open(local) as hdul:  # the same check for a table in memory
        with pytest.raises(ValueError, match="TIMEREF 'LOCAL'"):
            xcube.select(bary, gti=hdul["GTI"])


def test_real_nustar_events_take_their_own_gti_file(tmp_path):
    path = real_file(*NUSTAR)
    ev = xcube.open_events(path)
    out = xcube.select(ev, gti=str(path))  # its GTI extension has HISTORY cards
    assert out.attrs["exposure"] == pytest.approx(ev.attrs["exposure"])
    with fits.open(path) as hdul:
        for h in hdul[:3]:
            h.header["TIMESYS"] = "TDB"
            h.header["TIMEREF"] = "SOLARSYSTEM"
        hdul.writeto(tmp_path / "nu_tdb.evt")
    bary = xcube.open_events(tmp_path / "nu_tdb.evt")
    with pytest.raises(ValueError, match=r"barycenter_dummy_evt_nustar_B1937\.evt: TIMESYS 'TT' differs"):
        xcube.select(bary, gti=str(path))
