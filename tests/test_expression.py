"""Filter-expression parser: syntax, precedence, the & rule, ranges, macros, errors."""
import re

import numpy as np
import pytest

from xcube.expression import BUILTIN_MACROS, ExpressionError, compile_expression
from xcube.missions import profiles

RNG = np.random.default_rng(1)
N = 2000
COLS = {
    "time": np.sort(RNG.uniform(0, 100, N)),
    "x": RNG.integers(20000, 32000, N).astype(np.int32),
    "y": RNG.integers(20000, 32000, N).astype(np.int32),
    "pi": RNG.integers(0, 15000, N).astype(np.int16),
    "energy": (RNG.integers(0, 15000, N) / 1000).astype(np.float32),
    "pattern": RNG.integers(0, 32, N).astype(np.uint8),
    "flag": RNG.choice([0, 1, 2, 0x100, 0x2000, 0x10000, 0x40000000, 0x1001], N).astype(np.int32),
    "ccdnr": RNG.integers(1, 8, N).astype(np.uint8),
}
DT = {k: v.dtype for k, v in COLS.items()}
pi, pat, flag, ccd = COLS["pi"], COLS["pattern"], COLS["flag"], COLS["ccdnr"]


def ev(text, **kw):
    return compile_expression(text, DT, **kw).evaluate(COLS)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("PATTERN <= 12 && FLAG == 0", (pat <= 12) & (flag == 0)),
        ("PATTERN <= 12 & FLAG == 0", (pat <= 12) & (flag == 0)),
        ("pattern <= 12 and flag == 0", (pat <= 12) & (flag == 0)),
        ("PATTERN.le.12 .and. FLAG.eq.0", (pat <= 12) & (flag == 0)),
        ("PATTERN == 0 || PATTERN > 20", (pat == 0) | (pat > 20)),
        ("PATTERN == 0 | PATTERN > 20", (pat == 0) | (pat > 20)),
        ("PATTERN = 3", pat == 3),
        ("PATTERN != 3", pat != 3),
        # AND binds tighter than OR, whatever the spelling
        ("PATTERN == 0 || PI > 100 && FLAG == 0", (pat == 0) | ((pi > 100) & (flag == 0))),
        ("PATTERN == 0 | PI > 100 & FLAG == 0", (pat == 0) | ((pi > 100) & (flag == 0))),
        ("(PATTERN == 0 || PI > 100) && FLAG == 0", ((pat == 0) | (pi > 100)) & (flag == 0)),
        ("!(PATTERN <= 4)", ~(pat <= 4)),
        ("!PATTERN <= 4 && FLAG == 0", ~(pat <= 4) & (flag == 0)),
        ("not PATTERN <= 4 or FLAG == 0", ~(pat <= 4) | (flag == 0)),
        ("!!(FLAG == 0)", flag == 0),
        # bitwise: & between integers
        ("(FLAG & 0x766ba000) == 0", (flag & 0x766BA000) == 0),
        ("(FLAG & 0x766BA000) != 0 && PATTERN < 5", ((flag & 0x766BA000) != 0) & (pat < 5)),
        ("((FLAG | 1) & 0x1001) == 0x1001", ((flag | 1) & 0x1001) == 0x1001),
        ("(FLAG & 0xfffffeff) == 0", (flag.astype(np.int64) & 0xFFFFFEFF) == 0),
        ("(~FLAG & 1) == 1", (~flag & 1) == 1),
        ("(PATTERN & 1) == 1 & (FLAG & 1) == 0", ((pat & 1) == 1) & ((flag & 1) == 0)),
        # ranges
        ("PI in [200:12000]", (pi >= 200) & (pi <= 12000)),
        ("PI IN [200:12000]", (pi >= 200) & (pi <= 12000)),
        ("PI in (200:12000]", (pi > 200) & (pi <= 12000)),
        ("PI in [200:12000)", (pi >= 200) & (pi < 12000)),
        ("PI in (200:12000)", (pi > 200) & (pi < 12000)),
        ("PI in [2e3:]", pi >= 2000),
        ("PI in [:500]", pi <= 500),
        ("CCDNR in [1, 3:5]", (ccd == 1) | ((ccd >= 3) & (ccd <= 5))),
        ("CCDNR in [2]", ccd == 2),
        ("PATTERN in [0:4] && PI in [0x100:0x200]", (pat <= 4) & (pi >= 256) & (pi <= 512)),
        # chained comparisons and arithmetic
        ("200 <= PI < 1000", (pi >= 200) & (pi < 1000)),
        ("PI/1000 >= 0.5", pi / 1000 >= 0.5),
        ("PI * 2 - 100 > 3000", pi.astype(np.int64) * 2 - 100 > 3000),
        ("PI % 2 == 0", pi % 2 == 0),
        ("-PI < -5000", -pi.astype(np.int64) < -5000),
        ("X - 26000 > 0.5 * (Y - 26000)", (COLS["x"] - 26000.0) > 0.5 * (COLS["y"] - 26000.0)),
        ("1 == 1", np.ones(N, bool)),
        ("1 > 2 || PI > 9000", pi > 9000),
    ],
)
def test_expressions_match_numpy(text, expected):
    np.testing.assert_array_equal(ev(text), expected)


