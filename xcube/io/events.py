"""``open_events`` / ``open_archive``: the one entry point for event data."""
from __future__ import annotations

import errno
import logging
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from .. import accessor  # noqa: F401  (the .xcube accessor, with the first EventLists)
from .. import gti as gtimod
from .atomic import remove_stale
from .cache import StoreCorruptError, cache_dir, cache_key, entry_name, is_complete, open_zarr_events, to_zarr
from .events_fits import (
    DEFAULT_CHUNK,
    build_dataset,
    check_time_unit,
    load_fits_events,
    open_fits_events,
    read_fits_header,
)
from .fitsutil import check_path, is_compressed, open_fits
from .paths import expand_path, safe_component, walk_files

__all__ = ["open_events", "open_archive", "EVENT_SUFFIXES", "check_distinct", "check_distinct_exposures",
           "combined_labels", "event_nodes", "not_a_tree"]

log = logging.getLogger("xcube.io")

#: names of event files in a directory (compared in lower case); ``.Z`` files are listed to be refused by name
EVENT_SUFFIXES = (".fits", ".fit", ".evt", ".ftz", ".gz", ".fits.gz", ".evt.gz", ".fts", ".fits.z", ".evt.z")


def _is_zarr(p: Path) -> bool:
    return p.is_dir() and ((p / "zarr.json").exists() or p.suffix == ".zarr")


def _store_for(p: Path, instrument, cache, hdu=None) -> Path:
    """Cache store of a file that needs conversion (keyed by file identity,
    the ``instrument`` override and the event table ``hdu``)."""
    extra = (instrument or "auto",) + ((str(hdu).upper(),) if hdu is not None else ())
    return cache_dir(cache) / entry_name(p.name, cache_key(p, *extra), ".zarr")


def _open_cached(store: Path, chunks) -> xr.Dataset:
    """Open a cache store, re-emitting the warnings recorded when it was made."""
    ds = open_zarr_events(store, chunks=chunks, cached=True)
    check_time_unit(ds.attrs.get("timeunit"), ds.attrs.get("source", store))  # made before TIMEUNIT was checked
    for msg in ds.attrs.get("warnings", []):
        warnings.warn(msg, UserWarning, stacklevel=4)
    return ds


def _open_one(path, instrument=None, chunks=None, cache=None, hdu=None) -> xr.Dataset:
    p = expand_path(path)
    if _is_zarr(p):
        ds = open_zarr_events(p, chunks=chunks)
        if "event" not in ds.dims:
            search = ds.attrs.get("kind") == "transient-search"
            raise ValueError(f"{p}: {'a transient-search result' if search else 'a Zarr store'} with dims "
                             f"{dict(ds.sizes)}, not an event list; open it with xcube.io.cache.open_store, which "
                             "checks it" + (" (xcube info summarises it)" if search else ""))
        check_time_unit(ds.attrs.get("timeunit"), p)  # a store written by hand, or by another tool
        return ds
    check_path(p)
    store = _store_for(p, instrument, cache, hdu)
    if is_complete(store):  # converted before: no need to read (or decompress) the file again
        remove_stale(store)  # a killed rewrite's temporary, once an hour old (a full copy of the entry)
        try:
            return _open_cached(store, chunks)
        except StoreCorruptError as exc:
            warnings.warn(f"damaged event cache entry: {exc}; rebuilding it from {p}", UserWarning, stacklevel=3)
    caught: list = []
    converted = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            comp = is_compressed(p)
            with open_fits(p, memmap=comp is None) as hdul:
                meta = read_fits_header(p, instrument=instrument, hdul=hdul, hdu=hdu)
                ds = open_fits_events(meta, chunks=chunks, cache=cache) if meta.compressed is None else None
                if ds is None:
                    reason = meta.cache_reason or {"layout": "not memory-mappable"}.get(
                        meta.compressed, f"{meta.compressed}-compressed")
                    log.info("%s: %s; converting once into the event cache %s", p, reason, store)
                    cols = load_fits_events(meta, hdul=hdul)
                    import dask.array as da

                    # stored in the default chunks: a chunks= of this call applies to the events it returns,
                    # not to every later open of the entry
                    ds = build_dataset(meta, {k: da.from_array(v, chunks=(DEFAULT_CHUNK,)) for k, v in cols.items()})
                    converted = True
    finally:
        for w in caught:  # pass the warnings on, also when opening failed
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not converted:
        return ds
    ds.attrs["cache_reason"] = reason
    # recorded with the store and replayed whenever it is opened
    ds.attrs["warnings"] = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    try:
        to_zarr(ds, store, overwrite=store.exists())
    except FileExistsError:
        if not is_complete(store):
            raise
        # another process converted the same file into this entry (named by the file's contents) meanwhile
        return _open_cached(store, chunks)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EEXIST,
                             errno.ENOTDIR):
            raise
        raise type(exc)(
            exc.errno, f"{p}: cannot write the event cache {store} ({exc.strerror or exc}); set XCUBE_CACHE_DIR or "
            "pass cache= a writable directory with free space"
        ) from exc
    return open_zarr_events(store, chunks=chunks, cached=True)


