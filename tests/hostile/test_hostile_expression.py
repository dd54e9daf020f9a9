"""Hostile filter expressions and region arguments: long chains work, deep
nesting fails cleanly, parsing is linear, and no file contents are echoed."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

import xcube
from xcube.expression import MAX_LENGTH, MAX_NESTING, ExpressionError, compile_expression

DT = {"pi": np.int16, "pattern": np.uint8, "flag": np.int32}
COLS = {"pi": np.arange(2000, dtype=np.int16), "pattern": np.arange(2000, dtype=np.uint8) % 13,
        "flag": np.zeros(2000, np.int32)}


def _chain(n, op="&&"):
    return f" {op} ".join(f"PI > {k % 50}" for k in range(n))


@pytest.mark.parametrize("op", ["&&", "||", "&", "and"])
def test_flat_chain_of_1000_terms_compiles_and_evaluates(op):
    e = compile_expression(_chain(1000, op), DT)
    expected = COLS["pi"] > 49 if op != "||" else COLS["pi"] > 0
    np.testing.assert_array_equal(e.evaluate(COLS), expected)


def test_long_arithmetic_and_comparison_chains_evaluate_without_recursion():
    e = compile_expression("PI" + " + 1" * 3000 + " > 3000", DT)
    np.testing.assert_array_equal(e.evaluate(COLS), COLS["pi"] > 0)
    e = compile_expression(" < ".join(["-1"] * 1500) + " < PI", DT)  # a 1500-term chained comparison
    assert e.evaluate(COLS).sum() == 0  # -1 < -1 is false


def test_parsing_is_linear():
    t0 = time.perf_counter()
    compile_expression(_chain(1000), DT)
    small = time.perf_counter() - t0
    t0 = time.perf_counter()
    e = compile_expression(_chain(10_000), DT)
    big = time.perf_counter() - t0
    assert e.evaluate(COLS).sum() == 1950
    assert big < 10.0 and big < 40 * max(small, 0.01), (small, big)  # quadratic would be ~100x


@pytest.mark.parametrize("text", [
    "(" * 1000 + "PI > 1" + ")" * 1000,
    "!" * 1000 + "(PI > 1)",
    "-" * 1000 + "PI > 1",
    "(" * (MAX_NESTING + 1) + "PI > 1" + ")" * (MAX_NESTING + 1),
])
def test_deep_nesting_fails_cleanly(text):
    with pytest.raises(ExpressionError, match=f"nested more than {MAX_NESTING} levels deep") as info:
        compile_expression(text, DT)
    assert len(str(info.value)) < 800  # the message shows a window, not the whole expression


def test_nesting_up_to_the_limit_works():
    n = MAX_NESTING - 1
    e = compile_expression("(" * n + "PI > 1" + ")" * n, DT)
    assert e.evaluate(COLS).sum() == 1998


def test_macros_count_towards_the_nesting_limit():
    body = "(" * 40 + "PI > 1" + ")" * 40
    with pytest.raises(ExpressionError, match="nested more than"):
        compile_expression("(" * 40 + "#DEEP" + ")" * 40, DT, macros={"DEEP": body})


def test_expression_length_is_capped():
    with pytest.raises(ExpressionError, match=f"longer than the limit of {MAX_LENGTH:,}"):
        compile_expression("PI > 1 && " * (MAX_LENGTH // 10 + 1) + "PI > 1", DT)


def test_cli_prints_one_line_for_a_deep_expression(make_event_file, tmp_path):
    path = make_event_file(n=200)
    expr = "(" * 1000 + "PI > 1" + ")" * 1000
    res = subprocess.run([sys.executable, "-m", "xcube.cli", "lc", str(path), "--out", str(tmp_path / "lc.fits"),
                          "--time-bin", "100", "--expr", expr], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr and "RecursionError" not in res.stderr
    assert "nested more than" in res.stderr + res.stdout


@pytest.mark.parametrize("target", ["/etc/passwd", "/etc/hostname"])
def test_region_given_a_system_file_does_not_echo_it(make_event_file, target):
    from pathlib import Path

    p = Path(target)
    if not p.is_file() or not p.read_text().strip():
        pytest.skip(f"{target} absent or empty here")
    ev = xcube.open_events(make_event_file(n=100))
    with pytest.raises(ValueError, match="not a DS9 region file") as info:
        xcube.select(ev, region=target)
    first = p.read_text().splitlines()[0].strip()
    assert first not in str(info.value)


def test_region_given_a_binary_file(tmp_path):
    from xcube.regions import pixel_region

    f = tmp_path / "blob.reg"
    f.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match=r"blob\.reg: not a DS9 region file \(not text\)"):
        pixel_region(f)
