"""Bad frames: empty frames and, for EPIC pn, frames with partial CCD exposure.

A frame is one time bin of the cube. For every camera:

* a frame with no events at all is bad (empty);

and for a camera whose profile maps CCDs to quadrants (EPIC pn: CCDs 1-3,
4-6, 7-9, 10-12), with per-frame, per-quadrant counts ``Q[t, q]`` and per-quadrant
medians ``M[t, q]`` (the median of the per-CCD counts of the quadrant's CCDs):

* a frame is bad when ``max_q Q > 10`` and either fewer than all quadrants are
  active (``Q > 0``), or the frame is a BTI frame and the quadrants' median
  rates differ by more than a factor 3 (``max_q M > 3 min_q M``; two zero
  medians never differ). Counts stand for rates: every quadrant sees the same
  frame duration.
* the frame right after a bad frame is bad too (one step, from the frames
  found above), and the last frame never marks the first (EXOD's ``np.roll``
  wraps around; xcube does not).

Only the CCDs the camera's mode reads out count (:func:`readout_ccds`, from
the events' SUBMODE): pn Full Frame, Extended Full Frame and Large Window
read all 12 CCDs (Large Window half of each), Small Window reads a window of
CCD 4 alone, so that its quadrant is the only one and the quadrant rule
reduces to empty frames (all four quadrants can never be active there).

MOS (no quadrant map): only empty frames are bad (its partial windows read
part of the central CCD while the outer CCDs stay in full frame; no rule
counts CCDs).

Every camera with per-CCD GTIs (:func:`ccd_live_fraction`): no frame is set
aside, but the model expects a constant source on a CCD at the CCD's own
live fraction of the frame's exposure (MOS CCDs end their GTIs seconds
apart, and a CCD can be off while the others run): without it, a bright
source on a CCD switched off for part of a frame is expected at its full
rate there and shows as a false eclipse.

With several event lists
(cameras) the empty rule applies to their merged counts (what the search's
cube holds), and the pn quadrant rule to each pn camera; a frame is bad when
either says so.
"""
from __future__ import annotations

import fnmatch
import logging

import numpy as np
import xarray as xr

from .. import gti as gtimod
from ..binning.compact import CompactCube
from ..missions import get_profile, profile_of
from ..scheduler import compute

__all__ = [
    "PN_MIN_COUNTS",
    "PN_MAX_RATIO",
    "READOUT_CCDS",
    "readout_ccds",
    "empty_frames",
    "quadrant_counts",
    "partial_ccd_frames",
    "extend_to_next_frame",
    "pn_bad_frames",
    "ccd_frame_counts",
    "bad_frames",
    "bad_frames_from_counts",
    "bad_frames_for",
    "ccd_live_fraction",
    "good_time_range",
]

log = logging.getLogger("xcube.transients")

#: the brightest quadrant must hold more than this many counts
PN_MIN_COUNTS = 10
#: outside XMM EPIC, an empty frame is bad when its Poisson probability at the cameras' mean rate is below this
EMPTY_FRAME_P = 1e-3
#: quadrant median rates "differ" when max > PN_MAX_RATIO x min
PN_MAX_RATIO = 3.0

#: CCDs read out per mode, for profiles with a quadrant map: profile name ->
#: ``(SUBMODE pattern, CCDs or None for all)`` (``fnmatch``, case-insensitive,
#: first match wins). XMM-Newton Users Handbook 3.3.2 and SAS User Guide
#: 4.1.3: pn Full Frame, Extended Full Frame and Large Window read all 12 CCDs
#: (Large Window half of each); Small Window reads part of CCD 4 only.
READOUT_CCDS = {
    "xmm-pn": (("*SMALLWINDOW*", (4,)), ("SMALL*", (4,)), ("*FULLWINDOW*", None), ("FULL*", None),
               ("EXTENDED*", None), ("*LARGEWINDOW*", None), ("LARGE*", None), ("IMAGING", None)),
}


