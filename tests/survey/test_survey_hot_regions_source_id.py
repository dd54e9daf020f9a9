"""hot_regions needs the sky clustering's source ids to count sky sources:
without them one source seen in several observations at the same detector
place (same roll) would be a hot region."""
from __future__ import annotations

import pandas as pd
import pytest

from xcube.survey.vetting import flag_catalogue, hot_regions


def _one_source_three_times():
    return pd.DataFrame({"obsid": ["A", "B", "C"], "source_id": [5, 5, 5],
                         "det_u": [100.0, 102.0, 98.0], "det_v": [0.0, 1.0, -1.0]})


def test_without_source_id_hot_regions_refuse():
    det = _one_source_three_times()
    assert len(hot_regions(det)[0]) == 0  # one sky source: not a hot region
    with pytest.raises(KeyError, match="source_id.*cluster"):
        hot_regions(det.drop(columns="source_id"))
    with pytest.raises(KeyError, match="source_id"):
        flag_catalogue(det.drop(columns="source_id"))
    # counting observations only needs no source ids
    regions, label = hot_regions(det.drop(columns="source_id"), min_obs=3, min_sources=1)
    assert len(regions) == 1 and list(label) == [0, 0, 0] and regions["n_sources"].iloc[0] == 1
    # an empty table, or one without detector offsets, has no region either way
    assert len(hot_regions(det.drop(columns=["source_id", "det_u"]).iloc[:0])[0]) == 0
