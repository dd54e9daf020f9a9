"""Detector hygiene: hot pixels and columns, flickering pixels, instrumental
clusters, the border and bad columns; on generated observations with
injected instrumental events and on the real MOS files."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import real_file

import xcube
from xcube import simulate
from xcube.hygiene import STAT_KEYS, Hygiene, hygiene_test
from xcube.select import EventFilter, select

T_OFF = 2_000.0


def _stats(ev, hygiene=True, expr=None):
    """(kept mask, statistics) of the screening (or ``expr``) and ``hygiene``."""
    filt = EventFilter.for_events(ev, expr=expr, screening=expr is None, hygiene=hygiene)
    cols = {c: np.asarray(ev[c].values) for c in filt.columns}
    stats = {}
    return filt.mask(cols, ev.sizes["event"], stats), stats


def _pixel(ev, ccd, rawx, rawy):
    return (ev.ccdnr.values == ccd) & (ev.rawx.values == rawx) & (ev.rawy.values == rawy)


@pytest.fixture(scope="module")
def bright():
    """A 10 ks pn observation with a bright constant source (2 ct/s, 20,000
    counts; off the pointing, which the simulated pn puts on a CCD corner)."""
    return simulate.event_list("xmm-pn", duration=10_000.0, sources=[simulate.Source(rate=2.0, ra=150.05, dec=2.25)],
                               soft_protons=0, seed=5)


def test_hot_pixel_found_and_removed_bright_source_kept(bright):
    ev, truth = bright
    ev2, n = simulate.inject_instrumental(ev, "hot_pixel", ccd=4, rawx=30, rawy=100, rate=0.02, seed=1)
    assert n > 100
    keep, st = _stats(ev2)
    hot = _pixel(ev2, 4, 30, 100)
    without = _stats(ev2, Hygiene(hot_pixels=False, hot_columns=False))[0]  # (alone, the pixel makes its column hot)
    assert st["hot_pixels"] == 1 and st["hot_pixel_events"] == int((hot & without).sum())
    assert not keep[hot].any()
    # the bright source: every screened event near it is kept (it spreads over its neighbours: not hot)
    src = truth[truth["kind"] == "source"].iloc[0]
    near = (np.hypot(ev2.x.values - src.x, ev2.y.values - src.y) < 400) & ~hot
    base, _ = _stats(ev2, Hygiene(hot_pixels=False, hot_columns=False, flickering=False, clusters=False))
    assert near[base].sum() > 10_000 and np.array_equal(keep[near], base[near])
    # without the injection nothing is hot
    _, st0 = _stats(ev)
    assert st0["hot_pixels"] == st0["hot_columns"] == st0["flickering_bursts"] == st0["instrumental_clusters"] == 0


def test_a_pixel_hot_in_several_blocks_counts_once(bright):
    """Sweep p28: the summary's hot_pixels summed each block's count, so one hot pixel in a list of three
    2**20-event blocks was reported as 3. The blocks' pixel ids are joined: it counts once."""
    from xcube.hygiene import merge_stats, stat_counts

    ev, _ = bright
    ev2, _ = simulate.inject_instrumental(ev, "hot_pixel", ccd=4, rawx=30, rawy=100, rate=0.05, seed=1)
    filt = EventFilter.for_events(ev2, screening=True, hygiene=True)
    cols = {c: np.asarray(ev2[c].values) for c in filt.columns}
    t = cols["time"]
    stats, per_block = {}, []
    for a, b in ((0, 3500), (3500, 7000), (7000, 1e9)):  # three blocks, as the events pass makes them
        part = (t >= t[0] + a) & (t < t[0] + b)
        one = {}
        filt.mask({c: v[part] for c, v in cols.items()}, int(part.sum()), one)
        per_block.append(one["hot_pixels"])
        stats = merge_stats(stats, one)
    assert per_block == [1, 1, 1]
    counts = stat_counts(stats)
    assert counts["hot_pixels"] == 1 and counts["hot_pixel_events"] == stats["hot_pixel_events"] > 0
    assert stats["hot_pixels"] == 3  # (the per-block numbers, summed)


def test_hot_column(bright):
    ev, _ = bright
    # a column lit all along: every pixel a little (not hot), the column very much
    ev, n = simulate.inject_instrumental(ev, "hot_column", ccd=7, rawx=20, rate=0.07, seed=7)
    assert n > 500
    keep, st = _stats(ev)
    col = (ev.ccdnr.values == 7) & (ev.rawx.values == 20)
    assert st["hot_columns"] == 1 and st["hot_pixels"] == 0
    assert not keep[col].any() and st["hot_column_events"] == int(col[_stats(ev, Hygiene(hot_columns=False))[0]].sum())


