"""Several files or a directory -> ``xr.DataTree`` archive, one node per
observation and instrument (``/<obs_id>/<INSTRUMENT>``)."""
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import xcube


@pytest.fixture
def archive(tmp_path, make_event_file):
    files = [
        make_event_file(n=100, seed=1, name="a_m1.fits", header={"OBS_ID": "0111111111", "EXPIDSTR": "S001"}),
        make_event_file(n=120, seed=2, name="a_m2.fits.gz", gzip=True,
                        header={"OBS_ID": "0111111111", "INSTRUME": "EMOS2"}),
        make_event_file(n=130, seed=3, name="a_m1_second.evt",
                        header={"OBS_ID": "0111111111", "EXPIDSTR": "S004"}),
        make_event_file(n=140, seed=4, name="b_m1.fits", header={"OBS_ID": "0222222222"}),
    ]
    (tmp_path / "notes.txt").write_text("not an event file")
    gti_only = tmp_path / "gti.fits"  # matches the suffixes but is not an event list
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.BinTableHDU.from_columns(
                [fits.Column("START", "D", array=[0.0]), fits.Column("STOP", "D", array=[1.0])], name="STDGTI"
            ),
        ]
    ).writeto(gti_only)
    return tmp_path, files


EXPECTED = {"/0111111111/EMOS1": 100, "/0111111111/EMOS2": 120, "/0111111111/EMOS1_S004": 130,
            "/0222222222/EMOS1": 140}


def _leaves(tree: xr.DataTree) -> dict:
    return {node.path: node for node in tree.subtree if not node.children}


def test_directory_gives_datatree_of_eventlists(archive):
    root, _ = archive
    with pytest.warns(UserWarning, match=r"skipping .*gti\.fits: .*no EVENTS"):
        tree = xcube.open_events(root)
    assert isinstance(tree, xr.DataTree)
    leaves = _leaves(tree)
    assert set(leaves) == set(EXPECTED)
    for path, n in EXPECTED.items():
        ds = leaves[path].to_dataset()
        assert ds.sizes["event"] == n
        assert np.all(np.diff(ds.time.values) >= 0)
        assert ds.attrs["path"].startswith(str(root))


def test_list_of_paths_gives_datatree(archive):
    _, files = archive
    tree = xcube.open_events([str(f) for f in files[:2]])
    assert set(_leaves(tree)) == {"/0111111111/EMOS1", "/0111111111/EMOS2"}
    one = xcube.open_events([files[3]])  # a list, even of one file, is an archive
    assert isinstance(one, xr.DataTree) and set(_leaves(one)) == {"/0222222222/EMOS1"}


def test_open_archive_reads_headers_only(archive):
    root, _ = archive
    with pytest.warns(UserWarning, match="skipping"):
        tree = xcube.open_archive(root)
    leaves = _leaves(tree)
    assert set(leaves) == set(EXPECTED)
    for path, n in EXPECTED.items():
        node = leaves[path]
        assert not node.data_vars  # nothing opened
        assert node.attrs["n_events"] == n
        assert node.attrs["exposure"] == pytest.approx(1.0e4)
        ev = xcube.open_events(node.attrs["path"])  # open one when needed
        assert ev.sizes["event"] == n


def test_empty_directory_and_no_readable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path.name}: directory holds no event files"):
        xcube.open_events(tmp_path)
    (tmp_path / "bad.fits").write_text("garbage")
    with pytest.warns(UserWarning, match=r"skipping .*bad\.fits: .*not a FITS file"):
        with pytest.raises(FileNotFoundError, match="no readable event files among 1 path"):
            xcube.open_archive(tmp_path)


def test_a_directory_reached_through_a_symbolic_link_is_opened(make_event_file, tmp_path):
    """open_events(dir) did not follow symbolic links to directories ("holds no event files"); loops end."""
    real = tmp_path / "real"
    real.mkdir()
    make_event_file(n=300, name="real/m1.fits")
    top = tmp_path / "top"
    top.mkdir()
    (top / "link").symlink_to(real, target_is_directory=True)
    (real / "loop").symlink_to(top, target_is_directory=True)  # a loop back up
    tree = xcube.open_events(top)
    assert [n.ds.sizes["event"] for n in tree.leaves] == [300]
