"""The default band keeps the reference's 200 <= PI <= 12000: an XMM band
ending at 12 keV keeps its top channel; other edges stay half-open."""
from __future__ import annotations

import numpy as np
import pytest

import xcube
from xcube.transients.grid import search_band

PI = np.array([199, 200, 1999, 2000, 11999, 12000, 12001])


@pytest.fixture
def xmm(make_event_file):
    """MOS1 events: 300 of each PI of ``PI``, spread over 2000 s."""
    pi = np.repeat(PI, 300).astype(np.int16)
    rng = np.random.default_rng(0).permutation(pi.size)
    return xcube.open_events(make_event_file(n=pi.size, duration=2_000.0, columns={"PI": pi[rng]}))


@pytest.mark.parametrize("band, kept", [
    ((0.2, 12.0), [200, 1999, 2000, 11999, 12000]),  # the reference's default: PI 12000 kept, 12001 not
    ((2.0, 12.0), [2000, 11999, 12000]),
    ((0.2, 2.0), [200, 1999]),  # other edges stay half-open: 2000 belongs to the next band
])
def test_bands_ending_at_12_kev_keep_pi_12000(xmm, band, kept):
    res = xcube.search_transients(xmm, time_bin=100.0, energy_band=band, hygiene=False)
    assert res.summary["n_events"] == 300 * len(kept)
    assert res.run_id.endswith(f"_100_{band[0]}_{band[1]}")  # ids and labels keep the band as given
    assert res.params["energy_band"] == list(band)
    # select with the search's band reproduces its events
    sel = xcube.select(xmm, energy_band=search_band([xmm], band))
    assert sorted(np.unique(sel["pi"].values)) == kept


def test_search_band_only_closes_xmm_bands_at_12_kev(xmm):
    assert search_band([xmm], (0.2, 12.0)) == (0.2, float(np.nextafter(np.float32(12.0), np.float32(13.0))))
    assert search_band([xmm], (0.2, 10.0)) == (0.2, 10.0)
    other = xmm.copy().assign_attrs(mission="NuSTAR", profile="nustar-fpma")
    assert search_band([other], (3.0, 12.0)) == (3.0, 12.0)


def test_unknown_mission_search_names_the_file_and_the_way_out(make_event_file, tmp_path, capsys):
    """A file of a mission xcube does not know has no default band: the search said 'invalid search
    parameters ... energy_band=(0.0, inf)', a band the user never gave, naming no file. Now it names the file,
    TELESCOP/INSTRUME and the fix; `xcube search --instrument` opens it with a profile."""
    import warnings

    from xcube.cli import main

    path = make_event_file(n=3000, header={"TELESCOP": "FOOSAT"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = xcube.open_events(path)
        with pytest.raises(ValueError, match=r"unknown mission \(TELESCOP='FOOSAT' INSTRUME='EMOS1'\), so no "
                                             r"default energy band.*instrument="):
            xcube.search_transients(ev, time_bin=100.0)
        assert main(["search", str(path), "--time-bin", "100", "--out", str(tmp_path / "a"), "-q"]) == 1
        err = capsys.readouterr().err
        assert str(path) in err and "unknown mission" in err and "energy_band=(0.0, inf)" not in err
        assert main(["search", str(path), "--time-bin", "100", "--out", str(tmp_path / "b"), "-q",
                     "--instrument", "xmm-mos1"]) == 0
