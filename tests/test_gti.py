import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xcube import gti


def _brute_exposure(lo, hi, start, stop):
    # independent: overlap of each bin with each interval, summed
    out = np.zeros(len(lo))
    for i, (a, b) in enumerate(zip(lo, hi)):
        out[i] = sum(max(0.0, min(b, e) - max(a, s)) for s, e in zip(start, stop))
    return out


intervals = st.lists(st.tuples(st.floats(0, 1000), st.floats(0, 50)), min_size=0, max_size=12)


@settings(max_examples=80, deadline=None)
@given(intervals, st.floats(1, 200), st.floats(-50, 50))
def test_exposure_per_bin_matches_interval_overlap(ivs, width, t0):
    start = np.array([a for a, _ in ivs]) if ivs else np.empty(0)
    stop = np.array([a + d for a, d in ivs]) if ivs else np.empty(0)
    g = gti.normalize(start, stop, warn=False)
    lo = t0 + width * np.arange(12)
    hi = lo + width
    got = gti.exposure_per_bin(lo, hi, g)
    want = _brute_exposure(lo, hi, *g)
    np.testing.assert_allclose(got, want, atol=1e-9, rtol=1e-12)


def test_normalize_warns_and_merges():
    with pytest.warns(UserWarning, match="unsorted and overlapping"):
        s, e = gti.normalize([10, 0, 3], [20, 5, 12], source="f.fits[GTI]")
    assert s.tolist() == [0.0] and e.tolist() == [20.0]


def test_normalize_rejects_nan():
    with pytest.raises(ValueError, match="f.fits.*NaN"):
        gti.normalize([0, np.nan], [1, 2], source="f.fits")


def test_intersection_union_complement():
    a = ([0, 10, 20], [5, 15, 30])
    b = ([3, 12], [11, 25])
    s, e = gti.intersection(a, b)
    assert list(zip(s, e)) == [(3, 5), (10, 11), (12, 15), (20, 25)]
    s, e = gti.union(([0], [1]), ([1], [2]), ([5], [6]))
    assert list(zip(s, e)) == [(0, 2), (5, 6)]
    s, e = gti.complement(a, -1, 40)
    assert list(zip(s, e)) == [(-1, 0), (5, 10), (15, 20), (30, 40)]


def test_in_gti_half_open():
    g = ([0.0, 10.0], [5.0, 15.0])
    t = np.array([0, 4.999, 5, 9.99, 10, 15])
    assert gti.in_gti(t, g).tolist() == [True, True, False, False, True, False]


def test_in_gti_sorted_path_equals_search():
    """Sorted blocks take the slice path; unsorted, NaN and infinite times the per-event search: same mask."""
    rng = np.random.default_rng(1)
    for trial in range(600):
        t = np.sort(rng.uniform(-10, 110, rng.integers(0, 400)))
        if trial % 3 == 0 and t.size:
            t[rng.integers(0, t.size)] = rng.choice([np.nan, 50.0, 0.0, np.inf, -np.inf])
        k = int(rng.integers(0, 5))
        cand = np.r_[rng.uniform(0, 100, 2 * k), t[:3]]
        cand = cand[np.isfinite(cand)]
        e = np.sort(rng.choice(cand, min(2 * k, cand.size // 2 * 2), replace=False))
        start, stop = gti.normalize(e[0::2], e[1::2], warn=False)
        ref = np.zeros(t.size, bool)
        for a, b in zip(start, stop):
            ref |= (t >= a) & (t < b)
        assert np.array_equal(gti.in_gti(t, (e[0::2], e[1::2])), ref), trial
