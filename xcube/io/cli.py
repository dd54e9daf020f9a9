"""``xcube info`` and ``xcube convert``: event files at a glance, and to Zarr."""
from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import numpy as np

log = logging.getLogger("xcube.io")

__all__ = ["register", "summary", "format_summary", "store_name"]

_STRIP = (".fits.gz", ".evt.gz", ".fit.gz", ".fts.gz", ".fits", ".fit", ".fts", ".evt", ".ftz", ".gz", ".zarr")


def store_name(path) -> str:
    """Zarr store name for an event file: its name without the FITS/gzip
    suffixes, plus ``.zarr``. Eager (string work only)."""
    name = Path(path).name
    low = name.lower()
    for suffix in _STRIP:
        if low.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return f"{name}.zarr"


def summary(ev) -> dict:
    """Facts about an EventList for ``xcube info``.

    Computes the first and last time (reads the first and last chunk of
    ``time``) and the minimum/maximum of ``pi`` and ``energy`` (one pass over
    those columns); everything else comes from attrs and shapes.
    Eager: computes those values of the lazy columns with Dask here; times in
    [s] of mission time, ``exposure`` [s], ``energy_range`` [keV].
    """
    import dask

    from .. import gti as gtimod

    n = int(ev.sizes["event"])
    t = ev["time"].data
    lo, hi = dask.compute(t[0], t[-1]) if n else (np.nan, np.nan)
    out = {
        "source": ev.attrs.get("source", ""),
        "mission": ev.attrs.get("mission", ""),
        "instrument": ev.attrs.get("instrument", ""),
        "profile": ev.attrs.get("profile", ""),
        "obs_id": ev.attrs.get("obs_id", ""),
        "object": ev.attrs.get("object", ""),
        "mode": " ".join(str(ev.attrs[k]) for k in ("datamode", "submode") if ev.attrs.get(k)),
        "n_events": n,
        "time_first": float(lo),
        "time_last": float(hi),
        "tstart": float(ev.attrs.get("tstart", np.nan)),
        "tstop": float(ev.attrs.get("tstop", np.nan)),
        "mjdref": float(ev.attrs.get("mjdref", np.nan)),
        "mjdrefi": float(ev.attrs.get("mjdrefi", ev.attrs.get("mjdref", np.nan))),
        "mjdreff": float(ev.attrs.get("mjdreff", 0.0)) if "mjdrefi" in ev.attrs else 0.0,
        "timesys": str(ev.attrs.get("timesys") or "TT").strip().upper(),
        "n_gti": int(ev.sizes.get("gti", 0)),
        "exposure": gtimod.exposure(gtimod.from_dataset(ev)) if "gti_start" in ev else float("nan"),
        "gti_kind": ev.attrs.get("gti_kind", ""),
        "ccds_with_gti": sorted({int(c) for c in ev["ccd_gti_ccd"].values}) if "ccd_gti_ccd" in ev else [],
        "columns": {name: str(ev[name].dtype) for name in ev.data_vars if ev[name].dims == ("event",)},
    }
    ranges = {}
    for name in ("pi", "energy"):
        if name in ev and n:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN energy (no conversion)
                # NaN-aware: a float PI column (eROSITA) with a NaN channel still has a range and an energy
                ranges[name] = tuple(float(v) for v in dask.compute(np.nanmin(ev[name].data),
                                                                     np.nanmax(ev[name].data)))
    out["pi_range"] = ranges.get("pi")
    out["energy_range"] = ranges.get("energy")
    return out


def _utc(s: dict, t: float) -> str:
    """ISO 8601 UTC (to the second) of mission time ``t`` [s], in the file's TIMESYS; ``?`` when unknown."""
    if not (np.isfinite(s["mjdref"]) and np.isfinite(t)):
        return "?"
    from ..times import TimeReference, times

    try:
        return str(times(t, TimeReference(s["mjdrefi"], s["mjdreff"], s["timesys"], source=s["source"]), to="iso",
                         precision=3))
    except ValueError:  # a time system astropy cannot convert
        return f"? (TIMESYS {s['timesys']})"


