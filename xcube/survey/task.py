"""The work of one survey task: one observation, all its parameter sets.

Runs inside a dask worker (or in-process). The observation's event files are
opened once (``xcube.open_events``), then every planned parameter set is
searched and committed as its own run directory (see :mod:`.status`).
Errors are caught per observation (opening) and per run (searching) and
recorded; nothing raised here stops a survey.

Timeout: with ``timeout`` set, the work runs in a child thread that the task
waits for. At the deadline the task stops waiting, records every uncommitted
run as ``timeout`` and returns; the child thread is told to stop by an
exception raised asynchronously in it (``PyThreadState_SetAsyncExc``), which
takes effect at its next Python bytecode - a long call inside compiled code
(numpy, numba) finishes first - and it never commits a run after the
deadline (commits are serialised with the timeout decision by a lock).
:class:`SurveyTimeout` derives from ``BaseException``, so that no
``except Exception`` of the code it lands in takes it; landing in a callback
whose exceptions the interpreter ignores (a gc callback such as
distributed's memory check, a ``__del__``) it is raised again in that thread
shortly after, without the "Exception ignored" traceback
(``sys.unraisablehook``); and the work thread starts no further run once
the task timed out.

Inside the task dask collections are computed with the synchronous
scheduler: the survey's parallelism is across observations, and a task that
submitted sub-tasks to the cluster it runs on could deadlock it.
"""
from __future__ import annotations

import ctypes
import json
import logging
import os
import socket
import sys
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import dask

from .._version import __version__
from ..io.atomic import atomic_dir
from ..io.paths import inside
from ..transients.params import SearchParams
from .lock import LOCK_FILE, lock_owner
from .status import RECORD_FILE, json_default, read_run

__all__ = ["run_observation", "SurveyTimeout", "SurveyAborted", "PeakRSS", "failure_record", "LOCK_FILE"]

log = logging.getLogger("xcube.survey")


class SurveyTimeout(BaseException):
    """Raised inside a task's work thread when its per-task timeout expires
    (a ``BaseException``, like ``KeyboardInterrupt``: an ``except Exception``
    of the code it interrupts does not stop it)."""


class SurveyAborted(Exception):
    """The survey that submitted this task has been replaced by a newer one
    writing into the same output directory (stale task of a killed survey)."""


class PeakRSS:
    """Samples the resident memory of this process every ``interval`` seconds in
    a daemon thread; ``take()`` returns the peak [MiB] since the last ``take()``."""

    def __init__(self, interval: float = 0.05):
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self._peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="xcube-peak-rss")
        self._thread.start()

    def _rss(self) -> int:
        try:
            return self._proc.memory_info().rss
        except Exception:  # noqa: BLE001 - sampling must never break a task
            return 0

    def _loop(self):
        while not self._stop.wait(self._interval):
            self._peak = max(self._peak, self._rss())

    def take(self) -> float:
        """The peak resident memory [MiB] since the last ``take()`` (or since
        construction), a current sample included; the next peak starts from
        the memory now."""
        peak = max(self._peak, self._rss())
        self._peak = self._rss()
        return peak / 2**20

    def close(self):
        """Stop the sampling thread (it ends at its next wake-up, within
        ``interval`` [s]; not joined)."""
        self._stop.set()


_SYNC_LOCK = threading.Lock()
_SYNC_USERS = [0, None]  # tasks inside _synchronous_dask in this process, saved "scheduler" config


class _synchronous_dask:
    """Use dask's synchronous scheduler while any survey task of this process runs.

    ``dask.config.set`` is process-global; a reference count makes overlapping
    tasks in several threads of one worker restore the previous setting only
    when the last of them ends."""

    def __enter__(self):
        with _SYNC_LOCK:
            if _SYNC_USERS[0] == 0:
                _SYNC_USERS[1] = dask.config.get("scheduler", None)
                dask.config.set(scheduler="synchronous")
            _SYNC_USERS[0] += 1

    def __exit__(self, *exc):
        with _SYNC_LOCK:
            _SYNC_USERS[0] -= 1
            if _SYNC_USERS[0] == 0:
                if _SYNC_USERS[1] is None:
                    dask.config.config.pop("scheduler", None)
                else:
                    dask.config.set(scheduler=_SYNC_USERS[1])
        return False


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def _base_record(params: SearchParams, files, token, worker=None, inputs=None) -> dict:
    """The fields of every run record; ``inputs``: the files' identities as the
    survey planned them (:func:`.observations.file_identities`; taken here if None)."""
    from .observations import file_identities

    return dict(
        params.to_dict(), param_hash=params.hash, xcube_version=__version__,
        files=json.dumps([str(f) for f in files]),
        inputs=json.dumps(file_identities(files) if inputs is None else inputs), token=token,
        worker=worker or _worker_name(),
    )


