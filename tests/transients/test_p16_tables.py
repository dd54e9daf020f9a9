"""The detection table of a search run read back with its types and units:
``detections.ecsv`` (astropy) keeps an XMM OBSID such as ``0001730201`` as
text (``detections.csv`` read by pandas or astropy makes it the integer
1730201) and carries the columns' units (ra/dec [deg], t_* [s], peak_flux
[erg/cm^2/s], ...)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.table import Table

import xcube
from xcube import simulate
from xcube.transients.result import SearchResult

OBSID = "0001730201"  # leading zeros, as XMM OBSIDs have


@pytest.fixture(scope="module")
def flare(tmp_path_factory):
    path = tmp_path_factory.mktemp("flare") / "pn.fits"
    simulate.event_list("xmm-pn", duration=8000.0, flares=[simulate.Flare(t_peak=3000.0, amplitude=2.0, width=60.0)],
                        sources=3, seed=3, obs_id=OBSID, path=path, overwrite=True)
    return xcube.search_transients(xcube.open_events(path), time_bin=50.0)


def test_ecsv_keeps_obsid_text_dtypes_and_units(flare, tmp_path):
    det = flare.detections
    assert len(det) >= 1 and (det["obs_id"] == OBSID).all()
    run = flare.write(tmp_path / "run", figures=False)
    assert pd.read_csv(run / "detections.csv")["obs_id"].iloc[0] != OBSID  # why the ECSV copy exists
    tab = Table.read(run / "detections.ecsv", format="ascii.ecsv")
    assert tab.colnames == list(det.columns)
    assert list(tab["obs_id"]) == [OBSID] * len(det) and tab["obs_id"].dtype.kind == "U"
    assert list(tab["run_id"]) == list(det["run_id"]) and list(tab["name"]) == list(det["name"])
    assert list(tab["utc_peak"]) == list(det["utc_peak"])
    for c in det.columns:  # numbers and booleans keep their numpy dtype
        if det[c].dtype.kind in "biuf":
            assert tab[c].dtype == det[c].dtype, c
            np.testing.assert_array_equal(np.asarray(tab[c]), det[c].to_numpy(), err_msg=c)
    assert tab["ra"].unit == u.deg and tab["dec"].unit == u.deg
    assert tab["t_start"].unit == tab["t_peak"].unit == tab["t_stop"].unit == u.s
    assert tab["peak_flux"].unit == u.erg / u.cm**2 / u.s and tab["peak_rate"].unit == u.ct / u.s
    assert tab["mjd_peak"].unit == u.day and tab["counts_est_50"].unit == u.ct and tab["det_u"].unit == u.arcsec
    assert tab["log10_bayes"].unit is None and tab["obs_id"].unit is None
    assert tab.meta["timesys"] == "TT" and tab.meta["mjdref"] == det.attrs["mjdref"]
    # with pandas too, through astropy
    back = tab.to_pandas()
    assert back["obs_id"].tolist() == [OBSID] * len(det)


def test_ecsv_of_an_empty_run_and_missing_values(tmp_path):
    empty = SearchResult(run_id=f"{OBSID}_0_1000000_0.2_12.0", detections=pd.DataFrame(
        {"obs_id": pd.Series([], dtype=object), "ra": pd.Series([], dtype=float)}), lightcurves=None)
    tab = Table.read(empty.write(tmp_path / "empty", figures=False) / "detections.ecsv")
    assert len(tab) == 0 and tab["obs_id"].dtype.kind == "U" and tab["ra"].unit == u.deg
    det = pd.DataFrame({"obs_id": [OBSID, "0765080801"], "name": ["XCUBE J100000.0+021200", None],
                        "ra": [150.0, np.nan], "dec": [2.2, np.nan], "sigma_equivalent": [np.inf, 3.0]})
    res = SearchResult(run_id=f"{OBSID}_0_50_0.2_12.0", detections=det, lightcurves=None)
    tab = Table.read(res.write(tmp_path / "run", figures=False) / "detections.ecsv")
    assert list(tab["obs_id"]) == [OBSID, "0765080801"]
    assert tab["name"][0] == "XCUBE J100000.0+021200" and tab["name"].mask[1]  # a missing name stays missing
    assert np.isnan(tab["ra"][1]) and np.isinf(tab["sigma_equivalent"][0])  # NaN and inf stay numbers
