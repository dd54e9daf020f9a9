"""Event-reading throughput: xcube FITS reader and Zarr cache vs a plain astropy memmap read.

Writes a sorted XMM-MOS-like event file (default 1e7 events, 240 MB) to a
temporary directory, warms the page cache, then for each reader times
"open + fully read time, x and y" (best of ``--repeat`` runs) and prints
events per second:

- astropy: ``fits.open(memmap=True)`` and native-byte-order copies of the
  TIME, X, Y columns (what a hand-written reader does);
- xcube FITS: ``xcube.open_events(file)`` then ``dask.compute`` of every
  chunk of the three columns (threaded scheduler). The first open of a file
  also scans TIME once (reported separately); later opens use the scan record;
- xcube Zarr: ``xcube.to_zarr`` once, then ``xcube.open_events(store)``
  and the same compute;
- xcube .gz: a gzip copy converted once into the event cache, then
  re-opened from the cache (cache-key check and store open included);
- "gathered": the same, but each column joined into one numpy array by
  dask (one more copy of the data, as ``ev.time.values`` does).

Per-process memory maps are dropped between runs, so every run pays for
mapping and page faults. Run: ``python benchmarks/bench_io.py [--events N]``.
"""
from __future__ import annotations

import argparse
import gzip
import os
import shutil
import tempfile
import time
from pathlib import Path

import _bench_env  # noqa: F401  (numba's cache and bytecode go to a temporary directory)
import dask
import numpy as np
from astropy.io import fits


def make_file(path: Path, n: int, seed: int = 0) -> Path:
    from xcube.io.write_events import write_events_fits

    rng = np.random.default_rng(seed)
    t0 = 1.0e8
    cols = {
        "TIME": np.sort(t0 + rng.uniform(0.0, 1.0e5, n)),
        "X": rng.integers(20000, 32000, n).astype(np.int32),
        "Y": rng.integers(20000, 32000, n).astype(np.int32),
        "PI": rng.integers(200, 12000, n).astype(np.int16),
        "PATTERN": rng.integers(0, 13, n).astype(np.uint8),
        "FLAG": np.zeros(n, np.int32),
        "CCDNR": rng.integers(1, 8, n).astype(np.uint8),
    }
    header = {"TELESCOP": "XMM", "INSTRUME": "EMOS1", "OBS_ID": "0000000001", "MJDREF": 50814.0,
              "TSTART": t0, "TSTOP": t0 + 1.0e5, "TIMESYS": "TT"}
    return write_events_fits(path, cols, gti=([t0], [t0 + 1.0e5]), header=header, overwrite=True)


