"""XMM-Newton processing of one observation with SAS, in steps:

``events`` -> ``clean`` -> ``images`` and/or ``spectra`` (:data:`STEPS`).

- ``events``: ``cifbuild``, ``odfingest``; per EPIC exposure ``epchain``
  (out-of-time run first) or ``emchain``; per RGS exposure ``rgsproc``
  stages ``1:events`` and ``2:angles``.
- ``clean``: flare GTIs (``espfilt``, or the SAS-thread rate cut), ``emanom``
  for MOS (SAS 19 or later; skipped with a warning below), ``evselect``
  cleaning, ``merge`` of sub-exposures; ``rgsproc 3:filter`` for RGS.
- ``images``: per instrument and band, image and exposure map, and their
  EPIC mosaics (:func:`xcube.tools.sas_products.image_tasks`).
- ``spectra``: per EPIC instrument, source and background spectra with
  BACKSCAL, RMF, ARF and a grouped spectrum naming them
  (:func:`xcube.tools.sas_products.spectrum_tasks`).

Each step is a batch of tasks on Dask (:func:`xcube.tools.run_many`); every
task is skipped when its outputs are up to date, so running again resumes.
"""
from __future__ import annotations

import logging
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..io.atomic import atomic_file, write_table
from .packages import sas_version
from .provenance import read_record, record_path, write_record
from .runner import ToolError, fingerprint
from .sas import (
    EMANOM_MIN_SAS,
    INSTRUMENTS,
    RGS_INSTRUMENTS,
    OdfSummary,
    accepted_ccds,
    cifbuild,
    cleaning_expression,
    emanom,
    emchain,
    epchain_pair,
    espfilt,
    espfilt_long_names,
    evselect_events,
    flare_gti,
    instrument_key,
    merge_exposures,
    odfingest,
    parse_emanom,
    parse_odf_summary,
)
from .sas_products import IMAGE_BANDS, IMAGE_GRID, image_tasks, source_regions, spectrum_tasks
from .sas_rgs import rgs_chain

__all__ = ["STEPS", "ObservationProducts", "process_observation", "steps_to_run", "copy_product", "missing_instruments"]

log = logging.getLogger("xcube.tools.sas")

#: processing steps, in order
STEPS = ("events", "clean", "images", "spectra")
_NEEDS = {"events": (), "clean": ("events",), "images": ("events", "clean"), "spectra": ("events", "clean")}
#: instrument -> its ODF code in the summary (PN, M1, M2, R1, R2)
_ALL_CODES = {k: v[0] for k, v in {**INSTRUMENTS, **RGS_INSTRUMENTS}.items()}


def steps_to_run(steps) -> list[str]:
    """The requested steps and the ones they need, in processing order
    (``["spectra"]`` -> ``["events", "clean", "spectra"]``). Eager."""
    want = [steps] if isinstance(steps, str) else list(steps)
    bad = [s for s in want if s not in STEPS]
    if bad or not want:
        raise ValueError(f"steps {bad or want}: choose from {', '.join(STEPS)}")
    need = set(want)
    for s in want:
        need.update(_NEEDS[s])
    return [s for s in STEPS if s in need]


@dataclass
class ObservationProducts:
    """Result of :func:`process_observation`.

    ``chain_events``: ``(instrument, exp_id)`` -> calibrated event list of
    the events step (epchain, emchain; rgsproc's for RGS), before cleaning,
    for the chains that finished; ``events``: EPIC instrument -> final
    cleaned event list (merged over sub-exposures); ``exposures``: ``(instrument, exp_id)`` -> cleaned list of
    that exposure; ``ccds``: MOS ``(instrument, exp_id)`` -> CCDs kept after
    emanom; ``rgs``: ``(rgs1|rgs2, exp_id)`` -> filtered RGS event list;
    ``images``: ``(instrument or "epic", band)`` -> ``{"image", "expmap"}``;
    ``spectra``: instrument -> ``{"source", "background", "rmf", "arf",
    "grouped"}``; ``attitude``: the attitude file; ``status``: one row per
    task (``run_many`` table plus a ``stage`` column); ``notes``: what was
    left out and why (e.g. emanom below SAS 19); ``sas_version``.
    """

    out_dir: Path
    summary: OdfSummary | None
    events: dict
    exposures: dict
    ccds: dict
    status: object
    rgs: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict)
    spectra: dict = field(default_factory=dict)
    attitude: Path | None = None
    chain_events: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    sas_version: str | None = None

    def open(self, instrument: str, **kwargs):
        """``xcube.open_events`` on the cleaned event list of ``instrument``:
        an EventList ``xr.Dataset`` (dim ``event``, Dask-backed columns),
        lazy apart from ``open_events``' eager work (headers, GTIs, one pass
        over TIME). ``kwargs`` go to ``open_events``."""
        from .. import open_events

        inst = instrument_key(instrument)
        if inst not in self.events:
            raise KeyError(f"no cleaned event list for {inst}; made: {sorted(self.events)} "
                           f"(see .status for failures)")
        return open_events(self.events[inst], **kwargs)


