"""W1 resampled from the stored D1 is the W1 resampled from M1, whether that D1 was fetched or
filled by a bootstrap (SQLite and PostgreSQL, the bundled server's data).

- Two catalogs over one ticker, one fetching GBPUSD's D1 and one deriving it (as GBPUSDM, so the
  two series sit side by side in one store), each backfilling only W1 over three weeks. The
  fetching one asks the server for day bars only: its W1 needs no minute.
- The bootstrap's way for a pair that fetches only M1: the D1 days before a cutoff filled from the
  day aggregates (`provider_days_before`, one request), M1 and D1 derived from it after, W1 from
  D1; and a refresh without the option is still one minute request per day partition.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, instance_for_test

from massive_pipeline.candles.jobs import job_name_for
from massive_pipeline.candles.partitions import PlannedRange
from massive_pipeline.cli.launch import BackfillError, run_candle_backfill, run_ranged
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.resample import resample_bars
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.store import CandleStore

# three whole weeks, Monday 2026-09-21 .. Sunday 2026-10-11
FIRST, LAST = dt.date(2026, 9, 21), dt.date(2026, 10, 11)
ENTRY = ('  - {{symbol: {symbol}, ticker: "C:GBPUSD", asset_class: forex, priority: high, calendar: forex, '
         'start: 2025-06-01{fetch}}}\n')


@pytest.fixture
def env(pipeline_env, monkeypatch, database_url):
    monkeypatch.setenv("MASSIVE_DATABASE_URL", database_url)
    return pipeline_env


def _w1_backfill(tmp_path: Path, symbol: str, database_url: str, fetch: str) -> pd.DataFrame:
    """`symbol`'s W1 bars after a W1-only backfill of the C:GBPUSD entry `fetch` describes."""
    path = tmp_path / f"{symbol}.yaml"
    path.write_text("symbols:\n" + ENTRY.format(symbol=symbol, fetch=fetch))
    catalog = load_catalog(path)
    with instance_for_test() as instance:
        summaries = run_candle_backfill(build_definitions(catalog), instance, [catalog.get(symbol)],
                                        [Timeframe.W1], FIRST, LAST)
        assert all(s.success for s in summaries)
        weeks = instance.get_materialized_partitions(AssetKey(["candles", symbol.lower(), "w1"]))
    assert weeks == {"2026-09-21", "2026-09-28", "2026-10-05"}
    store = CandleStore(database_url)
    w1 = store.read(symbol, Timeframe.W1)
    store.dispose()
    return w1


def _timespans(env) -> set[str]:
    """The timespans of the aggregates requests the server logged (`/range/{mult}/{span}/...`)."""
    return {r.path.split("/")[7] for r in env.requests if r.kind == "aggs"}


def test_w1_from_a_fetched_d1_equals_w1_from_m1(env, database_url, tmp_path):
    from_d1 = _w1_backfill(tmp_path, "GBPUSD", database_url, ", fetch: [D1]")
    assert _timespans(env) == {"day"}  # the base was never asked for: W1 needs only the day bars
    assert set(from_d1["source"]) == {"derived:D1"}
    env.clear_requests()
    from_m1 = _w1_backfill(tmp_path, "GBPUSDM", database_url, "")
    assert _timespans(env) == {"minute"}
    assert set(from_m1["source"]) == {"derived:D1"}  # from its D1, itself derived from the minutes
    store = CandleStore(database_url)
    straight = resample_bars(store.read("GBPUSDM", Timeframe.M1), Timeframe.W1)
    store.dispose()
    for col in ("open", "high", "low", "close", "volume"):
        assert np.allclose(straight[col].to_numpy(), from_m1[col].to_numpy(), rtol=1e-12, atol=0), col

    assert list(from_d1["ts"]) == list(from_m1["ts"]) == [pd.Timestamp(d, tz="UTC") for d in
                                                         ("2026-09-21", "2026-09-28", "2026-10-05")]
    for col in ("open", "high", "low", "close", "volume"):
        assert np.allclose(from_d1[col].to_numpy(), from_m1[col].to_numpy(), rtol=1e-12, atol=0), col


def _load(tmp_path: Path, symbol: str):
    path = tmp_path / f"{symbol}.yaml"
    path.write_text("symbols:\n" + ENTRY.format(symbol=symbol, fetch=""))
    catalog = load_catalog(path)
    return catalog, catalog.get(symbol)


