"""XMM processing beyond cleaned EPIC lists (issue #16): the RGS chain, images
and exposure maps, spectra with responses, versions and emanom states; against
the fake SAS tasks in tests/fake_tools (which check every argument)."""
from __future__ import annotations

import numpy as np
import pytest
from fake_tools.fixture import activate

import xcube
from xcube.tools import provenance, sas
from xcube.tools.provenance import read_mods
from xcube.tools.sas_pipeline import steps_to_run

ODF_EXPOSURES = (("PN", "S003", "SCIENCE"), ("M1", "S001", "SCIENCE"), ("R1", "S004", "SCIENCE"),
                 ("R1", "U005", "SCIENCE"))
BANDS = ((0.5, 2.0), (2.0, 10.0))


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """One fake observation (pn, MOS1, RGS1 scheduled + unscheduled) processed through every step."""
    root = tmp_path_factory.mktemp("sas16")
    with pytest.MonkeyPatch.context() as mp:
        env = activate(mp, root / "env")
        odf = env.lib.make_xmm_odf(root / "odf", exposures=ODF_EXPOSURES)
        # the shell is set up for another observation: no SAS task may use these
        other = root / "OTHER_OBS"
        (other / "odf").mkdir(parents=True)
        (other / "ccf.cif").write_text("another observation's calibration index")
        mp.setenv("SAS_ODF", str(other / "odf"))
        mp.setenv("SAS_CCF", str(other / "ccf.cif"))
        steps = []
        res = sas.process_observation(odf, root / "out", ("pn", "mos1", "rgs1"), steps=("images", "spectra"),
                                      image_bands=BANDS, workers=2, on_step=lambda s, t, p: steps.append((s, len(t))))
        yield {"root": root, "odf": odf, "res": res, "calls": env.calls(), "env": env, "mp": mp, "steps": steps}


def test_steps_run_in_order_and_report(done):
    assert [s for s, _ in done["steps"]] == ["events", "clean", "images", "spectra"]
    st = done["res"].status
    assert set(st["state"]) == {"done"}, st[st.state != "done"][["task", "message"]]
    assert all(isinstance(n, str) for n in st["task"])  # names, not objects (status.csv, logs, Parquet)
    assert list(dict.fromkeys(st["stage"])) == ["events", "clean", "images", "spectra"]
    assert steps_to_run(["spectra"]) == ["events", "clean", "spectra"]
    with pytest.raises(ValueError, match="choose from events, clean, images, spectra"):
        steps_to_run(["fluxing"])


# -- RGS ---------------------------------------------------------------------------------------------


def test_rgs_chain_one_task_per_stage_and_sub_exposure(done):
    calls = [c for c in done["calls"] if c["tool"] == "rgsproc"]
    got = sorted((next(a for a in c["argv"] if a.startswith("instexpids=")),
                  next(a for a in c["argv"] if a.startswith("entrystage=")),
                  next(a for a in c["argv"] if a.startswith("finalstage="))) for c in calls)
    want = sorted((f"instexpids=R1{e}", f"entrystage={s}", f"finalstage={s}")
                  for e in ("S004", "U005") for s in ("1:events", "2:angles", "3:filter"))
    assert got == want
    assert all("withinstexpids=yes" in c["argv"] for c in calls)
    res = done["res"]
    assert set(res.rgs) == {("rgs1", "S004"), ("rgs1", "U005")}
    ev = xcube.open_events(res.rgs[("rgs1", "S004")])
    assert ev.attrs["profile"] == "xmm-rgs1" and ev.attrs["instrument"] == "RGS1"
    assert {"beta_corr", "xdsp_corr", "pi", "ccdnr"} <= set(ev.variables) and ev.sizes["event"] > 1000
    assert (ev["flag"].values == 0).all()  # the filter stage kept good events only
    from astropy.io import fits

    with fits.open(res.rgs[("rgs1", "S004")]) as h:
        assert [x.name for x in h[1:]] == ["EVENTS"] + [f"STDGTI{c:02d}" for c in range(1, 10)]
    # the angles stage corrected the merged list in place: a recorded modification, not a new product
    merged = res.out_dir / "rgs1" / "S004" / "P0123456789R1S004merged0000.FIT"
    mods = read_mods(merged)
    assert [m["tool"] for m in mods] == ["rgsproc"] and "2:angles" in " ".join(mods[0]["command"])
    g = provenance(res.out_dir)
    assert g.nodes[str(merged)]["modified_by"] == ["rgsproc"]


def test_rgs_without_unscheduled(done, tmp_path):
    res = sas.process_observation(done["odf"], tmp_path / "out", ("rgs1",), unscheduled=False, workers=2)
    assert set(res.rgs) == {("rgs1", "S004")} and res.events == {}


