"""Damaged run directories of a survey output (hand-made, no search, no
cluster): a run.json that is not a JSON object, cannot be read or has no
state counts as a run not done (redone by the next survey, named in a
warning); a done run whose detection table is missing, not a file or
shorter than its record says is an error naming the file."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from xcube.cli import main
from xcube.survey import build_catalogue, parameter_grid, run_id
from xcube.survey.runner import plan_survey
from xcube.survey.status import scan_runs, write_run
from xcube.transients.detect import empty_table

PARAMS = parameter_grid([50.0], [(0.2, 12.0)])
OBS = ("0400000001", "0400000002")


def _det(n: int) -> pd.DataFrame:
    """A search's detection table (every column, its dtypes) with ``n`` rows at one position."""
    t = empty_table()
    df = pd.DataFrame({"ra": np.full(n, 150.0), "dec": np.full(n, 2.2), "t_start": 1.0e8, "t_stop": 1.0e8 + 50,
                       "t_peak": 1.0e8 + 25, "log10_bayes": 10.0 + np.arange(n)})
    for c in t.columns:
        if c not in df:
            df[c] = (False if t[c].dtype == bool else np.arange(n) if c == "detection" else "peak" if c == "kind"
                     else "" if pd.api.types.is_string_dtype(t[c]) else 0 if t[c].dtype.kind == "i" else np.nan)
    return df[list(t.columns)].astype(t.dtypes.to_dict())


@pytest.fixture
def out(tmp_path):
    """A survey output of two done runs with two detections each."""
    out = tmp_path / "out"
    p = PARAMS[0]
    for obsid in OBS:
        rec = dict(p.to_dict(), param_hash=p.hash, state="done", n_detections=2)
        write_run(out, obsid, run_id(obsid, p), rec, writer=lambda d: _det(2).to_parquet(d / "detections.parquet"))
    return out


def _record(out, obsid=OBS[0]):
    return out / obsid / run_id(obsid, PARAMS[0]) / "run.json"


@pytest.mark.parametrize("text", ["[1, 2]", '"done"', "0", "null"])
def test_run_record_that_is_not_an_object_is_a_run_not_done(out, text, capsys):
    """Valid JSON but not an object gave a TypeError traceback in scan_runs: survey and catalogue blocked."""
    _record(out).write_text(text)
    st = scan_runs(out)
    assert st["obsid"].tolist() == [OBS[1]]
    plan = plan_survey({o: [] for o in OBS}, out, PARAMS, existing=st)
    assert {k: [r for r, _ in v] for k, v in plan.items()} == {OBS[0]: [run_id(OBS[0], PARAMS[0])]}  # redone
    assert main(["catalogue", str(out)]) == 0
    assert "2 detections" in capsys.readouterr().out


@pytest.mark.parametrize("text", ['{"state": "done", "run_id": ', "[1, 2]", "{}", '{"state": "finished"}'])
def test_unreadable_run_record_is_named_in_a_warning(out, text, caplog):
    """The catalogue dropped such a run silently ("nothing is lost" did not hold)."""
    _record(out).write_text(text)
    with caplog.at_level(logging.WARNING, logger="xcube.survey"):
        cat = build_catalogue(out, write=False, report=False)
    assert len(cat.detections) == 2 and cat.runs["obsid"].tolist() == [OBS[1]]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "run.json" in r.getMessage()]
    assert len(warned) == 1 and str(_record(out)) in warned[0], warned
    assert f"run {run_id(OBS[0], PARAMS[0])}" in warned[0] and "running the survey again redoes it" in warned[0]


def _table(out, obsid=OBS[0]):
    return out / obsid / run_id(obsid, PARAMS[0]) / "detections.parquet"


@pytest.mark.parametrize("damage, problem", [
    ("directory", "not a file"),
    ("missing", "missing"),
    ("short", "holds 1 row(s) where its record (run.json) counts 2 detections"),
])
def test_damaged_detection_table_of_a_done_run_is_an_error_naming_it(out, damage, problem, capsys):
    """A directory named detections.parquet was read as an empty table (with a misleading warning about times)."""
    path = _table(out)
    path.unlink()
    if damage == "directory":
        path.mkdir()
    elif damage == "short":
        _det(1).to_parquet(path)
    with pytest.raises(OSError, match="cannot read the detections of run") as exc:
        build_catalogue(out, write=False, report=False)
    assert str(path) in str(exc.value) and problem in str(exc.value) and f"delete {path.parent}" in str(exc.value)
    assert main(["catalogue", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and problem in err and "Traceback" not in err
    assert not (out / "catalogue").exists()
