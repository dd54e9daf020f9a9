"""``xcube.survey.run``: many observations x a parameter grid on dask.distributed.

One task per observation reads its events once and runs all its parameter
sets (:func:`.task.run_observation`); each run is committed atomically as
``out/<obsid>/<run_id>/`` with its status record, and ``out/status.parquet``
is derived from those records (:mod:`.status`). Re-running the same command
skips runs already recorded with the same parameter hash and made from the
same event files (a run made from other files is redone, with a warning);
``retry_failed`` redoes failed and timed-out runs, ``overwrite`` redoes
everything. A survey killed at any moment resumes where it stopped.
"""
from __future__ import annotations

import json
import logging
import shutil
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..binning.axes import positive_width
from ..io.paths import inside, remove_empty_up_to
from ..transients.params import SearchParams, parameter_grid, run_id
from .engine import engine_of
from .lock import LOCK_FILE, SurveyLock
from .observations import changed_inputs, file_identities, resolve_observations
from .progress import SurveyProgress
from .status import clean_stale, read_run, rebuild_status, scan_runs, write_run, write_status
from .task import SurveyAborted, failure_record, run_observation

__all__ = ["run", "plan_survey", "SurveyResult", "check_survey_options"]

log = logging.getLogger("xcube.survey")


@dataclass
class SurveyResult:
    """What :func:`run` did.

    ``status`` is the whole status table of ``out`` after the survey (one row
    per run, see :mod:`xcube.survey.status`); ``n_observations`` the number
    of observations submitted this time and ``n_runs`` their planned runs;
    ``wall_time`` [s]; ``catalogue`` the catalogue directory (or None).
    """

    out: Path
    status: pd.DataFrame
    n_observations: int = 0
    n_runs: int = 0
    wall_time: float = 0.0
    dashboard_link: str | None = None
    catalogue: Path | None = None
    counts: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"SurveyResult(out={str(self.out)!r}, observations submitted={self.n_observations}, "
                f"runs planned={self.n_runs}, states={self.counts}, wall_time={self.wall_time:.1f} s)")


def _as_params(params) -> list[SearchParams]:
    if params is None:
        return parameter_grid()
    if isinstance(params, SearchParams):
        return [params]
    if isinstance(params, dict):
        return [SearchParams(**params)]
    out = [p if isinstance(p, SearchParams) else SearchParams(**p) for p in params]
    if not out:
        raise ValueError("params: empty parameter list")
    return out


def check_survey_options(*, timeout: float | None = None, catalogue: bool = True,
                         catalogue_options: dict | None = None) -> None:
    """Check the options of :func:`run` that have a range, without reading
    anything: ``ValueError`` naming the option and its value (``TypeError``
    for an unknown catalogue keyword). ``timeout`` [s]: None or a finite
    number > 0 (:func:`xcube.binning.axes.positive_width`); with
    ``catalogue``, the ``catalogue_options`` as
    :func:`xcube.survey.build_catalogue` checks them at the end of the survey
    (:func:`.catalogue.check_catalogue_values`). :func:`run` calls it before
    anything else; ``xcube survey`` checks its options as it parses them
    (a usage error, status 2)."""
    if timeout is not None:
        positive_width("timeout [s] (command line --timeout)", timeout)
    if catalogue:
        from .catalogue import check_catalogue_values

        check_catalogue_values(catalogue_options)


