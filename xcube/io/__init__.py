"""Readers and writers: FITS events, the Zarr event cache, OGIP products."""
from .. import accessor  # noqa: F401  (the .xcube accessor, with the first xcube datasets)
from .cache import open_zarr_events, to_zarr
from .events import open_archive, open_events

__all__ = ["open_events", "open_archive", "to_zarr", "open_zarr_events"]
