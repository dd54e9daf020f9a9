"""Shared helpers of the figure functions: a new Figure (no pyplot state) and
an atomic save."""
from __future__ import annotations

from pathlib import Path

__all__ = ["new_figure", "save_figure", "check_dpi", "DPI_RANGE", "rate_variable", "time_label"]

#: the resolutions [dots per inch] a figure is saved at: beyond 2400 a figure of a few inches needs gigabytes
#: (xcube plot --dpi 30000 ended in a MemoryError), below 10 it is illegible
DPI_RANGE = (10, 2400)


def new_figure(figsize, layout: str | None = "constrained"):
    """A ``matplotlib.figure.Figure`` not registered with pyplot (safe in
    threads). Eager."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout=layout)


def check_dpi(dpi, what: str | None = None) -> int:
    """``dpi`` [dots per inch] as an int inside :data:`DPI_RANGE`, or
    ``ValueError`` starting with ``what`` (default ``"dpi=<value>"``; the
    command line passes ``"--dpi <value>"``) and giving the range. Eager
    (one number)."""
    lo, hi = DPI_RANGE
    what = what or f"dpi={dpi!r}"
    try:
        ok = int(dpi) == dpi and lo <= dpi <= hi
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{what}: must be a whole number of dots per inch from {lo} to {hi}")
    return int(dpi)


def save_figure(fig, path, *, dpi: int = 110, overwrite: bool = True) -> Path:
    """Save ``fig`` to ``path`` atomically at ``dpi`` [dots per inch, see
    :func:`check_dpi`]; the format follows the suffix (png, pdf, svg).
    Eager: renders and writes the file."""
    from ..io.atomic import atomic_file

    path = Path(path)
    dpi = check_dpi(dpi)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in fig.canvas.get_supported_filetypes():
        raise ValueError(f"{path}: matplotlib writes no {fmt!r} figures; name the output .png, .pdf or .svg")
    with atomic_file(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=dpi, format=fmt)
    return path


def rate_variable(lc) -> str:
    """The rate to show for a light curve: ``net_rate`` when it has a
    background, else ``rate``. Eager (variable names only)."""
    return "net_rate" if "net_rate" in lc else "rate" if "rate" in lc else "counts"


def time_label(obj, t_ref: float) -> str:
    """Axis label of times shown as seconds after ``t_ref`` [s, mission
    time], with ``t_ref`` as UTC when ``obj`` (a light curve) knows its MJDREF.
    Eager (attrs only)."""
    from ..times import times

    text = f"time - {t_ref:.3f} [s]"
    try:
        return f"{text}  (T0 = {times(t_ref, obj, to='iso', precision=3)} UTC)"
    except ValueError:
        return text
