"""The pipeline's steps l, b, f and i (lists, masters, calibrated frames) and
the step registry; o and p live in :mod:`xcube.frames.measure_steps`, k, c
and d in :mod:`xcube.frames.result_steps`.

Each step takes the :class:`~xcube.frames.pipeline.Reduction` of the run,
reads earlier outputs from ``red_dir`` and writes its own (atomically).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .calibrate import calibrate, choose_master, master_bias, master_flat, read_master, write_master
from .config import for_key
from .files import FrameReadError, group_rows, raw_stem, stack_frames
from .pipeline import Missing, Reduction

log = logging.getLogger("xcube.frames")

__all__ = ["STEP_FUNCTIONS", "step_list", "step_bias", "step_flat", "step_correct", "resolve_bias", "resolve_flat",
           "raw_stem", "calibrated_names", "results"]

_STRIP = {"frame": -1, "y": 128, "x": -1}


def science_rows(red: Reduction, obj: str, band: str) -> pd.DataFrame:
    """Usable science frames of one object and band, in time order."""
    return group_rows(red.table, "science", obj, band)


# l ----------------------------------------------------------------------------------------------------------------
def step_list(red: Reduction) -> None:
    """Write ``lst/frames.csv`` (every file, with the problem of unusable
    ones), ``lst/bias.lst``, ``lst/flat_<band>.lst`` and
    ``lst/<obj>_<band>.lst``. Eager: writes the list files."""
    _write_lists(red)


def _write_lists(red: Reduction, force: bool = False) -> None:
    """The list files of step l from ``red.table``; ``force``: rewrite them
    whatever ``on_exist`` (a frame left out later, by step b, f or i)."""
    from ..io.atomic import write_table, write_text
    from ..io.paths import inside, safe_component

    make = (lambda path: True) if force else red.should_make
    lst = red.red_dir / "lst"
    if make(lst / "frames.csv"):
        write_table(lst / "frames.csv", red.table)
    lists = {"bias": group_rows(red.table, "bias")}
    for band in sorted(set(red.table.loc[red.table["kind"] == "flat", "band"])):
        lists[f"flat_{safe_component(band, 'band')}"] = group_rows(red.table, "flat", band=band)
    for obj, band in red.groups:
        lists[red.tag(obj, band)] = science_rows(red, obj, band)
    for name, rows in lists.items():
        path = inside(lst, f"{name}.lst", what="list file")
        if not rows.empty and make(path):
            write_text(path, "".join(f"{p}\n" for p in rows["path"]))


def _reading(red: Reduction, select, work):
    """``work(select())``, run again without each frame whose pixels cannot
    be read (:class:`~xcube.frames.files.FrameReadError`: a damaged
    compressed tile, a file changed after the scan). Such a frame gets the
    error as its ``problem`` in ``red.table`` (and in ``lst/`` when that
    exists), a warning naming it, and is left out of this and every later
    step. ``select()`` gives the usable rows; returns ``work``'s result, or
    None when no frame is left. Eager, as ``work``."""
    while True:
        rows = select()
        if rows.empty:
            return None
        try:
            return work(rows)
        except FrameReadError as exc:
            if exc.path not in set(rows["path"]):
                raise
            reason = str(exc).removeprefix(f"{exc.path}: ")
            red.table.loc[red.table["path"] == exc.path, "problem"] = reason
            log.warning("skipping frame %s: %s", exc.path, reason)
            if (red.red_dir / "lst").is_dir():
                _write_lists(red, force=True)


# b ----------------------------------------------------------------------------------------------------------------
def bias_path(red: Reduction) -> Path:
    """Tonight's master bias, ``red_dir/bias.fits``."""
    return red.red_dir / "bias.fits"


def flat_path(red: Reduction, band: str) -> Path:
    """Tonight's master flat of ``band``, ``red_dir/flat_<band>.fits``."""
    from ..io.paths import inside, safe_component

    return inside(red.red_dir, f"flat_{safe_component(band, 'band')}.fits", what="flat file")


