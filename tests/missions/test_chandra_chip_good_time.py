"""Chandra ACIS: a region's light curve and spectrum use the good time (GTI
table with CCD_ID) and live time (LIVTIMEn/ONTIMEn) of the chip its events
are on, as CIAO does, not the union over the chips."""
from __future__ import annotations

import warnings

import numpy as np
from astropy.io import fits
from conftest import write_acis_events

import xcube

T0 = 5.0e8
G7 = (np.array([T0, T0 + 12000.0]), np.array([T0 + 10000.0, T0 + 19000.0]))  # chip 7: a 2000 s gap
G6 = (np.array([T0 + 500.0]), np.array([T0 + 15000.0]))
DTCOR = 0.98708


def _times(rng, n, gti):
    length = gti[1] - gti[0]
    k = rng.choice(len(length), n, p=length / length.sum())
    return gti[0][k] + rng.uniform(0, 1, n) * length[k]


def _acis(path):
    rng = np.random.default_rng(4)
    n7, n6 = 4000, 2000
    t = np.concatenate([_times(rng, n7, G7), _times(rng, n6, G6)])
    x = np.concatenate([rng.normal(4100.0, 2.0, n7), rng.uniform(4700, 5600, n6)])
    y = np.concatenate([rng.normal(4100.0, 2.0, n7), rng.uniform(3600, 4600, n6)])
    ccd = np.concatenate([np.full(n7, 7), np.full(n6, 6)]).astype(np.int16)
    o = np.argsort(t)
    cols = [fits.Column("time", "D", array=t[o]), fits.Column("ccd_id", "I", array=ccd[o]),
            fits.Column("x", "E", array=x[o].astype(np.float32)), fits.Column("y", "E", array=y[o].astype(np.float32)),
            fits.Column("pi", "J", array=rng.integers(30, 600, t.size).astype(np.int32))]
    on7, on6 = float(np.sum(G7[1] - G7[0])), float(np.sum(G6[1] - G6[0]))
    write_acis_events(path, cols, dict(TELESCOP="CHANDRA", INSTRUME="ACIS", OBS_ID="1234", MJDREF=50814.0,
                                       TIMESYS="TT", TSTART=T0, TSTOP=T0 + 19000.0, DATAMODE="FAINT", ONTIME=on7,
                                       LIVETIME=on7 * DTCOR, ONTIME7=on7, LIVTIME7=on7 * DTCOR, ONTIME6=on6,
                                       LIVTIME6=on6 * DTCOR), {7: G7, 6: G6}, tlim=True)
    return path


def test_region_products_use_their_chips_good_and_live_time(tmp_path):
    path = _acis(tmp_path / "acisf01234N001_evt2.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = xcube.open_events(path)
        src, bkg = "physical;circle(4100,4100,10)", "physical;box(5150,4100,400,400,0)"
        lc = xcube.lightcurve(ev, 500.0, region=src)
        sp = xcube.spectrum(ev, region=src, background=bkg)
    assert ev.attrs["exposure"] == 19000.0  # the union over chips, for the whole field
    assert float(lc.exposure.sum()) == 17000.0 and lc.attrs["ccds"] == [7]
    gap = (lc.time_lo.values >= T0 + 10000.0) & (lc.time_hi.values <= T0 + 12000.0)
    assert gap.sum() == 4 and np.all(lc.exposure.values[gap] == 0) and np.all(np.isnan(lc.rate.values[gap]))
    assert sp.attrs["exposure"] == np.float64(17000.0 * DTCOR)
    assert abs(sp.attrs["bkg_exposure"] - 14500.0 * DTCOR) < 1e-6
