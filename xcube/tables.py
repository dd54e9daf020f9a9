"""Tables as the commands print them: times a person can read; and the
units of the detection and catalogue columns.

Mission times (``t_start``, ``t_peak``, ``t_first``... [s since MJDREF]) are
shown as seconds from the observation start ``T0`` with 0.1 s, MJDs with six
decimals (0.1 s), positions with five (0.04"), and no number is ever shown
in exponent notation such as ``7.00012e+08``.

:func:`column_unit` gives a column's unit, the one of the survey catalogue's
FITS tables (TUNIT) and of the search's ``detections.ecsv``; it lives here,
below both :mod:`xcube.transients` and :mod:`xcube.survey`, so that each
imports it without importing the other.
"""
from __future__ import annotations

import math

__all__ = ["format_table", "format_number", "column_decimals", "column_unit"]

_FIXED = {"ra": 5, "dec": 5, "x": 1, "y": 1, "log10_bayes": 2, "sigma_equivalent": 1, "expected": 2,
          "exposure": 1, "time_bin": 1, "emin": 2, "emax": 2, "sigma": 1, "size_arcsec": 1, "radius_arcsec": 1,
          "best_log10_bayes": 2, "best_sigma_equivalent": 1, "timings_total": 1}


def format_number(v, decimals: int | None = None) -> str:
    """A number without exponent: fixed ``decimals`` when given, else up to
    six significant digits (and at least the integer part). Eager."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        try:
            v = float(v)
        except (TypeError, ValueError):
            return str(v)
    if isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        return str(v)
    if decimals is None:
        digits = 0 if v == 0 else int(math.floor(math.log10(abs(v)))) + 1
        decimals = min(6, max(0, 6 - digits))
    return f"{v:.{decimals}f}"


def column_decimals(values) -> int:
    """Decimals that show a float column to about six significant digits:
    0 when every value is a whole number. Eager, numpy: ``values`` 1-D (read
    into memory)."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or np.all(v == np.round(v)):
        return 0
    top = float(np.max(np.abs(v)))
    digits = int(math.floor(math.log10(top))) + 1 if top > 0 else 0
    return min(6, max(1, 6 - digits))


def format_table(df, t0: float | None = None, columns=None) -> str:
    """``df`` (a pandas DataFrame) as text: ``columns`` (default all) with
    mission times ``t_*`` shown as seconds after ``t0`` [s, mission time]
    (headed ``t_peak-T0``; absolute when ``t0`` is None), ``mjd*`` columns with
    six decimals and every float without exponent. Eager; returns a string."""
    if columns is not None:
        df = df[[c for c in columns if c in df.columns]]
    df = df.copy()
    formatters = {}
    names = {}
    for c in df.columns:
        name = str(c)
        if name.startswith("t_"):
            if t0 is not None:
                df[c] = df[c].astype(float) - float(t0)
                name = f"{name}-T0"
            formatters[name] = lambda v: format_number(v, 1)
        elif name.startswith("mjd"):
            formatters[name] = lambda v: format_number(v, 6)
        elif name in _FIXED:
            formatters[name] = lambda v, d=_FIXED[name]: format_number(v, d)
        elif df[c].dtype.kind == "f":
            formatters[name] = lambda v, d=column_decimals(df[c]): format_number(v, d)
        names[c] = name
    return df.rename(columns=names).to_string(index=False, formatters=formatters)


#: units of the columns named exactly so (:func:`column_unit` adds those named by a pattern)
_UNITS = {"ra": "deg", "dec": "deg", "x": "pixel", "y": "pixel", "time_bin": "s", "emin": "keV", "emax": "keV",
          "size_arcsec": "arcsec", "counts": "count", "expected": "count", "radius_arcsec": "arcsec",
          "duration": "s", "peak_rate": "count s-1", "peak_flux": "erg s-1 cm-2", "det_u": "arcsec",
          "det_v": "arcsec", "fluence": "count",
          # the light-curve features' count statistics (skewness and kurtosis are dimensionless)
          **{f"{what}_{stat}": "count" for what in ("n", "mu") for stat in ("min", "max", "mean", "std", "sum")}}


def column_unit(name: str) -> str:
    """The unit of a detection or catalogue column, as a FITS TUNIT string
    (the survey catalogue's TUNIT, the units of ``detections.ecsv``): ``s`` for mission times ``t_*``,
    durations and ``*_gap_min``, ``d`` for MJDs, ``deg``, ``count``,
    ``count s-1`` (``peak_rate``), ``erg s-1 cm-2`` (``peak_flux``),
    ``arcsec`` (``det_u``/``det_v``, ``*_arcsec``), ``count`` for the features'
    ``n_*``/``mu_*`` minima, maxima, means, spreads and sums...; ``''`` (dimensionless)
    for numbers, flags, names and ids. Eager (a look-up)."""
    if name in _UNITS:
        return _UNITS[name]
    if name.startswith("t_") or name.endswith("_exposure") or name.endswith("_gap_min"):
        return "s"
    if name.startswith("mjd_"):
        return "d"
    if name.startswith("counts_"):
        return "count"
    if name.endswith("_arcsec"):
        return "arcsec"
    return ""