def test_columns_any_case_and_reported():
    e = compile_expression("Pattern <= 4 && flaG == 0 && pi > 1", DT)
    assert e.columns == {"pattern", "flag", "pi"}
    np.testing.assert_array_equal(e.evaluate(COLS), (pat <= 4) & (flag == 0) & (pi > 1))


def test_alias_resolves_file_column_name():
    e = compile_expression("PHA > 100", DT, aliases={"PHA": "pi"})
    np.testing.assert_array_equal(e.evaluate(COLS), pi > 100)


def test_float_literal_rounded_to_column_precision():
    # PI 700 -> float32(0.7) must pass ENERGY >= 0.7 (it fails in float64)
    e = np.array([0.001 * 700, 0.001 * 699], dtype=np.float32)
    out = compile_expression("ENERGY >= 0.7", {"energy": np.float32}).evaluate({"energy": e})
    np.testing.assert_array_equal(out, [True, False])


def test_builtin_xmmea_macros_match_header_definitions():
    np.testing.assert_array_equal(ev("#XMMEA_EM"), (flag & 0x766BA000) == 0)
    np.testing.assert_array_equal(ev("#XMMEA_EM && PATTERN <= 12"), ((flag & 0x766BA000) == 0) & (pat <= 12))
    np.testing.assert_array_equal(ev("#XMMEA_8"), (flag & 0x100) != 0)
    assert BUILTIN_MACROS["XMMEA_SM"] == "(FLAG & 0xfffffeff) == 0"


