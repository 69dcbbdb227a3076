"""Where the candle store lives, how to connect to it, and how driver errors are reported.

The URL comes from `MASSIVE_DATABASE_URL`; unset, the store is the SQLite file
`$DAGSTER_HOME/candles.sqlite`, or `./.dagster_home/candles.sqlite` (resolved against the
current directory) when `DAGSTER_HOME` is unset too, which matches the Makefile's default
`DAGSTER_HOME`. SQLite runs in WAL mode with a 30 s busy timeout and write transactions that
take the write lock up front (`BEGIN IMMEDIATE`), so the several processes Dagster starts for
its runs queue for the lock instead of failing with "database is locked".
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from adbc_driver_manager import Error as AdbcError
from adbc_driver_manager import OperationalError as AdbcOperationalError
from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from massive_pipeline.store.errors import StoreConfigError, StoreError, StoreUnavailableError

ENV_VAR = "MASSIVE_DATABASE_URL"
DEFAULT_DAGSTER_HOME = ".dagster_home"
SQLITE_FILENAME = "candles.sqlite"
SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10
# Execution option read by the SQLite `begin` hook: write transactions ask for the lock at BEGIN.
SQLITE_BEGIN_OPTION = "massive_sqlite_begin"

_SUPPORTED = "sqlite:///path/to/file.sqlite or postgresql+psycopg://user:password@host:5432/dbname"
# user:password@ in a URL that SQLAlchemy could not parse (so it cannot mask it for us).
# Greedy up to the last "@": over-masking beats leaking a password that contains "/" or "@".
_USERINFO_PASSWORD = re.compile(r"(://[^/@:]*:)(.*)(@)")
_QUERY_PASSWORD = re.compile(r"((?:^|[?&;])password=)([^&;]*)", re.IGNORECASE)


def mask_url(url: str | URL) -> str:
    """The URL with any password replaced by `***`, for messages and logs."""
    if isinstance(url, URL):
        text = url.render_as_string(hide_password=True)
    else:
        try:
            text = make_url(url).render_as_string(hide_password=True)
        except (exc.ArgumentError, ValueError):
            text = _USERINFO_PASSWORD.sub(r"\1***\3", url)
    return _QUERY_PASSWORD.sub(r"\1***", text)


def default_sqlite_url(environ: Mapping[str, str] | None = None) -> str:
    """`sqlite:///<abs DAGSTER_HOME or ./.dagster_home>/candles.sqlite`."""
    env = os.environ if environ is None else environ
    home = Path(env.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).expanduser()
    return f"sqlite:///{(home.resolve() / SQLITE_FILENAME).as_posix()}"


def resolve_database_url(url: str | None = None, *, environ: Mapping[str, str] | None = None) -> str:
    """The store URL to use: `url` if given, else `MASSIVE_DATABASE_URL`, else the SQLite default.

    The result is validated and normalized (`postgresql://` means psycopg 3) but keeps its
    password, since it is what the engine connects with; show `mask_url(...)` instead.
    """
    env = os.environ if environ is None else environ
    if url is not None:
        origin = "url argument"
    elif env.get(ENV_VAR, "").strip():
        url, origin = env[ENV_VAR].strip(), ENV_VAR
    else:
        url, origin = default_sqlite_url(env), f"default ({ENV_VAR} unset)"
    return parse_store_url(url, origin=origin).render_as_string(hide_password=False)


def parse_store_url(url: str, *, origin: str = ENV_VAR) -> URL:
    """Parse and normalize a store URL; anything unusable is a `StoreConfigError` naming `origin`."""
    if not isinstance(url, str) or not url.strip():
        raise StoreConfigError(f"{origin}: candle store URL is empty; expected {_SUPPORTED}")
    try:
        parsed = make_url(url.strip())
    except (exc.ArgumentError, ValueError) as err:
        reason = str(err)
        secret = _USERINFO_PASSWORD.search(url)
        if secret and secret.group(2):
            reason = reason.replace(secret.group(2), "***")
        raise StoreConfigError(
            f"{origin}={mask_url(url)!r} is not a valid SQLAlchemy URL ({reason}); expected {_SUPPORTED}"
        ) from None
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return parsed
    raise StoreConfigError(
        f"{origin}={mask_url(parsed)!r} names an unsupported backend/driver {parsed.drivername!r}; "
        f"expected {_SUPPORTED}"
    )


def create_store_engine(url: URL) -> Engine:
    """An engine for a parsed store URL with the per-backend settings the store relies on."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    # pre_ping: Dagster code servers live for days; a server restart must not break the next run.
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's `begin` hook issue BEGIN, so writes can say BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            _enable_wal(cursor)
            # NORMAL is crash-safe in WAL mode (a power loss may drop the last commits, never
            # half of one) and avoids an fsync per transaction.
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "BEGIN"))

    return engine


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL unless it already is; losing a race to switch it is fine.

    WAL is a property of the file, so one successful switch serves every connection. When
    several processes open a new file at once, the switch needs an exclusive lock that the busy
    handler does not wait for; the loser carries on (its busy timeout still applies) and the
    file is in WAL mode as soon as the winner is done.
    """
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    try:
        cursor.execute("PRAGMA journal_mode = WAL")
    except sqlite3.OperationalError as err:
        if "locked" not in str(err) and "busy" not in str(err):
            raise


def _reason(err: BaseException, url: URL) -> str:
    orig = getattr(err, "orig", None) or err
    text = " ".join(str(orig).split()).split(" Query was: ")[0]  # ADBC appends the whole SQL text
    if url.password:
        text = text.replace(str(url.password), "***")
    return text or type(orig).__name__


def _where(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return f"file {url.database or ':memory:'}"
    host = url.host or "localhost"
    port = f":{url.port}" if url.port else ""
    return f"host {host}{port}, database {url.database or '(default)'}"


@contextmanager
def translate_errors(url: URL, operation: str) -> Iterator[None]:
    """Re-raise driver errors as store errors that name the store (masked URL) and the operation."""
    try:
        yield
    except StoreError:
        raise
    except exc.DBAPIError as err:
        if err.connection_invalidated:
            raise unavailable(url, operation, err) from err
        raise StoreError(f"candle store {mask_url(url)}: {operation} failed: {_reason(err, url)}") from err
    except AdbcOperationalError as err:  # the bulk read's connection was lost or could not be used
        raise unavailable(url, operation, err) from err
    except (exc.SQLAlchemyError, sqlite3.Error, psycopg.Error, AdbcError) as err:
        # Raw driver errors come from the bulk paths, which use the DBAPI cursor (or ADBC) directly.
        raise StoreError(f"candle store {mask_url(url)}: {operation} failed: {_reason(err, url)}") from err


def unavailable(url: URL, operation: str, err: BaseException) -> StoreUnavailableError:
    return StoreUnavailableError(
        f"candle store {mask_url(url)} is unavailable ({_where(url)}) during {operation}: {_reason(err, url)}"
    )


def connect(engine: Engine, url: URL, operation: str) -> Connection:
    """A connection, or `StoreUnavailableError` when the database cannot be reached at all."""
    try:
        return engine.connect()
    except (exc.DBAPIError, exc.SQLAlchemyError) as err:
        raise unavailable(url, operation, err) from err
