"""The request budgets shared by every process that talks to a market-data provider.

Dagster runs each run, sensor and schedule tick in its own process, so an in-process limiter would
let five concurrent runs spend five times the plan's budget. The limiter's state therefore lives
outside the process: a SQLite file under `$DAGSTER_HOME` by default, PostgreSQL or Redis in
production.

**One log, one decision per request.** Each backend keeps a sliding-window log of the requests
sent in the last window, each entry stamped with its send time and whether it was critical, and
a table of waiting requests with a lease. A request is decided in one atomic step (SQLite
`BEGIN IMMEDIATE`, a PostgreSQL transaction under an advisory lock, one Redis Lua script): read
the window, then either append the request's entry, stamped now (the request is sent as soon as
`acquire` returns), or record the request as waiting and tell it how long to sleep. The rules:

* any request needs fewer than `limit` entries in the window;
* a non-critical request also needs fewer than `limit - reserve` non-critical entries, and room
  for every critical request that is waiting (`entries + critical waiters < limit`).

So no window ever holds more than `limit - reserve` non-critical requests, and a critical request
is served when the oldest entry of the window expires, at most one window (plus the margin below)
after it asked, however many processes flood the budget. The design replaces two pyrate-limiter
buckets (non-critical, then total): a non-critical request took its first token, then waited for
the second, and its first token expired a window after it was *taken* rather than *sent*, so
more than `limit - reserve` non-critical requests went out in one window and ate the reserve.

**A budget per provider, a weight per request.** A limiter is built for one named budget
(`budget="massive"`, `budget="binance"`); each budget has its own log, waiters and statistics in
the same backend, so the requests of one never count against another. Binance counts request
*weight* per minute (a klines request of `limit` 1000 weighs more than one of 100), so a request
has a weight `w` (1 by default): it is logged as `w` unit entries stamped with one send time, and
the rules above count units. A request of weight `w` needs `w` units of room in the window (`units
+ w <= limit`); a non-critical one also `w` units under `limit - reserve` and `w` units beside the
units of the critical requests waiting. Logging units as entries keeps "the k-th oldest entry
expires" exact for weighted requests, and a weight-1 request is decided exactly as before. Where a
budget lives:

* SQLite: the same file; the `massive` budget keeps the tables `limiter_log`, `limiter_waiters`,
  `limiter_stats`, another budget `b` has `b_limiter_log`, `b_limiter_waiters`, `b_limiter_stats`;
* PostgreSQL: tables `<budget>_limiter_log`, `_waiters`, `_stats` (`massive_limiter_log`, as
  before), and an advisory decision lock per budget (the `massive` budget keeps its key);
* Redis: keys under `{<budget>:ratelimit}` (`{massive:ratelimit}`, as before).

`acquired` and `acquired_critical` count units, `requests` counts requests (equal for a
weight-1 budget such as Massive's).

**A request counts from its answer.** The server counts a request when it arrives, and a process
can stall between its decision and the send (descheduled on a loaded host, a cold connection):
a request that arrived a second after its decision would, with its entry stamped at the
decision, let the request five entries later arrive less than a window after it, and draw a 429.
So the clients take a `Ticket` (`take`) and settle it when the answer is in (or the attempt
failed): settling moves the request's entries to that moment, which is never before the request
reached the server. Until then the decision's stamp stands, so the entry counts while the
request is in flight; a process killed mid-request leaves it stamped at the decision, as before.
A window is therefore measured from each request's end, which costs a request's duration of
throughput per window and no 429 whatever the delay before the send.

What else the module adds:

* a safety margin on the window, for what settling cannot see: a request whose attempt is never
  settled (`acquire`, a killed process) counts from its decision, and hosts' clocks differ;
* the time of a decision is read inside the atomic step, after the lock is held: a process that
  waited for the lock never stamps its request in the past. By default it is the backend's own
  clock (PostgreSQL `clock_timestamp()`, Redis `TIME`; SQLite, a local file, the host's), so
  processes on several hosts agree on it; tests inject a clock;
* statistics kept in the same backend, readable by `status`. `waiting` is not a counter: it is
  the number of waiters whose lease is live. A waiting request renews its lease at every attempt
  (at least every `lease / 4`), so a killed process stops counting when its lease runs out, and
  nothing has to be decremented;
* a race-free first start: every process of a deployment builds its limiter at the same moment on
  first start, so each backend creates its tables idempotently under one cross-process lock.
  Without it PostgreSQL's concurrent `CREATE TABLE IF NOT EXISTS` fails with a unique violation
  on `pg_type`, and SQLite's switch to WAL fails with "database is locked". Redis needs no schema.
"""

