"""Light-curve features of detections: one row of numbers per light curve.

Computed from the light curves the search already has (counts ``n``,
expected counts ``mu``, the log10 Bayes factors, ``bti`` and ``bad_frame``
per frame; see :func:`~xcube.transients.detect.detect`), no second pass over
events. Statistics of ``n`` and ``mu`` use the frames where ``mu`` is
defined (the frames the search decided); flag counts and fractions use every
frame. See ``docs/search.md`` for the table of columns.

- ``n_*`` / ``mu_*``: min, max, mean, std (``ddof=1``), sum (``n`` only),
  skewness and excess kurtosis (the biased estimators, as
  ``scipy.stats.skew``/``kurtosis`` by default);
- ``ks_stat``/``ks_pval``: two-sample Kolmogorov-Smirnov test of ``n``
  against ``mu`` (the numbers of ``scipy.stats.ks_2samp(n, mu,
  method="asymp")``, computed without sorting; the p-value NaN, as scipy's,
  with a single decided frame);
- ``cstat``/``cstat_expected``/``cstat_z``/``cstat_pval``: the Poisson
  goodness of fit of ``n`` given ``mu``: the Cash statistic
  ``C = 2 sum(mu - n + n ln(n/mu))``, its expectation and variance under
  Poisson(mu) (exact sums over n, tabulated in mu), ``z = (C - E) / sqrt(V)``
  and the one-sided normal p-value of ``z``. Over the decided frames (mu
  finite; the frames the search dropped, mu NaN, are left out); a frame
  with counts where none are expected (n > 0, mu = 0) is infinitely
  inconsistent with the model: ``cstat`` = ``cstat_z`` = +inf and
  ``cstat_pval`` = 0 (``cstat_expected`` sums the other frames; a frame
  with n = mu = 0 adds 0 to every sum);
- ``n_bti``, ``n_bad_frame``, ``frac_bti``, ``frac_bad_frame``;
- ``log10_bayes_peak_max``/``_eclipse_max`` (over the decided frames; +inf
  when a frame has counts where none are expected, mu = 0; NaN without a
  decided frame) and their sigma equivalents ``sigma_peak_max``/
  ``sigma_eclipse_max`` (inf for +inf); ``n_peak_excursions`` /
  ``n_eclipse_excursions``: runs of consecutive frames above the run's
  threshold; ``peak_gap_min``/``eclipse_gap_min`` [s]: the shortest time
  between two runs (NaN with fewer than two); ``n_{3,5}sig_{peak,eclipse}_{gti,bti}``:
  frames above the 3 and 5 sigma thresholds, in GTI and BTI frames;
- ``n_max_first_bin``/``n_max_last_bin``: the largest count is in the first /
  last decided frame; ``n_max_isolated``: the frames on both sides of it are
  decided and hold no more counts than expected (a single-frame burst; False
  when a neighbour is undecided, e.g. a bad frame: it cannot confirm it);
- ``duration`` [s] and ``fluence`` [counts, ``sum(n - mu)``, negative for an
  eclipse] of the run of frames above the threshold that holds the
  detection's best frame (that frame alone when it is below); the duration
  is that of the run's good time when the good time is given (the search's:
  a last, partial frame or a frame half in a GTI gap counts its good part).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numba
import numpy as np
import pandas as pd

from .. import _numba_cache  # noqa: F401 (numba's cache: a failure warns instead of failing)
from . import bayes
from .frames import good_time_range
from .significance import sigma_equivalents

__all__ = ["FEATURE_COLUMNS", "COUNT_FEATURES", "lightcurve_features", "cash_statistic", "cash_moments", "excursions",
           "ks_statistic"]

FEATURE_COLUMNS = [
    "n_min", "n_max", "n_mean", "n_std", "n_sum", "n_skew", "n_kurt",
    "mu_min", "mu_max", "mu_mean", "mu_std", "mu_skew", "mu_kurt",
    "ks_stat", "ks_pval", "cstat", "cstat_expected", "cstat_z", "cstat_pval",
    "n_frames_valid", "n_bti", "n_bad_frame", "frac_bti", "frac_bad_frame",
    "log10_bayes_peak_max", "log10_bayes_eclipse_max", "sigma_peak_max", "sigma_eclipse_max",
    "n_peak_excursions", "n_eclipse_excursions", "peak_gap_min", "eclipse_gap_min",
    "n_3sig_peak_gti", "n_3sig_peak_bti", "n_5sig_peak_gti", "n_5sig_peak_bti",
    "n_3sig_eclipse_gti", "n_3sig_eclipse_bti", "n_5sig_eclipse_gti", "n_5sig_eclipse_bti",
    "n_max_first_bin", "n_max_last_bin", "n_max_isolated", "duration", "fluence",
]
#: the features that are numbers of frames or excursions (int64; the others are float64, the n_max_* bool)
COUNT_FEATURES = ["n_frames_valid", "n_bti", "n_bad_frame", "n_peak_excursions", "n_eclipse_excursions"] + [
    f"n_{s}sig_{kind}_{part}" for kind in ("peak", "eclipse") for s in (3, 5) for part in ("gti", "bti")]


@numba.njit(nogil=True, cache=True)
def _row_moments(x, valid, out):  # pragma: no cover - compiled
    """Per row of ``x`` over ``valid``: min, max, mean, std (ddof 1), sum,
    skew, excess kurtosis (biased) into ``out`` (k, 7); NaN where undefined."""
    for r in range(x.shape[0]):
        cnt, s, lo, hi = 0, 0.0, np.inf, -np.inf
        for t in range(x.shape[1]):
            if valid[r, t]:
                v = x[r, t]
                cnt += 1
                s += v
                lo = min(lo, v)
                hi = max(hi, v)
        out[r, :] = np.nan
        if cnt == 0:
            continue
        mean = s / cnt
        s2 = s3 = s4 = 0.0
        for t in range(x.shape[1]):
            if valid[r, t]:
                d = x[r, t] - mean
                d2 = d * d
                s2 += d2
                s3 += d2 * d
                s4 += d2 * d2
        m2, m3, m4 = s2 / cnt, s3 / cnt, s4 / cnt
        out[r, 0], out[r, 1], out[r, 2], out[r, 4] = lo, hi, mean, s
        if cnt > 1:
            out[r, 3] = np.sqrt(s2 / (cnt - 1))
        if hi > lo and m2 > (1e-15 * mean) ** 2:  # (a constant row's rounding variance is none: scipy's rule)
            out[r, 5] = m3 / m2 ** 1.5
            out[r, 6] = m4 / (m2 * m2) - 3.0


def _moments(x, valid):
    """min, max, mean, std (ddof 1), sum, skew, excess kurtosis of each row of
    ``x`` over ``valid`` (NaN for rows without valid frames; skew/kurtosis
    NaN without variance)."""
    out = np.empty((x.shape[0], 7))
    _row_moments(np.ascontiguousarray(x, np.float64), np.ascontiguousarray(valid), out)
    return tuple(out.T)


def cash_statistic(n, mu) -> np.ndarray:
    """Per-frame Cash statistic ``2 (mu - n + n ln(n / mu))`` (``n ln n/mu`` = 0
    at n = 0); at mu = 0: 0 without counts, +inf with counts; NaN where mu is
    negative or not finite. Eager, numpy: ``n`` [count] and ``mu`` [count]
    broadcast; the result has their broadcast shape (Dask input is converted to
    numpy)."""
    n = np.asarray(n, np.float64)
    mu = np.asarray(mu, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(n > 0, n * np.log(n / mu), 0.0)
        c = 2.0 * (mu - n + term)
    c = np.where(mu == 0, np.where(n > 0, np.inf, 0.0), c)
    return np.where(np.isfinite(mu) & (mu >= 0), c, np.nan)


class _CashGrid(NamedTuple):
    log_mu: np.ndarray  # (6401,) ln mu, 400 points per decade from 1e-12 to 1e4
    e: np.ndarray  # E[C] at each mu
    v: np.ndarray  # Var[C] at each mu


@functools.lru_cache(maxsize=1)
def _cash_grid() -> _CashGrid:
    """The :class:`_CashGrid` of :func:`_build_cash_grid`, built once per
    machine and then loaded from xcube's cache directory
    (:func:`.bayes._stored`; building it takes about 0.25 s). Eager."""
    return bayes._stored("cash-moments-grid", _CashGrid, _build_cash_grid, source=__file__)


def _build_cash_grid() -> _CashGrid:
    """E[C] and Var[C] of one frame under Poisson(mu) on a log grid of mu
    (exact sums over n, vectorised: n = 0..40 up to mu = 1e-3, n = 0..250
    up to mu = 100, a window of +-(12 sqrt(mu) + 30) around mu above)."""
    from scipy import special

    mu = np.logspace(-12, 4, 6401)  # (400 points per decade)
    e, v = np.empty(mu.size), np.empty(mu.size)
    tiny, small = mu <= 1e-3, (mu > 1e-3) & (mu <= 100.0)
    for sel, n in ((tiny, np.arange(0, 41, dtype=np.float64)[None, :]),
                   (small, np.arange(0, 251, dtype=np.float64)[None, :]),
                   (mu > 100.0, np.floor(mu[mu > 100.0])[:, None] + np.arange(-1230, 1231)[None, :])):
        m = mu[sel][:, None]
        n = np.maximum(n, 0.0) * np.ones_like(m)  # n >= 0 always holds here (mu > 100: window within n >= 0)
        logm = np.log(m)
        p = np.exp(n * logm - m - special.gammaln(n + 1.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            c = 2.0 * (m - n + np.where(n > 0, n * (np.log(n) - logm), 0.0))
        e[sel] = (p * c).sum(axis=1)
        v[sel] = (p * (c - e[sel][:, None]) ** 2).sum(axis=1)
    return _CashGrid(np.log(mu), e, v)


def cash_moments(mu):
    """(E[C], Var[C]) of the per-frame Cash statistic under Poisson(``mu``):
    exact sums over n tabulated on a log grid of mu in [1e-12, 1e4] and
    interpolated linearly in log mu (relative error below 1e-5 there); mu
    above the grid takes the chi-square limit (1, 2) (relative errors
    about 1 / (6 mu) in E and 1 / (3 mu) in V: 3.3e-5 just above 1e4,
    1.7e-5 at 2e4), below it the first grid value (E 5.5e-11, V 2.8e-9:
    absolute errors below those).
    NaN for non-positive or non-finite mu. Eager, numpy: two float64 arrays of
    the shape of ``mu`` [count]."""
    m = np.asarray(mu, np.float64)
    lg, e, v = _cash_grid()
    ok = np.isfinite(m) & (m > 0)
    step = (lg[-1] - lg[0]) / (lg.size - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.clip((np.log(np.where(ok, m, 1.0)) - lg[0]) / step, 0.0, lg.size - 1.0)
    i = np.minimum(u.astype(np.int64), lg.size - 2)
    w = u - i
    above = np.where(ok, m, 0.0) > np.exp(lg[-1])
    ee = np.where(above, 1.0, e[i] * (1.0 - w) + e[i + 1] * w)
    vv = np.where(above, 2.0, v[i] * (1.0 - w) + v[i + 1] * w)
    return np.where(ok, ee, np.nan), np.where(ok, vv, np.nan)


def excursions(above, t_lo, t_hi):
    """Runs of consecutive True in each row of ``above`` (k, frames):
    ``(count (k,), shortest gap [s] between runs (NaN with fewer than two),
    run start index (k, frames) bool, run end bool)``. Eager, numpy;
    ``t_lo``/``t_hi`` are the frames' bounds [s], shape (frames,)."""
    a = np.asarray(above, bool)
    prev = np.zeros_like(a)
    prev[:, 1:] = a[:, :-1]
    nxt = np.zeros_like(a)
    nxt[:, :-1] = a[:, 1:]
    start, end = a & ~prev, a & ~nxt
    count = start.sum(axis=1)
    gap = np.full(a.shape[0], np.nan)
    for k in np.flatnonzero(count > 1):
        s, e = np.flatnonzero(start[k]), np.flatnonzero(end[k])
        gap[k] = float(np.min(t_lo[s[1:]] - t_hi[e[:-1]]))
    return count, gap, start, end