class _Run:
    """State of one process_observation call: where things go, how to run tasks."""

    def __init__(self, out: Path, run_kwargs: dict, on_step: Callable | None):
        self.out, self.rk, self.on_step = out, run_kwargs, on_step
        self.parts: list = []
        self.step_parts: list = []
        self.products: ObservationProducts | None = None

    def stage(self, tasks, step: str) -> dict:
        """Run a batch; returns task name -> state."""
        from .batch import run_many

        if not tasks:
            return {}
        names = {t.name for t in tasks}
        for t in tasks:  # dependencies on an earlier batch are met (callers only pass tasks whose inputs were made)
            t.deps = tuple(d for d in t.deps if d in names)
        table = run_many(tasks, **self.rk)
        table["stage"] = step
        self.parts.append(table)
        self.step_parts.append(table)
        return {r.task: r.state for r in table.itertuples()}

    def add_rows(self, rows: list[dict], step: str) -> None:
        import pandas as pd

        if rows:
            table = pd.DataFrame(rows)
            table["stage"] = step
            self.parts.append(table)
            self.step_parts.append(table)

    def end_step(self, step: str) -> None:
        import pandas as pd

        table = pd.concat(self.step_parts, ignore_index=True) if self.step_parts else pd.DataFrame()
        self.step_parts = []
        if self.on_step is not None:
            self.on_step(step, table, self.products)


def _ok(states: dict, *names) -> bool:
    return all(states.get(n) in ("done", "skipped") for n in names)


def copy_product(src: Path, dst: Path, tags: dict) -> str:
    """Copy ``src`` to ``dst`` with a provenance record (tool ``copy``); no-op
    (returns ``"skipped"``) when ``dst`` is already a copy of the current ``src``,
    else ``"done"``. Eager: reads ``src`` (checksum and copy) and writes
    ``dst`` atomically, then its record."""
    from .._version import __version__

    src_fp = fingerprint(src)
    rec = read_record(record_path(dst))
    if dst.exists() and rec and rec.get("inputs") == {str(src.resolve()): src_fp} \
            and rec.get("outputs", {}).get(str(dst.resolve())) == fingerprint(dst):
        return "skipped"
    with atomic_file(dst, overwrite=True) as tmp:
        shutil.copyfile(src, tmp)
    write_record(dst, {"task": f"copy-{dst.stem}", "tool": "copy", "package": None, "params": {},
                       "args": [str(src.resolve()), str(dst.resolve())], "inputs": {str(src.resolve()): src_fp},
                       "outputs": {str(dst.resolve()): fingerprint(dst)}, "versions": {"xcube": __version__},
                       "param_hash": "", "tags": tags})
    return "done"


# ---------------------------------------------------------------------------
# steps


def _setup(run: _Run, odf: Path) -> tuple[OdfSummary, Path]:
    import pandas as pd

    cif = cifbuild(odf, run.out)
    ccf = cif.outputs[0]
    ing = odfingest(odf, run.out, ccf)
    ing.deps = (cif.name,)
    st = run.stage([cif, ing], "events")
    if not _ok(st, cif.name, ing.name):
        table = pd.concat(run.parts, ignore_index=True)
        bad = table[~table["state"].isin(["done", "skipped"])]
        run.end_step("events")
        raise ToolError(f"{odf}: calibration set-up failed: " + "; ".join(
            f"{r.task}: {r.error_class}: {r.message}" for r in bad.itertuples()))
    return parse_odf_summary(ing.text_outputs[0]), ccf