def _expand(paths) -> list[Path]:
    if isinstance(paths, (str, Path)):
        p = expand_path(paths)
        if p.is_dir() and not _is_zarr(p):
            found, unreadable = walk_files(p)
            for u in unreadable:
                warnings.warn(f"{u}: directory not readable; its event files are not opened", UserWarning,
                              stacklevel=3)
            files = [f for f in found if any(f.name.lower().endswith(s) for s in EVENT_SUFFIXES)]
            if not files:
                broken = [f.name for f in p.rglob("*") if f.is_symlink() and not f.exists()]
                raise FileNotFoundError(f"{p}: directory holds no event files ({', '.join(EVENT_SUFFIXES)})"
                                        + (f"; broken links: {', '.join(broken[:5])}" if broken else ""))
            return files
        return [p]
    files, seen = [], {}
    for x in paths:
        f = expand_path(x)
        key = f.resolve() if f.exists() else f
        if key in seen:  # the same file twice would be two cameras: counts doubled, detections twice
            warnings.warn(f"{f}: listed twice (as {seen[key]} too); opened once", UserWarning, stacklevel=3)
            continue
        seen[key] = f
        files.append(f)
    return files


def event_nodes(tree: xr.DataTree) -> dict:
    """``{node path: EventList}`` of the nodes of ``tree`` holding events.
    ``ValueError`` when there is none (a header-only archive from
    ``open_archive(load=False)``). Lazy: the nodes' Datasets keep their (Dask)
    variables as they are; nothing is computed."""
    nodes = {n.path: n.to_dataset() for n in tree.subtree if "event" in n.dims}
    if not nodes:
        raise ValueError("the DataTree holds no event lists (open_archive(load=False) reads headers only); open "
                         "the files with xcube.open_events([...]) or open_archive(..., load=True)")
    return nodes


def not_a_tree(events, what: str) -> None:
    """``TypeError`` for a DataTree given where one EventList is needed,
    naming its event nodes (pick one: ``tree["<obs>/<camera>"]``); returns
    None for anything else. Eager and cheap: reads only the tree's
    structure, no data."""
    if isinstance(events, xr.DataTree):
        paths = [n.path for n in events.subtree if "event" in n.dims]
        raise TypeError(f"{what} takes one EventList, not a DataTree; pick a camera, e.g. tree[{paths[0]!r}] "
                        f"(event nodes: {', '.join(paths)})" if paths else
                        f"{what} takes one EventList, not a DataTree (this one holds no event lists)")


def combined_labels(objects) -> dict:
    """Labels of several cameras' products combined into one (a summed light
    curve, a merged search cube): ``instrument`` and ``instrume`` name them
    all (``"EMOS1+EMOS2"``, the INSTRUME of a written file), ``sources``
    lists their files and ``source`` joins them. Eager (attrs only)."""
    joined = "+".join(str(o.attrs.get("instrument", "")) for o in objects)
    sources = [str(o.attrs.get("source", "")) for o in objects]
    return {"instrument": joined, "instrume": joined, "sources": sources, "source": " + ".join(sources)}


