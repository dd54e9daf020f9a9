"""``open_events(path, hdu=NAME)``: event tables with nonstandard extension
names (Stingray's ``EVENTSxy``, AstroSat LAXPC's ``event file``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xcube
from xcube.cli import main


def test_nonstandard_extension_is_refused_with_the_way_around(make_event_file):
    f = make_event_file(n=300, events_extension="EVENTSxy")
    with pytest.raises(ValueError, match=r"hdu=NAME.*--hdu") as err:
        xcube.open_events(f)
    assert "EVENTSXY" in str(err.value).upper()  # the tables are listed
    ev = xcube.open_events(f, hdu="EVENTSxy")
    assert ev.sizes["event"] == 300 and ev.attrs["profile"] == "xmm-mos1" and ev.attrs["exposure"] == 1.0e4
    assert xcube.open_events(f, hdu="eventsxy").sizes["event"] == 300  # case-insensitive
    assert xcube.open_events(f, hdu=1).sizes["event"] == 300  # or by index
    with pytest.raises(ValueError, match="no table extension named 'SPAM'"):
        xcube.open_events(f, hdu="SPAM")
    with pytest.raises(ValueError, match="not a binary table"):
        xcube.open_events(f, hdu=0)


def test_hdu_is_part_of_the_cache_key(make_event_file):
    """An unsorted file is converted into the cache; the same file with another table is another entry."""
    f = make_event_file(n=200, sorted=False, events_extension="EVENTSxy")
    a = xcube.open_events(f, hdu="EVENTSxy")
    assert a.attrs.get("cache_reason") == "not time-sorted"
    assert np.all(np.diff(a["time"].values) >= 0)
    assert xcube.open_events(f, hdu="EVENTSxy").sizes["event"] == 200  # from the cache


def test_hdu_on_the_command_line(make_event_file, tmp_path, capsys):
    f = make_event_file(n=300, events_extension="EVENTSxy")
    assert main(["info", str(f)]) == 1
    assert "--hdu" in capsys.readouterr().err
    assert main(["info", str(f), "--hdu", "EVENTSxy"]) == 0
    assert "events      : 300" in capsys.readouterr().out
    assert main(["lc", str(f), "--hdu", "EVENTSxy", "--time-bin", "1000", "--out", str(tmp_path / "a.lc")]) == 0


def test_stingray_laxpc_file():
    stingray = pytest.importorskip("stingray")
    path = Path(stingray.__file__).parent / "tests" / "data" / "laxpc_file_read.fits"
    if not path.exists():
        pytest.skip(f"{path}: not installed with this Stingray")
    with pytest.warns(UserWarning):  # unknown mission (AstroSat) and no GTI table: said, not fatal
        ev = xcube.open_events(path, hdu="event file")
    assert ev.sizes["event"] == 1000 and "time" in ev


@pytest.mark.parametrize("sorted_", [True, False])
def test_two_event_tables_of_one_name(make_event_file, tmp_path, sorted_):
    """A second EVENTS table (EXTVER 2) was ignored without a word, and hdu= could not choose it."""
    from astropy.io import fits

    a = make_event_file(n=100, seed=1, sorted=sorted_)
    b = make_event_file(n=250, seed=2, sorted=sorted_)
    with fits.open(a) as ha, fits.open(b) as hb:
        second = hb["EVENTS"].copy()
        second.header["EXTVER"] = 2
        out = fits.HDUList([h.copy() for h in ha] + [second])
        path = tmp_path / "two.fits"
        out.writeto(path)
    with pytest.warns(UserWarning, match=r'2 event tables named EVENTS .*hdu="EVENTS,2"'):
        assert xcube.open_events(path).sizes["event"] == 100
    for hdu in ("EVENTS,2", ("events", 2), len(out) - 1):
        ev = xcube.open_events(path, hdu=hdu)
        assert ev.sizes["event"] == 250
        with fits.open(b) as hb:
            assert np.array_equal(np.sort(ev["time"].values), np.sort(hb["EVENTS"].data["TIME"]))
    with pytest.raises(ValueError, match="no table extension EVENTS with EXTVER = 3"):
        xcube.open_events(path, hdu="EVENTS,3")
