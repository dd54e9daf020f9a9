"""JD, MJD, HJD, BJD_TDB, altitude and airmass (xcube.frames.timing), checked against astropy."""
from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from astropy.time import Time

from xcube.frames.timing import XINGLONG, airmass, site_location, target_coord, time_keywords


def test_hjd_bjd_against_astropy():
    # a known time and position: mid-exposure 2024-06-06T14:00:00 UTC at Xinglong, SS Cyg
    site = EarthLocation.from_geodetic(117.57722 * u.deg, 40.395833 * u.deg, 960 * u.m)
    star = SkyCoord("21:42:42.80", "+43:35:09.9", unit=(u.hourangle, u.deg))
    t = Time(["2024-06-06T14:00:00", "2024-12-01T20:30:00"], scale="utc", location=site)
    kw = time_keywords(t.mjd, target_coord("21:42:42.80", "+43:35:09.9"), site_location())
    bjd = (t.tdb + t.light_travel_time(star, "barycentric")).jd
    hjd = (t.utc + t.light_travel_time(star, "heliocentric")).jd
    np.testing.assert_allclose(kw["JD"], t.jd, rtol=0, atol=1e-9)
    np.testing.assert_allclose(kw["MJD"], t.mjd, rtol=0, atol=1e-9)
    np.testing.assert_allclose(kw["BJD_TDB"], bjd, rtol=0, atol=2e-8)  # ~2 ms
    np.testing.assert_allclose(kw["HJD"], hjd, rtol=0, atol=2e-8)
    # physical sanity independent of astropy's API: light travel within 8.4 min of the Earth-Sun distance,
    # and BJD_TDB - HJD_UTC = (TDB - UTC) + the Sun-barycentre term (a few seconds at most)
    assert np.all(np.abs(kw["BJD_TDB"] - kw["JD"]) < (8.4 * 60 + 70) / 86400)
    tdb_utc = (t.tdb.jd1 - t.utc.jd1) + (t.tdb.jd2 - t.utc.jd2)
    assert np.all(np.abs(kw["BJD_TDB"] - kw["HJD"] - tdb_utc) < 5.0 / 86400)
    altaz = star.transform_to(AltAz(obstime=t, location=site))
    np.testing.assert_allclose(kw["ALT"], altaz.alt.deg, atol=1e-6)
    np.testing.assert_allclose(kw["AZ"], altaz.az.deg, atol=1e-6)


def test_airmass_formula_and_horizon():
    x = airmass([90.0, 30.0, 10.0, 0.0, -5.0], apparent=True)
    assert x[0] == pytest.approx(1.0, abs=1e-4)
    assert x[1] == pytest.approx(1.0 / np.sin(np.radians(30.0)), rel=0.01)  # close to sec z high up
    assert 5.5 < x[2] < 5.7 and 37 < x[3] < 40  # finite at the horizon, unlike sec z
    assert np.isnan(x[4])


def test_missing_coordinates_and_times():
    kw = time_keywords([60467.5, np.nan], None)
    assert kw["JD"][0] == 2460468.0 and np.isnan(kw["JD"][1])
    for key in ("HJD", "BJD_TDB", "ALT", "AZ", "AIRMASS"):
        assert np.all(np.isnan(kw[key]))


def test_target_coord_forms():
    a = target_coord("12:34:56.7", "-23:45:06")
    assert a.ra.deg == pytest.approx((12 + 34 / 60 + 56.7 / 3600) * 15)
    assert a.dec.deg == pytest.approx(-(23 + 45 / 60 + 6 / 3600))
    assert target_coord("12 34 56.7", "-23 45 06").separation(a).arcsec < 1e-6
    assert target_coord(188.7363, -23.7517).ra.deg == pytest.approx(188.7363)
    with pytest.raises(ValueError, match="alt_coord"):
        target_coord(None, None)
    with pytest.raises(ValueError, match="cannot read target coordinates"):
        target_coord("not-a-ra", "+10")