def test_flickering_pixel_not_a_detection(bright):
    ev, _ = bright
    t0 = float(ev.gti_start.values[0]) + T_OFF
    ev2, n = simulate.inject_instrumental(ev, "flicker", ccd=5, rawx=20, rawy=150, n_events=12, duration=3.0,
                                          t_start=t0, seed=2)
    fl = _pixel(ev2, 5, 20, 150) & (ev2.time.values >= t0) & (ev2.time.values <= t0 + 3.0)
    keep, st = _stats(ev2, Hygiene(hot_pixels=False))  # (over the whole block the pixel is also hot)
    assert st["flickering_bursts"] == 1 and st["flickering_events"] == n and not keep[fl].any()
    assert not _stats(ev2)[0][fl].any()
    # by default it does not become a detection; without hygiene it does
    x, y = float(ev2.x.values[fl][0]), float(ev2.y.values[fl][0])

    def near(res):
        d = res.detections
        return d[(np.hypot(d["x"] - x, d["y"] - y) < 600) & (d["kind"] == "peak")]

    assert len(near(xcube.search_transients(ev2, time_bin=50.0, hygiene=False))) == 1
    res = xcube.search_transients(ev2, time_bin=50.0)
    assert len(near(res)) == 0 and res.summary["hygiene"]["hot_pixel_events"] >= n


def test_astrophysical_flare_is_not_flickering(bright):
    """A bright flare lights its neighbours through the PSF: kept."""
    ev, _ = bright
    t0 = float(ev.gti_start.values[0]) + T_OFF
    ev2, truth = simulate.inject_flare(ev, t_peak=t0, amplitude=15.0, width=3.0, ra=150.1, dec=2.15, seed=3)
    keep, st = _stats(ev2)
    assert st["flickering_bursts"] == 0 and st["hot_pixels"] == 0
    flare = (np.abs(ev2.time.values - t0) < 10) & (np.hypot(ev2.x.values - truth.x[0], ev2.y.values - truth.y[0])
                                                   < 200)
    base, _ = _stats(ev2, Hygiene(hot_pixels=False, hot_columns=False, flickering=False, clusters=False))
    assert flare[base].sum() > 50 and np.array_equal(keep[flare], base[flare])


def test_instrumental_cluster_injected(bright):
    ev, _ = bright
    t0 = float(ev.gti_start.values[0]) + T_OFF
    ev2, n = simulate.inject_instrumental(ev, "cluster", ccd=2, rawx=40, rawy=80, n_events=3, t_start=t0, seed=4)
    assert _stats(ev2)[1]["instrumental_clusters"] == 0  # the rule is off for pn by default (73 ms frames)
    keep, st = _stats(ev2, Hygiene(clusters=True))
    cl = (ev2.ccdnr.values == 2) & (np.abs(ev2.time.values - t0) < 0.08) & (np.abs(ev2.rawx.values - 41) <= 1) & \
        (ev2.rawy.values == 80)
    assert n == 3 and cl.sum() == 3 and st["instrumental_clusters"] == 1 and st["instrumental_events"] == 3
    assert not keep[cl].any()
    assert _stats(ev2, Hygiene(clusters=False))[1]["instrumental_events"] == 0
    assert _stats(ev, Hygiene(clusters=True))[1]["instrumental_clusters"] == 0  # the bright source is not one


def test_real_mos_cluster_of_three_events_in_1_4_s():
    """The EXOD-filtered MOS1 file of 0001730201 holds three events on CCD 5
    at RAWX 544, 545, 546 within 1.4 s (two of them with FLAG set): one
    instrumental event with EXOD's screening (no FLAG cut); the bright star's
    photons, which also fall together, are kept."""
    ev = xcube.open_events(real_file("xmm/exod_0001730201_M1_clean.fits"))
    keep, st = _stats(ev, expr="PATTERN <= 12")
    assert st["instrumental_clusters"] == 1 and st["instrumental_events"] == 3
    base, _ = _stats(ev, Hygiene(clusters=False), expr="PATTERN <= 12")
    gone = np.flatnonzero(base & ~keep)
    assert sorted(ev.rawx.values[gone].tolist()) == [544, 545, 546] and set(ev.ccdnr.values[gone]) == {5}
    t = ev.time.values[gone]
    assert t.max() - t.min() < 1.4
    # with xcube's default screening (FLAG == 0) only one of the three is left: nothing to remove
    assert _stats(ev)[1]["instrumental_clusters"] == 0


