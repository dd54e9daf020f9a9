"""Legal but unusual FITS event files: integer columns with any TZERO
(uint64, fractional offsets) read exactly and with one dtype on the
memory-mapped and the decompressed path, a TIMEZERO inherited from the
primary header shifts events and GTIs alike, and clear errors for a
vector TIME column, a blank MJDREFI and Unix-compressed (.Z) files."""
from __future__ import annotations

import gzip
import shutil
import warnings

import numpy as np
import pytest
from astropy.io import fits

import xcube

T0 = 3.0e8


def _write(path, n=1000, extra_cols=(), header=None, primary=None, gti=(T0, T0 + 5000.0), time_form="D"):
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(T0, T0 + 5000.0, n))
    cols = [fits.Column("TIME", time_form, array=t if time_form == "D" else np.repeat(t[:, None], 2, 1)),
            fits.Column("X", "I", array=rng.integers(1, 900, n).astype(np.int16)),
            fits.Column("Y", "I", array=rng.integers(1, 900, n).astype(np.int16)),
            fits.Column("PI", "J", array=rng.integers(0, 4096, n).astype(np.int32)), *extra_cols]
    ev = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    hdr = {"TELESCOP": "NuSTAR", "INSTRUME": "FPMA", "MJDREFI": 55197, "MJDREFF": 7.6601852e-4, "TIMESYS": "TT",
           "TSTART": T0, "TSTOP": T0 + 5000.0}
    hdr.update(header or {})
    for k, v in hdr.items():
        ev.header[k] = v
    g = fits.BinTableHDU.from_columns([fits.Column("START", "D", array=[gti[0]], unit="s"),
                                       fits.Column("STOP", "D", array=[gti[1]], unit="s")], name="GTI")
    prim = fits.PrimaryHDU()
    for k, v in (primary or {}).items():
        prim.header[k] = v
    fits.HDUList([prim, ev, g]).writeto(path)
    return t


def _open(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xcube.open_events(path)


def test_integer_columns_with_any_tzero_read_exactly_on_both_paths(tmp_path):
    n = 1000
    raw = np.random.default_rng(1).integers(-2**62, 2**62, n)
    extra = [fits.Column("TICK", "K", array=raw), fits.Column("HALF", "J", array=np.arange(n, dtype=np.int32)),
             fits.Column("SB", "B", array=np.arange(n).astype(np.uint8)),
             fits.Column("OFF", "I", array=np.arange(n).astype(np.int16))]
    path = tmp_path / "nu_tzero.evt"
    # TZEROn set on the header after the columns: the stored integers stay raw
    _write(path, n, extra, header={"TZERO5": 2**63, "TZERO6": 0.5, "TZERO7": -128, "TZERO8": 1000})
    with fits.open(path) as h:
        ref = {k: np.asarray(h[1].data[k]) for k in ("TICK", "HALF", "SB", "OFF")}
    assert ref["TICK"].dtype == np.uint64 and ref["HALF"][0] == 0.5
    with open(path, "rb") as f, gzip.open(tmp_path / "nu_tzero.evt.gz", "wb") as g:
        shutil.copyfileobj(f, g)
    dtypes = []
    for p in (path, tmp_path / "nu_tzero.evt.gz"):
        ev = _open(p)
        for k, v in ref.items():
            got = ev[k.lower()].values
            np.testing.assert_array_equal(got, v, err_msg=f"{p.name} {k}")
        dtypes.append({k: ev[k.lower()].dtype for k in ref})
        assert xcube.select(ev, expr="HALF > 10").sizes["event"] == int(np.sum(ref["HALF"] > 10))
    assert dtypes[0] == dtypes[1]
    assert dtypes[0]["TICK"] == np.uint64 and dtypes[0]["HALF"] == np.float64


def test_primary_header_timezero_moves_events_and_gtis_together(tmp_path):
    path = tmp_path / "ni_primtz.evt"
    t = _write(path, 2000, header={"TELESCOP": "NuSTAR"}, primary={"TIMEZERO": 100.0, "INHERIT": True},
               gti=(T0 + 1000.0, T0 + 2000.0))
    ev = _open(path)
    np.testing.assert_allclose(ev.time.values - t, 100.0)
    assert ev.gti_start.values[0] - T0 == 1100.0 and ev.gti_stop.values[0] - T0 == 2100.0
    lc = xcube.lightcurve(ev, 100.0)
    assert int(lc.counts.sum()) == int(np.sum((t >= T0 + 1000) & (t < T0 + 2000)))


def test_vector_time_column_is_named_as_such(tmp_path):
    path = tmp_path / "tvec.evt"
    _write(path, 50, time_form="2D")
    with pytest.raises(ValueError, match=r"tvec\.evt.*TIME column is a vector or non-numeric column \(TFORM '2D'\)"):
        xcube.open_events(path)


def test_blank_mjdrefi_is_absent_not_a_crash(tmp_path):
    path = tmp_path / "nomjd.evt"
    _write(path, 50, header={"MJDREFI": None, "MJDREFF": None})
    with pytest.warns(UserWarning, match="no MJDREF/MJDREFI keyword with a value"):
        ev = xcube.open_events(path)
    assert np.isnan(ev.attrs["mjdref"]) and "mjdrefi" not in ev.attrs


def test_unix_compressed_file_is_refused_by_name(tmp_path):
    d = tmp_path / "obs"
    d.mkdir()
    (d / "events.evt.Z").write_bytes(b"\x1f\x9d\x90" + bytes(200))
    with pytest.raises(OSError, match=r"events\.evt\.Z: Unix-compressed \(\.Z\) file.*uncompress"):
        xcube.open_events(d / "events.evt.Z")
    with pytest.raises(OSError, match=r"events\.evt\.Z: Unix-compressed"), pytest.warns(UserWarning, match="skipping"):
        xcube.open_events(d)  # a directory of .Z files: the file is named, not "holds no event files"


@pytest.mark.parametrize("gzipped", [False, True])
def test_events_outside_the_good_time_warn_at_open(tmp_path, gzipped):
    path = tmp_path / "outside.evt"
    _write(path, 100, gti=(T0 + 9000.0, T0 + 9500.0))  # events in T0..T0+5000
    if gzipped:
        with open(path, "rb") as f, gzip.open(tmp_path / "outside.evt.gz", "wb") as g:
            shutil.copyfileobj(f, g)
        path = tmp_path / "outside.evt.gz"
    with pytest.warns(UserWarning, match=r"outside\.evt.*all 100 events .* lie outside the good time"):
        xcube.open_events(path)


def test_empty_good_time_warns_at_open(tmp_path):
    path = tmp_path / "nogti.evt"
    _write(path, 100, gti=(T0 + 10.0, T0 + 10.0))  # one zero-length interval: no good time
    with pytest.warns(UserWarning, match=r"nogti\.evt: the good time is empty"):
        ev = xcube.open_events(path)
    assert ev.attrs["exposure"] == 0.0


def test_home_relative_paths(tmp_path, monkeypatch):
    """'~/...' from Python or quoted on the command line is the home directory, never a directory named '~'."""
    from xcube.cli import main

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    _write(home / "obs.evt", 50)
    assert xcube.open_events("~/obs.evt").sizes["event"] == 50
    assert main(["convert", "~/obs.evt", "--out", "~/conv"]) == 0
    assert (home / "conv" / "obs.zarr").is_dir() and not (tmp_path / "~").exists()
