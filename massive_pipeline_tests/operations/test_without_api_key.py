"""Without `MASSIVE_API_KEY` the code location loads, and what would request API runs skips, saying why.

Every schedule and the secondary queue sensor of the code location are evaluated as the daemon
evaluates them (`build_schedule_context`/`build_sensor_context` with the code location's resources),
once without the key and once with it, at a fixed tick (a Wednesday, markets open). Those whose runs
call the API skip with the reason and build no `massive` resource (that is what used to error at
every tick); those whose runs only derive bars or read the store request the same runs either way.
The gap-fill sensor's held round is tested with its gaps in `quality/test_gap_fill_sensor.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from dagster import (
    DagsterInstance,
    Definitions,
    EnvVar,
    RunRequest,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
)

from massive_pipeline.core.catalog import load_catalog, parse_catalog
from massive_pipeline.definitions import build_definitions, default_resources
from massive_pipeline.operations.settings import OperationsSettings
from massive_pipeline.resources.api_key import API_KEY_ENV, api_key_variable, missing_api_key
from massive_pipeline.resources.massive import MassiveResource, massive_resource_from_env

AT = pd.Timestamp("2026-10-07T12:05:00Z")  # Wednesday: forex, metals, crypto and the index trade
REASON = "MASSIVE_API_KEY is not set in the code location's environment, so no API run is requested"
# schedules whose runs fetch from the API (the small catalog's jobs start 2025-06-01)
API_SCHEDULES = {"priority_refresh_daily_from_2025_06_01", "priority_refresh_snapshots", "resync_daily_from_2025_06_01"}
# schedules whose runs derive W1, D1_NY, W1_NY from stored bars, detect gaps or trim: no key needed
OTHER_SCHEDULES = {"priority_refresh_weekly_from_2025_06_01", "resync_weekly_from_2025_06_01",
                   "weekly_refresh_weekly_from_2025_06_01", "gap_detection", "weekly_retention",
                   *(f"{kind}_{ny}_ny_from_2025_06_01" for kind in ("hourly_refresh", "resync_derived")
                     for ny in ("daily", "weekly"))}
SECONDARY_QUEUE = "secondary_queue"


@pytest.fixture
def instance(pipeline_env) -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


def _defs(catalog=None, resources=None) -> Definitions:
    return build_definitions(catalog or load_catalog(), resources=resources,
                             settings=OperationsSettings(clock=lambda: AT))


def _schedule_tick(defs: Definitions, instance: DagsterInstance, name: str) -> tuple[list[RunRequest], str]:
    schedule = defs.get_repository_def().get_schedule_def(name)
    resources = {k: defs.resources[k] for k in schedule.required_resource_keys}
    with build_schedule_context(instance=instance, scheduled_execution_time=AT.to_pydatetime(),
                                resources=resources, repository_def=defs.get_repository_def()) as context:
        data = schedule.evaluate_tick(context)
    return list(data.run_requests or []), data.skip_message or ""


def _sensor_tick(defs: Definitions, instance: DagsterInstance, name: str) -> tuple[list[RunRequest], str]:
    sensor = defs.get_repository_def().get_sensor_def(name)
    resources = {k: defs.resources[k] for k in sensor.required_resource_keys}
    with build_sensor_context(instance=instance, definitions=defs, resources=resources, sensor_name=name) as context:
        data = sensor.evaluate_tick(context)
    return list(data.run_requests or []), data.skip_message or ""


def test_the_resource_reads_the_variable_the_checks_look_at():
    assert api_key_variable(massive_resource_from_env()) == API_KEY_ENV
    assert isinstance(massive_resource_from_env().api_key, EnvVar)
    assert api_key_variable(MassiveResource(api_key="a-configured-value")) is None
    assert missing_api_key(API_KEY_ENV, {}) == API_KEY_ENV
    assert missing_api_key(API_KEY_ENV, {API_KEY_ENV: " "}) == API_KEY_ENV
    assert missing_api_key(API_KEY_ENV, {API_KEY_ENV: "k"}) is None
    assert missing_api_key(None, {}) is None


def test_the_code_location_loads_without_the_key(pipeline_env, monkeypatch):
    monkeypatch.delenv("MASSIVE_API_KEY")
    repo = _defs().get_repository_def()
    names = {s.name for s in repo.schedule_defs}
    assert names == API_SCHEDULES | OTHER_SCHEDULES
    assert SECONDARY_QUEUE in {s.name for s in repo.sensor_defs}


@pytest.mark.parametrize("name", sorted(API_SCHEDULES))
def test_api_schedules_skip_with_the_reason_without_the_key_and_request_runs_with_it(
    pipeline_env, monkeypatch, instance, name
):
    defs = _defs()
    requests, skip = _schedule_tick(defs, instance, name)
    assert requests, f"{name} requests runs with the key: {skip}"
    monkeypatch.delenv("MASSIVE_API_KEY")
    requests, skip_reason = _schedule_tick(defs, instance, name)
    assert requests == []
    assert skip_reason.startswith(REASON) and "make ui" in skip_reason
    assert "test-key-123" not in skip_reason


@pytest.mark.parametrize("name", sorted(OTHER_SCHEDULES))
def test_schedules_whose_runs_need_no_key_request_the_same_runs_without_it(pipeline_env, monkeypatch, instance, name):
    defs = _defs()
    with_key, _ = _schedule_tick(defs, instance, name)
    monkeypatch.delenv("MASSIVE_API_KEY")
    without_key, skip = _schedule_tick(defs, instance, name)
    assert without_key and skip == ""
    assert [(r.job_name, r.asset_selection, r.tags) for r in without_key] == [
        (r.job_name, r.asset_selection, r.tags) for r in with_key
    ]


def test_the_secondary_queue_skips_with_the_reason_and_builds_no_api_resource(pipeline_env, monkeypatch, instance):
    defs = _defs()
    requests, skip = _sensor_tick(defs, instance, SECONDARY_QUEUE)
    assert {r.tags["massive/symbol"] for r in requests} == {"GBPUSD", "SPX500"}, skip
    monkeypatch.delenv("MASSIVE_API_KEY")
    # building `massive` without its key raises; the tick skips before it would be built
    requests, skip = _sensor_tick(defs, instance, SECONDARY_QUEUE)
    assert requests == [] and skip.startswith(REASON)


def test_a_weekly_schedule_whose_w1_is_fetched_needs_the_key(pipeline_env, monkeypatch, instance):
    catalog = parse_catalog(
        "symbols:\n"
        '  - {symbol: EURUSD, ticker: "C:EURUSD", asset_class: forex, priority: critical, calendar: forex, '
        "start: 2025-06-01, fetch: [W1]}\n"
    )
    defs = _defs(catalog)
    assert _schedule_tick(defs, instance, "priority_refresh_weekly_from_2025_06_01")[0]
    monkeypatch.delenv("MASSIVE_API_KEY")
    requests, skip = _schedule_tick(defs, instance, "priority_refresh_weekly_from_2025_06_01")
    assert requests == [] and skip.startswith(REASON)


def test_a_configured_key_value_is_never_missing(pipeline_env, monkeypatch, instance):
    """The simulation binds a literal key: its schedules must not look at the environment."""
    monkeypatch.delenv("MASSIVE_API_KEY")
    resources = default_resources() | {"massive": MassiveResource(api_key="simulation-key", base_url=pipeline_env.url)}
    defs = _defs(resources=resources)
    requests, skip = _schedule_tick(defs, instance, "priority_refresh_daily_from_2025_06_01")
    assert requests, skip
