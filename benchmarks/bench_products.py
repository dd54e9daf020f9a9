"""Light-curve throughput: ``xcube.lightcurve`` (energy band + circular region
+ 10 s bins, through select and bin_events, threaded scheduler) against a
plain numpy selection followed by ``stingray.Lightcurve.make_lightcurve`` on
the same events held in memory. Prints events/s, the ratio, and checks the
counts agree. Usage: ``python benchmarks/bench_products.py [n_events]``."""
from __future__ import annotations

import sys
import time

import _bench_env  # noqa: F401  (numba's cache and bytecode go to a temporary directory)
import dask
import dask.array as da
import numpy as np


def make_events(n: int, seed: int = 0):
    from xcube.io.events_fits import events_dataset
    from xcube.missions import get_profile

    rng = np.random.default_rng(seed)
    t0, duration = 1.0e8, 1.0e5
    prof = get_profile("xmm-mos1")
    pi = rng.integers(200, 12000, n).astype(np.int16)
    cols = {
        "time": np.sort(t0 + rng.uniform(0, duration, n)),
        "x": rng.integers(20000, 32000, n).astype(np.int32),
        "y": rng.integers(20000, 32000, n).astype(np.int32),
        "pi": pi,
        "energy": prof.energy(pi),
    }
    chunk = 4_194_304
    cols = {k: da.from_array(v, chunks=chunk).persist() for k, v in cols.items()}
    attrs = {"mission": prof.mission, "instrument": prof.instrument, "profile": prof.name, "source": "memory",
             "mjdref": 50814.0, "CTYPE1": "RA---TAN", "CRVAL1": 263.66, "CRPIX1": 25921.0, "CDELT1": -1.3889e-5,
             "CTYPE2": "DEC--TAN", "CRVAL2": -32.556, "CRPIX2": 25921.0, "CDELT2": 1.3889e-5}
    return events_dataset(cols, ([t0], [t0 + duration]), {}, attrs)


def best_of(fn, repeat=3):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main(n: int = 20_000_000) -> None:
    from stingray import Lightcurve

    import xcube

    ev = make_events(n)
    region = "physical;circle(26000,26000,3000)"
    t0 = float(ev.gti_start.values[0])
    tseg = float(ev.gti_stop.values[-1]) - t0
    with dask.config.set(scheduler="threads"):
        xcube.lightcurve(
            ev.isel(event=slice(0, 1000)), 10.0, energy_band=(0.5, 10.0), region=region
        ).compute()  # JIT warm-up
        t_x, lc = best_of(lambda: xcube.lightcurve(ev, 10.0, energy_band=(0.5, 10.0), region=region).compute())
    t, x, y, e = (ev[c].data.compute() for c in ("time", "x", "y", "energy"))

    def reference():
        keep = (e >= np.float32(0.5)) & (e < np.float32(10.0)) & ((x - 26000.0) ** 2 + (y - 26000.0) ** 2 <= 3000.0**2)
        return Lightcurve.make_lightcurve(t[keep], 10.0, tstart=t0, tseg=tseg)

    t_s, ref = best_of(reference)
    same = np.array_equal(lc.counts.values[: ref.n], ref.counts)
    print(f"events: {n:,}  selected: {int(lc.counts.sum()):,}  bins: {lc.sizes['time']}")
    print(f"xcube.lightcurve (lazy select + bin_events, threads): {t_x:.3f} s  {n / t_x:.3g} events/s")
    print(f"numpy mask + stingray make_lightcurve:                 {t_s:.3f} s  {n / t_s:.3g} events/s")
    print(f"ratio xcube / reference time: {t_x / t_s:.2f}   counts identical: {same}")


if __name__ == "__main__":
    main(int(float(sys.argv[1])) if len(sys.argv) > 1 else 20_000_000)
