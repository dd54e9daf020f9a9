"""Detection efficiency of ``xcube.search_transients`` against flare amplitude,
false detections in observations without flares, and the gain of the
half-bin shifted grids.

Usage::

    python benchmarks/efficiency.py [--obs 10] [--out /tmp/xcube-efficiency.png] [--seed 1] [--shifts] [--binomial]

The grid is ``xcube.simulate.efficiency`` (the function users call to
calibrate their own parameter sets): flares injected at the event level into
20 ks XMM-pn observations (particle background, ten constant sources, no
soft-proton flares), three per observation at different times and random
positions within 10' of the pointing, Gaussian in time with sigma = the frame
length (5, 50 or 200 s), peak amplitudes from 0.01 to 3 ct/s. A flare is
recovered when a peak detection lies within 10" of it (also shown: within
20", one cell) and its flagged frames (one frame of slack) hold the flare
peak. False detections: the same observations without flares, with the
summary's expected false alarms (the expected number of flagged voxels) and
the flagged voxels actually found.

``--shifts`` runs the same observations (same seeds) again with
``shifts=True`` and prints the efficiency gain and the time ratio;
``--binomial`` adds the binomial check of the expected false alarms on a few
observations. Default run: a few minutes on 2 cores (twice that with
``--shifts``). Prints tables and saves a PNG plot.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import _bench_env  # noqa: F401  (numba's cache and bytecode go to a temporary directory)
import numpy as np

TIME_BINS = (5.0, 50.0, 200.0)
AMPLITUDES = (0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2, 3.0)  # ct/s at the peak
DURATION = 20_000.0
N_FLARES = 3
MATCH_ARCSEC = 10.0


def binomial_false_alarms(res, sigma=3.0):
    """Expected flagged peak voxels when, as in the search, mu is built from
    the frame's own background counts L: outside the source mask, a pixel's
    counts given L are Binomial(L, T[p]) (T the template, summing to 1 over
    those pixels), not Poisson(T[p] L); inside the mask Poisson(mu) is kept.
    Returns (binomial-based, Poisson-based) sums over the cube's voxels."""
    from scipy import stats

    import xcube
    from xcube.transients import background

    cube = res.cube
    bad = cube["bad_frame"].values
    model = background.background_model(cube, cube["bti"].values, bad)
    mask = model["source_mask"].values.ravel()
    lc = np.asarray(model["light_curve"].values)
    sub = model["subset"].values
    totals = cube.sum(("y", "x")).values
    expo = cube["exposure"].values
    rate = model["source_rate"].values.ravel()
    out_b = out_p = 0.0
    keys = np.stack([sub, lc, expo], axis=1)[(sub >= 0) & (totals > 0)]
    uniq, n_frames = np.unique(keys, axis=0, return_counts=True)
    for (s, L, e), w in zip(uniq, n_frames):
        t = (model["template_bti"] if s == 1 else model["template_gti"]).values.ravel()
        mu = t * L + rate * e
        ok = np.isfinite(mu)
        nmin = np.asarray(xcube.bayes.n_peak_min(mu[ok], sigma))
        pois = stats.poisson.sf(nmin - 1, mu[ok])
        binom = np.where(mask[ok], pois, stats.binom.sf(nmin - 1, int(L), np.clip(t[ok], 0, 1)))
        out_b += w * binom.sum()
        out_p += w * pois.sum()
    return out_b, out_p


def print_grid(ds, title):
    print(f"\n{title}")
    w10, w20 = 'within 10"', 'within 20"'
    print(f"{'frame [s]':>9s} {'amplitude [ct/s]':>16s} {'flare counts':>12s} {w10:>11s} "
          f"{'efficiency':>10s} {w20:>11s} {'efficiency':>10s} {'peak in bad frame':>17s}")
    for tb in ds.time_bin.values:
        for amp in ds.amplitude.values:
            p = ds.sel(time_bin=tb, amplitude=amp)
            n, k, k20 = int(p.n_injected), int(p.n_recovered), int(p.n_recovered_cell)
            print(f"{tb:9g} {amp:16g} {float(p.flare_counts):12.1f} {k:>5d}/{n:<5d} {k / n:10.2f} "
                  f"{k20:>5d}/{n:<5d} {k20 / n:10.2f} {int(p.n_peak_in_bad_frame):>17d}")
    print(f"false detections per observation without flares ({int(ds.n_false_observations)} observations per "
          "frame length; expected = summary's expected false alarms, in voxels):")
    for tb in ds.time_bin.values:
        p = ds.sel(time_bin=tb)
        ratio = float(p.flagged_voxels) / float(p.expected_false_alarms) if float(p.expected_false_alarms) else np.nan
        print(f"  {tb:g} s: {float(p.false_detections):.2f} detections, {float(p.flagged_voxels):.2f} flagged voxels,"
              f" {float(p.expected_false_alarms):.2f} expected (voxels/expected {ratio:.2f})")


