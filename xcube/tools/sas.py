"""XMM-Newton SAS wrappers: from an ODF to cleaned EPIC event lists.

Every function ``cifbuild``, ``odfingest``, ``epchain``, ``emchain``,
``espfilt``, ``emanom``, ``evselect_*``, ``tabgtigen``, ``eexpmap`` and
``merge`` returns a :class:`~xcube.tools.runner.Task` with the parameters
spelled as in the SAS documentation
(https://xmm-tools.cosmos.esa.int/external/sas/current/doc/<task>/); run it
with :func:`xcube.tools.run` or many of them with :func:`xcube.tools.run_many`.
The RGS chain is in :mod:`xcube.tools.sas_rgs`, images, exposure maps and
spectra with responses in :mod:`xcube.tools.sas_products`.
:func:`process_observation` (:mod:`xcube.tools.sas_pipeline`) chains them:
ODF -> cleaned (flare-filtered, screened, sub-exposures merged) event lists
that ``xcube.open_events`` reads, and on to images, exposure maps and spectra.

The SAS environment: ``SAS_ODF`` points to the ODF directory for
``cifbuild``/``odfingest`` and to the ``*SUM.SAS`` summary afterwards,
``SAS_CCF`` to the ``ccf.cif`` made by ``cifbuild`` (SAS User Guide 2.3,
https://heasarc.gsfc.nasa.gov/docs/xmm/sas/USG/cifbuild.html); the tasks get
them from ``Task.env`` (:func:`sas_env`; every builder takes the
observation's ``odf=``/``ccf=`` or its summary and ``ccf``), never from the
shell, so concurrent observations never share them, and they are part of the
parameter hash: another calibration set re-runs the task.
"""
from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .runner import Task

__all__ = [
    "Exposure",
    "OdfSummary",
    "parse_odf_summary",
    "parse_emanom",
    "accepted_ccds",
    "cifbuild",
    "odfingest",
    "epchain",
    "epchain_pair",
    "emchain",
    "espfilt",
    "emanom",
    "cleaning_expression",
    "evselect_events",
    "evselect_image",
    "evselect_lightcurve",
    "evselect_spectrum",
    "tabgtigen",
    "flare_gti",
    "eexpmap",
    "merge",
    "merge_exposures",
    "instrument_key",
    "pi_range",
    "spectral_grid",
    "summary_name",
    "event_list_name",
    "sas_env",
    "INSTRUMENTS",
    "RGS_INSTRUMENTS",
    "EMANOM_MIN_SAS",
    "ESPFILT_MIN_SAS",
    "espfilt_outputs",
    "espfilt_long_names",
]

log = logging.getLogger("xcube.tools.sas")

DOC = "https://xmm-tools.cosmos.esa.int/external/sas/current/doc"

# name used by xcube -> (ODF instrument code, INSTRUME keyword, mission profile, short name used by ESAS tasks)
INSTRUMENTS = {
    "pn": ("PN", "EPN", "xmm-pn", "pn"),
    "mos1": ("M1", "EMOS1", "xmm-mos1", "mos1"),
    "mos2": ("M2", "EMOS2", "xmm-mos2", "mos2"),
}
# the RGS spectrometers, processed by rgsproc (see xcube.tools.sas_rgs)
RGS_INSTRUMENTS = {
    "rgs1": ("R1", "RGS1", "xmm-rgs1", "rgs1"),
    "rgs2": ("R2", "RGS2", "xmm-rgs2", "rgs2"),
}
_ALL_INSTRUMENTS = {**INSTRUMENTS, **RGS_INSTRUMENTS}
_CODE_TO_NAME = {v[0]: k for k, v in _ALL_INSTRUMENTS.items()}

# emanom exists from SAS 19 on (SAS 19.0 release notes; DAXA checks the same): below it the
# anomalous-CCD filter is skipped with a warning
EMANOM_MIN_SAS = (19, 0, 0)

# espfilt's histogram method (xcube's default) exists from SAS 20 on; SAS 20 names its outputs
# <inst><exp>-gti-<elow>-<ehigh>.fits with withlongnames=yes, SAS 21 and later <inst><exp>-gti.fits
# and have no withlongnames parameter. This rests on DAXA's code only (DavidT3/DAXA,
# daxa/process/xmm/clean.py: one espfilt command per SAS release, "Versions prior to SAS 21 had
# different output file patterns for espfilt"); the SAS 21 espfilt page was not available to check.
ESPFILT_MIN_SAS = (20, 0, 0)
_ESPFILT_SHORT_NAMES_SAS = (21, 0, 0)
# SAS 21.0.0 shipped without epchain's radmonfix constituent: epchain needs runradmonfix=N there
# (https://www.cosmos.esa.int/web/xmm-newton/sas-watchout-2100-error-constituent; DAXA does the same)
_NO_RADMONFIX_SAS = (21, 0, 0)

# default energy limits [keV] of cleaned event lists, as in the SAS thread
# "How to filter EPIC event lists for flaring particle background"
# (https://www.cosmos.esa.int/web/xmm-newton/sas-thread-epic-filterbackground):
# pn PI in [200:15000], MOS PI in [200:12000], written as the thread writes them (inclusive); a band
# given by the user is half-open like every band xcube hands to a SAS task (pi_range)
DEFAULT_ENERGY_BAND = {"pn": (0.2, 15.0), "mos1": (0.2, 12.0), "mos2": (0.2, 12.0)}
DEFAULT_PI_RANGE = {"pn": (200, 15000), "mos1": (200, 12000), "mos2": (200, 12000)}
# event-flag sets of the same thread: #XMMEA_EP (pn), #XMMEA_EM (MOS)
FLAG_SET = {"pn": "#XMMEA_EP", "mos1": "#XMMEA_EM", "mos2": "#XMMEA_EM"}


