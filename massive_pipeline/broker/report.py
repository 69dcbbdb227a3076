"""The comparison as Dagster shows it: metadata values and the plot of broker − store over time.

matplotlib is not a dependency of the pipeline, so the plot is Markdown the UI renders: a
sparkline of the daily mean close difference in pips and a table of it per day (the last
`TABLE_DAYS` days of the file), which is readable in the asset's metadata without an image.
"""

from __future__ import annotations

import math

import pandas as pd

from massive_pipeline.broker.comparison import ComparisonOutcome

TABLE_DAYS = 31
_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """One block character per value, scaled between the smallest and the largest."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    span = hi - lo
    return "".join(
        " "
        if not math.isfinite(v)
        else _BLOCKS[0 if span == 0 else round((v - lo) / span * (len(_BLOCKS) - 1))]
        for v in values
    )


def diff_plot_markdown(outcome: ComparisonOutcome) -> str:
    """Broker − store close difference per UTC day, as a sparkline and a table."""
    daily = outcome.prices.daily
    pips = [float(v) for v in daily["mean_diff_pips"]]
    first, last = daily["day"].iloc[0], daily["day"].iloc[-1]
    lines = [
        f"**broker − store close, daily mean in pips** ({first:%Y-%m-%d} .. {last:%Y-%m-%d}, "
        f"min {min(pips):+.2f}, max {max(pips):+.2f})",
        "",
        f"`{sparkline(pips)}`",
        "",
        "| UTC day | bars | mean diff | mean diff (pips) |",
        "|---|---:|---:|---:|",
    ]
    digits = outcome.spec.precision + 1
    for row in daily.tail(TABLE_DAYS).itertuples():
        lines.append(
            f"| {pd.Timestamp(row.day):%Y-%m-%d} | {row.bars} | {row.mean_diff:+.{digits}f} | "
            f"{row.mean_diff_pips:+.2f} |"
        )
    return "\n".join(lines)


def comparison_metadata(outcome: ComparisonOutcome) -> dict[str, object]:
    """Plain metadata entries (Dagster wraps them) plus the Markdown plot under `diff_plot`."""
    p, f = outcome.prices, outcome.offset
    out: dict[str, object] = {
        "file": outcome.export.file_name,
        "file_sha256": outcome.export.sha256,
        "format": outcome.export.format,
        "timeframe": outcome.timeframe.value,
        "offset_rule": f.rule.kind,
        "offset": f.rule.label,
        "time_offset_minutes": f.rule.minutes,
        "offset_source": f.source,
        "offset_confidence": -1.0 if f.confidence is None else round(f.confidence, 4),
        "bars_compared": p.bars_compared,
        "broker_bars": p.broker_bars,
        "period_start": str(p.period_start),
        "period_end": str(p.period_end),
        "pip_size": p.pip_size,
        "recommended_offset": "none" if p.recommended_offset is None else p.recommended_offset,
        "comparison_id": outcome.comparison_id,
    }
    for name, s in p.fields.items():
        out[f"{name}_mean_diff"] = s.mean
        out[f"{name}_std_diff"] = s.std
        out[f"{name}_max_abs_diff"] = s.max_abs
        out[f"{name}_mean_diff_pips"] = s.mean_pips
    return out
