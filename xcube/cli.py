"""The ``xcube`` command. Each subcommand is a thin layer over the Python API
and lives beside the code it drives: a module listed in ``_COMMAND_MODULES``
defines ``register(subparsers)`` which adds its subcommands, each with
``set_defaults(func=callable(args) -> int)``."""
from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import signal
import sys
import threading
import warnings
from functools import partial

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


class HelpFormatter(argparse.HelpFormatter):
    """``--help`` of every xcube command: wrapped descriptions, and each
    option's default after its help unless the help already states one."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default is None or default is False or default is argparse.SUPPRESS or "default" in text.lower()
                or not action.option_strings or action.help is argparse.SUPPRESS):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


#: the --help text of the one screening default of ``xcube lc``, ``image``, ``spectrum``, ``pds``, ``stitch``
#: and ``search``
SCREEN_HELP = ("apply the mission's standard event screening (e.g. XMM EPIC: PATTERN and FLAG == 0, see "
               "docs/select.md), as SAS and the transient search do; --no-screen keeps every event")


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a whole number >= {minimum}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number > 0 (e.g. ``--chunks``)."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0 (e.g. ``--seed``)."""
    return _whole_number(text, 0)


def finite_float(text: str) -> float:
    """argparse type: a finite number (not nan, not inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number")
    return value


class Pairs(argparse.Action):
    """argparse action for ``nargs="+"`` options that take values in pairs
    (``--energy 0.2 2 2 12``): an odd number of values is a usage error
    (status 2, naming the option)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) % 2:
            parser.error(f"{option_string} takes pairs (EMIN EMAX ...); got an odd number of values "
                         f"{' '.join(f'{v:g}' for v in values)}")
        setattr(namespace, self.dest, values)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (e.g. ``--size-arcsec``): 0 or less is a usage error naming the option."""
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive number")
    return value


#: ``(option, text)`` of the number options given ``nan`` in the command line being parsed (see ``number_type``)
_NAN_GIVEN: list = []


def number_type(action: argparse.Action, parse=float):
    """The argparse type of a number option parsed by ``parse`` (default
    ``float``, given to every ``type=float`` option): ``parse``, except that
    a NaN (``float`` takes ``nan``, which no option means) is noted so that
    :func:`main` refuses it naming the option (``stitch --mjdref nan``
    otherwise failed later with a message about NaN data). Exit status 1, as
    for the values the commands refuse themselves."""
    name = action.option_strings[-1] if action.option_strings else action.dest

    def number(text: str):
        try:
            nan = math.isnan(float(text))
        except ValueError:
            nan = False
        if nan:
            _NAN_GIVEN.append((name, text))
            return float("nan")
        return parse(text)

    number.__name__ = getattr(parse, "__name__", "float")  # (argparse's "invalid float value: 'x'")
    return number


def add_screen_option(p: argparse.ArgumentParser) -> None:
    """``--screen/--no-screen``, on by default: the one screening default of
    the commands that select events."""
    p.add_argument("--screen", action=argparse.BooleanOptionalAction, default=True, help=SCREEN_HELP)


def _hdu_value(text: str):
    """An ``--hdu`` value: a plain integer is the HDU number (``int``, as
    ``open_events(hdu=2)``); anything else a name or ``NAME,EXTVER``."""
    return int(text) if text.strip().isdigit() else text


def add_hdu_option(p: argparse.ArgumentParser) -> None:
    """``--hdu NAME``: the event table of files with a nonstandard extension name."""
    p.add_argument("--hdu", metavar="NAME", type=_hdu_value,
                   help="event table extension when it has a nonstandard name (e.g. EVENTSxy, 'event file'; "
                        "default: the mission's, e.g. EVENTS), NAME,EXTVER (EVENTS,2) when several share a name, "
                        "or the HDU number (2; the primary is 0)")


def _subparsers(parser):
    """Every sub-command parser under ``parser``, recursively."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub
                yield from _subparsers(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xcube", description="Time-domain X-ray astronomy on xarray + Dask",
                                     formatter_class=HelpFormatter)
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
    for p in _subparsers(parser):
        p.formatter_class = HelpFormatter
        for action in p._actions:
            if action.type is float:  # no option takes NaN: refused naming the option (see number_type)
                action.type = number_type(action)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a batch scheduler's time limit) while a command
    runs: raised in the main thread like Ctrl-C's ``KeyboardInterrupt``, so
    that the same clean-up runs (atomic writers remove their temporaries,
    thread pools cancel their parts, the survey releases its lock)."""


def _raise_terminated(signum, frame):
    raise Terminated(f"signal {signum}")


def _close_progress_bars() -> None:
    """End the open ``tqdm`` bars (each keeps its last state on its line), so
    that parts still finishing in other threads draw nothing more and the
    interruption message starts a line of its own."""
    tqdm = getattr(sys.modules.get("tqdm"), "tqdm", None)
    for bar in list(getattr(tqdm, "_instances", None) or []):
        try:
            bar.close()
        except Exception:  # noqa: BLE001 - a bar that cannot close is no reason to fail the exit
            pass


def main(argv=None) -> int:
    """Run the ``xcube`` command line ``argv``; returns the exit status: 0 on
    success, 1 on an error (one line on stderr), 2 on a usage error, 130
    after Ctrl-C (SIGINT) and 143 after SIGTERM, each with one line on
    stderr (no traceback), after the command's clean-up has run; 141,
    silently, when the reader of stdout went away (``xcube info ... | head``)."""
    parser = build_parser()
    _NAN_GIVEN.clear()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if _NAN_GIVEN:
        name, text = _NAN_GIVEN[0]
        print(f"xcube {args.command}: error: {name} {text}: must be a number, not NaN", file=sys.stderr)
        return 1
    from .io.atomic import STOP, Stopped

    previous = sigint = None
    if threading.current_thread() is threading.main_thread():  # (signal handlers live in the main thread)
        STOP.clear()
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
        sigint = signal.getsignal(signal.SIGINT)
    hook = sys.unraisablehook
    sys.unraisablehook = partial(_quiet_terminated, hook)
    fmt = warnings.formatwarning
    if threading.current_thread() is threading.main_thread() and not args.verbose:  # (-v: Python's own form)
        warnings.formatwarning = partial(_one_line_warning, args.command)
    try:
        status = int(args.func(args) or 0)
        if previous is not None and STOP.is_set():  # a SIGTERM lost in a finaliser, and no write since
            return _interrupted(args, True, True)
        return status
    except KeyboardInterrupt as exc:
        return _interrupted(args, isinstance(exc, (Terminated, Stopped)), previous is not None)
    except SystemExit as exc:
        # Ctrl-C with the handler a library installed meanwhile: dask_jobqueue (xcube survey --cluster)
        # replaces Python's by sys.exit(), which would end the command with status 0
        if exc.code is None and sigint is not None and signal.getsignal(signal.SIGINT) is not sigint:
            return _interrupted(args, False, True)
        raise
    except BrokenPipeError:  # `xcube search ... | head`: stop quietly, as a process killed by SIGPIPE would
        _silence_stdout()
        return 128 + int(getattr(signal, "SIGPIPE", 13))
    except (OSError, ValueError, KeyError) as exc:
        print(f"xcube {args.command}: error: {error_text(exc)}", file=sys.stderr)
        return 1
    finally:
        sys.unraisablehook = hook
        warnings.formatwarning = fmt
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
            STOP.clear()  # (main called in-process: later writes go on)
        if sigint is not None and signal.getsignal(signal.SIGINT) is not sigint:
            signal.signal(signal.SIGINT, sigint)  # (main called in-process: Ctrl-C as it was before)


def _one_line_warning(command, message, category, filename, lineno, line=None) -> str:
    """``warnings.formatwarning`` while a command runs: one line,
    ``xcube COMMAND: warning: <message>``, without the file and source line
    of the code that warned (for a warning raised in a Dask task, a line of
    dask itself)."""
    kind = "" if category in (UserWarning, RuntimeWarning) else f" ({category.__name__})"
    return f"xcube {command}: warning{kind}: {message}\n"


def _quiet_terminated(hook, unraisable) -> None:
    """``sys.unraisablehook`` while a command runs: a SIGTERM raised inside a
    finaliser, which Python cannot raise further, is not printed as an
    "Exception ignored" traceback but kept in :data:`xcube.io.atomic.STOP`:
    the next atomic write raises it instead of putting its output in place,
    and :func:`main` ends with status 143."""
    if not isinstance(unraisable.exc_value, Terminated):
        hook(unraisable)
        return
    from .io.atomic import STOP

    STOP.set()


def _silence_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's last flush
    at exit does not report the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout not a real file (e.g. captured in tests)
        pass


def _interrupted(args, term: bool, main_thread: bool) -> int:
    """The end of a command stopped by Ctrl-C (``term`` False) or SIGTERM:
    one line on stderr, status 130 or 143."""
    if main_thread:  # a second SIGTERM during what follows ends the process
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _close_progress_bars()
    print(f"xcube {args.command}: {'terminated (SIGTERM)' if term else 'interrupted'}", file=sys.stderr)
    return 128 + int(signal.SIGTERM if term else signal.SIGINT)


def error_text(exc: BaseException) -> str:
    """The message of ``exc`` for the command line: a ``KeyError`` carrying a
    sentence without the quotes ``str(KeyError)`` adds."""
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str) and " " in exc.args[0]:
        return exc.args[0]
    return str(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
