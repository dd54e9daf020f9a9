"""BACKSCAL is the region's area on the detector (the CCDs' footprint from the events), not its geometric area."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from conftest import real_file

import xcube

# synthetic detector: a round field of view (centre 26000, 26000, radius 6000) over two CCDs, CCD 1 at
# X <= 25899 and CCD 2 at X >= 26100 (a gap of 200 pixels between them)
CX = CY = 26000.0
R_FOV = 6000.0
GAP = (25900, 26100)


def _detector_events(make_event_file, n=240_000, stray=0):
    rng = np.random.default_rng(7)
    x = rng.integers(20000, 32001, 2 * n)
    y = rng.integers(20000, 32001, 2 * n)
    keep = ((x - CX) ** 2 + (y - CY) ** 2 <= R_FOV**2) & ((x < GAP[0]) | (x >= GAP[1]))
    x, y = x[keep], y[keep]
    ccd = np.where(x < GAP[0], 1, 2)
    if stray:  # a few events with a stray CCD number, outside the field
        x = np.concatenate([x, rng.integers(31000, 31500, stray)])
        y = np.concatenate([y, rng.integers(31000, 31500, stray)])
        ccd = np.concatenate([ccd, np.full(stray, 3)])
    m = len(x)
    cols = {"X": x.astype(np.int32), "Y": y.astype(np.int32), "CCDNR": ccd.astype(np.uint8),
            "PI": rng.integers(500, 10000, m).astype(np.int16), "PATTERN": np.zeros(m, np.uint8),
            "FLAG": np.zeros(m, np.int32)}
    return xcube.open_events(make_event_file(n=m, columns=cols))


def _lens(r, d, big=R_FOV):
    """Area of a circle of radius r, centre at distance d from the field's centre, inside the field (radius big)."""
    a = r * r * math.acos((d * d + r * r - big * big) / (2 * d * r))
    b = big * big * math.acos((d * d + big * big - r * r) / (2 * d * big))
    return a + b - 0.5 * math.sqrt((-d + r + big) * (d + r - big) * (d - r + big) * (d + r + big))


# a circle of radius 800 centred on the field's edge, over CCD 1 (45 degrees up-left of the centre)
EDGE = (CX - R_FOV / math.sqrt(2), CY + R_FOV / math.sqrt(2), 800.0)
EDGE_REGION = "physical;circle({:.3f},{:.3f},{:g})".format(*EDGE)
INSIDE_REGION = "physical;circle(23000,26000,1500)"


@pytest.fixture
def detector(make_event_file):
    return _detector_events(make_event_file, stray=10)


def test_region_inside_the_field_keeps_its_exact_area(detector):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = xcube.spectrum(detector, backscal="detector", region=INSIDE_REGION)
    assert s.attrs["backscal"] == math.pi * 1500**2  # unchanged: exact
    assert s.attrs["backscal_geometric"] == math.pi * 1500**2
    assert s.attrs["backscal_fraction"] == 1.0


def test_region_half_off_the_field_counts_only_its_part_on_the_detector(detector):
    on = _lens(EDGE[2], R_FOV)  # about 47 % of the circle
    with pytest.warns(UserWarning, match=r"circle\(21757.359.*only 4\d\.\d% of its area is on the detector"):
        s = xcube.spectrum(detector, backscal="detector", region=INSIDE_REGION, background=EDGE_REGION)
    assert s.attrs["backscal"] == math.pi * 1500**2
    assert s.attrs["bkg_backscal_geometric"] == pytest.approx(math.pi * 800**2)
    assert s.attrs["bkg_backscal"] == pytest.approx(on, rel=0.01)
    assert s.attrs["bkg_backscal_fraction"] == pytest.approx(on / (math.pi * 800**2), rel=0.01)
    # uniform events: the same counts per pixel^2 in both regions once BACKSCAL is the area on the detector
    s = s.compute()
    src = float(s.counts.sum()) / s.attrs["backscal"]
    bkg = float(s.bkg_counts.sum()) / s.attrs["bkg_backscal"]
    assert bkg == pytest.approx(src, rel=4 / math.sqrt(float(s.bkg_counts.sum())))


def test_region_straddling_the_chip_gap_leaves_the_gap_out(detector):
    region = "physical;box(26000,24000,1000,1000)"  # X 25500..26500: 200 of its 1000 pixels in the gap
    with pytest.warns(UserWarning, match=r"box\(26000,24000,1000,1000\).*on the detector"):
        s = xcube.spectrum(detector, backscal="detector", region=region)
    assert s.attrs["backscal_geometric"] == pytest.approx(1e6)
    assert s.attrs["backscal"] == pytest.approx(0.8e6, rel=0.005)


