"""Every command's ``--help`` has a description and shows its defaults; one
screening default for ``xcube lc``, ``image``, ``spectrum`` and ``search``."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
from astropy.io import fits

from xcube.cli import HelpFormatter, _subparsers, build_parser, main


def test_every_command_has_a_description_and_shows_defaults():
    parsers = list(_subparsers(build_parser()))
    assert len(parsers) >= 20
    formatter = HelpFormatter("xcube")
    for p in parsers:
        assert p.description and len(p.description) > 20, f"{p.prog} --help has no description"
        assert p.formatter_class is HelpFormatter
        for action in p._actions:
            default = action.default
            if not action.option_strings or default in (None, False, argparse.SUPPRESS) or action.help is None:
                continue
            assert "default" in formatter._get_help_string(action).lower(), (p.prog, action.option_strings)
        p.format_help()  # every help renders (no stray % in the defaults)


def test_help_text_of_a_command(capsys):
    with pytest.raises(SystemExit):
        main(["spectrum", "--help"])
    out = capsys.readouterr().out
    assert "standard channel grid" in out and "--screen, --no-screen" in out and "(default: True)" in out
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    out = capsys.readouterr().out
    assert "(default: 50.0)" in out and "0.2 12 for XMM-Newton" in out and "--no-screen" in out


def test_one_screening_default_for_every_product_command(make_event_file, tmp_path):
    n = 4000
    flag = np.where(np.arange(n) % 4 == 0, 2, 0).astype(np.int32)  # a quarter of the events fail FLAG == 0
    f = make_event_file(n=n, columns={"FLAG": flag})
    pattern = fits.getdata(f, "EVENTS")["PATTERN"]
    good = int(((flag == 0) & (pattern <= 12)).sum())
    assert main(["lc", str(f), "--time-bin", "1000", "--out", str(tmp_path / "s.lc")]) == 0
    assert main(["lc", str(f), "--time-bin", "1000", "--no-screen", "--out", str(tmp_path / "a.lc")]) == 0
    assert int(fits.getdata(tmp_path / "s.lc", "RATE")["COUNTS"].sum()) == good
    assert int(fits.getdata(tmp_path / "a.lc", "RATE")["COUNTS"].sum()) == n
    assert main(["spectrum", str(f), "--out", str(tmp_path / "s.pha")]) == 0
    assert main(["spectrum", str(f), "--no-screen", "--out", str(tmp_path / "a.pha")]) == 0
    in_grid = int((fits.getdata(f, "EVENTS")["PI"] <= 11999).sum())  # MOS grid: PI 0-11999
    assert int(fits.getdata(tmp_path / "a.pha", "SPECTRUM")["COUNTS"].sum()) == in_grid
    assert int(fits.getdata(tmp_path / "s.pha", "SPECTRUM")["COUNTS"].sum()) < in_grid
    assert main(["image", str(f), "--bin-size", "400", "--out", str(tmp_path / "s.fits")]) == 0
    assert main(["image", str(f), "--bin-size", "400", "--no-screen", "--out", str(tmp_path / "a.fits")]) == 0
    assert int(fits.getdata(tmp_path / "s.fits").sum()) == good
    assert int(fits.getdata(tmp_path / "a.fits").sum()) == n
    assert main(["lc", str(f), "--time-bin", "1000", "--screen", "--out", str(tmp_path / "b.lc")]) == 0  # explicit
