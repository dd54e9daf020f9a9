"""xcube.stitch: every bin once and in order, times converted through MJDREF
and TIMESYS across missions, GTIs merged; parallel extraction over files."""
from __future__ import annotations

import logging

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import xcube
from xcube.products import lightcurve_from_counts, stitch

XMM_REF, RXTE_REF = 50814.0, 49353.000696574076


def make_lc(t0, n, width, mjdref, *, timesys="TT", mission="XMM", obs_id="a", gaps=(), seed=0, lazy=False):
    """A light curve of n bins from mission time t0 [s]; the bin before each index in ``gaps`` is a GTI gap."""
    from xcube import gti as gtimod

    lo = t0 + width * np.arange(n)
    hi = lo + width
    edges = [0, *gaps, n]
    gti = (lo[edges[:-1]], np.array([lo[e - 1] if e < n else hi[-1] for e in edges[1:]]))
    counts = np.random.default_rng(seed).poisson(20, n)
    data = da.from_array(counts, chunks=max(n // 3, 1)) if lazy else counts
    c = xr.DataArray(data, dims="time", coords={"time": 0.5 * (lo + hi), "time_lo": ("time", lo),
                                                  "time_hi": ("time", hi),
                                                  "exposure": ("time", gtimod.exposure_per_bin(lo, hi, gti)),
                                                  "fracexp": ("time", gtimod.exposure_per_bin(lo, hi, gti) / width)})
    return lightcurve_from_counts(c, gti=gti, attrs={"mjdref": mjdref, "timesys": timesys, "mission": mission,
                                                     "obs_id": obs_id, "instrument": "X", "time_bin": width})


def test_every_bin_once_in_order_across_missions():
    # RXTE observation later than the XMM one, but listed first; XMM with 2 GTIs, RXTE with 3
    when_x = (55000.25 - XMM_REF) * 86400.0
    when_r = (55003.5 - RXTE_REF) * 86400.0
    x = make_lc(when_x, 40, 16.0, XMM_REF, obs_id="0123456789", gaps=(25,), seed=1)
    r = make_lc(when_r, 30, 16.0, RXTE_REF, mission="XTE", obs_id="10258-01-01-00", gaps=(10, 20), seed=2)
    with pytest.raises(ValueError):  # what users hit: the gti dimensions differ
        xr.concat([r, x], dim="time")
    s = stitch([r, x])
    assert s.sizes["time"] == 70
    assert np.all(np.diff(s["time"].values) > 0) and np.all(np.diff(s["mjd"].values) > 0)
    assert list(s["obs_id"].values[:40]) == ["0123456789"] * 40 and set(s["mission"].values[40:]) == {"XTE"}
    np.testing.assert_array_equal(s["counts"].values[:40], x["counts"].values)
    np.testing.assert_array_equal(s["counts"].values[40:], r["counts"].values)
    np.testing.assert_array_equal(s["mission_time"].values[40:], r["time"].values)
    assert s.attrs["mjdref"] == 55000.0 and s.attrs["timesys"] == "TT" and s.attrs["n_observations"] == 2
    # the first XMM bin centre is MJD 55000.25 + 8 s; the first RXTE one MJD 55003.5 + 8 s
    assert s["mjd"].values[0] == pytest.approx(55000.25 + 8 / 86400, abs=1e-10)
    assert s["mjd"].values[40] == pytest.approx(55003.5 + 8 / 86400, abs=1e-10)
    assert s["time"].values[40] == pytest.approx(3.5 * 86400 + 8.0, abs=1e-6)
    # a column converts its times too (the time coordinate carries the stitched MJDREF and TIMESYS)
    np.testing.assert_allclose(s["rate"].xcube.times().values, s["mjd"].values, rtol=0, atol=1e-9)
    assert s.sizes["gti"] == 5 and np.all(s["gti_start"].values[1:] > s["gti_stop"].values[:-1])
    assert int((s["exposure"].values == 0).sum()) == 3 and float(s["exposure"].max()) == 16.0


def test_same_instant_in_two_missions_lands_on_the_same_time():
    mjd = 56000.123456
    x = make_lc((mjd - XMM_REF) * 86400.0, 3, 1.0, XMM_REF, obs_id="x")
    r = make_lc((mjd - RXTE_REF) * 86400.0, 3, 1.0, RXTE_REF, obs_id="r", mission="XTE")
    s = stitch([x, r], mjdref=56000.0)
    np.testing.assert_allclose(s["time"].values[0::2], s["time"].values[1::2], atol=2e-6)  # float64 of 1e9 s
    assert s.sizes["time"] == 6  # overlapping bins of two observations are both kept


def test_utc_and_tdb_time_systems_are_converted_to_tt():
    # 2012-01-01 (MJD 55927): TT - UTC = 32.184 + 34 leap seconds
    u = make_lc(0.0, 2, 10.0, 55927.0, timesys="UTC", obs_id="u")
    s = stitch([u], mjdref=55927.0)
    assert s["time_lo"].values[0] == pytest.approx(66.184, abs=1e-6)
    assert s["mjd"].values[0] == pytest.approx(55927.0 + (5 + 66.184) / 86400, abs=1e-11)
    b = make_lc(0.0, 2, 10.0, 55927.0, timesys="TDB", obs_id="b")
    assert abs(float(stitch([b], mjdref=55927.0)["time_lo"].values[0])) < 2e-3  # TDB - TT < 2 ms
    with pytest.raises(ValueError, match="TIMESYS"):
        stitch([make_lc(0.0, 2, 10.0, 55927.0, timesys="GPS")])
    bad = make_lc(0.0, 2, 10.0, 55927.0)
    bad.attrs["mjdref"] = float("nan")
    with pytest.raises(ValueError, match="MJDREF"):
        stitch([bad])



def test_utc_seconds_are_elapsed_si_seconds_across_a_leap_second_as_in_xcube_times():
    """TIMESYS = 'UTC': seconds count elapsed SI seconds since MJDREF (xcube.times, docs); stitch read them
    as UTC day fractions and was 1 s off per leap second (MJDREF 56108 = 2012-06-30, which ends with one)."""
    u = make_lc(2 * 86400.0, 10, 10.0, 56108.0, timesys="UTC", obs_id="u")
    s = stitch([u], mjdref=56108.0)
    tt = xcube.times(u["time"], u, to="astropy").tt
    assert np.abs((s["mjd"].values - tt.mjd) * 86400.0).max() < 1e-5
    elapsed_tt = (tt - xcube.times(0.0, {"MJDREF": 56108.0, "TIMESYS": "TT"}, to="astropy")).sec
    np.testing.assert_allclose(s["time"].values, elapsed_tt, rtol=0, atol=1e-6)
    # TT - UTC was 66.184 s at MJDREF: the offset stays 66.184 s, the leap second lies inside the elapsed seconds
    np.testing.assert_allclose(s["time_lo"].values - u["time_lo"].values, 66.184, atol=1e-6)
    assert xcube.times(u["time_lo"][:1], u, to="iso").values[0] == "2012-07-01T23:59:59.000"  # 86401 + 86399 s


def test_lazy_inputs_stay_lazy_and_missing_variables_fill_with_nan():
    a = make_lc(1e8, 10, 5.0, XMM_REF, lazy=True, obs_id="a")
    b = make_lc(1.1e8, 10, 10.0, XMM_REF, obs_id="b")
    b["net_rate"] = b["rate"] - 1.0
    s = stitch([a, b])
    assert isinstance(s["counts"].data, da.Array)
    assert np.isnan(s["net_rate"].values[:10]).all() and np.isfinite(s["net_rate"].values[10:]).all()
    assert np.isnan(s.attrs["time_bin"])  # the inputs differ: 5 s and 10 s


def test_stitch_files_and_write_read_back(tmp_path):
    paths = [xcube.write_lightcurve(tmp_path / f"{i}.lc", make_lc(1e8 + i * 1e6, 20, 8.0, XMM_REF, obs_id=str(i),
                                                                   seed=i)) for i in range(3)]
    s = stitch([str(p) for p in paths[::-1]])
    assert list(dict.fromkeys(s["obs_id"].values)) == ["0", "1", "2"]
    out = xcube.write_lightcurve(tmp_path / "long.lc", s, columns={"MJD": s["mjd"].values,
                                                                   "OBS_ID": s["obs_id"].values})
    back = xcube.read_lightcurve(out)
    np.testing.assert_allclose(back["mjd"].values, s["mjd"].values)
    assert list(back["obs_id"].values[:2]) == ["0", "0"]
    np.testing.assert_array_equal(back["counts"].values, s["counts"].values)


def test_extract_lightcurves_in_parallel_and_skip_failures(make_event_file, tmp_path, caplog):
    files = [make_event_file(n=2000, t0=1e8 + i * 1e5, duration=1000.0, seed=i) for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="xcube.products"):
        lcs = xcube.extract_lightcurves([*map(str, files), str(tmp_path / "missing.fits")], 100.0,
                                        energy_band=(0.5, 2.0))
    assert len(lcs) == 3 and "missing.fits skipped" in caplog.text
    one = xcube.lightcurve(xcube.open_events(files[1]), 100.0, energy_band=(0.5, 2.0))
    np.testing.assert_array_equal(lcs[1]["counts"].values, one["counts"].values)
    s = stitch(lcs)
    assert s.sizes["time"] == 30 and s.attrs["n_lightcurves"] == 3
    tree = xcube.open_archive([str(f) for f in files])
    assert len(xcube.extract_lightcurves(tree, 100.0)) == 3
    with pytest.raises(OSError):
        xcube.extract_lightcurves([str(tmp_path / "missing.fits")], 100.0, errors="raise")


def test_two_cameras_of_one_observation_count_once_and_missions_are_named_alike(tmp_path):
    a = make_lc(1e8, 20, 8.0, XMM_REF, obs_id="0123456789", seed=1)
    b = make_lc(1e8, 20, 8.0, XMM_REF, obs_id="0123456789", seed=2)
    c = make_lc(2e8, 20, 8.0, XMM_REF, obs_id="", seed=3)
    s = stitch([a, b, c])
    assert s.attrs["n_observations"] == 2 and s.attrs["n_lightcurves"] == 3
    # a light-curve file of TELESCOP 'XMM' reads as the mission event lists name it
    path = xcube.write_lightcurve(tmp_path / "a.lc", a)
    assert xcube.read_lightcurve(path).attrs["mission"] == "XMM-Newton"


@pytest.mark.parametrize("from_file", [False, True])
def test_stitch_keeps_mjdref_in_two_parts(tmp_path, from_file):
    """NuSTAR's MJDREF = 55197 + 7.6601852e-4 d: one float64 MJD rounds it by
    1.7e-7 s; the stitched times use MJDREFI + MJDREFF (also read from an OGIP file)."""
    from astropy.time import Time
    from conftest import real_file

    from xcube.io.lightcurve_file import read_lightcurve
    from xcube.io.ogip import write_lightcurve

    ev = xcube.open_events(real_file("nustar", "barycenter_dummy_evt_nustar_B1937.evt"))
    lc = xcube.lightcurve(ev, 100.0).compute()
    if from_file:
        lc = read_lightcurve(write_lightcurve(tmp_path / "nu.lc", lc))
        assert (lc.attrs["mjdrefi"], lc.attrs["mjdreff"]) == (55197, pytest.approx(7.6601852e-4, rel=1e-12))
    st = stitch([lc])
    exact = (Time(55197, 7.6601852e-4 + lc["time"].values / 86400.0, format="mjd", scale="tt")
             - Time(st.attrs["mjdref"], format="mjd", scale="tt")).sec
    assert np.abs(st["time"].values - exact).max() < 8e-8


def test_overlapping_cameras_count_their_good_time_once_and_name_the_instruments(tmp_path):
    """Two cameras over the same 160 s: EXPOSURE is the 160 s covered, not
    320 s; INSTRUME and TELESCOP name the inputs (one shared, or all joined)."""
    from astropy.io import fits

    a = make_lc(1e8, 20, 8.0, XMM_REF, obs_id="0123456789", seed=1)
    b = make_lc(1e8, 20, 8.0, XMM_REF, obs_id="0123456789", seed=2).assign_attrs(instrument="EMOS2")
    a.attrs["instrument"] = "EMOS1"
    hdr = fits.getheader(xcube.write_lightcurve(tmp_path / "ab.lc", stitch([a, b])), "RATE")
    assert hdr["EXPOSURE"] == pytest.approx(160.0) and hdr["ONTIME"] == pytest.approx(160.0)
    assert hdr["INSTRUME"] == "EMOS1+EMOS2" and hdr["TELESCOP"] == "XMM"
    # bins in sequence keep the summed exposure (a 16 s gap before bin 10)
    c = make_lc(2e8, 20, 8.0, XMM_REF, mission="NuSTAR", obs_id="60001", gaps=(10,), seed=3)
    hdr = fits.getheader(xcube.write_lightcurve(tmp_path / "ac.lc", stitch([a, c])), "RATE")
    assert hdr["EXPOSURE"] == pytest.approx(160.0 + 152.0) and hdr["TELESCOP"] == "NUSTAR+XMM"
    assert hdr["INSTRUME"] == "EMOS1+X"


def test_units_are_kept_and_inputs_without_good_time_are_refused():
    """Sweep p26: stitch dropped the units of counts, rate, rate_err,
    exposure and fracexp; inputs without any good time gave a numpy error in
    `xcube stitch` after the file was written."""
    a, b = make_lc(1.0e8, 20, 10.0, XMM_REF, obs_id="a"), make_lc(2.0e8, 20, 10.0, XMM_REF, obs_id="b")
    for lc in (a, b):  # (as xcube.lightcurve gives them)
        lc["exposure"].attrs["units"], lc["fracexp"].attrs["units"] = "s", "1"
    out = stitch([a, b])
    for k in ("counts", "rate", "rate_err", "exposure", "fracexp"):
        assert out[k].attrs.get("units") == a[k].attrs["units"], k
    dead = a.assign_coords(exposure=a["exposure"] * 0, fracexp=a["fracexp"] * 0).assign_attrs(source="dead.lc")
    assert stitch([dead, b]).sizes["time"] == 40  # one input without good time among others: stitched
    with pytest.raises(ValueError, match=r"no bin of dead\.lc, light curve 1 has good time"):
        stitch([dead, dead.assign_attrs(source="")])


def test_stitch_command_writes_nothing_for_inputs_without_good_time(tmp_path, capsys):
    from xcube.cli import main
    from xcube.io.ogip import write_lightcurve

    a = make_lc(1.0e8, 20, 10.0, XMM_REF, obs_id="a")
    dead = a.assign_coords(exposure=a["exposure"] * 0, fracexp=a["fracexp"] * 0)
    path = write_lightcurve(tmp_path / "dead.lc", dead)
    assert main(["stitch", str(path), "--out", str(tmp_path / "s.lc")]) == 1
    err = capsys.readouterr().err
    assert "has good time" in err and "dead.lc" in err
    assert not (tmp_path / "s.lc").exists() and not (tmp_path / "products.parquet").exists()
