"""The dask.distributed client a survey runs on.

- default: a ``LocalCluster`` of worker processes, sized by ``workers``,
  ``threads`` (per worker) and ``memory_limit`` (per worker; the nanny restarts
  a worker that exceeds 95 % of it, and its task is retried elsewhere);
- ``scheduler="tcp://host:port"``: an existing cluster;
- ``cluster="slurm"`` or ``"pbs"``: a ``dask_jobqueue`` cluster whose options
  (``queue``, ``walltime``, ``cores``, ``memory``, ``processes``, ...) are
  taken from the arguments, falling back to the ``jobqueue.slurm`` /
  ``jobqueue.pbs`` sections of the dask configuration.

How often a task may lose its worker before it is declared failed is the
scheduler's ``distributed.scheduler.allowed-failures``; for the clusters built
here it is set to the survey's ``retries``, and ``worker-saturation`` is 1.0
(a worker holds no queued task besides the ones it runs, so a worker's death
is blamed on the task that was running there only). Set both in the dask
configuration of an external scheduler.
"""
from __future__ import annotations

import functools
import logging
import numbers
import os
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import warnings
from dataclasses import dataclass, field, replace

import dask

__all__ = ["make_client", "shut_down", "check_engine_counts", "silence_distributed", "ShutdownNoise",
           "jobqueue_cluster", "JOBQUEUE_CLUSTERS", "SUBMIT_COMMANDS"]

log = logging.getLogger("xcube.survey")

JOBQUEUE_CLUSTERS = {"slurm": "SLURMCluster", "pbs": "PBSCluster"}
#: the command each batch system submits jobs with (checked before a cluster is made)
SUBMIT_COMMANDS = {"slurm": "sbatch", "pbs": "qsub"}
#: seconds to wait for the batch system to accept the first worker job (give it a job id): a
#: job may then wait in the queue for hours, but one that cannot be submitted is an error
SUBMIT_TIMEOUT = 120.0


def _default_workers(threads: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, threads))


def check_engine_counts(*, workers=None, threads=1, retries=0) -> None:
    """``ValueError`` naming the option when ``workers`` (None: the default)
    or ``threads`` is not a whole number >= 1 or ``retries`` not one >= 0: a
    cluster of no worker would leave the survey waiting for ever. Reads nothing."""
    for name, value, minimum in (("workers", workers, 1), ("threads", threads, 1), ("retries", retries, 0)):
        if name == "workers" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(f"{name}={value!r} (command line --{name}): must be a whole number >= {minimum}")


def jobqueue_cluster(cluster: str, *, queue=None, walltime=None, cores=None, memory=None, processes=None,
                     account=None, job_extra=None, local_directory=None, dashboard_address=":8787"):
    """A ``dask_jobqueue`` SLURMCluster/PBSCluster (no jobs submitted yet); options
    left None come from the dask configuration (``jobqueue.slurm`` / ``jobqueue.pbs``)."""
    name = cluster.lower()
    if name not in JOBQUEUE_CLUSTERS:
        raise ValueError(f"--cluster {cluster!r}: unknown; use one of {', '.join(JOBQUEUE_CLUSTERS)}")
    submit = SUBMIT_COMMANDS[name]
    if shutil.which(submit) is None:
        raise FileNotFoundError(
            f"--cluster {name} starts dask workers as batch jobs with {submit!r}, which is not on PATH on "
            f"{socket.gethostname()}; run the survey on a {name.upper()} login node, or run it on this machine "
            "instead with --workers N (a local cluster), or use a running dask cluster with --scheduler ADDRESS"
        )
    sigint = signal.getsignal(signal.SIGINT)
    try:
        import dask_jobqueue
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            f"--cluster {name} needs dask-jobqueue; install it with pip install 'xcube-astro[cluster]'"
        ) from exc
    finally:  # dask_jobqueue replaces the process's Ctrl-C handler by sys.exit() when imported: put it back
        if sigint is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, sigint)
    cls = getattr(dask_jobqueue, JOBQUEUE_CLUSTERS[name])
    opts = dict(queue=queue, walltime=walltime, cores=cores, memory=memory, processes=processes,
                account=account, job_extra_directives=job_extra, local_directory=local_directory)
    if dashboard_address:
        opts["scheduler_options"] = {"dashboard_address": dashboard_address}
    return cls(**{k: v for k, v in opts.items() if v is not None})


