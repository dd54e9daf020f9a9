"""Integrity checks: file fingerprints and checksummed Zarr stores.

Two things must never be read as data: a source file that changed under a
reader (same size and mtime, other content; or overwritten or truncated while
memory-mapped), and a damaged Zarr store (a chunk file missing, truncated or
with a flipped bit, a column's metadata gone).

* :func:`fingerprint` - a cheap content hash of a file: its size and its
  first and last :data:`FINGERPRINT_BLOCK` bytes (the FITS headers and the
  start and end of the data); :func:`file_identity` adds the mtime and
  :func:`check_unchanged` compares a file against an identity taken earlier.
* :func:`store_manifest` - per column: shape, chunk count and, per chunk
  file, its size and CRC32C (hardware accelerated where the CPU has it),
  recorded in a store's completion record when it is committed;
  :func:`verify_store` checks a store against it (stat only, or with
  checksums); :func:`chunk_crc` checks one chunk's bytes as it is read.
* :func:`attrs_crc` - CRC32C of a store's root attributes (WCS, MJDREF,
  exposure...) in a canonical JSON form, recorded beside the manifest so a
  changed or damaged root ``zarr.json`` is detected too.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

__all__ = ["fingerprint", "file_identity", "check_unchanged", "FileChangedError", "StoreCorruptError",
           "store_manifest", "verify_store", "chunk_crc", "attrs_crc", "FINGERPRINT_BLOCK"]

#: bytes hashed at each end of a file by :func:`fingerprint`
FINGERPRINT_BLOCK = 65536

try:  # CRC32C, as zarr v3 uses; google-crc32c comes with zarr
    from google_crc32c import value as _crc32c
except ImportError:  # pragma: no cover - zarr depends on it
    _crc32c = None


class FileChangedError(OSError):
    """A file changed (overwritten, truncated, modified) after it was opened."""


class StoreCorruptError(OSError):
    """A Zarr store does not match the manifest recorded when it was committed."""


def chunk_crc(data) -> int:
    """CRC32C of a bytes-like object (``zlib.crc32`` without google-crc32c).
    Eager: reads all of ``data``."""
    if _crc32c is not None:
        return int(_crc32c(np.frombuffer(data, np.uint8)))  # (a memory map is taken through numpy)
    import zlib  # pragma: no cover

    return zlib.crc32(data)  # pragma: no cover


def attrs_crc(attrs: dict) -> int:
    """CRC32C of ``attrs`` (a store's root attributes as read back from its
    ``zarr.json``) in canonical JSON: sorted keys, no spaces, ASCII. Eager, tiny."""
    text = json.dumps(attrs, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return chunk_crc(text.encode("ascii"))


def fingerprint(path, size: int | None = None) -> str:
    """Hex digest (16 characters) of a file's size and its first and last
    :data:`FINGERPRINT_BLOCK` bytes. Reads at most 128 KiB; eager."""
    with open(path, "rb") as fh:
        if size is None:
            size = os.fstat(fh.fileno()).st_size
        h = hashlib.blake2b(str(size).encode(), digest_size=8)
        h.update(fh.read(FINGERPRINT_BLOCK))
        if size > FINGERPRINT_BLOCK:
            fh.seek(max(FINGERPRINT_BLOCK, size - FINGERPRINT_BLOCK))
            h.update(fh.read(FINGERPRINT_BLOCK))
    return h.hexdigest()


def file_identity(path) -> tuple:
    """``(size [bytes], mtime [ns], ctime [ns], inode, fingerprint)`` of a
    file, now. Eager: one ``stat`` and the fingerprint (reads at most 128
    KiB)."""
    st = os.stat(path)
    return int(st.st_size), int(st.st_mtime_ns), int(st.st_ctime_ns), int(st.st_ino), fingerprint(path, st.st_size)


#: seconds between two fingerprint checks of one file by :func:`check_unchanged`
FINGERPRINT_INTERVAL = 1.0
_fingerprinted: dict = {}  # (path, identity) -> time.monotonic() of the last fingerprint check


def check_unchanged(path, identity, what: str = "file", need: int | None = None) -> None:
    """Raise :class:`FileChangedError` naming ``path`` when it differs from
    ``identity`` (from :func:`file_identity`): its size, mtime, ctime or inode
    (one ``stat``; ctime changes with any write, and also when a writer sets
    the mtime back), or its content fingerprint (read at most every
    :data:`FINGERPRINT_INTERVAL` seconds per file: for file systems with
    coarse timestamps); or when it is now shorter than ``need`` bytes.
    Eager."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileChangedError(f"{path}: the {what} was deleted after it was opened; open it again") from None
    size, mtime, ctime, ino, fp = identity
    if need is not None and st.st_size < need:
        raise FileChangedError(
            f"{path}: the {what} was truncated after it was opened (now {st.st_size} bytes, {need} needed); "
            "nothing was read past its end - open it again once it is complete"
        )
    if (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) != (size, mtime, ctime, ino):
        raise FileChangedError(
            f"{path}: the {what} was overwritten or modified after it was opened (size {size} -> {st.st_size} "
            f"bytes; mtime, ctime or inode changed); its events are no longer the ones opened - open it again"
        )
    key = (str(path), tuple(identity))
    now = time.monotonic()
    if now - _fingerprinted.get(key, -np.inf) < FINGERPRINT_INTERVAL:
        return
    if fingerprint(path, st.st_size) != fp:
        raise FileChangedError(
            f"{path}: the {what} was overwritten after it was opened (same size and times, other content); "
            "open it again"
        )
    if len(_fingerprinted) > 1024:
        _fingerprinted.clear()
    _fingerprinted[key] = now


