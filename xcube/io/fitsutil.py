"""Small FITS helpers shared by the readers: opening with clear errors,
compression sniffing, header merging, column scaling and time units."""
from __future__ import annotations

import bz2
import errno
import gzip
import io
import os
import stat
import warnings
import zlib
from pathlib import Path

from astropy.io import fits

from .paths import expand_path

__all__ = ["check_path", "extension", "is_compressed", "open_fits", "merged_header", "find_column", "column_scaling",
           "has_value", "header_float", "check_layout", "check_column_time_unit", "column_time_scale", "time_scale"]

_MAGIC = {b"\x1f\x8b": "gzip", b"BZ": "bzip2", b"PK": "zip", b"\x1f\x9d": "compress"}


def check_path(path) -> Path:
    """Return ``Path(path)`` or raise ``FileNotFoundError`` naming it
    (``IsADirectoryError`` for a directory, ``OSError`` saying so for a
    symbolic-link loop). A ``stat`` only; reads nothing. Eager."""
    p = expand_path(path)  # ("~/obs/pn.fits" from Python, as astropy reads it)
    try:
        st = os.stat(p)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # (Path.exists says False, as for a missing file)
            loop = OSError(f"{p}: symbolic-link loop (the link leads back to itself, directly or through other "
                           "links); point it at the file (ls -l shows where it leads)")
            loop.errno = errno.ELOOP
            raise loop from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EBADF):  # (what Path.exists reads as missing)
            raise FileNotFoundError(f"{p}: no such file; check the path (cwd is {os.getcwd()})") from None
        raise  # e.g. PermissionError on a directory of the path
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"{p}: is a directory; pass an event file or use xcube.open_archive")
    return p


def is_compressed(path) -> str | None:
    """Compression of a file from its magic bytes ('gzip', 'bzip2', 'zip') or
    None. Eager: reads the first 2 bytes of the file."""
    with open(path, "rb") as fh:
        head = fh.read(2)
    return _MAGIC.get(head)


