"""Archive-wide surveys: many observations x a parameter grid on dask.distributed,
with resumable runs, a status table, a catalogue of unique sources and cross-matching.

>>> res = xcube.survey.run("obsids.txt", "survey-out", archive="/data/xmm",
...                        params=xcube.survey.parameter_grid([5, 50, 200]))
>>> cat = xcube.survey.build_catalogue("survey-out")      # prints what each quality flag removes
>>> clean = xcube.survey.vet(cat)                            # drop every flagged detection
"""
from .._lazy import keep_functions, namespace

_NAMES = {
    "SearchParams": "..transients.params", "parameter_grid": "..transients.params", "run_id": "..transients.params",
    "Catalogue": "catalogue", "build_catalogue": "catalogue", "load_detections": "catalogue",
    "read_catalogue_dir": "catalogue", "angular_separation": "cluster", "cluster_detections": "cluster",
    "cluster_positions": "cluster", "spherical_mean": "cluster", "iau_name": "..skycoords",
    "crossmatch": "crossmatch", "crossmatch_table": "crossmatch", "read_catalogue": "..io.catalogue",
    "Compute": "engine", "resolve_observations": "observations", "param_grid": "params",
    "SurveyResult": "runner", "plan_survey": "runner", "run": "runner", "STATES": "status",
    "read_status": "status", "rebuild_status": "status", "scan_runs": "status",
    "vet": "vetting", "hot_regions": "vetting", "flag_catalogue": "vetting", "flag_report": "vetting",
    "CATALOGUE_FLAGS": "vetting", "DROP_FLAGS": "vetting",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = namespace(__name__, _NAMES)
keep_functions(__name__, _NAMES)
