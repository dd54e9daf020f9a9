"""Files of non-XMM missions that the search or the reader must refuse (or
flag), and one they must accept: a Swift XRT Windowed Timing file known only
by its file name, Chandra HRC (no energy scale), a raw RXTE PCA science-event
file (bit-packed ``Event`` column, no PHA)."""
import warnings

import numpy as np
import pytest
from astropy.io import fits

import xcube
from xcube.io.write_events import write_events_fits
from xcube.missions import get_profile

T0 = 5.0e8


def _wcs(crval, crpix, cdelt_deg):
    return {"X": {"ctype": "RA---TAN", "crval": crval[0], "crpix": crpix, "cdelt": -cdelt_deg},
            "Y": {"ctype": "DEC--TAN", "crval": crval[1], "crpix": crpix, "cdelt": cdelt_deg}}


def _xrt(tmp_path, name, datamode=None, n=2000):
    rng = np.random.default_rng(3)
    t = np.sort(T0 + rng.uniform(0.0, 2000.0, n))
    cols = {"TIME": t, "X": rng.integers(400, 600, n).astype(np.int16),
            "Y": rng.integers(400, 600, n).astype(np.int16), "PI": rng.integers(30, 1000, n).astype(np.int16),
            "GRADE": rng.integers(0, 13, n).astype(np.int16)}
    hdr = {"TELESCOP": "SWIFT", "INSTRUME": "XRT", "OBS_ID": "00012345678", "MJDREFI": 51910,
           "MJDREFF": 7.428703703703703e-4, "TIMESYS": "TT", "TSTART": T0, "TSTOP": T0 + 2000.0}
    if datamode:
        hdr["DATAMODE"] = datamode
    return write_events_fits(tmp_path / name, cols, header=hdr, gti=([T0], [T0 + 2000.0]),
                             wcs=_wcs((253.47, -37.1), 500.5, 6.548089e-4))


# ------------------------------------------------- the file's mode: DATAMODE, else its file name

