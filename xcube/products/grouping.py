"""Spectral grouping to a minimum number of counts per group (grppha
``group min N``), in the OGIP GROUPING/QUALITY encoding.

GROUPING is +1 where a group starts and -1 where a channel continues the
group of the channel before it. QUALITY is 0 (good), 2 (dubious: set by the
grouping, XSPEC ignores it with ``ignore bad``) or the input's own flags
(1, 5: bad). All functions are eager on 1-D numpy arrays (spectra are small).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["group_min_counts", "grouped_counts", "group_spectrum"]


def group_min_counts(counts, min_counts: int, quality=None) -> tuple[np.ndarray, np.ndarray]:
    """Group consecutive channels until each group holds at least ``min_counts``.

    Parameters
    ----------
    counts : 1-D array of counts per channel (non-negative).
    min_counts : minimum counts per group (>= 1).
    quality : optional input QUALITY per channel; channels with quality > 0
        are left out of every group (each is its own one-channel group and keeps
        its flag), and a group is never continued across them.

    Returns
    -------
    ``(grouping, quality)`` int16 arrays of the same length. Every group of
    good quality holds ``>= min_counts`` counts and stops at the first channel
    that reaches the minimum. A trailing group that never reaches it (at the
    end of the spectrum or before a bad channel) gets quality 2, as grppha
    marks it.
    Eager, numpy (a loop over the channels).
    """
    counts = np.asarray(counts)
    if counts.ndim != 1:
        raise ValueError(f"group_min_counts: counts must be 1-D, got shape {counts.shape}")
    if np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise ValueError("group_min_counts: counts must be finite and non-negative")
    min_counts = int(min_counts)
    if min_counts < 1:
        raise ValueError(f"group_min_counts: min_counts={min_counts}; use a positive number of counts per group")
    quality_in = np.zeros(counts.size, np.int16) if quality is None else np.asarray(quality, np.int16).copy()
    if quality_in.shape != counts.shape:
        raise ValueError(f"group_min_counts: quality has shape {quality_in.shape}, counts {counts.shape}")
    grouping = np.ones(counts.size, np.int16)
    quality_out = quality_in.copy()
    start = None  # first channel of the open group
    total = 0
    for i in range(counts.size):
        if quality_in[i] > 0:
            if start is not None:  # an unfinished group ends at a bad channel
                quality_out[start:i] = 2
                start = None
            continue
        if start is None:
            start, total = i, 0
        else:
            grouping[i] = -1
        total += counts[i]
        if total >= min_counts:
            start = None
    if start is not None:
        quality_out[start:] = 2  # no bad channel after start: it would have closed the group
    return grouping, quality_out


def grouped_counts(counts, grouping) -> np.ndarray:
    """Counts summed over each group of an OGIP GROUPING array: ``counts``
    and ``grouping`` are 1-D per channel (-1 continues the group, any other
    value, OGIP's 1, starts one; the first channel always starts one).
    Returns a 1-D numpy array of counts, one per group. Eager (converts its
    inputs to numpy)."""
    counts = np.asarray(counts)
    grouping = np.asarray(grouping)
    starts = np.flatnonzero(grouping != -1)
    if starts.size == 0 or starts[0] != 0:
        starts = np.concatenate([[0], starts])
    return np.add.reduceat(counts, starts) if counts.size else counts[:0]


def group_spectrum(spectrum: xr.Dataset, min_counts: int) -> xr.Dataset:
    """Add ``grouping`` and ``quality`` variables (dim ``channel``) to a
    spectrum from :func:`xcube.spectrum`, grouping its ``counts`` to at least
    ``min_counts`` per group. A spectrum grouped before (e.g. read back with
    :func:`xcube.io.ogip.read_spectrum`) is regrouped from scratch: its
    QUALITY 2 (set by the old grouping) is reset to 0 first, as grppha's
    ``reset quality`` and ftgrouppha do; QUALITY 1 and 5 (bad) stay bad.
    Computes the counts (eager); returns a new Dataset with attrs ``group_min``."""
    counts = np.asarray(spectrum["counts"].values)
    quality = None
    if "quality" in spectrum:  # the old grouping's dubious flag is not bad input
        quality = np.asarray(spectrum["quality"].values, np.int16)
        quality = np.where(quality == 2, 0, quality).astype(np.int16)
    grouping, quality = group_min_counts(counts, min_counts, quality=quality)
    out = spectrum.copy()
    out["counts"] = spectrum["counts"].copy(data=counts)
    out["grouping"] = ("channel", grouping)
    out["quality"] = ("channel", quality)
    out.attrs["group_min"] = int(min_counts)
    return out