def plan_survey(observations: dict, out, params: list[SearchParams], *, retry_failed: bool = False,
                overwrite: bool = False, existing: pd.DataFrame | None = None, inputs: dict | None = None) -> dict:
    """Runs still to do: ``{obsid: [(run_id, SearchParams), ...]}`` (observations with
    nothing to do are left out).

    A run is done when ``out/<obsid>/<run_id>/`` records it with the same
    parameter hash, made from the observation's event files as they are now,
    in state ``done`` or ``skipped``; ``failed``/``timeout`` runs count as
    done unless ``retry_failed``; ``overwrite`` redoes all. A run made from
    other files (another ``--archive``, data reprocessed or replaced: see
    :func:`.observations.changed_inputs`; files missing now are no change)
    is redone and replaced, with a warning naming the observation and the
    files. ``existing`` is the scanned status table (scanned here if None);
    ``inputs`` a dict obsid -> :func:`.observations.file_identities`, filled
    here for the observations whose records are compared (one ``stat`` per
    file), to be reused for the tasks.
    """
    if existing is None:
        existing = scan_runs(out)
    inputs = {} if inputs is None else inputs

    def text(v):
        return None if v is None or pd.isna(v) else str(v)

    known = {(r.obsid, r.run_id): (r.param_hash, r.state, text(getattr(r, "inputs", None)), text(r.files))
             for r in existing.itertuples()}
    by_obsid = existing.groupby("obsid")["run_id"].agg(list).to_dict() if len(existing) else {}
    plan, changed = {}, {}
    for obsid, files in observations.items():
        todo = []
        for p in params:
            rid = run_id(obsid, p)
            prev = known.get((obsid, rid))
            if (overwrite or prev is None or prev[0] != p.hash
                    or (retry_failed and prev[1] in ("failed", "timeout"))):
                todo.append((rid, p))
                continue
            if obsid not in inputs:
                inputs[obsid] = file_identities(files)
            why = changed_inputs(prev[2], prev[3], inputs[obsid])
            if why is not None:
                todo.append((rid, p))
                changed.setdefault(obsid, [0, why])[0] += 1
        if todo:
            plan[obsid] = todo
        if obsid in changed:
            rids = {rid for rid, _ in todo}
            changed[obsid].append(sum(
                changed_inputs(known[(obsid, r)][2], known[(obsid, r)][3], inputs[obsid]) is not None
                for r in by_obsid.get(obsid, ()) if r not in rids))
    _warn_changed(out, changed)
    return plan


def _warn_changed(out, changed: dict, shown: int = 10) -> None:
    """Warn about the observations whose runs are redone because their event
    files changed (``changed``: obsid -> [runs redone, what changed, runs of
    other parameter sets made from the earlier files]): the first ``shown``
    by name, the rest counted."""
    for obsid, (n, why, other) in list(changed.items())[:shown]:
        kept = (f"; {other} run(s) of other parameter sets of it, made from the earlier files, are kept (the "
                f"catalogue includes them): run those parameters again or delete them from {out}/{obsid}/"
                if other else "")
        log.warning("%s: observation %s: its event files changed since %d of its recorded runs were made (%s); "
                    "those runs are redone and replaced%s", out, obsid, n, why, kept)
    if len(changed) > shown:
        log.warning("%s: ... and %d more observations whose event files changed (%d runs redone)", out,
                    len(changed) - shown, sum(v[0] for v in list(changed.values())[shown:]))


def _record_lost(out: Path, obsid: str, files, plan, token: str, exc: BaseException, tb: str,
                 inputs: list | None = None) -> list[dict]:
    """Failure records for the runs of a task that raised (e.g. its worker died
    ``allowed-failures`` + 1 times: ``KilledWorker``); runs the task committed
    before dying are kept."""
    records = []
    name = type(exc).__name__
    msg = f"observation {obsid}: task failed with {name}: {exc}"
    if name == "KilledWorker":
        msg += (
            " (the worker process died - killed or out of memory - on every attempt; raise --memory-limit or --retries)"
        )
    for rid, p in plan:
        prev = read_run(inside(out, obsid, rid, what="run directory"))
        if prev is not None and prev.get("token") == token:
            records.append(prev)
            continue
        rec = failure_record(p, files, token, exc, message=msg, worker="lost", inputs=inputs)
        rec.update(obsid=obsid, run_id=rid)

        def writer(tmp, tb=tb, rid=rid, rec=rec):
            (tmp / "traceback.txt").write_text(tb or msg)
            rec["traceback_file"] = f"{obsid}/{rid}/traceback.txt"

        write_run(out, obsid, rid, rec, writer=writer, overwrite=True)
        records.append(rec)
    return records


