"""DS9 shapes in the space-separated form (``circle 263.6 -32.5 30"``), in region
strings and region files: the same events as the parenthesised form."""
import numpy as np
import pytest
from conftest import real_file
from test_select import make_events

import xcube
from xcube.regions import events_wcs, pixel_region, region_mask


def _sky(ev, x=26000.0, y=26000.0):
    """(ra, dec) [deg] and sexagesimal (hh:mm:ss.ss, dd:mm:ss.s) of column values x, y."""
    c = events_wcs(ev).pixel_to_world(x, y)
    return (float(c.ra.deg), float(c.dec.deg),
            c.ra.to_string(unit="hour", sep=":", precision=2), c.dec.to_string(sep=":", precision=1, alwayssign=True))


def _pairs(ev):
    """(space-separated form, parenthesised form) of the same region."""
    ra, dec, hms, dms = _sky(ev)
    return [
        ("circle 26000 26000 400", "physical;circle(26000,26000,400)"),
        ("physical; circle 26000 26000 400", "physical;circle(26000,26000,400)"),
        ("physical; annulus 26000 26000 200 600", "physical;annulus(26000,26000,200,600)"),
        ("physical; box 26000 26000 800 400 30", "physical;box(26000,26000,800,400,30)"),
        ("physical; box 26000 26000 800 400", "physical;box(26000,26000,800,400,0)"),
        ("physical; ellipse 26000, 26000, 500, 250, 60", "physical;ellipse(26000,26000,500,250,60)"),
        ("physical; polygon 25500 25500 26500 25600 26200 26600",
         "physical;polygon(25500,25500,26500,25600,26200,26600)"),
        ("physical; circle 26000 26000 700; -circle 26000 26000 200",
         "physical;circle(26000,26000,700);-circle(26000,26000,200)"),
        ("physical\ncircle 26000 26000 700 # color=red text={src}\n- box 26000 26000 300 300 0",
         "physical\ncircle(26000,26000,700) # color=red text={src}\n-box(26000,26000,300,300,0)"),
        (f'fk5; circle {ra!r} {dec!r} 30"', f'fk5;circle({ra!r},{dec!r},30")'),
        (f'fk5; annulus {ra!r} {dec!r} 10" 30"', f'fk5;annulus({ra!r},{dec!r},10",30")'),
        (f'fk5; circle {hms} {dms} 30"', f'fk5;circle({hms},{dms},30")'),
        (f"fk5; circle {hms}, {dms}, 0.5'", f"fk5;circle({hms},{dms},0.5')"),
    ]


def _check_same_events(ev, tmp_path):
    for i, (space, parens) in enumerate(_pairs(ev)):
        want = region_mask(ev, parens).values
        assert want.sum() > 0, parens
        np.testing.assert_array_equal(region_mask(ev, space).values, want, err_msg=space)
        f = tmp_path / f"space{i}.reg"  # the same text as a region file, with DS9's header
        f.write_text("# Region file format: DS9 version 4.1\nglobal color=green width=1\n"
                     + space.replace("; ", "\n") + "\n")
        np.testing.assert_array_equal(region_mask(ev, f).values, want, err_msg=f.read_text())
        np.testing.assert_array_equal(region_mask(ev, str(f)).values, want, err_msg=f.read_text())
        assert np.asarray(xcube.select(ev, region=space)["x"].values).size == int(want.sum())  # counts inside


def test_space_separated_shapes_select_the_same_events(tmp_path):
    _check_same_events(make_events(6000, chunk=1000), tmp_path)


def test_space_separated_shapes_on_real_mos(tmp_path):
    ev = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"), chunks=40000)
    _check_same_events(ev, tmp_path)


def test_space_form_keeps_exclusion_comment_and_frame():
    rs = pixel_region("physical; circle 26000 26000 700 # color=red\n-circle 26000 26000 200")
    assert len(rs.include) == 1 and len(rs.exclude) == 1
    assert float(rs.exclude[0].radius) == 200 and float(rs.include[0].center.x) == 26000  # physical: no shift
    with pytest.raises(ValueError, match=r"is in sky coordinates; pass the events"):
        pixel_region('fk5; circle 17:34:46.3 -32:33:17 30"')


def test_neither_region_nor_file_is_a_clear_error(tmp_path, monkeypatch):
    for text in ("foo bar", "circle of friends", "fk5", "circle 1 2 3.reg"):
        with pytest.raises(FileNotFoundError, match=rf"region file {text} not found; as a region string "
                                                    rf"'{text}' holds no DS9 shape"):
            pixel_region(text)
    with pytest.raises(FileNotFoundError, match=r"region file .*nope.reg not found"):
        pixel_region(tmp_path / "nope.reg")
    # a file that exists is read as a file, even when its name reads as a shape
    monkeypatch.chdir(tmp_path)
    (tmp_path / "circle 1 2 3").write_text("physical\ncircle(26000,26000,400)\n")
    rs = pixel_region("circle 1 2 3")
    assert float(rs.include[0].radius) == 400 and "circle 1 2 3 (" in rs.description


def test_region_file_of_space_separated_shapes_only(tmp_path):
    f = tmp_path / "src.reg"
    f.write_text("physical\ncircle 26000 26000 400\n")
    rs = pixel_region(f)
    assert float(rs.include[0].radius) == 400
    f.write_text("physical\nnot a shape 1 2 3\n")
    with pytest.raises(ValueError, match=r"not a DS9 region file"):
        pixel_region(f)


def test_box_without_angle_is_angle_zero():
    # DS9's box angle is optional (0); the regions reader needs it
    want = pixel_region("physical;box(26000,26000,800,400,0)").include[0]
    for text in ("physical;box(26000,26000,800,400)", "physical; -box(26000, 26000, 800, 400) # color=red",
                 "box 26000 26000 800 400"):
        r = (pixel_region(text).include or pixel_region(text).exclude)[0]
        assert (float(r.width), float(r.height), float(r.angle.value), float(r.center.x)) == \
            (float(want.width), float(want.height), 0.0, 26000.0), text
