"""Event selection: energy bands, filter expressions, regions and GTIs.

``select(events, energy_band=, expr=, region=, gti=)`` returns a new EventList
holding the events that pass every given criterion. Selections compose:
``select(select(ev, expr=a), expr=b)`` holds the same events as
``select(ev, expr=f"({a}) && ({b})")``, and each call appends one readable
string per criterion to ``attrs["selection"]``. An energy band is also
recorded as ``attrs["energy_band"] = [emin, emax]`` [keV] (intersected with
the one there already): :func:`applied_band` gives the products and the
transient search the band the events really cover.

What is computed when
---------------------
xarray cannot hold arrays of unknown length, so the number of events kept in
each Dask chunk must be known when ``select`` returns. ``select`` therefore
makes **one eager pass over the columns the selection reads** (e.g. ``energy``,
``pattern``, ``flag``; ``x``/``y`` for a region; ``time`` for a GTI) and
returns one integer per chunk; nothing else is kept in memory. The other
columns are not read. The result's columns stay lazy: each output chunk is
``column_chunk.take(flatnonzero(mask_chunk))``, and the mask is recomputed
(once per chunk, shared by all columns) from the same few columns when the
result is computed.

The output keeps the input's chunk boundaries along ``event`` (chunk *i* of the
result holds the selected events of chunk *i*), so chunks still follow time,
events stay time-sorted and ``searchsorted``-based binning works unchanged.
Chunks become uneven and may be empty; call ``.chunk({"event": n})`` before
writing to a store that needs regular chunks.
"""
from __future__ import annotations

import functools
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from . import gti as gtimod
from .expression import Expression, ExpressionError, compile_expression
from .hygiene import BLOCK_EVENTS
from .io.chunking import event_blocks
from .missions import GENERIC, profile_of, screening_of
from .regions import Footprint, RegionSet, check_in_field, detector_footprint, pixel_region
from .scheduler import compute

__all__ = ["select", "BandOutsideInstrument", "applied_band", "expression_band", "energy_band_mask", "EventFilter",
           "EnergyBand", "ExpressionTest", "RegionTest", "GoodTimeTest", "OwnGoodTimeTest", "own_good_time_test",
           "apply_filter", "energy_band_bounds", "column_dtypes", "column_aliases", "macro_lookup", "check_events",
           "screening_expression", "screening_expr", "screened_footprint"]

log = logging.getLogger("xcube.select")

_DROP_ENCODING = ("chunks", "preferred_chunks", "shards")


def select(events, energy_band=None, expr=None, region=None, gti=None, hygiene=None):
    """Select events by energy band, filter expression, region, GTIs and
    detector hygiene.

    Parameters
    ----------
    events : EventList (``xr.Dataset`` with dim ``event``), or an
        ``xr.DataTree`` archive (each node holding events is selected).
    energy_band : ``(emin, emax)`` in keV, half-open ``[emin, emax)`` on the
        ``energy`` column. The bounds are rounded to the column's float32, so a
        band edge falls on the same PI channel as the equivalent PI filter
        (XMM: ``(0.5, 2.0)`` keeps PI 500..1999). Must overlap the mission's
        ``energy_range``; a band reaching outside it gives a warning.
    expr : filter string in ``evselect``/CIAO/``ftselect`` syntax, e.g.
        ``"PATTERN <= 12 && FLAG == 0"``, ``"(FLAG & 0x766ba000) == 0"``,
        ``"PI in [200:12000]"``, ``"#XMMEA_EM"``. See :mod:`xcube.expression`.
    region : DS9 region string or file, ``regions`` object(s), or a
        :class:`~xcube.regions.RegionSet`; sky (fk5/icrs/galactic, through the
        events' WCS) or physical (X/Y column) coordinates, ``-shape`` excludes.
        See :mod:`xcube.regions`. A region entirely outside the events' field
        raises ``ValueError``; one partly outside warns.
    gti : good time intervals to intersect with the events' GTIs: a pair
        ``(start, stop)`` of floats or of 1-D arrays [s, mission time], an
        ``(n, 2)`` array, a Dataset with ``gti_start``/``gti_stop``, a GTI
        file (``"gti.fits"``, ``"flt.fits[STDGTI]"``; its MJDREF must be the
        events') or an OGIP GTI table in memory (``fits.BinTableHDU``,
        ``astropy.table.Table``, DataFrame with START/STOP; see
        :func:`xcube.io.ogip.gti_table`). Events outside are dropped;
        ``gti_start``/``gti_stop``, the per-CCD GTIs and ``attrs["exposure"]``
        are updated.
    hygiene : ``True`` (defaults), a dict of options or a
        :class:`xcube.hygiene.Hygiene`: drop detector border, hot pixels and
        columns, flickering pixels and instrumental clusters
        (:mod:`xcube.hygiene`), judged on the events passing the other
        criteria of this call, in fixed blocks of 2^20 events
        (:func:`xcube.io.chunking.event_blocks`, whatever the chunks). The
        transient search judges them on the screened events of all energies
        inside the cameras' common GTIs: ``select(ev, expr=screening,
        gti=common, hygiene=True)`` then the band reproduces its events.

    Returns
    -------
    A new EventList with the same variables and the kept events, lazy
    (columns are Dask arrays when the input's are); ``attrs["selection"]``
    gains one entry per criterion. With ``energy_band``,
    ``attrs["energy_band"]`` = ``[emin, emax]`` [keV], the band the events
    now cover: the intersection with a band applied before (``[e, e]``, an
    empty band, when they do not overlap: no event is left, and products
    of these events raise). An energy cut written in ``expr`` as a
    top-level ``&&`` term of PI or energy alone (``"PATTERN <= 12 && PI in
    [500:2000]"``) is recorded the same way (:func:`expression_band`). With
    no criterion the input is returned as a shallow copy.

    Eager work: parsing and checking the criteria, and one pass over the
    columns the selection reads to count the kept events per chunk (see the
    module docstring). Errors name the column, keyword or region at fault.
    The criteria are an :class:`EventFilter`, the same object the transient
    search's single events pass applies.
    """
    if isinstance(events, xr.DataTree):
        out = {}
        for node in events.subtree:
            ds = node.dataset
            path = node.relative_to(events)
            if "event" not in ds.dims:
                out[path] = ds
                continue
            try:
                out[path] = select(ds, energy_band, expr, region, gti, hygiene)
            except (ValueError, TypeError, KeyError) as exc:
                raise _naming_node(exc, ds, node.path) from None
        return xr.DataTree.from_dict(out, name=events.name)
    check_events(events)
    filt = EventFilter.for_events(events, energy_band=energy_band, expr=expr, region=region, gti=gti,
                                  hygiene=hygiene)
    band = None if filt.band is None else _intersect_band(filt.band, _cut_band(events))
    if not filt:
        out = events.copy(deep=False)
        out.attrs = dict(events.attrs, selection=list(events.attrs.get("selection", [])))
        return out
    out = _apply(events, filt)
    if filt.gti is not None:
        out = _replace_gti(out, filt.gti, filt.requested_gti)
    out.attrs["selection"] = list(events.attrs.get("selection", [])) + list(filt.labels)
    if band is not None:
        out.attrs["energy_band"] = list(band)
    for lab in filt.labels:
        log.debug("%s: selected %s", _name(events), lab)
    return out


