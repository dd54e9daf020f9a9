"""Search results that cannot be written (a full disk, a quota, ``ulimit -f``):
the error names the file being written, and nothing is left behind.

pyarrow's own error (``[Errno 27] Error writing bytes to file. Detail: ...``)
names no file; the writers of :mod:`xcube.transients.result` add it.
"""
import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xcube.transients.result import SearchResult, SearchResults


def _result(n_det=0, run_id="0999990101_0_100_0.2_12.0"):
    det = pd.DataFrame({"name": [f"src{i}" for i in range(n_det)], "ra": np.full(n_det, 150.0),
                        "dec": np.full(n_det, 2.2)})
    return SearchResult(run_id=run_id, detections=det, lightcurves=None, summary={"reason": ""},
                        params={"time_bin": 100.0})


def _pyarrow_efbig(*args, **kwargs):
    raise OSError(errno.EFBIG, "Error writing bytes to file. Detail: [errno 27] File too large")


def test_parquet_error_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(pd.DataFrame, "to_parquet", _pyarrow_efbig)
    out = tmp_path / "srch"
    with pytest.raises(OSError) as err:
        _result().write(out, figures=False)
    assert err.value.errno == errno.EFBIG
    assert str(out / "detections.parquet") in str(err.value) and "Error writing bytes" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # no run directory, no hidden temporary


def test_full_disk_in_a_run_directory_names_it(tmp_path, monkeypatch):
    def enospc(*args, **kwargs):
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", enospc)
    res = SearchResults([_result()])
    with pytest.raises(OSError) as err:
        res.write(tmp_path / "srch", figures=False)
    assert err.value.errno == errno.ENOSPC
    assert str(tmp_path / "srch" / res[0].run_id / "detections.parquet") in str(err.value)
    assert "no space left" in str(err.value)
    assert list((tmp_path / "srch").iterdir()) == []


def test_error_inside_the_commands_temporary_directory_names_the_output(tmp_path, monkeypatch):
    """``xcube search --out srch`` writes into a hidden ``.srch.tmp-*``
    renamed at the end: the error names ``srch/<run_id>/...``."""
    from xcube.io.atomic import atomic_dir

    monkeypatch.setattr(pd.DataFrame, "to_parquet", _pyarrow_efbig)
    res = SearchResults([_result()])
    out = tmp_path / "srch"
    with pytest.raises(OSError) as err:
        with atomic_dir(out, overwrite=True) as tmp:
            res.write(tmp, figures=False)
    assert err.value.errno == errno.EFBIG
    assert str(out / res[0].run_id / "detections.parquet") in str(err.value)
    assert ".tmp-" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_region_file_error_names_the_final_path(tmp_path, monkeypatch):
    write_text = Path.write_text

    def efbig_for_regions(self, *args, **kwargs):
        if self.suffix == ".reg":
            raise OSError(errno.EFBIG, "File too large")
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", efbig_for_regions)
    out = tmp_path / "srch"
    with pytest.raises(OSError) as err:
        _result(n_det=2).write(out, figures=False)
    assert str(out / "detections.reg") in str(err.value)
    assert ".tmp-" not in str(err.value)  # not the hidden temporary directory, removed by now
    assert list(tmp_path.iterdir()) == []


SCRIPT = textwrap.dedent(r"""
    import json, resource, sys
    import numpy as np, pandas as pd, xarray as xr
    from xcube.transients.result import SearchResult

    n = 200_000  # light curves of ~3 MB in Parquet, far above the limit; the other files are tiny
    rng = np.random.default_rng(1)
    lc = xr.Dataset({"counts": (("detection", "time"), rng.poisson(3.0, (1, n)).astype("int32")),
                     "expected": (("detection", "time"), rng.random((1, n)))},
                    coords={"detection": [0], "time": np.arange(n, dtype=float)})
    res = SearchResult(run_id="r", detections=pd.DataFrame({"name": [], "ra": [], "dec": []}), lightcurves=lc)
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        res.write(sys.argv[1], figures=False)
        print(json.dumps({"errno": None, "message": ""}))
    except OSError as exc:
        print(json.dumps({"errno": exc.errno, "message": str(exc)}))
""")


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="RLIMIT_FSIZE: POSIX only")
def test_real_pyarrow_error_under_ulimit(tmp_path):
    out = tmp_path / "srch"
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["errno"] == errno.EFBIG, got
    assert str(out / "lightcurves.parquet") in got["message"], got
    assert list(tmp_path.iterdir()) == []