def failure_record(params: SearchParams, files, token, exc: BaseException | None = None, *,
                   state: str = "failed", error_class=None, message=None, tb: str | None = None,
                   traceback_file: str | None = None, worker=None, inputs=None, **extra) -> dict:
    """Status record of a run that did not finish (``failed`` or ``timeout``, or ``skipped``: nothing to
    search)."""
    rec = _base_record(params, files, token, worker, inputs)
    rec.update(
        state=state,
        error_class=error_class or (type(exc).__name__ if exc is not None else None),
        message=message if message is not None else (str(exc) if exc is not None else None),
        traceback_file=traceback_file, n_detections=0, finished=_now(), **extra,
    )
    return rec


def _summary_number(summary: dict, key):
    v = summary.get(key)
    if isinstance(v, dict):  # e.g. expected false alarms per kind: the total
        v = sum(float(x) for x in v.values() if isinstance(x, (int, float)))
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _summary_of(res) -> dict:
    """The summary dict of a search result; for several exposure subsets
    (``SearchResults``) their sums (exposure, bad frames, BTIs, expected
    false alarms), the first non-empty reason only when every run is empty,
    and ``runs``: each subset run's own summary."""
    if not isinstance(res, list):
        return dict(getattr(res, "summary", {}) or {})
    parts = [dict(r.summary) for r in res]
    out = {"reason": "" if any(not p.get("reason") for p in parts) else parts[0].get("reason", ""),
           "runs": {r.run_id: p for r, p in zip(res, parts)}}
    for k in ("exposure", "n_bad_frames", "n_bti"):
        out[k] = sum(float(p.get(k) or 0.0) for p in parts)
    out["expected_false_alarms"] = sum(_summary_number(p, "expected_false_alarms") or 0.0 for p in parts)
    return out


def _result_writer(res, figures: str):
    """Writer of a run's files: the search's own tables, regions and figures
    (``res.write``; figures for every run with ``figures="all"``, for runs with
    detections with ``"detections"``, never with ``"none"``), and always
    ``detections.parquet`` and ``summary.json``."""
    det = res.detections

    def writer(tmp: Path):
        want = figures == "all" or (figures == "detections" and len(det) > 0)
        if hasattr(res, "write"):
            res.write(tmp, overwrite=True, figures=want)  # replaces the empty tmp dir atomically
        if not (tmp / "detections.parquet").exists():
            det.to_parquet(tmp / "detections.parquet", index=False)
        if not (tmp / "summary.json").exists():
            (tmp / "summary.json").write_text(json.dumps(_summary_of(res), default=json_default, indent=1))

    return writer


