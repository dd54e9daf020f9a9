"""Insight-HXMT HXMTDAS wrappers: the LE, ME and HE chains.

Calibration and screening, per detector (HXMT Data Reduction Guide,
http://hxmtweb.ihep.ac.cn/SoftDoc/65.jhtml; HXMTDAS v2.04 and later replace
``legti``/``megti`` by ``legticorr``/``megticorr``, which take positional
arguments):

- LE: ``lepical`` -> ``lerecon`` -> ``legtigen`` -> ``legticorr`` -> ``lescreen``
- ME: ``mepical`` -> ``megrade`` -> ``megtigen`` -> ``megticorr`` -> ``mescreen``
- HE: ``hepical`` -> ``hegtigen`` -> ``hescreen``

Products: light curves (``lelcgen``/``melcgen``/``helcgen``) with their
backgrounds (``lebkgmap``/``mebkgmap``/``hebkgmap lc``), net light curves
and Leahy and rms power spectra (made by xcube, :mod:`xcube.tools.derived`,
like hxmtdap's ``netlcgen``, ``netpdsgen`` and ``rmspdsgen``), spectra
(``*specgen``) with backgrounds (``*bkgmap spec``), responses (``*rspgen``)
and ``grppha`` grouping. Energy bands are given in keV and converted to PI
channels by the detector's relation (from the mission profiles
``hxmt-le/me/he``). Product names follow :mod:`xcube.products.naming`
(``<expid>_<det>_<kind>_<emin>-<emax>keV_<binsize>.lc``), in hxmtdap's
layout under the output directory::

    <det>/                          screened events, GTIs, spectra, responses
    lc/<det>/raw/                   ..._lc_<band>_<bin>.lc      (lelcgen)
    lc/<det>/bkg/                   ..._lcbkg_<band>_<bin>.lc   (lebkgmap lc)
    lc/<det>/net/                   ..._lcnet_<band>_<bin>.lc   (xcube)
    pds/<det>/<leahy|rms>/<rebin>/  ..._pds_<band>_<bin>_<norm>_<segment>s_<rebin>.fits
    products.parquet                index of the light curves and power spectra

The background tools take the exposure of a background spectrum from the GTI
file they are given, not from the spectrum. A spectrum extracted over a time
range therefore gets a generated GTI (screening GTI intersected with that
range, :func:`aligned_gti`) for its background, so source and background
cover the same time.
"""
from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Sequence

from ..io.atomic import atomic_file, write_text
from ..products import naming
from .derived import Step, net_lightcurve_file, power_spectrum_file
from .provenance import read_record, record_path, write_record
from .runner import Task, fingerprint, format_value

__all__ = [
    "DETECTORS",
    "energy_to_pi",
    "pi_range",
    "format_binsize",
    "product_name",
    "Level1",
    "find_level1",
    "calibration_tasks",
    "lightcurve_tasks",
    "lightcurve_dirs",
    "timing_steps",
    "spectrum_tasks",
    "aligned_gti",
    "grppha",
    "process_exposure",
    "HxmtProducts",
]

log = logging.getLogger("xcube.tools.hxmt")

GUIDE = "http://hxmtweb.ihep.ac.cn/SoftDoc/65.jhtml"


@dataclass(frozen=True)
class Detector:
    """Per-detector facts used by the wrappers."""

    name: str
    profile: str
    nchan: int
    all_dets: str  # userdetid of screening
    lc_dets: str  # userdetid of light curves / spectra (small field of view, or all but the blind one)
    group: str  # detector-group suffix the product tools append: <outfile>_g0_<group>.lc/.pha
    gti_expr: str


# Detector selections and GTI expressions of the HXMT Data Reduction Guide examples (see GUIDE). LE's
# light curves and spectra take the 58 small-field-of-view detectors, as the HXMT detector-ID helper lists
# them and hxmtdap's lelcgen/lespecgen defaults: "...,26,28,30,32,..." (not 29, a large-FoV detector).
DETECTORS = {
    "LE": Detector("LE", "hxmt-le", 1536, "0-95",
                   "0,2-4,6-10,12,14,20,22-26,28,30,32,34-36,38-42,44,46,52,54-58,60-62,64,66-68,70-74,76,78,"
                   "84,86,88-90,92-94", "0-94",
                   "ELV>10&&COR>8&&DYE_ELV>30&&SAA_FLAG==0&&ANG_DIST<0.04&&T_SAA>300&&TN_SAA>300"),
    "ME": Detector("ME", "hxmt-me", 1024, "0-53", "0-7,11-25,29-43,47-53", "0-53",
                   "ELV>10&&COR>8&&SAA_FLAG==0&&ANG_DIST<0.04&&T_SAA>300&&TN_SAA>300"),
    "HE": Detector("HE", "hxmt-he", 256, "0-17", "0-15,17", "0-17",
                   "ELV>10&&COR>8&&SAA_FLAG==0&&ANG_DIST<0.04&&T_SAA>300&&TN_SAA>300"),
}


def _det(det: str) -> Detector:
    d = str(det).upper()
    if d not in DETECTORS:
        raise ValueError(f"unknown HXMT detector {det!r}; use LE, ME or HE")
    return DETECTORS[d]


