"""A short or empty provider answer never deletes stored history; revisions are recorded.

End to end: the bundled server → the code location's candle jobs → the store, on SQLite and real
PostgreSQL. The server's `holes` switch makes it answer a range that has data with nothing (or with
part of the bars), as the real API does on a bad day; `spikes` makes a second fetch return changed
values for exactly the named bars.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, instance_for_test

from massive_pipeline.cli import main as cli_main
from massive_pipeline.cli.launch import run_candle_backfill
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.store import CandleStore

# Wed 2026-10-07 .. Fri 2026-10-09: three forex trading days
START, END = dt.date(2026, 10, 7), dt.date(2026, 10, 9)
LO = pd.Timestamp(START, tz="UTC")
HI = pd.Timestamp(END, tz="UTC") + pd.Timedelta(days=1)
MID = pd.Timestamp("2026-10-08 12:00", tz="UTC")
TIMEFRAMES = [Timeframe.M1, Timeframe.H1, Timeframe.D1]


def _ms(ts: pd.Timestamp) -> int:
    return ts.value // 1_000_000


@pytest.fixture
def env(pipeline_env, monkeypatch, database_url):
    monkeypatch.setenv("MASSIVE_DATABASE_URL", database_url)
    return pipeline_env


def _backfill(instance, *, accept_removals: bool = False):
    catalog = load_catalog()
    defs = build_definitions(catalog)
    return run_candle_backfill(
        defs, instance, [catalog.get("EURUSD")], TIMEFRAMES, START, END, accept_removals=accept_removals
    )


def _partition_metadata(instance, timeframe: Timeframe, run_id: str) -> dict[str, dict]:
    """Each partition's materialization metadata of one run."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(["candles", "eurusd", timeframe.key])), limit=1000
    ).records
    out = {}
    for record in records:
        if record.run_id == run_id:
            mat = record.event_log_entry.asset_materialization
            out[mat.partition] = {k: v.value for k, v in mat.metadata.items()}
    return out


def _answer_checks(instance, run_id: str) -> dict[str, object]:
    """{partition: evaluation} of the M1 `answer_covers_store` check in one run."""
    out = {}
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records:
        ev = record.event_log_entry.dagster_event.event_specific_data
        if ev.asset_key.path[-1] == "m1" and ev.check_name == "answer_covers_store":
            out[ev.partition] = ev
    return out


def _snapshot(store: CandleStore) -> tuple[str, dict[str, int]]:
    return store.checksum("EURUSD"), {tf.value: store.count("EURUSD", tf) for tf in TIMEFRAMES}


def test_empty_and_half_answers_keep_every_stored_bar(env, database_url):
    store = CandleStore(database_url)
    with instance_for_test() as instance:
        _backfill(instance)
        digest, counts = _snapshot(store)
        assert counts["M1"] > 3 * 1300 and counts["H1"] >= 60 and counts["D1"] == 3

        env.set_faults(holes=[[_ms(LO), _ms(HI)]])  # status OK, no results, for a range that has data
        empty = _backfill(instance)
        assert _snapshot(store) == (digest, counts)
        m1 = next(s for s in empty if Timeframe.M1 in s.timeframes)
        assert m1.missing_from_answer["M1"] == counts["M1"] and m1.removed["M1"] == 0
        meta = _partition_metadata(instance, Timeframe.M1, m1.run_id)
        assert {p: m["answer_empty"] for p, m in meta.items()} == dict.fromkeys(
            ["2026-10-07", "2026-10-08", "2026-10-09"], True)
        assert all(m["bars_missing_from_answer"] == counts["M1"] and m["rows_removed"] == 0 for m in meta.values())
        checks = _answer_checks(instance, m1.run_id)
        per_day = {day: store.count("EURUSD", "M1", pd.Timestamp(day, tz="UTC"),
                                    pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)) for day in checks}
        assert sorted(checks) == ["2026-10-07", "2026-10-08", "2026-10-09"]
        for day, ev in checks.items():  # a WARN per partition, naming how many stored bars the answer lacked
            assert not ev.passed and ev.severity.value == "WARN"
            assert ev.metadata["bars_missing_from_answer"].value == per_day[day] > 1000
            assert "kept" in ev.description

        env.set_faults(holes=[[_ms(MID), _ms(HI)]])  # only the first half of the bars
        half = _backfill(instance)
        assert _snapshot(store) == (digest, counts)
        kept_second_half = store.count("EURUSD", "M1", MID, HI)
        m1 = next(s for s in half if Timeframe.M1 in s.timeframes)
        assert m1.missing_from_answer["M1"] == kept_second_half > 1000
        checks = _answer_checks(instance, m1.run_id)
        assert checks["2026-10-07"].passed and not checks["2026-10-08"].passed and not checks["2026-10-09"].passed

        removed = _backfill(instance, accept_removals=True)
        m1 = next(s for s in removed if Timeframe.M1 in s.timeframes)
        assert m1.removed["M1"] == kept_second_half
        assert store.count("EURUSD", "M1", MID, HI) == 0
        assert store.count("EURUSD", "M1", LO, MID) == counts["M1"] - kept_second_half
        meta = _partition_metadata(instance, Timeframe.M1, m1.run_id)
        assert "removed_bars" in meta["2026-10-08"] and meta["2026-10-08"]["rows_removed"] == kept_second_half
    store.dispose()


