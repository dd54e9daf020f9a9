"""Poisson Bayes factors, thresholds, exact table masks and false alarms."""
from __future__ import annotations

import math

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

import xcube
from xcube import bayes
from xcube.transients.bayes import TABLE_SIZE

THR3 = bayes.threshold(3.0)


def direct(n, mu, sigma=3.0):
    t = bayes.threshold(sigma)
    return bayes.log10_bayes_peak(n, mu) > t.peak, bayes.log10_bayes_eclipse(n, mu) > t.eclipse


# ---------------------------------------------------------------- reference values
def test_alias_module():
    import xcube.bayes as alias
    import xcube.transients.bayes as inner

    assert xcube.bayes is alias
    assert alias.log10_bayes_peak is inner.log10_bayes_peak
    assert set(alias.__all__) == set(inner.__all__)


def test_threshold_3_sigma_reference():
    assert THR3.peak == pytest.approx(5.94096891658419, abs=1e-9)
    assert THR3.eclipse == pytest.approx(5.708917345972507, abs=1e-9)
    assert bayes.calibration_counts(1000.0, 3.0) == (1139, 870)
    assert isinstance(THR3, tuple) and THR3._fields == ("peak", "eclipse")


def test_threshold_grows_with_sigma_and_validates():
    t = [bayes.threshold(s) for s in (1.0, 2.0, 3.0, 5.0)]
    assert all(a.peak < b.peak and a.eclipse < b.eclipse for a, b in zip(t, t[1:]))
    assert math.isinf(bayes.threshold(1000.0).eclipse)  # no count at mu=1000 is 1000 sigma low
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sigma"):
            bayes.threshold(bad)


def test_reference_values():
    assert list(bayes.n_peak_min(np.array([0.1, 1.0, 10.0, 100.0]))) == [5, 9, 29, 149]
    assert bayes.log10_bayes_peak(10, 1.0) == pytest.approx(6.994, abs=5e-4)
    assert bayes.log10_bayes_eclipse(0, 10.0) == pytest.approx(4.343, abs=5e-4)
    mu = np.geomspace(1e-7, 1e6, 300)
    assert np.all(bayes.log10_bayes_peak(np.zeros_like(mu), mu) == 0.0)
    # n = 0 becomes a 3-sigma eclipse only from mu = 13.145
    table = bayes.threshold_table(3.0)
    assert round(float(table.eclipse_break[0]), 3) == 13.145
    assert list(bayes.n_eclipse_max(np.array([1.0, 13.144, 13.146]))) == [-1, -1, 0]
    peak, ecl = bayes.masks(np.array([0, 0]), np.array([13.144, 13.146]))
    assert not peak.any() and list(ecl) == [False, True]


def test_smallest_significant_count_is_flagged():
    # EXOD's defect: ``n > n_min`` misses n == n_min; xcube flags n >= n_min.
    n = np.array([8, 9, 28, 29, 148, 149])
    mu = np.array([1.0, 1.0, 10.0, 10.0, 100.0, 100.0])
    peak, _ = bayes.masks(n, mu)
    assert list(peak) == [False, True] * 3


