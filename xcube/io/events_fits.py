"""OGIP event files -> EventList (``xarray.Dataset`` with dim ``event``).

Uncompressed, time-sorted files are memory-mapped: every Dask chunk maps the
file, copies its rows of one column into native byte order and unmaps it, so
opening reads only headers plus one streaming pass over TIME (to check
ordering, NaN and negative values). Compressed or unsorted files are converted
once into the Zarr event cache (:mod:`xcube.io.cache`), sorted by time, and
opened from there.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
from astropy.io import fits

from .. import gti as gtimod
from .._version import __version__
from ..missions import MissionProfile, detect
from .fitsutil import column_scaling, find_column, is_compressed, merged_header, open_fits

__all__ = ["read_fits_header", "open_fits_events", "load_fits_events", "DEFAULT_CHUNK", "EventsMeta"]

log = logging.getLogger("xcube.io")

DEFAULT_CHUNK = 4_194_304  # events per Dask chunk (~32 MB of float64)
_SCAN_ROWS = 2_097_152

# header keyword -> attr name
_ATTR_KEYS = {
    "OBS_ID": "obs_id",
    "OBJECT": "object",
    "TIMESYS": "timesys",
    "DATAMODE": "datamode",
    "SUBMODE": "submode",
    "RA_PNT": "ra_pnt",
    "DEC_PNT": "dec_pnt",
    "PA_PNT": "pa_pnt",
    "FILTER": "filter",
    "EXPIDSTR": "expid",
    "DATE-OBS": "date_obs",
    "DATE-END": "date_end",
    "TELESCOP": "telescop",
    "INSTRUME": "instrume",
    "TIMEREF": "timeref",
    "TIMEUNIT": "timeunit",
}


@dataclass
class EventsMeta:
    """What the header pass learns about an event file (no event data read)."""

    path: str
    profile: MissionProfile
    header: dict
    extname: str
    nrows: int
    columns: dict  # lower-case name -> (file name, 1-based index, tform)
    timezero: float
    compressed: str | None
    data_offset: int | None
    row_dtype: np.dtype | None
    gti: tuple
    ccd_gti: dict
    attrs: dict


def _mjdref(h: dict, path) -> float:
    if "MJDREFI" in h:
        return float(np.float64(h["MJDREFI"]) + np.float64(h.get("MJDREFF", 0.0)))
    if "MJDREF" in h:
        return float(h["MJDREF"])
    warnings.warn(f"{path}: no MJDREF/MJDREFI keyword; mjdref attr set to NaN", stacklevel=3)
    return float("nan")


def _scalar_columns(hdu: fits.BinTableHDU) -> dict:
    """Columns with one element per row (vector, bit and string columns are skipped)."""
    out = {}
    for i, col in enumerate(hdu.columns, start=1):
        fmt = col.format
        code = fmt.format if hasattr(fmt, "format") else str(fmt)[-1]
        rep = getattr(fmt, "repeat", 1)
        if rep != 1 or code in ("X", "A", "P", "Q", "C", "M"):
            continue
        out[col.name.lower()] = (col.name, i, code)
    return out


def _find_events_hdu(hdul, profile_ext: str, path):
    for hdu in hdul[1:]:
        if isinstance(hdu, fits.BinTableHDU) and hdu.name.upper() == profile_ext.upper():
            return hdu
    names = [h.name for h in hdul]
    raise ValueError(f"{path}: no {profile_ext} extension (extensions: {names}); is this an event file?")


def _read_gtis(hdul, profile: MissionProfile, path, header) -> tuple[tuple, dict]:
    """Per-CCD and combined GTIs in the events' time frame.

    Each GTI extension's own TIMEZERO is applied. Tables with a CCD (``CCDID``
    keyword or ``STDGTInn``) are intersected per CCD; observation-wide tables
    (no CCD) are intersected with every CCD. The combined set is the union over
    CCDs (time when any CCD was live), which is what exposure uses.
    """
    start_col, stop_col = profile.gti_columns
    per_ccd: dict = {}
    global_sets = []
    for hdu in hdul[1:]:
        if not isinstance(hdu, fits.BinTableHDU) or not profile.is_gti_extension(hdu.name):
            continue
        names = hdu.columns.names
        s, e = find_column(names, start_col), find_column(names, stop_col)
        if s is None or e is None:
            continue
        tz = float(hdu.header.get("TIMEZERO", 0.0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = hdu.data
        g = gtimod.normalize(
            np.asarray(data[s], dtype=np.float64) + tz,
            np.asarray(data[e], dtype=np.float64) + tz,
            source=f"{path}[{hdu.name}]",
        )
        ccd = profile.ccd_of_gti_extension(hdu.name, hdu.header)
        if ccd is None:
            global_sets.append(g)
        else:
            per_ccd.setdefault(ccd, []).append(g)
    ccd_gti = {c: gtimod.intersection(*sets, *global_sets) for c, sets in sorted(per_ccd.items())}
    if ccd_gti:
        combined = gtimod.union(*ccd_gti.values())
    elif global_sets:
        combined = gtimod.intersection(*global_sets)
    else:
        t0, t1 = header.get("TSTART"), header.get("TSTOP")
        warnings.warn(
            f"{path}: no GTI extension matching {list(profile.gti_extensions)}; using TSTART-TSTOP "
            f"({t0} - {t1}) as the only good interval",
            stacklevel=3,
        )
        if t0 is None or t1 is None:
            raise ValueError(f"{path}: no GTI extension and no TSTART/TSTOP keywords; cannot define good time")
        tz = float(header.get("TIMEZERO", 0.0))
        combined = (np.array([float(t0) + tz]), np.array([float(t1) + tz]))
    return combined, ccd_gti


def read_fits_header(path, instrument: str | None = None) -> EventsMeta:
    """Read headers and GTIs of an event file (eager, no event column data)."""
    path = str(path)
    with open_fits(path) as hdul:
        prim = hdul[0].header
        # find the events table first with a generic name, then detect the mission
        ext_guess = "EVENTS"
        hdu = None
        for h in hdul[1:]:
            if isinstance(h, fits.BinTableHDU) and h.name.upper() == ext_guess:
                hdu = h
                break
        header = merged_header(prim, hdu.header if hdu is not None else fits.Header())
        profile = detect(header, path=path, instrument=instrument)
        if hdu is None or profile.events_extension.upper() != ext_guess:
            hdu = _find_events_hdu(hdul, profile.events_extension, path)
            header = merged_header(prim, hdu.header)
        nrows = int(hdu.header["NAXIS2"])
        cols = _scalar_columns(hdu)
        tname = profile.columns.get("time", "TIME")
        if find_column([c[0] for c in cols.values()], tname) is None:
            raise ValueError(f"{path}[{hdu.name}]: no {tname} column (columns: {hdu.columns.names})")
        if nrows == 0:
            raise ValueError(f"{path}[{hdu.name}]: empty event list (NAXIS2 = 0)")
        comp = is_compressed(path)
        data_offset = row_dtype = None
        if comp is None:
            info = hdu.fileinfo()
            data_offset = int(info["datLoc"])
            row_dtype = hdu.columns.dtype.newbyteorder(">")  # FITS tables are big-endian
            need = data_offset + nrows * int(hdu.header["NAXIS1"])
            have = Path(path).stat().st_size
            if have < need:
                raise OSError(
                    f"{path}: truncated file: {hdu.name} needs {need} bytes, the file has {have}; "
                    "download it again"
                )
        gti, ccd_gti = _read_gtis(hdul, profile, path, header)
    attrs = _attrs(header, profile, path, hdu_name=hdu.name, cols=cols)
    attrs["tstart"] = float(header.get("TSTART", gti[0][0] if gti[0].size else np.nan)) + float(
        header.get("TIMEZERO", 0.0)
    )
    attrs["tstop"] = float(header.get("TSTOP", gti[1][-1] if gti[1].size else np.nan)) + float(
        header.get("TIMEZERO", 0.0)
    )
    return EventsMeta(
        path=path,
        profile=profile,
        header=header,
        extname=hdu.name,
        nrows=nrows,
        columns=cols,
        timezero=float(header.get("TIMEZERO", 0.0)),
        compressed=comp,
        data_offset=data_offset,
        row_dtype=row_dtype,
        gti=gti,
        ccd_gti=ccd_gti,
        attrs=attrs,
    )


def _attrs(h: dict, profile: MissionProfile, path, hdu_name, cols) -> dict:
    a = {
        "mission": profile.mission,
        "instrument": profile.instrument,
        "profile": profile.name,
        "source": str(Path(path).resolve()),
        "mjdref": _mjdref(h, path),
        "xcube_version": __version__,
    }
    for key, name in _ATTR_KEYS.items():
        if key in h and h[key] is not None:
            v = h[key]
            a[name] = v.strip() if isinstance(v, str) else v
    a.setdefault("obs_id", "")
    a.setdefault("object", "")
    a.setdefault("timesys", "TT")
    # WCS of the X/Y sky columns, as plain image-WCS keywords (axis 1 = x, axis 2 = y)
    for axis, key in ((1, "x"), (2, "y")):
        fname = profile.columns.get(key, key.upper())
        entry = cols.get(fname.lower())
        if entry is None:
            continue
        i = entry[1]
        for src, dst in (("TCTYP", "CTYPE"), ("TCRVL", "CRVAL"), ("TCRPX", "CRPIX"), ("TCDLT", "CDELT"), ("TCUNI", "CUNIT")):
            if f"{src}{i}" in h:
                v = h[f"{src}{i}"]
                a[f"{dst}{axis}"] = v.strip() if isinstance(v, str) else float(v)
        for src, dst in (("TLMIN", f"{key}_min"), ("TLMAX", f"{key}_max")):
            if f"{src}{i}" in h:
                a[dst] = float(h[f"{src}{i}"])
    if "CDELT1" not in a and "x" in cols:
        a["CDELT1"] = -profile.pixel_arcsec / 3600.0
        a["CDELT2"] = profile.pixel_arcsec / 3600.0
    return a


class _FitsColumn:
    """Array-like over one column of a memory-mapped FITS table (for ``da.from_array``)."""

    def __init__(self, path, offset, nrows, row_dtype, field, dtype, scale, zero, add, logical):
        self.path, self.offset, self.nrows = path, offset, nrows
        self.row_dtype, self.field = row_dtype, field
        self.dtype = np.dtype(dtype)
        self.shape = (nrows,)
        self.ndim = 1
        self.scale, self.zero, self.add, self.logical = scale, zero, add, logical

    def __getitem__(self, key):
        sl = key[0] if isinstance(key, tuple) else key
        mm = np.memmap(self.path, dtype=self.row_dtype, mode="r", offset=self.offset, shape=(self.nrows,))
        raw = mm[sl][self.field]
        if self.logical:
            out = raw == ord("T")
        elif self.scale != 1.0 or self.zero != 0.0:
            out = raw.astype(np.float64) * self.scale + self.zero
            out = out.astype(self.dtype)
        else:
            out = raw.astype(self.dtype)
        if self.add:
            out += self.add
        del mm
        return out


def _out_dtype(code: str, scale: float, zero: float) -> np.dtype:
    base = {"L": bool, "B": np.uint8, "I": np.int16, "J": np.int32, "K": np.int64, "E": np.float32, "D": np.float64}
    if code == "L":
        return np.dtype(bool)
    if scale == 1.0 and zero != 0.0 and code in "IJKB":
        # unsigned-integer convention (TZERO = 2**(bits-1)) or plain offset
        return np.dtype(np.int64)
    if scale != 1.0:
        return np.dtype(np.float64)
    return np.dtype(base[code])


def _scan_time(meta: EventsMeta, tcol: _FitsColumn) -> bool:
    """One streaming pass over TIME: raise on NaN/negative, return sortedness."""
    last = -np.inf
    ok = True
    for a in range(0, meta.nrows, _SCAN_ROWS):
        t = tcol[slice(a, min(a + _SCAN_ROWS, meta.nrows))]
        if np.isnan(t).any():
            raise ValueError(f"{meta.path}: {int(np.isnan(t).sum())} NaN TIME values near row {a}; fix the file")
        if (t < 0).any():
            raise ValueError(f"{meta.path}: negative TIME values near row {a} (min {t.min()}); not a mission time")
        if ok and (t[0] < last or np.any(t[1:] < t[:-1])):
            ok = False
        last = t[-1]
    return ok


def _variable_names(meta: EventsMeta) -> dict:
    """lower-case file column -> variable name (time/x/y/pi renamed per profile)."""
    rename = {v.lower(): k for k, v in meta.profile.columns.items()}
    return {c: rename.get(c, c) for c in meta.columns}


def open_fits_events(meta: EventsMeta, chunks: int | None = None):
    """Lazy EventList over a memory-mapped, uncompressed FITS file.

    Returns None when the file is not time-sorted (the caller then converts it
    into the Zarr cache). Reads TIME once, chunk by chunk, to check it.
    """
    chunks = int(chunks or DEFAULT_CHUNK)
    names = _variable_names(meta)
    arrays = {}
    for col, (fname, idx, code) in meta.columns.items():
        scale, zero = column_scaling(meta.header, idx)
        var = names[col]
        dtype = np.float64 if var == "time" else _out_dtype(code, scale, zero)
        arr = _FitsColumn(
            meta.path, meta.data_offset, meta.nrows, meta.row_dtype, fname, dtype, scale, zero,
            meta.timezero if var == "time" else 0.0, code == "L",
        )
        arrays[var] = arr
    if not _scan_time(meta, arrays["time"]):
        return None
    token = f"{Path(meta.path).resolve()}-{Path(meta.path).stat().st_mtime_ns}"
    data = {
        var: da.from_array(arr, chunks=(chunks,), lock=False, asarray=False, name=f"xcube-fits-{var}-{abs(hash(token))}")
        for var, arr in arrays.items()
    }
    return build_dataset(meta, data)


def load_fits_events(meta: EventsMeta) -> dict:
    """Read every scalar column into memory, sorted by time (eager; used to
    fill the Zarr cache for compressed or unsorted files)."""
    names = _variable_names(meta)
    with open_fits(meta.path, memmap=False) as hdul:
        hdu = hdul[meta.extname]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                table = hdu.data
                if table is None or len(table) != meta.nrows:
                    raise OSError(f"{meta.path}: truncated file: read {0 if table is None else len(table)} of {meta.nrows} events")
                cols = {}
                for col, (fname, idx, code) in meta.columns.items():
                    v = np.asarray(table[fname])
                    var = names[col]
                    if var == "time":
                        v = v.astype(np.float64) + meta.timezero
                    cols[var] = v.astype(v.dtype.newbyteorder("="))
        except (EOFError, OSError, ValueError, TypeError) as exc:
            if isinstance(exc, OSError) and "truncated" in str(exc):
                raise
            raise OSError(f"{meta.path}: corrupt or truncated FITS data in {meta.extname} ({exc})") from exc
    t = cols["time"]
    if np.isnan(t).any():
        raise ValueError(f"{meta.path}: {int(np.isnan(t).sum())} NaN TIME values; fix the file")
    if (t < 0).any():
        raise ValueError(f"{meta.path}: negative TIME values (min {t.min()}); not a mission time")
    if np.any(t[1:] < t[:-1]):
        order = np.argsort(t, kind="stable")
        cols = {k: v[order] for k, v in cols.items()}
        log.info("%s: events were not time-sorted; sorted %d events", meta.path, t.size)
    return cols


def build_dataset(meta: EventsMeta, data: dict) -> xr.Dataset:
    """Assemble an EventList from column arrays (numpy or dask) and the metadata."""
    profile = meta.profile
    data = dict(data)
    if "pi" in data and "energy" not in data:
        pi = data["pi"]
        if isinstance(pi, da.Array):
            data["energy"] = pi.map_blocks(profile.energy, dtype=np.float32)
        else:
            data["energy"] = profile.energy(pi)
        if profile.pi_to_kev is None:
            warnings.warn(
                f"{meta.path}: {profile.mission} {profile.instrument}: {profile.energy_note}; "
                "energy is NaN, use the channel column",
                stacklevel=3,
            )
    return events_dataset(data, meta.gti, meta.ccd_gti, meta.attrs)


_UNITS = {"time": "s", "energy": "keV", "x": "pixel", "y": "pixel", "pi": "channel"}


def events_dataset(columns: dict, gti, ccd_gti: dict, attrs: dict) -> xr.Dataset:
    """Build the EventList Dataset from columns, GTIs and attrs (no I/O)."""
    order = ["time", "x", "y", "pi", "energy"]
    names = [n for n in order if n in columns] + sorted(n for n in columns if n not in order)
    data_vars = {}
    for n in names:
        v = xr.Variable(("event",), columns[n])
        if n in _UNITS:
            v.attrs["units"] = _UNITS[n]
        data_vars[n] = v
    data_vars["gti_start"] = xr.Variable(("gti",), np.asarray(gti[0], dtype=np.float64), {"units": "s"})
    data_vars["gti_stop"] = xr.Variable(("gti",), np.asarray(gti[1], dtype=np.float64), {"units": "s"})
    if ccd_gti:
        ccds, starts, stops = [], [], []
        for c, (s, e) in ccd_gti.items():
            ccds += [c] * len(s)
            starts.append(s)
            stops.append(e)
        data_vars["ccd_gti_ccd"] = xr.Variable(("ccd_gti",), np.asarray(ccds, dtype=np.int16))
        data_vars["ccd_gti_start"] = xr.Variable(("ccd_gti",), np.concatenate(starts), {"units": "s"})
        data_vars["ccd_gti_stop"] = xr.Variable(("ccd_gti",), np.concatenate(stops), {"units": "s"})
    attrs = dict(attrs)
    attrs["exposure"] = gtimod.exposure(gti)
    attrs.setdefault("selection", [])
    return xr.Dataset(data_vars, attrs=attrs)
