"""Which event files make up each observation of a survey.

A survey takes its observations as a text file of observation ids resolved
under an archive root (``ROOT/<obsid>/`` holding that observation's event
files, e.g. XMM's ``P<obsid><inst>...EVLI...FTZ``), as a list of event files,
or as a directory. Files are grouped by observation: the XMM file name
(``P`` + 10-digit obsid), else the OBS_ID header keyword, else the file stem.

An observation id names the output directory of its runs, so every id, from
whatever source (a header, a list file, a mapping), is made a safe path
component with :func:`xcube.io.paths.safe_component`: characters outside
``[A-Za-z0-9._+-]`` become ``_`` and leading dots are dropped, so that
``OBS_ID = '../../escape'`` becomes ``_.._escape``, a directory inside the
survey's output (with a warning naming the file). An id with no letter,
digit, ``+`` or ``-`` (``観測``) is named by the hex of its UTF-8 bytes
(``obs_e8a6b3e6b8ac``; ``file_...`` for a file name) instead of stopping the
survey.
"""
from __future__ import annotations

import json
import logging
import os
import re
import stat
import time
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

from ..io.events import EVENT_SUFFIXES
from ..io.paths import safe_component, walk_files

__all__ = ["resolve_observations", "event_files_in", "observation_id", "read_obslist", "safe_obsid", "file_identities",
           "changed_inputs"]

log = logging.getLogger("xcube.survey")

_XMM_NAME = re.compile(r"^P(\d{10})(?:PN|M1|M2|R1|R2|OM)", re.IGNORECASE)
# names of event lists (XMM PPS "EVLI", OGIP ".evt"); other FITS products in an
# archive directory (images, source lists, light curves) are not event files
_EVENT_NAME = re.compile(r"(EVLI|EVL\d|EVENTS?|_evt|\.evt|clean_evts|_cl\.)", re.IGNORECASE)


def _has_event_suffix(p: Path) -> bool:
    n = p.name.lower()
    return any(n.endswith(s) for s in EVENT_SUFFIXES)


_COMPRESSED = (".gz", ".ftz", ".fz", ".z", ".bz2")
_PLAIN = (".fits", ".fit", ".fts", ".evt")


def copy_stem(path) -> str:
    """A file name without its compression and FITS suffixes (lower case):
    ``P..EVLI0000.FTZ``, ``P..EVLI0000.FIT`` and ``x.evt.gz``/``x.evt`` give
    one stem each pair, the copies of one event list."""
    n = Path(path).name.lower()
    if n.endswith(".ftz"):
        return n[:-4]
    for s in _COMPRESSED:
        if n.endswith(s):
            n = n[: -len(s)]
            break
    for s in _PLAIN:
        if n.endswith(s):
            return n[: -len(s)]
    return n


def _identity(path: Path) -> tuple:
    """(INSTRUME, EXP_ID, TSTART) of an event file's header (None where unreadable)."""
    try:
        from astropy.io import fits

        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            for hdu in hdul[1:2] or hdul[:1]:
                h = hdu.header
                return (h.get("INSTRUME"), h.get("EXP_ID", h.get("EXPIDSTR")), h.get("TSTART"))
    except Exception as exc:  # noqa: BLE001 - unreadable: kept, to fail in the survey with its reason
        log.debug("%s: header not readable while looking for copies (%s)", path, exc)
    return (None, None, None, str(path))


def _drop_copies(files: list[Path], where) -> list[Path]:
    """One file per event list of an observation: files with the same name
    stem (compression suffixes ignored, :func:`copy_stem`) and the same
    instrument, exposure and TSTART in their headers are copies; the one
    kept is the least deep below ``where``, then the uncompressed one, then
    the first by path. The others are logged as a warning."""
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for f in files:
        by_stem[copy_stem(f)].append(f)
    kept = []
    for same in by_stem.values():
        if len(same) == 1:
            kept += same
            continue
        by_id: dict[tuple, list[Path]] = defaultdict(list)
        for f in same:
            by_id[_identity(f)].append(f)
        for copies in by_id.values():
            copies.sort(key=lambda f: (len(f.parts), f.name.lower().endswith(_COMPRESSED), str(f)))
            kept.append(copies[0])
            if len(copies) > 1:
                log.warning("%s: %d copies of one event list; taking %s, not %s", where, len(copies), copies[0],
                            ", ".join(str(f) for f in copies[1:]))
    return sorted(kept)