class _Work:
    """State shared by the task thread and its work thread."""

    def __init__(self, obsid, files, plan, out, token, search, figures, open_kwargs, inputs=None):
        from .observations import file_identities

        self.obsid, self.files, self.plan = obsid, [Path(f) for f in files], plan
        self.inputs = file_identities(self.files) if inputs is None else inputs
        self.out, self.token, self.search = Path(out), token, search
        self.figures, self.open_kwargs = figures, open_kwargs or {}
        self.lock = threading.Lock()
        self.cancelled = False
        self.records: dict[str, dict] = {}
        self.error: BaseException | None = None
        self.open_time = None
        self.current = None  # run id being worked on
        self.started = None
        self.worker = _worker_name()  # taken in the task thread, where the dask worker is known

    # -- committing -------------------------------------------------------
    def _check_alive(self):
        if not (self.out / LOCK_FILE).exists():
            return  # no lock file (in-process use): nothing to check
        owner = lock_owner(self.out)
        if owner is None:  # being written by the driver taking it over: look again
            time.sleep(0.05)
            owner = lock_owner(self.out)
        if owner != self.token:
            raise SurveyAborted(
                f"{self.out}: a newer survey ({owner}) owns this output directory; task of {self.token} stops"
            )

    def commit(self, run_id: str, record: dict, writer=None) -> bool:
        """Write the run directory atomically; False (nothing written) once cancelled."""
        self._check_alive()
        target = inside(self.out, self.obsid, run_id, what="run directory")
        ad = atomic_dir(target, overwrite=True)
        tmp = ad.__enter__()
        try:
            if writer is not None:
                writer(tmp)
            if record.get("state") == "failed" and record.get("_traceback"):
                (tmp / "traceback.txt").write_text(record.pop("_traceback"))
                record["traceback_file"] = f"{self.obsid}/{run_id}/traceback.txt"
            record.pop("_traceback", None)
            rec = dict(record, obsid=self.obsid, run_id=run_id)
            (tmp / RECORD_FILE).write_text(json.dumps(rec, default=json_default, indent=1))
        except BaseException as exc:
            ad.__exit__(type(exc), exc, exc.__traceback__)
            raise
        with self.lock:
            if self.cancelled:
                ad.__exit__(SurveyTimeout, SurveyTimeout(), None)
                return False
            ad.__exit__(None, None, None)
            self.records[run_id] = rec
        return True

    # -- the work ---------------------------------------------------------
    def _fail_all(self, exc, tb, remaining):
        for rid, params in remaining:
            rec = failure_record(params, self.files, self.token, exc, _traceback=tb, open_time=self.open_time,
                                 started=self.started, wall_time=self.open_time, worker=self.worker,
                                 inputs=self.inputs)
            self.commit(rid, rec)

    def run(self):
        with _synchronous_dask(), _event_cache(self.open_kwargs.get("cache")) as cache:
            self.cache = cache
            self._run()

    def _run(self):
        self.started = _now()
        todo = []
        for rid, params in self.plan:
            prev = read_run(inside(self.out, self.obsid, rid, what="run directory"))
            if prev is not None and prev.get("token") == self.token:
                self.records[rid] = prev  # committed by an earlier attempt of this task
            else:
                todo.append((rid, params))
        if not todo:
            return
        self._check_alive()
        t0 = time.perf_counter()
        try:
            import xcube

            opts = dict(self.open_kwargs, cache=self.cache)
            evs = [xcube.open_events(f, **opts) for f in self.files]
            events = evs[0] if len(evs) == 1 else evs
            search = self.search or xcube.search_transients
        except (SurveyTimeout, SurveyAborted):
            raise
        except Exception as exc:  # noqa: BLE001 - recorded per run, the survey goes on
            self.open_time = time.perf_counter() - t0
            self._fail_all(exc, traceback.format_exc(), todo)
            return
        self.open_time = time.perf_counter() - t0
        rss = PeakRSS()
        try:
            for rid, params in todo:
                if self.cancelled:  # (the timeout's exception was lost somewhere: start no further run)
                    raise SurveyTimeout()
                self.current = rid
                self._run_one(rid, params, events, search, rss)
        finally:
            rss.close()

    def _run_one(self, rid, params, events, search, rss):
        from ..select import BandOutsideInstrument

        rss.take()
        started = _now()
        t0, c0 = time.perf_counter(), time.process_time()
        base = _base_record(params, self.files, self.token, self.worker, self.inputs)
        base.update(open_time=self.open_time, started=started)
        try:
            res = search(events, **params.kwargs())
            summary = _summary_of(res)
            det = res.detections
            reason = summary.get("reason")
            state = "skipped" if (reason and len(det) == 0) else "done"
            writer = _result_writer(res, self.figures)
            rec = dict(
                base,
                state=state,
                n_detections=int(len(det)),
                message=str(reason) if reason else None,
                search_run_id=(",".join(r.run_id for r in res) if isinstance(res, list)
                               else str(getattr(res, "run_id", "") or "")),
                **{
                    k: _summary_number(summary, k)
                    for k in ("exposure", "n_bad_frames", "n_bti", "expected_false_alarms")
                },
            )
            # the wall time includes writing the products; measured inside the writer's wrapper
            def timed_writer(tmp, writer=writer, rec=rec):
                writer(tmp)
                rec["wall_time"] = time.perf_counter() - t0
                rec["cpu_time"] = time.process_time() - c0
                rec["peak_rss_mb"] = rss.take()
                rec["finished"] = _now()

            self.commit(rid, rec, timed_writer)
        except (SurveyTimeout, SurveyAborted):
            raise
        except BandOutsideInstrument as exc:  # nothing to search in this band (a grid over several missions)
            rec = failure_record(params, self.files, self.token, exc, state="skipped", open_time=self.open_time,
                                 started=started, worker=self.worker, inputs=self.inputs,
                                 wall_time=time.perf_counter() - t0, cpu_time=time.process_time() - c0)
            self.commit(rid, rec)
        except Exception as exc:  # noqa: BLE001 - one failed run never stops the others
            rec = failure_record(params, self.files, self.token, exc, _traceback=traceback.format_exc(),
                                 open_time=self.open_time, started=started, worker=self.worker, inputs=self.inputs,
                                 wall_time=time.perf_counter() - t0, cpu_time=time.process_time() - c0,
                                 peak_rss_mb=rss.take())
            self.commit(rid, rec)


