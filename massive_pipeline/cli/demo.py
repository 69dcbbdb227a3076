"""`massive-pipeline demo` and `massive-pipeline devserver`: the pipeline against the bundled server.

The demo starts the bundled Massive-compatible server (`testing.devserver`), backfills the three
critical symbols through the same in-process launcher as `backfill`, and prints what it stored.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os

import pandas as pd

from massive_pipeline.cli.args import UsageError, date_arg, print_frame, rows_table
from massive_pipeline.cli.candles import backfill_in_process
from massive_pipeline.core.paths import dagster_home
from massive_pipeline.core.timeframes import Timeframe

CRITICAL_DEMO_SYMBOLS = ("XAUUSD", "EURUSD", "BTCUSD")
DEMO_DAYS = 7
DEMO_END_ENV = "MASSIVE_DEMO_END"


def demo_window(end: dt.date | None, days: int, today: dt.date) -> tuple[dt.date, dt.date, pd.Timestamp | None]:
    """The demo's first and last UTC day, and the bundled server's clock.

    Without an end day the demo shows the last `days` days up to `today`, today's partition still
    forming, as a user expects. With one it covers only completed days, and the server's clock is
    frozen at the end of that day: every run of the demo then stores the same bars, whatever the
    wall clock says (what a test comparing the UI with the store needs).
    """
    if days < 1:
        raise UsageError(f"--days must be at least 1, got {days}")
    if end is None:
        return today - dt.timedelta(days=days - 1), today, None
    return end - dt.timedelta(days=days - 1), end, pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)


def _demo_end(args: argparse.Namespace) -> dt.date | None:
    """`--end`, else `$MASSIVE_DEMO_END`, else None (today)."""
    if args.end is not None:
        return args.end
    text = os.environ.get(DEMO_END_ENV, "").strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{DEMO_END_ENV} is not a date (YYYY-MM-DD): {text!r}") from None


def cmd_demo(args: argparse.Namespace) -> int:
    from massive_pipeline.testing.devserver import DevServer

    start, end, server_now = demo_window(_demo_end(args), args.days, pd.Timestamp.now(tz="UTC").date())
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home()))
    home = dagster_home()
    with DevServer(port=0, rate_limit=args.rate_limit, rate_window_seconds=60.0, now=server_now) as server:
        os.environ["MASSIVE_BASE_URL"] = server.url
        os.environ.setdefault("MASSIVE_API_KEY", "demo-key")
        from massive_pipeline.core.catalog import load_catalog
        from massive_pipeline.resources.candle_store import CandleStoreResource

        catalog = load_catalog()
        specs = [catalog.get(s) for s in CRITICAL_DEMO_SYMBOLS]
        print(f"bundled Massive-compatible server at {server.url} ({args.rate_limit} requests/minute)")
        print(f"DAGSTER_HOME={home}")
        print(f"backfilling {', '.join(CRITICAL_DEMO_SYMBOLS)} × {len(Timeframe)} timeframes, {start}..{end}")
        backfill_in_process(specs, list(Timeframe), start, end, tags={"massive/purpose": "demo"})
        store = CandleStoreResource().open()
        print(f"\nrows in the candle store ({store.url_display}):")
        print_frame(rows_table(store, CRITICAL_DEMO_SYMBOLS, list(Timeframe)))
        print(f"\nAPI requests the server answered: {server.request_count(kind='aggs')}")
        print(f"watch it run in the UI:  make ui  (DAGSTER_HOME={home} massive-pipeline ui: dagster dev wired to "
              "the bundled server)")
    return 0


def cmd_devserver(args: argparse.Namespace) -> int:
    from massive_pipeline.testing.devserver import serve_forever_cli

    serve_forever_cli(args.host, args.port, rate_limit=args.rate_limit, page_size=args.page_size)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="backfill the last 7 days (or --days up to --end) of XAUUSD, EURUSD, BTCUSD from the bundled server")
    demo.add_argument("--rate-limit", type=int, default=5, help="the bundled server's requests per minute")
    demo.add_argument("--end", type=date_arg, default=None,
                      help=f"last UTC day (default ${DEMO_END_ENV}, else today); the server's clock stops at its end")
    demo.add_argument("--days", type=int, default=DEMO_DAYS, help=f"UTC days up to --end (default {DEMO_DAYS})")
    demo.set_defaults(func=cmd_demo)

    dev = sub.add_parser("devserver", help="run the bundled Massive-compatible server")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8765)
    dev.add_argument("--rate-limit", type=int, default=None, help="requests per minute before 429 (default none)")
    dev.add_argument("--page-size", type=int, default=50000)
    dev.set_defaults(func=cmd_devserver)
