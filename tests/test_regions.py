"""Regions: DS9 parsing, pixel convention, sky/physical equivalence, masks, areas, errors."""
import warnings

import numpy as np
import pytest
import xarray as xr
from astropy import units as u
from astropy.coordinates import SkyCoord
from conftest import real_file
from hypothesis import given, settings
from hypothesis import strategies as st
from regions import CirclePixelRegion, CircleSkyRegion, PixCoord, Regions
from test_select import ATTRS, make_events, values

import xcube
from xcube.regions import RegionSet, events_wcs, pixel_region, region_area, region_mask


@pytest.fixture(scope="module")
def mos1():
    ev = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"), chunks=40000)
    return ev, values(ev, "x").astype(float), values(ev, "y").astype(float)


def sky_of(ev, x, y):
    """Sky position of column values (x, y) (xcube.wcs pixels are column values)."""
    return events_wcs(ev).pixel_to_world(x, y)


def test_known_point_reference_pixel():
    # events at the WCS reference pixel (CRPIX = 25921 in column units) and one column off
    xs = np.array([25921, 25922, 25920, 25921, 25921], np.int32)
    ys = np.array([25921, 25922, 25920, 25922, 25920], np.int32)
    from xcube.io.events_fits import events_dataset

    ev = events_dataset({"time": np.arange(5.0), "x": xs, "y": ys}, ([0.0], [10.0]), {}, dict(ATTRS))
    ra, dec = ATTRS["CRVAL1"], ATTRS["CRVAL2"]
    # 0.3 pixel = 0.015 arcsec around CRVAL (FK5 J2000, as the file says): only the event at X=Y=25921
    sky = f'fk5;circle({ra!r},{dec!r},0.015")'
    np.testing.assert_array_equal(region_mask(ev, sky).values, [True, False, False, False, False])
    np.testing.assert_array_equal(region_mask(ev, "physical;circle(25921,25921,0.7)").values, [1, 0, 0, 0, 0])
    # the same point as a regions sky object and as a regions pixel object (column frame)
    c = CircleSkyRegion(SkyCoord(ra, dec, unit="deg", frame="fk5"), 0.015 * u.arcsec)
    np.testing.assert_array_equal(region_mask(ev, c).values, [1, 0, 0, 0, 0])
    p = c.to_pixel(xcube.wcs(ev))
    assert abs(p.center.x - 25921) < 1e-6 and abs(p.center.y - 25921) < 1e-6
    np.testing.assert_array_equal(region_mask(ev, p).values, [1, 0, 0, 0, 0])
    p = CirclePixelRegion(PixCoord(25921.0, 25921.0), 0.7)
    np.testing.assert_array_equal(region_mask(ev, p).values, [1, 0, 0, 0, 0])
    assert sky_of(ev, 25921.0, 25921.0).separation(SkyCoord(ra, dec, unit="deg", frame="fk5")).arcsec < 1e-6
    # the same numbers read as ICRS are 0.63 pixel away: the frame matters at this radius
    icrs = CircleSkyRegion(SkyCoord(ra, dec, unit="deg", frame="icrs"), 0.015 * u.arcsec)
    assert not region_mask(ev, icrs).values[0]


def test_physical_circle_matches_brute_force_on_real_mos(mos1):
    ev, x, y = mos1
    cx, cy, r = 26000.3, 25500.7, 1200.5
    mask = region_mask(ev, f"physical;circle({cx},{cy},{r})")
    assert hasattr(mask.data, "dask")  # lazy
    brute = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    assert brute.sum() > 500
    np.testing.assert_array_equal(mask.values, brute)
    out = xcube.select(ev, region=f"circle({cx},{cy},{r})")  # no frame: DS9's default, physical
    np.testing.assert_array_equal(values(out), values(ev)[brute])