from __future__ import annotations

import logging
import math
import re
import sqlite3
import threading
import time
import uuid
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from massive_pipeline.core.paths import dagster_home
from massive_pipeline.store.engine import mask_url

_LOG = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 5.0
# A wait that long counts in `waits`/`wait_seconds`; shorter ones are the cost of the decision itself.
_WAIT_WORTH_COUNTING = 0.05
# One advisory-lock key for the PostgreSQL backend's schema and one for its decisions, the same in
# every process (CRC-32, not `hash()`, which is salted per interpreter).
_PG_SCHEMA_LOCK = zlib.crc32(b"massive_pipeline.massive.ratelimit schema") & 0x7FFFFFFF
_PG_DECISION_LOCK = zlib.crc32(b"massive_pipeline.massive.ratelimit decision") & 0x7FFFFFFF


class RateLimiterConfigError(ValueError):
    """The limiter's settings or backend URL cannot be used."""


class RequestWeightError(ValueError):
    """A request's weight can never fit its budget: waiting would never end."""


DEFAULT_BUDGET = "massive"
# a budget names tables and keys: a short lower-case identifier keeps every backend's names valid
_BUDGET_NAME = re.compile(r"[a-z][a-z0-9_]{0,23}")


def check_budget_name(budget: str) -> str:
    """The budget's name if it can name tables and keys in every backend, else one clear error."""
    if not isinstance(budget, str) or not _BUDGET_NAME.fullmatch(budget):
        raise RateLimiterConfigError(
            f"rate limit budget name {budget!r} must be a lower-case identifier of at most 24 "
            "characters (letters, digits, underscores, starting with a letter)")
    return budget


@dataclass(frozen=True)
class LimiterStats:
    """A picture of one shared budget, as every process sees it (`used`, `remaining`, `acquired`
    in units of weight; `waiting` and `requests` in requests)."""

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
    budget: str = DEFAULT_BUDGET
    requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def reserve_for(limit: int, share: float) -> int:
    """Tokens kept for critical requests: at least one when the plan allows two or more."""
    if limit < 2 or share <= 0:
        return 0
    return min(limit - 1, max(1, math.floor(limit * share)))


def default_margin_ms(window_seconds: float) -> int:
    """The server counts arrivals, not decisions: leave room for latency jitter."""
    return int(max(100.0, window_seconds * 1000 * 0.01))


@dataclass(frozen=True)
class Budget:
    """The rules of one decision, the same in every backend (Redis repeats them in Lua)."""

    limit: int
    noncritical_limit: int
    interval_ms: int  # the window plus the margin: how long an entry counts

    def entries_to_expire(self, critical: bool, total: int, noncritical: int, critical_waiting: int,
                          weight: int = 1) -> tuple[int, int]:
        """(k, k_nc): the request fits once the k-th oldest entry and the k_nc-th oldest non-critical
        entry have expired; (0, 0) means it fits now. Entries and waiters are units of weight. A
        critical request ignores other waiters (they compete as equals); a non-critical one leaves
        room for the units of every waiting critical one."""
        if critical:
            return max(0, total + weight - self.limit), 0
        return (max(0, total + critical_waiting + weight - self.limit),
                max(0, noncritical + weight - self.noncritical_limit))


@dataclass(frozen=True)
class Attempt:
    """One try of one request: `waiter` is the same across the tries of one `acquire`."""

    waiter: str
    critical: bool
    waited_seconds: float
    lease_ms: int
    weight: int = 1


MsClock = Callable[[], int]


class _Backend(ABC):
    """Where the log, the waiters and the counters live; one instance per process."""

    label: str

    @abstractmethod
    def attempt(self, attempt: Attempt, budget: Budget, clock: MsClock | None) -> int | None:
        """Decide one try atomically: None when granted (entry written), else milliseconds to wait."""

    @abstractmethod
    def leave(self, attempt: Attempt) -> None:
        """Forget a waiter that gave up (its lease would also run out)."""

    @abstractmethod
    def settle(self, attempt: Attempt, budget: Budget, clock: MsClock | None) -> None:
        """Restamp the granted request's entries with now (never earlier than they were)."""

    @abstractmethod
    def now_ms(self) -> int:
        """The backend's clock, the one decisions are stamped with."""

    @abstractmethod
    def used_since(self, since_ms: int, noncritical_only: bool) -> int: ...

    @abstractmethod
    def waiting(self, now_ms: int) -> int: ...

    @abstractmethod
    def read_stats(self) -> dict[str, float]: ...

    @abstractmethod
    def reset(self) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class _Execute(Protocol):
    def __call__(self, sql: str, params: tuple[Any, ...] = ...) -> Any: ...


