"""Poisson Bayes factors for peaks (flares) and eclipses (dips), their
calibrated thresholds, exact per-voxel masks and expected false alarms.

With P, Q the regularised lower/upper incomplete gamma functions and
Pois(n; mu) the Poisson probability of n counts for an expectation mu::

    log10 B_peak(n, mu)    = log10 Q(n+1, mu) - log10 Pois(n; mu)
    log10 B_eclipse(n, mu) = log10 P(n+1, mu) - log10 Pois(n; mu)

Q(n+1, mu) = P(N <= n | mu) and P(n+1, mu) = P(N > n | mu), so the Bayes
factors are ratios of a Poisson tail to the Poisson probability itself. They
are computed in log space and stay finite for n and mu up to at least 1e6.

Thresholds are calibrated at mu = 1000 through the Gaussian-equivalent
significance (``threshold``). ``masks`` decides every voxel with a threshold
table whose answer is exactly that of the direct test ``log10 B > threshold``
(see ``ThresholdTable``). Everything works elementwise on numpy arrays,
lazily on dask arrays, and on xarray DataArrays (coordinates kept).
"""
from __future__ import annotations

import functools
import math
import os
import uuid
from typing import NamedTuple

import dask.array as da
import numba
import numpy as np
import xarray as xr
from scipy import special

from .. import _numba_cache  # noqa: F401 (numba's cache: a failure warns instead of failing)
from ..scheduler import thread_map

__all__ = [
    "log10_bayes_peak",
    "log10_bayes_eclipse",
    "Thresholds",
    "threshold",
    "calibration_counts",
    "ThresholdTable",
    "threshold_table",
    "n_peak_min",
    "n_eclipse_max",
    "NO_PEAK",
    "masks",
    "peak_decision",
    "eclipse_decision",
    "FalseAlarms",
    "false_alarm_probability",
    "expected_false_alarms",
]

LN10 = math.log(10.0)
CALIBRATION_MU = 1000.0
#: largest tabulated n + 1; voxels with more counts are decided by the direct test
TABLE_SIZE = 1 << 14
#: half-width, in log10 B, of the band around each breakpoint decided directly
GUARD_MARGIN = 1e-6

_LN_2PI = math.log(2.0 * math.pi)
_TINY = 1e-290
#: P(N > n) below which ``_ln_eclipse`` sums the ratio series instead of using gammainc
_SF_SERIES_BELOW = 1e-3
_LN_FLOOR = math.log(1e-300)


