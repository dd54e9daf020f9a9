"""HXMT chain: net light curves and Leahy / rms power spectra in hxmtdap's
layout (lc/<det>/{raw,bkg,net}/, pds/<det>/<norm>/<rebin>/), against the
fake HXMTDAS tools."""
from __future__ import annotations

import numpy as np
import pytest
from fake_tools.fixture import activate

import xcube
from xcube.io.powspec import read_power_spectrum
from xcube.products.naming import find_products
from xcube.tools import hxmt, provenance

T0 = 2.0e8


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hxmt-timing")
    with pytest.MonkeyPatch.context() as mp:
        env = activate(mp, root / "env")
        expdir = env.lib.make_hxmt_expid(root / "l1", t0=T0)
        res = hxmt.process_exposure(expdir, root / "out", ["LE"], binsize=0.125, spectrum=False, segment=128.0,
                                    rebins=(-0.06, 0), workers=2)
        yield {"root": root, "expdir": expdir, "res": res, "env": env}


def test_layout_and_status(run):
    res, out = run["res"], run["root"] / "out"
    assert set(res.status["state"]) == {"done"}, res.status[["task", "message"]]
    key = ("LE", (1.0, 10.0), 0.125)
    raw, bkg = res.lightcurves[key]
    assert raw == out / "lc/LE/raw/P010129900101_LE_lc_1-10keV_125ms.lc"
    assert bkg == out / "lc/LE/bkg/P010129900101_LE_lcbkg_1-10keV_125ms.lc"
    assert res.net[key] == out / "lc/LE/net/P010129900101_LE_lcnet_1-10keV_125ms.lc"
    assert res.pds[key + ("leahy", -0.06)] == \
        out / "pds/LE/leahy/-0.06/P010129900101_LE_pds_1-10keV_125ms_leahy_128s_log0.06.fits"
    assert res.pds[key + ("rms", 0)].parent == out / "pds/LE/rms/0"


def test_net_light_curve_is_raw_minus_background(run):
    key = ("LE", (1.0, 10.0), 0.125)
    raw, bkg = (xcube.read_lightcurve(p) for p in run["res"].lightcurves[key])
    net = xcube.read_lightcurve(run["res"].net[key])
    assert net.attrs["hduclas2"] == "NET"
    np.testing.assert_allclose(net["rate"].values, raw["rate"].values - bkg["rate"].values, rtol=1e-12)
    np.testing.assert_allclose(net["bkg_rate"].values, bkg["rate"].values)
    np.testing.assert_allclose(net["rate_err"].values, np.hypot(raw["rate_err"].values, bkg["rate_err"].values))


def test_power_spectra_normalisations(run):
    key = ("LE", (1.0, 10.0), 0.125)
    raw_lc = xcube.read_lightcurve(run["res"].lightcurves[key][0])
    leahy = read_power_spectrum(run["res"].pds[key + ("leahy", 0)])
    ref = xcube.power_spectrum(raw_lc, segment=128.0, norm="leahy")
    np.testing.assert_allclose(leahy["power"].values, ref["power"].values, rtol=1e-12)
    # the fake events are uniform: white noise, Leahy level 2
    assert abs(float(leahy["power"].mean()) - 2.0) < 4 * 2 / np.sqrt(leahy.attrs["n_segments"] * leahy.sizes["freq"])
    rms = read_power_spectrum(run["res"].pds[key + ("rms", 0)])
    bkg_rate = float(xcube.read_lightcurve(run["res"].lightcurves[key][1])["rate"].mean())
    s = rms.attrs["mean_rate"] - bkg_rate
    assert rms.attrs["norm"] == "frac" and rms.attrs["noise_subtracted"]
    assert rms.attrs["background_rate"] == pytest.approx(bkg_rate, rel=1e-6)
    assert rms.attrs["poisson_level"] == pytest.approx(2 * rms.attrs["mean_rate"] / s**2, rel=1e-6)
    level = rms.attrs["poisson_level"]
    assert abs(float(rms["power"].mean())) < 4 * level / np.sqrt(rms.attrs["n_segments"] * rms.sizes["freq"])
    assert read_power_spectrum(run["res"].pds[key + ("leahy", -0.06)]).attrs["rebin"] == -0.06


def test_products_are_indexed_and_rerun_is_free(run):
    out = run["root"] / "out"
    assert set(find_products(out)["kind"]) == {"lc", "lcbkg", "lcnet", "pds"}
    pds = find_products(out, kind="pds", norm="frac")
    assert len(pds) == 2 and set(pds["energy_lo"]) == {1.0} and set(pds["segment"]) == {128.0}
    g = provenance(out)
    raw, bkg = (str(p) for p in run["res"].lightcurves[("LE", (1.0, 10.0), 0.125)])
    net = str(run["res"].net[("LE", (1.0, 10.0), 0.125)])
    assert g.edges[raw, net]["tool"] == "xcube.net_lightcurve" and g.edges[bkg, net]["tool"] == "xcube.net_lightcurve"
    run["env"].reset_calls()
    with pytest.MonkeyPatch.context() as mp:
        activate(mp, run["root"] / "env")
        again = hxmt.process_exposure(run["expdir"], out, ["LE"], binsize=0.125, spectrum=False, segment=128.0,
                                      rebins=(-0.06, 0), workers=2)
    assert set(again.status["state"]) == {"skipped"} and run["env"].calls() == []


def test_segment_longer_than_the_gtis_is_recorded_not_raised(run, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        activate(mp, run["root"] / "env")
        res = hxmt.process_exposure(run["expdir"], tmp_path / "out", ["LE"], binsize=1.0, spectrum=False,
                                    segment=10_000.0, workers=2)
    bad = res.status[res.status["state"] == "failed"]
    assert len(bad) == 2 and all("segment" in m for m in bad["message"])
    assert ("LE", (1.0, 10.0), 1.0) in res.net and not res.pds


def test_failed_background_records_the_steps_it_blocks(run, tmp_path):
    """A failed lebkgmap leaves the net light curve and the power spectra
    unrun, and the status says so (one row each, naming the failed task)."""
    with pytest.MonkeyPatch.context() as mp:
        activate(mp, run["root"] / "env")
        mp.setenv("XCUBE_FAKE_FAIL", "lebkgmap")
        res = hxmt.process_exposure(run["expdir"], tmp_path / "out", ["LE"], binsize=1.0, spectrum=False,
                                    segment=64.0, rebins=(-0.06,), workers=2)
    st = res.status.set_index("task")
    blocked = st[st["error_class"] == "DependencyError"]
    assert sorted(n.split("-")[0] for n in blocked.index) == ["netlc", "pds", "pds"]
    assert set(blocked["state"]) == {"failed"}
    bkg_task = next(t for t in st.index if t.startswith("lebkgmap"))
    assert st.loc[bkg_task, "state"] == "failed"
    assert all(bkg_task in m for m in blocked["message"])
    assert not res.net and not res.pds and not res.lightcurves