def readout_ccds(profile, submode=None, source: str = "") -> tuple[int, ...]:
    """The CCDs of ``profile``'s quadrant map that the mode ``submode`` (the
    events' SUBMODE, attr ``submode``) reads out, sorted: all of them for a
    full-frame mode (or no SUBMODE, or a profile without a
    :data:`READOUT_CCDS` entry), ``(4,)`` for pn Small Window. ``ValueError``
    naming ``source`` and the mode when the profile lists its modes and
    ``submode`` is none of them (the frame rule would not know which
    quadrants can be active). ``()`` for a profile without a quadrant map.
    Eager (profile look-up; reads no event)."""
    ccds = tuple(sorted(profile.quadrants)) if profile.quadrants else ()
    modes = READOUT_CCDS.get(profile.name)
    mode = str(submode or "").strip()
    if not ccds or not modes or not mode:
        return ccds
    for pattern, read in modes:
        if fnmatch.fnmatchcase(mode.upper(), pattern.upper()):
            return ccds if read is None else tuple(c for c in ccds if c in read)
    raise ValueError(f"{source or '<events>'}: {profile.instrument} mode SUBMODE={mode!r} is unknown to the "
                     "partial-CCD frame rule (it cannot tell which CCDs the mode reads out); known modes: "
                     f"{', '.join(p for p, _ in modes)}")


def empty_frames(counts) -> np.ndarray:
    """True for frames without any count: ``counts`` has time as its first
    axis (any further axes, e.g. CCD or y/x, are summed). numpy or dask in;
    numpy bool (time,) out (eager)."""
    c = counts.data if isinstance(counts, xr.DataArray) else counts
    total = c.reshape(c.shape[0], -1).sum(axis=1)
    return np.asarray(compute(total)[0]) == 0


def quadrant_counts(ccd_counts, quadrant_of_ccd, n_quadrants: int | None = None):
    """Per-quadrant counts and per-quadrant median CCD counts.

    ``ccd_counts`` (time, n_ccd) counts of each CCD per frame; ``quadrant_of_ccd``
    (n_ccd,) quadrant index 0..n_quadrants-1 of each column. Returns
    ``(counts, medians)``, both (time, n_quadrants) float64. Eager, numpy.
    """
    c = np.asarray(ccd_counts, dtype=np.float64)
    q = np.asarray(quadrant_of_ccd, dtype=np.int64)
    if c.ndim != 2 or q.shape != (c.shape[1],):
        raise ValueError(f"ccd_counts must be (time, n_ccd) with one quadrant per CCD column; got "
                         f"{c.shape} and {q.shape}")
    nq = int(q.max()) + 1 if n_quadrants is None else int(n_quadrants)
    counts = np.zeros((c.shape[0], nq))
    medians = np.zeros((c.shape[0], nq))
    for k in range(nq):
        cols = c[:, q == k]
        if cols.shape[1]:
            counts[:, k] = cols.sum(axis=1)
            medians[:, k] = np.median(cols, axis=1)
    return counts, medians


def partial_ccd_frames(counts, medians=None, bti=None, *, min_counts: float = PN_MIN_COUNTS,
                       max_ratio: float = PN_MAX_RATIO) -> np.ndarray:
    """The pn frame rule before the next-frame extension.

    ``counts`` (time, n_quadrants) quadrant counts; ``medians`` the quadrants'
    median CCD counts (default: ``counts``); ``bti`` (time,) bool, BTI frames
    (default: none). A frame is bad when it is empty, or when
    ``max(counts) > min_counts`` and (fewer than ``n_quadrants`` quadrants
    have counts, or it is a BTI frame and ``max(medians) > max_ratio *
    min(medians)``). Returns bool (time,). Eager, numpy.
    """
    q = np.asarray(counts, dtype=np.float64)
    if q.ndim != 2:
        raise ValueError(f"counts must be (time, n_quadrants), got shape {q.shape}")
    m = q if medians is None else np.asarray(medians, dtype=np.float64)
    if m.shape != q.shape:
        raise ValueError(f"medians {m.shape} must match counts {q.shape}")
    nt, nq = q.shape
    if nq < 1:
        raise ValueError("counts must have at least one quadrant column")
    b = np.zeros(nt, bool) if bti is None else np.asarray(bti, dtype=bool)
    if b.shape != (nt,):
        raise ValueError(f"bti has shape {b.shape}, expected ({nt},) (one flag per frame)")
    active = (q > 0).sum(axis=1)
    empty = active == 0
    bright = q.max(axis=1) > min_counts
    partial = active < nq
    uneven = m.max(axis=1) > max_ratio * m.min(axis=1)
    return empty | (bright & (partial | (b & uneven)))


