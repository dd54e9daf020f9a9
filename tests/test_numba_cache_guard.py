"""numba's on-disk cache is optional: a cache that cannot be written (EFBIG
under ``ulimit -f``, as a full disk gives ENOSPC) or read (a damaged index)
costs a warning naming the cache directory, not the computation.

Each test runs a fresh process with its own empty ``NUMBA_CACHE_DIR`` (the
kernels are compiled there, a few seconds), and compares the cube with
``numpy.histogram``. A one-line cached kernel outside xcube is the control:
numba alone still fails on that cache, so the failure did happen.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

resource = pytest.importorskip("resource")  # RLIMIT_FSIZE: POSIX only

SCRIPT = textwrap.dedent(r"""
    import json, resource, sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    import xcube

    ev, _ = xcube.simulate.event_list("xmm-mos1", duration=2000.0, seed=3, sources=1, soft_protons=0)
    ev = ev.load()
    import toy  # a cached kernel outside xcube: numba's own behaviour

    if sys.argv[2] == "no-writes":  # every write to a file fails with EFBIG (pipes are not files)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        control = toy.f(1)
    except Exception as exc:  # noqa: BLE001
        control = f"{type(exc).__name__} {getattr(exc, 'errno', None)}"
    cube = xcube.bin_events(ev, time=100.0, compute=True)
    edges = np.append(cube["time_lo"].values, cube["time_hi"].values[-1])
    expected, _ = np.histogram(ev["time"].values, bins=edges)
    print(json.dumps({"control": control, "same": bool(np.array_equal(cube.values, expected)),
                      "total": int(cube.values.sum()), "events": int(ev.sizes["event"])}))
""")


def _run(tmp_path, nb_cache, mode):
    toy = tmp_path / "toy"
    toy.mkdir(exist_ok=True)
    (toy / "toy.py").write_text("import numba\n\n\n@numba.njit(cache=True)\ndef f(x):\n    return x + 1\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env.update(NUMBA_CACHE_DIR=str(nb_cache), XCUBE_CACHE_DIR=str(tmp_path / "xcube-cache"),
               PYTHONDONTWRITEBYTECODE="1")
    out = subprocess.run([sys.executable, "-W", "always", "-c", SCRIPT, str(toy), mode], capture_output=True,
                         text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def test_cache_that_cannot_be_written_costs_one_warning(tmp_path):
    nb_cache = tmp_path / "numba-cache"
    res, err = _run(tmp_path, nb_cache, "no-writes")
    assert res["control"] == "OSError 27"  # numba alone: the call fails on its cache (EFBIG)
    assert res["same"] and res["total"] == res["events"]  # xcube's kernels ran, compiled in memory
    warned = [line for line in err.splitlines() if "numba could not write its compilation cache" in line]
    assert len(warned) == 1, err[-3000:]  # one warning per process, although several kernels compiled
    assert str(nb_cache) in warned[0] and "File too large" in warned[0] and "NUMBA_CACHE_DIR" in warned[0]
    assert not list(nb_cache.rglob("*.nbc"))  # nothing was cached


def test_damaged_cache_index_costs_one_warning(tmp_path):
    nb_cache = tmp_path / "numba-cache"
    res, err = _run(tmp_path, nb_cache, "writes")  # fills the cache
    assert res["same"] and res["control"] == 2 and "numba could not" not in err
    indexes = list(nb_cache.rglob("*.nbi"))
    assert indexes
    for index in indexes:
        index.write_bytes(b"")  # truncated (a crash before the data reached the disk)
    res, err = _run(tmp_path, nb_cache, "reads")
    assert res["control"] == "EOFError None"  # numba alone fails on the damaged index
    assert res["same"] and res["total"] == res["events"]
    warned = [line for line in err.splitlines() if "numba could not read its compilation cache" in line]
    assert len(warned) == 1, err[-3000:]
    assert str(nb_cache) in warned[0] and "EOFError" in warned[0]
