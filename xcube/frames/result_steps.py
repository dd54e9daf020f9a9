"""The pipeline's steps k, c and d: picking the target and comparison stars,
the instrumental catalogue and the differential light curve (see
:mod:`xcube.frames.pipeline` for the outputs and modes)."""
from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import xarray as xr

from .config import KEY_STEP, for_key, made_with
from .measure_steps import dataset_format, result_path
from .pipeline import Missing, Reduction

log = logging.getLogger("xcube.frames")

__all__ = ["step_pick", "step_catalogue", "step_differential", "pick_aperture"]


def _read(red: Reduction, prefix: str, obj: str, band: str, suffix: str, step: str):
    path = red.out(prefix, obj, band, suffix)
    if not path.exists():
        raise Missing(f"{path} not found; run step {step} first")
    return path


def pick_aperture(phot: xr.Dataset, index=None) -> int:
    """The aperture index used to pick stars: ``index`` when given, else the
    one with the smallest median error over the 10 brightest stars. Eager:
    without ``index``, reads ``mag`` and ``mag_err`` (``(star, frame,
    aperture)`` [mag]) into memory."""
    n = phot.sizes["aperture"]
    if index is not None:
        if not -n <= int(index) < n:
            raise ValueError(f"pick_aper={index} is outside the {n} apertures (0..{n - 1})")
        return int(index) % n
    err = phot["mag_err"].values
    with warnings.catch_warnings():  # a star with no finite magnitude (outside the frame, saturated): NaN median
        warnings.simplefilter("ignore", RuntimeWarning)
        bright = np.argsort(np.nan_to_num(np.nanmedian(phot["mag"].values[:, :, 0], axis=1), nan=99.0))[:10]
        med = np.nanmedian(err[bright], axis=(0, 1))
    return int(np.nanargmin(med)) if np.isfinite(med).any() else 0


# k ----------------------------------------------------------------------------------------------------------------
def step_pick(red: Reduction) -> None:
    """Target, comparisons and checks -> ``pick_<obj>_<band>.json`` (roles,
    and the configuration of this step and, as the photometry recorded it,
    of the earlier ones) and ``.csv`` (per-star statistics): from
    ``starxy``/``ind_*`` when given, else automatically with the ``pick_*``
    thresholds. Eager: reads each group's photometry and writes the files."""
    red.each_group("k", lambda obj, band: _pick(red, obj, band))


def _pick(red: Reduction, obj: str, band: str) -> None:
    from ..io.atomic import write_json, write_table
    from .select import given_roles, pick_stars, star_statistics
    from .store import read_dataset

    phot_path = _read(red, "phot", obj, band, dataset_format(red), "p (photometry)")
    out = red.out("pick", obj, band, ".json")
    red.remove_stale(out, red.out("pick", obj, band, ".csv"))
    if not red.should_make(out, [phot_path]):
        return
    cfg = red.cfg
    phot = read_dataset(phot_path)
    ap = pick_aperture(phot, cfg["pick_aper"])
    mag, err = phot["mag"].values[:, :, ap], phot["mag_err"].values[:, :, ap]
    n_given = int((phot["source"].values == "given").sum())
    _check_given(red, phot, obj, n_given)
    config, differ = made_with(cfg, "k", phot.attrs.get("config"))
    red.not_applied(obj, band, f"the photometry ({phot_path.name})", differ)
    if n_given:
        roles = given_roles(n_given, for_key(cfg["ind_tgt"], obj), for_key(cfg["ind_ref"], obj),
                            for_key(cfg["ind_chk"], obj))
        roles.table = star_statistics(mag, err, cfg["pick_err_max"], cfg["pick_ref_std"])
        roles.table.insert(0, "x", phot["star_x"].values)
        roles.table.insert(1, "y", phot["star_y"].values)
        roles.table["role"] = roles.role_of(phot.sizes["star"])
    else:
        thresholds = {k: cfg[k] for k in cfg if k.startswith("pick_") and k != "pick_aper"}
        try:
            roles = pick_stars(mag, err, phot["star_x"].values, phot["star_y"].values, tuple(phot.attrs.get(
                "shape", _shape(red, obj, band))), **thresholds)
        except ValueError as exc:
            stats = star_statistics(mag, err, cfg["pick_err_max"], cfg["pick_ref_std"])
            stats.insert(0, "x", phot["star_x"].values)
            stats.insert(1, "y", phot["star_y"].values)
            stats["role"] = ""
            csv = red.out("pick", obj, band, ".csv")
            write_table(csv, stats.rename_axis("star").reset_index())
            if out.exists():  # roles of an earlier pick no longer match the statistics
                out.unlink()
            raise Missing(f"{exc} (per-star statistics in {csv})") from exc
    write_table(red.out("pick", obj, band, ".csv"), roles.table.rename_axis("star").reset_index())
    write_json(out, {"target": roles.target, "comparisons": roles.comparisons, "checks": roles.checks,
                     "candidates": roles.candidates, "aperture": ap, "given": bool(n_given), "config": config},
               indent=1)
    log.info("%s %s: target %d, comparisons %s, checks %s", obj, band, roles.target, roles.comparisons,
             roles.checks)


