"""The garbage collector's settings for a long-running service process."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 100_000
"""Allocations (less deallocations) between two collections of the youngest generation (CPython's default is 700).

A service holds many long-lived records (the scheduler thousands of runs, each a few dozen objects) and
allocates short-lived ones on every event. At the default, collections of the older generations, which walk
those records, ran often enough to take about a quarter of the scheduler's time per event; at 10,000 they take
a few percent, and the cycles the collector frees are freed as surely, a little later.

The count is of objects made and not yet freed, so what a service holds at once while it works decides how
often a collection comes: the projector holds a batch of 1,000 events, decoded (about 12,000 objects), and the
records read ahead. At 10,000 every batch set off collections that walked it, 4 to 6 µs an event; at 100,000
none came in 41,000 events. Cycles, which only the collector frees, wait longer for it.
"""


def tune_collector() -> None:
    """Collect the youngest generation every `YOUNG_THRESHOLD` allocations; the older ones as by default."""
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