def energy_to_pi(det: str, energy) -> int:
    """PI channel of an energy [keV] for a detector: the channel whose energy
    range holds it (PI truncated, as hxmtdap and the Guide's examples: LE
    1-10 keV is 106-1169), from the mission profile's linear relation (LE
    E = 0.1 + 13 PI/1536, ME E = 3 + 60 PI/1024, HE E = 15 + 370 PI/256),
    clipped to the detector's channels. Eager (scalar arithmetic)."""
    from ..missions import get_profile

    d = _det(det)
    pi = float(get_profile(d.profile).pi_for_energy(float(energy)))
    return int(min(max(math.floor(pi + 1e-9), 0), d.nchan - 1))  # (1e-9: an energy on a channel edge is that channel)


def pi_range(det: str, energy_band) -> tuple[int, int]:
    """``(minPI, maxPI)`` of an energy band ``(emin, emax)`` [keV]. Eager
    (scalar arithmetic)."""
    emin, emax = energy_band
    if not emax > emin:
        raise ValueError(f"energy band must have emax > emin, got {energy_band}")
    return energy_to_pi(det, emin), energy_to_pi(det, emax)


format_binsize = naming.format_binsize


def product_name(expid: str, det: str, kind: str, energy_band=None, binsize=None, suffix=".lc") -> str:
    """Regular product file name ``<expid>_<det>_<kind>[_<emin>-<emax>keV][_<binsize>]<suffix>``
    (:func:`xcube.products.naming.product_name`). Eager (string formatting);
    ``energy_band`` [keV], ``binsize`` [s]."""
    return naming.product_name(expid, _det(det).name, kind, energy_band=energy_band, time_bin=binsize, suffix=suffix)


# ---------------------------------------------------------------------------
# level-1 files


@dataclass
class Level1:
    """The level-1 files of one exposure: ``files[(det, kind)]`` for kinds such
    as ``("LE", "Evt")``, ``("HE", "DTime")`` and ``("AUX", "EHK")``,
    ``("ACS", "Att")``, ``("ACS", "Orbit")``."""

    expid: str
    root: Path
    files: dict = field(default_factory=dict)

    def get(self, det: str, kind: str) -> Path:
        """Path of the level-1 file ``(det, kind)``; ``FileNotFoundError``
        naming the expected file when the exposure has none. Reads nothing."""
        try:
            return self.files[(det, kind)]
        except KeyError:
            raise FileNotFoundError(
                f"{self.root}: no {det}/HXMT_{self.expid}_{det + '-' if det in DETECTORS else ''}{kind}_*_L1P.FITS "
                "level-1 file; is the exposure directory complete?") from None


_L1_RE = re.compile(r"HXMT_(P\d+)_(?:(LE|ME|HE)-)?([A-Za-z]+)_FFFFFF_V(\d+)_L1P\.FITS$")


def find_level1(expid_dir) -> Level1:
    """Locate the level-1 files of an exposure directory (``<expid>/LE/...``,
    ``AUX``, ``ACS``); the highest file version wins. Eager (lists files)."""
    root = Path(expid_dir).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: HXMT exposure directory not found")
    found, versions, expid = {}, {}, None
    for f in root.glob("*/HXMT_*_L1P.FITS"):
        m = _L1_RE.search(f.name)
        if not m:
            continue
        expid = expid or m.group(1)
        key = (m.group(2) or f.parent.name, m.group(3))
        if int(m.group(4)) >= versions.get(key, -1):
            versions[key] = int(m.group(4))
            found[key] = f
    if not found:
        raise FileNotFoundError(f"{root}: no HXMT_<expid>_*_L1P.FITS files in its LE/ME/HE/AUX/ACS folders")
    return Level1(expid=expid or root.name, root=root, files=found)


# ---------------------------------------------------------------------------
# calibration and screening


def _name(l1: Level1, det: str, what: str) -> str:
    return f"{what}-{l1.expid}-{det}"


def _tags(l1: Level1, det: str, step: str, **kw) -> dict:
    return {"obsid": l1.expid, "instrument": det, "step": step, **kw}