# -- images ------------------------------------------------------------------------------------------


def test_images_and_exposure_maps_per_instrument_and_merged(done):
    from astropy.io import fits
    from astropy.wcs import WCS

    res = done["res"]
    assert set(res.images) == {(i, b) for i in ("pn", "mos1", "epic") for b in BANDS}
    grids = set()
    for (inst, band), files in res.images.items():
        with fits.open(files["image"]) as hi, fits.open(files["expmap"]) as he:
            img, expo = hi[0].data, he[0].data
            assert img.shape == expo.shape == (512, 512)
            w = WCS(hi[0].header)
            assert w.wcs.ctype[0] == "RA---TAN" and abs(w.wcs.cdelt[1] * 3600 - 4.35) < 1e-6
            # the target (tangent point, X = Y = 25921 sky pixels) falls on its pixel in both
            x, y = w.world_to_pixel_values(83.633083, 22.0145)
            assert abs(x + 1 - ((25921 - 3649) / 87 + 0.5)) < 1e-6 and abs(y + 1 - ((25921 - 3649) / 87 + 0.5)) < 1e-6
            assert WCS(he[0].header).wcs.compare(w.wcs)
            assert he[0].header["PIMIN"] == int(band[0] * 1000) and he[0].header["PIMAX"] == int(band[1] * 1000) - 1
            assert np.nanmax(expo) > 1000 and img.sum() > 0
            grids.add(tuple(hi[0].header[k] for k in ("CRPIX1", "CRPIX2", "CDELT1", "CDELT2")))
    assert len(grids) == 1  # one sky grid for every instrument, so they add up
    for band in BANDS:
        parts = [fits.getdata(res.images[(i, band)]["image"]) for i in ("pn", "mos1")]
        assert np.array_equal(fits.getdata(res.images[("epic", band)]["image"]), parts[0] + parts[1])
        exps = [fits.getdata(res.images[(i, band)]["expmap"]) for i in ("pn", "mos1")]
        assert np.allclose(fits.getdata(res.images[("epic", band)]["expmap"]), exps[0] + exps[1])
    # the counts are the screened events of the band in the cleaned list
    ev = xcube.open_events(res.events["pn"])
    sel = xcube.select(ev, expr="pattern <= 4 && flag == 0")
    x, y = sel["x"].values, sel["y"].values
    on_grid = (x >= 3649) & (x < 3649 + 512 * 87) & (y >= 3649) & (y < 3649 + 512 * 87)
    e = sel["pi"].values
    n = int((on_grid & (e >= 500) & (e < 2000)).sum())  # the band is half-open: PI in [500:1999]
    assert fits.getdata(res.images[("pn", (0.5, 2.0))]["image"]).sum() == n


def test_image_and_expmap_command_lines(done):
    ev = [c for c in done["calls"] if c["tool"] == "evselect" and any(a.startswith("imageset=") for a in c["argv"])]
    assert len(ev) == 4
    need = {"xcolumn=X", "ycolumn=Y", "imagebinning=binSize", "ximagebinsize=87", "yimagebinsize=87",
            "withxranges=yes", "ximagemin=3649", "ximagemax=48106", "withyranges=yes", "yimagemin=3649",
            "yimagemax=48106", "withimageset=yes"}
    assert all(need <= set(c["argv"]) for c in ev)
    ex = [c for c in done["calls"] if c["tool"] == "eexpmap"]
    assert len(ex) == 4 and all({"withdetcoords=no", "withvignetting=yes"} <= set(c["argv"]) for c in ex)
    assert all(any(a.startswith("attitudeset=") and a.endswith("P0123456789OBX000ATTTSR0000.FIT") for a in c["argv"])
               for c in ex)


