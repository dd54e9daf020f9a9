"""Detection efficiency and false detections of the transient search.

:func:`efficiency` injects flares at the event level into simulated
observations (:func:`~xcube.simulate.event_list`), searches them with
``xcube.search_transients`` and counts the flares recovered, on a grid of
frame lengths x flare amplitudes; it also searches the same kind of
observation without flares and counts the detections (false detections),
the flagged voxels and the summary's expected false alarms. Users calibrate
their own parameter sets with it (any ``search_transients`` keyword goes
through, e.g. ``sigma``, ``shifts``, ``hygiene``).

A flare is *recovered* when a peak detection lies within ``match_arcsec``
of it and its flagged frames (one frame of slack each side) hold the flare's
peak time; ``n_recovered_cell`` uses twice the radius (one 20" cell).
"""
from __future__ import annotations

import time

import numpy as np
import xarray as xr

from .models import check_number, check_seed

__all__ = ["efficiency", "amplitude_at", "flare_specs", "recovered"]

TIME_BINS = (5.0, 50.0, 200.0)
AMPLITUDES = (0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2, 3.0)


def flare_specs(rng, time_bin: float, amplitude: float, duration: float, n_flares: int, ra: float, dec: float,
                radius_arcmin: float = 10.0) -> list[dict]:
    """``n_flares`` Gaussian flares of ``amplitude`` [ct/s at the peak] and
    sigma = ``time_bin`` [s], spread evenly in time (15 % to 85 % of
    ``duration``, +-2 % jitter) at random places within ``radius_arcmin`` of
    (``ra``, ``dec``) [deg]. Eager."""
    out = []
    for t in np.linspace(0.15, 0.85, n_flares) * duration:
        r = radius_arcmin / 60.0 * np.sqrt(rng.uniform())
        a = rng.uniform(0, 2 * np.pi)
        out.append(dict(t_peak=float(t + rng.uniform(-0.02, 0.02) * duration), amplitude=float(amplitude),
                        width=float(time_bin), ra=ra + r * np.cos(a) / np.cos(np.radians(dec)),
                        dec=dec + r * np.sin(a)))
    return out


def recovered(detections, truth, time_bin: float, radius_arcsec: float) -> np.ndarray:
    """Per injected flare of ``truth`` (rows of kind ``"flare"``): is there a
    peak detection within ``radius_arcsec`` whose flagged frames (+- one
    frame) hold the flare's peak? Bool array. Eager, numpy: one bool per flare
    of ``truth``; ``time_bin`` [s]."""
    det = detections[detections["kind"] == "peak"]
    fl = truth[truth["kind"] == "flare"]
    if det.empty or fl.empty:
        return np.zeros(len(fl), bool)
    d_ra, d_dec = np.radians(det["ra"].to_numpy(float)), np.radians(det["dec"].to_numpy(float))
    out = []
    for f in fl.itertuples():
        ra, dec = np.radians(f.ra), np.radians(f.dec)
        cosd = np.sin(dec) * np.sin(d_dec) + np.cos(dec) * np.cos(d_dec) * np.cos(d_ra - ra)
        sep = np.degrees(np.arccos(np.clip(cosd, -1.0, 1.0))) * 3600.0
        ok = (sep < radius_arcsec) & (det["t_start"].to_numpy() - time_bin <= f.t_peak) & \
             (f.t_peak <= det["t_stop"].to_numpy() + time_bin)
        out.append(bool(ok.any()))
    return np.array(out, bool)


def _peak_frame_bad(res, truth) -> np.ndarray:
    """Per injected flare: is the frame holding its peak a bad frame?"""
    c = res.cube
    t = truth[truth["kind"] == "flare"]["t_peak"].to_numpy()
    if c is None or t.size == 0:
        return np.zeros(t.size, bool)
    i = np.clip(np.searchsorted(c["time_lo"].values, t, side="right") - 1, 0, c.sizes["time"] - 1)
    return np.asarray(c["bad_frame"].values)[i]


