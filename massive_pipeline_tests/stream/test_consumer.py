"""The consumer loop: which messages become bars, and the reconnect schedule (connections and
sleeps injected at the network edge; the end-to-end runs against the bundled server are in
test_stream_fallback.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pandas as pd
import pytest
from websockets.exceptions import ConnectionClosedError

from massive_pipeline.store import CandleStore
from massive_pipeline.stream import Backoff, KlineWriter, StreamConsumer, StreamReporter

NOON_MS = pd.Timestamp("2026-03-02 12:00", tz="UTC").value // 1_000_000
URL = "ws://127.0.0.1:1/ws/btcusdt@kline_1m"


def event(minute: int, *, closed: bool = True, close: str = "100.50000000") -> str:
    open_ms = NOON_MS + minute * 60_000
    return json.dumps({"e": "kline", "E": open_ms + 60_000, "s": "BTCUSDT", "k": {
        "t": open_ms, "T": open_ms + 59_999, "s": "BTCUSDT", "i": "1m", "o": "100.00000000", "c": close,
        "h": "101.00000000", "l": "99.50000000", "v": "2.00000000", "n": 7, "x": closed, "q": "201.00000000"}})


class FakeConnection:
    """A connection that delivers `messages`, then is dropped by the peer."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = list(messages)

    async def __aenter__(self) -> FakeConnection:
        return self

    async def __aexit__(self, *exc: object) -> bool:
        return False

    async def recv(self) -> str:
        if self.messages:
            return self.messages.pop(0)
        raise ConnectionClosedError(None, None)


class Refused:
    async def __aenter__(self) -> None:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)")

    async def __aexit__(self, *exc: object) -> bool:
        return False


class Script:
    """`connect` for the consumer: each call takes the next scripted connection (None: refused)."""

    def __init__(self, *connections: list[str] | None) -> None:
        self.connections = list(connections)
        self.calls = 0

    def __call__(self, url: str, **options: object) -> FakeConnection | Refused:
        self.calls += 1
        nxt = self.connections.pop(0) if self.connections else None
        return Refused() if nxt is None else FakeConnection(nxt)


@pytest.fixture
def store(tmp_path) -> Iterator[CandleStore]:
    with CandleStore(f"sqlite:///{tmp_path}/candles.sqlite") as s:
        s.create_schema()
        yield s


def run(store: CandleStore, script: Script, sleeps: int) -> tuple[StreamConsumer, list[float]]:
    """Run the consumer until it has slept `sleeps` times (the injected sleep returns at once)."""
    stop = asyncio.Event()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) >= sleeps:
            stop.set()

    consumer = StreamConsumer(
        URL, KlineWriter(store, {"BTCUSDT": "BTCUSDT"}), StreamReporter(store, ["BTCUSDT"]),
        backoff=Backoff(initial=0.5, factor=2.0, maximum=4.0, random=lambda: 0.0), sleep=sleep, connect=script,
    )
    asyncio.run(asyncio.wait_for(consumer.run(stop), 30))
    return consumer, slept


def test_a_refused_stream_is_retried_on_the_doubling_schedule_up_to_the_cap(store: CandleStore):
    script = Script()
    consumer, slept = run(store, script, sleeps=6)
    assert slept == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0] and script.calls == 6
    assert consumer.stats.reconnects == 6 and consumer.stats.connections == 0
    row = store.sync_status().iloc[0]
    assert row["status"] == "error"
    assert row["error"].startswith("stream: no connection to ws://127.0.0.1:1/ws/btcusdt@kline_1m (")
    assert row["error"].endswith("; reconnect 6 in 4.0 s")


def test_a_connection_that_delivered_a_bar_restarts_the_schedule(store: CandleStore):
    script = Script(None, None, [event(0)], None, [], None)
    _, slept = run(store, script, sleeps=6)
    # refused, refused, delivered then dropped (back to attempt 1), refused, opened without a bar, refused
    assert slept == [0.5, 1.0, 0.5, 1.0, 2.0, 4.0]


def test_only_closed_klines_are_written_and_a_malformed_event_is_skipped(store: CandleStore):
    messages = [event(0, closed=False, close="100.00000000"), '{"e": "kline", "k": {"o": "x"}}',
                '{"result": null, "id": 1}', event(0), event(1, closed=False, close="100.00000000")]
    consumer, _ = run(store, Script(messages), sleeps=1)
    stored = store.read("BTCUSDT", "M1")
    assert stored["ts"].tolist() == [pd.Timestamp(NOON_MS, unit="ms", tz="UTC")]
    assert stored["close"].tolist() == [100.5]  # the closed kline's close, not the open update's
    stats = consumer.stats
    assert (stats.events, stats.written, stats.open_skipped, stats.malformed) == (5, 1, 2, 1)
    assert stats.line().startswith("1 closed klines written, 2 open updates skipped, 1 malformed events")


def test_stop_ends_a_pending_read_at_once(store: CandleStore):
    class Silent(FakeConnection):
        async def recv(self) -> str:
            await asyncio.Event().wait()  # never answers
            raise AssertionError

    async def main() -> StreamConsumer:
        stop = asyncio.Event()
        consumer = StreamConsumer(URL, KlineWriter(store, {"BTCUSDT": "BTCUSDT"}), StreamReporter(store, ["BTCUSDT"]),
                                  connect=lambda url, **kw: Silent([]))
        task = asyncio.ensure_future(consumer.run(stop))
        while consumer.stats.connections == 0:
            await asyncio.sleep(0)
        stop.set()
        await asyncio.wait_for(task, 5)
        return consumer

    consumer = asyncio.run(main())
    assert consumer.stats.reconnects == 0 and store.sync_status().iloc[0]["status"] == "running"


def test_a_silent_connection_is_given_up_after_the_idle_timeout(store: CandleStore):
    class Silent(FakeConnection):
        async def recv(self) -> str:
            await asyncio.Event().wait()
            raise AssertionError

    stop = asyncio.Event()
    reasons: list[str] = []
    reporter = StreamReporter(store, ["BTCUSDT"])
    original = reporter.disconnected

    def disconnected(url: str, reason: str, attempt: int, delay: float) -> None:
        reasons.append(reason)
        stop.set()
        original(url, reason, attempt, delay)

    reporter.disconnected = disconnected  # type: ignore[method-assign]
    consumer = StreamConsumer(URL, KlineWriter(store, {"BTCUSDT": "BTCUSDT"}), reporter,
                              connect=lambda url, **kw: Silent([]), idle_timeout=0.05)
    asyncio.run(asyncio.wait_for(consumer.run(stop), 10))
    assert reasons == ["no message for 0.05 s"]
