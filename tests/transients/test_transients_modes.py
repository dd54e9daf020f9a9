"""Instrument modes in the bad-frame rule: the pn quadrant rule counts only
the CCDs the mode reads out (Small Window: CCD 4 alone), and a mode the rule
does not know is refused naming the file."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import XMM_WCS

import xcube
from xcube.io.write_events import write_events_fits
from xcube.missions import get_profile
from xcube.transients import frames

T0 = 7.0e8
DURATION = 10_000.0


def _pn_file(path, submode, ccds=(4,), seed=3, flare=60):
    """pn events (1.5 ct/s background, PI 0.3-9 keV, inside a 3000-pixel box)
    on ``ccds`` and a ``flare``-count burst at one position at T0 + 5000 s,
    with SUBMODE ``submode``."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(1.5 * DURATION)
    t = np.r_[rng.uniform(T0, T0 + DURATION, n), T0 + 5_000.0 + rng.normal(0.0, 10.0, flare)]
    x = np.r_[rng.integers(24_000, 27_000, n), np.full(flare, 25_500)]
    y = np.r_[rng.integers(24_000, 27_000, n), np.full(flare, 25_500)]
    ccd = np.r_[rng.choice(list(ccds), n), np.full(flare, ccds[0])]
    o = np.argsort(t)
    m = t.size
    cols = {"TIME": t[o], "X": x[o].astype(np.int32), "Y": y[o].astype(np.int32),
            "PI": np.r_[rng.integers(300, 9_000, n), np.full(flare, 2_000)][o].astype(np.int16),
            "PATTERN": np.zeros(m, np.uint8), "FLAG": np.zeros(m, np.int32), "CCDNR": ccd[o].astype(np.uint8),
            "RAWX": np.full(m, 30, np.int16), "RAWY": np.full(m, 150, np.int16)}
    hdr = {"TELESCOP": "XMM", "INSTRUME": "EPN", "OBS_ID": "0123456789", "OBJECT": "TEST", "MJDREF": 50814.0,
           "TIMESYS": "TT", "TSTART": T0, "TSTOP": T0 + DURATION, "TIMEZERO": 0.0, "DATAMODE": "IMAGING",
           "SUBMODE": submode, "EXPIDSTR": "S003", "RA_PNT": 263.657916666667, "DEC_PNT": -32.556, "PA_PNT": 93.66}
    return write_events_fits(path, cols, gti=([T0], [T0 + DURATION]), header=hdr, wcs=XMM_WCS)


def test_readout_ccds_of_the_pn_modes():
    pn = get_profile("xmm-pn")
    assert frames.readout_ccds(pn, "PrimeSmallWindow") == (4,)
    for mode in ("PrimeFullWindow", "PrimeFullWindowExtended", "PrimeLargeWindow", None, ""):
        assert frames.readout_ccds(pn, mode) == tuple(range(1, 13)), mode
    assert frames.readout_ccds(get_profile("xmm-mos1"), "PrimePartialW2") == ()  # no quadrant rule for MOS
    with pytest.raises(ValueError, match=r"odd\.fits: EPN mode SUBMODE='PrimeOddWindow' is unknown"):
        frames.readout_ccds(pn, "PrimeOddWindow", "odd.fits")


