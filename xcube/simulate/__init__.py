"""``xcube.simulate``: event-level simulations of X-ray observations.

``event_list(...)`` generates an XMM-Newton EPIC observation with background,
soft-proton flares, constant sources and transients (lazy, slab by slab);
``inject_flare``/``inject_eclipse`` add transients to any event list,
``inject_instrumental`` hot pixels, flickering pixels and multi-event
clusters (for the detector hygiene); ``efficiency`` measures the search's
detection efficiency and false detections; ``write``
saves an EventList as an OGIP event file (:func:`xcube.io.write_events.write_events`).

Modules: :mod:`.models` (what can be simulated, the truth table),
:mod:`.detector` (EPIC camera models, patterns, flags, spectra),
:mod:`.geometry` (sky and detector frames), :mod:`.components` (emission
components and their time profiles), :mod:`.scene` (the components of one
observation), :mod:`.events` (:func:`event_list`),
:mod:`.inject` (:func:`inject_flare`, :func:`inject_eclipse`).
"""
from ..io.write_events import write_events as write
from .calibration import amplitude_at, efficiency
from .events import event_list
from .inject import inject_eclipse, inject_flare, inject_instrumental
from .models import PSF_FWHM_ARCSEC, TRUTH_COLUMNS, Eclipse, Flare, SoftProtonFlare, Source

__all__ = [
    "Flare",
    "Eclipse",
    "Source",
    "SoftProtonFlare",
    "event_list",
    "efficiency",
    "amplitude_at",
    "inject_flare",
    "inject_eclipse",
    "inject_instrumental",
    "write",
    "PSF_FWHM_ARCSEC",
    "TRUTH_COLUMNS",
]
