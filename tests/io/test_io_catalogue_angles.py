"""read_catalogue: decimal text is degrees, sexagesimal RA text is hours
(unless marked as degrees), positions outside the sky are refused naming the
row, unit spellings of degrees, and radius columns (no bare 'r', by unit)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from xcube.io.catalogue import read_catalogue


def test_decimal_text_is_degrees_and_sexagesimal_ra_is_hours(tmp_path):
    path = tmp_path / "c.parquet"
    pd.DataFrame({"ra": ["150.1", "150.2"], "dec": ["2.2", "-2.3"]}).to_parquet(path)
    cat = read_catalogue(path)
    np.testing.assert_allclose(cat["ra"], [150.1, 150.2])
    np.testing.assert_allclose(cat["dec"], [2.2, -2.3])
    cat = read_catalogue(pd.DataFrame({"ra": ["10:00:24", "10h00m24s", "150d06m00s"],
                                       "dec": ["+02:12:00", "-2d30m", "2.5"]}))
    np.testing.assert_allclose(cat["ra"], [150.1, 150.1, 150.1])
    np.testing.assert_allclose(cat["dec"], [2.2, -2.5, 2.5])


def test_positions_outside_the_sky_are_refused_naming_file_and_row(tmp_path):
    path = tmp_path / "c.csv"
    pd.DataFrame({"ra": ["01:00:00", "150:06:00"], "dec": [1.0, 2.0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"c\.csv: column 'ra' holds text that is not an angle: row 1, '150:06:00'"):
        read_catalogue(path)
    pd.DataFrame({"ra": [10.0, 360.5], "dec": [1.0, 2.0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"c\.csv: 1 rows have RA \(column 'ra'\) outside \[0, 360\] deg: first row 1"):
        read_catalogue(path)
    pd.DataFrame({"ra": [10.0, 20.0], "dec": [1.0, -91.0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"Dec \(column 'dec'\) outside \[-90, 90\] deg: first row 1"):
        read_catalogue(path)


@pytest.mark.parametrize("unit", ["degrees", "DEG", "Degree", "DEGREES"])
def test_spellings_of_degrees(tmp_path, unit):
    path = tmp_path / "u.fits"
    t = Table({"RA": [150.1], "DEC": [2.2]})
    t.write(path)
    from astropy.io import fits

    with fits.open(path, mode="update") as hdul:
        hdul[1].header["TUNIT1"] = unit
        hdul[1].header["TUNIT2"] = unit
    cat = read_catalogue(path)
    assert cat["ra"][0] == pytest.approx(150.1) and cat["dec"][0] == pytest.approx(2.2)


def test_radius_column_is_not_a_magnitude_and_has_a_unit(tmp_path):
    sdss = tmp_path / "sdss.csv"
    pd.DataFrame({"ra": [1.0], "dec": [2.0], "r": [21.3]}).to_csv(sdss, index=False)
    assert np.isnan(read_catalogue(sdss)["radius_arcsec"][0])
    assert read_catalogue(sdss, radius_col="r")["radius_arcsec"][0] == 21.3
    t = Table({"RA": [1.0], "DEC": [2.0], "RADIUS": [0.01]})
    t["RADIUS"].unit = "deg"
    t.write(tmp_path / "rad.fits")
    assert read_catalogue(tmp_path / "rad.fits")["radius_arcsec"][0] == pytest.approx(36.0)
    assert read_catalogue(t)["radius_arcsec"][0] == pytest.approx(36.0)  # an astropy Table keeps its units
