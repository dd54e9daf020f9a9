"""``xcube pds``, ``xcube stitch`` and ``xcube plot``. ``register_timing``
imports nothing heavy; each command imports what it runs."""
from __future__ import annotations

import argparse
import logging
import math
import sys
from fractions import Fraction
from pathlib import Path

log = logging.getLogger("xcube.products")

__all__ = ["register_timing", "seconds"]


def seconds(text: str) -> float:
    """A duration [s] from ``"0.001953125"`` or a fraction such as ``"1/512"``.
    Eager (parses text)."""
    try:
        value = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError, OverflowError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (e.g. 0.5 or 1/512)") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number of seconds")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be positive")
    return value


def register_timing(subparsers) -> None:
    """Add the ``pds``, ``stitch`` and ``plot`` subcommands. Eager (argparse
    set-up; reads nothing)."""
    from ..cli import add_screen_option

    p = subparsers.add_parser(
        "pds", help="averaged power spectrum of event files or light curves -> FITS",
        description="Average the power spectra of segments inside the GTIs (Stingray's AveragedPowerspectrum, "
                    "streamed in chunks), rebin, and write a POWSPEC FITS table named by the xcube scheme and "
                    "listed in the directory's products.parquet. Several files run in parallel. Events are "
                    "screened with the mission's standard filter unless --no-screen (light curves are used as "
                    "they are).")
    p.add_argument("files", nargs="+", metavar="FILE", help="event file(s) or OGIP light curve(s)")
    p.add_argument("--segment", type=seconds, default=256.0, metavar="SECONDS", help="segment length (default 256)")
    p.add_argument("--dt", type=seconds, metavar="SECONDS",
                   help="bin width, e.g. 1/512 (events: required; light curves: default their bin)")
    p.add_argument("--norm", choices=("leahy", "frac", "abs", "none"), default="leahy",
                   help="normalisation (frac = rms; default leahy)")
    p.add_argument("--rebin", type=float, default=0.0, help="<0: logarithmic factor (e.g. -0.06); >0: whole "
                                                            "frequencies per bin; 0: none (default)")
    p.add_argument("--energy", type=float, nargs=2, metavar=("EMIN", "EMAX"), help="energy band [keV] (events)")
    p.add_argument("--region", help="source region (events): DS9 string or file")
    p.add_argument("--expr", help="event filter, evselect syntax (events)")
    add_screen_option(p)
    p.add_argument("--background-rate", type=float, metavar="RATE",
                   help="background rate in the source region [count/s] for the frac normalisation "
                        "(0 <= RATE < the mean rate)")
    p.add_argument("--subtract-noise", action="store_true",
                   help="subtract the white-noise level (Poisson; from the rate errors for non-photon counts)")
    p.add_argument("--average", action="store_true", help="one spectrum averaged over all FILEs")
    _outputs(p, "output file (one FILE, or --average)")
    p.set_defaults(func=_run_pds)

    p = subparsers.add_parser(
        "stitch", help="long-term light curve from many observations -> OGIP light curve",
        description="Join light curves of many observations (any missions) on one TT time axis (MJDREF of the "
                    "output), keeping every bin once, in time order, with MJD, OBS_ID and MISSION columns. Event "
                    "files are first re-extracted in parallel (--time-bin, --energy), screened with the "
                    "mission's standard filter unless --no-screen, as xcube lc does.")
    p.add_argument("files", nargs="+", metavar="FILE", help="OGIP light curves and/or event files")
    p.add_argument("--time-bin", type=seconds, metavar="SECONDS", help="bin width for event files")
    p.add_argument("--energy", type=float, nargs=2, metavar=("EMIN", "EMAX"), help="energy band for event files")
    p.add_argument("--region", help="source region for event files")
    add_screen_option(p)
    p.add_argument("--mjdref", type=float, help="MJD (TT) of time zero of the output (default: the day before "
                                                "the first bin)")
    _outputs(p, "output light curve", required=True)
    p.set_defaults(func=_run_stitch)

    p = subparsers.add_parser("plot", help="figure of any xcube product file -> PNG/PDF/SVG",
                              description="Draw the standard figure of a product: light curve (broken time axes "
                                          "at GTI gaps; long-term for stitched files), power spectrum, spectrum, "
                                          "image, or a search Zarr store's Bayes-factor map.")
    p.add_argument("file", metavar="FILE", nargs="+")
    p.add_argument("--out", "-o", help="figure file (one FILE), or a directory (existing, or ending in /) for "
                                       "<FILE stem>.png, <FILE name>.png for FILEs of one stem (src.lc.png, "
                                       "src.pha.png) (default: those names in the current directory)")
    p.add_argument("--dpi", type=int, default=110, help="resolution [dots per inch], 10 to 2400")
    p.add_argument("--band", help="of a multi-band light curve, only this band (a label such as 2-10keV, or an "
                                  "index; default: every band); of a one-band light curve, its band or none")
    p.add_argument("--overwrite", action="store_true", help="replace an existing figure")
    p.set_defaults(func=_run_plot)


