"""Deprecated location of the search parameter sets: use
:mod:`xcube.transients.params` (``SearchParams``, ``parameter_grid``,
``run_id``, ``energy_bands_from_flat``). ``param_grid`` is the old name of
``parameter_grid``; both stay importable from here for one release."""
from __future__ import annotations

import warnings

from ..transients.params import SearchParams, energy_bands_from_flat, parameter_grid, run_id

__all__ = ["SearchParams", "param_grid", "parameter_grid", "run_id", "energy_bands_from_flat"]


def param_grid(time_bins=(5.0, 50.0, 200.0), energy_bands=((0.2, 2.0), (2.0, 12.0), (0.2, 12.0)),
               sigmas=(3.0,), size_arcsec: float = 20.0, **extra) -> list[SearchParams]:
    """Deprecated: :func:`xcube.transients.params.parameter_grid` (same
    grid; its arguments are named ``time_bin``, ``energy_band``, ``sigma``).

    ``time_bins`` [s], ``energy_bands`` [keV] ``(emin, emax)`` pairs,
    ``size_arcsec`` [arcsec]. Returns a list with one :class:`SearchParams`
    per combination time bin x band x sigma (duplicates removed)."""
    warnings.warn("xcube.survey.param_grid is deprecated; use xcube.survey.parameter_grid "
                  "(arguments time_bin=, energy_band=, sigma=)", DeprecationWarning, stacklevel=2)
    return parameter_grid(time_bins, energy_bands, sigmas, size_arcsec=size_arcsec, **extra)