def run(n_obs=10, seed=1, out=os.path.join(tempfile.gettempdir(), "xcube-efficiency.png"), shifts=False,
        binomial=False):
    import xcube

    print(f"injected flares: {N_FLARES} per {DURATION / 1e3:g} ks pn observation, {n_obs} observations per point, "
          f"sigma in time = frame length; load average {os.getloadavg()[0]:.2f}")
    common = dict(time_bins=TIME_BINS, amplitudes=AMPLITUDES, n_obs=n_obs, duration=DURATION, n_flares=N_FLARES,
                  match_arcsec=MATCH_ARCSEC, seed=seed)
    t0 = time.perf_counter()
    ds = xcube.simulate.efficiency(**common)
    t_plain = time.perf_counter() - t0
    print_grid(ds, f"search_transients (default options), {t_plain:.0f} s")
    a50 = xcube.simulate.amplitude_at(ds)
    print("amplitude at 50 % efficiency (interpolated in log amplitude): " + ", ".join(
        f"{tb:g} s: {a:.3g} ct/s" for tb, a in zip(a50.time_bin.values, a50.values)))
    grids = {"default": ds}
    if shifts:
        t0 = time.perf_counter()
        dss = xcube.simulate.efficiency(**common, shifts=True)
        t_shift = time.perf_counter() - t0
        grids["shifts=True"] = dss
        print_grid(dss, f"search_transients(shifts=True), {t_shift:.0f} s ({t_shift / t_plain:.2f}x the time)")
        b50 = xcube.simulate.amplitude_at(dss)
        gain = dss["n_recovered"].sum() - ds["n_recovered"].sum()
        print(f"gain of the shifted grids: {int(gain)} more flares recovered of {int(ds['n_injected'].sum())} "
              f"({int(ds['n_recovered'].sum())} -> {int(dss['n_recovered'].sum())}); amplitude at 50 %: " + ", ".join(
                  f"{tb:g} s: {a:.3g} -> {b:.3g} ct/s" for tb, a, b in zip(a50.time_bin.values, a50.values,
                                                                           b50.values)))
        for tb in TIME_BINS:
            d = (dss["efficiency"] - ds["efficiency"]).sel(time_bin=tb).values
            print(f"  {tb:g} s frames, efficiency change per amplitude: " + " ".join(f"{v:+.2f}" for v in d))
    if binomial:
        _binomial(n_obs)
    _plot(grids, out)


def _binomial(n_obs):
    import xcube

    print("\nbinomial check of the expected false alarms (observations without flares):")
    for tb in TIME_BINS:
        vox = exp = expb = 0.0
        for k in range(n_obs):
            ev, _ = xcube.simulate.event_list("xmm-pn", duration=DURATION, seed=10_000 + k, sources=10,
                                              soft_protons=0)
            res = xcube.search_transients(ev, time_bin=tb)
            s = res.summary
            b, p = binomial_false_alarms(res)
            vox += s["flagged_voxels"]["peak"] + s["flagged_voxels"]["eclipse"]
            exp += s["expected_false_alarms"]["peak"] + s["expected_false_alarms"]["eclipse"]
            expb += b + s["expected_false_alarms"]["eclipse"] + (s["expected_false_alarms"]["peak"] - p)
        print(f"  {tb:g} s: flagged voxels / Poisson expectation {vox / exp if exp else np.nan:.2f}, "
              f"/ binomial expectation {vox / expb if expb else np.nan:.2f}")


def _plot(grids, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    for (label, ds), ls in zip(grids.items(), ("-", ":")):
        for tb, c in zip(ds.time_bin.values, ("C0", "C1", "C2")):
            p = ds.sel(time_bin=tb)
            ax.errorbar(ds.amplitude.values, p.efficiency.values, yerr=p.efficiency_err.values, marker="o", color=c,
                        ls=ls, capsize=2, label=f"{tb:g} s frames, {label}")
    ax.set_xscale("log")
    ax.set_xlabel("flare peak rate [ct/s] (Gaussian, sigma = frame length)")
    ax.set_ylabel("detection efficiency (within 10\")")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"xcube.simulate.efficiency, 3 sigma, {DURATION / 1e3:g} ks pn")
    ds = grids["default"]
    x = np.arange(ds.sizes["time_bin"])
    ax2.bar(x - 0.2, ds.expected_false_alarms.values, 0.2, label="expected false alarms")
    ax2.bar(x, ds.flagged_voxels.values, 0.2, label="flagged voxels")
    ax2.bar(x + 0.2, ds.false_detections.values, 0.2, label="detections")
    ax2.set_xticks(x, [f"{t:g} s" for t in ds.time_bin.values])
    ax2.set_ylabel("per observation")
    ax2.set_title("no flares injected")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"\nplot saved to {Path(out).resolve()}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="detection efficiency and false detections of the transient search")
    ap.add_argument("--obs", type=int, default=10, help="observations per (frame length, amplitude) point")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "xcube-efficiency.png"),
                    help="where the plot goes (default: the temporary directory)")
    ap.add_argument("--shifts", action="store_true", help="also search with shifts=True and print the gain")
    ap.add_argument("--binomial", action="store_true", help="binomial check of the expected false alarms")
    a = ap.parse_args()
    run(a.obs, a.seed, a.out, a.shifts, a.binomial)
