"""Figure names of several products of one stem (``plot_files``,
``figure_paths``) and tick labels on every panel of a broken-axis light curve
with many GTIs of very different lengths (synthetic, and the NuSTAR event
list of ../shared/data/real where present)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import real_file

import xcube
import xcube.plot as xplot
from xcube.products import lightcurve_from_counts

PNG = b"\x89PNG\r\n\x1a\n"


# 1. two products of one stem: two figures, each of its product
def test_products_of_one_stem_get_distinct_figures(tmp_path, make_event_file, monkeypatch):
    import matplotlib.image as mpimg

    ev = xcube.open_events(make_event_file(n=5000))
    lc = xcube.write_lightcurve(tmp_path / "src.lc", xcube.lightcurve(ev, 100.0))
    pha = xcube.write_spectrum(tmp_path / "src.pha", xcube.spectrum(ev))
    figs = tmp_path / "figs"
    outs = xplot.plot_files([lc, pha], f"{figs}/", dpi=50)
    assert outs == [figs / "src.lc.png", figs / "src.pha.png"]
    sizes = []
    for out in outs:
        assert out.read_bytes()[:8] == PNG
        sizes.append(mpimg.imread(out).shape[:2])
    # each figure is its product's: a broken-axis light curve (10 x 3.2 in), a spectrum (6 x 4 in), at 50 dpi
    assert sizes == [(160, 500), (200, 300)]
    # again: every target is checked before drawing, and the message names the other default
    with pytest.raises(FileExistsError, match="exists"):
        xplot.plot_files([lc, pha], f"{figs}/")
    assert len(xplot.plot_files([lc, pha], f"{figs}/", dpi=50, overwrite=True)) == 2
    # one product alone keeps its short name (src.png), in the current directory by default
    monkeypatch.chdir(tmp_path)
    assert xplot.figure_paths([lc]) == [Path("src.png")]
    assert xplot.plot_files([lc], dpi=50)[0].name == "src.png" and (tmp_path / "src.png").exists()
    with pytest.raises(FileExistsError, match=r"src\.pha\.png"):  # a separate run with the same stem
        xplot.plot_files([tmp_path / "src.pha"])
    # only colliding stems keep their whole name; one file name in two directories cannot be told apart
    assert [p.name for p in xplot.figure_paths(["a/src.lc", "a/src.pha", "b/other.lc"], "out/")] == [
        "src.lc.png", "src.pha.png", "other.png"]
    with pytest.raises(ValueError, match="share the figure src.lc.png"):
        xplot.figure_paths(["a/src.lc", "b/src.lc"])
    with pytest.raises(ValueError, match="one figure file for 2 products"):
        xplot.figure_paths([lc, pha], tmp_path / "one.png")
    assert xplot.figure_paths([lc], tmp_path / "one.pdf") == [tmp_path / "one.pdf"]


def test_plot_command_takes_several_files(tmp_path, make_event_file, capsys):
    """xcube plot src.lc src.pha: two figures of distinct names (FILE took one name only); --band on a
    product that is not a light curve is an error naming the file (was a TypeError deep in the figure)."""
    from xcube.cli import main

    ev = xcube.open_events(make_event_file(n=5000))
    lc = xcube.write_lightcurve(tmp_path / "src.lc", xcube.lightcurve(ev, 100.0))
    pha = xcube.write_spectrum(tmp_path / "src.pha", xcube.spectrum(ev))
    figs = tmp_path / "figs"
    assert main(["plot", str(lc), str(pha), "--out", f"{figs}/", "--dpi", "40"]) == 0
    assert sorted(p.name for p in figs.iterdir()) == ["src.lc.png", "src.pha.png"]
    assert "src.pha.png: figure of" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"src\.pha: band= picks a band of a multi-band light curve; this file "
                                         r"holds a spectrum"):
        xplot.plot_file(pha, band=0)
    assert main(["plot", str(pha), "--band", "0", "--out", str(tmp_path / "x.png")]) != 0
    assert "band= picks a band" in capsys.readouterr().err


# 2. every panel of a broken time axis names a time
def _many_gtis(seed=1):
    """A 10 s light curve of 60 GTIs of 20 s to 8 ks, gaps of 60 s to 3 ks."""
    from xcube import gti as gtimod

    rng = np.random.default_rng(seed)
    length = np.exp(rng.uniform(np.log(20.0), np.log(8000.0), 60))
    gap = np.exp(rng.uniform(np.log(60.0), np.log(3000.0), 60))
    start = np.concatenate([[0.0], np.cumsum(length + gap)[:-1]])
    stop = start + length
    lo = np.arange(0.0, stop[-1], 10.0)
    exp = gtimod.exposure_per_bin(lo, lo + 10.0, (start, stop))
    c = xr.DataArray(np.where(exp > 0, rng.poisson(5, lo.size), 0), dims="time",
                     coords={"time": lo + 5.0, "time_lo": ("time", lo), "time_hi": ("time", lo + 10.0),
                             "exposure": ("time", exp), "fracexp": ("time", exp / 10.0)})
    return lightcurve_from_counts(c, gti=(start, stop), attrs={"mjdref": 50814.0, "mission": "XMM"})


def _check_every_panel_labelled(fig):
    """Every axes shows at least one x tick label inside its range; no two labels overlap, nor the axis label."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    r = fig.canvas.get_renderer()
    boxes = []
    for i, ax in enumerate(fig.axes):
        x0, x1 = ax.get_xlim()
        shown = [t for t in ax.get_xticklabels()
                 if t.get_visible() and t.get_text() and x0 <= t.get_position()[0] <= x1]
        assert shown, f"panel {i + 1} of {len(fig.axes)} ({x0:.0f}-{x1:.0f} s) has no tick label"
        boxes += [t.get_window_extent(r) for t in shown]
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]
    xlabel = fig._supxlabel.get_window_extent(r)
    assert not [b for b in boxes if b.overlaps(xlabel)]
    return len(fig.axes)


# as many panels as asked for (8 by default), at most as many of 0.25 in as fit the figure (29 in 10 in, 14 in 5 in)
@pytest.mark.parametrize(("kw", "panels"), [({}, 8), ({"max_panels": 20}, 20), ({"max_panels": 200}, 29),
                                            ({"max_panels": 40, "figsize": (5, 3)}, 14)])
def test_every_panel_of_many_gtis_has_a_tick_label(kw, panels):
    fig = xplot.broken_lightcurve(_many_gtis(), **kw)
    assert _check_every_panel_labelled(fig) == panels
    assert min(ax.get_position().width for ax in fig.axes) * fig.get_figwidth() >= 0.249  # [in]


def test_every_panel_of_the_nustar_light_curve_has_a_tick_label():
    path = real_file("nustar", "barycenter_dummy_evt_nustar_B1937.evt")  # 190 GTIs
    lc = xcube.lightcurve(xcube.open_events(path), 10.0)
    assert lc.sizes["gti"] == 190
    for kw in ({}, {"max_panels": 30}):
        assert _check_every_panel_labelled(xplot.broken_lightcurve(lc, **kw)) > 1
