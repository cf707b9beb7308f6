"""Time and memory budgets for the hostile-file regression tests (issue 13).

Peak memory is the process's resident high-water mark (VmHWM), reset before the call through
/proc/self/clear_refs, so that torch's allocations count too (tracemalloc sees only Python's).
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import pytest

SECONDS = 5.0
"""Each refusal must come within this (the cases took 7 s to over 20 minutes before; the margin is for a loaded
machine — this guards against a hang or a full decode, it is not a speed target)."""

MEGABYTES = 300
"""And within this much resident memory above where it started (the cases took 2–12 GB before)."""

_STATUS = Path("/proc/self/status")


def _kilobytes(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", _STATUS.read_text()).group(1))


@contextlib.contextmanager
def within_budget(seconds: float = SECONDS, megabytes: float = MEGABYTES):
    """Assert that the block finishes within `seconds` and raises the resident peak by less than `megabytes`."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        measure_memory = True
    except OSError:
        measure_memory = False
    start_rss = _kilobytes("VmRSS") if measure_memory else 0
    started = time.perf_counter()
    yield
    elapsed = time.perf_counter() - started
    assert elapsed < seconds, f"took {elapsed:.2f} s (budget {seconds} s)"
    if measure_memory:
        grown = (_kilobytes("VmHWM") - start_rss) / 1024
        assert grown < megabytes, f"resident peak rose by {grown:.0f} MB (budget {megabytes} MB)"


def refused(match: str, seconds: float = SECONDS, megabytes: float = MEGABYTES):
    """``pytest.raises(ValueError, match=…)`` inside :func:`within_budget`."""
    stack = contextlib.ExitStack()
    stack.enter_context(within_budget(seconds, megabytes))
    stack.enter_context(pytest.raises(ValueError, match=match))
    return stack