def instrument_key(name: str) -> str:
    """xcube's name of an XMM-Newton instrument (``pn``, ``mos1``, ``mos2``,
    ``rgs1``, ``rgs2``) from any usual spelling (``EPN``, ``EMOS1``, ``M1``,
    ``R2``, ``RGS2``...). Raises ``ValueError`` for anything else. Eager
    (string look-up)."""
    key = str(name).strip().lower().replace("emos", "mos").replace("epn", "pn")
    key = {"m1": "mos1", "m2": "mos2", "r1": "rgs1", "r2": "rgs2"}.get(key, key)
    if key not in _ALL_INSTRUMENTS:
        raise ValueError(f"unknown XMM-Newton instrument {name!r}; use one of {sorted(_ALL_INSTRUMENTS)}")
    return key


def _inst(name: str) -> str:
    try:
        key = instrument_key(name)
    except ValueError:
        key = None
    if key not in INSTRUMENTS:
        raise ValueError(f"unknown EPIC instrument {name!r}; use one of {sorted(INSTRUMENTS)}")
    return key


# ---------------------------------------------------------------------------
# the ODF summary (*SUM.SAS written by odfingest)


@dataclass(frozen=True)
class Exposure:
    """One EPIC exposure listed in the ODF summary."""

    instrument: str  # xcube name: pn, mos1, mos2, rgs1, rgs2
    exp_id: str  # S003, U002 ...
    scheduled: bool
    type: str  # SCIENCE, CALIBRATE ...
    mode: str  # PrimeFullWindow ...
    filter: str | None = None
    ccd_modes: tuple = ()

    @property
    def code(self) -> str:
        """ODF instrument code (PN, M1, M2, R1, R2)."""
        return _ALL_INSTRUMENTS[self.instrument][0]


@dataclass
class OdfSummary:
    """What ``odfingest`` found in an ODF: observation id, revolution, and per
    instrument whether it was configured and its exposures."""

    path: Path
    obs_id: str
    revolution: str
    target: str
    odf_path: Path | None
    active: dict = field(default_factory=dict)  # ODF code -> bool
    exposures: list = field(default_factory=list)  # list[Exposure] (EPIC and RGS)

    def select(self, instruments=("pn", "mos1", "mos2"), *, unscheduled: bool = True,
               types=("SCIENCE",)) -> list[Exposure]:
        """Exposures of the given instruments, science exposures only by
        default, unscheduled (``U``) ones unless ``unscheduled=False``."""
        names = {instrument_key(i) for i in instruments}
        return [e for e in self.exposures if e.instrument in names and (unscheduled or e.scheduled)
                and (types is None or e.type in types)]


def _value(line: str) -> tuple[str | None, str]:
    """``'KEY = value / comment'`` or ``'value / comment'`` -> (key, value)."""
    body = line.split(" / ", 1)[0].strip()
    if " = " in body:
        k, v = body.split(" = ", 1)
        return k.strip(), v.strip()
    return None, body


def parse_odf_summary(path) -> OdfSummary:
    """Parse the ODF summary file written by ``odfingest`` (``*SUM.SAS``).

    Sections are separated by ``//`` lines; an ``INSTRUMENT`` section names
    the instrument (``M1``, ``M2``, ``PN``...), says whether it was configured
    (``Y``/``N``) and holds ``EXPOSURE`` blocks whose first line gives the
    exposure number and its unique id (``003 [also S003]``: ``S`` scheduled,
    ``U`` unscheduled), followed by ``value / comment`` lines (exposure type,
    ``MODE = ... / Instrument configuration``, ``FILTER = ...``,
    ``DATA_MODE_nn = ... / Data mode for CCD nn``). Eager; small text file.
    """
    p = Path(path)
    try:
        lines = [ln.rstrip("\n") for ln in p.read_text(errors="replace").splitlines()]
    except OSError as exc:
        raise OSError(f"{p}: cannot read the ODF summary ({exc}); run odfingest first") from exc
    info = {}
    odf_path = None
    for ln in lines:
        if ln.startswith("PATH "):
            odf_path = Path(ln.split(None, 1)[1].split(" / ")[0].strip())
        key, comment = ln.split(" / ", 1) if " / " in ln else (ln, "")
        if comment:
            info.setdefault(comment.strip(), key.strip())
    obs_id = info.get("Observation/Slew Identifier") or info.get("Observation Identifier")
    if not obs_id:
        raise ValueError(f"{p}: no 'Observation Identifier' line; is this an odfingest summary (*SUM.SAS)?")
    summary = OdfSummary(path=p, obs_id=obs_id, revolution=info.get("Revolution number", ""),
                         target=info.get("Target Name", ""), odf_path=odf_path)
    inst = None
    i = 0
    while i < len(lines):
        ln = lines[i].strip()
        if ln == "INSTRUMENT" and i + 2 < len(lines):
            inst = lines[i + 1].strip().split(" / ")[0]
            summary.active[inst] = lines[i + 2].strip().upper().startswith("Y")
            i += 3
            continue
        if ln == "EXPOSURE" and inst is not None and i + 1 < len(lines):
            m = re.search(r"\[also\s+([SU]\d+)\]", lines[i + 1])
            if not m:
                raise ValueError(f"{p}:{i + 2}: EXPOSURE block without '[also Snnn]' id: {lines[i + 1]!r}")
            exp_id = m.group(1)
            block = []
            j = i + 2
            while j < len(lines) and lines[j].strip() not in ("EXPOSURE", "INSTRUMENT", "//"):
                block.append(lines[j])
                j += 1
            fields = {}
            ccd = {}
            etype = ""
            for b in block:
                k, v = _value(b)
                comment = b.split(" / ", 1)[1] if " / " in b else ""
                if k and k.startswith("DATA_MODE_"):
                    ccd[int(k[len("DATA_MODE_"):])] = v
                elif k:
                    fields[k] = v
                elif "Exposure Type" in comment:
                    etype = v
            if inst in _CODE_TO_NAME:
                summary.exposures.append(Exposure(
                    instrument=_CODE_TO_NAME[inst], exp_id=exp_id, scheduled=exp_id.startswith("S"), type=etype,
                    mode=fields.get("MODE", ""), filter=fields.get("FILTER"), ccd_modes=tuple(sorted(ccd.items()))))
            i = j
            continue
        i += 1
    return summary


