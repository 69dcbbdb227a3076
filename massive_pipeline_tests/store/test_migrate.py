"""The candle store's versioned schema on real SQLite and PostgreSQL: stores made by the code before
versioning are upgraded in place without losing a row, new stores are created at head, the store is
refused when newer code wrote it, and concurrent processes agree."""

from __future__ import annotations

import multiprocessing
import traceback
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from massive_pipeline.cli import main
from massive_pipeline.store import CandleStore, StoreError, migrate, partitions
from massive_pipeline.store.migrate import HEAD_REVISION, VERSION_TABLE
from massive_pipeline.store.schema import candle_revisions, candles, metadata, rejected_candles
from massive_pipeline_tests.fixtures import schema_v1 as v1
from massive_pipeline_tests.fixtures.v1_store import T0, dump_v1_tables, fill_v1_store

PROCESSES = 6


def _versions(store: CandleStore) -> tuple[str, ...] | None:
    with store.engine.connect() as conn:
        return migrate.stored_revisions(conn)


def _shape(engine: sa.Engine) -> dict[str, dict]:
    """Everything the schema promises, as reflected: columns in order with type, nullability and
    default, primary key, indexes, unique and check constraints (and WITHOUT ROWID on SQLite)."""
    insp = sa.inspect(engine)
    shape = {}
    made_by_writes = set()  # PostgreSQL: the timeframe and month tables under candles, compared by _layout
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            made_by_writes = partitions.partition_names(conn)
    for table in sorted(set(insp.get_table_names()) - {VERSION_TABLE} - made_by_writes):
        shape[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], c.get("default")) for c in insp.get_columns(table)],
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(table)),
            "uniques": sorted((u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(table)),
            "checks": sorted((c["name"], " ".join(c["sqltext"].split())) for c in insp.get_check_constraints(table)),
        }
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": table}).scalar_one()
            shape[table]["without_rowid"] = "WITHOUT ROWID" in sql.upper()
    return shape


