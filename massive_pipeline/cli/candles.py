"""`massive-pipeline backfill` and `massive-pipeline export`: candles in and out of the store.

`backfill` runs the code location's candle jobs in this process (the CLI's in-process launcher,
`cli/launch.py`), recording each run in the Dagster instance of `$DAGSTER_HOME` so the UI lists it,
and says so; `backfill --submit` hands one asset backfill to the instance instead
(`candles/backfill_submission.py`, worded by `cli/submit.py`), for the daemon to run under the run
queue and pools, and returns.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pandas as pd

from massive_pipeline.cli.args import (
    UsageError,
    check_range,
    date_arg,
    require_api_key,
    specs_arg,
    timeframes_arg,
)
from massive_pipeline.core.paths import dagster_home
from massive_pipeline.core.timeframes import UnknownTimeframeError


def print_run(summary) -> None:
    rows = ", ".join(f"{k}={v}" for k, v in summary.rows_written.items())
    state = "ok" if summary.success else "FAILED"
    print(
        f"  run {summary.run_id[:8]} {summary.symbol:<7} {summary.first_partition}..{summary.last_partition} "
        f"{state}: {summary.api_requests} API request(s); rows {rows}",
        flush=True,
    )
    kept = {k: v for k, v in summary.missing_from_answer.items() if not summary.removed.get(k)}
    for label, counts in (("stored bars missing from the answer, kept", kept),
                          ("stored bars removed (--accept-removals)", summary.removed),
                          ("bars revised by the provider", summary.revised)):
        shown = ", ".join(f"{k}={v}" for k, v in counts.items() if v)
        if shown:
            print(f"      {label}: {shown}", flush=True)


def backfill_in_process(
    specs, timeframes, start: dt.date, end: dt.date, tags: dict[str, str] | None = None, *,
    accept_removals: bool = False,
) -> list:
    """Run the candle jobs of the composition root in this process, recorded in the instance."""
    from dagster import DagsterInstance

    from massive_pipeline.cli.launch import run_candle_backfill
    from massive_pipeline.location import build_definitions

    dagster_home()
    defs = build_definitions()
    with DagsterInstance.get() as instance:
        return run_candle_backfill(
            defs, instance, specs, timeframes, start, end, tags=tags, on_run=print_run,
            accept_removals=accept_removals,
        )


def submit_backfill(specs, timeframes, start: dt.date, end: dt.date, *, accept_removals: bool) -> None:
    """`backfill --submit`: one asset backfill for the daemon, built against the code location's own
    asset graph (composed here, at the CLI layer), then the lines saying how to watch it."""
    from dagster import DagsterInstance

    from massive_pipeline.candles.backfill_submission import (
        backfill_daemon_heartbeat_age,
        submit_candle_backfill,
    )
    from massive_pipeline.cli import submit
    from massive_pipeline.location import build_definitions

    dagster_home()
    defs = build_definitions()
    with DagsterInstance.get() as instance:
        submitted = submit_candle_backfill(
            defs, instance, specs, timeframes, start, end, tags={"massive/purpose": "cli_backfill"},
            accept_removals=accept_removals,
        )
        heartbeat = backfill_daemon_heartbeat_age(instance)
        print("\n".join(submit.submission_report(submitted, heartbeat)), flush=True)


def cmd_backfill(args: argparse.Namespace) -> int:
    from massive_pipeline.core.catalog import load_catalog

    check_range(args.start, args.end)
    catalog = load_catalog()
    specs = specs_arg(catalog, args.symbols)
    timeframes = timeframes_arg(args.timeframes)
    require_api_key()
    print(f"backfilling {len(specs)} symbol(s) × {len(timeframes)} timeframe(s), {args.start}..{args.end}")
    if args.submit:
        submit_backfill(specs, timeframes, args.start, args.end, accept_removals=args.accept_removals)
        return 0
    print("running in this process (use --submit to hand the backfill to the Dagster daemon)", flush=True)
    backfill_in_process(
        specs, timeframes, args.start, args.end, tags={"massive/purpose": "cli_backfill"},
        accept_removals=args.accept_removals,
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from massive_pipeline.core.catalog import load_catalog
    from massive_pipeline.core.timeframes import parse_timeframe
    from massive_pipeline.resources.candle_store import CandleStoreResource

    check_range(args.start, args.end)
    spec = specs_arg(load_catalog(), args.symbol)[0]
    try:
        tf = parse_timeframe(args.timeframe)
    except UnknownTimeframeError as exc:
        raise UsageError(str(exc)) from None
    store = CandleStoreResource().open()
    start = pd.Timestamp(args.start, tz="UTC")
    end = pd.Timestamp(args.end, tz="UTC") + pd.Timedelta(days=1)
    bars = store.read(spec.symbol, tf, start, end, include_forming=args.include_forming)
    out = Path(args.output or f"{spec.symbol}_{tf.value}_{args.start}_{args.end}.{args.format}")
    frame = bars.assign(symbol=spec.symbol, timeframe=tf.value)[
        ["symbol", "timeframe", "ts", "open", "high", "low", "close", "volume", "vwap", "trades"]
    ]
    if args.format == "csv":
        frame.to_csv(out, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    else:
        frame.to_parquet(out, index=False)
    print(f"wrote {len(frame)} {spec.symbol} {tf.value} bars to {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    bf = sub.add_parser("backfill", help="materialize candle partitions through Dagster")
    bf.add_argument("--symbols", help="comma-separated symbols (default: the whole catalog)")
    bf.add_argument("--timeframes", help="comma-separated timeframes (default: all eight)")
    bf.add_argument("--start", type=date_arg, required=True, help="first UTC day (inclusive)")
    bf.add_argument("--end", type=date_arg, required=True, help="last UTC day (inclusive)")
    bf.add_argument(
        "--accept-removals", action="store_true",
        help="delete stored bars the provider's answer no longer holds (default: keep and report them)",
    )
    bf.add_argument(
        "--submit", action="store_true",
        help="hand one asset backfill to the Dagster daemon (run queue, pools, the UI's backfill page) and return "
        "without waiting; default: run in this process and wait",
    )
    bf.set_defaults(func=cmd_backfill)

    ex = sub.add_parser("export", help="write stored candles to CSV or Parquet")
    ex.add_argument("symbol")
    ex.add_argument("timeframe")
    ex.add_argument("--start", type=date_arg, required=True)
    ex.add_argument("--end", type=date_arg, required=True)
    ex.add_argument("--format", choices=("csv", "parquet"), default="csv")
    ex.add_argument("--output", "-o", help="file to write (default SYMBOL_TF_START_END.FORMAT)")
    ex.add_argument(
        "--include-forming", action="store_true",
        help="also write bars whose period had not ended when they were stored (today's D1, this week's W1)",
    )
    ex.set_defaults(func=cmd_export)
