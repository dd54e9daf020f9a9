"""Atomic writes: the one way xcube puts a file or a directory on disk.

A reader never sees a half-written product. Everything is written under a
temporary name beside the target (same directory, so the same file system)
and renamed into place with ``os.replace``/``os.rename`` only when complete;
on failure the temporary is removed and any earlier target is left intact.

* :func:`atomic_file` - context manager yielding a temporary path for one file;
* :func:`write_text`, :func:`write_bytes`, :func:`write_json`,
  :func:`write_table` - one-call writers built on it;
* :class:`atomic_dir` - the same for a whole directory (Zarr stores, run
  directories);
* :func:`remove_stale` - delete temporaries left behind by killed writers.

Temporary names start with a dot and carry a random tag:
``.<name>.tmp-<hex>`` (files and directories) and ``.<name>.old-<hex>`` (a
replaced directory on its way out). Where that would be longer than a file
name may be, ``<name>`` is replaced by a digest of it, so that
:func:`remove_stale` still finds the leftovers of a given target.
"""
from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from .paths import expand_path

__all__ = ["atomic_file", "atomic_dir", "write_text", "write_bytes", "write_json", "write_table", "remove_stale",
           "sweep_once", "temporary_name", "explain_write_error", "STALE_SECONDS", "refuse_input", "STOP", "Stopped"]

#: temporaries older than this [s] are leftovers of killed writers
STALE_SECONDS = 3600.0

#: set by the command line when a SIGTERM's exception was lost (Python drops an exception raised while a
#: finaliser runs, e.g. astropy's during a FITS write): the next atomic write is not put in place but
#: raises :class:`Stopped` instead, delivering the interruption (and clears it, so that the clean-up's
#: own writes, a survey's status table, go on)
STOP = threading.Event()


class Stopped(KeyboardInterrupt):
    """An atomic write not committed because :data:`STOP` was set: the delivered SIGTERM."""


def _check_stop(path) -> None:
    if STOP.is_set():
        STOP.clear()
        raise Stopped(f"{path}: not written: the process was asked to stop")


#: longest file name most file systems take [bytes]
_NAME_MAX = 255


def refuse_input(path, obj) -> None:
    """``ValueError`` when ``path`` is a file that ``obj`` (a product or an
    EventList about to be written) was made from: its attrs ``source``,
    ``sources`` or ``path``. Writing over it would destroy the data still
    being read, also with ``overwrite`` (``xcube lc in.fits --out in.fits
    --overwrite`` replaced the event file by its light curve). Eager, tiny."""
    a = getattr(obj, "attrs", None) or {}
    named = [a.get("source"), a.get("path"), *(a.get("sources") or [])]
    target = os.path.realpath(path)
    for src in named:
        if isinstance(src, (str, os.PathLike)) and str(src) and os.path.realpath(src) == target:
            raise ValueError(f"{path}: this is the input it was made from ({src}); writing over it would destroy "
                             "the data being read - choose another output path")


def temporary_name(path, kind: str = "tmp", suffix: str = "") -> Path:
    """A hidden sibling of ``path`` that no other writer uses:
    ``.<name>.<kind>-<hex><suffix>`` in the same directory, with a digest of
    the name in place of the name when that would be longer than a file
    name may be (255 bytes). Eager (a name only; nothing is created)."""
    p = Path(path)
    tag = f"{kind}-{uuid.uuid4().hex[:8]}{suffix}"
    name = f".{p.name}.{tag}"
    return p.with_name(name if len(name.encode()) <= _NAME_MAX else f".{_digest(p.name)}.{tag[:_NAME_MAX - 40]}")


def _digest(name: str) -> str:
    """A short stand-in for a file name too long to repeat in its temporaries' names."""
    return "h" + hashlib.sha256(name.encode()).hexdigest()[:24]


def explain_write_error(exc: BaseException, path, tmp=None, *, raised_inside: bool = False) -> BaseException:
    """``exc``, an error met while writing ``path`` under the hidden
    temporary name ``tmp``, naming ``path`` (``[Errno 28]`` alone names
    nothing); ``exc`` itself when it needs nothing:

    * a full disk or quota: which path could not be written;
    * ``tmp`` in the message (or, with ``raised_inside``, in the message or
      ``filename``, also as the directory of the file named): the same error
      with ``path`` in its place;
    * an error naming no file, or ``tmp`` only as its ``filename``:
      ``<message> while writing <path>``.

    ``raised_inside``: ``exc`` was raised by the code writing into the
    temporary directory of :class:`atomic_dir`: only the second rule, and
    for builtin ``OSError`` s only (an error about its inputs, or xcube's
    own, stays as it is). Eager (builds an exception; touches no file)."""
    if raised_inside:
        if not isinstance(exc, OSError) or type(exc).__module__ != "builtins":
            return exc
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OSError(exc.errno, f"no space left on the device (or quota exceeded) while writing {path}; "
                                  "free some space or write elsewhere")
    t, target = (None if tmp is None else str(tmp)), str(path)
    text = exc.strerror if exc.errno is not None and (exc.strerror or raised_inside) else str(exc)
    named = getattr(exc, "filename", None)
    if raised_inside:
        named = named if isinstance(named, str) else None
        if t not in text and t not in (named or ""):
            return exc
    elif named and str(named) != t:
        return exc
    elif t is None or t not in text:
        return OSError(exc.errno, f"{text} while writing {path}")
    text = text.replace(t, target)  # (explained already, naming the temporary)
    if not raised_inside:
        return OSError(exc.errno, text)
    if exc.errno is None:
        return OSError(text)
    return OSError(exc.errno, text) if named is None else OSError(exc.errno, text, named.replace(t, target))


