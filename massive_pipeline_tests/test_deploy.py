"""The deployment files are checked the way the tools that read them would check them.

No Docker engine (nor the compose plugin) runs here, so `docker-compose.yml` is interpolated with
`.env.example` as `docker compose` would and validated against the Compose Specification's JSON
schema (`deploy/compose-spec.json`, from the compose-spec/compose-spec repository,
schema/compose-spec.json, Apache-2.0). `deploy/dagster.yaml` goes through Dagster's own instance
config validation and then serves a real instance on PostgreSQL; the workspace files go through
Dagster's workspace schema.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa
import yaml
from dagster import DagsterInstance, asset, materialize
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.workspace.config_schema import ensure_workspace_config

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE_SCHEMA = ROOT / "deploy" / "compose-spec.json"
PROD_INSTANCE = ROOT / "deploy" / "dagster.yaml"
DEV_INSTANCE = ROOT / "dagster.yaml"
DOCKERFILE = ROOT / "Dockerfile"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, innermost first
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^{}]*))?\}")
_SECRET_NAME = re.compile(r"PASSWORD|API_KEY|SECRET|TOKEN", re.IGNORECASE)


class UnsetVariableError(KeyError):
    pass


def read_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"{path.name}: not NAME=value: {line!r}"
        env[name.strip()] = value.strip()
    return env


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable interpolation (nested defaults included; `$$` is a literal `$`)."""
    escaped = text.replace("$$", "\0")

    def one(m: re.Match[str]) -> str:
        name, op, arg = m["name"], m["op"], m["arg"] or ""
        value = env.get(name)
        # with a colon, an empty value counts as unset
        is_set = bool(value) if op in (":-", ":?", ":+") else value is not None
        if op in (":-", "-"):
            return value if is_set else arg
        if op in (":?", "?"):
            if not is_set:
                raise UnsetVariableError(f"{name}: {arg}")
            return value
        if op in (":+", "+"):
            return arg if is_set else ""
        return value or ""

    while True:
        replaced = _VAR.sub(one, escaped)
        if replaced == escaped:
            break
        escaped = replaced
    assert "${" not in escaped, f"uninterpolated variable left in {text!r}"
    return escaped.replace("\0", "$")


def resolve(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolve(v, env) for v in node]
    if isinstance(node, dict):
        return {k: resolve(v, env) for k, v in node.items()}
    return node


def schema_errors(document: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text()))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


@pytest.fixture(scope="module")
def compose_raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose(compose_raw: dict[str, Any]) -> dict[str, Any]:
    return resolve(compose_raw, read_env_file(ENV_EXAMPLE))


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_schema_check_catches_a_typo(compose: dict[str, Any]) -> None:
    """The check above can fail: a misspelt key or a wrong type is reported with its path."""
    typo = copy.deepcopy(compose)
    typo["services"]["webserver"]["portz"] = typo["services"]["webserver"].pop("ports")
    assert any("services/webserver" in e and "portz" in e for e in schema_errors(typo))
    wrong_type = copy.deepcopy(compose)
    wrong_type["services"]["daemon"]["depends_on"] = "postgresql"
    assert any("services/daemon/depends_on" in e for e in schema_errors(wrong_type))


