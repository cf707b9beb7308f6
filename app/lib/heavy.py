"""One server, many sessions: how much torch work runs at once.

Streamlit runs every session's script in a thread of one process. Each page sets ``torch.set_num_threads(1)``
(a batch of two small images gains nothing from more), and :func:`heavy_work` lets at most
:data:`HEAVY_SLOTS` msda computations (a card's mix, a λ ladder or sweep, an image-only saliency map) run at
once: a session that asks for many new mixes queues behind the others' instead of putting a dozen threads on
two cores, and the pages' light work (widgets, cache hits) never waits for it. What one session computes for a
pair is cached process-wide (``st.cache_data``, keyed by the pair's content hash and every setting), so the
other sessions get it without computing it again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


HEAVY_SLOTS = usable_cores()
_SLOTS = threading.BoundedSemaphore(HEAVY_SLOTS)
_HELD = threading.local()


@contextmanager
def heavy_work() -> Iterator[None]:
    """Hold one of the process's :data:`HEAVY_SLOTS` while msda computes; re-entrant within a thread (a sweep
    inside a mix takes no second slot, so two threads can never wait on each other for one). Code inside must
    not wait for a Streamlit cache computed by another thread, which might be waiting for this slot."""
    depth = getattr(_HELD, "depth", 0)
    if depth == 0:
        _SLOTS.acquire()
    _HELD.depth = depth + 1
    try:
        yield
    finally:
        _HELD.depth = depth
        if depth == 0:
            _SLOTS.release()