class _SQLBackend(_Backend):
    """SQLite and PostgreSQL: the same tables and statements, one transaction per decision.

    Subclasses provide the serialized transaction, the table names and the clock; statements use
    `?` placeholders (PostgreSQL's are substituted).
    """

    log_table: str
    waiters_table: str
    stats_table: str

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[_Execute]:
        """A transaction that no other decision, in any process, runs beside."""

    @abstractmethod
    def _db_now(self, q: _Execute) -> int: ...

    @abstractmethod
    def _read(self) -> AbstractContextManager[_Execute]:
        """A plain connection for reads."""

    def attempt(self, attempt: Attempt, budget: Budget, clock: MsClock | None) -> int | None:
        log, waiters = self.log_table, self.waiters_table
        with self._transaction() as q:
            now = clock() if clock is not None else self._db_now(q)
            q(f"DELETE FROM {log} WHERE ts_ms <= ?", (now - budget.interval_ms,))
            q(f"DELETE FROM {waiters} WHERE lease_until_ms <= ?", (now,))
            total, noncritical = q(f"SELECT COUNT(*), COALESCE(SUM(1 - critical), 0) FROM {log}").fetchone()
            (critical_waiting,) = q(f"SELECT COALESCE(SUM(weight), 0) FROM {waiters} "
                                    "WHERE critical = 1 AND id <> ?", (attempt.waiter,)).fetchone()
            k_all, k_nc = budget.entries_to_expire(attempt.critical, int(total), int(noncritical),
                                                   int(critical_waiting), attempt.weight)
            critical = int(attempt.critical)
            if not k_all and not k_nc:
                _insert_units(q, log, now, critical, attempt.weight, attempt.waiter)
                q(f"DELETE FROM {waiters} WHERE id = ?", (attempt.waiter,))
                for name, value in _grant_counts(attempt):
                    q(f"INSERT INTO {self.stats_table}(name, value) VALUES (?, ?) ON CONFLICT(name) "
                      f"DO UPDATE SET value = {self.stats_table}.value + excluded.value", (name, value))
                return None
            q(f"INSERT INTO {waiters}(id, critical, lease_until_ms, weight) VALUES (?, ?, ?, ?) "
              f"ON CONFLICT(id) DO UPDATE SET lease_until_ms = excluded.lease_until_ms",
              (attempt.waiter, critical, now + attempt.lease_ms, attempt.weight))
            wait = self._expiry(q, k_all, False, budget, now) if k_all else 0
            if k_nc:
                wait = max(wait, self._expiry(q, k_nc, True, budget, now))
            return wait

    def _expiry(self, q: _Execute, k: int, noncritical_only: bool, budget: Budget, now: int) -> int:
        """Milliseconds until the k-th oldest entry stops counting (a whole window if there is no such
        entry: then waiting critical requests, not entries, fill the budget)."""
        where = "WHERE critical = 0 " if noncritical_only else ""
        row = q(f"SELECT ts_ms FROM {self.log_table} {where}ORDER BY ts_ms LIMIT 1 OFFSET ?",
                (k - 1,)).fetchone()
        if row is None:
            return budget.interval_ms
        return max(1, int(row[0]) + budget.interval_ms - now)

    def leave(self, attempt: Attempt) -> None:
        with self._transaction() as q:
            q(f"DELETE FROM {self.waiters_table} WHERE id = ?", (attempt.waiter,))

    def settle(self, attempt: Attempt, budget: Budget, clock: MsClock | None) -> None:
        with self._transaction() as q:
            now = clock() if clock is not None else self._db_now(q)
            q(f"UPDATE {self.log_table} SET ts_ms = ? WHERE waiter = ? AND ts_ms < ?", (now, attempt.waiter, now))

    def now_ms(self) -> int:
        with self._read() as q:
            return self._db_now(q)

    def used_since(self, since_ms: int, noncritical_only: bool) -> int:
        where = " AND critical = 0" if noncritical_only else ""
        with self._read() as q:
            row = q(f"SELECT COUNT(*) FROM {self.log_table} WHERE ts_ms > ?{where}", (since_ms,)).fetchone()
        return int(row[0])

    def waiting(self, now_ms: int) -> int:
        with self._read() as q:
            row = q(f"SELECT COUNT(*) FROM {self.waiters_table} WHERE lease_until_ms > ?",
                    (now_ms,)).fetchone()
        return int(row[0])

    def read_stats(self) -> dict[str, float]:
        with self._read() as q:
            return {k: float(v) for k, v in q(f"SELECT name, value FROM {self.stats_table}").fetchall()}

    def reset(self) -> None:
        with self._transaction() as q:
            for table in (self.log_table, self.waiters_table, self.stats_table):
                q(f"DELETE FROM {table}")