def _decompress(path, compression) -> bytes:
    opener = {"gzip": gzip.open, "bzip2": bz2.open}[compression]
    try:
        with opener(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise OSError(
            f"{path}: truncated or corrupt {compression} file ({exc}); download or copy it again"
        ) from exc


def open_fits(path, memmap: bool = True) -> fits.HDUList:
    """Open a FITS file, turning astropy's generic errors into messages that
    name the file and the problem (not FITS, truncated, corrupt).

    gzip/bzip2 files are decompressed into memory in one pass (which also
    proves the stream complete: astropy would silently drop the HDUs after a
    truncation); uncompressed files are memory-mapped when ``memmap``.
    Eager: every HDU's header is read on opening; table and image data are
    read when accessed (from the memory map, or the decompressed bytes).
    """
    p = check_path(path)
    comp = is_compressed(p)
    if comp == "zip":
        raise OSError(f"{p}: zip archives are not supported; unzip it first")
    if comp == "compress":
        raise OSError(f"{p}: Unix-compressed (.Z) file, which xcube does not read; run `uncompress {p.name}` "
                      "(or `gzip -d`) first, or recompress it with gzip")
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
    try:
        _check_table_bitpix(hdul, p)
        check_layout(hdul, p.stat().st_size if comp is None else len(source.getvalue()), p)
    except OSError:
        hdul.close()
        raise
    for w in caught:
        if "truncated" in str(w.message):
            hdul.close()
            raise OSError(f"{p}: truncated file ({w.message}); download or copy it again")
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return hdul


def _check_table_bitpix(hdul: fits.HDUList, path) -> None:
    """``OSError`` naming ``path`` and the extension when a table extension
    declares BITPIX other than 8 (FITS tables are bytes; astropy then expects
    |BITPIX|/8 times the data and would report a complete file as truncated).
    Headers only."""
    for i, hdu in enumerate(hdul[1:], start=1):
        kind = str(hdu.header.get("XTENSION", "")).strip().upper()
        if kind in ("BINTABLE", "TABLE") and hdu.header.get("BITPIX") != 8:
            what = "binary table" if kind == "BINTABLE" else "ASCII table"
            raise OSError(f"{path}: BITPIX = {hdu.header.get('BITPIX')} in the {what} {hdu.name} (HDU {i}), but "
                          f"BITPIX must be 8 for a {what}: a damaged header, not a short file - set BITPIX = 8 "
                          f"(e.g. fthedit '{path}[{i}]' BITPIX 8) or get a fresh copy")


def check_layout(hdul: fits.HDUList, size: int, path) -> None:
    """Raise ``OSError`` naming ``path`` when bytes of the file belong to no
    HDU: a gap between one HDU's data and the next header, or data after the
    last HDU (what a table whose NAXIS2 is smaller than its data looks like;
    astropy skips such bytes with a stream of header warnings). ``size`` is
    the (decompressed) file size [bytes]. Eager, headers only."""
    end, prev = 0, None
    for hdu in hdul:
        info = hdu.fileinfo()
        if info is None:
            return
        if prev is not None and info["hdrLoc"] > end:
            raise OSError(_gap_message(path, prev, info["hdrLoc"] - end, f"before the {hdu.name} extension"))
        if prev is not None and _first_keyword(hdu, info) != "XTENSION":
            # astropy read the orphan bytes as a header and looked further for the next one
            raise OSError(_gap_message(path, prev, info["datLoc"] - end, "where the next extension should begin"))
        end, prev = info["datLoc"] + info["datSpan"], hdu
    if prev is not None and size > end:
        raise OSError(_gap_message(path, prev, size - end, "at the end of the file"))


def _first_keyword(hdu, info) -> str | None:
    """The first keyword of an HDU's header as stored in the file. A
    compressed image (CompImageHDU) shows its decompressed image header,
    which starts with SIMPLE when the tile-compressed image came from a
    primary HDU (fpack writes ZSIMPLE); its stored header is the binary
    table's, so the first card is read from the file there."""
    if not isinstance(hdu, fits.CompImageHDU):
        return next(iter(hdu.header), None)
    fh = info["file"]
    pos = fh.tell()
    try:
        fh.seek(info["hdrLoc"])
        card = fh.read(8)
    finally:
        fh.seek(pos)
    if isinstance(card, bytes):
        card = card.decode("ascii", "replace")
    return str(card).strip() or None


def _gap_message(path, hdu, n: int, where: str) -> str:
    rows = ""
    if "NAXIS2" in hdu.header and hdu.header.get("XTENSION"):
        rows = f" (NAXIS2 = {hdu.header['NAXIS2']} rows of NAXIS1 = {hdu.header.get('NAXIS1')} bytes)"
    return (f"{path}: {n} bytes after the data of {hdu.name}{rows} {where} belong to no HDU; the header "
            "declares less data than the file holds (NAXIS2 too small?) or the file is damaged - "
            "fix the header or get a fresh copy")


def has_value(header, key: str) -> bool:
    """Whether ``header`` has the keyword ``key`` with a value: a card
    without one (legal FITS) or with a blank string counts as absent. Eager
    (header only)."""
    value = header.get(key) if hasattr(header, "get") else None
    return value is not None and not (isinstance(value, str) and not value.strip())


def header_float(header, key: str, path, default=None) -> float:
    """Header keyword ``key`` as a float (numeric strings such as ``'51840'``
    are accepted, as XMM writes TLMIN/TLMAX). Returns ``default`` when the
    keyword is absent (or blank); raises ``ValueError`` naming ``path`` and
    ``key`` when its value is not a number. Eager (header only)."""
    if not has_value(header, key):
        if default is None:
            return None
        return float(default)
    value = header.get(key)
    if isinstance(value, bool):
        raise ValueError(f"{path}: header keyword {key} = {value!r} is a logical, not a number; fix the header")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{path}: header keyword {key} = {value!r} is not a number; fix the header "
            f"(e.g. fthedit or fparkey) or remove {key}"
        ) from None


def merged_header(primary: fits.Header, ext: fits.Header) -> dict:
    """Primary keywords overridden by the extension's (as OGIP readers do).
    Eager (a dict of the cards)."""
    out = {k: v for k, v in primary.items() if k not in ("COMMENT", "HISTORY", "")}
    out.update({k: v for k, v in ext.items() if k not in ("COMMENT", "HISTORY", "")})
    return out


def find_column(names, wanted: str) -> str | None:
    """Case-insensitive column lookup; returns the file's spelling or None.
    Eager (names only)."""
    up = {n.upper(): n for n in names}
    return up.get(wanted.upper())


