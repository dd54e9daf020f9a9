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


@pytest.mark.parametrize("text, expected", [
    ("energy=500:7000", [("energy", 500), ("energy", 7000)]),
    ("energy in [0.5:2] && pi > 3", [("energy", 0.5), ("energy", 2), ("pi", 3)]),
    ("2000 < (energy)", [("energy", 2000)]),
    ("energy * 1000 > 500", []),  # only a bare column compared with a literal
])
def test_comparisons_list_the_literals_a_column_is_compared_with(text, expected):
    assert list(compile_expression(text, DTYPES).comparisons) == expected


def _chandra_acis(tmp_path, n=2000):
    from xcube.io.write_events import write_events_fits

    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(6e8, 6e8 + 1000, n))
    ev_ev = rng.uniform(100, 10000, n).astype(np.float32)  # the evt2 energy column, eV
    cols = {"time": t, "ccd_id": np.full(n, 7, np.int16), "x": rng.uniform(4000, 4200, n).astype(np.float32),
            "y": rng.uniform(4000, 4200, n).astype(np.float32), "pi": (ev_ev / 14.6).astype(np.int32) + 1,
            "energy": ev_ev}
    hdr = {"TELESCOP": "CHANDRA", "INSTRUME": "ACIS", "MJDREF": 50814.0, "TIMESYS": "TT",
           "TSTART": t[0] - 1, "TSTOP": t[-1] + 1}
    return write_events_fits(tmp_path / "acisf01234_evt2.fits", cols, header=hdr, gti=([t[0] - 1], [t[-1] + 1]))


def test_ciao_ev_energy_filter_on_chandra_warns_and_names_the_file(tmp_path):
    import warnings

    p = _chandra_acis(tmp_path)
    ev = xcube.open_events(p)
    with pytest.warns(UserWarning, match=r"acisf01234_evt2\.fits: .*'energy' with 500, 7000.*keV.*energy_ev"):
        assert xcube.select(ev, expr="energy=500:7000").sizes["event"] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # keV on energy, eV on energy_ev: no warning
        kev = xcube.select(ev, expr="energy=0.5:7")
        ev_col = xcube.select(ev, expr="energy_ev=500:7000")
    e = ev["energy_ev"].values
    assert ev_col.sizes["event"] == int(((e >= 500) & (e < 7000)).sum()) > 0
    assert abs(kev.sizes["event"] - ev_col.sizes["event"]) < 20  # PI channels of 14.6 eV


def test_energy_unit_warning_uses_the_mission_range(make_event_file):
    import warnings

    ev = xcube.open_events(make_event_file(n=200))  # XMM MOS1, 0.15-15 keV
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xcube.select(ev, expr="energy < 20 && PI > 5000")  # a little beyond the range, PI in eV: fine
    with pytest.warns(UserWarning, match=r"'energy' with 2000.*keV") as rec:
        xcube.select(ev, expr="energy > 2000")
    assert "energy_ev" not in str(rec[0].message)  # the file has no eV column
