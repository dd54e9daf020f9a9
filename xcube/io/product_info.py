"""``xcube info`` of files that are not event lists: OGIP light curves,
PHA spectra, power spectra (``xcube pds``), FITS images, GTI files and the
Zarr stores of search results (``SearchResult.to_zarr``). Each summary is a
few lines of text; everything is read eagerly (these files are small; of a
store, only its metadata)."""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

__all__ = ["product_kind", "product_summary", "PRODUCT_KINDS"]


def product_kind(path) -> str:
    """``"power_spectrum"``, ``"lightcurve"``, ``"spectrum"``, ``"image"``,
    ``"gti"`` (only GTI tables), ``"cube"`` (a Zarr store of counts and
    expected counts), ``"events"`` or ``"unknown"``, from the file's
    structure (eager: reads headers only; ``FileNotFoundError`` naming a
    missing file)."""
    from ..missions import event_extensions

    events = event_extensions() + ("STDEVT",)

    p = Path(path)
    if p.is_dir():
        return "cube" if (p / "expected").exists() and (p / "counts").exists() else "unknown"
    import warnings

    from astropy.io import fits
    from astropy.utils.exceptions import AstropyUserWarning

    from .fitsutil import check_path

    check_path(p)
    try:
        with warnings.catch_warnings():  # ("may have been truncated": the reader that follows names the damage)
            warnings.simplefilter("ignore", AstropyUserWarning)
            with fits.open(p) as hdul:
                return _fits_kind(hdul, events)
    except (OSError, EOFError, ValueError, zlib.error):
        # not FITS (a CSV, a Parquet table...), or corrupt (a damaged gzip stream, a header without END):
        # the callers say what they take, and the event reader names the file and the damage
        return "unknown"


def _fits_kind(hdul, events) -> str:
    """:func:`product_kind` of an open FITS file (reads its headers)."""
    from astropy.io import fits

    from .lightcurve_file import is_lightcurve_hdu
    from .ogip import is_gti_hdu
    from .powspec import is_power_spectrum_table

    for h in hdul[1:]:
        if not isinstance(h, fits.BinTableHDU):
            continue
        names = {c.upper() for c in h.columns.names}
        clas = str(h.header.get("HDUCLAS1", "")).strip().upper()
        if is_power_spectrum_table(names):  # (xcube, powspec; Stingray's lower-case freq/power)
            return "power_spectrum"
        if is_lightcurve_hdu(h):  # (the reader's test)
            return "lightcurve"
        if clas == "SPECTRUM" or h.name == "SPECTRUM":
            return "spectrum"
        if clas in ("EVENTS", "EVENT") or h.name in events or h.name.startswith("EVENTS"):
            return "events"
    h0 = hdul[0].header
    if h0.get("NAXIS", 0) == 2 and h0.get("NAXIS1", 0) > 1 and h0.get("NAXIS2", 0) > 1:
        return "image"
    tables = [h for h in hdul[1:] if isinstance(h, fits.BinTableHDU)]
    if tables and all(is_gti_hdu(h) for h in tables):
        return "gti"
    return "unknown"


def _utc(attrs: dict, t: float) -> str:
    """UTC (to the second) of mission time ``t`` [s] from the product's MJDREF/TIMESYS, ``?`` when unknown."""
    if not np.isfinite(t) or "mjdref" not in attrs:
        return "?"
    from ..times import times

    try:
        return str(times(float(t), attrs, to="iso", precision=3))
    except (ValueError, KeyError, TypeError):
        return "?"


def _head(kind: str, path, attrs: dict) -> list[str]:
    from ..missions import mission_name

    mission = mission_name(str(attrs.get("mission") or attrs.get("telescop") or ""))  # one name per mission
    who = " ".join(str(v) for v in (mission, attrs.get("instrument")) if v) or "-"
    return [f"{path}: {kind} ({who})",
            f"  obs id      : {attrs.get('obs_id') or '-'}    object: {attrs.get('object') or '-'}"]


def _span(attrs: dict, lo: float, hi: float) -> str:
    return (f"  time span   : {lo:.6f} - {hi:.6f} s ({hi - lo:.1f} s; UTC {_utc(attrs, lo)} - {_utc(attrs, hi)}; "
            f"MJDREF {attrs.get('mjdref', '?')!r} {attrs.get('timesys', '?')})")