def _sky_circles(ev, cx, cy, r_pix):
    c = sky_of(ev, cx, cy)
    r = r_pix * 0.05  # arcsec
    fk5, icrs, gal = c.fk5, c.icrs, c.galactic
    return [
        f'fk5;circle({fk5.ra.deg:.10f},{fk5.dec.deg:.10f},{r:.6f}")',
        f'icrs;circle({icrs.ra.deg:.10f},{icrs.dec.deg:.10f},{r:.6f}")',
        f'galactic;circle({gal.l.deg:.10f},{gal.b.deg:.10f},{r:.6f}")',
        CircleSkyRegion(icrs, r * u.arcsec),
    ]


def test_sky_and_physical_regions_select_the_same_events_dense_grid():
    # one event on every integer pixel around a circle 75" from the reference pixel
    from xcube.io.events_fits import events_dataset

    cx, cy, r_pix = 25400.3, 26300.7, 200.5
    gx, gy = np.meshgrid(np.arange(25150, 25651), np.arange(26050, 26551))
    ev = events_dataset({"time": np.arange(gx.size, dtype=float), "x": gx.ravel().astype(np.int32),
                         "y": gy.ravel().astype(np.int32)}, ([0.0], [1e6]), {}, dict(ATTRS))
    phys = region_mask(ev, f"physical;circle({cx},{cy},{r_pix})").values
    np.testing.assert_array_equal(phys, (gx.ravel() - cx) ** 2 + (gy.ravel() - cy) ** 2 <= r_pix**2)
    for sky in _sky_circles(ev, cx, cy, r_pix):
        np.testing.assert_array_equal(region_mask(ev, sky).values, phys, err_msg=str(sky))
    # a wrong frame (ICRS numbers labelled fk5) is off by ~20 mas = 0.4 pixel: it must show
    c = sky_of(ev, cx, cy).icrs
    wrong = region_mask(ev, f'fk5;circle({c.ra.deg:.10f},{c.dec.deg:.10f},{r_pix * 0.05:.6f}")').values
    assert np.count_nonzero(wrong != phys) > 50


@pytest.mark.parametrize("frame", ["galactic", "ecliptic", "fk5"])
@pytest.mark.parametrize("shape", ["box", "ellipse"])
def test_sky_box_and_ellipse_angles_are_from_their_own_frames_north(frame, shape):
    """Sweep p28: a galactic (or ecliptic) box's or ellipse's angle was taken from equatorial north (as
    ``regions`` converts it), not from its own frame's, as DS9 does: on the real MOS1 file a galactic box
    selected 2733 of 8000 events wrongly. Checked against the same shape traced in its own frame (offsets
    along its longitude and latitude from the centre), written as an fk5 polygon."""
    from xcube.io.events_fits import events_dataset

    gx, gy = np.meshgrid(np.arange(24400, 27401, 6), np.arange(24400, 27401, 6))
    ev = events_dataset({"time": np.arange(gx.size, dtype=float), "x": gx.ravel().astype(np.int32),
                         "y": gy.ravel().astype(np.int32)}, ([0.0], [1e6]), {}, dict(ATTRS))
    c = sky_of(ev, 25900.0, 25950.0)
    own = {"galactic": c.galactic, "ecliptic": c.transform_to("barycentricmeanecliptic"), "fk5": c.fk5}[frame]
    lon, lat = own.spherical.lon.deg, own.spherical.lat.deg
    name = {"galactic": "galactic", "ecliptic": "ecliptic", "fk5": "fk5"}[frame]
    a, b, angle = 40.0, 10.0, 20.0  # arcsec, degrees from the frame's longitude axis
    text = f'{name};{shape}({lon:.10f},{lat:.10f},{2 * a if shape == "box" else a}",' \
           f'{2 * b if shape == "box" else b}",{angle})'
    if shape == "box":
        u_, v_ = np.array([a, -a, -a, a]), np.array([b, b, -b, -b])
    else:
        phi = np.linspace(0.0, 2 * np.pi, 720, endpoint=False)
        u_, v_ = a * np.cos(phi), b * np.sin(phi)
    th = np.radians(angle)  # rotated counter-clockwise from +longitude towards +latitude
    dlon, dlat = u_ * np.cos(th) - v_ * np.sin(th), u_ * np.sin(th) + v_ * np.cos(th)
    # DS9's +x on the sky is towards decreasing longitude (east left): longitude offsets run the other way
    traced = SkyCoord(lon=-dlon * u.arcsec, lat=dlat * u.arcsec, frame=own.skyoffset_frame()).fk5
    poly = "fk5;polygon(" + ",".join(f"{p.ra.deg:.10f},{p.dec.deg:.10f}" for p in traced) + ")"
    got, want = region_mask(ev, text).values, region_mask(ev, poly).values
    assert want.sum() > 100
    assert np.count_nonzero(got != want) <= (0 if shape == "box" else 0.02 * want.sum()), text


