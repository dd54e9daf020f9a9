"""Expected-counts model of a counts cube: background template x background
light curve + constant sources (the EXOD model, without its defects).

With ``N[t, y, x]`` the counts cube, frames split into the GTI subset G
(``bti`` False) and the BTI subset B (``bti`` True); bad frames and frames with
no good time belong to neither:

1. source mask ``M``: pixels of the GTI image ``I_G`` above ``factor`` x the
   ``percentile``-th percentile of ``I_G`` (over *exposed* pixels outside known
   sources), OR'ed with disks around catalogue sources;
2. per subset S: ``I_S = sum_{t in S} N``, ``C_S`` = counts of ``I_S`` outside
   ``M``, template ``T_S`` = inpaint(``I_S`` over ``M``) / ``C_S``, negatives
   clipped, Gaussian-smoothed (sigma 0.5 cells), renormalised to sum 1 over the
   unmasked pixels; ``T_S`` is NaN where ``I_S`` = 0 (outside the field of view);
3. source rate image ``S0 = max(I_S - T_S C_S, 0)`` inside ``M`` (0 outside),
   divided by the summed exposure [s] of the subset with more frames (each
   pixel's own live time when its CCDs were live for less than some frames'
   exposure: ``live_fraction``);
4. background light curve ``L[t]`` = counts of frame t outside ``M``;
5. ``mu[t] = T_t L[t] + S0 exposure[t] f[t]``, ``f`` the pixel's live
   fraction of the frame (1 but where its CCDs were off for part of it),
   NaN in frames with no counts, zero exposure, flagged bad, or whose subset
   has no template. ``T_t`` is the subset's template per unit of live time,
   ``T'_S = T_S / rel_S`` (``rel_S[p]`` the pixel's relative live time over
   S, its live fraction averaged over the subset's frames weighted by their
   background; 0 where ``rel_S`` is 0), times ``f[t]`` and renormalised to
   sum 1 over the unmasked pixels
   (:func:`frame_templates`): a CCD off for half the subset keeps its full
   background share while it is live and gets none while it is off
   (``T_t = T_S`` when every fraction is 1).

So in every defined frame, ``sum(mu)`` over unmasked pixels equals the frame's
counts outside the mask. The model takes a dense counts cube or a compact
cube (the transient search's): its images and light curve come from the
cube's reductions (:mod:`xcube.binning.counts`).
"""
from __future__ import annotations

import logging
import uuid
import warnings

import dask.array as da
import numba
import numpy as np
import xarray as xr
from scipy import ndimage

from .._version import __version__
from ..binning.counts import dense_view, reductions
from ..checks import check_number
from ..io.catalogue import read_catalogue as read_catalogue_table
from ..scheduler import compute

__all__ = [
    "catalogue_mask",
    "source_mask",
    "inpaint",
    "template",
    "background_model",
    "expected_value",
    "expected_value_jit",
    "model_frames",
    "frame_templates",
    "unique_rows",
    "expected_counts",
    "mask_eclipses",
    "live_fraction_of",
]

log = logging.getLogger("xcube.transients")

# ---------------------------------------------------------------- catalogue disks
def read_catalogue(catalogue):
    """Deprecated: :func:`xcube.io.catalogue.read_catalogue` (the one catalogue reader).

    Returns its pandas DataFrame, one row per source, with float64 columns
    ``ra``, ``dec`` [deg] and ``radius_arcsec`` [arcsec] and a ``name``
    column. Reads the file eagerly."""
    warnings.warn("xcube.transients.background.read_catalogue is deprecated; use xcube.io.catalogue.read_catalogue",
                  DeprecationWarning, stacklevel=2)
    return read_catalogue_table(catalogue)


def _unit_vectors(ra, dec):
    ra, dec = np.radians(ra), np.radians(dec)
    cd = np.cos(dec)
    return np.stack([cd * np.cos(ra), cd * np.sin(ra), np.sin(dec)], axis=-1)


def _cell_radec(image: xr.DataArray, wcs):
    """RA/Dec [deg] of every cell centre: the image's ``ra``/``dec`` coords, or
    ``wcs`` (:func:`xcube.wcs` of the events: column values as 0-based pixels)
    applied to its ``x``/``y`` cell-centre coords (sky-column units)."""
    if "ra" in image.coords and "dec" in image.coords:
        return np.asarray(image["ra"].values), np.asarray(image["dec"].values)
    if wcs is None or "x" not in image.coords or "y" not in image.coords:
        raise ValueError(
            "catalogue masking needs the sky position of every cell: the image has no ra/dec coordinates, "
            "and no wcs= (xcube.wcs(events)) with x/y cell-centre coordinates was given; bin with regular "
            "x/y axes an event list that has a sky WCS"
        )
    xx, yy = np.meshgrid(np.asarray(image["x"].values, dtype=np.float64),
                         np.asarray(image["y"].values, dtype=np.float64))
    ra, dec = wcs.wcs_pix2world(xx, yy, 0)
    return ra, dec