def screened_footprint(events, screening: bool = True) -> Footprint | None:
    """The detector footprint (:func:`xcube.regions.detector_footprint`) of
    ``events`` in their good time, with the mission's screening when
    ``screening`` (:func:`screening_expr`) and no other cut: the footprint
    that :func:`xcube.regions.region_areas` takes with
    ``backscal="detector"``, so one region has one area whatever a product's
    filter, band or time range. None when no CCD has enough events to tell
    the detector. Eager: the selection's passes (:func:`select`) and one
    pass over x, y and the CCD column."""
    return detector_footprint(select(events, expr=screening_expr(events, None, screening), gti=events))


def _naming_node(exc: Exception, ds, path: str) -> Exception:
    """``exc`` of one DataTree node's selection, its message led by the
    node's file (``attrs["source"]``) and tree path unless it names it."""
    msg = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
    src = ds.attrs.get("source") or ds.attrs.get("obs_id")
    if src and str(src) in msg:
        return exc
    where = f"{src} (node {path})" if src else f"node {path}"
    try:
        new = type(exc)(f"{where}: {msg}")
    except Exception:  # an exception class with another signature: left as raised
        return exc
    if isinstance(exc, ExpressionError):
        new.column = exc.column
    return new


def energy_band_mask(events, energy_band) -> xr.DataArray:
    """Boolean DataArray on ``event``: ``emin <= energy < emax`` [keV], with
    the bounds rounded to the column dtype. Lazy; validates the band like
    :func:`select`."""
    check_events(events)
    test = EnergyBand(*energy_band_bounds(events, energy_band))
    e = events["energy"]
    if hasattr(e.data, "map_blocks"):
        data = e.data.map_blocks(lambda b: test({"energy": b}), dtype=bool)
    else:
        data = test({"energy": e.values})
    return xr.DataArray(data, dims=("event",), name="energy_band_mask")


# --------------------------------------------------------------------------- criteria (picklable, numpy blocks)
class BandOutsideInstrument(ValueError):
    """An energy band the instrument cannot give events in: wholly outside
    its energy range, or a mission without an energy scale
    (:func:`energy_band_bounds`). A survey records such a run ``skipped``."""


class EnergyBand:
    """``lo <= energy < hi`` [keV], the bounds rounded to the column's float dtype."""

    columns = frozenset(["energy"])

    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = lo, hi

    def __call__(self, cols):
        """Mask of ``lo <= energy < hi`` [keV]: a 1-D bool numpy array, one value per
        event of the block ``cols`` (column name -> 1-D numpy array). Eager on
        that block."""
        e = cols["energy"]
        t = e.dtype.type if e.dtype.kind == "f" else np.float64
        return (e >= t(self.lo)) & (e < t(self.hi))


class ExpressionTest:
    """A compiled filter expression (:func:`xcube.expression.compile_expression`)."""

    def __init__(self, compiled):
        self.compiled = compiled
        self.columns = frozenset(compiled.columns)

    def __call__(self, cols):
        """Mask of the events the expression keeps: a 1-D bool numpy array, one value per
        event of the block ``cols`` (column name -> 1-D numpy array). Eager on
        that block."""
        n = len(next(iter(cols.values())))
        return self.compiled.evaluate(cols, n)


class RegionTest:
    """Sky X/Y inside a :class:`~xcube.regions.RegionSet`."""

    columns = frozenset(["x", "y"])

    def __init__(self, rs):
        self.rs = rs

    def __call__(self, cols):
        """Mask of the events whose sky ``x``/``y`` [sky
        pixels] are inside the regions: a 1-D bool numpy array, one value per
        event of the block ``cols`` (column name -> 1-D numpy array). Eager on
        that block."""
        return self.rs.contains(cols["x"], cols["y"])


class GoodTimeTest:
    """``time`` inside good time intervals ``(start, stop)`` [s]."""

    columns = frozenset(["time"])

    def __init__(self, g):
        self.g = g

    def __call__(self, cols):
        """Mask of the events whose ``time`` [s] is inside the
        GTIs (half-open): a 1-D bool numpy array, one value per
        event of the block ``cols`` (column name -> 1-D numpy array). Eager on
        that block."""
        return gtimod.in_gti(np.asarray(cols["time"]), self.g)