def resolve_bias(red: Reduction, shape) -> np.ndarray:
    """The master bias by priority: ``use_bias``, tonight's (``bias.fits``
    from step b), ``alt_bias``. Raises :class:`Missing` when none is usable.
    Read eagerly by :func:`~xcube.frames.calibrate.read_master`: a float32
    numpy array of ``shape`` ``(y, x)``."""
    chosen = choose_master("bias", [("given", red.cfg["use_bias"]), ("tonight's", bias_path(red)),
                                    ("fallback", red.cfg["alt_bias"])])
    if chosen is None:
        raise Missing(f"no master bias: {red.raw_dir} has no bias frames (or step b has not run) and neither "
                      "use_bias nor alt_bias is given; run step b or pass alt_bias=PATH")
    try:
        return read_master(chosen[1], shape)
    except (OSError, ValueError) as exc:
        raise Missing(str(exc)) from exc


def resolve_flat(red: Reduction, band: str, shape) -> np.ndarray | None:
    """The master flat of ``band`` by priority: ``use_flat``, tonight's
    (``flat_<band>.fits``), ``alt_flat`` (each a path or ``{band: path}``).
    None (no flat-fielding, with a warning) when ``allow_no_flat``; else
    :class:`Missing`. Read eagerly by
    :func:`~xcube.frames.calibrate.read_master`: a float32 numpy array of
    ``shape`` ``(y, x)``."""
    chosen = choose_master(f"flat {band}", [("given", for_key(red.cfg["use_flat"], band)),
                                            ("tonight's", flat_path(red, band)),
                                            ("fallback", for_key(red.cfg["alt_flat"], band))])
    if chosen is None:
        if red.cfg["allow_no_flat"]:
            log.warning("band %s: no master flat; frames are calibrated without flat-fielding (allow_no_flat)", band)
            return None
        raise Missing(f"no master flat for band {band!r}: {_no_flat_reason(red, band)}; neither use_flat nor "
                      f"alt_flat gives one; pass alt_flat={{{band!r}: PATH}} or allow_no_flat=True",
                      reported=band in red.missing_flats)
    try:
        return read_master(chosen[1], shape)
    except (OSError, ValueError) as exc:
        raise Missing(str(exc)) from exc


def _no_flat_reason(red: Reduction, band: str) -> str:
    """Why tonight has no master flat of ``band``: what step f reported, else
    whether the night has flats of the band at all."""
    if band in red.missing_flats:
        return f"step f made none: {red.missing_flats[band]}"
    n = len(group_rows(red.table, "flat", band=band))
    if not n:
        return f"no usable flat frames of band {band!r} in {red.raw_dir}"
    return f"{flat_path(red, band).name} has not been made from the {n} flat frames of band {band!r} (run step f)"


def _check_flat_shape(red: Reduction, band: str, rows: pd.DataFrame) -> None:
    """:class:`Missing` naming the flat frames ``rows`` of ``band`` and both
    shapes [pixels, rows x columns] when they differ in shape from the
    band's science frames (another binning or window)."""
    from .files import shape_text

    flat = shape_text(rows["ny"].iloc[0], rows["nx"].iloc[0])
    science = {}
    for obj, b in red.groups:
        sci = science_rows(red, obj, b)
        if b == band and not sci.empty:
            science.setdefault(shape_text(sci["ny"].iloc[0], sci["nx"].iloc[0]), []).append(obj)
    if not science or flat in science:
        return
    names = list(rows["name"])
    listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    raise Missing(f"the {len(names)} flat frames of band {band!r} ({listed}) are {flat} pixels, the science frames "
                  f"of band {band!r} are " + ", ".join(f"{s} ({', '.join(o)})" for s, o in science.items())
                  + ": flats must be taken in the science frames' camera mode (binning, window), so none is usable")


def step_bias(red: Reduction) -> None:
    """Combine tonight's bias frames into ``bias.fits`` (median). Eager: reads
    the bias frames (lazily stacked, then computed here) and writes the
    master."""
    if red.cfg["use_bias"]:
        log.info("use_bias=%s given: tonight's bias frames are not combined", red.cfg["use_bias"])
        return
    rows = group_rows(red.table, "bias")
    if rows.empty:
        if red.cfg["alt_bias"]:
            log.info("no bias frames tonight; alt_bias=%s will be used", red.cfg["alt_bias"])
        else:
            red.missing(f"step b (bias): no bias frames in {red.raw_dir}; pass alt_bias=PATH (a master bias)")
        return
    out = bias_path(red)
    red.remove_stale(out)
    if not red.should_make(out, rows["path"]):
        return
    bias = _reading(red, lambda: group_rows(red.table, "bias"), lambda r: master_bias(stack_frames(r, _STRIP)))
    if bias is None:
        red.missing(f"step b (bias): no readable bias frames in {red.raw_dir}; pass alt_bias=PATH (a master bias)")
        return
    write_master(out, bias, {"IMAGETYP": "master bias", "NCOMBINE": bias.attrs["nframes"], "COMBINE": "median"})
    log.info("master bias from %d frames -> %s", bias.attrs["nframes"], out)


