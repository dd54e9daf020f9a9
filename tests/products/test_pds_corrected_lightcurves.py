"""xcube.power_spectrum of light curves whose counts are not Poisson photon
counts: SAS ``epiclccorr`` NET and exposure-corrected TOTAL files (no COUNTS
column; read_lightcurve rebuilds the counts as RATE x exposure). Their
white-noise level comes from the rate errors (Stingray's ``err_dist="gauss"``),
so a constant source has no power left after ``subtract_noise``."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import xcube

T0 = 100532388.0
N, DT = 8192, 1.0


def _write(path, rate, err, *, hduclas2, backapp, extra=()):
    """An epiclccorr-style light curve (RATE, ERROR, FRACEXP, no COUNTS; DEADAPP = VIGNAPP = T)."""
    lo = T0 + np.arange(rate.size) * DT
    cols = [fits.Column("TIME", "D", "s", array=lo + 0.5 * DT), fits.Column("RATE", "E", "count/s", array=rate),
            fits.Column("ERROR", "E", "count/s", array=err), fits.Column("FRACEXP", "E", array=np.ones(rate.size)),
            *extra]
    h = fits.BinTableHDU.from_columns(cols, name="RATE")
    h.header.update(dict(HDUCLASS="OGIP", HDUCLAS1="LIGHTCURVE", HDUCLAS2=hduclas2, HDUCLAS3="RATE", TIMEDEL=DT,
                         TIMEUNIT="s", TIMESYS="TT", MJDREF=50814.0, TELESCOP="XMM", INSTRUME="EPN",
                         DEADAPP=True, VIGNAPP=True, BACKAPP=backapp))
    g = fits.BinTableHDU.from_columns([fits.Column("START", "D", "s", array=[lo[0]]),
                                       fits.Column("STOP", "D", "s", array=[lo[-1] + DT])], name="SRC_GTIS")
    fits.HDUList([fits.PrimaryHDU(), h, g]).writeto(path)
    return path


@pytest.fixture(scope="module")
def net_file(tmp_path_factory):
    """A constant source: gross Poisson(20 src + 30 bkg) per 1 s bin, background from a region 10x larger."""
    rng = np.random.default_rng(8)
    gross = rng.poisson(50.0, N).astype(float)
    bkg_region = rng.poisson(300.0, N).astype(float)
    bv, be = bkg_region / 10.0, np.sqrt(bkg_region) / 10.0
    extra = [fits.Column("BACKV", "E", "count/s", array=bv), fits.Column("BACKE", "E", "count/s", array=be)]
    return _write(tmp_path_factory.mktemp("net") / "epic_net.lc", gross / DT - bv, np.sqrt(gross / DT ** 2 + be ** 2),
                  hduclas2="NET", backapp=True, extra=extra)


@pytest.fixture(scope="module")
def corr_file(tmp_path_factory):
    """A constant source, TOTAL, with an absolute correction factor of 1.5 (PSF, vignetting)."""
    cts = np.random.default_rng(9).poisson(20.0, N).astype(float)
    return _write(tmp_path_factory.mktemp("corr") / "epic_corr.lc", 1.5 * cts / DT, 1.5 * np.sqrt(cts) / DT,
                  hduclas2="TOTAL", backapp=False)


def _pds(data, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        p = xcube.power_spectrum(data, segment=256.0, **kw)
    return p, [str(x.message) for x in w]


def _expected_level(path, norm, factor=1):
    """2 <sigma_c^2> / mean(c) (Leahy, Poisson normalisation) or 2 <sigma_rate^2> dt / <rate>^2 (frac), from the
    file's columns, on bins of ``factor`` rows."""
    with fits.open(path) as h:
        rate, err = (np.asarray(h["RATE"].data[c], np.float64) for c in ("RATE", "ERROR"))
    c = (rate * DT).reshape(-1, factor).sum(axis=1)
    var = ((err * DT) ** 2).reshape(-1, factor).sum(axis=1)
    dt = DT * factor
    return {"frac": 2 * var.mean() * dt / c.mean() ** 2, "abs": 2 * var.mean() / dt}[norm]


