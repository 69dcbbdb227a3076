"""`gap_fill_sensor` on a real instance, against the bundled server and a real candle store.

The sensor is evaluated as the daemon would evaluate it (`build_sensor_context` with the code
location); the runs it requests are executed with the request's own job, asset selection and tags,
as the run queue would launch them, so the judge sees real runs ending in success or failure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pytest
from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    Definitions,
    RunRequest,
    SensorDefinition,
    build_sensor_context,
)

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.cli import main
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.dagster_compat import make_new_run_id
from massive_pipeline.definitions import build_definitions
from massive_pipeline.operations.settings import OperationsSettings
from massive_pipeline.quality.gap_fill_sensor import GAP_FILL_SENSOR, GapFillState, last_round_time
from massive_pipeline.store import CandleStore

DAILY_JOB = "candles_daily_from_2025_06_01"
WEEKLY_JOB = "candles_weekly_from_2025_06_01"
DAILY_NY_JOB, WEEKLY_NY_JOB = "candles_daily_ny_from_2025_06_01", "candles_weekly_ny_from_2025_06_01"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
# Tuesday and Wednesday (adjacent) and Friday of one forex week: three gaps, two ranges
HOLES = {"tue": ("2026-10-13 10:00", "2026-10-13 11:00"), "wed": ("2026-10-14 10:00", "2026-10-14 11:00"),
         "fri": ("2026-10-16 10:00", "2026-10-16 11:00")}
ROUND = pd.Timestamp("2026-10-17 06:00:30", tz="UTC")  # the first tick after Saturday's 06:00 round time


def _ms(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value // 1_000_000


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def _holes(*names: str) -> list[tuple[int, int]]:
    return [(_ms(HOLES[n][0]), _ms(HOLES[n][1])) for n in names]


class Clock:
    """The sensor's clock, moved by the test (the daemon's tick time)."""

    def __init__(self, at: pd.Timestamp) -> None:
        self.at = at

    def __call__(self) -> pd.Timestamp:
        return self.at


@dataclass
class Setup:
    server: object
    defs: Definitions
    sensor: SensorDefinition
    instance: DagsterInstance
    store: CandleStore
    clock: Clock

    def tick(self, cursor: str | None = None) -> tuple[list[RunRequest], str | None, str]:
        """Evaluate the sensor once: (run requests, new cursor, skip reason or '')."""
        with build_sensor_context(instance=self.instance, cursor=cursor, definitions=self.defs,
                                  resources={"candle_store": self.defs.resources["candle_store"]},
                                  sensor_name=GAP_FILL_SENSOR) as context:
            data = self.sensor.evaluate_tick(context)
        return list(data.run_requests or []), data.cursor, data.skip_message or ""

    def execute(self, request: RunRequest) -> DagsterRun:
        """Launch the requested run as the run queue would: its job, asset selection and tags."""
        result = self.defs.resolve_job_def(request.job_name).execute_in_process(
            instance=self.instance, tags=dict(request.tags), asset_selection=list(request.asset_selection or []),
            raise_on_error=False,
        )
        return result.dagster_run

    def add_run(self, request: RunRequest, status: DagsterRunStatus) -> DagsterRun:
        """A run of the request as the daemon creates it before the queue starts it (not finished)."""
        run = DagsterRun(job_name=request.job_name, run_id=make_new_run_id(), status=status, tags=dict(request.tags),
                         asset_selection=frozenset(request.asset_selection or []))
        return self.instance.add_run(run)

    def gaps(self) -> pd.DataFrame:
        return self.store.gaps("EURUSD", "M1")

    def statuses(self) -> list[str]:
        return self.gaps()["status"].tolist()


@pytest.fixture
def setup(pipeline_env) -> Iterator[Setup]:
    """EURUSD M1, H1 and W1 (and so D1, W1's source) of Mon 2026-10-12 .. Fri 2026-10-16 stored with
    three one-hour holes, the holes detected (`detected`); the provider can now supply Tuesday and Wednesday, not Friday."""
    pipeline_env.set_faults(holes=_holes("tue", "wed", "fri"))
    assert main(["backfill", "--symbols", "EURUSD", "--timeframes", "M1,H1,W1", "--start", "2026-10-12",
                 "--end", "2026-10-16"]) == 0
    assert main(["gaps", "detect", "--symbols", "EURUSD", "--start", "2026-10-12", "--end", "2026-10-16"]) == 0
    pipeline_env.set_faults(holes=_holes("fri"))
    clock = Clock(ROUND)
    defs = build_definitions(load_catalog(), settings=OperationsSettings(clock=clock))
    store = CandleStore()
    with DagsterInstance.get() as instance:
        yield Setup(pipeline_env, defs, defs.get_repository_def().get_sensor_def(GAP_FILL_SENSOR), instance, store,
                    clock)
    store.dispose()


def test_without_the_api_key_the_round_waits_with_the_reason_and_runs_once_the_key_is_there(setup, monkeypatch):
    """Fills fetch from the API: without the key the round is held (no request, gaps stay detected,
    the reason in the skip message), not spent; the next tick with the key makes it as before."""
    monkeypatch.delenv("MASSIVE_API_KEY")
    requests, cursor, skip = setup.tick()
    assert requests == []
    assert "MASSIVE_API_KEY is not set" in skip and "round of 2026-10-17T06:00:00Z waits" in skip
    assert GapFillState.from_cursor(cursor).round_at is None
    assert setup.statuses() == ["detected"] * 3
    monkeypatch.setenv("MASSIVE_API_KEY", "test-key-123")
    requests, cursor, _ = setup.tick(cursor)
    assert len(requests) == 2 and GapFillState.from_cursor(cursor).round_at == last_round_time("0 6 * * *", ROUND)


def test_one_run_request_per_range_of_adjacent_gap_days(setup):
    assert setup.statuses() == ["detected"] * 3
    requests, cursor, _ = setup.tick()
    assert len(requests) == 2
    ids = [int(i) for i in setup.gaps()["id"]]
    by_range = {(r.tags[RANGE_START], r.tags[RANGE_END]): r for r in requests}
    assert set(by_range) == {("2026-10-13", "2026-10-14"), ("2026-10-16", "2026-10-16")}
    for request in requests:
        assert request.job_name == DAILY_JOB
        # the gap's timeframe and the derived ones the store keeps (D1: the backfill of W1 stored the
        # days W1 is resampled from), W1 aside (the weekly job follows the fill)
        assert list(request.asset_selection) == [candle_key("EURUSD", tf) for tf in (Timeframe.M1, Timeframe.H1,
                                                                                      Timeframe.D1)]
        assert request.partition_key is None
        assert request.tags["massive/purpose"] == "gap_fill" and request.tags["massive/symbol"] == "EURUSD"
        assert request.tags["dagster/max_runtime"] == "3600"  # a dead fill run is failed, its gaps go back
    assert by_range[("2026-10-13", "2026-10-14")].tags["massive/gap_ids"] == f"{ids[0]},{ids[1]}"
    assert by_range[("2026-10-16", "2026-10-16")].tags["massive/gap_ids"] == f"{ids[2]}"
    assert by_range[("2026-10-16", "2026-10-16")].tags["massive/gap_attempts"] == f"{ids[2]}:1"
    assert len({r.run_key for r in requests}) == 2
    gaps = setup.gaps()
    assert gaps["status"].tolist() == ["filling"] * 3 and gaps["attempts"].tolist() == [1, 1, 1]
    assert GapFillState.from_cursor(cursor).round_at == _ts("2026-10-17 06:00")

    # the daemon has created the runs (one not yet started, one started): no tick requests anything for those
    # gaps, not the same tick again, not one without the cursor (a fresh round), not the next day's round
    setup.add_run(requests[0], DagsterRunStatus.NOT_STARTED)
    setup.add_run(requests[1], DagsterRunStatus.STARTED)
    assert setup.tick(cursor)[0] == []
    fresh, _, reason = setup.tick(None)
    assert fresh == [] and "still filling: 3" in reason and "not_started" in reason and " started)" in reason
    setup.clock.at = ROUND + pd.Timedelta(days=1)
    assert setup.tick(cursor)[0] == []
    assert setup.statuses() == ["filling"] * 3
    # and a fill from the command line leaves them alone too
    assert main(["gaps", "fill", "--symbols", "EURUSD"]) == 0
    assert setup.statuses() == ["filling"] * 3


def test_ended_runs_judge_their_gaps_and_w1_follows(setup):
    requests, cursor, _ = setup.tick()
    before = setup.server.request_count(kind="aggs")
    runs = [setup.execute(r) for r in requests]
    assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS] * 2
    assert setup.server.request_count(kind="aggs") - before == 2  # one ranged request per range
    assert setup.statuses() == ["filling"] * 3  # judged by the sensor, not by the runs

    setup.clock.at = ROUND + pd.Timedelta(minutes=1)
    follow_ups, cursor, _ = setup.tick(cursor)
    gaps = setup.gaps()
    # Tuesday and Wednesday are back; Friday's run succeeded and the provider still lacks the bars
    assert gaps["status"].tolist() == ["filled", "filled", "unfillable"]
    assert gaps["filled_at"].iloc[:2].notna().all() and pd.isna(gaps["filled_at"].iloc[2])
    assert setup.store.count("EURUSD", "H1", _ts("2026-10-13"), _ts("2026-10-15")) == 48  # re-derived in the run

    # W1 is derived from M1 and stored: one weekly run re-derives the week the two fills touched
    [weekly] = follow_ups
    assert weekly.job_name == WEEKLY_JOB and list(weekly.asset_selection) == [candle_key("EURUSD", Timeframe.W1)]
    assert (weekly.tags[RANGE_START], weekly.tags[RANGE_END]) == ("2026-10-12", "2026-10-12")
    assert set(weekly.tags["massive/follows_runs"].split(",")) == {r.run_id for r in runs}
    assert weekly.tags["dagster/max_runtime"] == "3600"
    assert setup.execute(weekly).status is DagsterRunStatus.SUCCESS

    # nothing is left to request: filled gaps are done, unfillable ones are not retried unattended
    setup.clock.at = ROUND + pd.Timedelta(days=1)
    requests, _, reason = setup.tick(cursor)
    assert requests == [] and "0 fill run(s)" in reason
    assert setup.statuses() == ["filled", "filled", "unfillable"]


def test_failed_or_canceled_runs_put_their_gaps_back_to_detected(setup):
    requests, cursor, _ = setup.tick()
    by_range = {r.tags[RANGE_START]: r for r in requests}
    setup.server.set_faults(not_entitled=True)  # the API refuses: the run fails
    failed = setup.execute(by_range["2026-10-13"])
    assert failed.status is DagsterRunStatus.FAILURE
    queued = setup.add_run(by_range["2026-10-16"], DagsterRunStatus.NOT_STARTED)
    setup.instance.report_run_canceled(queued)  # canceled from the UI before it started
    assert setup.instance.get_run_by_id(queued.run_id).status is DagsterRunStatus.CANCELED

    setup.clock.at = ROUND + pd.Timedelta(minutes=1)
    assert setup.tick(cursor)[0] == []
    gaps = setup.gaps()
    assert gaps["status"].tolist() == ["detected"] * 3 and gaps["filled_at"].isna().all()

    # the next day's round tries them again, as a new attempt with its own run key
    setup.server.set_faults(not_entitled=False)
    setup.clock.at = ROUND + pd.Timedelta(days=1)
    again, _, _ = setup.tick(cursor)
    assert len(again) == 2 and {r.run_key for r in again}.isdisjoint({r.run_key for r in requests})
    assert all(a.endswith(":2") for r in again for a in r.tags["massive/gap_attempts"].split(","))
    assert setup.gaps()["attempts"].tolist() == [2, 2, 2]


def test_a_filling_gap_whose_run_never_appeared_is_judged_after_the_grace(setup):
    requests, cursor, _ = setup.tick()  # requested, but the daemon never created the runs
    setup.clock.at = ROUND + pd.Timedelta(minutes=5)
    assert setup.tick(cursor)[0] == [] and setup.statuses() == ["filling"] * 3
    # nor does a gap left `filling` by a lost cursor stay so for ever: its grace starts when first seen
    _, lost, reason = setup.tick(None)
    assert "waiting since 2026-10-17T06:05:30Z" in reason
    setup.clock.at = ROUND + pd.Timedelta(minutes=11)
    _, _, reason = setup.tick(cursor)
    assert setup.statuses() == ["detected"] * 3 and "no run found since 2026-10-17T06:00:30Z" in reason
    waiting = json.loads(lost)["waiting"]
    assert len(waiting) == 3 and set(waiting.values()) == {"2026-10-17T06:05:30Z"}


def test_the_round_is_daily_and_waits_for_the_days_detection(setup):
    settings = OperationsSettings()
    assert last_round_time(settings.gap_fill_cron, _ts("2026-10-17 05:59")) == _ts("2026-10-16 06:00")
    assert last_round_time(settings.gap_fill_cron, _ts("2026-10-17 06:00")) == _ts("2026-10-17 06:00")
    done = GapFillState(round_at=_ts("2026-10-17 06:00")).to_cursor()
    assert GapFillState.from_cursor(done).round_at == _ts("2026-10-17 06:00")
    assert GapFillState.from_cursor("{not json") == GapFillState()  # an unreadable cursor starts afresh
    # gaps detected after the day's round wait for the next one
    setup.clock.at = _ts("2026-10-17 14:00")
    requests, _, reason = setup.tick(done)
    assert requests == [] and "next round of fills after 0 6 * * *" in reason
    assert setup.statuses() == ["detected"] * 3
    # the next day's detection is still running at 06:00: the round waits for it
    detection = DagsterRun(job_name="gap_detection_job", run_id=make_new_run_id(), status=DagsterRunStatus.STARTED,
                           tags={"massive/purpose": "gap_detection"})
    setup.instance.add_run(detection)
    setup.clock.at = _ts("2026-10-18 06:00:30")
    requests, cursor, reason = setup.tick(done)
    assert requests == [] and f"waits for gap_detection_job run {detection.run_id[:8]}" in reason
    assert GapFillState.from_cursor(cursor).round_at == _ts("2026-10-17 06:00")
    setup.instance.report_run_canceled(detection)
    setup.clock.at = _ts("2026-10-18 06:01:30")
    requests, cursor, _ = setup.tick(cursor)
    assert len(requests) == 2 and GapFillState.from_cursor(cursor).round_at == _ts("2026-10-18 06:00")


def test_the_sensor_is_part_of_the_code_location(setup):
    sensor = setup.sensor
    assert sensor.minimum_interval_seconds == 60
    # the New York close jobs too: a fill's D1_NY and W1_NY follow-ups run in them
    assert {j.name for j in sensor.jobs} == {DAILY_JOB, WEEKLY_JOB, DAILY_NY_JOB, WEEKLY_NY_JOB}
    assert "gap_fill_job" not in {j.name for j in setup.defs.get_repository_def().get_all_jobs()}


def _new_york_bars(m1: pd.DataFrame, weekly: bool) -> pd.DataFrame:
    """D1_NY (W1_NY) bars by hand: M1 grouped by New York wall-clock date of (time - 17 h) (or the
    Sunday before it), each group stamped at 17:00 New York of that date, in UTC."""
    day = (m1["ts"].dt.tz_convert("America/New_York").dt.tz_localize(None) - pd.Timedelta(hours=17)).dt.normalize()
    if weekly:
        day = day - pd.to_timedelta((day.dt.dayofweek + 1) % 7, unit="D")
    bars = m1.groupby(day.to_numpy()).agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    stamps = (bars.index + pd.Timedelta(hours=17)).tz_localize("America/New_York").tz_convert("UTC")
    return bars.set_axis(stamps).rename_axis("ts").reset_index()


def test_a_fill_of_m1_re_derives_the_new_york_sessions_and_week_it_touched(setup):
    """EURUSD keeps D1_NY and W1_NY (forex gets the new_york_close convention): once the M1 fills have
    ended they follow like W1, each in its own job, over every New York session overlapping the filled
    UTC days, and afterwards equal a resample of the filled M1 on 17:00 New York days."""
    setup.server.set_faults(holes=_holes("tue", "wed", "fri"))  # stored, like the rest, with the holes
    assert main(["backfill", "--symbols", "EURUSD", "--timeframes", "D1_NY,W1_NY", "--start", "2026-10-12",
                 "--end", "2026-10-16"]) == 0
    setup.server.set_faults(holes=_holes("fri"))
    week = (_ts("2026-10-11 21:00"), _ts("2026-10-18 21:00"))  # Sunday 17:00 New York (EDT) to the next
    before = setup.store.read("EURUSD", "D1_NY", *week)
    requests, cursor, _ = setup.tick()
    assert [setup.execute(r).status for r in requests] == [DagsterRunStatus.SUCCESS] * 2
    setup.clock.at = ROUND + pd.Timedelta(minutes=1)
    follow_ups, cursor, _ = setup.tick(cursor)
    by_tf = {r.tags["massive/gap_timeframe"]: r for r in follow_ups}
    assert {tf: (r.job_name, r.tags[RANGE_START], r.tags[RANGE_END]) for tf, r in by_tf.items()} == {
        "W1": (WEEKLY_JOB, "2026-10-12", "2026-10-12"),
        # sessions opening Mon 12 (Mon 21:00 UTC to Tue 21:00) .. Fri 16 touch the filled 13, 14 and 16 Oct
        "D1_NY": (DAILY_NY_JOB, "2026-10-12", "2026-10-16"),
        "W1_NY": (WEEKLY_NY_JOB, "2026-10-11", "2026-10-11"),
    }
    assert list(by_tf["D1_NY"].asset_selection) == [candle_key("EURUSD", Timeframe.D1_NY)]
    assert [setup.execute(r).status for r in follow_ups] == [DagsterRunStatus.SUCCESS] * 3
    m1 = setup.store.read("EURUSD", "M1", *week)
    for tf, weekly in (("D1_NY", False), ("W1_NY", True)):
        stored = setup.store.read("EURUSD", tf, *week)[["ts", "open", "high", "low", "close", "volume"]]
        pd.testing.assert_frame_equal(stored.reset_index(drop=True), _new_york_bars(m1, weekly), check_dtype=False)
    after = setup.store.read("EURUSD", "D1_NY", *week).set_index("ts")["volume"]
    grew = after - before.set_index("ts")["volume"]
    # Tuesday's and Wednesday's hours came back into the sessions opening Monday and Tuesday evening
    assert list(grew[grew > 0].index) == [_ts("2026-10-12 21:00"), _ts("2026-10-13 21:00")]


def _store_a_week(store: CandleStore) -> None:
    """GBPUSD's M1, H1, D1 and W1 of the week from Monday 2026-10-12, as the assets would store them."""
    from massive_pipeline.core.resample import resample_bars
    from massive_pipeline_tests.bootstrap.test_coverage import minutes

    store.create_schema()
    bars = minutes("2026-10-12", "2026-10-16")
    for tf in (Timeframe.M1, Timeframe.H1, Timeframe.D1, Timeframe.W1):
        store.write_window("GBPUSD", tf, _ts("2026-10-12"), _ts("2026-10-17"),
                           resample_bars(bars, tf) if tf is not Timeframe.M1 else bars, now=_ts("2026-11-01"))


def test_where_d1_is_fetched_a_d1_fill_is_followed_by_w1_and_an_m1_fill_is_not(tmp_path):
    """W1 resampled from a fetched D1 follows the fills of D1, its source, not those of the base;
    the M1 fill's own run no longer holds D1 (fetched, not derived from M1)."""
    from massive_pipeline.core.catalog import parse_catalog
    from massive_pipeline.quality.gap_fill import refreshed_timeframes
    from massive_pipeline.quality.gap_fill_sensor import follow_up_requests

    spec = parse_catalog("""\
symbols:
  - {symbol: GBPUSD, ticker: "C:GBPUSD", asset_class: forex, priority: high, calendar: forex, start: 2025-06-01,
     fetch: [D1]}
""").get("GBPUSD")
    with CandleStore(f"sqlite:///{tmp_path}/c.sqlite") as store:
        _store_a_week(store)
        assert refreshed_timeframes(store, spec, Timeframe.M1) == [Timeframe.M1, Timeframe.H1]
        # W1 is refreshed after a D1 fill, in a run of its own job (the follow-up below)
        assert refreshed_timeframes(store, spec, Timeframe.D1) == [Timeframe.D1, Timeframe.W1]

        def fill_run(tf: Timeframe) -> tuple[DagsterRun, object, Timeframe]:
            run = DagsterRun(job_name=DAILY_JOB, run_id=make_new_run_id(),
                             tags={RANGE_START: "2026-10-13", RANGE_END: "2026-10-14"})
            return run, spec, tf

        [weekly] = follow_up_requests(store, [fill_run(Timeframe.D1)], ROUND)
        assert weekly.job_name == WEEKLY_JOB and list(weekly.asset_selection) == [candle_key("GBPUSD", Timeframe.W1)]
        assert (weekly.tags[RANGE_START], weekly.tags[RANGE_END]) == ("2026-10-12", "2026-10-12")
        # the M1 fill re-derives nothing W1 is built from; the New York timeframes (not stored here) neither
        assert follow_up_requests(store, [fill_run(Timeframe.M1)], ROUND) == []


def test_where_d1_is_derived_an_m1_fill_re_derives_d1_and_is_followed_by_w1(tmp_path):
    """A pair that fetches only M1 resamples W1 from its D1 (m1 -> d1 -> w1): the M1 fill's run
    re-derives D1 in the daily job, and W1 follows in a run of its own, as when W1 came from M1."""
    from massive_pipeline.core.catalog import parse_catalog
    from massive_pipeline.quality.gap_fill import refreshed_timeframes
    from massive_pipeline.quality.gap_fill_sensor import follow_up_requests

    spec = parse_catalog("""\
symbols:
  - {symbol: GBPUSD, ticker: "C:GBPUSD", asset_class: forex, priority: high, calendar: forex, start: 2025-06-01}
""").get("GBPUSD")
    assert spec.derived_from(Timeframe.W1) is Timeframe.D1
    with CandleStore(f"sqlite:///{tmp_path}/c.sqlite") as store:
        _store_a_week(store)
        assert refreshed_timeframes(store, spec, Timeframe.M1) == [Timeframe.M1, Timeframe.H1, Timeframe.D1]
        run = DagsterRun(job_name=DAILY_JOB, run_id=make_new_run_id(),
                         tags={RANGE_START: "2026-10-13", RANGE_END: "2026-10-14"})
        [weekly] = follow_up_requests(store, [(run, spec, Timeframe.M1)], ROUND)
        assert weekly.job_name == WEEKLY_JOB and list(weekly.asset_selection) == [candle_key("GBPUSD", Timeframe.W1)]
        assert (weekly.tags[RANGE_START], weekly.tags[RANGE_END]) == ("2026-10-12", "2026-10-12")
