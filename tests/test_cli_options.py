"""Option values the command line refuses itself, naming the option:
``demo --duration`` too short for the demo's transients, ``demo --seed -1``,
and NaN for any number option (``stitch --mjdref nan``)."""
from __future__ import annotations

import pytest

from xcube.cli import build_parser, main


def _usage_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_demo_refuses_durations_too_short_for_its_transients(tmp_path, capsys):
    from xcube.transients.cli import DEMO_MIN_DURATION, demo

    assert DEMO_MIN_DURATION == 3700.0
    for bad in ("100", "3000", "0", "-1", "inf"):
        err = _usage_error(capsys, ["demo", "--out", str(tmp_path / "d"), "--duration", bad])
        assert err.startswith(f"xcube demo: error: argument --duration: '{bad}': the demo needs at least 3700 s"), err
    with pytest.raises(ValueError, match=r"duration=100: the demo needs at least 3700 s .* give 3700 s or more"):
        demo(tmp_path / "d", duration=100)
    assert not (tmp_path / "d").exists()


def test_demo_at_its_shortest_duration_holds_every_transient(tmp_path):
    import xcube
    from xcube.transients.cli import DEMO_MIN_DURATION, demo

    res, truth = demo(tmp_path / "d", duration=DEMO_MIN_DURATION)
    ev = xcube.open_events(tmp_path / "d" / "events_pn.fits")
    t0, t1 = float(ev.attrs["tstart"]), float(ev.attrs["tstop"])
    inj = truth[truth["transient"]]
    assert len(inj) == 3
    assert (inj["t_start"] >= t0).all() and (inj["t_stop"] <= t1).all(), inj[["kind", "t_start", "t_stop"]]


def test_demo_seed_must_be_a_whole_number_from_zero(tmp_path, capsys):
    from xcube.transients.cli import demo

    err = _usage_error(capsys, ["demo", "--out", str(tmp_path / "d"), "--seed", "-1"])
    assert err == "xcube demo: error: argument --seed: '-1': must be a whole number >= 0"
    err = _usage_error(capsys, ["demo", "--out", str(tmp_path / "d"), "--seed", "1.5"])
    assert err == "xcube demo: error: argument --seed: '1.5' is not a whole number"
    with pytest.raises(ValueError, match=r"seed=-1: must be a whole number >= 0"):
        demo(tmp_path / "d", seed=-1)
    assert not (tmp_path / "d").exists()


def test_demo_refuses_nan_as_every_number_option_does(tmp_path, capsys):
    """demo --duration nan / --seed nan were usage errors (status 2) not saying NaN."""
    for opt in ("--duration", "--seed"):
        for text in ("nan", "NaN"):
            assert main(["demo", "--out", str(tmp_path / "d"), opt, text]) == 1
            assert capsys.readouterr().err.strip() == f"xcube demo: error: {opt} {text}: must be a number, not NaN"
    assert not (tmp_path / "d").exists()


def test_nan_is_refused_by_every_number_option_naming_it(tmp_path, capsys):
    from xcube.cli import _subparsers

    lc = tmp_path / "in.lc"
    lc.write_text("not read: the option is refused first")
    for argv, err in [
        (["stitch", str(lc), "--mjdref", "nan", "--out", str(tmp_path / "s.lc")],
         "xcube stitch: error: --mjdref nan: must be a number, not NaN"),
        (["lc", str(lc), "--time-bin", "NaN", "--out", str(tmp_path / "a.lc")],
         "xcube lc: error: --time-bin NaN: must be a number, not NaN"),
        (["search", str(lc), "--energy", "0.2", "nan", "--out", str(tmp_path / "s")],
         "xcube search: error: --energy nan: must be a number, not NaN"),
    ]:
        assert main(argv) == 1
        assert capsys.readouterr().err.strip() == err
    assert not (tmp_path / "s").exists() and not (tmp_path / "s.lc").exists()
    err = _usage_error(capsys, ["lc", str(lc), "--time-bin", "ten", "--out", str(tmp_path / "a.lc")])
    assert err == "xcube lc: error: argument --time-bin: invalid float value: 'ten'"
    for p in _subparsers(build_parser()):  # no number option is left that takes NaN
        for action in p._actions:
            assert action.type is not float, (p.prog, action.option_strings)


def test_stitch_refuses_an_infinite_mjdref(tmp_path, capsys):
    """--mjdref inf reached the library (NaN was already refused)."""
    assert main(["stitch", str(tmp_path / "none.lc"), "--mjdref", "inf", "--out", str(tmp_path / "s.lc")]) == 1
    assert "--mjdref inf: must be a finite number" in capsys.readouterr().err


def test_odd_energy_values_and_non_positive_sizes_are_usage_errors(make_event_file, tmp_path, capsys):
    from xcube.cli import main

    path = str(make_event_file(n=100))
    for argv in (["search", path, "--energy", "0.2", "--out", str(tmp_path / "s")],
                 ["survey", path, "--energy", "0.2", "2", "2", "--out", str(tmp_path / "v")],
                 ["image", path, "--size-arcsec", "0", "--out", str(tmp_path / "i.fits")],
                 ["search", path, "--size-arcsec", "-20", "--out", str(tmp_path / "s")]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2, argv
        err = capsys.readouterr().err
        assert ("--energy takes pairs" in err) or ("argument --size-arcsec" in err and "positive" in err), err


def test_a_warning_prints_as_one_line_naming_the_command(make_event_file, tmp_path):
    """Sweep p28: a warning raised inside a Dask task printed dask's file:line and source line. While a
    command runs, a warning is one line: ``xcube COMMAND: warning: <message>``."""
    import subprocess
    import sys

    path = make_event_file(n=2000, duration=3000.0, gti=([1.0e8, 1.0e8 + 1000.0], [1.0e8 + 2000.0, 1.0e8 + 1500.0]))
    out = subprocess.run([sys.executable, "-W", "always", "-m", "xcube", "lc", str(path), "--time-bin", "100",
                          "--out", str(tmp_path / "x.lc")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("xcube lc: warning") for ln in lines), out.stderr
    assert any("GTI" in ln for ln in lines) and not any(".py:" in ln for ln in lines)
