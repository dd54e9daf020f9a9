"""``xcube process``: XMM-Newton processing of an archive on the survey's Dask engine.

Each observation ``ROOT/<obsid>/`` (its unpacked ODF there, or in
``ROOT/<obsid>/odf/``) becomes one task on the cluster the survey uses
(:func:`xcube.survey.engine.make_client`: a LocalCluster, a scheduler
address, or SLURM/PBS through dask-jobqueue). The task runs
:func:`xcube.tools.sas_pipeline.process_observation` for the requested steps
into ``OUT/<obsid>/``, its SAS tasks on local threads of the worker.

Status. After each step of an observation the task commits a record
``OUT/<obsid>/step-<step>/run.json`` atomically (:func:`xcube.survey.status.write_run`);
``OUT/status.parquet`` is derived from those records (one row per observation
and step, columns :data:`COLUMNS`). Resume: a step recorded ``done`` with the
same options (``param_hash``) is not planned again; ``failed`` steps only with
``retry_failed``; ``overwrite`` redoes everything. Inside a step, every SAS
task is skipped when its products are up to date, so a killed run loses at
most the tasks that were running. One driver at a time holds ``OUT``: the
survey lock (``OUT/.survey.lock``, :mod:`xcube.survey.lock`), released by the
kernel when a driver dies. A driver killed with SIGKILL leaves its tasks'
records consistent; the next run takes the lock over and tasks of the old
one stop at their next step.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["COLUMNS", "ALL_INSTRUMENTS", "find_odfs", "plan_process", "process_one", "process_archive",
           "ProcessResult", "ProcessAborted"]

log = logging.getLogger("xcube.tools.process")

ALL_INSTRUMENTS = ("pn", "mos1", "mos2", "rgs1", "rgs2")
STEP_PREFIX = "step-"

COLUMNS = {
    "obsid": "string", "run_id": "string", "step": "string", "state": "string", "param_hash": "string",
    "n_tasks": "int64", "n_done": "int64", "n_skipped": "int64", "n_failed": "int64", "wall_time": "float64",
    "error_class": "string", "message": "string", "products": "string", "odf": "string",
    "sas_version": "string", "xcube_version": "string", "worker": "string", "started": "string",
    "finished": "string", "token": "string",
}


class ProcessAborted(RuntimeError):
    """A newer ``xcube process`` owns the output directory; this task of an older one stops."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def find_odfs(observations, archive=None) -> dict[str, Path]:
    """obsid -> ODF directory, from a list file of observation ids (or a list
    of ids, or of ODF directories). With ``archive``, an id is
    ``archive/<obsid>/`` or its ``odf/`` (``ODF/``) sub-directory, whichever
    holds the ``*SUM.ASC``; a missing one is kept (its task fails with the
    path in the message). Eager, cheap (directory listings)."""
    from ..io.paths import safe_component
    from ..survey.observations import read_obslist
    from ..survey.vetting import looks_like_path

    if isinstance(observations, (str, Path)) and Path(observations).is_file():
        items = read_obslist(observations, archive=archive)  # ("obs space" in the archive kept whole)
    elif isinstance(observations, (str, Path)):
        p = Path(observations)
        in_archive = archive is not None and not p.is_absolute() and (Path(archive) / p).exists()
        if not p.is_dir() and not in_archive and (archive is None or looks_like_path(str(observations))):
            raise FileNotFoundError(f"{observations}: no such observation list or ODF directory"
                                    + ("" if archive is None else f" (nor {Path(archive) / p})"))
        items = [str(observations)]
    else:
        items = [str(x) for x in observations]
    if not items:
        raise ValueError(f"{observations}: no observation in the list")
    root = Path(archive) if archive is not None else None
    if root is not None and not root.is_dir():
        raise FileNotFoundError(f"archive root {root}: not a directory; pass --archive the folder holding <obsid>/")
    out = {}
    for item in items:
        p = Path(item)
        base = p if (p.is_absolute() or root is None) else root / item
        obsid = safe_component(p.name, "observation id")
        cands = [base, base / "odf", base / "ODF"]
        out[obsid] = next((c for c in cands if c.is_dir() and any(c.glob("*SUM.ASC"))), base)
    return out


