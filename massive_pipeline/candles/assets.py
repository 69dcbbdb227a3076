"""One software-defined asset per catalog symbol × timeframe.

The base timeframe (and any timeframe the catalog lists under `fetch`) is fetched from the API;
every other timeframe is derived from the base bars already in the store, so lineage reads
`candles/eurusd/m1 → candles/eurusd/h1`. All candle assets use a single-run backfill policy: a
backfill of a year of daily partitions is one run that fetches the whole range in as few
requests as the API's 50,000-bar pages allow, never one request per day.

The steps that call the API run in one of two lanes (README "Lanes"): the critical symbols'
fetched assets (and the snapshots) in pool `massive_api_critical`, every other fetched asset in
pool `massive_api`. A pool is fixed per asset, while criticality is about the work: a backfill,
re-sync or gap fill of XAUUSD is bulk work on a critical asset. So the critical pool is sized for
the refresh plus every run of those kinds that the run queue lets in at once, and each run may
hold only one of its slots at a time (the op tag `massive/lane: critical`, limited to 1 per run by
the code location's executor, `candles/jobs.py`); a backfill of non-critical symbols never touches
it at all.

Every candle asset names the candle IO manager (`resources/candle_io_manager.py`) as its output's
manager, so a downstream asset can take it as an input (`AssetIn(key=candle_key(...))`) and
receive the stored bars. The bars are still written here, through the store's atomic window
replace; the assets return a `MaterializeResult` without a value, which Dagster never hands to
an IO manager, so the manager only reads.
"""

from collections.abc import Iterator

import pandas as pd
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    asset,
)

from massive_pipeline.candles.partitions import partitions_for, window_bounds
from massive_pipeline.candles.write_report import (
    CandleWriteConfig,
    fetch_metadata,
    write_metadata,
    write_summary,
)
from massive_pipeline.core.asset_keys import candle_key_path
from massive_pipeline.core.catalog import Catalog, SymbolSpec
from massive_pipeline.core.resample import resample_bars
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.quality.checks import candle_check_events, candle_check_specs
from massive_pipeline.quality.validation import quarantine, validate_bars
from massive_pipeline.resources.candle_io_manager import CANDLE_IO_MANAGER_KEY
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.resources.massive import MassiveResource, uses_critical_reserve
from massive_pipeline.store import CandleStore, WriteResult

CRITICAL_POOL = "massive_api_critical"
BULK_POOL = "massive_api"
# Op tag naming a step's lane; the executor allows one `critical` step in flight per run.
LANE_TAG = "massive/lane"
CRITICAL_LANE = "critical"
BULK_LANE = "bulk"


def api_pool(critical: bool) -> str:
    """The pool of an API-calling step: the critical symbols' own, or the shared bulk one."""
    return CRITICAL_POOL if critical else BULK_POOL


def lane_op_tags(critical: bool) -> dict[str, str]:
    return {LANE_TAG: CRITICAL_LANE if critical else BULK_LANE}


def candle_key(symbol: str, timeframe: Timeframe) -> AssetKey:
    """The asset key of a candle series, e.g. `candles/eurusd/h1`; downstream assets take it in
    `AssetIn(key=candle_key("EURUSD", Timeframe.H1))` and receive the bars through the candle IO manager."""
    return AssetKey(candle_key_path(symbol, timeframe))


def _record_sync(store: CandleStore, spec: SymbolSpec, tf: Timeframe) -> None:
    store.update_sync_status(
        spec.symbol, tf, status="ok", last_bar_ts=store.last_bar_ts(spec.symbol, tf),
        rows=store.count(spec.symbol, tf),
    )


def _log_write(context: AssetExecutionContext, label: str, result: WriteResult, detail: str) -> None:
    """An answer that lacked stored bars is a warning, never a silent success."""
    line = f"{label}: {write_summary(result)}; {detail}"
    if result.rows_missing_from_answer and not result.rows_removed:
        context.log.warning(line)
    else:
        context.log.info(line)


def _window_content(
    store: CandleStore, spec: SymbolSpec, tf: Timeframe, start: pd.Timestamp, end: pd.Timestamp,
    written: pd.DataFrame, result: WriteResult,
) -> pd.DataFrame:
    """What the window holds after the write, for the checks: the written bars, unless stored bars
    the answer lacked were kept (then the store is read again, since they are part of the series)."""
    if result.rows_removed == result.rows_missing_from_answer and not result.rows_kept_protected:
        return written
    return store.read(spec.symbol, tf, start, end)