def test_revised_bars_are_recorded_with_old_and_new_values(env, database_url, capsys):
    store = CandleStore(database_url)
    with instance_for_test() as instance:
        _backfill(instance)
        before = store.read("EURUSD", "M1", LO, HI).set_index("ts")
        revised = [before.index[100], before.index[2000]]
        env.set_faults(spikes=[_ms(ts) for ts in revised])  # the provider now serves other values for two bars
        summaries = _backfill(instance)
    m1 = next(s for s in summaries if Timeframe.M1 in s.timeframes)
    assert m1.revised["M1"] == 2
    after = store.read("EURUSD", "M1", LO, HI).set_index("ts")
    revisions = store.revisions(["EURUSD"], ["M1"])
    assert list(revisions["ts"]) == revised
    for row in revisions.itertuples():
        assert row.old_close == before.loc[row.ts, "close"] and row.new_close == after.loc[row.ts, "close"]
        assert row.old_close != row.new_close and row.max_rel_change > 0 and row.run_id == m1.run_id
    assert len(after) == len(before)

    assert cli_main(["revisions", "--symbols", "EURUSD", "--timeframes", "M1", "--since", "2020-01-01"]) == 0
    out = capsys.readouterr().out
    assert "2 revised bar(s) in 1 series" in out
    assert all(ts.strftime("%Y-%m-%d %H:%M:%S") in out for ts in revised)
    store.dispose()


def test_forming_bars_are_marked_and_left_out_of_exports_unless_asked(tmp_path, monkeypatch):
    store = CandleStore(f"sqlite:///{tmp_path / 'forming.sqlite'}")
    store.create_schema()
    day = pd.Timestamp("2026-10-08", tz="UTC")
    bars = pd.DataFrame({"ts": [day], "open": [1.0], "high": [1.2], "low": [0.9], "close": [1.1], "volume": [5.0]})
    forming = store.write_window("EURUSD", "D1", day, day + pd.Timedelta(days=1), bars, now=day + pd.Timedelta(hours=5))
    assert forming.rows_forming == 1
    assert not store.read("EURUSD", "D1")["complete"].any()
    assert store.read("EURUSD", "D1", include_forming=False).empty
    later = bars.assign(close=1.15)
    done = store.write_window("EURUSD", "D1", day, day + pd.Timedelta(days=1), later, now=day + pd.Timedelta(days=1, minutes=5))
    # the bar finished: no revision, since it was still forming when stored
    assert (done.rows_forming, done.rows_revised) == (0, 0)
    assert store.read("EURUSD", "D1")["complete"].all()
    assert store.revisions().empty

    monkeypatch.setenv("MASSIVE_DATABASE_URL", f"sqlite:///{tmp_path / 'forming.sqlite'}")
    monkeypatch.delenv("MASSIVE_CATALOG", raising=False)
    store.write_window("EURUSD", "D1", day + pd.Timedelta(days=1), day + pd.Timedelta(days=2),
                       bars.assign(ts=[day + pd.Timedelta(days=1)]), now=day + pd.Timedelta(days=1, hours=3))
    out = tmp_path / "d1.csv"
    assert cli_main(["export", "EURUSD", "D1", "--start", "2026-10-08", "--end", "2026-10-09", "-o", str(out)]) == 0
    assert len(pd.read_csv(out)) == 1
    assert cli_main(["export", "EURUSD", "D1", "--start", "2026-10-08", "--end", "2026-10-09", "-o", str(out),
                     "--include-forming"]) == 0
    assert len(pd.read_csv(out)) == 2
    store.dispose()


