"""The figures checked through their artists (line data, labels, ticks) for
the findings of the plot review: per-grid detection light curves, NET light
curves, the OGIP background scaling, multi-band light curves, bins across a
GTI edge, empty light curves, many GTIs, tick labels, power-spectrum labels,
image WCS, the accessor's keywords and ``xcube plot``."""
from __future__ import annotations

import time
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xcube
import xcube.plot as xplot
from xcube.products import lightcurve_from_counts


def _lc(n=30, width=10.0, gti=((0.0, 100.0), (200.0, 300.0)), bands=None, bkg=False, seed=3):
    from xcube import gti as gtimod

    lo = np.arange(n) * width
    hi = lo + width
    g = (np.array([a for a, _ in gti]), np.array([b for _, b in gti]))
    exp = gtimod.exposure_per_bin(lo, hi, g)
    rng = np.random.default_rng(seed)
    coords = {"time": 0.5 * (lo + hi), "time_lo": ("time", lo), "time_hi": ("time", hi), "exposure": ("time", exp),
              "fracexp": ("time", exp / width)}
    if bands:
        counts = np.where(exp > 0, rng.poisson([[50], [20]], (2, n)), 0)
        lo_hi = [[float(v) for v in b.removesuffix("keV").split("-")] for b in bands]
        c = xr.DataArray(counts, dims=("band", "time"),
                         coords={**coords, "band": list(bands), "energy_lo": ("band", [a for a, _ in lo_hi]),
                                 "energy_hi": ("band", [b for _, b in lo_hi])})
    else:
        c = xr.DataArray(np.where(exp > 0, rng.poisson(50, n), 0), dims="time", coords=coords)
    return lightcurve_from_counts(c, gti=g, bkg_counts=xr.full_like(c, 10) if bkg else None,
                                  area_ratio=0.2 if bkg else None, attrs={"mjdref": 50814.0, "mission": "XMM"})


def _lines(fig):
    return {ln.get_label(): ln for ax in fig.axes for ln in ax.get_lines() if not ln.get_label().startswith("_")}


def _ydata(fig, label):
    return np.concatenate([np.asarray(ln.get_ydata(), float) for ax in fig.axes for ln in ax.get_lines()
                           if ln.get_label() == label])


