"""The freed pages of a slice go back to the kernel, so a long ranged run's resident set stays flat.

Measured in a fresh interpreter (its own heap, nothing else allocating): many arrays below glibc's
mmap threshold are allocated, every other one freed, which leaves free pages interleaved with live
ones that `free` alone never returns; the resident set must fall by most of the freed size only once
`release_freed_memory` runs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_PROBE = """
import json, os
import numpy as np
from massive_pipeline.candles.heap import release_freed_memory

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

blocks = [np.ones(8_000) for _ in range(3_000)]  # 64 KB each (below the 128 KB mmap threshold): 192 MB
del blocks[::2]                                    # 96 MB freed, interleaved with what stays live
freed = rss()
released = release_freed_memory()
print(json.dumps({"freed": freed, "trimmed": rss(), "released": released}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim and /proc are Linux's")
def test_free_pages_inside_the_heap_go_back_to_the_kernel():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    figures = json.loads(out.stdout)
    assert figures["released"] is True
    # most of the 96 MB freed was still resident after `free`, and is not after the release
    assert figures["freed"] - figures["trimmed"] > 60 * 2**20, figures



def test_a_frozen_run_collects_only_what_it_made_and_unfreezes_on_the_way_out():
    """Inside `long_lived_objects_frozen` the objects that existed before are in the permanent
    generation, so a collection does not visit them, yet frees the cycles made inside; leaving
    (also on an error) returns them to the collector, and nested uses share one freeze."""
    import gc

    from massive_pipeline.candles.heap import long_lived_objects_frozen, release_freed_memory

    class Node:
        def __init__(self) -> None:
            self.me = self

    before = Node()  # a long-lived object of the process, alive through the run
    assert gc.get_freeze_count() == 0
    with long_lived_objects_frozen():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with long_lived_objects_frozen():  # a nested ranged write keeps the one freeze
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
        visited: list[int] = []
        gc.callbacks.append(lambda phase, info: visited.append(info.get("collected", 0)) if phase == "stop" else None)
        try:
            for _ in range(100):
                Node()  # garbage in a cycle, made inside the run
            release_freed_memory()
        finally:
            gc.callbacks.pop()
        assert visited and visited[-1] >= 100  # the run's cycles were collected
        assert gc.is_tracked(before)
    assert gc.get_freeze_count() == 0
    try:
        with long_lived_objects_frozen():
            raise RuntimeError("a slice failed")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0
