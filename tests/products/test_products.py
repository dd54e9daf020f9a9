"""Light curves, images and spectra from event lists (xcube.products)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits
from conftest import real_file

import xcube
from xcube import gti as gtimod
from xcube.io.lightcurve_file import read_lightcurve
from xcube.io.ogip import write_image, write_lightcurve, write_spectrum

MOS1 = ("xmm", "P0001730201M1S002MIEVLI.FTZ")
SRC = "physical;circle(25921,25921,2000)"
BKG = "physical;annulus(25921,25921,3000,5000)"


def _fits_events(path):
    """Independent reference: the raw event columns through astropy."""
    with fits.open(path) as hdul:
        d = hdul["EVENTS"].data
        return {k: np.asarray(d[k]).astype(np.float64) for k in ("TIME", "X", "Y", "PI")}


# --------------------------------------------------------------------------- light curves on real data


def test_lightcurve_counts_equal_stingray_on_real_events():
    from stingray import Lightcurve

    path = real_file(*MOS1)
    ev = xcube.open_events(path)
    t0 = float(ev.gti_start.values[0])
    t_end = float(ev.gti_stop.values[-1])
    lc = xcube.lightcurve(ev, 50.0, energy_band=(0.5, 10.0), region=SRC, t0=t0, screening=False).compute()
    # reference selection straight from the FITS columns: PI in [500, 10000), circle boundary inside
    c = _fits_events(path)
    keep = (c["PI"] >= 500) & (c["PI"] < 10000) & ((c["X"] - 25921) ** 2 + (c["Y"] - 25921) ** 2 <= 2000**2)
    toa = np.sort(c["TIME"][keep])
    ref = Lightcurve.make_lightcurve(toa, 50.0, tstart=t0, tseg=t_end - t0)
    n = ref.n
    assert n >= lc.sizes["time"] - 1  # Stingray drops only the trailing partial bin
    np.testing.assert_array_equal(lc.counts.values[:n], ref.counts)
    np.testing.assert_allclose(lc.time.values[:n], ref.time)
    assert int(lc.counts.sum()) == int(np.sum((toa >= t0) & (toa < lc.time_hi.values[-1])))


def test_real_lightcurve_file_reads_in_stingray(tmp_path):
    from stingray import Lightcurve

    ev = xcube.open_events(real_file(*MOS1))
    lc = xcube.lightcurve(ev, 100.0, energy_band=(0.5, 10.0), region=SRC).compute()
    path = write_lightcurve(tmp_path / "mos1.lc", lc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = Lightcurve.read(str(path), fmt="hea")
    full = lc.fracexp.values == 1.0
    assert full.sum() > 100
    np.testing.assert_allclose(s.time, lc.time.values)
    np.testing.assert_allclose(s.counts[full], lc.counts.values[full])
    back = read_lightcurve(path)
    np.testing.assert_array_equal(back.counts.values, lc.counts.values)
    np.testing.assert_allclose(back.exposure.values, lc.exposure.values)


def test_lightcurve_is_lazy_and_documents_its_provenance():
    ev = xcube.open_events(real_file(*MOS1))
    lc = xcube.lightcurve(ev, 200.0, energy_band=(0.2, 12.0), region=SRC, background=BKG)
    for v in ("counts", "rate", "rate_err", "bkg_counts", "net_rate", "net_rate_err"):
        assert hasattr(lc[v].data, "dask"), v
    assert lc.attrs["time_bin"] == 200.0 and lc.attrs["energy_band"] == [0.2, 12.0]
    assert lc.attrs["region"] == SRC and lc.attrs["background_region"] == BKG
    assert lc.attrs["backscal_ratio"] == pytest.approx(2000**2 / (5000**2 - 3000**2))
    assert any("energy_band" in s for s in lc.attrs["selection"])
    assert lc.sizes["gti"] == ev.sizes["gti"]


# --------------------------------------------------------------------------- synthetic: known rates


@pytest.fixture
def field(make_event_file):
    """10 ks of a 2 count/s point source at (26000, 26000) on a uniform background."""
    rng = np.random.default_rng(42)
    n_src, n_bkg = 20_000, 160_000
    n = n_src + n_bkg
    is_src = rng.permutation(np.r_[np.ones(n_src, bool), np.zeros(n_bkg, bool)])
    x = np.where(is_src, 26000 + rng.normal(0, 20, n), rng.uniform(24000, 28000, n))
    y = np.where(is_src, 26000 + rng.normal(0, 20, n), rng.uniform(24000, 28000, n))
    path = make_event_file(n=n, duration=1.0e4, seed=7, columns={
        "X": np.round(x).astype(np.int32), "Y": np.round(y).astype(np.int32),
        "PI": rng.integers(300, 9000, n).astype(np.int16)})
    return path


def test_net_rate_scales_background_by_area(field):
    ev = xcube.open_events(field)
    src, bkg = "physical;circle(26000,26000,400)", "physical;annulus(26000,26000,600,1200)"
    lc = xcube.lightcurve(ev, 1000.0, region=src, background=bkg).compute()
    ratio = 400**2 / (1200**2 - 600**2)
    assert lc.attrs["backscal_ratio"] == pytest.approx(ratio, rel=1e-12)
    exp = lc.exposure.values
    np.testing.assert_allclose(lc.bkg_rate.values, ratio * lc.bkg_counts.values / exp)
    np.testing.assert_allclose(lc.net_rate.values, lc.counts.values / exp - ratio * lc.bkg_counts.values / exp)
    np.testing.assert_allclose(lc.net_rate_err.values,
                               np.sqrt(lc.counts.values + ratio**2 * lc.bkg_counts.values) / exp)
    # known truth: 2 count/s source, background density 1e-5 count/s/pixel^2 * area
    net = float(lc.counts.sum() - ratio * lc.bkg_counts.sum()) / float(exp.sum())
    assert net == pytest.approx(2.0, abs=0.05)
    expected_bkg = 160_000 / 4000**2 * np.pi * 400**2 / 1.0e4
    assert float(lc.bkg_rate.mean()) == pytest.approx(expected_bkg, rel=0.05)


def test_gehrels_errors_in_lightcurve(field):
    ev = xcube.open_events(field)
    lc = xcube.lightcurve(ev, 10.0, region="physical;circle(25000,25000,30)", errors="gehrels").compute()
    n = lc.counts.values
    assert (n == 0).any()  # small counts: the case Gehrels is for
    np.testing.assert_allclose(lc.rate_err.values * lc.exposure.values, 1 + np.sqrt(n + 0.75))
    assert lc.rate_err.attrs["errors"] == "gehrels"


def test_offset_and_t0(field):
    ev = xcube.open_events(field)
    t0 = float(ev.gti_start.values[0])
    lc = xcube.lightcurve(ev, 1000.0, t0=t0 + 100.0)
    assert lc.time_lo.values[0] == t0 + 100.0
    half = xcube.lightcurve(ev, 1000.0, offset=0.5)
    assert half.time_lo.values[0] == t0 - 500.0 and half.exposure.values[0] == 500.0
    assert int(half.counts.sum()) == int(xcube.lightcurve(ev, 1000.0).counts.sum()) == ev.sizes["event"]


def test_time_range(field):
    ev = xcube.open_events(field)
    t0 = float(ev.gti_start.values[0])
    lc = xcube.lightcurve(ev, 100.0, time_range=(t0 + 1000, t0 + 2000)).compute()
    assert lc.sizes["time"] == 10 and lc.time_lo.values[0] == t0 + 1000
    t = ev.time.values
    assert int(lc.counts.sum()) == int(np.sum((t >= t0 + 1000) & (t < t0 + 2000)))
    np.testing.assert_array_equal(lc.gti_start.values, [t0 + 1000])


# --------------------------------------------------------------------------- bad input


def test_bad_input_errors(field):
    ev = xcube.open_events(field)
    t0, t1 = float(ev.gti_start.values[0]), float(ev.gti_stop.values[-1])
    for bad in (0.0, -10.0, float("nan")):
        with pytest.raises(ValueError, match="positive"):
            xcube.lightcurve(ev, bad)
    with pytest.raises(ValueError, match="outside the events' field"):
        xcube.lightcurve(ev, 100.0, region="physical;circle(5000,5000,100)")
    with pytest.raises(ValueError, match="energy range"):
        xcube.lightcurve(ev, 100.0, energy_band=(20.0, 30.0))
    with pytest.raises(ValueError, match="outside the GTIs"):
        xcube.lightcurve(ev, 100.0, time_range=(t1 + 10, t1 + 1000))
    with pytest.raises(ValueError, match="GTI"):
        xcube.lightcurve(ev, 100.0, t0=t1 + 10)
    with pytest.raises(ValueError, match="needs a source region"):
        xcube.lightcurve(ev, 100.0, background="physical;circle(26000,26000,50)")
    with pytest.raises(ValueError, match="errors="):
        xcube.lightcurve(ev, 100.0, errors="gauss")
    with pytest.raises(ValueError, match="not both"):
        xcube.image(ev, 80.0, size_arcsec=4.0)
    assert t0 < t1


def test_image_default_pixel_is_the_missions(field):
    """No pixel size given: XMM EPIC images come in 4" pixels (80 sky pixels), as with size_arcsec=4."""
    ev = xcube.open_events(field)
    img = xcube.image(ev)
    assert img.attrs["bin_size"] == 80.0
    assert img.equals(xcube.image(ev, size_arcsec=4.0))
    generic = ev.assign_attrs(profile="generic")
    assert xcube.image(generic, x_range=(25000, 25010), y_range=(25000, 25010)).attrs["bin_size"] == 1.0


