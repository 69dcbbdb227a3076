"""`data_quality_report`: the verify report and a coverage picture, as metadata the UI renders.

The coverage picture is a symbols × days table of the share of expected base bars present, one
coloured cell per UTC day (green ≥ 99.5 %, yellow ≥ 95 %, orange ≥ 50 %, red below, grey dot
when the market was closed all day), so a hole in the history stands out at a glance.
"""


from collections.abc import Sequence

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from massive_pipeline.core.catalog import Catalog, SymbolSpec
from massive_pipeline.quality.tables import markdown_table
from massive_pipeline.quality.verify import split_symbols_without_data, status_counts, verify
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.store import CandleStore

REPORT_ASSET = "data_quality_report"
DEFAULT_COVERAGE_DAYS = 14


class QualityReportConfig(Config):
    days: int = Field(default=DEFAULT_COVERAGE_DAYS, ge=1, le=120, description="UTC days in the coverage picture")
    at: str | None = Field(
        default=None,
        description="Judge the store as of this UTC instant (ISO 8601, e.g. 2026-10-08T12:00:00Z) instead of now: "
        "a report of a past day, and a test that does not depend on the day it runs.",
    )

    def moment(self) -> pd.Timestamp:
        """`at` as a UTC timestamp (naive means UTC), or now."""
        if self.at is None:
            return pd.Timestamp.now(tz="UTC")
        try:
            ts = pd.Timestamp(self.at)
        except ValueError:
            raise ValueError(f"data_quality_report config 'at': {self.at!r} is not an ISO 8601 instant") from None
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def coverage(store: CandleStore, specs: Sequence[SymbolSpec], days: int, now: pd.Timestamp) -> pd.DataFrame:
    """Share of expected base bars present per symbol (rows) and UTC day (columns); NaN: none expected."""
    today = now.floor("D")
    day_starts = pd.date_range(today - pd.Timedelta(days=days - 1), today, freq="D")
    out = pd.DataFrame(index=[s.symbol for s in specs], columns=[d.date() for d in day_starts], dtype="float64")
    for spec in specs:
        tf = spec.base_timeframe
        expected = spec.market_calendar.expected_bars(day_starts[0], tf.floor(now), tf)
        per_day = np.bincount(
            np.searchsorted(day_starts.asi8, expected.as_unit("ns").asi8, side="right") - 1, minlength=days
        )
        for i, day in enumerate(day_starts):
            if per_day[i]:
                got = store.count(spec.symbol, tf, day, min(day + pd.Timedelta(days=1), tf.floor(now)))
                out.loc[spec.symbol, day.date()] = min(got / per_day[i], 1.0)
    return out


def _cell(share: float) -> str:
    if share != share:  # NaN: market closed
        return "·"
    mark = "🟩" if share >= 0.995 else "🟨" if share >= 0.95 else "🟧" if share >= 0.5 else "🟥"
    return f"{mark} {share * 100:.0f}"


def coverage_markdown(frame: pd.DataFrame) -> str:
    header = "| symbol | " + " | ".join(f"{d:%m-%d}" for d in frame.columns) + " |"
    lines = [header, "|" + "---|" * (len(frame.columns) + 1)]
    for symbol, row in frame.iterrows():
        lines.append(f"| {symbol} | " + " | ".join(_cell(v) for v in row.to_numpy(dtype="float64")) + " |")
    lines.append("\n🟩 ≥ 99.5 % · 🟨 ≥ 95 % · 🟧 ≥ 50 % · 🟥 < 50 % of the expected base bars · `·` market closed")
    return "\n".join(lines)


def build_quality_report_asset(catalog: Catalog):
    @asset(
        name=REPORT_ASSET,
        group_name="quality",
        kinds={"pandas"},
        description="Verify report (ok / missing / stale / incomplete per symbol × timeframe) and a coverage "
        "picture (symbols × days, share of expected bars present).",
    )
    def data_quality_report(
        context: AssetExecutionContext, config: QualityReportConfig, candle_store: CandleStoreResource
    ) -> MaterializeResult:
        store = candle_store.store
        now = config.moment()
        specs = list(catalog)
        report = verify(store, [(s, list(s.timeframes)) for s in specs], now)
        counts = status_counts(report)
        held, no_data = split_symbols_without_data(report)
        picture = coverage(store, specs, config.days, now)
        context.log.info(f"verify: {counts}")
        return MaterializeResult(
            metadata={
                **{f"series_{k}": v for k, v in counts.items()},
                "coverage": MetadataValue.md(coverage_markdown(picture)),
                "report": MetadataValue.md(
                    markdown_table(held, ("symbol", "timeframe", "status", "bars", "last_bar", "behind", "detail"),
                                   max_rows=len(held) or 1)
                ),
                "symbols_without_data": MetadataValue.md(", ".join(no_data) if no_data else "_none_"),
                "generated_at": now.isoformat(),
            }
        )

    return data_quality_report
