"""Where one tool run writes, so that a failed run loses nothing.

An output whose path appears on the command line (``outfile=result.fits``,
``table=ev.fits:EVENTS``) is replaced there by a temporary name beside the
final one, ``.<name>.tmp-<hex><suffixes>`` (so in the work directory for the
usual relative outputs); when that output is also an input (a tool working
in place) the file is first copied to the temporary name. An output the tool
names itself (a fixed name in its working directory, a pattern) is moved
aside to ``.<name>.keep-<hex>`` before the run (copied, if the tool also
reads it); for a pattern, every file matching it is moved aside, so what
matches it after the run is what this run made.

After the run, :meth:`Staging.commit` checks every output where the tool
wrote it (exists; FITS outputs complete; text outputs not empty) and only
then moves the temporary files onto their final names and drops the kept
copies (the files that matched an output pattern before are replaced by the
one this run made). :meth:`Staging.abort` (any failure: non-zero exit,
timeout, bad output, interruption) removes what the run wrote and puts the
kept files back, so an in-place tool keeps its input and earlier good
products survive a failed re-run.

A driver killed with SIGKILL runs neither. :meth:`Staging.begin` therefore
hands its plan (temporary names, the files to move aside and where) to the
run's journal before it moves anything (:mod:`xcube.tools.journal`), and the
next run in the work directory applies :func:`recover` to the plan of a dead
run: what that run wrote goes, and each kept file is put back, or dropped
when its final name holds a product its provenance record describes (made by
a run that finished since).
"""
from __future__ import annotations

import glob
import logging
import os
import shutil
import uuid
from pathlib import Path

__all__ = ["Staging", "temporary_output", "substitute", "recover"]

log = logging.getLogger("xcube.tools")


def temporary_output(final: Path, kind: str = "tmp") -> Path:
    """A hidden sibling of ``final`` keeping its suffixes (``.x.fits.tmp-ab12cd34.fits``),
    so tools that pick a format from the extension behave the same. Eager (a
    name only; nothing is created)."""
    return final.with_name(f".{final.name}.{kind}-{uuid.uuid4().hex[:8]}{''.join(final.suffixes)}")


def _as_path(text: str, workdir: Path) -> Path:
    return Path(os.path.normpath(os.path.join(os.fspath(workdir), text)))


def substitute(value, workdir: Path, temp: dict):
    """``value`` with a path of ``temp`` (final -> temporary) replaced.
    Matches a whole value or a path followed by a FITS extension
    (``file.fits:EVENTS``, ``file.fits[1]``); relative values are taken in
    ``workdir``. Other values (numbers, lists, expressions) are returned as
    they are. Eager (paths only)."""
    if not isinstance(value, (str, os.PathLike)) or not temp:
        return value
    text = os.fspath(value)
    if not text or text.startswith(("!", "@")):
        return value
    hit = temp.get(_as_path(text, workdir))
    if hit is not None:
        return str(hit)
    for sep in (":", "["):
        head, found, rest = text.partition(sep)
        if found and head:
            hit = temp.get(_as_path(head, workdir))
            if hit is not None:
                return f"{hit}{sep}{rest}"
    return value


