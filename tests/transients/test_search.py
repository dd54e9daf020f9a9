"""The transient search end to end: injection and recovery, false alarms,
empty results, refused modes, several parameter sets, writers, CLI."""
from __future__ import annotations

import json
import re

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord
from conftest import real_file

import xcube
from xcube import simulate
from xcube.transients.detect import count_quantiles, iau_name


def _sep_arcsec(ra1, dec1, ra2, dec2):
    return SkyCoord(ra1 * u.deg, dec1 * u.deg).separation(SkyCoord(ra2 * u.deg, dec2 * u.deg)).arcsec


@pytest.fixture(scope="module")
def observation():
    """A 20 ks pn observation with one bright flare and one total eclipse."""
    flares = [simulate.Flare(t_peak=6_025.0, amplitude=1.0, width=40.0)]
    eclipses = [simulate.Eclipse(t_start=12_000.0, duration=2_000.0, depth=1.0, rate=0.5)]
    return simulate.event_list("xmm-pn", duration=20_000.0, flares=flares, eclipses=eclipses, sources=5,
                               soft_protons=0, seed=11)


@pytest.fixture(scope="module")
def result(observation):
    ev, _ = observation
    # the flare falls on the border of pn CCDs 10 and 11, which the default detector hygiene drops
    # (EXOD's 3-pixel CCD border; tests/test_hygiene.py checks that); keep the border here
    return xcube.search_transients(ev, time_bin=50.0, size_arcsec=20.0, energy_band=(0.2, 12.0), sigma=3.0,
                                   hygiene={"border": False})


def _matched(res, truth_row, kind):
    det = res.detections[res.detections["kind"] == kind]
    assert len(det), f"no {kind} detected; detections:\n{res.detections}"
    sep = _sep_arcsec(det["ra"].values, det["dec"].values, truth_row["ra"], truth_row["dec"])
    return det.iloc[int(np.argmin(sep))], float(np.min(sep))


def test_flare_recovered_at_position_and_time(observation, result):
    _, truth = observation
    flare = truth[truth["kind"] == "flare"].iloc[0]
    row, sep = _matched(result, flare, "peak")
    assert sep < 10.0
    # the peak frame holds the flare peak (t_peak +- one frame)
    assert abs(row["t_peak"] - flare["t_peak"]) <= 50.0
    assert row["t_start"] <= flare["t_peak"] <= row["t_stop"]
    assert row["log10_bayes"] > xcube.bayes.threshold(3.0).peak
    assert row["counts_est_16"] < row["counts_est_50"] < row["counts_est_84"]
    assert row["name"].startswith("XCUBE J")


def test_eclipse_recovered(observation, result):
    _, truth = observation
    ecl = truth[truth["kind"] == "eclipse"].iloc[0]
    row, sep = _matched(result, ecl, "eclipse")
    assert sep < 10.0
    assert ecl["t_start"] - 50 <= row["t_start"] and row["t_stop"] <= ecl["t_stop"] + 50


def test_result_structure(result):
    lc = result.lightcurves
    assert set(lc.data_vars) >= {"counts", "expected", "log10_bayes_peak", "log10_bayes_eclipse", "bti", "bad_frame"}
    assert lc.sizes["detection"] == len(result.detections)
    assert lc.sizes["time"] == result.cube.sizes["time"] == 400
    # cube, expected and masks are lazy
    import dask.array as da
    assert isinstance(result.cube.data, da.Array)
    assert isinstance(result.expected.data, da.Array)
    assert isinstance(result.masks["peak"].data, da.Array)
    s = result.summary
    assert s["exposure"] == pytest.approx(20_000.0)
    assert set(s["expected_false_alarms"]) == {"peak", "eclipse"}
    assert s["reason"] == ""
    # light-curve counts of a detection equal the cube summed over its pixels
    assert float(lc["counts"].sum()) > 0


def test_nan_expected_never_flagged(result):
    mu = result.expected.values
    peak = result.masks["peak"].values
    ecl = result.masks["eclipse"].values
    assert np.isnan(mu).any()  # outside the field of view
    assert not (peak & np.isnan(mu)).any()
    assert not (ecl & np.isnan(mu)).any()