# -- spectra -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("inst,nchan,binsize,pmax", [("pn", 4096, 5, 20479), ("mos1", 800, 15, 11999)])
def test_spectra_agree_with_xcube_spectrum_in_every_channel(done, inst, nchan, binsize, pmax):
    res = done["res"]
    files = res.spectra[inst]
    sp = xcube.read_spectrum(files["grouped"])
    assert sp.sizes["channel"] == nchan and sp.attrs["channel_range"] == (0, nchan - 1)
    for key, f in (("respfile", "rmf"), ("ancrfile", "arf"), ("backfile", "background")):
        assert sp.attrs[key] == str(files[f])
    ev = xcube.open_events(res.events[inst])
    from xcube.missions import profile_of
    from xcube.tools.sas_products import ds9_region

    prof = profile_of(ev)
    assert prof.spectral_grid == (0, pmax, binsize)
    mine = xcube.spectrum(ev, region=ds9_region(files["source_region"]),
                          background=ds9_region(files["background_region"]), expr=prof.screening,
                          channel_bin=binsize, pi_range=(0, pmax)).compute()
    assert np.array_equal(mine["counts"].values, sp["counts"].values)
    assert np.array_equal(mine["bkg_counts"].values, sp["bkg_counts"].values)
    assert sp["counts"].sum() > 300 and sp["bkg_counts"].sum() >= 30
    assert np.array_equal(mine["pi_lo"].values, sp["pi_lo"].values)
    # BACKSCAL from backscale and the region areas of xcube.spectrum agree to 1 %
    assert mine.attrs["backscal"] == pytest.approx(sp.attrs["backscal"], rel=0.01)
    assert mine.attrs["bkg_backscal"] == pytest.approx(sp.attrs["bkg_backscal"], rel=0.01)
    assert sp.attrs["exposure"] == pytest.approx(mine.attrs["exposure"], rel=1e-6)
    # energies from the response's EBOUNDS match the channel grid (PI in eV)
    assert np.allclose(sp["energy_lo"].values, sp["pi_lo"].values / 1000.0, atol=1e-4)


def test_responses_have_the_ogip_hdus(done):
    from astropy.io import fits

    files = done["res"].spectra["pn"]
    with fits.open(files["rmf"]) as h:
        assert [x.name for x in h[1:]] == ["MATRIX", "EBOUNDS"]
        assert h["MATRIX"].header["DETCHANS"] == 4096 and len(h["MATRIX"].data) == 2400
        assert h["MATRIX"].header["HDUCLAS1"] == "RESPONSE" and h["EBOUNDS"].header["HDUCLAS2"] == "EBOUNDS"
        elo = h["MATRIX"].data["ENERG_LO"]
    with fits.open(files["arf"]) as h:
        assert [x.name for x in h[1:]] == ["SPECRESP"]
        assert np.array_equal(h["SPECRESP"].data["ENERG_LO"], elo) and h["SPECRESP"].data["SPECRESP"].max() > 100
    calls = {c["tool"]: c["argv"] for c in done["calls"] if c["tool"] in ("rmfgen", "arfgen", "backscale")}
    assert {"withenergybins=yes", "energymin=0.1", "energymax=12", "nenergybins=2400"} <= set(calls["rmfgen"])
    assert {"withrmfset=yes", "detmaptype=psf"} <= set(calls["arfgen"])
    assert any(a.startswith("badpixlocation=") for a in calls["arfgen"] + calls["backscale"])
    spec = [c["argv"] for c in done["calls"] if c["tool"] == "evselect" and any(a.startswith("spectrumset=")
                                                                                  for a in c["argv"])]
    pn = [a for a in spec if "specchannelmax=20479" in a]
    assert pn and all({"energycolumn=PI", "spectralbinsize=5", "withspecranges=yes", "specchannelmin=0"} <= set(a)
                      for a in pn)
    assert any("spectralbinsize=15" in a and "specchannelmax=11999" in a for a in spec)
    assert any("((X,Y) IN circle(25921,25921,600))" in a for args in pn for a in args)


def test_rerun_calls_no_tool(done):
    env = done["env"]
    env.reset_calls()
    res = sas.process_observation(done["odf"], done["root"] / "out", ("pn", "mos1", "rgs1"),
                                  steps=("images", "spectra"), image_bands=BANDS, workers=2)
    assert set(res.status["state"]) == {"skipped"}
    assert {c["tool"] for c in env.calls()} <= {"sasversion"}  # the SAS version check only


def test_every_sas_task_gets_this_observations_odf_and_ccf(done):
    # SAS_ODF/SAS_CCF come from the task, never from the shell (set to another observation's in the fixture)
    res = done["res"]
    odf, summ = str(done["odf"].resolve()), str(res.summary.path.resolve())
    ccf = str((res.out_dir / "ccf.cif").resolve())
    calls = [c for c in done["calls"] if c["tool"] != "sasversion" and c["argv"] != ["-v"]]
    for c in calls:
        assert c["SAS_ODF"] == (odf if c["tool"] in ("cifbuild", "odfingest") else summ), c
        assert c["SAS_CCF"] == (None if c["tool"] == "cifbuild" else ccf), c
    assert {"backscale", "emanom", "evselect", "specgroup", "rmfgen", "arfgen", "emosaic", "eexpmap", "espfilt",
            "rgsproc"} <= {c["tool"] for c in calls}


# -- versions and emanom states --------------------------------------------------------------------


