"""The night pipeline: steps, their dependencies, rerun modes and ``run``.

Steps (letters as in the reference pipeline), always run in this order::

    l  list        recognise frames; lists and the frame table      lst/
    b  bias        master bias                                       bias.fits
    f  flat        master flat per band                              flat_<band>.fits
    i  correct     calibrated frames with time/airmass keywords      <obj>_<band>/*.bf.fits, frames.csv
    o  offsets     base-frame stars and per-frame offsets           stars_*.csv, offset_*.csv
    p  photometry  aperture photometry of every star in every frame  phot_<obj>_<band>.zarr
    k  pick        target, comparison and check stars               pick_<obj>_<band>.csv/.json
    c  catalogue   instrumental catalogue with the roles             cata_<obj>_<band>.zarr/.fits
    d  diff        differential light curve, CSV and figure         lc_<obj>_<band>.zarr/.csv/.png

A step reads what earlier steps wrote into ``red_dir``; a step that is not
requested but whose output exists is simply used. ``on_exist`` decides what
happens to existing outputs (``skip``: keep; ``overwrite``: remake;
``append``: keep per-frame files, remake the rest; ``error``: raise) and
``on_missing`` what happens when an input is missing (``skip`` that object
and band with a warning, or ``error``).
"""
from __future__ import annotations

import logging
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

log = logging.getLogger("xcube.frames")

__all__ = ["STEPS", "STEP_NAMES", "DEPENDS", "parse_steps", "Missing", "Reduction", "run"]

STEPS = "lbfiopkcd"
STEP_NAMES = {"l": "list", "b": "bias", "f": "flat", "i": "correct", "o": "offsets", "p": "photometry",
              "k": "pick", "c": "catalogue", "d": "differential"}
#: the steps whose outputs each step reads
DEPENDS = {"l": "", "b": "l", "f": "lb", "i": "lbf", "o": "i", "p": "io", "k": "p", "c": "pk", "d": "c"}


def parse_steps(steps) -> str:
    """Requested steps in pipeline order (``"all"``: every step). Unknown
    letters raise ``ValueError`` listing the valid ones. Eager (text only)."""
    text = STEPS if steps in (None, "all") else "".join(steps).lower()
    bad = sorted(set(text) - set(STEPS))
    if bad:
        raise ValueError(f"steps {''.join(bad)!r} unknown; use letters of {STEPS!r} "
                         f"({', '.join(f'{k}={v}' for k, v in STEP_NAMES.items())}) or 'all'")
    return "".join(s for s in STEPS if s in text)


class Missing(Exception):
    """An input of a step is missing; the message says what and how to fix it.
    ``reported``: an earlier step has already warned about it (the group is
    then skipped with an info message, not a second warning)."""

    def __init__(self, message: str, reported: bool = False):
        super().__init__(message)
        self.reported = reported


