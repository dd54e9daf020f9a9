"""Speed of the Bayes-factor masks and expected false alarms.

Prints voxel rates for a (time, y, x) = (2000, 128, 128) cube of Poisson
counts around a smooth expectation (3.3e7 voxels):

* ``masks`` on numpy arrays (table lookup, numba; target >= 2e8 voxels/s),
* ``masks`` on dask arrays (chunks of 250 frames, threaded scheduler),
* ``expected_false_alarms`` (numpy and dask),
* the direct test ``log10_bayes_peak(n, mu) > threshold`` on a slice, for scale,
* the one-off threshold-table build.

Run: ``python benchmarks/bench_bayes.py [n_frames]``. Uses all cores
(the machine's other load affects the figures; best of 3 is reported).
"""
from __future__ import annotations

import os
import sys
import time

import _bench_env  # noqa: F401  (numba's cache and bytecode go to a temporary directory)
import dask
import dask.array as da
import numpy as np


def best(f, repeat=3):
    """(best wall time [s], result); also records the CPU time of that run."""
    global _cpu
    times = []
    out = None
    for _ in range(repeat):
        c = time.process_time()
        t = time.perf_counter()
        out = f()
        times.append((time.perf_counter() - t, time.process_time() - c))
    wall, _cpu = min(times)
    return wall, out


_cpu = 0.0


def rate(label, dt, size, extra=""):
    print(f"{label:19s}: {dt:7.3f} s  {size / dt / 1e6:8.1f} M voxels/s wall  "
          f"({size / max(_cpu, 1e-9) / 1e6:6.1f} M/s per CPU-second){extra}")


def main(n_frames: int = 2000, ny: int = 128, nx: int = 128):
    from xcube.transients import bayes

    t = time.perf_counter()
    table = bayes.threshold_table(3.0)
    t_table = time.perf_counter() - t

    rng = np.random.default_rng(0)
    image = rng.gamma(2.0, 0.25, (ny, nx))
    lc = rng.uniform(0.2, 3.0, (n_frames, 1, 1))
    mu = image[None] * lc  # expected counts, float64
    n = rng.poisson(mu).astype(np.int32)
    n[n_frames // 2, ny // 2, nx // 2] += 40  # one flare voxel
    size = n.size
    print(f"cube {n.shape} = {size / 1e6:.1f} M voxels, counts int32, expected float64; "
          f"cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}; "
          f"threshold table n < {table.size}: built in {t_table:.2f} s")

    bayes.masks(n[:2], mu[:2])  # compile / warm up
    dt, (peak, ecl) = best(lambda: bayes.masks(n, mu))
    rate("masks numpy", dt, size, f"  peaks {int(peak.sum())}, eclipses {int(ecl.sum())}")

    nf = n.astype(np.float32)
    mf = mu.astype(np.float32)
    bayes.masks(nf[:2], mf[:2])
    dt, _ = best(lambda: bayes.masks(nf, mf))
    rate("masks numpy f32", dt, size)

    sparse_mu = mu * 0.05  # 5 s frames: ~95 % of the voxels are empty
    sparse_n = rng.poisson(sparse_mu).astype(np.int32)
    bayes.masks(sparse_n[:2], sparse_mu[:2])
    dt, _ = best(lambda: bayes.masks(sparse_n, sparse_mu))
    rate("masks numpy sparse", dt, size, f"  ({np.mean(sparse_n == 0):.0%} empty voxels)")

    dn = da.from_array(n, chunks=(250, ny, nx))
    dm = da.from_array(mu, chunks=(250, ny, nx))
    p, e = bayes.masks(dn, dm)
    dt, (pd, ed) = best(lambda: dask.compute(p, e))
    assert np.array_equal(pd, peak) and np.array_equal(ed, ecl)
    rate("masks dask", dt, size, "  chunks of 250 frames")
    dt, _ = best(lambda: dask.compute(p.sum(), e.sum()))
    rate("masks dask + sum", dt, size, "  no full-size result")

    bayes.expected_false_alarms(mu[:2])
    dt, fa = best(lambda: bayes.expected_false_alarms(mu))
    rate("false alarms numpy", dt, size, f"  expected peaks {fa.peak:.3f}, eclipses {fa.eclipse:.3f}")
    f2 = bayes.expected_false_alarms(dm)
    dt, _ = best(lambda: dask.compute(f2.peak, f2.eclipse))
    rate("false alarms dask", dt, size)

    k = max(1, n_frames // 50)
    thr = bayes.threshold(3.0)
    dt, direct = best(lambda: bayes.log10_bayes_peak(n[:k], mu[:k]) > thr.peak, repeat=1)
    assert np.array_equal(direct, peak[:k])
    rate("direct test (peak)", dt, n[:k].size, f"  log10_bayes_peak on {k} frames, for scale")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
