"""The connection loop: connect, read kline events, write the closed ones, reconnect with backoff.

One asyncio task per stream (one connection carries every symbol through Binance's combined
stream). The WebSocket library (`websockets`) answers pings and closes cleanly; this loop owns
what it does not: which messages are bars, when to give up on a connection and how long to wait
before the next. A malformed event is logged on one line and skipped: the connection is fine,
and the REST refresh fills the minute. A lost connection (refused, reset, closed by the server,
no message for `idle_timeout` seconds) is reported in `sync_status` and retried after
`Backoff.delay(attempt)`; the attempt count restarts once a connection has delivered a kline.
Writes run in a worker thread so a slow store never stalls the pings. `stop` ends the loop at
once: a pending read or wait is cancelled and the connection closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

from massive_pipeline.store import StoreError
from massive_pipeline.stream.backoff import Backoff
from massive_pipeline.stream.events import Kline, KlineEventError, parse_event
from massive_pipeline.stream.status import StreamReporter
from massive_pipeline.stream.writer import KlineSkipped, KlineWriter, Written

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]
# Binance sends a kline event every ~2 s on a live symbol; a minute of silence is a dead connection.
IDLE_TIMEOUT = 60.0


@dataclass
class StreamStats:
    connections: int = 0
    reconnects: int = 0
    events: int = 0
    written: int = 0
    open_skipped: int = 0
    malformed: int = 0
    skipped: int = 0
    rejected: int = 0

    def line(self) -> str:
        return (f"{self.written} closed klines written, {self.open_skipped} open updates skipped, "
                f"{self.malformed} malformed events, {self.rejected} rejected bars, "
                f"{self.connections} connections ({self.reconnects} reconnects)")


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]


class StreamConsumer:
    """Consumes `url` until `stop` is set; `on_written` is called after each stored kline (tests,
    the CLI's progress line). `connect` and `sleep` are injectable for the reconnect tests."""

    def __init__(
        self,
        url: str,
        writer: KlineWriter,
        reporter: StreamReporter,
        *,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
        connect: Callable[..., Any] = ws_connect,
        idle_timeout: float = IDLE_TIMEOUT,
        on_written: Callable[[Written], None] | None = None,
    ) -> None:
        self.url = url
        self.writer = writer
        self.reporter = reporter
        self.backoff = backoff or Backoff()
        self.stats = StreamStats()
        self._sleep = sleep
        self._connect = connect
        self._idle_timeout = idle_timeout
        self._on_written = on_written
        self.delays: list[float] = []

    async def run(self, stop: asyncio.Event) -> StreamStats:
        await asyncio.to_thread(self.writer.warm_up)
        attempt = 0
        while not stop.is_set():
            delivered, reason = await self._until_stopped(self._session(), stop)
            if stop.is_set():
                break
            attempt = 1 if delivered else attempt + 1
            delay = self.backoff.delay(attempt)
            self.delays.append(delay)
            self.stats.reconnects += 1
            self.reporter.disconnected(self.url, reason or "closed", attempt, delay)
            await self._until_stopped(self._sleep(delay), stop)
        return self.stats

    @staticmethod
    async def _until_stopped(work: Awaitable[Any], stop: asyncio.Event) -> Any:
        """`work`'s result, or None once `stop` is set first (then `work` is cancelled)."""
        task = asyncio.ensure_future(work)
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return (False, None)

    async def _session(self) -> tuple[bool, str]:
        """One connection: (whether it delivered a closed kline, why it ended)."""
        delivered = opened = False
        try:
            async with self._connect(self.url, open_timeout=10, ping_interval=20, ping_timeout=20,
                                     close_timeout=2, max_queue=256) as ws:
                opened = True
                self.stats.connections += 1
                self.reporter.connected(self.url)
                while True:
                    message = await asyncio.wait_for(ws.recv(), self._idle_timeout)
                    if await self._handle(message):
                        delivered = True
        except TimeoutError:
            return delivered, f"no message for {self._idle_timeout:g} s" if opened else "opening timed out"
        except (InvalidURI, InvalidHandshake) as exc:
            return delivered, f"handshake refused: {_reason(exc)}"
        except (OSError, WebSocketException) as exc:
            return delivered, _reason(exc)

    async def _handle(self, message: str | bytes) -> bool:
        """Parse and, for a closed kline, write; True when a bar was stored."""
        self.stats.events += 1
        try:
            kline = parse_event(message)
        except KlineEventError as exc:
            self.stats.malformed += 1
            log.warning("stream: %s", exc)
            return False
        if kline is None:
            return False
        if not kline.closed:
            self.stats.open_skipped += 1
            return False
        return await self._write(kline)

    async def _write(self, kline: Kline) -> bool:
        try:
            written = await asyncio.to_thread(self.writer.write, kline)
        except KlineSkipped as exc:
            self.stats.skipped += 1
            log.warning("stream: skipped: %s", exc)
            return False
        except StoreError as exc:  # the store is down: the REST refresh fills the minute later
            log.error("stream: %s not stored: %s", kline.symbol, exc)
            return False
        if written.result is None:
            self.stats.rejected += written.rejected
            return False
        self.stats.written += 1
        await asyncio.to_thread(self.reporter.written, written.symbol)
        if self._on_written is not None:
            self._on_written(written)
        log.info("stream: %s M1 %s written (close %s)", written.symbol, kline.ts.strftime("%Y-%m-%d %H:%M"),
                 kline.close)
        return True
