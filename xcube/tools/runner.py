"""Run one mission-tool task: command line, environment, log, timeout, checks.

A :class:`Task` is a declarative description of one call of a SAS, HEASoft or
HXMTDAS executable: its ``key=value`` parameters (exactly as the tool's
documentation spells them), optional positional arguments, the files it reads
(``inputs``) and the files it must produce (``outputs``). :func:`run` executes
it and returns a :class:`TaskResult`:

- the tool runs in a work directory that is always given or derived
  (``workdir=``, ``Task.workdir``, or the directory of an absolute output),
  never the current directory by default; relative outputs and inputs are
  resolved against it, and a relative output that leads outside it is refused
  (give an absolute path to write elsewhere);
- the command line is ``tool [args...] key=value ...`` (no shell; values with
  spaces stay one argument);
- every run gets a private parameter-file directory,
  ``PFILES="<private>;<system pfiles>"``, so concurrent runs of the same tool
  never read or write each other's ``<tool>.par``; it is removed after the
  run, whether it succeeded or not (it lives under ``<workdir>/.pfiles``,
  or under the system's temporary directory when the work directory's path
  holds ``:`` or ``;``, PFILES' separators: :func:`parameter_directory`);
- HEASoft-based tools (HEASoft, HXMTDAS) get ``HEADASNOQUERY`` and
  ``HEADASPROMPT=/dev/null`` so they never prompt; SAS tasks get ``SAS_ODF``
  and ``SAS_CCF`` from the task (``Task.env``, part of the parameter hash),
  never from the shell;
- stdout and stderr go to a log of its own per run,
  ``<workdir>/logs/<task>-<UTC time>-<random>.log`` (the task name made safe
  for a file name), so concurrent runs never share one; only the log's tail
  and its error/warning lines are read back (bounded memory);
- outputs named on the command line are written under temporary names beside
  their final ones and moved into place only after the run succeeded and the
  outputs passed their checks; outputs the tool names itself are moved aside
  first (copied, when the tool also reads them) and put back if the run fails.
  A failed run therefore never destroys an input or an earlier good product
  (:mod:`xcube.tools.staging`), nor does one killed with its driver: the
  next run in the work directory puts its outputs back in order from its
  journal (:mod:`xcube.tools.journal`);
- the timeout kills the tool, its process group and every process it started
  that left the group (:mod:`xcube.tools.procs`); after the tool exits (also
  with exit code 0) whatever it left running is stopped the same way;
- the tool dies with its driver (Linux parent-death signal), and a run first
  stops what runs whose driver was killed with SIGKILL left running in its
  work directory, found by their journals (:mod:`xcube.tools.journal`);
- declared outputs must exist afterwards and be valid, complete FITS files;
- a tool that exits with code 0 but printed an error line of its family's
  own form (SAS ``** <task>: error (...)``, HEASoft/HXMTDAS ``ERROR:``,
  ``Error:``, ``... terminating with status N``; never warnings; see
  :func:`xcube.tools.logs.failure_lines`) failed: :class:`ToolError` with
  that line, nothing recorded (``Task.error_lines_fatal=False`` opts out:
  the SAS chains ``epchain``/``emchain``, which go on past a constituent's
  error by default (``stoponerror=no``) and whose outputs are checked, log
  the lines as a warning and keep them in ``TaskResult.errors``);
- a task whose outputs exist with the same parameter hash and the same input
  checksums is skipped without calling the tool (``overwrite=True`` forces a
  run); the inputs are ``Task.inputs`` and every existing file a parameter or
  positional argument names that is not an output, and a directory's checksum
  leaves out what the task writes itself (outputs, work directory, logs);
  the evidence is the provenance record written next to the first output
  (see :mod:`xcube.tools.provenance`). A file that is both an input
  and an output is changed in place: its change is recorded in the file's
  modification list instead.

Failures raise :class:`ToolError` (with the tail of the log),
:class:`ToolTimeout` or :class:`ToolNotFoundError` (naming the package to
install and the environment to set up).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from .._version import __version__
from ..io.paths import inside, safe_component
from .files import check_fits, fingerprint, path_excluder
from .journal import RunJournal, recover_dead_runs
from .logs import failure_lines, parse_log, scan_log, tail
from .packages import PACKAGES, Package, package_of, package_versions, tool_version
from .procs import TOKEN_VARIABLE, die_with_parent, group_alive, kill_tree, marked_processes, new_token, start_time
from .provenance import (
    append_mod,
    clear_mods,
    modified_consistently,
    mods_path,
    read_mods,
    read_record,
    record_path,
    write_record,
)
from .staging import Staging

__all__ = [
    "Task",
    "TaskResult",
    "Glob",
    "run",
    "work_directory",
    "ToolError",
    "ToolTimeout",
    "ToolNotFoundError",
    "OutputError",
    "PACKAGES",
    "Package",
    "package_of",
    "format_value",
    "command_line",
    "fingerprint",
    "parse_log",
    "check_fits",
]

log = logging.getLogger("xcube.tools")

# ---------------------------------------------------------------------------
# errors


class ToolError(RuntimeError):
    """A mission tool failed. Carries the task name, tool, return code, log
    file and its last lines (``log_tail``) and the error lines found in it."""

    def __init__(self, message: str, *, task: str = "", tool: str = "", returncode: int | None = None,
                 log: Path | None = None, log_tail: str = "", errors: Sequence[str] = ()):
        self.task = task
        self.tool = tool
        self.returncode = returncode
        self.log = log
        self.log_tail = log_tail
        self.errors = list(errors)
        full = message
        if log_tail:
            full += f"\n--- last lines of {log} ---\n{log_tail}"
        super().__init__(full)


class ToolTimeout(ToolError):
    """The tool ran longer than the task's timeout and was killed."""


