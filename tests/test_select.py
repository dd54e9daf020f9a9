"""xcube.select: energy bands, expressions, GTIs, composition, provenance, laziness."""
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from conftest import XMM_WCS, real_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xcube
from xcube import gti as gtimod
from xcube.io.events_fits import events_dataset
from xcube.missions import get_profile

MOS1 = get_profile("xmm-mos1")
ATTRS = {
    "mission": "XMM-Newton",
    "instrument": "EMOS1",
    "profile": "xmm-mos1",
    "obs_id": "0123456789",
    "RADESYS": "FK5",
    "EQUINOX": 2000.0,
    **{
        f"{k}{i}": XMM_WCS[ax][k.lower()]
        for i, ax in ((1, "X"), (2, "Y"))
        for k in ("CTYPE", "CRVAL", "CRPIX", "CDELT")
    },
}


def make_events(n=500, seed=0, chunk=64, gti=None, ccd_gti=None, lazy=True, t0=1000.0, duration=1000.0):
    """Small MOS1-like EventList built with events_dataset (Dask columns of ``chunk`` events)."""
    rng = np.random.default_rng(seed)
    pi = rng.integers(0, 15000, n).astype(np.int16)
    cols = {
        "time": np.sort(rng.uniform(t0, t0 + duration, n)),
        "x": rng.integers(25000, 27000, n).astype(np.int32),
        "y": rng.integers(25000, 27000, n).astype(np.int32),
        "pi": pi,
        "energy": MOS1.energy(pi),
        "pattern": rng.integers(0, 32, n).astype(np.uint8),
        "flag": rng.choice([0, 0, 0, 1, 0x100, 0x2000, 0x10000], n).astype(np.int32),
        "ccdnr": rng.integers(1, 8, n).astype(np.uint8),
    }
    if lazy:
        cols = {k: da.from_array(v, chunks=chunk) for k, v in cols.items()}
    gti = gti if gti is not None else ([t0], [t0 + duration])
    return events_dataset(cols, gti, ccd_gti or {}, dict(ATTRS))


def values(ev, name="time"):
    return np.asarray(ev[name].values)


# ----------------------------------------------------------------------------- energy band


def test_energy_band_is_half_open_on_the_pi_grid():
    # every XMM PI channel, every band edge on the channel grid: energy_band == PI in [a:b)
    pi = np.arange(0, 20480, dtype=np.int16)
    ev = events_dataset({"time": np.arange(pi.size, dtype=float), "pi": pi, "energy": MOS1.energy(pi)},
                        ([0.0], [1e6]), {}, dict(ATTRS))
    for a, b in [(500, 2000), (200, 12000), (700, 701), (150, 15000), (1234, 9876)]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = xcube.select(ev, energy_band=(a / 1000, b / 1000))
        np.testing.assert_array_equal(values(out, "pi"), np.arange(a, b), err_msg=f"band {a}-{b}")
    e = MOS1.energy(pi)
    for k in range(150, 15001):  # float32 rounding of the bound never moves an edge off its channel
        assert np.count_nonzero(e >= np.float32(k / 1000)) == 20480 - k


@given(a=st.integers(150, 14000), w=st.integers(1, 1000))
@settings(max_examples=25, deadline=None)
def test_energy_band_equals_pi_filter(a, w):
    ev = make_events(300, seed=a)
    b = a + w
    np.testing.assert_array_equal(
        values(xcube.select(ev, energy_band=(a / 1000, b / 1000))),
        values(xcube.select(ev, expr=f"PI in [{a}:{b})")),
    )


