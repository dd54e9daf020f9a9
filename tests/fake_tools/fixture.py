"""Pytest support for the fake mission tools: put them on PATH (ahead of the
venv's python3, which their ``#!/usr/bin/env python3`` line then finds) and
give them the environment a set-up SAS/HEASoft/HXMTDAS session would have.

Use ``from fake_tools.fixture import fake_tools`` in a test module (the
``tests`` directory is on ``sys.path``), or :func:`activate` inside a
``pytest.MonkeyPatch.context()`` for module-scoped fixtures.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

FAKE_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(FAKE_DIR))
import _fakelib  # noqa: E402

CONTROL_VARS = ("XCUBE_FAKE_FAIL", "XCUBE_FAKE_HANG", "XCUBE_FAKE_GARBAGE", "XCUBE_FAKE_SLEEP",
                "XCUBE_FAKE_CHILD_PIDS", "XCUBE_FAKE_CRASH", "XCUBE_FAKE_TRUNCATE", "XCUBE_FAKE_SETSID",
                "XCUBE_FAKE_DAEMON", "XCUBE_FAKE_LOG_BYTES", "XCUBE_FAKE_SAS_VERSION",
                "XCUBE_FAKE_ERROR_EXIT0")


@dataclass
class FakeTools:
    """Handle on the fake tool environment of one test."""

    root: Path
    call_log: Path
    headas: Path
    lib = _fakelib

    def calls(self, tool: str | None = None) -> list[dict]:
        """Calls made so far (one dict per tool invocation), optionally of one tool."""
        if not self.call_log.exists():
            return []
        rows = [json.loads(line) for line in self.call_log.read_text().splitlines() if line.strip()]
        return [r for r in rows if tool is None or r["tool"] == tool]

    def reset_calls(self) -> None:
        self.call_log.write_text("")


def activate(mp: pytest.MonkeyPatch, root: Path) -> FakeTools:
    """Set up the environment on ``mp``: PATH, call log, a fake $HEADAS with
    ``refdata/medetectorstatus.fits`` and system pfiles, $REFPATH, SAS_CCFPATH."""
    root.mkdir(parents=True, exist_ok=True)
    py_dir = str(Path(sys.executable).parent)
    mp.setenv("PATH", os.pathsep.join([str(FAKE_DIR), py_dir, os.environ.get("PATH", "")]))
    call_log = root / "calls.jsonl"
    mp.setenv("XCUBE_FAKE_CALL_LOG", str(call_log))
    for v in CONTROL_VARS:
        mp.delenv(v, raising=False)
    headas = root / "headas"
    (headas / "syspfiles").mkdir(parents=True, exist_ok=True)
    (headas / "refdata").mkdir(parents=True, exist_ok=True)
    ref = headas / "refdata" / "medetectorstatus.fits"
    if not ref.exists():
        import numpy as np

        _fakelib.write(ref, [_fakelib.table_hdu({"DET_ID": np.arange(54, dtype=np.int16),
                                                 "STATUS": np.ones(54, np.int16)}, "DETSTATUS")])
    refpath = root / "refpath"
    refpath.mkdir(exist_ok=True)
    mp.setenv("HEADAS", str(headas))
    mp.setenv("REFPATH", str(refpath))
    mp.setenv("PFILES", f"{root / 'userpfiles'};{headas / 'syspfiles'}")
    mp.setenv("SAS_CCFPATH", str(root / "ccf"))
    for v in ("SAS_ODF", "SAS_CCF", "HEADASNOQUERY", "HEADASPROMPT"):
        mp.delenv(v, raising=False)
    return FakeTools(root=root, call_log=call_log, headas=headas)


@pytest.fixture
def fake_tools(tmp_path, monkeypatch) -> FakeTools:
    """Fake SAS/HEASoft/HXMTDAS executables on PATH for one test."""
    return activate(monkeypatch, tmp_path / "fake-env")
