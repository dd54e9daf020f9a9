"""xcube: time-domain X-ray astronomy on xarray + Dask."""
from ._version import __version__
from .io import open_archive, open_events, to_zarr

__all__ = ["__version__", "open_events", "open_archive", "to_zarr"]
