"""Deprecated location of :mod:`xcube.simulate` (moved out of ``transients``).

Importing this module warns (``DeprecationWarning``) and re-exports the public
names of :mod:`xcube.simulate`; it will be removed in the next release.
"""
import warnings

from ..simulate import (  # noqa: F401
    PSF_FWHM_ARCSEC,
    TRUTH_COLUMNS,
    Eclipse,
    Flare,
    SoftProtonFlare,
    Source,
    __all__,
    amplitude_at,
    efficiency,
    event_list,
    inject_eclipse,
    inject_flare,
    inject_instrumental,
    write,
)

warnings.warn(
    "xcube.transients.simulate is deprecated and will be removed in the next release; "
    "import xcube.simulate instead (same names)",
    DeprecationWarning,
    stacklevel=2,  # the importing line (warnings skips importlib's frames)
)
