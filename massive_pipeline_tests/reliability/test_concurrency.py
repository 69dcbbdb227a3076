"""Two processes materializing overlapping partitions of the same assets at the same time end
with every bar exactly once: no duplicate, no missing bar, the same content as one clean run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from dagster import DagsterInstance, DagsterRunStatus

from massive_pipeline.store import CandleStore
from massive_pipeline.testing.devserver import DevServer
from massive_pipeline_tests.reliability.conftest import Figures, backfill_args, make_pipeline, reference_store

pytestmark = pytest.mark.slow

FIRST = backfill_args("EURUSD", "M1,M5,H1", "2026-10-05", "2026-10-09")
SECOND = backfill_args("EURUSD", "M1,M5,H1", "2026-10-07", "2026-10-13")
UNION = ("EURUSD", "M1,M5,H1", "2026-10-05", "2026-10-13")


def _duplicates(url: str) -> int:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(
                "SELECT count(*) FROM (SELECT symbol, timeframe, ts FROM candles "
                "GROUP BY symbol, timeframe, ts HAVING count(*) > 1) d"
            )).scalar_one()
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_overlapping_backfills_in_two_processes(backend: str, tmp_path: Path, server: DevServer, catalog_file: Path,
                                                request: pytest.FixtureRequest, figures: Figures) -> None:
    url = (f"sqlite:///{tmp_path / 'candles.sqlite'}" if backend == "sqlite"
           else request.getfixturevalue("postgres_url"))
    pipeline = make_pipeline(tmp_path / "shared", server, catalog_file, url)
    # Both runs wait on their API request at the same time, then write overlapping windows.
    server.set_faults(delay_seconds=3.0)
    first, second = pipeline.start(*FIRST), pipeline.start(*SECOND)
    assert first.wait(240) == 0, first.output()
    assert second.wait(240) == 0, second.output()
    server.set_faults(delay_seconds=0.0)

    with DagsterInstance.from_config(str(pipeline.home)) as instance:
        records = instance.get_run_records()
    assert [r.dagster_run.status for r in records] == [DagsterRunStatus.SUCCESS] * 2
    (a_start, a_end), (b_start, b_end) = ((r.start_time, r.end_time) for r in records)
    overlap = min(a_end, b_end) - max(a_start, b_start)
    assert overlap > 0, "the two runs did not overlap in time"

    store = CandleStore(url)
    reference = CandleStore(reference_store(tmp_path / "clean", server, catalog_file, *UNION))
    try:
        assert _duplicates(url) == 0
        got, want = store.row_counts(), reference.row_counts()
        pd.testing.assert_frame_equal(got, want)  # no missing bar in any series
        for tf in ("M1", "M5", "H1"):
            stored, expected = store.read("EURUSD", tf), reference.read("EURUSD", tf)
            assert list(stored["ts"]) == list(expected["ts"]), tf
        assert store.checksum() == reference.checksum()
    finally:
        store.dispose()
        reference.dispose()
    figures["backend"] = backend
    figures["runs_overlap_seconds"] = round(overlap, 2)
    figures["rows_compared"] = int(got["rows"].sum())
    figures["duplicates"] = 0
