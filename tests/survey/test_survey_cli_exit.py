"""Exit status of ``xcube survey`` and ``xcube catalogue``: 1 (with the
failures on stderr) when runs failed, 1 for a directory without finished runs;
no empty output directory left by a survey that never ran."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from xcube.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore:.*leaked semaphore.*")


@pytest.fixture(scope="module")
def scheduler():
    """An in-process cluster (threads): quick to start, enough for runs that fail."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
    client = Client(cluster)
    yield cluster.scheduler_address
    client.close()
    cluster.close()


def test_survey_with_failed_runs_exits_1_listing_them_on_stderr(scheduler, tmp_path, capsys):
    archive = tmp_path / "archive"
    archive.mkdir()
    obs = tmp_path / "obs.txt"
    obs.write_text("9999999999\n")  # not in the archive: its run fails
    out = tmp_path / "out"
    rc = main(["survey", str(obs), "--archive", str(archive), "--out", str(out), "--scheduler", scheduler, "-q",
               "--time-bin", "200", "--energy", "0.2", "12", "--no-catalogue"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "xcube survey: 1 runs failed or timed out" in captured.err
    assert "9999999999: failed: FileNotFoundError" in captured.err
    assert "failed" not in captured.out
    # no finished run: the catalogue command says so, exits 1 and writes nothing
    assert main(["catalogue", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"xcube catalogue: error: {out}: no finished runs were found: 1 run(s) recorded, none done (failed 1)" in err
    assert not (out / "catalogue").exists()


def test_catalogue_of_a_directory_without_runs(tmp_path, capsys):
    empty = tmp_path / "emptyd"
    empty.mkdir()
    assert main(["catalogue", str(empty)]) == 1
    assert "emptyd: no finished runs were found: it holds no survey run" in capsys.readouterr().err
    assert not any(empty.iterdir())


def test_survey_with_invalid_inputs_creates_no_directory(tmp_path, capsys):
    obs = tmp_path / "obs.txt"
    obs.write_text("0123456789\n")
    cases = {"x1": ["survey", str(tmp_path / "nonexist.txt")],  # no such list
             "x2": ["survey", str(obs)],  # obsids without --archive
             "x3": ["survey", str(obs), "--archive", str(tmp_path / "noarch")]}  # no such archive root
    for name, argv in cases.items():
        assert main([*argv, "--out", str(tmp_path / name / "out"), "-q"]) == 1, name
        assert "xcube survey: error:" in capsys.readouterr().err
        assert not (tmp_path / name).exists(), name


def test_survey_stopped_before_any_run_removes_the_directory_it_created(make_event_file, tmp_path, monkeypatch):
    from xcube.survey import Compute, parameter_grid, run, runner

    def failing(*args, **kwargs):
        raise OSError("the cluster went away")

    class Engine(Compute):
        def start(self):
            return SimpleNamespace(dashboard_link=None), lambda: None

    monkeypatch.setattr(runner, "_execute", failing)
    ev = make_event_file(n=500)
    params = parameter_grid([1000.0], [(0.2, 12.0)])
    out = tmp_path / "new" / "out"
    with pytest.raises(OSError, match="went away"):
        run([ev], out, params, compute=Engine(), progress=False, catalogue=False)
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"  # a directory that was there before is kept
    kept.mkdir()
    with pytest.raises(OSError, match="went away"):
        run([ev], kept, params, compute=Engine(), progress=False, catalogue=False)
    assert kept.is_dir() and not (kept / ".survey.lock").exists()
