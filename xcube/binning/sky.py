"""Sky coordinates of a binned (y, x) grid.

Event files give the WCS of the sky columns (``CTYPE1/CRVAL1/CRPIX1/CDELT1``
for ``x``, ``...2`` for ``y``, CRPIX in column units, FITS 1-based). A grid of
regular bins of ``w`` pixels starting at ``lo`` is itself an image whose FITS
pixel ``j`` (1-based) is centred on column value ``lo + (j - 0.5) * w``, so its
WCS has ``CDELT' = CDELT * w`` and ``CRPIX' = (CRPIX - lo) / w + 0.5``. A
rotated column WCS (``PCi_j`` attrs, see :mod:`xcube.skycoords`) keeps its
matrix for square cells; with cells ``w_x`` by ``w_y`` it becomes
``PC'_ij = PC_ij * w_j / w_i``.
"""
from __future__ import annotations

import collections
import functools
import threading

import numpy as np

__all__ = ["cell_wcs_keywords", "cell_radec", "cube_wcs", "grid_spacing", "grid_wcs_keywords", "radec_is_lazy",
           "radec_cache_bytes", "clear_radec_cache", "events_extent"]

_KEYS = ("CTYPE", "CRVAL", "CRPIX", "CDELT")
_PC = tuple(f"PC{i}_{j}" for i in (1, 2) for j in (1, 2))


def events_extent(events):
    """``((x_min, x_max), (y_min, y_max))`` [sky pixels] of the finite values
    of the events' ``x`` and ``y`` columns, None when there are none. Eager:
    one pass over the two columns, block by block (the memory of one block,
    also when ``events`` is a selection)."""
    import dask

    from ..scheduler import compute

    if not events.sizes.get("event"):
        return None
    x, y = events["x"].data, events["y"].data
    if hasattr(x, "to_delayed") and hasattr(y, "to_delayed") and x.chunks == y.chunks:
        parts = compute(*[dask.delayed(_block_extent)(a, b)
                          for a, b in zip(x.to_delayed().ravel(), y.to_delayed().ravel())])
    else:
        parts = [_block_extent(np.asarray(x), np.asarray(y))]
    lo_x, hi_x, lo_y, hi_y = (f(p[i] for p in parts) for f, i in ((min, 0), (max, 1), (min, 2), (max, 3)))
    if not np.all(np.isfinite([lo_x, hi_x, lo_y, hi_y])):
        return None
    return (float(lo_x), float(hi_x)), (float(lo_y), float(hi_y))


def _block_extent(x, y) -> tuple:
    """(x min, x max, y min, y max) of one block's finite values (infinities when none)."""
    out = []
    for v in (np.asarray(x), np.asarray(y)):
        if v.dtype.kind == "f":
            v = v[np.isfinite(v)]
        out += [float(v.min()), float(v.max())] if v.size else [np.inf, -np.inf]
    return tuple(out)


def _is_wcs_key(k: str) -> bool:
    """True for the cell-WCS keywords a grid carries (CTYPEn ... CUNITn, PCi_j, WCSAXES, RADESYS, EQUINOX)."""
    return k[:-1] in _KEYS + ("CUNIT",) or k in _PC or k in ("WCSAXES", "RADESYS", "EQUINOX")


