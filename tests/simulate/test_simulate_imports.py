"""Import paths of xcube.simulate: lazy after ``import xcube``, old ``xcube.transients.simulate`` deprecated."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

import xcube
import xcube.simulate
import xcube.transients


def _forget_old_module(monkeypatch):
    monkeypatch.delitem(sys.modules, "xcube.transients.simulate", raising=False)
    monkeypatch.delattr(xcube.transients, "simulate", raising=False)


def test_old_import_path_warns_and_reexports(monkeypatch):
    _forget_old_module(monkeypatch)
    with pytest.warns(DeprecationWarning, match=r"xcube\.transients\.simulate is deprecated.*import xcube\.simulate"):
        from xcube.transients import simulate as old
    assert sorted(old.__all__) == sorted(xcube.simulate.__all__)
    for name in xcube.simulate.__all__:
        assert getattr(old, name) is getattr(xcube.simulate, name), name
    _forget_old_module(monkeypatch)
    with pytest.warns(DeprecationWarning):
        old = importlib.import_module("xcube.transients.simulate")
    ev, truth = old.event_list("xmm-mos1", duration=500.0, sources=1, soft_protons=0, seed=1)
    assert ev.attrs["profile"] == "xmm-mos1" and list(truth.columns) == old.TRUTH_COLUMNS


def test_import_xcube_does_not_import_simulate():
    code = (
        "import sys, xcube\n"
        "assert 'xcube.simulate' not in sys.modules, 'import xcube imported xcube.simulate'\n"
        "assert 'simulate' in dir(xcube)\n"
        "assert xcube.simulate.event_list.__module__ == 'xcube.simulate.events'\n"
        "assert 'xcube.simulate' in sys.modules\n"
        "try:\n"
        "    xcube.no_such_name\n"
        "except AttributeError as exc:\n"
        "    assert 'no_such_name' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.path.dirname(os.path.dirname(xcube.__file__)),
                                                                   os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
