"""The decision: which voxels of a counts cube are peaks (flares) or eclipses.

A voxel (frame t, pixel p) with n counts and expected counts mu (the
background model, :func:`~xcube.transients.background.model_frames`) is a
peak when ``log10_bayes_peak(n, mu)`` exceeds the threshold of ``sigma``,
an eclipse when ``log10_bayes_eclipse(n, mu)`` does; the answer is the
exact one of :func:`xcube.bayes.masks` (the same threshold table and the
same per-voxel rules, ``bayes.peak_decision``/``eclipse_decision``).

:func:`flag_voxels` decides every voxel of a cube and returns
:class:`Flags`: per pixel the number of flagged frames and the list of
flagged voxels. On a compact cube it never makes the dense cube: frames
whose mu images are equal (same template, background counts, exposure and
live fractions: a :class:`FrameTypes` *type*) share one eclipse-candidate list, a voxel without
counts is never a peak, and one loop over the events tests the rest. On a
dense cube it runs ``bayes.masks`` block by block. The expected false alarms
(:func:`false_alarms`) are summed per type.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numba
import numpy as np
import xarray as xr

from .. import _numba_cache  # noqa: F401 (numba's cache: a failure warns instead of failing)
from ..binning.compact import CompactCube
from ..binning.counts import reductions
from ..scheduler import thread_map
from . import bayes
from .background import (
    expected_value,
    expected_value_jit,
    frame_templates,
    live_fraction_of,
    model_frames,
    unique_rows,
)

__all__ = ["Flags", "FrameTypes", "flag_voxels", "reflag_pixels", "false_alarms", "eclipse_candidates", "mask_cubes"]

#: frames per block of the dense path
_DENSE_BLOCK_BYTES = 64 * 2**20


@dataclass(eq=False)
class Flags:
    """The flagged voxels of a cube: ``peak``/``eclipse`` (ny, nx) int64,
    the number of flagged frames per pixel; ``voxels`` (m, 3) int64 rows
    ``(frame, pixel, kind)`` (pixel = iy * nx + ix; kind 0 peak, 1 eclipse),
    sorted by frame, pixel and kind."""

    peak: np.ndarray
    eclipse: np.ndarray
    voxels: np.ndarray

    def per_region(self, labels, n_regions: int, n_frames: int, kind: int) -> np.ndarray:
        """Flagged voxels of ``kind`` per region and frame, int64 (n_regions,
        n_frames); ``labels`` ((ny, nx) int) is each pixel's region, -1 none."""
        out = np.zeros((n_regions, n_frames), np.int64)
        v = self.voxels[self.voxels[:, 2] == kind]
        r = np.asarray(labels).ravel()[v[:, 1]]
        np.add.at(out, (r[r >= 0], v[r >= 0, 0]), 1)
        return out


