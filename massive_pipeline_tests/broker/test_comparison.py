"""A comparison end to end: broker files made from the bundled server's bars on a known rule and
price offset; the rule, the minutes and the offset found, the result recorded, re-imports idempotent."""

from __future__ import annotations

import pandas as pd
import pytest

from massive_pipeline.broker.comparison import compare_export
from massive_pipeline.broker.offset import OffsetRule
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline_tests.broker.broker_files import broker_bars, mt4_text, mt5_text, write_export

XAU = load_catalog().get("XAUUSD")
PIP = XAU.pip  # 0.01


@pytest.mark.parametrize(
    ("rule", "fmt", "price_offset", "decimals"),
    [
        (OffsetRule.new_york_close(), "mt4", 0.35, 2),  # 35 pips: recommended
        (OffsetRule.fixed(180), "mt5", -0.27, 2),  # -27 pips: recommended
        (OffsetRule.new_york_close(), "mt5", 0.004, 3),  # 0.4 pip: below the 0.5 pip threshold
    ],
)
def test_rule_minutes_and_price_offset_are_found_and_recorded(
    xau_store, tmp_path, rule, fmt, price_offset, decimals
):
    store, stored = xau_store
    bars = stored[Timeframe.H1]
    shown = broker_bars(bars, rule, price_offset)
    text = mt4_text(shown, decimals) if fmt == "mt4" else mt5_text(shown, decimals)
    path = write_export(
        tmp_path, "XAUUSD60.csv" if fmt == "mt4" else "XAUUSD_H1_2025.csv", text, utf16=fmt == "mt5"
    )

    outcome = compare_export(store, XAU, Timeframe.H1, "testbroker", path)

    assert outcome.export.format == fmt
    assert (outcome.offset.rule.kind, outcome.offset.rule.minutes) == (rule.kind, rule.minutes)
    prices = outcome.prices
    assert prices.bars_compared == len(bars) == prices.broker_bars
    for field in ("close", "open", "high", "low"):
        assert abs(prices.fields[field].mean - price_offset) < 0.01 * PIP
    assert prices.close.mean_pips == pytest.approx(price_offset / PIP, abs=0.01)
    above = abs(price_offset / PIP) > 0.5
    assert (prices.recommended_offset is not None) is above
    if above:
        assert abs(prices.recommended_offset - price_offset) < 0.01 * PIP

    row = store.broker_comparisons("testbroker").set_index("id").loc[outcome.comparison_id]
    assert (row["symbol"], row["timeframe"], row["offset_rule"], row["time_offset_minutes"]) == (
        "XAUUSD",
        "H1",
        rule.kind,
        rule.minutes,
    )
    assert row["offset_source"] == "detected" and row["offset_confidence"] == pytest.approx(
        outcome.offset.confidence
    )
    assert row["bars_compared"] == len(bars) and row["mean_diff_pips"] == pytest.approx(
        price_offset / PIP, abs=0.01
    )
    assert (row["recommended_offset"] is None or pd.isna(row["recommended_offset"])) is not above
    assert row["period_start"] == bars["ts"].iloc[0] and row["period_end"] == bars["ts"].iloc[-1]
    assert set(row["details"]["fields"]) == {"close", "open", "high", "low"}
    printed = "\n".join(outcome.lines())
    assert rule.kind in printed and f"recorded as broker_comparisons id {outcome.comparison_id}" in printed


def test_stated_offset_bypasses_detection_and_a_wrong_one_shows_in_the_differences(xau_store, tmp_path):
    store, stored = xau_store
    bars = stored[Timeframe.M15]
    path = write_export(tmp_path, "XAUUSD15.csv", mt4_text(broker_bars(bars, OffsetRule.fixed(180), 0.1), 2))

    right = compare_export(store, XAU, Timeframe.M15, "stated", path, OffsetRule.fixed(180))
    assert right.offset.source == "stated" and right.offset.confidence is None
    assert right.prices.close.std < 0.01 * PIP and right.prices.bars_compared == len(bars)

    wrong = compare_export(store, XAU, Timeframe.M15, "stated", path, OffsetRule.fixed(120))
    assert wrong.prices.close.std > 10 * PIP  # each bar compared with the bar an hour later


