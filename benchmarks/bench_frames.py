"""Benchmark: a night of 2048x2048 CCD frames through calibration, alignment and photometry (xcube.frames).

Generates N raw frames (default 500, 16-bit FITS, ~8.4 MB each) with bias and flat frames into a temporary
directory (deleted at the end), then measures, each in a fresh child process so that each peak RSS is its own:

  A  the first N/2 frames, chunks of C1 frames (default 4)
  B  all N frames,         chunks of C1 frames
  C  all N frames,         chunks of C2 frames (default 16)

Each run opens the raw frames as a lazy cube, combines the master bias and flat, calibrates lazily, finds the
base-frame stars, and computes per-frame offsets (cross-correlation + centroid refinement) and aperture
photometry (3 apertures, every star of the base frame) in one Dask pass over the frames, on the threaded
scheduler with 2 workers. It prints frames/s, the peak RSS, and the largest offset error against the injected
dithers. Memory bounded by the chunk size, not the night: A and B should need about the same memory, C more.

With --pipeline it also times ``xcube.frames.run(raw, red, steps="lbfiop")`` on all N frames (this writes the
calibrated frames: 16 MB each).

    python benchmarks/bench_frames.py [--frames 500] [--chunks 4 16] [--tmp DIR] [--pipeline]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import _bench_env  # noqa: F401  (numba's cache and bytecode go to a temporary directory)
import numpy as np

SHAPE = (2048, 2048)
N_STARS = 300


def _generate_part(args):
    from xcube.frames import simulate

    raw, n, part, parts = args
    night = simulate.night(raw, n_frames=n, shape=SHAPE, n_stars=N_STARS, n_bias=10, n_flat=6, max_dither=20.0,
                           frame_range=range(part, n, parts))
    return night.offset_x, night.offset_y


def generate(raw: Path, n: int, processes: int = 2) -> np.ndarray:
    """Write the night with ``processes`` processes; returns the injected offsets (n, 2)."""
    with Pool(processes) as pool:
        parts = pool.map(_generate_part, [(raw, n, k, processes) for k in range(processes)])
    return np.column_stack(parts[0])


def child(raw: str, n: int, chunk: int, workers: int, truth: str) -> dict:
    """One measurement (runs in its own process)."""
    import resource

    import dask

    from xcube.frames.align import frame_offsets
    from xcube.frames.calibrate import calibrate, master_bias, master_flat
    from xcube.frames.files import group_rows, scan_frames, stack_frames
    from xcube.frames.photometry import find_stars, measure

    t0 = time.perf_counter()
    table = scan_frames(raw)
    strips = {"frame": -1, "y": 128}
    bias = master_bias(stack_frames(group_rows(table, "bias"), strips))
    flat = master_flat(stack_frames(group_rows(table, "flat", band="R"), strips), bias)
    cube = calibrate(stack_frames(group_rows(table, "science").iloc[:n], {"frame": chunk}), bias, flat)
    t1 = time.perf_counter()
    base = cube.isel(frame=0).values
    stars, fwhm = find_stars(base, border=12)
    t_base = time.perf_counter()
    off = frame_offsets(cube, base, stars["x"], stars["y"], fwhm=fwhm)
    phot = measure(cube, stars["x"], stars["y"], off["offset_x"].data, off["offset_y"].data, aper=(4.0, 6.0, 9.0),
                   base_fwhm=fwhm)
    ox, oy, mag = dask.compute(off["offset_x"].data, off["offset_y"].data, phot["mag"].data, scheduler="threads",
                               num_workers=workers)
    t2 = time.perf_counter()
    inj = np.load(truth)[:n]
    err = np.hypot(ox - inj[:, 0], oy - inj[:, 1])
    return {"frames": n, "chunk": chunk, "stars": len(stars), "masters_s": t1 - t0, "base_s": t_base - t1,
            "frames_s": t2 - t_base, "fps": n / (t2 - t_base),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "max_offset_err_px": float(np.nanmax(err)), "measured": float(np.isfinite(mag).mean())}


def _spawn(raw, n, chunk, workers, truth) -> dict:
    cmd = [sys.executable, __file__, "--child", str(raw), str(n), str(chunk), str(workers), str(truth)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def pipeline(raw: Path, red: Path, chunk: int, workers: int) -> float:
    import xcube.frames as xf

    t = time.perf_counter()
    xf.run(raw, red, steps="lbfiop", chunk_frames=chunk, num_workers=workers, progress=False)
    return time.perf_counter() - t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=500)
    p.add_argument("--chunks", type=int, nargs=2, default=[4, 16], metavar=("C1", "C2"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tmp", default=None, help="where to generate the frames (default: the system temp dir)")
    p.add_argument("--pipeline", action="store_true", help="also time xcube.frames.run(steps='lbfiop')")
    args = p.parse_args(argv)
    n, (c1, c2) = args.frames, args.chunks
    need = (n + 16) * 8.5e6 + (n * 16.8e6 if args.pipeline else 0)
    tmp = Path(tempfile.mkdtemp(prefix="xcube-bench-frames-", dir=args.tmp))
    try:
        free = shutil.disk_usage(tmp).free
        if free < 1.2 * need:
            print(f"not enough space in {tmp}: {free / 1e9:.1f} GB free, {need / 1e9:.1f} GB needed; use --tmp")
            return 1
        print(f"xcube.frames benchmark: {n} frames of {SHAPE[1]}x{SHAPE[0]}, {N_STARS} stars, "
              f"{args.workers} workers; load average {os.getloadavg()}")
        t = time.perf_counter()
        truth = generate(tmp / "raw", n)
        np.save(tmp / "truth.npy", truth)
        print(f"generated {n} frames + 16 calibration frames in {time.perf_counter() - t:.0f} s "
              f"({sum(f.stat().st_size for f in (tmp / 'raw').iterdir()) / 1e9:.1f} GB)")
        runs = {"A": (n // 2, c1), "B": (n, c1), "C": (n, c2)}
        res = {}
        for label, (frames, chunk) in runs.items():
            res[label] = r = _spawn(tmp / "raw", frames, chunk, args.workers, tmp / "truth.npy")
            print(f"{label}: {r['frames']:4d} frames, chunk {r['chunk']:2d}: masters {r['masters_s']:5.1f} s, "
                  f"base-frame stars {r['base_s']:4.1f} s, "
                  f"calibration+alignment+photometry {r['frames_s']:6.1f} s = {r['fps']:5.2f} frames/s, "
                  f"peak RSS {r['peak_rss_mb']:6.0f} MB, max offset error {r['max_offset_err_px']:.3f} px, "
                  f"{r['stars']} stars, {100 * r['measured']:.1f} % of magnitudes finite")
        print(f"peak RSS B/A (night x2, same chunk): {res['B']['peak_rss_mb'] / res['A']['peak_rss_mb']:.2f}; "
              f"C/B (chunk x{c2 // c1}, same night): {res['C']['peak_rss_mb'] / res['B']['peak_rss_mb']:.2f}")
        if args.pipeline:
            secs = pipeline(tmp / "raw", tmp / "red", c1, args.workers)
            print(f"xcube.frames.run(steps='lbfiop') on {n} frames: {secs:.0f} s = {n / secs:.2f} frames/s "
                  "(writes the calibrated frames)")
        print(f"load average {os.getloadavg()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, raw, n, chunk, workers, truth = sys.argv
        print(json.dumps(child(raw, int(n), int(chunk), int(workers), truth)))
        sys.exit(0)
    sys.exit(main())
