"""OGIP PHA files of other tools read -> grouped -> written (P16 I): AREASCAL
and BACKSCAL columns, STAT_ERR/SYS_ERR with POISSERR = F, type II files,
missing EXPOSURE, RATE spectra; and NET light curves without COUNTS (SAS
epiclccorr) written back."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits

import xcube
from xcube.io.ogip import read_spectrum, write_lightcurve, write_spectrum
from xcube.products import group_spectrum

N = 64
RNG = np.random.default_rng(16)
COUNTS = RNG.poisson(5.0, N).astype(np.int32)


def _pha(path, extra_columns=(), drop=(), **keywords):
    """A PHA type I file as HEASoft writes it, with extra columns and keywords."""
    cols = [fits.Column("CHANNEL", "J", array=np.arange(N)),
            fits.Column("COUNTS", "J", unit="count", array=COUNTS),
            fits.Column("QUALITY", "I", array=np.zeros(N, np.int16)),
            fits.Column("GROUPING", "I", array=np.ones(N, np.int16)), *extra_columns]
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    header = dict(HDUCLASS="OGIP", HDUCLAS1="SPECTRUM", HDUVERS="1.2.1", HDUCLAS2="TOTAL", HDUCLAS3="COUNT",
                  CHANTYPE="PI", POISSERR=True, TELESCOP="XMM", INSTRUME="EMOS1", FILTER="Medium",
                  EXPOSURE=10000.0, BACKSCAL=1.0e5, AREASCAL=1.0, CORRSCAL=0.0, BACKFILE="none",
                  RESPFILE="none", ANCRFILE="none", CORRFILE="none", DETCHANS=N, TLMIN1=0, TLMAX1=N - 1)
    header.update(keywords)
    for key, value in header.items():
        if key not in drop:
            hdu.header[key] = value
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


def _quiet_read(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_spectrum(path, **kw)


def test_areascal_column_is_kept_and_written_back(tmp_path):
    areascal = np.linspace(0.5, 1.0, N)
    src = _pha(tmp_path / "a.pha", [fits.Column("AREASCAL", "E", array=areascal)], drop=("AREASCAL",))
    spec = _quiet_read(src)
    np.testing.assert_array_equal(spec["areascal"].values, areascal.astype(np.float32))  # a variable on channel
    out = write_spectrum(tmp_path / "out.pha", group_spectrum(spec, 20))
    with fits.open(out) as h:
        np.testing.assert_array_equal(h[1].data["AREASCAL"], areascal.astype(np.float32))
        assert h[1].header["AREASCAL"] == 1.0  # OGIP: the column holds the values
    back = _quiet_read(out)
    np.testing.assert_array_equal(back["areascal"].values, spec["areascal"].values)


def test_backscal_column_varying_is_written_as_a_column_constant_as_keyword(tmp_path):
    backscal = np.linspace(1.0, 2.0, N)
    src = _pha(tmp_path / "b.pha", [fits.Column("BACKSCAL", "E", array=backscal)], drop=("BACKSCAL",))
    out = write_spectrum(tmp_path / "out.pha", _quiet_read(src))
    with fits.open(out) as h:
        np.testing.assert_array_equal(h[1].data["BACKSCAL"], backscal.astype(np.float32))
    const = _pha(tmp_path / "c.pha", [fits.Column("BACKSCAL", "E", array=np.full(N, 0.5))], drop=("BACKSCAL",))
    spec = _quiet_read(const)
    assert spec.attrs["backscal"] == 0.5
    with fits.open(write_spectrum(tmp_path / "out_c.pha", spec)) as h:
        assert h[1].header["BACKSCAL"] == 0.5 and "BACKSCAL" not in h[1].columns.names


def test_per_channel_backscal_follows_a_channel_cut(tmp_path):
    """A varying BACKSCAL column was kept in attrs, so a channel cut left it 64 values long and the spectrum
    could not be written; it is a variable on channel now, cut with the counts."""
    backscal = np.linspace(1.0, 2.0, N)
    src = _pha(tmp_path / "b.pha", [fits.Column("BACKSCAL", "E", array=backscal)], drop=("BACKSCAL",))
    spec = _quiet_read(src).isel(channel=slice(0, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = write_spectrum(tmp_path / "out.pha", spec)
    with fits.open(out) as h:
        np.testing.assert_array_equal(h[1].data["BACKSCAL"][:10], backscal[:10].astype(np.float32))
    with pytest.raises(ValueError, match=r"x\.pha.*BACKSCAL.*64 values for 10 channels"):  # an attr array
        write_spectrum(tmp_path / "x.pha", spec.drop_vars("backscal").assign_attrs(backscal=backscal))


def test_spectrum_plot_scales_the_background_per_channel(tmp_path):
    """The plot took a per-channel BACKSCAL as 1 (a background 10x too high where BACKSCAL_b = 10)."""
    from xcube.plot.spectra import background_scale

    src = _pha(tmp_path / "b.pha", [fits.Column("BACKSCAL", "E", array=np.linspace(1.0, 2.0, N))],
               drop=("BACKSCAL",))
    spec = _quiet_read(src, background=False)
    spec["bkg_backscal"] = ("channel", np.full(N, 10.0))
    spec.attrs["bkg_exposure"] = spec.attrs["exposure"]
    np.testing.assert_allclose(background_scale(spec), np.linspace(1.0, 2.0, N).astype(np.float32) / 10.0)


def test_stat_err_and_sys_err_columns_survive_grouping_and_writing(tmp_path):
    stat = np.sqrt(COUNTS + 0.75) + 1
    src = _pha(tmp_path / "s.pha", [fits.Column("STAT_ERR", "E", unit="count", array=stat),
                                    fits.Column("SYS_ERR", "E", array=np.full(N, 0.03))], POISSERR=False)
    out = write_spectrum(tmp_path / "out.pha", group_spectrum(_quiet_read(src), 20))
    with fits.open(out) as h:
        assert h[1].header["POISSERR"] is False
        np.testing.assert_array_equal(h[1].data["STAT_ERR"], stat.astype(np.float32))
        np.testing.assert_array_equal(h[1].data["SYS_ERR"], np.float32(0.03))
        assert "STAT_ERR" not in h[1].header and "SYS_ERR" not in h[1].header


def test_sys_err_keyword_is_kept(tmp_path):
    src = _pha(tmp_path / "k.pha", SYS_ERR=0.03)
    spec = _quiet_read(src)
    with fits.open(write_spectrum(tmp_path / "out.pha", group_spectrum(spec, 20))) as h:
        assert h[1].header["POISSERR"] is True
        np.testing.assert_array_equal(h[1].data["SYS_ERR"], np.float32(0.03))


def test_poisson_spectrum_is_written_as_before(tmp_path):
    spec = _quiet_read(_pha(tmp_path / "p.pha"))
    assert "stat_err" not in spec and "sys_err" not in spec
    with fits.open(write_spectrum(tmp_path / "out.pha", spec)) as h:
        assert h[1].header["POISSERR"] is True and h[1].header["STAT_ERR"] == 0 and h[1].header["SYS_ERR"] == 0
        assert h[1].columns.names == ["CHANNEL", "COUNTS", "QUALITY", "GROUPING"]


def _type2(path):
    k = 3
    counts = RNG.poisson(5.0, (k, N)).astype(np.int32)
    cols = [fits.Column("SPEC_NUM", "I", array=np.arange(1, k + 1)),
            fits.Column("CHANNEL", f"{N}J", array=np.tile(np.arange(1, N + 1), (k, 1))),
            fits.Column("COUNTS", f"{N}J", array=counts),
            fits.Column("EXPOSURE", "D", array=[1000.0, 2000.0, 3000.0]),
            fits.Column("BACKSCAL", "E", array=[1.0, 2.0, 3.0])]
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    hdu.header.update(HDUCLASS="OGIP", HDUCLAS1="SPECTRUM", HDUCLAS2="TOTAL", HDUCLAS3="COUNT",
                      HDUCLAS4="TYPE:II", CHANTYPE="PI", POISSERR=True, TELESCOP="CHANDRA", INSTRUME="ACIS",
                      DETCHANS=N, TLMIN2=1, TLMAX2=N)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return counts


def test_type2_file_gives_a_clear_error_and_reads_a_row(tmp_path):
    path = tmp_path / "t2.pha"
    counts = _type2(path)
    with pytest.raises(ValueError, match=r"t2\.pha: PHA type II file \(3 spectra.*row=k"):
        read_spectrum(path)
    spec = read_spectrum(path, row=2)
    np.testing.assert_array_equal(spec["counts"].values, counts[1])
    assert spec.attrs["exposure"] == 2000.0 and spec.attrs["backscal"] == 2.0
    assert spec.attrs["channel_range"] == (1, N)
    third = read_spectrum(f"{path}{{3}}")
    np.testing.assert_array_equal(third["counts"].values, counts[2])
    with fits.open(write_spectrum(tmp_path / "row3.pha", third)) as h:
        assert h[1].header["HDUCLAS4"] == "TYPE:I" and h[1].header["EXPOSURE"] == 3000.0
    with pytest.raises(ValueError, match="rows 1..3"):
        read_spectrum(path, row=4)


def test_missing_or_zero_exposure_warns_on_read_and_refuses_to_write(tmp_path):
    src = _pha(tmp_path / "noexp.pha", drop=("EXPOSURE",))
    with pytest.warns(UserWarning, match=r"noexp\.pha: no EXPOSURE keyword"):
        spec = read_spectrum(src)
    with pytest.raises(ValueError, match=r"out\.pha: EXPOSURE .* nan"):
        write_spectrum(tmp_path / "out.pha", spec)
    zero = _pha(tmp_path / "zero.pha", EXPOSURE=0.0)
    with pytest.warns(UserWarning, match=r"zero\.pha: EXPOSURE = 0\.0"):
        spec = read_spectrum(zero)
    with pytest.raises(ValueError, match=r"out\.pha: EXPOSURE .* 0\.0"):
        write_spectrum(tmp_path / "out.pha", spec)
    assert not (tmp_path / "out.pha").exists()


def test_rate_spectrum_error_says_rate_not_type(tmp_path):
    cols = [fits.Column("CHANNEL", "J", array=np.arange(N)),
            fits.Column("RATE", "E", unit="count/s", array=COUNTS / 1e4)]
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    hdu.header.update(HDUCLASS="OGIP", HDUCLAS1="SPECTRUM", HDUCLAS3="RATE", EXPOSURE=1e4, POISSERR=False)
    path = tmp_path / "rate.pha"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    with pytest.raises(ValueError, match=r"rate\.pha: a RATE spectrum .*COUNTS spectra only") as err:
        read_spectrum(path)
    assert "type I" not in str(err.value)


def _epiclccorr(path):
    """A SAS epiclccorr NET light curve: corrected RATE, BACKV/BACKE, no COUNTS."""
    n, dt, t0 = 50, 10.0, 5e8
    gross = RNG.poisson(30.0, n)
    net = gross / dt - 0.5
    cols = [fits.Column("TIME", "D", array=t0 + dt * (np.arange(n) + 0.5)),
            fits.Column("RATE", "E", array=net), fits.Column("ERROR", "E", array=np.sqrt(gross) / dt),
            fits.Column("FRACEXP", "E", array=np.ones(n)),
            fits.Column("BACKV", "E", array=np.full(n, 0.5)), fits.Column("BACKE", "E", array=np.full(n, 0.05))]
    rate = fits.BinTableHDU.from_columns(cols, name="RATE")
    rate.header.update(HDUCLASS="OGIP", HDUCLAS1="LIGHTCURVE", HDUCLAS2="NET", HDUCLAS3="RATE", TELESCOP="XMM",
                       INSTRUME="EPN", MJDREFI=51544, MJDREFF=0.00074287037037037, TIMESYS="TT", TIMEUNIT="s",
                       TIMEDEL=dt, TIMEPIXR=0.5, TIMEZERO=0.0, BACKAPP=True, DEADAPP=True, VIGNAPP=True)
    gti = fits.BinTableHDU.from_columns([fits.Column("START", "D", array=[t0]),
                                         fits.Column("STOP", "D", array=[t0 + n * dt])], name="GTI")
    gti.header["HDUCLAS1"] = "GTI"
    fits.HDUList([fits.PrimaryHDU(), rate, gti]).writeto(path)


def test_net_lightcurve_without_counts_is_not_written_with_net_counts_as_gross(tmp_path):
    _epiclccorr(tmp_path / "epi.lc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lc = xcube.read_lightcurve(tmp_path / "epi.lc")
    out = write_lightcurve(tmp_path / "out.lc", lc)
    with fits.open(out) as h:
        assert h[1].header["HDUCLAS2"] == "NET"
        assert "COUNTS" not in h[1].columns.names
        assert "COUNTS: gross counts" not in str(h[1].header["HISTORY"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = xcube.read_lightcurve(out)
    np.testing.assert_allclose(back["rate"].values, lc["rate"].values)
    np.testing.assert_allclose(back["counts"].values, lc["counts"].values)


def test_net_lightcurve_with_gross_counts_keeps_them(tmp_path):
    _epiclccorr(tmp_path / "epi.lc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lc = xcube.read_lightcurve(tmp_path / "epi.lc")
    gross = np.round((lc["rate"] + lc["bkg_rate"]) * lc["exposure"]).astype(np.int64)
    lc = lc.assign(counts=gross, rate=gross / lc["exposure"] - lc["bkg_rate"])
    with fits.open(write_lightcurve(tmp_path / "out.lc", lc)) as h:
        np.testing.assert_array_equal(h[1].data["COUNTS"], gross.values)
        assert "COUNTS: gross counts" in str(h[1].header["HISTORY"])