def efficiency(profile: str = "xmm-pn", *, time_bins=TIME_BINS, amplitudes=AMPLITUDES, n_obs: int = 10,
               n_false: int | None = None, duration: float = 20_000.0, n_flares: int = 3, sources: int = 10,
               match_arcsec: float = 10.0, seed: int = 1, pointing=(150.0, 2.2), progress=None,
               **search_kwargs) -> xr.Dataset:
    """Detection efficiency and false detections of ``xcube.search_transients``.

    For every frame length in ``time_bins`` [s] and flare peak amplitude in
    ``amplitudes`` [ct/s]: ``n_obs`` simulated ``profile`` observations of
    ``duration`` [s] (``sources`` constant sources, particle background, no
    soft-proton flares), each with ``n_flares`` Gaussian flares (sigma = the
    frame length) at random places within 10' of the ``pointing`` (RA, Dec)
    [deg], searched with ``search_kwargs``. Then ``n_false`` (default ``max(3 n_obs, 6)``)
    observations without flares per frame length.

    Returns a Dataset over (``time_bin``, ``amplitude``): ``n_injected``,
    ``n_recovered`` (within ``match_arcsec``), ``n_recovered_cell`` (within
    twice that), ``efficiency``, ``efficiency_cell``, ``efficiency_err``
    (binomial), ``n_peak_in_bad_frame``, ``flare_counts`` (counts of one
    flare); and over ``time_bin``: ``false_detections``, ``flagged_voxels``,
    ``expected_false_alarms`` (means per observation without flares) and
    ``n_false_observations``. ``progress``: a callable receiving one line of
    text per grid point (e.g. ``print``). ``n_obs``, ``n_false`` and
    ``n_flares`` must be >= 1, ``duration``,
    ``match_arcsec`` and every frame length and amplitude > 0, ``duration``
    must hold two frames of every frame length (the search's minimum) and
    ``seed`` is a whole number >= 0 (a ``ValueError`` naming the parameter
    otherwise, before any simulation). Eager: it runs
    ``n_obs x len(time_bins) x len(amplitudes) + n_false x len(time_bins)``
    searches (a few minutes with the defaults on 2 cores). One parameter
    set per call: a list of ``sigma`` or of ``energy_band`` pairs (several
    runs per search) is a ``ValueError``, as is ``time_bin`` (use ``time_bins``).
    """
    import xcube

    from .events import event_list

    n_obs, n_false, tbs, amps = _check_grid(n_obs, n_false, duration, n_flares, match_arcsec, time_bins, amplitudes)
    seed = check_seed("efficiency", seed)
    _check_one_parameter_set(search_kwargs)
    rng = np.random.default_rng(seed)
    shape = (len(tbs), len(amps))
    n_inj, n_rec, n_cell, n_bad = (np.zeros(shape, np.int64) for _ in range(4))
    t0 = time.perf_counter()
    for i, tb in enumerate(tbs):
        for j, amp in enumerate(amps):
            for _ in range(n_obs):
                specs = flare_specs(rng, tb, amp, duration, n_flares, *pointing)
                ev, truth = event_list(profile, duration=duration, seed=int(rng.integers(1 << 30)), sources=sources,
                                       soft_protons=0, flares=specs, ra_pnt=pointing[0], dec_pnt=pointing[1])
                res = xcube.search_transients(ev, time_bin=tb, **search_kwargs)
                if isinstance(res, list):  # (several runs: a keyword not caught by _check_one_parameter_set)
                    raise ValueError(f"efficiency: the search keywords {sorted(search_kwargs)} gave {len(res)} runs "
                                     "per observation; give one parameter set")
                det = res.detections
                n_inj[i, j] += int((truth["kind"] == "flare").sum())
                n_rec[i, j] += int(recovered(det, truth, tb, match_arcsec).sum())
                n_cell[i, j] += int(recovered(det, truth, tb, 2 * match_arcsec).sum())
                n_bad[i, j] += int(_peak_frame_bad(res, truth).sum())
            if progress:
                progress(f"{tb:g} s, {amp:g} ct/s: {n_rec[i, j]}/{n_inj[i, j]} recovered "
                         f"({time.perf_counter() - t0:.0f} s)")
    fa = _false_detections(profile, tbs, n_false, duration, sources, pointing, search_kwargs, progress, seed)
    return _dataset(tbs, amps, n_inj, n_rec, n_cell, n_bad, fa, dict(
        profile=profile, n_obs=n_obs, duration=duration, n_flares=n_flares, sources=sources,
        match_arcsec=match_arcsec, seed=seed, search_kwargs=repr(search_kwargs)))


def _check_one_parameter_set(search_kwargs) -> None:
    """``ValueError`` unless ``search_kwargs`` make one search run per
    observation: no ``time_bin`` (the grid's ``time_bins`` set it), one
    ``sigma`` and one ``energy_band`` pair (a list of them makes several runs;
    call :func:`efficiency` once per parameter set)."""
    if "time_bin" in search_kwargs:
        raise ValueError("efficiency: give the frame lengths as time_bins=, not time_bin=")
    sigma = search_kwargs.get("sigma")
    if sigma is not None and np.ndim(sigma) > 0:
        raise ValueError(f"efficiency: sigma={sigma!r}: one threshold per call (call efficiency once per sigma)")
    band = search_kwargs.get("energy_band")
    if band is not None and np.shape(band) != (2,):
        raise ValueError(f"efficiency: energy_band={band!r}: one (low, high) pair in keV per call "
                         "(call efficiency once per band)")


