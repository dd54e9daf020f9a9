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
- ``flag_edge``: the detection is near the field edge or on a CCD gap: its
  footprint grown by one cell meets a cell with no count within one cell
  (outside the field: the detection is at most two cells from where the
  counts stop), or the footprint holds a cell with events from two CCDs of
  one camera (the cell spans the gap between them);
- ``flag_bad_frame``: a frame next to one of its flagged frames is a bad
  frame (the detection touches a frame the search dropped).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import bayes

__all__ = ["RUN_FLAGS", "LOW_COUNTS", "LOW_COUNTS_TIME_BIN", "CROWDED_RUN", "edge_cells", "gap_cells",
           "run_flags", "crowded"]

#: flags the search sets (the catalogue adds flag_hot_region and flag_excluded_obs)
RUN_FLAGS = ["flag_low_counts", "flag_crowded_run", "flag_5sigma", "flag_edge", "flag_bad_frame"]
#: fewer counts than this at the peak of a short-frame light curve...
LOW_COUNTS = 5
#: ... in frames of at most this many seconds
LOW_COUNTS_TIME_BIN = 5.0
#: more detections than this in one run
CROWDED_RUN = 20


def gap_cells(ccd_maps) -> np.ndarray | None:
    """(y, x) bool: cells holding events of two or more CCDs of one camera
    (``CompactCube.ccd_map``: per camera a (y, x) bit map); None without maps."""
    maps = [m for m in (ccd_maps or []) if m is not None]
    if not maps:
        return None
    out = np.zeros(maps[0].shape, bool)
    for m in maps:
        v = m.astype(np.uint64)
        out |= (v & (v - np.uint64(1))) != 0  # more than one bit set
    return out


def edge_cells(image, gaps=None) -> tuple[np.ndarray, np.ndarray]:
    """``(outside, gaps)``: (y, x) bool cells with no count within one cell
    (outside the field) and the cells spanning a CCD gap (:func:`gap_cells`,
    all False when None)."""
    img = np.asarray(image)
    outside = ndimage.maximum_filter((img > 0).astype(np.uint8), size=3, mode="constant") == 0
    return outside, (np.zeros(img.shape, bool) if gaps is None else np.asarray(gaps, bool))


def crowded(run_ids) -> np.ndarray:
    """``flag_crowded_run`` of a table's ``run_id`` column: more than
    :data:`CROWDED_RUN` rows share the run id."""
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
    ``time_bin`` [s], ``bad_frame`` (frames,) bool, ``outside``/``gaps``
    from :func:`edge_cells`. Eager, small."""
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
        for i in range(k):
            f = np.asarray(footprints[i], bool)
            near_out = ndimage.binary_dilation(f, np.ones((3, 3), bool)) & outside
            out["flag_edge"][i] = bool(near_out.any() or (f & gaps).any())
    if bad_frame is not None:
        bad = np.asarray(bad_frame, bool)
        fl = np.asarray(flagged, bool)
        near = np.zeros_like(fl)
        near[:, 1:] |= fl[:, :-1]
        near[:, :-1] |= fl[:, 1:]
        out["flag_bad_frame"] = (near & bad[None]).any(axis=1)
    return out