def test_energy_band_validation():
    ev = make_events(50)
    with pytest.raises(ValueError, match=r"need 0 <= emin < emax"):
        xcube.select(ev, energy_band=(2.0, 0.5))
    with pytest.raises(ValueError, match=r"need 0 <= emin < emax"):
        xcube.select(ev, energy_band=(1.0, 1.0))
    with pytest.raises(TypeError, match=r"pair \(emin, emax\) in keV"):
        xcube.select(ev, energy_band=2.0)
    with pytest.raises(
        ValueError, match=r"outside the XMM-Newton EMOS1 energy range 0.15-15 keV \(profile 'xmm-mos1'\)"
    ):
        xcube.select(ev, energy_band=(20.0, 30.0))
    with pytest.warns(UserWarning, match=r"reaches outside the XMM-Newton EMOS1 calibrated range"):
        xcube.select(ev, energy_band=(0.05, 2.0))
    nocal = ev.assign_attrs(profile="rxte-pca")
    with pytest.raises(ValueError, match=r"no PI-to-energy conversion.*expr='PI in \[lo:hi\]'"):
        xcube.select(nocal, energy_band=(2.0, 10.0))
    # without a profile the band is applied unchecked
    bare = ev.assign_attrs(profile=None)
    assert xcube.select(bare, energy_band=(0.05, 2.0)).sizes["event"] == int(
        ((values(ev, "energy") >= 0.05) & (values(ev, "energy") < 2)).sum()
    )


def test_energy_band_mask_is_lazy_and_matches_select():
    from xcube.select import energy_band_mask

    ev = make_events(300)
    m = energy_band_mask(ev, (0.5, 2.0))
    assert isinstance(m.data, da.Array) and m.dims == ("event",)
    np.testing.assert_array_equal(values(ev)[m.values], values(xcube.select(ev, energy_band=(0.5, 2.0))))


# ----------------------------------------------------------------------------- composition (hypothesis)

ATOMS = st.sampled_from([
    "PATTERN <= 4", "PATTERN <= 12", "FLAG == 0", "(FLAG & 0x2000) == 0", "PI in [500:2000]", "PI in (300:9000]",
    "CCDNR in [1:3]", "ENERGY >= 1.5", "X > 26000", "Y <= 25500", "#XMMEA_EM", "!(PATTERN == 0)",
    "TIME < 1500", "(X,Y) in circle(26000.5,26000.5,600.5)",
])


@st.composite
def expressions(draw, depth=2):
    if depth == 0 or draw(st.booleans()):
        return draw(ATOMS)
    op = draw(st.sampled_from(["&&", "||", "&", "|", "and", "or"]))
    left, right = draw(expressions(depth=depth - 1)), draw(expressions(depth=depth - 1))
    return f"({left}) {op} ({right})" if draw(st.booleans()) else f"!({left} {op} {right})"


def brute(ev, text):
    """The expression evaluated eagerly on numpy columns (no Dask, no select)."""
    from xcube.expression import compile_expression

    cols = {k: np.asarray(v.values) for k, v in ev.data_vars.items() if v.dims == ("event",)}
    return compile_expression(text, {k: v.dtype for k, v in cols.items()}).evaluate(cols)


@given(a=expressions(), b=expressions(), seed=st.integers(0, 10), chunk=st.sampled_from([37, 100, 1000]))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_selections_compose(a, b, seed, chunk):
    ev = make_events(400, seed=seed, chunk=chunk)
    with dask.config.set(scheduler="synchronous"):
        ab = xcube.select(xcube.select(ev, expr=a), expr=b)
        both = xcube.select(ev, expr=f"({a}) && ({b})")
        assert ab["time"].data.numblocks == ev["time"].data.numblocks
        ab_v, both_v = dask.compute(ab, both)
    expected = values(ev)[brute(ev, a) & brute(ev, b)]
    np.testing.assert_array_equal(values(ab_v), expected)
    xr.testing.assert_identical(ab_v.drop_attrs(), both_v.drop_attrs())
    assert ab.attrs["selection"] == [f"expr={a}", f"expr={b}"]