@pytest.mark.parametrize("name", ["net_file", "corr_file"])
def test_subtracted_frac_power_of_a_constant_source_is_zero(name, request):
    path = request.getfixturevalue(name)
    p, msgs = _pds(str(path), norm="frac", subtract_noise=True)
    level = p.attrs["poisson_level"]
    assert level == pytest.approx(_expected_level(path, "frac"), rel=1e-5)
    n = p.sizes["freq"] * p.attrs["n_segments"]
    assert abs(float(p["power"].mean())) < 4 * level / np.sqrt(n)  # was 0.165 (29 % fake rms) for the NET file
    assert p.attrs["err_dist"] == "gauss" and p.attrs["noise_subtracted"]
    assert any(str(path) in m and "rate errors" in m for m in msgs), msgs


@pytest.mark.parametrize("name", ["net_file", "corr_file"])
def test_leahy_power_of_a_constant_source_sits_on_its_level(name, request):
    path = request.getfixturevalue(name)
    p, _ = _pds(str(path), norm="leahy")
    n = p.sizes["freq"] * p.attrs["n_segments"]
    level = p.attrs["poisson_level"]
    assert level == pytest.approx(2.0, abs=0.05)  # normalised by the variance: 5.32 with a "Poisson level 2" before
    assert abs(float(p["power"].mean()) - level) < 4 * level / np.sqrt(n)


@pytest.mark.parametrize("norm", ["leahy", "frac", "abs", "none"])
def test_equals_stingray_gauss(net_file, norm):
    from stingray import AveragedPowerspectrum, Lightcurve

    lc = xcube.read_lightcurve(net_file)
    sigma = lc["rate_err"].values * lc["exposure"].values
    gti = np.c_[lc["gti_start"].values, lc["gti_stop"].values]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Stingray: "only uses poisson err_dist at the moment" (it does use it here)
        slc = Lightcurve(lc["time"].values, lc["counts"].values, err=sigma, dt=DT, gti=gti, err_dist="gauss",
                         skip_checks=True)
        s = AveragedPowerspectrum.from_lightcurve(slc, 256.0, norm=norm)
    p, _ = _pds(lc, norm=norm)
    np.testing.assert_allclose(p["power"].values, s.power, rtol=1e-10, atol=0)
    np.testing.assert_allclose(p["power_err"].values, s.power_err, rtol=1e-10, atol=0)
    # the level: the unnormalised noise power n_bin <sigma^2> in the spectrum's normalisation
    var = np.mean(sigma ** 2)
    if norm == "leahy":
        assert p.attrs["poisson_level"] == pytest.approx(2 * var / s.variance, rel=1e-9)
    elif norm == "none":
        assert p.attrs["poisson_level"] == pytest.approx(256 * var, rel=1e-9)
    else:
        assert p.attrs["poisson_level"] == pytest.approx(_expected_level(net_file, norm), rel=1e-5)


def test_whole_multiple_dt_keeps_the_file_errors(corr_file):
    """dt = 2 bins: the rebinned TOTAL light curve recomputes Poisson errors of its rebuilt counts; the noise level
    must still come from the file's errors (summed in quadrature)."""
    p, _ = _pds(str(corr_file), norm="frac", dt=2 * DT, subtract_noise=True)
    level = p.attrs["poisson_level"]
    assert level == pytest.approx(_expected_level(corr_file, "frac", factor=2), rel=1e-5)
    n = p.sizes["freq"] * p.attrs["n_segments"]
    assert abs(float(p["power"].mean())) < 4 * level / np.sqrt(n)


