"""Memory-mapped columns of uncompressed FITS tables, and the TIME check.

A FITS binary table is an array of big-endian records. :class:`FitsColumn`
exposes one column of it to ``dask.array.from_array``: each chunk is a
strided read of that column out of a shared read-only ``numpy.memmap``,
converted to native byte order (and scaled by TSCAL/TZERO). Mappings are kept
in a small per-process LRU cache (:func:`row_memmap`) so that the chunks of
all columns reuse one mapping and its page-table entries instead of mapping
and faulting the file once per chunk; objects stay picklable (they hold the
path, not the mapping) for dask.distributed.

A file changed after it was opened is never read as events: each chunk read
first compares the file's size, mtime and content fingerprint with those
taken at open (:func:`xcube.io.integrity.check_unchanged`) and raises
:class:`~xcube.io.integrity.FileChangedError` naming the file; a mapping is
never made beyond the file's current size (a truncated file would otherwise
kill the process with SIGBUS).

:func:`scan_times` makes the one streaming pass over TIME that opening needs
(NaN, negative values, sortedness, first/last time). Its result is stored as
a small JSON record in the event cache, keyed by the file identity, so
re-opening an unchanged file reads headers only.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from .integrity import FileChangedError, check_unchanged

__all__ = [
    "FitsColumn",
    "decode",
    "row_memmap",
    "register_source",
    "source_of",
    "fusable_sources",
    "read_columns",
    "check_times",
    "scan_times",
    "count_null_rows",
    "null_mask",
    "load_scan_record",
    "save_scan_record",
]

SCAN_ROWS = 2_097_152  # rows of TIME checked per step (16 MB of float64)


@lru_cache(maxsize=16)
def _memmap(path: str, file_id: tuple, offset: int, nrows: int, row_dtype: np.dtype) -> np.memmap:
    # file_id: (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns) - a file replaced under the same name (a new
    # inode, even with the same size and mtime) gets a new mapping, never the old file's
    return np.memmap(path, dtype=row_dtype, mode="r", offset=offset, shape=(nrows,))


def row_memmap(path: str, offset: int, nrows: int, row_dtype: np.dtype) -> np.memmap:
    """Shared read-only record memmap of a table: ``nrows`` records of
    ``row_dtype`` from byte ``offset`` of the file, 1-D of length ``nrows``
    (LRU-cached per process, keyed by path, the file's identity - device,
    inode, size, mtime and ctime, from one ``stat`` - offset, rows and
    record layout, so a file replaced under the same name is mapped anew). Raises
    :class:`~xcube.io.integrity.FileChangedError` when the file is shorter
    than the table (never maps beyond the end of a file). Eager ``stat``; the
    map itself is lazy (pages are read when touched)."""
    st = os.stat(path)
    need = int(offset) + int(nrows) * np.dtype(row_dtype).itemsize
    if st.st_size < need:
        raise FileChangedError(
            f"{path}: the file has {st.st_size} bytes but its event table needs {need}; it was truncated "
            "(perhaps after it was opened) - nothing was read past its end; get a complete copy and open it again"
        )
    file_id = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return _memmap(str(path), file_id, int(offset), int(nrows), np.dtype(row_dtype))


class FitsColumn:
    """Array-like over one column of a memory-mapped FITS table (for
    ``da.from_array(..., asarray=False)``).

    Indexing with a slice returns a native-byte-order copy of those rows:
    ``raw * scale + zero + add`` cast to ``dtype`` (``logical`` columns give
    booleans). Reads only the requested rows. ``identity``: the file's
    ``(size, mtime_ns, fingerprint)`` when it was opened; every read checks
    the file still matches it.
    """

    def __init__(self, path, offset, nrows, row_dtype, field, dtype, scale=1.0, zero=0.0, add=0.0,
                 logical=False, identity=None):
        self.identity = identity
        self.path, self.offset, self.nrows = str(path), int(offset), int(nrows)
        self.row_dtype, self.field = np.dtype(row_dtype), field
        self.dtype = np.dtype(dtype)
        self.shape = (self.nrows,)
        self.ndim = 1
        self.scale, self.zero, self.add, self.logical = float(scale), float(zero), float(add), bool(logical)

    def __len__(self):
        return self.nrows

    def __getitem__(self, key):
        sl = key[0] if isinstance(key, tuple) else key
        self.check_unchanged()
        return self.decode(row_memmap(*self.table)[sl][self.field])

    @property
    def table(self) -> tuple:
        """What identifies the table this column is part of."""
        return self.path, self.offset, self.nrows, self.row_dtype

    def check_unchanged(self) -> None:
        """Raise :class:`FileChangedError` when the file no longer matches its identity at open."""
        if self.identity is not None:
            check_unchanged(self.path, self.identity, "event file",
                            need=self.offset + self.nrows * self.row_dtype.itemsize)

    def decode(self, raw: np.ndarray) -> np.ndarray:
        """Native values of raw (big-endian, unscaled) column values (:func:`decode`)."""
        return decode(raw, self.dtype, self.scale, self.zero, self.add, self.logical)

    def decode_into(self, raw: np.ndarray, out: np.ndarray) -> None:
        """:meth:`decode` written into ``out`` (no temporary for plain columns)."""
        if self.logical or self.scale != 1.0 or self.zero != 0.0:
            out[...] = self.decode(raw)
            return
        out[...] = raw  # byte swap + cast in one pass
        if self.add:
            out += self.add

    def derived(self, func, dtype) -> "DerivedColumn":
        """The column ``func(self[...])`` (e.g. energy from PI), readable with :func:`read_columns`.
        Nothing is read here: ``func`` runs on each block as it is read."""
        return DerivedColumn(self, func, dtype)


def decode(raw: np.ndarray, dtype, scale: float = 1.0, zero: float = 0.0, add: float = 0.0,
           logical: bool = False) -> np.ndarray:
    """Native values of raw FITS column values (the stored integers or floats,
    either byte order, not scaled): ``raw * scale + zero + add`` cast to
    ``dtype``, computed in float64 when scaled (exact in int64/uint64 for a
    whole TZERO with ``scale`` 1); booleans for a ``logical`` column. Eager,
    one new array of ``raw``'s shape. Every reader of event columns decodes
    with it (the memory-mapped :class:`FitsColumn` and the astropy-read
    tables of :func:`xcube.io.events_fits.load_fits_events`), so a column reads the
    same on every path - including scaled 64-bit integers, which astropy's
    own column conversion cannot read."""
    dtype = np.dtype(dtype)
    if logical:
        return raw == ord("T")
    if dtype.kind in "iu" and scale == 1.0 and zero != 0.0:  # exact integer offset
        if dtype == np.uint64:  # TZERO = 2**63: flip the sign bit
            out = raw.astype(np.int64).view(np.uint64) ^ np.uint64(1 << 63)
        else:
            out = raw.astype(np.int64) + np.int64(int(zero))
    elif scale != 1.0 or zero != 0.0:
        out = (raw.astype(np.float64) * scale + zero).astype(dtype)
    else:
        out = raw.astype(dtype)  # byte swap + cast in one pass
    if add:
        out += add
    return out


class DerivedColumn:
    """``func`` of a :class:`FitsColumn`'s values, as :func:`read_columns` reads it."""

    def __init__(self, base: FitsColumn, func, dtype):
        self.base, self.func, self.dtype = base, func, np.dtype(dtype)
        self.field, self.table = base.field, base.table

    def check_unchanged(self) -> None:
        self.base.check_unchanged()

    def decode(self, raw: np.ndarray) -> np.ndarray:
        return np.asarray(self.func(self.base.decode(raw)), dtype=self.dtype)

    def decode_into(self, raw: np.ndarray, out: np.ndarray) -> None:
        out[...] = self.decode(raw)