# 1. detection_summary with shifts: the light curve of the row in the title
def _search(n_det, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(10) * 100.0
    lcs = xr.Dataset({"counts": (("detection", "time"), rng.poisson(5, (n_det, 10)).astype(float)),
                      "expected": (("detection", "time"), np.full((n_det, 10), 5.0))},
                     coords={"time": t + 50, "time_lo": ("time", t), "time_hi": ("time", t + 100)})
    for v in ("log10_bayes_peak", "log10_bayes_eclipse"):
        lcs[v] = xr.zeros_like(lcs["counts"])
    lcs["bti"] = xr.zeros_like(lcs["counts"], dtype=bool)
    lcs["bad_frame"] = xr.zeros_like(lcs["counts"], dtype=bool)
    return lcs


def test_detection_summary_draws_the_light_curve_of_the_row_s_own_grid():
    edges = np.arange(0.0, 201.0, 20.0)
    img = xr.DataArray(np.ones((10, 10)), dims=("y", "x"),
                       coords={"x": edges[:-1] + 10, "y": edges[:-1] + 10, "x_lo": ("x", edges[:-1]),
                               "x_hi": ("x", edges[1:]), "y_lo": ("y", edges[:-1]), "y_hi": ("y", edges[1:])})
    g0, gxy = _search(1, 1), _search(2, 2)
    gxy["counts"][1, 7] = 99.0  # the weak flare of grid xy, its 2nd detection
    g0["counts"][0, 2] = 55.0
    row = {"kind": "peak", "x": 50.0, "y": 50.0}
    merged = pd.DataFrame([dict(row, detection=0, name="A", log10_bayes=8.9, grid="xy", grid_detection=1),
                           dict(row, detection=1, name="B", log10_bayes=20.0, grid="0", grid_detection=0),
                           dict(row, detection=2, name="C", log10_bayes=7.0, grid="t", grid_detection=0)])
    own = {name: SimpleNamespace(lightcurves=lc, detections=pd.DataFrame({"detection": range(lc.sizes["detection"])}))
           for name, lc in (("0", g0), ("xy", gxy))}
    res = SimpleNamespace(detections=merged, lightcurves=g0, image=img, grids=own,
                          params={"sigma": 3.0, "size_arcsec": 20.0}, run_id="r")
    fig = xplot.detection_summary(res, 0)
    np.testing.assert_array_equal(_ydata(fig, "counts"), gxy["counts"].values[1])
    fig = xplot.detection_summary(res, 1)  # an IndexError before
    np.testing.assert_array_equal(_ydata(fig, "counts"), g0["counts"].values[0])
    fig = xplot.detection_summary(res, 2)  # no light curve of grid "t": said, not another one drawn
    assert "counts" not in _lines(fig)
    assert any("no light curve" in t.get_text() for ax in fig.axes for t in ax.texts)


# 2. a NET file's RATE is the net rate
def test_net_light_curve_file_is_labelled_net_and_the_total_rebuilt(tmp_path):
    lc = _lc(bkg=True)
    path = xcube.write_lightcurve(tmp_path / "net.lc", lc, kind="net")
    back = xcube.read_lightcurve(path)
    assert back.attrs.get("rate_kind") == "net" or back.attrs.get("hduclas2") == "NET"
    fig = xplot.plot_file(path)
    labels = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert labels == ["total", "background", "net"]
    net = _ydata(fig, "net")
    good = np.isfinite(back["rate"].values)
    np.testing.assert_allclose(net[np.isfinite(net)], back["rate"].values[good])
    total = _ydata(fig, "total")
    np.testing.assert_allclose(total[np.isfinite(total)], (back["rate"] + back["bkg_rate"]).values[good])
    # without a background column: the total from COUNTS / exposure; without counts either, net alone
    alone = back.drop_vars(["bkg_rate", "bkg_rate_err"])
    total = _ydata(xplot.broken_lightcurve(alone), "total")
    np.testing.assert_allclose(total[np.isfinite(total)], (back["counts"] / back["exposure"]).values[good])
    fig = xplot.broken_lightcurve(alone.drop_vars("counts"))
    assert set(_lines(fig)) == {"net"} and fig.axes[0].get_ylabel() == "net count rate [count/s]"


# 3. background scaled by BACKSCAL and EXPOSURE ratios
def test_spectrum_background_is_scaled_by_area_and_exposure():
    spec = xr.Dataset({"counts": ("channel", np.full(10, 40.0)), "bkg_counts": ("channel", np.full(10, 80.0))},
                      coords={"channel": np.arange(10)},
                      attrs={"backscal": 1.0, "bkg_backscal": 4.0, "exposure": 1000.0, "bkg_exposure": 4000.0})
    fig = xplot.spectrum(spec)
    np.testing.assert_allclose(_ydata(fig, "background (scaled)"), 80.0 * (1.0 * 1000.0) / (4.0 * 4000.0))


# 4. multi-band light curves: one labelled curve per band everywhere
def test_multi_band_light_curves_draw_one_labelled_curve_per_band(tmp_path):
    lc = _lc(bands=("0.5-2keV", "2-10keV"))
    for fig in (xplot.lightcurve(lc), lc.xcube.plot(), xplot.broken_lightcurve(lc), xplot.long_term_lightcurve(lc)):
        texts = [t.get_text() for ax in fig.axes for t in (ax.get_legend().get_texts() if ax.get_legend() else [])]
        assert any("0.5-2keV" in t for t in texts) and any("2-10keV" in t for t in texts), texts
    fig = xplot.broken_lightcurve(lc)
    for i, band in enumerate(lc["band"].values):
        y = _ydata(fig, f"total {band}")
        np.testing.assert_allclose(y[np.isfinite(y)], lc["rate"].values[i][np.isfinite(lc["rate"].values[i])])
    path = xcube.write_lightcurve(tmp_path / "mb.lc", lc)
    fig = xplot.plot_file(path)
    assert {"total 0.5-2keV", "total 2-10keV"} <= set(_lines(fig)) and "2 bands" in fig._suptitle.get_text()
    fig = xplot.plot_file(path, band="2-10keV")
    assert "2-10keV" in fig._suptitle.get_text() and "2-10keV" in fig.axes[0].get_ylabel()
    with pytest.raises(ValueError, match="the bands are"):
        xplot.plot_file(path, band="1-3keV")


# 5. a bin across a GTI edge is drawn
def test_bins_across_a_gti_edge_are_drawn_and_the_panel_widens():
    lc = _lc(n=30, gti=((0.0, 95.0), (205.0, 300.0)))  # bins [90, 100) and [200, 210) are half exposed
    fig = xplot.broken_lightcurve(lc)
    y = _ydata(fig, "total")
    assert np.isfinite(lc["rate"].values).sum() == 20 == np.isfinite(y).sum()
    assert fig.axes[0].get_xlim()[1] == 100.0 and fig.axes[1].get_xlim()[0] == 200.0


# 6. no good time: a clear error naming the file
def test_light_curve_without_good_time_is_refused_naming_the_file():
    lc = _lc(n=5, gti=((0.0, 50.0),)).drop_vars(["gti_start", "gti_stop"])
    lc = lc.assign_coords(exposure=("time", np.zeros(5)))
    lc.attrs["source"] = "/data/empty.lc"
    with pytest.raises(ValueError, match="empty.lc: no good time"):
        xplot.broken_lightcurve(lc)
    assert xplot.lightcurves.gti_groups([], [], 1.0, 8) == []


# 7. many GTIs: linear grouping, the same groups as merging the shortest gaps one by one
def test_gti_groups_is_fast_and_keeps_the_largest_gaps():
    rng = np.random.default_rng(4)
    gaps = rng.integers(1, 50, 300).astype(float)
    start = np.concatenate([[0.0], np.cumsum(10.0 + gaps)])
    stop = start + 10.0

    def slow(start, stop, min_gap, max_panels):  # the former algorithm
        groups = [[start[0], stop[0]]]
        for a, b in zip(start[1:], stop[1:]):
            if a - groups[-1][1] < min_gap:
                groups[-1][1] = b
            else:
                groups.append([a, b])
        while len(groups) > max_panels:
            g = [groups[i + 1][0] - groups[i][1] for i in range(len(groups) - 1)]
            i = int(np.argmin(g))
            groups[i] = [groups[i][0], groups[i + 1][1]]
            del groups[i + 1]
        return [tuple(x) for x in groups]

    for min_gap, panels in ((5.0, 8), (30.0, 3), (0.0, 1), (100.0, 8)):
        assert xplot.lightcurves.gti_groups(start, stop, min_gap, panels) == slow(start, stop, min_gap, panels)
    n = 30_000  # the former algorithm took about a minute
    s = np.arange(n) * 30.0
    t0 = time.perf_counter()
    assert len(xplot.lightcurves.gti_groups(s, s + 10.0, 5.0, 8)) == 8
    assert time.perf_counter() - t0 < 5.0  # (a loaded CI machine: still far from the former minute)


# 8. tick labels do not overlap on narrow panels
def test_tick_labels_of_narrow_panels_do_not_overlap():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    gti = [(0.0, 40000.0)] + [(50000.0 + k * 2000.0, 50200.0 + k * 2000.0) for k in range(6)]
    lc = _lc(n=700, width=100.0, gti=tuple(gti))
    fig = xplot.broken_lightcurve(lc)
    FigureCanvasAgg(fig).draw()
    r = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(r) for ax in fig.axes for t in ax.get_xticklabels()
             if t.get_visible() and t.get_text() and ax.get_xlim()[0] <= t.get_position()[0] <= ax.get_xlim()[1]]
    assert len(boxes) >= 3
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]