def test_derived_bars_stay_when_their_base_was_trimmed(env, database_url):
    store = CandleStore(database_url)
    with instance_for_test() as instance:
        _backfill(instance)
        digest, counts = _snapshot(store)
        h1_before = store.read("EURUSD", "H1")
        # retention trims M1 up to the middle of the range (not on an H1/D1 boundary)
        store.delete_before("EURUSD", "M1", MID + pd.Timedelta(minutes=30))
        catalog = load_catalog()
        defs = build_definitions(catalog)
        env.set_faults(holes=[[_ms(LO), _ms(HI)]])  # and the provider has nothing to add
        run_candle_backfill(defs, instance, [catalog.get("EURUSD")], [Timeframe.H1, Timeframe.D1], START, END)
    h1 = store.read("EURUSD", "H1")
    assert list(h1["ts"]) == list(h1_before["ts"])
    assert (h1["close"].to_numpy() == h1_before["close"].to_numpy()).all()
    assert store.count("EURUSD", "D1") == counts["D1"]
    assert store.revisions(timeframes=["H1", "D1"]).empty
    store.dispose()


def test_a_forming_d1_never_rebuilt_is_stale_by_verify(tmp_path):
    from massive_pipeline.quality.verify import verify

    store = CandleStore(f"sqlite:///{tmp_path / 'verify.sqlite'}")
    store.create_schema()
    day = pd.Timestamp("2026-10-08", tz="UTC")  # a Thursday: forex trades all of it and the next day
    bars = pd.DataFrame({"ts": [day], "open": [1.0], "high": [1.2], "low": [0.9], "close": [1.1], "volume": [5.0]})
    store.write_window("EURUSD", "D1", day, day + pd.Timedelta(days=1), bars, now=day + pd.Timedelta(minutes=5))
    spec = load_catalog().get("EURUSD")
    same_day = verify(store, [(spec, [Timeframe.D1])], now=day + pd.Timedelta(hours=20)).iloc[0]
    assert "trading behind" not in same_day["detail"]
    next_day = verify(store, [(spec, [Timeframe.D1])], now=day + pd.Timedelta(days=1, hours=3)).iloc[0]
    # measured from 00:05, when the bar was built, not from the end of the day it had not seen yet
    assert "trading behind" in next_day["detail"], next_day["detail"]
    store.dispose()


def test_a_delayed_answer_with_malformed_rows_stores_the_rest_and_quarantines_them(env, database_url):
    store = CandleStore(database_url)
    with instance_for_test() as instance:
        _backfill(instance)
        stored = store.read("EURUSD", "M1", LO, HI)
        bad_null, bad_text = stored["ts"].iloc[50], stored["ts"].iloc[1500]
        env.set_faults(
            delayed_status=True,
            problem_fields=[[_ms(bad_null), "o", "null"], [_ms(bad_text), "h", "text"]],
            revised_bars=[_ms(stored["ts"].iloc[7])],
        )
        summaries = _backfill(instance)
        m1 = next(s for s in summaries if Timeframe.M1 in s.timeframes)
        assert m1.success
        meta = _partition_metadata(instance, Timeframe.M1, m1.run_id)["2026-10-07"]
        assert meta["provider_status"] == "DELAYED" and meta["provider_problem_rows"] == 2
    rejected = store.rejected("EURUSD", "M1").set_index("ts")
    assert "o is null" in rejected.loc[bad_null, "reason"]
    assert "h is" in rejected.loc[bad_text, "reason"] and "not a number" in rejected.loc[bad_text, "reason"]
    # the malformed copies were refused; the good bars stored before stay, and the ranged fetch went on
    after = store.read("EURUSD", "M1", LO, HI)
    assert len(after) == len(stored)
    assert (after.set_index("ts").loc[[bad_null, bad_text], "open"] == stored.set_index("ts").loc[[bad_null, bad_text], "open"]).all()
    assert list(store.revisions(["EURUSD"], ["M1"])["ts"]) == [stored["ts"].iloc[7]]
    store.dispose()
