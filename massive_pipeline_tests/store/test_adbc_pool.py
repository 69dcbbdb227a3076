"""Kept ADBC connections (`store/adbc_pool.py`) on a real PostgreSQL server.

A kept connection is reused, a dead one is replaced once and only once, a connection whose
block failed is never handed out again, at most `keep` stay open, and retired or collected
pools close what they kept. Backend process ids tell connections apart; a closed ADBC
connection refuses to make a cursor.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from adbc_driver_manager import Error as AdbcError
from adbc_driver_manager import OperationalError
from sqlalchemy.engine import make_url

from massive_pipeline.store import adbc_pool, bulk_read_postgres
from massive_pipeline.store.adbc_pool import AdbcPool

pytestmark = pytest.mark.postgres


class Opener:
    """Opens real ADBC connections to one database and remembers each one."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url).set(drivername="postgresql+psycopg")
        self.opened: list[Any] = []

    def __call__(self) -> Any:
        conn = bulk_read_postgres.connect(self.url)
        self.opened.append(conn)
        return conn


@pytest.fixture
def opener(postgres_url: str) -> Iterator[Opener]:
    made = Opener(postgres_url)
    yield made
    for conn in made.opened:
        conn.close()


def pid(conn: Any) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid() AS pid")
        return cur.fetchall()[0][0]


def is_closed(conn: Any) -> bool:
    try:
        conn.cursor().close()
    except AdbcError:
        return True
    return False


def terminate(url: str, backend: int) -> None:
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", [backend])


def test_a_kept_connection_serves_the_next_read(opener: Opener):
    pool = AdbcPool(opener)
    assert pool.run(pid) == pool.run(pid)
    assert len(opener.opened) == 1


def test_a_dead_kept_connection_is_replaced_once(opener: Opener, postgres_url: str):
    pool = AdbcPool(opener)
    first = pool.run(pid)
    terminate(postgres_url, first)
    second = pool.run(pid)
    assert second != first and len(opener.opened) == 2 and is_closed(opener.opened[0])

    calls: list[int] = []

    def dies(conn: Any) -> None:  # a connection lost during the work, every time
        calls.append(pid(conn))
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        pid(conn)  # the server has gone: this statement fails

    with pytest.raises(OperationalError):
        pool.run(dies)
    assert len(calls) == 2, "once on the kept connection, once on a fresh one, then the error"


def test_a_block_that_failed_never_hands_its_connection_out_again(opener: Opener):
    pool = AdbcPool(opener)
    with pytest.raises(RuntimeError), pool.session(bulk_read_postgres.begin_snapshot):
        raise RuntimeError("the read failed inside its transaction")
    assert is_closed(opener.opened[0])
    with pool.session(bulk_read_postgres.begin_snapshot) as conn:
        assert conn is opener.opened[1]
        bulk_read_postgres.end_snapshot(conn)
    assert pool.run(lambda conn: conn) is opener.opened[1]  # handed back after a clean block


def test_at_most_keep_connections_stay_open_after_concurrent_reads(opener: Opener):
    pool = AdbcPool(opener, keep=2)
    together = threading.Barrier(5)

    def read(conn: Any) -> int:
        together.wait(timeout=30)  # all five hold a connection at once
        return pid(conn)

    pids: list[int] = []
    threads = [threading.Thread(target=lambda: pids.append(pool.run(read))) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(pids)) == 5 and len(opener.opened) == 5
    assert sum(not is_closed(c) for c in opener.opened) == 2
    pool.dispose()
    assert all(is_closed(c) for c in opener.opened)


def test_the_least_recently_used_store_is_retired_and_a_collected_pool_closes_what_it_kept(opener: Opener):
    keys = [f"test-store-{i}" for i in range(adbc_pool.KEPT_URLS + 1)]
    first = adbc_pool.shared(keys[0], opener)
    assert adbc_pool.shared(keys[0], opener) is first
    conn = first.run(lambda c: c)
    for key in keys[1:]:
        adbc_pool.shared(key, opener)
    assert is_closed(conn), "the oldest store's kept connection was closed when it was retired"
    assert adbc_pool.shared(keys[0], opener) is not first
    assert first.run(lambda c: c) is not conn and is_closed(opener.opened[-1])  # retired: nothing kept

    lone = AdbcPool(opener)
    kept = lone.run(lambda c: c)
    del lone
    gc.collect()
    assert is_closed(kept)
