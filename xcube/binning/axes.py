"""Binning axes: half-open bins ``[lo, hi)`` along one event column.

An :class:`Axis` is either *regular* (an origin and a width) or *explicit*
(any strictly increasing edges). The bin of a value ``v`` is

* regular axes: ``k = floor((v - origin) / width)``, a division (never a
  multiplication by ``1 / width``, which misplaces integer sky pixels that sit
  exactly on an edge), kept when ``0 <= k < n``;
* explicit axes: the ``k`` with ``edges[k] <= v < edges[k + 1]``.

Every bin is half-open, the last one too: a value equal to the last edge is
outside the axis. NaN is outside every axis.

A regular axis's edges are the values where the division rule steps: edge
``k`` is the smallest float64 ``v`` with ``floor((v - origin) / width) >=
k``, which is ``origin + k * width`` to within an ulp or two (where the
rounding of that sum and of the division disagree, the edge moves to the
rule's step). So the rule and the edges always agree: a value equal to
``lo[k]`` is in bin ``k``, and the exposure of a bin (from its edges) is the
good time of exactly the values the rule puts in it.

The helpers :func:`time_axis`, :func:`energy_axis` and :func:`sky_axis` build
axes from a bin width, a number of bins or explicit edges, with an optional
``offset`` (in bins) that shifts the grid, e.g. ``offset=0.5`` for the
half-bin shifted grid used to catch signals split across two bins. Everything
here is eager and small (edges only, no event data).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .. import gti as gtimod
from ..missions import GENERIC, profile_of
from .memory import available_bytes, check_size

__all__ = ["Axis", "time_axis", "energy_axis", "sky_axis", "integer_column", "whole_pixels", "pixel_arcsec",
           "integer_lut", "positive_width", "LUT_MAX", "rule_steps", "whole_pixel_shift", "finite_offset"]

# a width in pixels closer than this (relative) to an integer is taken as that integer,
# so that size_arcsec=20 with 0.05"/px gives exactly 400 px, not 399.99999999999966
_SNAP = 1e-9
#: largest lookup table (entries) built for an integer column (see :func:`integer_lut`)
LUT_MAX = 1 << 22


def rule_steps(origin: float, width: float, ks) -> np.ndarray:
    """float64 edges where the regular-axis rule ``floor((v - origin) /
    width)`` reaches each bin number of ``ks``: for each ``k`` the smallest
    float64 ``v`` with ``floor((v - origin) / width) >= k``. That is
    ``origin + k * width`` unless rounding makes the two disagree, when it
    is the neighbouring float (a few ulps at most). The rule is monotonic in
    ``v``, so these are the bins' exact boundaries. In the units of
    ``origin`` and ``width``; one edge per ``k``, of the shape of ``ks``.
    Eager, O(len(ks))."""
    ks = np.asarray(ks, np.float64)
    e = origin + ks * width
    with np.errstate(invalid="ignore", over="ignore"):
        for _ in range(64):  # up while the rule puts e below bin k
            low = np.floor((e - origin) / width) < ks
            if not low.any():
                break
            e = np.where(low, np.nextafter(e, np.inf), e)
        for _ in range(64):  # down while the float below e is in bin k already (not below the origin: the
            prev = np.nextafter(e, -np.inf)  # subnormal quotients of (origin - ulp) / width round to -0)
            high = (np.floor((prev - origin) / width) >= ks) & (ks != 0)
            if not high.any():
                break
            e = np.where(high, prev, e)
    return e


@dataclass(frozen=True, eq=False)
class Axis:
    """One binning axis of ``n`` half-open bins.

    Attributes
    ----------
    name : dimension name in the cube (``"time"``, ``"energy"``, ``"y"``, ``"x"``, ...).
    edges : float64 array of ``n + 1`` strictly increasing edges (read-only).
    units : unit of the edges (``"s"``, ``"keV"``, ``"pixel"``, ...).
    column : event column binned along this axis (default: ``name``).
    width : bin width for regular axes, ``None`` for explicit edges.
    origin : value of bin 0's lower edge used by the division rule (regular axes).
    offset : fraction of a bin the grid was shifted by (provenance only).
    first : for regular axes, the division-rule bin number of this axis's
        bin 0 (non-zero only for a sub-axis made by :meth:`sel`).
    """

    name: str
    edges: np.ndarray
    units: str = ""
    column: str | None = None
    width: float | None = None
    origin: float | None = None
    offset: float = 0.0
    meta: Mapping = field(default_factory=dict)
    first: int = 0

    def __post_init__(self):
        e = np.array(self.edges, dtype=np.float64)
        if e.ndim != 1 or e.size < 2:
            raise ValueError(f"axis {self.name!r}: needs at least two edges (one bin), got shape {e.shape}")
        if not np.all(np.isfinite(e)):
            raise ValueError(f"axis {self.name!r}: edges must be finite")
        if not np.all(np.diff(e) > 0):
            raise ValueError(f"axis {self.name!r}: edges must be strictly increasing")
        e.setflags(write=False)
        object.__setattr__(self, "edges", e)
        if self.column is None:
            object.__setattr__(self, "column", self.name)
        if self.width is not None:
            w = float(self.width)
            if not (w > 0 and math.isfinite(w)):
                raise ValueError(f"axis {self.name!r}: bin width must be positive and finite, got {self.width}")
            object.__setattr__(self, "width", w)
            object.__setattr__(self, "origin", float(e[0] if self.origin is None else self.origin))
            object.__setattr__(self, "first", int(self.first))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def regular(cls, name, start, width, nbins, *, units="", column=None, offset=0.0, meta=None) -> "Axis":
        """``nbins`` bins of ``width`` starting at ``start`` (both in the
        axis ``units``: s, keV, sky pixels): edges ``start + k * width``,
        float64 ``(nbins + 1,)``, computed eagerly."""
        width = _check_width(name, width)
        nbins = int(nbins)
        if nbins < 1:
            raise ValueError(f"axis {name!r}: number of bins must be >= 1, got {nbins}")
        start = float(start)
        check_size((nbins + 1,), np.float64, what=f"axis {name!r} edges", limit=available_bytes() // 16)
        edges = rule_steps(start, width, np.arange(nbins + 1, dtype=np.float64))
        return cls(name, edges, units=units, column=column, width=width, origin=start, offset=offset, meta=meta or {})

    @classmethod
    def from_edges(cls, name, edges, *, units="", column=None, meta=None) -> "Axis":
        """Explicit, strictly increasing edges (any spacing)."""
        return cls(name, np.asarray(edges, dtype=np.float64), units=units, column=column, meta=meta or {})

    @classmethod
    def covering(
        cls, name, lo, hi, *, width=None, nbins=None, offset=0.0, closed=False, units="", column=None, meta=None
    ) -> "Axis":
        """Regular axis covering ``[lo, hi)`` (``[lo, hi]`` with ``closed=True``:
        when the range is a whole number of bins, the last bin ends at ``hi``
        and keeps it, its width widened by an ulp or two if needed; no bin is
        added past ``hi``).

        Give either ``width`` or ``nbins``. The grid's edges are
        ``lo + (k + offset) * width``: with a fractional ``offset`` (e.g. 0.5)
        the first bin starts ``(1 - offset)`` bins before ``lo`` so that the
        shifted grid still covers the whole range (it then has one bin more
        than the unshifted grid when the range is a whole number of bins;
        for a whole-number ``width`` the lead ``(1 - offset) * width`` is
        snapped to a whole number when within 1e-9 of one, so that a shift
        by whole pixels stays exact).
        The last bin may extend beyond ``hi``. A NaN or infinite ``offset``
        (or one that is not a number) raises ``ValueError`` naming it.
        """
        lo, hi = float(lo), float(hi)
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
            raise ValueError(
                f"axis {name!r}: empty or invalid range [{lo}, {hi}); the upper bound must exceed the lower"
            )
        if (width is None) == (nbins is None):
            raise ValueError(f"axis {name!r}: give exactly one of a bin width or a number of bins")
        frac = finite_offset(name, offset) % 1.0
        if nbins is not None:
            nb = int(nbins)
            if nb < 1 or nb != nbins:
                raise ValueError(f"axis {name!r}: number of bins must be a positive integer, got {nbins}")
            width = (hi - lo) / nb
            origin = lo - _lead(frac, width)
            n = nb + (1 if frac > 0 else 0)
        else:
            width = _check_width(name, width)
            origin = lo - _lead(frac, width)
            f = (hi - origin) / width  # same arithmetic as the bin rule
            n = int(math.floor(f)) + 1 if closed else int(math.ceil(f))
            if closed and n > 1 and f == math.floor(f):  # hi exactly on an edge: close the last bin there
                n -= 1  # (rather than add a bin past the range)
            elif not closed and n > 1 and rule_steps(origin, width, [n - 1])[0] >= hi:
                n -= 1  # (a quotient rounded a hair above the whole number: that bin would start at hi)
        while closed and math.floor((hi - origin) / width) >= n:  # hi inside the last bin: widen by ulps
            width = math.nextafter(width, math.inf)
        n = max(n, 1)
        if closed:  # (a binner that maps the column to other units keeps hi inside: see binning.engine)
            meta = {**(meta or {}), "closed_hi": hi}
        return cls.regular(name, origin, width, n, units=units, column=column, offset=frac, meta=meta)

    # ------------------------------------------------------------------ properties
    @property
    def size(self) -> int:
        """Number of bins."""
        return self.edges.size - 1

    def __len__(self) -> int:
        return self.size

    @property
    def is_regular(self) -> bool:
        """True for an axis of equal bins (a ``width``), False for explicit edges."""
        return self.width is not None

    @property
    def lo(self) -> np.ndarray:
        """Lower bin edges (inclusive), shape ``(n,)``."""
        return self.edges[:-1]

    @property
    def hi(self) -> np.ndarray:
        """Upper bin edges (exclusive), shape ``(n,)``."""
        return self.edges[1:]

    @property
    def centres(self) -> np.ndarray:
        """Bin centres ``(lo + hi) / 2``, shape ``(n,)``."""
        return 0.5 * (self.edges[:-1] + self.edges[1:])

    @property
    def widths(self) -> np.ndarray:
        """Bin widths ``hi - lo``, shape ``(n,)``."""
        return np.diff(self.edges)

    # ------------------------------------------------------------------ binning
    def index_of(self, values) -> np.ndarray:
        """Bin number of each value (int64, same shape), ``-1`` outside the axis or NaN.

        Regular axes use ``floor((v - origin) / width)``; explicit axes
        ``edges[k] <= v < edges[k + 1]``. Eager (numpy).
        """
        v = np.asarray(values, dtype=np.float64)
        out = np.full(v.shape, -1, dtype=np.int64)
        if self.is_regular:
            with np.errstate(invalid="ignore"):
                f = (v - self.origin) / self.width
                ok = (f >= self.first) & (f < self.first + self.size)
            out[ok] = np.floor(f[ok]).astype(np.int64) - self.first
        else:
            k = np.searchsorted(self.edges, v, side="right") - 1
            ok = (k >= 0) & (k < self.size) & ~np.isnan(v)
            out[ok] = k[ok]
        return out

    def sel(self, start: int, stop: int) -> "Axis":
        """Bins ``start:stop`` as an axis that bins values exactly as this one does."""
        if not (0 <= start < stop <= self.size):
            raise IndexError(f"axis {self.name!r}: bin range {start}:{stop} outside 0:{self.size}")
        return Axis(
            self.name,
            self.edges[start : stop + 1],
            units=self.units,
            column=self.column,
            width=self.width,
            origin=self.origin,
            offset=self.offset,
            meta=self.meta,
            first=self.first + start if self.is_regular else 0,
        )

    def describe(self) -> str:
        """One-line description for provenance attrs."""
        col = f" of column {self.column!r}" if self.column != self.name else ""
        if self.is_regular:
            s = (
                f"{self.name}{col}: {self.size} regular bins of {self.width:.10g} {self.units} "
                f"from {self.edges[0]:.15g} to {self.edges[-1]:.15g}"
            )
            if self.offset:
                s += f" (grid shifted by {self.offset:g} bin)"
        else:
            s = (f"{self.name}{col}: {self.size} bins with explicit edges from {self.edges[0]:.15g} to "
                 f"{self.edges[-1]:.15g} {self.units}")
        return s + "; bins half-open [lo, hi)"

    def __repr__(self) -> str:
        return f"Axis({self.describe()})"


def positive_width(what: str, width) -> float:
    """``width`` as a positive finite float (units unchanged), or ``ValueError`` naming
    ``what`` (e.g. ``"time_bin"`` or ``"axis 'x': bin width"``). Eager (scalar
    check)."""
    try:
        w = float(width)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {width!r}") from None
    if not (w > 0 and math.isfinite(w)):
        raise ValueError(f"{what} must be positive and finite, got {width}")
    return w


def finite_number(name: str, value, what: str) -> float:
    """``value`` as a finite float, or ``ValueError`` naming the argument
    ``name`` and saying ``what`` it is (NaN or inf would otherwise slip
    through comparisons silently)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r}: must be a number ({what})") from None
    if not math.isfinite(v):
        raise ValueError(f"{name}={value!r}: must be a finite number ({what})")
    return v