def _chains(run: _Run, summary: OdfSummary, ccf: Path, exposures, version) -> dict:
    """events step: epchain/emchain per EPIC exposure, rgsproc 1-2 per RGS exposure
    (``version``: the SAS release, for epchain)."""
    tasks, chain_of = [], {}
    for e in exposures:
        d = run.out / e.instrument / e.exp_id
        if e.instrument == "pn":
            pair = epchain_pair(summary, ccf, e, d, sas_version=version)
            tasks += pair
            chain_of[e] = {"task": pair[1], "events": pair[1].outputs[0], "oot": pair[0].outputs[0],
                           "names": [t.name for t in pair], "dir": d}
        elif e.instrument in INSTRUMENTS:
            t = emchain(summary, ccf, e, d)
            tasks.append(t)
            chain_of[e] = {"task": t, "events": t.outputs[0], "oot": None, "names": [t.name], "dir": d}
        else:
            rgs = rgs_chain(summary, ccf, e, d)
            tasks += rgs[:2]
            chain_of[e] = {"task": rgs[1], "filter": rgs[2], "names": [t.name for t in rgs[:2]], "dir": d}
    chain_of["_states"] = run.stage(tasks, "events")
    return chain_of


def _chain_events(chain_of: dict) -> dict:
    """``(instrument, exp_id)`` -> the event list of each finished chain."""
    ok = {n for n, st in chain_of["_states"].items() if st in ("done", "skipped")}
    return {(e.instrument, e.exp_id): c["task"].outputs[0] for e, c in chain_of.items()
            if e != "_states" and c["task"].name in ok}


def missing_instruments(summary, instruments, exposures, unscheduled: bool = True) -> list[str]:
    """One message per requested instrument without a science exposure in
    ``exposures`` (what :meth:`OdfSummary.select` kept), naming it, the
    summary file and why: no ``INSTRUMENT`` section (the summary may be cut
    short: odfingest can exit 0 after a truncated write), not configured, or
    only exposures of other types or unscheduled ones left out. Cheap.
    Eager."""
    have = {e.instrument for e in exposures}
    msgs = []
    for inst in instruments:
        if inst in have:
            continue
        code = _ALL_CODES[inst]
        listed = [e for e in summary.exposures if e.instrument == inst]
        if code not in summary.active:
            why = (f"the summary has no INSTRUMENT section for {code} (was odfingest cut short? make it again "
                   "with overwrite, --overwrite)")
        elif not summary.active[code]:
            why = f"{code} was not configured in this observation"
        elif listed:
            kinds = ", ".join(f"{e.exp_id} {e.type}" for e in listed)
            why = f"its exposures are {kinds}" + ("" if unscheduled else " (unscheduled ones left out)")
        else:
            why = f"{code} is configured but lists no exposure"
        msgs.append(f"{summary.obs_id}: requested instrument {inst} has no science exposure in {summary.path}: "
                    f"{why}; it is left out")
    return msgs


def _emanom_allowed(run_notes: list, mos_ccd_states) -> bool:
    if mos_ccd_states is None:
        return False
    have = sas_version()
    if have is not None and have < EMANOM_MIN_SAS:
        msg = (f"emanom needs SAS {'.'.join(map(str, EMANOM_MIN_SAS))} or later, this is SAS "
               f"{'.'.join(map(str, have))}: MOS CCDs in anomalous states are not filtered")
        warnings.warn(msg, stacklevel=3)
        log.warning(msg)
        run_notes.append(msg)
        return False
    return True


def _flares_and_anom(run: _Run, summary, ccf, chain_of, flare_filter, use_emanom,
                     version) -> tuple[dict, dict, set]:
    """clean step, part 1: flare GTIs and emanom per EPIC exposure. Returns
    ``(flare GTI of each exposure, emanom task of each MOS exposure, exposures whose step failed)``."""
    tasks, flare_of, anom_of = [], {}, {}
    for e, c in chain_of.items():
        if e == "_states" or e.instrument not in INSTRUMENTS or not _ok(chain_of["_states"], *c["names"]):
            continue
        d, ev = c["dir"], c["events"]
        if flare_filter == "espfilt":
            f = espfilt(ev, ccf, e, d, summary=summary, ootfile=c["oot"], sas_version=version)
            tasks.append(f)
            flare_of[e] = (f.name, f.outputs[0])
        elif flare_filter == "rate":
            pair = flare_gti(ev, d, e.instrument, stem=f"{e.instrument}{e.exp_id}", odf=summary, ccf=ccf)
            tasks += pair
            flare_of[e] = (pair[1].name, pair[1].outputs[0])
        elif flare_filter is not None:
            raise ValueError(f"flare_filter must be 'espfilt', 'rate' or None, got {flare_filter!r}")
        if e.instrument != "pn" and use_emanom:
            a = emanom(ev, e, d, obs_id=summary.obs_id, odf=summary, ccf=ccf)
            tasks.append(a)
            anom_of[e] = a
    states = run.stage(tasks, "clean")
    failed = {e for e, (name, _) in flare_of.items() if not _ok(states, name)}
    failed |= {e for e, a in anom_of.items() if not _ok(states, a.name)}
    return flare_of, anom_of, failed


