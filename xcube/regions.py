"""Spatial regions on event lists: DS9 strings or files, or ``regions`` objects.

A region is turned into a :class:`RegionSet` of pixel shapes in the frame of
the events' sky columns, then tested against the ``x``/``y`` columns.

Pixel convention
----------------
Pixel shapes live in the frame of ``xcube.wcs(events)``, whose pixel
coordinates *are* the X/Y column values (see :mod:`xcube.skycoords`):

- DS9 ``physical`` coordinates are the column values (XMM sky pixels of
  0.05 arcsec), so they are used as they are. (The ``regions`` DS9 reader does
  not know ``physical``; xcube reads such shapes as ``image`` and undoes the
  reader's 1-based to 0-based shift.) DS9 ``image`` coordinates are taken the
  same way, with a warning: for an event file they only agree with the
  columns when DS9 binned the image with block 1 from pixel 1.
- A region string without a coordinate system is ``physical`` (DS9's default).
- Sky shapes go through ``SkyRegion.to_pixel(xcube.wcs(events))``; the
  angle of a box or ellipse in a non-equatorial frame (galactic, ecliptic)
  then turns by the angle between its frame's north and the WCS frame's
  (:func:`_frame_rotation`), since DS9 measures it from its own frame's.
- A ``regions`` PixelRegion object is taken in that same frame (column
  values), e.g. the output of ``sky_region.to_pixel(xcube.wcs(ev))``.
- Events are tested at their ``x``, ``y`` column values.

Include and exclude
-------------------
Shapes marked with ``-`` (``-circle(...)``, or ``meta["include"] = False``)
are exclusions. The selected area is the union of the included shapes minus
the union of the excluded ones; with exclusions only, it is everything outside
them. Boundaries count as inside, as in ``evselect``.

Boundaries
----------
A point on the boundary of a shape is inside it, whatever the shape's
rotation. Circles, ellipses, boxes and their annuli are tested here
(:func:`_covers`), not with ``regions``' ``covers``, because floating-point
rounding put exact boundary points just outside a rotated shape
(``cos(90 deg)`` is 6e-17, not 0: ``box(26000,26000,10,4,90)`` lost the
events on its edges). The rotation angle is reduced modulo 360 degrees and
its cosine and sine are exact for multiples of 90 degrees, and a point within
``BOUNDARY_ULPS`` (16) units in the last place of the shape's scale of the
boundary counts as on it: a tolerance of ``16 * 2.2e-16 * max(|x0|, |y0|,
size)`` pixels (``x0``, ``y0`` the centre, ``size`` the largest diameter or
side), about 1e-10 pixel at X, Y ~ 26000. The inner boundary of an annulus
is part of the annulus. Polygons use ``regions``' ``covers``, which takes a
point within 1e-10 pixel of an edge as on it (and has no angle to round).
"""
from __future__ import annotations

import logging
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["RegionSet", "pixel_region", "region_mask", "region_area", "region_coverage", "region_areas",
           "detector_footprint", "Footprint", "Coverage", "events_wcs"]

log = logging.getLogger("xcube.select")

_SKY_FRAMES = {"fk4", "fk5", "icrs", "galactic", "ecliptic", "j2000", "b1950"}
_PIXEL_FRAMES = {"physical", "image"}
_BAD_FRAMES = {"linear", "amplifier", "detector", "tile"}
_SHAPE_RE = re.compile(r"^[+-]?\s*([A-Za-z]+)\s*\(")
_DS9_SHAPES = {"circle", "ellipse", "box", "rotbox", "polygon", "annulus", "point", "line", "vector",
               "text", "ruler", "compass", "projection", "panda", "epanda", "bpanda", "segment", "pie"}
_MAX_REGION_BYTES = 16 * 2**20
# one argument of a DS9 shape in the space-separated form: a number (17.5, 1e-3), sexagesimal
# (17:34:46.3, -32:33:17) or h/d-m-s (17h34m46.3s, -32d33m17s), with an optional unit (" ' d r p i)
_DS9_ARG_RE = re.compile(r"[+-]?(?:\d+[hd]\d+m\d+(?:\.\d*)?s|\d+:\d+(?::\d+(?:\.\d*)?)?"
                         r"|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[\"'drpi]?")
_SPACE_SHAPE_RE = re.compile(r"^([+-]?)\s*([A-Za-z]+)\s+(\S.*)$")
# a box or ellipse (or their annuli) without its angle: an even number of arguments, 4 or more
_BOX_NO_ANGLE_RE = re.compile(r"^([+-]?\s*(?:box|ellipse)\s*\([^(),]+,[^(),]+(?:,[^(),]+,[^(),]+)+)\)",
                              re.IGNORECASE)
# a file name with a suffix and no DS9 shape (rf/src(1).reg): not a region string
_FILE_NAME_RE = re.compile(r"[^;\n]*\.[A-Za-z]\w*")
_NO_AREA = (
    "PointPixelRegion",
    "LinePixelRegion",
    "TextPixelRegion",
    "PointSkyRegion",
    "LineSkyRegion",
    "TextSkyRegion",
)


# --------------------------------------------------------------------------- WCS


def events_wcs(obj):
    """``astropy.wcs.WCS`` whose pixel coordinates are the ``x``/``y`` column
    values: ``xcube.wcs(obj)``. (Until :mod:`xcube.skycoords` exists, an
    equivalent built here from the CTYPEn/CRVALn/CRPIXn/CDELTn, PCi_j,
    RADESYS and EQUINOX attrs.) For a grid whose attrs hold the WCS of its *cells*
    (``bin_events``, ``xcube.image``, the search's cubes), the column WCS is
    derived from it (:func:`_cell_grid_attrs`). Raises ``ValueError`` naming
    the missing attrs. Eager (attrs only; no event is read)."""
    try:
        from .skycoords import wcs as _wcs
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.skycoords":
            raise
        _wcs = _fallback_wcs
    try:
        return _wcs(_cell_grid_attrs(obj))
    except KeyError as exc:
        raise ValueError(f"{exc.args[0] if exc.args else exc}; sky regions need the X/Y column WCS, "
                         "use a physical region instead") from None


def _cell_grid_attrs(obj):
    """``obj``, or for a grid (1-D ``x``/``y`` coordinates: cell centres in
    column units) whose attrs carry the WCS of its cells (marked by
    ``WCSAXES``, as :func:`xcube.binning.sky.cell_wcs_keywords` writes it) a
    ``Dataset`` whose attrs are the column WCS: cells of width ``w`` give
    ``CDELT = CDELT_cell / w`` and ``CRPIX = x0 + (CRPIX_cell - 1 - k) w``
    (a rotation ``PCi_j`` of cells ``w_x`` by ``w_y``: ``PC_cell_ij w_i / w_j``),
    ``x0`` the first centre, ``k`` its cell index in the binned grid (0 for
    the grid's own cells, or a cut-out's offset from its ``ra``/``dec``
    coordinates). With the ``x_ref_pixel``/``y_ref_pixel`` anchors
    (:func:`xcube.binning.sky.cell_wcs_keywords`) ``CRPIX`` is the anchor
    and ``w`` the binned cells' width (their edges'), whatever cells are
    present: a stepped, flipped or coarsened grid or a list index is placed
    by its centres. Eager, cheap."""
    from .binning.sky import cell_width

    grid = _grid_coords(obj)
    a = getattr(obj, "attrs", {})
    if grid is None or "WCSAXES" not in a or any(f"{k}{i}" not in a for k in ("CRPIX", "CDELT") for i in (1, 2)):
        return obj
    k = (0, 0)
    anchored = "x_ref_pixel" in a and "y_ref_pixel" in a
    if not anchored and "ra" in obj.coords and "dec" in obj.coords and obj["ra"].size:
        from .binning import cube_wcs

        pix = cube_wcs(obj).wcs_world2pix(float(obj["ra"].values.flat[0]), float(obj["dec"].values.flat[0]), 0)
        k = tuple(int(round(float(v))) for v in pix)
    out, widths = dict(a), {}
    for i, c, ki in ((1, grid[0], k[0]), (2, grid[1], k[1])):
        v = np.asarray(c.values, np.float64)
        w = cell_width(obj, c.name)
        if w is None:
            raise ValueError(f"{a.get('source', 'grid')}: the {c.name} cell width is unknown (fewer than two cells "
                             f"and no {c.name}_lo/{c.name}_hi coordinates); use a physical region")
        if anchored:  # the binned cells' width (a flipped grid's centres step by -w)
            w = abs(w)
            out[f"CRPIX{i}"] = float(a[f"{c.name}_ref_pixel"])
        else:
            out[f"CRPIX{i}"] = float(v[0]) + (float(a[f"CRPIX{i}"]) - 1.0 - ki) * w
        out[f"CDELT{i}"] = float(a[f"CDELT{i}"]) / w
        widths[i] = w
    if any(f"PC{i}_{j}" in a for i in (1, 2) for j in (1, 2)):  # rotated: PC_ij = PC'_ij w_i / w_j
        for i in (1, 2):
            for j in (1, 2):
                out[f"PC{i}_{j}"] = float(a.get(f"PC{i}_{j}", float(i == j))) * widths[i] / widths[j]
    return xr.Dataset(attrs=out)