class Staging:
    """Temporary names and kept copies for one run (see module doc).

    ``outputs``/``text_outputs``: final paths (``Path``) or resolved patterns
    (objects with ``resolve(required)``); ``inplace``: resolved paths (str) that
    are inputs too; ``rename``: ``{made_by_tool: final}``; ``values``: the
    parameter values and positional arguments (to find outputs named there).
    """

    def __init__(self, outputs, text_outputs, inplace, rename, params, args, workdir: Path):
        self.outputs, self.text_outputs = list(outputs), list(text_outputs)
        self.inplace, self.rename, self.workdir = set(inplace), dict(rename), workdir
        self.params, self.args = params, args
        self.temp: dict[Path, Path] = {}
        self.kept: dict[Path, Path] = {}
        self.patterns = [o for o in self.outputs + self.text_outputs if not isinstance(o, Path)]

    def _finals(self) -> list[Path]:
        return [o for o in self.outputs + self.text_outputs if isinstance(o, Path)]

    def _named(self, final: Path) -> bool:
        probe = {final: final}
        return any(substitute(v, self.workdir, probe) is not v for v in list(self.params.values()) + list(self.args))

    def _keep(self, path: Path, kept: Path) -> None:
        if str(path.resolve()) in self.inplace:
            part = _partial(kept)  # the copy appears under its name only when complete
            try:
                shutil.copy2(path, part)
                os.replace(part, kept)
            except BaseException:
                part.unlink(missing_ok=True)
                raise
        else:
            os.replace(path, kept)
        self.kept[path] = kept

    def begin(self, note=None) -> tuple[dict, list]:
        """Prepare the files; returns the parameters and positional arguments
        to run with (outputs named there replaced by temporary names).
        ``note(plan)`` is called with the JSON-able plan (see :func:`recover`)
        before any file is moved or copied."""
        planned: dict[Path, Path] = {}
        for final in self._finals():
            final.parent.mkdir(parents=True, exist_ok=True)
            if self._named(final):
                self.temp[final] = temporary_output(final)
            elif final.exists():
                planned[final] = temporary_output(final, "keep")
        for pattern in self.patterns:
            # every earlier match goes aside (not only a single one): after the run the files matching
            # the pattern are this run's, and a failed run deletes those and puts these back
            for hit in _all_hits(pattern):
                path = Path(hit)
                if path not in planned and path not in self.temp and path.is_file():
                    planned[path] = temporary_output(path, "keep")
        if note is not None:
            note({"temp": [[str(f), str(t)] for f, t in self.temp.items()],
                  "kept": [[str(f), str(k)] for f, k in planned.items()],
                  "finals": [str(f) for f in self._finals()], "patterns": [p.pattern for p in self.patterns],
                  "rename": [str(src) for src in self.rename]})
        for final, tmp in self.temp.items():
            if str(final.resolve()) in self.inplace and final.exists():
                shutil.copy2(final, tmp)
        for path, kept in planned.items():
            self._keep(path, kept)
        for made in self.rename:
            Path(made).unlink(missing_ok=True)  # a leftover of an earlier run is not this run's product
        params = {k: substitute(v, self.workdir, self.temp) for k, v in self.params.items()}
        args = [substitute(a, self.workdir, self.temp) for a in self.args]
        return params, args

    def where(self, final: Path) -> Path:
        """Where the tool wrote ``final`` in this run (its temporary name, or itself)."""
        return self.temp.get(final, final)

    def commit(self, check_fits, fail) -> list[Path]:
        """Apply ``rename``, check every output at the place the tool wrote it
        (``check_fits(path)`` raises ``OSError`` on a bad FITS file; ``fail(msg)``
        returns the exception to raise), then move temporary files into place
        and drop the kept copies. Returns the final paths (FITS outputs, then text)."""
        for src, dst in self.rename.items():
            src, dst = Path(src), Path(dst)
            if not src.exists():
                raise fail(f"did not make {src} (expected before renaming to {dst.name})")
            os.replace(src, self.where(dst))
        finals = []
        for group, is_fits in ((self.outputs, True), (self.text_outputs, False)):
            for o in group:
                final = o if isinstance(o, Path) else _pattern_hit(o, fail)
                here = self.where(final)
                if not here.exists():
                    raise fail(f"exited 0 but did not make {final}")
                if is_fits:
                    try:
                        check_fits(here)
                    except OSError as exc:
                        raise fail(f"output {final} is not a valid FITS file: {exc}") from exc
                elif here.stat().st_size == 0:
                    raise fail(f"output {final} is empty")
                finals.append(final)
        for final, tmp in self.temp.items():
            os.replace(tmp, final)
        for kept in self.kept.values():
            kept.unlink(missing_ok=True)
        self.temp, self.kept = {}, {}
        return finals

    def abort(self) -> None:
        """Remove what the run wrote and restore the kept files (never raises).
        Files matching an output pattern are this run's (every earlier match
        was moved aside by :meth:`begin`), so only they are deleted."""
        made = list(self.temp.values()) + [f for f in self._finals() if f not in self.temp]
        made += [Path(src) for src in self.rename]
        for p in self.patterns:
            try:
                made += [Path(h) for h in _all_hits(p)]
            except OSError as exc:  # pragma: no cover - report, do not mask the original error
                log.warning("could not list the files of %s of a failed run: %s", p, exc)
        kept_copies = set(self.kept.values())
        for f in made:  # one at a time: a file that cannot go must not stop the restore
            try:
                if f not in kept_copies and (f.is_file() or f.is_symlink()):
                    f.unlink()
            except OSError as exc:  # pragma: no cover - report, do not mask the original error
                log.warning("could not remove %s of a failed run: %s", f, exc)
        for final, kept in self.kept.items():
            try:
                if kept.exists():
                    os.replace(kept, final)
            except OSError as exc:  # pragma: no cover - report, do not mask the original error
                log.warning("could not restore %s after a failed run (kept as %s): %s", final, kept, exc)
        self.temp, self.kept = {}, {}


