"""Commands given a directory of camera files: info and convert take its event
files; image, spectrum and pds (one camera's products) refuse it naming the
files. They crashed with tracebacks (convert, image, spectrum, pds) or said
only "error: 'event'" (info)."""
from __future__ import annotations

from xcube.cli import main


def _two_cameras(make_event_file, tmp_path):
    make_event_file(n=300, seed=1, name="obs/m1.fits")
    make_event_file(n=400, seed=2, name="obs/m2.fits", header={"INSTRUME": "EMOS2"})
    return tmp_path / "obs"


def test_info_and_convert_take_the_event_files_of_a_directory(make_event_file, tmp_path, capsys):
    d = _two_cameras(make_event_file, tmp_path)
    assert main(["info", str(d)]) == 0
    out = capsys.readouterr().out
    assert "m1.fits" in out and "m2.fits" in out and "events      : 300" in out and "events      : 400" in out
    assert main(["convert", str(d), "--out", str(tmp_path / "z")]) == 0
    assert sorted(p.name for p in (tmp_path / "z").iterdir()) == ["m1.zarr", "m2.zarr"]
    (tmp_path / "empty").mkdir()
    assert main(["info", str(tmp_path / "empty")]) == 1
    assert "directory holds no event files" in capsys.readouterr().err


def test_one_camera_products_refuse_a_directory(make_event_file, tmp_path, capsys):
    d = _two_cameras(make_event_file, tmp_path)
    for cmd in (["image", str(d)], ["spectrum", str(d)]):
        assert main(cmd + ["--out", str(tmp_path / "x.fits")]) == 1
        err = capsys.readouterr().err
        assert "holds 2 cameras' event files" in err and "m1.fits" in err and "Traceback" not in err
    assert main(["pds", str(d), "--dt", "1", "--out", str(tmp_path / "p.fits")]) == 1
    assert "a directory; xcube pds takes event or light-curve files" in capsys.readouterr().err
    assert not (tmp_path / "x.fits").exists()


def test_paths_of_the_wrong_kind_are_named(make_event_file, tmp_path, capsys):
    """convert --out <file> said "[Errno 17] File exists"; --region <directory> "region file not found";
    tools provenance <missing> "no xcube tool records found"."""
    ev = make_event_file(n=300)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    assert main(["convert", str(ev), "--out", str(tmp_path / "afile")]) == 1
    assert "afile: a file, not a directory" in capsys.readouterr().err
    assert main(["lc", str(ev), "--time-bin", "100", "--region", str(tmp_path / "adir"),
                 "--out", str(tmp_path / "x.lc")]) == 1
    assert "adir is a directory" in capsys.readouterr().err
    assert main(["tools", "provenance", str(tmp_path / "nothing")]) == 1
    assert "nothing: no such directory" in capsys.readouterr().err


def test_pds_of_one_file_twice_is_refused_before_writing(make_event_file, tmp_path, capsys):
    """xcube pds F F --out-dir d wrote the first spectrum, then stopped on its own file ("exists")."""
    ev = make_event_file(n=3000)
    out = tmp_path / "d"
    assert main(["pds", str(ev), str(ev), "--dt", "2", "--segment", "512", "--out-dir", str(out)]) == 1
    assert "2 inputs give the power spectrum" in capsys.readouterr().err
    assert not out.exists() or not any(out.glob("*.fits"))