def test_sky_and_physical_regions_select_the_same_events(mos1):
    ev, x, y = mos1
    cx, cy, r_pix = 25400.3, 26300.7, 1500.5
    phys = region_mask(ev, f"physical;circle({cx},{cy},{r_pix})").values
    assert phys.sum() > 500
    for sky in _sky_circles(ev, cx, cy, r_pix):
        np.testing.assert_array_equal(region_mask(ev, sky).values, phys, err_msg=str(sky))
    # sky polygon vs physical polygon (exact vertex transform)
    vx = np.array([24000.31, 27000.13, 26500.92])
    vy = np.array([24500.77, 25000.61, 27500.24])
    sky = sky_of(ev, vx, vy).fk5
    poly_sky = "fk5;polygon(" + ",".join(f"{s.ra.deg:.10f},{s.dec.deg:.10f}" for s in sky) + ")"
    poly_phys = "physical;polygon(" + ",".join(f"{a},{b}" for a, b in zip(vx, vy)) + ")"
    np.testing.assert_array_equal(region_mask(ev, poly_sky).values, region_mask(ev, poly_phys).values)
    rs = pixel_region(poly_sky, ev)
    np.testing.assert_allclose(rs.include[0].vertices.x, vx, atol=1e-4)
    np.testing.assert_allclose(rs.include[0].vertices.y, vy, atol=1e-4)


def test_include_exclude_lists(mos1):
    ev, x, y = mos1
    text = """# Region file format: DS9 version 4.1
global color=green
physical
circle(26000.5,26000.5,3000.5) # source
-circle(26500.5,26000.5,400.5)
-box(25000.5,25500.5,600,300,0)
circle(20000.5,20000.5,500.5)
"""
    m = region_mask(ev, text).values
    d2 = lambda a, b: (x - a) ** 2 + (y - b) ** 2  # noqa: E731
    inc = (d2(26000.5, 26000.5) <= 3000.5**2) | (d2(20000.5, 20000.5) <= 500.5**2)
    exc = (d2(26500.5, 26000.5) <= 400.5**2) | ((np.abs(x - 25000.5) <= 300) & (np.abs(y - 25500.5) <= 150))
    assert exc[inc].sum() > 10
    np.testing.assert_array_equal(m, inc & ~exc)
    # exclusions only: everything outside them
    only = region_mask(ev, "physical;-circle(26500.5,26000.5,400.5)").values
    np.testing.assert_array_equal(only, d2(26500.5, 26000.5) > 400.5**2)


def test_region_file_and_list_inputs(tmp_path, mos1):
    ev, x, y = mos1
    f = tmp_path / "src.reg"
    f.write_text("physical\ncircle(26000.5,26000.5,800.5)\n")
    a = region_mask(ev, f).values
    b = region_mask(ev, str(f)).values
    c = region_mask(ev, ["physical;circle(26000.5,26000.5,800.5)"]).values
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    rs = pixel_region(f)
    assert str(f) in rs.description and "circle(26000.5,26000.5,800.5)" in rs.description
    regs = Regions([CirclePixelRegion(PixCoord(26000.5, 26000.5), 800.5)])
    np.testing.assert_array_equal(region_mask(ev, regs).values, a)
    np.testing.assert_array_equal(region_mask(ev, regs[0]).values, a)


