"""Spectra on the instrument's channel grid: the NICER and MOS PI ranges."""
from __future__ import annotations

import numpy as np
from astropy.io import fits

import xcube
from xcube.io.ogip import write_spectrum
from xcube.io.write_events import write_events_fits
from xcube.missions import get_profile


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
