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
   divided by the summed exposure [s] of the subset with more frames;
4. background light curve ``L[t]`` = counts of frame t outside ``M``;
5. ``mu[t] = T_{S(t)} L[t] + S0 exposure[t]``, NaN in frames with no counts,
   zero exposure, flagged bad, or whose subset has no template.

So in every defined frame, ``sum(mu)`` over unmasked pixels equals the frame's
counts outside the mask.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import dask
import dask.array as da
import numba
import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage
from scipy.spatial import cKDTree

from .._version import __version__

__all__ = [
    "read_catalogue",
    "catalogue_mask",
    "source_mask",
    "inpaint",
    "template",
    "background_model",
    "expected_counts",
]

log = logging.getLogger("xcube.transients")

_RA_NAMES = ("ra", "ra_deg", "raj2000", "ra_icrs", "radeg", "ra_j2000")
_DEC_NAMES = ("dec", "dec_deg", "dej2000", "decj2000", "de_icrs", "dec_icrs", "dedeg", "dec_j2000")
_RADIUS_NAMES = ("radius_arcsec", "radius", "r_arcsec", "r", "extent_arcsec")


# ---------------------------------------------------------------- catalogues
def read_catalogue(catalogue) -> pd.DataFrame:
    """Known sources as a DataFrame with ``ra``, ``dec`` [deg] and
    ``radius_arcsec`` (NaN where the catalogue gives none).

    ``catalogue``: a CSV or FITS table path, a pandas DataFrame or an astropy
    Table. Column names are matched case-insensitively: RA from ``ra``,
    ``ra_deg``, ``RAJ2000``...; Dec from ``dec``, ``dec_deg``, ``DEJ2000``...;
    the optional radius [arcsec] from ``radius_arcsec``, ``radius``, ``r``.
    Eager (catalogues are small).
    """
    name = "catalogue"
    if isinstance(catalogue, (str, Path)):
        path = Path(catalogue)
        name = str(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such catalogue file")
        if path.suffix.lower() in (".csv", ".txt", ".tsv"):
            df = pd.read_csv(path, sep=None, engine="python", comment="#")
        else:
            from astropy.table import Table

            try:
                df = Table.read(path).to_pandas()
            except Exception as exc:  # noqa: BLE001 - report any reader failure with the file name
                raise ValueError(f"{path}: cannot read as a FITS/VOTable/ECSV table ({exc}); use CSV or FITS") from exc
    elif isinstance(catalogue, pd.DataFrame):
        df = catalogue
    elif hasattr(catalogue, "to_pandas"):
        df = catalogue.to_pandas()
    else:
        raise TypeError(f"catalogue must be a path, DataFrame or astropy Table, not {type(catalogue).__name__}")
    lower = {str(c).lower(): c for c in df.columns}

    def pick(names, what, required=True):
        for n in names:
            if n in lower:
                return df[lower[n]]
        if required:
            raise ValueError(f"{name}: no {what} column (looked for {', '.join(names)}; columns: {list(df.columns)})")
        return None

    ra = np.asarray(pick(_RA_NAMES, "RA"), dtype=np.float64)
    dec = np.asarray(pick(_DEC_NAMES, "Dec"), dtype=np.float64)
    rad = pick(_RADIUS_NAMES, "radius", required=False)
    rad = np.full(ra.shape, np.nan) if rad is None else np.asarray(rad, dtype=np.float64)
    bad = ~(np.isfinite(ra) & np.isfinite(dec))
    if bad.any():
        warnings.warn(f"{name}: {int(bad.sum())} rows without RA/Dec ignored", stacklevel=2)
    return pd.DataFrame({"ra": ra[~bad], "dec": dec[~bad], "radius_arcsec": rad[~bad]})


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
    catalogue position. Eager; a KD-tree over the cell centres."""
    cat = read_catalogue(catalogue)
    mask = np.zeros(image.shape, dtype=bool)
    if cat.empty:
        return mask
    ra, dec = _cell_radec(image, wcs)
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


def template(image, mask, smooth_sigma: float = 0.5, method: str = "biharmonic"):
    """Background template of one frame subset.

    ``image``: (y, x) summed counts ``I_S``; ``mask``: source mask ``M``.
    Returns ``(T, C)``: ``C`` = counts of ``I_S`` outside ``M``; ``T`` =
    inpaint(``I_S`` over ``M``) / ``C``, negatives clipped, smoothed by a
    Gaussian of ``smooth_sigma`` cells (:func:`scipy.ndimage.gaussian_filter`),
    NaN where ``I_S`` = 0, renormalised so that its sum over the unmasked
    pixels is 1. ``T`` is all NaN when ``C`` = 0. Eager, 2-D.
    """
    img = np.asarray(image, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    support = img > 0
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
def _frame_flags(cube: xr.DataArray, value, name: str) -> np.ndarray:
    nt = cube.sizes["time"]
    if value is None:
        if name in cube.coords:
            value = cube.coords[name]
        else:
            return np.zeros(nt, dtype=bool)
    if isinstance(value, xr.DataArray):
        value = value.values
    arr = np.asarray(dask.compute(value)[0] if isinstance(value, da.Array) else value)
    if arr.shape != (nt,):
        raise ValueError(f"{name} has shape {arr.shape}; it must be one boolean per time bin ({nt},)")
    return arr.astype(bool)


def _check_cube(cube: xr.DataArray) -> xr.DataArray:
    if not isinstance(cube, xr.DataArray):
        raise TypeError("the counts cube must be an xarray DataArray (xcube.bin_events)")
    if set(cube.dims) != {"time", "y", "x"}:
        raise ValueError(
            f"the counts cube has dims {cube.dims}; the background model needs exactly (time, y, x): "
            "bin without an energy axis (select an energy band first)"
        )
    if "exposure" not in cube.coords:
        raise ValueError("the counts cube has no 'exposure' coordinate along time (seconds of good time per bin)")
    return cube.transpose("time", "y", "x")


def _cube_dask(cube: xr.DataArray) -> da.Array:
    data = cube.data
    if isinstance(data, da.Array):
        return data
    nt, ny, nx = cube.shape
    per = max(1, int(64 * 2**20 // max(ny * nx * data.dtype.itemsize, 1)))
    return da.from_array(np.asarray(data), chunks=(min(per, nt), ny, nx))


def background_model(
    cube: xr.DataArray,
    bti=None,
    bad_frame=None,
    *,
    source_mask=None,
    percentile: float = 75.0,
    factor: float = 3.0,
    catalogue=None,
    radius_arcsec: float = 20.0,
    exposed="nonzero",
    smooth_sigma: float = 0.5,
    inpaint: str = "biharmonic",
    wcs=None,
    images=None,
) -> xr.Dataset:
    """Fit the background + constant-source model to a counts cube.

    Parameters
    ----------
    cube : counts DataArray (time, y, x) with an ``exposure`` coordinate [s]
        along time (``xcube.bin_events``); lazy or in memory.
    bti, bad_frame : booleans per time bin (arrays or DataArrays; default: the
        cube's ``bti``/``bad_frame`` coordinates, else all False). BTI frames
        get their own template; bad frames are excluded (mu NaN).
    source_mask : (y, x) boolean mask to use instead of computing one with
        :func:`source_mask` (``percentile``, ``factor``, ``catalogue``,
        ``radius_arcsec``, ``exposed``, ``wcs`` are then unused).
    smooth_sigma : Gaussian smoothing of the templates [cells].
    inpaint : ``"biharmonic"`` or ``"normalized"`` (see :func:`inpaint`).
    wcs : ``xcube.wcs(events)``, for catalogue disks on a cube without
        ``ra``/``dec`` coordinates (see :func:`source_mask`).
    images : ``(image_gti, image_bti)``, the (y, x) counts summed over the GTI
        and the BTI frames (as defined here from ``bti``, ``bad_frame`` and the
        exposure), when the caller already has them: the pass over the cube
        is then skipped.

    Returns
    -------
    Dataset with (y, x) ``source_mask``, ``template_gti``, ``template_bti``
    (NaN when the subset is empty), ``source_rate`` [ct/s per cell],
    ``image_gti``, ``image_bti``; along time ``subset`` (0 GTI, 1 BTI, -1
    excluded) and the lazy ``light_curve`` (counts outside the mask); attrs
    ``counts_outside_gti``/``_bti``, ``source_subset``, ``threshold``, ...

    Computes eagerly: the two subset images, in one pass over the cube
    (unless ``images`` are given); the rest is 2-D work or lazy.
    """
    cube = _check_cube(cube)
    nt, ny, nx = cube.shape
    bti_f = _frame_flags(cube, bti, "bti")
    bad_f = _frame_flags(cube, bad_frame, "bad_frame")
    expo = np.asarray(cube["exposure"].values, dtype=np.float64)
    valid = (expo > 0) & ~bad_f & np.isfinite(expo)
    in_g = valid & ~bti_f
    in_b = valid & bti_f
    n = _cube_dask(cube)
    if images is None:
        zero = da.zeros((ny, nx), dtype=np.int64, chunks=(ny, nx))
        img_g = n[np.flatnonzero(in_g)].sum(axis=0, dtype=np.int64) if in_g.any() else zero
        img_b = n[np.flatnonzero(in_b)].sum(axis=0, dtype=np.int64) if in_b.any() else zero
        img_g, img_b = (np.asarray(a) for a in dask.compute(img_g, img_b))
    else:
        img_g, img_b = (np.asarray(a, dtype=np.int64).reshape(ny, nx) for a in images)

    yx = ("y", "x")
    coords2d = {k: v for k, v in cube.coords.items() if set(v.dims) <= set(yx)}
    if source_mask is None:
        base = img_g if in_g.any() else img_b
        if not in_g.any():
            log.info("no GTI frames: the source mask is computed from the BTI image")
        m = _source_mask(
            xr.DataArray(base, dims=yx, coords=coords2d), percentile=percentile, factor=factor, catalogue=catalogue,
            wcs=wcs, radius_arcsec=radius_arcsec, exposed=exposed,
        )
        mask, mask_attrs = np.asarray(m.values), dict(m.attrs)
    else:
        mask = np.asarray(source_mask.values if isinstance(source_mask, xr.DataArray) else source_mask, dtype=bool)
        if mask.shape != (ny, nx):
            raise ValueError(f"source_mask has shape {mask.shape}; the cube's images are {(ny, nx)}")
        mask_attrs = {"threshold": np.nan, "given": True}

    t_g, c_g = template(img_g, mask, smooth_sigma, inpaint) if in_g.any() else (np.full((ny, nx), np.nan), 0.0)
    t_b, c_b = template(img_b, mask, smooth_sigma, inpaint) if in_b.any() else (np.full((ny, nx), np.nan), 0.0)
    for name, sel, c in (("GTI", in_g, c_g), ("BTI", in_b, c_b)):
        if sel.any() and c <= 0:
            warnings.warn(f"background model: the {name} frames hold no counts outside the source mask; "
                          f"their expected counts are NaN", stacklevel=2)

    use_b = int(in_b.sum()) > int(in_g.sum())
    img_s, t_s, c_s, sel_s = (img_b, t_b, c_b, in_b) if use_b else (img_g, t_g, c_g, in_g)
    expo_s = float(expo[sel_s].sum())
    if expo_s > 0 and c_s > 0:
        resid = np.clip(img_s - np.nan_to_num(t_s) * c_s, 0.0, None)
        rate = np.where(mask, resid, 0.0) / expo_s
    else:
        rate = np.zeros((ny, nx))

    subset = np.where(in_g, 0, np.where(in_b, 1, -1)).astype(np.int8)
    outside = da.from_array((~mask).astype(np.float64), chunks=(ny, nx))
    lc = da.tensordot(n.astype(np.float64), outside, axes=((1, 2), (0, 1)))
    tcoords = {k: v for k, v in cube.coords.items() if v.dims == ("time",)}
    ds = xr.Dataset(
        {
            "source_mask": (yx, mask, {"long_name": "source mask M"}),
            "template_gti": (yx, t_g, {"long_name": "background template of the GTI frames", "units": "1"}),
            "template_bti": (yx, t_b, {"long_name": "background template of the BTI frames", "units": "1"}),
            "source_rate": (yx, rate, {"long_name": "constant-source rate per cell S0", "units": "count/s"}),
            "image_gti": (yx, img_g, {"units": "count"}),
            "image_bti": (yx, img_b, {"units": "count"}),
            "subset": (("time",), subset, {"long_name": "frame subset: 0 GTI, 1 BTI, -1 excluded"}),
            "light_curve": (("time",), lc, {"long_name": "counts outside the source mask L", "units": "count"}),
        },
        coords={**coords2d, **tcoords},
        attrs={
            "counts_outside_gti": c_g,
            "counts_outside_bti": c_b,
            "n_gti_frames": int(in_g.sum()),
            "n_bti_frames": int(in_b.sum()),
            "source_subset": "bti" if use_b else "gti",
            "source_exposure": expo_s,
            "threshold": float(mask_attrs.get("threshold", np.nan)),
            "percentile": float(percentile),
            "factor": float(factor),
            "smooth_sigma": float(smooth_sigma),
            "inpaint": inpaint,
            "exposed": exposed if isinstance(exposed, str) else "array",
            "xcube_version": __version__,
        },
    )
    return ds


@numba.njit(nogil=True, cache=True)
def _mu_kernel(flat, outside, valid, bti, expo, t_g, t_b, ok_g, ok_b, rate, out):  # pragma: no cover - compiled
    """``_mu_block`` for integer counts, frame by frame without temporaries
    (the same arithmetic: integer sums, then ``T * L + S0 * exposure``)."""
    nt, npix = flat.shape
    for t in range(nt):
        total = 0
        lc = 0
        for p in range(npix):
            v = flat[t, p]
            total += v
            if outside[p] != 0.0:
                lc += v
        if not (valid[t] and total > 0 and (ok_b if bti[t] else ok_g)):
            out[t, :] = np.nan
            continue
        tm = t_b if bti[t] else t_g
        lf = np.float64(lc)
        e = expo[t]
        for p in range(npix):
            out[t, p] = tm[p] * lf + rate[p] * e


def _mu_block(n_blk, valid_blk, bti_blk, expo_blk, *, outside, t_g, t_b, ok_g, ok_b, rate, out_dtype):
    nt = n_blk.shape[0]
    valid_blk, bti_blk, expo_blk = valid_blk.reshape(nt), bti_blk.reshape(nt), expo_blk.reshape(nt)
    flat = n_blk.reshape(nt, -1)
    if np.issubdtype(flat.dtype, np.integer) and np.dtype(out_dtype) in (np.float64, np.float32):
        out = np.empty(flat.shape, dtype=out_dtype)
        _mu_kernel(np.ascontiguousarray(flat), outside, valid_blk.astype(bool), bti_blk.astype(bool),
                   expo_blk.astype(np.float64), t_g.ravel(), t_b.ravel(), bool(ok_g), bool(ok_b), rate.ravel(), out)
        return out.reshape(n_blk.shape)
    total = flat.sum(axis=1)
    lc = flat.astype(np.float64) @ outside
    tmpl = np.where(bti_blk[:, None, None], t_b[None], t_g[None])
    mu = tmpl * lc[:, None, None] + rate[None] * expo_blk[:, None, None]
    ok = valid_blk & (total > 0) & np.where(bti_blk, ok_b, ok_g)
    mu[~ok] = np.nan
    return mu.astype(out_dtype, copy=False)


def expected_counts(
    cube: xr.DataArray,
    bti=None,
    bad_frame=None,
    source_mask=None,
    *,
    model: xr.Dataset | None = None,
    dtype="float64",
    **model_kw,
) -> xr.DataArray:
    """Expected counts ``mu[t, y, x] = T_{S(t)} L[t] + S0 exposure[t]``.

    ``cube``, ``bti``, ``bad_frame``, ``source_mask`` and ``model_kw`` as in
    :func:`background_model`; pass a ready ``model`` to reuse it (its frame
    subsets then replace ``bti``/``bad_frame``). mu is NaN in
    frames with no counts, zero exposure, flagged bad or without a template,
    and in pixels with no counts in the frame's subset (outside the field of
    view); never uninitialised.

    Lazy along time: a Dask array with the cube's time chunks, each block
    computed from the matching counts block alone (its light curve and frame
    totals are block-local), so memory is one chunk. Eager: the model (two
    images = one pass over the cube, when ``model`` is not given).
    """
    cube = _check_cube(cube)
    if model is None:
        model = background_model(cube, bti, bad_frame, source_mask=source_mask, **model_kw)
    elif model_kw or source_mask is not None:
        raise ValueError("pass either model= or the model parameters, not both")
    nt, ny, nx = cube.shape
    subset = model["subset"].values
    if subset.shape != (nt,):
        raise ValueError(f"model has {subset.shape[0]} frames, the cube {nt}")
    n = _cube_dask(cube)
    tch = n.chunks[0]
    valid = da.from_array(subset >= 0, chunks=(tch,))
    bti_d = da.from_array(subset == 1, chunks=(tch,))
    expo = da.from_array(np.asarray(cube["exposure"].values, dtype=np.float64), chunks=(tch,))
    mask = model["source_mask"].values
    dtype = np.dtype(dtype)
    t_g = model["template_gti"].values
    t_b = model["template_bti"].values
    mu = da.map_blocks(
        _mu_block, n.rechunk({1: ny, 2: nx}), valid[:, None, None], bti_d[:, None, None], expo[:, None, None],
        outside=(~mask).astype(np.float64).ravel(), t_g=t_g, t_b=t_b,
        ok_g=bool(np.isfinite(t_g).any()), ok_b=bool(np.isfinite(t_b).any()),
        rate=model["source_rate"].values, out_dtype=dtype, dtype=dtype, meta=np.empty((0, 0, 0), dtype=dtype),
    )
    return xr.DataArray(
        mu, dims=("time", "y", "x"), coords=cube.coords, name="expected",
        attrs={"units": "count", "long_name": "expected counts (background template x light curve + sources)",
               **{k: v for k, v in model.attrs.items()}},
    )
