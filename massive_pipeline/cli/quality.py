"""`massive-pipeline gaps detect|fill|list` and `massive-pipeline verify`.

`gaps detect` launches the code location's `gap_detection_job` (the job the 05:00 schedule
launches) in the Dagster instance of `$DAGSTER_HOME`, so the UI lists its run. `gaps fill` is the
command line's *in-process launcher* of gap fills: it executes the candle runs the 06:00
`gap_fill_sensor` would request (same jobs, ranges and tags) in this process, recorded in
`$DAGSTER_HOME` but outside the run queue, waits for them and judges the gaps; it leaves alone the
days a queued or running fill already covers. `gaps list` and `verify` only read the candle store.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

import pandas as pd

from massive_pipeline.cli.args import UsageError, date_arg, require_api_key
from massive_pipeline.core.timeframes import UnknownTimeframeError, parse_timeframes

GAP_STATUSES = ("detected", "filling", "filled", "unfillable")


def _symbols(text: str | None) -> list[str]:
    from massive_pipeline.core.catalog import UnknownSymbolError, load_catalog

    if not text:
        return []
    try:
        return [s.symbol for s in load_catalog().select(text)]
    except UnknownSymbolError as exc:
        raise UsageError(str(exc)) from None


def _timeframe_names(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        return [tf.value for tf in parse_timeframes(text)]
    except UnknownTimeframeError as exc:
        raise UsageError(str(exc)) from None


def print_table(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> None:
    """Left-aligned columns (pandas right-aligns text, which makes long reasons hard to read)."""
    cols = list(columns) if columns is not None else list(frame.columns)

    def cell(v: Any) -> str:
        if v is None or v is pd.NaT or (isinstance(v, float) and v != v):
            return ""
        if isinstance(v, pd.Timestamp):
            return v.strftime("%Y-%m-%d %H:%M")
        return str(v)

    rows = [[cell(v) for v in r] for r in frame[cols].itertuples(index=False)]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _run_quality_job(job_name: str, op_name: str, config: dict[str, Any], purpose: str):
    """Execute one of the quality jobs in the `$DAGSTER_HOME` instance; (result, op output)."""
    from dagster import DagsterInstance

    from massive_pipeline.cli.launch import run_job_in_process
    from massive_pipeline.core.paths import dagster_home
    from massive_pipeline.location import build_definitions

    dagster_home()
    defs = build_definitions()
    with DagsterInstance.get() as instance:
        result = run_job_in_process(defs, instance, job_name, run_config={"ops": {op_name: {"config": config}}},
                                    tags={"massive/purpose": purpose, "massive/launched_by": "cli"})
    if not result.success:
        failures = result.get_step_failure_events()
        error = failures[0].step_failure_data.error if failures else None
        while error is not None and error.cause is not None and error.cls_name.startswith("Dagster"):
            error = error.cause
        detail = " ".join(error.message.split()) if error is not None else "see the run's logs"
        return result, detail
    return result, result.output_for_node(op_name)


def _fail(message: str) -> int:
    print(f"massive-pipeline: error: {message}", file=sys.stderr)
    return 1


DEFAULT_DETECT_DAYS = 30


def _detect_lookback(args: argparse.Namespace) -> int:
    """Days searched back from --end: `--days N` (N ≥ 1), `--days 0` or `--all` (whole history).

    `--days` only says where the search starts, as `--start` does, so giving both (or `--all`
    with either) is refused instead of silently preferring one.
    """
    given = [flag for flag, value in (("--start", args.start), ("--days", args.days), ("--all", args.all or None))
             if value is not None]
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)} both say where the search starts; give one of them")
    if args.days is not None and args.days < 0:
        raise UsageError(f"--days must be 0 (the whole stored history) or a positive number of days, got {args.days}")
    if args.all:
        return 0
    return DEFAULT_DETECT_DAYS if args.days is None else args.days


def _searched(args: argparse.Namespace, lookback: int) -> str:
    """The window searched, in the words of the summary line."""
    end = args.end.isoformat() if args.end else "today"
    if args.start:
        return f"{args.start.isoformat()} .. {end}"
    if lookback == 0:
        return f"the whole stored history up to {end}"
    return f"the last {lookback} day(s) up to {end}"


def _series_count(result: Any, op_name: str) -> int | None:
    """How many series the detection op searched (its output's `series` metadata)."""
    for event in result.events_for_node(op_name):
        if event.is_successful_output and event.step_output_data.metadata.get("series") is not None:
            return int(event.step_output_data.metadata["series"].value)
    return None


def cmd_gaps_detect(args: argparse.Namespace) -> int:
    if args.start and args.end and args.end < args.start:
        raise UsageError(f"--end {args.end} is before --start {args.start}")
    lookback = _detect_lookback(args)
    config: dict[str, Any] = {
        "symbols": _symbols(args.symbols), "timeframes": _timeframe_names(args.timeframes),
        "lookback_days": lookback,
    }
    if args.start:
        config["start"] = args.start.isoformat()
    if args.end:
        config["end"] = args.end.isoformat()
    if args.min_bars is not None:
        if args.min_bars < 1:
            raise UsageError(f"--min-bars must be at least 1, got {args.min_bars}")
        config["min_bars"] = args.min_bars
    result, output = _run_quality_job("gap_detection_job", "detect_gaps", config, "gap_detection")
    if not result.success:
        return _fail(f"gap detection run {result.run_id} failed: {output}")
    gaps = pd.DataFrame(output, columns=["symbol", "timeframe", "gap_start", "gap_end", "candles_missing"])
    for col in ("gap_start", "gap_end"):
        gaps[col] = pd.to_datetime(gaps[col], utc=True)
    if len(gaps):
        print_table(gaps)
    series = _series_count(result, "detect_gaps")
    print(f"{len(gaps)} gap(s), {int(gaps['candles_missing'].sum()) if len(gaps) else 0} bar(s) missing "
          f"in {series if series is not None else '?'} series over {_searched(args, lookback)} "
          f"(run {result.run_id} of gap_detection_job; `gaps list` shows their status)")
    return 0


IN_PROCESS_NOTE = (
    "fills executed in this process (recorded in $DAGSTER_HOME, not through the run queue); unattended, "
    "gap_fill_sensor requests them as queued runs daily"
)


def cmd_gaps_fill(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from massive_pipeline.cli.launch import BackfillError, run_candle_backfill
    from massive_pipeline.core.catalog import load_catalog
    from massive_pipeline.core.paths import dagster_home
    from massive_pipeline.core.timeframes import Timeframe
    from massive_pipeline.dagster_compat import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
    from massive_pipeline.location import build_definitions
    from massive_pipeline.operations.settings import SYMBOL_TAG, OperationsSettings
    from massive_pipeline.quality.gap_detection import select_series
    from massive_pipeline.quality.gap_fill import GAP_TIMEFRAME_TAG, FillRange, fill_gaps
    from massive_pipeline.quality.gap_fill_sensor import (
        busy_fill_ranges,
        follow_up_requests,
        judge_filling_gaps,
    )
    from massive_pipeline.resources.candle_store import CandleStoreResource

    catalog = load_catalog()
    series = select_series(catalog, _symbols(args.symbols), _timeframe_names(args.timeframes), default="all")
    names = [(spec.symbol, tf.value) for spec, tfs in series for tf in tfs]
    require_api_key()
    dagster_home()
    defs = build_definitions(catalog)
    store = CandleStoreResource().open()
    settings = OperationsSettings.from_env()
    tags = {"massive/launched_by": "cli"}
    try:
        with DagsterInstance.get() as instance:
            # fills that ended since the sensor last looked (or with the sensor stopped) are judged first
            judgement = judge_filling_gaps(store, instance, catalog, settings.now(), waiting=None,
                                           orphan_after=settings.gap_fill_orphan_after, series=names)
            for judged in judgement.judged:
                print(judged.line())
            # the W1 (D1_NY, W1_NY) bars of the fills that ended are re-derived here, as the sensor would
            # request it; a range of partition keys read as UTC days may take one session (week) more
            for follow_up in follow_up_requests(store, judgement.succeeded, settings.now()):
                first = dt.date.fromisoformat(follow_up.tags[ASSET_PARTITION_RANGE_START_TAG])
                last = dt.date.fromisoformat(follow_up.tags[ASSET_PARTITION_RANGE_END_TAG])
                timeframe = Timeframe(follow_up.tags[GAP_TIMEFRAME_TAG])
                try:
                    run_candle_backfill(defs, instance, [catalog.get(follow_up.tags[SYMBOL_TAG])], [timeframe],
                                        first, last, tags={**follow_up.tags, **tags})
                except BackfillError as exc:
                    print(f"massive-pipeline: {timeframe} re-derivation after a fill failed: {exc}", file=sys.stderr)
            busy = busy_fill_ranges(instance, catalog)

            def skip(fill: FillRange) -> str | None:
                blocker = next((b for b in busy.get(fill.spec.symbol, []) if b.overlaps(fill)), None)
                return None if blocker is None else f"fill run {blocker.run_id[:8]} of these days is in progress"

            def rematerialize(fill: FillRange, timeframes: list[Timeframe], fill_tags: dict[str, str]):
                started: list[str] = []
                try:
                    run_candle_backfill(defs, instance, [fill.spec], timeframes, fill.first_day, fill.last_day,
                                        tags={**fill_tags, **tags}, on_run=lambda s: started.append(s.run_id))
                except BackfillError as exc:
                    return started, str(exc)
                return started, None

            outcomes = fill_gaps(store, series, rematerialize, retry_unfillable=bool(args.retry_unfillable),
                                 skip=skip)
    finally:
        store.dispose()
    for j in judgement.still_filling:
        print(f"{j.line()}: gap_fill_sensor judges it when its run ends")
    rows = pd.DataFrame([row for o in outcomes for row in o.rows()])
    if rows.empty:
        print(f"no detected gaps to fill ({IN_PROCESS_NOTE})")
        return 0
    for col in ("gap_start", "gap_end"):
        rows[col] = pd.to_datetime(rows[col], utc=True)
    rows["note"] = [e or k for e, k in zip(rows["error"], rows["skipped"], strict=True)]
    print_table(rows, ["symbol", "timeframe", "gap_start", "gap_end", "candles_missing", "status", "days", "runs",
                       "note"])
    counts = rows["status"].value_counts().to_dict()
    skipped = int((rows["skipped"] != "").sum())
    print(f"{len(rows)} gap(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
          + (f" ({skipped} left to the fill run in progress)" if skipped else "") + f"; {IN_PROCESS_NOTE}")
    errors = sorted({e for e in rows["error"] if e})
    for e in errors:
        print(f"  re-materialization failed: {e}", file=sys.stderr)
    return 1 if errors else 0


def cmd_gaps_list(args: argparse.Namespace) -> int:
    from massive_pipeline.resources.candle_store import CandleStoreResource

    symbols, timeframes = _symbols(args.symbols), _timeframe_names(args.timeframes)
    gaps = CandleStoreResource().open().gaps(status=args.status)
    if symbols:
        gaps = gaps[gaps["symbol"].isin(symbols)]
    if timeframes:
        gaps = gaps[gaps["timeframe"].isin(timeframes)]
    if gaps.empty:
        print("no gaps recorded" + (f" with status {args.status}" if args.status else ""))
        return 0
    print_table(gaps, ["id", "symbol", "timeframe", "gap_start", "gap_end", "candles_missing", "status", "attempts",
                       "detected_at", "filled_at"])
    counts = gaps["status"].value_counts().to_dict()
    print(f"{len(gaps)} gap(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from massive_pipeline.core.catalog import load_catalog
    from massive_pipeline.core.timeframes import parse_timeframe
    from massive_pipeline.quality.verify import split_symbols_without_data, status_counts, verify
    from massive_pipeline.resources.candle_store import CandleStoreResource

    catalog = load_catalog()
    specs = catalog.select(_symbols(args.symbols) or None)
    wanted = [parse_timeframe(t) for t in _timeframe_names(args.timeframes)]
    series = [(s, [tf for tf in (wanted or s.timeframes) if tf in s.timeframes]) for s in specs]
    now = None
    if args.at:
        try:
            now = pd.Timestamp(args.at)
        except ValueError:
            raise UsageError(f"--at is not a timestamp: {args.at!r}") from None
        now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    report = verify(CandleStoreResource().open(), series, now)
    shown, without = split_symbols_without_data(report) if not args.symbols else (report, [])
    if len(shown):
        print_table(shown, ["symbol", "timeframe", "status", "bars", "first_bar", "last_bar", "behind", "open_gaps",
                            "detail"])
    if without:
        print(f"missing: no bars stored in any timeframe for {len(without)} symbol(s): {', '.join(without)}")
    counts = status_counts(report)
    print(f"{len(report)} series: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return 0 if counts["ok"] == len(report) else 1


def _one_line_errors(command):
    """A bad quality setting in the environment is reported like the other configuration errors."""

    def run(args: argparse.Namespace) -> int:
        from massive_pipeline.quality.settings import QualitySettingsError

        try:
            return command(args)
        except QualitySettingsError as exc:
            return _fail(str(exc))

    return run


def register(sub: argparse._SubParsersAction) -> None:
    gaps = sub.add_parser("gaps", help="find, fill and list runs of missing bars (data_gaps)")
    gsub = gaps.add_subparsers(dest="gaps_command", required=True)

    detect = gsub.add_parser("detect", help="run gap_detection_job: record runs of missing bars inside trading sessions")
    detect.add_argument("--symbols", help="comma-separated symbols (default: the whole catalog)")
    detect.add_argument("--timeframes", help="comma-separated timeframes (default: each symbol's fetched ones)")
    detect.add_argument("--start", type=date_arg, help="first UTC day (inclusive; instead of --days/--all)")
    detect.add_argument("--end", type=date_arg, help="last UTC day (inclusive; default today)")
    detect.add_argument(
        "--days", type=int, metavar="N",
        help=f"search the N UTC days ending with --end, --end included (default {DEFAULT_DETECT_DAYS}); "
        "0 searches each series' whole stored history, from its first stored bar (same as --all)",
    )
    detect.add_argument("--all", action="store_true",
                        help="search each series' whole stored history (same as --days 0)")
    detect.add_argument("--min-bars", type=int, help="shortest gap in bars (default MASSIVE_GAP_MIN_BARS: 3 for M1)")
    detect.set_defaults(func=_one_line_errors(cmd_gaps_detect))

    fill = gsub.add_parser(
        "fill",
        help="re-materialize the partitions holding detected gaps now, in this process (runs recorded in "
        "$DAGSTER_HOME, not queued; unattended, gap_fill_sensor requests the same runs through the queue)",
    )
    fill.add_argument("--symbols", help="comma-separated symbols (default: all)")
    fill.add_argument("--timeframes", help="comma-separated timeframes (default: all)")
    fill.add_argument("--retry-unfillable", action="store_true", help="also retry gaps already found unfillable")
    fill.set_defaults(func=_one_line_errors(cmd_gaps_fill))

    listing = gsub.add_parser("list", help="show recorded gaps and their status")
    listing.add_argument("--symbols", help="comma-separated symbols (default: all)")
    listing.add_argument("--timeframes", help="comma-separated timeframes (default: all)")
    listing.add_argument("--status", choices=GAP_STATUSES, help="only gaps with this status")
    listing.set_defaults(func=_one_line_errors(cmd_gaps_list))

    ver = sub.add_parser("verify", help="ok / missing / stale / incomplete per symbol × timeframe; exit 1 unless all ok")
    ver.add_argument("--symbols", help="comma-separated symbols (default: the whole catalog)")
    ver.add_argument("--timeframes", help="comma-separated timeframes (default: all)")
    ver.add_argument("--at", help="judge as of this UTC time, e.g. 2026-10-10T12:00 (default: now)")
    ver.set_defaults(func=_one_line_errors(cmd_verify))
