"""`gap_detection_job`: find runs of missing bars in the stored series and record them.

A gap is a run of bars the market calendar expects but the store lacks, between a series' first
and last stored bar (before the first bar the history is incomplete, after the last it is stale:
`verify` reports those). New gaps are recorded in `data_gaps` as `detected`; a run lying inside a
gap already found `unfillable` is not recorded again (the provider could not supply it), and a
gap marked `filled` that reappears is set back to `detected`.

Run config (`ops: {detect_gaps: {config: …}}`), every field optional:

- `symbols`: catalog symbols (default: the whole catalog)
- `timeframes`: timeframes (default: each symbol's fetched timeframes, the base and catalog `fetch`;
  derived timeframes only repeat their base's gaps)
- `start`, `end`: UTC days, both inclusive (default: the last `lookback_days` days up to today)
- `lookback_days`: default 30; 0 searches the whole stored history
- `min_bars`: shortest gap in bars for every selected timeframe (default `MASSIVE_GAP_MIN_BARS`:
  3 for M1, 1 above)
"""


import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from dagster import Config, Failure, MetadataValue, OpExecutionContext, Output, job, op
from pydantic import Field

from massive_pipeline.core.catalog import Catalog, SymbolSpec, UnknownSymbolError
from massive_pipeline.core.timeframes import Timeframe, UnknownTimeframeError, parse_timeframe
from massive_pipeline.quality.gaps import empty_gaps, find_gaps
from massive_pipeline.quality.settings import QualitySettings
from massive_pipeline.quality.tables import markdown_table
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.store import CandleStore

GAP_DETECTION_JOB = "gap_detection_job"
PURPOSE_TAG = "massive/purpose"
DEFAULT_LOOKBACK_DAYS = 30


class GapSelectionError(ValueError):
    """A symbol, timeframe or day range of a gap job's config that cannot be used."""


class GapDetectionConfig(Config):
    symbols: list[str] = Field(default_factory=list, description="catalog symbols; empty: the whole catalog")
    timeframes: list[str] = Field(
        default_factory=list, description="timeframes; empty: each symbol's fetched timeframes (base and `fetch`)"
    )
    start: str | None = Field(default=None, description="first UTC day (YYYY-MM-DD, inclusive)")
    end: str | None = Field(default=None, description="last UTC day (YYYY-MM-DD, inclusive); default today")
    lookback_days: int = Field(
        default=DEFAULT_LOOKBACK_DAYS, ge=0, description="days searched when `start` is unset; 0: all history"
    )
    min_bars: int | None = Field(default=None, ge=1, description="shortest gap in bars; default MASSIVE_GAP_MIN_BARS")


@dataclass(frozen=True)
class SeriesDetection:
    symbol: str
    timeframe: Timeframe
    window_start: pd.Timestamp | None
    window_end: pd.Timestamp | None
    gaps: pd.DataFrame  # gaps found in the window (gap_start, gap_end, candles_missing)
    new: int
    reopened: int
    known_unfillable: int

    def row(self) -> dict[str, object]:
        return {
            "symbol": self.symbol, "timeframe": self.timeframe.value,
            "window": "no bars stored" if self.window_start is None
            else "no bars stored in the window" if self.window_end == self.window_start
            else f"{self.window_start:%Y-%m-%d %H:%M} .. {self.window_end:%Y-%m-%d %H:%M}",
            "gaps": len(self.gaps), "bars_missing": int(self.gaps["candles_missing"].sum()),
            "new": self.new, "reopened": self.reopened, "known_unfillable": self.known_unfillable,
        }