@given(
    b1=st.tuples(st.integers(150, 8000), st.integers(1, 7000)),
    b2=st.tuples(st.integers(150, 8000), st.integers(1, 7000)),
    expr=expressions(depth=1),
    g=st.tuples(st.floats(900, 1900), st.floats(1, 800)),
)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_bands_expr_and_gti_compose(b1, b2, expr, g):
    ev = make_events(300, seed=b1[0])
    band1 = (b1[0] / 1000, (b1[0] + b1[1]) / 1000)
    band2 = (b2[0] / 1000, (b2[0] + b2[1]) / 1000)
    gti = (g[0], g[0] + g[1])
    with warnings.catch_warnings(), dask.config.set(scheduler="synchronous"):
        warnings.simplefilter("ignore")
        step = xcube.select(xcube.select(ev, energy_band=band1, gti=gti), energy_band=band2, expr=expr)
        once = xcube.select(ev, energy_band=band1, expr=expr, gti=gti)
        once = xcube.select(once, energy_band=band2)
    e, t = values(ev, "energy"), values(ev)
    keep = (
        (e >= np.float32(band1[0]))
        & (e < np.float32(band1[1]))
        & (e >= np.float32(band2[0]))
        & (e < np.float32(band2[1]))
    )
    keep &= brute(ev, expr) & (t >= gti[0]) & (t < min(gti[1], 2000.0))
    np.testing.assert_array_equal(values(step), t[keep])
    np.testing.assert_array_equal(values(once), t[keep])
    lo, hi = max(gti[0], 1000.0), min(gti[1], 2000.0)
    from xcube.expression import compile_expression

    cut = compile_expression(expr, {k: v.dtype for k, v in ev.data_vars.items()}).time_intervals(1000.0, 2000.0)
    want = 0.0 if hi <= lo else (hi - lo if cut is None else gtimod.exposure(gtimod.intersection(([lo], [hi]), cut)))
    assert step.attrs["exposure"] == pytest.approx(want) and once.attrs["exposure"] == pytest.approx(want)


# ----------------------------------------------------------------------------- provenance, laziness, shape


def test_provenance_appends_and_leaves_input_untouched():
    ev = make_events(100)
    ev.attrs["selection"] = ["earlier step"]
    out = xcube.select(ev, energy_band=(0.5, 2), expr="PATTERN <= 12 && FLAG == 0",
                       region="physical;circle(26000,26000,900)", gti=(1100.0, 1800.0))
    assert out.attrs["selection"] == [
        "earlier step",
        "energy_band=[0.5, 2) keV",
        "expr=PATTERN <= 12 && FLAG == 0",
        "region=physical;circle(26000,26000,900)",
        "gti=[1100.000000, 1800.000000) s",
    ]
    assert ev.attrs["selection"] == ["earlier step"]
    again = xcube.select(out)
    assert again.attrs["selection"] == out.attrs["selection"] and again.sizes == out.sizes


def _exploding(n, chunk):
    def boom(b):
        raise AssertionError("column read although the selection does not use it")

    return da.zeros(n, chunks=chunk, dtype=np.int16).map_blocks(boom, dtype=np.int16)


def test_select_reads_only_the_columns_it_uses_and_stays_lazy():
    ev = make_events(500, chunk=64)
    ev["rawx"] = ("event", _exploding(500, 64))
    out = xcube.select(ev, energy_band=(0.5, 5.0), expr="PATTERN <= 12 && (FLAG & 1) == 0")
    for name, v in out.data_vars.items():
        if v.dims == ("event",):
            assert isinstance(v.data, da.Array), name
    assert out["rawx"].data.numblocks == ev["time"].data.numblocks
    # known, per-chunk sizes that add up
    keep = (
        (values(ev, "energy") >= 0.5)
        & (values(ev, "energy") < 5.0)
        & (values(ev, "pattern") <= 12)
        & ((values(ev, "flag") & 1) == 0)
    )
    assert out.sizes["event"] == int(keep.sum())
    assert sum(out["time"].data.chunks[0]) == out.sizes["event"]
    np.testing.assert_array_equal(values(out, "x"), values(ev, "x")[keep])
    with pytest.raises(AssertionError, match="column read"):
        out["rawx"].values


