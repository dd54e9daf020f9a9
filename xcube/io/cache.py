"""Zarr v3 event stores and the event cache.

A store written by :func:`to_zarr` holds the event columns chunked along
``event`` (blosc-lz4, byte-shuffled), the GTIs and the attrs. Writes are
atomic: the store is written under a temporary name, a completion record
(the ``xcube_complete`` root attribute) is written last, then the directory
is renamed into place. A store without the record is never opened as valid.

The completion record holds a manifest (:mod:`xcube.io.integrity`): per
column its chunk count and, per chunk file, its size and CRC32C, and the
CRC32C of the root attributes (sky reference, MJDREF, exposure...: everything
but the record itself). Opening a store checks it against the manifest (root
attributes and column metadata unchanged, every chunk file present with its
size: ``stat`` calls and the small metadata files only); reading a chunk
checks its CRC32C before decoding it. :func:`open_store` opens any store
:func:`to_zarr` wrote (a search result's cube) through xarray after
checksumming all of it. A damaged cache entry is rebuilt from
its source file with a warning naming the store; a damaged store found while
reading raises :class:`~xcube.io.integrity.StoreCorruptError` naming the
chunk file (a cache entry is then marked stale, so the next open rebuilds it).
"""
from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import mmap
import os
from pathlib import Path
from typing import NamedTuple

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from .._version import __version__
from ..scheduler import compute
from .atomic import atomic_dir, explain_write_error, refuse_input, remove_stale, write_json
from .chunking import EVENT_CHUNK
from .integrity import (
    FileChangedError,
    StoreCorruptError,
    attrs_crc,
    chunk_crc,
    fingerprint,
    store_manifest,
    verify_store,
)
from .paths import cache_dir, expand_path

__all__ = ["to_zarr", "open_zarr_events", "open_store", "commit_store", "cache_dir", "cache_key", "is_complete",
           "mark_stale", "check_store", "StoreCorruptError", "atomic_dir", "remove_stale", "COMPLETE", "entry_name",
           "root_attrs"]

COMPLETE = "xcube_complete"  # root attribute written last
STALE = "xcube_stale"  # root attribute of a store found damaged (:func:`mark_stale`): why
CACHE_FORMAT = 5  # bump when the layout or attrs of cached EventLists change (4: sky PCi_j, GTI-named columns;
#                  5: events with NaN or infinite float X/Y dropped, scaled 64-bit columns read exactly)
BLOSC_BLOCKSIZE = 1 << 20
DEFAULT_CHUNK = EVENT_CHUNK  # events per chunk (xcube.io.chunking, as the FITS reader's)


def cache_key(path, *extra) -> str:
    """Hash of a file's identity (resolved path, size, mtime, ctime - which
    any write changes, also one that sets the mtime back - and a content
    fingerprint of its first and last 64 KiB, see
    :func:`~xcube.io.integrity.fingerprint`), ``extra``, the xcube version and
    the cache format. Reads at most 128 KiB of the file. Eager: one ``stat``
    and that read."""
    p = Path(path).resolve()
    st = p.stat()
    ident = json.dumps([str(p), st.st_size, st.st_mtime_ns, st.st_ctime_ns, fingerprint(p, st.st_size), __version__,
                        CACHE_FORMAT, *map(str, extra)])
    return hashlib.sha256(ident.encode()).hexdigest()[:24]


#: longest cache entry name [bytes]: room left for the hidden temporaries' tags within 255 bytes
_ENTRY_NAME_MAX = 200


def entry_name(name: str, key: str, suffix: str) -> str:
    """File name of a cache entry for a source file called ``name``:
    ``<name>-<key><suffix>``, with ``name`` cut (at a character boundary) and
    a digest of the whole name added when that would be longer than
    :data:`_ENTRY_NAME_MAX` bytes (file names may have 255 bytes; long event
    file names are valid). Reads nothing. Eager (string work only)."""
    full = f"{name}-{key}{suffix}"
    if len(full.encode()) <= _ENTRY_NAME_MAX:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    room = _ENTRY_NAME_MAX - len(f"-{digest}-{key}{suffix}".encode())
    cut = name.encode()[:max(room, 0)].decode(errors="ignore")
    return f"{cut}-{digest}-{key}{suffix}"