def test_default_site_is_xinglong():
    loc = site_location()
    assert loc.lon.deg == pytest.approx(XINGLONG["lon"]) and loc.lat.deg == pytest.approx(XINGLONG["lat"])
    assert loc.height.to_value(u.m) == pytest.approx(960.0)


def test_header_coordinates_of_an_equinox_are_converted_to_icrs(tmp_path):
    """RA/DEC with EQUINOX (of date, B1950) were taken as ICRS: 20 arcmin and 3 s of BJD off for JNow 2024.7."""
    import astropy.units as u
    from astropy.coordinates import FK4, FK5, SkyCoord
    from astropy.time import Time
    from frames_helpers import write_frame

    from xcube.frames.files import scan_frames

    jnow = SkyCoord("06:00:00.0", "+23:30:00", unit=(u.hourangle, u.deg),
                    frame=FK5(equinox=Time(2024.7, format="jyear"))).transform_to("icrs")
    kw = {"DATE_OBS": "2024-06-06T14:00:00", "EXPTIME": 10.0, "RA": "06:00:00.0", "DEC": "+23:30:00"}
    write_frame(tmp_path / "A-0001R.fit", EQUINOX=2024.7, **kw)
    write_frame(tmp_path / "A-0002R.fit", EPOCH=1950.0, **kw)
    write_frame(tmp_path / "A-0003R.fit", EQUINOX=2000.0, RADESYS="ICRS", **kw)
    write_frame(tmp_path / "A-0004R.fit", **kw)
    rows = scan_frames(tmp_path).set_index("name")[["ra", "dec", "equinox", "radesys"]]
    coord = {name: target_coord(*row) for name, row in rows.iterrows()}
    assert coord["A-0001R.fit"].separation(jnow).arcsec < 1e-6
    b1950 = SkyCoord("06:00:00.0", "+23:30:00", unit=(u.hourangle, u.deg),
                     frame=FK4(equinox=Time(1950.0, format="byear"))).transform_to("icrs")
    assert coord["A-0002R.fit"].separation(b1950).arcsec < 1e-6
    plain = SkyCoord("06:00:00.0", "+23:30:00", unit=(u.hourangle, u.deg), frame="icrs")
    assert coord["A-0003R.fit"].separation(plain).arcsec < 1e-9 and coord["A-0004R.fit"].separation(plain).arcsec < 1e-9
    assert coord["A-0001R.fit"].separation(plain).arcmin > 15 and coord["A-0001R.fit"].frame.name == "icrs"
    with pytest.raises(ValueError, match="RADESYS"):
        target_coord("06:00:00", "+23:30:00", 2000.0, "GALACTIC")


def test_airmass_of_a_geometric_altitude_takes_refraction():
    """time_keywords' ALT is geometric (astropy AltAz without pressure); Pickering's formula wants the
    apparent altitude: raised by refraction first (the airmass was 2.3 % too high at 5 deg, 0.7 % at 10 deg).
    Checked against astropy's own refraction (AltAz with pressure, 10 C, 1010 hPa)."""
    import astropy.units as u
    from astropy.coordinates import AltAz, EarthLocation, SkyCoord
    from astropy.time import Time

    site = EarthLocation(lat=40.4 * u.deg, lon=117.6 * u.deg, height=900 * u.m)
    t = Time("2024-03-10T20:00:00", scale="utc")
    frame = AltAz(obstime=t, location=site)
    geo = np.array([60.0, 20.0, 10.0, 5.0])  # (astropy's refraction model fails nearer the horizon)
    stars = SkyCoord(alt=geo * u.deg, az=np.full(geo.size, 120.0) * u.deg, frame=frame).icrs
    wet = AltAz(obstime=t, location=site, pressure=1010 * u.hPa, temperature=10 * u.deg_C, relative_humidity=0.0,
                obswl=0.55 * u.micron)
    apparent = stars.transform_to(wet).alt.deg
    np.testing.assert_allclose(airmass(geo), airmass(apparent, apparent=True), rtol=2e-3)
    assert airmass(5.0) < 0.985 * airmass(5.0, apparent=True)  # the refraction the old airmass left out