def test_reimporting_the_same_file_replaces_its_rows(xau_store, tmp_path):
    store, stored = xau_store
    bars = stored[Timeframe.M15]
    path = write_export(tmp_path, "XAUUSD15.csv", mt4_text(broker_bars(bars, OffsetRule.fixed(180), 0.2), 2))
    first = compare_export(store, XAU, Timeframe.M15, "again", path, OffsetRule.fixed(180))
    after_first = store.broker_bars("again", "XAUUSD", "M15")
    second = compare_export(store, XAU, Timeframe.M15, "again", path, OffsetRule.fixed(180))
    after_second = store.broker_bars("again", "XAUUSD", "M15")
    assert len(after_first) == len(after_second) == len(bars)
    assert set(after_second["file_sha256"]) == {first.export.sha256} == {second.export.sha256}
    assert (after_second["ts"] == bars["ts"].to_numpy()).all()
    assert after_second["server_time"].iloc[0] == bars["ts"].iloc[0].tz_localize(None) + pd.Timedelta(hours=3)
    assert len(store.broker_comparisons("again")) == 2  # each comparison is a row of its own


def _day_bars(h1: pd.DataFrame, new_york: bool) -> pd.DataFrame:
    """Day bars from the stored H1 by hand: UTC days, or New York trading days from 17:00, stamped
    at their start in UTC (independent of the pipeline's resampling code)."""
    ts = h1["ts"]
    if new_york:
        wall = ts.dt.tz_convert("America/New_York").dt.tz_localize(None) - pd.Timedelta(hours=17)
        day = wall.dt.normalize()
        stamps = lambda idx: (idx + pd.Timedelta(hours=17)).tz_localize("America/New_York").tz_convert("UTC")  # noqa: E731
    else:
        day = ts.dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
        stamps = lambda idx: idx.tz_localize("UTC")  # noqa: E731
    grouped = h1.groupby(day.to_numpy()).agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    return grouped.set_axis(stamps(grouped.index)).rename_axis("ts").reset_index()


@pytest.mark.parametrize(("rule", "store_tf"), [
    (OffsetRule.new_york_close(), Timeframe.D1_NY),  # the usual broker: its day ends at 17:00 New York
    (OffsetRule.fixed(0), Timeframe.D1),  # a broker on UTC days
])
def test_a_day_export_is_compared_with_the_store_day_it_was_cut_like(xau_store, tmp_path, rule, store_tf):
    store, stored = xau_store
    h1 = stored[Timeframe.H1]
    days = {tf: _day_bars(h1, new_york=tf is Timeframe.D1_NY) for tf in (Timeframe.D1, Timeframe.D1_NY)}
    for tf, bars in days.items():
        store.write_window("XAUUSD", tf, bars["ts"].iloc[0], bars["ts"].iloc[-1] + pd.Timedelta(days=1), bars)
    path = write_export(tmp_path, "XAUUSD1440.csv", mt4_text(broker_bars(days[store_tf], rule, 0.35), 2))

    outcome = compare_export(store, XAU, Timeframe.D1, "daybroker", path)

    assert outcome.store_timeframe is store_tf
    assert (outcome.offset.rule.kind, outcome.offset.rule.minutes) == (rule.kind, rule.minutes)
    assert outcome.prices.bars_compared == len(days[store_tf])
    assert abs(outcome.prices.close.mean - 0.35) < 0.01 * PIP
    row = store.broker_comparisons("daybroker").set_index("id").loc[outcome.comparison_id]
    assert row["timeframe"] == "D1" and row["details"]["store_timeframe"] == store_tf.value
    assert ("against the store's D1_NY" in outcome.lines()[0]) is (store_tf is Timeframe.D1_NY)