def step_flat(red: Reduction) -> None:
    """Combine each band's flats into ``flat_<band>.fits`` (normalised median,
    flats outside ``[flat_limit_low, flat_limit_high]`` ADU rejected). Eager:
    reads each band's flats (lazily stacked, then computed here) and writes the
    masters."""
    for band in sorted({b for o, b in red.groups if (o, b) not in red.skipped}):
        if for_key(red.cfg["use_flat"], band):
            log.info("band %s: use_flat given; tonight's flats are not combined", band)
            continue
        rows = group_rows(red.table, "flat", band=band)
        if rows.empty:
            if not (for_key(red.cfg["alt_flat"], band) or red.cfg["allow_no_flat"]):
                red.missing(f"step f (flat): no flat frames of band {band!r} in {red.raw_dir}; pass "
                            f"alt_flat={{{band!r}: PATH}} or allow_no_flat=True")
                red.missing_flats[band] = f"no flat frames of band {band!r} in {red.raw_dir}"
            continue
        out = flat_path(red, band)
        red.remove_stale(out)
        if not red.should_make(out, list(rows["path"]) + [bias_path(red)]):
            continue
        try:
            _check_flat_shape(red, band, rows)
            try:
                bias = resolve_bias(red, (int(rows["ny"].iloc[0]), int(rows["nx"].iloc[0])))
            except Missing as exc:
                raise Missing(f"the {len(rows)} flat frames of band {band!r} cannot be bias-subtracted: {exc}") \
                    from exc
            flat = _reading(red, lambda: group_rows(red.table, "flat", band=band),
                            lambda r: master_flat(stack_frames(r, _STRIP), bias, red.cfg["flat_limit_low"],
                                                  red.cfg["flat_limit_high"]))
            if flat is None:
                raise Missing(f"no readable flat frames of band {band!r} in {red.raw_dir}")
            rows = group_rows(red.table, "flat", band=band)
        except (Missing, ValueError) as exc:
            red.missing(f"step f (flat), band {band}: {exc}; pass alt_flat={{{band!r}: PATH}} or allow_no_flat=True")
            red.missing_flats[band] = str(exc)
            continue
        write_master(out, flat, {"IMAGETYP": "master flat", "FILTER": band, "NCOMBINE": flat.attrs["nframes"],
                                 "COMBINE": "median of level-scaled flats"})
        log.info("master flat %s from %d of %d frames -> %s", band, flat.attrs["nframes"], len(rows), out)


# i ----------------------------------------------------------------------------------------------------------------
def target_coordinates(red: Reduction, obj: str, rows: pd.DataFrame):
    """The object's SkyCoord from ``alt_coord`` or the first frame's RA/DEC; None (warning) when unknown."""
    from .timing import target_coord

    given = red.cfg["alt_coord"]
    given = given.get(obj) if isinstance(given, dict) else given
    try:
        return target_coord(*given) if given else target_coord(*rows[["ra", "dec", "equinox", "radesys"]].iloc[0])
    except ValueError as exc:
        log.warning("%s: %s; HJD, BJD, altitude and airmass are left unknown and times stay JD (UTC)", obj, exc)
        return None


_COMMENTS = {"JD": "Julian date, mid-exposure (UTC)", "MJD": "modified Julian date, mid-exposure (UTC)",
             "HJD": "heliocentric Julian date, mid-exposure (UTC)",
             "BJD_TDB": "barycentric Julian date, mid-exposure (TDB)", "ALT": "[deg] target altitude (geometric)",
             "AZ": "[deg] target azimuth (N through E)", "AIRMASS": "airmass (Pickering 2002)"}


def frame_keywords(kw: dict, i: int, flat: bool, border: int) -> dict:
    """Header keywords ``{key: (value, comment)}`` of calibrated frame ``i`` (NaN values left out)."""
    out = {k: (float(kw[k][i]), c) for k, c in _COMMENTS.items() if np.isfinite(kw[k][i])}
    out.update(BIASCOR=(True, "bias subtracted"), FLATCOR=(bool(flat), "flat-fielded"),
               BORDER=(int(border), "pixels trimmed on each side"))
    return out


