"""Gaussian-equivalent significance at the end of the calibrated scale: a factor
beyond the largest calibrated threshold is inf, on both sides; below it the
level is finite and the bisection reaches up to s = 1000."""
from __future__ import annotations

import numpy as np
import pytest

from xcube import bayes
from xcube.transients.significance import SIGMA_MAX, sigma_equivalent, sigma_equivalents

B_ECL_MAX = float(bayes.log10_bayes_eclipse(0.0, 1000.0))  # 434.29: 0 counts where 1000 expected


def test_deep_eclipses_beyond_the_scale_are_inf():
    n = np.array([0.0, 0.0, 0.0, 100.0])
    mu = np.array([1500.0, 2000.0, 5000.0, 5000.0])  # log10 B_eclipse 651 to 2171
    b = bayes.log10_bayes_eclipse(n, mu)
    assert np.all(b > B_ECL_MAX)
    assert np.all(np.isinf(sigma_equivalents(b, "eclipse")))
    assert sigma_equivalent(np.nextafter(B_ECL_MAX, np.inf), "eclipse") == np.inf


def test_eclipse_scale_end_is_finite_and_monotone():
    assert B_ECL_MAX == pytest.approx(434.294, abs=1e-3)
    s = sigma_equivalent(B_ECL_MAX, "eclipse")  # the deepest calibrated eclipse itself
    assert np.isfinite(s) and 31.0 < s <= np.sqrt(1000.0) + 1e-6
    b = np.linspace(100.0, 2000.0, 200)
    sig = sigma_equivalents(b, "eclipse")
    fin = sig[np.isfinite(sig)]
    assert np.all(np.diff(fin) >= 0) and fin[-1] <= np.sqrt(1000.0) + 1e-6
    assert np.all(np.isfinite(sig[b <= B_ECL_MAX])) and np.all(np.isinf(sig[b > B_ECL_MAX]))


@pytest.mark.parametrize("s", [600.0, 900.0, 999.0])
def test_peak_scale_reaches_1000(s):
    # before: every level above 512 came out inf
    got = sigma_equivalent(bayes.threshold(s).peak, "peak")
    assert got == pytest.approx(s, abs=1e-3) and got <= s + 1e-6


def test_peak_beyond_1000_is_inf():
    top = bayes.threshold(SIGMA_MAX).peak
    assert np.isfinite(sigma_equivalent(top, "peak"))
    assert sigma_equivalent(np.nextafter(top, np.inf), "peak") == np.inf
    assert sigma_equivalent(2.0 * top, "peak") == np.inf


def test_special_values_unchanged():
    for kind in ("peak", "eclipse"):
        out = sigma_equivalents(np.array([np.inf, -np.inf, np.nan, -5.0]), kind)
        assert out[0] == np.inf and out[1] == 0.0 and np.isnan(out[2]) and out[3] == 0.0
