"""Fixes of the timing-products review: one band picked from a multi-band
light curve keeps its own band (it kept both bands' attrs: its power spectrum
claimed both, stitch refused it); ``xcube pds`` of files with different
frequency grids without ``--average``; ``xcube stitch`` skipping a truncated
event file; the CCDs of summed cameras."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

import xcube
from xcube.cli import main
from xcube.io.powspec import read_power_spectrum, write_power_spectrum
from xcube.products.lightcurve import product_band

BANDS = [(0.5, 2.0), (2.0, 10.0)]


@pytest.fixture
def two_obs(make_event_file):
    return [make_event_file(n=20_000, t0=1e8 + i * 1e6, duration=4000.0, seed=i,
                            header={"OBS_ID": f"012345678{i}"}, name=f"ev{i}.fits") for i in range(2)]


def test_one_band_of_a_multi_band_light_curve_has_its_own_band(two_obs, tmp_path):
    mb = xcube.lightcurve(xcube.open_events(two_obs[0]), 100.0, energy_band=BANDS)
    assert product_band(mb) == {"energy_band": [[0.5, 2.0], [2.0, 10.0]], "pi_band": [[500, 1999], [2000, 9999]]}
    other = xcube.lightcurve(xcube.open_events(two_obs[1]), 100.0, energy_band=(2.0, 10.0))
    back = xcube.read_lightcurve(xcube.write_lightcurve(tmp_path / "mb.lc", mb))
    picked = {"sel": mb.sel(band="2-10keV"), "isel": mb.isel(band=1), "file": back.isel(band=1)}
    for how, one in picked.items():
        band = product_band(one)
        assert band["energy_band"] == [2.0, 10.0], how
        assert band["pi_band"] == ([2000, 9999] if how != "file" else None), how  # (a file records no CHANMIN<i>)
        # its power spectrum claims that band only (it claimed both), and stitch takes it with a 2-10 keV one
        assert xcube.power_spectrum(one, segment=1000.0).attrs["energy_band"] == [2.0, 10.0], how
        st = xcube.stitch([one, other])
        assert st.attrs["energy_band"] == [2.0, 10.0] and st.sizes["time"] == 80, how
    assert xcube.power_spectrum(mb.sel(band="2-10keV"), segment=1000.0).attrs["pi_band"] == [2000, 9999]
    # a band that is not 2-10 keV is still refused
    with pytest.raises(ValueError, match=r"different energy bands.*0\.5-2 keV.*2-10 keV"):
        xcube.stitch([mb.isel(band=0), other])
    # a single-band light curve: its attrs, as before
    assert product_band(other) == {"energy_band": [2.0, 10.0], "pi_band": [2000, 9999]}


def test_one_band_of_a_multi_band_light_curve_writes_its_band(two_obs, tmp_path):
    """E_MIN/E_MAX (and CHANMIN/CHANMAX) of a file written from one band of a
    multi-band light curve (the docs' recipe); the file had no band at all."""
    mb = xcube.lightcurve(xcube.open_events(two_obs[0]), 100.0, energy_band=BANDS)
    h = fits.getheader(xcube.write_lightcurve(tmp_path / "hard.lc", mb.sel(band="2-10keV")), "RATE")
    assert (h["E_MIN"], h["E_MAX"], h["CHANMIN"], h["CHANMAX"]) == (2.0, 10.0, 2000, 9999)
    back = xcube.read_lightcurve(xcube.write_lightcurve(tmp_path / "mb.lc", mb))
    one = xcube.read_lightcurve(xcube.write_lightcurve(tmp_path / "soft.lc", back.isel(band=0)))
    assert one.attrs["energy_band"] == [0.5, 2.0]
    p = xcube.power_spectrum(mb.isel(band=0), segment=1000.0)
    assert fits.getheader(write_power_spectrum(tmp_path / "soft_pds.fits", p), 1)["E_MIN"] == 0.5


def test_pds_of_files_with_different_grids_without_average(two_obs, tmp_path, capsys):
    lcs = []
    for path, width in zip(two_obs, (50.0, 100.0)):
        lcs.append(tmp_path / f"lc{width:g}.lc")
        xcube.write_lightcurve(lcs[-1], xcube.lightcurve(xcube.open_events(path), width))
    out = tmp_path / "pd"
    assert main(["pds", *map(str, lcs), "--segment", "1000", "--out-dir", str(out), "--no-index"]) == 0
    written = sorted(out.glob("*.fits"))
    assert len(written) == 2
    got = sorted(read_power_spectrum(p).attrs["dt"] for p in written)
    assert got == [50.0, 100.0]
    # averaging needs one grid: still refused, naming the input
    assert main(["pds", *map(str, lcs), "--segment", "1000", "--average", "--out", str(tmp_path / "a.fits")]) == 1
    assert "different frequency grid" in capsys.readouterr().err


def test_stitch_skips_a_truncated_event_file(two_obs, tmp_path, capsys):
    trunc = tmp_path / "trunc.fits"
    trunc.write_bytes(two_obs[1].read_bytes()[:5000])
    out = tmp_path / "long.lc"
    assert main(["stitch", str(two_obs[0]), str(trunc), "--time-bin", "100", "--no-index", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "trunc.fits: corrupt or truncated" in err and "1 of 2 event files skipped" in err
    assert [line for line in err.splitlines() if "trunc.fits: corrupt" in line][0].endswith("; skipped")  # one line
    assert "not light curves" not in err
    assert fits.getheader(out, "RATE")["NOBS"] == 1
    # a readable file that is not a light curve or events is still refused, and nothing is written
    pha = xcube.write_spectrum(tmp_path / "s.pha", xcube.spectrum(xcube.open_events(two_obs[0])))
    assert main(["stitch", str(two_obs[0]), str(pha), "--time-bin", "100", "--no-index",
                 "--out", str(tmp_path / "x.lc")]) == 1
    assert "not light curves or event files" in capsys.readouterr().err and not (tmp_path / "x.lc").exists()
    # only damaged files: an error, nothing written
    assert main(["stitch", str(trunc), "--time-bin", "100", "--no-index", "--out", str(tmp_path / "y.lc")]) == 1
    assert "trunc.fits" in capsys.readouterr().err and not (tmp_path / "y.lc").exists()


T0 = 1.0e8
#: per-CCD good time: CCD 3 of MOS2 starts 1000 s late
GTIS = {"EMOS1": {1: ([T0], [T0 + 1e4]), 2: ([T0], [T0 + 1e4])},
        "EMOS2": {1: ([T0], [T0 + 1e4]), 3: ([T0 + 1000.0], [T0 + 1e4])}}


def test_summed_cameras_report_every_cameras_ccds(make_event_file):
    rng = np.random.default_rng(5)
    paths = []
    for inst, gtis in GTIS.items():
        n = 2000
        ccds = np.array(list(gtis), np.uint8)[rng.integers(0, len(gtis), n)]
        keys = {f"{k}{c:02d}": 1.0 for c in gtis for k in ("ONTIME", "LIVETI")}
        paths.append(make_event_file(
            n=n, name=f"{inst}.fits", header=dict(keys, INSTRUME=inst), columns={
                "TIME": np.sort(rng.uniform(T0, T0 + 1e4, n)), "CCDNR": ccds,
                "X": (26000 + rng.integers(-300, 300, n)).astype(np.int32),
                "Y": (26000 + rng.integers(-300, 300, n)).astype(np.int32), "PATTERN": np.zeros(n, np.uint8)},
            gti_extensions={f"STDGTI{c:02d}": (*g, {"CCDID": c}) for c, g in gtis.items()}))
    src = "physical;circle(26000,26000,500)"
    lc = xcube.lightcurve(xcube.open_events(paths), 100.0, region=src)
    assert lc.attrs["instrument"] == "EMOS1+EMOS2"
    assert lc.attrs["ccds"] == {"EMOS1": [1, 2], "EMOS2": [1, 3]}
    assert lc.attrs["gti_from"] == "EMOS1 CCDs 1, 2; EMOS2 CCDs 1, 3"
    assert float(lc["exposure"].sum()) == pytest.approx(9000.0)  # (as before: CCD 3 of MOS2's good time)
    # one camera: as before
    one = xcube.lightcurve(xcube.open_events(paths[1]), 100.0, region=src)
    assert one.attrs["ccds"] == [1, 3] and one.attrs["gti_from"] == "CCDs 1, 3"
