"""The io layer's shared helpers (review p16): one MJDREF reader that
validates, one TIMESYS/TIMEREF warning per GTI table, one reader of a
column's TUNITn."""
import re
import warnings

import numpy as np
import pytest
from astropy.io import fits

import xcube
from xcube.io.lightcurve_file import read_lightcurve
from xcube.io.ogip import read_mjdref


def _name(path):
    return re.escape(str(path.name))


@pytest.mark.parametrize("key, events_value, gti_value", [
    ("TIMESYS", "TT", "TDB"),
    ("TIMEREF", "LOCAL", "SOLARSYSTEM"),
])
def test_gti_with_its_own_mjdref_in_another_time_frame_is_warned_once(make_event_file, key, events_value,
                                                                      gti_value):
    """A GTI table with its own MJDREF (the writer copies the events') and
    another TIMESYS: one warning, in the event reader's words. The MJDREF
    offset once warned too; it got the events' header only as a dict of its
    MJDREF keys, which hid their TIMESYS. It now gets the header itself and
    leaves the warning to its callers."""
    t0 = 1.0e8
    path = make_event_file(t0=t0, header={key: events_value},
                           gti_extensions={"STDGTI01": ([t0 + 100], [t0 + 900], {key: gti_value})})
    with fits.open(path) as h:
        assert h["STDGTI01"].header["MJDREF"] == 50814.0  # its own MJDREF: the case that warned twice
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = xcube.open_events(path)
    said = [str(w.message) for w in caught if key in str(w.message)]
    assert len(said) == 1, said
    assert re.search(rf"{_name(path)}\[STDGTI01\]: {key} = '{gti_value}', but the events have {key} = "
                     rf"'{events_value}'", said[0]), said[0]
    np.testing.assert_allclose(ev["gti_start"].values, [t0 + 100], rtol=0, atol=1e-6)  # read as they are


def test_read_mjdref_names_the_file_and_keyword_of_a_value_that_is_no_number(tmp_path):
    """read_mjdref (light curves, product GTIs) took ``float(value)`` unchecked:
    'could not convert string to float', naming neither the file nor the keyword."""
    assert read_mjdref({"MJDREFI": 50814, "MJDREFF": 0.5}, "x") == 50814.5
    assert read_mjdref({"MJDREF": "50814"}, "x") == 50814.0  # a numeric string, as XMM writes some keywords
    assert np.isnan(read_mjdref({}, "x"))
    with pytest.raises(ValueError, match=r"x\.lc: header keyword MJDREFF = 'half' is not a number"):
        read_mjdref({"MJDREFI": 50814, "MJDREFF": "half"}, "x.lc")
    rate = fits.BinTableHDU.from_columns([
        fits.Column(name="TIME", format="D", unit="s", array=np.arange(5.0) * 10 + 5),
        fits.Column(name="RATE", format="D", array=np.ones(5)),
        fits.Column(name="ERROR", format="D", array=np.ones(5)),
    ], name="RATE")
    rate.header.update({"HDUCLAS1": "LIGHTCURVE", "TIMEDEL": 10.0, "MJDREF": "abc"})
    path = tmp_path / "bad_mjdref.lc"
    fits.HDUList([fits.PrimaryHDU(), rate]).writeto(path)
    with pytest.raises(ValueError, match=rf"{_name(path)}: header keyword MJDREF = 'abc' is not a number"):
        read_lightcurve(path)