def format_summary(s: dict, path=None) -> str:
    """Human-readable text of :func:`summary` (``path``: what was opened, if
    not the source file itself, e.g. a Zarr store). Eager (formatting of the
    dict; reads no data)."""
    span = s["time_last"] - s["time_first"]
    head = str(path) if path is not None else s["source"]
    if path is not None and Path(path).resolve() != Path(s["source"] or path).resolve():
        head += f" (from {s['source']})"
    lines = [
        head,
        f"  mission     : {s['mission']} {s['instrument']} (profile {s['profile']})"
        + (f", mode {s['mode']}" if s["mode"] else ""),
        f"  obs id      : {s['obs_id'] or '-'}    object: {s['object'] or '-'}",
        f"  events      : {s['n_events']:,}",
        f"  time span   : {s['time_first']:.6f} - {s['time_last']:.6f} s ({span:.1f} s; "
        f"UTC {_utc(s, s['time_first'])} - {_utc(s, s['time_last'])}; MJDREF {s['mjdref']!r} {s['timesys']})",
        f"  GTI exposure: {s['exposure']:.1f} s in {s['n_gti']} interval(s)"
        + (f" ({s['gti_kind']}" + (f" of CCDs {s['ccds_with_gti']}" if s["ccds_with_gti"] else "") + ")"
           if s["gti_kind"] else ""),
    ]
    if s["energy_range"] is not None and np.all(np.isfinite(s["energy_range"])):
        lo, hi = s["energy_range"]
        pl, ph = s["pi_range"]
        lines.append(f"  energy range: {lo:.3f} - {hi:.3f} keV (PI {pl:g} - {ph:g})")
    elif s["pi_range"] is not None:
        lines.append(
            f"  energy range: no PI-to-energy conversion (channels {s['pi_range'][0]:g} - {s['pi_range'][1]:g})"
        )
    else:
        lines.append("  energy range: - (no PI column)")
    cols = ", ".join(f"{k} ({v})" for k, v in s["columns"].items())
    lines.append(f"  columns     : {cols}")
    return "\n".join(lines)


def _product_kind(path) -> str:
    """``"lightcurve"``, ``"spectrum"``, ``"power_spectrum"``, ``"image"`` or
    ``"gti"`` for such FITS products, ``"cube"`` for a search result's Zarr
    store, else ``"events"`` (event files, event Zarr stores and anything
    :func:`open_events` should judge). Reads headers only."""
    from .fitsutil import check_path
    from .product_info import PRODUCT_KINDS, product_kind

    kind = product_kind(path if Path(path).is_dir() else check_path(path))
    return kind if kind in PRODUCT_KINDS else "events"


def _spectrum_row(path) -> tuple[Path, int] | None:
    """``(file, k)`` of ``"file.pha{k}"`` (XSPEC's name of row ``k`` of a PHA
    type II file; parsed by :func:`xcube.io.ogip.read_spectrum`'s rule: only
    when no file of the full name exists), else None. Whether ``file`` is a
    spectrum is :func:`~xcube.io.product_info.product_summary`'s check."""
    from .ogip import _split_row

    base, row = _split_row(path, None)
    return None if row is None else (base, row)


def _files(paths) -> list:
    """``paths`` with each directory (not a Zarr store) replaced by the event
    files below it (:func:`xcube.io.events.open_events`'s walk)."""
    from .events import _expand

    return [f for p in paths for f in _expand(str(p))]


def _info(args) -> int:
    from ..cli import error_text
    from .events import open_events

    status = 0
    for path in _files(args.files):
        try:
            from .product_info import product_summary

            picked = _spectrum_row(path)  # ('file.pha{k}': one row of a PHA type II file)
            if picked is not None:
                base, row = picked  # (_product_kind: FileNotFoundError naming the file without its {k})
                print(product_summary(base, _product_kind(base), row=row))
                continue
            kind = _product_kind(path) if args.hdu is None else "events"
            if kind != "events":
                print(product_summary(path, kind))
                continue
            ev = open_events(path, instrument=args.instrument, hdu=args.hdu)
            print(format_summary(summary(ev), path))
        except BrokenPipeError:
            raise  # (the reader of stdout went away: the command ends, see cli.main)
        except (OSError, ValueError, KeyError) as exc:
            print(f"xcube info: error: {error_text(exc)}", file=sys.stderr)
            status = 1
    return status


