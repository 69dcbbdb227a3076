"""One broker comparison, end to end: import the export, place it on UTC, compare, record.

The command (`massive-pipeline broker compare`) and the `brokers/<name>/<symbol>` assets both call
`compare_export`, so a comparison from the terminal and one from the sensor are the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from massive_pipeline.broker.compare import DEFAULT_THRESHOLD_PIPS, PriceComparison, compare_prices
from massive_pipeline.broker.exports import BrokerExport, read_export
from massive_pipeline.broker.offset import (
    MAX_OFFSET_MINUTES,
    MIN_OFFSET_MINUTES,
    OffsetFinding,
    OffsetNotFoundError,
    OffsetRule,
    detect_offset,
    stated,
)
from massive_pipeline.core.catalog import SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.store import CandleStore


@dataclass(frozen=True)
class ComparisonOutcome:
    """What one comparison found and where it was recorded."""

    broker: str
    spec: SymbolSpec
    timeframe: Timeframe
    export: BrokerExport
    offset: OffsetFinding
    prices: PriceComparison
    comparison_id: int
    # the store series the bars were compared with (D1_NY for a New-York-close broker's D1 export)
    store_timeframe: Timeframe | None = None

    def _against(self) -> str:
        other = self.store_timeframe
        return "" if other is None or other is self.timeframe else f" (against the store's {other.value})"

    def lines(self) -> list[str]:
        """The result as the command prints it."""
        p, spec, pip = self.prices, self.spec, self.prices.pip_size
        digits = spec.precision + 1
        out = [
            f"broker {self.broker} {spec.symbol} {self.timeframe.value}{self._against()}: "
            f"{len(self.export.bars)} bars in "
            f"{self.export.file_name} ({self.export.format.upper()}, sha256 {self.export.sha256[:12]}), server time "
            f"{self.export.first_server_time:%Y-%m-%d %H:%M} .. {self.export.last_server_time:%Y-%m-%d %H:%M}",
            f"server time offset: {self.offset.summary()}",
            f"bars compared: {p.bars_compared} of {p.broker_bars} ({p.broker_bars - p.bars_compared} without a "
            f"store bar), UTC {p.period_start:%Y-%m-%d %H:%M} .. {p.period_end:%Y-%m-%d %H:%M}",
            f"broker - store (pip {pip:g}):  {'mean':>12} {'std':>12} {'max |diff|':>12} {'mean pips':>10}",
        ]
        for name, s in p.fields.items():
            out.append(
                f"  {name:<24}{s.mean:>+12.{digits}f} {s.std:>12.{digits}f} {s.max_abs:>12.{digits}f} "
                f"{s.mean_pips:>+10.2f}"
            )
        if p.recommended_offset is None:
            out.append(
                f"recommended offset: none (|mean close diff| {abs(p.close.mean_pips):.2f} pips is within "
                f"{p.threshold_pips:g})"
            )
        else:
            out.append(
                f"recommended offset: {p.recommended_offset:+.{digits}f} (add to the store's prices to get the "
                f"broker's; |mean close diff| {abs(p.close.mean_pips):.2f} pips > {p.threshold_pips:g})"
            )
        out.append(f"recorded as broker_comparisons id {self.comparison_id}")
        return out


def _store_window(store: CandleStore, spec: SymbolSpec, tf: Timeframe, export: BrokerExport) -> pd.DataFrame:
    """The store's bars over every UTC instant a candidate offset could put the export on."""
    start = export.first_server_time.tz_localize("UTC") - pd.Timedelta(minutes=MAX_OFFSET_MINUTES)
    end = export.last_server_time.tz_localize("UTC") - pd.Timedelta(minutes=MIN_OFFSET_MINUTES) + tf.delta
    return store.read(spec.symbol, tf, start, end, include_forming=False)


# A broker's day and week bars in the store's other convention: a broker whose server day ends at
# 17:00 New York (the usual UTC+2/UTC+3 rule) cuts its D1 where the store's D1_NY is cut, which no
# UTC day matches whatever the offset.
_NEW_YORK_COUNTERPART = {Timeframe.D1: Timeframe.D1_NY, Timeframe.W1: Timeframe.W1_NY}


def store_timeframes(spec: SymbolSpec, timeframe: Timeframe) -> list[Timeframe]:
    """The store series a broker's `timeframe` bars may be compared with: the same timeframe, and
    for day and week bars of a symbol with the New York close convention, D1_NY or W1_NY too."""
    other = _NEW_YORK_COUNTERPART.get(timeframe)
    return [timeframe, other] if other is not None and other in spec.timeframes else [timeframe]