class ToolNotFoundError(ToolError):
    """The tool's executable is not on PATH (package not installed or not set up)."""


class OutputError(ToolError):
    """The tool exited normally but a declared output is missing or not valid FITS."""


# ---------------------------------------------------------------------------
# tasks


class Glob:
    """A file-name pattern resolved when the task runs (after the tasks it
    depends on have made the file). Must match exactly one path."""

    def __init__(self, pattern):
        self.pattern = str(pattern)

    def under(self, root) -> "Glob":
        """The same pattern, relative patterns taken under directory ``root``."""
        return self if os.path.isabs(self.pattern) else Glob(os.path.join(os.fspath(root), self.pattern))

    def resolve(self, required: bool = True) -> str | None:
        """The one path matching the pattern now. When none or several match:
        None if not ``required``, else ``FileNotFoundError`` (none) or
        ``ValueError`` (several). Lists directories; reads no file."""
        import glob

        hits = sorted(glob.glob(self.pattern))
        if len(hits) == 1:
            return hits[0]
        if not required:
            return None
        if not hits:
            raise FileNotFoundError(f"no file matches {self.pattern}; did the step that makes it run?")
        raise ValueError(f"{len(hits)} files match {self.pattern} ({hits[:3]}...); pass the file explicitly")

    def __repr__(self):
        return f"Glob({self.pattern!r})"

    def __eq__(self, other):
        return isinstance(other, Glob) and other.pattern == self.pattern

    def __hash__(self):
        return hash(self.pattern)


