"""Candle store behaviour on SQLite and on a real PostgreSQL server.

PostgreSQL tests run in a fresh database created for the session (dropped at the end) on the
server named by MASSIVE_TEST_POSTGRES_URL. They fail, never skip, when the server is unreachable.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.store import (
    CandleStore,
    StoreConfigError,
    StoreError,
    StoreUnavailableError,
    WriteResult,
    bulk_postgres,
    bulk_sqlite,
    mask_url,
    resolve_database_url,
)
from massive_pipeline.store.schema import candles

PG_BASE_URL = os.environ.get(
    "MASSIVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TABLES = ("candles", "sync_status", "rejected_candles", "data_gaps", "snapshots")
T0 = pd.Timestamp("2024-03-04 00:00", tz="UTC")
MIN = pd.Timedelta(minutes=1)


# -- fixtures -------------------------------------------------------------------------------------


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new, empty PostgreSQL database; its URL is yielded and the database dropped afterwards."""
    base = make_url(PG_BASE_URL)
    name = f"massive_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    problem = None
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except SQLAlchemyError as err:
        problem = " ".join(str(err.orig or err).split())
    if problem is not None:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL is required for the store tests but {mask_url(base)} is unreachable "
            f"(set MASSIVE_TEST_POSTGRES_URL to a server where databases can be created): {problem}",
            pytrace=False,
        )
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with scratch_database() as url:
        yield url


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty store with the schema created."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'candles.sqlite'}"
    else:
        url = request.getfixturevalue("pg_url")
    with CandleStore(url) as store:
        store.create_schema()
        if store.dialect == "postgresql":
            with store.engine.begin() as conn:
                conn.exec_driver_sql(f"TRUNCATE {', '.join(TABLES)}")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[CandleStore]:
    with CandleStore(store_url) as s:
        yield s