def test_a_bootstrap_day_fill_then_w1_from_d1_equals_w1_from_m1_and_refresh_stays_one_request(
        env, database_url, tmp_path):
    catalog, spec = _load(tmp_path, "GBPUSD")
    assert spec.derived_from(Timeframe.W1) is Timeframe.D1 and spec.derived_from(Timeframe.D1) is Timeframe.M1
    defs = build_definitions(catalog)
    daily, weekly = job_name_for(spec, Timeframe.D1), job_name_for(spec, Timeframe.W1)
    cutoff = dt.date(2026, 9, 30)  # a Wednesday: the middle week is half filled, half derived
    last_fill = (cutoff - dt.timedelta(days=1)).isoformat()
    store = CandleStore(database_url)
    with instance_for_test() as instance:
        fill = run_ranged(defs, instance, daily, [PlannedRange(spec, Timeframe.D1, FIRST.isoformat(), last_fill)],
                          tags={}, provider_days_before=cutoff.isoformat())
        assert fill.success and fill.api_requests == 1 and _timespans(env) == {"day"}
        mat = instance.get_latest_materialization_event(AssetKey(["candles", "gbpusd", "d1"])).asset_materialization
        assert mat.metadata["filled_from"].value == "massive day aggregates (not derived from M1)"
        assert store.first_bar_ts("GBPUSD", Timeframe.M1) is None  # no minute was asked for
        env.clear_requests()
        recent = [PlannedRange(spec, tf, cutoff.isoformat(), LAST.isoformat()) for tf in (Timeframe.M1, Timeframe.D1)]
        assert run_ranged(defs, instance, daily, recent, tags={}).success
        assert _timespans(env) == {"minute"}
        assert run_ranged(defs, instance, weekly, [PlannedRange(spec, Timeframe.W1, "2026-09-21", "2026-10-05")],
                          tags={}).success
        # the refresh of one day, no option: one minute request, D1 derived from it as before
        env.clear_requests()
        day = [PlannedRange(spec, tf, LAST.isoformat(), LAST.isoformat()) for tf in (Timeframe.M1, Timeframe.D1)]
        refresh = run_ranged(defs, instance, daily, day, tags={})
        assert refresh.success and refresh.api_requests == 1 and _timespans(env) == {"minute"}
    d1 = store.read("GBPUSD", Timeframe.D1)
    w1 = store.read("GBPUSD", Timeframe.W1)
    store.dispose()
    filled = d1[d1["ts"] < pd.Timestamp(cutoff, tz="UTC")]
    assert len(filled) and set(filled["source"]) == {"massive"}
    assert set(d1[d1["ts"] >= pd.Timestamp(cutoff, tz="UTC")]["source"]) == {"derived:M1"}
    assert set(w1["source"]) == {"derived:D1"}

    # the reference: the same ticker's minutes over all three weeks, resampled straight to weeks
    ref_catalog, ref_spec = _load(tmp_path, "GBPUSDM")
    with instance_for_test() as instance:
        assert all(s.success for s in run_candle_backfill(build_definitions(ref_catalog), instance, [ref_spec],
                                                          [Timeframe.M1], FIRST, LAST))
    store = CandleStore(database_url)
    from_m1 = resample_bars(store.read("GBPUSDM", Timeframe.M1), Timeframe.W1)
    store.dispose()
    assert list(w1["ts"]) == list(from_m1["ts"]) == [pd.Timestamp(d, tz="UTC") for d in
                                                    ("2026-09-21", "2026-09-28", "2026-10-05")]
    for col in ("open", "high", "low", "close", "volume"):
        assert np.allclose(w1[col].to_numpy(), from_m1[col].to_numpy(), rtol=1e-12, atol=0), col


def test_a_day_fill_across_its_cutoff_is_refused_in_one_line(env, database_url, tmp_path):
    catalog, spec = _load(tmp_path, "GBPUSD")
    with instance_for_test() as instance, pytest.raises(BackfillError) as raised:
        run_ranged(build_definitions(catalog), instance, job_name_for(spec, Timeframe.D1),
                   [PlannedRange(spec, Timeframe.D1, FIRST.isoformat(), LAST.isoformat())], tags={},
                   provider_days_before="2026-09-30")
    assert "GBPUSD D1 provider_days_before 2026-09-30 falls inside the run's window 2026-09-21..2026-10-12" in str(
        raised.value)
    assert not env.requests  # refused before any request