class EventFilter:
    """Predicates on event columns, evaluated on in-memory blocks.

    The one definition of "which events pass": :func:`select` applies it
    lazily chunk by chunk, and the transient search's single events pass
    (:func:`xcube.binning.compact_cubes`) applies it inside its loop. Build
    one with :meth:`for_events`; combine with ``&``. ``columns`` names the
    event columns the tests read; ``labels`` are the readable entries
    ``select`` adds to ``attrs["selection"]``. Cheap and picklable.

    A test is a callable ``test(cols) -> bool mask``; a *contextual* test
    (attribute ``contextual = True``, e.g. :class:`xcube.hygiene.HygieneTest`)
    is called after all others as ``test(cols, keep, stats)`` with the mask
    so far, judges the kept events of the block together, and returns the
    events it keeps.
    """

    def __init__(self, tests=(), labels=(), region=None, gti=None, requested_gti=None, band=None):
        self.tests = tuple(tests)
        self.labels = tuple(labels)
        self.region = region  # RegionSet of a region test, for the field check
        self.gti = gti  # the GTIs a GTI test keeps (events' GTIs x requested)
        self.requested_gti = requested_gti
        self.band = band  # (emin, emax) [keV] the energy_band and the expression's energy terms cut to, or None

    @classmethod
    def for_events(cls, events, *, energy_band=None, expr=None, region=None, gti=None,
                   screening: bool = False, hygiene=None) -> "EventFilter":
        """The filter of ``select``'s criteria on ``events`` (validated against
        its columns, mission profile and GTIs; see :func:`select`), after the
        mission's default screening expression when ``screening``, with the
        detector ``hygiene`` last (skipped, and logged, for events without raw
        detector pixels). Eager and small: parsing, checks, region and GTI
        set-up; no event is read."""
        tests, labels = [], []
        screen = screening_of(events) if screening else None
        if screen:
            tests.append(_expression_test(events, screen, screening=True))
            labels.append(f"expr={tests[-1].compiled.text}")
        if energy_band is not None:
            lo, hi = energy_band_bounds(events, energy_band)
            tests.append(EnergyBand(lo, hi))
            labels.append(f"energy_band=[{lo:g}, {hi:g}) keV")
        expr_gti = None
        band = _band_pair(energy_band) if energy_band is not None else None
        if expr is not None:
            tests.append(_expression_test(events, expr))
            labels.append(f"expr={tests[-1].compiled.text}")
            expr_gti = _expression_good_time(events, tests[-1].compiled)
            in_expr = expression_band(events, tests[-1].compiled)  # (its energy cut, as its time cut above)
            band = band if in_expr is None else _intersect_band(in_expr, band)
        rs = new_gti = user = None
        if region is not None:
            for c in ("x", "y"):
                if c not in events.data_vars:
                    raise ValueError(f"{_name(events)}: region selection needs the {c!r} column; "
                                     f"columns: {_columns(events)}")
            rs = region if isinstance(region, RegionSet) else pixel_region(region, events)
            tests.append(RegionTest(rs))
            labels.append(f"region={rs.description}")
        if gti is not None:
            new_gti, user = _gti_test_intervals(events, gti)
            tests.append(GoodTimeTest(new_gti))
            labels.append(f"gti={_fmt_gti(user)}")
        if expr_gti is not None:  # the expression's time cut: the good time follows it (its test keeps the events)
            user = expr_gti if user is None else gtimod.intersection(user, expr_gti)
            new_gti = expr_gti if new_gti is None else gtimod.intersection(new_gti, expr_gti)  # (inside the events')
        if hygiene is not None and hygiene is not False:
            from .hygiene import hygiene_test

            test = hygiene_test(events, hygiene)
            if test is not None:
                tests.append(test)
                labels.append(test.label)
        return cls(tests, labels, rs, new_gti, user, band)

    def __bool__(self) -> bool:
        return bool(self.tests)

    def __and__(self, other: "EventFilter") -> "EventFilter":
        if self.gti is not None and other.gti is not None:
            raise ValueError("combining two GTI selections: intersect the GTIs first")
        return EventFilter(self.tests + other.tests, self.labels + other.labels, self.region or other.region,
                           self.gti if self.gti is not None else other.gti,
                           self.requested_gti if self.gti is not None else other.requested_gti,
                           other.band if self.band is None else _intersect_band(self.band, other.band))

    @property
    def columns(self) -> frozenset:
        """Event columns the tests read."""
        return frozenset().union(*(t.columns for t in self.tests))

    @property
    def contextual(self) -> bool:
        """True when a test judges a block's events together (see the class doc)."""
        return any(getattr(t, "contextual", False) for t in self.tests)

    def mask(self, cols: dict, n: int | None = None, stats: dict | None = None) -> np.ndarray:
        """Boolean (n,) mask of the events passing every test; ``cols`` maps
        column names to numpy blocks of equal length (all True without tests).
        Once few events are left, the remaining tests see only those.
        Contextual tests come last and add their counts to ``stats``."""
        if n is None:
            n = len(next(iter(cols.values())))
        plain = [t for t in self.tests if not getattr(t, "contextual", False)]
        out = _plain_mask(plain, cols, n)
        for t in self.tests:
            if getattr(t, "contextual", False):
                out = np.asarray(t(cols, out, stats), dtype=bool)
        return out

    def mask_blocks(self, names, *blocks) -> np.ndarray:
        """:meth:`mask` of positional blocks of the columns ``names`` (for ``dask``)."""
        return self.mask(dict(zip(names, blocks)), len(blocks[0]))


def _plain_mask(tests, cols, n) -> np.ndarray:
    """The mask of the (non-contextual) ``tests``; once fewer than n/8 events
    are left, the remaining tests see only those."""
    out = np.ones(n, dtype=bool)
    for k, t in enumerate(tests):
        left = np.count_nonzero(out) if k else n
        if k and left < n // 8:
            idx = np.flatnonzero(out)
            rest = tests[k:]
            sub = {c: np.asarray(cols[c])[idx] for c in frozenset().union(*(r.columns for r in rest))}
            out[idx] = _plain_mask(rest, sub, idx.size) if idx.size else out[idx]
            return out
        out &= np.asarray(t(cols), dtype=bool)
    return out


def _expression_test(events, text, screening: bool = False) -> ExpressionTest:
    """``text`` compiled on ``events``. A column it needs that the file lacks
    is explained: the mission's default screening (``screening``), or the
    PI/energy column of an energy selection."""
    try:
        compiled = compile_expression(text, column_dtypes(events), aliases=column_aliases(events),
                                      macros=macro_lookup(events))
    except ExpressionError as exc:
        if exc.column is None:
            raise
        if screening:
            prof = profile_of(events)
            raise ValueError(
                f"{_name(events)}: the {prof.mission} {prof.instrument} default screening ({text}) needs the "
                f"{exc.column.upper()} column, which this file lacks (columns: {_columns(events)}); skip the "
                "screening with --no-screen (screening=False in Python) or filter with --expr (expr=)"
            ) from None
        if exc.column.lower() in ("energy", "pi") and "energy" not in events.data_vars:
            raise ValueError(_no_energy(events)) from None
        raise
    _check_energy_units(events, compiled)
    return ExpressionTest(compiled)


#: a constant compared with ``energy`` [keV] above this many keV is taken for eV (any X-ray mission)
EV_LIKE_KEV = 1000.0


