"""Writers against hostile output paths: the input itself, a background
spectrum on the source's path, two inputs of one name, a parent that is a
file, a name near the length limit, a replace that fails, and an archive
without a readable file."""
from __future__ import annotations

import hashlib
import os

import pytest

import xcube
from xcube.cli import main
from xcube.io import atomic
from xcube.io.ogip import write_lightcurve, write_spectrum
from xcube.io.write_events import write_events


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_the_input_is_never_overwritten(make_event_file, tmp_path, capsys):
    """xcube lc in.fits --out in.fits --overwrite replaced the event file by its light curve (and image lost both)."""
    path = make_event_file(n=2000, name="in.fits")
    before = _digest(path)
    for cmd in (["lc", str(path), "--time-bin", "100"], ["image", str(path)], ["spectrum", str(path)],
                ["pds", str(path), "--segment", "512", "--dt", "2"], ["stitch", str(path), "--time-bin", "100"]):
        assert main(cmd + ["--out", str(path), "--overwrite"]) == 1
        assert "this is the input it was made from" in capsys.readouterr().err
        assert _digest(path) == before
    ev = xcube.open_events(path)
    with pytest.raises(ValueError, match="this is the input it was made from"):
        write_lightcurve(path, xcube.lightcurve(ev, 100.0), overwrite=True)
    with pytest.raises(ValueError, match="this is the input it was made from"):
        xcube.to_zarr(ev, path, overwrite=True)
    with pytest.raises(ValueError, match="this is the input it was made from"):
        write_events(path, ev, overwrite=True)
    assert _digest(path) == before and not [p for p in os.listdir(tmp_path) if p.startswith(".in.fits")]
    other = tmp_path / "lc.fits"  # any other path is written as before
    assert write_lightcurve(other, xcube.lightcurve(ev, 100.0)).exists()


def test_background_spectrum_on_the_source_path_is_refused(make_event_file, tmp_path):
    ev = xcube.open_events(make_event_file(n=2000))
    spec = xcube.spectrum(ev, region="physical;circle(26000,26000,3000)",
                          background="physical;annulus(26000,26000,4000,8000)").compute()
    out = tmp_path / "src.pha"
    with pytest.raises(ValueError, match="the background spectrum would go to the same file as the source"):
        write_spectrum(out, spec, background_path=out)
    assert not out.exists()


def test_convert_refuses_two_inputs_of_one_name(make_event_file, tmp_path, capsys):
    a = make_event_file(n=500, name="ev.fits")
    (tmp_path / "b").mkdir()
    b = tmp_path / "b" / "ev.fits"
    b.write_bytes(a.read_bytes())
    assert main(["convert", str(a), str(b), "--out", str(tmp_path / "out"), "--overwrite"]) == 1
    assert "would all be converted to" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_parent_that_is_a_file_and_long_names(make_event_file, tmp_path):
    ev = xcube.open_events(make_event_file(n=500))
    lc = xcube.lightcurve(ev, 100.0)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OSError, match=r"cannot create its directory .*afile is a file, not a directory"):
        write_lightcurve(tmp_path / "afile" / "lc.fits", lc)
    long = tmp_path / ("L" * 245 + ".fits")  # 250 bytes: legal; the temporary name must stay legal too
    assert write_lightcurve(long, lc).exists()


def test_a_failed_directory_replace_leaves_the_old_target_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "res"
    target.mkdir()
    (target / "old.txt").write_text("old")
    real = os.rename
    calls = []

    def rename(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # moving the new directory into place fails
            raise PermissionError(1, "Operation not permitted", str(dst))
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "rename", rename)
    with pytest.raises(OSError, match=r"Operation not permitted.*res"):
        with atomic.atomic_dir(target, overwrite=True) as tmp:
            (tmp / "new.txt").write_text("new")
    monkeypatch.setattr(atomic.os, "rename", real)
    assert (target / "old.txt").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["res"]


def test_an_archive_without_a_readable_file_names_them(tmp_path):
    bad = tmp_path / "P0300000095PNS001FBKTSR0000.FTZ"
    bad.write_bytes(b"not a fits file")
    with pytest.warns(UserWarning, match="skipping"):
        with pytest.raises(FileNotFoundError, match=r"no readable event files among 1 path\(s\): .*FBKTSR0000\.FTZ"):
            xcube.open_archive([bad])
    d = tmp_path / "d"
    d.mkdir()
    (d / "P0300000091M1S001MIEVLI0000.FIT").symlink_to(tmp_path / "gone.FIT")
    with pytest.raises(FileNotFoundError, match=r"holds no event files .*broken links: P0300000091M1S001MIEVLI"):
        xcube.open_archive(d)


