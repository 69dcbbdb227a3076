"""Bring a candle store's tables to the schema this code writes: create, recognise, upgrade, refuse.

`CandleStore.create_schema()` runs once per run process, so the usual case, a store already at
the head revision, costs one version read without any lock and without importing Alembic. Any
other case takes the schema lock (PostgreSQL: the advisory lock of `bulk_postgres.lock_schema`;
SQLite: `BEGIN IMMEDIATE`), looks again, and does its work in that same transaction, so processes
starting together serialize and a failed upgrade leaves the store as it was:

- no table of ours: `create_all` of the current tables, stamped head (the fast path for new stores);
- our tables but no version (stores made before the schema was versioned): the tables and their
  columns are matched against the schemas released unversioned, then stamped and upgraded;
- an older revision: upgraded in place by the scripts in `migrations/versions`;
- a revision this code does not know (a newer release wrote it): refused, nothing touched.

The version lives in `candle_store_version`, never Alembic's default `alembic_version`, which
Dagster's own PostgreSQL storage uses: the store and the Dagster instance may share one database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from massive_pipeline.store import bulk_postgres
from massive_pipeline.store.errors import StoreError
from massive_pipeline.store.schema import metadata

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

VERSION_TABLE = "candle_store_version"
# The newest revision in migrations/versions; a test keeps the two equal. Kept here so the
# usual case (store at head) needs neither Alembic nor the scripts.
HEAD_REVISION = "0007"
BASELINE_REVISION = "0001"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# What revision 0002 added, as the one release that predates versioning created it with
# `create_all`. Frozen: an unversioned store can only have the shape of 0001 or of 0002.
_ADDED_IN_0002: Mapping[str, frozenset[str]] = {
    "candles": frozenset({"complete"}),
    "rejected_candles": frozenset({"fingerprint", "times_seen", "last_seen_at", "last_run_id"}),
}
_CANDLE_REVISIONS_0002 = frozenset(
    {"id", "symbol", "timeframe", "ts", "max_rel_change", "run_id", "detected_at"}
    | {f"{age}_{c}" for age in ("old", "new") for c in ("open", "high", "low", "close", "volume")}
)

log = logging.getLogger(__name__)

Transaction = Callable[..., AbstractContextManager[Connection]]
"""`CandleStore._transaction`: (operation, *, write=False) -> a connection inside a transaction."""


def ensure_schema(transaction: Transaction, store: str) -> str:
    """Make the store's schema the head revision; returns what was done (for logs and tests).

    `store` is the masked URL that names the store in messages.
    """
    with transaction("create_schema (version check)") as conn:
        if stored_revisions(conn) == (HEAD_REVISION,):
            return "current"
    started = time.monotonic()
    with transaction("create_schema", write=True) as conn:
        if conn.dialect.name == "postgresql":
            bulk_postgres.lock_schema(conn)
        outcome = _bring_to_head(conn, store)
    log.info("candle store %s: schema %s (%.0f ms)", store, outcome, (time.monotonic() - started) * 1000)
    return outcome


def stored_revisions(conn: Connection) -> tuple[str, ...] | None:
    """The revisions stamped in the version table, sorted; None when there is no version table."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    rows = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return tuple(sorted(rows))


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic `Config` for the packaged scripts (no alembic.ini), sharing `connection` if given.

    Also the entry point for writing a new revision:
    `command.revision(alembic_config(), "message", autogenerate=True)` against a store at head.
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _bring_to_head(conn: Connection, store: str) -> str:
    """Under the schema lock: decide from what is stored now, then create, stamp or upgrade."""
    from alembic import command
    from alembic.script import ScriptDirectory

    cfg = alembic_config(conn)
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    revisions = stored_revisions(conn)
    if revisions:
        known = {s.revision for s in script.walk_revisions()}
        unknown = [r for r in revisions if r not in known]
        if unknown:
            raise StoreError(
                f"candle store {store} is at schema revision {', '.join(unknown)}, which this code does not "
                f"know (the newest it knows is {head}): a newer massive_pipeline wrote it; upgrade massive_pipeline"
            )
        if revisions == (head,):
            return "current"  # another process got here first
        command.upgrade(cfg, "head")
        return f"upgraded {', '.join(revisions)} -> {head}"
    present = _our_tables(conn, script)
    if not present:
        metadata.create_all(conn)
        command.stamp(cfg, "head")
        return f"created at {head}"
    start = _unversioned_revision(present, _baseline_columns(script), store)
    if start is not None:
        command.stamp(cfg, start)
    command.upgrade(cfg, "head")
    return f"recognised unversioned store as {start or 'partial ' + BASELINE_REVISION}, upgraded -> {head}"


def _baseline_columns(script: ScriptDirectory) -> dict[str, frozenset[str]]:
    """Table -> column names of revision 0001, from the frozen baseline script itself."""
    baseline = script.get_revision(BASELINE_REVISION)
    assert baseline is not None, "the baseline revision is packaged with the code"
    module = baseline.module
    return {name: frozenset(t.c.keys()) for name, t in module.baseline_metadata().tables.items()}


def _our_tables(conn: Connection, script: ScriptDirectory) -> dict[str, frozenset[str]]:
    """Tables of the store present in the database (others, e.g. Dagster's, ignored) -> columns."""
    inspector = sa.inspect(conn)
    ours = set(_baseline_columns(script)) | {"candle_revisions"}
    return {
        name: frozenset(c["name"] for c in inspector.get_columns(name))
        for name in inspector.get_table_names()
        if name in ours
    }


def _unversioned_revision(
    present: Mapping[str, frozenset[str]], baseline: Mapping[str, frozenset[str]], store: str
) -> str | None:
    """The released revision an unversioned store has: "0001", "0002", or None (0001 with tables missing).

    Anything else (columns no release made) is refused rather than guessed at.
    """
    shapes: dict[str, str] = {}
    problems: list[str] = []
    for name, columns in sorted(present.items()):
        v1 = baseline.get(name, frozenset())
        v2 = _CANDLE_REVISIONS_0002 if name == "candle_revisions" else v1 | _ADDED_IN_0002.get(name, frozenset())
        if name in baseline and columns == v1:
            shapes[name] = "0001"
        elif columns == v2:
            shapes[name] = "0002"
        else:  # describe the difference from the nearer of the two released shapes
            nearest = min((v1, v2), key=lambda released: len(columns ^ released))
            extra, missing = sorted(columns - nearest), sorted(nearest - columns)
            problems.append(
                f"{name} ({'unexpected ' + ', '.join(extra) if extra else ''}"
                f"{'; ' if extra and missing else ''}{'missing ' + ', '.join(missing) if missing else ''})"
            )
    altered = {n for n, s in shapes.items() if s == "0002" and n != "candle_revisions"}
    if altered and altered != set(_ADDED_IN_0002):
        problems.append(f"only {', '.join(sorted(altered))} have the columns revision 0002 adds")
    if problems:
        raise StoreError(
            f"candle store {store} has tables but no schema version, and they match no released schema: "
            f"{'; '.join(problems)}; not changing it"
        )
    if altered:
        if set(present) != set(baseline) | {"candle_revisions"}:
            missing_tables = sorted(set(baseline) | {"candle_revisions"} - set(present))
            raise StoreError(
                f"candle store {store} has the columns of revision 0002 but lacks table(s) "
                f"{', '.join(missing_tables)} and has no schema version; not changing it"
            )
        return "0002"
    return BASELINE_REVISION if set(baseline) <= set(present) else None