def make_bars(start: pd.Timestamp, n: int, *, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """`n` M1 bars from `start` with some NaN vwap and NA trades."""
    rng = np.random.default_rng(seed)
    close = 1.1 + rng.random(n) / 100 + shift
    open_ = close - rng.random(n) / 1000
    vwap = (open_ + close) / 2
    vwap[::7] = np.nan
    trades = pd.array(rng.integers(1, 500, n), dtype="Int64")
    trades[::5] = pd.NA
    return pd.DataFrame(
        {
            "ts": pd.date_range(start, periods=n, freq="1min", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) + 0.0005,
            "low": np.minimum(open_, close) - 0.0005,
            "close": close,
            "volume": rng.random(n) * 1000,
            "vwap": vwap,
            "trades": trades,
        }
    )


def window_of(bars: pd.DataFrame, extra: int = 0) -> tuple[pd.Timestamp, pd.Timestamp]:
    return bars["ts"].iloc[0], bars["ts"].iloc[-1] + MIN * (1 + extra)


BAR_COLUMNS = ["ts", "open", "high", "low", "close", "volume", "vwap", "trades"]


def assert_bars_equal(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        actual[BAR_COLUMNS].reset_index(drop=True), expected[BAR_COLUMNS].reset_index(drop=True)
    )


# -- schema ---------------------------------------------------------------------------------------


def test_create_schema_is_idempotent_and_keeps_data(store: CandleStore) -> None:
    bars = make_bars(T0, 30)
    store.replace_window("EURUSD", "M1", *window_of(bars), bars)
    store.create_schema()
    store.create_schema()
    assert set(TABLES) <= set(inspect(store.engine).get_table_names())
    assert store.count() == 30


def test_empty_bars_clear_the_window_only_when_removals_are_accepted(store: CandleStore) -> None:
    bars = make_bars(T0, 30)
    store.replace_window("EURUSD", "M1", *window_of(bars), bars)
    empty = pd.DataFrame(columns=["ts", "open", "high", "low", "close", "volume"])
    kept = store.write_window("EURUSD", "M1", T0 + 10 * MIN, T0 + 20 * MIN, empty)
    assert (kept.rows_written, kept.rows_deleted, kept.rows_missing_from_answer, kept.rows_removed) == (0, 0, 10, 0)
    assert kept.answer_empty
    assert store.count("EURUSD", "M1") == 30
    result = store.replace_window("EURUSD", "M1", T0 + 10 * MIN, T0 + 20 * MIN, empty)
    assert (result.rows_written, result.rows_deleted, result.rows_removed) == (0, 10, 10)
    assert list(result.missing["ts"]) == list(bars["ts"].iloc[10:20])
    assert store.count("EURUSD", "M1") == 20


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_create_schema_on_a_fresh_database(backend: str, tmp_path: Path) -> None:
    @contextmanager
    def fresh() -> Iterator[str]:
        if backend == "sqlite":
            yield f"sqlite:///{tmp_path / 'fresh.sqlite'}"
        else:
            with scratch_database() as url:
                yield url

    with fresh() as url:
        stores = [CandleStore(url) for _ in range(4)]
        errors = run_concurrently([s.create_schema for s in stores])
        for s in stores:
            s.dispose()
        assert errors == []
        with CandleStore(url) as s:
            assert set(TABLES) <= set(inspect(s.engine).get_table_names())


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "pragmas.sqlite"
    with CandleStore(f"sqlite:///{path}") as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


# -- replace_window -------------------------------------------------------------------------------


def test_replace_window_twice_with_same_bars_is_idempotent(store: CandleStore) -> None:
    bars = make_bars(T0, 240)
    first = store.replace_window("EURUSD", Timeframe.M1, *window_of(bars), bars)
    digest = store.checksum()
    second = store.replace_window("EURUSD", "M1", *window_of(bars), bars)
    assert first == WriteResult(240, 0, bars["ts"].iloc[0], bars["ts"].iloc[-1], rows_new=240)
    assert second == WriteResult(
        240, 240, bars["ts"].iloc[0], bars["ts"].iloc[-1], rows_unchanged=240, stored_before=240
    )
    assert store.count("EURUSD", "M1") == 240
    assert store.checksum() == digest
    assert_bars_equal(store.read("EURUSD", "M1"), bars)


def test_replace_window_with_changed_bars_leaves_neighbours_untouched(store: CandleStore) -> None:
    hours = [make_bars(T0 + pd.Timedelta(hours=h), 60, seed=h) for h in range(3)]
    for bars in hours:
        store.replace_window("XAUUSD", "M1", *window_of(bars), bars)
    other = make_bars(T0 + pd.Timedelta(minutes=75), 10, seed=9)
    store.replace_window("XAUUSD", "M5", *window_of(other), other)
    before = {h: store.read("XAUUSD", "M1", *window_of(hours[h])) for h in (0, 2)}

    changed = hours[1].drop(index=17).reset_index(drop=True)
    changed["close"] = changed["close"] + 0.25
    result = store.replace_window("XAUUSD", "M1", *window_of(hours[1]), changed)

    assert (result.rows_written, result.rows_deleted) == (59, 60)
    assert_bars_equal(store.read("XAUUSD", "M1", *window_of(hours[1])), changed)
    for h in (0, 2):
        pd.testing.assert_frame_equal(store.read("XAUUSD", "M1", *window_of(hours[h])), before[h])
    assert_bars_equal(store.read("XAUUSD", "M5"), other)
    assert store.count("XAUUSD", "M1") == 179


@pytest.mark.parametrize("offset", [-1, 60])
def test_bars_outside_the_window_are_refused(store: CandleStore, offset: int) -> None:
    bars = make_bars(T0, 60)
    store.replace_window("EURUSD", "M1", *window_of(bars), bars)
    digest = store.checksum()
    stray = make_bars(T0 + offset * MIN, 1, seed=3)
    with pytest.raises(ValueError, match="outside the window") as info:
        store.replace_window("EURUSD", "M1", *window_of(bars), pd.concat([bars.iloc[1:-1], stray]))
    assert str(stray["ts"].iloc[0]) in str(info.value)
    assert store.checksum() == digest


def test_duplicate_timestamps_are_refused(store: CandleStore) -> None:
    bars = make_bars(T0, 10)
    with pytest.raises(ValueError, match="duplicate bar timestamps"):
        store.replace_window("EURUSD", "M1", *window_of(bars), pd.concat([bars, bars.iloc[[4]]]))
    assert store.count() == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.assign(ts=b["ts"].dt.tz_localize(None)), "timezone-aware"),
        (lambda b: b.drop(columns=["volume"]), "volume"),
        (lambda b: b.assign(trades=b["trades"].astype("float64") + 0.5), "whole numbers"),
    ],
)
def test_malformed_bars_are_refused(
    store: CandleStore, change: Callable[[pd.DataFrame], pd.DataFrame], message: str
) -> None:
    bars = make_bars(T0, 10)
    with pytest.raises(ValueError, match=message):
        store.replace_window("EURUSD", "M1", *window_of(bars), change(bars))


