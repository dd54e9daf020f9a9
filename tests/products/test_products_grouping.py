"""Spectral grouping invariants and counting errors."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from xcube.products.errors import count_error
from xcube.products.grouping import group_min_counts, group_spectrum, grouped_counts


def _groups(grouping):
    starts = list(np.flatnonzero(grouping == 1)) + [grouping.size]
    return [(a, b) for a, b in zip(starts[:-1], starts[1:])]


def test_simple_grouping():
    grouping, quality = group_min_counts([0, 1, 2, 5, 0, 0, 3, 1], 3)
    np.testing.assert_array_equal(grouping, [1, -1, -1, 1, 1, -1, -1, 1])
    np.testing.assert_array_equal(quality, [0, 0, 0, 0, 0, 0, 0, 2])  # trailing group short of 3
    np.testing.assert_array_equal(grouped_counts([0, 1, 2, 5, 0, 0, 3, 1], grouping), [3, 5, 3, 1])


@settings(max_examples=150, deadline=None)
@given(
    counts=st.lists(st.integers(0, 30), min_size=1, max_size=200),
    min_counts=st.integers(1, 40),
    bad=st.lists(st.integers(0, 199), max_size=10),
)
def test_grouping_invariants(counts, min_counts, bad):
    counts = np.array(counts)
    quality_in = np.zeros(counts.size, np.int16)
    quality_in[[b for b in bad if b < counts.size]] = 1
    grouping, quality = group_min_counts(counts, min_counts, quality=quality_in)
    assert grouping[0] == 1 and set(np.unique(grouping)) <= {1, -1}
    assert grouped_counts(counts, grouping).sum() == counts.sum()  # grouping never changes counts
    for a, b in _groups(grouping):
        q = quality[a:b]
        assert len(set(q)) == 1  # one quality per group
        if quality_in[a] > 0:
            assert b - a == 1 and q[0] == quality_in[a]  # bad channels stay alone with their flag
        elif q[0] == 0:
            total = counts[a:b].sum()
            assert total >= min_counts
            assert counts[a:b - 1].sum() < min_counts  # minimal: stops at the first channel reaching N
        else:
            assert q[0] == 2 and counts[a:b].sum() < min_counts
            # a short group only where the spectrum ends or a bad channel follows
            assert b == counts.size or quality_in[b] > 0


def test_grouping_bad_input():
    with pytest.raises(ValueError, match="positive"):
        group_min_counts([1, 2], 0)
    with pytest.raises(ValueError, match="non-negative"):
        group_min_counts([1, -2], 3)


def test_group_spectrum_dataset():
    spec = xr.Dataset({"counts": ("channel", np.arange(10))}, coords={"channel": np.arange(10)})
    out = group_spectrum(spec, 10)
    assert out.attrs["group_min"] == 10
    np.testing.assert_array_equal(grouped_counts(out.counts.values, out.grouping.values), [10, 11, 15, 9])
    np.testing.assert_array_equal(out.quality.values, [0] * 9 + [2])
    assert "grouping" not in spec


def test_gehrels_and_poisson_errors():
    n = np.array([0, 1, 4, 100])
    np.testing.assert_allclose(count_error(n, "gehrels"), [1 + np.sqrt(0.75), 1 + np.sqrt(1.75), 1 + np.sqrt(4.75),
                                                           1 + np.sqrt(100.75)])
    np.testing.assert_allclose(count_error(n, "gehrels")[0], 1.8660254037844386)
    np.testing.assert_allclose(count_error(n, "poisson"), [0, 1, 2, 10])
    with pytest.raises(ValueError, match="gehrels"):
        count_error(n, "gauss")
