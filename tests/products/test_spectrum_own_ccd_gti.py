"""Spectra and images count only the events inside their own CCD's good time
(XMM EPIC STDGTInn, as SAS ``evselect`` filters them), the good time their
EXPOSURE is taken from: a CCD whose GTI has a hole that other CCDs cover
(so the union GTI does not) loses its events in the hole, as the light curve
of the same region does. They used to be counted over the exposure of the
CCD's own GTI: a rate too high."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from conftest import real_file

import xcube
from xcube import gti as gtimod

T0 = 1.0e8
#: CCD 1 has a 3000 s dropout, CCD 2 is on throughout, CCD 3 starts 1000 s late
GTIS = {1: ([T0, T0 + 6000.0], [T0 + 3000.0, T0 + 1.0e4]), 2: ([T0], [T0 + 1.0e4]), 3: ([T0 + 1000.0], [T0 + 1.0e4])}
SRC = "physical;circle(26000,26000,300)"  # on CCD 1
BKG = "physical;box(24500,24500,800,800,0)"  # on CCD 2
BOTH = "physical;box(26400,26000,1500,700,0)"  # the CCD 1 source and the CCD 3 strip beside it


@pytest.fixture
def dropout(make_event_file):
    """Events over the whole 10 ks, also inside CCD 1's dropout and before CCD 3's start (legal: not filtered
    by the per-CCD tables): a source at (26000, 26000) on CCD 1, a field on CCD 2 around (24500, 24500), a
    strip on CCD 3 at x 27000-27200, y 25600-26400."""
    rng = np.random.default_rng(7)
    n1, n2, n3 = 1200, 900, 600
    x = np.r_[26000 + rng.normal(0, 40, n1), rng.uniform(24000, 25000, n2), rng.uniform(27000, 27200, n3)]
    y = np.r_[26000 + rng.normal(0, 40, n1), rng.uniform(24000, 25000, n2), rng.uniform(25600, 26400, n3)]
    ccd = np.r_[np.full(n1, 1), np.full(n2, 2), np.full(n3, 3)].astype(np.uint8)
    t = rng.uniform(T0, T0 + 1.0e4, ccd.size)
    order = np.argsort(t)
    keys = {f"{k}{c:02d}": v for c in (1, 2, 3) for k, v in (("ONTIME", 1.0), ("LIVETI", 1.0))}
    return make_event_file(n=ccd.size, name="m1_dropout.fits", header=keys, columns={
        "TIME": t[order], "X": np.round(x[order]).astype(np.int32), "Y": np.round(y[order]).astype(np.int32),
        "CCDNR": ccd[order], "PATTERN": np.zeros(ccd.size, np.uint8)},
        gti_extensions={f"STDGTI{c:02d}": (*g, {"CCDID": c}) for c, g in GTIS.items()})


def _own(path):
    """Events (boolean mask) inside their own CCD's GTI, read with astropy."""
    d = fits.getdata(path, "EVENTS")
    keep = np.zeros(len(d), bool)
    for c, g in GTIS.items():
        keep |= (d["CCDNR"] == c) & gtimod.in_gti(np.asarray(d["TIME"], float), (np.asarray(g[0]), np.asarray(g[1])))
    return d, keep


def test_spectrum_counts_the_source_ccds_good_time_as_the_light_curve(dropout):
    ev = xcube.open_events(dropout)
    assert ev.attrs["exposure"] == pytest.approx(1.0e4)  # the union over CCDs covers CCD 1's hole
    d, own = _own(dropout)
    in_src = np.hypot(d["X"] - 26000.0, d["Y"] - 26000.0) <= 300
    in_bkg = (np.abs(d["X"] - 24500.0) <= 400) & (np.abs(d["Y"] - 24500.0) <= 400)
    sp = xcube.spectrum(ev, region=SRC, background=BKG)
    assert sp.attrs["ontime"] == pytest.approx(7000.0)  # CCD 1's own good time
    assert int(sp["counts"].sum()) == int(np.count_nonzero(in_src & own)) < int(np.count_nonzero(in_src))
    assert sp.attrs["bkg_ontime"] == pytest.approx(1.0e4)  # CCD 2: on throughout, nothing dropped
    assert int(sp["bkg_counts"].sum()) == int(np.count_nonzero(in_bkg))
    lc = xcube.lightcurve(ev, 100.0, region=SRC)
    assert int(sp["counts"].sum()) == int(lc["counts"].sum())
    assert float(lc["exposure"].sum()) == pytest.approx(sp.attrs["ontime"])