def ks_statistic(n, mu, valid) -> np.ndarray:
    """Two-sample Kolmogorov-Smirnov statistic of each row's integer counts
    ``n`` against its expected counts ``mu`` over ``valid`` (all (k, frames)),
    without sorting: between two integers j and j+1 the counts' empirical CDF
    is constant, so the largest difference is at an integer or just below the
    next one, and the CDF of mu there is a cumulative histogram. Eager, one
    numba loop, O(frames) per row; NaN for rows without valid frames."""
    out = np.full(n.shape[0], np.nan)
    _ks_rows(np.ascontiguousarray(n, np.float64), np.ascontiguousarray(mu, np.float64),
             np.ascontiguousarray(valid, np.bool_), out)
    return out


@numba.njit(nogil=True, cache=True)
def _ks_rows(n, mu, valid, out):  # pragma: no cover - compiled
    """:func:`ks_statistic` of each row into ``out``: F_n(j) against the
    CDF of mu at j (ceil(mu) <= j) and just below j + 1 (floor(mu) < j + 1)."""
    for r in range(n.shape[0]):
        m = 0
        top = 0
        for t in range(n.shape[1]):
            if valid[r, t]:
                m += 1
                top = max(top, np.int64(n[r, t]), np.int64(np.ceil(mu[r, t])))  # (n: counts >= 0)
        if m == 0:
            continue
        top += 2
        hn = np.zeros(top, np.int64)
        hle = np.zeros(top, np.int64)
        hlt = np.zeros(top + 1, np.int64)
        for t in range(n.shape[1]):
            if valid[r, t]:
                hn[np.int64(n[r, t])] += 1
                hle[max(np.int64(np.ceil(mu[r, t])), 0)] += 1  # (mu >= 0: the clamp only guards memory)
                hlt[max(np.int64(np.floor(mu[r, t])) + 1, 0)] += 1
        cn = cle = 0
        clt = hlt[0]
        d = 0.0
        for j in range(top):
            cn += hn[j]
            cle += hle[j]
            clt += hlt[j + 1]
            fn = cn / m
            d = max(d, abs(fn - cle / m), abs(fn - clt / m))
        out[r] = d


