"""Light-curve timing helpers: exposure-weighted rebin, split by GTI,
several energy bands, hardness ratios, net light curves from a background
model (OGIP file, Dataset, transient-search result)."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xcube
from xcube.products import hardness_ratio, net_lightcurve, rebin, split_by_gti

T0 = 1.0e8
GTI = ([T0, T0 + 1050.0], [T0 + 1000.0, T0 + 3000.0])  # a 50 s gap, bins of 10 s partly exposed


@pytest.fixture
def ev(make_event_file):
    return xcube.open_events(make_event_file(n=30_000, duration=3000.0, gti=GTI), chunks=4000)


def test_rebin_adds_counts_and_exposure_and_weights_rates(ev):
    lc = xcube.lightcurve(ev, 10.0, background=None).compute()
    r = rebin(lc, 5)  # 50 s bins
    assert r.sizes["time"] == lc.sizes["time"] // 5
    np.testing.assert_array_equal(r["counts"].values, lc["counts"].values[: r.sizes["time"] * 5].reshape(-1, 5)
                                  .sum(1))
    exp = lc["exposure"].values[: r.sizes["time"] * 5].reshape(-1, 5).sum(1)
    np.testing.assert_allclose(r["exposure"].values, exp)
    good = exp > 0
    np.testing.assert_allclose(r["rate"].values[good], r["counts"].values[good] / exp[good])
    np.testing.assert_allclose(r["rate_err"].values[good], np.sqrt(r["counts"].values[good]) / exp[good])
    assert np.isnan(r["rate"].values[~good]).all()
    np.testing.assert_allclose(r["time_hi"].values - r["time_lo"].values, 50.0)
    np.testing.assert_allclose(r["fracexp"].values, exp / 50.0)
    assert r.attrs["time_bin"] == 50.0 and "gti_start" in r
    # coarsen().sum() adds rates: the bad behaviour rebin replaces
    assert not np.allclose(lc["rate"].coarsen(time=5, boundary="trim").sum().values[good], r["rate"].values[good])
    assert rebin(lc, time_bin=50.0)["counts"].equals(r["counts"])
    with pytest.raises(ValueError, match="whole multiple"):
        rebin(lc, time_bin=25.0)
    with pytest.raises(ValueError, match="exactly one"):
        rebin(lc)


def test_rebin_weights_rates_without_counts():
    """Rates read from a file: exposure-weighted means, errors in quadrature."""
    t = np.arange(4) * 10.0 + 5.0
    lc = xr.Dataset({"rate": ("time", [1.0, 3.0, 2.0, np.nan]), "rate_err": ("time", [0.1, 0.3, 0.2, np.nan])},
                    coords={"time": t, "time_lo": ("time", t - 5), "time_hi": ("time", t + 5),
                            "exposure": ("time", [10.0, 5.0, 10.0, 0.0]), "fracexp": ("time", [1, 0.5, 1, 0])},
                    attrs={"errors": "file"})
    r = rebin(lc, 2)
    np.testing.assert_allclose(r["rate"].values, [(10 * 1 + 5 * 3) / 15, 2.0])
    np.testing.assert_allclose(r["rate_err"].values, [np.hypot(10 * 0.1, 5 * 0.3) / 15, 0.2])


def test_split_by_gti_keeps_every_exposed_bin_once(ev):
    lc = xcube.lightcurve(ev, 10.0)
    pieces = split_by_gti(lc)
    assert len(pieces) == 2
    n_exposed = int((lc["exposure"].values > 0).sum())
    assert sum(p.sizes["time"] for p in pieces) == n_exposed
    assert pieces[0].sizes["gti"] == 1 and float(pieces[0]["gti_stop"][0]) == T0 + 1000.0
    assert float(pieces[1]["time_lo"][0]) == T0 + 1050.0
    exposed = lc["exposure"].values > 0  # (events in the gap, outside the GTIs, are left out)
    assert sum(int(p["counts"].sum()) for p in pieces) == int(lc["counts"].values[exposed].sum())
    assert split_by_gti(lc, min_exposure=1500.0)[0].attrs["gti_index"] == 1


def test_several_bands_give_a_band_dimension(ev):
    lc = xcube.lightcurve(ev, 100.0, energy_band=[(0.5, 2.0), (2.0, 10.0)])
    assert lc["counts"].dims == ("band", "time") and list(lc["band"].values) == ["0.5-2keV", "2-10keV"]
    np.testing.assert_allclose(lc["energy_lo"].values, [0.5, 2.0])
    for i, band in enumerate([(0.5, 2.0), (2.0, 10.0)]):
        one = xcube.lightcurve(ev, 100.0, energy_band=band)
        np.testing.assert_array_equal(lc["counts"].isel(band=i).values, one["counts"].values)
    assert lc["gti_start"].dims == ("gti",)


def test_hardness_ratio_and_errors(ev):
    lc = xcube.lightcurve(ev, 100.0, energy_band=[(0.5, 2.0), (2.0, 10.0)]).compute()
    hr = hardness_ratio(lc, soft=(0.5, 2.0), hard=(2.0, 10.0))
    s, h = lc["rate"].isel(band=0).values, lc["rate"].isel(band=1).values
    se, he = lc["rate_err"].isel(band=0).values, lc["rate_err"].isel(band=1).values
    np.testing.assert_allclose(hr["ratio"].values, (h - s) / (h + s))
    # numerical derivative check of the propagated error
    np.testing.assert_allclose(hr["ratio_err"].values, 2 * np.sqrt(h**2 * se**2 + s**2 * he**2) / (h + s) ** 2)
    assert hr.attrs["soft_band"] == "0.5-2keV" and np.all(np.abs(hr["ratio"].values[np.isfinite(hr["ratio"])]) <= 1)
    assert hardness_ratio(lc, soft="0.5-2keV", hard="2-10keV")["ratio"].equals(hr["ratio"])
    with pytest.raises(ValueError, match="not among"):
        hardness_ratio(lc, soft=(0.3, 2.0))


def test_hardness_ratio_is_nan_where_both_bands_are_empty():
    t = np.arange(3.0)
    lc = xr.Dataset({"rate": (("band", "time"), [[0.0, 1.0, 2.0], [0.0, 3.0, 0.0]]),
                     "rate_err": (("band", "time"), [[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]])},
                    coords={"time": t, "band": ["s", "h"], "energy_lo": ("band", [0.5, 2]),
                            "energy_hi": ("band", [2, 10])})
    hr = hardness_ratio(lc, soft=(0.5, 2), hard=(2, 10))
    assert np.isnan(hr["ratio"].values[0]) and hr["ratio"].values[1] == 0.5 and hr["ratio"].values[2] == -1.0


def test_net_lightcurve_from_a_model_light_curve_file(ev, tmp_path):
    lc = xcube.lightcurve(ev, 10.0).compute()
    model = lc.drop_vars("counts")
    model["rate"] = xr.full_like(lc["rate"], 2.5, dtype=float)
    model["rate_err"] = xr.full_like(lc["rate"], 0.1, dtype=float)
    path = xcube.write_lightcurve(tmp_path / "bkg.lc", rebin(model, 2))  # coarser model bins: resampled
    net = net_lightcurve(lc, str(path))
    good = lc["exposure"].values > 0
    np.testing.assert_allclose(net["bkg_rate"].values[good], 2.5)
    np.testing.assert_allclose(net["net_rate"].values[good], lc["rate"].values[good] - 2.5)
    np.testing.assert_allclose(net["net_rate_err"].values[good], np.hypot(lc["rate_err"].values[good],
                                                                           net["bkg_rate_err"].values[good]))
    via_lc = xcube.lightcurve(ev, 10.0, background=str(path))
    np.testing.assert_allclose(via_lc["net_rate"].values[good], net["net_rate"].values[good])
    with pytest.raises(TypeError, match="model light curve"):
        net_lightcurve(lc, 3.0)


def test_net_lightcurve_from_a_transient_search_result(ev):
    """Expected counts of the search model summed over a region, on the same bins."""
    edges = np.arange(20000.0, 32001.0, 1000.0)
    cube = xcube.bin_events(ev, time=100.0, x=edges, y=edges)
    expected = (cube * 0 + 0.5).astype(float)  # a flat model: 0.5 expected counts per cell and frame

    class Result:  # the public attributes of xcube's SearchResult that net_lightcurve uses
        pass

    res = Result()
    res.expected, res.cube = expected, cube
    region = "physical;box(26000,26000,4000,4000,0)"
    lc = xcube.lightcurve(ev, 100.0, region=region, background=res)
    n_cells = int(xcube.region_mask(cube, region).sum())
    exp = lc["exposure"].values
    good = exp > 0
    np.testing.assert_allclose(lc["bkg_counts"].values, 0.5 * n_cells)
    np.testing.assert_allclose(lc["bkg_rate"].values[good], 0.5 * n_cells / exp[good])
    np.testing.assert_allclose(lc["net_rate"].values[good], lc["rate"].values[good] - lc["bkg_rate"].values[good])
    assert "transient-search" in lc.attrs["background_model"]
    with pytest.raises(ValueError, match="region"):
        net_lightcurve(xcube.lightcurve(ev, 100.0), res)


def test_accessor_methods(ev):
    lc = ev.xcube.select(energy_band=(0.5, 10.0))
    lc = xcube.lightcurve(ev, 10.0)
    assert lc.xcube.rebin(5)["counts"].equals(rebin(lc, 5)["counts"])
    assert len(lc.xcube.split_by_gti()) == 2
    p = ev.xcube.power_spectrum(500.0, 1.0)
    assert p.attrs["n_segments"] == 5 and xcube.to_stingray(p).m == 5
    assert ev.xcube.to_stingray().time.size == ev.sizes["event"]
    two = xcube.lightcurve(ev, 100.0, energy_band=[(0.5, 2.0), (2.0, 10.0)])
    assert two.xcube.hardness_ratio()["ratio"].sizes["time"] == two.sizes["time"]


def test_net_lightcurve_from_a_search_result_on_other_bins_stays_lazy(ev):
    """Light-curve bins other than the search's frames: the model is resampled
    in one lazy task, computed with the light curve, to the same numbers."""
    import dask

    edges = np.arange(20000.0, 32001.0, 1000.0)
    cube = xcube.bin_events(ev, time=100.0, x=edges, y=edges)

    class Result:
        pass

    res = Result()
    res.expected, res.cube = (cube * 0 + 0.5).astype(float), cube
    region = "physical;box(26000,26000,4000,4000,0)"
    lc = xcube.lightcurve(ev, 300.0, region=region)
    with dask.config.set(scheduler=lambda *a, **k: (_ for _ in ()).throw(AssertionError("computed"))):
        net = net_lightcurve(lc, res, region=region)
    assert isinstance(net["bkg_rate"].data, dask.array.Array)
    from xcube.products.net import background_on_bins

    mu = res.expected.where(xcube.region_mask(cube, region)).sum(("y", "x")).values
    exp = cube["exposure"].values
    model = xr.Dataset({"rate": ("time", mu / np.where(exp > 0, exp, np.nan))},
                       coords={"time_lo": ("time", cube.time_lo.values), "time_hi": ("time", cube.time_hi.values)})
    want, _ = background_on_bins(model, lc.time_lo.values, lc.time_hi.values)  # the eager route
    np.testing.assert_allclose(net["bkg_rate"].values, want, rtol=1e-12)
    assert np.isfinite(want).sum() >= 5


def test_hardness_ratio_is_dimensionless():
    """Sweep p26: the ratio and its error carried the rates' units, count/s."""
    t = np.arange(10.0)
    rate = xr.DataArray(np.array([[1.0, 3.0]] * 10), dims=("time", "band"),
                        coords={"time": t, "band": ["0.5-2.0", "2.0-10.0"], "energy_lo": ("band", [0.5, 2.0]),
                                "energy_hi": ("band", [2.0, 10.0])}, attrs={"units": "count/s"})
    lc = xr.Dataset({"rate": rate, "rate_err": rate * 0.1})
    hr = xcube.products.hardness_ratio(lc)
    assert hr["ratio"].attrs["units"] == "1" and hr["ratio_err"].attrs["units"] == "1"
    assert hr["intensity"].attrs["units"] == "count/s"
    np.testing.assert_allclose(hr["ratio"], 0.5)