# ---------------------------------------------------------------------------
# emanom output

_ANOM_RE = re.compile(r"CCD:?\s*(\d+)\b.*?Status:?\s*([GIBOU])\b", re.IGNORECASE)
ANOM_STATES = {"G": "good at all energies", "I": "intermediate below 1 keV", "B": "bad below 1 keV",
               "O": "off", "U": "undetermined (too few counts)"}


def parse_emanom(path) -> dict[int, str]:
    """CCD number -> anomalous-state flag (G, I, B, O, U) from an ``emanom``
    log (``mos1S001-anom.log``: one line per CCD with ``CCD: n`` ...
    ``Status: X``; emanom documentation
    https://xmm-tools.cosmos.esa.int/external/sas/current/doc/emanom/node3.html).
    An event file with the ``ANOMFLn`` header keywords (``writekeys=yes``)
    is read as well. Eager: reads the log (or the FITS primary header)."""
    p = Path(path)
    with open(p, "rb") as fh:
        is_fits = fh.read(9) == b"SIMPLE  ="
    if is_fits:
        from astropy.io import fits

        h = fits.getheader(p, 0)
        return {int(k[6:]): str(h[k]).strip().upper() for k in h if re.fullmatch(r"ANOMFL\d+", k)}
    out = {}
    for line in p.read_text(errors="replace").splitlines():
        m = _ANOM_RE.search(line)
        if m:
            out[int(m.group(1))] = m.group(2).upper()
    if not out:
        raise ValueError(f"{p}: no 'CCD: n ... Status: X' lines; is this an emanom log?")
    return out


def accepted_ccds(states: dict, acceptable=("G", "I", "U")) -> list[int]:
    """CCDs whose emanom state is in ``acceptable``. Eager."""
    bad = set(acceptable) - set(ANOM_STATES)
    if bad:
        raise ValueError(f"unknown emanom states {sorted(bad)}; valid: {ANOM_STATES}")
    return sorted(c for c, s in states.items() if s in acceptable)


# ---------------------------------------------------------------------------
# task builders


def _release(sas_version) -> tuple | None:
    """``sas_version`` (a tuple such as ``(21, 0, 0)``), or the release the
    installed SAS reports (:func:`xcube.tools.packages.sas_version`, run once
    and cached) when it is None; None when SAS is not set up."""
    if sas_version is not None:
        return tuple(int(x) for x in sas_version)
    from .packages import sas_version as installed

    return installed()


def espfilt_long_names(sas_version=None) -> bool:
    """Whether espfilt of this SAS release takes ``withlongnames=yes`` and
    names its outputs ``<inst><exp>-gti-<elow>-<ehigh>.fits`` (SAS 20) rather
    than ``<inst><exp>-gti.fits`` (SAS 21 and later, and when SAS is not set
    up). ``sas_version``: e.g. ``(21, 0, 0)``; None reads the installed
    release (eager, cached). Raises ``ValueError`` below SAS 20, whose espfilt
    has no histogram method."""
    release = _release(sas_version)
    if release is None:
        return False
    if release < ESPFILT_MIN_SAS:
        raise ValueError(
            f"espfilt as xcube calls it (method=histogram) needs SAS {'.'.join(map(str, ESPFILT_MIN_SAS))} or "
            f"later, this is SAS {'.'.join(map(str, release))}; use flare_filter='rate' (the SAS-thread rate cut, "
            "sas.flare_gti) or a newer SAS")
    return release < _ESPFILT_SHORT_NAMES_SAS


def sas_env(odf=None, ccf=None) -> dict:
    """``Task.env`` of a SAS task: ``SAS_ODF`` (the ODF directory before
    ``odfingest``, its ``*SUM.SAS`` summary afterwards; an :class:`OdfSummary`
    stands for its file) and ``SAS_CCF`` (the ``ccf.cif``), as absolute
    paths. What is None is left out; the runner never passes the shell's
    values to a SAS task, so a task without them runs without them. Eager
    (paths only)."""
    env = {}
    if odf is not None:
        env["SAS_ODF"] = str(Path(odf.path if isinstance(odf, OdfSummary) else odf).resolve())
    if ccf is not None:
        env["SAS_CCF"] = str(Path(ccf).resolve())
    return env



def cifbuild(odf_dir, out_dir, *, analysisdate: str = "now", name=None, **params) -> Task:
    """``cifbuild``: the calibration index file ``<out_dir>/ccf.cif`` for an
    ODF (needs ``SAS_CCFPATH`` in the environment, as SAS does). Lazy: builds
    the :class:`Task` only; the tool runs when the task is run."""
    out = Path(out_dir).resolve()
    # cifbuild parameters calindexset, analysisdate: SAS USG 2.3.3
    # https://heasarc.gsfc.nasa.gov/docs/xmm/sas/USG/cifbuild.html
    p = {"calindexset": str(out / "ccf.cif"), "analysisdate": analysisdate, **params}
    return Task("cifbuild", p, inputs=[odf_dir], outputs=[out / "ccf.cif"], env=sas_env(odf_dir), workdir=out,
                name=name or "cifbuild", tags={"step": "cifbuild"})


def summary_name(odf_dir) -> str:
    """Canonical name of the odfingest summary of an ODF
    (``rrrr_oooooooooo_SCX00000SUM.SAS``, from the ODF's ``*SUM.ASC``). Eager:
    lists ``odf_dir``."""
    hits = sorted(Path(odf_dir).glob("*SUM.ASC"))
    if not hits:
        raise FileNotFoundError(f"{odf_dir}: no *SUM.ASC file; is this an XMM-Newton ODF directory "
                                "(unpacked *.tar)?")
    return hits[0].name[: -len("ASC")] + "SAS"


