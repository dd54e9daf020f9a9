"""The Dask keys of a simulated event list hash the whole simulation setup:
two different lists computed together keep their own events, identical
setups keep identical (cacheable, deterministic) names."""
from __future__ import annotations

import dask
import numpy as np

import xcube.simulate as sim

COLS = ("time", "x", "y", "pi", "pattern", "flag", "ccdnr", "rawx", "rawy")
KW = dict(duration=3000.0, background_rate=1.0, sources=0, soft_protons=0, seed=3, chunk_events=1500)


def _flare(**kw):
    f = dict(t_peak=1500.0, amplitude=1.0, width=50.0, x=25000, y=25000)
    f.update(kw)
    return [f]


def _pairs():
    """Pairs of setups with equal seeds (so equal Poisson counts per slab) that differ in one thing."""
    return [
        (dict(flares=_flare()), dict(flares=_flare(x=27000, y=27000))),  # flare position
        (dict(flares=_flare()), dict(flares=_flare(t_peak=2000.0))),  # flare time
        (dict(pa_pnt=60.0), dict(pa_pnt=0.0)),  # roll
    ]


def test_different_setups_computed_together_keep_their_own_events():
    with dask.config.set({"tokenize.ensure-deterministic": True}):
        for a_kw, b_kw in _pairs():
            a, _ = sim.event_list("xmm-pn", **KW, **a_kw)
            b, _ = sim.event_list("xmm-pn", **KW, **b_kw)
            assert a["time"].data.npartitions > 1
            for c in COLS:
                assert a[c].data.name != b[c].data.name, (a_kw, b_kw, c)
            alone = {c: (a[c].values, b[c].values) for c in COLS}
            together = dask.compute(*(a[c].data for c in COLS), *(b[c].data for c in COLS))
            assert any(not np.array_equal(*alone[c]) for c in COLS), (a_kw, b_kw)
            for k, c in enumerate(COLS):
                np.testing.assert_array_equal(together[k], alone[c][0])
                np.testing.assert_array_equal(together[len(COLS) + k], alone[c][1])


def test_identical_setups_share_names_and_values():
    with dask.config.set({"tokenize.ensure-deterministic": True}):
        a, _ = sim.event_list("xmm-pn", **KW, flares=_flare())
        b, _ = sim.event_list("xmm-pn", **KW, flares=_flare())
    for c in COLS:
        assert a[c].data.name == b[c].data.name
    xa, xb = dask.compute(a["x"].data, b["x"].data)
    np.testing.assert_array_equal(xa, xb)
