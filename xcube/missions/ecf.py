"""Energy conversion factors (ECF): count rate [ct/s] -> energy flux [erg/cm^2/s].

``flux = rate / ECF``. The table holds, per camera, optical blocking filter
and energy band, the ECFs of the 2XMM catalogue as published in Table 1 of

    Mateos, Saxton, Read & Sembay 2009, A&A 496, 879,
    "Statistical evaluation of the flux cross-calibration of the XMM-Newton
    EPIC cameras" (doi:10.1051/0004-6361/200811409, arXiv:0901.4026),

computed for an absorbed power law of photon index 1.7 and N_H = 3e20 cm^-2,
in units of 1e11 counts cm^2 / erg, for the bands 0.2-0.5, 0.5-1, 1-2,
2-4.5 and 4.5-12 keV. Only those published values are stored.

A band that is a union of table bands (the search's 0.2-2, 2-12 and 0.2-12
keV) gets the energy-flux weighted mean of its table bands,
``ECF = sum_i ECF_i F_i / sum_i F_i``, with ``F_i`` the energy flux of the
Gamma = 1.7 power law in band i (the absorption by 3e20 cm^-2 is left out of
the weights; it lowers the 0.2-0.5 keV weight, which changes the 0.2-2 keV
ECF by a few per cent). Other bands, filters or instruments have no ECF
(:func:`energy_conversion_factor` returns NaN). The sum of several cameras'
count rates converts with the sum of their ECFs.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ECF_BANDS", "ECF_TABLE", "ECF_UNIT", "ECF_PHOTON_INDEX", "ECF_REFERENCE", "energy_conversion_factor",
           "filter_name", "events_ecf"]

#: the table's bands [keV]
ECF_BANDS = ((0.2, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 4.5), (4.5, 12.0))
#: unit of the table values [counts cm^2 / erg]
ECF_UNIT = 1e11
#: photon index of the spectrum behind the table (N_H = 3e20 cm^-2)
ECF_PHOTON_INDEX = 1.7
ECF_REFERENCE = "Mateos et al. 2009, A&A 496, 879, Table 1 (2XMM ECFs; power law Gamma=1.7, NH=3e20 cm^-2)"

#: profile name -> filter -> ECF of each band of ECF_BANDS [1e11 counts cm^2 / erg]
ECF_TABLE = {
    "xmm-pn": {
        "open": (16.530, 10.256, 6.166, 1.982, 0.556),
        "thin": (9.056, 8.253, 5.878, 1.950, 0.555),
        "medium": (7.880, 7.995, 5.779, 1.927, 0.554),
        "thick": (4.699, 6.138, 4.999, 1.827, 0.548),
    },
    "xmm-mos1": {
        "open": (3.094, 2.191, 2.125, 0.758, 0.144),
        "thin": (1.725, 1.807, 2.028, 0.747, 0.144),
        "medium": (1.514, 1.756, 1.993, 0.738, 0.143),
        "thick": (0.985, 1.426, 1.775, 0.708, 0.141),
    },
    "xmm-mos2": {
        "open": (3.142, 2.196, 2.132, 0.762, 0.151),
        "thin": (1.738, 1.810, 2.034, 0.751, 0.151),
        "medium": (1.521, 1.759, 1.999, 0.742, 0.151),
        "thick": (0.983, 1.428, 1.781, 0.712, 0.149),
    },
}


def filter_name(value) -> str:
    """The table's name of a FILTER keyword value: ``"Thin1"``/``"Thin2"`` ->
    ``"thin"``, ``"Medium"`` -> ``"medium"``, ``"Thick"`` -> ``"thick"``,
    ``"Open"`` -> ``"open"``; anything else lower-cased. Eager (text only)."""
    v = str(value or "").strip().lower()
    for name in ("thin", "medium", "thick", "open"):
        if v.startswith(name):
            return name
    return v


def _power_law_flux(lo: float, hi: float, gamma: float = ECF_PHOTON_INDEX) -> float:
    """Energy flux of a photon power law E^-gamma between lo and hi [keV] (arbitrary normalisation)."""
    a = 2.0 - gamma
    return (hi ** a - lo ** a) / a


def energy_conversion_factor(profile: str, filter: str, band) -> float:
    """ECF [counts cm^2 / erg] of ``profile`` (e.g. ``"xmm-pn"``) with the
    optical ``filter`` (FILTER keyword value) in ``band`` ``(emin, emax)``
    [keV]: a table band, or a union of adjacent table bands (flux-weighted
    mean, see the module doc). NaN when the table has no value. Eager, cheap."""
    rows = ECF_TABLE.get(str(profile), {}).get(filter_name(filter))
    if rows is None:
        return float("nan")
    lo, hi = (float(v) for v in band)
    edges = [b[0] for b in ECF_BANDS] + [ECF_BANDS[-1][1]]
    i = _edge_index(edges, lo)
    j = _edge_index(edges, hi)
    if i is None or j is None or j <= i:
        return float("nan")
    w = np.array([_power_law_flux(*ECF_BANDS[k]) for k in range(i, j)])
    return float(np.dot(rows[i:j], w) / w.sum() * ECF_UNIT)


def _edge_index(edges, value):
    for k, e in enumerate(edges):
        if abs(e - value) < 1e-6:
            return k
    return None


def events_ecf(events, band) -> float:
    """ECF [counts cm^2 / erg] of the summed count rate of one or several
    cameras (EventLists; their ``profile`` and ``filter`` attrs) in ``band``
    [keV]: the sum of the cameras' ECFs (a source of flux F gives the rate
    F x ECF_i in camera i). NaN when any camera has no ECF. Eager (attrs and
    table look-ups; no event is read)."""
    evs = [events] if hasattr(events, "attrs") else list(events)
    return float(sum(energy_conversion_factor(e.attrs.get("profile", ""), e.attrs.get("filter", ""), band)
                     for e in evs))