def test_region_errors_and_warnings(tmp_path):
    ev = make_events(200)
    with pytest.raises(FileNotFoundError, match=r"region file .*nope.reg not found"):
        pixel_region(str(tmp_path / "nope.reg"))
    with pytest.raises(ValueError, match=r"coordinate system 'detector' is not supported"):
        pixel_region("detector;circle(1,1,1)")
    with pytest.raises(ValueError, match=r"a point has no area"):
        pixel_region("physical;point(26000,26000)")
    with pytest.raises(ValueError, match=r"is in sky coordinates; pass the events"):
        pixel_region('fk5;circle(263.6,-32.5,10")')
    with pytest.raises(ValueError, match=r"does not parse|holds no shape|skipping"):
        pixel_region("physical;circle(1,2")
    with pytest.warns(UserWarning, match=r"image coordinates; xcube reads them as X/Y column"):
        pixel_region("image;circle(26000,26000,10)")
    nowcs = ev.drop_attrs()
    with pytest.raises(
        ValueError, match=r"no sky WCS for x/y \(missing attrs \[.CTYPE1.*sky regions need the X/Y column WCS"
    ):
        region_mask(nowcs, 'fk5;circle(263.6,-32.5,10")')
    with pytest.raises(ValueError, match=r"region 'physical;circle\(100,100,10\)' lies outside the events' field"):
        xcube.select(ev, region="physical;circle(100,100,10)")
    with pytest.warns(UserWarning, match=r"extends beyond the events' field"):
        xcube.select(ev, region="physical;circle(25000,26000,300)")


def test_region_area_exact_and_sampled():
    assert region_area("physical;circle(100,100,10)") == pytest.approx(np.pi * 100)
    assert region_area("physical;ellipse(100,100,10,4,30)") == pytest.approx(np.pi * 40)
    assert region_area("physical;box(100,100,10,4,30)") == pytest.approx(40)
    assert region_area("physical;polygon(0,0,10,0,10,10)") == pytest.approx(50)
    assert region_area("physical;annulus(100,100,5,10)") == pytest.approx(np.pi * 75)
    # circle minus an inner circle: sampled, must agree with the annulus
    a = region_area("physical;circle(100,100,300)\n-circle(110,95,100)")
    assert a == pytest.approx(np.pi * (300**2 - 100**2), rel=1e-3)
    # union of two overlapping circles (lens formula for the overlap)
    r, d = 200.0, 200.0
    lens = 2 * r * r * np.arccos(d / (2 * r)) - d / 2 * np.sqrt(4 * r * r - d * d)
    a = region_area(f"physical;circle(1000,1000,{r})\ncircle({1000 + d},1000,{r})")
    assert a == pytest.approx(2 * np.pi * r * r - lens, rel=1e-3)
    with pytest.raises(ValueError, match="only exclusions: its area is infinite"):
        region_area("physical;-circle(1,1,1)")


def test_sky_region_area_in_sky_pixels():
    ev = make_events(10)
    # 20 arcsec radius = 400 pixels of 0.05"
    a = region_area(f'fk5;circle({ATTRS["CRVAL1"]},{ATTRS["CRVAL2"]},20")', ev)
    assert a == pytest.approx(np.pi * 400**2, rel=1e-6)


