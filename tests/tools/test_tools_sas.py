"""xcube.tools.sas: ODF summary and emanom parsing, cleaning expressions, and
process_observation on a fake ODF (with the fake SAS tasks)."""
from __future__ import annotations

import numpy as np
import pytest
from fake_tools.fixture import activate

import xcube
from xcube.tools import draw_provenance, provenance, sas


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    """One fake observation (pn S003; MOS1 S001 + unscheduled U002) processed once for the module."""
    root = tmp_path_factory.mktemp("sas")
    with pytest.MonkeyPatch.context() as mp:
        env = activate(mp, root / "env")
        odf = env.lib.make_xmm_odf(root / "odf", exposures=(("PN", "S003", "SCIENCE"), ("M1", "S001", "SCIENCE"),
                                                            ("M1", "U002", "SCIENCE"), ("M2", "S002", "CALIBRATE")))
        res = sas.process_observation(odf, root / "out", ("pn", "mos1", "mos2"), workers=2)
        calls = env.calls()
        yield {"root": root, "odf": odf, "res": res, "calls": calls, "env": env, "mp": mp}


def test_parse_odf_summary(processed):
    s = processed["res"].summary
    assert s.obs_id == "0123456789" and s.revolution == "0123" and s.target == "FAKE CRAB"
    assert s.active == {"M1": True, "M2": True, "PN": True, "R1": False, "R2": False, "OM": False}
    ids = {(e.instrument, e.exp_id): e for e in s.exposures}
    assert set(ids) == {("pn", "S003"), ("mos1", "S001"), ("mos1", "U002"), ("mos2", "S002")}
    assert ids[("mos1", "U002")].scheduled is False and ids[("pn", "S003")].scheduled is True
    assert ids[("pn", "S003")].mode == "PrimeFullWindow" and ids[("pn", "S003")].filter == "Medium"
    assert len(ids[("pn", "S003")].ccd_modes) == 12 and ids[("mos1", "S001")].ccd_modes[0] == (1, "IMAGING")
    assert ids[("mos2", "S002")].type == "CALIBRATE"
    assert {(e.instrument, e.exp_id) for e in s.select(("mos1",), unscheduled=False)} == {("mos1", "S001")}
    assert ("mos2", "S002") not in {(e.instrument, e.exp_id) for e in s.select()}  # calibration exposure


def test_parse_emanom(tmp_path):
    log = tmp_path / "mos1S001-anom.log"
    log.write_text("emanom: mos1S001 CCD: 1 Hardness ratio: 3.0 Status: G\n"
                   "emanom: mos1S001 CCD: 4 Hardness ratio: 1.2 Status: B\n"
                   "emanom: mos1S001 CCD: 5 Hardness ratio: 2.7 Status: I\n"
                   "emanom: mos1S001 CCD: 6 Hardness ratio: nan Status: O\n")
    states = sas.parse_emanom(log)
    assert states == {1: "G", 4: "B", 5: "I", 6: "O"}
    assert sas.accepted_ccds(states) == [1, 5]
    assert sas.accepted_ccds(states, ("G",)) == [1]
    with pytest.raises(ValueError, match="unknown emanom states"):
        sas.accepted_ccds(states, ("X",))
    (tmp_path / "bad.log").write_text("nothing here\n")
    with pytest.raises(ValueError, match="emanom log"):
        sas.parse_emanom(tmp_path / "bad.log")


def test_sas_version_reads_the_release_not_the_time_stamp(fake_tools, monkeypatch):
    # sasversion's last line ends in a time stamp: "... [xmmsas_20230412_1735-21.0.0] ended: 2024-05-09T14:07:50.000"
    import os

    from xcube.tools import packages

    monkeypatch.setattr(packages, "_CACHE", {})
    assert packages.sas_version() == (21, 0, 0)
    assert packages.package_versions(packages.PACKAGES["SAS"], dict(os.environ))["version"] == \
        "xmmsas_20230412_1735-21.0.0"
    line = "sasversion:- sasversion (sasversion-1.3)  [xmmsas_20230412_1735-21.0.0] ended:    2024-05-09T14:07:50.000"
    assert packages.parse_version(line) == (21, 0, 0)
    assert packages.parse_version("evselect (evselect-3.71) [xmmsas_20190531_1155-18.0.0]") == (18, 0, 0)
    assert packages.parse_version("SAS release: 20.1.2") == (20, 1, 2)
    assert packages.parse_version("heasoft-6.33.2") == (6, 33, 2)
    assert packages.parse_version("ended: 2024-05-09T14:07:50.000") is None
    monkeypatch.setenv("XCUBE_FAKE_SAS_VERSION", "xmmsas_20190531_1155-18.0.0")
    packages._CACHE.clear()
    assert packages.sas_version() == (18, 0, 0)