#: the largest EPIC energy [keV] a band may reach (pn PI 0-20479 eV)
MAX_ENERGY_KEV = 20.48


def check_options(options: dict) -> None:
    """``ValueError`` naming a processing option (:func:`process_archive`'s
    ``options``) out of its range, before any SAS task runs: bands [keV]
    finite with ``0 <= lo < hi <=`` :data:`MAX_ENERGY_KEV`, ``source``
    (RA, Dec) [deg] on the sky, ``source_radius`` [arcsec] > 0,
    ``background_radii`` [arcsec] ``0 <= inner < outer``, ``group_min`` a
    whole number >= 0 (0 or None: no grouping), ``tool_workers`` one >= 1,
    ``timeout`` [s] > 0. Eager."""
    def band(name, b):
        try:
            lo, hi = (float(v) for v in b)
        except (TypeError, ValueError):
            raise ValueError(f"{name}={b!r}: give (EMIN, EMAX) in keV") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo < hi <= MAX_ENERGY_KEV):
            raise ValueError(f"{name}=({lo:g}, {hi:g}) keV: need 0 <= EMIN < EMAX <= {MAX_ENERGY_KEV:g} keV "
                             "(the EPIC PI range)")

    def numbers(name, value, n):
        try:
            out = [float(v) for v in value]
        except (TypeError, ValueError):
            raise ValueError(f"{name}={value!r}: give {n} numbers") from None
        if len(out) != n:
            raise ValueError(f"{name}={value!r}: give {n} numbers")
        return out

    o = options
    if o.get("energy_band") is not None:
        band("energy_band (--energy)", o["energy_band"])
    for b in o.get("image_bands") or ():
        band("image_bands (--bands)", b)
    if o.get("source") is not None:
        ra, dec = numbers("source (--source)", o["source"], 2)
        if not (math.isfinite(ra) and math.isfinite(dec) and 0.0 <= ra <= 360.0 and -90.0 <= dec <= 90.0):
            raise ValueError(f"source=({ra:g}, {dec:g}): need RA in [0, 360] and Dec in [-90, 90] deg")
    (r,) = numbers("source_radius (--src-radius)", [o.get("source_radius", 30.0)], 1)
    if not (math.isfinite(r) and r > 0):
        raise ValueError(f"source_radius (--src-radius) = {r:g} arcsec: must be a positive number")
    rin, rout = numbers("background_radii (--bkg-radii)", o.get("background_radii", (60.0, 120.0)), 2)
    if not (math.isfinite(rin) and math.isfinite(rout) and 0.0 <= rin < rout):
        raise ValueError(f"background_radii (--bkg-radii) = ({rin:g}, {rout:g}) arcsec: need 0 <= inner < outer")
    for name, least in (("group_min", 0), ("tool_workers", 1)):  # (group_min 0 or None: no grouping)
        v = o.get(name)
        if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                  and int(v) == v and v >= least):
            raise ValueError(f"{name} = {v!r}: must be a whole number >= {least}")
    t = o.get("timeout")
    if t is not None and not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
        raise ValueError(f"timeout (--tool-timeout) = {t!r} s: must be a positive number of seconds")


