"""Thin wrappers around the missions' own reduction software.

- :mod:`xcube.tools.runner`: :class:`Task` and :func:`run` (command line,
  private parameter files, environment, log, timeout, output checks,
  skip-if-done) and the errors :class:`ToolError`, :class:`ToolTimeout`,
  :class:`ToolNotFoundError`.
- :mod:`xcube.tools.batch`: :func:`run_many`, many tasks on Dask with
  dependencies, one status row per task.
- :mod:`xcube.tools.sas`: XMM-Newton SAS, up to :func:`sas.process_observation`
  (ODF -> cleaned event lists for ``xcube.open_events``, and on to images,
  exposure maps and spectra with responses); :mod:`xcube.tools.sas_rgs` (the
  RGS chain), :mod:`xcube.tools.sas_products` (images, exposure maps,
  spectra), :mod:`xcube.tools.sas_pipeline` (the steps);
- :mod:`xcube.tools.process`: ``xcube process``, many observations on the
  survey's Dask engine with a status table and resume.
- :mod:`xcube.tools.heasoft`: any HEASoft task by name plus helpers (RXTE,
  NICER, Swift-XRT, NuSTAR, barycorr, ftselect, ftmerge).
- :mod:`xcube.tools.hxmt`: the Insight-HXMT LE/ME/HE chains of HXMTDAS.
- :mod:`xcube.tools.provenance`: per-product records and the product graph.
- helpers of the runner: :mod:`~xcube.tools.staging` (temporary output names,
  kept copies), :mod:`~xcube.tools.procs` (stopping a tool and everything it
  started), :mod:`~xcube.tools.journal` (run journals; the clean-up after a
  driver killed with SIGKILL), :mod:`~xcube.tools.logs` (bounded log reading),
  :mod:`~xcube.tools.packages` (packages and versions), :mod:`~xcube.tools.files`
  (checksums, FITS checks).

Importing this package is cheap: Dask, networkx and matplotlib are imported
only when used. ``import xcube`` does not import it.
"""
from __future__ import annotations

from .._lazy import keep_functions, namespace

_NAMES = {"run_many": "batch", "draw_provenance": "provenance", "provenance": "provenance", "records": "provenance",
          "Glob": "runner", "OutputError": "runner", "Task": "runner", "TaskResult": "runner",
          "ToolError": "runner", "ToolNotFoundError": "runner", "ToolTimeout": "runner", "run": "runner"}
_SUBMODULES = ("sas", "heasoft", "hxmt", "sas_rgs", "sas_products", "sas_pipeline", "process", "batch", "runner",
               "provenance")
__all__ = [*_NAMES, "sas", "heasoft", "hxmt"]
__getattr__, __dir__ = namespace(__name__, _NAMES, _SUBMODULES)
keep_functions(__name__, _NAMES)