def _future_traceback(fut) -> str:
    try:
        tb = fut.traceback()
        return "".join(traceback.format_tb(tb)) if tb is not None else ""
    except Exception:  # noqa: BLE001
        return ""


def run(observations, out, params=None, *, archive=None, compute=None, timeout: float | None = None,
        retry_failed: bool = False, overwrite: bool = False, search=None, figures: str = "detections",
        catalogue: bool = True, catalogue_options: dict | None = None, progress: bool = True,
        flush_interval: float = 10.0, cache=None, open_kwargs: dict | None = None, **engine) -> SurveyResult:
    """Run the transient search over many observations and a parameter grid.

    Parameters
    ----------
    observations : obsid list file (with ``archive``), list of event files,
        directory, or mapping obsid -> files (see ``resolve_observations``).
    out : output directory: ``out/<obsid>/<run_id>/`` per run, ``out/status.parquet``,
        ``out/catalogue/``.
    params : list of :class:`SearchParams` (or dicts of its fields); default
        the reference grid {5, 50, 200} s x {0.2-2, 2-12, 0.2-12} keV at 3 sigma.
    compute : where to run: a :class:`~xcube.survey.engine.Compute` (a
        LocalCluster by default, an existing scheduler, or SLURM/PBS batch
        jobs; its ``retries`` are the task retries after an exception and the
        worker deaths allowed per task), or a ``distributed.Client`` used as
        it is (left open). The separate engine keywords of earlier releases
        (``client``, ``scheduler``, ``cluster``, ``workers``, ``threads``,
        ``memory_limit``, ``cluster_options``, ``retries``,
        ``dashboard_address``) still work, with a ``DeprecationWarning``.
    timeout : seconds per task (observation), > 0; unfinished runs become ``timeout``.
    retry_failed, overwrite : redo failed/timed-out runs; redo every run.
    search : search function (default ``xcube.search_transients``).
    figures : PNG figures per run: ``"detections"`` (runs with detections,
        default), ``"all"`` or ``"none"``; tables and regions are always written.
    catalogue : rebuild ``out/catalogue/`` at the end (``catalogue_options`` go
        to :func:`xcube.survey.build_catalogue`).
    cache : event cache directory for compressed (``.FTZ``, ``.gz``) or unsorted
        files, which ``open_events`` converts once; default: a temporary
        directory per task, removed when the task ends (keeping converted
        copies of a whole archive would need about as much space again).
    open_kwargs : further keywords for ``xcube.open_events`` (``instrument``, ``chunks``).

    Returns a :class:`SurveyResult`. Eager: blocks until every task finished.
    """
    t_start = time.perf_counter()
    check_survey_options(timeout=timeout, catalogue=catalogue, catalogue_options=catalogue_options)
    timeout = None if timeout is None else float(timeout)  # (checked: a number, "60" too)
    client, compute = engine_of(compute, engine)
    open_kwargs = dict(open_kwargs or {})
    if cache is not None:
        open_kwargs["cache"] = str(cache)
    out = Path(out)
    plist = _as_params(params)
    if catalogue:
        from .catalogue import check_catalogue_options

        check_catalogue_options(catalogue_options)  # a wrong --match or --exclude-obs stops it now, not at the end
    obs = resolve_observations(observations, archive=archive)  # (all checked before out is created)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: exists and is not a directory; give the survey's output directory")
    created = next((q for q in reversed([out, *out.parents]) if not q.exists()), None)
    out.mkdir(parents=True, exist_ok=True)
    token = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    try:
        lock = SurveyLock(out, token).acquire()
    except BaseException:
        _remove_unwritten(created, out)
        raise
    echo = (lambda *a: print(*a, file=sys.stderr, flush=True)) if progress else (lambda *a: None)
    owned_close = None
    dashboard = None
    failed = submitted = False
    try:
        n_stale = clean_stale(out)
        if n_stale:
            log.info("%s: removed %d temporary directories of an interrupted survey", out, n_stale)
        existing = scan_runs(out)
        write_status(out, existing)
        inputs = {}
        plan = plan_survey(obs, out, plist, retry_failed=retry_failed, overwrite=overwrite, existing=existing,
                           inputs=inputs)
        for obsid in plan:  # (what the tasks record; already taken for the observations compared)
            if obsid not in inputs:
                inputs[obsid] = file_identities(obs[obsid])
        n_runs = sum(len(v) for v in plan.values())
        log.info("%s: planned %d runs in %.1f s", out, n_runs, time.perf_counter() - t_start)
        echo(f"survey of {len(obs)} observations x {len(plist)} parameter sets into {out}: "
             f"{len(obs) * len(plist) - n_runs} runs already recorded, {n_runs} runs in {len(plan)} tasks to do")
        if plan:
            if client is None:
                client, owned_close = compute.start()
            dashboard = getattr(client, "dashboard_link", None)
            log.info("client ready after %.1f s", time.perf_counter() - t_start)
            echo(f"dask dashboard: {dashboard}")
            submitted = True
            _execute(client, obs, plan, out, lock, retries=compute.retries, timeout=timeout, search=search,
                     figures=figures, progress=progress, flush_interval=flush_interval,
                     open_kwargs=open_kwargs, existing=existing, inputs=inputs)
            log.info("tasks finished after %.1f s", time.perf_counter() - t_start)
        _check_owner(lock, out)
        status = rebuild_status(out)
        cat_dir = None
        if catalogue and (plan or not (out / "catalogue").exists() or _options_changed(out, catalogue_options)):
            from .catalogue import build_catalogue

            cat_dir = build_catalogue(out, **(catalogue_options or {})).directory
            log.info("catalogue built after %.1f s", time.perf_counter() - t_start)
        elif catalogue:
            cat_dir = out / "catalogue"
    except BaseException:
        failed = True
        raise
    finally:
        try:  # (an interrupt - Ctrl-C, SIGTERM - during the engine's shut-down must not keep the lock file)
            if owned_close is not None:
                owned_close()
        finally:
            if failed and submitted:  # (tasks still running commit runs while the engine shuts down)
                _final_status(out, lock)
            lock.release()
            if failed:
                _remove_unwritten(created, out)
    counts = status["state"].value_counts().to_dict() if len(status) else {}
    res = SurveyResult(out=out, status=status, n_observations=len(plan), n_runs=n_runs,
                       wall_time=time.perf_counter() - t_start, dashboard_link=dashboard, catalogue=cat_dir,
                       counts={str(k): int(v) for k, v in counts.items()})
    echo(f"survey finished in {res.wall_time:.1f} s: status table {out / 'status.parquet'} "
         f"({', '.join(f'{k} {v}' for k, v in res.counts.items())})")
    return res


