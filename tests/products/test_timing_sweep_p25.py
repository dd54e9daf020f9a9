"""Sweep p25 (timing): masked (NaN) bins are gaps, a GTI table made 2-D by Dataset.where is named, a rebinned
spectrum rebins with its weights m, stacks rebin spectrum by spectrum, and TIMESYS/TIMEREF survive a read-back."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

import xcube
from xcube import gti as gtimod
from xcube.io.powspec import read_power_spectrum, write_power_spectrum
from xcube.products import lightcurve_from_counts
from xcube.products.powerspectrum import rebin_power_spectrum


def _lc(seed=0, n=4096, width=1.0, obs_id="0100000101"):
    import xarray as xr

    lo = 1e8 + width * np.arange(n)
    hi = lo + width
    gti = (np.array([lo[0]]), np.array([hi[-1]]))
    counts = np.random.default_rng(seed).poisson(5.0 + 2 * np.sin(lo / 40.0), n)
    c = xr.DataArray(counts, dims="time", coords={"time": 0.5 * (lo + hi), "time_lo": ("time", lo),
                                                   "time_hi": ("time", hi), "exposure": ("time", hi - lo),
                                                   "fracexp": ("time", np.ones(n))})
    return lightcurve_from_counts(c, gti=gti, attrs={"mjdref": 50814.0, "timesys": "TT", "mission": "XMM-Newton",
                                                     "obs_id": obs_id, "instrument": "EMOS1", "time_bin": width})


def test_nan_counts_are_gaps_with_a_warning():
    lc = _lc()
    bad = np.zeros(lc.sizes["time"], bool)
    bad[300:340] = True  # a flare cut out
    masked = lc.assign(counts=lc["counts"].where(~bad))
    with pytest.warns(UserWarning, match="40 of 4096 bins .* NaN counts"):
        pds = xcube.power_spectrum(masked, segment=256.0)
    ref = xcube.power_spectrum(lc.isel(time=np.flatnonzero(~bad)), segment=256.0)
    assert np.isfinite(pds["power"].values).all() and pds.attrs["n_segments"] == ref.attrs["n_segments"] == 15
    np.testing.assert_allclose(pds["power"].values, ref["power"].values, rtol=1e-12)


def test_dataset_where_names_the_two_dimensional_gti_table():
    lc = _lc()
    with pytest.raises(ValueError, match=r"gti_start/gti_stop have dims \('gti', 'time'\).*drop=True"):
        xcube.power_spectrum(lc.where(lc["counts"] < 12), segment=256.0)
    with pytest.raises(ValueError, match="must be 1-D"):
        gtimod.normalize(np.zeros((2, 3)), np.ones((2, 3)))


def _groups(raw, binned):
    """Per bin of ``binned``, the raw frequencies it holds (by their edges)."""
    f = raw["freq"].values
    return [(f >= lo - 1e-12) & (f <= hi + 1e-12) & (raw["freq_lo"].values >= lo - 1e-12)
            & (raw["freq_hi"].values <= hi + 1e-12)
            for lo, hi in zip(binned["freq_lo"].values, binned["freq_hi"].values)]


@pytest.mark.parametrize("second", [4, -0.5])
def test_a_rebinned_spectrum_rebins_as_its_raw_powers(second):
    raw = xcube.power_spectrum(_lc(), segment=512.0)
    twice = rebin_power_spectrum(rebin_power_spectrum(raw, -0.1), second)
    for k, sel in enumerate(_groups(raw, twice)):
        n = int(sel.sum())
        assert twice["m"].values[k] == raw["m"].values[sel].sum()
        assert twice["power"].values[k] == pytest.approx(raw["power"].values[sel].mean(), rel=1e-12)
        assert twice["freq"].values[k] == pytest.approx(raw["freq"].values[sel].mean(), rel=1e-12)
        assert twice["power_err"].values[k] == pytest.approx(np.sqrt((raw["power_err"].values[sel] ** 2).sum()) / n,
                                                             rel=1e-12)


def test_a_stack_rebins_spectrum_by_spectrum():
    stack = xcube.power_spectrum([_lc(1, obs_id="0100000101"), _lc(2, obs_id="0100000201")], segment=256.0)
    assert stack.sizes["obs"] == 2
    out = rebin_power_spectrum(stack, -0.1)
    for i in range(2):
        one = rebin_power_spectrum(stack.isel(obs=i), -0.1)
        np.testing.assert_array_equal(out["power"].values[i], one["power"].values)
    np.testing.assert_array_equal(out["n_segments"].values, stack["n_segments"].values)
    assert list(out["obs_id"].values) == ["0100000101", "0100000201"] and out.attrs["rebin"] == -0.1


def test_timesys_and_timeref_survive_a_read_back(tmp_path):
    pds = xcube.power_spectrum(_lc().assign_attrs(timesys="TDB", timeref="SOLARSYSTEM", mjdrefi=50814,
                                                  mjdreff=0.0), segment=256.0)
    back = read_power_spectrum(write_power_spectrum(tmp_path / "a.pds", pds))
    assert (back.attrs["timesys"], back.attrs["timeref"], back.attrs["mjdrefi"]) == ("TDB", "SOLARSYSTEM", 50814)
    again = fits.getheader(write_power_spectrum(tmp_path / "b.pds", rebin_power_spectrum(back, -0.1)), "POWSPEC")
    assert (again["TIMESYS"], again["TIMEREF"]) == ("TDB", "SOLARSYSTEM")


def test_a_finer_log_rebin_of_a_rebinned_spectrum_has_no_empty_bins():
    """Review p25: log bins finer than the input's made empty groups that reduceat filled with the next bin."""
    raw = xcube.power_spectrum(_lc(), segment=512.0)
    coarse = rebin_power_spectrum(raw, -0.5)
    fine = rebin_power_spectrum(coarse, -0.1)
    assert int(fine["m"].sum()) <= int(coarse["m"].sum()) and (fine["df"].values > 0).all()
    assert np.all(np.diff(fine["freq"].values) > 0)
