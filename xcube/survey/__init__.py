"""Archive-wide surveys: many observations x a parameter grid on dask.distributed,
with resumable runs, a status table, a catalogue of unique sources and cross-matching.

>>> res = xcube.survey.run("obsids.txt", "survey-out", archive="/data/xmm",
...                        params=xcube.survey.parameter_grid([5, 50, 200]))
>>> cat = xcube.survey.build_catalogue("survey-out")      # prints what each quality flag removes
>>> clean = xcube.survey.vet(cat)                            # drop every flagged detection
"""
from ..transients.params import SearchParams, parameter_grid, run_id
from .catalogue import Catalogue, build_catalogue, load_detections, read_catalogue_dir
from .cluster import angular_separation, cluster_detections, cluster_positions, iau_name, spherical_mean
from .crossmatch import crossmatch, crossmatch_table, read_catalogue
from .observations import resolve_observations
from .params import param_grid
from .runner import SurveyResult, plan_survey, run
from .status import STATES, read_status, rebuild_status, scan_runs
from .vetting import CATALOGUE_FLAGS, DROP_FLAGS, flag_catalogue, flag_report, hot_regions, vet

__all__ = [
    "run", "SurveyResult", "plan_survey", "SearchParams", "parameter_grid", "param_grid", "run_id",
    "resolve_observations",
    "STATES", "read_status", "rebuild_status", "scan_runs",
    "build_catalogue", "load_detections", "read_catalogue_dir", "Catalogue",
    "cluster_detections", "cluster_positions", "spherical_mean", "angular_separation", "iau_name",
    "crossmatch", "crossmatch_table", "read_catalogue",
    "vet", "hot_regions", "flag_catalogue", "flag_report", "CATALOGUE_FLAGS", "DROP_FLAGS",
]
