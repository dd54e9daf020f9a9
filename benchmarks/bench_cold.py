"""Cold start of xcube as a user meets it: fresh processes, medians.

Prints, each the median of ``--repeat`` fresh processes (after one warm-up
process, so that numba's on-disk cache, Python's bytecode cache and the
stored Bayes tables are warm, as they are after the first use on a machine):

1. ``import xcube`` (time inside the process) and the process's wall time;
2. ``xcube --help`` and ``xcube search --help`` (whole-process wall time);
3. on a small MOS event list (the real 37k-event ``exod_0001730201_M1_clean``
   from ``../shared/data/real`` when present, else a generated one of the
   same size): ``import xcube``, the first ``open_events`` + 50 s search of
   the process, and a second search in the same process;
4. on a raw, unsorted, compressed 135k-event ``.FTZ`` (the real MOS1
   ``P0001730201M1S002MIEVLI.FTZ`` when present, else a generated one): the
   same with an **empty event cache** (a new cache directory per process;
   the stored Bayes tables are kept, like numba's cache), then again with
   the event cache that the first process filled.

Also printed: the same steps with xcube's dependencies (xarray, dask.array,
numba, astropy.io.fits, astropy.wcs, zarr, scipy) imported first and timed
apart, since ``import xcube`` itself imports nothing until used; and the load
average (the machine is shared: compare figures of one run).

Run: ``python benchmarks/bench_cold.py [--repeat 5]``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _bench_env  # noqa: F401  (numba's cache and bytecode go to a temporary directory)

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real" / "xmm"

CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
deps = 0.0
if {preload}:
    import xarray, dask.array, numba, astropy.io.fits, astropy.wcs, zarr, scipy.ndimage, scipy.special  # noqa
    deps = time.perf_counter() - t0
t1 = time.perf_counter()
import xcube
t2 = time.perf_counter()
out = {{"deps": deps, "import": t2 - t1}}
if {path!r}:
    ev = xcube.open_events({path!r})
    res = xcube.search_transients(ev, time_bin=50.0)
    t3 = time.perf_counter()
    ev = xcube.open_events({path!r})
    res = xcube.search_transients(ev, time_bin=50.0)
    t4 = time.perf_counter()
    out.update(first=t3 - t2, second=t4 - t3, events=int(ev.sizes["event"]))
print(json.dumps(out))
"""


def _child(path, preload, env):
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD.format(path=str(path or ""), preload=preload)],
                         capture_output=True, text=True, env=env, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["wall"] = time.perf_counter() - t
    return res


def _wall(argv, env):
    t = time.perf_counter()
    subprocess.run(argv, capture_output=True, env=env, check=True)
    return time.perf_counter() - t


NUMBA_FLOOR = r"""
import sys, time
sys.path.insert(0, {where!r})
import numba  # noqa
import one_line
t = time.perf_counter()
one_line.f(1)
print(time.perf_counter() - t)
"""


def _numba_floor(tmp: Path, env) -> float:
    """Seconds of the first call of a cached one-line njit function (after ``import numba``)."""
    where = tmp / "numba_floor"
    if not where.exists():
        where.mkdir()
        (where / "one_line.py").write_text("import numba\n\n\n@numba.njit(cache=True)\ndef f(x):\n"
                                           "    return x + 1\n")
        subprocess.run([sys.executable, "-c", NUMBA_FLOOR.format(where=str(where))], env=env, check=True,
                       capture_output=True)
    out = subprocess.run([sys.executable, "-c", NUMBA_FLOOR.format(where=str(where))], env=env, check=True,
                         capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def _empty_event_cache(cache: Path) -> None:
    """Remove the converted event lists, keep the stored tables (like numba's cache)."""
    for p in cache.iterdir() if cache.exists() else []:
        if p.name != "tables":
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def _median(rows, key):
    return statistics.median(r[key] for r in rows)


def _files(tmp: Path):
    mos, ftz = REAL / "exod_0001730201_M1_clean.fits", REAL / "P0001730201M1S002MIEVLI.FTZ"
    if mos.exists() and ftz.exists():
        return mos, ftz, "real XMM MOS1 files"
    import numpy as np

    import xcube
    from xcube.io.write_events import write_events

    ev, _ = xcube.simulate.event_list("xmm-mos1", duration=17_000.0, n_events=37_000, seed=1, sources=5)
    mos = write_events(tmp / "mos.fits", ev.load())
    big, _ = xcube.simulate.event_list("xmm-mos1", duration=17_000.0, n_events=135_000, seed=2, sources=5)
    big = big.load()
    order = np.random.default_rng(0).permutation(big.sizes["event"])
    ftz = write_events(tmp / "mos_unsorted.FTZ", big.isel(event=order), gzip=True)
    return mos, ftz, "generated MOS1 files (../shared/data/real is absent)"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="xcube-bench-cold-"))
    # Python's bytecode cache on, as on a user's machine (this sandbox sets
    # PYTHONDONTWRITEBYTECODE, which makes every process compile xcube's
    # sources again); the bytecode goes to the temporary directory.
    env = dict(os.environ, XCUBE_CACHE_DIR=str(tmp / "cache"), PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    exe = str(Path(sys.executable).parent / "xcube")
    try:
        mos, ftz, what = _files(tmp)
        print(f"xcube cold start, {a.repeat} fresh processes each (medians); {what}; "
              f"load average {os.getloadavg()[0]:.1f}")
        _child(mos, False, env)  # warm numba's cache, the stored tables and the MOS file's event cache
        rows = [_child(None, False, env) for _ in range(a.repeat)]
        print(f"  import xcube                     {_median(rows, 'import'):6.3f} s  "
              f"(process {_median(rows, 'wall'):.3f} s)   target <= 1.2 s")
        for argv in ([exe, "--help"], [exe, "search", "--help"]):
            w = statistics.median(_wall(argv, env) for _ in range(a.repeat))
            print(f"  {' '.join(['xcube'] + argv[1:]):32s} {w:6.3f} s (whole process)   target <= 0.5 s")
        for preload in (False, True):
            rows = [_child(mos, preload, env) for _ in range(a.repeat)]
            head = "deps imported first: " if preload else ""
            print(f"  {head}{mos.name} ({rows[0]['events']} events): import {_median(rows, 'import'):.3f} s"
                  + (f" after deps {_median(rows, 'deps'):.3f} s" if preload else "")
                  + f"; first open+search {_median(rows, 'first'):.3f} s; second {_median(rows, 'second'):.3f} s;"
                  f" process {_median(rows, 'wall'):.3f} s")
        for preload in (False, True):
            cold = []
            for _ in range(a.repeat):
                _empty_event_cache(tmp / "cache")
                cold.append(_child(ftz, preload, env))
            warm = [_child(ftz, preload, env) for _ in range(a.repeat)]
            head = "deps imported first: " if preload else ""
            print(f"  {head}{ftz.name} ({cold[0]['events']} events, unsorted, gzip):"
                  + (f" deps {_median(cold, 'deps'):.3f} s;" if preload else "")
                  + f" empty event cache: first open+search {_median(cold, 'first'):.3f} s, process "
                  f"{_median(cold, 'wall'):.3f} s; cache filled: first open+search {_median(warm, 'first'):.3f} s"
                  f"   target (empty cache) <= 1 s after import")
        floor = statistics.median(_numba_floor(tmp, env) for _ in range(a.repeat))
        print(f"  numba alone: first call of a one-line cached njit function in a fresh process "
              f"(numba's own start-up, paid once by any first search) {floor:.3f} s")
        print(f"  load average at the end {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