def test_grid_mask_on_image_coordinates():
    xs = np.arange(25000.5, 27000, 100.0)
    ys = np.arange(25000.5, 27000, 50.0)
    img = xr.DataArray(np.zeros((ys.size, xs.size)), dims=("y", "x"), coords={"x": xs, "y": ys}, attrs=dict(ATTRS))
    m = region_mask(img, "physical;circle(26000,26000,500)")
    assert m.dims == ("y", "x") and m.shape == img.shape
    gx, gy = np.meshgrid(xs, ys)
    np.testing.assert_array_equal(m.values, (gx - 26000) ** 2 + (gy - 26000) ** 2 <= 500**2)
    with pytest.raises(ValueError, match="needs an EventList"):
        region_mask(xr.DataArray(np.zeros(3), dims="t"), "physical;circle(1,1,1)")


def test_regionset_is_reusable_and_lazy_mask_per_chunk():
    ev = make_events(500, chunk=50)
    rs = pixel_region("physical;circle(26000,26000,700.5)")
    assert isinstance(rs, RegionSet) and len(rs.include) == 1 and not rs.exclude
    m = region_mask(ev, rs)
    assert m.data.numblocks == ev["x"].data.numblocks
    x, y = values(ev, "x").astype(float), values(ev, "y").astype(float)
    np.testing.assert_array_equal(m.values, (x - 26000) ** 2 + (y - 26000) ** 2 <= 700.5**2)
    np.testing.assert_array_equal(values(xcube.select(ev, region=rs)), values(ev)[m.values])


def test_fallback_wcs_matches_xcube_wcs():
    from xcube.regions import _fallback_wcs

    ev = make_events(10)
    x, y = np.array([25000.0, 25921.0, 27000.5]), np.array([26000.0, 25921.0, 24000.25])
    a, b = _fallback_wcs(ev).pixel_to_world(x, y), events_wcs(ev).pixel_to_world(x, y)
    assert np.all(a.separation(b).arcsec < 1e-9)
    assert a.frame.name == "fk5"


@given(
    circles=st.lists(st.tuples(st.floats(25200, 26800), st.floats(25200, 26800), st.floats(20, 600),
                               st.booleans()), min_size=1, max_size=4),
    split=st.integers(0, 4),
)
@settings(max_examples=20, deadline=None)
def test_random_include_exclude_circles_match_brute_force_and_compose(circles, split):
    ev = make_events(600, seed=len(circles), chunk=128, lazy=split % 2 == 0)
    x, y = values(ev, "x").astype(float), values(ev, "y").astype(float)
    lines = [f"{'' if inc else '-'}circle({cx!r},{cy!r},{r!r})" for cx, cy, r, inc in circles]
    inside = lambda c: (x - c[0]) ** 2 + (y - c[1]) ** 2 <= c[2] ** 2  # noqa: E731
    incs = [c for c in circles if c[3]]
    exp = np.logical_or.reduce([inside(c) for c in incs]) if incs else np.ones(x.size, bool)
    for c in circles:
        if not c[3]:
            exp &= ~inside(c)
    np.testing.assert_array_equal(region_mask(ev, "physical\n" + "\n".join(lines)).values, exp)
    # composing two region selections = the events in both
    a, b = (
        "physical;" + ";".join(lines[:split] or ["circle(26000,26000,5000)"]),
        "physical;" + ";".join(lines[split:] or ["circle(26000,26000,5000)"]),
    )
    ma, mb = region_mask(ev, a).values, region_mask(ev, b).values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            both = xcube.select(xcube.select(ev, region=a), region=b)
        except ValueError as exc:  # a region wholly outside the (selected) field: said so, by name
            assert "lies outside the events' field" in str(exc)
            return
    np.testing.assert_array_equal(values(both), values(ev)[ma & mb])


