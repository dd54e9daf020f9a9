"""``plot_file``: the standard figure of any xcube product file (what
``xcube plot FILE`` draws)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_file", "product_kind"]


def product_kind(path) -> str:
    """``"power_spectrum"``, ``"lightcurve"``, ``"spectrum"``, ``"image"``,
    ``"cube"`` (a Zarr store of counts and expected counts) or ``"events"``,
    from the file's structure (eager: reads headers only)."""
    p = Path(path)
    if p.is_dir():
        return "cube" if (p / "expected").exists() and (p / "counts").exists() else "unknown"
    from astropy.io import fits

    from ..io.fitsutil import check_path

    check_path(p)
    try:
        hdul = fits.open(p)
    except OSError:  # not FITS (a CSV, a Parquet table...) or unreadable: the callers say what they take
        return "unknown"
    with hdul:
        for h in hdul[1:]:
            if not isinstance(h, fits.BinTableHDU):
                continue
            names = {c.upper() for c in h.columns.names}
            clas = str(h.header.get("HDUCLAS1", "")).strip().upper()
            if {"FREQUENCY", "POWER"} <= names:
                return "power_spectrum"
            if clas in ("LIGHTCURVE", "LIGHT CURVE") or h.name == "RATE":
                return "lightcurve"
            if clas == "SPECTRUM" or h.name == "SPECTRUM":
                return "spectrum"
            if clas in ("EVENTS", "EVENT") or h.name in ("STDEVT", "XTE_SE") or h.name.startswith("EVENTS"):
                return "events"
        h0 = hdul[0].header
        if h0.get("NAXIS", 0) == 2 and h0.get("NAXIS1", 0) > 1 and h0.get("NAXIS2", 0) > 1:
            return "image"
    return "unknown"


def _spectrum(path):
    from ..io.ogip import read_spectrum
    from .spectra import spectrum

    return spectrum(read_spectrum(path), title=Path(path).name)


def plot_file(path, **kwargs):
    """The standard figure of a product file: a power spectrum (``xcube
    pds``; frequency x power for rms normalisation), a light curve on broken
    time axes (a long-term light curve for ``xcube stitch`` output), a PHA
    spectrum, an image, or the peak Bayes-factor map of a transient-search
    Zarr store. ``kwargs`` go to the figure function. Returns the Figure."""
    from ..io.ogip import read_lightcurve
    from ..io.powspec import read_power_spectrum
    from . import lightcurves, maps, timing

    kind = product_kind(path)
    if kind == "power_spectrum":
        pds = read_power_spectrum(path)
        kwargs.setdefault("freq_power", pds.attrs.get("norm") == "frac")
        return timing.power_spectrum(pds, title=kwargs.pop("title", Path(path).name), **kwargs)
    if kind == "lightcurve":
        lc = read_lightcurve(path)
        if lc.attrs.get("stitched"):  # a light curve with an MJD column is still one observation
            return lightcurves.long_term_lightcurve(lc, title=kwargs.pop("title", Path(path).name), **kwargs)
        if "band" in lc.dims:
            lc = lc.isel(band=kwargs.pop("band", 0))
        return lightcurves.broken_lightcurve(lc, title=kwargs.pop("title", Path(path).name), **kwargs)
    if kind == "spectrum":
        return _spectrum(path)
    if kind == "image":
        import xarray as xr
        from astropy.io import fits

        with fits.open(path) as hdul:
            h = hdul[0].header
            wcs = {k: h[k] for k in h if k[:-1] in ("CTYPE", "CRVAL", "CRPIX", "CDELT", "CUNIT") and k[-1] in "12"}
            img = xr.DataArray(np.asarray(hdul[0].data, float), dims=("y", "x"),
                               attrs={"units": str(h.get("BUNIT", "")), **wcs,
                                      **({"RADESYS": h["RADESYS"]} if "RADESYS" in h else {})})
        return maps.image(img, title=kwargs.pop("title", Path(path).name), **kwargs)
    if kind == "cube":
        import xarray as xr

        ds = xr.open_zarr(path)
        from ..bayes import log10_bayes_peak

        return maps.bayes_map(log10_bayes_peak(ds["counts"], ds["expected"]), title=Path(path).name, **kwargs)
    if kind == "events":
        raise ValueError(f"{path}: an event list, not a product; make one first (xcube lc / image / spectrum / pds)")
    raise ValueError(f"{path}: not a product xcube can plot (light curve, power spectrum, spectrum, image, cube)")
