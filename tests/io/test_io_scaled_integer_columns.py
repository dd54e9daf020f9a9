"""Integer event columns scaled by TSCALn/TZEROn (legal FITS): TIME stored as
a 64-bit integer ``K`` with TSCAL = 1e-4 and TZERO = 2e8 (on which astropy's
own column reader fails), and X/Y/PI as ``I``/``J``/``K`` with TSCAL, read as
raw integer x TSCAL + TZERO on every read path - memory-mapped (sorted),
converted into the cache (unsorted) and decompressed (gzip) - checked
against the same computation done here from the raw integers."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import xcube

T0 = 1.0e8
_PATHS = ["memmap", "unsorted", "gzip"]


def _open(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xcube.open_events(path)


def _raw_file(make_event_file, kind, columns, header, n):
    """An event file of the raw integer ``columns`` whose TSCALn/TZEROn
    (``header``) are set after the columns, so the stored integers stay raw."""
    name = {"memmap": "scaled.fits", "unsorted": "scaled_unsorted.fits", "gzip": "scaled.fits.gz"}[kind]
    if kind == "unsorted":  # swap two events: not time-sorted, read into the cache through astropy
        order = np.arange(n)
        order[[10, 11]] = order[[11, 10]]
        columns = {k: v[order] for k, v in columns.items()}
    return make_event_file(n=n, columns=columns, header=header, name=name, gzip=kind == "gzip")


@pytest.mark.parametrize("kind", _PATHS)
def test_scaled_64_bit_time_reads_as_raw_times_tscal_plus_tzero(make_event_file, kind):
    n, scale, zero = 2000, 1.0e-4, 2.005e8
    raw = np.sort(np.random.default_rng(5).integers(0, 10**8, n)).astype(np.int64)  # 0 - 1e4 s in 0.1 ms steps
    path = _raw_file(make_event_file, kind, {"TIME": raw}, {"TSCAL1": scale, "TZERO1": zero,
                                                            "TSTART": zero, "TSTOP": zero + 1.0e4}, n)
    ev = _open(path)
    expected = np.sort(raw.astype(np.float64) * scale + zero)
    assert ev["time"].dtype == np.float64
    np.testing.assert_array_equal(ev["time"].values, expected)
    assert ("cache_reason" in ev.attrs) == (kind != "memmap")


@pytest.mark.parametrize("kind", _PATHS)
@pytest.mark.parametrize("code", ["I", "J", "K"])
def test_scaled_integer_sky_and_pi_columns(make_event_file, kind, code):
    n = 1000
    rng = np.random.default_rng(7)
    dtype = {"I": np.int16, "J": np.int32, "K": np.int64}[code]
    raw = {"X": rng.integers(-5000, 5000, n).astype(dtype), "Y": rng.integers(-5000, 5000, n).astype(dtype),
           "PI": rng.integers(0, 3000, n).astype(dtype)}
    # columns 2, 3, 4 of make_event_file are X, Y, PI
    scaling = {"X": (0.5, 25000.0), "Y": (0.25, 26000.5), "PI": (4.0, 0.0)}
    header = {}
    for i, name in ((2, "X"), (3, "Y"), (4, "PI")):
        header[f"TSCAL{i}"], tz = scaling[name]
        if tz:
            header[f"TZERO{i}"] = tz
    t = np.sort(T0 + rng.uniform(0, 1.0e4, n))
    path = _raw_file(make_event_file, kind, {"TIME": t, **raw}, header, n)
    ev = _open(path)
    order = np.argsort(t[[*range(10), 11, 10, *range(12, n)]], kind="stable") if kind == "unsorted" else slice(None)
    for name, (scale, zero) in scaling.items():
        values = raw[name][[*range(10), 11, 10, *range(12, n)]] if kind == "unsorted" else raw[name]
        got = ev[name.lower()]
        assert got.dtype == np.float64, (name, got.dtype)
        np.testing.assert_array_equal(got.values, (values.astype(np.float64) * scale + zero)[order], err_msg=name)


def test_scaled_64_bit_gti_columns(make_event_file, tmp_path):
    from astropy.io import fits

    path = make_event_file(n=200)
    raw = {"START": np.array([0, 6 * 10**7], np.int64), "STOP": np.array([4 * 10**7, 10**8], np.int64)}
    gti = fits.BinTableHDU.from_columns([fits.Column(k, "K", unit="s", array=v) for k, v in raw.items()], name="GTI")
    for i in (1, 2):  # set after the columns: the stored integers stay raw
        gti.header[f"TSCAL{i}"], gti.header[f"TZERO{i}"] = 1.0e-4, T0
    with fits.open(path) as h:
        h["GTI"] = gti
        h.writeto(tmp_path / "scaled_gti.fits")
    ev = _open(tmp_path / "scaled_gti.fits")
    np.testing.assert_array_equal(ev["gti_start"].values, raw["START"] * 1.0e-4 + T0)
    np.testing.assert_array_equal(ev["gti_stop"].values, raw["STOP"] * 1.0e-4 + T0)
