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
    """A field inside the grid: footprints lie on cells with counts, as a
    detection's always do; the ones one or two cells from where the counts
    stop are at the edge, three cells in is not, and an empty cell enclosed
    by the field is no edge."""
    img = np.zeros((16, 16), int)
    img[2:14, 2:12] = 3  # the field: rows 2-13, columns 2-11; beyond it no count
    img[7, 6] = 0  # an empty cell inside the field (e.g. a dead spot): not outside
    ccd = np.zeros((16, 16), np.uint32)
    ccd[:, :7] = 1 << 1
    ccd[:, 7:] = 1 << 2
    ccd[:, 7] |= 1 << 1  # column 7 holds events of CCDs 1 and 2: it spans the gap
    gaps = gap_cells([ccd, None])
    assert gaps[:, 7].all() and not gaps[:, [6, 8]].any()
    outside, g = edge_cells(img, gaps)
    assert outside[:, 12:].all() and outside[:2].all() and not outside[2:14, 2:12].any()
    feet = [_foot(img.shape, [(8, 5)]),    # three cells in from the left edge (columns 2, 3, 4 between)
            _foot(img.shape, [(4, 7)]),    # on the gap
            _foot(img.shape, [(8, 11)]),   # the last column with counts
            _foot(img.shape, [(8, 10)]),   # two cells from where the counts stop
            _foot(img.shape, [(8, 9)]),    # three cells
            _foot(img.shape, [(7, 5), (8, 5)]),  # next to the enclosed empty cell
            _foot(img.shape, [(2, 2)]),    # the field's corner cell
            _foot(img.shape, [(13, 5), (12, 5)])]  # the bottom row
    fl = run_flags(["peak"] * len(feet), feet, [0.0] * len(feet), [9] * len(feet),
                   np.zeros((len(feet), 5), bool), time_bin=50.0, outside=outside, gaps=g)
    assert list(fl["flag_edge"]) == [False, True, True, True, False, False, True, True]
    assert all(img[f].all() for f in feet)  # every footprint cell holds counts
    assert gap_cells(None) is None


def test_gap_emptied_by_the_hygiene_border_is_a_gap():
    """pn with the default hygiene: the 3-pixel border strip of each CCD leaves an empty cell between them,
    so that no cell holds events of two CCDs; the cells touching that empty cell are on the gap, the next
    ones in are not, and an empty cell touching one CCD only (the field's edge) makes no gap."""
    ccd = np.zeros((12, 12), np.uint32)
    ccd[:, :5] = 1 << 3
    ccd[:, 6:] = 1 << 4  # column 5: no event (the two border strips)
    ccd[0, :] = 0  # the field's edge: empty cells touching both CCDs only through column 5's row 0
    gaps = gap_cells([ccd])
    assert gaps[1:, [4, 6]].all() and not gaps[1:, [3, 7]].any() and not gaps[:, 5].any()
    assert not gaps[1:, :3].any() and not gaps[1:, 8:].any()
    # the boundary between cells, no cell holding both CCDs: the cells on either side are on the gap
    touch = np.zeros((6, 6), np.uint32)
    touch[:, :3], touch[:, 3:] = 1 << 1, 1 << 2
    touch[4, 2] = 1 << 2  # a cell of CCD 2 reaching across
    g = gap_cells([touch])
    assert g[:, [2, 3]].all() and not g[:, [0, 5]].any()
    # a camera of one CCD has no gap, whatever its empty cells
    one = np.where(ccd > 0, np.uint32(1 << 3), np.uint32(0))
    assert not gap_cells([one]).any()


def test_edge_at_the_border_of_the_grid():
    """The grid covers the events' extent: a field that fills it ends at the
    grid's border, beyond which there is no count."""
    img = np.full((10, 10), 4)
    outside, _ = edge_cells(img)
    assert not outside.any()
    feet = [_foot(img.shape, [(0, 5)]), _foot(img.shape, [(5, 1)]), _foot(img.shape, [(5, 5)])]
    fl = run_flags(["peak"] * 3, feet, [0.0] * 3, [9] * 3, np.zeros((3, 5), bool), time_bin=50.0,
                   outside=outside, gaps=None)
    assert list(fl["flag_edge"]) == [True, True, False]


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


def test_closing_size_hull_equals_a_delaunay_point_location():
    """The field's convex hull (for the empty fraction of flag_edge's closing) holds the same cells as
    scipy's Delaunay point location, on and off its edges (the hull's facet equations are 200x faster)."""
    from scipy.spatial import Delaunay

    from xcube.transients.flags import _closing_size

    def reference(has):
        pts = np.argwhere(has)
        grid = np.argwhere(np.ones(has.shape, bool))
        inside = Delaunay(pts).find_simplex(grid) >= 0
        n, n_empty = int(inside.sum()), int((~has.ravel()[inside]).sum())
        if n_empty == 0:
            return 1
        size = int(np.ceil(np.sqrt(np.log(100.0 * n) / max(-np.log(n_empty / n), 1e-9))))
        return min(size | 1, 2 * max(has.shape) + 1)

    rng = np.random.default_rng(3)
    sizes = []
    for k in range(60):
        shape = tuple(int(v) for v in rng.integers(6, 70, 2))
        has = rng.random(shape) < [0.02, 0.2, 0.7, 0.95][k % 4]
        if k % 3 == 0:  # a round field: cells on the hull's edges
            yy, xx = np.indices(shape)
            has &= (yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2 < (min(shape) / 2.2) ** 2
        if has.sum() < 3 or np.linalg.matrix_rank(np.argwhere(has) - np.argwhere(has)[0]) < 2:
            continue
        sizes.append(_closing_size(has))
        assert sizes[-1] == reference(has), (k, shape)
    assert len(set(sizes)) > 2  # sparse and filled fields both met
