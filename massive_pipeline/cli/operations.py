"""`massive-pipeline status`: what unattended operation has achieved, per symbol, right now."""

from __future__ import annotations

import argparse
import os

from massive_pipeline.cli.args import UsageError


def cmd_status(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from massive_pipeline.core.catalog import UnknownSymbolError, load_catalog
    from massive_pipeline.core.paths import dagster_home
    from massive_pipeline.operations.status import current_status, record_status
    from massive_pipeline.resources.candle_store import CandleStoreResource

    catalog = load_catalog()
    try:
        specs = catalog.select(args.symbols) if args.symbols else list(catalog)
    except UnknownSymbolError as exc:
        raise UsageError(str(exc)) from None
    store = CandleStoreResource().open()
    # secondary runs in progress, from the Dagster instance the UI and the daemon use
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home()))
    with DagsterInstance.get() as instance:
        report = current_status(catalog, store, instance, specs=specs)
    now = report.at
    record_status(store, report)
    frame = report.frame()
    if not args.all_timeframes:
        base = {s.symbol: s.base_timeframe.value for s in specs}
        frame = frame[frame["tf"] == frame["symbol"].map(base)]
    print(f"status at {now:%Y-%m-%d %H:%M:%S} UTC; candle store {store.url_display}")
    for line in report.budget_lines():
        print(line)
    if report.queue_evaluated_at is not None:
        print(f"secondary queue: retries as recorded by the secondary_queue sensor at "
              f"{report.queue_evaluated_at:%Y-%m-%d %H:%M:%S} UTC; positions computed now")
    else:
        print("secondary queue: the secondary_queue sensor has not run yet; positions computed now")
    print(frame.to_string(index=False))
    if len(report.comparisons):
        print("cross-checks (provider_comparisons, newest partition per pair; differences after the basis):")
        print(report.comparisons_frame().to_string(index=False))
    elif any(s.cross_check for s in specs):
        print("cross-checks: none recorded yet (the cross_check asset check records one per partition it judges)")
    print(f"sync_status updated for {report.recorded} series")
    store.dispose()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    status = subparsers.add_parser(
        "status", help="per symbol: last bar and age, sync status, queue position, open gaps; the rate budget; "
                       "the latest cross-check of each pair of sources")
    status.add_argument("--symbols", help="comma-separated symbols (default: the whole catalog)")
    status.add_argument("--all-timeframes", action="store_true",
                        help="one line per symbol × timeframe instead of the base timeframe only")
    status.set_defaults(func=cmd_status)
