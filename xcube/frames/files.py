"""Recognising a night's CCD frames and opening them as lazy cubes.

* :func:`parse_name` - object, band and sequence number from a file name;
* :func:`scan_frames` - one row per file: kind (bias/flat/dark/science),
  object, band, mid-exposure time, exposure, shape, and the problem that
  keeps a malformed file out;
* :func:`stack_frames` - a lazy, Dask-chunked ``(frame, y, x)`` DataArray of
  the listed files (each chunk reads only its own files and rows);
* :func:`open_frames` - the whole night as an ``xarray.DataTree``:
  ``/bias``, ``/flat/<band>`` and ``/<object>/<band>``.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

log = logging.getLogger("xcube.frames")

__all__ = ["DEFAULT_PATTERNS", "NO_BAND", "parse_name", "raw_stem", "scan_frames", "stack_frames", "open_frames",
           "group_rows", "shape_text", "FrameReadError"]

_EXT = r"\.f(?:its?|ts)(?:\.gz|\.fz)?"
#: default file-name patterns (regular expressions with the groups obj, band, sn), tried in order:
#: automatic sky flats ``flat_R_1_R_001.fit``, dash form ``obj-0001R.fit`` / ``bias-0001.fits``,
#: underscore form ``obj_R_001.fits`` / ``flat_R_003.fit`` / ``bias_001.fits``.
DEFAULT_PATTERNS = (
    rf"^(?P<obj>flat)_(?P<band>[A-Za-z]{{1,2}})_\d{{1,2}}_[A-Za-z]{{1,2}}_(?P<sn>\d{{3,6}}){_EXT}$",
    rf"^(?P<obj>.+?)-(?P<sn>\d{{3,6}})(?P<band>[A-Za-z]{{0,2}}){_EXT}$",
    rf"^(?P<obj>.+?)_(?:(?P<band>[A-Za-z]{{1,2}})_)?(?P<sn>\d{{3,6}}){_EXT}$",
)
#: band of frames with neither a band in the name nor a FILTER keyword
NO_BAND = "none"
_FITS_NAME = re.compile(rf".*{_EXT}$", re.IGNORECASE)
_KIND_WORDS = (("bias", "bias"), ("zero", "bias"), ("flat", "flat"), ("dark", "dark"),
               ("light", "science"), ("object", "science"), ("science", "science"))
_COLUMNS = ["path", "name", "kind", "obj", "band", "sn", "hdu", "ny", "nx", "date_obs", "mjd", "exposure",
            "ra", "dec", "equinox", "radesys", "airmass", "gain", "saturation", "problem"]


def raw_stem(name: str) -> str:
    """A raw file name without its FITS (and compression) suffixes. Eager (text
    only)."""
    return re.sub(r"\.f(its?|ts)(\.gz|\.fz)?$", "", name, flags=re.IGNORECASE)


def parse_name(name: str, patterns=None) -> dict | None:
    """``{"obj", "band", "sn"}`` from a file name by the first matching pattern
    (regular expressions with named groups ``obj``, ``band``, ``sn``; all
    optional), or None when no pattern matches. Matching ignores case. Eager
    (text only)."""
    for pat in patterns or DEFAULT_PATTERNS:
        m = re.match(pat, name, re.IGNORECASE)
        if m:
            g = m.groupdict()
            return {"obj": g.get("obj") or "", "band": g.get("band") or "", "sn": int(g["sn"]) if g.get("sn") else -1}
    return None


def _kind_of(imagetyp: str) -> str | None:
    """Kind named by an IMAGETYP value ('Bias Frame', 'FLAT', 'Light Frame', ...)."""
    low = str(imagetyp).strip().lower()
    return next((kind for word, kind in _KIND_WORDS if word in low), None)


def _kind_of_name(obj: str) -> str | None:
    """Kind named by the object part of a file name (bias, zero, flat, skyflat, domeflat, dark)."""
    low = obj.strip().lower()
    if low.startswith(("bias", "zero")):
        return "bias"
    if low.startswith("dark"):
        return "dark"
    return "flat" if low.startswith(("flat", "skyflat", "domeflat", "twflat")) else None


def _image_hdu(hdul):
    """Index of the first HDU holding a 2-D image (also one stored as a cube
    of one plane, NAXIS = 3 with NAXIS3 = 1), or None."""
    for i, hdu in enumerate(hdul):
        if getattr(hdu, "is_image", False) and _is_2d(hdu.header) and hdu.size > 0:
            return i
    return None


def _is_2d(header) -> bool:
    naxis = header.get("NAXIS", 0)
    return naxis == 2 or (naxis == 3 and header.get("NAXIS3") == 1)


def _header_row(path: Path, patterns) -> dict:
    """One frame-table row from the header and the name (``problem`` says why a file is unusable)."""
    from ..io.fitsutil import open_fits

    row = dict.fromkeys(_COLUMNS)
    row.update(path=str(path), name=path.name, problem="", sn=-1)
    try:
        with open_fits(path) as hdul:
            idx = _image_hdu(hdul)
            if idx is None:
                cube = [(i, h.header.get("NAXIS3")) for i, h in enumerate(hdul)
                        if getattr(h, "is_image", False) and h.header.get("NAXIS", 0) == 3 and h.size > 0]
                row["problem"] = (f"no 2-D image: a 3-D image cube of {cube[0][1]} planes (HDU {cube[0][0]}); only "
                                  "single-plane images are read; split the planes into files" if cube else
                                  "no 2-D image in any HDU; is it a table or a spectrum?")
                return row
            hdr = hdul[0].header.copy()
            if idx:
                hdr.update({k: v for k, v in hdul[idx].header.items() if k not in ("COMMENT", "HISTORY", "")})
            row.update(hdu=idx, ny=int(hdr["NAXIS2"]), nx=int(hdr["NAXIS1"]), saturation=_saturation(hdr))
    except OSError as exc:
        msg = str(exc)  # (the reader's messages start with the path, which the row holds already)
        row["problem"] = msg.split(": ", 1)[1] if msg.startswith(f"{path}: ") else msg
        return row
    _identify(row, hdr, parse_name(path.name, patterns))
    date, start, date_problem = _date_obs(hdr)
    row.update(date_obs=date, mjd=start, exposure=_float(hdr, "EXPTIME", "EXPOSURE", "ITIME"),
               ra=hdr.get("RA", hdr.get("OBJCTRA")), dec=hdr.get("DEC", hdr.get("OBJCTDEC")),
               equinox=hdr.get("EQUINOX", hdr.get("EPOCH")), radesys=hdr.get("RADESYS", hdr.get("RADECSYS")),
               airmass=_float(hdr, "AIRMASS"), gain=_gain(hdr))
    if row["kind"] != "science" or row["problem"]:
        return row
    if date_problem:
        row["problem"] = date_problem
    elif not row["date_obs"]:
        row["problem"] = ("no DATE-OBS or MJD-OBS keyword: the frame cannot be timed; add DATE-OBS (UTC start of "
                          "exposure)")
    elif not np.isfinite(row["exposure"]):
        given = [k for k in ("EXPTIME", "EXPOSURE", "ITIME") if k in hdr]
        row["problem"] = (f"{given[0]} = {hdr[given[0]]!r} is not a number: the exposure is unknown; give it in "
                          "seconds" if given else "no EXPTIME keyword: the exposure is unknown; add EXPTIME [s]")
    elif row["exposure"] <= 0:
        row["problem"] = (f"EXPTIME = {row['exposure']:g}: the exposure of a science frame must be positive; "
                          "fix EXPTIME [s]")
    return row


#: largest plausible camera gain [e-/ADU]; CMOS cameras write their gain *setting* (0-600) as GAIN
_GAIN_MAX = 50.0


def _gain(hdr) -> float:
    """Gain [e-/ADU]: EGAIN (what ZWO/ASI, N.I.N.A. and SharpCap write in
    e-/ADU, next to the camera's gain setting in GAIN), else GAIN; a value
    outside (0, 50] e-/ADU is a setting, not a gain, and is ignored (NaN)."""
    for key in ("EGAIN", "GAIN"):
        value = _float(hdr, key)
        if np.isfinite(value):
            return value if 0 < value <= _GAIN_MAX else float("nan")
    return float("nan")


def _saturation(hdr) -> float:
    """Raw level [ADU] at which a pixel is saturated: the SATURATE (or
    DATAMAX) keyword, else the largest value of the stored integer type
    (BSCALE, BZERO applied: 65535 for unsigned 16-bit); NaN for float data."""
    for key in ("SATURATE", "DATAMAX"):
        value = _float(hdr, key)
        if np.isfinite(value) and value > 0:
            return value
    bitpix = int(hdr.get("BITPIX", -32))
    if bitpix <= 0:
        return float("nan")
    top = 255 if bitpix == 8 else 2 ** (bitpix - 1) - 1
    bscale, bzero = _float(hdr, "BSCALE"), _float(hdr, "BZERO")
    return top * (bscale if np.isfinite(bscale) else 1.0) + (bzero if np.isfinite(bzero) else 0.0)


def _identify(row: dict, hdr, parsed: dict | None) -> None:
    """Kind, object, band and sequence number: a file name that says bias,
    zero, flat or dark decides the kind (twilight flats are often written as
    'Light Frame'), IMAGETYP otherwise; the name gives object and band, the
    OBJECT and FILTER keywords fill what it does not. A band in the name that
    differs from FILTER (ignoring case) is kept, with a warning naming the file."""
    parsed = parsed or {"obj": "", "band": "", "sn": -1}
    kind = _kind_of_name(parsed["obj"]) or _kind_of(hdr.get("IMAGETYP", "")) or "science"
    obj = parsed["obj"] or str(hdr.get("OBJECT", "")).strip()
    header_band = str(hdr.get("FILTER", "")).strip()
    band = parsed["band"] or header_band
    if parsed["band"] and header_band and parsed["band"].lower() != header_band.lower():
        log.warning("%s: the file name says band %r, the FILTER keyword %r; band %r (the name's) is used; rename "
                    "the file, or pass patterns without a band group to take FILTER", row["path"], parsed["band"],
                    header_band, parsed["band"])
    if kind == "science" and not obj:
        row["problem"] = "no object name: the file name matches no pattern and OBJECT is missing"
    row.update(kind=kind, obj=obj, band=band or NO_BAND, sn=parsed["sn"])


#: TIMESYS values read, as astropy time scales (GPS is TAI - 19 s; UT is taken as UTC)
_TIMESYS = {"UTC": "utc", "UT": "utc", "TT": "tt", "TDT": "tt", "ET": "tt", "TAI": "tai", "IAT": "tai", "GPS": "gps",
            "TDB": "tdb", "TCG": "tcg", "TCB": "tcb"}


def _date_obs(hdr) -> tuple[str, float, str]:
    """(start of exposure as an ISO string in UTC, its MJD (UTC; NaN when
    unknown or unreadable), problem or ''): DATE-OBS (also in the FITS
    standard's old form 'dd/mm/yy', years 1900-1999), completed by
    TIME-OBS/UT/UTSTART when it holds only a date, else MJD-OBS; converted to
    UTC from the scale its TIMESYS names (UTC by default). The date is parsed
    here, once; a DATE-OBS that cannot be read is left with a NaN MJD for
    :func:`_mid_mjd` to report, a bad date + clock pair is reported here."""
    import re

    from astropy.time import Time, TimeDelta

    date = str(hdr.get("DATE-OBS", "")).strip()
    old = re.fullmatch(r"(\d\d)/(\d\d)/(\d\d)", date)
    if old:
        date = f"19{old[3]}-{old[2]}-{old[1]}"
    clock_key = ""
    if not date and np.isfinite(_float(hdr, "MJD-OBS")):
        date = Time(_float(hdr, "MJD-OBS"), format="mjd", precision=9).isot  # to the ns, as read
    elif date and "T" not in date and len(date) <= 10:
        keys = [k for k in ("TIME-OBS", "UT", "UTSTART") if str(hdr.get(k, "")).strip()]
        if not keys:
            return date, _utc_mjd(date), (
                f"DATE-OBS = {date!r} has no time of day and there is no TIME-OBS or UT keyword: the frame cannot "
                "be timed; add the UTC start of exposure (DATE-OBS = 'YYYY-MM-DDThh:mm:ss')")
        clock_key = keys[0]
        date = f"{date}T{str(hdr[clock_key]).strip()}"
    timesys = str(hdr.get("TIMESYS", "UTC")).strip().upper() or "UTC"
    if date and _TIMESYS.get(timesys, "utc") != "utc":
        fmt = "isot" if "T" in date else None  # as _utc_mjd reads it ('YYYY-MM-DD hh:mm:ss' too)
        try:
            if timesys == "GPS":
                t = Time(date, format=fmt, scale="tai") + TimeDelta(19.0, format="sec")
            else:
                t = Time(date, format=fmt, scale=_TIMESYS[timesys])
            t = t.utc
            t.precision = 9  # the default (3) rounds to the ms; keep what DATE-OBS gives (to the ns)
            date = t.isot
        except ValueError:
            pass  # read as UTC below, which reports it
    start = _utc_mjd(date) if date else float("nan")
    if clock_key and not np.isfinite(start):
        return "", start, (f"DATE-OBS = {hdr['DATE-OBS']!r} with {clock_key} = {str(hdr[clock_key]).strip()!r} is "
                           "not a date and time (want DATE-OBS = 'YYYY-MM-DD' or 'dd/mm/yy' and hh:mm:ss, or "
                           "'YYYY-MM-DDThh:mm:ss')")
    if timesys not in _TIMESYS:
        return date, start, (f"TIMESYS = {timesys!r} is not a time scale xcube reads ({', '.join(_TIMESYS)}); "
                             "fix TIMESYS or give DATE-OBS in UTC")
    return date, start, ""


def _utc_mjd(date: str) -> float:
    """MJD of a UTC date string (ISO 'YYYY-MM-DDThh:mm:ss', or any form astropy
    recognises when it has no 'T'); NaN when it is not a date."""
    from astropy.time import Time

    try:
        return float(Time(date, format="isot" if "T" in date else None, scale="utc").mjd)
    except ValueError:
        return float("nan")


def _float(hdr, *keys) -> float:
    for k in keys:
        try:
            return float(hdr[k])
        except (KeyError, TypeError, ValueError):
            continue
    return float("nan")


def _mid_mjd(table: pd.DataFrame) -> np.ndarray:
    """Mid-exposure MJD (UTC) per row: the start in column ``mjd`` (as
    :func:`_date_obs` read it) + EXPTIME / 2; NaN where unknown. A row whose
    DATE-OBS could not be read (a date but no start) gets that as its problem."""
    start = table["mjd"].to_numpy(float)
    exposure = table["exposure"].to_numpy(float)
    for i in np.flatnonzero(~np.isfinite(start)):
        date = table["date_obs"].iat[i]
        if isinstance(date, str) and date:
            table.iat[i, table.columns.get_loc("problem")] = (
                f"DATE-OBS {date!r} is not an ISO date (want YYYY-MM-DDThh:mm:ss)")
    return start + np.where(np.isfinite(exposure), exposure, 0.0) / 2 / 86400.0


def _list_paths(paths_or_dir) -> list[Path]:
    if isinstance(paths_or_dir, (str, Path)) and Path(paths_or_dir).is_dir():
        return sorted(p for p in Path(paths_or_dir).iterdir() if p.is_file() and _FITS_NAME.match(p.name))
    if isinstance(paths_or_dir, (str, Path)):
        if not Path(paths_or_dir).exists():
            raise FileNotFoundError(f"{paths_or_dir}: no such file or directory; pass the folder of raw frames")
        return [Path(paths_or_dir)]
    return [Path(p) for p in paths_or_dir]


def scan_frames(paths_or_dir, patterns=None) -> pd.DataFrame:
    """Frame table of a folder (its ``*.fit``, ``*.fits``, ``*.fts``, also
    ``.gz``/``.fz``) or of a list of files; reads headers only (eager).

    Columns: ``path``, ``name``, ``kind`` (bias, flat, dark, science),
    ``obj``, ``band`` (:data:`NO_BAND` when unknown), ``sn``, ``hdu``, ``ny``,
    ``nx``, ``date_obs``, ``mjd`` (mid-exposure, UTC), ``exposure`` [s],
    ``ra``, ``dec`` (header strings), ``equinox``, ``radesys`` (EQUINOX or
    EPOCH, RADESYS: the frame of RA/DEC), ``airmass``, ``gain`` [e-/ADU],
    ``saturation`` (raw level [ADU] of a saturated pixel: SATURATE, DATAMAX,
    else the integer type's largest value; NaN for float data) and
    ``problem``: empty for usable frames, else why the frame is left out (a
    warning names each such file), also for a frame whose shape differs from
    the most common one of its group (all bias frames, the flats of a band,
    an object's frames in a band), and for the second copy of a frame
    stored under two names that differ only in the suffix
    (:func:`_suffix_twins`). ``sn``, ``hdu``, ``ny``, ``nx`` are
    integers (empty for unreadable files). Rows are sorted by kind, object,
    band, time.
    """
    paths = _list_paths(paths_or_dir)
    if not paths:
        raise FileNotFoundError(f"{paths_or_dir}: no FITS frames (*.fit, *.fits, *.fts) found")
    table = pd.DataFrame([_header_row(p, patterns) for p in paths], columns=_COLUMNS)
    table["mjd"] = _mid_mjd(table)
    for col in ("exposure", "airmass", "gain", "saturation", "mjd"):
        table[col] = table[col].astype(float)
    for col in ("sn", "hdu", "ny", "nx"):  # integers, also when an unreadable file leaves them empty
        table[col] = table[col].astype("Int64")
    table = table.sort_values(["kind", "obj", "band", "mjd", "sn", "name"], na_position="last").reset_index(drop=True)
    good = table[table["problem"] == ""]
    groups: dict = {}
    for i, key in zip(good.index, _shape_group(good)):
        groups.setdefault(key, []).append(i)
    for key, index in groups.items():
        odd = _odd_shapes(good.loc[index], " ".join(key))
        table.loc[odd.index, "problem"] = odd
    twins = _suffix_twins(table[table["problem"] == ""])
    table.loc[twins.index, "problem"] = twins
    for _, row in table[table["problem"] != ""].iterrows():
        log.warning("skipping frame %s: %s", row["path"], row["problem"])
    return table


def _suffix_twins(rows: pd.DataFrame) -> pd.Series:
    """Among ``rows`` (usable frames), files whose names differ only in the
    FITS suffix (``X.fit``, ``X.fits``, ``X.fits.fz``: one :func:`raw_stem`)
    and that hold one frame: the same start time (DATE-OBS), or the same
    pixels. Of such a set the uncompressed file is kept (then the first by
    name); the others get the reason, indexed like ``rows``. Files of one
    stem that hold other frames are all kept (step i then gives each its own
    calibrated name). Eager: reads the pixels of clashing files whose times
    differ or are unknown, and only of those."""
    out = {}
    stems = rows.groupby(rows["name"].map(raw_stem)).groups
    for index in (ix for ix in stems.values() if len(ix) > 1):
        group = rows.loc[index]
        order = sorted(group.index, key=lambda i: (bool(re.search(r"\.(gz|fz)$", group.at[i, "name"], re.I)),
                                                  group.at[i, "name"]))
        kept: list = []
        for i in order:
            why = next(((k, w) for k in kept if (w := _same_frame(group.loc[k], group.loc[i]))), None)
            if why is None:
                kept.append(i)
            else:
                k, w = why
                out[i] = (f"the same frame as {group.at[k, 'path']} ({w}) under a name that differs only in the "
                          f"suffix; {group.at[k, 'name']} is used")
    return pd.Series(out, dtype=object)


def _same_frame(a, b) -> str:
    """Why two rows of one stem hold one frame ('same DATE-OBS', 'identical
    pixels'), or '' when they hold different frames (an unreadable file
    counts as different: the step that reads it leaves it out, naming it)."""
    if np.isfinite(a["mjd"]) and a["mjd"] == b["mjd"] and a["date_obs"] == b["date_obs"]:
        return "same DATE-OBS"
    if (a["ny"], a["nx"]) != (b["ny"], b["nx"]):
        return ""
    try:
        pa, pb = (FitsStack([r["path"]], [r["hdu"]], (r["ny"], r["nx"]))[0] for r in (a, b))
    except OSError:
        return ""
    return "identical pixels" if np.array_equal(pa, pb, equal_nan=True) else ""


def shape_text(ny, nx) -> str:
    """An image shape as ``<ny>x<nx>`` (rows x columns). Eager."""
    return f"{int(ny)}x{int(nx)}"


def _shape_group(table: pd.DataFrame) -> list:
    """Per row, the group whose frames must share one image shape (they are
    stacked together): all bias frames; flats and darks per band; science
    frames per object and band."""
    return [("bias",) if kind == "bias" else (kind, band) if kind in ("flat", "dark") else (kind, obj, band)
            for kind, obj, band in zip(table["kind"], table["obj"], table["band"])]


def _odd_shapes(rows: pd.DataFrame, what: str) -> pd.Series:
    """The one rule for frames of another size: among ``rows`` (usable frames
    of one group), those whose shape is not the most common (the earliest
    such frame's on a tie), with the reason, indexed like ``rows``."""
    shapes = [shape_text(ny, nx) for ny, nx in zip(rows["ny"], rows["nx"])]
    counts = Counter(shapes)
    main, n_main = counts.most_common(1)[0]
    return pd.Series({i: f"shape {s} differs from that of the other {n_main} {what} frames ({main})"
                      for i, s in zip(rows.index, shapes) if s != main}, dtype=object)


def group_rows(table: pd.DataFrame, kind: str, obj: str | None = None, band: str | None = None) -> pd.DataFrame:
    """Usable rows (empty ``problem``) of one kind (and object, band).
    :func:`scan_frames` has already left out the frames whose shape differs
    from the rest of their group; should the selection still mix shapes (a
    table made otherwise, or several objects at once), the same rule keeps
    the most common one and drops the others with a warning. ``kind``,
    ``obj`` and ``band`` are strings matched exactly (``band``: the filter
    name, no unit). Returns those rows of ``table`` with all its columns
    (in memory, like ``table``). Eager (pandas)."""
    sel = (table["kind"] == kind) & (table["problem"] == "")
    if obj is not None:
        sel &= table["obj"] == obj
    if band is not None:
        sel &= table["band"] == band
    rows = table[sel]
    if rows.empty:
        return rows
    odd = _odd_shapes(rows, " ".join(str(v) for v in (kind, obj, band) if v is not None))
    for i, problem in odd.items():
        log.warning("skipping frame %s: %s", rows.at[i, "path"], problem)
    return rows.drop(index=odd.index)


class FrameReadError(OSError):
    """A frame's pixels cannot be read (a damaged compressed tile, a file
    changed or removed after the scan); ``path`` names the file."""

    def __init__(self, path, message: str):
        super().__init__(message)
        self.path = str(path)


def _decode_errors() -> tuple:
    """astropy's tile-decompression error (it derives from ``Exception`` only)."""
    try:
        from astropy.io.fits.hdu.compressed._compression import CfitsioException
    except ImportError:  # another astropy layout: its errors are then OSError/ValueError
        return ()
    return (CfitsioException,)


class FitsStack:
    """Array-like ``(frame, y, x)`` view of image files (float32, BSCALE/BZERO
    applied) that reads only the rows and files a slice asks for. A frame
    that cannot be read raises :class:`FrameReadError` naming its file."""

    def __init__(self, paths, hdus, shape):
        self.paths = [str(p) for p in paths]
        self.hdus = [int(h) for h in hdus]
        self.shape = (len(self.paths), int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(np.float32)
        self.ndim = 3

    def __getitem__(self, key):
        from astropy.io import fits

        key = (key if isinstance(key, tuple) else (key,)) + (slice(None),) * 3
        fkey, ysl, xsl = key[:3]
        index = np.arange(self.shape[0])[fkey]
        scalar = np.ndim(index) == 0
        index = np.atleast_1d(index)
        out = np.empty((len(index),) + np.empty(self.shape[1:], np.bool_)[ysl, xsl].shape, np.float32)
        (yread, ystep), (xread, xstep) = _contiguous(ysl, self.shape[1]), _contiguous(xsl, self.shape[2])
        for j, i in enumerate(index):
            try:
                with fits.open(self.paths[i], memmap=False, lazy_load_hdus=True) as hdul:
                    hdu = hdul[self.hdus[i]]
                    plane = (0,) if hdu.header.get("NAXIS") == 3 else ()  # a cube of one plane
                    try:  # read only the rows asked for, in one piece (sections with steps are slow)
                        out[j] = hdu.section[plane + (yread, xread)][ystep, xstep]
                    except (AttributeError, OSError, ValueError):  # gzip streams have no sections
                        out[j] = hdu.data[plane + (ysl, xsl)]
            except _decode_errors() as exc:
                raise FrameReadError(self.paths[i], f"{self.paths[i]}: cannot decompress the image ({exc}): a "
                                     "damaged compressed tile; compress the frame again from its original") from exc
            except (OSError, ValueError, TypeError, IndexError, AttributeError) as exc:
                raise FrameReadError(self.paths[i], f"{self.paths[i]}: cannot read the image ({exc}); was the file "
                                     "changed or removed after the scan?") from exc
        return out[0] if scalar else out


def _contiguous(sl, n: int):
    """(contiguous slice covering ``sl``, the index that then picks its elements)."""
    if isinstance(sl, (int, np.integer)):
        i = int(sl) % n
        return slice(i, i + 1), 0
    if not isinstance(sl, slice):
        return slice(0, n), sl
    start, stop, step = sl.indices(n)
    if step == 1:
        return slice(start, stop), slice(None)
    if step < 0 or start >= stop:
        return slice(0, n), sl
    return slice(start, stop), slice(None, None, step)


def _mtimes(paths) -> list[float]:
    return [Path(p).stat().st_mtime if Path(p).exists() else 0.0 for p in paths]


def stack_frames(rows: pd.DataFrame, chunks=None, name: str = "image") -> xr.DataArray:
    """Lazy ``(frame, y, x)`` float32 DataArray of the frames in ``rows`` (a
    slice of :func:`scan_frames`, one shape). ``chunks``: dict with ``frame``,
    ``y``, ``x`` sizes (default 8 frames, whole images). Per-frame coordinates:
    ``file``, ``time`` (mid-exposure MJD, UTC), ``exposure`` [s], ``airmass``.
    Nothing is read until computed; a chunk reads only its files and rows."""
    import dask.array as da
    from dask.base import tokenize

    if rows.empty:
        raise ValueError("no frames to stack")
    ch = {"frame": 8, "y": -1, "x": -1} | dict(chunks or {})
    stack = FitsStack(rows["path"], rows["hdu"], (rows["ny"].iloc[0], rows["nx"].iloc[0]))
    data = da.from_array(stack, chunks=(ch["frame"], ch["y"], ch["x"]), lock=False, asarray=False,
                         meta=np.empty((0, 0, 0), np.float32),
                         name="frames-" + tokenize(stack.paths, stack.hdus, stack.shape, _mtimes(stack.paths)))
    coords = {"frame": np.arange(len(rows)), "file": ("frame", rows["name"].to_numpy(str)),
              "time": ("frame", rows["mjd"].to_numpy(float), {"units": "d", "timesys": "UTC",
                                                             "description": "MJD at mid-exposure"}),
              "exposure": ("frame", rows["exposure"].to_numpy(float), {"units": "s"}),
              "airmass": ("frame", rows["airmass"].to_numpy(float))}
    return xr.DataArray(data, dims=("frame", "y", "x"), coords=coords, name=name, attrs={"units": "adu"})


def open_frames(paths_or_dir, patterns=None, chunks=None, site=None) -> xr.DataTree:
    """The night's frames as an ``xarray.DataTree`` of lazy cubes.

    Nodes: ``/bias``, ``/dark``, ``/flat/<band>`` and ``/<object>/<band>``
    (names as found; a band-less frame sits under :data:`NO_BAND`); each
    holds ``image``, a lazy ``(frame, y, x)`` DataArray from
    :func:`stack_frames`, and the frame table rows as attrs ``paths``.
    ``airmass`` comes from the AIRMASS keyword, or is computed from RA/DEC
    and ``site`` (:func:`xcube.frames.timing.site_location` arguments as a
    dict; default the Xinglong station) where the keyword is missing.
    Headers are read now; pixels only when computed. Malformed frames are
    left out with a warning naming the file and the reason.
    """
    table = scan_frames(paths_or_dir, patterns)
    nodes = {}
    for (kind, obj, band), _ in table[table["problem"] == ""].groupby(["kind", "obj", "band"]):
        rows = group_rows(table, kind, None if kind != "science" else obj, band if kind != "bias" else None)
        if rows.empty:
            continue
        obj_key, band_key = str(obj).replace("/", "_"), str(band).replace("/", "_")
        key = {"bias": "/bias", "dark": "/dark", "flat": f"/flat/{band_key}"}.get(kind, f"/{obj_key}/{band_key}")
        image = stack_frames(rows, chunks)
        if kind == "science":
            image = _fill_airmass(image, rows, site)
        nodes[key] = xr.Dataset({"image": image}, attrs={"kind": kind, "obj": obj, "band": band})
    return xr.DataTree.from_dict(nodes)


def _fill_airmass(image: xr.DataArray, rows: pd.DataFrame, site) -> xr.DataArray:
    """Airmass from RA/DEC and the site where the AIRMASS keyword is missing."""
    missing = ~np.isfinite(image["airmass"].values)
    if not missing.any():
        return image
    from .timing import site_location, target_coord, time_keywords

    try:
        coord = target_coord(*rows[["ra", "dec", "equinox", "radesys"]].iloc[0])
    except ValueError as exc:
        log.warning("%s: airmass left unknown: %s", rows["path"].iloc[0], exc)
        return image
    kw = time_keywords(image["time"].values, coord, site_location(**(site or {})))
    airmass = np.where(missing, kw["AIRMASS"], image["airmass"].values)
    return image.assign_coords(airmass=("frame", airmass))
