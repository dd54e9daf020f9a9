"""TIMEREF (and TIMESYS) of barycentred inputs reach the stitched light curve
and the power spectrum; stitching topocentric with barycentred light curves is
refused; a product whose inputs declare no TIMEREF gets none (it used to be
labelled LOCAL, so barycentred data came out as 'LOCAL')."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

import xcube
from xcube.cli import main
from xcube.io.powspec import write_power_spectrum

BARY = {"TIMESYS": "TDB", "TIMEREF": "SOLARSYSTEM"}


@pytest.fixture
def files(make_event_file):
    """Two barycentred event files (TDB, SOLARSYSTEM) a day apart and one topocentric (TT, LOCAL)."""
    return {"bary0": make_event_file(n=8000, t0=1e8, duration=2000.0, header=BARY, name="bary0.evt"),
            "bary1": make_event_file(n=8000, t0=1e8 + 86400.0, duration=2000.0, seed=1, header=BARY,
                                     name="bary1.evt"),
            "local": make_event_file(n=8000, t0=1e8 + 3e5, duration=2000.0, seed=2,
                                     header={"TIMEREF": "LOCAL"}, name="local.evt")}


def lc(path):
    return xcube.lightcurve(xcube.open_events(path), 100.0)


def test_stitch_of_barycentred_light_curves_stays_barycentric_tdb(files, tmp_path):
    a, b = lc(files["bary0"]), lc(files["bary1"])
    assert a.attrs["timeref"] == "SOLARSYSTEM" and a.attrs["timesys"] == "TDB"
    st = xcube.stitch([a, b], mjdref=51971.0)
    assert st.attrs["timeref"] == "SOLARSYSTEM" and st.attrs["timesys"] == "TDB"
    assert st["mjd"].attrs["timesys"] == "TDB"
    # one time scale: only the epoch moves (no geocentric TDB -> TT term of up to 1.7 ms on barycentric times)
    shift = (50814.0 - 51971.0) * 86400.0
    np.testing.assert_allclose(st["time_lo"].values, np.r_[a["time_lo"].values, b["time_lo"].values] + shift,
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(st["mjd"].values, xcube.times(st["mission_time"], a, to="mjd").values, rtol=0,
                               atol=1e-10)
    h = fits.getheader(xcube.write_lightcurve(tmp_path / "st.lc", st), "RATE")
    assert (h["TIMESYS"], h["TIMEREF"]) == ("TDB", "SOLARSYSTEM")
    # the command line, from the event files
    assert main(["stitch", str(files["bary0"]), str(files["bary1"]), "--time-bin", "100", "--no-index",
                 "--out", str(tmp_path / "st_ev.lc")]) == 0
    h = fits.getheader(tmp_path / "st_ev.lc", "RATE")
    assert (h["TIMESYS"], h["TIMEREF"]) == ("TDB", "SOLARSYSTEM")


def test_topocentric_and_barycentred_are_not_stitched(files, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"different TIMEREF.*local\.evt: LOCAL.*bary0\.evt: SOLARSYSTEM"):
        xcube.stitch([lc(files["local"]), lc(files["bary0"])])
    # no TIMEREF is OGIP's LOCAL
    none = lc(files["local"])
    del none.attrs["timeref"]
    with pytest.raises(ValueError, match=r"local\.evt: LOCAL \(not given\).*bary0\.evt: SOLARSYSTEM"):
        xcube.stitch([none, lc(files["bary0"])])
    assert main(["stitch", str(files["local"]), str(files["bary0"]), "--time-bin", "100", "--no-index",
                 "--out", str(tmp_path / "mixed.lc")]) == 1
    assert "different TIMEREF" in capsys.readouterr().err and not (tmp_path / "mixed.lc").exists()
    # local with local: TT and LOCAL, as before
    st = xcube.stitch([lc(files["local"]), none])
    assert st.attrs["timeref"] == "LOCAL" and st.attrs["timesys"] == "TT"


def test_power_spectrum_of_barycentred_data_keeps_timeref(files, tmp_path):
    pds = xcube.power_spectrum(xcube.open_events(files["bary0"]), segment=100.0, dt=1.0)
    assert pds.attrs["timeref"] == "SOLARSYSTEM" and pds.attrs["timesys"] == "TDB"
    assert xcube.power_spectrum(lc(files["bary0"]), segment=1000.0).attrs["timeref"] == "SOLARSYSTEM"
    assert main(["pds", str(files["bary0"]), "--segment", "100", "--dt", "1", "--no-index",
                 "--out", str(tmp_path / "p.fits")]) == 0
    h = fits.getheader(tmp_path / "p.fits", "POWSPEC")
    assert (h["TIMESYS"], h["TIMEREF"]) == ("TDB", "SOLARSYSTEM")


def test_no_timeref_is_written_when_none_is_known(files, tmp_path):
    pds = xcube.power_spectrum(xcube.open_events(files["bary0"]), segment=100.0, dt=1.0)
    pds.attrs.pop("timeref", None)
    assert "TIMEREF" not in fits.getheader(write_power_spectrum(tmp_path / "p.fits", pds), "POWSPEC")
    light = lc(files["bary0"])
    light.attrs.pop("timeref")
    assert "TIMEREF" not in fits.getheader(xcube.write_lightcurve(tmp_path / "a.lc", light), "RATE")


def test_light_curve_files_keep_their_timeref(files, tmp_path, capsys):
    """A barycentred light-curve FILE read back has its TIMEREF (read_lightcurve dropped it): its stitch with
    a topocentric one is refused, and its stitch and power spectrum stay SOLARSYSTEM."""
    bary = xcube.write_lightcurve(tmp_path / "bary.lc", lc(files["bary0"]))
    local = xcube.write_lightcurve(tmp_path / "local.lc", lc(files["local"]))
    assert xcube.read_lightcurve(bary).attrs["timeref"] == "SOLARSYSTEM"
    assert main(["stitch", str(local), str(bary), "--no-index", "--out", str(tmp_path / "mixed.lc")]) == 1
    assert "different TIMEREF" in capsys.readouterr().err and not (tmp_path / "mixed.lc").exists()
    assert main(["stitch", str(bary), "--no-index", "--out", str(tmp_path / "one.lc")]) == 0
    assert fits.getheader(tmp_path / "one.lc", "RATE")["TIMEREF"] == "SOLARSYSTEM"
