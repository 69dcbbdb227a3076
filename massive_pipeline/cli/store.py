"""`massive-pipeline revisions`: what the provider corrected in bars already stored."""

from __future__ import annotations

import argparse

import pandas as pd

from massive_pipeline.cli.args import UsageError

SHOWN_COLUMNS = [
    "detected_at", "symbol", "timeframe", "ts", "old_open", "new_open", "old_high", "new_high", "old_low", "new_low",
    "old_close", "new_close", "old_volume", "new_volume", "max_rel_change", "run_id",
]


def cmd_revisions(args: argparse.Namespace) -> int:
    from massive_pipeline.core.catalog import UnknownSymbolError, load_catalog
    from massive_pipeline.core.timeframes import UnknownTimeframeError, parse_timeframes
    from massive_pipeline.resources.candle_store import CandleStoreResource

    try:
        symbols = [s.symbol for s in load_catalog().select(args.symbols)] if args.symbols else None
        timeframes = parse_timeframes(args.timeframes) if args.timeframes else None
    except (UnknownSymbolError, UnknownTimeframeError) as exc:
        raise UsageError(str(exc)) from None
    since = None
    if args.since:
        try:
            since = pd.Timestamp(args.since, tz="UTC")
        except ValueError:
            raise UsageError(f"--since {args.since!r} is not a UTC day (YYYY-MM-DD)") from None
    store = CandleStoreResource().open()
    try:
        frame = store.revisions(symbols, timeframes, since)
    finally:
        store.dispose()
    if frame.empty:
        print("no revisions recorded" + (f" since {since:%Y-%m-%d}" if since is not None else ""))
        return 0
    summary = (
        frame.groupby(["symbol", "timeframe"])
        .agg(revised_bars=("ts", "size"), largest_relative_change=("max_rel_change", "max"),
             first_bar=("ts", "min"), last_bar=("ts", "max"))
        .reset_index()
    )
    print(f"{len(frame)} revised bar(s) in {len(summary)} series")
    print(summary.to_string(index=False))
    print()
    shown = frame[SHOWN_COLUMNS].tail(args.limit) if args.limit else frame[SHOWN_COLUMNS]
    if len(shown) < len(frame):
        print(f"the newest {len(shown)} of {len(frame)} revisions:")
    print(shown.to_string(index=False))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    rev = subparsers.add_parser(
        "revisions", help="bars whose stored values the provider changed on a later fetch (old and new OHLCV)")
    rev.add_argument("--symbols", help="comma-separated symbols (default: all)")
    rev.add_argument("--timeframes", help="comma-separated timeframes (default: all)")
    rev.add_argument("--since", help="first UTC day of detection to list (YYYY-MM-DD)")
    rev.add_argument("--limit", type=int, default=200, help="rows of the detail table (0: all; default 200)")
    rev.set_defaults(func=cmd_revisions)
