"""A power-spectrum segment shorter than 3 bins of dt: a clear error naming
the input, before any work (Stingray divided by zero)."""
from __future__ import annotations

import warnings

import pytest

import xcube
from xcube.cli import main


@pytest.mark.parametrize("segment", [50.0, 150.0, 250.0])
def test_segment_shorter_than_three_bins_is_a_clear_error(make_event_file, segment):
    path = make_event_file(n=2000, duration=2000.0, name="short_segment.fits")
    ev = xcube.open_events(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero warning from Stingray
        with pytest.raises(ValueError, match=rf"short_segment.fits: a {segment:g} s segment holds only "
                                             rf"{int(segment // 100)} bin\(s\) of 100 s \(dt\).*at least 3 bins"):
            xcube.power_spectrum(ev, segment=segment, dt=100.0)


def test_cli_segment_shorter_than_the_bin(make_event_file, tmp_path, capsys):
    path = make_event_file(n=2000, duration=2000.0, name="events.fits")
    assert main(["pds", str(path), "--dt", "100", "--segment", "50", "--out", str(tmp_path / "p.fits")]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "50 s segment holds only 0 bin(s) of 100 s" in err and "Maximum" not in err
    lc = tmp_path / "events.lc"
    assert main(["lc", str(path), "--time-bin", "100", "--out", str(lc)]) == 0
    capsys.readouterr()
    assert main(["pds", str(lc), "--segment", "50", "--out", str(tmp_path / "q.fits")]) == 1
    err = capsys.readouterr().err
    assert str(lc) in err and "at least 3 bins" in err and "no 0 s segment" not in err
    assert not (tmp_path / "p.fits").exists() and not (tmp_path / "q.fits").exists()
