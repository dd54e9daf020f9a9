"""power_spectrum of a light curve whose rows are not one even grid: missing
rows are gaps (no segment crosses them; equal to Stingray given those gaps as
GTI gaps), overlapping rows (a stitch of two cameras of one observation) are
a ValueError naming the input. Both used to give a wrong spectrum silently."""
from __future__ import annotations

import numpy as np
import pytest

import xcube
from xcube import gti as gtimod

T0 = 1.0e8


@pytest.fixture
def lc1s(make_event_file):
    """A 1 s light curve of 3 ks of Poisson events in two GTIs (1000 s, 1900 s)."""
    gti = ([T0, T0 + 1100.0], [T0 + 1000.0, T0 + 3000.0])
    return xcube.lightcurve(xcube.open_events(make_event_file(n=60_000, duration=3000.0, gti=gti)), 1.0).compute()


def stingray_with_gaps(lc, gaps, segment, dt=None):
    """Stingray's AveragedPowerspectrum of the whole (even) light curve ``lc``
    with the time spans ``gaps`` [(start, stop) s] removed from its GTIs."""
    from stingray import AveragedPowerspectrum

    if dt is not None:
        lc = xcube.rebin_lightcurve(lc, int(round(dt / float(lc.attrs["time_bin"]))))
    lo, hi = float(lc["time_lo"].values[0]), float(lc["time_hi"].values[-1])
    keep = gtimod.complement((np.array([g[0] for g in gaps]), np.array([g[1] for g in gaps])), lo, hi)
    good = gtimod.intersection(gtimod.from_dataset(lc), keep)
    sl = xcube.to_stingray(lc)
    sl.gti = np.column_stack(good)
    return AveragedPowerspectrum.from_lightcurve(sl, segment_size=segment, norm="leahy", silent=True)


def test_missing_rows_are_gaps_equal_to_stingray_with_those_gaps(lc1s):
    lc = lc1s
    lo = lc["time_lo"].values
    mask = np.ones(lc.sizes["time"], bool)
    mask[1595:1605] = False  # 10 rows dropped inside the second GTI (lc.isel(time=mask), dropna, a file)
    sub = lc.isel(time=mask)
    gap = (lo[1595], lo[1605])
    p = xcube.power_spectrum(sub, segment=100.0)
    s = stingray_with_gaps(lc, [gap], 100.0)
    full = xcube.power_spectrum(lc, segment=100.0)
    assert full.attrs["n_segments"] == 10 + 19
    # [0, 1000), [1100, 1595) and [1605, 3000): 10 + 4 + 13 segments; the subset used to give 10 + 18, segments
    # of 100 rows spanning 110 s among them
    assert p.attrs["n_segments"] == s.m == 10 + 4 + 13
    np.testing.assert_allclose(p["freq"].values, s.freq, rtol=1e-12)
    np.testing.assert_allclose(p["power"].values, s.power, rtol=1e-10)
    # dt a multiple of the bins: rebinning first does not hide the missing rows inside a new bin
    p4 = xcube.power_spectrum(sub, segment=100.0, dt=4.0)
    s4 = stingray_with_gaps(lc, [gap], 100.0, dt=4.0)
    assert p4.attrs["n_segments"] == s4.m
    np.testing.assert_allclose(p4["power"].values, s4.power, rtol=1e-10)


def test_missing_rows_between_segments_change_nothing(lc1s):
    """Rows missing outside every segment (here the last 50 rows of the second GTI) leave the spectrum as it is."""
    lc = lc1s
    p = xcube.power_spectrum(lc.isel(time=slice(0, lc.sizes["time"] - 50)), segment=100.0)
    q = xcube.power_spectrum(lc.isel(time=np.r_[0:2920, 2940:lc.sizes["time"] - 50]), segment=100.0)
    np.testing.assert_allclose(q["power"].values, p["power"].values, rtol=1e-12)
    assert q.attrs["n_segments"] == p.attrs["n_segments"]


def test_overlapping_rows_are_refused_naming_the_input(lc1s, tmp_path):
    """Two cameras of one observation stitched: their rows interleave (0.2 s apart for 1 s bins)."""
    a = lc1s
    b = a.assign_coords(time=a["time"] + 0.2, time_lo=a["time_lo"] + 0.2, time_hi=a["time_hi"] + 0.2)
    b.attrs = dict(a.attrs, instrument="EMOS2")
    st = xcube.stitch([a, b])
    with pytest.raises(ValueError, match="overlap"):
        xcube.power_spectrum(st, segment=100.0)
    path = xcube.write_lightcurve(tmp_path / "m12.lc", st)
    with pytest.raises(ValueError, match=r"m12\.lc.*overlap"):
        xcube.power_spectrum(path, segment=100.0)
    # rows given twice, or out of time order, too
    with pytest.raises(ValueError, match="overlap or are not in time order"):
        xcube.power_spectrum(a.isel(time=np.r_[0:2000, 1999:a.sizes["time"]]), segment=100.0)
    with pytest.raises(ValueError, match="overlap or are not in time order"):
        xcube.power_spectrum(a.isel(time=np.r_[1000:2000, 0:1000]), segment=100.0)


def test_stitched_observations_on_different_grids_are_segmented_each_on_its_own(lc1s):
    """Rows that leave the grid by a fraction of a bin without overlapping (two observations, each on its own
    grid) start a new run: segments lie in one run, and the spectrum is the sum of the two."""
    a = lc1s
    shift = 3000.37
    b = a.assign_coords(time=a["time"] + shift, time_lo=a["time_lo"] + shift, time_hi=a["time_hi"] + shift)
    b["gti_start"], b["gti_stop"] = a["gti_start"] + shift, a["gti_stop"] + shift
    both = xcube.power_spectrum([a, b], segment=100.0, average=True)
    st = xcube.power_spectrum(xcube.stitch([a, b], mjdref=float(a.attrs["mjdref"])), segment=100.0)
    assert st.attrs["n_segments"] == both.attrs["n_segments"] == 2 * 29
    np.testing.assert_allclose(st["power"].values, both["power"].values, rtol=1e-10)


def test_real_mos1_mos2_stitch_is_refused(tmp_path):
    """The sweep's case: MOS1 and MOS2 of 0001730201 stitched gave '33 x 1000 s segments' of one 16.7 ks
    observation."""
    from conftest import real_file

    m1 = xcube.lightcurve(xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ")), 100.0)
    m2 = xcube.lightcurve(xcube.open_events(real_file("xmm", "P0001730201M2S003MIEVLI.FTZ")), 100.0)
    path = xcube.write_lightcurve(tmp_path / "m12.lc", xcube.stitch([m1, m2]))
    with pytest.raises(ValueError, match=r"m12\.lc: .*overlap"):
        xcube.power_spectrum(path, segment=1000.0)
    p1 = xcube.power_spectrum(m1, segment=1000.0)
    assert p1.attrs["n_segments"] == 16
