"""Mission software packages: which tool belongs to which software, how to
set it up, and the versions recorded in every product's provenance.

Versions come from the package's version command (``sasversion``,
``fversion``) and, where the package's tasks report their own version
(SAS: ``evselect -v`` prints ``evselect (evselect-3.71) [xmmsas_...]``), from
the tool itself. Each command runs once per executable and installation (``SAS_DIR``,
``HEADAS``...) per process (cached).
:func:`sas_version` parses the SAS release (``xmmsas_20230412_1735-21.0.0``
-> ``(21, 0, 0)``) for tasks that need a minimum release.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from typing import Mapping

__all__ = ["Package", "PACKAGES", "package_of", "package_versions", "tool_version", "parse_version",
           "sas_version"]


@dataclass(frozen=True)
class Package:
    """A mission software package: its tools, environment and set-up help.

    ``tool_version_args``: arguments that make one of its tools print its own
    version (SAS ``-v``), or None when its tools cannot."""

    name: str
    description: str
    setup: str
    headas: bool  # HEASoft-style parameter interface (PFILES, HEADASNOQUERY)
    version_command: tuple[str, ...] | None
    version_env: tuple[str, ...]
    tools: frozenset
    tool_version_args: tuple[str, ...] | None = None


PACKAGES: dict[str, Package] = {
    "SAS": Package(
        name="SAS",
        description="XMM-Newton Science Analysis System (SAS)",
        setup=(
            "install SAS (https://www.cosmos.esa.int/web/xmm-newton/sas-installation), then before starting "
            "Python: `export SAS_DIR=/path/to/xmmsas_<version>; source $SAS_DIR/setsas.sh` (or your site's "
            "`sas-setup`), and `export SAS_CCFPATH=/path/to/ccf` for the calibration files"
        ),
        headas=False,
        version_command=("sasversion",),
        version_env=("SAS_DIR", "SAS_CCFPATH"),
        # the tasks xcube's wrappers call and the common ones of the SAS threads and task list
        # (https://xmm-tools.cosmos.esa.int/external/sas/current/doc/); another task installed under
        # $SAS_DIR is found by its location (package_of)
        tools=frozenset(
            "cifbuild odfingest sasversion atthkgen hkgtigen attcalc attfilter epchain emchain epproc emproc "
            "epframes epevents emframes emevents badpixfind badpix epreject epspatialcti dpssflag espfilt emanom "
            "evselect tabgtigen gtibuild gtimerge gtialign evlistcomb merge eexpmap emosaic emosaic_prep emask "
            "esensmap esplinemap eboxdetect emldetect edetect_chain edetect_stack ecoordconv esky2det eposcorr "
            "catcorr srcmatch ekstest asmooth evigweight epatplot eregionanalyse ebkgreg backscale rmfgen arfgen "
            "specgroup specadd epicspeccombine barycen epiclccorr bkgoptrate evqpb rgsproc rgsframes rgsevents "
            "rgsangles rgsfilter rgsregions rgsspectrum rgsrmfgen rgscombine rgsfluxer rgslccorr omichain "
            "omfchain omgchain mosspectra pnspectra mosback pnback cheese".split()
        ),
        # every SAS task prints "<task> (<task>-<version>) [<SAS release>]" with -v
        # (SAS User Guide, "Running SAS tasks": common command-line options)
        tool_version_args=("-v",),
    ),
    "HEASoft": Package(
        name="HEASoft",
        description="HEASoft (FTOOLS / mission software from the HEASARC)",
        setup=(
            "install HEASoft (https://heasarc.gsfc.nasa.gov/lheasoft/), then before starting Python: "
            "`export HEADAS=/path/to/heasoft/<platform>; source $HEADAS/headas-init.sh` and set CALDB "
            "(`source $CALDB/software/tools/caldbinit.sh`)"
        ),
        headas=True,
        version_command=("fversion",),
        version_env=("HEADAS", "CALDB"),
        # the tools xcube's wrappers call and common FTOOLS and mission tasks
        # (https://heasarc.gsfc.nasa.gov/lheasoft/ftools/); another tool installed under $HEADAS is
        # found by its location (package_of)
        tools=frozenset(
            "pcaprepobsid maketime pcaextlc2 pcaextspect2 pcabackest saextrct seextrct hxtdead hxtback "
            "nicerl2 nicerl3 nicerl3-lc nicerl3-spect nimaketime nicerarf nicerrmf xrtpipeline xrtproducts "
            "xrtexpomap xrtmkarf xrtlccorr nupipeline nuproducts nuexpomap numkarf numkrmf barycorr extractor "
            "xselect ftselect fselect ftmerge fmerge ftcopy fcopy ftappend fappend ftlist flist fdump fstruct "
            "ftstat ftsort ftcalc ftverify ftdiff fparkey fkeypar fkeyprint fthedit fversion grppha "
            "ftgrouppha mathpha addspec addrmf marfrmf rbnpha lcmath lcurve powspec efsearch quzcif".split()
        ),
    ),
    "HXMTDAS": Package(
        name="HXMTDAS",
        description="Insight-HXMT Data Analysis Software (HXMTDAS, runs on HEASoft)",
        setup=(
            "install HXMTDAS (http://hxmten.ihep.ac.cn/software.jhtml) on top of HEASoft, then before "
            "starting Python: `export HEADAS=/path/to/hxmtsoft/install/<platform>; source "
            "$HEADAS/headas-init.sh`, and set CALDB, CALDBCONFIG, CALDBALIAS to the HXMT CALDB and REFPATH "
            "to the background-model reference files (needed by lebkgmap/mebkgmap/hebkgmap)"
        ),
        headas=True,
        version_command=None,
        version_env=("HEADAS", "CALDB", "REFPATH"),
        tools=frozenset(
            "lepical lerecon legtigen legticorr legti lescreen lelcgen lebkgmap lespecgen lerspgen "
            "mepical megrade megtigen megticorr megti mescreen melcgen mebkgmap mespecgen merspgen "
            "hepical hegtigen hescreen helcgen hebkgmap hespecgen herspgen hxbary hpipeline".split()
        ),
    ),
}


# where a set-up package installs its executables: a tool outside the lists found there is its
_INSTALL_ROOT = {"SAS": "SAS_DIR", "HEASoft": "HEADAS"}


def package_of(tool: str, env: Mapping[str, str] | None = None) -> Package | None:
    """The :class:`Package` a tool belongs to: the one whose list names it,
    else (with ``env``, e.g. ``os.environ``) the one whose installation
    (``$SAS_DIR``, ``$HEADAS``) holds the executable ``PATH`` finds; None
    for an unknown tool. Eager (a look-up; with ``env`` also a PATH search)."""
    for pkg in PACKAGES.values():
        if tool in pkg.tools:
            return pkg
    exe = shutil.which(tool, path=env.get("PATH")) if env is not None else None
    if exe is None:
        return None
    real = os.path.realpath(exe)
    for name, var in _INSTALL_ROOT.items():
        root = env.get(var)
        if root and os.path.commonpath([real, os.path.realpath(root)]) == os.path.realpath(root):
            return PACKAGES[name]
    return None


_CACHE: dict[tuple, dict] = {}
_LOCK = threading.Lock()
_VERSION_LINE = re.compile(r"\d+\.\d+")
# the SAS release as every SAS task and sasversion print it: xmmsas_<YYYYMMDD>_<HHMM>-<X.Y.Z>
_SAS_RELEASE = re.compile(r"xmmsas_\d{8}_\d{4}-(\d+(?:\.\d+)+)")
# sasversion's build information: "SAS release: xmmsas_..." or "SAS release: 21.0.0"
_SAS_RELEASE_LINE = re.compile(r"SAS\s+release\s*:\s*v?(\d+(?:\.\d+)+)\b", re.IGNORECASE)
# time stamps (sasversion's "started:"/"ended: 2024-05-09T14:07:50.000") and dates are not versions
_TIME_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
                         r"|\b\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?")


def _cached_output(key: tuple, argv: list[str], env: Mapping[str, str]) -> dict:
    """The line holding the version printed by ``argv`` (once per key): the
    ``SAS release:`` line if there is one, else the last line holding a version
    number (time stamps do not count)."""
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    res: dict = {}
    try:
        out = subprocess.run(argv, env=dict(env), capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
        lines = [ln.strip() for ln in (out.stdout + out.stderr).splitlines()
                 if _VERSION_LINE.search(_TIME_STAMP.sub(" ", ln))]
        # sasversion prints its build information ("SAS release: xmmsas_...") between banner lines
        # that end in time stamps: the release line is the one that says it
        release = [ln for ln in lines if re.match(r"SAS\s+release\s*:", ln, re.IGNORECASE)]
        if release or lines:
            res["version"] = (release or lines)[-1]
    except (OSError, subprocess.SubprocessError) as exc:
        res["version_error"] = str(exc)
    with _LOCK:
        _CACHE[key] = res
    return res


def _exe_key(exe: str) -> tuple:
    real = os.path.realpath(exe)
    try:
        return real, os.stat(real).st_mtime_ns
    except OSError:
        return real, 0


def _setup_of(pkg: Package, env: Mapping[str, str]) -> tuple:
    # another SAS_DIR/HEADAS is another installation: its versions are cached apart
    return tuple(env.get(v, "") for v in pkg.version_env)


def package_versions(pkg: Package | None, env: Mapping[str, str]) -> dict:
    """Version information of a package for provenance records: the set-up
    environment variables (``SAS_DIR``, ``HEADAS``, ``CALDB``...) and the
    version printed by its version command (``sasversion``, ``fversion``)
    under ``"version"``. The command runs once per executable (cached). Eager:
    may run the version command (blocking) on its first call."""
    if pkg is None:
        return {}
    info = {v: env[v] for v in pkg.version_env if env.get(v)}
    exe = shutil.which(pkg.version_command[0], path=env.get("PATH")) if pkg.version_command else None
    if exe is None:
        return info
    got = dict(_cached_output((pkg.name, *_exe_key(exe), *_setup_of(pkg, env)), [exe, *pkg.version_command[1:]],
                              env))
    m = _SAS_RELEASE.search(got.get("version", ""))
    if m:  # "SAS release: xmmsas_20230412_1735-21.0.0" -> the release itself
        got["version"] = m.group(0)
    return {**info, **got}


def tool_version(tool: str, env: Mapping[str, str]) -> str | None:
    """The version a tool reports about itself (SAS ``evselect -v`` ->
    ``"evselect (evselect-3.71) [xmmsas_20230412_1735-21.0.0]"``), or None
    when its package has no such option or the tool is not on PATH. Eager: may
    run the tool (blocking) on its first call; cached after."""
    pkg = package_of(tool, env)
    if pkg is None or not pkg.tool_version_args:
        return None
    exe = shutil.which(tool, path=env.get("PATH"))
    if exe is None:
        return None
    got = _cached_output((tool, *_exe_key(exe), *_setup_of(pkg, env)), [exe, *pkg.tool_version_args], env)
    return got.get("version")


def parse_version(text) -> tuple[int, ...] | None:
    """The release number in a version string: ``"xmmsas_20230412_1735-21.0.0"``
    -> ``(21, 0, 0)`` (also inside ``sasversion``'s lines such as
    ``"... [xmmsas_20230412_1735-21.0.0] ended: 2024-05-09T14:07:50.000"``, or
    ``"SAS release: 21.0.0"``), ``"heasoft-6.33.2"`` -> ``(6, 33, 2)``; time
    stamps are never read as versions; None if there is no version. Eager (text
    only)."""
    if not text:
        return None
    text = str(text)
    m = _SAS_RELEASE.search(text) or _SAS_RELEASE_LINE.search(text)
    if m:
        return tuple(int(x) for x in m.group(1).split("."))
    found = re.findall(r"(?<![\d.])(\d+(?:\.\d+)+)(?![\d.])", _TIME_STAMP.sub(" ", text))
    return tuple(int(x) for x in found[-1].split(".")) if found else None


def sas_version(env: Mapping[str, str] | None = None) -> tuple[int, ...] | None:
    """The SAS release ``sasversion`` reports, e.g. ``(21, 0, 0)``, or None
    when SAS is not set up (eager; runs ``sasversion`` once, cached)."""
    env = dict(os.environ) if env is None else env
    return parse_version(package_versions(PACKAGES["SAS"], env).get("version"))
