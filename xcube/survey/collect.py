"""Collect the per-observation futures of a survey or of ``xcube process``.

One loop for both: results are recorded as they complete, a future that
fails (``KilledWorker``, an unpicklable input, ...) is recorded as lost and
the rest goes on, the status table is flushed every ``flush_interval``
seconds and once at the end, and every future left is cancelled when the
loop is interrupted.
"""
from __future__ import annotations

import time

__all__ = ["collect"]


def collect(futures: dict, *, record, lost, flush, bar, flush_interval: float, passthrough=()) -> None:
    """Wait for ``futures`` (future -> observation id) as they complete.

    ``record(obsid, records)`` stores a finished observation's records (a
    list of dicts); ``lost(obsid, future, exc)`` returns the records of one
    whose future raised (it may raise to stop the loop); exceptions of the
    types in ``passthrough`` stop the loop at once. ``flush(final)`` writes
    the status table: every ``flush_interval`` seconds [s] (an interval
    that grows to keep the writes under ~5 % of the time when the table is
    large) and with ``final=True`` when the loop ends, however it ends.
    ``bar`` is a :class:`~xcube.survey.progress.SurveyProgress`. Blocks
    until every future is done; needs ``distributed``.
    """
    from distributed import as_completed

    bar.draw()
    last = time.monotonic()
    try:
        for fut in as_completed(list(futures)):
            obsid = futures.pop(fut)
            try:
                records = fut.result()
            except passthrough:
                raise
            except Exception as exc:  # noqa: BLE001 - recorded, the rest goes on
                records = lost(obsid, fut, exc)
            fut.release()
            record(obsid, records)
            bar.update(records)
            if time.monotonic() - last >= flush_interval:
                t0 = time.monotonic()
                flush(False)
                last = time.monotonic()
                flush_interval = max(flush_interval, 20 * (last - t0))
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise
    finally:
        bar.draw(final=True)
        flush(True)
