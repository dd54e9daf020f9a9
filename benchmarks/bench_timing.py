"""Timing products at scale.

1. An averaged power spectrum (Leahy, dt = 1/512 s, 256 s segments) of
   N_EVENTS events (default 1e8) read from an xcube Zarr event store and
   streamed through Dask in chunks: wall time, events/s and peak RSS of the
   process, next to Stingray's ``AveragedPowerspectrum.from_events`` on the
   same events held in memory (each in its own subprocess, so each peak RSS
   is its own). If Stingray cannot hold all events (``--stingray-events``
   lower, or a MemoryError), it runs on the first events only and says so;
   xcube then runs on the same subset too, for a like-for-like ratio and an
   equality check of the powers.
2. Light curves and power spectra of N_OBS observations (default 500) event
   files on a ``dask.distributed`` LocalCluster: observations per second.

Usage: ``python benchmarks/bench_timing.py [--events 1e8] [--observations 500]
[--stingray-events N] [--workers 2]``. Scratch data go to a temporary
directory that is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _bench_env  # noqa: F401  (numba's cache and bytecode go to a temporary directory)
import numpy as np

DT, SEGMENT = 1 / 512, 256.0
CHUNK = 4_194_304
RATE = 4000.0  # count/s: 1e8 events span 25 ks, about 95 segments of 256 s


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


# ----------------------------------------------------------------------------- data
def _chunk_times(block_id, n_per_chunk, span, seed):
    i = block_id[0]
    rng = np.random.default_rng(seed + i)
    return np.sort(rng.uniform(i * span, (i + 1) * span, n_per_chunk))


def make_store(path: Path, n_events: int) -> None:
    """A Zarr event store of n_events sorted times (generated chunk by chunk,
    never all in memory), GTIs with one gap."""
    import dask.array as da
    import xarray as xr

    import xcube

    n_chunks = int(np.ceil(n_events / CHUNK))
    n_per = n_events // n_chunks
    span = n_per / RATE
    t = da.map_blocks(lambda block_id=None: _chunk_times(block_id, n_per, span, 7), chunks=((n_per,) * n_chunks,),
                      dtype=np.float64)
    total = n_chunks * span
    gti = np.array([[0.0, 0.48 * total], [0.5 * total, total]])
    ev = xr.Dataset({"time": ("event", t), "gti_start": ("gti", gti[:, 0]), "gti_stop": ("gti", gti[:, 1])},
                    attrs={"mission": "SIM", "instrument": "SIM", "mjdref": 55000.0, "timesys": "TT",
                           "source": "bench_timing"})
    xcube.to_zarr(ev, path)


# ----------------------------------------------------------------------------- children
def child_xcube(store: str, limit: int | None, workers: int) -> dict:
    import dask

    import xcube

    ev = xcube.open_events(store, chunks=CHUNK)
    if limit:
        ev = ev.isel(event=slice(0, limit))
    n = ev.sizes["event"]
    xcube.power_spectrum(ev.isel(event=slice(0, 2 * CHUNK)), segment=SEGMENT, dt=DT)  # numba compilation
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=workers):
        p = xcube.power_spectrum(ev, segment=SEGMENT, dt=DT, norm="leahy")
    wall = time.perf_counter() - t0
    np.save(Path(store).parent / f"xcube_{limit or 'all'}.npy", p["power"].values)
    return {"n": n, "wall": wall, "rss_gb": rss_gb(), "n_segments": p.attrs["n_segments"],
            "mean_power": float(p["power"].mean())}


def child_stingray(store: str, limit: int | None) -> dict:
    import xarray as xr
    from stingray import AveragedPowerspectrum, EventList

    warm = np.sort(np.random.default_rng(0).uniform(0, 600, 100_000))  # numba compilation
    AveragedPowerspectrum.from_events(EventList(warm, gti=np.array([[0.0, 600.0]])), dt=DT, segment_size=SEGMENT,
                                      norm="leahy", silent=True)
    t0 = time.perf_counter()
    src = xr.open_zarr(store, consolidated=False, zarr_format=3)
    times = src["time"].data[:limit] if limit else src["time"].data
    times = np.asarray(times.compute(scheduler="threads"))
    gti = np.column_stack([src["gti_start"].values, src["gti_stop"].values])
    load = time.perf_counter() - t0
    t1 = time.perf_counter()
    s = AveragedPowerspectrum.from_events(EventList(times, gti=gti, skip_checks=True), dt=DT, segment_size=SEGMENT,
                                          norm="leahy", silent=True)
    wall = time.perf_counter() - t1
    np.save(Path(store).parent / f"stingray_{limit or 'all'}.npy", s.power)
    return {"n": int(times.size), "wall": wall, "load": load, "rss_gb": rss_gb(), "n_segments": int(s.m)}


def run_child(*args) -> dict | None:
    proc = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  child {args[0]} failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- part 1
def part_pds(tmp: Path, n_events: int, stingray_events: int | None, workers: int) -> None:
    store = tmp / "events.zarr"
    t0 = time.perf_counter()
    make_store(store, n_events)
    print(f"[1] wrote {n_events:.3g} events to a Zarr store in {time.perf_counter() - t0:.1f} s "
          f"({sum(f.stat().st_size for f in store.rglob('*') if f.is_file()) / 1e9:.2f} GB on disk)")
    x = run_child("xcube", store, 0, workers)
    if x:
        print(f"    xcube.power_spectrum, all {x['n']:.3g} events streamed from disk: {x['wall']:.1f} s, "
              f"{x['n'] / x['wall']:.3g} events/s, peak RSS {x['rss_gb']:.2f} GB "
              f"({'under' if x['rss_gb'] < 1.5 else 'OVER'} 1.5 GB), {x['n_segments']} segments, "
              f"mean Leahy power {x['mean_power']:.4f}")
    s = run_child("stingray", store, stingray_events or 0)
    subset = stingray_events
    if s is None and not stingray_events:
        subset = n_events // 4
        print(f"    Stingray could not run on all events; retrying on the first {subset:.3g}")
        s = run_child("stingray", store, subset)
    if s is None:
        return
    label = "the same events" if not subset else f"the first {s['n']:.3g} events only (not all)"
    print(f"    Stingray AveragedPowerspectrum.from_events on {label}, in memory: {s['wall']:.1f} s "
          f"({s['n'] / s['wall']:.3g} events/s; {s['n'] / (s['wall'] + s['load']):.3g} events/s with the "
          f"{s['load']:.1f} s load from the store), peak RSS {s['rss_gb']:.2f} GB, {s['n_segments']} segments")
    xs = x if not subset else run_child("xcube", store, subset, workers)
    if xs:
        a = np.load(tmp / f"xcube_{subset or 'all'}.npy")
        b = np.load(tmp / f"stingray_{subset or 'all'}.npy")
        print(f"    same data: xcube {xs['n'] / xs['wall']:.3g} events/s vs Stingray {s['n'] / s['wall']:.3g} "
              f"events/s (ratio {s['wall'] / xs['wall']:.2f}; xcube reads from disk, Stingray from memory); "
              f"powers equal to {np.max(np.abs(a / b - 1)):.1e} relative")


# ----------------------------------------------------------------------------- part 2
def make_observations(tmp: Path, n_obs: int, n_per: int = 20_000, duration: float = 5000.0) -> list:
    from xcube.io.write_events import write_events_fits

    files = []
    for i in range(n_obs):
        rng = np.random.default_rng(i)
        t0 = 1.0e8 + i * 1.0e5
        t = np.sort(t0 + rng.uniform(0, duration, n_per))
        cols = {"TIME": t, "X": rng.integers(20000, 32000, n_per).astype(np.int32),
                "Y": rng.integers(20000, 32000, n_per).astype(np.int32),
                "PI": rng.integers(200, 12000, n_per).astype(np.int16)}
        hdr = {"TELESCOP": "XMM", "INSTRUME": "EMOS1", "OBS_ID": f"{i:010d}", "MJDREF": 50814.0, "TIMESYS": "TT",
               "TSTART": t0, "TSTOP": t0 + duration}
        files.append(str(write_events_fits(tmp / f"obs{i:04d}.fits", cols, gti=([t0], [t0 + duration]),
                                           header=hdr)))
    return files


def part_many(tmp: Path, n_obs: int, workers: int) -> None:
    from distributed import Client, LocalCluster

    import xcube

    t0 = time.perf_counter()
    files = make_observations(tmp, n_obs)
    print(f"[2] wrote {n_obs} event files (20,000 events, 5 ks each) in {time.perf_counter() - t0:.1f} s")
    from xcube.products.powerspectrum import power_spectrum as pds_one
    from xcube.products.stitch import extract_lightcurves as lcs_many

    k = min(20, n_obs)
    raw = {"screening": False}  # the generated events have no PATTERN/FLAG columns to screen on
    lcs_many(files[:1], 10.0, energy_band=(0.5, 10.0), **raw)  # numba compilation
    pds_one(files[0], segment=256.0, dt=1 / 8, norm="frac", rebin=-0.05, **raw)
    t = time.perf_counter()
    for f in files[:k]:
        lcs_many([f], 10.0, energy_band=(0.5, 10.0), **raw)
        pds_one(f, segment=256.0, dt=1 / 8, norm="frac", rebin=-0.05, **raw)
    serial = k / (time.perf_counter() - t)
    print(f"    serial reference in this process: light curve + power spectrum of {k} observations: "
          f"{serial:.1f} obs/s")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster):
        xcube.extract_lightcurves(files[:workers], 10.0, **raw)  # start-up and imports on the workers
        xcube.power_spectrum(files[:workers], segment=256.0, dt=1 / 8, **raw)
        t = time.perf_counter()
        lcs = xcube.extract_lightcurves(files, 10.0, energy_band=(0.5, 10.0), **raw)
        t_lc = time.perf_counter() - t
        t = time.perf_counter()
        pds = xcube.power_spectrum(files, segment=256.0, dt=1 / 8, norm="frac", rebin=-0.05, **raw)
        t_pds = time.perf_counter() - t
        t = time.perf_counter()
        long = xcube.stitch(lcs)
        t_st = time.perf_counter() - t
    n_ev = 20_000 * n_obs
    print(f"    LocalCluster {workers} workers x 1 thread: light curves (10 s, 0.5-10 keV) of {len(lcs)} "
          f"observations in {t_lc:.1f} s = {len(lcs) / t_lc:.1f} obs/s ({n_ev / t_lc:.3g} events/s)")
    print(f"    power spectra (frac, 256 s, dt 1/8 s, log rebin) of {pds.sizes['obs']} observations in {t_pds:.1f} s "
          f"= {pds.sizes['obs'] / t_pds:.1f} obs/s ({n_ev / t_pds:.3g} events/s)")
    both = len(lcs) / (t_lc + t_pds)
    print(f"    light curve + power spectrum per observation on the cluster: {both:.1f} obs/s "
          f"({both / serial:.2f} x the serial rate measured above)")
    print(f"    stitch of the {long.attrs['n_observations']} light curves ({long.sizes['time']} bins): {t_st:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=float, default=1e8)
    ap.add_argument("--observations", type=int, default=500)
    ap.add_argument("--stingray-events", type=float, default=0, help="run Stingray on this many events only")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, store, limit = a.child[0], a.child[1], int(a.child[2]) or None
        out = child_xcube(store, limit, int(a.child[3])) if kind == "xcube" else child_stingray(store, limit)
        print(json.dumps(out))
        return
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} on {os.cpu_count()} cores; "
          f"workers {a.workers}")
    with tempfile.TemporaryDirectory(prefix="xcube-bench-timing-") as d:
        part_pds(Path(d), int(a.events), int(a.stingray_events) or None, a.workers)
        if a.observations:
            part_many(Path(d), a.observations, a.workers)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
