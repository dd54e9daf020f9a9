"""A survey task's temporary event cache is named after its host and process,
and a new task removes the caches of killed processes of this host (a
SIGKILLed worker cannot remove its own; they used to pile up in $TMPDIR)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile

from xcube.survey.task import CACHE_PREFIX, _event_cache, remove_dead_caches


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_caches_of_dead_processes_of_this_host_are_removed(tmp_path):
    host = socket.gethostname()
    dead = tmp_path / f"{CACHE_PREFIX}{_dead_pid()}@{host}@abc"
    mine = tmp_path / f"{CACHE_PREFIX}{os.getpid()}@{host}@def"
    parent = tmp_path / f"{CACHE_PREFIX}{os.getppid()}@{host}@ghi"  # a live process
    other_host = tmp_path / f"{CACHE_PREFIX}{_dead_pid()}@not-{host}@jkl"
    # host 'node-12' when this is 'node': not this host's, whatever its name looks like
    longer = tmp_path / f"{CACHE_PREFIX}{_dead_pid()}@{host}-12@mno"
    unrelated = tmp_path / "xcube-survey-cache-old"
    for d in (dead, mine, parent, other_host, longer, unrelated):
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "events.zarr").write_bytes(b"x" * 10)
    assert remove_dead_caches(tmp_path) == 1
    assert not dead.exists()
    assert mine.exists() and parent.exists() and other_host.exists() and longer.exists() and unrelated.exists()
    assert remove_dead_caches(tmp_path / "missing") == 0


def test_task_cache_is_named_after_host_and_pid_and_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / f"{CACHE_PREFIX}{_dead_pid()}@{socket.gethostname()}@xyz"
    dead.mkdir()
    with _event_cache(None) as cache:
        assert os.path.basename(cache).startswith(f"{CACHE_PREFIX}{os.getpid()}@{socket.gethostname()}@")
        assert os.path.isdir(cache) and not dead.exists()
    assert not os.path.exists(cache)
    with _event_cache(str(tmp_path / "given")) as cache:  # a cache the user gives is theirs: kept
        assert cache == str(tmp_path / "given")
