"""``xcube demo`` and ``xcube search``."""
from __future__ import annotations

import math
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path


def register(sub) -> None:
    from ..cli import Pairs, add_hdu_option, add_screen_option, non_negative_int, number_type, positive_float

    p = sub.add_parser(
        "demo", help="simulate an observation with transients, search it, write results",
        description="Simulate an XMM-Newton EPIC-pn observation with two flares and an eclipse, run the transient "
                    "search on it at 50 s and 200 s, write the event file, the truth table and the results, and "
                    "print the injected transients beside the detections (times as UTC and as seconds from the "
                    "observation start).")
    p.add_argument("--out", default="xcube-demo",
                   help="output directory; it must not exist or be empty, unless --overwrite (default ./xcube-demo)")
    seed = p.add_argument("--seed", type=non_negative_int, default=1,
                          help="random seed of the simulation (a whole number >= 0)")
    duration = p.add_argument("--duration", type=_demo_duration, default=40_000.0,
                              help=f"observation length [s]; at least {DEMO_MIN_DURATION:.0f} s, the length the "
                                   "demo's transients need")
    for action in (seed, duration):  # NaN refused as by every number option (search --time-bin nan): status 1
        action.type = number_type(action, action.type)
    p.add_argument("--overwrite", action="store_true",
                   help="replace the output directory of an earlier xcube demo as a whole (refused when it holds "
                        "files the demo does not write)")
    p.set_defaults(func=_demo)

    s = sub.add_parser(
        "search", help="transient search of one observation (one or more cameras)",
        description="Search one observation (one or several cameras, merged over their common good time) for "
                    "flares and eclipses with the EXOD Bayes-factor method, over a grid of time bins x energy "
                    "bands x sigma in one pass over the events. Writes one directory per parameter set "
                    "(detections.csv/.parquet with mjd_*/utc_peak times, light curves, DS9 regions, figures) and "
                    "prints the detections.")
    s.add_argument("files", nargs="+", help="event files (cameras of one observation) or Zarr stores")
    s.add_argument("--time-bin", type=float, nargs="+", default=[50.0], help="frame length(s) [s]")
    s.add_argument("--energy", type=float, nargs="+", action=Pairs, default=None,
                   help="energy band edges in pairs [keV], e.g. 0.2 2 2 12 0.2 12 (default: 0.2 12 for XMM-Newton, "
                        "the mission's calibrated range elsewhere: NuSTAR 3 79)")
    s.add_argument("--size-arcsec", type=positive_float, default=20.0, help="spatial cell [arcsec]")
    s.add_argument("--sigma", type=float, nargs="+", default=[3.0], help="detection level(s)")
    s.add_argument("--gti-only", action="store_true", help="drop bad-time-interval frames")
    s.add_argument("--catalogue", help="known sources (FITS/CSV with RA, Dec) to mask from the background")
    s.add_argument("--ra-col", help="RA column of --catalogue (default: found by name)")
    s.add_argument("--dec-col", help="Dec column of --catalogue (default: found by name)")
    s.add_argument("--radius-col", help="mask radius column of --catalogue [arcsec] (default: found by name)")
    s.add_argument("--no-hygiene", action="store_true",
                   help="keep detector border, hot pixels/columns, flickering pixels and instrumental clusters")
    s.add_argument("--shifts", action="store_true",
                   help="also search the grids shifted by half a cell and half a frame, and merge")
    s.add_argument("--no-subsets", action="store_true",
                   help="merge all cameras over their common good time instead of splitting exposure subsets")
    s.add_argument("--out", required=True, help="output directory (one sub-directory per run; all runs' detections in "
                                                "detections.csv/.parquet/.ecsv); "
                                                "it must not exist or be empty, unless --overwrite")
    s.add_argument("--overwrite", action="store_true",
                   help="replace the output directory of an earlier xcube search as a whole (its runs are not "
                        "kept beside the new ones); refused when it holds files a search does not write")
    s.add_argument("--no-figures", action="store_true", help="skip PNG figures")
    add_screen_option(s)
    add_hdu_option(s)
    s.add_argument("--instrument", default=None,
                   help="mission profile of every FILE, overriding detection (e.g. xmm-pn; for files whose "
                        "TELESCOP/INSTRUME xcube does not know)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_search)


#: the demo's transients, as fractions of the observation length and seconds: flares peaking at 30 % and 70 %
#: (Gaussian sigma 60 s and 300 s; each spans +-3 sigma), an eclipse of 2000 s starting at 45 %
DEMO_FLARES = ((0.3, 0.8, 60.0), (0.7, 0.25, 300.0))  # (t_peak fraction, amplitude [ct/s], width [s])
DEMO_ECLIPSE = (0.45, 2000.0)  # (t_start fraction, duration [s])
#: the shortest demo observation [s] that holds every transient whole (rounded up to 100 s)
DEMO_MIN_DURATION = 100.0 * math.ceil(max(
    *(3 * w / min(f, 1 - f) for f, _, w in DEMO_FLARES), DEMO_ECLIPSE[1] / (1 - DEMO_ECLIPSE[0])) / 100.0)


def check_demo_duration(duration, name: str = "duration") -> float:
    """``duration`` [s] as a float; ``ValueError`` (naming ``name``) unless it
    is a finite number of at least :data:`DEMO_MIN_DURATION`: the demo's
    transients keep their lengths, and a shorter observation would put
    flares before its start and the eclipse past its end."""
    label = f"{name}={duration!r}" if name else repr(duration)
    try:
        value = float(duration)
    except (TypeError, ValueError):
        raise ValueError(f"{label}: not a number of seconds") from None
    if not math.isfinite(value) or value < DEMO_MIN_DURATION:
        (f2, _, w2), (fe, de) = DEMO_FLARES[1], DEMO_ECLIPSE
        raise ValueError(f"{label}: the demo needs at least {DEMO_MIN_DURATION:.0f} s to hold its "
                         f"transients (a {de:.0f} s eclipse from {fe:.0%} of the observation, a flare spanning "
                         f"+-{3 * w2:.0f} s at {f2:.0%}); give {DEMO_MIN_DURATION:.0f} s or more (default 40000)")
    return value


def _demo_duration(text: str) -> float:
    """argparse type of ``xcube demo --duration``."""
    import argparse

    try:
        return check_demo_duration(text, name="")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


#: what an ``xcube demo`` directory holds (the files and directories ``demo`` writes)
DEMO_ENTRIES = ("events_pn.fits", "truth.csv", "results")


def _earlier_output(p: Path, command: str) -> bool:
    """Whether the entry ``p`` of an existing output directory is one an
    earlier ``xcube {command}`` writes (or a hidden temporary of a killed one)."""
    if p.name.startswith(".") and (".tmp-" in p.name or ".old-" in p.name):
        return True
    if command == "demo":
        return p.name in DEMO_ENTRIES
    from .result import DETECTION_FILES  # (the table of all runs at the top)

    return p.name in DETECTION_FILES or (p.is_dir() and (p / "summary.json").is_file())


def check_output_dir(out, overwrite: bool, command: str) -> Path:
    """Refuse, before any work, an output directory ``out`` that ``xcube
    {command}`` must not write: a file; an existing directory with something
    in it unless ``overwrite``; with ``overwrite``, one holding anything an
    earlier ``xcube {command}`` does not write (``--overwrite`` replaces the
    whole directory, so it must not delete other files, nor the inputs); a
    directory that cannot be created or written. Returns ``out`` as an
    absolute path. Eager, cheap (lists one directory)."""
    out = Path(os.path.abspath(out))
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out}: exists and is not empty; pass --overwrite to replace it, or choose "
                                  "another --out")
        foreign = sorted(p.name for p in out.iterdir() if not _earlier_output(p, command))
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise FileExistsError(f"{out}: holds {shown}, which xcube {command} does not write; --overwrite "
                                  f"replaces only the output directory of an earlier xcube {command}: move "
                                  "those away or choose another --out")
    base = next(q for q in [out, *out.parents] if q.exists())
    if not base.is_dir():
        raise NotADirectoryError(f"{out}: cannot create it: {base} is a file, not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise PermissionError(f"{out}: cannot write into {base} (permission denied); choose another --out")
    return out


@contextmanager
def writing_dir(out, overwrite: bool, command: str, atomic: bool = True):
    """Write a command's output directory: yields the directory to write
    into; when the block ends without an exception that directory is ``out``,
    replacing an earlier one (``overwrite``, checked by
    :func:`check_output_dir`), so that no earlier file stays beside the new
    ones. On an exception (also Ctrl-C, SIGTERM) an earlier ``out`` is left
    as it was and what was written is removed, with the directories this
    call created.

    ``atomic``: write into a hidden temporary directory beside ``out`` and
    rename it into place at the end (a reader never sees a partial
    directory, and a kill -9 leaves only a hidden ``.<out>.tmp-*``). Without
    it (for outputs that record their own paths, as the demo's results name
    its event file) an earlier ``out`` is moved aside to ``.<out>.old-*``
    while the new one is written in place, then removed."""
    from ..io.atomic import atomic_dir, temporary_name
    from ..io.paths import remove_empty_up_to

    out = check_output_dir(out, overwrite, command)
    created = next((q for q in reversed([out, *out.parents]) if not q.exists()), None)
    earlier = out.is_dir() and any(out.iterdir())
    if atomic and (earlier or not out.exists()):
        try:
            with atomic_dir(out, overwrite=True) as tmp:
                yield tmp
        except BaseException:
            remove_empty_up_to(out.parent, created)
            raise
        return
    old = None
    if earlier:
        old = temporary_name(out, "old")
        os.rename(out, old)
    try:
        out.mkdir(parents=True, exist_ok=True)
        yield out
    except BaseException:
        if old is not None or created is not None:
            shutil.rmtree(out, ignore_errors=True)
        else:  # an empty directory that was there before: emptied again
            for p in list(out.iterdir()) if out.is_dir() else []:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink()
        if old is not None:
            os.rename(old, out)
        remove_empty_up_to(out.parent, created)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def cameras(events) -> list:
    """The EventLists of ``events`` (EventLists, and DataTrees such as
    ``open_events(DIR)`` returns for a directory of camera files, expanded
    into their event nodes), in order. Eager, cheap: structure only."""
    import xarray as xr

    from ..io.events import event_nodes

    out = []
    for e in [events] if isinstance(events, (xr.Dataset, xr.DataTree)) else events:
        out += list(event_nodes(e).values()) if isinstance(e, xr.DataTree) else [e]
    return out


def observation_start(events) -> float:
    """T0 of the printed tables [s, mission time]: the start of the cameras'
    (EventLists, or DataTrees of cameras) common good time, where the
    search's frames start (so that ``t_*-T0`` are whole frames); without a
    common good time, the first good-time start of any camera."""
    from .. import gti as gtimod

    events = cameras(events)
    gtis = [gtimod.from_dataset(e) for e in events]
    common = gtimod.intersection(*gtis)
    if len(common[0]):
        return float(common[0][0])
    starts = [float(g[0][0]) for g in gtis if len(g[0])]
    return min(starts) if starts else float(events[0].attrs.get("tstart", 0.0))


def _print_t0(t0: float, events) -> None:
    from ..times import times

    try:
        utc = f" = {times(t0, events, to='iso', precision=3)} UTC"
    except ValueError:
        utc = ""
    print(f"T0 = {t0:.3f} s (mission time){utc}: the observation start; t_*-T0 columns are seconds after it")


def _print_table(results, t0: float | None = None) -> None:
    from ..tables import format_table

    rows = results.summary
    cols = ["run_id", "n_detections", "exposure", "n_bad_frames", "n_bti", "expected_false_alarms_peak",
            "hygiene_hot_pixels", "hygiene_flickering_bursts", "hygiene_instrumental_clusters", "timings_total",
            "reason"]
    print(format_table(rows, columns=[c for c in cols if c in rows]))
    det = results.detections
    if len(det):
        show = ["run_id", "kind", "name", "ra", "dec", "utc_peak", "t_peak", "t_start", "t_stop", "log10_bayes",
                "sigma_equivalent", "counts", "expected"]
        print()
        print(format_table(det, t0=t0, columns=show))


def _search(args) -> int:
    from ..io import open_events
    from ..progress import progress_bar
    from .params import energy_bands_from_flat
    from .search import search_transients

    out = check_output_dir(args.out, args.overwrite, "search")  # before the work, not after it
    catalogue = args.catalogue
    if catalogue is not None:  # read (and checked) before the events pass, not after it
        from ..io.catalogue import read_catalogue

        catalogue = read_catalogue(catalogue, ra_col=args.ra_col, dec_col=args.dec_col, radius_col=args.radius_col)
    bar = progress_bar(len(args.files), desc="open", unit="file", enabled=not args.quiet and len(args.files) > 1)
    evs = []
    for f in args.files:
        evs.append(open_events(f, hdu=args.hdu, instrument=args.instrument))
        bar.update(1)
    bar.close()
    evs = cameras(evs)  # a directory of camera files opens as a DataTree: its cameras
    bands = energy_bands_from_flat(args.energy) if args.energy else None  # None: the mission's default band
    res = search_transients(evs if len(evs) > 1 else evs[0], time_bin=list(args.time_bin),
                            size_arcsec=args.size_arcsec, energy_band=bands,
                            sigma=list(args.sigma), gti_only=args.gti_only, catalogue=catalogue,
                            screening=args.screen, progress=not args.quiet, hygiene=not args.no_hygiene,
                            shifts=args.shifts, subsets=not args.no_subsets)
    with writing_dir(out, args.overwrite, "search") as tmp:
        res.write(tmp, overwrite=True, figures=not args.no_figures)
    t0 = observation_start(evs)
    _print_t0(t0, evs[0])
    _print_table(res, t0)
    print(f"\nresults written to {out}")
    return 0


def demo(out="xcube-demo", seed: int = 1, duration: float = 40_000.0, overwrite: bool = False):
    """Simulate a pn observation with two flares and an eclipse, search it at
    50 s and 200 s in 0.2-12 keV, write results into ``out``; return
    ``(results, truth)``. Eager (it is the demo).

    ``duration`` [s] must be at least :data:`DEMO_MIN_DURATION` (3700 s):
    the transients keep their lengths whatever the duration. ``seed``: a
    whole number >= 0.

    ``out`` must not exist or be empty; with ``overwrite`` an earlier demo's
    directory is replaced as a whole (refused when it holds files the demo
    does not write). On an error or an interrupt nothing is left: an earlier
    directory stays as it was."""
    import numpy as np

    import xcube
    from xcube import simulate
    from xcube.io.atomic import write_table

    duration = check_demo_duration(duration)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r}: must be a whole number >= 0")
    out = check_output_dir(out, overwrite, "demo")  # before the simulation
    flares = [simulate.Flare(t_peak=f * duration, amplitude=a, width=w) for f, a, w in DEMO_FLARES]
    eclipses = [simulate.Eclipse(t_start=DEMO_ECLIPSE[0] * duration, duration=DEMO_ECLIPSE[1], depth=1.0, rate=0.4)]
    # written in place (an earlier demo moved aside meanwhile): the results name the event file's path
    with writing_dir(out, overwrite, "demo", atomic=False) as d:
        ev, truth = simulate.event_list("xmm-pn", duration=duration, flares=flares, eclipses=eclipses,
                                        sources=8, soft_protons=1, seed=seed, path=d / "events_pn.fits",
                                        overwrite=True)
        write_table(d / "truth.csv", truth)
        res = xcube.search_transients(ev, time_bin=[50.0, 200.0], energy_band=(0.2, 12.0), sigma=3.0)
        res.write(d / "results", overwrite=True)
    return res, truth


def _demo(args) -> int:
    t = time.perf_counter()
    from ..tables import format_table

    res, truth = demo(args.out, seed=args.seed, duration=args.duration, overwrite=args.overwrite)
    import xcube

    out = Path(os.path.abspath(args.out))
    ev = xcube.open_events(out / "events_pn.fits")
    t0 = observation_start([ev])
    print("xcube demo: simulated XMM-Newton EPIC-pn observation with injected transients")
    _print_t0(t0, ev)
    inj = truth[truth["transient"]]
    print(format_table(inj, t0=t0, columns=["kind", "ra", "dec", "t_peak", "t_start", "t_stop", "counts"]))
    print()
    _print_table(res, t0)
    print(f"\nresults, figures and the event file are in {out} "
          f"({time.perf_counter() - t:.1f} s)")
    return 0
