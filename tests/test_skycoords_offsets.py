"""The spacecraft frame of detections: sky offsets rotated by the roll, fixed
to the detector across observations (checked against DETX/DETY of real MOS files)."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import real_file

import xcube
from xcube.skycoords import spacecraft_offsets


@pytest.mark.parametrize("name", ["xmm/P0001730201M1S002MIEVLI.FTZ", "xmm/xga_0201901401_mos1_exp1_clean_evts.fits"])
def test_mos1_frame_is_minus_detx_and_dety(name):
    """Two observations with rolls 94 and 286 deg: (u, v) = (-DETX, DETY) x 0.05"
    up to a constant offset in both (the same detector frame)."""
    ev = xcube.open_events(real_file(name))
    sel = np.abs(ev.detx.values) < 20000
    x, y = ev.x.values[sel].astype(float), ev.y.values[sel].astype(float)
    u, v = spacecraft_offsets(x, y, ev.attrs, xcube.wcs(ev))
    du = u + ev.detx.values[sel] * 0.05
    dv = v - ev.dety.values[sel] * 0.05
    assert np.std(du) < 2.0 and np.std(dv) < 2.0  # arcsec: one rotation fits every event
    assert abs(np.median(du)) < 120 and abs(np.median(dv)) < 120  # the origins differ by the boresight offset


def test_no_roll_gives_nan(make_event_file):
    ev = xcube.open_events(make_event_file(n=10))
    u, v = spacecraft_offsets([1.0, 2.0], [1.0, 2.0], dict(ev.attrs, pa_pnt=None), xcube.wcs(ev))
    assert np.isnan(u).all() and np.isnan(v).all()
    u, v = spacecraft_offsets([1.0], [1.0], ev.attrs, None)
    assert np.isnan(u).all()
