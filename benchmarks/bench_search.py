"""Speed and memory of ``xcube.search_transients`` (issue #4 targets).

Usage::

    python benchmarks/bench_search.py [--data DIR] [--repeat 3] [--skip-1e8] [--shifts] [--hygiene-cost]
    EXOD2_PATH=/path/to/EXOD2 python benchmarks/bench_search.py --exod2   # EXOD2 measured too

Cases (simulated XMM-pn observations of 100 ks, 20" cells, 0.2-12 keV, 3 sigma):

* 1e7 events, 50 s frames, OGIP FITS file;
* 1e6 events, 5 s frames (20,000 frames), OGIP FITS file;
* 1e6, 1e7 and 1e8 events, 5 s frames, Zarr stores (time against the number
  of events; the 1e8 store is 1.1 GB, generated once in about 30 s).

The event files are written once into ``--data`` (default
``$TMPDIR/xcube-exod2``, shared with ``exod2_compare.py``); generation is not
timed. Each case runs in a fresh process: a warm-up search on a small file of
the same format (numba caches, threshold tables), then ``--repeat`` timed
searches. Printed per case: the best and median wall time of the whole
search, the step times of the best run (``res.summary["timings"]``), the
peak RSS of the process (VmHWM, and psutil sampling from outside), and the
mask step's rate in voxels/s (cube voxels / the ``masks`` step), plus the
rate of the dense ``xcube.bayes.masks`` kernel on in-memory (n, mu) chunks.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _bench_env  # noqa: F401  (numba's cache and bytecode go to a temporary directory)
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import exod2_compare as ex  # noqa: E402  (same directory: the event files, EXOD2 runner)

# EXOD2 on this machine, from the issue (binning + frame masks + template + one mask)
EXOD2_REFERENCE = {"1e7_50": 8.0, "1e6_5": 60.0}


def _zarr_events(data: Path, n: float) -> Path:
    store = data / f"pn_n{n:g}_s1_v5.zarr"  # v5: RAWX/RAWY (hygiene), chunks of EVENT_CHUNK events, lz4
    if not store.exists():
        code = (
            "import sys, xcube; from xcube.io.cache import to_zarr; from xcube.io.chunking import EVENT_CHUNK\n"
            "ev, _ = xcube.simulate.event_list('xmm-pn', duration=100_000.0, seed=1, n_events=float(sys.argv[1]),\n"
            "    flares=[dict(t_peak=30_000.0, amplitude=0.5, width=100.0), dict(t_peak=70_000.0, amplitude=0.2,"
            " width=20.0)],\n"
            "    eclipses=[dict(t_start=55_000.0, duration=3000.0, depth=1.0, rate=0.6)],\n"
            "    soft_protons=[dict(t_start=40_000.0, duration=6000.0, peak_rate=20.0)], sources=10)\n"
            "to_zarr(ev.chunk({'event': EVENT_CHUNK}), sys.argv[2])\n"
        )
        subprocess.run([sys.executable, "-c", code, repr(n), str(store)], check=True)
    return store


def _small(data: Path, fmt: str) -> Path:
    """A small file of the format, for the warm-up."""
    path = data / ("warm_v3.zarr" if fmt == "zarr" else "warm_v3.fits")
    if not path.exists():
        code = (
            "import sys, xcube; from xcube.io.cache import to_zarr\n"
            "ev, _ = xcube.simulate.event_list('xmm-pn', duration=3000.0, seed=2)\n"
            "to_zarr(ev, sys.argv[1]) if sys.argv[1].endswith('.zarr') else xcube.simulate.write(sys.argv[1], ev)\n"
        )
        subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    return path


def _open(path):
    import xcube
    from xcube.io.cache import open_zarr_events

    return open_zarr_events(path) if str(path).endswith(".zarr") else xcube.open_events(path)


def case_worker(path, time_bin, repeat, warm, out, shifts=False, hygiene_cost=False):
    """One case in this fresh process; writes a JSON record to ``out``. With
    ``shifts``, also times ``shifts=True`` (same process, after the plain
    runs) and records its best and median wall time. With ``hygiene_cost``
    (cases below 5e7 events), times the search with the detector hygiene on
    and off, alternated, each first in turn (at least 11 of each; medians,
    and the median of the pairs' ratios)."""
    import psutil

    import xcube

    xcube.search_transients(_open(warm), time_bin=100.0)  # warm-up: numba caches, tables
    t = time.perf_counter()
    ev = _open(path)
    t_open = time.perf_counter() - t
    rss0 = psutil.Process().memory_info().rss / 2**20
    walls, best = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        res = xcube.search_transients(ev, time_bin=float(time_bin))
        w = time.perf_counter() - t
        walls.append(w)
        if best is None or w < best[0]:
            best = (w, dict(res.summary["timings"]))
        peak = ex.peak_rss_mb()
        if _ < repeat - 1:
            del res
    shape = res.summary["shape"]
    voxels = int(np.prod(shape))
    rec = {"wall_best": best[0], "wall_median": statistics.median(walls), "walls": walls, "timings": best[1],
           "open": t_open, "rss_before_mb": rss0, "peak_rss_mb": peak, "shape": shape, "voxels": voxels,
           "n_events": res.summary["n_events"], "frame_types": res.summary["frame_types"],
           "n_detections": res.summary["n_detections"], "mask_rate": voxels / best[1]["masks"],
           "load": os.getloadavg()[0]}
    rec["hygiene"] = res.summary.get("hygiene", {})
    Path(out).write_text(json.dumps(rec))  # the parent stops sampling RSS here
    if shifts:
        sw = []
        for _ in range(repeat):
            t = time.perf_counter()
            sres = xcube.search_transients(ev, time_bin=float(time_bin), shifts=True)
            sw.append(time.perf_counter() - t)
        rec.update(shift_best=min(sw), shift_median=statistics.median(sw),
                   shift_detections=sres.summary["n_detections"])
        del sres
    if hygiene_cost and res.summary["n_events"] < 5e7:
        on, off = [], []
        for k in range(max(repeat, 11)):
            for flag, acc in (((True, on), (False, off)) if k % 2 else ((False, off), (True, on))):
                t = time.perf_counter()
                xcube.search_transients(ev, time_bin=float(time_bin), hygiene=flag)
                acc.append(time.perf_counter() - t)
        rec.update(hygiene_on=statistics.median(on), hygiene_off=statistics.median(off),
                   hygiene_ratio=statistics.median(a / b for a, b in zip(on, off)))
    # the dense mask kernel on in-memory chunks of this cube (about 2e7 voxels)
    nf = max(1, min(shape[0], int(2e7 // (shape[1] * shape[2]))))
    n = res.cube.data[:nf].compute()
    mu = res.expected.data[:nf].compute()
    xcube.bayes.masks(n, mu, 3.0)
    t = time.perf_counter()
    reps = 3
    for _ in range(reps):
        xcube.bayes.masks(n, mu, 3.0)
    rec["kernel_rate"] = reps * n.size / (time.perf_counter() - t)
    Path(str(out) + ".kernel").write_text(json.dumps(rec))


GRID = dict(time_bin=[5.0, 50.0, 200.0], energy_band=[(0.2, 2.0), (2.0, 12.0), (0.2, 12.0)])


def grid_worker(path, repeat, warm):
    """The 9-run grid against one 50 s run on the same file, alternated in
    this fresh process (medians); prints a JSON record."""
    import xcube

    xcube.search_transients(_open(warm), **GRID)  # warm-up
    ev = _open(path)
    single, grid = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        xcube.search_transients(ev, time_bin=50.0)
        single.append(time.perf_counter() - t)
        t = time.perf_counter()
        res = xcube.search_transients(ev, **GRID)
        grid.append(time.perf_counter() - t)
    print(json.dumps({"single": statistics.median(single), "grid": statistics.median(grid), "runs": len(res),
                      "pass": res[0].summary["timings"]["cube"], "load": os.getloadavg()[0]}))


def run_case(path, time_bin, repeat, warm, shifts=False, hygiene_cost=False):
    """Run one case in a fresh process; its RSS is sampled with psutil every
    10 ms until the search record appears (the kernel timing after it is
    left out)."""
    import psutil

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "rec.json"
        p = subprocess.Popen([sys.executable, __file__, "--case-worker", str(path), str(time_bin), str(repeat),
                              str(warm), str(out)] + (["--shifts"] if shifts else [])
                             + (["--hygiene-cost"] if hygiene_cost else []))
        proc, sampled = psutil.Process(p.pid), 0
        while p.poll() is None:
            if not out.exists():
                try:
                    sampled = max(sampled, proc.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(0.01)
        if p.returncode:
            raise RuntimeError(f"case {path} failed (exit code {p.returncode})")
        rec = json.loads(Path(str(out) + ".kernel").read_text())
    rec["peak_rss_sampled_mb"] = sampled / 2**20
    return rec


def main(argv=None):
    ap = argparse.ArgumentParser(description="speed and memory of xcube.search_transients")
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "xcube-exod2"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-1e8", action="store_true", help="leave out the 1e8-event case")
    ap.add_argument("--exod2", action="store_true", help="measure EXOD2 too (needs EXOD2_PATH)")
    ap.add_argument("--hygiene-cost", action="store_true",
                    help="also time the search with the detector hygiene off, alternated with it on, in each case "
                         "below 5e7 events, and print its cost (target <= 10 %%)")
    ap.add_argument("--shifts", action="store_true",
                    help="also time shifts=True (four grids) in each case and print its time ratio (target <= 4x)")
    args = ap.parse_args(argv)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    print(f"xcube search benchmark; 2 threads (dask default); data in {data}; load average at start "
          f"{os.getloadavg()[0]:.2f}; repeat {args.repeat}")

    cases = []
    for n, tb in ((1e7, 50.0), (1e6, 5.0)):
        xfile, efile = ex.make_events(data, n_events=n, duration=100_000.0, seed=1, partial_frames=False)
        cases.append((f"{n:.0e} ev, {tb:g} s, FITS", xfile, tb, _small(data, "fits"), efile))
    series = [1e6, 1e7] + ([] if args.skip_1e8 else [1e8])
    for n in series:
        cases.append((f"{n:.0e} ev, 5 s, Zarr", _zarr_events(data, n), 5.0, _small(data, "zarr"), None))

    hdr = (f"{'case':>20s} {'events':>11s} {'cube (t,y,x)':>16s} {'types':>6s} {'open':>5s} {'best':>6s} {'median':>6s}"
           f" {'cube':>5s} {'frames':>6s} {'bkg':>5s} {'masks':>5s} {'FA':>5s} {'detect':>6s} {'RSS0':>5s}"
           f" {'peak RSS':>8s}"
           f" {'mask step':>9s} {'kernel':>9s} {'load':>4s}")
    print(hdr)
    print(f"{'':>20s} {'':>11s} {'':>16s} {'':>6s} {'[s]':>5s} {'[s]':>6s} {'[s]':>6s} {'[s]':>5s} {'[s]':>6s}"
          f" {'[s]':>5s} {'[s]':>5s} {'[s]':>5s} {'[s]':>6s} {'[MB]':>5s} {'[MB]':>8s} {'[vox/s]':>9s} {'[vox/s]':>9s}")
    recs = {}
    for label, path, tb, warm, _ in cases:
        r = run_case(path, tb, args.repeat, warm, args.shifts, args.hygiene_cost)
        recs[label] = r
        t = r["timings"]
        peak = max(r["peak_rss_mb"], r["peak_rss_sampled_mb"])
        print(f"{label:>20s} {r['n_events']:>11,d} {str(tuple(r['shape'])):>16s} {r['frame_types']:>6d}"
              f" {r['open']:5.2f} {r['wall_best']:6.2f} {r['wall_median']:6.2f} {t['cube']:5.2f} {t['frames']:6.3f}"
              f" {t['background']:5.2f} {t['masks']:5.2f} {t['false_alarms']:5.2f} {t['detect']:6.2f}"
              f" {r['rss_before_mb']:5.0f}"
              f" {peak:8.0f} {r['mask_rate']:9.2e} {r['kernel_rate']:9.2e} {r['load']:4.1f}", flush=True)
    print("(events: band events in the cube; types: distinct mu images (frames sharing subset, background counts and"
          " exposure); FA: expected false alarms; detect: regions, light curves, table; mask step: every cube voxel"
          " decided, without a dense pass; kernel: xcube.bayes.masks on dense in-memory chunks)")
    for label, r in recs.items():
        h = {k: v for k, v in r.get("hygiene", {}).items() if v}
        print(f"  {label}: detector hygiene removed {h or 'nothing'}")
        if "hygiene_on" in r:
            cost = r["hygiene_on"] / r["hygiene_off"] - 1
            print(f"  {label}: hygiene on {r['hygiene_on']:.3f} s, off {r['hygiene_off']:.3f} s (medians of "
                  f"{max(args.repeat, 11)}, alternated, each first in turn) -> {100 * cost:+.1f} % "
                  f"({'MET' if cost <= 0.10 else 'NOT MET'}: <= +10 %); median of the pairs' ratios "
                  f"{100 * (r['hygiene_ratio'] - 1):+.1f} %")
        if "shift_best" in r:
            print(f"  {label}: shifts=True best {r['shift_best']:.2f} s, median {r['shift_median']:.2f} s: "
                  f"{r['shift_best'] / r['wall_best']:.2f}x the plain search (best), "
                  f"{r['shift_median'] / r['wall_median']:.2f}x (median) -> "
                  f"{'MET' if r['shift_median'] / r['wall_median'] <= 4 else 'NOT MET'} (<= 4x); "
                  f"{r['shift_detections']} merged detections")

    out = subprocess.run([sys.executable, __file__, "--grid-worker", str(cases[0][1]), str(args.repeat),
                          str(cases[0][3])], capture_output=True, text=True, check=True)
    g = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"9-run grid (5/50/200 s x 0.2-2/2-12/0.2-12 keV) on the 1e7-event file, one events pass: "
          f"{g['grid']:.2f} s (the pass {g['pass']:.2f} s) vs one 50 s run {g['single']:.2f} s -> "
          f"{g['grid'] / g['single']:.2f}x (target <= 2x; medians of {args.repeat}; load {g['load']:.1f})")

    exod = dict(EXOD2_REFERENCE)
    src = "issue #4 (measured on this machine)"
    if args.exod2:
        path = os.environ.get("EXOD2_PATH")
        if not path:
            print("--exod2: EXOD2_PATH is not set; using the issue's EXOD2 figures")
        else:
            src = "measured now"
            for key, (label, _, tb, _, efile) in zip(("1e7_50", "1e6_5"), cases[:2]):
                er, _ = ex.run_exod(path, efile, tb)
                exod[key] = er["timings"]["total"]
                et = er["timings"]
                print(f"EXOD2 {label}: binning {et['binning']:.2f} + frame masks {et['bti'] + et['frame_masks']:.2f} "
                      f"+ template {et['template']:.2f} + mask {et['mask']:.2f} = {et['total']:.2f} s, peak RSS "
                      f"{max(er['peak_rss_mb'], er['peak_rss_mb_sampled']):.0f} MB")

    print("\ntargets (EXOD2 figures: " + src + "):")
    a, b = recs[cases[0][0]], recs[cases[1][0]]
    ok = a["wall_best"] * 10 <= exod["1e7_50"]
    print(f"  1e7 ev, 50 s: whole search {a['wall_best']:.2f} s (median {a['wall_median']:.2f}) vs EXOD2 "
          f"{exod['1e7_50']:.1f} s for four steps: {exod['1e7_50'] / a['wall_best']:.1f}x faster -> "
          f"{'MET' if ok else 'NOT MET'} (>= 10x)")
    peak_b = max(b["peak_rss_mb"], b["peak_rss_sampled_mb"])
    print(f"  1e6 ev, 5 s: whole search {b['wall_best']:.2f} s (<= 3 s: {'MET' if b['wall_best'] <= 3 else 'NOT MET'}),"
          f" peak RSS {peak_b:.0f} MB (<= 1024: {'MET' if peak_b <= 1024 else 'NOT MET'}); EXOD2 "
          f"{exod['1e6_5']:.0f} s -> {exod['1e6_5'] / b['wall_best']:.0f}x")
    rates = [r["mask_rate"] for r in recs.values()]
    print(f"  mask step >= 2e8 voxels/s: lowest {min(rates):.2e} voxels/s -> "
          f"{'MET' if min(rates) >= 2e8 else 'NOT MET'};"
          f" dense kernel {min(r['kernel_rate'] for r in recs.values()):.2e} voxels/s at least")
    zs = [(r["n_events"], r["wall_best"], max(r["peak_rss_mb"], r["peak_rss_sampled_mb"]))
          for k, r in recs.items() if k.endswith("Zarr")]
    if len(zs) >= 2:
        ne, tw, pk = (np.array(v, dtype=float) for v in zip(*zs))
        slope, icpt = np.polyfit(ne, tw, 1)
        resid = tw - (icpt + slope * ne)
        print(f"  time vs events (5 s, Zarr): t = {icpt:.2f} s + {slope * 1e9:.1f} ns x N; "
              + ", ".join(f"{n:.1e} ev: {t:.2f} s ({t / n * 1e9:.0f} ns/event, fit residual {r:+.2f} s)"
                          for n, t, r in zip(ne, tw, resid)))
        if ne.max() >= 9e7:
            print(f"  1e8 ev, 5 s: peak RSS {pk[-1]:.0f} MB (<= 2048: {'MET' if pk[-1] <= 2048 else 'NOT MET'})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--case-worker":
        a = sys.argv[2:]
        case_worker(a[0], float(a[1]), int(a[2]), a[3], a[4], shifts="--shifts" in a,
                    hygiene_cost="--hygiene-cost" in a)
    elif len(sys.argv) > 1 and sys.argv[1] == "--grid-worker":
        grid_worker(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(main())