def test_compose_has_dagsters_deploy_docker_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgresql", "user_code", "webserver", "daemon", "service", "stream", "redis",
                             "rabbitmq", "celery_worker_1", "celery_worker_2"}
    assert services["redis"]["profiles"] == ["redis"]  # optional: only with --profile redis
    assert not any("profiles" in services[name] for name in ("postgresql", "user_code", "webserver", "daemon"))
    user_code = services["user_code"]["command"]
    assert user_code[:3] == ["dagster", "code-server", "start"]
    assert user_code[user_code.index("-m") + 1] == "massive_pipeline.definitions"
    assert services["webserver"]["command"][0] == "dagster-webserver"
    assert services["daemon"]["command"][:2] == ["dagster-daemon", "run"]
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["user_code"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["postgresql"]["condition"] == "service_healthy"


def test_compose_runs_the_data_service_without_the_api_key(compose: dict[str, Any]) -> None:
    """`massive-pipeline serve` on the stack's store and instance; it never calls the API, so the key
    is not in its environment; its health check is the service's own /health."""
    from massive_pipeline.cli import build_parser

    service = compose["services"]["service"]
    command = service["command"]
    args = build_parser().parse_args(command[1:])
    assert command[0] == "massive-pipeline" and args.command == "serve" and (args.host, args.port) == ("0.0.0.0", 8000)
    assert service["ports"] == ["8000:8000"]
    env = service["environment"]
    assert "MASSIVE_API_KEY" not in env
    runs = compose["services"]["user_code"]["environment"]  # where the runs execute: the same store and limiter
    assert (env["MASSIVE_DATABASE_URL"], env["MASSIVE_RATE_LIMIT_URL"]) == (
        runs["MASSIVE_DATABASE_URL"], runs["MASSIVE_RATE_LIMIT_URL"])
    assert env["DAGSTER_POSTGRES_HOST"] == "postgresql"  # the instance the daemon runs its syncs from
    assert env["MASSIVE_SERVICE_TOKEN"] == read_env_file(ENV_EXAMPLE)["MASSIVE_SERVICE_TOKEN"]
    assert "/health" in " ".join(service["healthcheck"]["test"])
    assert service["depends_on"]["postgresql"]["condition"] == "service_healthy"


def test_compose_offers_celery_workers_on_the_runs_store_limiter_and_broker(compose: dict[str, Any]) -> None:
    """`--profile celery` adds the broker and two workers of the code location's Celery app; they
    see what the runs see (store, limiter, key, instance), and the runs stay multiprocess unless
    MASSIVE_EXECUTOR=celery."""
    from massive_pipeline.candles import celery_worker

    services = compose["services"]
    runs = services["user_code"]["environment"]
    assert runs["MASSIVE_EXECUTOR"] == "multiprocess"
    names = []
    for service in ("celery_worker_1", "celery_worker_2"):
        worker = services[service]
        assert worker["profiles"] == ["celery"]
        command = worker["command"]
        assert command[:4] == ["celery", "-A", celery_worker.__name__, "worker"]
        assert command[command.index("-Q") + 1] == celery_worker.app.conf.task_default_queue
        names.append(command[command.index("-n") + 1])
        env = worker["environment"]
        for key in ("MASSIVE_DATABASE_URL", "MASSIVE_RATE_LIMIT_URL", "MASSIVE_API_KEY", "MASSIVE_BASE_URL",
                    "MASSIVE_CELERY_BROKER", "DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_DB"):
            assert env[key] == runs[key], (service, key)
        assert worker["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        assert "ports" not in worker
    assert len(set(names)) == 2
    assert services["rabbitmq"]["profiles"] == ["celery"] and "ports" not in services["rabbitmq"]
    assert runs["MASSIVE_CELERY_BROKER"].startswith("amqp://rabbitmq:5672/")


def test_compose_runs_the_kline_stream_as_its_own_service(compose: dict[str, Any]) -> None:
    """`massive-pipeline stream` on the stack's candle store; Binance's public stream needs no key, and
    the stop grace period leaves its SIGTERM handler time to close the connection."""
    from massive_pipeline.cli import build_parser

    stream = compose["services"]["stream"]
    command = stream["command"]
    args = build_parser().parse_args(command[1:])
    assert command[0] == "massive-pipeline" and args.command == "stream" and args.symbols == "BTCUSDT"
    env = stream["environment"]
    assert "MASSIVE_API_KEY" not in env and env["BINANCE_WS_URL"] == "wss://stream.binance.com:9443"
    assert env["MASSIVE_DATABASE_URL"] == compose["services"]["user_code"]["environment"]["MASSIVE_DATABASE_URL"]
    # optional: the packaged catalog has no binance entry to stream yet
    assert stream["restart"] == "unless-stopped" and stream["profiles"] == ["stream"]
    assert stream["depends_on"]["postgresql"]["condition"] == "service_healthy"
    assert "ports" not in stream  # it serves nothing


def test_workspace_of_the_stack_points_at_the_code_server(compose: dict[str, Any]) -> None:
    """The webserver and daemon load `workspace.yaml` in the image, which is deploy/workspace.yaml."""
    workspace = yaml.safe_load((ROOT / "deploy" / "workspace.yaml").read_text())
    ensure_workspace_config(workspace, "deploy/workspace.yaml")
    (entry,) = workspace["load_from"]
    grpc = entry["grpc_server"]
    command = compose["services"]["user_code"]["command"]
    assert grpc["host"] == "user_code"
    assert str(grpc["port"]) == command[command.index("-p") + 1]
    assert grpc["location_name"] == command[command.index("--location-name") + 1]
    dockerfile = DOCKERFILE.read_text()
    assert re.search(r"^COPY deploy/workspace.yaml \./workspace.yaml$", dockerfile, re.M)
    assert re.search(r"^COPY deploy/dagster.yaml \$\{DAGSTER_HOME\}/dagster.yaml$", dockerfile, re.M)
    for name in ("webserver", "daemon"):
        cmd = compose["services"][name]["command"]
        assert cmd[cmd.index("-w") + 1] == "workspace.yaml"


def test_local_workspace_still_loads_the_module() -> None:
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    ensure_workspace_config(workspace, "workspace.yaml")
    assert workspace["load_from"][0]["python_module"]["module_name"] == "massive_pipeline.definitions"


def test_secrets_come_only_from_the_environment(compose_raw: dict[str, Any]) -> None:
    """Every secret-looking value in the compose file is an interpolation, never a literal."""
    env = read_env_file(ENV_EXAMPLE)

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str | int) and _SECRET_NAME.search(str(key)):
                    assert "${" in str(value), f"{path}/{key} is a literal: {value!r}"
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}/{i}")
        elif isinstance(node, str) and "://" in node and "@" in node:
            assert re.search(r"://\$\{[A-Z_]+\}:\$\{[A-Z_]+\}@", node), f"{path}: credentials in a URL literal"

    walk(compose_raw, "")
    # A missing key fails `docker compose` up front instead of starting a stack that cannot fetch.
    with pytest.raises(UnsetVariableError, match="MASSIVE_API_KEY"):
        resolve(compose_raw, {k: v for k, v in env.items() if k != "MASSIVE_API_KEY"})


