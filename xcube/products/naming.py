"""One naming scheme for product files, and a product index.

Names: ``<obsid>_<instrument>_<kind>[_<emin>-<emax>keV][_<binsize>]
[_<norm>_<segment>s_<rebin>]<suffix>``, e.g.

- ``0123456789_EPN_lc_0.5-10keV_10s.lc`` (a light curve),
- ``P010129900101_LE_lcnet_1-10keV_7.8125ms.lc`` (HXMT net light curve),
- ``0123456789_EPN_pds_0.5-10keV_1.95312ms_leahy_256s_log0.06.fits``.

Every component goes through :func:`xcube.io.paths.safe_component`, so header
values cannot steer a file elsewhere. The rebin tag is ``log<f>`` for
logarithmic rebinning by ``f``, ``lin<n>`` for ``n`` frequencies per bin and
``raw`` for none.

The index (``products.parquet`` in the products directory) has one row per
product with its parameters (:data:`INDEX_COLUMNS`), so products are found
with a query instead of by parsing names; it is rewritten atomically under a
file lock, so parallel writers do not lose rows.
"""
from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .._version import __version__
from ..io.paths import safe_component

__all__ = ["format_binsize", "format_band", "format_rebin", "product_name", "output_file", "add_to_index", "read_index",
           "find_products", "INDEX_NAME", "INDEX_COLUMNS"]

INDEX_NAME = "products.parquet"
INDEX_COLUMNS = ["path", "kind", "obs_id", "mission", "instrument", "energy_lo", "energy_hi", "time_bin", "norm",
                 "segment", "rebin", "n_segments", "tstart", "tstop", "mjdref", "created", "xcube_version", "params"]


def format_binsize(seconds: float) -> str:
    """Compact label of a bin size given in s: ``1s``, ``0.5s``,
    ``7.8125ms``, ``488.281us``. Eager (string formatting)."""
    s = float(seconds)
    if s <= 0 or not math.isfinite(s):
        raise ValueError(f"bin size must be a positive number of seconds, got {seconds}")
    if s >= 1:
        return f"{s:g}s"
    if s >= 1e-3:
        return f"{s * 1e3:g}ms"
    return f"{s * 1e6:g}us"


def format_band(band) -> str:
    """``0.5-10keV`` for the band (0.5, 10.0) [keV]. Eager (string
    formatting)."""
    lo, hi = (float(v) for v in band)
    return f"{lo:g}-{hi:g}keV"


def format_rebin(rebin) -> str:
    """``log0.06`` (rebin = -0.06), ``lin8`` (rebin = 8) or ``raw`` (None / 0).
    Eager (string formatting)."""
    if rebin is None or rebin == 0:
        return "raw"
    r = float(rebin)
    return f"log{abs(r):g}" if r < 0 else f"lin{int(r)}"


_SUFFIX = {"pds": ".fits", "hardness": ".fits", "image": ".fits", "spectrum": ".pha"}


def product_name(obs_id, instrument, kind: str, *, energy_band=None, time_bin=None, norm=None, segment=None,
                 rebin=None, suffix: str | None = None) -> str:
    """The file name of a product (see the module text for the scheme).

    ``kind`` is ``lc``, ``lcbkg``, ``lcnet``, ``pds``, ``hardness``, ... ;
    ``norm``/``segment``/``rebin`` apply to power spectra. The default
    suffix is ``.lc`` for light curves, ``.fits`` for power spectra,
    hardness ratios and images, ``.pha`` for spectra. ``energy_band``
    ``(emin, emax)`` [keV] gives ``0.5-2keV``; ``time_bin`` and ``segment``
    are in s (``100s``, ``7.8125ms``). Eager (string formatting; reads
    nothing)."""
    parts = [safe_component(obs_id or "unknown", "obs_id"), safe_component(instrument or "unknown", "instrument"),
             safe_component(kind, "kind")]
    if energy_band is not None and np.ndim(energy_band) == 1:
        parts.append(format_band(energy_band))
    if time_bin is not None:
        parts.append(format_binsize(time_bin))
    if norm is not None:
        parts += [safe_component(norm, "norm"), f"{float(segment):g}s" if segment is not None else "all",
                  format_rebin(rebin)]
    return "_".join(parts) + (suffix if suffix is not None else _SUFFIX.get(kind, ".lc"))