def select_series(
    catalog: Catalog, symbols: Sequence[str], timeframes: Sequence[str], *, default: str = "fetched"
) -> list[tuple[SymbolSpec, list[Timeframe]]]:
    """(spec, timeframes) pairs a gap job works on; `default` says which timeframes an empty list means."""
    try:
        specs = catalog.select(list(symbols) or None)
    except UnknownSymbolError as exc:
        raise GapSelectionError(str(exc)) from None
    try:
        wanted = [parse_timeframe(t) for t in timeframes]
    except UnknownTimeframeError as exc:
        raise GapSelectionError(str(exc)) from None
    if ny := [tf.value for tf in wanted if tf.is_new_york]:
        raise GapSelectionError(
            f"{', '.join(ny)}: gaps are not tracked in the new_york_close convention; a missing D1_NY or "
            "W1_NY bar is missing base bars, which detection finds and fills in the base (or D1, W1)"
        )
    out = []
    for spec in specs:
        if wanted:
            tfs = [tf for tf in wanted if tf in spec.timeframes]
        elif default == "fetched":
            tfs = [tf for tf in spec.timeframes if spec.timeframe_source(tf) != "derived"]
        else:  # every series, except the New York close ones (see above): the base's gaps are theirs
            tfs = [tf for tf in spec.timeframes if not tf.is_new_york]
        if tfs:
            out.append((spec, tfs))
    return out


def day_window(
    start: str | dt.date | None, end: str | dt.date | None, lookback_days: int, today: dt.date
) -> tuple[pd.Timestamp | None, pd.Timestamp]:
    """[start 00:00, end + 1 day) in UTC; start None means from the beginning of the history."""
    try:
        last = dt.date.fromisoformat(str(end)) if end else today
        first = dt.date.fromisoformat(str(start)) if start else None
    except ValueError as exc:
        raise GapSelectionError(f"not a UTC day (YYYY-MM-DD): {exc}") from None
    if first is None and lookback_days:
        first = last - dt.timedelta(days=lookback_days - 1)
    if first is not None and first > last:
        raise GapSelectionError(f"end {last} is before start {first}")
    lo = pd.Timestamp(first, tz="UTC") if first is not None else None
    return lo, pd.Timestamp(last, tz="UTC") + pd.Timedelta(days=1)


def _outside_unfillable(found: pd.DataFrame, unfillable: pd.DataFrame) -> np.ndarray:
    """Per found gap, whether it lies outside every gap already found unfillable.

    Always a boolean array as long as `found`: `frame[[]]` would select no *columns*, which is
    how a series without gaps used to crash detection.
    """
    keep = np.ones(len(found), dtype=bool)
    if len(found) and len(unfillable):
        starts, ends = _ns(found["gap_start"])[:, None], _ns(found["gap_end"])[:, None]
        inside = (_ns(unfillable["gap_start"])[None, :] <= starts) & (_ns(unfillable["gap_end"])[None, :] >= ends)
        keep = ~inside.any(axis=1)
    return keep


