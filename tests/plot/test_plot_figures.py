"""Every figure function renders on generated data and returns a Figure; the
broken-axis light curve is compared pixel by pixel with a reference drawn
by hand from the same configuration."""
from __future__ import annotations

from types import SimpleNamespace

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.figure import Figure

import xcube
import xcube.plot as xplot
from xcube.products import lightcurve_from_counts


def gap_lightcurve(with_background=False):
    """30 bins of 10 s, GTIs [0, 100) and [200, 300): bins 10-19 have no exposure."""
    from xcube import gti as gtimod

    lo = np.arange(30) * 10.0
    hi = lo + 10.0
    gti = (np.array([0.0, 200.0]), np.array([100.0, 300.0]))
    exp = gtimod.exposure_per_bin(lo, hi, gti)
    counts = np.where(exp > 0, np.random.default_rng(3).poisson(50, 30), 0)
    c = xr.DataArray(counts, dims="time", coords={"time": 0.5 * (lo + hi), "time_lo": ("time", lo),
                                                  "time_hi": ("time", hi), "exposure": ("time", exp),
                                                  "fracexp": ("time", exp / 10.0)})
    bkg = xr.full_like(c, 10) if with_background else None
    return lightcurve_from_counts(c, gti=gti, bkg_counts=bkg, area_ratio=0.2 if with_background else None,
                                  attrs={"mjdref": 50814.0, "mission": "XMM"})


def pixels(fig: Figure) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig.set_dpi(80)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba(), dtype=float)[..., :3] / 255.0


def reference(lc) -> Figure:
    """The known-good figure drawn by hand: two panels (one per GTI) of equal
    width sharing y, steps with error bars, no data in the gap; no tick label
    at either side of the break (the '200' would reach into the first panel)."""
    from matplotlib.ticker import FixedLocator, MaxNLocator

    fig = Figure(figsize=(10, 3.2))
    axes = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [0.5, 0.5], "wspace": 0.06})
    fig.subplots_adjust(bottom=0.2)
    t, y, e = lc["time"].values, lc["rate"].values, lc["rate_err"].values
    for ax, (a, b), prune in zip(axes, [(0.0, 100.0), (200.0, 300.0)], ["upper", None]):
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, prune=prune) if a == 0 else FixedLocator([225, 250, 275, 300]))
        sel = (t >= a) & (t < b)
        ax.step(t[sel], y[sel], where="mid", color="k", lw=0.9)
        ax.errorbar(t[sel], y[sel], yerr=e[sel], fmt="none", ecolor="k", lw=0.5, alpha=0.5)
        ax.set_xlim(a, b)
    axes[0].spines["right"].set_visible(False)
    axes[1].spines["left"].set_visible(False)
    axes[1].tick_params(left=False, labelleft=False)
    axes[0].set_ylabel("count rate [count/s]")
    fig.supxlabel("time - 0.000 [s]  (T0 = 1997-12-31T23:58:56.816 UTC)", fontsize=10, y=0.02)  # MJDREF 50814 TT
    return fig


def test_broken_axis_light_curve_matches_the_reference_image():
    lc = gap_lightcurve()
    fig = xplot.broken_lightcurve(lc)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_xlim() == (0.0, 100.0) and fig.axes[1].get_xlim() == (200.0, 300.0)
    got, ref = pixels(fig), pixels(reference(lc))
    assert got.shape == ref.shape
    differ = np.abs(got - ref).max(axis=2) > 0.25
    assert differ.mean() < 0.004, f"{differ.mean():.4f} of the pixels differ from the reference"
    # the comparison can fail: one continuous axis through the gap is far from the reference
    wrong = Figure(figsize=(10, 3.2))
    ax = wrong.add_subplot()
    ax.step(lc["time"].values, lc["rate"].values, where="mid", color="k", lw=0.9)
    assert (np.abs(pixels(wrong) - ref).max(axis=2) > 0.25).mean() > 4 * max(differ.mean(), 0.004)


def test_broken_axis_overlays_background_and_net_and_merges_short_gaps():
    lc = gap_lightcurve(with_background=True)
    fig = xplot.broken_lightcurve(lc, title="src")
    labels = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert labels == ["total", "background", "net"]
    assert len(xplot.broken_lightcurve(lc, min_gap=150.0).axes) == 1  # the 100 s gap is shorter: one panel
    assert len(xplot.broken_lightcurve(lc, max_panels=1).axes) == 1


def test_light_curve_figures_render():
    lc = gap_lightcurve()
    assert isinstance(xplot.lightcurve(lc, gti=(lc["gti_start"].values, lc["gti_stop"].values)), Figure)
    from xcube.products import stitch

    a, b = lc.copy(), lc.copy()
    b.attrs = dict(lc.attrs, mission="NuSTAR", mjdref=55197.00076601852, obs_id="b")
    a.attrs["obs_id"] = "a"
    fig = xplot.long_term_lightcurve(stitch([a, b]))
    assert fig.axes[0].get_xlabel() == "MJD (TT)" and len(fig.axes[0].get_legend().get_texts()) == 2


