"""Property tests of bin_events: exposure per time bin against an independent
interval computation, and counts against a numpy reference, on random GTIs,
bins and events."""
from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xcube.binning import bin_events
from xcube.io.events_fits import events_dataset

T0 = 5.0e8
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def union_measure_in(lo, hi, intervals):
    """Length of (union of intervals) within [lo, hi): clip, sort, sweep."""
    clipped = sorted((max(s, lo), min(e, hi)) for s, e in intervals if min(e, hi) > max(s, lo))
    total, cur_s, cur_e = 0.0, None, None
    for s, e in clipped:
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


gti_lists = st.lists(
    st.tuples(st.integers(0, 4000), st.integers(1, 800)).map(lambda p: (T0 + p[0] / 4.0, T0 + (p[0] + p[1]) / 4.0)),
    min_size=1,
    max_size=8,
)


def _events(t, x, gti, chunk):
    cols = {"time": da.from_array(np.asarray(t, dtype=np.float64), chunks=chunk),
            "x": da.from_array(np.asarray(x, dtype=np.int32), chunks=chunk)}
    attrs = {"source": "hypothesis", "x_min": 0.0, "x_max": 99.0}
    return events_dataset(cols, (np.array([g[0] for g in gti]), np.array([g[1] for g in gti])), {}, attrs)


@SETTINGS
@given(gti=gti_lists, width=st.integers(1, 400).map(lambda w: w / 8.0), shift=st.integers(-40, 40),
       offset=st.sampled_from([0.0, 0.5, 0.25]))
def test_exposure_per_bin_matches_interval_computation(gti, width, shift, offset):
    first = min(g[0] for g in gti)
    ev = _events([first], [0], gti, 10)
    t0 = first + shift / 8.0 if shift < 0 else None  # axes that start before the GTIs too
    lc = bin_events(ev, time=width, t0=t0, offset=offset)
    lo, hi = lc.time_lo.values, lc.time_hi.values
    expect = np.array([union_measure_in(a, b, gti) for a, b in zip(lo, hi)])
    np.testing.assert_allclose(lc.exposure.values, expect, rtol=0, atol=1e-6)
    np.testing.assert_allclose(lc.fracexp.values, expect / (hi - lo), rtol=0, atol=1e-6)
    assert lo[0] <= first and hi[-1] >= max(g[1] for g in gti)  # the axis covers every GTI
    np.testing.assert_allclose(lc.exposure.values.sum(), union_measure_in(-np.inf, np.inf, gti), atol=1e-6)


@SETTINGS
@given(data=st.data(), n=st.integers(0, 3000), width=st.integers(1, 64), xwidth=st.integers(1, 40),
       offset=st.sampled_from([0.0, 0.5]), chunk=st.integers(7, 900), chunk_bins=st.integers(1, 50))
def test_counts_match_reference_on_random_events(data, n, width, xwidth, offset, chunk, chunk_bins):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    # integer times and pixels, so that many events sit exactly on bin edges
    t = np.sort(T0 + rng.integers(0, 1000, n).astype(np.float64))
    x = rng.integers(0, 100, n)
    ev = _events(t, x, [(T0, T0 + 1000.0)], chunk)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cube = bin_events(ev, time=float(width), x=float(xwidth), offset=offset,
                          chunk_bytes=chunk_bins * 4 * (100 // xwidth + 2))
    assert any("empty" in str(w.message) for w in caught) == (n == 0)
    nt, nx = cube.shape
    tlo, xlo = cube.time_lo.values[0], cube.x_lo.values[0]
    kt = np.floor((t - tlo) / width).astype(np.int64)
    kx = np.floor((x - xlo) / xwidth).astype(np.int64)
    ok = (kt >= 0) & (kt < nt) & (kx >= 0) & (kx < nx)
    ref = np.bincount(kt[ok] * nx + kx[ok], minlength=nt * nx).reshape(nt, nx)
    got = cube.values
    np.testing.assert_array_equal(got, ref)
    assert got.sum() == n  # both axes cover every event
