"""xcube.stitch / ``xcube stitch`` keep the energy band the inputs share
(attrs, E_MIN/E_MAX, the products.parquet row) and refuse light curves of
different bands, naming them; the band used to be dropped, and light curves of
3-10 keV and 0.3-1 keV were joined without a word."""
from __future__ import annotations

import pytest

import xcube
from xcube.cli import main
from xcube.products.naming import read_index


@pytest.fixture
def two_obs(make_event_file):
    return [make_event_file(n=20_000, t0=1e8 + i * 1e6, duration=2000.0, seed=i,
                            header={"OBS_ID": f"012345678{i}"}, name=f"ev{i}.fits") for i in range(2)]


def lc(path, band):
    return xcube.lightcurve(xcube.open_events(path), 100.0, energy_band=band)


def test_the_shared_band_is_kept_in_attrs_file_and_index(two_obs, tmp_path):
    a, b = lc(two_obs[0], (3.0, 10.0)), lc(two_obs[1], (3.0, 10.0))
    st = xcube.stitch([a, b])
    assert st.attrs["energy_band"] == [3.0, 10.0]
    assert st.attrs["pi_band"] == a.attrs["pi_band"] == [3000, 9999]  # one mission: the same channels
    back = xcube.read_lightcurve(xcube.write_lightcurve(tmp_path / "st.lc", st))
    assert back.attrs["energy_band"] == [3.0, 10.0] and back.attrs["pi_band"] == [3000, 9999]
    # the command line, from event files and from light-curve files
    assert main(["stitch", *map(str, two_obs), "--time-bin", "100", "--energy", "3", "10",
                 "--out", str(tmp_path / "st_ev.lc")]) == 0
    assert xcube.read_lightcurve(tmp_path / "st_ev.lc").attrs["energy_band"] == [3.0, 10.0]
    assert main(["stitch", str(tmp_path / "st.lc"), "--out", str(tmp_path / "st_lc.lc")]) == 0
    index = read_index(tmp_path).set_index("path")
    assert index.loc["st_ev.lc", ["energy_lo", "energy_hi"]].tolist() == [3.0, 10.0]
    assert index.loc["st_lc.lc", ["energy_lo", "energy_hi"]].tolist() == [3.0, 10.0]
    # no band anywhere (full-band light curves): none recorded, as before
    assert "energy_band" not in xcube.stitch([lc(two_obs[0], None), lc(two_obs[1], None)]).attrs


def test_different_bands_are_refused_naming_the_inputs(two_obs, tmp_path, capsys):
    hard, soft = lc(two_obs[0], (3.0, 10.0)), lc(two_obs[1], (0.3, 1.0))
    with pytest.raises(ValueError, match=r"different energy bands.*ev0\.fits: 3-10 keV.*ev1\.fits: 0\.3-1 keV"):
        xcube.stitch([hard, soft])
    # a light curve without a recorded band (full band, or a file without E_MIN/E_MAX) is not 3-10 keV
    with pytest.raises(ValueError, match=r"ev1\.fits: no band recorded"):
        xcube.stitch([hard, lc(two_obs[1], None)])
    # the command line: light-curve files of different bands; --energy with a light-curve file of another band
    xcube.write_lightcurve(tmp_path / "hard.lc", hard)
    xcube.write_lightcurve(tmp_path / "soft.lc", soft)
    assert main(["stitch", str(tmp_path / "hard.lc"), str(tmp_path / "soft.lc"), "--out", str(tmp_path / "x.lc")]) == 1
    err = capsys.readouterr().err
    assert "hard.lc: 3-10 keV" in err and "soft.lc: 0.3-1 keV" in err and not (tmp_path / "x.lc").exists()
    assert main(["stitch", str(tmp_path / "soft.lc"), str(two_obs[0]), "--time-bin", "100", "--energy", "3", "10",
                 "--out", str(tmp_path / "y.lc")]) == 1
    assert "soft.lc: 0.3-1 keV" in capsys.readouterr().err and not (tmp_path / "y.lc").exists()