def _ks(n, mu, valid):
    """(statistic, p-value) per row; the p-value as ``scipy.stats.ks_2samp``'s
    asymptotic two-sided one: ``kstwo.sf(D, round(m n / (m + n)))``, NaN
    (as scipy's) when that rounds to 0 (one decided frame: m = n = 1)."""
    from scipy import stats

    d = ks_statistic(n, mu, valid)
    m = valid.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        en = np.round(m * m / (2 * m))
        p = np.where(en >= 1, np.clip(stats.kstwo.sf(d, np.maximum(en, 1)), 0.0, 1.0), np.nan)
    return np.stack([d, p], axis=1)


@numba.njit(nogil=True, cache=True)
def _row_cash(n, mu, valid, lg0, step, e_grid, v_grid, out):  # pragma: no cover - compiled
    """Per row: the Cash statistic and its expectation and variance summed
    over the valid frames (``cash_statistic``, ``cash_moments``) into ``out``
    (k, 3); a valid frame with mu = 0 adds +inf to C when it has counts
    (nothing otherwise: C, E and V of Poisson(0) are 0)."""
    top = lg0 + step * (e_grid.size - 1)
    for r in range(n.shape[0]):
        c = e = v = 0.0
        for t in range(n.shape[1]):
            m = mu[r, t]
            if not valid[r, t] or not m >= 0:
                continue
            if m == 0.0:
                if n[r, t] > 0:
                    c = np.inf
                continue
            x = n[r, t]
            c += 2.0 * (m - x + (x * np.log(x / m) if x > 0 else 0.0))
            lm = np.log(m)
            if lm > top:
                e += 1.0
                v += 2.0
                continue
            u = min(max((lm - lg0) / step, 0.0), e_grid.size - 1.0)
            i = min(np.int64(u), e_grid.size - 2)
            w = u - i
            e += e_grid[i] * (1.0 - w) + e_grid[i + 1] * w
            v += v_grid[i] * (1.0 - w) + v_grid[i + 1] * w
        out[r, 0], out[r, 1], out[r, 2] = c, e, v


