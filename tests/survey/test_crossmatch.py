"""Cross-matching sources with user catalogues, checked against astropy's
``match_coordinates_sky`` and ``spherical_offsets_to``; FITS/CSV/Parquet readers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord, match_coordinates_sky
from astropy.table import Table

from xcube.survey import crossmatch, crossmatch_table, read_catalogue
from xcube.survey.crossmatch import spherical_offsets


def _sky(n, rng):
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    return ra, dec


def test_crossmatch_agrees_with_astropy():
    rng = np.random.default_rng(0)
    cat_ra, cat_dec = _sky(3000, rng)
    # sources: perturbed catalogue positions (some far), plus the poles and RA = 0/360 edges
    idx = rng.integers(0, 3000, 400)
    c = SkyCoord(cat_ra[idx] * u.deg, cat_dec[idx] * u.deg)
    p = c.directional_offset_by(rng.uniform(0, 360, 400) * u.deg, rng.uniform(0, 40, 400) * u.arcsec)
    ra = np.r_[p.ra.deg, 359.9999, 0.0001, 10.0, 200.0]
    dec = np.r_[p.dec.deg, 5.0, 5.0, 89.99999, -89.99999]
    cat_ra = np.r_[cat_ra, 0.0002, 180.0, 10.0]
    cat_dec = np.r_[cat_dec, 5.0001, 89.9999, -89.9999]
    j, sep, dra, ddec = crossmatch(ra, dec, cat_ra, cat_dec, radius_arcsec=20.0)

    src, cat = SkyCoord(ra * u.deg, dec * u.deg), SkyCoord(cat_ra * u.deg, cat_dec * u.deg)
    ref_j, ref_sep, _ = match_coordinates_sky(src, cat)
    within = ref_sep.arcsec <= 20.0
    assert within.sum() > 100 and (~within).sum() > 100
    np.testing.assert_array_equal(j, np.where(within, ref_j, -1))
    np.testing.assert_allclose(sep[within], ref_sep.arcsec[within], atol=1e-6)
    assert np.isnan(sep[~within]).all() and np.isnan(dra[~within]).all()
    ref_dra, ref_ddec = src[within].spherical_offsets_to(cat[ref_j[within]])
    np.testing.assert_allclose(dra[within], ref_dra.arcsec, atol=1e-6)
    np.testing.assert_allclose(ddec[within], ref_ddec.arcsec, atol=1e-6)
    # the RA = 0/360 pair matches with a small positive RA offset
    k = len(p)
    assert j[k] == len(cat_ra) - 3 and 1.0 < dra[k] < 1.1 and sep[k] < 1.2  # 0.0003 deg x cos(5 deg)
    assert j[k + 1] == len(cat_ra) - 3
    # near the poles the match works although RA differs by 170 deg
    assert j[k + 2] == len(cat_ra) - 2 and sep[k + 2] < 0.5


def test_spherical_offsets_match_astropy_everywhere():
    rng = np.random.default_rng(1)
    ra1, dec1 = _sky(300, rng)
    ra2, dec2 = _sky(300, rng)
    dx, dy = spherical_offsets(ra1, dec1, ra2, dec2)
    rx, ry = SkyCoord(ra1 * u.deg, dec1 * u.deg).spherical_offsets_to(SkyCoord(ra2 * u.deg, dec2 * u.deg))
    np.testing.assert_allclose(dx, rx.wrap_at(180 * u.deg).deg, atol=1e-9)
    np.testing.assert_allclose(dy, ry.deg, atol=1e-9)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "fits"])
def test_read_catalogue_formats_and_columns(tmp_path, fmt):
    df = pd.DataFrame({"Src": ["A", "B", "C"], "RAJ2000": [10.0, 20.0, 359.99], "DEJ2000": [-5.0, 0.0, 1.0],
                       "flux": [1.0, 2.0, 3.0]})
    path = tmp_path / f"cat.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "parquet":
        df.to_parquet(path)
    else:
        t = Table.from_pandas(df)
        t["RAJ2000"].unit = u.deg
        t["DEJ2000"].unit = u.deg
        t.write(path)
    cat = read_catalogue(path, name_col="Src")
    assert cat["name"].tolist() == ["A", "B", "C"]
    np.testing.assert_allclose(cat["ra"], df["RAJ2000"])
    np.testing.assert_allclose(cat["dec"], df["DEJ2000"])
    src = pd.DataFrame({"name": ["s1", "s2"], "ra": [20.001, 100.0], "dec": [0.0, 0.0]})
    out = crossmatch_table(src, path, radius_arcsec=20.0, name_col="Src")
    assert out["cat_name"][0] == "B" and out["cat_name"].isna().tolist() == [False, True]
    assert out["cat_index"].tolist() == [1, -1]
    assert out["cat_sep_arcsec"][0] == pytest.approx(3.6, abs=1e-6)
    assert out["cat_dra_arcsec"][0] == pytest.approx(-3.6, abs=1e-4) and abs(out["cat_ddec_arcsec"][0]) < 1e-6


def test_read_catalogue_options_and_errors(tmp_path):
    path = tmp_path / "odd.csv"
    pd.DataFrame({"alpha": ["00:40:00.0", "12:00:00"], "delta": ["-05:00:00", "+30:30:00"]}).to_csv(path, index=False)
    with pytest.raises(KeyError, match="--ra-col"):
        read_catalogue(path)
    cat = read_catalogue(path, ra_col="ALPHA", dec_col="delta")  # case-insensitive, sexagesimal text
    np.testing.assert_allclose(cat["ra"], [10.0, 180.0])
    np.testing.assert_allclose(cat["dec"], [-5.0, 30.5])
    assert cat["name"].tolist() == ["0", "1"]
    with pytest.raises(KeyError, match="no column 'nope'"):
        read_catalogue(path, ra_col="nope", dec_col="delta")
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"ra": [1.0, np.nan], "dec": [0.0, 0.0]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="1 rows have missing or invalid"):
        read_catalogue(bad)
    with pytest.raises(ValueError, match="unknown catalogue format"):
        read_catalogue(tmp_path / "cat.xlsx")
