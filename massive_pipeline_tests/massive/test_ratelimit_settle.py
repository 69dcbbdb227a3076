"""A request counts from its answer: the limiter's tickets, settled when an attempt ends.

The server counts a request when it arrives. A process that stalls between the limiter's decision
and the send (descheduled on a loaded host) would otherwise let the request five entries later
arrive less than a window after it.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import httpx
import pandas as pd
import pytest

from massive_pipeline.massive.client import MassiveClient
from massive_pipeline.massive.ratelimit import SharedRateLimiter
from massive_pipeline.testing.devserver import DevServer
from massive_pipeline_tests.massive.test_ratelimit import backend_url, fresh_postgres  # noqa: F401 - fixture
from massive_pipeline_tests.virtual_time import VirtualTime

KEY = "settle-test-key"
DAY = pd.Timestamp("2026-01-06", tz="UTC")


@pytest.mark.parametrize("backend_url", ["sqlite", "redis", "postgres"], indirect=True)
def test_a_settled_request_counts_from_its_answer(backend_url):  # noqa: F811 - the imported fixture
    """Five requests at 0, their answers at 3 and 4: the sixth goes a window after the first answer,
    not after the first decision; settling again changes nothing, an unsettled request counts from
    its decision (a non-critical request settles in the non-critical count too)."""
    vt = VirtualTime()
    granted: list[float] = []

    def actor() -> None:
        with SharedRateLimiter(5, 60.0, reserve=1, backend_url=backend_url, margin_ms=0,
                               clock=vt.now, sleep=vt.sleep) as limiter:
            limiter.reset()
            tickets = [limiter.take(critical=True)] + [limiter.take() for _ in range(3)]
            unsettled = limiter.acquire(critical=True)
            assert unsettled == 0.0 and all(t.waited_seconds == 0.0 for t in tickets)
            vt.sleep(3.0)
            tickets[0].settle()
            vt.sleep(1.0)
            for ticket in tickets[1:]:
                ticket.settle()
            tickets[0].settle()  # a second settle does not move it again
            # the unsettled critical entry (stamped 0) is the oldest: it frees the first slot at 60
            limiter.take(critical=True).settle()
            granted.append(vt.now())
            # then the entry settled at 3
            limiter.take(critical=True)
            granted.append(vt.now())
            # the non-critical ones were settled at 4: a non-critical request finds its share
            # (4 of 5) full until then
            limiter.take()
            granted.append(vt.now())

    vt.spawn(0.0, actor)
    vt.run()
    assert granted == [pytest.approx(60.0, abs=0.01), pytest.approx(63.0, abs=0.01), pytest.approx(64.0, abs=0.01)]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_log_table_from_before_settling_gains_its_column(tmp_path, backend):
    """A limiter file or database made before requests were settled keeps working: the log gains
    its `waiter` column at the next start and settling works on it."""
    schema = ["CREATE TABLE limiter_log (ts_ms BIGINT NOT NULL, critical SMALLINT NOT NULL)",
              "CREATE TABLE limiter_waiters (id TEXT PRIMARY KEY, critical SMALLINT NOT NULL, "
              "lease_until_ms BIGINT NOT NULL, weight INTEGER NOT NULL DEFAULT 1)",
              "CREATE TABLE limiter_stats (name TEXT PRIMARY KEY, value DOUBLE PRECISION NOT NULL)",
              "INSERT INTO limiter_log VALUES (1000, 0)"]
    vt = VirtualTime(start=1.0)
    if backend == "sqlite":
        path = tmp_path / "limiter.sqlite"
        with sqlite3.connect(path) as conn:
            for statement in schema:
                conn.execute(statement)
        urls = [f"sqlite:///{path}"]
    else:
        import psycopg

        context = fresh_postgres()
        urls = [context.__enter__()]
        with psycopg.connect(urls[0].replace("postgresql+psycopg://", "postgresql://")) as conn:
            for statement in schema:
                conn.execute(statement.replace("limiter_", "massive_limiter_"))
    try:
        times: list[float] = []

        def actor() -> None:
            with SharedRateLimiter(2, 10.0, backend_url=urls[0], margin_ms=0, clock=vt.now,
                                   sleep=vt.sleep) as limiter:
                limiter.take().settle()  # beside the old entry (stamped 1.0): the window is full
                vt.sleep(4.0)
                limiter.take()  # the old entry expires at 11.0
                times.append(vt.now())

        vt.spawn(0.0, actor)
        vt.run()
        assert times == [pytest.approx(11.0, abs=0.01)]
    finally:
        if backend == "postgres":
            context.__exit__(None, None, None)


class _StalledSend(httpx.BaseTransport):
    """A process that stalls between the limiter's decision and the send: the request leaves
    `seconds` after its token was taken (the network edge; the server is the bundled one)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.entered = threading.Event()
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.entered.set()
        time.sleep(self.seconds)  # the stall itself, which is what this test is about
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


