"""Progress for long work: the search's bar, a notebook-aware survey bar, and
dask.distributed's INFO lines kept out of the way unless asked for."""
from __future__ import annotations

import logging

import xcube
from xcube import simulate
from xcube.cli import main
from xcube.progress import in_notebook, progress_bar


def test_search_shows_progress_over_files_the_events_pass_and_runs(tmp_path, capsys):
    ev, _ = simulate.event_list("xmm-pn", duration=3000.0, sources=2, seed=4, path=tmp_path / "pn.fits")
    xcube.search_transients(ev, time_bin=[100.0, 300.0], progress=True)
    err = capsys.readouterr().err
    assert "events pass (1 camera(s))" in err and "0999990101_0_300_0.2_12.0" in err and "3/3" in err
    xcube.search_transients(ev, time_bin=100.0)  # off by default
    assert capsys.readouterr().err == ""
    simulate.event_list("xmm-mos1", duration=3000.0, sources=2, seed=5, path=tmp_path / "m1.fits")
    assert main(["search", str(tmp_path / "pn.fits"), str(tmp_path / "m1.fits"), "--time-bin", "300",
                 "--out", str(tmp_path / "out"), "--no-figures"]) == 0
    err = capsys.readouterr().err
    assert "open: 100%" in err and "2/2" in err and "events pass (2 camera(s))" in err


def test_survey_progress_is_a_widget_in_jupyter(monkeypatch, capsys):
    from xcube.survey import progress as mod

    assert not in_notebook()
    monkeypatch.setattr(mod, "in_notebook", lambda: True)
    bar = mod.SurveyProgress(3)
    assert bar.bar is not None  # tqdm.auto: an ipywidgets bar in a notebook (text here)
    bar.update([{"state": "done"}])
    bar.update([{"state": "failed"}])
    bar.update([{"state": "done"}, {"state": "skipped"}])
    bar.draw(final=True)
    assert bar.bar.n == 3
    err = capsys.readouterr().err
    assert "done 2, failed 1" in err and err.count("observations:") == 0  # no fixed text lines
    quiet = mod.SurveyProgress(3, enabled=False)
    assert quiet.bar is None
    assert progress_bar(5, enabled=False).update(2) is None


def test_distributed_info_lines_are_quiet_unless_verbose():
    from xcube.survey.engine import quiet_distributed

    dist = logging.getLogger("distributed")
    restore = quiet_distributed()
    assert dist.getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("distributed.scheduler").getEffectiveLevel() >= logging.WARNING
    restore()
    xlog = logging.getLogger("xcube")
    old = xlog.level
    xlog.setLevel(logging.INFO)  # what `xcube -v` does through the root logger
    try:
        before = dist.level
        quiet_distributed()()
        assert dist.level == before
        assert quiet_distributed.__doc__ and "xcube -v" in quiet_distributed.__doc__
    finally:
        xlog.setLevel(old)
