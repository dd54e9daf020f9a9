"""The pipeline's steps o and p: base-frame stars, offsets and photometry
(see :mod:`xcube.frames.pipeline` for the outputs and modes; k, c and d are
in :mod:`xcube.frames.result_steps`)."""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import xarray as xr

from .config import for_key, made_with
from .pipeline import Missing, Reduction

log = logging.getLogger("xcube.frames")

__all__ = ["step_offsets", "step_photometry", "result_path", "calibrated_cube", "dataset_format"]


def dataset_format(red: Reduction) -> str:
    """File suffix of the configured ``result_format``: ``.zarr`` or ``.nc``.
    Eager (a suffix only)."""
    from .store import dataset_suffix

    return dataset_suffix(red.cfg["result_format"])


def result_path(red: Reduction, obj: str, band: str):
    """Returns the path of the light-curve Dataset file of one object and
    band (``band``: the filter name, no unit):
    ``red_dir/lc_<obj>_<band>.zarr`` (or ``.nc``). Nothing is read or
    checked. Eager (a path only)."""
    return red.out("lc", obj, band, dataset_format(red))


def calibrated_cube(red: Reduction, obj: str, band: str) -> tuple[pd.DataFrame, xr.DataArray]:
    """The frame table (``frames.csv`` of step i) and the lazy cube of the
    calibrated frames that exist, with per-frame time coordinates.

    ``band``: the filter name (no unit). The cube is
    :func:`~xcube.frames.files.stack_frames`' float32 ``(frame, y, x)``
    DataArray [adu] with coords ``time`` (MJD at mid-exposure, UTC [d]),
    ``exposure`` [s] and ``airmass``, chunked by ``chunk_frames``, and
    ``attrs["border_cut"]``: the pixels trimmed from each side (the first
    frame's ``BORDER`` keyword; absent without it). Eager: reads
    ``frames.csv``, checks that the files exist and reads the first one's
    header; no pixel is read."""
    from astropy.io import fits

    from .files import stack_frames

    gdir = red.group_dir(obj, band)
    if not (gdir / "frames.csv").exists():
        raise Missing(f"{gdir / 'frames.csv'} not found; run step i (correct) first")
    frames = pd.read_csv(gdir / "frames.csv")
    exists = np.array([(gdir / c).exists() for c in frames["calibrated"]])
    if not exists.all():
        lost = frames.loc[~exists, "calibrated"].tolist()
        if red.cfg["on_missing"] == "error":
            raise FileNotFoundError(f"{gdir}: calibrated frames missing: {lost[:5]}; rerun step i")
        log.warning("%s: %d calibrated frames missing (%s...); going on without them", gdir, len(lost), lost[0])
        frames = frames[exists].reset_index(drop=True)
    if frames.empty:
        raise Missing(f"{gdir}: no calibrated frames; run step i (correct)")
    header = fits.getheader(gdir / frames["calibrated"].iloc[0])
    ny, nx = int(header["NAXIS2"]), int(header["NAXIS1"])
    rows = pd.DataFrame({"path": [str(gdir / c) for c in frames["calibrated"]], "hdu": 0, "ny": ny, "nx": nx,
                         "name": frames["file"], "mjd": frames["mjd"], "exposure": frames["exposure"],
                         "airmass": frames["airmass"]})
    cube = stack_frames(rows, {"frame": int(red.cfg["chunk_frames"])})
    if "BORDER" in header:
        cube.attrs["border_cut"] = int(header["BORDER"])
    return frames, cube


def _base_image(red: Reduction, frames: pd.DataFrame, cube: xr.DataArray) -> tuple[np.ndarray, str]:
    """The base frame: ``base_img`` as an index into the object's frames, a
    raw or calibrated file name among them, or a path to a calibrated image."""
    from .calibrate import read_master
    from .steps import raw_stem

    base = red.cfg["base_img"]
    if isinstance(base, (int, np.integer)) or (isinstance(base, str) and base.strip().lstrip("-").isdigit()):
        i = int(base)
        if not -len(frames) <= i < len(frames):
            raise ValueError(f"base_img={i} is outside the {len(frames)} frames (0..{len(frames) - 1})")
        return np.asarray(cube.isel(frame=i).values), str(frames["file"].iloc[i])
    name = str(base)
    for i, (raw, cal) in enumerate(zip(frames["file"], frames["calibrated"])):
        if name in (raw, cal, raw_stem(raw)) or name.endswith("/" + raw):
            return np.asarray(cube.isel(frame=i).values), raw
    return read_master(name, cube.shape[1:]), name


