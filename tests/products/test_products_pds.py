"""xcube.power_spectrum: equal to Stingray's AveragedPowerspectrum (1e-10),
white-noise level, an injected sinusoid, rebinning, many inputs, errors."""
from __future__ import annotations

import os

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import xcube
from xcube.products import rebin_power_spectrum

RTOL = 1e-10


def events(times, gti, chunks=5000, **attrs):
    """A minimal EventList: sorted times on a chunked Dask array and its GTIs."""
    g = np.asarray(gti, np.float64)
    return xr.Dataset({"time": ("event", da.from_array(np.asarray(times, np.float64), chunks=chunks)),
                       "gti_start": ("gti", g[:, 0]), "gti_stop": ("gti", g[:, 1])},
                      attrs={"mjdref": 50814.0, "mission": "XMM", "instrument": "EPN", **attrs})


def poisson_times(rate, gti, seed=0, modulation=None):
    """Poisson arrival times inside ``gti``; ``modulation(t)`` in [0, 2] thins them."""
    rng = np.random.default_rng(seed)
    out = []
    for a, b in gti:
        n = rng.poisson(rate * (b - a) * (2 if modulation else 1))
        t = np.sort(rng.uniform(a, b, n))
        if modulation:
            t = t[rng.uniform(0, 2, t.size) < modulation(t)]
        out.append(t)
    return np.concatenate(out)


def assert_same(p, s):
    np.testing.assert_allclose(p["freq"].values, s.freq, rtol=RTOL, atol=0)
    np.testing.assert_allclose(p["power"].values, s.power, rtol=RTOL, atol=0)
    np.testing.assert_allclose(p["power_err"].values, s.power_err, rtol=RTOL, atol=0)
    assert np.all(p["m"].values == s.m)


GTI = [[0.0, 1300.0], [1400.0, 2950.5], [3000.0, 3100.0]]


@pytest.mark.parametrize("norm", ["leahy", "frac", "abs", "none"])
def test_equals_stingray_on_generated_events(norm):
    from stingray import AveragedPowerspectrum, EventList

    t = poisson_times(30.0, GTI, seed=1)
    ev = events(t, GTI, chunks=3001)  # many segments straddle chunks
    p = xcube.power_spectrum(ev, segment=100.0, dt=1 / 64, norm=norm)
    s = AveragedPowerspectrum.from_events(EventList(t, gti=np.array(GTI)), dt=1 / 64, segment_size=100.0, norm=norm,
                                          silent=True)
    assert_same(p, s)
    assert p.attrs["n_segments"] == s.m == 13 + 15 + 1  # 1300 s, 1550.5 s and the 100 s GTI
    assert p.attrs["mean_rate"] == pytest.approx(s.nphots / 100.0, rel=1e-12)
    assert p.sizes["freq"] == 3199 and p["df"].values[0] == pytest.approx(0.01)


def test_chunking_does_not_change_the_result():
    t = poisson_times(20.0, GTI, seed=2)
    a = xcube.power_spectrum(events(t, GTI, chunks=997), segment=50.0, dt=0.125, norm="frac")
    b = xcube.power_spectrum(events(t, GTI, chunks=t.size), segment=50.0, dt=0.125, norm="frac")
    np.testing.assert_allclose(a["power"].values, b["power"].values, rtol=1e-12)
    assert a.attrs["n_segments"] == b.attrs["n_segments"]


STINGRAY_DATA = os.path.join(os.path.dirname(__import__("stingray").__file__), "tests", "data")


@pytest.mark.parametrize("name,segment,dt", [("xte_test.evt.gz", 64.0, 1 / 32), ("monol_testA.evt", 128.0, 0.5)])
def test_equals_stingray_on_real_event_files(name, segment, dt):
    from stingray import AveragedPowerspectrum, EventList

    path = os.path.join(STINGRAY_DATA, name)
    with pytest.warns(UserWarning) if "xte" in name else _nullcontext():
        ev = xcube.open_events(path)
    sev = EventList.read(path, fmt="hea")
    for norm in ("leahy", "frac"):
        p = xcube.power_spectrum(ev, segment=segment, dt=dt, norm=norm)
        s = AveragedPowerspectrum.from_events(sev, dt=dt, segment_size=segment, norm=norm, silent=True)
        assert_same(p, s)
    assert p.attrs["mission"] in ("RXTE", "NuSTAR")