def _check_energy_units(events, compiled) -> None:
    """Warn (naming the file) when ``compiled`` compares ``energy`` [keV]
    with a constant far beyond the mission's energy range: above 10 times
    its upper end or above :data:`EV_LIKE_KEV`, i.e. a value in eV as CIAO's
    ``energy`` is. Looks at the expression's constants only, no event."""
    values = [v for c, v in compiled.comparisons if c == "energy"]
    if not values:
        return
    prof = profile_of(events)
    emin, emax = prof.energy_range
    limit = min(EV_LIKE_KEV, 10 * emax) if np.isfinite(emax) and emax > 0 else EV_LIKE_KEV
    big = [v for v in values if abs(v) > limit]
    if not big:
        return
    where = (f"the {prof.mission} {prof.instrument} range is {emin:g}-{emax:g} keV" if prof is not GENERIC
             else f"{limit:g} keV is beyond any X-ray instrument")
    hint = (", or filter the file's energy column in eV, 'energy_ev' (CIAO's energy)"
            if "energy_ev" in events.data_vars else "")
    warnings.warn(
        f"{_name(events)}: filter expression {compiled.text!r} compares 'energy' with "
        f"{', '.join(f'{v:g}' for v in big)}, but xcube's energy is in keV ({where}): were these eV? "
        f"Write keV ({big[0]:g} eV = {big[0] / 1000:g} keV){hint}",
        UserWarning, stacklevel=5,
    )


def screening_expression(events) -> str | None:
    """The mission's default screening expression of ``events`` (None when
    it has none; :func:`xcube.missions.screening_of`: the data mode picks
    it where the profile says so), checked against their columns:
    ``ValueError`` naming the file and the column it lacks, and how to skip
    the screening. Eager: compiles the expression against the column names and
    dtypes (a ``#`` macro may read the source header); no event is read."""
    text = screening_of(events)
    if text:
        _expression_test(events, text, screening=True)
    return text


def screening_expr(events, expr, screen: bool, source="") -> str | None:
    """``expr`` combined with the mission's screening of ``events`` when
    ``screen`` (:func:`screening_expression`, checked against the columns).
    Missions whose pipelines screen their event files already (NuSTAR,
    Chandra, NICER, ...) have none; events of an unknown mission get a
    warning naming ``source`` (default the events' ``source``), since they
    are not screened. Eager, small."""
    if not screen:
        return expr
    screening = screening_expression(events)
    if not screening:
        if profile_of(events) is GENERIC:
            log.warning("%s: unknown mission, so no standard screening; events are not screened (give "
                        "--instrument / instrument= to use a mission's)", source or _name(events))
        return expr
    return f"({expr}) && ({screening})" if expr else screening


def _no_energy(events) -> str:
    """Why ``events`` have no ``energy`` column, for an energy selection."""
    if "pi" in events.data_vars:
        prof = profile_of(events)
        return (f"{_name(events)}: no 'energy' column: the {prof.name!r} profile has no PI-to-energy conversion; "
                "select PI channels instead (expr='PI in [lo:hi]'), or give --instrument / instrument=")
    return (f"{_name(events)}: no PI (energy) column, which the energy band needs; columns: {_columns(events)}")


def _events_gti(events):
    """The events' own GTIs; ValueError naming the file without them."""
    try:
        return gtimod.from_dataset(events)
    except KeyError:
        raise ValueError(f"{_name(events)}: no gti_start/gti_stop variables to intersect with") from None


def _expression_good_time(events, compiled):
    """The good time [s] a filter expression's TIME cut leaves (within the
    events' GTIs), or None when it tests no time. An expression whose time
    test cannot be turned into good time (TIME with other columns in one
    term, e.g. ``PATTERN == 0 || TIME < t``, or in arithmetic) leaves the
    GTIs as they are for that term, with a warning naming it."""
    if compiled.time_mixed:
        warnings.warn(
            f"{_name(events)}: filter expression {compiled.text!r}: the time test in "
            f"{' and '.join(map(repr, compiled.time_mixed))} mixes TIME with other columns or arithmetic, so it "
            "cannot become good time; the GTIs and exposure are left as they were for it. For a time cut, compare "
            "TIME with numbers in a term of its own joined by && (e.g. 'PATTERN <= 12 && TIME < 1.2e8'), or "
            "use gti=[(start, stop)] (xcube lc --time-range)", stacklevel=5)
    current = _events_gti(events)
    if not current[0].size:
        return None
    cut = compiled.time_intervals(float(current[0][0]), float(current[1][-1]))
    return None if cut is None else gtimod.intersection(current, cut)


def _gti_test_intervals(events, gti):
    """(events' GTIs x requested, requested) for a GTI selection."""
    if "time" not in events.data_vars:
        raise ValueError(f"{_name(events)}: GTI selection needs the 'time' column")
    user = _as_gti(gti, events)
    current = _events_gti(events)
    new_gti = gtimod.intersection(current, user)
    if new_gti[0].size == 0:
        warnings.warn(f"{_name(events)}: gti={_fmt_gti(user)} does not overlap the events' GTIs; "
                      "no events and no exposure are left", stacklevel=4)
    return new_gti, user


def _count(m):
    return np.array([np.count_nonzero(m)], dtype=np.int64)


def _minmax(b):
    b = np.asarray(b)
    if b.size == 0:
        return np.array([[np.inf, -np.inf]])
    return np.array([[float(b.min()), float(b.max())]])


def _take(block, index):
    return block.take(index)


def _kept_index(packed, n):
    """Indices of the kept events of one block from its mask packed 8 per
    byte (``np.packbits``) and its length ``n`` (a 1-element array)."""
    return np.flatnonzero(np.unpackbits(packed, count=int(n[0])))


# --------------------------------------------------------------------------- application


class OwnGoodTimeTest:
    """``time`` inside the good time of the event's own CCD: ``groups`` of
    ``(gti, ccds)`` (GTI ``(start, stop)`` arrays [s], the CCD numbers in the
    ``column`` it applies to); events of other CCDs pass."""

    def __init__(self, column: str, groups):
        self.column = column
        self.columns = frozenset(["time", column])
        self.groups = [(g, np.asarray(list(c))) for g, c in groups]
        self.ccds = sorted(int(c) for _, cs in self.groups for c in cs)

    @property
    def label(self) -> str:
        """The selection label (str) naming the CCDs whose events are cut."""
        return f"gti=own CCD's (per-CCD GTIs of {self.column.upper()} {', '.join(map(str, self.ccds))})"

    def __call__(self, cols):
        """Mask of the block's events inside their CCD's GTIs (half-open): a
        1-D bool numpy array, one value per event of ``cols`` (column name
        -> 1-D numpy array). Eager on that block."""
        ccd, t = np.asarray(cols[self.column]), np.asarray(cols["time"])
        keep = np.ones(t.size, dtype=bool)
        for g, ccds in self.groups:
            m = np.isin(ccd, ccds)
            if m.any():
                keep[m] = gtimod.in_gti(t[m], g)
        return keep