def _outputs(p, help_out, required=False):
    p.add_argument("--out", "-o", required=required,
                   help=f"{help_out}; a directory (existing, or ending in /) gets the scheme's file name")
    p.add_argument("--out-dir", default=".", help="directory for products named by the scheme (default .)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--no-index", action="store_true", help="do not add the products to products.parquet")


def _pds_path(args, pds) -> Path:
    from .naming import output_file, product_name

    a = pds.attrs

    def name():
        return product_name(a.get("obs_id") or "multi", a.get("instrument") or "multi", "pds",
                            energy_band=args.energy, time_bin=a["dt"], norm=a["norm"], segment=a["segment"],
                            rebin=args.rebin)

    return output_file(args.out, name) if args.out else Path(args.out_dir) / name()


def _run_pds(args) -> int:
    from ..io.powspec import write_power_spectrum
    from .naming import add_to_index, names_directory
    from .powerspectrum import power_spectrum

    many = len(args.files) > 1
    from ..io.events import _is_zarr

    folders = [f for f in args.files if Path(f).is_dir() and not _is_zarr(Path(f))]
    if folders:
        raise ValueError(f"{', '.join(map(str, folders))}: a directory; xcube pds takes event or light-curve files "
                         "(one power spectrum each, or --average): give the files")
    if args.dt is None:
        from ..io.fitsutil import check_path
        from ..io.product_info import product_kind

        need = [f for f in args.files if Path(f).is_dir() or product_kind(check_path(f)) == "events"]
        if need:
            raise ValueError(f"{', '.join(map(str, need))}: event data; give --dt, the bin width of the "
                             "segments (e.g. --dt 1/512)")
    if args.out and many and not args.average and not names_directory(args.out):
        raise ValueError("--out names one file: give one FILE, use --average, or --out-dir for several")
    _single_band(args.files)
    kw = dict(segment=args.segment, dt=args.dt, norm=args.norm, rebin=args.rebin or None, energy_band=args.energy,
              region=args.region, expr=args.expr, screening=args.screen, background_rate=args.background_rate,
              subtract_noise=args.subtract_noise)
    if many and not args.average:  # one spectrum per file, in parallel: their grids may differ (dt, segment)
        import dask

        spectra = list(dask.compute(*[power_spectrum(f, compute=False, **kw) for f in args.files]))
    else:
        spectra = [power_spectrum(args.files if many else args.files[0], average=args.average, **kw)]
    paths = [_pds_path(args, pds) for pds in spectra]
    same = [p for p in dict.fromkeys(paths) if paths.count(p) > 1]
    if same:  # before anything is written (the second would stop on the first's file)
        raise ValueError(f"{', '.join(map(str, args.files))}: {paths.count(same[0])} inputs give the power spectrum "
                         f"{same[0]} (the same observation and camera, or a file given twice); give them apart, "
                         "or use --average")
    if not args.overwrite and any(p.exists() for p in paths):
        raise FileExistsError(f"{next(p for p in paths if p.exists())}: exists; pass --overwrite to replace it")
    for pds, out in zip(spectra, paths):
        path = write_power_spectrum(out, pds, overwrite=args.overwrite)
        if not args.no_index:
            add_to_index(path.parent, path, pds.attrs, kind="pds", time_bin=pds.attrs["dt"],
                         energy_band=args.energy, inputs=args.files)
        print(f"{path}: {pds.sizes['freq']} frequencies, {pds.attrs['norm']}, {pds.attrs['n_segments']} x "
              f"{pds.attrs['segment']:g} s segments, mean rate {pds.attrs['mean_rate']:.4g} count/s, "
              + ("noise level (from the rate errors) " if pds.attrs.get("err_dist") == "gauss" else "Poisson level ")
              + f"{pds.attrs['poisson_level']:.4g}")
    return 0


def _single_band(files) -> None:
    """``ValueError`` naming a multi-band light-curve file among ``files``
    (xcube pds has no option to choose a band); reads headers only."""
    from ..io.fitsutil import check_path
    from ..io.lightcurve_file import band_count
    from ..io.product_info import product_kind

    for f in files:
        if Path(f).is_dir() or product_kind(check_path(f)) != "lightcurve":
            continue
        n = band_count(f)
        if n > 1:
            raise ValueError(
                f"{f}: a light curve of {n} energy bands; xcube pds takes one band and has no option to choose "
                f"it. Give a single-band light curve: extract it from the events (xcube lc EVENTS --energy EMIN "
                f"EMAX --out band.lc), or write one band of this file in Python "
                f"(xcube.write_lightcurve('band.lc', xcube.read_lightcurve('{f}').isel(band=0)))")