def test_equals_stingray_on_the_real_nustar_file():
    from conftest import real_file
    from stingray import AveragedPowerspectrum, EventList

    path = real_file("nustar", "barycenter_dummy_evt_nustar_B1937.evt")
    ev = xcube.open_events(path)
    sev = EventList.read(str(path), fmt="hea")
    p = xcube.power_spectrum(ev, segment=64.0, dt=0.25, norm="leahy")
    s = AveragedPowerspectrum.from_events(sev, dt=0.25, segment_size=64.0, norm="leahy", silent=True)
    assert_same(p, s)
    assert p.attrs["n_segments"] > 50  # 190 short GTIs: only whole segments inside them


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_light_curve_input_equals_stingray_from_lightcurve(make_event_file):
    from stingray import AveragedPowerspectrum

    path = make_event_file(n=40_000, duration=4000.0, gti=([1.0e8, 1.0e8 + 2100.0], [1.0e8 + 2000.0, 1.0e8 + 4000.0]))
    ev = xcube.open_events(path, chunks=7000)
    lc = xcube.lightcurve(ev, 0.5)
    p = xcube.power_spectrum(lc, segment=100.0, norm="leahy")
    s = AveragedPowerspectrum.from_lightcurve(xcube.to_stingray(lc), segment_size=100.0, norm="leahy", silent=True)
    assert_same(p, s)
    # dt a multiple of the bins: the light curve is rebinned first, as binning the events coarser would
    p2 = xcube.power_spectrum(lc, segment=100.0, dt=1.0)
    p3 = xcube.power_spectrum(xcube.lightcurve(ev, 1.0), segment=100.0)
    np.testing.assert_allclose(p2["power"].values, p3["power"].values, rtol=RTOL)
    with pytest.raises(ValueError, match="whole multiple"):
        xcube.power_spectrum(lc, segment=100.0, dt=0.75)
    with pytest.raises(ValueError, match="pick one"):
        xcube.power_spectrum(xcube.lightcurve(ev, 0.5, energy_band=[(0.5, 2), (2, 10)]), segment=100.0)


def test_leahy_white_noise_is_two():
    gti = [[0.0, 20_000.0]]
    p = xcube.power_spectrum(events(poisson_times(50.0, gti, seed=3), gti, chunks=200_000), segment=64.0,
                             dt=1 / 128, norm="leahy")
    mean = float(p["power"].mean())
    err = 2.0 / np.sqrt(p.attrs["n_segments"] * p.sizes["freq"])  # each Leahy noise power: mean 2, sd 2
    assert abs(mean - 2.0) < 4 * err and p.attrs["poisson_level"] == 2.0
    noise_free = xcube.power_spectrum(events(poisson_times(50.0, gti, seed=3), gti), segment=64.0, dt=1 / 128,
                                      subtract_noise=True)
    assert abs(float(noise_free["power"].mean())) < 4 * err and noise_free.attrs["noise_subtracted"]


def test_injected_sinusoid_has_its_frequency_and_rms():
    f0, amp, rate = 2.0, 0.2, 200.0  # rate x (1 + amp sin): fractional rms amp / sqrt(2) = 0.1414
    gti = [[0.0, 4096.0]]
    t = poisson_times(rate, gti, seed=4, modulation=lambda t: 1 + amp * np.sin(2 * np.pi * f0 * t))
    p = xcube.power_spectrum(events(t, gti, chunks=100_000), segment=64.0, dt=1 / 64, norm="frac",
                             subtract_noise=True)
    peak = int(np.argmax(p["power"].values))
    assert p["freq"].values[peak] == pytest.approx(f0)
    rms = np.sqrt(float((p["power"] * p["df"])[peak - 1:peak + 2].sum()))
    assert rms == pytest.approx(amp / np.sqrt(2), rel=0.05)


