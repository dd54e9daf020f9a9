"""``xcube survey`` and ``xcube catalogue``: thin layers over :mod:`xcube.survey`."""
from __future__ import annotations

import argparse
import sys

from ..cli import Pairs, non_negative_int, positive_float, positive_int

__all__ = ["register"]


def _add_match_options(p: argparse.ArgumentParser) -> None:
    """The catalogue options of ``xcube survey`` and ``xcube catalogue``; a value out of range is a usage error
    (status 2) naming the option."""
    g = p.add_argument_group("cross-matching of the unique sources")
    g.add_argument("--match", action="append", default=[], metavar="FILE",
                   help="catalogue (FITS/CSV/Parquet with RA/Dec in deg) to cross-match; repeatable")
    g.add_argument("--ra-col", help="RA column of the --match catalogues (default: found by name)")
    g.add_argument("--dec-col", help="Dec column of the --match catalogues (default: found by name)")
    g.add_argument("--name-col", help="name column of the --match catalogues (default: found by name)")
    g.add_argument("--match-radius", type=positive_float, default=20.0, metavar="ARCSEC",
                   help="cross-match radius (default 20)")
    g.add_argument("--radius", type=positive_float, default=20.0, metavar="ARCSEC",
                   help="clustering radius for unique sources (default 20)")
    g = p.add_argument_group("vetting")
    g.add_argument("--exclude-obs", metavar="FILE", help="observation ids (one per line) to flag flag_excluded_obs")
    g.add_argument("--hot-min-obs", type=positive_int, default=3, metavar="N",
                   help="a hot region needs detections from N observations and N sky sources (default 3)")


def _catalogue_options(args) -> dict:
    """The catalogue keywords of the options; ``--exclude-obs`` must name an existing file."""
    from .vetting import read_obs_list

    if args.exclude_obs is not None:
        read_obs_list(args.exclude_obs, must_exist=True)
    match = [dict(path=m, ra_col=args.ra_col, dec_col=args.dec_col, name_col=args.name_col) for m in args.match]
    return dict(radius_arcsec=args.radius, crossmatch=match, match_radius_arcsec=args.match_radius,
                exclude_obs=args.exclude_obs, hot_min_obs=args.hot_min_obs, hot_min_sources=args.hot_min_obs)


class _EnergyBands(Pairs):
    """argparse action of ``--energy``: EMIN EMAX pairs [keV], each ``0 <= EMIN < EMAX`` (the rule of
    :class:`~xcube.transients.params.SearchParams`); otherwise a usage error (status 2) naming the pair."""

    def __call__(self, parser, namespace, values, option_string=None):
        from ..transients.params import SearchParams, energy_bands_from_flat

        super().__call__(parser, namespace, values, option_string)
        for band in energy_bands_from_flat(values):
            try:
                SearchParams(energy_band=band)
            except ValueError as exc:
                parser.error(f"argument {option_string}: {band[0]:g} {band[1]:g}: {exc}")


