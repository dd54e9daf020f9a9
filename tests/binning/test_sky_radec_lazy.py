"""ra/dec of the sky cells: lazy for big grids, a byte-bounded cache for small ones.

An 8640 x 8640 image used to compute its ra/dec inside ``bin_events`` (27 s,
6.4 GB peak for 1e5 events), and the ``lru_cache`` kept the ra/dec of the
last 16 grids alive after their images were deleted.
"""
from __future__ import annotations

import gc

import dask
import dask.array as da
import numpy as np
import pytest
from astropy.wcs import WCS
from conftest import sky_events

from xcube.binning import bin_events, cube_wcs, engine, sky


def _events(n=2000, rotated=False):
    return sky_events(n, 3, 20000, 32000, 500, rotated)


@pytest.fixture
def pix2world_calls(monkeypatch):
    """Counts the cells whose ra/dec astropy computes (any WCS object)."""
    calls = []
    orig = WCS.wcs_pix2world

    def counting(self, *args, **kwargs):
        out = orig(self, *args, **kwargs)
        calls.append(int(np.size(out[0])))
        return out

    monkeypatch.setattr(WCS, "wcs_pix2world", counting)
    getattr(sky, "clear_radec_cache", lambda: None)()
    return calls


def test_a_big_grid_computes_no_ra_dec_in_the_call(pix2world_calls):
    ev = _events()
    # 1200 x 1200 cells (above the eager limit of 2^19): nothing of its ra/dec is computed by the call
    cube = bin_events(ev, y={"width": 10.0, "range": (20000, 32000)}, x={"width": 10.0, "range": (20000, 32000)})
    ny, nx = cube.shape
    assert ny * nx > sky.RADEC_EAGER_CELLS and ny >= 1200
    assert pix2world_calls == []
    assert isinstance(cube["ra"].data, da.Array) and isinstance(cube["dec"].data, da.Array)
    assert cube["ra"].data.chunks[0][0] * nx <= sky.RADEC_BAND_CELLS  # row bands
    # the same grid again: the same Dask names, so xarray compares the coords without computing them
    other = bin_events(ev, y={"width": 10.0, "range": (20000, 32000)}, x={"width": 10.0, "range": (20000, 32000)})
    assert other["ra"].data.name == cube["ra"].data.name
    total = cube + other
    assert pix2world_calls == [] and "ra" in total.coords
    # when computed they are the WCS of the cells, band by band
    ra, dec = dask.compute(cube["ra"].data, cube["dec"].data)
    assert sum(pix2world_calls) == ny * nx and max(pix2world_calls) <= sky.RADEC_BAND_CELLS
    r, d = cube_wcs(cube).wcs_pix2world([0, 517, 1199], [0, 933, 1199], 0)
    np.testing.assert_allclose(ra[[0, 933, 1199], [0, 517, 1199]], r, rtol=0, atol=1e-10)
    np.testing.assert_allclose(dec[[0, 933, 1199], [0, 517, 1199]], d, rtol=0, atol=1e-10)


def test_lazy_and_eager_ra_dec_agree_rotated_too(monkeypatch):
    for rotated in (False, True):
        ev = _events(rotated=rotated)
        spec = {"width": 200.0, "range": (20000, 32000)}  # 60 x 60 cells
        eager = bin_events(ev, y=spec, x=spec)
        assert isinstance(eager["ra"].data, np.ndarray)  # small grids keep numpy coords, as documented
        monkeypatch.setattr(sky, "RADEC_EAGER_CELLS", 100)
        monkeypatch.setattr(sky, "RADEC_BAND_CELLS", 600)  # 9 rows per band
        lazy = bin_events(ev, y=spec, x=spec)
        monkeypatch.undo()
        assert isinstance(lazy["ra"].data, da.Array) and len(lazy["ra"].data.chunks[0]) == 7  # 61 rows of 61
        np.testing.assert_array_equal(lazy["ra"].values, eager["ra"].values)
        np.testing.assert_array_equal(lazy["dec"].values, eager["dec"].values)
        assert lazy.attrs == eager.attrs


def test_memory_guard_counts_the_transient_peak(monkeypatch):
    ev = _events()
    spec = {"width": 24.0, "range": (20000, 32000)}  # 501 x 501 cells: eager ra/dec
    # 4 MB of ra/dec, but computing them peaks near 96 B/cell = 24 MB: over an eighth of 80 MB
    monkeypatch.setattr(engine, "_available_bytes", lambda: 80 * 10**6)
    with pytest.raises(ValueError, match=r"ra/dec coordinates of the sky cells, with the temporaries .*"
                                         r"of shape \(12, 501, 501\)"):
        bin_events(ev, y=spec, x=spec)
    monkeypatch.setattr(engine, "_available_bytes", lambda: 400 * 10**6)
    assert bin_events(ev, y=spec, x=spec).shape == (501, 501)
    # a lazy grid is bounded by what computing it would hold (48 B/cell) against half the memory
    big = {"width": 4.0, "range": (20000, 32000)}  # 3001 x 3001 cells: 432 MB if computed
    monkeypatch.setattr(engine, "_available_bytes", lambda: 800 * 10**6)
    with pytest.raises(ValueError, match=r"of shape \(6, 3001, 3001\).*would not fit once computed"):
        bin_events(ev, y=big, x=big)


def test_radec_cache_is_bounded_by_bytes_and_releases_big_grids(monkeypatch):
    sky.clear_radec_cache()
    kw = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 10.0, "CRVAL2": 20.0, "CRPIX1": 50.0,
          "CRPIX2": 50.0, "CDELT1": -1e-3, "CDELT2": 1e-3, "WCSAXES": 2}
    monkeypatch.setattr(sky, "RADEC_CACHE_BYTES", 1 << 20)  # 1 MiB: one grid of 200 x 200 (640 kB)
    for k in range(6):
        ra, dec = sky.cell_radec(dict(kw, CRVAL1=10.0 + k), 200, 200)
        assert ra.flags.writeable and not np.shares_memory(ra, sky._radec(
            tuple(sorted(dict(kw, CRVAL1=10.0 + k).items())), 200, 200)[0])  # the cube gets its own copy
        assert sky.radec_cache_bytes() <= 1 << 20
    assert sky.radec_cache_bytes() == 640_000  # the most recent grid only
    # a lazy (big) grid is never cached: computing it leaves the cache as it was, and nothing keeps it alive
    ra, dec = sky.cell_radec(kw, 800, 800)
    assert isinstance(ra, da.Array)
    vals = ra.compute()
    assert sky.radec_cache_bytes() == 640_000
    import weakref

    ref = weakref.ref(vals)
    del vals
    gc.collect()
    assert ref() is None
    sky.clear_radec_cache()
    assert sky.radec_cache_bytes() == 0


def test_deleted_images_release_their_coordinates():
    sky.clear_radec_cache()
    ev = _events()
    # several eager grid sizes, as a session making images at several bins does: the cache stays bounded
    for w in (24.0, 25.0, 26.0, 27.0, 28.0, 30.0):
        img = bin_events(ev, y={"width": w, "range": (20000, 32000)}, x={"width": w, "range": (20000, 32000)})
        del img
    assert sky.radec_cache_bytes() <= sky.RADEC_CACHE_BYTES