def test_real_mos_hot_pixels_are_isolated_low_energy_pixels():
    ev = xcube.open_events(real_file("xmm/P0001730201M1S002MIEVLI.FTZ")).sortby("time")
    keep, st = _stats(ev)
    base, _ = _stats(ev, False)
    gone = base & ~keep
    assert st["hot_pixels"] >= 5 and gone.sum() == st["hot_pixel_events"] + st["instrumental_events"]
    assert np.all(ev.energy.values[gone] < 0.25)  # MOS bright pixels: soft noise events
    star = (ev.ccdnr.values == 1) & (np.abs(ev.rawx.values - 317) < 20) & (np.abs(ev.rawy.values - 296) < 20)
    assert star[base].sum() > 500 and not (star & gone).any()


def test_border_and_bad_columns(bright):
    ev, _ = bright
    keep, st = _stats(ev)
    base, _ = _stats(ev, False)
    rx, ry = ev.rawx.values, ev.rawy.values
    edge = (rx <= 3) | (rx >= 62) | (ry <= 15) | (ry >= 198)
    badcol = ((ev.ccdnr.values == 4) & (rx == 12)) | ((ev.ccdnr.values == 5) & (rx == 11)) | \
        ((ev.ccdnr.values == 10) & (rx == 28))
    assert not keep[edge | badcol].any() and st["border_events"] == int((base & (edge | badcol)).sum())
    keep1, _ = _stats(ev, Hygiene(border_margin=1))
    assert keep1[(rx == 3) & base & ~badcol & (ry > 15) & (ry < 198)].all()
    assert st["border_events"] > _stats(ev, Hygiene(border_margin=0))[1]["border_events"] > 0  # bad columns


def test_select_applies_the_same_hygiene_and_unsorted_input(bright):
    ev, _ = bright
    ev2, _ = simulate.inject_instrumental(ev, "hot_pixel", ccd=4, rawx=30, rawy=100, rate=0.02, seed=1)
    keep, _ = _stats(ev2)
    out = select(ev2, expr="PATTERN <= 4 && FLAG == 0", hygiene=True)
    assert out.sizes["event"] == keep.sum() and any(s.startswith("hygiene=") for s in out.attrs["selection"])
    np.testing.assert_array_equal(out.time.values, ev2.time.values[keep])
    rng = np.random.default_rng(0)
    perm = rng.permutation(ev2.sizes["event"])
    shuffled = ev2.isel(event=perm).compute()
    keep_s, st = _stats(shuffled)
    np.testing.assert_array_equal(keep_s, keep[perm])


def test_no_raw_columns_skips_hygiene(make_event_file):
    ev = xcube.open_events(make_event_file(n=300))
    assert hygiene_test(ev, True) is None
    res = xcube.search_transients(ev, time_bin=500.0)
    assert set(res.summary["hygiene"]) == set(STAT_KEYS) and not any(res.summary["hygiene"].values())
    with pytest.raises(ValueError, match="unknown option"):
        Hygiene.of({"hot_pixel": False})


def _hot_reference(counts, live, shape, ratio, p_max):
    """The hot-pixel rule cell by cell, in numpy (no pruning)."""
    from scipy import special

    n_ccd, nx, ny = shape
    v = counts.reshape(shape).astype(float)
    lv = live.reshape(shape)
    out = np.zeros(shape, bool)
    for c in range(n_ccd):
        mean = v[c][lv[c]].sum() / max(lv[c].sum(), 1)
        for x in range(nx):
            for y in range(ny):
                if not lv[c, x, y] or v[c, x, y] < 2 or v[c, x, y] <= mean:
                    continue
                nb = [v[c, x + dx, y + dy] for dx in (-1, 0, 1) for dy in (-1, 0, 1)
                      if (dx or dy) and 0 <= x + dx < nx and 0 <= y + dy < ny and lv[c, x + dx, y + dy]]
                lam = max(mean, ratio * sum(nb) / max(len(nb), 1))
                out[c, x, y] = v[c, x, y] > lam and special.pdtrc(v[c, x, y] - 1.0, max(lam, 1e-12)) < p_max
    return out.ravel()