def warm(path: Path) -> None:
    """Read a file or store once so that it sits in the page cache."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


def read_astropy(path: Path):
    with fits.open(path, memmap=True) as hdul:
        data = hdul["EVENTS"].data
        out = []
        for name in ("TIME", "X", "Y"):
            col = data[name]
            out.append(col.astype(col.dtype.newbyteorder("=")))
    return out


def read_xcube(path: Path, chunks=None, gather=False):
    """Open and read every chunk of time, x, y. With ``gather`` the chunks are
    joined into one numpy array per column (one more copy, done by dask)."""
    import xcube

    ev = xcube.open_events(path, chunks=chunks)
    t_open = time.perf_counter()
    cols = [ev[name].data for name in ("time", "x", "y")]
    if gather:
        arrays = dask.compute(*cols)
    else:
        arrays = dask.compute(*[list(c.to_delayed().ravel()) for c in cols])
    return arrays, t_open


def _drop_maps():
    from xcube.io import memmap

    memmap._memmap.cache_clear()


def best_of(fn, repeat: int):
    best = None
    for _ in range(repeat):
        _drop_maps()
        t0 = time.perf_counter()
        res = fn()
        t1 = time.perf_counter()
        t_open = res[1] - t0 if isinstance(res, tuple) else float("nan")
        if best is None or t1 - t0 < best[0]:
            best = (t1 - t0, t_open)
        del res
    return best


def integrity_costs(path: Path, store: Path, repeat: int) -> None:
    """What the integrity checks cost, each next to the work it guards (same
    process, same moment, so the ratios hold on a busy machine)."""
    try:
        from xcube.io.cache import check_store
        from xcube.io.integrity import chunk_crc, file_identity, fingerprint
    except ImportError:  # an xcube without integrity checks
        return
    from numcodecs import Blosc

    def best(fn):
        return min(_timed(fn) for _ in range(repeat))

    files = [f for c in ("time", "x", "y") for f in sorted((store / c / "c").iterdir())]
    blobs = [f.read_bytes() for f in files]
    t_decode = best(lambda: [Blosc().decode(b) for b in blobs])
    t_crc = best(lambda: [chunk_crc(b) for b in blobs])
    t_stat = best(lambda: check_store(store))
    t_full = best(lambda: check_store(store, checksums=True))
    ident = file_identity(path)
    t_fp = best(lambda: fingerprint(path))
    from xcube.io.integrity import check_unchanged

    t_unchanged = best(lambda: check_unchanged(path, ident))
    mb = sum(len(b) for b in blobs) / 1e6
    print(f"integrity: CRC32C of the time/x/y chunks ({mb:.0f} MB) {t_crc * 1e3:.1f} ms = "
          f"{t_crc / t_decode * 100:.1f} % of decoding them ({t_decode * 1e3:.1f} ms); store check at open "
          f"(stat) {t_stat * 1e3:.2f} ms, with all checksums {t_full * 1e3:.1f} ms; file fingerprint "
          f"{t_fp * 1e3:.2f} ms; changed-file check per FITS chunk read {t_unchanged * 1e3:.2f} ms")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=float, default=1e7, help="number of events (default 1e7)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per reader; the best is reported")
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary directory)")
    ap.add_argument("--chunks", type=int, default=None, help="events per chunk (default: xcube's)")
    args = ap.parse_args(argv)
    n = int(args.events)
    work = Path(args.dir or tempfile.mkdtemp(prefix="xcube-bench-io-"))
    os.environ.setdefault("XCUBE_CACHE_DIR", str(work / "cache"))
    import xcube

    try:
        path = work / "events.fits"
        t0 = time.perf_counter()
        make_file(path, n)
        print(f"file: {path} ({path.stat().st_size / 1e6:.0f} MB, {n:.3g} events, written in "
              f"{time.perf_counter() - t0:.1f} s); CPUs: {dask.system.CPU_COUNT}")
        warm(path)

        from xcube.io import memmap

        t0 = time.perf_counter()
        memmap._check_block(np.zeros(3))  # one-time per process: load the compiled TIME-check kernel
        t_numba = time.perf_counter() - t0
        t0 = time.perf_counter()
        xcube.open_events(path)
        first_open = time.perf_counter() - t0

        ref, _ = best_of(lambda: read_astropy(path), args.repeat)
        fits_total, fits_open = best_of(lambda: read_xcube(path, args.chunks), args.repeat)
        fits_gather, _ = best_of(lambda: read_xcube(path, args.chunks, gather=True), args.repeat)

        store = work / "events.zarr"
        t0 = time.perf_counter()
        xcube.to_zarr(xcube.open_events(path, chunks=args.chunks), store, overwrite=True)
        t_write = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
        warm(store)
        zarr_total, zarr_open = best_of(lambda: read_xcube(store), args.repeat)
        zarr_gather, _ = best_of(lambda: read_xcube(store, gather=True), args.repeat)

        expect = read_astropy(path)
        for got in (read_xcube(path, gather=True)[0], read_xcube(store, gather=True)[0]):
            assert all(np.array_equal(a, b) for a, b in zip(got, expect)), "readers disagree"

        # a gzip file: converted once into the event cache, then re-opened from it
        gz = work / "events.fits.gz"
        with open(path, "rb") as src, gzip.open(gz, "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst, 1 << 24)
        t0 = time.perf_counter()
        xcube.open_events(gz)
        t_convert = time.perf_counter() - t0
        cached_total, cached_open = best_of(lambda: read_xcube(gz), args.repeat)

        def line(name, total, t_open=None):
            s = f"{name:<40s} {n / total / 1e6:8.1f} Mevents/s   total {total * 1e3:7.1f} ms"
            if t_open is not None:
                s += f"   open {t_open * 1e3:5.1f} ms"
            return s + f"   astropy/this {ref / total:4.2f}"

        chunk = xcube.open_events(path, chunks=args.chunks)["time"].data.chunksize[0]
        print(f"open + read time, x, y (warm page cache, best of {args.repeat}; {chunk} events per chunk):")
        print(f"{'astropy memmap (reference)':<40s} {n / ref / 1e6:8.1f} Mevents/s   total {ref * 1e3:7.1f} ms")
        print(line("xcube FITS, every chunk read", fits_total, fits_open))
        print(line("xcube FITS, gathered into one array", fits_gather))
        print(line("xcube Zarr, every chunk read", zarr_total, zarr_open))
        print(line("xcube Zarr, gathered into one array", zarr_gather))
        print(line("xcube .gz via the event cache, re-opened", cached_total, cached_open))
        print(f"first open of the FITS file (headers + TIME scan): {first_open * 1e3:.1f} ms "
              f"(+ {t_numba * 1e3:.0f} ms once per process to load the numba kernel); later opens use "
              f"the scan record. Zarr write {t_write:.1f} s, store {size / 1e6:.0f} MB; "
              f"first open of the .gz file (decompress + convert into the cache) {t_convert:.1f} s")
        integrity_costs(path, store, args.repeat)
        print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
