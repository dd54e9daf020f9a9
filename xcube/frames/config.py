"""Configuration of the frames pipeline: defaults, INI/TOML files, keyword arguments.

Priority: keyword arguments, then files (a later file overrides an earlier
one), then :data:`DEFAULTS`. INI files may use a ``[frames]`` section or no
section at all; values are Python literals (``5000``, ``(3, 5, -1.5)``,
``{"R": "flat_R.fits"}``) or plain strings. TOML files may hold the keys at
the top level or in a ``[frames]`` table. Unknown keys are errors that
suggest the closest known name.
"""
from __future__ import annotations

import ast
import configparser
import difflib
import json
import logging
from pathlib import Path

import numpy as np

from .select import PICK_DEFAULTS

__all__ = ["DEFAULTS", "EXIST_MODES", "MISSING_MODES", "QLCP_UNUSED", "KEY_STEP", "load_config", "for_key",
           "parse_value", "made_with"]

log = logging.getLogger("xcube.frames")

EXIST_MODES = ("skip", "overwrite", "append", "error")
MISSING_MODES = ("skip", "error")

#: every configuration key with its default; the step letters that use it are in docs/frames.md
DEFAULTS = {
    "patterns": None,            # [l] file-name regular expressions (groups obj, band, sn); None: the defaults
    "site_lon": 117.57722,       # [i] site longitude, east [deg] (Xinglong station)
    "site_lat": 40.395833,       # [i] site latitude [deg]
    "site_ele": 960.0,           # [i] site height [m]
    "alt_coord": None,           # [i] (ra, dec) or {obj: (ra, dec)} instead of the RA/DEC keywords
    "use_bias": None,            # [b i] master bias to use instead of tonight's
    "alt_bias": None,            # [b i] master bias when tonight has none
    "use_flat": None,            # [f i] master flat (path or {band: path}) instead of tonight's
    "alt_flat": None,            # [f i] master flat (path or {band: path}) when tonight has none
    "flat_limit_low": 5000.0,    # [f] flats with a median below this [ADU] are rejected
    "flat_limit_high": 50000.0,  # [f] flats with a median above this [ADU] are rejected
    "allow_no_flat": False,      # [i] calibrate without a flat when none is found (else: skip the band)
    "raw_saturation": None,      # [i] raw level [ADU] of saturated pixels (NaN); None: SATURATE/DATAMAX, else
                                 #     the raw integer type's largest value (65535); False: no masking
    "border_cut": 0,             # [i] pixels trimmed on every side of calibrated frames
    "base_img": 0,               # [o] base frame: index among the object's frames, or a file name/path
    "offset_method": "xcorr",    # [o] "xcorr" (cross-correlation) or "stars" (star-list matching)
    "offset_max_dis": 250.0,     # [o] largest accepted offset [px]
    "aper": (3.0, 5.0, 8.0),     # [p] aperture radii [px]; negative: multiples of the frame's FWHM
    "annulus": None,             # [p] (inner, outer) sky annulus [px, negative: FWHM]; None: largest aperture +3..+10
    "gain": None,                # [p] e-/ADU; None: the EGAIN, else GAIN keyword, else 1
    "zero_point": 25.0,          # [p] instrumental magnitude of 1 ADU/s
    "find_threshold": 5.0,       # [o p] detection threshold [sky sigma]
    "max_stars": 200,            # [o p] brightest stars kept from the base frame
    "saturation": None,          # [o p] base-frame stars with a peak above this [ADU above sky] are dropped
    "starxy": None,              # [p k] [(x, y), ...] or {obj: [...]} base-frame positions (0-based, of the
                                 #     calibrated frame: raw pixel - border_cut)
    "ind_tgt": None,             # [k] target index into starxy (default 0)
    "ind_ref": None,             # [k] comparison indices into starxy (default: the others)
    "ind_chk": None,             # [k] check-star indices into starxy (default: none)
    "match_max_dis": 10.0,       # [p] a detected star within this [px] of a starxy star is the same star
    "pick_aper": None,           # [k] aperture index for picking; None: the smallest median error
    **PICK_DEFAULTS,             # [k] thresholds of automatic picking
    "on_exist": "append",        # existing output: skip, overwrite, append, error
    "on_missing": "skip",        # missing input: skip, error
    "chunk_frames": 8,           # frames per Dask chunk (memory ~ chunk x image x a few x threads)
    "result_format": "zarr",     # "zarr" or "netcdf" for the Dataset outputs
    "scheduler": "threads",      # Dask scheduler: threads, processes, synchronous (or a distributed Client)
    "num_workers": None,         # Dask workers; None: all cores
    "progress": None,            # Dask progress bars; None: when stderr is a terminal
}

