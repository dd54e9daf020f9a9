"""Light curves of one observation's cameras (an ``xr.DataTree`` from
``xcube.open_events([pn, mos1, mos2])``): summed over their common good
time, or one per camera."""
from __future__ import annotations

import numpy as np
import xarray as xr

from .. import gti as gtimod
from ..io.events import check_distinct, combined_labels, event_nodes

__all__ = ["event_nodes", "tree_lightcurve", "CAMERA_MODES"]

#: what ``xcube.lightcurve(tree, cameras=...)`` does with several cameras
CAMERA_MODES = ("sum", "each")


def _one_observation(nodes: dict) -> None:
    obs = sorted({str(ev.attrs.get("obs_id", "")) for ev in nodes.values()})
    if len(obs) > 1:
        raise ValueError(
            f"lightcurve: the DataTree holds {len(obs)} observations ({', '.join(obs)}); cameras='sum' adds the "
            f"cameras of one observation - pass one, e.g. tree['{obs[0]}'], or cameras='each' for a light curve "
            f"per node ({', '.join(nodes)})"
        )
    from ..times import check_same_reference

    check_same_reference(list(nodes.values()), "lightcurve")
    check_distinct(list(nodes.values()), "lightcurve")


def tree_lightcurve(tree: xr.DataTree, time_bin, *, cameras: str = "sum", **kwargs):
    """Light curve(s) of the cameras in ``tree`` (see :func:`xcube.lightcurve`
    for ``time_bin`` and ``kwargs``).

    ``cameras="sum"`` (one observation): every camera is cut to the GTIs
    common to all of them (with a region on XMM EPIC: common to the CCDs the
    region lies on in every camera) and binned on the same time grid; counts (and
    background-region counts) are added and rates recomputed over that
    common good time (each camera's regions are selected, and its light curve
    built, once). Returns one light curve on dim ``time`` (attrs ``instrument`` like
    ``"EMOS1+EMOS2+EPN"``, ``cameras``, ``sources``). ``cameras="each"``:
    a DataTree with each camera's own light curve at the node's path.
    Lazy as :func:`xcube.lightcurve`; a background *model* needs
    ``cameras="each"``.
    """
    from ..select import select
    from .lightcurve import lightcurve
    from .net import is_fits_file, is_search_result

    if cameras not in CAMERA_MODES:
        raise ValueError(f"cameras={cameras!r}: use one of {CAMERA_MODES}")
    nodes = event_nodes(tree)
    if cameras == "each" or len(nodes) == 1:
        out = {path: lightcurve(ev, time_bin, **kwargs) for path, ev in nodes.items()}
        return next(iter(out.values())) if cameras == "sum" else xr.DataTree.from_dict(out)
    _one_observation(nodes)
    bkg = kwargs.get("background")
    if bkg is not None and (is_search_result(bkg) or is_fits_file(bkg) or isinstance(bkg, xr.Dataset)):
        raise ValueError("lightcurve: a background model cannot be shared by summed cameras; use cameras='each' "
                         "(or a background region)")
    common = gtimod.intersection(*[gtimod.from_dataset(ev) for ev in nodes.values()])
    if common[0].size == 0:
        raise ValueError(f"lightcurve: the cameras {list(nodes)} have no good time in common; use cameras='each'")
    events = {path: select(ev, gti=common) for path, ev in nodes.items()}
    # each camera's regions selected once, and their CCDs' good time (XMM EPIC), before any light curve is built
    inside = {path: _region_events(ev, kwargs) for path, ev in events.items()}
    own = [r.ccd_gti for r in inside.values() if r is not None and r.ccd_gti is not None]
    if own:
        common = gtimod.intersection(common, *own)
        if gtimod.exposure(common) <= 0:
            raise ValueError(f"lightcurve: the cameras {list(nodes)} have no good time in common on the region's "
                             "CCDs; use cameras='each'")
        events = {path: select(ev, gti=common) for path, ev in nodes.items()}
        inside = {path: None if r is None else r.cut(common) for path, r in inside.items()}
    parts = [lightcurve(events[path], time_bin, _inside=inside[path], **kwargs) for path in nodes]
    return _sum_parts(parts, common, list(nodes))


