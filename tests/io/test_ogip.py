"""OGIP writers/readers: light curves, PHA spectra, GTI files, DS9 regions."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from conftest import real_file

from xcube import gti as gtimod
from xcube.io.atomic import atomic_file
from xcube.io.ds9 import circles_from_table, to_ds9, write_ds9
from xcube.io.lightcurve_file import read_lightcurve
from xcube.io.ogip import read_gti, write_gti, write_lightcurve, write_spectrum
from xcube.products.lightcurve import lightcurve_from_counts

ATTRS = {"mjdref": 50814.000743, "mission": "XMM-Newton", "instrument": "EMOS1", "telescop": "XMM",
         "instrume": "EMOS1", "obs_id": "0123456789", "object": "TEST", "timesys": "TT"}


def make_lc(n=12, width=10.0, t0=1.0e8, gti=((1.0e8 + 5,), (1.0e8 + 95,)), seed=1, bkg=False):
    lo = t0 + np.arange(n) * width
    hi = lo + width
    exp = gtimod.exposure_per_bin(lo, hi, gti)
    counts = np.random.default_rng(seed).poisson(5, n)
    da = xr.DataArray(counts, dims="time", coords={
        "time": ("time", (lo + hi) / 2), "time_lo": ("time", lo), "time_hi": ("time", hi),
        "exposure": ("time", exp), "fracexp": ("time", exp / width)})
    kw = {}
    if bkg:
        kw = {"bkg_counts": da.copy(data=np.random.default_rng(seed + 1).poisson(8, n)), "area_ratio": 0.25}
    return lightcurve_from_counts(da, gti=gti, attrs=dict(ATTRS, energy_band=[0.5, 10.0], pi_band=[500, 10000]), **kw)


def test_lightcurve_file_structure_in_astropy(tmp_path):
    lc = make_lc()
    path = write_lightcurve(tmp_path / "a.lc", lc)
    with fits.open(path, checksum=True) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "RATE", "GTI"]
        h = hdul["RATE"].header
        assert h["HDUCLAS1"] == "LIGHTCURVE" and h["HDUCLAS2"] == "TOTAL" and h["HDUCLAS3"] == "RATE"
        assert h["TIMEDEL"] == 10.0 and h["TIMEZERO"] == 0.0 and h["TIMEPIXR"] == 0.5
        assert h["MJDREFI"] == 50814 and h["MJDREFF"] == pytest.approx(0.000743, abs=1e-12)
        assert h["TSTART"] == 1.0e8 and h["TSTOP"] == 1.0e8 + 120
        assert h["TIMESYS"] == "TT" and h["TIMEUNIT"] == "s" and h["TELESCOP"] == "XMM"
        assert h["E_MIN"] == 0.5 and h["CHANMIN"] == 500
        d = hdul["RATE"].data
        assert set(d.columns.names) >= {"TIME", "RATE", "ERROR", "FRACEXP", "COUNTS"}
        np.testing.assert_allclose(d["TIME"], lc.time.values)
        np.testing.assert_array_equal(d["COUNTS"], lc.counts.values)
        np.testing.assert_allclose(d["RATE"], lc.rate.values, equal_nan=True)
        assert np.isnan(d["RATE"][-1])  # bin outside the GTI: exposure 0 -> NaN
        g = hdul["GTI"]
        assert g.header["HDUCLAS1"] == "GTI"
        np.testing.assert_array_equal(g.data["START"], [1.0e8 + 5])


def test_lightcurve_roundtrip(tmp_path):
    lc = make_lc(bkg=True).compute()
    path = write_lightcurve(tmp_path / "a.lc", lc)
    back = read_lightcurve(path)
    for v in ("time", "time_lo", "time_hi", "exposure", "fracexp", "rate", "rate_err"):
        np.testing.assert_allclose(back[v].values, lc[v].values, rtol=1e-12, equal_nan=True, err_msg=v)
    np.testing.assert_array_equal(back.counts.values, lc.counts.values)
    assert back.counts.dtype == np.int64
    np.testing.assert_array_equal(back.gti_start.values, lc.gti_start.values)
    assert back.attrs["mjdref"] == pytest.approx(50814.000743, abs=1e-12)
    assert back.attrs["energy_band"] == [0.5, 10.0]
    net = read_lightcurve(write_lightcurve(tmp_path / "net.lc", lc, kind="net"))
    np.testing.assert_allclose(net.rate.values, lc.net_rate.values, equal_nan=True)
    np.testing.assert_allclose(net.bkg_rate.values, lc.bkg_rate.values, equal_nan=True)
    assert net.attrs["hduclas2"] == "NET"
    with fits.open(tmp_path / "net.lc") as hdul:
        assert hdul["RATE"].header["BACKAPP"] is True
        assert hdul["RATE"].header["BKGRATIO"] == 0.25


def test_lightcurve_loads_in_stingray(tmp_path):
    from stingray import Lightcurve

    lc = make_lc(n=20, gti=((1.0e8,), (1.0e8 + 200,)))
    path = write_lightcurve(tmp_path / "s.lc", lc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = Lightcurve.read(str(path), fmt="hea")
    np.testing.assert_allclose(s.time, lc.time.values)
    np.testing.assert_allclose(s.counts, lc.counts.values)
    assert s.dt == 10.0
    np.testing.assert_allclose(s.gti, [[1.0e8, 1.0e8 + 200]])
    assert s.mjdref == pytest.approx(50814.000743, abs=1e-9)


def test_write_refuses_existing_and_is_atomic(tmp_path):
    lc = make_lc()
    path = write_lightcurve(tmp_path / "a.lc", lc)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_lightcurve(path, lc)
    assert path.read_bytes() == before
    with pytest.raises(ValueError, match="no 'net_rate'"):
        write_lightcurve(tmp_path / "b.lc", lc, kind="net")
    assert not (tmp_path / "b.lc").exists()
    # a failure while writing leaves neither the target nor a temporary file behind
    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "c.lc") as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.lc"]
    write_lightcurve(path, lc, overwrite=True)


def test_empty_lightcurve_warns(tmp_path):
    lc = make_lc()
    lc["counts"] = lc.counts * 0
    with pytest.warns(UserWarning, match="no counts"):
        write_lightcurve(tmp_path / "e.lc", lc)


def test_gti_file(tmp_path):
    path = write_gti(tmp_path / "g.fits", ([10.0, 0.0], [20.0, 5.0]), attrs=ATTRS)
    start, stop = read_gti(path)
    np.testing.assert_array_equal(start, [0.0, 10.0])
    np.testing.assert_array_equal(stop, [5.0, 20.0])
    with fits.open(path) as hdul:
        assert hdul["GTI"].header["ONTIME"] == 15.0
        assert hdul["GTI"].header["MJDREFI"] == 50814


def test_real_pn_source_lightcurve():
    path = real_file("xmm", "exod_0001730201_PN_J173446-323317_lc_100_src.lc")
    lc = read_lightcurve(path)
    with fits.open(path) as hdul:
        d, h = hdul["RATE"].data, hdul["RATE"].header
        raw_counts = np.round(d["RATE"] * 100).astype(int)
        assert lc.sizes["time"] == 228 == len(d)
        np.testing.assert_allclose(lc.time.values, d["TIME"])  # SAS TIME is the bin centre
        assert lc.time_lo.values[0] == h["TSTART"]
    np.testing.assert_array_equal(lc.counts.values, raw_counts)
    assert int(lc.counts.sum()) == 38
    assert lc.attrs["gti_extension"] == "GTI00003" and lc.sizes["gti"] == 19
    # exposure from the CCD's GTIs: never above the bin, zero outside them
    assert np.all(lc.exposure.values <= 100.0 + 1e-9)
    full = lc.fracexp.values == 1.0
    np.testing.assert_allclose(lc.rate.values[full], d["RATE"][full])
    assert lc.attrs["mjdref"] == 50814.0 and lc.attrs["pi_band"] == [500, 12000]
    bpath = real_file("xmm", "exod_0001730201_PN_J173446-323317_lc_100_bgd.lc")
    bkg = read_lightcurve(bpath)
    np.testing.assert_array_equal(bkg.time.values, lc.time.values)
    assert bkg.counts.dtype == np.int64
    np.testing.assert_array_equal(bkg.counts.values, np.round(fits.getdata(bpath, "RATE")["RATE"] * 100).astype(int))


def test_real_pn_fbktsr_time_series():
    path = real_file("xmm", "P0001730201PNS001FBKTSR0000.FTZ")
    lc = read_lightcurve(path)
    with fits.open(path) as hdul:
        d, h = hdul["RATE"].data, hdul["RATE"].header
        assert lc.sizes["time"] == 2276
        # PPS rates are exposure corrected (DEADAPP = T): counts = RATE * TIMEDEL * FRACEXP are whole numbers
        assert lc.counts.dtype == np.int64
        ok = d["FRACEXP"] > 0
        np.testing.assert_allclose(lc.rate.values[ok], d["RATE"][ok], rtol=1e-6)
        assert np.all(np.isnan(lc.rate.values[~ok]))
        assert np.all(lc.counts.values[~ok] == 0)
        assert float(lc.exposure.sum()) == pytest.approx(h["EXPOSURE"], rel=1e-3)
        np.testing.assert_allclose(lc.rate_err.values[ok], np.sqrt(lc.counts.values[ok]) / lc.exposure.values[ok],
                                   rtol=1e-5)
    assert lc.sizes["gti"] == 4 and lc.attrs["gti_extension"] == "SRC_GTIS"


def test_read_lightcurve_errors(tmp_path):
    path = tmp_path / "notlc.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name="X", format="D", array=np.zeros(3))], name="EVENTS")]).writeto(path)
    with pytest.raises(ValueError, match="no light-curve table"):
        read_lightcurve(path)
    with pytest.raises(FileNotFoundError):
        read_lightcurve(tmp_path / "missing.lc")


def _spectrum(bkg=True):
    ch = np.arange(0, 100)
    counts = np.random.default_rng(3).poisson(2, ch.size)
    ds = xr.Dataset({"counts": ("channel", counts)}, coords={"channel": ch},
                    attrs=dict(ATTRS, exposure=1000.0, backscal=1234.5, channel_range=(0, 99)))
    if bkg:
        ds["bkg_counts"] = ("channel", np.random.default_rng(4).poisson(5, ch.size))
        ds.attrs["bkg_backscal"] = 5000.0
    return ds


def test_pha_file(tmp_path):
    spec = _spectrum()
    path = write_spectrum(tmp_path / "src.pha", spec, respfile="m1.rmf", ancrfile="m1.arf")
    with fits.open(path) as hdul:
        h, d = hdul["SPECTRUM"].header, hdul["SPECTRUM"].data
        assert d.columns.names == ["CHANNEL", "COUNTS", "QUALITY", "GROUPING"]
        np.testing.assert_array_equal(d["COUNTS"], spec.counts.values)
        assert h["HDUCLAS1"] == "SPECTRUM" and h["HDUCLAS2"] == "TOTAL" and h["POISSERR"] is True
        assert h["EXPOSURE"] == 1000.0 and h["BACKSCAL"] == 1234.5 and h["AREASCAL"] == 1.0
        assert h["CORRSCAL"] == 0.0 and h["DETCHANS"] == 100 and h["TLMIN1"] == 0 and h["TLMAX1"] == 99
        assert h["BACKFILE"] == "src_bkg.pha" and h["RESPFILE"] == "m1.rmf" and h["ANCRFILE"] == "m1.arf"
    with fits.open(tmp_path / "src_bkg.pha") as hdul:
        h = hdul["SPECTRUM"].header
        assert h["HDUCLAS2"] == "BKG" and h["BACKSCAL"] == 5000.0
        np.testing.assert_array_equal(hdul["SPECTRUM"].data["COUNTS"], spec.bkg_counts.values)
    with pytest.raises(FileExistsError):
        write_spectrum(tmp_path / "src.pha", spec)


def test_pha_rejects_fractional_counts(tmp_path):
    spec = _spectrum(bkg=False)
    spec["counts"] = spec.counts * 0.5
    with pytest.raises(ValueError, match="whole numbers"):
        write_spectrum(tmp_path / "x.pha", spec)


def test_ds9_regions(tmp_path):
    import pandas as pd
    from regions import Regions

    table = pd.DataFrame({"ra": [263.6, 263.7], "dec": [-32.5, -32.6], "name": ["A", "B"]})
    path = write_ds9(tmp_path / "det.reg", circles_from_table(table, 15.0, label="name"))
    back = Regions.read(str(path), format="ds9")
    assert len(back) == 2
    assert back[0].radius.to_value("arcsec") == pytest.approx(15.0)
    assert back[1].meta["text"] == "B"
    text = to_ds9(["fk5;circle(263.6,-32.5,0.01)", "image;box(10,10,4,4,0)"])
    assert "circle(263.6" in text and "box(10" in text
    with pytest.raises(FileExistsError):
        write_ds9(path, table)
    with pytest.raises(KeyError, match="'ra'"):
        circles_from_table(pd.DataFrame({"x": [1.0]}))


def test_products_of_products_keep_the_mission_telescop(tmp_path):
    """A product written from a product read back (a power spectrum of an xcube light curve) said
    TELESCOP = 'XMM-NEWTON' (the mission name upper-cased), which xcube then read as another mission
    than 'XMM-Newton'; it is the mission's own 'XMM' now, and 'XMM-NEWTON' reads as XMM-Newton."""
    from astropy.io import fits

    import xcube
    from xcube.io.powspec import read_power_spectrum, write_power_spectrum
    from xcube.missions import mission_name, telescop_of

    ev, _ = xcube.simulate.event_list("xmm-mos1", duration=2000.0, seed=3, sources=2)
    lc_path = xcube.write_lightcurve(tmp_path / "m.lc", xcube.lightcurve(ev, 1.0))
    lc = xcube.read_lightcurve(lc_path)
    assert lc.attrs["mission"] == "XMM-Newton"
    pds = xcube.power_spectrum(lc, segment=256.0)
    out = write_power_spectrum(tmp_path / "m_pds.fits", pds)
    assert fits.getheader(out, 1)["TELESCOP"] == "XMM"
    assert read_power_spectrum(out).attrs["mission"] == "XMM-Newton"
    assert mission_name("XMM-NEWTON") == "XMM-Newton" and telescop_of("XMM-Newton") == "XMM"
    assert telescop_of("NuSTAR") == "NUSTAR" and telescop_of("FooSat") == "FOOSAT" and telescop_of(None) == "UNKNOWN"
