"""The survey catalogue: every detection of every finished run, and unique sources.

``build_catalogue(out)`` reads the run directories of a survey output
(``out/<obsid>/<run_id>/``, only those whose status record says ``done``),
joins each run's detections with its parameters, clusters them into unique
sources (:mod:`.cluster`), optionally cross-matches the sources with user
catalogues (:mod:`.crossmatch`) and writes ``out/catalogue/`` atomically:

- ``detections.parquet`` / ``detections.fits``: one row per detection, with
  ``obsid``, ``run_id`` (the survey run), ``search_run_id``, ``param_hash``,
  ``time_bin``, ``emin``, ``emax``, ``sigma``, ``size_arcsec``, ``source_id``
  and ``source_name`` added to the search's columns (with its times
  ``mjd_start``/``mjd_peak``/``mjd_stop`` [MJD in the files' TIMESYS] and
  ``utc_peak`` [ISO 8601 UTC]); the FITS tables carry TUNIT on every column,
  MJDREFI/MJDREFF/TIMESYS/TIMEUNIT of the ``t_*`` columns and checksums;
- ``sources.parquet`` / ``sources.fits`` / ``sources.reg`` (DS9, fk5): one
  row per unique source with its summary (see ``cluster_detections``) and
  cross-match columns;
- ``hot_regions.parquet``: the hot regions in the spacecraft frame
  (:func:`.vetting.hot_regions`);
- ``flags.csv``: how many detections each quality flag removes
  (:func:`.vetting.flag_report`), also printed;
- ``runs.parquet``: the status records of the runs included;
- ``catalogue.json``: counts and options.

The detections keep the search's light-curve features and ``flag_*``
columns and get ``flag_excluded_obs``, ``flag_hot_region`` and
``hot_region`` (:mod:`.vetting`); :func:`.vetting.vet` keeps or drops by
flags.

It only reads committed run directories, so it can run at any time, also
while a survey is writing into ``out``.
"""
from __future__ import annotations

import json
import logging
import os
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._version import __version__
from ..io.atomic import atomic_dir, atomic_file, remove_stale, write_text
from ..tables import column_unit  # (also importable from here, as before)
from ..times import TIME_COLUMNS, add_time_columns, mjd_tt, time_reference, time_reference_frame
from .cluster import DETECTION_KEY, carry_source_ids, cluster_detections
from .crossmatch import crossmatch_table
from .status import CATALOGUE_DIR, RECORD_FILE, scan_runs
from .vetting import flag_catalogue, flag_report, read_obs_list

__all__ = ["build_catalogue", "load_detections", "read_catalogue_dir", "Catalogue", "catalogue_options_record",
           "recorded_options", "check_catalogue_options", "check_catalogue_values", "RANGED_OPTIONS"]

log = logging.getLogger("xcube.survey")

_RUN_COLUMNS = ["obsid", "run_id", "param_hash", "time_bin", "emin", "emax", "sigma", "size_arcsec", "extra"]


@dataclass
class Catalogue:
    """A built catalogue: ``detections`` and ``sources`` tables (pandas), the
    ``runs`` it was made from, the ``directory`` it was written to (or None),
    the ``hot_regions`` and the ``flag_report`` (what each flag removes)."""

    detections: pd.DataFrame
    sources: pd.DataFrame
    runs: pd.DataFrame
    directory: Path | None = None
    hot_regions: pd.DataFrame | None = None
    flag_report: pd.DataFrame | None = None

    def __repr__(self) -> str:
        return (f"Catalogue({len(self.detections)} detections, {len(self.sources)} sources "
                f"from {len(self.runs)} runs, directory={str(self.directory) if self.directory else None!r})")


