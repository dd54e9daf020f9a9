"""Sweep p25: compound regions objects (r1 | r2, &, ^) crashed in the description (KeyError 'compound'); the
area of shapes far apart was sampled on one grid over all of them (two 20-pixel circles 30000 pixels apart:
7.7 % off, a light curve's background ratio 89.9 for 112.5)."""
from __future__ import annotations

import numpy as np
import pytest

import xcube
from xcube.regions import pixel_region, region_area


@pytest.fixture
def events(make_event_file):
    return xcube.open_events(make_event_file(n=4000))


@pytest.mark.parametrize("op", ["|", "&", "^"])
def test_compound_regions_objects_select_as_the_regions_package(events, op):
    import astropy.units as u
    from regions import CirclePixelRegion, EllipsePixelRegion, PixCoord

    a = CirclePixelRegion(PixCoord(26000, 26000), 2500)
    b = EllipsePixelRegion(PixCoord(27500, 26000), 3000, 1500, angle=30 * u.deg)
    region = {"|": a | b, "&": a & b, "^": a ^ b}[op]
    x, y = events["x"].values.astype(float), events["y"].values.astype(float)
    want = region.contains(PixCoord(x, y))
    assert xcube.select(events, region=region).sizes["event"] == int(want.sum()) > 0
    assert np.isfinite(region_area(region, events))


@pytest.mark.parametrize("r", [20.0, 50.0, 300.0])
def test_shapes_far_apart_have_their_exact_area(events, r):
    text = f"physical;circle(12000,12000,{r:g});circle(42000,42000,{r:g});box(20000,40000,{r:g},{2 * r:g},30)"
    exact = 2 * np.pi * r * r + 2 * r * r
    assert region_area(pixel_region(text, events)) == pytest.approx(exact, rel=1e-12)
    # overlapping shapes and exclusions are still sampled, now on each shape's own box
    over = f"physical;circle(26000,26000,{r:g});circle(26000,{26000 + r:g},{r:g});-circle(42000,42000,{r / 2:g})"
    lens = 2 * r * r * np.arccos(0.5) - 0.5 * r * np.sqrt(3 * r * r)  # two circles r apart overlap by this
    assert region_area(pixel_region(over, events)) == pytest.approx(2 * np.pi * r * r - lens, rel=1e-3)
