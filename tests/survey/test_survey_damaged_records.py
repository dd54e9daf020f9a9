"""Damaged run directories of a survey output (hand-made, no search, no
cluster): a run.json that is not a JSON object counts as a run not done
(redone by the next survey)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xcube.cli import main
from xcube.survey import parameter_grid, run_id
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