def extend_to_next_frame(bad) -> np.ndarray:
    """``bad`` or'ed with itself shifted one frame later; no wrap-around (the
    last frame does not mark the first). bool (time,), eager."""
    b = np.asarray(bad, dtype=bool)
    out = b.copy()
    out[1:] |= b[:-1]
    return out


def pn_bad_frames(ccd_counts, quadrant_of_ccd, bti=None, *, min_counts: float = PN_MIN_COUNTS,
                  max_ratio: float = PN_MAX_RATIO, n_quadrants: int | None = None) -> np.ndarray:
    """Bad pn frames from per-CCD frame counts (time, n_ccd): the quadrant rule
    of :func:`partial_ccd_frames` plus the frame after each bad frame. Eager,
    numpy: a bool array (time,)."""
    counts, medians = quadrant_counts(ccd_counts, quadrant_of_ccd, n_quadrants)
    bad = partial_ccd_frames(counts, medians, bti, min_counts=min_counts, max_ratio=max_ratio)
    return extend_to_next_frame(bad)


def ccd_frame_counts(events, edges) -> xr.DataArray:
    """Counts per frame and CCD, (time, ccd), lazy (``xcube.bin_events`` with
    a CCD axis on the ``ccdnr`` column; CCD numbers from the profile's
    quadrant map)."""
    from ..binning import Axis, bin_events

    prof = profile_of(events)
    if "ccdnr" not in events.variables:
        raise KeyError(f"{events.attrs.get('source', 'events')}: no 'ccdnr' column, needed for the "
                       f"{prof.instrument} partial-CCD frame rule; read the CCDNR column from the event file")
    ccds = np.array(sorted(prof.quadrants), dtype=np.float64)
    ccd_edges = np.concatenate([ccds - 0.5, [ccds[-1] + 0.5]])
    if np.any(np.diff(ccds) != 1):
        raise ValueError(f"profile {prof.name}: quadrant map must cover consecutive CCD numbers")
    return bin_events(events, time=np.asarray(edges, dtype=np.float64),
                      energy=Axis("ccd", edges=ccd_edges, column="ccdnr"))