#: name of a task's temporary event cache: CACHE_PREFIX + "<pid>@<host>@" + random (a host name holds no "@")
CACHE_PREFIX = "xcube-survey-cache-"


class _event_cache:
    """The event cache of a task: the given directory, or (None) a temporary
    directory removed when the task's work ends, so that a survey over
    compressed archive files does not fill the cache with converted copies.
    The temporary directory's name holds the host and process id; a killed
    worker cannot remove its own, so each new one first removes those of
    dead processes of this host (:func:`remove_dead_caches`)."""

    def __init__(self, cache):
        self.cache, self._tmp = cache, None

    def __enter__(self):
        if self.cache is not None:
            return self.cache
        import tempfile

        remove_dead_caches(tempfile.gettempdir())
        self._tmp = tempfile.TemporaryDirectory(prefix=f"{CACHE_PREFIX}{os.getpid()}@{socket.gethostname()}@")
        return self._tmp.name

    def __exit__(self, *exc):
        if self._tmp is not None:
            self._tmp.cleanup()
        return False


def remove_dead_caches(root) -> int:
    """Remove the temporary event caches (:data:`CACHE_PREFIX`) under
    ``root`` left by killed survey processes of this host (their process
    id no longer runs) and owned by this user. Returns how many. Eager."""
    import re
    import shutil

    from .lock import pid_alive

    name = re.compile(re.escape(CACHE_PREFIX) + r"(\d+)@" + re.escape(socket.gethostname()) + "@")
    n = 0
    try:
        entries = list(os.scandir(root))
    except OSError:
        return 0
    for e in entries:
        m = name.match(e.name)
        if m is None or int(m.group(1)) == os.getpid() or pid_alive(int(m.group(1))):
            continue
        try:
            if e.is_dir(follow_symlinks=False) and e.stat(follow_symlinks=False).st_uid == os.getuid():
                shutil.rmtree(e.path, ignore_errors=True)
                n += 1
        except OSError:
            pass
    if n:
        log.info("%s: removed %d event caches of killed survey processes", root, n)
    return n


def _async_raise(thread: threading.Thread, exc_type) -> None:
    if thread.ident is not None and thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exc_type))


#: seconds after which a timeout swallowed by a callback is raised again in its work thread
REDELIVER_DELAY = 0.01
_HOOK_LOCK = threading.Lock()