def _fetched_asset(spec: SymbolSpec, tf: Timeframe) -> AssetsDefinition:
    source = "base timeframe" if tf is spec.base_timeframe else "fetched per catalog"

    @asset(
        key=candle_key(spec.symbol, tf),
        partitions_def=partitions_for(spec.start, tf),
        check_specs=candle_check_specs(candle_key(spec.symbol, tf), partitions_for(spec.start, tf)),
        backfill_policy=BackfillPolicy.single_run(),
        group_name=spec.symbol.lower(),
        kinds={"massive", "pandas"},
        tags={"massive/priority": spec.priority.value, "massive/source": "api"},
        description=f"{spec.symbol} {tf.value} candles ({source}) from Massive ticker {spec.ticker}.",
        metadata={"ticker": spec.ticker, "timeframe": tf.value, "asset_class": spec.asset_class.value},
        pool=api_pool(spec.is_critical),
        io_manager_key=CANDLE_IO_MANAGER_KEY,
        op_tags=lane_op_tags(spec.is_critical),
    )
    def _fetch(
        context: AssetExecutionContext, config: CandleWriteConfig, massive: MassiveResource,
        candle_store: CandleStoreResource,
    ) -> Iterator[object]:
        start, end = window_bounds(context.partition_time_window)
        # the run's purpose, not the symbol's priority: a backfill of XAUUSD is ordinary work
        with massive.provider(critical=uses_critical_reserve(context.run.tags)) as provider:
            fetched = provider.fetch_bars(spec.ticker, tf, start, end)
        store = candle_store.store
        # validation before storage: bad rows are quarantined with their reasons, the rest lands
        checked = validate_bars(fetched.bars, tf, f"{spec.symbol} {tf.value}")
        quarantine(store, spec.symbol, tf, checked, context.run.run_id)
        bars = checked.valid
        result = store.write_window(
            spec.symbol, tf, start, end, bars, source="massive", accept_removals=config.accept_removals,
            run_id=context.run.run_id,
        )
        _record_sync(store, spec, tf)
        for warning in fetched.warnings:
            context.log.warning(f"{spec.symbol} {tf.value}: {warning}")
        _log_write(context, f"{spec.symbol} {tf.value} {start:%Y-%m-%d}..{end:%Y-%m-%d}", result,
                   f"{fetched.requests} API request(s), status {fetched.provider_status}, "
                   f"{checked.rows_rejected} rejected")
        yield MaterializeResult(
            metadata=write_metadata(
                result, bars, window=f"{start.isoformat()} .. {end.isoformat()}", **fetch_metadata(fetched),
                **checked.metadata(),
            )
        )
        yield from candle_check_events(
            context, store=store, symbol=spec.symbol, timeframe=tf, calendar=spec.market_calendar,
            start=start, end=end, stored=_window_content(store, spec, tf, start, end, bars, result),
            validated=checked, missing_from_answer=result.missing, removals_accepted=config.accept_removals,
        )

    return _fetch


def _derived_asset(spec: SymbolSpec, tf: Timeframe) -> AssetsDefinition:
    base = spec.base_timeframe
    base_key = candle_key(spec.symbol, base)

    @asset(
        key=candle_key(spec.symbol, tf),
        partitions_def=partitions_for(spec.start, tf),
        backfill_policy=BackfillPolicy.single_run(),
        group_name=spec.symbol.lower(),
        kinds={"pandas"},
        deps=[AssetDep(base_key)],
        check_specs=candle_check_specs(candle_key(spec.symbol, tf), partitions_for(spec.start, tf)),
        tags={"massive/priority": spec.priority.value, "massive/source": "derived"},
        description=f"{spec.symbol} {tf.value} candles resampled from {base.value} (no API requests).",
        metadata={"ticker": spec.ticker, "timeframe": tf.value, "derived_from": base.value},
        io_manager_key=CANDLE_IO_MANAGER_KEY,
    )
    def _derive(
        context: AssetExecutionContext, config: CandleWriteConfig, candle_store: CandleStoreResource
    ) -> Iterator[object]:
        start, end = window_bounds(context.partition_time_window)
        store = candle_store.store
        base_bars = store.read(spec.symbol, base, start, end)
        checked = validate_bars(resample_bars(base_bars, tf), tf, f"{spec.symbol} {tf.value}")
        quarantine(store, spec.symbol, tf, checked, context.run.run_id)
        bars = checked.valid
        # A derived bar whose base bars were partly trimmed by retention would be rebuilt from
        # part of its period: bars stored before the first stored base bar stay as they are.
        result = store.write_window(
            spec.symbol, tf, start, end, bars, source=f"derived:{base.value}",
            accept_removals=config.accept_removals, run_id=context.run.run_id,
            protect_before=store.first_bar_ts(spec.symbol, base),
        )
        _record_sync(store, spec, tf)
        _log_write(context, f"{spec.symbol} {tf.value} {start:%Y-%m-%d}..{end:%Y-%m-%d}", result,
                   f"from {len(base_bars)} {base.value} bars")
        yield MaterializeResult(
            metadata=write_metadata(
                result, bars, base_bars_read=len(base_bars), api_requests=0, **checked.metadata()
            )
        )
        yield from candle_check_events(
            context, store=store, symbol=spec.symbol, timeframe=tf, calendar=spec.market_calendar,
            start=start, end=end, stored=_window_content(store, spec, tf, start, end, bars, result),
            validated=checked, base_bars=base_bars, missing_from_answer=result.missing,
            removals_accepted=config.accept_removals, written=bars,
        )

    return _derive


def build_candle_assets(catalog: Catalog, timeframes: tuple[Timeframe, ...] = tuple(Timeframe)) -> list[AssetsDefinition]:
    """Every symbol × timeframe of the catalog, fetched or derived as its entry says."""
    out: list[AssetsDefinition] = []
    for spec in catalog:
        for tf in timeframes:
            if _finer_than(tf, spec.base_timeframe):
                continue
            source = spec.timeframe_source(tf)
            out.append(_derived_asset(spec, tf) if source == "derived" else _fetched_asset(spec, tf))
    return out


def _finer_than(tf: Timeframe, base: Timeframe) -> bool:
    """Bars finer than the base timeframe cannot be derived from it, so no asset is made."""
    return tf.minutes < base.minutes
