"""Times people can read: mission seconds as MJD, ISO 8601 UTC, datetime64
or ``astropy.time.Time``, and mission times on a common time axis.

Every xcube time (an event's ``time``, a light-curve bin, a detection's
``t_peak``) is seconds since the file's reference epoch MJDREF, counted in
the file's time system TIMESYS (TT for XMM-Newton, NuSTAR, Swift, NICER...,
TDB after barycentring). xcube readers add TIMEZERO when they open a file, so
the times of xcube objects already include it; a raw FITS header given as
the reference (:func:`time_reference`) has its TIMEZERO (and TIMEUNIT)
applied here.

:func:`times` converts any of them: ``to="mjd"`` (MJD in the file's own time
system, float64, resolution about 1 microsecond), ``"iso"`` (ISO 8601 strings
in UTC), ``"datetime64"`` (``datetime64[ns]`` in UTC) or ``"astropy"``
(``astropy.time.Time`` in the file's time scale). No conversion assumes TT:
the time system is always the file's TIMESYS.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["TIME_SYSTEMS", "TimeReference", "time_reference", "time_reference_frame", "times", "with_mjd",
           "add_time_columns", "tt_offset", "to_common_seconds", "mjd_tt", "TIME_COLUMNS", "check_same_reference"]

log = logging.getLogger("xcube.times")

TIME_SYSTEMS = ("TT", "TDB", "TAI", "UTC")
_ALIASES = {"TDT": "TT", "ET": "TT", "": "TT"}
_TARGETS = ("mjd", "iso", "datetime64", "astropy")
#: the columns :func:`add_time_columns` appends to a detection table
TIME_COLUMNS = ("mjd_start", "mjd_peak", "mjd_stop", "utc_peak")


def _scale(timesys, source="") -> str:
    ts = str(timesys or "TT").strip().upper()
    ts = _ALIASES.get(ts, ts)
    if ts not in TIME_SYSTEMS:
        raise ValueError(f"{source or 'light curve'}: TIMESYS={timesys!r} is not supported; expected one of "
                         f"{TIME_SYSTEMS}")
    return ts


# --------------------------------------------------------------------------- the reference of a file


@dataclass(frozen=True)
class TimeReference:
    """What turns mission seconds into absolute times: MJDREF = ``mjdrefi`` +
    ``mjdreff`` [d] (kept in two parts for full precision), the time system
    ``timesys`` (``"TT"``, ``"TDB"``, ``"TAI"`` or ``"UTC"``), ``timezero``
    [s] added to raw file times and ``unit`` [s per time unit] (1, or 86400
    for TIMEUNIT = 'd'). ``source`` names the object in messages."""

    mjdrefi: float
    mjdreff: float
    timesys: str = "TT"
    timezero: float = 0.0
    unit: float = 1.0
    source: str = ""

    def __post_init__(self):
        object.__setattr__(self, "timesys", _scale(self.timesys, self.source))

    @property
    def mjdref(self) -> float:
        """MJDREF [d] as one float64."""
        return float(np.float64(self.mjdrefi) + np.float64(self.mjdreff))

    def seconds(self, t) -> np.ndarray:
        """Seconds since MJDREF of times ``t`` in this reference's units
        (TIMEUNIT, TIMEZERO applied): float64 numpy array of ``t``'s shape. Eager."""
        return (np.asarray(t, np.float64) + self.timezero) * self.unit


#: the attrs of an xcube object that give its time reference (MJDREF and TIMESYS)
REFERENCE_KEYS = ("mjdrefi", "mjdreff", "mjdref", "timesys")


def reference_on_time(ds):
    """``ds`` (an xarray Dataset with a ``time`` coordinate) with the time
    reference of its attrs (:data:`REFERENCE_KEYS`) also on that coordinate,
    in place, so that a column (``lc["rate"]``) converts its times too.
    Returns ``ds``. Eager (attrs only)."""
    ref = {k: ds.attrs[k] for k in REFERENCE_KEYS if ds.attrs.get(k) is not None}
    if ref and "time" in ds.coords:
        ds["time"].attrs.update(ref)
    return ds


