"""The server-time offset: the rules' arithmetic, the user's forms, and detection on the bundled server's bars."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from massive_pipeline.broker.offset import OffsetNotFoundError, OffsetRule, detect_offset, parse_offset
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline_tests.broker.broker_files import broker_bars


@pytest.mark.parametrize(
    ("server", "utc"),
    [
        ("2025-03-07 00:00", "2025-03-06 22:00"),  # Friday before the US change: UTC+2
        ("2025-03-10 00:00", "2025-03-09 21:00"),  # Monday after it: UTC+3
        ("2025-10-31 23:00", "2025-10-31 20:00"),  # last Friday of US summer time
        ("2025-11-03 00:00", "2025-11-02 22:00"),  # back on UTC+2
    ],
)
def test_new_york_close_rule_is_utc_plus_2_in_us_winter_and_plus_3_in_us_summer(server, utc):
    placed = OffsetRule.new_york_close().server_to_utc([pd.Timestamp(server)])
    assert placed[0] == pd.Timestamp(utc, tz="UTC")
    # server midnight is 17:00 in New York all year
    assert (
        OffsetRule.new_york_close()
        .server_to_utc([pd.Timestamp(server[:10])])[0]
        .tz_convert("America/New_York")
        .hour
        == 17
    )


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("+03:00", OffsetRule.fixed(180)),
        ("-05:30", OffsetRule.fixed(-330)),
        ("+2", OffsetRule.fixed(120)),
        ("UTC+0245", OffsetRule.fixed(165)),
        ("0", OffsetRule.fixed(0)),
        ("new_york_close", OffsetRule("new_york_close", 180)),
        ("auto", None),
    ],
)
def test_stated_offsets(text, rule):
    assert parse_offset(text) == rule
    if rule is not None:
        assert parse_offset(rule.label) == rule


@pytest.mark.parametrize("text", ["+3:75", "+15:00", "three", "+03:00:00"])
def test_bad_stated_offsets_are_named(text):
    with pytest.raises(ValueError, match=re.escape(f"offset {text!r}")):
        parse_offset(text)


@pytest.mark.parametrize("rule", [OffsetRule.fixed(180), OffsetRule.fixed(-300), OffsetRule.new_york_close()])
def test_detection_finds_the_rule_and_minutes_exactly_from_a_year_of_h1(xau_store, rule):
    _, stored = xau_store
    bars = stored[Timeframe.H1]
    broker = broker_bars(bars, rule, price_offset=0.35)
    found = detect_offset(broker["server_time"], broker["close"], bars["ts"], bars["close"])
    assert (found.rule.kind, found.rule.minutes) == (rule.kind, rule.minutes)
    assert found.source == "detected" and found.score == pytest.approx(1.0, abs=1e-6)
    assert found.ambiguous_with == ()
    # the runner-up is the other convention a broker could be on: fixed +3 <-> New York close
    if rule.minutes == 180:
        assert found.runner_up.rule.kind != rule.kind
    # margin where the two place bars differently: the devserver's intraday drift correlates
    # neighbouring hours, so a one-hour misplacement still scores about 0.5
    assert 0.3 < found.confidence <= 1.0 + 1e-9
    assert found.confidence == pytest.approx(found.score - _score_on_differing(found, broker, bars), abs=1e-9)


def _score_on_differing(found, broker, bars) -> float:
    """The runner-up's return correlation on the bars it places differently from the best (recomputed here)."""
    best = found.rule.server_to_utc(broker["server_time"])
    other = found.runner_up.rule.server_to_utc(broker["server_time"])
    differ = best != other
    joined = (
        pd.DataFrame({"ts": other[differ], "b": broker["close"].to_numpy()[differ]})
        .merge(bars[["ts", "close"]], on="ts")
        .sort_values("ts")
    )
    return float(np.corrcoef(np.diff(np.log(joined["b"])), np.diff(np.log(joined["close"])))[0, 1])


def test_a_file_within_us_summer_time_cannot_tell_fixed_plus_3_from_new_york_close(xau_store):
    _, stored = xau_store
    bars = stored[Timeframe.M15]  # June only
    broker = broker_bars(bars, OffsetRule.fixed(180), price_offset=0.0)
    found = detect_offset(broker["server_time"], broker["close"], bars["ts"], bars["close"])
    assert found.rule == OffsetRule.new_york_close() and found.ambiguous_with == ("+03:00",)
    assert found.runner_up.rule not in (OffsetRule.fixed(180), OffsetRule.new_york_close())


def test_no_candidate_matching_the_store_is_one_clear_error(xau_store):
    _, stored = xau_store
    bars = stored[Timeframe.H1]
    broker = broker_bars(bars, OffsetRule.fixed(0), 0.0).assign(
        server_time=lambda f: f["server_time"] + pd.Timedelta(minutes=7)
    )  # on no 15-minute grid
    with pytest.raises(OffsetNotFoundError, match=r"^no offset from -12:00 to \+14:00 .* state the offset"):
        detect_offset(broker["server_time"], broker["close"], bars["ts"], bars["close"])