# o ----------------------------------------------------------------------------------------------------------------
def step_offsets(red: Reduction) -> None:
    """Base-frame stars (``stars_<obj>_<band>.csv``, ``base_<obj>_<band>.json``
    with the configuration of the calibration and this step,
    :func:`~xcube.frames.config.made_with`) and per-frame offsets
    (``offset_<obj>_<band>.csv``). Eager: computes the offsets of every group
    with Dask here and writes the files."""
    red.each_group("o", lambda obj, band: _offsets(red, obj, band))


def _offsets(red: Reduction, obj: str, band: str) -> None:
    from ..io.atomic import write_json, write_table
    from .align import ALIGN_VARS, frame_offsets
    from .photometry import aperture_radii, find_stars

    frames, cube = calibrated_cube(red, obj, band)
    out = red.out("offset", obj, band, ".csv")
    red.remove_stale(out, red.out("stars", obj, band, ".csv"), red.out("base", obj, band, ".json"))
    if not red.should_make(out, [red.group_dir(obj, band) / "frames.csv"]):
        return
    cfg = red.cfg
    # the calibration keys as in this run, but border_cut as the calibrated frames were trimmed
    config, differ = made_with(cfg, "o", {"border_cut": cube.attrs["border_cut"]} if "border_cut" in cube.attrs
                               else None)
    red.not_applied(obj, band, f"the calibrated frames in {red.group_dir(obj, band).name}/", differ)
    base, label = _base_image(red, frames, cube)
    border = float(np.max(aperture_radii(cfg["aper"], 4.0))) + 2.0
    stars, fwhm = find_stars(base, None, cfg["find_threshold"], int(cfg["max_stars"]), border, cfg["saturation"])
    if len(stars) < 3:
        raise Missing(f"only {len(stars)} stars found in the base frame {label} (first FWHM guesses of 4, 2, 1.3 "
                      "and 8 px tried); choose another base_img or lower find_threshold")
    off = frame_offsets(cube, base, stars["x"], stars["y"], cfg["offset_method"], cfg["offset_max_dis"], fwhm)
    table = dict(zip(ALIGN_VARS, red.compute(*(off[k].data for k in ALIGN_VARS))))
    _warn_rejected(obj, band, frames["file"], table, cfg)
    write_table(red.out("stars", obj, band, ".csv"), stars)
    write_json(red.out("base", obj, band, ".json"),
               {"base": label, "fwhm": fwhm, "shape": list(base.shape), "n_stars": len(stars), "config": config},
               indent=1)
    table["n_aligned"], table["n_expected"] = (np.nan_to_num(table[k]).astype(int) for k in ("n_aligned", "n_expected"))
    write_table(out, pd.DataFrame({"file": frames["file"], "time": frames["bjd_tdb"]} | table))
    log.info("%s %s: %d stars in base frame %s (FWHM %.2f px); offsets of %d frames", obj, band, len(stars), label,
             fwhm, len(frames))