def finite_offset(name, offset) -> float:
    """``offset`` [bins] of axis ``name`` as a finite float (:func:`finite_number`).
    Eager (one number)."""
    return finite_number("offset", offset, f"a shift of the {name!r} grid in bins, e.g. 0.5")


def _check_width(name, width) -> float:
    return positive_width(f"axis {name!r}: bin width", width)


def _lead(frac: float, width: float) -> float:
    """How far bin 0 of a grid shifted by ``frac`` of a bin starts before the
    range: ``(1 - frac) * width`` (0 unshifted), snapped to a whole number for
    a whole ``width`` (a shift by whole sky pixels, kept exact)."""
    if frac <= 0:
        return 0.0
    lead = (1.0 - frac) * width
    return _snap(lead) if width == round(width) else lead


def _snap(w: float) -> float:
    r = round(w)
    return float(r) if r != 0 and abs(w - r) <= _SNAP * abs(w) else w


def _build(name, lo, hi, width, nbins, edges, offset, units, column, closed=False, meta=None) -> Axis:
    if edges is not None:
        if width is not None or nbins is not None:
            raise ValueError(f"axis {name!r}: give explicit edges or a width/number of bins, not both")
        if offset:
            raise ValueError(f"axis {name!r}: offset applies to width/number-of-bins axes, not explicit edges")
        return Axis.from_edges(name, edges, units=units, column=column, meta=meta)
    return Axis.covering(
        name, lo, hi, width=width, nbins=nbins, offset=offset, closed=closed, units=units, column=column, meta=meta
    )