def test_empty_selection_gives_zero_counts_and_warning(field, tmp_path):
    ev = xcube.open_events(field)
    with pytest.warns(UserWarning, match="empty"):
        lc = xcube.lightcurve(ev, 1000.0, expr="PI > 15000")
    lc = lc.compute()
    assert int(lc.counts.sum()) == 0 and lc.sizes["time"] == 10
    assert np.all(lc.rate.values == 0)
    with pytest.warns(UserWarning, match="no counts"):
        write_lightcurve(tmp_path / "empty.lc", lc)
    with pytest.warns(UserWarning, match="empty"):
        spec = xcube.spectrum(ev, region="physical;circle(26000,26000,400)", expr="PI > 15000")
    assert int(spec.counts.sum()) == 0


# --------------------------------------------------------------------------- images


def test_image_wcs_and_counts(field, tmp_path):
    from astropy.wcs import WCS

    from xcube.binning import cube_wcs

    ev = xcube.open_events(field)
    img = xcube.image(ev, 40.0, x_range=(24000, 28000), y_range=(24000, 28000), energy_band=(0.5, 5.0))
    assert img.dims == ("y", "x") and img.sizes["x"] == 101  # 4000 px / 40, ends included
    img = img.compute()
    x, y, pi = (ev[c].values for c in ("x", "y", "pi"))
    inside = (pi >= 500) & (pi < 5000) & (x >= 24000) & (x < 28040) & (y >= 24000) & (y < 28040)
    assert int(img.sum()) == int(inside.sum())
    # the brightest pixel is the source, and the WCS puts it at the source's sky position
    j, i = np.unravel_index(int(np.argmax(img.values)), img.shape)
    assert img.x_lo.values[i] <= 26000 < img.x_hi.values[i] and img.y_lo.values[j] <= 26000 < img.y_hi.values[j]
    # the image WCS at a pixel centre is the event WCS at that centre's column values (pixel = column value)
    centre_sky = xcube.regions.events_wcs(ev).pixel_to_world(float(img.x.values[i]), float(img.y.values[j]))
    assert centre_sky.separation(cube_wcs(img).pixel_to_world(i, j)).arcsec < 1e-6
    path = write_image(tmp_path / "img.fits", img)
    with fits.open(path) as hdul:
        h = hdul[0].header
        np.testing.assert_array_equal(hdul[0].data, img.values)
        assert h["BUNIT"] == "count" and h["EXPOSURE"] == pytest.approx(1.0e4)
        w = WCS(h)
        ra, dec = w.wcs_pix2world(i, j, 0)
        assert ra == pytest.approx(float(img.ra.values[j, i])) and dec == pytest.approx(float(img.dec.values[j, i]))


