"""The ``xcube`` command. Each subcommand is a thin layer over the Python API
and lives beside the code it drives: a module listed in ``_COMMAND_MODULES``
defines ``register(subparsers)`` which adds its subcommands, each with
``set_defaults(func=callable(args) -> int)``."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ._version import __version__

_COMMAND_MODULES = [
    "xcube.io.cli",  # info, convert
    "xcube.products.cli",  # lc, image, spectrum
    "xcube.transients.cli",  # demo, search
    "xcube.survey.cli",  # survey, catalogue
    "xcube.tools.cli",  # tools
    "xcube.tools.process_cli",  # process
    "xcube.frames.cli",  # frames (optical CCD frames)
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xcube", description="Time-domain X-ray astronomy on xarray + Dask")
    parser.add_argument("--version", action="version", version=f"xcube {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        mod.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (OSError, ValueError, KeyError) as exc:
        print(f"xcube {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