# ---------------------------------------------------------------------- frame types
@dataclass(eq=False)
class FrameTypes:
    """Frames grouped by what their mu image depends on.

    ``mu[t, p] = T_t[p] L[t] + S0[p] f[t, p] exposure[t]``: frames with the
    same template T_t (one per subset GTI/BTI and column of live fractions
    f of the pixels' CCDs, :func:`~xcube.transients.background.frame_templates`),
    background counts L, exposure and live fractions share one mu image, a
    *type*. ``ftype`` (n_frames,) is each frame's type, -1 where mu is
    undefined; ``sub``/``lc``/``exposure``/``n_frames``/``tmpl_of``/``rate_of``
    describe the types; ``templates`` (n_templates, pixels) are the flat
    templates (one per subset when every CCD was live throughout), type k
    using row ``tmpl_of[k]``; ``rates`` (n_rates, pixels) the source-rate
    images ``S0 f`` (a single row ``S0`` when every CCD under a source was
    live throughout), type k using row ``rate_of[k]``.
    """

    ftype: np.ndarray
    sub: np.ndarray
    lc: np.ndarray
    exposure: np.ndarray
    n_frames: np.ndarray
    templates: np.ndarray
    tmpl_of: np.ndarray
    rates: np.ndarray
    rate_of: np.ndarray

    @classmethod
    def from_model(cls, model: xr.Dataset) -> "FrameTypes":
        """The types of a :func:`~xcube.transients.background.background_model`.

        ``ftype`` has shape ``(n_frames,)`` (the model's frames), the per-type
        arrays ``(n_types,)``, the templates ``(n_templates, ny * nx)``
        float64 (one per subset and distinct column of the model's
        ``live_fraction`` among the defined frames) and the rate images
        ``(n_rates, ny * nx)`` float64 (one per distinct column in the CCD
        groups that hold a source: elsewhere ``S0`` is 0). Eager: reads the
        model's variables into numpy (computing them if the model is
        Dask-backed)."""
        subset, defined = model["subset"].values, model["defined"].values
        idx = np.flatnonzero(defined)
        ftype = np.full(subset.shape, -1, dtype=np.int64)
        rate = np.ascontiguousarray(model["source_rate"].values, dtype=np.float64).ravel()
        group, fraction = live_fraction_of(model)
        live = np.zeros(subset.shape, np.int64)  # each frame's row of the rate images
        cols = np.ones((fraction.shape[0], 1))
        hosts = np.zeros(fraction.shape[0], bool)  # the groups holding a source (elsewhere S0 f = 0 whatever f)
        hosts[np.unique(group.ravel()[rate > 0])] = True
        hosts[0] = False
        if idx.size and hosts.any():
            uniq_f, inv, _ = unique_rows(np.ascontiguousarray(fraction[hosts][:, idx].T))
            cols = np.ones((fraction.shape[0], uniq_f.shape[0]))
            cols[hosts] = uniq_f.T
            live[idx] = inv
        rates = np.ascontiguousarray(rate[None] * cols[group.ravel()].T)  # (n_rates, pixels)
        templates, tmpl = frame_templates(model, idx)
        if idx.size:
            key = np.stack([subset[idx].astype(np.float64), model["light_curve"].values[idx].astype(np.float64),
                            model["exposure"].values[idx], live[idx].astype(np.float64),
                            tmpl.astype(np.float64)], axis=1)
            uniq, inverse, counts = unique_rows(key)
            ftype[idx] = inverse
        else:
            uniq, counts = np.zeros((0, 5)), np.zeros(0, np.int64)
        return cls(ftype, uniq[:, 0].astype(np.int8), uniq[:, 1].copy(), uniq[:, 2].copy(),
                   counts.astype(np.int64), templates, uniq[:, 4].astype(np.int64), rates, uniq[:, 3].astype(np.int64))

    @property
    def size(self) -> int:
        """Number of frame types (the length of ``sub``, ``lc``, ``exposure``
        and ``n_frames``)."""
        return self.sub.size

    def template(self, k):
        """Flat template of each type in ``k`` (types, pixels)."""
        return self.templates[self.tmpl_of[k]]

    def mu(self, k0: int, k1: int) -> np.ndarray:
        """mu images [count] of types ``k0:k1``: a float64 numpy array of shape
        ``(k1 - k0, ny * nx)`` (flat pixels). Eager."""
        k = np.arange(k0, k1)
        return expected_value(self.template(k), self.lc[k, None], self.rates[self.rate_of[k]],
                              self.exposure[k, None])


