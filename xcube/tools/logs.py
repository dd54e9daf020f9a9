"""Tool logs read in bounded memory: error and warning lines, and the tail.

A tool log can be hundreds of megabytes (a chatty task, a loop printing the
same warning). Nothing here holds more than one block (1 MiB) of it, the
last lines asked for, and at most ``limit`` error and warning lines
(each cut to :data:`MAX_LINE` characters).
"""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["parse_log", "scan_log", "tail", "failure_lines", "MAX_LINE"]

BLOCK = 2**20
MAX_LINE = 2000

_ERROR_RE = re.compile(r"(\*\*\s*[\w.-]+:\s*error\b|^\s*error\b|\berror\s*[:(]|\bERROR\b|Traceback|Exception:"
                       r"|\bterminating with status\s+-?[1-9])", re.IGNORECASE)
# the lines by which the tools themselves say that they failed, per family (the error lines above are
# wider: they are reported; these make a run that exited with code 0 fail):
# - SAS tasks: "** <task>: error (<code>), <message>", the form of every SAS task's error message (a
#   chain also prints its constituents' errors so); warnings, "** <task>: warning (...)", do not match;
# - HEASoft (and HXMTDAS, built on it): a line starting "ERROR:" or "Error:", also after the task's
#   name ("<task>: ERROR: ..."), and the parameter interface's "Task <name> <version> terminating with
#   status <N>" (N != 0, negative too: nifpmsel prints -1), which e.g. uvotsource prints when it cannot
#   prompt, before exiting with code 0.
FAILURE_PATTERNS = {
    "SAS": re.compile(r"^\s*\*\*\s*[\w.-]+:\s*error\b"),
    "HEASoft": re.compile(r"^\s*(?:[\w.-]+:\s*)?(?:ERROR|Error)\s*:|\bterminating with status\s+-?[1-9]\d*\b"),
}
_WARN_RE = re.compile(r"(\*\*\s*[\w.-]+:\s*warning\b|\bwarning\s*[:(]|\bWARNING\b)", re.IGNORECASE)
# cheap pre-filters on a whole block: no line of it can match without one of these words
_HINTS = (b"error", b"warning", b"traceback", b"exception", b"terminating with status")
_ERROR_HINTS = (b"error", b"traceback", b"exception", b"terminating with status")


def _hinted(chunk: bytes, words) -> bool:
    low = chunk.lower()
    return any(w in low for w in words)


def _classify(line: str) -> str | None:
    s = line.rstrip()
    if not s or s.startswith("#xcube"):
        return None
    if _ERROR_RE.search(s):
        return "error"
    if _WARN_RE.search(s):
        return "warning"
    return None


def parse_log(text: str) -> tuple[list[str], list[str]]:
    """Error and warning lines of a tool log held in memory (SAS
    ``** task: error (...)``, HEASoft ``ERROR:``/``Error:``, Python
    tracebacks). Eager (text in memory)."""
    errors, warnings_ = [], []
    for line in text.splitlines():
        kind = _classify(line)
        if kind == "error":
            errors.append(line.rstrip())
        elif kind == "warning":
            warnings_.append(line.rstrip())
    return errors, warnings_


def failure_lines(errors, family: str | None = None) -> list[str]:
    """The lines among ``errors`` (as :func:`scan_log` found them) that say
    the tool failed, in its family's own form (:data:`FAILURE_PATTERNS`):
    ``"SAS"``, ``"HEASoft"`` (also HXMTDAS), or None (unknown tool: either
    form). Warnings never count. Eager (text only)."""
    pats = [FAILURE_PATTERNS[family]] if family in FAILURE_PATTERNS else list(FAILURE_PATTERNS.values())
    return [line for line in errors if any(p.search(line) for p in pats)]


def _lines_of(chunk: bytes):
    for raw in chunk.split(b"\n"):
        yield raw[:MAX_LINE].decode("utf-8", errors="replace")


def scan_log(path, limit: int = 200) -> tuple[list[str], list[str]]:
    """Error and warning lines of a log file (as :func:`parse_log`), read in
    1 MiB blocks: memory stays bounded whatever the file size. At most
    ``limit`` lines of each kind are kept (the first ones); lines longer
    than :data:`MAX_LINE` characters are cut. A missing file gives no lines.
    Eager: reads the whole file."""
    errors: list[str] = []
    warnings_: list[str] = []
    rest = b""
    try:
        fh = open(path, "rb")
    except OSError:
        return errors, warnings_
    with fh:
        while True:
            block = fh.read(BLOCK)
            data = rest + block
            if not block:
                chunk, rest = data, b""
            else:
                cut = data.rfind(b"\n")
                if cut < 0 and len(data) < BLOCK:
                    rest = data
                    continue
                chunk, rest = (data, b"") if cut < 0 else (data[:cut], data[cut + 1:])
            if chunk and _hinted(chunk, _HINTS if len(warnings_) < limit else _ERROR_HINTS):
                for line in _lines_of(chunk):
                    kind = _classify(line)
                    if kind == "error" and len(errors) < limit:
                        errors.append(line.rstrip())
                    elif kind == "warning" and len(warnings_) < limit:
                        warnings_.append(line.rstrip())
            if not block or (len(errors) >= limit and len(warnings_) >= limit):
                break
    return errors, warnings_


def tail(path, n: int = 25, max_bytes: int = 64 * 1024) -> str:
    """The last ``n`` lines of a file, reading at most its last ``max_bytes``
    bytes (lines cut to :data:`MAX_LINE` characters); "" when unreadable.
    Eager."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    lines = list(_lines_of(data.rstrip(b"\n")))
    if size > max_bytes and len(lines) > 1:
        lines = lines[1:]  # the first one is probably cut
    return "\n".join(lines[-n:])
