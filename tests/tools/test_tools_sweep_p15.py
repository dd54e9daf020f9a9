"""Mission-tool wrappers against the tools' documentation (sweep p15/s4, items 2, 3, 5, 6):
espfilt's command and output names by SAS release, epchain's runradmonfix=N under SAS 21.0.0,
error lines under exit code 0, and the window in Swift-XRT WT file names."""
from __future__ import annotations

import numpy as np
import pytest
from fake_tools.fixture import activate

from xcube.tools import Task, ToolError, heasoft, run, run_many, sas
from xcube.tools.provenance import read_record, record_path
from xcube.tools.runner import command_line

SAS20 = "xmmsas_20211130_0941-20.0.0"
SAS21 = "xmmsas_20230412_1735-21.0.0"


def _summary(tmp_path):
    summ = tmp_path / "0001_0123456789_SCX00000SUM.SAS"
    summ.write_text("0123456789 / Observation/Slew Identifier\n")
    return sas.parse_odf_summary(summ)


# --- item 2: espfilt by SAS release ---------------------------------------------------------------


def test_espfilt_command_and_output_names_follow_the_sas_release(tmp_path):
    pn = sas.Exposure("pn", "S003", True, "SCIENCE", "PrimeFullWindow")
    ev, ccf = tmp_path / "ev.fits", tmp_path / "ccf.cif"
    # SAS 20: withlongnames=yes, outputs named with the band (DAXA's SAS 20.0.0 command)
    t20 = sas.espfilt(ev, ccf, pn, tmp_path, sas_version=(20, 0, 0))
    assert "withlongnames=yes" in command_line(t20)
    assert [p.name for p in t20.outputs + list(t20.text_outputs)] == [
        "pnS003-gti-2500-8500.fits", "pnS003-allevc-2500-8500.fits", "pnS003-hist-2500-8500.qdp"]
    # SAS 21 and later: no withlongnames, outputs without the band (DAXA's SAS >= 21 command)
    for version in ((21, 0, 0), (22, 1, 0)):
        t = sas.espfilt(ev, ccf, pn, tmp_path, sas_version=version)
        assert not any(a.startswith("withlongnames") for a in command_line(t))
        assert [p.name for p in t.outputs + list(t.text_outputs)] == [
            "pnS003-gti.fits", "pnS003-allevc.fits", "pnS003-hist.qdp"]
        assert {k: p.name for k, p in sas.espfilt_outputs("mos1", "S001", tmp_path, sas_version=version).items()} \
            == {"gti": "mos1S001-gti.fits", "allevc": "mos1S001-allevc.fits", "hist": "mos1S001-hist.qdp"}
    # the other parameters are the same for both
    same = [a for a in command_line(t20) if not a.startswith("withlongnames")]
    assert same == command_line(sas.espfilt(ev, ccf, pn, tmp_path, sas_version=(21, 0, 0)))
    # below SAS 20 there is no histogram method: a clear error, naming the alternative
    with pytest.raises(ValueError, match=r"needs SAS 20\.0\.0 or later, this is SAS 19\.0\.0.*flare_filter='rate'"):
        sas.espfilt(ev, ccf, pn, tmp_path, sas_version=(19, 0, 0))


@pytest.mark.parametrize("release, long_names", [(SAS20, True), (SAS21, False)])  # (22.x: as 21, above)
def test_process_observation_espfilt_on_the_installed_sas_release(tmp_path, release, long_names):
    # the fake espfilt behaves as the release's: SAS 20 names outputs with the band when asked
    # (withlongnames=yes), SAS 21 and later have no withlongnames and write <inst><exp>-gti.fits
    with pytest.MonkeyPatch.context() as mp:
        env = activate(mp, tmp_path / "env")
        mp.setenv("XCUBE_FAKE_SAS_VERSION", release)
        odf = env.lib.make_xmm_odf(tmp_path / "odf", exposures=(("PN", "S003", "SCIENCE"),
                                                                ("M1", "S001", "SCIENCE")))
        res = sas.process_observation(odf, tmp_path / "out", ("pn", "mos1"), steps=("clean",), workers=1)
        calls = env.calls("espfilt")
    assert set(res.status["state"]) == {"done"}, res.status[["task", "message"]]
    assert set(res.events) == {"pn", "mos1"}
    assert len(calls) == 2 and all(("withlongnames=yes" in c["argv"]) == long_names for c in calls)
    sfx = "-2500-8500" if long_names else ""
    assert (tmp_path / "out" / "pn" / "S003" / f"pnS003-gti{sfx}.fits").is_file()
    assert (tmp_path / "out" / "mos1" / "S001" / f"mos1S001-gti{sfx}.fits").is_file()
    # the cleaning used espfilt's GTI file
    clean = read_record(record_path(res.exposures[("pn", "S003")]))
    assert f"pnS003-gti{sfx}.fits,TIME)" in clean["params"]["expression"]