def _fallback_wcs(obj):
    from astropy.wcs import WCS

    a = obj.attrs
    keys = [f"{k}{i}" for i in (1, 2) for k in ("CTYPE", "CRVAL", "CRPIX", "CDELT")]
    missing = [k for k in keys if k not in a]
    if missing:
        raise KeyError(f"{a.get('source', 'events')}: no sky WCS for x/y (missing attrs {missing})")
    w = WCS(naxis=2)
    w.wcs.ctype = [a["CTYPE1"], a["CTYPE2"]]
    w.wcs.crval = [a["CRVAL1"], a["CRVAL2"]]
    w.wcs.crpix = [a["CRPIX1"] + 1.0, a["CRPIX2"] + 1.0]  # column value = 0-based pixel
    w.wcs.cdelt = [a["CDELT1"], a["CDELT2"]]
    if any(f"PC{i}_{j}" in a for i in (1, 2) for j in (1, 2)):  # a rotated column WCS
        w.wcs.pc = [[float(a.get(f"PC{i}_{j}", float(i == j))) for j in (1, 2)] for i in (1, 2)]
    w.wcs.cunit = [a.get("CUNIT1", "deg"), a.get("CUNIT2", "deg")]
    if a.get("RADESYS"):
        w.wcs.radesys = str(a["RADESYS"])
    if a.get("EQUINOX") is not None:
        w.wcs.equinox = float(a["EQUINOX"])
    w.wcs.set()
    return w


# --------------------------------------------------------------------------- parsing


def _parenthesised(stmt: str) -> str | None:
    """A DS9 shape statement written in the space-separated form (``circle
    263.6 -32.5 30"``, ``-box 100 100 20 10 45``, commas allowed between the
    arguments) in the parenthesised form that ``regions`` reads
    (``circle(263.6,-32.5,30")``), keeping a ``-``/``+`` prefix; None when
    ``stmt`` (one statement, without its ``#`` comment) is not such a shape."""
    m = _SPACE_SHAPE_RE.match(stmt.strip())
    if not m or m.group(2).lower() not in _DS9_SHAPES:
        return None
    args = [a for a in re.split(r"[\s,]+", m.group(3)) if a]
    if not args or not all(_DS9_ARG_RE.fullmatch(a) for a in args):
        return None
    return f"{m.group(1)}{m.group(2)}({','.join(args)})"


def _shape_names(text: str):
    """Lower-case DS9 shape names (of ``_DS9_SHAPES``) that the statements of
    ``text`` start with, in the parenthesised or the space-separated form."""
    for line in text.replace("\r", "").split("\n"):
        for stmt in line.partition("#")[0].split(";"):
            s = stmt.strip()
            m = _SHAPE_RE.match(s) or (_SHAPE_RE.match(p) if (p := _parenthesised(s)) else None)
            if m and m.group(1).lower() in _DS9_SHAPES:
                yield m.group(1).lower()


# DS9's source/background property (``# background``, ``source=1``) outside {text}, 'quoted' or "quoted" values
_ROLE_RE = re.compile(r"\{[^}]*\}|'[^']*'|\"[^\"]*\"|(?<![\w=])(source|background)\b(?:\s*=\s*(\w+))?",
                      re.IGNORECASE)


def _role_property(props: str) -> str:
    """DS9 properties ``props`` (a shape's ``#`` comment, or a ``global``
    line) with the source/background property (bare ``background``/``source``,
    which the ``regions`` reader drops, or ``background=1``, ``source=0``...)
    written as the pair ``background=B source=S`` that it keeps in ``meta``;
    the last one given wins, as in DS9. Unchanged without one."""
    role = None

    def drop(m):
        nonlocal role
        if m.group(1) is None:  # a {text}, or a quoted value: kept as it is
            return m.group(0)
        role = (m.group(1).lower() == "background") == (m.group(2) is None or m.group(2) != "0")
        return ""

    out = _ROLE_RE.sub(drop, props)
    return out if role is None else f"{out.rstrip()} background={int(role)} source={int(not role)}"


def _split_shapes(stmt: str) -> list[tuple[str, str]]:
    """``[(operator, shape), ...]`` of a statement holding several shapes
    joined by CIAO operators (``circle(..) - circle(..)``, ``+``, ``*``,
    ``&``, ``|``, or none: a missing ``;``); the first operator is ``""``.
    ``[("", stmt)]`` for one shape (or text that is not a shape)."""
    parts, depth, start, op, i = [], 0, 0, "", 0
    while i < len(stmt):
        c = stmt[i]
        if c == "{":  # a {text} property: skipped whole
            j = stmt.find("}", i)
            i = len(stmt) if j < 0 else j + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                parts.append((op, stmt[start:i + 1].strip()))
                rest = stmt[i + 1:].lstrip()
                if not _SHAPE_RE.match(rest.lstrip("*&|").lstrip()):  # no shape follows: properties (text={a})
                    later = re.search(r"\b([A-Za-z]+)\s*\(", re.sub(r"\{[^}]*\}", "{}", rest))  # ({text})
                    if later and later.group(1).lower() in _DS9_SHAPES and not rest.startswith("#"):
                        raise ValueError(
                            f"region {stmt!r}: {rest[:later.start()].strip() or 'nothing'!r} between two shapes is "
                            "not an operator xcube reads (the second shape would be lost); write a union A + B as "
                            "'A;B' and a subtraction A - B as 'A;-B' (DS9 exclusion)")
                    if rest:  # (they stay with the last shape)
                        parts[-1] = (op, parts[-1][1] + " " + rest)
                    return parts
                op = rest[0] if rest[0] in "-+*&|" else ""
                start = len(stmt) - len(rest) + (1 if op else 0)
                i = start
                continue
        i += 1
    return [("", stmt)] if not parts else parts + [(op, stmt[start:].strip())]


#: the arguments of the shapes whose surplus ones ``regions`` would drop silently
_ARGUMENTS = {"circle": 3, "point": 2}


def _ciao_shapes(s: str) -> list[str]:
    """The DS9 statements of shape statement ``s``: itself, or for CIAO's
    ``A - B - C`` the include and its exclusions (``A``, ``-B``, ``-C``).
    ``ValueError`` naming the statement for other CIAO operators (union,
    intersection), shapes without a ``;`` between them, and a circle or point
    with more arguments than it takes (``regions`` would drop the rest)."""
    parts = _split_shapes(s)
    if len(parts) > 1:
        ops = [op for op, _ in parts[1:]]
        if not all(op == "-" for op in ops):
            bad = next(op for op in ops if op != "-")
            raise ValueError(
                f"region {s!r}: " + (f"the CIAO operator {bad!r} between shapes is not read; " if bad else
                                     "shapes without ';' between them; ")
                + "write a union A + B as 'A;B', a subtraction A - B as 'A;-B' (DS9 exclusion); an intersection "
                "(*, &) has no DS9 form")
        s = [parts[0][1]] + ["-" + shape.lstrip("+-").strip() for _, shape in parts[1:]]
    else:
        s = [s]
    for shape in s:
        m = re.match(r"^[+-]?\s*(circle|point)\s*\(([^()]*)\)", re.sub(r"\{[^}]*\}", "", shape), re.IGNORECASE)
        if m is None:
            continue
        name, args = m.group(1).lower(), [a for a in re.split(r"[\s,]+", m.group(2)) if a]
        if len(args) != _ARGUMENTS[name]:
            raise ValueError(f"region {shape!r}: a {name} takes {_ARGUMENTS[name]} arguments, not {len(args)}")
    return s


