"""Shared fixtures: real-data location, an isolated event cache, and a factory
for small synthetic OGIP event files."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# Nothing the tests run writes into the checkout: numba's compiled kernels, Python's bytecode and Hypothesis's
# example database go to a scratch directory of this user (kept between runs, so the kernels stay compiled).
_SCRATCH = Path(tempfile.gettempdir()) / f"xcube-tests-{os.getuid()}"
os.environ.setdefault("NUMBA_CACHE_DIR", str(_SCRATCH / "numba"))  # before numba is imported
sys.pycache_prefix = sys.pycache_prefix or str(_SCRATCH / "pycache")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from fake_tools.fixture import fake_tools  # noqa: E402,F401  (the fake mission tools, a fixture for every test module)
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402

set_hypothesis_home_dir(_SCRATCH / "hypothesis")

REAL = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real").resolve()

XMM_WCS = {
    "X": {"ctype": "RA---TAN", "crval": 263.657916666667, "crpix": 25921, "cdelt": -1.38888888888889e-05},
    "Y": {"ctype": "DEC--TAN", "crval": -32.556, "crpix": 25921, "cdelt": 1.38888888888889e-05},
}


def sky_events(n: int, seed: int, lo: int, hi: int, chunks: int, rotated: bool = False, **attrs):
    """A lazy XMM-MOS1-like EventList of ``n`` events (sorted time over 1000 s
    from 1e8 s, int32 x/y uniform in [lo, hi)) with the sky WCS of
    :data:`XMM_WCS` (rotated by 0.3 rad with ``rotated``) and extra ``attrs``."""
    import dask.array as da

    from xcube.io.events_fits import events_dataset

    rng = np.random.default_rng(seed)
    a = {"mission": "XMM-Newton", "instrument": "EMOS1", "profile": "xmm-mos1", "source": "generated",
         "x_min": 1.0, "x_max": 51840.0, "y_min": 1.0, "y_max": 51840.0, **attrs}
    for i, k in ((1, "X"), (2, "Y")):
        w = XMM_WCS[k]
        a.update({f"CTYPE{i}": w["ctype"], f"CRVAL{i}": w["crval"], f"CRPIX{i}": float(w["crpix"]),
                  f"CDELT{i}": w["cdelt"], f"CUNIT{i}": "deg"})
    if rotated:
        c, s = np.cos(0.3), np.sin(0.3)
        a.update({"PC1_1": c, "PC1_2": -s, "PC2_1": s, "PC2_2": c})
    t0 = 1.0e8
    cols = {"time": np.sort(t0 + rng.uniform(0, 1000, n)),
            "x": rng.integers(lo, hi, n).astype(np.int32), "y": rng.integers(lo, hi, n).astype(np.int32)}
    return events_dataset({k: da.from_array(v, chunks=chunks) for k, v in cols.items()}, ([t0], [t0 + 1000.0]), {}, a)


def write_acis_events(path, cols: list, header: dict, chip_gtis: dict, tlim: bool = False) -> Path:
    """A Chandra ACIS level-2 event file at ``path``: an EVENTS table of the
    astropy ``cols`` with ``header`` (TELESCOP, INSTRUME, times, ONTIMEn/
    LIVTIMEn...), the sky WCS of the x/y columns 3 and 4 (TLMIN/TLMAX 0.5-8192.5
    with ``tlim``), and one GTI table per chip: ``{chip: (starts, stops)}``."""
    from astropy.io import fits

    ev = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    for k, v in header.items():
        ev.header[k] = v
    for i, k in ((3, 0), (4, 1)):
        ev.header[f"TCTYP{i}"] = ("RA---TAN", "DEC--TAN")[k]
        ev.header[f"TCRVL{i}"] = (83.633, 22.0145)[k]
        ev.header[f"TCRPX{i}"] = 4096.5
        ev.header[f"TCDLT{i}"] = (-0.492 / 3600, 0.492 / 3600)[k]
        if tlim:
            ev.header[f"TLMIN{i}"], ev.header[f"TLMAX{i}"] = 0.5, 8192.5
    gtis = []
    for chip, (s, e) in chip_gtis.items():
        g = fits.BinTableHDU.from_columns([fits.Column("START", "D", array=s), fits.Column("STOP", "D", array=e)],
                                          name="GTI")
        g.header["CCD_ID"] = chip
        gtis.append(g)
    fits.HDUList([fits.PrimaryHDU(), ev, *gtis]).writeto(path)
    return path


def real_file(*parts) -> Path:
    """Path of a file under ../shared/data/real, or skip the test saying why."""
    p = REAL.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p} is absent (it lives in ../shared/data/real beside the checkout)")
    return p


def concurrently(fn, n: int) -> tuple[list, list]:
    """Run ``fn()`` in ``n`` threads at once; ``(results, exceptions)``."""
    import threading

    results, errors = [], []

    def one():
        try:
            results.append(fn())
        except Exception as exc:  # noqa: BLE001 - returned to the test
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return results, errors


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XCUBE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "xcube-cache"))


@pytest.fixture
def make_event_file(tmp_path):
    """Factory: ``make_event_file(n=1000, t0=1e8, duration=1e4, **kw) -> Path`` of an
    XMM-MOS1-like event file with uniform events (sorted unless ``sorted=False``)."""
    from xcube.io.write_events import write_events_fits

    counter = iter(range(10_000))

    def make(n=1000, t0=1.0e8, duration=1.0e4, seed=0, sorted=True, header=None, columns=None,
             gti=None, name=None, **kw):
        rng = np.random.default_rng(seed)
        t = t0 + rng.uniform(0, duration, n)
        if sorted:
            t.sort()
        cols = {
            "TIME": t,
            "X": rng.integers(20000, 32000, n).astype(np.int32),
            "Y": rng.integers(20000, 32000, n).astype(np.int32),
            "PI": rng.integers(200, 12000, n).astype(np.int16),
            "PATTERN": rng.integers(0, 13, n).astype(np.uint8),
            "FLAG": np.zeros(n, np.int32),
            "CCDNR": rng.integers(1, 8, n).astype(np.uint8),
        }
        cols.update(columns or {})
        hdr = {"TELESCOP": "XMM", "INSTRUME": "EMOS1", "OBS_ID": "0123456789", "OBJECT": "TEST",
               "MJDREF": 50814.0, "TIMESYS": "TT", "TSTART": t0, "TSTOP": t0 + duration, "TIMEZERO": 0.0,
               "DATAMODE": "IMAGING", "SUBMODE": "PrimeFullWindow", "RA_PNT": 263.657916666667,
               "DEC_PNT": -32.556, "PA_PNT": 93.66}
        hdr.update(header or {})
        path = tmp_path / (name or f"events_{next(counter)}.fits")
        return write_events_fits(path, cols, gti=gti if gti is not None else ([t0], [t0 + duration]),
                                 header=hdr, wcs=XMM_WCS, **kw)

    return make