def check_distinct(events, what: str) -> None:
    """``ValueError`` when two of ``events`` (EventLists to be combined as
    cameras) come from the same file (their ``source`` attrs) or hold the
    same exposure (:func:`check_distinct_exposures`): the same events twice
    would double the counts and repeat every detection. Eager, cheap: attrs and
    GTIs, and the first event times of lists that might be copies."""
    seen: dict = {}
    for k, ev in enumerate(events):
        src = str(getattr(ev, "attrs", {}).get("source") or "")
        if not src:
            continue
        if src in seen:
            raise ValueError(f"{what}: cameras {seen[src]} and {k} are the same events ({src}); give each file once")
        seen[src] = k
    check_distinct_exposures(events, what)


def check_distinct_exposures(events, what: str = "search_transients") -> None:
    """``ValueError`` naming both files when two event lists hold the same
    exposure under different file names (an ``.FTZ`` and its decompressed
    copy, a re-sorted or filtered copy): the same instrument and exposure id
    (attr ``expid``, the EXPIDSTR keyword; both may lack one) with good time
    in common (one camera cannot take two exposures at once), or identical
    GTIs, event counts and first event times (a relabelled copy). Combined (a summed light curve, a search), its
    events would be counted twice, or searched twice as two subsets with
    every detection repeated. Eager, cheap (attrs and GTIs); part of
    :func:`check_distinct`."""
    gtis = [gtimod.from_dataset(e) for e in events]
    for j in range(1, len(events)):
        for i in range(j):
            a, b = events[i].attrs, events[j].attrs
            inst = str(a.get("instrument", "") or "")
            expid = str(a.get("expid", "") or "").strip()
            why = None
            if inst and inst == str(b.get("instrument", "") or "") and expid == str(b.get("expid", "") or "").strip():
                common = float(gtimod.exposure(gtimod.intersection(gtis[i], gtis[j])))
                if common > 0:
                    label = f"{inst} exposure {expid}" if expid else f"{inst} (no EXPIDSTR)"
                    why = f"the same exposure ({label}, {common:.1f} s of good time in common)"
            n_i, n_j = events[i].sizes.get("event"), events[j].sizes.get("event")
            if why is None and n_i == n_j and all(np.array_equal(x, y) for x, y in zip(gtis[i], gtis[j])) \
                    and _same_first_times(events[i], events[j]):
                why = f"the same events (identical GTIs and {n_i} events each)"
            if why:
                raise ValueError(
                    f"{what}: cameras {i} and {j} hold {why}: {a.get('source', '<events>')} and "
                    f"{b.get('source', '<events>')}; combined, its events would count twice (a search would also "
                    "search it twice, every detection repeated). Give each exposure once")


def _same_first_times(a, b, n: int = 64) -> bool:
    """Whether two event lists start with the same ``n`` event times (reads
    those only): a copy does, two cameras of one exposure time do not."""
    if "time" not in a.variables or "time" not in b.variables:
        return True
    return bool(np.array_equal(np.asarray(a["time"][:n].values), np.asarray(b["time"][:n].values)))


def open_events(path_or_paths, instrument: str | None = None, chunks: int | None = None, cache=None, hdu=None):
    """Open event data lazily.

    Parameters
    ----------
    path_or_paths : an OGIP event file (``.fits``, ``.evt``, ``.FTZ``, ``.gz``),
        an xcube Zarr store, a list of files or a directory.
    instrument : mission profile name (``"xmm-pn"``, ``"nustar-fpma"``, ...) to
        override detection from TELESCOP/INSTRUME.
    chunks : events per Dask chunk along ``event`` (default 1,048,576, :data:`xcube.io.chunking.EVENT_CHUNK`).
    cache : directory of the Zarr event cache (default ``$XCUBE_CACHE_DIR`` or
        ``~/.cache/xcube``). Compressed and unsorted files are converted there
        once, sorted by time.
    hdu : name (case-insensitive) or index of the event table, for files
        whose event extension has a nonstandard name (Stingray's test files
        ``EVENTSxy``, AstroSat LAXPC ``event file``); default: the mission's
        event extension (``EVENTS``, ``XTE_SE``...).

    Returns
    -------
    One file: an EventList ``xr.Dataset`` (dim ``event``, Dask-backed columns,
    time-sorted; GTIs on dim ``gti``). Several files or a directory: an
    ``xr.DataTree`` with one node per observation and instrument, each holding
    its EventList.

    Eager work: headers, GTIs and one streaming pass over TIME (ordering and
    NaN checks); compressed/unsorted files are converted into the cache on
    first open. Event columns are otherwise never loaded.

    Times must be seconds: a file (or GTI table) with a TIMEUNIT other than
    ``'s'`` (e.g. ``'d'``), or a TIME (GTI START/STOP) column whose TUNIT is
    not seconds, raises ``ValueError`` naming the file (and the column).
    """
    _check_chunks(chunks)
    if isinstance(path_or_paths, (str, bytes, bytearray, Path)):  # (bytes: decoded by expand_path)
        path_or_paths = expand_path(path_or_paths)
        if not path_or_paths.is_dir() or _is_zarr(path_or_paths):
            return _open_one(path_or_paths, instrument=instrument, chunks=chunks, cache=cache, hdu=hdu)
    files = _expand(path_or_paths)
    return open_archive(files, instrument=instrument, chunks=chunks, cache=cache, load=True, hdu=hdu)