def load_detections(out, status: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All detections of the finished (``done``) runs under ``out``, joined with
    their run parameters, in (obsid, run_id, row) order; and the status rows of
    those runs. Eager (reads every run's ``detections.parquet``). A done run
    with detections whose table is missing, not a file, unreadable or shorter
    than its record's ``n_detections`` is an ``OSError`` naming the file (a
    run whose ``run.json`` cannot be read is left out, with a warning:
    :func:`.status.scan_runs`); a done run whose record gives no valid
    ``n_detections`` is read from its table, with a warning."""
    out = Path(out)
    status = scan_runs(out) if status is None else status
    runs = status[status["state"] == "done"].reset_index(drop=True)
    frames = []
    for r in runs.itertuples():
        if r.n_detections == 0:
            continue
        path = out / r.obsid / r.run_id / "detections.parquet"
        try:
            if not path.is_file():
                raise OSError("not a file" if path.exists() else "missing")
            det = pd.read_parquet(path)
            lost = ~(np.isfinite(det["ra"].to_numpy(np.float64)) & np.isfinite(det["dec"].to_numpy(np.float64))) \
                if {"ra", "dec"} <= set(det.columns) else np.ones(len(det), bool)
            if lost.any():
                raise ValueError(f"{int(lost.sum())} detection(s) have no finite ra/dec (first row "
                                 f"{int(np.flatnonzero(lost)[0])})")
            if r.n_detections < 0:  # its record does not say how many: the file does
                log.warning("%s: the record (%s) of done run %s gives no valid n_detections; its %d detection(s) "
                            "are read from %s", path.parent, RECORD_FILE, r.run_id, len(det), path.name)
                runs.loc[r.Index, "n_detections"] = len(det)
            elif len(det) < r.n_detections:
                raise ValueError(f"it holds {len(det)} row(s) where its record ({RECORD_FILE}) counts "
                                 f"{r.n_detections} detections")
        except (OSError, ValueError) as exc:
            raise OSError(f"{path}: cannot read the detections of run {r.run_id} ({exc}); "
                          f"delete {path.parent} and re-run the survey to redo it") from exc
        if "run_id" in det.columns:
            det = det.rename(columns={"run_id": "search_run_id"})
        det = det.drop(columns=[c for c in _RUN_COLUMNS if c in det.columns])
        for col in reversed(_RUN_COLUMNS):
            det.insert(0, col, getattr(r, col))
        if "detection" not in det.columns:
            det.insert(2, "detection", np.arange(len(det)))
        frames.append(in_tt(with_time_columns(det, path)))
    if frames:
        refs = {_reference_key(f.attrs) for f in frames}
        det = pd.concat(frames, ignore_index=True)
        det.attrs = dict(frames[0].attrs) if len(refs) == 1 and None not in refs else {}
    else:  # the columns and dtypes of a catalogue with detections
        from ..transients.detect import empty_table

        det = empty_table().rename(columns={"run_id": "search_run_id"})
        det = det.drop(columns=[c for c in _RUN_COLUMNS if c in det.columns])
        for col in reversed(_RUN_COLUMNS):
            det.insert(0, col, pd.Series(dtype="float64" if col in ("time_bin", "emin", "emax", "sigma",
                                                                    "size_arcsec") else "object"))
        det = in_tt(add_time_columns(det, None))
    return det, runs


def in_tt(det: pd.DataFrame) -> pd.DataFrame:
    """A run's detections with ``mjd_start``/``mjd_peak``/``mjd_stop`` as MJD
    in TT (from ``t_*`` and the table's time reference: a UTC run's leap
    seconds counted, TDB at the geocentre), so that the catalogue compares
    runs of any TIMESYS, and a ``timeref`` column (the run's TIMEREF, e.g.
    ``SOLARSYSTEM`` for barycentred times; empty when not given). Eager."""
    det = det.copy()
    a = det.attrs
    if "mjdref" in a and str(a.get("timesys", "TT")).upper() != "TT":
        ref = time_reference(a, source="detection table")
        for name in ("start", "peak", "stop"):
            if f"t_{name}" in det.columns:
                det[f"mjd_{name}"] = mjd_tt(det[f"t_{name}"].to_numpy(np.float64), (ref.mjdrefi, ref.mjdreff),
                                            ref.timesys)
    pos = det.columns.get_loc("utc_peak") + 1 if "utc_peak" in det.columns else len(det.columns)
    det.insert(pos, "timeref", pd.Series([time_reference_frame(a) or ""] * len(det), index=det.index,
                                         dtype=object))
    return det


def with_time_columns(det: pd.DataFrame, source="") -> pd.DataFrame:
    """A run's detections with ``mjd_start``/``mjd_peak``/``mjd_stop`` and
    ``utc_peak``: as the search wrote them, else from the time reference
    kept in the table's attrs (NaN, with a warning, for runs that have none)."""
    if all(c in det.columns for c in TIME_COLUMNS):
        return det
    if "mjdref" not in det.attrs:
        log.warning("%s: written before detection tables had times; its mjd_*/utc_peak are left empty (re-run "
                    "the survey with --overwrite to fill them)", source)
    return add_time_columns(det, det.attrs if "mjdref" in det.attrs else None)


def _reference_key(attrs: dict):
    if "mjdref" not in attrs:
        return None
    return (float(attrs.get("mjdrefi", attrs["mjdref"])), float(attrs.get("mjdreff", 0.0)), attrs.get("timesys"),
            time_reference_frame(attrs) or "")


def _ascii(text: str) -> str:
    """``text`` in printable ASCII, as FITS character columns must be: accents
    dropped (``Müller`` -> ``Muller``), other characters as ``?``."""
    out = []
    for ch in text:
        base = ch if ch.isascii() else unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
        out.append("".join(c if " " <= c <= "~" else "?" for c in base) or "?")
    return "".join(out)


def _fits_ready(df: pd.DataFrame, where="") -> dict:
    """The columns of ``df`` as numpy arrays FITS can hold, in order: bool,
    int64 (without nulls), float64 (NaN for nulls) and ASCII text (``U1`` at
    least, so that the text columns of an empty table stay text)."""
    out = {}
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_bool_dtype(s.dtype):
            out[c] = s.fillna(False).astype(bool).to_numpy()
        elif pd.api.types.is_integer_dtype(s.dtype) and not s.isna().any():
            out[c] = s.to_numpy(dtype=np.int64)
        elif pd.api.types.is_numeric_dtype(s.dtype):
            out[c] = s.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            text = ["" if (v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))) else str(v) for v in s]
            plain = [_ascii(t) for t in text]
            changed = [t for t, a in zip(text, plain) if t != a]
            if changed:
                log.warning("%s: column %r: %d value(s) not in printable ASCII written transliterated to FITS "
                            "(e.g. %r -> %r); the Parquet table keeps them as they are", where, c, len(changed),
                            changed[0], _ascii(changed[0]))
            out[c] = np.array(plain, dtype=str)
            if out[c].dtype.itemsize == 0:
                out[c] = out[c].astype("U1")
    return out


