"""Ground-based CCD frame stacks: calibration, alignment, photometry and
differential light curves, on lazy ``(frame, y, x)`` cubes.

>>> import xcube.frames as xf
>>> night = xf.open_frames("raw/20240606/")            # DataTree of lazy cubes
>>> lc = xf.run("raw/20240606/", "red/20240606/")      # the whole pipeline -> xr.Dataset

Modules: :mod:`~xcube.frames.files` (recognising and opening frames),
:mod:`~xcube.frames.calibrate`, :mod:`~xcube.frames.timing`,
:mod:`~xcube.frames.align`, :mod:`~xcube.frames.photometry`,
:mod:`~xcube.frames.select`, :mod:`~xcube.frames.lightcurve`,
:mod:`~xcube.frames.pipeline` (steps and ``run``), :mod:`~xcube.frames.config`
and :mod:`~xcube.frames.simulate` (a generated night). photutils and
``astropy.coordinates`` are imported only by the functions that use them.
"""
from __future__ import annotations

from .calibrate import calibrate, master_bias, master_flat
from .config import DEFAULTS, load_config
from .files import open_frames, scan_frames, stack_frames
from .lightcurve import differential
from .pipeline import STEPS, run

__all__ = ["open_frames", "scan_frames", "stack_frames", "master_bias", "master_flat", "calibrate", "differential",
           "run", "load_config", "DEFAULTS", "STEPS"]
