"""Paths built from untrusted values: header keywords, user names, run ids.

A value such as ``OBS_ID = '../../escape'`` must never steer a write outside
the directory a user chose. :func:`safe_component` turns any value into one
harmless path component; :func:`inside` joins components under a root and
refuses a result that resolves outside it (symbolic links included).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["safe_component", "inside", "cache_dir", "expand_path", "walk_files", "remove_empty_up_to",
           "SAFE_CHARACTERS"]

#: characters kept in a path component; every other character becomes "_"
SAFE_CHARACTERS = "A-Za-z0-9._+-"
_UNSAFE = re.compile(f"[^{SAFE_CHARACTERS}]")
_MAX_LENGTH = 128


def safe_component(value, what: str = "name") -> str:
    """One path component made from ``value``: characters outside
    ``[A-Za-z0-9._+-]`` become ``_``, leading dots are dropped (no ``..``, no
    hidden names), and the result is at most 128 characters. Raises
    ``ValueError`` naming ``what`` when nothing usable is left (an empty
    value, only dots, or only ``_`` after the replacement, such as
    ``観測``). Eager (string work only)."""
    text = _UNSAFE.sub("_", str(value).strip())
    text = text.lstrip(".")[:_MAX_LENGTH]
    if not text.strip("_"):
        raise ValueError(f"{what} {value!r} gives no usable file name; use letters, digits, '.', '_', '+' or '-'")
    return text


def inside(root, *parts, what: str = "path") -> Path:
    """``root / parts...``, checked to resolve inside ``root``.

    Each part may hold several components (``"a/b"``); absolute parts and
    ``..`` that climb out of ``root`` are refused with ``ValueError`` naming
    ``what``, as is a symbolic link leading elsewhere. The returned path is
    not resolved (links inside ``root`` stay as they are). Eager: resolves the
    paths (file-system look-ups), reads no file."""
    base = Path(root)
    path = base.joinpath(*[str(p) for p in parts])
    real_root = base.resolve()
    real = path.resolve()
    if real != real_root and real_root not in real.parents:
        raise ValueError(f"{what} {path} resolves to {real}, outside {real_root}; refusing to write there")
    return path


def expand_path(path) -> Path:
    """``path`` as a ``Path`` with a leading ``~`` or ``~user`` expanded to
    that home directory (as shells and Zarr do), so that no directory
    literally named ``~`` is ever created; ``bytes`` are decoded as the file
    system does. ``ValueError`` for an empty path (``""`` would otherwise be
    the current directory: an unset shell variable must not open or write
    everything there). Reads nothing. Eager."""
    if isinstance(path, (bytes, bytearray)):
        path = os.fsdecode(bytes(path))
    if isinstance(path, str) and not path.strip():
        raise ValueError(f"an empty path ({path!r}): give the name of a file or directory")
    p = Path(path)
    return p.expanduser() if str(p).startswith("~") else p


def cache_dir(cache: str | os.PathLike | None = None) -> Path:
    """Directory of xcube's caches (converted event lists, computed tables):
    ``cache`` if given, else ``$XCUBE_CACHE_DIR`` (unless empty), else
    ``~/.cache/xcube``; a leading ``~`` is expanded. A set but empty (or
    blank) ``XCUBE_CACHE_DIR`` counts as unset (it does not mean the current
    directory). Eager; creates nothing."""
    if cache is not None and str(cache).strip():
        return expand_path(cache)
    env = os.environ.get("XCUBE_CACHE_DIR", "")
    if env.strip():
        return expand_path(env)
    return Path.home() / ".cache" / "xcube"


def walk_files(directory) -> tuple[list[Path], list[Path]]:
    """``(files, unreadable)``: the visible files below ``directory``
    (sorted; names starting with a dot are left out), following symbolic
    links to directories with each real directory entered once (a link loop
    ends), and the directories that could not be read (sorted). Eager: walks
    the whole tree."""
    files: list[Path] = []
    unreadable: set[Path] = set()
    seen: set[tuple[int, int]] = set()
    for root, dirs, names in os.walk(directory, onerror=lambda exc: unreadable.add(Path(exc.filename)),
                                     followlinks=True):
        try:
            st = os.stat(root)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:  # a link back into the tree: entered already
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [Path(root) / n for n in names if not n.startswith(".")]
    return sorted(f for f in files if f.is_file()), sorted(unreadable)


def remove_empty_up_to(path, created) -> None:
    """Remove ``path`` and its parents up to ``created`` (the topmost
    directory a command created; None: nothing) while they are empty, so
    that a command that wrote nothing leaves no empty directories. Eager."""
    if created is None:
        return
    created = Path(created)
    for d in [Path(path), *Path(path).parents]:
        if d != created and created not in d.parents:
            break
        try:
            d.rmdir()
        except OSError:
            break