def cell_wcs_keywords(attrs, y_axis, x_axis) -> dict:
    """WCS keywords (axis 1 = x cells, axis 2 = y cells) for a grid of regular
    y/x axes, from the event WCS keywords in ``attrs`` (with ``PCi_j`` when
    the event WCS is rotated); ``{}`` when the event WCS is missing or an
    axis has explicit (irregular) edges. Eager, tiny."""
    if not (x_axis.is_regular and y_axis.is_regular):
        return {}
    if any(f"{k}{i}" not in attrs for k in _KEYS for i in (1, 2)):
        return {}
    out = {"WCSAXES": 2}
    for key in ("RADESYS", "EQUINOX"):  # the frame of RA/Dec (FK5 J2000 for XMM; astropy's default is ICRS)
        if attrs.get(key) not in (None, ""):
            out[key] = attrs[key] if key == "RADESYS" else float(attrs[key])
    for i, ax in ((1, x_axis), (2, y_axis)):
        lo = float(ax.edges[0])
        out[f"CTYPE{i}"] = str(attrs[f"CTYPE{i}"])
        out[f"CRVAL{i}"] = float(attrs[f"CRVAL{i}"])
        out[f"CRPIX{i}"] = (float(attrs[f"CRPIX{i}"]) - lo) / ax.width + 0.5
        out[f"CDELT{i}"] = float(attrs[f"CDELT{i}"]) * ax.width
        out[f"CUNIT{i}"] = str(attrs.get(f"CUNIT{i}", "deg"))
    if any(k in attrs for k in _PC):  # a rotated column WCS (square cells: the same matrix)
        w = {1: x_axis.width, 2: y_axis.width}
        for i in (1, 2):
            for j in (1, 2):
                out[f"PC{i}_{j}"] = float(attrs.get(f"PC{i}_{j}", float(i == j))) * w[j] / w[i]
    # the reference point in column units: a cut-out (isel/sel) keeps these
    # attrs unchanged, and grid_wcs_keywords re-anchors CRPIX on its own cells
    out["x_ref_pixel"], out["y_ref_pixel"] = float(attrs["CRPIX1"]), float(attrs["CRPIX2"])
    return out


def cell_width(obj, dim: str) -> float | None:
    """Width [column units] of ``obj``'s cells along ``dim`` (from the
    ``{dim}_lo``/``{dim}_hi`` edges, else the centres' spacing), or None."""
    v = np.asarray(obj[dim].values, np.float64)
    if f"{dim}_lo" in obj.coords and f"{dim}_hi" in obj.coords and v.size:
        return float(obj[f"{dim}_hi"].values[0] - obj[f"{dim}_lo"].values[0])
    return float(v[1] - v[0]) if v.size > 1 else None


def grid_spacing(obj, dim: str) -> tuple[float, float] | None:
    """``(x0, step)`` [column units] of ``obj``'s 1-D cell centres along
    ``dim``: the first centre and the signed spacing of the centres (negative
    on a flipped axis, ``k`` cells after ``isel(x=slice(a, b, k))``, the
    coarsened width after ``coarsen``, whose centres are the means of the
    cells'); one cell: its edges' width (:func:`cell_width`). None without a
    1-D coordinate, or for one cell without edges. ``ValueError`` when the
    centres are not evenly spaced (a list index such as ``isel(x=[0, 1, 5])``):
    no WCS describes them. Eager, reads the centres only."""
    if dim not in getattr(obj, "coords", {}) or obj[dim].ndim != 1 or not obj[dim].size:
        return None
    v = np.asarray(obj[dim].values, np.float64)
    if v.size == 1:
        w = cell_width(obj, dim)
        return (float(v[0]), w) if w else None
    step = (v[-1] - v[0]) / (v.size - 1)
    d = np.diff(v)
    tol = 1e-6 * abs(step) + 64 * np.finfo(np.float64).eps * float(np.max(np.abs(v)))  # centres of rule_steps edges
    if not (np.isfinite(step) and step != 0 and np.all(np.abs(d - step) <= tol)):
        src = getattr(obj, "attrs", {}).get("source")
        raise ValueError(
            f"{'the grid of ' + src if src else 'the grid'}: its {dim} cell centres are not evenly spaced (steps from "
            f"{d.min():.6g} to {d.max():.6g} column units; a list index such as isel({dim}=[0, 1, 5])), so no WCS "
            f"describes them; a WCS needs regular y and x axes: select cells with a slice, "
            f"isel({dim}=slice(start, stop, step))")
    return float(v[0]), float(step)