def test_process_observation_refuses_espfilt_below_sas_20_before_running_anything(tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        env = activate(mp, tmp_path / "env")
        mp.setenv("XCUBE_FAKE_SAS_VERSION", "xmmsas_20190531_1155-18.0.0")
        odf = env.lib.make_xmm_odf(tmp_path / "odf", exposures=(("PN", "S003", "SCIENCE"),))
        with pytest.raises(ValueError, match="SAS 18.0.0.*flare_filter='rate'"):
            sas.process_observation(odf, tmp_path / "out", ("pn",), steps=("clean",), workers=1)
        assert {c["tool"] for c in env.calls()} <= {"sasversion"}
        # the SAS-thread rate cut needs no espfilt, and the events step alone none either
        with pytest.warns(UserWarning, match="emanom needs SAS 19"):
            res = sas.process_observation(odf, tmp_path / "out", ("pn",), steps=("clean",), flare_filter="rate",
                                          workers=1)
        assert set(res.events) == {"pn"} and not env.calls("espfilt")


# --- item 3: epchain runradmonfix=N under SAS 21.0.0 -----------------------------------------------


def test_epchain_gets_runradmonfix_no_for_sas_21_0_0_only(tmp_path):
    s = _summary(tmp_path)
    pn = sas.Exposure("pn", "S003", True, "SCIENCE", "PrimeFullWindow")
    for version, want in (((21, 0, 0), True), ((20, 0, 0), False), ((21, 0, 1), False), ((22, 0, 0), False)):
        oot, normal = sas.epchain_pair(s, tmp_path / "ccf.cif", pn, tmp_path, sas_version=version)
        for t in (oot, normal):
            assert ("runradmonfix=no" in command_line(t)) == want, (version, t.name)
    import _fakelib

    assert "runradmonfix" in _fakelib.PARAMS["epchain"][1]


def test_pn_events_on_sas_21_0_0(tmp_path):
    # the fake SAS 21.0.0 epchain fails without runradmonfix=N, as the real one does (SAS watch-out)
    with pytest.MonkeyPatch.context() as mp:
        env = activate(mp, tmp_path / "env")
        mp.setenv("XCUBE_FAKE_SAS_VERSION", SAS21)
        odf = env.lib.make_xmm_odf(tmp_path / "odf", exposures=(("PN", "S003", "SCIENCE"),))
        res = sas.process_observation(odf, tmp_path / "out", ("pn",), steps=("events",), workers=1)
        calls = env.calls("epchain")
    assert set(res.status["state"]) == {"done"}, res.status[["task", "message"]]
    assert len(calls) == 2 and all("runradmonfix=no" in c["argv"] for c in calls)


# --- item 5: an error line under exit code 0 fails the run ------------------------------------------


def _lightcurve(fake_tools, path):
    fake_tools.lib.write_lightcurve(path, np.arange(0.5, 10), np.ones(10), np.ones(10), {"TELESCOP": "XMM"},
                                    timedel=1.0)
    return path


def test_error_line_under_exit_code_0_fails_and_is_not_recorded(fake_tools, tmp_path, monkeypatch):
    lc = _lightcurve(fake_tools, tmp_path / "lc.fits")
    gti = tmp_path / "gti.fits"
    t = sas.tabgtigen(lc, gti, "RATE<2")
    monkeypatch.setenv("XCUBE_FAKE_ERROR_EXIT0", "tabgtigen")
    with pytest.raises(ToolError, match=r"exited with code 0 but reported an error: \*\* tabgtigen: error "
                                        r"\(FakeError\)") as exc:
        run(t)
    assert exc.value.returncode == 0 and any("FakeError" in e for e in exc.value.errors)
    assert not gti.exists() and read_record(record_path(gti)) is None
    # so the next run runs it again (it is not 'up to date'), and succeeds once the tool does
    monkeypatch.delenv("XCUBE_FAKE_ERROR_EXIT0")
    assert run(t).state == "done" and len(fake_tools.calls("tabgtigen")) == 2
    # a HEASoft tool: "ERROR: <tool>: ..." on stderr; run_many records the step as failed
    ev = fake_tools.lib._write_generic(
        tmp_path / "ev.fits", {"TIME": np.arange(10.0), "PI": np.arange(10, dtype=np.int32)},
        {"TELESCOP": "NuSTAR", "INSTRUME": "FPMA", "OBS_ID": "1", "MJDREFI": 55197, "MJDREFF": 0.0,
         "TSTART": 0.0, "TSTOP": 10.0}, [("GTI", None, np.array([0.0]), np.array([10.0]))], None)
    sel = heasoft.ftselect(ev, tmp_path / "sel.fits", "PI < 5")
    monkeypatch.setenv("XCUBE_FAKE_ERROR_EXIT0", "ftselect")
    table = run_many([sel], workers=1, progress=False)
    assert list(table["state"]) == ["failed"]
    assert "ERROR: ftselect: failed, but exits with status 0" in table["message"].iloc[0]
    assert not (tmp_path / "sel.fits").exists()
    # opting out keeps the old behaviour: done, the line reported
    quiet = Task(sel.tool, sel.params, inputs=sel.inputs, outputs=sel.outputs, workdir=sel.workdir,
                 error_lines_fatal=False)
    res = run(quiet)
    assert res.state == "done" and res.errors == ["ERROR: ftselect: failed, but exits with status 0 "
                                                  "(XCUBE_FAKE_ERROR_EXIT0)"]


def test_warnings_under_exit_code_0_do_not_fail(fake_tools, tmp_path, monkeypatch):
    lc = _lightcurve(fake_tools, tmp_path / "lc.fits")
    monkeypatch.setenv("XCUBE_FAKE_LOG_BYTES", "20000")  # chatty, with "** tabgtigen: warning (FakeChatty)"
    res = run(sas.tabgtigen(lc, tmp_path / "gti.fits", "RATE<2"))
    assert res.state == "done" and res.warnings and not res.errors


def test_failure_lines_per_tool_family():
    from xcube.tools.logs import failure_lines

    lines = ["** evselect: error (NoSuchFile), file x.fits not found",
             "** epchain: warning (NoExposure), nothing to do",
             "ERROR: ftselect: bad expression",
             "Error: cannot open file",
             "lcurve: Error: no light curve",
             "Task uvotsource 0.0 terminating with status 6",
             "Task ftcopy 1.0 terminating with status 0",
             "Task nifpmsel 1.0 terminating with status -1",  # negative statuses fail too (sweep p25)
             "   chi-square error estimate 0.3",
             "no errors found"]
    assert failure_lines(lines, "SAS") == ["** evselect: error (NoSuchFile), file x.fits not found"]
    assert failure_lines(lines, "HEASoft") == ["ERROR: ftselect: bad expression", "Error: cannot open file",
                                               "lcurve: Error: no light curve",
                                               "Task uvotsource 0.0 terminating with status 6",
                                               "Task nifpmsel 1.0 terminating with status -1"]
    assert len(failure_lines(lines)) == 6  # a tool of no known package: either form


# --- item 6: Swift-XRT WT cleaned files use window w2 ----------------------------------------------


def test_xrtpipeline_wt_output_uses_window_w2(fake_tools, tmp_path):
    obs = tmp_path / "00012345001"
    (obs / "xrt" / "event").mkdir(parents=True)
    (obs / "xrt" / "event" / "sw00012345001xwtw2po_uf.evt.gz").write_bytes(b"level 1 WT events")
    wt = heasoft.xrtpipeline(obs, tmp_path / "out", srcra=1.0, srcdec=2.0, mode="wt")
    assert [p.name for p in wt.outputs] == ["sw00012345001xwtw2po_cl.evt"]
    assert run(wt).state == "done" and (tmp_path / "out" / "sw00012345001xwtw2po_cl.evt").is_file()
    pc = heasoft.xrtpipeline(obs, tmp_path / "out", srcra=1.0, srcdec=2.0)
    assert [p.name for p in pc.outputs] == ["sw00012345001xpcw3po_cl.evt"]
    w4 = heasoft.xrtpipeline(obs, tmp_path / "out", srcra=1.0, srcdec=2.0, window="w4")
    assert [p.name for p in w4.outputs] == ["sw00012345001xpcw4po_cl.evt"]
    assert "window" not in w4.params  # not an xrtpipeline parameter: only the expected name
    with pytest.raises(ValueError, match="w1, w2, w3 or w4"):
        heasoft.xrtpipeline(obs, tmp_path / "out", srcra=1.0, srcdec=2.0, window="w9")


def test_a_sas_chain_reporting_a_constituent_error_keeps_its_checked_outputs(fake_tools, tmp_path, monkeypatch,
                                                                              caplog):
    """emchain/epchain go on past a constituent's error (SAS stoponerror=no): with their outputs present
    and valid they are done, the error line logged as a warning (a single tool's error line under exit
    code 0 fails, above)."""
    import logging

    odf = fake_tools.lib.make_xmm_odf(tmp_path / "odf", exposures=(("M1", "S001", "SCIENCE"),))
    monkeypatch.setenv("XCUBE_FAKE_ERROR_EXIT0", "emchain")
    with caplog.at_level(logging.WARNING, logger="xcube.tools"):
        res = sas.process_observation(odf, tmp_path / "out", ("mos1",), workers=1)
    em = res.status[res.status["tool"] == "emchain"]
    assert list(em["state"]) == ["done"] and ("mos1", "S001") in res.exposures
    assert any("emchain exited with code 0 and its outputs exist, but it reported 1 error line(s), the first: "
               "** emchain: error (FakeError)" in r.getMessage() for r in caplog.records)
