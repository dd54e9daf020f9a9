"""The notebooks in notebooks/ run top to bottom on generated data, each in
under 2 minutes, with a kernel running this interpreter."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture
def kernel_here(tmp_path, monkeypatch):
    """A kernelspec named python3 that starts this interpreter (whatever venv runs the tests)."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (xcube tests)", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "python3"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01-quickstart.ipynb", "02-transient-search.ipynb",
                                  "03-survey-with-dashboard.ipynb"])
def test_notebook_runs(name, tmp_path, kernel_here):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    work = tmp_path / "work"
    work.mkdir()
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name=kernel_here,
                                     resources={"metadata": {"path": str(work)}})
    t0 = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - t0
    assert elapsed < 120, f"{name} took {elapsed:.0f} s (limit 2 minutes)"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    n_figures = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                    if "image/png" in o.get("data", {}))
    assert n_figures >= 2, f"{name}: expected figures in the outputs, found {n_figures}"
    if name.startswith("02-"):  # the cell after "Were the injected transients found?" names a detection for each
        cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith("det = res.detections"))
        table = next(o["data"]["text/plain"] for o in cell.outputs if "text/plain" in o.get("data", {}))
        assert "flare" in table and "eclipse" in table and "None" not in table, table
