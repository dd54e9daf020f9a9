"""Checks of numeric parameters shared by every module: one rule, one message form."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["check_number"]


def check_number(where: str, name: str, value, *, gt: float | None = None, ge: float | None = None,
                 le: float | None = None, integer: bool = False, unit: str = ""):
    """``value`` as a Python scalar, a float (an int when ``integer``), after
    checking that it is a finite real number (a whole number when
    ``integer``), ``> gt``, ``>= ge`` and ``<= le`` (the bounds given; ``unit``
    only names the unit in the message). Raises ``ValueError`` naming
    ``where``, ``name``, the value and the allowed values otherwise: the one
    check of numeric parameters (:mod:`xcube.simulate`, the background model,
    the BTIs). Eager (one scalar)."""
    bounds = [f"{op} {b:g}" for op, b in ((">", gt), (">=", ge), ("<=", le)) if b is not None]
    allowed = ("an integer" if integer else "a finite number") + (" " + " and ".join(bounds) if bounds else "")
    allowed += f" {unit}" if unit else ""
    try:
        ok = not isinstance(value, (bool, str)) and math.isfinite(v := float(value))
    except (TypeError, ValueError):
        ok = False
    ok = ok and (not integer or v == int(v)) and (gt is None or v > gt) and (ge is None or v >= ge) \
        and (le is None or v <= le)
    if not ok:
        shown = value.item() if isinstance(value, np.generic) else value  # 1.5, not np.float64(1.5)
        raise ValueError(f"{where}: {name}={shown!r}: must be {allowed}")
    return int(v) if integer else v
