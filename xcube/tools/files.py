"""Checks on the files tools read and write: cheap checksums (the evidence
that a finished task is still up to date) and complete-FITS checks (the
evidence that a tool really made its output)."""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

__all__ = ["fingerprint", "check_fits"]

# ---------------------------------------------------------------------------
# checksums


_FULL_HASH_LIMIT = 64 * 2**20
_EDGE = 4 * 2**20


def fingerprint(path, exclude=(), exclude_patterns=()) -> str:
    """Checksum of a file or directory, cheap enough for large inputs.

    Files up to 64 MiB: SHA-256 of the content. Larger files: SHA-256 of the
    size, the first and last 4 MiB and the modification time. Directories:
    hash over the sorted (relative path, size, mtime) of their files (not
    recursing into hidden entries), leaving out the paths under ``exclude``
    (absolute files or directories: a task's own outputs, work directory and
    logs when they lie inside a directory it reads) and those matching
    ``exclude_patterns`` (absolute ``fnmatch`` patterns). A missing path gives
    ``"missing"``.
    Eager: reads the file (up to 64 MiB, else 8 MiB of it) or stats every file
    of the directory.
    """
    p = Path(path)
    if not p.exists():
        return "missing"
    h = hashlib.sha256()
    if p.is_dir():
        skip = path_excluder(exclude, exclude_patterns)
        real = Path(os.path.realpath(p))  # compared as real paths: the directory may be named through a link
        for sub in sorted(p.rglob("*")):
            rel = sub.relative_to(p)
            if any(part.startswith(".") for part in rel.parts) or not sub.is_file() or skip(real / rel):
                continue
            st = sub.stat()
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return "dir:" + h.hexdigest()
    st = p.stat()
    with open(p, "rb") as fh:
        if st.st_size <= _FULL_HASH_LIMIT:
            for block in iter(lambda: fh.read(2**20), b""):
                h.update(block)
            return "sha256:" + h.hexdigest()
        h.update(fh.read(_EDGE))
        fh.seek(st.st_size - _EDGE)
        h.update(fh.read(_EDGE))
    h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return "quick:" + h.hexdigest()


def path_excluder(exclude, patterns):
    """``skip(real_path) -> bool`` for the paths under ``exclude`` or matching ``patterns``."""
    import fnmatch

    roots = {os.path.realpath(os.fspath(e)) for e in exclude}
    pats = {os.path.join(os.path.realpath(os.path.dirname(os.fspath(x))), os.path.basename(os.fspath(x)))
            for x in patterns}
    if not roots and not pats:
        return lambda sub: False

    def skip(sub: Path) -> bool:
        text = os.fspath(sub)
        return (any(text == r or text.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
                or any(fnmatch.fnmatchcase(text, x) for x in pats))
    return skip


# ---------------------------------------------------------------------------
# output checks


def check_fits(path) -> None:
    """Raise ``OSError`` unless ``path`` is a complete FITS file: starts with
    ``SIMPLE =``, every header parses, and every HDU's data lies inside the
    file (catches truncated writes). A gzip-compressed file (``.fits.gz``) is
    decompressed as a whole first, so a cut stream or a bad checksum is an
    error too, and the HDUs are checked against the decompressed size. Eager:
    reads every header (and decompresses a gzip file whole)."""
    p = Path(path)
    size = p.stat().st_size
    if size == 0:
        raise OSError(f"{p}: empty file")
    with open(p, "rb") as fh:
        head = fh.read(80)
    if head[:2] == b"\x1f\x8b":
        return _check_gzip_fits(p)
    if not head.startswith(b"SIMPLE  ="):
        raise OSError(f"{p}: not a FITS file (starts with {head[:20]!r})")
    _check_hdus(p, size)


def _check_hdus(p: Path, size: int) -> None:
    """Every header of ``p`` parses and every HDU's data ends within ``size`` bytes."""
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            # astropy only warns (and drops the HDU) when a trailing HDU is cut short
            warnings.simplefilter("error", fits.verify.VerifyWarning)
            hdul = fits.open(p, memmap=False, lazy_load_hdus=False)
        with hdul:
            for i in range(len(hdul)):
                info = hdul.fileinfo(i)
                if info["datLoc"] + info["datSpan"] > size:
                    raise OSError(f"{p}: HDU {i} ({hdul[i].name}) is truncated: data ends at byte "
                                  f"{info['datLoc'] + info['datSpan']} but the file has {size}")
    except OSError:
        raise
    except Exception as exc:  # astropy raises assorted errors on corrupt headers
        raise OSError(f"{p}: corrupt FITS file ({type(exc).__name__}: {exc})") from exc


def _check_gzip_fits(p: Path) -> None:
    import gzip
    import zlib

    try:
        with gzip.open(p, "rb") as fh:
            if not fh.read(80).startswith(b"SIMPLE  ="):
                raise OSError(f"{p}: gzip file does not hold FITS")
            # read the whole stream (in blocks, bounded memory): a cut stream raises EOFError,
            # a damaged one a CRC or length error, where parsing the headers alone passes
            size = 80
            for block in iter(lambda: fh.read(2**20), b""):
                size += len(block)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise OSError(f"{p}: corrupt compressed FITS file ({type(exc).__name__}: {exc})") from exc
    _check_hdus(p, size)