def test_a_few_stray_events_do_not_make_a_ccd(detector):
    """Ten events of a 'CCD 3' outside the field: too few for a hull. A region there was refused as 'outside
    the events' field'; it now keeps its geometric area, with a warning naming the CCD."""
    with pytest.warns(UserWarning, match=r"reaches CCD 3, which has fewer than 50 events"):
        s = xcube.spectrum(detector, backscal="detector", region="physical;circle(31250,31250,300)")
    assert s.attrs["backscal"] == pytest.approx(math.pi * 300**2) and "backscal_fraction" not in s.attrs
    with pytest.raises(ValueError, match="wholly off the detector: in a gap between CCDs"):
        xcube.spectrum(detector, backscal="detector", region="physical;box(26000,24000,100,100)")  # in the gap


def test_geometric_area_by_default_and_one_area_whatever_the_cut(detector):
    """BACKSCAL is the whole area unless asked for the detector's part; that part is the same for any energy
    filter or time range of the product (it changed with them: the footprint came from the cut events)."""
    s = xcube.spectrum(detector, region=INSIDE_REGION, background=EDGE_REGION)
    assert s.attrs["bkg_backscal"] == pytest.approx(math.pi * 800**2) and "bkg_backscal_fraction" not in s.attrs
    with pytest.raises(ValueError, match="backscal='area'"):
        xcube.spectrum(detector, region=INSIDE_REGION, backscal="area")
    ratios = []
    t0 = float(detector.attrs["tstart"])
    for kw in ({}, {"expr": "PI > 9000"}, {"time_range": (t0, t0 + 1000.0)}):
        with pytest.warns(UserWarning, match="of its area is on the detector"):
            lc = xcube.lightcurve(detector, 500.0, region=INSIDE_REGION, background=EDGE_REGION,
                                  backscal="detector", **kw)
        ratios.append(lc.attrs["backscal_ratio"])
    with pytest.warns(UserWarning, match="of its area is on the detector"):
        s = xcube.spectrum(detector, region=INSIDE_REGION, background=EDGE_REGION, backscal="detector",
                           expr="PI > 9000")
    ratios.append(s.attrs["backscal"] / s.attrs["bkg_backscal"])
    assert ratios == pytest.approx([ratios[0]] * 4, rel=1e-12)


def test_lightcurve_scales_the_background_by_the_areas_on_the_detector(detector):
    with pytest.warns(UserWarning, match="of its area is on the detector"):
        lc = xcube.lightcurve(detector, 2000.0, backscal="detector", region=INSIDE_REGION, background=EDGE_REGION)
    assert lc.attrs["bkg_backscal"] == pytest.approx(_lens(EDGE[2], R_FOV), rel=0.01)
    assert lc.attrs["bkg_backscal_geometric"] == pytest.approx(math.pi * 800**2)
    assert lc.attrs["backscal_ratio"] == pytest.approx(math.pi * 1500**2 / _lens(EDGE[2], R_FOV), rel=0.01)
    lc = lc.compute()
    # uniform events: the background scaled to the source area predicts the source counts, the net rate is ~0
    src, bkg = float(lc.counts.sum()), float(lc.bkg_counts.sum())
    assert lc.attrs["backscal_ratio"] * bkg == pytest.approx(src, rel=4 / math.sqrt(bkg))


def test_real_mos1_background_at_the_field_edge():
    ev = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"))
    area = math.pi * 3000**2
    s = xcube.spectrum(ev, backscal="detector", region="physical;circle(25921,25921,3000)")
    assert s.attrs["backscal"] == area and s.attrs["backscal_fraction"] == 1.0
    # the reproducer's circle at the edge: on the CCDs (all events, out-of-field corners included) about half of
    # it (0.44 on the reproducer's 250-pixel occupancy cells); with the standard screening (FLAG == 0 drops the
    # corners outside the field of view) only ~3 % (0.033 on those cells from the screened events)
    with pytest.warns(UserWarning, match=r"circle\(38500,38500,3000\).*on the detector"):
        raw = xcube.spectrum(ev, backscal="detector", region="physical;circle(38500,38500,3000)", screening=False)
    assert 0.42 < raw.attrs["backscal_fraction"] < 0.52
    assert raw.attrs["backscal"] == pytest.approx(area * raw.attrs["backscal_fraction"])
    with pytest.warns(UserWarning, match=r"circle\(38500,38500,3000\).*on the detector"):
        scr = xcube.spectrum(ev, backscal="detector", region="physical;circle(38500,38500,3000)")
    assert 0.015 < scr.attrs["backscal_fraction"] < 0.05
    with pytest.warns(UserWarning, match=r"circle\(37500,13500,3000\).*on the detector"):
        mid = xcube.spectrum(ev, backscal="detector", region="physical;circle(37500,13500,3000)")
    assert 0.48 < mid.attrs["backscal_fraction"] < 0.58


