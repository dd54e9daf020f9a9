"""Mission profiles on generated OGIP event files with realistic headers, one
per mission: detection from TELESCOP/INSTRUME, column names and case quirks,
PI -> energy, GTI extensions (TIMEZERO, per-CCD tables, STDGTInn, Start/Stop),
MJDREFI + MJDREFF."""
import warnings

import numpy as np
import pytest

import xcube
from xcube.io.write_events import write_events_fits
from xcube.missions import GENERIC, detect, get_profile, profiles

T0 = 5.0e8
N = 400


def _times(rng, n=N, t0=T0, span=2000.0):
    return np.sort(t0 + rng.uniform(0.0, span, n))


def _sky(n, rng, lo, hi, dtype):
    return rng.integers(lo, hi, n).astype(dtype)


def _wcs(crval, crpix, cdelt_deg):
    return {
        "X": {"ctype": "RA---TAN", "crval": crval[0], "crpix": crpix, "cdelt": -cdelt_deg},
        "Y": {"ctype": "DEC--TAN", "crval": crval[1], "crpix": crpix, "cdelt": cdelt_deg},
    }


def open_quiet(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a known mission must open without warnings
        return xcube.open_events(path, **kw)


# ---------------------------------------------------------------- XMM-Newton

def test_xmm_pn_stdgti_per_ccd_without_ccdid(tmp_path):
    rng = np.random.default_rng(1)
    t = _times(rng)
    pi = rng.integers(150, 15000, N).astype(np.int16)
    cols = {"TIME": t, "RAWX": _sky(N, rng, 1, 65, np.int16), "RAWY": _sky(N, rng, 1, 201, np.int16),
            "X": _sky(N, rng, 20000, 30000, np.int32), "Y": _sky(N, rng, 20000, 30000, np.int32),
            "PHA": pi, "PI": pi, "FLAG": np.zeros(N, np.int32), "PATTERN": _sky(N, rng, 0, 13, np.uint8),
            "CCDNR": _sky(N, rng, 1, 13, np.uint8), "TIME_RAW": t - 1.0}
    # pn STDGTInn: the CCD comes from the digits (no CCDID keyword); CCD 12 starts 20 s late
    gtis = [(f"STDGTI{c:02d}", ([T0 + (20.0 if c == 12 else 0.0)], [T0 + 2000.0])) for c in range(1, 13)]
    hdr = {"TELESCOP": "XMM", "INSTRUME": "EPN", "DATAMODE": "IMAGING", "SUBMODE": "PrimeFullWindow",
           "OBS_ID": "0123456789", "EXPIDSTR": "S003", "MJDREF": 50814.0, "TIMESYS": "TT", "TIMEZERO": 0.0,
           "TSTART": T0, "TSTOP": T0 + 2000.0, "RA_PNT": 10.0, "DEC_PNT": -20.0, "PA_PNT": 45.0,
           "RADECSYS": "FK5", "EQUINOX": 2000.0}
    p = write_events_fits(tmp_path / "P0123456789PNS003PIEVLI0000.FIT", cols, header=hdr,
                          gti_extensions=gtis, wcs=_wcs((10.0, -20.0), 25921.0, 0.05 / 3600))
    ev = open_quiet(p)
    assert ev.attrs["profile"] == "xmm-pn" and ev.attrs["instrument"] == "EPN"
    assert get_profile("xmm-pn").screening == "PATTERN <= 4 && FLAG == 0"
    np.testing.assert_allclose(ev.energy.values, pi / 1000.0, rtol=1e-6)
    assert sorted(set(ev.ccd_gti_ccd.values.tolist())) == list(range(1, 13))
    ccd12 = ev.ccd_gti_ccd.values == 12
    assert ev.ccd_gti_start.values[ccd12][0] == T0 + 20.0
    # exposure uses the union over CCDs: the whole 2000 s
    assert ev.attrs["exposure"] == pytest.approx(2000.0)
    assert ev.attrs["gti_kind"] == "ccd-union"
    assert {"rawx", "rawy", "pha", "time_raw", "ccdnr"} <= set(ev.data_vars)
    assert ev.attrs["RADESYS"] == "FK5" and ev.attrs["EQUINOX"] == 2000.0


def test_xmm_mos_flare_gti_intersected_per_ccd(tmp_path):
    rng = np.random.default_rng(2)
    t = _times(rng)
    cols = {"TIME": t, "X": _sky(N, rng, 20000, 30000, np.int32), "Y": _sky(N, rng, 20000, 30000, np.int32),
            "PI": rng.integers(200, 12000, N).astype(np.int16), "FLAG": np.zeros(N, np.int32),
            "PATTERN": _sky(N, rng, 0, 13, np.uint8), "CCDNR": _sky(N, rng, 1, 8, np.uint8)}
    gtis = []
    for c in range(1, 8):
        gtis.append((f"STDGTI{c:02d}", ([T0], [T0 + 2000.0], {"CCDID": c})))
        # SAS flare filtering: GTI0<cc>0<n> tables with CCDID; here a 300 s flare cut out of every CCD
        gtis.append((f"GTI00{c - 1}06", ([T0, T0 + 800.0], [T0 + 500.0, T0 + 2000.0], {"CCDID": c})))
    hdr = {"TELESCOP": "XMM", "INSTRUME": "EMOS2", "MJDREF": 50814.0, "TSTART": T0, "TSTOP": T0 + 2000.0,
           "OBS_ID": "0123456789", "DATAMODE": "IMAGING", "SUBMODE": "PrimeFullWindow"}
    ev = open_quiet(write_events_fits(tmp_path / "m2.fits", cols, header=hdr, gti_extensions=gtis,
                                      wcs=_wcs((10.0, -20.0), 25921.0, 0.05 / 3600)))
    assert ev.attrs["profile"] == "xmm-mos2"
    assert get_profile("xmm-mos2").screening == "PATTERN <= 12 && FLAG == 0"
    np.testing.assert_array_equal(ev.gti_start.values, [T0, T0 + 800.0])
    np.testing.assert_array_equal(ev.gti_stop.values, [T0 + 500.0, T0 + 2000.0])
    assert ev.attrs["exposure"] == pytest.approx(1700.0)
    assert ev.sizes["ccd_gti"] == 14  # 7 CCDs x 2 intervals


# ---------------------------------------------------------------- Chandra

def test_chandra_acis_lower_case_columns_and_ccd_id_gtis(tmp_path):
    rng = np.random.default_rng(3)
    t = _times(rng)
    energy_ev = rng.uniform(300.0, 9000.0, N).astype(np.float32)
    pi = (energy_ev / 14.6).astype(np.int32) + 1  # CIAO definition of ACIS PI
    ccd = rng.choice([2, 3, 5, 6, 7, 8], N).astype(np.int16)
    cols = {
        "time": t,
        "ccd_id": ccd,
        "node_id": _sky(N, rng, 0, 4, np.int16),
        "expno": np.arange(N, dtype=np.int32),
        "chipx": _sky(N, rng, 1, 1025, np.int16),
        "chipy": _sky(N, rng, 1, 1025, np.int16),
        "x": rng.uniform(3000.0, 5000.0, N).astype(np.float32),
        "y": rng.uniform(3000.0, 5000.0, N).astype(np.float32),
        "pha": rng.integers(0, 4096, N).astype(np.int32),
        "energy": energy_ev,
        "pi": pi,
        "fltgrade": _sky(N, rng, 0, 256, np.int16),
        "grade": _sky(N, rng, 0, 7, np.int16),
        "status": np.zeros((N, 4), np.uint8),
    }
    # one GTI extension per chip, all named GTI, told apart by CCD_ID; chip 8 stops early
    gtis = [("GTI", ([T0 - 3.0], [T0 + (1500.0 if c == 8 else 2001.0)], {"CCD_ID": c})) for c in (2, 3, 5, 6, 7, 8)]
    hdr = {"TELESCOP": "CHANDRA", "INSTRUME": "ACIS", "DETNAM": "ACIS-235678", "DATAMODE": "FAINT",
           "READMODE": "TIMED", "TIMEDEL": 3.24104, "MJDREF": 50814.0, "TIMESYS": "TT", "TIMEZERO": 0.0,
           "TSTART": T0 - 3.0, "TSTOP": T0 + 2001.0, "OBS_ID": "1234", "OBJECT": "Cas A", "RA_PNT": 350.9,
           "DEC_PNT": 58.8, "ROLL_PNT": 100.0, "RADESYS": "ICRS"}
    p = write_events_fits(tmp_path / "acisf01234_repro_evt2.fits", cols, header=hdr, gti_extensions=gtis,
                          wcs={"x": _wcs((350.9, 58.8), 4096.5, 0.492 / 3600)["X"],
                               "y": _wcs((350.9, 58.8), 4096.5, 0.492 / 3600)["Y"]})
    ev = open_quiet(p)
    assert ev.attrs["profile"] == "chandra-acis" and ev.attrs["mission"] == "Chandra"
    assert {"time", "x", "y", "pi", "energy", "energy_ev", "ccd_id", "grade"} <= set(ev.data_vars)
    # energy from PI at the lower channel edge; within one channel of the file's own energy column
    np.testing.assert_allclose(ev.energy.values, 0.0146 * (pi - 1), rtol=1e-6)
    assert np.all(np.abs(ev.energy.values - ev.energy_ev.values / 1000.0) < 0.0146 + 1e-6)
    assert np.all(ev.energy.values <= ev.energy_ev.values / 1000.0 + 1e-6)
    assert sorted(set(ev.ccd_gti_ccd.values.tolist())) == [2, 3, 5, 6, 7, 8]
    assert ev.ccd_gti_stop.values[ev.ccd_gti_ccd.values == 8][0] == T0 + 1500.0
    assert ev.attrs["exposure"] == pytest.approx(2004.0)
    assert ev.attrs["CRPIX1"] == 4096.5 and ev.attrs["CDELT2"] == pytest.approx(0.492 / 3600)
    assert get_profile("chandra-acis").accepts_mode({"datamode": "FAINT"})
    assert not get_profile("chandra-acis").accepts_mode({"datamode": "CC33_FAINT"})


def test_chandra_hrc_has_no_energy_conversion(tmp_path):
    rng = np.random.default_rng(4)
    cols = {"time": _times(rng), "x": rng.uniform(1, 32768, N).astype(np.float32),
            "y": rng.uniform(1, 32768, N).astype(np.float32), "pi": rng.integers(0, 256, N).astype(np.int16)}
    hdr = {"TELESCOP": "CHANDRA", "INSTRUME": "HRC", "DETNAM": "HRC-I", "MJDREF": 50814.0,
           "TSTART": T0, "TSTOP": T0 + 2000.0}
    p = write_events_fits(tmp_path / "hrcf.fits", cols, header=hdr, gti=([T0], [T0 + 2000.0]))
    with pytest.warns(UserWarning, match=r"hrcf\.fits.*HRC has no PI-to-energy conversion.*energy is NaN"):
        ev = xcube.open_events(p)
    assert ev.attrs["profile"] == "chandra-hrc"
    assert np.isnan(ev.energy.values).all()
    np.testing.assert_array_equal(ev.pi.values, cols["pi"])


# ---------------------------------------------------------------- NuSTAR

def test_nustar_fpmb(tmp_path):
    rng = np.random.default_rng(5)
    pi = rng.integers(35, 1935, N).astype(np.int32)
    cols = {"TIME": _times(rng), "PI": pi, "GRADE": _sky(N, rng, 0, 27, np.int16),
            "DET_ID": _sky(N, rng, 0, 4, np.uint8), "X": _sky(N, rng, 1, 1001, np.int16),
            "Y": _sky(N, rng, 1, 1001, np.int16), "PHAS": np.zeros((N, 9), np.float32)}
    hdr = {"TELESCOP": "NuSTAR", "INSTRUME": "FPMB", "MJDREFI": 55197, "MJDREFF": 7.6601852e-4,
           "TIMEZERO": 0.0, "TSTART": T0, "TSTOP": T0 + 2000.0, "OBS_ID": "30101031002"}
    ev = open_quiet(write_events_fits(tmp_path / "nu30101031002B01_cl.evt", cols, header=hdr,
                                      gti=([T0], [T0 + 2000.0]), wcs=_wcs((294.9, 21.6), 500.5, 0.0006828076)))
    assert ev.attrs["profile"] == "nustar-fpmb"
    np.testing.assert_allclose(ev.energy.values, 1.6 + 0.04 * pi, rtol=1e-6)
    assert "phas" not in ev  # vector columns are skipped


# ---------------------------------------------------------------- NICER

def test_nicer_xti_timezero_no_sky_columns(tmp_path):
    rng = np.random.default_rng(6)
    t = _times(rng)
    pi = rng.integers(20, 1200, N).astype(np.int16)
    cols = {"TIME": t, "RAWX": _sky(N, rng, 0, 8, np.uint8), "RAWY": _sky(N, rng, 0, 7, np.uint8),
            "PHA": pi, "PHA_FAST": pi, "DET_ID": _sky(N, rng, 0, 68, np.uint8),
            "DEADTIME": np.full(N, 2e-5), "EVENT_FLAGS": np.full((N, 1), 24, np.uint8),
            "TICK": np.arange(N, dtype=np.int64), "MPU_A_TEMP": np.full(N, 30.0, np.float32),
            "MPU_UNDER_COUNT": np.zeros(N, np.int32), "PI_FAST": pi, "PI": pi, "PI_RATIO": np.ones(N, np.float32)}
    hdr = {"TELESCOP": "NICER", "INSTRUME": "XTI", "MJDREFI": 56658, "MJDREFF": 7.775925925925930e-4,
           "TIMESYS": "TT", "TIMEZERO": -1.0, "TSTART": T0, "TSTOP": T0 + 2000.0, "OBS_ID": "1012010101",
           "OBJECT": "PSR_B1937+21", "RA_NOM": 294.9, "DEC_NOM": 21.6}
    ev = open_quiet(write_events_fits(tmp_path / "ni1012010101_0mpu7_cl.evt", cols, header=hdr,
                                      gti=([T0, T0 + 1200.0], [T0 + 1000.0, T0 + 2000.0])))
    assert ev.attrs["profile"] == "nicer-xti"
    assert "x" not in ev and "y" not in ev and "CTYPE1" not in ev.attrs
    # TIMEZERO (-1 s) is added to the events and to the GTIs (copied into the GTI header)
    np.testing.assert_array_equal(ev.time.values, t - 1.0)
    np.testing.assert_array_equal(ev.gti_start.values, [T0 - 1.0, T0 + 1199.0])
    assert ev.attrs["tstart"] == T0 - 1.0
    np.testing.assert_allclose(ev.energy.values, 0.01 * pi, rtol=1e-6)
    with pytest.raises(KeyError, match=r"ni1012010101_0mpu7_cl\.evt: no sky WCS"):
        xcube.wcs(ev)
    assert ev.attrs["mjdrefi"] == 56658 and ev.attrs["mjdreff"] == 7.775925925925930e-4


# ---------------------------------------------------------------- Swift

def test_swift_xrt_pc(tmp_path):
    rng = np.random.default_rng(7)
    pi = rng.integers(30, 1000, N).astype(np.int32)
    cols = {"TIME": _times(rng), "X": _sky(N, rng, 1, 1001, np.int16), "Y": _sky(N, rng, 1, 1001, np.int16),
            "RAWX": _sky(N, rng, 0, 600, np.int16), "RAWY": _sky(N, rng, 0, 600, np.int16),
            "DETX": _sky(N, rng, 1, 601, np.int16), "DETY": _sky(N, rng, 1, 601, np.int16),
            "PHA": pi, "PI": pi, "GRADE": _sky(N, rng, 0, 13, np.int16), "PHAS": np.zeros((N, 9), np.int16),
            "STATUS": np.zeros((N, 2), np.uint8)}
    hdr = {"TELESCOP": "SWIFT", "INSTRUME": "XRT", "DATAMODE": "PHOTON", "MJDREFI": 51910,
           "MJDREFF": 7.428703703703703e-4, "TIMESYS": "TT", "TIMEZERO": 0.0, "TSTART": T0, "TSTOP": T0 + 2000.0,
           "OBS_ID": "00012345001"}
    ev = open_quiet(write_events_fits(tmp_path / "sw00012345001xpcw3po_cl.evt", cols, header=hdr,
                                      gti=([T0], [T0 + 2000.0]), wcs=_wcs((83.6, 22.0), 500.5, 6.548089e-4)))
    prof = get_profile(ev.attrs["profile"])
    assert prof.name == "swift-xrt" and prof.screening == "GRADE <= 12" and prof.frame_time == pytest.approx(2.5073)
    np.testing.assert_allclose(ev.energy.values, 0.01 * pi, rtol=1e-6)
    assert prof.accepts_mode({"datamode": "PHOTON"}) and not prof.accepts_mode({"datamode": "WINDOWED"})
    assert ev.attrs["mjdref"] == np.float64(51910) + np.float64(7.428703703703703e-4)


def _xrt_grades(tmp_path, name, datamode=None, n=3200):
    """A Swift XRT event file with GRADE 0..31 cycling (13/32 of the events
    have GRADE <= 12, 3/32 GRADE <= 2)."""
    rng = np.random.default_rng(13)
    t = _times(rng, n)
    cols = {"TIME": t, "PI": _sky(n, rng, 30, 1000, np.int32), "X": np.full(n, 500, np.int16),
            "Y": np.full(n, 500, np.int16), "GRADE": (np.arange(n) % 32).astype(np.int16)}
    hdr = {"TELESCOP": "SWIFT", "INSTRUME": "XRT", "MJDREFI": 51910, "MJDREFF": 7.428703703703703e-4,
           "TSTART": t[0] - 1, "TSTOP": t[-1] + 1}
    if datamode:
        hdr["DATAMODE"] = datamode
    return write_events_fits(tmp_path / name, cols, header=hdr, gti=([t[0] - 1], [t[-1] + 1]))


@pytest.mark.parametrize("name, datamode, expected", [
    ("wt.evt", "WINDOWED", "GRADE <= 2"),
    ("pc.evt", "PHOTON", "GRADE <= 12"),
    ("sw00012345001xwtw2po_cl.evt", None, "GRADE <= 2"),     # no DATAMODE: the file name's mode code
    ("sw00012345001xpcw3po_cl.evt", None, "GRADE <= 12"),
    ("sw01033716000msxwt_cl.evt", None, "GRADE <= 2"),       # TDRSS quick-look name
    ("plain.evt", None, "GRADE <= 12"),                       # unknown mode: PC's
])
def test_swift_xrt_screening_depends_on_the_data_mode(tmp_path, name, datamode, expected):
    from xcube.missions import screening_of
    from xcube.select import EventFilter, screening_expr, screening_expression

    ev = xcube.open_events(_xrt_grades(tmp_path, name, datamode), chunks=None)
    assert screening_of(ev) == screening_expression(ev) == expected
    assert screening_expr(ev, None, True, name) == expected  # the CLI's screening
    kept = EventFilter.for_events(ev, screening=True).mask({"grade": ev["grade"].values})
    assert kept.sum() == (3 * 100 if expected == "GRADE <= 2" else 13 * 100)
    from xcube.transients import bti

    assert bti.monitor_filter(ev).labels[0] == f"expr={expected}"


def test_xrt_wt_lc_cli_keeps_grades_0_to_2(tmp_path):
    from xcube.cli import main

    p = _xrt_grades(tmp_path, "wt.evt", "WINDOWED")
    out = tmp_path / "wt.lc"
    assert main(["lc", str(p), "--time-bin", "200", "-o", str(out)]) == 0
    assert int(xcube.read_lightcurve(out)["counts"].sum()) == 300


def test_mode_screening_is_a_profile_mechanism():
    import dataclasses

    prof = dataclasses.replace(get_profile("xmm-pn"), mode_screening=(("*TIMING*", "PATTERN <= 4"),))
    assert prof.screening_for({"datamode": "IMAGING", "submode": "PrimeFullWindow"}) == "PATTERN <= 4 && FLAG == 0"
    assert prof.screening_for({"datamode": "TIMING", "submode": "FastTiming"}) == "PATTERN <= 4"
    assert prof.screening_for({"datamode": "IMAGING", "submode": "TIMING_X"}) == "PATTERN <= 4"  # SUBMODE matches too
    assert prof.screening_for() == prof.screening


# ---------------------------------------------------------------- RXTE

def test_rxte_pca_xte_se_start_stop_and_no_energy(tmp_path):
    rng = np.random.default_rng(8)
    t = _times(rng, t0=1.0e8)
    pha = rng.integers(0, 256, N).astype(np.int16)
    cols = {"TIME": t, "PHA": pha, "PCUID": _sky(N, rng, 0, 5, np.uint8), "Event": np.zeros((N, 2), np.uint8)}
    tz = 3.37843167
    hdr = {"TELESCOP": "XTE", "INSTRUME": "PCA", "DATAMODE": "GoodXenon_2s", "MJDREFI": 49353,
           "MJDREFF": 6.965740740000000e-4, "TIMESYS": "TT", "TIMEZERO": tz, "TSTART": 1.0e8, "TSTOP": 1.0e8 + 2000.0,
           "OBS_ID": "10408-01-01-00"}
    p = write_events_fits(tmp_path / "FS4a_1234.evt", cols, header=hdr, events_extension="XTE_SE",
                          gti_extensions={"STDGTI": ([1.0e8], [1.0e8 + 1500.0])}, gti_columns=("Start", "Stop"))
    with pytest.warns(UserWarning, match=r"FS4a_1234\.evt: RXTE PCA.*no linear energy conversion.*energy is NaN"):
        ev = xcube.open_events(p)
    assert ev.attrs["profile"] == "rxte-pca"
    assert np.isnan(ev.energy.values).all()
    np.testing.assert_array_equal(ev.pi.values, pha)  # the channel column is kept (file PHA -> pi)
    np.testing.assert_array_equal(ev.time.values, t + tz)
    np.testing.assert_array_equal(ev.gti_start.values, [1.0e8 + tz])  # Start/Stop found, GTI TIMEZERO applied
    np.testing.assert_array_equal(ev.gti_stop.values, [1.0e8 + 1500.0 + tz])
    assert "x" not in ev
    with pytest.raises(ValueError, match="no linear PI-energy conversion"):
        get_profile("rxte-pca").pi_for_energy(5.0)


# ---------------------------------------------------------------- Insight-HXMT

@pytest.mark.parametrize(
    "inst, nchan, offset, width",
    [("LE", 1536, 0.1, 13.0), ("ME", 1024, 3.0, 60.0), ("HE", 256, 15.0, 370.0)],
)
def test_hxmt_energy_scales(tmp_path, inst, nchan, offset, width):
    rng = np.random.default_rng(9)
    pi = rng.integers(0, nchan, N).astype(np.int16)
    cols = {"TIME": _times(rng), "DET_ID": _sky(N, rng, 0, 18, np.uint8), "CHANNEL": pi, "PI": pi,
            "GRADE": _sky(N, rng, 0, 3, np.int16), "FLAG": np.zeros(N, np.uint8)}
    hdr = {"TELESCOP": "HXMT", "INSTRUME": inst, "MJDREFI": 55927, "MJDREFF": 7.6601852e-4, "TIMESYS": "TT",
           "TIMEZERO": 0.0, "TSTART": T0, "TSTOP": T0 + 2000.0, "OBS_ID": "P0101299001"}
    p = write_events_fits(tmp_path / f"{inst}_screen.fits", cols, header=hdr, events_extension="Events",
                          gti=([T0], [T0 + 2000.0]))
    ev = open_quiet(p)
    prof = get_profile(ev.attrs["profile"])
    assert prof.name == f"hxmt-{inst.lower()}" and prof.pi_range == (0, nchan - 1)
    np.testing.assert_allclose(ev.energy.values, offset + width * pi / nchan, rtol=1e-6)
    assert prof.pi_for_energy(offset + width) == pytest.approx(nchan)
    assert "x" not in ev


# ---------------------------------------------------------------- eROSITA

def test_erosita_per_module_gtis_and_float_pi(tmp_path):
    rng = np.random.default_rng(10)
    pi = rng.uniform(200.0, 9000.0, N).astype(np.float32)
    tm = rng.integers(1, 8, N).astype(np.uint8)
    cols = {"TIME": _times(rng), "RA": rng.uniform(80, 81, N), "DEC": rng.uniform(-70, -69, N),
            "X": rng.uniform(-1e4, 1e4, N), "Y": rng.uniform(-1e4, 1e4, N), "PI": pi,
            "PHA": rng.integers(0, 4000, N).astype(np.int16), "PAT_TYP": _sky(N, rng, 1, 5, np.int16),
            "PAT_INF": _sky(N, rng, 0, 255, np.uint8), "TM_NR": tm, "FLAG": np.zeros(N, np.int32),
            "FRAMETIME": _times(rng)}
    gtis = [(f"GTI{m}", ([T0 + m], [T0 + 1000.0 + m])) for m in range(1, 8)]
    hdr = {"TELESCOP": "eROSITA", "MISSION": "SRG", "INSTRUME": "merged", "DATAMODE": "FRAMESTORE",
           "FRAMETIM": 50.0, "MJDREF": 51543.875, "TIMESYS": "TT", "TIMEZERO": 0.0, "TSTART": T0,
           "TSTOP": T0 + 2000.0, "OBS_ID": "700000"}
    ev = open_quiet(write_events_fits(tmp_path / "em01_000000_020_EventList_c010.fits", cols, header=hdr,
                                      gti_extensions=gtis, wcs=_wcs((80.5, -69.5), 0.0, 0.05 / 3600)))
    assert ev.attrs["profile"] == "erosita"
    np.testing.assert_allclose(ev.energy.values, pi / 1000.0, rtol=1e-6)
    assert ev.pi.dtype == np.float32
    assert sorted(set(ev.ccd_gti_ccd.values.tolist())) == list(range(1, 8))
    np.testing.assert_array_equal(ev.gti_start.values, [T0 + 1.0])
    np.testing.assert_array_equal(ev.gti_stop.values, [T0 + 1007.0])
    assert get_profile("erosita").frame_time == 0.05


# ---------------------------------------------------------------- registry-wide checks

def test_unknown_mission_gets_generic_profile_with_warning(tmp_path):
    rng = np.random.default_rng(11)
    cols = {"TIME": _times(rng), "X": _sky(N, rng, 0, 100, np.int32), "Y": _sky(N, rng, 0, 100, np.int32),
            "PI": _sky(N, rng, 0, 100, np.int16)}
    p = write_events_fits(tmp_path / "foo.fits", cols, header={"TELESCOP": "EINSTEIN", "INSTRUME": "IPC",
                                                               "MJDREF": 43874.0, "TSTART": T0, "TSTOP": T0 + 2000.0},
                          gti=([T0], [T0 + 2000.0]))
    with pytest.warns(UserWarning, match=r"foo\.fits: UNKNOWN UNKNOWN: unknown mission, no PI-to-energy conv"):
        with pytest.warns(UserWarning, match=r"foo\.fits: unknown mission TELESCOP='EINSTEIN' INSTRUME='IPC'"):
            ev = xcube.open_events(p)
    assert ev.attrs["profile"] == "generic"
    # an explicit profile overrides detection
    ev = open_quiet(p, instrument="xmm-mos1")
    assert ev.attrs["profile"] == "xmm-mos1"
    np.testing.assert_allclose(ev.energy.values, cols["PI"] / 1000.0, rtol=1e-6)


def test_every_profile_is_documented_and_detectable():
    expected = {"xmm-pn", "xmm-mos1", "xmm-mos2", "chandra-acis", "chandra-hrc", "nustar-fpma", "nustar-fpmb",
                "nicer-xti", "swift-xrt", "rxte-pca", "hxmt-le", "hxmt-me", "hxmt-he", "erosita"}
    profs = profiles()
    assert expected <= set(profs)
    for name, prof in profs.items():
        assert prof.energy_note, name
        assert prof.pixel_arcsec >= 0 and prof.frame_time >= 0
        assert prof.has_sky == (prof.pixel_arcsec > 0), name
        instrume = prof.instrume[0].replace("?", "1").replace("*", "")
        got = detect({"TELESCOP": prof.telescop[0], "INSTRUME": instrume})
        assert got is prof, (name, got.name)
        if prof.pi_to_kev is not None and hasattr(prof.pi_to_kev, "kev_per_channel"):
            lo = prof.pi_range[0]
            assert prof.pi_for_energy(prof.energy(np.array([lo, lo + 100]))) == pytest.approx([lo, lo + 100], abs=1e-3)


def test_mjdref_full_precision(tmp_path):
    # MJDREFF carries 16 significant digits; the attrs keep both parts exactly and their float64 sum
    rng = np.random.default_rng(12)
    cols = {"TIME": _times(rng, 50), "PI": _sky(50, rng, 0, 1000, np.int16)}
    hdr = {"TELESCOP": "SWIFT", "INSTRUME": "XRT", "MJDREFI": 51910, "MJDREFF": 7.428703703703703e-4,
           "TSTART": T0, "TSTOP": T0 + 2000.0}
    ev = open_quiet(write_events_fits(tmp_path / "mjd.evt", cols, header=hdr, gti=([T0], [T0 + 2000.0])))
    assert ev.attrs["mjdrefi"] == 51910
    assert ev.attrs["mjdreff"] == 7.428703703703703e-4
    assert ev.attrs["mjdref"] == np.float64(51910) + np.float64(7.428703703703703e-4)
    # an observation-wide time from the two parts agrees with astropy's two-part Time to < 1 us
    from astropy.time import Time

    exact = Time(51910, 7.428703703703703e-4, format="mjd", scale="tt")
    assert abs((Time(ev.attrs["mjdref"], format="mjd", scale="tt") - exact).sec) < 1e-6
    assert GENERIC.name == "generic"
