"""Drive the shared rate limiter from several processes at once, as Dagster runs do.

Used by the limiter test and its benchmark: each worker process builds its own limiter on the
same backend and client, and requests bars as fast as its tokens allow; the bundled server's own
request log is the judge of whether the budget held.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass

import pandas as pd

from massive_pipeline.massive import MassiveClient
from massive_pipeline.massive.ratelimit import SharedRateLimiter


@dataclass(frozen=True)
class LoadResult:
    seconds: float
    requests_sent: int
    per_process: list[int]


def _worker(
    url: str, key: str, limit: int, window: float, reserve: int, backend_url: str | None,
    deadline: float, critical: bool, out: mp.Queue,
) -> None:
    limiter = SharedRateLimiter(limit, window, reserve=reserve, backend_url=backend_url)
    sent = 0
    day = pd.Timestamp("2026-01-06", tz="UTC")
    with MassiveClient(url, key, acquire=lambda: limiter.acquire(critical=critical)) as client:
        while True:
            # the limiter, not this loop, decides when the next request goes; stop once a token
            # would be taken after the deadline
            if time.time() >= deadline:
                break
            client.get_aggregates("C:EURUSD", 1, "hour", day, day + pd.Timedelta(hours=2))
            sent += 1
    limiter.close()
    out.put(sent)


def run_load(
    url: str,
    *,
    processes: int = 3,
    limit: int = 5,
    window: float = 2.0,
    seconds: float = 60.0,
    reserve: int = 0,
    backend_url: str | None = None,
    key: str = "load-test-key",
    critical: bool = False,
) -> LoadResult:
    """Run `processes` workers for `seconds` against `url`; returns what they sent."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    started = time.time()
    deadline = started + seconds
    workers = [
        ctx.Process(
            target=_worker,
            args=(url, key, limit, window, reserve, backend_url, deadline, critical, out),
            daemon=True,
        )
        for _ in range(processes)
    ]
    for w in workers:
        w.start()
    counts = [out.get(timeout=seconds + 120) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    return LoadResult(seconds=time.time() - started, requests_sent=sum(counts), per_process=counts)