def _attrs_of(ref) -> dict | None:
    """The attrs (or header) holding a time reference, for xarray, pandas,
    astropy headers, dicts and objects with ``attrs``."""
    if ref is None:
        return None
    if isinstance(ref, TimeReference):
        return None
    header = getattr(ref, "header", None)
    if header is not None and hasattr(header, "keys"):
        return dict(header)
    if hasattr(ref, "keys") and not hasattr(ref, "attrs"):
        return dict(ref)
    attrs = getattr(ref, "attrs", None)
    if attrs is None:
        return None
    coords = getattr(ref, "coords", None)
    if not any(attrs.get(k) is not None for k in REFERENCE_KEYS) and coords is not None and "time" in coords:
        own = coords["time"].attrs  # a light-curve column: its time coordinate carries the reference
        if any(own.get(k) is not None for k in REFERENCE_KEYS):
            return dict(own, **{k: v for k, v in attrs.items() if k not in REFERENCE_KEYS})
    return dict(attrs)


def _is_header(attrs: dict) -> bool:
    return any(k in attrs for k in ("MJDREF", "MJDREFI", "TIMESYS", "TIMEZERO"))


def time_reference(ref, source: str = "") -> TimeReference:
    """The :class:`TimeReference` of ``ref``: an xcube object (EventList,
    light curve, image, cube, spectrum or detection table: its attrs
    ``mjdrefi``/``mjdreff`` or ``mjdref`` and ``timesys``; its times already
    include TIMEZERO), a FITS header or a dict of FITS keywords (MJDREFI +
    MJDREFF or MJDREF, TIMESYS, TIMEZERO, TIMEUNIT; raw file times, so
    TIMEZERO is applied), or a :class:`TimeReference`. ``ValueError`` naming
    the object when it has no MJDREF. Eager (attrs or header keywords only)."""
    if isinstance(ref, TimeReference):
        return ref
    attrs = _attrs_of(ref)
    if attrs is None:
        raise ValueError(f"{source or 'times'}: no time reference in {type(ref).__name__}; pass the EventList or "
                         "product the times belong to, e.g. xcube.times(lc['time'], lc) or xcube.times(t, events)")
    source = source or str(attrs.get("source") or attrs.get("path") or type(ref).__name__)
    if _is_header(attrs):
        from .io.fitsutil import header_float

        i = header_float(attrs, "MJDREFI", source)
        f = header_float(attrs, "MJDREFF", source, 0.0)
        if i is None:
            i, f = header_float(attrs, "MJDREF", source), 0.0
        unit = str(attrs.get("TIMEUNIT", "s") or "s").strip().lower()
        if unit not in ("s", "d"):
            raise ValueError(f"{source}: TIMEUNIT={unit!r} is not supported; expected 's' or 'd'")
        from .io.ogip import read_timezero

        ref = TimeReference(i, f, _scale(attrs.get("TIMESYS"), source), read_timezero(attrs, source),
                            86400.0 if unit == "d" else 1.0, source)
    elif attrs.get("mjdrefi") is not None:
        ref = TimeReference(float(attrs["mjdrefi"]), float(attrs.get("mjdreff", 0.0) or 0.0),
                            _scale(attrs.get("timesys"), source), source=source)
    elif "mjdref" in attrs:
        ref = TimeReference(attrs["mjdref"], 0.0, _scale(attrs.get("timesys"), source), source=source)
    else:
        raise ValueError(f"{source}: no MJDREF in its attrs (a bare coordinate or column does not carry one); pass "
                         "the EventList or product the times belong to, e.g. xcube.times(lc['time'], lc)")
    if ref.mjdrefi is None or not np.isfinite(float(ref.mjdrefi)):
        raise ValueError(f"{source}: no MJDREF (attrs 'mjdref' or header MJDREFI/MJDREFF); the times cannot be "
                         "placed on an absolute time scale - set it, e.g. obj.attrs['mjdref'] = 50814.0")
    return ref


