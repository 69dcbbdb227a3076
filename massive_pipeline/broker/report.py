"""The comparison as Dagster shows it: metadata values and the plot of broker − store over time.

The plot is Markdown the UI renders: a PNG of the close difference per bar in pips (with the
mean and the recommendation threshold), drawn with matplotlib and embedded as a data URI, the way
Dagster's own tutorials attach a plot to a materialization; then a sparkline of the daily mean
and a table of it per day (the last `TABLE_DAYS` days of the file), readable without the image.
"""

from __future__ import annotations

import base64
import io
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


def diff_plot_png(outcome: ComparisonOutcome) -> bytes:
    """Broker − store close per matched bar in pips, over time: a constant offset shows as a flat
    band away from zero, a wrong time offset as noise around it, a bad stretch of bars as a spike."""
    # imported here: matplotlib takes seconds to import, and the code location imports this
    # module at every load, while only a comparison run draws
    import matplotlib

    matplotlib.use("Agg")  # no display in a run worker; must precede pyplot's import
    import matplotlib.pyplot as plt

    p = outcome.prices
    bars = p.per_bar
    fig, ax = plt.subplots(figsize=(8, 2.6), dpi=80)
    try:
        ax.plot(pd.to_datetime(bars["ts"]).dt.tz_localize(None), bars["diff_pips"], lw=0.7, color="#2b6cb0")
        ax.axhline(p.close.mean_pips, color="#c05621", lw=1, label=f"mean {p.close.mean_pips:+.2f} pips")
        for sign in (1, -1):
            ax.axhline(sign * p.threshold_pips, color="#718096", lw=0.8, ls="--")
        ax.axhline(0, color="#1a202c", lw=0.5)
        ax.set_ylabel("pips")
        ax.set_title(f"{outcome.broker} {outcome.spec.symbol} {outcome.timeframe.value}: broker − store close "
                     f"(threshold ±{p.threshold_pips:g})", fontsize=9)
        ax.legend(loc="upper right", fontsize=8)
        ax.tick_params(labelsize=7)
        fig.autofmt_xdate()
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(fig)


def diff_plot_markdown(outcome: ComparisonOutcome) -> str:
    """Broker − store close difference: the PNG per bar, then per UTC day as a sparkline and a table."""
    daily = outcome.prices.daily
    pips = [float(v) for v in daily["mean_diff_pips"]]
    first, last = daily["day"].iloc[0], daily["day"].iloc[-1]
    image = base64.b64encode(diff_plot_png(outcome)).decode("ascii")
    lines = [
        f"![broker − store close in pips](data:image/png;base64,{image})",
        "",
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
        "store_timeframe": (outcome.store_timeframe or outcome.timeframe).value,
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
