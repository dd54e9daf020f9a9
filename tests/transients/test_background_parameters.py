"""Parameters of the background model and the BTIs that make no sense are refused
with an error naming them (instead of a silent odd model)."""
import numpy as np
import pytest
import xarray as xr

import xcube
from xcube.transients import background as bg
from xcube.transients import bti


def _cube(nt=6, ny=12, nx=12, seed=0):
    counts = np.random.default_rng(seed).poisson(3.0, (nt, ny, nx))
    counts[:, 5, 5] += 40  # a source
    return xr.DataArray(counts, dims=("time", "y", "x"), coords={"exposure": ("time", np.full(nt, 10.0))})


@pytest.mark.parametrize("kw, name", [(dict(percentile=150.0), "percentile"), (dict(percentile=np.nan), "percentile"),
                                      (dict(factor=-1.0), "factor"), (dict(factor=np.nan), "factor"),
                                      (dict(smooth_sigma=-1.0), "smooth_sigma"),
                                      (dict(radius_arcsec=-5.0), "radius_arcsec"),
                                      (dict(radius_arcsec=np.nan), "radius_arcsec")])
def test_background_model_refuses_bad_parameters(kw, name):
    with pytest.raises(ValueError, match=rf"background model: {name}="):
        bg.background_model(_cube(), **kw)


def test_nan_frame_flags_are_refused():
    flags = np.zeros(6)
    flags[2] = np.nan
    with pytest.raises(ValueError, match="bti holds NaN .first at time bin 2"):
        bg.background_model(_cube(), bti=flags)


def test_catalogue_with_a_negative_radius_is_refused(tmp_path):
    cat = tmp_path / "cat.csv"
    cat.write_text("ra,dec,radius\n10.0,20.0,30\n10.1,20.1,-30\n")
    with pytest.raises(ValueError, match=r"cat\.csv: 1 rows have a radius .column 'radius'. that is not a positive "
                                         r"number: first row 1"):
        xcube.io.catalogue.read_catalogue(cat)
    cat.write_text("ra,dec,radius\n10.0,20.0,30\n10.1,20.1,\n")  # empty: the default radius
    assert np.isnan(xcube.io.catalogue.read_catalogue(cat)["radius_arcsec"].values[1])


def test_search_and_bti_parameters(tmp_path):
    ev, _ = xcube.simulate.event_list("xmm-mos1", duration=1000.0, seed=3)
    with pytest.raises(ValueError, match="search_transients: radius_arcsec=-5.0"):
        xcube.search_transients(ev, time_bin=50.0, radius_arcsec=-5.0)
    for rate in (np.nan, -1.0):
        with pytest.raises(ValueError, match="bad_time_intervals: rate="):
            bti.bad_time_intervals(ev, 50.0, rate=rate)
