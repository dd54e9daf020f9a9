"""A column the mission's default screening or an energy band needs and the
file lacks: an error naming the file, the column and the way out, not the
internal filter expression."""
from __future__ import annotations

import numpy as np
import pytest
from test_select import ATTRS

import xcube
from xcube.cli import main
from xcube.io.events_fits import events_dataset
from xcube.select import EventFilter, screening_expression


def _events(drop=(), source="cols.fits"):
    rng = np.random.default_rng(0)
    n = 100
    cols = {"time": np.sort(rng.uniform(0, 100, n)), "x": rng.integers(25000, 27000, n).astype(np.int32),
            "y": rng.integers(25000, 27000, n).astype(np.int32), "pi": rng.integers(200, 12000, n).astype(np.int16),
            "pattern": np.zeros(n, np.uint8), "flag": np.zeros(n, np.int32)}
    for c in drop:
        cols.pop(c)
    return events_dataset(cols, ([0.0], [100.0]), {}, dict(ATTRS, source=source))


@pytest.mark.parametrize("column", ["pattern", "flag"])
def test_screening_needs_a_column_the_file_lacks(column):
    ev = _events(drop=(column,))
    msg = (rf"cols.fits: the XMM-Newton EMOS1 default screening \(PATTERN <= 12 && FLAG == 0\) needs the "
           rf"{column.upper()} column, which this file lacks \(columns: .*\); skip the screening with --no-screen "
           r"\(screening=False")
    with pytest.raises(ValueError, match=msg):
        screening_expression(ev)
    with pytest.raises(ValueError, match=msg):
        EventFilter.for_events(ev, screening=True)  # the transient search's filter
    assert screening_expression(_events()) == "PATTERN <= 12 && FLAG == 0"
    # a user's own expression keeps the expression error
    with pytest.raises(ValueError, match=rf"unknown column '{column.upper()}'"):
        xcube.select(ev, expr=f"{column.upper()} == 0")


def test_energy_selection_without_a_pi_column():
    ev = _events(drop=("pi",))
    msg = r"cols.fits: no PI \(energy\) column, which the energy band needs; columns: flag, pattern, time, x, y"
    with pytest.raises(ValueError, match=msg):
        xcube.select(ev, energy_band=(0.5, 2.0))
    with pytest.raises(ValueError, match=msg):  # the search's flare light curve filter
        EventFilter.for_events(ev, expr="energy > 10.0 && energy < 12.0")


def test_cli_search_and_lc_messages(make_event_file, tmp_path, capsys):
    from astropy.io import fits

    path = make_event_file(name="events.fits")
    for column in ("PI", "PATTERN"):
        bad = tmp_path / f"no{column}.fits"
        with fits.open(path) as hdul:
            cols = [c for c in hdul["EVENTS"].columns if c.name != column]
            hdul["EVENTS"] = fits.BinTableHDU.from_columns(cols, header=hdul["EVENTS"].header, name="EVENTS")
            hdul.writeto(bad)
        assert main(["search", str(bad), "--out", str(tmp_path / f"s{column}"), "--quiet"]) == 1
        err = capsys.readouterr().err
        assert str(bad) in err and "energy >" not in err and "filter expression" not in err, err
        assert ("no PI (energy) column" if column == "PI" else "needs the PATTERN column") in err
        if column == "PATTERN":
            assert "--no-screen" in err
            assert main(["lc", str(bad), "--time-bin", "1000", "--out", str(tmp_path / "x.lc")]) == 1
            assert "needs the PATTERN column" in capsys.readouterr().err
            assert main(["lc", str(bad), "--time-bin", "1000", "--no-screen", "--out", str(tmp_path / "x.lc")]) == 0