def _prepare_ds9(text: str) -> tuple[str, bool]:
    """Make DS9 text readable by ``regions``: ``physical`` (and a missing
    coordinate system) becomes ``image``; ``wcs`` becomes ``fk5``; shapes in
    the space-separated form (``circle 100 100 20``) get parentheses
    (:func:`_parenthesised`); a box without its angle gets angle 0; DS9's
    ``background``/``source`` property becomes ``background=1 source=0`` (or
    ``background=0 source=1``), which ``regions`` keeps in ``meta``
    (:func:`_role_property`). Returns the text and whether ``image`` was
    written explicitly."""
    out_lines, frame_seen, explicit_image, subtracted = [], False, False, False
    for line in text.replace("\r", "").split("\n"):
        code, sep, comment = line.partition("#")
        stmts = []
        for stmt in code.split(";"):
            s = stmt.strip()
            low = s.lower()
            if not s:
                continue
            word = low.split()[0] if low.split() else ""
            if low.startswith("global"):
                stmts.append(_role_property(s))
                continue
            if low in _PIXEL_FRAMES:
                explicit_image |= low == "image"
                stmts.append("image")
                frame_seen = True
            elif low in _SKY_FRAMES:
                stmts.append(low)
                frame_seen = True
            elif low == "wcs" or re.fullmatch(r"wcs[a-z]", low):
                if low != "wcs":
                    raise ValueError(
                        f"DS9 coordinate system {s!r} is not supported; use physical, image or fk5/icrs/galactic"
                    )
                stmts.append("fk5")
                frame_seen = True
            elif word in _BAD_FRAMES:
                raise ValueError(
                    f"DS9 coordinate system {s!r} is not supported; save the region in physical "
                    "(X/Y columns) or a sky system (fk5, icrs, galactic)"
                )
            else:
                s = _parenthesised(s) or s
                s = _BOX_NO_ANGLE_RE.sub(r"\1,0)", s)  # DS9's angle defaults to 0; regions needs it
                bare = re.sub(r"\{[^}]*\}", "", s)  # (without a {text} property)
                if _SHAPE_RE.match(s) and bare.count("(") != bare.count(")"):  # (regions would read it as closed)
                    raise ValueError(f"DS9 shape {s!r} does not parse: "
                                     + ("no closing ')'" if bare.count("(") > bare.count(")") else "an unmatched ')'"))
                if _SHAPE_RE.match(s) and not frame_seen and not low.startswith("global"):
                    stmts.append("image")
                    frame_seen = True
                shapes = _ciao_shapes(s) if _SHAPE_RE.match(s) else [s]
                subtracted |= len(shapes) > 1
                stmts.extend(shapes)
        if sep and stmts and stmts[-1] and _SHAPE_RE.match(stmts[-1]):  # a shape's properties
            comment = _role_property(comment)
        out_lines.append(";".join(stmts) + (sep + comment if sep else ""))
    if subtracted:  # DS9 exclusions apply to every include: CIAO's A - B beside another shape C means more
        includes = [st for line in out_lines for st in line.partition("#")[0].split(";")
                    if _SHAPE_RE.match(st.strip()) and not st.strip().startswith("-")]
        if len(includes) > 1:
            raise ValueError(f"region {text.strip()!r}: a CIAO subtraction (A - B) beside other shapes is read "
                             "as DS9 exclusions, which would cut every shape; write it in DS9 form "
                             "('A;-B', one exclusion for all)")
    return "\n".join(out_lines), explicit_image


def _shift(r, d: float):
    """Copy of a pixel region moved by ``d`` along both axes."""
    from regions import PixCoord

    if hasattr(r, "region1"):  # CompoundPixelRegion
        return type(r)(_shift(r.region1, d), _shift(r.region2, d), r.operator, meta=r.meta, visual=r.visual)
    moved = {}
    for name in ("center", "vertices", "start", "end"):
        p = getattr(r, name, None)
        if isinstance(p, PixCoord):
            moved[name] = PixCoord(p.x + d, p.y + d)
    if not moved:
        raise ValueError(f"cannot place DS9 shape {type(r).__name__} on the event columns")
    return r.copy(**moved)


def _parse_ds9(text: str):
    from regions import PixelRegion, Regions

    prepared, explicit_image = _prepare_ds9(text)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            regs = Regions.parse(prepared, format="ds9")
        except Exception as exc:  # regions raises its own parser errors
            if re.search(r"[(,\s](?:[+-]?(?:nan|inf|infinity))\s*[,)]", text, re.IGNORECASE):
                raise ValueError(f"region {_short(text)!r}: a NaN or infinite value among the shape's numbers; "
                                 "every coordinate, size and angle of a region must be finite") from None
            raise ValueError(f"DS9 region {_short(text)!r} does not parse: {exc}") from None
    said = [str(w.message) for w in caught]
    problems = [m for m in said if "skipping" in m.lower() or "cannot parse" in m.lower()]
    if problems:
        raise ValueError(f"DS9 region {_short(text)!r}: " + "; ".join(problems)
                         + (" (sizes of sky shapes are angles: 30\" or 0.5' or 0.01d, not pixels 30p/30i; "
                            "a physical or image shape takes plain numbers: circle(26000,26000,600))"
                            if re.search(r"\d[pi]\s*[,)]", text) else ""))
    if not len(regs):
        raise ValueError(f"DS9 region {_short(text)!r} holds no shape" + (f" ({'; '.join(said)})" if said else ""))
    regs = [_shift(r, 1.0) if isinstance(r, PixelRegion) else r for r in regs]
    if explicit_image:
        warnings.warn(
            f"DS9 region {_short(text)!r} is in image coordinates; xcube reads them as X/Y column (physical) "
            "values. Save DS9 regions in physical or fk5 to be sure.",
            stacklevel=4,
        )
    return list(regs)


def _shape_name(r) -> str:
    """``"text"`` for a TextSkyRegion/TextPixelRegion, ``"point"`` ..."""
    return type(r).__name__.replace("PixelRegion", "").replace("SkyRegion", "").lower()


def _short(text: str, n: int = 200) -> str:
    one = "; ".join(s.strip() for s in str(text).strip().splitlines() if s.strip() and not s.strip().startswith("#"))
    return one if len(one) <= n else one[: n - 3] + "..."


def _read_region_file(path: Path) -> str:
    """Text of a DS9 region file, or an error naming the file that never
    shows its contents: a file that is not text, too large, or has no line
    starting with a DS9 shape is not a region file."""
    if path.is_dir():
        raise IsADirectoryError(f"region file {path} is a directory; give a DS9 region file or a region string "
                                "such as circle(...)")
    if not path.is_file():
        raise FileNotFoundError(f"region file {path} not found (a region string needs a shape such as circle(...))")
    if path.suffix.lower() in (".fits", ".fit", ".fts", ".gz"):
        raise ValueError(f"region file {path}: FITS region files are not supported; save the region in DS9 format")
    size = path.stat().st_size
    if size > _MAX_REGION_BYTES:
        raise ValueError(f"region file {path}: {size} bytes is too large for a DS9 region file "
                         f"(limit {_MAX_REGION_BYTES}); is it the right file?")
    try:
        text = path.read_text(encoding="utf-8-sig")  # (a byte-order mark, as Windows editors write, dropped)
    except UnicodeDecodeError:
        raise ValueError(f"region file {path}: not a DS9 region file (not text)") from None
    if next(_shape_names(text), None) is None:
        raise ValueError(
            f"region file {path}: not a DS9 region file (no line starts with a DS9 shape such as circle(...), "
            "box(...) or polygon(...), or circle x y r); pass a DS9 region file or a region string"
        )
    return text


