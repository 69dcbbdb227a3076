"""Acceptance: the stream against the bundled Binance-compatible servers, on an accelerated clock.

Closed klines are in the store within 2 s of their close (the server logs when it sent each close;
the consumer's callback says when the write committed; both on this host's monotonic clock).
Then the stream server is stopped for longer than three klines and started again: the consumer
reconnects on its own, the stream leaves a hole, and one REST refresh of the day through the
pipeline's REST path fills it, after which gap detection finds nothing and no stream bar was
revised (the stream and the REST server serve the same bars).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pandas as pd
import pytest

from massive_pipeline.binance import BinanceClient, BinanceProvider
from massive_pipeline.core.calendars import get_calendar
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.quality.gaps import find_gaps
from massive_pipeline.quality.validation import validate_bars
from massive_pipeline.store import CandleStore
from massive_pipeline.stream import Backoff, KlineWriter, StreamConsumer, StreamReporter, stream_url
from massive_pipeline.stream.writer import Written
from massive_pipeline.testing.binance_server import BinanceServer
from massive_pipeline.testing.binance_server.stream import MINUTE_MS, KlineStream

# A fixed past instant (after 06:00 UTC, so the generator misses no crypto minute): the bars are the
# same on any day the test runs. Speed 120: one kline every 0.5 s of real time, above what one
# validated write costs on a loaded 2-core machine (about 0.3 s), so closes do not queue up.
START = pd.Timestamp("2026-03-02 12:00:05", tz="UTC")
SPEED = 120
LATENCY_LIMIT_S = 2.0
SYMBOL = "BTCUSDT"


class ConsumerThread:
    """The real consumer in its own thread and event loop, as the CLI runs it; `written` collects
    (open ms -> monotonic time the write committed) and wakes waiters."""

    def __init__(self, store: CandleStore, base_url: str, symbols: dict[str, str]) -> None:
        self.written: dict[int, float] = {}
        self._cond = threading.Condition()
        self.consumer = StreamConsumer(
            stream_url(list(symbols), base_url), KlineWriter(store, symbols), StreamReporter(store, symbols.values()),
            backoff=Backoff(initial=0.05, maximum=0.2), on_written=self._on_written,
        )
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self.consumer.run(self._stop),),
                                        daemon=True)

    def _on_written(self, written: Written) -> None:
        with self._cond:
            self.written[written.kline.open_ms] = time.monotonic()
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.written) >= count, timeout), (
                f"only {len(self.written)} of {count} klines written in {timeout} s")

    def drain(self, sent: list[int], timeout: float) -> None:
        """Wait (at most `timeout`) until every kline in `sent` is written; the check says which were late."""
        with self._cond:
            self._cond.wait_for(lambda: set(sent) <= set(self.written), timeout)

    def __enter__(self) -> ConsumerThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "the consumer did not stop"
        self._loop.close()


@pytest.fixture
def store(tmp_path) -> Iterator[CandleStore]:
    with CandleStore(f"sqlite:///{tmp_path}/candles.sqlite") as s:
        s.create_schema()
        yield s


def test_the_stream_stores_closes_within_2_s_and_rest_fills_what_an_outage_cost(store: CandleStore):
    stream = KlineStream()
    server = BinanceServer(now=START, speed=SPEED, extensions=[stream.mount]).start()
    try:
        with ConsumerThread(store, server.url.replace("http://", "ws://"), {SYMBOL: SYMBOL}) as consumer:
            consumer.wait_for(6)
            server.stop()
            down_from = server.clock.now_ms()
            # the outage is a span of the server's clock (five klines), so it is waited for on that clock
            time.sleep(server.clock.wall_seconds_until(down_from + 5 * MINUTE_MS))
            server.start()
            consumer.wait_for(12)
            consumer.drain([c.open_ms for c in stream.closes_of(SYMBOL)], LATENCY_LIMIT_S + 1)
            stream.close_all()  # nothing is sent any more that the consumer is not there to write
        missed = check_latency_and_hole(store, stream, consumer, SYMBOL)
        streamed = store.read(SYMBOL, "M1")
        lo, hi = streamed["ts"].min(), streamed["ts"].max() + pd.Timedelta(minutes=1)

        # the fallback: the REST refresh of the window, as the fetched asset does it
        with BinanceClient(server.url, clock=server.clock.now) as client:
            fetched = BinanceProvider(client).fetch_bars(SYMBOL, Timeframe.M1, lo, hi)
        checked = validate_bars(fetched.bars, Timeframe.M1, f"{SYMBOL} M1")
        assert checked.rows_rejected == 0
        result = store.write_window(SYMBOL, Timeframe.M1, lo, hi, checked.valid, source="binance",
                                    now=server.clock.now())
    finally:
        server.stop()
    assert result.rows_new == len(missed) and result.rows_unchanged == len(streamed)
    assert result.rows_revised == 0 and store.revisions().empty  # the stream's bars are the REST bars
    stored = store.read(SYMBOL, "M1")
    assert find_gaps(stored["ts"], get_calendar("crypto"), lo, hi, Timeframe.M1, min_bars=1).empty
    assert len(stored) == (hi - lo) // pd.Timedelta(minutes=1)


def check_latency_and_hole(store: CandleStore, stream: KlineStream, consumer: ConsumerThread,
                           symbol: str) -> list[pd.Timestamp]:
    """Every close the server sent was stored within the limit; returns the minutes the stream missed."""
    sent = stream.closes_of(symbol)
    assert len(sent) >= 12
    late = [(c.open_ms, consumer.written.get(c.open_ms, float("inf")) - c.sent_monotonic) for c in sent
            if consumer.written.get(c.open_ms, float("inf")) - c.sent_monotonic > LATENCY_LIMIT_S]
    assert late == [], f"klines stored later than {LATENCY_LIMIT_S} s after their close: {late[:5]}"
    stored = store.read(symbol, "M1")
    assert bool(stored["complete"].all()) and set(stored["source"]) == {"binance_stream"}
    minutes = pd.date_range(stored["ts"].min(), stored["ts"].max(), freq="1min")
    missed = sorted(set(minutes) - set(stored["ts"]))
    assert len(missed) >= 3, f"the outage should have cost at least three klines, missed {missed}"
    assert consumer.consumer.stats.reconnects >= 1 and consumer.consumer.stats.connections >= 2
    status = store.sync_status().set_index("symbol").loc[symbol]
    assert status["status"] == "ok" and status["rows"] == len(stored) and status["last_bar_ts"] == stored["ts"].max()
    return missed