def test_log_and_linear_rebinning():
    from stingray import AveragedPowerspectrum, EventList

    t = poisson_times(30.0, GTI, seed=5)
    p = xcube.power_spectrum(events(t, GTI), segment=100.0, dt=1 / 64, rebin=-0.06)
    s = AveragedPowerspectrum.from_events(EventList(t, gti=np.array(GTI)), dt=1 / 64, segment_size=100.0,
                                          norm="leahy", silent=True).rebin_log(0.06)
    assert_same(p, s)
    assert p.attrs["rebin"] == -0.06 and p["df"].values[-5:].min() > 10 * p["df"].values[0]
    assert float(p["df"].sum()) == pytest.approx(float(p["freq_hi"][-1] - p["freq_lo"][0]))
    assert np.all(p["freq_lo"].values[1:] == pytest.approx(p["freq_hi"].values[:-1]))
    raw = xcube.power_spectrum(events(t, GTI), segment=100.0, dt=1 / 64)
    lin = rebin_power_spectrum(raw, 8)
    assert lin.sizes["freq"] == raw.sizes["freq"] // 8 and np.all(lin["m"].values == 8 * raw["m"].values[0])
    np.testing.assert_allclose(lin["power"].values[0], raw["power"].values[:8].mean())
    np.testing.assert_allclose(lin["df"].values, 8 * raw["df"].values[0])
    for bad in (0.5, -2, "x"):
        with pytest.raises(ValueError, match="rebin"):
            rebin_power_spectrum(raw, bad)


def test_background_rate_changes_the_rms_normalisation():
    t = poisson_times(30.0, GTI, seed=6)
    ev = events(t, GTI)
    a = xcube.power_spectrum(ev, segment=100.0, dt=0.25, norm="frac")
    b = xcube.power_spectrum(ev, segment=100.0, dt=0.25, norm="frac", background_rate=10.0)
    s = a.attrs["mean_rate"]
    np.testing.assert_allclose(b["power"].values, a["power"].values * s**2 / (s - 10.0) ** 2, rtol=1e-12)
    assert b.attrs["poisson_level"] == pytest.approx(2 * s / (s - 10.0) ** 2)
    assert a.attrs["poisson_level"] == pytest.approx(2 / s)


def test_many_inputs_in_parallel_and_averaged():
    gti = [[0.0, 1000.0]]
    evs = [events(poisson_times(r, gti, seed=i), gti, obs_id=f"obs{i}") for i, r in enumerate((10.0, 20.0, 40.0))]
    stack = xcube.power_spectrum(evs, segment=100.0, dt=0.5)
    assert stack.sizes == {"obs": 3, "freq": 99}
    assert list(stack["obs"].values) == ["obs0/EPN", "obs1/EPN", "obs2/EPN"]
    for i, ev in enumerate(evs):
        one = xcube.power_spectrum(ev, segment=100.0, dt=0.5)
        np.testing.assert_allclose(stack["power"].values[i], one["power"].values, rtol=1e-12)
    assert stack["mean_rate"].values[2] == pytest.approx(40.0, rel=0.05)
    avg = xcube.power_spectrum(evs, segment=100.0, dt=0.5, average=True, rebin=-0.1)
    plain = xcube.power_spectrum(evs, segment=100.0, dt=0.5, average=True)
    np.testing.assert_allclose(plain["power"].values, stack["power"].mean("obs").values, rtol=1e-12)
    assert plain["m"].values[0] == 30 and plain.attrs["n_segments"] == 30
    assert avg.attrs["rebin"] == -0.1 and avg.sizes["freq"] < 99
    tree = xr.DataTree.from_dict({f"/o{i}/EPN": ev for i, ev in enumerate(evs)})
    from_tree = xcube.power_spectrum(tree, segment=100.0, dt=0.5)
    assert list(from_tree["obs"].values) == ["/o0/EPN", "/o1/EPN", "/o2/EPN"]
    lazy = xcube.power_spectrum(evs, segment=100.0, dt=0.5, compute=False)
    assert hasattr(lazy, "compute") and lazy.compute().sizes["obs"] == 3


