"""Reading a huge tool log: time and peak memory of ``xcube.tools.logs``.

Issue #14 saw a 288 MB log raise the runner's peak RSS to 1 GB (the whole log
was read into memory). This writes a log of that size (chatty lines with a
warning now and then, and an error near the end) in a temporary directory and
measures, each in a fresh process so that peak RSS is its own:

* ``scan_log`` (error and warning lines, 1 MiB blocks) and ``tail``;
* for scale, the old way: ``read_text`` + ``splitlines`` + the same line test.

Run: ``python benchmarks/bench_tool_logs.py [megabytes]`` (default 288).
Prints seconds, peak RSS [MiB] and the load average.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import _bench_env  # noqa: F401  (numba's cache and bytecode go to a temporary directory)

CHILD = r"""
import json, resource, sys, time
path, how = sys.argv[1], sys.argv[2]
from xcube.tools.logs import parse_log, scan_log, tail
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if how == "scan":
    errors, warnings_ = scan_log(path)
    last = tail(path)
else:
    errors, warnings_ = parse_log(open(path, errors="replace").read())
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "peak_mib": peak / 1024, "added_mib": (peak - base) / 1024,
                  "errors": len(errors), "warnings": len(warnings_)}))
"""


def make_log(path: Path, megabytes: int) -> int:
    line = b"epframes: processing frame block 12345, nothing to report " + b"." * 40 + b"\n"
    warn = b"** epframes: warning (FrameDiscarded), a repeated warning\n"
    block = (line * 999 + warn) * 10
    with open(path, "wb") as fh:
        n = 0
        while n < megabytes * 2**20:
            fh.write(block)
            n += len(block)
        fh.write(b"** epframes: error (Fatal), something went wrong at the end\n")
    return path.stat().st_size


def main() -> None:
    mb = int(sys.argv[1]) if len(sys.argv) > 1 else 288
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "tool.log"
        size = make_log(log, mb)
        print(f"log: {size / 2**20:.0f} MiB; load average {os.getloadavg()[0]:.2f}")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1])] + sys.path))
        for how in ("scan", "whole"):
            out = subprocess.run([sys.executable, "-c", CHILD, str(log), how], capture_output=True, text=True,
                                 env=env, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            label = "scan_log + tail (xcube)" if how == "scan" else "read_text + parse_log (before)"
            print(f"{label:32s} {r['seconds']:6.2f} s  peak RSS {r['peak_mib']:7.1f} MiB "
                  f"(+{r['added_mib']:.1f} MiB)  errors {r['errors']} warnings {r['warnings']}")


if __name__ == "__main__":
    main()
