"""A segment of more dt bins than memory holds is a ValueError naming the
input, segment, dt and the memory needed (the check xcube lc makes of its time
axis), not a numpy MemoryError traceback from inside a Dask task
(``xcube pds --dt 1e-6 --segment 256``)."""
from __future__ import annotations

import pytest

import xcube
from xcube.binning import memory
from xcube.cli import main


@pytest.fixture
def small_memory(monkeypatch):
    """10 MB available: one segment of 1e6 bins (8 MB per float64 array) does not fit."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 10_000_000)


def test_a_segment_larger_than_memory_is_refused(make_event_file, small_memory):
    path = make_event_file(n=2000, duration=100.0, name="big.evt")
    with pytest.raises(ValueError, match=r"big\.evt: .*10 s segment.*1000000 bins of dt = 1e-05 s.*would need "
                                         r"64 MB, more than the 2\.5 MB allowed.*--segment.*--dt"):
        xcube.power_spectrum(xcube.open_events(path), segment=10.0, dt=1e-5)
    # a segment that fits is computed as before
    assert xcube.power_spectrum(xcube.open_events(path), segment=10.0, dt=1e-3).attrs["n_bin"] == 10_000
    # light curves go through the same check: a 100 s segment of 1e-4 s bins is 1e6 bins again
    lc = xcube.lightcurve(xcube.open_events(path), 1e-4)
    with pytest.raises(ValueError, match=r"big\.evt.*would need"):
        xcube.power_spectrum(lc, segment=100.0)


def test_cli_gives_the_message_not_a_traceback(make_event_file, small_memory, tmp_path, capsys):
    path = make_event_file(n=2000, duration=100.0, name="big.evt")
    assert main(["pds", str(path), "--segment", "10", "--dt", "1e-5", "--out", str(tmp_path / "p.fits")]) == 1
    err = capsys.readouterr().err
    assert "xcube pds: error:" in err and "would need" in err and "Traceback" not in err
    assert not (tmp_path / "p.fits").exists()