# ---------------------------------------------------------------------- time
def time_axis(events_or_gti, width=None, *, nbins=None, edges=None, t0=None, t_stop=None, offset=0.0) -> Axis:
    """Time axis [s of mission time].

    ``events_or_gti`` is an EventList (its ``gti_start``/``gti_stop``) or a
    ``(start, stop)`` GTI pair. The axis starts at ``t0`` (default: the first
    GTI start) and covers up to ``t_stop`` (default: the last GTI stop); the
    last bin is kept even when it extends beyond the last GTI (its exposure is
    then fractional). Give ``width`` [s], ``nbins`` or explicit ``edges``.

    Raises ``ValueError`` when the range does not overlap the GTIs.
    Eager: builds the edges [s] from the GTIs; no event is read.
    """
    gti = _gti_of(events_or_gti)
    if edges is not None:
        ax = _build("time", None, None, width, nbins, edges, offset, "s", "time")
        lo, hi = ax.edges[0], ax.edges[-1]
    else:
        if gti[0].size == 0 and (t0 is None or t_stop is None):
            raise ValueError("time axis: the events have no GTIs; give both t0 and t_stop")
        lo = float(gti[0][0]) if t0 is None else float(t0)
        hi = float(gti[1][-1]) if t_stop is None else float(t_stop)
        if hi <= lo:
            what = "t0" if t0 is not None else "the first GTI start"
            raise ValueError(
                f"time axis: {what} ({lo:.15g} s) is at or after the end of the range ({hi:.15g} s, "
                f"{'t_stop' if t_stop is not None else 'last GTI stop'}); choose t0 inside the GTIs "
                f"[{_gti_span(gti)}]"
            )
        ax = _build("time", lo, hi, width, nbins, None, offset, "s", "time")
    if gti[0].size and gtimod.exposure_per_bin([ax.edges[0]], [ax.edges[-1]], gti)[0] <= 0:
        raise ValueError(
            f"time axis [{ax.edges[0]:.15g}, {ax.edges[-1]:.15g}) s lies outside the GTIs "
            f"[{_gti_span(gti)}]; choose t0/edges inside the good time"
        )
    return ax