def _warn_rejected(obj: str, band: str, files: pd.Series, t: dict, cfg: dict) -> None:
    """One warning per reason naming the frames that could not be aligned
    (``t``: per-frame :data:`~xcube.frames.align.ALIGN_VARS`): too few (or
    no) reference stars fit, with ``n_aligned`` of ``n_expected``; enough fit
    but the offset exceeds ``offset_max_dis``; no coarse offset at all."""
    from .align import MIN_AGREE

    bad = ~np.isfinite(t["offset_x"])
    if not bad.any():
        return
    n, n_exp = np.nan_to_num(t["n_aligned"]).astype(int), np.nan_to_num(t["n_expected"]).astype(int)
    far = bad & (n >= np.maximum(3, MIN_AGREE * n_exp))  # a good fit, rejected only for its offset
    few = bad & ~far & (n_exp >= 3)
    none = bad & ~far & ~few
    other = "stars" if cfg["offset_method"] == "xcorr" else "xcorr"

    def names(mask, counts=False):
        idx = np.flatnonzero(mask)
        shown = [f"{files.iloc[i]} ({n[i]} of {n_exp[i]})" if counts else str(files.iloc[i]) for i in idx[:8]]
        return ", ".join(shown) + (f" and {len(idx) - 8} more" if len(idx) > 8 else "")

    if few.any():
        log.warning("%s %s: %d frames rejected: fewer than %d %% of the reference stars expected in the frame "
                    "(n_aligned of n_expected) fit its best rotation + shift (tried as is and rotated by 180 deg): %s; "
                    "no stars (clouds, a blank frame), trailed stars, another field, or a shift the coarse search "
                    "missed (try offset_method=%r)? They get no photometry", obj, band, int(few.sum()),
                    round(100 * MIN_AGREE), names(few, True), other)
    if far.any():
        log.warning("%s %s: %d frames are offset by more than offset_max_dis = %g px, although their stars fit "
                    "(n_aligned of n_expected): %s; they get no photometry; raise offset_max_dis if the pointing "
                    "really moved that far", obj, band, int(far.sum()), cfg["offset_max_dis"], names(far, True))
    if none.any():
        why = ("nothing above the sky to correlate: a blank or all-NaN frame?" if cfg["offset_method"] == "xcorr" else
               f"fewer than 3 of the frame's stars found, or fewer than 3 agreeing with the base frame's within "
               f"offset_max_dis = {cfg['offset_max_dis']:g} px")
        log.warning("%s %s: %d frames could not be aligned, no coarse offset found (%s): %s; they get no "
                    "photometry; check these frames, or try offset_method=%r", obj, band, int(none.sum()), why,
                    names(none), other)


