"""Background model: source mask, templates, expected counts (xcube.transients.background)."""
from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from astropy.table import Table

from xcube.io.catalogue import read_catalogue
from xcube.transients import background as bg

NT, NY, NX = 120, 40, 48
SRC = {(12, 14): 0.4, (28, 33): 0.15}  # (iy, ix): ct/s


def _shape():
    yy, xx = np.mgrid[0:NY, 0:NX]
    r2 = (yy - 20) ** 2 + (xx - 24) ** 2
    s = np.exp(-r2 / (2 * 15.0**2))
    s[r2 > 19**2] = 0.0  # outside the field of view
    return s / s.sum()


def _synthetic(seed=0, chunks=25, bti_frames=slice(40, 55), zero_frames=(90,), bad=(100,), level=400.0):
    """Poisson cube from a known background shape x light curve + constant sources."""
    rng = np.random.default_rng(seed)
    shape = _shape()
    lc = rng.uniform(0.75 * level, 1.25 * level, NT)
    bti = np.zeros(NT, bool)
    bti[bti_frames] = True
    lc[bti] *= 4.0
    expo = np.full(NT, 50.0)
    for z in zero_frames:
        expo[z] = 0.0
    src = np.zeros((NY, NX))
    for (iy, ix), r in SRC.items():
        src[iy, ix] = r * level / 400.0
    lam = shape[None] * lc[:, None, None] + src[None] * expo[:, None, None]
    lam[expo == 0] = 0.0
    n = rng.poisson(lam).astype(np.int32)
    bad_frame = np.zeros(NT, bool)
    bad_frame[list(bad)] = True
    t = np.arange(NT) * 50.0
    cube = xr.DataArray(
        da.from_array(n, chunks=(chunks, NY, NX)), dims=("time", "y", "x"), name="counts",
        coords={"time": t + 25.0, "time_lo": ("time", t), "time_hi": ("time", t + 50.0), "exposure": ("time", expo)},
    )
    return cube, n, bti, bad_frame, shape


def test_expected_sums_match_counts_outside_sources_and_templates_normalised():
    cube, n, bti, bad, _ = _synthetic()
    model = bg.background_model(cube, bti=bti, bad_frame=bad)
    mask = model["source_mask"].values
    assert all(mask[k] for k in SRC)
    assert mask.sum() <= 6
    for name in ("template_gti", "template_bti"):
        t = model[name].values
        assert np.nansum(t[~mask]) == pytest.approx(1.0, abs=1e-12)
        assert np.nanmin(t) >= 0
    mu = bg.expected_counts(cube, bti, bad, model=model)
    m = mu.values
    defined = ~np.isnan(m).all(axis=(1, 2))
    np.testing.assert_allclose(np.nansum(m[defined][:, ~mask], axis=1), n[defined][:, ~mask].sum(axis=1), rtol=1e-10)
    # BTI frames follow the BTI template, GTI frames the GTI one
    j_b, j_g = 45, 10
    lc = model["light_curve"].values
    np.testing.assert_allclose(m[j_b][~mask], model["template_bti"].values[~mask] * lc[j_b])
    np.testing.assert_allclose(m[j_g][~mask], model["template_gti"].values[~mask] * lc[j_g])
    assert model.attrs["n_bti_frames"] == 15 and model.attrs["source_subset"] == "gti"


def test_template_recovers_the_true_shape_and_source_rates():
    cube, n, bti, bad, shape = _synthetic(seed=1, level=8000.0)
    model = bg.background_model(cube, bti=bti, bad_frame=bad)
    mask = model["source_mask"].values
    t = model["template_gti"].values
    inside = shape > 0
    # smoothed template vs true shape (renormalised over unmasked pixels) in the bright core,
    # where a pixel holds ~1000 GTI counts (Poisson scatter ~3 %, less after smoothing)
    truth = shape / shape[~mask].sum()
    core = inside & (truth > 0.5 * truth.max())
    assert np.median(np.abs(t[core] / truth[core] - 1)) < 0.03
    for (iy, ix), r in SRC.items():
        assert model["source_rate"].values[iy, ix] == pytest.approx(r * 20.0, rel=0.05)
    assert model["source_rate"].values[~mask].sum() == 0
    # the model fits: Pearson chi2 per voxel ~ 1 in defined voxels
    m = bg.expected_counts(cube, bti, bad, model=model).values
    ok = np.isfinite(m) & (m > 0)
    chi2 = np.mean((n[ok] - m[ok]) ** 2 / m[ok])
    assert 0.9 < chi2 < 1.15


