"""``xcube frames``: the optical CCD pipeline from the command line.

- ``xcube frames run RAW_DIR RED_DIR [--steps lbfiopkcd] [--obj ...] [--band ...]`` -> :func:`xcube.frames.run`
- ``xcube frames list RAW_DIR [--config ...] [--set ...]`` -> :func:`xcube.frames.scan_frames` (what was
  recognised, and why files are left out; ``patterns`` from the configuration, as ``run`` uses them)
"""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the ``frames`` subcommand (imports nothing heavy)."""
    p = subparsers.add_parser(
        "frames", help="ground-based CCD frames: calibration, alignment, photometry, differential light curves",
        description="Reduce a night of raw CCD frames (bias, flats, science) into differential light curves. "
                    "Steps: l list, b bias, f flat, i correct, o offsets, p photometry, k pick stars, "
                    "c catalogue, d differential. See docs/frames.md.")
    sub = p.add_subparsers(dest="frames_command", metavar="FRAMES_COMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    q = sub.add_parser("run", help="run the pipeline (any subset of the steps lbfiopkcd)",
                       description="Run the steps in order; existing outputs and missing inputs are handled by "
                                   "--on-exist and --on-missing. Configuration: --config files (INI or TOML), "
                                   "then --set and the options below, which win.")
    q.add_argument("raw_dir", metavar="RAW_DIR", help="folder of raw frames")
    q.add_argument("red_dir", metavar="RED_DIR", help="output folder (created)")
    q.add_argument("--steps", default="all", help="step letters, e.g. lbf or opkcd (default all: lbfiopkcd)")
    q.add_argument("--obj", nargs="+", help="object name(s) (default all)")
    q.add_argument("--band", nargs="+", help="band(s) (default all; BVR means B, V and R)")
    _config_options(q)
    q.add_argument("--on-exist", choices=("skip", "overwrite", "append", "error"),
                   help="existing outputs (default append: keep per-frame files, remake the rest)")
    q.add_argument("--on-missing", choices=("skip", "error"), help="missing inputs (default skip with a warning)")
    q.add_argument("--aper", type=float, nargs="+", help="aperture radii [px]; negative: multiples of the FWHM")
    q.add_argument("--base-img", help="base frame: index among the object's frames or a file name")
    q.add_argument("--result-format", choices=("zarr", "netcdf"), help="format of the Dataset outputs")
    q.set_defaults(func=_run)

    q = sub.add_parser("list", help="show how the frames of a folder are recognised",
                       description="Print one line per object, band and kind, then the files left out and why. "
                                   "--config and --set as for run (the scan uses patterns), so list recognises "
                                   "the files as run does.")
    q.add_argument("raw_dir", metavar="RAW_DIR")
    _config_options(q)
    q.set_defaults(func=_list)


def _config_options(q) -> None:
    """``--config`` and ``--set``, shared by ``run`` and ``list``."""
    q.add_argument("--config", nargs="+", default=None, metavar="FILE", help="INI or TOML configuration file(s)")
    q.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="configuration values (Python literals), e.g. --set flat_limit_low=3000 aper='(4, -1.5)'")


def _settings(items) -> dict:
    from .config import parse_value

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: use KEY=VALUE")
        out[key.strip()] = parse_value(value)
    return out


def _one_or_list(values):
    if values is None:
        return None
    return values[0] if len(values) == 1 else values


def _run(args: argparse.Namespace) -> int:
    import warnings

    import numpy as np

    from .pipeline import run

    config = _settings(args.set)
    for key in ("on_exist", "on_missing", "aper", "base_img", "result_format"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    res = run(args.raw_dir, args.red_dir, obj=_one_or_list(args.obj), band=_one_or_list(args.band),
              steps=args.steps, config_file=args.config, **config)
    if res is None:
        print(f"steps {args.steps} done; outputs in {args.red_dir}")
        return 0
    results = [res] if hasattr(res, "data_vars") else [n.to_dataset() for n in res.leaves]
    for ds in results:
        with warnings.catch_warnings():  # an aperture without a finite error prints nan, without a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            err = np.nanmedian(ds["diff_err"].values, axis=0)
        print(f"{ds.attrs['obj']} {ds.attrs['band']}: {ds.sizes['frame']} frames, {ds.sizes['star']} stars, "
              f"target {ds.attrs['target']}, comparisons {list(ds.attrs['comparisons'])}; median diff_err per "
              f"aperture ({', '.join(f'{a:.1f}' for a in ds['aperture'].values)} px): "
              f"{', '.join(f'{e:.4f}' for e in err)} mag")
    print(f"outputs in {args.red_dir} (lc_<obj>_<band>.csv/.png and the Dataset)")
    return 0


def _list(args: argparse.Namespace) -> int:
    from .config import load_config
    from .files import scan_frames, shape_text

    cfg = load_config(args.config, **_settings(args.set))  # checked as run checks it; the scan uses patterns
    table = scan_frames(args.raw_dir, cfg["patterns"])  # decides what is left out (also of another size), as run does
    good = table[table["problem"] == ""]
    for (kind, obj, band), rows in good.groupby(["kind", "obj", "band"]):
        shape = shape_text(rows["ny"].iloc[0], rows["nx"].iloc[0])
        print(f"{kind:8s} {obj:20s} {band:6s} {len(rows):5d} frames  {shape}")
    for _, row in table[table["problem"] != ""].iterrows():
        print(f"left out: {row['name']}: {row['problem']}")
    return 0