def _time_cards(attrs: dict) -> dict:
    """Time keywords of the ``t_*`` columns (seconds since MJDREF, in TIMESYS),
    when every run of the catalogue shares one reference."""
    from ..io.ogip import time_cards

    if "mjdref" not in attrs:
        return {"TIMEUNIT": "s", "COMMENT": "t_* columns are seconds since each observation's own MJDREF; "
                                           "use the mjd_* columns (MJD in TT) to compare observations"}
    return {**time_cards(attrs), "COMMENT": "mjd_* columns are MJD in TT (converted from TIMESYS)"}


def _write_fits(df: pd.DataFrame, path: Path, extname: str, meta: dict, times: dict) -> None:
    from astropy.io import fits
    from astropy.table import Table

    cols = _fits_ready(df, path.name)
    tab = Table(list(cols.values()), names=list(cols))  # from numpy: pandas would make empty text float64
    hdu = fits.table_to_hdu(tab)
    hdu.name = extname
    for i, name in enumerate(tab.colnames, start=1):
        hdu.header[f"TUNIT{i}"] = column_unit(name)
    for k, v in {**_time_cards(times), **meta}.items():
        hdu.header[k] = v
    with atomic_file(path, overwrite=True) as tmp:
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp, checksum=True)


def _write_regions(sources: pd.DataFrame, path: Path, radius_arcsec: float) -> None:
    lines = ["# Region file format: DS9 version 4.1", "fk5"]
    for s in sources.itertuples():
        lines.append(f'circle({s.ra:.6f},{s.dec:.6f},{radius_arcsec:g}") # text={{{s.name}}}')
    write_text(path, "\n".join(lines) + "\n")


