"""espfilt works out the SAS release once: espfilt_outputs takes the naming it decided (long_names=)."""
from __future__ import annotations

import pytest

from xcube.tools import sas


def test_espfilt_outputs_take_the_naming_decided_by_the_caller(tmp_path, monkeypatch):
    """With long_names= the names follow it, without asking which SAS is set up."""
    def no_lookup(*a, **k):
        raise AssertionError("the SAS release was looked up")

    monkeypatch.setattr(sas, "_release", no_lookup)
    long = sas.espfilt_outputs("pn", "S003", tmp_path, 300, 10000, long_names=True)
    short = sas.espfilt_outputs("mos1", "S001", tmp_path, long_names=False, sas_version=(20, 0, 0))
    assert {k: p.name for k, p in long.items()} == {"gti": "pnS003-gti-300-10000.fits",
                                                    "allevc": "pnS003-allevc-300-10000.fits",
                                                    "hist": "pnS003-hist-300-10000.qdp"}
    assert {k: p.name for k, p in short.items()} == {"gti": "mos1S001-gti.fits", "allevc": "mos1S001-allevc.fits",
                                                     "hist": "mos1S001-hist.qdp"}


@pytest.mark.parametrize("version, long_names", [((20, 0, 0), True), ((21, 0, 0), False), (None, False)])
def test_espfilt_decides_the_naming_once(tmp_path, monkeypatch, version, long_names):
    """espfilt derived the naming twice (itself, then espfilt_outputs again); the task is unchanged."""
    from xcube.tools import packages

    monkeypatch.setattr(packages, "sas_version", lambda env=None: None)  # (None: no SAS set up)
    decided = []
    real = sas.espfilt_long_names
    monkeypatch.setattr(sas, "espfilt_long_names", lambda v=None: decided.append(v) or real(v))
    e = sas.Exposure("pn", "S003", True, "SCIENCE", "PrimeFullWindow")
    t = sas.espfilt(tmp_path / "ev.fits", tmp_path / "ccf.cif", e, tmp_path, sas_version=version)
    assert len(decided) == 1
    assert (t.params["withlongnames"] is True) == long_names
    assert t.outputs[0] == sas.espfilt_outputs("pn", "S003", tmp_path, long_names=long_names)["gti"]
