"""Skip-if-done checksums the files named inside parameter values in the SAS
selectlib and CFITSIO forms: ``gti(gti.fits,TIME)``, ``region(src.reg,X,Y)``,
``ev.fits+1``, ``ev.fits[EVENTS][PI>5]`` (sweep p20, D2). Against the fake
executables in tests/fake_tools."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from xcube.tools import Task
from xcube.tools.provenance import read_record
from xcube.tools.runner import _named_files


def _events(fake_tools, path, n=400):
    t = np.linspace(0.0, 100.0, n, endpoint=False)
    cols = {"TIME": t, "PI": np.arange(n, dtype=np.int32) % 1000, "FLAG": np.zeros(n, np.int32),
            "PATTERN": np.zeros(n, np.int32)}
    hdr = {"TELESCOP": "XMM", "INSTRUME": "EPN", "OBS_ID": "1", "TSTART": 0.0, "TSTOP": 100.0}
    return fake_tools.lib._write_generic(path, cols, hdr, [("STDGTI", {}, np.array([0.0]), np.array([100.0]))],
                                         None)


def _gti(fake_tools, path, start, stop):
    lib = fake_tools.lib
    lib.write(path, [lib.gti_hdu(np.array([start]), np.array([stop]), "STDGTI", {})])


def test_gti_file_inside_an_expression_is_an_input(fake_tools, tmp_path, capsys):
    """The SAS-thread cleaning expression names its GTI file inside gti(...): a changed GTI re-runs evselect."""
    from astropy.io import fits

    from xcube.cli import main

    _events(fake_tools, tmp_path / "pn.fits")
    _gti(fake_tools, tmp_path / "gti.fits", 0.0, 50.0)
    argv = ["tools", "run", "evselect", "table=pn.fits", "withfilteredset=yes", "filteredset=clean.fits",
            "expression=#XMMEA_EP && gti(gti.fits,TIME) && (PI>150)", "--workdir", str(tmp_path),
            "--output", "clean.fits", "--name", "clean"]
    assert main(argv) == 0 and "evselect done" in capsys.readouterr().out
    n_before = len(fits.getdata(tmp_path / "clean.fits", "EVENTS"))
    rec = read_record(tmp_path / ".clean.fits.xcube.json")
    assert str((tmp_path / "gti.fits").resolve()) in rec["inputs"]
    assert main(argv) == 0 and "up to date" in capsys.readouterr().out
    _gti(fake_tools, tmp_path / "gti.fits", 0.0, 90.0)  # the flare GTI changed: the product is stale
    assert main(argv) == 0 and "evselect done" in capsys.readouterr().out
    assert len(fits.getdata(tmp_path / "clean.fits", "EVENTS")) > n_before
    assert len(fake_tools.calls("evselect")) == 2


def test_files_in_expressions_and_cfitsio_names_are_found(fake_tools, tmp_path):
    ev = Path(_events(fake_tools, tmp_path / "ev.fits"))
    (tmp_path / "src.reg").write_text("circle(100,100,20)\n")
    _gti(fake_tools, tmp_path / "g t i.fits", 0.0, 50.0)  # a name with spaces inside gti(...)
    reg = tmp_path / "src.reg"
    gti = tmp_path / "g t i.fits"
    cases = {
        "region(src.reg,X,Y)": [reg],
        "PI > 5 && REGION( src.reg , X, Y )": [reg],
        "gti(g t i.fits,TIME) && region(src.reg,X,Y)": [gti, reg],
        "gti(g t i.fits:STDGTI,TIME)": [gti],
        'regfilter("src.reg", X, Y) && gtifilter("ev.fits[GTI]", TIME)': [reg, ev],
        "ev.fits+1": [ev],
        "ev.fits+1[PI > 5]": [ev],
        "ev.fits[EVENTS][PI > 5]": [ev],
        f"{ev}[1]": [ev],
        "ev.fits.gz+1": [],  # no such file
        "PI < 500": [],
    }
    for value, want in cases.items():
        assert _named_files([value], tmp_path) == want, value
    # the forms that were found before keep working, a clobber name stays an output
    assert _named_files(["!ev.fits", "ev.fits:EVENTS", "@src.reg", ["x", "ev.fits"]], tmp_path) == [ev, reg, ev]


def test_region_and_extension_number_forms_are_recorded_inputs(fake_tools, tmp_path):
    """``ftselect infile=ev.fits+1`` recorded no input at all, so a changed ev.fits kept the stale product;
    a region file named in the expression was left out the same way."""
    from xcube.tools.runner import _prepare

    _events(fake_tools, tmp_path / "ev.fits")
    (tmp_path / "src.reg").write_text("circle(100,100,20)\n")
    t = Task("ftselect", {"infile": "ev.fits+1", "outfile": "o.fits", "expression": "region(src.reg,X,Y)"},
             outputs=["o.fits"], workdir=tmp_path)
    assert set(_prepare(t, tmp_path).inputs_fp) == {str((tmp_path / "ev.fits").resolve()),
                                                    str((tmp_path / "src.reg").resolve())}


def test_files_named_in_an_at_list_are_inputs(tmp_path):
    """Sweep p25: only the @list file was checksummed, so changed Standard2 data it names kept a stale
    pcaextlc2 light curve."""
    (tmp_path / "std2").mkdir()
    a, b = tmp_path / "std2" / "FS4a_1.gz", tmp_path / "std2" / "FS4a_2.gz"
    for f in (a, b):
        f.write_bytes(b"x")
    listing = tmp_path / "FP_dtstd2.lis"
    listing.write_text(f"# Standard2 files\n{a}\nstd2/FS4a_2.gz[1]\nmissing.gz\n\n")
    assert _named_files(["@FP_dtstd2.lis"], tmp_path) == [listing, a, b]
    assert _named_files(["FP_dtstd2.lis"], tmp_path) == [listing]  # without @ it is a file like any other