def _partial(kept: Path) -> Path:
    return kept.with_name(kept.name + ".part")


def recover(plan: dict, recorded) -> list[str]:
    """Undo what a run killed with its driver left of ``plan`` (the dict
    :meth:`Staging.begin` notes: ``temp`` and ``kept`` pairs ``[final,
    other]``, ``finals``, ``patterns``, ``rename`` sources, as strings).
    Removes its temporary files and partial copies; removes what its tool
    wrote under a final name, a rename source or a pattern's name unless
    ``recorded(path)`` (the file is a product its provenance record describes,
    made by a run that finished since); puts each kept file back, or drops it
    when its final name holds a recorded product. Returns one line per file
    changed; a file that cannot be handled is logged and left. Eager: deletes
    and renames files here."""
    done: list[str] = []
    kept = {Path(f): Path(k) for f, k in plan.get("kept", [])}

    def remove(path: Path, why: str) -> None:
        try:
            if path.is_file() or path.is_symlink():
                path.unlink()
                done.append(f"removed {path} ({why})")
        except OSError as exc:
            log.warning("could not remove %s of a run whose driver died: %s", path, exc)

    for _, tmp in plan.get("temp", []):
        remove(Path(tmp), "temporary output")
    for k in kept.values():
        remove(_partial(k), "partial copy")
    made = [Path(f) for f in plan.get("finals", []) if Path(f) not in kept]
    made += [Path(src) for src in plan.get("rename", [])]
    for pattern in plan.get("patterns", []):
        made += [Path(h) for h in sorted(glob.glob(pattern)) if Path(h) not in kept]
    temps = {Path(f) for f, _ in plan.get("temp", [])}
    for f in dict.fromkeys(made):
        if f not in temps and f.exists() and not recorded(f):
            remove(f, "written by the tool, not checked")
    for final, k in kept.items():
        try:
            if not k.exists():
                continue  # not moved yet, or already put back
            if final.exists() and recorded(final):
                k.unlink()
                done.append(f"dropped {k}: {final} holds a recorded product")
            else:
                os.replace(k, final)
                done.append(f"restored {final} from {k.name}")
        except OSError as exc:
            log.warning("could not restore %s (kept as %s) of a run whose driver died: %s", final, k, exc)
    return done


def _pattern_hit(pattern, fail) -> Path:
    try:
        return Path(pattern.resolve(required=True))
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from exc


def _all_hits(pattern) -> list[str]:
    return sorted(glob.glob(pattern.pattern))
