"""Worker processes that build the shared limiter at the same instant, as a deployment's first start does.

Kept out of the test module so that spawned children import only this and the limiter. The workers
live for the whole test and are released together, round after round, by one barrier: starting
fresh processes each round would let process start-up jitter spread them apart.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from massive_pipeline.massive.ratelimit import SharedRateLimiter

LIMIT, WINDOW, RESERVE = 100, 60.0, 1
BARRIER_TIMEOUT = 30.0


def _worker(urls: mp.Queue, barrier, results: mp.Queue) -> None:
    while (url := urls.get()) is not None:
        try:
            barrier.wait(BARRIER_TIMEOUT)
            with SharedRateLimiter(LIMIT, WINDOW, reserve=RESERVE, backend_url=url) as limiter:
                limiter.acquire(critical=False)
            results.put("ok")
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            results.put(f"{type(exc).__name__}: {exc}")


@dataclass
class StartingLine:
    """`processes` workers waiting for a backend URL; `start(url)` releases them all on it."""

    urls: list[mp.Queue]
    results: mp.Queue
    processes: list

    def start(self, url: str, timeout: float = 60.0) -> list[str]:
        """Every worker builds a limiter on `url` at once and acquires one token; their outcomes."""
        for queue in self.urls:
            queue.put(url)
        return [self.results.get(timeout=timeout) for _ in self.processes]


@contextmanager
def starting_line(processes: int) -> Iterator[StartingLine]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes)
    urls = [ctx.Queue() for _ in range(processes)]
    results = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(q, barrier, results), daemon=True) for q in urls]
    for w in workers:
        w.start()
    try:
        yield StartingLine(urls, results, workers)
    finally:
        for q in urls:
            q.put(None)
        for w in workers:
            w.join(timeout=30)
            if w.is_alive():
                w.terminate()