@dataclass
class Task:
    """One call of a mission tool.

    Parameters
    ----------
    tool : executable name (``"evselect"``, ``"maketime"``, ``"lepical"``).
    params : ``key -> value`` parameters, passed as ``key=value`` in this order.
        ``True``/``False`` become ``yes``/``no``, lists are space-joined,
        ``None`` drops the parameter, :class:`Glob` is resolved at run time.
    args : positional arguments placed before the parameters (HXMTDAS
        ``legticorr``, ``lebkgmap`` ...).
    inputs : files or directories read; their checksums decide whether a
        finished task is still up to date.
    outputs : FITS files the tool must make (checked to be complete FITS);
        relative ones are taken in the work directory. An output that is also
        an input is changed in place.
    text_outputs : non-FITS files the tool must make (logs, lists, summaries).
    env : extra environment variables (e.g. ``SAS_ODF``, ``SAS_CCF``).
    name : task id, unique within a batch (default ``<tool>-<hash>``); also
        the start of the log file name (made safe for a file name).
    deps : names of tasks that must finish first (used by ``run_many``).
    workdir : working directory of the tool (default: directory of the first
        output given as an absolute path; there is no default beyond that).
    timeout : seconds before the process group is killed (None: no limit).
    rename : ``{made_by_tool: final_name}`` moves applied after a successful
        run (for tools that only accept an output prefix).
    tags : free metadata kept in records and status tables (``obsid``,
        ``instrument``, ``exposure``...).
    error_lines_fatal : a run that exits with code 0 but printed an error
        line of the tool's own form fails (default); False only reports
        such lines in ``TaskResult.errors``.
    """

    tool: str
    params: Mapping[str, Any] = field(default_factory=dict)
    args: Sequence[Any] = ()
    inputs: Sequence[Any] = ()
    outputs: Sequence[Any] = ()
    text_outputs: Sequence[Any] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None
    deps: Sequence[str] = ()
    workdir: str | os.PathLike | None = None
    timeout: float | None = None
    rename: Mapping[Any, Any] = field(default_factory=dict)
    tags: Mapping[str, Any] = field(default_factory=dict)
    error_lines_fatal: bool = True

    def __post_init__(self):
        if not self.tool or "/" in self.tool or " " in self.tool:
            raise ValueError(f"Task tool must be an executable name such as 'evselect', got {self.tool!r}")
        if self.name is None:
            self.name = f"{self.tool}-{self.param_hash()[:10]}"
        self.deps = tuple(self.deps)

    @property
    def package(self) -> Package | None:
        """The software package the tool belongs to, by its package's tool list
        or, for another tool, where PATH (with this task's ``env``) finds it
        (under ``$SAS_DIR``, ``$HEADAS``); None if unknown. Eager (a look-up
        and a PATH search)."""
        return package_of(self.tool, {**os.environ, **{k: str(v) for k, v in self.env.items()}})

    def param_hash(self, resolved: tuple | None = None) -> str:
        """SHA-256 of tool, parameters, positional args, environment overrides
        and output names (what defines the products, independent of when)."""
        args, params, outputs = resolved or (self.args, self.params, self.outputs)
        ident = {
            "tool": self.tool,
            "args": [_plain(a) for a in args],
            "params": [[k, _plain(v)] for k, v in params.items()],
            "env": sorted((k, str(v)) for k, v in self.env.items()),
            "outputs": [_plain(o) for o in outputs] + [_plain(o) for o in self.text_outputs],
            "rename": sorted((_plain(k), _plain(v)) for k, v in self.rename.items()),
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def _plain(v):
    if isinstance(v, Glob):
        return f"glob:{v.pattern}"
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def format_value(value) -> str:
    """A parameter value as the tools expect it on the command line:
    ``yes``/``no`` for booleans, space-joined lists, floats at full double
    precision (the shortest text that reads back as the same number, so
    mission times keep their fraction: ``369597279.123456``; whole numbers
    without ``.0``: ``100``). Eager; a :class:`Glob` is resolved against the
    file system here."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = repr(float(value))  # float(): numpy scalars print as np.float64(...)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, (list, tuple)):
        return " ".join(format_value(v) for v in value)
    if isinstance(value, Glob):
        return value.resolve()
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def command_line(task: Task) -> list[str]:
    """``[tool, *args, key=value, ...]`` for a task (Globs resolved). Eager;
    Globs are resolved against the file system here."""
    cmd = [task.tool] + [format_value(a) for a in task.args]
    for key, value in task.params.items():
        if value is None:
            continue
        cmd.append(f"{key}={format_value(value)}")
    return cmd


@dataclass
class TaskResult:
    """What a run did. ``state`` is ``"done"`` (the tool ran) or ``"skipped"``
    (outputs were up to date; the tool was not called)."""

    task: str
    tool: str
    state: str
    command: list[str]
    returncode: int | None
    duration: float
    outputs: list[Path]
    log: Path | None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    param_hash: str = ""
    record: Path | None = None
    tags: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain-Python version (paths as strings) for tables and JSON."""
        d = dict(self.__dict__)
        d["outputs"] = [str(p) for p in self.outputs]
        d["log"] = str(self.log) if self.log else None
        d["record"] = str(self.record) if self.record else None
        return d


# ---------------------------------------------------------------------------
# environment


def _system_pfiles(env: Mapping[str, str]) -> str:
    """The system part of PFILES: after ';' of the current value, else the
    whole value, else ``$HEADAS/syspfiles``."""
    cur = env.get("PFILES", "")
    if ";" in cur:
        return cur.split(";", 1)[1]
    if cur:
        return cur
    headas = env.get("HEADAS")
    return str(Path(headas) / "syspfiles") if headas else ""


#: what a SAS task reads of the observation it processes; it comes from the task, never from the shell
SAS_TASK_VARIABLES = ("SAS_ODF", "SAS_CCF")


#: characters that separate directories in PFILES (HEASoft's parameter interface): a
#: private directory whose path holds one would be split into bogus directories
PFILES_SEPARATORS = ";:"


def parameter_directory(private: Path) -> Path:
    """The directory named first in ``PFILES`` for one run: ``private`` (the
    run's directory under ``<workdir>/.pfiles``, which also holds its
    journal), unless its absolute path contains ``:`` or ``;``, which PFILES
    takes as separators (a work directory named after a time stamp,
    ``2024-05-01T10:00:00``): then a new directory under the system's
    temporary directory (removed after the run with the private one).
    Raises ``ValueError`` when that path has a separator too. Eager (creates
    the temporary directory)."""
    if not any(c in str(private) for c in PFILES_SEPARATORS):
        return private
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="xcube-pfiles-"))
    if any(c in str(tmp) for c in PFILES_SEPARATORS):
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"{private}: the work directory's path contains ':' or ';', which PFILES takes as "
                         f"separators, and so does the temporary directory {tmp.parent}; use a work directory "
                         "without them, or set TMPDIR to one without them")
    return tmp


