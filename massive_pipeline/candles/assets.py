"""One software-defined asset per catalog symbol × timeframe.

The base timeframe (and any timeframe the catalog lists under `fetch`) is fetched from the API;
every other timeframe is derived from bars already in the store, so lineage reads
`candles/eurusd/m1 → candles/eurusd/h1`: from the base, except W1 where D1 is fetched, which is
the weekly resample of the stored day bars (`candles/gbpusd/d1 → candles/gbpusd/w1`), so the base
needs only the intraday timeframes' history. All candle assets use a single-run backfill policy: a
backfill of a year of daily partitions is one run that fetches the whole range in as few
requests as the API's 50,000-bar pages allow, never one request per day. The run streams: each
page is written as it arrives, in slices of whole partitions (`slices.py`, `ranged_write.py`), so
its memory does not depend on the range's length.

The steps that call the API run in one of two lanes (README "Lanes"): the critical symbols'
fetched assets (and the snapshots) in pool `massive_api_critical`, every other fetched asset in
pool `massive_api`. A pool is fixed per asset, while criticality is about the work: a backfill,
re-sync or gap fill of XAUUSD is bulk work on a critical asset. So the critical pool is sized for
the refresh plus every run of those kinds that the run queue lets in at once, and each run may
hold only one of its slots at a time (the op tag `massive/lane: critical`, limited to 1 per run by
the code location's executor, `candles/jobs.py`); a backfill of non-critical symbols never touches
it at all. Binance's fetched assets have lanes of their own, `binance_api_critical` and
`binance_api`: Binance has its own rate budget, so its steps never take a slot a Massive step
could use, nor Massive's one of Binance's.

Every candle asset names the candle IO manager (`resources/candle_io_manager.py`) as its output's
manager, so a downstream asset can take it as an input (`AssetIn(key=candle_key(...))`) and
receive the stored bars. The bars are still written here, through the store's atomic window
replace; the assets return a `MaterializeResult` without a value, which Dagster never hands to
an IO manager, so the manager only reads.
"""

import datetime as dt
from collections.abc import Iterator

import pandas as pd
from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    asset,
)

from massive_pipeline.candles.partitions import partitions_for, window_bounds
from massive_pipeline.candles.ranged_write import RangedWrite, SliceWrite
from massive_pipeline.candles.slices import PartitionEdges, Slice, page_slices, slice_bars, span_slices
from massive_pipeline.candles.write_report import (
    CandleWriteConfig,
    DerivedDayConfig,
    fetch_metadata,
    write_summary,
)
from massive_pipeline.core.asset_keys import candle_key_path
from massive_pipeline.core.catalog import Catalog, Provider, SymbolSpec
from massive_pipeline.core.resample import resample_bars
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.massive.provider import stream_bars
from massive_pipeline.quality.checks import (
    candle_check_outputs,
    candle_check_specs,
    partition_windows,
    with_targets,
)
from massive_pipeline.quality.cross_check import CrossCheck, cross_check_of
from massive_pipeline.resources.binance import BinanceResource
from massive_pipeline.resources.candle_io_manager import CANDLE_IO_MANAGER_KEY
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.resources.massive import MassiveResource, uses_critical_reserve
from massive_pipeline.store import CandleStore, WriteResult

CRITICAL_POOL = "massive_api_critical"
BULK_POOL = "massive_api"
BINANCE_CRITICAL_POOL = "binance_api_critical"
BINANCE_BULK_POOL = "binance_api"
# Op tag naming a step's lane; the executor allows one `critical` step in flight per run.
LANE_TAG = "massive/lane"
CRITICAL_LANE = "critical"
BULK_LANE = "bulk"


def api_pool(critical: bool, provider: Provider = Provider.MASSIVE) -> str:
    """The pool of an API-calling step: the critical symbols' own, or the shared bulk one, of the
    provider whose budget the step spends."""
    if provider is Provider.BINANCE:
        return BINANCE_CRITICAL_POOL if critical else BINANCE_BULK_POOL
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


