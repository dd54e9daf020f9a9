"""Journals of tool runs, and the clean-up after a driver killed with SIGKILL.

Every tool run keeps a journal beside its private parameter-file directory,
``<workdir>/.pfiles/<task>-<hex>.run.json``, and holds an ``flock`` on it
while it runs; the kernel releases the lock when the process ends, also
when it is killed with SIGKILL. The journal names the run (task, tool,
host, driver PID, start time), its token (:data:`~xcube.tools.procs.TOKEN_VARIABLE`),
the plan of its outputs (temporary names, files moved aside; written before
any file is moved, :meth:`xcube.tools.staging.Staging.begin`) and, once
started, the tool's PID, which is its process-group id, with the tool's
start time.

Before a run in a work directory, :func:`recover_dead_runs` looks at the
journals there. A journal whose lock it can take belongs to a run whose
driver died: the processes of that run still running (marked with its token;
its process group when the leader is still that tool, checked by its start
time) are stopped; then its outputs are put in order
(:func:`xcube.tools.staging.recover`): its temporary files and what its tool
wrote unchecked are removed, and each earlier product it had moved aside is
put back under its name, so the product and its provenance record agree
again (a kept copy is dropped instead when its name holds a product a record
describes, made by a run that finished since); last its parameter-file
directory and journal are removed. So a tool orphaned by a killed driver
cannot write into a resumed run's products, an earlier good product is not
lost (nor made again) because a forced re-run was killed, and leftovers do
not pile up. Journals of live runs (locked) are left alone, whichever
process or thread owns them.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
from datetime import datetime, timezone
from pathlib import Path

from .files import fingerprint
from .procs import stop_orphans
from .provenance import read_mods, read_record, record_path
from .staging import recover

__all__ = ["RunJournal", "recover_dead_runs", "JOURNAL_SUFFIX"]

log = logging.getLogger("xcube.tools")

#: what a journal's name ends with, after the name of its parameter-file directory
JOURNAL_SUFFIX = ".run.json"


class RunJournal:
    """The journal of one live run (module doc); use :meth:`start`, then
    :meth:`update` and finally :meth:`close`."""

    def __init__(self, path: Path, fd: int, data: dict):
        self.path, self._fd, self.data = path, fd, data

    @classmethod
    def start(cls, pfiles_dir: Path, **data) -> "RunJournal":
        """Create and lock the journal of the run whose parameter-file
        directory is ``pfiles_dir`` (which need not exist yet). It appears
        under its name only once locked and written, so no other run ever
        takes a starting run for a dead one."""
        path = pfiles_dir.with_name(pfiles_dir.name + JOURNAL_SUFFIX)
        new = path.with_name(path.name + ".new")  # not a journal name: never read by recover_dead_runs
        for attempt in range(100):  # another run in the directory removes .pfiles when it finds it empty
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(new, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                break
            except FileNotFoundError:  # removed between the two calls: make it again (the file keeps it now)
                if attempt == 99:
                    raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = {"host": socket.gethostname(), "driver_pid": os.getpid(),
                    "started": datetime.now(timezone.utc).isoformat(), **data}
            journal = cls(path, fd, data)
            journal._write()
            os.rename(new, path)
        except BaseException:
            os.close(fd)
            new.unlink(missing_ok=True)
            raise
        return journal

    def _write(self) -> None:
        # one write at offset 0, then the length: a driver killed in between leaves the new text followed by
        # the tail of the old one, which the reader ignores (it decodes the first JSON object only)
        text = json.dumps(self.data, default=str).encode()
        os.pwrite(self._fd, text, 0)
        os.ftruncate(self._fd, len(text))

    def update(self, **fields) -> None:
        """Add ``fields`` to the journal (rewritten in place, still locked)."""
        self.data.update(fields)
        self._write()

    def close(self) -> None:
        """Remove the journal, then release its lock (the run ended normally)."""
        if self._fd < 0:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = -1


def _read(fd: int) -> dict:
    try:
        text = os.pread(fd, 1 << 20, 0).decode(errors="replace")
        data, _ = json.JSONDecoder().raw_decode(text)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recover_dead_runs(workdir) -> list[dict]:
    """Clean up after the runs in ``workdir`` whose driver died (module doc):
    stop their processes still running, remove their parameter-file
    directories and journals. Returns the journals of those runs (each with
    ``"stopped"``: the PIDs stopped). Eager; cheap when there is nothing to
    do (one directory listing). Never raises for a journal it cannot handle:
    it logs a warning and leaves that one."""
    base = Path(workdir) / ".pfiles"
    try:
        journals = sorted(p for p in base.iterdir() if p.name.endswith(JOURNAL_SUFFIX))
    except OSError:  # no .pfiles: nothing ran here, or every run ended normally
        return []
    done = []
    for path in journals:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:  # removed meanwhile by its run, or by another run's recovery
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live run
            if os.fstat(fd).st_nlink == 0:
                continue  # recovered meanwhile by another run
            data = _read(fd)
            data["stopped"] = _stop(path, data)
            if isinstance(data.get("staging"), dict):
                data["recovered"] = recover(data["staging"], _recorded_by(data["staging"]))
                if data["recovered"]:
                    log.warning("%s: put the outputs of the run whose driver died back in order: %s", path,
                                "; ".join(data["recovered"]))
            shutil.rmtree(path.with_name(path.name[: -len(JOURNAL_SUFFIX)]), ignore_errors=True)
            path.unlink(missing_ok=True)
            done.append(data)
        except OSError as exc:
            log.warning("%s: could not clean up after the run of this journal: %s", path, exc)
        finally:
            os.close(fd)
    try:
        base.rmdir()
    except OSError:
        pass
    return done


def _stop(path: Path, data: dict) -> list[int]:
    """Stop the processes of the dead run of journal ``path``; their PIDs."""
    what = f"{data.get('task', '?')} ({data.get('tool', '?')}, started {data.get('started', '?')})"
    host = data.get("host")
    if host not in (None, socket.gethostname()):
        log.warning("%s: the run %s was started on host %s whose driver died; its processes there cannot be "
                    "checked from %s", path, what, host, socket.gethostname())
        return []
    stopped = stop_orphans(data.get("token"), data.get("tool_pid"), data.get("tool_started"))
    if stopped:
        log.warning("%s: the driver of run %s died and left %d process(es) running; stopped: %s", path, what,
                    len(stopped), stopped)
    else:
        log.info("%s: the driver of run %s died; none of its processes is left", path, what)
    return stopped


def _recorded_by(plan: dict):
    """``recorded(path)``: ``path`` holds what a provenance record next to one
    of the plan's outputs (or its in-place modification list) says it holds."""
    import glob

    outputs: dict = {}
    names = list(plan.get("finals", [])) + [h for p in plan.get("patterns", []) for h in glob.glob(p)]
    for name in dict.fromkeys(names):
        rec = read_record(record_path(name))
        if rec and isinstance(rec.get("outputs"), dict):
            outputs.update(rec["outputs"])

    def recorded(path: Path) -> bool:
        now = fingerprint(path)
        if outputs.get(str(Path(path).resolve())) == now:
            return True
        mods = read_mods(path)
        return bool(mods) and mods[-1].get("after") == now
    return recorded
