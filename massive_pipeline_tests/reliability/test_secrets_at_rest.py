"""After real runs with an API key set (successful ones and failing ones), the key appears nowhere
at rest: not in the Dagster instance's storage (run, event-log and snapshot tables, compressed
bodies included), its compute logs, the candle store, the limiter state, nor the command output.
The candle store's database password is held to the same rule."""

from __future__ import annotations

import sqlite3
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance

from massive_pipeline.testing.devserver import DevServer
from massive_pipeline_tests.reliability.conftest import (
    SERVER_NOW,
    Figures,
    backfill_args,
    make_pipeline,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _inflate(value: bytes) -> bytes | None:
    """Dagster stores snapshot bodies zlib-compressed; other blobs are not compressed."""
    try:
        return zlib.decompress(value)
    except zlib.error:
        return None


def _sqlite_values(path: Path) -> Iterator[bytes]:
    """Every cell of every table, as bytes, with zlib-compressed bodies also decompressed."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if value is None:
                        continue
                    raw = value if isinstance(value, bytes) else str(value).encode()
                    yield raw
                    if isinstance(value, bytes):
                        inflated = _inflate(value)
                        if inflated is not None:
                            yield inflated
    finally:
        conn.close()


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def find_secret(root: Path, secret: str) -> list[str]:
    """Where under `root` the secret occurs: raw file bytes (free pages and WAL included) and
    decoded SQLite cells."""
    needle = secret.encode()
    hits: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if needle in path.read_bytes():
            hits.append(str(path))
        elif _is_sqlite(path) and any(needle in value for value in _sqlite_values(path)):
            hits.append(f"{path} (decoded cell)")
    return hits


def _postgres_text(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(sa.text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )).scalars().all()
            return "\n".join(
                str(row) for table in tables for row in conn.execute(sa.text(f'SELECT * FROM "{table}"'))
            )
    finally:
        engine.dispose()


def test_api_key_and_db_password_are_nowhere_at_rest(tmp_path: Path, catalog_file: Path, postgres_url: str,
                                                     figures: Figures) -> None:
    key = f"sk-reliability-{uuid.uuid4().hex}"
    wrong_key = f"sk-wrong-{uuid.uuid4().hex}"
    password = f"pw-{uuid.uuid4().hex}"  # the test server trusts loopback, so any password connects
    store_url = sa.engine.make_url(postgres_url).set(password=password).render_as_string(hide_password=False)
    with DevServer(port=0, now=SERVER_NOW, api_keys={key}) as server:
        pipeline = make_pipeline(tmp_path / "run", server, catalog_file, store_url, api_key=key)
        ok, ok_out, _ = pipeline.run(*backfill_args("EURUSD,BTCUSD", "M1,H1", "2026-10-05", "2026-10-07"))
        assert ok == 0, ok_out
        # a failing run: the API keeps throttling until the client gives up
        server.set_faults(throttle_429_next=50, retry_after_seconds=0)
        throttled, throttled_out, _ = pipeline.run(*backfill_args("XAUUSD", "M1", "2026-10-05", "2026-10-05"))
        server.reset()
        assert throttled == 1 and "429" in throttled_out, throttled_out
        # a refused key
        pipeline.env["MASSIVE_API_KEY"] = wrong_key
        refused, refused_out, _ = pipeline.run(*backfill_args("GBPUSD", "M1", "2026-10-05", "2026-10-05"))
        assert refused == 1 and "401" in refused_out, refused_out

    with DagsterInstance.from_config(str(pipeline.home)) as instance:
        runs = instance.get_runs()
        records = [r for run in runs for r in instance.all_logs(run.run_id)]
        run_texts = [repr(run) for run in runs] + [repr(r) for r in records]
    assert len(runs) == 4  # EURUSD, BTCUSD, the throttled XAUUSD and the refused GBPUSD
    assert any("rows_written" in text for text in run_texts)  # the search below sees real content

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    for secret in (key, wrong_key, password):
        assert find_secret(tmp_path, secret) == [], f"secret found at rest: {find_secret(tmp_path, secret)}"
        assert not any(secret in text for text in run_texts)
        assert secret not in _postgres_text(postgres_url)
    # the search itself works: it finds content that is really there, compressed snapshots included
    assert find_secret(tmp_path, "C:EURUSD") and find_secret(tmp_path, "massive_api")
    figures["files_searched"] = len(files)
    figures["sqlite_files"] = sum(1 for p in files if _is_sqlite(p))
    figures["runs"] = len(runs)
    figures["event_records_searched"] = len(records)
    figures["secrets_found"] = 0