def _clean_lists(run: _Run, summary, ccf, chain_of, flare_of, anom_of, failed, energy_band,
                 mos_ccd_states) -> tuple[dict, dict, dict]:
    """clean step, part 2: evselect cleaning per EPIC exposure; rgsproc 3:filter
    per RGS exposure. Returns (cleaned list per exposure, kept CCDs, RGS lists).
    An exposure whose emanom log cannot be read or that keeps no CCD is
    recorded as failed (a status row naming it and why) and left out."""
    tasks, clean_of, ccds, rgs_of, rows = [], {}, {}, {}, []
    for e, c in chain_of.items():
        if e == "_states" or not _ok(chain_of["_states"], *c["names"]):
            continue
        if e.instrument not in INSTRUMENTS:
            tasks.append(c["filter"])
            rgs_of[e] = c["filter"]
            continue
        if e in failed:
            log.warning("%s %s %s: left out (a processing step failed, see status)", summary.obs_id,
                        e.instrument, e.exp_id)
            continue
        name = f"evselect-clean-{summary.obs_id}-{e.code}{e.exp_id}"
        tags = {"obsid": summary.obs_id, "instrument": e.instrument, "exposure": e.exp_id, "step": "clean"}
        keep = None
        gti = flare_of[e][1] if e in flare_of else None
        try:
            if e in anom_of:
                log_file = anom_of[e].text_outputs[0]
                try:
                    states = parse_emanom(log_file)
                except (OSError, ValueError) as exc:
                    raise ValueError(f"cannot read the CCD states of emanom's log: {exc}") from None
                keep = accepted_ccds(states, mos_ccd_states)
                ccds[(e.instrument, e.exp_id)] = keep
                if not keep:
                    raise ValueError(f"no CCD left to select: emanom states {dict(sorted(states.items()))} "
                                     f"({log_file}), kept states {list(mos_ccd_states)}")
            cleaned = c["dir"] / f"P{summary.obs_id}{e.code}{e.exp_id}_clean.fits"
            # evselect runs in the cleaned list's directory (evselect_events): a GTI path with a space is named there
            expr = cleaning_expression(e.instrument, energy_band=energy_band, gti=gti, ccds=keep,
                                       cwd=cleaned.parent)
        except ValueError as exc:
            msg = f"{summary.obs_id} {e.instrument} {e.exp_id}: {exc}"
            log.warning("%s; exposure left out", msg)
            rows.append({"task": name, "obsid": summary.obs_id, "tool": "evselect", "state": "failed",
                         "wall_time": 0.0, "error_class": "ValueError", "message": msg, "outputs": [], "tags": tags})
            continue
        t = evselect_events(c["events"], cleaned, expr, name=name,
                            inputs=[gti] if gti else (), odf=summary, ccf=ccf, tags=tags)
        tasks.append(t)
        clean_of[e] = t
    states = run.stage(tasks, "clean")
    run.add_rows(rows, "clean")
    done = {(e.instrument, e.exp_id): t.outputs[0] for e, t in clean_of.items() if _ok(states, t.name)}
    rgs = {(e.instrument, e.exp_id): t.outputs[0] for e, t in rgs_of.items() if _ok(states, t.name)}
    return done, ccds, rgs


