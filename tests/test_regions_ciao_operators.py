"""CIAO operators between shapes (sweep p25): 'A - B' was read as A alone (the rest of the statement dropped
by the parser), so an annulus-like background kept its excluded core in counts and BACKSCAL. A subtraction is
read as a DS9 exclusion; union, intersection, shapes without ';' and surplus arguments are refused by name."""
from __future__ import annotations

import numpy as np
import pytest

import xcube
from xcube.regions import pixel_region, region_area


@pytest.fixture
def events(make_event_file):
    return xcube.open_events(make_event_file(n=4000))


def _inside(ev, x0, y0, r):
    x, y = ev["x"].values.astype(float), ev["y"].values.astype(float)
    return (x - x0) ** 2 + (y - y0) ** 2 <= r * r


@pytest.mark.parametrize("text", ["physical;circle(26000,26000,3000) - circle(26000,26000,1200)",
                                  "physical;circle(26000,26000,3000)-circle(26000,26000,1200)",
                                  "circle(26000,26000,3000) -circle(26000,26000,1200)"])
def test_a_subtraction_is_an_exclusion(events, text):
    want = _inside(events, 26000, 26000, 3000) & ~_inside(events, 26000, 26000, 1200)
    ds9 = "physical;circle(26000,26000,3000);-circle(26000,26000,1200)"
    assert xcube.select(events, region=text).sizes["event"] == int(want.sum()) > 0
    assert region_area(pixel_region(text, events)) == pytest.approx(region_area(pixel_region(ds9, events)))


@pytest.mark.parametrize("text, said", [
    ("physical;circle(26000,26000,3000) + circle(29000,29000,1000)", "the CIAO operator '\\+'"),
    ("physical;circle(26000,26000,3000) * circle(29000,29000,1000)", "the CIAO operator '\\*'"),
    ("physical;circle(26000,26000,3000) circle(29000,29000,1000)", "shapes without ';'"),
    # sweep p28: other separators dropped the second shape silently
    ("physical;circle(26000,26000,3000),circle(29000,29000,1000)", "',' between two shapes is not an operator"),
    ("physical;circle(26000,26000,3000) !circle(29000,29000,1000)", "'!' between two shapes"),
    ("physical;circle(26000,26000,3000)*!circle(29000,29000,1000)", "'\\*!' between two shapes"),
    ("physical;circle(26000,26000,3000) and circle(29000,29000,1000)", "'and' between two shapes"),
    ("physical;circle(26000,26000,3000,30)", "a circle takes 3 arguments, not 4"),
    ("physical;circle(26000,26000,3000) - circle(26000,26000,1000);circle(29000,29000,500)",
     "beside other shapes"),
])
def test_other_operators_are_refused_by_name(events, text, said):
    with pytest.raises(ValueError, match=said):
        xcube.select(events, region=text)


@pytest.mark.parametrize("props", ["color=red width=2", "text={circle(1,2,3) is a label}"])
def test_properties_after_a_shape_are_not_a_second_shape(events, props):
    text = f"physical;circle(26000,26000,3000) {props}"
    assert xcube.select(events, region=text).sizes["event"] == int(_inside(events, 26000, 26000, 3000).sum())
    assert np.isfinite(region_area(pixel_region(text, events)))


def test_space_separated_arguments_inside_parentheses_are_read(events):
    """Review p25: the argument count split on commas only, refusing DS9's circle(100 100 20)."""
    want = int(_inside(events, 26000, 26000, 3000).sum())
    assert xcube.select(events, region="physical;circle(26000 26000 3000)").sizes["event"] == want
    with pytest.raises(ValueError, match="a circle takes 3 arguments, not 4"):
        xcube.select(events, region="physical;circle(26000 26000 3000 30)")