#: the step whose output holds each key's effect: a later step reads that output as it was made, so the value
#: that counts is the one of the run that made it (see :func:`made_with`). The calibration keys (steps b, f, i)
#: act through the calibrated frames. Keys not listed (patterns, run modes, Dask, result_format) act on each run.
KEY_STEP = {key: step for step, keys in (
    ("i", ("site_lon", "site_lat", "site_ele", "alt_coord", "use_bias", "alt_bias", "use_flat", "alt_flat",
           "flat_limit_low", "flat_limit_high", "allow_no_flat", "raw_saturation", "border_cut")),
    ("o", ("base_img", "offset_method", "offset_max_dis", "find_threshold", "max_stars", "saturation")),
    ("p", ("aper", "annulus", "gain", "zero_point", "starxy", "match_max_dis")),
    ("k", ("ind_tgt", "ind_ref", "ind_chk", "pick_aper", *PICK_DEFAULTS)),
) for key in keys}

_ORDER = "lbfiopkcd"


def _plain(value):
    """``value`` as JSON gives it back (tuples as lists, dict keys as strings), for records and comparisons."""
    return json.loads(json.dumps(value, default=str))


def made_with(cfg: dict, step: str, recorded=None) -> tuple[dict, dict]:
    """The configuration behind the output of ``step`` (a letter of
    ``lbfiopkcd``), as a JSON-ready dict: the keys of ``step``
    (:data:`KEY_STEP`) as in this run's ``cfg``; those of earlier steps as
    ``recorded`` (the record of the input the step read, a dict or its JSON
    text; this run's value for a key it lacks, as in outputs of an older
    xcube); keys of later steps and of no step left out. Also returns the
    keys of earlier steps whose value in ``cfg`` differs from the record,
    ``{key: (recorded, this run)}``: settings this run does not apply. Eager
    (dicts only)."""
    rec = json.loads(recorded) if isinstance(recorded, str) else dict(recorded or {})
    out, differ = {}, {}
    for key, owner in KEY_STEP.items():
        if _ORDER.index(owner) > _ORDER.index(step):
            continue
        now = _plain(cfg[key])
        if owner == step or key not in rec:
            out[key] = now
        else:
            out[key] = rec[key]
            if _plain(rec[key]) != now:
                differ[key] = (rec[key], now)
    return out, differ


#: keys of QLCP configuration files that xcube accepts and does not use, with the reason
QLCP_UNUSED = {
    "site_tz": "times come from DATE-OBS in UTC (or the scale TIMESYS names), not local time",
    "draw_phot": "no per-frame star charts are drawn",
    "draw_phot_err": "no per-frame star charts are drawn",
    "file_log": "configure logging with Python's logging module (logger 'xcube.frames')",
    "scr_log": "configure logging with Python's logging module (logger 'xcube.frames')",
}


