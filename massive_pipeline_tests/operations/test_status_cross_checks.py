"""`massive-pipeline status` shows the latest cross-check of each pair (`provider_comparisons`)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from massive_pipeline.cli import main
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.operations.status import collect_status
from massive_pipeline.store import CandleStore
from massive_pipeline_tests.fixtures.cross_check_catalog import BTC_PAIR_CATALOG

CATALOG = BTC_PAIR_CATALOG + """\
  - {symbol: EURUSD, ticker: "C:EURUSD", asset_class: forex, priority: critical, calendar: forex, start: 2025-06-01}
"""
AT = pd.Timestamp("2026-10-14 12:05", tz="UTC")


@pytest.fixture
def env(pipeline_env, monkeypatch, tmp_path):
    path = tmp_path / "cross.yaml"
    path.write_text(CATALOG)
    monkeypatch.setenv("MASSIVE_CATALOG", str(path))
    monkeypatch.setenv("MASSIVE_DATABASE_URL", f"sqlite:///{tmp_path}/candles.sqlite")
    return pipeline_env


def _record(store: CandleStore, partition: str, over: int, basis: float) -> None:
    store.record_provider_comparison(
        "BTCUSD", "BTCUSDT", "M1", partition, compared_at=AT, bars_compared=1437, median_rel_diff=1.2e-5,
        max_rel_diff=0.0213, bars_over_tolerance=over, tolerance=0.005, basis=basis,
    )


def test_status_says_when_no_cross_check_is_recorded_yet(env, capsys):
    assert main(["status"]) == 0
    assert "cross-checks: none recorded yet" in capsys.readouterr().out


def test_status_prints_the_newest_partition_of_each_pair(env, capsys):
    store = CandleStore()
    store.create_schema()
    _record(store, "2026-10-13", 0, 0.0014)
    _record(store, "2026-10-14", 3, 0.0015)

    assert main(["status"]) == 0
    out = capsys.readouterr().out.splitlines()
    header = out.index(next(line for line in out if line.startswith("cross-checks (provider_comparisons")))
    columns, *rows = out[header + 1 : header + 3]
    assert columns.split() == ["symbol", "other", "tf", "partition", "bars", "basis", "median_diff", "max_diff",
                               "over_tolerance", "compared_at"]
    assert rows[0].split() == ["BTCUSD", "BTCUSDT", "M1", "2026-10-14", "1437", "+0.1500%", "0.0012%", "2.1300%",
                               "3", "(>", "0.500%)", "2026-10-14", "12:05"]
    assert not any("2026-10-13" in line for line in out[header:])

    # only the pairs of the symbols asked for
    assert main(["status", "--symbols", "EURUSD"]) == 0
    assert "cross-checks" not in capsys.readouterr().out


def test_the_json_report_carries_the_comparisons(env):
    store = CandleStore()
    store.create_schema()
    _record(store, "2026-10-14", 3, 0.0015)
    report = collect_status(load_catalog(), store, AT)
    [row] = json.loads(json.dumps(report.as_json()))["provider_comparisons"]
    assert row == {
        "symbol": "BTCUSD", "other_symbol": "BTCUSDT", "timeframe": "M1", "partition": "2026-10-14",
        "bars_compared": 1437, "median_rel_diff": 1.2e-5, "max_rel_diff": 0.0213, "bars_over_tolerance": 3,
        "tolerance": 0.005, "basis": 0.0015, "compared_at": "2026-10-14T12:05:00Z",
    }