def test_xrt_windowed_timing_known_by_its_file_name_is_refused_by_the_search(tmp_path):
    """The screening took the file name's WT (GRADE <= 2) but the search asked
    DATAMODE only, so a WT file without DATAMODE was searched as imaging."""
    ev = xcube.open_events(_xrt(tmp_path, "sw00012345678xwtw2po_cl.evt"))
    prof = get_profile("swift-xrt")
    assert prof.modes(ev.attrs) == ("WINDOWED",)
    assert not prof.accepts_mode(ev.attrs)
    with pytest.raises(ValueError, match=r"sw00012345678xwtw2po_cl\.evt: Swift XRT in mode WINDOWED \(from the "
                                         r"file name.*not supported by the transient search"):
        xcube.search_transients(ev, time_bin=100.0)
    # the same file named as PC, and a PC file with DATAMODE, are imaging: no warning about the mode
    from xcube.transients.grid import check_cameras

    for name, mode in (("sw00012345678xpcw3po_cl.evt", None), ("pc.evt", "PHOTON")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert len(check_cameras(xcube.open_events(_xrt(tmp_path, name, mode)))) == 1


def test_unknown_mode_of_an_imaging_profile_is_not_silent(tmp_path):
    """No DATAMODE and no mode code in the name: searched as imaging (PC, as
    the screening takes it), with a warning naming the file."""
    from xcube.transients.grid import check_cameras

    ev = xcube.open_events(_xrt(tmp_path, "plain.evt"))
    with pytest.warns(UserWarning, match=r"plain\.evt: Swift XRT file of unknown mode.*taken as an imaging mode "
                                         r"\(PHOTON\).*DATAMODE"):
        check_cameras(ev)
    with pytest.warns(UserWarning, match="unknown mode"):
        assert get_profile("chandra-acis").accepts_mode({})
    with warnings.catch_warnings():  # profiles without imaging modes (NuSTAR) take any file silently
        warnings.simplefilter("error")
        assert get_profile("nustar-fpma").accepts_mode({"source": "nu.evt"})


# ------------------------------------------------- Chandra HRC: no energy scale

def _hrc(tmp_path, n=3000):
    rng = np.random.default_rng(4)
    t = np.sort(T0 + rng.uniform(0.0, 5000.0, n))
    cols = {"time": t, "x": rng.uniform(16000, 17000, n).astype(np.float32),
            "y": rng.uniform(16000, 17000, n).astype(np.float32), "pi": rng.integers(0, 256, n).astype(np.int16)}
    hdr = {"TELESCOP": "CHANDRA", "INSTRUME": "HRC", "DETNAM": "HRC-I", "OBS_ID": "05678", "MJDREF": 50814.0,
           "TIMESYS": "TT", "TSTART": T0, "TSTOP": T0 + 5000.0}
    p = write_events_fits(tmp_path / "hrcf05678_evt2.fits", cols, header=hdr, gti=([T0], [T0 + 5000.0]),
                          wcs={k.lower(): v for k, v in _wcs((10.68, 41.27), 16384.5, 3.6597e-5).items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HRC: energy is NaN (its own warning)
        return xcube.open_events(p), n


def test_hrc_is_searched_on_every_event(tmp_path):
    from xcube.transients.grid import search_band, search_bands

    ev, n = _hrc(tmp_path)
    assert search_band([ev], search_bands([ev])) is None  # no energy cut
    res = xcube.search_transients(ev, time_bin=100.0, size_arcsec=5.0, hygiene=False)
    assert res.summary["reason"] in ("", None) or "no events" not in res.summary["reason"]
    assert int(res.cube.sum()) == n  # every event, none lost to a NaN energy


def test_hrc_energy_band_says_there_is_no_energy_scale(tmp_path):
    ev, _ = _hrc(tmp_path)
    with pytest.raises(ValueError, match=r"hrcf05678_evt2\.fits: Chandra HRC has no energy scale") as exc:
        xcube.search_transients(ev, time_bin=100.0, energy_band=(0.5, 2.0))
    assert "expr" not in str(exc.value) and "energy_band" in str(exc.value)
    # select() has expr=: its message points there
    with pytest.raises(ValueError, match=r"hrcf05678_evt2\.fits: Chandra HRC has no energy scale.*expr='PI in "):
        xcube.select(ev, energy_band=(0.5, 2.0))


# ------------------------------------------------- RXTE PCA raw science events

def _rxte_raw(tmp_path, with_pha=False, n=300):
    t = np.sort(1.0e8 + np.random.default_rng(5).uniform(0.0, 1000.0, n))
    cols = [fits.Column("TIME", "D", array=t, unit="s"), fits.Column("Event", "16X", array=np.zeros((n, 16), bool))]
    if with_pha:
        cols.append(fits.Column("PHA", "I", array=np.arange(n, dtype=np.int16) % 256))
    ev = fits.BinTableHDU.from_columns(cols, name="XTE_SE")
    gti = fits.BinTableHDU.from_columns([fits.Column("Start", "D", array=[1.0e8]),
                                         fits.Column("Stop", "D", array=[1.0e8 + 1000.0])], name="STDGTI")
    for h in (ev, gti):
        h.header.update({"TELESCOP": "XTE", "INSTRUME": "PCA", "OBS_ID": "10258-01-01-00", "MJDREFI": 49353,
                         "MJDREFF": 6.96574074e-4, "TIMESYS": "TT", "TIMEZERO": 3.37843167, "TSTART": 1.0e8,
                         "TSTOP": 1.0e8 + 1000.0, "DATAMODE": "GoodXenon1_2s"})
    path = tmp_path / ("FS37_decoded.evt" if with_pha else "FS4a_goodxenon.evt")
    fits.HDUList([fits.PrimaryHDU(), ev, gti]).writeto(path)
    return path


def test_raw_rxte_science_event_file_is_refused(tmp_path):
    """Every row of a raw XTE_SE table counted as an event (some are time
    markers, and no row has a decoded channel)."""
    p = _rxte_raw(tmp_path)
    with pytest.raises(ValueError, match=r"FS4a_goodxenon\.evt.*XTE_SE.*bit-packed 'Event' column.*no 'PHA'.*"
                                         r"decode"):
        xcube.open_events(p)
    with pytest.raises(ValueError, match="bit-packed 'Event' column"):
        xcube.open_events(p, instrument="rxte-pca")
    # a decoded file that kept its Event column opens
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PCA: energy is NaN (its own warning)
        ev = xcube.open_events(_rxte_raw(tmp_path, with_pha=True))
    assert ev.attrs["profile"] == "rxte-pca" and ev.sizes["event"] == 300 and "pi" in ev
