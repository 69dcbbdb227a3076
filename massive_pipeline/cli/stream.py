"""`massive-pipeline stream --symbols BTCUSDT`: Binance's live klines into the store until stopped.

Runs in the foreground (in the compose stack as the `stream` service): SIGTERM or Ctrl-C closes
the connection and returns 0 after a last line saying what was written. The REST refresh stays
the fallback; nothing here replaces a schedule.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from massive_pipeline.cli.args import UsageError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    stream_log = logging.getLogger("massive_pipeline.stream")
    stream_log.addHandler(handler)
    stream_log.setLevel(logging.INFO)
    stream_log.propagate = False


async def _run(consumer, stop: asyncio.Event) -> None:  # noqa: ANN001 - StreamConsumer, imported lazily
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        await consumer.run(stop)
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def cmd_stream(args: argparse.Namespace) -> int:
    from massive_pipeline.core.catalog import load_catalog
    from massive_pipeline.resources.candle_store import CandleStoreResource
    from massive_pipeline.stream import KlineWriter, StreamConsumer, StreamReporter, stream_url
    from massive_pipeline.stream.status import shown_url
    from massive_pipeline.stream.symbols import UnknownStreamSymbolError, resolve_symbols
    from massive_pipeline.stream.urls import StreamUrlError

    catalog = load_catalog()
    try:
        symbols = resolve_symbols(catalog, args.symbols.split(","))
        url = stream_url(list(symbols), args.url)
    except (UnknownStreamSymbolError, StreamUrlError) as exc:
        raise UsageError(str(exc)) from None
    store = CandleStoreResource().open()
    _log_to_stderr()
    consumer = StreamConsumer(
        url, KlineWriter(store, symbols), StreamReporter(store, symbols.values()),
        on_written=lambda w: print(f"{w.symbol} M1 {w.kline.ts:%Y-%m-%d %H:%M} written (close {w.kline.close:g})",
                                   flush=True),
    )
    print(f"streaming {', '.join(symbols)} from {shown_url(url)} into {store.url_display}; "
          f"Ctrl-C or SIGTERM stops", flush=True)
    try:
        asyncio.run(_run(consumer, asyncio.Event()))
    finally:
        store.dispose()
    print(f"stream stopped: {consumer.stats.line()}", flush=True)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    stream = subparsers.add_parser(
        "stream", help="write Binance's closed 1-minute klines into the store as they close (until stopped)")
    stream.add_argument("--symbols", required=True,
                        help="comma-separated Binance symbols of catalog entries with provider binance, e.g. BTCUSDT")
    stream.add_argument("--url", help="stream base URL (default $BINANCE_WS_URL, else wss://stream.binance.com:9443)")
    stream.set_defaults(func=cmd_stream)
