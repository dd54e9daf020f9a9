"""eROSITA: each event counts only inside its own telescope module's good
time (``GTIn`` intersected with ``FLAREGTIn``, module from ``TM_NR``), as
XMM EPIC events inside their own CCD's ``STDGTInn``: the profile's CCD
column is ``tm_nr``. Whole-field light curves keep the union over modules;
info, images and the transient search still work."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits

import xcube
from xcube.cli import main
from xcube.missions import get_profile

T0 = 6.2e8
SPAN = 3000.0
# module -> good intervals: GTI3 covers the first 1000 s only; FLAREGTI5 has a hole 1500-2000 s
GTI = {m: ([T0], [T0 + (1000.0 if m == 3 else SPAN)]) for m in range(1, 8)}
FLARE5 = ([T0, T0 + 2000.0], [T0 + 1500.0, T0 + SPAN])
REGION = "physical;circle(0,0,4000)"


def _erosita(path):
    """An eSASS-like merged event list: 7 modules, a source at X=Y=0 on a
    flat background, every module's events over the whole 3000 s, PAT_TYP
    0-5 (1-4 valid). Returns ``(path, time, tm_nr, pat_typ, x, y)``."""
    rng = np.random.default_rng(11)
    n_src, n_bkg = 6000, 8000
    n = n_src + n_bkg
    x = np.r_[rng.normal(0, 600, n_src), rng.uniform(-40000, 40000, n_bkg)].astype(np.int32)
    y = np.r_[rng.normal(0, 600, n_src), rng.uniform(-40000, 40000, n_bkg)].astype(np.int32)
    t = rng.uniform(T0, T0 + SPAN, n)
    o = np.argsort(t)
    t, x, y = t[o], x[o], y[o]
    tm = rng.integers(1, 8, n).astype(np.uint8)
    pat = rng.integers(0, 6, n).astype(np.int16)
    cols = [fits.Column("TIME", "D", array=t), fits.Column("X", "J", array=x), fits.Column("Y", "J", array=y),
            fits.Column("PI", "E", array=rng.uniform(200, 9000, n).astype(np.float32)),
            fits.Column("PAT_TYP", "I", array=pat), fits.Column("TM_NR", "B", array=tm)]
    ev = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    for k, v in dict(TELESCOP="eROSITA", INSTRUME="eROSITA", MJDREF=51543.875, TIMESYS="TT", OBS_ID="700001",
                     TSTART=T0, TSTOP=T0 + SPAN, DATAMODE="FRAMESTORE", RA_PNT=150.0, DEC_PNT=2.0).items():
        ev.header[k] = v
    for i, k in ((2, 0), (3, 1)):
        ev.header[f"TCTYP{i}"] = ("RA---SIN", "DEC--SIN")[k]
        ev.header[f"TCRVL{i}"] = (150.0, 2.0)[k]
        ev.header[f"TCRPX{i}"] = 0.0
        ev.header[f"TCDLT{i}"] = (-1.388888889e-05, 1.388888889e-05)[k]
        ev.header[f"TLMIN{i}"], ev.header[f"TLMAX{i}"] = -720000, 720000

    def gti(name, g):
        return fits.BinTableHDU.from_columns([fits.Column("START", "D", array=g[0]),
                                              fits.Column("STOP", "D", array=g[1])], name=name)

    tables = [gti(f"GTI{m}", GTI[m]) for m in range(1, 8)] + [gti("FLAREGTI5", FLARE5)]
    fits.HDUList([fits.PrimaryHDU(), ev, *tables]).writeto(path)
    return path, t, tm, pat, x, y


def _own_good(t, tm):
    """True for events inside their own module's good time (GTIn and FLAREGTIn)."""
    good = np.zeros(t.size, bool)
    for m in range(1, 8):
        sets = [GTI[m]] + ([FLARE5] if m == 5 else [])
        inside = np.ones(t.size, bool)
        for s, e in sets:
            inside &= np.any((t[:, None] >= np.asarray(s)) & (t[:, None] < np.asarray(e)), axis=1)
        good |= (tm == m) & inside
    return good


@pytest.fixture(scope="module")
def ero(tmp_path_factory):
    path, t, tm, pat, x, y = _erosita(tmp_path_factory.mktemp("ero") / "em01_150000_020_EventList_c001.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = xcube.open_events(path)
    return path, ev, t, tm, (pat >= 1) & (pat <= 4), np.hypot(x, y) <= 4000.0


def test_profile_declares_the_module_column():
    assert get_profile("erosita").ccd_variable == "tm_nr"


def test_spectrum_counts_each_event_in_its_own_module_good_time(ero):
    path, ev, t, tm, screened, in_region = ero
    good = _own_good(t, tm)
    assert screened.sum() > (screened & good).sum()  # the test has events outside their module's good time
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sp = xcube.spectrum(ev)
        reg = xcube.spectrum(ev, region=REGION)
    assert int(sp["counts"].sum()) == int((screened & good).sum())
    assert int(reg["counts"].sum()) == int((screened & good & in_region).sum())
    assert any("TM_NR 3, 5" in s for s in sp.attrs["selection"])
    assert sp.attrs["exposure"] == SPAN  # the good time of the whole list (no per-module live time)


def test_other_products_still_work(ero, tmp_path, capsys):
    path, ev, t, tm, screened, in_region = ero
    good = _own_good(t, tm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lc = xcube.lightcurve(ev, 100.0)
        reg_lc = xcube.lightcurve(ev, 100.0, region=REGION)
        img = xcube.image(ev)
        res = xcube.search_transients(ev, time_bin=50.0, hygiene=False)
    # whole field: the union over modules, every screened event
    assert int(lc["counts"].sum()) == int(screened.sum()) and float(lc["exposure"].sum()) == SPAN
    # a region: the good time its modules share (as a region over several XMM CCDs)
    assert reg_lc.attrs["ccds"] == list(range(1, 8)) and float(reg_lc["exposure"].sum()) == 1000.0
    inside = (t >= T0) & (t < T0 + 1000.0)
    assert int(reg_lc["counts"].sum()) == int((screened & in_region & inside).sum())
    assert int(np.asarray(img.values).sum()) == int((screened & good).sum())
    assert res.summary["exposure"] == pytest.approx(SPAN)
    assert main(["info", str(path)]) == 0
    assert "eROSITA" in capsys.readouterr().out