def root_attrs(store) -> dict | None:
    """The root attributes of a store (its ``zarr.json``), or None (absent,
    unreadable). Eager: reads the store's ``zarr.json`` only, no array."""
    meta = Path(store) / "zarr.json"
    try:
        attrs = json.loads(meta.read_text()).get("attributes", {})
    except (OSError, ValueError, AttributeError):
        return None
    return attrs if isinstance(attrs, dict) else None


def _record(store) -> dict | None:
    """The completion record of a store, or None (absent, unreadable)."""
    rec = (root_attrs(store) or {}).get(COMPLETE)
    return rec if isinstance(rec, dict) else None


def commit_store(tmp, **fields) -> dict:
    """Write the completion record of the store being written at ``tmp``
    (the last step before it is renamed into place): ``fields``, the xcube
    version, the manifest of every array (``columns``, see
    :func:`~xcube.io.integrity.store_manifest`) and the CRC32C of the root
    attributes (``attrs_crc``). Eager: reads every chunk file once. Returns
    the record."""
    attrs = root_attrs(tmp) or {}  # as Zarr wrote them (zarr.json): the form check_store reads back
    attrs.pop(COMPLETE, None)
    record = {"xcube_version": __version__, **fields, "columns": store_manifest(tmp), "attrs_crc": attrs_crc(attrs)}
    import zarr  # imported when used: a search of a FITS file never needs it (~0.1 s)

    zarr.open_group(str(tmp), mode="r+", zarr_format=3).attrs[COMPLETE] = record
    return record


def is_complete(store) -> bool:
    """True when ``store`` is a finished xcube store (its completion record
    exists). Eager: reads the store's ``zarr.json`` only."""
    return _record(store) is not None


def mark_stale(store, reason: str = "") -> bool:
    """Remove a store's completion record (atomically), so that it is never
    opened again and a cache entry is rebuilt at its next open. Returns
    whether that worked (False: a read-only cache, an unreadable record;
    errors are not raised). Eager: rewrites the store's ``zarr.json``."""
    meta = Path(store) / "zarr.json"
    try:
        doc = json.loads(meta.read_text())
        doc.get("attributes", {}).pop(COMPLETE, None)
        if reason:
            doc.setdefault("attributes", {})[STALE] = reason
        write_json(meta, doc, indent=1)
    except (OSError, ValueError, AttributeError):
        return False
    return True


