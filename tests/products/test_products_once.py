"""Light curves and power spectra with a region select each region once, and
summed cameras build each camera's light curve once; the numbers are those
of independent computations."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
from conftest import real_file

import xcube

MOS1 = ("xmm", "xga_0201901401_mos1_exp1_clean_evts.fits")
MOS2 = ("xmm", "xga_0201901401_mos2_exp1_clean_evts.fits")
SRC = "physical;circle(26000,26000,600)"
BKG = "physical;annulus(26000,26000,900,1400)"


@pytest.fixture
def region_passes(monkeypatch):
    """Counts of the region selections made (``EventFilter.for_events`` with a
    region) and of the events whose x/y the region tests read."""
    selm = importlib.import_module("xcube.select")
    seen = {"selections": 0, "events": 0}
    for_events, test = selm.EventFilter.for_events.__func__, selm.RegionTest.__call__

    def counted_filter(cls, events, **kw):
        seen["selections"] += kw.get("region") is not None
        return for_events(cls, events, **kw)

    def counted_test(self, cols):
        seen["events"] += len(cols["x"])
        return test(self, cols)

    monkeypatch.setattr(selm.EventFilter, "for_events", classmethod(counted_filter))
    monkeypatch.setattr(selm.RegionTest, "__call__", counted_test)
    return seen


def test_summed_cameras_build_each_camera_once(monkeypatch):
    """With a region on XMM EPIC, the light curve of every camera was built
    twice (once on the cameras' common GTIs, again on those of the region's CCDs)."""
    lcm = importlib.import_module("xcube.products.lightcurve")
    tree = xcube.open_events([real_file(*MOS1), real_file(*MOS2)])
    nodes = list(xcube.io.events.event_nodes(tree).values())
    built, single = [], lcm.lightcurve

    def counted(events, *args, **kw):
        if "event" in getattr(events, "dims", {}):
            built.append(events.attrs["instrument"])
        return single(events, *args, **kw)

    monkeypatch.setattr(lcm, "lightcurve", counted)
    lc = xcube.lightcurve(tree, 100.0, energy_band=(0.5, 2.0), region=SRC, background=BKG).compute()
    assert sorted(built) == ["EMOS1", "EMOS2"]
    monkeypatch.undo()
    # the same numbers as each camera alone over the good time common to both cameras and to the region's CCDs
    common = xcube.gti.intersection(*[xcube.gti.from_dataset(e) for e in nodes],
                                    *[lcm.region_good_time(e, [SRC, BKG])[0] for e in nodes])
    each = [xcube.lightcurve(xcube.select(e, gti=common), 100.0, energy_band=(0.5, 2.0), region=SRC,
                             background=BKG).compute() for e in nodes]
    for var in ("counts", "bkg_counts"):
        np.testing.assert_array_equal(lc[var].values, each[0][var].values + each[1][var].values)
    np.testing.assert_array_equal(lc["exposure"].values, each[0]["exposure"].values)
    assert float(lc["exposure"].sum()) == pytest.approx(xcube.gti.exposure(common))


def test_light_curve_selects_each_region_once(region_passes):
    """The region was selected for its CCDs' good time and again in every
    energy band (4 passes over x/y for one band, 6 for two): now once per
    region, its events held for the CCDs, the bands and the binning."""
    ev = xcube.open_events(real_file(*MOS1))
    n = ev.sizes["event"]
    bands = [(0.5, 2.0), (2.0, 10.0)]
    lc = xcube.lightcurve(ev, 100.0, energy_band=bands, region=SRC, background=BKG, screening=False).compute()
    assert region_passes["selections"] == 2  # the source and the background region
    # select's count pass and holding the region's events: two reads of x/y per region, whatever the bands
    assert region_passes["events"] <= 2 * 2 * n
    # counts: a histogram of the region's events inside the good time of the regions' CCDs
    ccd_gti = importlib.import_module("xcube.products.lightcurve").region_good_time(ev, [SRC, BKG])[0]
    edges = np.append(lc["time_lo"].values, lc["time_hi"].values[-1])
    for k, band in enumerate(bands):
        for region, var in ((SRC, "counts"), (BKG, "bkg_counts")):
            t = xcube.select(ev, region=region, energy_band=band, gti=ccd_gti)["time"].values
            np.testing.assert_array_equal(lc[var].isel(band=k).values, np.histogram(t, edges)[0])


def test_power_spectrum_selects_the_region_once(region_passes):
    ev = xcube.open_events(real_file(*MOS1))
    n = ev.sizes["event"]
    pds = xcube.power_spectrum(ev, segment=256.0, dt=2.0, region=SRC, screening=False)
    assert region_passes["selections"] == 1
    assert region_passes["events"] <= 2 * n  # was 4 n: the CCDs' good time, then the selection again
    ccd_gti = importlib.import_module("xcube.products.lightcurve").region_good_time(ev, [SRC])[0]
    ref = xcube.power_spectrum(xcube.select(ev, region=SRC, gti=ccd_gti), segment=256.0, dt=2.0, screening=False)
    np.testing.assert_allclose(pds["power"].values, ref["power"].values, rtol=1e-12)
    assert pds.attrs["n_segments"] == ref.attrs["n_segments"]


def test_a_region_larger_than_the_hold_limit_stays_lazy(monkeypatch):
    """Memory stays bounded: a region holding more than HELD_EVENTS events is not held in memory, and the
    light curve is the same."""
    lcmod = importlib.import_module("xcube.products.lightcurve")
    ev = xcube.open_events(real_file(*MOS1))
    held = lcmod.region_events(ev, SRC)
    assert len(held.source["time"].data.dask) == 1  # computed and held: one in-memory array
    want = xcube.lightcurve(ev, 100.0, region=SRC, screening=False).compute()
    monkeypatch.setattr(lcmod, "HELD_EVENTS", 10)
    lazy = lcmod.region_events(ev, SRC)
    assert lazy.source.sizes["event"] > 10
    assert len(lazy.source["time"].data.dask) > 1  # still the selection's graph, read where it is used
    got = xcube.lightcurve(ev, 100.0, region=SRC, screening=False).compute()
    np.testing.assert_array_equal(got["counts"].values, want["counts"].values)
    np.testing.assert_array_equal(got["exposure"].values, want["exposure"].values)