def _place(
    store: CandleStore, spec: SymbolSpec, timeframe: Timeframe, export: BrokerExport, offset: OffsetRule | None
) -> tuple[Timeframe, pd.DataFrame, OffsetFinding]:
    """The store series to compare with, its bars, and the offset that puts the export on it.

    A stated offset picks the series by its rule (new_york_close: the New York day, when the symbol
    has it). Detected, every candidate series is scored and the best correlation wins, so a D1
    export of a New-York-close broker is judged against D1_NY, and one of a UTC broker against D1.
    """
    candidates = store_timeframes(spec, timeframe)
    if offset is not None:
        tf = candidates[-1] if offset.kind == "new_york_close" else candidates[0]
        return tf, _store_window(store, spec, tf, export), stated(offset)
    bars = export.bars
    best: tuple[Timeframe, pd.DataFrame, OffsetFinding] | None = None
    first_error: OffsetNotFoundError | None = None
    for tf in candidates:
        stored = _store_window(store, spec, tf, export)
        try:
            finding = detect_offset(
                bars["server_time"], bars["close"], stored["ts"], stored["close"],
                what=f"the store's {spec.symbol} {tf.value} bars",
            )
        except OffsetNotFoundError as exc:
            first_error = first_error or exc
            continue
        if best is None or (finding.score or 0.0) > (best[2].score or 0.0):
            best = (tf, stored, finding)
    if best is None:
        assert first_error is not None
        raise first_error
    return best


def compare_export(
    store: CandleStore,
    spec: SymbolSpec,
    timeframe: Timeframe,
    broker: str,
    path: str | Path,
    offset: OffsetRule | None = None,
    *,
    threshold_pips: float = DEFAULT_THRESHOLD_PIPS,
) -> ComparisonOutcome:
    """Import `path` as `broker`'s bars of `spec` × `timeframe`, find or take the offset, compare and record.

    Day and week exports may be compared with the store's D1_NY / W1_NY (`store_timeframes`); the
    rows keep the export's timeframe, and the series compared is `store_timeframe` (in `details`).

    Raises `BrokerExportError` for a bad file, `OffsetNotFoundError` when no offset fits, and
    ValueError when the bars have no bar start in common with the store.
    """
    export = read_export(path)
    bars = export.bars
    compared_with, stored, finding = _place(store, spec, timeframe, export, offset)
    placed = bars.assign(ts=finding.rule.server_to_utc(bars["server_time"]))
    store.replace_broker_file(broker, spec.symbol, timeframe, export.sha256, export.file_name, placed)
    try:
        prices = compare_prices(placed, stored, pip_size=spec.pip, threshold_pips=threshold_pips)
    except ValueError as exc:
        raise ValueError(
            f"{export.file_name} with offset {finding.rule.label}: {exc} "
            f"({spec.symbol} {compared_with.value}: {len(stored)} stored bars in the period)"
        ) from None
    details = {
        "fields": {name: s.as_dict() for name, s in prices.fields.items()},
        # the store series compared: the export's timeframe, or D1_NY / W1_NY for a New York day
        "store_timeframe": compared_with.value,
        "format": export.format,
        "broker_bars": prices.broker_bars,
        "runner_up": None
        if finding.runner_up is None
        else {"rule": finding.runner_up.rule.label, "score": finding.runner_up.score},
        "score": finding.score,
        "ambiguous_with": list(finding.ambiguous_with),
    }
    comparison_id = store.record_broker_comparison(
        broker,
        spec.symbol,
        timeframe,
        period_start=prices.period_start,
        period_end=prices.period_end,
        offset_rule=finding.rule.kind,
        time_offset_minutes=finding.rule.minutes,
        offset_source=finding.source,
        offset_confidence=finding.confidence,
        bars_compared=prices.bars_compared,
        mean_diff=prices.close.mean,
        std_diff=prices.close.std,
        max_abs_diff=prices.close.max_abs,
        mean_diff_pips=prices.close.mean_pips,
        pip_size=prices.pip_size,
        threshold_pips=prices.threshold_pips,
        recommended_offset=prices.recommended_offset,
        details=details,
        file_sha256=export.sha256,
        file_name=export.file_name,
    )
    return ComparisonOutcome(broker, spec, timeframe, export, finding, prices, comparison_id, compared_with)
