"""The live Binance kline stream: closed 1-minute klines into the candle store as they close.

`massive-pipeline stream --symbols BTCUSDT` runs `consumer.StreamConsumer` over the WebSocket
at `BINANCE_WS_URL`. The stream is the fast path only: every bar it writes goes through the
store's window merge (`writer.py`), which never removes a neighbour, and the REST refresh stays
the fallback that fills whatever the stream missed while it was down, so gap detection sees the
same series either way. Small modules, one concern each: `events.py` (the event parser),
`backoff.py` (the reconnect schedule), `consumer.py` (the connection loop), `writer.py` (into the
store), `status.py` (what it did, in `sync_status`), `symbols.py` (Binance symbols to catalog
entries), `urls.py` (the stream addresses).
"""

from massive_pipeline.stream.backoff import Backoff
from massive_pipeline.stream.consumer import StreamConsumer, StreamStats
from massive_pipeline.stream.events import Kline, KlineEventError, parse_event
from massive_pipeline.stream.status import StreamReporter
from massive_pipeline.stream.urls import DEFAULT_WS_URL, WS_URL_ENV, stream_url
from massive_pipeline.stream.writer import KlineWriter

__all__ = [
    "DEFAULT_WS_URL",
    "WS_URL_ENV",
    "Backoff",
    "Kline",
    "KlineEventError",
    "KlineWriter",
    "StreamConsumer",
    "StreamReporter",
    "StreamStats",
    "parse_event",
    "stream_url",
]