def test_result_stays_sorted_with_input_chunk_boundaries():
    ev = make_events(1000, chunk=100)
    out = xcube.select(ev, expr="PI in [1000:3000]")
    t = values(out)
    assert np.all(np.diff(t) >= 0)
    bounds = np.cumsum((0,) + out["time"].data.chunks[0])
    edges = values(ev)[::100]
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):  # chunk i of the result came from chunk i of the input
        if b > a:
            assert t[a] >= edges[i] and (i + 1 == len(edges) or t[b - 1] < edges[i + 1])
    # searchsorted-style slicing on the selected times
    k = np.searchsorted(t, 1500.0)
    assert out.isel(event=slice(k, None))["time"].values.min() >= 1500.0


def test_empty_selection_and_numpy_backed_events():
    ev = make_events(200)
    none = xcube.select(ev, expr="PI < 0")
    assert none.sizes["event"] == 0 and none["time"].values.size == 0
    eager = make_events(200, lazy=False)
    out = xcube.select(eager, expr="PATTERN <= 4", region="circle(26000,26000,800)")
    assert isinstance(out["time"].data, np.ndarray)
    np.testing.assert_array_equal(
        values(out), values(xcube.select(ev, expr="PATTERN <= 4", region="circle(26000,26000,800)"))
    )


def test_unknown_column_and_bad_input_messages():
    ev = make_events(50)
    with pytest.raises(
        ValueError, match=r"unknown column 'GRADE'.*Available columns: ccdnr, energy, flag, pattern, pi, time, x, y"
    ):
        xcube.select(ev, expr="GRADE <= 4")
    with pytest.raises(TypeError, match=r"needs an EventList \(xr.Dataset with dim 'event'\)"):
        xcube.select(ev["time"], expr="PI > 3")


def test_datatree_archive_selects_every_node():
    tree = xr.DataTree.from_dict({"/0001/EMOS1": make_events(100, seed=1), "/0001/EMOS2": make_events(120, seed=2)})
    out = xcube.select(tree, expr="PATTERN <= 4")
    for path, n, seed in (("0001/EMOS1", 100, 1), ("0001/EMOS2", 120, 2)):
        ds = out[path].to_dataset()
        ref = make_events(n, seed=seed)
        assert ds.sizes["event"] == int((values(ref, "pattern") <= 4).sum())
        assert ds.attrs["selection"] == ["expr=PATTERN <= 4"]


def test_datatree_errors_name_the_node_file_or_path():
    from xcube.expression import ExpressionError

    good, bad = make_events(100, seed=1), make_events(120, seed=2).drop_vars("pattern")
    bad.attrs["source"] = "/data/0002/mos2.fits"
    tree = xr.DataTree.from_dict({"/0001/EMOS1": good, "/0002/EMOS2": bad})
    with pytest.raises(ExpressionError, match=r"^/data/0002/mos2\.fits \(node /0002/EMOS2\): filter expression "
                                              r"'PATTERN <= 4': unknown column 'PATTERN'") as exc:
        xcube.select(tree, expr="PATTERN <= 4")
    assert exc.value.column == "PATTERN"
    with pytest.raises(ValueError, match=r"^0123456789 \(node /0001/EMOS1\): energy_band=\[20, 30\) keV"):
        xcube.select(tree, energy_band=(20, 30))
    del bad.attrs["source"], bad.attrs["obs_id"]  # no file: the tree path
    tree = xr.DataTree.from_dict({"/0001/EMOS1": good, "/0002/EMOS2": bad})
    with pytest.raises(ExpressionError, match=r"^node /0002/EMOS2: filter expression"):
        xcube.select(tree, expr="PATTERN <= 4")


def test_folder_of_files_errors_name_the_file(tmp_path, make_event_file):
    (tmp_path / "obs").mkdir()
    make_event_file(n=200, name="obs/a.fits", header={"OBS_ID": "0000000001"})
    make_event_file(n=200, name="obs/b.fits", header={"OBS_ID": "0000000002"},
                    columns={"GRADE": np.zeros(200, np.int16)})
    tree = xcube.open_events(tmp_path / "obs")
    assert isinstance(tree, xr.DataTree)
    with pytest.raises(ValueError, match=r"obs/a\.fits \(node /\S+\): filter expression 'GRADE <= 12'"):
        xcube.select(tree, expr="GRADE <= 12")
    out = xcube.select(tree, expr="PATTERN <= 4")  # without an error, every node is selected as before
    sizes = [n.dataset.sizes["event"] for n in out.subtree if "event" in n.dataset.dims]
    assert len(sizes) == 2 and all(0 < k < 200 for k in sizes)


