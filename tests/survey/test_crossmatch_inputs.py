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
