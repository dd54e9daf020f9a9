"""A spectrum of events already cut to an energy band (``select(energy_band=)``
or a PI/energy term of ``expr``) treats the band as ``pi_range`` treats its
range: channels not wholly inside it hold 0 counts with QUALITY 1 (bad), and
the band is recorded (attrs ``energy_band``/``pi_band``, E_MIN/E_MAX). They
used to be written as good zero-count channels, and the edge channels held
only part of their PI values (MOS 0.5-2 keV: channel 33 PI 500-509 of
495-509), with ``pi_range`` saying 0-11999."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from astropy.io import fits

import xcube
from xcube.io.ogip import write_spectrum

MOS_CB = 15
GOOD = (34, 132)  # the MOS channels (15 PI) wholly inside PI 500-1999: PI 510-1994


@pytest.fixture
def ev(make_event_file):
    """MOS1-like events, PI uniform over 200-12000 (0.2-12 keV)."""
    return xcube.open_events(make_event_file(n=6000, duration=2_000.0, name="mos1_cut.fits"))


def _narrowing(caplog) -> list:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "already cut" in r.getMessage()]


def _check_band_spectrum(sp, ev, band=(0.5, 2.0), pis=(500, 1999)):
    chan = sp["channel"].values
    good = (chan >= GOOD[0]) & (chan <= GOOD[1])
    assert sp.sizes["channel"] == 800  # the RMF's grid is kept
    np.testing.assert_array_equal(sp["quality"].values, np.where(good, 0, 1))
    counts = sp["counts"].values
    assert not counts[~good].any()
    pi = ev["pi"].values
    expected = np.bincount(pi[(pi >= GOOD[0] * MOS_CB) & (pi < (GOOD[1] + 1) * MOS_CB)] // MOS_CB, minlength=800)
    np.testing.assert_array_equal(counts, expected)  # whole channels only: no edge channel of part of its PI
    assert sp.attrs["energy_band"] == pytest.approx(list(band))
    assert sp.attrs["pi_band"] == list(pis)
    assert sp.attrs["pi_range"] == (GOOD[0] * MOS_CB, (GOOD[1] + 1) * MOS_CB - 1)


def test_spectrum_of_select_energy_band_marks_the_channels_outside_bad(ev, tmp_path, caplog):
    cut = xcube.select(ev, energy_band=(0.5, 2.0))
    with caplog.at_level(logging.WARNING, logger="xcube"):
        sp = xcube.spectrum(cut, screening=False).compute()
    assert not _narrowing(caplog)  # nothing asked beyond the default grid, as a light curve without a band
    _check_band_spectrum(sp, ev)
    # the same as pi_range on the uncut events, rounded to the whole channels inside the band
    ref = xcube.spectrum(ev, pi_range=(510, 1994), screening=False).compute()
    np.testing.assert_array_equal(sp["counts"].values, ref["counts"].values)
    np.testing.assert_array_equal(sp["quality"].values, ref["quality"].values)
    out = write_spectrum(tmp_path / "cut.pha", sp)
    with fits.open(out) as h:
        hdr, d = h["SPECTRUM"].header, h["SPECTRUM"].data
        assert (hdr["E_MIN"], hdr["E_MAX"]) == (0.5, 2.0)
        bad = (d["CHANNEL"] < GOOD[0]) | (d["CHANNEL"] > GOOD[1])
        assert (d["QUALITY"][bad] == 1).all() and (d["QUALITY"][~bad] == 0).all()


@pytest.mark.parametrize("expr, band, pis", [
    ("PI in [500:1999]", (0.5, 2.0), (500, 1999)),
    ("PATTERN <= 12 && PI >= 500 && PI < 2000", (0.5, 2.0), (500, 1999)),
    ("energy=0.5:2", (0.5, 2.0), (500, 1999)),
    ("PI in [500:2000]", (0.5, 2.001), (500, 2000)),  # PI 2000 alone in channel 133 (PI 1995-2009): still bad
])
def test_spectrum_with_a_band_cut_in_expr(ev, expr, band, pis, tmp_path):
    sp = xcube.spectrum(ev, expr=expr, screening=False).compute()
    _check_band_spectrum(sp, ev, band, pis)
    with fits.open(write_spectrum(tmp_path / "expr.pha", sp)) as h:
        assert (h["SPECTRUM"].header["E_MIN"], h["SPECTRUM"].header["E_MAX"]) == pytest.approx(band)


def test_a_pi_range_asked_is_narrowed_with_a_warning(ev, caplog):
    cut = xcube.select(ev, energy_band=(0.5, 2.0))
    with caplog.at_level(logging.WARNING, logger="xcube"):
        sp = xcube.spectrum(cut, pi_range=(300, 1499), screening=False)
    msgs = _narrowing(caplog)
    assert len(msgs) == 1 and "mos1_cut.fits" in msgs[0] and "0.5-2 keV" in msgs[0] and "300-1499" in msgs[0]
    assert sp.attrs["pi_range"] == (510, 1499)
    q = sp["quality"].values
    assert np.flatnonzero(q == 0).tolist() == list(range(34, 100))
    with caplog.at_level(logging.WARNING, logger="xcube"):  # a range inside the band: nothing narrowed, no warning
        inner = xcube.spectrum(cut, pi_range=(600, 1499), screening=False)
    assert len(_narrowing(caplog)) == 1 and inner.attrs["pi_range"] == (600, 1499)


def test_a_band_without_a_whole_channel_or_outside_pi_range_raises(ev):
    thin = xcube.select(ev, energy_band=(0.5, 0.51))  # PI 500-509: part of channel 33 only
    with pytest.raises(ValueError, match=r"mos1_cut\.fits.*0\.5-0\.51 keV.*no whole channel of 15 PI"):
        xcube.spectrum(thin, screening=False)
    assert xcube.spectrum(thin, channel_bin=1, pi_range=(0, 15000), screening=False).attrs["pi_range"] == (500, 509)
    with pytest.raises(ValueError, match=r"mos1_cut\.fits.*0\.5-2 keV.*pi_range"):
        xcube.spectrum(xcube.select(ev, energy_band=(0.5, 2.0)), pi_range=(3000, 5000), screening=False)


def test_uncut_events_are_unchanged(ev):
    sp = xcube.spectrum(ev, screening=False)
    assert "quality" not in sp and "energy_band" not in sp.attrs and "pi_band" not in sp.attrs
    assert sp.attrs["pi_range"] == (0, 11999)
    assert int(sp["counts"].sum()) == ev.sizes["event"]
