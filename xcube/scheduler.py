"""The Dask scheduler of xcube's own eager steps.

``dask.compute`` looks for a ``distributed`` client before anything else,
which imports ``distributed`` (a fifth of a second) even in a process that
never uses it. :func:`compute` is ``dask.compute`` that, when no client can
exist (``distributed`` not imported and no scheduler configured), goes
straight to Dask's threaded scheduler. Wherever a client or a configured
scheduler exists, Dask chooses exactly as it always does.
"""
from __future__ import annotations

import sys

__all__ = ["compute"]


def compute(*args, **kwargs):
    """``dask.compute(*args, **kwargs)``, without importing ``distributed``
    when it cannot matter (see the module docstring)."""
    import dask

    if "scheduler" not in kwargs and "distributed" not in sys.modules and dask.config.get("scheduler", None) is None:
        import dask.threaded

        kwargs["scheduler"] = dask.threaded.get
    return dask.compute(*args, **kwargs)