def _gti_of(obj):
    if isinstance(obj, tuple) and len(obj) == 2:
        return gtimod.normalize(*obj, warn=False)
    if isinstance(obj, (list, np.ndarray)):  # (start, stop) rows, as select(gti=) takes them
        return gtimod.as_gti(obj, source="time_axis", warn=False)
    return gtimod.normalize(*gtimod.from_dataset(obj), warn=False)


def _gti_span(gti) -> str:
    if gti[0].size == 0:
        return "no GTIs"
    return f"{gti[0][0]:.15g} - {gti[1][-1]:.15g} s in {gti[0].size} interval(s)"


# ---------------------------------------------------------------------- energy
def energy_axis(width=None, *, nbins=None, edges=None, energy_range=None, events=None, offset=0.0) -> Axis:
    """Energy axis [keV] from a width [keV], ``nbins`` or explicit ``edges``.

    ``energy_range`` (keV) defaults to the mission profile's useful band of
    ``events`` (``profile.energy_range``). The range is closed: an event at
    exactly its upper end is inside the last bin.
    Eager: builds the edges [keV]; no event is read.
    """
    if edges is None:
        if energy_range is None:
            prof = profile_of(events)
            if prof is GENERIC:
                raise ValueError("energy axis: give energy_range=(lo, hi) keV (no mission profile to take it from)")
            energy_range = prof.energy_range
        lo, hi = (float(v) for v in energy_range)
        if lo < 0:
            raise ValueError(f"energy axis: energy_range {energy_range} keV has a negative lower bound")
    else:
        lo = hi = None
    return _build("energy", lo, hi, width, nbins, edges, offset, "keV", "energy", closed=True)