#: the options of :func:`build_catalogue` with a range, checked by ``_check_options``
RANGED_OPTIONS = ("radius_arcsec", "match_radius_arcsec", "hot_radius_arcsec", "hot_min_obs", "hot_min_sources")


def _check_options(**values) -> None:
    """``ValueError`` naming an option of :func:`build_catalogue` out of its
    range: radii [arcsec] finite and > 0, counts whole numbers >= 1."""
    for name, v in values.items():
        if name.endswith("arcsec"):
            ok = isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v) and v > 0
            if not ok:
                raise ValueError(f"{name}={v!r}: must be a finite number > 0 arcsec "
                                 f"(command line --{name.removesuffix('_arcsec').replace('_', '-')})")
        elif not (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1):
            raise ValueError(f"{name}={v!r}: must be a whole number >= 1 (command line --{name.replace('_', '-')})")


def build_catalogue(out, radius_arcsec: float = 20.0, crossmatch=(), match_radius_arcsec: float = 20.0,
                    prefix: str = "XCUBE", write: bool = True, exclude_obs=None, hot_radius_arcsec: float = 20.0,
                    hot_min_obs: int = 3, hot_min_sources: int = 3, report: bool = True) -> Catalogue:
    """Build (and with ``write``, write atomically to ``out/catalogue/``) the
    catalogue of a survey output directory.

    Parameters
    ----------
    radius_arcsec : clustering radius [arcsec] for unique sources (friends-of-friends).
    crossmatch : catalogues to match the sources with: paths, or dicts with
        ``path`` and optional ``ra_col``, ``dec_col``, ``name_col``, ``prefix``.
    match_radius_arcsec : cross-match radius [arcsec].
    prefix : name prefix of the IAU-style source names.
    exclude_obs : observations to flag ``flag_excluded_obs`` (ids, or a text
        file with one id per line).
    hot_radius_arcsec, hot_min_obs, hot_min_sources : the hot regions
        (:func:`.vetting.hot_regions`).
    report : print how many detections each flag removes.

    Returns a :class:`Catalogue`. Eager.
    """
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"{out}: no such survey output directory")
    _check_options(radius_arcsec=radius_arcsec, match_radius_arcsec=match_radius_arcsec,
                   hot_radius_arcsec=hot_radius_arcsec, hot_min_obs=hot_min_obs, hot_min_sources=hot_min_sources)
    options = catalogue_options_record(radius_arcsec=radius_arcsec, crossmatch=crossmatch,
                                       match_radius_arcsec=match_radius_arcsec, prefix=prefix,
                                       exclude_obs=exclude_obs, hot_radius_arcsec=hot_radius_arcsec,
                                       hot_min_obs=hot_min_obs, hot_min_sources=hot_min_sources)
    if write:
        remove_stale(out / CATALOGUE_DIR)  # temporaries of killed builds (an hour old: not a running one)
    det, runs = load_detections(out)
    times = dict(det.attrs)  # the runs' common time reference (MJDREF, TIMESYS), for the FITS headers
    det, sources = cluster_detections(det, radius_arcsec=radius_arcsec, prefix=prefix)
    first_free = _first_free_id(out)
    det, sources = carry_source_ids(det, sources, _previous_detections(out), prefix=prefix, first_free=first_free)
    det, regions = flag_catalogue(det, exclude_obs, radius_arcsec=hot_radius_arcsec, min_obs=hot_min_obs,
                                  min_sources=hot_min_sources)
    for spec in crossmatch or ():
        opts = dict(spec) if isinstance(spec, dict) else {"path": spec}
        path = opts.pop("path")
        sources = crossmatch_table(sources, path, radius_arcsec=match_radius_arcsec, **opts)
    flags = flag_report(det)
    if report:
        print(f"quality flags of {len(det)} detections (n_only: removed by this flag alone; for the keep "
              "flag, removed by requiring it):")
        print(flags.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    cat = Catalogue(detections=det, sources=sources, runs=runs, hot_regions=regions, flag_report=flags)
    if write:
        info = {"radius_arcsec": radius_arcsec, "match_radius_arcsec": match_radius_arcsec,
                "n_hot_regions": len(regions), "hot_radius_arcsec": hot_radius_arcsec, "hot_min_obs": hot_min_obs,
                "hot_min_sources": hot_min_sources, "excluded_obs": sorted(read_obs_list(exclude_obs)),
                "flags": flags.to_dict("records"),
                "crossmatch": [str(c.get("path") if isinstance(c, dict) else c) for c in crossmatch or ()],
                "options": options,
                "next_source_id": max([first_free, *(int(i) + 1 for i in sources["source_id"])])}
        cat.directory = _write_catalogue(out / CATALOGUE_DIR, cat, info, times)
        log.info("%s: catalogue of %d detections, %d sources from %d runs", cat.directory, len(det), len(sources),
                 len(runs))
    return cat


def _first_free_id(out: Path) -> int:
    """The source id after every id the catalogues written before gave out
    (``next_source_id`` of ``catalogue.json``; 0 without one)."""
    try:
        value = json.loads((out / CATALOGUE_DIR / "catalogue.json").read_text()).get("next_source_id", 0)
        return max(int(value), 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def _previous_detections(out: Path) -> pd.DataFrame | None:
    """The detection keys and source ids of the catalogue written before (None without one)."""
    path = out / CATALOGUE_DIR / "detections.parquet"
    if not path.exists():
        return None
    try:
        import pyarrow.parquet as pq

        have = set(pq.read_schema(path).names)  # catalogues before search_run_id was part of the key lack it
        return pd.read_parquet(path, columns=[c for c in DETECTION_KEY + ["source_id", "source_name"] if c in have])
    except Exception as exc:  # noqa: BLE001 - an unreadable or older catalogue: ids start afresh
        log.warning("%s: cannot read the source ids of the previous catalogue (%s); numbering sources afresh",
                    path, exc)
        return None


def _match_record(spec) -> dict:
    opts = dict(spec) if isinstance(spec, dict) else {"path": spec}
    rec = {k: (str(v) if v is not None else None) for k, v in sorted(opts.items())}
    path = opts.get("path")
    if isinstance(path, (str, Path)):
        p = Path(path)
        rec["path"] = os.path.abspath(p)
        try:
            st = p.stat()
            rec["size"], rec["mtime_ns"] = st.st_size, st.st_mtime_ns
        except OSError:
            pass
    return rec


def catalogue_options_record(radius_arcsec: float = 20.0, crossmatch=(), match_radius_arcsec: float = 20.0,
                             prefix: str = "XCUBE", exclude_obs=None, hot_radius_arcsec: float = 20.0,
                             hot_min_obs: int = 3, hot_min_sources: int = 3, **_ignored) -> dict:
    """The options of :func:`build_catalogue` that shape a catalogue, as
    recorded in ``catalogue.json`` (``"options"``): match catalogues by
    absolute path with their size and modification time, excluded
    observations as a sorted list; the radii [arcsec] as floats. A survey
    resumed with nothing left to run rebuilds its catalogue when these
    differ from the recorded ones. Eager: reads the ``exclude_obs`` list
    file, if one, and stats the match catalogue files (their content is
    not read)."""
    return {"radius_arcsec": float(radius_arcsec), "match_radius_arcsec": float(match_radius_arcsec),
            "prefix": str(prefix), "hot_radius_arcsec": float(hot_radius_arcsec), "hot_min_obs": int(hot_min_obs),
            "hot_min_sources": int(hot_min_sources), "excluded_obs": sorted(read_obs_list(exclude_obs)),
            "crossmatch": [_match_record(c) for c in crossmatch or ()]}


def recorded_options(out) -> dict | None:
    """The ``"options"`` of ``out/catalogue/catalogue.json`` (None when absent or unreadable).
    Reads that small JSON file eagerly."""
    try:
        return json.loads((Path(out) / CATALOGUE_DIR / "catalogue.json").read_text()).get("options")
    except (OSError, ValueError, AttributeError):
        return None


def check_catalogue_values(options: dict | None) -> None:
    """Check ``options`` (keywords of :func:`build_catalogue`) as the
    catalogue step will, without reading anything: ``TypeError`` naming an
    unknown keyword (also of a ``crossmatch`` entry), ``ValueError`` naming
    an option out of its range (the rules of :func:`build_catalogue`)."""
    import inspect

    try:
        args = inspect.signature(build_catalogue).bind("out", **(options or {}))
    except TypeError as exc:
        raise TypeError(f"catalogue_options: {exc} (keywords of xcube.survey.build_catalogue)") from None
    args.apply_defaults()
    _check_options(**{name: args.arguments[name] for name in RANGED_OPTIONS})
    match_radius = args.arguments["match_radius_arcsec"]  # (build_catalogue gives it to crossmatch_table)
    for spec in args.arguments["crossmatch"] or ():
        if isinstance(spec, dict):
            try:
                inspect.signature(crossmatch_table).bind(None, spec.get("path"), radius_arcsec=match_radius,
                                                         **{k: v for k, v in spec.items() if k != "path"})
            except TypeError as exc:
                raise TypeError(f"catalogue_options: crossmatch entry {spec!r}: {exc}") from None


def check_catalogue_options(options: dict | None) -> None:
    """Read the match catalogues and the excluded-observation list of
    ``options`` (keywords of :func:`build_catalogue`) now (eagerly), so that a
    wrong path or column stops a survey before it runs rather than after.
    The values and keywords themselves are :func:`check_catalogue_values`'
    (:func:`xcube.survey.runner.check_survey_options` runs it first)."""
    from ..io.catalogue import read_catalogue

    options = options or {}
    read_obs_list(options.get("exclude_obs"))
    for spec in options.get("crossmatch") or ():
        opts = dict(spec) if isinstance(spec, dict) else {"path": spec}
        read_catalogue(opts["path"], ra_col=opts.get("ra_col"), dec_col=opts.get("dec_col"),
                       name_col=opts.get("name_col"))


def _write_catalogue(target: Path, cat: Catalogue, info: dict, times: dict) -> Path:
    """Write the catalogue's tables, FITS files (with the time reference
    ``times``), regions and ``catalogue.json`` (``info`` plus counts) into
    ``target`` atomically."""
    det, sources, runs = cat.detections, cat.sources, cat.runs
    meta = {"XCUBEVER": __version__, "CLUSTRAD": (info["radius_arcsec"], "clustering radius [arcsec]"),
            "NRUNS": len(runs), "NDET": len(det), "NSRC": len(sources)}
    with atomic_dir(target, overwrite=True) as tmp:
        det.to_parquet(tmp / "detections.parquet", index=False)
        sources.to_parquet(tmp / "sources.parquet", index=False)
        runs.to_parquet(tmp / "runs.parquet", index=False)
        cat.hot_regions.to_parquet(tmp / "hot_regions.parquet", index=False)
        cat.flag_report.to_csv(tmp / "flags.csv", index=False)
        _write_fits(det, tmp / "detections.fits", "DETECTIONS", meta, times)
        _write_fits(sources, tmp / "sources.fits", "SOURCES", meta, times)
        _write_regions(sources, tmp / "sources.reg", info["radius_arcsec"])
        full = {"xcube_version": __version__, "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "n_runs": len(runs),
                "n_detections": len(det), "n_sources": len(sources), **info}
        (tmp / "catalogue.json").write_text(json.dumps(full, indent=1, default=str))
    return target


def read_catalogue_dir(out) -> Catalogue:
    """Open a written catalogue (``out/catalogue/`` or the catalogue directory
    itself): a :class:`Catalogue` whose tables (one row per detection, per
    source, per run) are read into pandas eagerly."""
    d = Path(out)
    if (d / CATALOGUE_DIR).is_dir():
        d = d / CATALOGUE_DIR
    if not (d / "sources.parquet").exists():
        raise FileNotFoundError(f"{d}: no catalogue here; build it with `xcube catalogue OUT`")
    hot = pd.read_parquet(d / "hot_regions.parquet") if (d / "hot_regions.parquet").exists() else None
    flags = pd.read_csv(d / "flags.csv") if (d / "flags.csv").exists() else None
    return Catalogue(detections=pd.read_parquet(d / "detections.parquet"),
                     sources=pd.read_parquet(d / "sources.parquet"),
                     runs=pd.read_parquet(d / "runs.parquet"), directory=d, hot_regions=hot, flag_report=flags)
