"""Matplotlib figures. Plotting never happens inside compute functions: each
function takes a finished (small) product and returns a
``matplotlib.figure.Figure`` (not registered with pyplot); save it with
``fig.savefig`` or :func:`save_figure`, or from the command line with
``xcube plot FILE``. matplotlib is imported only when a function runs.

- light curves: :func:`lightcurve`, :func:`broken_lightcurve` (time axes
  broken at the GTI gaps, background and net curves overlaid),
  :func:`long_term_lightcurve`;
- timing: :func:`power_spectrum`, :func:`hardness_intensity`;
- sky: :func:`image` (RA/Dec axes through the image WCS), :func:`cube_frame`,
  :func:`bayes_map`;
- spectra: :func:`spectrum`;
- transient search: :func:`detections`, :func:`detection_lightcurves`,
  :func:`detection_summary`;
- any product file: :func:`plot_file`; several at once, saved under
  unique names: :func:`plot_files` (names: :func:`figure_paths`).
"""
from .base import save_figure
from .files import figure_paths, plot_file, plot_files
from .lightcurves import broken_lightcurve, detection_lightcurves, lightcurve, long_term_lightcurve
from .maps import bayes_map, cube_frame, detection_summary, detections, image
from .spectra import spectrum
from .timing import hardness_intensity, power_spectrum

__all__ = ["lightcurve", "broken_lightcurve", "long_term_lightcurve", "power_spectrum", "hardness_intensity",
           "image", "cube_frame", "bayes_map", "detections", "detection_lightcurves", "detection_summary",
           "plot_file", "plot_files", "figure_paths", "save_figure", "spectrum"]