def calibration_tasks(l1: Level1, det: str, out_dir, *, gti_expr: str | None = None, detstatus=None) -> list[Task]:
    """Calibration, good-time and screening tasks of one detector; the last
    task makes ``<out_dir>/<expid>_<det>_screen.fits`` and the corrected GTI
    ``<expid>_<det>_gti.fits``. Parameter names: HXMT Data Reduction Guide
    (http://hxmtweb.ihep.ac.cn/SoftDoc/65.jhtml). Lazy: builds the tasks only;
    nothing runs here."""
    d = _det(det)
    out = Path(out_dir).resolve()
    f = {k: out / f"{l1.expid}_{d.name}_{k}.fits" for k in ("pi", "recon", "grade", "dtime", "gti_tmp", "gti",
                                                            "screen", "detstatus")}
    expr = gti_expr or d.gti_expr
    ehk = l1.get("AUX", "EHK")
    tasks: list[Task] = []
    if d.name == "LE":
        tasks.append(Task("lepical", {"evtfile": l1.get("LE", "Evt"), "tempfile": l1.get("LE", "TH"),
                                      "outfile": f["pi"], "clobber": True},
                          inputs=[l1.get("LE", "Evt"), l1.get("LE", "TH")], outputs=[f["pi"]], workdir=out,
                          name=_name(l1, "LE", "lepical"), tags=_tags(l1, "LE", "lepical")))
        tasks.append(Task("lerecon", {"evtfile": f["pi"], "outfile": f["recon"],
                                      "instatusfile": l1.get("LE", "InsStat"), "clobber": True},
                          inputs=[f["pi"], l1.get("LE", "InsStat")], outputs=[f["recon"]], workdir=out,
                          deps=[tasks[-1].name], name=_name(l1, "LE", "lerecon"), tags=_tags(l1, "LE", "lerecon")))
        tasks.append(Task("legtigen", {"evtfile": "NONE", "instatusfile": l1.get("LE", "InsStat"),
                                       "tempfile": l1.get("LE", "TH"), "ehkfile": ehk, "outfile": f["gti_tmp"],
                                       "defaultexpr": "NONE", "expr": expr, "clobber": True},
                          inputs=[l1.get("LE", "InsStat"), l1.get("LE", "TH"), ehk], outputs=[f["gti_tmp"]],
                          workdir=out, name=_name(l1, "LE", "legtigen"), tags=_tags(l1, "LE", "legtigen")))
        # legticorr <recon> <old gti> <new gti> (HXMTDAS >= 2.04, positional)
        tasks.append(Task("legticorr", args=[f["recon"], f["gti_tmp"], f["gti"]], inputs=[f["recon"], f["gti_tmp"]],
                          outputs=[f["gti"]], workdir=out, deps=[tasks[1].name, tasks[2].name],
                          name=_name(l1, "LE", "legticorr"), tags=_tags(l1, "LE", "legticorr")))
        tasks.append(Task("lescreen", {"evtfile": f["recon"], "gtifile": f["gti"], "outfile": f["screen"],
                                       "userdetid": d.all_dets, "eventtype": 1, "starttime": 0, "stoptime": 0,
                                       "minPI": 0, "maxPI": d.nchan - 1, "clobber": True},
                          inputs=[f["recon"], f["gti"]], outputs=[f["screen"]], workdir=out,
                          deps=[tasks[-1].name], name=_name(l1, "LE", "lescreen"), tags=_tags(l1, "LE", "lescreen")))
    elif d.name == "ME":
        if detstatus is None:
            headas = os.environ.get("HEADAS")
            detstatus = Path(headas) / "refdata" / "medetectorstatus.fits" if headas else None
        if detstatus is None or not Path(detstatus).exists():
            raise FileNotFoundError(
                f"ME bad-detector reference file not found ({detstatus}); it ships with HXMTDAS as "
                "$HEADAS/refdata/medetectorstatus.fits: `source $HEADAS/headas-init.sh` or pass detstatus=")
        tasks.append(Task("mepical", {"evtfile": l1.get("ME", "Evt"), "tempfile": l1.get("ME", "TH"),
                                      "outfile": f["pi"], "clobber": True},
                          inputs=[l1.get("ME", "Evt"), l1.get("ME", "TH")], outputs=[f["pi"]], workdir=out,
                          name=_name(l1, "ME", "mepical"), tags=_tags(l1, "ME", "mepical")))
        tasks.append(Task("megrade", {"evtfile": f["pi"], "outfile": f["grade"], "deadfile": f["dtime"],
                                      "clobber": True},
                          inputs=[f["pi"]], outputs=[f["grade"], f["dtime"]], workdir=out, deps=[tasks[-1].name],
                          name=_name(l1, "ME", "megrade"), tags=_tags(l1, "ME", "megrade")))
        tasks.append(Task("megtigen", {"tempfile": l1.get("ME", "TH"), "ehkfile": ehk, "outfile": f["gti_tmp"],
                                       "defaultexpr": "NONE", "expr": expr, "clobber": True},
                          inputs=[l1.get("ME", "TH"), ehk], outputs=[f["gti_tmp"]], workdir=out,
                          name=_name(l1, "ME", "megtigen"), tags=_tags(l1, "ME", "megtigen")))
        # megticorr <grade> <old gti> <new gti> <reference detector status> <detector status of this exposure>
        tasks.append(Task("megticorr", args=[f["grade"], f["gti_tmp"], f["gti"], detstatus, f["detstatus"]],
                          inputs=[f["grade"], f["gti_tmp"], detstatus], outputs=[f["gti"], f["detstatus"]],
                          workdir=out, deps=[tasks[1].name, tasks[2].name], name=_name(l1, "ME", "megticorr"),
                          tags=_tags(l1, "ME", "megticorr")))
        tasks.append(Task("mescreen", {"evtfile": f["grade"], "gtifile": f["gti"], "outfile": f["screen"],
                                       "baddetfile": f["detstatus"], "userdetid": d.all_dets, "clobber": True},
                          inputs=[f["grade"], f["gti"], f["detstatus"]], outputs=[f["screen"]], workdir=out,
                          deps=[tasks[-1].name], name=_name(l1, "ME", "mescreen"), tags=_tags(l1, "ME", "mescreen")))
    else:
        tasks.append(Task("hepical", {"evtfile": l1.get("HE", "Evt"), "outfile": f["pi"], "clobber": True},
                          inputs=[l1.get("HE", "Evt")], outputs=[f["pi"]], workdir=out,
                          name=_name(l1, "HE", "hepical"), tags=_tags(l1, "HE", "hepical")))
        tasks.append(Task("hegtigen", {"hvfile": l1.get("HE", "HV"), "tempfile": l1.get("HE", "TH"), "ehkfile": ehk,
                                       "outfile": f["gti"], "defaultexpr": "NONE", "expr": expr,
                                       "pmfile": l1.get("HE", "PM"), "clobber": True},
                          inputs=[l1.get("HE", "HV"), l1.get("HE", "TH"), ehk, l1.get("HE", "PM")],
                          outputs=[f["gti"]], workdir=out, name=_name(l1, "HE", "hegtigen"),
                          tags=_tags(l1, "HE", "hegtigen")))
        tasks.append(Task("hescreen", {"evtfile": f["pi"], "gtifile": f["gti"], "outfile": f["screen"],
                                       "userdetid": d.all_dets, "eventtype": 1, "anticoincidence": True,
                                       "starttime": 0, "stoptime": 0, "minPI": 0, "maxPI": d.nchan - 1,
                                       "clobber": True},
                          inputs=[f["pi"], f["gti"]], outputs=[f["screen"]], workdir=out,
                          deps=[tasks[0].name, tasks[1].name], name=_name(l1, "HE", "hescreen"),
                          tags=_tags(l1, "HE", "hescreen")))
    return tasks


