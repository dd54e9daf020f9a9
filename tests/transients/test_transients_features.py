"""Light-curve features equal a direct numpy/scipy computation on fixed light
curves; the features reach the detection table."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from xcube.transients import bayes
from xcube.transients.detect import sigma_equivalents
from xcube.transients.features import FEATURE_COLUMNS, cash_moments, excursions, lightcurve_features

NT = 40
T_LO = 1000.0 + 50.0 * np.arange(NT)


def _lightcurves(n, mu, bti=None, bad=None):
    n, mu = np.atleast_2d(np.asarray(n, float)), np.atleast_2d(np.asarray(mu, float))
    ds = xr.Dataset(
        {"counts": (("detection", "time"), n), "expected": (("detection", "time"), mu),
         "log10_bayes_peak": (("detection", "time"), bayes.log10_bayes_peak(n, mu)),
         "log10_bayes_eclipse": (("detection", "time"), bayes.log10_bayes_eclipse(n, mu))},
        coords={"detection": np.arange(n.shape[0]), "time": ("time", T_LO + 25.0), "time_lo": ("time", T_LO),
                "time_hi": ("time", T_LO + 50.0)})
    ds["bti"] = ("time", np.zeros(NT, bool) if bti is None else np.asarray(bti, bool))
    ds["bad_frame"] = ("time", np.zeros(NT, bool) if bad is None else np.asarray(bad, bool))
    return ds


@pytest.fixture(scope="module")
def curves():
    """Two fixed light curves: a flare (frames 10-12, and a second one at 30)
    on mu ~ 2 with frames 20-21 undefined (bad), and an eclipse of a bright source."""
    rng = np.random.default_rng(4)
    mu = 2.0 + 0.3 * np.sin(np.arange(NT) / 5.0)
    n1 = rng.poisson(mu).astype(float)
    n1[10:13] = [15, 30, 12]
    n1[30] = 25
    mu1 = mu.copy()
    mu1[20:22] = np.nan
    mu2 = np.full(NT, 60.0)
    n2 = rng.poisson(mu2).astype(float)
    n2[5:9] = [1, 0, 0, 2]
    bti = np.zeros(NT, bool)
    bti[25:35] = True
    bad = np.zeros(NT, bool)
    bad[20:22] = True
    return _lightcurves([n1, n2], [mu1, mu2], bti, bad), np.array([11, 6])


def test_moments_ks_and_fractions_equal_numpy_scipy(curves):
    lcs, best = curves
    f = lightcurve_features(lcs, ["peak", "eclipse"], best, sigma=3.0)
    assert list(f.columns) == FEATURE_COLUMNS and len(f) == 2
    n, mu = lcs["counts"].values, lcs["expected"].values
    for k in range(2):
        v = np.isfinite(mu[k])
        for name, x in (("n", n[k, v]), ("mu", mu[k, v])):
            assert f[f"{name}_min"][k] == x.min() and f[f"{name}_max"][k] == x.max()
            assert f[f"{name}_mean"][k] == pytest.approx(x.mean(), rel=1e-12)
            assert f[f"{name}_std"][k] == pytest.approx(x.std(ddof=1), rel=1e-12)
            if x.std() > 0:
                assert f[f"{name}_skew"][k] == pytest.approx(stats.skew(x), rel=1e-9, abs=1e-12)
                assert f[f"{name}_kurt"][k] == pytest.approx(stats.kurtosis(x), rel=1e-9, abs=1e-12)
        assert f["n_sum"][k] == n[k, v].sum() and f["n_frames_valid"][k] == v.sum()
        ks = stats.ks_2samp(n[k, v], mu[k, v], method="asymp")
        assert f["ks_stat"][k] == pytest.approx(ks.statistic) and f["ks_pval"][k] == pytest.approx(ks.pvalue)
    # mu of the eclipsing source is constant: its skewness and kurtosis are undefined, as in scipy
    assert np.isnan(f["mu_skew"][1]) and np.isnan(f["mu_kurt"][1])
    assert list(f["n_bti"]) == [10, 10] and list(f["n_bad_frame"]) == [2, 2]
    assert f["frac_bti"][0] == pytest.approx(10 / NT) and f["frac_bad_frame"][0] == pytest.approx(2 / NT)


def test_cash_goodness_of_fit_equals_poisson_sums(curves):
    lcs, best = curves
    f = lightcurve_features(lcs, ["peak", "eclipse"], best)
    n, mu = lcs["counts"].values, lcs["expected"].values
    for k in range(2):
        v = np.isfinite(mu[k])
        c = 2 * (mu[k, v] - n[k, v] + np.where(n[k, v] > 0, n[k, v] * np.log(np.where(n[k, v] > 0, n[k, v], 1)
                                                                              / mu[k, v]), 0))
        e = v_ = 0.0
        for m in mu[k, v]:  # exact expectation and variance of one frame's C under Poisson(m)
            j = np.arange(0, int(m + 20 * np.sqrt(m) + 40))
            p = stats.poisson.pmf(j, m)
            cj = 2 * (m - j + np.where(j > 0, j * np.log(np.where(j > 0, j, 1) / m), 0))
            e += np.dot(p, cj)
            v_ += np.dot(p, (cj - np.dot(p, cj)) ** 2)
        assert f["cstat"][k] == pytest.approx(c.sum(), rel=1e-12)
        assert f["cstat_expected"][k] == pytest.approx(e, rel=1e-5)
        assert f["cstat_z"][k] == pytest.approx((c.sum() - e) / np.sqrt(v_), rel=1e-4)
        assert f["cstat_pval"][k] == pytest.approx(stats.norm.sf((c.sum() - e) / np.sqrt(v_)), rel=1e-3, abs=1e-300)
    assert f["cstat_pval"][0] < 1e-10  # the flares make the light curve inconsistent with mu
    e, v = cash_moments(np.array([1e6, -1.0, np.nan]))
    assert e[0] == 1.0 and v[0] == 2.0 and np.isnan(e[1:]).all()


def test_bayes_excursions_positions_and_burst(curves):
    lcs, best = curves
    f = lightcurve_features(lcs, ["peak", "eclipse"], best, sigma=3.0)
    bp, be = lcs["log10_bayes_peak"].values, lcs["log10_bayes_eclipse"].values
    valid = np.isfinite(lcs["expected"].values)
    assert f["log10_bayes_peak_max"][0] == pytest.approx(np.nanmax(np.where(valid[0], bp[0], np.nan)))
    assert f["sigma_peak_max"][0] == pytest.approx(sigma_equivalents(f["log10_bayes_peak_max"][:1], "peak")[0])
    tp, te = bayes.threshold(3.0)
    above = valid[0] & (bp[0] > tp)
    runs = np.flatnonzero(np.diff(np.concatenate([[0], above.astype(int)])) == 1)
    ends = np.flatnonzero(np.diff(np.concatenate([above.astype(int), [0]])) == -1)
    assert f["n_peak_excursions"][0] == len(runs) == 2  # the flare at frames 10-12 and frame 30
    assert f["peak_gap_min"][0] == pytest.approx(T_LO[runs[1]] - (T_LO[ends[0]] + 50.0))
    assert np.isnan(f["eclipse_gap_min"][0]) and f["n_eclipse_excursions"][1] == 1
    t3, t5 = bayes.threshold(3.0), bayes.threshold(5.0)
    bti = lcs["bti"].values
    assert f["n_3sig_peak_gti"][0] == int((valid[0] & ~bti & (bp[0] > t3.peak)).sum())
    assert f["n_3sig_peak_bti"][0] == int((valid[0] & bti & (bp[0] > t3.peak)).sum()) == 1
    assert f["n_5sig_peak_gti"][0] == int((valid[0] & ~bti & (bp[0] > t5.peak)).sum())
    assert f["n_3sig_eclipse_gti"][1] == int((~bti & (be[1] > t3.eclipse)).sum()) > 0
    # the flare: the run above threshold around the best frame 11
    n, mu = lcs["counts"].values, lcs["expected"].values
    a, b = runs[0], ends[0]
    assert a <= 11 <= b and f["duration"][0] == 50.0 * (b - a + 1)
    assert f["fluence"][0] == pytest.approx(np.sum(n[0, a:b + 1] - mu[0, a:b + 1]))
    assert f["fluence"][1] < 0  # an eclipse misses counts
    assert not f["n_max_first_bin"][0] and not f["n_max_last_bin"][0] and not f["n_max_isolated"][0]


def test_maximum_position_rules():
    mu = np.full((3, NT), 0.5)
    n = np.zeros((3, NT))
    n[0, 0] = 9  # maximum in the first frame
    n[1, -1] = 9  # in the last frame
    n[2, 17] = 9  # a single-frame burst: its neighbours hold no more than expected
    f = lightcurve_features(_lightcurves(n, mu), ["peak"] * 3, np.array([0, NT - 1, 17]))
    assert list(f["n_max_first_bin"]) == [True, False, False]
    assert list(f["n_max_last_bin"]) == [False, True, False]
    assert list(f["n_max_isolated"]) == [False, False, True]
    n[2, 18] = 3  # excess next to it: not isolated any more
    f = lightcurve_features(_lightcurves(n, mu), ["peak"] * 3, np.array([0, NT - 1, 17]))
    assert not f["n_max_isolated"][2]


def test_excursions_helper():
    above = np.array([[0, 1, 1, 0, 0, 1, 0, 1], [0, 0, 0, 0, 0, 0, 0, 0]], bool)
    lo = np.arange(8) * 10.0
    count, gap, start, end = excursions(above, lo, lo + 10.0)
    assert list(count) == [3, 0] and gap[0] == 10.0 and np.isnan(gap[1])
    assert list(np.flatnonzero(start[0])) == [1, 5, 7] and list(np.flatnonzero(end[0])) == [2, 5, 7]


def test_features_in_the_detection_table():
    import xcube
    from xcube import simulate

    ev, _ = simulate.event_list("xmm-pn", duration=8_000.0, sources=3, soft_protons=0, seed=2,
                                flares=[simulate.Flare(t_peak=3_000.0, amplitude=1.0, width=60.0, ra=150.05, dec=2.25)])
    res = xcube.search_transients(ev, time_bin=50.0)
    det = res.detections
    from xcube.times import TIME_COLUMNS
    from xcube.transients.detect import ALL_COLUMNS, DETECTION_COLUMNS

    assert list(det.columns) == ALL_COLUMNS + list(TIME_COLUMNS)
    assert list(det.columns[:len(DETECTION_COLUMNS)]) == DETECTION_COLUMNS
    assert len(det) >= 1
    again = lightcurve_features(res.lightcurves, det["kind"], np.searchsorted(res.lightcurves.time.values,
                                                                               det["t_peak"].values), 3.0)
    for c in ("n_max", "n_sum", "mu_mean", "ks_stat", "cstat", "duration", "fluence"):
        np.testing.assert_allclose(det[c].to_numpy(float), again[c].to_numpy(float), rtol=1e-12)
    row = det.iloc[int(np.argmax(det["log10_bayes"].to_numpy()))]
    assert row["peak_rate"] == pytest.approx(row["counts_est_50"] / 50.0)
    from xcube.missions.ecf import events_ecf

    assert row["peak_flux"] == pytest.approx(row["peak_rate"] / events_ecf(ev, (0.2, 12.0)))
    assert np.isfinite(row["det_u"]) and np.isfinite(row["det_v"])


@pytest.mark.parametrize("kind", ["peak", "eclipse"])
def test_sigma_equivalents_table_equals_direct_thresholds(kind, monkeypatch):
    """The bisection on tabulated calibration thresholds gives exactly the
    values of the bisection on thresholds evaluated directly."""
    from xcube.transients import significance

    extremes = [np.nan, np.inf, 0.0, 1e4, 300.0, 1e6, -1e6]
    b = np.concatenate([np.random.default_rng(4).uniform(-3.0, 60.0, 200), extremes])
    tabulated = significance.sigma_equivalents(b, kind)
    monkeypatch.setattr(significance, "_TABLE_MAX", 0)  # every table too wide: direct evaluation
    direct = significance.sigma_equivalents(b, kind)
    assert np.array_equal(tabulated, direct, equal_nan=True)
    for s in (0.5, 3.0, 5.0, 20.0):  # the smallest level with the threshold of s (a step function of s)
        th = bayes.threshold(s)[0 if kind == "peak" else 1]
        got = significance.sigma_equivalent(float(th), kind)
        assert got <= s + 1e-6 and bayes.threshold(got + 1e-6)[0 if kind == "peak" else 1] == th


def test_ks_statistic_equals_scipy_on_many_rows():
    """The histogram KS statistic equals ``scipy.stats.ks_2samp`` row by row
    (counts against non-integer and integer expectations, rows with invalid
    frames and a row without any)."""
    from xcube.transients.features import ks_statistic

    rng = np.random.default_rng(12)
    mu = rng.uniform(0.0, 3.0, (12, 300)) * np.array([0.05, 0.5, 1, 2, 5, 20, 100, 400, 3, 3, 1, 1])[:, None]
    mu[8] = np.round(mu[8])  # integer expectations: ties with the counts
    n = rng.poisson(mu).astype(float)
    valid = rng.random(mu.shape) < 0.85
    valid[11] = False
    d = ks_statistic(n, mu, valid)
    for r in range(11):
        assert d[r] == pytest.approx(stats.ks_2samp(n[r, valid[r]], mu[r, valid[r]]).statistic, abs=1e-12)
    assert np.isnan(d[11])


def test_counts_where_none_are_expected_are_the_largest_factor():
    """A frame with mu = 0 and n >= 1 has log10 B_peak = +inf
    (docs/bayes.md): it is the detection's best frame and the light curve's
    largest factor (sigma inf), not dropped as non-finite; an undecided
    frame (mu NaN) with more counts still never counts."""
    import xarray as xr

    from xcube.transients.detect import assemble

    nt = 6
    lo = 1000.0 + 50.0 * np.arange(nt)
    cube = xr.DataArray(np.zeros((nt, 2, 2)), dims=("time", "y", "x"),
                        coords={"time": ("time", lo + 25.0), "time_lo": ("time", lo), "time_hi": ("time", lo + 50.0),
                                "x_lo": ("x", [0.0, 400.0]), "x_hi": ("x", [400.0, 800.0]),
                                "y_lo": ("y", [0.0, 400.0]), "y_hi": ("y", [400.0, 800.0])})
    foot = np.zeros((2, 2), bool)
    foot[0, 0] = True
    n = np.array([[0.0, 9.0, 0.0, 4.0, 0.0, 3.0]])
    mu = np.array([[0.5, np.nan, 0.5, 0.0, 0.5, 0.5]])  # frame 1 undecided, frame 3: counts where none expected
    peak = np.array([[0, 0, 0, 1, 0, 1]])
    table, lcs = assemble(cube, [("peak", foot, 0.0, 0.0, 1)], n, mu, peak, np.zeros_like(peak))
    row = table.iloc[0]
    assert lcs["log10_bayes_peak"].values[0, 3] == np.inf
    assert row["t_peak"] == lo[3] + 25.0 and row["counts"] == 4.0 and row["expected"] == 0.0
    assert row["log10_bayes"] == np.inf and row["sigma_equivalent"] == np.inf and row["flag_5sigma"]
    assert row["log10_bayes_peak_max"] == np.inf and row["sigma_peak_max"] == np.inf
    f = lightcurve_features(_lightcurves(np.zeros(NT), np.full(NT, np.nan)), ["peak"], np.array([0]))
    assert np.isnan(f["log10_bayes_peak_max"][0]) and np.isnan(f["sigma_peak_max"][0])  # no decided frame
    assert sigma_equivalents(np.array([np.inf, -np.inf, np.nan]), "peak").tolist()[:2] == [np.inf, 0.0]


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # (scipy's own, for its NaN)
def test_ks_pvalue_of_a_single_decided_frame_is_scipys_nan():
    mu = np.full((3, NT), np.nan)
    n = np.zeros((3, NT))
    mu[0, 5], n[0, 5] = 1.0, 12.0  # one decided frame
    mu[1, 5:7], n[1, 5:7] = 1.0, [12.0, 0.0]
    mu[2, 5:8], n[2, 5:8] = 1.0, [12.0, 0.0, 3.0]
    f = lightcurve_features(_lightcurves(n, mu), ["peak"] * 3, np.array([5, 5, 5]))
    for k in range(3):
        v = np.isfinite(mu[k])
        ks = stats.ks_2samp(n[k, v], mu[k, v], method="asymp")
        assert f["ks_stat"][k] == pytest.approx(ks.statistic)
        if np.isnan(ks.pvalue):
            assert np.isnan(f["ks_pval"][k])
        else:
            assert f["ks_pval"][k] == pytest.approx(ks.pvalue)
    assert np.isnan(f["ks_pval"][0]) and np.isfinite(f["ks_pval"][1:]).all()


def test_a_burst_next_to_an_undecided_frame_is_not_isolated():
    """n_max_isolated needs both neighbours decided and quiet: an undecided
    neighbour (a bad frame, mu NaN) cannot confirm it."""
    mu = np.full((2, NT), 1.0)
    n = np.zeros((2, NT))
    n[:, 17] = 12
    mu[1, 16] = np.nan
    bad = np.zeros(NT, bool)
    bad[16] = True
    f = lightcurve_features(_lightcurves(n, mu, bad=bad), ["peak"] * 2, np.array([17, 17]))
    assert list(f["n_max_isolated"]) == [True, False]


def test_cash_moments_accuracy_over_the_documented_range():
    """E[C] and Var[C] within 1e-5 (relative) of the exact Poisson sums for
    1e-12 <= mu <= 1e4 (the grid once stopped at 1e-6 and gave the values of
    1e-6 below: 75 times the exact E at mu = 1e-8); above, the chi-square
    limit (1, 2), within 1 / (6 mu) for E and 1 / (3 mu) for V."""
    def exact(m):
        j = np.arange(0, int(m + 40 * np.sqrt(m) + 60), dtype=float)
        p = stats.poisson.pmf(j, m)
        c = 2 * (m - j + np.where(j > 0, j * np.log(np.where(j > 0, j, 1) / m), 0))
        e = np.dot(p, c)
        return e, np.dot(p, (c - e) ** 2)

    mus = np.concatenate([np.logspace(-12, 4, 97) * np.exp(np.random.default_rng(3).uniform(-0.01, 0.01, 97)),
                          [1e-12, 1e-8, 3e-7, 0.5, 1.0, 99.9, 100.1, 1e4]]).clip(1e-12, 1e4)
    e, v = cash_moments(mus)
    for m, ee, vv in zip(mus, e, v):
        ex, vx = exact(m)
        assert abs(ee - ex) <= 1e-5 * ex and abs(vv - vx) <= 1e-5 * vx, m
    for m in (1.0001e4, 2e4, 1e5):
        ex, vx = exact(m)
        (ee,), (vv,) = cash_moments(np.array([m]))
        assert ee == 1.0 and vv == 2.0 and abs(ee - ex) < 0.17 * ex / m and abs(vv - vx) < 0.34 * vx / m


def test_a_constant_mu_has_no_skew_or_kurtosis():
    """A constant background (mu) summed in floating point leaves a rounding variance (std ~1e-17), which
    gave skew +-1 and kurtosis -2 instead of scipy's NaN."""
    from scipy import stats

    from xcube.transients.features import _moments

    rows = np.array([[0.4] * 8 + [0.0] * 2, [0.1] * 3 + [0.0] * 7, [0.3] * 10, [0.1, 0.2, 0.4, 0.1, 0.3] * 2])
    valid = np.array([[True] * 8 + [False] * 2, [True] * 3 + [False] * 7, [True] * 10, [True] * 10])
    _, _, _, _, _, skew, kurt = _moments(rows, valid)
    for r, v, sk, ku in zip(rows, valid, skew, kurt):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want_s, want_k = stats.skew(r[v]), stats.kurtosis(r[v])
        np.testing.assert_allclose([sk, ku], [want_s, want_k], equal_nan=True, rtol=1e-12)
    assert np.isnan(skew[:3]).all() and np.isnan(kurt[:3]).all()


def test_cash_moments_grid_is_stored_and_loaded_equal(tmp_path, monkeypatch):
    """The Cash-statistic moments grid is built once per machine and loaded by
    later processes: what is loaded equals what is built, under a name that
    carries the features module's code hash."""
    from xcube.transients import features

    monkeypatch.setenv("XCUBE_CACHE_DIR", str(tmp_path))
    built = features._build_cash_grid()
    try:
        for _ in range(2):  # the first call writes, the second loads
            features._cash_grid.cache_clear()
            got = features._cash_grid()
            for a, b in zip(got, built):
                np.testing.assert_array_equal(a, b)
        (path,) = (tmp_path / "tables").glob("cash-moments-grid-*.npz")
        assert bayes._code_hash(features.__file__) in path.name
        assert bayes._code_hash(features.__file__) != bayes._code_hash()
    finally:
        features._cash_grid.cache_clear()
