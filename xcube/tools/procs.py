"""Stopping a tool with everything it started, without cgroups.

A mission tool often starts sub-tasks, and a sub-task may leave the tool's
process group (``setsid``, daemonising scripts). :func:`run` therefore marks
every tool it starts with a unique environment variable
(:data:`TOKEN_VARIABLE`); children inherit it whatever group or session they
move to. :func:`kill_tree` stops the tool's process group and then every
process of this user that still carries the mark (read from
``/proc/<pid>/environ`` through ``psutil``), first with SIGTERM, then SIGKILL.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
import uuid

__all__ = ["TOKEN_VARIABLE", "new_token", "marked_processes", "kill_tree", "group_alive"]

log = logging.getLogger("xcube.tools")

#: environment variable that marks the processes of one tool run
TOKEN_VARIABLE = "XCUBE_TOOL_RUN"


def new_token() -> str:
    """A fresh value for :data:`TOKEN_VARIABLE` (unique per tool run)."""
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
    """True while any process of process group ``pgid`` exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_all(pgid: int, pids, sig) -> None:
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


def kill_tree(proc: subprocess.Popen, token: str | None, grace: float = 2.0, scan: bool = True) -> int:
    """Stop ``proc`` (a process-group leader started with
    ``start_new_session=True``), its process group and, with ``scan``, every
    process marked with ``token`` (those that left the group). SIGTERM first,
    SIGKILL after ``grace`` seconds for what is left. Reaps ``proc``.
    Returns the number of marked processes found outside the group."""
    pgid = proc.pid
    marked = marked_processes(token) if (scan and token) else []
    in_group = {p for p in marked if _pgid(p) == pgid}
    _signal_all(pgid, marked, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc.poll() is not None and not group_alive(pgid) and all(_gone(p) for p in marked):
            break
        time.sleep(0.05)
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
