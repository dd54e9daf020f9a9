"""``xcube info`` and ``xcube convert`` (through ``xcube.cli.main``), and ``xcube.wcs``."""
import numpy as np
import pytest
from conftest import XMM_WCS

import xcube
from xcube.cli import main


def test_info_prints_the_summary(make_event_file, capsys):
    path = make_event_file(n=1234, header={"OBJECT": "HD 159176"},
                           gti=([1.0e8, 1.0e8 + 6e3], [1.0e8 + 5e3, 1.0e8 + 1e4]))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    for text in ("XMM-Newton EMOS1 (profile xmm-mos1)", "mode IMAGING PrimeFullWindow", "obs id      : 0123456789",
                 "object: HD 159176", "events      : 1,234", "GTI exposure: 9000.0 s in 2 interval(s)",
                 "UTC 2001-03-03T", "MJDREF 50814.0", "keV (PI ", "time (float64)", "pattern (uint8)", "ccdnr"):
        assert text in out, text
    ev = xcube.open_events(path)
    lo, hi = float(ev.energy.min()), float(ev.energy.max())
    assert f"energy range: {lo:.3f} - {hi:.3f} keV" in out


def test_info_reports_errors_per_file(make_event_file, tmp_path, capsys):
    good = make_event_file(n=10)
    assert main(["info", str(tmp_path / "missing.fits"), str(good)]) == 1
    captured = capsys.readouterr()
    assert "missing.fits: no such file" in captured.err
    assert "events      : 10" in captured.out


def test_info_without_energy_conversion(tmp_path, capsys):
    from xcube.io.write_events import write_events_fits

    t = np.sort(1e8 + np.random.default_rng(0).uniform(0, 100, 50))
    p = write_events_fits(tmp_path / "pca.evt", {"TIME": t, "PHA": np.arange(50, dtype=np.int16)},
                          header={"TELESCOP": "XTE", "INSTRUME": "PCA", "MJDREFI": 49353, "MJDREFF": 6.9657407407e-4,
                                  "TSTART": 1e8, "TSTOP": 1e8 + 100},
                          events_extension="XTE_SE", gti_extensions={"STDGTI": ([1e8], [1e8 + 100])})
    with pytest.warns(UserWarning, match="no linear energy conversion"):
        assert main(["info", str(p)]) == 0
    assert "energy range: no PI-to-energy conversion (channels 0 - 49)" in capsys.readouterr().out


def test_convert_to_zarr_stores(make_event_file, tmp_path, capsys):
    a = make_event_file(n=300, name="P0123456789M1S001MIEVLI0000.FIT")
    b = make_event_file(n=200, seed=1, name="other.evt.gz", gzip=True)
    out = tmp_path / "zarr"
    assert main(["convert", str(a), str(b), "--out", str(out)]) == 0
    stores = sorted(p.name for p in out.iterdir())
    assert stores == ["P0123456789M1S001MIEVLI0000.zarr", "other.zarr"]
    for src, store in ((a, out / stores[0]), (b, out / stores[1])):
        ev, back = xcube.open_events(src).compute(), xcube.open_events(store).compute()
        np.testing.assert_array_equal(ev.time.values, back.time.values)
        np.testing.assert_array_equal(ev.pi.values, back.pi.values)
        assert back.attrs["obs_id"] == "0123456789"
    assert "-> " in capsys.readouterr().out
    # existing stores are kept unless --overwrite
    assert main(["convert", str(a), "--out", str(out)]) == 1
    assert "P0123456789M1S001MIEVLI0000.zarr: exists; pass --overwrite" in capsys.readouterr().err
    assert main(["convert", str(a), "--out", str(out), "--overwrite"]) == 0
    assert main(["info", str(out / stores[0])]) == 0
    assert "(from " in capsys.readouterr().out


