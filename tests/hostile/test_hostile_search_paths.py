"""A hostile OBS_ID never steers ``xcube search --out`` outside its directory."""
from __future__ import annotations

import xcube
from xcube.cli import main


def test_search_out_with_escaping_obs_id(tmp_path, monkeypatch):
    ev, _ = xcube.simulate.event_list("xmm-mos1", duration=2_000.0, sources=1, seed=2, obs_id="../../escape")
    path = tmp_path / "in" / "events.fits"
    xcube.simulate.write(path, ev)
    out = tmp_path / "work" / "out"
    monkeypatch.chdir(tmp_path)
    assert main(["search", str(path), "--time-bin", "500", "1000", "--out", str(out), "--no-figures"]) == 0
    runs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert runs and all(r.startswith("_.._escape_0_") for r in runs)
    assert not (tmp_path / "escape").exists() and not any(tmp_path.glob("escape*"))
    assert {p.name for p in tmp_path.iterdir()} == {"in", "work"}
