"""``xcube info`` and ``xcube convert`` on damaged or unusual inputs: errors
that name the file and the problem, never a traceback or raw library text."""
from __future__ import annotations

import gzip

import pytest

from xcube.cli import main


@pytest.mark.parametrize("where", [4, 2])  # a broken deflate stream (zlib.error); a header that loses its END
def test_corrupt_gzip_event_file_is_named(make_event_file, tmp_path, capsys, where):
    z = bytearray(gzip.compress(make_event_file().read_bytes(), mtime=0))
    off = len(z) // where
    z[off:off + 64] = bytes(b ^ 0x5A for b in z[off:off + 64])
    bad = tmp_path / "corrupt.FTZ"
    bad.write_bytes(bytes(z))
    for cmd in (["info", str(bad)], ["lc", str(bad), "--time-bin", "100", "--out", str(tmp_path / "x.lc")],
                ["convert", str(bad), "--out", str(tmp_path / "zarr")],
                ["pds", str(bad), "--dt", "1", "--out", str(tmp_path / "p.fits")]):
        assert main(cmd) == 1
        err = capsys.readouterr().err
        assert f"{bad}: truncated or corrupt gzip file" in err and "download or copy it again" in err, (cmd, err)


def test_broken_deflate_stream_is_named(make_event_file, tmp_path, capsys):
    import zlib

    z = gzip.compress(make_event_file().read_bytes(), mtime=0)
    for off in range(20, len(z) // 2, 97):  # the first damage that breaks the deflate stream itself
        bad_bytes = z[:off] + bytes(b ^ 0x5A for b in z[off:off + 64]) + z[off + 64:]
        try:
            gzip.decompress(bad_bytes)
        except zlib.error:
            break
        except (OSError, EOFError):
            continue
    else:
        pytest.skip("no damage found that makes zlib fail")
    bad = tmp_path / "broken.fits.gz"
    bad.write_bytes(bad_bytes)
    for cmd in (["info", str(bad)], ["search", str(bad), "--out", str(tmp_path / "s"), "--quiet"]):
        assert main(cmd) == 1
        err = capsys.readouterr().err
        assert f"{bad}: truncated or corrupt gzip file (Error -3" in err, (cmd, err)


def test_info_summarises_a_search_result_store(make_event_file, tmp_path, capsys):
    import xcube

    res = xcube.search_transients(xcube.open_events(make_event_file(n=5000)), time_bin=1000.0)
    res = res[0] if isinstance(res, list) else res
    store = res.to_zarr(tmp_path / "out.zarr")
    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    for text in (f"{store}: transient-search result (run {res.run_id})", "frames of 1000 s", 'cells of 20"',
                 f"detections  : {len(res.detections)}", "0.2-12 keV", "not an event list"):
        assert text in out, (text, out)
    assert main(["lc", str(store), "--time-bin", "100", "--out", str(tmp_path / "x.lc")]) == 1
    err = capsys.readouterr().err
    assert f"{store}: a transient-search result" in err and "not an event list" in err


@pytest.mark.parametrize("value", ["-5", "0", "1.5"])
def test_convert_chunks_must_be_a_positive_whole_number(make_event_file, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exc:
        main(["convert", str(make_event_file()), "--out", str(tmp_path / "z"), "--chunks", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --chunks: '{value}'" in err and "whole number" in err and "Empty tuples" not in err
    assert not (tmp_path / "z").exists()


def test_info_of_a_spectrum_shows_its_object(make_event_file, tmp_path, capsys):
    pha = tmp_path / "src.pha"
    assert main(["spectrum", str(make_event_file()), "--out", str(pha)]) == 0
    capsys.readouterr()
    assert main(["info", str(pha)]) == 0
    assert "object: TEST" in capsys.readouterr().out
