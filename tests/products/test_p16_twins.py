"""One rule in one place: opening xcube's stores or another writer's
(io.cache.open_store), picking a band of a multi-band light curve
(products.hardness.select_band), and holding a region's events in memory."""
import importlib
import json

import matplotlib
import numpy as np
import pytest
import xarray as xr

import xcube
from xcube.io import cache as cachemod

matplotlib.use("Agg")


def _cube(**attrs):
    return xr.Dataset({"counts": (("time", "y", "x"), np.ones((2, 4, 4))),
                       "expected": (("time", "y", "x"), np.ones((2, 4, 4)))},
                      coords={"time": [0.0, 1.0], "y": np.arange(4.0), "x": np.arange(4.0)}, attrs=attrs)


def _count_root_attrs(monkeypatch):
    calls = []
    real = cachemod.root_attrs

    def counted(store):
        calls.append(store)
        return real(store)

    monkeypatch.setattr(cachemod, "root_attrs", counted)
    return calls


# 1. "verify the store when it is xcube's, else open it plain": io.cache.open_store(foreign_ok=True)
def test_a_stale_store_is_not_plotted_as_a_foreign_one(tmp_path):
    """plot_file opened a store that xcube had marked stale (damaged) as if another writer's, unless its attrs
    said "transient-search"."""
    from xcube.plot import plot_file

    store = cachemod.to_zarr(_cube(), tmp_path / "s.zarr")
    plot_file(store)  # xcube's, complete: verified and drawn
    assert cachemod.mark_stale(store, "a chunk failed its check")
    with pytest.raises(OSError, match=r"incomplete xcube store"):
        plot_file(store)


def test_another_writers_store_is_opened_as_it_is(tmp_path):
    from xcube.frames.store import read_dataset

    _cube(note="not xcube's").to_zarr(tmp_path / "f.zarr", consolidated=False, zarr_format=3)
    assert read_dataset(tmp_path / "f.zarr")["counts"].shape == (2, 4, 4)
    assert cachemod.open_store(tmp_path / "f.zarr", foreign_ok=True).attrs == {"note": "not xcube's"}
    with pytest.raises(OSError, match="incomplete xcube store"):
        cachemod.open_store(tmp_path / "f.zarr")  # (without foreign_ok: xcube's stores only)


def test_a_store_with_an_xcube_kind_but_no_record_is_refused(tmp_path):
    """The same rule for both readers: a ``kind`` attr is xcube's (read_dataset read it unverified)."""
    from xcube.frames.store import read_dataset

    _cube(kind="transient-search").to_zarr(tmp_path / "k.zarr", consolidated=False, zarr_format=3)
    with pytest.raises(OSError, match="incomplete xcube store"):
        read_dataset(tmp_path / "k.zarr")


def test_read_dataset_reads_the_root_attrs_once(tmp_path, monkeypatch):
    from xcube.frames.store import read_dataset, write_dataset

    path = write_dataset(_cube(), tmp_path / "d.zarr")
    calls = _count_root_attrs(monkeypatch)
    assert read_dataset(path)["counts"].shape == (2, 4, 4)
    assert len(calls) == 1
    doc = json.loads((path / "zarr.json").read_text())
    doc["attributes"]["xcube_complete"]["attrs_crc"] += 1
    (path / "zarr.json").write_text(json.dumps(doc))
    with pytest.raises(xcube.io.integrity.StoreCorruptError, match="root attributes"):
        read_dataset(path)


# 2. one band selector (index, label, text of an index, (emin, emax)) for hardness_ratio and plot_file
@pytest.fixture
def two_bands(make_event_file, tmp_path):
    lc = xcube.lightcurve(xcube.open_events(make_event_file(n=4000)), 500.0,
                          energy_band=[(0.5, 2.0), (2.0, 10.0)]).compute()
    return lc, xcube.write_lightcurve(tmp_path / "mb.lc", lc)