def test_file_paths_and_errors(make_event_file):
    path = make_event_file(n=5000, duration=2000.0)
    p = xcube.power_spectrum(path, segment=200.0, dt=1.0)
    assert p.attrs["n_segments"] == 10 and p.attrs["obs_id"] == "0123456789"
    ev = xcube.open_events(path)
    with pytest.raises(ValueError, match="needs dt="):
        xcube.power_spectrum(ev, segment=200.0)
    with pytest.raises(ValueError, match="no GTI is as long as one segment"):
        xcube.power_spectrum(ev, segment=5000.0, dt=1.0)
    with pytest.raises(ValueError, match="norm="):
        xcube.power_spectrum(ev, dt=1.0, norm="rms")
    with pytest.raises(TypeError, match="EventList"):
        xcube.power_spectrum(xr.Dataset({"a": ("x", [1])}), dt=1.0)
    band = xcube.power_spectrum(ev, segment=200.0, dt=1.0, energy_band=(0.5, 2.0))
    assert band.attrs["mean_rate"] < p.attrs["mean_rate"]
    lc = xcube.lightcurve(ev, time_bin=100.0).compute()
    with pytest.raises(ValueError, match="holds only 2 bin.s. of 100 s.*segment=6400"):
        xcube.power_spectrum(lc)  # the default 256 s segment: 2 bins, no frequency below Nyquist


def test_float64_search_equals_stingrays_longdouble_search():
    """Segment bounds are longdouble (as Stingray makes them); the chunks are
    searched with float64 only, with the same answer, bound-equal events too."""
    from xcube.products import pds_stream

    plan = pds_stream.plan_segments(([1e8 + 0.1], [1.0e8 + 2e5 + 0.9]), 17.3, 0.3)
    assert plan.above.any() and (plan.bounds64 > plan.bounds).any()
    b = plan.bounds.astype(np.float64)
    t = np.sort(np.concatenate([np.random.default_rng(0).uniform(1e8, 1.0e8 + 2e5, 50_000), b,
                                np.nextafter(b, np.inf), np.nextafter(b, -np.inf)]))
    np.testing.assert_array_equal(pds_stream.count_below(t, plan), t.searchsorted(plan.bounds))


def test_bins_equal_to_the_rounding_of_mission_times_are_equal():
    """2.6 s bins at mission times of 1e8 s differ by ~1e-8 s in float64: still one width."""
    ev, _ = xcube.simulate.event_list("xmm-mos1", duration=3_000.0, sources=1, soft_protons=0, seed=4, t0=2.0e8)
    lc = xcube.lightcurve(ev, 2.6)
    w = lc["time_hi"].values - lc["time_lo"].values
    assert np.ptp(w) > 1e-9 * 2.6  # the case: not equal to 1e-9 relative
    p = xcube.power_spectrum(lc, segment=520.0)
    assert p.sizes["freq"] == 99 and xcube.to_stingray(lc).dt == 2.6
    # the frequency grid is that of the nominal 2.6 s bins, not of the first bin's rounded width
    np.testing.assert_allclose(p["freq"].values, np.arange(1, 100) / 520.0, rtol=1e-13)
    np.testing.assert_allclose(xcube.power_spectrum(lc, segment=520.0, dt=5.2)["freq"].values,
                               np.arange(1, 50) / 520.0, rtol=1e-13)
    uneven = lc.assign_coords(time_hi=lc["time_hi"] + np.where(np.arange(lc.sizes["time"]) == 3, 0.1, 0.0))
    with pytest.raises(ValueError, match="differ in width"):
        xcube.power_spectrum(uneven, segment=520.0)


def test_files_are_labelled_by_obs_id_and_instrument():
    R = "xmm"
    from conftest import real_file

    m1, m2 = real_file(R, "P0001730201M1S002MIEVLI.FTZ"), real_file(R, "P0001730201M2S003MIEVLI.FTZ")
    p = xcube.power_spectrum([m1, m2, m1], segment=512.0, dt=2.6)
    assert list(p["obs"].values) == ["0001730201/EMOS1", "0001730201/EMOS2", "0001730201/EMOS1#2"]


