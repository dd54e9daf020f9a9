"""The survey catalogue on small hand-made run directories (no search, no
cluster): non-ASCII names, units, vetted source summaries, stable source ids,
the schema of an empty catalogue, stale temporaries, the options of a resumed
survey, --exclude-obs and --match checked up front, unique run ids."""
from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from xcube.cli import main
from xcube.survey import build_catalogue, parameter_grid, run, run_id, vet
from xcube.survey.catalogue import column_unit
from xcube.survey.status import clean_stale, write_run
from xcube.survey.vetting import read_obs_list
from xcube.transients.detect import empty_table
from xcube.transients.params import SearchParams

PARAMS = parameter_grid([50.0], [(0.2, 12.0)])


def _det(rows) -> pd.DataFrame:
    """A search's detection table (every column, its dtypes) with ``rows``."""
    t = empty_table()
    df = pd.DataFrame(rows)
    for c in t.columns:
        if c not in df:
            df[c] = (False if t[c].dtype == bool else np.arange(len(df)) if c == "detection"
                     else "peak" if c == "kind" else "" if pd.api.types.is_string_dtype(t[c])
                     else 0 if t[c].dtype.kind == "i" else np.nan)
    return df[list(t.columns)].astype(t.dtypes.to_dict())


def _fake_run(out, obsid, rows, state="done"):
    p = PARAMS[0]
    det = _det([dict(dict(t_start=1.0e8, t_stop=1.0e8 + 50, t_peak=1.0e8 + 25, log10_bayes=10.0 + i), **r)
                for i, r in enumerate(rows)])
    rec = dict(p.to_dict(), param_hash=p.hash, state=state, n_detections=len(det) if state == "done" else 0)
    write_run(out, obsid, run_id(obsid, p), rec,
              writer=(lambda d: det.to_parquet(d / "detections.parquet", index=False)) if state == "done" else None)


class NoClient:
    """A distributed client that must not be used."""

    def run(self, *a, **k):
        raise AssertionError("the survey started work")

    submit = run


@pytest.fixture
def out(tmp_path):
    out = tmp_path / "out"
    for k in range(3):  # one source seen in three observations
        _fake_run(out, f"04000000{k:02d}", [dict(ra=150.0 + 1e-4 * k, dec=2.2, log10_bayes=10.0 + k)])
    return out


def test_non_ascii_names_and_units(out, tmp_path):
    cat = tmp_path / "uni.csv"
    cat.write_text("name,ra,dec\nMüller's star,150.0001,2.2\n", encoding="utf-8")
    c = build_catalogue(out, crossmatch=[cat], report=False)
    assert c.sources["uni_name"].tolist() == ["Müller's star"]
    with fits.open(c.directory / "sources.fits") as h:
        assert h[1].data["uni_name"][0] == "Muller's star"
    with fits.open(c.directory / "detections.fits") as h:
        units = {h[1].header[f"TTYPE{i}"]: h[1].header[f"TUNIT{i}"] for i in range(1, h[1].header["TFIELDS"] + 1)}
    assert units["duration"] == "s" and units["peak_rate"] == "count s-1" and units["det_u"] == "arcsec"
    assert units["peak_gap_min"] == "s" and units["fluence"] == "count" and units["peak_flux"] == "erg s-1 cm-2"
    assert column_unit("det_v") == "arcsec" and column_unit("eclipse_gap_min") == "s"


def test_vetted_sources_are_summarised_from_kept_detections(out):
    cat = build_catalogue(out, exclude_obs=["0400000002"], write=False, report=False)
    assert cat.sources["n_detections"].tolist() == [3] and cat.sources["best_obsid"].tolist() == ["0400000002"]
    clean = vet(cat)
    assert len(clean.detections) == 2
    s = clean.sources.iloc[0]
    assert s["n_detections"] == 2 and s["n_observations"] == 2 and s["best_obsid"] == "0400000001"
    assert list(clean.sources.columns) == list(cat.sources.columns)


def test_source_ids_and_names_persist_when_runs_are_added(out):
    first = build_catalogue(out, report=False).sources[["source_id", "name"]]
    _fake_run(out, "0400000010", [dict(ra=149.0, dec=2.2), dict(ra=150.0 + 9e-4, dec=2.2)])  # lower RA; moves it
    second = build_catalogue(out, report=False)
    s = second.sources.set_index("source_id")
    assert s.loc[0, "name"] == first["name"][0] and s.loc[0, "n_detections"] == 4
    assert s.loc[1, "ra"] == 149.0  # a new source numbered after the earlier ones
    assert set(second.detections["source_id"]) == {0, 1}