def grid_wcs_keywords(obj) -> dict:
    """The cell WCS keywords of a grid (image, cube, search-result array with
    1-D ``x``/``y`` cell-centre coordinates) as it is now: the attrs'
    keywords (:func:`cell_wcs_keywords`, for the binned cells of width
    ``w``) made exact for the centres present (:func:`grid_spacing`): pixel
    1 on the first centre ``x0``, pixels ``step`` apart, so ``CRPIXn = (ref
    - x0) / step + 1``, ``CDELTn`` times ``step / w`` and a rotation
    ``PCi_j`` times ``s_j / s_i`` (``s = step / w`` per axis). A cut-out
    (``img.isel(x=slice(100, 200))``), a stepped or flipped one
    (``x=slice(None, None, -2)``), ``coarsen`` (its centres are the means of
    the cells') or an evenly spaced list index keep their true sky WCS,
    although xarray copies the attrs unchanged. ``w`` comes from the
    ``{dim}_lo``/``{dim}_hi`` edges (the binned cells', also after
    ``coarsen``, which averages them), else it is ``|step|``. ``{}`` without
    cell WCS keywords; ``ValueError`` when the centres are not evenly
    spaced. Without the ``x_ref_pixel``/``y_ref_pixel`` anchors the attrs
    are taken as they are. Eager, tiny."""
    a = getattr(obj, "attrs", {})
    kw = {k: v for k, v in a.items() if _is_wcs_key(k)}
    if any(f"{k}{i}" not in kw for k in _KEYS for i in (1, 2)):
        return {}
    scale = {}
    for i, dim in ((1, "x"), (2, "y")):
        ref = a.get(f"{dim}_ref_pixel")
        if ref is None:
            continue
        spacing = grid_spacing(obj, dim)
        if spacing is None:
            continue
        x0, step = spacing
        w = cell_width(obj, dim) if f"{dim}_lo" in obj.coords and f"{dim}_hi" in obj.coords else None
        w = w if w and w > 0 else abs(step)
        scale[i] = step / w
        kw[f"CRPIX{i}"] = (float(ref) - x0) / step + 1.0
        kw[f"CDELT{i}"] = float(kw[f"CDELT{i}"]) * scale[i]
    if scale and any(k in kw for k in _PC):  # PC'_ij = PC_ij s_j / s_i
        for i in (1, 2):
            for j in (1, 2):
                kw[f"PC{i}_{j}"] = float(a.get(f"PC{i}_{j}", float(i == j))) * scale.get(j, 1.0) / scale.get(i, 1.0)
    return kw


def _wcs(kw: dict):
    hdr = {k: v for k, v in kw.items() if _is_wcs_key(k)}
    return _cached_wcs(tuple(sorted(hdr.items())))


@functools.lru_cache(maxsize=64)
def _cached_wcs(items: tuple):
    from astropy.wcs import WCS

    return WCS(dict(items, NAXIS=2))


#: grids of at most this many cells get numpy ra/dec (8 MiB for both), computed at once and cached;
#: larger grids get lazy Dask ra/dec computed in row bands when they are used
RADEC_EAGER_CELLS = 1 << 19
#: the row bands of lazy ra/dec hold about this many cells (16 MiB of ra and dec)
RADEC_BAND_CELLS = 1 << 20
#: the cache of eager ra/dec holds at most this many bytes (the least recently used grids go first)
RADEC_CACHE_BYTES = 64 << 20
#: peak bytes per cell while eager ra/dec are computed: astropy's pixel and world arrays, the cached
#: result and the copies given to the cube (measured 68 B)
RADEC_PEAK_BYTES_PER_CELL = 96
#: peak bytes per cell while lazy ra/dec are computed: the (2, rows, nx) bands and the concatenated
#: ra and dec (measured 46 B on a 2000 x 2000 grid of 4 bands)
RADEC_LAZY_PEAK_BYTES_PER_CELL = 48

_cache: collections.OrderedDict = collections.OrderedDict()
_cache_lock = threading.Lock()


def _radec_rows(wcs, y0: int, y1: int, nx: int):
    """RA, Dec [deg] of the cell centres of rows ``y0:y1`` (0-based pixels), two ``(y1 - y0, nx)`` arrays."""
    jx = np.arange(nx, dtype=np.float64)[None, :]
    jy = np.arange(y0, y1, dtype=np.float64)[:, None]
    return wcs.wcs_pix2world(jx, jy, 0)  # broadcast: no meshgrid of the full band