def _merge(run: _Run, summary, ccf, insts, exposures_done) -> dict:
    """clean step, part 3: one event list per EPIC instrument (merge, or a copy of the only one)."""
    tasks, events, rows = [], {}, []
    for inst in insts:
        if inst not in INSTRUMENTS:
            continue
        files = [exposures_done[k] for k in sorted(exposures_done) if k[0] == inst]
        if not files:
            continue
        final = run.out / f"P{summary.obs_id}{INSTRUMENTS[inst][0]}_clean.fits"
        tags = {"obsid": summary.obs_id, "instrument": inst, "step": "merge"}
        if len(files) == 1:
            state = copy_product(Path(files[0]), final, dict(tags, step="copy"))
            rows.append({"task": f"copy-{final.stem}", "obsid": summary.obs_id, "tool": "copy", "state": state,
                         "wall_time": 0.0, "outputs": [str(final)], "tags": dict(tags, step="copy")})
        else:
            tasks += merge_exposures(files, final, tags=tags, odf=summary, ccf=ccf)
        events[inst] = final
    states = run.stage(tasks, "clean")
    run.add_rows(rows, "clean")
    for t in tasks:
        if not _ok(states, t.name):
            events.pop(t.tags.get("instrument"), None)
    return events


def _attitude(out: Path) -> Path | None:
    hits = sorted(out.glob("*/*/P*OBX000ATTTSR0000.FIT"))
    return hits[0] if hits else None


def _images(run: _Run, summary, ccf, events, attitude, bands, grid) -> dict:
    if not events:
        return {}
    if attitude is None:
        raise ToolError(f"{summary.obs_id}: no attitude file (P*OBX000ATTTSR0000.FIT) under {run.out}; "
                        "the events step makes it")
    tasks, products = image_tasks(events, attitude, ccf, run.out / "images", obs_id=summary.obs_id, bands=bands,
                                  grid=grid, odf=summary.path)
    states = run.stage(tasks, "images")
    ok = {t.outputs[0] for t in tasks if _ok(states, t.name)}
    return {k: v for k, v in products.items() if v["image"] in ok and v["expmap"] in ok}


def _spectra(run: _Run, summary, ccf, events, source, radius, bkg_radii, group_min) -> dict:
    tasks, made = [], {}
    for inst, ev in sorted(events.items()):
        ra, dec = source if source is not None else (None, None)
        src, bkg = source_regions(ev, ra, dec, radius_arcsec=radius, background_arcsec=bkg_radii)
        stem = f"P{summary.obs_id}{INSTRUMENTS[inst][0]}"
        ts, files = spectrum_tasks(ev, inst, run.out / "spectra", ccf, source=src, background=bkg, stem=stem,
                                   obs_id=summary.obs_id, group_min=group_min, odf=summary.path)
        tasks += ts
        made[inst] = (ts, dict(files, source_region=src, background_region=bkg))
    states = run.stage(tasks, "spectra")
    return {inst: files for inst, (ts, files) in made.items() if _ok(states, *[t.name for t in ts])}


def _finish(run: _Run, products: ObservationProducts) -> ObservationProducts:
    import pandas as pd

    status = pd.concat(run.parts, ignore_index=True) if run.parts else pd.DataFrame()
    flat = status.copy()
    for col in ("outputs", "tags"):
        if col in flat:
            flat[col] = flat[col].map(lambda v: ";".join(v) if isinstance(v, list) else
                                      ";".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else v)
    write_table(run.out / "status.csv", flat)
    products.status = status
    return products


def _remove_if_empty(root: Path) -> None:
    """Remove ``root`` when it holds no file (only empty directories, such as
    ``logs/`` made before the first task). Eager."""
    import os

    if any(files for _, _, files in os.walk(root)):
        return
    shutil.rmtree(root, ignore_errors=True)


