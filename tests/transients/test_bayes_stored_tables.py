"""A damaged stored Bayes table ($XCUBE_CACHE_DIR/tables/*.npz) is rebuilt with a warning naming the file."""
import numpy as np
import pytest

from xcube.io.paths import cache_dir
from xcube.transients import bayes


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_stored_table_is_rebuilt(damage, tmp_path, monkeypatch):
    monkeypatch.setenv("XCUBE_CACHE_DIR", str(tmp_path / "cache"))
    build = lambda: bayes._solve_table(3.0, 64)  # noqa: E731 - a small table, fast
    first = bayes._stored("threshold-table-test", bayes.ThresholdTable, build)
    (path,) = list((cache_dir() / "tables").glob("threshold-table-test-*.npz"))
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[len(raw) // 3] ^= 0x08
    else:
        raw = raw[: len(raw) // 2]
    path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match=rf"{path}: unreadable or damaged stored table"):
        again = bayes._stored("threshold-table-test", bayes.ThresholdTable, build)
    np.testing.assert_array_equal(again.peak_break, first.peak_break)
    bayes._stored("threshold-table-test", bayes.ThresholdTable, build)  # rewritten: loads without a warning


def test_a_table_stored_by_other_code_is_not_loaded(tmp_path, monkeypatch):
    """The stored file's name carries a hash of the module's code: a table left by an edited build of the same
    version is not loaded; and a table whose thresholds are not this build's is rebuilt with a warning."""
    monkeypatch.setenv("XCUBE_CACHE_DIR", str(tmp_path / "cache"))
    build = lambda: bayes._solve_table(3.0, 64)  # noqa: E731 - a small table, fast
    good = bayes._stored("threshold-table-test", bayes.ThresholdTable, build)
    (path,) = list((cache_dir() / "tables").glob("threshold-table-test-*.npz"))
    assert bayes._code_hash() in path.name
    # another build's table (shifted breakpoints, other thresholds) under this build's name
    stale = good._replace(thresholds=bayes.Thresholds(good.thresholds.peak + 0.5, good.thresholds.eclipse),
                          peak_lo=good.peak_lo * 0.5, peak_hi=good.peak_hi * 0.5)
    np.savez(path, **{f: np.asarray(getattr(stale, f)) for f in bayes.ThresholdTable._fields})
    with pytest.warns(UserWarning, match=r"are not threshold\(3\.0\)"):
        again = bayes._stored("threshold-table-test", bayes.ThresholdTable, build)
    np.testing.assert_array_equal(again.peak_lo, good.peak_lo)


def test_peak_and_eclipse_limits_never_flag_an_invalid_mu():
    mu = np.array([np.nan, -1.0, np.inf, 0.1, 1000.0])
    for n in (0, 5, 1140, 10**9):
        nn = np.full(mu.shape, n)
        peak, eclipse = bayes.masks(nn, mu, 3.0)
        np.testing.assert_array_equal(nn >= bayes.n_peak_min(mu), peak)
        np.testing.assert_array_equal(nn <= bayes.n_eclipse_max(mu), eclipse)
    assert bayes.n_peak_min(np.nan) == bayes.NO_PEAK and bayes.n_eclipse_max(np.nan) == -1