def odfingest(odf_dir, out_dir, ccf, *, name=None, **params) -> Task:
    """``odfingest``: the ODF summary
    ``<out_dir>/<rev>_<obsid>_SCX00000SUM.SAS``. Lazy: builds the :class:`Task`
    only (the ODF directory is listed for the summary's name); the tool runs
    when the task is run."""
    out = Path(out_dir).resolve()
    # odfdir, withodfdir, outdir: odfingest parameters
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/odfingest/node14.html
    p = {"odfdir": str(Path(odf_dir).resolve()), "withodfdir": True, "outdir": str(out), **params}
    return Task("odfingest", p, inputs=[odf_dir, ccf], text_outputs=[out / summary_name(odf_dir)],
                env=sas_env(odf_dir, ccf), workdir=out, name=name or "odfingest", tags={"step": "odfingest"})


def event_list_name(obs_id: str, exposure: Exposure, oot: bool = False) -> str:
    """Name of the event list written by epchain/emchain: ``P<obsid><II><Ennn>
    {PI,OO,MI}EVLI0000.FIT`` (epchain/emchain documentation, Output files).
    Eager (string formatting)."""
    kind = ("OO" if oot else "PI") if exposure.instrument == "pn" else "MI"
    return f"P{obs_id}{exposure.code}{exposure.exp_id}{kind}EVLI0000.FIT"


def epchain(summary: OdfSummary, ccf, exposure: Exposure, out_dir, *, oot: bool = False, ccds=None,
            deps: Sequence[str] = (), sas_version=None, **params) -> Task:
    """``epchain`` for one pn exposure, in ``out_dir``.

    ``oot=True`` is the out-of-time run (``withoutoftime=yes``), keeping the
    raw intermediate files (``keepintermediate=raw``) for the normal run,
    which then skips the steps already done (``runatthkgen=N runepframes=N
    runbadpixfind=N runbadpix=N``), as the epchain documentation recommends
    (https://xmm-tools.cosmos.esa.int/external/sas/current/doc/epchain/index.html).
    Under SAS 21.0.0 both runs get ``runradmonfix=no`` (that release lacks
    the radmonfix constituent; SAS watch-out "sas-watchout-2100-error-constituent").
    ``sas_version``: e.g. ``(21, 0, 0)``; None reads the installed release
    (eager, runs ``sasversion`` once, cached).

    Only builds the :class:`Task` (nothing runs until ``run`` or
    ``run_many`` runs it); ``exposure`` is the ODF summary's
    :class:`Exposure` entry, not a duration in s.
    """
    if exposure.instrument != "pn":
        raise ValueError(f"epchain processes pn exposures, got {exposure.instrument} {exposure.exp_id}")
    out = Path(out_dir).resolve()
    # odfaccess=odf exposure=<nnn> schedule=<S|U>: epchain examples
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/epchain/node10.html
    p = {"odf": str(summary.path.resolve()), "odfaccess": "odf", "exposure": exposure.exp_id[1:],
         "schedule": exposure.exp_id[0], "ccds": list(ccds) if ccds else None}
    if oot:
        p.update(withoutoftime=True, keepintermediate="raw", runbackground=False)
        outputs = [out / event_list_name(summary.obs_id, exposure, oot=True), out / _attitude(summary.obs_id)]
    else:
        p.update(runatthkgen=False, runepframes=False, runbadpixfind=False, runbadpix=False)
        outputs = [out / event_list_name(summary.obs_id, exposure)]
    if _release(sas_version) == _NO_RADMONFIX_SAS:
        p["runradmonfix"] = False
    p.update(params)
    kind = "oot" if oot else "events"
    return Task("epchain", p, inputs=[summary.path, ccf], outputs=outputs, env=sas_env(summary.path, ccf),
                workdir=out, deps=deps, name=f"epchain-{kind}-{summary.obs_id}-{exposure.code}{exposure.exp_id}",
                error_lines_fatal=False, tags=_tags(summary, exposure, "epchain-" + kind))


def epchain_pair(summary: OdfSummary, ccf, exposure: Exposure, out_dir, *, deps=(), sas_version=None,
                 **params) -> list[Task]:
    """The two epchain runs of a pn exposure: out-of-time first, then the
    normal run (depending on it, reusing its intermediate files). Returns
    a list of length 2, the two :class:`Task` objects in that order; nothing
    runs here. ``exposure`` is the ODF summary's :class:`Exposure` entry,
    not a duration in s. ``sas_version``: as :func:`epchain`. Lazy."""
    sas_version = _release(sas_version)
    first = epchain(summary, ccf, exposure, out_dir, oot=True, deps=deps, sas_version=sas_version, **params)
    second = epchain(summary, ccf, exposure, out_dir, oot=False, deps=(first.name,), sas_version=sas_version,
                     **params)
    second.inputs = list(second.inputs) + [first.outputs[-1]]  # attitude file made by the OOT run
    return [first, second]


def _attitude(obs_id: str) -> str:
    return f"P{obs_id}OBX000ATTTSR0000.FIT"


def _tags(summary: OdfSummary, exposure: Exposure | None, step: str) -> dict:
    t = {"obsid": summary.obs_id, "step": step}
    if exposure is not None:
        t.update(instrument=exposure.instrument, exposure=exposure.exp_id)
    return t