def test_masks_agree_with_direct_bayes_test(result):
    n = result.cube.values
    mu = result.expected.values
    thr = xcube.bayes.threshold(3.0)
    ok = np.isfinite(mu)
    bp = np.full(n.shape, -np.inf)
    bp[ok] = xcube.bayes.log10_bayes_peak(n[ok], mu[ok])
    assert np.array_equal(result.masks["peak"].values, bp > thr.peak)


def test_pure_background_false_detections_match_expectation():
    ev, _ = simulate.event_list("xmm-mos1", duration=20_000.0, sources=0, soft_protons=0, seed=3)
    res = xcube.search_transients(ev, time_bin=50.0)
    fa = res.summary["expected_false_alarms"]["peak"] + res.summary["expected_false_alarms"]["eclipse"]
    # detections are connected groups of flagged voxels: at most the voxel count
    assert len(res.detections) <= fa + 4 * np.sqrt(fa) + 3


def test_injection_into_real_mos_file():
    ev = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"))
    t_peak = float(ev.gti_start.values[0]) + 5_000.0
    ra, dec = 263.70, -32.53
    ev2, truth = simulate.inject_flare(ev, t_peak=t_peak, amplitude=1.0, width=60.0, ra=ra, dec=dec, seed=5)
    res = xcube.search_transients(ev2, time_bin=50.0)
    row, sep = _matched(res, truth.iloc[0], "peak")
    assert sep < 10.0
    assert abs(row["t_peak"] - t_peak) <= 50.0


def test_several_parameter_sets(observation):
    ev, _ = observation
    res = xcube.search_transients(ev, time_bin=[50.0, 200.0], energy_band=[(0.2, 2.0), (2.0, 12.0)])
    assert [r.run_id for r in res] == [
        "0999990101_0_50_0.2_2.0", "0999990101_0_50_2.0_12.0",
        "0999990101_0_200_0.2_2.0", "0999990101_0_200_2.0_12.0"]
    assert set(res.detections["run_id"]) <= {r.run_id for r in res}
    assert len(res.summary) == 4


def test_merged_cameras_and_observation_check():
    pn, _ = simulate.event_list("xmm-pn", duration=5_000.0, sources=2, soft_protons=0, seed=1)
    m1, _ = simulate.event_list("xmm-mos1", duration=5_000.0, sources=2, soft_protons=0, seed=2)
    res = xcube.search_transients([pn, m1], time_bin=100.0)
    assert res.params["cameras"] == ["EPN", "EMOS1"]
    n_cube = int(res.cube.sum())
    assert n_cube > 0
    other, _ = simulate.event_list("xmm-mos2", duration=5_000.0, obs_id="0000000001", seed=3)
    pn.attrs["source"], other.attrs["source"] = "pn_events.fits", "mos2_events.fits"
    with pytest.raises(ValueError, match=r"different observations: pn_events\.fits \(OBS_ID \d+\); "
                                         r"mos2_events\.fits \(OBS_ID 0000000001\)"):
        xcube.search_transients([pn, other])


def test_empty_results_with_reason(make_event_file):
    ev = xcube.open_events(make_event_file(n=500, duration=40.0, gti=([1e8], [1e8 + 40.0])))
    res = xcube.search_transients(ev, time_bin=50.0)
    assert len(res.detections) == 0 and "fewer than two" in res.summary["reason"]
    ev_a = xcube.open_events(make_event_file(n=500, t0=1e8, duration=100.0, name="a.fits"))
    ev_b = xcube.open_events(make_event_file(n=500, t0=2e8, duration=100.0, name="b.fits",
                                             header={"INSTRUME": "EMOS2"}))
    res = xcube.search_transients([ev_a, ev_b], time_bin=10.0, subsets=False)
    assert len(res.detections) == 0 and "no good time" in res.summary["reason"]
    # by default the two exposures that do not overlap are two subsets, each searched
    res = xcube.search_transients([ev_a, ev_b], time_bin=10.0)
    assert [r.run_id.split("_")[1] for r in res] == ["0", "1"] and all(r.summary["reason"] == "" for r in res)