def _exists(name: str) -> bool:
    """Whether a file or directory ``name`` exists (False for names the OS refuses)."""
    try:
        return Path(name).exists()
    except (OSError, ValueError):  # too long, NUL bytes
        return False


def _is_file(name: str) -> bool:
    """Whether ``name`` is an existing file (False for names the OS refuses)."""
    try:
        return Path(name).is_file()
    except (OSError, ValueError):  # too long, NUL bytes
        return False


def _describe(shapes: list) -> str:
    """A short description of ``regions`` objects: their DS9 text, or for
    what DS9 cannot write (a compound ``r1 | r2``, ``&``, ``^``) their repr."""
    from regions import CompoundPixelRegion, CompoundSkyRegion, Regions

    if not any(isinstance(r, (CompoundPixelRegion, CompoundSkyRegion)) for r in shapes):
        try:
            return _short(Regions(shapes).serialize(format="ds9"))
        except (KeyError, ValueError, TypeError, AttributeError):
            pass
    return _short("; ".join(repr(r) for r in shapes))


def _load(region) -> tuple[list, str]:
    """(list of regions objects, description) for any accepted region input."""
    from regions import Region, Regions

    if isinstance(region, RegionSet):
        return [region], region.description
    if isinstance(region, Regions):
        return list(region), _describe(list(region))
    if isinstance(region, Region):
        return [region], _describe([region])
    if isinstance(region, str) and not region.strip():
        raise ValueError("region is an empty string; give a DS9 region string such as "
                         "'physical;circle(26000,26000,400)' or the path of a DS9 region file")
    if isinstance(region, Path) or (isinstance(region, str) and (
            ("\n" not in region and _is_file(region))  # an existing file wins, "(" in its name or not
            or ("(" not in region and (_exists(region) or next(_shape_names(region), None) is None))
            or (_FILE_NAME_RE.fullmatch(region) and next(_shape_names(region), None) is None))):
        path = Path(region)
        if isinstance(region, str) and not _exists(region):  # neither a file nor a region string
            raise FileNotFoundError(
                f"region file {path} not found; as a region string {_short(region)!r} holds no DS9 shape "
                "(circle(x,y,r), or circle x y r in the space-separated form)")
        text = _read_region_file(path)
        try:
            regs = _parse_ds9(text)
        except ValueError as exc:
            raise ValueError(f"region file {path}: {exc}") from None
        return regs, f"{path} ({_short(text)})"
    if isinstance(region, str):
        return _parse_ds9(region), _short(region)
    if isinstance(region, (list, tuple)):
        regs, descr = [], []
        for r in region:
            rr, d = _load(r)
            regs += rr
            descr.append(d)
        return regs, "; ".join(descr)
    raise TypeError(f"region must be a DS9 string, a file path or a regions object, not {type(region).__name__}")


