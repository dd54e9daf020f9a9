"""Shared helpers of the figure functions: a new Figure (no pyplot state) and
an atomic save."""
from __future__ import annotations

from pathlib import Path

__all__ = ["new_figure", "save_figure", "rate_variable", "time_label"]


def new_figure(figsize, layout: str | None = "constrained"):
    """A ``matplotlib.figure.Figure`` not registered with pyplot (safe in
    threads). Eager."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout=layout)


def save_figure(fig, path, *, dpi: int = 110, overwrite: bool = True) -> Path:
    """Save ``fig`` to ``path`` atomically; the format follows the suffix (png,
    pdf, svg). Eager: renders and writes the file."""
    from ..io.atomic import atomic_file

    path = Path(path)
    with atomic_file(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
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

    text = f"time - {t_ref:.1f} [s]"
    try:
        return f"{text}  (T0 = {times(t_ref, obj, to='iso', precision=0)} UTC)"
    except ValueError:
        return text
