"""Drive the shared rate limiter from several processes at once, as Dagster runs do.

Used by the limiter test and its benchmark: each worker process builds its own limiter on the
same backend and client, and requests bars as fast as its tokens allow; the bundled server's own
request log is the judge of whether the budget held. A worker may send requests of a weight
(a provider that counts request weight, as Binance does): it then asks for bars of that many hours
per bar, so the server's log says each request's weight (`weight_of`).
"""

from __future__ import annotations

import multiprocessing as mp
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from massive_pipeline.massive import MassiveClient
from massive_pipeline.massive.ratelimit import SharedRateLimiter


@dataclass(frozen=True)
class LoadResult:
    seconds: float
    requests_sent: int
    per_process: list[int]


@dataclass(frozen=True)
class _StartLine:
    """Workers report ready, then wait for the go; the deadline is set once all are ready, so a
    process that took long to start (a loaded machine) still gets its share of the run."""

    ready: Any
    go: Any
    deadline: Any

    def wait_for_go(self) -> float:
        self.ready.put(None)
        if not self.go.wait(timeout=300):
            raise TimeoutError("the load never started")
        return float(self.deadline.value)


def _worker(
    url: str, key: str, limit: int, window: float, reserve: int, backend_url: str | None,
    line: _StartLine, critical: bool, out: mp.Queue, budget: str = "massive", weight: int = 1,
    margin_ms: int | None = None,
) -> None:
    limiter = SharedRateLimiter(limit, window, budget=budget, reserve=reserve, backend_url=backend_url,
                                margin_ms=margin_ms)
    sent = 0
    day = pd.Timestamp("2026-01-06", tz="UTC")
    with MassiveClient(url, key, acquire=lambda: limiter.take(critical=critical, weight=weight)) as client:
        deadline = line.wait_for_go()
        while True:
            # the limiter, not this loop, decides when the next request goes; stop once a token
            # would be taken after the deadline
            if time.time() >= deadline:
                break
            client.get_aggregates("C:EURUSD", weight, "hour", day, day + pd.Timedelta(hours=2))
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
    budget: str = "massive",
    weights: Sequence[int] | None = None,
    margin_ms: int | None = None,
) -> LoadResult:
    """Run `processes` workers for `seconds` against `url`; returns what they sent. `weights`
    gives each worker's request weight (all 1 by default), `budget` the limiter budget they share,
    `margin_ms` the limiter's allowance for latency jitter (default: its own for `window`)."""
    weights = list(weights) if weights is not None else [1] * processes
    if len(weights) != processes:
        raise ValueError(f"{len(weights)} weights given for {processes} processes")
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    line = _StartLine(ready=ctx.Queue(), go=ctx.Event(), deadline=ctx.Value("d", 0.0))
    workers = [
        ctx.Process(
            target=_worker,
            args=(url, key, limit, window, reserve, backend_url, line, critical, out, budget, weight, margin_ms),
            daemon=True,
        )
        for weight in weights
    ]
    return _race(workers, line, out, seconds)


def _race(workers: list[Any], line: _StartLine, out: mp.Queue, seconds: float) -> LoadResult:
    """Start the workers, release them together once all are ready, collect what each sent."""
    for w in workers:
        w.start()
    for _ in workers:
        line.ready.get(timeout=300)
    started = time.time()
    line.deadline.value = started + seconds
    line.go.set()
    counts = [out.get(timeout=seconds + 120) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    return LoadResult(seconds=time.time() - started, requests_sent=sum(counts), per_process=counts)


_MULTIPLIER = re.compile(r"/range/(\d+)/")


def weight_of(path: str) -> int:
    """The weight a load worker gave the request at `path` (its bars' multiplier)."""
    found = _MULTIPLIER.search(path)
    if found is None:
        raise ValueError(f"not a load worker's aggregates path: {path}")
    return int(found.group(1))


# klines per request of the Binance workers, one per weight band (1, 2 and 5 with limit 100, 500, 1000)
BINANCE_KLINES_PER_REQUEST: tuple[int, ...] = (100, 500, 1000)


def _binance_worker(url: str, limit: int, window: float, backend_url: str | None, line: _StartLine,
                    out: mp.Queue, klines: int, margin_ms: int | None) -> None:
    """Fetch `klines` minutes of BTCUSDT per request through the pipeline's Binance client, its
    weight paid from the shared `binance` budget, until the deadline."""
    from massive_pipeline.binance.client import BinanceClient

    limiter = SharedRateLimiter(limit, window, budget="binance", backend_url=backend_url, margin_ms=margin_ms)
    sent = 0
    start = pd.Timestamp("2026-03-02", tz="UTC")
    with BinanceClient(url, acquire=lambda weight: limiter.take(weight=weight)) as client:
        deadline = line.wait_for_go()
        while time.time() < deadline:
            client.get_klines("BTCUSDT", "1m", start, start + pd.Timedelta(minutes=klines))
            sent += 1
    limiter.close()
    out.put(sent)


def run_binance_load(url: str, *, limit: int, window: float, seconds: float, backend_url: str | None,
                     klines: Sequence[int] = BINANCE_KLINES_PER_REQUEST, margin_ms: int | None = None) -> LoadResult:
    """One process per entry of `klines` against a Binance-compatible server, sharing one weight
    budget of `limit` units per `window` seconds; the server's log says what each request weighed.
    `margin_ms` is the limiter's allowance for latency jitter (default: its own for `window`)."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    line = _StartLine(ready=ctx.Queue(), go=ctx.Event(), deadline=ctx.Value("d", 0.0))
    workers = [ctx.Process(target=_binance_worker, args=(url, limit, window, backend_url, line, out, n, margin_ms), daemon=True)
               for n in klines]
    return _race(workers, line, out, seconds)
