"""Energy conversion factors: the 2XMM table of Mateos et al. 2009, unions of
its bands, the cameras' sum, and the peak flux column."""
from __future__ import annotations

import numpy as np
import pytest

from xcube.missions.ecf import ECF_TABLE, ECF_UNIT, energy_conversion_factor, events_ecf, filter_name


def _pl(lo, hi, gamma=1.7):
    return (hi ** (2 - gamma) - lo ** (2 - gamma)) / (2 - gamma)


def test_table_values_and_bands():
    # Table 1 of Mateos et al. 2009: pn thin filter, 1-2 keV; MOS2 thick, 4.5-12 keV
    assert energy_conversion_factor("xmm-pn", "Thin1", (1.0, 2.0)) == pytest.approx(5.878e11)
    assert energy_conversion_factor("xmm-mos2", "Thick", (4.5, 12.0)) == pytest.approx(0.149e11)
    # a union of table bands: the flux-weighted mean of a Gamma = 1.7 power law
    w = np.array([_pl(0.2, 0.5), _pl(0.5, 1.0), _pl(1.0, 2.0)])
    want = np.dot(ECF_TABLE["xmm-pn"]["medium"][:3], w) / w.sum() * ECF_UNIT
    assert energy_conversion_factor("xmm-pn", "Medium", (0.2, 2.0)) == pytest.approx(want, rel=1e-12)
    full = energy_conversion_factor("xmm-mos1", "thin", (0.2, 12.0))
    assert 0.144e11 < full < 2.028e11
    # no value: a band across the table's edges, an unknown filter or instrument
    for args in (("xmm-pn", "Medium", (0.3, 2.0)), ("xmm-pn", "CalClosed", (0.2, 2.0)),
                 ("chandra-acis", "thin", (0.5, 2.0))):
        assert np.isnan(energy_conversion_factor(*args))
    assert filter_name("Thin2") == "thin" and filter_name(" MEDIUM ") == "medium"


def test_cameras_add_up():
    import xcube

    pn, _ = xcube.simulate.event_list("xmm-pn", duration=100.0, seed=1)
    m1, _ = xcube.simulate.event_list("xmm-mos1", duration=100.0, seed=2)
    assert pn.attrs["filter"] == "Medium"
    both = events_ecf([pn, m1], (2.0, 12.0))
    assert both == pytest.approx(energy_conversion_factor("xmm-pn", "Medium", (2.0, 12.0))
                                 + energy_conversion_factor("xmm-mos1", "Medium", (2.0, 12.0)))
    assert np.isnan(events_ecf(pn.assign_attrs(filter="UNDEFINED"), (2.0, 12.0)))