def _ns(values: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(values).tz_convert("UTC").as_unit("ns").asi8


def detect_series(
    store: CandleStore,
    spec: SymbolSpec,
    timeframe: Timeframe,
    start: pd.Timestamp | None,
    end: pd.Timestamp,
    min_bars: int,
    bounds: tuple[pd.Timestamp, pd.Timestamp] | None,
) -> SeriesDetection:
    """Find, filter and record the gaps of one series; `bounds` is its (first, last) stored bar."""
    if bounds is None:
        return SeriesDetection(spec.symbol, timeframe, None, None, empty_gaps(), 0, 0, 0)
    first, last = bounds
    lo = first if start is None else max(first, start)
    hi = min(timeframe.bar_end(last), end)
    if hi <= lo:  # the window lies after the last stored bar: nothing to compare (verify reports stale)
        return SeriesDetection(spec.symbol, timeframe, lo, lo, empty_gaps(), 0, 0, 0)
    present = store.read(spec.symbol, timeframe, lo, hi)["ts"]
    found = find_gaps(present, spec.market_calendar, lo, hi, timeframe, min_bars)
    if found.empty:  # a healthy series: nothing to record, nothing to look up
        return SeriesDetection(spec.symbol, timeframe, lo, hi, empty_gaps(), 0, 0, 0)
    known = store.gaps(spec.symbol, timeframe)
    unfillable = known[known["status"] == "unfillable"]
    filled = known[known["status"] == "filled"].set_index("gap_start")
    to_record = found[_outside_unfillable(found, unfillable)]
    reopened = 0
    for gap_start in to_record["gap_start"]:
        if gap_start in filled.index:  # filled once, missing again: the store lost it or it was replaced
            store.set_gap_status(int(filled.loc[gap_start, "id"]), "detected")
            reopened += 1
    new = store.record_gaps(spec.symbol, timeframe, to_record) if len(to_record) else 0
    return SeriesDetection(spec.symbol, timeframe, lo, hi, to_record.reset_index(drop=True), new, reopened,
                           len(found) - len(to_record))


def detect_gaps(
    store: CandleStore,
    series: Sequence[tuple[SymbolSpec, Sequence[Timeframe]]],
    start: pd.Timestamp | None,
    end: pd.Timestamp,
    *,
    min_bars: int | None = None,
    settings: QualitySettings | None = None,
) -> list[SeriesDetection]:
    settings = settings or QualitySettings.from_env()
    counts = store.row_counts()
    bounds = {
        (r.symbol, r.timeframe): (pd.Timestamp(r.first_ts), pd.Timestamp(r.last_ts))
        for r in counts.itertuples(index=False)
    }
    out = []
    for spec, tfs in series:
        for tf in tfs:
            need = min_bars if min_bars is not None else settings.min_gap_bars(tf)
            out.append(detect_series(store, spec, tf, start, end, need, bounds.get((spec.symbol, tf.value))))
    return out


def build_gap_detection_job(catalog: Catalog):
    @op(
        name="detect_gaps",
        description="Find runs of missing bars inside trading sessions and record them in data_gaps.",
    )
    def detect_gaps_op(
        context: OpExecutionContext, config: GapDetectionConfig, candle_store: CandleStoreResource
    ) -> Output[list[dict[str, object]]]:
        try:
            series = select_series(catalog, config.symbols, config.timeframes)
            start, end = day_window(config.start, config.end, config.lookback_days, dt.datetime.now(dt.UTC).date())
        except GapSelectionError as exc:
            raise Failure(description=str(exc)) from None
        results = detect_gaps(candle_store.store, series, start, end, min_bars=config.min_bars)
        rows = [r.row() for r in results]
        found = [
            r.gaps.assign(symbol=r.symbol, timeframe=r.timeframe.value) for r in results if len(r.gaps)
        ]
        gaps = pd.concat(found, ignore_index=True) if found else empty_gaps().assign(symbol=[], timeframe=[])
        context.log.info(
            f"{len(gaps)} gap(s) in {len(results)} series, {sum(r.new for r in results)} new"
        )
        return Output(
            [
                {"symbol": g.symbol, "timeframe": g.timeframe, "gap_start": g.gap_start.isoformat(),
                 "gap_end": g.gap_end.isoformat(), "candles_missing": int(g.candles_missing)}
                for g in gaps.itertuples(index=False)
            ],
            metadata={
                "series": len(results),
                "gaps": len(gaps),
                "new_gaps": sum(r.new for r in results),
                "bars_missing": int(gaps["candles_missing"].sum()) if len(gaps) else 0,
                "by_series": MetadataValue.md(markdown_table(pd.DataFrame(rows), max_rows=100) if rows else "_none_"),
                "gaps_sample": MetadataValue.md(
                    markdown_table(gaps, ("symbol", "timeframe", "gap_start", "gap_end", "candles_missing"), 50)
                ),
            },
        )

    @job(
        name=GAP_DETECTION_JOB,
        tags={PURPOSE_TAG: "gap_detection"},
        description="Find runs of missing bars inside trading sessions (never a closed market) and record them "
        "in data_gaps as `detected`. Config: symbols, timeframes, start/end or lookback_days, min_bars.",
    )
    def gap_detection_job() -> None:
        detect_gaps_op()

    return gap_detection_job
