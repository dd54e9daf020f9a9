"""crossmatch_table: every kind of catalogue read alike (DataFrame with its
own column names, astropy Table), NaN source positions match nothing, and
prefixes are FITS-safe and never overwrite an earlier catalogue's columns."""
from __future__ import annotations

import numpy as np
import pandas as pd
from astropy.table import Table

from xcube.survey import crossmatch_table

SRC = pd.DataFrame({"name": ["s1", "s2", "s3"], "ra": [1.0, np.nan, 50.0], "dec": [1.0, 0.0, 0.0]})


def test_tables_and_nan_positions():
    cat = pd.DataFrame({"RAJ2000": [1.0, 50.0], "DEJ2000": [1.0, 0.001], "Src": ["A", "B"]})
    out = crossmatch_table(SRC, cat, ra_col="RAJ2000", dec_col="DEJ2000", name_col="Src")
    assert out["match_index"].tolist() == [0, -1, 1] and out["match_name"].fillna("-").tolist() == ["A", "-", "B"]
    assert np.isnan(out["match_sep_arcsec"][1])
    out = crossmatch_table(SRC, Table.from_pandas(cat), ra_col="RAJ2000", dec_col="DEJ2000", prefix="t")
    assert out["t_index"].tolist() == [0, -1, 1]


def test_prefixes_are_fits_safe_and_distinct(tmp_path):
    (tmp_path / "c1").mkdir()
    (tmp_path / "c2").mkdir()
    pd.DataFrame({"name": ["SRC1"], "ra": [1.0], "dec": [1.0]}).to_csv(tmp_path / "c1/known.csv", index=False)
    pd.DataFrame({"name": ["FAR"], "ra": [90.0], "dec": [1.0]}).to_csv(tmp_path / "c2/known.fits.csv", index=False)
    pd.DataFrame({"name": ["G"], "ra": [1.0], "dec": [1.0]}).to_csv(tmp_path / "gaia-dr3.csv", index=False)
    out = crossmatch_table(SRC, tmp_path / "c1/known.csv")
    out = crossmatch_table(out, tmp_path / "c2/known.fits.csv")
    out = crossmatch_table(out, tmp_path / "gaia-dr3.csv")
    assert out["known_name"].fillna("-").tolist() == ["SRC1", "-", "-"]
    assert out["known_2_index"].tolist() == [-1, -1, -1]
    assert out["gaia_dr3_name"].fillna("-").tolist() == ["G", "-", "-"]


def test_bad_csv_catalogues_name_the_file(tmp_path):
    """Sweep p25: a Latin-1 file, ragged rows or a text radius gave bare decoder/parser errors."""
    import pytest

    from xcube.io.catalogue import read_catalogue

    (tmp_path / "latin1.csv").write_bytes("name,ra,dec\nM\xfcller,1.0,1.0\n".encode("latin-1"))
    (tmp_path / "ragged.csv").write_text("name,ra,dec\na,1,1\nb,2,2,3,4\n")
    (tmp_path / "radius.csv").write_text("name,ra,dec,radius\na,1,1,big\nb,2,2,\n")
    for name, said in (("latin1.csv", "not UTF-8 text"), ("ragged.csv", "not a readable CSV table"),
                       ("radius.csv", "first row 0, 'big'")):
        with pytest.raises(ValueError, match=f"{name}: .*{said}"):
            read_catalogue(tmp_path / name)
    # a missing radius is no error: the default applies
    (tmp_path / "blank.csv").write_text("name,ra,dec,radius\na,1,1,\nb,2,2,12\n")
    assert read_catalogue(tmp_path / "blank.csv")["radius_arcsec"].fillna(-1).tolist() == [-1.0, 12.0]


def test_hash_inside_a_value_is_kept_and_comment_lines_are_skipped(tmp_path):
    """Sweep p25: comment='#' cut 'Cl 0001#2 member' to 'Cl 0001'; only whole comment lines are comments."""
    import gzip

    text = "# a comment line\nname,ra,dec\n  # an indented comment\nCl 0001#2 member,1.0,1.0\n"
    (tmp_path / "hash.csv").write_text(text)
    with gzip.open(tmp_path / "hash.csv.gz", "wt") as f:
        f.write(text)
    for name in ("hash.csv", "hash.csv.gz"):
        out = crossmatch_table(SRC, tmp_path / name, prefix="h")
        assert out["h_name"].tolist()[0] == "Cl 0001#2 member" and out["h_index"].tolist() == [0, -1, -1]


def test_radii_beyond_180_degrees_match_everything():
    """Sweep p25: the chord stopped growing at 180 deg, so a 277 deg radius matched nothing."""
    from xcube.survey.cluster import cluster_positions
    from xcube.survey.crossmatch import crossmatch

    assert crossmatch([0.0], [0.0], [100.0], [0.0], radius_arcsec=277 * 3600)[0].tolist() == [0]
    assert cluster_positions([0.0, 100.0], [0.0, 0.0], radius_arcsec=277 * 3600).tolist() == [0, 0]
