"""Run many tool tasks on Dask, respecting their dependencies.

:func:`run_many` turns a list of :class:`~xcube.tools.runner.Task` (linked by
``Task.deps``, the names of tasks that must finish first) into a Dask graph.
Independent tasks run concurrently: on local threads by default (the work
happens in the tools' own processes, so threads are enough), or on any
``dask.distributed`` client (a ``LocalCluster``, a scheduler address, a
``dask-jobqueue`` cluster). A failed task is recorded and the batch goes on;
tasks that depend on it are recorded as failed with ``DependencyError``
without running.

The result is a status table with one row per task, the same fields as the
survey's status records: task id, obsid, state (``done``, ``failed``,
``skipped`` = already up to date, ``timeout``), wall time, error class and
message, log file.
"""
from __future__ import annotations

import logging
import os
import time
from functools import partial
from pathlib import Path
from typing import Sequence

from .._version import __version__
from .runner import Task, ToolError, ToolTimeout, run

__all__ = ["run_many", "STATUS_COLUMNS"]

log = logging.getLogger("xcube.tools")

STATUS_COLUMNS = ["task", "obsid", "tool", "state", "wall_time", "returncode", "error_class", "message",
                  "log", "outputs", "param_hash", "xcube_version", "tags"]


def _status(task: Task, state: str, wall: float, *, returncode=None, error: BaseException | None = None,
            log_file=None, outputs=(), param_hash="") -> dict:
    return {
        "task": task.name,
        "obsid": str(task.tags.get("obsid", "")) or None,
        "tool": task.tool,
        "state": state,
        "wall_time": float(wall),
        "returncode": returncode,
        "error_class": type(error).__name__ if error is not None else None,
        "message": str(error).split("\n--- last lines")[0] if error is not None else None,
        "log": str(log_file) if log_file else None,
        "outputs": [str(o) for o in outputs],
        "param_hash": param_hash,
        "xcube_version": __version__,
        "tags": dict(task.tags),
    }


def _run_one(task: Task, run_kwargs: dict, *dep_status: dict) -> dict:
    """Dask task body: run one task unless a dependency failed; never raises."""
    bad = [d["task"] for d in dep_status if d["state"] in ("failed", "timeout")]
    if bad:
        err = DependencyError(f"{task.name}: not run because {', '.join(bad)} failed")
        return _status(task, "failed", 0.0, error=err)
    t0 = time.monotonic()
    try:
        res = run(task, **run_kwargs)
    except ToolTimeout as exc:
        return _status(task, "timeout", time.monotonic() - t0, error=exc, log_file=exc.log)
    except ToolError as exc:
        return _status(task, "failed", time.monotonic() - t0, error=exc, returncode=exc.returncode,
                       log_file=exc.log)
    except Exception as exc:  # bad inputs, unreadable files...: record, go on
        return _status(task, "failed", time.monotonic() - t0, error=exc)
    state = "skipped" if res.state == "skipped" else "done"
    return _status(task, state, time.monotonic() - t0, returncode=res.returncode, log_file=res.log,
                   outputs=res.outputs, param_hash=res.param_hash)


class DependencyError(RuntimeError):
    """A task was not run because a task it depends on failed."""


def _check_graph(tasks: Sequence[Task]) -> dict[str, Task]:
    from graphlib import CycleError, TopologicalSorter

    by_name: dict[str, Task] = {}
    for t in tasks:
        if t.name in by_name:
            raise ValueError(f"two tasks are named {t.name!r}; task names must be unique within a batch")
        by_name[t.name] = t
    for t in tasks:
        unknown = [d for d in t.deps if d not in by_name]
        if unknown:
            raise ValueError(f"task {t.name!r} depends on unknown task(s) {unknown}; add them to the batch")
    try:
        order = list(TopologicalSorter({t.name: set(t.deps) for t in tasks}).static_order())
    except CycleError as exc:
        raise ValueError(f"task dependencies form a cycle: {exc.args[1]}") from None
    return {n: by_name[n] for n in order}