def emchain(summary: OdfSummary, ccf, exposure: Exposure, out_dir, *, deps=(), **params) -> Task:
    """``emchain`` for one MOS sub-exposure (one call per exposure, so they run
    in parallel and fail independently). Only builds the :class:`Task`
    (nothing runs until ``run`` or ``run_many`` runs it); ``exposure`` is
    the ODF summary's :class:`Exposure` entry, not a duration in s. Lazy."""
    if exposure.instrument not in ("mos1", "mos2"):
        raise ValueError(f"emchain processes MOS exposures, got {exposure.instrument} {exposure.exp_id}")
    out = Path(out_dir).resolve()
    # instruments, exposures, odf: emchain parameters
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/emchain/node11.html
    p = {"odf": str(summary.path.resolve()), "instruments": exposure.code, "exposures": exposure.exp_id, **params}
    return Task("emchain", p, inputs=[summary.path, ccf], outputs=[out / event_list_name(summary.obs_id, exposure)],
                env=sas_env(summary.path, ccf), workdir=out, deps=deps,
                name=f"emchain-{summary.obs_id}-{exposure.code}{exposure.exp_id}",
                error_lines_fatal=False, tags=_tags(summary, exposure, "emchain"))


def espfilt_outputs(instrument: str, exp_id: str, out_dir, elow: int = 2500, ehigh: int = 8500, *,
                    sas_version=None, long_names: bool | None = None) -> dict:
    """Files espfilt writes in ``out_dir``: ``{"gti", "allevc", "hist"}`` ->
    path. SAS 21 and later: ``<inst><exp>-gti.fits`` (GTI), ``-allevc.fits``
    (filtered events), ``-hist.qdp`` (rate histogram); SAS 20 (with
    ``withlongnames=yes``): ``<inst><exp>-gti-<elow>-<ehigh>.fits`` and so
    on. ``long_names``: True for the SAS 20 names, False for the later
    ones; None (default) decides from ``sas_version`` (as
    :func:`espfilt_long_names`; not used when ``long_names`` is given). Eager
    (paths only; ``elow``, ``ehigh`` [eV])."""
    short = INSTRUMENTS[_inst(instrument)][3]
    out = Path(out_dir).resolve()
    if long_names is None:
        long_names = espfilt_long_names(sas_version)
    sfx = f"-{elow}-{ehigh}" if long_names else ""
    return {k: out / f"{short}{exp_id}-{k}{sfx}.{'qdp' if k == 'hist' else 'fits'}"
            for k in ("gti", "allevc", "hist")}


def espfilt(eventfile, ccf, exposure: Exposure, out_dir, *, summary: OdfSummary | None = None, method="histogram",
            elow: int = 2500, ehigh: int = 8500, smooth: int = 51, binsize: int = 60, ratio: float = 1.2,
            rangescale: float | None = None, allowsigma: float = 3.0, limits=(0.1, 6.5), ootfile=None,
            deps=(), sas_version=None, **params) -> Task:
    """``espfilt``: soft-proton flare GTI of one exposure (histogram method by
    default). ``rangescale`` defaults to 15 for pn and 6 for MOS. ``elow``,
    ``ehigh`` [eV] bound the light curve's energy band and ``binsize`` [s]
    is its bin (espfilt's parameters, passed as given). The outputs: the
    GTI file, the filtered events and the rate histogram
    (:func:`espfilt_outputs`). The command depends on the SAS release
    (``sas_version``, e.g. ``(21, 0, 0)``; None reads the installed one, eager
    and cached): SAS 20 gets ``withlongnames=yes``, SAS 21 and later have no
    such parameter; below SAS 20 ``ValueError`` (no histogram method; use
    :func:`flare_gti`). Only builds the :class:`Task` (nothing runs
    until ``run`` or ``run_many`` runs it); ``exposure`` is the ODF
    summary's :class:`Exposure` entry, not a duration in s."""
    inst = exposure.instrument
    long_names = espfilt_long_names(sas_version)  # (the release, worked out once)
    outs = espfilt_outputs(inst, exposure.exp_id, out_dir, elow, ehigh, long_names=long_names)
    if rangescale is None:
        rangescale = 15.0 if inst == "pn" else 6.0
    # parameter names: espfilt documentation and ESAS cookbook
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/espfilt/espfilt.html
    # https://heasarc.gsfc.nasa.gov/docs/xmm/esas/cookbook/node92.html
    p = {"eventfile": str(Path(eventfile).resolve()), "method": method, "withsmoothing": True, "smooth": smooth,
         "withbinning": True, "binsize": binsize, "ratio": ratio,
         "withlongnames": True if long_names else None,  # None: not passed (SAS 21 and later, see ESPFILT_MIN_SAS)
         "elow": elow, "ehigh": ehigh, "rangescale": rangescale, "allowsigma": allowsigma, "limits": list(limits),
         "keepinterfiles": False}
    inputs = [eventfile, ccf]
    if ootfile is not None:
        p.update(withoot=True, ootfile=str(Path(ootfile).resolve()))
        inputs.append(ootfile)
    p.update(params)
    obs = summary.obs_id if summary else ""
    env = sas_env(summary, ccf)
    return Task("espfilt", p, inputs=inputs, outputs=[outs["gti"], outs["allevc"]], text_outputs=[outs["hist"]],
                env=env, workdir=Path(out_dir).resolve(), deps=deps,
                name=f"espfilt-{obs}-{exposure.code}{exposure.exp_id}",
                tags={"obsid": obs, "instrument": inst, "exposure": exposure.exp_id, "step": "espfilt"})


def emanom(eventfile, exposure: Exposure, out_dir, *, obs_id: str = "", odf=None, ccf=None, deps=(),
           **params) -> Task:
    """``emanom``: anomalous-state check of the MOS CCDs; writes
    ``<mos1|mos2><exp>-anom.log`` in ``out_dir`` (parse with :func:`parse_emanom`).
    ``odf``, ``ccf``: the observation's ``SAS_ODF`` and ``SAS_CCF`` (:func:`sas_env`).

    ``writekeys=no``: emanom would otherwise write ANOMFLn keywords into the
    input event list, changing it after the chain made it (and so every
    checksum downstream). Lazy: builds the :class:`Task` only; the tool runs
    when the task is run."""
    short = INSTRUMENTS[exposure.instrument][3]
    out = Path(out_dir).resolve()
    # eventfile, writekeys, writelog, keepcorner: ESAS cookbook, emanom
    # https://heasarc.gsfc.nasa.gov/docs/xmm/esas/cookbook/node89.html
    p = {"eventfile": str(Path(eventfile).resolve()), "writekeys": False, "writelog": True, "keepcorner": False,
         **params}
    return Task("emanom", p, inputs=[eventfile, *([ccf] if ccf is not None else [])],
                text_outputs=[out / f"{short}{exposure.exp_id}-anom.log"], env=sas_env(odf, ccf), workdir=out,
                deps=deps, name=f"emanom-{obs_id}-{exposure.code}{exposure.exp_id}",
                tags={"obsid": obs_id, "instrument": exposure.instrument, "exposure": exposure.exp_id,
                      "step": "emanom"})


