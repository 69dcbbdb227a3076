"""PostgreSQL layout of `candles` (revision 0006): LIST on timeframe, then RANGE on ts by UTC month.

    candles                      PARTITION BY LIST (timeframe), primary key (symbol, timeframe, ts)
      candles_m1                 FOR VALUES IN ('M1')  PARTITION BY RANGE (ts)
        candles_m1_2024_01       FOR VALUES FROM ('2024-01-01 00:00+00') TO ('2024-02-01 00:00+00')
        ...
      candles_h1, candles_d1_ny, ...   one per timeframe, each with its months

Why timeframe first, then month. Retention is per timeframe (M1 keeps 730 days, the others
everything by default), so a month holding every timeframe could never be dropped while the
coarser series keep it: with time-only partitions, M1's oldest month is a DELETE of ~1.4 million
rows out of a partition that stays. With the timeframe level, each (timeframe, month) is its own
table: retiring M1's oldest month is `DROP TABLE candles_m1_2024_01` (a catalog change and the
unlink of its files, whatever the store's size), and the space is back at once instead of dead
tuples waiting for VACUUM. Reads and the replace path name one timeframe and a ts range, so the
planner prunes to the months they touch (at plan time, with the literal bounds both paths send)
and walks one month's primary-key index, whose depth follows the month, not the store.
`benchmarks/bench_store_scale.py` measures all three at 1 and 50 million bars.

Months are created by the write path, before its rows go in (`missing` inside the write
transaction, `create` in a short transaction of its own), never by a maintenance job a write
could outrun: a write into a month with no partition yet creates it, and the month after the
newest bar's is created ahead, so a live series' first bar of a month finds its table ready. A
month is created as a plain table and then ATTACHed: ATTACH takes SHARE UPDATE EXCLUSIVE on the
timeframe's table, which readers and writers do not wait for (CREATE TABLE ... PARTITION OF
would take ACCESS EXCLUSIVE). Creators serialize on a transaction-scoped advisory lock per
timeframe and look again under it, so several writers reaching a new month at once create it
once. There is no DEFAULT partition: a row can only go where its month is, and a month created
later never has to move rows out of a default.

Retention (`drop_month`) drops the months of one timeframe that end at or before the cutoff,
each in its own short transaction that locks that timeframe's table (the other timeframes are
not touched) and drops it, its rows per symbol read from the month ledger (`month_rows.py`)
for the report; what remains below the cutoff (the month the cutoff falls in) is deleted row by
row by the caller, as before.
SQLite keeps its one WITHOUT ROWID table: it is the embedded default, and has no partitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

# Classid of the two-key advisory lock of one timeframe's partition layout (create, drop).
LOCK_PARTITIONS = 0x4D50_0003
PARENT = "candles"


def level_name(timeframe: str) -> str:
    """The table of one timeframe's months: `candles_m1`, `candles_d1_ny`."""
    return f"{PARENT}_{timeframe.lower()}"


def month_name(timeframe: str, month: pd.Timestamp) -> str:
    """The table of one timeframe's month: `candles_m1_2024_01`."""
    return f"{level_name(timeframe)}_{month:%Y_%m}"


def _month_of_name(name: str) -> pd.Timestamp:
    year, month = name.rsplit("_", 2)[-2:]
    return pd.Timestamp(year=int(year), month=int(month), day=1, tz="UTC")


def _literal(ts: pd.Timestamp) -> str:
    return f"'{ts:%Y-%m-%d %H:%M:%S}+00'"


def months_of(ts_ns: np.ndarray) -> list[pd.Timestamp]:
    """The UTC months the bars at `ts_ns` fall in, and the month after the newest (created ahead)."""
    if not len(ts_ns):
        return []
    months = np.unique(np.asarray(ts_ns, dtype="datetime64[ns]").astype("datetime64[M]"))
    ahead = months[-1] + np.timedelta64(1, "M")
    return [pd.Timestamp(m).tz_localize("UTC") for m in (*months, ahead)]


def is_partitioned(conn: Connection) -> bool:
    """Whether this database's `candles` is the partitioned table of revision 0006."""
    return bool(conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.oid = to_regclass(:t))"
    ), {"t": PARENT}).scalar_one())