@dataclass(frozen=True)
class RegionSet:
    """Included and excluded pixel shapes (``regions.PixelRegion`` in column
    units, the pixel frame of ``xcube.wcs``) and a readable description;
    ``background``: every shape carries DS9's ``background`` property (a
    background region, see :func:`pixel_region`)."""

    include: tuple
    exclude: tuple
    description: str
    background: bool = False

    @classmethod
    def from_ds9(cls, text: str) -> "RegionSet":
        """RegionSet from a pixel-coordinate DS9 string (no WCS needed)."""
        return pixel_region(text)

    def contains(self, x, y) -> np.ndarray:
        """Boolean mask of column positions ``x``, ``y`` (numpy arrays, column
        units) inside the region; boundaries are inside, for rotated shapes
        too (see "Boundaries" in :mod:`xcube.regions`). Each shape is tested
        only on the points inside its bounding box (padded by one pixel)."""
        x, y = np.broadcast_arrays(np.asarray(x), np.asarray(y))
        shape = x.shape
        x, y = x.ravel(), y.ravel()
        if self.include:
            inside = np.zeros(x.shape, dtype=bool)
            for r in self.include:
                idx = np.flatnonzero(_in_box(r, x, y) & ~inside)
                if idx.size:
                    inside[idx] = _covers(r, x[idx].astype(np.float64), y[idx].astype(np.float64))
        else:
            inside = np.ones(x.shape, dtype=bool)
        for r in self.exclude:
            idx = np.flatnonzero(_in_box(r, x, y) & inside)
            if idx.size:
                inside[idx] = ~_covers(r, x[idx].astype(np.float64), y[idx].astype(np.float64))
        return inside.reshape(shape)

    def bbox(self):
        """(xmin, xmax, ymin, ymax) in column units around the included shapes,
        or None when there are only exclusions."""
        if not self.include:
            return None
        boxes = [_box_of(r) for r in self.include]
        return (min(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes),
                max(b[3] for b in boxes))

    def area(self, samples: int = 4_000_000) -> float:
        """Area in column pixels^2, summed over the included shapes: each
        one's part outside the shapes before it and outside the exclusions.
        A shape whose bounding box meets none of theirs has its exact
        (``regions``' analytic) area; the others are sampled on a regular grid
        of about ``samples`` points over their own bounding box (relative
        error 1e-5 to 1e-4 for shapes tens to thousands of pixels across,
        however far apart the shapes lie)."""
        if not self.include:
            raise ValueError(f"region {self.description!r} has only exclusions: its area is infinite")
        total = 0.0
        for i, r in enumerate(self.include):
            box = _box_of(r)
            cut = tuple(q for q in (*self.include[:i], *self.exclude) if _boxes_meet(box, _box_of(q)))
            if not cut:
                try:
                    total += float(r.area)
                    continue
                except (NotImplementedError, AttributeError):
                    pass
            n_in, _, cell = RegionSet((r,), cut, self.description)._grid_counts(samples)
            total += n_in * cell
        return total

    def covered_fraction(self, within, samples: int = 1_000_000) -> float:
        """Fraction of the region's area where ``within(x, y)`` (a boolean mask
        of column positions, e.g. :meth:`Footprint.contains`) is True: of the
        points of a regular grid of about ``samples`` points over the bounding
        box that fall inside the region. 1.0 exactly when every such point is
        within. Eager."""
        if not self.include:
            raise ValueError(f"region {self.description!r} has only exclusions: its area is infinite")
        n_in, n_within, _ = self._grid_counts(samples, within)
        return n_within / n_in if n_in else float(np.all(within(*self._centre())))

    def _centre(self):
        x0, x1, y0, y1 = self.bbox()
        return np.array([0.5 * (x0 + x1)]), np.array([0.5 * (y0 + y1)])

    def _grid_counts(self, samples: int, within=None) -> tuple[int, int, float]:
        """``(n_in, n_within, cell)``: of a regular grid of about ``samples``
        points over the bounding box (cells of ``cell`` pixels^2, points at
        their centres), the number inside the region and the number of those
        also ``within(x, y)`` (0 without ``within``). Rows of ~5e5 points at a
        time."""
        x0, x1, y0, y1 = self.bbox()
        w, h = x1 - x0, y1 - y0
        step = np.sqrt(w * h / samples)
        nx, ny = max(int(np.ceil(w / step)), 1), max(int(np.ceil(h / step)), 1)
        hx, hy = w / nx, h / ny
        xs = x0 + hx * (np.arange(nx) + 0.5)
        n_in = n_within = 0
        rows = max(1, 500_000 // nx)
        for j0 in range(0, ny, rows):
            ys = y0 + hy * (np.arange(j0, min(j0 + rows, ny)) + 0.5)
            gx, gy = np.meshgrid(xs, ys)
            inside = self.contains(gx, gy)
            n_in += int(np.count_nonzero(inside))
            if within is not None:
                n_within += int(np.count_nonzero(within(gx[inside], gy[inside])))
        return n_in, n_within, hx * hy


def _box_of(r) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) [column units] of a pixel shape's bounding box (whole pixels
    ``[i - 0.5, i + 0.5)``)."""
    b = r.bounding_box
    return b.ixmin - 0.5, b.ixmax - 0.5, b.iymin - 0.5, b.iymax - 0.5


def _boxes_meet(a, b) -> bool:
    return a[0] <= b[1] and b[0] <= a[1] and a[2] <= b[3] and b[2] <= a[3]


def _in_box(r, x, y):
    x0, x1, y0, y1 = _box_of(r)  # padded by one pixel for boundary points
    return (x >= x0 - 1.0) & (x <= x1 + 1.0) & (y >= y0 - 1.0) & (y <= y1 + 1.0)


#: boundary tolerance of the shape tests, in units in the last place (float64
#: eps) of the shape's scale, the largest of its size and its centre's coordinates
BOUNDARY_ULPS = 16
_RIGHT_ANGLES = {0.0: (1.0, 0.0), 90.0: (0.0, 1.0), 180.0: (-1.0, 0.0), 270.0: (0.0, -1.0)}


def _cos_sin(angle) -> tuple[float, float]:
    """Cosine and sine of a rotation angle (degrees, or an astropy Quantity),
    reduced modulo 360 degrees; exact for multiples of 90 degrees."""
    deg = float(angle.to_value("deg")) if hasattr(angle, "to_value") else float(angle)
    deg %= 360.0
    if deg == 360.0:  # a tiny negative angle rounds up to 360
        deg = 0.0
    if deg in _RIGHT_ANGLES:
        return _RIGHT_ANGLES[deg]
    rad = math.radians(deg)
    return math.cos(rad), math.sin(rad)


def _tolerance(cx: float, cy: float, size: float) -> float:
    """Boundary tolerance [pixels] of a shape centred at (cx, cy) whose largest
    diameter or side is ``size``: ``BOUNDARY_ULPS`` eps of the largest of them."""
    return BOUNDARY_ULPS * float(np.finfo(np.float64).eps) * max(abs(cx), abs(cy), abs(size))


def _in_ellipse(u, v, width, height, tol, strict=False):
    """Points (u, v) along the axes of an ellipse of full ``width`` x ``height``
    inside it (boundary within ``tol`` pixels included), or with ``strict``
    inside by more than ``tol``."""
    a, b = 0.5 * float(width), 0.5 * float(height)
    rho = np.hypot(u / a, v / b)
    t = tol / min(a, b)  # |grad rho| <= 1/min(a, b): within tol pixels is within t
    return rho < 1.0 - t if strict else rho <= 1.0 + t


def _in_rectangle(u, v, width, height, tol, strict=False):
    hw, hh = 0.5 * float(width), 0.5 * float(height)
    if strict:
        return (np.abs(u) < hw - tol) & (np.abs(v) < hh - tol)
    return (np.abs(u) <= hw + tol) & (np.abs(v) <= hh + tol)


_ROUND = ("CirclePixelRegion", "CircleAnnulusPixelRegion")
_ROTATED = ("EllipsePixelRegion", "EllipseAnnulusPixelRegion", "RectanglePixelRegion", "RectangleAnnulusPixelRegion")


def _covers(r, x, y) -> np.ndarray:
    """Points ``x``, ``y`` (float64 arrays, column units) inside pixel shape
    ``r`` or on its boundary. Circles, ellipses, boxes and their annuli are
    tested here, with exact right angles and the ``BOUNDARY_ULPS`` tolerance
    (module docstring, "Boundaries"); compound shapes combine the tests of
    their parts; other shapes (polygons) use ``regions``' ``covers``."""
    name = type(r).__name__
    if name in _ROUND or name in _ROTATED:
        cx, cy = float(r.center.x), float(r.center.y)
        dx, dy = x - cx, y - cy
        if name == "CirclePixelRegion":
            rad = float(r.radius)
            return np.hypot(dx, dy) <= rad + _tolerance(cx, cy, 2 * rad)
        if name == "CircleAnnulusPixelRegion":
            r1, r2 = float(r.inner_radius), float(r.outer_radius)
            tol = _tolerance(cx, cy, 2 * r2)
            d = np.hypot(dx, dy)
            return (d <= r2 + tol) & (d >= r1 - tol)
        c, s = _cos_sin(r.angle)
        u, v = c * dx + s * dy, c * dy - s * dx  # along the width, along the height
        test = _in_ellipse if name.startswith("Ellipse") else _in_rectangle
        if "Annulus" not in name:
            return test(u, v, r.width, r.height, _tolerance(cx, cy, max(float(r.width), float(r.height))))
        tol = _tolerance(cx, cy, max(float(r.outer_width), float(r.outer_height)))
        return (test(u, v, r.outer_width, r.outer_height, tol)
                & ~test(u, v, r.inner_width, r.inner_height, tol, strict=True))
    if hasattr(r, "region1") and hasattr(r, "region2") and callable(getattr(r, "operator", None)):
        return np.asarray(r.operator(_covers(r.region1, x, y), _covers(r.region2, x, y)), dtype=bool)
    from regions import PixCoord

    f = getattr(r, "covers", None) or r.contains
    return np.asarray(f(PixCoord(x, y)), dtype=bool)


def pixel_region(region, events=None) -> RegionSet:
    """Resolve a region into a :class:`RegionSet` in the events' pixel frame.

    ``region`` is a DS9 string (``"fk5;circle(263.6,-32.5,20\\")"``,
    ``"physical;circle(26000,26000,400)\\n-circle(26100,26000,50)"``, or
    shapes in DS9's space-separated form, ``'fk5; circle 263.6 -32.5 20"'``),
    the path of a DS9 region file, a ``regions`` Region/Regions object, a
    RegionSet, or a list of these. Sky shapes are converted with the WCS of
    ``events`` (needed only then). Eager and cheap; no event data is read.

    Shapes with DS9's ``background`` property (``annulus(...) # background``,
    or ``global background``) make a background region (``background`` True
    in the result): xcube does not split one region into a source and a
    background, so a region mixing shapes with and without the property is a
    ``ValueError``. Every shape must have an area, finite and positive (a
    polygon with its vertices on a line has none), and lie within
    ``MAX_PIXEL`` of the origin: ``ValueError`` naming the region and the
    shape otherwise.
    """
    from regions import PixelRegion

    regs, descr = _load(region)
    include, exclude, roles = [], [], []
    wcs = None
    annotations = [r for r in regs if type(r).__name__ in _NO_AREA]
    if annotations and len(annotations) < len(regs):  # labels and markers saved beside the shapes (DS9 does)
        warnings.warn(f"region {descr!r}: ignored {len(annotations)} shape(s) without an area "
                      f"({', '.join(sorted({_shape_name(r) for r in annotations}))}): they select no events",
                      UserWarning, stacklevel=2)
        regs = [r for r in regs if type(r).__name__ not in _NO_AREA]
    for r in regs:
        if isinstance(r, RegionSet):
            include += r.include
            exclude += r.exclude
            roles += [r.background] * (len(r.include) + len(r.exclude))
            continue
        name = type(r).__name__
        if name in _NO_AREA:
            raise ValueError(f"region {descr!r}: a {_shape_name(r)} "
                             "has no area and selects no events; use a circle, box, ellipse, annulus or polygon")
        bad = _non_finite(r)
        if bad:
            raise ValueError(f"region {descr!r}: a NaN or infinite value in the {_shape_name(r)}'s {bad}; every "
                             "coordinate, size and angle of a region must be finite")
        keep = bool(r.meta.get("include", True)) if hasattr(r, "meta") else True
        if not isinstance(r, PixelRegion):  # a sky region
            if events is None:
                raise ValueError(f"region {descr!r} is in sky coordinates; pass the events so their WCS can convert it")
            if wcs is None:
                wcs = events_wcs(events)
            sky = r
            r = r.to_pixel(wcs)
            if hasattr(r, "angle") and hasattr(sky, "center"):
                r.angle = r.angle + _frame_rotation(sky.center, wcs)
            if _non_finite(r):  # (a size too large to place is refused below, not taken for the far side)
                if not keep:  # an exclusion on the far side of the sky excludes nothing
                    continue
                raise ValueError(_far_side(descr, events, wcs))
        problem = _size_problem(r)
        if problem:
            raise ValueError(f"region {descr!r}: {problem}")
        (include if keep else exclude).append(r)
        roles.append(_is_background(r))
    if any(roles) and not all(roles):
        raise ValueError(
            f"region {descr!r} mixes {sum(roles)} shape(s) marked '# background' (DS9's background property) with "
            f"{len(roles) - sum(roles)} shape(s) without it: xcube does not split a region into source and "
            "background. Give the background shapes as the background region (--background, background=) and the "
            "source shapes as the region (--region, region=), each in its own file or string")
    return RegionSet(tuple(include), tuple(exclude), descr, background=bool(roles) and all(roles))


