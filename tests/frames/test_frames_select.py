"""Target/comparison picking (xcube.frames.select) and differential magnitudes (xcube.frames.lightcurve)."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xcube.frames.lightcurve import differential, lightcurve_table
from xcube.frames.select import given_roles, pick_stars, star_statistics

NF = 60


def _night_mags(seed=0):
    """15 stars over 60 frames: star 4 is variable (0.3 mag eclipse), star 9 varies slowly by 0.08 mag,
    star 12 is faint (errors 0.05), star 13 is missing in half the frames, star 14 is variable but at the
    edge; all share a per-frame transparency term."""
    rng = np.random.default_rng(seed)
    ns = 15
    base = np.linspace(12.0, 16.0, ns)
    err = np.full(ns, 0.005)
    err[12] = 0.05
    zp = rng.normal(0, 0.1, NF)  # clouds
    mag = base[:, None] + zp[None, :] + rng.normal(0, 1, (ns, NF)) * err[:, None]
    mag[4, 25:40] += 0.3
    mag[9] += np.linspace(0, 0.08, NF)
    mag[14, 10:30] += 0.4
    mag[13, ::2] = np.nan
    x = np.full(ns, 100.0)
    x[14] = 195.0
    return mag, np.broadcast_to(err[:, None], mag.shape).copy(), x, np.full(ns, 100.0), zp


def test_pick_finds_variable_and_steady_comparisons():
    mag, err, x, y, _ = _night_mags()
    roles = pick_stars(mag, err, x, y, (200, 200))
    assert roles.target == 4
    assert 9 not in roles.comparisons and 12 not in roles.comparisons and 13 not in roles.comparisons
    assert 14 not in roles.comparisons + [roles.target] and 4 not in roles.comparisons
    assert len(roles.checks) == 1 and not set(roles.checks) & set(roles.comparisons)
    st = roles.table
    assert st.loc[13, "missing"] == pytest.approx(0.5) and st.loc[4, "std"] > 0.05
    assert st.loc[0, "std"] < 0.01  # the transparency term is removed
    assert st.loc[roles.target, "role"] == "target"


def test_pick_thresholds_are_configurable():
    mag, err, x, y, _ = _night_mags()
    # a wider central region makes the edge variable (larger std) the target
    assert pick_stars(mag, err, x, y, (200, 200), pick_var_rad=1.0).target == 14
    assert len(pick_stars(mag, err, x, y, (200, 200), pick_ref_n=3).comparisons) == 3
    # the slow drifter becomes a comparison when the max-min limit is relaxed
    assert 9 in pick_stars(mag, err, x, y, (200, 200), pick_ref_dif=0.5, pick_ref_std=0.1).comparisons + \
        pick_stars(mag, err, x, y, (200, 200), pick_ref_dif=0.5, pick_ref_std=0.1).checks
    with pytest.raises(ValueError, match="no variable star.*pick_var_std"):
        pick_stars(mag, err, x, y, (200, 200), pick_var_std=1.0)
    with pytest.raises(ValueError, match="no comparison star"):
        pick_stars(mag, err, x, y, (200, 200), pick_ref_std=1e-4)
    with pytest.raises(ValueError, match="pick_err_max=0.001"):
        pick_stars(mag, err, x, y, (200, 200), pick_err_max=0.001)


def test_star_statistics_missing_rate():
    mag, err, *_ = _night_mags()
    st = star_statistics(mag, err, err_max=0.02)
    assert st.loc[12, "missing"] == 1.0  # every error above pick_err_max
    assert st.loc[0, "missing"] == 0.0


def test_given_roles():
    r = given_roles(5)
    assert (r.target, r.comparisons, r.checks) == (0, [1, 2, 3, 4], [])
    r = given_roles(5, ind_tgt=2, ind_ref=[0, 1], ind_chk=4)
    assert (r.target, r.comparisons, r.checks) == (2, [0, 1], [4])
    r = given_roles(5, ind_tgt=[0, 3], ind_ref=[1, 2])
    assert r.target == 0 and r.checks == [3]
    assert list(r.role_of(5)) == ["target", "comparison", "comparison", "check", ""]
    with pytest.raises(ValueError, match="ind_ref=\\[7\\]"):
        given_roles(5, ind_ref=[1, 7])
    with pytest.raises(ValueError, match="no comparison"):
        given_roles(1)


def _as_dataset(mag, err):
    dims = ("star", "frame", "aperture")
    return xr.DataArray(mag[:, :, None], dims=dims), xr.DataArray(err[:, :, None], dims=dims)


def test_differential_removes_transparency_and_survives_missing_comparisons():
    mag, err, _, _, zp = _night_mags()
    m, e = _as_dataset(mag, err)
    comps = [0, 1, 2, 3, 5, 6]
    lc = differential(m, e, 4, comps, checks=[7])
    d = lc["diff_mag"].values[:, 0]
    truth = np.zeros(NF)
    truth[25:40] = 0.3
    offset = np.median(d - truth)
    assert np.std(d - truth - offset) < 0.006  # clouds (0.1 mag rms) removed
    assert lc["diff_mag"].dims == ("frame", "aperture") and lc["check_mag"].dims == ("check", "frame", "aperture")
    assert np.all(lc["diff_err"].values > err[4, 0])
    # drop the brightest comparison from half the frames: the level stays (deviations, not sums)
    mag2 = mag.copy()
    mag2[0, ::2] = np.nan
    d2 = differential(*_as_dataset(mag2, err), 4, comps)["diff_mag"].values[:, 0]
    assert np.max(np.abs(d2 - d)) < 0.01
    # a frame without any comparison gives NaN
    mag3 = mag.copy()
    mag3[comps, 5] = np.nan
    assert np.isnan(differential(*_as_dataset(mag3, err), 4, comps)["diff_mag"].values[5, 0])
    with pytest.raises(ValueError, match="both the target and a comparison"):
        differential(m, e, 4, [4, 5])


def test_lightcurve_table_columns():
    mag, err, *_ = _night_mags()
    m, e = _as_dataset(mag, err)
    lc = differential(m, e, 4, [0, 1, 2], checks=[3])
    lc = lc.assign_coords(time=("frame", 2460000.5 + np.arange(NF) / 100), file=("frame", [f"f{i}" for i in
                                                                                          range(NF)]),
                          aperture=("aperture", [-1.5]))
    table = lightcurve_table(lc)
    assert list(table.columns) == ["file", "time", "timesys", "diff_mag_r1.5fwhm", "diff_err_r1.5fwhm",
                                   "check3_mag_r1.5fwhm"]
    assert len(table) == NF and set(table["timesys"]) == {"BJD_TDB"}
    # frames without target coordinates: the CSV says its times are JD (UTC) (sweep p25)
    lc["time"].attrs["timesys"] = "JD_UTC"
    assert set(lightcurve_table(lc)["timesys"]) == {"JD_UTC"}