def _fetched_asset(spec: SymbolSpec, tf: Timeframe, cross_check: CrossCheck | None = None) -> AssetsDefinition:
    """The asset that fetches `tf` of `spec` from the entry's provider: the resource it names is
    `massive` or `binance` (Dagster binds resources by parameter name), the body is the same."""
    source = "base timeframe" if tf is spec.base_timeframe else "fetched per catalog"
    binance = spec.provider is Provider.BINANCE
    origin = f"Binance symbol {spec.ticker}" if binance else f"Massive ticker {spec.ticker}"
    decorate = asset(
        key=candle_key(spec.symbol, tf),
        partitions_def=partitions_for(spec.start, tf),
        check_specs=candle_check_specs(candle_key(spec.symbol, tf), partitions_for(spec.start, tf), cross_check),
        backfill_policy=BackfillPolicy.single_run(),
        group_name=spec.symbol.lower(),
        kinds={spec.provider.value, "pandas"},
        tags={"massive/priority": spec.priority.value, "massive/source": "api",
              "massive/provider": spec.provider.value},
        description=f"{spec.symbol} {tf.value} candles ({source}) from {origin}.",
        metadata={"ticker": spec.ticker, "timeframe": tf.value, "asset_class": spec.asset_class.value,
                  "provider": spec.provider.value},
        pool=api_pool(spec.is_critical, spec.provider),
        io_manager_key=CANDLE_IO_MANAGER_KEY,
        op_tags=lane_op_tags(spec.is_critical),
    )
    if binance:
        @decorate
        def _fetch_binance(
            context: AssetExecutionContext, config: CandleWriteConfig, binance: BinanceResource,
            candle_store: CandleStoreResource,
        ) -> Iterator[object]:
            yield from _fetch_and_write(context, config, binance, candle_store, spec, tf, cross_check)

        return _fetch_binance

    @decorate
    def _fetch(
        context: AssetExecutionContext, config: CandleWriteConfig, massive: MassiveResource,
        candle_store: CandleStoreResource,
    ) -> Iterator[object]:
        yield from _fetch_and_write(context, config, massive, candle_store, spec, tf, cross_check)

    return _fetch


def _fetch_and_write(
    context: AssetExecutionContext, config: CandleWriteConfig, api: MassiveResource | BinanceResource,
    candle_store: CandleStoreResource, spec: SymbolSpec, tf: Timeframe, cross_check: CrossCheck | None,
    filled_instead_of: Timeframe | None = None,
) -> Iterator[object]:
    """Fetch the window page by page and write each slice as it completes (`ranged_write.py`).
    `filled_instead_of`: a derived series whose window is filled from the provider this once
    (`DerivedDayConfig`), said in the log and metadata."""
    start, end = window_bounds(context.partition_time_window)
    store = candle_store.store
    edges = _edges(context, start, end)
    work = RangedWrite(context, config, store, spec, tf, SliceWrite(source=spec.provider.value), cross_check)
    # the run's purpose, not the symbol's priority: a backfill of XAUUSD is ordinary work
    with api.provider(critical=uses_critical_reserve(context.run.tags)) as provider:
        stream = stream_bars(provider, spec.ticker, tf, start, end)
        work.run(page_slices(stream, edges, tf.delta, slice_bars()))
    fetched = stream.result
    _record_sync(store, spec, tf)
    for warning in fetched.warnings:
        context.log.warning(f"{spec.symbol} {tf.value}: {warning}")
    fill = ({"filled_from": f"{spec.provider.value} day aggregates (not derived from {filled_instead_of.value})"}
            if filled_instead_of is not None else {})
    _log_write(context, f"{spec.symbol} {tf.value} {start:%Y-%m-%d}..{end:%Y-%m-%d}", work.totals.write,
               f"{fetched.requests} API request(s), status {fetched.provider_status}, "
               f"{work.totals.rejected} rejected, {work.totals.slices} slice(s)"
               + (f"; fetched as {fill['filled_from']}" if fill else ""))
    yield MaterializeResult(
        metadata=work.totals.metadata(window=f"{start.isoformat()} .. {end.isoformat()}", **fetch_metadata(fetched),
                                      **fill)
    )
    yield from candle_check_outputs(context)
    yield from with_targets(context, work.evaluations)


def _edges(context: AssetExecutionContext, start: pd.Timestamp, end: pd.Timestamp) -> PartitionEdges:
    """The edges of the run's partitions, where its slices may be cut."""
    return PartitionEdges([(p.start, p.end) for p in partition_windows(context, start, end)])


def _base_dep(base_key: AssetKey, tf: Timeframe) -> AssetDep:
    """The derived asset's dependency on its base: Dagster's default time-window mapping, except for
    the New York close timeframes. Dagster 1.13 maps time windows only between partitions definitions
    of one timezone ("Timezones UTC and America/New_York don't match"), so those depend on the base as
    a whole; which base days a run reads is the asset's own business (its bars' window), and the
    backfill plan fetches those days (`candles/partitions.planned_ranges`)."""
    if tf.is_new_york:
        return AssetDep(base_key, partition_mapping=AllPartitionMapping())
    return AssetDep(base_key)


