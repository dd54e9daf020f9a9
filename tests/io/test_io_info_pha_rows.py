"""``xcube info 'file.pha{k}'``: one row of a PHA type II file summarised as one spectrum (rows 1-based, as
``read_spectrum(path, row=k)`` and XSPEC number them); errors naming the file for a row out of range or a
file that is not type II; several files, suffixed or not, in one call."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from xcube.cli import main

N = 64
COUNTS = [1, 2, 3]  # per channel, rows 1..3
EXPOSURE = [1000.0, 2500.0, 4000.0]
BACKSCAL = [0.5, 1.0, 2.0]


def _type2(path):
    """A PHA type II file of 3 rows (SPEC_NUM, TG_M, per-row EXPOSURE, BACKSCAL and RESPFILE)."""
    for name in ("r1.rmf", "r2.rmf", "r3.rmf"):
        _rmf(path.parent / name)
    cols = [fits.Column("SPEC_NUM", "I", array=[1, 2, 3]),
            fits.Column("TG_M", "I", array=[-1, 1, 2]),
            fits.Column("CHANNEL", f"{N}J", array=np.tile(np.arange(1, N + 1), (3, 1))),
            fits.Column("COUNTS", f"{N}J", array=np.array([[c] * N for c in COUNTS])),
            fits.Column("EXPOSURE", "D", array=EXPOSURE),
            fits.Column("BACKSCAL", "E", array=BACKSCAL),
            fits.Column("RESPFILE", "8A", array=["r1.rmf", "r2.rmf", "r3.rmf"])]
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    hdu.header.update(HDUCLASS="OGIP", HDUCLAS1="SPECTRUM", HDUCLAS2="TOTAL", HDUCLAS3="COUNT",
                      HDUCLAS4="TYPE:II", CHANTYPE="PI", POISSERR=True, TELESCOP="CHANDRA", INSTRUME="ACIS",
                      OBJECT="Cyg X-1", DETCHANS=N, TLMIN3=1, TLMAX3=N)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


def _rmf(path):
    eb = fits.BinTableHDU.from_columns([fits.Column("CHANNEL", "J", array=np.arange(1, N + 1)),
                                        fits.Column("E_MIN", "E", array=0.1 * np.arange(1, N + 1)),
                                        fits.Column("E_MAX", "E", array=0.1 * np.arange(2, N + 2))], name="EBOUNDS")
    fits.HDUList([fits.PrimaryHDU(), eb]).writeto(path)


def _type1(path):
    cols = [fits.Column("CHANNEL", "J", array=np.arange(1, N + 1)), fits.Column("COUNTS", "J", array=np.full(N, 7))]
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    hdu.header.update(HDUCLASS="OGIP", HDUCLAS1="SPECTRUM", HDUCLAS2="TOTAL", HDUCLAS3="COUNT", CHANTYPE="PI",
                      POISSERR=True, TELESCOP="XMM", INSTRUME="EMOS1", EXPOSURE=5000.0, BACKSCAL=1.0,
                      AREASCAL=1.0, RESPFILE="none", DETCHANS=N)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


def _blocks(out: str) -> dict:
    """The summaries printed, by their first line's name (up to the ':')."""
    blocks, name = {}, None
    for line in out.splitlines():
        if not line.startswith(" "):
            name = line.split(": ", 1)[0]
            blocks[name] = []
        blocks[name].append(line)
    return {k: "\n".join(v) for k, v in blocks.items()}


@pytest.mark.parametrize("k", [1, 2, 3])
def test_info_of_a_row_summarises_that_spectrum(tmp_path, capsys, k):
    from xcube.io.ogip import read_spectrum

    t2 = _type2(tmp_path / "t2.pha")
    assert main(["info", f"{t2}{{{k}}}"]) == 0
    out, err = capsys.readouterr()
    assert "error" not in err
    text = _blocks(out)[f"{t2}{{{k}}}"]
    assert text.startswith(f"{t2}{{{k}}}: spectrum (Chandra ACIS)")
    assert "object: Cyg X-1" in text
    assert f"row         : {k} of 3 of the PHA type II file t2.pha (table SPECTRUM); SPEC_NUM {k}, " \
           f"TG_M {[-1, 1, 2][k - 1]}" in text
    assert f"channels    : {N} (1 - {N})" in text
    assert f"counts      : {COUNTS[k - 1] * N:,}" in text
    assert f"exposure    : {EXPOSURE[k - 1]:.1f} s    backscal: {BACKSCAL[k - 1]}    areascal: 1.0" in text
    assert f"respfile={tmp_path / f'r{k}.rmf'}, ancrfile=-, backfile=-" in text
    assert "spectra     :" not in text  # (not the list of rows)
    # as read_spectrum numbers the rows
    spec = read_spectrum(t2, row=k)
    assert f"counts      : {int(spec['counts'].sum()):,}" in text and spec.attrs["exposure"] == EXPOSURE[k - 1]


