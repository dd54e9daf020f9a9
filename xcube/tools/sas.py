"""XMM-Newton SAS wrappers: from an ODF to cleaned EPIC event lists.

Every function ``cifbuild``, ``odfingest``, ``epchain``, ``emchain``,
``espfilt``, ``emanom``, ``evselect_*``, ``tabgtigen``, ``eexpmap`` and
``merge`` returns a :class:`~xcube.tools.runner.Task` with the parameters
spelled as in the SAS documentation
(https://xmm-tools.cosmos.esa.int/external/sas/current/doc/<task>/); run it
with :func:`xcube.tools.run` or many of them with :func:`xcube.tools.run_many`.
:func:`process_observation` chains them: ODF -> cleaned (flare-filtered,
screened, sub-exposures merged) event lists that ``xcube.open_events`` reads.

The SAS environment: ``SAS_ODF`` points to the ODF directory for
``cifbuild``/``odfingest`` and to the ``*SUM.SAS`` summary afterwards,
``SAS_CCF`` to the ``ccf.cif`` made by ``cifbuild`` (SAS User Guide 2.3,
https://heasarc.gsfc.nasa.gov/docs/xmm/sas/USG/cifbuild.html); the tasks get
them from ``Task.env``, so concurrent observations never share them.
"""
from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..io.atomic import atomic_file, write_table
from .provenance import read_record, record_path, write_record
from .runner import Task, ToolError, fingerprint

__all__ = [
    "INSTRUMENTS",
    "Exposure",
    "OdfSummary",
    "ObservationProducts",
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
    "process_observation",
]

log = logging.getLogger("xcube.tools.sas")

DOC = "https://xmm-tools.cosmos.esa.int/external/sas/current/doc"

# name used by xcube -> (ODF instrument code, INSTRUME keyword, mission profile, short name used by ESAS tasks)
INSTRUMENTS = {
    "pn": ("PN", "EPN", "xmm-pn", "pn"),
    "mos1": ("M1", "EMOS1", "xmm-mos1", "mos1"),
    "mos2": ("M2", "EMOS2", "xmm-mos2", "mos2"),
}
_CODE_TO_NAME = {v[0]: k for k, v in INSTRUMENTS.items()}

# default energy limits [keV] of cleaned event lists, as in the SAS thread
# "How to filter EPIC event lists for flaring particle background"
# (https://www.cosmos.esa.int/web/xmm-newton/sas-thread-epic-filterbackground):
# pn PI in [200:15000], MOS PI in [200:12000]
DEFAULT_ENERGY_BAND = {"pn": (0.2, 15.0), "mos1": (0.2, 12.0), "mos2": (0.2, 12.0)}
# event-flag sets of the same thread: #XMMEA_EP (pn), #XMMEA_EM (MOS)
FLAG_SET = {"pn": "#XMMEA_EP", "mos1": "#XMMEA_EM", "mos2": "#XMMEA_EM"}


def _inst(name: str) -> str:
    key = str(name).lower().replace("emos", "mos").replace("epn", "pn")
    key = {"m1": "mos1", "m2": "mos2"}.get(key, key)
    if key not in INSTRUMENTS:
        raise ValueError(f"unknown EPIC instrument {name!r}; use one of {sorted(INSTRUMENTS)}")
    return key


# ---------------------------------------------------------------------------
# the ODF summary (*SUM.SAS written by odfingest)


