"""Observation lists and ids from hostile or unusual input: a UTF-8 byte-order
mark, lines with spaces under --archive, ids with no safe character."""
from __future__ import annotations

import logging

import pytest

from xcube.survey import parameter_grid
from xcube.survey.observations import read_obslist, resolve_observations, safe_obsid
from xcube.survey.runner import plan_survey

PARAMS = parameter_grid([50.0], [(0.2, 12.0)])


def test_byte_order_mark_is_not_part_of_the_first_id(tmp_path):
    """A list saved by Windows/Excel started with U+FEFF: the first id became '_0201901401', a failed observation."""
    (tmp_path / "arch" / "0201901401").mkdir(parents=True)
    listing = tmp_path / "obs.txt"
    listing.write_bytes("\ufeff0201901401\r\n0001730201\r\n".encode("utf-8"))
    assert read_obslist(listing) == ["0201901401", "0001730201"]
    assert list(resolve_observations(listing, archive=tmp_path / "arch")) == ["0001730201", "0201901401"]


def test_list_that_is_not_utf8_is_an_error_naming_it(tmp_path):
    listing = tmp_path / "obs.txt"
    listing.write_bytes("0201901401\nM\xfcller\n".encode("latin-1"))
    with pytest.raises(ValueError, match=f"{listing}: not UTF-8 text"):
        read_obslist(listing)


def test_list_line_with_a_space_is_an_archive_entry_from_any_directory(make_event_file, tmp_path, monkeypatch):
    """'obs space' was split into the ids 'obs' and 'space' unless the survey ran from inside ROOT."""
    root = tmp_path / "arch"
    (root / "obs space").mkdir(parents=True)
    f = make_event_file(n=20, name="arch/obs space/m1_evt.fits", header={"OBS_ID": "0400000001"})
    (root / "0201901401").mkdir()
    listing = tmp_path / "obs.txt"
    listing.write_text("0201901401\nobs space\n")
    (tmp_path / "elsewhere").mkdir()
    for cwd in (root, tmp_path / "elsewhere"):
        monkeypatch.chdir(cwd)
        assert read_obslist(listing, archive=root) == ["0201901401", "obs space"]
        obs = resolve_observations(listing, archive=root)
        assert list(obs) == ["0201901401", "obs_space"] and obs["obs_space"] == [f]
    # without the archive entry the line is ids separated by a space, as before
    assert read_obslist(listing, archive=tmp_path / "elsewhere") == ["0201901401", "obs", "space"]


def test_id_with_no_safe_character_gets_a_usable_distinct_id(make_event_file, tmp_path, caplog):
    """A file 観測.fits without OBS_ID, or a list line 観測, stopped the whole survey before any run."""
    d = tmp_path / "dir"
    d.mkdir()
    good = make_event_file(n=20, name="dir/good_evt.fits", header={"OBS_ID": "0400000001"})
    cjk = make_event_file(n=20, name="dir/観測.fits", header={"OBS_ID": ""})
    other = make_event_file(n=20, name="dir/測定.fits", header={"OBS_ID": ""})
    with caplog.at_level(logging.WARNING, logger="xcube.survey"):
        obs = resolve_observations(d)
    assert obs == {"0400000001": [good], "file_e6b8ace5ae9a": [other], "file_e8a6b3e6b8ac": [cjk]}
    assert f"file {cjk}" in caplog.text and "'file_e8a6b3e6b8ac'" in caplog.text
    # a list line under --archive (and a mapping key, an OBS_ID): 'obs_' and the hex of the UTF-8 bytes
    root = tmp_path / "arch"
    (root / "観測").mkdir(parents=True)
    f = make_event_file(n=20, name="arch/観測/m1_evt.fits", header={"OBS_ID": "***"})
    g = make_event_file(n=20, name="arch/観測/m2_evt.fits", header={"OBS_ID": "***"}, seed=1)
    listing = tmp_path / "obs.txt"
    listing.write_text("0400000001\n観測\n")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="xcube.survey"):
        obs = resolve_observations(listing, archive=root)
    assert obs["obs_e8a6b3e6b8ac"] == [f, g] and list(obs) == ["0400000001", "obs_e8a6b3e6b8ac"]
    assert f"list {listing}" in caplog.text
    assert resolve_observations(root / "観測") == {"obs_2a2a2a": [f, g]}  # one observation, by OBS_ID
    assert plan_survey(obs, tmp_path / "out", PARAMS)["obs_e8a6b3e6b8ac"][0][0] == "obs_e8a6b3e6b8ac_0_50_0.2_12.0"
    assert resolve_observations({"観測": [f]}) == {"obs_e8a6b3e6b8ac": [f]}
    for nothing in ("", "..", " . "):  # nothing at all to name a directory by: still an error naming it
        with pytest.raises(ValueError, match="gives no usable file name"):
            safe_obsid(nothing, "test")