def pi_range(instrument: str, energy_band) -> tuple[int, int]:
    """The first and last PI channel of an EPIC camera in ``energy_band``
    ``(emin, emax)`` [keV], half-open ``[emin, emax)`` as in
    ``xcube.select(energy_band=...)`` (``(0.5, 2.0)`` -> ``(500, 1999)``, for
    evselect's inclusive ``PI in [500:1999]``), through its mission profile,
    so that adjacent bands share no channel. Eager (scalar arithmetic)."""
    from ..missions import get_profile

    prof = get_profile(INSTRUMENTS[_inst(instrument)][2])
    # PI is an integer column: [lo, hi) holds the channels ceil(lo) .. ceil(hi) - 1 (edges rounded to
    # 1e-6 channel first, so 0.3 keV is channel 300 and not 299.99999999999994)
    lo, hi = (math.ceil(round(float(v), 6)) for v in prof.pi_for_energy(list(energy_band)))
    if hi <= lo:
        raise ValueError(f"{instrument}: energy band {tuple(energy_band)} keV holds no PI channel")
    return lo, hi - 1


# characters a file name inside a selectlib expression may hold: the SAS docs at hand (selectlib,
# evselect, the SAS threads) show no quoting for gti(<file>,TIME); ',' and ')' end the argument,
# ':' starts a block name (gti(f.fits:STDGTI,TIME)), and spaces, quotes, brackets and operator
# characters are not documented to be part of a name
_EXPRESSION_PATH = re.compile(r"[A-Za-z0-9_./+~-]+")


def _expression_path(path, cwd=None) -> str:
    """The absolute path of a file named inside an evselect expression, else
    its path relative to the task's working directory ``cwd`` (the tool
    reads it there), or ``ValueError`` naming it when both hold a character
    the expression cannot hold unquoted. Eager (a path)."""
    p = str(Path(path).resolve())
    if not _EXPRESSION_PATH.fullmatch(p) and cwd is not None:
        rel = os.path.relpath(p, Path(cwd).resolve())
        if _EXPRESSION_PATH.fullmatch(rel):
            return rel
    if not _EXPRESSION_PATH.fullmatch(p):
        bad = sorted({c for c in p if not _EXPRESSION_PATH.fullmatch(c)})
        raise ValueError(
            f"{p}: this GTI file goes into an evselect expression (gti(<file>,TIME)), which cannot hold "
            f"{' '.join(repr(c) for c in bad)} in a file name (selectlib documents no quoting for it); use an output "
            "directory whose path has only letters, digits and _ . / + ~ -")
    return p


def cleaning_expression(instrument: str, *, energy_band=None, gti=None, ccds=None, extra: str | None = None,
                        flags: bool = True, cwd=None) -> str:
    """evselect expression of a cleaned event list: the event-flag set
    (``#XMMEA_EP``/``#XMMEA_EM``), the instrument's default screening from
    its mission profile (pn ``PATTERN <= 4 && FLAG == 0``, MOS
    ``PATTERN <= 12 && FLAG == 0``), the energy band ``[emin, emax)`` as
    ``PI in [lo:hi]`` (``energy_band`` half-open through :func:`pi_range`;
    default the SAS thread's pn ``[200:15000]``, MOS ``[200:12000]``), a GTI
    file (``gti(<file>,TIME)``: its absolute path, or its path relative to
    ``cwd``, the task's working directory, when only that one is a plain
    name) and the accepted CCDs. Eager (a string; ``energy_band`` [keV]).
    Raises ``ValueError`` for a GTI path holding, both ways, a character that
    an unquoted selectlib file name cannot hold (space,
    ``,()[]:'"&|#!<>=*;``...)."""
    from ..missions import get_profile

    inst = _inst(instrument)
    prof = get_profile(INSTRUMENTS[inst][2])
    parts = []
    if flags:
        parts.append(FLAG_SET[inst])
    screening = prof.screening_for()  # imaging mode (the profile's default screening)
    if screening:
        parts.append(f"({screening})")
    lo, hi = pi_range(inst, energy_band) if energy_band is not None else DEFAULT_PI_RANGE[inst]
    parts.append(f"(PI in [{lo}:{hi}])")
    if gti is not None:
        # gti(<set>,TIME): selectlib GTI filter
        # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/selectlib/index.html
        parts.append(f"gti({_expression_path(gti, cwd)},TIME)")
    if ccds is not None:
        ccds = sorted(int(c) for c in ccds)
        if not ccds:
            raise ValueError(f"{instrument}: no CCD left to select")
        parts.append("(" + " || ".join(f"CCDNR == {c}" for c in ccds) + ")")
    if extra:
        parts.append(f"({extra})")
    return " && ".join(parts)