def output_file(out, name) -> Path:
    """The file a command writes for ``--out OUT``: ``OUT`` itself, or, when
    ``OUT`` names a directory (an existing one, or any path ending in ``/``),
    ``OUT/<name()>``, the product's name in the scheme. ``name`` is a
    callable, evaluated only then. Eager (one file-system look-up at most)."""
    return Path(out) / name() if names_directory(out) else Path(out)


def names_directory(out) -> bool:
    """True when ``out`` is an existing directory or ends in ``/``."""
    text = os.fspath(out)
    return text.endswith(("/", os.sep)) or Path(text).is_dir()


def _row(root: Path, path: Path, attrs: dict, kind: str | None, params: dict) -> dict:
    a = {**attrs, **{k: v for k, v in params.items() if v is not None}}
    band = a.get("energy_band")
    single = band is not None and np.ndim(band) == 1 and len(band) == 2
    num = {k: (float(a[k]) if a.get(k) is not None else np.nan) for k in ("time_bin", "segment", "rebin", "tstart",
                                                                       "tstop", "mjdref")}
    extra = {k: v for k, v in params.items() if k not in INDEX_COLUMNS and k != "energy_band"}
    return {"path": os.path.relpath(Path(path).resolve(), root.resolve()), "kind": kind or str(a.get("kind", "")),
            "obs_id": str(a.get("obs_id", "") or ""), "mission": str(a.get("mission", "") or ""),
            "instrument": str(a.get("instrument", "") or ""),
            "energy_lo": float(band[0]) if single else np.nan, "energy_hi": float(band[1]) if single else np.nan,
            **num, "norm": str(a.get("norm", "") or ""),
            "n_segments": int(a.get("n_segments", 0) or 0),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "xcube_version": __version__,
            "params": json.dumps(extra, default=str, sort_keys=True)}


class _Lock:
    """Exclusive advisory lock on ``<index>.lock`` (POSIX ``flock``)."""

    def __init__(self, index: Path):
        self.path = index.with_name(f".{index.name}.lock")

    def __enter__(self):
        import fcntl

        self.fh = open(self.path, "a+")
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        import fcntl

        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()
        return False


def add_to_index(root, path, attrs: dict | None = None, *, kind: str | None = None, **params) -> Path:
    """Record the product ``path`` (under directory ``root``) in
    ``<root>/products.parquet``: its kind, observation, band, bin size,
    power-spectrum parameters (from ``attrs``, the product's attrs, and
    ``params``), creation time and xcube version; other ``params`` go to the
    JSON column ``params``. A product already listed is replaced. Reads and
    rewrites the index under a lock (the product itself is not read). Returns
    the index path. Eager: writes the index at once."""
    import pandas as pd

    from ..io.atomic import write_table

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    index = root / INDEX_NAME
    row = _row(root, Path(path), dict(attrs or {}), kind, params)
    with _Lock(index):
        table = read_index(root) if index.exists() else pd.DataFrame(columns=INDEX_COLUMNS)
        table = table[table["path"] != row["path"]]
        new = pd.DataFrame([row], columns=INDEX_COLUMNS)
        table = new if table.empty else pd.concat([table, new], ignore_index=True)
        write_table(index, table.sort_values("path", kind="stable").reset_index(drop=True))
    return index


def read_index(root):
    """The product index of a directory (``pandas.DataFrame``, columns
    :data:`INDEX_COLUMNS`, one row per product, ``path`` relative to the
    directory). Reads ``products.parquet`` eagerly."""
    import pandas as pd

    p = Path(root)
    index = p if p.suffix == ".parquet" else p / INDEX_NAME
    if not index.exists():
        raise FileNotFoundError(f"{index}: no product index; products written by xcube (xcube pds, xcube stitch, "
                                "the HXMT chain) are indexed in their directory")
    return pd.read_parquet(index)


def find_products(root, **criteria):
    """Rows of the index matching all ``criteria`` (``kind="pds"``,
    ``norm="leahy"``, ``obs_id=...``, ``energy_lo=1.0``); float columns
    match to 1e-9 relative (``energy_lo`` in keV). Reads the index eagerly;
    returns a DataFrame with one row per matching product."""
    table = read_index(root)
    keep = np.ones(len(table), bool)
    for k, v in criteria.items():
        if k not in table.columns:
            raise KeyError(f"find_products: no column {k!r}; columns are {list(table.columns)}")
        col = table[k]
        keep &= np.isclose(col.astype(float), float(v), rtol=1e-9) if col.dtype.kind == "f" else (col == v).values
    return table[keep].reset_index(drop=True)
