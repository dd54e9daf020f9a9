"""A catalogue whose RA/Dec columns cannot be found: advice that works for
every command that reads one (each has --ra-col/--dec-col), without the
quotes of a KeyError's str(); xcube search takes the columns' names."""
from __future__ import annotations

import pandas as pd
import pytest

from xcube.cli import main
from xcube.io.catalogue import read_catalogue


def test_catalogue_column_advice(make_event_file, tmp_path, capsys):
    cat = tmp_path / "cat.csv"
    pd.DataFrame({"a": [263.6], "b": [-32.5]}).to_csv(cat, index=False)
    with pytest.raises(KeyError, match=r"cannot tell which column holds RA \(columns: a, b\); rename it to RA, "
                                       r"or name it with ra_col= \(command line: --ra-col\)"):
        read_catalogue(cat)
    assert len(read_catalogue(cat, ra_col="a", dec_col="b")) == 1
    rc = main(["search", str(make_event_file()), "--catalogue", str(cat), "--out", str(tmp_path / "s"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and f"xcube search: error: {cat}: cannot tell which column holds RA" in err
    assert "rename it to RA" in err and "--ra-col / ra_col=" not in err
    out = tmp_path / "s2"
    rc = main(["search", str(make_event_file()), "--catalogue", str(cat), "--ra-col", "a", "--dec-col", "b",
               "--out", str(out), "--quiet"])
    assert rc == 0 and out.exists()


def test_a_catalogue_that_is_not_a_table_names_the_file(tmp_path):
    """A text file named .fits gave astropy's 100-line format table (IORegistryError); a broken Parquet pyarrow's."""
    from xcube.io.catalogue import read_catalogue

    (tmp_path / "text.fits").write_text("hello, not FITS\n")
    (tmp_path / "t.parquet").write_text("x")
    with pytest.raises(ValueError, match=r"text\.fits: not a readable FITS table"):
        read_catalogue(tmp_path / "text.fits")
    with pytest.raises(ValueError, match=r"t\.parquet: not a readable Parquet table"):
        read_catalogue(tmp_path / "t.parquet")


def test_search_reads_its_catalogue_before_the_events(make_event_file, tmp_path, capsys, monkeypatch):
    """xcube search --catalogue <not a table> failed only after the events pass, with astropy's format table."""
    import xcube.transients.search as search

    monkeypatch.setattr(search, "search_transients", lambda *a, **k: pytest.fail("the search ran"))
    (tmp_path / "text.fits").write_text("hello, not FITS\n")
    rc = main(["search", str(make_event_file()), "--catalogue", str(tmp_path / "text.fits"),
               "--out", str(tmp_path / "s"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "text.fits: not a readable FITS table" in err and len(err.splitlines()) == 1


def test_csv_ids_written_with_leading_zeros_stay_text(tmp_path):
    """pandas read obs_id '0001730201' as 1730201 and the name '0012' became '12'."""
    import pandas as pd

    from xcube.io.catalogue import read_catalogue

    p = tmp_path / "cat.csv"
    pd.DataFrame({"obs_id": ["0001730201", "0201901401"], "name": ["0012", "7"], "ra": [150.0, 150.1],
                  "dec": [2.2, 2.3], "n": [1, 2]}).to_csv(p, index=False)
    c = read_catalogue(p)
    assert list(c["obs_id"]) == ["0001730201", "0201901401"] and list(c["name"]) == ["0012", "7"]
    assert c["n"].dtype.kind == "i"  # other numbers stay numbers


def test_rows_longer_than_the_header_are_refused(tmp_path):
    """Review p25: one field more per row than the header made pandas read the first column as the index,
    shifting every column by one."""
    import pytest

    from xcube.io.catalogue import read_catalogue

    (tmp_path / "shifted.csv").write_text("name,ra,dec\na,10.0,20.0,extra\nb,11.0,21.0,extra\n")
    with pytest.raises(ValueError, match="shifted.csv: not a readable CSV table .*more fields than its header"):
        read_catalogue(tmp_path / "shifted.csv")