def _check_grid(n_obs, n_false, duration, n_flares, match_arcsec, time_bins, amplitudes):
    """(n_obs, n_false, frame lengths, amplitudes) of :func:`efficiency` after
    checking them with :func:`~xcube.simulate.models.check_number`."""
    n_obs = check_number("efficiency", "n_obs", n_obs, ge=1, integer=True)
    n_false = max(3 * n_obs, 6) if n_false is None else check_number(
        "efficiency", "n_false", n_false, ge=1, integer=True, unit="(or None for max(3 n_obs, 6))")
    duration = check_number("efficiency", "duration", duration, gt=0, unit="s")
    check_number("efficiency", "n_flares", n_flares, ge=1, integer=True)
    check_number("efficiency", "match_arcsec", match_arcsec, gt=0, unit="arcsec")
    grids = []
    for name, values, unit in (("time_bins", time_bins, "s"), ("amplitudes", amplitudes, "ct/s")):
        values = list(np.atleast_1d(values))
        if not values:
            raise ValueError(f"efficiency: {name} is empty; give at least one value > 0 {unit}")
        grids.append([check_number("efficiency", f"{name}[{k}]", v, gt=0, unit=unit) for k, v in enumerate(values)])
    for k, tb in enumerate(grids[0]):  # the search's rule (xcube.transients.grid.search_run): two frames at least
        if int(np.ceil(duration / tb - 1e-9)) < 2:
            raise ValueError(f"efficiency: time_bins[{k}]={tb:g} s: duration={duration:g} s holds fewer than two "
                             "frames of it, and the search needs two; give a longer duration or shorter frames")
    return n_obs, n_false, *grids


def _false_seed(seed: int, k: int) -> int:
    """The simulation seed of flare-free observation ``k`` of ``seed``, drawn
    from ``SeedSequence([10_000, seed, k])``: a 32-bit number, so two (seed,
    k) share one only by a 1 in 4e9 chance (they did by construction with
    the former ``10_000 + (seed - 1) n_false + k``)."""
    return int(np.random.SeedSequence([10_000, int(seed), int(k)]).generate_state(1)[0])


def _false_detections(profile, tbs, n_false, duration, sources, pointing, search_kwargs, progress, seed: int = 1):
    """Per frame length: mean detections, flagged voxels, expected false
    alarms, over the same ``n_false`` flare-free observations (observation
    k simulated with a seed drawn from ``SeedSequence([10_000, seed, k])``:
    each ``seed`` its own observations, whatever ``n_false``)."""
    import xcube

    from .events import event_list

    out = np.zeros((len(tbs), 3))
    for i, tb in enumerate(tbs):
        vals = []
        for k in range(n_false):
            ev, _ = event_list(profile, duration=duration, seed=_false_seed(seed, k),
                               sources=sources, soft_protons=0,
                               ra_pnt=pointing[0], dec_pnt=pointing[1])
            res = xcube.search_transients(ev, time_bin=tb, **search_kwargs)
            s = res.summary
            vals.append((len(res.detections), sum(s["flagged_voxels"].values()),
                         sum(s["expected_false_alarms"].values())))
        out[i] = np.mean(vals, axis=0) if vals else np.nan
        if progress:
            progress(f"{tb:g} s, no flares: {out[i, 0]:.2f} detections per observation ({n_false} observations)")
    return out, n_false


def _dataset(tbs, amps, n_inj, n_rec, n_cell, n_bad, fa, attrs) -> xr.Dataset:
    (fa_vals, n_false) = fa
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = n_rec / n_inj
        err = np.sqrt(np.maximum(eff * (1 - eff), 1.0 / np.maximum(n_inj, 1)) / np.maximum(n_inj, 1))
        eff_cell = n_cell / n_inj
    ta = ("time_bin", "amplitude")
    counts = np.array(amps)[None, :] * np.array(tbs)[:, None] * np.sqrt(2 * np.pi)
    return xr.Dataset(
        {"n_injected": (ta, n_inj), "n_recovered": (ta, n_rec), "n_recovered_cell": (ta, n_cell),
         "efficiency": (ta, eff), "efficiency_err": (ta, err), "efficiency_cell": (ta, eff_cell),
         "n_peak_in_bad_frame": (ta, n_bad),
         "flare_counts": (ta, counts, {"long_name": "counts of one flare (amplitude x sigma x sqrt(2 pi))"}),
         "false_detections": (("time_bin",), fa_vals[:, 0], {"long_name": "detections per observation"}),
         "flagged_voxels": (("time_bin",), fa_vals[:, 1]),
         "expected_false_alarms": (("time_bin",), fa_vals[:, 2]),
         "n_false_observations": ((), n_false)},
        coords={"time_bin": ("time_bin", np.array(tbs), {"units": "s"}),
                "amplitude": ("amplitude", np.array(amps), {"units": "count/s"})},
        attrs=attrs)


def amplitude_at(ds: xr.Dataset, level: float = 0.5, var: str = "efficiency") -> xr.DataArray:
    """The flare amplitude [ct/s] at which ``var`` reaches ``level``, per
    frame length, interpolated in log amplitude (NaN when the grid does not
    bracket it): a 1-D DataArray on ``time_bin`` [s]. Eager (reads the
    values of ``ds``)."""
    out = []
    la = np.log10(ds["amplitude"].values)
    for tb in ds["time_bin"].values:
        e = ds[var].sel(time_bin=tb).values
        i = np.flatnonzero((e[:-1] < level) & (e[1:] >= level))
        if i.size:
            j = i[0]
            out.append(10 ** (la[j] + (level - e[j]) / (e[j + 1] - e[j]) * (la[j + 1] - la[j])))
        else:
            out.append(np.nan)
    return xr.DataArray(np.array(out), dims=("time_bin",), coords={"time_bin": ds["time_bin"]},
                        name=f"amplitude_at_{var}_{level:g}", attrs={"units": "count/s"})
