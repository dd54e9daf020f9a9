"""Survey list files: a line that is an existing path is taken whole, spaces
included; other lines are split on whitespace as before."""
from __future__ import annotations

from xcube.survey.observations import read_obslist, resolve_observations


def test_list_line_with_spaces_is_one_path(make_event_file, tmp_path):
    d = tmp_path / "dir with spaces"
    d.mkdir()
    spaced = make_event_file(name="dir with spaces/m1 raw.FTZ")
    plain = make_event_file(name="plain_evt.fits", header={"OBS_ID": "0123456780"}, seed=1)
    other = make_event_file(name="other_evt.fits", header={"OBS_ID": "0123456781"}, seed=2)
    listing = tmp_path / "obs.txt"
    listing.write_text(f"# observations\n  {spaced}  \n{plain} {other}   # two on one line\n\n")
    assert read_obslist(listing) == [str(spaced), str(plain), str(other)]
    obs = resolve_observations(listing)
    assert sorted(f for files in obs.values() for f in files) == sorted([spaced, plain, other])
    # ids that are not paths are still split on whitespace
    ids = tmp_path / "ids.txt"
    ids.write_text("0123456789 0987654321\n0555555555\n")
    assert read_obslist(ids) == ["0123456789", "0987654321", "0555555555"]