_UNITS_PER_INSERT = 200  # rows of one multi-row INSERT: far under SQLite's bound-parameter limit


def _insert_units(q: _Execute, log: str, now: int, critical: int, weight: int, waiter: str) -> None:
    """Log a request of weight `weight` as that many unit entries with one send time, under its
    waiter id (what `settle` restamps)."""
    for start in range(0, weight, _UNITS_PER_INSERT):
        rows = min(_UNITS_PER_INSERT, weight - start)
        q(f"INSERT INTO {log}(ts_ms, critical, waiter) VALUES " + ", ".join(["(?, ?, ?)"] * rows),
          (now, critical, waiter) * rows)


def _grant_counts(attempt: Attempt) -> list[tuple[str, float]]:
    counts: list[tuple[str, float]] = [("acquired", attempt.weight), ("requests", 1)]
    if attempt.critical:
        counts.append(("acquired_critical", attempt.weight))
    if attempt.waited_seconds > _WAIT_WORTH_COUNTING:
        counts += [("waits", 1), ("wait_seconds", attempt.waited_seconds)]
    return counts


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS {log} (ts_ms INTEGER NOT NULL, critical INTEGER NOT NULL, waiter TEXT);
CREATE INDEX IF NOT EXISTS {log}_ts ON {log} (ts_ms);
CREATE TABLE IF NOT EXISTS {waiters} (
    id TEXT PRIMARY KEY, critical INTEGER NOT NULL, lease_until_ms INTEGER NOT NULL,
    weight INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS {stats} (name TEXT PRIMARY KEY, value REAL NOT NULL);
"""
# the column a waiter's weight lives in, added to waiter tables made before budgets had weights
_WAITER_WEIGHT_COLUMN = "weight INTEGER NOT NULL DEFAULT 1"
# the request an entry belongs to, added to log tables made before requests were settled
_LOG_WAITER_COLUMN = "waiter TEXT"


class _SQLiteBackend(_SQLBackend):
    def __init__(self, path: Path, budget: str = DEFAULT_BUDGET) -> None:
        from filelock import FileLock

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.label = f"sqlite:{path}"
        # the Massive budget keeps the tables it had before budgets had names
        prefix = "" if budget == DEFAULT_BUDGET else f"{budget}_"
        self.log_table, self.waiters_table, self.stats_table = (
            f"{prefix}limiter_log", f"{prefix}limiter_waiters", f"{prefix}limiter_stats")
        self._lock = threading.Lock()  # one connection, shared by the threads of this process
        self._conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        # Switching a new file to WAL takes an exclusive lock without waiting for it: two processes
        # doing it at once fail with "database is locked". The whole setup runs under a file lock.
        with FileLock(f"{path}.lock"):
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SQLITE_SCHEMA.format(
                log=self.log_table, waiters=self.waiters_table, stats=self.stats_table))
            columns = {row[1] for row in self._conn.execute(f"PRAGMA table_info({self.waiters_table})")}
            if "weight" not in columns:
                self._conn.execute(f"ALTER TABLE {self.waiters_table} ADD COLUMN {_WAITER_WEIGHT_COLUMN}")
            columns = {row[1] for row in self._conn.execute(f"PRAGMA table_info({self.log_table})")}
            if "waiter" not in columns:
                self._conn.execute(f"ALTER TABLE {self.log_table} ADD COLUMN {_LOG_WAITER_COLUMN}")
        # the log only matters for a window: losing the last commits to a power cut is harmless
        self._conn.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def _transaction(self) -> Iterator[_Execute]:
        with self._lock:
            # IMMEDIATE takes the write lock before the first read: the decision sees the log
            # exactly as it is when its entry is written (busy timeout: 30 s).
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn.execute
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[_Execute]:
        with self._lock:
            yield self._conn.execute

    def _db_now(self, q: _Execute) -> int:
        return time.time_ns() // 1_000_000

    def close(self) -> None:
        self._conn.close()


class _PostgresBackend(_SQLBackend):
    def __init__(self, url: str, budget: str = DEFAULT_BUDGET) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.label = f"postgresql:{mask_url(url)}"
        self.log_table, self.waiters_table, self.stats_table = (
            f"{budget}_limiter_log", f"{budget}_limiter_waiters", f"{budget}_limiter_stats")
        # budgets do not wait for each other's decisions; Massive's key is the one it always had
        self._decision_lock = _PG_DECISION_LOCK if budget == DEFAULT_BUDGET else (
            zlib.crc32(f"massive_pipeline.massive.ratelimit decision {budget}".encode()) & 0x7FFFFFFF)
        try:
            # decisions take a transaction-scoped advisory lock, which needs real transactions
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
        creators; the one after sees the committed tables and does nothing.
        """
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_SCHEMA_LOCK,))
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.log_table} "
                         "(ts_ms BIGINT NOT NULL, critical SMALLINT NOT NULL, waiter TEXT)")
            conn.execute(f"CREATE INDEX IF NOT EXISTS {self.log_table}_ts ON {self.log_table} (ts_ms)")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.waiters_table} "
                         "(id TEXT PRIMARY KEY, critical SMALLINT NOT NULL, lease_until_ms BIGINT NOT NULL, "
                         "weight INTEGER NOT NULL DEFAULT 1)")
            # tables made before weights: ADD COLUMN IF NOT EXISTS would still lock the table
            # exclusively at every start, so look first
            for table, column, definition in ((self.waiters_table, "weight", _WAITER_WEIGHT_COLUMN),
                                              (self.log_table, "waiter", _LOG_WAITER_COLUMN)):
                if conn.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                                "AND table_name = %s AND column_name = %s", (table, column)).fetchone() is None:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {definition}")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.stats_table} "
                         "(name TEXT PRIMARY KEY, value DOUBLE PRECISION NOT NULL)")

    @contextmanager
    def _transaction(self) -> Iterator[_Execute]:
        with self._pool.connection() as conn, conn.transaction():
            # every decision of every process queues on this one lock: the count it reads is the
            # count its entry joins (a row lock would not cover the rows not yet inserted)
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._decision_lock,))
            yield lambda sql, params=(): conn.execute(sql.replace("?", "%s"), params)

    @contextmanager
    def _read(self) -> Iterator[_Execute]:
        with self._pool.connection() as conn:
            yield lambda sql, params=(): conn.execute(sql.replace("?", "%s"), params)

    def _db_now(self, q: _Execute) -> int:
        return int(q("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT").fetchone()[0])

    def close(self) -> None:
        self._pool.close()