def parse_value(text: str):
    """A configuration value from text: a Python literal, None/true/false
    words, or the text itself. Eager (parses text)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        low = text.strip().lower()
        if low in ("none", "null", ""):
            return None
        if low in ("true", "yes", "on"):
            return True
        if low in ("false", "no", "off"):
            return False
        return text.strip()


def _read_ini(path: Path) -> dict:
    text = path.read_text()
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    parser.optionxform = str
    try:
        parser.read_string(text if text.lstrip().startswith("[") else "[frames]\n" + text)
    except configparser.Error as exc:
        raise ValueError(f"{path}: not a valid INI file ({exc})") from exc
    section = "frames" if parser.has_section("frames") else (parser.sections() or ["DEFAULT"])[0]
    return {k: parse_value(v) for k, v in parser[section].items()}


def _read_toml(path: Path) -> dict:
    import tomllib

    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not a valid TOML file ({exc})") from exc
    return dict(data.get("frames", data))


def _check(values: dict, source: str) -> dict:
    out = {}
    for key, value in values.items():
        k = key.lower()
        if k in QLCP_UNUSED:
            log.warning("%s: QLCP key %r is not used by xcube.frames (%s); ignored", source, key, QLCP_UNUSED[k])
            continue
        if k not in DEFAULTS:
            near = difflib.get_close_matches(k, DEFAULTS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else "; see docs/frames.md for the keys"
            raise ValueError(f"{source}: unknown configuration key {key!r}{hint}")
        out[k] = value
    return out


def load_config(files=None, **kwargs) -> dict:
    """The effective configuration: ``kwargs`` over ``files`` (INI by
    default, TOML for ``.toml``; str, path or list, later ones winning) over
    :data:`DEFAULTS`. ``FileNotFoundError``/``ValueError`` name the file and
    the key at fault. Reads the files eagerly; returns a plain dict (the unit of
    each key is noted in the source comments of :data:`DEFAULTS`)."""
    cfg = dict(DEFAULTS)
    for f in [files] if isinstance(files, (str, Path)) else list(files or []):
        path = Path(f)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: configuration file not found")
        cfg.update(_check(_read_toml(path) if path.suffix.lower() == ".toml" else _read_ini(path), str(path)))
    cfg.update(_check({k: v for k, v in kwargs.items() if v is not None}, "keyword arguments"))
    if cfg["on_exist"] not in EXIST_MODES:
        raise ValueError(f"on_exist={cfg['on_exist']!r}: use one of {EXIST_MODES}")
    if cfg["on_missing"] not in MISSING_MODES:
        raise ValueError(f"on_missing={cfg['on_missing']!r}: use one of {MISSING_MODES}")
    if cfg["result_format"] not in ("zarr", "netcdf"):
        raise ValueError(f"result_format={cfg['result_format']!r}: use 'zarr' or 'netcdf'")
    _check_radii(cfg)
    return cfg


def _check_radii(cfg: dict) -> None:
    """``ValueError`` naming the setting when ``aper`` or ``annulus`` (or
    one object's entry of them) is not a list of finite, non-zero radii [px,
    negative: FWHM multiples], or an annulus is not ``(inner, outer)`` with
    the outer radius beyond the inner one (when both are in one unit)."""
    for key in ("aper", "annulus"):
        value = cfg[key]
        for obj, v in (value.items() if isinstance(value, dict) else [(None, value)]):
            if v is None and key == "annulus":
                continue
            where = f"{key}={v!r}" + (f" (object {obj!r})" if obj is not None else "")
            try:
                r = np.atleast_1d(np.asarray(v, dtype=float)).ravel()
            except (TypeError, ValueError):
                raise ValueError(f"{where}: expected radii [px], negative for multiples of the FWHM") from None
            if r.size == 0 or not np.all(np.isfinite(r)) or np.any(r == 0):
                raise ValueError(f"{where}: radii must be finite and non-zero [px; negative: multiples of the "
                                 "FWHM]")
            if key == "annulus" and (r.size != 2 or (np.sign(r[0]) == np.sign(r[1]) and abs(r[1]) <= abs(r[0]))):
                raise ValueError(f"{where}: give (inner, outer) with the outer radius beyond the inner one, "
                                 "e.g. annulus=(10, 16)")


def for_key(value, key: str):
    """A per-object (or per-band) setting: ``value[key]`` for a dict (None
    when absent), else ``value`` itself. Eager."""
    if isinstance(value, dict):
        return value.get(key)
    return value
