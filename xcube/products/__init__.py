"""Products built from event lists: light curves (source, background, net;
one or several energy bands), rebinning and splitting, hardness ratios,
power spectra, long-term (stitched) light curves, images, spectra with
grouping, Stingray interoperability, and product names with an index."""
from .errors import count_error
from .grouping import group_min_counts, group_spectrum, grouped_counts
from .hardness import hardness_ratio
from .image import image
from .lightcurve import lightcurve, lightcurve_from_counts
from .net import net_lightcurve
from .powerspectrum import average_power_spectra, power_spectrum, rebin_power_spectrum, subtract_poisson_noise
from .rebin import rebin, split_by_gti
from .spectrum import spectrum
from .stingray_interop import from_stingray, to_stingray
from .stitch import extract_lightcurves, stitch

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
    "power_spectrum",
    "rebin_power_spectrum",
    "average_power_spectra",
    "subtract_poisson_noise",
    "rebin",
    "split_by_gti",
    "hardness_ratio",
    "net_lightcurve",
    "stitch",
    "extract_lightcurves",
]