def _cash(n, mu, valid):
    from scipy import special

    lg, eg, vg = _cash_grid()
    out = np.empty((n.shape[0], 3))
    _row_cash(np.ascontiguousarray(n, np.float64), np.ascontiguousarray(mu, np.float64), np.ascontiguousarray(valid),
              float(lg[0]), float((lg[-1] - lg[0]) / (lg.size - 1)), eg, vg, out)
    c, e, v = out.T
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(np.isposinf(c), np.inf, (c - e) / np.sqrt(v))  # (counts where mu = 0: inf even with V = 0)
    m = np.nan_to_num(mu)
    has = (valid & ((m > 0) | ((m == 0) & (n > 0)))).any(axis=1)
    return (np.where(has, c, np.nan), np.where(has, e, np.nan), np.where(has, z, np.nan),
            np.where(has, special.ndtr(-z), np.nan))


def _position(n, mu, valid):
    """n_max_first_bin, n_max_last_bin, n_max_isolated of each row."""
    k, nt = n.shape
    first = np.zeros(k, bool)
    last = np.zeros(k, bool)
    iso = np.zeros(k, bool)
    for r in range(k):
        idx = np.flatnonzero(valid[r])
        if idx.size == 0:
            continue
        j = idx[int(np.argmax(n[r, idx]))]
        first[r], last[r] = j == idx[0], j == idx[-1]
        # both neighbours decided and quiet: an undecided one (mu NaN) cannot confirm it
        quiet = [valid[r, i] and n[r, i] <= mu[r, i] for i in (j - 1, j + 1) if 0 <= i < nt]
        iso[r] = not first[r] and not last[r] and all(quiet)
    return first, last, iso


