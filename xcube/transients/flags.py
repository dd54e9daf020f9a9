"""Quality flags of detections: boolean columns ``flag_<rule>``.

A flag marks a detection a vetter may want to drop (or, for
``flag_5sigma``, to keep); the search sets the flags it can decide from one
run, the survey catalogue the ones that need many observations
(:mod:`xcube.survey.vetting`: ``flag_hot_region``, ``flag_excluded_obs``).
Rules (also in ``docs/search.md``):

- ``flag_low_counts``: frames of at most :data:`LOW_COUNTS_TIME_BIN` s and
  fewer than :data:`LOW_COUNTS` counts in the light curve's largest frame
  (EXOD's "fewer than 5 counts in 5 s frames");
- ``flag_crowded_run``: the run has more than :data:`CROWDED_RUN` detections;
- ``flag_5sigma``: the detection's best log10 Bayes factor exceeds the 5 sigma
  threshold of its kind (a *keep* flag: the significant ones);
- ``flag_edge``: the detection is near the field edge or on a CCD gap: a
  footprint cell is at most :data:`EDGE_CELLS` (2) cells (chessboard
  distance: the footprint grown by two cells) from a cell outside the field,
  or the footprint holds a cell on a CCD gap of one camera (:func:`gap_cells`:
  events from two CCDs, or next to a cell of another CCD or to an empty cell
  between two CCDs). Outside the field (:func:`edge_cells`)
  are the cells with no count that are connected (through cells with no
  count, 4-connected) to the grid's border, and everything beyond the grid
  (which covers the events' extent); an empty cell enclosed by the field is
  not, and in a sparse field (short frames of few counts, a narrow band) the
  chance gaps between counted cells are closed first;
- ``flag_bad_frame``: a frame next to one of its flagged frames is a frame
  the search dropped: a bad frame, or with ``gti_only=True`` a bad-time-
  interval frame (the search passes ``bad_frame`` = every dropped frame).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import bayes

__all__ = ["RUN_FLAGS", "LOW_COUNTS", "LOW_COUNTS_TIME_BIN", "CROWDED_RUN", "EDGE_CELLS", "edge_cells", "gap_cells",
           "run_flags", "crowded"]

#: flags the search sets (the catalogue adds flag_hot_region and flag_excluded_obs)
RUN_FLAGS = ["flag_low_counts", "flag_crowded_run", "flag_5sigma", "flag_edge", "flag_bad_frame"]
#: fewer counts than this at the peak of a short-frame light curve...
LOW_COUNTS = 5
#: ... in frames of at most this many seconds
LOW_COUNTS_TIME_BIN = 5.0
#: more detections than this in one run
CROWDED_RUN = 20
#: flag_edge: a footprint cell at most this many cells from a cell outside the field
EDGE_CELLS = 2


def gap_cells(ccd_maps) -> np.ndarray | None:
    """(y, x) bool: cells on a CCD gap of one camera (``CompactCube.ccd_map``:
    per camera a (y, x) bit map of the CCDs with events in each cell); None
    without maps. A cell is on a gap when it holds events of two CCDs, or
    it holds events of one CCD and touches (8 neighbours) a cell holding
    another CCD's events only, or an empty cell that touches one: the cells
    next to a CCD boundary, whether a cell straddling it holds both CCDs'
    events (MOS), the boundary falls between cells, or the strip the
    detector hygiene empties along each CCD border (pn: 3 raw pixels, about
    12", each side) leaves an empty cell between the CCDs. Eager, numpy."""
    maps = [np.asarray(m).astype(np.uint64) for m in (ccd_maps or []) if m is not None]
    if not maps:
        return None
    ring = np.ones((3, 3), bool)
    out = np.zeros(maps[0].shape, bool)
    for v in maps:
        out |= (v & (v - np.uint64(1))) != 0  # more than one bit set
        empty = v == 0
        for b in range(64):
            bit = np.uint64(1) << np.uint64(b)
            own = (v & bit) != 0
            if not own.any():
                continue
            other = (v & ~bit) != 0  # cells holding another CCD
            if not other.any():
                continue
            holes = empty & ndimage.binary_dilation(other, ring)  # empty cells touching another CCD
            out |= own & ndimage.binary_dilation((other & ~own) | holes, ring)
    return out


def _closing_size(has) -> int:
    """Odd width of the square that closes the gaps between the counted
    cells ``has`` of a sparse field: the empty fraction ``p0`` of the cells
    inside the counted cells' convex hull gives the counts per cell
    ``rho = -ln p0``, and a square of ``s x s`` cells inside the field is
    empty by chance with probability ``exp(-rho s^2)``; ``s`` makes that
    below 1 % over the hull's N cells (``rho s^2 >= ln(100 N)``). 1 (no
    closing) for a field without empty cells or fewer than 3 counted cells."""
    from scipy.spatial import ConvexHull, QhullError

    from ..regions import in_hull

    pts = np.argwhere(has)
    if len(pts) < 3:
        return 1
    try:
        hull = ConvexHull(pts)
    except QhullError:  # collinear cells
        return 1
    rows, cols = np.indices(has.shape).reshape(2, -1)
    inside = in_hull(hull.equations, rows, cols, tol=1e-9)  # (cells on an edge are in, as the hull's own)
    n = int(inside.sum())
    n_empty = int((~has.ravel()[inside]).sum())
    if n_empty == 0:
        return 1
    rho = -np.log(n_empty / n)
    size = int(np.ceil(np.sqrt(np.log(100.0 * n) / max(rho, 1e-9))))
    return min(size | 1, 2 * max(has.shape) + 1)


def edge_cells(image, gaps=None) -> tuple[np.ndarray, np.ndarray]:
    """``(outside, gaps)``: (y, x) bool cells outside the field and the
    cells spanning a CCD gap (:func:`gap_cells`, all False when None).

    The field is the cells of ``image`` (summed counts) with counts, its gaps
    closed (a morphological closing by a square of :func:`_closing_size`
    cells: 1, none, for a well-filled field; wider for a sparse one, whose
    empty cells are chance); outside are the cells not in it that are
    connected to the grid's border through such cells (4-connected: an
    empty region enclosed by the field is inside it). :func:`run_flags`
    also counts everything beyond the grid as outside. Eager, small."""
    img = np.asarray(image)
    has = img > 0
    size = _closing_size(has)
    field = has
    if size > 1:
        pad = np.pad(has, size, constant_values=False)
        field = ndimage.binary_closing(pad, np.ones((size, size), bool))[size:-size, size:-size] | has
    empty = np.pad(~field, 1, constant_values=True)  # the ring beyond the grid: one empty region
    labels, _ = ndimage.label(empty)
    outside = (labels == labels[0, 0])[1:-1, 1:-1]
    return outside, (np.zeros(img.shape, bool) if gaps is None else np.asarray(gaps, bool))


def _near_outside(outside) -> np.ndarray:
    """(y, x) bool: cells at most :data:`EDGE_CELLS` cells (chessboard) from
    an ``outside`` cell or from beyond the grid."""
    o = np.pad(np.asarray(outside, bool), 1, constant_values=True)
    dist = ndimage.distance_transform_cdt(~o, metric="chessboard")[1:-1, 1:-1]
    return dist <= EDGE_CELLS


def crowded(run_ids) -> np.ndarray:
    """``flag_crowded_run`` of a table's ``run_id`` column: more than
    :data:`CROWDED_RUN` rows share the run id. Eager, numpy: a bool array of
    the length of ``run_ids``."""
    s = np.asarray(run_ids, dtype=object)
    if s.size == 0:
        return np.zeros(0, bool)
    _, inv, cnt = np.unique(s.astype(str), return_inverse=True, return_counts=True)
    return cnt[inv.ravel()] > CROWDED_RUN


def run_flags(kinds, footprints, best_log10b, n_max, flagged, *, time_bin: float, bad_frame=None,
              outside=None, gaps=None) -> dict:
    """The search's flags (module doc) of k detections, as a dict of bool (k,)
    arrays: ``kinds`` "peak"/"eclipse", ``footprints`` (k, y, x) bool,
    ``best_log10b`` their best log10 Bayes factors, ``n_max`` the largest
    count of each light curve, ``flagged`` (k, frames) bool flagged frames,
    ``time_bin`` [s], ``bad_frame`` (frames,) bool: the frames the search
    dropped, ``outside``/``gaps`` from :func:`edge_cells`. Eager, small."""
    k = len(kinds)
    t5 = bayes.threshold(5.0)
    thr = np.array([t5.peak if kd == "peak" else t5.eclipse for kd in kinds])
    out = {
        "flag_low_counts": (time_bin <= LOW_COUNTS_TIME_BIN) & (np.asarray(n_max, float) < LOW_COUNTS),
        "flag_crowded_run": np.full(k, k > CROWDED_RUN),
        "flag_5sigma": np.asarray(best_log10b, float) > thr,
        "flag_edge": np.zeros(k, bool),
        "flag_bad_frame": np.zeros(k, bool),
    }
    if outside is not None:
        near = _near_outside(outside)
        gaps = np.zeros(near.shape, bool) if gaps is None else np.asarray(gaps, bool)
        for i in range(k):
            f = np.asarray(footprints[i], bool)
            out["flag_edge"][i] = bool((f & near).any() or (f & gaps).any())
    if bad_frame is not None:
        bad = np.asarray(bad_frame, bool)
        fl = np.asarray(flagged, bool)
        near = np.zeros_like(fl)
        near[:, 1:] |= fl[:, :-1]
        near[:, :-1] |= fl[:, 1:]
        out["flag_bad_frame"] = (near & bad[None]).any(axis=1)
    return out