# 9. power spectra: units of f x P, a stack's Poisson levels, no legend warning
def test_power_spectrum_labels_poisson_levels_and_no_legend_warning():
    f = np.linspace(0.01, 1.0, 20)
    base = {"freq_lo": ("freq", f - 0.005), "freq_hi": ("freq", f + 0.005)}
    one = xr.Dataset({"power": ("freq", np.full(20, 3.0)), "power_err": ("freq", np.full(20, 0.1))},
                     coords={"freq": f, **base}, attrs={"norm": "frac", "poisson_level": 0.37, "segment": 256.0,
                                                        "n_segments": 5})
    fig = xplot.power_spectrum(one, freq_power=True)
    assert fig.axes[0].get_ylabel() == "frequency x power [(rms/mean)$^2$]"
    assert "/Hz" in xplot.power_spectrum(one).axes[0].get_ylabel()
    stack = xr.Dataset({"power": (("obs", "freq"), np.full((2, 20), 3.0)),
                        "power_err": (("obs", "freq"), np.full((2, 20), 0.1)),
                        "poisson_level": ("obs", [0.3716, 0.3775]), "n_segments": ("obs", [64, 60])},
                       coords={"freq": f, "obs": ["a", "b"], **base}, attrs={"norm": "frac", "segment": 256.0})
    fig = xplot.power_spectrum(stack)
    levels = {k: v.get_ydata()[0] for k, v in _lines(fig).items() if k.startswith("Poisson")}
    assert levels == {"Poisson level a": 0.3716, "Poisson level b": 0.3775}
    assert fig.axes[0].get_title() == "frac, 256 s segments x 64+60"
    sub = one.assign_attrs(noise_subtracted=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert xplot.power_spectrum(sub).axes[0].get_legend() is None


# 10. images: a CD matrix keeps RA/Dec axes; no WCS: sky pixels from LTV/LTM, else "image pixel"
def test_image_file_with_a_cd_matrix_and_without_wcs(tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS

    data = np.arange(400.0).reshape(20, 20)
    h = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 263.66, "CRVAL2": -32.55,
                     "CRPIX1": 10.5, "CRPIX2": 10.5, "CD1_1": -0.001, "CD1_2": 0.0002, "CD2_1": 0.0002,
                     "CD2_2": 0.001, "RADESYS": "FK5", "LTV1": -96.0, "LTM1_1": 0.0125, "LTV2": -89.0,
                     "LTM2_2": 0.0125, "BUNIT": "count"})
    fits.PrimaryHDU(data, h).writeto(tmp_path / "cd.fits")
    ax = xplot.plot_file(tmp_path / "cd.fits").axes[0]
    assert hasattr(ax, "wcs") and ax.get_xlabel() == "RA (FK5)"
    want = WCS(h).world_to_pixel_values(263.665, -32.548)
    np.testing.assert_allclose(ax.wcs.world_to_pixel_values(263.665, -32.548), want, atol=1e-6)
    for k in ("CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CD1_1", "CD1_2", "CD2_1", "CD2_2"):
        del h[k]
    fits.PrimaryHDU(data, h).writeto(tmp_path / "sky.fits")
    ax = xplot.plot_file(tmp_path / "sky.fits").axes[0]
    assert ax.get_xlabel() == "x [sky pixel]"
    x0, x1, y0, _ = ax.images[0].get_extent()
    assert (x0, x1, y0) == ((0.5 + 96.0) / 0.0125, (20.5 + 96.0) / 0.0125, (0.5 + 89.0) / 0.0125)
    fits.PrimaryHDU(data).writeto(tmp_path / "plain.fits")
    assert xplot.plot_file(tmp_path / "plain.fits").axes[0].get_xlabel() == "x [image pixel]"


