"""Two header-only warnings at open: per-CCD GTI tables present for some
CCDs and not for others (an XMM flare GTI ``GTI0cc0n`` lost when a file is
cut exactly at an HDU boundary: the CCD keeps a longer good time), and a
float32 TIME column, whose resolution at mission times of 1e8 s is 8 s."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits
from conftest import real_file

import xcube

T0 = 1.0e8


def _flare_tables(ccds):
    return {f"GTI00{c - 1}06": ([T0], [T0 + 5000.0], {"CCDID": c}) for c in ccds}


def _std_tables(ccds):
    return {f"STDGTI{c:02d}": ([T0], [T0 + 1.0e4], {"CCDID": c}) for c in ccds}


def test_a_flare_gti_missing_for_one_ccd_is_warned(make_event_file):
    ccd = np.repeat(np.arange(1, 4), 100).astype(np.uint8)
    path = make_event_file(n=300, columns={"CCDNR": ccd}, seed=3,
                           gti_extensions={**_std_tables([1, 2, 3]), **_flare_tables([1, 2])})
    with pytest.warns(UserWarning, match=r"GTI tables are uneven: CCD 3 has 1, CCDs 1, 2 have 2"):
        ev = xcube.open_events(path)
    assert ev.sizes["event"] == 300


def test_even_gti_tables_give_no_warning(make_event_file):
    path = make_event_file(n=300, gti_extensions={**_std_tables(range(1, 8)), **_flare_tables(range(1, 8))})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xcube.open_events(path)


def test_float32_time_is_warned_naming_the_file(make_event_file, tmp_path):
    path = make_event_file(n=200, name="t32.fits")
    with fits.open(path) as h:
        cols = [fits.Column(c.name, "E", array=h[1].data[c.name].astype(np.float32)) if c.name == "TIME" else c
                for c in h[1].columns]
        new = fits.BinTableHDU.from_columns(cols, header=h[1].header, name="EVENTS")
        fits.HDUList([h[0].copy(), new, *[x.copy() for x in h[2:]]]).writeto(tmp_path / "t32e.fits")
    with pytest.warns(UserWarning, match=r"t32e\.fits.*TIME.*float32.*8 s"):
        xcube.open_events(tmp_path / "t32e.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xcube.open_events(path)  # float64 TIME: no warning


@pytest.mark.parametrize("name", ["xmm/P0001730201M1S002MIEVLI.FTZ", "xmm/P0001730201M2S003MIEVLI.FTZ",
                                  "xmm/exod_0001730201_M1_clean.fits", "xmm/xga_0201901401_mos1_exp1_clean_evts.fits",
                                  "xmm/xga_0201901401_mos2_exp1_clean_evts.fits",
                                  "nustar/barycenter_dummy_evt_nustar_B1937.evt"])
def test_real_files_give_neither_warning(name, tmp_path):
    path = real_file(*name.split("/"))
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        xcube.open_events(path, cache=tmp_path)
    assert not [w for w in got if "GTI tables" in str(w.message) or "float32" in str(w.message)]