# ---------------------------------------------------------------------- sky
def pixel_arcsec(events, dim: str) -> float:
    """Size [arcsec] of one sky pixel of column ``dim`` (``"x"`` or ``"y"``):
    ``|CDELT|`` of the event WCS, else the mission profile's ``pixel_arcsec``.
    Eager: reads attrs only, no data."""
    i = {"x": 1, "y": 2}[dim]
    attrs = getattr(events, "attrs", {})
    cd = attrs.get(f"CDELT{i}")
    if cd:
        unit = str(attrs.get(f"CUNIT{i}", "deg")).strip().lower() or "deg"
        scale = {"deg": 3600.0, "arcmin": 60.0, "arcsec": 1.0}.get(unit, 3600.0)
        return abs(float(cd)) * scale
    prof = profile_of(events)
    if prof is GENERIC:
        raise ValueError(f"sky axis {dim!r}: no CDELT{i} keyword and no mission profile; give the width in pixels")
    return float(prof.pixel_arcsec)


def integer_column(events, dim: str) -> bool:
    """Whether the sky column ``dim`` of ``events`` holds integers (XMM,
    NuSTAR, Swift-XRT): each value ``v`` then stands for the sky pixel
    ``[v - 0.5, v + 0.5)``, centred on ``v`` as the column's WCS (TCRPX) has
    it, and sky grids put their edges on half-integers. No data read. Eager
    (checks the dtype only)."""
    try:
        return bool(np.issubdtype(np.dtype(events[dim].dtype), np.integer))
    except (KeyError, TypeError, AttributeError):
        return False


def whole_pixels(width: float) -> float:
    """A cell ``width`` [sky pixels] rounded to a whole number of pixels (at
    least one): the cells of an integer sky column (:func:`integer_column`)
    then hold equal numbers of pixel columns. Unchanged when already whole.
    Eager (scalar arithmetic)."""
    return float(max(1, round(width)))


