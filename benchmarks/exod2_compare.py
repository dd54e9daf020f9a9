"""xcube's transient search side by side with EXOD2 on the same events.

Usage::

    EXOD2_PATH=/path/to/EXOD2 python benchmarks/exod2_compare.py [--quick] [--timing-only]

``EXOD2_PATH`` is a checkout of https://github.com/nx1/EXOD2 (its ``exod``
package is imported from there; nothing of it is copied here). Without it the
script says so and exits 0. EXOD2 needs ``opencv-python-headless``,
``tqdm``, ``cmasher`` and ``requests`` (not xcube dependencies).

What it does
------------
1. **Same events.** One simulated XMM-pn observation (flares, an eclipse,
   soft-proton flares, and frames where the CCDs of quadrant 1 read nothing,
   one of them the last frame) is written twice: as an OGIP event file for
   xcube, and screened (``PATTERN<=4 && FLAG==0``, what EXOD2's SAS
   pre-processing gives) with the header keys EXOD2 reads.
2. **Masks on a common grid.** EXOD2 runs its own steps (high-energy light
   curve and BTIs, ``DataCube``, partial-CCD frame masks, ``calc_cube_mu``,
   the precomputed Bayes limits), with its cube grid set to xcube's (exact
   20" cells, frames from the GTI start) so that the two cubes can be
   compared voxel by voxel; xcube runs ``search_transients`` with the energy
   band EXOD2 applies (200 < PI < 12000). Every voxel where the peak or
   eclipse masks differ is put in one category: the frame is a BTI frame for
   one and not the other (EXOD2's BTIs start and end one light-curve bin
   early); the frame is bad for one only (``np.roll`` wraps the last frame's
   flag onto the first; the pn rule depends on the BTI flags); EXOD2 has
   left the frame's mu uninitialised (``np.empty``; frames in neither its GTI
   nor its BTI index list); the decision rule (xcube's exact test applied to
   EXOD2's own n and mu disagrees with EXOD2's mask: the strict ``n > n_min``
   peak test, the interpolated table, mu below 1e-7 dropped); or, left over,
   the expected-counts model (same frames, same rule, different mu: OpenCV
   Navier-Stokes inpainting, astropy smoothing without renormalisation and a
   source-mask percentile over all pixels in EXOD2, biharmonic inpainting and
   renormalised templates in xcube).
3. **The rule alone.** EXOD2's mask function and ``xcube.bayes.masks`` on
   the same (n, mu) cube (EXOD2's): the differences are the rule's alone.
4. **Timing and memory.** EXOD2 as it is (its own 401.86-unit grid) and
   xcube, each in a fresh process, on 1e7 events / 50 s and 1e6 events / 5 s
   (100 ks): wall time per step and peak RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _bench_env  # noqa: F401  (numba's cache and bytecode go to a temporary directory)
import numpy as np

HERE = Path(__file__).resolve().parent
EXOD_BAND = (0.201, 12.0)  # keV: EXOD2 keeps 200 < PI < 12000, i.e. PI 201..11999


# --------------------------------------------------------------------------- events
def make_events(out: Path, n_events=None, duration=30_000.0, seed=7, partial_frames=True, time_bin=50.0):
    """Write the xcube event file and the EXOD2 one; return their paths."""
    from astropy.io import fits

    import xcube
    from xcube.select import select

    out.mkdir(parents=True, exist_ok=True)
    # v3: simulated events with RAWX/RAWY (the detector hygiene)
    tag = f"{'n%g' % n_events if n_events else 'd%g' % duration}_s{seed}{'_p' if partial_frames else ''}_v3"
    xfile, efile = out / f"xcube_{tag}.fits", out / f"exod_{tag}.fits"
    if xfile.exists() and efile.exists():
        return xfile, efile
    flares = [dict(t_peak=0.3 * duration, amplitude=0.5, width=100.0),
              dict(t_peak=0.7 * duration, amplitude=0.2, width=20.0)]
    eclipses = [dict(t_start=0.55 * duration, duration=3000.0, depth=1.0, rate=0.6)]
    # soft-proton flares (BTIs): one inside, one running past the end of the observation
    sp = [dict(t_start=0.4 * duration, duration=6000.0, peak_rate=20.0),
          dict(t_start=duration - 2500.0, duration=5000.0, peak_rate=30.0)]
    ev, _ = xcube.simulate.event_list("xmm-pn", duration=duration, seed=seed, n_events=n_events, flares=flares,
                                      eclipses=eclipses, soft_protons=sp, sources=10)
    if partial_frames:
        # quadrant 1 (CCDs 1-3) reads nothing in a frame near the middle and in the last frame
        t0 = float(ev.gti_start.values[0])
        last = float(t0 + (np.ceil(duration / time_bin) - 1) * time_bin)
        mid = float(t0 + np.floor(0.4 * duration / time_bin) * time_bin)
        cut = " || ".join(f"(TIME >= {a!r} && TIME < {a + time_bin!r})" for a in (mid, last))
        ev = select(ev, expr=f"!(CCDNR <= 3 && ({cut}))")
    xcube.simulate.write(xfile, ev, overwrite=True)
    ev = xcube.open_events(xfile)
    scr = select(ev, expr="PATTERN <= 4 && FLAG == 0")
    cols = {c: np.asarray(scr[c].values) for c in ("time", "x", "y", "pi", "pattern", "flag", "ccdnr")}
    n = cols["time"].size
    fcols = [
        fits.Column("TIME", "D", array=cols["time"]), fits.Column("X", "J", array=cols["x"]),
        fits.Column("Y", "J", array=cols["y"]), fits.Column("PI", "J", array=cols["pi"]),
        fits.Column("PATTERN", "B", array=cols["pattern"]), fits.Column("FLAG", "J", array=cols["flag"]),
        fits.Column("CCDNR", "B", array=cols["ccdnr"]),
        fits.Column("RAWX", "I", array=np.full(n, 32, np.int16)),
        fits.Column("RAWY", "I", array=np.full(n, 100, np.int16)),
    ]
    h = fits.BinTableHDU.from_columns(fcols, name="EVENTS")
    a = ev.attrs
    for k, v in {"OBS_ID": a.get("obs_id", "0999990101"), "INSTRUME": "EPN", "SUBMODE": "PrimeFullWindow",
                 "DATE-OBS": a.get("date_obs", "2020-01-01T00:00:00"), "REVOLUT": 1000, "OBJECT": "XCUBE-SIM",
                 "TELAPSE": float(duration), "PA_PNT": float(a.get("pa_pnt", 0.0))}.items():
        h.header[k] = v
    fits.HDUList([fits.PrimaryHDU(), h]).writeto(efile, overwrite=True)
    return xfile, efile


# --------------------------------------------------------------------------- EXOD2 worker
def _exod_setup(exod_path: str):
    base = Path(exod_path)
    for d in ("data/util", "data/results", "logs"):
        (base / d).mkdir(parents=True, exist_ok=True)
    os.environ["EXOD"] = str(base)
    sys.path.insert(0, str(base))
    import matplotlib

    matplotlib.use("Agg")
    from exod.processing import background_inference as bi
    from exod.processing import data_cube as dcm

    # no figures, and no 4XMM source list (xcube runs without a catalogue too)
    bi.compare_images = lambda *a, **k: None
    dcm.plot_frame_masks = lambda *a, **k: None
    bi.mask_known_sources = lambda data_cube, wcs: np.zeros(data_cube.shape[:2], dtype=bool)
    return bi, dcm


def exod_worker(exod_path, efile, time_bin, grid_file, out_file):
    """Run EXOD2's steps (in this fresh process); with ``grid_file`` on xcube's
    grid, else on its own. Writes timings (and cubes on the common grid)."""
    bi, dcm = _exod_setup(exod_path)
    from exod.processing.bayesian_computations import PrecomputeBayesLimits
    from exod.processing.bti import get_bti, get_gti_threshold
    from exod.xmm.event_list import EventList

    grid = dict(np.load(grid_file)) if grid_file else None
    pbl = PrecomputeBayesLimits(threshold_sigma=3)
    tm = {}
    t = time.perf_counter()
    e = EventList(efile)
    e.read(remove_bad_rows=False, remove_borders=False, remove_MOS_central_ccd=False, remove_hot_pixels=False)
    el = EventList.from_event_lists([e])
    if grid is not None:  # common grid: frames from the GTI start, as xcube
        el.time_min, el.time_max = float(grid["t"][0]), float(grid["t"][-1])
    tm["read"] = time.perf_counter() - t

    t = time.perf_counter()
    t_bin_he, lc_he = el.get_high_energy_lc(time_bin)
    bti = get_bti(time=t_bin_he, data=lc_he, threshold=get_gti_threshold(el.N_event_lists))
    el.filter_by_energy(0.2, 12.0)
    tm["bti"] = time.perf_counter() - t

    class GridCube(dcm.DataCube):
        def calc_time_bins(self):
            return grid["t"].copy() if grid is not None else super().calc_time_bins()

        def bin_event_list(self):
            if grid is not None:
                self.bin_x, self.bin_y = grid["x"].copy(), grid["y"].copy()
            return super().bin_event_list()

    t = time.perf_counter()
    cube = GridCube(el, 20.0, time_bin)
    tm["binning"] = time.perf_counter() - t
    t = time.perf_counter()
    cube.calc_gti_bti_bins(bti=bti)
    cube.mask_frames_with_partial_ccd_exposure(mask_frames=True)
    tm["frame_masks"] = time.perf_counter() - t
    t = time.perf_counter()
    mu = bi.calc_cube_mu(cube, wcs=None)
    tm["template"] = time.perf_counter() - t
    t = time.perf_counter()
    peaks, eclipses = pbl.get_cube_masks_peak_and_eclipse(cube_n=cube.data, cube_mu=mu)
    tm["mask"] = time.perf_counter() - t
    tm["total"] = sum(tm[k] for k in ("bti", "binning", "frame_masks", "template", "mask"))
    tcol = np.asarray(el.data["TIME"])
    res = {"timings": tm, "peak_rss_mb": peak_rss_mb(),
           "shape_xyt": list(cube.data.shape), "cell": float(cube.bin_x[1] - cube.bin_x[0]),
           "n_peak": int(np.sum(peaks)), "n_eclipse": int(np.sum(eclipses)),
           "t_first": float(cube.bin_t[0]), "t_last": float(cube.bin_t[-1]), "events": int(tcol.size),
           "events_after_last_frame": int(np.sum(tcol >= cube.bin_t[-1]))}
    arrays = {}
    if grid is not None:
        nt = cube.n_t_bins
        in_gti = np.zeros(nt, bool)
        in_gti[np.asarray(cube.gti_bin_idx, dtype=int)] = True
        in_bti = np.zeros(nt, bool)
        in_bti[np.asarray(cube.bti_bin_idx, dtype=int)[np.asarray(cube.bti_bin_idx, dtype=int) < nt]] = True
        arrays = dict(n=np.asarray(cube.data), mu=np.asarray(mu), peak=np.asarray(peaks), eclipse=np.asarray(eclipses),
                      bti=np.asarray(cube.bti_bin_idx_bool[:-1]), bad=np.asarray(cube.bccd_bin_idx_bool),
                      in_gti=in_gti, in_bti=in_bti, bti_start=np.array([b["START"] for b in bti]),
                      bti_stop=np.array([b["STOP"] for b in bti]))
    np.savez(out_file, **arrays)
    Path(str(out_file) + ".json").write_text(json.dumps(res))


def run_exod(exod_path, efile, time_bin, grid_file=None):
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "exod.npz"
        cmd = [sys.executable, __file__, "--exod-worker", str(exod_path), str(efile), str(time_bin),
               str(grid_file or ""), str(out)]
        peak = _run_monitored(cmd)
        res = json.loads(Path(str(out) + ".json").read_text())
        res["peak_rss_mb_sampled"] = peak
        arrays = dict(np.load(out)) if grid_file else {}
    return res, arrays


# --------------------------------------------------------------------------- xcube side
def xcube_worker(xfile, time_bin, band, out_file, full):
    import xcube

    ev0, _ = xcube.simulate.event_list("xmm-pn", duration=2000, seed=0)  # warm numba caches
    xcube.search_transients(ev0, time_bin=100.0)
    t = time.perf_counter()
    ev = xcube.open_events(xfile)
    t_open = time.perf_counter() - t
    t = time.perf_counter()
    res = xcube.search_transients(ev, time_bin=float(time_bin), energy_band=tuple(band))
    wall = time.perf_counter() - t
    out = {"timings": res.summary["timings"], "wall": wall, "open": t_open,
           "peak_rss_mb": peak_rss_mb(),
           "shape": res.summary["shape"], "n_detections": len(res.detections)}
    arrays = {}
    if full:
        cube = res.cube
        arrays = dict(n=cube.values, mu=res.expected.values, peak=res.masks.peak.values,
                      eclipse=res.masks.eclipse.values, bti=cube.bti.values, bad=cube.bad_frame.values,
                      t=np.append(cube.time_lo.values, cube.time_hi.values[-1]),
                      x=np.append(cube.x_lo.values, cube.x_hi.values[-1]),
                      y=np.append(cube.y_lo.values, cube.y_hi.values[-1]))
    np.savez(out_file, **arrays)
    Path(str(out_file) + ".json").write_text(json.dumps(out))


def run_xcube(xfile, time_bin, band=EXOD_BAND, full=False):
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "xcube.npz"
        cmd = [sys.executable, __file__, "--xcube-worker", str(xfile), str(time_bin), repr(list(band)), str(out),
               "1" if full else "0"]
        peak = _run_monitored(cmd)
        res = json.loads(Path(str(out) + ".json").read_text())
        res["peak_rss_mb_sampled"] = peak
        arrays = dict(np.load(out)) if full else {}
    return res, arrays


def peak_rss_mb() -> float:
    """This process's peak RSS [MB] (VmHWM: unlike ``ru_maxrss`` it is not
    inherited from the parent across fork + exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_monitored(cmd) -> float:
    """Run ``cmd``, sampling its RSS with psutil every 20 ms; the peak [MB]."""
    import psutil

    p = subprocess.Popen(cmd)
    proc = psutil.Process(p.pid)
    peak = 0
    while p.poll() is None:
        try:
            peak = max(peak, proc.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd[:3])}... failed with exit code {p.returncode}")
    return peak / 2**20


