"""Cost of the detector hygiene on one block of events (issue #15).

Times ``HygieneTest`` (``xcube.hygiene.hygiene_test(events, True)``), the
test the search's events pass applies to each block, on:

* a block of 2^20 generated pn events (100 ks observation of 1e7 events,
  as in ``bench_search.py``: 166,400 raw pixels, fewer than the events);
* a small MOS1 event list (the real 37k-event ``exod_0001730201_M1_clean``
  from ``../shared/data/real`` when present, else a generated one of that
  size: 2.9 million raw pixels, far more than the events).

Printed: the median time of one call (ms and ns per event), and of its two
parts, the events scan (:func:`xcube.hygiene.rules.scan`) and the hot pixel
and column rules, with the load average (the machine may be shared).

Run: ``python benchmarks/bench_hygiene.py [--repeat 40]``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from pathlib import Path

import _bench_env  # noqa: F401  (numba's cache and bytecode go to a temporary directory)
import numpy as np

REAL_MOS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real" / "xmm" / \
    "exod_0001730201_M1_clean.fits"


def _median_ms(f, repeat: int) -> float:
    f()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return 1e3 * statistics.median(ts)


def _block(ev, n: int):
    from xcube.hygiene import hygiene_test

    test = hygiene_test(ev, True)
    n = min(n, ev.sizes["event"])
    cols = {c: np.ascontiguousarray(ev[c].values[:n]) for c in test.columns}
    return test, cols, np.ones(n, bool)


def _case(label: str, ev, n: int, repeat: int) -> None:
    from xcube.hygiene import rules

    test, cols, keep = _block(ev, n)
    n = keep.size
    raw = tuple(cols[c] for c in test.names)
    nx, ny = test.size
    live = test._live_pixels((int(raw[0].max()) + 1, nx, ny))
    o = test.options
    ft = test.frame_time if test.clusters else 0.0

    def scan():
        return rules.scan(cols["time"], keep, *raw, live, o.flicker_counts, o.flicker_seconds, ft, o.cluster_radius)

    counts, cells = scan()[3:5]

    def hot():
        h = rules.hot_pixels(counts, live, cells, o.hot_ratio, o.false_alarm)
        rules.hot_columns(counts, live, cells, h, o.hot_ratio, o.false_alarm)

    call = _median_ms(lambda: test(cols, keep, {}), repeat)
    print(f"  {label}: {n:,d} events, {counts.size:,d} raw pixels ({'sparse' if cells is not None else 'dense'}):"
          f" hygiene call {call:6.2f} ms ({1e6 * call / n:5.1f} ns/event); events scan"
          f" {_median_ms(scan, repeat):6.2f} ms; hot pixel + column rules {_median_ms(hot, repeat):5.2f} ms")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=40)
    a = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    import xcube

    print(f"detector hygiene per block, medians of {a.repeat}; load average {os.getloadavg()[0]:.1f}")
    pn, _ = xcube.simulate.event_list("xmm-pn", duration=10_000.0, n_events=float(1 << 20), seed=1, sources=10)
    _case("pn, generated (1e7 events / 100 ks density)", pn.load(), 1 << 20, a.repeat)
    if REAL_MOS.exists():
        mos, what = xcube.open_events(REAL_MOS), f"MOS1, real {REAL_MOS.name}"
    else:
        mos, _ = xcube.simulate.event_list("xmm-mos1", duration=17_000.0, n_events=37_000, seed=1, sources=5)
        what = "MOS1, generated (../shared/data/real is absent)"
    _case(what, mos.load(), 1 << 20, a.repeat)
    print(f"  load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
