"""An energy band applied by ``select`` is the band of the products made from
those events: ``select(ev, energy_band=(0.5, 2))`` then a 0.5-10 keV light
curve holds 0.5-2 keV counts and is labelled 0.5-2 keV (E_MIN/E_MAX,
CHANMIN/CHANMAX), with a warning naming the file and both bands; a band that
misses the cut raises; the search reports the band it really searched."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from astropy.io import fits

import xcube
from xcube.io.ogip import write_lightcurve


@pytest.fixture
def ev(make_event_file):
    """MOS1-like events, PI uniform over 200-12000 (0.2-12 keV), 2000 s."""
    return xcube.open_events(make_event_file(n=6000, duration=2_000.0, name="mos1_band.fits"))


@pytest.fixture
def cut(ev):
    """The README quick tour's cut: 0.5-2 keV."""
    return xcube.select(ev, energy_band=(0.5, 2.0))


def _narrowing(caplog) -> list:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "already cut" in r.getMessage()]


def test_select_records_the_band_it_applied(ev, cut):
    assert "energy_band" not in ev.attrs
    assert cut.attrs["energy_band"] == [0.5, 2.0]
    assert xcube.select(cut, energy_band=(1.0, 5.0)).attrs["energy_band"] == [1.0, 2.0]  # intersected
    assert xcube.select(cut, expr="PATTERN <= 4").attrs["energy_band"] == [0.5, 2.0]  # kept by other cuts


def test_readme_pattern_lightcurve_is_labelled_with_the_cut_band(ev, cut, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="xcube"):
        lc = xcube.lightcurve(cut, 100.0, energy_band=(0.5, 10.0), screening=False)
    msgs = _narrowing(caplog)
    assert len(msgs) == 1 and "mos1_band.fits" in msgs[0] and "0.5-10" in msgs[0] and "0.5-2" in msgs[0]
    pi = ev["pi"].values
    assert int(lc["counts"].sum()) == int(np.count_nonzero((pi >= 500) & (pi < 2000)))
    assert lc.attrs["energy_band"] == [0.5, 2.0]
    assert lc.attrs["pi_band"] == [500, 1999]
    path = write_lightcurve(tmp_path / "cut.lc", lc)
    with fits.open(path) as hdul:
        h = hdul[1].header
        assert (h["E_MIN"], h["E_MAX"], h["CHANMIN"], h["CHANMAX"]) == (0.5, 2.0, 500, 1999)


def test_no_band_asked_takes_the_cut_band_without_warning(cut, caplog):
    with caplog.at_level(logging.WARNING, logger="xcube"):
        lc = xcube.lightcurve(cut, 100.0, screening=False)
    assert not _narrowing(caplog)
    assert lc.attrs["energy_band"] == [0.5, 2.0]
    assert lc.attrs["pi_band"] == [500, 1999]


def test_multi_band_lightcurve_bands_are_narrowed(cut, caplog):
    with caplog.at_level(logging.WARNING, logger="xcube"):
        lc = xcube.lightcurve(cut, 100.0, energy_band=[(0.5, 1.0), (1.0, 10.0)], screening=False)
    assert list(lc["band"].values) == ["0.5-1keV", "1-2keV"]
    assert lc.attrs["energy_band"] == [[0.5, 1.0], [1.0, 2.0]]
    assert lc.attrs["pi_band"] == [[500, 999], [1000, 1999]]
    assert len(_narrowing(caplog)) == 1  # the second band only


def test_power_spectrum_and_image_are_labelled_with_the_cut_band(cut, caplog):
    with caplog.at_level(logging.WARNING, logger="xcube"):
        pds = xcube.power_spectrum(cut, segment=200.0, dt=1.0, energy_band=(0.2, 12.0), screening=False)
        img = xcube.image(cut, 400.0, energy_band=(0.2, 12.0), screening=False)
    assert pds.attrs["energy_band"] == [0.5, 2.0]
    assert img.attrs["energy_band"] == [0.5, 2.0]
    assert img.attrs["pi_band"] == [500, 1999]
    assert len(_narrowing(caplog)) == 2


def test_a_band_outside_the_cut_raises(cut):
    for make in (lambda: xcube.lightcurve(cut, 100.0, energy_band=(2.0, 10.0), screening=False),
                 lambda: xcube.image(cut, 400.0, energy_band=(3.0, 10.0), screening=False),
                 lambda: xcube.power_spectrum(cut, segment=200.0, dt=1.0, energy_band=(2.0, 10.0))):
        with pytest.raises(ValueError, match=r"mos1_band\.fits.*2-10 keV.*0\.5-2 keV|mos1_band\.fits.*3-10 keV"):
            make()
    # select itself composes (no event left) and records the empty band; products of it raise
    none = xcube.select(cut, energy_band=(2.0, 10.0))
    assert none.sizes["event"] == 0 and none.attrs["energy_band"] == [2.0, 2.0]
    with pytest.raises(ValueError, match=r"mos1_band\.fits.*do not overlap"):
        xcube.lightcurve(none, 100.0, screening=False)


