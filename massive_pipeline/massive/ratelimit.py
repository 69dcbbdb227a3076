"""The request budget shared by every process that talks to the Massive API.

Dagster runs each run, sensor and schedule tick in its own process, so an in-process limiter would
let five concurrent runs spend five times the plan's budget. The limiter's state therefore lives
outside the process: a SQLite file under `$DAGSTER_HOME` by default, PostgreSQL or Redis in
production. The sliding-window bookkeeping is pyrate-limiter's (it already has all three buckets
with atomic check-and-insert); this module adds what the pipeline needs on top:

* a reserve for critical symbols: non-critical requests must also fit a smaller budget
  (`limit - reserve`), so a long backfill can never take the tokens the 5-minute priority refresh
  needs, while critical requests may use the whole budget;
* a safety margin on the window, because the server counts arrival times while the limiter counts
  acquire times, and the two differ by the request's latency;
* statistics (used, waiting, waits) kept in the same shared backend, readable by `status`;
* a fresh timestamp on every attempt: pyrate-limiter's own blocking loop advances the item's
  timestamp by the time it meant to sleep, so a process that overslept or waited for the file
  lock records its request in the past and frees its slot early; under three competing processes
  that let 7 requests into a 5-request window. Here each attempt is a new item stamped "now", and
  the bucket's `waiting()` only tells how long to sleep before the next attempt;
* a race-free first start: every process of a deployment builds its limiter at the same moment
  on first start, so each backend creates every table it uses (both buckets, the statistics)
  idempotently under one cross-process lock before any use. Without it PostgreSQL's concurrent
  `CREATE TABLE IF NOT EXISTS` fails with a unique violation on `pg_type`, SQLite's switch to WAL
  fails with "database is locked", and `reset()` met a bucket table nobody had created yet.
"""

from __future__ import annotations

import math
import sqlite3
import time
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyrate_limiter import AbstractBucket, PostgresBucket, Rate, RateItem, RedisBucket, SQLiteBucket
from pyrate_limiter.buckets.postgres import Queries as PostgresQueries
from pyrate_limiter.buckets.sqlite_bucket import Queries as SQLiteQueries

from massive_pipeline.core.paths import dagster_home
from massive_pipeline.store.engine import mask_url

TOTAL_BUCKET = "massive_total"
SHARED_BUCKET = "massive_noncritical"
BUCKETS = (TOTAL_BUCKET, SHARED_BUCKET)
_STAT_FIELDS = ("acquired", "acquired_critical", "waits", "wait_seconds", "waiting")
# One advisory-lock key for the PostgreSQL backend's schema, the same in every process (CRC-32,
# not `hash()`, which is salted per interpreter).
_PG_SCHEMA_LOCK = zlib.crc32(b"massive_pipeline.massive.ratelimit schema") & 0x7FFFFFFF


class RateLimiterConfigError(ValueError):
    """The limiter's settings or backend URL cannot be used."""


@dataclass(frozen=True)
class LimiterStats:
    """A picture of the shared budget, as every process sees it."""

    limit: int
    window_seconds: float
    reserve: int
    used: int
    remaining: int
    waiting: int
    waits: int
    wait_seconds: float
    acquired: int
    acquired_critical: int
    backend: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def reserve_for(limit: int, share: float) -> int:
    """Tokens kept for critical symbols: at least one when the plan allows two or more."""
    if limit < 2 or share <= 0:
        return 0
    return min(limit - 1, max(1, math.floor(limit * share)))


def default_margin_ms(window_seconds: float) -> int:
    """The server counts arrivals, not acquisitions: leave room for latency jitter."""
    return int(max(100.0, window_seconds * 1000 * 0.01))


class _Backend(ABC):
    """Where the buckets and counters live; one instance per process."""

    label: str

    @abstractmethod
    def bucket(self, name: str, rates: list[Rate]) -> AbstractBucket: ...

    @abstractmethod
    def used_since(self, name: str, since_ms: int) -> int: ...

    @abstractmethod
    def incr(self, field: str, delta: float) -> None: ...

    @abstractmethod
    def read_stats(self) -> dict[str, float]: ...

    @abstractmethod
    def reset(self) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class _SQLiteBackend(_Backend):
    def __init__(self, path: Path) -> None:
        from filelock import FileLock

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.label = f"sqlite:{path}"
        self._buckets: list[SQLiteBucket] = []
        self._conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        # Switching a new file to WAL takes an exclusive lock without waiting for it: two
        # processes doing it at once fail with "database is locked". pyrate-limiter's buckets
        # serialize on this file lock (the same path), so the whole setup is done under it.
        # Released before the buckets are built: they take it themselves (a second FileLock on
        # the same file would wait for this one).
        with FileLock(f"{path}.lock"):
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS limiter_stats (name TEXT PRIMARY KEY, value REAL NOT NULL)"
            )
            for name in BUCKETS:
                self._conn.execute(SQLiteQueries.CREATE_BUCKET_TABLE.format(table=name))
                self._conn.execute(SQLiteQueries.CREATE_INDEX_ON_TIMESTAMP.format(
                    index_name=f"idx_{name}_rate_item_timestamp", table_name=name))

    def bucket(self, name: str, rates: list[Rate]) -> AbstractBucket:
        bucket = SQLiteBucket.init_from_file(rates, table=name, db_path=str(self.path), use_file_lock=True)
        self._buckets.append(bucket)
        return bucket

    def used_since(self, name: str, since_ms: int) -> int:
        row = self._conn.execute(f'SELECT COUNT(*) FROM "{name}" WHERE item_timestamp >= ?', (since_ms,)).fetchone()
        return int(row[0])

    def incr(self, field: str, delta: float) -> None:
        self._conn.execute(
            "INSERT INTO limiter_stats(name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (field, delta),
        )

    def read_stats(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._conn.execute("SELECT name, value FROM limiter_stats")}

    def reset(self) -> None:
        self._conn.execute("DELETE FROM limiter_stats")
        for name in BUCKETS:  # both exist from __init__, whether or not this process uses them
            self._conn.execute(SQLiteQueries.FLUSH.format(table=name))

    def close(self) -> None:
        for bucket in self._buckets:
            bucket.close()
        self._conn.close()


