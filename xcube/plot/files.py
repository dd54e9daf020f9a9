"""``plot_file``: the standard figure of any xcube product file (what
``xcube plot FILE`` draws)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.product_info import product_kind  # re-exported: the kinds plot_file draws

__all__ = ["plot_file", "product_kind"]


def _spectrum(path):
    from ..io.ogip import read_spectrum
    from .spectra import spectrum

    return spectrum(read_spectrum(path), title=Path(path).name)


def plot_file(path, **kwargs):
    """The standard figure of a product file: a power spectrum (``xcube
    pds``; frequency x power for rms normalisation), a light curve on broken
    time axes (a long-term light curve for ``xcube stitch`` output), a PHA
    spectrum, an image, or the peak Bayes-factor map of a transient-search
    Zarr store. ``kwargs`` go to the figure function. Reads what it shows
    eagerly. Returns the Figure."""
    from ..io.lightcurve_file import read_lightcurve
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
            wcs = {k: h[k] for k in h if (k[:-1] in ("CTYPE", "CRVAL", "CRPIX", "CDELT", "CUNIT") and k[-1] in "12")
                   or k in ("PC1_1", "PC1_2", "PC2_1", "PC2_2")}  # (the rotation of a rotated image)
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
