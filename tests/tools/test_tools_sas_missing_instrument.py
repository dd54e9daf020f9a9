"""A requested XMM-Newton instrument without a science exposure is reported
by name, with the ODF summary it was looked for in, also when the other
instruments have theirs (sweep p20, D5): an odfingest summary cut short
before the PN section (exit code 0) no longer drops pn without a word.
Against the fake SAS tasks."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from fake_tools.fixture import FAKE_DIR

from xcube.tools import sas_pipeline

CUT_ODFINGEST = f"""#!{sys.executable}
# the fake odfingest, then its summary cut before the PN section, exit code 0 (a write cut short)
import glob, os, subprocess, sys
rc = subprocess.call([{str(FAKE_DIR / "odfingest")!r}] + sys.argv[1:])
out = next(a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("outdir="))
for path in glob.glob(os.path.join(out, "*SUM.SAS")) + glob.glob(os.path.join(out, ".*SUM.SAS*")):
    text = open(path).read()
    open(path, "w").write(text[:text.index("INSTRUMENT\\nPN\\n")])
sys.exit(rc)
"""


def test_instrument_missing_from_a_cut_summary_is_reported(fake_tools, tmp_path, monkeypatch, caplog, capsys):
    odf = fake_tools.lib.make_xmm_odf(tmp_path / "odf", exposures=(("PN", "S003", "SCIENCE"),
                                                                   ("M1", "S001", "SCIENCE"),
                                                                   ("M2", "S002", "CALCLOSED")))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "odfingest").write_text(CUT_ODFINGEST)
    (bin_dir / "odfingest").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:" + __import__("os").environ["PATH"])
    with caplog.at_level(logging.WARNING, logger="xcube.tools"):
        res = sas_pipeline.process_observation(odf, tmp_path / "out", ("pn", "mos1", "mos2"), steps=("events",),
                                               workers=1)
    summary = res.summary.path
    assert "PN" not in res.summary.active  # the summary was cut: no PN section at all
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    pn = [m for m in warned if " pn " in m]
    assert len(pn) == 1 and str(summary) in pn[0] and "no INSTRUMENT section" in pn[0], warned
    mos2 = [m for m in warned if " mos2 " in m]
    assert len(mos2) == 1 and "CALCLOSED" in mos2[0] and str(summary) in mos2[0], warned
    assert not [m for m in warned if " mos1 " in m]
    assert [n for n in res.notes if " pn " in n] and [n for n in res.notes if " mos2 " in n]

    # the command line prints them as notes
    from xcube.cli import main

    main(["tools", "sas", "process", str(odf), "--out", str(tmp_path / "out"), "--steps", "events",
          "--workers", "1"])
    err = capsys.readouterr().err
    assert "note:" in err and " pn " in err and str(summary) in err