def test_sky_region_on_the_far_side_of_the_sky(make_event_file, tmp_path, capsys):
    """A sky region ~180 deg from the field has no pixels in the TAN projection: the same 'outside the
    field' error as a nearby off-field region, naming the file (it was 'cannot convert float NaN to integer')."""
    from xcube.cli import main

    path = make_event_file(name="far.fits")
    ev = xcube.open_events(path)
    far = 'fk5;circle(10,10,40")'
    with pytest.raises(ValueError, match=r"far.fits: region 'fk5;circle\(10,10,40\"\)' lies outside the events' "
                                         r"field: it is on the far side of the sky"):
        xcube.select(ev, region=far)
    with pytest.raises(ValueError, match="far.fits: region .* lies outside the events' field: its extent"):
        xcube.select(ev, region='fk5;circle(262.0,-32.55,40")')  # off the field, on the near side
    # an exclusion on the far side excludes nothing
    ra, dec = ATTRS["CRVAL1"], ATTRS["CRVAL2"]
    near = f'fk5;circle({ra!r},{dec!r},300")'
    np.testing.assert_array_equal(region_mask(ev, f'{near};-circle(10,10,40")').values, region_mask(ev, near).values)
    for cmd, extra in (("lc", ["--time-bin", "100"]), ("spectrum", []), ("image", [])):
        assert main([cmd, str(path), "--region", far, "--out", str(tmp_path / f"{cmd}.fits"), *extra]) == 1
        err = capsys.readouterr().err
        assert f"{path}: region" in err and "far side of the sky" in err and "NaN" not in err, err


def _grid_events(half=12):
    """One event on every integer X/Y of a (2 half + 1)^2 grid centred on 26000; and dx, dy from the centre."""
    from xcube.io.events_fits import events_dataset

    g = np.arange(26000 - half, 26000 + half + 1)
    gx, gy = np.meshgrid(g, g)
    x, y = gx.ravel(), gy.ravel()
    ev = events_dataset({"time": np.arange(x.size, dtype=float), "x": x.astype(np.int32), "y": y.astype(np.int32)},
                        ([0.0], [1e6]), {}, dict(ATTRS))
    return ev, (x - 26000).astype(np.int64), (y - 26000).astype(np.int64)


