"""Sweep p25: a run of a parameter grid took the CCD map (which CCDs fill each cell) made from the events of
the first band on its sky grid; on MOS1+MOS2 of 0001730201 at 5 s, 2-12 keV searched beside 0.2-2 keV gave
live fractions of 0 on cells that recorded events, and 1-count detections with infinite Bayes factors."""
from __future__ import annotations

import numpy as np
from conftest import real_file

import xcube
from xcube.transients.frames import ccd_live_fraction

MOS = ("P0001730201M1S002MIEVLI.FTZ", "P0001730201M2S003MIEVLI.FTZ")


def test_a_run_is_the_same_alone_and_in_a_grid_of_bands():
    evs = [xcube.open_events(real_file("xmm", name)) for name in MOS]
    alone = xcube.search_transients(evs, time_bin=5.0, energy_band=(2.0, 12.0))
    grid = xcube.search_transients(evs, time_bin=5.0, energy_band=[(0.2, 2.0), (2.0, 12.0)])
    (g,) = [r for r in grid if tuple(r.params["energy_band"]) == (2.0, 12.0)]
    np.testing.assert_array_equal(np.asarray(alone.expected.compute()), np.asarray(g.expected.compute()))
    assert len(g.detections) == len(alone.detections)
    assert np.isfinite(g.detections["log10_bayes"]).all()


class _Cube:
    """The parts of a CompactCube that ccd_live_fraction reads: two cameras over one 2x1 grid, 2 frames."""

    def __init__(self, maps, counts):
        class T:
            lo, hi = np.array([0.0, 10.0]), np.array([10.0, 20.0])

        self.time, self.gti, self.ny, self.nx, self.attrs = T, (np.array([0.0]), np.array([20.0])), 2, 1, {}
        self.ccd_map, self.camera_counts = maps, counts


def test_a_camera_with_counts_but_no_ccd_in_its_map_counts_as_live():
    import xarray as xr

    off_second = xr.Dataset({"ccd_gti_ccd": ("ccd_gti", [1]), "ccd_gti_start": ("ccd_gti", [0.0]),
                             "ccd_gti_stop": ("ccd_gti", [10.0]), "gti_start": ("gti", [0.0]),
                             "gti_stop": ("gti", [20.0])})  # camera 0's CCD 1 off in frame 2
    live = xr.Dataset()
    # cell 0: camera 0 on CCD 1 (bit 2), no counts of camera 1; cell 1: only camera 1 has counts there, but its
    # sampled map saw no CCD; camera 0's map has CCD 1 there
    maps = [np.array([[2], [2]], np.uint32), np.array([[0], [0]], np.uint32)]
    counts = [np.array([[5], [0]]), np.array([[0], [4]])]
    group, fraction = ccd_live_fraction(_Cube(maps, counts), [off_second, live], np.array([10.0, 10.0]))
    np.testing.assert_allclose(fraction[group[0, 0]], [1.0, 0.0])
    np.testing.assert_allclose(fraction[group[1, 0]], [1.0, 1.0])  # camera 1 counts as live, not camera 0's CCD
