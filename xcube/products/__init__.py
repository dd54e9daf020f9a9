"""Products built from event lists: light curves (source, background, net;
one or several energy bands), rebinning and splitting, hardness ratios,
power spectra, long-term (stitched) light curves, images, spectra with
grouping, Stingray interoperability, and product names with an index."""
from .._lazy import keep_functions, namespace

_NAMES = {
    "count_error": "errors", "group_min_counts": "grouping", "group_spectrum": "grouping",
    "grouped_counts": "grouping", "hardness_ratio": "hardness", "image": "image", "lightcurve": "lightcurve",
    "lightcurve_from_counts": "lightcurve", "net_lightcurve": "net", "average_power_spectra": "powerspectrum",
    "power_spectrum": "powerspectrum", "rebin_power_spectrum": "powerspectrum",
    "subtract_poisson_noise": "powerspectrum", "rebin": "rebin", "split_by_gti": "rebin", "spectrum": "spectrum",
    "from_stingray": "stingray_interop", "to_stingray": "stingray_interop", "extract_lightcurves": "stitch",
    "stitch": "stitch",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = namespace(__name__, _NAMES)
keep_functions(__name__, _NAMES)