# The decision's time in a Redis script: ARGV[1] (ms), or the server's clock when it is -1.
_REDIS_NOW = """
local now = tonumber(ARGV[1])
if now < 0 then
  if redis.replicate_commands then pcall(redis.replicate_commands) end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# The same decision as `_SQLBackend.attempt` and `Budget.entries_to_expire`, in one script: Redis
# runs a script atomically. KEYS: log, non-critical log, waiters, critical waiters, stats (sorted
# sets scored by send time or lease end; one hash). ARGV: now (ms, or -1 for the server's clock),
# interval ms, limit, non-critical limit, critical (0/1), waiter id, lease ms, seconds waited,
# the wait worth counting, weight. A request of weight w is w log members (`id`, `id:2` … `id:w`);
# a critical waiter's member carries its weight (`id|w`, plain `id` for weight 1). Returns {1, 0}
# when granted, else {0, ms to wait}.
_REDIS_ATTEMPT = _REDIS_NOW + """
local interval, limit, nclimit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local critical, id, lease = ARGV[5] == '1', ARGV[6], tonumber(ARGV[7])
local waited, worth = tonumber(ARGV[8]), tonumber(ARGV[9])
local weight = tonumber(ARGV[10] or '1')
local cmember = id
if weight > 1 then cmember = id .. '|' .. weight end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - interval)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - interval)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local total = redis.call('ZCARD', KEYS[1])
local noncritical = redis.call('ZCARD', KEYS[2])
local cwaiting = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  if m ~= cmember then
    local bar = string.find(m, '|', 1, true)
    if bar then cwaiting = cwaiting + tonumber(string.sub(m, bar + 1)) else cwaiting = cwaiting + 1 end
  end
end
local k_all, k_nc = 0, 0
if critical then
  k_all = math.max(0, total + weight - limit)
