"""Minimal FITS reading/writing with numpy only, for the fake tools.

The fake tools start as separate processes for every call; importing
``astropy.io.fits`` costs ~0.4 s of CPU each time, numpy ~0.1 s. This module
covers what the fakes need: a primary HDU (header, optional image) and binary
table extensions with scalar columns (formats L, B, I, J, K, E, D, nA, with
TSCAL/TZERO), and header updates. Files are standard FITS (checked with astropy
in the tests).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

BLOCK = 2880
_TFORM = {"L": "S1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
_CODE = {np.dtype(np.float64): "D", np.dtype(np.float32): "E", np.dtype(np.int64): "K", np.dtype(np.int32): "J",
         np.dtype(np.int16): "I", np.dtype(np.uint8): "B", np.dtype(bool): "L"}


class HDU:
    """A header (ordered dict) with either table columns (name -> array) or an image."""

    def __init__(self, name="", header=None, columns=None, image=None):
        self.header = dict(header or {})
        self.columns = columns  # dict name -> 1-D array, or None
        self.image = image
        if name:
            self.header["EXTNAME"] = name

    @property
    def name(self) -> str:
        return str(self.header.get("EXTNAME", "PRIMARY")).strip().upper()

    @property
    def names(self) -> list[str]:
        return list(self.columns or {})

    def __repr__(self):
        return f"HDU({self.name}, cols={self.names})"


class HDUList(list):
    def __getitem__(self, key):
        if isinstance(key, str):
            for h in self:
                if h.name == key.upper():
                    return h
            raise KeyError(f"no extension {key!r} (have {[h.name for h in self]})")
        return list.__getitem__(self, key)

    def get(self, key):
        try:
            return self[key]
        except (KeyError, IndexError):
            return None


# --------------------------------------------------------------------------
# reading


def _parse_value(raw: str):
    s = raw.strip()
    if s.startswith("'"):
        out, i = [], 1
        while i < len(s):
            if s[i] == "'":
                if i + 1 < len(s) and s[i + 1] == "'":
                    out.append("'")
                    i += 2
                    continue
                break
            out.append(s[i])
            i += 1
        return "".join(out).rstrip()
    v = s.split("/", 1)[0].strip()
    if v in ("T", "F"):
        return v == "T"
    if not v:
        return None
    try:
        return int(v)
    except ValueError:
        try:
            return float(v.replace("D", "E"))
        except ValueError:
            return v


def _read_header(buf: bytes, pos: int) -> tuple[dict, int]:
    header = {}
    while True:
        if pos + BLOCK > len(buf):
            raise OSError("truncated FITS header")
        block = buf[pos:pos + BLOCK].decode("ascii", errors="replace")
        pos += BLOCK
        for i in range(0, BLOCK, 80):
            card = block[i:i + 80]
            key = card[:8].strip()
            if key == "END":
                return header, pos
            if card[8:10] == "= " and key:
                header[key] = _parse_value(card[10:])


def _table_dtype(h: dict):
    fields = []
    for i in range(1, int(h["TFIELDS"]) + 1):
        form = str(h[f"TFORM{i}"]).strip()
        rep = "".join(c for c in form if c.isdigit()) or "1"
        code = form.lstrip("0123456789")[0]
        if code == "A":
            fields.append((h[f"TTYPE{i}"], f"S{rep}"))
        elif rep == "1":
            fields.append((h[f"TTYPE{i}"], _TFORM[code]))
        else:
            fields.append((h[f"TTYPE{i}"], _TFORM[code], (int(rep),)))
    return np.dtype(fields)


def read(path) -> HDUList:
    """All HDUs of a FITS file (eager)."""
    buf = Path(path).read_bytes()
    hdus, pos = HDUList(), 0
    while pos < len(buf):
        if not buf[pos:pos + 80].strip(b" \0"):
            break
        h, pos = _read_header(buf, pos)
        naxis = int(h.get("NAXIS", 0))
        dims = [int(h.get(f"NAXIS{i}", 0)) for i in range(1, naxis + 1)]
        size = int(np.prod(dims)) * abs(int(h.get("BITPIX", 8))) // 8 if naxis else 0
        size += int(h.get("PCOUNT", 0))
        data = buf[pos:pos + size]
        if len(data) < size:
            raise OSError(f"{path}: truncated data")
        hdu = HDU(header=h)
        if h.get("XTENSION", "").strip() == "BINTABLE":
            dt = _table_dtype(h)
            rec = np.frombuffer(data[: dt.itemsize * dims[1]], dtype=dt)
            cols = {}
            for i, name in enumerate(dt.names, start=1):
                a = rec[name]
                if a.dtype.kind == "S" and str(h[f"TFORM{i}"]).strip().endswith("L"):
                    a = a == b"T"
                elif a.dtype.kind == "S":
                    a = np.char.rstrip(a.astype(str))
                else:
                    a = a.astype(a.dtype.newbyteorder("="))
                    if h.get(f"TSCAL{i}", 1) != 1 or h.get(f"TZERO{i}", 0) != 0:
                        a = a * h.get(f"TSCAL{i}", 1) + h.get(f"TZERO{i}", 0)
                cols[name] = a
            hdu.columns = cols
        elif naxis:
            bp = int(h["BITPIX"])
            dt = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}[bp]
            hdu.image = np.frombuffer(data, dtype=dt).reshape(dims[::-1]).astype(np.dtype(dt).newbyteorder("="))
        hdus.append(hdu)
        pos += -(-size // BLOCK) * BLOCK
    return hdus


def getheader(path, ext=0) -> dict:
    return read(path)[ext].header


# --------------------------------------------------------------------------
# writing


def _fmt_value(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return f"{'T' if v else 'F':>20}"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):>20}"
    if isinstance(v, (float, np.floating)):
        s = f"{float(v):.16G}"
        if "." not in s and "E" not in s and "N" not in s:
            s += ".0"
        return f"{s:>20}"
    s = str(v).replace("'", "''")
    return f"'{s:<8}'"


def _card(key, value=None, comment=None) -> str:
    if value is None and key in ("COMMENT", "HISTORY"):
        return f"{key:<8}{comment or ''}"[:80].ljust(80)
    c = f"{key.upper():<8}= {_fmt_value(value)}"
    if comment:
        c += f" / {comment}"
    return c[:80].ljust(80)


def _header_bytes(cards: list[str]) -> bytes:
    text = "".join(cards) + "END".ljust(80)
    text += " " * (-len(text) % BLOCK)
    return text.encode("ascii")


_INDEXED = ("TTYPE", "TFORM", "TUNIT", "TSCAL", "TZERO", "TNULL", "TDISP", "TDIM", "TCTYP", "TCRVL", "TCRPX",
            "TCDLT", "TCUNI", "TLMIN", "TLMAX", "TCROT", "TCD")
_STRUCTURAL = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND", "PCOUNT", "GCOUNT",
               "TFIELDS", "END"}


def _user_cards(header: dict, skip_table_keys: bool) -> list[str]:
    out = []
    for k, v in header.items():
        ku = k.upper()
        if ku in _STRUCTURAL or v is None:
            continue
        if skip_table_keys and any(ku.startswith(p) and ku[len(p):].isdigit() for p in _INDEXED):
            continue
        out.append(_card(ku, v))
    return out


def _column_array(name, v):
    a = np.asarray(v)
    if a.dtype.kind == "U":
        a = a.astype("S")
    if a.dtype.kind == "S":
        return a, f"{max(1, a.dtype.itemsize)}A"
    if a.dtype == np.uint16:
        a = a.astype(np.int32)
    elif a.dtype == np.uint32 or (a.dtype.kind == "u" and a.dtype.itemsize > 1):
        a = a.astype(np.int64)
    code = _CODE.get(a.dtype)
    if code is None:
        a = a.astype(np.int64 if a.dtype.kind in "iu" else np.float64)
        code = _CODE[a.dtype]
    return a, code


def _table_bytes(hdu: HDU) -> tuple[list[str], bytes]:
    cols = hdu.columns or {}
    n = len(next(iter(cols.values()))) if cols else 0
    arrays, fields, forms = [], [], []
    for name, v in cols.items():
        a, code = _column_array(name, v)
        width = a.shape[1] if a.ndim == 2 and code != "L" and not code.endswith("A") else None
        if code == "L":
            a = np.where(a, b"T", b"F").astype("S1")
            fields.append((name, "S1"))
        elif code.endswith("A"):
            fields.append((name, a.dtype.str))
        elif width is not None:  # fixed-width vector column (e.g. an RMF MATRIX)
            fields.append((name, a.dtype.newbyteorder(">").str, (width,)))
        else:
            fields.append((name, a.dtype.newbyteorder(">").str))
        arrays.append(a)
        forms.append(f"{width}{code}" if width is not None else code)
    dt = np.dtype(fields)
    rec = np.zeros(n, dtype=dt)
    for f, a in zip(fields, arrays):
        rec[f[0]] = a
    data = rec.tobytes()
    cards = [_card("XTENSION", "BINTABLE"), _card("BITPIX", 8), _card("NAXIS", 2), _card("NAXIS1", dt.itemsize),
             _card("NAXIS2", n), _card("PCOUNT", 0), _card("GCOUNT", 1), _card("TFIELDS", len(fields))]
    extra = hdu.header.get("_colkeys", {})
    for i, (name, form) in enumerate(zip([f[0] for f in fields], forms), start=1):
        cards += [_card(f"TTYPE{i}", name), _card(f"TFORM{i}", form)]
        for k, v in extra.get(name, {}).items():
            cards.append(_card(f"{k}{i}", v))
    hdr = {k: v for k, v in hdu.header.items() if k != "_colkeys"}
    cards += _user_cards(hdr, skip_table_keys=True)
    return cards, data


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % BLOCK)


def write(path, hdus, overwrite=True) -> str:
    """Write HDUs (first = primary, may carry ``image``) atomically."""
    out = []
    prim = hdus[0]
    img = prim.image
    if img is not None:
        img = np.asarray(img)
        bp = {np.dtype(np.uint8): 8, np.dtype(np.int16): 16, np.dtype(np.int32): 32, np.dtype(np.int64): 64,
              np.dtype(np.float32): -32, np.dtype(np.float64): -64}[img.dtype]
        cards = [_card("SIMPLE", True), _card("BITPIX", bp), _card("NAXIS", img.ndim)]
        cards += [_card(f"NAXIS{i + 1}", s) for i, s in enumerate(img.shape[::-1])]
        cards += [_card("EXTEND", True)] + _user_cards({k: v for k, v in prim.header.items() if k != "EXTNAME"},
                                                       False)
        out.append(_header_bytes(cards) + _pad(img.astype(img.dtype.newbyteorder(">")).tobytes()))
    else:
        cards = [_card("SIMPLE", True), _card("BITPIX", 8), _card("NAXIS", 0), _card("EXTEND", True)]
        cards += _user_cards({k: v for k, v in prim.header.items() if k != "EXTNAME"}, False)
        out.append(_header_bytes(cards))
    for h in hdus[1:]:
        cards, data = _table_bytes(h)
        out.append(_header_bytes(cards) + _pad(data))
    tmp = f"{path}.part"
    with open(tmp, "wb") as fh:
        for b in out:
            fh.write(b)
    os.replace(tmp, path)
    return str(path)


def table(columns: dict, name: str, header: dict | None = None, wcs: dict | None = None) -> HDU:
    """Binary-table HDU; ``wcs``: column -> (ctype, crval, crpix, cdelt) written as TCTYP/TCRVL/TCRPX/TCDLT."""
    h = dict(header or {})
    colkeys = {k: dict(v) for k, v in h.get("_colkeys", {}).items()}
    for col, (ct, cv, cp, cd) in (wcs or {}).items():
        if col in columns:
            colkeys[col] = {"TCTYP": ct, "TCRVL": float(cv), "TCRPX": float(cp), "TCDLT": float(cd), "TCUNI": "deg"}
    h["_colkeys"] = colkeys
    return HDU(name=name, header=h, columns=dict(columns))


def column_wcs(hdu: HDU) -> dict:
    """column -> (ctype, crval, crpix, cdelt) from TCTYPn/TCRVLn/TCRPXn/TCDLTn."""
    out = {}
    for i, name in enumerate(hdu.names, start=1):
        h = hdu.header
        if f"TCTYP{i}" in h:
            out[name] = (h[f"TCTYP{i}"], h[f"TCRVL{i}"], h[f"TCRPX{i}"], h[f"TCDLT{i}"])
    return out


def column_keys(hdu: HDU) -> dict:
    """column -> {keyword prefix: value} of its indexed keywords (TLMIN, TLMAX,
    TUNIT, TNULL, TCTYP...; not TTYPE/TFORM), to carry them over on rewrite."""
    out = {}
    for i, name in enumerate(hdu.names, start=1):
        keys = {p: hdu.header[f"{p}{i}"] for p in _INDEXED if p not in ("TTYPE", "TFORM")
                and f"{p}{i}" in hdu.header}
        if keys:
            out[name] = keys
    return out


def update_header(path, ext, updates: dict) -> None:
    """Rewrite a file with keywords added to one HDU's header (column keywords kept)."""
    hdus = read(path)
    h = hdus[ext]
    wcs = None
    clean = {k: v for k, v in h.header.items() if not any(k.startswith(p) and k[len(p):].isdigit() for p in _INDEXED)}
    if h.columns is not None:
        clean["_colkeys"] = column_keys(h)
    clean.update(updates)
    if h.columns is not None:
        hdus[ext] = table(h.columns, "", clean, wcs)
    else:
        h.header = clean
    write(path, hdus)
