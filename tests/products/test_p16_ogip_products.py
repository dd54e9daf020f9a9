"""OGIP spectra and images (audit p16): regrouping a grouped spectrum, the
read_spectrum -> write_spectrum round trip of keywords, FILTER in PHA headers,
image EXPOSURE as the spectrum's live time, MJDREF errors naming the file."""
from __future__ import annotations

import numpy as np
import xarray as xr

from xcube.products import group_min_counts, group_spectrum

# --------------------------------------------------------------------------- regrouping


def _spec(counts, quality=None):
    ds = xr.Dataset({"counts": ("channel", np.asarray(counts, np.int64))},
                    coords={"channel": np.arange(len(counts))}, attrs={"exposure": 100.0, "backscal": 1.0})
    if quality is not None:
        ds["quality"] = ("channel", np.asarray(quality, np.int16))
    return ds


def test_regrouping_resets_the_old_groupings_quality_2_but_keeps_bad_channels():
    rng = np.random.default_rng(3)
    counts = rng.poisson(np.r_[np.full(60, 6.0), np.full(60, 0.3)])
    bad = np.zeros(counts.size, np.int16)
    bad[[0, 1, 70]] = 1
    bad[-1] = 5
    first = group_spectrum(_spec(counts, bad), 20)
    assert (first["quality"].values == 2).sum() > 0  # the min-20 grouping leaves a short, dubious tail
    again = group_spectrum(first, 5)
    fresh_g, fresh_q = group_min_counts(counts, 5, quality=bad)
    np.testing.assert_array_equal(again["quality"].values, fresh_q)  # as grouping the counts afresh
    np.testing.assert_array_equal(again["grouping"].values, fresh_g)
    assert again["quality"].values[[0, 1, 70, counts.size - 1]].tolist() == [1, 1, 1, 5]  # bad stays bad