#: records decoded together by :func:`read_columns` (about 1 MB of a typical event table: stays in cache)
_FUSED_ROWS = 32768
#: Dask array name -> the FitsColumn it reads (see :func:`register_source`); bounded
_SOURCES: dict = {}


def register_source(name: str, column: FitsColumn) -> None:
    """Remember that the Dask array ``name`` is ``from_array(column)``
    unchanged, so readers of several columns can fuse their reads
    (:func:`source_of`, :func:`read_columns`). Eager (a registry entry; nothing
    is read)."""
    if len(_SOURCES) >= 4096:
        _SOURCES.pop(next(iter(_SOURCES)))
    _SOURCES[name] = column


def source_of(array) -> FitsColumn | None:
    """The FitsColumn a Dask array reads unchanged, or None (any other array,
    or one derived from it: a selection has another name). Eager (a look-up;
    nothing is read or computed)."""
    return _SOURCES.get(getattr(array, "name", None))


def fusable_sources(arrays) -> list | None:
    """The columns that the 1-D Dask ``arrays`` read, when every one reads a
    column of the same table unchanged, lazily (not persisted) and in the
    same chunks, so that one :func:`read_columns` per chunk can replace their
    reads; else None."""
    srcs = [source_of(a) for a in arrays]
    if not arrays or any(s is None for s in srcs) or len({s.table for s in srcs}) != 1:
        return None
    if any(a.chunks != arrays[0].chunks for a in arrays):
        return None
    for a in arrays:  # persisted (in memory, or futures on a cluster): use those blocks
        v = a.__dask_graph__().get(a.__dask_keys__()[0])
        if isinstance(v, np.ndarray) or not (isinstance(v, tuple) or type(v).__name__ == "Task"):
            return None
    return srcs