def _lc(counts, rate=None, rate_err=True, **attrs):
    n = len(counts)
    lo = np.arange(n, dtype=float)
    counts = np.asarray(counts)
    rate = counts / 1.0 if rate is None else np.asarray(rate, float)
    vars_ = {"counts": ("time", counts), "rate": ("time", rate), "gti_start": ("gti", [0.0]),
             "gti_stop": ("gti", [float(n)])}
    if rate_err:
        vars_["rate_err"] = ("time", np.sqrt(np.abs(counts)) + 1.0)
    return xr.Dataset(vars_, coords={"time": lo + 0.5, "time_lo": ("time", lo), "time_hi": ("time", lo + 1),
                                     "exposure": ("time", np.ones(n)), "fracexp": ("time", np.ones(n))},
                      attrs={"source": "made.lc", **attrs})


def test_poisson_counts_keep_the_poisson_level():
    rng = np.random.default_rng(3)
    c = rng.poisson(30, 1024)
    p, msgs = _pds(_lc(c), norm="leahy")
    assert p.attrs["poisson_level"] == 2.0 and p.attrs["err_dist"] == "poisson" and not msgs
    # an xcube NET file read back: counts are the region's gross photon counts (not RATE x exposure)
    p, _ = _pds(_lc(c, rate=c - 5.0, rate_kind="net"), norm="leahy")
    assert p.attrs["poisson_level"] == 2.0 and p.attrs["err_dist"] == "poisson"
    # whole-number net counts rebuilt from a NET RATE (counts = RATE x exposure) are not photon counts
    p, _ = _pds(_lc(c, rate_kind="net"), norm="leahy")
    assert p.attrs["err_dist"] == "gauss"
    # negative counts (a net light curve, mean rate > 0) are not photon counts either
    assert (c - 20).min() < 0
    p, _ = _pds(_lc(c - 20), norm="abs")
    assert p.attrs["err_dist"] == "gauss"


def test_no_errors_refuses_noise_subtraction():
    c = np.random.default_rng(4).poisson(30, 1024) * 1.5
    with pytest.raises(ValueError, match=r"made\.lc.*rate_err"):
        xcube.power_spectrum(_lc(c, rate_err=False), segment=256.0, norm="frac", subtract_noise=True)
    p, msgs = _pds(_lc(c, rate_err=False), norm="frac")
    assert np.isnan(p.attrs["poisson_level"]) and any("made.lc" in m and "rate_err" in m for m in msgs)


def test_a_whole_correction_factor_is_not_taken_for_photons(tmp_path):
    """A correction by a whole factor (2) leaves RATE x exposure whole: the counts passed for photon counts
    (Leahy level 2, subtraction 1 - 1/2 of the noise short). read_lightcurve marks them (counts_from_rate)."""
    cts = np.random.default_rng(10).poisson(20.0, N).astype(float)
    path = _write(tmp_path / "epic_corr2.lc", 2.0 * cts / DT, 2.0 * np.sqrt(cts) / DT, hduclas2="TOTAL",
                  backapp=False)
    lc = xcube.read_lightcurve(path)
    assert lc.attrs["counts_from_rate"] and np.all(lc["counts"].values == np.round(lc["counts"].values))
    p, msgs = _pds(lc, norm="frac")
    assert p.attrs["err_dist"] == "gauss" and any("counts_from_rate" in m for m in msgs)
    assert p.attrs["poisson_level"] == pytest.approx(_expected_level(path, "frac"), rel=1e-6)


def test_the_written_file_and_the_command_line_say_where_the_level_comes_from(net_file, tmp_path, capsys):
    from xcube.cli import main
    from xcube.io.powspec import read_power_spectrum

    out = tmp_path / "net_pds.fits"
    assert main(["pds", str(net_file), "--segment", "256", "--norm", "frac", "--no-index", "--out", str(out)]) == 0
    assert "noise level (from the rate errors)" in capsys.readouterr().out
    h = fits.getheader(out, "POWSPEC")
    assert h["ERRDIST"] == "gauss" and read_power_spectrum(out).attrs["err_dist"] == "gauss"
