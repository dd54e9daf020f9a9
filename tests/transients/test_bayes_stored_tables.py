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
