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

from massive_pipeline.quality import schemas
from massive_pipeline.quality.tables import markdown_table
from massive_pipeline.store import CandleStore
from massive_pipeline.timeframes import Timeframe

# Which asset check a failed rule belongs to; any rejected row also fails `schema`.
CATEGORY_OHLC = "ohlc"
CATEGORY_GRID = "grid"
CATEGORY_DUPLICATE = "duplicate"
CATEGORY_VALUE = "value"

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
        from dagster import MetadataValue

        meta: dict[str, object] = {"rows_rejected": self.rows_rejected}
        if self.rows_rejected:
            meta["rejected_reasons"] = MetadataValue.json(self.reason_counts())
            meta["rejected_sample"] = MetadataValue.md(markdown_table(self.rejects, SAMPLE_COLUMNS))
        return meta


def _empty_rejects(columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    frame["reason"] = pd.Series([], dtype=object)
    frame["categories"] = pd.Series([], dtype=object)
    return frame


def _normalized(bars: pd.DataFrame, label: str) -> pd.DataFrame:
    missing = [c for c in ("ts", *schemas.VALUE_COLUMNS) if c not in bars.columns]
    if missing:
        raise BarsShapeError(f"{label}: bars lack column(s) {missing}")
    ts = bars["ts"]
    if len(bars) and not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise BarsShapeError(f"{label}: column 'ts' must hold timezone-aware timestamps, got dtype {ts.dtype}")
    out = bars.copy()
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        out["ts"] = ts.dt.tz_convert("UTC").dt.as_unit("ns")
    else:  # an untyped empty frame
        out["ts"] = pd.Series([], dtype="datetime64[ns, UTC]", index=out.index)
    for col in schemas.VALUE_COLUMNS:
        if not pd.api.types.is_float_dtype(out[col].dtype):
            try:
                out[col] = pd.to_numeric(out[col], errors="raise").astype("float64")
            except (TypeError, ValueError) as exc:
                raise BarsShapeError(f"{label}: column {col!r} is not numeric ({exc})") from None
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
    failure cases, which are only as many as there are bad rows)."""
    frame = _normalized(bars, label)
    columns = list(frame.columns)
    if frame.empty:
        return ValidatedBars(frame, _empty_rejects(columns))
    reasons: dict[int, dict[str, str]] = defaultdict(dict)
    no_ts = frame["ts"].isna().to_numpy()
    for i in np.flatnonzero(no_ts):
        reasons[int(i)][REASON_NO_TS] = CATEGORY_VALUE
    dup = frame["ts"].duplicated(keep="first").to_numpy() & ~no_ts
    for i in np.flatnonzero(dup):
        reasons[int(i)][REASON_DUPLICATE] = CATEGORY_DUPLICATE
    candidates = frame[~(no_ts | dup)]
    for index, found in row_failures(candidates, timeframe, label).items():
        reasons[index].update(found)
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
