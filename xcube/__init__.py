"""xcube: time-domain X-ray astronomy on xarray + Dask."""
from . import (
            accessor,  # noqa: F401  (registers the .xcube accessor)
            bayes,  # noqa: F401  (xcube.bayes.log10_bayes_peak, threshold, masks, ...)
            simulate,  # noqa: F401  (xcube.simulate.event_list, inject_flare, ...)
            survey,  # noqa: F401  (xcube.survey.run, build_catalogue, ...)
)
from ._version import __version__
from .binning import bin_events
from .io import open_archive, open_events, to_zarr
from .io.ogip import read_lightcurve, write_gti, write_image, write_lightcurve, write_spectrum
from .products import image, lightcurve, spectrum
from .regions import region_area, region_mask
from .select import select
from .skycoords import wcs
from .transients.search import search_transients

__all__ = [
    "__version__",
    "open_events",
    "open_archive",
    "to_zarr",
    "select",
    "bin_events",
    "region_mask",
    "region_area",
]
__all__ += ["lightcurve", "image", "spectrum", "read_lightcurve", "write_lightcurve", "write_spectrum",
            "write_image", "write_gti"]
__all__ += ["wcs"]
__all__ += ["search_transients"]


def __getattr__(name):
    # xcube.frames (optical CCD frames) is imported on first use, keeping `import xcube` fast
    if name == "frames":
        import importlib

        return importlib.import_module(".frames", __name__)
    raise AttributeError(f"module 'xcube' has no attribute {name!r}")
