"""``xcube tools``: run mission tools from the command line.

- ``xcube tools sas process ODF_DIR --out DIR [--steps ...]`` -> :func:`xcube.tools.sas.process_observation`
  (many observations: ``xcube process``, :mod:`xcube.tools.process_cli`)
- ``xcube tools hxmt le|me|he EXPID_DIR --out DIR`` -> :func:`xcube.tools.hxmt.process_exposure`
- ``xcube tools run TOOL key=value ... [positional ...]`` -> :func:`xcube.tools.run`
- ``xcube tools provenance DIR [--png FILE]`` -> :func:`xcube.tools.provenance`
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..cli import positive_float, positive_int

log = logging.getLogger("xcube.tools")


def register(subparsers) -> None:
    """Add the ``tools`` subcommand and its sub-subcommands."""
    p = subparsers.add_parser(
        "tools", help="run mission tools (XMM SAS, HEASoft, HXMTDAS) with logs, skip-if-done and provenance",
        description="Thin wrappers around the missions' reduction software. Every tool call gets a private "
                    "parameter-file directory, a log file, a timeout and output checks; finished steps are "
                    "skipped on re-runs. The software itself must be installed and set up (SAS: sas-setup; "
                    "HEASoft/HXMTDAS: source $HEADAS/headas-init.sh).",
    )
    sub = p.add_subparsers(dest="tools_command", metavar="TOOLS_COMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    # sas --------------------------------------------------------------------
    sas = sub.add_parser("sas", help="XMM-Newton SAS pipelines",
                         description="XMM-Newton SAS pipelines run through xcube's tool runner (logged, with "
                                     "provenance); `xcube tools sas process` reduces one observation's ODF.")
    sas_sub = sas.add_subparsers(dest="sas_command", metavar="SAS_COMMAND")
    sas.set_defaults(func=lambda args: (sas.print_help(), 2)[1])
    q = sas_sub.add_parser("process", help="ODF -> cleaned event lists (-> images, spectra) of one observation",
                           description="cifbuild, odfingest, epchain (out-of-time run first)/emchain per "
                                       "exposure, rgsproc stages per RGS exposure, espfilt flare GTIs, emanom, "
                                       "evselect cleaning and merging of sub-exposures; with --steps also images "
                                       "and exposure maps, and spectra with responses. Re-running resumes. "
                                       "For many observations use `xcube process`.")
    q.add_argument("odf_dir", metavar="ODF_DIR", help="unpacked ODF directory (holds *SUM.ASC)")
    q.add_argument("--out", required=True, help="output directory")
    q.add_argument("--instruments", nargs="+", default=["pn", "mos1", "mos2"],
                   choices=["pn", "mos1", "mos2", "rgs1", "rgs2"])
    q.add_argument("--steps", default="events,clean",
                   help="comma-separated steps from events,clean,images,spectra (default events,clean)")
    q.add_argument("--bands", type=float, nargs="+", default=[0.5, 2.0, 2.0, 10.0], metavar="KEV",
                   help="image bands as EMIN EMAX pairs [keV] (default 0.5 2 2 10)")
    q.add_argument("--energy", type=float, nargs=2, metavar=("EMIN", "EMAX"),
                   help="energy band of the cleaned lists [keV] (default pn 0.2-15, MOS 0.2-12)")
    q.add_argument("--flare-filter", choices=["espfilt", "rate", "none"], default="espfilt",
                   help="soft-proton flare filter (default espfilt)")
    q.add_argument("--keep-anomalous-ccds", action="store_true",
                   help="no emanom CCD filter (default keeps the states of --ccd-states)")
    q.add_argument("--ccd-states", nargs="+", default=["G", "I", "U"], choices=list("GIBOU"),
                   help="emanom CCD states kept (default G I U; needs SAS 19)")
    q.add_argument("--no-unscheduled", action="store_true", help="leave out unscheduled (U) exposures")
    _engine(q)
    q.set_defaults(func=_run_sas_process)

    # hxmt -------------------------------------------------------------------
    hx = sub.add_parser("hxmt", help="Insight-HXMT HXMTDAS chains",
                        description="Insight-HXMT HXMTDAS chains of one detector (le, me or he): calibration, "
                                    "GTIs, screening, light curves with backgrounds and a spectrum.")
    hx_sub = hx.add_subparsers(dest="hxmt_detector", metavar="DETECTOR")
    hx.set_defaults(func=lambda args: (hx.print_help(), 2)[1])
    for det in ("le", "me", "he"):
        q = hx_sub.add_parser(det, help=f"{det.upper()} chain: calibration, screening, light curves, spectrum",
                              description=f"Run the {det.upper()} chain of HXMTDAS on one exposure: calibration, "
                                          "GTIs, screening, light curves with backgrounds, net light curves, "
                                          "Leahy and rms power spectra, spectrum with background (aligned GTI "
                                          "for a time range), response and grppha.")
        q.add_argument("expid_dir", metavar="EXPID_DIR", help="level-1 exposure directory (LE/ ME/ HE/ AUX/ ACS/)")
        q.add_argument("--out", required=True, help="output directory")
        q.add_argument("--band", type=float, nargs=2, action="append", metavar=("EMIN", "EMAX"),
                       help="light-curve energy band [keV]; repeat for several (default LE 1-10, ME 10-35, "
                            "HE 28-250)")
        q.add_argument("--time-bin", type=float, default=1.0, metavar="SECONDS", help="light-curve bin (default 1)")
        q.add_argument("--time-range", type=float, nargs=2, metavar=("START", "STOP"),
                       help="spectrum time range [s, mission time]; the background gets an aligned GTI")
        q.add_argument("--no-spectrum", action="store_true", help="light curves only")
        q.add_argument("--segment", type=float, default=256.0, metavar="SECONDS",
                       help="power-spectrum segment length (default 256)")
        q.add_argument("--rebin", type=float, action="append", metavar="F",
                       help="power-spectrum rebinning: <0 log factor, >0 whole bins per bin, 0 none; repeat for "
                            "several (default -0.06)")
        q.add_argument("--no-pds", action="store_true", help="no power spectra (net light curves only)")
        q.add_argument("--group-min", type=int, default=25, help="grppha minimum counts per bin (0: no grouping)")
        _engine(q)
        q.set_defaults(func=_run_hxmt, detector=det.upper())

    # run --------------------------------------------------------------------
    q = sub.add_parser("run", help="run any tool: xcube tools run TOOL key=value ...",
                       description="Run one tool with key=value parameters (arguments without '=' are passed as "
                                   "positional arguments, in order). Declare outputs to get them checked and the "
                                   "run skipped next time when nothing changed: the inputs are the --input files "
                                   "and directories and every existing file a parameter or positional argument "
                                   "names (table=pn.fits, infile=ev.fits[EVENTS]) that is not an output.")
    q.add_argument("tool", metavar="TOOL")
    q.add_argument("params", nargs="*", metavar="key=value", help="tool parameters")
    q.add_argument("--workdir", required=True,
                   help="working directory of the tool (required; '.' for the current directory): logs, private "
                        "parameter files and relative outputs go there")
    q.add_argument("--input", action="append", default=[], metavar="FILE",
                   help="input file or directory (checksummed; files named in the parameters are checksummed "
                        "without it)")
    q.add_argument("--output", action="append", default=[], metavar="FILE", help="FITS output to check")
    q.add_argument("--text-output", action="append", default=[], metavar="FILE", help="non-FITS output to check")
    q.add_argument("--name", help="task name (log file name)")
    q.add_argument("--timeout", type=positive_float, metavar="S", help="seconds before the tool is killed (> 0)")
    q.add_argument("--overwrite", action="store_true", help="run even when the outputs are up to date")
    q.set_defaults(func=_run_tool)

    # provenance -------------------------------------------------------------
    q = sub.add_parser("provenance", help="product graph of an output directory",
                       description="List the products recorded under DIR (tool, inputs) and optionally draw the "
                                   "graph to a PNG.")
    q.add_argument("out_dir", metavar="DIR")
    q.add_argument("--png", help="draw the graph to this PNG file")
    q.set_defaults(func=_run_provenance)


def _engine(q: argparse.ArgumentParser) -> None:
    g = q.add_argument_group("engine")
    g.add_argument("--workers", type=positive_int, help="parallel tasks on local threads (>= 1; default: cores)")
    g.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing dask cluster, e.g. tcp://host:8786")
    g.add_argument("--timeout", type=positive_float, metavar="S", help="per-tool timeout [s] (> 0)")
    g.add_argument("--overwrite", action="store_true", help="redo steps whose outputs are up to date")


def _client(args):
    if not getattr(args, "scheduler", None):
        return None
    from distributed import Client

    client = Client(args.scheduler)
    print(f"dask dashboard: {client.dashboard_link}", file=sys.stderr)
    return client


def _report(status) -> int:
    cols = [c for c in ("task", "state", "wall_time", "error_class", "message") if c in status]
    with_msg = status[cols].copy()
    if "message" in with_msg:
        with_msg["message"] = with_msg["message"].map(lambda m: (str(m)[:100] if isinstance(m, str) else ""))
    print(with_msg.to_string(index=False))
    bad = status["state"].isin(["failed", "timeout"]).sum()
    if bad:
        print(f"{bad} task(s) failed; see the log files", file=sys.stderr)
    return 1 if bad else 0


def _run_sas_process(args) -> int:
    from .runner import ToolError
    from .sas import process_observation

    b = args.bands
    if len(b) % 2:
        print(f"xcube tools sas process: --bands {b}: give EMIN EMAX pairs", file=sys.stderr)
        return 2
    client = _client(args)
    try:
        res = process_observation(args.odf_dir, args.out, args.instruments, client=client,
                                  steps=[s.strip() for s in args.steps.split(",") if s.strip()],
                                  energy_band=tuple(args.energy) if args.energy else None,
                                  flare_filter=None if args.flare_filter == "none" else args.flare_filter,
                                  mos_ccd_states=None if args.keep_anomalous_ccds else tuple(args.ccd_states),
                                  unscheduled=not args.no_unscheduled, overwrite=args.overwrite,
                                  image_bands=[(b[i], b[i + 1]) for i in range(0, len(b), 2)],
                                  timeout=args.timeout, workers=args.workers, progress=True)
    except ToolError as exc:
        print(f"xcube tools sas process: {exc}", file=sys.stderr)
        return 1
    finally:
        if client is not None:
            client.close()
    code = _report(res.status)
    for inst, path in res.events.items():
        print(f"{inst}: {path}")
    for (inst, exp), path in res.rgs.items():
        print(f"{inst} {exp}: {path}")
    for (inst, band), files in res.images.items():
        print(f"{inst} {band[0]:g}-{band[1]:g} keV: {files['image']} (exposure map {files['expmap'].name})")
    for inst, files in res.spectra.items():
        print(f"{inst} spectrum: {files['grouped']}")
    for note in res.notes:
        print(f"note: {note}", file=sys.stderr)
    if not res.events and not res.rgs:
        print("no cleaned event list was made", file=sys.stderr)
        return 1
    return code


def _run_hxmt(args) -> int:
    from .hxmt import process_exposure

    client = _client(args)
    bands = {args.detector: [tuple(b) for b in args.band]} if args.band else None
    try:
        res = process_exposure(args.expid_dir, args.out, [args.detector], bands=bands, binsize=args.time_bin,
                               spectrum=not args.no_spectrum, time_range=args.time_range,
                               group_min=args.group_min or None, segment=None if args.no_pds else args.segment,
                               rebins=tuple(args.rebin or (-0.06,)), client=client, overwrite=args.overwrite,
                               timeout=args.timeout, workers=args.workers, progress=True)
    finally:
        if client is not None:
            client.close()
    code = _report(res.status)
    for (det, band, bs), (lc, *bkg) in res.lightcurves.items():
        print(f"{det} {band[0]:g}-{band[1]:g} keV {bs:g} s: {lc}" + (f" (background {bkg[0]})" if bkg else ""))
    for (det, band, bs), path in res.net.items():
        print(f"{det} {band[0]:g}-{band[1]:g} keV {bs:g} s net: {path}")
    for (det, band, bs, norm, rebin), path in res.pds.items():
        print(f"{det} {band[0]:g}-{band[1]:g} keV {norm} power spectrum (rebin {rebin:g}): {path}")
    for det, files in res.spectra.items():
        for kind, path in files.items():
            print(f"{det} {kind}: {path}")
    return code


def _run_tool(args) -> int:
    import os

    from .runner import PACKAGES, SAS_TASK_VARIABLES, Task, ToolError, package_of, run

    params, positional = {}, []
    for item in args.params:
        if "=" in item:
            k, v = item.split("=", 1)
            params[k] = v
        else:
            positional.append(item)
    # a SAS task never reads SAS_ODF/SAS_CCF from the shell (xcube.tools.runner): on the command line
    # the shell's values are what the user means, so they become the task's own (absolute, and part of
    # its parameter hash: another observation's calibration re-runs it)
    env = {}
    if package_of(args.tool, os.environ) is PACKAGES["SAS"]:
        env = {v: os.path.abspath(os.environ[v]) for v in SAS_TASK_VARIABLES if os.environ.get(v)}
    task = Task(args.tool, params, args=positional, inputs=args.input, outputs=args.output,
                text_outputs=args.text_output, name=args.name, workdir=args.workdir, timeout=args.timeout, env=env)
    try:
        res = run(task, overwrite=args.overwrite)
    except (ToolError, ValueError) as exc:
        print(f"xcube tools run: {exc}", file=sys.stderr)
        return 1
    if res.state == "skipped":
        print(f"{task.name}: up to date, {args.tool} not run ({res.record})")
    else:
        print(f"{task.name}: {args.tool} done in {res.duration:.2f} s; log {res.log}")
        for w in res.warnings[:10]:
            print(f"  warning: {w}")
    for o in res.outputs:
        print(f"  {o}")
    return 0


def _run_provenance(args) -> int:
    from .provenance import draw_provenance, provenance

    if not Path(args.out_dir).is_dir():
        raise FileNotFoundError(f"{args.out_dir}: no such directory")
    g = provenance(args.out_dir)
    if g.number_of_nodes() == 0:
        print(f"{args.out_dir}: no xcube tool records found", file=sys.stderr)
        return 1
    for node, d in g.nodes(data=True):
        if d.get("kind") == "product":
            ins = [Path(u).name for u in g.predecessors(node)]
            print(f"{Path(node).name}: {d.get('tool')} <- {', '.join(ins) if ins else '-'}")
    if args.png:
        print(f"graph drawn to {draw_provenance(g, args.png)}")
    return 0
