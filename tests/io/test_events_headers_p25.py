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
