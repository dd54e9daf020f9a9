"""``xcube stitch`` / ``xcube pds`` (and ``extract_lightcurves`` /
``power_spectrum``) screen event data with the mission's standard filter, as
``xcube lc`` does, unless ``--no-screen`` / ``screening=False``."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import real_file

import xcube
from xcube.cli import main
from xcube.io.powspec import read_power_spectrum

N = 20_000


@pytest.fixture
def flagged(make_event_file):
    """A MOS1 event file in which every 4th event fails the screening (FLAG != 0)."""
    flag = np.zeros(N, np.int32)
    flag[::4] = 1
    return make_event_file(n=N, duration=2000.0, columns={"FLAG": flag}, header={"OBS_ID": "0123456780"})


def _counts(path) -> int:
    return int(xcube.read_lightcurve(path)["counts"].sum())


def test_stitch_command_screens_event_files_like_lc(flagged, tmp_path):
    lc, st, raw = tmp_path / "lc.lc", tmp_path / "st.lc", tmp_path / "raw.lc"
    assert main(["lc", str(flagged), "--time-bin", "100", "--out", str(lc)]) == 0
    assert main(["stitch", str(flagged), "--time-bin", "100", "--out", str(st), "--out-dir", str(tmp_path)]) == 0
    assert main(["stitch", str(flagged), "--time-bin", "100", "--no-screen", "--out", str(raw),
                 "--out-dir", str(tmp_path)]) == 0
    assert _counts(st) == _counts(lc) == N - N // 4
    assert _counts(raw) == N


def test_extract_lightcurves_screens_by_default(flagged):
    (screened,) = xcube.extract_lightcurves([str(flagged)], 100.0, errors="raise")
    (everything,) = xcube.extract_lightcurves([str(flagged)], 100.0, screening=False, errors="raise")
    (ev_list,) = xcube.extract_lightcurves([xcube.open_events(flagged)], 100.0, errors="raise")
    assert int(screened["counts"].sum()) == int(ev_list["counts"].sum()) == N - N // 4
    assert int(everything["counts"].sum()) == N
    assert "expr=PATTERN <= 12 && FLAG == 0" in screened.attrs["selection"]


def test_pds_screens_events_by_default(flagged, tmp_path):
    kw = dict(segment=100.0, dt=1 / 64)
    screened = xcube.power_spectrum(str(flagged), **kw)
    raw = xcube.power_spectrum(xcube.open_events(flagged), screening=False, **kw)
    by_expr = xcube.power_spectrum(xcube.open_events(flagged), expr="FLAG == 0", screening=False, **kw)
    np.testing.assert_allclose(screened["power"].values, by_expr["power"].values)
    assert screened.attrs["n_photons"] == pytest.approx(raw.attrs["n_photons"] * 0.75)
    assert "FLAG == 0" in screened.attrs["expr"] and "expr" not in raw.attrs
    out, out_raw = tmp_path / "p.fits", tmp_path / "raw.fits"
    assert main(["pds", str(flagged), "--segment", "100", "--dt", "1/64", "--out", str(out), "--no-index"]) == 0
    assert main(["pds", str(flagged), "--segment", "100", "--dt", "1/64", "--no-screen", "--out", str(out_raw),
                 "--no-index"]) == 0
    assert read_power_spectrum(out).attrs["mean_rate"] == pytest.approx(screened.attrs["mean_rate"])
    assert read_power_spectrum(out_raw).attrs["mean_rate"] == pytest.approx(raw.attrs["mean_rate"])


def test_pds_of_a_light_curve_is_unchanged_by_screening(flagged):
    lc = xcube.lightcurve(xcube.open_events(flagged), 1.0)
    a = xcube.power_spectrum(lc, segment=100.0)
    b = xcube.power_spectrum(lc, segment=100.0, screening=False)
    np.testing.assert_array_equal(a["power"].values, b["power"].values)


def test_raw_mos1_stitch_and_pds_match_lc():
    """The smoke test: raw MOS1 events, 3-10 keV, 500 s bins."""
    path = real_file("xmm", "P0001730201M1S002MIEVLI.FTZ")
    ev = xcube.open_events(path)
    lc = xcube.lightcurve(ev, 500.0, energy_band=(3, 10), expr=xcube.missions.profile_of(ev).screening)
    (st,) = xcube.extract_lightcurves([str(path)], 500.0, energy_band=(3, 10), errors="raise")
    assert int(st["counts"].sum()) == int(lc["counts"].sum()) == 32746
    (raw,) = xcube.extract_lightcurves([str(path)], 500.0, energy_band=(3, 10), screening=False, errors="raise")
    assert int(raw["counts"].sum()) == 36683
    pds = xcube.power_spectrum(str(path), segment=256.0, dt=1.0)
    assert pds.attrs["mean_rate"] == pytest.approx(5.38, abs=0.01)  # 8.09 count/s unscreened
