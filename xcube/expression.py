"""Filter expressions in the syntax of SAS ``evselect``, CIAO and ``ftselect``.

``compile_expression(text, dtypes)`` tokenizes and parses a filter string with
a small recursive-descent parser (never ``eval``) into a :class:`Expression`,
a function of event columns that returns a boolean mask. Types are checked at
compile time against the column dtypes, so mistakes are reported before any
data is read.

Grammar, loosest binding first::

    or     := and  (("||" | "|" | "or" | ".or.") and)*
    and    := not  (("&&" | "&" | "and" | ".and." | ",") not)*
    not    := ("!" | "not" | ".not.") not | cmp
    cmp    := sum (CMP sum)*  |  sum "in" RANGES  |  sum "=" CIAO   CMP: == = != < <= > >= .eq. .ne. ...
    CIAO   := [NUMBER] ":" [NUMBER] | NUMBER, separated by ","
    sum    := prod (("+" | "-") prod)*
    prod   := unary (("*" | "/" | "%") unary)*
    unary  := ("-" | "+" | "~") unary | atom
    atom   := NUMBER | COLUMN | "#"MACRO | "(" or ")" | "(" COLUMN "," COLUMN ")" "in" SHAPE "(" NUMBERS ")"
            | REGION "(" NUMBERS "," sum "," sum ")"           REGION: circle annulus ellipse box

The rules a user needs:

- ``&`` and ``|`` sit at the logical level, like ``&&`` and ``||`` (``and``
  binds tighter than ``or`` whatever the spelling). Their meaning follows the
  operands: between two conditions they are logical, between two integers
  they are bitwise. So ``PATTERN <= 4 & FLAG == 0`` is a logical AND and
  ``(FLAG & 0x766ba000) == 0`` is a bit test; ``FLAG & 0x766ba000 == 0``
  (a number AND a condition) is an error that shows the parenthesised form.
- CIAO range filters: ``energy=0.5:2`` keeps ``0.5 <= energy < 2`` for a
  real column and ``pi=200:12000`` keeps ``200 <= pi <= 12000`` for an
  integer one (as the CIAO data model does); an end may be left out
  (``energy=:2``, ``energy=0.5:``), ``grade=0,2:4,6`` lists alternatives and
  a comma between filters is an AND: ``energy=0.5:2,ccd_id=7``.
- ``x in [a:b]`` is ``a <= x <= b`` (inclusive, as in ``evselect``); a round
  bracket makes that end exclusive: ``(a:b]``, ``[a:b)``, ``(a:b)``. A bound
  may be left out (``[200:]``), and a list mixes ranges and values:
  ``CCDNR in [1, 3:5]``.
- Comparisons chain: ``200 <= PI < 1000`` means ``200 <= PI && PI < 1000``.
- Column names are case-insensitive (``PI``, ``pi``); numbers may be decimal,
  scientific or hexadecimal (``0x766ba000``).
- ``#NAME`` expands a header macro such as ``#XMMEA_EM`` (see
  :func:`compile_expression` for where the text is looked up).
- ``(X,Y) in circle(x0,y0,r)`` (also ``annulus``, ``ellipse``, ``box``,
  ``polygon``) tests two columns against a shape in the columns' own units, as
  ``evselect`` does; boundaries are inside. ``box(xc,yc,hx,hy,angle)`` takes
  half-widths there, as SAS selectlib documents its box ("the (x,y)
  halfwidths"; selectlib, special region filter functions).
- The CFITSIO/``ftselect`` region functions test the same shapes with the
  coordinates as the last two arguments: ``circle(xc,yc,r,X,Y)``,
  ``ellipse(xc,yc,rx,ry,angle,X,Y)`` (semi-axes), ``box(xc,yc,width,height,angle,X,Y)``
  (full sides, as CFITSIO: not the half-widths of the ``in`` form; angles in
  degrees), and ``annulus(xc,yc,r_in,r_out,X,Y)`` in the same pattern
  (CFITSIO has no annulus function). ``circle(26000,26000,100,X,Y)`` is
  ``(X,Y) in circle(26000,26000,100)``; the coordinates may be expressions
  (``X/32+0.5``), the shape's numbers must be constants. No other function
  exists: ``foo(PI)`` is an "unknown function" error, and ``gti(...)``,
  ``gtifilter(...)`` and ``regfilter(...)`` say to use ``select(gti=...)`` and
  ``select(region=...)``.
- A number used where a condition is needed is an error (write
  ``(FLAG & 4) != 0``); so is a bitwise operator on a float column.

Limits: an expression is at most :data:`MAX_LENGTH` characters and nests
parentheses, ``!`` and unary signs at most :data:`MAX_NESTING` deep; beyond
that :class:`ExpressionError` says so. Parsing is linear in the length, and
evaluation runs the compiled expression as a flat program (no recursion), so
a chain of 10,000 ``&&`` terms parses in well under a second and evaluates
like any other.

Comparisons run in the column's own dtype (a float literal is rounded to the
column's precision, so ``ENERGY >= 0.7`` keeps PI 700 in float32; a literal
beyond a float column's range, ``RATIO < 1e40`` on float32, is compared in
float64, without numpy's overflow warning), while arithmetic and bitwise operators work in int64/float64.
"""
from __future__ import annotations

import difflib
import gc
import operator
import re
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, NamedTuple

import numpy as np

from . import gti as gtimod

__all__ = ["Expression", "ExpressionError", "compile_expression", "BUILTIN_MACROS", "MAX_LENGTH", "MAX_NESTING"]

