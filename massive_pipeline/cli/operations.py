"""`massive-pipeline status`: what unattended operation has achieved, per symbol, right now."""

from __future__ import annotations

import argparse
import os

import pandas as pd

from massive_pipeline.cli.args import UsageError


def cmd_status(args: argparse.Namespace) -> int:
    from massive_pipeline.core.catalog import UnknownSymbolError, load_catalog
    from massive_pipeline.operations.queue import secondary_specs
    from massive_pipeline.operations.status import collect_status, record_status
    from massive_pipeline.resources.candle_store import CandleStoreResource
    from massive_pipeline.resources.massive import massive_resource_from_env

    catalog = load_catalog()
    try:
        specs = catalog.select(args.symbols) if args.symbols else list(catalog)
    except UnknownSymbolError as exc:
        raise UsageError(str(exc)) from None
    store = CandleStoreResource().open()
    limiter = limiter_error = None
    try:
        with massive_resource_from_env().build_limiter() as shared:
            limiter = shared.stats()
    except Exception as exc:  # noqa: BLE001 - the report is still useful without the budget line
        limiter_error = f"{type(exc).__name__}: {exc}"
    running = _running(secondary_specs(specs))
    now = pd.Timestamp.now(tz="UTC")
    report = collect_status(catalog, store, now, specs=specs, running=running, limiter=limiter,
                            limiter_error=limiter_error)
    record_status(store, report)
    frame = report.frame()
    if not args.all_timeframes:
        base = {s.symbol: s.base_timeframe.value for s in specs}
        frame = frame[frame["tf"] == frame["symbol"].map(base)]
    print(f"status at {now:%Y-%m-%d %H:%M:%S} UTC; candle store {store.url_display}")
    print(report.limiter_line())
    if report.queue_evaluated_at is not None:
        print(f"secondary queue: retries as recorded by the secondary_queue sensor at "
              f"{report.queue_evaluated_at:%Y-%m-%d %H:%M:%S} UTC; positions computed now")
    else:
        print("secondary queue: the secondary_queue sensor has not run yet; positions computed now")
    print(frame.to_string(index=False))
    print(f"sync_status updated for {report.recorded} series")
    store.dispose()
    return 0


def _running(specs) -> dict[str, str]:
    """Secondary runs in progress, from the Dagster instance the UI and the daemon use."""
    from dagster import DagsterInstance

    from massive_pipeline.core.paths import dagster_home
    from massive_pipeline.operations.queue import pending_by_symbol

    os.environ.setdefault("DAGSTER_HOME", str(dagster_home()))
    with DagsterInstance.get() as instance:
        return pending_by_symbol(instance, specs)


def register(subparsers: argparse._SubParsersAction) -> None:
    status = subparsers.add_parser(
        "status", help="per symbol: last bar and age, sync status, queue position, open gaps; the rate budget")
    status.add_argument("--symbols", help="comma-separated symbols (default: the whole catalog)")
    status.add_argument("--all-timeframes", action="store_true",
                        help="one line per symbol × timeframe instead of the base timeframe only")
    status.set_defaults(func=cmd_status)