def _frame_rotation(center, wcs):
    """The rotation [deg, Quantity] in the pixel frame of ``wcs`` from the
    north of the WCS's own sky frame to the north of ``center``'s frame
    (galactic, ecliptic...), at ``center``: DS9 measures a sky box's or
    ellipse's angle from its own frame's north, while ``regions``
    (``to_pixel``) takes it from the WCS frame's; added to its pixel angle.
    About 0 for an equatorial region on an equatorial WCS. Eager, tiny."""
    import astropy.units as u
    from astropy.wcs.utils import wcs_to_celestial_frame

    step = 1.0 * u.arcsec
    own = center.directional_offset_by(0.0 * u.deg, step)
    wcs_center = center.transform_to(wcs_to_celestial_frame(wcs))
    theirs = wcs_center.directional_offset_by(0.0 * u.deg, step)
    (x0, y0), (x1, y1), (x2, y2) = (wcs.world_to_pixel(c) for c in (center, own, theirs))
    turn = math.degrees(math.atan2(y1 - y0, x1 - x0) - math.atan2(y2 - y0, x2 - x0))
    return ((turn + 180.0) % 360.0 - 180.0) * u.deg


def _is_background(r) -> bool:
    """Whether shape ``r`` carries DS9's background property (``meta``
    ``background=1`` or ``source=0``, as :func:`_prepare_ds9` writes it)."""
    meta = getattr(r, "meta", None) or {}
    if "background" in meta:
        return bool(meta["background"])
    return "source" in meta and not meta["source"]


#: the largest coordinate or extent of a region [pixels, column units]: 2**52, beyond which float64 column
#: values no longer resolve one pixel (sizes of 1e160 overflowed the areas and bounding boxes)
MAX_PIXEL = 2.0**52


def _size_problem(r) -> str | None:
    """Why pixel shape ``r`` (finite parameters) cannot be a region, or None:
    it reaches beyond ``MAX_PIXEL`` (its area or bounding box overflowing
    float64 included), or it has no area: a polygon with fewer than 3
    vertices, or all of them on a line (its area within the rounding of 0),
    or a shape whose area underflows to 0. Eager, tiny."""
    name = _shape_name(r)
    too_large = (f"the {name} is too large: its extent or area overflows, or reaches beyond {MAX_PIXEL:.3g} "
                 "pixels (2**52, where float64 column values stop resolving a pixel); check its sizes and units")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            area = float(r.area)
        except (NotImplementedError, AttributeError):  # a compound shape: its parts have theirs
            area = None
        except (OverflowError, ValueError):
            return too_large
        try:
            b = r.bounding_box
            box = [float(v) for v in (b.ixmin, b.ixmax, b.iymin, b.iymax)]
        except (OverflowError, ValueError):
            return too_large
    if not all(abs(v) <= MAX_PIXEL for v in box) or (area is not None and not math.isfinite(area)):
        return too_large
    if name == "polygon":
        v = np.unique(np.column_stack([np.asarray(r.vertices.x, np.float64), np.asarray(r.vertices.y, np.float64)]),
                      axis=0)
        eps = BOUNDARY_ULPS * float(np.finfo(np.float64).eps) * (float(np.max(np.abs(v))) if v.size else 0.0)
        if len(v) < 3:
            return (f"the polygon has no area ({len(v)} distinct vertices) and selects only the events on its "
                    "edges; give at least 3 vertices that enclose an area")
        d = v - v[0]
        far = d[np.argmax(np.hypot(d[:, 0], d[:, 1]))]
        # on a line: every vertex within rounding (eps pixels) of the line through the first and the farthest
        if np.max(np.abs(d[:, 0] * far[1] - d[:, 1] * far[0])) <= eps * np.hypot(*far):
            return (f"the polygon has no area (its {len(v)} distinct vertices lie on a line) and selects only the "
                    "events on that line; give at least 3 vertices that enclose an area")
        if abs(area) <= len(v) * eps * float(np.max(np.abs(v))):  # the shoelace sum rounds by about n eps scale^2
            return ("the polygon's area is 0: its edges cross and the parts cancel (a bow tie); draw the parts as "
                    "separate polygons")
    elif area is not None and area <= 0:
        return f"the {name} has no area (its size is too small); give a size above 0"
    return None


def _non_finite(r) -> str | None:
    """The name of the first parameter of shape ``r`` (pixel or sky, compound
    shapes part by part) holding a NaN or infinite value (``"center"``,
    ``"radius"``, ``"vertices"`` ...), else None. Eager, tiny."""
    from astropy.coordinates import SkyCoord
    from regions import PixCoord

    if hasattr(r, "region1") and hasattr(r, "region2"):
        return _non_finite(r.region1) or _non_finite(r.region2)
    for name in getattr(r, "_params", ()):
        v = getattr(r, name, None)
        if isinstance(v, PixCoord):
            vals = (v.x, v.y)
        elif isinstance(v, SkyCoord):
            vals = (v.spherical.lon.deg, v.spherical.lat.deg)
        elif hasattr(v, "value") and not isinstance(v, str):  # a Quantity or an Angle
            vals = (v.value,)
        else:
            vals = (v,)
        try:
            finite = all(np.all(np.isfinite(np.asarray(a, dtype=np.float64))) for a in vals)
        except (TypeError, ValueError):  # text, not a number
            continue
        if not finite:
            return name
    return None


def _far_side(descr, events, wcs) -> str:
    ra, dec = (float(v) for v in wcs.wcs.crval)
    src = getattr(events, "attrs", {}).get("source")
    return (f"{src + ': ' if src else ''}region {descr!r} lies outside the events' field: it is on the far side of "
            f"the sky from the field (centre RA {ra:.4f}, Dec {dec:.4f} deg), where the events' sky projection has "
            "no pixels. Check the coordinates and the coordinate system (physical, image or fk5).")


# --------------------------------------------------------------------------- masks and areas


def _grid_coords(obj):
    if "x" in obj.coords and "y" in obj.coords and obj["x"].ndim == 1 and obj["y"].ndim == 1:
        return obj["x"], obj["y"]
    return None


