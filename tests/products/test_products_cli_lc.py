"""``xcube lc``'s printed summary and its errors."""
from __future__ import annotations

import re

import numpy as np
import pytest

import xcube
from xcube.cli import main
from xcube.io.lightcurve_file import read_lightcurve


def _printed_rate(text: str) -> float:
    return float(re.search(r"mean \w+ rate ([-+0-9.eE]+) count/s", text).group(1))


def test_lc_mean_rate_is_counts_over_exposure(make_event_file, tmp_path, capsys):
    # the last 100 s bin has 10 s of good time and 100 events: a plain mean of the bin rates would double the rate
    t0 = 1.0e8
    rng = np.random.default_rng(3)
    t = np.sort(np.concatenate([t0 + rng.uniform(0, 9900, 1000), t0 + rng.uniform(9990, 10000, 100)]))
    path = make_event_file(n=t.size, columns={"TIME": t}, gti=([t0, t0 + 9990], [t0 + 9900, t0 + 10000]))
    out = tmp_path / "all.lc"
    assert main(["lc", str(path), "--time-bin", "100", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    lc = read_lightcurve(out)
    expected = float(lc["counts"].sum() / lc["exposure"].sum())
    assert abs(expected - 1100 / 9910) < 1e-9
    assert abs(_printed_rate(said) - expected) < 1e-3 * expected
    assert "source region" not in said and "source counts" not in said  # no --region
    assert main(["info", str(out)]) == 0
    assert f"mean rate   : {expected:.4g} count/s" in capsys.readouterr().out

    # net: (source counts - area ratio x background counts) / exposure
    out = tmp_path / "net.lc"
    assert main(["lc", str(path), "--time-bin", "100", "--region", "physical;circle(26000,26000,2000)",
                 "--background", "physical;annulus(26000,26000,2500,4000)", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    lc = read_lightcurve(out)
    ratio = 2000.0**2 / (4000.0**2 - 2500.0**2)
    n_src = int(re.search(r"(\d+) source counts", said).group(1))
    n_bkg = int(re.search(r"(\d+) background-region counts", said).group(1))
    net = (n_src - ratio * n_bkg) / float(lc["exposure"].sum())
    assert "(in the source region)" in said
    assert abs(_printed_rate(said) - net) < 1e-3 * abs(net) + 1e-9


def test_lc_without_good_time_names_the_file(make_event_file, tmp_path, capsys):
    path = make_event_file(gti=([], []), name="gti0.fits")
    assert main(["lc", str(path), "--time-bin", "100", "--out", str(tmp_path / "x.lc")]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "no good time" in err and "t_stop" not in err
    assert not (tmp_path / "x.lc").exists()


def test_lightcurve_without_good_time_names_the_file(make_event_file):
    ev = xcube.open_events(make_event_file(gti=([], []), name="nogti.fits"))
    with pytest.raises(ValueError, match=r"nogti.fits: no good time .*a light curve needs exposure"):
        xcube.lightcurve(ev, 100.0)
