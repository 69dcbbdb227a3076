"""The `massive-pipeline` command line as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance

from massive_pipeline.cli import main
from massive_pipeline.store import CandleStore


@pytest.fixture
def env(pipeline_env, monkeypatch, database_url):
    monkeypatch.setenv("MASSIVE_DATABASE_URL", database_url)
    return pipeline_env


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_backfill_then_export_round_trips(env, database_url, tmp_path, fmt, capsys):
    assert main(["backfill", "--symbols", "eurusd", "--timeframes", "1m,1h", "--start", "2026-10-07",
                 "--end", "2026-10-08"]) == 0
    out_file = tmp_path / f"eurusd.{fmt}"
    assert main(["export", "EURUSD", "h1", "--start", "2026-10-07", "--end", "2026-10-08", "--format", fmt,
                 "-o", str(out_file)]) == 0
    assert f"bars to {out_file}" in capsys.readouterr().out
    exported = pd.read_csv(out_file) if fmt == "csv" else pd.read_parquet(out_file)
    exported["ts"] = pd.to_datetime(exported["ts"], utc=True)
    store = CandleStore(database_url)
    stored = store.read("EURUSD", "H1")
    store.dispose()
    assert len(exported) == len(stored) == 48  # two full forex weekdays of hourly bars
    assert list(exported["ts"]) == list(stored["ts"])
    for col in ("open", "high", "low", "close", "volume", "vwap"):
        assert np.allclose(exported[col].to_numpy(float), stored[col].to_numpy(float), equal_nan=True), col
    assert set(exported["symbol"]) == {"EURUSD"} and set(exported["timeframe"]) == {"H1"}


def test_backfill_runs_are_recorded_in_the_instance(env):
    assert main(["backfill", "--symbols", "BTCUSD", "--timeframes", "D1", "--start", "2026-10-07",
                 "--end", "2026-10-07"]) == 0
    with DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert len(runs) == 1
        assert runs[0].tags["massive/purpose"] == "cli_backfill"
        assert runs[0].tags["dagster/asset_partition_range_start"] == "2026-10-07"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backfill", "--symbols", "EURUDS", "--start", "2026-10-01", "--end", "2026-10-02"], "EURUSD"),
        (["backfill", "--symbols", "EURUSD", "--start", "2026-10-05", "--end", "2026-10-01"], "before --start"),
        (["backfill", "--symbols", "EURUSD", "--timeframes", "M7", "--start", "2026-10-01", "--end", "2026-10-01"],
         "unknown timeframe 'M7'"),
        (["export", "EURUSD", "H2", "--start", "2026-10-01", "--end", "2026-10-01"], "unknown timeframe 'H2'"),
        (["export", "NOPE", "H1", "--start", "2026-10-01", "--end", "2026-10-01"], "unknown symbol 'NOPE'"),
    ],
)
def test_bad_arguments_get_one_clear_line(pipeline_env, argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("massive-pipeline: error:") and message in err


def test_console_script_reports_a_bad_date(pipeline_env):
    proc = subprocess.run(
        [sys.executable, "-m", "massive_pipeline.cli", "backfill", "--start", "2026-13-01", "--end", "2026-10-01"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "not a date" in proc.stderr and "Traceback" not in proc.stderr


def test_failed_run_names_the_run_and_exits_1(env, capsys):
    env.set_faults(not_entitled=True)
    assert main(["backfill", "--symbols", "EURUSD", "--timeframes", "M1", "--start", "2026-10-07",
                 "--end", "2026-10-07"]) == 1
    err = capsys.readouterr().err
    assert "failed" in err and "EURUSD" in err and "403" in err
    assert "test-key-123" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["backfill", "--symbols", "EURUSD", "--timeframes", "M1", "--start", "2026-10-07", "--end", "2026-10-07"],
        ["gaps", "fill", "--symbols", "EURUSD"],
    ],
)
def test_commands_that_call_the_api_name_a_missing_key_in_one_line(pipeline_env, tmp_path, argv):
    """The console script in a process whose environment has no key: one line, exit 2, no run created."""
    from massive_pipeline_tests.processes import pipeline_env as clean_env

    home = tmp_path / "fresh_home"
    env = clean_env(DAGSTER_HOME=str(home), MASSIVE_BASE_URL=pipeline_env.url)  # every MASSIVE_* var dropped
    assert "MASSIVE_API_KEY" not in env
    proc = subprocess.run([sys.executable, "-m", "massive_pipeline.cli", *argv], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "massive-pipeline: error: MASSIVE_API_KEY is not set; export your Massive API key "
        "(or run make demo / make ui against the bundled server)"
    ]
    assert pipeline_env.request_count(kind=None) == 0
    assert not home.exists(), "stopped before the Dagster instance was even opened: no run"


def test_a_blank_key_counts_as_missing(pipeline_env, monkeypatch, capsys):
    monkeypatch.setenv("MASSIVE_API_KEY", "  ")
    assert main(["backfill", "--symbols", "EURUSD", "--start", "2026-10-07", "--end", "2026-10-07"]) == 2
    assert "MASSIVE_API_KEY is not set" in capsys.readouterr().err
