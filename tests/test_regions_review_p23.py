"""Regions review p23: DS9 ``# background`` shapes, zero-area polygons, sizes
that overflow, light curves of exclusions only, and the frame of the search's
``detections.reg``."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import xcube
from xcube.cli import main
from xcube.regions import pixel_region, region_area

SRC = "circle(26000,26000,600)"
BKG = "annulus(26000,26000,1500,3000)"


# --------------------------------------------------------------------------- 1. DS9 "# background" shapes


def test_source_and_background_shapes_in_one_region_are_refused(tmp_path):
    text = f"# Region file format: DS9 version 4.1\nglobal color=green source=1\nphysical\n{SRC}\n{BKG} # background\n"
    with pytest.raises(ValueError, match=r"background.*background region") as exc:
        pixel_region(text)
    assert "1 shape(s) marked" in str(exc.value)
    reg = tmp_path / "srcbkg.reg"
    reg.write_text(text)
    with pytest.raises(ValueError, match=r"srcbkg\.reg.*background"):
        pixel_region(reg)


@pytest.mark.parametrize("text", [
    f"physical;{SRC} # color=red background\n{BKG}",  # after another property; untagged annulus
    f"global background\nphysical\n{SRC}\n{BKG} # source",  # a global default, one shape back to source
    f"physical;{SRC} # background=1\n{BKG} # background=0",  # key=value forms
    f"physical;{SRC} # source=0\n{BKG}",
])
def test_property_forms_are_read(text):
    with pytest.raises(ValueError, match=r"marked .# background."):
        pixel_region(text)


def test_text_and_tags_saying_background_are_not_the_property():
    rs = pixel_region(f"physical;{SRC} # text={{background}} tag={{background}}\n{BKG} # font=\"background 10\"")
    assert not rs.background and len(rs.include) == 2


def test_a_background_file_is_a_background_region(tmp_path, make_event_file):
    ev = xcube.open_events(make_event_file(n=20000))
    bkg = tmp_path / "bkg.reg"
    bkg.write_text(f"physical\n{BKG} # background\n-circle(27000,26000,300) # background\n")
    rs = pixel_region(bkg)
    assert rs.background and len(rs.include) == 1 and len(rs.exclude) == 1
    plain = f"physical;{BKG}\n-circle(27000,26000,300)"
    # select knows no roles: the shapes are selected as they are
    assert xcube.select(ev, region=bkg).sizes["event"] == xcube.select(ev, region=plain).sizes["event"] > 0
    src = f"physical;{SRC}"
    lc = xcube.lightcurve(ev, 1000.0, region=src, background=bkg)
    ref = xcube.lightcurve(ev, 1000.0, region=src, background=plain)
    np.testing.assert_array_equal(lc["bkg_counts"].values, ref["bkg_counts"].values)
    assert lc.attrs["bkg_backscal"] == ref.attrs["bkg_backscal"]
    spec = xcube.spectrum(ev, region=src, background=bkg)
    assert int(spec["bkg_counts"].sum()) == int(xcube.spectrum(ev, region=src, background=plain)["bkg_counts"].sum())


def test_a_background_region_as_the_source_is_refused(tmp_path, make_event_file, capsys):
    ev_path = make_event_file(n=3000)
    ev = xcube.open_events(ev_path)
    bkg = tmp_path / "bkg.reg"
    bkg.write_text(f"physical\n{BKG} # background\n")
    for make in (lambda: xcube.lightcurve(ev, 1000.0, region=bkg), lambda: xcube.spectrum(ev, region=bkg)):
        with pytest.raises(ValueError, match=r"bkg\.reg.*marked '# background'.*background="):
            make()
    srcbkg = tmp_path / "srcbkg.reg"
    srcbkg.write_text(f"physical\n{SRC}\n{BKG} # background\n")
    for cmd, extra in (("lc", ["--time-bin", "1000"]), ("spectrum", [])):
        out = tmp_path / f"{cmd}.fits"
        assert main([cmd, str(ev_path), "--region", str(srcbkg), "--out", str(out), *extra]) == 1
        err = capsys.readouterr().err
        assert "srcbkg.reg" in err and "--background" in err and "Traceback" not in err, err
        assert not out.exists()


# --------------------------------------------------------------------------- 2. zero-area polygons


@pytest.mark.parametrize("shape", ["polygon(24700,24050,24800,24050)",
                                   "polygon(24700,24050,24800,24050,24900,24050)",
                                   "polygon(24700,24050,24800,24150,24900,24250,24750,24100)",
                                   "polygon(24700,24050,24700,24050,24700,24050)"])
def test_a_polygon_without_area_is_refused(shape):
    with pytest.raises(ValueError, match=r"polygon.*has no area") as exc:
        pixel_region("physical;" + shape)
    assert shape in str(exc.value)
    with pytest.raises(ValueError, match=r"has no area"):
        region_area("physical;" + shape)
    with pytest.raises(ValueError, match=r"has no area"):  # also as an exclusion
        pixel_region(f"physical;circle(24700,24050,600)\n-{shape}")


def test_a_thin_polygon_is_kept():
    assert region_area("physical;polygon(24700,24050,24800,24050,24800,24050.01)") == pytest.approx(0.5)


def test_spectrum_of_a_line_is_refused(make_event_file, tmp_path, capsys):
    ev_path = make_event_file(n=3000)
    out = tmp_path / "line.pha"
    region = "physical;polygon(24700,24050,24800,24050,24900,24050)"
    assert main(["spectrum", str(ev_path), "--region", region, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "no area" in err and "Traceback" not in err, err
    assert not out.exists()


# --------------------------------------------------------------------------- 3. sizes that overflow


@pytest.mark.parametrize("shape", ["circle(24700,24050,1e160)", "ellipse(24700,24050,1e300,10,0)",
                                   "box(24700,24050,1e300,1e300,0)", "annulus(24700,24050,10,1e200)",
                                   "polygon(0,0,1e200,0,0,1e200)", "circle(1e300,24050,10)"])
def test_huge_sizes_are_refused_clearly(shape):
    with pytest.raises(ValueError, match=r"too large") as exc:
        pixel_region("physical;" + shape)
    assert shape in str(exc.value)


def test_huge_sky_circle_is_refused_clearly(make_event_file):
    ev = xcube.open_events(make_event_file(n=300))
    with pytest.raises(ValueError, match=r"too large") as exc:
        pixel_region('fk5;circle(263.6575,-32.556,1e160")', ev)
    assert "far side" not in str(exc.value)


@pytest.mark.parametrize("cmd", ["lc", "spectrum"])
def test_huge_sizes_give_one_line_errors(cmd, make_event_file, tmp_path, capsys):
    ev_path = make_event_file(n=3000)
    extra = ["--time-bin", "1000"] if cmd == "lc" else []
    for region in ("physical;circle(24700,24050,1e160)", "physical;ellipse(24700,24050,1e300,10,0)"):
        out = tmp_path / f"{cmd}.fits"
        assert main([cmd, str(ev_path), "--region", region, "--out", str(out), *extra]) == 1
        err = capsys.readouterr().err
        assert "too large" in err and "Traceback" not in err and "Overflow" not in err, err


def test_large_regions_on_the_field_still_work(make_event_file):
    ev = xcube.open_events(make_event_file(n=3000))
    with pytest.warns(UserWarning, match="extends beyond the events' field"):
        assert xcube.select(ev, region="physical;circle(26000,26000,1e6)").sizes["event"] == 3000
    assert region_area("physical;circle(26000,26000,1e6)") == pytest.approx(np.pi * 1e12)


# --------------------------------------------------------------------------- 4. exclusions only


def test_lightcurve_of_exclusions_only(make_event_file, tmp_path, capsys):
    ev_path = make_event_file(n=5000)
    ev = xcube.open_events(ev_path)
    region = "physical;-circle(26000,26000,2000)"
    lc = xcube.lightcurve(ev, 1000.0, region=region)
    n = xcube.select(ev, region=region).sizes["event"]
    assert 0 < int(lc["counts"].sum()) == n < 5000
    assert "backscal" not in lc.attrs
    out = tmp_path / "excl.lc"
    assert main(["lc", str(ev_path), "--time-bin", "1000", "--region", region, "--out", str(out)]) == 0
    capsys.readouterr()
    with pytest.raises(ValueError, match=r"only exclusions.*background"):
        xcube.lightcurve(ev, 1000.0, region=region, background=f"physical;{BKG}")
    with pytest.raises(ValueError, match=r"only exclusions"):  # a spectrum needs its BACKSCAL
        xcube.spectrum(ev, region=region)


# --------------------------------------------------------------------------- 5. frame of detections.reg


@pytest.mark.parametrize("radesys, frame", [("ICRS", "icrs"), ("FK5", "j2000"), (None, "j2000")])
def test_detections_reg_is_in_the_events_frame(radesys, frame, make_event_file, tmp_path):
    from regions import Regions

    from xcube.transients.result import SearchResult

    header = {"RADECSYS": radesys, "EQUINOX": 2000.0} if radesys else {"EQUINOX": 2000.0}
    ev = xcube.open_events(make_event_file(n=500, header=header))
    img = xcube.image(ev, bin_size=400)
    det = pd.DataFrame({"name": ["a", "b"], "ra": [263.65, 263.66], "dec": [-32.55, -32.56]})
    res = SearchResult(run_id="r", detections=det, lightcurves=None, image=img, summary={"reason": ""},
                       params={"size_arcsec": 20.0})
    out = res.write(tmp_path / "run", figures=False)
    text = (out / "detections.reg").read_text()
    assert f"\n{frame}\n" in text, text
    back = Regions.read(str(out / "detections.reg"), format="ds9")
    want = xcube.wcs(ev).pixel_to_world(26000, 26000).frame  # the frame of the detections' ra/dec
    assert back[0].center.frame.name == want.name
    assert back[0].center.ra.deg == pytest.approx(263.65)


def test_detections_reg_of_an_fk5_file_of_another_equinox_is_precessed(make_event_file, tmp_path):
    from astropy.coordinates import FK5, SkyCoord
    from regions import Regions

    from xcube.transients.result import SearchResult

    ev = xcube.open_events(make_event_file(n=500, header={"RADECSYS": "FK5", "EQUINOX": 2010.0}))
    det = pd.DataFrame({"name": ["a"], "ra": [263.65], "dec": [-32.55]})
    res = SearchResult(run_id="r", detections=det, lightcurves=None, image=xcube.image(ev, bin_size=400),
                       summary={"reason": ""}, params={"size_arcsec": 20.0})
    back = Regions.read(str(res.write(tmp_path / "run", figures=False) / "detections.reg"), format="ds9")
    want = SkyCoord(263.65, -32.55, unit="deg", frame=FK5(equinox="J2010")).transform_to(FK5(equinox="J2000"))
    assert back[0].center.separation(want).arcsec < 1e-3
