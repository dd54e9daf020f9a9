"""Which package a tool belongs to (xcube.tools.packages): every tool the
wrappers call, and the SAS/HEASoft tasks people run by hand with ``xcube
tools run``. A SAS task outside the list would get the shell's relative
SAS_CCF, skip its re-run after a calibration change and a missing-tool error
without the set-up steps."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

import xcube.tools as xt
from xcube.tools import Task, ToolNotFoundError, run
from xcube.tools.packages import PACKAGES, package_of

TOOLS_DIR = Path(xt.__file__).resolve().parent


def _called_tools() -> dict[str, set]:
    """Tool names the wrapper modules pass to Task(...)/task(...), by module."""
    out = {}
    for mod in ("sas", "sas_products", "sas_rgs", "sas_pipeline", "heasoft", "hxmt"):
        text = (TOOLS_DIR / f"{mod}.py").read_text()
        out[mod] = set(re.findall(r"\b[Tt]ask\(\s*\"([A-Za-z0-9_-]+)\"", text))
    # HXMTDAS products are named per detector: f"{le|me|he}lcgen" ...
    out["hxmt"] |= {f"{d}{s}" for d in ("le", "me", "he") for s in ("lcgen", "bkgmap", "specgen", "rspgen")}
    return out


def test_every_tool_the_wrappers_call_has_its_package():
    called = _called_tools()
    assert {"evselect", "eexpmap", "emosaic", "rgsproc"} <= called["sas"] | called["sas_products"] | called["sas_rgs"]
    for mod, tools in called.items():
        for tool in tools:
            pkg = package_of(tool)
            want = {"heasoft": "HEASoft", "hxmt": "HXMTDAS"}.get(mod, "SAS")
            if tool == "grppha":  # HEASoft's grouping tool, used by the HXMT chain
                want = "HEASoft"
            assert pkg is not None and pkg.name == want, (mod, tool, pkg and pkg.name)


@pytest.mark.parametrize("tool", ["barycen", "epiclccorr", "gtibuild", "edetect_chain", "evigweight", "rgsrmfgen",
                                  "esky2det", "attcalc", "emldetect", "eboxdetect", "esplinemap", "eregionanalyse",
                                  "epatplot", "epspatialcti", "rgscombine", "specadd", "epicspeccombine"])
def test_sas_tasks_are_sas(tool):
    assert package_of(tool) is PACKAGES["SAS"]


@pytest.mark.parametrize("tool", ["seextrct", "extractor", "fselect", "fcopy", "fdump", "fstruct", "fkeypar",
                                  "fthedit", "ftlist", "mathpha", "addspec", "rbnpha", "xrtexpomap"])
def test_heasoft_tasks_are_heasoft(tool):
    assert package_of(tool) is PACKAGES["HEASoft"]


def test_no_tool_is_in_two_packages():
    names = [n for p in PACKAGES.values() for n in p.tools]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("tool, package", [("seextrct", "HEASoft"), ("extractor", "HEASoft"),
                                           ("fselect", "HEASoft"), ("barycen", "SAS"), ("epiclccorr", "SAS")])
def test_missing_tool_error_names_its_package(tmp_path, monkeypatch, tool, package):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolNotFoundError) as err:
        run(Task(tool, {"infile": "x"}, workdir=tmp_path))
    assert PACKAGES[package].description in str(err.value) and PACKAGES[package].setup in str(err.value)


_FAKE = """#!{python}
import json, os, sys
from astropy.io import fits
if sys.argv[1:] == ["-v"]:
    sys.exit(print("epiclccorr (epiclccorr-1.0) [xmmsas_20230412_1735-21.0.0]"))
args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
with open(os.environ["FAKE_LOG"], "a") as fh:
    fh.write(json.dumps({{"cwd": os.getcwd(), "SAS_CCF": os.environ.get("SAS_CCF"),
                         "HEADASNOQUERY": os.environ.get("HEADASNOQUERY")}}) + "\\n")
fits.HDUList([fits.PrimaryHDU()]).writeto(args["outset"], overwrite=True)
"""


def test_cli_sas_task_outside_the_old_list_gets_an_absolute_hashed_ccf(tmp_path, monkeypatch, capsys):
    """``xcube tools run epiclccorr`` with a relative SAS_CCF (the reviewer's reproduction): the task gets it
    as an absolute path, not read in --workdir, and another SAS_CCF re-runs it."""
    from xcube.cli import main

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "epiclccorr"
    fake.write_text(_FAKE.format(python=sys.executable))
    fake.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "ccfA.cif").write_text("a")
    (tmp_path / "ccfB.cif").write_text("b")
    argv = ["tools", "run", "epiclccorr", "outset=o.fits", "--output", "o.fits", "--workdir", "sub"]
    states = []
    for ccf in ("ccfA.cif", "ccfB.cif", "ccfB.cif"):
        monkeypatch.setenv("SAS_CCF", ccf)
        assert main(argv) == 0
        states.append("up to date" in capsys.readouterr().out)
    assert states == [False, False, True]  # the new calibration re-ran the task; the same one did not
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["SAS_CCF"] for c in calls] == [str(tmp_path / "ccfA.cif"), str(tmp_path / "ccfB.cif")]
    assert all(c["HEADASNOQUERY"] is None for c in calls)  # a SAS task, not a HEASoft one
    rec = json.loads((tmp_path / "sub" / ".o.fits.xcube.json").read_text())
    assert rec["package"] == "SAS" and rec["env"]["SAS_CCF"] == str(tmp_path / "ccfB.cif")


def test_unlisted_tool_is_known_by_where_it_is_installed(tmp_path, monkeypatch):
    """A task in no list (a new SAS or HEASoft release's) belongs to the package whose set-up
    directory holds the executable PATH finds; elsewhere on PATH it stays unknown."""
    sas_dir, headas, other = tmp_path / "xmmsas_21", tmp_path / "heasoft" / "x86_64", tmp_path / "usr"
    for d, name in ((sas_dir, "newsastask"), (headas, "newftool"), (other, "sometool")):
        (d / "bin").mkdir(parents=True)
        (d / "bin" / name).write_text("#!/bin/sh\n")
        (d / "bin" / name).chmod(0o755)
    env = {"PATH": ":".join(str(d / "bin") for d in (sas_dir, headas, other)), "SAS_DIR": str(sas_dir),
           "HEADAS": str(headas)}
    assert package_of("newsastask", env) is PACKAGES["SAS"]
    assert package_of("newftool", env) is PACKAGES["HEASoft"]
    assert package_of("sometool", env) is None and package_of("newsastask") is None
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert Task("newsastask", {}, workdir=tmp_path).package is PACKAGES["SAS"]
