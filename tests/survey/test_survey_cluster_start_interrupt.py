"""Ctrl-C or SIGTERM while the survey's local cluster starts: the cluster is started whole, shut down, and
then the signal acts (interrupted half-way, its worker processes were left to distributed's exit hook, which
printed "AssertionError: Status.init" tracebacks)."""
import os
import signal

import distributed
import pytest

from xcube.survey import engine


class _Fake:
    def __init__(self, log, name, *args, **kwargs):
        self.log, self.name = log, name
        if name == "cluster":
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C half-way through the start
            log.append("started")

    def close(self):
        self.log.append(f"{self.name} closed")


@pytest.mark.parametrize("signum, raised", [(signal.SIGINT, KeyboardInterrupt)])
def test_interrupt_while_the_cluster_starts_shuts_it_down_first(monkeypatch, signum, raised):
    log = []
    monkeypatch.setattr(distributed, "LocalCluster", lambda *a, **k: _Fake(log, "cluster"))
    monkeypatch.setattr(distributed, "Client", lambda *a, **k: _Fake(log, "client"))
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(raised):
        engine.make_client(workers=1, dashboard_address=None)
    assert log == ["started", "client closed", "cluster closed"]  # start finished, then shut down, then raised
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


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
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        with pytest.raises(KeyboardInterrupt, match="while the local cluster started"):
            engine.make_client(workers=1, dashboard_address=None)
        assert log == ["started", "client closed", "cluster closed"] and seen == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)
