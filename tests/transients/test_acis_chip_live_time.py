"""Chandra ACIS chips off for part of an observation: the search's model
takes each chip's live time from its own GTIs (the per-cell CCD map comes
from the profile's CCD column, ``ccd_id``), so a live chip is expected at its
full background while the other is off, and an off chip at none."""
from __future__ import annotations

import warnings

import numpy as np
from astropy.io import fits
from conftest import write_acis_events

import xcube

T0 = 5.0e8
G7 = (np.array([T0, T0 + 12000.0]), np.array([T0 + 10000.0, T0 + 19000.0]))  # chip 7: a gap at 10-12 ks
G6 = (np.array([T0 + 500.0]), np.array([T0 + 15000.0]))  # chip 6: off after 15 ks


def _acis(path):
    rng = np.random.default_rng(4)

    def times(n, gti):
        span = gti[1] - gti[0]
        k = rng.choice(span.size, n, p=span / span.sum())
        return gti[0][k] + rng.uniform(0, 1, n) * span[k]

    n = 30000
    t = np.concatenate([times(n, G7), times(n, G6)])
    x = np.concatenate([rng.uniform(3700, 4600, n), rng.uniform(4700, 5600, n)])
    y = rng.uniform(3600, 4600, 2 * n)
    ccd = np.repeat(np.array([7, 6], np.int16), n)
    o = np.argsort(t)
    cols = [fits.Column("time", "D", array=t[o]), fits.Column("ccd_id", "I", array=ccd[o]),
            fits.Column("x", "E", array=x[o].astype(np.float32)), fits.Column("y", "E", array=y[o].astype(np.float32)),
            fits.Column("pi", "J", array=rng.integers(30, 600, t.size).astype(np.int32)),
            fits.Column("energy", "E", array=rng.uniform(500, 7000, t.size).astype(np.float32))]
    on7, on6 = float(np.sum(G7[1] - G7[0])), float(np.sum(G6[1] - G6[0]))
    return write_acis_events(path, cols, dict(TELESCOP="CHANDRA", INSTRUME="ACIS", OBS_ID="1234", MJDREF=50814.0,
                                              TIMESYS="TT", TSTART=T0, TSTOP=T0 + 19000.0, DATAMODE="FAINT",
                                              ONTIME=on7, LIVETIME=on7, ONTIME7=on7, LIVTIME7=on7, ONTIME6=on6,
                                              LIVTIME6=on6), {7: G7, 6: G6}, tlim=True)


def test_a_chip_off_gets_no_background_and_the_live_one_its_full_share(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = xcube.search_transients(xcube.open_events(_acis(tmp_path / "acis_evt2.fits")), time_bin=50.0)
    n, mu = res.cube.values, res.expected.values
    x = res.cube["x"].values
    t = 0.5 * (res.cube["time_lo"].values + res.cube["time_hi"].values)
    chip7, chip6 = x < 4650, x > 4650
    off6 = (t > T0 + 15100) & (t < T0 + 18900)
    for cells, frames, live in ((chip7, off6, True), (chip6, off6, False)):
        c, m = np.nansum(n[frames][:, :, cells]), np.nansum(mu[frames][:, :, cells])
        if live:
            assert abs(c - m) < 3 * np.sqrt(m), (c, m)  # was half: the off chip kept its template share
        else:
            assert c == 0 and m < 1e-9, (c, m)
    assert len(res.detections) == 0, res.detections
