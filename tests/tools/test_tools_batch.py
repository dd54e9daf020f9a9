"""xcube.tools.run_many: dependency graphs on Dask, status records, failures."""
from __future__ import annotations

import re

import numpy as np
import pytest

from xcube.tools import Task, run_many
from xcube.tools.batch import STATUS_COLUMNS


def _chain(fake_tools, tmp_path, tag, n=300):
    """ftselect -> ftselect -> ftmerge(both): a small dependency graph."""
    src = tmp_path / f"{tag}.fits"
    rng = np.random.default_rng(len(tag))
    cols = {"TIME": np.sort(rng.uniform(0, 50, n)), "PI": rng.integers(0, 1000, n).astype(np.int32)}
    fake_tools.lib._write_generic(src, cols, {"TELESCOP": "NuSTAR", "INSTRUME": "FPMA", "TSTART": 0.0,
                                              "TSTOP": 50.0}, [("GTI", {}, np.array([0.0]), np.array([50.0]))], None)
    a = Task("ftselect", {"infile": f"{src}[EVENTS]", "outfile": tmp_path / f"{tag}_a.fits",
                          "expression": "PI < 600"}, inputs=[src], outputs=[tmp_path / f"{tag}_a.fits"],
             name=f"{tag}-a", tags={"obsid": tag})
    b = Task("ftselect", {"infile": f"{tmp_path / f'{tag}_a.fits'}[EVENTS]", "outfile": tmp_path / f"{tag}_b.fits",
                          "expression": "PI < 300"}, inputs=[tmp_path / f"{tag}_a.fits"],
             outputs=[tmp_path / f"{tag}_b.fits"], name=f"{tag}-b", deps=[a.name], tags={"obsid": tag})
    m = Task("ftmerge", {"infile": f"{tmp_path / f'{tag}_a.fits'},{tmp_path / f'{tag}_b.fits'}",
                         "outfile": tmp_path / f"{tag}_m.fits"},
             inputs=[tmp_path / f"{tag}_a.fits", tmp_path / f"{tag}_b.fits"], outputs=[tmp_path / f"{tag}_m.fits"],
             name=f"{tag}-m", deps=[a.name, b.name], tags={"obsid": tag})
    return [m, b, a]  # deliberately out of order


def test_run_many_threads_respects_dependencies(fake_tools, tmp_path):
    tasks = _chain(fake_tools, tmp_path, "obsA") + _chain(fake_tools, tmp_path, "obsB")
    table = run_many(tasks, workers=2, progress=False)
    assert list(table.columns) == STATUS_COLUMNS
    assert set(table["state"]) == {"done"}
    assert set(table["obsid"]) == {"obsA", "obsB"}
    calls = [c for c in fake_tools.calls() if c["tool"] != "fversion"]  # fversion: version probe
    order = {}
    for i, c in enumerate(calls):
        out = next(a.split("=", 1)[1] for a in c["argv"] if a.startswith("outfile="))
        name = out.rsplit("/", 1)[1]
        # outputs named on the command line are written under a temporary name, then moved into place
        order[re.sub(r"^\.(.+)\.tmp-[0-9a-f]{8}.*$", r"\1", name)] = i
    for tag in ("obsA", "obsB"):
        assert order[f"{tag}_a.fits"] < order[f"{tag}_b.fits"] < order[f"{tag}_m.fits"]
    from astropy.io import fits

    with fits.open(tmp_path / "obsA_m.fits") as h:
        n_a = len(fits.getdata(tmp_path / "obsA_a.fits", "EVENTS"))
        n_b = len(fits.getdata(tmp_path / "obsA_b.fits", "EVENTS"))
        assert len(h["EVENTS"].data) == n_a + n_b
    # re-running: everything skipped, no tool call
    fake_tools.reset_calls()
    again = run_many(tasks, progress=False)
    assert set(again["state"]) == {"skipped"} and fake_tools.calls() == []


def test_run_many_records_failures_and_goes_on(fake_tools, tmp_path, monkeypatch):
    monkeypatch.setenv("XCUBE_FAKE_FAIL", "ftmerge")
    tasks = _chain(fake_tools, tmp_path, "obsA")
    extra = Task("ftselect", {"infile": f"{tmp_path / 'obsA.fits'}[EVENTS]", "outfile": tmp_path / "late.fits",
                              "expression": "PI > 1"}, outputs=[tmp_path / "late.fits"], name="after-merge",
                 deps=["obsA-m"], tags={"obsid": "obsA"})
    table = run_many(tasks + [extra], progress=False).set_index("task")
    assert table.loc["obsA-a", "state"] == "done" and table.loc["obsA-b", "state"] == "done"
    assert table.loc["obsA-m", "state"] == "failed"
    assert table.loc["obsA-m", "error_class"] == "ToolError" and table.loc["obsA-m", "returncode"] == 1
    assert re.search(r"/obsA-m-\d{8}T\d{6}-[0-9a-f]{6}\.log$", table.loc["obsA-m", "log"])
    assert table.loc["after-merge", "error_class"] == "DependencyError"
    assert "obsA-m failed" in table.loc["after-merge", "message"]
    with pytest.raises(RuntimeError, match="2 of 4 tasks failed"):
        run_many(tasks + [extra], progress=False, raise_on_error=True)


def test_run_many_timeout_state(fake_tools, tmp_path, monkeypatch):
    monkeypatch.setenv("XCUBE_FAKE_HANG", "ftmerge")
    tasks = _chain(fake_tools, tmp_path, "obsA")
    tasks[0].timeout = 1.0
    table = run_many(tasks, progress=False, status_file=tmp_path / "status.csv").set_index("task")
    assert table.loc["obsA-m", "state"] == "timeout" and table.loc["obsA-m", "error_class"] == "ToolTimeout"
    import pandas as pd

    saved = pd.read_csv(tmp_path / "status.csv")
    assert set(saved["state"]) == {"done", "timeout"}


def test_run_many_rejects_bad_graphs(fake_tools, tmp_path):
    a = Task("ftselect", {"x": 1}, name="a", deps=["b"])
    b = Task("ftselect", {"x": 2}, name="b", deps=["a"])
    with pytest.raises(ValueError, match="cycle"):
        run_many([a, b], progress=False)
    with pytest.raises(ValueError, match="unknown task"):
        run_many([Task("ftselect", {"x": 1}, name="c", deps=["nope"])], progress=False)
    with pytest.raises(ValueError, match="unique"):
        run_many([Task("ftselect", {"x": 1}, name="d"), Task("ftselect", {"x": 2}, name="d")], progress=False)


def test_run_many_on_a_distributed_client(fake_tools, tmp_path):
    distributed = pytest.importorskip("distributed")
    tasks = _chain(fake_tools, tmp_path, "obsC")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        table = run_many(tasks, client, progress=False)
    assert set(table["state"]) == {"done"}
    assert list(table["task"]) == ["obsC-a", "obsC-b", "obsC-m"]
    assert (tmp_path / "obsC_m.fits").exists()
    # client="local": a temporary in-process LocalCluster; everything is up to date now
    again = run_many(tasks, "local", workers=2, progress=False)
    assert set(again["state"]) == {"skipped"}
    with pytest.raises(ValueError, match="client must be"):
        run_many(tasks, "tcp://nowhere", progress=False)