def raw_saturation(cfg: dict, rows: pd.DataFrame) -> np.ndarray:
    """Per frame, the raw level [ADU] at and above which pixels are saturated
    (made NaN by step i): ``raw_saturation`` when a number, none (NaN) when
    False, else the scan's ``saturation`` (SATURATE, DATAMAX, or the raw
    integer type's largest value)."""
    value = cfg["raw_saturation"]
    if value is False:
        return np.full(len(rows), np.nan)
    if value is not None:
        return np.full(len(rows), float(value))
    return rows["saturation"].to_numpy(float)


def step_correct(red: Reduction) -> None:
    """Calibrated frames ``<obj>_<band>/<raw stem>.bf.fits``
    (:func:`calibrated_names`) with JD, MJD,
    HJD, BJD_TDB, ALT, AZ, AIRMASS in their headers, and
    ``<obj>_<band>/frames.csv`` (one row per frame with those values). Eager:
    computes the calibrated frames with Dask, chunk by chunk, and writes
    them; a frame that cannot be read is left out with a warning. Kept
    frames get this run's time and pointing keywords (:func:`_restamp`).
    Warns once per group that dark frames, when the night has any, are not
    used."""
    red.each_group("i", lambda obj, band: _correct(red, obj, band))


def calibration_hash(bias, flat, border: int, saturation: float) -> str:
    """Digest of what makes a calibrated frame's pixels: the master bias and
    flat (their pixels), ``border_cut`` and the raw saturation level. Stored
    as ``CALHASH`` in each calibrated frame; on rerun, frames whose
    ``CALHASH`` differs are remade (``on_exist='append'``)."""
    import hashlib

    h = hashlib.sha1()
    for master in (bias, flat):
        h.update(b"none" if master is None else np.ascontiguousarray(master, dtype=np.float32).tobytes())
    h.update(f"border={int(border)};saturation={float(saturation)!r}".encode())
    return h.hexdigest()[:16]


def _stored(path: Path) -> tuple[str | None, float]:
    """(``CALHASH``, ``MJD``) of a calibrated frame; (None, NaN) when unreadable."""
    from astropy.io import fits

    try:
        header = fits.getheader(path)
    except (OSError, ValueError):
        return None, float("nan")
    try:
        mjd = float(header.get("MJD", "nan"))
    except (TypeError, ValueError):
        mjd = float("nan")
    return str(header.get("CALHASH", "")), mjd


def _must_write(red: Reduction, outs: list, hashes: list, mjd: np.ndarray, since: float | None = None) -> np.ndarray:
    """Which calibrated frames to (re)make: the missing ones and those
    ``should_make`` remakes; under ``append`` also those made with another
    calibration (``CALHASH``) or from another raw frame (their ``MJD`` is
    not this frame's, e.g. after a file of the same stem was added); under
    ``skip`` those are kept with a warning. Files written since ``since``
    (a time stamp [s]: by this step, before a frame was left out) are kept."""
    fresh = np.array([since is not None and Path(p).exists() and Path(p).stat().st_mtime >= since for p in outs],
                     dtype=bool)
    write = np.array([not f and red.should_make(p, per_file=True) for p, f in zip(outs, fresh)], dtype=bool)
    if red.cfg["on_exist"] not in ("append", "skip"):
        return write
    stored = [(None, np.nan) if w or f else _stored(p) for p, w, f in zip(outs, write, fresh)]
    stale = np.array([not w and not f and (s[0] != h or not abs(s[1] - t) < 1e-7)
                      for (s, h, w, f, t) in zip(stored, hashes, write, fresh, mjd)], dtype=bool)
    if stale.any():
        if red.cfg["on_exist"] == "append":
            log.info("%d calibrated frames were made with another calibration (masters, border_cut or "
                     "raw_saturation) or from another raw frame; remaking them", int(stale.sum()))
            write |= stale
        else:
            log.warning("%d calibrated frames (%s...) were made with another calibration (masters, border_cut or "
                        "raw_saturation) or from another raw frame and are kept (on_exist='skip'); rerun with "
                        "on_exist='append' to remake them", int(stale.sum()),
                        Path(outs[int(np.flatnonzero(stale)[0])]).name)
    return write


def _header_value(key: str, value: float):
    """``value`` as a FITS header holds it once written (astropy's float text read back), to compare."""
    from astropy.io import fits

    return fits.Card.fromstring(str(fits.Card(key, float(value)))).value


