"""Power-spectrum files: a FITS table ``POWSPEC`` with the columns of HEASoft
``powspec`` (FREQUENCY, XAX_E, POWER, ERROR) plus M (powers averaged per
bin) and FREQ_LO/FREQ_HI (exact bin edges), and the spectrum's parameters as
keywords (NORM, SEGMENT, DT, NBIN, NSEG, MEANRATE, POISSLVL, BKGRATE,
NOISESUB, REBIN) beside the usual TELESCOP/INSTRUME/OBS_ID/MJDREF. Written
atomically; read back into the Dataset :func:`xcube.power_spectrum` returns.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from astropy.io import fits

from ..missions import mission_name
from .fitsutil import TableColumns, find_column, open_fits
from .ogip import common_cards, primary_hdu, time_reference_attrs, write_hdul

__all__ = ["write_power_spectrum", "read_power_spectrum"]

_KEYS = {  # attr: (keyword, comment)
    "norm": ("NORM", "normalisation: leahy, frac (rms), abs or none"),
    "segment": ("SEGMENT", "[s] segment length"),
    "dt": ("DT", "[s] bin width of the segments"),
    "n_bin": ("NBIN", "bins per segment"),
    "n_segments": ("NSEG", "number of segments averaged"),
    "mean_rate": ("MEANRATE", "[count/s] mean rate in the segments"),
    "n_photons": ("NPHOTONS", "mean photons per segment"),
    "poisson_level": ("POISSLVL", "white-noise level of NORM (see ERRDIST)"),
    "err_dist": ("ERRDIST", "poisson: photon counts; gauss: from rate errors"),
    "background_rate": ("BKGRATE", "[count/s] background rate used by frac"),
    "noise_subtracted": ("NOISESUB", "POISSLVL subtracted from POWER"),
    "rebin": ("REBIN", "<0: log factor, >0: bins per bin, 0: none"),
    "tstart": ("TSTART", "[s] start of the first segment"),
    "tstop": ("TSTOP", "[s] end of the last segment"),
}


def write_power_spectrum(path, pds: xr.Dataset, *, overwrite: bool = False, header: dict | None = None) -> Path:
    """Write one power spectrum (dim ``freq``) as a FITS ``POWSPEC`` table.
    Eager (computes ``pds``); atomic; returns the path. A stack over ``obs``
    must be written one spectrum at a time (``pds.isel(obs=i)``)."""
    from .atomic import refuse_input

    refuse_input(path, pds)  # (the event file or light curve it was made from)
    if set(pds.dims) != {"freq"}:
        raise ValueError(f"write_power_spectrum: need one spectrum on dim 'freq', got dims {dict(pds.sizes)}; "
                         "write each with pds.isel(obs=i), or average them first (average=True)")
    pds = pds.compute()
    f, lo, hi = (np.asarray(pds[k].values, np.float64) for k in ("freq", "freq_lo", "freq_hi"))
    cols = [fits.Column(name="FREQUENCY", format="D", unit="Hz", array=f),
            fits.Column(name="XAX_E", format="D", unit="Hz", array=0.5 * (hi - lo)),
            fits.Column(name="POWER", format="D", unit=pds["power"].attrs.get("units", ""),
                        array=np.asarray(pds["power"].values, np.float64)),
            fits.Column(name="ERROR", format="D", unit=pds["power"].attrs.get("units", ""),
                        array=np.asarray(pds["power_err"].values, np.float64)),
            fits.Column(name="M", format="K", array=np.asarray(pds["m"].values, np.int64)),
            fits.Column(name="FREQ_LO", format="D", unit="Hz", array=lo),
            fits.Column(name="FREQ_HI", format="D", unit="Hz", array=hi)]
    hdu = fits.BinTableHDU.from_columns(cols, name="POWSPEC")
    span = (pds.attrs["tstart"], pds.attrs["tstop"]) if {"tstart", "tstop"} <= set(pds.attrs) else None
    cards = common_cards(dict(pds.attrs), span)  # DATE-OBS/DATE-END: the UTC dates of the segments' span
    for k, v in cards.items():
        hdu.header[k] = v
    hdu.header["CONTENT"] = "POWER SPECTRUM"
    for attr, (key, comment) in _KEYS.items():
        v = pds.attrs.get(attr)
        if v is not None:
            hdu.header[key] = (v.item() if isinstance(v, np.generic) else v, comment)
    band = pds.attrs.get("energy_band")
    if band is not None and np.ndim(band) == 1 and len(band) == 2:
        hdu.header["E_MIN"], hdu.header["E_MAX"] = float(band[0]), float(band[1])
    for k, v in (header or {}).items():
        hdu.header[k] = v
    return write_hdul(fits.HDUList([primary_hdu(cards), hdu]), path, overwrite)


def read_power_spectrum(path) -> xr.Dataset:
    """A power spectrum written by :func:`write_power_spectrum` (or any table
    with FREQUENCY, POWER and ERROR columns, such as HEASoft ``powspec``
    output: then M is 1 and the edges are FREQUENCY -/+ XAX_E), or by
    Stingray's ``Powerspectrum.write(fmt="fits")`` (columns ``freq``,
    ``power``, ``power_err``, optional ``m``/``k``; keywords DF, M, K, NORM,
    DT, N, ``segment_size``, MEAN [counts per bin], NPHOTS: the bins are
    ``k x DF`` wide around ``freq``, as :func:`xcube.from_stingray` reads
    them). Column names are case-insensitive. Eager."""
    with open_fits(path, memmap=False) as hdul:
        hdu = next((h for h in hdul[1:]
                    if isinstance(h, fits.BinTableHDU) and is_power_spectrum_table(h.columns.names)), None)
        if hdu is None:
            tables = {h.name or f"HDU {i}": h.columns.names for i, h in enumerate(hdul) if i and
                      isinstance(h, fits.BinTableHDU)}
            raise ValueError(f"{path}: no power-spectrum table (a POWER column and a FREQUENCY or FREQ column, any "
                             f"case); tables and their columns: {tables}")
        h = dict(hdul[0].header)
        h.update(hdu.header)
        cols = TableColumns(hdu)
        d = {c.upper(): np.asarray(cols[c]) for c in hdu.columns.names}
        units = {"units": str(hdu.columns[find_column(hdu.columns.names, "POWER")].unit or "")}
    f = d.get("FREQUENCY", d.get("FREQ")).astype(np.float64)
    stingray = "FREQUENCY" not in d
    if stingray:  # Stingray: DF (and the merged bins K) give the edges, M the averaged powers per bin
        k = np.broadcast_to(np.asarray(d.get("K", h.get("K", 1)), np.float64), f.shape)
        half = 0.5 * k * float(h.get("DF", np.nan))
        d.setdefault("M", np.broadcast_to(np.asarray(h.get("M", 1)), f.shape))
        d.setdefault("ERROR", d.get("POWER_ERR"))
        if d["ERROR"] is None:
            del d["ERROR"]
    else:
        half = d.get("XAX_E", np.zeros_like(f)).astype(np.float64)
    lo = d.get("FREQ_LO", f - half).astype(np.float64)
    hi = d.get("FREQ_HI", f + half).astype(np.float64)
    power = d["POWER"].astype(np.float64)
    attrs = {attr: h[key] for attr, (key, _) in _KEYS.items() if key in h}
    if stingray:
        attrs.update(_stingray_attrs(h, np.asarray(d["M"]) / k))
    attrs.update(kind="power_spectrum", source=str(Path(path).resolve()), mission=mission_name(h.get("TELESCOP", "")),
                 instrument=str(h.get("INSTRUME", "")).strip(), obs_id=str(h.get("OBS_ID", "")).strip(),
                 object=str(h.get("OBJECT", "")).strip(), **time_reference_attrs(h, path))
    if "E_MIN" in h and "E_MAX" in h:
        attrs["energy_band"] = [float(h["E_MIN"]), float(h["E_MAX"])]
    return xr.Dataset(
        {"power": ("freq", power, units),
         "power_err": ("freq", d.get("ERROR", np.full_like(power, np.nan)).astype(np.float64), units),
         "m": ("freq", d.get("M", np.ones(f.size, np.int64)).astype(np.int64)),
         "df": ("freq", hi - lo, {"units": "Hz"})},
        coords={"freq": ("freq", f, {"units": "Hz"}), "freq_lo": ("freq", lo, {"units": "Hz"}),
                "freq_hi": ("freq", hi, {"units": "Hz"})},
        attrs=attrs,
    )


def is_power_spectrum_table(names) -> bool:
    """Whether a table's columns (any case) make a power spectrum: POWER and FREQUENCY (powspec, xcube) or
    FREQ (Stingray)."""
    up = {c.upper() for c in names}
    return "POWER" in up and bool(up & {"FREQUENCY", "FREQ"})


def _stingray_attrs(h: dict, segments_per_bin) -> dict:
    """xcube's attrs from the keywords of a Stingray power spectrum: N (bins per segment), ``segment_size`` [s],
    MEAN (mean counts per bin of the segments, so the mean rate is MEAN / DT), NPHOTS (mean photons per
    segment), the segments averaged (M / K, their smallest value), the Poisson level of NORM."""
    out = {}
    if "N" in h:
        out["n_bin"] = int(h["N"])
    seg = h.get("SEGMENT_SIZE", h.get("segment_size"))
    if seg is not None:
        out["segment"] = float(seg)
    if np.size(segments_per_bin):
        out["n_segments"] = int(np.rint(np.min(segments_per_bin)))
    if "NPHOTS" in h:
        out["n_photons"] = float(h["NPHOTS"])
    dt = float(h.get("DT", np.nan))
    if "MEAN" in h and np.isfinite(dt) and dt > 0:
        out["mean_rate"] = float(h["MEAN"]) / dt
        norm = str(h.get("NORM", "")).strip().lower()
        if norm in ("leahy", "frac", "abs"):
            from stingray.fourier import poisson_level

            out["poisson_level"] = float(poisson_level(norm, meanrate=out["mean_rate"]))
    return out
