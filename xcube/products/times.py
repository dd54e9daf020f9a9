"""Mission times to a common time axis: MJD in TT, and seconds from a common
MJDREF. Mission time [s] + MJDREF [d] in the file's TIMESYS (TT, TDB, TAI or
UTC) is converted with astropy at the edges; within TT only float arithmetic
is needed (exact to the float64 resolution of the inputs)."""
from __future__ import annotations

import numpy as np

__all__ = ["TIME_SYSTEMS", "tt_offset", "to_common_seconds", "mjd_tt"]

TIME_SYSTEMS = ("TT", "TDB", "TAI", "UTC")
_ALIASES = {"TDT": "TT", "ET": "TT", "": "TT"}


def _scale(timesys, source="") -> str:
    ts = str(timesys or "TT").strip().upper()
    ts = _ALIASES.get(ts, ts)
    if ts not in TIME_SYSTEMS:
        raise ValueError(f"{source or 'light curve'}: TIMESYS={timesys!r} is not supported; expected one of "
                         f"{TIME_SYSTEMS}")
    return ts


def tt_offset(time, mjdref: float, timesys: str, source: str = "") -> np.ndarray:
    """Seconds to add to mission times ``time`` [s] (reference ``mjdref``,
    system ``timesys``) so that they count TT seconds from the same MJDREF
    read as TT. Zero for TT; from astropy otherwise (TDB: at the geocentre)."""
    scale = _scale(timesys, source)
    time = np.asarray(time, np.float64)
    if scale == "TT" or time.size == 0:
        return np.zeros(time.shape)
    from astropy.time import Time

    t = Time(np.full(time.shape, float(mjdref)), time / 86400.0, format="mjd", scale=scale.lower())
    same = Time(np.full(time.shape, float(mjdref)), time / 86400.0, format="mjd", scale="tt")
    return np.asarray((t.tt - same).sec, np.float64)


def to_common_seconds(time, mjdref: float, timesys: str, common_mjdref: float, source: str = "") -> np.ndarray:
    """Mission times [s] as TT seconds since ``common_mjdref`` (TT MJD)."""
    time = np.asarray(time, np.float64)
    return time + (float(mjdref) - float(common_mjdref)) * 86400.0 + tt_offset(time, mjdref, timesys, source)


def mjd_tt(time, mjdref: float, timesys: str = "TT", source: str = "") -> np.ndarray:
    """MJD (TT) of mission times [s]; float64 (resolution about 1 microsecond)."""
    time = np.asarray(time, np.float64)
    return float(mjdref) + (time + tt_offset(time, mjdref, timesys, source)) / 86400.0