def _restamp(red: Reduction, outs: list, kw: dict, keep: np.ndarray) -> int:
    """Bring the time and pointing keywords (JD, MJD, HJD, BJD_TDB, ALT, AZ,
    AIRMASS) of the kept calibrated frames (``keep``) to ``kw``, the values
    ``frames.csv`` gets: after a rerun with another ``alt_coord`` or site
    (``site_lon``, ``site_lat``, ``site_ele``) their pixels stay and their
    headers are rewritten (atomically). A keyword whose value this run does
    not know (no coordinates: no HJD) is left as the header has it, as a
    freshly written frame keeps the raw header's. Under ``skip`` they are
    kept with a warning. Returns how
    many headers were rewritten. Eager: reads the kept frames' headers."""
    from astropy.io import fits

    from .store import rewrite_keywords

    stale = []
    for i in np.flatnonzero(keep):
        try:
            header = fits.getheader(outs[i])
        except (OSError, ValueError):
            continue
        new = {k: _header_value(k, kw[k][i]) for k in _COMMENTS if np.isfinite(kw[k][i])}
        if any(header.get(k) != v for k, v in new.items()):  # (an unknown value: the header's is left, as written)
            stale.append(int(i))
    if not stale:
        return 0
    if red.cfg["on_exist"] == "skip":
        log.warning("%d calibrated frames (%s...) hold other times or pointing (HJD, BJD_TDB, ALT, AZ, AIRMASS: "
                    "made with another alt_coord or site) than this run gives; they are kept (on_exist='skip'); "
                    "rerun step i with on_exist='append' to update their headers", len(stale),
                    Path(outs[stale[0]]).name)
        return 0
    for i in stale:
        rewrite_keywords(outs[i], {k: (float(kw[k][i]), c) for k, c in _COMMENTS.items() if np.isfinite(kw[k][i])})
    log.info("%d kept calibrated frames had other times or pointing (alt_coord or site changed); their JD, MJD, HJD, "
             "BJD_TDB, ALT, AZ, AIRMASS keywords are rewritten (pixels kept)", len(stale))
    return len(stale)


def calibrated_names(names) -> list[str]:
    """Calibrated file names of one group's raw files (``names`` in the
    group's time order): ``<raw stem>.bf.fits``, the raw name without its
    FITS and compression suffixes; a file whose stem an earlier one of the
    group has already (``X.fit``, then ``X.fits`` holding another frame; the
    scan has left out a second copy of one frame) keeps its whole name,
    ``<raw name>.bf.fits``. Eager (text only)."""
    seen, out = set(), []
    for name in names:
        stem = raw_stem(name)
        out.append(f"{name if stem in seen else stem}.bf.fits")
        seen.add(stem)
    return out


def _warn_darks(red: Reduction, obj: str, band: str) -> None:
    """One warning per group when the night has usable dark frames: they are not used."""
    darks = group_rows(red.table, "dark")
    if not darks.empty:
        log.warning("%s %s: %d dark frames in %s are not used: frames are calibrated as (raw - bias) / flat, so "
                    "the dark current stays in them (the sky annulus removes a uniform dark level from the "
                    "photometry; hot pixels and dark structure stay)", obj, band, len(darks), red.raw_dir)


def _correct(red: Reduction, obj: str, band: str) -> None:
    import time

    from ..io.atomic import write_table
    from .timing import site_location

    rows = science_rows(red, obj, band)
    shape = (int(rows["ny"].iloc[0]), int(rows["nx"].iloc[0]))
    bias, flat = resolve_bias(red, shape), resolve_flat(red, band, shape)
    _warn_darks(red, obj, band)
    site = site_location(red.cfg["site_lon"], red.cfg["site_lat"], red.cfg["site_ele"])
    coord = target_coordinates(red, obj, rows)
    gdir = red.group_dir(obj, band)
    red.remove_stale(*(gdir / n for n in calibrated_names(rows["name"])))  # temporaries of a killed earlier run
    started, tries = time.time(), []

    def work(r):  # a retry (after a frame was left out) keeps the frames this step has written already
        tries.append(r)
        return _calibrate_group(red, r, gdir, bias, flat, coord, site, started if len(tries) > 1 else None)

    done = _reading(red, lambda: science_rows(red, obj, band), work)
    if done is None:
        raise Missing(f"{gdir}: none of the frames can be read")
    rows, outs, kw, write = done
    log.info("%s %s: %d calibrated frames written, %d kept", obj, band, int(write.sum()), int((~write).sum()))
    table = pd.DataFrame({"file": rows["name"].to_numpy(), "raw": rows["path"].to_numpy(),
                          "calibrated": [p.name for p in outs], "exposure": rows["exposure"].to_numpy(),
                          "gain": rows["gain"].to_numpy()} | {k.lower(): v for k, v in kw.items()})
    if write.any() or len(tries) > 1 or red.should_make(gdir / "frames.csv") or _listed(gdir) != set(rows["name"]):
        write_table(gdir / "frames.csv", table)


