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
"""
from __future__ import annotations

import os
import sys
import threading

__all__ = ["compute", "thread_map"]

_pool = None
_pool_lock = threading.Lock()
_in_pool = threading.local()


def _mark_pool_thread():
    _in_pool.active = True


def _forget_pool():  # a forked child has the pool object but not its threads
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def thread_map(fn, items) -> list:
    """``[fn(x) for x in items]``, in order, on xcube's pool of as many
    threads as CPUs (``fn`` should release the GIL: numba ``nogil`` kernels,
    numpy). Runs in the calling thread for fewer than two items or CPUs, and
    inside a task of the pool. Eager; exceptions are raised here."""
    items = list(items)
    if len(items) < 2 or (os.cpu_count() or 1) < 2 or getattr(_in_pool, "active", False):
        return [fn(x) for x in items]
    global _pool
    with _pool_lock:
        if _pool is None:
            from concurrent.futures import ThreadPoolExecutor

            _pool = ThreadPoolExecutor(os.cpu_count(), thread_name_prefix="xcube",
                                       initializer=_mark_pool_thread)
        pool = _pool
    return list(pool.map(fn, items))


def compute(*args, **kwargs):
    """``dask.compute(*args, **kwargs)``, without importing ``distributed``
    when it cannot matter (see the module docstring)."""
    import dask

    if "scheduler" not in kwargs and "distributed" not in sys.modules and dask.config.get("scheduler", None) is None:
        import dask.threaded

        kwargs["scheduler"] = dask.threaded.get
    return dask.compute(*args, **kwargs)
