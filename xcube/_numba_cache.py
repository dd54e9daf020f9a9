"""numba's on-disk compilation cache, optional for xcube's kernels.

xcube's kernels are ``numba.njit(cache=True)``: compiled on first use, saved
in numba's cache directory (``__pycache__`` beside the source, or under
``NUMBA_CACHE_DIR``) and loaded by later processes. numba lets a failing cache
fail the call: a full disk or quota (ENOSPC, EDQUOT), ``ulimit -f`` (EFBIG)
or a read-only directory while saving, a damaged (e.g. truncated) cache file
while loading - every xcube command then stopped with a bare
``[Errno 28] No space left on device`` that named no path.

Importing this module (each module that defines cached kernels does, next to
its ``import numba``) wraps ``numba.core.caching.Cache.load_overload`` and
``save_overload``: for xcube's own kernels a failure there is not fatal. The
kernel runs compiled in memory (compiled again by the next process, seconds)
and ONE warning per process names the cache directory, the error and the fix.
Other packages' kernels are left to numba. A numba without these methods is
left unchanged. Importing this module imports numba (never done by
``import xcube``).
"""
from __future__ import annotations

import functools
import threading
import warnings

try:
    from numba.core import caching as _caching
except ImportError:  # pragma: no cover - another numba layout: no guard
    _caching = None

__all__: list[str] = []

_lock = threading.Lock()
_warned = False


def _is_xcube_kernel(cache) -> bool:
    """Whether a numba ``Cache`` belongs to a function defined in xcube."""
    module = getattr(getattr(cache, "_py_func", None), "__module__", None) or ""
    return module == "xcube" or module.startswith("xcube.")


def _reason(exc: BaseException) -> str:
    """``[Errno 28] No space left on device`` (no file name), or ``Type: message``."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"[Errno {exc.errno}] {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def _warn_once(cache, exc: BaseException, saving: bool) -> None:
    """The one warning of the process about numba's cache (later failures pass silently)."""
    global _warned
    with _lock:
        if _warned:
            return
        _warned = True
    where = getattr(cache, "cache_path", None) or "numba's cache directory"
    if saving:
        text = (f"numba could not write its compilation cache in {where} ({_reason(exc)}); xcube's kernels run "
                "compiled in memory and are compiled again in every process. Free some space there, or set "
                "NUMBA_CACHE_DIR to a writable directory with space.")
    else:
        text = (f"numba could not read its compilation cache in {where} ({_reason(exc)}: a damaged cache "
                "file); xcube's kernels are compiled in memory instead. Delete that directory (numba rebuilds "
                "it), or set NUMBA_CACHE_DIR to another directory.")
    warnings.warn(text, UserWarning, stacklevel=2)


def _guarded(method, saving: bool):
    """``method`` of numba's ``Cache`` with a failure for an xcube kernel
    turned into :func:`_warn_once` and a cache miss (``None``)."""

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the cache is optional: any failure of it is a cache miss
            if not _is_xcube_kernel(self):
                raise
            _warn_once(self, exc, saving)
            return None

    guarded.__xcube_guard__ = True
    return guarded


def _install() -> None:
    cache_class = getattr(_caching, "Cache", None)
    for name, saving in (("load_overload", False), ("save_overload", True)):
        method = getattr(cache_class, name, None)
        if method is None or getattr(method, "__xcube_guard__", False):
            continue
        setattr(cache_class, name, _guarded(method, saving))


_install()
