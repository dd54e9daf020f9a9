"""xcube.times: mission seconds -> MJD / ISO UTC / datetime64 / astropy Time in
the file's own time system; MJD coordinates; time columns of detection tables;
``xcube info`` in the file's TIMESYS."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from astropy.time import Time, TimeDelta

import xcube
from xcube.cli import main
from xcube.times import TIME_COLUMNS, TimeReference, add_time_columns, time_reference, with_mjd

NUSTAR = {"MJDREFI": 55197, "MJDREFF": 7.6601852e-4, "TIMESYS": "TT"}


def test_times_of_an_event_list_in_every_form(make_event_file):
    ev = xcube.open_events(make_event_file(n=50, t0=2.0e8, duration=1000.0))
    t = ev["time"].values
    mjd = xcube.times(ev["time"], ev)  # a column with its event list
    assert isinstance(mjd, xr.DataArray) and mjd.dims == ("event",) and mjd.attrs["timesys"] == "TT"
    np.testing.assert_allclose(mjd.values, 50814.0 + t / 86400.0, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(xcube.times(ev).values, mjd.values)  # the EventList itself: its time
    ref = Time(50814.0, format="mjd", scale="tt") + TimeDelta(t, format="sec")
    iso = xcube.times(ev["time"], ev, to="iso")
    assert list(iso.values) == list(ref.utc.isot)  # UTC, millisecond precision
    dt64 = xcube.times(ev["time"], ev, to="datetime64")
    assert dt64.dtype == np.dtype("datetime64[ns]")
    assert abs((dt64.values[0] - np.datetime64(ref[0].utc.isot)) / np.timedelta64(1, "ms")) < 1
    at = xcube.times(ev["time"], ev, to="astropy")
    assert isinstance(at, Time) and at.scale == "tt" and np.allclose((at - ref).sec, 0, atol=1e-6)
    # a number with its event list, and a pandas column
    assert xcube.times(float(t[0]), ev, to="iso") == ref[0].utc.isot
    s = xcube.times(pd.Series(t[:3], index=[7, 8, 9]), ev)
    assert isinstance(s, pd.Series) and list(s.index) == [7, 8, 9]


def test_no_conversion_assumes_tt():
    """A UTC file's time zero is its MJDREF in UTC; a TDB file's differs from TT by the TDB-TT term."""
    utc = {"MJDREF": 51544.0, "TIMESYS": "UTC"}
    assert xcube.times(0.0, utc, to="iso") == "2000-01-01T00:00:00.000"
    # 17 years later, elapsed SI seconds cross 4 leap seconds: UTC is counted, not assumed 86400 s days
    assert xcube.times(86400.0 * 6210, utc, to="iso") == "2016-12-31T23:59:56.000"
    tt = xcube.times(0.0, {"MJDREF": 51544.0, "TIMESYS": "TT"}, to="astropy")
    tdb = xcube.times(0.0, {"MJDREF": 51544.0, "TIMESYS": "TDB"}, to="astropy")
    assert tt.scale == "tt" and tdb.scale == "tdb"
    assert abs((tdb.utc - tt.utc).sec) < 2e-3 and (tdb.utc - tt.utc).sec != 0.0
    assert xcube.times(0.0, {"MJDREF": 51544.0, "TIMESYS": "TT"}, to="iso") == "1999-12-31T23:58:55.816"
    with pytest.raises(ValueError, match="TIMESYS"):
        xcube.times(0.0, {"MJDREF": 51544.0, "TIMESYS": "GPS"})


def test_header_reference_applies_timezero_and_timeunit_and_keeps_mjdref_precision():
    ref = time_reference(dict(NUSTAR, TIMEZERO=-1.0))
    assert ref.mjdrefi == 55197 and ref.mjdreff == pytest.approx(7.6601852e-4) and ref.timezero == -1.0
    mjd = xcube.times(1.0, dict(NUSTAR, TIMEZERO=-1.0))  # raw TIME 1 s + TIMEZERO -1 s = MJDREF
    assert mjd == pytest.approx(55197.00076601852, abs=1e-12)
    days = xcube.times(0.5, {"MJDREF": 50000.0, "TIMEUNIT": "d"})
    assert days == pytest.approx(50000.5)
    # precision: float64 MJD resolves about a microsecond (steps of 0.6 us at MJD 6e4)
    a, b = xcube.times(np.array([5e8, 5e8 + 1e-5]), NUSTAR)
    assert (b - a) * 86400.0 == pytest.approx(1e-5, rel=0.1)


def test_missing_reference_says_what_to_pass(make_event_file):
    lc = xcube.lightcurve(xcube.open_events(make_event_file(n=50)), 500.0)
    with pytest.raises(ValueError, match=r"xcube.times\(lc\['time'\], lc\)"):
        xcube.times(lc["time"].drop_attrs())  # a bare coordinate carries no MJDREF
    assert xcube.times(lc["time"], lc).sizes == lc["time"].sizes
    # the light curve's own time coordinate (and so each column) carries MJDREF and TIMESYS
    np.testing.assert_array_equal(xcube.times(lc["time"]).values, xcube.times(lc["time"], lc).values)
    with pytest.raises(ValueError, match="to="):
        xcube.times(lc, to="jd")
    with pytest.raises(ValueError, match="no MJDREF"):
        xcube.times(0.0, {"mjdref": float("nan")})


def test_light_curve_and_cube_carry_mjd_and_show_utc(make_event_file):
    ev = xcube.open_events(make_event_file(n=200, t0=2.0e8, duration=1000.0))
    lc = xcube.lightcurve(ev, 100.0, mjd=True)
    assert lc["mjd"].attrs["units"] == "d" and lc["mjd"].attrs["timesys"] == "TT"
    np.testing.assert_allclose(lc["mjd"].values, 50814.0 + lc["time"].values / 86400.0, atol=1e-10)
    assert lc["utc"].dtype == np.dtype("datetime64[ns]")
    assert re.search(r"utc +\(time\) datetime64\[ns\] .*2004-05-03T", repr(lc))  # dates, not 2e+08
    cube = with_mjd(xcube.bin_events(ev, time=250.0))
    assert cube["mjd"].dims == ("time",) and cube.sizes["time"] == 4
    with pytest.raises(ValueError, match="no 'time' coordinate"):
        with_mjd(xr.DataArray([1.0], dims="x", attrs={"mjdref": 1.0}))


def test_add_time_columns_to_a_detection_table():
    table = pd.DataFrame({"t_start": [1.0e8, np.nan], "t_peak": [1.0e8 + 50, np.nan], "t_stop": [1.0e8 + 100, 3.0]})
    out = add_time_columns(table, {"mjdref": 50814.0, "timesys": "TT"})
    assert list(out.columns[-4:]) == list(TIME_COLUMNS) and out["mjd_peak"].dtype == np.float64
    assert out["mjd_start"][0] == pytest.approx(50814.0 + 1e8 / 86400.0, abs=1e-10)
    assert out["utc_peak"][0] == xcube.times(1.0e8 + 50, {"mjdref": 50814.0}, to="iso")
    assert np.isnan(out["mjd_peak"][1]) and pd.isna(out["utc_peak"][1])
    assert out.attrs["timesys"] == "TT" and out.attrs["mjdref"] == 50814.0
    empty = add_time_columns(table.iloc[:0], TimeReference(50814, 0.0, "TT"))
    assert list(empty.columns[-4:]) == list(TIME_COLUMNS) and len(empty) == 0
    unknown = add_time_columns(table, {})  # no reference: NaN, not an error
    assert unknown["mjd_peak"].isna().all()


def test_xcube_info_uses_the_files_time_system(make_event_file, capsys):
    """Time zero of a UTC file is MJDREF in UTC; ``xcube info`` used to read every file as TT (64 s off)."""
    tt = make_event_file(n=5, t0=0.0, duration=0.5, header={"MJDREF": 51544.0, "TIMESYS": "TT"})
    utc = make_event_file(n=5, t0=0.0, duration=0.5, header={"MJDREF": 51544.0, "TIMESYS": "UTC"})
    assert main(["info", str(utc)]) == 0
    text = capsys.readouterr().out
    assert re.search(r"UTC 2000-01-01T00:00:00\.\d{3} - ", text) and "MJDREF 51544.0 UTC" in text
    assert main(["info", str(tt)]) == 0
    text = capsys.readouterr().out
    assert re.search(r"UTC 1999-12-31T23:58:5[56]\.\d{3} - ", text) and "MJDREF 51544.0 TT" in text


def test_xcube_times_stays_the_function_when_its_module_is_imported():
    import sys

    import xcube.transients.search  # noqa: F401  (imports xcube.times, the module)

    assert callable(xcube.times) and xcube.times is sys.modules["xcube.times"].times
    assert callable(xcube.with_mjd) and callable(xcube.read_gti)


def _leap_second_seconds(ref: dict) -> float:
    """Mission seconds [ref] of 2016-12-31T23:59:60.000 UTC (the leap second)."""
    epoch = Time(ref["MJDREFI"], ref["MJDREFF"], format="mjd", scale=ref["TIMESYS"].lower())
    return float((Time("2016-12-31T23:59:60", scale="utc") - epoch).sec)


def test_datetime64_of_a_time_inside_a_leap_second(make_event_file):
    """datetime64 has no 23:59:60: astropy's .datetime64 raised ('Seconds out of range'); such an instant
    is the last nanosecond of its day, so datetime64 never decreases; ISO keeps 23:59:60."""
    swift = {"MJDREFI": 51910, "MJDREFF": 7.428703703703703e-4, "TIMESYS": "TT"}
    tl = _leap_second_seconds(swift)
    t = np.array([tl - 0.5, tl, tl + 0.25, tl + 0.999, tl + 1.0, tl + 1.5])
    dt = xcube.times(t, swift, to="datetime64")
    assert dt.dtype == np.dtype("datetime64[ns]")
    assert list(dt.astype(str)) == ["2016-12-31T23:59:59.500000000"] + ["2016-12-31T23:59:59.999999999"] * 3 + [
        "2017-01-01T00:00:00.000000000", "2017-01-01T00:00:00.500000000"]
    assert list(xcube.times(t[1:3], swift, to="iso")) == ["2016-12-31T23:59:60.000", "2016-12-31T23:59:60.250"]
    grid = np.linspace(tl - 3, tl + 3, 6001)
    assert np.all(np.diff(xcube.times(grid, swift, to="datetime64").astype(np.int64)) >= 0)
    # elsewhere the same nanoseconds as astropy's own datetime64; NaN -> NaT
    other = np.array([0.0, 1.234567891e8, 5.0e8 + 1e-9])
    ref = Time(51910, 7.428703703703703e-4, format="mjd", scale="tt") + TimeDelta(other, format="sec")
    np.testing.assert_array_equal(xcube.times(other, swift, to="datetime64"), ref.utc.datetime64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # erfa on NaN
        assert np.isnat(xcube.times(np.array([np.nan, 0.0]), swift, to="datetime64")[0])
    # a light curve across the leap second, with MJD and UTC coordinates
    ev = xcube.open_events(make_event_file(n=2000, t0=np.floor(tl) - 100, duration=200.0,
                                           header={**swift, "MJDREF": None}))
    lc = xcube.lightcurve(ev, 1.0, mjd=True)
    assert lc["utc"].dtype == np.dtype("datetime64[ns]") and np.all(np.diff(lc["utc"].values) >= np.timedelta64(0))
    assert np.datetime64("2016-12-31T23:59:59.999999999") in lc["utc"].values
    assert with_mjd(lc)["utc"].sizes == lc["time"].sizes


def test_non_finite_times_are_nat_in_iso_too():
    """to="iso" turned NaN/inf into '-4713-11-24T-2147483648:...' with ERFA warnings; datetime64 gave NaT."""
    ref = {"mjdref": 50814.0, "timesys": "TT"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        iso = xcube.times(np.array([7e8, np.nan, np.inf]), ref, to="iso")
        dt = xcube.times(np.array([7e8, np.nan, -np.inf]), ref, to="datetime64")
        one = xcube.times(np.nan, ref, to="iso")
    assert iso[0] == xcube.times(np.array([7e8]), ref, to="iso")[0] and list(iso[1:]) == ["NaT", "NaT"]
    assert not np.isnat(dt[0]) and np.isnat(dt[1:]).all()
    assert one == "NaT"


def test_split_timezero_of_event_files_and_headers(make_event_file):
    """TIMEZERI + TIMEZERF (the split TIMEZERO, as MJDREFI/MJDREFF) was ignored by the event reader and by
    times(t, header), while the light-curve and GTI readers applied it: the same header placed 1.25 s apart."""
    from astropy.io import fits

    plain = make_event_file(n=50, name="plain.fits")
    split = plain.with_name("split.fits")
    with fits.open(plain) as hdul:
        for h in hdul:
            h.header.pop("TIMEZERO", None)
            h.header["TIMEZERI"], h.header["TIMEZERF"] = 1, 0.25
        hdul.writeto(split)
    a, b = xcube.open_events(plain), xcube.open_events(split)
    np.testing.assert_allclose(b["time"].values - a["time"].values, 1.25, rtol=0, atol=1e-9)
    np.testing.assert_allclose(b["gti_start"].values - a["gti_start"].values, 1.25, rtol=0, atol=1e-9)
    hdr = fits.Header({"MJDREF": 50814.0, "TIMESYS": "TT", "TIMEZERI": 1, "TIMEZERF": 0.25})
    np.testing.assert_allclose(xcube.times(np.array([0.0]), hdr), 50814.0 + 1.25 / 86400.0, rtol=0, atol=1e-12)
