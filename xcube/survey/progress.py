"""A text progress bar for surveys: observations done / failed / remaining."""
from __future__ import annotations

import sys
import time

from ..progress import in_notebook, progress_bar

__all__ = ["SurveyProgress"]


def _hms(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class SurveyProgress:
    """Counts finished observations and draws one status line on ``stream``.

    An observation counts as *failed* when any of its runs failed or timed out,
    else as *done* (runs that were skipped for want of good time count as done).
    On a terminal the line is redrawn in place; in Jupyter it is a ``tqdm``
    widget; otherwise a line is written at most every ``interval`` seconds
    and at the end. ``label`` and
    ``runs_label`` name the command and its units (``xcube process``: steps).
    """

    def __init__(self, total: int, stream=None, enabled: bool = True, width: int = 30, interval: float = 10.0,
                 label: str = "survey", runs_label: str = "runs"):
        self.total, self.width, self.interval = total, width, interval
        self.label, self.runs_label = label, runs_label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = self.failed = 0
        self.runs = {"done": 0, "failed": 0, "skipped": 0, "timeout": 0}
        self.t0 = time.monotonic()
        self._last = 0.0
        self.bar = None
        if enabled and in_notebook():  # a widget that updates in place, not a line every interval
            self.bar = progress_bar(total, desc=label, unit="obs")

    @property
    def remaining(self) -> int:
        """Observations not yet counted: ``total - done - failed``."""
        return self.total - self.done - self.failed

    def update(self, records) -> None:
        """Count one finished observation from its run records (dicts with ``state``)."""
        states = [r.get("state") for r in records]
        for s in states:
            if s in self.runs:
                self.runs[s] += 1
        if any(s in ("failed", "timeout") for s in states):
            self.failed += 1
        else:
            self.done += 1
        self.draw()

    def line(self) -> str:
        """The status line (no newline): a bar of ``width`` characters, the
        observations done/failed/remaining, the run counts by state, the
        elapsed time and the estimated time left (h:mm:ss, from the mean time
        per counted observation; none until an observation is counted)."""
        n = self.done + self.failed
        frac = n / self.total if self.total else 1.0
        fill = int(round(frac * self.width))
        elapsed = time.monotonic() - self.t0
        left = f", ~{_hms(elapsed / n * self.remaining)} left" if n else ""
        runs = " ".join(f"{k} {v}" for k, v in self.runs.items())
        return (f"{self.label} [{'#' * fill}{'.' * (self.width - fill)}] {n}/{self.total} observations: "
                f"done {self.done}, failed {self.failed}, remaining {self.remaining} | {self.runs_label}: {runs} | "
                f"{_hms(elapsed)} elapsed{left}")

    def draw(self, final: bool = False) -> None:
        """Show the current counts: update the Jupyter widget (closed when
        ``final``), redraw the line in place on a terminal (ending it with a
        newline when ``final``), or else write a line when ``final`` or when
        ``interval`` [s] has passed since the last one. Nothing when
        disabled."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.n = self.done + self.failed
            self.bar.set_postfix_str(f"done {self.done}, failed {self.failed} | {self.runs_label}: "
                                     + " ".join(f"{k} {v}" for k, v in self.runs.items()), refresh=False)
            self.bar.refresh()
            if final:
                self.bar.close()
            return
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self.line() + ("\n" if final else ""))
            self.stream.flush()
        elif final or now - self._last >= self.interval:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._last = now
