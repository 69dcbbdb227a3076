"""Give the memory a released slice occupied back to the operating system.

A ranged run streams its range slice by slice and drops each slice once it is written and checked,
so the objects it keeps do not grow with the range (a tracemalloc snapshot diff between the 3rd and
the 12th slice of a one-year run: under 1 MB). Its resident set still grew with the number of
slices, for two reasons. Some of a slice's pandas temporaries sit in reference cycles, which only
the collector's oldest generation frees, and that generation runs ever more rarely as the process's
long-lived objects grow, so dead slices' arrays pile up between its runs; and glibc's allocator
keeps freed pages inside its heap, interleaved with live allocations.

So after each slice of RELEASE_AFTER_BARS or more the run collects and then hands the free pages
inside the heap back to the kernel (`malloc_trim(0)`). A full collection scans every tracked
object, and a run process holds the whole code location (about 330,000 objects: 0.18 s a
collection, which beside two backfills took CPU the critical refreshes needed). A ranged run
therefore freezes what exists when it starts (`gc.freeze`: the code location, the run's context)
and unfreezes it when it ends; in between a collection scans only what the run made since, and
costs milliseconds. `benchmarks/bench_memory.py`: 360 MB peak for one year of EURUSD M1, 370 MB
for five (1.03; with the trim alone 1.28).

Where the C library has no `malloc_trim` (macOS, musl) the trim does nothing: their allocators
return memory differently, and nothing else depends on the call.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import threading
from collections.abc import Callable, Iterator

# The release runs after slices of at least this many (base) bars: a ranged run's slices of up to
# 50,000 bars, where the resident set crept. A refresh (a day of M1, at most a week's catch-up)
# never reaches it and leaves its few temporaries to the collector's own schedule.
RELEASE_AFTER_BARS = 20_000

_freeze_lock = threading.Lock()
_freeze_depth = 0


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


@contextlib.contextmanager
def long_lived_objects_frozen() -> Iterator[None]:
    """While a ranged run slices, keep the objects that existed before it out of the collector's
    scans (`gc.freeze`), so that a collection after each slice costs what the run made, not the
    whole code location. Nested or concurrent uses share one freeze, undone by the last to leave;
    what was garbage at the start is collected normally after it."""
    global _freeze_depth
    with _freeze_lock:
        if _freeze_depth == 0:
            gc.freeze()
        _freeze_depth += 1
    try:
        yield
    finally:
        with _freeze_lock:
            _freeze_depth -= 1
            if _freeze_depth == 0:
                gc.unfreeze()


def release_freed_memory() -> bool:
    """Collect the dead slices' reference cycles, then return the allocator's free pages to the
    kernel; True if any pages went back (False: none, or no glibc). Cheap inside
    `long_lived_objects_frozen`, a full scan of the process outside it."""
    gc.collect()
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