def test_a_region_over_two_ccds_keeps_each_event_in_its_own_ccds_good_time(dropout):
    ev = xcube.open_events(dropout)
    d, own = _own(dropout)
    inside = (np.abs(d["X"] - 26400.0) <= 750) & (np.abs(d["Y"] - 26000.0) <= 350)
    assert set(np.unique(d["CCDNR"][inside])) == {1, 3}
    sp = xcube.spectrum(ev, region=BOTH)
    assert int(sp["counts"].sum()) == int(np.count_nonzero(inside & own))
    assert sp.attrs["ontime"] == pytest.approx(7000.0)  # the CCD with most events (CCD 1) decides the exposure
    img = xcube.image(ev, 100.0, region=BOTH)
    assert int(img.sum()) == int(sp["counts"].sum()) and img.attrs["ontime"] == sp.attrs["ontime"]


def test_image_keeps_each_event_in_its_own_ccds_good_time(dropout):
    ev = xcube.open_events(dropout)
    d, own = _own(dropout)
    img = xcube.image(ev, 100.0).compute()
    assert int(img.sum()) == int(np.count_nonzero(own)) < len(d)
    # the extent is that of the kept events; the exposure rule is the spectrum's (the CCD with most events)
    assert img.attrs["ontime"] == pytest.approx(1.0e4)  # CCD 2 holds most kept events (900 vs ~840 and 540)
    src = xcube.image(ev, 100.0, region=SRC)
    sp = xcube.spectrum(ev, region=SRC)
    assert int(src.sum()) == int(sp["counts"].sum()) and src.attrs["exposure"] == sp.attrs["exposure"]


def test_real_mos1_with_a_dropout_on_ccd_1(tmp_path):
    """The sweep's reproduction: the real MOS1 file with a 3000 s hole in STDGTI01 only (its events kept)."""
    src = real_file("xmm", "P0001730201M1S002MIEVLI.FTZ")
    path = tmp_path / "m1_dropout.fits"
    with fits.open(src) as h:
        g = h["STDGTI01"]
        s, e = np.array(g.data["START"], float), np.array(g.data["STOP"], float)
        ns, ne = [s[0], 100533000.0, s[1]], [100530000.0, e[0], e[1]]
        newg = fits.BinTableHDU.from_columns([fits.Column("START", "D", array=ns),
                                              fits.Column("STOP", "D", array=ne)], header=g.header, name="STDGTI01")
        fits.HDUList([hh if hh.name != "STDGTI01" else newg for hh in h]).writeto(path)
    ev = xcube.open_events(path)
    region = "physical;circle(24745,24060,600)"  # HD 159176, on CCD 1
    d = fits.getdata(path, "EVENTS")
    m = (d["PATTERN"] <= 12) & (d["FLAG"] == 0) & (np.hypot(d["X"] - 24745.0, d["Y"] - 24060.0) <= 600)
    own = gtimod.in_gti(np.asarray(d["TIME"], float), (np.asarray(ns), np.asarray(ne)))
    sp = xcube.spectrum(ev, region=region, channel_bin=1, pi_range=(0, 15000))
    img = xcube.image(ev, region=region, bin_size=40)
    lc = xcube.lightcurve(ev, 100.0, region=region)
    n = int(np.count_nonzero(m & own))
    assert n < int(np.count_nonzero(m))
    assert int(sp["counts"].sum()) == int(img.sum()) == int(lc["counts"].sum()) == n
    assert sp.attrs["ontime"] == pytest.approx(sum(b - a for a, b in zip(ns, ne)))