def _chunk_files(array_dir: Path) -> dict[str, Path]:
    """Chunk key (``"0"``, ``"1/3"``) -> file, for the default ``c/`` key encoding."""
    root = array_dir / "c"
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}


def _n_chunks(meta: dict) -> int:
    n = 1
    shape = meta.get("shape", [])
    grid = meta.get("chunk_grid", {}).get("configuration", {}).get("chunk_shape", shape)
    for s, c in zip(shape, grid):
        n *= -(-int(s) // max(1, int(c))) if s else 0
    return n


def store_manifest(store) -> dict:
    """Manifest of every array of a Zarr v3 store: ``{name: {"meta": crc of
    its zarr.json, "n_chunks": chunks of its grid, "chunks": {key: [size,
    crc32c]}}}``. Chunks holding only the fill value are not written by Zarr
    and so are absent from ``chunks``. Eager: reads every chunk file once."""
    store = Path(store)
    out = {}
    for meta_file in sorted(store.glob("*/zarr.json")):
        raw = meta_file.read_bytes()
        meta = json.loads(raw)
        if meta.get("node_type") != "array":
            continue
        chunks = {}
        for key, f in sorted(_chunk_files(meta_file.parent).items()):
            data = f.read_bytes()
            chunks[key] = [len(data), chunk_crc(data)]
        out[meta_file.parent.name] = {"meta": chunk_crc(raw), "n_chunks": _n_chunks(meta), "chunks": chunks}
    return out


def verify_store(store, manifest: dict, checksums: bool = False) -> None:
    """Check a store against its manifest; raise :class:`StoreCorruptError`
    naming the store and the first problem: a column's metadata missing or
    changed, a chunk file missing, of another size, unexpected, or (with
    ``checksums``) with another CRC32C. Without ``checksums`` only ``stat``
    calls (plus the small metadata files); eager."""
    store = Path(store)

    def bad(msg):
        return StoreCorruptError(f"{store}: {msg}")

    for name, rec in manifest.items():
        meta_file = store / name / "zarr.json"
        try:
            raw = meta_file.read_bytes()
        except FileNotFoundError:
            raise bad(f"column {name!r} lost its metadata ({meta_file} is missing)") from None
        if chunk_crc(raw) != rec["meta"]:
            raise bad(f"column {name!r}: metadata {meta_file} changed since the store was written")
        for key, (size, crc) in rec["chunks"].items():
            f = store / name / "c" / key
            try:
                have = f.stat().st_size
            except FileNotFoundError:
                raise bad(f"column {name!r}: chunk file {f} is missing") from None
            if have != size:
                raise bad(f"column {name!r}: chunk file {f} has {have} bytes, {size} were written (truncated?)")
            if checksums and chunk_crc(f.read_bytes()) != crc:
                raise bad(f"column {name!r}: chunk file {f} fails its CRC32C checksum (damaged)")
        extra = set(_chunk_files(store / name)) - set(rec["chunks"])
        if extra:
            raise bad(f"column {name!r}: chunk files {sorted(extra)[:3]} were not written with the store")
