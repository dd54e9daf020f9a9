"""write_events keeps what the products read: open(write(open(f))) gives the
same spectrum (counts, EXPOSURE and its dead-time fraction), light curve and
GTIs as open(f). The dead-time keywords of the event header (NuSTAR DEADC,
LIVETIME/ONTIME, XMM EPIC LIVETInn/ONTIMEnn, Chandra ACIS LIVTIMEn/ONTIMEn)
and every per-CCD / per-module GTI table under the mission's own name
(XMM STDGTInn + CCDID, Chandra GTI + CCD_ID, eROSITA GTIn) are written back."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits
from conftest import real_file, write_acis_events

import xcube
from xcube.io.write_events import write_events

T0 = 5.0e8


def _open(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xcube.open_events(path)


def _round_trip(path, tmp_path):
    ev = _open(path)
    out = write_events(tmp_path / f"rt_{path.name}", ev)
    return ev, _open(out), out


def _assert_same_products(a, b, **spectrum_kw):
    for v in ("gti_start", "gti_stop", "ccd_gti_ccd", "ccd_gti_start", "ccd_gti_stop"):
        assert (v in a) == (v in b), v
        if v in a:
            np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=v)
    assert a.attrs["gti_kind"] == b.attrs["gti_kind"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sa, sb = xcube.spectrum(a, **spectrum_kw), xcube.spectrum(b, **spectrum_kw)
        la, lb = xcube.lightcurve(a, 100.0), xcube.lightcurve(b, 100.0)
    np.testing.assert_array_equal(sa["counts"].values, sb["counts"].values)
    assert sb.attrs["exposure"] == pytest.approx(sa.attrs["exposure"], rel=1e-12)
    for k in ("ontime", "deadc"):
        assert (sb.attrs.get(k) is None) == (sa.attrs.get(k) is None), k
        if sa.attrs.get(k) is not None:
            assert sb.attrs[k] == pytest.approx(sa.attrs[k], rel=1e-12), k
    assert sb.attrs.get("deadc_from") == sa.attrs.get("deadc_from")
    for v in ("counts", "exposure", "fracexp"):
        np.testing.assert_array_equal(la[v].values, lb[v].values, err_msg=v)
    return sa, sb


def _lc_deadc(events, path):
    """DEADC (the event file's live fraction, not applied) of the light curve written from ``events``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xcube.write_lightcurve(path, xcube.lightcurve(events, 100.0))
    return fits.getheader(path, 1).get("DEADC")


def test_nustar_round_trip_keeps_deadc(tmp_path):
    ev, back, out = _round_trip(real_file("nustar", "barycenter_dummy_evt_nustar_B1937.evt"), tmp_path)
    sa, sb = _assert_same_products(ev, back)
    assert sa.attrs["deadc_from"] == "DEADC" and sb.attrs["exposure"] == pytest.approx(38221.4331837686)
    head = fits.getheader(out, "EVENTS")
    assert head["DEADC"] == pytest.approx(0.930582820848004, rel=1e-15)
    assert head["LIVETIME"] == pytest.approx(38221.4331837686, rel=1e-15)
    assert _lc_deadc(back, tmp_path / "b.lc") == pytest.approx(_lc_deadc(ev, tmp_path / "a.lc"), rel=1e-12)


def test_xmm_mos_round_trip_keeps_per_ccd_live_time(tmp_path):
    ev, back, out = _round_trip(real_file("xmm", "xga_0201901401_mos1_exp1_clean_evts.fits"), tmp_path)
    sa, sb = _assert_same_products(ev, back)
    assert sb.attrs["deadc_from"] == "LIVETI01/ONTIME01 (CCD 1)"
    assert sb.attrs["exposure"] == pytest.approx(5006.56608128548, rel=1e-12)
    # the frame of the sky coordinates is kept (without it an FK5 file reads back as ICRS, the FITS default)
    assert (back.attrs["RADESYS"], back.attrs["EQUINOX"]) == (ev.attrs["RADESYS"], ev.attrs["EQUINOX"])
    with fits.open(out) as h:
        assert [x.name for x in h[2:]] == [f"STDGTI{c:02d}" for c in range(1, 8)]
        assert [x.header["CCDID"] for x in h[2:]] == list(range(1, 8))
        for c in range(1, 8):
            assert f"LIVETI{c:02d}" in h["EVENTS"].header and f"ONTIME{c:02d}" in h["EVENTS"].header


def _acis(path):
    """Chandra ACIS evt2 with chips 7 and 6, each its own GTI (+ CCD_ID) and
    LIVTIMEn/ONTIMEn; chip 6's events run over the whole observation, so some
    lie outside its own good time (the spectrum drops them)."""
    rng = np.random.default_rng(7)
    g7, g6 = ([T0], [T0 + 7500.0]), ([T0 + 500.0], [T0 + 3440.0])
    n7, n6 = 3000, 2000
    t = np.sort(np.concatenate([rng.uniform(T0, T0 + 7500.0, n7), rng.uniform(T0, T0 + 7500.0, n6)]))
    ccd = rng.permutation(np.r_[np.full(n7, 7), np.full(n6, 6)]).astype(np.int16)
    cols = [fits.Column("time", "D", array=t), fits.Column("ccd_id", "I", array=ccd),
            fits.Column("x", "E", array=np.where(ccd == 6, rng.uniform(5000, 6000, t.size),
                                                 rng.uniform(3000, 5000, t.size)).astype(np.float32)),
            fits.Column("y", "E", array=rng.uniform(3000, 5000, t.size).astype(np.float32)),
            fits.Column("pi", "J", array=rng.integers(30, 600, t.size).astype(np.int32))]
    write_acis_events(path, cols, dict(TELESCOP="CHANDRA", INSTRUME="ACIS", OBS_ID="1234", MJDREF=50814.0,
                                       TIMESYS="TT", TSTART=T0, TSTOP=T0 + 7500.0, DATAMODE="FAINT", ONTIME=7500.0,
                                       LIVETIME=7402.5, ONTIME7=7500.0, LIVTIME7=7402.5, ONTIME6=2940.0,
                                       LIVTIME6=2901.78), {7: g7, 6: g6})
    inside = np.where(ccd == 6, (t >= g6[0][0]) & (t < g6[1][0]), True)
    return path, int(inside.sum())


def test_chandra_acis_round_trip_keeps_chip_gtis_and_live_times(tmp_path):
    path, n_own = _acis(tmp_path / "acisf01234N001_evt2.fits")
    ev, back, out = _round_trip(path, tmp_path)
    assert back.attrs["gti_kind"] == "ccd-union"
    sa, sb = _assert_same_products(ev, back)
    assert int(sb["counts"].sum()) == n_own < ev.sizes["event"]  # chip 6's events outside its GTI left out
    assert sb.attrs["deadc_from"] == "LIVTIME7/ONTIME7 (CCD 7)" and sb.attrs["exposure"] == pytest.approx(7402.5)
    # a region on chip 6: its own good and live time
    _, s6 = _assert_same_products(ev, back, region="physical;circle(5500,4000,400)")
    assert s6.attrs["deadc_from"] == "LIVTIME6/ONTIME6 (CCD 6)" and s6.attrs["exposure"] == pytest.approx(2901.78)
    with fits.open(out) as h:
        assert [(x.name, x.header.get("CCD_ID")) for x in h[2:]] == [("GTI", 6), ("GTI", 7)]
        assert h["EVENTS"].header["LIVTIME6"] == 2901.78 and h["EVENTS"].header["ONTIME6"] == 2940.0


def _erosita(path):
    """eSASS-like event list: seven modules, GTI1..GTI7, TM3's good time the
    first 1000 s of 3000 s (its events run over all of it)."""
    rng = np.random.default_rng(3)
    n, t0 = 7000, 6.2e8
    t = np.sort(rng.uniform(t0, t0 + 3000.0, n))
    cols = [fits.Column("TIME", "D", array=t), fits.Column("X", "J", array=rng.integers(-20000, 20000, n)),
            fits.Column("Y", "J", array=rng.integers(-20000, 20000, n)),
            fits.Column("PI", "E", array=rng.uniform(200, 10000, n).astype(np.float32)),
            fits.Column("PAT_TYP", "I", array=rng.integers(1, 5, n)),
            fits.Column("TM_NR", "B", array=rng.integers(1, 8, n).astype(np.uint8))]
    ev = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    for k, v in dict(TELESCOP="eROSITA", INSTRUME="eROSITA", MJDREF=51543.875, TIMESYS="TT", OBS_ID="700001",
                     TSTART=t0, TSTOP=t0 + 3000.0, DATAMODE="FRAMESTORE").items():
        ev.header[k] = v
    for i, k in ((2, 0), (3, 1)):
        ev.header[f"TCTYP{i}"] = ("RA---SIN", "DEC--SIN")[k]
        ev.header[f"TCRVL{i}"] = (150.0, 2.0)[k]
        ev.header[f"TCRPX{i}"] = 0.0
        ev.header[f"TCDLT{i}"] = (-1.388888889e-05, 1.388888889e-05)[k]
    gtis = [fits.BinTableHDU.from_columns([fits.Column("START", "D", array=[t0]),
                                           fits.Column("STOP", "D", array=[t0 + (1000.0 if m == 3 else 3000.0)])],
                                          name=f"GTI{m}") for m in range(1, 8)]
    fits.HDUList([fits.PrimaryHDU(), ev, *gtis]).writeto(path)
    return path


def test_erosita_round_trip_keeps_module_gtis(tmp_path):
    ev, back, out = _round_trip(_erosita(tmp_path / "em01_150000_020_EventList_c001.fits"), tmp_path)
    _assert_same_products(ev, back)
    with fits.open(out) as h:
        assert [x.name for x in h[2:]] == [f"GTI{m}" for m in range(1, 8)]
        assert "CCDID" not in h["GTI3"].header and h["GTI3"].data["STOP"][0] == 6.2e8 + 1000.0


def test_round_trip_keeps_uint64_columns_timeref_and_full_precision_wcs(tmp_path):
    """Sweep p28: write_events wrote a uint64 column (TZERO = 2**63 in the file) as plain int64, so values
    from 2**63 up came back negative; the GTI tables lost TIMEREF, and TCDLTn lost a digit to astropy's
    card format."""
    u = np.array([2**63, 2**63 + 5, 2**64 - 1, 12345], dtype=np.uint64)
    n = u.size
    cols = [fits.Column("TIME", "D", array=1e8 + np.arange(n, dtype=float)),
            fits.Column("PI", "I", array=np.full(n, 1000, np.int16)), fits.Column("U64", "K", bzero=2**63, array=u)]
    ev = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    ev.header.update(TELESCOP="XMM", INSTRUME="EMOS1", MJDREF=50814.0, TIMESYS="TDB", TIMEREF="SOLARSYSTEM",
                     TSTART=1e8, TSTOP=1e8 + 10)
    gti = fits.BinTableHDU.from_columns([fits.Column("START", "D", array=[1e8]),
                                         fits.Column("STOP", "D", array=[1e8 + 10])], name="STDGTI")
    gti.header.update(TIMESYS="TDB", TIMEREF="SOLARSYSTEM", MJDREF=50814.0)
    fits.HDUList([fits.PrimaryHDU(), ev, gti]).writeto(tmp_path / "in.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = xcube.open_events(tmp_path / "in.fits")
        out = write_events(tmp_path / "out.fits", e)
        back = xcube.open_events(out)
    assert e["u64"].dtype == np.uint64 and np.array_equal(back["u64"].values, u)
    np.testing.assert_array_equal(fits.getdata(out, 1)["U64"], u)  # astropy reads the same numbers
    assert all(h.header.get("TIMEREF") == "SOLARSYSTEM" for h in fits.open(out)[1:])
    # a real XMM list's sky pixel size keeps every digit
    mos = xcube.open_events(real_file("xmm", "exod_0001730201_M1_clean.fits"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = xcube.open_events(write_events(tmp_path / "mos.fits", mos.load()))
    for key in ("CDELT1", "CDELT2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2"):
        assert float(again.attrs[key]) == float(mos.attrs[key]), key
