"""The survey status store: one record per run, kept where the run's results are.

Every finished run (whatever its state) is a directory ``out/<obsid>/<run_id>/``
created atomically (written under a temporary name, then renamed) that holds
its own status record ``run.json``. The table ``out/status.parquet`` is derived
from those records: rebuilt by scanning the run directories at the start and
end of a survey, updated as runs finish, and always replaced atomically
(``os.replace`` of a complete temporary file). A survey killed at any moment
therefore loses nothing (a renamed run directory carries its record) and
duplicates nothing (one directory per run id).

Columns of the status table (one row per run):

=================== =====================================================
obsid, run_id       observation id; run directory name
param_hash          hash of the run's parameter values (``SearchParams.hash``)
state               ``done``, ``failed``, ``skipped`` (nothing to search,
                    e.g. no good time; ``message`` says why) or ``timeout``
time_bin, emin,     the run's parameters [s, keV, keV, sigma, arcsec];
emax, sigma,        ``extra`` is a JSON string of further search keywords
size_arcsec, extra
wall_time           seconds spent on this run (search + writing)
cpu_time            CPU seconds of the worker process during the run (all its threads)
open_time           seconds spent opening the observation's events (once per task)
peak_rss_mb         peak resident memory of the worker process during the run [MiB]
n_detections        number of detections (0 unless done; -1 for a done run whose record lacks a valid count)
xcube_version       version that ran it
error_class,        exception class and message of a failed/timed-out run
message             (``message`` holds the reason of a skipped run)
traceback_file      traceback path relative to ``out`` (failed runs)
search_run_id       run id reported by the search
exposure,           from the search summary: good exposure [s], bad frames,
n_bad_frames,       bad time intervals, expected number of false alarms
n_bti,              (peak + eclipse)
expected_false_alarms
files               JSON list of the observation's event files
inputs              JSON list of [resolved path, size in bytes, modification
                    time in ns] of those files when the survey was planned:
                    a resumed survey redoes a run made from other files
worker, started,    where and when (UTC ISO 8601) it ran; ``token`` identifies
finished, token     the survey invocation that wrote it
=================== =====================================================
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import pandas as pd

from ..io.atomic import atomic_dir, write_table
from ..io.paths import inside

__all__ = [
    "STATES", "COLUMNS", "RECORD_FILE", "STATUS_FILE", "write_run", "read_run", "scan_runs",
    "read_status", "write_status", "rebuild_status", "clean_stale", "run_dirs", "json_default",
]

log = logging.getLogger("xcube.survey")

STATES = ("done", "failed", "skipped", "timeout")
RECORD_FILE = "run.json"
STATUS_FILE = "status.parquet"
CATALOGUE_DIR = "catalogue"

COLUMNS = {
    "obsid": "string",
    "run_id": "string",
    "param_hash": "string",
    "state": "string",
    "time_bin": "float64",
    "emin": "float64",
    "emax": "float64",
    "sigma": "float64",
    "size_arcsec": "float64",
    "extra": "string",
    "wall_time": "float64",
    "cpu_time": "float64",
    "open_time": "float64",
    "peak_rss_mb": "float64",
    "n_detections": "int64",
    "xcube_version": "string",
    "error_class": "string",
    "message": "string",
    "traceback_file": "string",
    "search_run_id": "string",
    "exposure": "float64",
    "n_bad_frames": "float64",
    "n_bti": "float64",
    "expected_false_alarms": "float64",
    "files": "string",
    "inputs": "string",
    "worker": "string",
    "started": "string",
    "finished": "string",
    "token": "string",
}


def json_default(v):
    """JSON fallback for status records: numpy scalars as Python numbers, anything else as ``str``."""
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    return str(v)


def write_run(out, obsid: str, run_id: str, record: dict, writer=None, overwrite: bool = False) -> Path:
    """Create the run directory ``out/<obsid>/<run_id>/`` atomically.

    ``writer(tmpdir)``, if given, writes the run's result files into the
    temporary directory; ``record`` (a status row, see module doc) is then
    written as ``run.json`` and the directory renamed into place, replacing an
    existing one when ``overwrite``. Returns the final path. ``obsid`` and
    ``run_id`` must keep the directory inside ``out`` (``ValueError`` otherwise;
    see :func:`xcube.io.paths.inside`).
    """
    target = inside(out, obsid, run_id, what="run directory")
    with atomic_dir(target, overwrite=overwrite) as tmp:
        if writer is not None:
            writer(tmp)
        rec = dict(record, obsid=obsid, run_id=run_id)
        (tmp / RECORD_FILE).write_text(json.dumps(rec, default=json_default, indent=1))
    return target


def read_run(run_dir, warn: bool = False) -> dict | None:
    """The status record of a run directory (its ``run.json`` as a dict), or
    None if it has none or it is unreadable (not JSON, JSON that is not an
    object such as ``[1, 2]``, or an object without a state of
    :data:`STATES`): such a run counts as not done, and a survey redoes it.
    With ``warn``, an unreadable record is named in a warning (a missing one
    is not). Reads that small file eagerly."""
    path = Path(run_dir) / RECORD_FILE
    try:
        rec = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        problem = f"cannot be read ({exc})"
    else:
        if isinstance(rec, dict) and rec.get("state") in STATES:
            return rec
        problem = (f"has no state ({', '.join(STATES)})" if isinstance(rec, dict)
                   else f"is not a JSON object but {type(rec).__name__} {json.dumps(rec)[:40]}")
    if warn:
        log.warning("%s: the status record of run %s %s; the run counts as not done (it is left out of the status "
                    "table and the catalogue) and running the survey again redoes it", path, path.parent.name,
                    problem)
    return None


def _visible_dirs(d: Path):
    try:
        with os.scandir(d) as it:
            return sorted(e.path for e in it if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []


def run_dirs(out):
    """Paths of all run directories ``out/<obsid>/<run_id>/`` that hold a record."""
    out = Path(out)
    for obs_dir in _visible_dirs(out):
        if Path(obs_dir).name == CATALOGUE_DIR:
            continue
        for rd in _visible_dirs(Path(obs_dir)):
            if os.path.isfile(os.path.join(rd, RECORD_FILE)):
                yield Path(rd)


def _frame(records, columns: dict | None = None) -> pd.DataFrame:
    columns = COLUMNS if columns is None else columns
    df = pd.DataFrame.from_records(list(records), columns=list(columns))
    for col, dtype in columns.items():
        if col == "n_detections" and "state" in df:  # a done run whose record lacks a valid count: -1, unknown
            value = pd.to_numeric(df[col], errors="coerce")
            df[col] = value.where(value.notna() | (df["state"] != "done"), -1).fillna(0).astype("int64")
        elif dtype == "int64":
            df[col] = pd.to_numeric(df[col], errors="coerce").fillna(0).astype("int64")
        elif dtype == "float64":
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        else:
            df[col] = df[col].astype("string")
    return df.sort_values(["obsid", "run_id"], kind="stable").reset_index(drop=True)


def scan_runs(out, columns: dict | None = None) -> pd.DataFrame:
    """Status table built from the run directories' records (eager: reads every
    ``run.json``; an unreadable one is left out with a warning naming it, see
    :func:`read_run`). ``columns``: name -> dtype of the table (default the survey's
    :data:`COLUMNS`; ``xcube process`` keeps its own, with ``obsid`` and ``run_id``)."""
    records = []
    for rd in run_dirs(out):
        rec = read_run(rd, warn=True)
        if rec is not None:
            rec["obsid"], rec["run_id"] = rd.parent.name, rd.name
            records.append(rec)
    return _frame(records, columns)


def read_status(out) -> pd.DataFrame:
    """``out/status.parquet`` as a DataFrame, one row per task, read eagerly
    (empty, with the columns, if absent)."""
    path = Path(out) / STATUS_FILE
    if not path.exists():
        return _frame([])
    return pd.read_parquet(path)


def write_status(out, table, columns: dict | None = None) -> Path:
    """Write ``out/status.parquet`` atomically from a DataFrame or a list of
    records (``columns`` as in :func:`scan_runs`)."""
    out = Path(out)
    df = table if isinstance(table, pd.DataFrame) else _frame(table, columns)
    return write_table(out / STATUS_FILE, df)


def rebuild_status(out, columns: dict | None = None) -> pd.DataFrame:
    """Rescan the run directories and rewrite ``out/status.parquet``; returns the table."""
    df = scan_runs(out, columns)
    Path(out).mkdir(parents=True, exist_ok=True)
    write_status(out, df)
    return df


def clean_stale(out, older_than: float = 0.0) -> int:
    """Remove temporaries left by an interrupted survey: run directories
    (``out/<obsid>/.<run_id>.tmp-*`` and ``.old-*``) and status tables
    (``out/.status.parquet.tmp-*``) older than ``older_than`` seconds, and
    catalogue builds (``out/.catalogue.tmp-*``, ``.old-*``) older than
    :data:`xcube.io.atomic.STALE_SECONDS` (an hour; ``xcube catalogue`` may
    be building one while a survey runs). Returns how many were removed.
    Call only when no survey writes to ``out``."""
    from ..io.atomic import STALE_SECONDS, remove_stale

    n = remove_stale(Path(out) / STATUS_FILE, age=older_than)
    n += remove_stale(Path(out) / CATALOGUE_DIR, age=max(older_than, STALE_SECONDS))
    now = time.time()
    for obs_dir in _visible_dirs(Path(out)):
        with os.scandir(obs_dir) as it:
            for e in it:
                if e.name.startswith(".") and (".tmp-" in e.name or ".old-" in e.name):
                    try:
                        if now - e.stat().st_mtime >= older_than:
                            shutil.rmtree(e.path, ignore_errors=True) if e.is_dir() else os.unlink(e.path)
                            n += 1
                    except OSError:
                        pass
    return n
