"""Laziness at reduced scale: a cube from 5e6 lazily generated events, written
to Zarr, keeps peak memory far below the size of the cube plus the events.

Runs in a fresh subprocess so that the peak RSS (sampled with psutil) belongs
to this work alone."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import xarray as xr

CHILD = textwrap.dedent(
    """
    import json, sys, threading, time
    import dask, dask.array as da, numpy as np, psutil
    import xcube
    from xcube.io.events_fits import events_dataset

    n, chunk, store = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    nb = n // chunk
    T0, SPAN = 1.0e8, 5.0e3

    def block(b, col):
        rng = np.random.default_rng([7, b])
        c = np.cumsum(rng.exponential(1.0, chunk + 1))
        cols = {"time": T0 + b * SPAN / nb + (SPAN / nb) * c[:-1] / c[-1],
                "x": rng.integers(0, 1000, chunk, dtype=np.int32),
                "y": rng.integers(0, 1000, chunk, dtype=np.int32)}
        return cols[col]

    cols = {c: da.concatenate([da.from_delayed(dask.delayed(block)(b, c), (chunk,), dtype=dt) for b in range(nb)])
            for c, dt in (("time", np.float64), ("x", np.int32), ("y", np.int32))}
    ev = events_dataset(cols, ([T0], [T0 + SPAN]), {}, {"source": "lazy", "x_min": 0.0, "x_max": 999.0,
                                                       "y_min": 0.0, "y_max": 999.0})
    # warm up (numba kernels, zarr codecs) on a tiny cube so that the baseline includes them
    tiny = events_dataset({k: v[:1000] for k, v in cols.items()}, ([T0], [T0 + 1.0]), {}, dict(ev.attrs))
    xcube.bin_events(tiny, time=1.0, y=10.0, x=10.0).to_dataset().to_zarr(store + "-warm", mode="w",
                                                                          zarr_format=3, consolidated=False)
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    stop = False

    def sample():
        while not stop:
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.002)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    cube = xcube.bin_events(ev, time=1.0, y=10.0, x=10.0, chunk_bytes=8 * 2**20)
    with dask.config.set(scheduler="threads", num_workers=2):
        cube.to_dataset().to_zarr(store, mode="w", zarr_format=3, consolidated=False)
    stop = True
    th.join()
    print(json.dumps({"base": base, "peak": peak[0], "shape": list(cube.shape), "nchunks": len(cube.chunks[0])}))
    """
)


def test_cube_to_zarr_memory_is_bounded_by_chunks(tmp_path):
    n, chunk = 5_000_000, 500_000
    store = tmp_path / "cube.zarr"
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(chunk), str(store)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["shape"] == [5000, 100, 100] and res["nchunks"] >= 20
    cube_bytes = 5000 * 100 * 100 * 4  # 200 MB
    event_bytes = n * 16  # 80 MB of time, x, y
    grown = res["peak"] - res["base"]
    # bounded by a few chunks (8 MB output, 8 MB of events each), not by the cube or the events
    assert grown < 0.4 * (cube_bytes + event_bytes), f"peak RSS grew by {grown / 1e6:.0f} MB"
    back = xr.open_zarr(store, consolidated=False)["counts"]
    assert back.dims == ("time", "y", "x") and back.attrs["units"] == "count"
    assert int(back.sum().compute()) == n
    np.testing.assert_allclose(back.exposure.values, 1.0)