def evselect_events(table, filteredset, expression: str, *, name=None, deps=(), inputs=(), tags=None, odf=None,
                    ccf=None, **params) -> Task:
    """``evselect`` writing a filtered event list (all extensions kept, exposure updated).
    ``odf``, ``ccf``: the observation's ``SAS_ODF`` and ``SAS_CCF``
    (:func:`sas_env`). Lazy: builds the :class:`Task` only; the tool runs when
    the task is run."""
    out = Path(filteredset).resolve()
    # withfilteredset, filteredset, expression, filtertype, keepfilteroutput, updateexposure, filterexposure:
    # evselect parameters https://xmm-tools.cosmos.esa.int/external/sas/current/doc/evselect/node16.html
    p = {"table": str(Path(table).resolve()), "withfilteredset": True, "filteredset": str(out),
         "filtertype": "expression", "expression": expression, "keepfilteroutput": True, "destruct": True,
         "updateexposure": True, "filterexposure": True, **params}
    return Task("evselect", p, inputs=[table, *inputs], outputs=[out], env=sas_env(odf, ccf), workdir=out.parent,
                deps=deps, name=name or f"evselect-{out.stem}", tags=tags or {"step": "evselect"})


def evselect_image(table, imageset, *, expression="true", bin_size: float = 80.0, xcolumn="X", ycolumn="Y",
                   name=None, deps=(), inputs=(), tags=None, odf=None, ccf=None, **params) -> Task:
    """``evselect`` sky image with ``bin_size`` sky pixels (80 = 4 arcsec) per
    image pixel; pass ``withxranges``/``ximagemin``/``ximagemax`` (and ``y``)
    for a fixed grid (see :func:`xcube.tools.sas_products.band_image`). The
    task writes one FITS image to ``imageset``. Only builds the :class:`Task`
    (nothing runs until it is run). Lazy."""
    out = Path(imageset).resolve()
    # withimageset, imageset, xcolumn, ycolumn, imagebinning=binSize, ximagebinsize, yimagebinsize:
    # evselect parameters https://xmm-tools.cosmos.esa.int/external/sas/current/doc/evselect/node16.html
    p = {"table": str(Path(table).resolve()), "withimageset": True, "imageset": str(out), "xcolumn": xcolumn,
         "ycolumn": ycolumn, "imagebinning": "binSize", "ximagebinsize": bin_size, "yimagebinsize": bin_size,
         "filtertype": "expression", "expression": expression, "writedss": True, **params}
    return Task("evselect", p, inputs=[table, *inputs], outputs=[out], env=sas_env(odf, ccf), workdir=out.parent,
                deps=deps, name=name or f"evselect-image-{out.stem}", tags=tags or {"step": "image"})


def evselect_lightcurve(table, rateset, *, time_bin: float, expression="true", name=None, deps=(), inputs=(),
                        odf=None, ccf=None, **params) -> Task:
    """``evselect`` light curve (RATE extension) with ``time_bin`` seconds per
    bin. Lazy: builds the :class:`Task` only; the tool runs when the task is
    run."""
    out = Path(rateset).resolve()
    # withrateset, rateset, timebinsize, maketimecolumn, makeratecolumn: evselect parameters
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/evselect/node16.html
    p = {"table": str(Path(table).resolve()), "withrateset": True, "rateset": str(out), "timebinsize": time_bin,
         "maketimecolumn": True, "makeratecolumn": True, "filtertype": "expression", "expression": expression,
         **params}
    return Task("evselect", p, inputs=[table, *inputs], outputs=[out], env=sas_env(odf, ccf), workdir=out.parent,
                deps=deps, name=name or f"evselect-lc-{out.stem}", tags={"step": "lightcurve"})


def spectral_grid(instrument: str) -> tuple[int, int, int]:
    """``(specchannelmin, specchannelmax, spectralbinsize)`` of the
    instrument's standard responses, from its mission profile (pn
    ``(0, 20479, 5)``, MOS ``(0, 11999, 15)``). Eager (profile look-up)."""
    from ..missions import get_profile

    grid = get_profile(INSTRUMENTS[_inst(instrument)][2]).spectral_grid
    if grid is None:  # pragma: no cover - every EPIC profile has one
        raise ValueError(f"{instrument}: the mission profile has no standard spectral grid")
    return grid


def evselect_spectrum(table, spectrumset, instrument: str, *, expression="true", name=None, deps=(), inputs=(),
                      tags=None, odf=None, ccf=None, **params) -> Task:
    """``evselect`` PI spectrum on the instrument's standard channel grid
    (:func:`spectral_grid`: pn PI 0-20479 in channels of 5, MOS PI 0-11999
    in channels of 15; SAS threads "pn/MOS spectrum and response files",
    https://www.cosmos.esa.int/web/xmm-newton/sas-thread-pn-spectrum).
    Region shapes in ``expression`` (``((X,Y) IN circle(x,y,r))``) are written
    to the spectrum's data subspace, which ``backscale`` reads. Lazy: builds
    the :class:`Task` only; the tool runs when the task is run."""
    inst = _inst(instrument)
    lo, hi, step = spectral_grid(inst)
    out = Path(spectrumset).resolve()
    # withspectrumset, spectrumset, energycolumn, spectralbinsize, withspecranges, specchannelmin,
    # specchannelmax: evselect parameters https://xmm-tools.cosmos.esa.int/external/sas/current/doc/evselect/
    p = {"table": str(Path(table).resolve()), "withspectrumset": True, "spectrumset": str(out),
         "energycolumn": "PI", "spectralbinsize": step, "withspecranges": True, "specchannelmin": lo,
         "specchannelmax": hi, "filtertype": "expression", "expression": expression, "writedss": True, **params}
    return Task("evselect", p, inputs=[table, *inputs], outputs=[out], env=sas_env(odf, ccf), workdir=out.parent,
                deps=deps, name=name or f"evselect-spec-{out.stem}",
                tags=tags or {"step": "spectrum", "instrument": inst})


def tabgtigen(table, gtiset, expression: str, *, name=None, deps=(), odf=None, ccf=None, **params) -> Task:
    """``tabgtigen``: GTI file from a rate table and an expression (e.g.
    ``RATE<=0.4``). Lazy: builds the :class:`Task` only; the tool runs when the
    task is run."""
    out = Path(gtiset).resolve()
    # table, expression, gtiset: tabgtigen parameters
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/tabgtigen/node4.html
    p = {"table": str(Path(table).resolve()), "expression": expression, "gtiset": str(out), **params}
    return Task("tabgtigen", p, inputs=[table], outputs=[out], env=sas_env(odf, ccf), workdir=out.parent,
                deps=deps, name=name or f"tabgtigen-{out.stem}", tags={"step": "tabgtigen"})


