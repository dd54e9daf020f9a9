"""Event selection review p22: the energy band an expression of single PI
channels or energies records, a region after an earlier selection, region
files whose name holds "(", and the messages of edge cases (empty region,
ellipse without angle, BOM, missing ')', calendar-date GTIs, empty band)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import real_file

import xcube
from xcube.regions import pixel_region
from xcube.select import expression_band

PI = np.array([499, 500, 700, 1000, 1001, 1200, 1500, 1500, 1501, 2000, 2000, 2001], np.int16)


@pytest.fixture
def ev(make_event_file):
    """MOS1-like events at the PI channels of ``PI`` (energy = PI / 1000 keV, float32)."""
    return xcube.open_events(make_event_file(n=PI.size, columns={"PI": PI}, name="channels.fits"))


def _counts(sel) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return int(xcube.lightcurve(sel, 1000.0, screening=False)["counts"].sum())


@pytest.mark.parametrize("expr, kept, band", [
    ("PI in [500:1000, 1500]", 5, [0.5, 1.501]),  # a range and a channel: the span of both
    ("PI == 1000", 1, [1.0, 1.001]),  # a single channel is a whole channel's band
    ("PI in [1000, 2000]", 3, [1.0, 2.001]),  # channels only: their span
    ("pi=1000", 1, [1.0, 1.001]),  # CIAO
    ("PATTERN <= 12 && PI == 1000", 1, [1.0, 1.001]),
    ("PI in [500:1000, 1500] && PI != 700", 4, [0.5, 1.501]),
    ("PI in (499:1000]", 3, [0.5, 1.001]),
])
def test_single_channels_are_in_the_recorded_band(ev, expr, kept, band):
    """PI in [500:1000, 1500] recorded 0.5-1.001 keV (the light curve lost the PI 1500 events) and PI == 1000
    recorded [0, 0] (the products refused: "no event is left"). The band now holds every channel that passes,
    so the products count exactly the events select kept."""
    sel = xcube.select(ev, expr=expr)
    assert sel.sizes["event"] == kept
    assert expression_band(ev, expr) == pytest.approx(tuple(band))
    assert sel.attrs["energy_band"] == pytest.approx(band)
    assert _counts(sel) == kept
    assert int(xcube.lightcurve(ev, 1000.0, expr=expr, screening=False)["counts"].sum()) == kept


@pytest.mark.parametrize("expr, kept", [
    ("energy == 1.0", 1),
    ("energy <= 2.0", 11),  # (the float32 energies at 2.0 keV: a float64 edge above 2.0 rounded back to 2.0)
    ("energy in [0.5:1.0, 1.5]", 5),
    ("energy > 0.5 && energy <= 1.5", 6),
    ("energy >= 1.1 && energy < 1.5", 1),  # 1.1 is not a float32: the column's comparison rounds it
])
def test_energy_points_and_closed_edges_keep_their_events(ev, expr, kept):
    sel = xcube.select(ev, expr=expr)
    assert sel.sizes["event"] == kept
    lo, hi = sel.attrs["energy_band"]
    assert lo < hi
    assert _counts(sel) == kept


def test_a_spectrum_of_channels_and_a_range_keeps_every_event(ev):
    sel = xcube.select(ev, expr="PI in [500:1000, 1500]")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sp = xcube.spectrum(sel, screening=False, channel_bin=1)  # (grouped channels keep whole ones only)
    assert int(sp["counts"].sum()) == 5


def test_an_expression_that_leaves_no_energy_says_so(ev):
    """expr='PI < 100 && PI > 200' (nothing passes): the products' refusal named 'energy bands that do not
    overlap', though no band was given; it now names the energy cut of the filter expression. PI < 0 (no
    channel of the profile) records no band: its products are empty, as for any empty selection."""
    sel = xcube.select(ev, expr="PI < 100 && PI > 200")
    assert sel.sizes["event"] == 0 and sel.attrs["energy_band"] == [0.0, 0.0]
    with pytest.raises(ValueError, match=r"energy cuts made \(expr=PI < 100 && PI > 200\) leave no energy.*"
                                         r"no event is left"):
        xcube.lightcurve(sel, 1000.0, screening=False)
    with pytest.raises(ValueError, match=r"energy cuts made \(expr=PI < 100 && PI > 200\) leave no energy"):
        xcube.lightcurve(ev, 1000.0, expr="PI < 100 && PI > 200", screening=False)
    none = xcube.select(ev, expr="PI < 0")
    assert none.sizes["event"] == 0 and "energy_band" not in none.attrs
    assert _counts(none) == 0


def test_real_mos1_channels_and_range_count_as_numpy():
    from astropy.io import fits

    path = real_file("xmm", "P0001730201M1S002MIEVLI.FTZ")
    with fits.open(path) as hdul:
        pi = np.asarray(hdul["EVENTS"].data["PI"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = xcube.open_events(path)
        for expr, ref in [("PI in [500:1000, 1500]", ((pi >= 500) & (pi <= 1000)) | (pi == 1500)),
                          ("PI == 1000", pi == 1000)]:
            sel = xcube.select(ev, expr=expr)
            assert sel.sizes["event"] == int(ref.sum())
            assert int(xcube.lightcurve(sel, 1000.0, screening=False)["counts"].sum()) == int(ref.sum())


# --------------------------------------------------------------------------- a region after a selection


def test_a_region_after_a_selection_is_checked_against_the_field(make_event_file):
    """select(select(ev, expr=A), region=R) raised "lies outside the events' field" when R missed the events A
    left; the one-call form gave 0 events. The field is the observation's, not the survivors' extent."""
    x = np.array([20000, 20010, 31000, 31010], np.int32)
    y = np.array([20000, 20010, 31000, 31010], np.int32)
    ev = xcube.open_events(make_event_file(n=4, columns={"X": x, "Y": y, "CCDNR": np.array([1, 1, 2, 2], np.uint8)},
                                           name="two_ccds.fits"))
    reg = "physical;circle(31000,31000,100)"
    assert xcube.select(ev, expr="CCDNR == 1", region=reg).sizes["event"] == 0
    first = xcube.select(ev, expr="CCDNR == 1")
    assert xcube.select(first, region=reg).sizes["event"] == 0
    assert xcube.select(first.compute(), region=reg).sizes["event"] == 0  # numpy columns too
    assert xcube.select(xcube.select(ev, expr="CCDNR == 2"), region=reg).sizes["event"] == 2
    # a region outside the column range (TLMIN/TLMAX, attrs x_min...) is still refused; without them, no check
    far = "physical;circle(90000,90000,100)"
    assert xcube.select(first, region=far).sizes["event"] == 0
    tl = first.assign_attrs(x_min=1.0, x_max=51840.0, y_min=1.0, y_max=51840.0)
    assert xcube.select(tl, region=reg).sizes["event"] == 0
    with pytest.raises(ValueError, match=r"lies outside the events' field.* X 1\.\.51840"):
        xcube.select(tl, region=far)
    # and on events not selected before, the events' own extent is the field, as before
    with pytest.raises(ValueError, match="lies outside the events' field"):
        xcube.select(ev, region="physical;circle(10000,10000,100)")


# --------------------------------------------------------------------------- region inputs


def test_a_region_file_whose_name_holds_a_parenthesis_is_read_as_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rf").mkdir()
    (tmp_path / "rf" / "src(1).reg").write_text("physical\ncircle(26000,26000,400)\n")
    rs = pixel_region("rf/src(1).reg")
    assert float(rs.include[0].radius) == 400 and "src(1).reg" in rs.description
    with pytest.raises(FileNotFoundError, match=r"region file rf/src\(2\)\.reg not found"):
        pixel_region("rf/src(2).reg")


def test_an_empty_region_string_is_a_clear_error():
    for text in ("", "   "):
        with pytest.raises(ValueError, match="region is an empty string"):
            pixel_region(text)


def test_an_ellipse_without_angle_has_angle_zero():
    rs = pixel_region("physical;ellipse(24440,23920,600,300)")
    assert float(rs.include[0].angle.value) == 0.0 and float(rs.include[0].width) == 1200
    annulus = pixel_region("physical;ellipse(24440,23920,300,150,600,300)")
    assert annulus.contains(np.array([24440 + 400.0, 24440.0]), np.array([23920.0, 23920.0])).tolist() == [True,
                                                                                                             False]
    box = pixel_region("physical;box(24440,23920,300,150,600,300)")
    assert box.contains(np.array([24440 + 200.0, 24440.0]), np.array([23920.0, 23920.0])).tolist() == [True, False]


def test_a_region_file_with_a_bom_is_read(tmp_path):
    """A UTF-8 byte-order mark (as Windows editors save files) was read as part of the first line."""
    g = tmp_path / "bom_phys.reg"
    g.write_bytes("\ufeffphysical\ncircle(26000,26000,400)\n".encode("utf-8"))
    rs = pixel_region(g)
    assert float(rs.include[0].radius) == 400


def test_a_missing_closing_parenthesis_is_refused():
    with pytest.raises(ValueError, match=r"circle\(24440,23920,600.*no closing '\)'"):
        pixel_region("physical;circle(24440,23920,600")


def test_a_missing_closing_parenthesis_in_a_file_names_it(tmp_path):
    f = tmp_path / "open.reg"
    f.write_text("physical\ncircle(24440,23920,600\n")
    with pytest.raises(ValueError, match=r"open\.reg.*no closing '\)'"):
        pixel_region(f)


# --------------------------------------------------------------------------- GTIs as dates


def test_calendar_dates_as_gti_are_a_clear_error(make_event_file):
    ev = xcube.open_events(make_event_file(n=10))
    for g in [("2001-03-09T13:00:00", "2001-03-09T14:00:00"), [("2001-03-09T13:00:00", "2001-03-09T14:00:00")],
              (np.datetime64("2001-03-09T13:00:00"), np.datetime64("2001-03-09T14:00:00"))]:
        with pytest.raises(TypeError, match=r"seconds of mission time.*MJDREF"):
            xcube.select(ev, gti=g)


def test_an_expression_band_reaching_below_the_calibrated_range_keeps_its_events(make_event_file):
    """PI <= 2000 keeps PI 0-149 (below MOS's calibrated 0.15 keV): the recorded band must hold them, or a light
    curve of the selection loses them (it was clipped to 0.15-2.001 keV)."""
    pi = np.arange(0, 3000, 3).astype(np.int16)
    ev = xcube.open_events(make_event_file(n=pi.size, columns={"PI": pi}))
    sel = xcube.select(ev, expr="PI <= 2000")
    assert sel.attrs["energy_band"] == pytest.approx([0.0, 2.001])
    lc = xcube.lightcurve(sel, 1000.0, screening=False)
    assert int(lc["counts"].sum()) == int(np.count_nonzero(pi <= 2000)) == sel.sizes["event"]