def test_closed_forms():
    mu = np.geomspace(1e-300, 300, 120)
    # B_eclipse(0, mu) = (1 - e^-mu) / e^-mu = e^mu - 1
    np.testing.assert_allclose(bayes.log10_bayes_eclipse(np.zeros_like(mu), mu),
                               np.log10(np.expm1(mu)), rtol=1e-12)
    # B_peak(1, mu) = (e^-mu (1 + mu)) / (mu e^-mu) = 1 + 1/mu
    np.testing.assert_allclose(bayes.log10_bayes_peak(np.ones_like(mu), mu), np.log10(1 + 1 / mu),
                               rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- extremes
def test_finite_up_to_1e6():
    v = np.array([0.0, 1.0, 10.0, 1e3, 3e4, 5e5, 999_999.0, 1e6])
    n, mu = np.meshgrid(v, np.concatenate([[1e-7], v[1:]]), indexing="ij")
    for f in (bayes.log10_bayes_peak, bayes.log10_bayes_eclipse):
        out = f(n, mu)
        assert np.all(np.isfinite(out)), f.__name__
    # monotone in n at fixed mu, both directions
    n = np.arange(0, 2_000_001, 997, dtype=float)
    for mu in (1e-7, 1.0, 1e6):
        assert np.all(np.diff(bayes.log10_bayes_peak(n, mu)) > 0)
        assert np.all(np.diff(bayes.log10_bayes_eclipse(n, mu)) < 0)


def test_against_mpmath_at_extremes():
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 30
    cases = [(0, 1e6), (1e6, 1e-7), (1e6, 1e6), (963_000, 1e6), (1_004_000, 1e6), (50, 1e-7),
             (2, 700.0), (5218, 7711.3), (1139, 1000.0), (870, 1000.0), (10, 1.0), (700, 1.0)]
    n = np.array([c[0] for c in cases], float)
    mu = np.array([c[1] for c in cases])
    peak = bayes.log10_bayes_peak(n, mu)
    ecl = bayes.log10_bayes_eclipse(n, mu)
    for i, (k, m) in enumerate(cases):
        k, m = int(k), mp.mpf(m)
        # P(N<=k)/Pois(k) = Gamma(k+1, m) e^m / m^k ;  P(N>k)/Pois(k) = m/(k+1) 1F1(1; k+2; m)
        ref_p = (mp.log(mp.gammainc(k + 1, m, mp.inf)) + m - k * mp.log(m)) / mp.log(10)
        ref_e = mp.log10(m / (k + 1) * mp.hyp1f1(1, k + 2, m, maxterms=10**6))
        assert peak[i] == pytest.approx(float(ref_p), rel=1e-9, abs=1e-9), (k, m)
        assert ecl[i] == pytest.approx(float(ref_e), rel=1e-9, abs=1e-9), (k, m)


def test_special_inputs():
    n = np.array([0.0, 3.0, np.nan, 2.0, 2.0, -1.0, 2.0])
    mu = np.array([0.0, 0.0, 1.0, np.nan, -1.0, 1.0, np.inf])
    p = bayes.log10_bayes_peak(n, mu)
    e = bayes.log10_bayes_eclipse(n, mu)
    assert p[0] == 0.0 and p[1] == np.inf and np.all(np.isnan(p[2:]))
    assert e[0] == -np.inf and e[1] == -np.inf and np.all(np.isnan(e[2:]))
    pm, em = bayes.masks(n, mu)
    assert list(pm) == [False, True, False, False, False, False, False]
    assert not em.any()
    with pytest.raises(ValueError, match="whole numbers"):
        bayes.log10_bayes_peak(2.5, 1.0)
    with pytest.raises(ValueError, match="whole numbers"):
        bayes.masks(np.array([1.0, 2.5]), 1.0)


# ---------------------------------------------------------------- exactness of the table
def test_table_agrees_with_direct_test_on_grid():
    n = np.arange(0, 5001)
    mu = np.concatenate([[0.0], np.geomspace(1e-7, 1e4, 241)])
    nn, mm = np.meshgrid(n, mu, indexing="ij")
    peak, ecl = bayes.masks(nn, mm)
    dp, de = direct(nn, mm)
    np.testing.assert_array_equal(peak, dp)
    np.testing.assert_array_equal(ecl, de)
    assert peak.sum() > 1000 and ecl.sum() > 1000
    # the table limits reproduce the same masks
    nmin, nmax = bayes.n_peak_min(mu), bayes.n_eclipse_max(mu)
    np.testing.assert_array_equal(peak, nn >= nmin)
    np.testing.assert_array_equal(ecl, nn <= nmax)


@pytest.mark.parametrize("sigma", [3.0, 5.0])
def test_table_exact_at_breakpoints(sigma):
    """At and next to every breakpoint (float neighbours, guard edges) the
    table answer equals the direct test."""
    t = bayes.threshold_table(sigma)
    rng = np.random.default_rng(1)
    n_p = np.unique(np.concatenate([np.arange(1, 200), rng.integers(200, t.size, 300)]))
    n_e = np.unique(np.concatenate([np.arange(0, 200), rng.integers(200, t.size, 300)]))
    for nvals, arrays in ((n_p, (t.peak_break, t.peak_lo, t.peak_hi)),
                          (n_e, (t.eclipse_break, t.eclipse_lo, t.eclipse_hi))):
        mus, ns = [], []
        for a in arrays:
            b = a[nvals]
            for m in (b, np.nextafter(b, 0), np.nextafter(b, np.inf), b * (1 + 1e-12), b * (1 - 1e-12)):
                mus.append(m)
                for dn in (-1, 0, 1):
                    ns.append(np.clip(nvals + dn, 0, None))
        mu = np.concatenate([np.repeat(m[None], 3, axis=0).ravel() for m in mus])
        n = np.concatenate(ns)
        peak, ecl = bayes.masks(n, mu, sigma)
        dp, de = direct(n, mu, sigma)
        np.testing.assert_array_equal(peak, dp)
        np.testing.assert_array_equal(ecl, de)
        np.testing.assert_array_equal(peak, n >= bayes.n_peak_min(mu, sigma))
        np.testing.assert_array_equal(ecl, n <= bayes.n_eclipse_max(mu, sigma))


def test_breakpoints_monotone_and_beyond_table():
    t = bayes.threshold_table(3.0)
    assert np.all(np.diff(t.peak_break[1:]) > 0) and np.all(np.diff(t.eclipse_break) > 0)
    # counts beyond the table go through the direct test
    mu = np.array([2.0e4, 2.0e4, 2.0e4, 2.5e4, 1e6, 1e6])
    nmin = bayes.n_peak_min(mu)
    nmax = bayes.n_eclipse_max(mu)
    assert np.all(nmin > TABLE_SIZE // 2) and np.all(nmax > 0)
    n = np.stack([nmin - 1, nmin, nmax, nmax + 1])
    peak, ecl = bayes.masks(n, mu)
    dp, de = direct(n, mu)
    np.testing.assert_array_equal(peak, dp)
    np.testing.assert_array_equal(ecl, de)
    assert list(peak[:2].T.ravel()) == [False, True] * 6
    assert list(ecl[2:].T.ravel()) == [True, False] * 6


def test_masks_dtypes_and_broadcasting():
    rng = np.random.default_rng(3)
    mu = rng.gamma(1.0, 3.0, (40, 8, 9))
    n = rng.poisson(mu * 1.5)
    ref = bayes.masks(n, mu)
    for nn, mm in ((n.astype(np.int32), mu), (n.astype(np.uint16), mu), (n.astype(np.float32), mu),
                   (n, mu.astype(np.float32))):
        p, e = bayes.masks(nn, mm)
        dp, de = direct(nn, mm)
        np.testing.assert_array_equal(p, dp)
        np.testing.assert_array_equal(e, de)
        if mm.dtype == mu.dtype:
            np.testing.assert_array_equal(p, ref[0])
    # broadcasting a per-frame light curve against an image
    img = rng.uniform(0.01, 2.0, (8, 9))
    lc = rng.uniform(0.5, 20.0, (40, 1, 1))
    p, e = bayes.masks(n, img * lc)
    np.testing.assert_array_equal(p, bayes.masks(n, np.broadcast_to(img * lc, n.shape))[0])
    assert p.shape == n.shape and p.dtype == bool


# ---------------------------------------------------------------- laziness / xarray
def _counting(x, calls):
    def f(b):
        calls.append(b.size)
        return b
    return x.map_blocks(f, dtype=x.dtype, meta=np.empty((0,) * x.ndim, x.dtype))


def test_dask_lazy_and_equal():
    rng = np.random.default_rng(4)
    mu = rng.gamma(1.0, 3.0, (30, 16, 16))
    n = rng.poisson(mu * 1.3)
    calls = []
    dn = _counting(da.from_array(n, chunks=(10, 8, 16)), calls)
    dm = _counting(da.from_array(mu, chunks=(15, 16, 8)), calls)
    peak, ecl = bayes.masks(dn, dm)
    bp = bayes.log10_bayes_peak(dn, dm)
    be = bayes.log10_bayes_eclipse(dn, dm)
    fa = bayes.expected_false_alarms(dm)
    nmin = bayes.n_peak_min(dm)
    pp, pe = bayes.false_alarm_probability(dm)
    assert calls == []  # nothing computed yet
    for x in (peak, ecl, bp, be, nmin, pp, pe, fa.peak, fa.eclipse):
        assert isinstance(x, da.Array)
    peak, ecl, bp, be, nmin, fp, fe = dask.compute(peak, ecl, bp, be, nmin, fa.peak, fa.eclipse)
    ref = bayes.masks(n, mu)
    np.testing.assert_array_equal(peak, ref[0])
    np.testing.assert_array_equal(ecl, ref[1])
    np.testing.assert_array_equal(bp, bayes.log10_bayes_peak(n, mu))
    np.testing.assert_array_equal(be, bayes.log10_bayes_eclipse(n, mu))
    np.testing.assert_array_equal(nmin, bayes.n_peak_min(mu))
    ref_fa = bayes.expected_false_alarms(mu)
    assert fp == pytest.approx(ref_fa.peak, rel=1e-12) and fe == pytest.approx(ref_fa.eclipse, rel=1e-12)
    # numpy image broadcast against a dask cube
    p2, _ = bayes.masks(dn, mu[0])
    assert isinstance(p2, da.Array)
    np.testing.assert_array_equal(p2.compute(), bayes.masks(n, mu[0])[0])


def test_xarray_in_xarray_out():
    rng = np.random.default_rng(5)
    mu = xr.DataArray(rng.gamma(1.0, 3.0, (5, 4, 3)), dims=("time", "y", "x"),
                      coords={"time": np.arange(5.0)})
    n = xr.DataArray(rng.poisson(mu.values), dims=mu.dims, coords=mu.coords)
    peak, ecl = bayes.masks(n, mu.chunk({"time": 2}))
    assert isinstance(peak, xr.DataArray) and peak.dims == ("time", "y", "x")
    np.testing.assert_array_equal(peak.values, bayes.masks(n.values, mu.values)[0])
    b = bayes.log10_bayes_peak(n, mu)
    assert isinstance(b, xr.DataArray) and "time" in b.coords
    fa = bayes.expected_false_alarms(mu)
    assert fa.peak == pytest.approx(bayes.expected_false_alarms(mu.values).peak)


# ---------------------------------------------------------------- false alarms
def test_false_alarm_probability_exact_values():
    mu = np.array([0.0, 1.0, 13.0, 100.0, np.nan])
    pp, pe = bayes.false_alarm_probability(mu)
    from scipy import stats

    np.testing.assert_allclose(pp[:4], stats.poisson.sf(bayes.n_peak_min(mu[:4]) - 1, mu[:4]), rtol=1e-10)
    assert pe[0] == pe[1] == pe[2] == 0.0  # no eclipse possible below mu = 13.145
    assert pe[3] == pytest.approx(stats.poisson.cdf(bayes.n_eclipse_max(100.0), 100.0), rel=1e-10)
    assert pp[4] == 0.0 and pe[4] == 0.0


def test_expected_false_alarms_fast_matches_exact():
    mu = np.concatenate([np.geomspace(1e-9, 2e4, 30_001), [np.nan, -1.0, 3e4, 1e5]])
    fast = bayes.expected_false_alarms(mu)
    pp, pe = bayes.false_alarm_probability(mu)
    assert fast.peak == pytest.approx(pp.sum(), rel=1e-5)
    assert fast.eclipse == pytest.approx(pe.sum(), rel=1e-5)


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_expected_false_alarms_vs_monte_carlo(sigma):
    """Pure Poisson noise: flagged voxel counts agree with the expectation
    (at 3 sigma the rate is ~5e-6 per voxel, too rare for a fast test; the
    same code path is checked against the exact sum above)."""
    rng = np.random.default_rng(11)
    mu = 10 ** rng.uniform(-1.0, 3.5, 1_000_000)
    mu[::1000] = np.nan  # ignored, never flagged
    exp_ = bayes.expected_false_alarms(mu, sigma)
    n = rng.poisson(np.nan_to_num(mu))
    peak, ecl = bayes.masks(n, mu, sigma)
    for got, want in ((peak.sum(), exp_.peak), (ecl.sum(), exp_.eclipse)):
        assert want > 50
        assert abs(got - want) < 5 * math.sqrt(want), (got, want)


def test_both_mask_kernels_agree_with_direct_test():
    """Sparse cubes take the n = 0 shortcut; the kernel is exact either way."""
    from xcube.transients import bayes as inner

    rng = np.random.default_rng(8)
    mu = rng.gamma(0.5, 0.05, 200_000)
    mu[:2000] = rng.uniform(12.0, 40.0, 2000)  # n = 0 eclipses possible here
    t = bayes.threshold_table(3.0)
    mu[2000:2010] = [t.eclipse_break[0], t.eclipse_lo[0], t.eclipse_hi[0], np.nextafter(t.eclipse_hi[0], 0),
                     np.nan, np.inf, -1.0, 0.0, 1e-300, t.peak_break[1]]
    n = rng.poisson(np.clip(np.nan_to_num(mu, posinf=0.0), 0.0, None) * 0.5)
    n[2010:2020] = [0, 1, 3, 7, 40, 0, 0, 1, 2, 1]
    assert inner._is_sparse(n)
    dp, de = direct(n, mu)
    for sparse in (False, True):
        p = np.empty(n.size, np.uint8)
        e = np.empty(n.size, np.uint8)
        inner._mask_kernel(n, mu, t.peak_lo, t.peak_hi, t.eclipse_lo, t.eclipse_hi, p, e, sparse)
        assert (p == 2).sum() < 10 and (e == 2).sum() < 10  # guard bands / beyond the table only
        np.testing.assert_array_equal(p[p != 2] == 1, dp[p != 2])
        np.testing.assert_array_equal(e[e != 2] == 1, de[e != 2])
    peak, ecl = bayes.masks(n, mu)
    np.testing.assert_array_equal(peak, dp)
    np.testing.assert_array_equal(ecl, de)
    assert ecl[:2000].any() and peak.any()


def test_tables_stored_in_the_cache_equal_fresh_ones(tmp_path, monkeypatch):
    """The threshold table and false-alarm grid are kept on disk for later
    processes; what is loaded is what is built, and a damaged file is rebuilt."""
    from xcube.transients import bayes as inner

    monkeypatch.setenv("XCUBE_CACHE_DIR", str(tmp_path))
    sigma = 2.75  # not used elsewhere in the tests: nothing cached in memory yet
    eq = lambda x, y: all(np.array_equal(a, b, equal_nan=True) if isinstance(a, np.ndarray)  # noqa: E731
                          else (a == b and type(a) is type(b)) for a, b in zip(x, y))
    built = inner._solve_table(sigma, inner.TABLE_SIZE)
    for _ in range(2):  # the first call writes, the second loads
        inner._build_table.cache_clear()
        got = inner._build_table(sigma, inner.TABLE_SIZE)
        assert eq(got, built) and not got.peak_lo.flags.writeable
    files = list((tmp_path / "tables").glob("threshold-table-s2.75-*.npz"))
    assert len(files) == 1
    files[0].write_bytes(b"not a table")
    inner._build_table.cache_clear()
    assert eq(inner._build_table(sigma, inner.TABLE_SIZE), built)
    inner.false_alarm_grid.cache_clear()
    assert eq(inner.false_alarm_grid(sigma), inner._make_fa_grid(sigma))
    inner.false_alarm_grid.cache_clear()
    inner._build_table.cache_clear()