def test_bad_arguments_are_named(store: CandleStore) -> None:
    bars = make_bars(T0, 10)
    with pytest.raises(ValueError, match="unknown timeframe 'M2'"):
        store.replace_window("EURUSD", "M2", *window_of(bars), bars)
    with pytest.raises(ValueError, match="symbol must be"):
        store.replace_window("A" * 17, "M1", *window_of(bars), bars)
    with pytest.raises(ValueError, match="must be before end"):
        store.replace_window("EURUSD", "M1", T0, T0, bars.iloc[:0])


def test_nan_close_is_refused_and_old_rows_stay(store: CandleStore) -> None:
    bars = make_bars(T0, 60)
    store.replace_window("EURUSD", "M1", *window_of(bars), bars)
    digest = store.checksum()
    broken = make_bars(T0, 60, shift=1.0)
    broken.loc[30, "close"] = np.nan
    with pytest.raises(ValueError, match="'close' has missing values"):
        store.replace_window("EURUSD", "M1", *window_of(bars), broken)
    assert store.checksum() == digest


def _bulk_insert_name(store: CandleStore) -> tuple[object, str]:
    return (bulk_postgres, "copy_bars") if store.dialect == "postgresql" else (bulk_sqlite, "insert_bars")


def test_failure_after_the_new_rows_are_written_keeps_the_old_rows(
    store: CandleStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    bars = make_bars(T0, 120)
    store.replace_window("EURUSD", "M1", *window_of(bars), bars)
    digest = store.checksum()
    module, name = _bulk_insert_name(store)
    real_insert = getattr(module, name)

    def insert_then_crash(conn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        real_insert(conn, *args, **kwargs)
        raise RuntimeError("simulated crash after the insert")

    monkeypatch.setattr(module, name, insert_then_crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        store.replace_window("EURUSD", "M1", *window_of(bars), make_bars(T0, 100, shift=2.0))
    assert store.count() == 120
    assert store.checksum() == digest


def test_database_error_mid_write_is_wrapped_and_rolled_back(
    store: CandleStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    bars = make_bars(T0, 120)
    store.replace_window("EURUSD", "M1", *window_of(bars), bars)
    digest = store.checksum()
    module, name = _bulk_insert_name(store)
    real_insert = getattr(module, name)

    def insert_then_fail_in_sql(conn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        real_insert(conn, *args, **kwargs)
        conn.execute(text("SELECT no_such_column FROM candles"))

    monkeypatch.setattr(module, name, insert_then_fail_in_sql)
    with pytest.raises(StoreError) as info:
        store.replace_window("EURUSD", "M1", *window_of(bars), make_bars(T0, 100, shift=2.0))
    message = str(info.value)
    assert store.url_display in message
    assert "write_window(EURUSD M1" in message
    assert "no_such_column" in message
    assert store.checksum() == digest


def test_operation_on_a_missing_schema_names_store_and_operation(tmp_path: Path) -> None:
    with (
        CandleStore(f"sqlite:///{tmp_path / 'empty.sqlite'}") as store,
        pytest.raises(StoreError, match=r"read\(EURUSD M1\) failed: .*no such table"),
    ):
        store.read("EURUSD", "M1")


# -- reads ----------------------------------------------------------------------------------------


def test_read_round_trips_values_in_utc_and_respects_the_half_open_window(store: CandleStore) -> None:
    bars = make_bars(T0, 50)
    shuffled = bars.sample(frac=1.0, random_state=1)
    store.replace_window("BTCUSD", "M1", *window_of(bars, extra=5), shuffled, source="replay")
    frame = store.read("BTCUSD", "M1")

    assert list(frame.columns) == [*BAR_COLUMNS, "source", "ingested_at", "complete"]
    assert frame["complete"].all()  # bars of 2024 stored now: their periods have ended
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert str(frame["ingested_at"].dtype) == "datetime64[ns, UTC]"
    assert_bars_equal(frame, bars)
    assert frame["vwap"].isna().sum() == bars["vwap"].isna().sum() > 0
    assert frame["trades"].isna().sum() == bars["trades"].isna().sum() > 0
    assert (frame["source"] == "replay").all()
    assert (frame["ingested_at"] > pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=5)).all()

    part = store.read("BTCUSD", "M1", bars["ts"].iloc[10], bars["ts"].iloc[20])
    assert_bars_equal(part, bars.iloc[10:20])
    assert store.read("BTCUSD", "M5").empty
    assert str(store.read("BTCUSD", "M5")["ts"].dtype) == "datetime64[ns, UTC]"


def test_read_before_gives_the_last_bars_before_a_time_oldest_first(store: CandleStore) -> None:
    bars = make_bars(T0, 30)
    now = T0 + 29 * MIN + pd.Timedelta(seconds=30)  # the last bar is still forming
    store.write_window("EURUSD", "M1", *window_of(bars), bars, source="test", now=now)
    before = store.read_before("EURUSD", "M1", bars["ts"].iloc[20], 5)
    pd.testing.assert_frame_equal(before, store.read("EURUSD", "M1", bars["ts"].iloc[15], bars["ts"].iloc[20]))
    assert len(store.read_before("EURUSD", "M1", T0 + pd.Timedelta(days=1), 100)) == 29  # forming left out
    assert len(store.read_before("EURUSD", "M1", T0 + pd.Timedelta(days=1), 100, include_forming=True)) == 30
    assert store.read_before("EURUSD", "M1", T0, 5).empty
    assert store.read_before("EURUSD", "M1", T0 + pd.Timedelta(days=1), 0).empty
    with pytest.raises(ValueError, match=r"^count must be a non-negative integer, got -1$"):
        store.read_before("EURUSD", "M1", T0, -1)


def test_read_equals_a_plain_row_by_row_select(store: CandleStore) -> None:
    """The bulk read against SQLAlchemy's rows of the same table: NULLs, forming bars, several sources."""
    bars = make_bars(T0, 60)
    later = T0 + pd.Timedelta(days=1)
    store.write_window("EURUSD", "M1", T0, T0 + 40 * MIN, bars.iloc[:40], source="massive", now=later)
    forming = T0 + 57 * MIN + pd.Timedelta(seconds=5)  # the last three bars still forming
    store.write_window(
        "EURUSD", "M1", T0 + 40 * MIN, T0 + 60 * MIN, bars.iloc[40:], source="binance-spot", now=forming
    )
    store.write_window("XAUUSD", "M1", T0, T0 + 60 * MIN, make_bars(T0, 60, seed=3))
    columns = [candles.c[c] for c in ("ts", *store.read("EURUSD", "M1").columns[1:])]
    series = (candles.c.symbol == "EURUSD", candles.c.timeframe == "M1")
    with store.engine.connect() as conn:
        rows = conn.execute(select(*columns).where(*series).order_by(candles.c.ts)).all()
    plain = pd.DataFrame(rows, columns=[c.name for c in columns])
    expected = plain.assign(
        ts=pd.to_datetime(plain["ts"].tolist(), utc=True).as_unit("ns"),
        ingested_at=pd.to_datetime(plain["ingested_at"].tolist(), utc=True).as_unit("ns"),
        vwap=plain["vwap"].astype("float64"),
        trades=plain["trades"].astype("Int64"),
        complete=plain["complete"].astype(bool),
    )
    got = store.read("EURUSD", "M1")
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got["source"].value_counts().to_dict() == {"massive": 40, "binance-spot": 20}
    assert (~got["complete"]).sum() == 3
    assert got["vwap"].isna().sum() == 9 and got["trades"].isna().sum() == 12
    pd.testing.assert_frame_equal(store.read("EURUSD", "M1", include_forming=False), expected.iloc[:57])


def test_read_pages_after_a_bar_with_a_limit(store: CandleStore) -> None:
    bars = make_bars(T0, 30)
    store.replace_window("EURUSD", "M1", *window_of(bars), bars)
    whole = store.read("EURUSD", "M1")
    first = store.read("EURUSD", "M1", limit=10)
    pd.testing.assert_frame_equal(first, whole.iloc[:10])
    rest = store.read("EURUSD", "M1", after=first["ts"].iloc[-1], limit=100)
    pd.testing.assert_frame_equal(rest, whole.iloc[10:].reset_index(drop=True))
    # `after` before `start`: start bounds; after start: after bounds; end always
    bounded = store.read("EURUSD", "M1", T0 + 5 * MIN, after=T0, limit=2)
    assert bounded["ts"].tolist() == [T0 + 5 * MIN, T0 + 6 * MIN]
    keyset = store.read("EURUSD", "M1", T0, T0 + 8 * MIN, after=T0 + 5 * MIN)
    assert keyset["ts"].tolist() == [T0 + 6 * MIN, T0 + 7 * MIN]
    assert store.read("EURUSD", "M1", limit=0).empty
    with pytest.raises(ValueError, match=r"^limit must be a non-negative integer, got -2$"):
        store.read("EURUSD", "M1", limit=-2)


@pytest.mark.postgres
def test_reads_go_on_after_the_server_ended_every_connection(pg_url: str) -> None:
    with CandleStore(pg_url) as store:
        store.create_schema()
        bars = make_bars(T0, 5)
        store.replace_window("EURUSD", "M1", *window_of(bars), bars)
        before = store.read("EURUSD", "M1")
        with store.engine.connect() as conn:  # what a server restart does to the kept connections
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        pd.testing.assert_frame_equal(store.read("EURUSD", "M1"), before)


@pytest.mark.postgres
def test_a_read_of_a_store_without_tables_is_one_line_naming_store_and_operation(pg_url: str) -> None:
    with CandleStore(pg_url) as store:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE candles RENAME TO candles_away")
        try:
            missing = r'read\(EURUSD M1\) failed: .*relation "candles" does not exist'
            with pytest.raises(StoreError, match=missing) as err:
                store.read("EURUSD", "M1")
        finally:
            with store.engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE candles_away RENAME TO candles")
        assert "\n" not in str(err.value) and "SELECT" not in str(err.value)


def test_optional_columns_may_be_absent_or_complete(store: CandleStore) -> None:
    bare = make_bars(T0, 20).drop(columns=["vwap", "trades"])
    store.replace_window("EURUSD", "M1", *window_of(bare), bare)
    frame = store.read("EURUSD", "M1")
    assert frame["vwap"].isna().all() and frame["trades"].isna().all()
    assert_bars_equal(frame.drop(columns=["vwap", "trades"]).assign(vwap=0, trades=0),
                      bare.assign(vwap=0, trades=0))

    full = make_bars(T0, 20).assign(vwap=1.25, trades=np.arange(20, dtype="int64"))
    store.replace_window("EURUSD", "M1", *window_of(full), full)
    frame = store.read("EURUSD", "M1")
    assert frame["vwap"].tolist() == [1.25] * 20
    assert frame["trades"].tolist() == list(range(20))


def test_count_row_counts_and_last_bar(store: CandleStore) -> None:
    eur, gold = make_bars(T0, 30), make_bars(T0 + pd.Timedelta(hours=1), 12, seed=2)
    store.replace_window("EURUSD", "M1", *window_of(eur), eur)
    store.replace_window("XAUUSD", "M1", *window_of(gold), gold)
    assert store.count() == 42
    assert store.count("EURUSD") == 30
    assert store.count(timeframe="M1", start=T0 + 20 * MIN) == 10 + 12
    assert store.count("XAUUSD", "M1", end=gold["ts"].iloc[5]) == 5
    counts = store.row_counts()
    assert counts.to_dict("records") == [
        {"symbol": "EURUSD", "timeframe": "M1", "rows": 30, "first_ts": eur["ts"].iloc[0], "last_ts": eur["ts"].iloc[-1]},
        {"symbol": "XAUUSD", "timeframe": "M1", "rows": 12, "first_ts": gold["ts"].iloc[0], "last_ts": gold["ts"].iloc[-1]},
    ]
    assert store.last_bar_ts("XAUUSD", "M1") == gold["ts"].iloc[-1]
    assert store.last_bar_ts("XAUUSD", "H1") is None


def test_checksum_covers_values_but_not_ingestion_time(store: CandleStore) -> None:
    bars = make_bars(T0, 40)
    store.replace_window("EURUSD", "M1", *window_of(bars), bars, source="a")
    digest = store.checksum("EURUSD", "M1")
    store.replace_window("EURUSD", "M1", *window_of(bars), bars, source="b")
    assert store.checksum("EURUSD", "M1") == digest
    nudged = bars.copy()
    nudged.loc[39, "vwap"] = np.nan if not np.isnan(bars.loc[39, "vwap"]) else 1.0
    store.replace_window("EURUSD", "M1", *window_of(bars), nudged)
    assert store.checksum("EURUSD", "M1") != digest
    assert store.checksum("GBPUSD") != digest


@pytest.mark.postgres
def test_checksum_is_the_same_on_sqlite_and_postgresql(pg_url: str, tmp_path: Path) -> None:
    bars = make_bars(T0, 500, seed=4)
    digests = []
    for url in (f"sqlite:///{tmp_path / 'x.sqlite'}", pg_url):
        with CandleStore(url) as store:
            store.create_schema()
            with store.engine.begin() as conn:
                conn.exec_driver_sql("DELETE FROM candles")
            store.replace_window("ETHUSD", "M1", *window_of(bars), bars)
            digests.append(store.checksum())
    assert digests[0] == digests[1]


# -- retention ------------------------------------------------------------------------------------


def test_delete_before_removes_exactly_the_older_rows_in_batches(store: CandleStore) -> None:
    bars = make_bars(T0, 1000)
    store.replace_window("EURUSD", "M1", *window_of(bars), bars)
    other = make_bars(T0, 50)
    store.replace_window("EURUSD", "M5", *window_of(other), other)
    cutoff = bars["ts"].iloc[437]
    assert store.delete_before("EURUSD", "M1", cutoff, batch_size=100) == 437
    remaining = store.read("EURUSD", "M1")
    assert len(remaining) == 563
    assert remaining["ts"].iloc[0] == cutoff
    assert store.count("EURUSD", "M5") == 50
    assert store.delete_before("EURUSD", "M1", cutoff) == 0
    with pytest.raises(ValueError, match="batch_size"):
        store.delete_before("EURUSD", "M1", cutoff, batch_size=0)


# -- sync status ----------------------------------------------------------------------------------


def test_sync_status_upsert(store: CandleStore) -> None:
    last = T0 + 59 * MIN
    store.update_sync_status("EURUSD", "M1", status="ok", last_bar_ts=last, rows=60)
    first = store.sync_status()
    store.update_sync_status("EURUSD", "M1", status="running")
    store.update_sync_status("EURUSD", "H1", status="error", error="HTTP 500 from provider")
    table = store.sync_status()

    assert len(table) == 2
    eur_m1 = table[table["timeframe"] == "M1"].iloc[0]
    assert (eur_m1["status"], eur_m1["rows"], eur_m1["last_bar_ts"]) == ("running", 60, last)
    assert eur_m1["last_sync_at"] >= first["last_sync_at"].iloc[0]
    assert str(table["last_sync_at"].dtype) == "datetime64[ns, UTC]"
    eur_h1 = table[table["timeframe"] == "H1"].iloc[0]
    assert (eur_h1["status"], eur_h1["error"], eur_h1["rows"]) == ("error", "HTTP 500 from provider", 0)
    assert pd.isna(eur_h1["last_bar_ts"])

    store.update_sync_status("EURUSD", "H1", status="ok", rows=5)
    assert store.sync_status().set_index("timeframe").loc["H1", "error"] is None
    with pytest.raises(ValueError, match="sync status must be one of"):
        store.update_sync_status("EURUSD", "M1", status="done")


# -- side tables ----------------------------------------------------------------------------------


def test_rejects_gaps_and_snapshots(store: CandleStore) -> None:
    bad = make_bars(T0, 3)
    bad.loc[1, "close"] = np.nan
    bad["reason"] = ["high < low", "close missing", "price <= 0"]
    assert store.record_rejects("EURUSD", "M1", bad, run_id="run-1") == 3
    rejected = store.rejected("EURUSD")
    assert rejected["reason"].tolist() == ["high < low", "close missing", "price <= 0"]
    assert rejected["ts"].tolist() == bad["ts"].tolist()
    assert pd.isna(rejected.loc[1, "close"]) and rejected.loc[0, "close"] == bad.loc[0, "close"]

    gaps = pd.DataFrame({"gap_start": [T0, T0 + 90 * MIN], "gap_end": [T0 + 10 * MIN, T0 + 95 * MIN],
                         "candles_missing": [10, 5]})
    assert store.record_gaps("EURUSD", "M1", gaps) == 2
    assert store.record_gaps("EURUSD", "M1", gaps) == 0
    listed = store.gaps("EURUSD", "M1")
    assert listed["status"].tolist() == ["detected", "detected"]
    gap_id = int(listed["id"].iloc[0])
    store.set_gap_status(gap_id, "filling")
    store.set_gap_status(gap_id, "filled")
    done = store.gaps(status="filled")
    assert done["attempts"].tolist() == [1] and done["filled_at"].notna().all()
    with pytest.raises(KeyError, match="no data gap"):
        store.set_gap_status(gap_id + 1000, "filled")

    store.save_snapshot("EURUSD", "C:EURUSD", bid=1.1, ask=1.1002, quote_ts=T0)
    store.save_snapshot("EURUSD", "C:EURUSD", bid=1.2, ask=1.2002, quote_ts=T0 + MIN)
    store.save_snapshot("XAUUSD", "C:XAUUSD", last=2300.5)
    latest = store.latest_snapshots()
    assert latest["symbol"].tolist() == ["EURUSD", "XAUUSD"]
    assert latest["bid"].iloc[0] == 1.2 and latest["quote_ts"].iloc[0] == T0 + MIN


# -- configuration and availability ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "mysql://trader:s3cret@db.example/candles",
        "postgresql+psycopg://trader:s3cret@db.example:notaport/candles",
        "postgresql+psycopg://trader:s3cret/x@db.example:notaport/candles",
        "postgresql+psycopg2://trader:s3cret@db.example/candles",
        "just some text with s3cret",
    ],
)
def test_bad_url_is_a_config_error_with_masked_password(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASSIVE_DATABASE_URL", url)
    with pytest.raises(StoreConfigError) as info:
        CandleStore()
    assert "MASSIVE_DATABASE_URL" in str(info.value)
    if "@" in url:
        assert "s3cret" not in str(info.value) and "***" in str(info.value)
    with pytest.raises(StoreConfigError, match="url argument"):
        CandleStore("mysql://trader:s3cret@db.example/candles")


def test_url_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MASSIVE_DATABASE_URL", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert resolve_database_url() == f"sqlite:///{tmp_path / 'home' / 'candles.sqlite'}"
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.chdir(tmp_path)
    assert resolve_database_url() == f"sqlite:///{tmp_path / '.dagster_home' / 'candles.sqlite'}"
    with CandleStore() as store:
        store.create_schema()
    assert (tmp_path / ".dagster_home" / "candles.sqlite").exists()

    monkeypatch.setenv("MASSIVE_DATABASE_URL", "postgres://u:pw@db:5433/c")
    assert resolve_database_url() == "postgresql+psycopg://u:pw@db:5433/c"
    store = CandleStore()
    assert (store.dialect, store.url_display) == ("postgresql", "postgresql+psycopg://u:***@db:5433/c")


@pytest.mark.postgres
def test_unreachable_postgresql_is_store_unavailable_with_a_clear_message() -> None:
    store = CandleStore("postgresql+psycopg://postgres:s3cret@127.0.0.1:1/massive_missing")
    for operation in (store.create_schema, lambda: store.count(), lambda: store.read("EURUSD", "M1")):
        with pytest.raises(StoreUnavailableError) as info:
            operation()
        message = str(info.value)
        assert "127.0.0.1:1" in message and "massive_missing" in message
        assert "s3cret" not in message and "***" in message
        assert "refused" in message.lower()


@pytest.mark.postgres
def test_missing_postgresql_database_is_store_unavailable(pg_url: str) -> None:
    missing = make_url(pg_url).set(database="massive_does_not_exist").render_as_string(hide_password=False)
    with pytest.raises(StoreUnavailableError, match='database "massive_does_not_exist" does not exist'):
        CandleStore(missing).create_schema()


# -- concurrency ----------------------------------------------------------------------------------


def run_concurrently(calls: list[Callable[[], object]]) -> list[BaseException]:
    """Start all calls at the same moment in threads; return the exceptions they raised."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as err:  # noqa: BLE001 - reported to the test
            errors.append(err)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_overlapping_writers_leave_no_duplicate_and_no_missing_bar(store_url: str) -> None:
    """Two writers replace overlapping windows of one series repeatedly and at the same time."""
    a = make_bars(T0, 600, seed=1)  # [0, 600) minutes, close < 2
    b = make_bars(T0 + 300 * MIN, 600, seed=2, shift=10.0)  # [300, 900) minutes, close > 10
    stores = [CandleStore(store_url), CandleStore(store_url)]

    def writer(store: CandleStore, bars: pd.DataFrame) -> Callable[[], None]:
        def loop() -> None:
            for _ in range(6):
                store.replace_window("EURUSD", "M1", *window_of(bars), bars)
        return loop

    errors = run_concurrently([writer(stores[0], a), writer(stores[1], b)])
    assert errors == []
    final = stores[0].read("EURUSD", "M1")
    for s in stores:
        s.dispose()
    expected_ts = pd.date_range(T0, periods=900, freq="1min", tz="UTC")
    assert final["ts"].tolist() == expected_ts.tolist()
    by_writer = np.where(final["close"] > 5, "b", "a")
    assert (by_writer[:300] == "a").all() and (by_writer[600:] == "b").all()
    overlap = set(by_writer[300:600])
    assert len(overlap) == 1, "the overlap mixes two writers: a replacement was not atomic"
    winner = a if overlap == {"a"} else b
    overlap_bars = winner[(winner["ts"] >= T0 + 300 * MIN) & (winner["ts"] < T0 + 600 * MIN)]
    assert_bars_equal(final.iloc[300:600], overlap_bars)
