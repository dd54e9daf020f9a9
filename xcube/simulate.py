"""``xcube.simulate``: event-level simulations (alias of :mod:`xcube.transients.simulate`).

``xcube.simulate.event_list(...)`` generates an XMM-Newton EPIC observation with
background, soft-proton flares, constant sources and injected transients;
``inject_flare``/``inject_eclipse`` add transients to any event list; ``write``
saves an EventList as an OGIP event file.
"""
from .transients.simulate import (  # noqa: F401
    PSF_FWHM_ARCSEC,
    TRUTH_COLUMNS,
    Eclipse,
    Flare,
    SoftProtonFlare,
    Source,
    __all__,  # noqa: F401
    event_list,
    inject_eclipse,
    inject_flare,
    write,
)