def read_columns(columns, start: int, stop: int, out=None) -> tuple:
    """Rows ``start:stop`` of several :class:`FitsColumn` (or
    :class:`DerivedColumn`) of one table, each as ``column[start:stop]`` would give it, decoded block by block so each
    block of records is read from memory once (reading the columns one
    after the other streams the whole table once per column). ``out``: one
    1-D array per column, of its dtype and at least ``stop - start`` long,
    to decode into (the result is then views of them), or None (new arrays).
    Eager: reads and decodes the rows into numpy arrays here."""
    first = columns[0]
    if any(c.table != first.table for c in columns):
        raise ValueError("read_columns: the columns belong to different tables")
    first.check_unchanged()
    rows = np.asarray(row_memmap(*first.table))[start:stop]  # (a plain view: numpy.memmap's slicing costs more)
    n = rows.shape[0]
    outs = [np.empty(n, dtype=c.dtype) for c in columns] if out is None else [o[:n] for o in out]
    for a in range(0, n, _FUSED_ROWS):
        block = rows[a:a + _FUSED_ROWS]
        for c, o in zip(columns, outs):
            c.decode_into(block[c.field], o[a:a + block.shape[0]])
    return tuple(outs)


def _check_block_numpy(t):
    n_nan = int(np.count_nonzero(~np.isfinite(t)))
    n_neg = int(np.count_nonzero(t < 0))
    ok = not bool(np.any(t[1:] < t[:-1]))
    return n_nan, n_neg, ok


_numba_check = None


def _check_block(t):
    """(number of NaN or infinite values, number of negative values,
    non-decreasing) of a block."""
    global _numba_check
    if _numba_check is None:
        try:
            from numba import njit

            from .. import _numba_cache  # noqa: F401 (numba's cache: a failure warns instead of failing)

            @njit(cache=True, nogil=True)
            def check(t):  # pragma: no cover - compiled
                n_nan = 0
                n_neg = 0
                ok = True
                prev = -np.inf
                for v in t:
                    if v != v or v == np.inf or v == -np.inf:
                        n_nan += 1
                        continue
                    if v < 0:
                        n_neg += 1
                    if v < prev:
                        ok = False
                    prev = v
                return n_nan, n_neg, ok

            _numba_check = check
        except ImportError:  # pragma: no cover
            _numba_check = _check_block_numpy
    return _numba_check(t)