def _install_redelivery() -> None:
    """Wrap ``sys.unraisablehook`` (once) so that a :class:`SurveyTimeout`
    the interpreter ignored - raised asynchronously while the work thread ran
    a gc callback, a ``__del__`` or a weakref callback - is raised again in
    that thread after :data:`REDELIVER_DELAY` s (by then outside the
    callback; again if not), with no traceback printed. Other unraisable
    exceptions go to the previous hook."""
    with _HOOK_LOCK:
        previous = sys.unraisablehook
        if getattr(previous, "_xcube_survey_timeout", False):
            return

        def redeliver(unraisable, previous=previous):
            if not (isinstance(unraisable.exc_type, type) and issubclass(unraisable.exc_type, SurveyTimeout)):
                return previous(unraisable)
            thread = threading.current_thread()
            if getattr(thread, "_xcube_timed_out", False) and thread.is_alive():
                again = threading.Timer(REDELIVER_DELAY, _async_raise, (thread, SurveyTimeout))
                again.daemon = True
                again.start()
            return None

        redeliver._xcube_survey_timeout = True
        sys.unraisablehook = redeliver


def _stop(thread: threading.Thread) -> None:
    """Tell a timed-out work thread to stop: :class:`SurveyTimeout` raised
    in it asynchronously, raised again should a callback swallow it."""
    thread._xcube_timed_out = True
    _install_redelivery()
    _async_raise(thread, SurveyTimeout)


def run_observation(obsid: str, files, plan, out, *, token: str, timeout: float | None = None,
                    search=None, figures: str = "detections", open_kwargs: dict | None = None,
                    inputs: list | None = None) -> list[dict]:
    """Search one observation with every planned parameter set.

    Parameters
    ----------
    obsid : observation id (output goes to ``out/<obsid>/<run_id>/``).
    files : the observation's event files, opened once (several = cameras).
    plan : list of ``(run_id, SearchParams)`` to run.
    token : id of the survey invocation; runs already committed under this
        token (by an earlier attempt of this task) are not redone.
    timeout : seconds for the whole task; uncommitted runs are then recorded
        as ``timeout`` (see module doc for how the work is stopped).
    search : search function (default ``xcube.search_transients``).
    open_kwargs : keywords for ``xcube.open_events``. Its ``cache`` (where
        compressed/unsorted files are converted) defaults to a temporary
        directory of this task, removed at its end; give a directory to keep
        the converted events.
    figures : PNG figures of the runs: ``"detections"`` (runs with detections),
        ``"all"`` or ``"none"``; the search's tables, summary and region file
        are always written (``res.write``).
    inputs : the identities of ``files`` as the survey planned them
        (:func:`.observations.file_identities`), recorded with every run;
        taken here when None.

    Returns the status records (dicts) of the planned runs. Eager; never raises
    for a bad observation (errors are recorded), only if the output directory
    cannot be written or the survey was superseded (:class:`SurveyAborted`).
    """
    work = _Work(obsid, files, plan, out, token, search, figures, open_kwargs, inputs)
    if timeout is None:
        work.run()
    else:
        def target():
            try:
                work.run()
            except SurveyTimeout:
                pass
            except BaseException as exc:  # noqa: BLE001 - re-raised in the task thread
                work.error = exc

        th = threading.Thread(target=target, daemon=True, name=f"xcube-survey-{obsid}")
        th.start()
        th.join(timeout)
        if th.is_alive():
            with work.lock:
                work.cancelled = True
                done = set(work.records)
            _stop(th)
            msg = (f"observation {obsid}: per-task timeout of {timeout:g} s expired "
                   f"(while running {work.current or 'open_events'}); raise --timeout or split the observation")
            for rid, params in plan:
                if rid in done:
                    continue
                rec = failure_record(params, files, token, state="timeout", error_class="SurveyTimeout",
                                     message=msg, open_time=work.open_time, started=work.started, wall_time=timeout,
                                     worker=work.worker, inputs=work.inputs)
                target_dir = inside(out, obsid, rid, what="run directory")
                with atomic_dir(target_dir, overwrite=True) as tmp:
                    rec = dict(rec, obsid=obsid, run_id=rid)
                    (tmp / RECORD_FILE).write_text(json.dumps(rec, default=json_default, indent=1))
                work.records[rid] = rec
        elif work.error is not None:
            raise work.error
    return [work.records[rid] for rid, _ in plan if rid in work.records]