def _lightcurve(path) -> list[str]:
    """A light curve's summary; a file with several light-curve tables (bands, source and background...)
    lists them and summarises each (``read_lightcurve(path, extension=NAME)`` reads one)."""
    from astropy.io import fits

    from .lightcurve_file import is_lightcurve_hdu

    with fits.open(path) as hdul:
        tables = [(i, h.name) for i, h in enumerate(hdul) if i and is_lightcurve_hdu(h)]
    if len(tables) <= 1:
        head, body = _lightcurve_table(path, None)
        return head + body
    names = [n for _, n in tables]
    keys = [n if names.count(n) == 1 else i for i, n in tables]  # (an EXTNAME used twice: the HDU number)
    lines = None
    for (i, name), key in zip(tables, keys):
        try:
            head, body = _lightcurve_table(path, key)
        except (ValueError, KeyError, OSError) as err:
            head, body = None, [f"    not readable: {err}"]
        if lines is None:
            lines = (head or _head("light curve", path, {}))[:]
            lines.append(f"  tables      : {len(tables)} light-curve tables: "
                         + ", ".join(f"{n} (HDU {j})" for j, n in tables)
                         + "; read one with read_lightcurve(path, extension=NAME)")
        lines.append(f"  [{name}] (HDU {i})")
        lines += ["  " + line for line in body]
    return lines


def _lightcurve_table(path, extension) -> tuple[list[str], list[str]]:
    """``(head, body)`` lines of the light-curve table ``extension`` (None: the first)."""
    from .lightcurve_file import read_lightcurve

    lc = read_lightcurve(path, extension=extension)
    a = lc.attrs
    lo, hi = float(lc["time_lo"].values[0]), float(lc["time_hi"].values[-1])
    expo = np.asarray(lc["exposure"].values, float)
    widths = np.asarray(lc["time_hi"].values - lc["time_lo"].values, float)
    lo_w, hi_w = (float(widths.min()), float(widths.max())) if widths.size else (np.nan, np.nan)
    width = f"{lo_w:g} s" if np.isclose(lo_w, hi_w, rtol=1e-9, atol=0) else f"{lo_w:g}-{hi_w:g} s"
    head = _head("light curve", path, a)
    if a.get("stitched") and "obs_id" in lc:
        obs = sorted({str(o) for o in np.asarray(lc["obs_id"].values)})
        missions = sorted({str(m) for m in np.asarray(lc["mission"].values)}) if "mission" in lc else ["?"]
        head[0] = f"{path}: long-term light curve ({', '.join(missions)}; {len(obs)} observation id(s))"
    lines = [
        f"  bins        : {lc.sizes['time']:,} of {width}"
        + (f", {lc.sizes['band']} energy bands" if "band" in lc.dims else ""),
        _span(a, lo, hi),
        f"  exposure    : {expo.sum():.1f} s in the bins ({int(np.count_nonzero(expo > 0)):,} bins with good time)"
        + (f"; {lc.sizes['gti']} GTI(s)" if "gti" in lc.dims else ""),
    ]
    w = lc["exposure"].where(lc["exposure"] > 0)
    good = lc["rate"].notnull() & w.notnull()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = ((lc["rate"] * w).where(good).sum("time") / w.where(good).sum("time")).values
    multi = "band" in lc["rate"].dims
    means = ", ".join(f"{m:.4g}" for m in np.atleast_1d(mean))
    kind = {"net": "net ", "background": "background "}.get(lc.attrs.get("rate_kind", "total"), "")
    label = f"mean {kind}rate"
    lines.append(f"  {label:<12s}: {means} count/s (exposure-weighted{', per band' if multi else ''})")
    if "counts" in lc:
        lines.append(f"  counts      : {int(np.nansum(lc['counts'].values)):,}")
    lines.append(f"  columns     : {', '.join(str(v) for v in lc.data_vars)}")
    return head, lines


def _brief(value) -> str:
    """A keyword's value as read: a scalar as is, an array (a BACKSCAL/AREASCAL column) as 'column' with its
    range, or its one value when constant; '-' when absent."""
    if value is None:
        return "-"
    a = np.asarray(getattr(value, "values", value))
    if a.ndim == 0:
        return str(value)
    if a.dtype.kind not in "iuf":
        return f"column of {a.size}"
    finite = a[np.isfinite(a)]
    if not finite.size:
        return f"column of {a.size}, all NaN"
    lo, hi = float(finite.min()), float(finite.max())
    return f"{lo:g} (column, constant)" if lo == hi else f"column of {a.size}, {lo:.6g} - {hi:.6g}"


