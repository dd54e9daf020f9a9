"""A TIME cut in a filter expression: the good time (exposure) follows it.

``select(ev, expr="TIME < t")`` kept the events before t but left the GTIs
and the exposure of the whole observation, so rates, spectra and images
made with it were too low by the cut's fraction, without a word."""
from __future__ import annotations

import numpy as np
import pytest

import xcube
from xcube import gti as gtimod
from xcube.expression import compile_expression


def _expected(ev, start, stop) -> float:
    return gtimod.exposure(gtimod.intersection(gtimod.from_dataset(ev), (np.atleast_1d(start), np.atleast_1d(stop))))


@pytest.fixture
def events(make_event_file):
    return xcube.open_events(make_event_file(n=5000))


def test_the_good_time_follows_the_time_terms(events):
    g = gtimod.from_dataset(events)
    t0, t1 = float(g[0][0]), float(g[1][-1])
    a, b, c = (t0 + f * (t1 - t0) for f in (0.2, 0.5, 0.7))
    t = events["time"].values
    for expr, start, stop in [
        (f"TIME < {b}", [t0], [b]),
        (f"PATTERN <= 12 && TIME in [{a}:{b}]", [a], [b]),
        (f"time={a}:{c},pattern=0:4", [a], [c]),  # CIAO
        (f"!(TIME > {a} && TIME < {b}) && TIME < {c}", [t0, b], [a, c]),
        (f"(TIME < {a} || TIME >= {b}) && PI > 200", [t0, b], [a, t1]),
        (f"{a} < TIME < {c} && TIME >= {b}", [b], [c]),
    ]:
        sel = xcube.select(events, expr=expr)
        want = _expected(events, start, stop)
        assert sel.attrs["exposure"] == pytest.approx(want, abs=1e-6), expr
        got = gtimod.from_dataset(sel)
        assert np.all(gtimod.in_gti(sel["time"].values, got)), expr
        assert gtimod.exposure(got) == pytest.approx(want, abs=1e-6)
        assert sel.sizes["event"] <= np.count_nonzero(gtimod.in_gti(t, (np.array(start), np.array(stop))))
    twice = xcube.select(xcube.select(events, expr=f"TIME < {c}"), expr=f"TIME > {a}")
    assert twice.attrs["exposure"] == pytest.approx(_expected(events, a, c), abs=1e-6)


def test_products_use_the_cut_good_time(events):
    g = gtimod.from_dataset(events)
    b = 0.5 * (float(g[0][0]) + float(g[1][-1]))
    want = _expected(events, g[0][0], b)
    lc = xcube.lightcurve(events, 100.0, expr=f"TIME < {b}").compute()
    assert float(lc["exposure"].sum()) == pytest.approx(want, abs=1e-6)
    assert xcube.image(events, 80, expr=f"TIME < {b}").attrs["exposure"] == pytest.approx(want, abs=1e-6)
    assert xcube.spectrum(events, expr=f"TIME < {b}").attrs["exposure"] == pytest.approx(want, abs=1e-6)


def test_a_time_test_that_cannot_become_good_time_warns_and_keeps_the_gtis(events):
    before = events.attrs["exposure"]
    for expr in ("PATTERN == 0 || TIME < 5e8", "TIME * 2 < 5e8", "TIME < X", "!(PATTERN <= 4 && TIME < 1e8)"):
        with pytest.warns(UserWarning, match="cannot become good time"):
            sel = xcube.select(events, expr=expr)
        assert sel.attrs["exposure"] == before


def test_time_intervals_are_exact():
    dtypes = {"time": np.float64, "pi": np.int32}
    ex = compile_expression("(TIME >= 1) && (TIME < 3 || TIME > 7) && PI > 5", dtypes)
    start, stop = ex.time_intervals(0.0, 50.0)
    assert start.tolist() == [1.0, 7.0] and stop.tolist() == [3.0, 50.0]
    assert compile_expression("TIME == 5", dtypes).time_intervals(0.0, 50.0)[0].size == 0
    assert compile_expression("PI > 5", dtypes).time_intervals(0.0, 50.0) is None
