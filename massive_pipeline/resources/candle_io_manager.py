"""The candle IO manager: how a downstream Dagster asset receives stored candles as its input.

A downstream asset declares `ins={"bars": AssetIn(key=candle_key("EURUSD", Timeframe.H1))}` and
gets a pandas DataFrame of that series, read from the candle store (the `CandleStore.read`
frame: `ts` as UTC timestamps, OHLCV, `vwap`, `trades`, `source`, `ingested_at`, `complete`):

- the bars of the input's mapped partitions: one day, or the whole range of a ranged run (a
  single-run backfill), through whatever partition mapping the `AssetIn` declares;
- every stored bar of the series when the input covers all its partitions, as an unpartitioned
  downstream asset's input does.

Bars still forming are left out, so a feature never sees a bar whose values will change; an
input asks for them with `AssetIn(metadata={"include_forming": True})`. A rolling window needs
bars before the partition to warm up: `AssetIn(metadata={"lookback_bars": N})` prepends the N
stored bars before the window (counted in bars, since a weekend holds none).

Writing stays where it is: the candle assets replace their window through the store's atomic
write and return a `MaterializeResult` without a value, which Dagster does not hand to an IO
manager. `handle_output` therefore has nothing to store, and refuses a value rather than let an
asset believe its frame was saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from dagster import ConfigurableIOManager, InitResourceContext, InputContext, OutputContext
from pydantic import Field, PrivateAttr

from massive_pipeline.core.asset_keys import series_of_candle_key
from massive_pipeline.core.timeutil import to_utc
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.store import CandleStore

CANDLE_IO_MANAGER_KEY = "candle_io_manager"
INCLUDE_FORMING = "include_forming"
LOOKBACK_BARS = "lookback_bars"


class CandleInputError(ValueError):
    """An input the candle IO manager cannot serve; the message names the input and the cause."""


@dataclass(frozen=True)
class CandleInputOptions:
    """What an `AssetIn`'s metadata asks of the candle IO manager."""

    include_forming: bool = False
    lookback_bars: int = 0

    @classmethod
    def from_metadata(cls, metadata: Any, where: str) -> CandleInputOptions:
        """Read the options from the input's metadata; other metadata keys are the user's own."""
        metadata = metadata or {}
        include_forming = metadata.get(INCLUDE_FORMING, False)
        if not isinstance(include_forming, bool):
            raise CandleInputError(
                f"{where}: metadata {INCLUDE_FORMING} must be true or false, got {include_forming!r}"
            )
        lookback = metadata.get(LOOKBACK_BARS, 0)
        if not isinstance(lookback, int) or isinstance(lookback, bool) or lookback < 0:
            raise CandleInputError(
                f"{where}: metadata {LOOKBACK_BARS} must be a non-negative integer, got {lookback!r}"
            )
        return cls(include_forming=include_forming, lookback_bars=lookback)


def input_bounds(context: InputContext) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The [start, end) the input covers, or (None, None) for the whole series.

    An input mapped to every partition of the candle asset (an unpartitioned downstream asset,
    or a range over all of them) means the series, including any bar stored before its first
    partition, so it is read without bounds.
    """
    if not context.has_asset_partitions:
        return None, None
    if len(context.asset_partition_keys) >= context.asset_partitions_def.get_num_partitions():
        return None, None
    window = context.asset_partitions_time_window
    return to_utc(window.start, "partition window start"), to_utc(window.end, "partition window end")


class CandleIOManager(ConfigurableIOManager):
    """Loads candle assets' bars from the candle store for downstream assets; stores nothing.

    Bound as `candle_io_manager` by the composition root with the `database_url` of the bound
    `candle_store` resource, so the assets write and their consumers read one store. It opens
    its own store (not a nested resource: Dagster would open a second copy of that anyway) on the
    first input a run loads, and closes it when the run's resources are torn down.
    """

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the candle store; unset: MASSIVE_DATABASE_URL, else a SQLite file "
        "under $DAGSTER_HOME (as the candle_store resource).",
    )

    _store: CandleStore | None = PrivateAttr(default=None)

    @property
    def store(self) -> CandleStore:
        if self._store is None:
            self._store = CandleStoreResource(database_url=self.database_url).open()
        return self._store

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None

    def handle_output(self, context: OutputContext, obj: object) -> None:
        if obj is None:
            return  # the candle asset already wrote its window through the store
        key = "/".join(context.asset_key.path) if context.has_asset_key else context.name
        raise CandleInputError(
            f"{CANDLE_IO_MANAGER_KEY} stores nothing: {key} returned a {type(obj).__name__}; candle assets write "
            "through CandleStore.write_window and return a MaterializeResult"
        )

    def load_input(self, context: InputContext) -> pd.DataFrame:
        path = context.asset_key.path
        where = f"input {context.name!r} from {'/'.join(path)}" if context.has_input_name else "/".join(path)
        try:
            symbol, timeframe = series_of_candle_key(path)
        except ValueError as exc:
            raise CandleInputError(f"{where}: {exc}") from None
        options = CandleInputOptions.from_metadata(context.definition_metadata, where)
        start, end = input_bounds(context)
        store = self.store
        bars = store.read(symbol, timeframe, start, end, include_forming=options.include_forming)
        prior = 0
        if options.lookback_bars and start is not None:
            before = store.read_before(
                symbol, timeframe, start, options.lookback_bars, include_forming=options.include_forming
            )
            prior = len(before)
            if prior:
                bars = pd.concat([before, bars], ignore_index=True)
        span = "all stored bars" if start is None else f"{start.isoformat()} .. {end.isoformat()}"
        forming = "forming bars included" if options.include_forming else "forming bars left out"
        context.log.info(
            f"{where}: {len(bars)} {symbol} {timeframe.value} bars, {span}, {prior} look-back bar(s), {forming}"
        )
        return bars
