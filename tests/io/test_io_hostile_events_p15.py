"""Hostile event files (sweep p15/s2): a GTI table in another MJDREF frame,
duplicate column names, two event tables of one EXTNAME and EXTVER, BITPIX
!= 8 in the event table, TFORM widths that do not sum to NAXIS1, a symbolic
link loop, and TIME values far beyond the observation. The damaged files are
built in ``tmp_path``."""
import gzip
import re
import warnings

import numpy as np
import pytest
from astropy.io import fits

import xcube
from xcube.cli import main


def _name(path):
    return re.escape(str(path.name))


def _patch_card(path, extname: str, key: str, value, out=None):
    """Rewrite the header card ``key`` of extension ``extname`` in the file's
    bytes (astropy would refuse or repair the damage when writing)."""
    raw = bytearray(path.read_bytes())
    with fits.open(path) as h:
        start = h[extname].fileinfo()["hdrLoc"]
        stop = h[extname].fileinfo()["datLoc"]
    for k in range(start, stop, 80):
        if raw[k:k + 8].decode().strip() == key:
            raw[k:k + 80] = fits.Card(key, value).image.encode()
            break
    else:
        raise AssertionError(f"no card {key} in {extname}")
    out = out or path
    out.write_bytes(bytes(raw))
    return out


def _column_index(path, name: str) -> int:
    with fits.open(path) as h:
        return [c.name for c in h["EVENTS"].columns].index(name) + 1


def _gzip(path):
    out = path.with_name(path.name + ".gz")
    out.write_bytes(gzip.compress(path.read_bytes()))
    return out


# --------------------------------------------------------------------------- 1. GTI in another MJDREF frame