def test_wcs_takes_raw_column_values(make_event_file):
    ev = xcube.open_events(make_event_file(n=100))
    w = xcube.wcs(ev)
    crpix, crval = XMM_WCS["X"]["crpix"], (XMM_WCS["X"]["crval"], XMM_WCS["Y"]["crval"])
    c = w.pixel_to_world(crpix, crpix)
    assert c.ra.deg == pytest.approx(crval[0], abs=1e-12) and c.dec.deg == pytest.approx(crval[1], abs=1e-12)
    # one column unit along -x is +0.05 arcsec in RA*cos(dec) at the reference
    d = w.pixel_to_world(crpix - 1, crpix)
    assert c.separation(d).arcsec == pytest.approx(0.05, rel=1e-6)
    x, y = ev.x.values.astype(float), ev.y.values.astype(float)
    back = w.world_to_pixel(w.pixel_to_world(x, y))
    np.testing.assert_allclose(back[0], x, atol=1e-6)
    np.testing.assert_allclose(back[1], y, atol=1e-6)
    with pytest.raises(KeyError, match="no sky WCS"):
        xcube.wcs({"source": "f.fits", "CTYPE1": "RA---TAN"})


def test_info_summarises_products(make_event_file, tmp_path, capsys):
    """Light curves, spectra, power spectra and GTI files get their own summary; numbers from the files."""
    from xcube.io.ogip import write_gti

    ev_path = make_event_file(n=5000, duration=2048.0, gti=([1.0e8], [1.0e8 + 2048.0]))
    lc_path, pha, pds = tmp_path / "m1.lc", tmp_path / "m1.pha", tmp_path / "m1_pds.fits"
    assert main(["lc", str(ev_path), "--time-bin", "16", "-o", str(lc_path)]) == 0
    assert main(["spectrum", str(ev_path), "-o", str(pha)]) == 0
    assert main(["pds", str(ev_path), "--dt", "1/8", "--segment", "128", "-o", str(pds), "--no-index"]) == 0
    img = tmp_path / "m1_img.fits"
    assert main(["image", str(ev_path), "-o", str(img)]) == 0
    gti = write_gti(tmp_path / "gti.fits", ([1.0e8, 1.0e8 + 600.0], [1.0e8 + 500.0, 1.0e8 + 650.0]),
                    attrs={"mjdref": 50814.0, "timesys": "TT"})
    capsys.readouterr()
    stitched = tmp_path / "st.lc"
    assert main(["stitch", str(lc_path), "-o", str(stitched), "--no-index"]) == 0
    capsys.readouterr()
    assert main(["info", str(lc_path), str(pha), str(pds), str(gti), str(img), str(stitched)]) == 0
    out = capsys.readouterr().out
    lc = xcube.read_lightcurve(lc_path)
    spec = xcube.io.ogip.read_spectrum(pha)
    for text in (f"{lc_path}: light curve (XMM-Newton EMOS1)", f"bins        : {lc.sizes['time']} of 16 s",
                 "UTC 2001-03-03T", f"counts      : {int(lc['counts'].sum()):,}",
                 f"{pha}: spectrum (XMM-Newton EMOS1)", f"counts      : {int(spec['counts'].sum()):,}",
                 f"{pds}: power spectrum", "16 segment(s) of 128 s, bins of 0.125 s", "norm        : leahy",
                 f"{gti}: good time intervals", "GTI exposure: 550.0 s in 2 interval(s), longest 500.0 s",
                 f"{img}: image (XMM-Newton EMOS1)", '4" each', "sum         : 5000 count", "RA---TAN 263.657917",
                 f"{stitched}: long-term light curve (XMM-Newton; 1 observation id(s))"):
        assert text in out, (text, out)


def test_pds_of_events_without_dt_names_the_option(make_event_file, capsys):
    path = make_event_file(n=100)
    assert main(["pds", str(path)]) == 1
    err = capsys.readouterr().err
    assert "give --dt" in err and str(path) in err


def test_info_and_plot_of_files_that_are_not_products(tmp_path, capsys):
    """A CSV or a missing file: the message names the file and the problem, not astropy's."""
    csv = tmp_path / "detections.csv"
    csv.write_text("run_id,obs_id\n1,2\n")
    assert main(["info", str(csv)]) == 1
    assert "detections.csv: not a FITS file" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "missing.fits"), "-o", str(tmp_path / "p.png")]) == 1
    assert "missing.fits: no such file" in capsys.readouterr().err
    assert main(["plot", str(csv), "-o", str(tmp_path / "p.png")]) == 1
    assert "not a product xcube can plot" in capsys.readouterr().err
