"""Processes that flood the shared limiter with non-critical requests while one sends critical ones.

Kept out of the test module so that spawned children import only this, the client and the limiter.
Non-critical requests ask for `NONCRITICAL_TICKER` and critical ones for `CRITICAL_TICKER`, so the
bundled server's own request log tells them apart; the critical process reports when it asked
for each request, so its waits are measured against the server's arrival times.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import time
from dataclasses import dataclass

import pandas as pd

from massive_pipeline.massive import MassiveClient
from massive_pipeline.massive.ratelimit import SharedRateLimiter

NONCRITICAL_TICKER, CRITICAL_TICKER = "C:EURUSD", "C:XAUUSD"
KEY = "mix-test-key"
BARRIER_TIMEOUT = 60.0


@dataclass(frozen=True)
class MixResult:
    noncritical_sent: list[int]  # per flooding process
    critical_asked: list[float]  # time.time() at which each critical request asked for a token


def _worker(url: str, limit: int, window: float, reserve: int, margin_ms: int | None, backend_url: str,
            seconds: float, critical: bool, pauses: tuple[float, ...], barrier, out: mp.Queue) -> None:
    limiter = SharedRateLimiter(limit, window, reserve=reserve, backend_url=backend_url, margin_ms=margin_ms)
    asked: list[float] = []

    def acquire() -> None:
        asked.append(time.time())
        limiter.acquire(critical=critical)

    day = pd.Timestamp("2026-01-06", tz="UTC")
    ticker = CRITICAL_TICKER if critical else NONCRITICAL_TICKER
    barrier.wait(BARRIER_TIMEOUT)  # every process built its limiter: start together
    deadline = time.time() + seconds
    with MassiveClient(url, KEY, acquire=acquire) as client:
        for pause in itertools.cycle(pauses):
            if time.time() >= deadline:
                break
            client.get_aggregates(ticker, 1, "hour", day, day + pd.Timedelta(hours=2))
            if pause:
                time.sleep(pause)  # the critical process's pace between requests (load shape, not a wait)
    limiter.close()
    out.put((critical, asked))


def run_mix(url: str, *, backend_url: str, limit: int, window: float, reserve: int, seconds: float,
            margin_ms: int | None = None, flooders: int = 3, critical_pauses: tuple[float, ...] = (0.0, 0.0, 0.0, 2.5)) -> MixResult:
    """`flooders` processes sending non-critical requests back to back and one sending critical
    requests, each the next of `critical_pauses` seconds after the previous one was answered, for
    `seconds`. The default is a priority refresh tick's shape: three requests back to back (one per
    critical symbol), then a pause longer than the window."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    barrier = ctx.Barrier(flooders + 1)
    roles = [False] * flooders + [True]
    workers = [
        ctx.Process(target=_worker, daemon=True, args=(
            url, limit, window, reserve, margin_ms, backend_url, seconds, critical,
            critical_pauses if critical else (0.0,), barrier, out))
        for critical in roles
    ]
    for w in workers:
        w.start()
    try:
        results = [out.get(timeout=BARRIER_TIMEOUT + seconds + 30) for _ in workers]
    finally:
        for w in workers:
            w.join(timeout=30)
            if w.is_alive():
                w.terminate()
    return MixResult(
        noncritical_sent=[len(asked) for critical, asked in results if not critical],
        critical_asked=next(asked for critical, asked in results if critical),
    )
