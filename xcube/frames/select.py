"""Choosing the target, the comparison stars and the check stars.

* :func:`pick_stars` - automatic: stars measured well in most frames are
  candidates; after a rough per-frame zero point, the steadiest become
  comparison stars and the most variable one near the centre the target;
* :func:`given_roles` - roles from star indices the user gives.

Both return a :class:`Roles`; the statistics table says why each star got
its role. Everything here is eager and small (star x frame magnitudes).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

log = logging.getLogger("xcube.frames")

__all__ = ["Roles", "PICK_DEFAULTS", "pick_stars", "given_roles", "star_statistics"]

#: thresholds of :func:`pick_stars` (their names are the configuration keys)
PICK_DEFAULTS = {"pick_err_max": 0.02, "pick_bad_max": 0.2, "pick_var_std": 0.05, "pick_var_rad": 0.5,
                 "pick_ref_n": 20, "pick_ref_std": 0.05, "pick_ref_dif": 0.10, "pick_chk_n": 1}


@dataclass
class Roles:
    """Star indices by role, and the per-star statistics behind them."""

    target: int
    comparisons: list
    checks: list = field(default_factory=list)
    candidates: list = field(default_factory=list)
    table: pd.DataFrame | None = None

    def role_of(self, nstar: int) -> np.ndarray:
        """A role name per star: target, comparison, check or '' (other); a str
        numpy array of length ``nstar``."""
        out = np.full(nstar, "", dtype=object)
        out[self.checks] = "check"
        out[self.comparisons] = "comparison"
        out[self.target] = "target"
        return out.astype(str)


def star_statistics(mag: np.ndarray, mag_err: np.ndarray, err_max: float = 0.02, ref_std: float = 0.05):
    """Per-star night statistics of ``(star, frame)`` magnitudes (eager).

    A measurement is good when finite with error below ``err_max``.
    Returns a table with ``missing`` (fraction of frames without a good
    measurement), ``std`` and ``range`` (max - min) of the magnitudes after
    removing a per-frame zero point, which is the median deviation of the
    candidate stars (``missing`` <= 0.5), then of those steadier than
    ``ref_std``.
    """
    good = np.isfinite(mag) & np.isfinite(mag_err) & (mag_err < err_max)
    m = np.where(good, mag, np.nan)
    missing = 1.0 - good.mean(axis=1)
    use = missing <= 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        dev = m - np.nanmedian(m, axis=1)[:, None]
        for _ in range(2):
            zp = np.nanmedian(dev[use], axis=0) if use.any() else np.zeros(m.shape[1])
            corr = dev - np.nan_to_num(zp)[None, :]
            std = np.nanstd(corr, axis=1)
            steady = (missing <= 0.5) & (std < ref_std)
            use = steady if steady.sum() >= 3 else use
        rng = np.nanmax(corr, axis=1) - np.nanmin(corr, axis=1)
        med = np.nanmedian(m, axis=1)
    return pd.DataFrame({"missing": missing, "std": std, "range": rng, "median_mag": med})


def _central(x, y, shape, radius: float) -> np.ndarray:
    ny, nx = shape
    return (np.abs(np.asarray(x) - (nx - 1) / 2) <= radius * nx / 2) & \
           (np.abs(np.asarray(y) - (ny - 1) / 2) <= radius * ny / 2)


def pick_stars(mag, mag_err, star_x, star_y, shape, pick_err_max=0.02, pick_bad_max=0.2, pick_var_std=0.05,
               pick_var_rad=0.5, pick_ref_n=20, pick_ref_std=0.05, pick_ref_dif=0.10, pick_chk_n=1) -> Roles:
    """Target, comparisons and checks from ``(star, frame)`` magnitudes of one aperture.

    Candidates have a missing rate <= ``pick_bad_max`` (a measurement is
    missing when absent or with an error >= ``pick_err_max`` mag).
    Comparison candidates have a night std < ``pick_ref_std`` and max - min
    < ``pick_ref_dif``; the ``pick_ref_n`` steadiest are the comparisons and
    the next ``pick_chk_n`` the checks (or, with no spare candidate, the
    last comparisons when at least two remain). Target candidates have std
    > ``pick_var_std`` and lie within ``pick_var_rad`` of the centre (as a
    fraction of the half-width in x and y); the most variable is the
    target. ``shape``: (ny, nx) of the base frame. Raises ``ValueError``
    saying which threshold to relax when no target or comparison is found.
    Eager, numpy/pandas: ``mag``, ``mag_err`` are ``(star, frame)`` [mag]
    arrays (read into memory), ``star_x``, ``star_y`` [px] of length ``star``,
    ``shape`` ``(ny, nx)``.
    """
    st = star_statistics(np.asarray(mag), np.asarray(mag_err), pick_err_max, pick_ref_std)
    st.insert(0, "x", np.asarray(star_x, float))
    st.insert(1, "y", np.asarray(star_y, float))
    cand = st["missing"] <= pick_bad_max
    if not cand.any():
        raise ValueError(f"no star is measured with an error below pick_err_max={pick_err_max} mag in at least "
                         f"{1 - pick_bad_max:.0%} of the frames (pick_bad_max={pick_bad_max}); raise them or give "
                         "starxy")
    var = cand & (st["std"] > pick_var_std) & _central(st.x, st.y, shape, pick_var_rad)
    ref = cand & (st["std"] < pick_ref_std) & (st["range"] < pick_ref_dif) & ~var
    targets = st[var].sort_values("std", ascending=False).index.tolist()
    refs = st[ref].sort_values("std").index.tolist()
    if not targets:
        raise ValueError(f"no variable star: none of {int(cand.sum())} well-measured stars has a night std above "
                         f"pick_var_std={pick_var_std} within pick_var_rad={pick_var_rad} of the centre; give the "
                         "target with starxy=[(x, y), ...] and ind_tgt, or lower pick_var_std")
    if not refs:
        raise ValueError(f"no comparison star: no well-measured star (missing <= pick_bad_max={pick_bad_max}) has "
                         f"std < pick_ref_std={pick_ref_std} and max-min < pick_ref_dif={pick_ref_dif}; relax them "
                         "or give starxy with ind_ref")
    comps, checks = refs[:pick_ref_n], refs[pick_ref_n:pick_ref_n + pick_chk_n]
    while len(checks) < pick_chk_n and len(comps) > 2:
        checks.insert(0, comps.pop())
    roles = Roles(int(targets[0]), [int(i) for i in comps], [int(i) for i in checks], [int(i) for i in targets], st)
    st["role"] = roles.role_of(len(st))
    st.loc[[i for i in targets[1:]], "role"] = "candidate"
    log.info("picked target %d (std %.3f mag), %d comparisons, %d checks", roles.target,
             st["std"].iloc[roles.target], len(comps), len(checks))
    return roles


def given_roles(nstar: int, ind_tgt=None, ind_ref=None, ind_chk=None) -> Roles:
    """Roles from user indices into the star list: target ``ind_tgt``
    (default 0; with a list, the first is the target and the rest are
    treated as check stars), comparisons ``ind_ref`` (default every other
    given star), checks ``ind_chk`` (default none). Indices are checked
    against ``nstar`` (``ValueError`` naming the bad one). Eager."""
    tgt = [0] if ind_tgt is None else [int(i) for i in np.atleast_1d(ind_tgt)]
    chk = [] if ind_chk is None else [int(i) for i in np.atleast_1d(ind_chk)]
    ref = [i for i in range(nstar) if i not in tgt and i not in chk] if ind_ref is None else \
        [int(i) for i in np.atleast_1d(ind_ref)]
    for name, idx in (("ind_tgt", tgt), ("ind_ref", ref), ("ind_chk", chk)):
        bad = [i for i in idx if not 0 <= i < nstar]
        if bad:
            raise ValueError(f"{name}={bad} is outside the {nstar} stars of starxy (indices 0..{nstar - 1})")
    if not ref:
        raise ValueError("no comparison star: starxy needs at least one star besides the target (ind_ref)")
    return Roles(tgt[0], ref, tgt[1:] + chk, tgt)