# --------------------------------------------------------------------------
# log-space Poisson pieces (float64 numpy arrays, n integer >= 0, 0 <= mu < inf)
# --------------------------------------------------------------------------
def _stirlerr(n):
    """lgamma(n+1) - (n+1/2) log n + n - log(2 pi)/2 for n >= 1."""
    out = np.empty_like(n)
    small = n <= 15.0
    ns = n[small]
    out[small] = special.gammaln(ns + 1.0) - (ns + 0.5) * np.log(ns) + ns - 0.5 * _LN_2PI
    nb = n[~small]
    nn = nb * nb
    s0, s1, s2, s3, s4 = 1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188
    out[~small] = (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / nb
    return out


def _bd0(x, m):
    """x log(x/m) + m - x for x > 0, m > 0, without cancellation when x ~ m."""
    out = np.empty_like(x)
    d = x - m
    near = np.abs(d) < 0.1 * (x + m)
    xs, ds = x[near], d[near]
    v = ds / (xs + m[near])
    s = ds * v
    ej = 2.0 * xs * v
    v2 = v * v
    for j in range(1, 14):  # |v| < 0.1, so v2**13 < 1e-26
        ej = ej * v2
        s = s + ej / (2 * j + 1)
    out[near] = s
    xf, mf = x[~near], m[~near]
    with np.errstate(over="ignore"):
        r = xf / mf
    ok = np.isfinite(r)
    lr = np.where(ok, np.log(np.where(ok, r, 1.0)), np.log(xf) - np.log(mf))
    out[~near] = xf * lr + mf - xf
    return out


def _logpmf(n, mu):
    """Natural log of Pois(n; mu) in Loader's saddle-point form
    ``-stirlerr(n) - bd0(n, mu) - log(2 pi n)/2`` (no cancellation at large n)."""
    out = -mu.copy()  # n == 0
    pos = n > 0
    reg = pos & (mu > 0.0)
    nr = n[reg]
    out[reg] = -_stirlerr(nr) - _bd0(nr, mu[reg]) - 0.5 * (_LN_2PI + np.log(nr))
    out[pos & (mu == 0.0)] = -np.inf
    return out


@numba.njit(nogil=True, cache=True)
def _ln_cdf_ratio_sum(n, mu):  # pragma: no cover - compiled
    """log sum_{j=0..n} n!/(n-j)! mu**-j  (= log P(N<=n)/Pois(n)); for n < mu."""
    out = np.empty(n.size)
    for i in range(n.size):
        k, m = n[i], mu[i]
        s = 1.0
        t = 1.0
        j = 1.0
        while j <= k:
            t *= (k - j + 1.0) / m
            s += t
            if t < 1e-17 * s:
                break
            j += 1.0
        out[i] = math.log(s)
    return out


#: most terms of the eclipse ratio series; enough to converge for n up to ~3e12
_SF_MAX_TERMS = 1 << 24


@numba.njit(nogil=True, cache=True)
def _ln_sf_ratio_sum(n, mu):  # pragma: no cover - compiled
    """log sum_{j>=1} mu**j n!/(n+j)!  (= log P(N>n)/Pois(n)); for n + 1 > mu > 0.

    Summed as ``mu/(n+1) * (1 + mu/(n+2) + mu**2/((n+2)(n+3)) + ...)``: the
    bracket is >= 1 and its terms fall (ratio mu/(n+j) < 1), so nothing
    underflows the stopping test however small mu is, and the loop ends for
    every input (about 9 sqrt(n) terms at most below n ~ 3e12; beyond
    ``_SF_MAX_TERMS`` terms the rest is bounded by the geometric tail and
    that bound added, an approximation only for n > ~3e12)."""
    out = np.empty(n.size)
    for i in range(n.size):
        k, m = n[i], mu[i]
        s = 1.0
        t = 1.0
        j = 2.0
        while t > 1e-17 * s:
            r = m / (k + j)
            t *= r
            s += t
            j += 1.0
            if j > _SF_MAX_TERMS:
                s += t * r / (1.0 - r)
                break
        out[i] = math.log(m) - math.log(k + 1.0) + math.log(s)
    return out


def _ln_peak(n, mu, lpmf=None):
    """ln B_peak = ln P(N <= n | mu) - ln Pois(n; mu); +inf for n >= 1 at mu = 0."""
    lpmf = _logpmf(n, mu) if lpmf is None else lpmf
    lcdf = np.empty_like(mu)
    right = n >= mu  # P(N <= n) >= P(N <= mu) ~ 1/2: log1p of the small upper tail
    lcdf[right] = np.log1p(-special.gammainc(n[right] + 1.0, mu[right]))
    q = special.gammaincc(n[~right] + 1.0, mu[~right])
    with np.errstate(divide="ignore"):
        lcdf[~right] = np.log(q)
    out = lcdf - lpmf
    under = np.zeros_like(right)
    under[~right] = q < _TINY
    if under.any():
        out[under] = _ln_cdf_ratio_sum(n[under], mu[under])
    out[n == 0] = 0.0
    return out


def _ln_eclipse(n, mu, lpmf=None):
    """ln B_eclipse = ln P(N > n | mu) - ln Pois(n; mu); -inf at mu = 0."""
    lpmf = _logpmf(n, mu) if lpmf is None else lpmf
    lsf = np.empty_like(mu)
    left = n + 1.0 <= mu  # P(N >= n+1) >= P(N >= mu) ~ 1/2: the large side
    lsf[left] = np.log1p(-special.gammaincc(n[left] + 1.0, mu[left]))
    p = special.gammainc(n[~left] + 1.0, mu[~left])
    with np.errstate(divide="ignore"):
        lsf[~left] = np.log(p)
    with np.errstate(invalid="ignore"):
        out = lsf - lpmf
    under = np.zeros_like(left)
    # a small upper tail (n above mu): scipy's gammainc loses accuracy there at
    # large n (relative 1e-6 at n = 1e6, 40 % at n = 1e9 where it is < 1e-5),
    # and it underflows for tiny mu: the ratio series is exact in this regime
    under[~left] = (p < _SF_SERIES_BELOW) & (mu[~left] > 0.0)
    if under.any():
        out[under] = _ln_sf_ratio_sum(n[under], mu[under])
    out[mu == 0.0] = -np.inf
    return out


# --------------------------------------------------------------------------
# elementwise public functions (numpy / dask / xarray)
# --------------------------------------------------------------------------
def _check_integer(n_valid, name="n"):
    if n_valid.size and np.any(n_valid != np.floor(n_valid)):
        bad = n_valid[n_valid != np.floor(n_valid)][0]
        raise ValueError(
            f"{name}: counts must be whole numbers, got {bad!r}; pass the counts cube itself "
            "(integer or float holding integers, NaN for masked frames)"
        )


def _log10_block(n, mu, which):
    n, mu = np.broadcast_arrays(np.asarray(n, dtype=np.float64), np.asarray(mu, dtype=np.float64))
    shape = n.shape
    n, mu = n.ravel(), mu.ravel()
    ok = np.isfinite(n) & (n >= 0) & np.isfinite(mu) & (mu >= 0)
    out = np.full(n.shape, np.nan)
    nv, mv = n[ok], mu[ok]
    _check_integer(nv)
    if nv.size:
        ln = _ln_peak(nv, mv) if which == "peak" else _ln_eclipse(nv, mv)
        out[ok] = ln / LN10
    return out.reshape(shape)


def _is_dask(*xs):
    return any(isinstance(x, da.Array) for x in xs)


def _elementwise(func, n, mu, n_out=1, dtype=np.float64):
    """Apply ``func(n_block, mu_block) -> array or tuple`` to numpy, dask or xarray inputs."""
    if isinstance(n, xr.DataArray) or isinstance(mu, xr.DataArray):
        return xr.apply_ufunc(
            lambda a, b: _elementwise(func, a, b, n_out, dtype), n, mu,
            dask="allowed", output_core_dims=[[]] * n_out,
        )
    if _is_dask(n, mu):
        n, mu = da.broadcast_arrays(da.asarray(n), da.asarray(mu))
        name = f"bayes-{uuid.uuid4().hex}"  # (a unique name: hashing the function pickles it)
        if n_out == 1:
            return da.map_blocks(func, n, mu, dtype=dtype, meta=np.empty((0,) * n.ndim, dtype), name=name)
        stacked = da.map_blocks(
            lambda a, b: np.stack(func(a, b)), n, mu,
            new_axis=0, chunks=((n_out,),) + n.chunks, dtype=dtype,
            meta=np.empty((0,) * (n.ndim + 1), dtype), name=name,
        )
        return tuple(stacked[i] for i in range(n_out))
    out = func(n, mu)
    if n_out == 1:
        return out[()]
    return tuple(o[()] for o in out)


def log10_bayes_peak(n, mu):
    """log10 Bayes factor for a peak (more counts than expected).

    ``log10 Q(n+1, mu) - log10 Pois(n; mu)``, elementwise with broadcasting.
    ``n``: counts (whole numbers >= 0, any dtype; NaN allowed); ``mu``: expected
    counts (>= 0). NaN, negative or infinite inputs give NaN; ``n >= 1`` at
    ``mu = 0`` gives +inf; ``n = 0`` gives exactly 0. Non-integer counts raise
    ValueError. numpy in -> numpy out (eager); dask in -> lazy dask array;
    DataArray in -> DataArray.
    """
    return _elementwise(functools.partial(_log10_block, which="peak"), n, mu)


def log10_bayes_eclipse(n, mu):
    """log10 Bayes factor for an eclipse (fewer counts than expected).

    ``log10 P(n+1, mu) - log10 Pois(n; mu)``, elementwise with broadcasting;
    inputs, laziness and NaN handling as in ``log10_bayes_peak``. At ``mu = 0``
    the result is -inf.
    """
    return _elementwise(functools.partial(_log10_block, which="eclipse"), n, mu)


# --------------------------------------------------------------------------
# thresholds
# --------------------------------------------------------------------------
class Thresholds(NamedTuple):
    """log10 Bayes-factor thresholds of one significance level."""

    peak: float
    eclipse: float


def calibration_counts(mu: float, sigma: float) -> tuple[int, int]:
    """(n_peak, n_eclipse): counts at Gaussian-equivalent ``sigma`` from ``mu``,
    ``sigma = (n - mu) / sqrt(n + mu)`` solved for n and rounded outwards.
    Eager (scalar arithmetic; ``mu`` and the results in [count])."""
    s2 = sigma * sigma
    root = math.sqrt(8.0 * mu * s2 + s2 * s2)
    return math.ceil((2.0 * mu + s2 + root) / 2.0), math.floor((2.0 * mu + s2 - root) / 2.0)


@functools.lru_cache(maxsize=256)
def _threshold(sigma: float) -> Thresholds:
    n_peak, n_ecl = calibration_counts(CALIBRATION_MU, sigma)
    mu = np.array([CALIBRATION_MU])
    peak = float(_log10_block(np.array([float(n_peak)]), mu, "peak")[0])
    eclipse = math.inf if n_ecl < 0 else float(_log10_block(np.array([float(n_ecl)]), mu, "eclipse")[0])
    return Thresholds(peak, eclipse)


def threshold(sigma: float = 3.0) -> Thresholds:
    """log10 B thresholds ``(peak, eclipse)`` for a Gaussian-equivalent ``sigma``.

    Calibrated at mu = 1000: the thresholds are ``log10 B_peak(n_peak, 1000)``
    and ``log10 B_eclipse(n_eclipse, 1000)`` with ``n_peak``/``n_eclipse`` from
    ``calibration_counts``. The eclipse threshold is +inf when ``sigma`` is so
    large that no count at mu = 1000 reaches it. Cached; eager and cheap.
    """
    s = float(sigma)
    if not (math.isfinite(s) and s >= 0):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    return _threshold(s)


# --------------------------------------------------------------------------
# the exact threshold table
# --------------------------------------------------------------------------
class ThresholdTable(NamedTuple):
    """Breakpoints in mu that decide the threshold test for each count n < size.

    Peak: n is a peak iff ``mu < peak_break[n]`` (B_peak falls with mu).
    Eclipse: n is an eclipse iff ``mu > eclipse_break[n]`` (B_eclipse rises with mu).
    Both break arrays increase with n. Around each breakpoint a guard band
    ``[*_lo[n], *_hi[n]]`` (where |log10 B - threshold| < ``GUARD_MARGIN``) is
    decided by the direct test; outside it the table answer is exact because
    the computed log10 B is accurate to far better than ``GUARD_MARGIN``.
    ``n = 0`` is never a peak (peak arrays hold -1 there).
    """

    sigma: float
    thresholds: Thresholds
    peak_break: np.ndarray
    peak_lo: np.ndarray
    peak_hi: np.ndarray
    eclipse_break: np.ndarray
    eclipse_lo: np.ndarray
    eclipse_hi: np.ndarray
    lgamma1: np.ndarray  # lgamma(n + 1), for the false-alarm kernel

    @property
    def size(self) -> int:
        """Number of counts the table covers: it decides ``n = 0 .. size - 1``
        (the length of each break and guard array)."""
        return self.peak_break.size


def _ln_b_and_slope(n, mu, which):
    """ln B and d ln B / d ln mu (analytic) at float64 arrays n, mu > 0."""
    lpmf = _logpmf(n, mu)
    if which == "peak":
        lnb = _ln_peak(n, mu, lpmf)
        slope = mu - n - mu * np.exp(-lnb)
    else:
        lnb = _ln_eclipse(n, mu, lpmf)
        slope = mu - n + mu * np.exp(-lnb)
    return lnb, slope


def _solve_breaks(n, thr_ln, which, sigma):
    """mu where ln B(n, mu) = thr_ln, for each n (safeguarded Newton in ln mu,
    started from the Gaussian-equivalent guess). Breakpoints below 1e-300 are
    returned as 0."""
    sign = -1.0 if which == "peak" else 1.0  # B falls (peak) / rises (eclipse) with mu
    s2 = sigma * sigma
    root = np.sqrt(8.0 * n * s2 + s2 * s2)
    if which == "peak":
        lo = np.full(n.shape, _LN_FLOOR)
        hi = np.log(4.0 * n + 10.0)  # B(n, 4n+10) ~ 4/3
        guess = (2.0 * n + s2 - root) / 2.0
    else:
        lo = np.log(np.maximum(n / 4.0, 1e-3))
        hi = np.log(4.0 * (n + 1.0) + 2.0 * thr_ln + 10.0)
        guess = (2.0 * n + s2 + root) / 2.0
    # widen until the brackets hold (they do for all sane thresholds; cheap check)
    for _ in range(60):
        f_lo = sign * (_ln_b_and_slope(n, np.exp(lo), which)[0] - thr_ln)
        f_hi = sign * (_ln_b_and_slope(n, np.exp(hi), which)[0] - thr_ln)
        bad_lo = (f_lo > 0) & (lo > _LN_FLOOR)
        bad_hi = f_hi <= 0
        if not (bad_lo.any() or bad_hi.any()):
            break
        lo = np.where(bad_lo, np.maximum(lo - 2.0, _LN_FLOOR), lo)
        hi = np.where(bad_hi, hi + 2.0, hi)
    else:  # pragma: no cover - defensive
        raise RuntimeError("threshold table: could not bracket the breakpoints")
    below = f_lo > 0  # breakpoint under 1e-300 (peaks of huge significance)
    # invariant: sign*(lnB - thr) <= 0 at lo, > 0 at hi
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.log(guess)
    x = np.where(np.isfinite(x) & (x > lo) & (x < hi), x, 0.5 * (lo + hi))
    active = ~below
    for _ in range(200):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        xa = x[idx]
        lnb, slope = _ln_b_and_slope(n[idx], np.exp(xa), which)
        g = sign * (lnb - thr_ln)
        lo[idx] = np.where(g <= 0, xa, lo[idx])
        hi[idx] = np.where(g > 0, xa, hi[idx])
        with np.errstate(divide="ignore", invalid="ignore"):
            x_new = xa - (lnb - thr_ln) / slope
        inside = np.isfinite(x_new) & (x_new > lo[idx]) & (x_new < hi[idx])
        x_new = np.where(inside, x_new, 0.5 * (lo[idx] + hi[idx]))
        # converged when ln B is within 1e-10 of the threshold (the guard bands
        # are GUARD_MARGIN * ln 10 = 2.3e-6 wide in ln B) or the bracket is closed
        done = (np.abs(lnb - thr_ln) <= 1e-10) | (hi[idx] - lo[idx] <= 1e-13)
        x_new = np.where(np.abs(lnb - thr_ln) <= 1e-10, xa, x_new)
        x[idx] = x_new
        active[idx[done]] = False
    return np.where(below, 0.0, np.exp(x))


@functools.lru_cache(maxsize=16)
def _build_table(sigma: float, size: int) -> ThresholdTable:
    return _stored(f"threshold-table-s{sigma!r}-n{size}", ThresholdTable, lambda: _solve_table(sigma, size))


def _solve_table(sigma: float, size: int) -> ThresholdTable:
    thr = threshold(sigma)
    n = np.arange(size, dtype=np.float64)
    lg = special.gammaln(n + 1.0)
    margin_ln = GUARD_MARGIN * LN10

    pb = np.full(size, -1.0)
    plo = np.full(size, -1.0)
    phi = np.full(size, -1.0)
    npk = n[1:]
    beta = _solve_breaks(npk, thr.peak * LN10, "peak", sigma)
    below = beta == 0.0
    _, slope = _ln_b_and_slope(npk, np.where(below, 1.0, beta), "peak")
    g = np.maximum(margin_ln / np.abs(slope), 1e-13)
    pb[1:], plo[1:], phi[1:] = beta, beta * (1.0 - g), np.where(below, 1e-300, beta * (1.0 + g))

    if math.isinf(thr.eclipse):
        eb = elo = ehi = np.full(size, np.inf)
    else:
        gamma = _solve_breaks(n, thr.eclipse * LN10, "eclipse", sigma)
        _, slope = _ln_b_and_slope(n, gamma, "eclipse")
        g = np.maximum(margin_ln / np.abs(slope), 1e-13)
        eb, elo, ehi = gamma, gamma * (1.0 - g), gamma * (1.0 + g)

    table = ThresholdTable(float(sigma), thr, pb, plo, phi, eb, elo, ehi, lg)
    _verify_table(table)
    return table


def _verify_table(t: ThresholdTable) -> None:
    """Internal consistency: monotone breakpoints, guard edges on the right side."""
    for name in ("peak_lo", "peak_hi", "eclipse_lo", "eclipse_hi"):
        a = getattr(t, name)
        a = a[np.isfinite(a)]
        if a.size > 1 and not np.all(np.diff(a) >= 0):
            raise RuntimeError(f"threshold table (sigma={t.sigma}): {name} is not increasing")
    ok = t.peak_lo > 0
    n = np.flatnonzero(ok).astype(np.float64)
    if not (np.all(_log10_block(n, t.peak_lo[ok], "peak") > t.thresholds.peak)
            and np.all(_log10_block(n, t.peak_hi[ok], "peak") <= t.thresholds.peak)):
        raise RuntimeError(f"threshold table (sigma={t.sigma}): peak guard band check failed")
    if np.isfinite(t.thresholds.eclipse):
        n0 = np.arange(t.size, dtype=np.float64)
        if not (np.all(_log10_block(n0, t.eclipse_hi, "eclipse") > t.thresholds.eclipse)
                and np.all(_log10_block(n0, t.eclipse_lo, "eclipse") <= t.thresholds.eclipse)):
            raise RuntimeError(f"threshold table (sigma={t.sigma}): eclipse guard band check failed")


def threshold_table(sigma: float = 3.0) -> ThresholdTable:
    """The (cached) ``ThresholdTable`` for ``sigma``, for n = 0 .. TABLE_SIZE - 1.

    Built once per process and sigma (about 0.2 s): the breakpoints are solved
    by safeguarded Newton iteration on the direct Bayes factors.
    Eager: builds the numpy table on the first call, then returns the cached
    one.
    """
    threshold(sigma)  # validates
    return _build_table(float(sigma), TABLE_SIZE)


#: bump when the stored tables' content or layout changes
_TABLES_FORMAT = 1


def _stored(name: str, cls, build, source: str | None = None):
    """``build()`` (a NamedTuple ``cls`` of numbers and arrays), kept in the
    xcube cache directory (``tables/``) so that later processes load it in a
    millisecond instead of building it (the threshold table takes about 0.1 s,
    the false-alarm grid 0.15 s, the Cash-statistic moments of
    :mod:`.features` 0.25 s). The file name holds the xcube version and a
    hash of the source file that builds the table (``source``; default this
    module), so a table of other code is never loaded. A missing,
    unreadable or read-only cache just means building it."""
    import zipfile  # (np.load has imported it)

    from .._version import __version__
    from ..io.atomic import atomic_file
    from ..io.paths import cache_dir

    path = cache_dir() / "tables" / f"{name}-f{_TABLES_FORMAT}-{__version__}-{_code_hash(source or __file__)}.npz"
    try:
        with np.load(path) as z:
            value = cls(*(_field(z[f], t) for f, t in zip(cls._fields, _kinds(cls))))
        if isinstance(value, ThresholdTable) and tuple(value.thresholds) != tuple(threshold(value.sigma)):
            raise ValueError(f"its thresholds {tuple(value.thresholds)} are not threshold({value.sigma}) = "
                             f"{tuple(threshold(value.sigma))}")
    except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        if not isinstance(exc, FileNotFoundError):  # damaged (a flipped bit fails the zip's CRC-32, a cut file)
            import warnings

            warnings.warn(f"{path}: unreadable or damaged stored table ({type(exc).__name__}: {exc}); rebuilding it",
                          UserWarning, stacklevel=3)
        value = build()
        try:
            with atomic_file(path, overwrite=True) as tmp:
                np.savez(tmp, **{f: np.asarray(getattr(value, f)) for f in cls._fields})
        except OSError:
            pass
    for a in value:
        if isinstance(a, np.ndarray):
            a.setflags(write=False)
    return value


@functools.cache
def _code_hash(source: str = __file__) -> str:
    """12 hex digits of the SHA-1 of the source file ``source`` (default this
    module): the stored tables of other code (an edit between two releases of
    one version number) are never loaded."""
    import hashlib
    from pathlib import Path

    try:
        return hashlib.sha1(Path(source).read_bytes()).hexdigest()[:12]
    except OSError:  # pragma: no cover - a zipped install: the version alone
        return "0"


def _kinds(cls):
    """How each field of a stored table comes back: the name of its
    annotation (``float``, ``int``, ``Thresholds``; anything else an array)."""
    return [getattr(a, "__forward_arg__", getattr(a, "__name__", a)) for a in
            (cls.__annotations__.get(f) for f in cls._fields)]


def _field(arr, kind):
    if kind == "float":
        return float(arr)
    if kind == "int":
        return int(arr)
    if kind == "Thresholds":
        return Thresholds(*(float(v) for v in arr))
    return np.array(arr)


# --------------------------------------------------------------------------
# masks
# --------------------------------------------------------------------------
@numba.njit(inline="always")
def peak_decision(j, m, plo, phi):  # pragma: no cover - compiled
    """The peak test of ``j`` counts (whole, ``0 <= j < plo.size``) against a
    finite ``m >= 0`` from the threshold table: 1 yes, 0 no, 2 undecided
    (guard band: the direct test decides). The one per-voxel peak rule of
    every mask kernel (dense cubes here, compact cubes in ``decision``)."""
    if m < plo[j]:
        return 1
    if m >= phi[j]:
        return 0
    return 2


@numba.njit(inline="always")
def eclipse_decision(j, m, elo, ehi):  # pragma: no cover - compiled
    """The eclipse test of ``j`` counts against ``m`` (as :func:`peak_decision`)."""
    if m > ehi[j]:
        return 1
    if m <= elo[j]:
        return 0
    return 2


@numba.njit(nogil=True, cache=True)
def _mask_kernel(n, mu, plo, phi, elo, ehi, peak, ecl, sparse):  # pragma: no cover - compiled
    """Codes 0 (no), 1 (yes), 2 (undecided: direct test needed) per voxel.
    ``sparse``: decide n = 0 first (never a peak; an eclipse only above
    ``eclipse_lo[0]``), faster when most voxels are empty. Returns (number
    undecided, number of non-integer counts)."""
    size = plo.size
    undecided = 0
    nonint = 0
    elo0 = elo[0]
    for i in range(n.size):
        m = mu[i]
        k = n[i]
        if sparse and k == 0 and not (m > elo0):  # also NaN: neither a peak nor an eclipse
            peak[i] = 0
            ecl[i] = 0
            continue
        if not (m >= 0.0 and m < np.inf and k >= 0 and k < np.inf):
            peak[i] = 0
            ecl[i] = 0
            continue
        if k >= size:
            peak[i] = 2
            ecl[i] = 2
            undecided += 2
            continue
        j = np.int64(k)
        if j != k:
            nonint += 1
        p = peak_decision(j, m, plo, phi)
        peak[i] = p
        if p == 2:
            undecided += 1
        e = eclipse_decision(j, m, elo, ehi)
        ecl[i] = e
        if e == 2:
            undecided += 1
    return undecided, nonint


def _is_sparse(n1) -> bool:
    """The n = 0 shortcut pays when nearly all voxels are empty (sampled)."""
    if n1.size == 0:
        return False
    sample = n1[:: max(1, n1.size // 4096)]
    return bool(np.count_nonzero(sample == 0) > 0.85 * sample.size)


_PARALLEL_MIN = 1 << 22


def _is_lazy(*xs):
    return any(isinstance(x, da.Array) or (isinstance(x, xr.DataArray) and x.chunks is not None) for x in xs)


def _run_split(kernel, arrays, outs, extra, parallel=True, tail=()):
    """Run a nogil kernel ``kernel(*arrays, *extra, *outs, *tail)`` over 1-D
    arrays, split across CPU threads when large and ``parallel`` (numpy
    inputs; Dask blocks already run in parallel)."""
    size = arrays[0].size
    nthreads = min(os.cpu_count() or 1, 8)
    if not parallel or size < _PARALLEL_MIN or nthreads == 1:
        return [kernel(*arrays, *extra, *outs, *tail)]
    bounds = np.linspace(0, size, nthreads + 1).astype(np.int64)
    return thread_map(lambda b: kernel(*(a[b[0]:b[1]] for a in arrays), *extra, *(o[b[0]:b[1]] for o in outs), *tail),
                      list(zip(bounds[:-1], bounds[1:])))


def _flat_pair(n, mu):
    n = np.asarray(n)
    mu = np.asarray(mu)
    if mu.dtype.kind != "f":
        mu = mu.astype(np.float64)
    if n.dtype == np.bool_:
        n = n.astype(np.uint8)
    n, mu = np.broadcast_arrays(n, mu)
    shape = n.shape
    return np.ascontiguousarray(n).reshape(-1), np.ascontiguousarray(mu).reshape(-1), shape


def _masks_block(n, mu, sigma, parallel=True):
    table = threshold_table(sigma)
    n1, mu1, shape = _flat_pair(n, mu)
    peak = np.empty(n1.size, np.uint8)
    ecl = np.empty(n1.size, np.uint8)
    res = _run_split(_mask_kernel, (n1, mu1), (peak, ecl),
                     (table.peak_lo, table.peak_hi, table.eclipse_lo, table.eclipse_hi), parallel,
                     tail=(_is_sparse(n1),))
    undecided = sum(r[0] for r in res)
    if sum(r[1] for r in res):
        nv = n1[np.isfinite(n1.astype(np.float64)) & (n1 >= 0)]
        _check_integer(nv.astype(np.float64))
    if undecided:
        thr = table.thresholds
        for code, which, t in ((peak, "peak", thr.peak), (ecl, "eclipse", thr.eclipse)):
            idx = np.flatnonzero(code == 2)
            if idx.size:
                code[idx] = _log10_block(n1[idx].astype(np.float64), mu1[idx].astype(np.float64), which) > t
    return peak.view(np.bool_).reshape(shape), ecl.view(np.bool_).reshape(shape)


def masks(n, mu, sigma: float = 3.0):
    """Peak and eclipse masks ``(peak_mask, eclipse_mask)`` of boolean arrays.

    A voxel is a peak when ``log10_bayes_peak(n, mu) > threshold(sigma).peak``
    and an eclipse when ``log10_bayes_eclipse(n, mu) > threshold(sigma).eclipse``;
    the answer is exactly that of this direct test at every integer n, obtained
    from the breakpoint table (``threshold_table``) by one lookup and two
    comparisons per voxel (numba, > 2e8 voxels/s), the direct test deciding the
    rare voxels in a guard band or with n >= TABLE_SIZE.

    ``n``: counts (whole numbers, any dtype; NaN allowed), ``mu``: expected
    counts; any broadcastable shapes. NaN or negative n or mu are never
    flagged. numpy in -> numpy out (eager); dask in -> two lazy dask arrays
    (one kernel pass per block); DataArray in -> DataArrays.
    """
    threshold(sigma)  # validate early
    func = functools.partial(_masks_block, sigma=float(sigma), parallel=not _is_lazy(n, mu))
    return _elementwise(func, n, mu, n_out=2, dtype=bool)


# --------------------------------------------------------------------------
# n_min / n_max and false alarms
# --------------------------------------------------------------------------
@numba.njit(nogil=True, cache=True)
def _nlimits_kernel(mu, plo, phi, elo, ehi, nmin, nmax):  # pragma: no cover - compiled
    """Table n_peak_min / n_eclipse_max per mu; -2 where the direct test must decide
    (guard band or beyond the table), -3 for invalid mu."""
    size = plo.size
    undecided = 0
    for i in range(mu.size):
        m = mu[i]
        if not (m >= 0.0 and m < np.inf):
            nmin[i] = -3
            nmax[i] = -3
            continue
        # peak: n < cf certainly not, n >= ct certainly yes (n = 0 never: plo[0] = phi[0] = -1)
        cf = np.searchsorted(phi, m, side="right")
        ct = np.searchsorted(plo, m, side="right")
        if cf == ct and cf < size:
            nmin[i] = cf
        else:
            nmin[i] = -2
            undecided += 1
        # eclipse: n < ct certainly yes, n >= cf certainly not
        ct = np.searchsorted(ehi, m, side="left")
        cf = np.searchsorted(elo, m, side="left")
        if cf == ct and cf < size:
            nmax[i] = ct - 1
        else:
            nmax[i] = -2
            undecided += 1
    return undecided


def _direct_nmin(mu, table):
    """Smallest n with the direct peak test true, for each mu (vectorised search)."""
    thr = table.thresholds.peak
    lo = np.zeros(mu.shape)  # test false at lo (n = 0 never a peak)
    hi = np.floor(2.0 * mu + 50.0 * np.sqrt(mu) + 100.0)
    for _ in range(200):
        ok = _log10_block(hi, mu, "peak") > thr
        if ok.all():
            break
        hi = np.where(ok, hi, 2.0 * hi)
    while np.any(hi - lo > 1):
        mid = np.floor((lo + hi) / 2.0)
        t = _log10_block(mid, mu, "peak") > thr
        act = hi - lo > 1
        lo = np.where(act & ~t, mid, lo)
        hi = np.where(act & t, mid, hi)
    return hi.astype(np.int64)


def _direct_nmax(mu, table):
    """Largest n with the direct eclipse test true (or -1), for each mu."""
    thr = table.thresholds.eclipse
    out = np.full(mu.shape, -1, dtype=np.int64)
    if not np.isfinite(thr) or mu.size == 0:
        return out
    has = _log10_block(np.zeros(mu.shape), mu, "eclipse") > thr
    lo = np.zeros(mu.shape)  # test true at lo (where has)
    hi = np.ceil(mu) + 1.0  # test false at hi (B_eclipse(n >= mu) is small), checked:
    for _ in range(200):
        t = _log10_block(hi, mu, "eclipse") > thr
        if not t.any():
            break
        hi = np.where(t, 2.0 * hi, hi)
    while np.any(has & (hi - lo > 1)):
        mid = np.floor((lo + hi) / 2.0)
        t = _log10_block(mid, mu, "eclipse") > thr
        act = has & (hi - lo > 1)
        lo = np.where(act & t, mid, lo)
        hi = np.where(act & ~t, mid, hi)
    out[has] = lo[has].astype(np.int64)
    return out


def _nlimits_block(mu, sigma):
    table = threshold_table(sigma)
    shape = np.shape(mu)
    m = np.ascontiguousarray(mu, dtype=np.float64).reshape(-1)
    nmin = np.empty(m.size, np.int64)
    nmax = np.empty(m.size, np.int64)
    und = _nlimits_kernel(m, table.peak_lo, table.peak_hi, table.eclipse_lo, table.eclipse_hi, nmin, nmax)
    if und:
        idx = np.flatnonzero(nmin == -2)
        if idx.size:
            nmin[idx] = _direct_nmin(m[idx], table)
        idx = np.flatnonzero(nmax == -2)
        if idx.size:
            nmax[idx] = _direct_nmax(m[idx], table)
    return nmin.reshape(shape), nmax.reshape(shape)


def _nlimits(mu, sigma):
    threshold(sigma)
    func = functools.partial(_nlimits_block, sigma=float(sigma))
    if isinstance(mu, xr.DataArray):
        return xr.apply_ufunc(lambda a: _nlimits(a, sigma), mu, dask="allowed", output_core_dims=[[], []])
    if isinstance(mu, da.Array):
        st = da.map_blocks(lambda a: np.stack(func(a)), mu, new_axis=0, chunks=((2,),) + mu.chunks,
                           dtype=np.int64, meta=np.empty((0,) * (mu.ndim + 1), np.int64))
        return st[0], st[1]
    a, b = func(np.asarray(mu))
    return a[()], b[()]


#: :func:`n_peak_min` where mu is NaN, negative or infinite: no count reaches it (no voxel there is a peak)
NO_PEAK = np.iinfo(np.int64).max


def _public_limit(limit, invalid):
    """``limit`` (from :func:`_nlimits`) with the kernel's -3 (invalid mu) replaced by ``invalid``."""
    if isinstance(limit, xr.DataArray):
        return limit.where(limit != -3, invalid)
    out = np.where(limit == -3, invalid, limit)  # (dask: lazy, da.where)
    return out[()] if isinstance(out, np.ndarray) else out


def n_peak_min(mu, sigma: float = 3.0):
    """Smallest count n with ``log10_bayes_peak(n, mu) > threshold(sigma).peak``.

    ``n >= n_peak_min(mu)`` is exactly the peak test, also where mu is NaN,
    negative or infinite (never a peak): there it is :data:`NO_PEAK`, the
    largest int64. int64, elementwise; numpy -> numpy; dask -> lazy.
    """
    return _public_limit(_nlimits(mu, sigma)[0], NO_PEAK)


def n_eclipse_max(mu, sigma: float = 3.0):
    """Largest count n with ``log10_bayes_eclipse(n, mu) > threshold(sigma).eclipse``,
    or -1 when no count is an eclipse (mu below about 13.1 at 3 sigma, and
    where mu is NaN, negative or infinite).

    ``n <= n_eclipse_max(mu)`` is exactly the eclipse test. int64, elementwise;
    numpy -> numpy; dask -> lazy.
    """
    return _public_limit(_nlimits(mu, sigma)[1], -1)


@numba.njit(nogil=True, cache=True)
def _tail_kernel(mu, nmin, nmax, lgamma1, ppeak, pecl):  # pragma: no cover - compiled
    """P(N >= nmin | mu) and P(N <= nmax | mu) by series that start at the
    largest term (nmin > mu, nmax < mu); 0 for invalid entries."""
    size = lgamma1.size
    for i in range(mu.size):
        m = mu[i]
        k = nmin[i]
        if k < 0:
            ppeak[i] = 0.0
            pecl[i] = 0.0
            continue
        if m == 0.0:
            ppeak[i] = 0.0
        else:
            lg = lgamma1[k] if k < size else math.lgamma(k + 1.0)
            t = 1.0
            s = 1.0
            j = 1.0
            while t > 1e-16 * s:
                t *= m / (k + j)
                s += t
                j += 1.0
            ppeak[i] = math.exp(k * math.log(m) - m - lg) * s
        k = nmax[i]
        if k < 0:
            pecl[i] = 0.0
        else:
            lg = lgamma1[k] if k < size else math.lgamma(k + 1.0)
            t = 1.0
            s = 1.0
            j = 0.0
            while j < k and t > 1e-16 * s:
                t *= (k - j) / m
                s += t
                j += 1.0
            pecl[i] = math.exp(k * math.log(m) - m - lg) * s
    return 0


def _fap_block(mu, sigma):
    table = threshold_table(sigma)
    shape = np.shape(mu)
    m = np.ascontiguousarray(mu, dtype=np.float64).reshape(-1)
    nmin, nmax = _nlimits_block(m, sigma)
    pp = np.empty(m.size)
    pe = np.empty(m.size)
    _run_split(_tail_kernel, (m, nmin, nmax), (pp, pe), (table.lgamma1,))
    return pp.reshape(shape), pe.reshape(shape)


def false_alarm_probability(mu, sigma: float = 3.0):
    """Per-voxel probabilities ``(p_peak, p_eclipse)`` that pure Poisson noise of
    mean ``mu`` is flagged: ``P(N >= n_peak_min(mu))`` and ``P(N <= n_eclipse_max(mu))``.

    float64, elementwise; 0 where mu is NaN, negative or infinite (such voxels
    are never flagged). numpy -> numpy; dask -> lazy; DataArray -> DataArrays.
    """
    threshold(sigma)
    func = functools.partial(_fap_block, sigma=float(sigma))
    if isinstance(mu, xr.DataArray):
        return xr.apply_ufunc(lambda a: false_alarm_probability(a, sigma), mu,
                              dask="allowed", output_core_dims=[[], []])
    if isinstance(mu, da.Array):
        st = da.map_blocks(lambda a: np.stack(func(a)), mu, new_axis=0, chunks=((2,),) + mu.chunks,
                           dtype=np.float64, meta=np.empty((0,) * (mu.ndim + 1)))
        return st[0], st[1]
    a, b = func(np.asarray(mu))
    return a[()], b[()]


class FalseAlarms(NamedTuple):
    """Expected numbers of falsely flagged voxels under pure Poisson noise."""

    peak: float
    eclipse: float


# Expected false alarms are summed through an interpolation grid. The cells
# split every octave [2**e, 2**(e+1)) of mu into 2**k_e equal parts (k_e >= 8,
# larger where the n_min / n_max breakpoints are denser), so the cell of a
# float64 is read off its exponent and leading mantissa bits: no log. A cell
# holds the breakpoint inside it (at most one per kind, by construction) and,
# for the counts on either side of it, P(N >= n_min) and P(N <= n_max) as
# quadratics in the position within the cell. Per voxel: integer ops, two
# comparisons and two quadratics.
_FA_MIN_BITS = 8
_FA_MAX_BITS = 24


def _p_peak(k, mu):
    return special.gammainc(np.maximum(k, 1.0), mu)


def _p_eclipse(k, mu):
    """P(N <= k | mu); 0 for k < 0."""
    return np.where(k >= 0, special.gammaincc(np.maximum(k, 0.0) + 1.0, mu), 0.0)


class _FalseAlarmGrid(NamedTuple):
    mu_lo: float  # below: n_min = 1 and no eclipses -> P_peak = 1 - exp(-mu) exactly
    mu_hi: float  # at or above: exact slow path
    e_min: int  # exponent of the first octave
    bits: np.ndarray  # (octaves,) int64 k_e
    base: np.ndarray  # (octaves,) int64 index of the octave's first cell
    brk: np.ndarray  # (cells, 2) float64 peak / eclipse breakpoint inside the cell (or +inf); nan = slow cell
    coef: np.ndarray  # (cells, 12) float32 quadratics: peak below/above brk, eclipse below/above brk


def _quadratic(p0, pm, p1):
    return np.stack([p0, -3.0 * p0 + 4.0 * pm - p1, 2.0 * p0 - 4.0 * pm + 2.0 * p1], axis=-1)


@functools.lru_cache(maxsize=16)
def false_alarm_grid(sigma: float) -> _FalseAlarmGrid:
    """The interpolation grid of the per-voxel false-alarm probabilities at
    ``sigma`` (built once, stored on disk): pass ``false_alarm_grid(s)[:]``
    after the mu values to :func:`false_alarm_sums`."""
    return _stored(f"false-alarm-grid-s{sigma!r}-n{TABLE_SIZE}", _FalseAlarmGrid, lambda: _make_fa_grid(sigma))


def _make_fa_grid(sigma: float) -> _FalseAlarmGrid:
    t = threshold_table(sigma)
    size = t.size
    mu_lo = float(t.peak_lo[1])
    mu_hi = float(min(t.peak_lo[size - 1], t.eclipse_lo[size - 1]))
    e_min = math.frexp(mu_lo)[1] - 1
    e_max = math.frexp(mu_hi)[1] - 1
    pb, eb = t.peak_break[1:], t.eclipse_break
    bits, lo_list = [], []
    for e in range(e_min, e_max + 1):
        a, b = math.ldexp(1.0, e), math.ldexp(1.0, e + 1)
        smin = np.inf
        for br in (pb, eb):
            i0 = max(int(np.searchsorted(br, a)) - 1, 0)
            i1 = min(int(np.searchsorted(br, b)) + 1, br.size)
            if i1 - i0 > 1:
                smin = min(smin, float(np.diff(br[i0:i1]).min()))
        k = _FA_MIN_BITS
        while math.ldexp(1.0, e - k) > smin / 2 and k < _FA_MAX_BITS:
            k += 1
        bits.append(k)
        lo_list.append(a * (1.0 + np.arange(2**k) / 2.0**k))
    bits = np.array(bits, dtype=np.int64)
    base = np.concatenate([[0], np.cumsum(2**bits)[:-1]]).astype(np.int64)
    lo = np.concatenate(lo_list)
    width = np.repeat(np.ldexp(1.0, np.arange(e_min, e_max + 1) - bits), 2**bits)
    hi = lo + width
    mid = lo + 0.5 * width
    kp = np.searchsorted(t.peak_break, lo, side="right").astype(np.float64)
    kp_end = np.searchsorted(t.peak_break, hi, side="right")
    ke = np.searchsorted(t.eclipse_break, lo, side="left").astype(np.float64) - 1
    ke_end = np.searchsorted(t.eclipse_break, hi, side="left") - 1
    slow = (kp_end - kp > 1) | (ke_end - ke > 1) | (kp + 1 >= size) | (ke + 1 >= size)
    kpi = np.minimum(kp, size - 2).astype(np.int64)
    kei = np.minimum(ke, size - 2).astype(np.int64)
    brk = np.stack([np.where(kp_end > kp, t.peak_break[kpi], np.inf),
                    np.where(ke_end > ke, t.eclipse_break[kei + 1], np.inf)], axis=1)
    brk[slow] = np.nan
    coef = np.concatenate([
        _quadratic(_p_peak(kp, lo), _p_peak(kp, mid), _p_peak(kp, hi)),
        _quadratic(_p_peak(kp + 1, lo), _p_peak(kp + 1, mid), _p_peak(kp + 1, hi)),
        _quadratic(_p_eclipse(ke, lo), _p_eclipse(ke, mid), _p_eclipse(ke, hi)),
        _quadratic(_p_eclipse(ke + 1, lo), _p_eclipse(ke + 1, mid), _p_eclipse(ke + 1, hi)),
    ], axis=1).astype(np.float32)
    return _FalseAlarmGrid(mu_lo, mu_hi, e_min, bits, base, np.ascontiguousarray(brk), np.ascontiguousarray(coef))


@numba.njit(nogil=True, cache=True)
def false_alarm_sums(mu, mu_lo, mu_hi, e_min, bits, base, brk, coef, slow_out):  # pragma: no cover
    """Sums of P_peak and P_eclipse over the valid values of ``mu`` (1-D
    float64, C-contiguous; the grid of :func:`false_alarm_grid`) and the
    number of voxels that need the exact path (marked in ``slow_out`` when
    it has the size of mu; they are not in the sums). A numba function,
    callable from other kernels; releases the GIL."""
    sp = 0.0
    se = 0.0
    nslow = 0
    mark = slow_out.size == mu.size
    ib = mu.view(np.int64)
    for i in range(mu.size):
        m = mu[i]
        if not (m >= mu_lo and m < mu_hi):
            if m >= 0.0 and m < mu_lo:
                sp += -math.expm1(-m)
            elif m >= mu_hi and m < np.inf:
                nslow += 1
                if mark:
                    slow_out[i] = True
            continue
        b = ib[i]
        o = ((b >> 52) & 0x7FF) - 1023 - e_min
        k = bits[o]
        sh = 52 - k
        c = base[o] + ((b >> sh) & ((1 << k) - 1))
        t = (b & ((1 << sh) - 1)) * (1.0 / (1 << sh))
        bp = brk[c, 0]
        if bp != bp:  # NaN: several breakpoints in this cell
            nslow += 1
            if mark:
                slow_out[i] = True
            continue
        j = 0 if m < bp else 3
        sp += coef[c, j] + t * (coef[c, j + 1] + t * coef[c, j + 2])
        j = 6 if m <= brk[c, 1] else 9
        se += coef[c, j] + t * (coef[c, j + 1] + t * coef[c, j + 2])
    return sp, se, nslow


def _fa_sums_block(mu, sigma, parallel=True):
    g = false_alarm_grid(sigma)
    m = np.ascontiguousarray(mu, dtype=np.float64).reshape(-1)
    args = (g.mu_lo, g.mu_hi, g.e_min, g.bits, g.base, g.brk, g.coef)
    res = _run_split(false_alarm_sums, (m,), (), args + (np.zeros(0, np.bool_),), parallel)
    sp, se, nslow = (sum(r[i] for r in res) for i in range(3))
    if nslow:
        slow = np.zeros(m.size, np.bool_)
        false_alarm_sums(m, *args, slow)
        psl, esl = _fap_block(m[slow], sigma)
        sp2, se2, _ = false_alarm_sums(np.ascontiguousarray(m[~slow]), *args, np.zeros(0, np.bool_))
        sp, se = sp2 + float(psl.sum()), se2 + float(esl.sum())
    return np.array([sp, se])


def expected_false_alarms(mu, sigma: float = 3.0) -> FalseAlarms:
    """Expected number of voxels flagged by ``masks`` when the counts are pure
    Poisson noise of mean ``mu``: ``sum P(N >= n_peak_min(mu) | mu)`` and
    ``sum P(N <= n_eclipse_max(mu) | mu)`` over all voxels; NaN, negative and
    infinite mu are ignored.

    Fast (about the cost of ``masks``): each probability is interpolated in a
    fine grid of mu that knows the exact n_min/n_max steps (relative error
    < 1e-4 per voxel; ``false_alarm_probability`` gives the exact values).
    numpy -> ``FalseAlarms`` of floats (eager); dask or dask-backed DataArray
    -> ``FalseAlarms`` of 0-d lazy dask arrays (compute both together).
    """
    threshold(sigma)
    if isinstance(mu, xr.DataArray):
        mu = mu.data
    func = functools.partial(_fa_sums_block, sigma=float(sigma), parallel=not isinstance(mu, da.Array))
    if isinstance(mu, da.Array):
        nd = mu.ndim
        parts = da.map_blocks(
            lambda b: func(b).reshape((1,) * nd + (2,)), mu, new_axis=nd,
            chunks=tuple((1,) * len(c) for c in mu.chunks) + ((2,),), dtype=np.float64,
            meta=np.empty((0,) * (nd + 1)),
        )
        tot = parts.sum(axis=tuple(range(nd)))
        return FalseAlarms(tot[0], tot[1])
    tot = func(np.asarray(mu))
    return FalseAlarms(float(tot[0]), float(tot[1]))