def _check_chunks(chunks) -> None:
    """``ValueError`` unless ``chunks`` is None or a whole number of events >= 1."""
    if chunks is None:
        return
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks < 1:
        raise ValueError(f"open_events: chunks={chunks!r} must be a whole number of events >= 1 per Dask chunk "
                         "(or None: the default)")


def _safe(value, fallback: str) -> str:
    try:
        return safe_component(value) if str(value).strip() else fallback
    except ValueError:
        return fallback


def _node_name(attrs, used: set) -> tuple[str, str]:
    """(observation, camera) node names from OBS_ID, INSTRUME and EXPIDSTR,
    made safe path components (a tree node may become a directory)."""
    obs = _safe(attrs.get("obs_id") or "unknown", "unknown")
    inst = _safe(attrs.get("instrument") or "UNKNOWN", "UNKNOWN")
    name = inst
    if (obs, name) in used:
        expid = _safe(attrs.get("expid") or "", "")
        name = f"{inst}_{expid}" if expid and (obs, f"{inst}_{expid}") not in used else None
        k = 2
        while name is None or (obs, name) in used:
            name = f"{inst}_{k}"
            k += 1
    used.add((obs, name))
    return obs, name


def open_archive(path_or_paths, instrument=None, chunks=None, cache=None, load: bool = False,
                 hdu=None) -> xr.DataTree:
    """Archive of observations as an ``xr.DataTree`` (``/<obs_id>/<instrument>``).

    With ``load=False`` (default) only headers are read: each node holds no
    variables and carries the file's attrs (``path``, ``n_events``,
    ``exposure``, ...); open one with ``xcube.open_events(node.attrs["path"])``.
    With ``load=True`` each node holds its lazy EventList.
    Files that fail to open are skipped with a warning naming the file and
    reason. ``hdu``: the event table's name, as in :func:`open_events`.
    """
    _check_chunks(chunks)
    files = _expand(path_or_paths)
    used: set = set()
    nodes = {}
    skipped = []
    for f in files:
        try:
            if load:
                ds = _open_one(f, instrument=instrument, chunks=chunks, cache=cache, hdu=hdu)
                attrs = ds.attrs
            else:
                meta = read_fits_header(f, instrument=instrument, hdu=hdu) if not _is_zarr(f) else None
                if meta is None:
                    ds0 = open_zarr_events(f)
                    attrs = dict(ds0.attrs, n_events=ds0.sizes["event"])
                else:
                    attrs = dict(meta.attrs, n_events=meta.nrows, exposure=gtimod.exposure(meta.gti))
                ds = xr.Dataset(attrs=attrs)
            ds.attrs["path"] = str(f)
        except (OSError, ValueError) as exc:
            warnings.warn(f"skipping {f}: {exc}", stacklevel=2)
            skipped.append(f"{f}: {exc}")
            continue
        obs, name = _node_name(ds.attrs, used)
        nodes[f"/{obs}/{name}"] = ds
    if not nodes:
        shown = "; ".join(skipped[:3]) + (f"; and {len(skipped) - 3} more" if len(skipped) > 3 else "")
        raise FileNotFoundError(f"no readable event files among {len(files)} path(s): {shown}")
    return xr.DataTree.from_dict(nodes)
