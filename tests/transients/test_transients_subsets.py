"""Exposure subsets: cameras whose exposures do not overlap (or several
exposures of one camera) are searched separately, the subset in the run id."""
from __future__ import annotations

import numpy as np

import xcube
from xcube import simulate
from xcube.transients.grid import exposure_subsets

T0 = 7.0e8


def _cam(profile, t0, duration, seed, **kw):
    ev, _ = simulate.event_list(profile, duration=duration, sources=2, soft_protons=0, seed=seed, t0=t0, **kw)
    return ev


def test_non_overlapping_pn_and_mos_give_one_run_per_subset():
    flare = [simulate.Flare(t_peak=3_000.0, amplitude=1.0, width=50.0, ra=150.0, dec=2.2)]
    pn = _cam("xmm-pn", T0, 6_000.0, 1)
    mos = _cam("xmm-mos1", T0 + 8_000.0, 6_000.0, 2, flares=flare)  # starts after the pn exposure ends
    assert exposure_subsets([pn, mos]) == [[0], [1]]
    res = xcube.search_transients([pn, mos], time_bin=100.0)
    assert [r.run_id for r in res] == ["0999990101_0_100_0.2_12.0", "0999990101_1_100_0.2_12.0"]
    assert [r.params["cameras"] for r in res] == [["EPN"], ["EMOS1"]]
    assert [r.params["subset"] for r in res] == [0, 1]
    assert res[0].summary["exposure"] == 6_000.0 and res[1].summary["exposure"] == 6_000.0
    det = res.detections
    assert (det["run_id"].str.split("_").str[1] == "1").any()  # the MOS flare, found in subset 1
    # several parameter sets: one run per subset and set
    grid = xcube.search_transients([pn, mos], time_bin=[100.0, 500.0])
    assert len(grid) == 4 and len({r.run_id for r in grid}) == 4
    # the old behaviour on request: no common good time
    one = xcube.search_transients([pn, mos], time_bin=100.0, subsets=False)
    assert "no good time" in one.summary["reason"]


def test_overlapping_cameras_stay_together_and_two_exposures_of_a_camera_split():
    pn1 = _cam("xmm-pn", T0, 5_000.0, 3)
    m1 = _cam("xmm-mos1", T0 - 300.0, 5_600.0, 4)  # overlaps the pn exposure
    pn2 = _cam("xmm-pn", T0 + 6_000.0, 4_000.0, 5)  # a second pn exposure, after the first
    assert exposure_subsets([pn1, m1]) == [[0, 1]]
    assert exposure_subsets([pn1, m1, pn2]) == [[0, 1], [2]]
    res = xcube.search_transients([pn1, m1, pn2], time_bin=200.0)
    assert [r.params["cameras"] for r in res] == [["EPN", "EMOS1"], ["EPN"]]
    assert [r.run_id.split("_")[1] for r in res] == ["0", "1"]
    assert res[0].summary["exposure"] == 5_000.0  # the common good time of pn and MOS1
    # the subset number starts at the given one
    res = xcube.search_transients([pn1, m1, pn2], time_bin=200.0, subset=3)
    assert [r.run_id.split("_")[1] for r in res] == ["3", "4"]


def test_short_overlap_is_not_merged():
    a = _cam("xmm-pn", T0, 5_000.0, 6)
    b = _cam("xmm-mos2", T0 + 4_500.0, 5_000.0, 7)  # 500 s in common: less than half of either
    assert exposure_subsets([a, b]) == [[0], [1]]
    c = _cam("xmm-mos2", T0 + 1_000.0, 5_000.0, 8)  # 4000 s in common
    assert exposure_subsets([a, c]) == [[0, 1]]
    assert np.all([isinstance(g, list) for g in exposure_subsets([a])])


def test_cameras_events_outside_the_common_good_time_are_not_binned():
    """A camera's events in another camera's GTI gap have no exposure in the
    merged cube: they are dropped, not counted (they made false flares)."""
    m1 = _cam("xmm-mos1", T0, 6_000.0, 11, gaps=[(3_010.0, 3_490.0)])
    m2 = _cam("xmm-mos2", T0, 6_000.0, 12)
    common = xcube.gti.intersection(xcube.gti.from_dataset(m1), xcube.gti.from_dataset(m2))
    res = xcube.search_transients([m1, m2], time_bin=50.0, hygiene=False)
    inside = sum(int(xcube.select(e, expr=xcube.missions.profile_of(e).screening, energy_band=(0.2, 12.0),
                                  gti=common).sizes["event"]) for e in (m1, m2))
    everything = sum(int(xcube.select(e, expr=xcube.missions.profile_of(e).screening,
                                      energy_band=(0.2, 12.0)).sizes["event"]) for e in (m1, m2))
    assert res.summary["n_events"] == inside < everything  # MOS2 has events in the MOS1 gap
    assert res.summary["exposure"] == 6_000.0 - 480.0


def test_real_mos1_and_mos2_with_different_gti_starts_give_no_false_flare():
    from conftest import real_file

    a = xcube.open_events(real_file("xmm", "xga_0201901401_mos1_exp1_clean_evts.fits"))
    b = xcube.open_events(real_file("xmm", "xga_0201901401_mos2_exp1_clean_evts.fits"))
    for band in ((0.2, 12.0), (0.5, 2.0)):  # a frame held 2.5 s of common good time and all of MOS2's events
        assert len(xcube.search_transients([a, b], time_bin=50.0, energy_band=band).detections) == 0


def test_a_cameras_time_outside_its_subset_is_named(caplog):
    """Sweep p28: a camera observing longer than the others in its subset lost the rest of its time
    without a word. It is still searched only on the common time (a known limit), but a warning names
    the file and the seconds left out."""
    import logging

    pn = _cam("xmm-pn", T0, 6_000.0, 1)
    mos = _cam("xmm-mos1", T0, 9_000.0, 2)
    assert exposure_subsets([pn, mos]) == [[0, 1]]
    with caplog.at_level(logging.WARNING, logger="xcube.transients"):
        xcube.search_transients([pn, mos], time_bin=500.0)
    said = [r.getMessage() for r in caplog.records if "not searched" in r.getMessage()]
    assert len(said) == 1 and "3000.0 s" in said[0]
