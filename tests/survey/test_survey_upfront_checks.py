"""Every option of a survey is checked before any observation is processed:
``--radius 0`` (and the other catalogue options the catalogue step checks at
the end, the search grid, ``--timeout``) stopped a survey only after all
its runs, in the catalogue step. The command line reports a usage error
(status 2) naming the option and the value; ``xcube.survey.run`` raises
``ValueError`` (``TypeError`` for an unknown catalogue keyword) naming it."""
from __future__ import annotations

import math

import pytest

from xcube.cli import main
from xcube.survey import Compute, parameter_grid, run
from xcube.survey.catalogue import build_catalogue

PARAMS = parameter_grid([1000.0], [(0.2, 12.0)])


class NeverStarted(Compute):
    """An engine that fails the test when the survey gets as far as starting it."""

    def start(self):
        raise AssertionError("the survey started its engine: the option was not checked up front")


@pytest.fixture
def never_started(monkeypatch):
    """The command line's engine, failing the test when started (no cluster is ever made)."""
    monkeypatch.setattr(Compute, "start", NeverStarted.start)


@pytest.mark.parametrize("options, match", [
    ({"radius_arcsec": 0.0}, r"radius_arcsec=0\.0: must be a finite number > 0 arcsec \(command line --radius\)"),
    ({"radius_arcsec": -5.0}, r"radius_arcsec=-5\.0"),
    ({"radius_arcsec": math.nan}, r"radius_arcsec=nan"),
    ({"match_radius_arcsec": 0}, r"match_radius_arcsec=0: .*--match-radius"),
    ({"hot_radius_arcsec": -1.0}, r"hot_radius_arcsec=-1\.0"),
    ({"hot_min_obs": 0}, r"hot_min_obs=0: must be a whole number >= 1"),
    ({"hot_min_sources": 1.5}, r"hot_min_sources=1\.5"),
])
def test_run_refuses_catalogue_options_out_of_range_before_any_run(make_event_file, tmp_path, options, match):
    out = tmp_path / "new" / "out"
    with pytest.raises(ValueError, match=match):
        run([make_event_file(n=100)], out, PARAMS, compute=NeverStarted(), progress=False,
            catalogue_options=options)
    assert not (tmp_path / "new").exists()


def test_the_catalogue_step_applies_the_same_rules(tmp_path):
    """The up-front check and build_catalogue refuse the same values with the same message."""
    (tmp_path / "out").mkdir()
    for options in ({"radius_arcsec": 0.0}, {"hot_min_sources": 0}, {"match_radius_arcsec": math.inf}):
        with pytest.raises(ValueError) as late:
            build_catalogue(tmp_path / "out", write=False, report=False, **options)
        with pytest.raises(ValueError) as early:
            run([tmp_path / "unused.fits"], tmp_path / "new", PARAMS, compute=NeverStarted(), progress=False,
                catalogue_options=options)
        assert str(early.value) == str(late.value)


def test_build_catalogue_checks_its_ranged_options_directly(tmp_path, monkeypatch):
    """build_catalogue applies the range rule itself; the up-front check of a survey's keywords
    (check_catalogue_values) is not run again at its end."""
    import xcube.survey.catalogue as catalogue

    calls = []
    monkeypatch.setattr(catalogue, "check_catalogue_values", lambda options: calls.append(options))
    (tmp_path / "out").mkdir()
    with pytest.raises(ValueError, match=r"radius_arcsec=0\.0"):
        build_catalogue(tmp_path / "out", write=False, report=False, radius_arcsec=0.0)
    assert len(build_catalogue(tmp_path / "out", write=False, report=False).sources) == 0
    assert calls == []


