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
