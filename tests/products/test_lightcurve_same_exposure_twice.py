"""A summed light curve of a tree holding one exposure in two files (an .FTZ
beside its decompressed or cleaned copy) counted its events twice, without a
word; the search refused the same tree. Both now refuse it, naming the files."""
from __future__ import annotations

import shutil

import pytest
from conftest import real_file

import xcube


def test_same_events_in_two_files_are_refused(make_event_file, tmp_path):
    a = make_event_file(n=500, name="m1.fits", header={"EXPIDSTR": "S001"})
    b = tmp_path / "m1_copy.fits"
    shutil.copy(a, b)
    m2 = make_event_file(n=400, seed=3, name="m2.fits", header={"INSTRUME": "EMOS2", "EXPIDSTR": "S002"})
    tree = xcube.open_events([a, b, m2])
    with pytest.raises(ValueError, match=r"lightcurve: cameras \d and \d hold the same exposure .*m1\.fits.*m1_copy"):
        xcube.lightcurve(tree, 100.0)
    # two cameras: summed as before
    two = xcube.lightcurve(xcube.open_events([a, m2]), 100.0)
    assert int(two["counts"].sum()) > 0 and two.attrs["instrument"] == "EMOS1+EMOS2"


def test_real_ftz_beside_its_decompressed_copy(tmp_path):
    import gzip

    ftz = real_file("xmm", "P0001730201M1S002MIEVLI.FTZ")
    obs = tmp_path / "obs"
    obs.mkdir()
    shutil.copy(ftz, obs / ftz.name)
    with gzip.open(ftz) as src, open(obs / "P0001730201M1S002MIEVLI.FIT", "wb") as out:
        shutil.copyfileobj(src, out)
    with pytest.raises(ValueError, match=r"hold the same exposure \(EMOS1 exposure S001"):
        xcube.lightcurve(xcube.open_events(obs), 100.0)
