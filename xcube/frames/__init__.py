"""Ground-based CCD frame stacks: calibration, alignment, photometry and
differential light curves, on lazy ``(frame, y, x)`` cubes.

>>> import xcube.frames as xf
>>> night = xf.open_frames("raw/20240606/")            # DataTree of lazy cubes
>>> lc = xf.run("raw/20240606/", "red/20240606/")      # the whole pipeline -> xr.Dataset
>>> cal = xf.calibrate.calibrate(night["V1234Cyg/R"]["image"], bias, flat)   # lazy calibrated cube

Modules: :mod:`~xcube.frames.files` (recognising and opening frames),
:mod:`~xcube.frames.calibrate`, :mod:`~xcube.frames.timing`,
:mod:`~xcube.frames.align`, :mod:`~xcube.frames.photometry`,
:mod:`~xcube.frames.select`, :mod:`~xcube.frames.lightcurve`,
:mod:`~xcube.frames.pipeline` (steps and ``run``), :mod:`~xcube.frames.config`
and :mod:`~xcube.frames.simulate` (a generated night), each reached as
``xcube.frames.<module>`` without importing it first. The names below are
imported on first use, so importing this package (as the ``xcube`` command
does) costs nothing; photutils and ``astropy.coordinates`` are imported only
by the functions that use them.
"""
from __future__ import annotations

from .._lazy import namespace

_NAMES = {"open_frames": "files", "scan_frames": "files", "stack_frames": "files", "master_bias": "calibrate",
          "master_flat": "calibrate", "differential": "lightcurve", "run": "pipeline",
          "STEPS": "pipeline", "load_config": "config", "DEFAULTS": "config"}

#: the modules named above, importable on attribute access (``xcube.frames.simulate.night(...)``)
_SUBMODULES = ("files", "calibrate", "timing", "align", "photometry", "select", "lightcurve", "pipeline", "config",
               "simulate")

__all__ = list(_NAMES)
__getattr__, __dir__ = namespace(__name__, _NAMES, submodules=_SUBMODULES)