def own_good_time_test(events, gti=None) -> OwnGoodTimeTest | None:
    """The test that keeps each event inside its own CCD's GTIs
    (:func:`xcube.gti.ccd_good_time`, clipped to ``gti``: default the
    events' GTIs), as SAS ``evselect`` with the STDGTInn tables; it checks
    the events of the CCDs whose good time is shorter than ``gti`` only.
    None when there is none (no per-CCD GTIs, no CCD column, or every CCD
    good throughout). Eager, small (the GTI tables)."""
    col = profile_of(events).ccd_variable
    if "ccd_gti_ccd" not in events.variables or not col or col not in events.variables:
        return None
    base = gtimod.normalize(*(gtimod.from_dataset(events) if gti is None else gti), warn=False)
    groups = {}  # the good time of CCDs shorter than `base` -> (gti, those CCDs)
    for c in (int(c) for c in np.unique(np.asarray(events["ccd_gti_ccd"].values))):
        own = gtimod.ccd_good_time(events, [c])
        if own is None:
            continue
        own = gtimod.intersection(own, base)
        if np.array_equal(own[0], base[0]) and np.array_equal(own[1], base[1]):
            continue
        groups.setdefault((own[0].tobytes(), own[1].tobytes()), (own, []))[1].append(c)
    return OwnGoodTimeTest(col, groups.values()) if groups else None


def apply_filter(events: xr.Dataset, filt: EventFilter) -> xr.Dataset:
    """The events ``filt`` keeps, in their order, with every other variable
    and the attrs unchanged (no selection label, GTI or band bookkeeping:
    :func:`select` does those). Lazy events stay lazy; eager: one pass of the
    filter to count the kept events per chunk (as :func:`select`)."""
    return _apply(events, filt)


