"""The pipeline's steps l, b, f and i (lists, masters, calibrated frames) and
the step registry; o and p live in :mod:`xcube.frames.measure_steps`, k, c
and d in :mod:`xcube.frames.result_steps`.

Each step takes the :class:`~xcube.frames.pipeline.Reduction` of the run,
reads earlier outputs from ``red_dir`` and writes its own (atomically).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .calibrate import calibrate, choose_master, master_bias, master_flat, read_master, write_master
from .config import for_key
from .files import group_rows, stack_frames
from .pipeline import Missing, Reduction

log = logging.getLogger("xcube.frames")

__all__ = ["STEP_FUNCTIONS", "step_list", "step_bias", "step_flat", "step_correct", "resolve_bias", "resolve_flat",
           "raw_stem", "results"]

_STRIP = {"frame": -1, "y": 128, "x": -1}


def raw_stem(name: str) -> str:
    """A raw file name without its FITS (and compression) suffixes. Eager (text
    only)."""
    return re.sub(r"\.f(its?|ts)(\.gz|\.fz)?$", "", name, flags=re.IGNORECASE)


def science_rows(red: Reduction, obj: str, band: str) -> pd.DataFrame:
    """Usable science frames of one object and band, in time order."""
    return group_rows(red.table, "science", obj, band)


# l ----------------------------------------------------------------------------------------------------------------
def step_list(red: Reduction) -> None:
    """Write ``lst/frames.csv`` (every file, with the problem of unusable
    ones), ``lst/bias.lst``, ``lst/flat_<band>.lst`` and
    ``lst/<obj>_<band>.lst``. Eager: writes the list files."""
    from ..io.atomic import write_table, write_text
    from ..io.paths import inside, safe_component

    lst = red.red_dir / "lst"
    if red.should_make(lst / "frames.csv"):
        write_table(lst / "frames.csv", red.table)
    lists = {"bias": group_rows(red.table, "bias")}
    for band in sorted(set(red.table.loc[red.table["kind"] == "flat", "band"])):
        lists[f"flat_{safe_component(band, 'band')}"] = group_rows(red.table, "flat", band=band)
    for obj, band in red.groups:
        lists[red.tag(obj, band)] = science_rows(red, obj, band)
    for name, rows in lists.items():
        path = inside(lst, f"{name}.lst", what="list file")
        if not rows.empty and red.should_make(path):
            write_text(path, "".join(f"{p}\n" for p in rows["path"]))


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
        raise Missing(f"no master flat for band {band!r}: no usable flat frames in {red.raw_dir} and neither "
                      f"use_flat nor alt_flat gives one; pass alt_flat={{{band!r}: PATH}} or allow_no_flat=True",
                      reported=band in red.missing_flats)
    try:
        return read_master(chosen[1], shape)
    except (OSError, ValueError) as exc:
        raise Missing(str(exc)) from exc


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
    if not red.should_make(out, rows["path"]):
        return
    bias = master_bias(stack_frames(rows, _STRIP))
    write_master(out, bias, {"IMAGETYP": "master bias", "NCOMBINE": len(rows), "COMBINE": "median"})
    log.info("master bias from %d frames -> %s", len(rows), out)


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
                red.missing_flats.add(band)
            continue
        out = flat_path(red, band)
        if not red.should_make(out, list(rows["path"]) + [bias_path(red)]):
            continue
        try:
            bias = resolve_bias(red, (rows["ny"].iloc[0], rows["nx"].iloc[0]))
            flat = master_flat(stack_frames(rows, _STRIP), bias, red.cfg["flat_limit_low"],
                               red.cfg["flat_limit_high"])
        except (Missing, ValueError) as exc:
            red.missing(f"step f (flat), band {band}: {exc}")
            red.missing_flats.add(band)
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
    """Calibrated frames ``<obj>_<band>/<raw name>.bf.fits`` with JD, MJD,
    HJD, BJD_TDB, ALT, AZ, AIRMASS in their headers, and
    ``<obj>_<band>/frames.csv`` (one row per frame with those values). Eager:
    computes the calibrated frames with Dask, chunk by chunk, and writes
    them."""
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


def _stored_hash(path: Path) -> str | None:
    from astropy.io import fits

    try:
        return str(fits.getheader(path).get("CALHASH", ""))
    except (OSError, ValueError):
        return None


def _must_write(red: Reduction, outs: list, hashes: list) -> np.ndarray:
    """Which calibrated frames to (re)make: the missing ones and those
    ``should_make`` remakes; under ``append`` also those made with another
    calibration (``CALHASH``); under ``skip`` those are kept with a warning."""
    write = np.array([red.should_make(p, per_file=True) for p in outs], dtype=bool)
    if red.cfg["on_exist"] not in ("append", "skip"):
        return write
    stale = np.array([not w and _stored_hash(p) != h for p, h, w in zip(outs, hashes, write)], dtype=bool)
    if stale.any():
        if red.cfg["on_exist"] == "append":
            log.info("%d calibrated frames were made with another calibration (masters, border_cut or "
                     "raw_saturation); remaking them", int(stale.sum()))
            write |= stale
        else:
            log.warning("%d calibrated frames (%s...) were made with another calibration (masters, border_cut or "
                        "raw_saturation) and are kept (on_exist='skip'); rerun with on_exist='append' to remake "
                        "them", int(stale.sum()), Path(outs[int(np.flatnonzero(stale)[0])]).name)
    return write


def _correct(red: Reduction, obj: str, band: str) -> None:
    from ..io.atomic import remove_stale, write_table
    from .blocks import map_frames
    from .store import write_calibrated
    from .timing import site_location, time_keywords

    rows = science_rows(red, obj, band)
    shape = (int(rows["ny"].iloc[0]), int(rows["nx"].iloc[0]))
    bias, flat = resolve_bias(red, shape), resolve_flat(red, band, shape)
    site = site_location(red.cfg["site_lon"], red.cfg["site_lat"], red.cfg["site_ele"])
    kw = time_keywords(rows["mjd"].to_numpy(), target_coordinates(red, obj, rows), site)
    kw["AIRMASS"] = np.where(np.isfinite(kw["AIRMASS"]), kw["AIRMASS"], rows["airmass"].to_numpy())
    gdir = red.group_dir(obj, band)
    outs = [gdir / f"{raw_stem(n)}.bf.fits" for n in rows["name"]]
    removed = sum(remove_stale(p) for p in outs)  # temporaries of a killed earlier run
    if removed:
        log.info("%s: removed %d temporaries left by an interrupted run", gdir, removed)
    border = int(red.cfg["border_cut"])
    saturation = raw_saturation(red.cfg, rows)
    hashes = [calibration_hash(bias, flat, border, s) for s in saturation]
    write = _must_write(red, outs, hashes)
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
    log.info("%s %s: %d calibrated frames written, %d kept", obj, band, int(write.sum()), int((~write).sum()))
    table = pd.DataFrame({"file": rows["name"].to_numpy(), "raw": rows["path"].to_numpy(),
                          "calibrated": [p.name for p in outs], "exposure": rows["exposure"].to_numpy(),
                          "gain": rows["gain"].to_numpy()} | {k.lower(): v for k, v in kw.items()})
    if write.any() or red.should_make(gdir / "frames.csv"):
        write_table(gdir / "frames.csv", table)


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
