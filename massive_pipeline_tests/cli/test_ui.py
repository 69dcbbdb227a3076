"""`massive-pipeline ui`'s parts that need no running Dagster: its environment, workspace and the
immediate priority refresh's GraphQL (against a recording stand-in for the webserver). The command
itself, with `dagster dev` and a browser, is `browser/test_first_run.py`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from massive_pipeline.cli import build_parser
from massive_pipeline.cli.ui import (
    DEMO_API_KEY,
    LOCATION_NAME,
    kick_off_priority_refresh,
    stopped_automation,
    ui_environment,
    write_workspace,
)
from massive_pipeline_tests.processes import ROOT

REPOSITORY = {
    "schedules": [
        {"name": "priority_refresh_daily_from_2025_06_01", "pipelineName": "candles_daily_from_2025_06_01",
         "scheduleState": {"status": "RUNNING"}},
        {"name": "priority_refresh_snapshots", "pipelineName": "snapshots_job", "scheduleState": {"status": "RUNNING"}},
        {"name": "priority_refresh_weekly_from_2025_06_01", "pipelineName": "candles_weekly_from_2025_06_01",
         "scheduleState": {"status": "RUNNING"}},
        {"name": "priority_refresh_weekly_from_2020_01_01", "pipelineName": "candles_weekly_from_2020_01_01",
         "scheduleState": {"status": "STOPPED"}},  # turned off by the user: not started either
        {"name": "weekly_retention", "pipelineName": "retention_job", "scheduleState": {"status": "STOPPED"}},
    ],
    "sensors": [{"name": "secondary_queue", "sensorState": {"status": "RUNNING"}},
                {"name": "gap_fill_sensor", "sensorState": {"status": "STOPPED"}}],
}


class FakeWebserver:
    """Answers the dry runs as the webserver would and records the launches."""

    def __init__(self) -> None:
        self.dry_runs: list[str] = []
        self.launches: list[dict[str, Any]] = []

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        if "scheduleDryRun" in query:
            name = variables["sel"]["scheduleName"]
            self.dry_runs.append(name)
            return {"scheduleDryRun": {"__typename": "DryRunInstigationTick", "evaluationResult": self._tick(name)}}
        assert "launchRun" in query
        self.launches.append(variables["params"])
        return {"launchRun": {"__typename": "LaunchRunSuccess", "run": {"runId": f"run{len(self.launches):05d}"}}}

    @staticmethod
    def _tick(name: str) -> dict[str, Any]:
        if name.startswith("priority_refresh_daily"):
            return {"skipReason": None, "error": None, "runRequests": [
                {"jobName": "candles_daily_from_2025_06_01", "runConfigYaml": "{}\n",
                 "tags": [{"key": "massive/purpose", "value": "priority_refresh"},
                          {"key": "massive/symbol", "value": symbol}],
                 "assetSelection": [{"path": ["candles", symbol.lower(), "m1"]}]}
                for symbol in ("EURUSD", "BTCUSD")
            ]}
        if name == "priority_refresh_snapshots":
            return {"skipReason": None, "error": None, "runRequests": [
                {"jobName": None, "runConfigYaml": "ops:\n  snapshots: {}\n",
                 "tags": [{"key": "massive/purpose", "value": "snapshots"}], "assetSelection": None}]}
        return {"skipReason": "nothing to refresh: market closed", "error": None, "runRequests": []}


def test_the_environment_points_at_the_bundled_server_and_never_carries_the_users_key(tmp_path: Path):
    env = ui_environment({"MASSIVE_API_KEY": "the-users-real-key", "MASSIVE_AUTOMATION": "stopped", "PATH": "/bin"},
                         server_url="http://127.0.0.1:9999", home=tmp_path, rate_limit=5)
    assert env["MASSIVE_API_KEY"] == DEMO_API_KEY
    assert env["MASSIVE_BASE_URL"] == "http://127.0.0.1:9999"
    assert env["DAGSTER_HOME"] == str(tmp_path)
    assert env["MASSIVE_RATE_LIMIT_PER_MINUTE"] == "5" and env["MASSIVE_AUTOMATION"] == "running"
    assert env["PATH"] == "/bin"


def test_the_workspace_names_the_location_as_workspace_yaml_does(tmp_path: Path):
    ours = yaml.safe_load(write_workspace(tmp_path).read_text())
    assert ours == yaml.safe_load((ROOT / "workspace.yaml").read_text())
    assert ours["load_from"][0]["python_module"]["location_name"] == LOCATION_NAME


def test_the_immediate_refresh_launches_what_each_priority_schedule_requests_with_its_tags():
    web = FakeWebserver()
    kick = kick_off_priority_refresh(web, REPOSITORY, 1_791_000_000.0)
    assert web.dry_runs == ["priority_refresh_daily_from_2025_06_01", "priority_refresh_snapshots",
                            "priority_refresh_weekly_from_2025_06_01"]  # not the other schedules
    assert kick.run_ids == ["run00001", "run00002", "run00003"]
    assert kick.notes == ["priority_refresh_weekly_from_2025_06_01: nothing to refresh: market closed"]
    eurusd, _, snapshots = web.launches
    assert eurusd["selector"] == {"repositoryName": "__repository__", "repositoryLocationName": LOCATION_NAME,
                                  "jobName": "candles_daily_from_2025_06_01",
                                  "assetSelection": [{"path": ["candles", "eurusd", "m1"]}]}
    assert eurusd["executionMetadata"]["tags"] == [
        {"key": "massive/purpose", "value": "priority_refresh"}, {"key": "massive/symbol", "value": "EURUSD"},
        {"key": "massive/launched_by", "value": "ui"},
    ]
    assert eurusd["runConfigData"] == {}
    assert snapshots["selector"]["jobName"] == "snapshots_job"  # the schedule's job when the request names none
    assert "assetSelection" not in snapshots["selector"]
    assert snapshots["runConfigData"] == {"ops": {"snapshots": {}}}


def test_what_will_not_tick_is_named():
    assert stopped_automation(REPOSITORY) == ["priority_refresh_weekly_from_2020_01_01", "weekly_retention",
                                              "gap_fill_sensor"]


def test_make_ui_runs_the_command_and_it_takes_its_ports():
    recipe = (ROOT / "Makefile").read_text().split("\nui:")[1].split("\n\n")[0]
    assert "massive-pipeline ui" in recipe
    args = build_parser().parse_args(["ui", "--port", "3001", "--devserver-port", "8765", "--no-refresh-now"])
    assert (args.port, args.devserver_port, args.refresh_now, args.rate_limit) == (3001, 8765, False, 5)
