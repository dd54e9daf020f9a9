"""Readers and writers: FITS events, the Zarr event cache, OGIP products.

Names are imported on first use (``xcube.io.open_events``), so the command
line and ``import xcube`` stay light."""
from .._lazy import namespace

_NAMES = {"open_events": "events", "open_archive": "events", "to_zarr": "cache", "open_zarr_events": "cache"}
__all__ = list(_NAMES)
__getattr__, __dir__ = namespace(__name__, _NAMES)
