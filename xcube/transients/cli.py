"""``xcube demo`` and ``xcube search``."""
from __future__ import annotations

import time
from pathlib import Path


def register(sub) -> None:
    from ..cli import add_hdu_option, add_screen_option

    p = sub.add_parser(
        "demo", help="simulate an observation with transients, search it, write results",
        description="Simulate an XMM-Newton EPIC-pn observation with two flares and an eclipse, run the transient "
                    "search on it at 50 s and 200 s, write the event file, the truth table and the results, and "
                    "print the injected transients beside the detections (times as UTC and as seconds from the "
                    "observation start).")
    p.add_argument("--out", default="xcube-demo", help="output directory (default ./xcube-demo)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the simulation")
    p.add_argument("--duration", type=float, default=40_000.0, help="observation length [s]")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
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
    s.add_argument("--energy", type=float, nargs="+", default=[0.2, 12.0],
                   help="energy band edges in pairs [keV], e.g. 0.2 2 2 12 0.2 12")
    s.add_argument("--size-arcsec", type=float, default=20.0, help="spatial cell [arcsec]")
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
    s.add_argument("--out", required=True, help="output directory (one sub-directory per run)")
    s.add_argument("--overwrite", action="store_true")
    s.add_argument("--no-figures", action="store_true", help="skip PNG figures")
    add_screen_option(s)
    add_hdu_option(s)
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_search)


def observation_start(events) -> float:
    """T0 of the printed tables: the first good-time start of the cameras [s, mission time]."""
    from .. import gti as gtimod

    starts = [gtimod.from_dataset(e)[0][:1] for e in events]
    starts = [float(s[0]) for s in starts if len(s)]
    return min(starts) if starts else float(events[0].attrs.get("tstart", 0.0))


def _print_t0(t0: float, events) -> None:
    from ..times import times

    try:
        utc = f" = {times(t0, events, to='iso', precision=1)} UTC"
    except ValueError:
        utc = ""
    print(f"T0 = {t0:.1f} s (mission time){utc}: the observation start; t_*-T0 columns are seconds after it")


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

    bar = progress_bar(len(args.files), desc="open", unit="file", enabled=not args.quiet and len(args.files) > 1)
    evs = []
    for f in args.files:
        evs.append(open_events(f, hdu=args.hdu))
        bar.update(1)
    bar.close()
    catalogue = args.catalogue
    if catalogue is not None and (args.ra_col or args.dec_col or args.radius_col):
        from ..io.catalogue import read_catalogue

        catalogue = read_catalogue(catalogue, ra_col=args.ra_col, dec_col=args.dec_col, radius_col=args.radius_col)
    res = search_transients(evs if len(evs) > 1 else evs[0], time_bin=list(args.time_bin),
                            size_arcsec=args.size_arcsec, energy_band=energy_bands_from_flat(args.energy),
                            sigma=list(args.sigma), gti_only=args.gti_only, catalogue=catalogue,
                            screening=args.screen, progress=not args.quiet, hygiene=not args.no_hygiene,
                            shifts=args.shifts, subsets=not args.no_subsets)
    res.write(args.out, overwrite=args.overwrite, figures=not args.no_figures)
    t0 = observation_start(evs)
    _print_t0(t0, evs[0])
    _print_table(res, t0)
    print(f"\nresults written to {Path(args.out).resolve()}")
    return 0


def demo(out="xcube-demo", seed: int = 1, duration: float = 40_000.0, overwrite: bool = False):
    """Simulate a pn observation with two flares and an eclipse, search it at
    50 s and 200 s in 0.2-12 keV, write results into ``out``; return
    ``(results, truth)``. Eager (it is the demo)."""
    import xcube
    from xcube import simulate
    from xcube.io.atomic import write_table

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: exists and is not empty; pass --overwrite (overwrite=True) or another --out")
    out.mkdir(parents=True, exist_ok=True)
    flares = [simulate.Flare(t_peak=0.3 * duration, amplitude=0.8, width=60.0),
              simulate.Flare(t_peak=0.7 * duration, amplitude=0.25, width=300.0)]
    eclipses = [simulate.Eclipse(t_start=0.45 * duration, duration=2000.0, depth=1.0, rate=0.4)]
    events_path = out / "events_pn.fits"
    ev, truth = simulate.event_list("xmm-pn", duration=duration, flares=flares, eclipses=eclipses,
                                    sources=8, soft_protons=1, seed=seed, path=events_path, overwrite=True)
    write_table(out / "truth.csv", truth)
    res = xcube.search_transients(ev, time_bin=[50.0, 200.0], energy_band=(0.2, 12.0), sigma=3.0)
    res.write(out / "results", overwrite=True)
    return res, truth


def _demo(args) -> int:
    t = time.perf_counter()
    from ..tables import format_table

    res, truth = demo(args.out, seed=args.seed, duration=args.duration, overwrite=args.overwrite)
    import xcube

    ev = xcube.open_events(Path(args.out) / "events_pn.fits")
    t0 = observation_start([ev])
    print("xcube demo: simulated XMM-Newton EPIC-pn observation with injected transients")
    _print_t0(t0, ev)
    inj = truth[truth["transient"]]
    print(format_table(inj, t0=t0, columns=["kind", "ra", "dec", "t_peak", "t_start", "t_stop", "counts"]))
    print()
    _print_table(res, t0)
    print(f"\nresults, figures and the event file are in {Path(args.out).resolve()} "
          f"({time.perf_counter() - t:.1f} s)")
    return 0
