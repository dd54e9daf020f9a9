"""``xcube info`` of a spectrum with a GROUPING column but no QUALITY column (QUALITY as a keyword, as
grppha and SAS ``specgroup`` may leave it) prints its groups line."""
from __future__ import annotations

import numpy as np
from astropy.io import fits

from xcube.io.product_info import product_summary


def _spectrum(path, *, quality_column: bool):
    """A PHA type I spectrum of 4096 channels grouped by 4 (1024 groups); QUALITY a column (channels 0 - 9 bad)
    or the keyword QUALITY = 0."""
    ch = np.arange(4096)
    cols = [fits.Column("CHANNEL", "J", array=ch), fits.Column("COUNTS", "J", unit="count", array=np.full(4096, 5)),
            fits.Column("GROUPING", "I", array=np.where(ch % 4 == 0, 1, -1))]
    if quality_column:
        cols.append(fits.Column("QUALITY", "I", array=np.where(ch < 10, 2, 0)))
    h = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    h.header.update(HDUCLASS="OGIP", HDUCLAS1="SPECTRUM", HDUVERS="1.2.1", HDUCLAS2="TOTAL", HDUCLAS3="COUNT",
                    TELESCOP="XMM", INSTRUME="EPN", FILTER="Thick", EXPOSURE=12345.6, AREASCAL=1.0, BACKSCAL=2.5e5,
                    CORRSCAL=0.0, BACKFILE="none", CORRFILE="none", RESPFILE="none", ANCRFILE="none",
                    CHANTYPE="PI", DETCHANS=4096, POISSERR=True, TLMIN1=0, TLMAX1=4095)
    if not quality_column:
        h.header["QUALITY"] = 0
    fits.HDUList([fits.PrimaryHDU(), h]).writeto(path)
    return path


def test_groups_line_without_a_quality_column(tmp_path):
    text = product_summary(_spectrum(tmp_path / "group_noqual.pha", quality_column=False), "spectrum")
    groups = [t for t in text.splitlines() if t.startswith("  groups")]
    assert groups == ["  groups      : 1,024"], text  # (the whole line was dropped)


def test_groups_line_with_a_quality_column_counts_bad_channels(tmp_path):
    text = product_summary(_spectrum(tmp_path / "group_qual.pha", quality_column=True), "spectrum")
    assert "  groups      : 1,024    bad channels: 10" in text.splitlines(), text