def test_pha_files_record_the_whole_area_and_the_part_on_the_detector(detector, tmp_path):
    """BACKSCAL is the area on the detector: the PHA headers say so and keep the whole area and the fraction
    (GEOMAREA, AREAFRAC), which read_spectrum gives back."""
    from astropy.io import fits

    with pytest.warns(UserWarning, match="only 4"):
        s = xcube.spectrum(detector, backscal="detector", region=INSIDE_REGION, background=EDGE_REGION).compute()
    path = tmp_path / "s.pha"
    xcube.write_spectrum(path, s)
    bkg = fits.getheader(tmp_path / "s_bkg.pha", 1)
    assert bkg["GEOMAREA"] == pytest.approx(math.pi * 800**2) and bkg["AREAFRAC"] < 0.5
    assert bkg["BACKSCAL"] == pytest.approx(bkg["GEOMAREA"] * bkg["AREAFRAC"])
    assert "on the detector" in bkg.comments["BACKSCAL"]
    back = xcube.read_spectrum(path)
    assert back.attrs["backscal_fraction"] == 1.0
    assert back.attrs["bkg_backscal_fraction"] == pytest.approx(s.attrs["bkg_backscal_fraction"])
    assert back.attrs["bkg_backscal_geometric"] == pytest.approx(s.attrs["bkg_backscal_geometric"])


def test_command_line_backscal_detector(detector, tmp_path):
    from astropy.io import fits

    from xcube.cli import main

    src = detector.attrs["source"]
    args = ["spectrum", src, "--region", INSIDE_REGION, "--background", EDGE_REGION, "--out", str(tmp_path / "s.pha")]
    assert main(args) == 0
    assert "AREAFRAC" not in fits.getheader(tmp_path / "s_bkg.pha", 1)  # the whole area by default
    with pytest.warns(UserWarning, match="of its area is on the detector"):
        assert main(args + ["--backscal", "detector", "--overwrite"]) == 0
    assert fits.getheader(tmp_path / "s_bkg.pha", 1)["AREAFRAC"] < 0.5
    with pytest.warns(UserWarning, match="of its area is on the detector"):
        assert main(["lc", src, "--time-bin", "100", "--region", INSIDE_REGION, "--background", EDGE_REGION,
                     "--backscal", "detector", "--out", str(tmp_path / "s.lc")]) == 0


def test_regions_does_not_import_select():
    """Layering: xcube.regions (shapes, areas, footprints) sits below xcube.select, which imports it; the
    footprint of the screened events is built above (xcube.select.screened_footprint), not in regions."""
    import ast
    from pathlib import Path

    import xcube.regions

    tree = ast.parse(Path(xcube.regions.__file__).read_text())
    found = []
    for node in ast.walk(tree):  # module level and inside functions
        if isinstance(node, ast.ImportFrom):
            name = "." * node.level + (node.module or "")
            if name in (".select", "xcube.select") or (name in (".", "xcube")
                                                       and any(a.name == "select" for a in node.names)):
                found.append(f"line {node.lineno}: from {name} import ...")
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name == "xcube.select"]
    assert not found, found


def test_region_areas_on_the_screened_footprint_as_the_products(detector):
    """region_areas(backscal="detector") takes the footprint (xcube.select.screened_footprint) and gives the
    products' BACKSCAL; without it, a clear error instead of a guess."""
    from xcube.regions import region_areas
    from xcube.select import screened_footprint

    with pytest.raises(TypeError, match=r"needs footprint=.*screened_footprint"):
        region_areas(detector, INSIDE_REGION, backscal="detector")
    assert region_areas(detector, INSIDE_REGION, footprint=None) == {"backscal": math.pi * 1500**2}
    with pytest.warns(UserWarning, match="of its area is on the detector"):
        areas = region_areas(detector, INSIDE_REGION, EDGE_REGION, backscal="detector",
                             footprint=screened_footprint(detector))
    with pytest.warns(UserWarning, match="of its area is on the detector"):
        s = xcube.spectrum(detector, region=INSIDE_REGION, background=EDGE_REGION, backscal="detector",
                           expr="PI > 9000")
    assert areas == {k: v for k, v in s.attrs.items() if "backscal" in k and k != "backscal_ratio"}
