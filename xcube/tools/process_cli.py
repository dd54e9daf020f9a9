"""``xcube process``: XMM-Newton processing of many observations (thin layer
over :func:`xcube.tools.process.process_archive`). Imports nothing heavy."""
from __future__ import annotations

import argparse

from ..cli import positive_int
from ..survey.cli import add_compute_arguments, compute_from_args

__all__ = ["register"]

_STEPS = ("events", "clean", "images", "spectra")


def _steps(text: str) -> list[str]:
    steps = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in steps if s not in _STEPS]
    if bad or not steps:
        raise argparse.ArgumentTypeError(f"--steps {text!r}: comma-separated steps from {','.join(_STEPS)}")
    return steps


def register(subparsers) -> None:
    """Add the ``process`` subcommand. Eager (argparse set-up; runs
    nothing)."""
    p = subparsers.add_parser(
        "process", help="XMM-Newton SAS processing of an archive (events, clean, images, spectra; resumable)",
        description="Run the SAS chain for many observations on Dask (LocalCluster, scheduler or SLURM): "
                    "ODF -> event lists (EPIC chains, RGS rgsproc) -> cleaned lists -> images and exposure "
                    "maps -> spectra with responses. Writes OUT/<obsid>/ and OUT/status.parquet (one row per "
                    "observation and step). Running the same command again resumes: finished steps are "
                    "skipped, and inside a step every SAS task whose products are up to date.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("observations", nargs="+", metavar="OBSLIST",
                   help="text file of observation ids (with --archive), or ids, or ODF directories")
    p.add_argument("--archive", metavar="ROOT", help="archive root holding ROOT/<obsid>/ (or ROOT/<obsid>/odf/)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--steps", type=_steps, default=["events", "clean"],
                   help="comma-separated steps from events,clean,images,spectra (the steps they need run too)")
    p.add_argument("--instruments", nargs="+", default=["pn", "mos1", "mos2", "rgs1", "rgs2"],
                   choices=["pn", "mos1", "mos2", "rgs1", "rgs2"])
    g = p.add_argument_group("processing")
    g.add_argument("--energy", type=float, nargs=2, metavar=("EMIN", "EMAX"),
                   help="energy band of the cleaned EPIC lists [keV] (default pn 0.2-15, MOS 0.2-12)")
    g.add_argument("--flare-filter", choices=["espfilt", "rate", "none"], default="espfilt")
    g.add_argument("--ccd-states", nargs="+", default=["G", "I", "U"], choices=list("GIBOU"),
                   help="emanom CCD states kept (needs SAS 19; skipped with a warning before)")
    g.add_argument("--keep-anomalous-ccds", action="store_true", help="no emanom CCD filter at all")
    g.add_argument("--no-unscheduled", action="store_true", help="leave out unscheduled (U) exposures")
    g.add_argument("--bands", type=float, nargs="+", default=[0.5, 2.0, 2.0, 10.0], metavar="KEV",
                   help="image bands as EMIN EMAX pairs [keV]")
    g.add_argument("--source", type=float, nargs=2, metavar=("RA", "DEC"),
                   help="spectrum source position [deg] (default: the target, else the pointing)")
    g.add_argument("--src-radius", type=float, default=30.0, metavar="ARCSEC", help="source circle radius")
    g.add_argument("--bkg-radii", type=float, nargs=2, default=[60.0, 120.0], metavar=("RIN", "ROUT"),
                   help="background annulus radii [arcsec]")
    g.add_argument("--group-min", type=int, default=25, help="specgroup mincounts (0: no grouping)")
    g.add_argument("--tool-timeout", type=float, metavar="S", help="timeout of each SAS task [s]")
    g.add_argument("--tool-workers", type=positive_int,
                   help="SAS tasks run at once per observation (>= 1; default: cores)")
    add_compute_arguments(p, retries=1, retries_help="task retries after a worker died")
    g = p.add_argument_group("resume")
    g.add_argument("--retry-failed", action="store_true", help="redo steps recorded failed")
    g.add_argument("--overwrite", action="store_true", help="redo every step (SAS tasks still skip when up to date)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=_process)


def _options(args) -> dict:
    b = args.bands
    if len(b) % 2:
        raise ValueError(f"--bands {b}: give EMIN EMAX pairs")
    return {
        "energy_band": tuple(args.energy) if args.energy else None,
        "flare_filter": None if args.flare_filter == "none" else args.flare_filter,
        "mos_ccd_states": None if args.keep_anomalous_ccds else tuple(args.ccd_states),
        "unscheduled": not args.no_unscheduled,
        "image_bands": [(b[i], b[i + 1]) for i in range(0, len(b), 2)],
        "source": tuple(args.source) if args.source else None, "source_radius": args.src_radius,
        "background_radii": tuple(args.bkg_radii), "group_min": args.group_min or None,
        "timeout": args.tool_timeout, "tool_workers": args.tool_workers,
    }


def _process(args) -> int:
    from .process import process_archive

    observations = args.observations[0] if len(args.observations) == 1 else args.observations
    res = process_archive(observations, args.out, archive=args.archive, steps=args.steps,
                          instruments=args.instruments, options=_options(args), compute=compute_from_args(args),
                          retry_failed=args.retry_failed, overwrite=args.overwrite, progress=not args.quiet)
    st = res.status
    if len(st):
        table = st.pivot_table(index="obsid", columns="step", values="state", aggfunc="first")
        print(table[[s for s in _STEPS if s in table.columns]].to_string())
    bad = st[st["state"] != "done"] if len(st) else st
    for r in bad.itertuples():
        print(f"{r.obsid} {r.step}: {r.state}: {r.error_class}: {r.message}")
    return 1 if len(bad) else 0