def test_output_inside_the_odf_is_skipped_on_rerun(fake_tools, tmp_path):
    # `xcube tools sas process odf --out odf/proc`: cifbuild and odfingest read the ODF directory, which
    # now holds their own products and logs; these must not make them run again
    odf = fake_tools.lib.make_xmm_odf(tmp_path / "odf", exposures=(("PN", "S003", "SCIENCE"),))
    res = sas.process_observation(odf, odf / "proc", ("pn",), steps=("events",), workers=1)
    assert set(res.status["state"]) == {"done"}
    fake_tools.reset_calls()
    res = sas.process_observation(odf, odf / "proc", ("pn",), steps=("events",), workers=1)
    assert set(res.status["state"]) == {"skipped"} and fake_tools.calls() == []


@pytest.mark.parametrize("bad", [dict(energy_band=(2.0, 1.0)), dict(image_bands=[(3.0, 1.0)]),
                                 dict(source_radius=0.0), dict(timeout=-1.0), dict(workers=0)])
def test_process_observation_refuses_bad_options_before_any_task(fake_tools, tmp_path, bad):
    """As `xcube process` (check_options): a band running backwards, a zero radius... stop before
    cifbuild, not after the whole chain has run."""
    odf = fake_tools.lib.make_xmm_odf(tmp_path / "odf", exposures=(("PN", "S003", "SCIENCE"),))
    fake_tools.reset_calls()
    with pytest.raises(ValueError):
        sas.process_observation(odf, tmp_path / "out", ("pn",), steps=("clean", "images"), **bad)
    assert fake_tools.calls() == []


def test_cleaning_expression(tmp_path):
    e = sas.cleaning_expression("pn", gti=tmp_path / "g.fits")
    assert e.startswith("#XMMEA_EP && (PATTERN <= 4 && FLAG == 0) && (PI in [200:15000]) && gti(")
    assert e.endswith("g.fits,TIME)")
    m = sas.cleaning_expression("EMOS1", energy_band=(0.5, 2.0), ccds=[1, 2, 7])
    assert (
        m
        == "#XMMEA_EM && (PATTERN <= 12 && FLAG == 0) && (PI in [500:1999]) && (CCDNR == 1 || CCDNR == 2 || CCDNR == 7)"
    )
    with pytest.raises(ValueError, match="unknown EPIC instrument"):
        sas.cleaning_expression("rgs1")


def test_process_observation_event_lists_open_in_xcube(processed):
    res = processed["res"]
    assert set(res.events) == {"pn", "mos1"}  # MOS2 had only a calibration exposure
    pn = xcube.open_events(res.events["pn"])
    mos1 = res.open("mos1")
    assert pn.attrs["instrument"] == "EPN" and mos1.attrs["instrument"] == "EMOS1"
    assert pn.attrs["obs_id"] == "0123456789" and pn.attrs["mjdref"] == 50814.0
    for ev, pmax, emax in ((pn, 4, 15.0), (mos1, 12, 12.0)):
        pattern, flag, energy = (ev[c].values for c in ("pattern", "flag", "energy"))
        assert ev.sizes["event"] > 1000
        assert pattern.max() <= pmax and (flag == 0).all()
        assert energy.min() >= 0.2 - 1e-6 and energy.max() <= emax + 1e-6
        assert "CRVAL1" in ev.attrs and ev.attrs["CTYPE1"] == "RA---TAN"
    # emanom flagged MOS1 CCD 4 bad: no events from it
    assert 4 not in set(mos1["ccdnr"].values.tolist()) and res.ccds[("mos1", "S001")] == [1, 2, 3, 5, 6, 7]
    # espfilt removed the flare (the fake puts it at 55-65% of each exposure): no event there
    t = pn["time"].values
    t0, t1 = 2.0e8, 2.0e8 + 8000.0
    flare = (t > t0 + 0.57 * (t1 - t0)) & (t < t0 + 0.63 * (t1 - t0))
    assert flare.sum() == 0
    assert pn.attrs["exposure"] < 8000.0 * 0.95
    # MOS1: the two sub-exposures were merged
    mt = mos1["time"].values
    assert mt.min() < 2.0e8 + 1000 and mt.max() > 2.0e8 + 9000 + 1000
    assert set(res.exposures) == {("pn", "S003"), ("mos1", "S001"), ("mos1", "U002")}