def region_mask(events, region) -> xr.DataArray:
    """Which events (or which grid pixels) lie in ``region``.

    - EventList (``x``/``y`` columns on dim ``event``): a boolean DataArray on
      ``event``; lazy (one ``map_blocks`` task per chunk) when the columns are
      Dask arrays.
    - A DataArray/Dataset with 1-D ``x`` and ``y`` coordinates (bin centres in
      column units, e.g. an image or cube): an eager boolean DataArray over
      (``y``, ``x``).

    Only resolving the region (and the WCS for sky regions) is eager.
    """
    rs = region if isinstance(region, RegionSet) else pixel_region(region, events)
    if isinstance(events, xr.Dataset) and "x" in events.data_vars and "event" in events["x"].dims:
        x, y = events["x"].data, events["y"].data
        if hasattr(x, "map_blocks"):
            import dask.array as da

            if hasattr(y, "chunks") and y.chunks != x.chunks:
                y = y.rechunk(x.chunks)
            data = da.map_blocks(rs.contains, x, y, dtype=bool)
        else:
            data = rs.contains(np.asarray(x), np.asarray(y))
        return xr.DataArray(data, dims=("event",), name="region_mask", attrs={"region": rs.description})
    grid = _grid_coords(events)
    if grid is None:
        raise ValueError(
            "region_mask needs an EventList (x/y columns on dim 'event') or an object with 1-D x and y coordinates"
        )
    gx, gy = np.meshgrid(grid[0].values, grid[1].values)
    return xr.DataArray(
        rs.contains(gx, gy),
        dims=(grid[1].dims[0], grid[0].dims[0]),
        coords={grid[1].dims[0]: grid[1], grid[0].dims[0]: grid[0]},
        name="region_mask",
        attrs={"region": rs.description},
    )


def region_area(region, events=None, samples: int = 4_000_000) -> float:
    """Geometric area of ``region`` in sky pixels^2 (column units squared;
    multiply by CDELT^2 for deg^2, or by 0.05^2 for arcsec^2 with XMM).

    Exact for a single circle, ellipse, box, polygon or annulus; compound
    regions and exclusions are sampled on a grid of ~``samples`` points
    (see :meth:`RegionSet.area`). Not clipped to the field of view (see
    :func:`region_coverage` for the area on the detector). Eager, reads no
    event data; ``events`` is needed only for sky regions (WCS).
    """
    rs = region if isinstance(region, RegionSet) else pixel_region(region, events)
    return rs.area(samples=samples)


# --------------------------------------------------------------------------- detector footprint

#: a CCD (or a CCD-less event list) with fewer events than this gets no hull in
#: the footprint: a handful of events with a stray CCD number or position would
#: otherwise add or stretch one
MIN_FOOTPRINT_EVENTS = 50
#: :func:`region_coverage` warns when less than this fraction of a region is on the detector
COVERED_WARN = 0.95


def in_hull(equations, x, y, tol: float = 1e-6) -> np.ndarray:
    """Points ``x``, ``y`` (arrays, same shape) inside or on the convex hull
    whose facets are ``equations`` (``scipy.spatial.ConvexHull.equations``,
    (k, 3): unit outward normal and offset) within ``tol`` (units of x, y):
    ``normal . p + offset <= tol`` for every facet."""
    eq = np.asarray(equations, np.float64)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    inside = np.ones(x.shape, bool)
    for a, b, c in eq:
        inside &= a * x + b * y + c <= tol
    return inside


@dataclass(frozen=True)
class Footprint:
    """The detector's sky footprint: the union of the convex hulls, in X/Y
    column units, of each CCD's events (:func:`detector_footprint`).

    ``hulls``: per CCD ``(ccd, equations, vertices)`` (``ccd`` None for an
    event list without a CCD column; ``equations`` (k, 3) facets as
    ``ConvexHull.equations``; ``vertices`` (m, 2) X/Y); ``skipped``:
    ``(ccd, points)`` of the CCDs left out for having
    fewer than ``MIN_FOOTPRINT_EVENTS`` events (or collinear ones), with
    their events' extreme points (m, 2) X/Y."""

    hulls: tuple
    skipped: tuple = ()

    def contains(self, x, y) -> np.ndarray:
        """Boolean mask of column positions ``x``, ``y`` inside (or on) any hull."""
        x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
        out = np.zeros(x.shape, bool)
        for _, eq, _v in self.hulls:
            out |= in_hull(eq, x, y)
        return out

    @property
    def extent(self):
        """(xmin, xmax, ymin, ymax) of the hulls' vertices, or None without hulls."""
        if not self.hulls:
            return None
        v = np.concatenate([h[2] for h in self.hulls])
        return (float(v[:, 0].min()), float(v[:, 0].max()), float(v[:, 1].min()), float(v[:, 1].max()))


def _hull_rows(x, y, ccd=None) -> np.ndarray:
    """(n, 4) float64 rows ``(ccd, x, y, count)`` of one block of events: the
    convex-hull vertices of each CCD's events (``ccd`` NaN without a CCD
    column), ``count`` the CCD's events in the block on its first row, 0 on
    the others. Non-finite positions are dropped; collinear or fewer than 3
    distinct points keep their extreme points in x and y."""
    from scipy.spatial import ConvexHull, QhullError

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    c = np.full(x.shape, np.nan) if ccd is None else np.asarray(ccd, np.float64)
    x, y, c = x[ok], y[ok], c[ok]
    rows = []
    groups = [np.nan] if ccd is None else np.unique(c)
    for k in groups:
        m = slice(None) if ccd is None else c == k
        pts = np.column_stack([x[m], y[m]])
        if not len(pts):
            continue
        try:
            v = pts[ConvexHull(pts).vertices]
        except (QhullError, ValueError):  # < 3 points, or all on a line
            v = pts[np.unique([pts[:, 0].argmin(), pts[:, 0].argmax(), pts[:, 1].argmin(), pts[:, 1].argmax()])]
        r = np.zeros((len(v), 4))
        r[:, 0], r[:, 1:3], r[0, 3] = k, v, len(pts)
        rows.append(r)
    return np.concatenate(rows) if rows else np.zeros((0, 4))


def detector_footprint(events, ccd_variable: str | None = "profile",
                       min_events: int = MIN_FOOTPRINT_EVENTS) -> Footprint | None:
    """The detector's sky footprint estimated from the events themselves: the
    union over CCDs of the convex hull of each CCD's event positions (``x``,
    ``y``, column units). Per CCD a hull follows the circular edge of the
    field of view, and the union leaves the gaps between CCDs and the dead
    CCDs out. ``ccd_variable``: the CCD column, by default the mission
    profile's (XMM EPIC ``ccdnr``, Chandra ``ccd_id``); None, or an event list
    without it (NuSTAR), takes one hull over all events.

    Pass the events the product counts, before any region or energy cut
    (screened, as the product's events are: XMM's ``FLAG == 0`` removes the
    MOS corners outside the field of view). Limits: within a CCD the hull is
    convex, so bad pixels and columns, and any concave edge, are not removed
    (unlike SAS ``backscale``, which reads the bad-pixel and CCD geometry);
    the hull of N events lies inside the true edge by about the spacing of
    events near it (a relative area of order 1/N^(2/3) for a round edge); a
    stray event far from its CCD stretches that CCD's hull, and CCDs with
    fewer than ``min_events`` events are left out (logged). Returns None
    when no CCD has ``min_events`` events (too few to tell the detector).

    Eager: one pass over ``x``, ``y`` (and the CCD column), each chunk
    reduced to its CCDs' hull vertices (a few hundred rows), so memory stays
    at one chunk; the hulls of the chunk hulls are then taken in numpy."""
    from scipy.spatial import ConvexHull, QhullError

    if ccd_variable == "profile":
        from .missions import profile_of

        ccd_variable = profile_of(events).ccd_variable
    ccd_name = ccd_variable if ccd_variable is not None and ccd_variable in events.variables else None
    cols = [events["x"].data, events["y"].data] + ([events[ccd_name].data] if ccd_name else [])
    if events.sizes.get("event", 0) == 0:
        return None
    if any(hasattr(a, "to_delayed") for a in cols):
        import dask
        import dask.array as da

        from .scheduler import compute

        cols = [a if hasattr(a, "to_delayed") else da.from_array(np.asarray(a), chunks=cols[0].chunks)
                for a in cols]
        cols = [a.rechunk(cols[0].chunks) if a.chunks != cols[0].chunks else a for a in cols]
        blocks = zip(*[a.to_delayed().ravel() for a in cols])
        parts = compute(*[dask.delayed(_hull_rows)(*b) for b in blocks])  # (xcube's: no distributed import)
        rows = np.concatenate(parts) if parts else np.zeros((0, 4))
    else:
        rows = _hull_rows(*cols)
    hulls, skipped = [], []
    keys = [np.nan] if ccd_name is None else np.unique(rows[:, 0])
    for k in keys:
        r = rows if ccd_name is None else rows[rows[:, 0] == k]
        n = int(r[:, 3].sum())
        label = None if ccd_name is None else int(k)
        if n < min_events:
            skipped.append((label, r[:, 1:3].copy()))
            continue
        try:
            hull = ConvexHull(r[:, 1:3])
        except (QhullError, ValueError):  # all events on a line: no area
            skipped.append((label, r[:, 1:3].copy()))
            continue
        hulls.append((label, hull.equations.copy(), r[hull.vertices, 1:3].copy()))
    if skipped:
        log.info("%s: detector footprint leaves out %s with fewer than %d events (or none off a line)",
                 events.attrs.get("source", "events"),
                 "the event list" if ccd_name is None else f"CCD {', '.join(str(k) for k, _ in skipped)}",
                 min_events)
    if not hulls:
        return None
    return Footprint(tuple(hulls), tuple(skipped))