def test_search_on_cut_events_reports_the_band_it_searched(cut, caplog):
    with caplog.at_level(logging.WARNING, logger="xcube"):
        res = xcube.search_transients(cut, time_bin=100.0, energy_band=(0.2, 12.0), hygiene=False)
    assert res.params["energy_band"] == [0.5, 2.0]
    assert res.run_id.endswith("_100_0.5_2.0")
    assert _narrowing(caplog)
    assert any("bad-time-interval monitor" in r.getMessage() for r in caplog.records)  # 10-12 keV cut away
    default = xcube.search_transients(cut, time_bin=100.0, hygiene=False)  # default band 0.2-12 keV for XMM
    assert default.params["energy_band"] == [0.5, 2.0]
    assert default.run_id == res.run_id
    with pytest.raises(ValueError, match="mos1_band.fits"):
        xcube.search_transients(cut, time_bin=100.0, energy_band=(2.0, 12.0), hygiene=False)


def test_events_without_a_cut_are_unchanged(ev, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="xcube"):
        lc = xcube.lightcurve(ev, 100.0, energy_band=(0.5, 10.0), screening=False)
        plain = xcube.lightcurve(ev, 100.0, screening=False)
        res = xcube.search_transients(ev, time_bin=100.0, hygiene=False)
    assert not _narrowing(caplog)
    assert lc.attrs["energy_band"] == [0.5, 10.0] and lc.attrs["pi_band"] == [500, 9999]
    assert "energy_band" not in plain.attrs and "pi_band" not in plain.attrs
    assert res.params["energy_band"] == [0.2, 12.0]
    with fits.open(write_lightcurve(tmp_path / "plain.lc", lc)) as hdul:
        assert (hdul[1].header["E_MIN"], hdul[1].header["E_MAX"]) == (0.5, 10.0)


@pytest.mark.parametrize("expr, band", [
    ("PATTERN <= 12 && PI in [500:2000]", [0.5, 2.001]),  # PI 2000 in: the band holds its channel
    ("PI >= 500 && PI < 2000", [0.5, 2.0]),
    ("energy=0.5:2", [0.5, 2.0]),
    ("PATTERN <= 12 && ENERGY < 2 && PI > 799", [0.8, 2.0]),
    ("energy < 2", [0.0, 2.0]),  # (below MOS's calibrated 0.15 keV too: the expression keeps those events)
])
def test_an_energy_cut_in_the_expression_counts_as_a_band(ev, expr, band, tmp_path, caplog):
    """`xcube lc --expr 'PI>=500 && PI<2000' --energy 0.5 10` was labelled 0.5-10 keV: the expression's own
    PI/energy terms (top-level &&) now narrow the band like select(energy_band=) does, and the band holds
    exactly the events the expression keeps (the counts do not change)."""
    from xcube.select import expression_band

    assert expression_band(ev, expr) == pytest.approx(tuple(band))
    assert xcube.select(ev, expr=expr).attrs["energy_band"] == pytest.approx(band)
    with caplog.at_level(logging.WARNING, logger="xcube"):
        lc = xcube.lightcurve(ev, 100.0, energy_band=(0.5, 10.0), expr=expr, screening=False)
    assert lc.attrs["energy_band"] == pytest.approx([max(band[0], 0.5), band[1]])
    assert len(_narrowing(caplog)) == 1
    # the same events as the expression alone inside 0.5-10 keV
    alone = xcube.select(ev, expr=expr)
    e = alone["energy"].values
    assert int(lc["counts"].sum()) == int(np.count_nonzero((e >= np.float32(0.5)) & (e < np.float32(10.0))))
    if expr != "PI >= 500 && PI < 2000":
        return
    # the command line: --expr with --energy, the written file says the band really covered
    from xcube.cli import main

    out = tmp_path / "x.lc"
    assert main(["lc", str(ev.attrs["source"]), "--time-bin", "100", "--energy", "0.5", "10", "--expr", expr,
                 "--no-screen", "--out", str(out)]) == 0
    with fits.open(out) as hdul:
        assert (hdul[1].header["E_MIN"], hdul[1].header["E_MAX"]) == pytest.approx((max(band[0], 0.5), band[1]))


def test_an_inclusive_channel_edge_keeps_its_events(make_event_file):
    """PI in [500:2000] keeps PI 2000: the band derived from it must too ([0.5, 2.001) keV), or the light
    curve would lose the PI-2000 events the expression keeps."""
    pi = np.array([499, 500, 1000, 1999, 2000, 2000, 2001], np.int32)
    ev = xcube.open_events(make_event_file(n=pi.size, columns={"PI": pi}, name="edges.fits"))
    lc = xcube.lightcurve(ev, 1000.0, expr="PI in [500:2000]", screening=False)
    assert int(lc["counts"].sum()) == 5 and lc.attrs["energy_band"] == pytest.approx([0.5, 2.001])


def test_expressions_that_do_not_cut_the_band_leave_it(ev):
    from xcube.select import expression_band

    for expr in ("PATTERN <= 12", "PI > 500 || PATTERN == 0", "PI * 2 > 1000 && FLAG == 0", "PI >= 0",
                 "PI > 15000"):  # (the last: beyond MOS's calibrated range, an empty selection, no band to tell)
        assert expression_band(ev, expr) is None, expr
        assert "energy_band" not in xcube.select(ev, expr=expr).attrs, expr
    assert expression_band(ev, "PI < 100 && PI > 200") == (0.0, 0.0)  # nothing passes
