"""Non-finite grid inputs (offset, ranges) are refused with a ValueError naming
the argument and saying what is allowed, from the axes code, so every caller
(image, bin_events, Axis.covering) gets the same error."""
from __future__ import annotations

import math

import pytest

import xcube
from xcube.binning import Axis, bin_events, sky_axis

BAD = (math.nan, math.inf, -math.inf)


@pytest.mark.parametrize("off", BAD)
def test_covering_refuses_a_non_finite_offset(off):
    for kw in ({"width": 10.0}, {"nbins": 5}):
        with pytest.raises(ValueError, match=r"offset=.*must be a finite number"):
            Axis.covering("x", 0.0, 100.0, offset=off, **kw)


def test_covering_refuses_an_offset_that_is_not_a_number():
    with pytest.raises(ValueError, match=r"offset='half'.*must be a number"):
        Axis.covering("x", 0.0, 100.0, width=10.0, offset="half")


@pytest.mark.parametrize("off", BAD)
def test_image_and_bin_events_refuse_a_non_finite_offset(make_event_file, off):
    ev = xcube.open_events(make_event_file(n=200))
    with pytest.raises(ValueError, match=r"offset=.*must be a finite number"):
        sky_axis(ev, "x", 400.0, range=(20000, 32000), offset=off)
    with pytest.raises(ValueError, match=r"offset=.*must be a finite number"):
        xcube.image(ev, 400.0, offset=off)
    with pytest.raises(ValueError, match=r"offset=.*must be a finite number"):
        bin_events(ev, x={"width": 400.0, "range": (20000, 32000)}, offset=off)


def test_finite_offsets_still_shift_the_grid():
    assert Axis.covering("x", 0.0, 100.0, width=10.0, offset=0.5).edges[0] == -5.0
    assert Axis.covering("x", 0.0, 100.0, width=10.0, offset=1.5).edges[0] == -5.0  # whole bins drop out
    assert Axis.covering("x", 0.0, 100.0, width=10.0, offset=-0.25).edges[0] == -2.5


@pytest.mark.parametrize("bad", BAD)
def test_non_finite_ranges_name_the_argument(make_event_file, bad):
    """x_range=(nan, ...) said only "cannot convert float NaN to integer" (from the whole-pixel rounding)."""
    ev = xcube.open_events(make_event_file(n=200))
    with pytest.raises(ValueError, match=r"sky axis 'x': range=\(.*\) .*must be finite"):
        sky_axis(ev, "x", 400.0, range=(bad, 25000.0))
    with pytest.raises(ValueError, match=r"x_range.*must be finite"):
        xcube.image(ev, 400.0, x_range=(bad, 25000.0), y_range=(21000.0, 25000.0))
    with pytest.raises(ValueError, match=r"y_range.*must be finite"):
        xcube.image(ev, 400.0, x_range=(21000.0, 25000.0), y_range=(21000.0, bad))


def test_a_range_that_is_not_two_numbers_is_named(make_event_file):
    ev = xcube.open_events(make_event_file(n=200))
    for rng in ((1.0, 2.0, 3.0), ("a", 2.0), 5.0):
        with pytest.raises(ValueError, match=r"sky axis 'x': range=.*two"):
            sky_axis(ev, "x", 400.0, range=rng)
