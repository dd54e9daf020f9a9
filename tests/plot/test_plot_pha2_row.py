"""``xcube plot 'file.pha{k}'``: a row of a PHA type II file, named as XSPEC,
``read_spectrum`` and ``xcube info`` name it (the plot error of the whole
file suggests that form; it used to fail with "no such file")."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

import xcube.plot as xplot


def _pha2(path, n_rows=3, n_chan=64):
    """A tgextract-style PHA type II file: vector CHANNEL/COUNTS, per-row EXPOSURE and BACKSCAL."""
    rng = np.random.default_rng(5)
    cols = [fits.Column("SPEC_NUM", "I", array=np.arange(1, n_rows + 1)),
            fits.Column("CHANNEL", f"{n_chan}I", array=np.tile(np.arange(1, n_chan + 1), (n_rows, 1))),
            fits.Column("COUNTS", f"{n_chan}J", "count", array=rng.poisson(5, (n_rows, n_chan)) + 1),
            fits.Column("EXPOSURE", "D", "s", array=1000.0 + np.arange(n_rows)),
            fits.Column("BACKSCAL", "E", array=np.ones(n_rows))]
    h = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    h.header.update(dict(HDUCLASS="OGIP", HDUCLAS1="SPECTRUM", HDUCLAS2="TOTAL", HDUCLAS3="COUNT",
                         HDUCLAS4="TYPE:II", TELESCOP="CHANDRA", INSTRUME="ACIS", CHANTYPE="PI", DETCHANS=n_chan,
                         POISSERR=True, AREASCAL=1.0, BACKFILE="none", RESPFILE="none", ANCRFILE="none",
                         CORRFILE="none", CORRSCAL=0.0))
    fits.HDUList([fits.PrimaryHDU(), h]).writeto(path)
    return path


def test_plot_a_row_of_a_pha_type2_file(tmp_path, monkeypatch):
    pha = _pha2(tmp_path / "pha2.pha")
    with pytest.raises(ValueError, match=r"pha2\.pha\{k\}"):  # the whole file: the error names the row form
        xplot.plot_file(pha)
    monkeypatch.chdir(tmp_path)
    outs = xplot.plot_files(["pha2.pha{2}", "pha2.pha{3}"], dpi=40)
    assert [p.name for p in outs] == ["pha2{2}.png", "pha2{3}.png"] and all(p.exists() for p in outs)
    fig = xplot.plot_file(pha.parent / "pha2.pha{1}")
    assert "pha2.pha{1}" in fig.axes[0].get_title()


def test_plot_command_takes_a_row(tmp_path, capsys):
    from xcube.cli import main

    pha = _pha2(tmp_path / "pha2.pha")
    out = tmp_path / "row2.png"
    assert main(["plot", f"{pha}{{2}}", "--out", str(out), "--dpi", "40"]) == 0 and out.exists()
    assert main(["plot", f"{tmp_path / 'missing.pha'}{{2}}", "--out", str(tmp_path / "m.png")]) != 0
    assert "missing.pha" in capsys.readouterr().err
    lc = tmp_path / "not_a_spectrum.fits"
    fits.HDUList([fits.PrimaryHDU(np.zeros((4, 4)))]).writeto(lc)
    assert main(["plot", f"{lc}{{2}}", "--out", str(tmp_path / "i.png")]) != 0
    assert "PHA type II" in capsys.readouterr().err