def _right_angle_shapes(angle, dx, dy):
    """DS9 shapes rotated by a multiple of 90 deg and their exact (integer arithmetic) masks; every
    shape has events on its boundary, which count as inside."""
    swap = (angle // 90) % 2 == 1
    u, v = (dy, dx) if swap else (dx, dy)  # the shape's axes along the grid's
    au, av = np.abs(u), np.abs(v)
    hu, hv = (np.abs(2 * dy - 1), np.abs(2 * dx - 1)) if swap else (np.abs(2 * dx - 1), np.abs(2 * dy - 1))
    return {
        f"box(26000,26000,10,4,{angle})": (au <= 5) & (av <= 2),
        f"box(26000.5,26000.5,9,3,{angle})": (hu <= 9) & (hv <= 3),  # hu, hv: twice the distance from 26000.5
        f"ellipse(26000,26000,5,5,{angle})": dx**2 + dy**2 <= 25,  # a circle: (3, 4) is on it
        f"ellipse(26000,26000,8,4,{angle})": u**2 + 4 * v**2 <= 64,
        f"ellipse(26000,26000,4,2,8,4,{angle})": (u**2 + 4 * v**2 <= 64) & (u**2 + 4 * v**2 >= 16),
        f"box(26000,26000,4,2,12,8,{angle})": (au <= 6) & (av <= 4) & ~((au < 2) & (av < 1)),
        f"box(26000,26000,20,20,{angle})\n-box(26000,26000,10,4,{angle})": (au <= 10) & (av <= 10)
        & ~((au <= 5) & (av <= 2)),  # an exclusion's boundary is excluded
        "circle(26000,26000,5)": dx**2 + dy**2 <= 25,
        "annulus(26000,26000,5,10)": (dx**2 + dy**2 >= 25) & (dx**2 + dy**2 <= 100),
        "polygon(25995,25995,26005,25995,26005,26005)": (dx <= 5) & (dy >= -5) & (dy <= dx),
    }


@pytest.mark.parametrize("angle", [0, 90, 180, 270, 360, -90, 450, -720])
def test_rotated_shapes_keep_events_on_their_boundary(angle):
    """docs/select.md: boundaries count as inside. cos(90 deg) = 6e-17 put boundary events of rotated
    boxes and ellipses outside: box(26000,26000,10,4,A) kept 55 events at A = 0, 51 at 90, 43 at 360."""
    ev, dx, dy = _grid_events()
    for shape, ref in _right_angle_shapes(angle, dx, dy).items():
        got = region_mask(ev, "physical;" + shape).values
        np.testing.assert_array_equal(got, ref, err_msg=f"{shape}: {got.sum()} events, expected {ref.sum()}")
    assert region_mask(ev, f"physical;box(26000,26000,10,4,{angle})").values.sum() == 55
    n = xcube.select(ev, region=f"physical;ellipse(26000,26000,5,5,{angle})").sizes["event"]
    assert n == 81


def test_rotated_shapes_at_other_angles_keep_boundary_events():
    """An angle whose cosine and sine are 4/5 and 3/5: lattice points such as (4, 3) lie exactly on
    the edges; only a tolerance of a few ulps can keep them, as at right angles."""
    ev, dx, dy = _grid_events()
    a = float(np.degrees(np.arctan2(3.0, 4.0)))
    p, q = 4 * dx + 3 * dy, 4 * dy - 3 * dx  # 5 x the coordinates along the rotated axes
    cases = {
        f"box(26000,26000,10,10,{a!r})": (np.abs(p) <= 25) & (np.abs(q) <= 25),
        f"box(26000,26000,20,10,{a!r})": (np.abs(p) <= 50) & (np.abs(q) <= 25),
        f"ellipse(26000,26000,10,5,{a!r})": p**2 + 4 * q**2 <= 2500,
        f"ellipse(26000,26000,5,5,{a + 17.5!r})": dx**2 + dy**2 <= 25,
    }
    for shape, ref in cases.items():
        on_edge = (np.abs(p) == 25) | (np.abs(q) == 25) | (dx**2 + dy**2 == 25)
        assert (ref & on_edge).any()
        got = region_mask(ev, "physical;" + shape).values
        np.testing.assert_array_equal(got, ref, err_msg=f"{shape}: {got.sum()} events, expected {ref.sum()}")
    # a 45-degree box has no lattice point on its edges: unchanged, 37 events
    u, v = (dx + dy) / np.sqrt(2), (dy - dx) / np.sqrt(2)
    ref = (np.abs(u) <= 5) & (np.abs(v) <= 2)
    assert ref.sum() == 37
    np.testing.assert_array_equal(region_mask(ev, "physical;box(26000,26000,10,4,45)").values, ref)


def test_boundary_tolerance_is_ulps_not_pixels():
    """The boundary tolerance is a few ulps of the shape's scale (~1e-10 pixel at 26000), never a
    visible fraction of a pixel; the angle is reduced modulo 360 with exact right angles."""
    from xcube.regions import BOUNDARY_ULPS, _cos_sin

    assert _cos_sin(90) == (0.0, 1.0) and _cos_sin(-90) == (0.0, -1.0) and _cos_sin(720) == (1.0, 0.0)
    assert _cos_sin(450 * u.deg) == (0.0, 1.0) and _cos_sin(-1e-30) == (1.0, 0.0)
    tol = BOUNDARY_ULPS * np.finfo(float).eps * 26000
    assert 1e-11 < tol < 1e-9
    rs = pixel_region("physical;box(26000,26000,10,4,90);circle(26100,26000,5);ellipse(26200,26000,8,4,270)")
    for cx, (hx, hy) in ((26000, (2, 5)), (26100, (5, 0)), (26200, (4, 0))):
        x = np.array([cx + hx, cx + hx + tol / 2, cx + hx + 1e-8, cx + hx + 1e-4])
        y = np.full(4, 26000.0 + hy)
        np.testing.assert_array_equal(rs.contains(x, y), [True, True, False, False])