@pytest.mark.parametrize("level", [0.05, 3.0, 40.0, 900.0])
def test_hot_pixel_and_column_rules_equal_cell_by_cell_reference(level):
    """The numba rules (which skip cells below a Poisson floor of their CCD
    mean, and visit either every pixel or only the listed pixels with
    counts) find exactly the cells of the rules applied to every cell."""
    from xcube.hygiene import rules

    rng = np.random.default_rng(int(level * 10))
    shape = (3, 24, 30)
    counts = rng.poisson(level * rng.uniform(0.3, 1.5, 3)[:, None, None], shape).astype(np.int32)
    counts[1, 7] += rng.poisson(8 * level + 8, 30).astype(np.int32)  # a bright column
    counts = counts.ravel()
    hot = rng.integers(0, counts.size, 6)
    counts[hot] += rng.integers(int(10 * level) + 20, int(30 * level) + 60, 6).astype(np.int32)
    live = rules.LivePixels(shape, (2, 23, 1, 30), rng.random(3 * 24) < 0.05)
    counts[~live.pixels] = 0  # (the scan counts live pixels only)
    found = {"pixels": 0, "columns": 0}
    for cells in (rng.permutation(np.flatnonzero(counts)), None):  # a sparse block's pixel list, or all pixels
        for false_alarm in (1e-3, 0.5):
            p_max = false_alarm / live.pixels.sum()
            got = np.zeros(counts.size, bool)
            got[rules.hot_pixels(counts, live, cells, 5.0, false_alarm)] = True
            assert np.array_equal(got, _hot_reference(counts, live.pixels, shape, 5.0, p_max))
            # columns: sums of the pixels that are not hot, live while a live pixel is not hot
            col = np.where(got, 0, counts).reshape(3 * 24, 30).sum(axis=1)
            live_col = (live.pixels & ~got).reshape(3 * 24, 30).any(axis=1)
            got_col = np.zeros(3 * 24, bool)
            got_col[rules.hot_columns(counts, live, cells, np.flatnonzero(got), 5.0, false_alarm)] = True
            assert np.array_equal(got_col, _hot_reference(col, live_col, (3, 24, 1), 5.0,
                                                          false_alarm / live_col.sum()))
            found["pixels"] += int(got.sum())
            found["columns"] += int(got_col.sum())
    assert found["pixels"] and found["columns"]


def test_damaged_ccd_numbers_are_border_events_and_bounded(bright):
    """Events with an impossible CCD number (a damaged CCDNR: 30000, -3) are
    dropped as off the detector, and the per-pixel arrays stay of the
    camera's size (a CCD number of 30000 would otherwise ask for 30000 CCDs
    of pixels); the other events are judged as before."""
    from xcube.hygiene import MAX_CCDS

    ev, _ = bright
    base, st0 = _stats(ev)
    bad = ev.copy()
    ccd = bad.ccdnr.values.astype(np.int16)
    hit = np.zeros(ccd.size, bool)
    hit[[10, 500, 7000]] = True
    ccd[[10, 500]], ccd[7000] = 30000, -3
    bad["ccdnr"] = ("event", ccd)
    keep, st = _stats(bad)
    assert not keep[hit].any()
    assert np.array_equal(keep[~hit], base[~hit])
    assert st["border_events"] == st0["border_events"] + int((base & hit).sum())
    assert MAX_CCDS < 30000
    none, st_none = _stats(bad.assign(ccdnr=("event", np.full(ccd.size, -1, np.int16))))  # no CCD at all
    assert not none.any() and st_none["border_events"] == int(_stats(bad, hygiene=False)[0].sum())


def test_event_blocks_are_fixed_from_the_first_event():
    from xcube.io.chunking import EVENT_CHUNK, event_blocks

    assert event_blocks(0) == (0,) and event_blocks(5) == (5,) and event_blocks(EVENT_CHUNK) == (EVENT_CHUNK,)
    assert event_blocks(2 * EVENT_CHUNK + 3) == (EVENT_CHUNK, EVENT_CHUNK, 3)


def test_hygiene_does_not_depend_on_the_chunks(bright):
    """The hot pixel is judged on the same block of events whatever the
    event list's chunks: select and the search give the same result."""
    ev, _ = bright
    ev2, _ = simulate.inject_instrumental(ev, "hot_pixel", ccd=4, rawx=30, rawy=100, rate=0.02, seed=1)
    ev2 = ev2.load()
    small = ev2.chunk({"event": 3_000})  # a hot pixel of 0.02 ct/s is not improbable in 3000 events
    one = select(ev2, expr="PATTERN <= 4 && FLAG == 0", hygiene=True)
    many = select(small, expr="PATTERN <= 4 && FLAG == 0", hygiene=True)
    np.testing.assert_array_equal(many.time.values, one.time.values)
    a = xcube.search_transients(ev2, time_bin=500.0).summary["hygiene"]
    b = xcube.search_transients(small, time_bin=500.0).summary["hygiene"]
    assert a == b and a["hot_pixels"] == 1


