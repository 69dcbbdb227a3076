"""What the stream did, in `sync_status`, so `massive-pipeline status` shows it beside the runs.

Per streamed series (symbol × M1): `running` once the stream is connected, `ok` with the last bar
and the row count after each closed kline written (as a REST materialization records it), and
`error` with the reason and the reconnect plan while the stream is cut off, e.g. `stream: no
connection to ws://host:9443 (connection refused); reconnect 3 in 2.1 s`. The REST refresh writes
`ok` over it when it runs, which is right: the series is then in sync again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.store import CandleStore, StoreError

log = logging.getLogger(__name__)
TIMEFRAME = Timeframe.M1


def shown_url(url: str) -> str:
    """The stream's address without credentials or query (never in status or logs)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class StreamReporter:
    """Writes the stream's state for each of `symbols` (catalog symbols) into the store's sync_status.

    A store that cannot be reached while reporting is logged, not raised: the stream keeps
    running and the next report tries again (the bars themselves are written by `KlineWriter`,
    whose errors do count).
    """

    def __init__(self, store: CandleStore, symbols: Iterable[str]) -> None:
        self.store = store
        self.symbols = tuple(symbols)

    def _update(self, symbols: Iterable[str], status: str, error: str | None = None, **values: object) -> None:
        for symbol in symbols:
            try:
                self.store.update_sync_status(symbol, TIMEFRAME, status=status, error=error, **values)  # type: ignore[arg-type]
            except StoreError as exc:
                log.warning("stream: could not record %s in sync_status for %s: %s", status, symbol, exc)

    def connected(self, url: str) -> None:
        self._update(self.symbols, "running")
        log.info("stream: connected to %s", shown_url(url))

    def written(self, symbol: str) -> None:
        """After a closed kline of `symbol` was stored: `ok`, its last bar and rows."""
        try:
            last, rows = self.store.last_bar_ts(symbol, TIMEFRAME), self.store.count(symbol, TIMEFRAME)
        except StoreError as exc:
            log.warning("stream: could not read %s's last bar for sync_status: %s", symbol, exc)
            return
        self._update((symbol,), "ok", last_bar_ts=last, rows=rows)

    def disconnected(self, url: str, reason: str, attempt: int, delay: float) -> None:
        line = f"stream: no connection to {shown_url(url)} ({reason}); reconnect {attempt} in {delay:.1f} s"
        self._update(self.symbols, "error", line)
        log.warning(line)
