"""``xcube convert`` that writes no store leaves no ``--out`` directory
behind (nor the parents it made); one that was there before stays, and a
run that converted some files keeps them."""
from __future__ import annotations

import pytest

from xcube.cli import main


@pytest.fixture
def not_fits(tmp_path):
    bad = tmp_path / "in" / "bad.fits"
    bad.parent.mkdir()
    bad.write_text("not a FITS file\n")
    return bad


def test_failed_only_file_leaves_no_out_directory(not_fits, tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "out"
    assert main(["convert", str(not_fits), "--out", str(out)]) == 1
    assert "bad.fits" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_an_out_directory_that_existed_stays(not_fits, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert main(["convert", str(not_fits), "--out", str(out / "sub")]) == 1
    assert out.is_dir() and not any(out.iterdir())


def test_stores_of_the_files_that_converted_are_kept(not_fits, make_event_file, tmp_path):
    good = make_event_file(n=200, name="good.fits")
    out = tmp_path / "new" / "out"
    assert main(["convert", str(not_fits), str(good), "--out", str(out)]) == 1
    assert [p.name for p in out.iterdir()] == ["good.zarr"]


def test_an_unexpected_error_leaves_no_out_directory(make_event_file, tmp_path, monkeypatch):
    import xcube.io.cache

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(xcube.io.cache, "to_zarr", broken)
    good = make_event_file(n=200, name="good.fits")
    with pytest.raises(RuntimeError, match="disk on fire"):
        main(["convert", str(good), "--out", str(tmp_path / "new" / "out")])
    assert not (tmp_path / "new").exists()
