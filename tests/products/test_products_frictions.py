"""The small frictions of the first hour, each with its fix: labels of rates,
GTI files in ``select``, light curves of a DataTree of cameras, images that
DS9 and matplotlib show right, spectra on the standard channel grid, light
curves with uncorrected rates and COUNTS in NET files."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from conftest import real_file

import xcube
from xcube.io.lightcurve_file import read_lightcurve
from xcube.io.ogip import read_spectrum, write_image, write_lightcurve, write_spectrum

MOS1_CLEAN = ("xmm", "xga_0201901401_mos1_exp1_clean_evts.fits")
MOS2_CLEAN = ("xmm", "xga_0201901401_mos2_exp1_clean_evts.fits")
SRC = "physical;circle(26000,26000,600)"
BKG = "physical;annulus(26000,26000,900,1400)"


@pytest.fixture(scope="module")
def pn(tmp_path_factory):
    from xcube import simulate

    path = tmp_path_factory.mktemp("pn") / "pn.fits"
    simulate.event_list("xmm-pn", duration=4000.0, sources=3, seed=5, path=path, overwrite=True)
    return xcube.open_events(path)


# --------------------------------------------------------------------------- light curves


def test_rate_long_names_say_what_they_are(make_event_file):
    ev = xcube.open_events(make_event_file(n=500))
    lc = xcube.lightcurve(ev, 1000.0, region="circle(26000,26000,2000)", background="annulus(26000,26000,2500,4000)")
    assert lc["rate"].attrs["long_name"] == "count rate" and lc["rate"].attrs["units"] == "count/s"
    assert lc["rate_err"].attrs["long_name"] == "error of the count rate"
    assert "good time" not in lc["net_rate"].attrs["long_name"]
    assert lc["counts"].attrs["long_name"] == "counts in the bin"
    fig = lc["rate"].compute().plot.step()[0].figure  # a plain xarray plot is labelled right
    assert fig.axes[0].get_ylabel() == "count rate [count/s]"


def test_uncorrected_rates_and_counts_in_net_files(tmp_path):
    ev = xcube.open_events(real_file(*MOS1_CLEAN))
    lc = xcube.lightcurve(ev, 100.0, region=SRC, background=BKG).compute()
    partial = (lc["fracexp"] > 0) & (lc["fracexp"] < 1)
    assert partial.any()
    write_lightcurve(tmp_path / "net.lc", lc, kind="net")
    write_lightcurve(tmp_path / "raw.lc", lc, kind="net", fraccorr=False)
    with fits.open(tmp_path / "net.lc") as h:
        assert h["RATE"].header["FRACCORR"] is True
        np.testing.assert_array_equal(h["RATE"].data["COUNTS"], lc["counts"].values)  # gross source counts
    with fits.open(tmp_path / "raw.lc") as h:
        d, hdr = h["RATE"].data, h["RATE"].header
        assert hdr["FRACCORR"] is False
        expected = np.where(lc["fracexp"] > 0, np.nan_to_num(lc["net_rate"].values) * lc["fracexp"].values, 0.0)
        np.testing.assert_allclose(d["RATE"], expected, rtol=1e-12, atol=1e-12)  # net counts / TIMEDEL
        np.testing.assert_array_equal(d["COUNTS"], lc["counts"].values)
    back = read_lightcurve(tmp_path / "raw.lc")  # read back corrected, as xcube holds it
    good = lc["exposure"].values > 0
    np.testing.assert_allclose(back["rate"].values[good], lc["net_rate"].values[good], rtol=1e-10)
    np.testing.assert_allclose(back["bkg_rate"].values[good], lc["bkg_rate"].values[good], rtol=1e-10)
    np.testing.assert_array_equal(back["counts"].values, lc["counts"].values)


def test_stingray_reads_uncorrected_rates_as_counts(tmp_path):
    from stingray import Lightcurve

    ev = xcube.open_events(real_file(*MOS1_CLEAN))
    lc = xcube.lightcurve(ev, 100.0, region=SRC).compute()
    write_lightcurve(tmp_path / "src.lc", lc, fraccorr=False)
    slc = Lightcurve.read(str(tmp_path / "src.lc"), fmt="hea")
    full = lc["fracexp"].values == 1.0
    np.testing.assert_allclose(np.asarray(slc.counts)[full], lc["counts"].values[full], rtol=1e-12)
    assert slc.mjdref == pytest.approx(50814.0)


def test_light_curve_of_a_datatree_of_cameras():
    tree = xcube.open_events([real_file(*MOS1_CLEAN), real_file(*MOS2_CLEAN)])
    lc = xcube.lightcurve(tree, 100.0, energy_band=(0.5, 2.0), region=SRC, background=BKG).compute()
    assert lc.attrs["instrument"] == "EMOS1+EMOS2" and len(lc.attrs["cameras"]) == 2
    nodes = [n.to_dataset() for n in tree.subtree if "event" in n.dims]
    common = xcube.gti.intersection(*[xcube.gti.from_dataset(e) for e in nodes])
    # the good time the cameras share on the CCDs the regions lie on (XMM EPIC per-CCD GTIs)
    from xcube.products.lightcurve import region_good_time

    common = xcube.gti.intersection(common, *[region_good_time(e, [SRC, BKG])[0] for e in nodes])
    assert float(lc["exposure"].sum()) == pytest.approx(xcube.gti.exposure(common))
    each = [xcube.lightcurve(xcube.select(e, gti=common), 100.0, energy_band=(0.5, 2.0), region=SRC,
                             background=BKG).compute() for e in nodes]
    np.testing.assert_array_equal(lc["counts"].values, each[0]["counts"].values + each[1]["counts"].values)
    np.testing.assert_array_equal(lc["bkg_counts"].values, each[0]["bkg_counts"].values + each[1]["bkg_counts"].values)
    per_node = xcube.lightcurve(tree, 100.0, cameras="each")
    assert isinstance(per_node, xr.DataTree)
    assert sorted(n.name for n in per_node.subtree if "time" in n.dims) == ["EMOS1", "EMOS2"]


def test_light_curve_of_a_datatree_says_what_to_pass(make_event_file):
    a = make_event_file(n=100, header={"OBS_ID": "0100000001"})
    b = make_event_file(n=100, header={"OBS_ID": "0100000002"})
    tree = xcube.open_events([a, b])
    with pytest.raises(ValueError, match=r"2 observations .*tree\['0100000001'\].*cameras='each'"):
        xcube.lightcurve(tree, 100.0)
    assert len([n for n in xcube.lightcurve(tree, 100.0, cameras="each").subtree if "time" in n.dims]) == 2
    headers = xcube.open_archive([a, b])  # headers only
    with pytest.raises(ValueError, match="holds no event lists"):
        xcube.lightcurve(headers, 100.0)
    with pytest.raises(ValueError, match="cameras="):
        xcube.lightcurve(tree, 100.0, cameras="mean")


# --------------------------------------------------------------------------- GTIs


def test_select_takes_a_gti_file_or_table(make_event_file, tmp_path):
    ev = xcube.open_events(make_event_file(n=1000, t0=1.0e8, duration=1.0e4))
    gti = ([1.0e8 + 1000.0, 1.0e8 + 5000.0], [1.0e8 + 2000.0, 1.0e8 + 5500.0])
    xcube.write_gti(tmp_path / "gti.fits", gti, attrs=ev.attrs)
    ref = xcube.select(ev, gti=gti)
    assert ref.attrs["exposure"] == 1500.0
    with fits.open(tmp_path / "gti.fits") as hdul:
        forms = [str(tmp_path / "gti.fits"), tmp_path / "gti.fits", f"{tmp_path / 'gti.fits'}[GTI]",
                 hdul["GTI"], hdul, Table.read(tmp_path / "gti.fits", hdu="GTI"), np.array(hdul["GTI"].data),
                 pd.DataFrame({"START": gti[0], "STOP": gti[1]})]
        for form in forms:
            out = xcube.select(ev, gti=form)
            assert out.attrs["exposure"] == 1500.0, type(form)
            np.testing.assert_array_equal(out["time"].values, ref["time"].values)
    np.testing.assert_array_equal(xcube.read_gti(tmp_path / "gti.fits")[0], gti[0])  # top level
    xcube.write_gti(tmp_path / "other.fits", gti, attrs={"mjdref": 51544.0})
    with pytest.raises(ValueError, match="MJDREF 51544.0 differs from the events' 50814.0"):
        xcube.select(ev, gti=tmp_path / "other.fits")
    with pytest.raises(ValueError, match="no GTI table"):
        xcube.select(ev, gti=_table_without_gti(tmp_path))


def _table_without_gti(tmp_path):
    path = tmp_path / "nogti.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name="A", format="D", array=np.zeros(2))], name="DATA")]).writeto(path)
    return str(path)


# --------------------------------------------------------------------------- images


def test_image_physical_coordinates_wcs_frame_and_extent(tmp_path):
    ev = xcube.open_events(real_file(*MOS1_CLEAN))
    img = xcube.image(ev, size_arcsec=4.0)
    x, y = ev["x"].values, ev["y"].values
    assert img["x_lo"].values[0] <= x.min() < img["x_lo"].values[0] + 80  # the events' extent,
    assert img["x_hi"].values[-1] > x.max() and img["x_hi"].values[-1] - 80 <= x.max()
    assert img["x_lo"].values[0] > ev.attrs["x_min"] + 1000  # not TLMIN-TLMAX
    write_image(tmp_path / "img.fits", img)
    h = fits.getheader(tmp_path / "img.fits")
    assert h["RADESYS"] == "FK5" and h["EQUINOX"] == 2000.0
    # DS9's physical = sky X/Y: image = LTM * X + LTV puts event k in the pixel that counts it
    k = 1234
    px = h["LTM1_1"] * x[k] + h["LTV1"]
    py = h["LTM2_2"] * y[k] + h["LTV2"]
    ix, iy = int(np.floor(px + 0.5)) - 1, int(np.floor(py + 0.5)) - 1
    assert img["x_lo"].values[ix] <= x[k] < img["x_hi"].values[ix]
    assert img["y_lo"].values[iy] <= y[k] < img["y_hi"].values[iy]
    phys = WCS(h, key="P")
    np.testing.assert_allclose(phys.all_pix2world([[px, py]], 1)[0], [x[k], y[k]], atol=1e-6)
    # and the sky WCS at that pixel is the event's RA/Dec through the event file's WCS
    sky = WCS(h).all_pix2world([[px, py]], 1)[0]
    c = xcube.wcs(ev).pixel_to_world(x[k], y[k])
    assert np.hypot((sky[0] - c.ra.deg) * np.cos(np.radians(c.dec.deg)), sky[1] - c.dec.deg) * 3600 < 0.01


def test_image_plot_has_ra_dec_axes_and_dark_empty_pixels():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    ev = xcube.open_events(real_file(*MOS1_CLEAN))
    img = xcube.image(ev, size_arcsec=8.0).compute()
    fig = xcube.plot.image(img)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "RA (FK5)" and ax.get_ylabel() == "Dec (FK5)" and hasattr(ax, "wcs")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3].astype(float) / 255
    im = ax.images[0]
    empty = np.argwhere(np.asarray(img.values) == 0)[0]  # an empty pixel, drawn at its data position
    disp = ax.transData.transform([[empty[1], empty[0]]])[0]
    r, g, b = rgb[int(rgb.shape[0] - disp[1]), int(disp[0])]
    assert r + g + b < 0.2, "empty pixels must be dark, not white"
    assert im.cmap.get_bad()[:3] == pytest.approx(im.cmap(0.0)[:3])


# --------------------------------------------------------------------------- spectra


def test_spectra_default_to_the_standard_channel_grid(pn, tmp_path):
    mos = xcube.open_events(real_file(*MOS1_CLEAN))
    spec = xcube.spectrum(mos)
    assert spec.sizes["channel"] == 800 and spec.attrs["channel_bin"] == 15  # MOS RMFs: 0-11999 by 15
    assert spec["pi_lo"].values[[0, -1]].tolist() == [0, 11985] and spec["pi_hi"].values[-1] == 12000
    assert int(spec["counts"].sum()) == int((mos["pi"].values <= 11999).sum())
    write_spectrum(tmp_path / "mos.pha", spec)
    h = fits.getheader(tmp_path / "mos.pha", "SPECTRUM")
    assert (h["DETCHANS"], h["TLMIN1"], h["TLMAX1"], h["SPECDELT"]) == (800, 0, 799, 15)
    back = read_spectrum(tmp_path / "mos.pha")
    np.testing.assert_array_equal(back["pi_lo"].values, spec["pi_lo"].values)
    pn_spec = xcube.spectrum(pn)
    assert pn_spec.sizes["channel"] == 4096 and pn_spec.attrs["channel_bin"] == 5  # pn: 0-20479 by 5
    one = xcube.spectrum(mos, channel_bin=1)  # asked for: one channel per PI over the mission's PI range
    lo, hi = xcube.missions.profile_of(mos).pi_range
    assert one.sizes["channel"] == hi - lo + 1
    nustar = xcube.open_events(real_file("nustar", "barycenter_dummy_evt_nustar_B1937.evt"))
    nu = xcube.spectrum(nustar)  # no standard grid: one channel per PI over the PI range
    assert nu.attrs["channel_bin"] == 1 and nu.sizes["channel"] == 4096


# --------------------------------------------------------------------------- namespace


def test_subpackages_are_reachable_after_import_xcube():
    code = ("import xcube; import matplotlib.figure; "
            "print(callable(xcube.plot.image), callable(xcube.times), callable(xcube.read_gti), "
            "callable(xcube.survey.build_catalogue), callable(xcube.write_lightcurve))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True"] * 5
