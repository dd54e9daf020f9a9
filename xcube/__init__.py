"""xcube: time-domain X-ray astronomy on xarray + Dask.

The public API below is imported on first use, so ``import xcube`` and the
``xcube`` command start quickly: ``xcube.open_events`` imports the event
reader, ``xcube.survey`` the survey package, and so on. The ``.xcube``
accessor on xarray objects is registered as soon as xcube and xarray are
both imported: by ``import xcube`` when xarray is already loaded, otherwise
right after xarray's first import (by the first xcube function used, or by
the user), without ``import xcube`` importing xarray
(:func:`xcube._lazy.after_import`).
"""
from ._lazy import after_import, keep_functions, namespace
from ._version import __version__

_NAMES = {
    "open_events": "io.events", "open_archive": "io.events", "to_zarr": "io.cache",
    "select": "select", "bin_events": "binning.engine", "region_mask": "regions", "region_area": "regions",
    "wcs": "skycoords",
    "lightcurve": "products.lightcurve", "image": "products.image", "spectrum": "products.spectrum",
    "power_spectrum": "products.powerspectrum", "hardness_ratio": "products.hardness",
    "stitch": "products.stitch", "extract_lightcurves": "products.stitch", "net_lightcurve": "products.net",
    "rebin_lightcurve": "products.rebin:rebin", "split_by_gti": "products.rebin",
    "to_stingray": "products.stingray_interop", "from_stingray": "products.stingray_interop",
    "read_lightcurve": "io.lightcurve_file", "read_spectrum": "io.ogip", "write_gti": "io.ogip",
    "write_image": "io.ogip", "write_lightcurve": "io.ogip", "write_spectrum": "io.ogip",
    "search_transients": "transients.search",
    "times": "times", "with_mjd": "times", "read_gti": "io.ogip",
}
_SUBPACKAGES = ("accessor", "bayes", "binning", "cli", "expression", "frames", "gti", "io", "missions", "plot",
                "products", "regions", "simulate", "skycoords", "survey", "tools", "transients")

__all__ = ["__version__", *_NAMES]
__getattr__, __dir__ = namespace(__name__, _NAMES, _SUBPACKAGES, extra=("__version__",))
keep_functions(__name__, _NAMES)

after_import("xarray", f"{__name__}.accessor")  # the .xcube accessor, registered once xarray is imported