def _screen_files(l1: Level1, det: str, out_dir) -> dict:
    out = Path(out_dir).resolve()
    d = _det(det).name
    return {k: out / f"{l1.expid}_{d}_{k}.fits" for k in ("screen", "gti", "dtime", "detstatus")}


def _bkgmap_args(l1: Level1, det: str, kind: str, files: dict, listfile: Path, minpi: int, maxpi: int,
                 outprefix: Path, gti: Path) -> list:
    """Positional arguments of the background tools (HXMT Data Reduction Guide):
    lebkgmap lc|spec screen gti list chmin chmax outprefix
    mebkgmap lc|spec screen ehk gti dead temperature list chmin chmax outprefix detstatus
    hebkgmap lc|spec screen ehk gti dead list chmin chmax outprefix"""
    d = _det(det).name
    if d == "LE":
        return [kind, files["screen"], gti, listfile, minpi, maxpi, outprefix]
    if d == "ME":
        return [kind, files["screen"], l1.get("AUX", "EHK"), gti, files["dtime"], l1.get("ME", "TH"), listfile,
                minpi, maxpi, outprefix, files["detstatus"]]
    return [kind, files["screen"], l1.get("AUX", "EHK"), gti, l1.get("HE", "DTime"), listfile, minpi, maxpi,
            outprefix]


