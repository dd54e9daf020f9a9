"""Half-bin shifted grids: the same search on four grids, detections merged.

A flare whose counts fall on the corner of four cells, or across the edge of
two frames, is split and may be missed by one grid. ``search_transients(...,
shifts=True)`` also searches the grid shifted by half a cell in x and y
("xy"), the one shifted by half a frame in time ("t"), and both ("xyt"),
all filled by the same single events pass, and merges the detections:

two detections (of any grids) are one when they are of the same kind, their
positions are less than one cell apart and their flagged time ranges overlap
(allowing one frame between them); the merged detection keeps the row of
the most significant one (``log10_bayes``), with ``t_start``/``t_stop``
widened to the union and kept to the observation's common good time inside
it (:func:`.frames.good_time_range`, the rule of every grid's own table: the
half-frame shifted grids' first and last frames reach half a frame beyond
the good time, the last frame of any grid may end after it, and a frame may
be half in a GTI gap), the columns derived from them (``mjd_start``,
``mjd_stop``...) computed again from the merged times, and columns ``grid``
(where that row comes from), ``grid_detection`` (its index there) and
``n_grids`` (how many grids saw it). The merged table keeps the tables'
``attrs`` (the time reference: ``mjdref``, ``timesys``...).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..times import TIME_COLUMNS, add_time_columns
from .flags import crowded
from .frames import good_time_range

__all__ = ["SHIFTS", "merge_grids", "merge_detections", "grid_lightcurves"]

#: (grid name, time phase): "xy" in the name means the sky grid is shifted by half a cell
SHIFTS = (("0", 0.0), ("xy", 0.0), ("t", 0.5), ("xyt", 0.5))


def _groups(table: pd.DataFrame, cell: float, slack: np.ndarray) -> np.ndarray:
    """Group label of each row (union of close pairs; O(k^2), k is small)."""
    k = len(table)
    parent = np.arange(k)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    x, y = table["x"].to_numpy(float), table["y"].to_numpy(float)
    t0, t1 = table["t_start"].to_numpy(float), table["t_stop"].to_numpy(float)
    kind = table["kind"].to_numpy(object)
    for i in range(k):
        near = (np.hypot(x - x[i], y - y[i]) < cell) & (kind == kind[i])
        near &= (t0 <= t1[i] + slack[i]) & (t0[i] <= t1 + slack)
        for j in np.flatnonzero(near[i + 1:]) + i + 1:
            a, b = find(i), find(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return np.array([find(i) for i in range(k)])


def merge_detections(tables: dict, cell: float, frame: float, gti=None, *, span=None) -> pd.DataFrame:
    """Merge the detection tables of several grids (``{grid name: table}``)
    as the module doc says; ``cell`` is the cell width [sky-column units],
    ``frame`` the frame length [s], ``gti`` ``(start, stop)`` [s] the
    observation's good time to which the merged ``t_start``/``t_stop`` keep
    (:func:`.frames.good_time_range`; a pair of numbers is one interval;
    None: not clipped; ``span`` is its former name). Returns one table (the columns of the
    inputs plus ``grid``, ``grid_detection``, ``n_grids``; the time columns
    of :func:`xcube.times.add_time_columns` recomputed from the merged
    ``t_start``/``t_stop``), rows in time order, with the inputs' ``attrs``
    (the time reference of :func:`~xcube.times.add_time_columns`). Eager."""
    attrs = next((dict(t.attrs) for t in tables.values() if t.attrs), {})  # (one event list: one reference)
    parts = [t.assign(grid=name, grid_detection=t["detection"].to_numpy()) for name, t in tables.items() if len(t)]
    if not parts:
        first = next(iter(tables.values()))
        empty = first.assign(grid=pd.Series(dtype=object), grid_detection=pd.Series(dtype=int),
                             n_grids=pd.Series(dtype=int))
        empty.attrs = attrs
        return empty
    allt = pd.concat(parts, ignore_index=True)
    g = _groups(allt, cell, np.full(len(allt), frame))
    allt["_g"] = g
    best = allt.sort_values("log10_bayes", ascending=False, kind="stable").groupby("_g", sort=False).head(1)
    times = allt.groupby("_g").agg(t_start=("t_start", "min"), t_stop=("t_stop", "max"), n_grids=("grid", "nunique"))
    gti = span if gti is None else gti
    if gti is not None:  # (after grouping: the groups are those of the grids' own times)
        times["t_start"], times["t_stop"] = good_time_range(times["t_start"], times["t_stop"], gti)
    out = best.drop(columns=["t_start", "t_stop"]).join(times, on="_g")
    cols = [c for c in parts[0].columns] + ["n_grids"]
    out = out[cols].sort_values(["t_start", "kind"], kind="stable").reset_index(drop=True)
    out["detection"] = np.arange(len(out))
    if "flag_crowded_run" in out:
        out["flag_crowded_run"] = crowded(out["run_id"])
    out.attrs = attrs
    if "mjdref" in attrs and any(c in out for c in TIME_COLUMNS):  # t_start/t_stop widened: their MJDs too
        out = add_time_columns(out, attrs)
    return out


def merge_grids(runs, cell: float, gti=None, *, span=None):
    """The :class:`~xcube.transients.result.SearchResult` of the unshifted
    grid (``runs[0]``; ``runs``: ``[(grid name, SearchResult), ...]``) with
    the merged detections of all grids, ``grids`` holding every grid's own
    result (and light curves: the merged table's ``grid`` and
    ``grid_detection`` point into them; :func:`grid_lightcurves` gathers
    each merged row's own), ``lightcurves`` those of the merged rows from
    the unshifted grid, under their merged ``detection`` numbers, and the summary's
    ``n_detections``, ``n_detections_per_grid``,
    ``expected_false_alarms_all_grids`` (the sum over the grids: the shifted
    grids are more looks at the data, and their false detections add up)
    and the total time. ``gti``: the observation's good time ``(start,
    stop)`` [s] to which the merged times keep (:func:`merge_detections`;
    the search passes its common good time; ``span`` ``(t_start, t_stop)``,
    the older keyword, is one interval). Eager on the detection tables (pandas)
    and the first grid's ``time_lo`` [s]; the light curves are only selected,
    not computed here."""
    base = runs[0][1]
    frame = float(np.median(np.diff(base.cube["time_lo"].values))) if base.cube is not None else 0.0
    table = merge_detections({name: r.detections for name, r in runs}, cell, frame, gti, span=span)
    summary = dict(base.summary)
    summary["n_detections"] = int(len(table))
    summary["n_detections_per_grid"] = {name: int(len(r.detections)) for name, r in runs}
    # four grids are four looks: their expected false alarms add up (an upper bound, the grids overlap)
    summary["expected_false_alarms_all_grids"] = {
        k: float(sum(r.summary["expected_false_alarms"][k] for _, r in runs)) for k in ("peak", "eclipse")}
    summary["timings"] = dict(base.summary.get("timings", {}),
                              total=float(sum(r.summary["timings"]["total"] for _, r in runs)
                                          - (len(runs) - 1) * base.summary["timings"].get("cube", 0.0)))
    lcs = base.lightcurves
    if lcs is not None:  # the rows from the unshifted grid, under their merged numbers (the others: grid_lightcurves)
        own = table[table["grid"] == runs[0][0]]
        lcs = lcs.sel(detection=own["grid_detection"].to_numpy()).assign_coords(detection=own["detection"].to_numpy())
    return dataclasses.replace(base, detections=table, lightcurves=lcs, summary=summary,
                               grids={name: r for name, r in runs})


def grid_lightcurves(table: pd.DataFrame, grids: dict) -> pd.DataFrame:
    """Each merged detection's own light curve (that of its row's grid,
    whose frames the row's features were computed from), one row per
    (detection, frame): the merged ``detection``, its ``grid`` and
    ``grid_detection``, the frame's ``time`` [s] and the light-curve
    variables of :attr:`SearchResult.lightcurves`. ``table``: the merged
    detections; ``grids``: ``{grid name: SearchResult}``. Eager."""
    parts = []
    for name, res in grids.items():
        rows = table[table["grid"] == name]
        if res.lightcurves is None or not len(rows):
            continue
        lc = res.lightcurves.sel(detection=rows["grid_detection"].to_numpy())
        df = lc.assign_coords(detection=rows["detection"].to_numpy()).to_dataframe().reset_index()
        df.insert(1, "grid", name)
        df.insert(2, "grid_detection", df["detection"].map(dict(zip(rows["detection"], rows["grid_detection"]))))
        parts.append(df)
    if not parts:
        first = next(iter(grids.values())).lightcurves
        df = first.isel(detection=slice(0, 0)).to_dataframe().reset_index() if first is not None else pd.DataFrame()
        return df.assign(grid=pd.Series(dtype=str), grid_detection=pd.Series(dtype=np.int64))
    return pd.concat(parts, ignore_index=True).sort_values(["detection", "time"], kind="stable").reset_index(drop=True)