def _final_status(out: Path, lock: SurveyLock) -> None:
    """Rebuild ``out/status.parquet`` from the run records after a survey
    stopped (interrupted, or an error) once its engine is shut down, so that
    it holds the runs its tasks committed meanwhile; not when another survey
    took ``out`` over (the table is that survey's to write). A failure to
    write it is logged: the next survey rebuilds it anyway."""
    try:
        if lock.owned():
            rebuild_status(out)
    except Exception as exc:  # noqa: BLE001 - the survey's own error is the one to report
        log.warning("%s: status table not rebuilt after the survey stopped (%s); the next survey rebuilds it",
                    out, exc)


def _remove_unwritten(created: Path | None, out: Path) -> None:
    """After a failed survey: remove ``out`` and the parents this survey
    created (``created``, the topmost) when no run was written into it, so
    that a survey that never ran leaves no empty directory. Only a directory
    this survey created is removed, and only when it holds nothing but the
    status table (and hidden temporaries) and no other survey has taken it
    over (its lock file is there)."""
    if created is None or not out.is_dir() or (out / LOCK_FILE).exists():  # (a lock left: another survey's)
        return
    try:
        if any(not p.name.startswith(".") and p.name != "status.parquet" for p in out.iterdir()):
            return
        shutil.rmtree(out)
    except OSError:
        return
    remove_empty_up_to(out.parent, created)