def test_power_spectrum_and_hid_figures_render():
    t = np.sort(np.random.default_rng(1).uniform(0, 2000, 20_000))
    ev = xr.Dataset({"time": ("event", da.from_array(t, chunks=5000)), "gti_start": ("gti", [0.0]),
                     "gti_stop": ("gti", [2000.0])})
    p = xcube.power_spectrum(ev, segment=100.0, dt=0.1, rebin=-0.05)
    fig = xplot.power_spectrum(p)
    assert fig.axes[0].get_xscale() == "log" and "Leahy" in fig.axes[0].get_ylabel()
    stack = xcube.power_spectrum([ev, ev], segment=100.0, dt=0.1, norm="frac")
    assert "frequency x" in xplot.power_spectrum(stack, freq_power=True).axes[0].get_ylabel()
    lc = xr.Dataset({"rate": (("band", "time"), np.abs(np.random.default_rng(2).normal(5, 1, (2, 50)))),
                     "rate_err": (("band", "time"), np.full((2, 50), 0.3))},
                    coords={"time": np.arange(50.0), "band": ["a", "b"], "energy_lo": ("band", [0.5, 2.0]),
                            "energy_hi": ("band", [2.0, 10.0])})
    fig = xplot.hardness_intensity(xcube.hardness_ratio(lc))
    assert fig.axes[0].get_ylim() == (-1.05, 1.05)


@pytest.fixture(scope="module")
def search_like():
    """The public attributes of a transient-search result, built from binned events."""
    rng = np.random.default_rng(5)
    n = 20_000
    t = np.sort(rng.uniform(0, 2000, n))
    x, y = rng.uniform(0, 1000, n), rng.uniform(0, 1000, n)
    x[-300:], y[-300:] = 500 + rng.normal(0, 5, 300), 500 + rng.normal(0, 5, 300)  # a "flare" at the end
    order = np.argsort(t)
    ev = xr.Dataset({"time": ("event", t[order]), "x": ("event", x[order]), "y": ("event", y[order]),
                     "gti_start": ("gti", [0.0]), "gti_stop": ("gti", [2000.0])})
    edges = np.arange(0.0, 1001.0, 50.0)
    cube = xcube.bin_events(ev, time=100.0, x=edges, y=edges)
    expected = (cube.mean("time") * xr.ones_like(cube, dtype=float)).transpose("time", "y", "x")
    lcs = xr.Dataset({"counts": (("detection", "time"), cube.isel(x=[10], y=[10]).values[:, :, 0].T),
                      "expected": (("detection", "time"), expected.isel(x=[10], y=[10]).values[:, :, 0].T)},
                     coords={c: cube[c] for c in ("time", "time_lo", "time_hi")})
    lcs["log10_bayes_peak"] = xcube.bayes.log10_bayes_peak(lcs["counts"], lcs["expected"])
    lcs["log10_bayes_eclipse"] = xcube.bayes.log10_bayes_eclipse(lcs["counts"], lcs["expected"])
    lcs["bti"] = xr.zeros_like(lcs["counts"], dtype=bool)
    lcs["bad_frame"] = xr.zeros_like(lcs["counts"], dtype=bool)
    table = pd.DataFrame({"detection": [0], "kind": ["peak"], "name": ["J0"], "x": [525.0], "y": [525.0],
                          "log10_bayes": [float(lcs["log10_bayes_peak"].max())]})
    return SimpleNamespace(cube=cube, expected=expected, image=cube.sum("time").compute(), detections=table,
                           lightcurves=lcs, params={"sigma": 3.0, "size_arcsec": 20.0}, run_id="test")


def test_sky_and_search_figures_render(search_like):
    res = search_like
    assert isinstance(xplot.cube_frame(res.cube, 19), Figure)
    assert "t = 1050.0" in xplot.cube_frame(res.cube, 1000.0).axes[0].get_title()
    fig = xplot.bayes_map(res, "peak")
    assert "log10 B_peak" in fig.axes[1].get_ylabel()
    assert isinstance(xplot.bayes_map(xcube.bayes.log10_bayes_eclipse(res.cube, res.expected), "eclipse"), Figure)
    with pytest.raises(ValueError, match="kind"):
        xplot.bayes_map(res, "dip")
    fig = xplot.detection_summary(res, 0)
    texts = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]  # [image, light curve, colour bar]
    assert "counts" in texts and any(s.startswith("peak >") for s in texts)
    assert isinstance(xplot.detections(res.image, res.detections), Figure)
    assert isinstance(xplot.detection_lightcurves(res.lightcurves, res.detections), Figure)
    assert isinstance(xplot.image(res.image), Figure)


def test_plot_file_and_save(tmp_path, make_event_file):
    ev = xcube.open_events(make_event_file(n=5000))
    lc_path = xcube.write_lightcurve(tmp_path / "a.lc", xcube.lightcurve(ev, 100.0))
    from xcube.io.powspec import write_power_spectrum

    pds_path = write_power_spectrum(tmp_path / "p.fits", xcube.power_spectrum(ev, segment=1000.0, dt=1.0))
    img_path = xcube.write_image(tmp_path / "i.fits", xcube.image(ev, 400.0, x_range=(20000, 32000),
                                                                  y_range=(20000, 32000)))
    for path, kind in ((lc_path, "lightcurve"), (pds_path, "power_spectrum"), (img_path, "image")):
        assert xplot.files.product_kind(path) == kind
        out = xplot.save_figure(xplot.plot_file(path), tmp_path / f"{kind}.png")
        assert out.stat().st_size > 5000
    with pytest.raises(ValueError, match="event list"):
        xplot.plot_file(make_event_file(n=10))