def sky_axis(
    events, dim: str, width=None, *, size_arcsec=None, nbins=None, edges=None, range=None, offset=0.0
) -> Axis:
    """Sky-pixel axis for column ``dim`` (``"x"`` or ``"y"``), in pixels of that column.

    Give the bin ``width`` in pixels, or ``size_arcsec`` (converted with the
    event WCS pixel scale, see :func:`pixel_arcsec`; widths within 1e-9 of a
    whole number of pixels are snapped to it), or ``nbins`` or explicit
    ``edges``. ``range=(lo, hi)`` in pixels defaults to the column's legal
    range (TLMIN/TLMAX, attrs ``x_min``/``x_max``), both ends included; a
    NaN or infinite end raises ``ValueError`` naming the range.

    Integer sky columns (:func:`integer_column`): the value ``v`` is the
    centre of its sky pixel, so the grid covers ``[lo - 0.5, hi + 0.5)`` and
    its edges fall on half-integers: a cell's centre, its WCS and DS9's
    physical coordinates sit on the pixels it holds (without the shift they
    would be half a sky pixel off: 1.2" for NuSTAR). ``size_arcsec`` is
    then rounded to a whole number of sky pixels, with a warning when that
    changes it, as cells of a fractional width would hold unequal numbers of
    pixel columns (a striped image); a fractional ``width``, or an
    ``nbins`` that makes one, only warns. A fractional ``offset`` of a
    whole-pixel cell is rounded to shift the grid by whole pixels (half up,
    :func:`whole_pixel_shift`: 0.5 of a 5-pixel cell is 3 pixels, ``offset``
    0.6), with a warning when that changes it, so that the shifted grid's
    edges stay on half-integers too. Explicit ``edges`` are used as given.
    Eager, tiny.
    """
    if dim not in ("x", "y"):
        raise ValueError(f"sky axis: dim must be 'x' or 'y', got {dim!r}")
    whole = integer_column(events, dim) and edges is None
    if size_arcsec is not None:
        if width is not None:
            raise ValueError(f"sky axis {dim!r}: give width (pixels) or size_arcsec, not both")
        s = _check_width(dim, size_arcsec)
        width = _snap(s / pixel_arcsec(events, dim))
        if whole and width != round(width):
            rounded = whole_pixels(width)
            px = pixel_arcsec(events, dim)
            warnings.warn(f"sky axis {dim!r}: {s:g}\" is {width:.3f} sky pixels of {px:g}\"; the column holds whole "
                          "pixels, so cells of that size would hold unequal numbers of them (a striped image): "
                          f"using {rounded:g} pixels ({rounded * px:g}\")", UserWarning, stacklevel=3)
            width, size_arcsec = rounded, rounded * px
    elif whole and isinstance(width, (int, float, np.number)) and math.isfinite(width) and width > 0 \
            and float(width) != round(float(width)):
        _warn_fractional(dim, f"a width of {float(width):g} pixels")
    if edges is None:
        if range is None:
            attrs = getattr(events, "attrs", {})
            if f"{dim}_min" not in attrs or f"{dim}_max" not in attrs:
                raise ValueError(
                    f"sky axis {dim!r}: no legal range ({dim}_min/{dim}_max attrs from TLMIN/TLMAX); "
                    f"give range=(lo, hi) in pixels"
                )
            range = (attrs[f"{dim}_min"], attrs[f"{dim}_max"])
        lo, hi = _sky_range(dim, range)
        if whole:
            lo, hi = math.floor(lo + 0.5) - 0.5, math.ceil(hi - 0.5) + 0.5
            if isinstance(nbins, (int, float, np.number)) and not isinstance(nbins, bool) and nbins >= 1 \
                    and (hi - lo) / nbins != round((hi - lo) / nbins):
                _warn_fractional(dim, f"nbins={nbins} (cells of {(hi - lo) / nbins:.4g} pixels)",
                                 f"use an nbins that divides the {hi - lo:g} pixels of the range, or a whole width")
            offset = _whole_pixel_offset(dim, offset, width if nbins is None else (hi - lo) / nbins)
    else:
        lo = hi = None
    meta = {"size_arcsec": float(size_arcsec)} if size_arcsec is not None else None
    return _build(dim, lo, hi, width, nbins, edges, offset, "pixel", dim, closed=not whole, meta=meta)