def _jsonable(v):
    if isinstance(v, (np.generic,)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def to_zarr(ds: xr.Dataset, store, overwrite: bool = False, clevel: int = 5, cname: str = "lz4") -> Path:
    """Write an EventList (or any xcube Dataset) to a Zarr v3 store, atomically.

    Columns keep their Dask chunks along ``event`` (numpy columns get chunks
    of ``DEFAULT_CHUNK`` events); compression is blosc ``cname`` at level
    ``clevel`` with byte shuffle in 1 MiB blocks. The default, lz4 level 5
    (Zarr's own default codec), was measured on chunks of 2^20 simulated pn
    events (9 columns): it decodes in 3.0 ms and encodes in 8 ms, against
    10 ms and 59 ms for zstd level 3, for a compression ratio of 2.2
    instead of 2.7 (``cname="zstd", clevel=3`` gives the smaller store);
    reading the event columns is a share of every search. The store is
    written under a temporary name, the completion record last, then
    renamed into place, so an interrupted write never leaves a store that
    opens. Computes the whole dataset, streamed chunk by chunk. Returns the
    store path (``~`` expanded).

    Raises ``FileExistsError`` naming the store when it exists and
    ``overwrite`` is False, also when another writer put it there while this
    one was writing - unless that store holds exactly the same columns and
    attrs (two writers of one event-cache entry), which is then kept.
    Eager: a Dask-backed Dataset is computed here, chunk by chunk, as it is
    written.
    """
    store = expand_path(store)
    refuse_input(store, ds)  # a store (or file) the events are read from
    from zarr.codecs import BloscCodec

    codec = BloscCodec(cname=cname, clevel=clevel, shuffle="shuffle", blocksize=BLOSC_BLOCKSIZE)
    ds = ds.copy().drop_encoding()  # encodings of a source store would fight the new chunks/codecs
    ev_chunks = ds.chunks.get("event") if "event" in ds.dims else None
    if (
        ev_chunks
        and len(set(ev_chunks[:-1])) > 1
        or (ev_chunks and len(ev_chunks) > 1 and ev_chunks[-1] > ev_chunks[0])
    ):
        # a selection leaves uneven chunks; Zarr needs uniform ones
        ds = ds.chunk({"event": max(ev_chunks)})
    ds.attrs = {k: _jsonable(v) for k, v in ds.attrs.items()}
    encoding = {name: {"compressors": [codec]} for name in ds.data_vars}
    for name, var in ds.data_vars.items():
        if var.chunks is None and "event" in var.dims:
            encoding[name]["chunks"] = (min(var.shape[0], DEFAULT_CHUNK) or 1,)
    record = None
    remove_stale(store)  # temporaries of writers killed an hour ago or more (xcube convert, cache entries)
    try:
        with atomic_dir(store, overwrite=overwrite) as tmp:
            try:
                writes = ds.to_zarr(str(tmp), mode="w", encoding=encoding, zarr_format=3, consolidated=False,
                                    compute=False)
                compute(writes)
                record = commit_store(tmp, kind=ds.attrs.get("kind", "events"), n_event=int(ds.sizes.get("event", 0)))
            except (StoreCorruptError, FileChangedError):  # damage of the input, as reading it names it
                raise
            except OSError as exc:  # a full disk says which store could not be written
                raise explain_write_error(exc, store) from exc
    except FileExistsError:
        theirs = _record(store) if record is not None else None
        if theirs is not None and all(theirs.get(k) == record.get(k) for k in ("columns", "attrs_crc", "n_event")):
            return store  # another writer of the same content (one event-cache entry) finished first
        raise
    return store


def _ordered(names):
    first = ["time", "x", "y", "pi", "energy"]
    names = list(names)
    return [n for n in first if n in names] + sorted(n for n in names if n not in first)


@functools.cache
def _blosc():
    """numcodecs' Blosc, which decodes any blosc frame (the frame header names codec, shuffle and type size)."""
    from numcodecs import Blosc

    return Blosc()


def _fill_value(value, dtype: np.dtype):
    """A Zarr v3 JSON fill value as a scalar of ``dtype``, or None if unusual."""
    if isinstance(value, str):
        value = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}.get(value)
        if value is None:
            return None
    try:
        return np.array(value, dtype=dtype)[()]
    except (TypeError, ValueError):
        return None


def _damaged(store: str, msg: str, cached: bool) -> StoreCorruptError:
    if cached and mark_stale(store, msg):
        msg += "; this event-cache entry is marked stale and is rebuilt at the next open_events of its file"
    elif cached:
        msg += (f"; the event cache {Path(store).parent} cannot be written (read-only?), so this entry stays as it "
                "is: delete it, or open the file with cache= (or XCUBE_CACHE_DIR) a writable directory")
    else:
        msg += "; write the store again (xcube.to_zarr) from its source"
    return StoreCorruptError(f"{store}: {msg}")