# ----------------------------------------------------------------------------- GTI


def test_gti_selection_updates_gtis_ccd_gtis_and_exposure():
    gti = (np.array([1000.0, 1400.0]), np.array([1300.0, 2000.0]))
    ccd = {1: (np.array([1000.0]), np.array([1600.0])), 2: gti}
    ev = make_events(600, gti=gti, ccd_gti=ccd)
    assert ev.attrs["exposure"] == pytest.approx(900.0)
    out = xcube.select(ev, gti=(1200.0, 1500.0))
    np.testing.assert_allclose(out["gti_start"].values, [1200.0, 1400.0])
    np.testing.assert_allclose(out["gti_stop"].values, [1300.0, 1500.0])
    assert out.attrs["exposure"] == pytest.approx(200.0)
    np.testing.assert_array_equal(out["ccd_gti_ccd"].values, [1, 2, 2])
    np.testing.assert_allclose(out["ccd_gti_start"].values, [1200.0, 1200.0, 1400.0])
    np.testing.assert_allclose(out["ccd_gti_stop"].values, [1500.0, 1300.0, 1500.0])
    t = values(ev)
    keep = ((t >= 1200) & (t < 1300)) | ((t >= 1400) & (t < 1500))
    np.testing.assert_array_equal(values(out), t[keep])
    # other forms: (n, 2) array, a Dataset's GTIs, arrays
    a = xcube.select(ev, gti=np.array([[1200.0, 1500.0]]))
    b = xcube.select(ev, gti=out)
    c = xcube.select(ev, gti=([1200.0], [1500.0]))
    for o in (a, b, c):
        np.testing.assert_array_equal(values(o), values(out))
        assert o.attrs["exposure"] == pytest.approx(200.0)


def test_gti_errors_and_no_overlap():
    ev = make_events(100)
    with pytest.raises(ValueError, match=r"gti interval 0 is empty or reversed"):
        xcube.select(ev, gti=(1500.0, 1200.0))
    with pytest.raises(ValueError, match="NaN"):
        xcube.select(ev, gti=(np.nan, 1200.0))
    with pytest.raises(TypeError, match=r"gti must be \(start, stop\)"):
        xcube.select(ev, gti=5.0)
    with pytest.warns(UserWarning, match="does not overlap the events' GTIs"):
        out = xcube.select(ev, gti=(5000.0, 6000.0))
    assert out.sizes["event"] == 0 and out.attrs["exposure"] == 0.0 and out.sizes["gti"] == 0


# ----------------------------------------------------------------------------- real XMM data


def test_real_mos1_screening_and_macros_match_astropy():
    path = real_file("xmm", "P0001730201M1S002MIEVLI.FTZ")
    ev = xcube.open_events(path, chunks=20000)
    with fits.open(path) as h:
        d = h["EVENTS"].data
        order = np.argsort(d["TIME"], kind="stable")
        pat, flag, pi = d["PATTERN"][order], d["FLAG"][order].astype(np.int64), d["PI"][order]
        header_em = h["EVENTS"].header["XMMEA_EM"]
    prof = get_profile(ev.attrs["profile"])
    out = xcube.select(ev, expr=prof.screening)
    assert out.sizes["event"] == int(((pat <= 12) & (flag == 0)).sum())
    em = xcube.select(ev, expr="#XMMEA_EM && PI in [200:12000]")
    keep = ((flag & 0x766BA000) == 0) & (pi >= 200) & (pi <= 12000)
    assert header_em == "(FLAG & 0x766ba000) == 0"
    assert em.sizes["event"] == int(keep.sum())
    np.testing.assert_array_equal(values(em, "pi"), pi[keep])
    band = xcube.select(ev, energy_band=(0.5, 2.0), expr="PATTERN <= 12")
    assert band.sizes["event"] == int(((pi >= 500) & (pi < 2000) & (pat <= 12)).sum())