def _make_parent(path: Path) -> None:
    """Create ``path``'s directory; an ``OSError`` naming ``path`` and the
    part of it that is in the way (a file where a directory is needed)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((q for q in [path.parent, *path.parent.parents] if q.exists() and not q.is_dir()), None)
        why = f"{blocker} is a file, not a directory" if blocker else (exc.strerror or str(exc))
        raise OSError(exc.errno, f"{path}: cannot create its directory {path.parent}: {why}") from exc


def _remove(p: Path) -> None:
    """Remove a temporary file or directory, ignoring errors."""
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        try:
            p.unlink()
        except OSError:
            pass


@contextmanager
def atomic_file(path, overwrite: bool = False, fsync: bool = False):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary name ends with ``path``'s suffixes (``.fits.gz`` stays
    ``.fits.gz``), so writers that choose a format from the name behave the
    same. On an exception the temporary is removed and an existing ``path``
    is untouched. Raises ``FileExistsError`` when ``path`` exists and
    ``overwrite`` is False. ``fsync``: flush the file to disk before the
    rename (for records that must survive a power cut).
    Eager: creates the parent directory on entry and renames on exit; the
    caller writes the file.
    """
    path = expand_path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory; give the name of the file to write")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists; pass overwrite=True (or --overwrite) to replace it")
    _make_parent(path)
    sweep_once(path.parent)  # the temporaries of killed writers there
    tmp = temporary_name(path, suffix="".join(path.suffixes))
    try:
        yield tmp
        _check_stop(path)
        if fsync and tmp.exists():
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        raise explain_write_error(exc, path, tmp) from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path, data: bytes, overwrite: bool = True, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically. Returns the path. Eager."""
    with atomic_file(path, overwrite=overwrite, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path, text: str, overwrite: bool = True, fsync: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically. Returns the path. Eager."""
    return write_bytes(path, text.encode("utf-8"), overwrite=overwrite, fsync=fsync)