@pytest.mark.parametrize("name", ["P0001730201M1S002MIEVLI.FTZ", "P0001730201M2S003MIEVLI.FTZ"])
def test_real_mos_hygiene_does_not_depend_on_the_chunks(name):
    path = real_file("xmm", name)
    st = [xcube.search_transients(xcube.open_events(path, chunks=c), time_bin=50.0).summary["hygiene"]
          for c in (None, 20_000)]
    assert st[0] == st[1] and st[0]["hot_pixels"] > 0


def test_hot_rules_count_the_pixels_of_the_ccds_with_events_only():
    """XMM numbers CCDs from 1: the per-pixel arrays have a CCD 0 without
    events, whose pixels are no trials (nor are those of a CCD that is off).
    The threshold is false_alarm / pixels of the CCDs with events: a pixel
    (column) whose probability lies between false_alarm / (3 CCDs' pixels)
    and false_alarm / (2 CCDs' pixels) is hot."""
    from scipy import special

    from xcube.hygiene import rules

    shape = (3, 20, 20)
    live = rules.LivePixels(shape, (1, 20, 1, 20), np.zeros(3 * 20, bool))
    counts = np.zeros(shape, np.int32)
    counts[1:] = 1  # CCDs 1 and 2: one count per pixel; CCD 0: none
    counts[1, 10, 10] = 15  # lambda = 5 x its neighbours' mean = 5
    p = special.pdtrc(14.0, 5.0)
    for fa, found in ((p * 1000, [(1 * 20 + 10) * 20 + 10]), (p * 700, [])):  # 800 trials: p < fa / 800 iff fa > 800 p
        assert rules.hot_pixels(counts.ravel(), live, None, 5.0, fa).tolist() == found
        assert rules.hot_pixels(counts.ravel(), live, np.flatnonzero(counts), 5.0, fa).tolist() == found
    col = np.zeros(shape, np.int32)
    col[1:] = 1
    col[1, 5, :10], col[1, 5, 10:] = 8, 7  # a column of 150 counts; lambda = 5 x 20 (its neighbours)
    pc = special.pdtrc(149.0, 100.0)
    for fa, found in ((pc * 50, [25]), (pc * 35, [])):  # 40 columns of CCDs 1 and 2
        assert rules.hot_columns(col.ravel(), live, None, np.zeros(0, np.int64), 5.0, fa).tolist() == found


def test_real_mos2_hot_pixels_with_the_pixels_of_its_seven_ccds():
    """The real MOS2 file (CCDs 1-7, FLAG == 0): 27 hot pixels, 184 events
    (an independent numpy count of the rule with 7 x 600 x 600 pixels gives
    the same; with a phantom CCD 0 counted it was 22 and 159). Not all soft:
    11 of the events are above 0.25 keV, one at 13.5 keV; none at the bright star."""
    ev = xcube.open_events(real_file("xmm/P0001730201M2S003MIEVLI.FTZ")).sortby("time")
    keep, st = _stats(ev)
    assert st["hot_pixels"] == 27 and st["hot_pixel_events"] == 184
    base, _ = _stats(ev, False)
    gone = base & ~keep
    assert gone.sum() == st["hot_pixel_events"] + st["hot_column_events"] + st["flickering_events"] \
        + st["instrumental_events"]
    pi = ev.pi.values[gone]
    assert (pi >= 250).sum() == 11 and pi.max() == 13452


