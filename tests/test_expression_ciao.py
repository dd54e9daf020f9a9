"""CIAO range filters in filter expressions: ``energy=0.5:2``, ``pi=200:12000``,
open ends, lists of ranges and values, and a comma between filters."""
from __future__ import annotations

import numpy as np
import pytest

import xcube
from xcube.expression import ExpressionError, compile_expression

COLS = {
    "energy": np.array([0.4, 0.5, 1.0, 1.99, 2.0, 3.0], np.float32),
    "pi": np.array([199, 200, 500, 12000, 12001, 5], np.int16),
    "ccd_id": np.array([7, 7, 6, 7, 7, 7], np.int32),
    "x": np.array([10.0, 20.5, 30.0, 40.0, 50.0, 60.0]),
}
DTYPES = {k: v.dtype for k, v in COLS.items()}


def mask(text):
    return compile_expression(text, DTYPES).evaluate(COLS).astype(int).tolist()


@pytest.mark.parametrize("text, expected", [
    ("energy=0.5:2", [0, 1, 1, 1, 0, 0]),  # a real column: lo <= v < hi, as the CIAO data model
    ("energy=:2", [1, 1, 1, 1, 0, 0]),
    ("energy=0.5:", [0, 1, 1, 1, 1, 1]),
    ("pi=200:12000", [0, 1, 1, 1, 0, 0]),  # an integer column: both ends included
    ("pi=:200", [1, 1, 0, 0, 0, 1]),
    ("pi=5,200:500", [0, 1, 1, 0, 0, 1]),  # a list of values and ranges
    ("x=20.5:40", [0, 1, 1, 0, 0, 0]),
    ("pi=-5:200", [1, 1, 0, 0, 0, 1]),
    ("energy=0.5:2,ccd_id=7", [0, 1, 0, 1, 0, 0]),  # a comma between filters is an AND
    ("energy = 0.5 : 2 && pi >= 500", [0, 0, 1, 1, 0, 0]),
    ("(energy=0.5:1)||(energy=3:)", [0, 1, 0, 0, 0, 1]),
    ("pi==5", [0, 0, 0, 0, 0, 1]),
])
def test_ciao_ranges(text, expected):
    assert mask(text) == expected


@pytest.mark.parametrize("text, message", [
    ("energy=:", "at least one bound"),
    ("energy=2:1", "empty range"),
    ("energy=0.5:2,", "ends too early"),
    ("(pi > 3)=1:2", "needs a number on its left"),
])
def test_ciao_range_mistakes_are_explained(text, message):
    with pytest.raises(ExpressionError, match=message):
        compile_expression(text, DTYPES)


def test_select_with_a_ciao_filter_equals_the_band(make_event_file):
    ev = xcube.open_events(make_event_file(n=3000))
    a = xcube.select(ev, expr="energy=0.5:2")
    b = xcube.select(ev, energy_band=(0.5, 2.0))
    np.testing.assert_array_equal(a["time"].values, b["time"].values)
    c = xcube.select(ev, expr="pi=500:1999,ccdnr=1:3")
    pi, ccd = ev["pi"].values, ev["ccdnr"].values
    assert c.sizes["event"] == int(((pi >= 500) & (pi <= 1999) & (ccd >= 1) & (ccd <= 3)).sum())
