"""A bright constant source on a CCD whose own good time ends before the
other CCDs': the frames where that CCD was off (or live much less than the
frame's exposure) must not show the source as eclipsed. The model has one
exposure per frame; the search sets such frames aside
(:func:`xcube.transients.frames.uneven_ccd_frames`)."""
from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

import xcube
from xcube.simulate.models import Source
from xcube.transients.frames import uneven_ccd_frames

T_OFF = 20.0  # s: the source's CCD stops this long before the others


def _observation():
    """A MOS1 observation of 3000 s with a 4 ct/s source at the pointing, whose CCD (CCD 1, the central one)
    ends its GTI ``T_OFF`` s before the other CCDs (its events after that removed)."""
    ev, _ = xcube.simulate.event_list("xmm-mos1", duration=3000.0, seed=11, background_rate=0.4,
                                      sources=[Source(rate=4.0, x=25921.0, y=25921.0)])
    ev = ev.compute()
    stop = float(ev["gti_stop"].values[-1])
    ccd = np.asarray(ev["ccdnr"].values)
    keep = ~((ccd == 1) & (ev["time"].values >= stop - T_OFF))
    ev = ev.isel(event=np.flatnonzero(keep))
    c_stop = ev["ccd_gti_stop"].values.copy()
    c_stop[ev["ccd_gti_ccd"].values == 1] = stop - T_OFF
    ev["ccd_gti_stop"] = xr.Variable(ev["ccd_gti_stop"].dims, c_stop, ev["ccd_gti_stop"].attrs)
    return ev, stop


def test_a_ccd_off_under_a_bright_source_is_no_eclipse():
    ev, stop = _observation()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = xcube.search_transients(ev, time_bin=50.0)
    eclipses = res.detections[res.detections["kind"] == "eclipse"]
    assert len(eclipses) == 0, eclipses[["t_start", "t_stop", "counts", "expected", "log10_bayes"]]
    # the last frame (CCD 1 off for its last 20 s of 50) is set aside, and counted with the bad frames
    lo = res.cube["time_lo"].values
    last = int(np.searchsorted(lo, stop - T_OFF, side="right")) - 1
    assert res.cube["exposure"].values[last] == 0.0
    assert res.summary["n_bad_frames"] >= 1


def test_uneven_frames_need_a_bright_source_and_a_long_shortfall():
    ev, stop = _observation()
    from xcube.transients.grid import search_cubes, search_run

    run, _ = search_run([ev], 50.0, (0.2, 12.0))
    (cube,) = search_cubes([ev], [run], 20.0, True, True, set())
    expo = np.asarray(cube.exposure, np.float64)
    rate = np.zeros((cube.ny, cube.nx))
    iy, ix = cube.ny // 2, cube.nx // 2
    rate[iy - 1:iy + 2, ix - 1:ix + 2] = 1.0  # 1 ct/s per cell at the centre (CCD 1)
    bad = uneven_ccd_frames(cube, [ev], rate, expo)
    last = int(np.searchsorted(cube.time.lo, stop - T_OFF, side="right")) - 1
    assert np.flatnonzero(bad).tolist() == [last]  # 1 x 20**2 > 50 s: set aside; every other frame is even
    assert not uneven_ccd_frames(cube, [ev], rate * 0.1, expo).any()  # 0.1 x 20**2 < 50: within one sigma
    assert not uneven_ccd_frames(cube, [ev], np.zeros_like(rate), expo).any()  # no source, no shortfall to fear