def check_times(t: np.ndarray, path, first_row: int = 0) -> bool:
    """Raise ``ValueError`` naming ``path`` when ``t`` (native float64 times)
    has NaN, infinite or negative values; return True when ``t`` is
    non-decreasing. Eager, numpy: one pass over ``t`` [s] (1-D)."""
    n_nan, n_neg, ok = _check_block(t)

    def rows(bad) -> str:  # error path only: the first bad row (0-based; FITS counts from 1)
        first = first_row + int(np.flatnonzero(bad)[0])
        return f"the first in row {first} (FITS row {first + 1}) of rows {first_row}-{first_row + t.size - 1}"

    if n_nan:
        n_inf = int(np.count_nonzero(np.isinf(t)))
        what = "NaN" if not n_inf else ("infinite" if n_inf == n_nan else "NaN or infinite")
        raise ValueError(
            f"{path}: {n_nan} {what} TIME value(s), {rows(~np.isfinite(t))}; the file is corrupt - drop those "
            "rows (e.g. fselect 'isnull(TIME) == F && TIME < 1e20') or get a fresh copy"
        )
    if n_neg:
        raise ValueError(
            f"{path}: {n_neg} negative TIME value(s), {rows(t < 0)} (min {float(np.min(t))!r}); mission times "
            "are seconds after MJDREF and cannot be negative - check the TIME column and TIMEZERO"
        )
    return bool(ok)


def scan_times(times: FitsColumn, path) -> dict:
    """One streaming pass over a TIME column (eager, ``SCAN_ROWS`` rows at a time).

    Raises ``ValueError`` naming ``path`` on NaN or negative times. Returns
    ``{"sorted": bool, "tmin": float, "tmax": float, "nrows": int}`` (times
    include the column's ``add``, i.e. TIMEZERO).
    """
    n = times.nrows
    last = -np.inf
    ok = True
    tmin, tmax = np.inf, -np.inf
    for a in range(0, n, SCAN_ROWS):
        t = times[a:min(a + SCAN_ROWS, n)]
        block_ok = check_times(t, path, first_row=a)
        ok = ok and block_ok and not (t[0] < last)
        last = t[-1]
        tmin, tmax = min(tmin, float(t.min())), max(tmax, float(t.max()))
        del t  # free the block before the next one is read: peak memory is one block
    return {"sorted": bool(ok), "tmin": float(tmin), "tmax": float(tmax), "nrows": int(n)}


def null_mask(values: np.ndarray, null: float) -> np.ndarray:
    """Boolean mask of the ``values`` that are null: equal to ``null`` (an
    integer column's TNULL), or NaN or infinite when ``null`` is NaN (the null
    of floating-point columns). Eager, same shape as ``values``."""
    return ~np.isfinite(values) if np.isnan(null) else values == null


def count_null_rows(columns) -> int:
    """Number of rows in which any of ``columns`` - pairs ``(FitsColumn,
    null value)`` over the same table - holds its null value (:func:`null_mask`).
    One streaming pass (eager, ``SCAN_ROWS`` rows at a time)."""
    n = columns[0][0].nrows
    count = 0
    for a in range(0, n, SCAN_ROWS):
        null = None
        for col, value in columns:
            m = null_mask(col[a:min(a + SCAN_ROWS, n)], value)
            null = m if null is None else (null | m)
        count += int(np.count_nonzero(null))
    return count


def _record_check(result: dict) -> int:
    """CRC32 of a scan record's canonical JSON (its ``_crc32`` key left out)."""
    import zlib

    body = {k: v for k, v in result.items() if k != "_crc32"}
    return zlib.crc32(json.dumps(body, sort_keys=True, default=str).encode())


def load_scan_record(record: Path) -> dict | None:
    """A scan record written by :func:`save_scan_record` (a dict read from
    its JSON file, eagerly), or None when absent, unreadable, not a dict or
    damaged (its CRC32 differs: a flipped bit would bring back dropped
    events), so that the scan is repeated and the record rewritten."""
    try:
        res = json.loads(Path(record).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(res, dict) or res.get("_crc32") != _record_check(res):
        return None
    return {k: v for k, v in res.items() if k != "_crc32"}


def save_scan_record(record: Path, result: dict) -> None:
    """Write a scan record atomically (temporary file, then rename), with the
    CRC32 of its contents; errors (read-only cache) are ignored - the scan is
    simply repeated next time. Eager: writes the file."""
    from .atomic import write_json

    try:
        write_json(record, dict(result, _crc32=_record_check(result)))
    except OSError:
        pass