def test_image_of_region_covers_its_box(field):
    ev = xcube.open_events(field)
    img = xcube.image(ev, size_arcsec=2.0, region="physical;circle(26000,26000,400)").compute()
    assert img.x_lo.values[0] <= 25600 and img.x_hi.values[-1] >= 26400
    x, y = ev.x.values, ev.y.values
    assert int(img.sum()) == int(np.sum((x - 26000.0) ** 2 + (y - 26000.0) ** 2 <= 400**2))


# --------------------------------------------------------------------------- spectra


def test_spectrum_counts_and_pha(field, tmp_path):
    ev = xcube.open_events(field)
    src, bkg = "physical;circle(26000,26000,400)", "physical;annulus(26000,26000,600,1200)"
    spec = xcube.spectrum(ev, region=src, background=bkg, channel_bin=5).compute()
    x, y, pi = ev.x.values, ev.y.values, ev.pi.values
    in_src = (x - 26000.0) ** 2 + (y - 26000.0) ** 2 <= 400**2
    assert int(spec.counts.sum()) == int(in_src.sum())
    np.testing.assert_array_equal(spec.counts.values, np.bincount(pi[in_src] // 5, minlength=3001))
    # MOS PI 0..15000 (TLMAX of its event files; not pn's 0..20479) by 5: 3001 channels
    assert spec.sizes["channel"] == 3001 and spec.attrs["channel_range"] == (0, 3000)
    assert spec.attrs["backscal"] == pytest.approx(np.pi * 400**2)
    assert spec.attrs["area_arcsec2"] == pytest.approx(np.pi * 400**2 * 0.05**2, rel=1e-6)
    assert spec.attrs["exposure"] == pytest.approx(1.0e4)
    assert float(spec.energy_lo.values[100]) == pytest.approx(0.5)
    grouped = xcube.products.group_spectrum(spec, 25)
    path = write_spectrum(tmp_path / "src.pha", grouped)
    with fits.open(path) as hdul:
        d, h = hdul["SPECTRUM"].data, hdul["SPECTRUM"].header
        np.testing.assert_array_equal(d["COUNTS"], spec.counts.values)
        np.testing.assert_array_equal(d["GROUPING"], grouped.grouping.values)
        assert h["BACKFILE"] == "src_bkg.pha" and h["DETCHANS"] == 3001 and h["TLMAX1"] == 3000
        assert h["BACKSCAL"] == pytest.approx(np.pi * 400**2)
    with fits.open(tmp_path / "src_bkg.pha") as hdul:
        assert hdul["SPECTRUM"].data["COUNTS"].sum() == int(spec.bkg_counts.sum())
        assert hdul["SPECTRUM"].header["CHANTYPE"] == "PI"
    assert fits.getheader(path, "SPECTRUM")["CHANTYPE"] == "PI"


def test_rxte_pca_spectrum_is_written_with_chantype_pha(tmp_path):
    from xcube.cli import main
    from xcube.io.ogip import read_spectrum
    from xcube.io.write_events import write_events_fits

    rng = np.random.default_rng(4)
    n, t0 = 500, 1.0e8
    cols = {"TIME": np.sort(rng.uniform(t0, t0 + 1000, n)), "PHA": rng.integers(0, 256, n).astype(np.int16)}
    hdr = {"TELESCOP": "XTE", "INSTRUME": "PCA", "DATAMODE": "GoodXenon_2s", "MJDREFI": 49353,
           "MJDREFF": 6.965740740000000e-4, "TIMESYS": "TT", "TSTART": t0, "TSTOP": t0 + 1000}
    p = write_events_fits(tmp_path / "FS4a_1234.evt", cols, header=hdr, events_extension="XTE_SE",
                          gti_extensions={"STDGTI": ([t0], [t0 + 1000])})
    out = tmp_path / "pca.pha"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no PI-to-energy conversion for the PCA
        assert main(["spectrum", str(p), "-o", str(out)]) == 0
        assert xcube.spectrum(xcube.open_events(p)).attrs["chantype"] == "PHA"
    h = fits.getheader(out, "SPECTRUM")
    assert h["CHANTYPE"] == "PHA" and h["TLMAX1"] == 255
    back = read_spectrum(out)
    assert back.attrs["chantype"] == "PHA"
    again = write_spectrum(tmp_path / "again.pha", back)  # the type survives a round trip
    assert fits.getheader(again, "SPECTRUM")["CHANTYPE"] == "PHA"


def test_spectrum_pi_range_selects_whole_channels_of_the_full_grid(field):
    ev = xcube.open_events(field)
    spec = xcube.spectrum(ev, channel_bin=15, pi_range=(0, 11999)).compute()
    pi = ev.pi.values
    assert spec.sizes["channel"] == 800 and "quality" not in spec  # the whole standard grid: nothing flagged
    assert int(spec.counts.sum()) == int(np.sum(pi <= 11999))
    odd = xcube.spectrum(ev, channel_bin=10, pi_range=(305, 8994)).compute()
    # rounded outward to whole channels (30-899: PI 300-8999), never a partial edge channel; the spectrum
    # keeps MOS's whole grid at 10 PI (PI 0-15000: channels 0-1500), bad (quality 1) outside the selection
    assert odd.attrs["pi_range"] == (300, 8999) and odd.attrs["channel_range"] == (0, 1500)
    assert odd.sizes["channel"] == 1501 and np.all(odd.pi_hi.values - odd.pi_lo.values == 10)
    assert int(odd.counts.sum()) == int(np.sum((pi >= 300) & (pi <= 8999)))
    inside = (odd.channel.values >= 30) & (odd.channel.values <= 899)
    np.testing.assert_array_equal(odd.quality.values, np.where(inside, 0, 1))
    np.testing.assert_array_equal(odd.counts.values[inside], np.bincount(pi[(pi >= 300) & (pi < 9000)] // 10,
                                                                         minlength=900)[30:900])
    with pytest.raises(ValueError, match="channel_bin"):
        xcube.spectrum(ev, channel_bin=0)


def test_spectrum_real_region_counts():
    ev = xcube.open_events(real_file(*MOS1))
    spec = xcube.spectrum(ev, region=SRC, channel_bin=15, group_min=20, screening=False)
    sel = xcube.select(ev, region=SRC)
    # MOS's standard grid: PI 0-11999 in 800 channels of 15 (the RMF's); higher PI is not counted
    assert spec.sizes["channel"] == 800
    assert int(spec.counts.sum()) == int((sel.pi.values <= 11999).sum())
    good = spec.quality.values == 0
    assert good.any()


# --------------------------------------------------------------------------- command line


def test_cli_products(field, tmp_path, capsys):
    from xcube.cli import main

    out = tmp_path / "src.lc"
    rc = main(["lc", str(field), "--time-bin", "500", "--energy", "0.5", "10", "--region",
               "physical;circle(26000,26000,400)", "--background", "physical;annulus(26000,26000,600,1200)",
               "--out", str(out)])
    assert rc == 0 and "20 bins" in capsys.readouterr().out
    lc = read_lightcurve(out)
    assert lc.attrs["hduclas2"] == "NET" and "bkg_rate" in lc
    bkg = tmp_path / "bkg.lc"
    assert main(["lc", str(field), "--time-bin", "500", "--energy", "0.5", "10", "--region",
                 "physical;circle(26000,26000,400)", "--background", "physical;annulus(26000,26000,600,1200)",
                 "--kind", "background", "--out", str(bkg)]) == 0
    said = capsys.readouterr().out  # the background rate it prints is the one in the file
    b = read_lightcurve(bkg)
    good = b["exposure"].values > 0
    rate, expo = b["rate"].values[good], b["exposure"].values[good]  # counts over exposure
    assert f"mean background rate {np.sum(rate * expo) / np.sum(expo):.4g} count/s" in said
    assert main(["lc", str(field), "--time-bin", "500", "--out", str(out)]) == 1  # exists, no --overwrite
    assert "overwrite" in capsys.readouterr().err
    assert main(["lc", str(field), "--time-bin", "-5", "--out", str(tmp_path / "b.lc")]) == 1
    assert "positive" in capsys.readouterr().err
    assert main(["image", str(field), "--bin-size", "80", "--x-range", "24000", "28000", "--y-range", "24000",
                 "28000", "--out", str(tmp_path / "img.fits")]) == 0
    assert fits.getdata(tmp_path / "img.fits").shape == (51, 51)
    assert main(["spectrum", str(field), "--region", "physical;circle(26000,26000,400)", "--group-min", "20",
                 "--channel-bin", "5", "--screen", "--out", str(tmp_path / "s.pha")]) == 0
    with fits.open(tmp_path / "s.pha") as hdul:
        assert hdul["SPECTRUM"].header["BACKFILE"] == "none"
        assert (hdul["SPECTRUM"].data["GROUPING"] == -1).any()
    assert gtimod.exposure(xcube.io.ogip.read_gti(out)) == pytest.approx(1.0e4)


def test_stingray_conversion_roundtrip(field):
    from xcube.products import from_stingray, to_stingray

    ev = xcube.open_events(field)
    lc = xcube.lightcurve(ev, 100.0, region="physical;circle(26000,26000,400)").compute()
    s = to_stingray(lc)
    np.testing.assert_array_equal(s.counts, lc.counts.values)
    np.testing.assert_allclose(s.time, lc.time.values)
    assert s.dt == 100.0 and s.mjdref == 50814.0
    np.testing.assert_array_equal(s.gti, np.column_stack([lc.gti_start.values, lc.gti_stop.values]))
    back = from_stingray(s)
    for v in ("counts", "rate", "rate_err", "exposure", "time_lo", "time_hi"):
        np.testing.assert_allclose(back[v].values, lc[v].values, err_msg=v)


def test_sky_region_matches_physical_region(field):
    ev = xcube.open_events(field)
    centre = xcube.regions.events_wcs(ev).pixel_to_world(26000, 26000)
    sky = f"fk5;circle({centre.ra.deg:.8f},{centre.dec.deg:.8f},20\")"  # 20" = 400 XMM sky pixels
    phys = "physical;circle(26000,26000,400)"
    a = xcube.lightcurve(ev, 1000.0, region=sky).compute()
    b = xcube.lightcurve(ev, 1000.0, region=phys).compute()
    assert a.attrs["backscal"] == pytest.approx(b.attrs["backscal"], rel=1e-3)
    assert abs(int(a.counts.sum()) - int(b.counts.sum())) <= 0.002 * int(b.counts.sum())


def test_products_count_only_events_inside_the_gtis():
    """Spectrum, image and light curve hold the events inside the GTIs, whose
    length is their exposure (events outside made rates too high)."""
    ev, _ = xcube.simulate.event_list("xmm-mos1", duration=4_000.0, sources=2, soft_protons=0, seed=5, t0=7.0e8)
    ev = ev.load()
    cut = ev.drop_vars(["gti_start", "gti_stop"]).assign(
        gti_start=("gti", np.array([7.0e8, 7.0e8 + 2_500.0])), gti_stop=("gti", np.array([7.0e8 + 1_000.0,
                                                                                         7.0e8 + 3_000.0])))
    inside = gtimod.in_gti(cut["time"].values, gtimod.from_dataset(cut))
    assert 0 < inside.sum() < cut.sizes["event"]
    sp = xcube.spectrum(cut, pi_range=(0, 1 << 20), screening=False)
    assert int(sp["counts"].sum()) == int(inside.sum()) and sp.attrs["exposure"] == 1_500.0
    im = xcube.image(cut, screening=False)
    assert int(im.sum()) == int(inside.sum()) and im.attrs["exposure"] == 1_500.0
    assert int(xcube.lightcurve(cut, 100.0, screening=False)["counts"].sum()) == int(inside.sum())
    empty = cut.assign(gti_stop=cut["gti_start"])
    with pytest.raises(ValueError, match="no good time"):
        xcube.spectrum(empty)
    with pytest.raises(ValueError, match="no good time"):
        xcube.image(empty)


def test_writers_name_swapped_arguments(tmp_path):
    lc = xcube.simulate.event_list("xmm-mos1", duration=1_000.0, sources=1, soft_protons=0, seed=2)[0]
    curve = xcube.lightcurve(lc, 100.0)
    with pytest.raises(TypeError, match="the path comes first"):
        write_lightcurve(curve, str(tmp_path / "x.lc"))
    with pytest.raises(TypeError, match="the path comes first"):
        write_image(xcube.image(lc), tmp_path / "x.img")


def test_products_screen_by_default_as_the_commands(tmp_path, capsys, caplog):
    """``xcube.lightcurve``/``spectrum``/``image`` apply the mission's screening
    by default, as ``xcube lc`` does; ``screening=False`` keeps every event."""
    from xcube.cli import main

    ev = xcube.open_events(real_file(*MOS1))
    screened = xcube.select(ev, expr="PATTERN <= 12 && FLAG == 0", gti=ev)
    n_screened, n_all = int(screened.sizes["event"]), int(xcube.select(ev, gti=ev).sizes["event"])
    assert n_screened < n_all
    assert int(xcube.lightcurve(ev, 100.0)["counts"].sum()) == n_screened
    assert int(xcube.lightcurve(ev, 100.0, screening=False)["counts"].sum()) == n_all
    assert int(xcube.image(ev).sum()) == n_screened
    with pytest.warns(UserWarning, match="cut to the XMM-Newton EMOS1 channel grid, PI 0-11999"):
        spec = xcube.spectrum(ev, pi_range=(0, 1 << 20))  # the RMF's 800 channels (sweep p25: 1001 before)
    assert spec.sizes["channel"] == 800
    assert int(spec["counts"].sum()) == int((screened["pi"] <= 11999).sum())
    out = tmp_path / "m1.lc"
    assert main(["lc", str(real_file(*MOS1)), "--time-bin", "100", "-o", str(out)]) == 0
    assert int(read_lightcurve(out)["counts"].sum()) == n_screened


def test_screening_warns_only_for_an_unknown_mission(caplog):
    """Missions whose pipelines screen their files (NuSTAR, Chandra, ...) have
    no screening and no warning; an unknown mission's events are not screened
    and say so."""
    from xcube.io.events_fits import events_dataset
    from xcube.missions import GENERIC, profile_of

    nustar = xcube.open_events(real_file("nustar", "barycenter_dummy_evt_nustar_B1937.evt"))
    with caplog.at_level("WARNING", logger="xcube.select"):
        xcube.lightcurve(nustar, 100.0)
    assert not caplog.records
    t = np.linspace(0.0, 999.0, 200)
    generic = events_dataset({"time": t, "x": np.ones(200), "y": np.ones(200)}, ([0.0], [1000.0]), {},
                             {"telescop": "NOSUCH", "instrume": "DET", "source": "nosuch.fits"})
    assert profile_of(generic) is GENERIC
    with caplog.at_level("WARNING", logger="xcube.select"):
        assert int(xcube.lightcurve(generic, 100.0)["counts"].sum()) == 200
    assert any("nosuch.fits: unknown mission" in r.getMessage() for r in caplog.records)
