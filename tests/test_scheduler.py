"""xcube.scheduler.thread_map: the one thread pool of the eager steps."""
from __future__ import annotations

import os
import signal
import sys
import threading

import pytest

from xcube.scheduler import thread_map


def test_thread_map_keeps_order_and_uses_one_pool():
    names = set()

    def work(k):
        names.add(threading.current_thread().name)
        return k * k

    for _ in range(5):
        assert thread_map(work, range(7)) == [k * k for k in range(7)]
    if (os.cpu_count() or 1) > 1:  # the same threads serve every call
        assert names and all(n.startswith("xcube") for n in names) and len(names) <= os.cpu_count()
    assert thread_map(work, []) == [] and thread_map(work, [3]) == [9]


def test_nested_thread_map_runs_in_the_pool_thread():
    """A part that maps again runs its items itself: a pool thread never
    waits on its own pool (which could wait forever with every thread busy)."""

    def inner(k):
        return threading.current_thread().name

    def outer(k):
        here = threading.current_thread().name
        return here, thread_map(inner, range(4))

    for here, names in thread_map(outer, range(6)):
        assert names == [here] * 4


def test_thread_map_raises_the_parts_exception():
    def work(k):
        if k == 3:
            raise ValueError("part 3 failed")
        return k

    with pytest.raises(ValueError, match="part 3 failed"):
        thread_map(work, range(6))
    assert thread_map(lambda k: k, range(4)) == [0, 1, 2, 3]  # the pool still works


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs os.fork")
def test_thread_map_in_a_forked_child():
    """A child forked after the pool started gets a pool of its own (the
    parent's threads do not exist in the child)."""
    thread_map(lambda k: k, range(4))
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only when the map completes (a hang ends in SIGALRM after 20 s)
        ok = False
        try:
            signal.alarm(20)
            ok = thread_map(lambda k: k + 1, range(4)) == [1, 2, 3, 4]
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
