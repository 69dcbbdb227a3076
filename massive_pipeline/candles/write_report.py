"""What a candle materialization reports about how its answer was merged into the store.

The metadata is where a user sees, per run, that the provider came back short or empty (and that
nothing stored was lost), how many bars it corrected and by how much, and what was removed when
removals were asked for.
"""

from __future__ import annotations

import pandas as pd
from dagster import Config, MetadataValue
from pydantic import Field

from massive_pipeline.massive import FetchResult
from massive_pipeline.quality.tables import markdown_table
from massive_pipeline.store import WriteResult

PREVIEW_ROWS = 5
SAMPLE_ROWS = 10
BAR_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
REVISION_COLUMNS = ("ts", "old_close", "new_close", "old_volume", "new_volume", "max_rel_change")


class CandleWriteConfig(Config):
    """Run config of the candle assets (Launchpad: `ops: {<asset op>: {config: {...}}}`)."""

    accept_removals: bool = Field(
        default=False,
        description="Delete stored bars of the window that the provider's answer no longer holds (the removals "
        "are listed in the metadata). Off: such bars are kept and counted as bars_missing_from_answer.",
    )


class DerivedDayConfig(CandleWriteConfig):
    """Run config of a derived D1 whose provider day aggregates are the store's day bars.

    The bootstrap needs those D1 days that are older than the base keeps (H4's 180 days of minutes
    against W1's two years of days); one day-aggregate request covers them, where deriving them
    would cost two years of minute requests. The option is a run's, not the catalog's, so every
    refresh, re-sync and gap fill still derives D1 from the base without an extra request.
    """

    provider_days_before: str = Field(
        default="",
        description="A UTC date (YYYY-MM-DD): this run's partitions before it are filled from the provider's day "
        "aggregates (fetched, validated and written like a fetched asset; source = the provider) instead of "
        "derived from the base. Empty: derive as usual. A run must lie wholly before or wholly after the date.",
    )


def markdown_preview(bars: pd.DataFrame, rows: int = PREVIEW_ROWS) -> str:
    """The last bars as a markdown table (no tabulate dependency; the UI renders it)."""
    tail = bars.tail(rows)
    cols = ["ts", "open", "high", "low", "close", "volume"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in tail[cols].itertuples(index=False):
        ts = pd.Timestamp(row[0]).strftime("%Y-%m-%d %H:%M")
        lines.append("| " + " | ".join([ts, *(f"{v:.6g}" for v in row[1:])]) + " |")
    return "\n".join(lines)


def write_metadata(result: WriteResult, bars: pd.DataFrame, **extra: object) -> dict[str, object]:
    """The materialization metadata of one window write."""
    meta: dict[str, object] = {
        "rows_written": result.rows_written,
        "rows_replaced": result.rows_deleted,
        "rows_new": result.rows_new,
        "rows_unchanged": result.rows_unchanged,
        "rows_revised": result.rows_revised,
        "bars_missing_from_answer": result.rows_missing_from_answer,
        "rows_removed": result.rows_removed,
        "rows_forming": result.rows_forming,
        "answer_empty": result.answer_empty,
        "first_bar": str(result.first_ts) if result.first_ts is not None else "none",
        "last_bar": str(result.last_ts) if result.last_ts is not None else "none",
        "preview": MetadataValue.md(markdown_preview(bars) if len(bars) else "_no bars in this window_"),
    }
    if result.max_rel_change is not None:
        meta["largest_relative_change"] = MetadataValue.float(result.max_rel_change)
    if result.rows_revised:
        meta["revised_sample"] = MetadataValue.md(
            markdown_table(result.revisions, REVISION_COLUMNS, SAMPLE_ROWS, total=result.rows_revised))
    if result.rows_kept_protected:
        meta["rows_kept_base_trimmed"] = result.rows_kept_protected
    if result.rows_missing_from_answer:
        key = "removed_bars" if result.rows_removed else "missing_from_answer_sample"
        meta[key] = MetadataValue.md(
            markdown_table(result.missing, BAR_COLUMNS, SAMPLE_ROWS, total=result.rows_missing_from_answer))
    meta.update(extra)
    return meta


def fetch_metadata(fetched: FetchResult) -> dict[str, object]:
    """What the provider's answer looked like: its status, how much it held, what it got wrong."""
    meta: dict[str, object] = {
        "api_requests": fetched.requests,
        "api_pages": fetched.pages,
        "provider_status": fetched.provider_status,
        "bars_received": fetched.bars_received,
        "provider_problem_rows": fetched.problem_rows,
        "restamped_bars": fetched.restamped,
    }
    if fetched.unplaceable:
        meta["unplaceable_rows"] = fetched.unplaceable
        meta["unplaceable_sample"] = MetadataValue.json(list(fetched.unplaceable_sample))
    if fetched.empty_pages:
        meta["empty_pages"] = fetched.empty_pages
    if fetched.stopped_early:
        meta["pagination_stopped_early"] = fetched.stopped_early
    for name in ("weight", "used_weight_1m", "forming"):  # Binance's facts (`binance/client.KlineFetch`)
        value = getattr(fetched, name, None)
        if value is not None:
            meta[f"api_{name}"] = value
    if fetched.warnings:
        meta["provider_warnings"] = MetadataValue.json(list(fetched.warnings))
    return meta


def write_summary(result: WriteResult) -> str:
    """One log line: what the answer changed in the store."""
    text = (
        f"{result.rows_written} bars written ({result.rows_new} new, {result.rows_revised} revised, "
        f"{result.rows_forming} forming)"
    )
    if result.rows_missing_from_answer:
        verb = "removed as asked" if result.rows_removed else "kept"
        text += f"; {result.rows_missing_from_answer} stored bar(s) missing from the answer {verb}"
    return text
