"""Resolving a survey's observations (audit fixes): copies of one event list
taken once, symbolic links followed, unreadable directories reported,
ROOT/<obsid> preferred over the current directory, ids that would collide
with the survey's outputs or with each other, one file reached twice."""
from __future__ import annotations

import gzip
import logging
import os
import shutil

import pytest

from xcube.survey.observations import event_files_in, resolve_observations

XMM = "P{obs}M1S001MIEVLI0000.FIT"


def _xmm(make_event_file, tmp_path, obs, sub="", seed=0, **header):
    rel = f"arch/{obs}/{sub + '/' if sub else ''}{XMM.format(obs=obs)}"
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    return make_event_file(n=20, seed=seed, header={"OBS_ID": obs, **header}, name=rel)


def test_copies_of_one_event_list_are_taken_once(make_event_file, tmp_path, caplog):
    fit = _xmm(make_event_file, tmp_path, "0400000003")
    ftz = fit.with_suffix(".FTZ")
    ftz.write_bytes(gzip.compress(fit.read_bytes()))
    pps = _xmm(make_event_file, tmp_path, "0400000002", "pps")
    old = tmp_path / "arch/0400000002/old" / pps.name
    old.parent.mkdir()
    shutil.copy(pps, old)
    root = tmp_path / "arch"
    with caplog.at_level(logging.WARNING, logger="xcube.survey"):
        obs = resolve_observations(["0400000003", "0400000002"], archive=root)
    assert obs == {"0400000002": [old], "0400000003": [fit]}  # same depth: first by path; uncompressed first
    assert "copies of one event list" in caplog.text and str(ftz) in caplog.text
    # two cameras under one generic name are not copies
    for cam, inst in (("mos1", "EMOS1"), ("mos2", "EMOS2")):
        (tmp_path / "two" / cam).mkdir(parents=True)
        make_event_file(n=20, header={"OBS_ID": "0500000001", "INSTRUME": inst}, name=f"two/{cam}/events.fits")
    assert len(event_files_in(tmp_path / "two")) == 2


def test_symbolic_links_to_directories_are_followed(make_event_file, tmp_path):
    real = _xmm(make_event_file, tmp_path, "0400000001")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "0400000001").symlink_to(real.parent, target_is_directory=True)
    (real.parent / "loop").symlink_to(real.parent, target_is_directory=True)  # a loop ends
    assert resolve_observations(tree) == {"0400000001": [tree / "0400000001" / real.name]}
    root = tmp_path / "root"
    (root / "0400000001").mkdir(parents=True)
    (root / "0400000001" / "pps").symlink_to(real.parent, target_is_directory=True)
    assert resolve_observations(["0400000001"], archive=root)["0400000001"] == [root / "0400000001/pps" / real.name]


def test_unreadable_directory_is_a_failed_observation(make_event_file, tmp_path, monkeypatch, caplog):
    _xmm(make_event_file, tmp_path, "0400000001")
    _xmm(make_event_file, tmp_path, "0400000002")
    root = tmp_path / "arch"
    blocked = str(root / "0400000002")
    scandir = os.scandir

    def fake(path="."):  # as if chmod 000 (root ignores the mode)
        if os.fspath(path) == blocked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", fake)
    with caplog.at_level(logging.WARNING, logger="xcube.survey"):
        obs = resolve_observations(root)
    assert obs["0400000002"] == [root / "0400000002"] and len(obs["0400000001"]) == 1
    assert "not readable" in caplog.text and blocked in caplog.text


def test_archive_entry_wins_over_the_current_directory(make_event_file, tmp_path, monkeypatch):
    f = _xmm(make_event_file, tmp_path, "0400000001")
    cwd = tmp_path / "cwd"
    (cwd / "0400000001").mkdir(parents=True)  # e.g. the survey's own output directory
    monkeypatch.chdir(cwd)
    assert resolve_observations(["0400000001"], archive=tmp_path / "arch") == {"0400000001": [f]}


def test_reserved_and_colliding_ids(make_event_file, tmp_path):
    f1 = make_event_file(n=10)
    f2 = make_event_file(n=10, seed=1)
    obs = resolve_observations({"catalogue": [f1], "status.parquet": [f2]})
    assert obs == {"catalogue_obs": [f1], "status.parquet_obs": [f2]}
    with pytest.raises(ValueError, match="'obs a' and 'obs_a' both give the observation id 'obs_a'"):
        resolve_observations({"obs a": [f1], "obs_a": [f2]})


def test_one_file_reached_twice_is_taken_once(make_event_file, tmp_path):
    f = _xmm(make_event_file, tmp_path, "0400000001")
    assert resolve_observations([f, f.parent]) == {"0400000001": [f]}
    assert resolve_observations({"x": [f, f.parent / ".." / f.parent.name / f.name]}) == {"x": [f]}
