"""Binning of event lists into counts cubes over (time, energy, y, x).

* :mod:`~xcube.binning.axes`: axes (regular, explicit edges, half-bin shifted).
* :mod:`~xcube.binning.kernels`: numba histogram kernels.
* :mod:`~xcube.binning.engine`: the lazy :func:`bin_events`.
* :mod:`~xcube.binning.sky`: WCS and RA/Dec of binned sky grids.
"""
from .axes import Axis, energy_axis, pixel_arcsec, sky_axis, time_axis
from .engine import DEFAULT_CHUNK_BYTES, bin_events
from .memory import check_size
from .sky import cube_wcs

__all__ = [
    "Axis",
    "time_axis",
    "energy_axis",
    "sky_axis",
    "pixel_arcsec",
    "bin_events",
    "check_size",
    "cube_wcs",
    "DEFAULT_CHUNK_BYTES",
]
