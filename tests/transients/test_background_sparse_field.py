"""Sweep p27: a sparse subset's template was NaN at every in-field cell
without counts in that subset, which raised mu in the other cells (x1.23 at
5 s frames of a simulated pn list) and left eclipses in such cells undecided.
The template's field is now the cells with counts in any subset."""
from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

import xcube.bayes as xb
from xcube.transients import background as bg


def test_an_eclipse_during_a_sparse_subset_is_decided():
    rng = np.random.default_rng(4)
    nt, ny, nx = 44, 12, 12
    lam = np.zeros((ny, nx))
    lam[1:-1, 1:-1] = 1.0
    rate = np.broadcast_to(lam, (nt, ny, nx)).copy()
    bti = np.zeros(nt, bool)
    bti[20:24] = True
    rate[bti] *= 3.0  # a soft-proton flare: the bad-time subset
    rate[:, 5, 5] += 40.0  # a bright constant source, eclipsed (with its background) in all 4 bad-time frames
    rate[20:24, 5, 5] = 0.0
    counts = rng.poisson(rate)
    cube = xr.DataArray(counts, dims=("time", "y", "x"), coords={"exposure": ("time", np.full(nt, 50.0))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = bg.background_model(cube, bti=bti, bad_frame=np.zeros(nt, bool))
        mu = bg.expected_counts(cube, model=model).values
    field = lam > 0
    assert model.image_bti.values[5, 5] == 0 and np.isfinite(model.template_bti.values[field]).all()
    assert np.isnan(model.template_bti.values[~field]).all()  # outside the field: no template
    assert np.isfinite(mu[20:24, 5, 5]).all() and (mu[20:24, 5, 5] > 30).all()
    _, eclipse = xb.masks(counts, mu, 3.0)
    assert eclipse[20:24, 5, 5].all()


def test_the_template_of_a_sparse_subset_keeps_the_share_of_empty_field_cells():
    rng = np.random.default_rng(1)
    field = np.zeros((40, 40), bool)
    field[2:-2, 2:-2] = True
    img = np.where(field, rng.poisson(0.5, field.shape), 0).astype(float)
    mask = np.zeros_like(field)
    t, c = bg.template(img, mask, field=field)
    assert np.isfinite(t[field]).all() and np.isnan(t[~field]).all() and abs(np.nansum(t) - 1) < 1e-12
    old, _ = bg.template(img, mask)  # the default: the cells with counts
    assert np.isnan(old[field & (img == 0)]).all()
    # the expected counts of a cell with counts are not raised by the empty cells' share
    assert np.mean(t[img > 0]) < 0.85 * np.mean(old[img > 0])
