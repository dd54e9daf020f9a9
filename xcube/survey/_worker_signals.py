"""A worker plugin of the survey's local cluster (imported where it starts)."""
from __future__ import annotations

import signal
import threading

from distributed import WorkerPlugin


class IgnoreSigint(WorkerPlugin):
    """Make a ``distributed`` worker process ignore SIGINT (in its main
    thread, where the worker runs): a terminal's Ctrl-C reaches the whole
    process group, and the survey, not each worker, stops them. The local
    cluster's first workers are spawned with SIGINT ignored
    (``engine._interrupts_held``); this covers those the nanny restarts."""

    name = "xcube-ignore-sigint"

    def setup(self, worker=None):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