# --------------------------------------------------------------------------- comparison
def compare(x: dict, e: dict, sigma=3.0):
    """Voxel-by-voxel comparison on the common grid; returns printable lines."""
    import xcube

    lines = []
    en = np.transpose(e["n"], (2, 1, 0))  # EXOD2 (x, y, t) -> (t, y, x)
    emu = np.transpose(e["mu"], (2, 1, 0))
    ep = np.transpose(e["peak"], (2, 1, 0))
    ee = np.transpose(e["eclipse"], (2, 1, 0))
    nt = x["n"].shape[0]
    lines.append(f"grid: xcube cube {x['n'].shape} (t, y, x); EXOD2 on the same edges {en.shape}")
    same_n = np.isnan(en) | (en == x["n"])
    nan_frames = np.isnan(en).reshape(nt, -1).all(axis=1)
    lines.append(f"counts cube: {int((~same_n).sum())} voxels differ; EXOD2 sets {int(nan_frames.sum())} bad "
                 f"frames to NaN (xcube keeps their counts, mu NaN)")

    bti_diff = x["bti"] != e["bti"]
    bad_diff = x["bad"] != e["bad"]
    undefined = ~(e["in_gti"] | e["in_bti"])
    lines.append(f"BTI frames: xcube {int(x['bti'].sum())}, EXOD2 {int(e['bti'].sum())}, differ in "
                 f"{int(bti_diff.sum())} frames")
    def runs(flags):
        d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
        return [(float(x["t"][a] - x["t"][0]), float(x["t"][b] - x["t"][0]))
                for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1))]

    fmt = lambda iv: ", ".join(f"{a:g}-{b:g}" for a, b in iv)  # noqa: E731
    lines.append(f"   xcube BTI frames [s after the start]: {fmt(runs(x['bti']))}")
    lines.append(f"   EXOD2 BTIs: {fmt(zip(e['bti_start'] - x['t'][0], e['bti_stop'] - x['t'][0]))}; "
                 f"its BTI frames: {fmt(runs(e['bti']))}")
    bad_x, bad_e = np.flatnonzero(x["bad"]), np.flatnonzero(e["bad"])
    lines.append(f"bad frames: xcube {bad_x.tolist()}, EXOD2 {bad_e.tolist()} (of {nt})")
    lines.append("frames in neither EXOD2 GTI nor BTI index list (mu uninitialised): "
                 f"{np.flatnonzero(undefined).tolist()}")

    # xcube's exact rule on EXOD2's own n and mu
    ok = np.isfinite(emu) & np.isfinite(en)
    rp, re_ = np.zeros(en.shape, bool), np.zeros(en.shape, bool)
    a, b = xcube.bayes.masks(np.where(ok, en, 0), np.where(ok, emu, np.nan), sigma)
    rp[ok], re_[ok] = a[ok], b[ok]
    nmin = np.full(en.shape, -9, np.int64)
    nmin[ok] = xcube.bayes.n_peak_min(emu[ok], sigma)

    frame_cat = np.full(nt, "", dtype=object)
    for f in range(nt):
        if undefined[f]:
            frame_cat[f] = "EXOD2 mu uninitialised (frame in neither GTI nor BTI list)"
        elif bti_diff[f]:
            frame_cat[f] = "BTI shifted one bin early (frame's BTI flag differs)"
        elif bad_diff[f]:
            frame_cat[f] = "bad frame differs (np.roll wrap-around / BTI-dependent pn rule)"
    lines.append("")
    lines.append("mask differences on the common grid (each differing voxel in one category):")
    rows = []
    for kind, xm, em, rule in (("peak", x["peak"], ep, rp), ("eclipse", x["eclipse"], ee, re_)):
        diff = xm != em
        cats = {}
        tt, yy, xx = np.nonzero(diff)
        for f, i, j in zip(tt, yy, xx):
            c = frame_cat[f]
            if not c:
                if rule[f, i, j] != em[f, i, j]:
                    if kind == "peak" and en[f, i, j] == nmin[f, i, j]:
                        c = "rule: strict n > n_min (EXOD2 misses n == n_min)"
                    elif emu[f, i, j] < 1e-7:
                        c = "rule: mu < 1e-7 dropped by EXOD2"
                    else:
                        c = "rule: EXOD2 interpolates its n_min / n_max table"
                else:
                    c = "expected-counts model (inpainting, smoothing, normalisation, source mask)"
            key = (c, "xcube only" if xm[f, i, j] else "EXOD2 only")
            cats[key] = cats.get(key, 0) + 1
        rows.append((kind, int(xm.sum()), int(em.sum()), int((xm & em).sum()), cats))
    for kind, nx_, ne_, both, cats in rows:
        lines.append(f"  {kind}: xcube {nx_} voxels, EXOD2 {ne_}, both {both}")
        for (c, side), v in sorted(cats.items()):
            lines.append(f"      {v:7d}  {side:10s}  {c}")
        if not cats:
            lines.append("      (identical)")

    # the rule alone on identical inputs
    lines.append("")
    lines.append("the Bayes rule alone on EXOD2's (n, mu) (xcube.bayes.masks vs EXOD2's precomputed limits):")
    for kind, em, rule in (("peak", ep, rp), ("eclipse", ee, re_)):
        d = (em != rule) & ok
        strict = d & (en == nmin) & (~em) if kind == "peak" else np.zeros_like(d)
        small = d & ~strict & (emu < 1e-7)
        lines.append(f"  {kind}: {int(d.sum())} of {int(ok.sum())} voxels differ: {int(strict.sum())} strict '>' "
                     f"(n == n_min), {int(small.sum())} mu < 1e-7, {int((d & ~strict & ~small).sum())} table "
                     "interpolation")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "xcube-exod2"), help="work directory")
    ap.add_argument("--quick", action="store_true", help="skip the 1e6 events / 5 s timing case (EXOD2 ~9 GB)")
    ap.add_argument("--timing-only", action="store_true")
    ap.add_argument("--masks-only", action="store_true")
    ap.add_argument("--dump", help="save both cubes and masks of the common-grid run to this .npz")
    args = ap.parse_args(argv)
    exod_path = os.environ.get("EXOD2_PATH")
    if not exod_path:
        print("EXOD2_PATH is not set: skipping the EXOD2 comparison (set it to a checkout of "
              "https://github.com/nx1/EXOD2; EXOD2 needs opencv-python-headless, tqdm, cmasher, requests)")
        return 0
    if not (Path(exod_path) / "exod" / "processing" / "pipeline.py").exists():
        print(f"EXOD2_PATH={exod_path} is not an EXOD2 checkout (no exod/processing/pipeline.py): skipping")
        return 0
    data = Path(args.data)
    print(f"EXOD2 from {exod_path}; work directory {data}; load average {os.getloadavg()[0]:.2f}")

    if not args.timing_only:
        print("\n== masks on a common grid: 30 ks pn, 50 s frames, 20\" cells ==")
        xfile, efile = make_events(data, duration=30_000.0, seed=7, partial_frames=True)
        xr_, xa = run_xcube(xfile, 50.0, full=True)
        grid = data / "grid.npz"
        np.savez(grid, t=xa["t"], x=xa["x"], y=xa["y"])
        er, ea = run_exod(exod_path, efile, 50.0, grid_file=grid)
        if args.dump:
            np.savez(args.dump, **{f"x_{k}": v for k, v in xa.items()}, **{f"e_{k}": v for k, v in ea.items()})
        for line in compare(xa, ea):
            print(line)
        # EXOD2 on its own grid, the same events: the grid defects in numbers
        eo, _ = run_exod(exod_path, efile, 50.0)
        t0 = float(xa["t"][0])
        print(f"\nEXOD2 on its own grid (same events): cells of {eo['cell']:.2f} sky units ({eo['cell'] * 0.05:.3f}\") "
              f"instead of 400 (20\"), cube {eo['shape_xyt']} (x, y, t) against xcube's {list(xa['n'].shape)} "
              f"(t, y, x); its cell edges drift from the 400-unit grid by {eo['cell'] - 400:.2f} units per cell, "
              f"{(eo['cell'] - 400) * eo['shape_xyt'][0]:.0f} units across the cube")
        print(f"   frames start at the first event ({eo['t_first'] - t0:+.3f} s from the GTI start) and stop at "
              f"{eo['t_last'] - t0:.3f} s: {eo['events_after_last_frame']} of the {eo['events']} band "
              f"events fall after it and are dropped (xcube's frames start at the GTI start and keep the trailing "
              f"partial frame with its exposure)")
        print(f"   flagged voxels on own grids: EXOD2 peak {eo['n_peak']}, eclipse {eo['n_eclipse']}; xcube peak "
              f"{int(xa['peak'].sum())}, eclipse {int(xa['eclipse'].sum())}")

    if not args.masks_only:
        print("\n== timing and peak memory, each in a fresh process (EXOD2 on its own grid) ==")
        cases = [(1e7, 50.0)] + ([] if args.quick else [(1e6, 5.0)])
        hdr = f"{'case':>22s} {'tool':>6s} {'steps [s]':>60s} {'total [s]':>9s} {'peak RSS [MB]':>13s}"
        print(hdr)
        for n, tb in cases:
            xfile, efile = make_events(data, n_events=n, duration=100_000.0, seed=1, partial_frames=False)
            er, _ = run_exod(exod_path, efile, tb)
            xr_, _ = run_xcube(xfile, tb, band=(0.2, 12.0))
            label = f"{n:.0e} ev, {tb:g} s"
            et = er["timings"]
            steps = (f"bin {et['binning']:.2f} + frames {et['bti'] + et['frame_masks']:.2f} + template "
                     f"{et['template']:.2f} + mask {et['mask']:.2f}")
            print(f"{label:>22s} {'EXOD2':>6s} {steps:>60s} {et['total']:9.2f} "
                  f"{max(er['peak_rss_mb'], er['peak_rss_mb_sampled']):13.0f}")
            xt = xr_["timings"]
            steps = (f"cube {xt['cube']:.2f} + frames {xt['frames']:.2f} + bkg {xt['background']:.2f} + "
                     f"masks {xt['masks']:.2f} + FA {xt['false_alarms']:.2f} + det {xt['detect']:.2f}")
            print(f"{'':>22s} {'xcube':>6s} {steps:>60s} {xt['total']:9.2f} "
                  f"{max(xr_['peak_rss_mb'], xr_['peak_rss_mb_sampled']):13.0f}")
            print(f"{'':>22s} speed-up {et['total'] / xt['total']:.1f}x (EXOD2 steps without detections vs the "
                  f"whole xcube search); EXOD2 cube {er['shape_xyt']} (x, y, t) of {er['cell']:.2f}-unit cells, "
                  f"xcube {xr_['shape']} (t, y, x) of 400")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--exod-worker":
        a = sys.argv[2:]
        exod_worker(a[0], a[1], float(a[2]), a[3] or None, a[4])
    elif len(sys.argv) > 1 and sys.argv[1] == "--xcube-worker":
        a = sys.argv[2:]
        xcube_worker(a[0], float(a[1]), json.loads(a[2]), a[3], a[4] == "1")
    else:
        sys.exit(main())