def partition_names(conn: Connection) -> set[str]:
    """Every partition of `candles` at any level (what schema comparisons leave out)."""
    return set(conn.execute(text(
        "SELECT c.relname FROM pg_class c WHERE c.relispartition AND c.relnamespace = current_schema()::regnamespace"
    )).scalars())


def existing_months(conn: Connection, timeframe: str) -> list[pd.Timestamp]:
    """The months of `timeframe` that have a partition, oldest first."""
    names = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(:level)"
    ), {"level": level_name(timeframe)}).scalars()
    return sorted(_month_of_name(n) for n in names)


def missing(conn: Connection, timeframe: str, months: Sequence[pd.Timestamp]) -> list[pd.Timestamp]:
    """Those of `months` without a partition (one catalog lookup, no lock on any table)."""
    if not months:
        return []
    names = [month_name(timeframe, m) for m in months]
    present = set(conn.execute(text(
        "SELECT n FROM unnest(CAST(:names AS text[])) AS n WHERE to_regclass(n) IS NOT NULL"
    ), {"names": names}).scalars())
    return [m for m, n in zip(months, names, strict=True) if n not in present]


def lock_layout(conn: Connection, timeframe: str) -> None:
    """Serialize changes of one timeframe's partitions until the transaction ends."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:classid, hashtext(:tf))"),
                 {"classid": LOCK_PARTITIONS, "tf": timeframe})


def create_levels(conn: Connection, timeframes: Iterable[str]) -> None:
    """One LIST partition per timeframe, itself partitioned by RANGE on ts (new stores, revision 0006)."""
    for tf in timeframes:
        conn.execute(text(
            f"CREATE TABLE IF NOT EXISTS {level_name(tf)} PARTITION OF {PARENT} "
            f"FOR VALUES IN ('{tf}') PARTITION BY RANGE (ts)"
        ))


def month_bounds(month: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    return month, month + pd.offsets.MonthBegin(1)


def create(conn: Connection, timeframe: str, months: Sequence[pd.Timestamp], *, attach: bool = True) -> list[str]:
    """Create the partitions of `months` that are still missing, under the layout lock; their names.

    `attach=False` uses CREATE TABLE ... PARTITION OF directly (the migration, which holds every
    lock anyway); the write path creates and then attaches, see the module docstring.
    """
    lock_layout(conn, timeframe)
    made = []
    for month in missing(conn, timeframe, months):
        name, (lo, hi) = month_name(timeframe, month), month_bounds(month)
        bounds = f"FROM ({_literal(lo)}) TO ({_literal(hi)})"
        if attach:
            conn.execute(text(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
            conn.execute(text(f"ALTER TABLE {level_name(timeframe)} ATTACH PARTITION {name} FOR VALUES {bounds}"))
        else:
            conn.execute(text(f"CREATE TABLE {name} PARTITION OF {level_name(timeframe)} FOR VALUES {bounds}"))
        made.append(name)
    return made


def months_before(conn: Connection, timeframe: str, cutoff: pd.Timestamp) -> list[pd.Timestamp]:
    """The months of `timeframe` that end at or before `cutoff`: whole tables retention may drop."""
    return [m for m in existing_months(conn, timeframe) if month_bounds(m)[1] <= cutoff]


def drop_month(conn: Connection, timeframe: str, month: pd.Timestamp) -> bool:
    """Drop one month's table in the caller's transaction; False when it was already gone.

    The timeframe's table is locked first (ACCESS EXCLUSIVE, what the DROP needs anyway), so every
    writer of the month has committed, its rows and its month-ledger change together, and none
    lands until the caller commits: the caller takes the month's rows per symbol from the ledger
    (`month_rows.take_month`) in the same transaction, instead of the COUNT over the month this
    used to run (it grew with the rows retired: 0.54 s of 0.93 s at 50 symbols). Queries of other
    timeframes never open this table and do not wait.
    """
    lock_layout(conn, timeframe)
    name = month_name(timeframe, month)
    conn.execute(text(f"LOCK TABLE {level_name(timeframe)} IN ACCESS EXCLUSIVE MODE"))
    if conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar_one() is None:
        return False  # another retention run dropped it first
    conn.execute(text(f"DROP TABLE {name}"))
    return True