def test_macro_read_from_source_header(tmp_path, make_event_file):
    # a keyword only in the file header (not built in) is found through attrs["source"]
    path = make_event_file(n=300, header={"MYSET": "(FLAG & 0x1) == 0 && PATTERN <= 4"},
                           columns={"FLAG": np.resize(np.array([0, 1], np.int32), 300)})
    ev = xcube.open_events(path)
    out = xcube.select(ev, expr="#MYSET")
    with fits.open(path) as h:
        d = h["EVENTS"].data
        expected = int((((d["FLAG"] & 1) == 0) & (d["PATTERN"] <= 4)).sum())
    assert out.sizes["event"] == expected


def test_gti_selection_on_real_file_matches_gti_algebra():
    ev = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"))
    g0 = gtimod.from_dataset(ev)
    cut = (g0[0][0] + 2000.0, g0[0][0] + 6000.0)
    out = xcube.select(ev, gti=cut)
    expect = gtimod.intersection(g0, ([cut[0]], [cut[1]]))
    assert out.attrs["exposure"] == pytest.approx(gtimod.exposure(expect))
    t = values(ev)
    assert out.sizes["event"] == int(gtimod.in_gti(t, expect).sum())
    with dask.config.set(scheduler="sync"):
        assert values(out).min() >= cut[0] and values(out).max() < cut[1]


def test_applied_band_of_several_bands_compiles_the_expression_once(monkeypatch, caplog):
    """A multi-band request (a list of bands) gives the band of each, as one call per band does, with the
    filter expression compiled once per EventList (it was compiled again for every band)."""
    import importlib

    sel = importlib.import_module("xcube.select")  # (the module; xcube.select is the function)
    ev = xcube.select(make_events(), energy_band=(0.3, 10.0))
    expr = "PATTERN <= 12 && PI in [500:8000]"
    bands = [(0.2, 2.0), (2.0, 12.0), (0.5, 8.0)]
    singly = [sel.applied_band(ev, b, expr=expr, warn=False) for b in bands]
    compiled = []
    real = sel.compile_expression
    monkeypatch.setattr(sel, "compile_expression", lambda *a, **k: compiled.append(a[0]) or real(*a, **k))
    with caplog.at_level("WARNING", logger="xcube.select"):
        together = sel.applied_band(ev, bands, expr=expr)
    assert together == singly == [(0.5, 2.0), (2.0, 8.001), (0.5, 8.0)]
    assert compiled == [expr]
    assert len([r for r in caplog.records if "narrowed" in r.getMessage()]) == 2  # one per narrowed band
    assert sel.applied_band([ev, ev], np.array(bands[:1]), expr=expr, warn=False) == singly[:1]
    with pytest.raises(ValueError, match="does not overlap"):
        sel.applied_band(ev, [(0.5, 2.0), (9.0, 12.0)], expr=expr)


def test_lazy_selection_evaluates_its_filter_once_per_chunk(make_event_file, monkeypatch):
    """select on lazy events evaluated its filter twice per chunk: once to count the kept events, again when
    the result was read. The mask is now kept packed (1 bit per event) from the first evaluation."""
    from xcube.regions import RegionSet

    ev = xcube.open_events(make_event_file(n=50_000, seed=3), chunks=10_000)
    calls = []
    real = RegionSet.contains
    monkeypatch.setattr(RegionSet, "contains", lambda self, x, y: calls.append(len(x)) or real(self, x, y))
    out = xcube.select(ev, region="physical;circle(25000,25000,8000)", expr="PI > 1000")
    x = out["x"].values
    calls = [c for c in calls if c]  # (dask may call it on an empty block for its meta)
    assert len(calls) == 5 and sum(calls) == 50_000  # five chunks, each tested once
    full = xcube.select(xcube.open_events(make_event_file(n=50_000, seed=3)).compute(),
                        region="physical;circle(25000,25000,8000)", expr="PI > 1000")
    np.testing.assert_array_equal(x, full["x"].values)
    np.testing.assert_array_equal(out["time"].values, full["time"].values)