def test_a_ccd_whose_gti_table_is_empty_has_no_good_time(make_event_file, tmp_path):
    """Sweep p28: a 0-row STDGTInn (the CCD never had good time) made the CCD drop out of the per-CCD
    table, so its events counted as those of a CCD without a table of its own: all of them entered the
    light curve and image. They are now outside good time, through a time cut and a write/read too."""
    rng = np.random.default_rng(3)
    n = 3000
    ccd = rng.integers(1, 4, n).astype(np.uint8)
    t = np.sort(rng.uniform(T0, T0 + 1.0e4, n))
    gtis = {1: ([T0], [T0 + 1.0e4]), 2: ([T0], [T0 + 1.0e4]), 3: (np.empty(0), np.empty(0))}
    path = make_event_file(n=n, name="m1_ccd3_empty.fits", columns={"TIME": t, "CCDNR": ccd},
                           gti_extensions={f"STDGTI{c:02d}": (*g, {"CCDID": c}) for c, g in gtis.items()})
    with fits.open(path) as h:
        assert len(h["STDGTI03"].data) == 0
    ev = xcube.open_events(path)
    assert sorted(set(ev["ccd_gti_ccd"].values.tolist())) == [1, 2, 3]
    assert gtimod.exposure(gtimod.ccd_good_time(ev, [3])) == 0.0
    good = int(np.count_nonzero(ccd != 3))
    lc = xcube.lightcurve(ev, 1000.0, screening=False)
    assert int(lc["counts"].sum()) == good
    assert int(xcube.image(ev, screening=False).sum()) == good
    cut = xcube.select(ev, gti=(T0 + 2000.0, T0 + 5000.0))  # a time cut keeps CCD 3 without good time
    assert gtimod.exposure(gtimod.ccd_good_time(cut, [3])) == 0.0
    assert int(xcube.lightcurve(cut, 1000.0, screening=False)["counts"].sum()) == int(
        np.count_nonzero((ccd != 3) & (t >= T0 + 2000.0) & (t < T0 + 5000.0)))
    from xcube.io.write_events import write_events

    back = xcube.open_events(write_events(tmp_path / "again.fits", ev.load()))
    assert gtimod.exposure(gtimod.ccd_good_time(back, [3])) == 0.0
    assert int(xcube.lightcurve(back, 1000.0, screening=False)["counts"].sum()) == good
    with pytest.raises(ValueError, match=r"of which \[3\] had no good time"):
        xcube.lightcurve(ev, 1000.0, region="physical;circle(26000,26000,20000)", screening=False,
                         expr="CCDNR == 3")


def test_a_region_on_a_dead_ccd_and_a_ccd_without_a_table_is_a_clear_error():
    """Review p28: naming the CCDs without good time took exposure(None) of a CCD with no GTI table of
    its own: a TypeError traceback instead of the message."""
    from xcube.products.lightcurve import region_good_time

    ev, _ = xcube.simulate.event_list("xmm-mos1", duration=2000.0, seed=1)
    ccd = np.asarray(ev["ccdnr"].values)
    g0, g1 = float(ev.gti_start.values[0]), float(ev.gti_stop.values[-1])
    ev = ev.assign(ccd_gti_ccd=("ccd_gti", np.array([1, 2], np.int16)),  # CCD 1: no good time; others: no table
                   ccd_gti_start=("ccd_gti", [g0, g0]), ccd_gti_stop=("ccd_gti", [g0, g1]))
    other = int(np.unique(ccd[ccd > 2])[0])
    (x1, y1), (x3, y3) = ((float(np.median(ev.x.values[ccd == c])), float(np.median(ev.y.values[ccd == c])))
                          for c in (1, other))
    reg = f"physical;circle({(x1 + x3) / 2},{(y1 + y3) / 2},{np.hypot(x1 - x3, y1 - y3) / 2 + 200})"
    with pytest.raises(ValueError, match=r"of which \[1\] had no good time"):
        region_good_time(ev, [reg])