def catalogue_mask(image: xr.DataArray, catalogue, radius_arcsec: float = 20.0, wcs=None) -> np.ndarray:
    """Boolean (y, x) array: cells whose centre lies within a source's radius
    (the catalogue's ``radius_arcsec`` or ``radius_arcsec`` here) of a
    catalogue position (``ValueError`` naming an empty catalogue file).
    Eager; a KD-tree over the cell centres."""
    _check_model_parameters(radius_arcsec=radius_arcsec)
    cat = read_catalogue_table(catalogue)
    mask = np.zeros(image.shape, dtype=bool)
    if cat.empty:
        return mask
    ra, dec = _cell_radec(image, wcs)
    from scipy.spatial import cKDTree

    tree = cKDTree(_unit_vectors(ra.ravel(), dec.ravel()))
    rad = np.where(np.isfinite(cat["radius_arcsec"].values), cat["radius_arcsec"].values, radius_arcsec)
    chord = 2.0 * np.sin(np.radians(rad / 3600.0) / 2.0)
    flat = mask.ravel()
    for v, c in zip(_unit_vectors(cat["ra"].values, cat["dec"].values), chord):
        idx = tree.query_ball_point(v, c)
        flat[idx] = True
    return flat.reshape(image.shape)


# ---------------------------------------------------------------- source mask
def source_mask(
    image,
    percentile: float = 75.0,
    factor: float = 3.0,
    catalogue=None,
    wcs=None,
    radius_arcsec: float = 20.0,
    exposed="nonzero",
) -> xr.DataArray:
    """Pixels holding sources: ``image > factor * percentile(image[exposed &
    ~known])``, OR'ed with disks of ``radius_arcsec`` around catalogue sources.

    Parameters
    ----------
    image : (y, x) counts image (DataArray or array), normally the GTI image.
    catalogue : known sources (see :func:`read_catalogue`), optional.
    wcs : WCS of the event sky columns (``xcube.wcs(events)``), applied to the
        image's ``x``/``y`` cell-centre coordinates; needed only with a
        catalogue and an image without ``ra``/``dec`` coordinates.
    exposed : which pixels the percentile is taken over. ``"nonzero"``
        (default): pixels with at least one count, so that the empty area
        outside the field of view (often most of the grid) does not drag the
        percentile, and the threshold, down to zero; it also guarantees a
        threshold of at least ``factor`` counts. ``"all"``: every pixel (EXOD's
        choice, which makes the mask depend on the grid's extent). Or a boolean
        (y, x) array, e.g. from an exposure map.

    Returns a boolean DataArray (y, x) with attrs ``threshold`` [counts],
    ``percentile``, ``factor``, ``n_catalogue_pixels``. Eager (2-D only).
    """
    img = image if isinstance(image, xr.DataArray) else xr.DataArray(np.asarray(image), dims=("y", "x"))
    if img.ndim != 2:
        raise ValueError(f"source_mask needs a 2-D (y, x) image, got dims {img.dims}")
    _check_model_parameters(percentile=percentile, factor=factor)
    values = np.asarray(img.values, dtype=np.float64)
    known = np.zeros(values.shape, dtype=bool)
    if catalogue is not None:
        known = catalogue_mask(img, catalogue, radius_arcsec=radius_arcsec, wcs=wcs)
    if isinstance(exposed, str):
        if exposed == "nonzero":
            sel = values > 0
        elif exposed == "all":
            sel = np.ones(values.shape, dtype=bool)
        else:
            raise ValueError(f"exposed={exposed!r}: use 'nonzero', 'all' or a boolean (y, x) array")
    else:
        sel = np.asarray(exposed, dtype=bool)
        if sel.shape != values.shape:
            raise ValueError(f"exposed has shape {sel.shape}, the image {values.shape}")
    sel = sel & ~known & np.isfinite(values)
    if sel.any():
        threshold = float(factor * np.percentile(values[sel], percentile))
    else:
        threshold = np.inf
        warnings.warn("source_mask: no exposed pixel outside known sources; only catalogue disks are masked",
                      stacklevel=2)
    mask = (values > threshold) | known
    return xr.DataArray(
        mask, dims=img.dims, coords=img.coords, name="source_mask",
        attrs={"threshold": threshold, "percentile": float(percentile), "factor": float(factor),
               "n_catalogue_pixels": int(known.sum()), "exposed": exposed if isinstance(exposed, str) else "array"},
    )


_source_mask = source_mask  # background_model's parameter of the same name shadows it


