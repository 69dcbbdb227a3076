"""The verify report: is each symbol × timeframe usable right now?

Statuses (DESIGN §1.4), one per series, the first that applies:

- `missing`: no bar stored.
- `incomplete`: the stored history does not reach back far enough (M1 7 days, M5 14, M15 30,
  M30 30, H1 90, H4 180, D1 365, W1 730; never before the symbol's catalog `start`).
  History is counted in UTC days including today, like the daily partitions: "7 days" means
  today and the six days before, so a 7-day backfill meets M1's requirement. The first stored
  bar must be the first bar the market calendar expects on the first required day (a forex
  history starting on a Saturday starts with Sunday's open); a leading hole shorter than a gap
  (`MASSIVE_GAP_MIN_BARS`, 3 bars for M1) is tolerated.
- `stale`: the series lags the market by more than its freshness limit (M1 6 min, M5 30 min,
  M15 1 h, M30 1 h, H1 2 h, H4 5 h, D1 25 h, W1 7 days). The lag counts only trading time: the
  minutes the market traded between the end of the last stored bar and now. A forex series
  last updated Friday 17:00 New York is therefore not stale on Saturday, nor an index at night.
- `ok`: none of the above.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from massive_pipeline.core.catalog import SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.quality.settings import FRESHNESS_LIMITS, REQUIRED_HISTORY_DAYS, QualitySettings
from massive_pipeline.store import CandleStore

STATUSES: tuple[str, ...] = ("ok", "missing", "incomplete", "stale")
REPORT_COLUMNS: tuple[str, ...] = (
    "symbol", "timeframe", "status", "bars", "first_bar", "last_bar", "behind", "history_days", "required_days",
    "open_gaps", "detail",
)


def human(delta: pd.Timedelta) -> str:
    minutes = delta.total_seconds() / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"


@dataclass(frozen=True)
class Verdict:
    symbol: str
    timeframe: Timeframe
    status: str
    bars: int
    first_bar: pd.Timestamp | None
    last_bar: pd.Timestamp | None
    behind: pd.Timedelta | None
    history_days: int
    required_days: int
    open_gaps: int
    detail: str

    def row(self) -> dict[str, object]:
        return {
            "symbol": self.symbol, "timeframe": self.timeframe.value, "status": self.status, "bars": self.bars,
            "first_bar": self.first_bar, "last_bar": self.last_bar,
            "behind": human(self.behind) if self.behind is not None else "",
            "history_days": self.history_days, "required_days": self.required_days,
            "open_gaps": self.open_gaps, "detail": self.detail,
        }


def trading_lag(spec: SymbolSpec, last_end: pd.Timestamp, now: pd.Timestamp, limit: pd.Timedelta) -> pd.Timedelta:
    """Trading time between `last_end` and `now`; exact up to well past `limit`, so the comparison holds."""
    if now - last_end <= limit:  # wall-clock time bounds trading time
        return max(now - last_end, pd.Timedelta(0))
    calendar = spec.market_calendar
    last_open = calendar.last_open_minute(now)
    if last_open is None or last_open + pd.Timedelta(minutes=1) <= last_end:
        return pd.Timedelta(0)  # the market has not traded since the last bar
    lo = max(last_end, now - (limit * 10 + pd.Timedelta(days=30)))
    return pd.Timedelta(minutes=len(calendar.open_minutes(lo, now)))


def required_start(spec: SymbolSpec, timeframe: Timeframe, today: dt.date) -> pd.Timestamp:
    days = REQUIRED_HISTORY_DAYS[timeframe]
    first_day = max(today - dt.timedelta(days=days - 1), spec.start)
    return pd.Timestamp(first_day, tz="UTC")


def judge(
    spec: SymbolSpec,
    timeframe: Timeframe,
    bars: int,
    first: pd.Timestamp | None,
    last: pd.Timestamp | None,
    now: pd.Timestamp,
    open_gaps: int = 0,
    settings: QualitySettings | None = None,
    data_end: pd.Timestamp | None = None,
) -> Verdict:
    """`data_end`: up to when the newest bar holds data (`CandleStore.data_ends`); default its period's end."""
    settings = settings or QualitySettings.from_env()
    required = REQUIRED_HISTORY_DAYS[timeframe]
    today = now.date()
    if not bars or first is None or last is None:
        return Verdict(spec.symbol, timeframe, "missing", 0, None, None, None, 0, required, open_gaps,
                       "no bars stored")
    problems: dict[str, str] = {}
    history_days = (today - first.date()).days + 1
    need_from = required_start(spec, timeframe, today)
    expected = spec.market_calendar.expected_bars(need_from, min(now, need_from + pd.Timedelta(days=14)), timeframe)
    first_due = timeframe.floor(need_from) if len(expected) == 0 else expected[0]
    tolerance = timeframe.delta * (settings.min_gap_bars(timeframe) - 1)
    if first > first_due + tolerance:
        problems["incomplete"] = (
            f"history starts {first:%Y-%m-%d %H:%M} ({history_days} UTC day(s)); {timeframe.value} needs "
            f"{required} days: from {first_due:%Y-%m-%d %H:%M}"
        )
    limit = FRESHNESS_LIMITS[timeframe]
    behind = trading_lag(spec, timeframe.bar_end(last) if data_end is None else data_end, now, limit)
    if behind > limit:
        problems["stale"] = f"{human(behind)} of trading behind (limit {human(limit)})"
    status = next((s for s in ("incomplete", "stale") if s in problems), "ok")
    detail = "; ".join(problems.values()) if problems else f"{history_days} UTC day(s) of history, up to date"
    return Verdict(spec.symbol, timeframe, status, bars, first, last, behind, history_days, required, open_gaps,
                   detail)


def verify(
    store: CandleStore,
    series: Sequence[tuple[SymbolSpec, Sequence[Timeframe]]],
    now: pd.Timestamp | None = None,
    settings: QualitySettings | None = None,
) -> pd.DataFrame:
    """One row per series (REPORT_COLUMNS), in catalog and timeframe order."""
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now).tz_convert("UTC")
    settings = settings or QualitySettings.from_env()
    counts = {(r.symbol, r.timeframe): r for r in store.row_counts().itertuples(index=False)}
    ends = {(r.symbol, r.timeframe): pd.Timestamp(r.data_end) for r in store.data_ends().itertuples(index=False)}
    gaps = store.gaps()
    open_gaps = gaps[gaps["status"] != "filled"].groupby(["symbol", "timeframe"]).size().to_dict()
    rows = []
    for spec, tfs in series:
        for tf in tfs:
            r = counts.get((spec.symbol, tf.value))
            verdict = judge(
                spec, tf, int(r.rows) if r else 0,
                pd.Timestamp(r.first_ts) if r else None, pd.Timestamp(r.last_ts) if r else None,
                now, int(open_gaps.get((spec.symbol, tf.value), 0)), settings,
                data_end=ends.get((spec.symbol, tf.value)),
            )
            rows.append(verdict.row())
    return pd.DataFrame(rows, columns=list(REPORT_COLUMNS))


def status_counts(report: pd.DataFrame) -> dict[str, int]:
    counts = report["status"].value_counts().to_dict()
    return {s: int(counts.get(s, 0)) for s in STATUSES}


def split_symbols_without_data(report: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(rows of symbols with at least one stored series, symbols with none), so a report after a
    partial backfill lists the series that exist and names the never-synced symbols once."""
    if report.empty:
        return report, []
    all_missing = (report["status"] == "missing").groupby(report["symbol"], sort=False).all()
    without = [str(s) for s in all_missing[all_missing].index]
    return report[~report["symbol"].isin(without)], without
