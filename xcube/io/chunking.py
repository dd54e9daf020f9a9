"""The event chunk: how many events one Dask chunk (and one task of the
events pass) holds.

One number for the FITS reader, the Zarr event cache, in-memory event lists
and the blocks of the detector hygiene (:mod:`xcube.hygiene`), so that
``select`` and the transient search cut an event list the same way. 2^20
events (8 MB of float64 times) keep each task's per-event arrays in the CPU
caches and give the workers many tasks of equal size: a 1e7-event file is
10 tasks, not 3 tasks of unequal size on 2 cores.
"""

#: events per Dask chunk along ``event``
EVENT_CHUNK = 1 << 20


def event_blocks(n: int) -> tuple:
    """Lengths of the fixed blocks of an event list of ``n`` events:
    :data:`EVENT_CHUNK` events from the first one, the last block shorter
    (``(0,)`` when empty). The detector hygiene judges these blocks whatever
    the list's chunks, so its decisions do not depend on the chunking."""
    n = int(n)
    full, rest = divmod(n, EVENT_CHUNK)
    return (EVENT_CHUNK,) * full + ((rest,) if rest or not full else ())

