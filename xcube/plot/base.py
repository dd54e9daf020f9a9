"""Shared helpers of the figure functions: a new Figure (no pyplot state) and
an atomic save."""
from __future__ import annotations

from pathlib import Path

__all__ = ["new_figure", "save_figure", "rate_variable"]


def new_figure(figsize, layout: str | None = "constrained"):
    """A ``matplotlib.figure.Figure`` not registered with pyplot (safe in threads)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout=layout)


def save_figure(fig, path, *, dpi: int = 110, overwrite: bool = True) -> Path:
    """Save ``fig`` to ``path`` atomically; the format follows the suffix (png, pdf, svg)."""
    from ..io.atomic import atomic_file

    path = Path(path)
    with atomic_file(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    return path


def rate_variable(lc) -> str:
    """The rate to show for a light curve: ``net_rate`` when it has a background, else ``rate``."""
    return "net_rate" if "net_rate" in lc else "rate" if "rate" in lc else "counts"
