"""Sweep p26: binning defects found count by count against numpy."""
from __future__ import annotations

import numpy as np

from xcube.binning.axes import rule_steps, time_axis


def test_a_span_of_whole_bins_gets_no_bin_starting_at_its_end():
    """``ceil`` of a quotient rounded a hair above a whole number (707.0000005)
    added a bin starting at the last GTI stop: no good time, a NaN-rate row."""
    rng = np.random.default_rng(9)
    bad = []
    for _ in range(2000):
        lo = float(np.round(rng.uniform(1e8, 9e8), 1))
        w = float(rng.choice([0.1, 0.3, 0.7, 1.1, 2.6, 73.4e-3]))
        nb = int(rng.integers(1, 3000))
        hi = lo + nb * w
        ax = time_axis(([lo], [hi]), w)
        last = float(rule_steps(ax.origin, ax.width, [ax.size - 1])[0])
        if not (last < hi <= float(ax.edges[-1])) or ax.index_of(np.array([np.nextafter(hi, -np.inf)]))[0] < 0:
            bad.append((lo, w, nb, ax.size))
    assert not bad, bad[:5]
    # the case of the report: 707 bins of 0.1 s, the last one fully good
    lo = 660664763.8
    ax = time_axis(([lo], [lo + 707 * 0.1]), 0.1)
    assert ax.size == 707


def _events(profile, mission, instrument, cols, gti):
    import dask.array as da

    from xcube.io.events_fits import events_dataset

    attrs = {"mission": mission, "instrument": instrument, "profile": profile, "source": "crafted.evt",
             "selection": []}
    return events_dataset({k: da.from_array(np.asarray(v), chunks=len(v)) for k, v in cols.items()}, gti, {}, attrs)


def test_energy_axes_are_checked_as_select_checks_energy_bands():
    """An energy axis on a mission without an energy scale (RXTE PCA), or
    wholly beyond the instrument's range, gave an all-zero cube silently
    where select(energy_band=...) raises."""
    import pytest

    import xcube
    from xcube.missions import get_profile

    pi = np.arange(500, dtype=np.int16) % 255
    rxte = _events("rxte-pca", "XTE", "PCA", {"time": np.linspace(1e8, 1e8 + 99, 500), "pi": pi,
                                              "energy": get_profile("rxte-pca").energy(pi)}, ([1e8], [1e8 + 100]))
    with pytest.raises(ValueError, match=r"crafted\.evt: RXTE PCA has no energy scale"):
        xcube.bin_events(rxte, time=10.0, energy=[2.0, 10.0])
    pi = np.arange(5000, dtype=np.int16) * 4
    pn = _events("xmm-pn", "XMM-Newton", "EPN", {"time": np.linspace(1e8, 1e8 + 99, 5000), "pi": pi,
                                                 "energy": get_profile("xmm-pn").energy(pi)}, ([1e8], [1e8 + 100]))
    with pytest.raises(ValueError, match=r"lies outside the XMM-Newton EPN energy range"):
        xcube.bin_events(pn, time=10.0, energy={"width": 10.0, "energy_range": (100.0, 200.0)})
    assert int(xcube.bin_events(pn, energy=[0.5, 2.0, 10.0]).sum()) == int(((pi >= 500) & (pi < 10000)).sum())


def test_float_pi_on_a_band_edge_is_binned_as_select_takes_it():
    """eROSITA's float PI: bin_events binned the float32 energy column, so PI
    700 (0.69999999 keV) fell below a 0.7 keV edge; select keeps it."""
    import xcube
    from xcube.missions import get_profile

    pif = np.array([699.0, 700.0, 701.0, 1999.0, 2000.0, 2299.0, 2300.0, 700.5, np.nan], np.float32)
    ev = _events("erosita", "SRG", "TM1", {"time": np.linspace(1e8, 1e8 + 10, pif.size), "pi": pif,
                                           "energy": get_profile("erosita").energy(pif)}, ([1e8], [1e8 + 11]))
    counts = xcube.bin_events(ev, energy=[0.7, 2.0, 2.3]).values.tolist()
    with np.errstate(invalid="ignore"):
        assert counts == [int(((pif >= 700) & (pif < 2000)).sum()), int(((pif >= 2000) & (pif < 2300)).sum())]
    assert sum(counts) == xcube.select(ev, energy_band=(0.7, 2.3)).sizes["event"]
