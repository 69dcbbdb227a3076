"""`massive-pipeline broker compare`: a broker's MT4/MT5 export against the stored candles.

Imports the file into `broker_bars`, finds (or takes) the server-time offset, prints the
differences and the recommended price offset, and records the comparison in `broker_comparisons`,
as the `brokers/<name>/<symbol>` asset does for files dropped into a broker's folder.
"""

from __future__ import annotations

import argparse

from massive_pipeline.cli.args import UsageError


def cmd_compare(args: argparse.Namespace) -> int:
    from massive_pipeline.broker.comparison import compare_export
    from massive_pipeline.broker.exports import BrokerExportError
    from massive_pipeline.broker.offset import OffsetNotFoundError, parse_offset
    from massive_pipeline.core.catalog import UnknownSymbolError, load_catalog
    from massive_pipeline.core.timeframes import UnknownTimeframeError, parse_timeframe
    from massive_pipeline.resources.candle_store import CandleStoreResource
    from massive_pipeline.store.broker_tables import check_broker

    try:
        broker = check_broker(args.broker)
        spec = load_catalog().get(args.symbol)
        timeframe = parse_timeframe(args.timeframe)
        offset = parse_offset(args.offset)
    except (UnknownSymbolError, UnknownTimeframeError, ValueError) as exc:
        raise UsageError(str(exc).strip("'\"")) from None
    if args.threshold_pips < 0:
        raise UsageError(f"--threshold-pips must be zero or more, got {args.threshold_pips}")
    store = CandleStoreResource().open()
    try:
        outcome = compare_export(
            store, spec, timeframe, broker, args.file, offset, threshold_pips=args.threshold_pips
        )
    except (BrokerExportError, OffsetNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:  # no bar in common with the store
        raise UsageError(str(exc)) from None
    finally:
        store.dispose()
    print("\n".join(outcome.lines()))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser(
        "broker", help="compare a broker's MT4/MT5 bar exports with the stored candles"
    )
    sub = group.add_subparsers(dest="broker_command", required=True)
    compare = sub.add_parser(
        "compare",
        help="import an export, find the server-time offset, print and record broker - store differences",
    )
    compare.add_argument("--broker", required=True, help="broker name (lower-case letters, digits, _)")
    compare.add_argument("--symbol", required=True, help="catalog symbol, e.g. XAUUSD")
    compare.add_argument("--timeframe", required=True, help="timeframe of the export, e.g. M15")
    compare.add_argument("--file", required=True, help="MT4 History Center CSV or MT5 bars export")
    compare.add_argument(
        "--offset",
        default="auto",
        help="server time: auto (detect, default), new_york_close, or a fixed offset like +03:00",
    )
    compare.add_argument(
        "--threshold-pips",
        type=float,
        default=0.5,
        help="recommend a price offset when |mean close diff| exceeds this (default 0.5)",
    )
    compare.set_defaults(func=cmd_compare)
