"""SIGTERM while the survey's local cluster starts: the cluster is started whole, shut down, and then the
signal acts (interrupted half-way, its worker processes were left to distributed's exit hook, which printed
"AssertionError: Status.init" tracebacks). SIGINT is ignored while it starts, so that the worker processes
inherit the ignored SIGINT: a terminal's Ctrl-C reaches the whole process group, and it killed each worker with
a KeyboardInterrupt traceback (or failed the start, "Nanny failed to start", exit 1)."""
import os
import signal

import distributed
import pytest

from xcube.survey import engine


class _Fake:
    signum = signal.SIGTERM

    def __init__(self, log, name, *args, **kwargs):
        self.log, self.name = log, name
        if name == "cluster":
            self.sigint = signal.getsignal(signal.SIGINT)  # what worker processes spawned now inherit
            os.kill(os.getpid(), self.signum)  # a signal half-way through the start
            log.append("started")

    def close(self):
        self.log.append(f"{self.name} closed")

    def register_plugin(self, plugin):
        self.plugin = plugin


class _Terminated(Exception):
    pass


def _raise_terminated(signum, frame):
    raise _Terminated(signum)


def test_sigterm_while_the_cluster_starts_shuts_it_down_first(monkeypatch):
    log = []
    monkeypatch.setattr(distributed, "LocalCluster", lambda *a, **k: _Fake(log, "cluster"))
    monkeypatch.setattr(distributed, "Client", lambda *a, **k: _Fake(log, "client"))
    previous = signal.signal(signal.SIGTERM, _raise_terminated)  # (as the CLI's handler: SIGTERM stops it)
    try:
        before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        with pytest.raises(_Terminated):
            engine.make_client(workers=1, dashboard_address=None)
        assert log == ["started", "client closed", "cluster closed"]  # start finished, then shut down, then raised
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_ctrl_c_while_the_cluster_starts_is_ignored_and_so_are_the_workers(monkeypatch):
    log, made = [], []

    def cluster(*a, **k):
        made.append(_Fake(log, "cluster"))
        return made[-1]

    monkeypatch.setattr(_Fake, "signum", signal.SIGINT)
    monkeypatch.setattr(distributed, "LocalCluster", cluster)
    monkeypatch.setattr(distributed, "Client", lambda *a, **k: _Fake(log, "client"))
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    client, close = engine.make_client(workers=1, dashboard_address=None)
    assert made[0].sigint is signal.SIG_IGN  # the workers spawned during the start ignore Ctrl-C
    assert log == ["started"]  # the Ctrl-C was ignored: the cluster is kept
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    close()
    assert log == ["started", "client closed", "cluster closed"]


def test_no_interrupt_leaves_the_handlers_and_returns_the_client(monkeypatch):
    log = []
    monkeypatch.setattr(distributed, "LocalCluster", lambda *a, **k: _Fake(log, "plain"))
    monkeypatch.setattr(distributed, "Client", lambda *a, **k: _Fake(log, "client"))
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    client, close = engine.make_client(workers=1, dashboard_address=None)
    assert log == [] and (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    close()
    assert log == ["client closed", "plain closed"]


def test_an_ignored_sigint_stays_ignored_while_the_cluster_starts(monkeypatch):
    """A survey started with SIGINT ignored (`xcube survey ... &` in a script): holding it turned the
    ignored Ctrl-C into a shut-down cluster that make_client then returned."""
    log = []
    monkeypatch.setattr(_Fake, "signum", signal.SIGINT)
    monkeypatch.setattr(distributed, "LocalCluster", lambda *a, **k: _Fake(log, "cluster"))
    monkeypatch.setattr(distributed, "Client", lambda *a, **k: _Fake(log, "client"))
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        client, close = engine.make_client(workers=1, dashboard_address=None)
        assert log == ["started"] and signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # ignored, cluster kept
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_handler_that_does_not_raise_still_stops_the_start(monkeypatch):
    log = []
    monkeypatch.setattr(distributed, "LocalCluster", lambda *a, **k: _Fake(log, "cluster"))
    monkeypatch.setattr(distributed, "Client", lambda *a, **k: _Fake(log, "client"))
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with pytest.raises(KeyboardInterrupt, match="while the local cluster started"):
            engine.make_client(workers=1, dashboard_address=None)
        assert log == ["started", "client closed", "cluster closed"] and seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_the_workers_ignore_sigint_also_when_restarted(monkeypatch):
    """A worker the nanny restarts is spawned with the main process's SIGINT handler (default again after the
    start): the worker plugin makes each worker ignore SIGINT when it starts."""
    from xcube.survey._worker_signals import IgnoreSigint

    log, clients = [], []

    def client(*a, **k):
        clients.append(_Fake(log, "client"))
        return clients[-1]

    monkeypatch.setattr(distributed, "LocalCluster", lambda *a, **k: _Fake(log, "plain"))
    monkeypatch.setattr(distributed, "Client", client)
    _, close = engine.make_client(workers=1, dashboard_address=None)
    assert isinstance(clients[0].plugin, IgnoreSigint) and isinstance(clients[0].plugin, distributed.WorkerPlugin)
    close()
    previous = signal.getsignal(signal.SIGINT)
    try:
        IgnoreSigint().setup(worker=None)  # as in a worker's main thread
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
