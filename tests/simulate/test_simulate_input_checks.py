"""Parameters of xcube.simulate refused before anything is drawn, naming the
parameter and the allowed values: positions off the simulated sky range in
event_list, energy bands outside the mission's range in inject_*, frame
lengths longer than the efficiency's observations, bad seeds, PSF widths and
source counts."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import real_file

import xcube
import xcube.simulate as sim

T0 = 7.0e8
SKY = r"X 1\.\.51840, Y 1\.\.51840 \(TLMIN/TLMAX\)"


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(flares=[dict(t_peak=1000, amplitude=1.0, width=50, ra=10.0, dec=-60.0)]),
         r"event_list: flares\[0\]: position ra=10\.0, dec=-60\.0 \(not on the list's sky projection.*" + SKY),
        (dict(flares=[dict(t_peak=1000, amplitude=1.0, width=50, x=1e9, y=1e9)]),
         r"event_list: flares\[0\]: position x=1000000000\.0, y=1000000000\.0 is outside .*" + SKY),
        (dict(eclipses=[dict(t_start=500, duration=100, x=25921.0, y=0.0)]),
         r"event_list: eclipses\[0\]: position x=25921\.0, y=0\.0 is outside"),
        (dict(sources=[dict(rate=0.01), dict(rate=0.01, ra=330.0, dec=2.2)]),
         r"event_list: sources\[1\]: position ra=330\.0, dec=2\.2 \(not on the list's sky projection"),
    ],
)
def test_event_list_refuses_positions_off_the_sky_range(kw, match):
    """A transient over 90 deg from the pointing had X = Y = -2147483648; x=1e9 piled its events on one pixel."""
    kw = {**dict(duration=2000.0, seed=0, sources=0, soft_protons=0), **kw}
    with pytest.raises(ValueError, match=match):
        sim.event_list("xmm-pn", **kw)


def test_event_list_positions_inside_the_range_still_work():
    ev, truth = sim.event_list("xmm-pn", duration=2000.0, seed=0, sources=0, soft_protons=0,
                               flares=[dict(t_peak=1000, amplitude=1.0, width=50, x=20000.0, y=30000.0)])
    assert truth["x"][0] == 20000.0 and truth["counts"][0] > 50
    assert ev["x"].values.min() >= 1


@pytest.fixture(scope="module")
def mos1():
    ev, _ = sim.event_list("xmm-mos1", duration=2000.0, seed=3, sources=0, soft_protons=0)
    return ev.compute()


@pytest.mark.parametrize(
    "band, match",
    [
        ((50.0, 79.0), r"inject_flare: energy_band=\(50\.0, 79\.0\): must lie within .*0\.15-15 keV"),
        ((0.0, 100.0), r"energy_band=\(0\.0, 100\.0\): must lie within"),
        ((12.0, 0.2), r"energy_band=\(12\.0, 0\.2\): must be two finite energies \[keV\] with low < high"),
        ((float("nan"), 2.0), r"energy_band=\(nan, 2\.0\): must be two finite energies"),
        ((1.0, 1.0), r"energy_band=\(1\.0, 1\.0\): must be two finite"),
        ((1.0, 2.0, 3.0), r"energy_band=\(1\.0, 2\.0, 3\.0\): must be a \(low, high\) pair"),
    ],
)
def test_inject_refuses_energy_bands_outside_the_mission_range(mos1, band, match):
    """(50, 79) keV wrapped MOS PI to negative int16 values, (0, 100) gave PI 0, a reversed band was accepted."""
    with pytest.raises(ValueError, match=match):
        sim.inject_flare(mos1, x=25921.0, y=25921.0, t_peak=T0 + 1000.0, amplitude=1.0, width=100.0, seed=1,
                         energy_band=band)
    with pytest.raises(ValueError, match="inject_eclipse: energy_band="):
        sim.inject_eclipse(mos1, x=25921.0, y=25921.0, t_start=T0 + 500.0, duration=100.0, seed=1, energy_band=band)


def test_inject_pi_inside_the_band_and_the_pi_range(mos1):
    out, truth = sim.inject_flare(mos1, x=25921.0, y=25921.0, t_peak=T0 + 1000.0, amplitude=2.0, width=100.0,
                                  seed=1, energy_band=(0.15, 15.0))
    new = out["pi"].values[out["pattern"].values == 0]
    assert truth["counts"][0] > 100
    assert new.min() >= 150 and new.max() <= 15000


def test_inject_default_band_fits_nustar():
    """The default 0.2-12 keV band gave NuSTAR events negative PI (energies below 3 keV)."""
    from xcube.missions import profile_of

    nu = xcube.open_events(real_file("nustar", "barycenter_dummy_evt_nustar_B1937.evt"))
    prof = profile_of(nu)
    t = float(nu.gti_start.values[0])
    out, truth = sim.inject_flare(nu, x=500, y=500, t_peak=t, amplitude=5.0, width=50, seed=1)
    new = ~np.isin(out["time"].values, nu["time"].values)
    assert truth["counts"][0] > 50 and new.sum() == truth["counts"][0]
    pi = out["pi"].values[new]
    assert prof.pi_range[0] <= pi.min() and pi.max() <= prof.pi_range[1]
    e = prof.energy(pi)
    assert e.min() >= 3.0 - 0.04 and e.max() <= 12.0 + 0.04  # the default: 0.2-12 keV within NuSTAR's 3-79 keV
    with pytest.raises(ValueError, match=r"energy_band=\(0\.2, 12\.0\): must lie within .*3-79 keV"):
        sim.inject_flare(nu, x=500, y=500, t_peak=t, amplitude=5.0, width=50, seed=1, energy_band=(0.2, 12.0))


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(psf_fwhm_arcsec=-1.0), r"inject_flare: psf_fwhm_arcsec=-1\.0: must be a finite number > 0 arcsec"),
        (dict(psf_fwhm_arcsec=0.0), r"psf_fwhm_arcsec=0\.0: must be"),
        (dict(psf_fwhm_arcsec=float("nan")), r"psf_fwhm_arcsec=nan: must be"),
        (dict(psf_fwhm_arcsec=float("inf")), r"psf_fwhm_arcsec=inf: must be"),
        (dict(seed=-3), r"inject_flare: seed=-3: must be an integer >= 0"),
        (dict(seed=1.5), r"inject_flare: seed=1\.5: must be an integer >= 0"),
    ],
)
def test_inject_refuses_bad_psf_and_seed(mos1, kw, match):
    with pytest.raises(ValueError, match=match):
        sim.inject_flare(mos1, x=25921.0, y=25921.0, t_peak=T0 + 1000.0, amplitude=1.0, width=100.0, **kw)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(seed=-1), r"event_list: seed=-1: must be an integer >= 0"),
        (dict(seed=1.5), r"event_list: seed=1\.5: must be an integer >= 0"),
        (dict(seed="1"), r"event_list: seed='1': must be an integer >= 0"),
        (dict(sources=2.5), r"event_list: sources=2\.5: must be an integer >= 0"),
        (dict(soft_protons=float("nan")), r"event_list: soft_protons=nan: must be an integer >= 0"),
    ],
)
def test_event_list_refuses_bad_seed_and_counts(kw, match):
    with pytest.raises(ValueError, match=match):
        sim.event_list("xmm-pn", duration=1000.0, **kw)


def test_event_list_takes_big_and_numpy_seeds():
    a, _ = sim.event_list("xmm-pn", duration=500.0, seed=12345678901234567890123, sources=0, soft_protons=0)
    b, _ = sim.event_list("xmm-pn", duration=500.0, seed=12345678901234567890124, sources=0, soft_protons=0)
    assert not np.array_equal(a["time"].values, b["time"].values)  # (a big seed is not rounded through a float)
    c, _ = sim.event_list("xmm-pn", duration=500.0, seed=np.int64(3), sources=0, soft_protons=0)
    d, _ = sim.event_list("xmm-pn", duration=500.0, seed=3, sources=0, soft_protons=0)
    assert np.array_equal(c["time"].values, d["time"].values)


def test_efficiency_refuses_frames_longer_than_the_observation_before_any_search(monkeypatch):
    """It searched everything, then raised KeyError 'flagged_voxels' on the empty results."""
    import xcube.simulate.events as events

    def no_simulation(*a, **k):
        raise AssertionError("simulated before the check")

    monkeypatch.setattr(events, "event_list", no_simulation)
    with pytest.raises(ValueError, match=r"efficiency: time_bins\[1\]=200 s: duration=100 s holds fewer than two "
                                         r"frames of it"):
        sim.efficiency("xmm-pn", time_bins=(50.0, 200.0), amplitudes=(1.0,), n_obs=1, n_false=1, duration=100)
    with pytest.raises(ValueError, match=r"efficiency: seed=-1: must be an integer >= 0"):
        sim.efficiency("xmm-pn", time_bins=(50.0,), amplitudes=(1.0,), n_obs=1, n_false=1, seed=-1)