def test_process_observation_tool_calls(processed):
    calls = [c for c in processed["calls"] if c["tool"] != "sasversion"]
    ep = [c for c in calls if c["tool"] == "epchain"]
    assert len(ep) == 2
    assert "withoutoftime=yes" in ep[0]["argv"] and "keepintermediate=raw" in ep[0]["argv"]
    assert "runepframes=no" in ep[1]["argv"] and "withoutoftime=yes" not in ep[1]["argv"]
    assert ep[0]["cwd"] == ep[1]["cwd"]  # the normal run reuses the OOT run's intermediate files
    em = sorted(next(a for a in c["argv"] if a.startswith("exposures=")) for c in calls if c["tool"] == "emchain")
    assert em == ["exposures=S001", "exposures=U002"]  # one emchain call per sub-exposure
    assert sum(c["tool"] == "merge" for c in calls) == 1
    tools = [c["tool"] for c in calls]
    assert tools.index("cifbuild") < tools.index("odfingest") < tools.index("epchain")
    status = processed["res"].status
    assert set(status["state"]) == {"done"} and (processed["res"].out_dir / "status.csv").exists()


def test_rerun_makes_no_tool_call(processed):
    env = processed["env"]
    env.reset_calls()
    res = sas.process_observation(processed["odf"], processed["root"] / "out", ("pn", "mos1", "mos2"), workers=2)
    assert env.calls() == []
    assert set(res.status["state"]) == {"skipped"}
    assert res.events == processed["res"].events


def test_provenance_graph(processed, tmp_path):
    import networkx as nx

    out = processed["res"].out_dir
    g = provenance(out)
    odf = str(processed["odf"].resolve())
    ccf = str(out / "ccf.cif")
    summ = str(out / "0123_0123456789_SCX00000SUM.SAS")
    evli = str(out / "pn" / "S003" / "P0123456789PNS003PIEVLI0000.FIT")
    gti = str(out / "pn" / "S003" / "pnS003-gti.fits")  # (the fakes are SAS 21: espfilt's short names)
    clean = str(out / "pn" / "S003" / "P0123456789PNS003_clean.fits")
    final = str(out / "P0123456789PN_clean.fits")
    assert g.edges[odf, ccf]["tool"] == "cifbuild"
    assert g.edges[ccf, summ]["tool"] == "odfingest"
    assert g.edges[summ, evli]["tool"] == "epchain"
    assert g.edges[evli, gti]["tool"] == "espfilt"
    assert g.edges[gti, clean]["tool"] == "evselect" and g.edges[evli, clean]["tool"] == "evselect"
    assert g.edges[clean, final]["tool"] == "copy"
    m1 = [str(out / "mos1" / e / f"P0123456789M1{e}_clean.fits") for e in ("S001", "U002")]
    merged = str(out / "P0123456789M1_clean.fits")
    assert all(g.edges[m, merged]["tool"] == "merge" for m in m1)
    assert nx.has_path(g, odf, final) and nx.has_path(g, odf, merged)
    node = g.nodes[clean]
    assert node["kind"] == "product" and "PATTERN <= 4" in node["params"]["expression"]
    assert node["versions"]["version"] == "xmmsas_20230412_1735-21.0.0" and node["versions"]["xcube"]
    assert g.nodes[odf]["kind"] == "input"
    png = draw_provenance(g, tmp_path / "prov.png")
    assert png.stat().st_size > 5000 and png.read_bytes()[:4] == b"\x89PNG"


