"""Progress bars that suit where xcube runs: ``tqdm`` bars that become
widgets in Jupyter (``tqdm.auto``) and text on a terminal, or nothing."""
from __future__ import annotations

import sys

__all__ = ["in_notebook", "progress_bar"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (an IPython ``ZMQInteractiveShell``).
    Eager."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - an unusual IPython: treat as no notebook
        return False
    return type(shell).__name__ == "ZMQInteractiveShell"


class _NoBar:
    """A stand-in with the part of the ``tqdm`` interface xcube uses."""

    n = 0

    def update(self, n=1):
        self.n += n

    def set_description(self, *a, **k):
        pass

    def set_postfix_str(self, *a, **k):
        pass

    def refresh(self):
        pass

    def close(self):
        pass


def progress_bar(total: int | None = None, desc: str = "", unit: str = "it", enabled: bool = True, **kwargs):
    """A ``tqdm.auto`` bar (a widget in Jupyter, text on stderr elsewhere;
    ``total`` steps of ``unit``), or an object that ignores the calls when
    ``enabled`` is False. Eager."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, **kwargs)
