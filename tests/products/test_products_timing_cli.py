"""``xcube pds``, ``xcube stitch`` and ``xcube plot``."""
from __future__ import annotations

import numpy as np
import pytest

import xcube
from xcube.cli import main
from xcube.io.powspec import read_power_spectrum
from xcube.products.naming import read_index


@pytest.fixture
def two_obs(make_event_file):
    return [make_event_file(n=20_000, t0=1e8 + i * 1e6, duration=2000.0, seed=i,
                            header={"OBS_ID": f"012345678{i}", "OBJECT": "HD159176"}) for i in range(2)]


def test_pds_command_writes_named_indexed_spectra(two_obs, tmp_path, capsys):
    assert main(["pds", str(two_obs[0]), "--segment", "100", "--dt", "1/64", "--rebin", "-0.06",
                 "--out-dir", str(tmp_path)]) == 0
    out = tmp_path / "0123456780_EMOS1_pds_15.625ms_leahy_100s_log0.06.fits"
    assert out.exists() and "20 x 100 s segments" in capsys.readouterr().out
    pds = read_power_spectrum(out)
    ref = xcube.power_spectrum(xcube.open_events(two_obs[0]), segment=100.0, dt=1 / 64, rebin=-0.06)
    np.testing.assert_allclose(pds["power"].values, ref["power"].values)
    assert pds.attrs["object"] == "HD159176"  # (xcube info printed "object: -")
    assert main(["info", str(out)]) == 0 and "object: HD159176" in capsys.readouterr().out
    assert main(["pds", *map(str, two_obs), "--segment", "100", "--dt", "0.125", "--norm", "frac",
                 "--energy", "0.5", "2", "--out-dir", str(tmp_path)]) == 0
    index = read_index(tmp_path)
    assert sorted(index["obs_id"]) == ["0123456780", "0123456780", "0123456781"]
    assert set(index["norm"]) == {"leahy", "frac"} and index["energy_lo"].max() == 0.5
    assert main(["pds", *map(str, two_obs), "--segment", "100", "--dt", "0.125", "--average",
                 "--out", str(tmp_path / "avg.fits")]) == 0
    assert read_power_spectrum(tmp_path / "avg.fits").attrs["n_segments"] == 40
    assert main(["pds", str(two_obs[0]), "--segment", "100"]) == 1  # events need --dt
    assert "give --dt" in capsys.readouterr().err


def test_stitch_and_plot_commands(two_obs, tmp_path, capsys, monkeypatch):
    lcs = []
    for i, f in enumerate(two_obs):
        lcs.append(tmp_path / f"{i}.lc")
        assert main(["lc", str(f), "--time-bin", "50", "--out", str(lcs[-1])]) == 0
    long = tmp_path / "long.lc"
    assert main(["stitch", str(lcs[1]), str(lcs[0]), "--out", str(long)]) == 0
    assert "80 bins from 2 light curve(s) of 2 observation(s)" in capsys.readouterr().out
    back = xcube.read_lightcurve(long)
    assert back.attrs["stitched"] and np.all(np.diff(back["mjd"].values) > 0)
    assert list(dict.fromkeys(back["obs_id"].values)) == ["0123456780", "0123456781"]
    # event files are re-extracted in parallel first
    assert main(["stitch", *map(str, two_obs), "--time-bin", "100", "--energy", "0.5", "2",
                 "--out", str(tmp_path / "long2.lc")]) == 0
    assert main(["stitch", *map(str, two_obs), "--out", str(tmp_path / "x.lc")]) == 1
    monkeypatch.chdir(tmp_path)
    assert main(["plot", str(long)]) == 0 and (tmp_path / "long.png").stat().st_size > 5000
    assert main(["plot", str(lcs[0]), "--out", str(tmp_path / "a.svg")]) == 0
    assert main(["plot", str(lcs[0]), "--out", str(tmp_path / "a.svg")]) == 1  # exists: --overwrite
    assert "exists" in capsys.readouterr().err
