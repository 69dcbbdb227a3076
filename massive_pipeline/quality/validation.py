"""Splitting a window of bars into the rows that may be stored and the rows that must not.

Runs before the store sees the bars: a bar with high < low would otherwise land in the candle
table and in every model trained on it. Rejected rows are never dropped silently: each carries
the reasons it failed, goes to `rejected_candles` with the run id, and is counted in the
materialization's metadata; the valid rows of the same partition are still stored.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.quality import schemas
from massive_pipeline.quality.tables import markdown_table
from massive_pipeline.store import CandleStore

# Which asset check a failed rule belongs to; any rejected row also fails `schema`.
CATEGORY_OHLC = "ohlc"
CATEGORY_GRID = "grid"
CATEGORY_DUPLICATE = "duplicate"
CATEGORY_VALUE = "value"

# Optional column of the API client's bar frames: None on good rows, a short text saying what the
# provider sent wrong (`o is null`, `h is 'abc' (not a number)`) on malformed ones, whose bad
# fields then hold NaN. Such a row is rejected with that text as its first reason.
PROVIDER_PROBLEM = "provider_problem"
REASON_PROVIDER = "provider sent a malformed bar"

REASON_DUPLICATE = "duplicate bar start (the first bar with this start was kept)"
REASON_NO_TS = "ts missing"
_OHLC_REASONS = {
    schemas.CHECK_HIGH_GE_LOW: "high < low",
    schemas.CHECK_HIGH_GE_OPEN_CLOSE: "high < max(open, close)",
    schemas.CHECK_LOW_LE_OPEN_CLOSE: "low > min(open, close)",
}
SAMPLE_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "reason")


class BarsShapeError(ValueError):
    """The frame itself is unusable (missing column, naive timestamps): no row can be judged."""


@dataclass(frozen=True)
class ValidatedBars:
    """`valid`: rows to store, sorted by ts. `rejects`: the other rows with `reason` (all failed
    rules, `; `-joined) and `categories` (frozenset of CATEGORY_*)."""

    valid: pd.DataFrame
    rejects: pd.DataFrame

    @property
    def rows_rejected(self) -> int:
        return len(self.rejects)

    def reason_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for reason in self.rejects["reason"]:
            for part in reason.split("; "):
                counts[part] += 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def metadata(self) -> dict[str, object]:
        """What the materialization reports about quarantined rows."""
        return rejects_metadata(self.rows_rejected, self.reason_counts(), self.rejects)


def rejects_metadata(rows: int, reasons: dict[str, int], sample: pd.DataFrame) -> dict[str, object]:
    """The quarantine part of a materialization's metadata: `rows` refused, how often each reason
    was given, and the first of them (`sample` may hold only the first rows)."""
    from dagster import MetadataValue

    meta: dict[str, object] = {"rows_rejected": rows}
    if rows:
        ordered = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        meta["rejected_reasons"] = MetadataValue.json(ordered)
        meta["rejected_sample"] = MetadataValue.md(markdown_table(sample, SAMPLE_COLUMNS, total=rows))
    return meta


def _empty_rejects(columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    frame["reason"] = pd.Series([], dtype=object)
    frame["categories"] = pd.Series([], dtype=object)
    return frame


def _provider_problems(bars: pd.DataFrame) -> pd.Series:
    """The client's text per row (None where the provider's row was well-formed)."""
    if PROVIDER_PROBLEM not in bars.columns:
        return pd.Series([None] * len(bars), index=bars.index, dtype=object)
    texts = bars[PROVIDER_PROBLEM]
    flagged = texts.notna().to_numpy()
    out = pd.Series([None] * len(bars), index=bars.index, dtype=object)
    out[flagged] = [str(t).strip() or REASON_PROVIDER for t in texts[flagged]]
    return out


def _normalized(bars: pd.DataFrame, label: str) -> pd.DataFrame:
    missing = [c for c in ("ts", *schemas.VALUE_COLUMNS) if c not in bars.columns]
    if missing:
        raise BarsShapeError(f"{label}: bars lack column(s) {missing}")
    ts = bars["ts"]
    if len(bars) and not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise BarsShapeError(f"{label}: column 'ts' must hold timezone-aware timestamps, got dtype {ts.dtype}")
    out = bars.copy()
    out[PROVIDER_PROBLEM] = _provider_problems(bars)
    flagged = out[PROVIDER_PROBLEM].notna()
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        out["ts"] = ts.dt.tz_convert("UTC").dt.as_unit("ns")
    else:  # an untyped empty frame
        out["ts"] = pd.Series([], dtype="datetime64[ns, UTC]", index=out.index)
    for col in schemas.VALUE_COLUMNS:
        if not pd.api.types.is_float_dtype(out[col].dtype):
            # a value the provider's row already explains may be anything; any other must be a number
            numbers = pd.to_numeric(out[col].where(~flagged), errors="coerce").astype("float64")
            unexplained = numbers.isna() & out[col].notna() & ~flagged
            if unexplained.any():
                first = out.loc[unexplained, col].iloc[0]
                raise BarsShapeError(f"{label}: column {col!r} is not numeric ({first!r})")
            out[col] = numbers.where(~flagged, pd.to_numeric(out[col].where(flagged), errors="coerce"))
    return out.sort_values("ts", kind="stable", na_position="last").reset_index(drop=True)


def _reason(column: object, check: str, timeframe: Timeframe) -> tuple[str, str]:
    if check in _OHLC_REASONS:
        return _OHLC_REASONS[check], CATEGORY_OHLC
    if check == schemas.CHECK_GRID:
        return f"ts not on the {timeframe.value} grid", CATEGORY_GRID
    if check in ("field_uniqueness", schemas.CHECK_INCREASING):
        return REASON_DUPLICATE, CATEGORY_DUPLICATE
    if check == schemas.CHECK_FINITE:
        return f"{column} not finite", CATEGORY_VALUE
    if check == "not_nullable":
        return f"{column} missing", CATEGORY_VALUE
    if check.startswith("greater_than_or_equal_to"):
        return f"{column} < 0", CATEGORY_VALUE
    if check.startswith("greater_than"):
        return f"{column} ≤ 0", CATEGORY_VALUE
    return f"{column}: {check}", CATEGORY_VALUE


def row_failures(bars: pd.DataFrame, timeframe: Timeframe, label: str = "bars") -> dict[int, dict[str, str]]:
    """{row index: {reason: category}} for every rule of the timeframe's model that a row breaks.

    A failure that names no row (a wrong dtype) is about the frame, so it raises BarsShapeError.
    """
    try:
        schemas.candle_model(timeframe).validate(bars, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    else:
        return {}
    frame_level = cases[cases["index"].isna()]
    if len(frame_level):
        first = frame_level.iloc[0]
        raise BarsShapeError(f"{label}: column {first['column']!r} fails {first['check']} ({first['failure_case']})")
    out: dict[int, dict[str, str]] = defaultdict(dict)
    for column, check, index in cases[["column", "check", "index"]].itertuples(index=False):
        reason, category = _reason(column, str(check), timeframe)
        out[int(index)][reason] = category
    return dict(out)


def validate_bars(bars: pd.DataFrame, timeframe: Timeframe, label: str = "bars") -> ValidatedBars:
    """Split `bars` into rows to store and rejects with their reasons (vectorized but for pandera's
    failure cases, which are only as many as there are bad rows).

    A row whose `provider_problem` (optional column, see PROVIDER_PROBLEM) is set is rejected with
    that text as its first reason, followed by every rule it also breaks; the column is dropped
    from both frames, since the reasons say it.
    """
    normalized = _normalized(bars, label)
    problems = normalized.pop(PROVIDER_PROBLEM)  # said in the reasons; never stored with the bars
    frame = normalized
    columns = list(frame.columns)
    if frame.empty:
        return ValidatedBars(frame, _empty_rejects(columns))
    reasons: dict[int, dict[str, str]] = defaultdict(dict)
    malformed = problems.notna().to_numpy()
    for i in np.flatnonzero(malformed):  # the provider's own words first
        reasons[int(i)][str(problems.iloc[i])] = CATEGORY_VALUE
    no_ts = frame["ts"].isna().to_numpy()
    for i in np.flatnonzero(no_ts):
        reasons[int(i)][REASON_NO_TS] = CATEGORY_VALUE
    # a malformed row does not claim its bar start: a well-formed row with the same start is kept
    dup = np.zeros(len(frame), dtype=bool)
    usable = ~(no_ts | malformed)
    dup[usable] = frame["ts"][usable].duplicated(keep="first").to_numpy()
    for i in np.flatnonzero(dup):
        reasons[int(i)][REASON_DUPLICATE] = CATEGORY_DUPLICATE
    for index, found in row_failures(frame[usable & ~dup], timeframe, label).items():
        reasons[index].update(found)
    # malformed rows are judged apart, so that their bar starts never make a good row a duplicate
    for index, found in row_failures(frame[malformed & ~no_ts], timeframe, label).items():
        reasons[index].update({r: c for r, c in found.items() if c != CATEGORY_DUPLICATE})
    if not reasons:
        return ValidatedBars(frame, _empty_rejects(columns))
    bad = np.zeros(len(frame), dtype=bool)
    bad[list(reasons)] = True
    rejects = frame[bad].copy()
    rejects["reason"] = ["; ".join(reasons[i]) for i in rejects.index]
    rejects["categories"] = [frozenset(reasons[i].values()) for i in rejects.index]
    return ValidatedBars(frame[~bad].reset_index(drop=True), rejects.reset_index(drop=True))


def quarantine(
    store: CandleStore, symbol: str, timeframe: Timeframe, validated: ValidatedBars, run_id: str | None
) -> int:
    """Keep the rejected rows in `rejected_candles` with their reasons and the run id."""
    if not validated.rows_rejected:
        return 0
    return store.record_rejects(symbol, timeframe, validated.rejects, run_id=run_id)