# Flag-set macros as written in the header of XMM-Newton EPIC MOS event files
# (e.g. P0001730201M1S001MIEVLI0000.FIT, SAS 18). XMMEA_n tests bit n of FLAG.
BUILTIN_MACROS: dict[str, str] = {
    "XMMEA_EM": "(FLAG & 0x766ba000) == 0",
    "XMMEA_SM": "(FLAG & 0xfffffeff) == 0",
    **{f"XMMEA_{n}": f"(FLAG & {hex(1 << n)}) != 0" for n in range(32)},
}

_SHAPES = ("circle", "annulus", "ellipse", "box", "polygon")
#: CFITSIO/ftselect region functions: name -> (count of shape numbers before X, Y; signature)
_REGION_FUNCTIONS = {
    "circle": (3, "circle(xc,yc,r,X,Y)"),
    "annulus": (4, "annulus(xc,yc,r_in,r_out,X,Y)"),
    "ellipse": (5, "ellipse(xc,yc,rx,ry,angle,X,Y)"),
    "box": (5, "box(xc,yc,width,height,angle,X,Y)"),
}
_FUNCTIONS_TEXT = ", ".join(sig for _, sig in _REGION_FUNCTIONS.values())
# functions of other filter languages that xcube does not have, and what to use instead
_UNSUPPORTED_FUNCTIONS = {
    "gti": "select by good time intervals with select(gti=...), which takes a GTI file "
           "('gti.fits', 'flt.fits[STDGTI02]'), (start, stop) or a GTI table",
    "regfilter": "select by a DS9 region file with select(region='file.reg')",
}
_UNSUPPORTED_FUNCTIONS["gtifilter"] = _UNSUPPORTED_FUNCTIONS["gti"]
_MAX_MACRO_DEPTH = 8
#: longest filter expression accepted [characters]
MAX_LENGTH = 1_000_000
#: deepest nesting of parentheses, ``!`` and unary signs (macros included)
MAX_NESTING = 64


class ExpressionError(ValueError):
    """A filter expression that does not parse or does not type-check
    (``column``: the unknown column's name, for that error, else None)."""

    column: str | None = None


# --------------------------------------------------------------------------- tokens


class _Tok(NamedTuple):
    kind: str  # "num", "name", "macro", "op", "end"
    value: str
    start: int
    end: int


_FORTRAN = {".and.": "&&", ".or.": "||", ".not.": "!", ".eq.": "==", ".ne.": "!=",
            ".lt.": "<", ".le.": "<=", ".gt.": ">", ".ge.": ">="}