def _process_with_fault(processed, fault: str, out):
    """process_observation (pn + MOS1) with the fake emanom misbehaving as ``fault`` (an XCUBE_FAKE_* switch)."""
    mp = processed["mp"]
    mp.setenv(fault, "emanom")
    try:
        return sas.process_observation(processed["odf"], out, ("pn", "mos1"), flare_filter=None, workers=2)
    finally:
        mp.delenv(fault)


def test_failed_step_is_recorded_and_others_go_on(processed, tmp_path):
    res = _process_with_fault(processed, "XCUBE_FAKE_FAIL", tmp_path / "out")
    st = res.status.set_index("task")
    assert st.loc["emanom-0123456789-M1S001", "state"] == "failed"
    assert "failing as asked" in st.loc["emanom-0123456789-M1S001", "message"] or \
        st.loc["emanom-0123456789-M1S001", "error_class"] == "ToolError"
    assert set(res.events) == {"pn"}  # MOS1 left out, pn finished
    assert xcube.open_events(res.events["pn"]).sizes["event"] > 0


def test_exposure_without_ccds_is_recorded_and_others_go_on(processed, tmp_path, capsys):
    """A MOS exposure keeping no CCD (or with an emanom log without CCD lines) fails alone: a status row names
    the observation, instrument and exposure; pn and status.csv are made."""
    from xcube.cli import main

    out = tmp_path / "out"
    code = main(["tools", "sas", "process", str(processed["odf"]), "--out", str(out), "--instruments", "pn", "mos1",
                 "--ccd-states", "O", "--flare-filter", "none", "--workers", "2"])
    captured = capsys.readouterr()
    assert code == 1  # a task failed
    assert (out / "P0123456789PN_clean.fits").exists() and (out / "status.csv").exists()
    import pandas as pd

    st = pd.read_csv(out / "status.csv").set_index("task")
    for exp in ("S001", "U002"):
        row = st.loc[f"evselect-clean-0123456789-M1{exp}"]
        assert row["state"] == "failed" and row["error_class"] == "ValueError"
        assert row["message"].startswith(f"0123456789 mos1 {exp}: no CCD left to select")
    assert st.loc["evselect-clean-0123456789-PNS003", "state"] == "done"
    assert "P0123456789PN_clean.fits" in captured.out
    # an emanom log without CCD lines: the same
    res = _process_with_fault(processed, "XCUBE_FAKE_GARBAGE", tmp_path / "out2")
    st = res.status.set_index("task")
    assert "0123456789 mos1 S001: cannot read the CCD states" in st.loc["evselect-clean-0123456789-M1S001", "message"]
    assert set(res.events) == {"pn"} and (tmp_path / "out2" / "status.csv").exists()
    with pytest.raises(ValueError, match="unknown emanom states"):
        sas.process_observation(processed["odf"], tmp_path / "out3", ("mos1",), mos_ccd_states=("X",))


