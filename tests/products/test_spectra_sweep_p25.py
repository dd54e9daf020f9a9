"""Sweep p25 (spectra): BACKFILE relative to the source PHA, zero-area regions refused, no orphan background
file when the source cannot be written, pi_range cut to the RMF's channel grid."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from conftest import real_file

import xcube

MOS1 = ("xmm", "P0001730201M1S002MIEVLI.FTZ")
SRC = "physical;circle(24747,24044,600)"
BKG = "physical;annulus(24747,24044,1500,3000)"


@pytest.fixture(scope="module")
def spec():
    ev = xcube.open_events(real_file(*MOS1))
    return ev, xcube.spectrum(ev, region=SRC, background=BKG).compute()


def test_backfile_is_relative_to_the_source_spectrum(spec, tmp_path):
    _, sp = spec
    path = xcube.write_spectrum(tmp_path / "a" / "s.pha", sp, background_path=tmp_path / "b" / "bg.pha")
    assert fits.getheader(path, 1)["BACKFILE"] == "../b/bg.pha"
    back = xcube.read_spectrum(path)
    np.testing.assert_array_equal(back["bkg_counts"].values, sp["bkg_counts"].values)
    path = xcube.write_spectrum(tmp_path / "c.pha", sp)  # beside it: its name
    assert fits.getheader(path, 1)["BACKFILE"] == "c_bkg.pha"


@pytest.mark.parametrize("which", ["region", "background"])
def test_a_region_without_area_is_refused(spec, which):
    ev, _ = spec
    empty = "physical;circle(20000,24044,600);-circle(20000,24044,700)"
    kw = {"region": empty, "background": BKG} if which == "region" else {"region": SRC, "background": empty}
    with pytest.raises(ValueError, match="has no area .*BACKSCAL would be 0"):
        xcube.spectrum(ev, **kw)


def test_no_orphan_background_when_the_source_cannot_be_written(spec, tmp_path):
    _, sp = spec
    (tmp_path / "afile").write_text("")
    with pytest.raises(OSError):
        xcube.write_spectrum(tmp_path / "afile" / "x.pha", sp, background_path=tmp_path / "orphan_bkg.pha")
    (tmp_path / "dd").mkdir()
    with pytest.raises(IsADirectoryError):
        xcube.write_spectrum(tmp_path / "dd", sp)
    with pytest.raises(IsADirectoryError):
        xcube.write_spectrum(tmp_path / "dd", sp, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "dd"]


def test_pi_range_beyond_the_grid_keeps_the_rmf_channels(spec):
    ev, _ = spec
    with pytest.warns(UserWarning, match="PI 0-11999"):
        sp = xcube.spectrum(ev, region=SRC, pi_range=(11000, 12500))
    assert sp.sizes["channel"] == 800 and tuple(sp.attrs["channel_range"]) == (0, 799)
    with pytest.raises(ValueError, match="outside the XMM-Newton EMOS1 channel grid"):
        xcube.spectrum(ev, region=SRC, pi_range=(12500, 14000))


def test_a_long_region_is_kept_whole_in_the_files(spec, tmp_path):
    """Sweep p25: REGION was cut at 68 characters and read back as a region that does not parse."""
    import shutil
    import subprocess

    ev, _ = spec
    region = ("physical;polygon(24000.5,24000.5,25500.5,24000.5,25000.5,25000.5,24600.5,25300.5,24100.5,"
              "24900.5)")
    path = xcube.write_spectrum(tmp_path / "long.pha", xcube.spectrum(ev, region=region))
    back = xcube.read_spectrum(path)
    assert back.attrs["region"] == region and fits.getheader(path, 1)["LONGSTRN"] == "OGIP 1.0"
    assert xcube.select(ev, region=back.attrs["region"]).sizes["event"] > 0
    if shutil.which("fitsverify"):
        out = subprocess.run(["fitsverify", "-q", str(path)], capture_output=True, text=True)
        assert "verification OK" in out.stdout, out.stdout


@pytest.mark.parametrize("profile", ["xmm-mos1", "xmm-pn", "nustar-fpma", "nicer-xti", "swift-xrt"])
def test_a_band_edge_at_a_channel_energy_gives_the_channels_select_keeps(profile):
    """Sweep p25: pi_band (CHANMIN/CHANMAX, the spectrum's band channels) computed in float64 while select
    compares float32 energies: an edge equal to a channel's energy put CHANMIN one channel above."""
    import xarray as xr

    from xcube.missions import get_profile
    from xcube.products.lightcurve import pi_band

    prof = get_profile(profile)
    pi = np.arange(prof.pi_range[0], prof.pi_range[1] + 1)
    energy = np.asarray(prof.pi_to_kev(pi))
    ev = xr.Dataset({"energy": ("event", energy), "pi": ("event", pi)}, attrs={"profile": profile})
    rng = np.random.default_rng(7)
    lo_e, hi_e = prof.energy_range
    inside = np.flatnonzero((energy > lo_e) & (energy < hi_e))
    for a, b in np.sort(rng.choice(inside, (20, 2)), axis=1):
        if a == b:
            continue
        band = (float(energy[a]), float(energy[b]))  # edges exactly on channel energies
        kept = pi[(energy >= energy.dtype.type(band[0])) & (energy < energy.dtype.type(band[1]))]
        assert pi_band(ev, band) == [int(kept.min()), int(kept.max())], band


def test_the_source_ccd_without_a_gti_table_is_named(make_event_file):
    """Sweep p25: a region whose events lie on a CCD without a GTI table took the union GTI and file-wide
    live fraction without a word."""
    t0 = 1e8
    path = make_event_file(n=600, t0=t0, duration=6000.0, columns={"CCDNR": np.full(600, 2, np.uint8)},
                           gti_extensions={"STDGTI01": ([t0], [t0 + 5000.0], {"CCDID": 1}),
                                           "STDGTI03": ([t0], [t0 + 6000.0], {"CCDID": 3})})
    ev = xcube.open_events(path)
    with pytest.warns(UserWarning, match=r"CCD 2 holds most of the selected events but has no GTI table of its own "
                                         r"\(CCDs with one: \[1, 3\]\)"):
        xcube.spectrum(ev, region="physical;circle(26000,26000,6000)")


def test_backfile_through_a_symlinked_directory(spec, tmp_path):
    """Review p25: BACKFILE made relative as text pointed elsewhere when the output directory was a symlink."""
    _, sp = spec
    (tmp_path / "real" / "a").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real" / "a")
    path = xcube.write_spectrum(tmp_path / "link" / "s.pha", sp, background_path=tmp_path / "b" / "bg.pha")
    assert xcube.read_spectrum(path)["bkg_counts"].sum() == sp["bkg_counts"].sum()
