"""Where xcube's own eager steps run: Dask's scheduler, and one thread pool.

``dask.compute`` looks for a ``distributed`` client before anything else,
which imports ``distributed`` (a fifth of a second) even in a process that
never uses it. :func:`compute` is ``dask.compute`` that, when no client can
exist (``distributed`` not imported and no scheduler configured), goes
straight to Dask's threaded scheduler. Wherever a client or a configured
scheduler exists, Dask chooses exactly as it always does.

:func:`thread_map` runs the parts of an eager step (frame ranges of a cube,
blocks of an array, the parameter sets of a search) on one pool of as many
threads as CPUs, made once per process: starting threads for every call
cost about 1 ms each on the 2-core test machine, 11 per search. A part that
itself calls :func:`thread_map` runs its items in its own thread (the
level above is already parallel, and a pool thread waiting on its own pool
could wait forever).

When the caller of :func:`thread_map` is interrupted (Ctrl-C, or SIGTERM,
which ``xcube``'s command line turns into the same ``KeyboardInterrupt``) or
one part raises, the parts not yet started are cancelled and the parts
already running stop at their next nested :func:`thread_map` item (raising
:class:`Cancelled` there), so that the process does not go on computing
results nobody will read. The pool's threads are daemon threads (as those of
Dask's threaded scheduler are): a process that ends while a part still runs
exits at once instead of waiting for the part to finish.
"""
from __future__ import annotations

import os
import queue
import sys
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, wait

__all__ = ["compute", "thread_map", "Cancelled"]

_pool = None
_pool_lock = threading.Lock()
_in_pool = threading.local()


class _Pool:
    """As many daemon threads as asked, taking ``(future, fn, x)`` parts from
    one queue. (``ThreadPoolExecutor``'s threads are joined when the
    interpreter exits, so an interrupted command would wait for its running
    parts; a daemon thread does not hold the exit up.)"""

    def __init__(self, n: int):
        self._queue = queue.SimpleQueue()
        for k in range(n):
            threading.Thread(target=self._work, name=f"xcube_{k}", daemon=True).start()

    def _work(self) -> None:
        _in_pool.active = True
        while True:
            fut, fn, x = self._queue.get()
            if fut.set_running_or_notify_cancel():
                try:
                    result = fn(x)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
                    fut.set_exception(exc)
                else:
                    fut.set_result(result)
                    del result
            del fut, fn, x

    def submit(self, fn, x) -> Future:
        fut = Future()
        self._queue.put((fut, fn, x))
        return fut


def _forget_pool():  # a forked child has the pool object but not its threads
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


class Cancelled(KeyboardInterrupt):
    """Raised in a part of :func:`thread_map` whose call was interrupted or
    failed: the part stops at its next nested item. A ``KeyboardInterrupt``,
    so that ``except Exception`` handlers inside the part do not turn it
    into a result."""


def thread_map(fn, items) -> list:
    """``[fn(x) for x in items]``, in order, on xcube's pool of as many
    threads as CPUs (``fn`` should release the GIL: numba ``nogil`` kernels,
    numpy). Runs in the calling thread for fewer than two items or CPUs, and
    inside a task of the pool. Eager; exceptions are raised here.

    When the call is interrupted (``KeyboardInterrupt``) or a part raises,
    the parts not started are cancelled and the running ones stop at their
    next nested :func:`thread_map` item; then the exception propagates."""
    items = list(items)
    cancel = getattr(_in_pool, "cancel", None)
    if cancel is not None:  # a part of an outer call: its items here, stopping when that call is cancelled
        out = []
        for x in items:
            if cancel.is_set():
                raise Cancelled("thread_map: the calling step was interrupted or failed")
            out.append(fn(x))
        return out
    if len(items) < 2 or (os.cpu_count() or 1) < 2 or getattr(_in_pool, "active", False):
        return [fn(x) for x in items]
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = _Pool(os.cpu_count())
        pool = _pool
    cancel = threading.Event()

    def part(x):
        if cancel.is_set():
            raise Cancelled("thread_map: the calling step was interrupted or failed")
        _in_pool.cancel = cancel
        try:
            return fn(x)
        finally:
            _in_pool.cancel = None

    futures = []
    try:
        for x in items:
            futures.append(pool.submit(part, x))
        while True:  # short waits: a signal arriving as a wait starts is seen within 0.2 s, not at the part's end
            done, running = wait(futures, timeout=0.2, return_when=FIRST_EXCEPTION)
            failed = next((f for f in done if f.exception() is not None), None)
            if failed is not None:
                raise failed.exception()
            if not running:
                return [f.result() for f in futures]
    except BaseException:  # KeyboardInterrupt (Ctrl-C, SIGTERM in the CLI) or a part's exception
        cancel.set()
        for f in futures:
            f.cancel()
        raise


def compute(*args, **kwargs):
    """``dask.compute(*args, **kwargs)``, without importing ``distributed``
    when it cannot matter (see the module docstring). Eager: computes ``args``
    here and returns numpy-backed results."""
    import dask

    if "scheduler" not in kwargs and "distributed" not in sys.modules and dask.config.get("scheduler", None) is None:
        import dask.threaded

        kwargs["scheduler"] = dask.threaded.get
    return dask.compute(*args, **kwargs)
