"""Sweep p26: binning defects found count by count against numpy."""
from __future__ import annotations

import numpy as np

from xcube.binning.axes import rule_steps, time_axis


def test_a_span_of_whole_bins_gets_no_bin_starting_at_its_end():
    """``ceil`` of a quotient rounded a hair above a whole number (707.0000005)
    added a bin starting at the last GTI stop: no good time, a NaN-rate row."""
    rng = np.random.default_rng(9)
    bad = []
    for _ in range(2000):
        lo = float(np.round(rng.uniform(1e8, 9e8), 1))
        w = float(rng.choice([0.1, 0.3, 0.7, 1.1, 2.6, 73.4e-3]))
        nb = int(rng.integers(1, 3000))
        hi = lo + nb * w
        ax = time_axis(([lo], [hi]), w)
        last = float(rule_steps(ax.origin, ax.width, [ax.size - 1])[0])
        if not (last < hi <= float(ax.edges[-1])) or ax.index_of(np.array([np.nextafter(hi, -np.inf)]))[0] < 0:
            bad.append((lo, w, nb, ax.size))
    assert not bad, bad[:5]
    # the case of the report: 707 bins of 0.1 s, the last one fully good
    lo = 660664763.8
    ax = time_axis(([lo], [lo + 707 * 0.1]), 0.1)
    assert ax.size == 707