def bad_frames(events, edges=None, bti=None) -> np.ndarray:
    """Bad frames of one event list or several (cameras), OR'ed over them.

    ``edges`` (n+1,) frame edges [s]; ``bti`` (n,) bool BTI frames (used by
    the pn rule). Cameras whose profile has a quadrant map (pn) use
    :func:`pn_bad_frames` on their per-CCD counts; frames with no event in
    any of the lists are bad too (for MOS alone, the only rule). Pass the
    events the cube was made from, or the :class:`~xcube.binning.CompactCube`
    itself (its events pass counted the frames per CCD; ``edges`` are then
    its frames). A camera without good time in the frames counts as empty.
    Returns bool (n,). Eager: one histogram pass over ``time`` (and
    ``ccdnr`` for pn) per camera, none for a compact cube.
    """
    if isinstance(events, CompactCube):
        return _compact_bad_frames(events, bti)
    if edges is None:
        raise ValueError("bad_frames: give the frame edges [s] (or pass the compact cube)")
    evs = [events] if isinstance(events, xr.Dataset) else list(events)
    e = np.asarray(edges, dtype=np.float64)
    from ..binning import bin_events

    lazy, exposure = [], []
    for ev in evs:
        prof = profile_of(ev)
        width = len(prof.quadrants) if prof.quadrants else None
        exposure.append(gtimod.exposure_per_bin(e[:-1], e[1:], gtimod.from_dataset(ev)))
        if not exposure[-1].any():
            # no good time in these frames: every frame is empty for this camera
            lazy.append(np.zeros((e.size - 1, width) if width else e.size - 1, dtype=np.int64))
        else:
            lazy.append(ccd_frame_counts(ev, e).data if width else bin_events(ev, time=e).data)
    counts = compute(*lazy)
    return bad_frames_from_counts(counts, [profile_of(ev) for ev in evs], bti,
                                  names=[ev.attrs.get("source", "") for ev in evs],
                                  modes=[ev.attrs.get("submode") for ev in evs], exposure=exposure)


def _compact_bad_frames(cube: CompactCube, bti) -> np.ndarray:
    if cube.ccd_counts is None or not cube.cameras:
        raise ValueError("this compact cube carries no per-frame counts of its cameras; pass the events")
    lo, hi = cube.time.lo, cube.time.hi
    counts, profiles, exposure = [], [], []
    for cam, c in zip(cube.cameras, cube.ccd_counts):
        exposure.append(gtimod.exposure_per_bin(lo, hi, cam["gti"]))
        if not exposure[-1].any():
            c = np.zeros_like(c)
        counts.append(c)
        profiles.append(get_profile(cam["profile"]))
    # the cameras' modes (compact_cubes records them; a one-camera cube also has its camera's attrs)
    modes = [cam.get("submode", cube.attrs.get("submode") if len(cube.cameras) == 1 else None)
             for cam in cube.cameras]
    return bad_frames_from_counts(counts, profiles, bti, names=[cam["source"] for cam in cube.cameras],
                                  modes=modes, exposure=exposure)


def bad_frames_from_counts(counts, profiles, bti=None, names=None, modes=None, exposure=None) -> np.ndarray:
    """The rule of :func:`bad_frames` on ready counts (no pass over events).

    ``counts``: per camera, its frame counts: (n, n_ccd) per CCD in the order
    of ``sorted(profile.quadrants)`` for a camera whose profile has a quadrant
    map (pn), else (n,); zeros for a camera without good time in the frames.
    ``profiles``: the cameras' mission profiles. ``modes``: per camera its
    SUBMODE (default: full frame): the quadrant rule counts only the CCDs the
    mode reads out (:func:`readout_ccds`; pn Small Window: CCD 4, one
    quadrant). ``exposure``: per camera, the good time of each frame (n,)
    [s]. Empty frames (no event of any camera) are bad where every camera's
    profile says so (XMM EPIC, ``empty_frames_bad``, the reference's rule);
    elsewhere only where an empty frame is improbable, ``exp(-mu) <``
    :data:`EMPTY_FRAME_P` with ``mu`` the frame's expected events at each
    camera's mean rate over its good time (a camera that was not
    exposing; sparse data have empty frames that are good time), and every
    empty frame without ``exposure``. Returns bool (n,). Eager, numpy.
    """
    n = np.asarray(counts[0]).shape[0]
    # empty frames: of the merged data (a frame of 5 s may hold no MOS event
    # while the pn has many; the merged cube is what the search tests)
    total = sum(np.asarray(c).reshape(n, -1).sum(axis=1) for c in counts)
    bad = total == 0
    if exposure is not None and not all(p.empty_frames_bad for p in profiles):
        mu = np.zeros(n)
        for c, t in zip(counts, exposure):
            t = np.asarray(t, np.float64)
            if t.sum() > 0:
                mu += np.asarray(c).reshape(n, -1).sum() / t.sum() * t
        bad &= mu > -np.log(EMPTY_FRAME_P)
    for i, (prof, c) in enumerate(zip(profiles, counts)):
        if prof.quadrants:
            name = (names[i] if names else "") or prof.name
            ccds = sorted(prof.quadrants)
            read = readout_ccds(prof, modes[i] if modes else None, name)
            cols = [k for k, ccd in enumerate(ccds) if ccd in read]
            quads = sorted({prof.quadrants[ccds[k]] for k in cols})  # the quadrants the mode reads
            b = pn_bad_frames(np.asarray(c)[:, cols], [quads.index(prof.quadrants[ccds[k]]) for k in cols], bti,
                              n_quadrants=len(quads))
            log.info("%s: %d of %d frames bad", name, int(b.sum()), b.size)
            bad |= b
    return bad