def test_macros_from_mapping_and_function_take_precedence_and_nest():
    out = ev("#MYFLAG && PI > 100", macros={"MYFLAG": "FLAG == 0"})
    np.testing.assert_array_equal(out, (flag == 0) & (pi > 100))
    out = ev("#OUTER", macros=lambda n: {"OUTER": "#INNER || PATTERN == 1", "INNER": "FLAG == 2"}.get(n))
    np.testing.assert_array_equal(out, (flag == 2) | (pat == 1))
    # a header value overrides the built-in
    out = ev("#XMMEA_EM", macros={"XMMEA_EM": "FLAG == 1"})
    np.testing.assert_array_equal(out, flag == 1)


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("FLAG & 0x766ba000 == 0", r"needs parentheses, e\.g\. \(FLAG & <mask>\) == 0"),
        ("PATERN <= 4", r"unknown column 'PATERN'; did you mean 'pattern'\? Available columns: ccdnr, energy, flag"),
        ("GRADE <= 4", r"unknown column 'GRADE'.*Available columns: ccdnr, energy, flag, pattern, pi, time, x, y"),
        ("PI >> 3", r"unexpected '>' at position 5"),
        ("PI @ 3", r"unexpected character '@' at position 4"),
        ("PATTERN <=", r"ends too early"),
        ("(PI > 3", r"expected '\)' but found the end"),
        ("PI > 3)", r"unexpected '\)'"),
        ("PI + 1", r"gives numbers, not a condition; compare it, e\.g\. \(PI \+ 1\) != 0"),
        ("FLAG && PI > 2", r"'&&' needs conditions, but 'FLAG' is a number; compare it"),
        ("!FLAG", r"'!' needs conditions, but 'FLAG' is a number"),
        ("(ENERGY & 1) == 0", r"bitwise '&' needs integers, but 'ENERGY' is a float"),
        ("PI > 3 + (FLAG == 0)", r"'\+' needs numbers, '\(FLAG == 0\)' is a condition"),
        ("(PI > 3) < 2", r"cannot use '<' between"),
        ("PI in [12000:200]", r"empty range: lower bound 12000 is above upper bound 200"),
        ("PI in 5", r"expected a range such as \[200:12000\] after 'in'"),
        ("PI in [200:12000", r"expected '\]' or '\)' to close the range"),
        ("PI in (5)", r"single value 5 cannot have an open bracket"),
        ("#NOPE", r"unknown macro #NOPE"),
        ("(X,Y) in square(1,2,3)", r"expected a shape \(circle, annulus, ellipse, box, polygon\)"),
        ("PI > 0x1FFFFFFFFFFFFFFFF", r"does not fit in a 64-bit integer"),
        ("PI >= 99999999999999999999", r"number 99999999999999999999 does not fit in a 64-bit integer \(at most "
                                       r"9223372036854775807\) at position 7; write a float, e\.g\. 1e20"),
        ("circle(26000,26000,100)",
         r"circle\(\) takes 5 arguments but has 3 at position 1; write circle\(xc,yc,r,X,Y\)"),
        ("box(1,2,3,4,X,Y)", r"box\(\) takes 7 arguments but has 6 .*write box\(xc,yc,width,height,angle,X,Y\)"),
        ("circle(26000,26000,X,X,Y)", r"argument 3 of circle\(\) \(r\) must be a number, 'X' is not a constant"),
        ("circle(26000,26000,100,X,PATTERN == 1)", r"expected ',' or '\)' in circle\(\.\.\.\) but found '=='"),
        ("circle(26000,26000,1e999,X,Y)", r"bad shape 'circle\(26000,26000,1e999,X,Y\)': its numbers must be finite"),
        ("circle(26000,26000,-5,X,Y)", r"bad shape .*strictly positive.* at position 1"),
        ("foo(PI) > 3", r"unknown function 'foo' at position 1; the only functions are the region tests "
                        r"circle\(xc,yc,r,X,Y\), annulus\(xc,yc,r_in,r_out,X,Y\), ellipse"),
        ("PI > 3 && SQRT (PI) < 2", r"unknown function 'SQRT' at position 11"),
        ("gti(/tmp/x.fits,TIME)", r"gti\(\) is not supported in filter expressions at position 1; select by good "
                                  r"time intervals with select\(gti=\.\.\.\), which takes a GTI file"),
        ("PI > 3 && gtifilter()", r"gtifilter\(\) is not supported in filter expressions at position 11; "
                                  r".*select\(gti="),
        ('regfilter("a.reg")', r"regfilter\(\) is not supported .*select\(region='file\.reg'\)"),
        ("polygon(1,2,3,4,5,6,X,Y)", r"polygon\(\) is not a function at position 1; write \(X,Y\) in polygon"),
        ("#BIG", r"macro #BIG = .* is invalid: .*does not fit in a 64-bit integer"),
        ("", r"non-empty string"),
    ],
)
def test_errors_say_what_and_where(text, pattern):
    with pytest.raises(ExpressionError, match=pattern):
        compile_expression(text, DT, macros={"BIG": "PI > 99999999999999999999"})


@pytest.mark.parametrize(
    "text, at",
    [
        ("PATTERN <= 4 && $FLAG", "$"),
        ("PI >= 99999999999999999999", "9"),  # was an error with neither the expression nor a caret
        ("PI > -0x8000000000000000", "0x"),
        ("foo(PI) > 3", "foo"),  # was "unknown column 'foo'", no caret
        ("PI > 3 && gti(/tmp/x.fits,TIME)", "gti"),  # was "unexpected character '.'"
        ("circle(26000,26000,100)", "circle"),
        ("PI > 1 && box(1,2,3,4,X,Y)", "box"),
        ("(X,Y) in circle(26000,26000,-5)", "circle"),
    ],
)
def test_error_shows_the_expression_and_a_caret_under_the_problem(text, at):
    with pytest.raises(ExpressionError) as err:
        compile_expression(text, DT)
    lines = str(err.value).splitlines()
    assert lines[0].startswith(f"filter expression {text!r}: ")
    assert lines[-2].strip() == text
    assert lines[-1].index("^") == lines[-2].index(at)