def eclipse_candidates(types: FrameTypes, sigma: float, block: int = 1024):
    """Per type, the pixels where an eclipse is possible: mu above the n = 0
    eclipse break's guard band ``eclipse_lo[0]`` (elsewhere no count is an
    eclipse, the breaks rising with n). Returns ``(cand, cand_ptr)``, the
    pixels of type k being ``cand[cand_ptr[k]:cand_ptr[k+1]]``. Only pixels
    whose mu can reach the break at the largest background counts and
    exposure of the types of one template are looked at (mu grows with both). Eager, numpy: ``cand`` and
    ``cand_ptr`` are 1-D int64 (``cand_ptr`` of length ``types.size + 1``),
    computed in blocks of ``block`` types."""
    e0 = bayes.threshold_table(sigma).eclipse_lo[0]
    parts = []
    if types.size and np.isfinite(e0):
        for j, tmpl in enumerate(types.templates):
            ks = np.flatnonzero(types.tmpl_of == j)
            if ks.size == 0:
                continue
            bound = expected_value(tmpl, types.lc[ks].max(), types.rates[np.unique(types.rate_of[ks])].max(axis=0),
                                   types.exposure[ks].max())
            with np.errstate(invalid="ignore"):
                cols = np.flatnonzero(bound > e0)
            for b0 in range(0, ks.size if cols.size else 0, block):
                kb = ks[b0:b0 + block]
                mu = expected_value(tmpl[cols][None], types.lc[kb, None], types.rates[:, cols][types.rate_of[kb]],
                                    types.exposure[kb, None])
                with np.errstate(invalid="ignore"):
                    kk, pp = np.nonzero(mu > e0)
                parts.append((kb[kk], cols[pp]))
    counts = np.zeros(types.size, dtype=np.int64)
    cand = np.zeros(0, np.int64)
    if parts:
        k_all = np.concatenate([p[0] for p in parts])
        p_all = np.concatenate([p[1] for p in parts])
        order = np.lexsort((p_all, k_all))
        k_all, cand = k_all[order], p_all[order].astype(np.int64)
        counts = np.bincount(k_all, minlength=types.size)
    ptr = np.zeros(types.size + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return cand, ptr


def false_alarms(model, sigma: float) -> bayes.FalseAlarms:
    """Expected false alarms ``(peak, eclipse)`` of all voxels with a defined
    mu (:func:`xcube.bayes.expected_false_alarms` of each frame type's image
    times its number of frames). ``model``: a background model or its
    :class:`FrameTypes`. Eager: one numba loop per thread over the types,
    each mu image made in a buffer of one image (no (types, pixels) array)."""
    types = model if isinstance(model, FrameTypes) else FrameTypes.from_model(model)
    sums = np.zeros((types.size, 3))
    if types.size:
        bayes.threshold(sigma)
        g = bayes.false_alarm_grid(float(sigma))
        args = (types.lc, types.exposure, types.templates, types.tmpl_of, types.rates, types.rate_of, *g, sums)
        workers = min(os.cpu_count() or 1, max(types.size * types.rates.shape[1] // _PARALLEL_VOXELS, 1))
        bounds = np.linspace(0, types.size, workers + 1).astype(np.int64)
        thread_map(lambda k: _fa_types_kernel(bounds[k], bounds[k + 1], *args), range(workers))
    for k in np.flatnonzero(sums[:, 2]):  # types with voxels beyond the interpolation grid: the exact path
        f = bayes.expected_false_alarms(types.mu(k, k + 1), sigma)
        sums[k, :2] = f.peak, f.eclipse
    fa = types.n_frames @ sums[:, :2]
    return bayes.FalseAlarms(float(fa[0]), float(fa[1]))


#: voxels (types x pixels) per thread of :func:`false_alarms`
_PARALLEL_VOXELS = 1 << 20


@numba.njit(nogil=True, cache=True)
def _fa_types_kernel(k0, k1, lc, exposure, templates, tmpl_of, rates, rate_of, mu_lo, mu_hi, e_min, bits, base, brk,
                     coef, sums):  # pragma: no cover - compiled
    """``sums[k] = (peak, eclipse, slow voxels)`` of types ``k0:k1``: the
    mu image of each type in one buffer, then :func:`bayes.false_alarm_sums`."""
    mu = np.empty(rates.shape[1])
    none = np.zeros(0, np.bool_)
    for k in range(k0, k1):
        tmpl = templates[tmpl_of[k]]
        rate = rates[rate_of[k]]
        for p in range(rate.size):
            mu[p] = expected_value_jit(tmpl[p], lc[k], rate[p], exposure[k])
        sums[k, 0], sums[k, 1], sums[k, 2] = bayes.false_alarm_sums(mu, mu_lo, mu_hi, e_min, bits, base, brk, coef,
                                                                    none)


# ---------------------------------------------------------------------- flags
def flag_voxels(cube, model: xr.Dataset, sigma: float, types: FrameTypes | None = None) -> Flags:
    """Decide every voxel of ``cube`` (a :class:`~xcube.binning.CompactCube`
    or a dense (time, y, x) counts DataArray) against the mu of ``model``
    (:func:`~xcube.transients.background.background_model`) at ``sigma``.

    Returns :class:`Flags`. Eager. Compact cubes: one numba loop over the
    events (frame ranges in parallel threads above 1M events), no dense
    cube; ``types`` reuses frame types already built. Dense cubes:
    ``bayes.masks`` on blocks of frames, one block in memory at a time.
    """
    if isinstance(cube, CompactCube):
        return _flag_compact(cube, types or FrameTypes.from_model(model), sigma)
    red = reductions(cube)
    nt, ny, nx = red.shape
    per = max(1, _DENSE_BLOCK_BYTES // max(ny * nx * 8, 1))
    fp, fe = np.zeros(ny * nx, np.int64), np.zeros(ny * nx, np.int64)
    rows = []
    for f0 in range(0, nt, per):
        f1 = min(nt, f0 + per)
        pk, ec = bayes.masks(red.dense(f0, f1), model_frames(model, f0, f1), sigma)
        for kind, m, acc in ((0, pk, fp), (1, ec, fe)):
            m = m.reshape(f1 - f0, -1)
            acc += m.sum(axis=0)
            t, p = np.nonzero(m)
            rows.append(np.stack([t + f0, p, np.full(t.size, kind)], axis=1))
    return Flags(fp.reshape(ny, nx), fe.reshape(ny, nx), _sorted_rows(rows))


def reflag_pixels(cube, model: xr.Dataset, flags: Flags, pixels, sigma: float,
                  types: FrameTypes | None = None) -> Flags:
    """``flags`` with the voxels of ``pixels`` (flat ``iy * nx + ix``)
    decided again against ``model`` (e.g. after
    :func:`~xcube.transients.background.mask_eclipses` changed their source
    rate); the other pixels' voxels are kept. The same per-voxel test as
    :func:`flag_voxels` (``bayes.masks``), on the (frames, pixels) counts of
    those pixels only: one reduction over the cube. Returns a new
    :class:`Flags` (``peak``/``eclipse`` (ny, nx), ``voxels`` (m, 3) rows);
    ``flags`` itself is not modified. Eager."""
    px = np.unique(np.asarray(pixels, dtype=np.int64))
    if px.size == 0:
        return flags
    types = types or FrameTypes.from_model(model)
    red = reductions(cube)
    ny, nx = flags.peak.shape
    labels = np.full(ny * nx, -1, np.int64)
    labels[px] = np.arange(px.size)
    n = np.asarray(red.region_counts(labels.reshape(ny, nx), px.size), dtype=np.float64).T  # (frames, pixels)
    k = types.ftype
    ok = k >= 0
    mu = np.full(n.shape, np.nan)
    kk = k[ok]
    mu[ok] = expected_value(types.templates[:, px][types.tmpl_of[kk]], types.lc[kk, None],
                            types.rates[:, px][types.rate_of[kk]], types.exposure[kk, None])
    pk, ec = bayes.masks(n, mu, sigma)
    keep = ~np.isin(flags.voxels[:, 1], px)
    rows = [flags.voxels[keep]]
    fp, fe = flags.peak.ravel().copy(), flags.eclipse.ravel().copy()
    for kind, m, acc in ((0, pk, fp), (1, ec, fe)):
        acc[px] = m.sum(axis=0)
        t, j = np.nonzero(m)
        rows.append(np.stack([t, px[j], np.full(t.size, kind)], axis=1))
    return Flags(fp.reshape(ny, nx), fe.reshape(ny, nx), _sorted_rows(rows))


def _sorted_rows(rows) -> np.ndarray:
    rec = np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 3), np.int64)
    return rec[np.lexsort((rec[:, 2], rec[:, 1], rec[:, 0]))] if rec.size else rec.reshape(0, 3)


def mask_cubes(counts: xr.DataArray, expected: xr.DataArray, sigma: float) -> xr.Dataset:
    """Boolean ``peak`` and ``eclipse`` cubes (``xcube.bayes.masks`` of the
    counts and expected-counts [count] DataArrays at ``sigma``), each with the
    dims, shape and coordinates of ``counts`` (e.g. ``(time, y, x)``). Lazy
    for Dask-backed inputs (one kernel pass per block, nothing computed
    here); computed eagerly when both are numpy-backed."""
    peak, eclipse = bayes.masks(counts.data, expected.data, sigma)
    return xr.Dataset({"peak": (counts.dims, peak), "eclipse": (counts.dims, eclipse)}, coords=counts.coords)


def _flag_compact(cube: CompactCube, types: FrameTypes, sigma: float, threads: int | None = None) -> Flags:
    """The compact path of :func:`flag_voxels`: :func:`_flag_kernel` on frame
    ranges of about equal counts, then the undecided voxels settled by the
    direct test (``bayes.masks``)."""
    table = bayes.threshold_table(sigma)
    cand, cand_ptr = eclipse_candidates(types, sigma)
    npix = cube.n_pixels
    if threads is None:
        threads = min(os.cpu_count() or 1, 8) if cube.cells.size >= 1 << 20 else 1

    def run(f0, f1):
        cap_r, cap_u = 1 << 16, 1 << 12
        while True:
            fp, fe = np.zeros(npix, np.int64), np.zeros(npix, np.int64)
            rec, und = np.empty((cap_r, 3), np.int64), np.empty((cap_u, 4), np.int64)
            nrec, nund = _flag_kernel(cube.cells, cube.seg, f0, f1, types.ftype, types.lc, types.exposure,
                                      types.templates, types.tmpl_of, types.rates, types.rate_of, table.peak_lo,
                                      table.peak_hi, table.eclipse_lo, table.eclipse_hi, cand, cand_ptr, fp, fe,
                                      rec, und)
            if nrec <= cap_r and nund <= cap_u:
                return fp, fe, rec[:nrec], und[:nund]
            cap_r, cap_u = max(cap_r, int(nrec)), max(cap_u, int(nund))

    parts = thread_map(lambda r: run(*r), cube.frame_ranges(threads))
    fp, fe = sum(p[0] for p in parts), sum(p[1] for p in parts)
    rows = [p[2] for p in parts]
    und = np.concatenate([p[3] for p in parts])
    if und.size:
        t, p, n, kind = und.T
        k = types.ftype[t]
        mu = expected_value(types.templates[types.tmpl_of[k], p], types.lc[k], types.rates[types.rate_of[k], p],
                            types.exposure[k])
        pk, ec = bayes.masks(n.astype(np.float64), mu, sigma)
        yes = np.where(kind == 0, pk, ec)
        np.add.at(fp, p[yes & (kind == 0)], 1)
        np.add.at(fe, p[yes & (kind == 1)], 1)
        rows.append(np.stack([t[yes], p[yes], kind[yes]], axis=1))
    return Flags(fp.reshape(cube.ny, cube.nx), fe.reshape(cube.ny, cube.nx), _sorted_rows(rows))


@numba.njit(inline="always")
def _record(rec, nrec, und, nund, t, p, n, kind, dec):  # pragma: no cover - compiled
    """Write voxel (t, p) of ``kind`` to ``rec`` when flagged (dec 1) or to
    ``und`` when undecided (dec 2); rows beyond the arrays are counted only.
    Returns the new (nrec, nund)."""
    if dec == 1:
        if nrec < rec.shape[0]:
            rec[nrec, 0] = t
            rec[nrec, 1] = p
            rec[nrec, 2] = kind
        return nrec + 1, nund
    if dec == 2:
        if nund < und.shape[0]:
            und[nund, 0] = t
            und[nund, 1] = p
            und[nund, 2] = n
            und[nund, 3] = kind
        return nrec, nund + 1
    return nrec, nund


@numba.njit(nogil=True, cache=True)
def _flag_kernel(cells, seg, f0, f1, ftype, k_lc, k_exp, templates, tmpl_of, rates, rate_of, plo, phi, elo, ehi, cand,
                 cand_ptr, fp, fe, rec, und):  # pragma: no cover - compiled
    """Flag every voxel of frames ``f0:f1`` of a compact cube, frame by frame.

    Frame ``t`` of type ``k = ftype[t]`` (-1: mu undefined, never flagged)
    has ``mu[p] = expected_value(T[p], k_lc[k], rate[p], k_exp[k])`` (T the
    row ``tmpl_of[k]`` of ``templates``, ``rate`` the row ``rate_of[k]`` of
    ``rates``). Peaks are tested on the pixels the
    frame's events touch (n = 0 is never a peak); eclipses on the type's
    candidate pixels ``cand[cand_ptr[k]:cand_ptr[k+1]]``. Each test is
    ``bayes.peak_decision``/``eclipse_decision``; a voxel in a guard band or
    with n beyond the table goes to ``und`` as ``(t, p, n, kind)``. Adds the
    flagged frames per pixel to ``fp``/``fe`` and writes flagged voxels to
    ``rec`` as ``(t, p, kind)``. Returns ``(flagged, undecided)`` counts."""
    size = plo.size
    cnt = np.zeros(fp.size, dtype=np.int32)
    touched = np.empty(fp.size, dtype=np.int64)
    nund = 0
    nrec = 0
    for t in range(f0, f1):
        k = ftype[t]
        if k < 0:
            continue
        nt = 0  # counts of the frame, and the list of pixels it touches (appended without a branch)
        for i in range(seg[t], seg[t + 1]):
            p = cells[i]
            c = cnt[p]
            touched[nt] = p
            nt += c == 0
            cnt[p] = c + 1
        tm = templates[tmpl_of[k]]
        rate = rates[rate_of[k]]
        lc = k_lc[k]
        ex = k_exp[k]
        for j in range(cand_ptr[k], cand_ptr[k + 1]):
            p = cand[j]
            n = cnt[p]
            dec = _eclipse_of(n, expected_value_jit(tm[p], lc, rate[p], ex), elo, ehi, size)
            fe[p] += dec == 1
            nrec, nund = _record(rec, nrec, und, nund, t, p, n, 1, dec)
        for j in range(nt):
            p = touched[j]
            n = cnt[p]
            cnt[p] = 0
            m = expected_value_jit(tm[p], lc, rate[p], ex)
            if not (m >= 0.0 and m < np.inf):
                continue
            dec = bayes.peak_decision(n, m, plo, phi) if n < size else 2
            fp[p] += dec == 1
            nrec, nund = _record(rec, nrec, und, nund, t, p, n, 0, dec)
    return nrec, nund


@numba.njit(inline="always")
def _eclipse_of(n, m, elo, ehi, size):  # pragma: no cover - compiled
    """``bayes.eclipse_decision`` of n counts, 2 (undecided) beyond the table."""
    return bayes.eclipse_decision(n, m, elo, ehi) if n < size else 2
