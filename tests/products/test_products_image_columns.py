"""An image of events without X/Y sky columns: an error naming the file."""
from __future__ import annotations

import pytest

import xcube
from xcube.cli import main


def test_image_without_sky_columns_names_the_file(make_event_file, tmp_path, capsys):
    path = make_event_file(name="noX.fits")
    ev = xcube.open_events(path).drop_vars("x")
    with pytest.raises(ValueError, match=r"noX.fits: no X/Y sky columns \(X missing\), which an image bins; "
                                         r"columns: .*pi.*y"):
        xcube.image(ev)
    # a file written without the X column
    from astropy.io import fits

    with fits.open(path) as hdul:
        cols = [c for c in hdul["EVENTS"].columns if c.name != "X"]
        hdul["EVENTS"] = fits.BinTableHDU.from_columns(cols, header=hdul["EVENTS"].header, name="EVENTS")
        hdul.writeto(tmp_path / "noX2.fits")
    assert main(["image", str(tmp_path / "noX2.fits"), "--out", str(tmp_path / "img.fits")]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'noX2.fits'}: no X/Y sky columns" in err and "No variable" not in err