def _read_chunk(path: str, dtype: np.dtype, chunk_len: int, n: int, fill, expect, store: str,
                cached: bool) -> np.ndarray:
    """Decode one blosc chunk file of a 1-D Zarr v3 array after checking it
    against its manifest entry ``expect`` = ``[size, crc32c]`` (None: a chunk
    Zarr did not write because it holds only the fill value; None is also
    how stores without a manifest are read, absent files as fill)."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:  # Zarr does not write chunks that hold only the fill value
        if expect is not None:
            raise _damaged(store, f"chunk file {path} is missing", cached) from None
        return np.full(n, fill, dtype=dtype)
    out = np.empty(chunk_len, dtype=dtype)
    with fh:
        if os.fstat(fh.fileno()).st_size == 0:
            raise _damaged(store, f"chunk file {path} is empty", cached)
        raw = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)  # no copy of the compressed bytes
    with raw:
        if expect is not None and (len(raw) != expect[0] or chunk_crc(raw) != expect[1]):
            raise _damaged(store, f"chunk file {path} fails its size/CRC32C check (damaged)", cached)
        try:
            _blosc().decode(raw, out=out)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise _damaged(store, f"chunk file {path} does not decode ({exc})", cached) from None
    return out[:n]


def _chunk_reads(store: Path, name: str, var: xr.Variable, manifest: dict | None, cached: bool, meta=None):
    """``(dtype, reads)``: the :func:`_read_chunk` arguments of each chunk of
    ``store/name``, or None when the array is not the simple layout
    :func:`to_zarr` writes (1-D, regular chunks, default keys, codecs
    ``bytes`` (little endian) + ``blosc``, no value decoding by xarray).
    ``meta``: the array's ``zarr.json`` when read already."""
    try:
        meta = meta if meta is not None else json.loads((store / name / "zarr.json").read_text())
        codecs = meta.get("codecs", [])
        dtype = np.dtype(meta["data_type"])
        ok = (
            meta.get("zarr_format") == 3
            and len(meta["shape"]) == 1
            and meta["chunk_grid"]["name"] == "regular"
            and meta["chunk_key_encoding"] == {"name": "default", "configuration": {"separator": "/"}}
            and [c["name"] for c in codecs] == ["bytes", "blosc"]
            and codecs[0].get("configuration", {}).get("endian", "little") == "little"
            and not meta.get("storage_transformers")
            and dtype.kind in "biuf"
            and var.dtype == dtype
            and not {"scale_factor", "add_offset"} & (set(var.encoding) | set(var.attrs))
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    fv = var.encoding.get("_FillValue")
    if not ok or (fv is not None and not (isinstance(fv, float) and np.isnan(fv))):
        return None  # xarray would mask a non-NaN fill value
    fill = _fill_value(meta.get("fill_value", 0), dtype)
    n = int(meta["shape"][0])
    if fill is None or n == 0:
        return None
    cs = int(meta["chunk_grid"]["configuration"]["chunk_shape"][0])
    chunks = manifest.get(name, {}).get("chunks", {}) if manifest else {}
    return dtype, [(str(store / name / "c" / str(i)), dtype, cs, min(cs, n - a), fill, chunks.get(str(i)), str(store),
                    cached) for i, a in enumerate(range(0, n, cs))]


class _Described(NamedTuple):
    """What :func:`_chunk_reads` and :func:`open_zarr_events` use of a column (an ``xr.Variable``'s names)."""

    dims: tuple
    dtype: np.dtype
    attrs: dict
    encoding: dict
    ndim: int


# attributes by which xarray would decode a column (mask, scale, times, coordinates): such a store opens via xarray
_DECODED_BY_XARRAY = {"scale_factor", "add_offset", "missing_value", "valid_range", "valid_min", "valid_max",
                      "_Unsigned", "dtype", "calendar", "coordinates", "flag_values", "flag_meanings"}
_TIMEDELTA_UNITS = {"days", "hours", "minutes", "seconds", "milliseconds", "microseconds", "nanoseconds",
                    "day", "hour", "minute", "second", "d", "h", "min", "ms", "us", "ns"}


def _described(store: Path, manifest: dict | None, cached: bool) -> dict | None:
    """``{name: (column, chunk reads)}`` of a store whose arrays all have the
    simple layout :func:`to_zarr` writes (see :func:`_chunk_reads`), read
    from their ``zarr.json`` files alone, without Zarr or xarray's decoding
    (which would change nothing in such a store, and importing Zarr costs a
    fresh process ~0.1 s); None for any other store (xarray opens it)."""
    out = {}
    try:
        entries = sorted(p for p in store.iterdir() if p.is_dir())
        for entry in entries:
            meta = json.loads((entry / "zarr.json").read_text())
            attrs = dict(meta.get("attributes") or {})
            dims = tuple(meta.get("dimension_names") or ())
            if (meta.get("node_type") != "array" or len(meta["shape"]) != 1 or len(dims) != 1
                    or entry.name in dims or _DECODED_BY_XARRAY & set(attrs)):
                return None
            units = attrs.get("units")
            if isinstance(units, str) and (" since " in units or units.strip().lower() in _TIMEDELTA_UNITS):
                return None
            dtype = np.dtype(meta["data_type"])
            encoding = {}
            if "_FillValue" in attrs:  # xarray's own: a NaN of a float column (base64 of its bytes), no mask
                raw = attrs.pop("_FillValue")
                if isinstance(raw, str):  # the bytes of a float64 (or float32), whatever the column's type
                    b = base64.b64decode(raw)
                    raw = np.frombuffer(b, dtype=np.float64 if len(b) == 8 else np.float32)[0]
                fv = float(raw)
                if dtype.kind != "f" or not np.isnan(fv):
                    return None
                encoding["_FillValue"] = fv
            var = _Described(dims, dtype, attrs, encoding, 1)
            found = _chunk_reads(store, entry.name, var, manifest, cached, meta)
            if found is None:
                return None
            out[entry.name] = (var, found)
    except (OSError, ValueError, KeyError, TypeError, IndexError, binascii.Error):
        return None
    return out


def _fast_column(store: Path, name: str, found) -> da.Array:
    """Dask array reading ``store/name`` chunk files directly with blosc
    (``found``: :func:`_chunk_reads` of the column). Same values as
    zarr-python, about half the CPU time per chunk (no per-chunk async
    machinery)."""
    dtype, reads = found
    mtime = (store / name / "zarr.json").stat().st_mtime_ns
    key = f"xcube-zarr-{name}-{tokenize(str(store.resolve()), name, mtime, reads)}"
    dsk = {(key, i): (_read_chunk, *r) for i, r in enumerate(reads)}
    return da.Array(dsk, key, chunks=(tuple(r[3] for r in reads),), dtype=dtype, meta=np.empty(0, dtype))


def check_store(store, checksums: bool = False) -> dict | None:
    """Check a store written by :func:`to_zarr` against the manifest of its
    completion record (see :func:`~xcube.io.integrity.verify_store`); returns
    the manifest (None for a store written before manifests existed). Raises
    ``OSError`` for an incomplete store, :class:`StoreCorruptError` for a
    damaged one. Eager, cheap (``stat`` calls) unless ``checksums``."""
    store = expand_path(store)
    return _verified(store, root_attrs(store), checksums)


def _verified(store: Path, attrs: dict | None, checksums: bool) -> dict | None:
    """:func:`check_store` of ``store`` whose root attributes ``attrs``
    (:func:`root_attrs`) are read already."""
    if attrs is None and not store.exists():
        raise FileNotFoundError(f"{store}: no such Zarr store")
    attrs = dict(attrs or {})
    record = attrs.pop(COMPLETE, None)
    if not isinstance(record, dict):
        raise OSError(
            f"{store}: incomplete xcube store (no {COMPLETE} record): its writer was interrupted or it was "
            "found damaged; delete it (a cache store is rebuilt automatically)"
        )
    manifest = record.get("columns")
    if manifest:
        verify_store(store, manifest, checksums=checksums)
    if "attrs_crc" in record and attrs_crc(attrs) != record["attrs_crc"]:  # (older stores: attrs unverified)
        raise StoreCorruptError(
            f"{store}: its root attributes ({store / 'zarr.json'}: sky reference, MJDREF, exposure...) changed "
            "since the store was written (damaged)"
        )
    return manifest


def _is_xcube_store(store: Path, attrs: dict | None) -> bool:
    """Whether ``store`` (root attributes ``attrs``, :func:`root_attrs`) is
    one xcube wrote: its attrs hold the completion record, the stale mark
    (:func:`mark_stale`) or a ``kind`` (what every xcube store's attrs name:
    ``"transient-search"``, event lists...); or its ``zarr.json`` is missing
    or unreadable (a damaged store), unless it is a Zarr v2 store
    (``.zgroup``). Another writer's Zarr v3 store has none of these."""
    if attrs is None:
        return not ((store / ".zgroup").exists() and not (store / "zarr.json").exists())
    return COMPLETE in attrs or STALE in attrs or "kind" in attrs


def open_store(store, checksums: bool = True, foreign_ok: bool = False) -> xr.Dataset:
    """Open any store written by :func:`to_zarr` - a search result's cube
    (``SearchResult.to_zarr``) or an event list - with ``xarray.open_zarr``
    (lazy), after checking it against its manifest (:func:`check_store`;
    ``checksums``: every chunk file's CRC32C too, right for small stores such
    as search cubes). The completion record is left out of the attrs. Raises
    ``OSError`` for a store xcube did not finish (or found damaged before),
    :class:`StoreCorruptError` naming the store and the damage; stores
    written before manifests existed open unverified.

    ``foreign_ok``: a store xcube did not write (no completion record, stale
    mark or ``kind`` attr; a Zarr v2 store) opens as it is, unverified; one
    xcube wrote is checked as above. Reads ``zarr.json`` once (and xarray
    once more)."""
    store = expand_path(store)
    attrs = root_attrs(store)
    if foreign_ok and not _is_xcube_store(store, attrs):
        return xr.open_zarr(store, consolidated=False)
    try:
        _verified(store, attrs, checksums)
    except StoreCorruptError as exc:
        raise StoreCorruptError(f"{exc}; write the store again from its source") from None
    ds = xr.open_zarr(store, consolidated=False, zarr_format=3)
    ds.attrs.pop(COMPLETE, None)
    return ds


def open_zarr_events(store, chunks: int | None = None, verify: str = "sizes", cached: bool = False) -> xr.Dataset:
    """Open a store written by :func:`to_zarr`. Columns are Dask arrays (lazy;
    chunks of the simple layout :func:`to_zarr` writes are decoded straight
    from their files, each checked against its CRC32C first); the small GTI
    variables are loaded eagerly.

    ``verify``: ``"sizes"`` (default) checks at open that every column and
    chunk file recorded in the store's manifest is there with its size;
    ``"full"`` also checksums every chunk now. Columns that the direct reader
    cannot read are always checksummed at open. Raises
    :class:`~xcube.io.integrity.StoreCorruptError` naming the store and the
    damage. ``cached``: the store is an event-cache entry (damage found while
    reading marks it stale).
    """
    store = expand_path(store)
    attrs = root_attrs(store)
    manifest = _verified(store, attrs, checksums=verify == "full")
    arrays = _described(store, manifest, cached)
    if arrays is None:  # metadata and lazily indexed (not Dask) variables from xarray; the
        # event columns get their Dask arrays below, from the direct reader where it applies
        src = xr.open_zarr(store, consolidated=False, zarr_format=3, chunks=None)
        attrs = src.attrs
        arrays = {name: (src[name].variable, None) for name in src.data_vars}
    attrs = dict(attrs)
    attrs.pop(COMPLETE, None)
    variables = {}
    for name in _ordered(arrays):
        var, found = arrays[name]
        if found is None and var.ndim == 1:
            found = _chunk_reads(store, name, var, manifest, cached)
        if found is None and manifest and name in manifest and verify != "full":
            verify_store(store, {name: manifest[name]}, checksums=True)  # read through zarr: check it now
        if "event" not in var.dims:  # GTI tables: small, loaded now
            data = np.concatenate([_read_chunk(*r) for r in found[1]]) if found else np.asarray(var.values)
        elif found is None:  # read through zarr, in the store's chunks
            data = var.chunk(dict(zip(var.dims, var.encoding.get("chunks") or var.shape))).data
        else:
            data = _fast_column(store, name, found)
        variables[name] = xr.Variable(var.dims, data, var.attrs, var.encoding)
    ds = xr.Dataset(variables, attrs=attrs)
    if chunks:
        ds = ds.chunk({"event": int(chunks)})
    return ds
