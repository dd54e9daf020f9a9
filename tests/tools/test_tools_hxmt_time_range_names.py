"""HXMT spectra of two time ranges that round to the same whole seconds get
files of their own (sweep p20, D4): the names keep the range's fraction, so
neither range's products overwrite the other's. Against the fake HXMTDAS."""
from __future__ import annotations

import pytest

from xcube.tools import hxmt

T0 = 2.0e8


def test_spectra_of_ranges_that_round_alike_do_not_overwrite_each_other(fake_tools, tmp_path):
    from astropy.io import fits

    ranges = ((T0 + 100.4, T0 + 500.6), (T0 + 100.45, T0 + 500.55))  # the same whole seconds, 100-501

    expdir = fake_tools.lib.make_hxmt_expid(tmp_path / "l1", t0=T0)
    res = [hxmt.process_exposure(expdir, tmp_path / "out", ["HE"], segment=None, time_range=r, workers=1)
           for r in ranges]
    names = [{k: p.name for k, p in r.spectra["HE"].items()} for r in res]
    assert set(names[0]) == {"spec", "specbkg", "rsp", "grppha"}
    for kind in names[0]:
        assert names[0][kind] != names[1][kind], kind
    assert names[0]["spec"] == "P010129900101_HE_spec_200000100.4-200000500.6s.pha"
    for r, (t0, t1) in zip(res, ranges):
        files = r.spectra["HE"]
        with fits.open(files["spec"]) as h:  # each file still holds its own range's spectrum
            assert h["SPECTRUM"].header["TSTART"] == pytest.approx(t0, abs=1e-6)
            assert h["SPECTRUM"].header["TSTOP"] == pytest.approx(t1, abs=1e-6)
        with fits.open(files["grppha"]) as g:
            assert g["SPECTRUM"].header["BACKFILE"] == files["specbkg"].name
            assert g["SPECTRUM"].header["RESPFILE"] == files["rsp"].name
    gtis = sorted(p.name for p in (tmp_path / "out" / "HE").glob("*_gti_*s.fits"))
    assert gtis == ["P010129900101_HE_gti_200000100.4-200000500.6s.fits",
                    "P010129900101_HE_gti_200000100.45-200000500.55s.fits"]
    # a range of whole seconds keeps its name as before
    tasks = hxmt.spectrum_tasks(hxmt.find_level1(expdir), "HE", tmp_path / "out" / "HE",
                                time_range=(T0 + 100, T0 + 500))
    assert tasks[0].outputs[0].name == "P010129900101_HE_spec_200000100-200000500s.pha"


@pytest.mark.parametrize("kw, said", [({"time_range": (5.0, 1.0)}, "need finite start < stop"),
                                      ({"time_range": (T0, float("nan"))}, "need finite start < stop"),
                                      ({"bands": {"HE": [(250.0, 28.0)]}}, "need 0 <= emin < emax")])
def test_a_reversed_range_or_band_is_refused_before_any_tool_runs(fake_tools, tmp_path, kw, said):
    """Sweep p25: --time-range 5 1 ran the whole calibration chain, then warned and exited 0 without a spectrum."""
    expdir = fake_tools.lib.make_hxmt_expid(tmp_path / "l1", t0=T0)
    with pytest.raises(ValueError, match=said):
        hxmt.process_exposure(expdir, tmp_path / "out", ["HE"], segment=None, workers=1, **kw)
    assert fake_tools.calls() == []


@pytest.mark.parametrize("kw, said", [({"time_range": (T0, T0 + 10, T0 + 20)}, "time_range=.*need finite"),
                                      ({"bands": {"HE": (28.0, 250.0)}}, "give a list of \\(emin, emax\\) bands")])
def test_malformed_range_or_bands_name_the_option(fake_tools, tmp_path, kw, said):
    expdir = fake_tools.lib.make_hxmt_expid(tmp_path / "l1", t0=T0)
    with pytest.raises(ValueError, match=said):
        hxmt.process_exposure(expdir, tmp_path / "out", ["HE"], segment=None, workers=1, **kw)