def _derived_asset(spec: SymbolSpec, tf: Timeframe, cross_check: CrossCheck | None = None) -> AssetsDefinition:
    # the series it is resampled from: the base, or for W1 a fetched D1 (`SymbolSpec.derived_from`)
    base = spec.derived_from(tf)
    if base is None:
        raise ValueError(f"{spec.symbol} {tf.value} is fetched, not derived")
    base_key = candle_key(spec.symbol, base)

    decorate = asset(
        key=candle_key(spec.symbol, tf),
        partitions_def=partitions_for(spec.start, tf),
        backfill_policy=BackfillPolicy.single_run(),
        group_name=spec.symbol.lower(),
        kinds={"pandas"},
        deps=[_base_dep(base_key, tf)],
        check_specs=candle_check_specs(candle_key(spec.symbol, tf), partitions_for(spec.start, tf), cross_check),
        tags={"massive/priority": spec.priority.value, "massive/source": "derived"},
        description=f"{spec.symbol} {tf.value} candles resampled from {base.value} (no API requests)"
                    + (" on 17:00 New York boundaries (the broker's day)." if tf.is_new_york else ".")
                    + (" A run with `provider_days_before` fills older days from the provider's day aggregates."
                       if tf is Timeframe.D1 and spec.provider_days_are_store_days else ""),
        metadata={"ticker": spec.ticker, "timeframe": tf.value, "derived_from": base.value},
        io_manager_key=CANDLE_IO_MANAGER_KEY,
    )

    if tf is Timeframe.D1 and spec.provider_days_are_store_days:
        @decorate
        def _derive_or_fill(
            context: AssetExecutionContext, config: DerivedDayConfig, massive: MassiveResource,
            candle_store: CandleStoreResource,
        ) -> Iterator[object]:
            if _fill_from_provider(context, spec, tf, config.provider_days_before):
                yield from _fetch_and_write(context, config, massive, candle_store, spec, tf, cross_check,
                                            filled_instead_of=base)
            else:
                yield from _derive_and_write(context, config, candle_store, spec, tf, base, cross_check)

        return _derive_or_fill

    @decorate
    def _derive(
        context: AssetExecutionContext, config: CandleWriteConfig, candle_store: CandleStoreResource
    ) -> Iterator[object]:
        yield from _derive_and_write(context, config, candle_store, spec, tf, base, cross_check)

    return _derive


def _fill_from_provider(context: AssetExecutionContext, spec: SymbolSpec, tf: Timeframe, before: str) -> bool:
    """Whether this run's window is filled from the provider (`DerivedDayConfig.provider_days_before`):
    wholly before the date yes, wholly from it on no; a bad date or a window across it is refused
    in one line naming the series, before any request or write."""
    if not before:
        return False
    label = f"{spec.symbol} {tf.value} provider_days_before"
    try:
        cutoff = pd.Timestamp(dt.date.fromisoformat(before), tz="UTC")
    except ValueError:
        raise ValueError(f"{label}: {before!r} is not a date (YYYY-MM-DD)") from None
    start, end = window_bounds(context.partition_time_window)
    if end <= cutoff:
        return True
    if start >= cutoff:
        return False
    raise ValueError(f"{label} {before} falls inside the run's window {start:%Y-%m-%d}..{end:%Y-%m-%d}: "
                     f"run the days before it and the days from it as two runs")


def _derive_and_write(
    context: AssetExecutionContext, config: CandleWriteConfig, candle_store: CandleStoreResource,
    spec: SymbolSpec, tf: Timeframe, base: Timeframe, cross_check: CrossCheck | None,
) -> Iterator[object]:
    """Resample the run's window from the stored `base` bars slice by slice, validate, write, check."""
    start, end = window_bounds(context.partition_time_window)
    store = candle_store.store
    # A derived bar whose base bars were partly trimmed by retention would be rebuilt from
    # part of its period: bars stored before the first stored base bar stay as they are.
    how = SliceWrite(source=f"derived:{base.value}", protect_before=store.first_bar_ts(spec.symbol, base),
                     resample=lambda bars: resample_bars(bars, tf))
    work = RangedWrite(context, config, store, spec, tf, how, cross_check)
    # slices on the derived partitions' edges, which are its bars' edges too
    slices = (Slice(lo, hi, store.read(spec.symbol, base, lo, hi))
              for lo, hi in span_slices(_edges(context, start, end), base.delta, slice_bars()))
    work.run(slices)
    _record_sync(store, spec, tf)
    _log_write(context, f"{spec.symbol} {tf.value} {start:%Y-%m-%d}..{end:%Y-%m-%d}", work.totals.write,
               f"from {work.base_bars_read} {base.value} bars, {work.totals.slices} slice(s)")
    yield MaterializeResult(metadata=work.totals.metadata(base_bars_read=work.base_bars_read, api_requests=0))
    yield from candle_check_outputs(context)
    yield from with_targets(context, work.evaluations)


def build_candle_assets(catalog: Catalog, timeframes: tuple[Timeframe, ...] = tuple(Timeframe)) -> list[AssetsDefinition]:
    """Every symbol × timeframe of the catalog, fetched or derived as its entry says; an entry's
    `cross_check` is a check of its asset on the timeframe the two entries are compared on."""
    out: list[AssetsDefinition] = []
    for spec in catalog:
        comparison = cross_check_of(catalog, spec)
        for tf in timeframes:
            if tf not in spec.timeframes:  # finer than the base, or a convention the symbol lacks
                continue
            check = comparison if comparison is not None and comparison.timeframe is tf else None
            source = spec.timeframe_source(tf)
            out.append(_derived_asset(spec, tf, check) if source == "derived" else _fetched_asset(spec, tf, check))
    return out