else
  k_all = math.max(0, total + cwaiting + weight - limit)
  k_nc = math.max(0, noncritical + weight - nclimit)
end
local function log_units(key)
  local args = {}
  for i = 1, weight do
    args[#args + 1] = now
    if i == 1 then args[#args + 1] = id else args[#args + 1] = id .. ':' .. i end
    if #args >= 200 or i == weight then
      redis.call('ZADD', key, unpack(args))
      args = {}
    end
  end
  redis.call('PEXPIRE', key, interval * 2)
end
if k_all == 0 and k_nc == 0 then
  log_units(KEYS[1])
  if not critical then log_units(KEYS[2]) end
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[4], cmember)
  redis.call('HINCRBY', KEYS[5], 'acquired', weight)
  redis.call('HINCRBY', KEYS[5], 'requests', 1)
  if critical then redis.call('HINCRBY', KEYS[5], 'acquired_critical', weight) end
  if waited > worth then
    redis.call('HINCRBY', KEYS[5], 'waits', 1)
    redis.call('HINCRBYFLOAT', KEYS[5], 'wait_seconds', ARGV[8])
  end
  return {1, 0}
end
redis.call('ZADD', KEYS[3], now + lease, id)
redis.call('PEXPIRE', KEYS[3], lease * 2)
if critical then
  redis.call('ZADD', KEYS[4], now + lease, cmember)
  redis.call('PEXPIRE', KEYS[4], lease * 2)
end
local function expiry(key, k)
  local e = redis.call('ZRANGE', key, k - 1, k - 1, 'WITHSCORES')
  if #e == 0 then return interval end
  return math.max(1, tonumber(e[2]) + interval - now)
end
local wait = 0
if k_all > 0 then wait = expiry(KEYS[1], k_all) end
if k_nc > 0 then wait = math.max(wait, expiry(KEYS[2], k_nc)) end
return {0, wait}
"""


# Settling in Redis: each of the request's log members (`id`, `id:2` … `id:w`, in the non-critical
# log too for a non-critical request) gets the score now where it had less; the keys' expiry is
# renewed, as an entry now counts until a window after now. KEYS: log, non-critical log. ARGV: now
# (ms, or -1 for the server's clock), interval ms, waiter id, weight, critical (0/1).
_REDIS_SETTLE = _REDIS_NOW + """
local interval, id, weight = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local keys = {KEYS[1]}
if ARGV[5] ~= '1' then keys[2] = KEYS[2] end
for _, key in ipairs(keys) do
  for i = 1, weight do
    local m = id
    if i > 1 then m = id .. ':' .. i end
    local score = redis.call('ZSCORE', key, m)
    if score and tonumber(score) < now then redis.call('ZADD', key, 'XX', now, m) end
  end
  redis.call('PEXPIRE', key, interval * 2)
end
return 1
"""


def _critical_member(attempt: Attempt) -> str:
    """A waiting critical request's member in Redis: its weight rides in the name (`id|w`)."""
    return attempt.waiter if attempt.weight == 1 else f"{attempt.waiter}|{attempt.weight}"


class _RedisBackend(_Backend):
    def __init__(self, url: str, budget: str = DEFAULT_BUDGET) -> None:
        import redis

        prefix = f"{budget}:ratelimit"

        self.label = f"redis:{mask_url(url)}"
        self._redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise RateLimiterConfigError(
                f"rate limiter backend {mask_url(url)} is not reachable: {exc}") from None
        # one hash tag: a script may only touch keys of one slot on a Redis Cluster
        names = ("log", "log:noncritical", "waiting", "waiting:critical", "stats")
        self._keys = [f"{{{prefix}}}:{name}" for name in names]
        self._script = self._redis.register_script(_REDIS_ATTEMPT)
        self._settle_script = self._redis.register_script(_REDIS_SETTLE)

    def attempt(self, attempt: Attempt, budget: Budget, clock: MsClock | None) -> int | None:
        granted, wait = self._script(keys=self._keys, args=[
            -1 if clock is None else clock(), budget.interval_ms, budget.limit, budget.noncritical_limit,
            int(attempt.critical), attempt.waiter, attempt.lease_ms, repr(attempt.waited_seconds),
            _WAIT_WORTH_COUNTING, attempt.weight,
        ])
        return None if granted else int(wait)

    def leave(self, attempt: Attempt) -> None:
        self._redis.zrem(self._keys[2], attempt.waiter)
        self._redis.zrem(self._keys[3], _critical_member(attempt))

    def settle(self, attempt: Attempt, budget: Budget, clock: MsClock | None) -> None:
        self._settle_script(keys=self._keys[:2], args=[
            -1 if clock is None else clock(), budget.interval_ms, attempt.waiter, attempt.weight,
            int(attempt.critical)])

    def now_ms(self) -> int:
        seconds, micros = self._redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def used_since(self, since_ms: int, noncritical_only: bool) -> int:
        return int(self._redis.zcount(self._keys[1 if noncritical_only else 0], f"({since_ms}", "+inf"))

    def waiting(self, now_ms: int) -> int:
        return int(self._redis.zcount(self._keys[2], f"({now_ms}", "+inf"))

    def read_stats(self) -> dict[str, float]:
        raw = self._redis.hgetall(self._keys[4])
        return {k.decode(): float(v) for k, v in raw.items()}

    def reset(self) -> None:
        self._redis.delete(*self._keys)

    def close(self) -> None:
        self._redis.close()


def _backend_for(url: str | None, budget: str = DEFAULT_BUDGET) -> _Backend:
    if not url:
        return _SQLiteBackend(dagster_home() / "massive-ratelimit.sqlite", budget)
    if url.startswith("sqlite:///"):
        return _SQLiteBackend(Path(url.removeprefix("sqlite:///")), budget)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return _RedisBackend(url, budget)
    if url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        return _PostgresBackend(url.replace("postgres://", "postgresql://", 1), budget)
    raise RateLimiterConfigError(
        f"MASSIVE_RATE_LIMIT_URL {mask_url(url)!r} is not a sqlite:///, postgresql:// or redis:// URL"
    )


class Ticket:
    """A granted request: `settle()` once its answer is in (or its attempt failed), so that it
    counts from then; settling twice does nothing more, and a settle the backend cannot take is
    dropped (the request then counts from its decision, as an unsettled one does)."""

    def __init__(self, limiter: SharedRateLimiter, attempt: Attempt) -> None:
        self._limiter, self._attempt = limiter, attempt
        self._settled = False

    @property
    def waited_seconds(self) -> float:
        return self._attempt.waited_seconds

    def settle(self) -> None:
        if self._settled:
            return
        self._settled = True
        # the request's own outcome is what the caller reports; a lost settle only shortens the
        # count, so it is said in one line (the backend's masked label, the error's class) and dropped
        try:
            self._limiter._settle(self._attempt)  # noqa: SLF001 - the ticket is the limiter's
        except Exception as exc:  # noqa: BLE001 - any backend failure is the same lost settle
            _LOG.warning("rate limiter %s: a request's settle was lost (%s); it counts from its decision",
                         self._limiter.backend, type(exc).__name__)


def settle_ticket(ticket: object) -> None:
    """Settle what a client's `acquire` hook returned, when it is a `Ticket` (a hook may return
    nothing, or the seconds waited)."""
    settle = getattr(ticket, "settle", None)
    if callable(settle):
        settle()


class SharedRateLimiter:
    """Blocks each API request until its shared budget has room for it.

    `limit` units per `window_seconds` in total, of which at most `limit - reserve` are
    non-critical; a request weighs one unit unless `acquire` says otherwise, so for Massive a
    unit is a request. `budget` names the provider's budget: limiters of different budgets on
    one backend never see each other's requests. Waiting never fails: the free plan's answer to a
    burst is to wait.
    `clock` (epoch seconds) and `sleep` replace the backend's clock and `time.sleep`, for tests
    that play a scenario on a virtual clock.
    """

    def __init__(
        self,
        limit: int,
        window_seconds: float = 60.0,
        *,
        budget: str = DEFAULT_BUDGET,
        reserve: int = 0,
        backend_url: str | None = None,
        margin_ms: int | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1:
            raise RateLimiterConfigError(f"rate limit must be at least 1 request per window, got {limit}")
        if window_seconds <= 0:
            raise RateLimiterConfigError(f"rate window must be positive, got {window_seconds}")
        if not 0 <= reserve < limit:
            raise RateLimiterConfigError(
                f"critical reserve {reserve} must be between 0 and limit-1 ({limit - 1})")
        if lease_seconds <= 0:
            raise RateLimiterConfigError(f"waiter lease must be positive, got {lease_seconds}")
        self.budget = check_budget_name(budget)
        self.limit = limit
        self.window_seconds = window_seconds
        self.reserve = reserve
        self.margin_ms = default_margin_ms(window_seconds) if margin_ms is None else margin_ms
        self._budget = Budget(limit, limit - reserve, int(round(window_seconds * 1000)) + self.margin_ms)
        self._lease_ms = int(lease_seconds * 1000)
        # a waiter renews its lease at every attempt: attempt four times a lease at least
        self._poll_ms = max(1, min(1000, self._lease_ms // 4))
        self._clock_ms: MsClock | None = None if clock is None else (lambda: int(round(clock() * 1000)))
        self._timer = clock or time.monotonic
        self._sleep = sleep
        self._backend = _backend_for(backend_url, budget)

    @property
    def backend(self) -> str:
        return self._backend.label

    @property
    def interval_seconds(self) -> float:
        """How long a request counts: the window plus the margin (the longest a critical request waits)."""
        return self._budget.interval_ms / 1000

    def acquire(self, critical: bool = False, weight: int = 1) -> float:
        """Wait until this request of `weight` units may be sent, record it as sent; returns the
        seconds spent waiting. The request counts from now: a client that can say when its answer
        came uses `take` and settles the ticket."""
        return self.take(critical, weight).waited_seconds

    def take(self, critical: bool = False, weight: int = 1) -> Ticket:
        """Wait until this request of `weight` units may be sent and record it as sent; the ticket's
        `settle()`, called once the answer is in or the attempt failed, makes the request count from
        then (module docstring). A weight the budget can never hold is refused at once."""
        self._check_weight(critical, weight)
        waiter = uuid.uuid4().hex
        started = self._timer()
        attempt = Attempt(waiter, critical, 0.0, self._lease_ms, weight)
        try:
            while True:
                waited = self._timer() - started
                attempt = Attempt(waiter, critical, waited, self._lease_ms, weight)
                wait_ms = self._backend.attempt(attempt, self._budget, self._clock_ms)
                if wait_ms is None:
                    return Ticket(self, attempt)
                # wake just after the entry expires; never longer than the poll (the lease's heartbeat)
                self._sleep(min(wait_ms + 2, self._poll_ms) / 1000)
        except BaseException:
            self._leave(attempt)
            raise

    def _check_weight(self, critical: bool, weight: int) -> None:
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise RequestWeightError(f"request weight must be a whole number of at least 1, got {weight!r}")
        if weight > self.limit:
            raise RequestWeightError(
                f"request weight {weight} exceeds the {self.budget} budget's limit of {self.limit} "
                f"per {self.window_seconds:g} s")
        if not critical and weight > self._budget.noncritical_limit:
            raise RequestWeightError(
                f"non-critical request weight {weight} exceeds the {self.budget} budget's non-critical "
                f"share of {self._budget.noncritical_limit} (limit {self.limit} - reserve {self.reserve})")

    def _settle(self, attempt: Attempt) -> None:
        self._backend.settle(attempt, self._budget, self._clock_ms)

    def _leave(self, attempt: Attempt) -> None:
        # the error that stopped the wait is the one to report; the lease ends on its own anyway
        with suppress(Exception):
            self._backend.leave(attempt)

    def _now_ms(self) -> int:
        return self._clock_ms() if self._clock_ms is not None else self._backend.now_ms()

    def stats(self) -> LimiterStats:
        raw = self._backend.read_stats()
        now = self._now_ms()
        used = self._backend.used_since(now - self._budget.interval_ms, False)
        return LimiterStats(
            limit=self.limit,
            window_seconds=self.window_seconds,
            reserve=self.reserve,
            used=used,
            remaining=max(0, self.limit - used),
            waiting=self._backend.waiting(now),
            waits=int(raw.get("waits", 0)),
            wait_seconds=round(raw.get("wait_seconds", 0.0), 3),
            acquired=int(raw.get("acquired", 0)),
            acquired_critical=int(raw.get("acquired_critical", 0)),
            backend=self.backend,
            budget=self.budget,
            requests=int(raw.get("requests", 0)),
        )

    def used_in_last(self, seconds: float) -> tuple[int, int]:
        """(all, non-critical) units sent in the last `seconds` by every process (requests, for a
        weight-1 budget).

        With `seconds = window - t`, these are the requests still counted `t` seconds from now:
        what a scheduler planning the next `t` seconds must count, rather than the whole window's `used`.
        """
        since = self._now_ms() - int(seconds * 1000)
        return self._backend.used_since(since, False), self._backend.used_since(since, True)

    def reset(self) -> None:
        """Forget every request, waiter and counter (tests and maintenance only)."""
        self._backend.reset()

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> SharedRateLimiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
