"""The false-alarm table and the calibration examples of docs/bayes.md are the
numbers the code gives (per-voxel 3-sigma rates and their Gaussian levels)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from xcube import bayes
from xcube.transients.significance import sigma_equivalent

DOC = Path(__file__).resolve().parents[2] / "docs" / "bayes.md"


def _table_rows():
    text = DOC.read_text()
    part = text[text.index("`false_alarm_probability(mu, 3)` gives:"):]
    rows = []
    for line in part.splitlines()[2:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if re.match(r"^[0-9.e]+$", cells[0]):
            rows.append(cells)
    return rows


def test_false_alarm_table_matches_the_code():
    rows = _table_rows()
    assert len(rows) >= 7
    for mu_s, nmin_s, pp_s, gp_s, nmax_s, pe_s, ge_s in rows:
        mu = float(mu_s)
        pp, pe = bayes.false_alarm_probability(np.array([mu]), 3.0)
        assert int(nmin_s) == int(bayes.n_peak_min(np.array([mu]), 3.0)[0])
        assert float(pp_s) == pytest.approx(float(pp[0]), rel=0.05)
        assert float(gp_s) == pytest.approx(stats.norm.isf(pp[0]), abs=0.006)
        if nmax_s == "-":
            assert pe[0] == 0.0 and int(bayes.n_eclipse_max(np.array([mu]), 3.0)[0]) < 0
        else:
            assert int(nmax_s) == int(bayes.n_eclipse_max(np.array([mu]), 3.0)[0])
            assert float(pe_s) == pytest.approx(float(pe[0]), rel=0.05)
            assert float(ge_s) == pytest.approx(stats.norm.isf(pe[0]), abs=0.006)
    text = DOC.read_text()
    assert "about 5e-6 per voxel" not in text  # the old, wrong summary


def test_calibration_examples():
    assert sigma_equivalent(float(bayes.log10_bayes_peak(1139, 1000.0)), "peak") == pytest.approx(2.98, abs=0.006)
    assert stats.norm.isf(stats.poisson.sf(1138, 1000.0)) == pytest.approx(4.29, abs=0.006)
    assert sigma_equivalent(float(bayes.log10_bayes_peak(9, 1.0)), "peak") == pytest.approx(3.0, abs=0.01)
    assert stats.norm.isf(stats.poisson.sf(8, 1.0)) == pytest.approx(4.73, abs=0.006)
    assert sigma_equivalent(float(bayes.log10_bayes_eclipse(870, 1000.0)), "eclipse") == pytest.approx(2.98, abs=0.006)
    assert stats.norm.isf(stats.poisson.cdf(870, 1000.0)) == pytest.approx(4.18, abs=0.006)
    text = DOC.read_text()
    for s in ("reports 2.98 sigma, while the p-value is 4.29 sigma", "reports 3.0 sigma, while the p-value is 4.73",
              "reports 2.98 sigma, while P(N <= 870) is 4.18"):
        assert s in text