def _spectrum(path, row: int | None = None) -> list[str]:
    """A PHA spectrum's summary; of a type II file, the rows listed (``row`` None) or row ``row`` (1-based,
    as :func:`~xcube.io.ogip.read_spectrum` and XSPEC's ``file.pha{k}`` number them) summarised as a type I
    spectrum. ``ValueError`` naming the file for a row out of range (or a row other than 1 of a type I file,
    which XSPEC reads as the file itself)."""
    from .ogip import read_spectrum

    table = _type2_table(path)
    if row is None and table is not None:
        return _pha_type2(path, table)
    sp = read_spectrum(path, row=row)  # (the reader's checks: a row out of range is an error naming the file)
    a = sp.attrs
    scal = {k: sp[k] if k in sp.data_vars else a.get(k) for k in ("backscal", "areascal")}
    lo, hi = a.get("channel_range", (int(sp.channel.values[0]), int(sp.channel.values[-1])))
    lines = _head("spectrum", path if row is None else f"{path}{{{row}}}", a)
    if row is not None:
        if table is None:
            lines.append(f"  row         : 1, a PHA type I file (one spectrum; XSPEC reads {path.name}{{1}} as "
                         "the file)")
        else:
            label = ", ".join(f"{c} {int(table['rows'][c][row - 1])}" for c in ("SPEC_NUM", "TG_PART", "TG_M")
                              if c in table["rows"])
            lines.append(f"  row         : {row} of {table['n']:,} of the PHA type II file {path.name} "
                         f"(table {table['name']})" + (f"; {label}" if label else ""))
    lines += [
        f"  channels    : {sp.sizes['channel']:,} ({lo} - {hi})"
        + (f", PI {int(sp['pi_lo'].values[0])} - {int(sp['pi_hi'].values[-1])}" if "pi_lo" in sp.coords else ""),
        f"  counts      : {int(np.sum(sp['counts'].values)):,}",
        f"  exposure    : {float(a.get('exposure', np.nan)):.1f} s    backscal: {_brief(scal['backscal'])}"
        f"    areascal: {_brief(scal['areascal'])}",
    ]
    if a.get("deadc") is not None and a.get("ontime") is not None:  # EXPOSURE is the live time
        lines.append(f"  live time   : exposure = on time {float(a['ontime']):.1f} s x DEADC {float(a['deadc']):.4f}")
    if "grouping" in sp:
        lines.append(f"  groups      : {int(np.count_nonzero(np.asarray(sp['grouping'].values) == 1)):,}"
                     + (f"    bad channels: {int(np.count_nonzero(np.asarray(sp['quality'].values) > 0)):,}"
                        if "quality" in sp else ""))  # (QUALITY may be a keyword: the groups alone)
    lines.append("  files       : " + ", ".join(f"{k}={a.get(k) or '-'}" for k in ("respfile", "ancrfile", "backfile")))
    return lines


def _type2_table(path) -> dict | None:
    """The SPECTRUM table of a PHA type II file (several spectra, one per row: HDUCLAS4 = 'TYPE:II' or vector
    COUNTS/RATE columns, as Chandra ``tgextract`` writes), read here from the table (not by ``read_spectrum``,
    which reads one spectrum): ``name`` (EXTNAME), ``header`` (primary and table keywords), ``rows`` (upper-case
    column -> array along row of SPEC_NUM, TG_M, TG_PART, EXPOSURE, BACKSCAL, COUNTS and RATE where present) and
    ``n`` (rows); None for a type I file."""
    from astropy.io import fits

    from .fitsutil import TableColumns, find_column
    from .ogip import is_pha_type2

    with fits.open(path) as hdul:
        hdu = next((h for h in hdul[1:] if isinstance(h, fits.BinTableHDU) and (
            str(h.header.get("HDUCLAS1", "")).strip().upper() == "SPECTRUM" or h.name == "SPECTRUM")), None)
        if hdu is None or not is_pha_type2(hdu):
            return None
        names = hdu.columns.names
        h = dict(hdul[0].header)
        h.update(hdu.header)
        rows = {c: np.asarray(TableColumns(hdu)[c]) for c in ("SPEC_NUM", "TG_M", "TG_PART", "EXPOSURE",
                                                                         "BACKSCAL", "COUNTS", "RATE")
                if find_column(names, c) is not None}
        return {"name": hdu.name, "header": h, "rows": rows, "n": len(hdu.data)}