class _RedisBackend(_Backend):
    def __init__(self, url: str, prefix: str = "massive:ratelimit") -> None:
        import redis

        self.label = f"redis:{mask_url(url)}"
        self._redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._prefix = prefix
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise RateLimiterConfigError(f"rate limiter backend {mask_url(url)} is not reachable: {exc}") from None

    def _key(self, name: str) -> str:
        return f"{self._prefix}:{name}"

    def bucket(self, name: str, rates: list[Rate]) -> AbstractBucket:
        return RedisBucket.init(rates, self._redis, self._key(name))

    def used_since(self, name: str, since_ms: int) -> int:
        return int(self._redis.zcount(self._key(name), since_ms, "+inf"))

    def incr(self, field: str, delta: float) -> None:
        self._redis.hincrbyfloat(self._key("stats"), field, delta)

    def read_stats(self) -> dict[str, float]:
        raw = self._redis.hgetall(self._key("stats"))
        return {k.decode(): float(v) for k, v in raw.items()}

    def reset(self) -> None:
        self._redis.delete(self._key("stats"), self._key(TOTAL_BUCKET), self._key(SHARED_BUCKET))

    def close(self) -> None:
        self._redis.close()


class _PostgresBackend(_Backend):
    def __init__(self, url: str) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.label = f"postgresql:{mask_url(url)}"
        try:
            # pyrate-limiter's bucket takes table locks, which need real transactions: no autocommit.
            self._pool = ConnectionPool(conninfo, min_size=1, max_size=4, open=True, timeout=10)
            self._pool.wait(timeout=10)
        except (psycopg.Error, Exception) as exc:  # noqa: BLE001 - the pool raises its own types
            raise RateLimiterConfigError(
                f"rate limiter backend {mask_url(url)} is not reachable: {type(exc).__name__}"
            ) from None
        self._create_schema()

    def _create_schema(self) -> None:
        """Create every table the backend uses, in one transaction under one advisory lock.

        Concurrent `CREATE TABLE IF NOT EXISTS` of the same table is not safe in PostgreSQL: both
        transactions see no table, both insert its row type, and one fails with a unique
        violation on `pg_type_typname_nsp_index`. The transaction-scoped lock serializes the
        creators; the one after sees the committed tables and does nothing. pyrate-limiter's
        bucket then finds its table in place (its own creation is locked per table only).
        """
        from psycopg import sql

        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_SCHEMA_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS massive_limiter_stats (name TEXT PRIMARY KEY, value DOUBLE PRECISION)"
            )
            for name in BUCKETS:
                table = sql.Identifier(_pg_table(name))
                index = sql.Identifier(f"timestampindex_{name.lower()}")
                conn.execute(sql.SQL(PostgresQueries.CREATE_BUCKET_TABLE).format(table=table))
                conn.execute(sql.SQL(PostgresQueries.CREATE_INDEX_ON_TIMESTAMP).format(index=index, table=table))

    def bucket(self, name: str, rates: list[Rate]) -> AbstractBucket:
        return PostgresBucket(self._pool, name, rates)

    def used_since(self, name: str, since_ms: int) -> int:
        from psycopg import sql

        query = sql.SQL("SELECT COUNT(*) FROM {} WHERE item_timestamp >= TO_TIMESTAMP(%s)").format(
            sql.Identifier(_pg_table(name))
        )
        with self._pool.connection() as conn:
            row = conn.execute(query, (since_ms / 1000,)).fetchone()
        return int(row[0]) if row else 0

    def incr(self, field: str, delta: float) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO massive_limiter_stats(name, value) VALUES (%s, %s) "
                "ON CONFLICT(name) DO UPDATE SET value = massive_limiter_stats.value + excluded.value",
                (field, delta),
            )

    def read_stats(self) -> dict[str, float]:
        with self._pool.connection() as conn:
            return {k: float(v) for k, v in conn.execute("SELECT name, value FROM massive_limiter_stats")}

    def reset(self) -> None:
        from psycopg import sql

        with self._pool.connection() as conn:  # both bucket tables exist from __init__
            conn.execute("DELETE FROM massive_limiter_stats")
            for name in BUCKETS:
                conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(_pg_table(name))))

    def close(self) -> None:
        self._pool.close()


