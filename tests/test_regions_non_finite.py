"""A NaN or infinite coordinate or size in a region is refused by pixel_region
with a ValueError naming the region (its text, or its file) and saying the
values must be finite; it used to fail later with "cannot convert float NaN to
integer" (from regions' bounding box), or call a sky shape "on the far side of
the sky"."""
from __future__ import annotations

import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from regions import CirclePixelRegion, CircleSkyRegion, PixCoord

import xcube
from xcube.regions import pixel_region

BAD_PHYSICAL = [
    "physical;circle(nan,24060,600)",
    "physical;circle(24745,nan,600)",
    "physical;circle(100,100,nan)",
    "physical;circle(100,100,inf)",
    "physical;annulus(100,100,10,nan)",
    "physical;polygon(1,1,nan,5,5,1)",
    "physical;ellipse(100,100,nan,5,0)",
    "physical;circle(100,100,500)\n-circle(100,nan,5)",  # an exclusion too
    "physical;box(24580,23950,100,50,nan)",  # sweep p28: an angle's NaN gave "does not parse: 'n'"
]


@pytest.mark.parametrize("text", BAD_PHYSICAL)
def test_non_finite_pixel_region_names_the_region(text):
    first = text.splitlines()[0]
    with pytest.raises(ValueError, match=r"must be finite") as exc:
        pixel_region(text)
    assert first in str(exc.value) and "convert" not in str(exc.value)


def test_non_finite_region_file_names_the_file(tmp_path, make_event_file, capsys):
    from xcube.cli import main

    reg = tmp_path / "nan.reg"
    reg.write_text("physical\ncircle(nan,24060,600)\n")
    with pytest.raises(ValueError, match=r"nan\.reg.*must be finite"):
        pixel_region(reg)
    ev = make_event_file(n=300)
    for cmd, region in (("spectrum", str(reg)), ("image", "physical;circle(24745,nan,600)")):
        assert main([cmd, str(ev), "--region", region, "--out", str(tmp_path / f"{cmd}.fits")]) == 1
        err = capsys.readouterr().err
        assert "must be finite" in err and "cannot convert" not in err, err
        assert ("nan.reg" if cmd == "spectrum" else "circle(24745,nan,600)") in err, err
        assert not (tmp_path / f"{cmd}.fits").exists()


def test_non_finite_regions_objects_and_sky_shapes(make_event_file):
    ev = xcube.open_events(make_event_file(n=300))
    with pytest.raises(ValueError, match=r"must be finite"):
        pixel_region(CirclePixelRegion(PixCoord(100.0, float("nan")), 5.0))
    sky = CircleSkyRegion(SkyCoord(263.6, float("nan"), unit="deg"), 20 * u.arcsec)
    with pytest.raises(ValueError, match=r"must be finite"):
        pixel_region(sky, ev)
    with pytest.raises(ValueError, match=r"must be finite") as exc:
        xcube.select(ev, region='fk5;circle(263.6,nan,40")')
    assert "far side" not in str(exc.value)


def test_finite_regions_still_resolve():
    rs = pixel_region("physical;circle(100,100,5)\n-circle(100,100,1)")
    assert len(rs.include) == 1 and len(rs.exclude) == 1