def test_macro_loop_is_an_error_not_a_hang():
    with pytest.raises(ExpressionError, match="nests too deeply"):
        compile_expression("#A", DT, macros={"A": "#B", "B": "#A"})


def test_expression_is_never_evaluated_as_python():
    with pytest.raises(ExpressionError):
        compile_expression("__import__('os').system('true')", DT)


def test_shape_in_expression_matches_brute_force():
    x, y = COLS["x"].astype(float), COLS["y"].astype(float)
    out = ev("(X,Y) in circle(26000.5, 25000.25, 2500.5) && PATTERN <= 12")
    np.testing.assert_array_equal(out, ((x - 26000.5) ** 2 + (y - 25000.25) ** 2 <= 2500.5**2) & (pat <= 12))
    out = ev("((X,Y) IN annulus(26000.5,25000.25,1000.5,3000.5))")
    r2 = (x - 26000.5) ** 2 + (y - 25000.25) ** 2
    np.testing.assert_array_equal(out, (r2 >= 1000.5**2) & (r2 <= 3000.5**2))
    out = ev("(X,Y) in polygon(20000.5,20000.5,30000.5,20000.5,20000.5,30000.5)")
    np.testing.assert_array_equal(out, (x > 20000.5) & (y > 20000.5) & (x + y < 50001))


def test_in_box_takes_sas_half_widths():
    """(X,Y) in box(xc,yc,hx,hy,angle): SAS selectlib's box, whose sizes are half-widths (the CFITSIO
    function box(...,X,Y) takes full sides); it was refused."""
    x, y = COLS["x"].astype(float), COLS["y"].astype(float)
    out = ev("(X,Y) in box(26000,25000,3000,1000,0)")
    np.testing.assert_array_equal(out, (np.abs(x - 26000) <= 3000) & (np.abs(y - 25000) <= 1000))
    assert 0 < out.sum() < N
    np.testing.assert_array_equal(out, ev("box(26000,25000,6000,2000,0,X,Y)"))
    a = np.radians(30.0)
    u, v = (x - 26000) * np.cos(a) + (y - 25000) * np.sin(a), (y - 25000) * np.cos(a) - (x - 26000) * np.sin(a)
    np.testing.assert_array_equal(ev("(X,Y) in BOX(26000, 25000, 3000, 1000, 30)"),
                                  (np.abs(u) <= 3000) & (np.abs(v) <= 1000))


