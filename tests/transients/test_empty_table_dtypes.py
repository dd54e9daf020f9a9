"""A run without detections writes its table with the dtypes of a run with
detections (int64 counts of frames, text ids, bool flags), so that the run
tables of one search read back together."""
from __future__ import annotations

import pyarrow.parquet as pq

import xcube
from xcube import simulate
from xcube.transients.detect import empty_table
from xcube.transients.result import SearchResult, SearchResults


def test_empty_table_has_the_dtypes_of_a_full_one(tmp_path):
    ev, _ = simulate.event_list("xmm-pn", duration=6_000.0, sources=0, soft_protons=0, seed=4)
    t0 = float(ev.gti_start.values[0])
    ev, _ = simulate.inject_flare(ev, t_peak=t0 + 3_000.0, amplitude=2.0, width=20.0, x=28_200.0, y=24_200.0, seed=2)
    full = xcube.search_transients(ev, time_bin=50.0)
    assert len(full.detections)
    empty = empty_table()
    assert list(empty.columns) == [c for c in full.detections.columns if c in empty.columns]
    wrong = {c: (str(empty[c].dtype), str(full.detections[c].dtype)) for c in empty.columns
             if empty[c].dtype != full.detections[c].dtype}
    assert not wrong
    none = SearchResult(run_id="r_nothing", detections=empty.assign(**{c: [] for c in full.detections.columns
                                                                          if c not in empty}),
                        lightcurves=None, summary={"reason": ""}, params={"size_arcsec": 20.0})
    out = SearchResults([full, none]).write(tmp_path / "srch", figures=False)
    both = pq.read_table([out / full.run_id / "detections.parquet", out / "r_nothing" / "detections.parquet"])
    assert both.num_rows == len(full.detections)