def test_cli_sas_process(processed, capsys):
    from xcube.cli import main

    code = main(["tools", "sas", "process", str(processed["odf"]), "--out", str(processed["root"] / "out"),
                 "--instruments", "pn", "mos1", "--workers", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "skipped" in out and "P0123456789PN_clean.fits" in out
    code = main(["tools", "provenance", str(processed["root"] / "out")])
    assert code == 0 and "P0123456789M1_clean.fits: merge <-" in capsys.readouterr().out


def test_sas_builders_take_odf_and_ccf_into_the_task(tmp_path, fake_tools, monkeypatch):
    """Every SAS builder puts the observation's SAS_ODF/SAS_CCF into Task.env (so into the parameter hash);
    the runner never passes the shell's to a SAS task."""
    from xcube.tools import run, sas_products
    from xcube.tools.provenance import read_record, record_path

    summ = tmp_path / "0001_0123456789_SCX00000SUM.SAS"
    summ.write_text("0123456789 / Observation/Slew Identifier\n")
    s = sas.parse_odf_summary(summ)
    ccf, ccf2 = tmp_path / "ccf.cif", tmp_path / "other" / "ccf.cif"
    e = sas.Exposure("mos1", "S001", True, "SCIENCE", "PrimeFullWindow")
    ev = tmp_path / "ev.fits"

    def build(c):
        o = {"odf": s, "ccf": c}
        return [sas.emanom(ev, e, tmp_path, **o), sas.evselect_events(ev, tmp_path / "c.fits", "true", **o),
                sas.evselect_image(ev, tmp_path / "i.fits", **o), sas.evselect_spectrum(ev, tmp_path / "s", "pn", **o),
                sas.evselect_lightcurve(ev, tmp_path / "l.fits", time_bin=10, **o),
                sas.tabgtigen(tmp_path / "l.fits", tmp_path / "g.fits", "RATE<1", **o),
                *sas.flare_gti(ev, tmp_path, "pn", **o), sas.merge(ev, ev, tmp_path / "m.fits", **o),
                *sas.merge_exposures([ev, ev, ev], tmp_path / "mm.fits", **o),
                sas.espfilt(ev, c, e, tmp_path, summary=s),
                sas.eexpmap(tmp_path / "i.fits", tmp_path / "a", ev, tmp_path / "x.fits", c, odf=s),
                sas_products.band_image(ev, tmp_path / "b.fits", "pn", (0.5, 2), **o),
                sas_products.emosaic([tmp_path / "i.fits"], tmp_path / "e.fits", **o),
                sas_products.backscale(tmp_path / "s", ev, **o), sas_products.rmfgen(tmp_path / "s", "r.rmf", c, odf=s),
                sas_products.arfgen(tmp_path / "s", tmp_path / "a.arf", tmp_path / "r.rmf", ev, c, odf=s),
                sas_products.specgroup(tmp_path / "s", tmp_path / "g.pha", **o)]

    want = {"SAS_ODF": str(summ.resolve()), "SAS_CCF": str(ccf.resolve())}
    tasks, others = build(ccf), build(ccf2)
    for t, t2 in zip(tasks, others):
        assert dict(t.env) == want, t.name
        assert t.param_hash() != t2.param_hash(), t.name  # another calibration re-runs the task
    ts, _ = sas_products.spectrum_tasks(ev, "pn", tmp_path, ccf, source=("circle", 1, 2, 3), stem="x", odf=summ)
    its, _ = sas_products.image_tasks({"pn": ev, "mos1": ev}, tmp_path / "att", ccf, tmp_path, obs_id="1", odf=summ)
    assert all(dict(t.env) == want for t in ts + its)
    # a SAS task without them runs without them, whatever the shell holds
    monkeypatch.setenv("SAS_CCF", str(ccf2))
    monkeypatch.setenv("SAS_ODF", str(tmp_path))
    fake_tools.lib.write_lightcurve(tmp_path / "lc.fits", np.arange(0.5, 10), np.ones(10), np.ones(10),
                                    {"TELESCOP": "XMM"}, timedel=1.0)
    run(sas.tabgtigen(tmp_path / "lc.fits", tmp_path / "gti.fits", "RATE<2"))
    call = fake_tools.calls("tabgtigen")[-1]
    assert call["SAS_ODF"] is None and call["SAS_CCF"] is None
    # on the command line the shell's values are what the user means: they become the task's own
    from xcube.cli import main

    assert main(["tools", "run", "tabgtigen", "table=lc.fits", "expression=RATE<3", "gtiset=g2.fits",
                 "--output", "g2.fits", "--workdir", str(tmp_path)]) == 0
    assert fake_tools.calls("tabgtigen")[-1]["SAS_CCF"] == str(ccf2)
    assert read_record(record_path(tmp_path / "g2.fits"))["env"] == {"SAS_CCF": str(ccf2), "SAS_ODF": str(tmp_path)}


def test_task_builders_use_documented_names(tmp_path):
    summ = tmp_path / "0001_0123456789_SCX00000SUM.SAS"
    summ.write_text("0123456789 / Observation/Slew Identifier\n")
    s = sas.parse_odf_summary(summ)
    e = sas.Exposure("pn", "S003", True, "SCIENCE", "PrimeFullWindow")
    oot, normal = sas.epchain_pair(s, tmp_path / "ccf.cif", e, tmp_path)
    assert oot.params["exposure"] == "003" and oot.params["schedule"] == "S"
    assert normal.deps == (oot.name,)
    assert oot.env["SAS_ODF"].endswith("SUM.SAS") and oot.env["SAS_CCF"].endswith("ccf.cif")
    img = sas.evselect_image(tmp_path / "ev.fits", tmp_path / "img.fits", bin_size=80)
    assert img.params["imagebinning"] == "binSize" and img.params["ximagebinsize"] == 80
    spec = sas.evselect_spectrum(tmp_path / "ev.fits", tmp_path / "s.fits", "mos2")
    assert spec.params["specchannelmax"] == 11999 and spec.params["energycolumn"] == "PI"
    rate, gti = sas.flare_gti(tmp_path / "ev.fits", tmp_path, "pn")
    assert gti.params["expression"] == "RATE<=0.4" and gti.deps == (rate.name,)
    merges = sas.merge_exposures([tmp_path / f"{i}.fits" for i in range(3)], tmp_path / "all.fits")
    assert [m.params["outset"].endswith(n) for m, n in zip(merges, ("all.part1.fits", "all.fits"))] == [True, True]
    assert merges[1].deps == (merges[0].name,)
    exp = sas.eexpmap(tmp_path / "i.fits", tmp_path / "att.fits", tmp_path / "ev.fits", tmp_path / "x.fits",
                      tmp_path / "ccf.cif", energy_band=(0.5, 2.0))
    assert (exp.params["pimin"], exp.params["pimax"]) == (500, 1999)
    with pytest.raises(ValueError, match="pn exposures"):
        sas.epchain(s, tmp_path / "ccf.cif", sas.Exposure("mos1", "S001", True, "SCIENCE", ""), tmp_path)
    # all names appear in the fake tools' parameter lists, taken from the SAS documentation
    import _fakelib

    for t in [oot, normal, img, spec, rate, gti, *merges, exp]:
        req, opt = _fakelib.PARAMS[t.tool]
        assert set(t.params) <= req | opt, (t.tool, set(t.params) - req - opt)


def test_image_lightcurve_spectrum_expmap_on_fake_tools(processed, tmp_path):
    from astropy.io import fits

    from xcube.tools import run_many

    out = processed["res"].out_dir
    ev = processed["res"].events["pn"]
    att = out / "pn" / "S003" / "P0123456789OBX000ATTTSR0000.FIT"
    img = sas.evselect_image(ev, tmp_path / "img.fits", bin_size=400)
    lc = sas.evselect_lightcurve(ev, tmp_path / "lc.fits", time_bin=100.0)
    sp = sas.evselect_spectrum(ev, tmp_path / "sp.fits", "pn")
    ex = sas.eexpmap(img.outputs[0], att, ev, tmp_path / "exp.fits", out / "ccf.cif", deps=(img.name,))
    table = run_many([img, lc, sp, ex], workers=2, progress=False)
    assert set(table["state"]) == {"done"}, table[["task", "message"]]
    with fits.open(tmp_path / "lc.fits") as h:
        assert h["RATE"].header["TIMEDEL"] == 100.0 and len(h["RATE"].data) > 10
    with fits.open(tmp_path / "sp.fits") as h:
        assert h["SPECTRUM"].data["COUNTS"].sum() == xcube.open_events(ev).sizes["event"]
    with fits.open(tmp_path / "exp.fits") as h, fits.open(tmp_path / "img.fits") as i:
        assert h[0].data.shape == i[0].data.shape and np.nanmax(h[0].data) > 0


def test_a_run_failing_before_any_task_leaves_no_empty_out_directory(fake_tools, tmp_path):
    """Sweep p28: `xcube tools sas process notodf --out new/` failed and left an empty new/; a
    directory that existed before is kept."""
    (tmp_path / "notodf").mkdir()
    with pytest.raises(Exception, match="SUM.ASC"):
        sas.process_observation(tmp_path / "notodf", tmp_path / "new" / "out", ("pn",))
    assert not (tmp_path / "new").exists()  # (and the parent it made)
    (tmp_path / "kept").mkdir()
    with pytest.raises(Exception, match="SUM.ASC"):
        sas.process_observation(tmp_path / "notodf", tmp_path / "kept", ("pn",))
    assert (tmp_path / "kept").is_dir()
