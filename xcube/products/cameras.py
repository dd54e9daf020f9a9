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
    common good time. Returns one light curve on dim ``time`` (attrs ``instrument`` like
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
    parts = [lightcurve(select(ev, gti=common), time_bin, **kwargs) for ev in nodes.values()]
    own = gtimod.intersection(*[gtimod.from_dataset(p) for p in parts])  # a region's CCD GTIs (XMM EPIC)
    if not _same_gti(own, gtimod.intersection(common, ([parts[0]["time_lo"].values[0]],
                                                       [parts[0]["time_hi"].values[-1]]))):
        if own[0].size == 0:
            raise ValueError(f"lightcurve: the cameras {list(nodes)} have no good time in common on the region's "
                             "CCDs; use cameras='each'")
        common = own
        parts = [lightcurve(select(ev, gti=common), time_bin, **kwargs) for ev in nodes.values()]
    return _sum_parts(parts, common, list(nodes))


def _same_gti(a, b) -> bool:
    return a[0].shape == b[0].shape and np.allclose(a[0], b[0], rtol=0, atol=1e-9) and np.allclose(
        a[1], b[1], rtol=0, atol=1e-9)


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
    return lightcurve_from_counts(counts, errors=attrs.get("errors", "poisson"), bkg_counts=bkg,
                                  area_ratio=ratios[0], gti=common, attrs=attrs)


def _total(parts: list, var: str) -> xr.DataArray:
    total = parts[0][var]
    for p in parts[1:]:
        if not np.array_equal(p["time_lo"].values, parts[0]["time_lo"].values):
            raise ValueError("lightcurve: the cameras' time bins differ; give t0= so that they share one grid")
        total = total + p[var].data
    return total.drop_attrs(deep=False)