def _apply(events: xr.Dataset, filt: EventFilter) -> xr.Dataset:
    event_vars = [n for n, v in events.variables.items() if "event" in v.dims]
    for n in event_vars:
        if events.variables[n].dims != ("event",):
            raise ValueError(f"{_name(events)}: variable {n!r} has dims {events.variables[n].dims}; "
                             "select handles 1-D event columns only")
    needed = sorted(filt.columns) or ["time"]
    fn = functools.partial(filt.mask_blocks, tuple(needed))
    rs = filt.region
    field = _selected_field(events) if rs is not None else None  # False: these events' own extent
    lazy = any(hasattr(events.variables[n].data, "map_blocks") for n in event_vars)
    if not lazy:
        cols = [np.asarray(events.variables[n].values) for n in needed]
        step = BLOCK_EVENTS if filt.contextual else max(len(cols[0]), 1)  # the events pass's blocks
        index = np.concatenate([np.flatnonzero(fn(*[c[a:a + step] for c in cols])) + a
                                for a in range(0, max(len(cols[0]), 1), step)])
        if rs is not None:
            check_in_field(rs, _extent_numpy(events) if field is False else field, _name(events))
        return _rebuild(events, {n: events.variables[n].values.take(index) for n in event_vars})

    import dask.array as da

    ref = next(events.variables[n].data for n in (["time"] + event_vars) if n in events.variables
               and hasattr(events.variables[n].data, "chunks"))
    chunks = ref.chunks
    if filt.contextual:  # the hygiene judges fixed blocks of events, whatever the chunks
        chunks = (event_blocks(ref.shape[0]),)
    arrays = {}
    for n in event_vars:
        a = events.variables[n].data
        if not hasattr(a, "map_blocks"):
            a = da.from_array(np.asarray(a), chunks=chunks)
        elif a.chunks != chunks:
            a = a.rechunk(chunks)
        arrays[n] = a
    mask = da.map_blocks(fn, *[arrays[n] for n in needed], dtype=bool)
    nb = mask.numblocks[0]
    # one evaluation of the filter: the kept counts and the mask itself, packed 8 events per byte (12.5 MB for
    # 1e8 events), from which the indices are taken when the result is read
    packed_chunks = tuple((c + 7) // 8 for c in chunks[0])
    todo = [mask.map_blocks(_count, chunks=((1,) * nb,), dtype=np.int64),
            mask.map_blocks(np.packbits, chunks=(packed_chunks,), dtype=np.uint8)]
    if rs is not None and field is False:
        for c in ("x", "y"):
            todo.append(arrays[c].map_blocks(_minmax, chunks=((1,) * nb, (2,)), new_axis=1, dtype=np.float64))
    res = compute(*todo)
    counts = tuple(int(c) for c in res[0])
    if rs is not None:
        ext = None if field is False else field
        if field is False and events.sizes["event"]:
            ext = (res[2][:, 0].min(), res[2][:, 1].max(), res[3][:, 0].min(), res[3][:, 1].max())
        check_in_field(rs, ext, _name(events))
    # indices of the kept events, once per chunk (flatnonzero + take is ~5x faster than boolean indexing)
    index = da.blockwise(_kept_index, "i", da.from_array(res[1], chunks=(packed_chunks,)), "i",
                         da.from_array(np.asarray(chunks[0], np.int64), chunks=1), "i", dtype=np.intp,
                         adjust_chunks={"i": counts}, align_arrays=False)
    new = {
        n: da.blockwise(_take, "i", arrays[n], "i", index, "i", dtype=arrays[n].dtype,
                        adjust_chunks={"i": counts}, align_arrays=False)
        for n in event_vars
    }
    log.debug("%s: kept %d of %d events", _name(events), sum(counts), events.sizes["event"])
    return _rebuild(events, new)


def _selected_field(events):
    """The field ``(xmin, xmax, ymin, ymax)`` [column units] a region is
    checked against (:func:`xcube.regions.check_in_field`) when ``events`` were
    already selected (``attrs["selection"]``): the X/Y column range
    (TLMIN/TLMAX, attrs ``x_min``...), not the extent of the events an earlier
    cut (CCD, energy, time) left, so a region that only misses those gives no
    event, as in one ``select`` call; None (no check) without the attrs.
    ``False`` for events not selected before: their own extent is the field."""
    if not events.attrs.get("selection"):
        return False
    try:
        ext = tuple(float(events.attrs[k]) for k in ("x_min", "x_max", "y_min", "y_max"))
    except (KeyError, TypeError, ValueError):
        return None
    return ext if np.isfinite(ext).all() and ext[0] < ext[1] and ext[2] < ext[3] else None


def _extent_numpy(events):
    if not events.sizes["event"]:
        return None
    x, y = events["x"].values, events["y"].values
    return (float(x.min()), float(x.max()), float(y.min()), float(y.max()))


def _variable(v: xr.Variable, data) -> xr.Variable:
    enc = {k: val for k, val in v.encoding.items() if k not in _DROP_ENCODING}
    return xr.Variable(v.dims, data, attrs=dict(v.attrs), encoding=enc)


def _rebuild(events: xr.Dataset, new: dict) -> xr.Dataset:
    data_vars = {
        n: (_variable(events.variables[n], new[n]) if n in new else events.variables[n]) for n in events.data_vars
    }
    coords = {n: (_variable(events.variables[n], new[n]) if n in new else events.variables[n]) for n in events.coords}
    return xr.Dataset(data_vars, coords=coords, attrs=dict(events.attrs))


def _replace_gti(ds: xr.Dataset, new_gti, user) -> xr.Dataset:
    data_vars = {n: ds.variables[n] for n in ds.data_vars if "gti" not in ds.variables[n].dims
                 and "ccd_gti" not in ds.variables[n].dims}
    units = {"units": "s"}
    gvars = {
        "gti_start": xr.Variable(("gti",), np.asarray(new_gti[0], np.float64), units),
        "gti_stop": xr.Variable(("gti",), np.asarray(new_gti[1], np.float64), units),
    }
    if "ccd_gti_ccd" in ds:
        ccd = np.asarray(ds["ccd_gti_ccd"].values)
        s, e = np.asarray(ds["ccd_gti_start"].values), np.asarray(ds["ccd_gti_stop"].values)
        own = {c: gtimod.intersection((s[ccd == c], e[ccd == c]), user) for c in dict.fromkeys(ccd.tolist())}
        g0 = np.asarray(new_gti[0], np.float64)  # (a CCD left without good time keeps a zero-length row)
        cc, ss, ee = gtimod.ccd_rows(own, float(g0[0]) if g0.size else 0.0)
        gvars["ccd_gti_ccd"] = xr.Variable(("ccd_gti",), np.asarray(cc, dtype=ccd.dtype))
        gvars["ccd_gti_start"] = xr.Variable(("ccd_gti",), ss, units)
        gvars["ccd_gti_stop"] = xr.Variable(("ccd_gti",), ee, units)
    # keep the original variable order
    ordered = {}
    for n in ds.data_vars:
        ordered[n] = gvars.pop(n) if n in gvars else data_vars[n]
    ordered.update(gvars)
    attrs = dict(ds.attrs)
    attrs["exposure"] = gtimod.exposure(new_gti)
    return xr.Dataset(ordered, coords={n: ds.variables[n] for n in ds.coords}, attrs=attrs)


# --------------------------------------------------------------------------- checks and helpers


def _name(events) -> str:
    return str(events.attrs.get("source") or events.attrs.get("obs_id") or "events")


def _columns(events) -> str:
    return ", ".join(sorted(column_dtypes(events)))


def check_events(events) -> None:
    """Raise TypeError unless ``events`` is an EventList (Dataset with dim
    ``event``). A type check; reads nothing. Eager."""
    if not isinstance(events, xr.Dataset) or "event" not in events.dims:
        raise TypeError(f"select needs an EventList (xr.Dataset with dim 'event'), got {type(events).__name__}"
                        + (f" with dims {tuple(events.dims)}" if isinstance(events, xr.Dataset) else ""))


def column_dtypes(events) -> dict:
    """Event column name -> dtype (read from the variables: no DataArray is
    built). Eager; no data read."""
    coords = set(events.coords)
    return {n: v.dtype for n, v in events.variables.items() if v.dims == ("event",) and n not in coords}


def column_aliases(events) -> dict:
    """The mission's file column names (lower case) -> xcube column names.
    Eager (profile look-up)."""
    return {v.lower(): k for k, v in profile_of(events).columns.items()}


def _band_pair(band) -> tuple[float, float]:
    """``(emin, emax)`` [keV] of ``band`` as floats; TypeError/ValueError unless ``0 <= emin < emax``."""
    try:
        lo, hi = (float(v) for v in band)
    except (TypeError, ValueError):
        raise TypeError(f"energy_band must be a pair (emin, emax) in keV, got {band!r}") from None
    if np.isnan(lo) or np.isnan(hi) or not lo < hi or lo < 0:
        raise ValueError(f"energy_band={band!r}: need 0 <= emin < emax (keV)")
    return lo, hi


def _cut_band(events) -> tuple[float, float] | None:
    """The band [keV] ``select`` cut ``events`` to (``attrs["energy_band"]``), or None."""
    done = events.attrs.get("energy_band")
    if done is None or np.ndim(done) != 1 or len(done) != 2:
        return None
    return float(done[0]), float(done[1])


def _intersect_band(a, b) -> tuple[float, float]:
    """Intersection of the bands ``a`` and ``b`` [keV] (``b`` None: ``a``);
    ``(e, e)`` when they do not overlap."""
    if b is None:
        return a
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    return lo, max(lo, hi)


def _fmt_band(band) -> str:
    return f"{band[0]:g}-{band[1]:g} keV"


def expression_band(events, expr) -> tuple[float, float] | None:
    """The energy band ``(emin, emax)`` [keV] a filter expression (text, or
    compiled on ``events``) cuts ``events`` to, from its top-level AND terms that compare only PI or only
    the energy with numbers (``"PATTERN <= 12 && PI in [500:2000]"`` ->
    (0.5, 2.001) for XMM, PI in eV): the span of the values they let pass,
    from the lowest to the highest, single channels and values included
    (``PI == 1000`` -> (1.0, 1.001); ``PI in [500:1000, 1500]`` -> (0.5, 1.501),
    the span of a set with gaps, so that a product cut to it keeps every event
    the expression keeps), PI converted by the mission profile and energy edges
    rounded as the ``energy`` column's dtype compares them, within the profile's calibrated
    ``energy_range`` or beyond it (``PI <= 2000`` -> (0.0, 2.001): the channels
    below the range are kept too); ``(0, 0)`` when nothing passes; None when
    no such term narrows that range, when the span lies outside it, or when PI has
    no energy calibration. Eager, tiny: parses ``expr``, reads no event."""
    if not expr:
        return None
    compiled = expr if isinstance(expr, Expression) else _expression_test(events, expr).compiled
    spans = []
    prof = profile_of(events)
    if prof.pi_to_kev is not None and prof is not GENERIC:
        lo, hi = prof.pi_range
        pis = compiled.value_set("pi", float(lo) - 2.0**31, float(hi) + 2.0**31)  # (any PI a column holds)
        if pis is not None:
            channels = _channel_span(*pis)
            if channels is None:
                return 0.0, 0.0
            # the first and last whole channels that pass, within the profile's channels (none there: no band
            # to tell): the band [E(first), E(last + 1)) holds them all
            first, last = max(channels[0], float(lo)), min(channels[1], float(hi))
            if last < first:
                return None
            kev, full = _kev_of_pi(prof, [first, last + 1.0]), _kev_of_pi(prof, [float(lo), float(hi) + 1.0])
            if kev[0] > full[0] or kev[1] < full[1]:
                spans.append((max(float(kev[0]), 0.0), float(kev[1])))
    kevs = compiled.value_set("energy", 0.0, 1e4)
    if kevs is not None:
        ends = _value_span(*kevs)
        if ends is None:
            return 0.0, 0.0
        (a, a_in), (b, b_in) = ends
        if not (a == 0.0 and a_in and b == 1e4 and b_in):  # [a, b) as the band's half-open form
            e = events.variables.get("energy")
            dt = e.dtype if e is not None and e.dtype.kind == "f" else np.dtype(np.float64)
            spans.append((_band_edge(a, not a_in, dt), _band_edge(b, b_in, dt)))
    band = None
    for span in spans:
        band = _intersect_band(span, band)
    if band is None or not band[0] < band[1]:
        return band
    rng = tuple(float(v) for v in prof.energy_range)
    if np.isfinite(rng).all():  # no band to tell when it holds the calibrated range, or lies outside it (PI > 15000
        # on MOS); else the band as the expression cuts it, also beyond the range (PI <= 2000 keeps PI 0-149, below
        # MOS's 0.15 keV: a product cut to (0.15, 2.001) would lose them)
        inside = _intersect_band(band, rng)
        if not inside[0] < inside[1] or inside == rng:
            return None
    return band


def _channel_span(points, start, stop) -> tuple[float, float] | None:
    """The first and last whole channels (integers) of the values ``points``
    and open intervals ``(start, stop)`` (:meth:`Expression.value_set`), or None without any."""
    whole = points[points == np.floor(points)]
    a, b = np.floor(start) + 1.0, np.ceil(stop) - 1.0  # the channels strictly inside each interval
    firsts, lasts = np.concatenate([whole, a[a <= b]]), np.concatenate([whole, b[a <= b]])
    return (float(firsts.min()), float(lasts.max())) if firsts.size else None


def _value_span(points, start, stop):
    """``((lowest, it passes), (highest, it passes))`` of the values ``points``
    and open intervals ``(start, stop)`` (:meth:`Expression.value_set`), or None without any."""
    if not points.size and not start.size:
        return None
    lows = [(float(v), True) for v in points[:1]] + [(float(v), False) for v in start[:1]]
    highs = [(float(v), True) for v in points[-1:]] + [(float(v), False) for v in stop[-1:]]
    a, b = min(v for v, _ in lows), max(v for v, _ in highs)
    return (a, any(v == a and p for v, p in lows)), (b, any(v == b and p for v, p in highs))


def _band_edge(value: float, up: bool, dtype) -> float:
    """``value`` [keV] as the ``energy`` column's float ``dtype`` compares it, or the next
    value of that dtype above it (``up``: an open lower edge, or a closed upper one of the
    half-open band), as a float: the band keeps exactly the events the comparison keeps."""
    v = dtype.type(value)
    return float(np.nextafter(v, dtype.type(np.inf)) if up else v)


def _kev_of_pi(prof, pi) -> np.ndarray:
    """Energies [keV] of PI values in float64 (a linear relation exactly: PI 2001 is 2.001 keV for XMM)."""
    f = prof.pi_to_kev
    if hasattr(f, "kev_per_channel"):
        return f.offset_kev + f.kev_per_channel * np.asarray(pi, np.float64)
    return np.asarray(f(np.asarray(pi)), np.float64)


def applied_band(events, energy_band=None, *, warn: bool = True,
                 expr=None) -> tuple[float, float] | list[tuple[float, float]] | None:
    """The band ``(emin, emax)`` [keV] a product or search of ``energy_band``
    really covers on ``events``: the request intersected with the band
    ``select`` already cut the events to (``attrs["energy_band"]``; of every
    EventList when ``events`` is a list of cameras) and with the one the
    filter expression ``expr`` applied with it cuts (:func:`expression_band`).
    ``energy_band`` None asks for the whole range: the band already applied,
    or None when there is none. The request as floats when no band was
    applied. ``energy_band`` a list of bands (2-D, a multi-band request):
    the list of their bands, ``expr`` compiled once per EventList for all.

    When the cut narrows the request, logs a warning (``warn``) naming the
    file (``attrs["source"]``) and both bands; when they do not overlap,
    raises ``ValueError`` naming them. Attrs and ``expr`` only; no event is
    read.
    Eager.
    """
    evs = [events] if isinstance(events, xr.Dataset) else list(events)
    many = energy_band is not None and np.ndim(energy_band) == 2
    wants = [_band_pair(b) for b in energy_band] if many else [
        _band_pair(energy_band) if energy_band is not None else None]
    cuts = []  # per EventList: the band select() cut it to and the expression's (compiled here, once)
    for ev in evs:
        done = _cut_band(ev)
        in_expr = expression_band(ev, expr) if expr else None
        cuts.append(done if in_expr is None else _intersect_band(in_expr, done))
    bands = [_narrowed(evs, cuts, want, warn, expr) for want in wants]
    return bands if many else bands[0]


def _narrowed(evs, cuts, want, warn: bool, expr=None):
    """``want`` [keV] (or None) intersected with the bands ``cuts`` (one per EventList of ``evs``, or
    None) the events were cut to (with ``select`` or by the filter ``expr``): see :func:`applied_band`."""
    band, cut = want, None
    for ev, done in zip(evs, cuts):
        if done is None:
            continue
        cut = _intersect_band(done, cut)
        new = _intersect_band(done, band)
        if not new[0] < new[1]:
            if not done[0] < done[1]:
                cuts_made = [c for c in ev.attrs.get("selection", []) if c.startswith(("energy_band=", "expr="))]
                cuts_made += [f"expr={expr}"] if expr else []
                why = (f"the energy cuts made ({'; '.join(cuts_made) or 'select(energy_band=...)'}) leave no energy "
                       f"(attrs['energy_band'] = {list(done)}: bands that do not overlap, or PI/energy terms of a "
                       "filter expression that nothing passes): no event is left")
            else:
                why = (f"energy_band={_fmt_band(want)} does not overlap the band the events were already cut to, "
                       f"{_fmt_band(done)} (select(energy_band=...); attrs['energy_band']): no event would remain")
            raise ValueError(f"{_name(ev)}: {why}")
        band = new
    if warn and want is not None and band != want:
        log.warning("%s: the events were already cut to %s (select(energy_band=...), or the filter expression), "
                    "so the requested band %s "
                    "is narrowed to %s (the band used and labelled)", ", ".join(_name(e) for e in evs),
                    _fmt_band(cut), _fmt_band(want), _fmt_band(band))
    return band


def energy_band_bounds(events, band, need_column: bool = True) -> tuple[float, float]:
    """Validated ``(emin, emax)`` [keV] of an energy band on ``events`` (see
    :func:`select`): ``ValueError`` naming the file for a mission without an
    energy scale (Chandra HRC, RXTE PCA), a band outside the profile's
    ``energy_range`` or (with ``need_column``) events without an ``energy``
    column; a warning for a band reaching outside that range. Eager (attrs
    and the profile; no event is read)."""
    lo, hi = _band_pair(band)
    prof = profile_of(events)
    if prof.pi_to_kev is None and prof is not GENERIC:
        raise BandOutsideInstrument(
            f"{_name(events)}: {prof.mission} {prof.instrument} has no energy scale - no PI-to-energy conversion "
            f"({prof.energy_note}) - so no energy band can be cut from its events; select PI channels with "
            "expr='PI in [lo:hi]' (xcube.select, lightcurve, ...) instead of energy_band"
        )
    if need_column and "energy" not in events.data_vars:
        raise ValueError(_no_energy(events))
    if prof is not GENERIC:
        emin, emax = prof.energy_range
        if hi <= emin or lo >= emax:
            raise BandOutsideInstrument(
                f"energy_band=[{lo:g}, {hi:g}) keV lies outside the {prof.mission} {prof.instrument} "
                f"energy range {emin:g}-{emax:g} keV (profile {prof.name!r}); no useful events would remain"
            )
        if lo < emin or hi > emax:
            warnings.warn(
                f"energy_band=[{lo:g}, {hi:g}) keV reaches outside the {prof.mission} {prof.instrument} "
                f"calibrated range {emin:g}-{emax:g} keV (profile {prof.name!r})",
                stacklevel=4,
            )
    return lo, hi


def macro_lookup(events):
    """``#NAME`` -> filter text: the events' attrs, then the source file's
    EVENTS header (read once, only if a macro is used), else None. Eager; the
    returned function reads the header at most once, when first asked."""
    attrs = {str(k).upper(): v for k, v in events.attrs.items() if isinstance(v, str)}
    header = {}

    def lookup(name):
        key = name.upper()
        if key in attrs:
            return attrs[key]
        if "h" not in header:
            header["h"] = _source_header(events.attrs.get("source"))
        v = header["h"].get(key)
        return v if isinstance(v, str) else None

    return lookup


def _source_header(source) -> dict:
    if not source:
        return {}
    p = Path(str(source))
    if not p.is_file():
        return {}
    try:
        from astropy.io import fits

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            h = fits.getheader(p, "EVENTS")
        return {k.upper(): h[k] for k in h if k}
    except Exception as exc:  # not FITS, no EVENTS: the macro is then looked up in the built-ins
        log.debug("%s: no EVENTS header for macros (%s)", p, exc)
        return {}


def _is_gti_table(gti) -> bool:
    """A GTI file path or an OGIP GTI table (HDU, HDUList, Table, record array, DataFrame)."""
    if isinstance(gti, (str, os.PathLike)):
        return True
    names = getattr(getattr(gti, "dtype", None), "names", None) or getattr(gti, "colnames", None)
    return bool(names) or hasattr(gti, "header") or hasattr(gti, "iloc") or type(gti).__name__ == "HDUList"


def _as_gti(gti, events=None):
    """The user's ``gti=``: a GTI file or OGIP table here (it needs the
    events' time frame), every other form by :func:`xcube.gti.as_gti` (one
    rule: a tuple is ``(starts, stops)``, a list or array holds
    ``(start, stop)`` rows)."""
    if _is_gti_table(gti):
        from .io.ogip import gti_table

        return gti_table(gti, events)
    date = _a_date(gti)
    if date is not None:
        raise TypeError(
            f"gti=: {date!r} is not a number; GTI times are seconds of mission time (the TIME column's: "
            f"{(events.attrs.get('timesys') if events is not None else None) or 'TT'} seconds since MJDREF"
            + (f" = {events.attrs['mjdref']}" if events is not None and events.attrs.get("mjdref") else "")
            + "); convert a date first, e.g. (Time('2001-03-09T13:00:00', scale='utc').tt.mjd - MJDREF) * 86400 "
            "with astropy.time.Time")
    return gtimod.as_gti(gti, source="gti=", warn=True)


def _a_date(gti, depth: int = 0):
    """The first string, ``datetime``, ``datetime64`` or astropy ``Time`` in a
    ``gti=`` tuple or list (two levels deep), or None."""
    import datetime

    if isinstance(gti, (str, bytes)):
        try:
            float(gti)
        except ValueError:
            return gti
        return None
    if isinstance(gti, (datetime.date, np.datetime64)) or type(gti).__name__ == "Time":
        return gti
    if isinstance(gti, np.ndarray) and gti.dtype.kind in "MUSO":
        return next((d for d in map(_a_date, gti.flat) if d is not None), None) if gti.dtype.kind != "M" else (
            gti.flat[0] if gti.size else None)
    if isinstance(gti, (tuple, list)) and depth < 2:
        for g in gti:
            found = _a_date(g, depth + 1)
            if found is not None:
                return found
    return None


def _fmt_gti(g) -> str:
    s, e = g
    if s.size == 1:
        return f"[{s[0]:.6f}, {e[0]:.6f}) s"
    return f"{s.size} intervals in [{s[0]:.6f}, {e[-1]:.6f}) s, {float(np.sum(e - s)):.3f} s"