def _run_stitch(args) -> int:
    import numpy as np

    from ..io.lightcurve_file import read_lightcurve
    from ..io.ogip import write_lightcurve
    from ..io.product_info import product_kind
    from .naming import add_to_index, output_file, product_name
    from .stitch import extract_lightcurves, stitch

    if args.mjdref is not None and not np.isfinite(args.mjdref):
        raise ValueError(f"--mjdref {args.mjdref}: must be a finite number (an MJD)")

    kinds = {f: product_kind(f) for f in args.files}
    # files that cannot be read (truncated, corrupt) are skipped, as event files that fail to extract
    damaged = _damaged([f for f, k in kinds.items() if k == "unknown" and not Path(f).is_dir()])
    events = [f for f, k in kinds.items() if k == "events"]
    other = [f for f, k in kinds.items() if k not in ("events", "lightcurve") and f not in damaged]
    if other:
        raise ValueError(f"stitch: not light curves or event files: {', '.join(other)}")
    for f, why in damaged.items():
        print(f"xcube stitch: {why}; skipped", file=sys.stderr)
    if len(damaged) == len(args.files):
        raise _unreadable(damaged)
    if events and args.time_bin is None:
        raise ValueError(f"stitch: {len(events)} event file(s) given; --time-bin is needed to extract light curves")
    lcs = [read_lightcurve(f) for f, k in kinds.items() if k == "lightcurve"]
    extracted, failed = [], {}
    if events:  # (a file that fails is skipped, with a warning naming it: the others are stitched)
        extracted = extract_lightcurves(events, args.time_bin, energy_band=args.energy, region=args.region,
                                        screening=args.screen, skipped=failed)
        lcs += extracted
    if not lcs:  # every input skipped (a truncated table behind intact headers fails only here)
        raise _unreadable({**damaged, **failed})
    lc = stitch(lcs, mjdref=args.mjdref)  # (attrs mission/instrument: the shared one, or all joined with '+')
    cols = {"MJD": lc["mjd"].values, "OBS_ID": lc["obs_id"].values, "MISSION": lc["mission"].values}
    out = output_file(args.out, lambda: product_name("multi", "multi", "lc_stitched", energy_band=args.energy,
                                                     time_bin=args.time_bin))
    path = write_lightcurve(out, lc, overwrite=args.overwrite, columns=cols,  # NET stays NET (attrs rate_kind)
                            header={"STITCHED": (True, "long-term light curve (xcube stitch)"),
                                    "NOBS": lc.attrs["n_observations"]})
    if not args.no_index:
        add_to_index(Path(path).parent, path, lc.attrs, kind="lc_stitched", inputs=args.files)
    good = np.asarray(lc["exposure"].values) > 0
    print(f"{path}: {lc.sizes['time']} bins from {lc.attrs['n_lightcurves']} light curve(s) of "
          f"{lc.attrs['n_observations']} observation(s) "
          f"({', '.join(lc.attrs['missions'])}), "
          f"MJD {lc['mjd'].values[good].min():.3f} - {lc['mjd'].values[good].max():.3f}")
    if damaged or len(extracted) < len(events):  # written without them: say so, and fail the command
        done = {str(Path(x.attrs.get("source", "")).resolve()) for x in extracted}
        skipped = [str(f) for f in damaged] + [str(f) for f in events if str(Path(f).resolve()) not in done]
        print(f"xcube stitch: {len(skipped)} of {len(events) + len(damaged)} event files skipped "
              f"({', '.join(skipped)}; the messages above say why); the light curve holds the others",
              file=sys.stderr)
        return 1
    return 0


def _unreadable(reasons: dict) -> ValueError:
    """The error of a stitch none of whose inputs could be read: one line
    naming each file ``reasons`` holds and why (``{file: message}``)."""
    shown = "; ".join(why if str(f) in why else f"{f}: {why}" for f, why in reasons.items())
    return ValueError(f"stitch: no input could be read, nothing to stitch: {shown}")


def _damaged(files) -> dict:
    """``{file: message}`` of the ``files`` (of unknown kind) that cannot be
    opened as FITS, the one-line message naming the file and the damage
    (truncated, corrupt, not FITS). Eager (opens each file's headers)."""
    from ..io.fitsutil import open_fits

    out = {}
    for f in files:
        try:
            open_fits(f).close()
        except OSError as exc:
            out[f] = " ".join(str(exc).split())  # one line (astropy's reasons span several)
    return out


def _run_plot(args) -> int:
    from ..plot import plot_files
    from ..plot.base import check_dpi

    check_dpi(args.dpi, f"--dpi {args.dpi}")  # (before anything is read; plot_files checks it again as dpi=)
    band = getattr(args, "band", None)  # a label, or an index as text (plot_file takes both)
    kwargs = {} if band is None else {"band": band}
    outs = plot_files(args.file, args.out, dpi=args.dpi, overwrite=args.overwrite, **kwargs)
    for out, file in zip(outs, args.file):
        print(f"{out}: figure of {file}")
    return 0
