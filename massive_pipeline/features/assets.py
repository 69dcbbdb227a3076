"""The example consumer of the candles: one features asset per symbol × feature timeframe.

`features/<symbol>/<timeframe>` takes `candles/<symbol>/<timeframe>` as its input through the
candle IO manager, so the asset graph shows candles → features. It is partitioned like its
input (the same partitions definition object, so Dagster maps partition to partition), asks the
IO manager for `warmup` complete bars before the partition so every rolling window is full from
the partition's first bar, and keeps only the partition's own rows.

The features frame goes to the code location's default IO manager (a pickle per partition
under `$DAGSTER_HOME/storage`); that manager keeps one partition per output, hence the
multi-run backfill policy of one partition per run. Bind another IO manager to keep them
elsewhere. Nothing schedules these assets: they are a model to copy.
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at definition time.
from collections.abc import Iterator, Mapping

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    Output,
    asset,
)

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.candles.partitions import partitions_for, window_bounds
from massive_pipeline.core.catalog import Catalog, SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.features.checks import evaluate_features, feature_check_specs
from massive_pipeline.features.compute import FeatureParams, compute_features
from massive_pipeline.resources.candle_io_manager import LOOKBACK_BARS

FEATURES_GROUP = "features"
# a day of hourly bars for the hourly volatility, a trading month for the daily one
FEATURE_TIMEFRAMES: Mapping[Timeframe, FeatureParams] = {
    Timeframe.H1: FeatureParams(vol_window=24, atr_period=14),
    Timeframe.D1: FeatureParams(vol_window=20, atr_period=14),
}


def feature_key(symbol: str, timeframe: Timeframe) -> AssetKey:
    """`features/eurusd/h1` for EURUSD H1."""
    return AssetKey([FEATURES_GROUP, symbol.lower(), timeframe.key])


def partition_rows(bars: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.Series, int]:
    """Which of the input's rows are the partition's own, and how many look-back rows precede them."""
    own = (bars["ts"] >= start) & (bars["ts"] < end)
    return own, int((bars["ts"] < start).sum())


def _features_asset(spec: SymbolSpec, tf: Timeframe, params: FeatureParams) -> AssetsDefinition:
    key = feature_key(spec.symbol, tf)
    partitions_def = partitions_for(spec.start, tf)

    @asset(
        key=key,
        ins={"bars": AssetIn(key=candle_key(spec.symbol, tf), metadata={LOOKBACK_BARS: params.warmup})},
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.multi_run(1),
        check_specs=feature_check_specs(key, partitions_def),
        group_name=FEATURES_GROUP,
        kinds={"pandas"},
        description=(
            f"{spec.symbol} {tf.value} log returns, realized volatility over {params.vol_window} bars and "
            f"ATR over {params.atr_period} bars, from the complete stored candles (example consumer)."
        ),
        metadata={
            "timeframe": tf.value,
            "vol_window": params.vol_window,
            "atr_period": params.atr_period,
            "warmup_bars": params.warmup,
        },
    )
    def _features(context: AssetExecutionContext, bars: pd.DataFrame) -> Iterator[Output | AssetCheckResult]:
        start, end = window_bounds(context.partition_time_window)
        own, lookback_rows = partition_rows(bars, start, end)
        features = compute_features(bars, params)[own.to_numpy()].reset_index(drop=True)
        yield Output(
            features,
            metadata={
                "rows": len(features),
                "lookback_rows": lookback_rows,
                "first_ts": str(features["ts"].iloc[0]) if len(features) else "",
                "last_ts": str(features["ts"].iloc[-1]) if len(features) else "",
            },
        )
        for finding in evaluate_features(features, bars[own], params, lookback_rows):
            yield AssetCheckResult(
                check_name=finding.check,
                passed=finding.passed,
                severity=AssetCheckSeverity.ERROR,
                description=finding.description,
                metadata=finding.metadata,
            )

    return _features


def build_feature_assets(
    catalog: Catalog, timeframes: Mapping[Timeframe, FeatureParams] = FEATURE_TIMEFRAMES
) -> list[AssetsDefinition]:
    """A features asset per catalog symbol × timeframe, where the symbol has that candle asset."""
    return [
        _features_asset(spec, tf, params)
        for spec in catalog
        for tf, params in timeframes.items()
        if tf.minutes >= spec.base_timeframe.minutes
    ]