def test_cluster_components_equal_scipy():
    """The numpy connected components of the cluster rule equal scipy.sparse.csgraph's partition."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from xcube.hygiene.rules import _components

    rng = np.random.default_rng(3)
    for trial in range(60):
        n = int(rng.integers(2, 300))
        edges = rng.integers(0, n, (int(rng.integers(1, 2 * n)), 2))
        if trial % 3 == 0:  # one long chain in random order: the slowest case for label propagation
            perm = rng.permutation(n)
            edges = np.stack([perm[:-1], perm[1:]], 1)
        mine = _components(edges, n)
        _, ref = connected_components(coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n)),
                                      directed=False)
        assert len(set(zip(mine.tolist(), ref.tolist()))) == len(set(mine.tolist())) == len(set(ref.tolist()))
        smallest = np.full(n, n)
        np.minimum.at(smallest, mine, np.arange(n))
        assert np.all(smallest[mine] == mine)  # each label is the smallest node of its component


@pytest.fixture(scope="module")
def bright_mos():
    """A 20 ks MOS1 observation (2.6 s frames: the cluster rule on) with a 2 ct/s constant source."""
    return simulate.event_list("xmm-mos1", duration=20_000.0, sources=[simulate.Source(rate=2.0, ra=150.0, dec=2.2)],
                               soft_protons=0, seed=2)


def test_mos_cluster_rule_keeps_a_short_flare_and_a_bright_source(bright_mos):
    """The photons of a short bright flare (3 ct/s, sigma 3 s: a few MOS frames)
    and of a 2 ct/s constant source fall together through the PSF, but over
    more than one frame and with more photons around: they are not one
    instrumental event (the rule dropped 16 of 20 flare photons and 27 % of
    the source's)."""
    ev, _ = bright_mos
    keep, st = _stats(ev)
    assert st["instrumental_events"] == 0
    t0 = float(ev.gti_start.values[0]) + 8000.37
    ev2, truth = simulate.inject_flare(ev, t_peak=t0, amplitude=3.0, width=3.0, ra=150.05, dec=2.25, seed=1)
    keep, st = _stats(ev2)
    assert st["instrumental_events"] == 0
    base, _ = _stats(ev2, Hygiene(hot_pixels=False, hot_columns=False, flickering=False, clusters=False))
    flare = (np.abs(ev2.time.values - t0) < 12) & (np.hypot(ev2.x.values - truth.x[0], ev2.y.values - truth.y[0])
                                                   < 400)
    assert flare[base].sum() >= 10 and np.array_equal(keep[flare], base[flare])
    # an instrumental event of one frame is still one
    ev3, n = simulate.inject_instrumental(ev, "cluster", ccd=2, rawx=300, rawy=300, n_events=4, t_start=t0, seed=4)
    assert _stats(ev3)[1]["instrumental_events"] == 4


@pytest.mark.parametrize("seed", [2])
def test_mos_cluster_rule_keeps_a_10_ct_s_flare_of_one_second_on_the_real_file(seed):
    """Sweep p28: the local rate around a cluster was taken in a box of +-2 raw pixels (2.2"), smaller
    than the MOS PSF, so 3 of 21 photons of a 10 ct/s, sigma 1 s flare injected into the real MOS1 file
    were dropped as one instrumental event. The local rate is now taken over the PSF (LOCAL_RADIUS)."""
    ev = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"))
    t0 = float(ev["gti_start"].values[0]) + 6000.0 + 300.0 * seed
    ev2 = simulate.inject_flare(ev, t_peak=t0, amplitude=10.0, width=1.0, x=26000.0, y=26000.0, seed=seed)[0]
    expr = "PATTERN <= 12 && FLAG == 0"
    near = lambda d: int(((np.hypot(d["x"].values - 26000, d["y"].values - 26000) < 200)  # noqa: E731
                          & (np.abs(d["time"].values - t0) < 5.0)).sum())
    before = near(select(ev2, expr=expr, gti=ev2))
    assert before >= 15 and near(select(ev2, expr=expr, gti=ev2, hygiene=True)) == before


def _flicker_case(burst, seed=0):
    """Quiet MOS-like events (20,000 over 7 CCDs, 10 ks) plus ``burst`` (times [s]) on CCD 3, RAWX = RAWY =
    300: (statistics of the flickering rule alone, kept mask of the burst's events)."""
    from xcube.hygiene import HygieneTest
    from xcube.missions import get_profile

    rng = np.random.default_rng(seed)
    n = 20_000
    t = np.sort(rng.uniform(0, 1e4, n))
    ccd, x, y = rng.integers(1, 8, n), rng.integers(1, 601, n), rng.integers(1, 601, n)
    test = HygieneTest(get_profile("xmm-mos1"), "PrimeFullWindow",
                       Hygiene(hot_pixels=False, hot_columns=False, clusters=False))
    tt = np.concatenate([t, burst])
    o = np.argsort(tt, kind="stable")
    k = burst.size
    cols = {"time": tt[o], "ccdnr": np.concatenate([ccd, np.full(k, 3)])[o],
            "rawx": np.concatenate([x, np.full(k, 300)])[o], "rawy": np.concatenate([y, np.full(k, 300)])[o]}
    stats = {}
    out = test(cols, np.ones(tt.size, bool), stats)
    return stats, out[np.argsort(o)][n:]


@pytest.mark.parametrize("lead", [None, 5.0, 9.0, 9.9])
def test_a_flickering_burst_is_found_in_any_window(lead):
    """Sweep p28: windows anchored at a pixel's first event after its previous window missed a burst of 12
    events in 8 s when one event came 5 s before it, and kept 2 of them when it came 9 s before. Every
    window of 10 s is looked at now: all 12 are dropped whatever came before."""
    burst = 5000.0 + np.linspace(0.0, 8.0, 12)
    if lead is not None:
        burst = np.r_[5000.0 - lead, burst]
    stats, kept = _flicker_case(burst)
    assert stats["flickering_bursts"] == 1
    assert not kept[-12:].any()  # every event of the burst; the lead event only when it is in a 10-event window
    if lead is not None:
        in_window = burst[9] - burst[0] <= 10.0  # the lead and the burst's first 9 events within 10 s
        assert kept[0] == (not in_window)


def test_bursts_equal_a_sliding_window_reference():
    """rules.bursts against an event-by-event reference: every run of a pixel's events where each
    k consecutive ones lie within the window, over random bursty pixels."""
    from xcube.hygiene import rules

    rng = np.random.default_rng(11)
    k, seconds = 6, 10.0
    times, pids = [], []
    for p in range(40):
        tp = np.sort(np.r_[rng.uniform(0, 2000, rng.integers(5, 40)),
                           rng.uniform(0, 12, rng.integers(0, 14)) + rng.uniform(0, 1990)])
        times.append(tp)
        pids.append(np.full(tp.size, p))
    t, pid = np.concatenate(times), np.concatenate(pids)
    o = np.argsort(t, kind="stable")
    t, pid = t[o], pid[o].astype(np.int32)
    want = set()
    for p in range(40):
        tp = t[pid == p]
        runs = []
        for j in range(tp.size - k + 1):
            if tp[j + k - 1] - tp[j] <= seconds:
                if runs and tp[j] <= runs[-1][1]:
                    runs[-1][1] = max(runs[-1][1], tp[j + k - 1])
                else:
                    runs.append([tp[j], tp[j + k - 1]])
        want |= {(p, a, b) for a, b in runs}
    # the candidates: every window start of each pixel (a superset of what scan gives)
    cands = np.array([(p, x) for p, x in zip(pid, t)], dtype=np.float64)
    got = set(zip(*(a.tolist() for a in rules.bursts(t, pid, cands, k, seconds))))
    assert got == want and len(want) > 5
    # and from scan's candidate windows (ceil(k / 2) events): the same runs
    from xcube.hygiene.rules import candidate_count

    live = rules.LivePixels((1, 40, 1), (1, 40, 1, 1), np.zeros(40, bool))
    scanned = rules.scan(t, np.ones(t.size, bool), np.zeros(t.size, np.int16), (pid + 1).astype(np.int16),
                         np.ones(t.size, np.int16), live, candidate_count(k), seconds, 0.0, 2)
    got2 = set(zip(*(a.tolist() for a in rules.bursts(t, scanned[2], scanned[5], k, seconds))))
    assert got2 == want


def _scan_reference(t, keep, ccd, rx, ry, shape, window, badcol, k_min, seconds):
    """Event by event: pixel ids (-1 not kept, -2 off the live pixels), the
    border count, counts per pixel and the burst windows ``(pixel, start)``
    (a window of ``seconds`` + 0.1 s from a pixel's first event after its
    previous window; on 0.1 s ticks from the block's first event)."""
    n_ccd, nx, ny = shape
    x0, x1, y0, y1 = window
    pid = np.full(t.size, -1, np.int64)
    for i in range(t.size):
        if not keep[i]:
            continue
        c, x, y = int(ccd[i]), int(rx[i]), int(ry[i])
        live = 0 <= c < n_ccd and max(x0, 1) <= x <= min(x1, nx) and max(y0, 1) <= y <= min(y1, ny)
        pid[i] = (c * nx + x - 1) * ny + y - 1 if live and not badcol[c * nx + x - 1] else -2
    counts = np.bincount(pid[pid >= 0], minlength=n_ccd * nx * ny)
    win = int(seconds * 10.0) + 1
    state, bursts = {}, []
    for i in np.flatnonzero(pid >= 0):
        now = int((t[i] - t[0]) * 10.0)
        start, size = state.get(pid[i], (0, 0))
        if size == 0 or now - start > win:
            start, size = now, 0
        size = min(size + 1, 255)
        state[pid[i]] = (start, size)
        if size == k_min:
            bursts.append((pid[i], t[0] + start / 10.0))
    return pid, int((pid == -2).sum()), counts, bursts


@pytest.mark.parametrize("span", [5_000.0, 3e8])  # 3e8 s: ticks beyond int32, the windows' own pass
@pytest.mark.parametrize("k_min, seconds", [(2, 0.5), (3, 10.0), (10, 10.0), (40, 100.0)])
def test_scan_equals_event_by_event_reference(k_min, seconds, span):
    """``rules.scan`` (the SIMD pixel pass with up to 4 bad columns in it
    and the rest after, the window state kept only while a pixel's events
    come close together) gives the pixel ids, border count, counts and
    burst windows of the event-by-event rule, on events with quiet pixels,
    bursts of many sizes and gaps, not-kept events and 7 bad columns."""
    from xcube.hygiene import rules

    rng = np.random.default_rng(k_min * 7 + int(seconds))
    shape, window = (3, 24, 30), (2, 23, 3, 28)
    n_bg = 6000
    t = list(rng.uniform(0, span, n_bg))
    pix = [rng.integers(0, 3, n_bg), rng.integers(0, 26, n_bg), rng.integers(0, 32, n_bg)]  # some off the grid
    for _ in range(60):  # bursts: 2-60 events of one pixel within 0.1-3 windows, some in a row
        c, x, y, n = rng.integers(0, 3), rng.integers(2, 24), rng.integers(3, 29), rng.integers(2, 60)
        t0 = rng.uniform(0, span)
        for rep in range(rng.integers(1, 3)):
            t += list(t0 + rep * seconds * rng.uniform(0.5, 2) + rng.uniform(0, seconds * rng.uniform(0.1, 3), n))
            pix[0] = np.r_[pix[0], np.full(n, c)]
            pix[1] = np.r_[pix[1], np.full(n, x)]
            pix[2] = np.r_[pix[2], np.full(n, y)]
    t = np.asarray(t)
    order = np.argsort(t, kind="stable")
    t = t[order]
    ccd, rx, ry = (np.asarray(p)[order].astype(np.int16) for p in pix)
    ccd[rng.random(t.size) < 0.002] = 7  # a CCD number beyond the camera's: off the detector
    keep = rng.random(t.size) < 0.9
    badcol = np.zeros(3 * 24, bool)
    badcol[rng.choice(3 * 24, 7, replace=False)] = True
    live = rules.LivePixels(shape, window, badcol)
    out, n_border, pid, counts, cells, bursts, links, unsorted = rules.scan(t, keep, ccd, rx, ry, live, k_min,
                                                                           seconds, 0.0, 2)
    ref_pid, ref_border, ref_counts, ref_bursts = _scan_reference(t, keep, ccd, rx, ry, shape, window, badcol,
                                                                  k_min, seconds)
    assert not unsorted and n_border == ref_border > 0
    assert np.array_equal(pid, ref_pid) and np.array_equal(counts, ref_counts)
    assert np.array_equal(out, keep & (ref_pid != -2))
    assert len(ref_bursts) > 3
    assert [(int(p), round(s, 6)) for p, s in bursts] == [(int(p), round(s, 6)) for p, s in ref_bursts]
    # events out of time order, kept or not, are reported (the caller sorts: the rules look times up)
    for i in (np.flatnonzero(keep)[100], np.flatnonzero(~keep)[100]):
        t2 = t.copy()
        t2[i] = t2[0] - 1.0
        assert rules.scan(t2, keep, ccd, rx, ry, live, k_min, seconds, 0.0, 2)[-1]
    assert not rules.scan(t2, keep, ccd, rx, ry, live, 0, seconds, 0.0, 2)[-1]  # (no time rule: not looked at)


@pytest.mark.parametrize("option, value", [("false_alarm", 0.0), ("false_alarm", 1.5), ("hot_ratio", -1.0),
                                           ("flicker_counts", 1), ("flicker_counts", 2), ("flicker_counts", 300),
                                           ("flicker_seconds", 0.0), ("flicker_seconds", 1e7),
                                           ("cluster_events", 1), ("cluster_radius", -1),
                                           ("cluster_probability", 1.0), ("border_margin", -2)])
def test_hygiene_options_are_checked(option, value):
    with pytest.raises(ValueError, match=option):
        Hygiene(**{option: value})
    with pytest.raises(ValueError, match=option):
        Hygiene.of({option: value})
