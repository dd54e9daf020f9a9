"""Sweep p25 (mission event lists): TSTART/TSTOP from the GTIs without a second TIMEZERO, non-text WCS
type/unit keywords, non-integer CCD numbers of GTI tables, float32 GTI tables."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits

import xcube


def _edit(path, events=None, gti=None, drop=()):
    with fits.open(path, mode="update") as hdul:
        for key in drop:
            for h in hdul:
                h.header.remove(key, ignore_missing=True)
        hdul["EVENTS"].header.update(events or {})
        for h in hdul[2:]:
            h.header.update(gti or {})
    return path


def test_span_without_tstart_takes_the_gtis_timezero_once(make_event_file):
    """A NICER/RXTE-like file with TIMEZERO and no TSTART/TSTOP: the span is the GTI span (TIMEZERO was
    added twice: 3.38 s after the last GTI stop for RXTE's clock offset)."""
    path = _edit(make_event_file(n=500), events={"TIMEZERO": 3.25}, gti={"TIMEZERO": 3.25},
                 drop=("TSTART", "TSTOP"))
    ev = xcube.open_events(path)
    assert ev.attrs["tstart"] == pytest.approx(1e8 + 3.25) == float(ev["gti_start"].values[0])
    assert ev.attrs["tstop"] == pytest.approx(1e8 + 1e4 + 3.25) == float(ev["gti_stop"].values[-1])
    # with TSTART/TSTOP given, TIMEZERO still applies to them once
    ev = xcube.open_events(_edit(make_event_file(n=500), events={"TIMEZERO": 3.25}, gti={"TIMEZERO": 3.25}))
    assert ev.attrs["tstart"] == pytest.approx(1e8 + 3.25) and ev.attrs["tstop"] == pytest.approx(1e8 + 1e4 + 3.25)


@pytest.mark.parametrize("key", ["TCTYP", "TCUNI"])
def test_non_text_wcs_keywords_drop_the_wcs_with_a_warning_naming_the_file(make_event_file, key):
    path = make_event_file(n=200)
    with fits.open(path, mode="update") as hdul:
        h = hdul["EVENTS"].header
        index = [h[f"TTYPE{i}"] for i in range(1, h["TFIELDS"] + 1)].index("X") + 1
        h[f"{key}{index}"] = 5
    with pytest.warns(UserWarning, match=path.name):
        ev = xcube.open_events(path)
    assert ev.sizes["event"] == 200


@pytest.mark.parametrize("value", ["A", 1.5, True])
def test_a_ccd_number_that_is_not_whole_names_the_extension(make_event_file, value):
    path = make_event_file(n=200)
    with fits.open(path, mode="update") as hdul:
        (gti,) = [h for h in hdul[2:] if "GTI" in h.name]
        gti.header["CCDID"] = value
        name = gti.name
    with pytest.raises(ValueError, match=f"{name}: CCDID = .* is not a CCD number") as err:
        xcube.open_events(path)
    assert path.name in str(err.value)


def test_float32_gti_table_warns(make_event_file):
    path = make_event_file(n=200, t0=7e8, duration=3e3)
    with fits.open(path) as hdul:
        hdus = [h.copy() for h in hdul]
    g = hdus[2]
    cols = [fits.Column(c.name, "E" if c.name in ("START", "STOP") else c.format, unit=c.unit,
                        array=np.asarray(g.data[c.name])) for c in g.columns]
    hdus[2] = fits.BinTableHDU.from_columns(cols, header=g.header, name=g.name)
    fits.HDUList(hdus).writeto(path, overwrite=True)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        xcube.open_events(path)
    text = " ".join(str(w.message) for w in said)
    assert "START column is float32" in text and "good-time intervals are rounded" in text and path.name in text


@pytest.mark.parametrize("extname, hduclas1", [("XTE_SA", None), ("RATE", "LIGHTCURVE"), ("SPECTRUM", "SPECTRUM")])
def test_a_binned_table_named_with_hdu_is_refused(tmp_path, extname, hduclas1):
    """Sweep p25: `--hdu XTE_SA` read a Standard2 table's 16 s rows as 100 events (the table held 314378)."""
    cols = [fits.Column("TIME", "D", array=1e8 + 16.0 * np.arange(100)),
            fits.Column("XECNTPCU0", "J", array=np.full(100, 3000))]
    table = fits.BinTableHDU.from_columns(cols, name=extname)
    if hduclas1:
        table.header["HDUCLAS1"] = hduclas1
    prim = fits.PrimaryHDU()
    prim.header.update({"TELESCOP": "XTE", "INSTRUME": "PCA"})
    path = tmp_path / "std2.fits"
    fits.HDUList([prim, table]).writeto(path)
    with pytest.raises(ValueError, match=f"std2.fits\\[{extname}\\]: a binned table"):
        xcube.open_events(path, hdu=extname)


def test_per_chip_gti_tables_named_gti_n_are_read(make_event_file):
    """Sweep p25: per-chip tables GTI7/GTI3 without HDUCLAS1 fell back to TSTART-TSTOP (6000 s for 5500 s)."""
    path = make_event_file(n=400, duration=6000.0, columns={"CCDNR": np.full(400, 3, np.uint8)})
    with fits.open(path) as hdul:
        prim, events = hdul[0].copy(), hdul["EVENTS"].copy()
    gtis = []
    for ccd, stop in ((3, 1e8 + 5500.0), (6, 1e8 + 6000.0)):
        g = fits.BinTableHDU.from_columns([fits.Column("START", "D", array=[1e8]),
                                           fits.Column("STOP", "D", array=[stop])], name=f"GTI{ccd}")
        g.header["CCDID"] = ccd
        gtis.append(g)
    fits.HDUList([prim, events, *gtis]).writeto(path, overwrite=True)
    with pytest.warns(UserWarning, match=r"using the GTI table\(s\) \['GTI3', 'GTI6'\]"):
        ev = xcube.open_events(path)
    from xcube import gti as gtimod

    assert ev.attrs["gti_kind"] == "ccd-union" and ev.attrs["exposure"] == 6000.0
    assert gtimod.exposure(gtimod.ccd_good_time(ev, [3])) == 5500.0