def test_an_output_directory_gets_the_scheme_name(make_event_file, tmp_path, capsys):
    """--out newdir/ wrote a file called newdir; an existing directory got 'exists; pass --overwrite'."""
    path = make_event_file(n=2000, name="in.fits")
    new, old = tmp_path / "new", tmp_path / "old"
    old.mkdir()
    for out in (str(new) + "/", str(old)):
        for cmd in (["lc", str(path), "--time-bin", "100"], ["image", str(path)], ["spectrum", str(path)],
                    ["pds", str(path), "--segment", "512", "--dt", "2"]):
            assert main(cmd + ["--out", out]) == 0, capsys.readouterr().err
    assert new.is_dir()
    for d in (new, old):
        names = sorted(p.name for p in d.iterdir() if p.suffix != ".parquet" and not p.name.startswith("."))
        assert len(names) == 4 and any(n.endswith("_lc_100s.lc") for n in names), names
        assert any(n.endswith("_spectrum.pha") for n in names) and any(n.endswith("_image.fits") for n in names)
    lc = next(new.glob("*_lc_100s.lc"))
    assert main(["plot", str(lc), "--out", str(old)]) == 0
    assert (old / lc.with_suffix(".png").name).exists()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        write_lightcurve(old, xcube.lightcurve(xcube.open_events(path), 100.0), overwrite=True)


def test_leftovers_of_long_and_odd_names_are_found(tmp_path):
    """remove_stale missed the temporaries of names near 255 bytes (their names did not carry the target's)."""
    for name in ("L" * 245 + ".fits", "odd[1].fits"):
        target = tmp_path / name
        tmps = [atomic.temporary_name(target, suffix=".fits"), atomic.temporary_name(target, "old")]
        for t in tmps:
            assert len(t.name.encode()) <= 255 and t.name.startswith(".")
            t.write_text("partial")
            os.utime(t, (1, 1))  # killed long ago
        other = atomic.temporary_name(tmp_path / ("M" * 245 + ".fits"))
        other.write_text("another target's")
        os.utime(other, (1, 1))
        assert atomic.remove_stale(target) == 2
        assert not any(t.exists() for t in tmps) and other.exists()
        other.unlink()


def test_background_spectrum_on_the_event_file_is_refused(make_event_file, tmp_path, capsys):
    """xcube spectrum ... --background-out in.fits --overwrite replaced the event file by the background spectrum."""
    path = make_event_file(n=2000, name="in.fits")
    before = _digest(path)
    assert main(["spectrum", str(path), "--region", "physical;circle(26000,26000,3000)", "--background",
                 "physical;annulus(26000,26000,4000,8000)", "--out", str(tmp_path / "src.pha"),
                 "--background-out", str(path), "--overwrite"]) == 1
    assert "this is the input it was made from" in capsys.readouterr().err
    assert _digest(path) == before and not (tmp_path / "src.pha").exists()


def test_atomic_writes_remove_the_stale_temporaries_of_their_directory(tmp_path):
    """Sweep p26: a killed `xcube lc` left a hidden 690 MB temporary, and a
    killed `xcube search` its run directory's, for good: only some writers
    removed the leftovers of killed writes. Now every atomic write of a file
    or directory removes the temporaries older than an hour in its directory
    (the first write there of the process)."""
    import time

    old = time.time() - 2 * atomic.STALE_SECONDS
    f = tmp_path / "x.lc"
    leftover = atomic.temporary_name(f, suffix=".lc")
    leftover.write_bytes(b"half")
    young = atomic.temporary_name(f, suffix=".lc")  # (a writer still running)
    young.write_bytes(b"being written")
    os.utime(leftover, (old, old))
    with atomic.atomic_file(f) as tmp:
        tmp.write_text("whole")
    assert f.read_text() == "whole" and not leftover.exists() and young.exists()
    d = tmp_path / "runs" / "run"
    d.parent.mkdir()
    gone = atomic.temporary_name(d)
    (gone / "sub").mkdir(parents=True)
    (gone / "sub" / "part").write_bytes(b"x")
    for p in (gone / "sub" / "part", gone / "sub", gone):
        os.utime(p, (old, old))
    users = [d.parent / ".bashrc.old-ubuntu", d.parent / ".notes.tmp-draft", d.parent / ".thesis.old-draft"]
    for u in users:  # (a user's hidden files: not xcube's temporaries, never swept)
        u.mkdir() if u.name.startswith(".thesis") else u.write_text("mine")
        os.utime(u, (old, old))
    with atomic.atomic_dir(d) as tmp:
        (tmp / "a").write_text("a")
    assert (d / "a").exists() and not gone.exists() and all(u.exists() for u in users)


def test_a_stop_request_keeps_the_output_out_of_place(tmp_path):
    """A SIGTERM lost in a finaliser (atomic.STOP): the next write is not
    committed (no file, no temporary) and raises Stopped, once: the
    clean-up's own writes after it go on."""
    try:
        atomic.STOP.set()
        with pytest.raises(atomic.Stopped, match="not written"):
            with atomic.atomic_file(tmp_path / "f.txt") as tmp:
                tmp.write_text("x")
        assert not atomic.STOP.is_set()
        atomic.STOP.set()
        with pytest.raises(atomic.Stopped, match="not written"):
            with atomic.atomic_dir(tmp_path / "d") as tmp:
                (tmp / "a").write_text("a")
        assert list(tmp_path.iterdir()) == []
        atomic.write_text(tmp_path / "status.txt", "clean-up")  # (STOP delivered once)
    finally:
        atomic.STOP.clear()
    assert [p.name for p in tmp_path.iterdir()] == ["status.txt"]
