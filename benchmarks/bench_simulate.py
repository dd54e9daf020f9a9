"""Throughput and memory of ``xcube.simulate.event_list``.

For each event count (``--events``, default 1e7 and 1e8 over 100 ks of
pn), in a fresh subprocess:

1. ``event_list(..., n_events=N)`` + ``xcube.simulate.write(file, ev)``: plan,
   generation slab by slab and streamed OGIP FITS write; prints wall time,
   events/s, peak RSS and file size; then the wall time and peak RSS after
   ``xcube.open_events(file)`` (what ``path=`` adds; the reader's TIME scan
   maps the file, so its pages count in RSS);
2. (``--lazy``) the lazy list without a file: ``ev["x"].sum().compute()`` on
   the threaded scheduler (all slabs generated in parallel, nothing kept).

Run: ``python benchmarks/bench_simulate.py [--events 1e7 1e8] [--lazy] [--dir DIR]``.
The files are deleted afterwards.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import _bench_env  # noqa: F401  (numba's cache and bytecode go to a temporary directory)

_CHILD = r"""
import json, resource, sys, time
import numpy as np
import xcube
n, path, lazy = float(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
ev, truth = xcube.simulate.event_list("xmm-pn", duration=1e5, n_events=n, seed=1)
n_ev = ev.sizes["event"]
if lazy:
    int(ev["x"].sum().compute())
    print(json.dumps({"events": n_ev, "wall": time.perf_counter() - t, "rss_mb": rss()}))
else:
    xcube.simulate.write(path, ev, overwrite=True)
    wall, peak = time.perf_counter() - t, rss()
    t = time.perf_counter()
    back = xcube.open_events(path)
    assert back.sizes["event"] == n_ev
    print(json.dumps({"events": n_ev, "wall": wall, "rss_mb": peak, "open_s": time.perf_counter() - t,
                      "open_rss_mb": rss()}))
"""


def run(n: float, path: Path, lazy: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(path), "1" if lazy else "0"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=float, nargs="+", default=[1e7, 1e8])
    ap.add_argument("--lazy", action="store_true", help="also time the lazy list without a file")
    ap.add_argument("--dir", default=None, help="directory for the FITS files (default: a temp dir)")
    args = ap.parse_args(argv)
    tmp = Path(args.dir or tempfile.mkdtemp(prefix="xcube-bench-sim-"))
    tmp.mkdir(parents=True, exist_ok=True)
    print(f"xcube.simulate.event_list, xmm-pn, 100 ks, {os.cpu_count()} cores")
    print(f"{'events':>12} {'mode':>14} {'wall [s]':>9} {'Mev/s':>7} {'peak RSS [MB]':>14} {'file [MB]':>10}"
          f" {'open [s]':>9} {'RSS after open [MB]':>20}")
    for n in args.events:
        path = tmp / f"sim_{int(n)}.fits"
        r = run(n, path, lazy=False)
        size = path.stat().st_size / 2**20
        print(f"{r['events']:>12,d} {'generate+FITS':>14} {r['wall']:>9.1f} {r['events'] / r['wall'] / 1e6:>7.2f} "
              f"{r['rss_mb']:>14.0f} {size:>10.0f} {r['open_s']:>9.1f} {r['open_rss_mb']:>20.0f}")
        path.unlink()
        if args.lazy:
            r = run(n, path, lazy=True)
            print(f"{r['events']:>12,d} {'lazy compute':>14} {r['wall']:>9.1f} {r['events'] / r['wall'] / 1e6:>7.2f} "
                  f"{r['rss_mb']:>14.0f} {'-':>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
