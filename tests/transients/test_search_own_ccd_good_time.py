"""The search bins each event only inside its own CCD's good time, as the
products do: the model gives a CCD no counts while it is off, so an event
there would be a count without exposure (a detection with log10 B = inf).
Injected sources shine only while their CCD is on."""
from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from test_uneven_ccd_frames import _observation

import xcube


def _own_gti_outside(ev) -> np.ndarray:
    """Events outside their own CCD's GTIs (numpy)."""
    t, c = ev["time"].values, ev["ccdnr"].values
    inside = np.zeros(t.size, bool)
    for k, a, b in zip(ev["ccd_gti_ccd"].values, ev["ccd_gti_start"].values, ev["ccd_gti_stop"].values):
        inside |= (c == k) & (t >= a) & (t < b)
    return ~inside & np.isin(c, ev["ccd_gti_ccd"].values)


def _search(ev):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xcube.search_transients(ev, time_bin=50.0)


def test_events_after_their_ccds_good_time_are_not_counted():
    ev, stop = _observation(t_off=600.0)  # CCD 1 (the pointing) off for the last 600 s
    ccd = ev["ccdnr"].values
    # five events of a quiet CCD 1 pixel after CCD 1 stopped, as a file whose per-CCD GTIs were cut after screening
    src = np.flatnonzero(ccd == 1)[:1]
    extra = ev.isel(event=np.repeat(src, 5))
    extra["time"] = xr.Variable(("event",), np.linspace(stop - 500.0, stop - 480.0, 5), ev["time"].attrs)
    extra["x"] = xr.Variable(("event",), np.full(5, ev["x"].values[src[0]] + 4000), ev["x"].attrs)
    both = xr.concat([ev, extra], dim="event", data_vars="minimal", coords="minimal", compat="override")
    both = both.isel(event=np.argsort(both["time"].values, kind="stable"))
    assert _own_gti_outside(both).sum() == 5
    res = _search(both)
    assert np.isfinite(res.detections["log10_bayes"]).all(), res.detections
    assert int(res.cube.sum()) == int(_search(ev).cube.sum())  # the five events are not binned


def test_injected_source_stays_in_its_ccds_good_time():
    ev, stop = _observation(t_off=600.0)
    out, truth = xcube.simulate.inject_flare(ev, x=25921.0, y=25921.0, t_peak=stop - 400.0, amplitude=2.0,
                                             width=300.0, seed=1)
    assert _own_gti_outside(out).sum() == 0
    new = out.sizes["event"] - ev.sizes["event"]
    assert new == int(truth["counts"].iloc[0]) > 0
    # the flare's events all fall before CCD 1 stopped
    c1_stop = float(ev["ccd_gti_stop"].values[ev["ccd_gti_ccd"].values == 1].max())
    added = np.setdiff1d(out["time"].values, ev["time"].values)
    assert added.size and added.max() < c1_stop


def test_injected_expectation_leaves_out_the_spill_onto_an_off_ccd():
    ev, stop = _observation(t_off=1500.0)  # CCD 1 (the central one) off for the last 1500 s
    x, y, ccd = (ev[c].values for c in ("x", "y", "ccdnr"))
    row = np.abs(y - 25921.0) < 300
    order = np.argsort(x[row])
    xs, cs = x[row][order], ccd[row][order]
    edge = float(xs[(xs > 25921.0) & (cs != 1)].min())  # where CCD 1 ends along +x
    pulls = []
    for seed in range(4):
        out, truth = xcube.simulate.inject_flare(ev, x=edge + 200.0, y=25921.0, t_peak=stop - 700.0, amplitude=3.0,
                                                 width=150.0, seed=seed, psf_fwhm_arcsec=60.0)
        n, mu = int(truth["counts"].iloc[0]), float(truth["expected_counts"].iloc[0])
        assert n == out.sizes["event"] - ev.sizes["event"] > 0 and _own_gti_outside(out).sum() == 0
        pulls.append((n - mu) / np.sqrt(mu))
    assert abs(np.mean(pulls)) < 2.0, pulls  # was about -14: the expectation counted the spill onto CCD 1
