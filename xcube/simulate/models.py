"""What a simulation holds: the specifications of transients and sources, and
the truth table that records what was drawn.

A specification can be given as its dataclass or as a dict of its fields
(:func:`as_spec`). Times of :class:`Flare`/:class:`Eclipse` are seconds after
the observation start in :func:`xcube.simulate.event_list` and mission time in
:func:`xcube.simulate.inject_flare`/:func:`~xcube.simulate.inject_eclipse`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from ..checks import check_number  # noqa: F401 (the check of every numeric parameter, here since the start)

__all__ = [
    "Flare",
    "Eclipse",
    "Source",
    "SoftProtonFlare",
    "PSF_FWHM_ARCSEC",
    "FWHM_PER_SIGMA",
    "TRUTH_COLUMNS",
    "as_spec",
    "check_number",
    "check_seed",
    "check_flare",
    "check_eclipse",
    "check_source",
    "check_soft_proton",
    "position_given",
    "truth_row",
    "truth_frame",
]

#: FWHM of the Gaussian PSF of simulated point sources [arcsec].
PSF_FWHM_ARCSEC = 6.6
#: FWHM / sigma of a Gaussian (rounded as the EPIC calibration notes quote it).
FWHM_PER_SIGMA = 2.355

#: Columns of every truth table (times are mission seconds).
TRUTH_COLUMNS = [
    "id", "kind", "transient", "ra", "dec", "x", "y", "t_peak", "t_start", "t_stop",
    "amplitude", "width", "rate", "depth", "counts", "expected_counts", "instrument",
]


@dataclass
class Flare:
    """Gaussian-in-time burst of a point source.

    ``amplitude``: peak rate [ct/s]; ``width``: Gaussian sigma [s];
    ``t_peak``: time of the peak [s] (after the observation start in
    :func:`event_list`, mission time in :func:`inject_flare`). Position: ``ra``,
    ``dec`` [deg] or sky pixels ``x``, ``y``; random on the detector if omitted.
    """

    t_peak: float
    amplitude: float
    width: float
    ra: float | None = None
    dec: float | None = None
    x: float | None = None
    y: float | None = None


@dataclass
class Eclipse:
    """Constant source of ``rate`` [ct/s] whose rate falls to ``rate * (1 - depth)``
    during ``[t_start, t_start + duration)`` [s] (``t_start`` after the observation
    start in :func:`event_list`, mission time in :func:`inject_eclipse`)."""

    t_start: float
    duration: float
    depth: float = 1.0
    rate: float = 0.1
    ra: float | None = None
    dec: float | None = None
    x: float | None = None
    y: float | None = None


@dataclass
class Source:
    """Constant point source of ``rate`` [ct/s] (PSF of 6.6" FWHM)."""

    rate: float
    ra: float | None = None
    dec: float | None = None
    x: float | None = None
    y: float | None = None


@dataclass
class SoftProtonFlare:
    """Soft-proton background episode over the whole FOV: rate rising to
    ``peak_rate`` [ct/s, 0.2-12 keV] and back within ``[t_start, t_start +
    duration)`` [s after the observation start], with log-normal variability of
    ``variability`` (sigma of ln rate) on 20 s steps."""

    t_start: float
    duration: float
    peak_rate: float
    variability: float = 0.4


def as_spec(cls, item):
    """``item`` as an instance of the specification class ``cls``: returned as is
    when it already is one, built from its fields when it is a mapping. Raises
    ``TypeError`` naming the class and the bad fields otherwise. Eager."""
    if isinstance(item, cls):
        return item
    if isinstance(item, Mapping):
        try:
            return cls(**item)
        except TypeError as exc:
            raise TypeError(f"bad {cls.__name__} specification {dict(item)}: {exc}") from None
    raise TypeError(f"expected a {cls.__name__} or a dict of its fields, got {type(item).__name__}")


def check_seed(where: str, seed, *, none: bool = False):
    """``seed`` after checking it is a whole number >= 0 (None too with
    ``none``: fresh entropy); ``ValueError`` naming ``where`` and ``seed``
    otherwise (:func:`check_number`). Python and numpy integers are returned
    as Python ints, unchanged however big (not through a float). Eager."""
    if seed is None and none:
        return None
    value = check_number(where, "seed", seed, ge=0, integer=True, unit="(or None)" if none else "")
    return int(seed) if isinstance(seed, (int, np.integer)) else value


def check_flare(fl: Flare, where: str | None = None) -> None:
    """Raise ``ValueError`` unless ``t_peak`` is finite, ``amplitude`` >= 0 ct/s
    and ``width`` > 0 s (:func:`check_number`). Eager (scalar checks)."""
    where = where or repr(fl)
    check_number(where, "t_peak", fl.t_peak, unit="s")
    check_number(where, "amplitude", fl.amplitude, ge=0, unit="ct/s")
    check_number(where, "width", fl.width, gt=0, unit="s")


def check_eclipse(ec: Eclipse, where: str | None = None) -> None:
    """Raise ``ValueError`` unless ``t_start`` is finite, ``0 <= depth <= 1``
    (the fraction of the rate removed) and ``duration`` [s] and ``rate`` [ct/s]
    are > 0 (:func:`check_number`). Eager (scalar checks)."""
    where = where or repr(ec)
    check_number(where, "t_start", ec.t_start, unit="s")
    check_number(where, "depth", ec.depth, ge=0, le=1, unit="(the fraction of the rate removed)")
    check_number(where, "duration", ec.duration, gt=0, unit="s")
    check_number(where, "rate", ec.rate, gt=0, unit="ct/s")


def check_source(src: Source) -> None:
    """Raise ``ValueError`` unless the source's ``rate`` is >= 0 ct/s. Eager
    (scalar check)."""
    check_number(repr(src), "rate", src.rate, ge=0, unit="ct/s")


def check_soft_proton(sp: SoftProtonFlare) -> None:
    """Raise ``ValueError`` unless ``t_start`` is finite, ``duration`` > 0 s,
    ``peak_rate`` >= 0 ct/s and ``variability`` >= 0. Eager (scalar checks)."""
    where = repr(sp)
    check_number(where, "t_start", sp.t_start, unit="s")
    check_number(where, "duration", sp.duration, gt=0, unit="s")
    check_number(where, "peak_rate", sp.peak_rate, ge=0, unit="ct/s")
    check_number(where, "variability", sp.variability, ge=0)


def position_given(spec, where: str | None = None) -> str | None:
    """How the position of ``spec`` is given: ``"sky"`` (``ra``/``dec``),
    ``"pixel"`` (``x``/``y``) or None (neither: a random position). Raises
    ``ValueError`` when only one of a pair, or both pairs, are given, or a
    coordinate is not finite (``dec`` outside [-90, 90]). Eager (scalar
    checks); ``ra``, ``dec`` [deg], ``x``, ``y`` [sky pixels]."""
    where = where or repr(spec)
    sky, pix = (spec.ra, spec.dec), (spec.x, spec.y)
    if any(v is not None for v in sky) and any(v is not None for v in pix):
        raise ValueError(f"{where}: give ra/dec or x/y, not both (ra={spec.ra}, dec={spec.dec}, x={spec.x}, "
                         f"y={spec.y})")
    for names, vals in ((("ra", "dec"), sky), (("x", "y"), pix)):
        if (vals[0] is None) != (vals[1] is None):
            raise ValueError(f"{where}: give both {names[0]} and {names[1]} "
                             "(or neither, for a random position)")
    if spec.ra is not None:
        check_number(where, "ra", spec.ra, unit="deg")
        check_number(where, "dec", spec.dec, ge=-90, le=90, unit="deg")
        return "sky"
    if spec.x is not None:
        check_number(where, "x", spec.x, unit="(sky pixels)")
        check_number(where, "y", spec.y, unit="(sky pixels)")
        return "pixel"
    return None


def truth_row(**values) -> dict:
    """One truth-table row: :data:`TRUTH_COLUMNS` set to NaN, then ``values``.
    Eager."""
    row = {c: np.nan for c in TRUTH_COLUMNS}
    row.update(values)
    return row


def truth_frame(rows) -> pd.DataFrame:
    """Truth DataFrame of :data:`TRUTH_COLUMNS` from rows made by :func:`truth_row`
    (typed columns even when there are no rows). Eager (pandas)."""
    df = pd.DataFrame(rows, columns=TRUTH_COLUMNS)
    if df.empty:
        df = pd.DataFrame({c: pd.Series(dtype=float) for c in TRUTH_COLUMNS})
        df["kind"] = df["kind"].astype(object)
        df["instrument"] = df["instrument"].astype(object)
        df["transient"] = df["transient"].astype(bool)
    return df.astype({"id": np.int64, "counts": np.int64, "transient": bool})
