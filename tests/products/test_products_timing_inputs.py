"""Timing inputs that used to crash or give silent nonsense: light curves
whose GTIs reach beyond their bins (``t0``, subsets, split pieces),
unsorted event lists, hostile ``background_rate``/``dt``/``segment``,
rebinning NET and BKG light curves read back from OGIP files, and the
``xcube pds`` messages for light-curve files."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import xcube
from xcube import gti as gtimod
from xcube.cli import main
from xcube.products import rebin, split_by_gti

T0 = 1.0e8
#: three GTIs with gaps (the reviewer's layout: [0, 1000.5) [1300.25, 3000) [3333.3, 6000) + T0)
GAPS = ([T0, T0 + 1300.25, T0 + 3333.3], [T0 + 1000.5, T0 + 3000.0, T0 + 6000.0])
SRC = "physical;circle(26000,26000,2000)"
BKG = "physical;annulus(26000,26000,2500,4500)"


@pytest.fixture
def gaps(make_event_file):
    return xcube.open_events(make_event_file(n=8000, duration=6000.0, gti=GAPS), chunks=3000)


def gti_total(ds) -> float:
    return gtimod.exposure(gtimod.from_dataset(ds))


# --------------------------------------------------------------------------- GTIs beyond the bins


def test_lightcurve_from_t0_keeps_only_the_gtis_of_its_bins(gaps, tmp_path):
    """t0 inside the observation: the GTIs (and the written GTI table and
    EXPOSURE) are those of the bins, the same as with time_range."""
    a = xcube.lightcurve(gaps, 1.0, t0=T0 + 2000.0).compute()
    b = xcube.lightcurve(gaps, 1.0, time_range=(T0 + 2000.0, T0 + 6000.0)).compute()
    np.testing.assert_array_equal(a["counts"].values, b["counts"].values)
    np.testing.assert_array_equal(a["gti_start"].values, b["gti_start"].values)
    np.testing.assert_array_equal(a["gti_stop"].values, b["gti_stop"].values)
    np.testing.assert_allclose(a["gti_start"].values - T0, [2000.0, 3333.3], atol=1e-6)
    assert gti_total(a) == pytest.approx(float(a["exposure"].sum()), abs=1e-6)
    path = xcube.write_lightcurve(tmp_path / "t0.lc", a)
    with fits.open(path) as hdul:
        gti = hdul["GTI"].data
        assert hdul["RATE"].header["EXPOSURE"] == pytest.approx(float(np.sum(gti["STOP"] - gti["START"])), abs=1e-6)
    pa = xcube.power_spectrum(a, segment=200.0)  # was a raw IndexError from inside Stingray
    pb = xcube.power_spectrum(b, segment=200.0)
    assert pa.attrs["n_segments"] == pb.attrs["n_segments"] == 18
    np.testing.assert_array_equal(pa["power"].values, pb["power"].values)


def test_offset_grid_from_t0_gtis_are_cut_to_the_bins_too(gaps):
    half = xcube.lightcurve(gaps, 100.0, t0=T0 + 2000.0, offset=0.5).compute()  # first bin from T0 + 1950
    assert half["time_lo"].values[0] == T0 + 1950.0
    assert gti_total(half) == pytest.approx(float(half["exposure"].sum()), abs=1e-6)
    np.testing.assert_allclose(half["gti_start"].values, [T0 + 1950.0, T0 + 3333.3])


@pytest.mark.parametrize("sl", [slice(0, 2500), slice(2500, None), slice(1400, 2900)])
def test_power_spectrum_of_a_light_curve_subset(gaps, sl):
    """lc.isel(...) keeps the whole observation's GTIs: the power spectrum cuts
    them to its bins (was IndexError), equal to the time_range light curve and
    to Stingray given the cut GTIs."""
    from stingray import AveragedPowerspectrum, Lightcurve

    lc = xcube.lightcurve(gaps, 1.0).compute()
    sub = lc.isel(time=sl)
    p = xcube.power_spectrum(sub, segment=200.0)
    lo, hi = float(sub["time_lo"].values[0]), float(sub["time_hi"].values[-1])
    ref = xcube.power_spectrum(xcube.lightcurve(gaps, 1.0, time_range=(lo, hi)), segment=200.0)
    assert p.attrs["n_segments"] == ref.attrs["n_segments"] > 0
    np.testing.assert_allclose(p["power"].values, ref["power"].values, rtol=1e-12)
    cut = gtimod.intersection(gtimod.from_dataset(sub), ([lo], [hi]))
    s = AveragedPowerspectrum.from_lightcurve(
        Lightcurve(sub["time"].values, sub["counts"].values, dt=1.0, gti=np.column_stack(cut), skip_checks=True),
        segment_size=200.0, norm="leahy", silent=True)
    assert s.m == p.attrs["n_segments"]
    np.testing.assert_allclose(p["power"].values, s.power, rtol=1e-10)


def test_power_spectrum_of_a_light_curve_without_good_time_in_its_bins(gaps):
    lc = xcube.lightcurve(gaps, 1.0).compute()
    gap = lc.isel(time=slice(1010, 1290))  # all inside the gap between the first two GTIs
    with pytest.raises(ValueError, match="no good time inside its bins"):
        xcube.power_spectrum(gap, segment=100.0)


def test_split_by_gti_pieces_have_the_gti_of_their_bins(gaps):
    lc = xcube.lightcurve(gaps, 10.0).compute()
    for sub in (lc.isel(time=slice(50, None)), lc.isel(time=slice(0, 450))):  # GTIs wider than the bins
        pieces = split_by_gti(sub)
        assert len(pieces) == 3
        for p in pieces:
            assert gti_total(p) == pytest.approx(float(p["exposure"].sum()), abs=1e-6)
            assert p["gti_start"].values[0] >= p["time_lo"].values[0]
            assert p["gti_stop"].values[-1] <= p["time_hi"].values[-1]
    first = split_by_gti(lc.isel(time=slice(20, None)))[0]
    np.testing.assert_allclose([first["gti_start"].values[0], first["gti_stop"].values[0]], [T0 + 200, T0 + 1000.5])


def test_summed_cameras_from_t0_keep_the_gtis_of_their_bins(make_event_file):
    files = [make_event_file(n=3000, duration=6000.0, gti=GAPS, seed=i, header={"INSTRUME": inst})
             for i, inst in enumerate(("EMOS1", "EMOS2"))]
    tree = xcube.open_events(files)
    lc = xcube.lightcurve(tree, 10.0, t0=T0 + 2000.0)
    assert lc.attrs["instrument"] == "EMOS1+EMOS2"
    assert gti_total(lc) == pytest.approx(float(lc["exposure"].sum()), abs=1e-6)
    assert float(lc["gti_start"].values[0]) == T0 + 2000.0


# --------------------------------------------------------------------------- t0, offset


def test_t0_a_bin_or_more_before_the_gtis_is_refused(gaps):
    with pytest.raises(ValueError, match=r"t0=10000030 s lies .* before the first GTI start.*t0=99999930 "):
        xcube.lightcurve(gaps, 100.0, t0=1.0e7 + 30.0)  # 900 000 bins of which 60 exposed; grid kept
    with pytest.raises(ValueError, match="before the first GTI start"):
        xcube.lightcurve(gaps, 100.0, t0=T0 - 100.0)  # exactly one bin before: an empty first bin
    lc = xcube.lightcurve(gaps, 100.0, t0=T0 - 99.0)  # less than a bin before: a grid aligned elsewhere
    assert lc["time_lo"].values[0] == T0 - 99.0 and lc["exposure"].values[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="t0=nan: must be a finite number"):
        xcube.lightcurve(gaps, 100.0, t0=float("nan"))
    with pytest.raises(ValueError, match="GTI"):
        xcube.lightcurve(gaps, 100.0, t0=T0 + 7000.0)  # after the last stop (as before)
    # a time_range asked for before the data keeps its window, and a t0 at (or < 1 bin before) its start
    window = xcube.lightcurve(gaps, 100.0, time_range=(T0 - 500.0, T0 + 2000.0))
    assert window["time_lo"].values[0] == T0 - 500.0 and window.sizes["time"] == 25
    assert xcube.lightcurve(gaps, 100.0, time_range=(T0 - 500.0, T0 + 2000.0), t0=T0 - 550.0).sizes["time"] == 26
    # a t0 whole bins before the window is its grid's phase (one round t0 for several windows)
    far = xcube.lightcurve(gaps, 100.0, time_range=(T0 - 500.0, T0 + 2000.0), t0=T0 - 700.0)
    assert far["time_lo"].values[0] == T0 - 500.0 and far.sizes["time"] == 25


@pytest.mark.parametrize("offset", [float("nan"), float("inf"), "half"])
def test_offset_must_be_finite(gaps, offset):
    with pytest.raises(ValueError, match="offset="):
        xcube.lightcurve(gaps, 100.0, offset=offset)


# --------------------------------------------------------------------------- unsorted events


def _mem_events(t, chunks, gti=(0.0, 1000.0)):
    return xr.Dataset({"time": ("event", da.from_array(np.asarray(t, np.float64), chunks=chunks)),
                       "gti_start": ("gti", [gti[0]]), "gti_stop": ("gti", [gti[1]])},
                      attrs={"mjdref": 50814.0, "mission": "XMM", "instrument": "EPN", "source": "mem.evt"})


def test_power_spectrum_refuses_unsorted_events():
    rng = np.random.default_rng(1)
    t = rng.uniform(0, 1000, 20000)
    with pytest.raises(ValueError, match="mem.evt: events are not time-sorted"):
        xcube.power_spectrum(_mem_events(t, 5000), segment=100.0, dt=0.5, screening=False)
    # every chunk sorted, but the chunks out of order
    parts = np.sort(t.reshape(4, 5000), axis=1)[[1, 0, 2, 3]].ravel()
    with pytest.raises(ValueError, match="not time-sorted.*chunk"):
        xcube.power_spectrum(_mem_events(parts, 5000), segment=100.0, dt=0.5, screening=False)
    lazy = xcube.power_spectrum(_mem_events(t, 5000), segment=100.0, dt=0.5, screening=False, compute=False)
    with pytest.raises(ValueError, match="not time-sorted"):  # the check runs in the tasks: still lazy
        lazy.compute()
    ok = xcube.power_spectrum(_mem_events(np.sort(t), 5000), segment=100.0, dt=0.5, screening=False)
    assert ok.attrs["n_segments"] == 10 and ok.attrs["n_photons"] == 2000


# --------------------------------------------------------------------------- background_rate, dt, segment


@pytest.fixture
def white(make_event_file):
    return xcube.open_events(make_event_file(n=4000, duration=2000.0))


@pytest.mark.parametrize("bkg", [-1.0, float("nan"), float("inf"), "x", True])
def test_background_rate_must_be_finite_and_not_negative(white, bkg):
    with pytest.raises(ValueError, match="background_rate=.*finite number >= 0"):
        xcube.power_spectrum(white, segment=100.0, dt=1.0, norm="frac", background_rate=bkg)


def test_background_rate_must_be_below_the_mean_rate(white, tmp_path, capsys):
    p = xcube.power_spectrum(white, segment=100.0, dt=1.0, norm="frac", background_rate=0.5)
    rate = p.attrs["mean_rate"]
    for bkg in (rate, 5.0):  # B = R divided by zero; B > R gave a negative source rate
        with pytest.raises(ValueError, match=r"events_0.fits: background_rate=.* is not below the mean rate"):
            xcube.power_spectrum(white, segment=100.0, dt=1.0, norm="frac", background_rate=bkg)
    src = str(white.attrs["source"])
    assert main(["pds", src, "--dt", "1", "--segment", "100", "--norm", "frac", "--background-rate", "5",
                 "--out", str(tmp_path / "p.fits")]) == 1
    err = capsys.readouterr().err
    assert "--background-rate" in err and src in err and "not below the mean rate" in err


@pytest.mark.parametrize("dt", [0.0, float("nan"), -1.0, float("inf"), "x"])
def test_python_dt_is_validated(white, dt):
    with pytest.raises(ValueError, match=r"dt \(the bin width of the segments \[s\]\) must be"):
        xcube.power_spectrum(white, segment=100.0, dt=dt)
    lc = xcube.lightcurve(white, 1.0)
    with pytest.raises(ValueError, match=r"dt \(the bin width"):
        xcube.power_spectrum(lc, segment=100.0, dt=dt)


def test_segment_is_validated(white, tmp_path, capsys):
    for seg in (True, 0.0, float("nan"), "100"):  # True was taken for 1 s
        with pytest.raises(ValueError, match=f"segment={seg!r}: the segment length must be"):
            xcube.power_spectrum(white, segment=seg, dt=0.01)
    with pytest.raises(SystemExit):
        main(["pds", str(white.attrs["source"]), "--dt", "1", "--segment", "-100", "--out", str(tmp_path / "p.fits")])
    assert "--segment" in capsys.readouterr().err


# --------------------------------------------------------------------------- NET / BKG files rebinned


def test_rebin_of_net_and_background_files_read_back(make_event_file, tmp_path):
    ev = xcube.open_events(make_event_file(n=30_000, duration=5000.0))
    lc = xcube.lightcurve(ev, 50.0, region=SRC, background=BKG).compute()
    mem = rebin(lc, 2)
    direct = xcube.lightcurve(ev, 100.0, region=SRC, background=BKG).compute()
    np.testing.assert_allclose(mem["net_rate"].values, direct["net_rate"].values, rtol=1e-12)
    for kind, var in (("net", "net_rate"), ("background", "bkg_rate"), ("total", "rate")):
        back = xcube.read_lightcurve(xcube.write_lightcurve(tmp_path / f"{kind}.lc", lc, kind=kind))
        r = rebin(back, 2)
        np.testing.assert_allclose(r["rate"].values, mem[var].values, rtol=1e-12)
        np.testing.assert_allclose(r["rate_err"].values, mem[f"{var}_err"].values, rtol=1e-12)
        np.testing.assert_allclose(r["rate"].values, direct[var].values, rtol=1e-12)
        assert back.attrs["rate_kind"] == kind
    net = rebin(xcube.read_lightcurve(tmp_path / "net.lc"), 2)
    np.testing.assert_array_equal(net["counts"].values, mem["counts"].values)  # the gross counts still add
    np.testing.assert_allclose(net["bkg_rate"].values, mem["bkg_rate"].values, rtol=1e-12)


# --------------------------------------------------------------------------- rebin factor


def test_rebin_factor_beyond_the_bins_is_an_error(white):
    lc = xcube.lightcurve(white, 10.0).compute()  # 200 bins
    assert rebin(lc, 200).sizes["time"] == 1
    with pytest.raises(ValueError, match=r"factor=1000 is more than the 200 bins of 10 s of .*events_0.fits"):
        rebin(lc, 1000)
    with pytest.raises(ValueError, match=r"time_bin=5000.0 s \(500 bins\) is more than the 200 bins"):
        rebin(lc, time_bin=5000.0)
    with pytest.raises(ValueError, match="no time bins"):
        rebin(lc.isel(time=slice(0, 0)), 2)


# --------------------------------------------------------------------------- xcube pds on light-curve files


def test_pds_command_names_a_multi_band_light_curve_file(gaps, tmp_path, capsys):
    lc = xcube.lightcurve(gaps, 10.0, energy_band=[(0.5, 2.0), (2.0, 10.0)]).compute()
    multi = xcube.write_lightcurve(tmp_path / "multi.lc", lc)
    assert main(["pds", str(multi), "--segment", "100", "--out", str(tmp_path / "p.fits")]) == 1
    err = capsys.readouterr().err
    assert f"{multi}: a light curve of 2 energy bands" in err and "xcube lc EVENTS --energy EMIN EMAX" in err
    assert "lc.sel" not in err
    # other layouts of several bands: a vector RATE column (eROSITA srctool), XRONOS series RATE1, RATE2
    t = T0 + 10.0 * np.arange(100)
    for name, cols, n in (("srctool.fits", [fits.Column("RATE", "3D", array=np.ones((100, 3)))], 3),
                          ("lcurve.flc", [fits.Column(f"RATE{k}", "E", array=np.ones(100)) for k in (1, 2)], 2)):
        hdu = fits.BinTableHDU.from_columns([fits.Column("TIME", "D", array=t)] + cols, name="RATE")
        hdu.header.update({"TIMEDEL": 10.0, "HDUCLAS1": "LIGHTCURVE", "TELESCOP": "XMM"})
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / name)
        assert main(["pds", str(tmp_path / name), "--segment", "100", "--out", str(tmp_path / "p.fits")]) == 1
        assert f"{tmp_path / name}: a light curve of {n} energy bands" in capsys.readouterr().err
    python = r"multi.lc has 2 energy bands \(0.5-2keV, 2-10keV\).*lc.sel\(band='0.5-2keV'\)"
    with pytest.raises(ValueError, match=python):
        xcube.power_spectrum(xcube.read_lightcurve(multi), segment=100.0)


def test_pds_command_names_a_light_curve_file_of_unequal_bins(gaps, tmp_path, capsys):
    one = xcube.lightcurve(gaps, 10.0).compute()
    uneven = one.assign_coords(time_hi=one["time_hi"] + np.where(np.arange(one.sizes["time"]) == 3, 5.0, 0.0))
    path = xcube.write_lightcurve(tmp_path / "uneven.lc", uneven)
    assert main(["pds", str(path), "--segment", "100", "--out", str(tmp_path / "q.fits")]) == 1
    assert f"{path} differ in width" in capsys.readouterr().err


def test_cli_lc_from_t0_then_pds(make_event_file, tmp_path, capsys):
    events = make_event_file(n=8000, duration=6000.0, gti=GAPS)
    out = tmp_path / "t0.lc"
    assert main(["lc", str(events), "--time-bin", "1", "--t0", str(T0 + 2000.0), "--out", str(out)]) == 0
    with fits.open(out) as hdul:
        gti = hdul["GTI"].data
        assert hdul["RATE"].header["EXPOSURE"] == pytest.approx(float(np.sum(gti["STOP"] - gti["START"])), abs=1e-6)
    assert main(["pds", str(out), "--segment", "200", "--out", str(tmp_path / "x.fits")]) == 0
    assert "18 x 200 s segments" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["gehrels", "poisson"])
def test_the_error_method_survives_the_file(gaps, tmp_path, method):
    """Gehrels errors were lost on write/read: a rebin of the file fell back to sqrt(N) (3.7 count/s too small
    in low-exposure bins). ERRMETH keeps the method."""
    lc = xcube.lightcurve(gaps, 10.0, errors=method).compute()
    path = xcube.write_lightcurve(tmp_path / "geh.lc", lc)
    assert fits.getheader(path, 1)["ERRMETH"] == method.upper()
    back = xcube.read_lightcurve(path)
    assert back.attrs["errors"] == method
    np.testing.assert_allclose(rebin(back, 5)["rate_err"].values, rebin(lc, 5)["rate_err"].values, rtol=1e-12)
