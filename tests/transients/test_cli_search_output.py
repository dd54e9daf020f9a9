"""The output directory of ``xcube search`` and ``xcube demo``: a directory of
camera files as input, an existing output refused before the search in
command-line words, ``--overwrite`` replacing the directory as a whole (and
only an earlier output of the same command), nothing left behind by a failed
command."""
from __future__ import annotations

import pytest

from xcube.cli import main


@pytest.fixture
def camera_dir(make_event_file, tmp_path):
    """A directory with the MOS1 and MOS2 files of one observation."""
    d = tmp_path / "obs"
    d.mkdir()
    make_event_file(n=3000, seed=1, name="obs/m1.fits")
    make_event_file(n=2500, seed=2, name="obs/m2.fits", header={"INSTRUME": "EMOS2"})
    return d


def test_search_of_a_directory_of_cameras(camera_dir, tmp_path, capsys):
    """``xcube search DIR`` (opened as a DataTree) searches its cameras together, as the files listed."""
    out = tmp_path / "dir"
    rc = main(["search", str(camera_dir), "--out", str(out), "-q", "--no-figures", "--time-bin", "1000"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "T0 = 100000000" in captured.out and "results written to" in captured.out
    files = sorted(str(p) for p in camera_dir.iterdir())
    assert main(["search", *files, "--out", str(tmp_path / "files"), "-q", "--no-figures", "--time-bin", "1000"]) == 0
    runs = sorted(p.name for p in out.iterdir())
    assert runs == sorted(p.name for p in (tmp_path / "files").iterdir()) and "detections.csv" in runs
    assert (out / "detections.csv").read_text() == (tmp_path / "files" / "detections.csv").read_text()


def test_existing_output_refused_before_the_search(make_event_file, tmp_path, capsys, monkeypatch):
    import xcube.transients.search as search

    ev = make_event_file(n=2000)
    out = tmp_path / "res"
    out.mkdir()
    (out / "earlier.txt").write_text("x")

    def never(*args, **kwargs):
        raise AssertionError("searched before checking --out")

    monkeypatch.setattr(search, "search_transients", never)
    assert main(["search", str(ev), "--out", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert f"xcube search: error: {out}: exists and is not empty; pass --overwrite to replace it" in err
    assert "overwrite=True" not in err
    (tmp_path / "afile").write_text("x")
    assert main(["search", str(ev), "--out", str(tmp_path / "afile"), "-q"]) == 1
    assert "afile: exists and is not a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--overwrite replace the output directory of an earlier xcube search as a whole" in text


def test_overwrite_replaces_the_search_directory(make_event_file, tmp_path, capsys):
    ev = make_event_file(n=3000)
    out = tmp_path / "res"
    assert main(["search", str(ev), "--out", str(out), "-q", "--no-figures", "--time-bin", "500"]) == 0
    assert main(["search", str(ev), "--out", str(out), "-q", "--no-figures", "--time-bin", "1000",
                 "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["0123456789_0_1000_0.2_12.0", "detections.csv",
                                                     "detections.ecsv", "detections.parquet"]
    # a directory holding other files (here: the input) is not replaced
    ev2 = make_event_file(n=3000, name="res/input.fits")
    capsys.readouterr()
    assert main(["search", str(ev2), "--out", str(out), "-q", "--no-figures", "--overwrite"]) == 1
    assert "holds input.fits, which xcube search does not write" in capsys.readouterr().err
    assert ev2.exists() and (out / "0123456789_0_1000_0.2_12.0").is_dir()


def test_failed_search_write_leaves_nothing(make_event_file, tmp_path, monkeypatch):
    """A search failing while it writes removes what it wrote and the
    directories it created; an earlier output stays as it was."""
    from xcube.transients.result import SearchResults

    ev = make_event_file(n=3000)

    def broken(self, directory, **kwargs):
        (directory / "partial").mkdir()
        raise OSError(28, "no space left on the device")

    monkeypatch.setattr(SearchResults, "write", broken)
    out = tmp_path / "a" / "b" / "res"
    assert main(["search", str(ev), "--out", str(out), "-q", "--no-figures"]) == 1
    assert not (tmp_path / "a").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["search", str(ev), "--out", str(empty), "-q", "--no-figures"]) == 1
    assert empty.is_dir() and not any(empty.iterdir())
    monkeypatch.undo()
    earlier = tmp_path / "earlier"
    assert main(["search", str(ev), "--out", str(earlier), "-q", "--no-figures", "--time-bin", "500"]) == 0
    before = sorted(p.name for p in earlier.rglob("*"))
    monkeypatch.setattr(SearchResults, "write", broken)
    assert main(["search", str(ev), "--out", str(earlier), "-q", "--no-figures", "--overwrite"]) == 1
    assert sorted(p.name for p in earlier.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_demo_overwrite_replaces_an_earlier_demo(tmp_path, capsys):
    from xcube.transients.cli import demo

    out = tmp_path / "demo"
    (out / "results" / "0999990101_0_999_0.2_12.0").mkdir(parents=True)  # an earlier demo's run
    (out / "events_pn.fits").write_text("earlier")
    (out / "truth.csv").write_text("earlier")
    (out / "junk.txt").write_text("not the demo's")
    with pytest.raises(FileExistsError, match="exists and is not empty; pass --overwrite"):
        demo(out, duration=4000.0)
    assert main(["demo", "--out", str(out), "--duration", "4000", "--overwrite"]) == 1
    assert "holds junk.txt, which xcube demo does not write" in capsys.readouterr().err
    (out / "junk.txt").unlink()
    with pytest.raises(ValueError):  # a failing demo leaves the earlier directory as it was
        demo(out, duration=4000.0, seed=-1, overwrite=True)
    assert (out / "events_pn.fits").read_text() == "earlier"
    res, truth = demo(out, duration=4000.0, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["events_pn.fits", "results", "truth.csv"]
    assert sorted(p.name for p in (out / "results").iterdir()) == sorted(
        ["detections.csv", "detections.ecsv", "detections.parquet", *(r.run_id for r in res)])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_failed_demo_leaves_no_directory(tmp_path, capsys, monkeypatch):
    import xcube.simulate as simulate

    def broken(*args, path=None, **kwargs):
        path.write_text("partial")
        raise ValueError("the simulation failed")

    monkeypatch.setattr(simulate, "event_list", broken)
    out = tmp_path / "d0" / "sub"
    assert main(["demo", "--out", str(out), "--duration", "5000"]) == 1
    assert "the simulation failed" in capsys.readouterr().err
    assert not (tmp_path / "d0").exists()


def test_t0_of_several_cameras_is_where_the_frames_start():
    """MOS1 and MOS2 start 0.2 s apart: T0 is the start of their common good time (the search's first frame),
    so that t_*-T0 are whole frames, not the earlier camera's start."""
    import numpy as np

    import xcube
    from xcube.transients.cli import observation_start

    m1, _ = xcube.simulate.event_list("xmm-mos1", duration=1000.0, seed=1)
    m2, _ = xcube.simulate.event_list("xmm-mos2", duration=1000.0, seed=2)
    m2 = m2.assign(gti_start=m2["gti_start"] - 0.2)  # MOS2 starts first
    t1 = float(m1["gti_start"].values[0])
    assert observation_start([m1, m2]) == t1 == observation_start([m2, m1])
    assert observation_start([m2]) == t1 - 0.2
    assert np.isfinite(observation_start([m1]))