@dataclass
class Reduction:
    """State of one pipeline run: directories, configuration, the frame table
    and the (object, band) groups still alive."""

    raw_dir: Path
    red_dir: Path
    cfg: dict
    table: pd.DataFrame
    groups: list
    skipped: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    missing_flats: dict = field(default_factory=dict)  # band -> why step f made no master flat (reported)
    not_applied_warned: set = field(default_factory=set)  # (obj, band, key) that not_applied has reported

    def group_dir(self, obj: str, band: str) -> Path:
        """``red_dir/<obj>_<band>`` (names made safe for paths; ``band`` is the
        filter name, no unit)."""
        from ..io.paths import inside

        return inside(self.red_dir, self.tag(obj, band), what="object folder")

    @staticmethod
    def tag(obj: str, band: str) -> str:
        """``<obj>_<band>`` made safe for file names (``band``: the filter name,
        no unit)."""
        from ..io.paths import safe_component

        return f"{safe_component(obj, 'object name')}_{safe_component(band, 'band')}"

    def out(self, prefix: str, obj: str, band: str, suffix: str) -> Path:
        """``red_dir/<prefix>_<obj>_<band><suffix>`` (``band``: the filter name,
        no unit). Nothing is read or checked."""
        from ..io.paths import inside

        return inside(self.red_dir, f"{prefix}_{self.tag(obj, band)}{suffix}", what="output file")

    def should_make(self, path: Path, inputs=(), per_file: bool = False) -> bool:
        """Whether to (re)make ``path`` under ``on_exist``: True when absent;
        for an existing one: ``skip`` keeps it (warning when an input is newer),
        ``overwrite`` remakes it, ``append`` keeps per-frame files and remakes
        aggregate ones, ``error`` raises ``FileExistsError``."""
        path = Path(path)
        if not path.exists():
            return True
        mode = self.cfg["on_exist"]
        if mode == "error":
            raise FileExistsError(f"{path}: exists and on_exist='error'; use on_exist='overwrite', 'append' or "
                                  "'skip', or remove it")
        if mode == "overwrite" or (mode == "append" and not per_file):
            return True
        newer = [str(p) for p in inputs if Path(p).exists() and Path(p).stat().st_mtime > path.stat().st_mtime]
        if newer and not per_file:
            log.warning("%s is kept (on_exist=%r) but is older than its input %s; rerun with on_exist='overwrite' "
                        "to update it", path, mode, newer[0])
        return False

    def remove_stale(self, *paths) -> int:
        """Delete the temporaries that killed writes of ``paths`` (outputs of a
        step) left behind, older than an hour
        (:func:`xcube.io.atomic.remove_stale`), with an info line; returns
        how many. Eager: lists the outputs' folders."""
        from ..io.atomic import remove_stale

        removed = sum(remove_stale(p) for p in paths)
        if removed:
            log.info("%s: removed %d temporaries left by an interrupted run", Path(paths[0]).parent, removed)
        return removed

    def not_applied(self, obj: str, band: str, what: str, differ: dict) -> None:
        """Warn, once per run, object, band and key, that this run's settings
        in ``differ`` (``{key: (recorded, this run)}`` from
        :func:`~xcube.frames.config.made_with`) are not applied to ``what``
        (an earlier step's output, described for the message), and name the
        step to rerun."""
        from .config import KEY_STEP

        new = {k: v for k, v in differ.items() if (obj, band, k) not in self.not_applied_warned}
        if not new:
            return
        self.not_applied_warned.update((obj, band, k) for k in new)
        first = min((KEY_STEP[k] for k in new), key=STEPS.index)
        log.warning("%s %s: %s: made with %s; this run's %s not applied to it (the result's config records the "
                    "values used); rerun from step %s to apply them (steps=%r)", obj, band, what,
                    ", ".join(f"{k}={v[0]!r}" for k, v in new.items()),
                    ", ".join(f"{k}={v[1]!r}" for k, v in new.items()) + (" is" if len(new) == 1 else " are"),
                    first, STEPS[STEPS.index(first):])

    def compute(self, *arrays):
        """``dask.compute`` with the configured scheduler, workers and progress bar."""
        import dask

        progress = self.cfg["progress"]
        if progress is None:
            progress = sys.stderr.isatty()
        if progress:
            from dask.diagnostics import ProgressBar

            bar = ProgressBar()
        else:
            bar = nullcontext()
        kw = {"scheduler": self.cfg["scheduler"]}
        if self.cfg["num_workers"]:
            kw["num_workers"] = int(self.cfg["num_workers"])
        with bar:
            return dask.compute(*arrays, **kw)

    def each_group(self, letter: str, func) -> None:
        """Run ``func(obj, band)`` for every live group; a :class:`Missing`
        input skips the group (with a warning) or raises under
        ``on_missing='error'``."""
        for obj, band in list(self.groups):
            if (obj, band) in self.skipped:
                log.info("step %s (%s) skipped for %s %s: %s", letter, STEP_NAMES[letter], obj, band,
                         self.skipped[(obj, band)])
                continue
            try:
                func(obj, band)
            except Missing as exc:
                self.missing(f"{obj} {band}: step {letter} ({STEP_NAMES[letter]}): {exc}", (obj, band),
                             warn=not exc.reported)

    def missing(self, message: str, group=None, warn: bool = True) -> None:
        """Report a missing input: raise ``FileNotFoundError`` under
        ``on_missing='error'``, else warn (log at info level when ``not
        warn``: already reported) and (for a group) skip it from now on."""
        if self.cfg["on_missing"] == "error":
            raise FileNotFoundError(message + " (on_missing='error'; use on_missing='skip' to go on without it)")
        (log.warning if warn else log.info)("%s; skipping", message)
        if group is not None:
            self.skipped[group] = message