def test_cfitsio_region_functions_are_the_in_shapes():
    """circle(xc,yc,r,X,Y), annulus(..), ellipse(..,angle,X,Y) and box(xc,yc,width,height,angle,X,Y):
    the CFITSIO/ftselect row-filter functions (were "unknown column 'circle'"), the same test as
    (X,Y) in shape(...), boundaries inside."""
    x, y = COLS["x"].astype(float), COLS["y"].astype(float)
    for func, same in [
        ("circle(26000.5,25000.25,2500.5,X,Y)", "(X,Y) in circle(26000.5,25000.25,2500.5)"),
        ("annulus(26000.5,25000.25,1000.5,3000.5,X,Y)", "(X,Y) in annulus(26000.5,25000.25,1000.5,3000.5)"),
        ("ELLIPSE(26000, 25000, 4000, 1500, 30, X, Y)", "(X,Y) in ellipse(26000,25000,4000,1500,30)"),
        ("circle(812.5,781.25,78.125,X/32,Y/32)", "(X,Y) in circle(26000,25000,2500)"),  # coordinates: expressions
        ("circle(2.6e4,5e4/2,-(-2500),X,Y)", "(X,Y) in circle(26000,25000,2500)"),  # constant shape numbers
    ]:
        out = ev(func)
        assert 0 < out.sum() < N, func
        np.testing.assert_array_equal(out, ev(same), err_msg=func)
    r2 = (x - 26000.5) ** 2 + (y - 25000.25) ** 2
    np.testing.assert_array_equal(ev("circle(26000.5,25000.25,2500.5,X,Y)"), r2 <= 2500.5**2)
    # box: full sides (CFITSIO's xfll_wdth, DS9's width), angle in degrees
    np.testing.assert_array_equal(ev("box(26000,25000,6000,2000,0,X,Y)"),
                                  (np.abs(x - 26000) <= 3000) & (np.abs(y - 25000) <= 1000))
    np.testing.assert_array_equal(ev("box(26000,25000,6000,2000,90,X,Y)"),
                                  (np.abs(x - 26000) <= 1000) & (np.abs(y - 25000) <= 3000))
    a = np.radians(30.0)
    u, v = (x - 26000) * np.cos(a) + (y - 25000) * np.sin(a), (y - 25000) * np.cos(a) - (x - 26000) * np.sin(a)
    np.testing.assert_array_equal(ev("box(26000,25000,6000,2000,30,X,Y)"), (np.abs(u) <= 3000) & (np.abs(v) <= 1000))
    # ellipse: semi-axes (CFITSIO's xhlf_wdth)
    np.testing.assert_array_equal(ev("ellipse(26000,25000,3000,1000,30,X,Y)"), (u / 3000) ** 2 + (v / 1000) ** 2 <= 1)
    # in a larger expression
    out = ev("!circle(26000,25000,2500,X,Y) && PATTERN <= 12 || box(26000,25000,10,10,0,X,Y)")
    r2 = (x - 26000) ** 2 + (y - 25000) ** 2
    box = (np.abs(x - 26000) <= 5) & (np.abs(y - 25000) <= 5)
    np.testing.assert_array_equal(out, (r2 > 2500**2) & (pat <= 12) | box)
    assert compile_expression("circle(1,2,3,X,Y) && PI > 3", DT).columns == {"x", "y", "pi"}


def test_region_functions_select_like_regions_on_real_mos():
    import warnings

    from conftest import real_file

    import xcube

    evl = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"), chunks=40000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for func, region in [("circle(24737.5,24108.5,600.5,X,Y)", "circle(24737.5,24108.5,600.5)"),
                             ("box(24737,24108,1200,500,90,X,Y)", "box(24737,24108,1200,500,90)"),
                             ("ellipse(24737,24108,900,400,30,X,Y)", "ellipse(24737,24108,900,400,30)")]:
            a = xcube.select(evl, expr=func)
            b = xcube.select(evl, region="physical;" + region)
            assert a.sizes["event"] > 1000, func
            np.testing.assert_array_equal(a["time"].values, b["time"].values, err_msg=func)


def test_every_mission_screening_string_parses():
    checked = 0
    for name, prof in profiles().items():
        if not prof.screening:
            continue
        names = {w.lower() for w in re.findall(r"[A-Za-z_]\w*", prof.screening)} - {"and", "or", "not", "in"}
        dtypes = {**DT, **{n: np.dtype(np.int32) for n in names}}
        e = compile_expression(prof.screening, dtypes)
        assert e.columns == names, name
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("text", ["ratio < 1e40", "ratio > -1e40", "ratio in [0:1e40]", "ratio=1:1e40",
                                  "ratio == 1e40", "ratio != -1e40", "1e40 > ratio", "0 < ratio <= 1e300"])
def test_float32_column_against_a_constant_beyond_its_range_warns_nothing(text):
    import warnings

    ratio = np.array([0.0, 0.5, 1.0, 1.5, 3.4e38, -3.4e38, np.inf, -np.inf, np.nan], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered in cast" was a RuntimeWarning
        got = compile_expression(text, {"ratio": ratio.dtype}).evaluate({"ratio": ratio})
        ref = compile_expression(text, {"ratio": np.dtype(np.float64)}).evaluate({"ratio": ratio.astype(np.float64)})
    np.testing.assert_array_equal(got, ref)


def test_unknown_abbreviated_column_suggests_the_column_it_starts():
    from xcube.expression import ExpressionError, resolve_column

    cols = {"pattern": "u1", "pha": "i2", "pi": "i2", "flag": "i4"}
    with pytest.raises(ExpressionError, match="did you mean 'pattern'"):
        resolve_column("PAT", cols)
    with pytest.raises(ExpressionError, match="did you mean 'flag'"):
        resolve_column("FLGA", cols)