def test_written_spectrum_carries_the_span_of_its_segments(tmp_path):
    """Sweep p26: power-spectrum files had no TSTART/TSTOP/DATE-OBS/DATE-END,
    and an average of inputs of different time references claimed TIMESYS TT."""
    from astropy.io import fits
    from astropy.time import Time, TimeDelta

    from xcube.io.powspec import read_power_spectrum, write_power_spectrum

    gti = [[1.0e8, 1.0e8 + 1000.0], [1.0e8 + 1500.0, 1.0e8 + 2600.0]]
    ev = events(poisson_times(50.0, gti), gti, timesys="TT")
    p = xcube.power_spectrum(ev, segment=256.0, dt=0.5)
    # segments of 256 s from each GTI start: 3 in the first, 4 in the second
    assert p.attrs["tstart"] == 1.0e8 and p.attrs["tstop"] == 1.0e8 + 1500.0 + 4 * 256.0
    path = write_power_spectrum(tmp_path / "p.pds", p)
    h = fits.getheader(path, "POWSPEC")
    assert h["TSTART"] == p.attrs["tstart"] and h["TSTOP"] == p.attrs["tstop"] and h["TIMESYS"] == "TT"
    for key, t in (("DATE-OBS", h["TSTART"]), ("DATE-END", h["TSTOP"])):
        want = Time(50814.0, format="mjd", scale="tt") + TimeDelta(t, format="sec")
        assert abs((Time(h[key], scale="utc") - want).sec) < 1e-3
    back = read_power_spectrum(path)
    assert back.attrs["tstart"] == p.attrs["tstart"] and back.attrs["tstop"] == p.attrs["tstop"]
    # a light curve's spectrum: the span of its segments too
    lc = xcube.lightcurve(ev, 0.5)
    q = xcube.power_spectrum(lc, segment=256.0)
    assert (q.attrs["tstart"], q.attrs["tstop"]) == (p.attrs["tstart"], p.attrs["tstop"])
    # an average over one reference spans its inputs; over two references it claims neither's TIMESYS
    later = events(poisson_times(50.0, gti, seed=1) + 5000.0, np.asarray(gti) + 5000.0, timesys="TT")
    avg = xcube.power_spectrum([ev, later], segment=256.0, dt=0.5, average=True)
    assert (avg.attrs["tstart"], avg.attrs["tstop"]) == (1.0e8, 1.0e8 + 5000.0 + 1500.0 + 4 * 256.0)
    utc = events(poisson_times(50.0, gti, seed=2), gti, timesys="UTC", mjdref=51544.0)
    mixed = xcube.power_spectrum([ev, utc], segment=256.0, dt=0.5, average=True)
    assert "tstart" not in mixed.attrs
    h = fits.getheader(write_power_spectrum(tmp_path / "m.pds", mixed), "POWSPEC")
    assert "TIMESYS" not in h and "MJDREF" not in h and "TSTART" not in h and "DATE-OBS" not in h


def test_an_average_over_cameras_names_them():
    """Sweep p27: an averaged PDS of pn and MOS was written with INSTRUME 'UNKNOWN'."""
    gti = [[1.0e8, 1.0e8 + 1100.0]]
    pn = events(poisson_times(50.0, gti), gti, instrument="EPN")
    mos = events(poisson_times(20.0, gti, seed=1), gti, instrument="EMOS1")
    avg = xcube.power_spectrum([pn, mos], segment=256.0, dt=0.5, average=True)
    assert avg.attrs["instrument"] == "EMOS1+EPN" and avg.attrs["mission"] == "XMM"


def test_an_average_of_one_mjdref_but_two_time_systems_has_no_reference():
    """Review p27: same MJDREF, TT and UTC inputs: TSTART mixed the scales and TIMESYS said TT; same MJDREFI,
    different MJDREFF: MJDREFF 0 was written."""
    gti = [[1.0e8, 1.0e8 + 1100.0]]
    tt = events(poisson_times(50.0, gti), gti, timesys="TT")
    utc = events(poisson_times(50.0, gti, seed=1), gti, timesys="UTC")
    avg = xcube.power_spectrum([tt, utc], segment=256.0, dt=0.5, average=True)
    assert not {"timesys", "mjdref", "tstart", "tstop"} & set(avg.attrs)
    a = events(poisson_times(50.0, gti), gti, mjdrefi=55197, mjdreff=0.00076601852)
    b = events(poisson_times(50.0, gti, seed=1), gti, mjdrefi=55197, mjdreff=0.0)
    avg = xcube.power_spectrum([a, b], segment=256.0, dt=0.5, average=True)
    assert not {"mjdrefi", "mjdreff", "mjdref", "tstart"} & set(avg.attrs)
