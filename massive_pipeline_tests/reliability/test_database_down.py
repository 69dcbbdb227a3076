"""PostgreSQL stopped in the middle of a backfill: the CLI fails with one clear line naming the
store, and the same command completes once the server is back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from massive_pipeline.store import CandleStore
from massive_pipeline.testing.devserver import DevServer
from massive_pipeline_tests.processes import wait_until
from massive_pipeline_tests.reliability.conftest import Figures, backfill_args, make_pipeline, reference_store
from massive_pipeline_tests.reliability.private_postgres import PrivatePostgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BACKFILL = ("EURUSD,XAUUSD", "M1,H1", "2026-10-05", "2026-10-09")
ARGS = backfill_args(*BACKFILL)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres.create()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


def _has_started_run(home: Path) -> bool:
    with DagsterInstance.from_config(str(home)) as instance:
        return any(r.status == DagsterRunStatus.STARTED for r in instance.get_runs())


def test_store_outage_mid_run_fails_clearly_and_rerun_completes(
    tmp_path: Path, server: DevServer, catalog_file: Path, private_pg: PrivatePostgres, figures: Figures
) -> None:
    url = private_pg.create_database("candles")
    pipeline = make_pipeline(tmp_path / "outage", server, catalog_file, url)
    server.set_faults(delay_seconds=5.0)  # the run holds its store connection while it waits for bars
    proc = pipeline.start(*ARGS)
    wait_until(lambda: not proc.alive() or _has_started_run(pipeline.home), timeout=120, interval=0.2,
               what="the first run to start", on_timeout=proc.output)
    assert proc.alive(), proc.output()
    private_pg.stop()
    stopped_at = time.monotonic()
    code = proc.wait(180)
    failed_after = time.monotonic() - stopped_at
    output = proc.output(20000)
    assert code == 1, output
    error = output.strip().splitlines()[-1]
    assert error.startswith("massive-pipeline: error: run ")
    assert "EURUSD" in error and "candle store" in error and "unavailable" in error, error
    assert f"127.0.0.1:{private_pg.port}" in error and "database candles" in error, error
    assert "Traceback" not in output.split("backfilling", 1)[-1].split("massive-pipeline: error:")[-1]

    server.set_faults(delay_seconds=0.0)
    private_pg.start()
    restarted_at = time.monotonic()
    code, output, rerun_seconds = pipeline.run(*ARGS)
    assert code == 0, output
    recovered_after = time.monotonic() - restarted_at

    store = CandleStore(url)
    reference = CandleStore(reference_store(tmp_path / "clean", server, catalog_file, *BACKFILL))
    try:
        assert store.checksum() == reference.checksum()
        rows = int(store.row_counts()["rows"].sum())
    finally:
        store.dispose()
        reference.dispose()
    figures["error_line"] = error
    figures["seconds_from_stop_to_clear_error"] = round(failed_after, 2)
    figures["time_to_recover_seconds"] = round(recovered_after, 2)
    figures["rerun_seconds"] = round(rerun_seconds, 2)
    figures["rows_compared"] = rows
