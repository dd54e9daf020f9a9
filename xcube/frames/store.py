"""Reading and writing the pipeline's Dataset, catalogue and calibrated-frame files.

Every write is atomic (:mod:`xcube.io.atomic`). Datasets go to Zarr or to
NetCDF-3 (the scipy engine, so no extra library is needed); attrs that
NetCDF cannot hold faithfully (None, lists, dicts, booleans) are stored as
JSON text and restored by :func:`read_dataset`.

Zarr datasets carry xcube's completion record and manifest
(:func:`xcube.io.cache.commit_store`: size and CRC32C of every chunk file,
CRC32C of the attrs); :func:`read_dataset` checks all of it before reading,
so a missing, truncated or damaged chunk raises
:class:`~xcube.io.integrity.StoreCorruptError` naming the file instead of
being read as NaN. Datasets written before that are read unverified.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["dataset_suffix", "write_dataset", "read_dataset", "write_catalogue_fits", "write_calibrated",
           "trimmed_origin", "rewrite_keywords"]


def dataset_suffix(fmt: str) -> str:
    """File suffix of a Dataset format: ``.zarr`` or ``.nc``. Reads nothing.
    Eager."""
    return ".zarr" if fmt == "zarr" else ".nc"


def _netcdf_ready(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.copy()

    def clean(attrs):
        out = {}
        for k, v in attrs.items():
            if v is None or isinstance(v, (dict, bool, list, tuple)):
                out[k] = json.dumps(v, default=str)
            else:
                out[k] = v
        return out

    ds.attrs = clean(ds.attrs)
    for name in list(ds.variables):
        var = ds[name]
        ds[name].attrs = clean(var.attrs)
        if var.dtype == np.int64:
            ds[name] = var.astype(np.int32)
        elif var.dtype.kind == "U":
            ds[name] = var.astype(object)
    return ds


def write_dataset(ds: xr.Dataset, path, overwrite: bool = True) -> Path:
    """Write a (computed) Dataset atomically: Zarr for ``.zarr`` (with a
    checksummed manifest, see the module docstring), NetCDF-3 for ``.nc``.
    Eager: a Dask-backed Dataset is computed as it is written."""
    from ..io.atomic import atomic_dir, atomic_file
    from ..io.cache import commit_store

    path = Path(path)
    if path.suffix == ".zarr":
        zds = ds.copy()
        zds.attrs = {k: (json.dumps(v) if v is None or isinstance(v, dict) else v) for k, v in ds.attrs.items()}
        for name in list(zds.variables):
            if zds[name].dtype.kind == "U":  # variable-length strings: the Zarr v3 string type
                zds[name] = zds[name].astype(object)
        with atomic_dir(path, overwrite=overwrite) as tmp:
            zds.to_zarr(tmp, mode="w", zarr_format=3, consolidated=False)
            commit_store(tmp, kind="frames-dataset")
    else:
        with atomic_file(path, overwrite=overwrite) as tmp:
            _netcdf_ready(ds).to_netcdf(tmp, engine="scipy")
    return path


def _json_attr(value):
    if isinstance(value, str) and value[:1] in "[{n":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def read_dataset(path) -> xr.Dataset:
    """A Dataset written by :func:`write_dataset`, loaded into memory (attrs
    restored: JSON text back to Python values, arrays to lists), with the
    dims, coords and variables it was written with; strings as fixed-width
    numpy strings. A Zarr dataset is first checked against its manifest,
    with every chunk's checksum (``StoreCorruptError`` naming the damaged
    file; ``OSError`` for a store whose writer did not finish); one written
    before manifests existed (no record) is read unverified
    (:func:`xcube.io.cache.open_store` with ``foreign_ok``). Eager: loads the
    whole Dataset into numpy memory."""
    from ..io.cache import open_store

    path = Path(path)
    if path.suffix == ".zarr":
        ds = open_store(path, checksums=True, foreign_ok=True).load()
    else:
        with xr.open_dataset(path, engine="scipy") as f:
            ds = f.load()
    ds.attrs = {k: _json_attr(v) for k, v in ds.attrs.items()}
    for name in list(ds.variables):
        var = ds[name]
        if var.dtype.kind in "OT":  # variable-length strings back to fixed-width numpy strings
            fixed = np.array([str(v) for v in var.values.ravel()], dtype=str).reshape(var.shape)
            ds = ds.assign_coords({name: (var.dims, fixed, var.attrs)}) if name in ds.coords else \
                ds.assign({name: (var.dims, fixed, var.attrs)})
    return ds


def write_catalogue_fits(cat: xr.Dataset, path, overwrite: bool = True) -> Path:
    """The instrumental catalogue as FITS: a ``FRAMES`` table (one row per
    frame: FILE, TIME, OFFSET_X/Y, FWHM, ROTATION [deg] and vector columns MAG, MAG_ERR of
    shape (star, aperture)), a ``STARS`` table (INDEX, X, Y, ROLE) and an
    ``APERTURES`` table (RADIUS [px], SETTING). TIME [d], MAG and MAG_ERR
    [mag], positions [pixel]. Eager: reads the variables into memory
    (computing them if Dask-backed) and writes the file atomically; returns
    its path."""
    from astropy.io import fits

    from ..io.atomic import atomic_file

    ns, na = cat.sizes["star"], cat.sizes["aperture"]
    mag = cat["mag"].transpose("frame", "star", "aperture").values.astype(np.float32)
    err = cat["mag_err"].transpose("frame", "star", "aperture").values.astype(np.float32)
    cols = [fits.Column("FILE", "64A", array=cat["file"].values.astype(str)),
            fits.Column("TIME", "D", unit="d", array=cat["time"].values),
            fits.Column("OFFSET_X", "E", unit="pixel", array=cat["offset_x"].values),
            fits.Column("OFFSET_Y", "E", unit="pixel", array=cat["offset_y"].values),
            fits.Column("FWHM", "E", unit="pixel", array=cat["fwhm"].values),
            *([fits.Column("ROTATION", "E", unit="deg", array=cat["rotation"].values)] if "rotation" in cat else []),
            fits.Column("MAG", f"{ns * na}E", dim=f"({na},{ns})", unit="mag", array=mag),
            fits.Column("MAG_ERR", f"{ns * na}E", dim=f"({na},{ns})", unit="mag", array=err)]
    frames = fits.BinTableHDU.from_columns(cols, name="FRAMES")
    frames.header["TIMESYS"] = (str(cat["time"].attrs.get("timesys", "")), "time scale of TIME")
    for key in ("obj", "band", "target"):
        if key in cat.attrs:
            frames.header[key.upper()[:8]] = cat.attrs[key]
    stars = fits.BinTableHDU.from_columns([
        fits.Column("INDEX", "J", array=cat["star"].values),
        fits.Column("X", "D", unit="pixel", array=cat["star_x"].values),
        fits.Column("Y", "D", unit="pixel", array=cat["star_y"].values),
        fits.Column("ROLE", "12A", array=cat["role"].values.astype(str))], name="STARS")
    aps = fits.BinTableHDU.from_columns([
        fits.Column("RADIUS", "E", unit="pixel", array=cat["aperture"].values),
        fits.Column("SETTING", "E", array=cat["aperture_setting"].values)], name="APERTURES")
    with atomic_file(path, overwrite=overwrite) as tmp:
        fits.HDUList([fits.PrimaryHDU(), frames, stars, aps]).writeto(tmp)
    return Path(path)


_STRUCTURAL = ("SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND", "PCOUNT", "GCOUNT",
               "BZERO", "BSCALE", "BLANK", "BUNIT", "EXTNAME", "EXTVER", "CHECKSUM", "DATASUM")


def _raw_header(path, hdu: int):
    """The raw frame's header for its calibrated copy: the image HDU's
    keywords, and for an image in an extension also the primary header's
    keywords that the extension does not set (as the scan merges them);
    scaling and structure keywords removed."""
    from astropy.io import fits

    header = fits.getheader(path, hdu)
    for key in ("BZERO", "BSCALE", "BLANK", "BUNIT", "XTENSION", "PCOUNT", "GCOUNT", "EXTNAME"):
        header.remove(key, ignore_missing=True)
    if hdu:
        for card in fits.getheader(path, 0).cards:
            if card.keyword in _STRUCTURAL or card.keyword in header:
                continue
            if card.keyword in ("COMMENT", "HISTORY", ""):
                continue
            header.append(card)
    return header


_REFERENCE_PIXEL = re.compile(r"^(CRPIX[12][A-Z]?|LTV[12])$")


def trimmed_origin(header, border: int) -> None:
    """Move the pixel reference of ``header`` onto a frame trimmed by
    ``border`` pixels on each side, in place: ``CRPIX1``/``CRPIX2`` (and
    their alternate-WCS forms ``CRPIX1A``...) and IRAF's ``LTV1``/``LTV2``
    (added when absent, so physical pixels still name the raw ones) less
    ``border``, so that every trimmed pixel keeps its sky position."""
    if border <= 0:
        return
    for key in [k for k in header if _REFERENCE_PIXEL.match(k)]:
        header[key] = float(header[key]) - border
    for key in ("LTV1", "LTV2"):
        if key not in header:
            header[key] = (-float(border), "physical to image pixel offset (trimmed)")


def write_calibrated(block, raw_paths, raw_hdus, out_paths, keywords, write):
    """Write the calibrated frames of one chunk (a Dask task): each frame's
    raw header plus ``keywords`` (one dict per frame) into a float32 FITS
    file, atomically; frames with ``write`` False are left alone. Returns
    ``{"written": (k,) int8}``. Eager: ``block`` is a numpy ``(k, ny, nx)``
    chunk; writes the files here."""
    from astropy.io import fits

    from ..io.atomic import atomic_file

    done = np.zeros(len(block), np.int8)
    for i in range(len(block)):
        if not write[i]:
            continue
        header = _raw_header(raw_paths[i], int(raw_hdus[i]))
        trimmed_origin(header, int(keywords[i].get("BORDER", (0, ""))[0]))
        hdu = fits.PrimaryHDU(block[i].astype(np.float32), header=header)
        for key, (value, comment) in keywords[i].items():
            hdu.header[key] = (value, comment)
        with atomic_file(out_paths[i], overwrite=True) as tmp:
            hdu.writeto(tmp)
        done[i] = 1
    return {"written": done}


def rewrite_keywords(path, keywords: dict, remove=()) -> Path:
    """Set ``keywords`` (``{key: (value, comment)}``) in the primary header
    of the FITS file ``path`` and delete the keys in ``remove``, atomically:
    the file is written anew through a temporary, its pixels copied
    unchanged. Eager: reads and writes the whole file; returns its path."""
    from astropy.io import fits

    from ..io.atomic import atomic_file

    with fits.open(path, memmap=False) as hdul:
        header = hdul[0].header
        for key, (value, comment) in keywords.items():
            header[key] = (value, comment)
        for key in remove:
            header.remove(key, ignore_missing=True)
        with atomic_file(path, overwrite=True) as tmp:
            hdul.writeto(tmp)
    return Path(path)
