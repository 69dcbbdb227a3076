"""`massive-pipeline bootstrap`: give every series of the catalog the history `verify` requires.

Plans first (`bootstrap/plan.py`, printed by `bootstrap/report.py`): per symbol and timeframe the
partitions to hold, fetched or derived as the catalog says, what is already stored, and the
requests the rest costs under the API's accounting, with the alternatives priced next to it.
`--plan-only` stops there (no API key needed). Otherwise the plan runs in this process, run by
run with a progress line each, as `backfill` runs (`bootstrap/execute.py`), and ends with the
verify report of every planned series; or `--submit` hands it to the Dagster daemon as one asset
backfill per symbol, as `backfill --submit` does. Re-running it after an interruption (even a
kill -9) plans only what is not stored yet.
"""

from __future__ import annotations

import argparse

import pandas as pd

from massive_pipeline.cli.args import UsageError, require_api_key, require_dagster_home, specs_arg
from massive_pipeline.core.paths import dagster_home
from massive_pipeline.core.timeframes import UnknownTimeframeError, parse_timeframes


def _now(text: str | None) -> pd.Timestamp:
    now = pd.Timestamp.now(tz="UTC")
    if not text:
        return now
    try:
        at = pd.Timestamp(text)
    except ValueError:
        raise UsageError(f"--at is not a timestamp: {text!r}") from None
    at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
    if at > now:
        raise UsageError(f"--at {at:%Y-%m-%d %H:%M} is in the future (now {now:%Y-%m-%d %H:%M} UTC)")
    return at


def _timeframes(text: str | None):
    from massive_pipeline.bootstrap.requirements import BOOTSTRAP_TIMEFRAMES

    if not text:
        return list(BOOTSTRAP_TIMEFRAMES)
    try:
        return parse_timeframes(text)
    except UnknownTimeframeError as exc:
        raise UsageError(str(exc)) from None


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from massive_pipeline.bootstrap.coverage import StoredCoverage
    from massive_pipeline.bootstrap.plan import Rate, plan_bootstrap
    from massive_pipeline.bootstrap.report import plan_lines
    from massive_pipeline.core.catalog import load_catalog
    from massive_pipeline.location import default_resources
    from massive_pipeline.massive.ratelimit import reserve_for

    if args.plan_only and args.submit:
        raise UsageError("--plan-only and --submit exclude each other")
    catalog = load_catalog()
    specs = specs_arg(catalog, args.symbols)
    timeframes = _timeframes(args.timeframes)
    now = _now(args.at)
    require_dagster_home("bootstrap")
    if not args.plan_only:
        require_api_key()
    resources = default_resources()
    massive = resources["massive"]
    rate = Rate(massive.rate_limit_per_minute, massive.rate_window_seconds,
                reserve_for(massive.rate_limit_per_minute, massive.critical_reserve))
    dagster_home()
    store = resources["candle_store"].store
    with DagsterInstance.get() as instance:
        plan = plan_bootstrap(specs, timeframes, now, rate, coverage=StoredCoverage(instance, store))
        for line in plan_lines(plan):
            print(line, flush=True)
        if args.plan_only:
            return 0
        if not plan.runs:
            print("nothing to run: every planned series holds its required history")
            return _verify(store, plan, timeframes, now)
        from massive_pipeline.location import build_definitions

        defs = build_definitions(catalog, resources=resources)
        if args.submit:
            return _submit(defs, instance, plan, args.accept_removals)
        from massive_pipeline.bootstrap.execute import run_plan

        print(f"running {len(plan.runs)} run(s) in this process (use --submit to hand them to the Dagster daemon)",
              flush=True)
        progress = run_plan(defs, instance, plan, on_line=lambda line: print(line, flush=True),
                            limiter_stats=massive.limiter_stats, accept_removals=args.accept_removals)
        print(f"bootstrap ran {progress.runs_done} run(s): {progress.requests_used} API request(s), "
              f"the plan said {plan.requests}", flush=True)
    return _verify(store, plan, timeframes, now)


def _submit(defs, instance, plan, accept_removals: bool) -> int:
    from massive_pipeline.bootstrap.execute import submit_plan
    from massive_pipeline.candles.backfill_submission import backfill_daemon_heartbeat_age
    from massive_pipeline.cli.submit import daemon_line

    submitted = submit_plan(defs, instance, plan, accept_removals=accept_removals)
    for s in submitted:
        print(f"submitted backfill {s.backfill_id}: {s.title} ({s.expected_runs} run(s))")
    print(daemon_line(backfill_daemon_heartbeat_age(instance)))
    print("watch them on the UI's backfills page; `massive-pipeline bootstrap --plan-only` shows what is left, "
          "`massive-pipeline verify` the result")
    return 0


def _verify(store, plan, asked, now: pd.Timestamp) -> int:
    """The verify report of the asked series; exit code 0 when every one is ok."""
    from massive_pipeline.cli.quality import print_table
    from massive_pipeline.quality.verify import status_counts, verify

    series = [(sp.spec, [s.timeframe for s in sp.series if s.timeframe in asked]) for sp in plan.symbols]
    report = verify(store, series, now)
    print_table(report, ["symbol", "timeframe", "status", "bars", "first_bar", "last_bar", "behind", "detail"])
    counts = status_counts(report)
    print(f"verify: {len(report)} series: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return 0 if counts["ok"] == len(report) else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bootstrap", help="plan and fill the history every series needs (M1 7 days … W1 730), then verify",
    )
    p.add_argument("--symbols", help="comma-separated symbols (default: the whole catalog)")
    p.add_argument("--timeframes", help="comma-separated timeframes (default: the eight UTC ones, M1…W1)")
    p.add_argument("--plan-only", action="store_true", help="print the plan and its cost, run nothing")
    p.add_argument(
        "--submit", action="store_true",
        help="hand the plan to the Dagster daemon (one asset backfill per symbol) and return; default: run it "
        "in this process, then verify",
    )
    p.add_argument("--at", help="plan (and verify) as of this UTC instant instead of now, e.g. 2026-10-07T12:00")
    p.add_argument(
        "--accept-removals", action="store_true",
        help="delete stored bars the provider's answer no longer holds (default: keep and report them)",
    )
    p.set_defaults(func=cmd_bootstrap)