def _scan(directory) -> tuple[list[Path], list[Path]]:
    """:func:`event_files_in` and the unreadable directories met on the way."""
    from ..io.product_info import PRODUCT_KINDS, product_kind

    d = Path(directory)
    found, unreadable = walk_files(d)
    for u in unreadable:
        log.warning("%s: directory not readable; its event files are not taken", u)
    files = [f for f in found if _has_event_suffix(f)]
    taken = []
    for fs in _group(files).values():
        named = [f for f in fs if _EVENT_NAME.search(f.name)]
        taken += _drop_copies(named or [f for f in fs if _kind(f, product_kind) not in PRODUCT_KINDS], d)
    left = sorted(set(files) - set(taken))
    if left:
        log.info("%s: %d file(s) not taken as event lists: %s", d, len(left), ", ".join(f.name for f in left[:10]))
    return sorted(taken), unreadable


def event_files_in(directory) -> list[Path]:
    """Event files under ``directory`` (recursive, sorted), observation by
    observation: the files whose names mark them as event lists (``EVLI``,
    ``.evt``, ``events``...) where an observation has any (so an archive's
    light curves, images and re-made copies stay out), else its FITS-like
    files that are not recognisably other products (light curves, spectra,
    power spectra, images, GTI files: headers are read). Symbolic links to
    directories are followed (each directory once). Copies of one event
    list (the same name up to a compression suffix, e.g. ``.FTZ`` and its
    decompressed ``.FIT``, or copies in two subdirectories, with the same
    instrument, exposure and TSTART) count once: the least deep, then the
    uncompressed copy is taken and the others named in a warning. Files
    left out are logged; unreadable directories are logged as warnings."""
    return _scan(directory)[0]


def _kind(path, product_kind) -> str:
    try:
        return product_kind(path)
    except Exception:  # noqa: BLE001 - unreadable: taken, to fail in the survey with its reason
        return "unknown"


#: names of a survey's own outputs in ``out/``; an observation id equal to one gets ``_obs`` appended
RESERVED_IDS = ("catalogue", "status.parquet", "survey.lock")


def safe_obsid(value, source="", prefix="obs") -> str:
    """``value`` as an observation id that is a safe directory name (see the
    module doc); warns, naming ``source``, when it had to be changed. An id
    with no letter, digit, ``+`` or ``-`` (``観測``, which would be ``__``)
    becomes ``prefix``, ``_`` and the hex of its UTF-8 bytes
    (``obs_e8a6b3e6b8ac``), so that such ids stay distinct and the survey
    goes on. An id that is the name of one of the survey's outputs
    (:data:`RESERVED_IDS`, any case) gets ``_obs`` appended. Raises
    ``ValueError`` for a value with nothing usable (empty, only dots)."""
    what = f"observation id{f' of {source}' if source else ''}"
    try:
        safe = safe_component(value, what=what)
    except ValueError:
        if not str(value).strip().strip("."):
            raise
        safe = safe_component(f"{prefix}_{str(value).strip().encode().hex()}", what=what)
    if safe.lower() in RESERVED_IDS:
        safe = f"{safe}_obs"
    if safe != str(value):
        log.warning("observation id %r%s is not a safe directory name (or is the name of a survey output); "
                    "using %r", value, f" ({source})" if source else "", safe)
    return safe


def observation_id(path) -> str:
    """Observation id of an event file: from an XMM archive name, else the
    OBS_ID keyword (primary or first extension), else the file stem; made a
    safe directory name (:func:`safe_obsid`). Never raises: an unreadable
    file becomes its own observation, to fail there with a reason."""
    p = Path(path)
    m = _XMM_NAME.match(p.name)
    if m:
        return m.group(1)
    try:
        st = p.stat()
    except OSError:
        return _header_obsid(str(p), None, None)
    return _header_obsid(str(p), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=65536)
def _header_obsid(path: str, mtime_ns, size) -> str:
    """:func:`observation_id` from the header or the name, once per file version (choosing a
    directory's event files and grouping them both ask)."""
    p = Path(path)
    try:
        from astropy.io import fits

        with fits.open(p, memmap=False, lazy_load_hdus=True) as hdul:
            for hdu in hdul[:2]:
                obs = hdu.header.get("OBS_ID")
                if obs not in (None, "") and str(obs).strip().strip("."):
                    return safe_obsid(str(obs).strip(), f"OBS_ID of {p}")
    except Exception as exc:  # noqa: BLE001 - unreadable: grouped alone, fails later with its reason
        log.debug("%s: header not readable while grouping (%s)", p, exc)
    stem = p.name
    for s in sorted(EVENT_SUFFIXES, key=len, reverse=True):
        if stem.lower().endswith(s):
            stem = stem[: -len(s)]
            break
    return safe_obsid(stem if stem.strip("._") else f"file_{stem.encode().hex()}", f"file {p}", prefix="file")


def _unique(files) -> list[Path]:
    """``files`` without the repeats of one file (the same resolved path, e.g.
    a file given and found again in its directory, or reached by a link)."""
    seen: set[str] = set()
    out = []
    for f in files:
        real = os.path.realpath(f)
        if real in seen:
            log.info("%s: given twice (the same file as another path); taken once", f)
            continue
        seen.add(real)
        out.append(Path(f))
    return out


