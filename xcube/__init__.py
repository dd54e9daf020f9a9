"""xcube: time-domain X-ray astronomy on xarray + Dask."""
from ._version import __version__
from .io import open_archive, open_events, to_zarr
from .skycoords import wcs
from .select import select
from .binning import bin_events
from .regions import region_area, region_mask
from .products import image, lightcurve, spectrum
from .io.ogip import read_lightcurve, write_gti, write_image, write_lightcurve, write_spectrum
from . import accessor  # noqa: F401  (registers the .xcube accessor)
from . import simulate  # noqa: F401  (xcube.simulate.event_list, inject_flare, ...)
from . import bayes  # noqa: F401  (xcube.bayes.log10_bayes_peak, threshold, masks, ...)
from .transients.search import search_transients
from . import survey  # noqa: F401  (xcube.survey.run, build_catalogue, ...)

__all__ = ["__version__", "open_events", "open_archive", "to_zarr", "select", "bin_events", "region_mask", "region_area"]
__all__ += ["lightcurve", "image", "spectrum", "read_lightcurve", "write_lightcurve", "write_spectrum",
            "write_image", "write_gti"]
__all__ += ["wcs"]
__all__ += ["search_transients"]
