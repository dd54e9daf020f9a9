"""The detections of all runs at the top of a search's directory
(``SearchResults.write``) have the files of a run's table: ``detections.csv``,
``.parquet`` and ``.ecsv`` (obs_id as text, units), written by the same
writer; and ``xcube search --overwrite`` still recognises such a directory as
an earlier search's."""
from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.table import Table

from xcube.cli import main
from xcube.transients.result import DETECTION_FILES, SearchResult, SearchResults

OBSID = "0001730201"  # leading zeros, as XMM OBSIDs have


def _run(time_bin: float, n: int, t0: float = 1.0e8) -> SearchResult:
    run_id = f"{OBSID}_0_{time_bin:g}_0.2_12.0"
    names = [f"XCUBE J1000{i:02d}.0+021200" for i in range(n)]
    det = pd.DataFrame({"run_id": pd.Series([run_id] * n, dtype=str), "obs_id": pd.Series([OBSID] * n, dtype=str),
                        "name": pd.Series(names, dtype=str), "t_peak": t0 + np.arange(n) * 100.0,
                        "ra": 150.0 + np.arange(n) * 0.01,
                        "dec": np.full(n, 2.2), "log10_bayes": np.linspace(2.0, 3.0, n),
                        "counts": np.arange(n, dtype=np.int64) + 5, "mjd_peak": np.full(n, 51000.5)})
    det.attrs = {"mjdref": 50814.0, "timesys": "TT"}
    return SearchResult(run_id=run_id, detections=det, lightcurves=None, summary={"reason": ""},
                        params={"time_bin": time_bin, "size_arcsec": 20.0})


def test_combined_table_has_the_run_tables_files(tmp_path):
    res = SearchResults([_run(50.0, 2), _run(200.0, 1), _run(1000.0, 0)])
    out = res.write(tmp_path / "srch", figures=False)
    for name in DETECTION_FILES:
        assert (out / name).is_file(), name
        assert (out / res[0].run_id / name).is_file(), name
    tab = Table.read(out / "detections.ecsv", format="ascii.ecsv")
    det = res.detections
    assert len(tab) == 3 and tab.colnames == list(det.columns)
    assert list(tab["obs_id"]) == [OBSID] * 3 and tab["obs_id"].dtype.kind == "U"  # leading zeros kept
    assert list(tab["run_id"]) == det["run_id"].tolist() and list(tab["name"]) == det["name"].tolist()
    assert tab["t_peak"].unit == u.s and tab["ra"].unit == u.deg and tab["dec"].unit == u.deg
    assert tab["mjd_peak"].unit == u.day and tab["counts"].unit == u.ct and tab["log10_bayes"].unit is None
    assert tab["counts"].dtype == np.int64
    np.testing.assert_array_equal(np.asarray(tab["t_peak"]), det["t_peak"].to_numpy())
    assert tab.meta["timesys"] == "TT" and tab.meta["mjdref"] == 50814.0
    # the same writer as a run's: the combined ECSV of one run is that run's ECSV
    one = SearchResults([_run(50.0, 2)]).write(tmp_path / "one", figures=False)
    assert (one / "detections.ecsv").read_text() == (one / f"{OBSID}_0_50_0.2_12.0" / "detections.ecsv").read_text()
    back = pd.read_parquet(out / "detections.parquet")
    assert back["obs_id"].tolist() == [OBSID] * 3
    pd.testing.assert_frame_equal(pd.read_csv(out / "detections.csv", dtype={"obs_id": str, "run_id": str}), det)


def test_combined_tables_without_detections(tmp_path):
    """Runs that found nothing: the three files, with the columns and no rows."""
    out = SearchResults([_run(50.0, 0), _run(200.0, 0)]).write(tmp_path / "srch", figures=False)
    tab = Table.read(out / "detections.ecsv", format="ascii.ecsv")
    assert len(tab) == 0 and tab["obs_id"].dtype.kind == "U" and tab["t_peak"].unit == u.s
    assert len(pd.read_parquet(out / "detections.parquet")) == 0


def test_combined_table_write_error_names_the_file(tmp_path, monkeypatch):
    """A failing combined ECSV names its final path and leaves no temporary."""
    import xcube.transients.result as result

    real = result.detections_table

    class Failing:
        def __init__(self, table):
            self.table = table

        def write(self, path, **kwargs):
            if Path(path).name.startswith(".detections.ecsv.tmp-"):  # the combined table's temporary, not a run's
                raise OSError(errno.EFBIG, "File too large")
            return self.table.write(path, **kwargs)

    monkeypatch.setattr(result, "detections_table", lambda det: Failing(real(det)))
    out = tmp_path / "srch"
    with pytest.raises(OSError) as err:
        SearchResults([_run(50.0, 2)]).write(out, figures=False)
    assert err.value.errno == errno.EFBIG
    assert str(out / "detections.ecsv") in str(err.value) and ".tmp-" not in str(err.value)
    assert (out / f"{OBSID}_0_50_0.2_12.0" / "detections.ecsv").is_file()  # the run's, written before
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_search_overwrite_replaces_a_directory_with_the_combined_tables(make_event_file, tmp_path, capsys):
    ev = make_event_file(n=3000)
    out = tmp_path / "res"
    assert main(["search", str(ev), "--out", str(out), "-q", "--no-figures", "--time-bin", "500"]) == 0
    assert {p.name for p in out.iterdir()} >= set(DETECTION_FILES)
    rc = main(["search", str(ev), "--out", str(out), "-q", "--no-figures", "--time-bin", "1000", "--overwrite"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == sorted(["0123456789_0_1000_0.2_12.0", *DETECTION_FILES])
