"""`brokers/<name>/<symbol>`: the latest comparison of a broker's export with the stored candles.

One asset per declared broker × symbol, in group `brokers`. It depends on the symbol's candle
assets of the broker's timeframes, so the asset graph shows candles → broker comparison. A run
compares the file named in its config (`file`, what the sensor passes) or, without one, the
newest export of that symbol in the broker's folder; the comparison is also a row of
`broker_comparisons`. The metadata shows the offset, the differences and a plot of broker − store
over time.
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at definition time.
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from massive_pipeline.broker.comparison import compare_export, store_timeframes
from massive_pipeline.broker.config import BrokerSpec
from massive_pipeline.broker.exports import BrokerExportError
from massive_pipeline.broker.filenames import parse_export_name
from massive_pipeline.broker.report import comparison_metadata, diff_plot_markdown
from massive_pipeline.core.asset_keys import candle_key_path
from massive_pipeline.core.catalog import Catalog
from massive_pipeline.resources.candle_store import CandleStoreResource

BROKERS_GROUP = "brokers"


def broker_key(broker: str, symbol: str) -> AssetKey:
    """`brokers/icmarkets/xauusd`."""
    return AssetKey([BROKERS_GROUP, broker, symbol.lower()])


class BrokerExportConfig(Config):
    """Which export a run compares."""

    file: str = ""  # path of the export; empty: the newest export of the symbol in the broker's folder


def exports_of(broker: BrokerSpec, symbol: str) -> list[Path]:
    """The broker folder's exports of `symbol` (by file name), oldest first by modification time."""
    if not broker.folder.is_dir():
        return []
    found = [
        p
        for p in broker.folder.iterdir()
        if p.is_file()
        and (name := parse_export_name(p, broker.symbols)) is not None
        and name.symbol == symbol
    ]
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))


def _broker_asset(catalog: Catalog, broker: BrokerSpec, symbol: str) -> AssetsDefinition:
    spec = catalog.get(symbol)
    timeframes = [tf for tf in broker.timeframes if tf in spec.timeframes]

    @asset(
        key=broker_key(broker.name, symbol),
        deps=[AssetKey(candle_key_path(symbol, s)) for tf in timeframes for s in store_timeframes(spec, tf)],
        group_name=BROKERS_GROUP,
        kinds={"python"},
        description=(
            f"{symbol} at broker {broker.name}: the newest MT4/MT5 export in {broker.folder} against the stored "
            f"candles ({', '.join(tf.value for tf in timeframes)}): server-time offset ({broker.offset_label}), "
            "broker − store differences, recommended price offset."
        ),
        metadata={"broker": broker.name, "folder": str(broker.folder), "offset": broker.offset_label},
    )
    def _comparison(
        context: AssetExecutionContext, config: BrokerExportConfig, candle_store: CandleStoreResource
    ) -> MaterializeResult:
        files = [Path(config.file)] if config.file else exports_of(broker, symbol)
        if not files:
            raise BrokerExportError(
                f"broker {broker.name}: no {symbol} export in {broker.folder} "
                "(names like XAUUSD15.csv or XAUUSD_M15_....csv)"
            )
        path = files[-1]
        name = parse_export_name(path, broker.symbols)
        if name is None or name.symbol != symbol or name.timeframe not in timeframes:
            raise BrokerExportError(
                f"{path.name}: not a {symbol} export of {', '.join(tf.value for tf in timeframes)} by its name "
                "(XAUUSD15.csv, XAUUSD_M15_....csv)"
            )
        outcome = compare_export(
            candle_store.store,
            spec,
            name.timeframe,
            broker.name,
            path,
            broker.offset,
            threshold_pips=broker.threshold_pips,
        )
        for line in outcome.lines():
            context.log.info(line)
        return MaterializeResult(
            metadata={
                **comparison_metadata(outcome),
                "diff_plot": MetadataValue.md(diff_plot_markdown(outcome)),
            }
        )

    return _comparison


def build_broker_assets(catalog: Catalog, brokers: tuple[BrokerSpec, ...]) -> list[AssetsDefinition]:
    return [_broker_asset(catalog, b, s) for b in brokers for s in b.symbols]
