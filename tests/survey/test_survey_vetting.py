"""Vetting a survey catalogue: hot regions in the spacecraft frame, excluded
observations, the report of what each flag removes, ``vet``; a survey task
whose observation splits into exposure subsets."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xcube.survey import build_catalogue, parameter_grid, run_id, vet
from xcube.survey.task import run_observation
from xcube.survey.vetting import DROP_FLAGS, flag_catalogue, flag_report, hot_regions

RA, DEC = 150.0, 2.2


def _table():
    """Detections: one detector spot (det_u, det_v) ~ (100, -50)" seen in four
    observations of four sky fields; a real source seen three times in one
    field (the same sky source); scattered others."""
    rows = []
    for k in range(4):  # the hot spot: four observations, four sky places
        rows.append(dict(obsid=f"01000000{k:02d}", source_id=k, det_u=100.0 + k, det_v=-50.0 - k))
    for k in range(3):  # one sky source in three observations, at one detector place (same roll)
        rows.append(dict(obsid=f"02000000{k:02d}", source_id=10, det_u=-300.0 + 2 * k, det_v=200.0))
    rows.append(dict(obsid="0300000000", source_id=20, det_u=500.0, det_v=500.0))
    rows.append(dict(obsid="0300000000", source_id=21, det_u=np.nan, det_v=np.nan))
    det = pd.DataFrame(rows)
    det["flag_low_counts"] = [False] * 7 + [True, False]
    det["flag_5sigma"] = [True, False, False, False, True, True, True, False, True]
    return det


def test_hot_regions_need_many_observations_and_sky_sources():
    det = _table()
    regions, label = hot_regions(det, radius_arcsec=20.0, min_obs=3, min_sources=3)
    assert len(regions) == 1 and list(label) == [0, 0, 0, 0, -1, -1, -1, -1, -1]
    r = regions.iloc[0]
    assert r["n_obs"] == 4 and r["n_sources"] == 4 and r["n_detections"] == 4
    assert r["det_u"] == pytest.approx(101.5) and r["radius"] > 0
    # the real source recurs in three observations but is one sky source: not hot
    regions, label = hot_regions(det, min_obs=3, min_sources=1)
    assert len(regions) == 2
    assert len(hot_regions(det.drop(columns=["det_u"]))[0]) == 0


def test_flags_report_and_vet(tmp_path):
    det = _table()
    excl = tmp_path / "bad_obs.txt"
    excl.write_text("# known bad\n0300000000\n")
    flagged, regions = flag_catalogue(det, exclude_obs=excl)
    assert list(flagged["flag_hot_region"]) == [True] * 4 + [False] * 5
    assert list(flagged["flag_excluded_obs"]) == [False] * 7 + [True, True]
    rep = flag_report(flagged).set_index("flag")
    assert rep.loc["flag_hot_region", "n_flagged"] == 4 and rep.loc["flag_excluded_obs", "n_flagged"] == 2
    assert rep.loc["flag_low_counts", "n_only"] == 0 and rep.loc["flag_excluded_obs", "n_only"] == 1
    assert rep.loc["any", "n_flagged"] == 6 and rep.loc["flag_5sigma (keep)", "n_flagged"] == 5
    # requiring 5 sigma removes nothing more: the 3 rows without a drop flag are all 5 sigma
    assert rep.loc["any", "n_only"] == 6 and rep.loc["flag_5sigma (keep)", "n_only"] == 0
    assert len(vet(flagged)) - len(vet(flagged, require="flag_5sigma")) == rep.loc["flag_5sigma (keep)", "n_only"]
    kept = vet(flagged)
    assert list(kept["source_id"]) == [10, 10, 10]
    assert len(vet(flagged, require=("flag_5sigma",))) == 3
    only_hot = vet(flagged, {"flag_hot_region": True, "flag_5sigma": False})
    assert list(only_hot["source_id"]) == [1, 2, 3]
    assert len(vet(flagged, ["flag_excluded_obs"])) == 7
    with pytest.raises(KeyError, match="flag_edge"):
        vet(flagged, ["flag_edge"])
    assert set(DROP_FLAGS) >= {"flag_hot_region", "flag_excluded_obs", "flag_low_counts", "flag_edge"}


def _mos(root, obsid, seed, t0, **kw):
    import xcube.simulate as sim

    path = root / obsid / f"P{obsid}M1S{seed:03d}MIEVLI0000.FIT"
    flare = dict(amplitude=0.6, width=100.0, t_peak=2_500.0, ra=RA + 0.02, dec=DEC - 0.01)
    sim.event_list("xmm-mos1", duration=5_000.0, sources=2, soft_protons=0, flares=[flare], ra_pnt=RA, dec_pnt=DEC,
                   obs_id=obsid, seed=seed, t0=t0, path=path, **kw)
    return path


def test_catalogue_of_a_survey_with_subsets_prints_the_flags(tmp_path, capsys):
    out = tmp_path / "out"
    params = parameter_grid([100.0], [(0.2, 12.0)])
    # observation 1: two MOS1 exposures, one after the other (two subsets)
    a = _mos(tmp_path, "0400000001", 1, 7.0e8)
    b = _mos(tmp_path, "0400000001", 2, 7.0e8 + 6_000.0)
    plan = [(run_id("0400000001", p), p) for p in params]
    recs = run_observation("0400000001", [a, b], plan, out, token="t1")
    assert [r["state"] for r in recs] == ["done"]
    assert recs[0]["search_run_id"] == "0400000001_0_100_0.2_12.0,0400000001_1_100_0.2_12.0"
    assert recs[0]["exposure"] == pytest.approx(10_000.0)
    det = pd.read_parquet(out / "0400000001" / plan[0][0] / "detections.parquet")
    assert set(det["run_id"].str.split("_").str[1]) == {"0", "1"}  # a flare in each exposure
    # observation 2: one exposure
    c = _mos(tmp_path, "0400000002", 3, 7.0e8)
    run_observation("0400000002", [c], [(run_id("0400000002", p), p) for p in params], out, token="t1")
    cat = build_catalogue(out, exclude_obs=["0400000002"])
    printed = capsys.readouterr().out
    assert "quality flags of" in printed and "flag_excluded_obs" in printed and "flag_hot_region" in printed
    d = cat.detections
    assert {"n_max", "ks_stat", "cstat", "flag_edge", "flag_hot_region", "flag_excluded_obs", "det_u"} <= set(d)
    assert d.loc[d["obsid"] == "0400000002", "flag_excluded_obs"].all()
    assert (cat.directory / "flags.csv").exists() and (cat.directory / "hot_regions.parquet").exists()
    clean = vet(cat, ["flag_excluded_obs"])
    assert (clean.detections["obsid"] == "0400000001").all() and len(clean.sources) <= len(cat.sources)
    from xcube.survey import read_catalogue_dir

    again = read_catalogue_dir(out)
    assert again.flag_report is not None and len(again.flag_report) == len(cat.flag_report)


def test_vet_and_flag_report_with_an_empty_list_use_no_flags():
    """An explicit empty list means no flags, not the default ones."""
    flagged, _ = flag_catalogue(_table())
    assert len(vet(flagged)) == 4  # (the hot region's 4 and one low-count row dropped)
    assert len(vet(flagged, flags=[])) == len(vet(flagged, flags={})) == len(flagged)
    assert len(vet(flagged, flags=[], require=["flag_5sigma"])) == 5
    rep = flag_report(flagged, [])
    assert list(rep["flag"]) == ["any", "flag_5sigma (keep)"] and rep["n_flagged"].iloc[0] == 0


def test_vet_takes_a_single_flag_name_and_says_what_it_needs():
    """A single name is a one-element list (not its characters); a path or
    None is a TypeError saying a Catalogue or DataFrame is needed."""
    flagged, _ = flag_catalogue(_table())
    assert vet(flagged, flags="flag_hot_region").equals(vet(flagged, flags=["flag_hot_region"]))
    assert len(vet(flagged, flags="flag_hot_region")) == 5
    assert vet(flagged, require="flag_5sigma").equals(vet(flagged, require=("flag_5sigma",)))
    assert list(flag_report(flagged, "flag_hot_region")["flag"]) == ["flag_hot_region", "any", "flag_5sigma (keep)"]
    for bad in ("survey-out", None, 3):
        with pytest.raises(TypeError, match="Catalogue .* or a detections DataFrame"):
            vet(bad)
    with pytest.raises(TypeError, match="flag name"):
        vet(flagged, flags=3)


def test_flag_report_names_an_unknown_flag_as_vet_does():
    flagged, _ = flag_catalogue(_table())
    with pytest.raises(KeyError, match="flag_report: no column 'flag_nope'"):
        flag_report(flagged, ["flag_nope"])
    with pytest.raises(KeyError, match="vet: no column 'flag_nope'"):
        vet(flagged, ["flag_nope"])


def test_hot_regions_without_an_observation_column_says_so():
    with pytest.raises(KeyError, match="no 'obsid' \\(or 'obs_id'\\) column"):
        hot_regions(_table().drop(columns=["obsid"]))
    assert len(hot_regions(_table().rename(columns={"obsid": "obs_id"}))[0]) == 1  # (obs_id is enough)


def test_text_flags_from_a_csv_round_trip_are_read_as_booleans(tmp_path):
    """Flags read back from a CSV as text: ``astype(bool)`` made "False" True,
    so vet dropped every row."""
    det = pd.DataFrame({"flag_edge": [True, False, False], "flag_low_counts": [False, False, True],
                        "flag_5sigma": [True, True, False]})
    path = tmp_path / "det.csv"
    det.astype(str).to_csv(path, index=False)
    text = pd.read_csv(path, dtype=str)
    assert len(vet(text, ["flag_edge"])) == 2 and len(vet(text, ["flag_edge", "flag_low_counts"])) == 1
    assert flag_report(text, ["flag_edge"])["n_flagged"].tolist() == [1, 1, 2]  # edge, any, 5 sigma (keep)
    with pytest.raises(ValueError, match="flag_edge: value 'maybe' is not a boolean flag"):
        vet(text.assign(flag_edge=["maybe", "False", "False"]), ["flag_edge"])