def bad_frames_for(events, cube, bti=None) -> np.ndarray:
    """:func:`bad_frames` on the frames of a cube (its ``time_lo``/``time_hi``
    coordinates [s], which must be contiguous); ``bti`` defaults to the cube's
    ``bti`` coordinate if any. Returns a bool numpy array of shape
    ``(time,)``, one entry per frame of the cube. Eager: as
    :func:`bad_frames` (one histogram pass per camera, none when ``events``
    is a compact cube)."""
    lo = np.asarray(cube["time_lo"].values, dtype=np.float64)
    hi = np.asarray(cube["time_hi"].values, dtype=np.float64)
    if lo.size > 1 and not np.array_equal(lo[1:], hi[:-1]):
        raise ValueError("cube frames are not contiguous (time_lo[1:] != time_hi[:-1]); pass explicit edges "
                         "to bad_frames")
    if bti is None and "bti" in cube.coords:
        bti = np.asarray(cube["bti"].values, dtype=bool)
    return bad_frames(events, np.append(lo, hi[-1]), bti)


def ccd_live_fraction(cube: CompactCube, events, exposure):
    """Per pixel, the fraction of each frame's exposure its CCDs were live (see above), or None when it is 1
    everywhere.

    ``cube``: the search's :class:`~xcube.binning.CompactCube` (its frames,
    common good time and per-camera ``ccd_map`` of the CCDs in each cell);
    ``events``: its cameras' EventLists, in the cube's order (their
    ``ccd_gti_*`` variables; a camera without them, or a CCD without a GTI
    table, counts as live for the whole common good time); ``exposure``:
    (n_frames,) exposure of each frame [s]. A pixel's fraction in a frame is
    the mean, over the cameras with events there weighted by their shares of
    the cell's counts (the cube's ``camera_counts``, in sixteenths), of the
    mean live time of its CCDs (a cell on a gap between two CCDs has both)
    divided by the frame's exposure. Returns ``(group, fraction)``: ``group`` (ny, nx) int32
    the pixel's row of ``fraction`` (n_groups, n_frames) float64 in [0, 1],
    row 0 all ones (pixels without events, CCDs live whenever the frame is).
    Eager, numpy: one GTI overlap per CCD with a GTI table, one pass over the
    (ny, nx) CCD maps."""
    lo, hi = cube.time.lo, cube.time.hi
    expo = np.asarray(exposure, np.float64)
    ones = np.ones(expo.size)
    rows, cols, cams, short = {}, [], [], False  # rows: (camera, CCD bits) -> mean live fraction of those CCDs
    for cam, (ev, bits) in enumerate(zip(events, cube.ccd_map or [])):
        if bits is None:
            continue
        live = {}
        if "ccd_gti_ccd" in ev:
            for c in np.unique(np.asarray(ev["ccd_gti_ccd"].values).astype(np.int64)):
                own = gtimod.intersection(gtimod.ccd_good_time(ev, [c]), cube.gti)
                with np.errstate(invalid="ignore", divide="ignore"):
                    f = np.clip(gtimod.exposure_per_bin(lo, hi, own) / expo, 0.0, 1.0)
                live[int(c) % 32] = np.where(expo > 0, f, 1.0)
                short |= bool((live[int(c) % 32] < 1.0).any())
        flat = np.asarray(bits, np.uint32).ravel()
        for b in np.unique(flat[flat > 0]):
            rows[(cam, int(b))] = np.mean([live.get(c, ones) for c in range(32) if (int(b) >> c) & 1], axis=0)
        cols.append(flat)
        cams.append(cam)
    if not short:
        return None
    # several cameras: each weighs by its share of the cell's counts (a source gives a pn about three times the
    # counts of a MOS), in sixteenths, so that the cells fall into few groups
    counts = cube.camera_counts
    shares = [np.zeros(cube.ny * cube.nx, np.int64)] * len(cams) if counts is None or len(cams) < 2 else \
        _shares([np.asarray(counts[cam], np.float64).ravel() for cam in cams])
    uniq, inverse = np.unique(np.column_stack(cols + shares), axis=0, return_inverse=True)
    fraction = [ones]
    group = np.zeros(uniq.shape[0], np.int32)
    for g, key in enumerate(uniq):
        bits, share = key[:len(cams)], key[len(cams):]
        # a camera with counts here but no CCD seen in its (sampled) map counts as live, not as absent: its
        # share must not fall to a camera whose CCD was off
        parts = [(rows[(cam, int(b))] if b else ones, max(int(w), 0)) for cam, b, w in zip(cams, bits, share)
                 if b or w > 0]
        weights = [w for _, w in parts] if sum(w for _, w in parts) > 0 else [1] * len(parts)
        f = np.average([p for p, _ in parts], axis=0, weights=weights) if parts else ones
        if (f < 1.0).any():
            fraction.append(f)
            group[g] = len(fraction) - 1
    if len(fraction) == 1:
        return None
    log.info("%s: %d CCD groups live for less than the exposure of some frames", cube.attrs.get("source", ""),
             len(fraction) - 1)
    return group[inverse.ravel()].reshape(cube.ny, cube.nx), np.array(fraction)


