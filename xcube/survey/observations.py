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
survey's output (with a warning naming the file).
"""
from __future__ import annotations

import logging
import re
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

from ..io.events import EVENT_SUFFIXES
from ..io.paths import safe_component

__all__ = ["resolve_observations", "event_files_in", "observation_id", "read_obslist", "safe_obsid"]

log = logging.getLogger("xcube.survey")

_XMM_NAME = re.compile(r"^P(\d{10})(?:PN|M1|M2|R1|R2|OM)", re.IGNORECASE)
# names of event lists (XMM PPS "EVLI", OGIP ".evt"); other FITS products in an
# archive directory (images, source lists, light curves) are not event files
_EVENT_NAME = re.compile(r"(EVLI|EVL\d|EVENTS?|_evt|\.evt|clean_evts|_cl\.)", re.IGNORECASE)


def _has_event_suffix(p: Path) -> bool:
    n = p.name.lower()
    return any(n.endswith(s) for s in EVENT_SUFFIXES)


def event_files_in(directory) -> list[Path]:
    """Event files under ``directory`` (recursive, sorted), observation by
    observation: the files whose names mark them as event lists (``EVLI``,
    ``.evt``, ``events``...) where an observation has any (so an archive's
    light curves, images and re-made copies stay out), else its FITS-like
    files that are not recognisably other products (light curves, spectra,
    power spectra, images, GTI files: headers are read). Files left out are
    logged."""
    from ..io.product_info import PRODUCT_KINDS, product_kind

    d = Path(directory)
    files = sorted(f for f in d.rglob("*") if f.is_file() and _has_event_suffix(f) and not f.name.startswith("."))
    taken = []
    for fs in _group(files).values():
        named = [f for f in fs if _EVENT_NAME.search(f.name)]
        taken += named or [f for f in fs if _kind(f, product_kind) not in PRODUCT_KINDS]
    left = sorted(set(files) - set(taken))
    if left:
        log.info("%s: %d file(s) not taken as event lists: %s", d, len(left), ", ".join(f.name for f in left[:10]))
    return sorted(taken)


def _kind(path, product_kind) -> str:
    try:
        return product_kind(path)
    except Exception:  # noqa: BLE001 - unreadable: taken, to fail in the survey with its reason
        return "unknown"


def safe_obsid(value, source="") -> str:
    """``value`` as an observation id that is a safe directory name (see the
    module doc); warns, naming ``source``, when it had to be changed. Raises
    ``ValueError`` for a value with nothing usable (empty, only dots)."""
    safe = safe_component(value, what=f"observation id{f' of {source}' if source else ''}")
    if safe != str(value):
        log.warning("observation id %r%s is not a safe directory name; using %r", value,
                    f" ({source})" if source else "", safe)
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
    return safe_obsid(stem if stem.strip("._") else f"file_{stem.encode().hex()}", f"file {p}")


def _group(files) -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = defaultdict(list)
    for f in files:
        groups[observation_id(f)].append(Path(f))
    return {k: sorted(v) for k, v in sorted(groups.items())}


def read_obslist(path) -> list[str]:
    """Observation ids (or paths) of a list file: whitespace separated, ``#``
    comments; a line that is an existing path (``dir with spaces/m1 raw.FTZ``)
    is taken whole."""
    items = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and len(line.split()) > 1 and Path(line).exists():
            items.append(line)
        elif line:
            items.extend(line.split())
    return items


def _is_obslist(p: Path) -> bool:
    return p.is_file() and not _has_event_suffix(p)


def resolve_observations(observations, archive=None) -> dict[str, list[Path]]:
    """Map observation id -> its event files (sorted), from any of:

    - a text file of observation ids (one per line or whitespace separated,
      ``#`` comments), each resolved as the directory ``archive/<obsid>/``
      (a missing or empty one is kept, as ``[archive/<obsid>]``, so that the
      survey records that observation as failed and goes on);
      lines that are existing paths (spaces included) are taken as files or
      directories;
    - a list of event file paths (or of obsids, with ``archive``);
    - a directory: every event file below it, grouped by observation;
    - a mapping obsid -> files, returned as is.

    Only file names and, where needed, one header are read (eager, cheap).
    Raises FileNotFoundError naming the obsid or path that has no event files.
    """
    if isinstance(observations, dict):
        out: dict[str, list[Path]] = {}
        for k, v in observations.items():
            out.setdefault(safe_obsid(k, "the observations mapping"), []).extend(Path(f) for f in v)
        return out
    root = Path(archive) if archive is not None else None
    if root is not None and not root.is_dir():
        raise FileNotFoundError(
            f"archive root {root}: not a directory; pass --archive the folder holding <obsid>/ dirs"
        )
    if isinstance(observations, (str, Path)):
        p = Path(observations)
        if p.is_dir():
            return _group(_required(event_files_in(p), p))
        if _is_obslist(p):
            items = read_obslist(p)
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
    for item in items:
        p = Path(item)
        if root is not None and not p.is_absolute() and not p.exists():
            # an obsid: a missing or empty ROOT/<obsid>/ becomes an observation
            # that fails (with the path in its message) instead of stopping the survey
            d = root / item
            by_obsid[safe_obsid(p.name, f"list {observations}")] = (event_files_in(d) if d.is_dir() else []) or [d]
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
        grouped[k] = sorted(set(grouped.get(k, [])) | set(v))
    return dict(sorted(grouped.items()))


def _required(files, where) -> list[Path]:
    if not files:
        raise FileNotFoundError(f"{where}: holds no event files ({', '.join(EVENT_SUFFIXES)})")
    return files