# --------------------------------------------------------------------------- conversions


def _astropy(seconds: np.ndarray, ref: TimeReference):
    """``astropy.time.Time`` (two-double precision) in the reference's scale."""
    from astropy.time import Time, TimeDelta

    epoch = Time(float(ref.mjdrefi), float(ref.mjdreff), format="mjd", scale=ref.timesys.lower())
    return epoch + TimeDelta(seconds, format="sec")


def _mjd(seconds: np.ndarray, ref: TimeReference) -> np.ndarray:
    if ref.timesys == "UTC":  # elapsed SI seconds across leap seconds: let astropy count them
        t = _astropy(seconds, ref)
        return np.asarray(t.jd1 - 2400000.5, np.float64) + np.asarray(t.jd2, np.float64)
    return np.float64(ref.mjdrefi) + (np.float64(ref.mjdreff) + seconds / 86400.0)


def _datetime64(utc) -> np.ndarray:
    """``datetime64[ns]`` of UTC instants ``utc`` (``astropy.time.Time``).

    datetime64 has no leap seconds (astropy's ``.datetime64`` fails on
    ``23:59:60``): an instant inside a leap second becomes 23:59:59.999999999
    of its day, the last representable nanosecond before the next day, so the
    result never decreases with time. Non-finite times give NaT."""
    shape = np.shape(utc.jd1)
    jd1, jd2 = np.ravel(utc.jd1), np.ravel(utc.jd2)
    ok = np.isfinite(jd1) & np.isfinite(jd2)
    out = np.full(jd1.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    if ok.any():
        v = utc.ymdhms if ok.all() else utc[np.reshape(ok, shape)].ymdhms
        v = np.ravel(v)
        month = ((v["year"].astype(np.int64) - 1970) * 12 + v["month"] - 1).astype("datetime64[M]")
        day = month.astype("datetime64[D]") + (v["day"].astype(np.int64) - 1)
        ns = (v["hour"].astype(np.int64) * 3600 + v["minute"].astype(np.int64) * 60) * 10**9 \
            + np.round(v["second"] * 1e9).astype(np.int64)
        ns = np.minimum(ns, 86400 * 10**9 - 1)  # inside a leap second (second >= 60): end of the day
        out[ok] = day.astype("datetime64[ns]") + ns.astype("timedelta64[ns]")
    return out.reshape(shape)


def _convert(seconds: np.ndarray, ref: TimeReference, to: str, precision: int):
    if to == "mjd":
        return _mjd(seconds, ref)
    if to in ("iso", "datetime64"):  # non-finite times: NaT ("NaT" in ISO), not ERFA's year -4713 and warnings
        v = np.asarray(seconds, np.float64)
        ok = np.isfinite(v)
        if not ok.all():
            nat = "NaT" if to == "iso" else np.datetime64("NaT", "ns")
            out = np.full(v.shape, nat, dtype=object if to == "iso" else "datetime64[ns]")
            if ok.any():
                out[ok] = _convert(v[ok], ref, to, precision)
            return out if out.ndim else out[()]
    t = _astropy(seconds, ref)
    if to == "astropy":
        return t
    utc = t.utc
    if to == "datetime64":
        return _datetime64(utc)
    utc.precision = int(precision)
    return np.asarray(utc.isot, dtype=object)


def _values_and_ref(obj, ref):
    """(time values, the object whose attrs give the reference, a wrapper
    that puts converted values back into ``obj``'s container)."""
    import xarray as xr

    if isinstance(obj, xr.Dataset):
        if "time" not in obj.variables:
            raise ValueError(f"{obj.attrs.get('source', 'dataset')}: no 'time' variable or coordinate to convert")
        return _values_and_ref(obj["time"], obj if ref is None else ref)
    if isinstance(obj, xr.DataArray):
        source = obj if ref is None else ref

        def wrap(values, attrs):
            if not isinstance(values, np.ndarray):
                return values
            return xr.DataArray(values, dims=obj.dims, coords=obj.coords, name=obj.name, attrs=attrs)

        return obj.values, source, wrap
    if hasattr(obj, "index") and hasattr(obj, "to_numpy") and getattr(obj, "ndim", 0) == 1:  # pandas Series
        import pandas as pd

        return obj.to_numpy(dtype=np.float64), obj if ref is None else ref, (
            lambda v, a: pd.Series(v, index=obj.index, name=obj.name) if isinstance(v, np.ndarray) else v)
    return obj, ref, lambda v, a: v


def times(obj, ref=None, to: str = "mjd", *, precision: int = 3):
    """Absolute times of xcube times ``obj`` [s since MJDREF].

    Parameters
    ----------
    obj : a time coordinate or column (``lc["time"]``, ``ev["time"]``,
        ``table["t_peak"]``), an xcube object whose ``time`` is converted (an
        EventList or light curve), or numbers [s, mission time].
    ref : where MJDREF and TIMESYS come from when ``obj`` does not carry them
        in its attrs (a plain coordinate, numbers, a pandas column): the
        EventList or product the times belong to, a FITS header (raw file
        times: TIMEZERO and TIMEUNIT applied) or a :class:`TimeReference`.
    to : ``"mjd"`` (float64 MJD in the file's time system TIMESYS),
        ``"iso"`` (ISO 8601 strings, UTC, ``precision`` decimals of the
        second; a leap second reads ``23:59:60.xxx``), ``"datetime64"``
        (``datetime64[ns]``, UTC; datetime64 has no leap seconds, so an
        instant inside one is 23:59:59.999999999 of its day, and NaN is
        NaT) or ``"astropy"``
        (``astropy.time.Time`` in the file's time scale, e.g. ``tt``; convert
        with ``.utc``, ``.tdb``...).

    Returns the same container: a DataArray on the same dims and coords, a
    pandas Series on the same index, an array, or a scalar for a scalar
    (``"astropy"``: a ``Time``). Eager (reads a lazy column); ``"mjd"`` is
    float arithmetic except for TIMESYS = UTC, the others go through
    ``astropy.time`` (leap seconds from astropy's table).

    ``ValueError`` when no MJDREF can be found (it names the fix) or for an
    unsupported TIMESYS.
    """
    if to not in _TARGETS:
        raise ValueError(f"times: to={to!r}; use one of {_TARGETS}")
    values, source, wrap = _values_and_ref(obj, ref)
    reference = time_reference(source)
    scalar = np.ndim(values) == 0
    seconds = np.atleast_1d(reference.seconds(values))
    out = _convert(seconds, reference, to, precision)
    if scalar:
        return out[0]
    if to == "mjd":
        return wrap(out, {"units": "d", "long_name": f"MJD ({reference.timesys})", "timesys": reference.timesys})
    if to == "astropy":
        return out
    return wrap(out, {"long_name": "UTC", "timesys": "UTC"})


def with_mjd(obj, ref=None, *, utc: bool = True):
    """``obj`` (a light curve, cube or any xarray object with a ``time``
    coordinate [s]) with two more coordinates along ``time``: ``mjd``
    (float64 MJD in the file's TIMESYS, attrs ``units = 'd'``, ``timesys``)
    and, with ``utc``, ``utc`` (``datetime64[ns]``, UTC; a bin centre inside a
    leap second is 23:59:59.999999999 of its day), which the ``repr``
    shows as dates. ``ref`` as in :func:`times`. Eager on the time axis only
    (the data stay lazy); returns a new object."""
    if "time" not in obj.coords:
        raise ValueError(f"{obj.attrs.get('source', 'object')}: no 'time' coordinate to put MJDs on")
    reference = time_reference(obj if ref is None else ref)
    t = obj["time"]
    if t.ndim != 1:
        raise ValueError("with_mjd: the 'time' coordinate must be one-dimensional")
    seconds = reference.seconds(t.values)
    coords = {"mjd": (t.dims, _mjd(seconds, reference), {"units": "d", "timesys": reference.timesys,
                                                          "long_name": f"MJD ({reference.timesys}) of the bin centre"})}
    if utc:
        coords["utc"] = (t.dims, _convert(seconds, reference, "datetime64", 0), {"long_name": "UTC of the bin centre"})
    return obj.assign_coords(coords)


def add_time_columns(table, ref):
    """Append ``mjd_start``, ``mjd_peak``, ``mjd_stop`` (float64 MJD in the
    file's TIMESYS) and ``utc_peak`` (ISO 8601 UTC to the millisecond) to a
    detection table with ``t_start``, ``t_peak``, ``t_stop`` [s, mission time].

    ``ref`` is the EventList the table comes from (or its attrs, a FITS
    header, a :class:`TimeReference`; None when unknown). A missing time
    column or an unknown MJDREF gives NaN (and a missing ``utc_peak``; with a
    logged warning when ``ref`` has no MJDREF). Returns a new
    DataFrame; existing time columns are replaced in place; its ``attrs``
    get ``mjdref`` (and ``mjdrefi``/``mjdreff``) and ``timesys``, which
    Parquet keeps. Eager (small).
    """
    table = table.copy()
    reference = None
    if ref is not None:
        try:
            reference = time_reference(ref, source="detection table")
        except ValueError as exc:
            log.warning("%s; mjd_*/utc_peak columns left empty", exc)
    for name in ("start", "peak", "stop"):
        t = table.get(f"t_{name}")
        if reference is None or t is None:
            table[f"mjd_{name}"] = np.full(len(table), np.nan)
        else:
            table[f"mjd_{name}"] = _mjd(reference.seconds(t.to_numpy(np.float64)), reference)
    utc = np.full(len(table), None, dtype=object)
    t = table.get("t_peak")
    if reference is not None and t is not None and len(table):
        t = t.to_numpy(np.float64)
        ok = np.isfinite(t)
        if ok.any():
            utc[ok] = _convert(reference.seconds(t[ok]), reference, "iso", 3)
    table["utc_peak"] = utc
    if reference is not None:  # kept by Parquet (pandas attrs); the survey catalogue reads it back
        table.attrs.update(mjdrefi=float(reference.mjdrefi), mjdreff=float(reference.mjdreff),
                           mjdref=reference.mjdref, timesys=reference.timesys)
        timeref = time_reference_frame(ref)
        if timeref:  # where the times are measured (a barycentred list: SOLARSYSTEM)
            table.attrs["timeref"] = timeref
    return table


def time_reference_frame(ref) -> str | None:
    """TIMEREF of ``ref`` (attrs ``timeref`` of an xcube object, or the FITS
    keyword TIMEREF of a header or dict), upper case; None when not given.
    Eager (attrs only)."""
    attrs = _attrs_of(ref) or {}
    value = attrs.get("TIMEREF") if _is_header(attrs) else attrs.get("timeref")
    value = str(value or "").strip().upper()
    return value or None


# --------------------------------------------------------------------------- a common time axis (stitching)


def _reference(mjdref, timesys: str, source: str = "") -> TimeReference:
    """A :class:`TimeReference` for a (float or (int, frac)) MJDREF and TIMESYS."""
    if isinstance(mjdref, TimeReference):
        return mjdref
    if isinstance(mjdref, (tuple, list)):
        return TimeReference(float(mjdref[0]), float(mjdref[1]), timesys, source=source)
    whole = float(np.floor(float(mjdref)))
    return TimeReference(whole, float(mjdref) - whole, timesys, source=source)


def tt_offset(time, mjdref: float, timesys: str, source: str = "") -> np.ndarray:
    """Seconds to add to mission times ``time`` [s] (reference ``mjdref``,
    system ``timesys``) so that they count TT seconds from the same MJDREF
    read as TT. Zero for TT; from astropy otherwise (TDB: at the geocentre).

    ``time`` is elapsed SI seconds since MJDREF, as in :func:`times` (for
    UTC, leap seconds after MJDREF are counted, not 86400 s days). Returns a
    float64 numpy array [s] of ``time``'s shape. Eager."""
    ref = _reference(mjdref, _scale(timesys, source), source)
    time = np.asarray(time, np.float64)
    if ref.timesys == "TT" or time.size == 0:
        return np.zeros(time.shape)
    from astropy.time import Time, TimeDelta

    same = Time(float(ref.mjdrefi), float(ref.mjdreff), format="mjd", scale="tt") + TimeDelta(time, format="sec")
    return np.asarray((_astropy(time, ref).tt - same).sec, np.float64)


def to_common_seconds(time, mjdref, timesys: str, common_mjdref: float, source: str = "") -> np.ndarray:
    """Mission times [s since ``mjdref`` in ``timesys``, as in :func:`times`]
    as TT seconds since ``common_mjdref`` (TT MJD). ``mjdref``: MJD [d], or
    ``(MJDREFI, MJDREFF)`` for full precision (one float64 MJD rounds to
    ~0.6 microseconds). Eager, numpy: float64 of the shape of ``time`` (a Dask
    array is computed)."""
    time = np.asarray(time, np.float64)
    ref = _reference(mjdref, _scale(timesys, source), source)
    whole = float(np.floor(float(common_mjdref)))
    shift = ((ref.mjdrefi - whole) + (ref.mjdreff - (float(common_mjdref) - whole))) * 86400.0
    return time + shift + tt_offset(time, ref, timesys, source)


def mjd_tt(time, mjdref: float, timesys: str = "TT", source: str = "") -> np.ndarray:
    """MJD (TT) of mission times [s since ``mjdref`` in ``timesys``]; the
    conversion of :func:`times` (``to="astropy"``, then ``.tt``), float64
    (resolution about 1 microsecond): a numpy array [d] of ``time``'s shape.
    Eager."""
    ref = _reference(mjdref, _scale(timesys, source), source)
    time = np.asarray(time, np.float64)
    if ref.timesys == "TT" or time.size == 0:
        return _mjd(time, ref)
    t = _astropy(time, ref).tt
    return np.asarray(t.jd1 - 2400000.5, np.float64) + np.asarray(t.jd2, np.float64)


def _reference_key(obj) -> tuple:
    """(MJDREF [d] as text, TIMESYS) of an xcube object's times, MJDREF to full
    precision (MJDREFI + MJDREFF where the attrs keep both); "nan" without one."""
    a = obj.attrs
    if "mjdrefi" in a:
        mjd = float(np.float64(a["mjdrefi"]) + np.float64(a.get("mjdreff", 0.0)))
    else:
        mjd = float(a.get("mjdref", np.nan))
    return ("nan" if not np.isfinite(mjd) else repr(mjd)), str(a.get("timesys", "TT") or "TT").strip().upper()


def check_same_reference(objects, what: str) -> None:
    """``ValueError`` naming each object's source and reference unless all
    ``objects`` (EventLists, light curves) count their mission seconds from
    the same MJDREF in the same TIMESYS, as binning them on one time axis
    needs (:func:`xcube.stitch` converts instead). Eager, tiny."""
    keys = [_reference_key(o) for o in objects]
    if len(set(keys)) > 1:
        listed = "; ".join(f"{o.attrs.get('source', '<events>')}: MJDREF {k[0]} {k[1]}" for o, k in zip(objects, keys))
        raise ValueError(f"{what}: the cameras' times count from different references ({listed}); their mission "
                         "seconds cannot be binned together. Use each camera alone, or rewrite them on one "
                         "MJDREF/TIMESYS first")