def _shares(counts) -> list:
    """Each camera's share of every cell's counts, in sixteenths (int64), from
    the cameras' (cells,) counts; all 0 in a cell without counts."""
    total = np.sum(counts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return [np.where(total > 0, np.rint(16.0 * c / total), 0).astype(np.int64) for c in counts]


def good_time_range(t_start, t_stop, gti):
    """The good time inside each interval ``[t_start, t_stop]`` [s]: from its
    first good instant to its last one (``gti`` ``(start, stop)`` [s], the
    run's good time; a pair of numbers is one interval). A detection's frames
    reach past the good time in the last, partial frame and in a frame half
    in a GTI gap; this is the one rule that clips the search's ``t_start``/
    ``t_stop``, its peak frame (``t_peak`` is the centre of the result) and
    the ``duration`` of its burst. An interval without good time inside (or
    an empty ``gti``) is returned unchanged, and so is a NaN bound. ``(lo, hi)``:
    numpy float64 of the inputs' broadcast shape (floats for scalars). Eager."""
    a, b = np.broadcast_arrays(np.asarray(t_start, np.float64), np.asarray(t_stop, np.float64))
    start, stop = gtimod.normalize(*gti, warn=False)
    lo, hi = a.copy(), b.copy()
    if start.size:
        k = np.searchsorted(stop, a, side="right")  # the first GTI ending after t_start
        m = np.searchsorted(start, b, side="left") - 1  # the last GTI starting before t_stop
        inside = (k <= m) & ~np.isnan(b)  # (then start[k] < t_stop and stop[m] > t_start; False for NaN)
        kk, mm = np.minimum(k, start.size - 1), np.maximum(m, 0)
        lo = np.where(inside, np.maximum(a, start[kk]), a)
        hi = np.where(inside, np.minimum(b, stop[mm]), b)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi
