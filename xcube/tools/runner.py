"""Run one mission-tool task: command line, environment, log, timeout, checks.

A :class:`Task` is a declarative description of one call of a SAS, HEASoft or
HXMTDAS executable: its ``key=value`` parameters (exactly as the tool's
documentation spells them), optional positional arguments, the files it reads
(``inputs``) and the files it must produce (``outputs``). :func:`run` executes
it and returns a :class:`TaskResult`:

- the command line is ``tool [args...] key=value ...`` (no shell; values with
  spaces stay one argument);
- every run gets a private parameter-file directory,
  ``PFILES="<private>;<system pfiles>"``, so concurrent runs of the same tool
  never read or write each other's ``<tool>.par``;
- HEASoft-based tools (HEASoft, HXMTDAS) get ``HEADASNOQUERY`` and
  ``HEADASPROMPT=/dev/null`` so they never prompt; SAS tasks get ``SAS_ODF``
  and ``SAS_CCF`` from the task;
- stdout and stderr go to ``<workdir>/logs/<task>.log``;
- the timeout kills the whole process group (tools spawn sub-tasks);
- declared outputs must exist afterwards and be valid, complete FITS files;
- a task whose outputs exist with the same parameter hash and the same input
  checksums is skipped without calling the tool (``overwrite=True`` forces a
  run); the evidence is the provenance record written next to the first
  output (see :mod:`xcube.tools.provenance`).

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
import signal
import subprocess
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from .._version import __version__
from .provenance import read_record, record_path, write_record

__all__ = [
    "Task",
    "TaskResult",
    "Glob",
    "run",
    "ToolError",
    "ToolTimeout",
    "ToolNotFoundError",
    "OutputError",
    "PACKAGES",
    "package_of",
    "format_value",
    "command_line",
    "fingerprint",
]

log = logging.getLogger("xcube.tools")

# ---------------------------------------------------------------------------
# packages: which tool belongs to which software, and how to set it up


@dataclass(frozen=True)
class Package:
    """A mission software package: its tools, environment and set-up help."""

    name: str
    description: str
    setup: str
    headas: bool  # HEASoft-style parameter interface (PFILES, HEADASNOQUERY)
    version_command: tuple[str, ...] | None
    version_env: tuple[str, ...]
    tools: frozenset


PACKAGES: dict[str, Package] = {
    "SAS": Package(
        name="SAS",
        description="XMM-Newton Science Analysis System (SAS)",
        setup=(
            "install SAS (https://www.cosmos.esa.int/web/xmm-newton/sas-installation), then before starting "
            "Python: `export SAS_DIR=/path/to/xmmsas_<version>; source $SAS_DIR/setsas.sh` (or your site's "
            "`sas-setup`), and `export SAS_CCFPATH=/path/to/ccf` for the calibration files"
        ),
        headas=False,
        version_command=("sasversion",),
        version_env=("SAS_DIR", "SAS_CCFPATH"),
        tools=frozenset(
            "cifbuild odfingest epchain emchain epproc emproc espfilt emanom evselect tabgtigen eexpmap merge "
            "sasversion atthkgen epatplot rgsproc".split()
        ),
    ),
    "HEASoft": Package(
        name="HEASoft",
        description="HEASoft (FTOOLS / mission software from the HEASARC)",
        setup=(
            "install HEASoft (https://heasarc.gsfc.nasa.gov/lheasoft/), then before starting Python: "
            "`export HEADAS=/path/to/heasoft/<platform>; source $HEADAS/headas-init.sh` and set CALDB "
            "(`source $CALDB/software/tools/caldbinit.sh`)"
        ),
        headas=True,
        version_command=("fversion",),
        version_env=("HEADAS", "CALDB"),
        tools=frozenset(
            "pcaprepobsid maketime pcaextlc2 pcaextspect2 nicerl2 nicerl3-lc nicerl3-spect xrtpipeline "
            "xrtproducts nupipeline nuproducts barycorr ftselect ftmerge ftcopy fparkey fversion grppha "
            "lcmath xselect saextrct".split()
        ),
    ),
    "HXMTDAS": Package(
        name="HXMTDAS",
        description="Insight-HXMT Data Analysis Software (HXMTDAS, runs on HEASoft)",
        setup=(
            "install HXMTDAS (http://hxmten.ihep.ac.cn/software.jhtml) on top of HEASoft, then before "
            "starting Python: `export HEADAS=/path/to/hxmtsoft/install/<platform>; source "
            "$HEADAS/headas-init.sh`, and set CALDB, CALDBCONFIG, CALDBALIAS to the HXMT CALDB and REFPATH "
            "to the background-model reference files (needed by lebkgmap/mebkgmap/hebkgmap)"
        ),
        headas=True,
        version_command=None,
        version_env=("HEADAS", "CALDB", "REFPATH"),
        tools=frozenset(
            "lepical lerecon legtigen legticorr legti lescreen lelcgen lebkgmap lespecgen lerspgen "
            "mepical megrade megtigen megticorr megti mescreen melcgen mebkgmap mespecgen merspgen "
            "hepical hegtigen hescreen helcgen hebkgmap hespecgen herspgen hxbary hpipeline".split()
        ),
    ),
}


def package_of(tool: str) -> Package | None:
    """The :class:`Package` a tool belongs to, or None for an unknown tool."""
    for pkg in PACKAGES.values():
        if tool in pkg.tools:
            return pkg
    return None


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

    def resolve(self, required: bool = True) -> str | None:
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
    outputs : FITS files the tool must make (checked to be complete FITS).
    text_outputs : non-FITS files the tool must make (logs, lists, summaries).
    env : extra environment variables (e.g. ``SAS_ODF``, ``SAS_CCF``).
    name : task id, unique within a batch (default ``<tool>-<hash>``); also
        the log file name.
    deps : names of tasks that must finish first (used by ``run_many``).
    workdir : working directory of the tool (default: directory of the first
        output, else the current directory).
    timeout : seconds before the process group is killed (None: no limit).
    rename : ``{made_by_tool: final_name}`` moves applied after a successful
        run (for tools that only accept an output prefix).
    tags : free metadata kept in records and status tables (``obsid``,
        ``instrument``, ``exposure``...).
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

    def __post_init__(self):
        if not self.tool or "/" in self.tool or " " in self.tool:
            raise ValueError(f"Task tool must be an executable name such as 'evselect', got {self.tool!r}")
        if self.name is None:
            self.name = f"{self.tool}-{self.param_hash()[:10]}"
        self.deps = tuple(self.deps)

    @property
    def package(self) -> Package | None:
        """The software package the tool belongs to (None if unknown)."""
        return package_of(self.tool)

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
    ``yes``/``no`` for booleans, space-joined lists, ``%.10g`` floats."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, (list, tuple)):
        return " ".join(format_value(v) for v in value)
    if isinstance(value, Glob):
        return value.resolve()
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def command_line(task: Task) -> list[str]:
    """``[tool, *args, key=value, ...]`` for a task (Globs resolved)."""
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
# checksums


_FULL_HASH_LIMIT = 64 * 2**20
_EDGE = 4 * 2**20


def fingerprint(path) -> str:
    """Checksum of a file or directory, cheap enough for large inputs.

    Files up to 64 MiB: SHA-256 of the content. Larger files: SHA-256 of the
    size, the first and last 4 MiB and the modification time. Directories:
    hash over the sorted (relative path, size, mtime) of their files (not
    recursing into hidden entries). A missing path gives ``"missing"``.
    """
    p = Path(path)
    if not p.exists():
        return "missing"
    h = hashlib.sha256()
    if p.is_dir():
        for sub in sorted(p.rglob("*")):
            rel = sub.relative_to(p)
            if any(part.startswith(".") for part in rel.parts) or not sub.is_file():
                continue
            st = sub.stat()
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return "dir:" + h.hexdigest()
    st = p.stat()
    with open(p, "rb") as fh:
        if st.st_size <= _FULL_HASH_LIMIT:
            for block in iter(lambda: fh.read(2**20), b""):
                h.update(block)
            return "sha256:" + h.hexdigest()
        h.update(fh.read(_EDGE))
        fh.seek(st.st_size - _EDGE)
        h.update(fh.read(_EDGE))
    h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return "quick:" + h.hexdigest()


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


def _environment(task: Task, pfiles_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({k: str(v) for k, v in task.env.items()})
    system = _system_pfiles(env)
    env["PFILES"] = f"{pfiles_dir};{system}" if system else f"{pfiles_dir};"
    pkg = task.package
    if pkg is None or pkg.headas:
        # HEASoft parameter interface: never prompt for a missing parameter
        # (https://heasarc.gsfc.nasa.gov/lheasoft/headas/pil/node4.html)
        env["HEADASNOQUERY"] = ""
        env["HEADASPROMPT"] = "/dev/null"
    return env


_VERSION_CACHE: dict[tuple, dict] = {}
_VERSION_LOCK = threading.Lock()


def package_versions(pkg: Package | None, env: Mapping[str, str]) -> dict:
    """Version information of a package for provenance records: the set-up
    environment variables (``SAS_DIR``, ``HEADAS``, ``CALDB``...) and the
    version printed by its version command (``sasversion``, ``fversion``).
    The command runs once per executable found on PATH (cached)."""
    if pkg is None:
        return {}
    info = {v: env[v] for v in pkg.version_env if env.get(v)}
    exe = shutil.which(pkg.version_command[0], path=env.get("PATH")) if pkg.version_command else None
    if exe is None:
        return info
    key = (pkg.name, os.path.realpath(exe))
    with _VERSION_LOCK:
        cached = _VERSION_CACHE.get(key)
    if cached is None:
        cached = {}
        try:
            out = subprocess.run([exe, *pkg.version_command[1:]], env=dict(env), capture_output=True, text=True,
                                 timeout=30, stdin=subprocess.DEVNULL)
            lines = [ln.strip() for ln in (out.stdout + out.stderr).splitlines() if re.search(r"\d+\.\d+", ln)]
            if lines:
                cached["version"] = lines[-1]
        except (OSError, subprocess.SubprocessError) as exc:
            cached["version_error"] = str(exc)
        with _VERSION_LOCK:
            _VERSION_CACHE[key] = cached
    return {**info, **cached}


# ---------------------------------------------------------------------------
# log parsing

_ERROR_RE = re.compile(r"(\*\*\s*[\w.-]+:\s*error\b|^\s*error\b|\berror\s*[:(]|\bERROR\b|Traceback|Exception:)",
                       re.IGNORECASE)
_WARN_RE = re.compile(r"(\*\*\s*[\w.-]+:\s*warning\b|\bwarning\s*[:(]|\bWARNING\b)", re.IGNORECASE)


def parse_log(text: str) -> tuple[list[str], list[str]]:
    """Error and warning lines of a tool log (SAS ``** task: error (...)``,
    HEASoft ``ERROR:``/``Error:``, Python tracebacks)."""
    errors, warnings_ = [], []
    for line in text.splitlines():
        s = line.rstrip()
        if not s or s.startswith("#xcube"):
            continue
        if _ERROR_RE.search(s):
            errors.append(s)
        elif _WARN_RE.search(s):
            warnings_.append(s)
    return errors, warnings_


def _tail(path: Path, n: int = 25) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(line for line in lines[-n:])


# ---------------------------------------------------------------------------
# output checks


def check_fits(path) -> None:
    """Raise ``OSError`` unless ``path`` is a complete FITS file: starts with
    ``SIMPLE =``, every header parses, and every HDU's data lies inside the
    file (catches truncated writes)."""
    from astropy.io import fits

    p = Path(path)
    size = p.stat().st_size
    if size == 0:
        raise OSError(f"{p}: empty file")
    with open(p, "rb") as fh:
        head = fh.read(80)
    if head[:2] == b"\x1f\x8b":
        return _check_gzip_fits(p)
    if not head.startswith(b"SIMPLE  ="):
        raise OSError(f"{p}: not a FITS file (starts with {head[:20]!r})")
    try:
        with warnings.catch_warnings():
            # astropy only warns (and drops the HDU) when a trailing HDU is cut short
            warnings.simplefilter("error", fits.verify.VerifyWarning)
            hdul = fits.open(p, memmap=False, lazy_load_hdus=False)
        with hdul:
            for i in range(len(hdul)):
                info = hdul.fileinfo(i)
                if info["datLoc"] + info["datSpan"] > size:
                    raise OSError(f"{p}: HDU {i} ({hdul[i].name}) is truncated: data ends at byte "
                                  f"{info['datLoc'] + info['datSpan']} but the file has {size}")
    except OSError:
        raise
    except Exception as exc:  # astropy raises assorted errors on corrupt headers
        raise OSError(f"{p}: corrupt FITS file ({type(exc).__name__}: {exc})") from exc


def _check_gzip_fits(p: Path) -> None:
    import gzip

    from astropy.io import fits

    try:
        with gzip.open(p, "rb") as fh:
            if not fh.read(80).startswith(b"SIMPLE  ="):
                raise OSError(f"{p}: gzip file does not hold FITS")
        with fits.open(p) as hdul:
            for hdu in hdul:
                _ = hdu.header
    except (OSError, EOFError, ValueError) as exc:
        raise OSError(f"{p}: corrupt compressed FITS file ({exc})") from exc


# ---------------------------------------------------------------------------
# running


def _resolve(values: Sequence[Any], required: bool = True) -> list[str | None]:
    return [v.resolve(required) if isinstance(v, Glob) else os.fspath(v) for v in values]


def _default_workdir(task: Task, workdir) -> Path:
    if workdir is not None:
        return Path(workdir)
    if task.workdir is not None:
        return Path(task.workdir)
    for o in list(task.outputs) + list(task.text_outputs):
        if not isinstance(o, Glob):
            return Path(o).parent
    return Path.cwd()


def _outputs_all(task: Task, required: bool) -> list[str | None]:
    return _resolve(task.outputs, required) + _resolve(task.text_outputs, required)


def up_to_date(task: Task, resolved_hash: str, inputs_fp: dict) -> Path | None:
    """The provenance record path if the task's outputs exist and were made by
    the same parameters from the same inputs (and are unchanged since); else None."""
    try:
        outs = _outputs_all(task, required=False)
    except (ValueError, FileNotFoundError):
        return None
    if not outs or any(o is None or not Path(o).exists() for o in outs):
        return None
    rec_path = record_path(outs[0])
    rec = read_record(rec_path)
    if rec is None or rec.get("param_hash") != resolved_hash:
        return None
    if rec.get("inputs", {}) != inputs_fp:
        return None
    made = rec.get("outputs", {})
    for o in outs:
        if made.get(str(Path(o).resolve())) != fingerprint(o):
            return None
    return rec_path


def run(task: Task, workdir=None, *, overwrite: bool = False, timeout: float | None = None,
        log_dir=None) -> TaskResult:
    """Run ``task`` and return a :class:`TaskResult` (eager; blocks until the
    tool exits).

    ``workdir`` is the tool's working directory (default: ``task.workdir``,
    else the directory of the first output); logs go to ``log_dir`` (default
    ``<workdir>/logs``). ``timeout`` [s] overrides ``task.timeout``. When the
    outputs are up to date (same parameter hash, same input checksums,
    unchanged outputs) the tool is not called and the result has
    ``state="skipped"``; ``overwrite=True`` always runs.

    Raises :class:`ToolNotFoundError`, :class:`ToolTimeout`,
    :class:`ToolError` (non-zero exit) or :class:`OutputError`.
    """
    wd = _default_workdir(task, workdir)
    wd.mkdir(parents=True, exist_ok=True)
    timeout = timeout if timeout is not None else task.timeout

    # resolve run-time patterns, then hash what will actually run
    params = {k: (v.resolve() if isinstance(v, Glob) else v) for k, v in task.params.items()}
    args = [a.resolve() if isinstance(a, Glob) else a for a in task.args]
    inputs = _resolve(task.inputs)
    resolved_task = Task(task.tool, params=params, args=args, inputs=inputs, outputs=task.outputs,
                         text_outputs=task.text_outputs, env=task.env, name=task.name, rename=task.rename)
    phash = resolved_task.param_hash()
    cmd = command_line(resolved_task)
    inputs_fp = {str(Path(i).resolve()): fingerprint(i) for i in inputs}
    missing = [i for i, fp in inputs_fp.items() if fp == "missing"]
    if missing:
        raise ToolError(f"{task.name}: input file(s) missing: {missing}; run the step that makes them first",
                        task=task.name, tool=task.tool)

    if not overwrite:
        rec_path = up_to_date(task, phash, inputs_fp)
        if rec_path is not None:
            log.info("%s: up to date (%s), not running %s", task.name, rec_path, task.tool)
            outs = [Path(o) for o in _outputs_all(task, required=True)]
            return TaskResult(task=task.name, tool=task.tool, state="skipped", command=cmd, returncode=None,
                              duration=0.0, outputs=outs, log=None, param_hash=phash, record=rec_path,
                              tags=dict(task.tags))

    exe = shutil.which(task.tool, path=dict(os.environ, **task.env).get("PATH"))
    if exe is None:
        raise _not_found(task)

    log_dir = Path(log_dir) if log_dir is not None else wd / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{task.name}.log"
    pfiles = wd / ".pfiles" / f"{task.name}-{uuid.uuid4().hex[:8]}"
    pfiles.mkdir(parents=True)
    env = _environment(task, pfiles)
    versions = package_versions(task.package, env)
    # outputs are remade: remove stale ones (and their records) so a failed run
    # can never leave old files that look current
    for o in _outputs_all(task, required=False) + [os.fspath(v) for v in task.rename.values()]:
        if o is not None and Path(o).exists():
            Path(o).unlink()
            record_path(o).unlink(missing_ok=True)

    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    with open(log_path, "w") as fh:
        fh.write(f"#xcube task {task.name} started {started.isoformat()}\n")
        fh.write(f"#xcube cwd {wd}\n#xcube PFILES={env['PFILES']}\n")
        for k in sorted(task.env):
            fh.write(f"#xcube {k}={task.env[k]}\n")
        fh.write(f"#xcube command: {shlex.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen([exe] + cmd[1:], cwd=wd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            duration = time.monotonic() - t0
            fh.write(f"\n#xcube killed after {duration:.1f} s (timeout {timeout} s)\n")
            fh.flush()
            raise ToolTimeout(f"{task.name}: {task.tool} exceeded the timeout of {timeout} s and was killed "
                              f"(process group {proc.pid}); raise timeout= or check the inputs",
                              task=task.name, tool=task.tool, log=log_path, log_tail=_tail(log_path))
        except BaseException:
            _kill_group(proc)
            raise
        duration = time.monotonic() - t0
        fh.write(f"\n#xcube exit code {rc} after {duration:.2f} s\n")
    text = log_path.read_text(errors="replace")
    errors, warnings_ = parse_log(text)
    if rc != 0:
        raise ToolError(f"{task.name}: {task.tool} failed with exit code {rc}; see {log_path}",
                        task=task.name, tool=task.tool, returncode=rc, log=log_path, log_tail=_tail(log_path),
                        errors=errors)
    for src, dst in task.rename.items():
        src, dst = Path(src), Path(dst)
        if not src.exists():
            raise OutputError(f"{task.name}: {task.tool} did not make {src} (expected before renaming to "
                              f"{dst.name}); see {log_path}", task=task.name, tool=task.tool, returncode=rc,
                              log=log_path, log_tail=_tail(log_path), errors=errors)
        os.replace(src, dst)
    try:
        outs = [Path(o) for o in _resolve(task.outputs)]
        text_outs = [Path(o) for o in _resolve(task.text_outputs)]
    except (FileNotFoundError, ValueError) as exc:
        raise OutputError(f"{task.name}: {exc}", task=task.name, tool=task.tool, returncode=rc, log=log_path,
                          log_tail=_tail(log_path), errors=errors) from exc
    for o in outs + text_outs:
        if not o.exists():
            raise OutputError(f"{task.name}: {task.tool} exited 0 but did not make {o}; see {log_path}",
                              task=task.name, tool=task.tool, returncode=rc, log=log_path,
                              log_tail=_tail(log_path), errors=errors)
    for o in outs:
        try:
            check_fits(o)
        except OSError as exc:
            raise OutputError(f"{task.name}: output is not a valid FITS file: {exc}", task=task.name,
                              tool=task.tool, returncode=rc, log=log_path, log_tail=_tail(log_path),
                              errors=errors) from exc
    for o in text_outs:
        if o.stat().st_size == 0:
            raise OutputError(f"{task.name}: output {o} is empty", task=task.name, tool=task.tool,
                              returncode=rc, log=log_path, log_tail=_tail(log_path), errors=errors)
    shutil.rmtree(pfiles, ignore_errors=True)

    all_outs = outs + text_outs
    record = {
        "task": task.name,
        "tool": task.tool,
        "package": task.package.name if task.package else None,
        "command": cmd,
        "params": {k: _plain(v) for k, v in params.items() if v is not None},
        "args": [_plain(a) for a in args],
        "env": {k: str(v) for k, v in task.env.items()},
        "param_hash": phash,
        "inputs": inputs_fp,
        "outputs": {str(o.resolve()): fingerprint(o) for o in all_outs},
        "versions": {"xcube": __version__, **versions},
        "started": started.isoformat(),
        "duration": duration,
        "returncode": rc,
        "log": str(log_path),
        "warnings": warnings_[:50],
        "tags": {k: _plain(v) for k, v in task.tags.items()},
    }
    rec_path = write_record(all_outs[0], record) if all_outs else None
    log.info("%s: %s done in %.2f s", task.name, task.tool, duration)
    return TaskResult(task=task.name, tool=task.tool, state="done", command=cmd, returncode=rc,
                      duration=duration, outputs=all_outs, log=log_path, errors=errors, warnings=warnings_,
                      param_hash=phash, record=rec_path, tags=dict(task.tags))


def _kill_group(proc: subprocess.Popen, grace: float = 2.0) -> None:
    """SIGTERM the process group, then SIGKILL after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            if sig == signal.SIGTERM:
                # the leader is gone; make sure no child survives in the group
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return
        except subprocess.TimeoutExpired:
            continue


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