def test_every_record_holds_the_tool_version(done):
    g = provenance(done["res"].out_dir)
    products = [d for _, d in g.nodes(data=True) if d.get("kind") == "product" and d.get("tool") != "copy"]
    assert products and all(d["versions"]["version"] == "xmmsas_20230412_1735-21.0.0" for d in products)
    assert {d["versions"]["tool_version"] for d in products if d["tool"] == "rmfgen"} == {
        "rmfgen (rmfgen-1.0-fake) [xmmsas_20230412_1735-21.0.0]"}
    assert done["res"].sas_version == "21.0.0"


def test_emanom_needs_sas_19(done, tmp_path):
    mp = done["mp"]
    mp.setenv("XCUBE_FAKE_SAS_VERSION", "xmmsas_20190531_1155-18.0.0")
    mp.setenv("SAS_DIR", str(tmp_path / "xmmsas_18"))  # another installation: its version is looked up afresh
    try:
        with pytest.warns(UserWarning, match="emanom needs SAS 19.0.0 or later, this is SAS 18.0.0"):
            res = sas.process_observation(done["odf"], tmp_path / "out", ("mos1",), flare_filter=None, workers=2)
    finally:
        mp.delenv("XCUBE_FAKE_SAS_VERSION")
        mp.delenv("SAS_DIR")
    assert res.sas_version == "18.0.0" and res.ccds == {} and "emanom" in res.notes[0]
    assert "emanom" not in set(res.status["tool"])
    assert 4 in set(xcube.open_events(res.events["mos1"])["ccdnr"].values.tolist())  # nothing filtered


def test_emanom_states_are_configurable(done, tmp_path):
    # the fake flags MOS1 CCD 4 "B" and CCD 5 "I": the default keeps I, ("G",) drops it too
    assert done["res"].ccds[("mos1", "S001")] == [1, 2, 3, 5, 6, 7]
    res = sas.process_observation(done["odf"], tmp_path / "out", ("mos1",), flare_filter=None,
                                  mos_ccd_states=("G",), workers=2)
    assert res.ccds[("mos1", "S001")] == [1, 2, 3, 6, 7]
    assert not {4, 5} & set(xcube.open_events(res.events["mos1"])["ccdnr"].values.tolist())


def test_new_task_builders_use_documented_names(tmp_path):
    import _fakelib

    from xcube.tools import sas_products, sas_rgs

    summ = tmp_path / "0001_0123456789_SCX00000SUM.SAS"
    summ.write_text("0123456789 / Observation/Slew Identifier\n")
    s = sas.parse_odf_summary(summ)
    e = sas.Exposure("rgs2", "S005", True, "SCIENCE", "Spectroscopy")
    tasks = sas_rgs.rgs_chain(s, tmp_path / "ccf.cif", e, tmp_path)
    assert [t.params["entrystage"] for t in tasks] == ["1:events", "2:angles", "3:filter"]
    assert tasks[0].params["instexpids"] == "R2S005" and tasks[2].deps == (tasks[1].name,)
    ts, _ = sas_products.spectrum_tasks(tmp_path / "ev.fits", "mos2", tmp_path, tmp_path / "ccf.cif",
                                        source=("circle", 1.0, 2.0, 3.0), background=("annulus", 1, 2, 4, 5), stem="m2")
    its, _ = sas_products.image_tasks({"pn": tmp_path / "a.fits", "mos2": tmp_path / "b.fits"}, tmp_path / "att",
                                      tmp_path / "ccf", tmp_path, obs_id="1")
    for t in tasks + ts + its:
        req, opt = _fakelib.PARAMS[t.tool]
        assert set(k for k, v in t.params.items() if v is not None) <= req | opt, t.tool
        assert req <= set(t.params), t.tool
    # the task name is the given name= or specgroup-<stem> (an inner helper once shadowed name=)
    assert ts[-1].tool == "specgroup" and ts[-1].name == "specgroup-m2"
    grp = sas_products.specgroup(tmp_path / "a.pha", tmp_path / "b_grp.pha", rmfset=tmp_path / "b.rmf")
    assert grp.name == "specgroup-b_grp" and grp.params["rmfset"] == "b.rmf"
    assert sas_products.specgroup(tmp_path / "a.pha", tmp_path / "b_grp.pha", name="mine").name == "mine"
    assert all(isinstance(t.name, str) for t in tasks + ts + its)
    with pytest.raises(ValueError, match="RGS exposures"):
        sas_rgs.rgsproc(s, tmp_path / "ccf.cif", sas.Exposure("pn", "S001", True, "SCIENCE", ""), tmp_path, "events")
    with pytest.raises(ValueError, match="EPIC cameras"):
        sas_products.band_image(tmp_path / "r.fits", tmp_path / "i.fits", "rgs1", (0.5, 2.0))
