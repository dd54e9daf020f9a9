"""Energy bands handed to SAS tasks are xcube's half-open ``[emin, emax)``:
the evselect band expression of an image selects exactly the events
``xcube.select(energy_band=...)`` keeps, adjacent bands share no event,
eexpmap gets the same PI limits; the pn flare-rate band is the SAS thread's
strict ``PI > 10000 && PI < 12000``; a GTI path that a selectlib expression
cannot hold unquoted is refused."""
from __future__ import annotations

import numpy as np
import pytest

import xcube
from xcube.tools import sas
from xcube.tools import sas_products as sp

# PI on and next to every edge of the bands below, plus a spread of others
EDGES = [199, 200, 201, 499, 500, 501, 550, 551, 1999, 2000, 2001, 2049, 2050, 9999, 10000, 10001, 11999, 12000]


def _events(make_event_file, instrument):
    n = 4000
    pi = np.concatenate([np.repeat(np.array(EDGES, np.int16), 50),
                         np.random.default_rng(1).integers(150, 12001, n - 50 * len(EDGES)).astype(np.int16)])
    path = make_event_file(n=n, columns={"PI": pi, "PATTERN": np.zeros(n, np.uint8)},
                           header={"INSTRUME": {"pn": "EPN", "mos1": "EMOS1"}[instrument]})
    return xcube.open_events(path)


@pytest.mark.parametrize("instrument", ["mos1", "pn"])
def test_band_expression_selects_energy_band_events(make_event_file, tmp_path, instrument):
    ev = _events(make_event_file, instrument)
    bands = [(0.5, 2.0), (2.0, 10.0), (0.55, 2.05), (0.5005, 2.0005), (0.2, 0.5)]
    for band in bands:
        expr = sp.band_image(tmp_path / "ev.fits", tmp_path / "img.fits", instrument, band).params["expression"]
        by_expr = xcube.select(ev, expr=expr)["time"].values
        by_band = xcube.select(ev, energy_band=band, expr=sp._screening(instrument))["time"].values
        assert np.array_equal(np.sort(by_expr), np.sort(by_band)), (band, expr)
    assert sas.pi_range(instrument, (0.5, 2.0)) == (500, 1999)
    assert sas.pi_range(instrument, (0.5005, 2.0005)) == (501, 2000)
    # the default bands tile 0.5-10 keV: no event in both, none lost
    parts = [xcube.select(ev, expr=sp.band_image(tmp_path / "ev.fits", tmp_path / "i.fits", instrument, b)
                          .params["expression"])["time"].values for b in sp.IMAGE_BANDS]
    assert not np.intersect1d(parts[0], parts[1]).size
    whole = xcube.select(ev, energy_band=(0.5, 10.0), expr=sp._screening(instrument))
    assert len(parts[0]) + len(parts[1]) == whole.sizes["event"]


def test_eexpmap_and_cleaning_use_the_same_half_open_band(tmp_path):
    exp = sas.eexpmap(tmp_path / "i.fits", tmp_path / "att.fits", tmp_path / "ev.fits", tmp_path / "x.fits",
                      tmp_path / "ccf.cif", energy_band=(0.5, 2.0), instrument="mos1")
    assert (exp.params["pimin"], exp.params["pimax"]) == (500, 1999)
    img = sp.band_image(tmp_path / "ev.fits", tmp_path / "img.fits", "mos1", (0.5, 2.0))
    assert img.params["expression"].endswith("(PI in [500:1999])")
    assert "(PI in [500:1999])" in sas.cleaning_expression("mos1", energy_band=(0.5, 2.0))


def test_pn_flare_rate_band_is_strict_as_in_the_sas_thread(tmp_path):
    # SAS thread "filter EPIC event lists for flaring particle background": pn (PI>10000&&PI<12000), MOS (PI>10000)
    rate, _ = sas.flare_gti(tmp_path / "ev.fits", tmp_path, "pn")
    assert "(PI > 10000 && PI < 12000)" in rate.params["expression"]
    rate, _ = sas.flare_gti(tmp_path / "ev.fits", tmp_path, "mos2")
    assert "(PI > 10000)" in rate.params["expression"]


@pytest.mark.parametrize("bad", ["w s", "a,b", "a(b)", "a[1]", "a:b", "a'b", 'a"b', "a&b", "a|b", "a#b"])
def test_gti_path_the_expression_cannot_hold_is_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="gti.*cannot hold"):
        sas.cleaning_expression("pn", gti=tmp_path / bad / "flare-gti.fits")


def test_gti_path_of_ordinary_characters_is_kept(tmp_path):
    g = tmp_path / "obs_0123-4+5.v2" / "pnS003-gti.fits"
    assert f"gti({g},TIME)" in sas.cleaning_expression("pn", gti=g)


def test_default_cleaning_band_is_the_sas_threads_inclusive_range(tmp_path):
    # SAS thread "filter EPIC event lists for flaring particle background": pn PI in [200:15000], MOS [200:12000]
    assert "(PI in [200:15000])" in sas.cleaning_expression("pn")
    assert "(PI in [200:12000])" in sas.cleaning_expression("mos1")


def test_gti_path_with_a_space_is_named_relative_to_the_task_directory(tmp_path):
    d = tmp_path / "my obs" / "pn"
    g = d / "pnS003-gti.fits"
    e = sas.cleaning_expression("pn", gti=g, cwd=d)
    assert "gti(pnS003-gti.fits,TIME)" in e
    e = sas.cleaning_expression("pn", gti=d / "flare" / "g.fits", cwd=d)
    assert "gti(flare/g.fits,TIME)" in e
    with pytest.raises(ValueError, match="cannot hold"):  # the relative name would hold the space too
        sas.cleaning_expression("pn", gti=tmp_path / "my obs" / "g.fits", cwd=tmp_path / "other")