@pytest.mark.parametrize("k", [0, 4])
def test_row_out_of_range_is_an_error_naming_the_file(tmp_path, capsys, k):
    t2 = _type2(tmp_path / "t2.pha")
    assert main(["info", f"{t2}{{{k}}}"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"xcube info: error: {t2}: row={k}: the PHA type II file holds rows 1..3" in err
    assert "Traceback" not in err and "no such file" not in err


def test_row_of_a_file_that_is_not_type_ii(make_event_file, tmp_path, capsys):
    t1 = _type1(tmp_path / "t1.pha")
    assert main(["info", f"{t1}{{2}}"]) == 1
    assert f"error: {t1}: row=2: a PHA type I file holds one spectrum (row 1)" in capsys.readouterr().err
    ev = make_event_file()
    assert main(["info", f"{ev}{{1}}"]) == 1
    err = capsys.readouterr().err
    assert f"error: {ev}{{1}}: {{1}} picks row 1 of a PHA type II spectrum file" in err
    assert f"{ev} is not a PHA spectrum" in err
    assert main(["info", str(tmp_path / "none.pha{2}")]) == 1
    assert f"error: {tmp_path / 'none.pha'}: no such file" in capsys.readouterr().err


def test_row_1_of_a_type_i_file_is_the_file_as_read_spectrum_reads_it(tmp_path, capsys):
    t1 = _type1(tmp_path / "t1.pha")
    assert main(["info", f"{t1}{{1}}"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{t1}{{1}}: spectrum (XMM-Newton EMOS1)")
    assert "row         : 1, a PHA type I file" in text and f"counts      : {7 * N:,}" in text
    assert "exposure    : 5000.0 s" in text


def test_info_mixes_files_and_rows(make_event_file, tmp_path, capsys):
    t2, t1, ev = _type2(tmp_path / "t2.pha"), _type1(tmp_path / "t1.pha"), make_event_file(n=500)
    files = [str(ev), f"{t2}{{3}}", str(t2), str(t1), f"{t2}{{9}}", f"{t2}{{1}}"]
    assert main(["info", *files]) == 1  # (one bad row: the others are still summarised)
    out, err = capsys.readouterr()
    blocks = _blocks(out)
    assert list(blocks) == [str(ev), f"{t2}{{3}}", str(t2), str(t1), f"{t2}{{1}}"]
    assert "events      : 500" in blocks[str(ev)]
    assert "row         : 3 of 3" in blocks[f"{t2}{{3}}"] and f"counts      : {3 * N:,}" in blocks[f"{t2}{{3}}"]
    assert "spectra, PHA type II" in blocks[str(t2)] and "row 3       : SPEC_NUM 3, TG_M 2" in blocks[str(t2)]
    assert f"xcube info '{t2.name}{{k}}' summarises it" in blocks[str(t2)]
    assert f"counts      : {7 * N:,}" in blocks[str(t1)] and "row  " not in blocks[str(t1)]
    assert "exposure    : 1000.0 s" in blocks[f"{t2}{{1}}"]
    assert err.count("error") == 1 and f"{t2}: row=9: the PHA type II file holds rows 1..3" in err
    assert main(["info", f"{t2}{{2}}", str(t1)]) == 0


def test_a_file_named_with_braces_is_that_file(tmp_path, capsys):
    """The suffix is read as a row only when no file of the full name exists (read_spectrum's rule)."""
    odd = _type1(tmp_path / "odd.pha{2}")
    assert main(["info", str(odd)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{odd}: spectrum (XMM-Newton EMOS1)") and "row  " not in text


def test_product_summary_of_a_row(tmp_path):
    from xcube.io.product_info import product_summary

    t2 = _type2(tmp_path / "t2.pha")
    text = product_summary(t2, "spectrum", row=2)
    assert text.startswith(f"{t2}{{2}}: spectrum") and f"counts      : {2 * N:,}" in text
    with pytest.raises(ValueError, match=r"t2\.pha: row=5: the PHA type II file holds rows 1\.\.3"):
        product_summary(t2, "spectrum", row=5)
    with pytest.raises(ValueError, match=r"t2\.pha\{2\}: .* is not a PHA spectrum \(image\)"):
        product_summary(t2, "image", row=2)
