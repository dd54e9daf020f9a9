"""The result of a transient search: tables, light curves, lazy cubes, and
writers for them."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..io.atomic import atomic_dir, atomic_file, explain_write_error
from ..tables import column_unit

__all__ = ["SearchResult", "SearchResults", "detections_table", "write_detections", "DETECTION_FILES"]

#: the files of a detection table (:func:`write_detections`), in a run directory and, for all runs, at the
#: top of :meth:`SearchResults.write`'s directory
DETECTION_FILES = ("detections.csv", "detections.parquet", "detections.ecsv")


def run_id(obs_id: str, subset: int, time_bin: float, energy_band) -> str:
    """Deprecated: :func:`xcube.transients.params.run_id` (``run_id(obsid,
    SearchParams(...), subset)``, the one run id of searches and surveys)."""
    import warnings

    from .params import SearchParams
    from .params import run_id as _run_id

    warnings.warn("xcube.transients.result.run_id is deprecated; use xcube.transients.params.run_id(obsid, "
                  "SearchParams(time_bin, energy_band), subset)", DeprecationWarning, stacklevel=2)
    return _run_id(obs_id, SearchParams(time_bin=time_bin, energy_band=energy_band), subset)


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _sky_frame(grid):
    """The astropy frame of the detections' ``ra``/``dec``: that of the
    events' WCS, whose ``pixel_to_world`` gave them (ICRS, FK5 or FK4 from
    RADESYS/EQUINOX, which the search's grids carry in their attrs, as
    astropy reads them), or ``"fk5"`` (J2000, as XMM and NuSTAR declare)
    for a grid without a WCS. Eager (attrs only)."""
    from astropy.wcs.utils import wcs_to_celestial_frame

    from ..regions import events_wcs

    if grid is None or "CTYPE1" not in getattr(grid, "attrs", {}):
        return "fk5"
    try:
        return wcs_to_celestial_frame(events_wcs(grid))
    except ValueError:  # no usable WCS
        return "fk5"


@dataclass
class SearchResult:
    """One transient-search run (one parameter set on one observation).

    Attributes
    ----------
    detections : pandas.DataFrame, one row per detection (see ``detect.DETECTION_COLUMNS``).
    lightcurves : xr.Dataset over (detection, time): counts, expected,
        log10_bayes_peak, log10_bayes_eclipse, bti, bad_frame; the frames'
        time_lo/time_hi and exposure/fracexp are the search's (exposure 0
        in the frames it dropped, as ``cube``). With ``shifts``, those of
        the merged rows from the unshifted grid (their ``detection``
        numbers are the merged table's); :meth:`lightcurve_table` has every
        row's own.
    cube, expected : lazy (time, y, x) DataArrays of counts and expected counts.
    masks : xr.Dataset of lazy boolean (time, y, x) ``peak`` and ``eclipse``.
    image : eager (y, x) summed counts.
    The cube, expected counts, masks and image carry the cells' WCS as FITS
    keywords in their attrs (``astropy.wcs.WCS(res.image.attrs)``,
    :func:`xcube.region_mask`).
    summary : dict: exposure [s], n_frames, n_bad_frames, n_bti, bti_exposure [s],
        expected_false_alarms (peak, eclipse), hygiene (events and pixels each
        detector-hygiene rule removed), eclipse_masked_sources, timings [s],
        reason (why empty, or "").
    params : the run parameters.
    grids : with ``shifts=True``, the result of each grid (``"0"``, ``"xy"``,
        ``"t"``, ``"xyt"``); the detections are then merged over them.
    """

    run_id: str
    detections: pd.DataFrame
    lightcurves: xr.Dataset | None
    cube: xr.DataArray | None = None
    expected: xr.DataArray | None = None
    masks: xr.Dataset | None = None
    image: xr.DataArray | None = None
    summary: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    grids: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        reason = self.summary.get("reason")
        extra = f", reason={reason!r}" if reason else ""
        return f"<SearchResult {self.run_id}: {len(self.detections)} detections{extra}>"

    def plot(self):
        """Figures: the summed image with detections, and the detection light
        curves (those of :attr:`lightcurves`: with ``shifts``, the merged
        rows from the unshifted grid). Returns ``(image_figure,
        lightcurve_figure)`` (either None when there is nothing to draw)."""
        from .. import plot

        fig_img = plot.detections(self.image, self.detections, title=self.run_id) if self.image is not None else None
        fig_lc = None
        if self.lightcurves is not None:  # the table's rows of the light curves, in their order
            rows = self.detections.set_index("detection").loc[self.lightcurves["detection"].values].reset_index()
            fig_lc = plot.detection_lightcurves(self.lightcurves, rows)
        return fig_img, fig_lc

    def lightcurve_table(self) -> pd.DataFrame:
        """The detections' light curves as one table, one row per (detection,
        frame): ``detection`` (the row of :attr:`detections`), ``time`` [s]
        and the variables of :attr:`lightcurves`; with ``shifts``, every
        merged row's own light curve (on its grid's frames, from which its
        features come), with its ``grid`` and ``grid_detection``. Eager;
        None without light curves. ``lightcurves.parquet`` of :meth:`write`."""
        if self.lightcurves is None:
            return None
        if self.grids:
            from .shifts import grid_lightcurves

            return grid_lightcurves(self.detections, self.grids)
        return self.lightcurves.to_dataframe().reset_index()

    def write(self, directory, overwrite: bool = False, figures: bool = True) -> Path:
        """Write ``detections.csv``/``.parquet``/``.ecsv`` (the ECSV, an
        astropy table, keeps the column types, ids such as ``obs_id``
        ``'0001730201'`` as text, and the units: :func:`detections_table`),
        ``lightcurves.parquet`` (:meth:`lightcurve_table`), ``summary.json``, ``detections.reg`` (DS9,
        in the frame of the detections' ``ra``/``dec``, the event file's: ICRS or FK5 J2000 as its
        RADESYS/EQUINOX say, :func:`_sky_frame`; when there are detections) and PNG figures
        (``detections.png``, the summed image, always; ``lightcurves.png`` when there are detections) into
        ``directory`` atomically (temporary directory, then rename; nothing is
        left on failure, and an ``OSError`` names the file being written). Eager."""
        from ..io.ds9 import circles_from_table, write_ds9

        directory = Path(directory)
        with atomic_dir(directory, overwrite=overwrite) as tmp:

            def put(name, write):
                """``write(path)`` of one file; an ``OSError`` names ``directory/name``
                (pyarrow's ``[Errno 27] Error writing bytes to file`` names none)."""
                try:
                    write(tmp / name)
                except OSError as exc:
                    raise explain_write_error(exc, directory / name, tmp / name) from exc

            write_detections(directory, self.detections, put=put)
            lc = self.lightcurve_table()
            if lc is not None:
                put("lightcurves.parquet", lambda p: lc.to_parquet(p, index=False))
            summary = json.dumps(_jsonable({"run_id": self.run_id, "params": self.params, **self.summary}), indent=2)
            put("summary.json", lambda p: p.write_text(summary))
            det = self.detections.dropna(subset=["ra", "dec"]) if len(self.detections) else self.detections
            if len(det):
                regions = circles_from_table(det, radius_arcsec=self.params.get("size_arcsec", 20.0) / 2, label="name",
                                             frame=_sky_frame(self.image if self.image is not None else self.cube))
                put("detections.reg", lambda p: write_ds9(p, regions))
            if figures:
                fig_img, fig_lc = self.plot()
                if fig_img is not None:
                    put("detections.png", lambda p: fig_img.savefig(p, dpi=110))
                if fig_lc is not None and len(self.detections):
                    put("lightcurves.png", lambda p: fig_lc.savefig(p, dpi=110))
        return directory

    def to_zarr(self, store, overwrite: bool = False) -> Path:
        """Write the cube (``counts``), expected counts and the ``peak``/
        ``eclipse`` masks to a Zarr store, with ``params`` and ``summary`` as
        attrs (computes the lazy arrays chunk by chunk), atomically. The
        detections and their light curves are not in it: :meth:`write`
        writes those (CSV, regions)."""
        from ..io.cache import to_zarr

        if self.cube is None:
            raise ValueError(f"{self.run_id}: empty result ({self.summary.get('reason')}); nothing to write")
        ds = xr.Dataset({"counts": self.cube, "expected": self.expected})
        if self.masks is not None:
            ds["peak"] = self.masks["peak"]
            ds["eclipse"] = self.masks["eclipse"]
        ds.attrs = {"kind": "transient-search", "run_id": self.run_id, "params": _jsonable(self.params),
                    "summary": _jsonable(self.summary)}
        return to_zarr(ds, store, overwrite=overwrite)


class SearchResults(list):
    """Several runs (parameter sets) of one search call; a list of
    :class:`SearchResult` with the tables concatenated."""

    @property
    def detections(self) -> pd.DataFrame:
        """The runs' detection tables concatenated: one row per detection (the
        ``run_id`` column names its run), the columns of
        :attr:`SearchResult.detections`; an empty table when no run detected
        anything. Built in memory from the runs' tables on each access."""
        frames = [r.detections for r in self if len(r.detections)]
        if not frames:
            return self[0].detections.iloc[0:0] if len(self) else pd.DataFrame()
        return pd.concat(frames, ignore_index=True)

    @property
    def summary(self) -> pd.DataFrame:
        """One row per run: ``run_id``, ``n_detections`` and the run's
        :attr:`SearchResult.summary` flattened (nested keys joined by ``_``,
        e.g. ``timings_cube`` [s]; units as there). Built in memory on each
        access."""
        return pd.DataFrame([{"run_id": r.run_id, "n_detections": len(r.detections), **_flat(r.summary)} for r in self])

    def write(self, directory, overwrite: bool = False, figures: bool = True) -> Path:
        """Write each run into ``directory/<run_id>/`` (:meth:`SearchResult.write`)
        and the detections of all runs (:attr:`detections`) into ``directory``
        as ``detections.csv``/``.parquet``/``.ecsv``, the files of a run's
        table (:func:`write_detections`), each atomically (replacing earlier
        ones). Eager."""
        from ..io.paths import inside

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for r in self:
            r.write(inside(directory, r.run_id, what="run directory"), overwrite=overwrite, figures=figures)
        write_detections(directory, self.detections)
        return directory


def write_detections(directory, detections: pd.DataFrame, put=None) -> Path:
    """Write the detection table ``detections`` (pandas, one row per
    detection) into ``directory`` as :data:`DETECTION_FILES`:
    ``detections.csv``, ``detections.parquet`` and ``detections.ecsv`` (an
    astropy table keeping the column types, ids such as ``obs_id``
    ``'0001730201'`` as text, and the units: :func:`detections_table`); no
    index. Each file is written atomically (temporary name, then rename,
    replacing an earlier file; an ``OSError`` names the file), or by
    ``put(name, write)``, which calls ``write(path)`` for one file (as
    :meth:`SearchResult.write` does into its temporary directory). Returns
    ``directory``. Eager, in memory."""
    directory = Path(directory)
    if put is None:

        def put(name, write):
            with atomic_file(directory / name, overwrite=True) as tmp:
                write(tmp)

    put("detections.csv", lambda p: detections.to_csv(p, index=False))
    put("detections.parquet", lambda p: detections.to_parquet(p, index=False))
    table = detections_table(detections)
    put("detections.ecsv", lambda p: table.write(p, format="ascii.ecsv"))
    return directory


def detections_table(detections: pd.DataFrame):
    """A detection table as an astropy ``Table`` (what ``detections.ecsv``
    holds): the same columns in the same order, numbers and booleans with
    their dtypes (NaN and inf kept), text columns (``run_id``, ``obs_id``,
    ``kind``, ``name``, ``utc_peak``, ...) as str, so that ids keep their
    leading zeros (a missing value masked), and the units of
    :func:`xcube.tables.column_unit` (the FITS catalogue's:
    ``ra``/``dec`` deg, ``t_*`` s, ``mjd_*`` d, ``peak_flux`` erg/cm2/s,
    ...; none for dimensionless columns). ``meta`` holds the pandas attrs
    (``mjdref``, ``timesys``). Eager, in memory."""
    from astropy.table import Column, MaskedColumn, Table

    table = Table(meta=_jsonable(dict(detections.attrs)))
    for name in detections.columns:
        s = detections[name]
        unit = column_unit(str(name)) or None
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            missing = s.isna().to_numpy(bool)
            text = np.array(["" if m else str(v) for v, m in zip(s, missing)], dtype=str)
            table[str(name)] = MaskedColumn(text, mask=missing, unit=unit) if missing.any() else Column(text, unit=unit)
        elif isinstance(s.dtype, pd.api.extensions.ExtensionDtype):  # nullable Int64, boolean, Float64
            numpy_dtype = s.dtype.numpy_dtype
            table[str(name)] = MaskedColumn(s.to_numpy(numpy_dtype, na_value=numpy_dtype.type(0)),
                                            mask=s.isna().to_numpy(bool), unit=unit)
        else:
            table[str(name)] = Column(s.to_numpy(), unit=unit)
    return table


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}_"))
        else:
            out[f"{prefix}{k}"] = v
    return out