def write_json(path, obj, overwrite: bool = True, fsync: bool = False, **dump_kw) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (``default=str`` unless
    given). Returns the path. Eager."""
    dump_kw.setdefault("default", str)
    return write_text(path, json.dumps(obj, **dump_kw), overwrite=overwrite, fsync=fsync)


def write_table(path, table, overwrite: bool = True) -> Path:
    """Write a pandas DataFrame atomically as Parquet (``.parquet``) or CSV
    (any other suffix), without the index. Returns the path. Eager: writes the
    whole table atomically."""
    path = Path(path)
    with atomic_file(path, overwrite=overwrite) as tmp:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
    return path


class atomic_dir:
    """Context manager: yields a temporary sibling directory, renamed to
    ``target`` on success (replacing it if ``overwrite``), removed on failure.
    A leading ``~`` in ``target`` is expanded.

    ``FileExistsError`` naming ``target`` when it exists and ``overwrite`` is
    False: at the start, and also at the end when another writer put it
    there meanwhile (theirs is kept and ours is dropped; nothing is replaced
    silently). With ``overwrite`` the later writer's directory wins.
    """

    def __init__(self, target, overwrite: bool = False):
        self.target = expand_path(target)
        self.overwrite = overwrite
        self.tmp = temporary_name(self.target)

    def __enter__(self) -> Path:
        if len(self.target.name.encode()) > _NAME_MAX:  # say so now, not after the whole write
            raise OSError(errno.ENAMETOOLONG, f"{self.target}: the name is longer than {_NAME_MAX} bytes, which "
                                              "file systems refuse; choose a shorter name")
        if self.target.exists() and not self.overwrite:
            raise FileExistsError(f"{self.target}: exists; pass overwrite=True to replace it")
        _make_parent(self.target)
        sweep_once(self.target.parent)  # the temporaries of killed writers there
        try:
            self.tmp.mkdir()
        except OSError as exc:
            raise explain_write_error(exc, self.target, self.tmp) from exc
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                _check_stop(self.target)
            except Stopped as stop:
                self.__exit__(Stopped, stop, None)  # (removes the temporary)
                raise
        if exc_type is not None:
            # Dask worker threads may still be finishing chunk writes after the
            # first task failed: remove the directory until it stays removed.
            deadline = time.monotonic() + 5.0
            while True:
                shutil.rmtree(self.tmp, ignore_errors=True)
                time.sleep(0.05)
                if not self.tmp.exists() or time.monotonic() > deadline:
                    break
            named = explain_write_error(exc, self.target, self.tmp, raised_inside=True)
            if named is not exc:  # the error names what the user asked for, not the removed temporary
                raise named from exc
            return False
        if not self.overwrite:
            try:  # a plain rename: fails when the target appeared meanwhile (a directory not empty, or a file)
                if os.path.lexists(self.target):
                    raise FileExistsError
                os.rename(self.tmp, self.target)
                return False
            except OSError as err:
                if not os.path.lexists(self.target):
                    _remove(self.tmp)
                    raise explain_write_error(err, self.target, self.tmp) from err
                _remove(self.tmp)
                raise FileExistsError(
                    f"{self.target}: another writer created it while this one was writing; theirs is kept and "
                    "this one's output dropped - pass overwrite=True (or --overwrite) to replace it, or write "
                    "elsewhere"
                ) from None
        if self.target.exists():
            old = temporary_name(self.target, "old")
            try:
                os.rename(self.target, old)
            except OSError as err:  # the target cannot be moved (immutable, permissions): it stays
                _remove(self.tmp)
                raise explain_write_error(err, self.target, self.tmp) from err
            try:
                os.rename(self.tmp, self.target)
            except OSError as err:
                os.rename(old, self.target)  # put the earlier target back
                _remove(self.tmp)
                raise explain_write_error(err, self.target, self.tmp) from err
            _remove(old)  # (a directory, or the file a directory replaced)
        else:
            try:
                os.rename(self.tmp, self.target)
            except OSError:
                shutil.rmtree(self.tmp, ignore_errors=True)
                if not self.target.exists():
                    raise
        return False


def _newest_mtime(path: Path, young: float) -> float:
    """The newest mtime [s] of ``path`` and, for a directory, of everything
    inside it (a writer adds chunk files deep inside, which does not change
    the top directory's mtime); stops at the first one newer than ``young``."""
    newest = path.lstat().st_mtime
    if newest > young or not path.is_dir() or path.is_symlink():
        return newest
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for e in entries:
                    try:
                        newest = max(newest, e.stat(follow_symlinks=False).st_mtime)
                        if newest > young:
                            return newest
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                    except OSError:
                        continue
        except OSError:
            continue
    return newest


#: the names :func:`temporary_name` makes: ``.<name>.tmp-<8 hex><suffix>`` (or ``old``); nothing else is swept
_TEMPORARY = re.compile(r"^\..+\.(tmp|old)-[0-9a-f]{8}(\.[^/]*)?$")
_SWEPT: set = set()
_SWEPT_LOCK = threading.Lock()


def sweep_once(directory, age: float = STALE_SECONDS) -> int:
    """Delete the temporaries of killed writes (``.<name>.tmp-*``,
    ``.<name>.old-*``) older than ``age`` [s] in ``directory``, the first
    time this process writes there (every atomic write calls it: one listing
    per directory and process, not one per file written). Returns how many
    were removed. Eager."""
    directory = Path(directory)
    key = os.path.abspath(directory)
    with _SWEPT_LOCK:
        if key in _SWEPT:
            return 0
        _SWEPT.add(key)
    now, n = time.time(), 0
    try:
        with os.scandir(directory) as entries:
            found = [Path(e.path) for e in entries if _TEMPORARY.match(e.name)]
    except OSError:
        return 0
    for d in found:
        n += _remove_if_stale(d, now, age)
    return n


def _remove_if_stale(d: Path, now: float, age: float) -> int:
    """Remove the temporary ``d`` when its newest mtime is older than ``age``; 1 if removed."""
    try:
        if now - _newest_mtime(d, now - age) > age:
            _remove(d)
            return 1
    except OSError:
        pass
    return 0


def remove_stale(target, age: float = STALE_SECONDS) -> int:
    """Delete temporary siblings of ``target`` left by killed writes
    (``.<name>.tmp-*`` / ``.<name>.old-*`` older than ``age`` seconds).
    Returns how many were removed. The age of a temporary directory is that
    of the newest file or directory inside it. Younger ones may belong to a
    writer that is still running and are kept. Eager: lists the directory of
    ``target`` and deletes at once; ``age`` in [s]."""
    target = expand_path(target)
    if not target.parent.is_dir():
        return 0
    now = time.time()
    n = 0
    found = [*target.parent.glob(f".{glob.escape(target.name)}.*-*"),
             *target.parent.glob(f".{_digest(target.name)}.*-*")]
    for d in found:
        n += _remove_if_stale(d, now, age)
    return n