@dataclass(frozen=True)
class Coverage:
    """A region's area on the detector (:func:`region_coverage`): ``area``
    [pixel^2] = ``geometric_area`` x ``fraction``; ``fraction`` None when the
    footprint could not be estimated (then ``area`` is the geometric one)."""

    area: float
    geometric_area: float
    fraction: float | None


def region_coverage(region, footprint: Footprint | None, events=None, samples: int = 1_000_000,
                    source: str = "") -> Coverage:
    """The area of ``region`` on the detector, as SAS ``backscale`` would
    clip it, without calibration files: the geometric area
    (:func:`region_area`, exact for one shape) times the fraction of the
    region's points (a grid of ~``samples``, :meth:`RegionSet.covered_fraction`)
    inside the detector ``footprint`` (:func:`detector_footprint`).
    ``events`` turns a region in sky coordinates into pixels and names the
    file (``source``). Warns, naming the file and the region, when less than
    ``COVERED_WARN`` (95 %) of it is on the detector; ``ValueError`` when none
    is. The geometric area, with ``fraction`` None and a warning saying why,
    when the footprint cannot tell: too few events in all (``footprint``
    None), or part of the region lies on a CCD left out of the footprint for
    its few events. Eager, no event data."""
    rs = region if isinstance(region, RegionSet) else pixel_region(region, events)
    geometric = rs.area()
    if not source and events is not None:
        source = str(getattr(events, "attrs", {}).get("source", ""))
    where = f"{source}: " if source else ""
    if footprint is None:
        warnings.warn(f"{where}too few events to tell the detector's edges (fewer than {MIN_FOOTPRINT_EVENTS} "
                      f"on every CCD): the area of region {rs.description!r} is its whole geometric area",
                      stacklevel=3)
        return Coverage(geometric, geometric, None)
    fraction = rs.covered_fraction(footprint.contains, samples)
    if fraction < COVERED_WARN:
        x0, x1, y0, y1 = rs.bbox() or (np.inf, -np.inf, np.inf, -np.inf)
        on_few = [k for k, pts in footprint.skipped  # (the CCD's few events span a box that meets the region's)
                  if pts[:, 0].min() <= x1 and pts[:, 0].max() >= x0
                  and pts[:, 1].min() <= y1 and pts[:, 1].max() >= y0]
        if on_few:
            warnings.warn(f"{where}region {rs.description!r} reaches CCD {', '.join(map(str, on_few))}, which has "
                          f"fewer than {MIN_FOOTPRINT_EVENTS} events to tell its edges: its area is its whole "
                          "geometric area", stacklevel=3)
            return Coverage(geometric, geometric, None)
    check_in_field(rs, footprint.extent, source, fraction=fraction)
    return Coverage(geometric * fraction, geometric, fraction)


BACKSCAL_MODES = ("geometric", "detector")

_UNSET = object()  # region_areas(footprint=) not given


def region_areas(events, region, background=None, *, backscal: str = "geometric",
                 footprint: Footprint | None = _UNSET) -> dict:
    """attrs ``backscal`` (and ``bkg_backscal``) [sky pixel^2]: the areas of
    ``region`` (and ``background``) for BACKSCAL; ``{}`` without a region.

    ``backscal="geometric"`` (default): their whole areas
    (:func:`region_area`), as CIAO ``dmextract`` and HEASoft
    ``extractor`` without a weight map write them; ``footprint`` is not
    used. ``"detector"``: the parts on the detector, as SAS ``backscale``
    clips them, estimated from the events (:func:`region_coverage` on
    ``footprint``, which must then be given: the :func:`detector_footprint`
    of the events in good time with the mission's screening, not the
    product's own filter, band or time range, so one region has one area:
    :func:`xcube.select.screened_footprint`; None when too few events tell
    the detector, then the whole areas with a warning), with
    ``backscal_geometric``/``backscal_fraction`` (``bkg_...``). Do not use
    it on an event file already cut by a region: its footprint is that
    region. ``events`` turn sky regions into pixels and name the file.
    Eager, no event data (the footprint's pass is its maker's)."""
    if backscal not in BACKSCAL_MODES:
        raise ValueError(f"backscal={backscal!r}: use one of {', '.join(BACKSCAL_MODES)}")
    if region is None:
        return {}
    named = (("", region), ("bkg_", background))
    if backscal == "geometric":
        return {f"{prefix}backscal": region_area(reg, events) for prefix, reg in named if reg is not None}
    if footprint is _UNSET:
        raise TypeError("region_areas(backscal='detector') needs footprint=: the detector footprint of the "
                        "events, e.g. xcube.select.screened_footprint(events)")
    attrs = {}
    for prefix, reg in named:
        if reg is None:
            continue
        cov = region_coverage(reg, footprint, events)
        attrs[f"{prefix}backscal"] = cov.area
        if cov.fraction is not None:
            attrs[f"{prefix}backscal_geometric"] = cov.geometric_area
            attrs[f"{prefix}backscal_fraction"] = cov.fraction
    return attrs


def check_in_field(rs: RegionSet, extent, source: str = "", fraction: float | None = None) -> None:
    """Raise (naming ``source``, the events' file) when the included shapes
    lie wholly outside ``extent`` (xmin, xmax, ymin, ymax of the events,
    column units); warn when partly outside. With ``fraction`` (the part of
    the region's area on the detector, :func:`region_coverage`) the test is
    on it instead: raise when 0, warn below ``COVERED_WARN``."""
    box = rs.bbox()
    if box is None or extent is None:
        return
    x0, x1, y0, y1 = box
    ex0, ex1, ey0, ey1 = extent
    field = f"X {ex0:g}..{ex1:g}, Y {ey0:g}..{ey1:g}"
    where = source + ": " if source else ""
    if x1 < ex0 or x0 > ex1 or y1 < ey0 or y0 > ey1:
        raise ValueError(
            f"{where}region {rs.description!r} lies outside the events' field: its "
            f"extent X {x0:g}..{x1:g}, Y {y0:g}..{y1:g} misses the events at {field}. "
            "Check the coordinate system (physical, image or fk5)."
        )
    if fraction == 0:
        raise ValueError(
            f"{where}region {rs.description!r} (X {x0:g}..{x1:g}, Y {y0:g}..{y1:g}) lies wholly off the "
            "detector: in a gap between CCDs, on a CCD without events or beyond the edge of the field of view "
            "(the CCDs' footprint, from the events)"
        )
    if fraction is not None:
        if fraction < COVERED_WARN:
            warnings.warn(
                f"{where}region {rs.description!r}: only {100 * fraction:.1f}% of its area is on the detector "
                "(the CCDs' footprint, from the events); its area (BACKSCAL) counts only that part",
                stacklevel=3,
            )
        return
    if x0 < ex0 or x1 > ex1 or y0 < ey0 or y1 > ey1:
        warnings.warn(
            f"{where}region {rs.description!r} extends beyond the events' field ({field}): part of it holds "
            "no data; BACKSCAL counts that part unless the products take backscal='detector' "
            "(--backscal detector)",
            stacklevel=3,
        )