def run_many(tasks: Sequence[Task], client=None, *, workers: int | None = None, overwrite: bool = False,
             timeout: float | None = None, workdir=None, log_dir=None, progress: bool = True,
             status_file=None, raise_on_error: bool = False):
    """Run tasks concurrently on Dask, dependencies first; returns a status
    table (``pandas.DataFrame``, one row per task, columns
    :data:`STATUS_COLUMNS`, in dependency order).

    Parameters
    ----------
    tasks : Tasks with unique ``name``; ``Task.deps`` lists the names of tasks
        that must succeed first.
    client : ``dask.distributed.Client`` to run on (e.g. of a LocalCluster or
        a SLURM cluster); ``"local"``: a temporary in-process ``LocalCluster``
        with ``workers`` threads and a dashboard (its address is logged);
        None: Dask's local threaded scheduler with ``workers`` threads
        (default: number of cores).
    overwrite, timeout, workdir, log_dir : passed to :func:`xcube.tools.run`
        for every task (``timeout`` only where the task has none).
    progress : show a progress bar (threads) or ``distributed.progress``.
    status_file : write the table there too (``.parquet`` or ``.csv``).
    raise_on_error : raise ``RuntimeError`` listing the failed tasks after
        the batch finished (default: only record them).

    Eager: blocks until every task has finished or failed.
    """
    import dask
    import pandas as pd

    ordered = _check_graph(tasks)
    if isinstance(client, str):
        if client != "local":
            raise ValueError(f"client must be a dask.distributed.Client, 'local' or None, got {client!r}")
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=1, threads_per_worker=workers or os.cpu_count() or 1, processes=False,
                          dashboard_address=":0") as cluster, Client(cluster) as local:
            log.info("run_many: dask dashboard at %s", local.dashboard_link)
            return run_many(tasks, local, workers=workers, overwrite=overwrite, timeout=timeout, workdir=workdir,
                            log_dir=log_dir, progress=progress, status_file=status_file,
                            raise_on_error=raise_on_error)
    run_kwargs = {"overwrite": overwrite}
    if workdir is not None:
        run_kwargs["workdir"] = workdir
    if log_dir is not None:
        run_kwargs["log_dir"] = log_dir
    values = {}
    if client is None:
        for name, t in ordered.items():
            kw = dict(run_kwargs, timeout=t.timeout if t.timeout is not None else timeout)
            # partial: keep Dask from traversing the Task object itself
            values[name] = dask.delayed(partial(_run_one, t, kw), pure=False)(
                *[values[d] for d in t.deps], dask_key_name=f"xcube-tool-{name}")
        names = list(ordered)
        if progress:
            from dask.diagnostics import ProgressBar

            with ProgressBar(minimum=1.0):
                out = dask.compute(*[values[n] for n in names], scheduler="threads", num_workers=workers)
        else:
            out = dask.compute(*[values[n] for n in names], scheduler="threads", num_workers=workers)
        rows = list(out)
    else:
        futures = {}
        for name, t in ordered.items():
            kw = dict(run_kwargs, timeout=t.timeout if t.timeout is not None else timeout)
            futures[name] = client.submit(partial(_run_one, t, kw), *[futures[d] for d in t.deps], pure=False,
                                          key=f"xcube-tool-{name}-{time.time_ns()}", retries=0)
        if progress:
            try:
                from distributed import progress as dprogress

                dprogress(list(futures.values()), notebook=False)
            except Exception:  # progress display is optional
                pass
        rows = client.gather([futures[n] for n in ordered])
    table = pd.DataFrame(rows, columns=STATUS_COLUMNS)
    counts = table["state"].value_counts().to_dict()
    log.info("run_many: %d tasks: %s", len(table), ", ".join(f"{v} {k}" for k, v in counts.items()))
    if status_file is not None:
        _write_status(table, Path(status_file))
    if raise_on_error:
        bad = table[table["state"].isin(["failed", "timeout"])]
        if len(bad):
            lines = [f"  {r.task}: {r.state} ({r.error_class}: {r.message}) log {r.log}"
                     for r in bad.itertuples()]
            raise RuntimeError(f"{len(bad)} of {len(table)} tasks failed:\n" + "\n".join(lines))
    return table


def _write_status(table, path: Path) -> None:
    from ..io.atomic import write_table

    flat = table.copy()
    flat["outputs"] = flat["outputs"].map(lambda v: ";".join(v))
    flat["tags"] = flat["tags"].map(lambda d: ";".join(f"{k}={v}" for k, v in d.items()))
    write_table(path, flat)