def _environment(task: Task, pfiles_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    pkg = task.package
    if pkg is not None and pkg.name == "SAS":
        # the shell's SAS_ODF/SAS_CCF belong to whatever observation was set up last: a SAS task gets
        # its observation's from Task.env (part of the parameter hash), or none
        for var in SAS_TASK_VARIABLES:
            env.pop(var, None)
    env.update({k: str(v) for k, v in task.env.items()})
    system = _system_pfiles(env)
    env["PFILES"] = f"{pfiles_dir};{system}" if system else f"{pfiles_dir};"
    if pkg is None or pkg.headas:
        # HEASoft parameter interface: never prompt for a missing parameter
        # (https://heasarc.gsfc.nasa.gov/lheasoft/headas/pil/node4.html)
        env["HEADASNOQUERY"] = ""
        env["HEADASPROMPT"] = "/dev/null"
    return env


# ---------------------------------------------------------------------------
# running


def work_directory(task: Task, workdir=None) -> Path:
    """The tool's working directory (absolute): ``workdir``, else
    ``task.workdir``, else the directory of the first output given as an
    absolute path. Raises ``ValueError`` when there is none: xcube never
    writes logs or parameter files into the current directory by default. Eager
    (paths only; creates nothing)."""
    for cand in (workdir, task.workdir):
        if cand is not None:
            return Path(os.path.abspath(cand))
    for o in list(task.outputs) + list(task.text_outputs):
        if not isinstance(o, Glob) and Path(o).is_absolute():
            return Path(o).parent
    raise ValueError(f"{task.name}: no work directory; give workdir= (or Task.workdir, or absolute output paths): "
                     "xcube does not write logs and parameter files into the current directory by default")


def _output_path(value, wd: Path, task: Task) -> Path | Glob:
    if isinstance(value, Glob):
        return value.under(wd)
    p = Path(value)
    if p.is_absolute():
        return Path(os.path.normpath(p))
    try:
        inside(wd, p, what=f"{task.name}: output")
    except ValueError as exc:
        raise ValueError(f"{exc}. Relative outputs are taken in the work directory {wd}; give an absolute path "
                         "to write elsewhere") from None
    return Path(os.path.normpath(wd / p))


def _resolve_value(v, wd: Path):
    return v.under(wd).resolve() if isinstance(v, Glob) else v


@dataclass
class _Job:
    """A task resolved against its work directory, ready to run or skip."""

    task: Task
    wd: Path
    params: dict
    args: list
    inputs: list
    outputs: list
    text_outputs: list
    rename: dict
    phash: str
    cmd: list
    inputs_fp: dict
    inplace: set

    @property
    def other_inputs(self) -> dict:
        """Input checksums without the files changed in place."""
        return {k: v for k, v in self.inputs_fp.items() if k not in self.inplace}

    def finals(self, required: bool) -> list[Path | None]:
        outs = []
        for o in self.outputs + self.text_outputs:
            hit = o.resolve(required) if isinstance(o, Glob) else o
            outs.append(Path(hit) if hit is not None else None)
        return outs


def _inside(path, root) -> bool:
    """``path`` lies strictly inside directory ``root`` (real paths)."""
    p, r = os.path.realpath(path), os.path.realpath(root)
    return p.startswith(r.rstrip(os.sep) + os.sep)


#: where a file name inside a value ends: function-call brackets and commas (``gti(gti.fits,TIME)``,
#: ``region(src.reg,X,Y)``), quotes (CFITSIO ``regfilter("src.reg")``)
_NAME_DELIMITERS = re.compile(r"[(),'\"]")
#: a CFITSIO extension number after a file name (``ev.fits+1``)
_EXTENSION_NUMBER = re.compile(r"\+\d+$")


def _name_candidates(text: str) -> list[str]:
    """The strings of a parameter value that may name a file, in order: the
    whole value, its space-separated words, and the pieces between brackets,
    commas and quotes (whole, then their words), each as it is and with a
    leading ``@`` (list file), a CFITSIO/SAS extension or filter
    (``[EVENTS]``, ``[1][PI>5]``, ``:EVENTS``) and an extension number
    (``+1``) stripped."""
    pieces = [text] + text.split()
    for piece in _NAME_DELIMITERS.split(text):
        piece = piece.strip()
        pieces += [piece] + piece.split()
    out = []
    for piece in dict.fromkeys(p for p in pieces if p):
        word = piece.lstrip("@")
        base = word.split("[", 1)[0]
        out += [word, base, word.split(":", 1)[0], _EXTENSION_NUMBER.sub("", base)]
    return [c for c in dict.fromkeys(out) if c]


def _named_files(values, wd: Path) -> list[Path]:
    """Existing regular files named by parameter values or positional
    arguments: a whole value, one of its space-separated words, a list item,
    or a name inside an expression (SAS selectlib ``gti(gti.fits,TIME)``,
    ``region(src.reg,X,Y)``; CFITSIO ``regfilter("src.reg",X,Y)``); relative
    names taken in ``wd``; ``[ext]``/``[ext][filter]``/``:ext``/``+n`` (FITS
    extension, CFITSIO syntax) and a leading ``@`` (list file) stripped;
    ``!name`` (clobber: an output) left out. Each file once per value. Eager:
    one ``stat`` per candidate string."""
    found: list[Path] = []

    def visit(v):
        if isinstance(v, (list, tuple)):
            for x in v:
                visit(x)
            return
        if isinstance(v, bool) or not isinstance(v, (str, os.PathLike)):
            return
        text = os.fspath(v).strip()
        if not text or text.startswith("!"):
            return
        here: list[Path] = []
        for cand in _name_candidates(text):
            path = Path(os.path.normpath(os.path.join(wd, cand)))
            try:
                is_file = path.is_file()
            except (OSError, ValueError):  # a name too long, a NUL byte: not a file
                is_file = False
            if is_file and path not in here:
                here.append(path)
        found.extend(here)
        for piece in text.split():  # an @list: the files it names are read too
            if piece.startswith("@") and here:
                found.extend(f for f in _listed_files(Path(os.path.normpath(os.path.join(wd, piece[1:]))), wd)
                             if f not in found)

    for v in values:
        visit(v)
    return found


#: lines of an @list file read for the files it names (a longer list is cut there, with its list file kept)
_LIST_LINES = 100_000


def _listed_files(listing: Path, wd: Path) -> list[Path]:
    """Existing files named by the lines of the list file ``listing`` (an
    ``@file`` argument of HEASoft/CFITSIO tools: one name per line,
    extension syntax allowed, relative names in ``wd``), so that a changed
    file of the list makes the task run again. Eager: reads the list."""
    try:
        with open(listing, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for _, line in zip(range(_LIST_LINES), f)]
    except OSError:
        return []
    return _named_files([line for line in lines if line and not line.startswith("#")], wd)


def _prepare(task: Task, wd: Path, log_dir=None) -> _Job:
    params = {k: _resolve_value(v, wd) for k, v in task.params.items()}
    args = [_resolve_value(a, wd) for a in task.args]
    inputs = [os.path.normpath(wd / (i.under(wd).resolve() if isinstance(i, Glob) else os.fspath(i)))
              for i in task.inputs]
    outputs = [_output_path(o, wd, task) for o in task.outputs]
    text_outputs = [_output_path(o, wd, task) for o in task.text_outputs]
    rename = {Path(os.path.normpath(wd / os.fspath(k))): _output_path(v, wd, task) for k, v in task.rename.items()}
    resolved = Task(task.tool, params=params, args=args, inputs=inputs, outputs=task.outputs,
                    text_outputs=task.text_outputs, env=task.env, name=task.name, rename=task.rename)
    # what the task itself writes is not part of what it reads: its outputs (and the patterns of its
    # Glob outputs), the files it renames, its logs and parameter files, and its work directory when
    # that lies inside an input directory (nicerl2's event_cl inside the observation directory)
    made = [o for o in outputs + text_outputs + list(rename.values()) if isinstance(o, Path)] + list(rename)
    patterns = [o.pattern for o in outputs + text_outputs + list(rename.values()) if isinstance(o, Glob)]
    own = made + [wd / "logs", wd / ".pfiles"] + ([Path(os.path.abspath(log_dir))] if log_dir is not None else [])
    inputs_fp = {str(Path(i).resolve()): fingerprint(i, own + ([wd] if _inside(wd, i) else []), patterns)
                 for i in inputs}
    missing = [i for i, fp in inputs_fp.items() if fp == "missing"]
    if missing:
        raise ToolError(f"{task.name}: input file(s) missing: {missing}; run the step that makes them first",
                        task=task.name, tool=task.tool)
    # files named in the parameters are inputs too, declared or not (`xcube tools run evselect
    # table=pn.fits ...`): a changed pn.fits must re-run the task
    is_own = path_excluder(made, patterns)
    for f in _named_files(list(params.values()) + list(args), wd):
        key = str(f.resolve())
        if key not in inputs_fp and not is_own(Path(key)):
            inputs_fp[key] = fingerprint(f)
    inplace = {str(o.resolve()) for o in outputs + text_outputs if isinstance(o, Path)} & set(inputs_fp)
    return _Job(task=task, wd=wd, params=params, args=args, inputs=inputs, outputs=outputs,
                text_outputs=text_outputs, rename=rename, phash=resolved.param_hash(), cmd=command_line(resolved),
                inputs_fp=inputs_fp, inplace=inplace)


def _regular_up_to_date(job: _Job, regular: list[Path]) -> Path | None:
    rec_path = record_path(regular[0])
    rec = read_record(rec_path)
    if rec is None or rec.get("param_hash") != job.phash or rec.get("inputs", {}) != job.other_inputs:
        return None
    made = rec.get("outputs", {})
    for o in regular:
        key, now = str(o.resolve()), fingerprint(o)
        if made.get(key) != now and not modified_consistently(o, made.get(key), now):
            return None
    return rec_path


def _inplace_up_to_date(job: _Job, path: Path) -> bool:
    mods = read_mods(path)
    mine = [i for i, m in enumerate(mods) if m.get("param_hash") == job.phash and m.get("inputs") == job.other_inputs]
    if not mine:
        return False
    i, now = mine[-1], fingerprint(path)
    return mods[i].get("after") == now or modified_consistently(path, mods[i].get("after"), now, since=i + 1)


def up_to_date(job: _Job) -> Path | None:
    """The record that proves ``job``'s outputs current (same parameter hash,
    same input checksums, outputs unchanged since, or changed only by recorded
    in-place modifications), else None."""
    try:
        outs = job.finals(required=False)
    except (ValueError, FileNotFoundError):
        return None
    if not outs or any(o is None or not o.exists() for o in outs):
        return None
    regular = [o for o in outs if str(o.resolve()) not in job.inplace]
    rec_path = _regular_up_to_date(job, regular) if regular else None
    if regular and rec_path is None:
        return None
    for o in outs:
        if str(o.resolve()) in job.inplace:
            if not _inplace_up_to_date(job, o):
                return None
            rec_path = rec_path or mods_path(o)
    return rec_path


def _new_log(task: Task, wd: Path, log_dir) -> Path:
    """A log file of this run only: ``<log_dir>/<safe task name>-<UTC time>-<hex>.log``."""
    base = Path(log_dir) if log_dir is not None else wd / "logs"
    base.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    name = f"{safe_component(task.name, 'task name')[:100]}-{stamp}-{uuid.uuid4().hex[:6]}.log"
    return inside(base, name, what=f"{task.name}: log file")


def _fail(job: _Job, log_path: Path, rc, errors, cls=None):
    def make(msg: str) -> ToolError:
        first = str(errors[0]).strip() if errors else ""
        if first and first not in msg:  # (a large log's tail may not reach back to it)
            msg += f" (first error line of the log: {first[:300]})"
        return (cls or OutputError)(f"{job.task.name}: {job.task.tool} {msg}; see {log_path}", task=job.task.name,
                                    tool=job.task.tool, returncode=rc, log=log_path, log_tail=tail(log_path),
                                    errors=errors)
    return make


def run(task: Task, workdir=None, *, overwrite: bool = False, timeout: float | None = None,
        log_dir=None) -> TaskResult:
    """Run ``task`` and return a :class:`TaskResult` (eager; blocks until the
    tool exits).

    ``workdir`` is the tool's working directory (default: ``task.workdir``,
    else the directory of the first absolute output; ``ValueError`` if none);
    logs go to ``log_dir`` (default ``<workdir>/logs``), one file per run.
    ``timeout`` [s] overrides ``task.timeout``. When the outputs are up to
    date (same parameter hash, same input checksums, unchanged outputs) the
    tool is not called and the result has ``state="skipped"``;
    ``overwrite=True`` always runs. A failed run leaves the outputs as they
    were before it (see :mod:`xcube.tools.staging`).

    Raises :class:`ToolNotFoundError`, :class:`ToolTimeout`,
    :class:`ToolError` (non-zero exit, or an error line of the tool's own
    form under exit code 0) or :class:`OutputError`; ``ValueError``
    for an output outside the work directory.
    """
    timeout = task.timeout if timeout is None else timeout
    wd = work_directory(task, workdir)
    recover_dead_runs(wd)  # a tool left running by a driver killed with SIGKILL must not write into this run
    job = _prepare(task, wd, log_dir)
    if not overwrite:
        rec_path = up_to_date(job)
        if rec_path is not None:
            log.info("%s: up to date (%s), not running %s", task.name, rec_path, task.tool)
            return TaskResult(task=task.name, tool=task.tool, state="skipped", command=job.cmd, returncode=None,
                              duration=0.0, outputs=job.finals(required=True), log=None, param_hash=job.phash,
                              record=rec_path, tags=dict(task.tags))
    exe = shutil.which(task.tool, path=dict(os.environ, **task.env).get("PATH"))
    if exe is None:
        raise _not_found(task)
    wd.mkdir(parents=True, exist_ok=True)
    log_path = _new_log(task, wd, log_dir)
    pfiles = inside(wd, ".pfiles", f"{safe_component(task.name, 'task name')[:100]}-{uuid.uuid4().hex[:8]}",
                    what=f"{task.name}: parameter-file directory")
    token = new_token()
    journal = RunJournal.start(pfiles, task=task.name, tool=task.tool, token=token, log=str(log_path))
    staging = Staging(job.outputs, job.text_outputs, job.inplace, job.rename, job.params, job.args, wd)
    par_dir = pfiles
    try:
        pfiles.mkdir(parents=True)
        par_dir = parameter_directory(pfiles)
        env = _environment(task, par_dir)
        versions = {"xcube": __version__, **package_versions(task.package, env)}
        tv = tool_version(task.tool, env)
        if tv:
            versions["tool_version"] = tv
        params, args = staging.begin(note=lambda plan: journal.update(staging=plan))
        actual = command_line(Task(task.tool, params=params, args=args, name=task.name))
        rc, duration, started = _execute(job, exe, actual, env, log_path, timeout, token, journal)
        errors, warnings_ = scan_log(log_path)
        if rc != 0:
            raise _fail(job, log_path, rc, errors, ToolError)(f"failed with exit code {rc}")
        # tools that report a failure only in their output and exit with 0 (a SAS chain whose
        # constituent failed, a HEASoft tool that could not prompt): the run failed, it is not recorded
        pkg = task.package
        said = failure_lines(errors, None if pkg is None else "HEASoft" if pkg.headas else pkg.name)
        if said and task.error_lines_fatal:
            raise _fail(job, log_path, rc, errors, ToolError)(f"exited with code 0 but reported an error: {said[0]}")
        if said:  # a chain that goes on past a constituent's error (SAS stoponerror=no): its outputs are checked
            log.warning("%s: %s exited with code 0 and its outputs exist, but it reported %d error line(s), the "
                        "first: %s (log: %s)", task.name, task.tool, len(said), said[0], log_path)
        outs = staging.commit(check_fits, _fail(job, log_path, rc, errors))
    except BaseException:
        staging.abort()
        raise
    finally:
        shutil.rmtree(pfiles, ignore_errors=True)
        if par_dir != pfiles:
            shutil.rmtree(par_dir, ignore_errors=True)
        journal.close()
        _rmdir_if_empty(pfiles.parent)
    rec_path = _record(job, outs, versions=versions, started=started, duration=duration, rc=rc, log_path=log_path,
                       warnings_=warnings_)
    log.info("%s: %s done in %.2f s", task.name, task.tool, duration)
    return TaskResult(task=task.name, tool=task.tool, state="done", command=job.cmd, returncode=rc,
                      duration=duration, outputs=outs, log=log_path, errors=errors, warnings=warnings_,
                      param_hash=job.phash, record=rec_path, tags=dict(task.tags))


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def _execute(job: _Job, exe: str, actual: list[str], env: dict, log_path: Path, timeout, token: str,
             journal: RunJournal):
    """Start the tool with its log, wait, stop everything it left behind.
    The tool carries ``token`` (:data:`TOKEN_VARIABLE`), dies with the
    thread that started it (:func:`die_with_parent`, Linux) and its PID and
    start time go into ``journal``, so a run after a driver killed with
    SIGKILL finds what it left running. Returns ``(returncode, duration [s],
    start time)``; raises :class:`ToolTimeout`."""
    task = job.task
    env = dict(env, **{TOKEN_VARIABLE: token})
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    with open(log_path, "x") as fh:
        fh.write(f"#xcube task {task.name} started {started.isoformat()}\n")
        fh.write(f"#xcube cwd {job.wd}\n#xcube PFILES={env['PFILES']}\n")
        for k in sorted(task.env):
            fh.write(f"#xcube {k}={task.env[k]}\n")
        fh.write(f"#xcube command: {shlex.join(job.cmd)}\n")
        if actual != job.cmd:
            fh.write(f"#xcube run with temporary output names: {shlex.join(actual)}\n")
        fh.flush()
        proc = subprocess.Popen([exe] + actual[1:], cwd=job.wd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent())
        try:
            journal.update(tool_pid=proc.pid, tool_started=start_time(proc.pid))
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            n = kill_tree(proc, token)
            duration = time.monotonic() - t0
            fh.write(f"\n#xcube killed after {duration:.1f} s (timeout {timeout} s), with {n} process(es) "
                     "that had left its process group\n")
            fh.flush()
            raise ToolTimeout(f"{task.name}: {task.tool} exceeded the timeout of {timeout} s and was killed "
                              f"(process group {proc.pid}); raise timeout= or check the inputs; see {log_path}",
                              task=task.name, tool=task.tool, log=log_path, log_tail=tail(log_path)) from None
        except BaseException:
            kill_tree(proc, token)
            raise
        # nothing it started may outlive it, whatever its exit code: also a process that left its
        # group and session (setsid, daemons) is found by the run's token (~10-50 ms per run)
        left = marked_processes(token)
        if rc != 0 or left or group_alive(proc.pid):
            kill_tree(proc, token, grace=1.0)
        if left:
            fh.write(f"\n#xcube stopped {len(left)} process(es) it left behind: {left}\n")
        duration = time.monotonic() - t0
        fh.write(f"\n#xcube exit code {rc} after {duration:.2f} s\n")
    return rc, duration, started


def _record(job: _Job, outs: list[Path], *, versions, started, duration, rc, log_path, warnings_) -> Path | None:
    """Write the provenance record of the new outputs, and a modification
    entry for each output changed in place. Returns the record's path."""
    task = job.task
    regular = [o for o in outs if str(o.resolve()) not in job.inplace]
    common = {
        "task": task.name, "tool": task.tool, "package": task.package.name if task.package else None,
        "command": job.cmd, "param_hash": job.phash, "inputs": job.other_inputs, "versions": versions,
        "started": started.isoformat(), "duration": duration, "returncode": rc, "log": str(log_path),
        "tags": {k: _plain(v) for k, v in task.tags.items()},
    }
    rec_path = None
    if regular:
        record = dict(common, params={k: _plain(v) for k, v in job.params.items() if v is not None},
                      args=[_plain(a) for a in job.args], env={k: str(v) for k, v in task.env.items()},
                      outputs={str(o.resolve()): fingerprint(o) for o in regular}, warnings=warnings_[:50])
        rec_path = write_record(regular[0], record)
        for o in regular:
            clear_mods(o)
    for o in outs:
        key = str(o.resolve())
        if key in job.inplace:
            append_mod(o, dict(common, before=job.inputs_fp[key], after=fingerprint(o)))
            rec_path = rec_path or mods_path(o)
    return rec_path


def _not_found(task: Task) -> ToolNotFoundError:
    pkg = task.package
    if pkg is None:
        msg = (f"{task.tool}: command not found on PATH. Install the software that provides it and set up "
               f"its environment (PATH) before starting Python.")
    else:
        missing = [v for v in pkg.version_env[:1] if not os.environ.get(v)]
        hint = f" ({', '.join(missing)} is not set, so the environment is not set up)" if missing else ""
        msg = (f"{task.tool}: command not found on PATH{hint}. It is part of {pkg.description}; "
               f"{pkg.setup}.")
    return ToolNotFoundError(msg, task=task.name or "", tool=task.tool)
