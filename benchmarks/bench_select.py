"""Throughput of ``xcube.select`` on in-memory Dask columns.

For ``--events`` MOS1-like events (default 1e7) in chunks of ``--chunk``
(default 1,048,576), persisted in memory, prints for several selections:

- ``select`` call: the eager part (parsing + the counting pass over the
  columns the selection reads), events/s;
- ``select + compute``: the call plus computing the result's ``time``, ``x``,
  ``y`` columns (the mask is recomputed lazily), events/s;
- ``numpy``: the same mask and fancy indexing on plain numpy arrays,
  single-threaded, events/s.

Run: ``python benchmarks/bench_select.py [--events N] [--chunk N] [--repeat K]``.
"""
from __future__ import annotations

import argparse
import time

import _bench_env  # noqa: F401  (numba's cache and bytecode go to a temporary directory)
import dask
import dask.array as da
import numpy as np

import xcube
from xcube.io.events_fits import events_dataset
from xcube.missions import get_profile

WCS = {"CTYPE1": "RA---TAN", "CRVAL1": 263.657916666667, "CRPIX1": 25921.0, "CDELT1": -1.38888888888889e-05,
       "CTYPE2": "DEC--TAN", "CRVAL2": -32.556, "CRPIX2": 25921.0, "CDELT2": 1.38888888888889e-05,
       "RADESYS": "FK5", "EQUINOX": 2000.0}


def make(n, chunk, seed=0):
    rng = np.random.default_rng(seed)
    prof = get_profile("xmm-mos1")
    pi = rng.integers(100, 15000, n).astype(np.int16)
    cols = {
        "time": np.sort(rng.uniform(1e8, 1e8 + 1e5, n)),
        "x": rng.integers(14000, 38000, n).astype(np.int32),
        "y": rng.integers(14000, 38000, n).astype(np.int32),
        "pi": pi,
        "energy": prof.energy(pi),
        "pattern": rng.integers(0, 32, n).astype(np.uint8),
        "flag": rng.choice(np.array([0, 0, 0, 1, 0x100, 0x2000], np.int32), n),
    }
    ev = events_dataset({k: da.from_array(v, chunks=chunk) for k, v in cols.items()}, ([1e8], [1e8 + 1e5]), {},
                        {"profile": "xmm-mos1", "mission": "XMM-Newton", "instrument": "EMOS1", **WCS})
    return ev.persist(), cols


def numpy_select(cols, case):
    e, pat, flag, x, y = cols["energy"], cols["pattern"], cols["flag"], cols["x"], cols["y"]
    m = np.ones(e.size, bool)
    if "energy_band" in case:
        lo, hi = case["energy_band"]
        m &= (e >= np.float32(lo)) & (e < np.float32(hi))
    if "expr" in case:
        m &= (pat <= 12) & ((flag & 0x766BA000) == 0)
    if "region" in case:
        m &= (x - 26000.5) ** 2 + (y - 26000.5) ** 2 <= 4000.5**2
    return cols["time"][m], x[m], y[m]


def best(f, repeat):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t)
    return min(ts), out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=float, default=1e7)
    ap.add_argument("--chunk", type=int, default=1_048_576)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = int(args.events)
    ev, cols = make(n, args.chunk)
    cases = {
        "energy_band": dict(energy_band=(0.5, 2.0)),
        "expr": dict(expr="PATTERN <= 12 && #XMMEA_EM"),
        "region": dict(region="physical;circle(26000.5,26000.5,4000.5)"),
        "all three": dict(energy_band=(0.5, 2.0), expr="PATTERN <= 12 && #XMMEA_EM",
                          region="physical;circle(26000.5,26000.5,4000.5)"),
    }
    print(f"xcube.select: {n:.3g} events in memory, chunks of {args.chunk}, {dask.system.CPU_COUNT} cores, "
          f"best of {args.repeat}")
    print(f"{'selection':<12} {'kept':>10} {'select call':>16} {'select+compute':>16} {'numpy':>16}")
    for name, kw in cases.items():
        t_call, out = best(lambda: xcube.select(ev, **kw), args.repeat)
        t_full, res = best(lambda: dask.compute(*(xcube.select(ev, **kw)[c].data for c in ("time", "x", "y"))),
                           args.repeat)
        t_np, ref = best(lambda: numpy_select(cols, kw), 1)
        assert all(np.array_equal(a, b) for a, b in zip(res, ref)), name
        print(f"{name:<12} {out.sizes['event']:>10} {n / t_call:>12.3g} ev/s {n / t_full:>12.3g} ev/s "
              f"{n / t_np:>12.3g} ev/s")


if __name__ == "__main__":
    main()
