"""Hardness ratios between two energy bands of a light curve."""
from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["hardness_ratio", "select_band"]


def select_band(lc: xr.Dataset, band, what: str | None = None) -> xr.Dataset:
    """One band of a multi-band light curve (a ``band`` dimension, coords
    ``energy_lo``/``energy_hi`` [keV]): ``band`` an index (negative from the
    end), a label (``"2-10keV"``; a text of digits that is no label is an
    index: ``"1"``, as ``xcube plot --band 1`` gives it) or an
    ``(emin, emax)`` pair [keV]. ``ValueError`` starting with ``what``
    (default: the light curve's source and ``band``) and listing the bands
    when none matches. Lazy (a selection)."""
    what = what or f"{lc.attrs.get('source', 'light curve')}: band"
    labels = [str(b) for b in lc["band"].values]
    if isinstance(band, str) and band not in labels and band.lstrip("-").isdigit():
        band = int(band)
    if isinstance(band, (int, np.integer)) and not isinstance(band, bool):
        if not -len(labels) <= band < len(labels):
            raise ValueError(f"{what}={band}: it has {len(labels)} bands ({', '.join(labels)})")
        return lc.isel(band=int(band))
    if isinstance(band, str):
        if band not in labels:
            raise ValueError(f"{what}={band!r}: the bands are {', '.join(labels)}")
        return lc.isel(band=labels.index(band))
    try:
        lo, hi = (float(v) for v in band)
    except (TypeError, ValueError):
        raise ValueError(f"{what}={band!r}: give an index, a label ({', '.join(labels)}) or (emin, emax) "
                         "[keV]") from None
    ok = np.isclose(lc["energy_lo"].values, lo) & np.isclose(lc["energy_hi"].values, hi)
    if not ok.any():
        have = [f"{a:g}-{b:g}" for a, b in zip(lc["energy_lo"].values, lc["energy_hi"].values)]
        raise ValueError(f"{what}={lo:g}-{hi:g} keV is not among the light curve's bands {have} keV; extract it "
                         "with energy_band=[...]")
    return lc.isel(band=int(np.flatnonzero(ok)[0]))


def hardness_ratio(lc: xr.Dataset, soft=(0.5, 2.0), hard=(2.0, 10.0), *, rate: str | None = None) -> xr.Dataset:
    """Hardness ratio ``HR = (H - S) / (H + S)`` per time bin.

    Parameters
    ----------
    lc : light curve with a ``band`` dimension (``xcube.lightcurve(...,
        energy_band=[(0.5, 2), (2, 10)])`` or a multi-band OGIP file).
    soft, hard : the bands, as ``(emin, emax)`` [keV], band labels or
        indices (see :func:`select_band`).
    rate : the rate variable to use; default ``net_rate`` when the light
        curve has a background, else ``rate``.

    Returns a Dataset on ``time`` with ``ratio`` and ``ratio_err`` (error
    propagation: ``2 sqrt(H^2 sS^2 + S^2 sH^2) / (H + S)^2``), ``soft``,
    ``hard``, ``intensity`` = S + H [count/s] and its error, for
    hardness-intensity diagrams. ``ratio`` is NaN where both bands are empty
    (``H + S = 0``) or a rate is undefined (no exposure). Lazy when ``lc`` is.
    """
    if "band" not in lc.dims:
        raise ValueError("hardness_ratio needs a light curve with a band dimension: "
                         "xcube.lightcurve(events, time_bin, energy_band=[soft, hard])")
    var = rate or ("net_rate" if "net_rate" in lc else "rate")
    if var not in lc or f"{var}_err" not in lc:
        raise ValueError(f"hardness_ratio: the light curve has no {var!r} with {var}_err")
    s_lc, h_lc = (select_band(lc, b, f"hardness_ratio: {name} band") for b, name in ((soft, "soft"), (hard, "hard")))
    drop = ["band", "energy_lo", "energy_hi"]
    s, h = (x[var].drop_vars(drop, errors="ignore") for x in (s_lc, h_lc))
    se, he = (x[f"{var}_err"].drop_vars(drop, errors="ignore") for x in (s_lc, h_lc))
    total = h + s
    ok = total != 0
    # (dimensionless: not the units the arithmetic kept from the rates)
    ratio = ((h - s) / total.where(ok)).drop_attrs(deep=False).assign_attrs(
        long_name="(H - S) / (H + S)", variable=var, units="1")
    err = (2.0 * np.sqrt(h**2 * se**2 + s**2 * he**2) / total.where(ok) ** 2).drop_attrs(deep=False).assign_attrs(
        long_name="error of ratio", units="1")
    out = xr.Dataset({"ratio": ratio, "ratio_err": err, "soft": s.assign_attrs(units="count/s"),
                      "hard": h.assign_attrs(units="count/s"), "intensity": total.assign_attrs(units="count/s"),
                      "intensity_err": np.sqrt(se**2 + he**2).assign_attrs(units="count/s")})
    out.attrs = {k: v for k, v in lc.attrs.items() if k not in ("energy_band", "pi_band")}
    out.attrs.update(kind="hardness_ratio", soft_band=str(s_lc["band"].values), hard_band=str(h_lc["band"].values),
                     rate_variable=var)
    for v in ("gti_start", "gti_stop"):
        if v in lc:
            out[v] = lc[v]
    return out
