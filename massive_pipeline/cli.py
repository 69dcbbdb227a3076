"""`massive-pipeline`: the command line over the same Dagster jobs the UI and schedules run.

Bad arguments get one line on stderr and exit code 2; a failed run exits 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from massive_pipeline.settings import dagster_home
from massive_pipeline.timeframes import Timeframe, UnknownTimeframeError, parse_timeframes

# Modules adding their own subcommands: each has `register(subparsers)`, whose commands may raise
# UsageError for bad arguments.
COMMAND_MODULES: list[str] = [
    "massive_pipeline.cli_quality", "massive_pipeline.cli_operations", "massive_pipeline.cli_store",
]

CRITICAL_DEMO_SYMBOLS = ("XAUUSD", "EURUSD", "BTCUSD")
DEMO_DAYS = 7
DEMO_END_ENV = "MASSIVE_DEMO_END"


class UsageError(Exception):
    """A bad argument: reported on one line, exit code 2."""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _check_range(start: dt.date, end: dt.date) -> None:
    if end < start:
        raise UsageError(f"--end {end} is before --start {start}")


def _timeframes(text: str | None) -> list[Timeframe]:
    if not text:
        return list(Timeframe)
    try:
        return parse_timeframes(text)
    except UnknownTimeframeError as exc:
        raise UsageError(str(exc)) from None


def _specs(catalog, text: str | None):
    from massive_pipeline.catalog import UnknownSymbolError

    try:
        return catalog.select([s for s in text.split(",") if s.strip()] if text else None)
    except UnknownSymbolError as exc:
        raise UsageError(str(exc)) from None


def _print_table(frame: pd.DataFrame) -> None:
    print(frame.to_string(index=False))


def _rows_table(store, symbols: Sequence[str], timeframes: Sequence[Timeframe]) -> pd.DataFrame:
    counts = store.row_counts()
    table = pd.DataFrame(index=list(symbols), columns=[tf.value for tf in timeframes], data=0)
    for row in counts.itertuples(index=False):
        if row.symbol in table.index and row.timeframe in table.columns:
            table.loc[row.symbol, row.timeframe] = int(row.rows)
    table.index.name = "symbol"
    return table.reset_index()


def _print_run(summary) -> None:
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


def _backfill(
    specs, timeframes, start: dt.date, end: dt.date, tags: dict[str, str] | None = None, *,
    accept_removals: bool = False,
) -> list:
    from dagster import DagsterInstance

    from massive_pipeline.definitions import build_definitions
    from massive_pipeline.runner import run_candle_backfill

    dagster_home()
    defs = build_definitions()
    with DagsterInstance.get() as instance:
        return run_candle_backfill(
            defs, instance, specs, timeframes, start, end, tags=tags, on_run=_print_run,
            accept_removals=accept_removals,
        )


def _submit(specs, timeframes, start: dt.date, end: dt.date, *, accept_removals: bool) -> None:
    """`backfill --submit`: one asset backfill for the daemon, built against the code location's own
    asset graph (composed here, at the CLI layer), then the lines saying how to watch it."""
    from dagster import DagsterInstance

    from massive_pipeline import submit_backfill
    from massive_pipeline.definitions import build_definitions

    dagster_home()
    defs = build_definitions()
    with DagsterInstance.get() as instance:
        submitted = submit_backfill.submit_candle_backfill(
            defs, instance, specs, timeframes, start, end, tags={"massive/purpose": "cli_backfill"},
            accept_removals=accept_removals,
        )
        heartbeat = submit_backfill.backfill_daemon_heartbeat_age(instance)
        print("\n".join(submit_backfill.submission_report(submitted, heartbeat)), flush=True)


def cmd_backfill(args: argparse.Namespace) -> int:
    from massive_pipeline.catalog import load_catalog

    _check_range(args.start, args.end)
    catalog = load_catalog()
    specs = _specs(catalog, args.symbols)
    timeframes = _timeframes(args.timeframes)
    print(f"backfilling {len(specs)} symbol(s) × {len(timeframes)} timeframe(s), {args.start}..{args.end}")
    if args.submit:
        _submit(specs, timeframes, args.start, args.end, accept_removals=args.accept_removals)
        return 0
    print("running in this process (use --submit to hand the backfill to the Dagster daemon)", flush=True)
    _backfill(
        specs, timeframes, args.start, args.end, tags={"massive/purpose": "cli_backfill"},
        accept_removals=args.accept_removals,
    )
    return 0


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
    from massive_pipeline.devserver import DevServer

    start, end, server_now = demo_window(_demo_end(args), args.days, pd.Timestamp.now(tz="UTC").date())
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home()))
    home = dagster_home()
    with DevServer(port=0, rate_limit=args.rate_limit, rate_window_seconds=60.0, now=server_now) as server:
        os.environ["MASSIVE_BASE_URL"] = server.url
        os.environ.setdefault("MASSIVE_API_KEY", "demo-key")
        from massive_pipeline.catalog import load_catalog
        from massive_pipeline.store_resource import CandleStoreResource

        catalog = load_catalog()
        specs = [catalog.get(s) for s in CRITICAL_DEMO_SYMBOLS]
        print(f"bundled Massive-compatible server at {server.url} ({args.rate_limit} requests/minute)")
        print(f"DAGSTER_HOME={home}")
        print(f"backfilling {', '.join(CRITICAL_DEMO_SYMBOLS)} × {len(Timeframe)} timeframes, {start}..{end}")
        _backfill(specs, list(Timeframe), start, end, tags={"massive/purpose": "demo"})
        store = CandleStoreResource().open()
        print(f"\nrows in the candle store ({store.url_display}):")
        _print_table(_rows_table(store, CRITICAL_DEMO_SYMBOLS, list(Timeframe)))
        print(f"\nAPI requests the server answered: {server.request_count(kind='aggs')}")
        print("open the UI with:  DAGSTER_HOME=" + str(home) + " .venv/bin/dagster dev")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from massive_pipeline.catalog import load_catalog
    from massive_pipeline.store_resource import CandleStoreResource
    from massive_pipeline.timeframes import parse_timeframe

    _check_range(args.start, args.end)
    spec = _specs(load_catalog(), args.symbol)[0]
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


def cmd_devserver(args: argparse.Namespace) -> int:
    from massive_pipeline.devserver import serve_forever_cli

    serve_forever_cli(args.host, args.port, rate_limit=args.rate_limit, page_size=args.page_size)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="massive-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="backfill the last 7 days (or --days up to --end) of XAUUSD, EURUSD, BTCUSD from the bundled server")
    demo.add_argument("--rate-limit", type=int, default=5, help="the bundled server's requests per minute")
    demo.add_argument("--end", type=_date, default=None,
                      help=f"last UTC day (default ${DEMO_END_ENV}, else today); the server's clock stops at its end")
    demo.add_argument("--days", type=int, default=DEMO_DAYS, help=f"UTC days up to --end (default {DEMO_DAYS})")
    demo.set_defaults(func=cmd_demo)

    bf = sub.add_parser("backfill", help="materialize candle partitions through Dagster")
    bf.add_argument("--symbols", help="comma-separated symbols (default: the whole catalog)")
    bf.add_argument("--timeframes", help="comma-separated timeframes (default: all eight)")
    bf.add_argument("--start", type=_date, required=True, help="first UTC day (inclusive)")
    bf.add_argument("--end", type=_date, required=True, help="last UTC day (inclusive)")
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
    ex.add_argument("--start", type=_date, required=True)
    ex.add_argument("--end", type=_date, required=True)
    ex.add_argument("--format", choices=("csv", "parquet"), default="csv")
    ex.add_argument("--output", "-o", help="file to write (default SYMBOL_TF_START_END.FORMAT)")
    ex.add_argument(
        "--include-forming", action="store_true",
        help="also write bars whose period had not ended when they were stored (today's D1, this week's W1)",
    )
    ex.set_defaults(func=cmd_export)

    dev = sub.add_parser("devserver", help="run the bundled Massive-compatible server")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8765)
    dev.add_argument("--rate-limit", type=int, default=None, help="requests per minute before 429 (default none)")
    dev.add_argument("--page-size", type=int, default=50000)
    dev.set_defaults(func=cmd_devserver)

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"massive-pipeline: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback for known failures
        from massive_pipeline.errors import is_user_facing

        if not is_user_facing(exc):
            raise
        print(f"massive-pipeline: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