def _pha_type2(path, table: dict, listed: int = 10) -> list[str]:
    """Summary of a PHA type II file from its :func:`_type2_table`: lists the first ``listed`` rows."""
    h, rows, n = table["header"], table["rows"], table["n"]
    values = rows.get("COUNTS", rows.get("RATE"))
    n_chan = int(values.shape[1]) if values is not None and values.ndim == 2 else int(h.get("DETCHANS", 0) or 0)
    attrs = {"mission": h.get("TELESCOP", ""), "instrument": h.get("INSTRUME", ""), "obs_id": h.get("OBS_ID", ""),
             "object": h.get("OBJECT", "")}
    lines = _head("spectra, PHA type II", path, attrs) + [
        f"  spectra     : {n:,} (one per row of {table['name']}), {n_chan:,} channels each; read one with "
        f"read_spectrum(path, row=k) or as '{Path(path).name}{{k}}' (XSPEC's name of row k; "
        f"xcube info '{Path(path).name}{{k}}' summarises it)"]
    what = "counts" if "COUNTS" in rows else "rate [count/s]"
    for r in range(min(n, listed)):
        label = ", ".join(f"{c} {int(rows[c][r])}" for c in ("SPEC_NUM", "TG_PART", "TG_M") if c in rows)
        total = float(np.nansum(values[r])) if values is not None else np.nan
        expo = float(rows["EXPOSURE"][r]) if "EXPOSURE" in rows else float(h.get("EXPOSURE", np.nan))
        back = rows["BACKSCAL"][r] if "BACKSCAL" in rows else h.get("BACKSCAL")
        lines.append(f"  row {r + 1:<8}: {label + '; ' if label else ''}{what} {total:,.6g}, exposure {expo:.1f} s, "
                     f"backscal {_brief(back)}")
    if n > listed:
        lines.append(f"  ...           ({n - listed:,} more rows)")
    return lines


def _power_spectrum(path) -> list[str]:
    from .powspec import read_power_spectrum

    p = read_power_spectrum(path)
    a = p.attrs
    f = p["freq"].values
    lines = _head("power spectrum", path, a) + [f"  frequencies : {f.size:,}, {float(f.min()):.4g} - "
                                                f"{float(f.max()):.4g} Hz (bin centres)"]
    if "segment" in a or "n_segments" in a:  # (a powspec-like table without the keywords: not printed as nan)
        lines.append(f"  averaging   : {a.get('n_segments', '?')} segment(s) of {a.get('segment', float('nan')):g} s, "
                     f"bins of {a.get('dt', float('nan')):g} s")
    extra = "".join(f"    {label}: {a[k]:.4g}{unit}" for k, label, unit in
                    (("mean_rate", "mean rate", " count/s"), ("poisson_level", "Poisson level", "")) if k in a)
    lines.append(f"  norm        : {a.get('norm', '?')}{extra}")
    return lines


def _gti(path) -> list[str]:
    from astropy.io import fits

    from .. import gti as gtimod
    from .fitsutil import has_value, header_float, merged_header
    from .ogip import find_gti_hdu, gti_of_hdu, read_mjdref

    with fits.open(path) as hdul:
        hdu = find_gti_hdu(hdul, None, path)
        h = merged_header(hdul[0].header, hdu.header)
        start, stop = gti_of_hdu(hdu, path, h, primary=hdul[0].header)  # as read_gti and read_lightcurve read it
    attrs = {"mission": h.get("TELESCOP", ""), "instrument": h.get("INSTRUME", ""), "obs_id": h.get("OBS_ID", ""),
             "object": h.get("OBJECT", "")}
    mjdref = read_mjdref(h, path)  # (a bad value: the error names the file)
    if np.isfinite(mjdref):
        attrs.update(mjdref=mjdref, timesys=str(h.get("TIMESYS", "TT")).strip())
        if has_value(h, "MJDREFI"):  # full precision for the UTC conversion
            attrs.update(mjdrefi=float(h["MJDREFI"]), mjdreff=header_float(h, "MJDREFF", path, 0.0))
    lines = _head("good time intervals", path, attrs)
    if start.size:
        lines += [_span(attrs, float(start[0]), float(stop[-1])),
                  f"  GTI exposure: {gtimod.exposure((start, stop)):.1f} s in {start.size} interval(s), longest "
                  f"{float(np.max(stop - start)):.1f} s"]
    else:
        lines.append("  GTI exposure: 0 s (no intervals)")
    return lines


