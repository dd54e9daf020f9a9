"""Option values the commands accepted though they could not mean anything
(CLI sweep p24): ``plot --dpi 30000`` (a MemoryError traceback), ``plot
--band`` naming a band the file does not hold (ignored), ``spectrum
--pi-range`` outside the instrument's PI range (an empty spectrum, exit 0),
``catalogue --top -1`` (all but the last source), ``tools run --timeout 0``
(the tool killed at once), and ``stitch`` of only a truncated event file
("no light curves given")."""
from __future__ import annotations

import pytest

from xcube.cli import main


def _usage_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.fixture
def one_band_lc(make_event_file, tmp_path, capsys):
    """An OGIP light curve of one band, 0.5-2 keV (``xcube lc``)."""
    lc = tmp_path / "src.lc"
    ev = make_event_file(n=2000, duration=2000.0)
    assert main(["lc", str(ev), "--time-bin", "100", "--energy", "0.5", "2", "--out", str(lc)]) == 0
    capsys.readouterr()
    return lc


def test_plot_refuses_a_dpi_outside_10_to_2400_before_drawing(one_band_lc, tmp_path, capsys, monkeypatch):
    import xcube.plot.files as files
    from xcube.plot import plot_files

    def not_drawn(*a, **k):
        raise AssertionError("the dpi is checked before any figure is drawn")

    monkeypatch.setattr(files, "plot_file", not_drawn)
    out = tmp_path / "f.png"
    for bad in ("30000", "2401", "9", "0", "-5"):
        assert main(["plot", str(one_band_lc), "--dpi", bad, "--out", str(out)]) == 1, bad
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"xcube plot: error: --dpi {bad}: "), err
        assert "from 10 to 2400" in err[0], err
    assert not out.exists()
    with pytest.raises(ValueError, match=r"dpi=100000: .*from 10 to 2400"):
        plot_files([one_band_lc], out, dpi=100000)
    monkeypatch.undo()
    for good in ("10", "40"):
        assert main(["plot", str(one_band_lc), "--dpi", good, "--out", str(out), "--overwrite"]) == 0
    assert out.stat().st_size > 0


def test_plot_band_must_be_the_band_a_one_band_light_curve_holds(one_band_lc, tmp_path, capsys):
    out = tmp_path / "f.png"
    for bad in ("99", "50-99keV", "1"):
        assert main(["plot", str(one_band_lc), "--band", bad, "--out", str(out)]) == 1, bad
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"--band {bad}" in err[0] and "one band: 0.5-2keV (index 0)" in err[0], err
    assert not out.exists()
    for good in ("0", "-1", "0.5-2keV"):
        assert main(["plot", str(one_band_lc), "--band", good, "--out", str(out), "--overwrite"]) == 0, good
    assert out.exists()


def test_plot_band_of_a_light_curve_without_a_recorded_band(make_event_file, tmp_path, capsys):
    lc = tmp_path / "all.lc"
    assert main(["lc", str(make_event_file(n=500)), "--time-bin", "500", "--out", str(lc)]) == 0
    capsys.readouterr()
    assert main(["plot", str(lc), "--band", "2-10keV", "--out", str(tmp_path / "f.png")]) == 1
    assert "one band" in capsys.readouterr().err
    assert main(["plot", str(lc), "--band", "0", "--out", str(tmp_path / "f.png")]) == 0


def test_spectrum_refuses_a_pi_range_outside_the_instruments(make_event_file, tmp_path, capsys):
    import xcube

    ev = make_event_file(n=500)  # MOS1: PI 0-15000
    out = tmp_path / "s.pha"
    for lo, hi in (("30000", "40000"), ("15001", "15100")):
        assert main(["spectrum", str(ev), "--pi-range", lo, hi, "--out", str(out)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"--pi-range {lo} {hi}" in err[0] and "PI range 0-15000" in err[0], err
    assert main(["spectrum", str(ev), "--pi-range", "500", "100", "--out", str(out)]) == 1
    assert "--pi-range 500 100" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(ValueError, match=r"pi_range=\(100000, 200000\).*XMM-Newton EMOS1 PI range 0-15000"):
        xcube.spectrum(xcube.open_events(ev), pi_range=(100000, 200000))
    # a range that overlaps the instrument's channel grid is cut to it (PI 0-11999, the RMF's), a single PI kept
    # (inclusive); one beyond the grid (PI 12000-15000 have no RMF channel) is refused (sweep p25)
    assert main(["spectrum", str(ev), "--pi-range", "14000", "20000", "--out", str(out)]) == 1
    assert "outside the XMM-Newton EMOS1 channel grid, PI 0-11999" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="cut to the XMM-Newton EMOS1 channel grid"):
        assert main(["spectrum", str(ev), "--pi-range", "11000", "20000", "--out", str(out)]) == 0
    assert main(["spectrum", str(ev), "--pi-range", "600", "600", "--out", str(out), "--overwrite"]) == 0


def test_catalogue_top_must_not_be_negative(tmp_path, capsys):
    for bad in ("-1", "-3"):
        err = _usage_error(capsys, ["catalogue", str(tmp_path / "out"), f"--top={bad}"])
        assert err == f"xcube catalogue: error: argument --top: '{bad}': must be a whole number >= 0", err


def test_tools_timeouts_must_be_positive(tmp_path, capsys):
    work = tmp_path / "w"
    for bad in ("0", "-1", "inf"):
        err = _usage_error(capsys, ["tools", "run", "sleep", "2", "--workdir", str(work), "--timeout", bad])
        assert err.startswith("xcube tools run: error: argument --timeout: "), err
        assert "must be a positive number" in err or "must be a finite number" in err, err
    assert not work.exists()
    err = _usage_error(capsys, ["tools", "sas", "process", str(tmp_path), "--out", str(tmp_path / "o"),
                                "--timeout", "0"])
    assert "argument --timeout: '0': must be a positive number" in err
    err = _usage_error(capsys, ["tools", "sas", "process", str(tmp_path), "--out", str(tmp_path / "o"),
                                "--workers", "0"])
    assert "argument --workers: " in err, err


def test_stitch_of_only_unreadable_event_files_names_them(make_event_file, tmp_path, capsys):
    ev = make_event_file(n=20000, duration=2000.0)
    trunc = tmp_path / "trunc.fits"
    data = ev.read_bytes()
    trunc.write_bytes(data[: len(data) // 2 // 2880 * 2880 + 1000])  # headers intact, the table cut
    out = tmp_path / "long.lc"
    assert main(["stitch", str(trunc), "--time-bin", "100", "--no-index", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "no light curves given" not in err[-1], err
    assert err[-1].startswith(f"xcube stitch: error: stitch: no input could be read, nothing to stitch: {trunc}: "), err
    assert "truncated" in err[-1], err
    empty = tmp_path / "empty.fits"  # with a file that is no FITS at all: both named, with their reasons
    empty.write_bytes(b"")
    assert main(["stitch", str(empty), str(trunc), "--time-bin", "100", "--no-index", "--out", str(out)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"nothing to stitch: {empty}: " in last and f"; {trunc}: " in last and "truncated" in last, last
    assert not out.exists()