def test_run_refuses_an_unknown_catalogue_keyword_before_any_run(make_event_file, tmp_path):
    with pytest.raises(TypeError, match=r"catalogue_options: .*'radius'"):
        run([make_event_file(n=100)], tmp_path / "out", PARAMS, compute=NeverStarted(), progress=False,
            catalogue_options={"radius": 10.0})
    with pytest.raises(TypeError, match=r"catalogue_options: .*'colour'"):
        run([make_event_file(n=100)], tmp_path / "out", PARAMS, compute=NeverStarted(), progress=False,
            catalogue_options={"crossmatch": [{"path": "cat.csv", "colour": "red"}]})
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kw, match", [
    (dict(timeout=0), r"timeout \[s\] \(command line --timeout\) must be positive and finite, got 0"),
    (dict(timeout=-10.0), r"timeout .* got -10\.0"),
    (dict(timeout=math.inf), r"timeout .* got inf"),
    (dict(timeout="ten"), r"timeout .* must be a number, got 'ten'"),
    (dict(params={"time_bin": 0.0}), r"time_bin=0\.0"),
])
def test_run_refuses_survey_options_out_of_range_before_any_run(make_event_file, tmp_path, kw, match):
    kw = {"params": PARAMS, **kw}
    with pytest.raises(ValueError, match=match):
        run([make_event_file(n=100)], tmp_path / "out", compute=NeverStarted(), progress=False, **kw)
    assert not (tmp_path / "out").exists()


def test_catalogue_options_are_not_checked_without_a_catalogue(make_event_file, tmp_path):
    """catalogue=False: the catalogue options are not used, so not refused (the engine is reached)."""
    with pytest.raises(AssertionError, match="started its engine"):
        run([make_event_file(n=100)], tmp_path / "out", PARAMS, compute=NeverStarted(), progress=False,
            catalogue=False, catalogue_options={"radius_arcsec": 0.0})


@pytest.mark.parametrize("argv, option, value", [
    (["--radius", "0"], "--radius", "'0'"),
    (["--radius", "-5"], "--radius", "'-5'"),
    (["--radius", "nan"], "--radius", "'nan'"),
    (["--match-radius", "0"], "--match-radius", "'0'"),
    (["--hot-min-obs", "0"], "--hot-min-obs", "0"),
    (["--time-bin", "50", "0"], "--time-bin", "0"),
    (["--time-bin", "-5"], "--time-bin", "-5"),
    (["--energy", "0.2", "2", "2", "2"], "--energy", "2 2"),
    (["--energy", "5", "1"], "--energy", "5 1"),
    (["--sigma", "0"], "--sigma", "0"),
    (["--timeout", "0"], "--timeout", "0"),
    (["--timeout", "-60"], "--timeout", "-60"),
])
def test_cli_usage_error_names_the_option_and_the_value(make_event_file, tmp_path, capsys, never_started,
                                                        argv, option, value):
    out = tmp_path / "new" / "out"
    with pytest.raises(SystemExit) as exc:
        main(["survey", str(make_event_file(n=100)), "--out", str(out), "-q", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "xcube survey: error:" in err and option in err and value in err, err
    assert not (tmp_path / "new").exists()


def test_catalogue_options_are_checked_once_per_survey(make_event_file, tmp_path, monkeypatch, never_started):
    """xcube survey checked the catalogue values three times (the command line, run's up-front check,
    and again with the reading of the match catalogues); run checks them once."""
    import xcube.survey.catalogue as catalogue

    calls = []
    check = catalogue.check_catalogue_values
    monkeypatch.setattr(catalogue, "check_catalogue_values", lambda options: calls.append(options) or check(options))
    with pytest.raises(AssertionError, match="started its engine"):
        main(["survey", str(make_event_file(n=100)), "--out", str(tmp_path / "out"), "-q", "--radius", "15"])
    assert len(calls) == 1 and calls[0]["radius_arcsec"] == 15.0


def test_a_timeout_given_as_text_reaches_the_tasks_as_seconds(make_event_file, tmp_path, monkeypatch):
    """run(timeout="60") passes the check (a number as text); the tasks then got the text, not 60.0 s."""
    from xcube.survey import runner

    class Started(Compute):
        def start(self):
            return object(), lambda: None

    seen = {}

    def execute(*args, timeout, **kwargs):
        seen["timeout"] = timeout
        raise KeyboardInterrupt  # (stop here: nothing is searched)

    monkeypatch.setattr(runner, "_execute", execute)
    with pytest.raises(KeyboardInterrupt):
        run([make_event_file(n=100)], tmp_path / "out", PARAMS, compute=Started(), progress=False, timeout="60")
    assert seen["timeout"] == 60.0 and isinstance(seen["timeout"], float)