def _group(files) -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = defaultdict(list)
    for f in _unique(files):
        groups[observation_id(f)].append(Path(f))
    return {k: sorted(v) for k, v in sorted(groups.items())}


def read_obslist(path, archive=None) -> list[str]:
    """Observation ids (or paths) of a list file: UTF-8 text (a leading
    byte-order mark, as Windows editors write, is dropped), whitespace
    separated, ``#`` comments; a line that is an existing path (``dir with
    spaces/m1 raw.FTZ``), or with ``archive`` an entry ``archive/<line>``
    (``obs space``, whatever the current directory), is taken whole. Reads
    the file eagerly; the ids or paths as strings, in file order.
    ``ValueError`` naming the file when it is not UTF-8."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc}); save the observation list as UTF-8") from None
    items = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and len(line.split()) > 1 and (Path(line).exists() or _archive_entry(archive, line)):
            items.append(line)
        elif line:
            items.extend(line.split())
    return items


def _archive_entry(archive, item: str) -> Path | None:
    """``archive/<item>`` when it exists (a dangling link too) and ``item`` is a relative path, else None."""
    if archive is None or Path(item).is_absolute():
        return None
    d = Path(archive) / item
    return d if os.path.lexists(d) else None


def _is_obslist(p: Path) -> bool:
    return p.is_file() and not _has_event_suffix(p)


def resolve_observations(observations, archive=None) -> dict[str, list[Path]]:
    """Map observation id -> its event files (sorted), from any of:

    - a text file of observation ids (one per line or whitespace separated,
      ``#`` comments), each resolved as the directory ``archive/<obsid>/``
      (a missing or empty one is kept, as ``[archive/<obsid>]``, so that the
      survey records that observation as failed and goes on);
      with ``archive``, ``archive/<item>`` is taken whenever it exists (also
      when a same-named file or directory exists in the current directory);
      other lines that are existing paths (spaces included) are taken as
      files or directories;
    - a list of event file paths (or of obsids, with ``archive``);
    - a directory: every event file below it, grouped by observation; an
      unreadable directory below it becomes an observation of its own that
      fails with the reason;
    - a mapping obsid -> files (keys made safe ids; two keys giving the same
      id are a ``ValueError``).

    One file reached twice (the same resolved path) is taken once. Only file
    names and, where needed, one header are read (eager, cheap). Raises
    FileNotFoundError naming the obsid or path that has no event files,
    ValueError for two list entries that give one observation id.
    """
    if isinstance(observations, dict):
        out: dict[str, list[Path]] = {}
        origin: dict[str, object] = {}
        for k, v in observations.items():
            key = safe_obsid(k, "the observations mapping")
            if key in origin:
                raise ValueError(f"observations mapping: keys {origin[key]!r} and {k!r} both give the observation "
                                 f"id {key!r} (a safe directory name); rename one of them")
            origin[key] = k
            out[key] = _unique(Path(f) for f in v)
        return out
    root = Path(archive) if archive is not None else None
    if root is not None and not root.is_dir():
        raise FileNotFoundError(
            f"archive root {root}: not a directory; pass --archive the folder holding <obsid>/ dirs"
        )
    if isinstance(observations, (str, Path)):
        p = Path(observations)
        if p.is_dir():
            return _directory(p)
        if _is_obslist(p):
            items = read_obslist(p, archive=root)
            if not items:
                raise ValueError(f"{p}: observation list is empty")
        elif p.exists():
            items = [str(p)]
        else:
            raise FileNotFoundError(f"{p}: no such observation list, event file or directory")
    else:
        items = [str(x) for x in observations]

    files: list[Path] = []
    by_obsid: dict[str, list[Path]] = {}
    origin = {}
    for item in items:
        p = Path(item)
        d = root / item if root is not None and not p.is_absolute() else None
        if d is not None and (_archive_entry(root, item) is not None or not p.exists()):
            # an obsid of the archive (ROOT/<item> first, also when ./<item> exists): a missing or empty
            # ROOT/<obsid>/ becomes an observation that fails (with the path in its message) instead of
            # stopping the survey
            key = safe_obsid(p.name, f"list {observations}")
            if key in origin and origin[key] != d:
                raise ValueError(f"{origin[key]} and {d} both give the observation id {key!r}; list each "
                                 "observation once")
            origin[key] = d
            by_obsid[key] = (event_files_in(d) if d.is_dir() else []) or [d]
        elif p.is_dir():
            files.extend(_required(event_files_in(p), p))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(
                f"{item}: neither an event file nor a directory; if it is an observation id, "
                "pass the archive root (--archive ROOT, holding ROOT/<obsid>/)"
            )
    grouped = _group(files)
    for k, v in by_obsid.items():
        grouped[k] = sorted(_unique(sorted(grouped.get(k, [])) + v))
    return dict(sorted(grouped.items()))


def _directory(p: Path) -> dict[str, list[Path]]:
    """Directory mode: the observations of the event files below ``p``; each
    unreadable directory below it is an observation of its own (its path
    below ``p`` as id, the directory as its only file), which the survey
    records as failed with the reason."""
    files, unreadable = _scan(p)
    if Path(p) in unreadable:
        raise PermissionError(f"{p}: directory not readable")
    grouped = _group(files)
    for d in unreadable:
        key = safe_obsid(d.relative_to(p).as_posix(), f"unreadable directory {d}")
        while key in grouped:
            key += "_unreadable"
        grouped[key] = [d]
    if not grouped:
        _required(files, p)
    return dict(sorted(grouped.items()))


def _required(files, where) -> list[Path]:
    if not files:
        raise FileNotFoundError(f"{where}: holds no event files ({', '.join(EVENT_SUFFIXES)})")
    return files


def file_identities(files) -> list[list]:
    """``[resolved path, size [bytes], modification time [ns]]`` of each of
    ``files``, in their order; size and time are None for a path that is
    not a regular file (the missing or empty ``ROOT/<obsid>`` of an
    observation that fails). What a run records as its ``inputs`` and a
    resumed survey compares (:func:`changed_inputs`). One ``stat`` per file;
    reads no data."""
    out = []
    for f in files:
        p = Path(f)
        try:
            r = p.resolve()
            st = r.stat()
        except (OSError, RuntimeError):  # (RuntimeError: a symbolic link loop)
            out.append([str(p.absolute()), None, None])
            continue
        out.append([str(r), int(st.st_size), int(st.st_mtime_ns)] if stat.S_ISREG(st.st_mode) else [str(r), None, None])
    return out


def _key(identity) -> tuple:
    path, size, mtime = identity
    return (Path(path).name, size, mtime)


def _when(mtime_ns) -> str:
    return "?" if mtime_ns is None else time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(mtime_ns / 1e9))


def _describe(before: list, now: list) -> str:
    """What differs between two lists of file identities, for a message."""
    if sorted(p for p, _, _ in before) == sorted(p for p, _, _ in now):
        old = {p: (size, mtime) for p, size, mtime in before}
        return "; ".join(f"{p}: size {old[p][0]} -> {size} bytes, modified {_when(old[p][1])} -> {_when(mtime)} UTC"
                         for p, size, mtime in now if old[p] != (size, mtime))
    return f"recorded {', '.join(p for p, _, _ in before)}; now {', '.join(p for p, _, _ in now)}"


def changed_inputs(recorded_inputs, recorded_files, current: list) -> str | None:
    """How the event files of an observation now (``current``, from
    :func:`file_identities`) differ from those a run of it was made from, or
    None when they are the same or that cannot be told.

    ``recorded_inputs`` is the run's ``inputs`` (the JSON text of its file
    identities) and ``recorded_files`` its ``files`` (JSON list of paths),
    for a run recorded before identities were (``recorded_inputs`` None).
    Files are the same when their names, sizes and modification times are,
    wherever they are now (an archive moved or copied with its times kept is
    the same; a file replaced in place, or another archive's file, is not);
    from paths alone, when they resolve to the same files, or else when they
    are files now with the same names, sizes and times, or else (paths that
    do not exist from here, e.g. relative to another working directory) when
    the names are the same. None also when a current file is not there: that
    observation's task fails with the reason, and its finished runs are kept.
    """
    if any(size is None for _, size, _ in current):
        return None
    try:
        if recorded_inputs is not None:
            before = [list(x) for x in json.loads(recorded_inputs)]
            if sorted(map(_key, before)) == sorted(map(_key, current)):
                return None
            return _describe(before, current)
        paths = [str(f) for f in json.loads(recorded_files)]
    except (TypeError, ValueError):  # a record without (readable) files: nothing to compare
        return None
    before = file_identities(paths)
    if sorted(p for p, _, _ in before) == sorted(p for p, _, _ in current):
        return None  # (a run recorded without identities: a file modified in place cannot be told)
    if all(size is not None for _, size, _ in before):
        return None if sorted(map(_key, before)) == sorted(map(_key, current)) else \
            f"recorded {', '.join(paths)}; now {', '.join(p for p, _, _ in current)}"
    if sorted(Path(p).name for p in paths) == sorted(Path(p).name for p, _, _ in current):
        return None
    return f"recorded {', '.join(paths)}; now {', '.join(p for p, _, _ in current)}"
