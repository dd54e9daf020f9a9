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

import dask
import dask.array as da
import numpy as np


def best(f, repeat=3):
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


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
          f"cores: {os.cpu_count()}; threshold table n < {table.size}: built in {t_table:.2f} s")

    bayes.masks(n[:2], mu[:2])  # compile / warm up
    dt, (peak, ecl) = best(lambda: bayes.masks(n, mu))
    print(f"masks numpy        : {dt:7.3f} s  {size / dt / 1e6:8.1f} M voxels/s  "
          f"(peaks {int(peak.sum())}, eclipses {int(ecl.sum())})")

    nf = n.astype(np.float32)
    mf = mu.astype(np.float32)
    bayes.masks(nf[:2], mf[:2])
    dt, _ = best(lambda: bayes.masks(nf, mf))
    print(f"masks numpy f32    : {dt:7.3f} s  {size / dt / 1e6:8.1f} M voxels/s")

    dn = da.from_array(n, chunks=(250, ny, nx))
    dm = da.from_array(mu, chunks=(250, ny, nx))
    p, e = bayes.masks(dn, dm)
    dt, (pd, ed) = best(lambda: dask.compute(p, e))
    assert np.array_equal(pd, peak) and np.array_equal(ed, ecl)
    print(f"masks dask         : {dt:7.3f} s  {size / dt / 1e6:8.1f} M voxels/s  (chunks of 250 frames)")
    dt, _ = best(lambda: dask.compute(p.sum(), e.sum()))
    print(f"masks dask (+sum)  : {dt:7.3f} s  {size / dt / 1e6:8.1f} M voxels/s  (no full-size result)")

    bayes.expected_false_alarms(mu[:2])
    dt, fa = best(lambda: bayes.expected_false_alarms(mu))
    print(f"false alarms numpy : {dt:7.3f} s  {size / dt / 1e6:8.1f} M voxels/s  "
          f"(expected peaks {fa.peak:.3f}, eclipses {fa.eclipse:.3f})")
    f2 = bayes.expected_false_alarms(dm)
    dt, _ = best(lambda: dask.compute(f2.peak, f2.eclipse))
    print(f"false alarms dask  : {dt:7.3f} s  {size / dt / 1e6:8.1f} M voxels/s")

    k = max(1, n_frames // 50)
    thr = bayes.threshold(3.0)
    dt, direct = best(lambda: bayes.log10_bayes_peak(n[:k], mu[:k]) > thr.peak, repeat=1)
    assert np.array_equal(direct, peak[:k])
    print(f"direct test (peak) : {dt:7.3f} s  {n[:k].size / dt / 1e6:8.1f} M voxels/s  "
          f"(log10_bayes_peak on {k} frames, for scale)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
