"""A whole-field light curve (no region) counts each event only inside its
own CCD's good time (XMM EPIC STDGTInn, as SAS ``evselect`` filters them), as
the image and the spectrum of the same events do; its good time (the bins'
exposure) stays the union over CCDs. It used to filter on the union GTI and
count the events inside a CCD's dropout."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

import xcube
from xcube import gti as gtimod

T0 = 1.0e8
#: CCD 2 has a 2000 s hole that CCD 1 covers; CCD 3 starts 500 s late
GTIS = {1: ([T0], [T0 + 1.0e4]), 2: ([T0, T0 + 5000.0], [T0 + 3000.0, T0 + 1.0e4]), 3: ([T0 + 500.0], [T0 + 1.0e4])}


@pytest.fixture
def hole(make_event_file):
    """Events over the whole 10 ks on CCDs 1-3, also inside CCD 2's hole and before CCD 3's start."""
    rng = np.random.default_rng(11)
    n = 3000
    ccd = rng.integers(1, 4, n).astype(np.uint8)
    t = np.sort(rng.uniform(T0, T0 + 1.0e4, n))
    x = np.where(ccd == 1, 24500, np.where(ccd == 2, 26000, 27500)) + rng.integers(-400, 400, n)
    y = 26000 + rng.integers(-400, 400, n)
    keys = {f"{k}{c:02d}": 1.0 for c in GTIS for k in ("ONTIME", "LIVETI")}
    return make_event_file(n=n, name="m1_hole.fits", header=keys, columns={
        "TIME": t, "X": x.astype(np.int32), "Y": y.astype(np.int32), "CCDNR": ccd,
        "PATTERN": np.zeros(n, np.uint8)},
        gti_extensions={f"STDGTI{c:02d}": (*g, {"CCDID": c}) for c, g in GTIS.items()})


def _own_counts(path, band=None):
    """Events inside their own CCD's GTI (and in ``band`` [PI)), counted with astropy."""
    d = fits.getdata(path, "EVENTS")
    keep = np.zeros(len(d), bool)
    for c, g in GTIS.items():
        keep |= (d["CCDNR"] == c) & gtimod.in_gti(np.asarray(d["TIME"], float), (np.asarray(g[0]), np.asarray(g[1])))
    if band is not None:
        keep &= (d["PI"] >= band[0]) & (d["PI"] < band[1])
    return int(np.count_nonzero(keep)), len(d)


def test_whole_field_light_curve_counts_as_the_image(hole):
    ev = xcube.open_events(hole)
    own, total = _own_counts(hole)
    assert own < total  # the file has events in CCD 2's hole and before CCD 3's start
    lc = xcube.lightcurve(ev, 100.0)
    img = xcube.image(ev, 100.0)
    assert int(lc["counts"].sum()) == int(img.sum()) == own
    assert float(lc["exposure"].sum()) == pytest.approx(1.0e4)  # the good time stays the union over CCDs
    assert lc.attrs["gti_from"].startswith("all CCDs")
    assert any("own CCD" in s for s in lc.attrs["selection"])
    # the time order is kept for the binning, and each band is cut the same way
    lcb = xcube.lightcurve(ev, 250.0, energy_band=[(0.2, 2.0), (2.0, 12.0)])
    for band, pi in zip(lcb["band"].values, ((200, 2000), (2000, 12000))):
        assert int(lcb["counts"].sel(band=band).sum()) == _own_counts(hole, pi)[0]


def test_whole_field_light_curve_of_ccds_good_throughout_is_unchanged(make_event_file):
    path = make_event_file(n=500, name="m1_flat.fits")
    lc = xcube.lightcurve(xcube.open_events(path), 50.0, screening=False)
    assert int(lc["counts"].sum()) == 500


#: CCD 3 starts 500 s late and ends 950 s early, the others run 10 ks
SHORT = {1: ([T0], [T0 + 1.0e4]), 2: ([T0], [T0 + 1.0e4]), 3: ([T0 + 500.0], [T0 + 9050.0])}


def test_region_light_curve_has_no_empty_bins_beyond_its_ccds_good_time(make_event_file):
    rng = np.random.default_rng(12)
    n = 2000
    ccd = rng.integers(1, 4, n).astype(np.uint8)
    x = np.where(ccd == 1, 24500, np.where(ccd == 2, 26000, 27500)) + rng.integers(-300, 300, n)
    keys = {f"{k}{c:02d}": 1.0 for c in SHORT for k in ("ONTIME", "LIVETI")}
    path = make_event_file(n=n, name="m1_short.fits", header=keys, columns={
        "TIME": np.sort(rng.uniform(T0, T0 + 1.0e4, n)), "X": x.astype(np.int32),
        "Y": (26000 + rng.integers(-300, 300, n)).astype(np.int32), "CCDNR": ccd, "PATTERN": np.zeros(n, np.uint8)},
        gti_extensions={f"STDGTI{c:02d}": (*g, {"CCDID": c}) for c, g in SHORT.items()})
    ev = xcube.open_events(path)
    whole = xcube.lightcurve(ev, 100.0)
    assert whole.sizes["time"] == 100 and float(whole["time_lo"][0]) == T0
    lc = xcube.lightcurve(ev, 100.0, region="physical;circle(27500,26000,450)")
    # the grid of the whole field, without the 9 empty bins after CCD 3's end; the trailing partial bin
    # [T0 + 9000, T0 + 9100) stays, with 50 s of good time, and so do the 5 empty bins before its start (a
    # rebinned region light curve keeps the whole field's phase)
    np.testing.assert_array_equal(lc["time_lo"].values, whole["time_lo"].values[:91])
    assert float(lc["exposure"][-1]) == pytest.approx(50.0) and float(lc["exposure"][5]) == pytest.approx(100.0)
    assert float(lc["exposure"][:5].sum()) == 0.0 and float(lc["exposure"].sum()) == pytest.approx(8550.0)
    assert np.isfinite(lc["rate"].values[5:]).all()
    np.testing.assert_array_equal(xcube.rebin_lightcurve(lc, 4)["time_lo"].values,
                                  xcube.rebin_lightcurve(whole, 4)["time_lo"].values[:lc.sizes["time"] // 4])
    # its columns carry the time reference, also rebinned
    assert xcube.rebin_lightcurve(lc, 4)["rate"].xcube.times().size == lc.sizes["time"] // 4
    # the search's model on those bins: its frames 0..90, counts and all
    res = xcube.search_transients(ev, time_bin=100.0)
    net = xcube.lightcurve(ev, 100.0, region="physical;circle(27500,26000,450)", background=res)
    assert net.sizes["time"] == 91 and "bkg_counts" in net
    # a window asked for keeps its bins
    win = xcube.lightcurve(ev, 100.0, region="physical;circle(27500,26000,450)", time_range=(T0, T0 + 1.0e4))
    assert win.sizes["time"] == 100
