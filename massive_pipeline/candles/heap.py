"""Give the memory a released slice occupied back to the operating system.

A ranged run streams its range slice by slice and drops each slice once it is written and checked,
so the objects it keeps do not grow with the range (a tracemalloc snapshot diff between the 3rd and
the 12th slice of a one-year run: under 1 MB). Its resident set still grew with the number of
slices, for two reasons. Some of a slice's pandas temporaries sit in reference cycles, which only
the collector's oldest generation frees, and that generation runs ever more rarely as the process's
long-lived objects grow, so dead slices' arrays pile up between its runs; and glibc's allocator
keeps freed pages inside its heap, interleaved with live allocations. After each slice of
RELEASE_AFTER_BARS or more, `malloc_trim(0)` hands the free pages inside the heap back to the
kernel; the cycles are left to the collector's own schedule. `benchmarks/bench_memory.py`: 344 MB
for one year of EURUSD M1, 440 MB for five (1.28). With a full collection after every slice as
well it was 325 and 346 MB (1.06), but that collection (0.2 s a slice and more) took CPU the
critical refreshes needed beside two backfills in the CI simulation, so it is not done.

Where the C library has no `malloc_trim` (macOS, musl) this does nothing: their allocators return
memory differently, and nothing else depends on the call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

# The release runs after slices of at least this many (base) bars: a full collection costs about
# 0.2 s in a run process, a fifth of a one-day refresh step's work, while a ranged run's slices of
# up to 50,000 bars take seconds each. A refresh (a day of M1, at most a week's catch-up) never
# reaches it; a single-run backfill's slices do, and they are where the resident set crept.
RELEASE_AFTER_BARS = 20_000


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library does not have it."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Return the allocator's free pages to the kernel; True if any went back (False: none, or no
    glibc). No garbage collection here: a full collection per slice (0.2 s and more) made the
    simulation's refreshes fall behind its two backfills in CI, so it is left out until it can run
    off the refresh's CPU; without it the 5 y / 1 y peak ratio was 1.28, with it 1.06."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
