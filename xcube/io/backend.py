"""xarray backend: ``xr.open_dataset(path, engine="xcube")`` gives an EventList."""
from __future__ import annotations

import os

from xarray.backends import BackendEntrypoint

from .events import EVENT_SUFFIXES, open_events


class XcubeBackendEntrypoint(BackendEntrypoint):
    """Open OGIP event files (and xcube Zarr stores) as EventLists."""

    description = "X-ray event lists (OGIP FITS) as xcube EventLists"
    url = "https://github.com/xcube-astro/xcube"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "instrument", "event_chunks")

    def open_dataset(self, filename_or_obj, *, drop_variables=None, instrument=None, event_chunks=None):
        ds = open_events(os.fspath(filename_or_obj), instrument=instrument, chunks=event_chunks)
        if drop_variables:
            ds = ds.drop_vars(drop_variables)
        return ds

    def guess_can_open(self, filename_or_obj):
        try:
            name = os.fspath(filename_or_obj).lower()
        except TypeError:
            return False
        return name.endswith(EVENT_SUFFIXES)
