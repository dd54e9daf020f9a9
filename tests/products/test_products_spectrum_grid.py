"""Spectra on the instrument's channel grid: whole channels, DETCHANS and
TLMIN/TLMAX of the mission's RMF, SPECDELT/SPECPIX/SPECVAL, the NICER and
MOS PI ranges, and the PHA writer's errors."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from conftest import real_file

import xcube
from xcube.io.ogip import read_spectrum, write_spectrum
from xcube.io.write_events import write_events_fits
from xcube.missions import get_profile

MOS1_CLEAN = ("xmm", "xga_0201901401_mos1_exp1_clean_evts.fits")
SRC = "physical;circle(25921,25921,2000)"


def _nicer_file(tmp_path, n=2000, seed=3):
    rng = np.random.default_rng(seed)
    t0 = 1.0e8
    cols = {"TIME": np.sort(rng.uniform(t0, t0 + 1000.0, n)), "PI": rng.integers(0, 1501, n).astype(np.int16),
            "DET_ID": rng.integers(0, 67, n).astype(np.uint8)}
    hdr = {"TELESCOP": "NICER", "INSTRUME": "XTI", "MJDREFI": 56658, "MJDREFF": 7.775925925925930e-4,
           "TIMESYS": "TT", "TSTART": t0, "TSTOP": t0 + 1000.0}
    return write_events_fits(tmp_path / "ni.evt", cols, header=hdr, gti=([t0], [t0 + 1000.0])), cols["PI"]


# --------------------------------------------------------------------------- mission PI ranges


def test_nicer_spectrum_has_the_1501_channels_of_the_caldb_rmf(tmp_path):
    path, pi = _nicer_file(tmp_path)
    assert get_profile("nicer-xti").pi_range == (0, 1500)
    sp = xcube.spectrum(xcube.open_events(path))
    assert sp.sizes["channel"] == 1501 and sp.attrs["channel_range"] == (0, 1500)
    np.testing.assert_array_equal(sp["counts"].values, np.bincount(pi, minlength=1501))
    out = write_spectrum(tmp_path / "ni.pha", sp)
    h = fits.getheader(out, "SPECTRUM")
    assert (h["DETCHANS"], h["TLMIN1"], h["TLMAX1"]) == (1501, 0, 1500)
    assert len(fits.getdata(out, "SPECTRUM")) == 1501


def test_mos_pi_range_is_its_own_not_pns(make_event_file):
    mos, pn = get_profile("xmm-mos1"), get_profile("xmm-pn")
    assert mos.pi_range == (0, 15000) and get_profile("xmm-mos2").pi_range == (0, 15000)  # TLMAX of MOS PI
    assert pn.pi_range == (0, 20479) and pn.spectral_grid == (0, 20479, 5)
    assert mos.spectral_grid == (0, 11999, 15)
    ev = xcube.open_events(make_event_file(n=500))
    assert xcube.spectrum(ev).sizes["channel"] == 800  # the standard MOS grid
    sp = xcube.spectrum(ev, channel_bin=10)  # another binning: MOS's PI range, not up to 20479
    assert sp.sizes["channel"] == 1501 and sp.attrs["channel_range"] == (0, 1500)
    # not the spectral grid's 11999: MOS PI reaches 15000, and the energy binning drops PI beyond pi_range,
    # so an energy axis to 15 keV keeps the events above 12 keV
    pi = np.r_[np.full(10, 5000), np.full(7, 12500), np.full(3, 14999)].astype(np.int16)
    ev = xcube.open_events(make_event_file(n=pi.size, columns={"PI": pi}))
    from xcube.binning import Axis

    ax = Axis.from_edges("energy", np.array([2.0, 10.0, 15.0]), units="keV", column="energy")
    np.testing.assert_array_equal(xcube.bin_events(ev, energy=ax).values, [10, 10])


# --------------------------------------------------------------------------- whole channels, the full grid


def test_pi_range_off_the_grid_is_rounded_outward_and_written_on_the_whole_grid(make_event_file, tmp_path):
    rng = np.random.default_rng(5)
    pi = rng.integers(0, 12000, 20_000).astype(np.int16)
    ev = xcube.open_events(make_event_file(n=pi.size, columns={"PI": pi}))
    sp = xcube.spectrum(ev, pi_range=(500, 10000), screening=False).compute()  # MOS: 15 PI per channel
    # channel 33 holds PI 495-509 and channel 666 PI 9990-10004 in the MOS RMF: both whole
    assert sp.attrs["pi_range"] == (495, 10004) and sp.attrs["channel_range"] == (0, 799)
    assert sp.sizes["channel"] == 800
    inside = (sp.channel.values >= 33) & (sp.channel.values <= 666)
    full = np.bincount(pi // 15, minlength=800)
    np.testing.assert_array_equal(sp["counts"].values, np.where(inside, full, 0))
    np.testing.assert_array_equal(sp["quality"].values, np.where(inside, 0, 1))
    out = write_spectrum(tmp_path / "pr.pha", sp)
    h = fits.getheader(out, "SPECTRUM")
    d = fits.getdata(out, "SPECTRUM")
    assert (h["DETCHANS"], h["TLMIN1"], h["TLMAX1"]) == (800, 0, 799)
    np.testing.assert_array_equal(d["CHANNEL"], np.arange(800))
    np.testing.assert_array_equal(d["QUALITY"], np.where(inside, 0, 1))
    assert d["COUNTS"][33] == full[33] and d["COUNTS"][666] == full[666]  # not a partial channel
    grouped = xcube.spectrum(ev, pi_range=(500, 10000), screening=False, group_min=20)
    assert np.all(grouped["quality"].values[~inside] == 1) and np.all(grouped["grouping"].values[~inside] == 1)


def test_a_sliced_spectrum_is_written_with_every_channel_of_its_grid(make_event_file, tmp_path):
    ev = xcube.open_events(make_event_file(n=3000))
    sp = xcube.spectrum(ev, screening=False).compute()
    part = sp.isel(channel=slice(40, 600))
    out = write_spectrum(tmp_path / "part.pha", part)
    d, h = fits.getdata(out, "SPECTRUM"), fits.getheader(out, "SPECTRUM")
    assert h["DETCHANS"] == 800 and len(d) == 800  # rows = DETCHANS, as the RMF's channels
    np.testing.assert_array_equal(d["COUNTS"][40:600], part["counts"].values)
    assert d["COUNTS"][:40].sum() == 0 and d["COUNTS"][600:].sum() == 0
    assert np.all(d["QUALITY"][:40] == 1) and np.all(d["QUALITY"][600:] == 1) and np.all(d["QUALITY"][40:600] == 0)


def test_specval_is_the_pi_at_the_centre_of_specpix(make_event_file, tmp_path):
    ev = xcube.open_events(make_event_file(n=500))
    out = write_spectrum(tmp_path / "m.pha", xcube.spectrum(ev))
    h = fits.getheader(out, "SPECTRUM")
    assert (h["SPECDELT"], h["SPECPIX"], h["SPECVAL"]) == (15, 0, 7.0)  # as extractor/SAS: 0 + (15 - 1) / 2
    assert h.comments["SPECVAL"] == "Original channel value at center of SPECPIX"
    pn = xcube.open_events(make_event_file(n=500, header={"INSTRUME": "EPN"}))
    h = fits.getheader(write_spectrum(tmp_path / "pn.pha", xcube.spectrum(pn)), "SPECTRUM")
    assert (h["SPECDELT"], h["SPECPIX"], h["SPECVAL"]) == (5, 0, 2.0)
    back = read_spectrum(tmp_path / "m.pha")
    assert back["pi_lo"].values[1] == 15 and back["pi_hi"].values[0] == 15


def test_real_mos_spectrum_with_an_off_grid_pi_range(tmp_path):
    ev = xcube.open_events(real_file(*MOS1_CLEAN))
    sp = xcube.spectrum(ev, region=SRC, pi_range=(500, 10000))
    out = write_spectrum(tmp_path / "pr.pha", sp)
    h = fits.getheader(out, "SPECTRUM")
    assert (h["DETCHANS"], h["TLMIN1"], h["TLMAX1"], h["SPECVAL"]) == (800, 0, 799, 7.0)
    sel = xcube.select(ev, region=SRC, expr="PATTERN <= 12 && FLAG == 0")
    pi = sel["pi"].values
    assert int(fits.getdata(out, "SPECTRUM")["COUNTS"].sum()) == int(np.sum((pi >= 495) & (pi <= 10004)))


# --------------------------------------------------------------------------- writer errors


def test_non_integer_counts_are_refused_naming_file_and_channel(make_event_file, tmp_path):
    sp = xcube.spectrum(xcube.open_events(make_event_file(n=500))).compute()
    counts = sp["counts"].values.astype(np.float64)
    counts[123] += 0.5
    bad = sp.assign(counts=("channel", counts))
    with pytest.raises(ValueError, match=r"bad\.pha: PHA COUNTS must be whole numbers .*channel 123 holds") as e:
        write_spectrum(tmp_path / "bad.pha", bad)
    assert f"holds {float(counts[123])!r}" in str(e.value)
    assert not (tmp_path / "bad.pha").exists()
    nan = counts.copy()
    nan[123] = round(nan[123])
    nan[7] = np.nan
    with pytest.raises(ValueError, match=r"channel 7 holds nan"):
        write_spectrum(tmp_path / "bad.pha", sp.assign(counts=("channel", nan)))