def options_hash(step: str, options: dict) -> str:
    """Hash of what defines a step's products (its name and the processing
    options; ``tool_workers`` does not count)."""
    ident = json.dumps({"step": step, **{k: v for k, v in options.items() if k != "tool_workers"}},
                       sort_keys=True, default=str)
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def plan_process(odfs: dict, steps, options: dict, existing, *, retry_failed: bool = False,
                 overwrite: bool = False) -> dict[str, list[str]]:
    """obsid -> steps still to do (observations with nothing to do left out).
    A step is done when recorded ``done`` with the same options hash
    (``failed``/``timeout`` ones count as done unless ``retry_failed``); the
    steps after one to do are done again too (their inputs change). Eager
    (pure look-ups in ``existing``; runs nothing)."""
    from .sas_pipeline import steps_to_run

    todo_steps = steps_to_run(steps)
    known = {(r.obsid, r.step): (r.param_hash, r.state) for r in existing.itertuples()}
    plan = {}
    for obsid in odfs:
        todo = []
        for s in todo_steps:
            prev = known.get((obsid, s))
            if overwrite or prev is None or prev[0] != options_hash(s, options):
                todo.append(s)
            elif prev[1] in ("failed", "timeout") and retry_failed:
                todo.append(s)
            elif prev[1] not in ("done", "failed", "timeout"):
                todo.append(s)
        if todo:  # a step redone makes new inputs for the steps after it: they run again too
            plan[obsid] = todo_steps[todo_steps.index(todo[0]):]
    return plan


def _check_owner(out: Path, token: str) -> None:
    from ..survey.lock import lock_owner

    owner = lock_owner(out)
    if owner is not None and owner != token:
        raise ProcessAborted(f"{out}: a newer xcube process ({owner}) owns this directory; task of {token} stops")


def _step_record(step, table, *, base: dict, started: str, products: dict) -> dict:
    states = table["state"].value_counts().to_dict() if len(table) else {}
    bad = table[table["state"].isin(["failed", "timeout"])] if len(table) else table
    rec = dict(base, step=step, n_tasks=int(len(table)), n_done=int(states.get("done", 0)),
               n_skipped=int(states.get("skipped", 0)), n_failed=int(len(bad)), started=started, finished=_now(),
               state="failed" if len(bad) else "done", products=json.dumps(products, default=str))
    if len(bad):
        rec["error_class"] = str(bad.iloc[0]["error_class"])
        rec["message"] = "; ".join(_task_message(r) for r in bad.head(3).itertuples())
    rec["wall_time"] = float(table["wall_time"].sum()) if len(table) else 0.0
    return rec


def _task_message(row, limit: int = 300) -> str:
    """One failed task of a step's status table in a line: its name, error
    class and message (first line, at most ``limit`` characters) and its log
    file in full, which a cut message would lose (a long output path)."""
    msg = str(row.message or "").split("\n")[0]
    log_file = getattr(row, "log", None)
    if isinstance(log_file, str) and log_file:
        msg = msg.replace(f"; see {log_file}", "")
    msg = msg if len(msg) <= limit else msg[:limit - 3] + "..."
    return f"{row.task}: {row.error_class}: {msg}" + (f" (log: {log_file})" if isinstance(log_file, str) and
                                                       log_file else "")


def _products_of(step: str, res) -> dict:
    if res is None:
        return {}
    if step == "events":
        return {"events": {f"{i}-{e}": str(v) for (i, e), v in res.chain_events.items()},
                "attitude": str(res.attitude) if res.attitude else None}
    if step == "clean":
        return {"events": {k: str(v) for k, v in res.events.items()},
                "rgs": {f"{i}-{e}": str(v) for (i, e), v in res.rgs.items()}}
    if step == "images":
        return {f"{i}-{b[0]:g}-{b[1]:g}keV": {k: str(v) for k, v in f.items()} for (i, b), f in res.images.items()}
    if step == "spectra":
        return {i: {k: str(v) for k, v in f.items() if not k.endswith("_region")} for i, f in res.spectra.items()}
    return {}