def _other_database(request, database_url: str, tmp_path: Path) -> str:
    """A second empty database on the same backend as `database_url`."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/other.sqlite"
    return request.getfixturevalue("postgres_url")


def _v1_store(url: str) -> tuple[CandleStore, dict[str, int]]:
    store = CandleStore(url)
    counts = fill_v1_store(store.engine)
    return store, counts


def _relfilenode(store: CandleStore, table: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.text("SELECT relfilenode FROM pg_class WHERE relname = :t"), {"t": table}).scalar_one()


# -- upgrade in place ---------------------------------------------------------------------------


def test_v1_store_is_upgraded_in_place_keeping_every_row(database_url):
    store, counts = _v1_store(database_url)
    checksum, rows = store.checksum(), dump_v1_tables(store.engine)
    assert {t: len(r) for t, r in rows.items()} == {**counts, "sync_status": 2}
    assert any(r[8] is None for r in rows["candles"]) and any(r[9] is None for r in rows["candles"])
    if store.dialect == "postgresql":  # up to 0005, ADD COLUMN ... DEFAULT true NOT NULL did not rewrite the table
        filenode = _relfilenode(store, "candles")
        with store.engine.begin() as conn:
            cfg = migrate.alembic_config(conn)
            command.stamp(cfg, migrate.BASELINE_REVISION)
            command.upgrade(cfg, "0005")
        assert _relfilenode(store, "candles") == filenode

    store.create_schema()

    assert _versions(store) == (HEAD_REVISION,)
    assert store.checksum() == checksum
    assert dump_v1_tables(store.engine) == rows
    with store.engine.connect() as conn:
        complete = conn.execute(sa.select(candles.c.complete, sa.func.count()).group_by(candles.c.complete)).all()
        assert complete == [(True, counts["candles"])]
        rejects = conn.execute(
            sa.select(rejected_candles.c.fingerprint, rejected_candles.c.times_seen, rejected_candles.c.last_seen_at,
                      rejected_candles.c.rejected_at, rejected_candles.c.last_run_id, rejected_candles.c.run_id)
            .order_by(rejected_candles.c.id)
        ).all()
    assert [(r.fingerprint, r.times_seen) for r in rejects] == [(None, 1)] * counts["rejected_candles"]
    assert all(r.last_seen_at == r.rejected_at and r.last_run_id == r.run_id for r in rejects)


def test_upgraded_store_has_the_schema_of_a_new_one_and_takes_new_writes(request, database_url, tmp_path):
    store, _ = _v1_store(database_url)
    store.create_schema()
    fresh = CandleStore(_other_database(request, database_url, tmp_path))
    fresh.create_schema()
    assert _shape(store.engine) == _shape(fresh.engine)
    if store.dialect == "sqlite":
        assert _shape(store.engine)["candles"]["without_rowid"]
    with store.engine.connect() as conn:  # Alembic's autogenerate sees nothing left to migrate either
        command.check(migrate.alembic_config(conn))

    # the tables of revision 0002 work: revisions recorded, fingerprints unique per series
    revision = {"symbol": "EURUSD", "timeframe": "M1", "ts": T0, "old_open": 1.0850, "new_open": 1.0851,
                "max_rel_change": 1e-4, "run_id": "run-c", "detected_at": T0 + pd.Timedelta(days=31)}
    with store.engine.begin() as conn:
        conn.execute(sa.insert(candle_revisions), [revision])
        conn.execute(sa.insert(rejected_candles), [
            {"symbol": "EURUSD", "timeframe": "M1", "reason": "high < low", "rejected_at": T0, "fingerprint": "f1"},
        ])
    with store.engine.connect() as conn:
        got = conn.execute(sa.select(candle_revisions)).one()._asdict()
    assert {k: got[k] for k in revision} == revision
    # SQLite: the check refuses the name; PostgreSQL: varchar(4) refuses it first
    with pytest.raises((sa.exc.IntegrityError, sa.exc.DataError)), store.engine.begin() as conn:
        conn.execute(sa.insert(rejected_candles), [
            {"symbol": "EURUSD", "timeframe": "M1", "reason": "again", "rejected_at": T0, "fingerprint": "f1"},
        ])

    # and the store's own write path works on the upgraded tables
    bars = store.read("EURUSD", "H1", T0, T0 + pd.Timedelta(hours=3))
    result = store.replace_window("EURUSD", "H1", T0, T0 + pd.Timedelta(hours=3), bars.assign(close=bars["open"]))
    assert result.rows_written == result.rows_deleted == 3


def test_migrations_from_nothing_build_the_same_schema_as_create_all(request, database_url, tmp_path):
    """Revisions 0001 .. 0005 and `schema.py` describe one schema (a new revision must keep it so)."""
    migrated = CandleStore(database_url)
    with migrated.engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "head")
    fresh = CandleStore(_other_database(request, database_url, tmp_path))
    fresh.create_schema()
    assert _shape(migrated.engine) == _shape(fresh.engine)
    assert _versions(migrated) == _versions(fresh) == (HEAD_REVISION,)


def test_downgrade_to_the_baseline_gives_back_the_v1_tables_and_rows(request, database_url, tmp_path):
    store, _ = _v1_store(database_url)
    rows = dump_v1_tables(store.engine)
    store.create_schema()
    with store.engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), migrate.BASELINE_REVISION)
    reference = CandleStore(_other_database(request, database_url, tmp_path))
    v1.metadata.create_all(reference.engine)
    assert _shape(store.engine) == _shape(reference.engine)
    assert dump_v1_tables(store.engine) == rows
    assert _versions(store) == (migrate.BASELINE_REVISION,)


def test_v1_store_that_newer_create_all_already_gave_candle_revisions_is_upgraded(database_url):
    """The release before versioning ran `create_all`, which added the new table but no column."""
    store, _ = _v1_store(database_url)
    candle_revisions.create(store.engine)
    checksum = store.checksum()
    store.create_schema()
    assert _versions(store) == (HEAD_REVISION,)
    assert store.checksum() == checksum
    assert "complete" in {c["name"] for c in sa.inspect(store.engine).get_columns("candles")}


def test_unversioned_store_with_columns_no_release_made_is_refused_untouched(database_url):
    store, _ = _v1_store(database_url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE candles ADD COLUMN spread DOUBLE PRECISION"))
    with pytest.raises(StoreError) as err:
        store.create_schema()
    message = str(err.value)
    assert "\n" not in message and store.url_display in message and "candles (unexpected spread)" in message
    assert _versions(store) is None
    assert "complete" not in {c["name"] for c in sa.inspect(store.engine).get_columns("candles")}


# -- at head, and newer than this code ----------------------------------------------------------


def test_create_schema_at_head_only_reads_the_version(database_url):
    store = CandleStore(database_url)
    store.create_schema()
    shape = _shape(store.engine)
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda _c, _cur, sql, *_a: statements.append(sql))
    store.create_schema()
    assert statements, "the version was read"
    assert len(statements) <= 3, statements
    writes = ("CREATE", "ALTER", "INSERT", "UPDATE", "DELETE", "DROP")
    assert not [s for s in statements if s.lstrip().upper().startswith(writes)], statements
    assert not [s for s in statements if "advisory" in s.lower()], "no schema lock at head"
    assert _shape(store.engine) == shape and _versions(store) == (HEAD_REVISION,)


def test_store_written_by_newer_code_is_refused_with_one_clear_line(database_url):
    url = database_url
    if url.startswith("postgresql"):  # trust auth ignores it; the message must not show it
        url = sa.engine.make_url(url).set(password="s3cret-pw").render_as_string(hide_password=False)
    store, _ = _v1_store(url)
    store.create_schema()
    with store.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0099'"))
    checksum = store.checksum()
    with pytest.raises(StoreError) as err:
        store.create_schema()
    message = str(err.value)
    assert "\n" not in message
    assert store.url_display in message and "s3cret-pw" not in message
    assert "0099" in message and f"newest it knows is {HEAD_REVISION}" in message
    assert "upgrade massive_pipeline" in message
    assert _versions(store) == ("0099",) and store.checksum() == checksum


def test_head_revision_constant_is_the_newest_packaged_script():
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert script.get_current_head() == HEAD_REVISION
    chain = [s.revision for s in script.walk_revisions(base="base", head="heads")]
    assert chain == [HEAD_REVISION, "0006", "0005", "0004", "0003", "0002", migrate.BASELINE_REVISION]
    assert migrate.VERSION_TABLE != "alembic_version"


# -- concurrent processes -----------------------------------------------------------------------


def _create_schema_in_child(url: str, barrier, results) -> None:
    try:
        barrier.wait(timeout=30)
        CandleStore(url).create_schema()
        results.put("ok")
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put(traceback.format_exc())


@pytest.mark.parametrize("start", ["empty", "v1"])
def test_processes_calling_create_schema_at_once_all_succeed(database_url, start):
    store = CandleStore(database_url)
    if start == "v1":
        fill_v1_store(store.engine)
    checksum, rows = store.checksum() if start == "v1" else None, dump_v1_tables(store.engine) if start == "v1" else None
    store.dispose()  # no pooled connection crosses the fork
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=_create_schema_in_child, args=(database_url, barrier, results)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert outcomes == ["ok"] * PROCESSES, [o for o in outcomes if o != "ok"]
    assert _versions(store) == (HEAD_REVISION,)  # one stamp, not six
    assert set(_shape(store.engine)) == set(metadata.tables)
    if start == "v1":
        assert store.checksum() == checksum and dump_v1_tables(store.engine) == rows


# -- through the command line -------------------------------------------------------------------


def test_status_command_upgrades_a_v1_sqlite_store_and_reports(pipeline_env, tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path}/users-v1-candles.sqlite"
    store, _ = _v1_store(url)
    checksum, rejects = store.checksum(), dump_v1_tables(store.engine)["rejected_candles"]
    monkeypatch.setenv("MASSIVE_DATABASE_URL", url)

    assert main(["status"]) == 0

    out = capsys.readouterr().out
    assert f"candle store {store.url_display}" in out and "EURUSD" in out
    assert _versions(store) == (HEAD_REVISION,)
    assert store.checksum() == checksum
    assert dump_v1_tables(store.engine)["rejected_candles"] == rejects
    assert ("EURUSD", "M1") in set(store.sync_status()[["symbol", "timeframe"]].itertuples(index=False, name=None))


def test_upgraded_store_keeps_new_york_bars_and_downgrade_drops_only_them(database_url):
    """Revision 0004 makes room for D1_NY (5 characters, a name the older check refused); going back
    to 0003 deletes those bars and keeps every other row."""
    store, _ = _v1_store(database_url)
    store.create_schema()
    ny_start = pd.Timestamp("2026-11-01 22:00", tz="UTC")  # Monday 2 Nov's forex day, 17:00 New York
    bar = pd.DataFrame({"ts": [ny_start], "open": [1.1], "high": [1.2], "low": [1.0], "close": [1.15],
                        "volume": [10.0], "vwap": [None], "trades": [None]})
    store.write_window("EURUSD", "D1_NY", ny_start, ny_start + pd.Timedelta(days=1), bar, source="derived:M1")
    store.update_sync_status("EURUSD", "D1_NY", status="ok", last_bar_ts=ny_start, rows=1)
    assert store.read("EURUSD", "D1_NY")["ts"].tolist() == [ny_start]
    with store.engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(candles)).scalar_one()
    with store.engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0003")
    with store.engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(candles)).scalar_one()
        ny_left = conn.execute(sa.text("SELECT count(*) FROM candles WHERE timeframe = 'D1_NY'")).scalar_one()
    assert (before - left, ny_left) == (1, 0)
    # SQLite: the check refuses the name; PostgreSQL: varchar(4) refuses it first
    with pytest.raises((sa.exc.IntegrityError, sa.exc.DataError)), store.engine.begin() as conn:
        conn.execute(sa.insert(candles).values(
            symbol="EURUSD", timeframe="D1_NY", ts=ny_start, open=1.0, high=1.0, low=1.0, close=1.0, volume=0.0,
            source="derived:M1", ingested_at=ny_start, complete=True,
        ))


def test_revision_0005_adds_provider_comparisons_and_downgrade_drops_only_it(database_url):
    """Revision 0005 is one new table: an upgraded store takes comparisons, and going back to 0004
    removes the table and keeps every candle."""
    store, _ = _v1_store(database_url)
    store.create_schema()
    checksum = store.checksum()
    store.record_provider_comparison(
        "BTCUSD", "BTCUSDT", "M1", "2026-10-14", bars_compared=1440, median_rel_diff=1e-4, max_rel_diff=0.02,
        bars_over_tolerance=3, tolerance=0.005, basis=0.0015,
    )
    assert store.latest_provider_comparisons()["bars_over_tolerance"].tolist() == [3]
    with store.engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0004")
    assert "provider_comparisons" not in sa.inspect(store.engine).get_table_names()
    assert _versions(store) == ("0004",) and store.checksum() == checksum
    store.create_schema()  # and back up to head, empty
    assert _versions(store) == (HEAD_REVISION,) and store.provider_comparisons().empty


def test_revision_0007_fills_the_month_ledger_with_the_stored_rows_and_downgrade_drops_it(database_url):
    """A store at 0006 holding rows (put in by SQL, as the write path of 0006 did not keep a ledger)
    is upgraded to 0007: the ledger equals the rows per series and month; going back drops only it."""
    store = CandleStore(database_url)
    with store.engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0006")
    series = {("EURUSD", "M1"): ("2026-01-30 20:00", "2026-02-02 04:00", "7min"),
              ("EURUSD", "H1"): ("2025-11-15", "2026-02-10", "h"),
              ("XAUUSD", "M1"): ("2026-01-31 23:00", "2026-02-01 01:00", "min"),
              ("BTCUSD", "D1_NY"): ("2025-12-01 22:00", "2026-01-05 22:00", "D")}
    rows = []
    for (symbol, tf), (start, end, freq) in series.items():
        stamps = pd.date_range(start, end, freq=freq, tz="UTC", inclusive="left")
        rows += [{"symbol": symbol, "timeframe": tf, "ts": ts, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0,
                  "volume": 1.0, "source": "massive", "ingested_at": ts, "complete": True} for ts in stamps]
    frame = pd.DataFrame(rows)
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":  # 0006's layout: each row's month must exist
            for tf, group in frame.groupby("timeframe"):
                partitions.create(conn, tf, partitions.months_of(pd.DatetimeIndex(group["ts"]).asi8))
        conn.execute(sa.insert(candles), rows)
    checksum = store.checksum()

    store.create_schema()

    assert _versions(store) == (HEAD_REVISION,) and store.checksum() == checksum
    expected = (frame.assign(month=frame["ts"].dt.tz_convert(None).dt.to_period("M").dt.to_timestamp()
                             .dt.tz_localize("UTC").dt.as_unit("ns"))
                .groupby(["symbol", "timeframe", "month"], as_index=False).size().rename(columns={"size": "rows"}))
    expected["rows"] = expected["rows"].astype("int64")
    pd.testing.assert_frame_equal(store.rows_by_month(), expected)
    assert len(expected) == 10  # EURUSD M1 2 months, H1 4, XAUUSD M1 2, BTCUSD D1_NY 2
    with store.engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0006")
    assert "candle_month_rows" not in sa.inspect(store.engine).get_table_names()
    assert _versions(store) == ("0006",) and store.checksum() == checksum