def test_runs_without_kept_frames_say_why(make_event_file, caplog):
    """A run whose every frame is dropped (a band without events, the pn
    quadrant rule, gti_only on a flare) returned reason "" and logged nothing."""
    ev = xcube.open_events(make_event_file(n=2_000, duration=2_000.0, name="plain.fits"))
    with caplog.at_level("WARNING", logger="xcube.transients"):
        res = xcube.search_transients(ev, time_bin=100.0, energy_band=(12.0, 13.0), hygiene=False)
    why = res.summary["reason"]
    assert res.summary["exposure"] == 0.0 and len(res.detections) == 0
    assert "no events in the band 12-13 keV in" in why and "plain.fits" in why and "nothing to search" in why
    assert why in caplog.text
    # NuSTAR (no empty-frame rule: a band whose rate is zero leaves every frame good): the band is still empty
    nu = xcube.open_events(make_event_file(n=2_000, duration=2_000.0, name="nu.fits",
                                           header={"TELESCOP": "NuSTAR", "INSTRUME": "FPMA"},
                                           columns={"PI": np.arange(2_000, dtype=np.int16) % 1000}))
    res = xcube.search_transients(nu, time_bin=100.0, energy_band=(70.0, 75.0))
    assert "no events in the band 70-75 keV in" in res.summary["reason"] and len(res.detections) == 0
    # pn events on CCD 4 alone declared full frame: every frame is bad by the quadrant rule
    rng = np.random.default_rng(1)
    pn = xcube.open_events(make_event_file(n=4_000, duration=2_000.0, name="pn_ff.fits", header={"INSTRUME": "EPN"},
                                           columns={"CCDNR": np.full(4_000, 4, np.uint8),
                                                    "PATTERN": rng.integers(0, 5, 4_000).astype(np.uint8)}))
    why = xcube.search_transients(pn, time_bin=100.0, hygiene=False).summary["reason"]
    assert "all 20 frames of" in why and "are bad: 20 by the pn partial-CCD rule of" in why
    assert "pn_ff.fits" in why
    # a flare in every frame with gti_only=True: every frame is a dropped BTI frame
    hot = xcube.open_events(make_event_file(n=10_000, duration=2_000.0, name="flaring.fits"))
    res = xcube.search_transients(hot, time_bin=100.0, gti_only=True, hygiene=False)
    assert res.summary["n_bti_frames"] == 20
    assert "all 20 frames of" in res.summary["reason"] and "gti_only=True" in res.summary["reason"]
    assert "flaring.fits" in res.summary["reason"]
    # a run with frames left says nothing
    assert xcube.search_transients(hot, time_bin=100.0, hygiene=False).summary["reason"] == ""


def test_timing_mode_refused(make_event_file):
    path = make_event_file(n=200, header={"INSTRUME": "EPN", "DATAMODE": "TIMING", "SUBMODE": "PrimeTiming"})
    ev = xcube.open_events(path)
    with pytest.raises(ValueError, match=r"not supported by the transient search"):
        xcube.search_transients(ev)


def test_write_and_zarr(result, tmp_path):
    out = result.write(tmp_path / "run")
    for f in ("detections.csv", "detections.parquet", "lightcurves.parquet", "summary.json", "detections.png",
              "detections.reg"):
        assert (out / f).exists(), f
    assert len(pd.read_parquet(out / "detections.parquet")) == len(result.detections)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run_id"] == result.run_id
    from regions import Regions
    assert len(Regions.read(str(out / "detections.reg"), format="ds9")) == len(result.detections)
    with pytest.raises(FileExistsError):
        result.write(tmp_path / "run")
    store = result.to_zarr(tmp_path / "run.zarr")
    back = xcube.io.open_zarr_events(store)
    assert int(back["counts"].sum()) == int(result.cube.sum())


