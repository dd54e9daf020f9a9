"""Two runs in one work directory: one run's end (or recovery) removes the
empty .pfiles directory while another creates its journal there, between its
mkdir and its open. The second run failed with FileNotFoundError (seen once
in a resumed `xcube process` spectra step, whose source and background
spectra run side by side)."""
from __future__ import annotations

import os
from pathlib import Path

from xcube.tools import journal as journal_module
from xcube.tools.journal import RunJournal


def test_a_journal_starts_although_the_empty_directory_goes_in_between(tmp_path, monkeypatch):
    base = tmp_path / "work" / ".pfiles"
    real_open, raced = os.open, []

    def racing_open(path, *args, **kwargs):
        if not raced and str(path).endswith(".run.json.new"):
            raced.append(path)
            Path(path).parent.rmdir()  # the other run's _rmdir_if_empty, in the window
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(journal_module.os, "open", racing_open)
    j = RunJournal.start(base / "task-0001", task="t", tool="evselect")
    assert raced and j.path.exists()
    j.close()