@pytest.mark.parametrize("gti_header, events_header, shift", [
    ({"MJDREF": 50813.0}, {}, 86400.0),  # a day earlier: the GTI's seconds are 86400 s more
    ({"MJDREFI": 50814, "MJDREFF": 64.184 / 86400}, {"MJDREFI": 50814, "MJDREFF": 0.0}, -64.184),  # TT-UTC
    ({"MJDREFI": 50814, "MJDREFF": 1e-12}, {}, 0.0),  # 0.09 us apart: the same epoch, no shift, no warning
])
def test_gti_table_in_another_mjdref_frame_is_moved_into_the_events_frame(make_event_file, gti_header,
                                                                          events_header, shift):
    """A GTI table with its own MJDREF was read as seconds after the events' MJDREF, silently."""
    t0, dur = 1.0e8, 1.0e4
    header = dict(events_header)
    if events_header:
        header["MJDREF"] = None
    path = make_event_file(t0=t0, duration=dur, header=header or None,
                           gti_extensions={"STDGTI01": ([t0 + 100 + shift], [t0 + 900 + shift], gti_header)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = xcube.open_events(path)
    said = [str(w.message) for w in caught if "MJDREF" in str(w.message)]
    assert np.allclose(ev["gti_start"].values, [t0 + 100], rtol=0, atol=1e-6)
    assert np.allclose(ev["gti_stop"].values, [t0 + 900], rtol=0, atol=1e-6)
    assert ev.attrs["exposure"] == pytest.approx(800.0, abs=1e-6)
    if shift:
        assert len(said) == 1, said
        assert re.search(rf"{_name(path)}\[STDGTI01\]: .*MJDREF 5081[34].*events' MJDREF 50814", said[0]), said[0]
        assert f"{-shift:+.6f} s" in said[0] or f"{-shift:+.3f}" in said[0], said[0]
    else:
        assert not said, said


# --------------------------------------------------------------------------- 2. duplicate column names


@pytest.mark.parametrize("name", ["PI", "TIME"])
@pytest.mark.parametrize("compressed", [False, True])
def test_duplicate_column_names_are_a_clear_error(make_event_file, tmp_path, name, compressed):
    """Two TTYPEn 'PI' gave astropy's bare 'name already used as a name or title' (and, gzipped, 'corrupt or
    truncated'), after a warning that the names 'differ only in case'."""
    src = make_event_file(name="dup.fits")
    first, second = _column_index(src, name), _column_index(src, "PATTERN")
    path = _patch_card(src, "EVENTS", f"TTYPE{second}", name)
    if compressed:
        path = _gzip(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError) as err:
            xcube.open_events(path)
    msg = str(err.value)
    assert re.search(rf"{_name(path)}\[EVENTS\]: columns {first} and {second} are both named '{name}' "
                     rf"\(TTYPE{first}, TTYPE{second}\)", msg), msg
    assert "fparkey" in msg and "corrupt" not in msg
    assert not [w for w in caught if "differ only in case" in str(w.message)]


def test_names_differing_only_in_case_still_warn(make_event_file):
    path = make_event_file(columns={"pi": np.zeros(1000, np.int16)})
    with pytest.warns(UserWarning, match=r"columns 'PI' and 'pi' differ only in case"):
        xcube.open_events(path)


# --------------------------------------------------------------------------- 6. two tables of one EXTNAME and EXTVER


@pytest.mark.parametrize("compressed", [False, True])
def test_two_event_tables_of_one_extver_are_reached_by_index(make_event_file, tmp_path, capsys, compressed):
    """The warning suggested hdu="EVENTS,1" (the table already read), and --hdu 3 was taken as a name."""
    a = make_event_file(n=300, seed=1)
    with fits.open(a) as h:
        second = h["EVENTS"].copy()
        t = np.array(second.data["TIME"])
        second.data["TIME"] = (t + 0.5)[::-1]  # the same number of rows, other times, not sorted
        out = fits.HDUList([x.copy() for x in h] + [second])
        index = len(out) - 1
        path = tmp_path / "two.fits"
        out.writeto(path)
    if compressed:
        path = _gzip(path)
    with pytest.warns(UserWarning, match=rf"2 event tables named EVENTS \(EXTVER 1, 1\).*hdu={index} "
                                         rf"\(--hdu {index}\)") as rec:
        assert xcube.open_events(path).sizes["event"] == 300
    assert not any('hdu="EVENTS,1"' in str(w.message) for w in rec)
    ev = xcube.open_events(path, hdu=index)
    assert np.array_equal(ev["time"].values, np.sort(t + 0.5))  # the second table, sorted
    with pytest.raises(ValueError, match=rf"no table extension EVENTS with EXTVER = 2 .*HDUs 1, {index}: pass hdu= "
                                         rf"the HDU number \(--hdu {index}\)"):
        xcube.open_events(path, hdu="EVENTS,2")
    assert main(["info", str(path), "--hdu", str(index)]) == 0
    assert "300" in capsys.readouterr().out


# --------------------------------------------------------------------------- 7. misleading diagnoses


def test_bitpix_16_in_the_event_table_is_not_called_truncation(make_event_file):
    path = _patch_card(make_event_file(), "EVENTS", "BITPIX", 16)
    with pytest.raises(OSError) as err:
        xcube.open_events(path)
    msg = str(err.value)
    assert re.search(rf"{_name(path)}: .*BITPIX = 16 in the binary table EVENTS .*must be 8", msg), msg
    assert "truncated" not in msg and "download" not in msg


def test_info_on_a_bitpix_16_table_prints_only_the_clear_error(make_event_file, tmp_path):
    """xcube info printed astropy's two 'File may have been truncated' lines (from telling the product kind)
    before the clear error (a fresh process: astropy's logger prints them, pytest would catch them)."""
    import os
    import subprocess
    import sys

    path = _patch_card(make_event_file(), "EVENTS", "BITPIX", 16)
    env = dict(os.environ, XCUBE_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-m", "xcube", "info", str(path)], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 1
    assert "BITPIX = 16" in out.stderr and "may have been truncated" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


@pytest.mark.parametrize("compressed", [False, True])
def test_tform_widths_that_miss_naxis1_are_a_damaged_header(make_event_file, compressed):
    """TFORM 'J' -> 'I' (2 bytes short of NAXIS1) was reported as NaN TIME values to drop."""
    src = make_event_file()
    path = _patch_card(src, "EVENTS", f"TFORM{_column_index(src, 'X')}", "I")
    if compressed:
        path = _gzip(path)
    with fits.open(src) as h:
        naxis1 = h["EVENTS"].header["NAXIS1"]
    with pytest.raises(ValueError) as err:
        xcube.open_events(path)
    msg = str(err.value)
    assert re.search(rf"{_name(path)}\[EVENTS\]: the TFORM widths sum to {naxis1 - 2} bytes but NAXIS1 is "
                     rf"{naxis1}", msg), msg
    assert "NaN" not in msg


@pytest.mark.parametrize("links", [{"self": "self"}, {"l1": "l2", "l2": "l1"}])
def test_symbolic_link_loop_is_not_called_missing(tmp_path, links):
    for name, target in links.items():
        (tmp_path / name).symlink_to(target)
    path = tmp_path / next(iter(links))
    with pytest.raises(OSError, match=rf"{_name(path)}: symbolic-link loop") as err:
        xcube.open_events(path)
    assert not isinstance(err.value, FileNotFoundError)
    assert main(["info", str(path)]) == 1


# --------------------------------------------------------------------------- 8. times far beyond the observation


@pytest.mark.parametrize("how", ["sorted", "unsorted", "gzip"])
def test_times_far_beyond_the_observation_are_warned(make_event_file, how):
    """TIME = 1e30 was accepted silently (xcube info printed a span ending at 1e30)."""
    rng = np.random.default_rng(3)
    t = np.sort(1.0e9 + rng.uniform(0, 1.0e4, 1000))
    t[-2:] = [5.0e12, 1.0e30]  # beyond 1e12 s, and absurd
    t[0] = 1.0e3  # more than 1e8 s (1e4 x the 1e4 s span) before the start
    if how == "unsorted":
        t = t[::-1].copy()
    path = make_event_file(t0=1.0e9, columns={"TIME": t})
    if how == "gzip":
        path = _gzip(path)
    with pytest.warns(UserWarning, match=rf"{_name(path)}: 3 of 1000 events lie far outside the observation "
                                         r"\(1 before 9e\+08 s, 2 after 1\.10001e\+09 s;"):
        ev = xcube.open_events(path)
    assert ev.sizes["event"] == 1000


def test_times_within_the_observation_are_not_warned(make_event_file):
    rng = np.random.default_rng(3)
    t = np.sort(1.0e8 + rng.uniform(0, 1.0e4, 1000))
    t[-1] = 1.0e8 + 1.0e4 * 9000  # 9000 spans after the end: late, but not absurd
    path = make_event_file(columns={"TIME": t})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        xcube.open_events(path)
    assert not [w for w in caught if "far outside" in str(w.message)]


def test_timezero_is_applied_once_in_the_good_time_check(make_event_file):
    """The memory-mapped path added TIMEZERO to the scanned first/last times a second time: a file with
    TIMEZERO larger than its span was said to have all its events outside the good time."""
    path = make_event_file(t0=1.0e8, duration=1.0e3, header={"TIMEZERO": 1.0e4})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = xcube.open_events(path)
    assert ev.attrs.get("cache_reason") is None  # (the memory-mapped path)
    assert float(ev["time"].min()) >= float(ev["gti_start"][0]) - 1e-6
    assert not [w for w in caught if "outside the good time" in str(w.message)]