def _options_changed(out: Path, catalogue_options: dict | None) -> bool:
    """Whether the catalogue options differ from those ``out/catalogue/catalogue.json`` records
    (or it records none), so that a finished survey re-run with other --match/--radius/--exclude-obs
    rebuilds its catalogue."""
    from .catalogue import catalogue_options_record, recorded_options

    before = recorded_options(out)
    now = json.loads(json.dumps(catalogue_options_record(**(catalogue_options or {})), default=str))
    if before != now:
        log.info("%s: catalogue options differ from those of the catalogue written; rebuilding it", out)
        return True
    return False


def _check_owner(lock: SurveyLock, out: Path) -> None:
    """Raise :class:`SurveyAborted` when another survey has taken ``out`` over:
    its results and status table are then that survey's to write."""
    if lock.path.exists() and not lock.owned():
        from .lock import lock_owner

        raise SurveyAborted(
            f"{out}: another survey ({lock_owner(out)}) took this output directory over while survey "
            f"{lock.token} ran; this one stopped without writing its status table. Let the other survey "
            "finish (or stop it), then run again to resume"
        )


def _warm_up() -> None:
    import xcube  # noqa: F401

    try:
        import xcube.transients  # noqa: F401
    except ImportError:
        pass


def _execute(client, obs, plan, out, lock, **kw):
    """Run the planned tasks on ``client``; a survey stopped because another
    took ``out`` over raises :class:`SurveyAborted` with the driver's account."""
    try:
        _run_tasks(client, obs, plan, out, lock, **kw)
    except SurveyAborted:
        _check_owner(lock, out)
        raise


def _run_tasks(client, obs, plan, out, lock, *, retries, timeout, search, figures, progress,
               flush_interval, open_kwargs, existing, inputs):
    from .collect import collect

    token = lock.token
    table = {(r["obsid"], r["run_id"]): r for r in existing.to_dict("records")}
    try:  # import the package once per worker up front, so that the first tasks do not pay for it
        t0 = time.perf_counter()
        client.run(_warm_up)
        log.info("workers warmed up in %.1f s", time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - only an optimisation
        log.debug("worker warm-up failed: %s", exc)
    futures = {}
    for obsid, todo in plan.items():
        fut = client.submit(run_observation, obsid, obs[obsid], todo, out, token=token, timeout=timeout,
                            search=search, figures=figures, open_kwargs=open_kwargs, inputs=inputs[obsid],
                            key=f"xcube-survey-{obsid}-{token}", retries=retries, pure=False)
        futures[fut] = obsid

    def record(obsid, records):
        for r in records:
            table[(obsid, r["run_id"])] = r

    def lost(obsid, fut, exc):
        if type(exc).__name__ == "SurveyAborted" or not lock.owned():
            raise SurveyAborted(str(exc)) from exc
        return _record_lost(out, obsid, obs[obsid], plan[obsid], token, exc, _future_traceback(fut), inputs[obsid])

    def flush(final):
        if not final or lock.owned() or not lock.path.exists():
            write_status(out, list(table.values()))

    # SurveyAborted: another survey owns `out` now; record nothing there
    collect(futures, record=record, lost=lost, flush=flush, bar=SurveyProgress(len(futures), enabled=progress),
            flush_interval=flush_interval, passthrough=(SurveyAborted,))
