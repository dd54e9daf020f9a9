"""Bad time intervals (10-12 keV flares) and bad frames (empty, pn partial CCD)."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from conftest import XMM_WCS, real_file

import xcube
from xcube.io.events_fits import events_dataset
from xcube.transients import bti as btimod
from xcube.transients import frames

T0 = 1.0e8


def _attrs(profile="xmm-mos1", instrument="EMOS1"):
    a = {"mission": "XMM-Newton", "instrument": instrument, "profile": profile, "source": f"generated-{instrument}",
         "selection": []}
    for i, k in ((1, "X"), (2, "Y")):
        w = XMM_WCS[k]
        a.update({f"CTYPE{i}": w["ctype"], f"CRVAL{i}": w["crval"], f"CRPIX{i}": float(w["crpix"]),
                  f"CDELT{i}": w["cdelt"]})
    return a


def make_events(t, pi, ccd=None, gti=None, profile="xmm-mos1", instrument="EMOS1", chunk=997, pattern=None,
                flag=None):
    """Events at times ``t`` with PI ``pi``; PATTERN and FLAG 0 (kept by the
    default screening) unless given."""
    order = np.argsort(t, kind="stable")
    t = np.asarray(t, dtype=np.float64)[order]
    pi = np.asarray(pi, dtype=np.int16)[order]
    n = t.size
    rng = np.random.default_rng(n)
    cols = {"time": t, "x": rng.integers(20000, 30000, n).astype(np.int32),
            "y": rng.integers(20000, 30000, n).astype(np.int32), "pi": pi,
            "energy": (pi * 0.001).astype(np.float32),
            "pattern": (np.zeros(n) if pattern is None else np.asarray(pattern))[order].astype(np.int16),
            "flag": (np.zeros(n) if flag is None else np.asarray(flag))[order].astype(np.int32)}
    if ccd is not None:
        cols["ccdnr"] = np.asarray(ccd, dtype=np.int16)[order]
    cols = {k: da.from_array(v, chunks=chunk) for k, v in cols.items()}
    return events_dataset(cols, gti or ([T0], [T0 + 2000.0]), {}, _attrs(profile, instrument))


def uniform(rng, rate, a, b, pi_range=(10001, 12000)):
    n = rng.poisson(rate * (b - a))
    return rng.uniform(a, b, n), rng.integers(*pi_range, n)


# ---------------------------------------------------------------- BTIs from arrays
def test_bti_from_rate_edges_exact():
    edges = 1000.0 + 100.0 * np.arange(11)
    rate = np.array([0.6, 0.1, 0.1, 0.7, 0.8, 0.1, 0.5, 0.1, 0.9, 1.0])
    start, stop = btimod.bti_from_rate(rate, edges, 0.5)
    # bins 0, 3-4 and 8-9 are bad (0.5 itself is not above 0.5); bounds are the
    # bins' own edges: no one-bin shift (EXOD reports [900, 1000), ...)
    np.testing.assert_array_equal(start, [1000.0, 1300.0, 1800.0])
    np.testing.assert_array_equal(stop, [1100.0, 1500.0, 2000.0])
    s, e = btimod.bti_from_rate(np.full(10, 2.0), edges)
    assert list(s) == [1000.0] and list(e) == [2000.0]
    s, e = btimod.bti_from_rate(np.zeros(10), edges)
    assert s.size == 0 and e.size == 0 and s.dtype == np.float64
    s, e = btimod.bti_from_rate(np.array([np.nan, 1.0, np.nan]), [0.0, 1.0, 2.0, 3.0])
    assert list(s) == [1.0] and list(e) == [2.0]


def test_bti_from_lightcurve_uses_exposure():
    edges = np.array([0.0, 100.0, 200.0, 300.0, 350.0])
    counts = np.array([40, 40, 30, 30])
    # full bins: 0.4 ct/s; bin 1 only 50 s exposed: 0.8 ct/s; last bin 50 s long: 0.6 ct/s
    s, e = btimod.bti_from_lightcurve(counts, edges, exposure=[100.0, 50.0, 0.0, 50.0])
    np.testing.assert_array_equal(s, [100.0, 300.0])
    np.testing.assert_array_equal(e, [200.0, 350.0])
    s, e = btimod.bti_from_lightcurve(counts, edges)  # default exposure: bin widths
    np.testing.assert_array_equal(s, [300.0])
    with pytest.raises(ValueError, match="increase"):
        btimod.bti_from_rate([1.0, 1.0], [0.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="per bin"):
        btimod.bti_from_lightcurve([1, 2], [0.0, 1.0])


def test_frame_bti_overlap():
    btis = (np.array([100.0, 400.0]), np.array([250.0, 450.0]))
    lo = np.arange(0.0, 500.0, 50.0)
    hi = lo + 50.0
    flags = btimod.frame_bti(lo, hi, btis)
    # frames [100,150) [150,200) [200,250) and [400,450); [250,300) only touches
    np.testing.assert_array_equal(np.flatnonzero(flags), [2, 3, 4, 8])
    # a BTI inside one long frame
    assert btimod.frame_bti([0.0], [1000.0], ([10.0], [20.0])).tolist() == [True]
    assert not btimod.frame_bti(lo, hi, (np.empty(0), np.empty(0))).any()


# ---------------------------------------------------------------- BTIs from events
def test_bad_time_intervals_from_events_exact_edges():
    rng = np.random.default_rng(1)
    parts = [uniform(rng, 0.05, T0, T0 + 2000.0),            # quiet 10-12 keV background
             uniform(rng, 3.0, T0 + 300.0, T0 + 500.0),      # flare: bins [300, 500)
             uniform(rng, 3.0, T0 + 900.0, T0 + 1000.0, (10000, 10001)),  # exactly 10.0 keV: outside
             uniform(rng, 3.0, T0 + 1200.0, T0 + 1300.0, (500, 9000)),    # soft: outside the band
             uniform(rng, 5.0, T0 + 1500.0, T0 + 1600.0)]    # in the GTI gap: not counted
    t = np.concatenate([p[0] for p in parts])
    pi = np.concatenate([p[1] for p in parts])
    gti = ([T0, T0 + 1600.0], [T0 + 1500.0, T0 + 2000.0])
    ev = make_events(t, pi, gti=gti)
    for time_bin in (50.0, 100.0, 200.0):  # light-curve bin: min(time_bin, 100)
        start, stop = btimod.bad_time_intervals(ev, time_bin=time_bin)
        np.testing.assert_array_equal(start, [T0 + 300.0])
        np.testing.assert_array_equal(stop, [T0 + 500.0])
    lc = btimod.high_energy_lightcurve(ev, 50.0)
    assert lc.sizes["time"] == 40 and lc.attrs["time_bin"] == 50.0
    assert float(lc["counts"].sum()) == np.sum((pi > 10000) & ~((t >= T0 + 1500) & (t < T0 + 1600)))
    # frames of a 200 s cube that overlap the BTI
    lo = T0 + 200.0 * np.arange(10)
    assert np.flatnonzero(btimod.frame_bti(lo, lo + 200.0, (start, stop))).tolist() == [1, 2]


def test_bad_time_intervals_t0_alignment_and_partial_last_bin():
    rng = np.random.default_rng(2)
    t, pi = uniform(rng, 4.0, T0 + 1930.0, T0 + 1990.0)
    ev = make_events(t, pi, gti=([T0], [T0 + 1990.0]))
    start, stop = btimod.bad_time_intervals(ev, time_bin=100.0, t0=T0 + 10.0)
    # bins start at t0; the last bin [1910, 1990) is shorter and exposure-corrected
    np.testing.assert_array_equal(start, [T0 + 1910.0])
    np.testing.assert_array_equal(stop, [T0 + 1990.0])


def test_bad_time_intervals_merged_lists_threshold_scales():
    def camera(rate, seed):
        r = np.random.default_rng(seed)
        t, pi = uniform(r, rate, T0 + 600.0, T0 + 800.0)
        return make_events(t, pi)

    weak = [camera(0.7, 1), camera(0.7, 2)]
    assert btimod.bad_time_intervals(weak[0], 100.0)[0].tolist() == [T0 + 600.0]
    # merged: 1.4 ct/s against 2 x 0.5 ct/s -> still bad; 0.3 + 0.3 against 1.0 -> good
    s, e = btimod.bad_time_intervals(weak, 100.0)
    assert s.tolist() == [T0 + 600.0] and e.tolist() == [T0 + 800.0]
    low = [camera(0.3, 4), camera(0.3, 5)]
    assert btimod.bad_time_intervals(low, 100.0)[0].size == 0
    # a list with no good time in the range adds nothing but still counts as a list
    r = np.random.default_rng(6)
    t, pi = uniform(r, 1.2, T0 + 600.0, T0 + 800.0)
    late = make_events(T0 + 5000.0 + np.arange(3.0), [11000] * 3, gti=([T0 + 5000.0], [T0 + 5010.0]))
    s, e = btimod.bad_time_intervals([make_events(t, pi), late], 100.0, t0=T0, t_stop=T0 + 2000.0)
    assert s.tolist() == [T0 + 600.0] and e.tolist() == [T0 + 800.0]


def test_bad_time_intervals_screen_the_events_as_the_search_does():
    """The public BTIs took every 10-12 keV event while the search's monitor
    takes the screened ones (PATTERN, FLAG): 89 against 78 BTI frames on the
    raw MOS1 file."""
    rng = np.random.default_rng(7)
    t, pi = uniform(rng, 0.05, T0, T0 + 2000.0)
    tf, pif = uniform(rng, 3.0, T0 + 300.0, T0 + 500.0)   # a flare of good events
    tb, pib = uniform(rng, 3.0, T0 + 1200.0, T0 + 1400.0)  # a "flare" of events the screening drops
    half = tb.size // 2
    pattern = np.r_[np.zeros(t.size + tf.size), np.full(half, 26), np.zeros(tb.size - half)]
    flag = np.r_[np.zeros(t.size + tf.size + half), np.full(tb.size - half, 0x10000)]
    ev = make_events(np.r_[t, tf, tb], np.r_[pi, pif, pib], pattern=pattern, flag=flag)
    start, stop = btimod.bad_time_intervals(ev, 100.0)
    assert start.tolist() == [T0 + 300.0] and stop.tolist() == [T0 + 500.0]
    start, _ = btimod.bad_time_intervals(ev, 100.0, screening=False)
    assert start.tolist() == [T0 + 300.0, T0 + 1200.0]
    lc = btimod.high_energy_lightcurve(ev, 100.0)
    assert lc.attrs["screening"] and int(lc["counts"].sum()) == t.size + tf.size
    # events without the screening's columns: the search's message, and the way out
    bare = ev.drop_vars(["pattern", "flag"])
    with pytest.raises(ValueError, match=r"default screening \(PATTERN <= 12 && FLAG == 0\) needs the PATTERN "
                                         r"column.*screening=False"):
        btimod.bad_time_intervals(bare, 100.0)
    assert btimod.bad_time_intervals(bare, 100.0, screening=False)[0].tolist() == [T0 + 300.0, T0 + 1200.0]


def test_bad_time_intervals_equal_the_search_on_the_raw_mos1_file():
    ev = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"))
    res = xcube.search_transients(ev, time_bin=50.0, hygiene=False)
    lo, hi = res.cube.time_lo.values, res.cube.time_hi.values
    t0, t1 = lo[0], float(xcube.gti.from_dataset(ev)[1][-1])
    frames_of = lambda **kw: btimod.frame_bti(lo, hi, btimod.bad_time_intervals(ev, 50.0, t0=t0, t_stop=t1, **kw))  # noqa: E731
    assert res.summary["n_bti_frames"] == int(frames_of().sum()) == 78
    assert (frames_of() == res.cube.bti.values).all()
    assert int(frames_of(screening=False).sum()) == 89  # every 10-12 keV event, as before


# ---------------------------------------------------------------- frame rules on arrays
def test_partial_ccd_rule_truth_table():
    q = np.array([
        [0, 0, 0, 0],      # empty -> bad
        [5, 5, 5, 5],      # quiet, full -> good
        [20, 15, 12, 11],  # bright, all quadrants -> good
        [20, 15, 12, 0],   # bright, one quadrant off -> bad
        [9, 0, 0, 1],      # faint partial (max 9 <= 10) -> good
        [11, 0, 3, 2],     # max 11 > 10, partial -> bad
        [40, 12, 12, 12],  # bright, uneven, not BTI -> good
        [40, 12, 12, 12],  # bright, uneven (40 > 3 x 12), BTI -> bad
        [36, 12, 12, 12],  # ratio exactly 3 -> not uneven -> good
    ], dtype=float)
    bti = np.array([False] * 7 + [True, True])
    bad = frames.partial_ccd_frames(q, bti=bti)
    assert bad.tolist() == [True, False, False, True, False, True, False, True, False]
    # the next-frame extension and no wrap-around
    ext = frames.extend_to_next_frame(bad)
    assert ext.tolist() == [True, True, False, True, True, True, True, True, True]
    assert frames.extend_to_next_frame([False, False, True]).tolist() == [False, False, True]
    assert frames.extend_to_next_frame([True, False, False]).tolist() == [True, True, False]


def test_quadrant_medians_drive_the_bti_rule():
    quadrant_of_ccd = [c // 3 for c in range(12)]
    # frame 0: quadrant 0 has one hot CCD (counts 30, 1, 1): sum 32 but median 1;
    # the other quadrants' medians are 4 -> medians 1..4, ratio 4 > 3 -> uneven
    row = np.array([30, 1, 1, 4, 4, 4, 4, 4, 4, 4, 4, 4])
    # frame 1: same sums per quadrant but even medians -> not uneven
    row2 = np.array([11, 11, 10, 4, 4, 4, 4, 4, 4, 4, 4, 4])
    ccd = np.stack([row, row2, row, row2])
    counts, medians = frames.quadrant_counts(ccd, quadrant_of_ccd)
    np.testing.assert_array_equal(counts[0], [32, 12, 12, 12])
    np.testing.assert_array_equal(medians[0], [1, 4, 4, 4])
    bti = np.array([True, True, False, False])
    bad = frames.pn_bad_frames(ccd, quadrant_of_ccd, bti)
    # frame 0 bad (BTI, uneven medians), frame 1 bad as the next frame, frames 2-3 not BTI
    assert bad.tolist() == [True, True, False, False]
    assert frames.partial_ccd_frames(counts, medians, bti).tolist() == [True, False, False, False]


def test_empty_frames_any_shape():
    c = np.ones((4, 3, 2))
    c[2] = 0
    assert frames.empty_frames(c).tolist() == [False, False, True, False]
    assert frames.empty_frames(da.from_array(c, chunks=2)).tolist() == [False, False, True, False]


# ---------------------------------------------------------------- frame rules on events
def _pn_events(rng):
    """pn events, 10 frames of 100 s: frame 3 has quadrant 3 (CCDs 10-12) off,
    frame 6 is empty; everything else has ~5 counts per CCD."""
    ts, ccds = [], []
    for f in range(10):
        if f == 6:
            continue
        for c in range(1, 13):
            if f == 3 and c >= 10:
                continue
            n = 5
            ts.append(T0 + 100.0 * f + rng.uniform(0, 100.0, n))
            ccds.append(np.full(n, c))
    t = np.concatenate(ts)
    ccd = np.concatenate(ccds)
    return make_events(t, rng.integers(500, 9000, t.size), ccd=ccd, gti=([T0], [T0 + 1000.0]),
                       profile="xmm-pn", instrument="EPN")


def test_bad_frames_from_events_pn_and_mos():
    rng = np.random.default_rng(4)
    pn = _pn_events(rng)
    edges = T0 + 100.0 * np.arange(11)
    bad = frames.bad_frames(pn, edges)
    assert np.flatnonzero(bad).tolist() == [3, 4, 6, 7]
    counts = frames.ccd_frame_counts(pn, edges)
    assert counts.dims == ("time", "ccd") and int(counts.sum()) == pn.sizes["event"]
    # MOS: only empty frames, no next-frame extension
    t = np.concatenate([T0 + 100.0 * f + rng.uniform(0, 100.0, 20) for f in range(10) if f != 9 and f != 2])
    mos = make_events(t, rng.integers(500, 9000, t.size), gti=([T0], [T0 + 1000.0]))
    assert np.flatnonzero(frames.bad_frames(mos, edges)).tolist() == [2, 9]
    # several cameras: the pn rule per pn camera, OR'ed with frames empty in the
    # merged data (MOS frames 2 and 9 hold pn events, so they are good); the
    # last frame never marks frame 0
    both = frames.bad_frames([pn, mos], edges)
    assert np.flatnonzero(both).tolist() == [3, 4, 6, 7]
    assert not both[0]
    # a camera without good time in these frames adds no events: the merged
    # empty frames are the MOS ones
    late = make_events(T0 + 5000.0 + np.arange(3.0), [1000] * 3, gti=([T0 + 5000.0], [T0 + 5010.0]))
    assert np.flatnonzero(frames.bad_frames([mos, late], edges)).tolist() == [2, 9]


def test_bad_frames_for_cube():
    from xcube import bin_events

    rng = np.random.default_rng(5)
    pn = _pn_events(rng)
    cube = bin_events(pn, time=100.0, t0=T0)
    assert np.flatnonzero(frames.bad_frames_for(pn, cube)).tolist() == [3, 4, 6, 7]
    # without a ccdnr column the pn rule cannot run
    with pytest.raises(KeyError, match="ccdnr"):
        frames.bad_frames(pn.drop_vars("ccdnr"), T0 + 100.0 * np.arange(11))
