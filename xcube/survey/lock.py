"""The survey lock: one driver at a time writes into an output directory.

``out/.survey.lock`` is locked with ``flock`` (an exclusive, non-blocking
advisory lock held for the driver's lifetime): taking it is atomic, two
drivers started at the same instant cannot both get it, and the kernel
releases it when the driver dies, even by SIGKILL, so a killed survey never
blocks the next one. The file also records the holder (``token``, ``pid``,
``host``, ``started``), which the survey's tasks read to stop when a newer
survey has taken the directory over (see :mod:`.task`).

On a file system without ``flock`` support the lock file is created with
``O_CREAT | O_EXCL`` instead; a lock left by a dead process of this host is
then removed and taken over.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import socket
import time
from pathlib import Path

__all__ = ["SurveyLock", "LOCK_FILE", "lock_owner", "pid_alive"]

log = logging.getLogger("xcube.survey")

LOCK_FILE = ".survey.lock"
_UNSUPPORTED = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL)


def lock_owner(out) -> str | None:
    """Token of the survey holding ``out``'s lock file, or None (no lock file,
    or one being written). Reads the small lock file eagerly."""
    try:
        return json.loads((Path(out) / LOCK_FILE).read_text()).get("token")
    except (OSError, ValueError, AttributeError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (one that is not ours counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _busy(lock: Path, info: dict) -> FileExistsError:
    pid = info.get("pid")
    where = f"pid {pid} on {info.get('host')}" if info else "another process"
    return FileExistsError(
        f"{lock}: survey {info.get('token', '?')} ({where}) is still writing into {lock.parent}; wait for it to "
        "finish, or stop it and run again (a stopped survey resumes where it was)"
    )


class SurveyLock:
    """The lock of one survey invocation (``token``) on ``out``.

    ``acquire()`` raises ``FileExistsError`` naming the holder when another
    live survey has it; ``owned()`` tells whether the lock file still names
    this survey; ``release()`` removes the lock file if it is ours.
    """

    def __init__(self, out, token: str):
        self.path = Path(out) / LOCK_FILE
        self.token = token
        self._fd: int | None = None

    def _info(self) -> bytes:
        return json.dumps({"token": self.token, "pid": os.getpid(), "host": socket.gethostname(),
                           "started": time.time()}).encode()

    def acquire(self) -> "SurveyLock":
        """Take the lock (eager, non-blocking). Returns self."""
        import fcntl

        for _ in range(20):
            try:
                fd, created = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
            except FileExistsError:
                try:
                    fd, created = os.open(self.path, os.O_RDWR), False
                except FileNotFoundError:  # released just now: try again
                    continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = self._read(fd)
                for _ in range(10):  # the holder may be writing its record this very moment
                    if info:
                        break
                    time.sleep(0.05)
                    info = self._read(fd)
                os.close(fd)
                raise _busy(self.path, info) from None
            except OSError as exc:
                os.close(fd)
                if created:  # the empty file made just now must not look like another survey's lock
                    self.path.unlink(missing_ok=True)
                if exc.errno not in _UNSUPPORTED:
                    raise
                log.info("%s: no flock on this file system (%s); using an exclusive create", self.path, exc)
                return self._acquire_excl()
            try:  # the file may have been removed (released) between open and flock: lock the new one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, self._info(), 0)
                self._fd = fd
                return self
            os.close(fd)
        raise FileExistsError(f"{self.path}: could not take the survey lock (it keeps changing); try again")

    @staticmethod
    def _read(fd: int) -> dict:
        try:
            return json.loads(os.pread(fd, 4096, 0) or b"{}")
        except (OSError, ValueError):
            return {}

    def _acquire_excl(self) -> "SurveyLock":
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    info = json.loads(self.path.read_text())
                except (OSError, ValueError):
                    info = {}
                pid = info.get("pid")
                if info.get("host") != socket.gethostname() or not isinstance(pid, int) or pid_alive(pid):
                    raise _busy(self.path, info) from None
                log.warning("%s: removing the lock of a dead survey (pid %s)", self.path, pid)
                self.path.unlink(missing_ok=True)
                continue
            os.write(fd, self._info())
            os.close(fd)
            return self
        raise _busy(self.path, {})

    def owned(self) -> bool:
        """True while the lock file names this survey."""
        return lock_owner(self.path.parent) == self.token

    def release(self) -> None:
        """Remove the lock file if it is ours, then let the lock go."""
        try:
            if self.owned():
                self.path.unlink()
        except OSError:
            pass
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None