def _convert(args) -> int:
    from ..cli import error_text
    from .cache import to_zarr
    from .events import open_events
    from .paths import expand_path

    out = expand_path(args.out)  # (a quoted '~/x' too: no directory named '~')
    files = _files(args.files)
    names: dict = {}
    for path in files:  # two inputs of one name would write one store, the second over the first
        names.setdefault(store_name(path), []).append(path)
    clash = {k: v for k, v in names.items() if len(v) > 1}
    if clash:
        name, paths = next(iter(clash.items()))
        raise ValueError(f"{', '.join(map(str, paths))}: these would all be converted to {out / name}; convert them "
                         "into separate --out directories")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: a file, not a directory; --out names the directory of the stores")
    made = _missing_dirs(out)
    out.mkdir(parents=True, exist_ok=True)
    status, written = 0, 0
    try:
        for path in files:
            store = out / store_name(path)
            try:
                if store.exists() and not args.overwrite:
                    raise FileExistsError(f"{store}: exists; pass --overwrite to replace it")
                ev = open_events(path, instrument=args.instrument, chunks=args.chunks, hdu=args.hdu)
                to_zarr(ev, store, overwrite=args.overwrite)
                written += 1
                print(f"{path} -> {store} ({ev.sizes['event']:,} events)")
            except BrokenPipeError:
                raise
            except (OSError, ValueError, KeyError) as exc:
                print(f"xcube convert: error: {error_text(exc)}", file=sys.stderr)
                status = 1
    finally:
        if not written:  # nothing converted: leave no --out directory (or parents) that was not there before
            _remove_empty(made)
    return status


def _missing_dirs(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet (what
    ``mkdir(parents=True)`` would make), deepest first. Reads nothing else."""
    missing = []
    while not (path.exists() or path.is_symlink()) and path.parent != path:
        missing.append(path)
        path = path.parent
    return missing


def _remove_empty(dirs) -> None:
    """Remove the directories ``dirs`` (deepest first) while they are empty;
    stop at the first that is not (something else was written there)."""
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            return


def register(subparsers) -> None:
    """Add the ``info`` and ``convert`` subcommands. Eager (argparse set-up;
    reads nothing)."""
    from ..cli import add_hdu_option, positive_int

    p = subparsers.add_parser(
        "info", help="summarise event files (mission, events, time span, GTIs, columns) and products",
        description="Summarise event files: mission and instrument, number of events, time span in mission "
                    "seconds and in UTC (converted from the file's MJDREF and TIMESYS), good time, energy range "
                    "and columns. Light curves, PHA spectra, power spectra, images and GTI files get a summary "
                    "of their own (bins, exposure and mean rate; channels and counts; frequencies and "
                    "normalisation; pixels and WCS; intervals). A PHA type II file (several spectra) lists its rows; "
                    "'file.pha{k}' (quoted for the shell) summarises row k, as XSPEC names it.")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="event files (FITS, gzip) or xcube Zarr stores; light curves, spectra, power spectra, GTIs; "
                        "'file.pha{k}': row k (1-based) of a PHA type II spectrum file; a directory: the event files "
                        "in it")
    p.add_argument("--instrument", default=None, help="mission profile to use instead of detecting it")
    add_hdu_option(p)
    p.set_defaults(func=_info)

    p = subparsers.add_parser(
        "convert", help="convert event files to xcube Zarr stores",
        description="Convert event files into xcube Zarr stores (time-sorted, chunked), one <name>.zarr per file, "
                    "for fast repeated reading.")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="event files to convert (a directory: the event files in it)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (one <name>.zarr per file)")
    p.add_argument("--overwrite", action="store_true", help="replace existing stores")
    p.add_argument("--instrument", default=None, help="mission profile to use instead of detecting it")
    add_hdu_option(p)
    p.add_argument("--chunks", type=positive_int, default=None, metavar="N",
                   help="events per chunk of the stores, > 0 (default 1048576)")
    p.set_defaults(func=_convert)