def _image(path) -> list[str]:
    from astropy.io import fits

    with fits.open(path) as hdul:
        h = hdul[0].header
        data = np.asarray(hdul[0].data, dtype=np.float64)
    attrs = {"mission": h.get("TELESCOP", ""), "instrument": h.get("INSTRUME", ""), "obs_id": h.get("OBS_ID", ""),
             "object": h.get("OBJECT", "")}
    lines = _head("image", path, attrs) + [
        f"  pixels      : {data.shape[1]} x {data.shape[0]} (x by y)"
        + (f", {abs(float(h['CDELT1'])) * 3600:.3g}\" each" if "CDELT1" in h else ""),
        f"  sum         : {np.nansum(data):.6g} {str(h.get('BUNIT', '')).strip()}".rstrip(),
    ]
    if "CRVAL1" in h and "CRVAL2" in h:
        lines.append(f"  reference   : {h.get('CTYPE1', '?')} {float(h['CRVAL1']):.6f}, {h.get('CTYPE2', '?')} "
                     f"{float(h['CRVAL2']):.6f} deg at pixel ({h.get('CRPIX1', '?')}, {h.get('CRPIX2', '?')})")
    return lines


def _cube(path) -> list[str]:
    """A Zarr store of counts and expected counts: what ``SearchResult.to_zarr``
    writes; checked against its manifest first, every chunk checksummed (these
    stores are small), so a damaged store is an error naming the damage."""
    from .cache import open_store

    ds = open_store(path, checksums=True)
    a = ds.attrs
    params, summ = dict(a.get("params") or {}), dict(a.get("summary") or {})
    search = a.get("kind") == "transient-search"
    head = f"{path}: transient-search result (run {a.get('run_id', '?')})" if search else f"{path}: counts cube"
    lines = [head, f"  cube        : {ds.sizes.get('time', 0):,} frames x {ds.sizes.get('y', 0):,} x "
                   f"{ds.sizes.get('x', 0):,} cells (time, y, x)"
             + (f", frames of {params['time_bin']:g} s" if "time_bin" in params else "")
             + (f", cells of {params['size_arcsec']:g}\"" if "size_arcsec" in params else "")]
    if "time_lo" in ds.coords and ds.sizes.get("time"):
        lo, hi = float(ds["time_lo"].values[0]), float(ds["time_hi"].values[-1])
        lines.append(f"  time span   : {lo:.6f} - {hi:.6f} s ({hi - lo:.1f} s)")
    if summ:
        lines.append(f"  exposure    : {float(summ.get('exposure', np.nan)):.1f} s; "
                     f"{summ.get('n_bad_frames', '?')} bad frame(s), {summ.get('n_bti', '?')} bad time interval(s)")
        lines.append(f"  detections  : {summ.get('n_detections', '?')}"
                     + (f" ({summ['reason']})" if summ.get("reason") else ""))
    if params:
        band = params.get("energy_band")
        lines.append("  search      : " + ", ".join(
            t for t in (f"{band[0]:g}-{band[1]:g} keV" if band else "", f"sigma {params['sigma']:g}"
                        if "sigma" in params else "", "cameras " + " ".join(map(str, params.get("cameras", [])))
                        if params.get("cameras") else "") if t))
        if params.get("sources"):
            lines.append(f"  sources     : {', '.join(map(str, params['sources']))}")
    lines.append(f"  variables   : {', '.join(map(str, ds.data_vars))} (open with xcube.io.cache.open_store, which "
                 "checks it; not an event list: the detection tables are in the search's output directory)")
    return lines


_SUMMARIES = {"image": _image, "lightcurve": _lightcurve, "spectrum": _spectrum, "power_spectrum": _power_spectrum,
              "gti": _gti, "cube": _cube}
#: the kinds of product files (not event lists) that :func:`product_summary` describes
PRODUCT_KINDS = tuple(_SUMMARIES)


def product_summary(path, kind: str, row: int | None = None) -> str:
    """Text summary of a product file of ``kind`` (``"lightcurve"``,
    ``"spectrum"``, ``"power_spectrum"``, ``"image"``, ``"gti"`` or
    ``"cube"``, a search result's Zarr store; see :func:`product_kind`).
    ``row`` (1-based; spectra only): row ``row`` of a PHA type II file,
    summarised as one spectrum and headed ``path{row}``, XSPEC's name of it
    (``ValueError`` naming the file when out of range). Eager: opens and reads
    the file."""
    if row is None:
        return "\n".join(line for line in _SUMMARIES[kind](Path(path)) if line)
    if kind != "spectrum":
        raise ValueError(f"{path}{{{row}}}: {{{row}}} picks row {row} of a PHA type II spectrum file, as XSPEC "
                         f"names it; {path} is not a PHA spectrum "
                         f"({'an event file or unknown' if kind == 'events' else kind})")
    return "\n".join(line for line in _spectrum(Path(path), row=int(row)) if line)
