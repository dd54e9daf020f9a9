"""One events pass for a whole parameter grid equals the runs made one at a time.

``compact_cubes`` fills every run of a grid (time axes x energy bands x sky
grids) from one loop over each event chunk; each run's cube must be the one
the run gets alone: cells, frame segments, CCD counts, extent, events
outside the grid and, for the run that makes its sky grid's CCD map, the
map. The cubes are also checked against ``bin_events``
so that the comparison cannot pass on two equally wrong answers."""
from __future__ import annotations

import numpy as np
import pytest

from xcube import simulate
from xcube.binning import Axis, bin_events
from xcube.binning.events_pass import Run, compact_cubes
from xcube.select import EventFilter, select
from xcube.transients.grid import shifted_axis
from xcube.transients.search import prepare_events


@pytest.fixture(scope="module")
def pn():
    flares = [simulate.Flare(t_peak=3_000.0, amplitude=1.0, width=40.0, ra=149.95, dec=2.18)]
    ev, _ = simulate.event_list("xmm-pn", duration=8_000.0, flares=flares, sources=4, seed=21)
    assert {"rawx", "rawy", "ccdnr"} <= set(ev.variables)
    return ev.chunk({"event": 20_000})  # several chunks, each of several kernel blocks


def _runs(ev):
    """Three time axes (one half a frame late, one over the second half
    only), three bands, the base grid, the grid shifted by half a cell and a
    fine grid of more than 2^16 cells (another cell dtype)."""
    t0 = float(ev.gti_start.values[0])
    y = Axis.from_edges("y", np.arange(21_000.0, 31_001.0, 400.0))  # smaller than the field: events outside
    x = Axis.from_edges("x", np.arange(20_600.0, 31_401.0, 400.0))
    shifted = (shifted_axis(y), shifted_axis(x))
    fine = (Axis.from_edges("y", np.arange(21_000.0, 31_001.0, 30.0)), Axis.from_edges("x", np.arange(20_600.0,
                                                                                                    31_401.0, 30.0)))
    axes = [Axis.from_edges("time", t0 + np.arange(0.0, 8_001.0, 100.0)),
            Axis.from_edges("time", t0 - 200.0 + np.arange(0.0, 8_401.0, 400.0)),
            Axis.from_edges("time", t0 + 4_000.0 + np.arange(0.0, 4_001.0, 50.0))]
    bands = [(0.2, 2.0), (2.0, 12.0), None]
    runs = [Run(a, b) for a in axes for b in bands]
    runs += [Run(axes[0], bands[0], sky=shifted), Run(axes[1], bands[2], sky=shifted), Run(axes[2], bands[1], sky=fine)]
    return runs, y, x


def _same(a, b, with_map):
    assert np.array_equal(a.cells, b.cells) and a.cells.dtype == b.cells.dtype
    assert np.array_equal(a.seg, b.seg)
    assert np.array_equal(a.y.edges, b.y.edges) and np.array_equal(a.x.edges, b.x.edges)
    assert a.extent == b.extent and a.n_outside == b.n_outside
    for ca, cb in zip(a.ccd_counts, b.ccd_counts):
        assert np.array_equal(ca, cb)
    for ma, mb in zip(a.ccd_map, b.ccd_map):
        assert ma is not None and mb is not None and (np.array_equal(ma, mb) or not with_map)


@pytest.mark.parametrize("columns", ["integer", "float"])
def test_grid_pass_equals_runs_one_at_a_time(pn, columns):
    ev = pn if columns == "integer" else pn.assign(x=pn["x"].astype(np.float64), y=pn["y"].astype(np.float64))
    runs, y, x = _runs(ev)
    filters = [EventFilter.for_events(ev, screening=True, hygiene=True)]
    grid = compact_cubes(ev, runs, y, x, filters=filters)
    assert len(grid) == len(runs)
    assert any(c.n_outside for c in grid)
    assert {c.cells.dtype for c in grid} == {np.dtype(np.uint16), np.dtype(np.uint32)}
    kept = prepare_events(ev, hygiene=True)[0].compute()  # the same screening and hygiene, applied by select
    by_band = {b: kept if b is None else select(kept, energy_band=b).compute() for b in {r.energy_band for r in runs}}
    maker = {}  # a CCD map is made by the first run of its sky grid and band (its frames), sweep p25
    for k, (run, cube) in enumerate(zip(runs, grid)):
        first = maker.setdefault((run.sky[0].size if run.sky else 0, run.energy_band), k)
        _same(cube, compact_cubes(ev, [run], y, x, filters=filters)[0], with_map=first == k)
        assert np.array_equal(cube.ccd_map[0], grid[first].ccd_map[0]) or cube.y.size != grid[first].y.size
        want = bin_events(by_band[run.energy_band], time=run.time.edges, y=cube.y.edges, x=cube.x.edges).values
        assert np.array_equal(cube.dense(), want)
        assert cube.ccd_counts[0].sum() >= cube.cells.size > 0


def test_compact_cube_labelled_views_are_independent_and_hold_no_cycle(pn):
    """``CompactCube.to_dataarray`` builds its coordinates once: each call
    gives the same cube with attrs and coordinates of its own, and the cube
    is freed as soon as it and its views are dropped (without the cyclic
    garbage collector: a large cube's events must not outlive a search);
    pickled, it carries its events, not a dense template."""
    import gc
    import weakref

    runs, y, x = _runs(pn)
    cube = compact_cubes(pn, runs[:1], y, x)[0]
    a = cube.to_dataarray()
    a.attrs["run_id"] = "a"
    a.coords["time"].attrs["mark"] = 1
    b = cube.to_dataarray()
    assert "run_id" not in b.attrs and "mark" not in b.coords["time"].attrs
    assert np.array_equal(a.values, cube.dense()) and np.array_equal(b.values, a.values)
    assert b.dims == ("time", "y", "x") and set(b.coords) == set(a.coords)
    import pickle  # (a cluster worker receives cubes pickled: no dense data in them)

    back = pickle.loads(pickle.dumps(cube))
    assert len(pickle.dumps(cube)) < cube.cells.nbytes + cube.seg.nbytes + 200_000 < a.nbytes
    assert np.array_equal(back.to_dataarray().values, a.values)
    ref = weakref.ref(cube)
    gc.disable()
    try:
        del cube, a, b
        assert ref() is None
    finally:
        gc.enable()
