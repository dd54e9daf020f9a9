"""xcube <-> Stingray conversions for event lists, light curves and power spectra."""
from __future__ import annotations

import numpy as np
import pytest

import xcube


def test_to_stingray_events_keeps_columns_gti_mjdref_mission(make_event_file):
    from stingray import EventList

    ev = xcube.open_events(make_event_file(n=500, gti=([1e8, 1e8 + 6000], [1e8 + 5000, 1e8 + 1e4])))
    s = xcube.to_stingray(ev)  # was KeyError: 'time_hi'
    assert isinstance(s, EventList)
    np.testing.assert_array_equal(s.time, ev["time"].values)
    np.testing.assert_array_equal(s.pi, ev["pi"].values)
    np.testing.assert_allclose(s.energy, ev["energy"].values)
    np.testing.assert_array_equal(s.gti, [[1e8, 1e8 + 5000], [1e8 + 6000, 1e8 + 1e4]])
    assert s.mjdref == 50814.0 and s.mission == ev.attrs["mission"] and s.instr == ev.attrs["instrument"]
    back = xcube.from_stingray(s)
    for v in ("time", "pi", "gti_start", "gti_stop"):
        np.testing.assert_array_equal(back[v].values, ev[v].values)
    assert back.attrs["mjdref"] == 50814.0 and back.attrs["mission"] == ev.attrs["mission"]
    # the converted list gives the same power spectrum
    p1 = xcube.power_spectrum(ev, segment=1000.0, dt=1.0)
    p2 = xcube.power_spectrum(back, segment=1000.0, dt=1.0)
    np.testing.assert_allclose(p1["power"].values, p2["power"].values, rtol=1e-12)


def test_events_without_energies_convert_with_pi_only():
    import os

    import stingray

    path = os.path.join(os.path.dirname(stingray.__file__), "tests", "data", "xte_test.evt.gz")
    with pytest.warns(UserWarning, match="energy is NaN"):
        ev = xcube.open_events(path)
    s = xcube.to_stingray(ev)
    assert s.energy is None and s.pi is not None and s.mission == "RXTE"


def test_power_spectrum_round_trip_and_stingray_methods():
    import dask.array as da
    import xarray as xr

    t = np.sort(np.random.default_rng(0).uniform(0, 2000, 40_000))
    ev = xr.Dataset({"time": ("event", da.from_array(t, chunks=10_000)), "gti_start": ("gti", [0.0]),
                     "gti_stop": ("gti", [2000.0])}, attrs={"mjdref": 55000.0})
    p = xcube.power_spectrum(ev, segment=100.0, dt=0.05, norm="leahy")
    s = xcube.to_stingray(p)
    np.testing.assert_array_equal(s.power, p["power"].values)
    assert s.m == 20 and s.norm == "leahy" and s.df == pytest.approx(0.01)
    rebinned = s.rebin_log(0.1)  # Stingray's own methods work on the converted object
    ours = xcube.products.rebin_power_spectrum(p, -0.1)
    np.testing.assert_allclose(rebinned.power, ours["power"].values, rtol=1e-12)
    back = xcube.from_stingray(s)
    for v in ("freq", "power", "power_err", "m", "df"):
        np.testing.assert_allclose(back[v].values, p[v].values)
    assert back.attrs["norm"] == "leahy" and back.attrs["mean_rate"] == pytest.approx(p.attrs["mean_rate"])


@pytest.mark.parametrize("rebin", ["none", "linear f=2", "linear df x3", "log"])
def test_segments_of_a_rebinned_stingray_spectrum(rebin):
    """A Stingray spectrum of 64 segments rebinned linearly (``m`` doubled,
    ``df`` widened, ``k`` left at 1) or logarithmically still reads back as
    64 segments, with the bin widths Stingray gives."""
    from stingray import AveragedPowerspectrum, EventList

    t = np.sort(np.random.default_rng(1).uniform(0, 64 * 16, 20_000))
    ps = AveragedPowerspectrum.from_events(EventList(t, gti=[[0, 64 * 16]]), dt=1 / 32, segment_size=16,
                                           norm="leahy", silent=True)
    sp = {"none": ps, "linear f=2": ps.rebin(f=2), "linear df x3": ps.rebin(df=3 * ps.df),
          "log": ps.rebin_log(f=0.1)}[rebin]
    back = xcube.from_stingray(sp)
    assert back.attrs["n_segments"] == 64
    width = np.broadcast_to(np.asarray(sp.df) * np.asarray(getattr(sp, "k", 1)), sp.freq.shape)
    np.testing.assert_allclose(back["df"].values, width)


def test_multiband_light_curve_needs_one_band(make_event_file):
    ev = xcube.open_events(make_event_file(n=500))
    lc = xcube.lightcurve(ev, 100.0, energy_band=[(0.5, 2.0), (2.0, 10.0)])
    with pytest.raises(ValueError, match="pick one"):
        xcube.to_stingray(lc)
    s = xcube.to_stingray(lc.sel(band="2-10keV"))
    np.testing.assert_array_equal(s.counts, lc["counts"].sel(band="2-10keV").values)
    with pytest.raises(TypeError):
        xcube.from_stingray(3)
