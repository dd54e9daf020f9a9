"""xcube stitch of event files where one cannot be read: the others are
stitched and written, and the command says so and exits 1 (it exited 0 with
only a warning, so a script never noticed the missing observation)."""
from __future__ import annotations

from astropy.io import fits

from xcube.cli import main


def test_a_skipped_event_file_fails_the_command_after_writing_the_rest(make_event_file, tmp_path, capsys):
    good = [make_event_file(n=2000, t0=1e8 + k * 1e5, duration=2000.0, seed=k, header={"OBS_ID": f"012345678{k}"},
                            name=f"ev{k}.fits") for k in range(2)]
    bad = tmp_path / "broken.fits"
    with fits.open(good[0]) as hdul:  # every TIME NaN: an event file that cannot be opened
        hdul["EVENTS"].data["TIME"][:] = float("nan")
        hdul.writeto(bad)
    out = tmp_path / "long.lc"
    assert main(["stitch", *map(str, good), str(bad), "--time-bin", "100", "--no-index", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "1 of 3 event files skipped" in err and "broken.fits" in err
    assert fits.getheader(out, "RATE")["NOBS"] == 2
    assert main(["stitch", *map(str, good), "--time-bin", "100", "--no-index", "--out", str(tmp_path / "ok.lc")]) == 0