def _write_list(path: Path, content: Path) -> Path:
    """The one-line list file the background tools read (written at task-build
    time; its content is the product path, known in advance)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"{content}\n"
    if not path.exists() or path.read_text() != text:
        write_text(path, text)
    return path


def lightcurve_dirs(out_dir, det: str) -> dict:
    """hxmtdap's light-curve folders of a detector: ``raw``, ``bkg`` and
    ``net`` -> ``<out_dir>/lc/<det>/<kind>``. Eager (paths only; creates
    nothing)."""
    root = Path(out_dir).resolve() / "lc" / _det(det).name
    return {k: root / k for k in ("raw", "bkg", "net")}


def lightcurve_tasks(l1: Level1, det: str, out_dir, energy_band, binsize: float = 1.0, *, background: bool = True,
                     deps: Sequence[str] = (), screen_dir=None) -> list[Task]:
    """Light curve of ``energy_band`` [keV] with ``binsize`` [s] bins, and its
    background: ``<out_dir>/lc/<det>/raw/<expid>_<det>_lc_<band>_<bin>.lc``
    and ``.../bkg/..._lcbkg_...lc``. The screened events are read from
    ``screen_dir`` (default ``<out_dir>/<det>``). Lazy: builds the tasks only;
    nothing runs here."""
    d = _det(det)
    out = Path(out_dir).resolve()
    files = _screen_files(l1, d.name, screen_dir or out / d.name)
    dirs = lightcurve_dirs(out, d.name)
    minpi, maxpi = pi_range(d.name, energy_band)
    lc = dirs["raw"] / product_name(l1.expid, d.name, "lc", energy_band, binsize)
    prefix = lc.with_suffix("")
    made = Path(f"{prefix}_g0_{d.group}.lc")
    p = {"evtfile": files["screen"], "outfile": prefix, "userdetid": d.lc_dets, "binsize": binsize,
         "minPI": minpi, "maxPI": maxpi}
    if d.name == "LE":
        p.update(eventtype=1)
    else:
        p.update(deadfile=files["dtime"] if d.name == "ME" else l1.get("HE", "DTime"), deadcorr=True)
    p["clobber"] = True
    band_tag = f"{float(energy_band[0]):g}-{float(energy_band[1]):g}keV"
    tasks = [Task(f"{d.name.lower()}lcgen", p, inputs=[files["screen"]] + ([p["deadfile"]] if "deadfile" in p else []),
                  outputs=[lc], rename={made: lc}, workdir=dirs["raw"], deps=deps,
                  name=f"{d.name.lower()}lcgen-{l1.expid}-{band_tag}-{format_binsize(binsize)}",
                  tags=_tags(l1, d.name, "lc", energy_band=list(energy_band), binsize=binsize))]
    if background:
        bkg = dirs["bkg"] / product_name(l1.expid, d.name, "lcbkg", energy_band, binsize)
        listfile = _write_list(lc.with_suffix(".txt"), lc)
        args = _bkgmap_args(l1, d.name, "lc", files, listfile, minpi, maxpi, bkg.with_suffix(""), files["gti"])
        tasks.append(Task(f"{d.name.lower()}bkgmap", args=args, inputs=[files["screen"], files["gti"], listfile, lc],
                          outputs=[bkg], workdir=dirs["bkg"], deps=[tasks[0].name],
                          name=f"{d.name.lower()}bkgmap-lc-{l1.expid}-{band_tag}-{format_binsize(binsize)}",
                          tags=_tags(l1, d.name, "lcbkg", energy_band=list(energy_band), binsize=binsize)))
    return tasks


def timing_steps(expid: str, det: str, out_dir, energy_band, binsize: float, raw, bkg, *,
                 segment: float | None = 256.0, rebins=(-0.06,), norms=("leahy", "rms")) -> list[Step]:
    """xcube steps after ``lightcurve_tasks``: the net light curve
    (``lc/<det>/net/..._lcnet_...lc``, raw minus the ``*bkgmap`` background,
    like hxmtdap's ``netlcgen``) and, with a ``segment`` [s], power spectra of
    the raw light curve for each normalisation (``leahy``; ``rms`` =
    fractional rms^2/Hz of the source, background-corrected, Poisson level
    subtracted: hxmtdap's ``netpdsgen``/``rmspdsgen``) and rebin factor, in
    ``pds/<det>/<norm>/<rebin>/``. All products are added to
    ``<out_dir>/products.parquet``. ``energy_band`` ``(emin, emax)`` [keV],
    ``binsize`` [s]. Returns the list of steps: the net light curve, then
    one per normalisation x rebin factor; nothing runs here (the steps run
    under ``run_steps``). Lazy."""
    d = _det(det).name
    out = Path(out_dir).resolve()
    band = [float(energy_band[0]), float(energy_band[1])]
    tags = {"obsid": expid, "instrument": d, "energy_band": band, "binsize": binsize}
    tag = f"{expid}-{d}-{naming.format_band(band)}-{format_binsize(binsize)}"
    net = lightcurve_dirs(out, d)["net"] / product_name(expid, d, "lcnet", band, binsize)
    steps = [Step(f"netlc-{tag}", "xcube.net_lightcurve", partial(net_lightcurve_file, raw, bkg, net, index_root=out,
                                                                  energy_band=band),
                  inputs=[raw, bkg], outputs=[net], params={"kind": "net"}, tags=dict(tags, step="lcnet"))]
    for norm in norms if segment else ():
        for rebin in rebins:
            name = naming.product_name(expid, d, "pds", energy_band=band, time_bin=binsize, norm=norm,
                                       segment=segment, rebin=rebin)
            path = out / "pds" / d / norm / f"{float(rebin or 0):g}" / name
            func = partial(power_spectrum_file, raw, bkg, path, norm=norm, segment=segment, rebin=rebin,
                           index_root=out, energy_band=band)
            steps.append(Step(f"pds-{norm}-{float(rebin or 0):g}-{tag}", "xcube.power_spectrum", func,
                              inputs=[raw, bkg], outputs=[path],
                              params={"norm": norm, "segment": float(segment), "rebin": rebin},
                              tags=dict(tags, step=f"pds-{norm}", rebin=rebin)))
    return steps


def aligned_gti(gti_file, time_range, out_file) -> Path:
    """GTI file = the screening GTI intersected with ``time_range`` (start,
    stop) [s, mission time], for the background of a spectrum extracted over
    that range. Eager; writes ``out_file`` atomically with a provenance
    record (tool ``xcube.aligned_gti``); does nothing when up to date."""
    import numpy as np
    from astropy.io import fits

    from .. import gti as gtimod
    from .._version import __version__
    from ..io.ogip import gti_hdu

    src, out = Path(gti_file).resolve(), Path(out_file).resolve()
    t0, t1 = float(time_range[0]), float(time_range[1])
    if not t1 > t0:
        raise ValueError(f"time_range must have stop > start, got {time_range}")
    params = {"time_range": [t0, t1]}
    rec = read_record(record_path(out))
    src_fp = fingerprint(src)
    if out.exists() and rec and rec.get("params") == params and rec.get("inputs") == {str(src): src_fp} \
            and rec.get("outputs", {}).get(str(out)) == fingerprint(out):
        return out
    with fits.open(src) as h:
        hdu = next((x for x in h[1:] if "START" in [c.upper() for c in x.columns.names]), None)
        if hdu is None:
            raise ValueError(f"{src}: no GTI table with START/STOP columns")
        start, stop = np.asarray(hdu.data["START"], float), np.asarray(hdu.data["STOP"], float)
        header = {k: hdu.header[k] for k in ("TELESCOP", "INSTRUME", "MJDREFI", "MJDREFF", "TIMESYS")
                  if k in hdu.header}
    s, e = gtimod.intersection((start, stop), (np.array([t0]), np.array([t1])))
    if s.size == 0:
        raise ValueError(f"{src}: no good time between {t0} and {t1}; choose a time range inside the GTIs "
                         f"({start.min() if start.size else 'none'} - {stop.max() if stop.size else 'none'})")
    with atomic_file(out, overwrite=True) as tmp:
        fits.HDUList([fits.PrimaryHDU(), gti_hdu((s, e), header=header)]).writeto(tmp, checksum=True)
    write_record(out, {"task": f"aligned_gti-{out.stem}", "tool": "xcube.aligned_gti", "package": None,
                       "params": params, "args": [], "inputs": {str(src): src_fp},
                       "outputs": {str(out): fingerprint(out)}, "versions": {"xcube": __version__},
                       "param_hash": "", "tags": {"step": "aligned_gti"}})
    return out


def _time_text(t) -> str:
    """A time [s] in a file name: the shortest text that reads back as the
    same double (``200000100``, ``200000100.45``; never rounded, so ranges
    differing by under a second get distinct names)."""
    return format_value(float(t))


def spectrum_tasks(l1: Level1, det: str, out_dir, *, time_range=None, group_min: int | None = 25,
                   deps: Sequence[str] = (), screen_dir=None, ra=None, dec=None) -> list[Task]:
    """Spectrum, background, response and grouped spectrum of one detector.

    With ``time_range`` (start, stop) [s] the spectrum covers only that range
    and its background gets :func:`aligned_gti` (made here, eagerly, so the
    screening must have run). Products ``<expid>_<det>_spec[_<t0>-<t1>s].pha``,
    ``..._specbkg...pha``, ``..._rsp.fits``, ``..._specgrp...pha``, the times
    written as the shortest text that reads back as the same number
    (``200000100-200000500s``, ``200000100.45-200000500.55s``), so two ranges
    never share a file."""
    d = _det(det)
    out = Path(out_dir).resolve()
    files = _screen_files(l1, d.name, screen_dir or out)
    low = d.name.lower()
    kind_sfx = f"_{_time_text(time_range[0])}-{_time_text(time_range[1])}s" if time_range is not None else ""
    spec = out / f"{l1.expid}_{d.name}_spec{kind_sfx}.pha"
    prefix = spec.with_suffix("")
    p = {"evtfile": files["screen"], "outfile": prefix, "userdetid": d.lc_dets}
    if d.name != "LE":
        p["deadfile"] = files["dtime"] if d.name == "ME" else l1.get("HE", "DTime")
    if d.name != "ME":
        p["eventtype"] = 1
    if time_range is not None:
        p.update(starttime=float(time_range[0]), stoptime=float(time_range[1]))
    p["clobber"] = True
    tag = f"{l1.expid}-{d.name}{kind_sfx}"
    tasks = [Task(f"{low}specgen", p, inputs=[files["screen"]] + ([p["deadfile"]] if "deadfile" in p else []),
                  outputs=[spec], rename={Path(f"{prefix}_g0_{d.group}.pha"): spec}, workdir=out, deps=deps,
                  name=f"{low}specgen-{tag}", tags=_tags(l1, d.name, "spec"))]
    gti = files["gti"]
    if time_range is not None:
        gti = aligned_gti(files["gti"], time_range, out / f"{l1.expid}_{d.name}_gti{kind_sfx}.fits")
    bkg = out / f"{l1.expid}_{d.name}_specbkg{kind_sfx}.pha"
    listfile = _write_list(spec.with_suffix(".txt"), spec)
    tasks.append(Task(f"{low}bkgmap", args=_bkgmap_args(l1, d.name, "spec", files, listfile, 0, d.nchan - 1,
                                                        bkg.with_suffix(""), gti),
                      inputs=[files["screen"], gti, listfile, spec], outputs=[bkg], workdir=out, deps=[tasks[0].name],
                      name=f"{low}bkgmap-spec-{tag}", tags=_tags(l1, d.name, "specbkg")))
    rsp = out / f"{l1.expid}_{d.name}_rsp{kind_sfx}.fits"
    rp = {"phafile": spec, "attfile": l1.get("ACS", "Att")}
    if d.name == "LE":
        rp["tempfile"] = l1.get("LE", "TH")
    rp.update({"ra": ra if ra is not None else -1, "dec": dec if dec is not None else -91, "outfile": rsp,
               "clobber": True})
    tasks.append(Task(f"{low}rspgen", rp, inputs=[spec, l1.get("ACS", "Att")], outputs=[rsp], workdir=out,
                      deps=[tasks[0].name], name=f"{low}rspgen-{tag}", tags=_tags(l1, d.name, "rsp")))
    if group_min:
        grp = out / f"{l1.expid}_{d.name}_specgrp{kind_sfx}.pha"
        tasks.append(grppha(spec, grp, group_min=group_min, backfile=bkg, respfile=rsp,
                            deps=[t.name for t in tasks], name=f"grppha-{tag}",
                            tags=_tags(l1, d.name, "grppha")))
    return tasks


def grppha(infile, outfile, *, group_min: int = 25, backfile=None, respfile=None, deps=(), name=None,
           tags=None) -> Task:
    """``grppha``: group a spectrum to at least ``group_min`` counts per bin
    and set BACKFILE/RESPFILE (commands ``chkey``, ``group min``;
    https://heasarc.gsfc.nasa.gov/lheasoft/ftools/fhelp/grppha.txt). Lazy:
    builds the :class:`Task` only; the tool runs when the task is run."""
    comm = []
    if backfile is not None:
        comm.append(f"chkey BACKFILE {Path(backfile).name}")
    if respfile is not None:
        comm.append(f"chkey RESPFILE {Path(respfile).name}")
    comm += [f"group min {int(group_min)}", "exit"]
    out = Path(outfile).resolve()
    inputs = [infile] + [x for x in (backfile, respfile) if x is not None]
    return Task("grppha", {"infile": Path(infile).resolve(), "outfile": out, "comm": " & ".join(comm),
                           "clobber": True},
                inputs=inputs, outputs=[out], workdir=out.parent, deps=deps, name=name or f"grppha-{out.stem}",
                tags=tags or {"step": "grppha"})


# ---------------------------------------------------------------------------
# the pipeline


DEFAULT_BANDS = {"LE": [(1.0, 10.0)], "ME": [(10.0, 35.0)], "HE": [(28.0, 250.0)]}


@dataclass
class HxmtProducts:
    """Result of :func:`process_exposure`: ``lightcurves[(det, band, binsize)]
    -> (light curve, background)``, ``net[(det, band, binsize)]`` -> net light
    curve, ``pds[(det, band, binsize, norm, rebin)]`` -> power spectrum,
    ``spectra[det] -> dict(spec, bkg, rsp, grp)``, ``screened[det]`` event
    files, and the status table (tools and xcube steps)."""

    out_dir: Path
    expid: str
    screened: dict
    lightcurves: dict
    spectra: dict
    status: object
    net: dict = field(default_factory=dict)
    pds: dict = field(default_factory=dict)


def _check_pair(pair, what: str, need: str, low: float) -> None:
    """``ValueError`` naming ``what`` unless ``pair`` is two finite numbers ``low <= a < b``."""
    import numpy as np

    try:
        a, b = (float(v) for v in pair)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: need {need}") from None
    if not (np.isfinite(a) and np.isfinite(b) and low <= a < b):
        raise ValueError(f"{what}: need {need}")


def process_exposure(expid_dir, out_dir, detectors=("LE", "ME", "HE"), *, bands: dict | None = None,
                     binsize: float = 1.0, spectrum: bool = True, time_range=None, group_min: int | None = 25,
                     segment: float | None = 256.0, rebins=(-0.06,), norms=("leahy", "rms"),
                     client=None, overwrite: bool = False, timeout: float | None = None,
                     workers: int | None = None, progress: bool = False, detstatus=None) -> HxmtProducts:
    """Level-1 exposure -> screened events, light curves with backgrounds, net
    light curves, power spectra, and spectra with backgrounds and responses
    (eager; runs HXMTDAS on Dask, then the xcube steps).

    ``bands``: detector -> list of (emin, emax) keV bands (default LE 1-10,
    ME 10-35, HE 28-250 keV); ``binsize`` [s]; ``segment`` [s], ``rebins``
    and ``norms`` (``leahy``, ``rms``) set the power spectra (``segment=None``:
    none); ``time_range`` restricts the spectra (their backgrounds get an
    aligned GTI). Products go to hxmtdap's layout under ``out_dir`` (module
    text), logs to ``<out_dir>/logs``. Re-running skips what is up to date;
    failures are recorded in ``status`` and the rest goes on. Returns an
    :class:`HxmtProducts` of file paths (``status``: a pandas table, one row
    per tool task and xcube step).
    """
    import numpy as np
    import pandas as pd

    from .batch import run_many
    from .derived import run_steps

    if time_range is not None:  # a usage error, said before the calibration chain runs
        _check_pair(time_range, f"time_range={time_range!r}", "finite start < stop [s, mission time] "
                    "(--time-range START STOP)", low=-np.inf)
    for det, det_bands in (bands or {}).items():
        if not isinstance(det_bands, (list, tuple)) or not all(isinstance(b, (list, tuple)) for b in det_bands):
            raise ValueError(f"bands={{{det!r}: {det_bands!r}}}: give a list of (emin, emax) bands [keV] per detector")
        for band in det_bands:
            _check_pair(band, f"{det} band {band!r}", "0 <= emin < emax [keV] (--band EMIN EMAX)", low=0.0)
    l1 = find_level1(expid_dir)
    out = Path(out_dir).resolve()
    dets = [_det(x).name for x in detectors]
    bands = {**DEFAULT_BANDS, **{k.upper(): v for k, v in (bands or {}).items()}}
    rk = dict(client=client, workers=workers, overwrite=overwrite, timeout=timeout, progress=progress,
              log_dir=out / "logs")
    cal = []
    for det in dets:
        cal += calibration_tasks(l1, det, out / det, detstatus=detstatus if det == "ME" else None)
    parts = [run_many(cal, **rk)]
    state = dict(zip(parts[0]["task"], parts[0]["state"]))
    screened = {}
    for det in dets:
        last = [t for t in cal if t.tags.get("instrument") == det][-1]
        if state.get(last.name) in ("done", "skipped"):
            screened[det] = last.outputs[0]
        else:
            log.warning("%s %s: screening failed; no products (see status)", l1.expid, det)
    products, lcs, specs = _product_tasks(l1, out, screened, bands, binsize, spectrum, time_range, group_min)
    if products:
        parts.append(run_many(products, **rk))
    done = _done_outputs(parts[-1] if products else parts[0], products)
    made = {k: all(str(p) in done for p in v) for k, v in lcs.items()}
    specs = {k: {kk: vv for kk, vv in v.items() if str(vv) in done} for k, v in specs.items()}
    steps, blocked = [], []
    for (det, band, bs), (lc, bkg) in lcs.items():
        (steps if made[(det, band, bs)] else blocked).extend(
            timing_steps(l1.expid, det, out, band, bs, lc, bkg, segment=segment, rebins=rebins, norms=norms))
    lcs = {k: v for k, v in lcs.items() if made[k]}
    _index_lightcurves(out, l1.expid, lcs)
    if steps:
        parts.append(run_steps(steps, client=client, workers=workers, overwrite=overwrite))
    if blocked:  # the net light curve and power spectra of a light curve or background that failed
        parts.append(_not_run(blocked, products, done))
    status = pd.concat(parts, ignore_index=True)
    net, pds = _timing_products(steps, status)
    if any(status["state"].isin(["failed", "timeout"])):
        bad = status[status["state"].isin(["failed", "timeout"])]
        log.warning("%s: %d task(s) failed: %s", l1.expid, len(bad), ", ".join(bad["task"]))
    return HxmtProducts(out_dir=out, expid=l1.expid, screened=screened, lightcurves=lcs, spectra=specs,
                        status=status, net=net, pds=pds)


def _product_tasks(l1, out, screened, bands, binsize, spectrum, time_range, group_min):
    """Light-curve and spectrum tasks of the screened detectors."""
    products, lcs, specs = [], {}, {}
    for det in screened:
        for band in bands.get(det, []):
            ts = lightcurve_tasks(l1, det, out, band, binsize)
            products += ts
            lcs[(det, tuple(band), binsize)] = tuple(t.outputs[0] for t in ts)
        if spectrum:
            try:
                ts = spectrum_tasks(l1, det, out / det, time_range=time_range, group_min=group_min)
            except ValueError as exc:  # e.g. no good time in the range
                log.warning("%s %s: no spectrum: %s", l1.expid, det, exc)
                continue
            products += ts
            specs[det] = {t.tags["step"]: t.outputs[0] for t in ts}
    return products, lcs, specs


def _index_lightcurves(out: Path, expid: str, lcs: dict) -> None:
    """Add the tool-made light curves and backgrounds to ``<out>/products.parquet``."""
    for (det, band, bs), files in lcs.items():
        for kind, path in zip(("lc", "lcbkg"), files):
            naming.add_to_index(out, path, {"obs_id": expid, "instrument": det, "mission": "HXMT"}, kind=kind,
                                energy_band=list(band), time_bin=bs)


def _not_run(steps, tasks, done: set):
    """Status rows (state ``failed``, ``DependencyError``) of xcube ``steps``
    that did not run because a tool task making one of their inputs failed
    (``tasks`` with outputs not in ``done``). Eager (a small table)."""
    import pandas as pd

    from .batch import STATUS_COLUMNS, DependencyError, _status

    rows = []
    for st in steps:
        need = {str(p) for p in st.inputs} - done
        bad = [t.name for t in tasks if need & {str(o) for o in t.outputs}] or sorted(need)
        rows.append(_status(st, "failed", 0.0, error=DependencyError(
            f"{st.name}: not run because {', '.join(bad)} failed")))
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


def _done_outputs(status, tasks) -> set:
    ok = set(status.loc[status["state"].isin(["done", "skipped"]), "task"])
    return {str(o) for t in tasks if t.name in ok for o in t.outputs}


def _timing_products(steps, status):
    ok = set(status.loc[status["state"].isin(["done", "skipped"]), "task"])
    net, pds = {}, {}
    for st in steps:
        if st.name not in ok:
            continue
        key = (st.tags["instrument"], tuple(st.tags["energy_band"]), st.tags["binsize"])
        if st.tags["step"] == "lcnet":
            net[key] = st.outputs[0]
        else:
            pds[key + (st.params["norm"], st.params["rebin"])] = st.outputs[0]
    return net, pds