class _quiet_logs:
    """Raise the level of the distributed/tornado/asyncio loggers for a while:
    while a cluster shuts down, connections closing under pending messages
    are expected, and their ``CommClosedError`` tracebacks say nothing."""

    NAMES = ("distributed", "tornado", "asyncio")

    def __enter__(self):
        self.saved = {n: logging.getLogger(n).level for n in self.NAMES}
        for n in self.NAMES:
            logging.getLogger(n).setLevel(logging.CRITICAL)

    def __exit__(self, *exc):
        for n, level in self.saved.items():
            logging.getLogger(n).setLevel(level)
        return False


class ShutdownNoise(logging.Filter):
    """Drop tornado's ERROR ``Exception in callback ... sync.<locals>.cancel``
    with its ``NameError`` traceback: a Ctrl-C or SIGTERM that comes before
    ``distributed.utils.sync`` started its coroutine makes the cancel
    callback meet an unset variable; it says nothing. Every other record
    passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is not ours to judge
            return True
        return not ("sync.<locals>.cancel" in message and record.exc_info
                    and isinstance(record.exc_info[1], NameError))


def _add_filter(name: str) -> None:
    logger = logging.getLogger(name)
    if not any(isinstance(f, ShutdownNoise) for f in logger.filters):
        logger.addFilter(ShutdownNoise())


def _silence_here() -> None:
    """Raise distributed's, tornado's and asyncio's loggers to CRITICAL in
    this process (run on the workers of a cluster about to be shut down)."""
    for n in _quiet_logs.NAMES:
        logging.getLogger(n).setLevel(logging.CRITICAL)


def silence_distributed() -> None:
    """Show nothing more of dask.distributed's, tornado's and asyncio's log
    lines in this process (level CRITICAL), unless xcube itself logs at
    INFO or below (``xcube -v``): what is left of a cluster after an
    interrupt closes at the process's exit, with lines that say nothing. For
    a command that ends now (``xcube survey`` interrupted); not restored."""
    if logging.getLogger("xcube").getEffectiveLevel() <= logging.INFO:
        return
    for n in _quiet_logs.NAMES + ("bokeh",):
        logging.getLogger(n).setLevel(logging.CRITICAL)


def quiet_distributed(level: int = logging.WARNING):
    """Show only ``level`` and above of dask.distributed's own log lines
    (the cluster's start, workers registering, connections: about 30 INFO
    lines that would bury the survey's progress bar), unless xcube itself
    logs at INFO or below (``xcube -v``, or ``logging.getLogger("xcube")``
    set so). Tornado's ``NameError`` of an early interrupt is dropped for
    good (:class:`ShutdownNoise`). Returns a function that restores the
    previous levels."""
    import distributed  # noqa: F401  (its import sets the levels from the dask config: set ours after it)

    _add_filter("tornado.application")
    if logging.getLogger("xcube").getEffectiveLevel() <= logging.INFO:
        return lambda: None
    names = ("distributed", "distributed.http.proxy", "bokeh", "tornado")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(max(level, saved[n]))

    def restore():
        for n, lvl in saved.items():
            logging.getLogger(n).setLevel(lvl)

    return restore


def quietly(start):
    """Decorate a function returning ``(client, close)``: dask.distributed
    logs warnings only (:func:`quiet_distributed`) from the start until
    ``close()``; still after it when the shut-down was interrupted or did not
    complete (``close`` returned False): what is left then closes later, in
    the background or at the process's exit, and its INFO lines would follow
    the command's last line."""

    @functools.wraps(start)
    def wrapper(*args, **kwargs):
        restore = quiet_distributed()
        try:
            client, close = start(*args, **kwargs)
        except BaseException:
            restore()
            raise

        def close_and_restore():
            if close() is not False:
                restore()

        return client, close_and_restore

    return wrapper


def _cancel_jobs(cluster, timeout: float = 60.0) -> None:
    """Cancel a jobqueue cluster's batch jobs with its cancel command
    (``scancel``/``qdel``): the batch system sends SIGTERM, and each worker's
    nanny closes the worker and its connections in order."""
    jobs = [str(j) for j in (getattr(w, "job_id", None) for w in getattr(cluster, "workers", {}).values()) if j]
    command = getattr(getattr(cluster, "job_cls", None), "cancel_command", None)
    if jobs and command:
        subprocess.run(shlex.split(command) + jobs, capture_output=True, timeout=timeout, check=False)


def shut_down(client, cluster, jobs: bool = False, timeout: float = 30.0, workers_quiet: bool = False) -> bool:
    """Close ``client`` and then ``cluster``, without the tracebacks of
    connections closed under them (``CommClosedError``). With ``jobs`` (a
    dask-jobqueue cluster) the batch jobs are cancelled first and the workers
    given ``timeout`` seconds to leave: when the scheduler removes a worker
    itself, the worker's last messages meet a closed connection and its job
    log shows that traceback. Failures to close are logged (debug), never
    raised: the survey's results are already written. With
    ``workers_quiet`` (the worker processes of a LocalCluster, which write
    to this terminal) the workers' own log lines are silenced first (within
    5 s): a worker closed under a running task logs a warning
    (``... ended with CancelledError``), and one whose scheduler went first a
    heartbeat traceback. Returns False when closing failed (what is left
    closes at the process's exit)."""
    clean = True
    with _quiet_logs():
        if workers_quiet:
            try:
                client.run(_silence_here, on_error="ignore", callback_timeout=5.0)
            except Exception as exc:  # noqa: BLE001 - only log lines
                log.debug("silencing the workers' logs: %s", exc)
        if jobs:
            try:
                _cancel_jobs(cluster)
                deadline = time.monotonic() + timeout
                while client.scheduler_info(n_workers=-1)["workers"] and time.monotonic() < deadline:
                    time.sleep(0.1)
            except Exception as exc:  # noqa: BLE001 - the jobs go down with the cluster anyway
                log.debug("cancelling the batch jobs: %s", exc)
        for what in (client, cluster):
            try:
                what.close()
            except Exception as exc:  # noqa: BLE001 - shutting down: nothing left to save
                log.debug("closing %s: %s", type(what).__name__, exc)
                clean = False
    return clean


def _await_submission(client, cluster, name: str, said: "_SubmitErrors | None" = None) -> None:
    """Wait (at most :data:`SUBMIT_TIMEOUT` s) until the batch system has
    accepted a worker job; else shut the cluster down and raise
    ``ConnectionError`` (an ``OSError``: the command line reports it
    without a traceback): a submit command that fails (``sbatch: error: Batch job
    submission failed: Unable to contact slurm controller``) is retried by
    dask-jobqueue for ever, and the survey would wait for workers that never
    come."""
    deadline = time.monotonic() + SUBMIT_TIMEOUT
    said = said or _SubmitErrors.install()
    while time.monotonic() < deadline:
        if any(getattr(w, "job_id", None) for w in getattr(cluster, "workers", {}).values()):
            return
        time.sleep(0.25)
    shut_down(client, cluster, jobs=True, timeout=5.0)
    submit = SUBMIT_COMMANDS[name]
    raise ConnectionError(
        f"--cluster {name}: {submit} accepted no worker job in {SUBMIT_TIMEOUT:g} s ("
        + (f"it said: {said.first!r}" if said.first else "e.g. 'Unable to contact slurm controller'")
        + f"); check the batch system ({'sinfo' if name == 'slurm' else 'qstat'}"
        f") and the job options (queue, account, cores, memory), or run on this machine with --workers N"
    )


class _SubmitErrors(logging.Filter):
    """Drops the tracebacks that dask-jobqueue's retried, refused job
    submissions log, keeping the submit command's first error line
    (``sbatch: error: Batch job submission failed: ...``) for the message."""

    def __init__(self):
        super().__init__()
        self.first = None

    _shared: "_SubmitErrors | None" = None

    @classmethod
    def install(cls) -> "_SubmitErrors":
        """The filter on the loggers that report failed submissions, its
        first error line cleared: a refused submission is retried and logged
        with a traceback each time, also after the cluster closed (when
        asyncio collects the failed task), so the filter stays for the life
        of the process: one filter shared by every cluster started in it,
        its ``first`` line cleared for each."""
        if cls._shared is None:
            cls._shared = cls()
            for n in ("tornado.application", "asyncio", "distributed.deploy.spec"):
                logging.getLogger(n).addFilter(cls._shared)
        cls._shared.first = None
        return cls._shared

    def filter(self, record) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        text = str(exc) if exc is not None else record.getMessage()
        if "Command exited with non-zero exit code" not in text:  # (dask-jobqueue's failed submit command)
            return True
        line = next((ln.strip() for ln in text.splitlines() if "error" in ln.lower() and ":" in ln), None)
        if self.first is None and line:
            self.first = line[:300]
        return False


@quietly
def make_client(scheduler: str | None = None, cluster: str | None = None, *, workers: int | None = None,
                threads: int = 1, memory_limit: str | int | None = "4GB", retries: int = 2,
                dashboard_address: str | None = ":8787", jobs: int | None = None, queue: str | None = None,
                walltime: str | None = None, cores: int | None = None, memory: str | None = None,
                processes: int | None = None, account: str | None = None, job_extra=None,
                local_directory: str | None = None):
    """Create the survey's ``distributed.Client``.

    Returns ``(client, close)`` where ``close()`` shuts down what was created
    here (the client, and the cluster unless it is an external scheduler).
    Starting the cluster is eager; jobqueue workers arrive as their batch jobs start.
    """
    from distributed import Client, LocalCluster

    check_engine_counts(workers=workers, threads=threads, retries=retries)
    if scheduler and cluster:
        raise ValueError("give either --scheduler (an existing cluster) or --cluster (slurm/pbs), not both")
    # worker-saturation 1.0: a worker holds only as many tasks as it has threads,
    # so that when it dies only the task that was running there is blamed
    with dask.config.set({"distributed.scheduler.allowed-failures": int(retries),
                          "distributed.scheduler.worker-saturation": 1.0}):
        if scheduler:
            client = Client(scheduler)
            return client, client.close
        if cluster:
            said = _SubmitErrors.install()  # before the first submission, which may fail at once
            jq = jobqueue_cluster(cluster, queue=queue, walltime=walltime, cores=cores, memory=memory,
                                  processes=processes, account=account, job_extra=job_extra,
                                  local_directory=local_directory, dashboard_address=dashboard_address)
            if workers:
                jq.scale(n=int(workers))
            else:
                jq.scale(jobs=int(jobs or 1))
            client = Client(jq)
            _await_submission(client, jq, cluster.lower(), said)
            return client, lambda: shut_down(client, jq, jobs=True)
        with _interrupts_held() as held:  # a half-started cluster cannot be shut down: start it whole
            lc = LocalCluster(
                n_workers=int(workers or _default_workers(threads)), threads_per_worker=int(threads),
                memory_limit=memory_limit, processes=True, dashboard_address=dashboard_address,
                local_directory=local_directory,
            )
            client = Client(lc)
            from ._worker_signals import IgnoreSigint

            client.register_plugin(IgnoreSigint())  # (a worker the nanny restarts is spawned without SIG_IGN)
        if held:  # SIGTERM while it started: shut it down, then let the signal act
            shut_down(client, lc, workers_quiet=True)
            signal.raise_signal(held[0])
            raise KeyboardInterrupt("interrupted while the local cluster started")  # (a handler that did not raise)
        return client, lambda: shut_down(client, lc, workers_quiet=True)


class _interrupts_held:
    """Hold SIGTERM and ignore SIGINT while a local cluster starts (in the
    main thread; elsewhere a no-op): a SIGTERM that arrives is listed (the
    ``with`` value) and the handlers are put back at the end, for the caller
    to re-raise once it can clean up. Starting a local cluster takes
    seconds; interrupted half-way, its worker processes are left to
    ``distributed``'s exit hook, which prints tracebacks and leaks
    semaphores. SIGINT is ignored rather than held: the worker processes
    spawned meanwhile inherit the ignored SIGINT, so that a terminal's
    Ctrl-C, which reaches the whole process group, stops the survey (the
    main process shuts the workers down) instead of killing each worker
    with a traceback (or failing the start: "Nanny failed to start"). A
    Ctrl-C during the start itself (a second or two) is thus ignored. A
    worker the nanny restarts later ignores SIGINT through the worker plugin
    :class:`~xcube.survey._worker_signals.IgnoreSigint`."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> list:
        self.got, self.saved = [], {}
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                if signal.getsignal(s) is signal.SIG_IGN:  # an ignored signal (a job started with &) stays so
                    continue
                held = signal.SIG_IGN if s == signal.SIGINT else (lambda signum, frame: self.got.append(signum))
                self.saved[s] = signal.signal(s, held)
        return self.got

    def __exit__(self, *exc):
        for s, handler in self.saved.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        return False


_JOB_OPTIONS = ("queue", "walltime", "cores", "memory", "processes", "jobs", "account", "job_extra",
                "local_directory")


@dataclass(frozen=True)
class Compute:
    """Where a survey (``xcube.survey.run``) or an archive processing
    (``xcube process``) runs: the one description of the engine.

    ``scheduler``: address of an existing cluster (``tcp://host:8786``);
    ``cluster``: ``"slurm"`` or ``"pbs"`` to start workers as batch jobs
    (``jobs`` options: queue, walltime, cores, memory, processes, jobs,
    account, job_extra, local_directory); neither: a ``LocalCluster`` of
    ``workers`` x ``threads`` with ``memory_limit`` each (whole numbers >= 1,
    ``workers`` None for cores / threads). ``retries`` (>= 0): task
    retries after an exception and worker deaths allowed per task;
    ``dashboard_address``: where the Dask dashboard listens.
    """

    scheduler: str | None = None
    cluster: str | None = None
    workers: int | None = None
    threads: int = 1
    memory_limit: str | int | None = "4GB"
    retries: int = 2
    dashboard_address: str | None = ":8787"
    jobs: dict = field(default_factory=dict)

    def __post_init__(self):
        check_engine_counts(workers=self.workers, threads=self.threads, retries=self.retries)

    def start(self):
        """``(client, close)``: a ``distributed.Client`` on this engine and the
        function that shuts down what was started (see :func:`make_client`)."""
        unknown = set(self.jobs) - set(_JOB_OPTIONS)
        if unknown:
            raise ValueError(f"unknown batch-job options {sorted(unknown)}; use {list(_JOB_OPTIONS)}")
        return make_client(self.scheduler, self.cluster, workers=self.workers, threads=self.threads,
                           memory_limit=self.memory_limit, retries=self.retries,
                           dashboard_address=self.dashboard_address, **self.jobs)


_LEGACY = ("client", "scheduler", "cluster", "workers", "threads", "memory_limit", "cluster_options", "retries",
           "dashboard_address")


def engine_of(compute, legacy: dict, default_retries: int = 2, caller: str = "xcube.survey.run"):
    """``(client or None, Compute)`` from a ``compute=`` argument (a
    :class:`Compute`, a ``distributed.Client`` used as it is, or None for a
    LocalCluster) and the engine keywords of earlier releases (``client``,
    ``scheduler``, ``cluster``, ``workers``... ; deprecated, with a warning)."""
    unknown = set(legacy) - set(_LEGACY)
    if unknown:
        raise TypeError(f"{caller}() got unexpected keyword arguments {sorted(unknown)}")
    base = Compute(retries=default_retries) if compute is None or not isinstance(compute, Compute) else compute
    client = compute if compute is not None and not isinstance(compute, Compute) else None
    if legacy:
        warnings.warn(f"{caller}: the engine keywords {sorted(legacy)} are deprecated; pass compute="
                      "xcube.survey.Compute(...) or a distributed.Client", DeprecationWarning, stacklevel=3)
        legacy = dict(legacy)
        client = legacy.pop("client", None) or client
        jobs = dict(base.jobs, **(legacy.pop("cluster_options", None) or {}))
        base = replace(base, jobs=jobs, **legacy)
    return client, base