def _region_events(events, kwargs):
    """The :class:`~xcube.products.lightcurve.RegionEvents` of one camera for
    ``lightcurve(events, **kwargs)`` (after its ``time_range`` and screening,
    as ``lightcurve`` prepares them), or None without a region."""
    from .lightcurve import prepared_events, region_events

    if kwargs.get("region") is None:
        return None
    events, expr, _, _ = prepared_events(events, kwargs.get("time_range"), kwargs.get("expr"),
                                         kwargs.get("screening", True))
    return region_events(events, kwargs["region"], kwargs.get("background"), expr)


def _sum_parts(parts: list, common, paths: list) -> xr.Dataset:
    """One light curve from per-camera light curves on the same bins."""
    from .lightcurve import lightcurve_from_counts

    ratios = [p.attrs.get("backscal_ratio") for p in parts]
    if ratios[0] is not None and not np.allclose(ratios, ratios[0], rtol=1e-9):
        raise ValueError(f"lightcurve: the cameras' source/background area ratios differ ({ratios}); sum them "
                         "with cameras='each' and your own weights")
    counts = _total(parts, "counts")
    bkg = _total(parts, "bkg_counts") if "bkg_counts" in parts[0] else None
    attrs = dict(parts[0].attrs)
    attrs.update(combined_labels(parts), cameras=paths)  # (INSTRUME of a written file: 'EMOS1+EMOS2')
    attrs.pop("backscal_ratio", None)
    attrs.update(_good_time_from(parts, paths))
    exprs = [p.attrs.get("expr") for p in parts]
    if len(set(exprs)) > 1:  # each camera's own screening (pn PATTERN <= 4, MOS PATTERN <= 12)
        names = [str(p.attrs.get("instrument") or path) for p, path in zip(parts, paths)]
        attrs["expr"] = "; ".join(f"{n}: {e}" for n, e in zip(names, exprs) if e)
    if isinstance(attrs.get("selection"), list):
        attrs["selection"] = list(dict.fromkeys(str(x) for x in attrs["selection"]))
    return lightcurve_from_counts(counts, errors=attrs.get("errors", "poisson"), bkg_counts=bkg,
                                  area_ratio=ratios[0], gti=common, attrs=attrs)


def _good_time_from(parts: list, paths: list) -> dict:
    """attrs ``ccds`` and ``gti_from`` of summed cameras: each camera's CCDs
    whose good time the common GTIs hold (``{"EMOS1": [1, 2], "EMOS2": [1, 3]}``,
    ``"EMOS1 CCDs 1, 2; EMOS2 CCDs 1, 3"``; keyed by the node paths when two
    cameras share an instrument); ``{}`` (the first camera's, as all agree)
    when no camera has per-CCD good time of a region. Eager (attrs only)."""
    names = [str(p.attrs.get("instrument") or path) for p, path in zip(parts, paths)]
    if len(set(names)) < len(names):
        names = [str(path) for path in paths]
    ccds = {n: [int(c) for c in p.attrs["ccds"]] for n, p in zip(names, parts) if "ccds" in p.attrs}
    froms = [p.attrs.get("gti_from") for p in parts]
    if not ccds and len(set(froms)) == 1:
        return {}
    out = {"gti_from": "; ".join(f"{n} {f}" for n, f in zip(names, froms) if f)}
    return dict(out, ccds=ccds) if ccds else out


def _total(parts: list, var: str) -> xr.DataArray:
    total = parts[0][var]
    for p in parts[1:]:
        if not np.array_equal(p["time_lo"].values, parts[0]["time_lo"].values):
            raise ValueError("lightcurve: the cameras' time bins differ; give t0= so that they share one grid")
        total = total + p[var].data
    return total.drop_attrs(deep=False)
