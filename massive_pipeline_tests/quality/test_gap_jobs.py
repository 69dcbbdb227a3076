"""`gaps detect|fill|list` through the code location's jobs, recorded in the Dagster instance.

`gaps fill` is the command line's in-process launcher of the runs `gap_fill_sensor` requests
unattended (`test_quality_gap_fill_sensor.py`): the same candle jobs, ranges and tags.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance

from massive_pipeline.cli import main
from massive_pipeline.core.calendars import get_calendar
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.store import CandleStore


def _ms(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value // 1_000_000


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def _runs(purpose: str | None = None):
    with DagsterInstance.get() as instance:
        runs = instance.get_runs()
    return [r for r in runs if purpose is None or r.tags.get("massive/purpose") == purpose]


@pytest.fixture
def hole(pipeline_env):
    """EURUSD M1 and H1 Wed 2026-10-07 .. Tue 2026-10-13 (a weekend inside) with a 2-hour hole on Tuesday."""
    pipeline_env.set_faults(holes=[(_ms("2026-10-13 10:00"), _ms("2026-10-13 12:00"))])
    assert main(["backfill", "--symbols", "EURUSD", "--timeframes", "M1,H1", "--start", "2026-10-07",
                 "--end", "2026-10-13"]) == 0
    return pipeline_env


def test_detect_records_the_hole_and_nothing_over_the_weekend(hole, capsys):
    capsys.readouterr()
    assert main(["gaps", "detect", "--symbols", "EURUSD", "--start", "2026-10-01", "--end", "2026-10-20"]) == 0
    out = capsys.readouterr().out
    assert "EURUSD  M1         2026-10-13 10:00  2026-10-13 12:00  120" in out
    assert "1 gap(s), 120 bar(s) missing" in out
    store = CandleStore()
    gaps = store.gaps("EURUSD")
    assert gaps[["timeframe", "gap_start", "gap_end", "candles_missing", "status"]].values.tolist() == [
        ["M1", _ts("2026-10-13 10:00"), _ts("2026-10-13 12:00"), 120, "detected"]
    ]
    runs = _runs("gap_detection")
    assert [r.job_name for r in runs] == ["gap_detection_job"]
    # detecting again records nothing new; derived timeframes only when asked
    assert main(["gaps", "detect", "--symbols", "EURUSD", "--timeframes", "M1,H1", "--start", "2026-10-01",
                 "--end", "2026-10-20"]) == 0
    gaps = store.gaps("EURUSD")
    assert gaps[["timeframe", "candles_missing"]].values.tolist() == [["H1", 2], ["M1", 120]]
    store.dispose()


def test_an_unfillable_hole_is_tried_once(hole, capsys):
    assert main(["gaps", "detect", "--symbols", "EURUSD", "--days", "0"]) == 0
    before = hole.request_count(kind="aggs")
    capsys.readouterr()
    assert main(["gaps", "fill", "--symbols", "EURUSD"]) == 0
    out = capsys.readouterr().out
    assert "unfillable" in out and "1 gap(s): 1 unfillable" in out
    assert hole.request_count(kind="aggs") - before == 1  # one ranged request for the day
    store = CandleStore()
    gap = store.gaps("EURUSD", "M1").iloc[0]
    assert gap["status"] == "unfillable" and gap["attempts"] == 1 and pd.isna(gap["filled_at"])

    assert "fills executed in this process" in out  # the command says it bypasses the run queue
    fill_runs = _runs("gap_fill")  # ordinary runs of the candle job, tagged with the gap they fill
    assert [(r.job_name, r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"],
             r.tags["massive/gap_ids"], r.tags["massive/gap_attempts"], r.tags["massive/launched_by"])
            for r in fill_runs] == [("candles_daily_from_2025_06_01", "2026-10-13", "2026-10-13", str(gap["id"]),
                                     f"{gap['id']}:1", "cli")]

    # not retried again …
    assert main(["gaps", "fill"]) == 0
    assert "no detected gaps to fill" in capsys.readouterr().out
    assert hole.request_count(kind="aggs") - before == 1
    # … and re-detection does not bring it back as a new gap
    assert main(["gaps", "detect", "--symbols", "EURUSD", "--days", "0"]) == 0
    assert len(store.gaps("EURUSD")) == 1
    # unless asked
    assert main(["gaps", "fill", "--retry-unfillable"]) == 0
    assert hole.request_count(kind="aggs") - before == 2
    assert store.gaps("EURUSD", "M1").iloc[0]["attempts"] == 2
    capsys.readouterr()
    assert main(["gaps", "list", "--status", "unfillable"]) == 0
    assert "1 gap(s): 1 unfillable" in capsys.readouterr().out
    store.dispose()


def test_a_hole_the_provider_can_now_supply_is_filled(hole):
    assert main(["gaps", "detect", "--symbols", "EURUSD", "--start", "2026-10-07", "--end", "2026-10-13"]) == 0
    store = CandleStore()
    assert store.count("EURUSD", "H1", _ts("2026-10-13"), _ts("2026-10-14")) == 22
    hole.set_faults(holes=[])
    assert main(["gaps", "fill"]) == 0
    gap = store.gaps("EURUSD", "M1").iloc[0]
    assert gap["status"] == "filled" and gap["attempts"] == 1
    assert _ts("2026-11-01") < gap["filled_at"] <= pd.Timestamp.now(tz="UTC")
    assert store.count("EURUSD", "M1", _ts("2026-10-13 10:00"), _ts("2026-10-13 12:00")) == 120
    assert store.count("EURUSD", "H1", _ts("2026-10-13"), _ts("2026-10-14")) == 24  # re-derived too
    assert store.count("EURUSD", "M5") == 0  # a series nobody materialized is not started by a fill
    store.dispose()


def test_adjacent_days_are_one_ranged_request(pipeline_env, capsys):
    pipeline_env.set_faults(holes=[(_ms("2026-10-13 10:00"), _ms("2026-10-13 11:00")),
                                   (_ms("2026-10-14 10:00"), _ms("2026-10-14 11:00")),
                                   (_ms("2026-10-16 10:00"), _ms("2026-10-16 11:00"))])
    assert main(["backfill", "--symbols", "XAUUSD", "--timeframes", "M1", "--start", "2026-10-12",
                 "--end", "2026-10-16"]) == 0
    assert main(["gaps", "detect", "--symbols", "XAUUSD", "--start", "2026-10-12", "--end", "2026-10-16"]) == 0
    pipeline_env.set_faults(holes=[])
    before = pipeline_env.request_count(kind="aggs")
    capsys.readouterr()
    assert main(["gaps", "fill", "--symbols", "XAUUSD"]) == 0
    out = capsys.readouterr().out
    assert "3 gap(s): 3 filled" in out
    assert "2026-10-13..2026-10-14" in out and "2026-10-16..2026-10-16" in out
    assert pipeline_env.request_count(kind="aggs") - before == 2  # Tue+Wed together, Fri alone
    assert sorted((r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
                  for r in _runs("gap_fill")) == [("2026-10-13", "2026-10-14"), ("2026-10-16", "2026-10-16")]


def test_the_detection_job_runs_with_the_schedules_default_config(pipeline_env):
    """The 05:00 schedule launches the job without run config; the 06:00 fills are the sensor's."""
    defs = build_definitions()
    with DagsterInstance.get() as instance:
        result = defs.resolve_job_def("gap_detection_job").execute_in_process(instance=instance)
    assert result.success and result.dagster_run.tags["massive/purpose"] == "gap_detection"
    schedules = {s.name: s.job_name for s in defs.schedules}
    assert schedules.get("gap_detection") == "gap_detection_job" and "gap_fill" not in schedules
    assert "gap_fill_sensor" in {s.name for s in defs.sensors}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["gaps", "detect", "--symbols", "EURUDS"], "unknown symbol 'EURUDS'"),
        (["gaps", "fill", "--timeframes", "H2"], "unknown timeframe 'H2'"),
        (["gaps", "detect", "--start", "2026-10-05", "--end", "2026-10-01"], "before --start"),
        (["gaps", "detect", "--min-bars", "0"], "--min-bars"),
        (["gaps", "detect", "--days", "-1"], "--days must be 0"),
        (["gaps", "detect", "--days", "5", "--start", "2026-10-01"], "--start and --days both say"),
        (["gaps", "detect", "--all", "--days", "3"], "--days and --all both say"),
        (["verify", "--at", "yesterday-ish"], "--at"),
    ],
)
def test_bad_arguments_get_one_clear_line(pipeline_env, argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


# -- detection over healthy series ------------------------------------------------------------------

HEALTHY_START, HEALTHY_END = _ts("2026-10-12"), _ts("2026-10-17")  # Monday .. Friday, the weekend after
# the small catalog's fetched series: base M1 of every symbol, and SPX500's D1 (catalog `fetch`)
ALL_SERIES = 6


def _complete_bars(calendar: str, tf: Timeframe, start=HEALTHY_START, end=HEALTHY_END) -> pd.DataFrame:
    """Every bar the market calendar expects in [start, end): a series without a gap."""
    ts = get_calendar(calendar).expected_bars(start, end, tf)
    close = 1.1 + np.arange(len(ts)) % 17 / 1e4
    return pd.DataFrame({"ts": ts, "open": close, "high": close + 1e-4, "low": close - 1e-4, "close": close,
                         "volume": np.full(len(ts), 10.0)})


def _write(store: CandleStore, symbol: str, tf: Timeframe, bars: pd.DataFrame) -> None:
    store.replace_window(symbol, tf, HEALTHY_START, HEALTHY_END, bars)


@pytest.fixture
def store_url(pipeline_env, database_url, monkeypatch):
    """The code location's candle store on SQLite or PostgreSQL, schema created, nothing stored."""
    monkeypatch.setenv("MASSIVE_DATABASE_URL", database_url)
    with CandleStore(database_url) as store:
        store.create_schema()
    return database_url


@pytest.fixture
def healthy(store_url):
    """Four complete series (forex, metals, crypto, an index's D1), one series of a single bar and
    one (SPX500 M1) with nothing stored."""
    with CandleStore(store_url) as store:
        _write(store, "EURUSD", Timeframe.M1, _complete_bars("forex", Timeframe.M1))
        _write(store, "XAUUSD", Timeframe.M1, _complete_bars("metals", Timeframe.M1))
        _write(store, "BTCUSD", Timeframe.M1, _complete_bars("crypto", Timeframe.M1))
        _write(store, "SPX500", Timeframe.D1, _complete_bars("us_equity", Timeframe.D1))
        _write(store, "GBPUSD", Timeframe.M1, _complete_bars("forex", Timeframe.M1).iloc[[700]])
    return store_url


def _detect(config: dict) -> tuple[list[dict], dict]:
    """Run gap_detection_job as the schedule does, with `config`: (op output, output metadata)."""
    defs = build_definitions()
    with DagsterInstance.get() as instance:
        result = defs.resolve_job_def("gap_detection_job").execute_in_process(
            run_config={"ops": {"detect_gaps": {"config": config}}}, instance=instance
        )
    assert result.success
    meta = next(e.step_output_data.metadata for e in result.events_for_node("detect_gaps") if e.is_successful_output)
    return result.output_for_node("detect_gaps"), {k: v.value for k, v in meta.items()}


def test_healthy_series_have_no_gaps_through_the_cli(healthy, capsys):
    capsys.readouterr()
    assert main(["gaps", "detect", "--days", "0"]) == 0  # the command of the issue, whatever today is
    assert "0 gap(s), 0 bar(s) missing in 6 series over the whole stored history up to today" in capsys.readouterr().out
    assert main(["gaps", "detect", "--all", "--end", "2026-10-31", "--min-bars", "1"]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines() == [
        "0 gap(s), 0 bar(s) missing in 6 series over the whole stored history up to 2026-10-31 "
        f"(run {_runs('gap_detection')[0].run_id} of gap_detection_job; `gaps list` shows their status)"
    ]
    with CandleStore(healthy) as store:
        assert store.gaps().empty
    assert main(["gaps", "list"]) == 0
    assert "no gaps recorded" in capsys.readouterr().out


def test_healthy_series_have_no_gaps_through_the_job(healthy):
    gaps, meta = _detect({"lookback_days": 0, "end": "2026-10-31", "min_bars": 1})
    assert gaps == []
    assert (meta["series"], meta["gaps"], meta["new_gaps"], meta["bars_missing"]) == (ALL_SERIES, 0, 0, 0)
    table = meta["by_series"]
    assert "| EURUSD | M1 | 2026-10-12 00:00 .. 2026-10-16 21:00 | 0 | 0 | 0 | 0 | 0 |" in table
    assert "| SPX500 | D1 | 2026-10-12 00:00 .. 2026-10-17 00:00 | 0 | 0 |" in table
    assert "| GBPUSD | M1 | 2026-10-12 11:40 .. 2026-10-12 11:41 | 0 | 0 |" in table  # a single bar
    assert "| SPX500 | M1 | no bars stored | 0 | 0 |" in table
    assert meta["gaps_sample"] == "_none_"
    # a window after every stored bar, and one before the first
    for start, end in (("2026-10-20", "2026-10-31"), ("2026-10-01", "2026-10-05")):
        gaps, meta = _detect({"start": start, "end": end})
        assert gaps == [] and meta["gaps"] == 0
        assert meta["by_series"].count("no bars stored") == ALL_SERIES


def test_an_empty_store(store_url, capsys):
    gaps, meta = _detect({})  # the 05:00 schedule's config
    assert gaps == [] and (meta["series"], meta["gaps"]) == (ALL_SERIES, 0)
    assert meta["by_series"].count("| no bars stored |") == ALL_SERIES
    capsys.readouterr()
    assert main(["gaps", "detect"]) == 0
    assert "0 gap(s), 0 bar(s) missing in 6 series over the last 30 day(s) up to today" in capsys.readouterr().out


def test_a_series_whose_only_gaps_are_known_unfillable(store_url, capsys):
    bars = _complete_bars("forex", Timeframe.M1)
    holes = [("2026-10-13 10:00", "2026-10-13 12:00"), ("2026-10-15 03:00", "2026-10-15 03:05")]
    keep = np.ones(len(bars), dtype=bool)
    for lo, hi in holes:
        keep &= ~((bars["ts"] >= _ts(lo)) & (bars["ts"] < _ts(hi))).to_numpy()
    with CandleStore(store_url) as store:
        _write(store, "EURUSD", Timeframe.M1, bars[keep])
        gaps, meta = _detect({"symbols": ["EURUSD"], "lookback_days": 0, "end": "2026-10-31"})
        assert [(g["gap_start"], g["candles_missing"]) for g in gaps] == [
            ("2026-10-13T10:00:00+00:00", 120), ("2026-10-15T03:00:00+00:00", 5)
        ]
        assert meta["new_gaps"] == 2
        for gap_id in store.gaps("EURUSD")["id"]:
            store.set_gap_status(int(gap_id), "filling")
            store.set_gap_status(int(gap_id), "unfillable")

        gaps, meta = _detect({"symbols": ["EURUSD"], "lookback_days": 0, "end": "2026-10-31"})
        assert gaps == [] and (meta["gaps"], meta["new_gaps"]) == (0, 0)
        assert "| EURUSD | M1 | 2026-10-12 00:00 .. 2026-10-16 21:00 | 0 | 0 | 0 | 0 | 2 |" in meta["by_series"]
        capsys.readouterr()
        assert main(["gaps", "detect", "--symbols", "EURUSD", "--days", "0", "--end", "2026-10-31"]) == 0
        assert "0 gap(s), 0 bar(s) missing in 1 series" in capsys.readouterr().out
        assert store.gaps("EURUSD")["status"].tolist() == ["unfillable", "unfillable"]

        # a filled gap that goes missing again comes back as detected; the unfillable one stays as it is
        store.set_gap_status(int(store.gaps("EURUSD")["id"].iloc[0]), "filled")
        gaps, meta = _detect({"symbols": ["EURUSD"], "lookback_days": 0, "end": "2026-10-31"})
        assert [g["candles_missing"] for g in gaps] == [120] and meta["new_gaps"] == 0
        assert store.gaps("EURUSD")["status"].tolist() == ["detected", "unfillable"]


def test_gaps_fill_says_it_runs_in_process(capsys):
    """The command line's fill bypasses the run queue; its help says so (the output does too, above)."""
    with pytest.raises(SystemExit):
        main(["gaps", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "in this process" in out and "gap_fill_sensor" in out