def _survey(args) -> int:
    from ..transients.params import energy_bands_from_flat, parameter_grid
    from .runner import run
    from .task import SurveyAborted

    catalogue_options = _catalogue_options(args)
    params = parameter_grid(args.time_bin, energy_bands_from_flat(args.energy), args.sigma,
                            size_arcsec=args.size_arcsec)
    observations = args.observations[0] if len(args.observations) == 1 else args.observations
    try:
        res = run(observations, args.out, params, archive=args.archive, compute=compute_from_args(args),
                  timeout=args.timeout, retry_failed=args.retry_failed, overwrite=args.overwrite,
                  figures=args.figures, catalogue=not args.no_catalogue,
                  catalogue_options=catalogue_options, progress=not args.quiet, cache=args.cache)
    except SurveyAborted as exc:
        print(f"survey aborted: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: the command ends with its one line, and what is left of the
        from .engine import silence_distributed  # cluster closes at exit without distributed's lines

        silence_distributed()
        raise
    st = res.status
    failed = st[st["state"].isin(["failed", "timeout"])]
    if res.catalogue is not None:
        print(f"catalogue: {res.catalogue}")
    if len(failed):  # the exit status says so too (1), as that of xcube process
        print(f"xcube survey: {len(failed)} runs failed or timed out; see {res.out / 'status.parquet'} "
              f"(columns error_class, message, traceback_file); redo them with --retry-failed", file=sys.stderr)
        shown = failed.drop_duplicates("obsid")
        for r in shown.head(10).itertuples():
            print(f"  {r.obsid}: {r.state}: {r.error_class}: {str(r.message)[:200]}", file=sys.stderr)
        if len(shown) > 10:
            print(f"  ... and {len(shown) - 10} more observations", file=sys.stderr)
        return 1
    return 0


def _catalogue(args) -> int:
    from collections import Counter
    from pathlib import Path

    from .catalogue import build_catalogue
    from .status import read_run, run_dirs

    options = _catalogue_options(args)
    if Path(args.out).is_dir():  # nothing to catalogue: say so and write nothing (a missing OUT: build_catalogue)
        states = Counter()
        for rd in run_dirs(args.out):
            state = (read_run(rd) or {}).get("state")
            if state == "done":
                break
            states[state] += state is not None
        else:
            n = sum(states.values())
            found = (f"{n} run(s) recorded, none done ({', '.join(f'{k} {v}' for k, v in states.items() if v)})"
                     if n else "it holds no survey run (OUT/<obsid>/<run_id>/run.json); give the --out directory "
                     "of an xcube survey")
            raise FileNotFoundError(f"{args.out}: no finished runs were found: {found}")
    cat = build_catalogue(args.out, **options)
    print(f"{cat.directory}: {len(cat.detections)} detections, {len(cat.sources)} unique sources "
          f"from {len(cat.runs)} finished runs")
    if len(cat.sources) and args.top:
        from ..tables import format_table

        cols = [c for c in ("name", "ra", "dec", "n_detections", "n_observations", "mjd_first", "mjd_last",
                            "best_log10_bayes") if c in cat.sources.columns]
        top = cat.sources.sort_values(cols[-1], ascending=False).head(args.top)
        print(format_table(top, columns=cols))
        if "mjd_first" in cols:
            print("mjd_first/mjd_last: MJD of the first start and last stop of the source's detections")
    return 0


def register(subparsers) -> None:
    """Add the ``survey`` and ``catalogue`` subcommands to the argparse
    ``subparsers``. Nothing is read or computed here: the subcommands' work
    runs when the command is called."""
    p = subparsers.add_parser(
        "survey", help="transient search over many observations on dask.distributed (resumable)",
        description="Run the transient search over many observations x a parameter grid. Re-running the "
                    "same command resumes: finished runs are skipped. Exit status: 0 when every run is done or "
                    "skipped; 1 when runs failed or timed out (listed on stderr; redo them with --retry-failed) "
                    "or on an error; 3 when another survey took the output directory over; 130/143 when "
                    "interrupted (Ctrl-C/SIGTERM).",
    )
    p.add_argument("observations", nargs="+", metavar="OBSLIST",
                   help="text file of observation ids (with --archive), event files, or directories")
    p.add_argument("--out", required=True, help="output directory (runs, status.parquet, catalogue/)")
    p.add_argument("--archive", metavar="ROOT", help="archive root holding ROOT/<obsid>/ event files")
    g = p.add_argument_group("parameter grid (time bins x energy bands x sigma)")
    g.add_argument("--time-bin", nargs="+", type=positive_float, default=[5.0, 50.0, 200.0], metavar="S",
                   help="time bins [s] (default 5 50 200)")
    g.add_argument("--energy", nargs="+", action=_EnergyBands, type=float, default=[0.2, 2.0, 2.0, 12.0, 0.2, 12.0],
                   metavar="KEV",
                   help="energy bands as EMIN EMAX pairs [keV] (default 0.2 2 2 12 0.2 12)")
    g.add_argument("--sigma", nargs="+", type=positive_float, default=[3.0], help="detection levels (default 3)")
    g.add_argument("--size-arcsec", type=positive_float, default=20.0, help="spatial cell [arcsec] (default 20)")
    add_compute_arguments(p)
    g = p.add_argument_group("robustness")
    g.add_argument("--timeout", type=positive_float, metavar="S", help="per-observation timeout [s] (default none)")
    g.add_argument("--retry-failed", action="store_true", help="redo runs recorded failed or timed out")
    g.add_argument("--overwrite", action="store_true", help="redo every run, replacing finished ones")
    g = p.add_argument_group("output")
    g.add_argument("--figures", choices=["detections", "all", "none"], default="detections",
                   help="PNG figures per run: for runs with detections (default), all runs, or none")
    g.add_argument("--no-catalogue", action="store_true", help="do not rebuild the catalogue at the end")
    g.add_argument("--cache", metavar="DIR",
                   help="keep compressed files converted for reading in DIR (default: a temporary "
                        "directory per observation, removed after it)")
    g.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar (dask.distributed's INFO lines are shown only with xcube -v survey ...)")
    _add_match_options(p)
    p.set_defaults(func=_survey)

    c = subparsers.add_parser(
        "catalogue", help="(re)build OUT/catalogue/ from the finished runs of a survey (also while it runs)",
        description="Collect the detections of all finished runs under OUT, cluster them into unique sources, "
                    "cross-match, and write OUT/catalogue/ (Parquet, FITS, DS9 regions). Exits 1, writing "
                    "nothing, when OUT holds no finished run.",
    )
    c.add_argument("out", metavar="OUT", help="survey output directory")
    c.add_argument("--top", type=non_negative_int, default=10, metavar="N",
                   help="print the N most significant sources, a whole number >= 0 (0: the summary line only; "
                        "default 10)")
    _add_match_options(c)
    c.set_defaults(func=_catalogue)


def add_compute_arguments(parser, retries: int = 2, retries_help: str = "task retries and worker deaths allowed"):
    """The engine options of ``xcube survey`` and ``xcube process`` (an
    argparse group; imports nothing); :func:`compute_from_args` turns them
    into a :class:`~xcube.survey.engine.Compute`. The counts are whole
    numbers >= 1 (``--retries`` >= 0): another value is a usage error (status
    2) naming the option."""
    g = parser.add_argument_group("engine")
    g.add_argument("--workers", type=positive_int, help="LocalCluster workers (default: cores / threads); "
                                               "with --cluster, total workers to request")
    g.add_argument("--threads", type=positive_int, default=1, help="threads per worker (default 1)")
    g.add_argument("--memory-limit", default="4GB", help="memory per LocalCluster worker (default 4GB)")
    g.add_argument("--scheduler", metavar="ADDRESS", help="use an existing cluster, e.g. tcp://host:8786")
    g.add_argument("--cluster", choices=["slurm", "pbs"], help="start workers as batch jobs (dask-jobqueue)")
    g.add_argument("--queue", help="batch queue/partition (default from the dask jobqueue config)")
    g.add_argument("--walltime", help="batch job wall time, e.g. 04:00:00")
    g.add_argument("--cores", type=positive_int, help="cores per batch job")
    g.add_argument("--memory", help="memory per batch job, e.g. 64GB")
    g.add_argument("--processes", type=positive_int, help="worker processes per batch job")
    g.add_argument("--jobs", type=positive_int, help="number of batch jobs (default 1, or enough for --workers)")
    g.add_argument("--account", help="batch account/project")
    g.add_argument("--dashboard-address", default=":8787", help="dashboard address (default :8787)")
    g.add_argument("--retries", type=non_negative_int, default=retries, help=f"{retries_help} (default {retries})")
    return g


def compute_from_args(args):
    """The :class:`~xcube.survey.engine.Compute` of the options added by :func:`add_compute_arguments`."""
    from .engine import Compute

    jobs = {k: getattr(args, k) for k in ("queue", "walltime", "cores", "memory", "processes", "jobs", "account")
            if getattr(args, k, None) is not None}
    return Compute(scheduler=args.scheduler, cluster=args.cluster, workers=args.workers, threads=args.threads,
                   memory_limit=args.memory_limit, retries=args.retries, dashboard_address=args.dashboard_address,
                   jobs=jobs)