def test_plot_file_takes_an_energy_pair_and_an_index_as_text(two_bands):
    from xcube.plot import plot_file

    _, path = two_bands
    for band in ((2, 10), (2.0, 10.0), 1, "1", "-1", "2-10keV"):
        fig = plot_file(path, band=band)
        assert "(2-10keV)" in fig._suptitle.get_text(), band
    assert "(0.5-2keV)" in plot_file(path, band="0")._suptitle.get_text()
    with pytest.raises(ValueError, match=r"band=3-5 keV is not among the light curve's bands"):
        plot_file(path, band=(3, 5))
    with pytest.raises(ValueError, match=r"band=2: it has 2 bands"):
        plot_file(path, band="2")


def test_select_band_prefers_a_label_to_an_index_and_hardness_takes_indices(two_bands):
    from xcube.products.hardness import hardness_ratio, select_band

    lc, _ = two_bands
    odd = lc.assign_coords(band=["1", "0"])  # labels that read as indices: the label wins
    assert float(select_band(odd, "1")["energy_lo"]) == 0.5
    assert float(select_band(odd, 1)["energy_lo"]) == 2.0
    by_pair = hardness_ratio(lc, soft=(0.5, 2.0), hard=(2.0, 10.0))
    xr.testing.assert_identical(hardness_ratio(lc, soft=0, hard=-1), by_pair)
    with pytest.raises(ValueError, match=r"hardness_ratio: soft band='1-3keV': the bands are 0.5-2keV, 2-10keV"):
        hardness_ratio(lc, soft="1-3keV")


# 6. a region's events: only the columns read later are computed and held
def test_region_events_hold_only_the_columns_read_later(make_event_file):
    from xcube.select import screening_expr

    lcmod = importlib.import_module("xcube.products.lightcurve")

    ev = xcube.open_events(make_event_file(n=20_000))
    expr = screening_expr(ev, "PI > 300", True)
    inside = lcmod.region_events(ev, "circle(26000,26000,3000)", "circle(22000,22000,1500)", expr)

    def held(ds):
        """Columns whose Dask graph is only their values (``da.from_array``), not the region selection."""
        return {n for n, v in ds.variables.items() if hasattr(v.data, "dask")
                and all(k.startswith(("array-", "original-array-")) for k in v.data.dask.layers)}

    lazy = {n for n, v in ev.variables.items() if hasattr(v.data, "dask")}
    want = {"time", "energy", "pi", "pattern", "flag"} & lazy
    assert {"time", "pi"} <= want < lazy
    assert held(inside.source) == want and held(inside.background) == want
    for n in lazy - want:  # still the selection's lazy graph, same values
        np.testing.assert_array_equal(inside.source[n].values,
                                      xcube.select(ev, region="circle(26000,26000,3000)")[n].values)
    lc = xcube.lightcurve(ev, 500.0, energy_band=(0.5, 2.0), region="circle(26000,26000,3000)",
                          background="circle(22000,22000,1500)", expr="PI > 300")
    assert int(lc["counts"].sum()) == int(xcube.select(ev, energy_band=(0.5, 2.0), region="circle(26000,26000,3000)",
                                                      expr=expr).sizes["event"])


def test_multi_band_light_curve_reads_the_expression_band_once(monkeypatch):
    """A light curve of three bands compiled the expression three times to find the band each covers (once
    per band); the per-band selections then read the band off their compiled expression."""
    from xcube.simulate import event_list

    selmod = importlib.import_module("xcube.select")

    ev, _ = event_list("xmm-pn", duration=2000.0, background_rate=2.0, sources=0, soft_protons=0, seed=1)
    calls = []
    real = selmod.expression_band
    monkeypatch.setattr(selmod, "expression_band",
                        lambda ev, expr: calls.append(isinstance(expr, str)) or real(ev, expr))
    lc = xcube.lightcurve(ev, 100.0, energy_band=[(0.5, 2.0), (2.0, 4.5), (4.5, 10.0)], expr="PATTERN <= 4")
    assert lc.sizes["band"] == 3 and sum(calls) == 1  # text compiled here once