def _check_given(red: Reduction, phot: xr.Dataset, obj: str, n_given: int) -> None:
    """``starxy`` must be the stars step p measured first (``Missing`` saying
    to rerun step p when it is not); ``ind_*`` without given stars are
    ignored with a warning."""
    given = for_key(red.cfg["starxy"], obj)
    if given is not None and len(given):
        xy = np.asarray(given, float).reshape(-1, 2)
        measured = np.column_stack([phot["star_x"].values[:n_given], phot["star_y"].values[:n_given]])
        if xy.shape != measured.shape or not np.allclose(xy, measured, rtol=0, atol=1e-6):
            raise Missing(f"starxy ({len(xy)} stars) differs from the stars the photometry measured "
                          f"({n_given} given); rerun step p (steps='pkcd') to measure them")
        return
    ind = [k for k in ("ind_tgt", "ind_ref", "ind_chk") if for_key(red.cfg[k], obj) is not None]
    if ind and not n_given:
        log.warning("%s: %s set without starxy: they are indices into starxy and are ignored; the stars are "
                    "picked automatically (give starxy and rerun step p to choose them)", obj, ", ".join(ind))


def _shape(red: Reduction, obj: str, band: str) -> tuple:
    base = json.loads(red.out("base", obj, band, ".json").read_text())
    return tuple(base["shape"])


# c ----------------------------------------------------------------------------------------------------------------
def step_catalogue(red: Reduction) -> None:
    """The photometry with the stars' roles -> ``cata_<obj>_<band>.zarr``
    (or ``.nc``; ``attrs["config"]``: the photometry's configuration with
    the pick's keys) and ``cata_<obj>_<band>.fits``. Eager: reads each group's
    photometry into memory and writes the files."""
    red.each_group("c", lambda obj, band: _catalogue(red, obj, band))


def _catalogue(red: Reduction, obj: str, band: str) -> None:
    from .select import Roles
    from .store import read_dataset, write_catalogue_fits, write_dataset

    phot_path = _read(red, "phot", obj, band, dataset_format(red), "p (photometry)")
    pick_path = _read(red, "pick", obj, band, ".json", "k (pick)")
    out = red.out("cata", obj, band, dataset_format(red))
    red.remove_stale(out, red.out("cata", obj, band, ".fits"))
    if not red.should_make(out, [phot_path, pick_path]):
        return
    roles = json.loads(pick_path.read_text())
    cat = read_dataset(phot_path)
    role = Roles(roles["target"], roles["comparisons"], roles["checks"]).role_of(cat.sizes["star"])
    cat = cat.assign_coords(role=("star", role))
    # the magnitudes are the photometry's, the roles the pick's (which may have been made from older photometry)
    recorded = cat.attrs.get("config") or {}
    recorded = json.loads(recorded) if isinstance(recorded, str) else dict(recorded)
    recorded.update({k: v for k, v in roles.get("config", {}).items() if KEY_STEP.get(k) == "k"})
    config, differ = made_with(red.cfg, "c", recorded)
    red.not_applied(obj, band, f"the photometry and pick ({phot_path.name}, {pick_path.name})", differ)
    cat.attrs.update(target=int(roles["target"]), comparisons=[int(i) for i in roles["comparisons"]],
                     checks=[int(i) for i in roles["checks"]], pick_aperture=int(roles["aperture"]),
                     config=json.dumps(config))
    write_dataset(cat, out)
    write_catalogue_fits(cat, red.out("cata", obj, band, ".fits"))
    log.info("%s %s: catalogue -> %s", obj, band, out)


# d ----------------------------------------------------------------------------------------------------------------
def step_differential(red: Reduction) -> None:
    """Target minus the comparison ensemble -> ``lc_<obj>_<band>.zarr`` (or
    ``.nc``: the result Dataset), ``lc_<obj>_<band>.csv`` and ``.png``.
    Eager, per live group: reads the catalogue Dataset of step c into
    memory, computes the light curve and writes the three files; when the
    result is kept under ``on_exist``, reads it instead. The results stay in
    ``red.results``. ``attrs["config"]`` (JSON) is the configuration the
    numbers were made with: the catalogue's record, and this run's keys of
    no step (run modes, Dask, result format)."""
    red.each_group("d", lambda obj, band: _differential(red, obj, band))


def _differential(red: Reduction, obj: str, band: str) -> None:
    from .._version import __version__
    from ..io.atomic import atomic_file, write_table
    from .lightcurve import differential, lightcurve_table, plot_lightcurve
    from .store import read_dataset, write_dataset

    cat_path = _read(red, "cata", obj, band, dataset_format(red), "c (catalogue)")
    out = result_path(red, obj, band)
    red.remove_stale(out, red.out("lc", obj, band, ".csv"), red.out("lc", obj, band, ".png"))
    if not red.should_make(out, [cat_path]):
        red.results[(obj, band)] = read_dataset(out)
        return
    cat = read_dataset(cat_path)
    lc = differential(cat["mag"], cat["mag_err"], cat.attrs["target"], cat.attrs["comparisons"],
                      cat.attrs["checks"])
    res = xr.merge([cat, lc], combine_attrs="override")
    config, differ = made_with(red.cfg, "d", cat.attrs.get("config"))
    red.not_applied(obj, band, f"the catalogue ({cat_path.name})", differ)
    config = {k: config[k] if k in KEY_STEP else v for k, v in red.cfg.items()}
    res.attrs.update(obj=obj, band=band, xcube_version=__version__, config=json.dumps(config, default=str))
    write_dataset(res, out)
    write_table(red.out("lc", obj, band, ".csv"), lightcurve_table(res))
    with atomic_file(red.out("lc", obj, band, ".png"), overwrite=True) as tmp:
        plot_lightcurve(res).savefig(tmp, dpi=110, bbox_inches="tight")
    red.results[(obj, band)] = res
    good = np.isfinite(res["diff_mag"].values).any(axis=1).sum()
    log.info("%s %s: differential light curve of %d/%d frames -> %s", obj, band, good, res.sizes["frame"], out)
