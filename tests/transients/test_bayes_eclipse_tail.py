"""log10_bayes_eclipse where the Poisson upper tail P(N > n) is small (n above mu):
it ends for tiny mu (no endless loop once the terms underflow) and stays accurate
at large counts, where scipy's gammainc is not."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from xcube import bayes

# (n, mu, log10 B_eclipse): 40-digit mpmath sums of B_eclipse = sum_{j>=1} mu^j n!/(n+j)!
MPMATH = [
    (1e6, 995000.0, 2.2829432094685713),
    (3e6, 2991339.7459621555, 2.5224274229326693),
    (1e7, 9980000.0, 2.687849434914392),
    (1e7, 9984188.611699158, 2.7844364320033965),
    (1e8, 99950000.0, 3.2849075685454614),
    (1e9, 999800000.0, 3.688632827399608),
    (1e9, 999857697.5052924, 3.827441141715462),
    (1e9, 999051316.7019495, 3.021985324496553),
    (1e9, 500000000.0, -1.73717791718994e-09),
]


def _log10_ratio_sum(n, mu):
    """Independent log-space sum of log10 sum_{j>=1} prod_{i<=j} mu/(n+i) (numpy, n + 1 > mu)."""
    j = np.arange(1.0, 40.0 * math.sqrt(n) + 200.0)
    lt = np.cumsum(np.log1p((mu - n - j) / (n + j)))  # log of each term
    top = lt.max()
    return (top + math.log(math.fsum(np.exp(lt - top)))) / math.log(10.0)


@pytest.mark.parametrize("n, mu, ref", MPMATH)
def test_large_counts_against_mpmath(n, mu, ref):
    got = float(bayes.log10_bayes_eclipse(n, mu))
    assert got == pytest.approx(ref, rel=1e-12, abs=1e-13)


@pytest.mark.parametrize("n, z", [(1e6, -5.0), (1e7, -4.5), (1e8, -6.0), (1e9, -5.0), (1e9, -8.0), (2e4, -7.0)])
def test_large_counts_against_log_space_sum(n, z):
    mu = n + z * math.sqrt(n)
    ref = _log10_ratio_sum(n, mu)
    got = float(bayes.log10_bayes_eclipse(n, mu))
    assert got == pytest.approx(ref, rel=1e-9)


def test_vectorised_values_equal_scalar_ones():
    n = np.array([p[0] for p in MPMATH])
    mu = np.array([p[1] for p in MPMATH])
    ref = np.array([p[2] for p in MPMATH])
    np.testing.assert_allclose(bayes.log10_bayes_eclipse(n, mu), ref, rtol=1e-12, atol=1e-13)


_TINY_MU = [(0.0, 1e-306), (0.0, 1e-308), (1.0, 1e-307), (2.0, 5e-324), (5.0, 1e-305), (0.0, 5e-324), (1e4, 1e-310)]


def test_tiny_expected_counts_end_with_the_right_value():
    # run in a subprocess: before the fix the (nogil, compiled) loop never ended
    code = (
        "import numpy as np; from xcube import bayes\n"
        f"n, mu = np.array({[p[0] for p in _TINY_MU]!r}), np.array({[p[1] for p in _TINY_MU]!r})\n"
        "print(repr(bayes.log10_bayes_eclipse(n, mu).tolist()))\n"
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    except subprocess.TimeoutExpired:
        pytest.fail("log10_bayes_eclipse did not return for tiny mu")
    got = eval(out.stdout.strip().splitlines()[-1])
    # B_eclipse = mu/(n+1) (1 + mu/(n+2) + ...) -> log10(mu/(n+1)) for tiny mu
    for (n, mu), g in zip(_TINY_MU, got):
        assert g == pytest.approx(math.log10(mu) - math.log10(n + 1.0), abs=1e-12), (n, mu)
    assert got[1] == pytest.approx(-308.0, abs=1e-12)
    assert got[2] == pytest.approx(-307.30103, abs=1e-5)


def test_huge_counts_end():
    # n beyond ~3e12 hits the term cap: finite, close to n/(n - mu) for mu just below n
    got = float(bayes.log10_bayes_eclipse(1e20, 1e20 - 1e11))
    assert math.isfinite(got) and got == pytest.approx(9.0, abs=1e-3)