def _pg_table(name: str) -> str:
    """The table pyrate-limiter's PostgresBucket keeps bucket `name` in."""
    return f"ratelimit___{name.lower()}"


def _backend_for(url: str | None) -> _Backend:
    if not url:
        return _SQLiteBackend(dagster_home() / "massive-ratelimit.sqlite")
    if url.startswith("sqlite:///"):
        return _SQLiteBackend(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("redis://", "rediss://", "unix://")):
        return _RedisBackend(url)
    if url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        return _PostgresBackend(url.replace("postgres://", "postgresql://", 1))
    raise RateLimiterConfigError(
        f"MASSIVE_RATE_LIMIT_URL {mask_url(url)!r} is not a sqlite:///, postgresql:// or redis:// URL"
    )


class SharedRateLimiter:
    """Blocks each API request until the shared budget has room for it.

    `limit` requests per `window_seconds` in total; non-critical requests are further held to
    `limit - reserve`. Waiting never fails: the free plan's answer to a burst is to wait.
    """

    def __init__(
        self,
        limit: int,
        window_seconds: float = 60.0,
        *,
        reserve: int = 0,
        backend_url: str | None = None,
        margin_ms: int | None = None,
    ) -> None:
        if limit < 1:
            raise RateLimiterConfigError(f"rate limit must be at least 1 request per window, got {limit}")
        if window_seconds <= 0:
            raise RateLimiterConfigError(f"rate window must be positive, got {window_seconds}")
        if not 0 <= reserve < limit:
            raise RateLimiterConfigError(f"critical reserve {reserve} must be between 0 and limit-1 ({limit - 1})")
        self.limit = limit
        self.window_seconds = window_seconds
        self.reserve = reserve
        self.margin_ms = default_margin_ms(window_seconds) if margin_ms is None else margin_ms
        self._interval_ms = int(round(window_seconds * 1000)) + self.margin_ms
        self._backend = _backend_for(backend_url)
        self._total = self._backend.bucket(TOTAL_BUCKET, [Rate(limit, self._interval_ms)])
        self._shared = (
            self._backend.bucket(SHARED_BUCKET, [Rate(limit - reserve, self._interval_ms)]) if reserve else None
        )
        self._puts = 0

    @property
    def backend(self) -> str:
        return self._backend.label

    def acquire(self, critical: bool = False) -> float:
        """Take one token (waiting as long as needed); returns the seconds spent waiting."""
        started = time.monotonic()
        self._backend.incr("waiting", 1)
        try:
            if self._shared is not None and not critical:
                self._take(self._shared, "request")
            self._take(self._total, "critical" if critical else "request")
        finally:
            self._backend.incr("waiting", -1)
        waited = time.monotonic() - started
        self._backend.incr("acquired", 1)
        if critical:
            self._backend.incr("acquired_critical", 1)
        if waited > 0.05:
            self._backend.incr("waits", 1)
            self._backend.incr("wait_seconds", waited)
        return waited

    def _take(self, bucket: AbstractBucket, name: str) -> None:
        while True:
            item = RateItem(name, bucket.now(), 1)
            if bucket.put(item):
                break
            wait_ms = bucket.waiting(item)
            # never busy-loop: at least a few ms, at most a window, between attempts
            time.sleep(min(max(int(wait_ms), 5) + 5, self._interval_ms) / 1000)
        self._puts += 1
        if self._puts % 200 == 0:  # keep the shared log short; old entries no longer count
            bucket.leak(bucket.now())

    def stats(self) -> LimiterStats:
        raw = self._backend.read_stats()
        since = int(time.time() * 1000) - self._interval_ms
        used = self._backend.used_since(TOTAL_BUCKET, since)
        return LimiterStats(
            limit=self.limit,
            window_seconds=self.window_seconds,
            reserve=self.reserve,
            used=used,
            remaining=max(0, self.limit - used),
            waiting=max(0, int(raw.get("waiting", 0))),
            waits=int(raw.get("waits", 0)),
            wait_seconds=round(raw.get("wait_seconds", 0.0), 3),
            acquired=int(raw.get("acquired", 0)),
            acquired_critical=int(raw.get("acquired_critical", 0)),
            backend=self.backend,
        )

    def used_in_last(self, seconds: float) -> tuple[int, int]:
        """(all, non-critical) requests taken in the last `seconds` by every process.

        With `seconds = window - t`, these are the tokens still taken `t` seconds from now: what a
        scheduler planning the next `t` seconds must count, rather than the whole window's `used`.
        """
        since = int(time.time() * 1000) - int(seconds * 1000)
        total = self._backend.used_since(TOTAL_BUCKET, since)
        return total, (self._backend.used_since(SHARED_BUCKET, since) if self._shared is not None else total)

    def reset(self) -> None:
        """Forget every token and counter (tests and `massive-pipeline` maintenance only)."""
        self._backend.reset()

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> SharedRateLimiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