@dataclass(frozen=True)
class Exposure:
    """One EPIC exposure listed in the ODF summary."""

    instrument: str  # xcube name: pn, mos1, mos2
    exp_id: str  # S003, U002 ...
    scheduled: bool
    type: str  # SCIENCE, CALIBRATE ...
    mode: str  # PrimeFullWindow ...
    filter: str | None = None
    ccd_modes: tuple = ()

    @property
    def code(self) -> str:
        """ODF instrument code (PN, M1, M2)."""
        return INSTRUMENTS[self.instrument][0]


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
    exposures: list = field(default_factory=list)  # list[Exposure] (EPIC only)

    def select(self, instruments=("pn", "mos1", "mos2"), *, unscheduled: bool = True,
               types=("SCIENCE",)) -> list[Exposure]:
        """Exposures of the given instruments, science exposures only by
        default, unscheduled (``U``) ones unless ``unscheduled=False``."""
        names = {_inst(i) for i in instruments}
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
    is read as well."""
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
    """CCDs whose emanom state is in ``acceptable``."""
    bad = set(acceptable) - set(ANOM_STATES)
    if bad:
        raise ValueError(f"unknown emanom states {sorted(bad)}; valid: {ANOM_STATES}")
    return sorted(c for c, s in states.items() if s in acceptable)


# ---------------------------------------------------------------------------
# task builders


def _env(odf, ccf=None) -> dict:
    env = {"SAS_ODF": str(Path(odf).resolve())}
    if ccf is not None:
        env["SAS_CCF"] = str(Path(ccf).resolve())
    return env


def cifbuild(odf_dir, out_dir, *, analysisdate: str = "now", name=None, **params) -> Task:
    """``cifbuild``: the calibration index file ``<out_dir>/ccf.cif`` for an
    ODF (needs ``SAS_CCFPATH`` in the environment, as SAS does)."""
    out = Path(out_dir).resolve()
    # cifbuild parameters calindexset, analysisdate: SAS USG 2.3.3
    # https://heasarc.gsfc.nasa.gov/docs/xmm/sas/USG/cifbuild.html
    p = {"calindexset": str(out / "ccf.cif"), "analysisdate": analysisdate, **params}
    return Task("cifbuild", p, inputs=[odf_dir], outputs=[out / "ccf.cif"], env=_env(odf_dir), workdir=out,
                name=name or "cifbuild", tags={"step": "cifbuild"})


def summary_name(odf_dir) -> str:
    """Canonical name of the odfingest summary of an ODF
    (``rrrr_oooooooooo_SCX00000SUM.SAS``, from the ODF's ``*SUM.ASC``)."""
    hits = sorted(Path(odf_dir).glob("*SUM.ASC"))
    if not hits:
        raise FileNotFoundError(f"{odf_dir}: no *SUM.ASC file; is this an XMM-Newton ODF directory "
                                "(unpacked *.tar)?")
    return hits[0].name[: -len("ASC")] + "SAS"


def odfingest(odf_dir, out_dir, ccf, *, name=None, **params) -> Task:
    """``odfingest``: the ODF summary ``<out_dir>/<rev>_<obsid>_SCX00000SUM.SAS``."""
    out = Path(out_dir).resolve()
    # odfdir, withodfdir, outdir: odfingest parameters
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/odfingest/node14.html
    p = {"odfdir": str(Path(odf_dir).resolve()), "withodfdir": True, "outdir": str(out), **params}
    return Task("odfingest", p, inputs=[odf_dir, ccf], text_outputs=[out / summary_name(odf_dir)],
                env=_env(odf_dir, ccf), workdir=out, name=name or "odfingest", tags={"step": "odfingest"})


def event_list_name(obs_id: str, exposure: Exposure, oot: bool = False) -> str:
    """Name of the event list written by epchain/emchain: ``P<obsid><II><Ennn>
    {PI,OO,MI}EVLI0000.FIT`` (epchain/emchain documentation, Output files)."""
    kind = ("OO" if oot else "PI") if exposure.instrument == "pn" else "MI"
    return f"P{obs_id}{exposure.code}{exposure.exp_id}{kind}EVLI0000.FIT"


def epchain(summary: OdfSummary, ccf, exposure: Exposure, out_dir, *, oot: bool = False, ccds=None,
            deps: Sequence[str] = (), **params) -> Task:
    """``epchain`` for one pn exposure, in ``out_dir``.

    ``oot=True`` is the out-of-time run (``withoutoftime=yes``), keeping the
    raw intermediate files (``keepintermediate=raw``) for the normal run,
    which then skips the steps already done (``runatthkgen=N runepframes=N
    runbadpixfind=N runbadpix=N``), as the epchain documentation recommends
    (https://xmm-tools.cosmos.esa.int/external/sas/current/doc/epchain/index.html).
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
    p.update(params)
    kind = "oot" if oot else "events"
    return Task("epchain", p, inputs=[summary.path, ccf], outputs=outputs, env=_env(summary.path, ccf),
                workdir=out, deps=deps, name=f"epchain-{kind}-{summary.obs_id}-{exposure.code}{exposure.exp_id}",
                tags=_tags(summary, exposure, "epchain-" + kind))


def epchain_pair(summary: OdfSummary, ccf, exposure: Exposure, out_dir, *, deps=(), **params) -> list[Task]:
    """The two epchain runs of a pn exposure: out-of-time first, then the
    normal run (depending on it, reusing its intermediate files)."""
    first = epchain(summary, ccf, exposure, out_dir, oot=True, deps=deps, **params)
    second = epchain(summary, ccf, exposure, out_dir, oot=False, deps=(first.name,), **params)
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
    in parallel and fail independently)."""
    if exposure.instrument not in ("mos1", "mos2"):
        raise ValueError(f"emchain processes MOS exposures, got {exposure.instrument} {exposure.exp_id}")
    out = Path(out_dir).resolve()
    # instruments, exposures, odf: emchain parameters
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/emchain/node11.html
    p = {"odf": str(summary.path.resolve()), "instruments": exposure.code, "exposures": exposure.exp_id, **params}
    return Task("emchain", p, inputs=[summary.path, ccf], outputs=[out / event_list_name(summary.obs_id, exposure)],
                env=_env(summary.path, ccf), workdir=out, deps=deps,
                name=f"emchain-{summary.obs_id}-{exposure.code}{exposure.exp_id}",
                tags=_tags(summary, exposure, "emchain"))


def espfilt_outputs(instrument: str, exp_id: str, out_dir, elow: int = 2500, ehigh: int = 8500) -> dict:
    """Files espfilt writes with ``withlongnames=yes``: ``<inst><exp>-gti-<elow>-<ehigh>.fits`` (GTI),
    ``-allevc-...fits`` (filtered events) and ``-hist-...qdp`` (rate histogram)."""
    short = INSTRUMENTS[_inst(instrument)][3]
    out = Path(out_dir).resolve()
    return {k: out / f"{short}{exp_id}-{k}-{elow}-{ehigh}.{'qdp' if k == 'hist' else 'fits'}"
            for k in ("gti", "allevc", "hist")}


def espfilt(eventfile, ccf, exposure: Exposure, out_dir, *, summary: OdfSummary | None = None, method="histogram",
            elow: int = 2500, ehigh: int = 8500, smooth: int = 51, binsize: int = 60, ratio: float = 1.2,
            rangescale: float | None = None, allowsigma: float = 3.0, limits=(0.1, 6.5), ootfile=None,
            deps=(), **params) -> Task:
    """``espfilt``: soft-proton flare GTI of one exposure (histogram method by
    default). ``rangescale`` defaults to 15 for pn and 6 for MOS."""
    inst = exposure.instrument
    outs = espfilt_outputs(inst, exposure.exp_id, out_dir, elow, ehigh)
    if rangescale is None:
        rangescale = 15.0 if inst == "pn" else 6.0
    # parameter names: espfilt documentation and ESAS cookbook
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/espfilt/espfilt.html
    # https://heasarc.gsfc.nasa.gov/docs/xmm/esas/cookbook/node92.html
    p = {"eventfile": str(Path(eventfile).resolve()), "method": method, "withsmoothing": True, "smooth": smooth,
         "withbinning": True, "binsize": binsize, "ratio": ratio, "withlongnames": True, "elow": elow,
         "ehigh": ehigh, "rangescale": rangescale, "allowsigma": allowsigma, "limits": list(limits),
         "keepinterfiles": False}
    inputs = [eventfile, ccf]
    if ootfile is not None:
        p.update(withoot=True, ootfile=str(Path(ootfile).resolve()))
        inputs.append(ootfile)
    p.update(params)
    obs = summary.obs_id if summary else ""
    env = _env(summary.path, ccf) if summary else {"SAS_CCF": str(Path(ccf).resolve())}
    return Task("espfilt", p, inputs=inputs, outputs=[outs["gti"], outs["allevc"]], text_outputs=[outs["hist"]],
                env=env, workdir=Path(out_dir).resolve(), deps=deps,
                name=f"espfilt-{obs}-{exposure.code}{exposure.exp_id}",
                tags={"obsid": obs, "instrument": inst, "exposure": exposure.exp_id, "step": "espfilt"})


def emanom(eventfile, exposure: Exposure, out_dir, *, obs_id: str = "", deps=(), **params) -> Task:
    """``emanom``: anomalous-state check of the MOS CCDs; writes
    ``<mos1|mos2><exp>-anom.log`` in ``out_dir`` (parse with :func:`parse_emanom`).

    ``writekeys=no``: emanom would otherwise write ANOMFLn keywords into the
    input event list, changing it after the chain made it (and so every
    checksum downstream)."""
    short = INSTRUMENTS[exposure.instrument][3]
    out = Path(out_dir).resolve()
    # eventfile, writekeys, writelog, keepcorner: ESAS cookbook, emanom
    # https://heasarc.gsfc.nasa.gov/docs/xmm/esas/cookbook/node89.html
    p = {"eventfile": str(Path(eventfile).resolve()), "writekeys": False, "writelog": True, "keepcorner": False,
         **params}
    return Task("emanom", p, inputs=[eventfile], text_outputs=[out / f"{short}{exposure.exp_id}-anom.log"],
                workdir=out, deps=deps, name=f"emanom-{obs_id}-{exposure.code}{exposure.exp_id}",
                tags={"obsid": obs_id, "instrument": exposure.instrument, "exposure": exposure.exp_id,
                      "step": "emanom"})


def _pi_range(instrument: str, energy_band) -> tuple[int, int]:
    from ..missions import get_profile

    prof = get_profile(INSTRUMENTS[_inst(instrument)][2])
    lo, hi = prof.pi_for_energy(list(energy_band))
    return int(round(float(lo))), int(round(float(hi)))


def cleaning_expression(instrument: str, *, energy_band=None, gti=None, ccds=None, extra: str | None = None,
                        flags: bool = True) -> str:
    """evselect expression of a cleaned event list: the event-flag set
    (``#XMMEA_EP``/``#XMMEA_EM``), the instrument's default screening from
    its mission profile (pn ``PATTERN <= 4 && FLAG == 0``, MOS
    ``PATTERN <= 12 && FLAG == 0``), the energy band as ``PI in [lo:hi]``
    (default pn 0.2-15 keV, MOS 0.2-12 keV), a GTI file
    (``gti(<file>,TIME)``) and the accepted CCDs."""
    from ..missions import get_profile

    inst = _inst(instrument)
    prof = get_profile(INSTRUMENTS[inst][2])
    parts = []
    if flags:
        parts.append(FLAG_SET[inst])
    if prof.screening:
        parts.append(f"({prof.screening})")
    lo, hi = _pi_range(inst, energy_band or DEFAULT_ENERGY_BAND[inst])
    parts.append(f"(PI in [{lo}:{hi}])")
    if gti is not None:
        # gti(<set>,TIME): selectlib GTI filter
        # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/selectlib/index.html
        parts.append(f"gti({Path(gti).resolve()},TIME)")
    if ccds is not None:
        ccds = sorted(int(c) for c in ccds)
        if not ccds:
            raise ValueError(f"{instrument}: no CCD left to select")
        parts.append("(" + " || ".join(f"CCDNR == {c}" for c in ccds) + ")")
    if extra:
        parts.append(f"({extra})")
    return " && ".join(parts)


def evselect_events(table, filteredset, expression: str, *, name=None, deps=(), inputs=(), tags=None,
                    **params) -> Task:
    """``evselect`` writing a filtered event list (all extensions kept, exposure updated)."""
    out = Path(filteredset).resolve()
    # withfilteredset, filteredset, expression, filtertype, keepfilteroutput, updateexposure, filterexposure:
    # evselect parameters https://xmm-tools.cosmos.esa.int/external/sas/current/doc/evselect/node16.html
    p = {"table": str(Path(table).resolve()), "withfilteredset": True, "filteredset": str(out),
         "filtertype": "expression", "expression": expression, "keepfilteroutput": True, "destruct": True,
         "updateexposure": True, "filterexposure": True, **params}
    return Task("evselect", p, inputs=[table, *inputs], outputs=[out], workdir=out.parent, deps=deps,
                name=name or f"evselect-{out.stem}", tags=tags or {"step": "evselect"})


def evselect_image(table, imageset, *, expression="true", bin_size: float = 80.0, xcolumn="X", ycolumn="Y",
                   name=None, deps=(), inputs=(), **params) -> Task:
    """``evselect`` sky image with ``bin_size`` sky pixels (80 = 4 arcsec) per image pixel."""
    out = Path(imageset).resolve()
    # withimageset, imageset, xcolumn, ycolumn, imagebinning=binSize, ximagebinsize, yimagebinsize:
    # evselect parameters https://xmm-tools.cosmos.esa.int/external/sas/current/doc/evselect/node16.html
    p = {"table": str(Path(table).resolve()), "withimageset": True, "imageset": str(out), "xcolumn": xcolumn,
         "ycolumn": ycolumn, "imagebinning": "binSize", "ximagebinsize": bin_size, "yimagebinsize": bin_size,
         "filtertype": "expression", "expression": expression, "writedss": True, **params}
    return Task("evselect", p, inputs=[table, *inputs], outputs=[out], workdir=out.parent, deps=deps,
                name=name or f"evselect-image-{out.stem}", tags={"step": "image"})


def evselect_lightcurve(table, rateset, *, time_bin: float, expression="true", name=None, deps=(), inputs=(),
                        **params) -> Task:
    """``evselect`` light curve (RATE extension) with ``time_bin`` seconds per bin."""
    out = Path(rateset).resolve()
    # withrateset, rateset, timebinsize, maketimecolumn, makeratecolumn: evselect parameters
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/evselect/node16.html
    p = {"table": str(Path(table).resolve()), "withrateset": True, "rateset": str(out), "timebinsize": time_bin,
         "maketimecolumn": True, "makeratecolumn": True, "filtertype": "expression", "expression": expression,
         **params}
    return Task("evselect", p, inputs=[table, *inputs], outputs=[out], workdir=out.parent, deps=deps,
                name=name or f"evselect-lc-{out.stem}", tags={"step": "lightcurve"})


def evselect_spectrum(table, spectrumset, instrument: str, *, expression="true", name=None, deps=(), inputs=(),
                      **params) -> Task:
    """``evselect`` PI spectrum: channels 0-20479 (pn) or 0-11999 (MOS) in bins of 5
    (SAS thread "spectrum and response files",
    https://www.cosmos.esa.int/web/xmm-newton/sas-thread-pn-spectrum)."""
    inst = _inst(instrument)
    out = Path(spectrumset).resolve()
    p = {"table": str(Path(table).resolve()), "withspectrumset": True, "spectrumset": str(out),
         "energycolumn": "PI", "spectralbinsize": 5, "withspecranges": True, "specchannelmin": 0,
         "specchannelmax": 20479 if inst == "pn" else 11999, "filtertype": "expression", "expression": expression,
         **params}
    return Task("evselect", p, inputs=[table, *inputs], outputs=[out], workdir=out.parent, deps=deps,
                name=name or f"evselect-spec-{out.stem}", tags={"step": "spectrum", "instrument": inst})


def tabgtigen(table, gtiset, expression: str, *, name=None, deps=(), **params) -> Task:
    """``tabgtigen``: GTI file from a rate table and an expression (e.g. ``RATE<=0.4``)."""
    out = Path(gtiset).resolve()
    # table, expression, gtiset: tabgtigen parameters
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/tabgtigen/node4.html
    p = {"table": str(Path(table).resolve()), "expression": expression, "gtiset": str(out), **params}
    return Task("tabgtigen", p, inputs=[table], outputs=[out], workdir=out.parent, deps=deps,
                name=name or f"tabgtigen-{out.stem}", tags={"step": "tabgtigen"})


# rate thresholds of the filterbackground SAS thread [counts/s, 100 s bins, >10 keV, single events]
FLARE_RATE = {"pn": 0.4, "mos1": 0.35, "mos2": 0.35}


def flare_gti(eventfile, out_dir, instrument: str, *, threshold: float | None = None, time_bin: float = 100.0,
              stem: str | None = None, deps=()) -> list[Task]:
    """The SAS-thread flare filter as two tasks: a >10 keV single-event rate
    curve (``evselect``), then ``tabgtigen`` with ``RATE<=threshold`` (pn 0.4,
    MOS 0.35 counts/s); an alternative to :func:`espfilt`."""
    inst = _inst(instrument)
    out = Path(out_dir).resolve()
    stem = stem or Path(eventfile).stem
    lo = {"pn": "(PI in [10000:12000])", "mos1": "(PI > 10000)", "mos2": "(PI > 10000)"}[inst]
    expr = f"{FLAG_SET[inst]} && {lo} && (PATTERN == 0)"
    rate = evselect_lightcurve(eventfile, out / f"{stem}-flarerate.fits", time_bin=time_bin, expression=expr,
                               deps=deps, name=f"evselect-flarerate-{stem}")
    gti = tabgtigen(rate.outputs[0], out / f"{stem}-flaregti.fits",
                    f"RATE<={threshold if threshold is not None else FLARE_RATE[inst]}", deps=(rate.name,),
                    name=f"tabgtigen-{stem}")
    return [rate, gti]


def eexpmap(imageset, attitudeset, eventset, expimageset, ccf, *, energy_band=(0.5, 2.0), instrument="pn",
            name=None, deps=(), **params) -> Task:
    """``eexpmap``: exposure map matching an image, for ``energy_band`` [keV]."""
    out = Path(expimageset).resolve()
    lo, hi = _pi_range(instrument, energy_band)
    # imageset, attitudeset, eventset, expimageset, withvignetting, pimin, pimax: eexpmap parameters
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/eexpmap/node4.html
    p = {"imageset": str(Path(imageset).resolve()), "attitudeset": str(Path(attitudeset).resolve()),
         "eventset": str(Path(eventset).resolve()), "expimageset": str(out), "withvignetting": True,
         "pimin": lo, "pimax": hi, **params}
    return Task("eexpmap", p, inputs=[imageset, attitudeset, eventset, ccf], outputs=[out], workdir=out.parent,
                env={"SAS_CCF": str(Path(ccf).resolve())}, deps=deps, name=name or f"eexpmap-{out.stem}",
                tags={"step": "eexpmap"})


def merge(set1, set2, outset, *, name=None, deps=(), tags=None, **params) -> Task:
    """SAS ``merge`` of two event lists of the same instrument."""
    out = Path(outset).resolve()
    # set1, set2, outset: merge parameters
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/merge/index.html
    p = {"set1": str(Path(set1).resolve()), "set2": str(Path(set2).resolve()), "outset": str(out), **params}
    return Task("merge", p, inputs=[set1, set2], outputs=[out], workdir=out.parent, deps=deps,
                name=name or f"merge-{out.stem}", tags=tags or {"step": "merge"})


def merge_exposures(eventfiles: Sequence, outset, *, deps_of=None, tags=None) -> list[Task]:
    """Tasks merging 2 or more sub-exposure event lists into ``outset``
    (a chain of pairwise ``merge`` calls through ``.partN`` files).
    ``deps_of`` maps an input file to the name of the task making it."""
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
        t = merge(current, f, target, name=f"merge-{out.stem}-{k}", deps=deps, tags=tags)
        tasks.append(t)
        current = target
    return tasks


# ---------------------------------------------------------------------------
# the pipeline


@dataclass
class ObservationProducts:
    """Result of :func:`process_observation`.

    ``events``: xcube instrument name -> final cleaned event list (merged over
    sub-exposures); ``exposures``: ``(instrument, exp_id)`` -> cleaned event
    list of that exposure; ``ccds``: MOS ``(instrument, exp_id)`` -> CCDs kept
    after emanom; ``status``: one row per task (``run_many`` table).
    """

    out_dir: Path
    summary: OdfSummary | None
    events: dict
    exposures: dict
    ccds: dict
    status: object

    def open(self, instrument: str, **kwargs):
        """``xcube.open_events`` on the cleaned event list of ``instrument``."""
        from .. import open_events

        inst = _inst(instrument)
        if inst not in self.events:
            raise KeyError(f"no cleaned event list for {inst}; made: {sorted(self.events)} "
                           f"(see .status for failures)")
        return open_events(self.events[inst], **kwargs)


def _stage(tasks, status_parts, run_kwargs):
    from .batch import run_many

    if not tasks:
        return {}
    table = run_many(tasks, **run_kwargs)
    status_parts.append(table)
    return {r.task: r.state for r in table.itertuples()}


def _ok(states: dict, *names) -> bool:
    return all(states.get(n) in ("done", "skipped") for n in names)


def _copy_product(src: Path, dst: Path, tags: dict) -> str:
    """Copy ``src`` to ``dst`` with a provenance record (tool ``copy``); no-op
    when ``dst`` is already a copy of the current ``src``."""
    src_fp = fingerprint(src)
    rec = read_record(record_path(dst))
    if dst.exists() and rec and rec.get("inputs") == {str(src.resolve()): src_fp} \
            and rec.get("outputs", {}).get(str(dst.resolve())) == fingerprint(dst):
        return "skipped"
    with atomic_file(dst, overwrite=True) as tmp:
        shutil.copyfile(src, tmp)
    from .._version import __version__

    write_record(dst, {"task": f"copy-{dst.stem}", "tool": "copy", "package": None, "params": {},
                            "args": [str(src.resolve()), str(dst.resolve())], "inputs": {str(src.resolve()): src_fp},
                            "outputs": {str(dst.resolve()): fingerprint(dst)}, "versions": {"xcube": __version__},
                            "param_hash": "", "tags": tags})
    return "done"


def process_observation(odf_dir, out_dir, instruments=("pn", "mos1", "mos2"), *, client=None,
                        energy_band=None, flare_filter: str | None = "espfilt",
                        mos_ccd_states: Sequence[str] | None = ("G", "I", "U"), unscheduled: bool = True,
                        overwrite: bool = False, timeout: float | None = None, workers: int | None = None,
                        progress: bool = False) -> ObservationProducts:
    """ODF -> cleaned EPIC event lists, one per instrument (eager; runs SAS).

    Steps, each a batch of independent tasks on Dask (``client`` as in
    :func:`xcube.tools.run_many`):

    1. ``cifbuild`` then ``odfingest``; the summary is parsed for the
       science exposures of ``instruments`` (``unscheduled=False`` drops
       ``U`` exposures).
    2. per exposure: ``epchain`` (out-of-time run, then the normal run) or
       ``emchain``; ``espfilt`` flare GTIs (``flare_filter="espfilt"``; or
       ``"rate"`` for the SAS-thread rate cut, or None); ``emanom`` for MOS.
    3. per exposure: ``evselect`` with :func:`cleaning_expression` (flags,
       pattern, ``energy_band`` [keV] or the instrument default, flare GTI,
       MOS CCDs whose emanom state is in ``mos_ccd_states``; None keeps all).
    4. per instrument: ``merge`` of the sub-exposures (or a copy of the only
       one) into ``<out_dir>/P<obsid><PN|M1|M2>_clean.fits``.

    Working files live in ``<out_dir>/<instrument>/<exp_id>/``, logs in
    ``<out_dir>/logs``, the status table in ``<out_dir>/status.csv``. Re-running
    skips every step whose outputs are up to date (``overwrite=True`` redoes
    everything). A failed exposure is recorded and left out; the others go on.
    """
    import pandas as pd

    odf = Path(odf_dir).resolve()
    if not odf.is_dir():
        raise FileNotFoundError(f"{odf}: ODF directory not found")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    insts = [_inst(i) for i in instruments]
    rk = dict(client=client, workers=workers, overwrite=overwrite, timeout=timeout, progress=progress,
              log_dir=out / "logs")
    parts: list = []

    cif = cifbuild(odf, out)
    ccf = cif.outputs[0]
    ing = odfingest(odf, out, ccf)
    ing.deps = (cif.name,)
    st = _stage([cif, ing], parts, rk)
    if not _ok(st, cif.name, ing.name):
        table = pd.concat(parts, ignore_index=True)
        bad = table[~table["state"].isin(["done", "skipped"])]
        raise ToolError(f"{odf}: calibration set-up failed: " + "; ".join(
            f"{r.task}: {r.error_class}: {r.message}" for r in bad.itertuples()))
    summary = parse_odf_summary(ing.text_outputs[0])
    exposures = summary.select(insts, unscheduled=unscheduled)
    if not exposures:
        log.warning("%s: no science exposure of %s in the ODF summary", summary.obs_id, insts)

    # stage 2: chains, flare GTIs, emanom
    tasks, chain_of, flare_of, anom_of, wd = [], {}, {}, {}, {}
    for e in exposures:
        d = out / e.instrument / e.exp_id
        wd[e] = d
        if e.instrument == "pn":
            pair = epchain_pair(summary, ccf, e, d)
            tasks += pair
            chain_of[e] = (pair[1], pair[1].outputs[0], pair[0].outputs[0], [t.name for t in pair])
        else:
            t = emchain(summary, ccf, e, d)
            tasks.append(t)
            chain_of[e] = (t, t.outputs[0], None, [t.name])
        chain_task, evfile, ootfile, chain_names = chain_of[e]
        if flare_filter == "espfilt":
            f = espfilt(evfile, ccf, e, d, summary=summary, ootfile=ootfile, deps=(chain_task.name,))
            tasks.append(f)
            flare_of[e] = (f.name, f.outputs[0])
        elif flare_filter == "rate":
            pair = flare_gti(evfile, d, e.instrument, deps=(chain_task.name,), stem=f"{e.instrument}{e.exp_id}")
            tasks += pair
            flare_of[e] = (pair[1].name, pair[1].outputs[0])
        elif flare_filter is not None:
            raise ValueError(f"flare_filter must be 'espfilt', 'rate' or None, got {flare_filter!r}")
        if e.instrument != "pn" and mos_ccd_states is not None:
            a = emanom(evfile, e, d, obs_id=summary.obs_id, deps=(chain_task.name,))
            tasks.append(a)
            anom_of[e] = a
    st2 = _stage(tasks, parts, rk)

    # stage 3: cleaned event lists
    tasks, clean_of, ccds = [], {}, {}
    for e in exposures:
        chain_task, evfile, _, names = chain_of[e]
        needed = names + ([flare_of[e][0]] if e in flare_of else []) + ([anom_of[e].name] if e in anom_of else [])
        if not _ok(st2, *needed):
            log.warning("%s %s %s: left out (a processing step failed, see status)", summary.obs_id, e.instrument,
                        e.exp_id)
            continue
        keep = None
        if e in anom_of:
            keep = accepted_ccds(parse_emanom(anom_of[e].text_outputs[0]), mos_ccd_states)
            ccds[(e.instrument, e.exp_id)] = keep
        gti = flare_of[e][1] if e in flare_of else None
        expr = cleaning_expression(e.instrument, energy_band=energy_band, gti=gti, ccds=keep)
        cleaned = wd[e] / f"P{summary.obs_id}{e.code}{e.exp_id}_clean.fits"
        t = evselect_events(evfile, cleaned, expr, name=f"evselect-clean-{summary.obs_id}-{e.code}{e.exp_id}",
                            inputs=[gti] if gti else (), tags=_tags(summary, e, "clean"))
        tasks.append(t)
        clean_of[e] = t
    st3 = _stage(tasks, parts, rk)
    exposures_done = {(e.instrument, e.exp_id): t.outputs[0] for e, t in clean_of.items() if _ok(st3, t.name)}

    # stage 4: one event list per instrument
    tasks, events, copies = [], {}, []
    for inst in insts:
        files = [exposures_done[k] for k in sorted(exposures_done) if k[0] == inst]
        if not files:
            continue
        final = out / f"P{summary.obs_id}{INSTRUMENTS[inst][0]}_clean.fits"
        if len(files) == 1:
            copies.append((files[0], final, {"obsid": summary.obs_id, "instrument": inst, "step": "copy"}))
        else:
            tasks += merge_exposures(files, final, tags={"obsid": summary.obs_id, "instrument": inst,
                                                         "step": "merge"})
        events[inst] = final
    st4 = _stage(tasks, parts, rk)
    rows = []
    for src, dst, tags in copies:
        state = _copy_product(Path(src), dst, tags)
        rows.append({"task": f"copy-{dst.stem}", "obsid": summary.obs_id, "tool": "copy", "state": state,
                     "wall_time": 0.0, "outputs": [str(dst)], "tags": tags})
    if rows:
        parts.append(pd.DataFrame(rows))
    for t in tasks:
        if not _ok(st4, t.name):
            inst = t.tags.get("instrument")
            events.pop(inst, None)
    status = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    flat = status.copy()
    for col in ("outputs", "tags"):
        if col in flat:
            flat[col] = flat[col].map(lambda v: ";".join(v) if isinstance(v, list) else
                                      ";".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else v)
    write_table(out / "status.csv", flat)
    return ObservationProducts(out_dir=out, summary=summary, events=events, exposures=exposures_done, ccds=ccds,
                               status=status)
