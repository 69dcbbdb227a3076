"""kill -9 of a CLI backfill half-way, then the same command again: the store ends exactly as a
clean run leaves it (same checksum of the `candles` table)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from massive_pipeline.store import CandleStore
from massive_pipeline.testing.devserver import DevServer
from massive_pipeline_tests.processes import wait_until
from massive_pipeline_tests.reliability.conftest import Figures, backfill_args, make_pipeline, reference_store

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BACKFILL = ("EURUSD,XAUUSD,BTCUSD", "M1,H1,D1", "2026-10-05", "2026-10-09")
ARGS = backfill_args(*BACKFILL)


def _run_statuses(home: Path) -> list[DagsterRunStatus]:
    with DagsterInstance.from_config(str(home)) as instance:
        return [r.status for r in reversed(instance.get_runs())]  # oldest first


def test_killed_backfill_rerun_equals_a_clean_run(tmp_path: Path, server: DevServer, catalog_file: Path,
                                                   postgres_url: str, figures: Figures) -> None:
    crashed = make_pipeline(tmp_path / "crashed", server, catalog_file, postgres_url)
    # Each API request takes 3 s, so the second symbol's run is caught waiting for its bars.
    server.set_faults(delay_seconds=3.0)
    proc = crashed.start(*ARGS)
    half_way = [DagsterRunStatus.SUCCESS, DagsterRunStatus.STARTED]
    wait_until(lambda: not proc.alive() or _run_statuses(crashed.home)[:2] == half_way, timeout=120,
               interval=0.2, what="the first run done and the second running", on_timeout=proc.output)
    assert proc.alive(), f"the backfill finished before it could be killed:\n{proc.output()}"
    proc.kill9()
    killed_at = time.monotonic()
    server.set_faults(delay_seconds=0.0)

    store = CandleStore(postgres_url)
    try:
        after_kill = {row.symbol: int(row.rows) for row in store.row_counts().itertuples() if row.timeframe == "M1"}
        assert set(after_kill) == {"EURUSD"}, f"expected only the first symbol stored at the kill: {after_kill}"
        statuses = _run_statuses(crashed.home)
        assert statuses[-1] == DagsterRunStatus.STARTED  # the killed run never reported its end

        code, output, rerun_seconds = crashed.run(*ARGS)
        assert code == 0, output
        recovered_after = time.monotonic() - killed_at

        reference = CandleStore(reference_store(tmp_path / "clean", server, catalog_file, *BACKFILL))
        try:
            assert store.checksum() == reference.checksum()
            counts = store.row_counts()
            assert counts.equals(reference.row_counts())
        finally:
            reference.dispose()
    finally:
        store.dispose()
    figures["killed_runs"] = 1
    figures["rows_in_store_at_kill"] = after_kill
    figures["rows_compared"] = int(counts["rows"].sum())
    figures["series_compared"] = len(counts)
    figures["rerun_seconds"] = round(rerun_seconds, 2)
    figures["time_to_recover_seconds"] = round(recovered_after, 2)
    figures["killed_run_left_as"] = statuses[-1].value
