"""Times and observing conditions of ground-based frames.

Mid-exposure UTC (from DATE-OBS + EXPTIME / 2) becomes JD, MJD, HJD (UTC),
BJD (TDB), altitude, azimuth and airmass at the observing site. astropy does
the astronomy (``astropy.coordinates`` is imported inside the functions, so
importing this module stays cheap); everything here is eager and vectorised
over frames.
"""
from __future__ import annotations

import numpy as np

__all__ = ["XINGLONG", "site_location", "target_coord", "time_keywords", "airmass"]

#: default site: Xinglong station (longitude east [deg], latitude [deg], height [m])
XINGLONG = {"lon": 117.57722, "lat": 40.395833, "height": 960.0}


def site_location(lon: float = XINGLONG["lon"], lat: float = XINGLONG["lat"], height: float = XINGLONG["height"]):
    """``astropy.coordinates.EarthLocation`` of a site: geodetic longitude
    (east positive) and latitude [deg], height above the ellipsoid [m].
    Eager."""
    import astropy.units as u
    from astropy.coordinates import EarthLocation

    return EarthLocation.from_geodetic(float(lon) * u.deg, float(lat) * u.deg, float(height) * u.m)


def target_coord(ra, dec, equinox=None, radesys=None):
    """ICRS ``SkyCoord`` from header-style values: sexagesimal strings
    (``"12:34:56.7"`` hours, ``"+23:45:06"`` degrees; spaces also work) or
    numbers in degrees. ``equinox`` (the EQUINOX or EPOCH keyword: a year,
    ``'J2024.7'`` or ``'B1950'``) and ``radesys`` (RADESYS) name the frame
    of the values, which are converted to ICRS: FK5 of that equinox (also
    for ``GAPPT``, coordinates of date, whose nutation and aberration of
    under a minute of arc are ignored), FK4 (``B``-years) when RADESYS says
    FK4 or FK4-NO-E, or, without RADESYS, when the equinox is before 1984
    (the FITS rule); ICRS without either. Raises ``ValueError`` naming the
    values and the fix. Eager (scalars)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    if ra is None or dec is None or (isinstance(ra, float) and np.isnan(ra)) or str(ra).strip() == "":
        raise ValueError("no target coordinates: the frames have no RA/DEC keywords; pass alt_coord=(ra, dec)")
    frame = _header_frame(equinox, radesys)
    try:
        if isinstance(ra, str) and any(c in ra.strip() for c in ": hms"):
            coord = SkyCoord(ra.strip(), str(dec).strip(), unit=(u.hourangle, u.deg), frame=frame)
        else:
            coord = SkyCoord(float(ra) * u.deg, float(dec) * u.deg, frame=frame)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"cannot read target coordinates RA={ra!r}, DEC={dec!r} ({exc}); pass "
                         "alt_coord=('hh:mm:ss.s', '+dd:mm:ss') or degrees") from exc
    return coord if frame == "icrs" else SkyCoord(coord.transform_to("icrs").frame)


def _header_frame(equinox, radesys):
    """The astropy frame of header RA/DEC with EQUINOX/EPOCH and RADESYS (see :func:`target_coord`)."""
    from astropy.coordinates import FK4, FK5, FK4NoETerms
    from astropy.time import Time

    system = "" if radesys is None or (isinstance(radesys, float) and np.isnan(radesys)) else \
        str(radesys).strip().upper()
    year, prefix = None, ""
    if equinox is not None and not (isinstance(equinox, float) and np.isnan(equinox)) and str(equinox).strip():
        text = str(equinox).strip().upper()
        prefix = text[0] if text[0] in "JB" else ""
        try:
            year = float(text.lstrip("JB"))
        except ValueError:
            raise ValueError(f"EQUINOX = {equinox!r} is not a year; fix EQUINOX or pass alt_coord (ICRS)") from None
    if system in ("", "ICRS") and year is None or system == "ICRS":
        return "icrs"
    if system in ("FK4", "FK4-NO-E") or (not system and (prefix == "B" or (prefix != "J" and year < 1984.0))):
        eq = Time(year if year is not None else 1950.0, format="byear")
        return FK4NoETerms(equinox=eq) if system == "FK4-NO-E" else FK4(equinox=eq)
    if system in ("", "FK5", "GAPPT"):
        return FK5(equinox=Time(year if year is not None else 2000.0, format="jyear"))
    raise ValueError(f"RADESYS = {radesys!r} is not a frame xcube reads (ICRS, FK5, FK4, FK4-NO-E, GAPPT); pass "
                     "alt_coord (ICRS)")


def airmass(altitude_deg, apparent: bool = False) -> np.ndarray:
    """Airmass at altitude [deg] by Pickering (2002),
    ``1 / sin(h + 244 / (165 + 47 h^1.1))`` of the apparent altitude ``h``,
    which stays finite down to the horizon (plain sec z diverges); NaN below
    the horizon. ``altitude_deg`` is the geometric (airless) altitude, as
    astropy's ``AltAz`` without pressure gives it, raised to the apparent one
    by Saemundsson's refraction ``R = 1.02 / tan(h + 10.3 / (h + 5.11))``
    arcmin (10 C, 1010 hPa; 10' at 5 deg, 35' at the horizon), or already
    apparent with ``apparent``. A float64 numpy array of the shape of
    ``altitude_deg`` (0-d for a number). Eager."""
    h = np.asarray(altitude_deg, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if not apparent:
            h = h + 1.02 / np.tan(np.radians(h + 10.3 / (h + 5.11))) / 60.0
        x = 1.0 / np.sin(np.radians(h + 244.0 / (165.0 + 47.0 * np.abs(h) ** 1.1)))
    return np.where(np.asarray(altitude_deg, dtype=float) >= 0, x, np.nan)


def time_keywords(mjd_utc, coord=None, location=None) -> dict:
    """Per-frame time and pointing values (arrays over frames, eager).

    ``mjd_utc``: mid-exposure MJD in UTC; ``coord``: the target ``SkyCoord``
    (None: the HJD, BJD and pointing values are NaN); ``location``: an
    ``EarthLocation`` (default :func:`site_location`). Returns ``JD``,
    ``MJD`` (UTC), ``HJD`` (UTC, heliocentric), ``BJD_TDB`` (barycentric,
    with the site's light-travel time), ``ALT``, ``AZ`` [deg] and ``AIRMASS``.
    """
    import astropy.units as u
    from astropy.coordinates import AltAz
    from astropy.time import Time

    mjd = np.atleast_1d(np.asarray(mjd_utc, dtype=float))
    out = {"JD": mjd + 2400000.5, "MJD": mjd.copy()}
    nan = np.full(mjd.shape, np.nan)
    out.update(HJD=nan, BJD_TDB=nan.copy(), ALT=nan.copy(), AZ=nan.copy(), AIRMASS=nan.copy())
    good = np.isfinite(mjd)
    if coord is None or not good.any():
        return out
    location = location if location is not None else site_location()
    t = Time(mjd[good], format="mjd", scale="utc", location=location)
    out["HJD"] = _put(nan, good, (t.utc + t.light_travel_time(coord, "heliocentric")).jd)
    out["BJD_TDB"] = _put(nan, good, (t.tdb + t.light_travel_time(coord, "barycentric")).jd)
    altaz = coord.transform_to(AltAz(obstime=t, location=location))
    out["ALT"] = _put(nan, good, altaz.alt.to_value(u.deg))
    out["AZ"] = _put(nan, good, altaz.az.to_value(u.deg))
    out["AIRMASS"] = airmass(out["ALT"])
    return out


def _put(template, where, values) -> np.ndarray:
    out = template.copy()
    out[where] = values
    return out
