"""OGIP spectra and images (audit p16): regrouping a grouped spectrum, the
read_spectrum -> write_spectrum round trip of keywords, FILTER in PHA headers,
image EXPOSURE as the spectrum's live time, MJDREF errors naming the file."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from xcube.products import group_min_counts, group_spectrum

# --------------------------------------------------------------------------- regrouping


def _spec(counts, quality=None):
    ds = xr.Dataset({"counts": ("channel", np.asarray(counts, np.int64))},
                    coords={"channel": np.arange(len(counts))}, attrs={"exposure": 100.0, "backscal": 1.0})
    if quality is not None:
        ds["quality"] = ("channel", np.asarray(quality, np.int16))
    return ds


def test_regrouping_resets_the_old_groupings_quality_2_but_keeps_bad_channels():
    rng = np.random.default_rng(3)
    counts = rng.poisson(np.r_[np.full(60, 6.0), np.full(60, 0.3)])
    bad = np.zeros(counts.size, np.int16)
    bad[[0, 1, 70]] = 1
    bad[-1] = 5
    first = group_spectrum(_spec(counts, bad), 20)
    assert (first["quality"].values == 2).sum() > 0  # the min-20 grouping leaves a short, dubious tail
    again = group_spectrum(first, 5)
    fresh_g, fresh_q = group_min_counts(counts, 5, quality=bad)
    np.testing.assert_array_equal(again["quality"].values, fresh_q)  # as grouping the counts afresh
    np.testing.assert_array_equal(again["grouping"].values, fresh_g)
    assert again["quality"].values[[0, 1, 70, counts.size - 1]].tolist() == [1, 1, 1, 5]  # bad stays bad


# --------------------------------------------------------------------------- read_spectrum -> write_spectrum

_KEPT = ("FILTER", "DATE-OBS", "DATE-END", "MJDREFI", "MJDREFF", "MJDREF", "TIMESYS", "SPECDELT", "SPECPIX",
         "SPECVAL", "REGION")


def _written_spectrum(tmp_path):
    from xcube.io.ogip import write_spectrum

    n = 800
    rng = np.random.default_rng(5)
    ds = _spec(rng.poisson(4.0, n))
    ds["bkg_counts"] = ("channel", rng.poisson(2.0, n))
    ds.attrs.update(telescop="XMM", instrument="EMOS1", filter="Thin1", date_obs="2004-03-01T10:00:00",
                    date_end="2004-03-01T12:00:00", mjdref=50814.0, timesys="TT", channel_bin=15,
                    channel_range=(0, n - 1), region="physical;circle(20635,26829,1200)",
                    background_region="physical;annulus(20635,26829,3000,5000)", bkg_backscal=10.0)
    for name in ("m1.rmf", "m1.arf"):
        (tmp_path / name).write_text("")
    return write_spectrum(tmp_path / "src.pha", ds, respfile="m1.rmf", ancrfile="m1.arf")


def test_read_then_write_spectrum_keeps_response_files_and_keywords(tmp_path):
    from xcube.io.ogip import read_spectrum, write_spectrum

    src = _written_spectrum(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the empty m1.rmf has no EBOUNDS
        back = read_spectrum(src)
    assert back.attrs["filter"] == "Thin1" and back.attrs["channel_bin"] == 15 and back.attrs["mjdref"] == 50814.0
    assert back.attrs["background_region"].startswith("physical;annulus")
    (tmp_path / "sub").mkdir()
    out = write_spectrum(tmp_path / "sub" / "grp.pha", group_spectrum(back, 50))
    h0, h1 = fits.getheader(src, "SPECTRUM"), fits.getheader(out, "SPECTRUM")
    assert h1["RESPFILE"] == "../m1.rmf" and h1["ANCRFILE"] == "../m1.arf"  # relative to the new file
    assert {k: h1.get(k) for k in _KEPT} == {k: h0.get(k) for k in _KEPT}
    assert fits.getheader(tmp_path / "sub" / "grp_bkg.pha", "SPECTRUM")["REGION"].startswith("physical;annulus")
    # beside the response: its bare name; an explicit argument wins
    h2 = fits.getheader(write_spectrum(tmp_path / "again.pha", back, respfile="other.rmf"), "SPECTRUM")
    assert h2["RESPFILE"] == "other.rmf" and h2["ANCRFILE"] == "m1.arf"


def test_caldb_and_row_suffixes_survive_read_then_write_elsewhere(tmp_path):
    """RESPFILE 'CALDB' became '../CALDB' (a file beside the old spectrum) and 'm1.rmf{3}' lost its row."""
    from xcube.io.ogip import read_spectrum, write_spectrum

    src = _written_spectrum(tmp_path)
    with fits.open(src, mode="update") as h:
        h["SPECTRUM"].header["RESPFILE"] = "m1.rmf{3}"
        h["SPECTRUM"].header["ANCRFILE"] = "CALDB"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # (CALDB is not a missing file)
        warnings.filterwarnings("ignore", ".*EBOUNDS")
        back = read_spectrum(src, background=False)
    assert back.attrs["ancrfile"] is None
    (tmp_path / "sub").mkdir()
    h1 = fits.getheader(write_spectrum(tmp_path / "sub" / "g.pha", back.drop_vars("grouping", errors="ignore")),
                        "SPECTRUM")
    assert h1["RESPFILE"] == "../m1.rmf{3}" and h1["ANCRFILE"] == "CALDB"
    back.attrs["respfile"] = str(tmp_path / "other.rmf")  # another response: no suffix of the old one
    assert fits.getheader(write_spectrum(tmp_path / "o.pha", back), "SPECTRUM")["RESPFILE"] == "other.rmf"


@pytest.mark.filterwarnings("ignore:.*EBOUNDS")
def test_read_spectrum_leaves_out_a_bad_mjdref_naming_the_file(tmp_path):
    from xcube.io.ogip import read_spectrum

    src = _written_spectrum(tmp_path)
    with fits.open(src, mode="update") as h:
        for hdu in h:
            for k in ("MJDREFI", "MJDREFF"):
                hdu.header.remove(k, ignore_missing=True)
            hdu.header["MJDREF"] = "abc"
    with pytest.warns(UserWarning, match="src.pha.*MJDREF"):
        back = read_spectrum(src, background=False)
    assert "mjdref" not in back.attrs and back.attrs["filter"] == "Thin1"


# --------------------------------------------------------------------------- FILTER


def test_pha_of_events_without_filter_says_filter_none(tmp_path):
    from xcube.io.ogip import write_spectrum

    ds = _spec(np.arange(10))  # no filter attr, as NuSTAR event files have none
    ds["bkg_counts"] = ("channel", np.ones(10, np.int64))
    ds.attrs.update(telescop="NuSTAR", instrument="FPMA", bkg_backscal=2.0)
    out = write_spectrum(tmp_path / "nu.pha", ds)
    assert fits.getheader(out, "SPECTRUM")["FILTER"] == "NONE"
    assert fits.getheader(tmp_path / "nu_bkg.pha", "SPECTRUM")["FILTER"] == "NONE"
    ds.attrs["filter"] = "Thin1"  # the events' own filter is kept
    assert fits.getheader(write_spectrum(tmp_path / "m.pha", ds), "SPECTRUM")["FILTER"] == "Thin1"


# --------------------------------------------------------------------------- image EXPOSURE


def _two_ccd_events(make_event_file):
    """Source events at (26000, 26000) on CCD 2 (good 8 ks, LIVETI02/ONTIME02 = 0.95), others on CCD 1 (10 ks)."""
    rng = np.random.default_rng(2)
    x = np.r_[26000 + rng.normal(0, 30, 600), rng.uniform(24000, 25000, 300)]
    y = np.r_[26000 + rng.normal(0, 30, 600), rng.uniform(24000, 25000, 300)]
    ccd = np.r_[np.full(600, 2), np.full(300, 1)].astype(np.uint8)
    keys = {"ONTIME01": 10000.0, "LIVETI01": 9000.0, "ONTIME02": 8000.0, "LIVETI02": 7600.0}
    gtis = {"STDGTI01": ([1.0e8], [1.0e8 + 1.0e4]), "STDGTI02": ([1.0e8], [1.0e8 + 8000.0])}
    return make_event_file(n=ccd.size, seed=4, header=keys, gti_extensions=gtis, columns={
        "X": np.round(x).astype(np.int32), "Y": np.round(y).astype(np.int32), "CCDNR": ccd,
        "PATTERN": np.zeros(ccd.size, np.uint8), "TIME": np.sort(rng.uniform(1.0e8, 1.0e8 + 8000.0, ccd.size))})


def test_image_exposure_is_the_spectrums_live_time_of_the_events_ccd(make_event_file, tmp_path):
    import xcube
    from xcube.io.ogip import write_image

    ev = xcube.open_events(_two_ccd_events(make_event_file))
    region = "physical;circle(26000,26000,300)"
    img, sp = xcube.image(ev, region=region), xcube.spectrum(ev, region=region)
    assert img.attrs["exposure"] == pytest.approx(7600.0) == sp.attrs["exposure"]  # not the 10 ks union
    assert img.attrs["ontime"] == pytest.approx(8000.0) and img.attrs["deadc_from"] == sp.attrs["deadc_from"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no WCS in the synthetic file
        h = fits.getheader(write_image(tmp_path / "img.fits", img))
    assert h["EXPOSURE"] == pytest.approx(7600.0) and h["LIVETIME"] == pytest.approx(7600.0)
    assert h["ONTIME"] == pytest.approx(8000.0) and h["DEADC"] == pytest.approx(0.95) and h["DEADAPP"] is True
    assert "live time" in h.comments["EXPOSURE"]


@pytest.mark.parametrize("parts, region, exposure", [
    (("nustar", "barycenter_dummy_evt_nustar_B1937.evt"), None, 38221.4),  # LIVETIME, not the 41072.6 s GTIs
    (("xmm", "xga_0201901401_mos1_exp1_clean_evts.fits"), "physical;circle(20635,26829,1200)", 5006.6),  # LIVETI01
])
def test_real_image_exposure_matches_the_spectrum(parts, region, exposure):
    from conftest import real_file

    import xcube

    ev = xcube.open_events(real_file(*parts))
    img = xcube.image(ev, region=region)
    assert img.attrs["exposure"] == pytest.approx(exposure, abs=0.1)
    assert img.attrs["exposure"] == pytest.approx(xcube.spectrum(ev, region=region).attrs["exposure"], rel=1e-12)


# --------------------------------------------------------------------------- a bad MJDREF names the file


def _bad_mjdref(path, where=(0,)):
    with fits.open(path, mode="update") as h:
        for hdu in h:
            for k in ("MJDREFI", "MJDREFF", "MJDREF"):
                hdu.header.remove(k, ignore_missing=True)
        for i in where:
            h[i].header["MJDREF"] = "abc"
    return path


def test_bad_mjdref_of_a_power_spectrum_or_gti_file_names_the_file(tmp_path, make_event_file, capsys):
    import xcube
    from xcube.cli import main
    from xcube.io.ogip import write_gti
    from xcube.io.powspec import read_power_spectrum, write_power_spectrum

    pds = xcube.power_spectrum(xcube.open_events(make_event_file(n=2000)), segment=1000.0, dt=1.0)
    out = _bad_mjdref(write_power_spectrum(tmp_path / "p.fits", pds), where=(0, 1))
    with pytest.raises(ValueError, match=r"p\.fits: header keyword MJDREF = 'abc'"):
        read_power_spectrum(out)
    gti = _bad_mjdref(write_gti(tmp_path / "g.fits", ([1.0e8], [1.0e8 + 100.0])))  # the primary's MJDREF only
    assert main(["info", str(gti)]) == 1
    assert f"{gti}: header keyword MJDREF = 'abc'" in capsys.readouterr().err