def process_one(obsid: str, odf, out, steps, options: dict, token: str) -> list[dict]:
    """Dask task: process one observation into ``out/<obsid>/`` and commit a
    record per step run. Returns the records; never raises for a processing
    failure (it is recorded in the steps that did not finish). Eager: runs the
    whole chain of the observation here, blocking, and writes the records."""
    from .._version import __version__
    from ..io.paths import inside
    from ..survey.status import write_run
    from .sas_pipeline import process_observation, steps_to_run

    out = Path(out)
    obs_out = inside(out, obsid, what="observation output directory")
    base = {"obsid": obsid, "odf": str(odf), "xcube_version": __version__, "token": token,
            "worker": f"{socket.gethostname()}:{os.getpid()}"}
    records: dict[str, dict] = {}
    started = {"t": _now()}

    def commit(step, table, products):
        _check_owner(out, token)
        rec = _step_record(step, table, base=dict(base, param_hash=options_hash(step, options),
                                                  sas_version=getattr(products, "sas_version", None)),
                           started=started["t"], products=_products_of(step, products))
        upstream = [s for s, r in records.items() if r["state"] != "done" and s in steps_to_run([step])[:-1]]
        if upstream and rec["state"] == "done":  # it ran without what the failed step should have made
            rec.update(state="failed", error_class="UpstreamFailed",
                       message=f"step {upstream[0]} failed ({str(records[upstream[0]].get('message', ''))[:300]}); "
                               f"{step} ran without its products")
        write_run(out, obsid, STEP_PREFIX + step, rec, overwrite=True)
        records[step] = rec
        started["t"] = _now()

    opts = {k: v for k, v in options.items() if k != "tool_workers"}
    try:
        process_observation(odf, obs_out, steps=steps, workers=options.get("tool_workers"), on_step=commit, **opts)
    except ProcessAborted:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded per step, the archive goes on
        for step in steps_to_run(steps):
            if step not in records:
                rec = dict(base, param_hash=options_hash(step, options), step=step, state="failed", n_tasks=0,
                           n_done=0, n_skipped=0, n_failed=0, wall_time=0.0, error_class=type(exc).__name__,
                           message=str(exc)[:2000], started=started["t"], finished=_now(), products="{}")
                _check_owner(out, token)
                write_run(out, obsid, STEP_PREFIX + step, rec, overwrite=True)
                records[step] = rec
    return list(records.values())


@dataclass
class ProcessResult:
    """What :func:`process_archive` did: the whole status table of ``out``
    (one row per observation and step), how many observations were submitted,
    wall time [s] and the state counts."""

    out: Path
    status: object
    n_observations: int = 0
    wall_time: float = 0.0
    counts: dict = field(default_factory=dict)
    dashboard_link: str | None = None