def _model(lo, rate, **attrs):
    lo = np.asarray(lo, float)
    return xr.Dataset({"rate": ("time", np.asarray(rate, float)), "rate_err": ("time", np.full(lo.size, 0.1))},
                      coords={"time": lo + 5.0, "time_lo": ("time", lo), "time_hi": ("time", lo + 10.0)},
                      attrs=attrs)


def test_net_background_model_is_averaged_over_each_bins_good_time(ev):
    """Sweep p28: a bin straddling the GTI gap took the model over the whole bin, gap included (a flare cut
    out of the source's GTIs raised its background). Now only its good part counts; errors unchanged where
    bins are whole."""
    lc = xcube.lightcurve(ev, 100.0).compute()
    lo = np.arange(T0, T0 + 3000.0, 10.0)
    # the light curve's good time: [T0, T0+1020) and [T0+1060, T0+3000); bin 10, [1000, 1100), is partial
    lc = lc.assign(gti_start=("gti", [T0, T0 + 1060.0]), gti_stop=("gti", [T0 + 1020.0, T0 + 3000.0]))
    rate = np.where((lo >= T0 + 1020.0) & (lo < T0 + 1060.0), 50.0, 1.0)  # a flare inside the gap
    net = net_lightcurve(lc, _model(lo, rate, mjdref=ev.attrs["mjdref"], timesys=ev.attrs.get("timesys", "TT")))
    np.testing.assert_allclose(net["bkg_rate"].values, 1.0)  # the bin [1000, 1100) sees only model rate 1
    whole = np.arange(lc.sizes["time"]) != 10
    np.testing.assert_allclose(net["bkg_rate_err"].values[whole], 0.1 / np.sqrt(10))


def test_net_background_model_on_another_time_reference_is_refused(ev):
    """Sweep p28: a model counting from another MJDREF was lined up on raw seconds (background x50)."""
    lc = xcube.lightcurve(ev, 100.0).compute()
    lo = np.arange(T0, T0 + 3000.0, 10.0)
    other = _model(lo, np.ones(lo.size), mjdref=float(ev.attrs["mjdref"]) + 1.0, timesys="TT", source="bkg.lc")
    with pytest.raises(ValueError, match="bkg.lc counts its times from MJDREF"):
        net_lightcurve(lc, other)
    net_lightcurve(lc, _model(lo, np.ones(lo.size)))  # a model without a reference is taken as the light curve's
