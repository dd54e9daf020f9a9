"""Parameter sets of the transient search: the grid, run identifiers and hashes.

``search_transients`` and surveys run an observation through a grid of
parameter sets (time bins x energy bands x sigma levels). Each set has a
stable hash of its values (a survey reuses a finished run with the same
hash), and each (observation, set) pair has a run identifier naming its
results and output directory.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SearchParams", "parameter_grid", "run_id", "energy_bands_from_flat"]


@dataclass(frozen=True)
class SearchParams:
    """One parameter set of the transient search.

    time_bin [s], energy_band (emin, emax) [keV], sigma (Gaussian-equivalent
    detection level), size_arcsec (spatial cell [arcsec]) and ``extra``: any
    further keyword arguments of ``xcube.search_transients`` as a sorted tuple
    of (name, value) pairs (values must be JSON-serialisable).
    """

    time_bin: float = 50.0
    energy_band: tuple = (0.2, 12.0)
    sigma: float = 3.0
    size_arcsec: float = 20.0
    extra: tuple = field(default=())

    def __post_init__(self):
        emin, emax = (float(e) for e in self.energy_band)
        ok = all(np.isfinite([self.time_bin, emin, emax, self.sigma, self.size_arcsec]))
        if not (ok and self.time_bin > 0 and 0 <= emin < emax and self.sigma > 0 and self.size_arcsec > 0):
            raise ValueError(
                f"invalid search parameters time_bin={self.time_bin}, energy_band={self.energy_band}, "
                f"sigma={self.sigma}, size_arcsec={self.size_arcsec}: need time_bin > 0, 0 <= emin < emax, "
                "sigma > 0 and size_arcsec > 0"
            )
        object.__setattr__(self, "time_bin", float(self.time_bin))
        object.__setattr__(self, "energy_band", (emin, emax))
        object.__setattr__(self, "sigma", float(self.sigma))
        object.__setattr__(self, "size_arcsec", float(self.size_arcsec))
        extra = self.extra.items() if isinstance(self.extra, dict) else self.extra
        object.__setattr__(self, "extra", tuple(sorted((str(k), v) for k, v in extra)))

    def kwargs(self) -> dict:
        """Keyword arguments for ``xcube.search_transients``."""
        return dict(time_bin=self.time_bin, energy_band=self.energy_band, sigma=self.sigma,
                    size_arcsec=self.size_arcsec, **dict(self.extra))

    def to_dict(self) -> dict:
        """Flat, JSON-serialisable description (``emin``/``emax`` in keV)."""
        return dict(time_bin=self.time_bin, emin=self.energy_band[0], emax=self.energy_band[1],
                    sigma=self.sigma, size_arcsec=self.size_arcsec, extra=json.dumps(dict(self.extra), sort_keys=True))

    @property
    def hash(self) -> str:
        """Stable 16-hex-digit hash of the parameter values (not of the xcube version)."""
        blob = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _num(v: float) -> str:
    """``v`` for a run id: ``%g`` (``50``, ``0.5``, as ever) when that reads back
    as ``v``, else the shortest text that does (``2000.0001``, not ``2000``), so
    that two values never share a run id."""
    short = f"{v:g}"
    return short if float(short) == float(v) else repr(float(v))


def run_id(obsid: str, params: SearchParams, subset: int = 0) -> str:
    """Run identifier ``{obsid}_{subset}_{time_bin}_{emin}_{emax}`` (e.g.
    ``0765080801_0_50_0.2_12.0``, as the transient search names its runs).

    Numbers are written with ``%g`` where that is exact, else in full
    (shortest round-trip form), so time bins 2000 and 2000.0001 get two
    ids. Parameter sets differing in more than time bin and band get a suffix
    ``_s{sigma}`` / ``_c{size}`` / ``_h{hash8}`` so that every set of a grid has
    its own directory. The observation id goes through
    :func:`xcube.io.paths.safe_component`, so a run id is always a harmless
    file name whatever the file's OBS_ID says.
    Eager (string formatting).
    """
    from ..io.paths import safe_component

    emin, emax = params.energy_band
    rid = f"{safe_component(obsid, 'observation id')}_{subset}_{_num(params.time_bin)}_{emin!r}_{emax!r}"
    if params.sigma != 3.0:
        rid += f"_s{_num(params.sigma)}"
    if params.size_arcsec != 20.0:
        rid += f"_c{_num(params.size_arcsec)}"
    if params.extra:
        rid += f"_h{params.hash[:8]}"
    return rid


def energy_bands_from_flat(values) -> list[tuple[float, float]]:
    """``[0.2, 2, 2, 12]`` -> ``[(0.2, 2.0), (2.0, 12.0)]`` (the CLI's
    ``--energy`` form). Eager; bands in [keV]."""
    values = [float(v) for v in values]
    if len(values) % 2:
        raise ValueError(f"--energy takes pairs EMIN EMAX in keV; got an odd number of values {values}")
    return [(values[i], values[i + 1]) for i in range(0, len(values), 2)]


def parameter_grid(time_bin=(5.0, 50.0, 200.0), energy_band=((0.2, 2.0), (2.0, 12.0), (0.2, 12.0)),
                   sigma=(3.0,), size_arcsec: float = 20.0, **extra) -> list[SearchParams]:
    """The product time bins x energy bands x sigmas as a list of
    :class:`SearchParams`, duplicates removed, in that nesting order.

    ``time_bin`` [s] and ``sigma``: a number or a list; ``energy_band``
    [keV]: one ``(emin, emax)`` or a list of them. ``extra`` keywords go to
    every set unchanged. The default is the reference grid {5, 50, 200} s x
    {0.2-2, 2-12, 0.2-12} keV at 3 sigma.
    Eager (a small list).
    """
    tbs = [float(t) for t in np.atleast_1d(time_bin)]
    sigmas = [float(s) for s in np.atleast_1d(sigma)]
    eb = np.asarray(energy_band, dtype=float)
    if eb.ndim == 1:
        eb = eb.reshape(1, -1)
    if eb.ndim != 2 or eb.shape[1] != 2:
        raise ValueError(f"energy_band must be (emin, emax) or a list of them [keV], got {energy_band!r}")
    grid = [SearchParams(tb, (float(a), float(b)), s, size_arcsec, tuple(sorted(extra.items())))
            for tb, (a, b), s in itertools.product(tbs, eb, sigmas)]
    out = list(dict.fromkeys(grid))
    if not out:
        raise ValueError("empty parameter grid: give at least one time bin, energy band and sigma")
    return out
