"""The verify report: statuses against the market calendar, the CLI after the demo, the report asset."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dagster import materialize

from massive_pipeline.cli import main
from massive_pipeline.core.catalog import load_catalog, parse_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.quality.report_asset import build_quality_report_asset
from massive_pipeline.quality.verify import judge
from massive_pipeline.resources.candle_store import CandleStoreResource

CATALOG = parse_catalog("""\
symbols:
  - {symbol: EURUSD, ticker: "C:EURUSD", asset_class: forex, priority: critical, calendar: forex, start: 2025-06-01}
  - {symbol: XAUUSD, ticker: "C:XAUUSD", asset_class: metal, priority: critical, calendar: metals, start: 2025-06-01}
  - {symbol: SPX500, ticker: "I:SPX", asset_class: index, priority: medium, calendar: us_equity, start: 2025-06-01}
  - {symbol: NEWFX, ticker: "C:NEWFX", asset_class: forex, priority: low, calendar: forex, start: 2026-10-01}
""")


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def _judge(symbol: str, tf: Timeframe, first: str, last: str, now: str):
    return judge(CATALOG.get(symbol), tf, 1000, _ts(first), _ts(last), _ts(now))


def test_no_bars_is_missing():
    verdict = judge(CATALOG.get("EURUSD"), Timeframe.M1, 0, None, None, _ts("2026-10-14 12:00"))
    assert verdict.status == "missing" and verdict.detail == "no bars stored"


@pytest.mark.parametrize(
    ("first", "status"),
    [
        ("2026-10-08 00:00", "ok"),  # today (Wed 14th) and the six days before: 7 UTC days
        ("2026-10-08 00:02", "ok"),  # a leading hole shorter than a gap (3 bars) is tolerated
        ("2026-10-08 00:03", "incomplete"),
        ("2026-10-09 00:00", "incomplete"),  # 6 UTC days
    ],
)
def test_m1_history_of_seven_utc_days(first, status):
    verdict = _judge("EURUSD", Timeframe.M1, first, "2026-10-14 11:58", "2026-10-14 12:00")
    assert verdict.status == status, verdict.detail
    if status == "incomplete":
        assert "M1 needs 7 days: from 2026-10-08 00:00" in verdict.detail


def test_history_starting_on_a_weekend_counts_from_the_market_open():
    # judged Saturday 17th: the 7 days start Sunday 11th, when forex opens at 21:00 UTC
    assert _judge("EURUSD", Timeframe.M1, "2026-10-11 21:00", "2026-10-16 20:59", "2026-10-17 12:00").status == "ok"
    late = _judge("EURUSD", Timeframe.M1, "2026-10-12 00:00", "2026-10-16 20:59", "2026-10-17 12:00")
    assert late.status == "incomplete" and "from 2026-10-11 21:00" in late.detail


def test_required_history_never_reaches_before_the_catalog_start():
    ok = _judge("NEWFX", Timeframe.D1, "2026-10-01", "2026-10-14", "2026-10-14 12:00")
    assert ok.status == "ok" and ok.required_days == 365
    assert _judge("EURUSD", Timeframe.D1, "2026-10-01", "2026-10-14", "2026-10-14 12:00").status == "incomplete"


@pytest.mark.parametrize(
    ("symbol", "last_bar", "now", "status"),
    [
        ("EURUSD", "2026-10-13 10:00", "2026-10-13 10:06", "ok"),
        ("EURUSD", "2026-10-13 10:00", "2026-10-13 10:08", "stale"),  # 7 minutes of trading behind
        ("EURUSD", "2026-10-16 20:59", "2026-10-17 12:00", "ok"),  # Saturday: forex closed since Friday 21:00 UTC
        ("EURUSD", "2026-10-16 20:59", "2026-10-18 21:04", "ok"),  # Sunday, 4 minutes after the open
        ("EURUSD", "2026-10-16 20:59", "2026-10-19 10:00", "stale"),  # Monday morning
        ("XAUUSD", "2026-10-13 20:59", "2026-10-13 21:45", "ok"),  # the metals' daily break
        ("SPX500", "2026-10-13 19:59", "2026-10-14 13:00", "ok"),  # the index's night
        ("SPX500", "2026-10-13 19:59", "2026-10-14 13:40", "stale"),  # 10 minutes after the open
    ],
)
def test_freshness_counts_only_trading_time(symbol, last_bar, now, status):
    verdict = _judge(symbol, Timeframe.M1, "2026-10-01", last_bar, now)
    assert verdict.status == status, verdict.detail
    if status == "stale":
        assert "of trading behind (limit 6 min)" in verdict.detail


def test_incomplete_comes_before_stale_and_both_are_named():
    verdict = _judge("EURUSD", Timeframe.H1, "2026-10-12 00:00", "2026-10-13 10:00", "2026-10-14 10:00")
    assert verdict.status == "incomplete"
    assert "H1 needs 90 days" in verdict.detail and "of trading behind (limit 2.0 h)" in verdict.detail


@pytest.mark.slow
def test_verify_after_the_demo(pipeline_env, capsys):
    # the demo's 7 completed days up to a Wednesday, judged at the end of that day: the same on any
    # day and hour the test runs (on the wall clock a Saturday or just after midnight differ)
    assert main(["demo", "--rate-limit", "1000", "--end", "2026-10-07"]) == 0
    capsys.readouterr()
    # the longer timeframes need more history
    assert main(["verify", "--symbols", "XAUUSD,EURUSD,BTCUSD", "--at", "2026-10-08T00:00"]) == 1
    lines = capsys.readouterr().out.splitlines()
    rows = {tuple(line.split()[:3]) for line in lines[1:] if line.split()[:1] in (["XAUUSD"], ["EURUSD"], ["BTCUSD"])}
    for symbol in ("XAUUSD", "EURUSD", "BTCUSD"):
        assert (symbol, "M1", "ok") in rows, lines
        for tf in ("M5", "M15", "M30", "H1", "H4", "D1", "W1"):
            assert (symbol, tf, "incomplete") in rows, (symbol, tf)
    # forex and metals have the New York close series too (a year and two of history needed); crypto not
    for symbol in ("XAUUSD", "EURUSD"):
        for tf in ("D1_NY", "W1_NY"):
            assert (symbol, tf, "incomplete") in rows, (symbol, tf)
    assert not {r for r in rows if r[0] == "BTCUSD" and r[1].endswith("_NY")}
    m5 = next(line for line in lines if line.startswith("EURUSD") and " M5 " in line)
    assert "M5 needs 14 days" in m5
    d1_ny = next(line for line in lines if line.startswith("EURUSD") and " D1_NY " in line)
    assert "D1_NY needs 365 days" in d1_ny
    assert lines[-1] == "28 series: 3 ok, 25 incomplete"


def test_cli_verify_names_symbols_without_data_and_exits_0_only_when_all_ok(pipeline_env, capsys):
    at = "2026-10-07T12:00"  # the server's clock and verify's: today's partition is forming, on any day
    pipeline_env.now = at
    assert main(["backfill", "--symbols", "BTCUSD", "--timeframes", "M1", "--start", "2026-10-01",
                 "--end", "2026-10-07"]) == 0
    capsys.readouterr()
    assert main(["verify", "--timeframes", "M1", "--at", at]) == 1
    out = capsys.readouterr().out
    assert "BTCUSD  M1         ok" in out
    assert "missing: no bars stored in any timeframe for 4 symbol(s): EURUSD, XAUUSD, GBPUSD, SPX500" in out
    assert main(["verify", "--symbols", "BTCUSD", "--timeframes", "M1", "--at", at]) == 0
    assert capsys.readouterr().out.strip().endswith("1 series: 1 ok")


def test_report_asset_renders_a_coverage_picture(pipeline_env):
    # fixed days and a fixed report instant: the picture does not depend on the day the test runs
    today = dt.date(2026, 10, 15)
    first = today - dt.timedelta(days=3)
    assert main(["backfill", "--symbols", "BTCUSD", "--timeframes", "M1", "--start", first.isoformat(),
                 "--end", (today - dt.timedelta(days=1)).isoformat()]) == 0
    catalog = load_catalog()
    result = materialize(
        [build_quality_report_asset(catalog)], resources={"candle_store": CandleStoreResource()},
        run_config={"ops": {"data_quality_report": {"config": {"days": 5, "at": "2026-10-15T12:00:00Z"}}}},
    )
    assert result.success
    meta = result.asset_materializations_for_node("data_quality_report")[0].metadata
    picture = meta["coverage"].value
    header, _, *rows = picture.splitlines()
    assert header.count("|") == 5 + 2  # symbol column and five days
    btc = next(r for r in rows if r.startswith("| BTCUSD |")).split("|")[2:-1]
    assert [c.strip()[:1] for c in btc[1:4]] == ["🟩"] * 3  # the three backfilled days
    assert btc[0].strip() == "🟥 0"  # the day before: crypto trades, nothing stored
    assert "🟩" not in next(r for r in rows if r.startswith("| EURUSD |"))
    # 5 symbols × 8 timeframes, and D1_NY and W1_NY of the 3 forex and metal symbols; BTCUSD M1 holds 3
    # of the 7 days it needs
    assert (meta["series_ok"].value, meta["series_incomplete"].value, meta["series_missing"].value) == (0, 1, 45)
    assert "EURUSD" in meta["symbols_without_data"].value