def test_empty_catalogue_has_every_column(out, tmp_path):
    full = build_catalogue(out, report=False)
    empty_out = tmp_path / "empty"
    _fake_run(empty_out, "0400000001", [], state="failed")
    empty = build_catalogue(empty_out, report=False)
    assert len(empty.detections) == 0 and len(empty.sources) == 0
    assert list(empty.sources.columns) == list(full.sources.columns)
    assert set(empty.detections.columns) == set(full.detections.columns)
    assert empty.sources.dtypes.to_dict() == full.sources.dtypes.to_dict()
    # the FITS tables too: text columns stay text, so catalogues stack (sweep p25: they were float64)
    for name in ("sources.fits", "detections.fits"):
        with fits.open(full.directory / name) as f, fits.open(empty.directory / name) as e:
            kinds = {c.name: c.format[-1] for c in f[1].columns}
            assert {c.name: c.format[-1] for c in e[1].columns} == kinds
            assert kinds["obsid" if "detections" in name else "name"] == "A"


def test_stale_catalogue_and_status_temporaries_are_removed(out):
    old = time.time() - 7200
    tmp_cat = out / ".catalogue.tmp-1234abcd"
    tmp_cat.mkdir()
    tmp_status = out / ".status.parquet.tmp-1234abcd"
    tmp_status.write_bytes(b"x")
    for p in (tmp_cat, tmp_status):
        os.utime(p, (old, old))
    young = out / ".catalogue.tmp-5678abcd"  # may be a catalogue being built now
    young.mkdir()
    assert clean_stale(out) >= 2
    assert not tmp_cat.exists() and not tmp_status.exists() and young.exists()


def test_resumed_finished_survey_rebuilds_the_catalogue_for_new_options(out, tmp_path):
    obs = {f"04000000{k:02d}": [tmp_path / "unused.fits"] for k in range(3)}
    kw = dict(compute=NoClient(), progress=False, figures="none")
    run(obs, out, PARAMS, **kw)
    assert "known_name" not in pd.read_parquet(out / "catalogue/sources.parquet").columns
    known = tmp_path / "known.csv"
    pd.DataFrame({"name": ["SRC1"], "ra": [150.0], "dec": [2.2]}).to_csv(known, index=False)
    run(obs, out, PARAMS, catalogue_options={"crossmatch": [known], "radius_arcsec": 10.0}, **kw)
    assert pd.read_parquet(out / "catalogue/sources.parquet")["known_name"].tolist() == ["SRC1"]
    info = json.loads((out / "catalogue/catalogue.json").read_text())
    assert info["radius_arcsec"] == 10.0 and info["crossmatch"] == [str(known)]


def test_match_and_exclude_files_are_checked_before_the_survey_runs(tmp_path, capsys):
    out = tmp_path / "out"
    obs = {"0400000001": [tmp_path / "missing.fits"]}
    with pytest.raises(FileNotFoundError, match="typo.csv"):
        run(obs, out, PARAMS, compute=NoClient(), progress=False, catalogue_options={"crossmatch": ["typo.csv"]})
    with pytest.raises(FileNotFoundError, match="bad_obs_typo.txt"):
        run(obs, out, PARAMS, compute=NoClient(), progress=False, catalogue_options={"exclude_obs": "bad_obs_typo.txt"})
    assert read_obs_list("0400000001") == {"0400000001"}
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeff0400000001\n0400000002 # comment\n".encode("utf-8"))  # as Windows editors save it
    assert read_obs_list(bom) == {"0400000001", "0400000002"}
    bom.write_bytes(b"\xff\xfe0\x004\x00")
    with pytest.raises(ValueError, match="bom.txt: not UTF-8"):
        read_obs_list(bom)
    _fake_run(out, "0400000001", [dict(ra=1.0, dec=1.0)])
    assert main(["catalogue", str(out), "--exclude-obs", str(tmp_path / "typo")]) == 1
    assert "typo: no such file of observation ids" in capsys.readouterr().err


def test_run_ids_are_unique():
    a = run_id("x", SearchParams(time_bin=2000.0, energy_band=(0.2, 12.0)))
    b = run_id("x", SearchParams(time_bin=2000.0001, energy_band=(0.2, 12.0)))
    assert a == "x_0_2000_0.2_12.0" and b == "x_0_2000.0001_0.2_12.0"
    assert run_id("x", SearchParams(time_bin=50.0, energy_band=(0.2, 2.0), sigma=4.5)) == "x_0_50_0.2_2.0_s4.5"


