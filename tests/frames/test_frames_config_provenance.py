"""The result's attrs["config"] describes the settings its numbers were made with (sweep p20/e D3): after
``--set zero_point=20 gain=3 --steps kcd`` (or a new aper) the photometry is the earlier step p's, so the config
keeps its zero_point, gain and aper; the new values are not applied, and a warning says to rerun step p."""
from __future__ import annotations

import json
import logging

import pytest

import xcube
from xcube.cli import main
from xcube.frames import simulate
from xcube.frames.store import read_dataset

SMALL = {"n_frames": 10, "shape": (128, 128), "n_stars": 12, "max_dither": 6.0, "n_bias": 3, "n_flat": 3}


def _config(ds):
    c = ds.attrs["config"]
    return json.loads(c) if isinstance(c, str) else c


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames-provenance")
    simulate.night(root / "raw", seed=3, **SMALL)
    xcube.frames.run(root / "raw", root / "red", aper=(4.0, 6.0), progress=False)
    return root


def test_rerun_of_kcd_records_the_photometry_settings(reduced, caplog, capsys):
    raw, red = reduced / "raw", reduced / "red"
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        assert main(["frames", "run", str(raw), str(red), "--steps", "kcd", "--set", "zero_point=20", "gain=3",
                     "aper=(5.0,)", "pick_ref_n=5"]) == 0
    capsys.readouterr()
    res = read_dataset(red / "lc_V1234Cyg_R.zarr")
    cfg = _config(res)
    assert res.attrs["zero_point"] == 25.0 and cfg["zero_point"] == 25.0       # what the mags were made with
    assert res.attrs["gain"] == pytest.approx(1.5) and cfg["gain"] is None     # from EGAIN, not 3
    assert cfg["aper"] == [4.0, 6.0] == res["aperture_setting"].values.tolist()
    assert cfg["pick_ref_n"] == 5 and len(res.attrs["comparisons"]) <= 5       # step k did run with it
    said = [r.getMessage() for r in caplog.records if "zero_point" in r.getMessage()]
    assert len(said) == 1, said                                                 # once, not per step
    assert "gain" in said[0] and "aper" in said[0] and "rerun from step p" in said[0] and "'pkcd'" in said[0]

    # step d alone: the picks are step k's (pick_ref_n=5 above), whatever this run says
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        res = xcube.frames.run(raw, red, steps="d", pick_ref_n=3, aper=(4.0, 6.0), progress=False)
    assert _config(res)["pick_ref_n"] == 5 and _config(read_dataset(red / "lc_V1234Cyg_R.zarr"))["pick_ref_n"] == 5
    assert "pick_ref_n=5" in caplog.text and "rerun from step k" in caplog.text and "aper" not in caplog.text


def test_full_run_records_its_own_settings_and_border_cut_comes_from_the_frames(reduced, tmp_path, caplog):
    res = xcube.frames.run(reduced / "raw", tmp_path / "red", steps="all", zero_point=20.0, aper=(5.0,),
                           offset_method="stars", border_cut=4, progress=False)
    cfg = _config(res)
    assert cfg["zero_point"] == 20.0 == res.attrs["zero_point"] and cfg["aper"] == [5.0]
    assert cfg["offset_method"] == "stars" and cfg["on_exist"] == "append" and cfg["border_cut"] == 4
    # offsets and photometry remade without step i: the frames are still trimmed by 4 px
    with caplog.at_level(logging.WARNING, logger="xcube.frames"):
        res = xcube.frames.run(reduced / "raw", tmp_path / "red", steps="opkcd", zero_point=20.0, aper=(5.0,),
                               progress=False)
    assert _config(res)["border_cut"] == 4 == res.attrs["border_cut"] and _config(res)["offset_method"] == "xcorr"
    assert "border_cut=4" in caplog.text and "rerun from step i" in caplog.text