def _level_counts(bp, be, bti, valid):
    """Frames above the 3 and 5 sigma thresholds in GTI and BTI frames
    (``bp``/``be``: the factors with NaN as -inf)."""
    out = {}
    for s in (3, 5):
        tp, te = bayes.threshold(float(s))
        for kind, b, thr in (("peak", bp, tp), ("eclipse", be, te)):
            above = valid & (b > thr)
            out[f"n_{s}sig_{kind}_gti"] = (above & ~bti[None]).sum(axis=1)
            out[f"n_{s}sig_{kind}_bti"] = (above & bti[None]).sum(axis=1)
    return out


def _burst(kinds, best, above_p, above_e, n, mu, valid, t_lo, t_hi, gti=None):
    """duration [s] and fluence [counts] of the run above threshold that holds
    the best frame; with ``gti`` the duration is that of the run's good time
    (:func:`.frames.good_time_range`)."""
    k = n.shape[0]
    dur, flu = np.full(k, np.nan), np.full(k, np.nan)
    for r in range(k):
        j = int(best[r])
        a = (above_p if kinds[r] == "peak" else above_e)[r]
        i0 = i1 = j
        if a[j]:
            while i0 > 0 and a[i0 - 1]:
                i0 -= 1
            while i1 + 1 < a.size and a[i1 + 1]:
                i1 += 1
        sl = slice(i0, i1 + 1)
        lo, hi = (t_lo[i0], t_hi[i1]) if gti is None else good_time_range(t_lo[i0], t_hi[i1], gti)
        dur[r] = float(hi - lo)
        flu[r] = float(np.sum(np.where(valid[r, sl], n[r, sl] - mu[r, sl], 0.0)))
    return dur, flu