def test_env_example_holds_placeholders_only(compose_raw: dict[str, Any]) -> None:
    env = read_env_file(ENV_EXAMPLE)
    for name, value in env.items():
        if _SECRET_NAME.search(name):
            assert value.startswith("replace-with-"), f".env.example: {name} must be a placeholder"
    # every variable the compose file needs without a default is documented in .env.example
    required = set(re.findall(r"\$\{([A-Z_]+):\?", COMPOSE.read_text()))
    assert required and required <= set(env)
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()  # never in an image either


def _instance_config(path: Path, tmp_path: Path) -> dict[str, Any]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    shutil.copy(path, home / "dagster.yaml")
    config, _ = dagster_instance_config(str(home))
    return dict(config)


def test_production_instance_config_passes_dagsters_validation(tmp_path: Path) -> None:
    config = _instance_config(PROD_INSTANCE, tmp_path)
    for storage in ("run_storage", "event_log_storage", "schedule_storage"):
        assert config[storage]["module"].startswith("dagster_postgres.")
        db = config[storage]["config"]["postgres_db"]
        assert db.pop("scheme") == "postgresql+psycopg2"  # dagster-postgres needs psycopg2 under SQLAlchemy 2.1
        assert all(set(v) == {"env"} for v in db.values()), f"{storage}: connection values must come from env"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["runs"]["max_concurrent_runs"] > 0
    assert {"key": "dagster/backfill", "limit": 2} in config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    assert config["run_retries"] == {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["run_retries"].update(max_retry=2), "max_retry"),
        (lambda c: c["run_monitoring"].update(free_slots_after_run_end_secs=300), "free_slots_after_run_end_secs"),
        (lambda c: c["concurrency"]["runs"].update(max_concurrent_runs="eight"), "max_concurrent_runs"),
        (lambda c: c["run_coordinator"]["config"].update(max_concurrent_runs=3), "max_concurrent_runs"),
    ],
)
def test_a_typo_in_the_instance_config_fails(tmp_path: Path, edit, message: str) -> None:
    config = yaml.safe_load(PROD_INSTANCE.read_text())
    edit(config)
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(config))
    with pytest.raises(DagsterInvalidConfigError) as info:
        _instance_config(broken, tmp_path)
    assert message in str(info.value) + " ".join(str(e) for e in info.value.errors)