class TableColumns:
    """The columns of a FITS table HDU by name (any case), as astropy reads
    them (TSCALn/TZEROn applied), except 64-bit integer columns with a TZEROn
    other than 0 and 2**63, which astropy cannot convert (it raises): those
    are decoded by :func:`xcube.io.memmap.decode` (int64 for a whole TZERO
    with TSCAL 1, else float64). Eager: one column per lookup."""

    def __init__(self, hdu):
        self.hdu = hdu
        self.names = hdu.columns.names

    def __getitem__(self, name):
        found = find_column(self.names, name) if isinstance(name, str) else None
        if found is None:
            return self.hdu.data[name]
        col = self.hdu.columns[self.names.index(found)]
        zero = 0 if col.bzero is None else col.bzero
        if col.format.recformat != "i8" or zero in (0, 1 << 63):
            return self.hdu.data[found]
        import numpy as np

        from .memmap import decode

        scale = 1.0 if col.bscale is None else float(col.bscale)
        whole = scale == 1.0 and float(zero).is_integer()
        raw = self.hdu.data.view(np.ndarray)[found]  # the stored integers (astropy would fail to scale them)
        return decode(raw, np.int64 if whole else np.float64, scale, float(zero))

    def __contains__(self, name):
        return find_column(self.names, name) is not None


def column_scaling(header, index: int, path="event file") -> tuple[float, float]:
    """(TSCALn, TZEROn) of column ``index`` (1-based) with OGIP defaults;
    ``ValueError`` naming ``path`` and the keyword if one is not a number.
    Eager (header only)."""
    return (header_float(header, f"TSCAL{index}", path, 1.0), header_float(header, f"TZERO{index}", path, 0.0))


def extension(hdul, name, path):
    """The extension ``name`` of an open FITS file, or ``ValueError`` naming
    the file and its extensions. Eager (the HDU itself; its data are read as
    astropy reads them, when used)."""
    try:
        return hdul[name]
    except KeyError:
        raise ValueError(f"{path}: no extension {name!r} (extensions: {[h.name for h in hdul]})") from None


_SECONDS = ("s", "sec", "secs", "second", "seconds")


def time_scale(unit: str, where) -> float:
    """Seconds per ``unit`` of a TIMEUNIT or TUNIT: 1 for ``'s'`` (``'sec'``,
    ``'second(s)'``, any case; absent: seconds), 86400 for ``'d'`` (``'day(s)'``);
    ``ValueError`` naming ``where`` for another unit. Eager (string check)."""
    unit = (unit or "s").strip().lower()
    if unit in _SECONDS:
        return 1.0
    if unit in ("d", "day", "days"):
        return 86400.0
    raise ValueError(f"{where}: TIMEUNIT={unit!r} is not supported; expected 's' or 'd'")


def column_time_scale(header, index: int, name: str, default: float, where, *, strict: bool = True,
                      what: str = "times", stacklevel: int = 2) -> float:
    """Seconds per unit of the time column ``name`` (``index`` 1-based) from
    its TUNITn (:func:`time_scale`: 1 for seconds, 86400 for days), else
    ``default`` (the scale of the table's TIMEUNIT). Another unit (an
    absolute ``'MJD'``, ``'ms'``): ``ValueError`` naming ``where``, the column
    and the unit when ``strict`` (``what`` says whose values, e.g. ``"GTI
    times"``), else a warning (``stacklevel`` for it) and ``default``. Eager
    (header only)."""
    key = f"TUNIT{index}"
    if not has_value(header, key):
        return default
    unit = str(header[key]).strip()
    try:
        return time_scale(unit, where)
    except ValueError:
        said = f"{where}: column {name} has {key}={unit!r}"
    if strict:
        raise ValueError(f"{said}; {what} must be in seconds ('s') or days ('d') of mission time since MJDREF")
    warnings.warn(f"{said}, not 's' or 'd'; reading it in the TIMEUNIT ({default:g} s per unit)",
                  stacklevel=stacklevel)
    return default


def check_column_time_unit(header, index: int, name: str, where) -> None:
    """``ValueError`` naming ``where`` and column ``name`` unless its TUNITn
    (``index`` 1-based) is seconds (``'s'``, ``'sec'``, ``'second(s)'``, any
    case) or absent (:func:`column_time_scale` 1): xcube reads event TIME and
    GTI START/STOP as seconds and does not convert them (a TIME column in
    days would silently be read as seconds). Eager (header only)."""
    try:
        if column_time_scale(header, index, name, 1.0, where) == 1.0:
            return
    except ValueError:
        pass
    u = str(header[f"TUNIT{index}"]).strip()
    raise ValueError(f"{where}: column {name} has TUNIT{index}={u!r}: xcube needs times in seconds and does not "
                     f"convert them; convert {name} to seconds (x 86400 for days) and set TUNIT{index} = 's'")
