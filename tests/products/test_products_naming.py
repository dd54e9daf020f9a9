"""Product names and the Parquet product index."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from xcube.products.naming import add_to_index, find_products, format_rebin, product_name, read_index


def test_names_follow_one_scheme():
    assert product_name("0123456789", "EPN", "lc", energy_band=(0.5, 10), time_bin=10.0) == \
        "0123456789_EPN_lc_0.5-10keV_10s.lc"
    assert product_name("P0101", "LE", "pds", energy_band=(1, 10), time_bin=1 / 512, norm="leahy", segment=256.0,
                        rebin=-0.06) == "P0101_LE_pds_1-10keV_1.95312ms_leahy_256s_log0.06.fits"
    assert format_rebin(8) == "lin8" and format_rebin(None) == "raw" and format_rebin(0) == "raw"
    name = product_name("../../etc", "a/b", "lc")  # header values cannot steer paths
    assert "/" not in name and not name.startswith(".") and name.endswith("_a_b_lc.lc")


def test_index_lists_products_with_parameters_and_replaces_rewrites(tmp_path):
    (tmp_path / "a.fits").write_bytes(b"x")
    add_to_index(tmp_path, tmp_path / "a.fits", {"obs_id": "1", "instrument": "EPN", "norm": "leahy",
                                                 "segment": 256.0, "n_segments": 4, "energy_band": [0.5, 2.0]},
                 kind="pds", rebin=-0.06, note="first")
    add_to_index(tmp_path, tmp_path / "sub" / "b.lc", {"obs_id": "2", "time_bin": 10.0}, kind="lc")
    t = read_index(tmp_path)
    assert list(t["path"]) == ["a.fits", "sub/b.lc"]
    row = t.iloc[0]
    assert (row["kind"], row["norm"], row["segment"], row["rebin"], row["n_segments"]) == ("pds", "leahy", 256.0,
                                                                                          -0.06, 4)
    assert row["energy_lo"] == 0.5 and '"note": "first"' in row["params"]
    assert np.isnan(t.iloc[1]["segment"]) and t.iloc[1]["time_bin"] == 10.0
    add_to_index(tmp_path, tmp_path / "a.fits", {"obs_id": "1"}, kind="pds", norm="frac")
    t = read_index(tmp_path)
    assert len(t) == 2 and t.set_index("path").loc["a.fits", "norm"] == "frac"
    assert list(find_products(tmp_path, kind="lc")["path"]) == ["sub/b.lc"]
    assert len(find_products(tmp_path, time_bin=10.0)) == 1
    with pytest.raises(KeyError, match="no column"):
        find_products(tmp_path, colour="red")
    with pytest.raises(FileNotFoundError, match="no product index"):
        read_index(tmp_path / "empty")


def test_parallel_writers_lose_no_rows(tmp_path):
    threads = [threading.Thread(target=add_to_index, args=(tmp_path, tmp_path / f"p{i}.lc", {"obs_id": str(i)}),
                                kwargs={"kind": "lc"}) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(read_index(tmp_path)) == 12
