"""Observation lists and ids from hostile or unusual input: a UTF-8 byte-order
mark, lines with spaces under --archive, ids with no safe character."""
from __future__ import annotations

import pytest

from xcube.survey.observations import read_obslist, resolve_observations


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