def lightcurve_features(lightcurves, kinds, best, sigma: float = 3.0, gti=None) -> pd.DataFrame:
    """The features of every detection light curve (module doc).

    ``lightcurves``: the Dataset over (detection, time) of
    :func:`~xcube.transients.detect.detect`; ``kinds``: "peak"/"eclipse" per
    detection; ``best``: each detection's best frame (index); ``sigma``: the
    run's detection level (its thresholds define the excursions); ``gti``:
    ``(start, stop)`` [s] the run's good time, to which ``duration`` keeps
    (the frames' edges without it). Returns a
    DataFrame of :data:`FEATURE_COLUMNS`, one row per detection. Eager,
    numpy/scipy on (detections, frames) arrays.
    """
    n = np.asarray(lightcurves["counts"].values, np.float64)
    mu = np.asarray(lightcurves["expected"].values, np.float64)
    bp = np.asarray(lightcurves["log10_bayes_peak"].values, np.float64)
    be = np.asarray(lightcurves["log10_bayes_eclipse"].values, np.float64)
    bti = np.asarray(lightcurves["bti"].values, bool)
    bad = np.asarray(lightcurves["bad_frame"].values, bool)
    t_lo, t_hi = lightcurves["time_lo"].values, lightcurves["time_hi"].values
    k, nt = n.shape
    valid = np.isfinite(mu)
    cols = dict(zip(FEATURE_COLUMNS[:7], _moments(n, valid)))
    cols.update(zip(("mu_min", "mu_max", "mu_mean", "mu_std", "mu_skew", "mu_kurt"),
                    [m for i, m in enumerate(_moments(mu, valid)) if i != 4]))
    cols["ks_stat"], cols["ks_pval"] = _ks(n, mu, valid).T
    cols["cstat"], cols["cstat_expected"], cols["cstat_z"], cols["cstat_pval"] = _cash(n, mu, valid)
    cols["n_frames_valid"] = valid.sum(axis=1)
    cols["n_bti"] = np.full(k, int(bti.sum()))
    cols["n_bad_frame"] = np.full(k, int(bad.sum()))
    cols["frac_bti"] = np.full(k, bti.sum() / max(nt, 1))
    cols["frac_bad_frame"] = np.full(k, bad.sum() / max(nt, 1))
    has_p, has_e = (valid & ~np.isnan(bp)).any(axis=1), (valid & ~np.isnan(be)).any(axis=1)
    bp = np.where(valid & ~np.isnan(bp), bp, -np.inf)  # undecided frames never count
    be = np.where(valid & ~np.isnan(be), be, -np.inf)
    # (+inf, counts where mu = 0, is the largest; NaN only without a decided frame)
    cols["log10_bayes_peak_max"] = np.where(has_p, bp.max(axis=1, initial=-np.inf), np.nan)
    cols["log10_bayes_eclipse_max"] = np.where(has_e, be.max(axis=1, initial=-np.inf), np.nan)
    cols["sigma_peak_max"] = sigma_equivalents(cols["log10_bayes_peak_max"], "peak")
    cols["sigma_eclipse_max"] = sigma_equivalents(cols["log10_bayes_eclipse_max"], "eclipse")
    tp, te = bayes.threshold(float(sigma))
    above_p, above_e = bp > tp, be > te
    cols["n_peak_excursions"], cols["peak_gap_min"] = excursions(above_p, t_lo, t_hi)[:2]
    cols["n_eclipse_excursions"], cols["eclipse_gap_min"] = excursions(above_e, t_lo, t_hi)[:2]
    cols.update(_level_counts(bp, be, bti, valid))
    cols["n_max_first_bin"], cols["n_max_last_bin"], cols["n_max_isolated"] = _position(n, mu, valid)
    cols["duration"], cols["fluence"] = _burst(list(kinds), best, above_p, above_e, n, mu, valid, t_lo, t_hi, gti)
    return pd.DataFrame({c: cols[c] for c in FEATURE_COLUMNS})
