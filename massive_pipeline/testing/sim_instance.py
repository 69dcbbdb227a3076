"""The simulation's Dagster instance: the deployed instance's queue and pools, on local storage.

The point of running the simulation through the run queue is that the deployed limits apply: run
slots (`concurrency.runs` or `run_coordinator.config`: max_concurrent_runs, tag_concurrency_limits),
op pools (`concurrency.pools`) and whatever lane the deployment gives the critical refresh. So the
configuration is read from `deploy/dagster.yaml` when the simulation starts, never copied into
code: a change to that file shows in the next simulated hour. Only what cannot work in a temporary
local instance is replaced: the PostgreSQL storages (their `env:` connection values) give way to
the default SQLite storage under the simulation's DAGSTER_HOME, and a container run launcher to
the default one (runs are processes of the simulation's code server).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEPLOY_INSTANCE_YAML = Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"
# Storage blocks name the production database through env vars; a temp instance uses SQLite files.
STORAGE_KEYS = ("storage", "run_storage", "event_log_storage", "schedule_storage", "compute_logs",
                "local_artifact_storage")


def simulation_instance_config(path: Path = DEPLOY_INSTANCE_YAML) -> dict[str, Any]:
    """`path`'s instance settings without its storages (and container launchers), for a local instance."""
    config: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    for key in STORAGE_KEYS:
        config.pop(key, None)
    launcher = config.get("run_launcher")
    if isinstance(launcher, dict) and launcher.get("class") != "DefaultRunLauncher":
        config.pop("run_launcher")
    config["telemetry"] = {"enabled": False}
    return config


def write_simulation_instance_yaml(home: Path, path: Path = DEPLOY_INSTANCE_YAML) -> dict[str, Any]:
    """Write the instance settings to `home/dagster.yaml` and return them."""
    config = simulation_instance_config(path)
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def queue_limits(config: dict[str, Any]) -> str:
    """One line saying which run-queue and pool limits the simulation runs under."""
    runs = dict((config.get("concurrency") or {}).get("runs") or {})
    runs.update((config.get("run_coordinator") or {}).get("config") or {})
    pools = (config.get("concurrency") or {}).get("pools") or {}
    tags = ", ".join(f"{t.get('key')}{'=' + str(t['value']) if 'value' in t else ''}: {t.get('limit')}"
                     for t in runs.get("tag_concurrency_limits") or [])
    return (f"run queue: max_concurrent_runs {runs.get('max_concurrent_runs', 'unlimited')}, tag limits [{tags}]; "
            f"pools: default_limit {pools.get('default_limit', 'none')}, granularity {pools.get('granularity', 'run')}"
            + "".join(f", {k} {v}" for k, v in pools.items() if k not in ("default_limit", "granularity")))