# judged by arrival times at the server: in the serial phase, away from the parallel phase's load
@pytest.mark.serial
@pytest.mark.parametrize("settled", [True, False], ids=["settled", "counted-from-decision"])
def test_a_request_that_reaches_the_server_late_draws_no_429_once_settled(tmp_path, settled):
    """Request 1 takes its token and reaches the server a second later; requests 2-5 go out at
    once; request 6 waits for a slot. Counted from its decision, request 1's slot frees a window
    after its decision, so 6 arrives less than a window after 1 did, and the server's sliding
    window answers 429. Settled at its answer, it frees a window after it arrived: no 429."""
    window, stall = 2.0, 1.0
    with DevServer(port=0, rate_limit=5, rate_window_seconds=window) as server:
        limiter = SharedRateLimiter(5, window, backend_url=f"sqlite:///{tmp_path}/limiter.sqlite", margin_ms=100)

        def hook() -> object:
            return limiter.take() if settled else limiter.acquire()

        stalled = _StalledSend(stall)
        errors: list[BaseException] = []

        def slow_request() -> None:
            try:
                slow.get_aggregates("C:EURUSD", 1, "hour", DAY, DAY + pd.Timedelta(hours=2))
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        with (MassiveClient(server.url, KEY, acquire=hook, transport=stalled) as slow,
              MassiveClient(server.url, KEY, acquire=hook, throttle_wait=0.2, max_retry_after=0.5) as fast):
            thread = threading.Thread(target=slow_request)
            thread.start()
            assert stalled.entered.wait(timeout=30)
            # requests 2-5 leave a little after request 1's decision, past the limiter's margin,
            # so that they and request 1 all sit in the window request 6 lands in
            time.sleep(0.3)
            for _ in range(5):
                fast.get_aggregates("C:EURUSD", 1, "hour", DAY, DAY + pd.Timedelta(hours=2))
            thread.join(timeout=60)
        limiter.close()
        assert not errors, errors
        rejected = server.rejected_429_count()
    if settled:
        assert rejected == 0
    else:
        assert rejected >= 1


def test_a_settle_the_backend_cannot_take_is_one_warning_line(tmp_path, caplog):
    """A settle that fails (here: the log table gone under the limiter) does not fail the request
    that was answered; it is said in one line naming the backend and the error, and dropped."""
    path = tmp_path / "limiter.sqlite"
    with SharedRateLimiter(5, 60.0, backend_url=f"sqlite:///{path}", margin_ms=0) as limiter:
        ticket = limiter.take()
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TABLE limiter_log")
        with caplog.at_level("WARNING", logger="massive_pipeline.massive.ratelimit"):
            ticket.settle()
            ticket.settle()  # settled once: the second does nothing, says nothing
    lines = [r.getMessage() for r in caplog.records if r.name == "massive_pipeline.massive.ratelimit"]
    assert lines == [f"rate limiter {limiter.backend}: a request's settle was lost (OperationalError); "
                     "it counts from its decision"]