@asset
def deploy_probe() -> int:
    return 1


@pytest.mark.postgres
def test_production_instance_runs_on_postgresql(tmp_path: Path, monkeypatch, postgres_url: str) -> None:
    """deploy/dagster.yaml, with the environment the compose stack sets, serves a real instance."""
    url = sa.engine.make_url(postgres_url)
    monkeypatch.setenv("DAGSTER_POSTGRES_HOST", url.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_POSTGRES_PORT", str(url.port or 5432))
    monkeypatch.setenv("DAGSTER_POSTGRES_USER", url.username or "postgres")
    monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", url.password or "")
    monkeypatch.setenv("DAGSTER_POSTGRES_DB", url.database)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROD_INSTANCE, home / "dagster.yaml")
    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        written = yaml.safe_load(PROD_INSTANCE.read_text())
        assert queue is not None and queue.max_concurrent_runs == written["concurrency"]["runs"]["max_concurrent_runs"]
        assert queue.tag_concurrency_limits == written["concurrency"]["runs"]["tag_concurrency_limits"]
        assert {"key": "dagster/backfill", "limit": 2} in queue.tag_concurrency_limits
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.run_retries_retry_on_asset_or_op_failure is False
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 60
        result = materialize([deploy_probe], instance=instance)
        assert result.success
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT run_id FROM runs")).scalars().all()
            events = conn.execute(
                sa.text("SELECT count(*) FROM event_logs WHERE run_id = :r"), {"r": result.run_id}
            ).scalar_one()
    finally:
        engine.dispose()
    assert stored == [result.run_id]
    assert events > 0


@pytest.mark.parametrize("path", [DEV_INSTANCE, PROD_INSTANCE], ids=["development", "production"])
def test_both_instances_monitor_runs_and_end_stuck_ones(tmp_path: Path, path: Path) -> None:
    """Run monitoring on, with a start timeout, a poll interval and a maximum runtime for runs that
    carry no `dagster/max_runtime` of their own (the UI's backfills, runs launched by hand); the
    instance Dagster builds from the file reports the same settings."""
    config = _instance_config(path, tmp_path)
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] is True
    assert 0 < monitoring["start_timeout_seconds"] <= 300
    assert 0 < monitoring["poll_interval_seconds"] <= 60  # a dead 4-minute refresh ends within a tick
    assert monitoring["max_runtime_seconds"] >= 6 * 3600  # a two-year backfill of the catalog fits
    assert 0 < monitoring["free_slots_after_run_end_seconds"] <= 120
    assert monitoring["max_resume_run_attempts"] == 0  # the default run launcher cannot resume a run
    if path == DEV_INSTANCE:
        with DagsterInstance.from_config(str(tmp_path / "home")) as instance:
            assert instance.run_monitoring_enabled
            assert instance.run_monitoring_max_runtime_seconds == monitoring["max_runtime_seconds"]
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"  # `dagster dev`'s default


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["run_monitoring"].update(max_runtime=3600), "max_runtime"),
        (lambda c: c["concurrency"]["pools"].update(default_limits=12), "default_limits"),
        (lambda c: c["concurrency"]["runs"]["tag_concurrency_limits"][1].update(limit="two"), "limit"),
    ],
)
def test_a_typo_in_the_development_instance_config_fails(tmp_path: Path, edit, message: str) -> None:
    config = yaml.safe_load(DEV_INSTANCE.read_text())
    edit(config)
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(config))
    with pytest.raises(DagsterInvalidConfigError) as info:
        _instance_config(broken, tmp_path)
    assert message in str(info.value) + " ".join(str(e) for e in info.value.errors)


def test_development_instance_is_the_default_sqlite_one(tmp_path: Path) -> None:
    """`dagster dev` on a fresh machine: the top-level dagster.yaml keeps everything in SQLite files."""
    config = _instance_config(DEV_INSTANCE, tmp_path)
    assert not {"run_storage", "event_log_storage", "schedule_storage", "storage"} & set(config)
    with DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert type(instance.event_log_storage).__name__ == "SqliteEventLogStorage"
        result = materialize([deploy_probe], instance=instance)
        assert result.success
    assert (tmp_path / "home" / "history" / "runs.db").exists()
