"""``select(gti=...)``: one rule for the user's GTI forms (``xcube.gti.as_gti``).

A tuple is ``(starts, stops)``; a list (or an ``(n, 2)`` array) holds
``(start, stop)`` rows, Stingray's layout. A list of two pairs used to be read
as (starts, stops), which merged the intervals and kept the gap.
"""
import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import xcube
from xcube import gti as gtimod
from xcube.io.events_fits import events_dataset
from xcube.missions import get_profile

MOS1 = get_profile("xmm-mos1")
ATTRS = {"mission": "XMM-Newton", "instrument": "EMOS1", "profile": "xmm-mos1", "obs_id": "0123456789"}


def _events(n=2000, t0=0.0, duration=10000.0):
    t = np.linspace(t0, t0 + duration, n, endpoint=False)
    pi = np.full(n, 1000, np.int16)
    cols = {"time": da.from_array(t, chunks=300), "pi": da.from_array(pi, chunks=300),
            "energy": da.from_array(MOS1.energy(pi), chunks=300)}
    return events_dataset(cols, ([t0], [t0 + duration]), {}, dict(ATTRS))


def _select(ev, gti):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "overlapping GTIs were normalised" for any valid form
        return xcube.select(ev, gti=gti)


def _check(out, starts, stops):
    np.testing.assert_array_equal(out["gti_start"].values, starts)
    np.testing.assert_array_equal(out["gti_stop"].values, stops)
    assert out.attrs["exposure"] == pytest.approx(float(np.sum(np.subtract(stops, starts))))
    t = np.asarray(out["time"].values)
    inside = np.zeros(t.size, bool)
    for a, b in zip(starts, stops):
        inside |= (t >= a) & (t < b)
    assert inside.all()


def test_a_list_of_two_pairs_is_two_intervals():
    ev = _events()
    pairs = [(1000.0, 2000.0), (5000.0, 6000.0)]
    for form in (pairs, [list(p) for p in pairs], np.array(pairs), np.array(pairs).tolist()):
        out = _select(ev, form)
        _check(out, [1000.0, 5000.0], [2000.0, 6000.0])
        assert out.attrs["exposure"] == 2000.0 and out.sizes["event"] == 400
        assert out.attrs["selection"][-1] == "gti=2 intervals in [1000.000000, 6000.000000) s, 2000.000 s"


def test_lists_of_one_and_of_three_pairs():
    ev = _events()
    _check(_select(ev, [(1000.0, 2000.0)]), [1000.0], [2000.0])
    _check(_select(ev, [[1000.0, 2000.0]]), [1000.0], [2000.0])
    three = [(1000.0, 2000.0), (3000.0, 3500.0), (5000.0, 6000.0)]
    for form in (three, tuple(three), np.array(three)):
        _check(_select(ev, form), [1000.0, 3000.0, 5000.0], [2000.0, 3500.0, 6000.0])


def test_starts_stops_tuple_forms_keep_working():
    ev = _events()
    _check(_select(ev, (1000.0, 2000.0)), [1000.0], [2000.0])  # one interval
    _check(_select(ev, [1000.0, 2000.0]), [1000.0], [2000.0])  # a flat [start, stop] is one interval too
    _check(_select(ev, ([1000.0], [2000.0])), [1000.0], [2000.0])
    _check(_select(ev, ([1000.0, 5000.0], [2000.0, 6000.0])), [1000.0, 5000.0], [2000.0, 6000.0])
    _check(_select(ev, (np.array([1000.0, 5000.0]), np.array([2000.0, 6000.0]))), [1000.0, 5000.0],
           [2000.0, 6000.0])
    _check(_select(ev, ([1000.0, 3000.0, 5000.0], [2000.0, 3500.0, 6000.0])), [1000.0, 3000.0, 5000.0],
           [2000.0, 3500.0, 6000.0])
    # what xcube.gti returns and a Dataset's GTIs
    g = gtimod.union(([1000.0], [2000.0]), ([5000.0], [6000.0]))
    _check(_select(ev, g), [1000.0, 5000.0], [2000.0, 6000.0])
    ds = xr.Dataset({"gti_start": ("gti", g[0]), "gti_stop": ("gti", g[1])})
    _check(_select(ev, ds), [1000.0, 5000.0], [2000.0, 6000.0])


def test_a_two_by_two_in_the_other_layout_is_refused_not_merged():
    ev = _events()
    # a list read as rows would make [1000, 5000) and [2000, 6000): overlapping, while the numbers
    # are (starts, stops) of disjoint intervals: refused, naming both readings
    with pytest.raises(ValueError, match=r"2 x 2 gti .* list of \(start, stop\) pairs.*tuple of two arrays"):
        xcube.select(ev, gti=[[1000.0, 5000.0], [2000.0, 6000.0]])
    with pytest.raises(ValueError, match=r"\(n, 2\) array"):
        xcube.select(ev, gti=np.array([[1000.0, 5000.0], [2000.0, 6000.0]]))
    # and a tuple of two pairs, read as (starts, stops), that would be disjoint rows
    with pytest.raises(ValueError, match=r"tuple \(starts, stops\).*list of pairs"):
        xcube.select(ev, gti=((1000.0, 2000.0), (5000.0, 6000.0)))
    # genuinely overlapping rows (the other reading is reversed) are merged with the usual warning
    with pytest.warns(UserWarning, match="overlapping GTIs were normalised"):
        out = xcube.select(ev, gti=[(1000.0, 4000.0), (2000.0, 3000.0)])
    _check(out, [1000.0], [4000.0])


def test_bad_forms_are_named():
    ev = _events()
    for bad in (5.0, {"a": 1}, [[1.0, 2.0, 3.0]], np.zeros((2, 3)), [(1.0, 2.0), (3.0,)], (1.0, 2.0, 3.0)):
        with pytest.raises(TypeError, match=r"gti must be \(start, stop\)"):
            xcube.select(ev, gti=bad)
    with pytest.raises(ValueError, match="differ in length"):
        xcube.select(ev, gti=([1.0, 2.0], [3.0]))
    with pytest.raises(ValueError, match="empty or reversed"):
        xcube.select(ev, gti=[(2000.0, 1000.0)])
    with pytest.raises(ValueError, match="NaN"):
        xcube.select(ev, gti=[(np.nan, 1000.0)])


def test_as_gti_is_the_shared_parser():
    assert [a.tolist() for a in gtimod.as_gti([(1.0, 2.0), (5.0, 6.0)])] == [[1.0, 5.0], [2.0, 6.0]]
    assert [a.tolist() for a in gtimod.as_gti(([1.0, 5.0], [2.0, 6.0]))] == [[1.0, 5.0], [2.0, 6.0]]
    assert [a.tolist() for a in gtimod.as_gti((1.0, 2.0))] == [[1.0], [2.0]]


def test_gti_rows_in_write_gti_and_time_axis(tmp_path):
    """The other entry points that take a user's GTIs read (start, stop) rows as select(gti=) does."""
    from astropy.io import fits

    from xcube.binning.axes import time_axis
    from xcube.io.ogip import write_gti

    rows = [(0.0, 10.0), (20.0, 30.0)]
    path = write_gti(tmp_path / "g.fits", rows)
    np.testing.assert_array_equal(fits.getdata(path, 1)["START"], [0.0, 20.0])
    np.testing.assert_array_equal(time_axis(rows, 5.0).edges, [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0])
    tuple_form = time_axis(([0.0, 20.0], [10.0, 30.0]), 5.0)
    np.testing.assert_array_equal(time_axis(np.array(rows), 5.0).edges, tuple_form.edges)