def _warn_fractional(dim: str, what: str, hint: str = "use a whole number") -> None:
    warnings.warn(f"sky axis {dim!r}: {what} over a column of whole pixels makes cells that hold unequal "
                  f"numbers of pixels (a striped image); {hint}", UserWarning, stacklevel=4)


def whole_pixel_shift(offset, width: float) -> float:
    """The ``offset`` [bins] of a grid of cells ``width`` sky pixels wide on
    an integer sky column, rounded so that the grid moves by a whole number
    of pixels (half up: 0.5 of 5 pixels is 3 pixels, 0.6) and its edges stay
    on half-integers (:func:`integer_column`). Unchanged for a fractional
    ``width`` (its edges are not on half-integers anyway) or when already
    whole; a multiple of ``width`` gives 0 (a cell of one pixel cannot be
    shifted by a fraction of it). Eager (scalar arithmetic)."""
    shift = offset * width
    if width != round(width) or abs(shift - round(shift)) <= _SNAP * max(1.0, abs(shift)):
        return offset
    return (math.floor(shift + 0.5) % width) / width


def _whole_pixel_offset(dim: str, offset, width) -> float:
    """:func:`whole_pixel_shift` of ``offset`` for sky axis ``dim`` whose cells
    are ``width`` pixels (None or not a number: unchanged), with a warning
    when that changes it."""
    try:
        w, off = float(width), finite_offset(dim, offset) % 1.0
    except (TypeError, ValueError):
        return offset  # (a bad width or offset is reported by the axis)
    if not (w > 0 and math.isfinite(w)) or off == 0:
        return offset
    new = whole_pixel_shift(off, w)
    if new != off:
        warnings.warn(f"sky axis {dim!r}: offset={offset:g} of a cell of {w:g} pixels is {off * w:g} pixels; the "
                      "column holds whole pixels, so that grid's edges would sit on pixel centres and its cells' "
                      f"centres, ra/dec and WCS half a pixel off the pixels they hold: shifting by {new * w:g} "
                      f"whole pixels (offset={new:g}) instead", UserWarning, stacklevel=4)
    return new


def _sky_range(dim: str, rng) -> tuple[float, float]:
    """``range=(lo, hi)`` of :func:`sky_axis` [sky pixels] as two finite
    floats, or ``ValueError`` naming it (``{dim}_range`` of an image)."""
    what = f"sky axis {dim!r}: range={rng!r} (the {dim}_range [sky pixels], both ends included)"
    try:
        lo, hi = (float(v) for v in rng)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be two numbers (lo, hi)") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{what} must be finite")
    return lo, hi


def integer_lut(axis: Axis, dtype):
    """Lookup table binning an integer column exactly as ``axis.index_of`` does.

    Returns ``(lut, v0)`` with ``lut[v - v0]`` the bin of integer value ``v``
    (-1 outside the axis; int32, one entry per integer between the first and
    last edge), or None when ``dtype`` is not an integer type or the range
    holds more than :data:`LUT_MAX` integers. Used by ``bin_events`` and by
    the compact cube's single events pass. Eager, small.
    """
    if not np.issubdtype(np.dtype(dtype), np.integer):
        return None
    v0 = int(math.ceil(axis.edges[0]))
    v1 = int(math.floor(axis.edges[-1]))
    if v1 < v0 or v1 - v0 + 1 > LUT_MAX:
        return None
    key = (axis.edges.tobytes(), axis.is_regular, axis.origin, axis.width, axis.first)
    lut = _LUTS.get(key)
    if lut is None:  # the same grid is binned again and again (surveys, parameter grids): build once
        lut = axis.index_of(np.arange(v0, v1 + 1, dtype=np.float64)).astype(np.int32)
        if len(_LUTS) >= 64:
            _LUTS.pop(next(iter(_LUTS)))
        _LUTS[key] = lut
    return lut, v0


_LUTS: dict = {}  # lookup tables by axis rule (at most 64 kept; callers must not write to them)
