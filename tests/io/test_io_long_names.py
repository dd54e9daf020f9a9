"""Event files with long (valid) names go through the cache: the entry name is shortened."""
import numpy as np

import xcube
from xcube.io.cache import cache_dir


def test_long_file_names_are_cached(make_event_file):
    name = "L" * 244 + ".evt.gz"  # 251 bytes: a valid name, too long to repeat with the key
    ev = xcube.open_events(make_event_file(n=400, name=name, gzip=True))
    assert ev.attrs["cache_reason"] == "gzip-compressed" and ev.sizes["event"] == 400
    (store,) = [p for p in cache_dir().glob("L*.zarr") if p.name.startswith("L" * 100)]
    assert len(store.name.encode()) <= 200
    raw = make_event_file(n=300, name="M" * 245 + ".fits")  # memory-mapped: its scan record is saved
    np.testing.assert_array_equal(xcube.open_events(raw).time.values, xcube.open_events(raw).time.values)
    assert [p for p in (cache_dir() / "scan").glob("M*.json")]