def test_small_window_pn_keeps_its_frames_and_finds_the_flare(tmp_path):
    """Small Window reads CCD 4 alone: the quadrant rule ("fewer than 4
    quadrants active") marked every frame bad, so the whole observation was
    lost (exposure 0, no detection, no reason)."""
    ev = xcube.open_events(_pn_file(tmp_path / "sw.fits", "PrimeSmallWindow"))
    edges = T0 + 50.0 * np.arange(201)
    bad = frames.bad_frames(ev, edges)
    assert not bad.any()  # no frame is empty at 1.5 ct/s in 50 s
    res = xcube.search_transients(ev, time_bin=50.0, hygiene=False)
    assert res.summary["n_bad_frames"] == 0 and res.summary["exposure"] == pytest.approx(DURATION)
    peaks = res.detections[res.detections["kind"] == "peak"]
    assert len(peaks) and np.any(np.abs(peaks["t_peak"] - (T0 + 5_000.0)) <= 50.0)
    assert np.any((np.abs(peaks["x"] - 25_500) < 400) & (np.abs(peaks["y"] - 25_500) < 400))
    # the same events declared full frame: the quadrant rule applies to all 12 CCDs
    ff = xcube.open_events(_pn_file(tmp_path / "ff.fits", "PrimeFullWindow"))
    assert frames.bad_frames(ff, edges).all()
    # merged with a full-frame MOS camera: the search's compact cube carries each camera's mode
    mos, _ = xcube.simulate.event_list("xmm-mos1", duration=DURATION, t0=T0, sources=0, soft_protons=0, seed=1,
                                       obs_id="0123456789")
    both = xcube.search_transients([ev, mos.assign_attrs(**{k: ev.attrs[k] for k in (
        "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CTYPE1", "CTYPE2")})],
        time_bin=50.0, hygiene=False)
    assert both.summary["n_bad_frames"] == 0
    # a cube of both cameras made by compact_cubes directly names their modes too
    from xcube.binning.axes import Axis
    from xcube.binning.events_pass import compact_cubes
    mos = mos.assign_attrs(**{k: ev.attrs[k] for k in ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CDELT1",
                                                      "CDELT2", "CTYPE1", "CTYPE2")})
    y, x = (Axis.from_edges(c, np.arange(20_000.0, 32_001.0, 400.0)) for c in ("y", "x"))
    cube = compact_cubes([ev, mos], [(Axis.from_edges("time", edges), None)], y, x)[0]
    assert [c["submode"] for c in cube.cameras] == ["PrimeSmallWindow", mos.attrs.get("submode")]
    assert not frames.bad_frames(cube).any()


def test_unknown_pn_mode_is_refused(tmp_path):
    path = _pn_file(tmp_path / "odd.fits", "PrimeOddWindow")
    with pytest.raises(ValueError, match=r"odd\.fits: EPN mode SUBMODE='PrimeOddWindow' is unknown to the "
                                         r"partial-CCD frame rule"):
        xcube.search_transients(xcube.open_events(path), time_bin=50.0)


def test_empty_frames_of_sparse_missions_are_good_time():
    """Outside XMM EPIC an empty frame is bad only where it is improbable: a
    NuSTAR list of 0.02 ct/s at 100 s frames lost 40 % of its exposure to
    "bad" empty frames; a camera with no event at 5 ct/s is still bad."""
    nustar, mos = get_profile("nustar-fpma"), get_profile("xmm-mos1")
    expo = np.full(10, 100.0)
    sparse = np.array([1, 0, 2, 0, 0, 1, 3, 0, 1, 2])  # 1 ct/frame: empty frames are expected
    assert not frames.bad_frames_from_counts([sparse], [nustar], exposure=[expo]).any()
    dense = np.array([500, 480, 0, 510, 495, 0, 505, 490, 500, 520])  # 400 ct/frame: empty = not exposing
    assert frames.bad_frames_from_counts([dense], [nustar], exposure=[expo]).tolist() == (dense == 0).tolist()
    # XMM EPIC keeps the reference's rule: every empty frame is bad
    assert frames.bad_frames_from_counts([sparse], [mos], exposure=[expo]).tolist() == (sparse == 0).tolist()
    assert frames.bad_frames_from_counts([sparse], [nustar]).tolist() == (sparse == 0).tolist()  # no exposure


def test_sparse_nustar_search_keeps_its_good_time():
    ev = xcube.open_events(_real_nustar())
    res = xcube.search_transients(ev, time_bin=100.0, energy_band=(3.0, 79.0))
    assert res.summary["n_bad_frames"] == 0
    assert res.summary["exposure"] == pytest.approx(ev.attrs["exposure"])


def _real_nustar():
    from conftest import real_file

    return real_file("nustar", "barycenter_dummy_evt_nustar_B1937.evt")