_WORDS = {"and": "&&", "or": "||", "not": "!", "in": "in"}
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<fortran>\.(?:and|or|not|eq|ne|lt|le|gt|ge)\.)
  | (?P<num>0[xX][0-9a-fA-F]+ | (?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<macro>\#[A-Za-z_][A-Za-z0-9_]*)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>=!~&|()\[\]:,])
    """,
    re.VERBOSE | re.IGNORECASE,
)

_CALL_RE = re.compile(r"\s*\(")  # after a name: a function call


def _tokenize(text: str) -> list[_Tok]:
    toks, pos = [], 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise ExpressionError(_where(text, pos, f"unexpected character {text[pos]!r}"))
        kind, value = m.lastgroup, m.group()
        if kind == "name" and value.lower() not in _WORDS and _CALL_RE.match(text, m.end()):
            after_in = bool(toks) and toks[-1].kind == "op" and toks[-1].value == "in"
            _check_function(text, m.start(), value, after_in)
        elif kind == "num":
            try:
                _num_value(value)
            except ExpressionError as exc:
                msg, _, hint = str(exc).partition("; ")
                raise ExpressionError(_where(text, m.start(), msg, hint)) from None
        if kind == "fortran":
            toks.append(_Tok("op", _FORTRAN[value.lower()], m.start(), m.end()))
        elif kind == "name" and value.lower() in _WORDS:
            toks.append(_Tok("op", _WORDS[value.lower()], m.start(), m.end()))
        elif kind == "op" and value == "=":
            toks.append(_Tok("op", "==", m.start(), m.end()))
        elif kind != "ws":
            toks.append(_Tok(kind, value, m.start(), m.end()))
        pos = m.end()
    toks.append(_Tok("end", "", len(text), len(text)))
    return toks


def _check_function(text: str, pos: int, name: str, after_in: bool) -> None:
    """A name followed by ``(`` is a function call: raise for a function xcube
    does not have (checked while tokenizing, because the arguments of
    ``gti(/path/file.fits,TIME)`` or ``regfilter("a.reg")`` are not tokens).
    After ``in`` the name is a shape, which the parser checks."""
    low = name.lower()
    if low in _UNSUPPORTED_FUNCTIONS:
        raise ExpressionError(_where(text, pos, f"{low}() is not supported in filter expressions",
                                     _UNSUPPORTED_FUNCTIONS[low]))
    if not after_in and low not in _REGION_FUNCTIONS and low not in _SHAPES:
        raise ExpressionError(_where(text, pos, f"unknown function {name!r}",
                                     f"the only functions are the region tests {_FUNCTIONS_TEXT}"))


def _show(text: str, n: int = 120) -> str:
    """``repr`` of an expression, shortened in the middle when long."""
    return repr(text) if len(text) <= n else f"{text[: n // 2]!r}...{text[-n // 2:]!r} ({len(text)} characters)"


def _where(text: str, pos: int, msg: str, hint: str = "") -> str:
    """Message ``msg`` about ``text`` at ``pos`` (0-based), then ``hint`` (what
    to write instead), then a window of the text with a caret under ``pos``."""
    lo = max(0, pos - 60)
    window = text[lo:pos + 60]
    lead = "..." if lo else ""
    hint = f"; {hint}" if hint else ""
    return (f"filter expression {_show(text)}: {msg} at position {pos + 1}{hint}\n    {lead}{window}"
            f"{'...' if pos + 60 < len(text) else ''}\n    {' ' * (pos - lo + len(lead))}^")


# --------------------------------------------------------------------------- nodes


@dataclass
class _Node:
    """A typed node of the expression tree. A leaf (no ``args``) computes its
    value as ``fn(cols)``; any other node as ``fn(*values of args)``. The
    node's source text is ``src[start:end]``, sliced only when a message
    needs it (building it eagerly made parsing quadratic)."""

    kind: str  # "bool", "int", "float"
    fn: Callable
    src: str
    start: int
    end: int
    columns: frozenset = field(default_factory=frozenset)
    args: tuple = ()
    column: str | None = None  # a bare column leaf: its variable name
    value: int | float | None = None  # a number literal leaf: its value
    logic: str | None = None  # "and" / "or" for a logical node of two conditions
    compared: list | None = None  # a bare column leaf: the literals it is compared with

    @property
    def text(self) -> str:
        return self.src[self.start:self.end].strip()


def _program(root: _Node) -> list:
    """The tree as a post-order list of ``(fn, n_args)`` (n_args 0: a leaf,
    called with the columns), built without recursion."""
    out, stack = [], [(root, False)]
    while stack:
        node, ready = stack.pop()
        if ready or not node.args:
            out.append((node.fn, len(node.args)))
            continue
        stack.append((node, True))
        stack.extend((a, False) for a in reversed(node.args))
    return out


def _run(program: list, cols):
    """Evaluate a :func:`_program` on a mapping of columns (a value stack, no recursion)."""
    values = []
    for fn, n in program:
        if n == 0:
            values.append(fn(cols))
        else:
            args = values[-n:]
            del values[-n:]
            values.append(fn(*args))
    return values[0]


def _as_int(v):
    return np.asarray(v).astype(np.int64, copy=False) if isinstance(v, np.ndarray) else int(v)


def _int_operands(a, b):
    """Operands of a bitwise operator: native dtypes when a literal fits the
    column's integer dtype (fast path), otherwise int64."""
    arrays = [v for v in (a, b) if isinstance(v, np.ndarray)]
    if arrays:
        dt = np.result_type(*arrays)
        if dt.kind in "iu" and dt.itemsize <= 8:
            info = np.iinfo(dt)
            if all(info.min <= v <= info.max for v in (a, b) if not isinstance(v, np.ndarray)):
                if dt.kind == "i" or all(isinstance(v, np.ndarray) for v in (a, b)):
                    return a, b
    return _as_int(a), _as_int(b)


def _as_num(v):
    if isinstance(v, np.ndarray):
        return v.astype(np.int64 if v.dtype.kind in "iub" else np.float64, copy=False)
    return v


def _beyond(v, other) -> bool:
    """True when ``other`` is a number beyond the largest value of ``v``'s float dtype."""
    if not (isinstance(v, np.ndarray) and v.dtype.kind == "f") or isinstance(other, np.ndarray):
        return False
    x = float(other)
    return np.isfinite(x) and abs(x) > float(np.finfo(v.dtype).max)


def _compare(op, a, b):
    """``op(a, b)`` in the column's dtype; a constant beyond a float column's
    range (``float32 < 1e40``) is compared in float64 instead of cast to
    inf (numpy's "overflow encountered in cast" warning), same result."""
    if _beyond(a, b):
        a = a.astype(np.float64)
    elif _beyond(b, a):
        b = b.astype(np.float64)
    return op(a, b)


_CMP = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "%": operator.mod}


class _Parser:
    def __init__(self, text: str, dtypes: Mapping[str, np.dtype], aliases: Mapping[str, str], macros, depth: int,
                 nesting: int = 0):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.dtypes = dtypes
        self.aliases = aliases
        self.macros = macros
        self.depth = depth
        self.nesting = nesting
        self.comparisons: list[tuple[str, int | float]] = []  # (column, literal) compared directly

    # -- helpers
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def _next(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def _is(self, *ops) -> bool:
        return self.tok.kind == "op" and self.tok.value in ops

    def _expect(self, op: str) -> _Tok:
        if not self._is(op):
            got = "the end" if self.tok.kind == "end" else repr(self.tok.value)
            raise self._err(f"expected {op!r} but found {got}")
        return self._next()

    def _err(self, msg: str, pos: int | None = None, hint: str = "") -> ExpressionError:
        return ExpressionError(_where(self.text, self.tok.start if pos is None else pos, msg, hint))

    def _span(self, start: int) -> str:
        return self.text[start:self.toks[self.i - 1].end].strip()

    def _node(self, kind: str, fn: Callable, start: int, args: tuple = (), columns=None) -> _Node:
        """A node spanning ``start`` to the end of the last token read."""
        if columns is None:
            columns = frozenset().union(*(a.columns for a in args)) if args else frozenset()
        return _Node(kind, fn, self.text, start, self.toks[self.i - 1].end, columns, args)

    def _deeper(self) -> None:
        """Count one more level of nesting (parenthesis, ``!``, unary sign)."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self._err(f"nested more than {MAX_NESTING} levels deep (parentheses, '!' or signs); "
                            "flatten the expression, e.g. a && b && c instead of (a && (b && c))")

    @property
    def quoted(self) -> str:
        return _show(self.text)

    def _compared(self, x: _Node, *values) -> None:
        """Record the literals a bare column is compared with (``Expression.comparisons``, and on the leaf)."""
        if x.column is not None:
            self.comparisons.extend((x.column, v) for v in values if v is not None)
            x.compared = (x.compared or []) + [v for v in values if v is not None]

    def _need_bool(self, node: _Node, op: str) -> None:
        if node.kind != "bool":
            raise ExpressionError(
                f"filter expression {self.quoted}: {op!r} needs conditions, but {_show(node.text)} is a number; "
                f"compare it, e.g. ({node.text}) != 0"
            )

    # -- grammar
    def parse(self) -> _Node:
        node = self.or_()
        if self.tok.kind != "end":
            raise self._err(f"unexpected {self.tok.value!r}")
        return node

    def or_(self) -> _Node:
        start = self.tok.start
        node = self.and_()
        while self._is("||", "|"):
            op = self._next().value
            rhs = self.and_()
            node = self._logical(node, rhs, op, start)
        return node

    def and_(self) -> _Node:
        start = self.tok.start
        node = self.not_()
        while self._is("&&", "&", ","):
            op = self._next().value
            rhs = self.not_()
            node = self._logical(node, rhs, "&&" if op == "," else op, start)  # CIAO: a comma joins filters
        return node

    def _logical(self, a: _Node, b: _Node, op: str, start: int) -> _Node:
        if op in ("&", "|") and a.kind == "int" and b.kind == "int":
            f = operator.and_ if op == "&" else operator.or_
            return self._node("int", lambda va, vb: f(*_int_operands(va, vb)), start, (a, b))
        if a.kind == "bool" and b.kind == "bool":
            f = operator.and_ if op in ("&", "&&") else operator.or_
            node = self._node("bool", f, start, (a, b))
            node.logic = "and" if op in ("&", "&&") else "or"
            return node
        text = self._span(start)
        if op in ("&", "|") and "bool" in (a.kind, b.kind):
            num = a if a.kind != "bool" else b
            if num.kind == "float":
                raise ExpressionError(f"filter expression {self.quoted}: {op!r} joins a condition and the number "
                                      f"{_show(num.text)}; compare the number first")
            # the usual slip: FLAG & 0x766ba000 == 0
            raise ExpressionError(
                f"filter expression {self.quoted}: {op!r} joins a number and a condition in {_show(text)}. "
                f"A bitwise test needs parentheses, e.g. ({a.text} {op} <mask>) == 0; "
                f"a logical {'AND' if op == '&' else 'OR'} needs two conditions"
            )
        if op in ("&", "|"):  # int with float
            bad = a if a.kind == "float" else b
            raise ExpressionError(f"filter expression {self.quoted}: bitwise {op!r} needs integers, "
                                  f"but {_show(bad.text)} is a float")
        self._need_bool(a if a.kind != "bool" else b, op)
        raise AssertionError("unreachable")

    def not_(self) -> _Node:
        if self._is("!"):
            start = self._next().start
            self._deeper()
            inner = self.not_()
            self.nesting -= 1
            self._need_bool(inner, "!")
            return self._node("bool", np.logical_not, start, (inner,))
        return self.cmp()

    def cmp(self) -> _Node:
        start = self.tok.start
        first = self.sum()
        if self._is("in"):
            self._next()
            return self._ranges(first, start)
        if self._is("==") and self._ciao_ahead():
            self._next()
            return self._ciao_ranges(first, start)
        terms, ops = [first], []
        while self._is(*_CMP):
            ops.append(self._next().value)
            terms.append(self.sum())
        if not ops:
            return first
        for k, op in enumerate(ops):
            a, b = terms[k], terms[k + 1]
            if (a.kind == "bool") != (b.kind == "bool") or (a.kind == "bool" and op not in ("==", "!=")):
                raise ExpressionError(
                    f"filter expression {self.quoted}: cannot use {op!r} between {_show(a.text)} and {_show(b.text)}"
                    + ("; did you mean (X & mask) == 0? A bitwise test needs parentheses"
                       if "&" in a.text or "|" in a.text else "")
                )
        for a, b in zip(terms, terms[1:]):
            if a.column is not None and b.value is not None:
                self._compared(a, b.value)
            elif b.column is not None and a.value is not None:
                self._compared(b, a.value)
        funcs = [_CMP[o] for o in ops]

        def f(*vals):
            out = _compare(funcs[0], vals[0], vals[1])
            for k in range(1, len(funcs)):
                out = out & _compare(funcs[k], vals[k], vals[k + 1])
            return out

        return self._node("bool", f, start, tuple(terms))

    def _number(self) -> float | int:
        sign = 1
        while self._is("-", "+"):
            if self._next().value == "-":
                sign = -sign
        t = self.tok
        if t.kind != "num":
            raise self._err(f"expected a number but found {t.value!r}" if t.kind != "end" else "expected a number")
        self._next()
        return sign * _num_value(t.value)

    def _range_item(self, hi_follows):
        """One item of a range list, ``lo``, ``lo:hi``, ``:hi``, ``lo:`` or ``:``, as
        ``(lo, hi, is_range)`` (None for a bound left out; ``hi`` None for a single
        value). ``hi_follows()``, asked after the colon, says whether an upper bound
        is written. An item whose lower bound is above its upper bound is an error."""
        lo = hi = None
        if not self._is(":"):
            lo = self._number()
        is_range = self._is(":")
        if is_range:
            self._next()
            if hi_follows():
                hi = self._number()
        if lo is not None and hi is not None and lo > hi:
            raise self._err(f"empty range: lower bound {lo} is above upper bound {hi}")
        return lo, hi, is_range

    def _ranges(self, x: _Node, start: int) -> _Node:
        if x.kind == "bool":
            raise self._err(f"'in' needs a number on its left, {_show(x.text)} is a condition")
        if not self._is("[", "("):
            raise self._err("expected a range such as [200:12000] after 'in'")
        first_closed = self._next().value == "["
        items = []  # [lo, hi, is_range]; end brackets apply to the first low and last high bound
        while True:
            lo, hi, is_range = self._range_item(lambda: not self._is("]", ")", ","))
            items.append([lo, hi if is_range else lo, is_range])
            if self._is(","):
                self._next()
                continue
            if not self._is("]", ")"):
                raise self._err("expected ']' or ')' to close the range")
            last_closed = self._next().value == "]"
            break
        self._compared(x, *(v for lo, hi, _ in items for v in (lo, hi)))
        tests = [(lo, True, hi, True, r) for lo, hi, r in items]
        tests[0] = (tests[0][0], first_closed) + tests[0][2:]
        tests[-1] = tests[-1][:3] + (last_closed, tests[-1][4])
        for lo, lo_c, hi, hi_c, r in tests:
            if not r and not (lo_c and hi_c):
                raise self._err(f"a single value {lo} cannot have an open bracket; write [{lo}]")
        def f(v):
            out = None
            for lo, lo_c, hi, hi_c, is_range in tests:
                if not is_range:
                    m = _compare(operator.eq, v, lo)
                else:
                    m = True
                    if lo is not None:
                        m = m & _compare(operator.ge if lo_c else operator.gt, v, lo)
                    if hi is not None:
                        m = m & _compare(operator.le if hi_c else operator.lt, v, hi)
                    if m is True:
                        m = np.ones(np.shape(v), dtype=bool) if isinstance(v, np.ndarray) else True
                out = m if out is None else (out | m)
            return out

        return self._node("bool", f, start, (x,))

    def _ahead(self, k: int) -> _Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def _number_at(self, k: int) -> int:
        """Offset past a (signed) number starting ``k`` tokens ahead, or 0 if there is none."""
        j = k
        while self._ahead(j).kind == "op" and self._ahead(j).value in ("-", "+"):
            j += 1
        return j + 1 if self._ahead(j).kind == "num" else 0

    def _ciao_ahead(self) -> bool:
        """After ``=``: a CIAO range list (``0.5:2``, ``:2``, ``200:``, ``0,2:4,6``)?"""
        if self._ahead(1).kind == "op" and self._ahead(1).value == ":":
            return True
        j = self._number_at(1)
        return bool(j) and self._ahead(j).kind == "op" and self._ahead(j).value in (":", ",")

    def _next_filter_ahead(self) -> bool:
        """At a ``,`` of a CIAO list: does a new filter (not another value) follow?"""
        nxt = self._ahead(1)
        return not (nxt.kind == "num" or (nxt.kind == "op" and nxt.value in (":", "-", "+")))

    def _ciao_ranges(self, x: _Node, start: int) -> _Node:
        """CIAO range list after ``col=``: ``lo:hi`` is ``lo <= col < hi`` for a
        real column and ``lo <= col <= hi`` for an integer one (as the CIAO
        data model filters), an end may be left out, a single value tests
        equality, and commas separate alternatives."""
        if x.kind == "bool":
            raise self._err(f"a range needs a number on its left, {_show(x.text)} is a condition")
        items = []
        while True:
            lo, hi, is_range = self._range_item(lambda: self._number_at(0))
            if is_range and lo is None and hi is None:
                raise self._err("a range needs at least one bound, e.g. 0.5:2, :2 or 0.5:")
            items.append((lo, hi, is_range))
            if self._is(",") and not self._next_filter_ahead():
                self._next()
                continue
            break
        self._compared(x, *(v for lo, hi, _ in items for v in (lo, hi)))
        closed_hi = x.kind == "int"

        def f(v):
            out = None
            for lo, hi, is_range in items:
                m = _compare(operator.eq, v, lo) if not is_range else np.ones(np.shape(v), dtype=bool)
                if is_range and lo is not None:
                    m = m & _compare(operator.ge, v, lo)
                if is_range and hi is not None:
                    m = m & _compare(operator.le if closed_hi else operator.lt, v, hi)
                out = m if out is None else (out | m)
            return out

        return self._node("bool", f, start, (x,))

    def sum(self) -> _Node:
        start = self.tok.start
        node = self.prod()
        while self._is("+", "-"):
            op = self._next().value
            node = self._arith(node, self.prod(), op, start)
        return node

    def prod(self) -> _Node:
        start = self.tok.start
        node = self.unary()
        while self._is("*", "/", "%"):
            op = self._next().value
            node = self._arith(node, self.unary(), op, start)
        return node

    def _arith(self, a: _Node, b: _Node, op: str, start: int) -> _Node:
        for n in (a, b):
            if n.kind == "bool":
                raise ExpressionError(
                    f"filter expression {self.quoted}: {op!r} needs numbers, {_show(n.text)} is a condition"
                )
        kind = "float" if op == "/" or "float" in (a.kind, b.kind) else "int"
        f = _ARITH[op]
        return self._node(kind, lambda va, vb: f(_as_num(va), _as_num(vb)), start, (a, b))

    def unary(self) -> _Node:
        if self._is("-", "+", "~"):
            t = self._next()
            self._deeper()
            inner = self.unary()
            self.nesting -= 1
            if inner.kind == "bool":
                raise ExpressionError(f"filter expression {self.quoted}: {t.value!r} needs a number, "
                                      f"{_show(inner.text)} is a condition (use '!' to negate a condition)")
            if t.value == "~":
                if inner.kind != "int":
                    raise ExpressionError(
                        f"filter expression {self.quoted}: '~' needs an integer, {_show(inner.text)} is a float"
                    )
                return self._node("int", lambda v: ~_as_int(v), t.start, (inner,))
            if t.value == "-":
                return self._node(inner.kind, lambda v: -_as_num(v), t.start, (inner,))
            return inner
        return self.atom()

    def atom(self) -> _Node:
        t = self.tok
        if t.kind == "num":
            self._next()
            v = _num_value(t.value)
            node = self._node("int" if isinstance(v, int) else "float", lambda c, v=v: v, t.start)
            node.value = v
            return node
        if t.kind == "name":
            if self._ahead(1).kind == "op" and self._ahead(1).value == "(":
                return self._call()
            self._next()
            return self._column(t)
        if t.kind == "macro":
            self._next()
            return self._macro(t)
        if self._is("("):
            if self._pair_ahead():
                return self._shape()
            self._next()
            self._deeper()
            node = self.or_()
            self._expect(")")
            self.nesting -= 1
            return replace(node, src=self.text, start=t.start, end=self.toks[self.i - 1].end)
        if t.kind == "end":
            raise self._err("the expression ends too early")
        raise self._err(f"unexpected {t.value!r}")

    def _column(self, t: _Tok) -> _Node:
        name = resolve_column(t.value, self.dtypes, self.aliases, context=f"filter expression {self.quoted}")
        kind = {"b": "bool", "i": "int", "u": "int", "f": "float"}.get(np.dtype(self.dtypes[name]).kind)
        if kind is None:
            raise ExpressionError(f"filter expression {self.quoted}: column {name!r} has dtype "
                                  f"{self.dtypes[name]}, which cannot be filtered")
        return _Node(kind, lambda c, n=name: c[n], self.text, t.start, t.end, frozenset([name]), column=name)

    def _macro(self, t: _Tok) -> _Node:
        name = t.value[1:]
        if self.depth >= _MAX_MACRO_DEPTH:
            raise ExpressionError(f"filter expression {self.quoted}: macro {t.value} nests too deeply (a loop?)")
        body = self.macros(name) if self.macros is not None else None
        if body is None:
            raise ExpressionError(
                f"filter expression {self.quoted}: unknown macro {t.value}: no header keyword {name} in the "
                f"events' attrs or source file, and not a built-in "
                f"({', '.join(sorted(k for k in BUILTIN_MACROS if not k[-1].isdigit()))}). "
                "Write the flag test out, e.g. (FLAG & 0x766ba000) == 0"
            )
        try:  # tokenizing the body may fail too
            sub = _Parser(str(body), self.dtypes, self.aliases, self.macros, self.depth + 1, self.nesting)
            node = sub.parse()
        except ExpressionError as exc:
            raise ExpressionError(
                f"filter expression {self.quoted}: macro {t.value} = {body!r} is invalid: {exc}"
            ) from None
        self.comparisons.extend(sub.comparisons)
        return replace(node, src=self.text, start=t.start, end=t.end)

    def _pair_ahead(self) -> bool:
        k = self.toks[self.i:self.i + 6]
        return (len(k) == 6 and k[1].kind == "name" and k[2].value == "," and k[3].kind == "name"
                and k[4].value == ")" and k[5].kind == "op" and k[5].value == "in")

    def _shape(self) -> _Node:
        start = self._next().start  # "("
        cx = self._column(self._next())
        self._next()  # ","
        cy = self._column(self._next())
        self._next(), self._next()  # ")" "in"
        st = self.tok
        if st.kind != "name" or st.value.lower() not in _SHAPES:
            raise self._err(f"expected a shape ({', '.join(_SHAPES)}) after 'in'",
                            hint="or use select(region=...), also for DS9 files")
        self._next()
        self._expect("(")
        args = [self._number()]
        while self._is(","):
            self._next()
            args.append(self._number())
        self._expect(")")
        for n in (cx, cy):
            if n.kind == "bool":
                raise self._err(f"column {_show(n.text)} is boolean, not a coordinate", pos=start)
        shape = st.value.lower()
        if shape == "box" and len(args) >= 4:  # SAS selectlib: box(xCenter,yCenter,xHalfWidth,yHalfWidth,rotation)
            args = args[:2] + [2.0 * args[2], 2.0 * args[3]] + args[4:]  # -> DS9's full sides
        return self._region_node(shape, args, st.start, start, (cx, cy))

    def _region_node(self, shape: str, args, shape_start: int, start: int, coords) -> _Node:
        """Boolean node: the coordinate nodes ``coords`` inside the DS9 ``shape``
        with numbers ``args`` (boundaries inside, :meth:`RegionSet.contains`)."""
        from .regions import RegionSet

        bad = [a for a in args if not np.isfinite(a)]
        if bad:
            raise self._err(f"bad shape {self._span(shape_start)!r}: its numbers must be finite, not {bad[0]}",
                            pos=shape_start)
        ds9 = f"physical;{shape}({','.join(repr(float(a)) for a in args)})"
        try:
            reg = RegionSet.from_ds9(ds9)
        except ValueError as exc:
            raise self._err(f"bad shape {self._span(shape_start)!r}: {exc}", pos=shape_start) from None
        return self._node("bool", reg.contains, start, tuple(coords))

    def _call(self) -> _Node:
        """A CFITSIO/ftselect region function, ``circle(xc,yc,r,X,Y)`` and the
        others of ``_REGION_FUNCTIONS``: the shape's numbers (constants), then
        the two coordinates (numeric expressions). Same test as ``(X,Y) in shape(...)``."""
        t = self._next()
        name = t.value.lower()
        if name not in _REGION_FUNCTIONS:  # polygon: only after 'in' (the tokenizer refused the rest)
            raise self._err(f"{name}() is not a function", pos=t.start, hint=f"write (X,Y) in {name}(x1,y1,x2,y2,...)")
        n_shape, signature = _REGION_FUNCTIONS[name]
        self._expect("(")
        args = []
        while True:
            self._deeper()
            args.append(self.sum())
            self.nesting -= 1
            if not self._is(","):
                break
            self._next()
        if not self._is(")"):
            got = "the end" if self.tok.kind == "end" else repr(self.tok.value)
            raise self._err(f"expected ',' or ')' in {name}(...) but found {got}", hint=f"write {signature}")
        self._next()
        if len(args) != n_shape + 2:
            raise self._err(f"{name}() takes {n_shape + 2} arguments but has {len(args)}", pos=t.start,
                            hint=f"write {signature}")
        params = signature[len(name) + 1:-1].split(",")
        numbers = []
        for k, a in enumerate(args[:n_shape]):
            if a.columns or a.kind == "bool":
                what = "a condition" if a.kind == "bool" else "not a constant"
                raise self._err(f"argument {k + 1} of {name}() ({params[k]}) must be a number, "
                                f"{_show(a.text)} is {what}", pos=a.start, hint=f"write {signature}")
            try:
                numbers.append(float(_run(_program(a), {})))
            except (ArithmeticError, ValueError) as exc:
                raise self._err(f"argument {k + 1} of {name}() ({params[k]}) cannot be computed: {exc}",
                                pos=a.start) from None
        for k, a in enumerate(args[n_shape:], start=n_shape):
            if a.kind == "bool":
                raise self._err(f"argument {k + 1} of {name}() ({params[k]}) is a condition, not a coordinate",
                                pos=a.start, hint=f"write {signature}")
        return self._region_node(name, numbers, t.start, t.start, args[n_shape:])


def _num_value(s: str) -> int | float:
    if s[:2].lower() == "0x":
        v = int(s, 16)
    elif re.fullmatch(r"\d+", s):
        v = int(s)
    else:
        return float(s)
    if v >= 2**63:
        raise ExpressionError(f"number {s} does not fit in a 64-bit integer (at most {2**63 - 1}); "
                              "write a float, e.g. 1e20, to compare with larger values")
    return v


def resolve_column(name: str, dtypes: Mapping, aliases: Mapping[str, str] | None = None, context: str = "") -> str:
    """Variable name of a column given in any case (``PI`` -> ``pi``), also
    through ``aliases`` (file column name -> variable, lower case). Raises a
    ``ValueError`` naming the column and listing the available ones."""
    low = name.lower()
    by_lower = {k.lower(): k for k in dtypes}
    if low in by_lower:
        return by_lower[low]
    if aliases and low in aliases and aliases[low] in dtypes:
        return aliases[low]
    avail = sorted(dtypes)
    starts = [k for k in by_lower if k.startswith(low)]  # an abbreviation (PAT -> pattern) first
    near = starts if len(starts) == 1 else difflib.get_close_matches(low, list(by_lower), n=1)
    hint = f"; did you mean {by_lower[near[0]]!r}?" if near else ""
    prefix = f"{context}: " if context else ""
    err = ExpressionError(f"{prefix}unknown column {name!r}{hint} Available columns: {', '.join(avail)}")
    err.column = name  # for callers that explain why the column is needed
    raise err


@dataclass
class Expression:
    """A compiled filter expression.

    ``columns`` are the variables it reads; ``evaluate(cols)`` takes a mapping
    variable -> numpy array (one block of events) and returns a boolean array
    of the same length. Pure numpy, so it runs inside ``dask.map_blocks``.
    """

    text: str
    columns: frozenset
    _program: list
    comparisons: tuple = ()
    """``(column, number)`` pairs: the literals a bare column is compared
    with (``energy=500:7000`` gives ``("energy", 500), ("energy", 7000)``),
    for cheap plausibility checks of the constants (units) by callers."""
    time_terms: tuple = ()
    """The top-level AND terms that read only ``time``, each compared with
    literals only: ``(program, sorted literals)`` (:meth:`time_intervals`)."""
    time_mixed: tuple = ()
    """The text of every other top-level AND term that reads ``time`` (with
    other columns, or through arithmetic): a time cut whose good time cannot
    be derived (callers refuse it where exposure matters)."""
    value_terms: tuple = ()
    """``(variable, program, sorted literals)`` of the top-level AND terms
    that read only ``pi`` or only ``energy``, each compared with literals
    (:meth:`value_set`: the energy band a filter expression cuts)."""

    def time_intervals(self, t0: float, t1: float):
        """``(start, stop)`` [s] arrays of the times within ``[t0, t1)`` that
        the ``time`` terms let pass (their intersection), or None when no term
        reads ``time`` alone. Exact: such a term is constant between its
        literals, so it is evaluated once inside each gap (the literals
        themselves have no duration). Eager, tiny."""
        return _intervals(self.time_terms, "time", t0, t1)

    def value_set(self, var: str, lo: float, hi: float):
        """The values of ``var`` (``"pi"`` or ``"energy"``) within ``[lo, hi]``
        that every term of :attr:`value_terms` reading ``var`` lets pass, as
        ``(points, start, stop)``: the single values that pass (a literal, or
        ``lo``/``hi``) and the open intervals ``(start, stop)`` between them
        that pass, float64 arrays in increasing order; None without such a
        term. Exact: the terms are constant between their literals, so each is
        evaluated once inside each gap and once at each literal (unlike good
        time, a value passes on its own: ``PI == 1000`` is a whole channel).
        Eager, tiny."""
        if not any(v == var for v, _, _ in self.value_terms):
            return None
        cuts = {c for v, _, literals in self.value_terms if v == var for c in literals if lo < c < hi}
        pts = np.array(sorted(cuts | {float(lo), float(hi)}), np.float64)
        on, between = self.value_passes(var, pts), self.value_passes(var, 0.5 * (pts[:-1] + pts[1:]))
        return pts[on], pts[:-1][between], pts[1:][between]

    def value_passes(self, var: str, values) -> np.ndarray:
        """Whether every term of :attr:`value_terms` reading ``var`` lets
        ``values`` pass (bool array of their shape; all True without such a
        term): to tell whether an interval's ends are in or out. Eager, tiny."""
        v = np.asarray(values, np.float64)
        ok = np.ones(v.shape, bool)
        for name, prog, _ in self.value_terms:
            if name == var:
                ok &= np.broadcast_to(np.asarray(_run(prog, {var: v}), bool), v.shape)
        return ok

    def evaluate(self, cols: Mapping[str, np.ndarray], n: int | None = None) -> np.ndarray:
        """Boolean mask for one block of events (``n`` = block length, used when
        the expression reads no column). Runs the compiled program iteratively,
        so the depth of the expression never meets Python's recursion limit."""
        out = _run(self._program, cols)
        if n is None:
            n = len(next(iter(cols.values()))) if cols else 1
        return (
            np.broadcast_to(np.asarray(out, dtype=bool), (n,)).copy()
            if np.ndim(out) == 0
            else np.asarray(out, dtype=bool)
        )

    def __repr__(self) -> str:
        return f"Expression({_show(self.text)}, columns={sorted(self.columns)})"


def _intervals(terms, var: str, t0: float, t1: float):
    """The values of ``var`` within ``[t0, t1)`` that every ``(program,
    literals)`` term lets pass, as ``(start, stop)`` arrays, or None without
    terms (see :meth:`Expression.time_intervals`)."""
    if not terms:
        return None
    out = [(np.array([t0], np.float64), np.array([t1], np.float64))]
    for program, cuts in terms:
        c = np.asarray(cuts, np.float64)
        lo = np.concatenate([[min(t0, c[0] - 1.0)], c])  # the gaps between the literals, the outer
        hi = np.concatenate([c, [max(t1, c[-1] + 1.0)]])  # ones wide enough to cover [t0, t1)
        ok = np.broadcast_to(np.asarray(_run(program, {var: 0.5 * (lo + hi)}), bool), lo.shape)
        out.append((lo[ok], hi[ok]))
    return gtimod.intersection(*out)


def _time_terms(root: _Node, var: str = "time") -> tuple[tuple, tuple]:
    """``(time_terms, time_mixed)`` of :class:`Expression` from the tree."""
    terms, stack = [], [root]
    while stack:  # the top-level conjuncts, in order
        node = stack.pop()
        if node.logic == "and":
            stack.extend(reversed(node.args))
        else:
            terms.append(node)
    only, mixed = [], []
    for term in terms:
        if var not in term.columns:
            continue
        leaves, walk = [], [term]
        while walk:
            node = walk.pop()
            walk.extend(node.args)
            if node.column == var:
                leaves.append(node)
        if term.columns == {var} and all(leaf.compared for leaf in leaves):
            only.append((_program(term), tuple(sorted({float(v) for leaf in leaves for v in leaf.compared}))))
        else:
            mixed.append(term.text)
    return tuple(only), tuple(mixed)


def compile_expression(
    text: str,
    dtypes: Mapping[str, np.dtype],
    aliases: Mapping[str, str] | None = None,
    macros: Callable[[str], str | None] | Mapping[str, str] | None = None,
) -> Expression:
    """Parse and type-check a filter string (eager, no data read).

    Parameters
    ----------
    text : the filter, e.g. ``"PATTERN <= 12 && (FLAG & 0x766ba000) == 0 && PI in [200:12000]"``.
    dtypes : variable name -> dtype of the available event columns.
    aliases : extra names (lower case) -> variable, e.g. a mission's file
        column names for renamed columns.
    macros : ``#NAME`` lookup, a mapping or a function returning the macro's
        filter text or None; :data:`BUILTIN_MACROS` are tried last.

    Raises :class:`ExpressionError` (a ``ValueError``) with the position of a
    syntax error, the unknown column and the available ones, or the type
    mistake and its fix.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"filter expression must be a non-empty string, got {text!r}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"filter expression of {len(text):,} characters is longer than the limit of {MAX_LENGTH:,}; "
            "select long lists of values with a range (PI in [200:12000]), a region file or a GTI instead"
        )
    if isinstance(macros, Mapping):
        table = {k.upper(): v for k, v in macros.items()}
        lookup = lambda name: table.get(name.upper())  # noqa: E731
    else:
        lookup = macros

    def resolve(name):
        v = lookup(name) if lookup is not None else None
        return v if v is not None else BUILTIN_MACROS.get(name.upper())

    aliases = {k.lower(): v for k, v in (aliases or {}).items()}
    collecting = gc.isenabled()
    gc.disable()  # parsing makes many small objects and no cycles: the collector's passes would dominate
    try:
        parser = _Parser(text.strip(), dict(dtypes), aliases, resolve, 0)
        node = parser.parse()
    except RecursionError:  # a safety net: MAX_NESTING keeps the parser well inside the limit
        raise ExpressionError(f"filter expression {_show(text)} nests too deeply to parse; flatten it") from None
    finally:
        if collecting:
            gc.enable()
    if node.kind != "bool":
        raise ExpressionError(
            f"filter expression {_show(text)} gives numbers, not a condition; compare it, e.g. ({text.strip()}) != 0"
        )
    values = tuple((var, prog, cuts) for var in ("pi", "energy") for prog, cuts in _time_terms(node, var)[0])
    return Expression(text.strip(), node.columns, _program(node), tuple(parser.comparisons),
                      *_time_terms(node), values)