def test_iau_name_and_quantiles():
    assert list(iau_name([0.0, 359.99999], [-0.5, 89.9999])) == ["XCUBE J000000.0-003000", "XCUBE J235959.9+895959"]
    q = count_quantiles(10, 1.0, "peak")
    assert np.all(np.diff(q) > 0) and 5 < q[1] < 12
    q = count_quantiles(0, 10.0, "eclipse")
    assert np.all(np.diff(q) > 0) and q[-1] <= 10.0


def test_cli_demo_and_search(tmp_path, capsys):
    from xcube.cli import main

    assert main(["demo", "--out", str(tmp_path / "demo"), "--duration", "8000"]) == 0
    out = capsys.readouterr().out
    assert "run_id" in out and "0999990101_0_50_0.2_12.0" in out
    # times at full precision: seconds after T0 with 0.1 s and UTC, never 7.00012e+08
    assert "T0 = 700000000.000 s" in out and "t_peak-T0" in out and "utc_peak" in out
    assert not re.search(r"\d[eE][+-]\d\d", out)
    assert (tmp_path / "demo" / "results" / "detections.csv").exists()
    evfile = tmp_path / "demo" / "events_pn.fits"
    assert main(["search", str(evfile), "--time-bin", "200", "--energy", "0.2", "12",
                 "--out", str(tmp_path / "s"), "--no-figures"]) == 0
    assert (tmp_path / "s" / "0999990101_0_200_0.2_12.0" / "summary.json").exists()
    capsys.readouterr()
    assert main(["search", str(evfile), "--time-bin", "200", "--energy", "0.2", "12", "--shifts", "--no-hygiene",
                 "--no-subsets", "--out", str(tmp_path / "s2"), "--no-figures"]) == 0
    summary = json.loads((tmp_path / "s2" / "0999990101_0_200_0.2_12.0" / "summary.json").read_text())
    assert set(summary["n_detections_per_grid"]) == {"0", "xy", "t", "xyt"} and not any(summary["hygiene"].values())
    assert "hygiene_hot_pixels" in capsys.readouterr().out


def test_default_band_is_the_missions(make_event_file):
    """Without energy_band the search takes EXOD's 0.2-12 keV for XMM and the
    mission's calibrated range elsewhere (NuSTAR 3-79 keV), without a warning."""
    import warnings

    from xcube.transients.grid import default_band

    xmm = xcube.open_events(make_event_file(n=200))
    assert default_band([xmm]) == (0.2, 12.0)
    nu = xcube.open_events(make_event_file(n=200, header={"TELESCOP": "NuSTAR", "INSTRUME": "FPMA"}))
    assert default_band([nu]) == (3.0, 79.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = xcube.search_transients(nu, time_bin=500.0)
    assert not [w for w in caught if "reaches outside" in str(w.message)], [str(w.message) for w in caught]
    assert res.run_id.endswith("_3.0_79.0")


def test_a_field_of_few_cells_warns_that_the_background_cannot_be_told_apart(make_event_file):
    """A region-extracted event list (a field of a few cells) cannot give the
    background model a level of its own: the search says so, naming the file."""
    rng = np.random.default_rng(1)
    n = 3000
    path = make_event_file(n=n, columns={"X": rng.integers(26000, 28000, n).astype(np.int32),
                                         "Y": rng.integers(26000, 28000, n).astype(np.int32)})
    with pytest.warns(UserWarning, match=r"only \d+ cells outside the source mask hold counts"):
        xcube.search_transients(xcube.open_events(path), time_bin=500.0)


def test_too_few_frames_reason_gives_span_and_good_time(make_event_file):
    """The reason called the span from the first to the last good time 'good time' (20000 s for 19200 s)."""
    gti = ([1e8, 1e8 + 1000.0], [1e8 + 800.0, 1e8 + 2000.0])
    ev = xcube.open_events(make_event_file(n=500, duration=2000.0, gti=gti))
    res = xcube.search_transients(ev, time_bin=5000.0)
    assert "(2000.0 s, of which 1800.0 s good time)" in res.summary["reason"]