# p ----------------------------------------------------------------------------------------------------------------
def _star_list(red: Reduction, obj: str, band: str, stars: pd.DataFrame, shape: tuple,
               border: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Given ``starxy`` first (their indices as given), then the detected
    stars farther than ``match_max_dis`` from all of them. ``starxy`` is in
    pixels of the base frame of ``shape`` ``(ny, nx)``, trimmed by
    ``border`` px on each side (``border_cut``); given stars outside it are
    named in a warning."""
    given = for_key(red.cfg["starxy"], obj)
    gx, gy = (np.asarray(given, float).reshape(-1, 2).T if given is not None and len(given) else
              (np.empty(0), np.empty(0)))
    ny, nx = shape
    out = np.flatnonzero(~((gx >= 0) & (gx <= nx - 1) & (gy >= 0) & (gy <= ny - 1)))
    if len(out):
        log.warning("%s %s: %d of the %d starxy stars lie outside the %dx%d base frame (border_cut = %d px "
                    "trimmed from each side; starxy is in pixels of the trimmed frame, 0-based: raw pixel - "
                    "border_cut): %s; they are measured only where a frame's offset brings them inside it",
                    obj, band, len(out), len(gx), ny, nx, int(border),
                    ", ".join(f"{i} ({gx[i]:g}, {gy[i]:g})" for i in out))
    dx, dy = stars["x"].to_numpy(float), stars["y"].to_numpy(float)
    if len(gx):
        dist = np.hypot(dx[:, None] - gx[None, :], dy[:, None] - gy[None, :]).min(axis=1)
        keep = dist > float(red.cfg["match_max_dis"])
        dx, dy = dx[keep], dy[keep]
    return np.concatenate([gx, dx]), np.concatenate([gy, dy]), len(gx)


def _read_inputs(red: Reduction, obj: str, band: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    paths = [red.out(p, obj, band, s) for p, s in (("offset", ".csv"), ("stars", ".csv"), ("base", ".json"))]
    for p in paths:
        if not p.exists():
            raise Missing(f"{p} not found; run step o (offsets) first")
    return pd.read_csv(paths[0]), pd.read_csv(paths[1]), json.loads(paths[2].read_text())


def step_photometry(red: Reduction) -> None:
    """Aperture photometry of every star (given and detected) in every frame
    -> ``phot_<obj>_<band>.zarr`` (or ``.nc``; ``attrs["config"]``: the
    configuration of this step and, as step o recorded it, of the earlier
    ones). Eager: computes the photometry of every group with Dask here and
    writes the Dataset."""
    red.each_group("p", lambda obj, band: _photometry(red, obj, band))


def _photometry(red: Reduction, obj: str, band: str) -> None:
    from .photometry import measure
    from .store import write_dataset

    frames, cube = calibrated_cube(red, obj, band)
    offsets, stars, base = _read_inputs(red, obj, band)
    out = red.out("phot", obj, band, dataset_format(red))
    red.remove_stale(out)  # temporaries of a killed earlier run
    if not red.should_make(out, [red.out("offset", obj, band, ".csv")]):
        return
    cfg = red.cfg
    config, differ = made_with(cfg, "p", base.get("config"))
    red.not_applied(obj, band, "the offsets (" + red.out("base", obj, band, ".json").name + ")", differ)
    off = frames[["file"]].merge(offsets, on="file", how="left")
    x, y, n_given = _star_list(red, obj, band, stars, cube.shape[1:], config["border_cut"])
    gain = cfg["gain"]
    if not gain:
        g = frames["gain"].to_numpy(float)
        gain = float(np.nanmedian(g)) if np.isfinite(g).any() else 1.0
    ds = measure(cube, x, y, off["offset_x"].to_numpy(), off["offset_y"].to_numpy(), cfg["aper"], cfg["annulus"],
                 gain, cfg["zero_point"], base["fwhm"], fwhm_stars=n_given + np.arange(min(15, len(x) - n_given)),
                 rotation=off["rotation"].to_numpy(float) if "rotation" in off else None)
    (ds,) = red.compute(ds)
    ds = _finish_photometry(ds, frames, off, n_given)
    ds.attrs.update(obj=obj, band=band, base=base["base"], base_fwhm=float(base["fwhm"]), gain=gain,
                    zero_point=float(cfg["zero_point"]), border_cut=int(config["border_cut"]),
                    shape=[int(n) for n in cube.shape[1:]], config=json.dumps(config))
    write_dataset(ds, out)
    log.info("%s %s: photometry of %d stars x %d frames x %d apertures -> %s", obj, band, len(x), len(frames),
             ds.sizes["aperture"], out)


def _finish_photometry(ds: xr.Dataset, frames: pd.DataFrame, off: pd.DataFrame, n_given: int) -> xr.Dataset:
    """Per-frame times and offsets, aperture radii in pixels, star sources."""
    setting = ds["aperture"].values
    radius = np.where(setting < 0, np.nanmedian(ds["radius"].values, axis=0), setting)
    bjd = frames["bjd_tdb"].to_numpy(float)
    timesys = "BJD_TDB" if np.isfinite(bjd).all() else "JD_UTC"
    if timesys != "BJD_TDB":
        log.warning("no BJD_TDB for some frames (target coordinates unknown): time is JD (UTC); pass alt_coord")
    time = bjd if timesys == "BJD_TDB" else frames["jd"].to_numpy(float)
    rotation = ds["rotation"]  # as measure applied it; put back after the offsets (the order of the file)
    ds = ds.drop_vars("rotation").assign_coords(
        aperture=("aperture", radius, {"units": "pixel", "description": "radius; median over frames for FWHM "
                                       "multiples"}),
        aperture_setting=("aperture", setting, {"description": "configured value; negative: multiple of FWHM"}),
        time=("frame", time, {"units": "d", "timesys": timesys, "description": "mid-exposure"}),
        jd=("frame", frames["jd"].to_numpy(float)), mjd=("frame", frames["mjd"].to_numpy(float)),
        hjd=("frame", frames["hjd"].to_numpy(float)),
        source=("star", np.where(np.arange(ds.sizes["star"]) < n_given, "given", "detected")))
    ds["offset_x"] = ("frame", off["offset_x"].to_numpy(float), {"units": "pixel",
                                                                  "description": "frame pixel = base pixel + offset"})
    ds["offset_y"] = ("frame", off["offset_y"].to_numpy(float), ds["offset_x"].attrs)
    ds["rotation"] = rotation
    ds["n_aligned"] = ("frame", off["n_aligned"].fillna(0).to_numpy(int))
    for name, attrs in (("n_expected", {"description": "reference stars inside the frame under its transform"}),
                        ("align_rms", {"units": "pixel", "description": "rms residual of the aligned stars"})):
        if name in off:
            ds[name] = ("frame", off[name].fillna(0).to_numpy(int) if name == "n_expected" else
                          off[name].to_numpy(float), attrs)
    ds["star_x"].attrs.update(units="pixel", description="base frame, 0-based")
    ds["star_y"].attrs.update(units="pixel", description="base frame, 0-based")
    return ds
