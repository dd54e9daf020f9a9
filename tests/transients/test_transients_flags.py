"""Quality flags follow their rules on hand-made cases."""
from __future__ import annotations

import numpy as np

from xcube.transients import bayes
from xcube.transients.flags import CROWDED_RUN, RUN_FLAGS, crowded, edge_cells, gap_cells, run_flags


def _foot(shape, cells):
    f = np.zeros(shape, bool)
    for iy, ix in cells:
        f[iy, ix] = True
    return f


def test_low_counts_crowded_and_5sigma():
    shape = (10, 10)
    kinds = ["peak", "peak", "eclipse"]
    feet = [_foot(shape, [(5, 5)])] * 3
    t5 = bayes.threshold(5.0)
    best = [t5.peak + 0.1, t5.peak - 0.1, t5.eclipse + 1.0]
    flagged = np.zeros((3, 20), bool)
    fl = run_flags(kinds, feet, best, n_max=[4, 5, 100], flagged=flagged, time_bin=5.0)
    assert set(fl) == set(RUN_FLAGS)
    assert list(fl["flag_low_counts"]) == [True, False, False]  # fewer than 5 counts at the peak, 5 s frames
    assert list(fl["flag_5sigma"]) == [True, False, True]
    assert not fl["flag_crowded_run"].any() and not fl["flag_edge"].any() and not fl["flag_bad_frame"].any()
    fl = run_flags(kinds, feet, best, n_max=[4, 5, 100], flagged=flagged, time_bin=50.0)
    assert not fl["flag_low_counts"].any()  # the rule is for short frames only
    k = CROWDED_RUN + 1
    fl = run_flags(["peak"] * k, [feet[0]] * k, [0.0] * k, [9] * k, np.zeros((k, 20), bool), time_bin=50.0)
    assert fl["flag_crowded_run"].all()
    assert list(crowded(["a"] * (CROWDED_RUN + 1) + ["b"] * 2)) == [True] * (CROWDED_RUN + 1) + [False] * 2


def test_edge_and_gap_cells():
    img = np.zeros((12, 12), int)
    img[:, :8] = 3  # the field covers columns 0-7
    ccd = np.zeros((12, 12), np.uint32)
    ccd[:, :4] = 1 << 1
    ccd[:, 4:8] = 1 << 2
    ccd[:, 4] |= 1 << 1  # column 4 holds events of CCDs 1 and 2: it spans the gap
    gaps = gap_cells([ccd, None])
    assert gaps[:, 4].all() and not gaps[:, [3, 5]].any()
    outside, g = edge_cells(img, gaps)
    assert outside[:, 9:].all() and not outside[:, :9].any()  # column 8 has counts within one cell
    feet = [_foot(img.shape, [(6, 1)]), _foot(img.shape, [(6, 4)]), _foot(img.shape, [(6, 8)]),
            _foot(img.shape, [(6, 6)])]
    fl = run_flags(["peak"] * 4, feet, [0.0] * 4, [9] * 4, np.zeros((4, 5), bool), time_bin=50.0,
                   outside=outside, gaps=g)
    # inside the field; on the gap; next to the last column with counts; two cells from it
    assert list(fl["flag_edge"]) == [False, True, True, False]
    assert gap_cells(None) is None


def test_touching_a_bad_frame():
    flagged = np.zeros((3, 10), bool)
    flagged[0, 4] = True  # frame 5 is bad: touches
    flagged[1, 2] = True  # frames 1 and 3 are good: does not touch
    flagged[2, [7, 8]] = True  # frame 9 is bad
    bad = np.zeros(10, bool)
    bad[[5, 9]] = True
    foot = [np.ones((2, 2), bool)] * 3
    fl = run_flags(["peak"] * 3, foot, [0.0] * 3, [9] * 3, flagged, time_bin=50.0, bad_frame=bad)
    assert list(fl["flag_bad_frame"]) == [True, False, True]