# 11. accessor: figure keywords reach the figure; a light curve plots as xcube plot draws it
def test_accessor_plot_routes_figure_keywords(make_event_file):
    ev = xcube.open_events(make_event_file(n=3000))
    assert ev.xcube.plot(title="x").axes[0].get_title() == "x"
    assert ev.xcube.plot(kind="image", log=False).axes[0].images[0].norm.__class__.__name__ == "Normalize"
    fig = ev.xcube.plot(kind="lightcurve", time_bin=500.0, title="y", max_panels=1)
    assert fig._suptitle.get_text() == "y" and len(fig.axes) == 1
    assert ev.xcube.plot(kind="image", figure_kw={"cmap": "viridis"}).axes[0].images[0].get_cmap().name == "viridis"
    lc = _lc(bkg=True)
    assert set(_lines(lc.xcube.plot())) == {"total", "background", "net"}
    assert xplot.lightcurve(lc, title="t").axes[0].get_title() == "t"


# 12. xcube plot: search directories, damaged FITS, Zarr without warnings, colliding names
def test_plot_command_rough_edges(tmp_path, capsys, monkeypatch):
    from xcube.cli import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "detections.csv").write_text("detection\n")
    (run / "detections.png").write_bytes(b"")
    assert main(["plot", str(run), "-o", str(tmp_path / "r.png")]) == 1
    err = capsys.readouterr().err
    assert "transient search" in err and "detections.png" in err and "to_zarr" in err
    bad = tmp_path / "trunc.fits"
    bad.write_bytes(b"SIMPLE  =  T")
    assert main(["plot", str(bad), "-o", str(tmp_path / "t.png")]) == 1
    assert "damaged FITS file" in capsys.readouterr().err
    lc = xcube.write_lightcurve(tmp_path / "src.lc", _lc())
    out = tmp_path / "figs"
    out.mkdir()
    assert main(["plot", str(lc), "-o", str(out)]) == 0
    capsys.readouterr()
    (tmp_path / "src.pha").write_bytes(b"")
    assert main(["plot", str(tmp_path / "src.pha"), "-o", str(out)]) == 1
    assert "src.pha.png" in capsys.readouterr().err
    mb = xcube.write_lightcurve(tmp_path / "mb.lc", _lc(bands=("0.5-2keV", "2-10keV")))
    assert main(["plot", str(mb), "--band", "1", "-o", str(tmp_path / "mb.png")]) == 0
    cube = xr.Dataset({"counts": (("time", "y", "x"), np.ones((2, 4, 4))),
                       "expected": (("time", "y", "x"), np.ones((2, 4, 4)))},
                      coords={"time": [0.0, 1.0], "y": np.arange(4.0), "x": np.arange(4.0)})
    cube.to_zarr(tmp_path / "c.zarr", consolidated=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        xplot.plot_file(tmp_path / "c.zarr")


# 13. detection light curves: T0 in UTC
def test_detection_light_curves_give_t0_in_utc():
    lcs = _search(1, 1)
    table = pd.DataFrame({"detection": [0], "kind": ["peak"], "name": ["J0"], "log10_bayes": [9.0]})
    table.attrs = {"mjdref": 50814.0, "timesys": "TT"}
    assert "UTC" in xplot.detection_lightcurves(lcs, table).axes[-1].get_xlabel()


def test_an_output_format_matplotlib_cannot_write_names_the_file(make_event_file, tmp_path, capsys):
    """Sweep p26: the message did not name the output path."""
    from xcube.cli import main

    lc = tmp_path / "a.lc"
    assert main(["lc", str(make_event_file(n=200)), "--time-bin", "100", "--out", str(lc)]) == 0
    capsys.readouterr()
    assert main(["plot", str(lc), "--out", str(tmp_path / "a.xyz")]) == 1
    err = capsys.readouterr().err
    assert "a.xyz" in err and "'xyz'" in err and ".png" in err
    assert not list(tmp_path.glob("*.xyz")) and not list(tmp_path.glob(".*tmp*"))


def test_a_file_that_cannot_be_plotted_does_not_stop_the_others(make_event_file, tmp_path, capsys):
    """Sweep p27: `xcube plot A B C` stopped at the first file it could not plot."""
    from xcube.cli import main

    a, c = tmp_path / "a.lc", tmp_path / "c.lc"
    ev = make_event_file(n=200)
    for lc in (a, c):
        assert main(["lc", str(ev), "--time-bin", "100", "--out", str(lc)]) == 0
    bad = tmp_path / "b.lc"
    bad.write_text("not a FITS file")
    capsys.readouterr()
    assert main(["plot", str(a), str(bad), str(c), "--out", str(tmp_path / "figs") + "/"]) == 1
    err = capsys.readouterr().err
    assert "1 of 3 files not plotted" in err and "b.lc" in err
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["a.png", "c.png"]