# ---------------------------------------------------------------- templates
def inpaint(image: np.ndarray, mask: np.ndarray, method: str = "biharmonic", support=None) -> np.ndarray:
    """Fill the ``mask`` pixels of a 2-D image from their surroundings.

    ``"biharmonic"`` (default): :func:`skimage.restoration.inpaint_biharmonic`,
    a smooth fill that continues gradients across the hole; every unmasked
    pixel counts as known, including empty pixels outside the field of view.
    ``"normalized"``: normalized convolution, ``G*(I w) / G*w`` with ``w`` the
    known pixels (``~mask & support``), Gaussian widths 1, 2, 4... cells until
    every hole is filled; it ignores pixels outside ``support`` (e.g. outside
    the field of view), which suits sources at the edge of the field.
    Eager; returns float64.
    """
    img = np.asarray(image, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return img.copy()
    if method == "biharmonic":
        from skimage.restoration import inpaint_biharmonic

        if mask.all():
            return np.zeros_like(img)
        return inpaint_biharmonic(img, mask)
    if method == "normalized":
        known = ~mask if support is None else (~mask & np.asarray(support, dtype=bool))
        out = img.copy()
        todo = mask.copy()
        if not known.any():
            out[mask] = 0.0
            return out
        num0 = np.where(known, img, 0.0)
        w0 = known.astype(np.float64)
        s = 1.0
        while todo.any():
            num = ndimage.gaussian_filter(num0, s, mode="constant")
            den = ndimage.gaussian_filter(w0, s, mode="constant")
            ok = todo & (den > 1e-6)
            out[ok] = num[ok] / den[ok]
            todo &= ~ok
            if s > 2 * max(img.shape):
                out[todo] = 0.0
                break
            s *= 2.0
        return out
    raise ValueError(f"inpaint method {method!r}: use 'biharmonic' or 'normalized'")


def template(image, mask, smooth_sigma: float = 0.5, method: str = "biharmonic", field=None):
    """Background template of one frame subset.

    ``image``: (y, x) summed counts ``I_S``; ``mask``: source mask ``M``;
    ``field``: (y, x) bool, the cells of the field of view (default: those
    with counts, ``I_S > 0``; the search passes the cells with counts in any
    subset, so that a sparse subset's empty cells inside the field keep their
    share). Returns ``(T, C)``: ``C`` = counts of ``I_S`` outside ``M``;
    ``T`` = inpaint(``I_S`` over ``M``) / ``C``, negatives clipped, smoothed
    by a Gaussian of ``smooth_sigma`` cells
    (:func:`scipy.ndimage.gaussian_filter`), NaN outside ``field``,
    renormalised so that its sum over the unmasked pixels is 1. ``T`` is all
    NaN when ``C`` = 0. Eager, 2-D.
    """
    img = np.asarray(image, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    support = img > 0 if field is None else np.asarray(field, dtype=bool)
    c = float(img[~mask].sum())
    if c <= 0:
        return np.full(img.shape, np.nan), 0.0
    filled = np.clip(inpaint(img, mask, method=method, support=support), 0.0, None) / c
    if smooth_sigma and smooth_sigma > 0:
        filled = ndimage.gaussian_filter(filled, smooth_sigma, mode="constant")
    t = np.where(support, filled, np.nan)
    norm = np.nansum(t[~mask])
    if not norm > 0:
        return np.full(img.shape, np.nan), c
    return t / norm, c


# ---------------------------------------------------------------- the model
def expected_value(template, light_curve, rate, exposure):
    """mu = T * L + S0 * exposure: expected counts from template values T,
    the frame's background counts L, the source rate S0 [ct/s] and the
    frame's exposure [s]; numpy arrays broadcast and the result [count] has
    their broadcast shape. Eager. The one formula of the
    model: :data:`expected_value_jit` is this function compiled for the
    numba kernels (the decision on compact cubes)."""
    return template * light_curve + rate * exposure


#: :func:`expected_value` for numba kernels (compiled on first use, inlined)
expected_value_jit = numba.njit(inline="always")(expected_value)


def _check_model_parameters(**values) -> None:
    """``ValueError`` naming the parameter unless ``percentile`` is in [0, 100], ``factor`` and
    ``radius_arcsec`` are positive and ``smooth_sigma`` >= 0 (the ones given)."""
    bounds = {"percentile": dict(ge=0.0, le=100.0), "factor": dict(gt=0.0),
              "radius_arcsec": dict(gt=0.0, unit="arcsec"), "smooth_sigma": dict(ge=0.0, unit="cells")}
    for name, value in values.items():
        check_number("background model", name, value, **bounds[name])


def _frame_flags(frames, nt: int, value, name: str) -> np.ndarray:
    if value is None:
        if frames is not None and name in frames.coords:
            value = frames.coords[name]
        else:
            return np.zeros(nt, dtype=bool)
    if isinstance(value, xr.DataArray):
        value = value.values
    arr = np.asarray(compute(value)[0])
    if arr.shape != (nt,):
        raise ValueError(f"{name} has shape {arr.shape}; it must be one boolean per time bin ({nt},)")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"{name} holds NaN (first at time bin {int(np.flatnonzero(np.isnan(arr))[0])}); it must be "
                         "one boolean per time bin")
    return arr.astype(bool)


def _frame_exposure(cube, view, nt, exposure) -> np.ndarray:
    if exposure is None:
        if "exposure" not in view.coords:
            raise ValueError("the counts cube has no 'exposure' coordinate along time (seconds of good time per bin)")
        exposure = view["exposure"].values
    expo = np.asarray(exposure, dtype=np.float64)
    if expo.shape != (nt,):
        raise ValueError(f"exposure has shape {expo.shape}; it must be one value [s] per time bin ({nt},)")
    return expo


def _coords(view):
    """(2-D (y, x) coords, 1-D time coords but the exposure) of a labelled cube."""
    yx = {k: v for k, v in view.coords.items() if set(v.dims) <= {"y", "x"}}
    t = {k: v for k, v in view.coords.items() if v.dims == ("time",) and k not in ("exposure", "fracexp")}
    return yx, t


#: fewer cells [count] outside the source mask with counts than this make the background model warn
MIN_BACKGROUND_CELLS = 50


def background_model(
    cube,
    bti=None,
    bad_frame=None,
    *,
    exposure=None,
    source_mask=None,
    percentile: float = 75.0,
    factor: float = 3.0,
    catalogue=None,
    radius_arcsec: float = 20.0,
    exposed="nonzero",
    smooth_sigma: float = 0.5,
    inpaint: str = "biharmonic",
    wcs=None,
    live_fraction=None,
) -> xr.Dataset:
    """Fit the background + constant-source model to a counts cube.

    Parameters
    ----------
    cube : (time, y, x) counts: a ``counts`` DataArray from ``xcube.bin_events``
        (lazy or in memory) or a :class:`~xcube.binning.CompactCube`.
    bti, bad_frame : booleans per time bin (arrays or DataArrays; default: the
        cube's ``bti``/``bad_frame`` coordinates, else all False). BTI frames
        get their own template; bad frames are excluded (mu NaN).
    exposure : good time per frame [s] (default: the cube's ``exposure``).
    source_mask : (y, x) boolean mask to use instead of computing one with
        :func:`source_mask` (``percentile``, ``factor``, ``catalogue``,
        ``radius_arcsec``, ``exposed``, ``wcs`` are then unused).
    smooth_sigma : Gaussian smoothing of the templates [cells].
    inpaint : ``"biharmonic"`` or ``"normalized"`` (see :func:`inpaint`).
    wcs : ``xcube.wcs(events)``, for catalogue disks on a cube without
        ``ra``/``dec`` coordinates (see :func:`source_mask`).
    live_fraction : ``(group, fraction)`` of
        :func:`~xcube.transients.frames.ccd_live_fraction`: the fraction of
        each frame's exposure the CCDs of each pixel were live, ``fraction``
        (n_groups, time) by the pixels' ``group`` (y, x); the source term of
        a pixel is then ``S0 exposure[t] fraction[group, t]``, ``S0`` is
        divided by the pixel's own summed live time, and the background
        template of a frame is taken per unit of live time at the frame's
        fractions (:func:`frame_templates`). None: 1 everywhere.

    Returns
    -------
    Dataset with (y, x) ``source_mask``, ``template_gti``, ``template_bti``
    (NaN when the subset is empty), ``source_rate`` [ct/s per cell],
    ``image_gti``, ``image_bti``, ``live_group`` (int32); along time ``subset``
    (0 GTI, 1 BTI, -1 excluded), ``light_curve`` L (counts outside the mask),
    ``exposure`` [s] and ``defined`` (mu defined: a kept frame with counts and
    a template); ``live_fraction`` (live_group, time), row 0 all ones;
    attrs ``counts_outside_gti``/``_bti``, ``source_subset``, ``threshold``...
    :func:`model_frames` turns it into mu images, :func:`frame_templates`
    gives each frame's template.

    Computes eagerly: the subset images, frame totals and the light curve
    (numba loops over a compact cube; two passes over a dense cube); the
    rest is 2-D work.
    """
    _check_model_parameters(percentile=percentile, factor=factor, radius_arcsec=radius_arcsec,
                            smooth_sigma=smooth_sigma)
    red = reductions(cube)
    view = dense_view(cube)
    nt, ny, nx = red.shape
    bti_f = _frame_flags(view, nt, bti, "bti")
    bad_f = _frame_flags(view, nt, bad_frame, "bad_frame")
    expo = _frame_exposure(cube, view, nt, exposure)
    valid = (expo > 0) & ~bad_f & np.isfinite(expo)
    in_g, in_b = valid & ~bti_f, valid & bti_f
    labels = np.where(in_g, 0, np.where(in_b, 1, -1))
    images, totals = (np.asarray(a) for a in compute(red.image_by(labels, 2), red.frame_totals()))
    img_g, img_b = images
    coords2d, tcoords = _coords(view)
    mask, mask_attrs = _model_mask(img_g, img_b, in_g, source_mask, coords2d, (ny, nx), percentile=percentile,
                                   factor=factor, catalogue=catalogue, wcs=wcs, radius_arcsec=radius_arcsec,
                                   exposed=exposed)
    field = (img_g > 0) | (img_b > 0)  # the field of view: cells with counts in any subset
    t_g, c_g = (template(img_g, mask, smooth_sigma, inpaint, field) if in_g.any()
                else (np.full((ny, nx), np.nan), 0.0))
    t_b, c_b = (template(img_b, mask, smooth_sigma, inpaint, field) if in_b.any()
                else (np.full((ny, nx), np.nan), 0.0))
    n_bkg = int(np.count_nonzero(~mask & field))
    if 0 < n_bkg < MIN_BACKGROUND_CELLS:
        where = cube.attrs.get("source") or cube.attrs.get("obs_id") or "the cube"
        warnings.warn(f"background model of {where}: only {n_bkg} cells outside the source mask hold counts (a field "
                      f"of {ny} x {nx} cells): each frame's background level comes from so few cells that a "
                      "transient raises its own expected counts and is hard to detect; search the full field, not "
                      "a region-extracted event list, or use smaller cells", UserWarning, stacklevel=2)
    for name, sel, c in (("GTI", in_g, c_g), ("BTI", in_b, c_b)):
        if sel.any() and c <= 0:
            warnings.warn(f"background model: the {name} frames hold no counts outside the source mask; "
                          f"their expected counts are NaN", stacklevel=2)
    group, fraction = _live_groups(live_fraction, (ny, nx), nt)
    use_b = int(in_b.sum()) > int(in_g.sum())
    sel = in_b if use_b else in_g
    rate, expo_s = _source_rate(img_b if use_b else img_g, t_b if use_b else t_g, c_b if use_b else c_g,
                                _live_time(fraction, group, expo, sel), mask)
    subset = np.where(in_g, 0, np.where(in_b, 1, -1)).astype(np.int8)
    lc = np.asarray(compute(red.counts_in(~mask))[0], dtype=np.int64)
    ok = np.array([np.isfinite(t_g).any(), np.isfinite(t_b).any()])
    defined = (subset >= 0) & (np.asarray(totals) > 0) & ok[np.clip(subset, 0, 1)]
    yx = ("y", "x")
    return xr.Dataset(
        {
            "source_mask": (yx, mask, {"long_name": "source mask M"}),
            "template_gti": (yx, t_g, {"long_name": "background template of the GTI frames", "units": "1"}),
            "template_bti": (yx, t_b, {"long_name": "background template of the BTI frames", "units": "1"}),
            "source_rate": (yx, rate, {"long_name": "constant-source rate per cell S0", "units": "count/s"}),
            "image_gti": (yx, img_g, {"units": "count"}),
            "image_bti": (yx, img_b, {"units": "count"}),
            "subset": (("time",), subset, {"long_name": "frame subset: 0 GTI, 1 BTI, -1 excluded"}),
            "light_curve": (("time",), lc, {"long_name": "counts outside the source mask L", "units": "count"}),
            "exposure": (("time",), expo, {"long_name": "good time of the frame used by the model", "units": "s"}),
            "defined": (("time",), defined, {"long_name": "mu defined in the frame"}),
            "live_group": (yx, group, {"long_name": "row of live_fraction of each pixel"}),
            "live_fraction": (("live_group", "time"), fraction,
                              {"long_name": "fraction of the frame's exposure the pixels' CCDs were live"}),
        },
        coords={**coords2d, **tcoords},
        attrs={
            "counts_outside_gti": c_g, "counts_outside_bti": c_b,
            "n_gti_frames": int(in_g.sum()), "n_bti_frames": int(in_b.sum()),
            "source_subset": "bti" if use_b else "gti", "source_exposure": expo_s,
            "threshold": float(mask_attrs.get("threshold", np.nan)), "percentile": float(percentile),
            "factor": float(factor), "smooth_sigma": float(smooth_sigma), "inpaint": inpaint,
            "exposed": exposed if isinstance(exposed, str) else "array", "xcube_version": __version__,
        },
    )


def _model_mask(img_g, img_b, in_g, given, coords2d, shape, **kw):
    """The source mask of the model and its attrs (computed, or ``given``)."""
    if given is not None:
        mask = np.asarray(given.values if isinstance(given, xr.DataArray) else given, dtype=bool)
        if mask.shape != shape:
            raise ValueError(f"source_mask has shape {mask.shape}; the cube's images are {shape}")
        return mask, {"threshold": np.nan, "given": True}
    if not in_g.any():
        log.info("no GTI frames: the source mask is computed from the BTI image")
    base = img_g if in_g.any() else img_b
    m = _source_mask(xr.DataArray(base, dims=("y", "x"), coords=coords2d), **kw)
    return np.asarray(m.values), dict(m.attrs)


def _live_groups(live_fraction, shape, nt):
    """``(group (y, x) int32, fraction (n_groups, nt) float64)`` of a
    ``live_fraction`` argument (None: one group, all ones), checked."""
    if live_fraction is None:
        return np.zeros(shape, np.int32), np.ones((1, nt))
    group, fraction = (np.asarray(a) for a in live_fraction)
    fraction = np.asarray(fraction, np.float64)
    if group.shape != shape or fraction.ndim != 2 or fraction.shape[1] != nt or \
            not (group.min() >= 0 and group.max() < fraction.shape[0]):
        raise ValueError(f"live_fraction: a (y, x) group map {shape} indexing the rows of a (groups, {nt}) "
                         f"fraction; got {group.shape} and {fraction.shape}")
    return group.astype(np.int32), fraction


def _live_time(fraction, group, expo, frames) -> np.ndarray:
    """Each pixel's live time [s] summed over ``frames`` (bool, time): the
    frames' exposure ``expo`` [s] times its CCDs' live ``fraction`` (groups,
    time) by its ``group`` (y, x); (y, x) float64. Eager, numpy."""
    return (fraction[:, frames] @ expo[frames])[group]


def _source_rate(img, tmpl, counts_out, live_time, mask):
    """S0 = max(I - T C, 0) inside the mask / each pixel's summed live time
    ``live_time`` (y, x) [s] over the subset, and the subset's exposure [s]
    (the largest live time)."""
    expo_s = float(np.max(live_time)) if np.size(live_time) else 0.0
    if expo_s > 0 and counts_out > 0:
        resid = np.clip(img - np.nan_to_num(tmpl) * counts_out, 0.0, None)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(mask & (live_time > 0), resid / live_time, 0.0), expo_s
    return np.zeros(mask.shape), expo_s


def mask_eclipses(cube, model: xr.Dataset, eclipse_voxels, dilate: int = 1, peak_voxels=None) -> xr.Dataset:
    """The model with each eclipsing constant source's rate fitted outside
    its eclipse (and outside its flares).

    ``eclipse_voxels``: (m, 2) int ``(frame, pixel)`` flagged as eclipses
    (``Flags.voxels`` rows of kind 1; pixel = iy * nx + ix). A *source* is an
    8-connected region of the model's source mask; its eclipse frames are
    the frames where any of its pixels is flagged, grown by ``dilate``
    frames each side (partly eclipsed ingress/egress frames). For each
    source with eclipse frames ``E``, over the frames ``F`` of the rate's
    subset (``attrs["source_subset"]``) not in ``E``::

        S0[p] = max(sum_F N[t, p] - sum_F T_t[p] L[t], 0) / sum_F exposure[t]

    (``T_t`` the frame's template, :func:`frame_templates`; the exposure
    times the pixel's live fraction when ``live_fraction`` has one; the
    usual ``S0`` when ``E`` is empty), so that its rate is not
    diluted by the eclipse and the model does not under-predict it outside
    (which makes false peaks). ``peak_voxels`` ((k, 2), the peaks flagged
    in the same decision): the source's (grown) peak frames are left out
    of ``F`` too, and when no frame is left the rate is fitted outside the
    peaks alone: a strong flare raises the whole-observation rate so that
    all its quiet frames look eclipsed, and a rate fitted on the flare
    frames would turn the flare into a deep false eclipse. When the
    source is flagged as eclipsed in more than half of the subset's frames
    (before growing), or is flaring outside them towards their level
    (:func:`_flare_over_usual`), the rate is fitted on the eclipse frames
    instead: they are its usual level, which a long flare (whose wings are
    not all flagged as peaks) raised the mean above, so that the flare is a
    peak and not also an eclipse for the rest of the observation; a real
    eclipse shorter than half the observation leaves the source at its level
    outside it. A source with flagged peaks and no eclipse is fitted
    outside its (grown) peak frames too: a flare's counts would otherwise
    raise the source's rate in every frame, the flare's own frames
    included, and weaken it (a 2500-count flare of a spot with no steady
    source: mu 24 instead of 0.2 in its peak 200 s frame). A source without
    frames left keeps its rate. Other pixels keep their rate. Returns a new
    model (attrs ``eclipse_masked_sources``: the number of sources refitted)
    or ``model`` itself when no source eclipses or flares. Eager: one image
    of the cube per such source (compact or dense cube)."""
    v = np.asarray(eclipse_voxels, dtype=np.int64).reshape(-1, 2)
    pk = np.asarray(peak_voxels if peak_voxels is not None else np.zeros((0, 2)), dtype=np.int64).reshape(-1, 2)
    mask = np.asarray(model["source_mask"].values, bool)
    labels, nlab = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if (v.size == 0 and pk.size == 0) or nlab == 0:
        return model
    lab, pk_lab = labels.ravel()[v[:, 1]], labels.ravel()[pk[:, 1]]
    v, lab = v[lab > 0], lab[lab > 0]
    if v.size == 0 and not (pk_lab > 0).any():
        return model
    red = reductions(cube)
    sub = model["subset"].values
    use = 1 if model.attrs.get("source_subset") == "bti" else 0
    templates, of = frame_templates(model)
    templates = np.nan_to_num(templates)
    lc, expo = model["light_curve"].values.astype(np.float64), model["exposure"].values
    group, fraction = live_fraction_of(model)
    rate = np.array(model["source_rate"].values, dtype=np.float64)
    done = 0
    for r in np.union1d(lab, pk_lab[pk_lab > 0]):  # the sources with eclipses or flares
        ecl, flare = np.zeros(sub.size, bool), np.zeros(sub.size, bool)
        ecl[v[lab == r, 0]] = True
        flare[pk[pk_lab == r, 0]] = True
        mine = sub == use
        most = 2 * int(np.count_nonzero(ecl & mine)) > int(np.count_nonzero(mine))  # (flagged frames, not grown)
        if dilate:
            ecl, flare = (ndimage.binary_dilation(a, np.ones(2 * dilate + 1, bool)) for a in (ecl, flare))
        pix = labels == r
        frames = mine & ~ecl & ~flare
        low = mine & ecl & ~flare
        if low.any() and (most or not frames.any()
                          or _flare_over_usual(red, pix, frames, low, mine, templates, of, lc, expo, fraction,
                                               group)):
            # "eclipsed" in most frames, or flaring outside them towards that level: a flare (a long one, whose
            # wings are not all flagged) raised its rate, and the "eclipsed" frames are its usual level
            frames = low
        if not frames.any():  # every other frame looks eclipsed: a flare's share of the mean rate
            frames = mine & ~flare
        e_s = _live_time(fraction, group, expo, frames)[pix]  # each pixel's live time over F [s]
        if not (e_s > 0).any():
            continue
        img = np.asarray(compute(red.image(frames))[0], dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate[pix] = np.where(e_s > 0, np.clip(img[pix] - _background_over(templates, of, lc, frames, pix), 0.0,
                                                  None) / e_s, rate[pix])
        done += 1
    out = model.copy()
    out["source_rate"] = (("y", "x"), rate, dict(model["source_rate"].attrs))
    out.attrs = dict(model.attrs, eclipse_masked_sources=done)
    return out


def _background_over(templates, of, lc, frames, pix) -> np.ndarray:
    """``sum_{t in frames} T_t[pix] L[t]``: the background counts [count] of
    the pixels ``pix`` ((y, x) bool) over ``frames`` (bool, time, each with a
    template: ``of`` >= 0), from the frames' ``templates`` (n, pixels) and
    the light curve ``lc``; (pix.sum(),) float64."""
    lsum = np.bincount(of[frames], weights=lc[frames], minlength=templates.shape[0])
    out = np.zeros(int(np.count_nonzero(pix)))
    for j in np.flatnonzero(lsum):
        out += templates[j][pix.ravel()] * lsum[j]
    return out


#: a source's counts outside its eclipse frames vary (not one constant rate) below this chi-square probability
STEADY_P = 1e-6


def _flare_over_usual(red, pix, frames, low, mine, templates, of, lc, expo, fraction, group) -> bool:
    """Whether the source ``pix`` ((y, x) bool) is at its usual level in its
    "eclipse" frames ``low`` and flaring in the others: its counts in
    ``frames`` (neither eclipse nor peak) are not one constant rate over the
    background (Pearson chi-square, ``P < STEADY_P``), and the lowest tenth
    of its rates outside ``low`` (frames of ``mine``) lies closer to the
    ``low`` rate than to their median: a flare's wings fade towards the
    usual level, while a source around a real eclipse keeps its level
    (its background from the frames' ``templates`` by ``of``,
    :func:`frame_templates`). Eager: one pass over the cube for the source's
    light curve."""
    n_all = np.asarray(compute(red.region_counts(np.where(pix, 0, -1), 1))[0], dtype=np.float64)[0]
    live_all = fraction[group[pix]].mean(axis=0) * expo  # the source's live time per frame [s]
    tsum = np.array([float(t[pix.ravel()].sum()) for t in templates] + [0.0])  # 0 for frames without a template
    bkg_all = tsum[of] * lc
    n, live, bkg = n_all[frames], live_all[frames], bkg_all[frames]
    if n.size < 3 or not (live > 0).any() or not (live_all[low] > 0).any():
        return False
    r = max(float(n.sum() - bkg.sum()), 0.0) / float(live.sum())
    mu = bkg + r * live
    ok = mu > 0
    chi2 = float(np.sum((n[ok] - mu[ok]) ** 2 / mu[ok]))
    from scipy.special import chdtrc  # (the chi-square survival function, as scipy.stats.chi2.sf)

    if chdtrc(max(int(ok.sum()) - 1, 1), chi2) >= STEADY_P:
        return False  # steady outside the eclipse and the peaks: a real eclipse
    r_low = max(float(n_all[low].sum() - bkg_all[low].sum()), 0.0) / float(live_all[low].sum())
    out = mine & ~low & (live_all > 0)
    rates = (n_all[out] - bkg_all[out]) / live_all[out]
    floor, middle = float(np.quantile(rates, 0.1)), float(np.median(rates))
    return floor - r_low < middle - floor


def live_fraction_of(model: xr.Dataset):
    """``(group, fraction)`` of a :func:`background_model`: (y, x) int32 and
    (n_groups, time) float64 (one group of ones for a model made without
    ``live_fraction``). Eager (small arrays)."""
    if "live_fraction" in model:
        return model["live_group"].values, model["live_fraction"].values
    return _live_groups(None, model["source_mask"].shape, model.sizes["time"])


def unique_rows(key: np.ndarray):
    """``np.unique(key, axis=0, return_inverse=True, return_counts=True)`` of a
    (n, m) float array without NaN, by one lexsort (several times faster). Eager, numpy."""
    n = key.shape[0]
    order = np.lexsort(key.T[::-1])
    sk = key[order]
    new = np.ones(n, dtype=bool)
    new[1:] = np.any(sk[1:] != sk[:-1], axis=1)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return sk[new], inverse, np.diff(np.append(np.flatnonzero(new), n))


def frame_templates(model: xr.Dataset, frames=None):
    """The background template of each frame, per unit of its pixels' live time.

    A frame t of subset S (GTI, BTI) with its CCD groups' live fractions
    ``f[:, t]`` (the model's ``live_fraction``) takes ``T_S a[group]``
    renormalised to sum 1 over the unmasked pixels, ``a[g] = f[g, t] /
    rel_S[g]`` (0 where ``rel_S[g]`` is 0) and ``rel_S[g]`` the group's
    relative live time over S (:func:`_relative_live_time`: its live
    fraction averaged over the frames of S weighted by their background): ``T_S``
    (from the summed image) gives a CCD live for half of S half its share,
    so it is divided by ``rel_S``, and a CCD off in frame t gets no
    background there. ``T_S`` itself when every ``a`` is 1 (all fractions 1:
    bit for bit the uncorrected model); left unnormalised when no unmasked
    pixel is live (sum 0).

    ``frames``: frame indices (default: all). Returns ``(templates, of)``:
    ``templates`` (n_templates, ny * nx) float64, one per distinct (subset,
    column of ``live_fraction``) among ``frames`` (NaN outside the field of
    view, as ``T_S``), and ``of`` (len(frames),) int64, each frame's row (-1
    for an excluded frame). Eager, numpy."""
    sub = np.asarray(model["subset"].values)
    idx = np.arange(sub.size) if frames is None else np.asarray(frames, np.int64)
    group, fraction = live_fraction_of(model)
    g = np.asarray(group).ravel()
    used = np.unique(g)
    expo = np.asarray(model["exposure"].values, np.float64)
    lc = np.asarray(model["light_curve"].values, np.float64)
    free = ~np.asarray(model["source_mask"].values, bool).ravel()
    out, of = [], np.full(idx.size, -1, np.int64)
    for s, name in ((0, "template_gti"), (1, "template_bti")):
        mine = np.flatnonzero(sub[idx] == s)
        if mine.size == 0:
            continue
        tmpl = np.ascontiguousarray(model[name].values, np.float64).ravel()
        rel = _relative_live_time(tmpl, free, g, fraction[:, sub == s], expo[sub == s], lc[sub == s])
        cols, inv, _ = unique_rows(np.ascontiguousarray(fraction[:, idx[mine]].T))
        of[mine] = inv + len(out)
        for col in cols:
            with np.errstate(invalid="ignore", divide="ignore"):
                a = np.where(rel > 0, col / rel, 0.0)
            if (a[used] == 1.0).all():
                out.append(tmpl)
                continue
            t = tmpl * a[g]
            norm = np.nansum(t[free])
            out.append(t / norm if norm > 0 else t)
    return (np.stack(out) if out else np.zeros((0, g.size))), of


def _relative_live_time(tmpl, free, group, fraction, expo, lc, tol: float = 1e-12, max_iter: int = 1000):
    """``rel_S`` (groups,) of :func:`frame_templates`: each CCD group's live
    time over a subset's frames relative to the frames' own, weighted by the
    frames' background. ``tmpl`` (pixels,) the subset's template ``T_S``,
    ``free`` (pixels,) the unmasked pixels, ``group`` (pixels,) their rows of
    ``fraction`` (groups, frames); ``expo`` [s] and ``lc`` [count] (frames,)
    the subset's exposure and light curve ``L``.

    ``T_S`` sums the counts of the subset's frames, each at its own
    background level, so a group's weight in it is its live fraction
    averaged with the weights ``w_t = L[t] / n_t``, ``n_t`` the sum over the
    unmasked pixels of the frame's unnormalised template ``T_S f[t] / rel_S``
    (the frame's background per unit of the template): ``rel_S[g] = sum_t
    w_t f[g, t] / sum_t w_t``, solved by iteration from the exposure-weighted
    mean (the answer for a constant background); the model's summed
    background over the subset is then ``T_S C_S``. Exactly 1 for the groups
    live throughout. Eager, numpy."""
    ones = (fraction == 1.0).all(axis=1)
    rel = np.where(ones, 1.0, (fraction @ expo) / expo.sum())
    if ones.all():
        return rel
    ok = free & np.isfinite(tmpl)
    share = np.bincount(group[ok], weights=tmpl[ok], minlength=fraction.shape[0])  # T_S summed per group
    for _ in range(max_iter):
        with np.errstate(invalid="ignore", divide="ignore"):
            n = np.where(rel > 0, share / rel, 0.0) @ fraction
            w = np.where(n > 0, lc / n, 0.0)
        if not w.sum() > 0:
            break
        new = np.where(ones, 1.0, (fraction @ w) / w.sum())
        done = np.max(np.abs(new - rel)) <= tol
        rel = new
        if done:
            break
    return rel


def model_frames(model: xr.Dataset, f0: int = 0, f1: int | None = None) -> np.ndarray:
    """mu images [count] of frames ``f0:f1`` of a :func:`background_model`:
    ``expected_value(T_t, L, S0 f, exposure)`` (``T_t`` the frame's
    template, :func:`frame_templates`) where the frame's mu is defined, NaN
    elsewhere. A float64 numpy array of shape ``(n, y, x)``, n the frames in
    ``f0:f1``. Eager."""
    ok = model["defined"].values[f0:f1]
    ny, nx = model["source_mask"].shape
    templates, of = frame_templates(model, np.arange(model.sizes["time"])[f0:f1])
    tm = np.full((of.size, ny * nx), np.nan)
    tm[of >= 0] = templates[of[of >= 0]]
    tm = tm.reshape(of.size, ny, nx)
    lc = model["light_curve"].values[f0:f1].astype(np.float64)
    group, fraction = live_fraction_of(model)
    live = np.moveaxis(fraction[:, f0:f1][group], -1, 0)  # (n, y, x)
    mu = expected_value(tm, lc[:, None, None], model["source_rate"].values[None] * live,
                        model["exposure"].values[f0:f1, None, None])
    mu[~ok] = np.nan
    return mu


def expected_counts(
    cube,
    bti=None,
    bad_frame=None,
    source_mask=None,
    *,
    model: xr.Dataset | None = None,
    dtype="float64",
    **model_kw,
) -> xr.DataArray:
    """Expected counts ``mu[t, y, x] = T_t L[t] + S0 f[t] exposure[t]``
    (:func:`model_frames`).

    An ``xr.DataArray`` "expected" [count], dims ``(time, y, x)`` with the
    coords of the dense cube.

    ``cube``, ``bti``, ``bad_frame``, ``source_mask`` and ``model_kw`` as in
    :func:`background_model`; pass a ready ``model`` to reuse it (its frame
    subsets then replace ``bti``/``bad_frame``). mu is NaN in frames with no
    counts, zero exposure, flagged bad or without a template, and in pixels
    with no counts in the frame's subset (outside the field of view).

    Lazy along time: a Dask array chunked like the (dense) cube, each block
    computed from the model alone (:func:`model_frames`), so memory is one
    chunk. Eager: the model, when ``model`` is not given.
    """
    if model is None:
        model = background_model(cube, bti, bad_frame, source_mask=source_mask, **model_kw)
    elif model_kw or source_mask is not None:
        raise ValueError("pass either model= or the model parameters, not both")
    view = dense_view(cube)
    nt, ny, nx = view.shape
    if model["subset"].shape != (nt,):
        raise ValueError(f"model has {model['subset'].shape[0]} frames, the cube {nt}")
    dtype = np.dtype(dtype)
    tch = view.chunks[0] if view.chunks is not None else (nt,)
    frames = da.arange(nt, chunks=(tch,))
    mu = frames.map_blocks(_mu_block, model, dtype, new_axis=[1, 2], chunks=(tch, (ny,), (nx,)), dtype=dtype,
                           meta=np.empty((0, 0, 0), dtype=dtype),
                           name=f"expected-{uuid.uuid4().hex}")  # (hashing the model costs more than the graph)
    return xr.DataArray(
        mu, dims=("time", "y", "x"), coords=view.coords, name="expected",
        attrs={"units": "count", "long_name": "expected counts (background template x light curve + sources)",
               **{k: v for k, v in model.attrs.items()}},
    )


def _mu_block(frames, model, dtype):
    if frames.size == 0:
        return np.zeros((0,) + model["source_mask"].shape, dtype=dtype)
    return model_frames(model, int(frames[0]), int(frames[-1]) + 1).astype(dtype, copy=False)
