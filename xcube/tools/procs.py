"""Stopping a tool with everything it started, without cgroups.

A mission tool often starts sub-tasks, and a sub-task may leave the tool's
process group (``setsid``, daemonising scripts). :func:`run` therefore marks
every tool it starts with a unique environment variable
(:data:`TOKEN_VARIABLE`); children inherit it whatever group or session they
move to. :func:`kill_tree` stops the tool's process group and then every
process of this user that still carries the mark (read from
``/proc/<pid>/environ`` through ``psutil``), first with SIGTERM, then SIGKILL.

A driver killed with SIGKILL runs none of that. On Linux the tool is started
with :func:`die_with_parent` (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so it is
killed when the thread that started it ends; what it started itself is
stopped by the next run in the same work directory with
:func:`stop_orphans` (see :mod:`xcube.tools.journal`).
"""
from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
import time
import uuid

__all__ = ["TOKEN_VARIABLE", "new_token", "marked_processes", "kill_tree", "group_alive", "die_with_parent",
           "start_time", "stop_orphans"]

log = logging.getLogger("xcube.tools")

#: environment variable that marks the processes of one tool run
TOKEN_VARIABLE = "XCUBE_TOOL_RUN"


def new_token() -> str:
    """A fresh value for :data:`TOKEN_VARIABLE` (unique per tool run).
    Eager."""
    return uuid.uuid4().hex


def marked_processes(token: str) -> list[int]:
    """PIDs of this user's processes whose environment carries ``token``
    (eager: reads the environment of every visible process, ~10-50 ms)."""
    import psutil

    want = f"{TOKEN_VARIABLE}={token}".encode()
    me = os.getpid()
    pids = []
    for p in psutil.process_iter():
        if p.pid == me:
            continue
        try:
            with open(f"/proc/{p.pid}/environ", "rb") as fh:
                env = fh.read()
        except FileNotFoundError:  # not Linux, or the process ended
            try:
                env = "\0".join(f"{k}={v}" for k, v in p.environ().items()).encode()
            except (psutil.Error, OSError):
                continue
        except OSError:  # another user's process, or gone
            continue
        if want in env.split(b"\0"):
            pids.append(p.pid)
    return pids


def group_alive(pgid: int) -> bool:
    """True while any process of process group ``pgid`` exists. Eager (one
    signal-0 probe)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_all(pgid: int | None, pids, sig) -> None:
    if pgid is not None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _terminate(pgid: int | None, pids, grace: float, exited=lambda: True) -> None:
    """SIGTERM to the process group ``pgid`` (None: no group) and ``pids``,
    then wait up to ``grace`` seconds until ``exited()``, the group and the
    ``pids`` are gone (the callers SIGKILL what is left)."""
    _signal_all(pgid, pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if exited() and (pgid is None or not group_alive(pgid)) and all(_gone(p) for p in pids):
            break
        time.sleep(0.05)


def kill_tree(proc: subprocess.Popen, token: str | None, grace: float = 2.0, scan: bool = True) -> int:
    """Stop ``proc`` (a process-group leader started with
    ``start_new_session=True``), its process group and, with ``scan``, every
    process marked with ``token`` (those that left the group). SIGTERM first,
    SIGKILL after ``grace`` seconds for what is left. Reaps ``proc``.
    Returns the number of marked processes found outside the group. Eager:
    blocks for up to about twice ``grace`` [s]."""
    pgid = proc.pid
    marked = marked_processes(token) if (scan and token) else []
    in_group = {p for p in marked if _pgid(p) == pgid}
    _terminate(pgid, marked, grace, lambda: proc.poll() is not None)
    if scan and token:
        late = set(marked_processes(token)) - set(marked)
        in_group |= {p for p in late if _pgid(p) == pgid}
        marked = sorted(set(marked) | late)
    _signal_all(pgid, marked, signal.SIGKILL)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
        log.warning("process %d did not exit after SIGKILL", proc.pid)
    outside = [p for p in marked if p not in in_group]
    if outside:
        log.info("killed %d process(es) of run %s outside its process group: %s", len(outside), token, outside)
    return len(outside)


# ---------------------------------------------------------------------------
# a driver killed with SIGKILL

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@functools.lru_cache(maxsize=1)
def _prctl():
    """libc's ``prctl`` through ctypes (Linux), resolved once in the parent;
    None elsewhere or when it cannot be loaded."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    fn.restype = ctypes.c_int
    return fn


def die_with_parent():
    """A ``preexec_fn`` for :class:`subprocess.Popen` that has the kernel send
    the child SIGKILL when the thread that started it ends, also when its
    process is killed with SIGKILL (Linux ``prctl(PR_SET_PDEATHSIG)``,
    inherited across ``exec``; what the child starts itself is not covered).
    None where there is no ``prctl``. The function run in the child only
    calls the resolved ``prctl`` and ``getppid``: nothing that takes a lock.
    Eager (resolves ``prctl`` here; the returned function runs in the
    child)."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent, sig = os.getpid(), int(signal.SIGKILL)

    def preexec():
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the call: what the kernel would have done
            os.kill(os.getpid(), sig)
    return preexec


def start_time(pid: int) -> float | None:
    """Start time of process ``pid`` [s since the epoch], None when it is gone.
    Eager."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def stop_orphans(token: str | None, pgid: int | None = None, leader_started: float | None = None,
                 grace: float = 2.0) -> list[int]:
    """Stop what is left of a tool run whose driver died: every process of
    this user marked with ``token`` and the process group ``pgid`` when it
    is still that run's (its leader alive with start time ``leader_started``
    [s], or a marked process in it; a group id of a dead run is never
    signalled on trust). SIGTERM, then SIGKILL after ``grace`` seconds.
    Returns the PIDs stopped (the group's leader included); eager, one scan
    of the process table (~10-50 ms)."""
    marked = marked_processes(token) if token else []
    group, leader = None, []
    if pgid is not None:
        started = start_time(pgid)
        if started is not None and leader_started is not None and abs(started - leader_started) < 0.01:
            group, leader = pgid, [pgid]
        elif any(_pgid(p) == pgid for p in marked):
            group = pgid
    if not marked and group is None:
        return []
    _terminate(group, marked, grace)
    late = marked_processes(token) if token else []
    _signal_all(group, sorted(set(marked) | set(late)), signal.SIGKILL)
    return sorted(set(marked) | set(late) | set(leader))