@pytest.mark.parametrize("kw, match", [
    (dict(radius_arcsec=-5.0), r"radius_arcsec=-5\.0: must be a finite number > 0 arcsec \(command line --radius\)"),
    (dict(radius_arcsec=float("nan")), r"radius_arcsec=nan"),
    (dict(match_radius_arcsec=-1.0), r"--match-radius"),
    (dict(hot_min_obs=0), r"hot_min_obs=0: must be a whole number >= 1 \(command line --hot-min-obs\)"),
])
def test_catalogue_options_out_of_range_are_refused(out, kw, match, capsys):
    """--radius -5 wrote negative region radii, --hot-min-obs 0 flagged every detection, --radius nan failed late."""
    with pytest.raises(ValueError, match=match):
        build_catalogue(out, write=False, report=False, **kw)
    flag = {"radius_arcsec": "--radius", "match_radius_arcsec": "--match-radius", "hot_min_obs": "--hot-min-obs"}
    name, value = next(iter(kw.items()))
    with pytest.raises(SystemExit) as exc:  # a usage error (status 2) naming the option and the value
        main(["catalogue", str(out), flag[name], str(value)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag[name]}: '{value}': must be" in err, err


def test_feature_count_statistics_carry_counts():
    """n_*/mu_* minima, maxima, means, spreads and sums are counts; they had no unit in the FITS catalogue
    and the detections' ECSV. Skewness and kurtosis stay dimensionless."""
    assert [column_unit(c) for c in ("n_mean", "n_std", "mu_max", "mu_sum")] == ["count"] * 4
    assert column_unit("n_skew") == "" and column_unit("mu_kurt") == ""


def test_subsets_numbering_their_detections_from_zero_keep_each_sources_id(tmp_path):
    """Sweep p25: a re-run with two exposure subsets (each numbering its detections from 0) handed the pn
    source's id and name to the MOS source; the subset's search run id is part of the detection key."""
    out = tmp_path / "out"
    pn = dict(ra=10.0296, dec=4.9989, run_id="0100000701_0_50_0.2_12.0", detection=0)
    _fake_run(out, "0100000701", [pn])
    first = build_catalogue(out, report=False).sources
    assert first["source_id"].tolist() == [0]
    mos = dict(ra=9.9688, dec=5.0205, run_id="0100000701_1_50_0.2_12.0", detection=0)  # lower RA: sorts first
    shutil.rmtree(out / "0100000701")  # the run redone, now of two subsets
    _fake_run(out, "0100000701", [pn, mos])
    second = build_catalogue(out, report=False).sources.set_index("source_id")
    assert second.loc[0, "ra"] == pytest.approx(10.0296) and second.loc[0, "name"] == first["name"][0]
    assert second.loc[1, "ra"] == pytest.approx(9.9688) and second.loc[1, "name"] != first["name"][0]


def test_an_id_freed_by_a_merge_is_not_given_again(tmp_path):
    """Sweep p25: ids are never reused, also the largest one freed when two sources merge."""
    out = tmp_path / "out"
    _fake_run(out, "0400000001", [dict(ra=150.0, dec=2.2)])
    _fake_run(out, "0400000002", [dict(ra=150.0 + 12 / 3600, dec=2.2)])  # 12" apart: two sources at 10"
    assert build_catalogue(out, radius_arcsec=10.0, report=False).sources["source_id"].tolist() == [0, 1]
    merged = build_catalogue(out, radius_arcsec=20.0, report=False).sources  # one source: id 1 is free
    assert merged["source_id"].tolist() == [0]
    _fake_run(out, "0400000003", [dict(ra=160.0, dec=-5.0)])
    third = build_catalogue(out, radius_arcsec=20.0, report=False).sources.set_index("ra")
    assert third.loc[160.0, "source_id"] == 2


@pytest.mark.parametrize("count", [None, "two", "drop"])
def test_a_record_without_a_valid_count_is_read_not_dropped(out, count, caplog):
    """Sweep p25: a done run whose run.json lacked n_detections counted as 0 and its detections vanished."""
    (record,) = (out / "0400000001").glob("*/run.json")
    rec = json.loads(record.read_text())
    if count == "drop":
        del rec["n_detections"]
    else:
        rec["n_detections"] = count
    record.write_text(json.dumps(rec))
    cat = build_catalogue(out, report=False, write=False)
    assert len(cat.detections) == 3 and "0400000001" in set(cat.detections["obsid"])
    assert "gives no valid n_detections" in caplog.text and str(record.parent) in caplog.text
    assert cat.runs.set_index("obsid").loc["0400000001", "n_detections"] == 1


def test_a_detection_without_a_position_names_its_run(out):
    """Sweep p25: a NaN ra stopped the catalogue in cluster_positions without naming the run."""
    (table,) = (out / "0400000001").glob("*/detections.parquet")
    det = pd.read_parquet(table)
    det.loc[0, "ra"] = np.nan
    det.to_parquet(table, index=False)
    with pytest.raises(OSError, match=f"{table}: cannot read the detections .*no finite ra/dec"):
        build_catalogue(out, report=False, write=False)