def test_nan_frames_no_counts_zero_exposure_bad_and_outside_fov():
    cube, n, bti, bad, shape = _synthetic(zero_frames=(90, 91))
    m = bg.expected_counts(cube, bti, bad).values
    all_nan = np.isnan(m).all(axis=(1, 2))
    assert set(np.flatnonzero(all_nan)) == {90, 91, 100}  # zero exposure (EXOD left these uninitialised), bad
    # outside the field of view (no counts in the subset): NaN, never flagged downstream
    image = n[~bti].sum(axis=0)
    assert np.all(np.isnan(m[0][image == 0]))
    assert np.all(np.isfinite(m[0][image > 0]))
    # a frame with exposure but no counts at all
    n2 = n.copy()
    n2[5] = 0
    cube2 = cube.copy(data=da.from_array(n2, chunks=(25, NY, NX)))
    m2 = bg.expected_counts(cube2, bti, bad).values
    assert np.isnan(m2[5]).all() and np.isfinite(m2[6]).any()


def test_expected_is_lazy_and_block_local():
    cube, n, bti, bad, _ = _synthetic()
    model = bg.background_model(cube, bti=bti, bad_frame=bad)
    calls = []

    def block(i):
        calls.append(i)
        return n[i * 20:(i + 1) * 20]

    parts = [da.from_delayed(dask.delayed(block)(i), shape=(20, NY, NX), dtype=n.dtype) for i in range(NT // 20)]
    lazy = cube.copy(data=da.concatenate(parts))
    mu = bg.expected_counts(lazy, bti, bad, model=model)
    assert isinstance(mu.data, da.Array) and calls == []
    assert mu.data.chunks[0] == (20,) * (NT // 20)
    first = mu.isel(time=slice(0, 5)).values
    assert calls == []  # mu comes from the model alone: no counts block is read
    full = bg.expected_counts(cube, bti, bad, model=model).values
    np.testing.assert_array_equal(first, full[:5])
    assert mu.dims == ("time", "y", "x") and "exposure" in mu.coords and mu.attrs["units"] == "count"


def test_numpy_cube_and_cube_coordinates_for_frame_flags():
    cube, n, bti, bad, _ = _synthetic()
    eager = cube.copy(data=n).assign_coords(bti=("time", bti), bad_frame=("time", bad))
    m1 = bg.expected_counts(eager).values  # flags taken from the coordinates
    m2 = bg.expected_counts(cube, bti, bad).values
    np.testing.assert_allclose(m1, m2, equal_nan=True)


def test_no_bti_frames_and_only_bti_frames():
    cube, n, bti, bad, _ = _synthetic(bti_frames=slice(0, 0))
    model = bg.background_model(cube, bti=bti, bad_frame=bad)
    assert np.isnan(model["template_bti"].values).all() and model.attrs["n_bti_frames"] == 0
    all_bti = np.ones(NT, bool)
    model_b = bg.background_model(cube, bti=all_bti, bad_frame=bad)
    assert model_b.attrs["source_subset"] == "bti" and np.isnan(model_b["template_gti"].values).all()
    assert all(model_b["source_mask"].values[k] for k in SRC)
    m = bg.expected_counts(cube, all_bti, bad, model=model_b).values
    assert np.isfinite(m[0]).any()


def test_source_mask_percentile_over_exposed_pixels():
    rng = np.random.default_rng(2)
    img = np.zeros((100, 100))
    img[30:70, 30:70] = rng.poisson(5.0, (40, 40))  # field of view: 16 % of the grid
    img[50, 50] = 200
    m = bg.source_mask(img)
    p75 = np.percentile(img[img > 0], 75)
    assert m.attrs["threshold"] == pytest.approx(3 * p75)
    assert m.values[50, 50] and m.values.sum() < 5
    # EXOD's choice (every pixel) gives a zero threshold here and masks the whole field
    m_all = bg.source_mask(img, exposed="all")
    assert m_all.attrs["threshold"] == 0 and m_all.values.sum() > 1000
    with pytest.raises(ValueError, match="exposed"):
        bg.source_mask(img, exposed="fov")


def _image_with_sky():
    ny, nx = 30, 30
    ra0, dec0 = 150.0, 2.0
    jy, jx = np.mgrid[0:ny, 0:nx]
    step = 20.0 / 3600.0  # 20" cells
    dec = dec0 + (jy - 15) * step
    ra = ra0 - (jx - 15) * step / np.cos(np.radians(dec0))
    return xr.DataArray(np.ones((ny, nx)), dims=("y", "x"), coords={"ra": (("y", "x"), ra), "dec": (("y", "x"), dec)})


@pytest.mark.parametrize("fmt", ["csv", "fits"])
def test_catalogue_disks_from_csv_and_fits(tmp_path, fmt):
    img = _image_with_sky()
    cat = pd.DataFrame({"RAJ2000": [150.0, 149.99], "DEJ2000": [2.0, 2.05], "Radius": [45.0, np.nan]})
    path = tmp_path / f"cat.{fmt}"
    if fmt == "csv":
        cat.to_csv(path, index=False)
    else:
        Table.from_pandas(cat).write(path)
    read = read_catalogue(path)
    assert {"ra", "dec", "radius_arcsec"} <= set(read.columns) and len(read) == 2
    np.testing.assert_array_equal(read["radius_arcsec"].values, [45.0, np.nan])
    m = bg.source_mask(img, catalogue=path, radius_arcsec=10.0)
    ra, dec = img["ra"].values, img["dec"].values
    sep = lambda r0, d0: np.hypot((ra - r0) * np.cos(np.radians(d0)), dec - d0) * 3600  # noqa: E731
    expected = (sep(150.0, 2.0) < 45.0) | (sep(149.99, 2.05) < 10.0)
    np.testing.assert_array_equal(m.values, expected)
    assert m.attrs["n_catalogue_pixels"] == expected.sum() > 10


def test_catalogue_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"x": [1.0], "y": [2.0]}).to_csv(bad, index=False)
    with pytest.raises(KeyError, match="which column holds RA"):
        read_catalogue(bad)
    with pytest.raises(FileNotFoundError):
        read_catalogue(tmp_path / "missing.csv")
    img = xr.DataArray(np.ones((5, 5)), dims=("y", "x"))
    with pytest.raises(ValueError, match="ra/dec"):
        bg.source_mask(img, catalogue=pd.DataFrame({"ra": [1.0], "dec": [1.0]}))


@pytest.mark.parametrize("method", ["biharmonic", "normalized"])
def test_inpaint_fills_holes_smoothly(method):
    yy, xx = np.mgrid[0:40, 0:40]
    plane = 5.0 + 0.3 * yy + 0.2 * xx
    mask = np.zeros_like(plane, bool)
    mask[15:22, 10:18] = True
    out = bg.inpaint(plane, mask, method=method)
    np.testing.assert_array_equal(out[~mask], plane[~mask])
    tol = 1e-6 if method == "biharmonic" else 1.0  # biharmonic reproduces a plane exactly
    assert np.max(np.abs(out[mask] - plane[mask])) < tol
    with pytest.raises(ValueError, match="inpaint method"):
        bg.inpaint(plane, mask, method="opencv")


def test_template_counts_and_clipping():
    img = np.zeros((20, 20))
    img[5:15, 5:15] = 4.0
    img[10, 10] = 100.0
    mask = img > 50
    t, c = bg.template(img, mask)
    assert c == pytest.approx(4.0 * 99)
    assert np.nansum(t[~mask]) == pytest.approx(1.0)
    assert np.isnan(t[0, 0]) and np.isfinite(t[10, 10]) and t[10, 10] < 3 * t[7, 7]
    t0, c0 = bg.template(np.zeros((4, 4)), np.zeros((4, 4), bool))
    assert c0 == 0 and np.isnan(t0).all()


def test_bad_cube_inputs():
    cube, n, bti, bad, _ = _synthetic()
    with pytest.raises(ValueError, match="exactly"):
        bg.expected_counts(cube.expand_dims(energy=1))
    with pytest.raises(ValueError, match="exposure"):
        bg.expected_counts(cube.drop_vars("exposure"))
    with pytest.raises(ValueError, match="one boolean per time bin"):
        bg.expected_counts(cube, bti[:-1])


def _bin_reference(e, t_edges, edges):
    h, _ = np.histogramdd(np.column_stack([e["time"].values, e["y"].values, e["x"].values]),
                          bins=[t_edges, edges, edges])
    return h.astype(np.int32)


def test_on_a_simulated_observation():
    import xcube.simulate as sim

    ev, truth = sim.event_list("xmm-mos1", duration=20000.0, seed=3, sources=6,
                               soft_protons=[dict(t_start=6000.0, duration=3000.0, peak_rate=10.0)],
                               background_rate=0.6)
    try:
        from xcube.binning import bin_events

        cube = bin_events(ev, time=200.0, size_arcsec=20.0)
    except ImportError:  # binning engine absent: numpy reference histogram
        e = ev.compute()
        t_edges = np.arange(7.0e8, 7.0e8 + 20000.0 + 1, 200.0)
        edges = np.arange(1.0, 51842.0, 400.0)
        counts = _bin_reference(e, t_edges, edges)
        cube = xr.DataArray(counts, dims=("time", "y", "x"),
                            coords={"time": t_edges[:-1] + 100.0, "exposure": ("time", np.full(100, 200.0)),
                                    "y": 0.5 * (edges[1:] + edges[:-1]), "x": 0.5 * (edges[1:] + edges[:-1])})
    e = ev.compute()
    hi = (e["energy"].values > 10) & (e["energy"].values < 12)
    t_lo = cube["time"].values - 100.0
    rate = np.histogram(e["time"].values[hi], bins=np.append(t_lo, t_lo[-1] + 200.0))[0] / 200.0
    bti = rate > 0.5
    assert 5 <= bti.sum() <= 25
    model = bg.background_model(cube, bti=bti)
    mask = model["source_mask"].values
    src = truth[truth.kind == "source"]
    iy = np.searchsorted(cube["y"].values - 200.0, src["y"].values, side="right") - 1
    ix = np.searchsorted(cube["x"].values - 200.0, src["x"].values, side="right") - 1
    bright = src["rate"].values > 0.005
    assert mask[iy[bright], ix[bright]].all()
    mu = bg.expected_counts(cube, bti, None, model=model)
    m, n = mu.values, cube.values
    ok = ~np.isnan(m).all(axis=(1, 2))
    assert ok.sum() == len(ok)
    np.testing.assert_allclose(np.nansum(m[:, ~mask], axis=1), n[:, ~mask].sum(axis=1), rtol=1e-10)
    # sources: expected counts per source cell over the observation match the counts
    tot_m = np.nansum(m, axis=0)[iy[bright], ix[bright]]
    tot_n = n.sum(axis=0)[iy[bright], ix[bright]]
    np.testing.assert_allclose(tot_m, tot_n, rtol=0.1)


def test_catalogue_through_event_wcs_matches_cell_coordinates():
    import xcube
    import xcube.simulate as sim

    ev, truth = sim.event_list("xmm-mos1", duration=2000.0, seed=4, sources=3, soft_protons=0)
    cube = xcube.bin_events(ev, time=500.0, size_arcsec=20.0)
    cat = truth[truth.kind == "source"][["ra", "dec"]]
    image = cube.sum("time")
    a = bg.source_mask(image, catalogue=cat, radius_arcsec=30.0)
    b = bg.source_mask(image.drop_vars(["ra", "dec"]), catalogue=cat, radius_arcsec=30.0, wcs=xcube.wcs(ev))
    np.testing.assert_array_equal(a.values, b.values)
    assert a.attrs["n_catalogue_pixels"] >= 3 * 5