def _selection(values, present, what: str) -> list:
    """Requested objects or bands: None = all present; a list as given; a
    string is one name when present, else (for bands) one name per letter."""
    if values is None:
        return sorted(present)
    if isinstance(values, str):
        if values in present or what == "object":
            return [values]
        return list(values)
    return list(values)


def _groups(red: Reduction, obj, band) -> list:
    """(object, band) pairs to reduce; requested ones without frames are reported missing."""
    sci = red.table[(red.table["kind"] == "science") & (red.table["problem"] == "")]
    pairs = set(zip(sci["obj"], sci["band"]))
    objs = _selection(obj, {o for o, _ in pairs}, "object")
    bands = _selection(band, {b for _, b in pairs}, "band")
    out = []
    for o in objs:
        have = sorted(b for oo, b in pairs if oo == o)
        if not have:
            red.missing(f"no usable science frames of object {o!r} in {red.raw_dir} (objects present: "
                        f"{sorted({p[0] for p in pairs})})")
            continue
        for b in bands:
            if (o, b) in pairs:
                out.append((o, b))
            elif band is not None:
                red.missing(f"object {o!r} has no frames in band {b!r} (bands present: {have})")
    return out


def run(raw_dir, red_dir, obj=None, band=None, steps="all", config_file=None, **config):
    """Reduce a night of raw CCD frames into differential light curves.

    ``raw_dir``: folder of raw frames (bias, flats, science); ``red_dir``:
    output folder (created). ``obj``, ``band``: object name(s) and band(s)
    to reduce (None: all; ``band="BVR"`` means B, V and R). ``steps``:
    letters of :data:`STEPS` or ``"all"``. ``config_file``: INI/TOML
    file(s); ``**config``: keys of :data:`xcube.frames.config.DEFAULTS`,
    which win over the files.

    Returns the light-curve Dataset (see ``docs/frames.md``: ``mag``,
    ``mag_err`` over (star, frame, aperture), ``diff_mag``, ``diff_err``,
    ``offset_x``, ``offset_y``, coords ``time`` (BJD_TDB), ``star_x``,
    ``star_y``, ``aperture``; attrs ``target``, ``comparisons``, ``obj``,
    ``band``) when one object and band reach step d, an ``xr.DataTree``
    (``/<obj>/<band>``) when several do, and None when step d is not run
    and has no output yet. Computes eagerly (in parallel, chunk by chunk).

    Raises ``ValueError`` when nothing is left to reduce: no usable science
    frames (for ``obj``, ``band``), or every object and band skipped for a
    missing input (``on_missing='skip'``; the message gives each reason).
    Outputs written before that (lists, masters) are kept.
    """
    from . import steps as step_impl
    from .config import load_config
    from .files import scan_frames

    cfg = load_config(config_file, **config)
    letters = parse_steps(steps)
    raw_dir, red_dir = Path(raw_dir), Path(red_dir)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"{raw_dir}: raw-data folder not found")
    if raw_dir.resolve() == red_dir.resolve():
        raise ValueError(f"red_dir {red_dir} is the raw-data folder; choose a separate output folder")
    red_dir.mkdir(parents=True, exist_ok=True)
    red = Reduction(raw_dir, red_dir, cfg, scan_frames(raw_dir, cfg["patterns"]), [])
    red.groups = _groups(red, obj, band)
    if not red.groups:
        raise ValueError(f"nothing to reduce in {raw_dir}: no usable science frames"
                         + (f" for obj={obj!r}, band={band!r}" if obj or band else ""))
    log.info("reducing %s with steps %s", ", ".join(f"{o} {b}" for o, b in red.groups), letters)
    for letter in letters:
        log.info("step %s: %s", letter, STEP_NAMES[letter])
        step_impl.STEP_FUNCTIONS[letter](red)
        if all(group in red.skipped for group in red.groups):
            raise ValueError(f"nothing left to reduce in {raw_dir}: every object and band was skipped: "
                             + "; ".join(red.skipped[group] for group in red.groups))
    return step_impl.results(red)
