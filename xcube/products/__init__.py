"""Products built from event lists: light curves (source, background, net),
images, spectra with grouping, and Stingray interoperability."""
from .errors import count_error
from .grouping import group_min_counts, group_spectrum, grouped_counts
from .image import image
from .lightcurve import lightcurve, lightcurve_from_counts
from .spectrum import spectrum
from .stingray_interop import from_stingray, to_stingray

__all__ = [
    "lightcurve",
    "image",
    "spectrum",
    "count_error",
    "group_min_counts",
    "group_spectrum",
    "grouped_counts",
    "lightcurve_from_counts",
    "from_stingray",
    "to_stingray",
]
