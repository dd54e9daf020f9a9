"""Reading OGIP light curves (OGIP/93-003 ``RATE`` tables) of any mission:
:func:`read_lightcurve` gives the Dataset of :func:`xcube.lightcurve`.

The conventions read (TIMEZERO, TIMEPIXR, TIMEUNIT and the TIME column's own
unit, TIMEDEL or XRONOS's XAX_E, FRACEXP or the GTI table, corrected and
uncorrected rates, several bands as a vector column or as XRONOS series)
are listed in :func:`read_lightcurve`'s docstring and in ``docs/products.md``.
Eager: light curves are small.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from astropy.io import fits

from .. import gti as gtimod
from ..missions import mission_name
from .fitsutil import (
    TableColumns,
    column_time_scale,
    extension,
    find_column,
    open_fits,
    time_scale,
)
from .ogip import counts_array, find_gti_hdu, gti_of_hdu, read_timezero, time_reference_attrs

__all__ = ["read_lightcurve", "stack_bands"]


def is_lightcurve_hdu(h) -> bool:
    """Whether an HDU is a light-curve table (a binary table with HDUCLAS1 = 'LIGHTCURVE', or 'LIGHT
    CURVE' as XRONOS writes it, or EXTNAME 'RATE'/'LIGHTCURVE'), as :func:`read_lightcurve` looks for it
    (headers only)."""
    return isinstance(h, fits.BinTableHDU) and (
        str(h.header.get("HDUCLAS1", "")).strip().upper() in ("LIGHTCURVE", "LIGHT CURVE")
        or h.name.upper() in ("RATE", "LIGHTCURVE"))


def _find_rate_hdu(hdul, extname, path):
    if extname is not None:
        return extension(hdul, extname, path)
    for h in hdul[1:]:
        if is_lightcurve_hdu(h):
            return h
    raise ValueError(
        f"{path}: no light-curve table (HDUCLAS1='LIGHTCURVE' or EXTNAME='RATE'; extensions: "
        f"{[h.name for h in hdul]}); pass extension="
    )


def _column_time_scale(hdu, name, default: float, path) -> float:
    """Seconds per unit of column ``name`` from its TUNIT (``s`` or ``d``), else
    ``default``; another unit (e.g. ``'MJD'``, not a duration) with a warning
    and ``default`` (:func:`~xcube.io.fitsutil.column_time_scale`)."""
    names = hdu.columns.names
    if name not in names:
        return default
    return column_time_scale(hdu.header, names.index(name) + 1, name, default, f"{path}[{hdu.name}]", strict=False,
                             stacklevel=5)


def read_lightcurve(path, *, extension: str | None = None, gti_extension: str | None = None,
                    bands=None) -> xr.Dataset:
    """Read an OGIP light curve (OGIP/93-003 ``RATE`` table) into the form of
    :func:`xcube.lightcurve`.

    Returns a Dataset on dim ``time`` with coords ``time`` (bin centre [s]),
    ``time_lo``/``time_hi``, ``exposure`` [s] and ``fracexp``; variables
    ``counts``, ``rate``, ``rate_err`` [count/s] (and ``bkg_rate``/``bkg_rate_err``
    from BACKV/BACKE); ``gti_start``/``gti_stop``; attrs ``mjdref``,
    ``timesys``, ``mission`` (the profile's name, e.g. XMM-Newton, else
    TELESCOP), ``instrument`` (INSTRUME), ``hduclas2``, ``rate_kind``
    (what RATE holds: ``"total"``, ``"net"`` for HDUCLAS2 = 'NET' or BACKAPP =
    T, ``"background"`` for 'BKG'; :func:`xcube.rebin_lightcurve` then
    averages that rate instead of recomputing it from the counts),
    ``source``. Eager (light curves are small).

    Conventions read:
    - times are ``TIME + TIMEZERO`` (or the split ``TIMEZERI + TIMEZERF``,
      preferred when present; a warning when both forms disagree);
      ``TIMEPIXR`` places TIME in the bin (absent: 0.5, the bin centre, as
      SAS and xcube write it); ``TIMEDEL`` keyword or column gives the width;
      TIMEUNIT 's' or 'd'.
    - exposure = TIMEDEL x FRACEXP. Without a FRACEXP column the fraction is
      the per-bin EXPOSURE column [s] over the bin width (CIAO ``dmextract``:
      the bin's live exposure, dead time included; a column in another unit,
      e.g. Fermi's cm**2 s, is not used, with a warning), else it is
      computed from the GTI table (``gti_extension``, default the first GTI
      table in the file; per-CCD files hold several - pick the source CCD's).
      The GTI table is read by :func:`xcube.io.ogip.gti_of_hdu`, as
      ``read_gti`` and ``xcube info`` read it: START/STOP in their TUNITn,
      else the GTI table's TIMEUNIT, else the light curve's ('s' or 'd'),
      plus the GTI table's own TIMEZERO (or TIMEZERI + TIMEZERF), else the
      primary header's (not the RATE table's own), moved into the RATE
      table's MJDREF when the GTI table has another.
    - a bin whose RATE (or, without RATE, COUNTS) is NaN or infinite has no
      valid measurement: it gets FRACEXP = 0 (no exposure; counts 0, rate
      NaN), as the PPS FBKTSR files write it, and its time is taken out of
      the GTIs; a warning counts the bins the file gave exposure to.
    - counts: a COUNTS column when present (in an xcube NET file the gross
      source-region counts, in a BKG file the background region's raw counts;
      see ``rate_kind``); otherwise ``RATE x exposure`` when
      the rate is exposure-corrected (``FRACCORR = T`` as xcube writes, else
      DEADAPP = T, the SAS ``epiclccorr``/PPS convention) and ``RATE x TIMEDEL`` when it is not (``evselect``,
      ``extractor``; then ``rate`` = counts / exposure). Counts that are whole numbers to
      1e-3 are returned as int64.
    - errors: ERROR (or RATE_ERR, RATE_ERRM/RATE_ERRP) are those of RATE; in a
      table without RATE (HDUCLAS3 = 'COUNT') they are count errors and are
      divided by the exposure (NaN where it is 0), unless their TUNIT is a
      rate; without an error column, sqrt(counts) / exposure. A CIAO
      ``dmextract`` table (COUNTS, no RATE) gives the rate from COUNT_RATE
      and its error from COUNT_RATE_ERR (else STAT_ERR / exposure), NaN
      where the exposure is 0.
    - several bands: when RATE (or COUNTS) is a vector column of k elements
      (the eROSITA ``srctool`` layout, RATE of shape (n, 3)), every vector
      column gives one value per band and the result has a ``band``
      dimension (coords ``band`` label, ``energy_lo``/``energy_hi`` [keV] from
      ``bands=[(emin, emax), ...]`` or the keywords E_MIN<i>/E_MAX<i>).
      Asymmetric errors RATE_ERRM/RATE_ERRP give ``rate_err`` (their mean).
    """
    with open_fits(path, memmap=False) as hdul, np.errstate(invalid="ignore", divide="ignore"):
        hdu = _find_rate_hdu(hdul, extension, path)
        h = dict(hdul[0].header)
        h.update(hdu.header)
        series = _series_numbers(hdu.columns.names)
        if len(series) == 1:  # XRONOS lcurve: RATE1/ERROR1
            return _read_lc_table(hdul, hdu, h, _SeriesColumns(TableColumns(hdu), hdu.columns.names, series[0]), path,
                                  gti_extension)
        if series:
            parts = [_read_lc_table(hdul, hdu, h, _SeriesColumns(TableColumns(hdu), hdu.columns.names, k), path,
                                    gti_extension) for k in series]
            return stack_bands(parts, _band_edges(h, len(series), bands, path))
        n_bands = _band_count(hdu)
        if n_bands is None:
            return _read_lc_table(hdul, hdu, h, TableColumns(hdu), path, gti_extension)
        parts = [_read_lc_table(hdul, hdu, h, _BandColumns(TableColumns(hdu), j), path, gti_extension)
                 for j in range(n_bands)]
        return stack_bands(parts, _band_edges(h, n_bands, bands, path))


class _BandColumns:
    """Columns of a multi-band light-curve table seen as one band: vector
    columns (n, k) give their j-th element, scalar columns themselves."""

    def __init__(self, data, j: int):
        self.data, self.j = data, j

    def __getitem__(self, name):
        a = np.asarray(self.data[name])
        return a[:, self.j] if a.ndim == 2 else a


class _SeriesColumns:
    """Series ``k`` of an XRONOS ``lcurve`` table (columns RATE<k>, ERROR<k>)
    seen as a plain light curve: RATE and ERROR are that series' columns."""

    def __init__(self, data, names, k: int):
        self.data = data
        series = {f"{c}{j}" for j in _series_numbers(names) for c in ("RATE", "ERROR")}
        self._map = {c: find_column(names, f"{c}{k}") for c in ("RATE", "ERROR")}
        self._map = {c: name for c, name in self._map.items() if name is not None}
        self.names = [n for n in names if n.upper() not in series] + list(self._map)

    def __getitem__(self, name):
        return self.data[self._map.get(name, name)]


def _series_numbers(names) -> list:
    """The k of the RATE<k> columns (XRONOS ``lcurve`` output), when there is no RATE column."""
    upper = [n.upper() for n in names]
    if "RATE" in upper:
        return []
    return sorted(int(n[4:]) for n in upper if n.startswith("RATE") and n[4:].isdigit())


def _band_count(hdu) -> int | None:
    """Number of bands of a table whose RATE (or COUNTS) is a vector column, else None."""
    for name in ("RATE", "COUNTS"):
        col = find_column(hdu.columns.names, name)
        if col is not None:
            a = np.asarray(TableColumns(hdu)[col])
            if a.ndim == 2 and a.shape[1] > 1:
                return int(a.shape[1])
            return None
    return None


def _band_edges(h: dict, k: int, bands, path) -> list:
    """``[(emin, emax)]`` [keV] of the k bands: ``bands=`` if given, else the
    keywords E_MIN<i>/E_MAX<i> (i = 1..k), else NaN (unknown)."""
    if bands is not None:
        bands = [tuple(float(v) for v in b) for b in bands]
        if len(bands) != k:
            raise ValueError(f"{path}: the light curve has {k} bands; bands= lists {len(bands)}")
        return bands
    if all(f"E_MIN{i}" in h and f"E_MAX{i}" in h for i in range(1, k + 1)):
        return [(float(h[f"E_MIN{i}"]), float(h[f"E_MAX{i}"])) for i in range(1, k + 1)]
    warnings.warn(f"{path}: {k} energy bands without E_MIN<i>/E_MAX<i> keywords; band edges unknown (NaN), "
                  "pass bands=[(emin, emax), ...] [keV]", stacklevel=3)
    return [(np.nan, np.nan)] * k


def stack_bands(parts: list, edges: list) -> xr.Dataset:
    """Stack single-band light curves (same time bins) on a ``band``
    dimension with coords ``band`` (``"0.5-2keV"``, or ``band<i>`` when the
    edges are unknown), ``energy_lo``/``energy_hi`` [keV]. Variables on
    ``time`` gain the band dimension; the time coordinates (``exposure``) and
    the GTIs are taken from the first band. Lazy when the parts are
    (``xr.concat``); nothing is computed."""
    import pandas as pd

    labels = [f"{a:g}-{b:g}keV" if np.isfinite(a) else f"band{i}" for i, (a, b) in enumerate(edges)]
    timed = [p.drop_vars([v for v in p.data_vars if "time" not in p[v].dims]) for p in parts]
    lc = xr.concat(timed, dim=pd.Index(labels, name="band"), data_vars="all", coords="minimal",
                   compat="override", combine_attrs="override")
    for v in parts[0].data_vars:
        if "time" not in parts[0][v].dims:
            lc[v] = parts[0][v]
    lc = lc.assign_coords(energy_lo=("band", [float(e[0]) for e in edges], {"units": "keV"}),
                          energy_hi=("band", [float(e[1]) for e in edges], {"units": "keV"}))
    lc.attrs["energy_band"] = [[float(e[0]), float(e[1])] for e in edges]
    return lc


def _read_lc_table(hdul, hdu, h, data, path, gti_extension) -> xr.Dataset:
    """One light curve from the columns ``data`` of the RATE table ``hdu``."""
    names = getattr(data, "names", None) or hdu.columns.names
    if find_column(names, "TIME") is None or (find_column(names, "RATE") is None
                                              and find_column(names, "COUNTS") is None):
        raise ValueError(
            f"{path}[{hdu.name}]: a light curve needs TIME and RATE or COUNTS columns (columns: {names})"
        )
    lo, hi = _bins(hdu, h, data, names, path)
    gti_h = find_gti_hdu(hdul, gti_extension, path)
    gti = gti_of_hdu(gti_h, path, h, primary=hdul[0].header) if gti_h is not None else None
    invalid = _invalid_bins(data, names)
    live = _live_exposure(hdu, h, data, names, path)
    fracexp, gti = _fracexp(data, names, lo, hi, gti, gti_h.name if gti_h is not None else None, path, invalid,
                            live)
    corrected = _flag(h.get("FRACCORR", h.get("DEADAPP", False))) or _rate_corrected_by_tool(h)
    counts, rate, err = _counts_and_rates(data, names, hi - lo, fracexp, corrected, _error_unit(hdu, names))
    coords = {
        "time": ("time", 0.5 * (lo + hi), {"units": "s"}),
        "time_lo": ("time", lo, {"units": "s"}),
        "time_hi": ("time", hi, {"units": "s"}),
        "exposure": ("time", (hi - lo) * fracexp, {"units": "s"}),
        "fracexp": ("time", fracexp),
    }
    data_vars = {
        "counts": ("time", counts, {"units": "count", "long_name": "counts in the bin"}),
        "rate": ("time", rate, {"units": "count/s", "long_name": "count rate"}),
        "rate_err": ("time", err, {"units": "count/s", "long_name": "error of the count rate"}),
        "gti_start": ("gti", gti[0], {"units": "s"}),
        "gti_stop": ("gti", gti[1], {"units": "s"}),
    }
    data_vars.update(_background_rates(data, names, fracexp, corrected))
    coords.update(_per_bin_columns(data, names))
    attrs = _attrs(path, hdu, h, lo, hi, gti_h.name if gti_h is not None else None)
    if find_column(names, "COUNTS") is None and corrected:  # (RATE x exposure of a corrected rate: no photons)
        attrs["counts_from_rate"] = True
    from ..times import reference_on_time

    return reference_on_time(xr.Dataset(data_vars, coords=coords, attrs=attrs))


def _bins(hdu, h, data, names, path):
    """``(lo, hi)`` [s] of every bin: TIME (+ TIMEZERO) placed by TIMEPIXR, the width from TIMEDEL
    (column or keyword, in TIMEUNIT), else XAX_E (half the width), else the median TIME step."""
    scale = time_scale(h.get("TIMEUNIT", "s"), path)  # TSTART, TSTOP, TIMEZERO, TIMEDEL (OGIP/93-003)
    tcol = find_column(names, "TIME")
    col_scale = _column_time_scale(hdu, tcol, scale, path)  # the TIME column in its own TUNIT, if it has one
    time = np.asarray(data[tcol], np.float64) * col_scale + read_timezero(h, path) * scale
    dcol, xcol = find_column(names, "TIMEDEL"), find_column(names, "XAX_E")
    if dcol is not None:
        width = np.asarray(data[dcol], np.float64) * _column_time_scale(hdu, dcol, scale, path)
    elif "TIMEDEL" in h:
        width = np.full(time.shape, float(h["TIMEDEL"]) * scale)
    elif xcol is not None:  # XRONOS: half the bin width, in the TIME column's unit
        width = 2.0 * np.asarray(data[xcol], np.float64) * _column_time_scale(hdu, xcol, col_scale, path)
    elif time.size > 1:
        width = np.full(time.shape, float(np.median(np.diff(time))))
        warnings.warn(f"{path}: no TIMEDEL keyword; using the median TIME step {width[0]} s", stacklevel=4)
    else:
        raise ValueError(f"{path}[{hdu.name}]: no TIMEDEL keyword or column; cannot define the bins")
    bad = ~(np.isfinite(width) & (width > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = ("the TIMEDEL column" if dcol is not None else "the TIMEDEL keyword" if "TIMEDEL" in h else
                "the XAX_E column" if xcol is not None else "the median TIME step")
        raise ValueError(f"{path}[{hdu.name}]: a bin width of {width[i]!r} s (from {what}, row {i + 1}) is not a "
                         "positive number; cannot define the bins")
    back = np.flatnonzero(np.diff(time) < 0)
    if back.size:
        i = int(back[0])
        raise ValueError(f"{path}[{hdu.name}]: TIME decreases at row {i + 2} ({time[i + 1]!r} s after "
                         f"{time[i]!r} s); the rows of a light curve must be in time order")
    lo = time - float(h.get("TIMEPIXR", 0.5)) * width
    return lo, lo + width


def _invalid_bins(data, names) -> np.ndarray:
    """Bins without a valid value: RATE (or, without RATE, COUNTS) NaN or infinite (bool, one per row).
    Tools write NaN for bins they could not measure (e.g. the PPS FBKTSR NaN rows, FRACEXP = 0 there)."""
    col = find_column(names, "RATE") or find_column(names, "COUNTS")
    v = np.asarray(data[col])
    if v.dtype.kind not in "fc":
        return np.zeros(v.shape[0], dtype=bool)
    return ~np.isfinite(v)


def _live_exposure(hdu, h, data, names, path):
    """The per-bin EXPOSURE column [s] (its TUNIT 's' or 'd', else TIMEUNIT), or None: CIAO ``dmextract``
    light curves give each bin's live exposure there (the good time in the bin x DTCOR; 0 for a bin without
    good time), with COUNT_RATE = COUNTS / EXPOSURE. A column in another unit is no time (Fermi
    ``gtexposure`` writes cm**2 s): None, with a warning that it is not used."""
    col = find_column(names, "EXPOSURE")
    if col is None:
        return None
    unit = str(hdu.columns[col].unit or "").strip() if col in hdu.columns.names else ""
    try:
        scale = time_scale(unit or h.get("TIMEUNIT", "s"), path)
    except ValueError:
        warnings.warn(f"{path}[{hdu.name}]: column {col} is in {unit!r}, not a time ('s' or 'd'); it is not the "
                      "bins' exposure, which comes from FRACEXP or the GTI table", stacklevel=4)
        return None
    return np.asarray(data[col], np.float64) * scale


def _fracexp(data, names, lo, hi, gti, gti_name, path, invalid=None, live=None):
    """``(fracexp, gti)``: the FRACEXP column, else ``live`` (the per-bin EXPOSURE column [s], see
    :func:`_live_exposure`) over the bin width, else the bins' fraction inside ``gti``, else 1; 0 in the
    ``invalid`` bins (a non-finite RATE: no measurement, so no exposure; warned when the file gave them
    exposure, and their time is taken out of the GTIs so that the GTI total stays the summed exposure and a
    power spectrum's segments avoid them); the GTIs (from the exposed bins when the file has no GTI table)."""
    width = hi - lo
    fcol = find_column(names, "FRACEXP")
    if fcol is not None:
        fracexp = np.nan_to_num(np.asarray(data[fcol], np.float64))
    elif live is not None:  # the file's own exposure of each bin (dead time included), not the GTIs'
        fracexp = np.where(width > 0, np.nan_to_num(live) / width, 0.0)
    elif gti is not None:
        fracexp = np.where(width > 0, gtimod.exposure_per_bin(lo, hi, gti) / width, 0.0)
        if lo.size and gti[0].size and not np.any(fracexp > 0):
            warnings.warn(f"{path}: no bin of the light curve ({lo[0]:.6g} - {hi[-1]:.6g} s) lies inside its GTI "
                          f"table {gti_name} ({gti[0][0]:.6g} - {gti[1][-1]:.6g} s), so every bin has zero "
                          "exposure; check TIMEZERO and the time units of the file", stacklevel=4)
    else:
        fracexp = np.ones(lo.shape)
    if invalid is not None and invalid.any():
        exposed = invalid & (fracexp > 0)
        if exposed.any():
            first = int(np.flatnonzero(exposed)[0])
            warnings.warn(f"{path}: {int(exposed.sum())} bin(s) with a NaN or infinite RATE inside the good time "
                          f"(e.g. row {first + 1}, {lo[first]:.15g} s) get no exposure (FRACEXP = 0) and are taken "
                          "out of the GTIs: a bin without a valid rate is not a bin of zero counts", stacklevel=4)
        fracexp = np.where(invalid, 0.0, fracexp)
        if gti is not None and exposed.any() and np.size(gti[0]):  # (an empty GTI table stays empty)
            bad = gtimod.normalize(lo[exposed], hi[exposed], warn=False)
            t0, t1 = min(float(gti[0][0]), float(lo.min())), max(float(gti[1][-1]), float(hi.max()))
            gti = gtimod.intersection(gti, gtimod.complement(bad, t0, t1))
    if gti is None:
        exposed = width * fracexp > 0
        gti = _joined(lo[exposed], hi[exposed])
    return fracexp, gti


def _joined(lo, hi):
    """The GTIs of back-to-back bins ``[lo, hi)`` [s]: neighbours whose edges
    differ by rounding only (TIME -/+ half a width at 1e8 s: ~1e-8 s; up to
    1e-6 of a bin or 8 float spacings) are joined, so that a light curve
    without a GTI table has one interval per run of bins, not one per bin."""
    lo, hi = np.array(lo, np.float64), np.array(hi, np.float64)
    if lo.size > 1:
        tol = np.maximum(1e-6 * (hi[:-1] - lo[:-1]), 8 * np.spacing(np.abs(hi[:-1])))
        snap = np.abs(lo[1:] - hi[:-1]) <= tol
        lo[1:][snap] = hi[:-1][snap]
    return gtimod.normalize(lo, hi, warn=False)


def _counts_and_rates(data, names, width, fracexp, corrected, error_unit: str = ""):
    """``(counts, rate, rate_err)``: counts from COUNTS, else from RATE x exposure (corrected rates) or
    RATE x TIMEDEL (uncorrected: SAS evselect, extractor, xcube fraccorr=False), rates corrected for
    FRACEXP (NaN where it is 0), errors from the file or sqrt(counts) / exposure. Without a RATE column
    (HDUCLAS3 = 'COUNT') the error column is in counts (OGIP/93-003: the unit of the column it belongs
    to), so it is divided by the exposure as the counts are, unless its TUNIT (``error_unit``) is a rate.
    CIAO ``dmextract`` tables (COUNTS, no RATE): the rate is COUNT_RATE and its error COUNT_RATE_ERR (else
    STAT_ERR, the count error, / exposure), NaN where the exposure is 0 (the file writes 0 there)."""
    exposure = width * fracexp
    rcol, ccol = find_column(names, "RATE"), find_column(names, "COUNTS")
    rate = np.asarray(data[rcol], np.float64) if rcol is not None else None
    err = _rate_error(data, names)
    with np.errstate(invalid="ignore", divide="ignore"):
        if ccol is not None:
            counts = np.asarray(data[ccol])
            if rate is None:
                crcol = find_column(names, "COUNT_RATE")  # dmextract: COUNTS / EXPOSURE
                rate = np.where(exposure > 0, np.asarray(data[crcol], np.float64) if crcol is not None
                                else counts / exposure, np.nan)
                if err is None:
                    err, error_unit = _count_table_error(data, names)
                    err = None if err is None else np.where(exposure > 0, err, np.nan)
                if err is not None and not _is_rate_unit(error_unit):  # count errors
                    err = np.where(exposure > 0, err / exposure, np.nan)
        elif corrected:
            counts = np.where(np.isfinite(rate) & (exposure > 0), rate * exposure, 0.0)
        else:
            counts = np.where(np.isfinite(rate), rate * width, 0.0)
        if rcol is not None and not corrected:  # RATE = COUNTS / TIMEDEL
            rate = np.where(fracexp > 0, rate / fracexp, np.nan)
            err = np.where(fracexp > 0, err / fracexp, np.nan) if err is not None else None
        counts = counts_array(counts)
        if err is None:
            err = np.where(exposure > 0, np.sqrt(np.clip(counts, 0, None)) / exposure, np.nan)
    return counts, rate, err


def _background_rates(data, names, fracexp, corrected) -> dict:
    """``bkg_rate``/``bkg_rate_err`` [count/s] from BACKV/BACKE, corrected for FRACEXP like the rate."""
    out = {}
    bcol, becol = find_column(names, "BACKV"), find_column(names, "BACKE")
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = 1.0 if corrected else np.where(fracexp > 0, 1.0 / fracexp, np.nan)
    if bcol is not None:
        out["bkg_rate"] = ("time", np.asarray(data[bcol], np.float64) * scale, {"units": "count/s"})
        if becol is not None:
            out["bkg_rate_err"] = ("time", np.asarray(data[becol], np.float64) * scale, {"units": "count/s"})
    return out


def _per_bin_columns(data, names) -> dict:
    """Coordinates along ``time`` from the MJD, OBS_ID, MISSION and INSTRUME columns of stitched files."""
    coords = {}
    for col, coord in (("MJD", "mjd"), ("OBS_ID", "obs_id"), ("MISSION", "mission"), ("INSTRUME", "instrument")):
        c = find_column(names, col)
        if c is not None:
            v = np.asarray(data[c])
            coords[coord] = ("time", v.astype(object) if v.dtype.kind in "US" else v.astype(np.float64))
    return coords


def _attrs(path, hdu, h, lo, hi, gti_name) -> dict:
    width = hi - lo
    attrs = {
        "kind": "lightcurve",
        "source": str(Path(path).resolve()),
        "extension": hdu.name,
        "gti_extension": gti_name,
        "mission": mission_name(h.get("TELESCOP", "")),
        "instrument": str(h.get("INSTRUME", "")).strip(),
        "obs_id": str(h.get("OBS_ID", "")).strip(),
        "object": str(h.get("OBJECT", "")).strip(),
        **time_reference_attrs(h, path),
        "hduclas2": str(h.get("HDUCLAS2", "")).strip(),
        "rate_kind": _rate_kind(h),
        "time_bin": float(np.median(width)) if width.size else float("nan"),
        "tstart": float(lo[0]) if lo.size else float("nan"),
        "tstop": float(hi[-1]) if hi.size else float("nan"),
    }
    if str(h.get("ERRMETH", "")).strip().lower() in ("poisson", "gehrels"):  # written by xcube
        attrs["errors"] = str(h["ERRMETH"]).strip().lower()
    if _flag(h.get("STITCHED", False)):
        attrs["stitched"] = True
    if "E_MIN" in h and "E_MAX" in h:
        attrs["energy_band"] = [float(h["E_MIN"]), float(h["E_MAX"])]
    if "CHANMIN" in h and "CHANMAX" in h:
        attrs["pi_band"] = [int(float(h["CHANMIN"])), int(float(h["CHANMAX"]))]
    return attrs


def _rate_kind(h: dict) -> str:
    """What the RATE column holds, in the terms of ``write_lightcurve(kind=)``:
    ``"net"`` (HDUCLAS2 = 'NET', or BACKAPP = T: background subtracted; COUNTS,
    when present, are the gross source-region counts), ``"background"``
    (HDUCLAS2 = 'BKG': the area-scaled background rate; COUNTS the background
    region's raw counts), else ``"total"`` (RATE = COUNTS / exposure)."""
    cls = str(h.get("HDUCLAS2", "")).strip().upper()
    if cls == "BKG":
        return "background"
    if cls == "NET" or _flag(h.get("BACKAPP", False)):
        return "net"
    return "total"


def band_count(path, *, extension: str | None = None) -> int:
    """Number of energy bands of the OGIP light curve ``path`` (1, or k for a
    vector RATE (or COUNTS) column of k elements or k XRONOS series
    RATE1..RATEk), from the RATE table's column definitions (headers only)."""
    with open_fits(path) as hdul:
        hdu = _find_rate_hdu(hdul, extension, path)
        names = hdu.columns.names
        series = _series_numbers(names)
        if series:
            return len(series)
        for name in ("RATE", "COUNTS"):
            col = find_column(names, name)
            if col is not None:
                repeat = int(hdu.columns[col].format.repeat or 1)
                return repeat if repeat > 1 else 1
        return 1


def _rate_corrected_by_tool(h: dict) -> bool:
    """Whether the header's mission writes exposure-corrected RATE columns
    (``MissionProfile.lc_rate_corrected``); quietly False for unknown missions."""
    from ..missions import detect

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(detect(h).lc_rate_corrected)


def _rate_error(data, names):
    """The rate error column: ERROR, RATE_ERR, or the mean of RATE_ERRM/RATE_ERRP (eROSITA); None if absent."""
    for name in ("ERROR", "RATE_ERR"):
        col = find_column(names, name)
        if col is not None:
            return np.asarray(data[col], np.float64)
    lo, hi = find_column(names, "RATE_ERRM"), find_column(names, "RATE_ERRP")
    if lo is not None and hi is not None:
        return 0.5 * (np.abs(np.asarray(data[lo], np.float64)) + np.asarray(data[hi], np.float64))
    return None


def _count_table_error(data, names):
    """``(error, unit)`` of a COUNTS table without ERROR/RATE_ERR columns: CIAO ``dmextract``'s COUNT_RATE_ERR
    (the error of COUNT_RATE, ``'count/s'``), else its STAT_ERR (the error of COUNTS, ``'count'``); ``(None, '')``
    when neither is present."""
    for name, unit in (("COUNT_RATE_ERR", "count/s"), ("STAT_ERR", "count")):
        col = find_column(names, name)
        if col is not None:
            return np.asarray(data[col], np.float64), unit
    return None, ""


def _error_unit(hdu, names) -> str:
    """TUNIT of the table's error column (ERROR, RATE_ERR or RATE_ERRP), '' when absent."""
    for name in ("ERROR", "RATE_ERR", "RATE_ERRP"):
        col = find_column(names, name)
        if col is not None and col in hdu.columns.names:
            return str(hdu.columns[col].unit or "")
    return ""


def _is_rate_unit(unit: str) -> bool:
    """Whether a TUNIT is per second (``count/s``, ``ct s-1``, ``counts s**-1``...)."""
    u = unit.strip().lower().replace(" ", "")
    return any(t in u for t in ("/s", "s-1", "s**-1", "s^-1", "/sec", "hz"))


def _flag(value) -> bool:
    """A FITS logical keyword, also when written as the string 'T'/'F'."""
    if isinstance(value, str):
        return value.strip().upper() in ("T", "TRUE")
    return bool(value)