def process_archive(observations, out, *, archive=None, steps=("events", "clean"), instruments=ALL_INSTRUMENTS,
                    options: dict | None = None, compute=None, retry_failed: bool = False, overwrite: bool = False,
                    progress: bool = True, flush_interval: float = 10.0, **engine) -> ProcessResult:
    """Process many XMM-Newton observations (eager; blocks until done).

    ``observations``/``archive``: see :func:`find_odfs`. ``steps``: any of
    ``events``, ``clean``, ``images``, ``spectra`` (with what they need).
    ``options``: keywords of :func:`~xcube.tools.sas_pipeline.process_observation`
    (``energy_band``, ``flare_filter``, ``mos_ccd_states``, ``image_bands``,
    ``source``, ``source_radius``, ``background_radii``, ``group_min``,
    ``timeout`` per SAS task [s], ``tool_workers`` threads per observation).
    ``compute``: the engine, as for :func:`xcube.survey.run` (a
    :class:`~xcube.survey.engine.Compute`, whose ``retries`` default to 1
    here, or a ``distributed.Client``). Returns a :class:`ProcessResult`.
    """
    from ..survey.engine import engine_of
    from ..survey.lock import SurveyLock
    from ..survey.status import clean_stale, rebuild_status, scan_runs, write_status

    t0 = time.perf_counter()
    check_options(options or {})
    odfs = find_odfs(observations, archive)  # (both before any worker starts)
    client, compute = engine_of(compute, engine, default_retries=1, caller="process_archive")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    opts = dict(options or {}, instruments=list(instruments))
    token = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    echo = (lambda *a: print(*a, file=sys.stderr, flush=True)) if progress else (lambda *a: None)
    lock = SurveyLock(out, token).acquire()  # one driver at a time, released by the kernel if killed
    close, dashboard = None, None
    try:
        clean_stale(out)
        existing = scan_runs(out, COLUMNS)
        write_status(out, existing)
        plan = plan_process(odfs, steps, opts, existing, retry_failed=retry_failed, overwrite=overwrite)
        echo(f"xcube process: {len(odfs)} observations into {out}: {len(odfs) - len(plan)} complete, "
             f"{len(plan)} to do")
        if plan:
            if client is None:
                client, close = compute.start()
            dashboard = getattr(client, "dashboard_link", None)
            echo(f"dask dashboard: {dashboard}")
            _run_plan(client, plan, odfs, out, opts, token, existing, retries=compute.retries, progress=progress,
                      flush_interval=flush_interval)
        status = rebuild_status(out, COLUMNS)
    finally:
        if close is not None:
            close()
        lock.release()
    counts = {str(k): int(v) for k, v in status["state"].value_counts().items()} if len(status) else {}
    echo(f"xcube process finished in {time.perf_counter() - t0:.1f} s: {out / 'status.parquet'} ({counts})")
    return ProcessResult(out=out, status=status, n_observations=len(plan), wall_time=time.perf_counter() - t0,
                         counts=counts, dashboard_link=dashboard)


def _lost(out: Path, obsid, steps, odf, opts, token, exc) -> list[dict]:
    """Failure records, committed, for the steps of a task that died (e.g. its
    worker, on every attempt); steps the task committed itself are kept."""
    from ..survey.status import read_run, write_run
    from .sas_pipeline import steps_to_run

    records = []
    for s in steps_to_run(steps):
        prev = read_run(out / obsid / (STEP_PREFIX + s))
        if prev is not None and prev.get("token") == token:
            records.append(prev)
            continue
        rec = {"step": s, "state": "failed", "param_hash": options_hash(s, opts), "error_class": type(exc).__name__,
               "message": f"observation {obsid}: task failed: {exc}"[:2000], "odf": str(odf), "token": token,
               "finished": _now(), "n_tasks": 0, "n_done": 0, "n_skipped": 0, "n_failed": 0}
        write_run(out, obsid, STEP_PREFIX + s, rec, overwrite=True)
        records.append(dict(rec, obsid=obsid, run_id=STEP_PREFIX + s))
    return records


def _run_plan(client, plan, odfs, out, opts, token, existing, *, retries, progress, flush_interval):
    from ..survey.collect import collect
    from ..survey.progress import SurveyProgress
    from ..survey.status import write_status

    table = {(r["obsid"], r["step"]): r for r in existing.to_dict("records")}
    futures = {}
    for obsid, steps in plan.items():
        fut = client.submit(process_one, obsid, str(odfs[obsid]), str(out), steps, opts, token,
                            key=f"xcube-process-{obsid}-{token}", retries=retries, pure=False)
        futures[fut] = obsid

    def record(obsid, records):
        for r in records:
            table[(obsid, r["step"])] = dict(r, run_id=STEP_PREFIX + r["step"])

    def lost(obsid, fut, exc):  # KilledWorker and the like: recorded, the rest goes on
        return _lost(out, obsid, plan[obsid], odfs[obsid], opts, token, exc)

    collect(futures, record=record, lost=lost, flush=lambda final: write_status(out, list(table.values()), COLUMNS),
            bar=SurveyProgress(len(futures), enabled=progress, label="process", runs_label="steps"),
            flush_interval=flush_interval, passthrough=(ProcessAborted,))
