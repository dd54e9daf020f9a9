"""Small FITS helpers shared by the readers: opening with clear errors,
compression sniffing, header merging and column scaling."""
from __future__ import annotations

import bz2
import gzip
import io
import os
import warnings
from pathlib import Path

from astropy.io import fits

__all__ = ["check_path", "is_compressed", "open_fits", "merged_header", "find_column", "column_scaling"]

_MAGIC = {b"\x1f\x8b": "gzip", b"BZ": "bzip2", b"PK": "zip"}


def check_path(path) -> Path:
    """Return ``Path(path)`` or raise ``FileNotFoundError`` naming it."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file; check the path (cwd is {os.getcwd()})")
    if p.is_dir():
        raise IsADirectoryError(f"{p}: is a directory; pass an event file or use xcube.open_archive")
    return p


def is_compressed(path) -> str | None:
    """Compression of a file from its magic bytes ('gzip', 'bzip2', 'zip') or None."""
    with open(path, "rb") as fh:
        head = fh.read(2)
    return _MAGIC.get(head)


def _decompress(path, compression) -> bytes:
    opener = {"gzip": gzip.open, "bzip2": bz2.open}[compression]
    try:
        with opener(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError, ValueError) as exc:
        raise OSError(
            f"{path}: truncated or corrupt {compression} file ({exc}); download or copy it again"
        ) from exc


def open_fits(path, memmap: bool = True) -> fits.HDUList:
    """Open a FITS file, turning astropy's generic errors into messages that
    name the file and the problem (not FITS, truncated, corrupt).

    gzip/bzip2 files are decompressed into memory in one pass (which also
    proves the stream complete: astropy would silently drop the HDUs after a
    truncation); uncompressed files are memory-mapped when ``memmap``.
    """
    p = check_path(path)
    comp = is_compressed(p)
    if comp == "zip":
        raise OSError(f"{p}: zip archives are not supported; unzip it first")
    if comp is None:
        with open(p, "rb") as fh:
            card = fh.read(80)
        source = p
    else:
        source = io.BytesIO(_decompress(p, comp))
        card = source.getvalue()[:80]
    if not card.startswith(b"SIMPLE  ="):
        raise OSError(f"{p}: not a FITS file (first card is {card[:30]!r}, expected 'SIMPLE  =')")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("error", fits.verify.VerifyWarning)
            warnings.filterwarnings("ignore", message=".*non-ASCII.*")
            hdul = fits.open(source, memmap=memmap and comp is None, lazy_load_hdus=False)
    except (OSError, EOFError, ValueError, fits.verify.VerifyWarning) as exc:
        raise OSError(f"{p}: corrupt or truncated FITS file ({exc})") from exc
    for w in caught:
        if "truncated" in str(w.message):
            hdul.close()
            raise OSError(f"{p}: truncated file ({w.message}); download or copy it again")
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return hdul


def merged_header(primary: fits.Header, ext: fits.Header) -> dict:
    """Primary keywords overridden by the extension's (as OGIP readers do)."""
    out = {k: v for k, v in primary.items() if k not in ("COMMENT", "HISTORY", "")}
    out.update({k: v for k, v in ext.items() if k not in ("COMMENT", "HISTORY", "")})
    return out


def find_column(names, wanted: str) -> str | None:
    """Case-insensitive column lookup; returns the file's spelling or None."""
    up = {n.upper(): n for n in names}
    return up.get(wanted.upper())


def column_scaling(header, index: int) -> tuple[float, float]:
    """(TSCALn, TZEROn) of column ``index`` (1-based) with OGIP defaults."""
    return float(header.get(f"TSCAL{index}", 1.0)), float(header.get(f"TZERO{index}", 0.0))