def process_observation(odf_dir, out_dir, instruments=("pn", "mos1", "mos2"), *, steps=("events", "clean"),
                        client=None, energy_band=None, flare_filter: str | None = "espfilt",
                        mos_ccd_states: Sequence[str] | None = ("G", "I", "U"), unscheduled: bool = True,
                        image_bands=IMAGE_BANDS, image_grid=IMAGE_GRID, source=None, source_radius: float = 30.0,
                        background_radii=(60.0, 120.0), group_min: int | None = 25, overwrite: bool = False,
                        timeout: float | None = None, workers: int | None = None, progress: bool = False,
                        on_step: Callable | None = None) -> ObservationProducts:
    """Process one XMM-Newton observation from its ODF (eager; runs SAS).

    Parameters
    ----------
    odf_dir, out_dir : the unpacked ODF; where products go.
    instruments : any of ``pn``, ``mos1``, ``mos2``, ``rgs1``, ``rgs2``.
    steps : which of :data:`STEPS` to run; the steps they need run too (and
        are skipped task by task when up to date).
    energy_band : band [keV] of the cleaned EPIC lists (default pn 0.2-15,
        MOS 0.2-12). ``flare_filter``: ``"espfilt"`` (needs SAS 20 or later:
        ``ValueError`` before anything runs otherwise), ``"rate"`` or None.
    mos_ccd_states : emanom CCD states kept (default G, I, U); None keeps all
        CCDs and skips emanom, which also is skipped (with a warning) below
        SAS 19. ``unscheduled=False`` drops ``U`` exposures.
    image_bands, image_grid : bands [keV] and sky grid (min, max, bin)
        [sky pixels] of the images and exposure maps.
    source : ``(ra, dec)`` [deg] of the spectrum's source (default: the
        target, else the pointing); ``source_radius`` [arcsec] and
        ``background_radii`` (inner, outer) [arcsec] of the annulus around
        it; ``group_min``: counts per group of the grouped spectrum.
    client, workers, progress, overwrite, timeout : as
        :func:`xcube.tools.run_many`.
    on_step : ``f(step, table, products)`` called after each step with that
        step's status rows and the :class:`ObservationProducts` so far (None if
        the set-up failed); ``xcube process`` commits its records this way.

    Working files live in ``<out_dir>/<instrument>/<exp_id>/``, images in
    ``<out_dir>/images/``, spectra in ``<out_dir>/spectra/``, logs in
    ``<out_dir>/logs``, the task table in ``<out_dir>/status.csv``. A failed
    exposure is recorded and left out; the others go on.
    """
    from .process import check_options  # (process imports this module)

    todo = steps_to_run(steps)
    check_options(dict(energy_band=energy_band, image_bands=image_bands, source=source, source_radius=source_radius,
                       background_radii=background_radii, group_min=group_min, timeout=timeout,
                       tool_workers=workers))  # out-of-range options: ValueError before any SAS task runs
    if mos_ccd_states is not None:
        accepted_ccds({}, mos_ccd_states)  # unknown states are an error of the call, not of an exposure
    odf = Path(odf_dir).resolve()
    if not odf.is_dir():
        raise FileNotFoundError(f"{odf}: ODF directory not found")
    out = Path(out_dir).resolve()
    created = next((d for d in reversed([out, *out.parents]) if not d.exists()), None)  # the first new directory
    out.mkdir(parents=True, exist_ok=True)
    try:
        insts = [instrument_key(i) for i in instruments]
        run = _Run(out, dict(client=client, workers=workers, overwrite=overwrite, timeout=timeout, progress=progress,
                             log_dir=out / "logs"), on_step)
        version = sas_version()
        if "clean" in todo and flare_filter == "espfilt":
            espfilt_long_names(version)  # a SAS without espfilt's histogram method: ValueError before any work
        summary, ccf = _setup(run, odf)
        exposures = summary.select(insts, unscheduled=unscheduled)
        if not exposures:
            log.warning("%s: no science exposure of %s in the ODF summary", summary.obs_id, insts)
        products = ObservationProducts(out_dir=out, summary=summary, events={}, exposures={}, ccds={}, status=None,
                                       sas_version=".".join(map(str, version)) if version else None)
        for msg in missing_instruments(summary, insts, exposures, unscheduled):
            log.warning("%s", msg)
            products.notes.append(msg)
        run.products = products
        chain_of = _chains(run, summary, ccf, exposures, version)
        products.chain_events = _chain_events(chain_of)
        products.attitude = _attitude(out)
        run.end_step("events")
        if "clean" in todo:
            use_emanom = _emanom_allowed(products.notes, mos_ccd_states)
            flare_of, anom_of, failed = _flares_and_anom(run, summary, ccf, chain_of, flare_filter, use_emanom,
                                                         version)
            products.exposures, products.ccds, products.rgs = _clean_lists(run, summary, ccf, chain_of, flare_of,
                                                                           anom_of, failed, energy_band, mos_ccd_states)
            products.events = _merge(run, summary, ccf, insts, products.exposures)
            run.end_step("clean")
        if "images" in todo:
            products.images = _images(run, summary, ccf, products.events, products.attitude, image_bands, image_grid)
            run.end_step("images")
        if "spectra" in todo:
            products.spectra = _spectra(run, summary, ccf, products.events, source, source_radius, background_radii,
                                        group_min)
            run.end_step("spectra")
        return _finish(run, products)
    except BaseException:
        if created is not None:  # a run that failed before writing anything leaves no empty --out directory
            _remove_if_empty(created)
        raise