def _radec_block(items: tuple, nx: int, block_info=None):
    y0, y1 = block_info[None]["array-location"][1]
    from astropy.wcs import WCS

    w = WCS(dict(items, NAXIS=2))  # one WCS per band: astropy WCS objects are not shared across threads
    ra, dec = _radec_rows(w, int(y0), int(y1), nx)
    return np.stack([ra, dec])


def _radec(items: tuple, ny: int, nx: int):
    """Eager, cached ra/dec (read-only) of a small grid; the cache is bounded by ``RADEC_CACHE_BYTES``."""
    key = (items, ny, nx)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    ra, dec = _radec_rows(_cached_wcs(items), 0, ny, nx)
    ra.flags.writeable = dec.flags.writeable = False
    size = ra.nbytes + dec.nbytes
    if size <= RADEC_CACHE_BYTES:
        with _cache_lock:
            _cache[key] = (ra, dec)
            total = sum(a.nbytes + b.nbytes for a, b in _cache.values())
            while total > RADEC_CACHE_BYTES and len(_cache) > 1:
                _, (a, b) = _cache.popitem(last=False)
                total -= a.nbytes + b.nbytes
    return ra, dec


def radec_cache_bytes() -> int:
    """Bytes held by the cache of eager ra/dec grids (at most ``RADEC_CACHE_BYTES``)."""
    with _cache_lock:
        return sum(a.nbytes + b.nbytes for a, b in _cache.values())


def clear_radec_cache() -> None:
    """Drop the cached ra/dec grids. Eager."""
    with _cache_lock:
        _cache.clear()


def radec_is_lazy(ny: int, nx: int) -> bool:
    """True when :func:`cell_radec` gives lazy (Dask) ra/dec for a ``ny`` x ``nx`` grid."""
    return int(ny) * int(nx) > RADEC_EAGER_CELLS


def cell_radec(kw: dict, ny: int, nx: int, *, lazy: bool | None = None):
    """RA and Dec [deg] of every cell centre, two float64 arrays ``(ny, nx)``
    (16 bytes per cell when computed).

    Grids of at most ``RADEC_EAGER_CELLS`` cells (``lazy=None``, the
    default) get numpy arrays, computed at once and cached (the cache holds
    at most ``RADEC_CACHE_BYTES``); larger grids get Dask arrays computed in
    row bands of about ``RADEC_BAND_CELLS`` cells when they are used, so
    making a big image costs nothing for its coordinates and computing them
    holds only the result and a band or two. ``lazy=True``/``False`` forces
    either form. The Dask arrays have deterministic names, so two cubes on
    the same grid share them (xarray then compares them without computing).
    """
    hdr = {k: v for k, v in kw.items() if _is_wcs_key(k)}
    items = tuple(sorted(hdr.items()))
    ny, nx = int(ny), int(nx)
    if lazy is None:
        lazy = radec_is_lazy(ny, nx)
    if not lazy:
        ra, dec = _radec(items, ny, nx)
        return ra.copy(), dec.copy()
    import dask.array as da
    from dask.base import tokenize

    rows = max(1, min(ny, RADEC_BAND_CELLS // max(nx, 1)))
    bands = tuple(min(rows, ny - y) for y in range(0, ny, rows)) or (0,)
    name = "xcube-radec-" + tokenize(items, ny, nx, rows)
    both = da.map_blocks(functools.partial(_radec_block, items, nx), dtype=np.float64,
                         chunks=((2,), bands, (nx,)), name=name, meta=np.empty((0, 0, 0), np.float64))
    return both[0], both[1]


def cube_wcs(cube):
    """``astropy.wcs.WCS`` of the (y, x) cells of a cube made by ``bin_events``
    (or an image, or a cut-out of either, also stepped, flipped or coarsened:
    :func:`grid_wcs_keywords`; pixel (0, 0) is its first cell, ``x=0, y=0``).
    ``ValueError`` when the grid has no cell WCS or its centres are not
    evenly spaced (a list index). Eager, tiny: reads the attrs and the 1-D
    ``x``/``y`` coordinates only, not the cube's values."""
    kw = grid_wcs_keywords(cube)
    if not kw:
        raise ValueError("cube has no cell WCS keywords (needs regular y and x axes and an event WCS)")
    return _wcs(kw)