# rate thresholds of the filterbackground SAS thread [counts/s, 100 s bins, >10 keV, single events]
FLARE_RATE = {"pn": 0.4, "mos1": 0.35, "mos2": 0.35}


def flare_gti(eventfile, out_dir, instrument: str, *, threshold: float | None = None, time_bin: float = 100.0,
              stem: str | None = None, deps=(), odf=None, ccf=None) -> list[Task]:
    """The SAS-thread flare filter as two tasks: a >10 keV single-event rate
    curve (``evselect``), then ``tabgtigen`` with ``RATE<=threshold`` (pn 0.4,
    MOS 0.35 counts/s); an alternative to :func:`espfilt`. Lazy: builds the two
    tasks only; ``time_bin`` [s], ``threshold`` [count/s]."""
    inst = _inst(instrument)
    out = Path(out_dir).resolve()
    stem = stem or Path(eventfile).stem
    # the thread's bands, strict at both ends: pn (PI>10000&&PI<12000), MOS (PI>10000)
    lo = {"pn": "(PI > 10000 && PI < 12000)", "mos1": "(PI > 10000)", "mos2": "(PI > 10000)"}[inst]
    expr = f"{FLAG_SET[inst]} && {lo} && (PATTERN == 0)"
    rate = evselect_lightcurve(eventfile, out / f"{stem}-flarerate.fits", time_bin=time_bin, expression=expr,
                               deps=deps, name=f"evselect-flarerate-{stem}", odf=odf, ccf=ccf)
    gti = tabgtigen(rate.outputs[0], out / f"{stem}-flaregti.fits",
                    f"RATE<={threshold if threshold is not None else FLARE_RATE[inst]}", deps=(rate.name,),
                    name=f"tabgtigen-{stem}", odf=odf, ccf=ccf)
    return [rate, gti]


def eexpmap(imageset, attitudeset, eventset, expimageset, ccf, *, energy_band=(0.5, 2.0), instrument="pn",
            name=None, deps=(), tags=None, odf=None, **params) -> Task:
    """``eexpmap``: exposure map [s] on the grid of ``imageset`` for
    ``energy_band`` [keV], with vignetting, in sky coordinates; ``pimin``,
    ``pimax`` are the band's first and last PI channel (:func:`pi_range`,
    half-open band: ``(0.5, 2.0)`` -> 500, 1999), as in the band's image.
    Lazy: builds the :class:`Task` only; the tool runs when the task is run."""
    out = Path(expimageset).resolve()
    lo, hi = pi_range(instrument, energy_band)
    # imageset, attitudeset, eventset, expimageset, withdetcoords, withvignetting, usefastpixelization,
    # attrebin, pimin, pimax: eexpmap parameters https://xmm-tools.cosmos.esa.int/external/sas/current/doc/eexpmap/
    p = {"imageset": str(Path(imageset).resolve()), "attitudeset": str(Path(attitudeset).resolve()),
         "eventset": str(Path(eventset).resolve()), "expimageset": str(out), "withdetcoords": False,
         "withvignetting": True, "usefastpixelization": False, "attrebin": 4.0, "pimin": lo, "pimax": hi, **params}
    return Task("eexpmap", p, inputs=[imageset, attitudeset, eventset, ccf], outputs=[out], workdir=out.parent,
                env=sas_env(odf, ccf), deps=deps, name=name or f"eexpmap-{out.stem}",
                tags=tags or {"step": "eexpmap"})


def merge(set1, set2, outset, *, name=None, deps=(), tags=None, odf=None, ccf=None, **params) -> Task:
    """SAS ``merge`` of two event lists of the same instrument. Lazy: builds
    the :class:`Task` only; the tool runs when the task is run."""
    out = Path(outset).resolve()
    # set1, set2, outset: merge parameters
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/merge/index.html
    p = {"set1": str(Path(set1).resolve()), "set2": str(Path(set2).resolve()), "outset": str(out), **params}
    return Task("merge", p, inputs=[set1, set2], outputs=[out], env=sas_env(odf, ccf), workdir=out.parent,
                deps=deps, name=name or f"merge-{out.stem}", tags=tags or {"step": "merge"})


def merge_exposures(eventfiles: Sequence, outset, *, deps_of=None, tags=None, odf=None, ccf=None) -> list[Task]:
    """Tasks merging 2 or more sub-exposure event lists into ``outset``
    (a chain of pairwise ``merge`` calls through ``.partN`` files).
    ``deps_of`` maps an input file to the name of the task making it. Lazy:
    builds the tasks only; nothing runs here."""
    files = [Path(f).resolve() for f in eventfiles]
    if len(files) < 2:
        raise ValueError("merge_exposures needs at least two event lists; a single one needs no merge")
    out = Path(outset).resolve()
    deps_of = deps_of or {}
    tasks = []
    current = files[0]
    for k, f in enumerate(files[1:], start=1):
        target = out if k == len(files) - 1 else out.with_name(f"{out.stem}.part{k}{out.suffix}")
        deps = [deps_of[str(x)] for x in (current, f) if str(x) in deps_of]
        if tasks:
            deps.append(tasks[-1].name)
        t = merge(current, f, target, name=f"merge-{out.stem}-{k}", deps=deps, tags=tags, odf=odf, ccf=ccf)
        tasks.append(t)
        current = target
    return tasks


# ---------------------------------------------------------------------------
# the pipeline lives in xcube.tools.sas_pipeline; its names stay reachable here

_PIPELINE = {"process_observation", "ObservationProducts", "STEPS"}


def __getattr__(name):
    if name in _PIPELINE:
        from . import sas_pipeline

        return getattr(sas_pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