def _listed(gdir: Path) -> set:
    """The raw files in the group's ``frames.csv`` as written before (none when absent)."""
    path = gdir / "frames.csv"
    return set(pd.read_csv(path)["file"]) if path.exists() else set()


def _calibrate_group(red: Reduction, rows: pd.DataFrame, gdir: Path, bias, flat, coord, site, since: float | None):
    """Write the calibrated frames of ``rows`` that :func:`_must_write` asks
    for; returns ``(rows, output paths, time keywords, written mask)``.
    Eager: reads, calibrates and writes those frames with Dask; a frame that
    cannot be read raises :class:`~xcube.frames.files.FrameReadError`."""
    from .blocks import map_frames
    from .store import write_calibrated
    from .timing import time_keywords

    kw = time_keywords(rows["mjd"].to_numpy(), coord, site)
    kw["AIRMASS"] = np.where(np.isfinite(kw["AIRMASS"]), kw["AIRMASS"], rows["airmass"].to_numpy())
    outs = [gdir / n for n in calibrated_names(rows["name"])]
    border = int(red.cfg["border_cut"])
    saturation = raw_saturation(red.cfg, rows)
    hashes = [calibration_hash(bias, flat, border, s) for s in saturation]
    write = _must_write(red, outs, hashes, kw["MJD"], since)
    if write.any():
        todo = np.flatnonzero(write)  # only the frames to write are read and calibrated
        sub = rows.iloc[todo]
        cal = calibrate(stack_frames(sub, {"frame": int(red.cfg["chunk_frames"])}), bias, flat, border,
                        saturation[todo])
        keywords = np.empty(len(todo), dtype=object)
        keywords[:] = [frame_keywords(kw, i, flat is not None, border) | {"CALHASH": (hashes[i], "calibration digest")}
                       for i in todo]
        res = map_frames(write_calibrated, cal.data,
                         {"raw_paths": sub["path"].to_numpy(str), "raw_hdus": sub["hdu"].to_numpy(int),
                          "out_paths": np.array([str(outs[i]) for i in todo]), "keywords": keywords,
                          "write": np.ones(len(todo), bool)},
                         {"written": ((), np.int8)})
        red.compute(res["written"])
    _restamp(red, outs, kw, ~write)
    return rows, outs, kw, write


def results(red: Reduction):
    """What ``run`` returns: the light-curve Dataset of the one group that has
    one, a DataTree ``/<obj>/<band>`` for several, None for none. Each
    Dataset has dims ``frame``, ``star``, ``aperture`` (and ``check``) and
    is in memory: the run's own result, or its file loaded eagerly with
    :func:`~xcube.frames.store.read_dataset`."""
    import xarray as xr

    from .measure_steps import result_path
    from .store import read_dataset

    found = {}
    for obj, band in red.groups:
        if (obj, band) in red.results:
            found[(obj, band)] = red.results[(obj, band)]
        elif (obj, band) not in red.skipped and result_path(red, obj, band).exists():
            found[(obj, band)] = read_dataset(result_path(red, obj, band))
    if not found:
        return None
    if len(found) == 1:
        return next(iter(found.values()))
    return xr.DataTree.from_dict({f"/{o.replace('/', '_')}/{b.replace('/', '_')}": ds for (o, b), ds in found.items()})


def _registry():
    from . import measure_steps as m
    from . import result_steps as r

    return {"l": step_list, "b": step_bias, "f": step_flat, "i": step_correct, "o": m.step_offsets,
            "p": m.step_photometry, "k": r.step_pick, "c": r.step_catalogue, "d": r.step_differential}


class _Registry(dict):
    def __missing__(self, key):
        self.update(_registry())
        return dict.__getitem__(self, key)


#: step letter -> function(Reduction)
STEP_FUNCTIONS = _Registry()
